//! The VOD OpenAPI client: signed `GetImageInfo` (and `GetImageInfos`) calls.
//!
//! Owns the endpoint rules, the request parameters, one attempt of a call and
//! the decoding of its answer into a result or an [`ApiError`]. It makes a
//! fresh `Timestamp` and `SignatureNonce` for every attempt (the server
//! rejects a reused nonce), but it never retries: that is `retry`'s and
//! `run`'s job. Signing itself is `signing`.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};

use std::sync::Arc;

use crate::api::credentials::{CredentialSource, Credentials};
use crate::api::endpoints;
use crate::api::error::{classify, ApiError, ErrorClass};
use crate::api::model::{ErrorBody, GetImageInfoResponse, GetImageInfosResponse, ImageInfo};
use crate::api::provider::{Hosts, Provider};
use crate::api::secret::Secret;
use crate::api::signing;
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
        let url = reqwest::Url::parse(text).map_err(|e| EndpointError::NotAUrl(text.into(), e.to_string()))?;
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::Extras(text.into()));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" if metadata && url.host_str() == Some("100.100.100.200") => {}
            "http" => return Err(EndpointError::PlainHttp(text.into())),
            _ => return Err(EndpointError::Scheme(text.into())),
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

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
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
    /// Where STS calls go (the credentials' renewal, `GetCallerIdentity`).
    pub sts_endpoint: Endpoint,
    /// The ECS metadata service.
    pub metadata_endpoint: Endpoint,
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
        let http = reqwest::Client::builder()
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
        let (body, request_id_header) = self.call("GetImageInfo", &[("ImageId", image_id)]).await?;
        let parsed: GetImageInfoResponse =
            serde_json::from_slice(&body).map_err(|e| bad_response(200, &e.to_string()))?;
        let info = parsed.image_info.ok_or_else(|| bad_response(200, "the answer has no ImageInfo"))?;
        Ok(Found { info, request_id: parsed.request_id.or(request_id_header) })
    }

    /// One `GetImageInfos` attempt for up to [`MAX_BATCH_IDS`] ids.
    pub async fn get_image_infos(&self, image_ids: &[&str]) -> Result<GetImageInfosResponse, ApiError> {
        let (body, _) = self.call("GetImageInfos", &[("ImageIds", &image_ids.join(","))]).await?;
        serde_json::from_slice(&body).map_err(|e| bad_response(200, &e.to_string()))
    }

    /// One signed attempt of a VOD action, with the provider's current key.
    async fn call(&self, action: &str, operation: &[(&str, &str)]) -> Result<(bytes::Bytes, Option<String>), ApiError> {
        let key = self.provider.key().await?;
        let timestamp = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let nonce = format!("{:032x}", rand::random::<u128>());
        let body = {
            let params = self.params(&key.credentials, action, operation, &timestamp, &nonce);
            key.signer.signed_query("POST", &params)
        };
        let mut result = post_form(&self.http, &self.url, body, key.credentials.security_token.as_ref()).await;
        if let Err(e) = &mut result {
            if e.code == "InvalidSecurityToken.Expired" {
                self.token_expired(&key, e);
            }
        }
        result
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
    post_form(http, url, body, key.credentials.security_token.as_ref()).await
}

/// `POST /` with the signed parameters as a form body (the RPC gateway
/// signs query and form parameters alike), so the URL stays the bare
/// endpoint: nothing to re-parse per call, and the signature and any STS
/// token stay out of URLs that proxies log.
async fn post_form(
    http: &reqwest::Client,
    url: &reqwest::Url,
    body: String,
    token: Option<&Secret>,
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
        let body = response.bytes().await.map_err(transport_error)?;
        return Ok((body, request_id));
    }
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(transport_error)?;
    let mut err = error_from_answer(status, &headers, &body);
    err.message = redact(&err.message, token);
    Err(err)
}

/// Removes what must not reach a log or a report from a server message:
/// the echoed string-to-sign (it carries every parameter, the STS token
/// among them) and the token itself in any encoding.
fn redact(message: &str, token: Option<&Secret>) -> String {
    let mut m = match message.find("server string to sign is:") {
        Some(i) => format!("{}server string to sign is: (withheld: it holds the request's parameters)", &message[..i]),
        None => message.to_owned(),
    };
    if let Some(token) = token {
        let raw = token.expose();
        let once = signing::percent_encode(raw);
        let twice = signing::percent_encode(&once);
        for form in [raw, once.as_str(), twice.as_str()] {
            if !form.is_empty() {
                m = m.replace(form, "***");
            }
        }
    }
    m
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Turns a reqwest failure into an error that carries no URL: the signed
/// parameters travel in the form body, so the URL holds none of them today,
/// and an error message keeps it that way whatever a URL may come to hold.
pub(crate) fn transport_error(e: reqwest::Error) -> ApiError {
    let code = if e.is_timeout() {
        "Timeout"
    } else if e.is_connect() {
        "ConnectionError"
    } else if e.is_body() || e.is_decode() {
        "ConnectionReset"
    } else {
        "ConnectionError"
    };
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    ApiError::transport(code, message)
}

fn bad_response(status: u16, why: &str) -> ApiError {
    ApiError {
        class: ErrorClass::Transient,
        code: "BadResponse".into(),
        message: format!("the answer is not the API's JSON: {why}"),
        request_id: None,
        http_status: Some(status),
        retry_after: None,
        server_date: None,
    }
}

/// Decodes a non-200 answer: the API's error body when there is one, the
/// server's retry hints, and its clock.
pub fn error_from_answer(status: u16, headers: &HeaderMap, body: &[u8]) -> ApiError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let code = parsed.as_ref().and_then(|b| b.code.clone()).filter(|c| !c.is_empty());
    let class = classify(code.as_deref(), Some(status));
    let message = match (&parsed, &code) {
        (Some(b), Some(_)) => b.message.clone().unwrap_or_default(),
        _ => {
            let snippet: String = String::from_utf8_lossy(body).chars().take(120).collect();
            format!("HTTP {status} with a body that is not the API's JSON: {snippet:?}")
        }
    };
    ApiError {
        class,
        code: code.unwrap_or_else(|| format!("HttpStatus{status}")),
        message,
        request_id: parsed.and_then(|b| b.request_id),
        http_status: Some(status),
        retry_after: retry_hint(headers),
        server_date: header_str(headers, "date").and_then(|d| httpdate::parse_http_date(&d).ok()),
    }
}

/// The longest wait any of the server's hints asks for.
pub fn retry_hint(headers: &HeaderMap) -> Option<Duration> {
    let mut best: Option<u64> = None;
    let mut take = |ms: u64| best = Some(best.map_or(ms, |b| b.max(ms)));
    if let Some(ms) = header_str(headers, "x-acs-retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        take(ms);
    }
    for name in ["x-ratelimit-user", "x-ratelimit-user-api"] {
        if let Some(ms) = header_str(headers, name).and_then(|v| time_left_ms(&v)) {
            take(ms);
        }
    }
    best.map(Duration::from_millis)
}

/// `TimeLeft` (milliseconds) from `Limit:100,Remain:0,TimeLeft:2000,Reset:...`.
pub fn time_left_ms(value: &str) -> Option<u64> {
    value.split(',').find_map(|part| {
        let (k, v) = part.split_once(':')?;
        (k.trim() == "TimeLeft").then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::secret::Secret;

    fn client(token: Option<&str>) -> VodClient {
        client_at(token, Endpoint::for_region("cn-shanghai", false).unwrap())
    }

    fn creds(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "testAccessKeyId".into(),
            access_key_secret: Secret::new("testAccessKeySecret"),
            security_token: token.map(Secret::new),
            source: "test".into(),
        }
    }

    fn client_at(token: Option<&str>, endpoint: Endpoint) -> VodClient {
        let creds = creds(token);
        let config = ClientConfig {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            output_type: OutputType::Oss,
            auth_timeout: Some(3600),
            sts_endpoint: endpoint.clone(),
            metadata_endpoint: endpoint.clone(),
            endpoint,
        };
        VodClient::new(creds.into(), config).unwrap()
    }

    #[test]
    fn params_carry_every_common_parameter() {
        let c = client(None);
        let k = creds(None);
        let p = c.params(&k, "GetImageInfo", &[("ImageId", "abc")], "2020-01-01T00:00:00Z", "n1");
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        assert_eq!(get("Action"), Some("GetImageInfo"));
        assert_eq!(get("Version"), Some("2017-03-21"));
        assert_eq!(get("Format"), Some("JSON"));
        assert_eq!(get("AccessKeyId"), Some("testAccessKeyId"));
        assert_eq!(get("SignatureMethod"), Some("HMAC-SHA1"));
        assert_eq!(get("SignatureVersion"), Some("1.0"));
        assert_eq!(get("SignatureNonce"), Some("n1"));
        assert_eq!(get("Timestamp"), Some("2020-01-01T00:00:00Z"));
        assert_eq!(get("ImageId"), Some("abc"));
        assert_eq!(get("OutputType"), Some("oss"));
        assert_eq!(get("AuthTimeout"), Some("3600"));
        assert_eq!(get("SecurityToken"), None);
        assert_eq!(get("Signature"), None, "signing adds it");
    }

    #[test]
    fn security_token_is_sent_and_signed() {
        let c = client(Some("tok+/="));
        let k = creds(Some("tok+/="));
        let p = c.params(&k, "GetImageInfo", &[("ImageId", "abc")], "2020-01-01T00:00:00Z", "n1");
        assert!(p.contains(&("SecurityToken", "tok+/=")));
        let q = signing::signed_query("POST", &p, "testAccessKeySecret");
        assert!(q.contains("SecurityToken=tok%2B%2F%3D"), "{q}");
    }

    #[test]
    fn server_messages_lose_the_string_to_sign_and_the_token() {
        let token = Secret::new("tok+/=");
        let m = redact("Specified signature is not matched with our calculation. server string to sign is:POST&%2F&SecurityToken%3Dtok%252B%252F%253D", Some(&token));
        assert_eq!(m, "Specified signature is not matched with our calculation. server string to sign is: (withheld: it holds the request's parameters)");
        assert_eq!(redact("echo tok+/= and tok%2B%2F%3D", Some(&token)), "echo *** and ***");
    }

    #[test]
    fn endpoint_rules() {
        assert_eq!(Endpoint::for_region("cn-beijing", false).unwrap().as_str(), "https://vod.cn-beijing.aliyuncs.com/");
        assert!(Endpoint::parse("https://vod-vpc.cn-shanghai.aliyuncs.com").is_ok());
        assert_eq!(Endpoint::parse("http://127.0.0.1:9480").unwrap().as_str(), "http://127.0.0.1:9480/");
        assert!(Endpoint::parse("http://localhost:1/").is_ok());
        assert!(Endpoint::parse("http://[::1]:8080/").is_ok());
        assert!(Endpoint::parse("http://127.8.9.10/").is_ok());
        assert!(matches!(Endpoint::parse("http://vod.cn-shanghai.aliyuncs.com/"), Err(EndpointError::PlainHttp(_))));
        assert!(matches!(Endpoint::parse("http://10.0.0.1/"), Err(EndpointError::PlainHttp(_))));
        assert!(matches!(Endpoint::parse("http://localhost.evil.com/"), Err(EndpointError::PlainHttp(_))));
        assert!(matches!(Endpoint::parse("ftp://x/"), Err(EndpointError::Scheme(_))));
        assert!(matches!(Endpoint::parse("https://x/?a=b"), Err(EndpointError::Extras(_))));
        assert!(matches!(Endpoint::parse("https://u:p@x/"), Err(EndpointError::Extras(_))));
        assert!(matches!(Endpoint::parse("not a url"), Err(EndpointError::NotAUrl(..))));
    }

    /// What goes on the wire: `POST /` to the bare endpoint, the signed
    /// parameters as a form body that verifies, nothing in the URL.
    #[tokio::test]
    async fn a_call_posts_a_signed_form_body_to_the_bare_endpoint() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let n = sock.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the request ended early");
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if body.len() >= len {
                        break (head.to_owned(), body.to_owned());
                    }
                }
            };
            let answer = r#"{"RequestId":"R1","ImageInfo":{"ImageId":"abc","AuditStatus":"Normal"}}"#;
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                answer.len()
            );
            sock.write_all(reply.as_bytes()).await.unwrap();
            (head, body)
        });
        let c = client_at(Some("tok+/="), Endpoint::parse(&format!("http://{addr}")).unwrap());
        let found = c.get_image_info("abc").await.unwrap();
        assert_eq!(found.info.audit_status.as_deref(), Some("Normal"));
        let (head, body) = server.await.unwrap();
        let request_line = head.lines().next().unwrap();
        assert_eq!(request_line, "POST / HTTP/1.1", "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/x-www-form-urlencoded"), "{head}");
        let params: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ImageId"), Some("abc"));
        assert_eq!(get("SecurityToken"), Some("tok+/="));
        let signature = get("Signature").expect("signed");
        let unsigned: Vec<(String, String)> = params.iter().filter(|(n, _)| n != "Signature").cloned().collect();
        assert_eq!(signature, signing::sign("POST", &unsigned, "testAccessKeySecret"));
        assert!(!body.contains("tok+/="), "the token is percent-encoded in the body: {body}");
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn error_answers_decode_with_hints() {
        let body = br#"{"RequestId":"R1","HostId":"vod.cn-shanghai.aliyuncs.com","Code":"Throttling.User","Message":"Request was denied due to user flow control.","Recommend":"x"}"#;
        let h = headers(&[
            ("x-ratelimit-user", "Limit:100,Remain:0,TimeLeft:2000,Reset:1700000000"),
            ("x-acs-retry-after", "500"),
        ]);
        let e = error_from_answer(400, &h, body);
        assert_eq!(e.class, ErrorClass::Throttled);
        assert_eq!(e.code, "Throttling.User");
        assert_eq!(e.request_id.as_deref(), Some("R1"));
        assert_eq!(e.retry_after, Some(Duration::from_millis(2000)));
        assert_eq!(e.http_status, Some(400));
    }

    #[test]
    fn html_from_a_proxy_is_transient() {
        let e = error_from_answer(502, &HeaderMap::new(), b"<html><body>Bad Gateway</body></html>");
        assert_eq!(e.class, ErrorClass::Transient);
        assert_eq!(e.code, "HttpStatus502");
        assert!(e.message.contains("Bad Gateway"));
    }

    #[test]
    fn missing_and_unknown_key_differ_on_404() {
        let miss = error_from_answer(
            404,
            &HeaderMap::new(),
            br#"{"Code":"NoSuchResource","Message":"The specified resource does not exist."}"#,
        );
        assert_eq!(miss.class, ErrorClass::Missing);
        let key = error_from_answer(
            404,
            &HeaderMap::new(),
            br#"{"Code":"InvalidAccessKeyId.NotFound","Message":"Specified access key is not found."}"#,
        );
        assert_eq!(key.class, ErrorClass::Fatal);
    }

    #[test]
    fn server_date_is_read_for_skew_advice() {
        let h = headers(&[("date", "Sun, 06 Nov 1994 08:49:37 GMT")]);
        let e = error_from_answer(400, &h, br#"{"Code":"InvalidTimeStamp.Expired","Message":"expired"}"#);
        assert_eq!(e.server_date, Some(humantime::parse_rfc3339("1994-11-06T08:49:37Z").unwrap()));
        assert!(e.advice().contains("minutes ahead of"), "{}", e.advice());
    }

    #[test]
    fn time_left_parsing() {
        assert_eq!(time_left_ms("Limit:100,Remain:0,TimeLeft:2000,Reset:1"), Some(2000));
        assert_eq!(time_left_ms("Limit:100, TimeLeft: 15"), Some(15));
        assert_eq!(time_left_ms("garbage"), None);
    }
}
