//! `run --notify`: one message per run and URL, in each robot's format, to
//! receivers on loopback that record what they get; receivers that fail or
//! never answer change nothing about the run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{id_file, Audit, TestCatalog, Workdir};

/// What a receiver does with each request.
#[derive(Clone, Copy)]
enum Answer {
    Ok,
    Status(u16),
    /// Reads the request and never answers.
    Never,
}

/// One request as received: the target (path and query) and the body.
#[derive(Debug, Clone)]
struct Received {
    target: String,
    body: Vec<u8>,
}

/// A webhook receiver on 127.0.0.1:0 that records every request.
struct Receiver {
    base: String,
    got: Arc<Mutex<Vec<Received>>>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(answer: Answer) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let record = got.clone();
        rt.spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else { return };
                let record = record.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head_end, length) = loop {
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                            break (i + 4, length);
                        }
                    };
                    while buf.len() < head_end + length {
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let line = String::from_utf8_lossy(&buf[..head_end]).lines().next().unwrap_or_default().to_owned();
                    let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    record.lock().unwrap().push(Received { target, body: buf[head_end..head_end + length].to_vec() });
                    let (status, body) = match answer {
                        Answer::Never => {
                            // Held open, silent, until the client gives up.
                            let _ = conn.read(&mut chunk).await;
                            return;
                        }
                        Answer::Ok => (200, r#"{"errcode":0,"errmsg":"ok","code":0}"#),
                        Answer::Status(s) => (s, r#"{"errcode":500,"errmsg":"boom"}"#),
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(reply.as_bytes()).await;
                });
            }
        });
        Receiver { base, got, _rt: rt }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn query(target: &str) -> HashMap<String, String> {
    let q = target.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

#[test]
fn each_robot_gets_one_message_in_its_format_and_dingtalk_s_is_signed() {
    let cat = TestCatalog::generate(60, 501);
    let ids = cat.ids();
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&ids));
    let quiet = cat.serve_blocking::<&str>(&[]);
    Audit::new(&wd, &quiet).out("reports/n1").run().expect_code(0);
    let rx = Receiver::start(Answer::Ok);
    let b = &rx.base;
    let blocked: Vec<String> = ids[..55].to_vec();
    let loud = cat.serve_blocking(&blocked);
    let secret = "SECdeadbeef0123456789";
    let out = Audit::new(&wd, &loud)
        .out("reports/n2")
        .args(["--compare-with", "reports/n1", "--fail-on", "newly_blocked"])
        .arg("--notify")
        .arg(format!("json={b}/generic"))
        .arg("--notify")
        .arg(format!("dingtalk={b}/robot/send?access_token=TOKEN-DING-42"))
        .arg("--notify")
        .arg(format!("feishu={b}/open-apis/bot/v2/hook/TOKEN-FEISHU-42"))
        .arg("--notify")
        .arg(format!("slack={b}/services/T0/B0/TOKEN-SLACK-42"))
        .args(["--notify-secret-env", "DING_SECRET"])
        .env("DING_SECRET", secret)
        .run();
    out.expect_code(8);
    let got = rx.received();
    let by_path =
        |p: &str| -> Vec<Received> { got.iter().filter(|r| r.target.split('?').next() == Some(p)).cloned().collect() };
    assert_eq!(got.len(), 4, "one message per URL: {got:#?}\n{}", out.describe());
    let manifest_sha = ring::digest::digest(&ring::digest::SHA256, wd.read("reports/n2/manifest.json").as_bytes());
    let manifest_sha: String = manifest_sha.as_ref().iter().map(|x| format!("{x:02x}")).collect();

    let generic: Value = serde_json::from_slice(&by_path("/generic")[0].body).unwrap();
    assert_eq!(generic["manifest_sha256"], json!(manifest_sha));
    assert_eq!(generic["exit_code"], 8);
    assert_eq!(generic["changes"]["newly_blocked"], 55);
    assert_eq!(generic["newly_blocked"].as_array().unwrap().len(), 50);
    assert_eq!(generic["newly_blocked_more"], 5);
    assert_eq!(generic["newly_blocked"][0]["image_id"], json!(ids[..55].iter().min().unwrap()));
    assert!(generic["run_dir"].as_str().unwrap().ends_with("reports/n2"));

    let ding = &by_path("/robot/send")[0];
    let q = query(&ding.target);
    assert_eq!(q["access_token"], "TOKEN-DING-42");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mac = ring::hmac::sign(&key, format!("{}\n{secret}", q["timestamp"]).as_bytes());
    assert_eq!(q["sign"], base64::engine::general_purpose::STANDARD.encode(mac.as_ref()), "DingTalk's signature");
    let ding: Value = serde_json::from_slice(&ding.body).unwrap();
    assert_eq!(ding["msgtype"], "markdown");
    let text = ding["markdown"]["text"].as_str().unwrap();
    assert!(text.contains(&manifest_sha) && text.contains("and 5 more") && text.contains("reports/n2"), "{text}");
    assert!(ding["markdown"]["title"].as_str().unwrap().contains("vod-image-audit"));

    let feishu: Value = serde_json::from_slice(&by_path("/open-apis/bot/v2/hook/TOKEN-FEISHU-42")[0].body).unwrap();
    assert_eq!(feishu["msg_type"], "text");
    assert!(feishu["content"]["text"].as_str().unwrap().contains("newly_blocked 55"), "{feishu}");
    let slack: Value = serde_json::from_slice(&by_path("/services/T0/B0/TOKEN-SLACK-42")[0].body).unwrap();
    assert!(slack["text"].as_str().unwrap().contains(&manifest_sha), "{slack}");

    // The tokens and the secret reach no report, log or manifest.
    let status = wd.read("reports/n2/notifications.json");
    for leaked in ["TOKEN-DING-42", "TOKEN-FEISHU-42", "TOKEN-SLACK-42", secret] {
        assert!(!out.stderr.contains(leaked), "{leaked} on stderr\n{}", out.describe());
        for f in crate::common::files_under(&wd.path().join("reports/n2")) {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            assert!(!text.contains(leaked), "{leaked} in {}", f.display());
        }
    }
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["notifications"].as_array().unwrap().len(), 4, "{status:#}");
    assert!(status["notifications"].as_array().unwrap().iter().all(|n| n["status"] == "delivered"), "{status:#}");
    assert!(status["notifications"][1]["url"].as_str().unwrap().ends_with("/robot/send?***"), "{status:#}");
    wd.run(&["verify", "reports/n2"], &[], None).expect_code(0);
}

#[test]
fn a_receiver_that_fails_or_never_answers_changes_nothing_about_the_run() {
    let cat = TestCatalog::generate(20, 502);
    let ids = cat.ids();
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&ids));
    let sim = cat.serve_blocking(&ids[..3]);
    let plain = Audit::new(&wd, &sim).out("reports/plain").args(["--fail-on", "failed"]).run();
    plain.expect_code(0);
    let failing = Receiver::start(Answer::Status(500));
    let silent = Receiver::start(Answer::Never);
    let out = Audit::new(&wd, &sim)
        .out("reports/notified")
        .args(["--fail-on", "failed", "--notify-on", "always", "--notify-timeout", "2s"])
        .arg("--notify")
        .arg(format!("{}/hook?token=T500", failing.base))
        .arg("--notify")
        .arg(format!("slack={}/hook", silent.base))
        .run();
    out.expect_code(0);
    // The same reports, but for the simulator's request ids, which differ per call.
    let rows = |dir: &str| {
        let mut rows = crate::common::csv_rows(&wd.read(&format!("{dir}/images.csv")));
        rows.iter_mut().for_each(|r| drop(r.remove("request_id")));
        rows
    };
    assert!(rows("reports/plain") == rows("reports/notified"), "images.csv differs");
    assert_eq!(wd.json("reports/plain/summary.json"), wd.json("reports/notified/summary.json"));
    assert_eq!(wd.json("reports/notified/manifest.json")["exit_code"], 0);
    assert!(failing.received().len() > 1, "a 500 is retried: {:?}", failing.received().len());
    assert_eq!(silent.received().len(), 1, "one attempt, cut by the overall timeout");
    assert!(out.stderr.contains("notification") && out.stderr.contains("HTTP 500"), "{}", out.describe());
    let status: Value = serde_json::from_str(&wd.read("reports/notified/notifications.json")).unwrap();
    let statuses: Vec<&str> =
        status["notifications"].as_array().unwrap().iter().map(|n| n["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["failed", "failed"], "{status:#}");
    wd.run(&["verify", "reports/notified"], &[], None).expect_code(0);

    // The default (alert, problem): a clean run sends nothing.
    let rx = Receiver::start(Answer::Ok);
    Audit::new(&wd, &sim).out("reports/clean").arg("--notify").arg(format!("{}/x", rx.base)).run().expect_code(0);
    assert!(rx.received().is_empty());
}
