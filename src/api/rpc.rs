//! One signed RPC call on the wire, of any product (VOD, STS): the key that
//! signs it, the common parameters, the form `POST`, and the scrubbing of
//! what the answer echoes. The VOD client and the STS calls both build on
//! it; neither knows the other's actions.

use std::time::SystemTime;

use reqwest::header::{HeaderValue, CONTENT_TYPE};

use crate::api::answer::{error_from_answer, header_str, read_capped, transport_error};
use crate::api::credentials::Credentials;
use crate::api::error::ApiError;
use crate::api::redact::Redactor;
use crate::api::secret::Secret;
use crate::api::signing::Signer;

/// The largest `GetImageInfo` answer read, success or error, in bytes. One
/// image's description is a few KB at most (the documented example is under
/// 1 KB; the longest fields are two signed URLs), an error body less: 1 MiB
/// is hundreds of times that, and with 16 calls in flight still only 16 MiB.
/// A bigger answer is not the API's, and is not read past this.
pub(crate) const MAX_ANSWER_BYTES: usize = 1 << 20;

/// A key with its signer and, for a temporary one, when it expires.
#[derive(Debug)]
pub(crate) struct Key {
    pub credentials: Credentials,
    pub signer: Signer,
    pub expires: Option<SystemTime>,
    /// The forms of its AccessKey secret and STS token, to scrub from the
    /// answers it gets.
    pub redactor: Redactor,
}

impl Key {
    /// Keys a signer with the secret.
    pub(crate) fn new(credentials: Credentials, expires: Option<SystemTime>) -> Self {
        let signer = Signer::new(credentials.access_key_secret.expose());
        let secrets = [Some(&credentials.access_key_secret), credentials.security_token.as_ref()];
        let redactor = Redactor::of(secrets.into_iter().flatten().map(Secret::expose));
        Key { credentials, signer, expires, redactor }
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
pub(crate) async fn post_form(
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
pub(crate) fn scrub(message: &str, redactor: &Redactor) -> String {
    let m = match message.find("server string to sign is:") {
        Some(i) => format!("{}server string to sign is: (withheld: it holds the request's parameters)", &message[..i]),
        None => message.to_owned(),
    };
    redactor.redact(&m).into_owned()
}
