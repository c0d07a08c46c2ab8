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

use std::time::{Duration, SystemTime};

use std::sync::Arc;

use crate::api::answer::{bad_answer, bad_response, transport_error};
use crate::api::credentials::{CredentialSource, Credentials};
use crate::api::endpoints::{is_loopback, Endpoint};
use crate::api::error::{quote_answer_id, ApiError, ErrorClass};
use crate::api::model::{GetImageInfoResponse, GetImageInfosResponse, GetMediaAuditResultResponse, ImageInfo};
use crate::api::moderation::ModerationReading;
use crate::api::provider::{Hosts, Provider};
use crate::api::proxy::ProxyUrl;
use crate::api::redact::Redactor;
use crate::api::rpc::{common_params, post_form, Key, MAX_ANSWER_BYTES};
use crate::api::sts::Identity;

/// The API version of every VOD call.
pub(crate) const API_VERSION: &str = "2017-03-21";

/// How long to wait for a TCP + TLS connection. Alibaba Cloud's SDKs use 5 s
/// (darabonba's default `connectTimeout`).
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one attempt may take, end to end. The Tea SDKs' default read
/// timeout is 10 s; GetImageInfo normally answers in well under a second.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts at the first key of a temporary source before the run gives up:
/// three, with 2 s and 4 s between them, the retry the official credentials
/// libraries leave to the caller.
pub(crate) const FIRST_KEY_ATTEMPTS: u32 = 3;

/// The most ids one `GetImageInfos` call takes (vod-openapi.md §6).
pub(crate) const MAX_BATCH_IDS: usize = 20;

/// The largest `GetImageInfos` answer read: room for [`MAX_BATCH_IDS`]
/// images of [`MAX_ANSWER_BYTES`] each, 20 MiB.
pub(crate) const MAX_BATCH_ANSWER_BYTES: usize = MAX_BATCH_IDS * MAX_ANSWER_BYTES;

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

/// Settings of the client that do not change during a run.
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
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
pub(crate) struct Found {
    pub info: ImageInfo,
    pub request_id: Option<String>,
}

/// The signed VOD client. Cheap to share by reference across tasks; the
/// connection pool is inside.
pub(crate) struct VodClient {
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
    pub(crate) fn new(credentials: CredentialSource, config: ClientConfig) -> anyhow::Result<Self> {
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
    pub(crate) async fn first_key(&self) -> Result<(), ApiError> {
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
    pub(crate) async fn caller_identity(&self) -> Result<Identity, ApiError> {
        self.provider.caller_identity().await
    }

    /// Refuses the endpoint's certificate before any run when it is not
    /// trusted ([`ApiError::untrusted_certificate`]). Over https, one `HEAD`
    /// makes the handshake (unsigned, its answer unread, any other failure
    /// left to the calls that follow), unless `sts_called` and STS is the
    /// same origin: that call made it already.
    pub(crate) async fn check_certificate(&self, sts_called: bool) -> Result<(), ApiError> {
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
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.config.endpoint
    }

    /// Every parameter of one attempt, before signing. Pure: the timestamp
    /// and nonce are arguments.
    pub(crate) fn params<'a>(
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
    pub(crate) async fn get_image_info(&self, image_id: &str) -> Result<Found, ApiError> {
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
    pub(crate) async fn get_media_audit_result(&self, media_id: &str) -> Result<Moderated, ApiError> {
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
    pub(crate) async fn get_image_infos(&self, image_ids: &[&str]) -> Result<GetImageInfosResponse, ApiError> {
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

/// The id a `GetImageInfo` answer names when it is not the one asked; an
/// answer that names none is about the id asked (see the module doc).
fn names_another<'a>(asked: &str, info: &'a ImageInfo) -> Option<&'a str> {
    info.image_id.as_deref().filter(|named| *named != asked)
}

/// What `GetMediaAuditResult` said about one image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Moderated {
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
