//! Issue 13: answers that do not match the question, hostile servers and
//! hostile environments. The real binary against the simulator's
//! wrong-image-id fault, against a fake VOD endpoint written here that
//! answers raw HTTP (huge bodies, escape sequences, an echoed STS token), and
//! beside a recording proxy named in every proxy variable.
//!
//! Every listener binds 127.0.0.1:0; no test resolves a host name or sends
//! anything beyond loopback.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{
    csv_rows, echoing_answer, files_under, id_file, unknown_ids, Audit, EchoIn, Output, SimServer, TestCatalog, Workdir,
};

// ---------------------------------------------------------------------------
// Answers must match the question: the simulator's wrong-image-id fault
// ---------------------------------------------------------------------------

/// The data columns of images.csv and the ImageInfo field each comes from.
const DATA_COLUMNS: &[&str] = &["audit_status", "status", "cate_name", "title", "creation_time", "url", "app_id"];

fn field(info: &vod_image_audit::api::model::ImageInfo, column: &str) -> String {
    let v = match column {
        "audit_status" => &info.audit_status,
        "status" => &info.status,
        "cate_name" => &info.cate_name,
        "title" => &info.title,
        "creation_time" => &info.creation_time,
        "url" => &info.url,
        "app_id" => &info.app_id,
        other => panic!("no column {other}"),
    };
    v.clone().unwrap_or_default()
}

/// `n` catalog images and `misses` unknown ids through a simulator that
/// answers `rate` of the calls about another image; `run` with `client` flags.
fn wrong_id_run(
    n: usize,
    misses: usize,
    rate: f64,
    seed: u64,
    client: &[&str],
) -> (TestCatalog, Vec<String>, Workdir, Output, vod_image_audit::sim::Stats) {
    let cat = TestCatalog::generate(n, seed);
    let mut config = cat.config();
    config.seed = seed;
    config.faults.wrong_image_id = rate;
    let server = SimServer::start(config);
    let unknown = unknown_ids(misses, seed as u32);
    let mut ids = cat.ids();
    ids.extend(unknown.iter().cloned());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&ids));
    let out = Audit::new(&wd, &server).args(client.iter().copied()).run();
    let stats = server.stats();
    (cat, unknown, wd, out, stats)
}

/// Every answer names another image: nothing is filed, every id fails with
/// `MismatchedImageId` naming the id the answer gave.
fn every_wrong_answer_is_refused(api: &str) {
    let (cat, unknown, wd, out, stats) = wrong_id_run(10, 2, 1.0, 13, &["--api", api, "--max-attempts", "3"]);
    out.expect_code(3);
    assert_eq!(stats.by_code.get("WrongImageId"), Some(&stats.requests), "every answer was wrong: {stats:?}");
    let rows = rows_by_id(&wd, "out");
    assert_eq!(rows.len(), 12);
    for (id, row) in &rows {
        assert_eq!(row["outcome"], "failed", "{id}\n{}", out.describe());
        assert_eq!(row["error_code"], "MismatchedImageId", "{id}: {:?}\n{}", row["error_message"], out.describe());
        assert_eq!(row["attempts"], "3", "{id}: retried like any bad answer");
        for column in DATA_COLUMNS {
            assert_eq!(row[*column], "", "{id}: {column} filed from a wrong answer\n{}", out.describe());
        }
        // The message names the id the answer gave: for a single call, another
        // image; for a batch, an id not asked or one listed twice.
        let mut named = cat.ids().into_iter().chain(unknown.iter().cloned());
        let message = &row["error_message"];
        if api == "single" {
            assert!(named.any(|other| &other != id && message.contains(&other)), "{id}: {message:?}");
        } else {
            assert!(named.any(|other| message.contains(&other)), "{id}: {message:?}");
            assert!(message.contains("not asked") || message.contains("twice"), "{id}: {message:?}");
        }
    }
}

#[test]
fn single_answers_about_another_image_are_never_filed() {
    every_wrong_answer_is_refused("single");
}

#[test]
fn batch_answers_naming_ids_not_asked_or_twice_are_never_filed() {
    every_wrong_answer_is_refused("batch");
}

/// A third of the answers name another image: the retries end with every
/// id's own data, and nothing else.
fn retries_end_with_the_right_data(api: &str) -> vod_image_audit::sim::Stats {
    // Raw cells: this compares data, not what a spreadsheet is shown.
    let args = ["--api", api, "--max-attempts", "10", "--csv-safe=false"];
    let (cat, unknown, wd, out, stats) = wrong_id_run(150, 20, 0.3, 29, &args);
    out.expect_code(0);
    assert!(stats.by_code.get("WrongImageId").is_some_and(|n| *n >= 5), "the fault fired: {stats:?}");
    let rows = rows_by_id(&wd, "out");
    assert_eq!(rows.len(), 170);
    for (id, info) in &cat.by_id {
        let row = &rows[id];
        assert_eq!(row["outcome"], "found", "{id}\n{}", out.describe());
        for column in DATA_COLUMNS {
            assert_eq!(row[*column], field(info, column), "{id}: {column}");
        }
    }
    for id in &unknown {
        assert_eq!(rows[id]["outcome"], "missing", "{id}");
        for column in DATA_COLUMNS {
            assert_eq!(rows[id][*column], "", "{id}: {column}");
        }
    }
    stats
}

#[test]
fn single_retries_end_with_the_right_data() {
    let stats = retries_end_with_the_right_data("single");
    // A wrong answer counts for no id: each id was answered right once.
    assert!(stats.answers_by_image.values().all(|n| *n == 1), "{:?}", stats.answers_by_image);
}

#[test]
fn batch_retries_end_with_the_right_data() {
    retries_end_with_the_right_data("batch");
}

// ---------------------------------------------------------------------------
// A fake VOD endpoint that answers raw HTTP
// ---------------------------------------------------------------------------

/// One request as the fake endpoint read it.
pub(crate) struct Req {
    params: BTreeMap<String, String>,
}

impl Req {
    pub(crate) fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or_default()
    }

    /// `ImageId`, or the ids of `ImageIds`.
    fn ids(&self) -> Vec<String> {
        match self.param("Action") {
            "GetImageInfos" => self.param("ImageIds").split(',').map(str::to_owned).collect(),
            _ => vec![self.param("ImageId").to_owned()],
        }
    }
}

type Handler = dyn Fn(&Req, &mut TcpStream) + Send + Sync;

/// A listener on 127.0.0.1:0 that reads each request (head and form body)
/// and hands it to a handler that writes whatever bytes it likes; one thread
/// per connection, one request per connection.
pub(crate) struct FakeServer {
    pub(crate) url: String,
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    pub(crate) fn start(handler: impl Fn(&Req, &mut TcpStream) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let handler = handler.clone();
                std::thread::spawn(move || {
                    // A client that never finishes its request must not hold a thread forever.
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                    if let Some(req) = read_request(&mut stream) {
                        handler(&req, &mut stream);
                    }
                });
            }
        });
        FakeServer { url: format!("http://{addr}/"), addr, stop }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Reads one request's head and its `Content-Length` body; the form
/// parameters of the body and the query.
fn read_request(stream: &mut TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let query = head.lines().next().and_then(|l| l.split(' ').nth(1)).and_then(|t| t.split_once('?')).map(|(_, q)| q);
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .chain(form_urlencoded::parse(&buf[head_end..head_end + len]))
    {
        params.insert(k.into_owned(), v.into_owned());
    }
    Some(Req { params })
}

/// Writes a whole answer with `Content-Length` and closes; a client that
/// hung up early is not the server's problem.
pub(crate) fn answer(stream: &mut TcpStream, status: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json;charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}

/// An API error answer.
pub(crate) fn api_error(stream: &mut TcpStream, status: &str, code: &str, message: &str, request_id: &str) {
    let body = serde_json::json!({
        "RequestId": request_id, "HostId": "vod.cn-shanghai.aliyuncs.com", "Code": code, "Message": message,
        "Recommend": "https://api.aliyun.com/troubleshoot",
    });
    answer(stream, status, body.to_string().as_bytes());
}

/// `run` against the fake endpoint, `ids.csv` holding `ids` (the
/// simulator's default key; the fake checks no signature).
pub(crate) fn audit_fake<'a>(wd: &'a Workdir, fake: &FakeServer, ids: &[&str]) -> Audit<'a> {
    wd.write("ids.csv", id_file(&ids.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
    // The builder takes its defaults from a simulator; none is called.
    let unused = SimServer::start(TestCatalog::generate(1, 1).config());
    Audit::new(wd, &unused).endpoint(&fake.url)
}

/// `check --image-id <id>` against the fake endpoint.
pub(crate) fn check_fake<'a>(wd: &'a Workdir, fake: &FakeServer, id: &str) -> Audit<'a> {
    let unused = SimServer::start(TestCatalog::generate(1, 1).config());
    Audit::check(wd, &unused, id).endpoint(&fake.url)
}

/// Rows of `images.csv` by image id.
pub(crate) fn rows_by_id(wd: &Workdir, out: &str) -> BTreeMap<String, std::collections::HashMap<String, String>> {
    csv_rows(&wd.read(&format!("{out}/images.csv"))).into_iter().map(|r| (r["image_id"].clone(), r)).collect()
}

// ---------------------------------------------------------------------------
// Server text reaches the terminal escaped
// ---------------------------------------------------------------------------

/// Characters a terminal acts on: ESC, CR, BEL, a C1 CSI, a bidi override
/// and isolate. (LF is the tool's own line end: the forged line checks it.)
const CONTROLS: &[char] = &['\u{1b}', '\r', '\u{7}', '\u{9b}', '\u{202e}', '\u{2066}'];

fn assert_no_controls(what: &str, text: &str, out: &Output) {
    for c in CONTROLS {
        assert!(!text.contains(*c), "{what} holds the raw character {c:?}\n{}", out.describe());
    }
}

/// A fatal answer whose Message and RequestId carry escape sequences, bidi
/// controls and a forged line: stderr (run and check) and check's JSON show
/// them escaped, the report keeps the raw message.
#[test]
fn server_text_reaches_the_terminal_escaped() {
    const MESSAGE: &str =
        "\u{1b}[2J\u{1b}[31mdenied\u{1b}[0m\r\nvod-image-audit: done: 0 ids, all fine\u{7} \u{9b}31m \u{202e}txet\u{2066}";
    let fake =
        FakeServer::start(|_, s| api_error(s, "403 Forbidden", "Forbidden.RAM", MESSAGE, "REQ\u{1b}]0;pwned\u{7}"));
    let wd = Workdir::new();
    let out = audit_fake(&wd, &fake, &["img0001"]).run();
    out.expect_code(4);
    assert!(out.stderr.contains("stopped by a fatal API error"), "{}", out.describe());
    // Only the tool's own line breaks: the forged line is not a line of its own.
    assert!(!out.stderr.lines().any(|l| l.starts_with("vod-image-audit: done: 0 ids")), "{}", out.describe());
    assert_no_controls("stderr of run", &out.stderr, &out);
    assert_no_controls("stdout of run", &out.stdout, &out);
    assert!(out.stderr.contains(r"\u{1b}[31mdenied\u{1b}[0m\u{d}\u{a}vod-image-audit: done"), "{}", out.describe());
    assert!(out.stderr.contains(r"\u{202e}txet\u{2066}"), "{}", out.describe());
    assert!(out.stderr.contains(r"RequestId REQ\u{1b}]0;pwned\u{7}"), "{}", out.describe());
    // The report keeps what the server said; CSV quoting carries it.
    let rows = rows_by_id(&wd, "out");
    assert_eq!(rows["img0001"]["error_message"], MESSAGE);

    let check = check_fake(&wd, &fake, "img0001").run();
    check.expect_code(4);
    assert_no_controls("stderr of check", &check.stderr, &check);
    // stdout is JSON: the same text, every such character as a \u escape.
    assert_no_controls("stdout of check", &check.stdout, &check);
    let printed: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(printed["error"]["message"], MESSAGE, "{}", check.describe());
    assert!(check.stderr.contains(r"\u{1b}[31mdenied"), "{}", check.describe());
}

// ---------------------------------------------------------------------------
// An echoed STS token is stored and shown nowhere
// ---------------------------------------------------------------------------

/// A made-up STS token whose percent-encodings and base64 forms all differ
/// (`+`, `/`, `=`, `>`; a length that base64 pads).
const TOKEN: &str = "CAIS+hostile/STS=token_0123456789~abcdefghijklmnop>>";

/// The token in every form the server might echo it: raw, percent-encoded
/// once and twice with upper- and lower-case hex, base64 standard and
/// URL-safe with and without padding.
fn token_forms() -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    use vod_image_audit::api::signing::percent_encode;
    let lower = crate::common::lower_hex;
    let once = percent_encode(TOKEN);
    let twice = percent_encode(&once);
    let b64 = base64::engine::general_purpose::STANDARD.encode(TOKEN);
    let url = base64::engine::general_purpose::URL_SAFE.encode(TOKEN);
    let forms = vec![
        ("raw", TOKEN.to_owned()),
        ("percent once", once.clone()),
        ("percent twice", twice.clone()),
        ("lower percent once", lower(&once)),
        ("lower percent twice", percent_encode(&lower(&once))),
        ("base64", b64.clone()),
        ("base64 unpadded", b64.trim_end_matches('=').to_owned()),
        ("base64url", url.clone()),
        ("base64url unpadded", url.trim_end_matches('=').to_owned()),
    ];
    let distinct: std::collections::BTreeSet<&String> = forms.iter().map(|(_, f)| f).collect();
    assert_eq!(distinct.len(), forms.len(), "the token must make every form different: {forms:?}");
    forms
}

fn assert_no_token(what: &str, text: &[u8], out: &Output) {
    let text = String::from_utf8_lossy(text);
    for (name, form) in token_forms() {
        assert!(!text.contains(&form), "{what} holds the token ({name}: {form})\n{}", out.describe());
    }
}

/// A 200 whose every string field echoes the token in one form or another,
/// and error messages that echo it in each form: no report file, no
/// stdout, no stderr holds any form.
#[test]
fn an_echoed_token_is_stored_and_shown_nowhere() {
    let forms = token_forms();
    let f = |name: &str| forms.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    let body =
        echoing_answer(&f, EchoIn { url_key: "SecurityToken", image_type: "base64 unpadded", original_name: "raw" });
    let error_ids: Vec<String> = (0..forms.len()).map(|i| format!("img-e{i}")).collect();
    let answers = forms.clone();
    let fake = FakeServer::start(move |req, s| {
        let id = req.param("ImageId");
        if id == "img-title" {
            answer(s, "200 OK", body.as_bytes());
        } else if id == "img-fatal" {
            let m = format!("token {} expired ({})", answers[0].1, answers[5].1);
            api_error(s, "400 Bad Request", "InvalidSecurityToken.Expired", &m, "R-fatal");
        } else if let Some(i) = id.strip_prefix("img-e").and_then(|n| n.parse::<usize>().ok()) {
            let (name, form) = &answers[i];
            let m = format!("The specified parameter is not valid ({name}): SecurityToken={form}");
            api_error(s, "400 Bad Request", "InvalidParameter", &m, &format!("R-{form}"));
        } else {
            api_error(s, "404 Not Found", "NoSuchResource", "The specified resource does not exist.", "R-miss");
        }
    });
    let creds = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.HOSTILE-TEST"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "made-up-secret"),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN),
    ];
    let wd = Workdir::new();
    let mut ids = vec!["img-title"];
    ids.extend(error_ids.iter().map(String::as_str));
    let out = audit_fake(&wd, &fake, &ids).credentials(&creds).run();
    out.expect_code(3);
    let rows = rows_by_id(&wd, "out");
    assert_eq!(rows["img-title"]["outcome"], "found", "{}", out.describe());
    assert_eq!(rows["img-title"]["title"], "cover ***", "the token is replaced, the rest kept");
    for id in &error_ids {
        assert_eq!(rows[id]["error_code"], "InvalidParameter", "{id}\n{}", out.describe());
        assert!(rows[id]["error_message"].ends_with("SecurityToken=***"), "{id}: {:?}", rows[id]["error_message"]);
    }
    for path in files_under(&wd.path().join("out")) {
        let bytes = std::fs::read(&path).unwrap();
        assert_no_token(&path.display().to_string(), &bytes, &out);
    }
    assert_no_token("stdout", out.stdout.as_bytes(), &out);
    assert_no_token("stderr", out.stderr.as_bytes(), &out);

    for (id, code) in [("img-title", 0), ("img-e3", 3), ("img-e8", 3), ("img-fatal", 4)] {
        let check = check_fake(&wd, &fake, id).credentials(&creds).run();
        check.expect_code(code);
        assert_no_token("check's stdout", check.stdout.as_bytes(), &check);
        assert_no_token("check's stderr", check.stderr.as_bytes(), &check);
    }
}

// ---------------------------------------------------------------------------
// Bounded answers
// ---------------------------------------------------------------------------

/// A GetImageInfo answer of `len` bytes of valid JSON: a huge title.
fn huge_answer(id: &str, len: usize) -> Vec<u8> {
    let head = format!(r#"{{"RequestId":"R-big","ImageInfo":{{"ImageId":"{id}","AuditStatus":"Normal","Title":""#);
    let tail = r#""}}"#;
    let mut body = head.into_bytes();
    body.resize(len - tail.len(), b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}

/// Keeps the connection open until the client hangs up: the rest of a body
/// that a client reading to the end would wait for, never sent.
fn stall(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let _ = stream.read(&mut byte);
}

/// Answers past the caps are bad responses, whether they say their length
/// (`Content-Length`) or not (chunked), success or error: a 5 MB answer that
/// is valid JSON is refused, and the client stops reading a body past the
/// cap instead of waiting for its end.
#[test]
fn an_answer_past_the_cap_is_a_bad_response_read_no_further() {
    const BIG: usize = 5 * 1024 * 1024;
    let fake = FakeServer::start(|req, s| {
        let id = req.param("ImageId").to_owned();
        match id.as_str() {
            // 5 MB of valid JSON, all sent, its length declared.
            "img-declared" => answer(s, "200 OK", &huge_answer(&id, BIG)),
            // Chunked, no length: 2 MiB sent, then nothing until the client hangs up.
            "img-chunked" => {
                let body = huge_answer(&id, BIG);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
                );
                for piece in body[..2 * 1024 * 1024].chunks(64 * 1024) {
                    let _ = s.write_all(format!("{:x}\r\n", piece.len()).as_bytes());
                    let _ = s.write_all(piece);
                    let _ = s.write_all(b"\r\n");
                }
                stall(s);
            }
            // An error that declares 5 MB and sends 64 KiB of it.
            _ => {
                let mut body = br#"{"Code":"InvalidParameter","Message":""#.to_vec();
                body.resize(64 * 1024, b'y');
                let head = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {BIG}\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(&body);
                stall(s);
            }
        }
    });
    let wd = Workdir::new();
    // A client that waited for the bodies' ends would end in Timeout, not BadResponse.
    let out = audit_fake(&wd, &fake, &["img-declared", "img-chunked", "img-error"])
        .args(["--timeout", "5s", "--max-attempts", "2"])
        .run();
    out.expect_code(3);
    let rows = rows_by_id(&wd, "out");
    for id in ["img-declared", "img-chunked", "img-error"] {
        let row = &rows[id];
        assert_eq!(row["outcome"], "failed", "{id}\n{}", out.describe());
        assert_eq!(row["error_code"], "BadResponse", "{id}: {:?}\n{}", row["error_message"], out.describe());
        assert!(row["error_message"].contains("1048576 bytes"), "{id}: {:?}", row["error_message"]);
        assert_eq!(row["attempts"], "2", "{id}: a bad response is retried like any");
        assert_eq!(row["title"], "", "{id}: nothing of the answer is kept");
    }
    assert!(
        rows["img-declared"]["error_message"].contains(&format!("Content-Length {BIG}")),
        "{:?}",
        rows["img-declared"]
    );
    assert!(wd.read("out/images.csv").len() < 64 * 1024, "no huge title in the report");
}

// ---------------------------------------------------------------------------
// An answer that names no image, or a hostile one
// ---------------------------------------------------------------------------

/// The no-ImageId rule: a single answer without `ImageId` is the answer to
/// its own call and is filed; a batch entry without one could be about any
/// id asked, so the batch answer is refused. A foreign id full of escapes
/// reaches the report quoted, escaped and short.
#[test]
fn answers_that_name_no_image_or_a_hostile_one() {
    let evil = format!("\u{1b}[2J\u{1b}]0;owned\u{7}{}", "e".repeat(300));
    let named = evil.clone();
    let fake = FakeServer::start(move |req, s| {
        let info = |id: Option<&str>, title: &str| {
            let mut v = serde_json::json!({"Title": title, "AuditStatus": "Normal", "Status": "Normal"});
            if let Some(id) = id {
                v["ImageId"] = id.into();
            }
            v
        };
        let body = match (req.param("Action"), req.param("ImageId")) {
            ("GetImageInfos", _) => {
                let ids = req.ids();
                serde_json::json!({"RequestId": "R-b", "ImageInfo": [info(None, "whose?"), info(Some(&ids[1]), "second")],
                    "NonExistImageIds": []})
            }
            (_, "img-noid") => serde_json::json!({"RequestId": "R-n", "ImageInfo": info(None, "no id given")}),
            (_, _) => serde_json::json!({"RequestId": "R-e", "ImageInfo": info(Some(&named), "someone else")}),
        };
        answer(s, "200 OK", body.to_string().as_bytes());
    });
    let wd = Workdir::new();
    let out = audit_fake(&wd, &fake, &["img-noid", "img-evil"]).args(["--max-attempts", "2"]).run();
    out.expect_code(3);
    let rows = rows_by_id(&wd, "out");
    assert_eq!(rows["img-noid"]["outcome"], "found", "{}", out.describe());
    assert_eq!(rows["img-noid"]["title"], "no id given");
    let evil_row = &rows["img-evil"];
    assert_eq!(evil_row["error_code"], "MismatchedImageId", "{}", out.describe());
    assert_eq!(evil_row["title"], "", "never filed under the id asked");
    let message = &evil_row["error_message"];
    assert!(message.contains(r#""\u{1b}[2J\u{1b}]0;owned\u{7}eee"#), "{message:?}");
    assert!(!message.contains('\u{1b}') && !message.contains(&"e".repeat(100)), "{message:?}");
    assert!(message.contains(&format!("({} characters)", evil.chars().count())), "{message:?}");

    let wd = Workdir::new();
    let out = audit_fake(&wd, &fake, &["img-b1", "img-b2"]).args(["--api", "batch", "--max-attempts", "2"]).run();
    out.expect_code(3);
    for (id, row) in rows_by_id(&wd, "out") {
        assert_eq!(row["error_code"], "MismatchedImageId", "{id}\n{}", out.describe());
        assert!(row["error_message"].contains("an ImageInfo without ImageId"), "{id}: {:?}", row["error_message"]);
        assert_eq!(row["title"], "", "{id}: nothing of a refused answer is filed");
    }
}

// ---------------------------------------------------------------------------
// Proxies on purpose
// ---------------------------------------------------------------------------

/// A listener on 127.0.0.1:0 named as a proxy. It accepts nothing while the
/// binary runs; afterwards [`RecordingProxy::take`] collects every
/// connection the binary made to it (the kernel completed them into the
/// listen queue) with the bytes it sent before it exited.
pub(crate) struct RecordingProxy {
    listener: TcpListener,
    pub(crate) url: String,
    pub(crate) port: u16,
}

impl RecordingProxy {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        RecordingProxy { listener, url: format!("http://127.0.0.1:{port}"), port }
    }

    /// What each connection sent, once the binary has exited (so every
    /// connection is complete and closed).
    pub(crate) fn take(&self) -> Vec<String> {
        self.listener.set_nonblocking(true).unwrap();
        let mut seen = Vec::new();
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let mut bytes = Vec::new();
                    let _ = stream.read_to_end(&mut bytes);
                    seen.push(String::from_utf8_lossy(&bytes).into_owned());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("accept: {e}"),
            }
        }
        seen
    }
}

/// Every variable that names a proxy, set to `url`.
pub(crate) const PROXY_VARS: &[&str] =
    &["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

/// The loopback simulator with every proxy variable naming a recording
/// proxy: the run and `check` succeed, the proxy is never connected to, and
/// the manifest and `check` say no proxy was used.
#[test]
fn a_loopback_endpoint_is_never_reached_through_a_proxy() {
    let cat = TestCatalog::generate(5, 41);
    let server = SimServer::start(cat.config());
    let proxy = RecordingProxy::start();
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let mut run = Audit::new(&wd, &server).args(["--timeout", "2s", "--max-attempts", "1"]);
    let mut check = Audit::check(&wd, &server, &cat.ids()[0]).args(["--timeout", "2s"]);
    for var in PROXY_VARS {
        run = run.env(var, &proxy.url);
        check = check.env(var, &proxy.url);
    }
    let out = run.run();
    let checked = check.run();
    let seen = proxy.take();
    assert_eq!(seen, Vec::<String>::new(), "the proxy was connected to\n{}", out.describe());
    out.expect_code(0);
    let manifest = wd.json("out/manifest.json");
    assert_eq!(manifest.get("proxy"), Some(&serde_json::Value::Null), "the manifest says: no proxy");
    checked.expect_code(0);
    assert!(checked.stderr.contains("no proxy"), "{}", checked.describe());
}

/// An https endpoint with `HTTPS_PROXY` (user and password in it): the
/// proxy gets a `CONNECT vod.example.invalid:443` and nothing of the signed
/// request in clear; the manifest records the proxy without its password.
/// (The client never resolves the name: the proxy would.)
#[test]
fn an_https_endpoint_goes_through_https_proxy_by_connect() {
    let proxy = RecordingProxy::start();
    let other = RecordingProxy::start();
    let wd = Workdir::new();
    wd.write("ids.csv", "ImageId\nimg-via-proxy\n");
    let unused = SimServer::start(TestCatalog::generate(1, 1).config());
    let named = format!("http://audit-user:pr0xy-s3cret@127.0.0.1:{}", proxy.port);
    let creds = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.PROXY-TEST"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "made-up-secret"),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN),
    ];
    let out = Audit::new(&wd, &unused)
        .endpoint("https://vod.example.invalid/")
        .credentials(&creds)
        .env("HTTPS_PROXY", &named)
        // Who-am-I goes to STS through the same proxy: a name of our own.
        .env("VOD_IMAGE_AUDIT_STS_ENDPOINT", "https://sts.example.invalid/")
        // Never for https: the plain-http variables, and ALL_PROXY (see the README).
        .env("HTTP_PROXY", &other.url)
        .env("http_proxy", &other.url)
        .env("ALL_PROXY", &other.url)
        .args(["--timeout", "2s", "--max-attempts", "1"])
        .run();
    let seen = proxy.take();
    assert_eq!(other.take(), Vec::<String>::new(), "HTTP_PROXY or ALL_PROXY was used\n{}", out.describe());
    assert!(!seen.is_empty(), "the proxy was not used\n{}", out.describe());
    assert!(seen.iter().any(|c| c.starts_with("CONNECT vod.example.invalid:443")), "the VOD calls went through it");
    for conversation in &seen {
        assert!(
            conversation.starts_with("CONNECT vod.example.invalid:443 HTTP/1.1\r\n")
                || conversation.starts_with("CONNECT sts.example.invalid:443 HTTP/1.1\r\n"),
            "{conversation:?}"
        );
        assert!(
            conversation.contains("Proxy-Authorization: Basic ")
                || conversation.contains("proxy-authorization: Basic "),
            "{conversation:?}"
        );
        for secret in ["Signature", "SecurityToken", "AccessKeyId", "ImageId", "made-up-secret", "img-via-proxy"] {
            assert!(!conversation.contains(secret), "{secret} went to the proxy in clear: {conversation:?}");
        }
        assert_no_token("what the proxy saw", conversation.as_bytes(), &out);
    }
    assert_ne!(out.code, 0, "nothing answers the tunnel\n{}", out.describe());
    let manifest = wd.json("out/manifest.json");
    assert_eq!(manifest["proxy"], format!("http://***@127.0.0.1:{}", proxy.port), "{}", out.describe());
    let everything = format!("{}{}{}", out.stdout, out.stderr, wd.read("out/manifest.json"));
    assert!(!everything.contains("pr0xy-s3cret"), "the proxy's password was shown\n{}", out.describe());
}

/// The gateway's answers about the request itself: every call would get the
/// same, so the run stops at once instead of failing each id in turn.
#[test]
fn gateway_codes_about_the_request_stop_the_run_at_once() {
    for (status, code) in [
        ("404 Not Found", "InvalidApi.NotFound"),
        ("404 Not Found", "InvalidAction.NotFound"),
        ("400 Bad Request", "UnsupportedHTTPMethod"),
        ("400 Bad Request", "MissingImageId"),
        ("400 Bad Request", "InvalidSignatureVersion"),
    ] {
        let calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = calls.clone();
        let fake = FakeServer::start(move |_, s| {
            counted.fetch_add(1, Ordering::SeqCst);
            api_error(s, status, code, "about the request", "REQ-1");
        });
        let wd = Workdir::new();
        let ids: Vec<String> = crate::common::unknown_ids(40, 7);
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let out = audit_fake(&wd, &fake, &ids).concurrency(1).run();
        out.expect_code(4);
        assert!(out.stderr.contains(code), "{}", out.describe());
        assert!(calls.load(Ordering::SeqCst) <= 3, "{code}: {} calls", calls.load(Ordering::SeqCst));
    }
}

/// An error answered in XML (the gateway's own errors can be, whatever the
/// request's Format) is read for its code like a JSON one.
#[test]
fn an_xml_error_body_is_read_for_its_code() {
    let fake = FakeServer::start(|_, s| {
        let body = "<?xml version='1.0' encoding='UTF-8'?><Error><RequestId>X-1</RequestId><HostId>vod</HostId>\
                    <Code>NoSuchResource</Code><Message>The specified resource &amp; more does not exist.</Message></Error>";
        answer(s, "404 Not Found", body.as_bytes());
    });
    let wd = Workdir::new();
    let ids = crate::common::unknown_ids(3, 8);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let out = audit_fake(&wd, &fake, &ids).run();
    out.expect_code(0);
    let rows = rows_by_id(&wd, "out");
    assert!(rows.values().all(|r| r["outcome"] == "missing"), "{rows:?}");
}

/// `null` for a list of a batch answer is an empty list, not a broken answer.
#[test]
fn a_batch_answer_with_null_lists_is_read() {
    let fake = FakeServer::start(|req, s| {
        let ids = req.ids();
        let body = serde_json::json!({"RequestId": "R", "ImageInfo": null, "NonExistImageIds": ids});
        answer(s, "200 OK", body.to_string().as_bytes());
    });
    let wd = Workdir::new();
    let ids = crate::common::unknown_ids(5, 9);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let out = audit_fake(&wd, &fake, &ids).args(["--api", "batch"]).run();
    out.expect_code(0);
    let rows = rows_by_id(&wd, "out");
    assert_eq!(rows.len(), 5);
    assert!(rows.values().all(|r| r["outcome"] == "missing"), "{rows:?}");
}

// ---------------------------------------------------------------------------
// A 200 that is not the action's answer
// ---------------------------------------------------------------------------

#[test]
fn a_200_carrying_an_error_code_or_an_empty_image_is_never_a_found_image() {
    for body in [
        r#"{"RequestId": "R", "Code": "InternalError", "Message": "oops", "ImageInfo": {}}"#,
        r#"{"RequestId": "R", "Code": "Throttling.User", "ImageInfo": {"ImageId": "ignored"}}"#,
        r#"{"RequestId": "R", "ImageInfo": {}}"#,
    ] {
        let fake = FakeServer::start(move |_req, stream| answer(stream, "200 OK", body.as_bytes()));
        let wd = Workdir::new();
        let ids: Vec<String> = (0..20).map(|i| format!("{i:032x}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let out = audit_fake(&wd, &fake, &refs).args(["--qps", "0", "--max-attempts", "2"]).run();
        let s = wd.json("out/summary.json");
        assert_eq!(s["totals"]["found"], 0, "{body}\n{}", out.describe());
        let rows = rows_by_id(&wd, "out");
        assert!(
            rows.values().all(|r| r["outcome"] != "found"),
            "a 200 that is no answer was filed as found: {body}\n{}",
            out.describe()
        );
        assert!(rows.values().any(|r| r["error_code"] == "BadResponse"), "{body}\n{}", out.describe());
    }
}

#[test]
fn a_200_moderation_answer_without_its_object_is_a_bad_answer() {
    // GetImageInfo finds the image without AuditStatus; GetMediaAuditResult
    // answers 200 with no MediaAuditResult, or with an error Code.
    for moderation in [
        r#"{"RequestId": "M"}"#,
        r#"{"RequestId": "M", "Code": "Forbidden", "MediaAuditResult": {"Suggestion": "pass"}}"#,
    ] {
        let fake = FakeServer::start(move |req, stream| match req.param("Action") {
            "GetImageInfo" => {
                let body =
                    serde_json::json!({"RequestId": "R", "ImageInfo": {"ImageId": req.param("ImageId"), "Title": "t"}});
                answer(stream, "200 OK", body.to_string().as_bytes())
            }
            _ => answer(stream, "200 OK", moderation.as_bytes()),
        });
        let wd = Workdir::new();
        let out = audit_fake(&wd, &fake, &["0123456789abcdef0123456789abcdef"])
            .args(["--qps", "0", "--max-attempts", "2", "--audit-source", "both"])
            .run();
        let rows = rows_by_id(&wd, "out");
        let r = &rows["0123456789abcdef0123456789abcdef"];
        assert_eq!(
            (r["outcome"].as_str(), r["error_code"].as_str()),
            ("failed", "BadResponse"),
            "{moderation}\n{}",
            out.describe()
        );
        assert_ne!(r["verdict"], "Normal", "never silently Normal");
    }
}
