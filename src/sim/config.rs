//! What the simulator is: [`SimConfig`] (the account, its keys and
//! catalog, the quotas, the throttling style, the faults, the STS and
//! metadata service settings), with the default key and account it starts
//! with. Only data: the checks and answers that read it are in the sibling
//! modules.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::catalog::Catalog;
use super::quota::{QuotaAction, ThrottleStyle};

/// Timestamp skew the real service allows.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The simulator's default AccessKey ID: made for it, never a real key.
pub const DEFAULT_KEY_ID: &str = "SIMULATOR-KEY-ID";
/// The simulator's default AccessKey secret: made for it, never a real key.
pub const DEFAULT_KEY_SECRET: &str = "simulator-secret-not-a-real-key";

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
    /// [`SEARCH_MEDIA_DOCUMENTED_QPS`](super::SEARCH_MEDIA_DOCUMENTED_QPS)); `None` is unlimited.
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
