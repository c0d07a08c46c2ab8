//! A strict local simulator of the VOD `GetImageInfo` / `GetImageInfos`
//! endpoint: what tests, the demo and benchmarks talk to.
//!
//! Owns the HTTP server ([`serve`], and [`serve_tls`] for https with a
//! certificate of the caller's), the checks a real endpoint makes
//! (parameters, key, signature, timestamp, nonce, STS token, version,
//! action), the per-second quotas, one per action (vod-openapi.md §5:
//! quotas are per API, and calls to one do not use up another's), the
//! throttled answer in the style asked for, seeded fault injection and the
//! `/__sim/stats` counters; and, on the same port, what the credential
//! sources need: STS (`AssumeRole`, `AssumeRoleWithOIDC`,
//! `GetCallerIdentity`, version 2015-04-01, told apart by `Version`), the
//! ECS metadata service (`/latest/...`) and a credentials URI
//! (`/__sim/credentials-uri`). `SearchMedia` for images (paging, the media
//! search protocol, its stats) lives in `search`, behind the same checks,
//! quota and faults. Its images come from [`catalog`]; its signature
//! check reuses the client's [`crate::api::signing`], fed with the parameters as
//! the server decoded them. It never talks to anything but its listener.

pub mod catalog;
pub mod night;
mod search;
mod wire;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::api::signing;
pub use catalog::Catalog;
use catalog::{mix64, CatalogImage};
pub use search::{SearchStats, DOCUMENTED_QPS as SEARCH_MEDIA_DOCUMENTED_QPS};
use wire::{Answer, Format};

/// Timestamp skew the real service allows.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The simulator's default AccessKey ID: made for it, never a real key.
pub const DEFAULT_KEY_ID: &str = "SIMULATOR-KEY-ID";
/// The simulator's default AccessKey secret: made for it, never a real key.
pub const DEFAULT_KEY_SECRET: &str = "simulator-secret-not-a-real-key";

/// The largest form body accepted on `POST`.
const MAX_BODY: usize = 1 << 20;

/// One AccessKey the simulator accepts.
#[derive(Debug, Clone)]
pub struct SimKey {
    pub id: String,
    pub secret: String,
    /// Set for an STS key: requests must carry this `SecurityToken`.
    pub sts_token: Option<String>,
}

/// Seeded fault injection. Rates are probabilities per call in `[0, 1]`.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// `500 InternalError`.
    pub internal_error: f64,
    /// `503 ServiceUnavailable`.
    pub unavailable: f64,
    /// Connection closed without an answer.
    pub drop: f64,
    /// Answers delayed by `slow_delay`.
    pub slow: f64,
    pub slow_delay: Duration,
    /// Added to every call.
    pub latency: Duration,
    /// A window in which every call fails.
    pub outage: Option<OutageFault>,
    /// A 200 that names an image it was not asked about: `GetImageInfo`
    /// answers with another image's data; `GetImageInfos` lists one entry
    /// twice, puts another image's data in place of one asked for, or lists
    /// an id not asked among `NonExistImageIds`. Counted as `WrongImageId`.
    pub wrong_image_id: f64,
}

named_enum! {
    /// A VOD action with a quota of its own (vod-openapi.md §5: "Each
    /// operation has its own limit").
    #[derive(Hash, PartialOrd, Ord)]
    pub enum QuotaAction {
        GetImageInfo => "GetImageInfo",
        GetImageInfos => "GetImageInfos",
        GetMediaAuditResult => "GetMediaAuditResult",
        SearchMedia => "SearchMedia",
    }
}

named_enum! {
    /// How a call over its quota is answered.
    pub enum ThrottleStyle {
        /// `400 Throttling.User`, as the VOD pages document.
        ThrottlingUser => "throttling-user",
        /// `403 Forbidden.FlowControl` with `x-acs-retry-after` (the
        /// milliseconds left in the window): a product that answers
        /// throttling with 403 and a code that does not say so, which the
        /// official clients recognise by the header alone (vod-openapi.md §4).
        ForbiddenFlowControl => "forbidden-flowcontrol",
    }
}

/// A window in which every authenticated call is answered `503
/// ServiceUnavailable`, as during a load balancer's failover or a restart of
/// the endpoint: it opens after `after_calls` authenticated calls and lasts
/// `lasting`.
#[derive(Debug, Clone, Copy)]
pub struct OutageFault {
    pub after_calls: u64,
    pub lasting: Duration,
}

/// Everything the simulator is.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub region: String,
    pub keys: Vec<SimKey>,
    pub catalog: Catalog,
    /// Quota in calls per second of each action not in `api_qps`, every
    /// action counted in a window of its own; `None` is unlimited, `Some(0)`
    /// throttles every call.
    pub qps: Option<u32>,
    /// Quotas of single actions, in place of `qps` for them (`--api-qps
    /// ACTION=N`; SearchMedia's documented one is
    /// [`SEARCH_MEDIA_DOCUMENTED_QPS`]); `None` is unlimited.
    pub api_qps: BTreeMap<QuotaAction, Option<u32>>,
    /// How a call over its quota is answered.
    pub throttle_style: ThrottleStyle,
    /// Send `x-acs-retry-after` with this value on every throttled answer,
    /// in place of the milliseconds left in the window (which the
    /// forbidden-flowcontrol style sends): to show a client a hint that is
    /// huge, `0`, empty or not a number.
    pub throttle_retry_after: Option<String>,
    /// Send `x-ratelimit-user` with `TimeLeft` on throttled answers.
    pub ratelimit_hints: bool,
    pub faults: Faults,
    /// Seeds fault decisions and request ids.
    pub seed: u64,
    /// Allowed timestamp skew.
    pub max_skew: Duration,
    /// Seconds added to the simulator's clock (negative: behind), to show a
    /// client what a skewed clock looks like. Also sets the `Date` header.
    pub clock_offset_secs: i64,
    /// Leave `AuditStatus` out of `GetImageInfos` answers, as the current
    /// batch model does (alibabacloud-go-sdk vod-20170321
    /// `get_image_infos_response_body_model.go` has no `AuditStatus`): on by
    /// default; `--batch-includes-audit-status` turns it off.
    pub batch_omits_audit_status: bool,
    /// Leave `AuditStatus` out of every answer, `GetImageInfo` too: an
    /// account whose service stopped sending it (`--omit-audit-status`).
    pub omit_audit_status: bool,
    /// Fault: every `GetMediaAuditResult` is refused with this code (404 for
    /// `InvalidApi.*`, else 403), as for an account or region without it.
    pub media_audit_refused: Option<String>,
    /// Share of ids a `GetImageInfos` answer leaves out of both `ImageInfo`
    /// and `NonExistImageIds` (seeded), to exercise the client's accounting.
    pub batch_forgets: f64,
    /// After this many authenticated calls the key is treated as deleted
    /// (`InvalidAccessKeyId.NotFound`): a key revoked mid-run.
    pub revoke_key_after: Option<u64>,
    /// When the STS tokens of `keys` expire: then every call with one is
    /// answered `InvalidSecurityToken.Expired`.
    pub static_token_expires: Option<SystemTime>,
    /// The account the keys belong to.
    pub account_id: String,
    /// RAM roles of the account that `AssumeRole` (and OIDC) may assume, by name.
    pub roles: Vec<String>,
    /// Keys that may not assume roles (`NoPermission`).
    pub assume_role_denied: Vec<String>,
    /// The OIDC provider ARN and the token `AssumeRoleWithOIDC` accepts.
    pub oidc: Option<(String, String)>,
    /// The instance RAM role the metadata service serves.
    pub ecs_role: Option<String>,
    /// The metadata service hands out IMDSv2 session tokens.
    pub imds_v2: bool,
    /// The metadata service answers without a session token (IMDSv1).
    pub imds_v1: bool,
    /// Lifetime of the keys STS, the metadata service and the credentials
    /// URI issue (at most; `DurationSeconds` may ask for less).
    pub sts_duration: Duration,
    /// After this many keys issued by `AssumeRole`, it answers 503
    /// `ServiceUnavailable`: renewals that fail.
    pub sts_fail_after: Option<u64>,
    /// Fault: `SearchMedia` breaks ties of `CreationTime` by a key drawn per
    /// request instead of by `ImageId`, so pages of one query may overlap
    /// and miss images (`--search-unstable-ties`).
    pub search_unstable_ties: bool,
}

/// The shortest `--sts-duration` the simulator allows.
pub const MIN_STS_DURATION: Duration = Duration::from_secs(10);

/// The simulator's account id: made up.
pub const DEFAULT_ACCOUNT_ID: &str = "1234567890123456";

/// The STS API version the simulator serves.
pub const STS_VERSION: &str = "2015-04-01";

/// The IMDSv2 session token the metadata service hands out.
const IMDS_TOKEN: &str = "sim-imds-session-token";

impl SimConfig {
    /// A simulator with the default key, no quota and no faults.
    pub fn new(catalog: Catalog) -> Self {
        SimConfig {
            region: "cn-shanghai".into(),
            keys: vec![SimKey { id: DEFAULT_KEY_ID.into(), secret: DEFAULT_KEY_SECRET.into(), sts_token: None }],
            catalog,
            qps: None,
            api_qps: BTreeMap::new(),
            throttle_style: ThrottleStyle::ThrottlingUser,
            throttle_retry_after: None,
            ratelimit_hints: false,
            faults: Faults::default(),
            seed: 1,
            max_skew: MAX_SKEW,
            clock_offset_secs: 0,
            revoke_key_after: None,
            batch_omits_audit_status: true,
            omit_audit_status: false,
            media_audit_refused: None,
            batch_forgets: 0.0,
            static_token_expires: None,
            account_id: DEFAULT_ACCOUNT_ID.into(),
            roles: Vec::new(),
            assume_role_denied: Vec::new(),
            oidc: None,
            ecs_role: None,
            imds_v2: true,
            imds_v1: true,
            sts_duration: Duration::from_secs(3600),
            sts_fail_after: None,
            search_unstable_ties: false,
        }
    }
}

/// What `/__sim/stats` reports.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Stats {
    /// Every request received on `/`.
    pub requests: u64,
    /// Answers by code: `OK` for success, the API `Code` for errors,
    /// `Dropped` for connections closed without an answer, `WrongImageId`
    /// for a 200 that names another image (the fault of that name).
    pub by_code: BTreeMap<String, u64>,
    /// Per image id: how many times it was answered (found or
    /// `NoSuchResource`; a batch answer counts once for each of its ids).
    pub answers_by_image: BTreeMap<String, u64>,
    /// Per image id: how many authenticated calls named it.
    pub calls_by_image: BTreeMap<String, u64>,
    /// STS, metadata service and credentials URI requests, by action
    /// (`AssumeRole`, `MetadataCredentials.v2`, ...) and outcome (`OK` or the
    /// error code): `AssumeRole OK`. Not in `requests` or `by_code`, which
    /// count the VOD endpoint's.
    #[serde(default)]
    pub by_action: BTreeMap<String, u64>,
    /// `SearchMedia`'s paging: pages served, the deepest page asked, refusals
    /// past 5,000 results, repeated pages, distinct queries. Its calls are
    /// also in `requests`, `by_code` and `by_action` (`SearchMedia OK`, ...),
    /// never in the per-image counters.
    #[serde(default)]
    pub search: SearchStats,
    /// Per action that reached its quota check: the calls it admitted and
    /// the calls it throttled.
    #[serde(default)]
    pub quota: BTreeMap<String, QuotaStats>,
}

/// What one action's quota did.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct QuotaStats {
    pub admitted: u64,
    pub throttled: u64,
}

/// One action's quota: its per-second window and its counts.
#[derive(Default)]
struct Quota {
    /// (second since start, calls taken in it).
    window: Mutex<(u64, u32)>,
    admitted: AtomicU64,
    throttled: AtomicU64,
}

/// A temporary key the simulator issued.
#[derive(Debug, Clone)]
struct Issued {
    secret: String,
    token: String,
    expires: SystemTime,
    /// `acs:ram::ACCOUNT:assumed-role/ROLE/SESSION`.
    arn: String,
}

const SHARDS: usize = 16;

#[derive(Default)]
struct ImageCounts {
    calls: u64,
    answers: u64,
}

/// The running simulator's state, shared by all connections.
pub struct Simulator {
    config: SimConfig,
    keys: HashMap<String, SimKey>,
    nonces: Vec<Mutex<NonceShard>>,
    per_image: Vec<Mutex<HashMap<Box<str>, ImageCounts>>>,
    /// Per batch (its comma-joined ids): how many times it was called, for fault draws.
    batch_calls: Mutex<HashMap<Box<str>, u64>>,
    by_code: Mutex<BTreeMap<String, u64>>,
    requests: AtomicU64,
    authenticated: AtomicU64,
    request_seq: AtomicU64,
    /// One per [`QuotaAction`], in its order.
    quotas: Vec<Quota>,
    started: Instant,
    /// When the outage fault opened.
    outage_opened: std::sync::OnceLock<Instant>,
    /// Keys issued by STS, the metadata service and the credentials URI.
    issued: Mutex<HashMap<String, Issued>>,
    by_action: Mutex<BTreeMap<String, u64>>,
    /// Keys issued by `AssumeRole`.
    assumed: AtomicU64,
    search: search::SearchState,
}

/// Nonces seen recently, in two generations: a nonce older than two skew
/// windows can no longer pass the timestamp check, so it may be forgotten.
#[derive(Default)]
struct NonceShard {
    current: HashSet<Box<str>>,
    previous: HashSet<Box<str>>,
    generation: u64,
}

fn shard_of(s: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    (h.finish() as usize) % SHARDS
}

/// Why a connection is closed without an answer (the drop fault).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

impl Simulator {
    /// Builds the state from a configuration.
    pub fn new(config: SimConfig) -> Arc<Self> {
        let keys = config.keys.iter().map(|k| (k.id.clone(), k.clone())).collect();
        Arc::new(Simulator {
            keys,
            nonces: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_image: (0..SHARDS).map(|_| Mutex::default()).collect(),
            batch_calls: Mutex::default(),
            by_code: Mutex::default(),
            requests: AtomicU64::new(0),
            authenticated: AtomicU64::new(0),
            request_seq: AtomicU64::new(0),
            quotas: QuotaAction::NAMES.iter().map(|_| Quota::default()).collect(),
            started: Instant::now(),
            outage_opened: std::sync::OnceLock::new(),
            issued: Mutex::default(),
            by_action: Mutex::default(),
            assumed: AtomicU64::new(0),
            search: search::SearchState::default(),
            config,
        })
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            requests: self.requests.load(Ordering::Relaxed),
            by_code: self.by_code.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            by_action: self.by_action.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            search: self.search.stats(),
            ..Default::default()
        };
        for (name, q) in QuotaAction::NAMES.iter().zip(&self.quotas) {
            let counts = QuotaStats {
                admitted: q.admitted.load(Ordering::Relaxed),
                throttled: q.throttled.load(Ordering::Relaxed),
            };
            if counts != QuotaStats::default() {
                s.quota.insert((*name).to_owned(), counts);
            }
        }
        for shard in &self.per_image {
            for (id, c) in shard.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                s.calls_by_image.insert(id.to_string(), c.calls);
                if c.answers > 0 {
                    s.answers_by_image.insert(id.to_string(), c.answers);
                }
            }
        }
        s
    }

    /// Whether a call that is the `n`-th authenticated one (1-based) falls
    /// in the outage window.
    fn in_outage(&self, o: &OutageFault, n: u64) -> bool {
        n > o.after_calls && self.outage_opened.get_or_init(Instant::now).elapsed() < o.lasting
    }

    fn count_action(&self, action: &str, outcome: &str) {
        let key = format!("{action} {outcome}");
        *self.by_action.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1;
    }

    /// Issues a temporary key that lives `lifetime` (at most `sts_duration`).
    fn issue(&self, arn: String, lifetime: Option<Duration>) -> serde_json::Value {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        let a = mix64(self.config.seed ^ n.wrapping_mul(0xA076_1D64_78BD_642F) ^ 0x5555);
        let b = mix64(a ^ 0x1234_5678);
        let id = format!("STS.{a:016X}");
        let secret = format!("sim-sts-secret-{b:016x}");
        let token = format!("sim-sts-token-{:016x}{:016x}", mix64(b), mix64(a ^ b));
        let life = lifetime.unwrap_or(self.config.sts_duration).min(self.config.sts_duration);
        let expires = self.now() + life;
        let expiration = humantime::format_rfc3339_seconds(expires).to_string();
        let issued = Issued { secret: secret.clone(), token: token.clone(), expires, arn };
        self.issued.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), issued);
        serde_json::json!({
            "AccessKeyId": id,
            "AccessKeySecret": secret,
            "SecurityToken": token,
            "Expiration": expiration,
        })
    }

    fn count_code(&self, code: &str) {
        *self.by_code.lock().unwrap_or_else(|e| e.into_inner()).entry(code.to_owned()).or_default() += 1;
    }

    /// Counts a call naming `id` and returns its 0-based call number.
    fn count_call(&self, id: &str) -> u64 {
        let mut shard = self.per_image[shard_of(id)].lock().unwrap_or_else(|e| e.into_inner());
        let c = shard.entry(id.into()).or_default();
        c.calls += 1;
        c.calls - 1
    }

    /// Counts a batch call (by its joined ids) and returns its 0-based call number.
    fn count_batch(&self, key: &str) -> u64 {
        let mut calls = self.batch_calls.lock().unwrap_or_else(|e| e.into_inner());
        let n = calls.entry(key.into()).or_default();
        *n += 1;
        *n - 1
    }

    fn count_answer(&self, id: &str) {
        let mut shard = self.per_image[shard_of(id)].lock().unwrap_or_else(|e| e.into_inner());
        shard.entry(id.into()).or_default().answers += 1;
    }

    fn request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        let a = mix64(self.config.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let b = mix64(a ^ 0xD1B5_4A32_D192_ED03);
        format!(
            "{:08X}-{:04X}-{:04X}-{:04X}-{:012X}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFFF,
            b >> 48,
            b & 0xFFFF_FFFF_FFFF
        )
    }

    /// The simulator's clock: the real one plus the configured offset.
    pub fn now(&self) -> SystemTime {
        let off = Duration::from_secs(self.config.clock_offset_secs.unsigned_abs());
        if self.config.clock_offset_secs >= 0 {
            SystemTime::now() + off
        } else {
            SystemTime::now() - off
        }
    }

    /// Records a nonce; false if it was seen before.
    fn fresh_nonce(&self, nonce: &str) -> bool {
        // A timestamp passes while it is within max_skew of now on either side, so
        // for 2 × max_skew: generations that long, two kept, never forget it sooner.
        let generation = self.started.elapsed().as_secs() / (2 * self.config.max_skew.as_secs()).max(1);
        let mut shard = self.nonces[shard_of(nonce)].lock().unwrap_or_else(|e| e.into_inner());
        if shard.generation != generation {
            let cur = std::mem::take(&mut shard.current);
            shard.previous = if generation == shard.generation + 1 { cur } else { HashSet::new() };
            shard.generation = generation;
        }
        if shard.current.contains(nonce) || shard.previous.contains(nonce) {
            return false;
        }
        shard.current.insert(nonce.into());
        true
    }

    /// The quota of `action` in calls per second; `None` is unlimited.
    fn limit(&self, action: QuotaAction) -> Option<u32> {
        self.config.api_qps.get(&action).copied().unwrap_or(self.config.qps)
    }

    /// Takes one call from this second's quota of `action`. `Err` is the
    /// milliseconds until its window resets.
    fn take_quota(&self, action: QuotaAction) -> Result<(), u64> {
        let q = &self.quotas[action as usize];
        let taken = take_window(&q.window, self.limit(action), self.started);
        let counter = if taken.is_ok() { &q.admitted } else { &q.throttled };
        counter.fetch_add(1, Ordering::Relaxed);
        taken
    }

    /// A seeded uniform number for (call key, call number, purpose).
    fn draw(&self, key: &str, call: u64, purpose: u64) -> f64 {
        // FNV-1a, not std's DefaultHasher: its algorithm may change between
        // Rust releases, and a seed must give the same faults everywhere.
        let h = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        let x = mix64(self.config.seed ^ mix64(h ^ mix64(call.wrapping_add(purpose << 48))));
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Takes one call from a per-second quota window of `limit` calls (`None`:
/// unlimited) counted from `started`. `Err` is the milliseconds until the
/// window resets.
fn take_window(window: &Mutex<(u64, u32)>, limit: Option<u32>, started: Instant) -> Result<(), u64> {
    let Some(limit) = limit else { return Ok(()) };
    let elapsed = started.elapsed();
    let second = elapsed.as_secs();
    let mut q = window.lock().unwrap_or_else(|e| e.into_inner());
    if q.0 != second {
        *q = (second, 0);
    }
    if q.1 < limit {
        q.1 += 1;
        Ok(())
    } else {
        Err(1000 - u64::from(elapsed.subsec_millis()))
    }
}

/// The throttled answer in the configured style, with the `x-acs-retry-after`
/// and `x-ratelimit-user` hints when configured.
fn throttled(sim: &Simulator, limit: Option<u32>, time_left_ms: u64) -> Answer {
    let cfg = &sim.config;
    let mut a = match cfg.throttle_style {
        ThrottleStyle::ThrottlingUser => {
            Answer::error(400, "Throttling.User", "Request was denied due to user flow control.")
        }
        ThrottleStyle::ForbiddenFlowControl => {
            Answer::error(403, "Forbidden.FlowControl", "Request was denied due to flow control.")
        }
    };
    let retry_after = match (&cfg.throttle_retry_after, cfg.throttle_style) {
        (Some(value), _) => Some(value.clone()),
        (None, ThrottleStyle::ForbiddenFlowControl) => Some(time_left_ms.to_string()),
        (None, ThrottleStyle::ThrottlingUser) => None,
    };
    if let Some(value) = retry_after {
        a.header("x-acs-retry-after", value);
    }
    if cfg.ratelimit_hints {
        let limit = limit.unwrap_or_default();
        let reset = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() + 1;
        a.header("x-ratelimit-user", format!("Limit:{limit},Remain:0,TimeLeft:{time_left_ms},Reset:{reset}"));
    }
    a
}

/// What every valid VOD call meets before it is served: the outage window
/// and its action's quota. `authenticated`: the call's number among
/// authenticated calls.
fn admit(sim: &Simulator, authenticated: u64, action: QuotaAction) -> Option<Answer> {
    if sim.config.faults.outage.is_some_and(|o| sim.in_outage(&o, authenticated)) {
        return Some(unavailable());
    }
    sim.take_quota(action).err().map(|time_left_ms| throttled(sim, sim.limit(action), time_left_ms))
}

/// Latency, dropped connections, slow answers, 500s and 503s, drawn from
/// (seed, the call's key, how many times that key was called).
async fn inject_faults(sim: &Simulator, key: &str, call: u64) -> Result<Option<Answer>, Dropped> {
    let f = &sim.config.faults;
    if !f.latency.is_zero() {
        tokio::time::sleep(f.latency).await;
    }
    if sim.draw(key, call, 1) < f.drop {
        return Err(Dropped);
    }
    if sim.draw(key, call, 2) < f.slow {
        tokio::time::sleep(f.slow_delay).await;
    }
    let fault = sim.draw(key, call, 3);
    if fault < f.internal_error {
        return Ok(Some(Answer::error(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error.",
        )));
    }
    if fault < f.internal_error + f.unavailable {
        return Ok(Some(unavailable()));
    }
    Ok(None)
}

/// Serves the simulator on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, sim: Arc<Simulator>, shutdown: impl Future<Output = ()>) {
    serve_with(listener, None, sim, shutdown).await
}

/// Serves the simulator over TLS (https) on `listener` until `shutdown`
/// resolves: what a test of the client's trust in certificates talks to.
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<tokio_rustls::rustls::ServerConfig>,
    sim: Arc<Simulator>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, Some(tokio_rustls::TlsAcceptor::from(tls)), sim, shutdown).await
}

/// The TLS settings of [`serve_tls`] from a PEM certificate chain (the
/// server's first) and its PEM private key.
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<tokio_rustls::rustls::ServerConfig>, String> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the certificate file is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("the certificate file holds no CERTIFICATE block".to_owned());
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("the key file holds no PEM private key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not make a TLS server: {e}"))?;
    Ok(Arc::new(config))
}

async fn serve_with(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    sim: Arc<Simulator>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, _) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment instead of spinning.
                    tracing::warn!("simulator accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let sim = sim.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(sim.clone(), req));
            let mut http = hyper::server::conn::http1::Builder::new();
            match tls {
                None => {
                    let _ = http.keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
                }
                // A client that refuses the certificate ends the handshake: nothing to serve.
                Some(tls) => {
                    if let Ok(stream) = tls.accept(stream).await {
                        let _ = http.keep_alive(true).serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
        });
    }
    // Kept-alive connections end with the server: a stopped simulator answers nothing.
    connections.shutdown().await;
}

async fn handle(sim: Arc<Simulator>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    if req.uri().path() == "/__sim/stats" {
        let body = serde_json::to_vec(&sim.stats()).unwrap_or_default();
        return Ok(wire::raw(StatusCode::OK, "application/json", body));
    }
    let path = req.uri().path().to_owned();
    if path.starts_with("/latest/") || path == "/__sim/credentials-uri" {
        return Ok(metadata(&sim, &req, &path));
    }
    let method = req.method().clone();
    let path_ok = req.uri().path() == "/";
    let mut params = parse_pairs(req.uri().query().unwrap_or(""));
    let is_form = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if method == Method::POST && is_form {
        params.extend(parse_pairs(&String::from_utf8_lossy(&body)));
    }
    let format = match get(&params, "Format") {
        Some(f) if f.eq_ignore_ascii_case("json") => Format::Json,
        _ => Format::Xml,
    };
    if path_ok && get(&params, "Version") == Some(STS_VERSION) {
        let action = get(&params, "Action").unwrap_or_default().to_owned();
        let answer = sts(&sim, &method, &params);
        sim.count_action(&action, answer.code());
        return Ok(answer.render(format, &sim.request_id(), "sts.aliyuncs.com"));
    }
    sim.requests.fetch_add(1, Ordering::Relaxed);
    let answer = process(&sim, &method, path_ok, &params).await;
    match answer {
        Err(Dropped) => {
            sim.count_code("Dropped");
            Err(Dropped)
        }
        Ok(a) => {
            sim.count_code(a.code());
            let mut response = a.render(format, &sim.request_id(), &format!("vod.{}.aliyuncs.com", sim.config.region));
            if sim.config.clock_offset_secs != 0 {
                let date = httpdate::fmt_http_date(sim.now());
                if let Ok(v) = date.parse() {
                    response.headers_mut().insert(hyper::header::DATE, v);
                }
            }
            Ok(response)
        }
    }
}

fn parse_pairs(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

async fn process(
    sim: &Simulator,
    method: &Method,
    path_ok: bool,
    params: &[(String, String)],
) -> Result<Answer, Dropped> {
    let cfg = &sim.config;
    if !path_ok {
        return Ok(Answer::error(
            404,
            "InvalidApi.NotFound",
            "Specified api is not found, please check your url and method.",
        ));
    }
    if method != Method::GET && method != Method::POST {
        return Ok(Answer::error(400, "UnsupportedHTTPMethod", "Specified http method is not supported."));
    }
    if let Err(refused) = authenticate(sim, method, params, true) {
        return Ok(refused);
    }
    let p = |name: &str| get(params, name).unwrap_or_default();
    let authenticated = sim.authenticated.fetch_add(1, Ordering::Relaxed) + 1;
    if !sim.fresh_nonce(p("SignatureNonce")) {
        return Ok(Answer::error(400, "SignatureNonceUsed", "Specified signature nonce was used already."));
    }
    if p("Version") != crate::api::client::API_VERSION {
        return Ok(Answer::error(400, "InvalidVersion", "Specified parameter Version is not valid."));
    }
    let action = p("Action");
    if action == "SearchMedia" {
        let answer = search::call(sim, params, authenticated).await;
        sim.count_action("SearchMedia", answer.as_ref().map_or("Dropped", Answer::code));
        return answer;
    }
    let ids: Vec<&str> = match action {
        "GetImageInfo" => match get(params, "ImageId") {
            None | Some("") => {
                return Ok(Answer::error(400, "MissingImageId", "ImageId is mandatory for this action."))
            }
            Some(id) => vec![id],
        },
        "GetMediaAuditResult" => match get(params, "MediaId") {
            None | Some("") => {
                return Ok(Answer::error(400, "MissingMediaId", "MediaId is mandatory for this action."))
            }
            Some(id) => vec![id],
        },
        "GetImageInfos" => match get(params, "ImageIds") {
            None | Some("") => {
                return Ok(Answer::error(400, "MissingImageIds", "ImageIds is mandatory for this action."))
            }
            Some(list) => {
                let ids: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
                if ids.is_empty() || ids.len() > crate::api::client::MAX_BATCH_IDS {
                    return Ok(Answer::error(
                        400,
                        "InvalidParameter",
                        "The specified parameter ImageIds is not valid: 1 to 20 ids are allowed.",
                    ));
                }
                ids
            }
        },
        _ => {
            return Ok(Answer::error(
                404,
                "InvalidApi.NotFound",
                "Specified api is not found, please check your url and method.",
            ))
        }
    };
    match get(params, "OutputType") {
        None | Some("cdn") | Some("oss") => {}
        Some(_) => {
            return Ok(Answer::error(400, "InvalidParameter", "The specified parameter OutputType is not valid."))
        }
    }
    if let Some(t) = get(params, "AuthTimeout") {
        let max = if get(params, "OutputType") == Some("oss") { 2_592_000 } else { i64::MAX };
        if !t.parse::<i64>().is_ok_and(|t| (1..=max).contains(&t)) {
            return Ok(Answer::error(400, "InvalidParameter", "The specified parameter AuthTimeout is not valid."));
        }
    }
    let quota = match action {
        "GetImageInfo" => QuotaAction::GetImageInfo,
        "GetMediaAuditResult" => QuotaAction::GetMediaAuditResult,
        _ => QuotaAction::GetImageInfos,
    };
    if let Some(refused) = admit(sim, authenticated, quota) {
        return Ok(refused);
    }
    // Faults are drawn from (seed, ids, how many times these ids were called),
    // so a run sees the same faults whatever the order of its calls.
    let key_ids = ids.join(",");
    let call = if ids.len() > 1 { sim.count_batch(&key_ids) } else { sim.count_call(&key_ids) };
    let id_calls: Vec<u64> = if ids.len() > 1 { ids.iter().map(|id| sim.count_call(id)).collect() } else { vec![call] };
    if let Some(fault) = inject_faults(sim, &key_ids, call).await? {
        return Ok(fault);
    }
    let f = &cfg.faults;
    if action == "GetMediaAuditResult" {
        let id = ids[0];
        // Counted apart: `answers_by_image` says how often an image was looked up.
        if let Some(code) = &cfg.media_audit_refused {
            sim.count_action("GetMediaAuditResult", code);
            let status = if code.starts_with("InvalidApi") { 404 } else { 403 };
            return Ok(Answer::error(status, code, "GetMediaAuditResult is not available to this account."));
        }
        sim.count_action("GetMediaAuditResult", "OK");
        return Ok(match cfg.catalog.moderation(id) {
            Some(result) => Answer::Audit(result),
            // An assumption (no page documents it): an unknown media id is
            // answered as GetImageInfo answers one.
            None => Answer::error(404, "NoSuchResource", "The specified resource does not exist."),
        });
    }
    if action == "GetImageInfo" {
        let id = ids[0];
        if sim.draw(&key_ids, call, 5) < f.wrong_image_id {
            if let Some((_, other)) = cfg.catalog.other_than(&ids, sim.draw(&key_ids, call, 7)) {
                return Ok(Answer::WrongImageId(Box::new(Answer::Image(other.clone()))));
            }
        }
        sim.count_answer(id);
        return Ok(match cfg.catalog.get(id) {
            Some(img) if cfg.omit_audit_status => Answer::Image(without_audit_status(img)),
            Some(img) => Answer::Image(img.clone()),
            None => Answer::error(404, "NoSuchResource", "The specified resource does not exist."),
        });
    }
    let mut found: Vec<CatalogImage> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut answered: Vec<&str> = Vec::with_capacity(ids.len());
    for (&id, n) in ids.iter().zip(id_calls) {
        if sim.draw(id, n, 4) < cfg.batch_forgets {
            continue;
        }
        answered.push(id);
        match cfg.catalog.get(id) {
            Some(img) if cfg.batch_omits_audit_status || cfg.omit_audit_status => found.push(without_audit_status(img)),
            Some(img) => found.push(img.clone()),
            None => missing.push(id.to_owned()),
        }
    }
    if sim.draw(&key_ids, call, 5) < f.wrong_image_id {
        let (how, pick) = (sim.draw(&key_ids, call, 6), sim.draw(&key_ids, call, 7));
        if misname(&cfg.catalog, &ids, &mut found, &mut missing, how, pick) {
            // A wrong answer answers none of its ids.
            return Ok(Answer::WrongImageId(Box::new(Answer::Images(found, missing))));
        }
    }
    for id in answered {
        sim.count_answer(id);
    }
    Ok(Answer::Images(found, missing))
}

/// The image as an answer that does not carry `AuditStatus`.
fn without_audit_status(img: &CatalogImage) -> CatalogImage {
    let mut v = img.value();
    if let Some(m) = v.as_object_mut() {
        m.remove("AuditStatus");
    }
    CatalogImage { json: v.to_string().into() }
}

/// Makes a batch answer name an id it should not, one of three ways chosen
/// by `how` (in `[0, 1)`): an entry listed twice; another image's data in
/// place of one asked for (or added, when none was found); an id not asked
/// among the missing. `pick` chooses the other image. False when the answer
/// is empty and nothing can be listed twice.
fn misname(
    catalog: &Catalog,
    asked: &[&str],
    found: &mut Vec<CatalogImage>,
    missing: &mut Vec<String>,
    how: f64,
    pick: f64,
) -> bool {
    let foreign = catalog.other_than(asked, pick);
    match ((how * 3.0) as u32, foreign) {
        (1, Some((_, img))) => match found.last_mut() {
            Some(last) => *last = img.clone(),
            None => found.push(img.clone()),
        },
        (2, Some((id, _))) => missing.push(id.to_owned()),
        _ => {
            if let Some(first) = found.first().cloned() {
                found.push(first);
            } else if let Some(first) = missing.first().cloned() {
                missing.push(first);
            } else {
                return false;
            }
        }
    }
    true
}

/// Who signed a request.
struct Caller {
    arn: String,
    identity_type: &'static str,
}

/// The checks every signed call passes: parameters, signature method and
/// version, timestamp, key, signature, STS token. `vod`: the VOD endpoint's
/// call, which a revoked key fails.
fn authenticate(sim: &Simulator, method: &Method, params: &[(String, String)], vod: bool) -> Result<Caller, Answer> {
    let cfg = &sim.config;
    for name in [
        "AccessKeyId",
        "Signature",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "Timestamp",
        "Version",
        "Action",
    ] {
        if get(params, name).is_none_or(str::is_empty) {
            let code = if name == "Signature" { "IncompleteSignature".to_owned() } else { format!("Missing{name}") };
            return Err(Answer::error(400, &code, &format!("{name} is mandatory for this action.")));
        }
    }
    let p = |name: &str| get(params, name).unwrap_or_default();
    if p("SignatureMethod") != "HMAC-SHA1" {
        return Err(Answer::error(400, "InvalidSignatureMethod", "Specified signature method is not valid."));
    }
    if p("SignatureVersion") != "1.0" {
        return Err(Answer::error(400, "InvalidSignatureVersion", "Specified signature version is not valid."));
    }
    let Ok(ts) = humantime::parse_rfc3339(p("Timestamp")) else {
        return Err(Answer::error(
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        ));
    };
    if !is_utc_seconds(p("Timestamp")) {
        return Err(Answer::error(
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        ));
    }
    let now = sim.now();
    let skew = now.duration_since(ts).unwrap_or_else(|e| e.duration());
    if skew > cfg.max_skew {
        return Err(Answer::error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."));
    }
    let revoked = vod && cfg.revoke_key_after.is_some_and(|n| sim.authenticated.load(Ordering::Relaxed) >= n);
    let id = p("AccessKeyId");
    // (secret, token, expires, arn) of a configured key or an issued one.
    let (secret, token, expires, caller) = match sim.keys.get(id).filter(|_| !revoked) {
        Some(k) => (
            k.secret.clone(),
            k.sts_token.clone(),
            k.sts_token.as_ref().and(cfg.static_token_expires),
            Caller { arn: format!("acs:ram::{}:user/simulator", cfg.account_id), identity_type: "RAMUser" },
        ),
        None => match sim.issued.lock().unwrap_or_else(|e| e.into_inner()).get(id).filter(|_| !revoked) {
            Some(i) => (
                i.secret.clone(),
                Some(i.token.clone()),
                Some(i.expires),
                Caller { arn: i.arn.clone(), identity_type: "AssumedRoleUser" },
            ),
            None => {
                return Err(Answer::error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."))
            }
        },
    };
    let string_to_sign = signing::string_to_sign(method.as_str(), params);
    let expected = signing::signature_of(&string_to_sign, &secret);
    if expected != p("Signature") {
        return Err(Answer::error(
            400,
            "SignatureDoesNotMatch",
            &format!(
                "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
            ),
        ));
    }
    if let Some(token) = &token {
        match get(params, "SecurityToken") {
            None | Some("") => {
                return Err(Answer::error(400, "MissingSecurityToken", "SecurityToken is mandatory for this action."))
            }
            Some(t) if t != token => {
                return Err(Answer::error(
                    400,
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.",
                ))
            }
            Some(_) => {}
        }
        if expires.is_some_and(|e| now >= e) {
            return Err(Answer::error(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired."));
        }
    }
    Ok(caller)
}

/// `acs:ram::ACCOUNT:role/NAME`, checked as STS does.
fn check_role(cfg: &SimConfig, role_arn: Option<&str>) -> Result<String, Answer> {
    let Some(arn) = role_arn.filter(|a| !a.is_empty()) else {
        return Err(Answer::error(400, "MissingRoleArn", "RoleArn is mandatory for this action."));
    };
    let parsed = arn.strip_prefix("acs:ram::").and_then(|rest| rest.split_once(":role/"));
    let Some((account, name)) =
        parsed.filter(|(a, n)| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty())
    else {
        return Err(Answer::error(400, "InvalidParameter.RoleArn", "The parameter RoleArn is wrongly formed."));
    };
    if account != cfg.account_id || !cfg.roles.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(Answer::error(404, "EntityNotExist.Role", "The specified Role not exists ."));
    }
    Ok(name.to_owned())
}

/// The lifetime a request asks for: `DurationSeconds`, 900 to 43200 as STS allows.
fn duration_asked(params: &[(String, String)]) -> Result<Option<Duration>, Answer> {
    match get(params, "DurationSeconds") {
        None | Some("") => Ok(None),
        Some(d) => match d.parse::<u64>() {
            Ok(n) if (900..=43_200).contains(&n) => Ok(Some(Duration::from_secs(n))),
            _ => Err(Answer::error(
                400,
                "InvalidParameter.DurationSeconds",
                "The Min/Max value of DurationSeconds is 15min/12hr.",
            )),
        },
    }
}

/// The STS actions.
fn sts(sim: &Simulator, method: &Method, params: &[(String, String)]) -> Answer {
    match sts_answer(sim, method, params) {
        Ok(a) | Err(a) => a,
    }
}

fn sts_answer(sim: &Simulator, method: &Method, params: &[(String, String)]) -> Result<Answer, Answer> {
    let cfg = &sim.config;
    let action = get(params, "Action").unwrap_or_default();
    let session = || match get(params, "RoleSessionName") {
        Some(s) if !s.is_empty() => Ok(s.to_owned()),
        _ => Err(Answer::error(400, "MissingRoleSessionName", "RoleSessionName is mandatory for this action.")),
    };
    if action == "AssumeRoleWithOIDC" {
        // Not signed: the OIDC token is the proof.
        let name = check_role(cfg, get(params, "RoleArn"))?;
        let session = session()?;
        let Some((provider_arn, token)) = &cfg.oidc else {
            return Err(Answer::error(
                404,
                "EntityNotExist.OIDCProvider",
                "The specified OIDC provider does not exist.",
            ));
        };
        if get(params, "OIDCProviderArn") != Some(provider_arn.as_str()) {
            return Err(Answer::error(
                404,
                "EntityNotExist.OIDCProvider",
                "The specified OIDC provider does not exist.",
            ));
        }
        if get(params, "OIDCToken") != Some(token.as_str()) {
            return Err(Answer::error(400, "AuthenticationFail.OIDCToken.Invalid", "The OIDC token is invalid."));
        }
        let asked = duration_asked(params)?;
        let arn = format!("acs:ram::{}:assumed-role/{name}/{session}", cfg.account_id);
        let credentials = sim.issue(arn.clone(), asked);
        return Ok(Answer::Json(serde_json::json!({
            "Credentials": credentials,
            "AssumedRoleUser": {"Arn": arn, "AssumedRoleId": format!("3{}:{session}", cfg.account_id)},
        })));
    }
    let caller = authenticate(sim, method, params, false)?;
    if !sim.fresh_nonce(get(params, "SignatureNonce").unwrap_or_default()) {
        return Err(Answer::error(400, "SignatureNonceUsed", "Specified signature nonce was used already."));
    }
    match action {
        "GetCallerIdentity" => Ok(Answer::Json(serde_json::json!({
            "AccountId": cfg.account_id,
            "Arn": caller.arn,
            "IdentityType": caller.identity_type,
            "UserId": "216959339000000000",
            "PrincipalId": "216959339000000000",
        }))),
        "AssumeRole" => {
            if cfg.assume_role_denied.iter().any(|k| Some(k.as_str()) == get(params, "AccessKeyId")) {
                return Err(Answer::error(
                    403,
                    "NoPermission",
                    "You are not authorized to do this action. You should be authorized by RAM.",
                ));
            }
            let name = check_role(cfg, get(params, "RoleArn"))?;
            let session = session()?;
            let asked = duration_asked(params)?;
            if cfg.sts_fail_after.is_some_and(|n| sim.assumed.load(Ordering::Relaxed) >= n) {
                return Err(unavailable());
            }
            sim.assumed.fetch_add(1, Ordering::Relaxed);
            let arn = format!("acs:ram::{}:assumed-role/{name}/{session}", cfg.account_id);
            let credentials = sim.issue(arn.clone(), asked);
            Ok(Answer::Json(serde_json::json!({
                "Credentials": credentials,
                "AssumedRoleUser": {"Arn": arn, "AssumedRoleId": format!("3{}:{session}", cfg.account_id)},
            })))
        }
        _ => Err(Answer::error(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )),
    }
}

/// The ECS metadata service and the credentials URI.
fn metadata(sim: &Simulator, req: &Request<Incoming>, path: &str) -> Response<Full<Bytes>> {
    let cfg = &sim.config;
    let text = |status: StatusCode, body: &str| wire::raw(status, "text/plain", body.as_bytes().to_vec());
    if path == "/__sim/credentials-uri" {
        sim.count_action("CredentialsURI", "OK");
        let mut v = sim.issue(format!("acs:ram::{}:assumed-role/uri-role/uri", cfg.account_id), None);
        if let Some(m) = v.as_object_mut() {
            m.insert("Code".into(), "Success".into());
        }
        return wire::raw(StatusCode::OK, "application/json", serde_json::to_vec(&v).unwrap_or_default());
    }
    if path == "/latest/api/token" {
        if req.method() != Method::PUT || !cfg.imds_v2 {
            sim.count_action("MetadataToken", "Refused");
            return text(StatusCode::NOT_FOUND, "Not Found");
        }
        if req.headers().get("X-aliyun-ecs-metadata-token-ttl-seconds").is_none() {
            sim.count_action("MetadataToken", "Refused");
            return text(StatusCode::BAD_REQUEST, "missing X-aliyun-ecs-metadata-token-ttl-seconds");
        }
        sim.count_action("MetadataToken", "OK");
        return text(StatusCode::OK, IMDS_TOKEN);
    }
    let version = match req.headers().get("X-aliyun-ecs-metadata-token").and_then(|v| v.to_str().ok()) {
        Some(IMDS_TOKEN) => "v2",
        Some(_) => {
            sim.count_action("MetadataCredentials", "BadToken");
            return text(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        None if cfg.imds_v1 => "v1",
        None => {
            sim.count_action("MetadataCredentials", "v1Refused");
            return text(StatusCode::FORBIDDEN, "Forbidden");
        }
    };
    let Some(role) = &cfg.ecs_role else { return text(StatusCode::NOT_FOUND, "Not Found") };
    match path.strip_prefix("/latest/meta-data/ram/security-credentials/") {
        Some("") => {
            sim.count_action(&format!("MetadataRoleList.{version}"), "OK");
            text(StatusCode::OK, role)
        }
        Some(r) if r == role => {
            sim.count_action(&format!("MetadataCredentials.{version}"), "OK");
            let mut v = sim.issue(format!("acs:ram::{}:assumed-role/{role}/ecs", cfg.account_id), None);
            if let Some(m) = v.as_object_mut() {
                m.insert("Code".into(), "Success".into());
                m.insert("LastUpdated".into(), humantime::format_rfc3339_seconds(sim.now()).to_string().into());
            }
            wire::raw(StatusCode::OK, "text/plain", serde_json::to_vec(&v).unwrap_or_default())
        }
        _ => text(StatusCode::NOT_FOUND, "Not Found"),
    }
}

/// The real service's `503 ServiceUnavailable`.
fn unavailable() -> Answer {
    Answer::error(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
}

/// The API wants `YYYY-MM-DDThh:mm:ssZ`: UTC, whole seconds.
fn is_utc_seconds(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && b.iter().enumerate().all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16 | 19) || c.is_ascii_digit())
}
