//! The simulator's answers on the wire: JSON or XML bodies, real statuses,
//! the error envelope (`RequestId`, `HostId`, `Code`, `Message`,
//! `Recommend`).

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::Value;

use super::catalog::CatalogImage;

/// The answer's body format, from the request's `Format` (XML by default,
/// as the real service).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Json,
    Xml,
}

/// An answer before rendering.
pub(super) enum Answer {
    Image(CatalogImage),
    Images(Vec<CatalogImage>, Vec<String>),
    /// A `GetMediaAuditResult` answer: the `MediaAuditResult` object.
    Audit(Value),
    /// Any other answer (STS), as JSON with its `RequestId`.
    Json(Value),
    /// A VOD action's answer: `body` and its `RequestId`, as JSON or as XML
    /// under `<root>` (`SearchMediaResponse`).
    Action {
        root: &'static str,
        body: Value,
    },
    Error {
        status: u16,
        code: String,
        message: String,
        headers: Vec<(&'static str, String)>,
    },
    /// A success answer that names an image it was not asked about (the
    /// fault): rendered as the answer inside, counted apart.
    WrongImageId(Box<Answer>),
}

impl Answer {
    pub(super) fn error(status: u16, code: &str, message: &str) -> Self {
        Answer::Error { status, code: code.to_owned(), message: message.to_owned(), headers: Vec::new() }
    }

    pub(super) fn header(&mut self, name: &'static str, value: String) {
        if let Answer::Error { headers, .. } = self {
            headers.push((name, value));
        }
    }

    /// The code counted in the stats.
    pub(super) fn code(&self) -> &str {
        match self {
            Answer::Error { code, .. } => code,
            Answer::WrongImageId(_) => "WrongImageId",
            _ => "OK",
        }
    }

    pub(super) fn render(self, format: Format, request_id: &str, host_id: &str) -> Response<Full<Bytes>> {
        match (self, format) {
            (Answer::WrongImageId(inner), format) => inner.render(format, request_id, host_id),
            (Answer::Image(img), Format::Json) => {
                let mut body = String::with_capacity(img.json.len() + 80);
                body.push_str("{\"RequestId\":\"");
                body.push_str(request_id);
                body.push_str("\",\"ImageInfo\":");
                body.push_str(&img.json);
                body.push('}');
                json(StatusCode::OK, body.into_bytes(), &[])
            }
            (Answer::Image(img), Format::Xml) => {
                let mut body = String::from("<?xml version='1.0' encoding='UTF-8'?><GetImageInfoResponse>");
                element(&mut body, "RequestId", &Value::String(request_id.into()));
                element(&mut body, "ImageInfo", &img.value());
                body.push_str("</GetImageInfoResponse>");
                xml(StatusCode::OK, body.into_bytes(), &[])
            }
            (Answer::Images(found, missing), Format::Json) => {
                let infos: Vec<&str> = found.iter().map(|i| &*i.json).collect();
                let body = format!(
                    "{{\"RequestId\":\"{request_id}\",\"ImageInfo\":[{}],\"NonExistImageIds\":{}}}",
                    infos.join(","),
                    serde_json::to_string(&missing).unwrap_or_default()
                );
                json(StatusCode::OK, body.into_bytes(), &[])
            }
            (Answer::Audit(result), Format::Json) => {
                let v = serde_json::json!({"RequestId": request_id, "MediaAuditResult": result});
                json(StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default(), &[])
            }
            (Answer::Audit(result), Format::Xml) => {
                let mut body = String::from("<?xml version='1.0' encoding='UTF-8'?><GetMediaAuditResultResponse>");
                element(&mut body, "RequestId", &Value::String(request_id.into()));
                element(&mut body, "MediaAuditResult", &result);
                body.push_str("</GetMediaAuditResultResponse>");
                xml(StatusCode::OK, body.into_bytes(), &[])
            }
            (Answer::Images(found, missing), Format::Xml) => {
                let mut body = String::from("<?xml version='1.0' encoding='UTF-8'?><GetImageInfosResponse>");
                element(&mut body, "RequestId", &Value::String(request_id.into()));
                for img in &found {
                    element(&mut body, "ImageInfo", &img.value());
                }
                for id in &missing {
                    element(&mut body, "NonExistImageIds", &Value::String(id.clone()));
                }
                body.push_str("</GetImageInfosResponse>");
                xml(StatusCode::OK, body.into_bytes(), &[])
            }
            (Answer::Action { body: mut v, .. }, Format::Json) => {
                if let Some(m) = v.as_object_mut() {
                    m.insert("RequestId".into(), Value::String(request_id.into()));
                }
                json(StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default(), &[])
            }
            (Answer::Action { root, body }, Format::Xml) => {
                let mut out = format!("<?xml version='1.0' encoding='UTF-8'?><{root}>");
                element(&mut out, "RequestId", &Value::String(request_id.into()));
                if let Value::Object(m) = &body {
                    for (k, v) in m {
                        element(&mut out, k, v);
                    }
                }
                out.push_str(&format!("</{root}>"));
                xml(StatusCode::OK, out.into_bytes(), &[])
            }
            (Answer::Json(mut v), _) => {
                if let Some(m) = v.as_object_mut() {
                    m.insert("RequestId".into(), Value::String(request_id.into()));
                }
                json(StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default(), &[])
            }
            (Answer::Error { status, code, message, headers }, format) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let recommend = format!("https://api.aliyun.com/troubleshoot?q={code}&product=vod");
                let v = serde_json::json!({
                    "RequestId": request_id,
                    "HostId": host_id,
                    "Code": code,
                    "Message": message,
                    "Recommend": recommend,
                });
                match format {
                    Format::Json => json(status, serde_json::to_vec(&v).unwrap_or_default(), &headers),
                    Format::Xml => {
                        let mut body = String::from("<?xml version='1.0' encoding='UTF-8'?>");
                        element(&mut body, "Error", &v);
                        xml(status, body.into_bytes(), &headers)
                    }
                }
            }
        }
    }
}

fn json(status: StatusCode, body: Vec<u8>, headers: &[(&'static str, String)]) -> Response<Full<Bytes>> {
    with_headers(raw(status, "application/json;charset=utf-8", body), headers)
}

fn xml(status: StatusCode, body: Vec<u8>, headers: &[(&'static str, String)]) -> Response<Full<Bytes>> {
    with_headers(raw(status, "text/xml;charset=utf-8", body), headers)
}

fn with_headers(mut r: Response<Full<Bytes>>, headers: &[(&'static str, String)]) -> Response<Full<Bytes>> {
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            r.headers_mut().insert(*k, v);
        }
    }
    r
}

/// A response with a body and content type.
pub(super) fn raw(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    r
}

/// Appends `<name>value</name>`, objects as nested elements, arrays as
/// repeated elements, text escaped.
fn element(out: &mut String, name: &str, v: &Value) {
    match v {
        Value::Array(items) => {
            for item in items {
                element(out, name, item);
            }
        }
        Value::Null => {}
        _ => {
            out.push('<');
            out.push_str(name);
            out.push('>');
            match v {
                Value::Object(m) => {
                    for (k, child) in m {
                        element(out, k, child);
                    }
                }
                Value::String(s) => escape(out, s),
                other => out.push_str(&other.to_string()),
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
    }
}

fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// The first value of parameter `name`.
pub(super) fn get<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The real service's `503 ServiceUnavailable`.
pub(super) fn unavailable() -> Answer {
    Answer::error(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
}
