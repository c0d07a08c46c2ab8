//! The VOD OpenAPI client: signed `GetImageInfo` (and `GetImageInfos`) calls.
//!
//! Owns the endpoint rules, the request parameters, one attempt of a call and
//! the decoding of its answer into a result or an [`ApiError`]. It makes a
//! fresh `Timestamp` and `SignatureNonce` for every attempt (the server
//! rejects a reused nonce), but it never retries: that is `retry`'s and
//! `run`'s job. Signing itself is `signing`.
//!
//! An answer must be about the image asked. A `GetImageInfo` answer whose
//! `ImageInfo.ImageId` names another image (an empty one included) is not
//! an answer to this call: it is refused as `MismatchedImageId`
//! (transient, so asked again) and never filed under the id asked. An
//! answer with no `ImageId` at all is taken as the one about the id asked:
//! the call asked about that one id and the answer came back on the call's
//! own HTTP exchange, and the API's page says any field of `ImageInfo` may be
//! absent (vod-openapi.md §4; alibabacloud-go-sdk `vod-20170321`
//! `get_image_info_response_body_model.go` declares `ImageId *string`,
//! `omitempty`, like every other field), so refusing it would fail every
//! image the day the service leaves it out. The documented example and the
//! simulator always send it; that the live service does is an assumption.
//! A `GetImageInfos` answer is different: an entry without `ImageId` could
//! be about any of up to 20 ids, so the engine refuses such an answer whole
//! (`run::engine`).
//!
//! Answers are read up to a cap ([`MAX_ANSWER_BYTES`],
//! [`MAX_BATCH_ANSWER_BYTES`]), success and error bodies alike: a bigger one
//! is a bad response, refused on its `Content-Length` before a byte is read,
//! or as soon as a chunked body passes the cap.
//!
//! Calls go through the proxy `proxy` chose, or none: never through one the
//! HTTP library found in the environment on its own, and never to a loopback
//! address (the STS or metadata endpoint beside a proxied VOD endpoint
//! included). Loopback is `localhost` (with or without the trailing dot of
//! a fully qualified name, which is dropped so the name resolves),
//! `127.0.0.0/8`, `::1` and the IPv4-mapped `::ffff:127.0.0.0/104`, which
//! the kernel routes to the same IPv4 loopback.
//!
//! A URL is never shown with its user and password: an endpoint that
//! carries them is refused, and the message shows `***` in their place.
//!
//! Everything an answer carries is redacted before it leaves here: the
//! AccessKey secret and the STS token, in every form a server might echo
//! them ([`Redactor`]), are replaced by `***` in error messages (a parse
//! error's included), request ids and every text field of a successful
//! answer, so no report, journal or terminal ever holds them. (vod-openapi.md
//! §7: a secret never goes into a log or report. That a server echoes the
//! token at all is not documented; the signature error does echo the
//! string-to-sign, which holds it, and a proxy or a broken gateway may echo
//! anything.)

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderValue, CONTENT_TYPE};

use std::sync::Arc;

use crate::api::answer::{bad_answer, bad_response, error_from_answer, header_str, read_capped, transport_error};
use crate::api::credentials::{CredentialSource, Credentials};
use crate::api::endpoints;
use crate::api::error::{quote_answer_id, ApiError, ErrorClass};
use crate::api::model::{GetImageInfoResponse, GetImageInfosResponse, GetMediaAuditResultResponse, ImageInfo};
use crate::api::moderation::ModerationReading;
use crate::api::provider::{Hosts, Provider};
use crate::api::proxy::ProxyUrl;
use crate::api::redact::Redactor;
use crate::api::sts::{Identity, Key};

/// The API version of every VOD call.
pub const API_VERSION: &str = "2017-03-21";

/// How long to wait for a TCP + TLS connection. Alibaba Cloud's SDKs use 5 s
/// (darabonba's default `connectTimeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one attempt may take, end to end. The Tea SDKs' default read
/// timeout is 10 s; GetImageInfo normally answers in well under a second.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts at the first key of a temporary source before the run gives up:
/// three, with 2 s and 4 s between them, the retry the official credentials
/// libraries leave to the caller.
pub const FIRST_KEY_ATTEMPTS: u32 = 3;

/// The most ids one `GetImageInfos` call takes (vod-openapi.md §6).
pub const MAX_BATCH_IDS: usize = 20;

/// The largest `GetImageInfo` answer read, success or error, in bytes. One
/// image's description is a few KB at most (the documented example is under
/// 1 KB; the longest fields are two signed URLs), an error body less: 1 MiB
/// is hundreds of times that, and with 16 calls in flight still only 16 MiB.
/// A bigger answer is not the API's, and is not read past this.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The largest `GetImageInfos` answer read: room for [`MAX_BATCH_IDS`]
/// images of [`MAX_ANSWER_BYTES`] each, 20 MiB.
pub const MAX_BATCH_ANSWER_BYTES: usize = MAX_BATCH_IDS * MAX_ANSWER_BYTES;

named_enum! {
    /// `OutputType`: which kind of URL the answer carries; `as_str` is the
    /// value on the wire.
    pub enum OutputType {
        /// A CDN URL (the API's default).
        Cdn => "cdn",
        /// An OSS URL.
        Oss => "oss",
    }
}

/// Why an endpoint URL was refused.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("endpoint {0:?} is not a URL: {1}")]
    NotAUrl(String, String),
    #[error("endpoint {0:?} uses plain http to a host that is not loopback: the signed request, and any STS token in it, would cross the network in clear text; use https://")]
    PlainHttp(String),
    #[error("endpoint {0:?}: only https:// (or http:// to a loopback address) is supported")]
    Scheme(String),
    #[error("endpoint {0:?} must not carry a query, a fragment or a user name")]
    Extras(String),
}

/// A checked endpoint base URL, always ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(String);

impl Endpoint {
    /// The region's endpoint from the SDKs' table ([`endpoints::vod_host`]):
    /// `https://vod.{region}.aliyuncs.com/`, `vod-vpc.` from a VPC.
    pub fn for_region(region: &str, vpc: bool) -> Result<Self, endpoints::UnknownRegion> {
        Ok(Endpoint(format!("https://{}/", endpoints::vod_host(region, vpc)?)))
    }

    /// An operator-supplied endpoint (VPC endpoint, the simulator).
    pub fn parse(text: &str) -> Result<Self, EndpointError> {
        Self::parse_with(text, false)
    }

    /// The ECS metadata service's base URL: plain http is allowed to its
    /// link-local address as well as to loopback.
    pub fn parse_metadata(text: &str) -> Result<Self, EndpointError> {
        Self::parse_with(text, true)
    }

    /// The metadata service of every ECS instance.
    pub const METADATA: &'static str = "http://100.100.100.200/";

    fn parse_with(text: &str, metadata: bool) -> Result<Self, EndpointError> {
        let shown = || without_userinfo(text).into_owned();
        let mut url = reqwest::Url::parse(text).map_err(|e| EndpointError::NotAUrl(shown(), e.to_string()))?;
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::Extras(shown()));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" if metadata && url.host_str() == Some("100.100.100.200") => {}
            "http" => return Err(EndpointError::PlainHttp(shown())),
            _ => return Err(EndpointError::Scheme(shown())),
        }
        // `localhost.` is `localhost`; the resolver of many systems knows only the latter.
        if url.host_str() == Some("localhost.") {
            url.set_host(Some("localhost")).map_err(|e| EndpointError::NotAUrl(shown(), e.to_string()))?;
        }
        let mut s = url.to_string();
        if !s.ends_with('/') {
            s.push('/');
        }
        Ok(Endpoint(s))
    }

    /// The URL text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host name, when the URL names one (not an IP address).
    pub fn domain(&self) -> Option<String> {
        let url = reqwest::Url::parse(&self.0).ok()?;
        match url.host()? {
            url::Host::Domain(d) => Some(d.to_owned()),
            _ => None,
        }
    }

    /// Whether the endpoint is a loopback address (the simulator).
    pub fn is_loopback(&self) -> bool {
        reqwest::Url::parse(&self.0).is_ok_and(|u| is_loopback(&u))
    }

    /// Resolves the host name before the first call, so that a name that
    /// does not exist (a mistyped region or endpoint) is told apart from an
    /// outage: the error names the host.
    pub async fn resolve_host(&self) -> Result<(), String> {
        let Some(host) = self.domain() else { return Ok(()) };
        let port = reqwest::Url::parse(&self.0).ok().and_then(|u| u.port_or_known_default()).unwrap_or(443);
        let found = tokio::net::lookup_host((host.as_str(), port)).await.map(|mut a| a.next().is_some());
        match found {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("the endpoint's host {host} resolves to no address")),
            Err(e) => Err(format!(
                "the endpoint's host {host} cannot be resolved ({e}): check --region and --endpoint, and the DNS of this machine"
            )),
        }
    }
}

/// Whether the URL's host is `localhost` (or `localhost.`) or a loopback
/// address, IPv4-mapped IPv6 included.
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.strip_suffix('.').unwrap_or(d).eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
        None => false,
    }
}

/// A URL as text with its user and password (anything before the last `@`
/// ahead of the query) replaced by `***`; done on the text, so that it works
/// on text that is not a URL at all.
pub(crate) fn without_userinfo(text: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = text.find("://").map(|i| i + 3) else { return text.into() };
    let rest = &text[start..];
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{}***@{}", &text[..start], &rest[at + 1..]).into(),
        None => text.into(),
    }
}

/// Settings of the client that do not change during a run.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoint: Endpoint,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub output_type: OutputType,
    pub auth_timeout: Option<u64>,
    /// The proxy the calls go through, chosen by [`crate::api::proxy`]; none
    /// is a direct connection whatever the environment says.
    pub proxy: Option<ProxyUrl>,
    /// Where STS calls go (the credentials' renewal, `GetCallerIdentity`).
    pub sts_endpoint: Endpoint,
    /// The ECS metadata service.
    pub metadata_endpoint: Endpoint,
    /// Roots trusted on top of the bundled ones and the system's
    /// (`--ca-file`): every call of the client, STS and metadata included.
    pub extra_roots: Vec<reqwest::Certificate>,
}

/// A found image and the id of the request that found it.
#[derive(Debug, Clone)]
pub struct Found {
    pub info: ImageInfo,
    pub request_id: Option<String>,
}

/// The signed VOD client. Cheap to share by reference across tasks; the
/// connection pool is inside.
pub struct VodClient {
    http: reqwest::Client,
    /// The key of each call, renewed when it is temporary.
    provider: Arc<Provider>,
    config: ClientConfig,
    /// The endpoint, parsed once: every call posts to it.
    url: reqwest::Url,
    auth_timeout: Option<String>,
}

impl VodClient {
    /// Builds a client with connection reuse and the configured timeouts.
    pub fn new(credentials: CredentialSource, config: ClientConfig) -> anyhow::Result<Self> {
        let builder = reqwest::Client::builder();
        // The proxy is the one `proxy` chose, or none: reqwest's own reading of
        // HTTP_PROXY, HTTPS_PROXY and ALL_PROXY is switched off.
        // It applies to every https call of the client, STS and metadata
        // calls included, but never to a loopback one.
        let builder = match &config.proxy {
            Some(proxy) => {
                let proxy = proxy.url().clone();
                builder.proxy(reqwest::Proxy::custom(move |url| {
                    (url.scheme() == "https" && !is_loopback(url)).then(|| proxy.clone())
                }))
            }
            None => builder.no_proxy(),
        };
        // Trusted: the bundled web roots, the system's store (its files, or
        // SSL_CERT_FILE / SSL_CERT_DIR when set) and --ca-file.
        let builder = config.extra_roots.iter().fold(builder, |b, c| b.add_root_certificate(c.clone()));
        let http = builder
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            // HTTP/1.1 only (the crate is built without reqwest's http2):
            // one connection per call in flight, the protocol the simulator
            // serves and the tests and bench exercise. Over HTTP/2 one
            // dropped connection would fail every call in flight at once, and
            // that many failures in a row end a run (`audit`).
            .http1_only()
            // Every attempt is ours to make, with a fresh nonce: a transparent
            // re-send would repeat one (SignatureNonceUsed). The RPC API does
            // not redirect; a redirect would be an answer to report, not follow.
            .retry(reqwest::retry::never())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vod-image-audit/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let url = reqwest::Url::parse(config.endpoint.as_str())?;
        let hosts = Hosts {
            sts: reqwest::Url::parse(config.sts_endpoint.as_str())?,
            metadata: reqwest::Url::parse(config.metadata_endpoint.as_str())?,
        };
        let provider = Arc::new(Provider::new(credentials, http.clone(), hosts));
        let auth_timeout = config.auth_timeout.map(|t| t.to_string());
        Ok(VodClient { http, provider, config, url, auth_timeout })
    }

    /// Gets the first key (a fixed one is at hand; a temporary one is
    /// fetched), so that a source that does not work is told before the run.
    /// A throttled or transient failure is tried again, [`FIRST_KEY_ATTEMPTS`] times in all.
    pub async fn first_key(&self) -> Result<(), ApiError> {
        let mut attempt = 1;
        loop {
            match self.provider.key().await {
                Ok(_) => return Ok(()),
                Err(e)
                    if attempt < FIRST_KEY_ATTEMPTS
                        && matches!(e.class, ErrorClass::Throttled | ErrorClass::Transient) =>
                {
                    tracing::warn!("getting the first key failed (attempt {attempt}): {e}");
                    tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Who the key is (`GetCallerIdentity`).
    pub async fn caller_identity(&self) -> Result<Identity, ApiError> {
        self.provider.caller_identity().await
    }

    /// Refuses the endpoint's certificate before any run when it is not
    /// trusted ([`ApiError::untrusted_certificate`]). Over https, one `HEAD`
    /// makes the handshake (unsigned, its answer unread, any other failure
    /// left to the calls that follow), unless `sts_called` and STS is the
    /// same origin: that call made it already.
    pub async fn check_certificate(&self, sts_called: bool) -> Result<(), ApiError> {
        let same_origin =
            reqwest::Url::parse(self.config.sts_endpoint.as_str()).is_ok_and(|sts| sts.origin() == self.url.origin());
        if self.url.scheme() != "https" || (sts_called && same_origin) {
            return Ok(());
        }
        match self.http.head(self.url.clone()).send().await {
            Err(e) => match transport_error(e) {
                e if e.is_untrusted_certificate() => Err(e),
                _ => Ok(()),
            },
            Ok(_) => Ok(()),
        }
    }

    /// The endpoint this client calls.
    pub fn endpoint(&self) -> &Endpoint {
        &self.config.endpoint
    }

    /// Every parameter of one attempt, before signing. Pure: the timestamp
    /// and nonce are arguments.
    pub fn params<'a>(
        &'a self,
        credentials: &'a Credentials,
        action: &'a str,
        operation: &[(&'a str, &'a str)],
        timestamp: &'a str,
        nonce: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        let mut p = common_params(credentials, API_VERSION, action, timestamp, nonce);
        p.extend_from_slice(operation);
        p.push(("OutputType", self.config.output_type.as_str()));
        if let Some(t) = &self.auth_timeout {
            p.push(("AuthTimeout", t.as_str()));
        }
        p
    }

    /// One `GetImageInfo` attempt. `Ok(None)` never happens: a miss is an
    /// [`ApiError`] of class [`ErrorClass::Missing`], as the API reports it.
    pub async fn get_image_info(&self, image_id: &str) -> Result<Found, ApiError> {
        let (body, request_id_header, key) =
            self.call("GetImageInfo", &[("ImageId", image_id)], MAX_ANSWER_BYTES).await?;
        let parsed: GetImageInfoResponse =
            serde_json::from_slice(&body).map_err(|e| key.redactor.redact_error(bad_response(200, &e.to_string())))?;
        refuse_error_code("GetImageInfo", parsed.code.as_deref(), &key.redactor)?;
        let mut info = parsed.image_info.ok_or_else(|| bad_response(200, "the answer has no ImageInfo"))?;
        if info == ImageInfo::default() {
            return Err(bad_response(200, "the answer's ImageInfo is empty: it describes no image"));
        }
        let mut request_id = parsed.request_id.or(request_id_header);
        if let Some(id) = &mut request_id {
            key.redactor.redact_in_place(id);
        }
        if let Some(named) = names_another(image_id, &info) {
            let why =
                format!("the GetImageInfo answer is about ImageId {}, not this id; not filed", quote_answer_id(named));
            return Err(ApiError::mismatched_image_id(key.redactor.redact(&why).into_owned(), request_id));
        }
        info.for_each_text(|text| key.redactor.redact_in_place(text));
        Ok(Found { info, request_id })
    }

    /// One `GetMediaAuditResult` attempt for an image id: the machine's
    /// moderation result, every part of it read ([`ModerationReading`]). A
    /// 200 without `MediaAuditResult`, or carrying an error `Code`, is a bad
    /// answer (retried, then failed): what the service answers for a medium
    /// never reviewed is not documented, and an answer that says nothing
    /// must not pass for one that says "pass". Bounded like `GetImageInfo`.
    pub async fn get_media_audit_result(&self, media_id: &str) -> Result<Moderated, ApiError> {
        let (body, request_id_header, key) =
            self.call("GetMediaAuditResult", &[("MediaId", media_id)], MAX_ANSWER_BYTES).await?;
        let parsed: GetMediaAuditResultResponse =
            serde_json::from_slice(&body).map_err(|e| key.redactor.redact_error(bad_response(200, &e.to_string())))?;
        refuse_error_code("GetMediaAuditResult", parsed.code.as_deref(), &key.redactor)?;
        let result = parsed.media_audit_result.ok_or_else(|| {
            bad_response(200, "the GetMediaAuditResult answer has no MediaAuditResult (see the README's assumptions)")
        })?;
        let mut reading = result.read();
        let r = &key.redactor;
        let ModerationReading { suggestion, strictest: _, unrecognised, reasons, abnormal_modules } = &mut reading;
        for text in suggestion.iter_mut().chain(abnormal_modules.iter_mut()).chain(unrecognised).chain(reasons) {
            r.redact_in_place(text);
        }
        let mut request_id = parsed.request_id.or(request_id_header);
        if let Some(id) = &mut request_id {
            r.redact_in_place(id);
        }
        Ok(Moderated { reading, request_id })
    }

    /// One `GetImageInfos` attempt for up to [`MAX_BATCH_IDS`] ids.
    pub async fn get_image_infos(&self, image_ids: &[&str]) -> Result<GetImageInfosResponse, ApiError> {
        let (body, _, key) =
            self.call("GetImageInfos", &[("ImageIds", &image_ids.join(","))], MAX_BATCH_ANSWER_BYTES).await?;
        let mut answer: GetImageInfosResponse =
            serde_json::from_slice(&body).map_err(|e| key.redactor.redact_error(bad_response(200, &e.to_string())))?;
        let r = &key.redactor;
        refuse_error_code("GetImageInfos", answer.code.as_deref(), r)?;
        for info in &mut answer.image_info {
            info.for_each_text(|text| r.redact_in_place(text));
        }
        answer.non_exist_image_ids.iter_mut().for_each(|id| r.redact_in_place(id));
        if let Some(id) = &mut answer.request_id {
            r.redact_in_place(id);
        }
        Ok(answer)
    }

    /// One signed attempt of a VOD action, with the provider's current key;
    /// the answer's body, success or error, read up to `cap` bytes. Hands
    /// back the key, whose redactor scrubs the answer.
    pub(crate) async fn call(
        &self,
        action: &str,
        operation: &[(&str, &str)],
        cap: usize,
    ) -> Result<(bytes::Bytes, Option<String>, Arc<Key>), ApiError> {
        let key = self.provider.key().await?;
        let timestamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let nonce = format!("{:032x}", rand::random::<u128>());
        let body = {
            let params = self.params(&key.credentials, action, operation, &timestamp, &nonce);
            key.signer.signed_query("POST", &params)
        };
        match post_form(&self.http, &self.url, body, &key.redactor, action, cap).await {
            Ok((body, request_id)) => Ok((body, request_id, key)),
            Err(mut e) => {
                if e.code == "InvalidSecurityToken.Expired" {
                    self.token_expired(&key, &mut e);
                }
                Err(e)
            }
        }
    }

    /// The service says the STS token expired: a renewed source renews it
    /// and the call is tried again; a fixed token cannot be, and the run
    /// stops with what to do.
    fn token_expired(&self, key: &Arc<Key>, e: &mut ApiError) {
        if self.provider.renews() {
            self.provider.expire(key);
            e.class = ErrorClass::Transient;
            return;
        }
        let at = key.expires.or(e.server_date).unwrap_or_else(SystemTime::now);
        e.class = ErrorClass::Fatal;
        e.message = format!(
            "the STS token expired at {} or before ({}); use a RAM role source so the tool can renew it",
            humantime::format_rfc3339_seconds(at),
            self.provider.source().source
        );
    }
}

/// The parameters every signed RPC call carries.
pub(crate) fn common_params<'a>(
    credentials: &'a Credentials,
    version: &'a str,
    action: &'a str,
    timestamp: &'a str,
    nonce: &'a str,
) -> Vec<(&'a str, &'a str)> {
    let mut p: Vec<(&str, &str)> = Vec::with_capacity(14);
    p.extend([
        ("Action", action),
        ("Version", version),
        ("Format", "JSON"),
        ("AccessKeyId", credentials.access_key_id.as_str()),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Timestamp", timestamp),
    ]);
    if let Some(token) = &credentials.security_token {
        p.push(("SecurityToken", token.expose()));
    }
    p
}

/// One signed RPC attempt of any product (STS, say) with `key`.
pub(crate) async fn signed_call(
    http: &reqwest::Client,
    url: &reqwest::Url,
    key: &Key,
    version: &str,
    action: &str,
    operation: &[(&str, &str)],
) -> Result<(bytes::Bytes, Option<String>), ApiError> {
    let timestamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let nonce = format!("{:032x}", rand::random::<u128>());
    let body = {
        let mut params = common_params(&key.credentials, version, action, &timestamp, &nonce);
        params.extend_from_slice(operation);
        key.signer.signed_query("POST", &params)
    };
    post_form(http, url, body, &key.redactor, action, MAX_ANSWER_BYTES).await
}

/// `POST /` with the signed parameters as a form body (the RPC gateway
/// signs query and form parameters alike), so the URL stays the bare
/// endpoint: nothing to re-parse per call, and the signature and any STS
/// token stay out of URLs that proxies log. The body is read up to `cap`.
async fn post_form(
    http: &reqwest::Client,
    url: &reqwest::Url,
    body: String,
    redactor: &Redactor,
    action: &str,
    cap: usize,
) -> Result<(bytes::Bytes, Option<String>), ApiError> {
    let response = http
        .post(url.clone())
        .header(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"))
        .body(body)
        .send()
        .await
        .map_err(transport_error)?;
    let status = response.status().as_u16();
    if status == 200 {
        // The hot path: no copy of the headers, only the one we may use.
        let request_id = header_str(response.headers(), "x-acs-request-id");
        let body = read_capped(response, action, cap).await?;
        return Ok((body, request_id));
    }
    let headers = response.headers().clone();
    let body = read_capped(response, action, cap).await?;
    let mut err = error_from_answer(status, &headers, &body);
    err.message = scrub(&err.message, redactor);
    redactor.redact_in_place(&mut err.code);
    if let Some(id) = &mut err.request_id {
        redactor.redact_in_place(id);
    }
    Err(err)
}

/// Removes what must not reach a log or a report from a server message:
/// the echoed string-to-sign (it carries every parameter, the STS token
/// among them) and the token itself in any encoding.
fn scrub(message: &str, redactor: &Redactor) -> String {
    let m = match message.find("server string to sign is:") {
        Some(i) => format!("{}server string to sign is: (withheld: it holds the request's parameters)", &message[..i]),
        None => message.to_owned(),
    };
    redactor.redact(&m).into_owned()
}

/// The id a `GetImageInfo` answer names when it is not the one asked; an
/// answer that names none is about the id asked (see the module doc).
fn names_another<'a>(asked: &str, info: &'a ImageInfo) -> Option<&'a str> {
    info.image_id.as_deref().filter(|named| *named != asked)
}

/// What `GetMediaAuditResult` said about one image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moderated {
    pub reading: ModerationReading,
    pub request_id: Option<String>,
}

/// A 200 answer that carries an error `Code` is not the action's answer,
/// whatever else it holds: a bad answer, retried like one (never filed as a
/// found image with empty fields).
fn refuse_error_code(action: &str, code: Option<&str>, redactor: &Redactor) -> Result<(), ApiError> {
    match code.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(()),
        Some(code) => {
            let why = format!("the {action} answer is a 200 carrying the error Code {code:?}");
            Err(bad_answer(200, redactor.redact(&why).into_owned()))
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
