//! Alibaba Cloud RPC signature V1 (HMAC-SHA1), as a pure function.
//!
//! Owns percent-encoding, the canonicalized query string, the string-to-sign
//! and the signature. It reads no clock and makes no nonce: the caller passes
//! `Timestamp` and `SignatureNonce` in as ordinary parameters, so the published
//! vectors can be reproduced exactly. Building the parameter list is the
//! client's job; checking a signature on the server side reuses [`sign`].

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Bytes that stay literal: `A-Z a-z 0-9 - _ . ~`.
const UNRESERVED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.' || c == b'~';
        b += 1;
    }
    t
};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes a name or value the way Alibaba Cloud's signer does:
/// `A-Z a-z 0-9 - _ . ~` stay literal, every other UTF-8 byte becomes `%XY`
/// with upper-case hex (so a space is `%20`, never `+`).
pub fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 2);
    percent_encode_into(input, &mut out);
    out
}

/// [`percent_encode`] appending to an existing buffer.
pub fn percent_encode_into(input: &str, out: &mut String) {
    // Every piece is ASCII: a run of unreserved bytes, or an escape.
    encode_pieces(input.as_bytes(), |piece| out.push_str(std::str::from_utf8(piece).unwrap_or_default()));
}

/// The percent-encoding of `input`, handed over in order as runs of
/// unreserved bytes (copied as they are) and `%XY` escapes: to a string, or
/// straight into the HMAC.
fn encode_pieces(input: &[u8], mut emit: impl FnMut(&[u8])) {
    let mut start = 0;
    for (i, &b) in input.iter().enumerate() {
        if UNRESERVED[usize::from(b)] {
            continue;
        }
        if start < i {
            emit(&input[start..i]);
        }
        emit(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0x0f)]]);
        start = i + 1;
    }
    if start < input.len() {
        emit(&input[start..]);
    }
}

/// The canonicalized query string: every parameter (empty values included),
/// names and values percent-encoded, sorted by encoded name (then value, so
/// the order is total), joined as `name=value` with `&`.
///
/// The same string, plus `&Signature=...`, is what the client sends, so the
/// server decodes exactly the values that were signed.
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    // Every name and value encoded once into one buffer; the pairs are
    // sorted as ranges of it, then copied out in order.
    let mut scratch = String::with_capacity(params.iter().map(|(k, v)| k.as_ref().len() + v.as_ref().len() * 2).sum());
    let mut pairs: Vec<(usize, usize, usize)> = Vec::with_capacity(params.len());
    for (k, v) in params {
        if k.as_ref() == "Signature" {
            continue;
        }
        let a = scratch.len();
        percent_encode_into(k.as_ref(), &mut scratch);
        let b = scratch.len();
        percent_encode_into(v.as_ref(), &mut scratch);
        pairs.push((a, b, scratch.len()));
    }
    pairs.sort_unstable_by(|x, y| {
        (&scratch[x.0..x.1], &scratch[x.1..x.2]).cmp(&(&scratch[y.0..y.1], &scratch[y.1..y.2]))
    });
    let mut out = String::with_capacity(scratch.len() + 2 * pairs.len() + 40);
    for (i, &(a, b, c)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&scratch[a..b]);
        out.push('=');
        out.push_str(&scratch[b..c]);
    }
    out
}

/// `METHOD & enc("/") & enc(canonicalized query)`.
pub fn string_to_sign_for(method: &str, canonical_query: &str) -> String {
    let mut out = String::with_capacity(method.len() + 5 + canonical_query.len() * 5 / 4);
    out.push_str(method);
    out.push_str("&%2F&");
    percent_encode_into(canonical_query, &mut out);
    out
}

/// The string-to-sign of a parameter list.
pub fn string_to_sign<K: AsRef<str>, V: AsRef<str>>(method: &str, params: &[(K, V)]) -> String {
    string_to_sign_for(method, &canonical_query(params))
}

/// `Base64(HMAC-SHA1(key, message))`.
pub fn hmac_sha1_base64(key: &[u8], message: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The signature of a string-to-sign with an AccessKey secret: the HMAC key is
/// the secret followed by `&`.
pub fn signature_of(string_to_sign: &str, access_key_secret: &str) -> String {
    Signer::new(access_key_secret).signature_of(string_to_sign)
}

/// The signature of a request: method, every parameter except `Signature`,
/// and the AccessKey secret.
pub fn sign<K: AsRef<str>, V: AsRef<str>>(method: &str, params: &[(K, V)], access_key_secret: &str) -> String {
    signature_of(&string_to_sign(method, params), access_key_secret)
}

/// A signed query string, ready to follow `?` (or to be a form body): the
/// canonicalized query plus `&Signature=<encoded signature>`.
pub fn signed_query<K: AsRef<str>, V: AsRef<str>>(method: &str, params: &[(K, V)], access_key_secret: &str) -> String {
    Signer::new(access_key_secret).signed_query(method, params)
}

/// A signer keyed once with an AccessKey secret, for many requests: the
/// HMAC's key schedule is done here, and each request's string-to-sign is
/// fed to a copy of it as it is encoded, never built as a string. Same
/// results as the free functions above, which are written in its terms.
#[derive(Clone)]
pub struct Signer {
    keyed: Hmac<Sha1>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(***)")
    }
}

impl Signer {
    /// Keys HMAC-SHA1 with `secret + "&"`.
    pub fn new(access_key_secret: &str) -> Self {
        let mut key = Vec::with_capacity(access_key_secret.len() + 1);
        key.extend_from_slice(access_key_secret.as_bytes());
        key.push(b'&');
        Signer { keyed: Hmac::<Sha1>::new_from_slice(&key).expect("HMAC accepts keys of any length") }
    }

    /// The signature of a string-to-sign.
    pub fn signature_of(&self, string_to_sign: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(string_to_sign.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    }

    /// The signature of `METHOD&%2F&enc(canonical_query)`, encoding the
    /// query straight into the HMAC.
    fn signature_of_query(&self, method: &str, canonical_query: &str) -> [u8; 20] {
        let mut mac = self.keyed.clone();
        mac.update(method.as_bytes());
        mac.update(b"&%2F&");
        encode_pieces(canonical_query.as_bytes(), |piece| mac.update(piece));
        mac.finalize().into_bytes().into()
    }

    /// A signed query string (see [`signed_query`]).
    pub fn signed_query<K: AsRef<str>, V: AsRef<str>>(&self, method: &str, params: &[(K, V)]) -> String {
        let mut query = canonical_query(params);
        let signature = self.signature_of_query(method, &query);
        let mut b64 = [0u8; 28];
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(signature, &mut b64)
            .expect("20 bytes are 28 in base64");
        query.push_str("&Signature=");
        percent_encode_into(std::str::from_utf8(&b64[..n]).unwrap_or_default(), &mut query);
        query
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn vectors() -> Value {
        let text = include_str!("../../tests/data/signing-vectors.json");
        serde_json::from_str(text).expect("signing-vectors.json parses")
    }

    fn params_of(case: &Value) -> Vec<(String, String)> {
        case["params"]
            .as_object()
            .expect("params is an object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
            .collect()
    }

    #[test]
    fn every_published_rpc_vector_reproduces() {
        let all = vectors();
        let cases = all["rpc_signature_vectors"].as_array().unwrap();
        assert!(cases.len() >= 2, "the vector file lost its cases");
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let method = case["method"].as_str().unwrap();
            let params = params_of(case);
            assert_eq!(
                string_to_sign(method, &params),
                case["string_to_sign"].as_str().unwrap(),
                "string-to-sign of {name}"
            );
            assert_eq!(
                sign(method, &params, case["access_key_secret"].as_str().unwrap()),
                case["expected_signature"].as_str().unwrap(),
                "signature of {name}"
            );
        }
    }

    #[test]
    fn every_raw_hmac_vector_reproduces() {
        let all = vectors();
        let cases = all["raw_hmac_sha1_vectors"].as_array().unwrap();
        assert!(cases.len() >= 2);
        for case in cases {
            assert_eq!(
                hmac_sha1_base64(
                    case["key"].as_str().unwrap().as_bytes(),
                    case["message"].as_str().unwrap().as_bytes()
                ),
                case["expected"].as_str().unwrap(),
                "{}",
                case["name"]
            );
        }
    }

    #[test]
    fn percent_encode_vector_reproduces() {
        let all = vectors();
        let case = &all["percent_encode_vector"];
        assert_eq!(percent_encode(case["input"].as_str().unwrap()), case["expected"].as_str().unwrap());
    }

    #[test]
    fn the_doc_typo_signature_is_not_ours() {
        // The widely copied overview page signs `TimeStamp`; that gives a different value.
        let all = vectors();
        let case = &all["rpc_signature_vectors"][0];
        let params = params_of(case);
        assert_ne!(sign("GET", &params, "testsecret"), "CT9X0VtwR86fNWSnsc6v8YGOjuE=");
    }

    #[test]
    fn utf8_reserved_and_space_are_encoded_byte_by_byte() {
        assert_eq!(percent_encode("封面 图"), "%E5%B0%81%E9%9D%A2%20%E5%9B%BE");
        assert_eq!(percent_encode("a*b+c/d=e&f~g h"), "a%2Ab%2Bc%2Fd%3De%26f~g%20h");
        assert_eq!(percent_encode(""), "");
        assert_eq!(percent_encode("AZaz09-_.~"), "AZaz09-_.~");
    }

    #[test]
    fn empty_values_are_signed_and_sorting_uses_encoded_names() {
        let params = [("b", ""), ("a", "x y"), ("A", "*"), ("a~", "1")];
        assert_eq!(canonical_query(&params), "A=%2A&a=x%20y&a~=1&b=");
        // Dropping the empty value must change the signature.
        let without: Vec<_> = params.iter().filter(|(k, _)| *k != "b").collect();
        let without: Vec<(&str, &str)> = without.into_iter().map(|(k, v)| (*k, *v)).collect();
        assert_ne!(sign("GET", &params, "s"), sign("GET", &without, "s"));
    }

    #[test]
    fn signature_parameter_itself_is_never_signed() {
        let base = [("Action", "GetImageInfo"), ("ImageId", "abc")];
        let with_sig = [("Action", "GetImageInfo"), ("ImageId", "abc"), ("Signature", "zzz")];
        assert_eq!(sign("POST", &base, "k"), sign("POST", &with_sig, "k"));
    }

    #[test]
    fn method_is_part_of_the_signature() {
        let p = [("Action", "GetImageInfo")];
        assert!(string_to_sign("POST", &p).starts_with("POST&%2F&"));
        assert_ne!(sign("GET", &p, "k"), sign("POST", &p, "k"));
    }

    #[test]
    fn reserved_characters_in_the_secret_are_used_verbatim() {
        // key = secret + "&"; a secret with reserved characters is not encoded.
        let msg = "GET&%2F&Action%3DX";
        assert_eq!(signature_of(msg, "a+b/c=d&e~ f"), hmac_sha1_base64(b"a+b/c=d&e~ f&", msg.as_bytes()));
        assert_ne!(signature_of(msg, "a+b/c=d&e~ f"), signature_of(msg, "a%2Bb%2Fc%3Dd%26e~%20f"));
    }

    #[test]
    fn cjk_value_double_encoding_in_string_to_sign() {
        let p = [("Title", "封")];
        assert_eq!(string_to_sign("GET", &p), "GET&%2F&Title%3D%25E5%25B0%2581");
    }

    #[test]
    fn signed_query_carries_an_encoded_signature() {
        let p = [("Action", "GetImageInfo"), ("Timestamp", "2020-01-01T00:00:00Z")];
        let q = signed_query("POST", &p, "secret");
        let sig = sign("POST", &p, "secret");
        assert_eq!(
            q,
            format!("Action=GetImageInfo&Timestamp=2020-01-01T00%3A00%3A00Z&Signature={}", percent_encode(&sig))
        );
    }
}
