//! `run --notify`: news of a run, where the team works: one message per run
//! and URL to a DingTalk, Feishu/Lark or Slack robot, or a JSON webhook.
//!
//! The formats, as each robot documents its webhook:
//!
//! - DingTalk custom robot: `{"msgtype": "markdown", "markdown": {"title",
//!   "text"}}`; with the "signature" security setting, the URL gains
//!   `timestamp` (ms) and `sign` = base64(HMAC-SHA256(secret, timestamp +
//!   "\n" + secret)), URL-encoded; the answer's `errcode` is 0 on success
//!   (open.dingtalk.com/document/robots/custom-robot-access,
//!   .../robots/customize-robot-security-settings).
//! - Feishu/Lark custom bot: `{"msg_type": "text", "content": {"text"}}`;
//!   the answer's `code` is 0 on success; a body over 20 KB is refused
//!   (open.feishu.cn/document/client-docs/bot-v3/add-custom-bot).
//! - Slack incoming webhook: `{"text"}` in mrkdwn, where `&`, `<` and `>`
//!   are escaped (api.slack.com/messaging/webhooks).
//! - `json`: this tool's own object ([`json_body`]), for anything else.
//!
//! Owns choosing whether to send (`--notify-on`), the message (one list of
//! lines, [`lines`], every format built from it), the delivery (bounded:
//! [`ATTEMPTS`] attempts with backoff, each at most [`ATTEMPT_TIMEOUT`], all
//! of them within `--notify-timeout`), and the record of it. A delivery
//! never changes the run's exit code or its reports.
//!
//! The message carries the manifest's digest, so it is sent after the
//! manifest is written and signed; its delivery status therefore goes into a
//! file of its own, `notifications.json`, written after the manifest and not
//! listed in it: the evidence is sealed before the news leaves, and the
//! digest in a chat still matches the manifest on disk.
//!
//! A webhook URL's query and token-like path segments are secrets (robot
//! tokens): they are shown as `***` ([`shown`]) on stderr, in the manifest's
//! command line and in `notifications.json`. Plain `http://` goes to
//! loopback only; the proxy rule is the API client's ([`choose_proxy`]).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{CmdError, Exit};
use super::values::{parse_duration, NotifyOn};
use crate::api::endpoints::Endpoint;
use crate::api::error::escape_for_terminal;
use crate::api::proxy::{choose_proxy, ProxyEnv, ProxyUrl};
use crate::api::secret::Secret;
use crate::domain::record::category_label;
use crate::report::summary::Summary;
use crate::rundir::files::write_atomic;
use crate::rundir::{CHANGES_CSV, IMAGES_CSV, IMAGES_JSONL, NOTIFICATIONS_JSON};

named_enum! {
    /// How a message is shaped for its receiver.
    pub(crate) enum NotifyFormat {
        Json => "json",
        DingTalk => "dingtalk",
        Feishu => "feishu",
        Slack => "slack",
    }
}

/// Attempts per URL: a robot's brief outage is ridden out, a dead one not
/// waited on for long.
pub(crate) const ATTEMPTS: u32 = 3;
/// The wait before the second attempt, doubled before each next one.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// One attempt at most: a robot answers in well under a second.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Every delivery of a run at most (`--notify-timeout`): a receiver that
/// never answers delays the end of a run by this much, no more.
pub(crate) const DEFAULT_NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// Newly blocked images a message lists; the rest are counted.
pub(crate) const MAX_LISTED: usize = 50;
/// A title or reason longer than this is cut in a message (Feishu refuses
/// a body over 20 KB; 50 lines of this fit).
const MAX_TEXT: usize = 80;
/// The most of a robot's answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// One `--notify` URL, checked. Its `Debug` shows the URL without secrets.
pub(crate) struct Target {
    pub format: NotifyFormat,
    url: Url,
    /// The URL as shown: [`shown`].
    pub shown: String,
    proxy: Option<ProxyUrl>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({} {})", self.format.as_str(), self.shown)
    }
}

/// The URL with its secrets hidden: scheme, host, port, the path with each
/// segment that could be a token (anything but a short lower-case word)
/// replaced by `***`, and `?***` for any query.
pub(crate) fn shown(url: &Url) -> String {
    let word =
        |s: &str| !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_');
    let path: Vec<&str> = url.path().split('/').map(|s| if s.is_empty() || word(s) { s } else { "***" }).collect();
    let host = url.host_str().unwrap_or_default();
    let port = url.port().map_or(String::new(), |p| format!(":{p}"));
    let query = if url.query().is_some() { "?***" } else { "" };
    format!("{}://{host}{port}{}{query}", url.scheme(), path.join("/"))
}

/// The format a robot's host name implies; `json` for any other host.
pub(crate) fn format_for_host(host: &str) -> NotifyFormat {
    let host = host.to_ascii_lowercase();
    let is = |name: &str| host == name || host.ends_with(&format!(".{name}"));
    if is("oapi.dingtalk.com") {
        NotifyFormat::DingTalk
    } else if is("open.feishu.cn") || is("open.larksuite.com") {
        NotifyFormat::Feishu
    } else if is("hooks.slack.com") {
        NotifyFormat::Slack
    } else {
        NotifyFormat::Json
    }
}

/// Checks one `--notify [FORMAT=]URL`.
pub(crate) fn parse_target(arg: &str, env: &ProxyEnv) -> Result<Target, String> {
    let (format, text) = match arg.split_once('=') {
        Some((f, rest)) if !f.contains(':') && !f.contains('/') => {
            (Some(f.parse::<NotifyFormat>().map_err(|e| format!("--notify {f}=...: {e}"))?), rest)
        }
        _ => (None, arg),
    };
    let url = Url::parse(text).map_err(|e| format!("--notify: not a URL ({e})"))?;
    let shown = shown(&url);
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("--notify {shown}: a user or password in the URL is not supported"));
    }
    let host = url.host_str().ok_or_else(|| format!("--notify {shown}: no host"))?;
    // Plain http to loopback only, and the API client's proxy rule: decided
    // on the URL's origin, which carries no secret.
    let mut origin = url.clone();
    origin.set_path("/");
    origin.set_query(None);
    origin.set_fragment(None);
    let endpoint = Endpoint::parse(origin.as_str())
        .map_err(|e| format!("--notify {shown}: {e}").replace("endpoint", "webhook"))?;
    let proxy = choose_proxy(&endpoint, env).map_err(|e| format!("--notify {shown}: {e}"))?;
    Ok(Target { format: format.unwrap_or_else(|| format_for_host(host)), url, shown, proxy })
}

/// The command line with every `--notify` URL shown without its secrets,
/// as the manifest records it.
pub(crate) fn mask_argv(argv: Vec<String>) -> Vec<String> {
    let mask = |value: &str| {
        let (prefix, url) = match value.split_once('=') {
            Some((f, rest)) if !f.contains(':') && !f.contains('/') => (format!("{f}="), rest),
            _ => (String::new(), value),
        };
        match Url::parse(url) {
            Ok(u) => format!("{prefix}{}", shown(&u)),
            Err(_) => "***".to_owned(),
        }
    };
    let mut out = Vec::with_capacity(argv.len());
    let mut next_is_url = false;
    for a in argv {
        if next_is_url {
            out.push(mask(&a));
            next_is_url = false;
        } else if let Some(v) = a.strip_prefix("--notify=") {
            out.push(format!("--notify={}", mask(v)));
        } else {
            next_is_url = a == "--notify";
            out.push(a);
        }
    }
    out
}

/// `--notify*`, checked before any call.
#[derive(Debug, Default)]
pub(crate) struct NotifySettings {
    pub targets: Vec<Target>,
    pub on: Vec<NotifyOn>,
    /// `--notify-secret-env`: the DingTalk robot's signing secret.
    pub secret: Option<Secret>,
    pub timeout: Duration,
}

impl NotifySettings {
    /// Checks the URLs, reads the secret's variable, parses the timeout.
    pub(crate) fn from_args(
        urls: &[String],
        on: &[NotifyOn],
        secret_env: Option<&str>,
        timeout: Option<&str>,
    ) -> Result<Self, CmdError> {
        let env = ProxyEnv::from_process();
        let targets =
            urls.iter().map(|u| parse_target(u, &env).map_err(CmdError::usage)).collect::<Result<Vec<_>, _>>()?;
        let secret = match secret_env {
            Some(var) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Some(Secret::new(v.trim())),
                _ => {
                    return Err(CmdError::usage(format!(
                        "--notify-secret-env {var}: the variable is not set (or empty, or not UTF-8); export the DingTalk robot's signing secret (SEC...) in it"
                    )))
                }
            },
            None => None,
        };
        if secret.is_some() && !targets.iter().any(|t| t.format == NotifyFormat::DingTalk) {
            return Err(CmdError::usage("--notify-secret-env signs DingTalk messages: give a DingTalk --notify URL"));
        }
        let timeout = match timeout {
            Some(t) => parse_duration("--notify-timeout", t)?,
            None => DEFAULT_NOTIFY_TIMEOUT,
        };
        Ok(NotifySettings { targets, on: on.to_vec(), secret, timeout })
    }
}

/// Whether `--notify-on` asks for this run's news.
pub(crate) fn should_send(on: &[NotifyOn], alerted: bool, problem: bool) -> bool {
    on.iter().any(|o| match o {
        NotifyOn::Always => true,
        NotifyOn::Alert => alerted,
        NotifyOn::Problem => problem,
    })
}

/// Whether a run had a problem: failed ids, a stop, or a verdict or an
/// inventory that cannot be trusted.
pub(crate) fn is_problem(summary: &Summary, exit: Exit) -> bool {
    summary.totals.failed > 0
        || !summary.complete
        || matches!(
            exit,
            Exit::Stopped | Exit::Interrupted | Exit::AuditStatusMissing | Exit::InventoryIncomplete | Exit::Internal
        )
}

/// A newly blocked image, as a message lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Listed {
    pub image_id: String,
    pub title: Option<String>,
    pub category: String,
    pub reasons: Option<String>,
}

/// What a message says: the same for every format.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct News {
    /// `alert`, `problem` or `ok`.
    pub status: String,
    pub exit_code: u8,
    pub run_dir: String,
    pub complete: bool,
    pub unique_ids: u64,
    pub found: u64,
    pub missing: u64,
    pub failed: u64,
    pub blocked: u64,
    pub unreviewed_blocked: u64,
    /// `--fail-on` kinds that happened, `kind count`.
    pub alerts: Vec<String>,
    pub changes: Option<BTreeMap<String, u64>>,
    pub newly_blocked: Vec<Listed>,
    /// Newly blocked images beyond those listed.
    pub newly_blocked_more: u64,
    pub manifest_sha256: String,
}

impl News {
    /// The news of a run, from its summary and the files in `dir`.
    pub(crate) fn of(summary: &Summary, exit: Exit, alerts: &[String], dir: &Path, manifest_sha256: &str) -> Self {
        let t = &summary.totals;
        let changes = summary.changes.as_ref().map(|c| c.counts.clone());
        let total_new = changes.as_ref().and_then(|c| c.get("newly_blocked").copied()).unwrap_or(0);
        let newly_blocked = if total_new > 0 { newly_blocked(dir, MAX_LISTED) } else { Vec::new() };
        News {
            status: match (alerts.is_empty(), is_problem(summary, exit)) {
                (false, _) => "alert",
                (true, true) => "problem",
                (true, false) => "ok",
            }
            .to_owned(),
            exit_code: exit.code(),
            run_dir: dir.display().to_string(),
            complete: summary.complete,
            unique_ids: t.unique_ids,
            found: t.found,
            missing: t.missing,
            failed: t.failed,
            blocked: summary.blocked(),
            unreviewed_blocked: summary.review.unreviewed_blocked,
            alerts: alerts.to_vec(),
            changes,
            newly_blocked_more: total_new.saturating_sub(newly_blocked.len() as u64),
            newly_blocked,
            manifest_sha256: manifest_sha256.to_owned(),
        }
    }
}

/// The first `limit` newly blocked images of the run in `dir`: their ids
/// from `changes.csv`, their title, category and reasons from
/// `images.jsonl` (raw values), else `images.csv`. A file that cannot be
/// read gives fewer rows, never an error: the news is not the evidence.
fn newly_blocked(dir: &Path, limit: usize) -> Vec<Listed> {
    #[derive(Deserialize)]
    struct Row {
        image_id: String,
        change: String,
    }
    #[derive(Deserialize)]
    struct Image {
        image_id: String,
        title: Option<String>,
        cate_id: Option<i64>,
        cate_name: Option<String>,
        reasons: Option<String>,
    }
    let Ok(mut changes) = csv::Reader::from_path(dir.join(CHANGES_CSV)) else { return Vec::new() };
    let mut ids: Vec<String> = changes
        .deserialize::<Row>()
        .map_while(Result::ok)
        .filter(|r| r.change == "newly_blocked")
        .map(|r| r.image_id)
        .take(limit)
        .collect();
    ids.dedup();
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut found: BTreeMap<String, Listed> = BTreeMap::new();
    let mut keep = |i: Image| {
        if wanted.contains(i.image_id.as_str()) {
            let category = category_label(i.cate_id, i.cate_name.as_deref());
            found.insert(
                i.image_id.clone(),
                Listed { image_id: i.image_id, title: i.title, category, reasons: i.reasons },
            );
        }
    };
    if let Ok(text) = std::fs::File::open(dir.join(IMAGES_JSONL)) {
        use std::io::BufRead;
        for line in std::io::BufReader::new(text).lines().map_while(Result::ok) {
            if let Ok(i) = serde_json::from_str::<Image>(&line) {
                keep(i);
            }
        }
    } else if let Ok(mut rdr) = csv::Reader::from_path(dir.join(IMAGES_CSV)) {
        rdr.deserialize::<Image>().map_while(Result::ok).for_each(&mut keep);
    }
    ids.into_iter().map(|id| found.remove(&id).unwrap_or(Listed { image_id: id, ..Default::default() })).collect()
}

/// Server or user text made safe for one line of a message: no control
/// characters, cut to [`MAX_TEXT`] characters.
fn one_line(s: &str) -> String {
    let clean: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match clean.char_indices().nth(MAX_TEXT) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean,
    }
}

/// Text for a markdown receiver: the characters that format escaped.
fn md(s: &str, format: NotifyFormat) -> String {
    let s = one_line(s);
    match format {
        NotifyFormat::Slack => s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;"),
        NotifyFormat::DingTalk => s.chars().fold(String::new(), |mut o, c| {
            if "\\`*_[]()#<>|!".contains(c) {
                o.push('\\');
            }
            o.push(c);
            o
        }),
        NotifyFormat::Json | NotifyFormat::Feishu => s,
    }
}

/// The title of a message.
pub(crate) fn title(n: &News) -> String {
    let what = match n.status.as_str() {
        "alert" => format!("alert: {}", n.alerts.join(", ")),
        "problem" => format!("problem (exit {})", n.exit_code),
        _ => "done".to_owned(),
    };
    format!("vod-image-audit {what}")
}

/// The message as lines, for the text formats: the one list every format
/// shows.
pub(crate) fn lines(n: &News, format: NotifyFormat) -> Vec<String> {
    let bold = |s: String| match format {
        NotifyFormat::DingTalk => format!("**{s}**"),
        NotifyFormat::Slack => format!("*{s}*"),
        _ => s,
    };
    let code = |s: &str| match format {
        NotifyFormat::DingTalk | NotifyFormat::Slack => format!("`{s}`"),
        _ => s.to_owned(),
    };
    let mut out = vec![bold(title(n))];
    out.push(format!(
        "Run {} ({}, exit {})",
        md(&n.run_dir, format),
        if n.complete { "complete" } else { "incomplete" },
        n.exit_code
    ));
    out.push(format!(
        "{} ids: {} found ({} blocked, {} without a review), {} missing, {} failed",
        n.unique_ids, n.found, n.blocked, n.unreviewed_blocked, n.missing, n.failed
    ));
    if let Some(c) = &n.changes {
        let counts: Vec<String> = crate::report::changes::CHANGE_KINDS
            .iter()
            .map(|k| format!("{} {}", md(k, format), c.get(*k).copied().unwrap_or(0)))
            .collect();
        out.push(format!("Changes: {}", counts.join(", ")));
    }
    if !n.newly_blocked.is_empty() {
        out.push(bold("Newly blocked:".to_owned()));
        for i in &n.newly_blocked {
            let mut line = format!("- {}", code(&i.image_id));
            if let Some(t) = i.title.as_deref().filter(|t| !t.is_empty()) {
                line += &format!(" {}", md(t, format));
            }
            if !i.category.is_empty() {
                line += &format!(" ({})", md(&i.category, format));
            }
            if let Some(r) = i.reasons.as_deref().filter(|r| !r.is_empty()) {
                line += &format!(": {}", md(r, format));
            }
            out.push(line);
        }
        if n.newly_blocked_more > 0 {
            out.push(format!("- and {} more (changes.csv)", n.newly_blocked_more));
        }
    }
    out.push(format!("manifest.json SHA-256 {}", code(&n.manifest_sha256)));
    out
}

/// The `json` format's body.
pub(crate) fn json_body(n: &News) -> serde_json::Value {
    let mut v = serde_json::to_value(n).expect("the news serializes");
    v["tool"] = serde_json::json!("vod-image-audit");
    v["title"] = serde_json::json!(title(n));
    v
}

/// The body for a receiver of `format`.
pub(crate) fn body(n: &News, format: NotifyFormat) -> serde_json::Value {
    match format {
        NotifyFormat::Json => json_body(n),
        // DingTalk's markdown breaks lines on a blank line only.
        NotifyFormat::DingTalk => serde_json::json!({
            "msgtype": "markdown",
            "markdown": {"title": title(n), "text": lines(n, format).join("\n\n")},
        }),
        NotifyFormat::Feishu => {
            serde_json::json!({"msg_type": "text", "content": {"text": lines(n, format).join("\n")}})
        }
        NotifyFormat::Slack => serde_json::json!({"text": lines(n, format).join("\n")}),
    }
}

/// DingTalk's `sign` for `timestamp_ms`: base64(HMAC-SHA256(secret,
/// timestamp + "\n" + secret)), before URL-encoding.
pub(crate) fn dingtalk_sign(secret: &str, timestamp_ms: u128) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// How one delivery went, as `notifications.json` records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Delivery {
    pub format: &'static str,
    /// The URL without its secrets.
    pub url: String,
    /// `delivered` or `failed`.
    pub status: &'static str,
    pub attempts: u32,
    pub error: Option<String>,
}

/// What one attempt's answer means.
enum Attempt {
    Delivered,
    /// Worth another attempt (a timeout, a reset, 429, 5xx).
    Retry(String),
    /// Not worth one (a refused token or signature, a 4xx).
    Give(String),
}

/// Reads the robot's answer: 2xx, and for DingTalk and Feishu a zero code
/// in the body.
async fn judge(format: NotifyFormat, mut resp: reqwest::Response) -> Attempt {
    let status = resp.status();
    // A robot's answer is a few bytes; more is not read.
    let mut raw = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        raw.extend_from_slice(&chunk);
        if raw.len() > MAX_ANSWER {
            break;
        }
    }
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let text = escape_for_terminal(&one_line(&raw)).into_owned();
    if status.as_u16() == 429 || status.is_server_error() {
        return Attempt::Retry(format!("HTTP {}: {text}", status.as_u16()));
    }
    if !status.is_success() {
        return Attempt::Give(format!("HTTP {}: {text}", status.as_u16()));
    }
    let code = |key: &str| serde_json::from_str::<serde_json::Value>(&raw).ok().and_then(|v| v.get(key)?.as_i64());
    let refused = match format {
        NotifyFormat::DingTalk => code("errcode").filter(|c| *c != 0),
        NotifyFormat::Feishu => code("code").filter(|c| *c != 0),
        _ => None,
    };
    match refused {
        Some(c) => Attempt::Give(format!("the robot refused the message (code {c}): {text}")),
        None => Attempt::Delivered,
    }
}

/// Delivers `body` to `t`, retrying, until `deadline`.
async fn deliver(
    t: &Target,
    body: &serde_json::Value,
    secret: Option<&Secret>,
    deadline: tokio::time::Instant,
) -> Delivery {
    let mut d =
        Delivery { format: t.format.as_str(), url: t.shown.clone(), status: "failed", attempts: 0, error: None };
    let builder = reqwest::Client::builder();
    let builder = match &t.proxy {
        Some(p) => match reqwest::Proxy::https(p.url().as_str()) {
            Ok(p) => builder.proxy(p),
            Err(e) => {
                d.error = Some(format!("the proxy: {e}"));
                return d;
            }
        },
        None => builder.no_proxy(),
    };
    let client = match builder.connect_timeout(ATTEMPT_TIMEOUT).timeout(ATTEMPT_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            d.error = Some(format!("the HTTP client: {e}"));
            return d;
        }
    };
    let mut backoff = FIRST_BACKOFF;
    let outcome = tokio::time::timeout_at(deadline, async {
        loop {
            d.attempts += 1;
            let mut url = t.url.clone();
            if let (NotifyFormat::DingTalk, Some(s)) = (t.format, secret) {
                // A fresh timestamp each attempt: DingTalk accepts one within an hour.
                let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
                url.query_pairs_mut()
                    .append_pair("timestamp", &ms.to_string())
                    .append_pair("sign", &dingtalk_sign(s.expose(), ms));
            }
            let request =
                client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_string());
            let attempt = match request.send().await {
                Ok(resp) => judge(t.format, resp).await,
                // The error's text can hold the URL, and so its token: said without it.
                Err(e) if e.is_timeout() => Attempt::Retry("no answer in time".to_owned()),
                Err(e) if e.is_connect() => Attempt::Retry("cannot connect".to_owned()),
                Err(_) => Attempt::Retry("the connection failed".to_owned()),
            };
            match attempt {
                Attempt::Delivered => return Ok(()),
                Attempt::Give(e) => return Err(e),
                Attempt::Retry(e) if d.attempts >= ATTEMPTS => return Err(e),
                Attempt::Retry(e) => {
                    d.error = Some(e);
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
            }
        }
    })
    .await;
    match outcome {
        Ok(Ok(())) => {
            d.status = "delivered";
            d.error = None;
        }
        Ok(Err(e)) => d.error = Some(e),
        Err(_) => {
            d.error = Some(match d.error.take() {
                Some(e) => format!("--notify-timeout passed; the last attempt: {e}"),
                None => "--notify-timeout passed with no answer".to_owned(),
            })
        }
    }
    d
}

/// `notifications.json`.
#[derive(Serialize)]
struct DeliveryFile<'a> {
    manifest_sha256: &'a str,
    notifications: &'a [Delivery],
}

/// The end of `run`: sends the news when `--notify-on` asks for it, records
/// how each delivery went in `notifications.json` and says on stderr which
/// failed. Never changes the exit code.
pub(crate) async fn after_run(
    s: &NotifySettings,
    summary: &Summary,
    exit: Exit,
    alerts: &[String],
    dir: &Path,
    manifest_sha256: &str,
) {
    if s.targets.is_empty() || !should_send(&s.on, !alerts.is_empty(), is_problem(summary, exit)) {
        return;
    }
    let news = News::of(summary, exit, alerts, dir, manifest_sha256);
    let deadline = tokio::time::Instant::now() + s.timeout;
    let sends = s.targets.iter().map(|t| {
        let body = body(&news, t.format);
        async move { deliver(t, &body, s.secret.as_ref(), deadline).await }
    });
    let done = futures::future::join_all(sends).await;
    for d in done.iter().filter(|d| d.status != "delivered") {
        eprintln!(
            "vod-image-audit: warning: the {} notification to {} failed after {} attempts: {} (the run and its reports are unaffected)",
            d.format,
            d.url,
            d.attempts,
            d.error.as_deref().unwrap_or("unknown")
        );
    }
    let file = DeliveryFile { manifest_sha256, notifications: &done };
    if let Err(e) = write_atomic(dir, NOTIFICATIONS_JSON, |w| {
        serde_json::to_writer_pretty(&mut *w, &file)?;
        w.write_all(b"\n")
    }) {
        eprintln!("vod-image-audit: warning: writing {NOTIFICATIONS_JSON}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_host_unless_named() {
        let env = ProxyEnv::default();
        let f = |u: &str| parse_target(u, &env).unwrap().format;
        assert_eq!(f("https://oapi.dingtalk.com/robot/send?access_token=x"), NotifyFormat::DingTalk);
        assert_eq!(f("https://open.feishu.cn/open-apis/bot/v2/hook/abc"), NotifyFormat::Feishu);
        assert_eq!(f("https://open.larksuite.com/open-apis/bot/v2/hook/abc"), NotifyFormat::Feishu);
        assert_eq!(f("https://hooks.slack.com/services/T/B/X"), NotifyFormat::Slack);
        assert_eq!(f("https://alerts.example.com/hook"), NotifyFormat::Json);
        assert_eq!(f("slack=https://chat.example.com/hook"), NotifyFormat::Slack);
        assert!(parse_target("teams=https://x.example.com/", &env).unwrap_err().contains("not one of json, dingtalk"));
        assert!(parse_target("http://hooks.example.com/x", &env).unwrap_err().contains("plain http"));
        assert!(parse_target("http://127.0.0.1:8/x", &env).is_ok());
        assert!(parse_target("https://u:p@hooks.example.com/x", &env).is_err());
    }

    #[test]
    fn secrets_in_a_url_are_never_shown() {
        let u = |s: &str| shown(&Url::parse(s).unwrap());
        assert_eq!(
            u("https://oapi.dingtalk.com/robot/send?access_token=abc"),
            "https://oapi.dingtalk.com/robot/send?***"
        );
        assert_eq!(
            u("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/services/***/***/***"
        );
        assert_eq!(
            u("https://open.feishu.cn/open-apis/bot/v2/hook/8f3c2a-77"),
            "https://open.feishu.cn/open-apis/bot/***/hook/***"
        );
        let argv = mask_argv(vec![
            "run".into(),
            "--notify".into(),
            "dingtalk=https://h.example.com/a?t=SECRET".into(),
            "--notify=https://h.example.com/T0K3N".into(),
        ]);
        assert_eq!(
            argv,
            ["run", "--notify", "dingtalk=https://h.example.com/a?***", "--notify=https://h.example.com/***"]
        );
    }

    #[test]
    fn dingtalk_sign_is_the_documented_hmac() {
        // Computed independently: printf '1577262236757\nSECxxx' | openssl dgst -sha256 -hmac SECxxx -binary | base64
        assert_eq!(dingtalk_sign("SECxxx", 1_577_262_236_757), "TajHYUQC5a6smO3qjKNgFiJalsQ51g5gqH0iiy2oY+o=");
    }

    #[test]
    fn when_to_send() {
        use NotifyOn::*;
        assert!(!should_send(&[Alert, Problem], false, false));
        assert!(should_send(&[Alert, Problem], true, false));
        assert!(should_send(&[Problem], false, true));
        assert!(!should_send(&[Alert], false, true));
        assert!(should_send(&[Always], false, false));
    }

    #[test]
    fn hostile_titles_are_one_escaped_line() {
        let n = News {
            newly_blocked: vec![Listed {
                image_id: "a".into(),
                title: Some("<!channel> [x](javascript:1)\n**bold**".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let slack = lines(&n, NotifyFormat::Slack).join("\n");
        assert!(slack.contains("&lt;!channel&gt;") && !slack.contains("<!channel>"), "{slack}");
        let ding = lines(&n, NotifyFormat::DingTalk).join("\n");
        assert!(ding.contains("\\[x\\]\\(javascript:1\\)") && ding.contains(" \\*\\*bold"), "{ding}");
    }
}
