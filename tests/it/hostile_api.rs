//! Issue 27, the API and credentials side: the AccessKey secret echoed by a
//! server, passwords in URLs, credential values in parse errors, credential
//! files and answers without end, an input that would block, loopback
//! endpoints written in other forms, keys that expired before they were
//! used, credential files other users can read, and numbers too long for a
//! float.
//!
//! Every listener binds 127.0.0.1:0 (the IPv4-mapped form `::ffff:127.0.0.1`
//! reaches the same listener); nothing here talks to any other address. The
//! runs that could grow without end or block run under `ulimit -v` and a
//! deadline ([`run_limited`]), so a regression fails instead of hanging.

use std::io::Write as _;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::common::{echoing_answer, files_under, id_file, Audit, EchoIn, Output, SimServer, TestCatalog, Workdir};
use crate::hostile_input::run_limited;
use crate::hostile_server::{
    answer, api_error, audit_fake, check_fake, rows_by_id, FakeServer, RecordingProxy, PROXY_VARS,
};

// ---------------------------------------------------------------------------
// The AccessKey secret, echoed
// ---------------------------------------------------------------------------

/// A made-up AccessKey secret whose encodings all differ: `+`, `/`, `=`,
/// `~`, `>`, a space (form encoding writes `+`), a length that base64 pads.
const SECRET: &str = "LTAI+hostile/secret=0123 4567~abcdef>>";

/// The secret in every form a server might echo it: raw; percent-encoded
/// once and twice, upper- and lower-case hex; form-encoded (`+` for a
/// space); base64 standard and URL-safe, with and without padding.
fn secret_forms() -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    use vod_image_audit::api::signing::percent_encode;
    let lower = crate::common::lower_hex;
    let once = percent_encode(SECRET);
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    let url = base64::engine::general_purpose::URL_SAFE.encode(SECRET);
    let forms = vec![
        ("raw", SECRET.to_owned()),
        ("percent once", once.clone()),
        ("percent twice", percent_encode(&once)),
        ("lower percent once", lower(&once)),
        ("lower percent twice", percent_encode(&lower(&once))),
        ("form", form_urlencoded::byte_serialize(SECRET.as_bytes()).collect()),
        ("base64", b64.clone()),
        ("base64 unpadded", b64.trim_end_matches('=').to_owned()),
        ("base64url", url.clone()),
        ("base64url unpadded", url.trim_end_matches('=').to_owned()),
    ];
    let distinct: std::collections::BTreeSet<&String> = forms.iter().map(|(_, f)| f).collect();
    assert_eq!(distinct.len(), forms.len(), "the secret must make every form different: {forms:?}");
    forms
}

fn assert_no_secret(what: &str, text: &[u8], out: &Output) {
    let text = String::from_utf8_lossy(text);
    for (name, form) in secret_forms() {
        assert!(!text.contains(&form), "{what} holds the secret ({name}: {form})\n{}", out.describe());
    }
}

/// Writes an answer with extra header lines.
fn answer_with(stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// A server that echoes the AccessKey secret everywhere it can: every text
/// field of a found image, error messages in each encoding, an XML error, a
/// redirect, a request id header, a parse error of a mistyped field, the
/// caller's ARN, and a fatal error's message. No report file, no stdout,
/// no stderr holds any form of it.
#[test]
fn an_echoed_access_key_secret_is_stored_and_shown_nowhere() {
    let forms = secret_forms();
    let f = |name: &str| forms.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    let body = echoing_answer(&f, EchoIn { url_key: "k", image_type: "form", original_name: "base64 unpadded" });
    let answers = forms.clone();
    let fake = FakeServer::start(move |req, s| {
        let raw = &answers[0].1;
        if req.param("Action") == "GetCallerIdentity" {
            let who = serde_json::json!({"AccountId": "1234567890123456", "Arn": format!("acs:ram::1234567890123456:user/{raw}"),
                "IdentityType": "RAMUser", "RequestId": format!("R-{raw}")});
            return answer(s, "200 OK", who.to_string().as_bytes());
        }
        let id = req.param("ImageId");
        match id {
            "img-title" => answer(s, "200 OK", body.as_bytes()),
            "img-xml" => {
                let xml = format!("<?xml version='1.0' encoding='UTF-8'?><Error><RequestId>R-{raw}</RequestId><Code>InvalidParameter</Code><Message>bad key {raw}</Message></Error>");
                answer_with(s, "400 Bad Request", "", xml.as_bytes());
            }
            "img-redirect" => {
                let to = format!("https://login.example.com/?next={}", answers[1].1);
                answer_with(
                    s,
                    "302 Found",
                    &format!("location: {to}\r\n"),
                    format!("moved to {to} ({raw})").as_bytes(),
                );
            }
            "img-header" => {
                let b = r#"{"ImageInfo":{"ImageId":"img-header","AuditStatus":"Normal","Title":"t"}}"#;
                answer_with(s, "200 OK", &format!("x-acs-request-id: R-{}\r\n", answers[1].1), b.as_bytes());
            }
            "img-type" => {
                let b = serde_json::json!({"ImageInfo": {"ImageId": "img-type", "Mezzanine": {"Width": raw}}});
                answer(s, "200 OK", b.to_string().as_bytes());
            }
            "img-fatal" => api_error(s, "403 Forbidden", "Forbidden.RAM", &format!("key {raw} is not allowed"), "R-f"),
            _ => {
                let i: usize = id.trim_start_matches("img-e").parse().unwrap_or(0);
                let (name, form) = &answers[i % answers.len()];
                let m = format!("The specified parameter is not valid ({name}): AccessKeySecret={form}");
                api_error(s, "400 Bad Request", "InvalidParameter", &m, &format!("R-{form}"));
            }
        }
    });
    let creds = [("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-HOSTILE-TEST"), ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)];
    let error_ids: Vec<String> = (0..forms.len()).map(|i| format!("img-e{i}")).collect();
    let mut ids = vec!["img-title", "img-xml", "img-redirect", "img-header", "img-type"];
    ids.extend(error_ids.iter().map(String::as_str));
    ids.push("img-fatal");
    let wd = Workdir::new();
    let out = audit_fake(&wd, &fake, &ids)
        .credentials(&creds)
        .args(["--max-attempts", "1", "--format", "csv,json,html"])
        .concurrency(1)
        .run();
    out.expect_code(4);
    let rows = rows_by_id(&wd, "out");
    assert_eq!(rows["img-title"]["title"], "cover ***", "the secret is replaced, the rest kept\n{}", out.describe());
    for id in &error_ids {
        assert!(rows[id]["error_message"].ends_with("AccessKeySecret=***"), "{id}: {:?}", rows[id]["error_message"]);
    }
    for path in files_under(&wd.path().join("out")) {
        assert_no_secret(&path.display().to_string(), &std::fs::read(&path).unwrap(), &out);
    }
    assert_no_secret("stdout", out.stdout.as_bytes(), &out);
    assert_no_secret("stderr", out.stderr.as_bytes(), &out);
    for id in ["img-title", "img-xml", "img-header", "img-type", "img-e5", "img-fatal"] {
        let check = check_fake(&wd, &fake, id).credentials(&creds).run();
        assert_no_secret(&format!("check {id}: stdout"), check.stdout.as_bytes(), &check);
        assert_no_secret(&format!("check {id}: stderr"), check.stderr.as_bytes(), &check);
    }
}

// ---------------------------------------------------------------------------
// Passwords in URLs, credential values in parse errors
// ---------------------------------------------------------------------------

const PASSWORD: &str = "S3cretPass";

/// A port nothing listens on: bound on 127.0.0.1:0, then closed.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn assert_no_password(out: &Output) {
    assert!(
        !out.stderr.contains(PASSWORD) && !out.stdout.contains(PASSWORD),
        "the password is printed\n{}",
        out.describe()
    );
}

/// A URL's user and password are never printed: an endpoint that carries
/// them (refused), one that is not even a URL, the STS and metadata
/// endpoint variables, a proxy that refuses the connection, a credentials
/// URI that answers 403.
#[test]
fn url_passwords_are_never_printed() {
    let cat = TestCatalog::generate(1, 2701);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let id = cat.ids()[0].clone();
    let port = closed_port();
    for endpoint in [
        format!("http://user:{PASSWORD}@127.0.0.1:{port}/"),
        format!("https://user:{PASSWORD}@vod.example.invalid/"),
        format!("http://user:{PASSWORD}@[::1/"),
        format!("http://user:{PASSWORD}@127.0.0.1:{port}/?a=b"),
    ] {
        for dry in [false, true] {
            let mut a = Audit::check(&wd, &server, &id).endpoint(&endpoint);
            if dry {
                a = a.arg("--dry-run");
            }
            let out = a.run();
            out.expect_code(2);
            assert!(out.stderr.contains("endpoint"), "{}", out.describe());
            assert_no_password(&out);
        }
    }
    for var in ["VOD_IMAGE_AUDIT_STS_ENDPOINT", "VOD_IMAGE_AUDIT_METADATA_ENDPOINT"] {
        let out = Audit::check(&wd, &server, &id).env(var, &format!("https://u:{PASSWORD}@127.0.0.1:{port}/")).run();
        out.expect_code(2);
        assert!(out.stderr.contains(var), "{}", out.describe());
        assert_no_password(&out);
    }
    let proxied = Audit::check(&wd, &server, &id)
        .endpoint("https://vod.example.invalid/")
        .env("HTTPS_PROXY", &format!("http://u:{PASSWORD}@127.0.0.1:{port}"))
        .args(["--timeout", "2s"])
        .run();
    proxied.expect_code(3);
    assert_no_password(&proxied);
    let refusing = FakeServer::start(|_, s| answer(s, "403 Forbidden", b"{\"Code\":\"Forbidden\"}"));
    let uri = refusing.url.replacen("http://", &format!("http://u:{PASSWORD}@"), 1);
    let out = Audit::check(&wd, &server, &id).credentials(&[("ALIBABA_CLOUD_CREDENTIALS_URI", &uri)]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("credentials URI"), "{}", out.describe());
    assert_no_password(&out);
    assert_eq!(server.stats().requests, 0);
}

/// A credentials URI and an STS answer whose secret is a bare number:
/// refused, exit 2, the number never shown.
#[test]
fn credential_values_are_never_quoted_in_parse_errors() {
    let cat = TestCatalog::generate(1, 2702);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let id = cat.ids()[0].clone();
    let uri = FakeServer::start(|_, s| {
        let b = r#"{"Code":"Success","AccessKeyId":"STS.x","AccessKeySecret":123456789,"SecurityToken":"t","Expiration":"2099-01-01T00:00:00Z"}"#;
        answer(s, "200 OK", b.as_bytes())
    });
    let out = Audit::check(&wd, &server, &id).credentials(&[("ALIBABA_CLOUD_CREDENTIALS_URI", &uri.url)]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("credentials URI") && out.stderr.contains("line 1 column"), "{}", out.describe());
    assert!(!out.stderr.contains("123456789"), "the number is printed\n{}", out.describe());

    let sts = FakeServer::start(|_, s| {
        let b = r#"{"RequestId":"R","Credentials":{"AccessKeyId":"STS.x","AccessKeySecret":987654321,"SecurityToken":"t","Expiration":"2099-01-01T00:00:00Z"}}"#;
        answer(s, "200 OK", b.as_bytes())
    });
    wd.write("home/.aliyun/config.json", ROLE_PROFILE);
    let out = Audit::check(&wd, &server, &id).credentials(&[]).env("VOD_IMAGE_AUDIT_STS_ENDPOINT", &sts.url).run();
    out.expect_code(2);
    assert!(out.stderr.contains("AssumeRole"), "{}", out.describe());
    assert!(!out.stderr.contains("987654321"), "the number is printed\n{}", out.describe());
}

/// A RamRoleArn profile with the simulator's default key as its base.
const ROLE_PROFILE: &str = r#"{"current": "role", "profiles": [{"name": "role", "mode": "RamRoleArn",
    "access_key_id": "SIMULATOR-KEY-ID", "access_key_secret": "simulator-secret-not-a-real-key",
    "ram_role_arn": "acs:ram::1234567890123456:role/auditor"}]}"#;

// ---------------------------------------------------------------------------
// Bounded and non-blocking reads
// ---------------------------------------------------------------------------

/// `check` against `server` under the memory limit and the deadline.
fn check_limited(wd: &Workdir, server: &SimServer, tag: &str, tune: impl FnOnce(Audit) -> Audit) -> Output {
    let audit = tune(Audit::check(wd, server, "0123456789abcdef0123456789abcdef").credentials(&[]));
    run_limited(wd, &audit, tag, None)
}

/// `~/.aliyun/config.json`, the credentials file and the OIDC token file
/// on `/dev/zero`, and a credentials URI answering 10 MB: each refused
/// with exit 2 naming it, within the memory limit, no call made.
#[test]
fn credential_files_and_answers_are_read_within_a_limit() {
    let cat = TestCatalog::generate(1, 2703);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    std::fs::create_dir_all(wd.home().join(".aliyun")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", wd.home().join(".aliyun/config.json")).unwrap();
    let out = check_limited(&wd, &server, "config", |a| a);
    out.expect_code(2);
    assert!(out.stderr.contains(".aliyun/config.json") && out.stderr.contains("larger than"), "{}", out.describe());
    std::fs::remove_file(wd.home().join(".aliyun/config.json")).unwrap();

    let out = check_limited(&wd, &server, "ini", |a| a.env("ALIBABA_CLOUD_CREDENTIALS_FILE", "/dev/zero"));
    out.expect_code(2);
    assert!(out.stderr.contains("/dev/zero") && out.stderr.contains("larger than"), "{}", out.describe());

    let out = check_limited(&wd, &server, "oidc", |a| {
        a.env("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1234567890123456:role/auditor")
            .env("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1234567890123456:oidc-provider/p")
            .env("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/dev/zero")
    });
    out.expect_code(2);
    assert!(out.stderr.contains("/dev/zero") && out.stderr.contains("larger than"), "{}", out.describe());

    let big = FakeServer::start(|_, s| {
        let mut body = br#"{"Code":"Success","AccessKeyId":"STS.x","AccessKeySecret":"s","SecurityToken":"t","Expiration":"2099-01-01T00:00:00Z","Pad":""#.to_vec();
        body.resize(10 * 1024 * 1024, b'x');
        body.extend_from_slice(b"\"}");
        answer(s, "200 OK", &body)
    });
    let out = check_limited(&wd, &server, "uri", |a| a.env("ALIBABA_CLOUD_CREDENTIALS_URI", &big.url));
    out.expect_code(2);
    assert!(out.stderr.contains("credentials URI") && out.stderr.contains("larger than"), "{}", out.describe());
    assert_eq!(server.stats().requests, 0);
}

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// `--input` naming a FIFO with no writer, or a socket: refused at once,
/// exit 2, naming it and saying to pass it on stdin. A token file or a
/// profile file that is a FIFO: refused too, instead of a wait for a
/// writer that never comes.
#[test]
fn an_input_or_credentials_file_that_would_block_is_refused_at_once() {
    let cat = TestCatalog::generate(3, 2704);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    mkfifo(&wd.path().join("ids.fifo"));
    let audit = Audit::new(&wd, &server).input("ids.fifo");
    let out = run_limited(&wd, &audit, "fifo", None);
    out.expect_code(2);
    assert!(out.stderr.contains("ids.fifo") && out.stderr.contains("--input -"), "{}", out.describe());
    let _socket = std::os::unix::net::UnixListener::bind(wd.path().join("ids.sock")).unwrap();
    let out = run_limited(&wd, &Audit::new(&wd, &server).input("ids.sock"), "sock", None);
    out.expect_code(2);
    assert!(out.stderr.contains("ids.sock"), "{}", out.describe());

    mkfifo(&wd.path().join("token.fifo"));
    let token = wd.path().join("token.fifo");
    let out = check_limited(&wd, &server, "token", |a| {
        a.env("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1234567890123456:role/auditor")
            .env("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1234567890123456:oidc-provider/p")
            .env("ALIBABA_CLOUD_OIDC_TOKEN_FILE", token.to_str().unwrap())
    });
    out.expect_code(2);
    assert!(out.stderr.contains("token.fifo") && out.stderr.contains("not a regular file"), "{}", out.describe());
    std::fs::create_dir_all(wd.home().join(".aliyun")).unwrap();
    mkfifo(&wd.home().join(".aliyun/config.json"));
    let out = check_limited(&wd, &server, "profile", |a| a);
    out.expect_code(2);
    assert!(out.stderr.contains("config.json") && out.stderr.contains("not a regular file"), "{}", out.describe());
    assert_eq!(server.stats().requests, 0);
}

/// A symlink loop at `~/.aliyun/config.json` is named as what it is, not
/// skipped as if there were no file (which ends in "no credentials ...
/// config.json does not exist"); a directory there is named too.
#[test]
fn a_symlink_loop_or_a_directory_at_the_profile_file_is_named() {
    let cat = TestCatalog::generate(1, 2705);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let dir = wd.home().join(".aliyun");
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(dir.join("config.json"), dir.join("config.json")).unwrap();
    let out = Audit::check(&wd, &server, &cat.ids()[0]).credentials(&[]).run();
    out.expect_code(2);
    assert!(
        out.stderr.contains("config.json") && out.stderr.contains("symbolic links"),
        "a loop is not a missing file\n{}",
        out.describe()
    );
    std::fs::remove_file(dir.join("config.json")).unwrap();
    std::fs::create_dir(dir.join("config.json")).unwrap();
    let out = Audit::check(&wd, &server, &cat.ids()[0]).credentials(&[]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("config.json") && out.stderr.contains("directory"), "{}", out.describe());
}

// ---------------------------------------------------------------------------
// Loopback means loopback
// ---------------------------------------------------------------------------

/// `https://[::ffff:127.0.0.1]:PORT/` and `https://localhost.:PORT/` with
/// every proxy variable set: the proxy sees nothing, neither the VOD call
/// nor the STS call that follows the endpoint. A loopback STS endpoint
/// beside a proxied VOD endpoint is not proxied either. Plain http to
/// these forms reaches the simulator.
#[test]
fn loopback_in_every_form_never_goes_through_a_proxy() {
    let cat = TestCatalog::generate(2, 2706);
    let server = SimServer::start(cat.config());
    let port = server.url.trim_end_matches('/').rsplit(':').next().unwrap().to_owned();
    let wd = Workdir::new();
    let id = cat.ids()[0].clone();
    let proxy = RecordingProxy::start();
    for endpoint in [format!("https://[::ffff:127.0.0.1]:{port}/"), format!("https://localhost.:{port}/")] {
        let mut check = Audit::check(&wd, &server, &id).endpoint(&endpoint).args(["--timeout", "2s"]);
        for var in PROXY_VARS {
            check = check.env(var, &proxy.url);
        }
        let out = check.run();
        assert_eq!(proxy.take(), Vec::<String>::new(), "{endpoint}: the proxy was connected to\n{}", out.describe());
    }
    let out = Audit::check(&wd, &server, &id)
        .endpoint("https://vod.example.invalid/")
        .env("HTTPS_PROXY", &proxy.url)
        .env("VOD_IMAGE_AUDIT_STS_ENDPOINT", &format!("https://[::ffff:127.0.0.1]:{port}/"))
        .args(["--timeout", "2s"])
        .run();
    let seen = proxy.take();
    assert!(
        seen.iter().all(|c| c.starts_with("CONNECT vod.example.invalid:443 ")),
        "the loopback STS endpoint went through the proxy: {seen:?}\n{}",
        out.describe()
    );
    for endpoint in [format!("http://[::ffff:127.0.0.1]:{port}/"), format!("http://localhost.:{port}/")] {
        let out = Audit::check(&wd, &server, &id).endpoint(&endpoint).run();
        out.expect_code(0);
    }
}

// ---------------------------------------------------------------------------
// Expired keys, a credentials URI asked once, files others can read
// ---------------------------------------------------------------------------

const STS_ID: &str = "STS.STATIC-KEY";
const STS_SECRET: &str = "sim-static-sts-secret";
const STS_TOKEN: &str = "sim-static-sts-token";

/// A simulator that also knows a static STS key.
fn server_with_static_sts(cat: &TestCatalog) -> SimServer {
    let mut config = cat.config();
    config.keys.push(vod_image_audit::sim::SimKey {
        id: STS_ID.into(),
        secret: STS_SECRET.into(),
        sts_token: Some(STS_TOKEN.into()),
    });
    SimServer::start(config)
}

/// A credentials URI answering the static STS key, expiring at
/// `expiration`; counts the times it is asked.
fn counting_uri(expiration: String) -> (FakeServer, Arc<AtomicUsize>) {
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let fake = FakeServer::start(move |_, s| {
        count.fetch_add(1, Ordering::SeqCst);
        let b = serde_json::json!({"Code": "Success", "AccessKeyId": STS_ID, "AccessKeySecret": STS_SECRET,
            "SecurityToken": STS_TOKEN, "Expiration": expiration});
        answer(s, "200 OK", b.to_string().as_bytes())
    });
    (fake, asked)
}

/// A key that expired before it was handed over, from a credentials URI,
/// from STS, or a profile's static token with a known expiry: exit 2 naming
/// the source and when it expired, no VOD call. A URI key that is good for
/// an hour is asked for once in a run, not once per call.
#[test]
fn expired_keys_are_refused_and_a_credentials_uri_is_asked_once() {
    let cat = TestCatalog::generate(10, 2707);
    let server = server_with_static_sts(&cat);
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let (stale, stale_asked) = counting_uri("2020-01-01T00:00:00Z".into());
    let out = Audit::new(&wd, &server).credentials(&[("ALIBABA_CLOUD_CREDENTIALS_URI", &stale.url)]).out("stale").run();
    out.expect_code(2);
    assert!(
        out.stderr.contains("credentials URI") && out.stderr.contains("expired at 2020-01-01T00:00:00Z"),
        "{}",
        out.describe()
    );
    assert_eq!(server.stats().requests, 0, "no call with an expired key");
    assert_eq!(stale_asked.load(Ordering::SeqCst), 1);

    let hour = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + std::time::Duration::from_secs(3600));
    let (fresh, fresh_asked) = counting_uri(hour.to_string());
    let out = Audit::new(&wd, &server).credentials(&[("ALIBABA_CLOUD_CREDENTIALS_URI", &fresh.url)]).out("fresh").run();
    out.expect_code(0);
    assert_eq!(fresh_asked.load(Ordering::SeqCst), 1, "asked once for 10 calls\n{}", out.describe());

    let sts = FakeServer::start(|_, s| {
        let b = serde_json::json!({"RequestId": "R", "Credentials": {"AccessKeyId": STS_ID, "AccessKeySecret": STS_SECRET,
            "SecurityToken": STS_TOKEN, "Expiration": "2021-06-01T00:00:00Z"}});
        answer(s, "200 OK", b.to_string().as_bytes())
    });
    wd.write("home/.aliyun/config.json", ROLE_PROFILE);
    let out = Audit::new(&wd, &server).credentials(&[]).env("VOD_IMAGE_AUDIT_STS_ENDPOINT", &sts.url).out("sts").run();
    out.expect_code(2);
    assert!(out.stderr.contains("expired at 2021-06-01T00:00:00Z"), "{}", out.describe());

    let profile = format!(
        r#"{{"current": "sts", "profiles": [{{"name": "sts", "mode": "StsToken", "access_key_id": "{STS_ID}",
        "access_key_secret": "{STS_SECRET}", "sts_token": "{STS_TOKEN}", "sts_expiration": 1600000000}}]}}"#
    );
    wd.write("home/.aliyun/config.json", profile);
    let out = Audit::new(&wd, &server).credentials(&[]).out("static").run();
    out.expect_code(2);
    assert!(
        out.stderr.contains("profile sts") && out.stderr.contains("expired at 2020-09-13T12:26:40Z"),
        "{}",
        out.describe()
    );
    assert_eq!(server.stats().by_code.get("OK").copied(), Some(10), "only the fresh run's calls");
}

/// `~/.aliyun/config.json` or the credentials file readable by other users:
/// one warning naming it, in the tool's own style; none at 0600.
#[test]
fn a_credentials_file_others_can_read_gets_one_warning() {
    use std::os::unix::fs::PermissionsExt as _;
    let cat = TestCatalog::generate(1, 2708);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    let id = cat.ids()[0].clone();
    let profile = r#"{"current": "ak", "profiles": [{"name": "ak", "mode": "AK", "access_key_id": "SIMULATOR-KEY-ID", "access_key_secret": "simulator-secret-not-a-real-key"}]}"#;
    let ini = "[default]\ntype = access_key\naccess_key_id = SIMULATOR-KEY-ID\naccess_key_secret = simulator-secret-not-a-real-key\n";
    for (name, text) in [("home/.aliyun/config.json", profile), ("home/.alibabacloud/credentials.ini", ini)] {
        let path = wd.write(name, text);
        for (mode, warned) in [(0o644, true), (0o640, true), (0o600, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let out = Audit::check(&wd, &server, &id).credentials(&[]).run();
            out.expect_code(0);
            let warnings = out.stderr.matches("vod-image-audit: warning: ").count();
            if warned {
                assert_eq!(warnings, 1, "{name} {mode:o}\n{}", out.describe());
                assert!(
                    out.stderr.contains(path.to_str().unwrap()) && out.stderr.contains("chmod 600"),
                    "{}",
                    out.describe()
                );
            } else {
                assert_eq!(warnings, 0, "{name} {mode:o}\n{}", out.describe());
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
}

// ---------------------------------------------------------------------------
// Long numbers
// ---------------------------------------------------------------------------

/// A `FileSize` of 30 digits, as a JSON number: the reports keep its
/// decimal text, digit for digit.
#[test]
fn a_file_size_of_30_digits_keeps_its_decimal_text() {
    const DIGITS: &str = "123456789012345678901234567890";
    let fake = FakeServer::start(|req, s| {
        let id = req.param("ImageId");
        let b = format!(
            r#"{{"RequestId":"R","ImageInfo":{{"ImageId":"{id}","AuditStatus":"Normal","Mezzanine":{{"FileSize":{DIGITS},"Width":20}}}}}}"#
        );
        answer(s, "200 OK", b.as_bytes())
    });
    let wd = Workdir::new();
    let out = audit_fake(&wd, &fake, &["img-big"]).args(["--format", "csv,json"]).run();
    out.expect_code(0);
    let rows = rows_by_id(&wd, "out");
    assert_eq!(rows["img-big"]["file_size"], DIGITS, "{}", out.describe());
    assert!(wd.read("out/images.jsonl").contains(DIGITS), "{}", wd.read("out/images.jsonl"));
}
