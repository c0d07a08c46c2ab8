//! What can go wrong with one API call, and what kind of wrong it is.
//!
//! Owns [`ApiError`] (everything a report needs to know about a failed call)
//! and [`classify`], the pure table from `(Code, HTTP status)` to an
//! [`ErrorClass`] (vod-openapi.md §4: Code first, HTTP status second). A
//! positive `x-acs-retry-after` header overrides the table (throttling,
//! whatever the code and status); reading headers is `answer`'s. What to
//! *do* about a class (retry, wait, stop) is `retry`'s decision, not this
//! module's.
//!
//! It also owns how the server's text is shown: an `ApiError` keeps the
//! server's `Code`, `Message` and `RequestId` as sent (the reports store them
//! raw; CSV and JSON quoting carry any character), and its `Display`, which
//! is what reaches a terminal ("stopped by a fatal API error", `check`, the
//! log), passes them through [`escape_for_terminal`], so that a message
//! cannot move the cursor, clear the screen, forge a line of ours or reorder
//! text with a bidi override.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

/// The code of a connection refused because the server's certificate is not
/// trusted (ours, never the server's: it comes with no HTTP status).
pub(crate) const UNTRUSTED_CERTIFICATE: &str = "UntrustedCertificate";

/// How a failed call is to be treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ErrorClass {
    /// `NoSuchResource`: the image does not exist. A result, not a failure.
    Missing,
    /// `Throttling*`, HTTP 429, or any error answer with a positive
    /// `x-acs-retry-after`: over quota. Back off, retry, slow down.
    Throttled,
    /// 5xx, `ServiceUnavailable`, `InternalError`, `SignatureNonceUsed`,
    /// timeouts, resets, a body that is not the API's, an answer about
    /// another image: retry.
    Transient,
    /// `InvalidParameter`, `MissingParameter` and other 4xx answers about this
    /// request: record a failure for this id, never retry.
    BadRequest,
    /// Signature, unknown key, permission, clock skew, STS token: every
    /// further call would fail the same way. Stop the run.
    Fatal,
}

/// Decides the class of an error from its API `Code` (if the body carried
/// one) and its HTTP status (if there was an answer at all).
pub(crate) fn classify(code: Option<&str>, http_status: Option<u16>) -> ErrorClass {
    if let Some(code) = code {
        if let Some(class) = classify_code(code) {
            return class;
        }
    }
    match http_status {
        // A transport failure: timeout, reset, refused.
        None => ErrorClass::Transient,
        Some(429) => ErrorClass::Throttled,
        Some(s) if s >= 500 => ErrorClass::Transient,
        // A 4xx whose body is not the API's (a proxy's HTML page, say) says
        // nothing about the id: treat it as the network's fault.
        Some(_) if code.is_none() => ErrorClass::Transient,
        Some(401) | Some(403) => ErrorClass::Fatal,
        Some(_) => ErrorClass::BadRequest,
    }
}

fn classify_code(code: &str) -> Option<ErrorClass> {
    let family = code.split('.').next().unwrap_or(code);
    Some(match (family, code) {
        (_, "NoSuchResource") => ErrorClass::Missing,
        ("Throttling", _) => ErrorClass::Throttled,
        (_, "ServiceUnavailable" | "ServiceUnAvailable" | "InternalError" | "SignatureNonceUsed") => {
            ErrorClass::Transient
        }
        (_, "InvalidParameter" | "MissingParameter") => ErrorClass::BadRequest,
        // The gateway's answers about the request itself, not the image:
        // every call would get the same (the official SDKs' error tables,
        // alibabacloud-gateway-pop and tea-rpc).
        (_, "InvalidApi.NotFound" | "InvalidAction.NotFound" | "UnsupportedHTTPMethod" | "InvalidSignatureVersion")
        | (_, "InvalidVersion") => ErrorClass::Fatal,
        (_, missing) if missing.starts_with("Missing") => ErrorClass::Fatal,
        (_, "SignatureDoesNotMatch" | "IncompleteSignature" | "InvalidSignatureMethod") => ErrorClass::Fatal,
        ("InvalidAccessKeyId" | "Forbidden" | "OperationDenied" | "InvalidTimeStamp", _) => ErrorClass::Fatal,
        ("InvalidSecurityToken" | "MissingSecurityToken", _) => ErrorClass::Fatal,
        _ => return None,
    })
}

/// The code of an answer that names an image it was not asked about: a
/// `GetImageInfo` answer about another id, a `GetImageInfos` answer that
/// lists an id not asked or an id twice. Ours, not the API's; transient like
/// `BadResponse`, so the call is made again.
pub(crate) const MISMATCHED_IMAGE_ID: &str = "MismatchedImageId";

/// The most characters of an id from an answer quoted in a message: the
/// longest id the input accepts.
const QUOTED_ID_CHARS: usize = 64;

/// A failed call, with everything the report and the operator need.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub(crate) struct ApiError {
    /// How to treat it.
    pub class: ErrorClass,
    /// The API's `Code`, or one of ours for failures without an API answer:
    /// `Timeout`, `ConnectionError`, `BadResponse`, `HttpStatus<N>`.
    pub code: String,
    /// The API's `Message`, or a description of the transport failure.
    pub message: String,
    /// The API's `RequestId`, when there was one (support needs it).
    pub request_id: Option<String>,
    /// The HTTP status, when there was an answer.
    pub http_status: Option<u16>,
    /// How long the server asked us to wait (`x-acs-retry-after`, or the
    /// `TimeLeft` of `x-ratelimit-user*`).
    pub retry_after: Option<Duration>,
    /// The server's `Date` header, to explain clock-skew errors.
    pub server_date: Option<SystemTime>,
}

impl ApiError {
    /// An error that never reached the API (timeout, reset, refused).
    pub(crate) fn transport(code: &str, message: impl Into<String>) -> Self {
        ApiError {
            class: ErrorClass::Transient,
            code: code.to_owned(),
            message: message.into(),
            request_id: None,
            http_status: None,
            retry_after: None,
            server_date: None,
        }
    }

    /// A server certificate the client does not trust: fatal, since every
    /// further call meets the same certificate. The message names the host and
    /// the two ways to trust it.
    pub(crate) fn untrusted_certificate(host: &str, why: &str) -> Self {
        ApiError {
            class: ErrorClass::Fatal,
            ..ApiError::transport(
                UNTRUSTED_CERTIFICATE,
                format!(
                    "the TLS certificate of {host} is not trusted ({why}): give its CA with --ca-file FILE \
                     (or SSL_CERT_FILE=FILE), or add the CA to this machine's certificate store"
                ),
            )
        }
    }

    /// Whether this is [`ApiError::untrusted_certificate`]: a setting to fix
    /// before any run, not a failure of the service.
    pub(crate) fn is_untrusted_certificate(&self) -> bool {
        self.code == UNTRUSTED_CERTIFICATE && self.http_status.is_none()
    }

    /// The error as one line for a terminal: every text that came from the
    /// server escaped.
    fn describe(&self) -> String {
        let mut s = format!("{}: {}", escape_for_terminal(&self.code), escape_for_terminal(&self.message));
        if let Some(status) = self.http_status {
            s.push_str(&format!(" (HTTP {status}"));
            if let Some(id) = &self.request_id {
                s.push_str(&format!(", RequestId {}", escape_for_terminal(id)));
            }
            s.push(')');
        }
        s
    }

    /// A 200 whose answer names an image it was not asked about
    /// ([`MISMATCHED_IMAGE_ID`]); `why` says which id it named.
    pub(crate) fn mismatched_image_id(why: String, request_id: Option<String>) -> Self {
        ApiError {
            class: ErrorClass::Transient,
            code: MISMATCHED_IMAGE_ID.to_owned(),
            message: why,
            request_id,
            http_status: Some(200),
            retry_after: None,
            server_date: None,
        }
    }

    /// Whether this error refuses one API to the account (it is not offered
    /// in the region, or the key may not call it), as opposed to one about
    /// the key, the signature or the clock, which every call would get.
    pub(crate) fn denies_the_api(&self) -> bool {
        let family = self.code.split('.').next().unwrap_or(&self.code);
        self.class == ErrorClass::Fatal
            && matches!(family, "InvalidApi" | "InvalidAction" | "Forbidden" | "OperationDenied" | "NoPermission")
    }

    /// Whether the error is about the key itself (its secret, its id, the
    /// clock it is signed with, its token), as it would be for any call to
    /// any API: nothing signed with it can work.
    pub(crate) fn is_about_the_key(&self) -> bool {
        let family = self.code.split('.').next().unwrap_or(&self.code);
        matches!(
            family,
            "SignatureDoesNotMatch"
                | "IncompleteSignature"
                | "InvalidAccessKeyId"
                | "InvalidTimeStamp"
                | "InvalidSecurityToken"
                | "MissingSecurityToken"
        )
    }

    /// For a call that never reached a server: what to check.
    pub(crate) fn connection_hint(&self) -> Option<&'static str> {
        (self.code == "ConnectionError").then_some(
            "is the endpoint running / reachable? (nothing answered at its address: check --endpoint, the port, a firewall)",
        )
    }

    /// For a fatal error: what is wrong and what the operator should do.
    pub(crate) fn advice(&self) -> String {
        let family = self.code.split('.').next().unwrap_or(&self.code);
        match family {
            "SignatureDoesNotMatch" | "IncompleteSignature" => {
                "the AccessKey secret does not match the AccessKey ID: check ALIBABA_CLOUD_ACCESS_KEY_SECRET or the profile's access_key_secret".to_owned()
            }
            "InvalidAccessKeyId" => "the AccessKey ID is not known to this endpoint: check the key, and that it is not disabled or deleted".to_owned(),
            "Forbidden" | "OperationDenied" => "the key is not allowed to make this call: grant the RAM user AliyunVODReadOnlyAccess (or vod:GetImageInfo, and vod:GetMediaAuditResult for --audit-source), and check the account is not suspended".to_owned(),
            "InvalidTimeStamp" => match self.clock_skew() {
                Some(skew) => format!(
                    "the clock is {} minutes {} the server's: the server allows 15; fix the clock (NTP)",
                    skew.as_secs().div_ceil(60).max(1),
                    if self.local_clock_ahead() { "ahead of" } else { "behind" }
                ),
                None => "the request time is more than 15 minutes off the server's: fix the clock (NTP)".to_owned(),
            },
            "InvalidSecurityToken" | "MissingSecurityToken" => "the STS token is expired, malformed or belongs to another key: get a fresh one (ALIBABA_CLOUD_SECURITY_TOKEN or the profile's sts_token)".to_owned(),
            _ => "every further call would fail the same way".to_owned(),
        }
    }

    fn clock_skew(&self) -> Option<Duration> {
        let server = self.server_date?;
        let now = SystemTime::now();
        Some(now.duration_since(server).unwrap_or_else(|e| e.duration()))
    }

    fn local_clock_ahead(&self) -> bool {
        self.server_date.is_some_and(|d| SystemTime::now() > d)
    }
}

/// Whether a terminal may act on `c` instead of showing it: C0 controls (ESC,
/// CR, LF, BEL, TAB...), DEL, C1 controls (U+0080 to U+009F: U+009B is a
/// one-character CSI on some terminals), the bidi embeddings, overrides,
/// isolates and marks (Trojan Source, CVE-2021-42574), and the Unicode line
/// and paragraph separators.
fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

/// Text from the server as it may be shown on a terminal: each character a
/// terminal would act on ([`acts_on_terminal`]) written as its Rust escape,
/// `\u{1b}`; everything else (quotes, backslashes, CJK) as it is. Not a
/// reversible encoding: only what is shown is made safe; the reports keep
/// the raw text.
pub(crate) fn escape_for_terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts_on_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if acts_on_terminal(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON text (already valid) made safe for a terminal: the characters
/// [`acts_on_terminal`] that `serde_json` leaves as they are (C1 controls,
/// DEL, bidi controls, separators) become `\uXXXX` escapes, so the JSON still
/// decodes to the same values.
pub(crate) fn json_for_terminal(json: String) -> String {
    // Inside strings serde_json escapes every C0 control, so the ones left
    // are the layout of pretty-printed JSON.
    let unsafe_in_json = |c: char| acts_on_terminal(c) && !matches!(c, '\n' | '\t' | '\r');
    if !json.chars().any(unsafe_in_json) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_in_json(c) {
            // All of them are in the Basic Multilingual Plane: one \uXXXX each.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `max` characters of `text`, then `...` and how many there were:
/// for an id or a value quoted in a message, which must stay one short line.
pub(crate) fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => Cow::Owned(format!("{}... ({} characters)", &text[..cut], text.chars().count())),
    }
}

/// An id (or any short value) from an answer, for a message: quoted,
/// shortened to [`QUOTED_ID_CHARS`] characters, escaped for a terminal.
pub(crate) fn quote_answer_id(id: &str) -> String {
    format!("\"{}\"", escape_for_terminal(&shorten(id, QUOTED_ID_CHARS)))
}

#[cfg(test)]
mod tests {
    use super::ErrorClass::*;
    use super::*;

    /// Every row of vod-openapi.md §4, plus the status-only fallbacks.
    #[test]
    fn classification_table() {
        let table: &[(Option<&str>, Option<u16>, ErrorClass)] = &[
            (Some("NoSuchResource"), Some(404), Missing),
            (Some("Throttling"), Some(400), Throttled),
            (Some("Throttling.User"), Some(400), Throttled),
            (Some("Throttling.Api"), Some(400), Throttled),
            (Some("Throttling.Anything.New"), Some(400), Throttled),
            (Some("Throttling.User"), Some(503), Throttled),
            (Some("ServiceUnavailable"), Some(503), Transient),
            (Some("ServiceUnAvailable"), Some(503), Transient),
            (Some("InternalError"), Some(500), Transient),
            (Some("SomethingNew"), Some(500), Transient),
            (Some("SomethingNew"), Some(502), Transient),
            (None, Some(502), Transient),
            (None, Some(504), Transient),
            (None, None, Transient),
            (None, Some(404), Transient), // an HTML 404 from a proxy is not a miss
            (None, Some(200), Transient), // a 200 that is not the API's JSON
            (Some("InvalidParameter"), Some(400), BadRequest),
            (Some("MissingParameter"), Some(400), BadRequest),
            (Some("SignatureDoesNotMatch"), Some(400), Fatal),
            (Some("SignatureDoesNotMatch"), Some(403), Fatal),
            (Some("IncompleteSignature"), Some(400), Fatal),
            (Some("InvalidAccessKeyId.NotFound"), Some(404), Fatal), // a 404 that is not a miss
            (Some("InvalidAccessKeyId.NotFound"), Some(400), Fatal),
            (Some("InvalidAccessKeyId.Inactive"), Some(400), Fatal),
            (Some("Forbidden"), Some(403), Fatal),
            (Some("Forbidden.RAM"), Some(403), Fatal),
            (Some("OperationDenied"), Some(403), Fatal),
            (Some("OperationDenied.Suspended"), Some(403), Fatal),
            (Some("InvalidTimeStamp.Expired"), Some(400), Fatal),
            (Some("InvalidTimeStamp.Format"), Some(400), Fatal),
            (Some("InvalidSecurityToken.Expired"), Some(400), Fatal),
            (Some("InvalidSecurityToken.MismatchWithAccessKey"), Some(400), Fatal),
            (Some("SignatureNonceUsed"), Some(400), Transient),
            (Some("SomethingNew"), Some(400), BadRequest),
            (Some("SomethingNew"), Some(403), Fatal),
            (None, Some(429), Throttled),
        ];
        for (code, status, want) in table {
            assert_eq!(classify(*code, *status), *want, "classify({code:?}, {status:?})");
        }
    }

    #[test]
    fn skew_advice_names_minutes() {
        let mut e = ApiError::transport("InvalidTimeStamp.Expired", "expired");
        e.class = Fatal;
        e.server_date = Some(SystemTime::now() - Duration::from_secs(20 * 60));
        let advice = e.advice();
        assert!(advice.contains("20 minutes ahead of"), "{advice}");
        assert!(advice.contains("allows 15"), "{advice}");
    }

    #[test]
    fn display_keeps_code_status_and_request_id() {
        let e = ApiError {
            class: Throttled,
            code: "Throttling.User".into(),
            message: "Request was denied due to user flow control.".into(),
            request_id: Some("REQ-1".into()),
            http_status: Some(400),
            retry_after: Some(Duration::from_millis(1500)),
            server_date: None,
        };
        assert_eq!(
            e.to_string(),
            "Throttling.User: Request was denied due to user flow control. (HTTP 400, RequestId REQ-1)"
        );
    }

    #[test]
    fn terminal_escapes_cover_controls_and_bidi() {
        assert!(matches!(escape_for_terminal("plain \"text\" \\ 封面"), Cow::Borrowed(_)));
        let table: &[(&str, &str)] = &[
            ("\u{1b}[31mred\u{1b}[0m", r"\u{1b}[31mred\u{1b}[0m"),
            ("a\r\nb\tc\u{0}", r"a\u{d}\u{a}b\u{9}c\u{0}"),
            ("bell\u{7} del\u{7f}", r"bell\u{7} del\u{7f}"),
            ("c1 \u{9b}31m \u{85}", r"c1 \u{9b}31m \u{85}"),
            (
                "\u{202e}txet\u{202c} \u{2066}x\u{2069} \u{200f}\u{61c}",
                r"\u{202e}txet\u{202c} \u{2066}x\u{2069} \u{200f}\u{61c}",
            ),
            ("line\u{2028}para\u{2029}", r"line\u{2028}para\u{2029}"),
        ];
        for (raw, shown) in table {
            assert_eq!(escape_for_terminal(raw), *shown, "{raw:?}");
        }
    }

    #[test]
    fn json_for_terminal_keeps_the_values() {
        let v = serde_json::json!({"m": "\u{1b}[2J \u{9b} \u{202e} \u{7f} \u{2029} 封面 \\u{1b}"});
        let text = json_for_terminal(serde_json::to_string_pretty(&v).unwrap());
        assert!(!text.chars().any(|c| acts_on_terminal(c) && c != '\n'), "{text}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), v);
        assert!(text.contains(r"\u009b") && text.contains(r"\u202e") && text.contains("封面"), "{text}");
    }

    #[test]
    fn shorten_counts_characters() {
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("封面图片", 2), "封面... (4 characters)");
    }

    #[test]
    fn an_id_from_an_answer_is_quoted_short_and_escaped() {
        assert_eq!(quote_answer_id("abc"), "\"abc\"");
        let long = format!("\u{1b}[2J{}", "x".repeat(200));
        let q = quote_answer_id(&long);
        assert!(q.starts_with(r#""\u{1b}[2Jxxx"#) && q.ends_with("... (204 characters)\""), "{q}");
        assert!(!q.contains('\u{1b}'));
    }

    #[test]
    fn display_escapes_what_the_server_sent() {
        let e = ApiError {
            class: Fatal,
            code: "Forbidden\u{1b}[0m".into(),
            message: "denied\r\nvod-image-audit: done\u{202e}".into(),
            request_id: Some("R\u{7}".into()),
            http_status: Some(403),
            retry_after: None,
            server_date: None,
        };
        assert_eq!(
            e.to_string(),
            r"Forbidden\u{1b}[0m: denied\u{d}\u{a}vod-image-audit: done\u{202e} (HTTP 403, RequestId R\u{7})"
        );
        assert_eq!(e.message, "denied\r\nvod-image-audit: done\u{202e}", "the error keeps the raw text");
    }
}
