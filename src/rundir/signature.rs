//! `manifest.json.sig`: the run's evidence signed by a key its producer
//! holds, in the format stock OpenSSH checks.
//!
//! The signature is an SSHSIG (OpenSSH's `PROTOCOL.sshsig`, what
//! `ssh-keygen -Y sign` writes) over the bytes of `manifest.json`, in the
//! namespace [`NAMESPACE`], by an unencrypted OpenSSH ed25519 private key.
//! An auditor checks it with `ssh-keygen -Y verify -f allowed_signers -I
//! IDENTITY -n vod-image-audit -s manifest.json.sig < manifest.json`, or with
//! `verify --allowed-signers` ([`check`]). The manifest lists every report's
//! digest, so the one signature covers them all; the manifest records the
//! key's fingerprint, never the key.
//!
//! Owns loading the key (refusing, before any call, a key that is encrypted,
//! not ed25519, readable by others, a FIFO or too large), signing, and
//! checking a signature against an `allowed_signers` file (the principals and
//! keys of `ssh-keygen(1)`'s ALLOWED SIGNERS section). The key and signature
//! formats are the RustCrypto `ssh-key` crate's.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use super::files::{read_small_file, write_atomic, FileDigest};
use super::{MANIFEST_JSON, MANIFEST_SIG};

/// The SSHSIG namespace: a signature made for this tool is never valid for
/// another purpose (a git commit, a file signed for someone else).
pub(crate) const NAMESPACE: &str = "vod-image-audit";

/// The largest key file read: an OpenSSH ed25519 private key is some 400
/// bytes; an RSA key 3 KB.
pub(crate) const MAX_KEY_BYTES: u64 = 16 * 1024;

/// The largest `allowed_signers` or signature file read.
pub(crate) const MAX_SIGNERS_BYTES: u64 = 1024 * 1024;

/// Why a key cannot sign.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyError {
    #[error("--sign-key {file}: {reason}")]
    Read { file: String, reason: String },
    #[error("--sign-key {file}: readable by others (mode {mode:o}): a signing key must be private; chmod 600 {file}")]
    Open { file: String, mode: u32 },
    #[error("--sign-key {file}: not an OpenSSH private key ({reason}); give the private key file ssh-keygen -t ed25519 writes")]
    Format { file: String, reason: String },
    #[error("--sign-key {file}: the key is encrypted with a passphrase, which an unattended run cannot type; make an unencrypted key for signing (ssh-keygen -t ed25519 -N '' -f FILE) and keep the file mode 600")]
    Encrypted { file: String },
    #[error("--sign-key {file}: a {algorithm} key; manifest.json.sig needs an ed25519 key (ssh-keygen -t ed25519)")]
    Algorithm { file: String, algorithm: String },
}

/// A loaded signing key. Its `Debug` shows the fingerprint, never the key.
pub(crate) struct SigningKey {
    key: PrivateKey,
    /// `SHA256:...`, as `ssh-keygen -l` shows it.
    pub fingerprint: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, ***)", self.fingerprint)
    }
}

impl SigningKey {
    /// Loads and checks the key at `path`.
    pub(crate) fn load(path: &Path) -> Result<Self, KeyError> {
        let file = path.display().to_string();
        let (bytes, meta) = read_small_file(path, MAX_KEY_BYTES)
            .map_err(|e| KeyError::Read { file: file.clone(), reason: e.to_string() })?;
        // OpenSSH's own rule: a private key others can read is refused.
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Open { file, mode });
        }
        let mut bytes = bytes;
        let key = Self::parse(&bytes, &file);
        // The parsed key wipes itself when dropped; so does its file's text.
        bytes.fill(0);
        key
    }

    /// The pure core of [`SigningKey::load`]: the key file's text checked.
    pub(crate) fn parse(text: &[u8], file: &str) -> Result<Self, KeyError> {
        let key = PrivateKey::from_openssh(text)
            .map_err(|e| KeyError::Format { file: file.to_owned(), reason: e.to_string() })?;
        if key.is_encrypted() {
            return Err(KeyError::Encrypted { file: file.to_owned() });
        }
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(KeyError::Algorithm { file: file.to_owned(), algorithm: key.algorithm().to_string() });
        }
        let fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
        Ok(SigningKey { key, fingerprint })
    }

    /// The SSHSIG of `msg`, armored as `ssh-keygen -Y sign` writes it.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<String, ssh_key::Error> {
        self.key.sign(NAMESPACE, HashAlg::Sha512, msg)?.to_pem(LineEnding::LF)
    }
}

/// Signs the `manifest.json` in `dir` as it is on disk and writes
/// `manifest.json.sig` atomically beside it.
pub(crate) fn sign_manifest(dir: &Path, key: &SigningKey) -> std::io::Result<FileDigest> {
    let manifest = std::fs::read(dir.join(MANIFEST_JSON))?;
    let sig = key.sign(&manifest).map_err(|e| std::io::Error::other(format!("signing {MANIFEST_JSON}: {e}")))?;
    write_atomic(dir, MANIFEST_SIG, |w| w.write_all(sig.as_bytes()))
}

/// One line of an `allowed_signers` file.
#[derive(Debug, Clone)]
pub(crate) struct AllowedSigner {
    pub principals: String,
    pub key: PublicKey,
    /// The `namespaces="..."` option, when the line restricts them.
    namespaces: Option<Vec<String>>,
}

/// Reads an `allowed_signers` file (`ssh-keygen(1)`, ALLOWED SIGNERS):
/// `principals [options] keytype base64 [comment]` a line, `#` comments.
/// Lines whose key is not one this tool can check are skipped, as
/// `ssh-keygen` skips keys it does not know.
pub(crate) fn parse_allowed_signers(text: &str, file: &str) -> Result<Vec<AllowedSigner>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        // Options come before the key type; the key type is the first word
        // after the principals that names an SSH key algorithm.
        let at = (1..words.len())
            .find(|&i| ["ssh-", "ecdsa-", "sk-"].iter().any(|p| words[i].starts_with(p)))
            .ok_or_else(|| format!("{file}: line {}: no public key (keytype base64)", n + 1))?;
        let key = PublicKey::from_openssh(&words[at..].join(" "))
            .map_err(|e| format!("{file}: line {}: the public key cannot be read ({e})", n + 1))?;
        let options = words[1..at].join(" ");
        let namespaces = options.find("namespaces=\"").map(|i| {
            let value = options[i + "namespaces=\"".len()..].split('"').next().unwrap_or_default();
            value.split(',').map(|n| n.trim().to_owned()).collect()
        });
        let principals = words[0];
        out.push(AllowedSigner { principals: principals.to_owned(), key, namespaces });
    }
    Ok(out)
}

/// What [`check`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SignatureCheck {
    /// A good signature by a listed key: its principals.
    Good { principals: String },
    /// A problem to report.
    Bad(String),
}

/// Checks `dir`'s `manifest.json.sig` against `allowed_signers` (the
/// file's text, named `file` in messages): present, in this tool's
/// namespace, by a listed key allowed that namespace, and valid for the
/// manifest's bytes as they are now.
pub(crate) fn check(dir: &Path, signers: &str, file: &str) -> SignatureCheck {
    let bad = |why: String| SignatureCheck::Bad(format!("{MANIFEST_SIG}: {why}"));
    let allowed = match parse_allowed_signers(signers, file) {
        Ok(a) => a,
        Err(e) => return bad(e),
    };
    let sig = match read_small_file(&dir.join(MANIFEST_SIG), MAX_SIGNERS_BYTES) {
        Ok((b, _)) => b,
        Err(e) => {
            return bad(format!("missing or unreadable ({e}): the run was not signed, or the signature was removed"))
        }
    };
    let sig = match SshSig::from_pem(&sig) {
        Ok(s) => s,
        Err(e) => return bad(format!("not an SSH signature ({e})")),
    };
    if sig.namespace() != NAMESPACE {
        return bad(format!("made for the namespace {:?}, not {NAMESPACE:?}", sig.namespace()));
    }
    let manifest = match std::fs::read(dir.join(MANIFEST_JSON)) {
        Ok(m) => m,
        Err(e) => return bad(format!("{MANIFEST_JSON}: {e}")),
    };
    let by = PublicKey::from(sig.public_key().clone()).fingerprint(HashAlg::Sha256);
    let Some(signer) = allowed.iter().find(|a| {
        a.key.key_data() == sig.public_key() && a.namespaces.as_ref().is_none_or(|ns| ns.iter().any(|n| n == NAMESPACE))
    }) else {
        return bad(format!("signed by {by}, which is not in {file} for the namespace {NAMESPACE}"));
    };
    match signer.key.verify(NAMESPACE, &manifest, &sig) {
        Ok(()) => SignatureCheck::Good { principals: signer.principals.clone() },
        Err(e) => bad(format!(
            "does not verify for {MANIFEST_JSON} as it is now ({e}): the manifest changed since it was signed"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::private::Ed25519Keypair;

    fn key(seed: u8) -> (SigningKey, String) {
        let k = PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]));
        let public = k.public_key().to_openssh().unwrap();
        let text = k.to_openssh(LineEnding::LF).unwrap();
        (SigningKey::parse(text.as_bytes(), "k").unwrap(), public)
    }

    #[test]
    fn a_signature_checks_against_the_signers_that_list_its_key_for_the_namespace() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_JSON), b"{\"complete\": true}\n").unwrap();
        let (k, public) = key(1);
        assert!(!format!("{k:?}").contains("PRIVATE"), "{k:?}");
        sign_manifest(dir.path(), &k).unwrap();
        let good = |signers: &str| check(dir.path(), signers, "allowed");
        assert_eq!(
            good(&format!("# auditors\nops@x,auditor@x namespaces=\"{NAMESPACE}\" {public} nightly\n")),
            SignatureCheck::Good { principals: "ops@x,auditor@x".into() }
        );
        assert_eq!(good(&format!("auditor@x {public}\n")), SignatureCheck::Good { principals: "auditor@x".into() });
        assert!(
            matches!(good(&format!("auditor@x namespaces=\"git\" {public}\n")), SignatureCheck::Bad(e) if e.contains("not in allowed"))
        );
        let (_, other) = key(2);
        assert!(
            matches!(good(&format!("auditor@x {other}\n")), SignatureCheck::Bad(e) if e.contains("not in allowed"))
        );
        std::fs::write(dir.path().join(MANIFEST_JSON), b"{\"complete\": false}\n").unwrap();
        assert!(
            matches!(good(&format!("auditor@x {public}\n")), SignatureCheck::Bad(e) if e.contains("does not verify"))
        );
    }

    #[test]
    fn the_key_must_be_an_unencrypted_ed25519_key() {
        assert!(matches!(SigningKey::parse(b"hello", "k"), Err(KeyError::Format { .. })));
        let (k, _) = key(3);
        assert!(k.fingerprint.starts_with("SHA256:"));
    }
}
