//! `run --sign-key` and `verify --allowed-signers`: a signature an auditor
//! checks with stock OpenSSH (`ssh-keygen -Y verify`), and with the
//! RustCrypto verifier where `ssh-keygen` is absent.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{files_under, id_file, Audit, Bench, Output, SimServer, TestCatalog, Workdir};
use ssh_key::private::Ed25519Keypair;
use ssh_key::{LineEnding, PrivateKey, SshSig};

const NAMESPACE: &str = "vod-image-audit";

/// An ed25519 key from a fixed seed (no RNG, no ssh-keygen needed), as an
/// unencrypted OpenSSH private key file of mode 0600.
pub(crate) fn key_file(wd: &Workdir, name: &str, seed: u8) -> PrivateKey {
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]));
    key.set_comment("nightly@audit-host");
    let path = wd.write(name, key.to_openssh(LineEnding::LF).unwrap().as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    key
}

pub(crate) fn allowed_signers(wd: &Workdir, name: &str, key: &PrivateKey) {
    let line = format!("auditor@example.com namespaces=\"{NAMESPACE}\" {}\n", key.public_key().to_openssh().unwrap());
    wd.write(name, line);
}

fn ssh_keygen() -> bool {
    Command::new("ssh-keygen").arg("-?").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// `ssh-keygen -Y verify` of `dir`'s manifest; `None` where there is no ssh-keygen.
fn stock_verify(wd: &Workdir, dir: &str, signers: &str) -> Option<Output> {
    if !ssh_keygen() {
        eprintln!("SKIPPED the ssh-keygen half: no ssh-keygen on this machine (.ci/run installs openssh-client)");
        return None;
    }
    let args = ["-Y", "verify", "-f", signers, "-I", "auditor@example.com", "-n", NAMESPACE, "-s"];
    let sig = format!("{dir}/manifest.json.sig");
    let out = Command::new("ssh-keygen")
        .args(args)
        .arg(&sig)
        .current_dir(wd.path())
        .stdin(std::fs::File::open(wd.path().join(dir).join("manifest.json")).unwrap())
        .output()
        .unwrap();
    Some(Output::of(format!("ssh-keygen {} {sig} < {dir}/manifest.json", args.join(" ")), out))
}

/// The crate's own verifier, independent of the tool's code path.
fn crate_verify(wd: &Workdir, dir: &str, key: &PrivateKey) -> Result<(), ssh_key::Error> {
    let sig = SshSig::from_pem(wd.read(&format!("{dir}/manifest.json.sig")))?;
    let manifest = std::fs::read(wd.path().join(dir).join("manifest.json")).unwrap();
    key.public_key().verify(NAMESPACE, &manifest, &sig)
}

#[test]
fn a_signed_run_verifies_with_stock_openssh_and_an_edited_manifest_fails_both() {
    let cat = TestCatalog::generate(12, 401);
    let server = SimServer::start(cat.config());
    let wd = Workdir::new();
    wd.write("ids.csv", id_file(&cat.ids()));
    let key = key_file(&wd, "sign_key", 7);
    allowed_signers(&wd, "allowed_signers", &key);
    let out = Audit::new(&wd, &server).out("reports/n1").args(["--sign-key", "sign_key"]).run();
    out.expect_code(0);
    let fingerprint = key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
    assert_eq!(wd.json("reports/n1/manifest.json")["signing_key"], fingerprint.as_str(), "{}", out.describe());
    if let Some(v) = stock_verify(&wd, "reports/n1", "allowed_signers") {
        v.expect_code(0);
        assert!(v.stdout.contains("Good \"vod-image-audit\" signature"), "{}", v.describe());
    }
    crate_verify(&wd, "reports/n1", &key).expect("the crate's verifier accepts it");
    let ok = wd.run(&["verify", "reports/n1", "--allowed-signers", "allowed_signers"], &[], None);
    ok.expect_code(0);
    assert!(ok.stdout.contains("manifest.json.sig: a good signature by auditor@example.com"), "{}", ok.describe());

    // The key itself is nowhere: not in a report, the manifest, or what was printed.
    let secret = wd.read("sign_key");
    let body: String = secret.lines().filter(|l| !l.starts_with("-----")).collect();
    for f in files_under(&wd.path().join("reports")) {
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        assert!(!text.contains(&body[20..60]), "the key is in {}", f.display());
    }
    assert!(!out.stderr.contains(&body[20..60]));

    // An edited manifest: ssh-keygen and verify both refuse it.
    let manifest = wd.read("reports/n1/manifest.json");
    wd.write("reports/n1/manifest.json", manifest.replace("\"exit_code\": 0", "\"exit_code\": 3"));
    if let Some(v) = stock_verify(&wd, "reports/n1", "allowed_signers") {
        assert_ne!(v.code, 0, "ssh-keygen accepted an edited manifest\n{}", v.describe());
    }
    assert!(crate_verify(&wd, "reports/n1", &key).is_err());
    let bad = wd.run(&["verify", "reports/n1", "--allowed-signers", "allowed_signers"], &[], None);
    bad.expect_code(6);
    assert!(bad.stdout.contains("FAILED: manifest.json.sig: does not verify"), "{}", bad.describe());
    wd.write("reports/n1/manifest.json", &manifest);

    // Signed by a key the auditor does not list.
    let other = key_file(&wd, "other_key", 9);
    allowed_signers(&wd, "other_signers", &other);
    let bad = wd.run(&["verify", "reports/n1", "--allowed-signers", "other_signers"], &[], None);
    bad.expect_code(6);
    assert!(bad.stdout.contains("not in other_signers"), "{}", bad.describe());

    // No signature: asked for, it fails; and a manifest that names a key
    // without its signature (a crash between the two) fails even unasked.
    std::fs::remove_file(wd.path().join("reports/n1/manifest.json.sig")).unwrap();
    let bad = wd.run(&["verify", "reports/n1", "--allowed-signers", "allowed_signers"], &[], None);
    bad.expect_code(6);
    let bad = wd.run(&["verify", "reports/n1"], &[], None);
    bad.expect_code(6);
    assert!(bad.stdout.contains("ssh-keygen -Y sign"), "says how to finish the signature\n{}", bad.describe());

    // The key named by the environment instead; prune knows the file.
    let sim = SimServer::start(cat.config());
    let key_path = wd.path().join("sign_key").display().to_string();
    Audit::new(&wd, &sim).out("reports/n2").env("VOD_IMAGE_AUDIT_SIGN_KEY", &key_path).run().expect_code(0);
    crate_verify(&wd, "reports/n2", &key).expect("signed with the key the variable names");
    let pruned = wd.run(&["prune", "reports", "--keep-last", "1", "--dry-run"], &[], None);
    pruned.expect_code(0);
    assert!(!pruned.stderr.contains("did not write"), "{}", pruned.describe());
}

#[test]
fn a_key_that_cannot_sign_is_refused_before_any_call() {
    let bench = Bench::new(5, 402);
    bench.wd.write("ids.csv", id_file(&bench.ids(5)));
    let wd = &bench.wd;
    let run = |key: &str| Audit::new(wd, &bench.server).out("out").args(["--sign-key", key]).run();
    key_file(wd, "good", 3);
    let open = wd.path().join("good");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    bench.expect_refused_without_calls(&run("good"), &["good", "readable by others", "chmod 600"]);
    let path = wd.write("garbage", "not a key\n");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    bench.expect_refused_without_calls(&run("garbage"), &["garbage", "not an OpenSSH private key"]);
    let path = wd.write("huge", vec![b'A'; 1 << 20]);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    bench.expect_refused_without_calls(&run("huge"), &["huge", "larger than"]);
    let fifo = wd.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // Nobody writes to it: a blocking read would hang the run here.
    bench.expect_refused_without_calls(&run("fifo"), &["fifo", "not a regular file"]);
    bench.expect_refused_without_calls(&run("nonexistent"), &["nonexistent"]);
    if !ssh_keygen() {
        eprintln!("SKIPPED the encrypted and RSA key cases: no ssh-keygen on this machine");
        return;
    }
    let keygen = |name: &str, args: &[&str]| {
        let p = wd.path().join(name);
        let st = Command::new("ssh-keygen").args(args).arg("-q").arg("-f").arg(&p).stdout(Stdio::null()).status();
        assert!(st.unwrap().success());
    };
    keygen("encrypted", &["-t", "ed25519", "-N", "a passphrase"]);
    bench.expect_refused_without_calls(&run("encrypted"), &["encrypted", "passphrase"]);
    keygen("rsa", &["-t", "rsa", "-b", "2048", "-N", ""]);
    bench.expect_refused_without_calls(&run("rsa"), &["rsa", "ed25519"]);
    assert!(!Path::new(&wd.path().join("out")).exists(), "a refused start leaves nothing");
}
