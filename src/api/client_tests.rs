//! Unit tests of [`super`] (client.rs), kept beside it to keep that file readable.
use super::*;
use crate::api::endpoints::{without_userinfo, EndpointError};
use crate::api::error::ErrorClass;
use crate::api::rpc::scrub;
use crate::api::secret::Secret;
use crate::api::signing;

fn client(token: Option<&str>) -> VodClient {
    client_at(token, Endpoint::for_region("cn-shanghai", false).unwrap())
}

fn creds(token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: "testAccessKeyId".into(),
        access_key_secret: Secret::new("testAccessKeySecret"),
        security_token: token.map(Secret::new),
        source: "test".into(),
        expires: None,
    }
}

fn client_at(token: Option<&str>, endpoint: Endpoint) -> VodClient {
    let creds = creds(token);
    let config = ClientConfig {
        request_timeout: DEFAULT_REQUEST_TIMEOUT,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        output_type: OutputType::Oss,
        auth_timeout: Some(3600),
        proxy: None,
        sts_endpoint: endpoint.clone(),
        metadata_endpoint: endpoint.clone(),
        endpoint,
        extra_roots: Vec::new(),
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
    let r = Redactor::of(["tok+/=long"]);
    let m = scrub("Specified signature is not matched with our calculation. server string to sign is:POST&%2F&SecurityToken%3Dtok%252B%252F%253Dlong", &r);
    assert_eq!(m, "Specified signature is not matched with our calculation. server string to sign is: (withheld: it holds the request's parameters)");
    assert_eq!(scrub("echo tok+/=long and tok%2B%2F%3Dlong", &r), "echo *** and ***");
}

/// Every form the server might echo, in a message and in a field.
#[test]
fn answers_lose_the_token_in_every_text_field() {
    let r = Redactor::of(["tok+/=longer-token-value"]);
    let mut info: ImageInfo = serde_json::from_str(
        r#"{"ImageId": "a", "Title": "x tok+/=longer-token-value", "Mezzanine": {"FileURL": "u?t=tok%2b%2f%3dlonger-token-value"}}"#,
    )
    .unwrap();
    info.for_each_text(|t| r.redact_in_place(t));
    assert_eq!(info.title.as_deref(), Some("x ***"));
    assert_eq!(info.mezzanine.unwrap().file_url.as_deref(), Some("u?t=***"));
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

/// Loopback in each form it is written: `localhost` with a trailing dot
/// (dropped), any `127/8` address, `::1`, IPv4-mapped `127/8`; and what is
/// not: the unspecified addresses, the deprecated IPv4-compatible form, a
/// name under `localhost.`-something.
#[test]
fn loopback_in_every_form_and_only_loopback() {
    for (text, shown) in [
        ("http://localhost.:1/", "http://localhost:1/"),
        ("http://LOCALHOST.:1/", "http://localhost:1/"),
        ("http://127.1.2.3:1/", "http://127.1.2.3:1/"),
        ("http://[::1]:1/", "http://[::1]:1/"),
        ("http://[::ffff:127.0.0.1]:1/", "http://[::ffff:7f00:1]:1/"),
        ("http://[::ffff:127.9.9.9]:1/", "http://[::ffff:7f09:909]:1/"),
    ] {
        let e = Endpoint::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(e.as_str(), shown);
        assert!(e.is_loopback(), "{text}");
    }
    for text in [
        "http://0.0.0.0:1/",
        "http://[::]:1/",
        "http://[::127.0.0.1]:1/",
        "http://[::ffff:10.0.0.1]:1/",
        "http://localhost.localdomain/",
    ] {
        assert!(matches!(Endpoint::parse(text), Err(EndpointError::PlainHttp(_))), "{text}");
    }
    assert!(Endpoint::parse("https://[::ffff:127.0.0.1]:1/").unwrap().is_loopback());
}

/// A URL's user and password never reach a message, URL or not.
#[test]
fn endpoint_errors_never_show_a_password() {
    for text in
        ["https://u:pw-1@x/", "http://u:pw-1@10.0.0.1/", "http://u:pw-1@[::1/", "ftp://u:pw-1@x/", "http://u:pw/-1@x/a"]
    {
        let e = Endpoint::parse(text).unwrap_err().to_string();
        assert!(!e.contains("pw") && e.contains("***@"), "{text}: {e}");
    }
    assert_eq!(without_userinfo("https://a@b:c@host:1/p?q=@x"), "https://***@host:1/p?q=@x");
    assert_eq!(without_userinfo("no url at all"), "no url at all");
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
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
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

#[test]
fn a_single_answer_must_name_the_id_asked_or_none() {
    let info = |id: Option<&str>| ImageInfo { image_id: id.map(str::to_owned), ..Default::default() };
    assert_eq!(names_another("abc", &info(Some("abc"))), None);
    assert_eq!(names_another("abc", &info(None)), None, "no ImageId: the answer to this call");
    assert_eq!(names_another("abc", &info(Some("abd"))), Some("abd"));
    assert_eq!(names_another("abc", &info(Some("ABC"))), Some("ABC"), "ids are compared exactly");
    assert_eq!(names_another("abc", &info(Some(""))), Some(""), "an empty ImageId names no image asked");
}

#[tokio::test]
async fn a_chunked_answer_past_the_cap_is_refused_while_it_streams() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let _ = sock.read(&mut buf).await.unwrap();
        let _ = sock.write_all(b"HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n").await;
        let piece = vec![b' '; 32 * 1024];
        // Chunks until the client hangs up.
        loop {
            let head = format!("{:x}\r\n", piece.len());
            if sock.write_all(head.as_bytes()).await.is_err()
                || sock.write_all(&piece).await.is_err()
                || sock.write_all(b"\r\n").await.is_err()
            {
                break;
            }
        }
    });
    let c = client_at(None, Endpoint::parse(&format!("http://{addr}")).unwrap());
    let e = c.get_image_info("abc").await.unwrap_err();
    assert_eq!(e.code, "BadResponse", "{e}");
    assert_eq!(e.class, ErrorClass::Transient);
    assert_eq!(e.http_status, Some(503));
    assert!(e.message.contains("larger than the 1048576 bytes"), "{e}");
    server.await.unwrap();
}
