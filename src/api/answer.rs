//! Reading an answer: the body within its cap, an error body (JSON or XML)
//! into an [`ApiError`] with its class, the server's retry hints, and a
//! transport failure into an error that carries no request data (a server
//! certificate the client does not trust among them: fatal, not a hiccup).
//!
//! The class is [`classify`]'s, from the code and the status, except where a
//! header overrides both: an error answer with a positive
//! `x-acs-retry-after` is throttling whatever its `Code` and status, as the
//! official clients decide since July 2026 (vod-openapi.md §4:
//! aliyun/darabonba-openapi PR #283, aliyun/aliyun-cli PR #1395); one
//! Alibaba product answers throttling `403` with a `Forbidden.*` code.
//!
//! Owns the caps' enforcement and the error envelope's parsing; what a
//! success body means is the client's.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::api::error::{classify, ApiError, ErrorClass};
use crate::api::model::ErrorBody;

/// Turns a reqwest failure into an error that carries no URL: the signed
/// parameters travel in the form body, so the URL holds none of them today,
/// and an error message keeps it that way whatever a URL may come to hold.
pub(crate) fn transport_error(e: reqwest::Error) -> ApiError {
    if let Some(why) = untrusted_certificate(&e) {
        let host = e.url().and_then(|u| u.host_str()).unwrap_or("the server").to_owned();
        return ApiError::untrusted_certificate(&host, &why);
    }
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

/// rustls's reason when the failure is a server certificate this client does
/// not trust (unknown issuer, expired, another host's name, ...). The rustls
/// error sits inside `io::Error`s of the connection (one in another), whose
/// `source()` skips the error they wrap (it answers the wrapped error's
/// source), so each `io::Error` is opened with `get_ref` instead.
fn untrusted_certificate(e: &reqwest::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(rustls::Error::InvalidCertificate(why)) = err.downcast_ref::<rustls::Error>() {
            return Some(format!("{why:?}"));
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// Whether a body is past `cap` bytes: by its declared length before a byte
/// is read, then by the bytes read so far.
pub(crate) fn past_cap(cap: usize, declared: Option<u64>, read: usize) -> bool {
    declared.is_some_and(|n| n > cap as u64) || read > cap
}

/// Reads an answer's body, refusing it as a bad response once it is past
/// `cap` (its `Content-Length`, or the chunks read so far): the rest is never
/// read, and dropping the response closes the connection.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    action: &str,
    cap: usize,
) -> Result<bytes::Bytes, ApiError> {
    let status = response.status().as_u16();
    let declared = response.content_length();
    let too_large = |how: String| {
        bad_answer(
            status,
            format!("the {action} answer is larger than the {cap} bytes an answer may have ({how}); not read"),
        )
    };
    if past_cap(cap, declared, 0) {
        return Err(too_large(format!("Content-Length {}", declared.unwrap_or_default())));
    }
    let mut body = bytes::BytesMut::with_capacity(declared.map_or(8 * 1024, |n| n as usize));
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if past_cap(cap, None, body.len() + chunk.len()) {
            return Err(too_large(format!("{} bytes read so far", body.len() + chunk.len())));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

pub(crate) fn bad_response(status: u16, why: &str) -> ApiError {
    bad_answer(status, format!("the answer is not the API's JSON: {why}"))
}

/// An answer that is not one the API gives: transient, retried.
pub(crate) fn bad_answer(status: u16, message: String) -> ApiError {
    ApiError {
        class: ErrorClass::Transient,
        code: "BadResponse".into(),
        message,
        request_id: None,
        http_status: Some(status),
        retry_after: None,
        server_date: None,
    }
}

/// Decodes a non-200 answer: the API's error body when there is one, the
/// server's retry hints, and its clock.
pub(crate) fn error_from_answer(status: u16, headers: &HeaderMap, body: &[u8]) -> ApiError {
    // JSON as asked for; the gateway answers some errors in XML whatever the
    // request's Format (the newer official SDKs parse both).
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok().or_else(|| xml_error_body(body));
    let code = parsed.as_ref().and_then(|b| b.code.clone()).filter(|c| !c.is_empty());
    let class = match acs_retry_after_ms(headers) {
        Some(_) => ErrorClass::Throttled,
        None => classify(code.as_deref(), Some(status)),
    };
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

/// An `<Error>` body: `RequestId`, `HostId`, `Code`, `Message`, `Recommend`
/// as elements. Read by hand (flat, five known elements), with the five
/// XML entities decoded.
pub(crate) fn xml_error_body(body: &[u8]) -> Option<ErrorBody> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("<Error>") && !text.contains("<Error ") {
        return None;
    }
    let element = |name: &str| -> Option<String> {
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + text[start..].find(&format!("</{name}>"))?;
        let raw = &text[start..end];
        Some(
            raw.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        )
    };
    let body = ErrorBody {
        request_id: element("RequestId"),
        code: element("Code"),
        message: element("Message"),
        ..ErrorBody::default()
    };
    body.code.is_some().then_some(body)
}

/// The longest wait any of the server's hints asks for.
pub(crate) fn retry_hint(headers: &HeaderMap) -> Option<Duration> {
    let mut best: Option<u64> = None;
    let mut take = |ms: u64| best = Some(best.map_or(ms, |b| b.max(ms)));
    if let Some(ms) = acs_retry_after_ms(headers) {
        take(ms);
    }
    for name in ["x-ratelimit-user", "x-ratelimit-user-api"] {
        if let Some(ms) = header_str(headers, name).and_then(|v| time_left_ms(&v)) {
            take(ms);
        }
    }
    best.map(Duration::from_millis)
}

/// `x-acs-retry-after` when it is a hint: a positive whole number of
/// milliseconds, surrounding spaces allowed (one too large for a `u64` is
/// the longest wait there is; the caller caps it). `0`, empty, negative,
/// fractional or any other text is no hint (vod-openapi.md §4).
pub(crate) fn acs_retry_after_ms(headers: &HeaderMap) -> Option<u64> {
    let value = header_str(headers, "x-acs-retry-after")?;
    let digits = value.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms = digits.parse::<u64>().unwrap_or(u64::MAX);
    (ms > 0).then_some(ms)
}

/// `TimeLeft` (milliseconds) from `Limit:100,Remain:0,TimeLeft:2000,Reset:...`.
pub(crate) fn time_left_ms(value: &str) -> Option<u64> {
    value.split(',').find_map(|part| {
        let (k, v) = part.split_once(':')?;
        (k.trim() == "TimeLeft").then(|| v.trim().parse().ok()).flatten()
    })
}

/// A header's value, when it is text.
pub(crate) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::client::MAX_BATCH_ANSWER_BYTES;
    use crate::api::rpc::MAX_ANSWER_BYTES;

    #[test]
    fn the_cap_is_checked_on_the_declared_length_and_on_the_bytes_read() {
        assert!(!past_cap(10, None, 0));
        assert!(!past_cap(10, Some(10), 10));
        assert!(past_cap(10, Some(11), 0), "a declared length past the cap: refused before reading");
        assert!(past_cap(10, None, 11), "no declared length: refused once past the cap");
        assert!(past_cap(10, Some(5), 11), "a body longer than it said");
        assert_eq!(MAX_ANSWER_BYTES, 1024 * 1024);
        assert_eq!(MAX_BATCH_ANSWER_BYTES, 20 * 1024 * 1024);
    }

    /// A chunked answer past the cap: refused while the server still has
    /// more to send (the server never ends it; reading to the end would hang).
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

    /// vod-openapi.md §4, since July 2026: a positive integer
    /// `x-acs-retry-after` makes any error answer throttling; `0`, empty or
    /// not a number is no hint, and the code (then the status) decides.
    #[test]
    fn a_positive_x_acs_retry_after_is_throttling_whatever_the_code_and_status() {
        use ErrorClass::*;
        let table: &[(Option<&str>, u16, Option<&str>, ErrorClass)] = &[
            // The product that throttles with 403 and a code that does not say so.
            (Some("Forbidden.FlowControl"), 403, Some("300"), Throttled),
            (Some("Forbidden.FlowControl"), 403, Some("999999999"), Throttled),
            (Some("Forbidden.FlowControl"), 403, Some(" 300 "), Throttled),
            (Some("Forbidden.FlowControl"), 403, Some("99999999999999999999999"), Throttled),
            (Some("Forbidden.FlowControl"), 403, Some("0"), Fatal),
            (Some("Forbidden.FlowControl"), 403, Some("000"), Fatal),
            (Some("Forbidden.FlowControl"), 403, Some(""), Fatal),
            (Some("Forbidden.FlowControl"), 403, Some("abc"), Fatal),
            (Some("Forbidden.FlowControl"), 403, Some("-300"), Fatal),
            (Some("Forbidden.FlowControl"), 403, Some("1.5"), Fatal),
            (Some("Forbidden.FlowControl"), 403, Some("300ms"), Fatal),
            (Some("Forbidden.FlowControl"), 403, None, Fatal),
            (Some("Forbidden.RAM"), 403, Some("1"), Throttled),
            // 400 with a code that is not Throttling*.
            (Some("Flow.Control"), 400, Some("300"), Throttled),
            (Some("Flow.Control"), 400, Some("0"), BadRequest),
            (Some("InvalidParameter"), 400, Some("300"), Throttled),
            (Some("InvalidParameter"), 400, Some("abc"), BadRequest),
            (Some("SignatureDoesNotMatch"), 400, Some("300"), Throttled),
            (Some("SignatureDoesNotMatch"), 400, Some(""), Fatal),
            (Some("NoSuchResource"), 404, Some("300"), Throttled),
            (Some("NoSuchResource"), 404, Some("0"), Missing),
            // 429, with or without a body of the API's.
            (Some("TooManyRequests"), 429, Some("300"), Throttled),
            (None, 429, Some("300"), Throttled),
            (None, 429, Some("abc"), Throttled),
            // 503 and other 5xx: throttled with the hint, transient without.
            (Some("ServiceUnavailable"), 503, Some("300"), Throttled),
            (Some("ServiceUnavailable"), 503, Some("0"), Transient),
            (Some("ServiceUnavailable"), 503, Some(""), Transient),
            (Some("ServiceUnavailable"), 503, Some("abc"), Transient),
            (None, 503, Some("300"), Throttled),
            (None, 503, None, Transient),
            (Some("InternalError"), 500, Some("300"), Throttled),
            // Throttling* stays throttling whatever the header says.
            (Some("Throttling.User"), 400, Some("0"), Throttled),
            (Some("Throttling.User"), 400, Some("abc"), Throttled),
            (Some("Throttling.User"), 400, None, Throttled),
        ];
        for (code, status, header, want) in table {
            let body = match code {
                Some(c) => format!(r#"{{"RequestId":"R","Code":"{c}","Message":"m"}}"#).into_bytes(),
                None => b"<html><body>busy</body></html>".to_vec(),
            };
            let h = header.map_or_else(HeaderMap::new, |v| headers(&[("x-acs-retry-after", v)]));
            let e = error_from_answer(*status, &h, &body);
            assert_eq!(e.class, *want, "{code:?}, HTTP {status}, x-acs-retry-after {header:?}");
        }
    }

    /// The hint of a throttling answer is the wait it asks for; one that is
    /// no hint asks for none.
    #[test]
    fn an_x_acs_retry_after_that_is_no_hint_asks_for_no_wait() {
        let hint = |v: &str| retry_hint(&headers(&[("x-acs-retry-after", v)]));
        assert_eq!(hint("300"), Some(Duration::from_millis(300)));
        assert_eq!(hint("99999999999999999999999"), Some(Duration::from_millis(u64::MAX)));
        for none in ["0", "", "abc", "-1", "1.5"] {
            assert_eq!(hint(none), None, "{none:?}");
        }
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
