//! Keeping the key's secrets out of everything the tool writes or prints:
//! the AccessKey secret and the STS token, in every form a server might
//! echo them, replaced by `***` in server text (error messages, request ids
//! and every text field of a success answer).
//!
//! That a server echoes either is not documented. The signature error
//! echoes the string-to-sign, which holds the token; a broken gateway or a
//! hostile proxy that knows the secret may echo anything, in any of the
//! encodings a request uses.

use std::borrow::Cow;

use base64::Engine as _;

use crate::api::error::ApiError;
use crate::api::signing;

/// What replaces a secret.
pub(crate) const REDACTED: &str = "***";

/// The shortest base64 fragment of a secret worth looking for (a secret
/// inside a longer base64 blob): shorter ones could be ordinary text. STS
/// tokens run to hundreds of characters, AccessKey secrets to 30.
const MIN_FRAGMENT: usize = 16;

/// The shortest value redacted at all. Alibaba Cloud issues AccessKey
/// secrets of 30 characters and STS tokens of hundreds; a value of a few
/// characters (a test's `s`) would replace that letter in every text.
pub(crate) const MIN_SECRET_CHARS: usize = 8;

/// The secrets of a key in every form a server might echo them, to replace
/// in text from the server: raw; percent-encoded once and twice (the
/// signature error's string-to-sign is encoded twice), with upper- and
/// lower-case hex; form-encoded (`+` for a space, as
/// `application/x-www-form-urlencoded` writes it); base64 standard and
/// URL-safe, with and without padding; and the part of its base64 that does
/// not depend on its neighbours when it sits inside a longer base64 blob,
/// at each of the three byte alignments.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// Longest first, so that no form is cut by a shorter one inside it.
    forms: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} forms)", self.forms.len())
    }
}

impl Redactor {
    /// The forms of every one of `secrets` (a key's AccessKey secret and
    /// its STS token) at least [`MIN_SECRET_CHARS`] long.
    pub(crate) fn of<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut forms = Vec::new();
        for secret in secrets.into_iter().filter(|s| s.chars().count() >= MIN_SECRET_CHARS) {
            forms.extend(forms_of(secret));
        }
        forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        forms.dedup();
        Redactor { forms }
    }

    /// `text` with every form replaced by `***`.
    pub(crate) fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = Cow::Owned(out.replace(form.as_str(), REDACTED));
            }
        }
        out
    }

    /// [`Redactor::redact`] on a field.
    pub(crate) fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(redacted) = self.redact(text) {
            *text = redacted;
        }
    }

    /// [`Redactor::redact`] on every text of an error that came from a
    /// server: its code, its message (a parse error quotes the value it
    /// choked on), its request id.
    pub(crate) fn redact_error(&self, mut e: ApiError) -> ApiError {
        self.redact_in_place(&mut e.code);
        self.redact_in_place(&mut e.message);
        if let Some(id) = &mut e.request_id {
            self.redact_in_place(id);
        }
        e
    }
}

/// Every form of one secret (see [`Redactor`]).
fn forms_of(secret: &str) -> Vec<String> {
    let once = signing::percent_encode(secret);
    let lower_once = lower_hex_escapes(&once);
    let mut forms = vec![
        secret.to_owned(),
        signing::percent_encode(&once),
        signing::percent_encode(&lower_once),
        once,
        lower_once,
        form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
    ];
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = secret.as_bytes();
    forms.extend([STANDARD.encode(bytes), URL_SAFE.encode(bytes)]);
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(bytes));
        for shift in 0..3 {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(bytes);
            let encoded = engine.encode(&shifted);
            // Character i of base64 holds bits 6i..6i+6: keep those that
            // lie wholly within the secret's bits.
            let first = (8 * shift).div_ceil(6);
            let end = 8 * (shift + bytes.len()) / 6;
            let fragment = &encoded[first..end];
            if fragment.len() >= MIN_FRAGMENT {
                forms.push(fragment.to_owned());
            }
        }
    }
    forms
}

/// `%2B` -> `%2b`: the hex digits of each escape in lower case.
fn lower_hex_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut after_percent = 0;
    for c in encoded.chars() {
        if c == '%' {
            after_percent = 2;
            out.push(c);
        } else if after_percent > 0 {
            after_percent -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_covers_every_encoding_of_the_token() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let token = "CAIS+hostile/STS=token_0123456789~abcdefghijklmnop>>";
        let r = Redactor::of([token]);
        let once = signing::percent_encode(token);
        assert!(once.contains("%2B"), "{once}");
        let lower = once.replace("%2B", "%2b").replace("%2F", "%2f").replace("%3D", "%3d").replace("%3E", "%3e");
        let std = STANDARD.encode(token);
        let url = URL_SAFE.encode(token);
        assert_ne!(std, url);
        let forms = [
            token.to_owned(),
            once.clone(),
            signing::percent_encode(&once),
            lower.clone(),
            signing::percent_encode(&lower),
            std.clone(),
            std.trim_end_matches('=').to_owned(),
            url.clone(),
            url.trim_end_matches('=').to_owned(),
        ];
        for form in &forms {
            assert_eq!(r.redact(&format!("echo [{form}] end")), "echo [***] end", "{form}");
        }
        let mut field = format!("{}&{}", forms[3], forms[8]);
        r.redact_in_place(&mut field);
        assert_eq!(field, "***&***");
        assert!(matches!(r.redact("nothing secret here"), Cow::Borrowed(_)));
        assert!(!format!("{r:?}").contains("CAIS"), "Debug shows no form");
        assert!(matches!(Redactor::of([]).redact(token), Cow::Borrowed(_)));
        assert!(matches!(Redactor::of([""]).redact("abc"), Cow::Borrowed(_)));
    }

    /// The AccessKey secret beside the token, form-encoded too; a value too
    /// short to be a credential is left alone rather than redacting every
    /// text it occurs in.
    #[test]
    fn redaction_covers_the_secret_form_encoded_and_skips_short_values() {
        let secret = "LTAI+hostile/secret=0123 4567~x";
        let r = Redactor::of([secret, "CAIS-token-0123456789"]);
        let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        assert!(form.contains('+') && form.contains("%2B"), "{form}");
        for text in [secret.to_owned(), form, signing::percent_encode(secret), "CAIS-token-0123456789".to_owned()] {
            assert_eq!(r.redact(&format!("[{text}]")), "[***]", "{text}");
        }
        let short = Redactor::of(["s", "abc"]);
        assert!(matches!(short.redact("session abc"), Cow::Borrowed(_)));
        let e = r.redact_error(ApiError::transport(secret, format!("invalid type: string \"{secret}\"")));
        assert_eq!((e.code.as_str(), e.message.as_str()), ("***", "invalid type: string \"***\""));
    }

    /// The token inside a longer base64 blob, at every alignment: what
    /// depends only on the token's bytes is gone.
    #[test]
    fn redaction_finds_the_token_inside_a_base64_blob() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let token = "CAIS+hostile/STS=token_0123456789~abcdefghijklmnop>>";
        let r = Redactor::of([token]);
        for prefix in ["", "a", "ab", "SecurityToken=", "{\"t\":\""] {
            let blob = format!("{prefix}{token}\"}}");
            for encoded in [STANDARD.encode(&blob), URL_SAFE_NO_PAD.encode(&blob)] {
                let red = r.redact(&encoded);
                assert!(red.contains("***"), "{prefix:?}: {encoded}");
                // Of the token's ~70 base64 characters, at most the 2 + 2
                // that straddle its ends are left.
                let left = red.len() - 3;
                assert!(left <= encoded.len() - token.len() * 4 / 3 + 4, "{prefix:?}: {encoded} -> {red}");
            }
        }
    }
}
