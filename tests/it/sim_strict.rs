//! The simulator is strict the way the real VOD endpoint is: these tests
//! drive it in-process on `127.0.0.1:0` with hand-built signed requests and
//! check the exact `Code` and HTTP status of every answer.
//!
//! Self-contained: the helpers (server start and stop, request building and
//! signing, XML reading) live in this file.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::stream::{self, StreamExt};
use quick_xml::events::Event;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vod_image_audit::api::signing;
use vod_image_audit::sim::{
    self, Catalog, Faults, QuotaAction, QuotaStats, SimConfig, SimKey, Simulator, Stats, ThrottleStyle,
};

const KEY_ID: &str = sim::DEFAULT_KEY_ID;
const SECRET: &str = sim::DEFAULT_KEY_SECRET;

const IMG_A: &str = "a0000000000000000000000000000001";
const IMG_B: &str = "b0000000000000000000000000000002";
const UNKNOWN: &str = "ffffffffffffffffffffffffffffffff";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// The small hand-made catalog most tests use: user text that must survive
/// JSON and XML, `FileSize` as a string and as a number, no `AuditStatus`.
fn catalog_values() -> Vec<Value> {
    vec![
        json!({
            "ImageId": IMG_A,
            "AppId": "app-1000000",
            "Title": "Breaking: \"Storm\", <b>day</b> & 'night' 封面",
            "Description": "line one\nline two",
            "ImageType": "CoverSnapshot",
            "AuditStatus": "Normal",
            "Status": "Normal",
            "CateId": 1000002,
            "CateName": "Sport, \"Live\"",
            "CreationTime": "2024-03-01T12:00:00Z",
            "Tags": "a,b",
            "RegionId": "cn-shanghai",
            "URL": "https://img.example.com/a.png?auth_key=1-0-0-x",
            "Mezzanine": {"FileSize": "123456", "FileURL": "https://x/a.png", "Width": 640, "Height": 360,
                          "OriginalFileName": "a.png"}
        }),
        json!({
            "ImageId": IMG_B,
            "Title": "Plain",
            "Status": "Uploading",
            "CreationTime": "2024-03-02T12:00:00Z",
            "Mezzanine": {"FileSize": 42, "Width": 1, "Height": 1}
        }),
    ]
}

fn small_config() -> SimConfig {
    SimConfig::new(Catalog::from_values(catalog_values()).expect("catalog"))
}

fn catalog_object(id: &str) -> Value {
    catalog_values().into_iter().find(|v| v["ImageId"] == id).expect("id in the catalog")
}

/// A running simulator: its address and state, and how to stop it.
struct Server {
    addr: SocketAddr,
    sim: Arc<Simulator>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(config: SimConfig) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let sim = Simulator::new(config);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(sim::serve(listener, sim.clone(), shutdown.clone().cancelled_owned()));
        Server { addr, sim, shutdown, task }
    }

    fn url(&self, query: &str) -> String {
        if query.is_empty() {
            format!("http://{}/", self.addr)
        } else {
            format!("http://{}/?{query}", self.addr)
        }
    }

    /// Stops the accept loop and waits for it to return.
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve returns promptly on shutdown")
            .expect("serve task did not panic");
    }
}

type Params = Vec<(String, String)>;

/// A nonce never used before in this test process.
fn nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("test-nonce-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// `YYYY-MM-DDThh:mm:ssZ` for now plus `offset_secs`.
fn timestamp(offset_secs: i64) -> String {
    let off = Duration::from_secs(offset_secs.unsigned_abs());
    let t = if offset_secs >= 0 { SystemTime::now() + off } else { SystemTime::now() - off };
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Every parameter of a correct `GetImageInfo` call, JSON answer.
fn params_for(key_id: &str, image_id: &str) -> Params {
    [
        ("AccessKeyId", key_id),
        ("Action", "GetImageInfo"),
        ("Format", "JSON"),
        ("ImageId", image_id),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureNonce", &nonce()),
        ("SignatureVersion", "1.0"),
        ("Timestamp", &timestamp(0)),
        ("Version", "2017-03-21"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn params(image_id: &str) -> Params {
    params_for(KEY_ID, image_id)
}

/// Sets (or adds) a parameter.
fn set(mut p: Params, name: &str, value: &str) -> Params {
    match p.iter_mut().find(|(k, _)| k == name) {
        Some(pair) => pair.1 = value.to_owned(),
        None => p.push((name.to_owned(), value.to_owned())),
    }
    p
}

fn without(mut p: Params, name: &str) -> Params {
    p.retain(|(k, _)| k != name);
    p
}

/// An answer: status, headers, body.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn code(&self) -> String {
        self.json()["Code"].as_str().unwrap_or("").to_owned()
    }

    /// Asserts the exact HTTP status and JSON `Code` of an error answer.
    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code().as_str()), (status, code), "body: {}", self.body);
        let v = self.json();
        for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
            assert!(v[field].as_str().is_some_and(|s| !s.is_empty()), "{field} missing in {}", self.body);
        }
    }

    #[track_caller]
    fn assert_image(&self, id: &str) {
        assert_eq!(self.status, 200, "body: {}", self.body);
        let v = self.json();
        assert_eq!(v["ImageInfo"], catalog_object(id), "body: {}", self.body);
        assert!(v["RequestId"].as_str().is_some_and(|s| !s.is_empty()));
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

/// Sends `query` (already signed) with `method` and an empty body.
async fn send_query(c: &reqwest::Client, s: &Server, method: &str, query: &str) -> reqwest::Result<Reply> {
    let url = s.url(query);
    let req = match method {
        "GET" => c.get(url),
        "POST" => c.post(url),
        other => c.request(reqwest::Method::from_bytes(other.as_bytes()).expect("method"), url),
    };
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await?;
    Ok(Reply { status, headers, body })
}

/// Signs `p` for `sign_method` with `secret` and sends it with `send_method`.
async fn call_as(
    c: &reqwest::Client,
    s: &Server,
    sign_method: &str,
    send_method: &str,
    p: &Params,
    secret: &str,
) -> Reply {
    let query = signing::signed_query(sign_method, p, secret);
    send_query(c, s, send_method, &query).await.expect("transport")
}

async fn get(c: &reqwest::Client, s: &Server, p: &Params) -> Reply {
    call_as(c, s, "GET", "GET", p, SECRET).await
}

/// Leaf elements of an XML document as (slash-joined path, text), entity
/// and character references resolved.
fn xml_leaves(xml: &str) -> Vec<(String, String)> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<(String, bool)> = Vec::new();
    let mut text = String::new();
    let mut out = Vec::new();
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("bad XML ({e}): {xml}")) {
            Event::Start(e) => {
                if let Some(parent) = stack.last_mut() {
                    parent.1 = true;
                }
                stack.push((String::from_utf8(e.name().as_ref().to_vec()).expect("UTF-8 name"), false));
                text.clear();
            }
            Event::Empty(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).expect("UTF-8 name");
                let path: Vec<&str> = stack.iter().map(|(n, _)| n.as_str()).chain([name.as_str()]).collect();
                out.push((path.join("/"), String::new()));
            }
            Event::Text(t) => text.push_str(&t.decode().expect("UTF-8 text")),
            Event::CData(t) => text.push_str(&t.decode().expect("UTF-8 text")),
            Event::GeneralRef(r) => match r.resolve_char_ref().expect("char ref") {
                Some(ch) => text.push(ch),
                None => text.push(match &*r.decode().expect("UTF-8 ref") {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    other => panic!("unknown entity &{other};"),
                }),
            },
            Event::End(_) => {
                let path: Vec<&str> = stack.iter().map(|(n, _)| n.as_str()).collect();
                let path = path.join("/");
                let (_, has_child) = stack.pop().expect("balanced");
                if !has_child {
                    out.push((path, std::mem::take(&mut text)));
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unbalanced XML: {xml}");
    out
}

fn xml_get<'a>(leaves: &'a [(String, String)], path: &str) -> Option<&'a str> {
    leaves.iter().find(|(p, _)| p == path).map(|(_, t)| t.as_str())
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` as a time.
fn parse_http_date(s: &str) -> SystemTime {
    let parts: Vec<&str> = s.split_whitespace().collect();
    assert_eq!(parts.len(), 6, "Date {s:?}");
    assert_eq!(parts[5], "GMT", "Date {s:?}");
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = months.iter().position(|m| *m == parts[2]).unwrap_or_else(|| panic!("month in {s:?}")) + 1;
    humantime::parse_rfc3339(&format!("{}-{month:02}-{}T{}Z", parts[3], parts[1], parts[4]))
        .unwrap_or_else(|e| panic!("Date {s:?}: {e}"))
}

fn secs_between(a: SystemTime, b: SystemTime) -> i64 {
    match a.duration_since(b) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// What became of one call in a fault run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Answered(u16, String),
    Transport,
}

/// One `GetImageInfo` call per id, `concurrency` at a time.
async fn call_each(c: &reqwest::Client, s: &Server, ids: &[String], concurrency: usize) -> BTreeMap<String, Outcome> {
    stream::iter(ids.iter().cloned())
        .map(|id| async move {
            let query = signing::signed_query("GET", &params(&id), SECRET);
            let outcome = match send_query(c, s, "GET", &query).await {
                Ok(r) if r.status == 200 => Outcome::Answered(200, "OK".into()),
                Ok(r) => Outcome::Answered(r.status, r.code()),
                Err(_) => Outcome::Transport,
            };
            (id, outcome)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await
}

fn generated(n: usize, seed: u64) -> (Catalog, Vec<String>) {
    let catalog = Catalog::from_values(sim::catalog::generate(n, seed, "cn-shanghai")).expect("generated catalog");
    let ids = catalog.ids().to_vec();
    (catalog, ids)
}

fn faulted(outcomes: &BTreeMap<String, Outcome>, want: &Outcome) -> BTreeSet<String> {
    outcomes.iter().filter(|(_, o)| *o == want).map(|(id, _)| id.clone()).collect()
}

/// Runs 2000 distinct-id calls against a fresh simulator with `faults` and
/// `seed`; returns the outcomes and the simulator's stats.
async fn fault_run(faults: Faults, seed: u64, pooled: bool) -> (BTreeMap<String, Outcome>, Stats) {
    let (catalog, ids) = generated(2000, 7);
    let mut config = SimConfig::new(catalog);
    config.faults = faults;
    config.seed = seed;
    let s = Server::start(config).await;
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(10));
    if !pooled {
        b = b.pool_max_idle_per_host(0);
    }
    let c = b.build().expect("client");
    let outcomes = call_each(&c, &s, &ids, 16).await;
    assert_eq!(outcomes.len(), ids.len());
    let stats = s.sim.stats();
    s.stop().await;
    (outcomes, stats)
}

#[track_caller]
fn assert_share(count: usize, total: usize, rate: f64, tolerance: f64) {
    let share = count as f64 / total as f64;
    assert!((share - rate).abs() <= tolerance, "share {share} ({count}/{total}) not within {rate} ± {tolerance}");
}

// ---------------------------------------------------------------------------
// Correct calls
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_get_and_post_return_the_catalog_object() {
    let s = Server::start(small_config()).await;
    let c = client();

    let r = get(&c, &s, &params(IMG_A)).await;
    r.assert_image(IMG_A);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("application/json"));

    // POST as the SDKs send it: every parameter in the query, empty body.
    call_as(&c, &s, "POST", "POST", &params(IMG_B), SECRET).await.assert_image(IMG_B);

    // POST with the parameters in a form body, nothing in the query.
    let body = signing::signed_query("POST", &params(IMG_A), SECRET);
    let resp = c
        .post(s.url(""))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("transport");
    let r = Reply { status: resp.status().as_u16(), headers: resp.headers().clone(), body: resp.text().await.unwrap() };
    r.assert_image(IMG_A);

    // Optional operation parameters that are valid.
    let p = set(set(params(IMG_A), "OutputType", "oss"), "AuthTimeout", "3600");
    get(&c, &s, &p).await.assert_image(IMG_A);
    get(&c, &s, &set(params(IMG_A), "OutputType", "cdn")).await.assert_image(IMG_A);

    s.stop().await;
}

// ---------------------------------------------------------------------------
// Common parameters and the signature
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_missing_common_parameter_is_named() {
    let s = Server::start(small_config()).await;
    let c = client();
    for name in
        ["AccessKeyId", "SignatureNonce", "Timestamp", "Version", "Action", "SignatureMethod", "SignatureVersion"]
    {
        let r = get(&c, &s, &without(params(IMG_A), name)).await;
        r.assert_error(400, &format!("Missing{name}"));
        // An empty value is as missing as an absent one.
        let r = get(&c, &s, &set(params(IMG_A), name, "")).await;
        r.assert_error(400, &format!("Missing{name}"));
    }
    // No Signature at all.
    let query = signing::canonical_query(&params(IMG_A));
    send_query(&c, &s, "GET", &query).await.unwrap().assert_error(400, "IncompleteSignature");
    send_query(&c, &s, "GET", &format!("{query}&Signature=")).await.unwrap().assert_error(400, "IncompleteSignature");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_and_signature_are_checked() {
    let s = Server::start(small_config()).await;
    let c = client();

    get(&c, &s, &params_for("NO-SUCH-KEY", IMG_A)).await.assert_error(404, "InvalidAccessKeyId.NotFound");
    call_as(&c, &s, "GET", "GET", &params(IMG_A), "wrong-secret").await.assert_error(400, "SignatureDoesNotMatch");

    // The method signed must be the method sent.
    call_as(&c, &s, "GET", "POST", &params(IMG_A), SECRET).await.assert_error(400, "SignatureDoesNotMatch");
    call_as(&c, &s, "POST", "GET", &params(IMG_A), SECRET).await.assert_error(400, "SignatureDoesNotMatch");

    // A parameter with an empty value is signed like any other...
    let with_empty = set(params(IMG_A), "Description", "");
    get(&c, &s, &with_empty).await.assert_image(IMG_A);
    // ...so sending it without having signed it fails.
    let signed_without = signing::signed_query("GET", &params(IMG_A), SECRET);
    let r = send_query(&c, &s, "GET", &format!("{signed_without}&Description=")).await.unwrap();
    r.assert_error(400, "SignatureDoesNotMatch");

    // A tampered value after signing.
    let query = signing::signed_query("GET", &params(IMG_A), SECRET).replace(IMG_A, IMG_B);
    send_query(&c, &s, "GET", &query).await.unwrap().assert_error(400, "SignatureDoesNotMatch");

    // Unsupported signature schemes, correctly signed otherwise.
    get(&c, &s, &set(params(IMG_A), "SignatureMethod", "HMAC-SHA256"))
        .await
        .assert_error(400, "InvalidSignatureMethod");
    get(&c, &s, &set(params(IMG_A), "SignatureVersion", "2.0")).await.assert_error(400, "InvalidSignatureVersion");

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_are_checked_for_format_and_skew() {
    let s = Server::start(small_config()).await;
    let c = client();
    let at = |offset: i64| set(params(IMG_A), "Timestamp", &timestamp(offset));

    get(&c, &s, &at(-20 * 60)).await.assert_error(400, "InvalidTimeStamp.Expired");
    get(&c, &s, &at(20 * 60)).await.assert_error(400, "InvalidTimeStamp.Expired");
    get(&c, &s, &at(-10 * 60)).await.assert_image(IMG_A);
    get(&c, &s, &at(10 * 60)).await.assert_image(IMG_A);
    for bad in ["2020-01-01 00:00:00", "2020-01-01T00:00:00", "2020-01-01T00:00:00.123Z", "yesterday"] {
        get(&c, &s, &set(params(IMG_A), "Timestamp", bad)).await.assert_error(400, "InvalidTimeStamp.Format");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_is_accepted_once() {
    let s = Server::start(small_config()).await;
    let c = client();
    let p = params(IMG_A);
    get(&c, &s, &p).await.assert_image(IMG_A);
    get(&c, &s, &p).await.assert_error(400, "SignatureNonceUsed");
    // Same nonce, re-signed with a new timestamp: still used.
    let p = set(p, "Timestamp", &timestamp(-1));
    get(&c, &s, &p).await.assert_error(400, "SignatureNonceUsed");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sts_key_needs_its_token() {
    let mut config = small_config();
    config.keys =
        vec![SimKey { id: "STS.KEY-ID".into(), secret: "sts-secret".into(), sts_token: Some("token-abc".into()) }];
    let s = Server::start(config).await;
    let c = client();
    let sts = |token: Option<&str>| {
        let p = params_for("STS.KEY-ID", IMG_A);
        match token {
            Some(t) => set(p, "SecurityToken", t),
            None => p,
        }
    };
    call_as(&c, &s, "GET", "GET", &sts(None), "sts-secret").await.assert_error(400, "MissingSecurityToken");
    call_as(&c, &s, "GET", "GET", &sts(Some("")), "sts-secret").await.assert_error(400, "MissingSecurityToken");
    call_as(&c, &s, "GET", "GET", &sts(Some("token-xyz")), "sts-secret")
        .await
        .assert_error(400, "InvalidSecurityToken.MismatchWithAccessKey");
    call_as(&c, &s, "GET", "GET", &sts(Some("token-abc")), "sts-secret").await.assert_image(IMG_A);
    // The token is signed like any parameter: adding it after signing fails.
    let query = signing::signed_query("GET", &sts(None), "sts-secret");
    send_query(&c, &s, "GET", &format!("{query}&SecurityToken=token-abc"))
        .await
        .unwrap()
        .assert_error(400, "SignatureDoesNotMatch");
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Version, action, operation parameters
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_action_and_operation_parameters_are_checked() {
    let s = Server::start(small_config()).await;
    let c = client();
    get(&c, &s, &set(params(IMG_A), "Version", "2014-05-26")).await.assert_error(400, "InvalidVersion");
    get(&c, &s, &set(params(IMG_A), "Action", "DescribeRegions")).await.assert_error(404, "InvalidApi.NotFound");
    get(&c, &s, &without(params(IMG_A), "ImageId")).await.assert_error(400, "MissingImageId");
    get(&c, &s, &set(params(IMG_A), "OutputType", "ftp")).await.assert_error(400, "InvalidParameter");
    get(&c, &s, &set(params(IMG_A), "AuthTimeout", "0")).await.assert_error(400, "InvalidParameter");
    get(&c, &s, &set(params(IMG_A), "AuthTimeout", "soon")).await.assert_error(400, "InvalidParameter");
    // Another path is not the API.
    let query = signing::signed_query("GET", &params(IMG_A), SECRET);
    let resp = c.get(format!("http://{}/other?{query}", s.addr)).send().await.unwrap();
    let r = Reply { status: resp.status().as_u16(), headers: resp.headers().clone(), body: resp.text().await.unwrap() };
    r.assert_error(404, "InvalidApi.NotFound");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_image_is_no_such_resource_with_the_full_envelope() {
    let s = Server::start(small_config()).await;
    let c = client();
    let r = get(&c, &s, &params(UNKNOWN)).await;
    r.assert_error(404, "NoSuchResource");
    let v = r.json();
    assert_eq!(v["HostId"], "vod.cn-shanghai.aliyuncs.com");
    assert!(v.get("ImageInfo").is_none());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_image_infos_reports_found_and_missing_ids() {
    let s = Server::start(small_config()).await;
    let c = client();
    let batch = |ids: &str| {
        let p = set(without(params(IMG_A), "ImageId"), "Action", "GetImageInfos");
        set(p, "ImageIds", ids)
    };
    let r = get(&c, &s, &batch(&format!("{IMG_A},{UNKNOWN},{IMG_B}"))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    // As the current batch model: no AuditStatus in the batch answer.
    let without_audit = |id| {
        let mut o = catalog_object(id);
        o.as_object_mut().unwrap().remove("AuditStatus");
        o
    };
    assert_eq!(v["ImageInfo"], json!([without_audit(IMG_A), without_audit(IMG_B)]));
    assert_eq!(v["NonExistImageIds"], json!([UNKNOWN]));

    let ids: Vec<String> = (0..21).map(|i| format!("{i:032x}")).collect();
    get(&c, &s, &batch(&ids.join(","))).await.assert_error(400, "InvalidParameter");
    let r = get(&c, &s, &batch(&ids[..20].join(","))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["NonExistImageIds"].as_array().unwrap().len(), 20);
    get(&c, &s, &without(batch(IMG_A), "ImageIds")).await.assert_error(400, "MissingImageIds");
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Format
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_is_the_default_format_for_answers_and_errors() {
    let s = Server::start(small_config()).await;
    let c = client();
    let a = catalog_object(IMG_A);

    for p in [without(params(IMG_A), "Format"), set(params(IMG_A), "Format", "XML")] {
        let r = get(&c, &s, &p).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/xml"));
        assert!(serde_json::from_str::<Value>(&r.body).is_err(), "XML expected: {}", r.body);
        let leaves = xml_leaves(&r.body);
        assert_eq!(xml_get(&leaves, "GetImageInfoResponse/ImageInfo/ImageId"), Some(IMG_A), "{}", r.body);
        // User text survives XML escaping.
        assert_eq!(xml_get(&leaves, "GetImageInfoResponse/ImageInfo/Title"), a["Title"].as_str());
        assert_eq!(xml_get(&leaves, "GetImageInfoResponse/ImageInfo/CateName"), a["CateName"].as_str());
        assert_eq!(xml_get(&leaves, "GetImageInfoResponse/ImageInfo/Mezzanine/Width"), Some("640"));
        assert!(xml_get(&leaves, "GetImageInfoResponse/RequestId").is_some_and(|s| !s.is_empty()));
    }

    let r = get(&c, &s, &without(params(UNKNOWN), "Format")).await;
    assert_eq!(r.status, 404);
    assert!(r.body.contains("<Error>") && r.body.contains("<Code>NoSuchResource</Code>"), "{}", r.body);
    let leaves = xml_leaves(&r.body);
    assert_eq!(xml_get(&leaves, "Error/Code"), Some("NoSuchResource"));
    for field in ["RequestId", "HostId", "Message", "Recommend"] {
        assert!(xml_get(&leaves, &format!("Error/{field}")).is_some_and(|s| !s.is_empty()), "{field}: {}", r.body);
    }

    // An error found before the key is known is XML too.
    let r = get(&c, &s, &without(without(params(IMG_A), "Format"), "Version")).await;
    assert_eq!((r.status, xml_get(&xml_leaves(&r.body), "Error/Code")), (400, Some("MissingVersion")));

    // JSON when asked.
    get(&c, &s, &set(params(IMG_A), "Format", "JSON")).await.assert_image(IMG_A);
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Quota
// ---------------------------------------------------------------------------

/// Fires 60 pre-signed calls at once against `qps: 20`; returns (OK, throttled answers).
async fn burst(hints: bool) -> (usize, Vec<Reply>) {
    let mut config = small_config();
    config.qps = Some(20);
    config.ratelimit_hints = hints;
    let s = Server::start(config).await;
    let c = client();
    let queries: Vec<String> = (0..60).map(|_| signing::signed_query("GET", &params(IMG_A), SECRET)).collect();
    let replies: Vec<Reply> = futures::future::join_all(queries.iter().map(|q| send_query(&c, &s, "GET", q)))
        .await
        .into_iter()
        .map(|r| r.expect("transport"))
        .collect();
    s.stop().await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let throttled: Vec<Reply> = replies.into_iter().filter(|r| r.status != 200).collect();
    for r in &throttled {
        r.assert_error(400, "Throttling.User");
    }
    // The window may straddle a second boundary: up to two quotas.
    assert!((20..=40).contains(&ok), "{ok} of 60 answered OK at qps 20");
    (ok, throttled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_quota_is_throttled() {
    let (_, throttled) = burst(false).await;
    assert!(throttled.iter().all(|r| !r.headers.contains_key("x-ratelimit-user")));

    let (_, throttled) = burst(true).await;
    for r in &throttled {
        let hint = r.headers.get("x-ratelimit-user").expect("x-ratelimit-user").to_str().unwrap();
        assert!(hint.contains("TimeLeft:") && hint.starts_with("Limit:20,"), "{hint}");
        let left: u64 = hint.split("TimeLeft:").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
        assert!((1..=1000).contains(&left), "{hint}");
    }
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_errors_come_at_the_configured_rate_and_reproducibly() {
    let faults = Faults { internal_error: 0.10, ..Faults::default() };
    let (first, stats) = fault_run(faults.clone(), 11, true).await;
    let err = Outcome::Answered(500, "InternalError".into());
    let failed = faulted(&first, &err);
    assert_share(failed.len(), first.len(), 0.10, 0.03);
    assert_eq!(faulted(&first, &Outcome::Answered(200, "OK".into())).len(), first.len() - failed.len());
    assert_eq!(stats.by_code.get("InternalError").copied(), Some(failed.len() as u64));

    let (second, _) = fault_run(faults.clone(), 11, true).await;
    assert_eq!(faulted(&second, &err), failed, "same seed, same faulted ids");
    let (other, _) = fault_run(faults, 12, true).await;
    assert_ne!(faulted(&other, &err), failed, "another seed, other faulted ids");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_comes_at_the_configured_rate() {
    let (outcomes, stats) = fault_run(Faults { unavailable: 0.10, ..Faults::default() }, 5, true).await;
    let failed = faulted(&outcomes, &Outcome::Answered(503, "ServiceUnavailable".into()));
    assert_share(failed.len(), outcomes.len(), 0.10, 0.03);
    assert_eq!(faulted(&outcomes, &Outcome::Answered(200, "OK".into())).len(), outcomes.len() - failed.len());
    assert_eq!(stats.by_code.get("ServiceUnavailable").copied(), Some(failed.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_close_the_connection_at_the_configured_rate_and_reproducibly() {
    let faults = Faults { drop: 0.05, ..Faults::default() };
    let (first, stats) = fault_run(faults.clone(), 3, false).await;
    let dropped = faulted(&first, &Outcome::Transport);
    assert_share(dropped.len(), first.len(), 0.05, 0.02);
    assert_eq!(faulted(&first, &Outcome::Answered(200, "OK".into())).len(), first.len() - dropped.len());
    // Every transport failure the client saw is a drop the simulator made (no hidden retries).
    assert_eq!(stats.by_code.get("Dropped").copied(), Some(dropped.len() as u64));
    assert_eq!(stats.requests, first.len() as u64);

    let (second, _) = fault_run(faults, 3, false).await;
    assert_eq!(faulted(&second, &Outcome::Transport), dropped, "same seed, same dropped ids");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_makes_the_client_time_out() {
    let mut config = small_config();
    config.faults = Faults { slow: 1.0, slow_delay: Duration::from_millis(300), ..Faults::default() };
    let s = Server::start(config).await;
    let c = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
    let query = signing::signed_query("GET", &params(IMG_A), SECRET);
    let err = send_query(&c, &s, "GET", &query).await.expect_err("a slow answer times out");
    assert!(err.is_timeout(), "{err:?}");
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Clock offset and key revocation
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_behind_expires_fresh_timestamps_and_shows_in_date() {
    let mut config = small_config();
    config.clock_offset_secs = -1200;
    let s = Server::start(config).await;
    let c = client();
    let r = get(&c, &s, &params(IMG_A)).await;
    r.assert_error(400, "InvalidTimeStamp.Expired");
    let date = parse_http_date(r.headers["date"].to_str().unwrap());
    let behind = secs_between(SystemTime::now(), date);
    assert!((1195..=1205).contains(&behind), "Date is {behind} s behind, expected ~1200");
    // A timestamp from the simulator's own clock passes.
    get(&c, &s, &set(params(IMG_A), "Timestamp", &timestamp(-1200))).await.assert_image(IMG_A);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_mid_run_is_not_found() {
    let mut config = small_config();
    config.revoke_key_after = Some(3);
    let s = Server::start(config).await;
    let c = client();
    for _ in 0..3 {
        get(&c, &s, &params(IMG_A)).await.assert_image(IMG_A);
    }
    get(&c, &s, &params(IMG_A)).await.assert_error(404, "InvalidAccessKeyId.NotFound");
    get(&c, &s, &params(IMG_B)).await.assert_error(404, "InvalidAccessKeyId.NotFound");
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_what_was_sent() {
    let s = Server::start(small_config()).await;
    let c = client();
    for _ in 0..3 {
        get(&c, &s, &params(IMG_A)).await.assert_image(IMG_A);
    }
    get(&c, &s, &params(IMG_B)).await.assert_image(IMG_B);
    get(&c, &s, &params(UNKNOWN)).await.assert_error(404, "NoSuchResource");
    call_as(&c, &s, "GET", "GET", &params(IMG_A), "wrong").await.assert_error(400, "SignatureDoesNotMatch");
    let batch = set(
        set(without(params(IMG_A), "ImageId"), "Action", "GetImageInfos"),
        "ImageIds",
        &format!("{IMG_A},{UNKNOWN}"),
    );
    assert_eq!(get(&c, &s, &batch).await.status, 200);

    let resp = c.get(format!("http://{}/__sim/stats", s.addr)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let stats: Value = serde_json::from_str(&resp.text().await.unwrap()).expect("stats are JSON");
    assert_eq!(stats["requests"], 7, "{stats}");
    assert_eq!(stats["by_code"], json!({"OK": 5, "NoSuchResource": 1, "SignatureDoesNotMatch": 1}), "{stats}");
    assert_eq!(stats["answers_by_image"], json!({IMG_A: 4, IMG_B: 1, UNKNOWN: 2}), "{stats}");
    for (id, n) in [(IMG_A, 4), (IMG_B, 1), (UNKNOWN, 2)] {
        assert_eq!(stats["calls_by_image"][id], n, "{stats}");
    }
    // (`calls_by_image` also carries a comma-joined key for the batch call: see
    // `calls_by_image_has_only_image_ids`, ignored until src/sim is fixed.)
    // The endpoint and the in-process snapshot agree (stats calls are not counted).
    let typed: Stats = serde_json::from_value(stats).unwrap();
    assert_eq!(typed, s.sim.stats());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting() {
    let s = Server::start(small_config()).await;
    let addr = s.addr;
    s.stop().await;
    let c = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let err = c.get(format!("http://{addr}/__sim/stats")).send().await.expect_err("nothing listens any more");
    assert!(err.is_connect(), "{err:?}");
}

// ---------------------------------------------------------------------------
// SearchMedia
// ---------------------------------------------------------------------------

/// A correct `SearchMedia` call for images with `extra` parameters, JSON answer.
fn search_params(extra: &[(&str, &str)]) -> Params {
    let mut p = set(set(without(params(IMG_A), "ImageId"), "Action", "SearchMedia"), "SearchType", "image");
    for (k, v) in extra {
        p = set(p, k, v);
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_media_is_signed_checked_and_counted_like_any_action() {
    let s = Server::start(small_config()).await;
    let c = client();
    let p = search_params(&[("Match", "CreationTime = ['2024-03-01T00:00:00Z','2024-03-02T12:00:00Z']")]);

    call_as(&c, &s, "GET", "GET", &p, "wrong-secret").await.assert_error(400, "SignatureDoesNotMatch");
    get(&c, &s, &set(p.clone(), "Timestamp", &timestamp(-3600))).await.assert_error(400, "InvalidTimeStamp.Expired");
    let once = set(p.clone(), "SignatureNonce", &nonce());
    assert_eq!(get(&c, &s, &once).await.status, 200);
    get(&c, &s, &once).await.assert_error(400, "SignatureNonceUsed");

    let r = get(&c, &s, &p).await;
    assert_eq!(r.status, 200, "body: {}", r.body);
    let v = r.json();
    assert!(v["RequestId"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(v["Total"], 2, "{v}");
    let ids: Vec<&str> = v["MediaList"].as_array().unwrap().iter().map(|m| m["MediaId"].as_str().unwrap()).collect();
    assert_eq!(ids, [IMG_B, IMG_A], "newest first");
    assert_eq!(v["MediaList"][1]["Image"], json!({"ImageId": IMG_A, "CreationTime": "2024-03-01T12:00:00Z"}));

    // A bad Match, and a page past the first 5,000 results, are refused.
    get(&c, &s, &search_params(&[("Match", "Title = 'x'")])).await.assert_error(400, "InvalidParameter");
    get(&c, &s, &search_params(&[("PageNo", "51"), ("PageSize", "100")])).await.assert_error(400, "InvalidParameter");

    // XML when asked, as for the other actions.
    let xml = get(&c, &s, &set(search_params(&[("Fields", "Title")]), "Format", "XML")).await;
    assert_eq!(xml.status, 200, "body: {}", xml.body);
    let leaves = xml_leaves(&xml.body);
    assert_eq!(xml_get(&leaves, "SearchMediaResponse/Total"), Some("2"), "{}", xml.body);
    assert_eq!(xml_get(&leaves, "SearchMediaResponse/MediaList/Image/Title"), Some("Plain"), "{}", xml.body);

    let stats = s.sim.stats();
    assert_eq!(stats.by_action.get("SearchMedia OK"), Some(&3), "{stats:?}");
    assert_eq!(stats.by_action.get("SearchMedia InvalidParameter"), Some(&2), "{stats:?}");
    assert_eq!(stats.search.pages, 3);
    assert_eq!(stats.search.over_limit, 1);
    assert_eq!(stats.search.max_page_end, 5100);
    assert_eq!(stats.search.duplicate_pages, 1, "the same page was answered twice");
    assert!(stats.answers_by_image.is_empty() && stats.calls_by_image.is_empty(), "{stats:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_media_has_a_quota_of_its_own() {
    let mut config = small_config();
    config.api_qps = BTreeMap::from([(QuotaAction::SearchMedia, Some(20))]);
    let s = Server::start(config).await;
    let c = client();
    let queries: Vec<String> = (0..60).map(|_| signing::signed_query("GET", &search_params(&[]), SECRET)).collect();
    let replies = futures::future::join_all(queries.iter().map(|q| send_query(&c, &s, "GET", q))).await;
    let ok = replies.iter().map(|r| r.as_ref().expect("transport")).filter(|r| r.status == 200).count();
    for r in replies.iter().map(|r| r.as_ref().unwrap()).filter(|r| r.status != 200) {
        r.assert_error(400, "Throttling.User");
    }
    // The window may straddle a second boundary: up to two quotas.
    assert!((20..=40).contains(&ok), "{ok} of 60 answered OK at a search quota of 20");
    // The image calls are not under the search quota.
    get(&c, &s, &params(IMG_A)).await.assert_image(IMG_A);
    s.stop().await;
}

/// Fires `n` pre-signed calls of `p` (a fresh nonce each) at once; returns the replies.
async fn fire(c: &reqwest::Client, s: &Server, n: usize, p: impl Fn() -> Params) -> Vec<Reply> {
    let queries: Vec<String> =
        (0..n).map(|_| signing::signed_query("GET", &set(p(), "SignatureNonce", &nonce()), SECRET)).collect();
    futures::future::join_all(queries.iter().map(|q| send_query(c, s, "GET", q)))
        .await
        .into_iter()
        .map(|r| r.expect("transport"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_action_has_a_quota_of_its_own() {
    // GetImageInfo gets none at all, GetImageInfos is unlimited, and the
    // rest (GetMediaAuditResult, SearchMedia) fall back to qps: 5 each.
    let mut config = small_config();
    config.qps = Some(5);
    config.api_qps = BTreeMap::from([(QuotaAction::GetImageInfo, Some(0)), (QuotaAction::GetImageInfos, None)]);
    let s = Server::start(config).await;
    let c = client();
    let batch = || {
        set(set(without(params(IMG_A), "ImageId"), "Action", "GetImageInfos"), "ImageIds", &format!("{IMG_A},{IMG_B}"))
    };
    let audit = || set(set(without(params(IMG_A), "ImageId"), "Action", "GetMediaAuditResult"), "MediaId", IMG_A);

    for r in fire(&c, &s, 10, || params(IMG_A)).await {
        r.assert_error(400, "Throttling.User");
    }
    // GetImageInfo's empty quota takes nothing from the others'.
    for r in fire(&c, &s, 30, batch).await {
        assert_eq!(r.status, 200, "GetImageInfos has no quota: {}", r.body);
    }
    let audits = fire(&c, &s, 30, audit).await;
    let searches = fire(&c, &s, 30, || search_params(&[])).await;
    for (what, replies) in [("GetMediaAuditResult", &audits), ("SearchMedia", &searches)] {
        let ok = replies.iter().filter(|r| r.status == 200).count();
        // The window may straddle a second boundary: up to two quotas.
        assert!((5..=10).contains(&ok), "{what}: {ok} of 30 answered OK at a quota of 5");
        for r in replies.iter().filter(|r| r.status != 200) {
            r.assert_error(400, "Throttling.User");
        }
    }

    let stats = s.sim.stats();
    let quota = |action: &str| stats.quota.get(action).cloned().unwrap_or_default();
    assert_eq!(quota("GetImageInfo"), QuotaStats { admitted: 0, throttled: 10 }, "{stats:?}");
    assert_eq!(quota("GetImageInfos"), QuotaStats { admitted: 30, throttled: 0 }, "{stats:?}");
    for (action, replies) in [("GetMediaAuditResult", &audits), ("SearchMedia", &searches)] {
        let ok = replies.iter().filter(|r| r.status == 200).count() as u64;
        assert_eq!(quota(action), QuotaStats { admitted: ok, throttled: 30 - ok }, "{action}: {stats:?}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forbidden_flowcontrol_style_throttles_with_403_and_x_acs_retry_after() {
    let mut config = small_config();
    config.api_qps = BTreeMap::from([(QuotaAction::GetImageInfo, Some(0))]);
    config.throttle_style = ThrottleStyle::ForbiddenFlowControl;
    let s = Server::start(config.clone()).await;
    let c = client();
    for r in fire(&c, &s, 5, || params(IMG_A)).await {
        r.assert_error(403, "Forbidden.FlowControl");
        let hint = r.headers.get("x-acs-retry-after").expect("x-acs-retry-after").to_str().unwrap();
        let ms: u64 = hint.parse().unwrap_or_else(|_| panic!("{hint:?} is not milliseconds"));
        assert!((1..=1000).contains(&ms), "{hint}: the milliseconds left in the window");
    }
    assert_eq!(s.sim.stats().by_code.get("Forbidden.FlowControl"), Some(&5));
    s.stop().await;

    // A fixed value, whatever the window: for clients' tests of odd hints.
    for value in ["999999999", "0", "", "abc"] {
        let mut config = config.clone();
        config.throttle_retry_after = Some(value.to_owned());
        let s = Server::start(config).await;
        let r = get(&c, &s, &params(IMG_A)).await;
        r.assert_error(403, "Forbidden.FlowControl");
        assert_eq!(r.headers.get("x-acs-retry-after").map(|v| v.to_str().unwrap()), Some(value));
        s.stop().await;
    }
    // The default style sends no x-acs-retry-after unless told to.
    let mut config = small_config();
    config.api_qps = BTreeMap::from([(QuotaAction::GetImageInfo, Some(0))]);
    let s = Server::start(config).await;
    let r = get(&c, &s, &params(IMG_A)).await;
    r.assert_error(400, "Throttling.User");
    assert!(!r.headers.contains_key("x-acs-retry-after"), "{:?}", r.headers);
    s.stop().await;
}

// ---------------------------------------------------------------------------
// Known simulator bugs (reported with patches; un-ignore once fixed)
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn calls_by_image_has_only_image_ids() {
    let s = Server::start(small_config()).await;
    let c = client();
    let batch =
        set(set(without(params(IMG_A), "ImageId"), "Action", "GetImageInfos"), "ImageIds", &format!("{IMG_A},{IMG_B}"));
    assert_eq!(get(&c, &s, &batch).await.status, 200);
    let calls = s.sim.stats().calls_by_image;
    assert_eq!(calls, BTreeMap::from([(IMG_A.to_owned(), 1), (IMG_B.to_owned(), 1)]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn shutdown_also_ends_kept_alive_connections() {
    let s = Server::start(small_config()).await;
    let c = client();
    get(&c, &s, &params(IMG_A)).await.assert_image(IMG_A);
    let addr = s.addr;
    s.stop().await;
    // The pooled connection from the call above must not still be answered.
    let query = signing::signed_query("GET", &params(IMG_A), SECRET);
    let r = c.get(format!("http://{addr}/?{query}")).timeout(Duration::from_secs(2)).send().await;
    assert!(r.is_err(), "a stopped simulator still answered: {:?}", r.map(|r| r.status()));
}
