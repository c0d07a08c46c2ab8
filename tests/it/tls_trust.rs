//! TLS trust: the simulator serves https on loopback with a certificate
//! from a CA made here, which no store on the machine holds. The client
//! refuses it (exit 2, naming the host and the two ways to trust it, before
//! any run directory exists), and accepts it once `--ca-file` or
//! `SSL_CERT_FILE` names the CA.

use crate::common::{SimServer, TestCatalog, Workdir};

/// A CA and a server certificate it signed for 127.0.0.1, as PEM:
/// (CA certificate, server certificate, server key).
fn test_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "vod-image-audit test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name.push(DnType::CommonName, "127.0.0.1");
    leaf.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

struct Tls {
    server: SimServer,
    wd: Workdir,
    id: String,
}

fn tls_sim() -> Tls {
    let (ca, cert, key) = test_pki();
    let cat = TestCatalog::generate(5, 29);
    let server = SimServer::start_tls(cat.config(), &cert, &key);
    let wd = Workdir::new();
    wd.write("ca.pem", ca);
    wd.write("ids.csv", format!("ImageId\n{}\n", cat.ids().join("\n")));
    Tls { server, wd, id: cat.ids()[0].clone() }
}

fn assert_names_the_ways(out: &crate::common::Output) {
    for want in ["127.0.0.1", "not trusted", "--ca-file", "SSL_CERT_FILE", "certificate store"] {
        assert!(out.stderr.contains(want), "expected {want:?} in the message\n{}", out.describe());
    }
}

#[test]
fn check_refuses_an_unknown_ca_with_exit_2_naming_the_host_and_the_two_ways() {
    let t = tls_sim();
    let out = crate::common::Audit::check(&t.wd, &t.server, &t.id).run();
    out.expect_code(2);
    assert_names_the_ways(&out);
}

#[test]
fn check_trusts_the_ca_of_ca_file() {
    let t = tls_sim();
    let out = crate::common::Audit::check(&t.wd, &t.server, &t.id).args(["--ca-file", "ca.pem"]).run();
    out.expect_code(0);
    assert!(out.stdout.contains(&t.id), "{}", out.describe());
}

#[test]
fn check_trusts_the_ca_of_ssl_cert_file() {
    let t = tls_sim();
    let ca = t.wd.path().join("ca.pem");
    let out = crate::common::Audit::check(&t.wd, &t.server, &t.id).env("SSL_CERT_FILE", ca.to_str().unwrap()).run();
    out.expect_code(0);
}

#[test]
fn run_refuses_an_unknown_ca_before_any_run_directory_and_runs_with_ca_file() {
    let t = tls_sim();
    let refused = crate::common::Audit::new(&t.wd, &t.server).run();
    refused.expect_code(2);
    assert_names_the_ways(&refused);
    assert!(!t.wd.path().join("out").exists(), "a refused certificate left a run directory\n{}", refused.describe());
    assert_eq!(t.server.stats().requests, 0, "a call went through\n{}", refused.describe());

    let trusted = crate::common::Audit::new(&t.wd, &t.server).args(["--ca-file", "ca.pem"]).run();
    trusted.expect_code(0);
    assert_eq!(t.server.stats().requests, 5, "{}", trusted.describe());
}

#[test]
fn a_ca_file_that_holds_no_certificate_is_refused_naming_the_file() {
    let t = tls_sim();
    t.wd.write("not-a-ca.pem", "hello\n");
    let out = crate::common::Audit::check(&t.wd, &t.server, &t.id).args(["--ca-file", "not-a-ca.pem"]).run();
    out.expect_code(2);
    assert!(out.stderr.contains("not-a-ca.pem"), "{}", out.describe());
    assert!(out.stderr.contains("--ca-file"), "{}", out.describe());
}

/// STS elsewhere (its certificate trusted, here plain http on loopback): the
/// endpoint's own certificate is still checked before any run directory.
#[test]
fn run_checks_the_endpoints_certificate_when_sts_is_another_host() {
    let t = tls_sim();
    let sts = SimServer::start(TestCatalog::generate(1, 1).config());
    let refused = crate::common::Audit::new(&t.wd, &t.server).env("VOD_IMAGE_AUDIT_STS_ENDPOINT", &sts.url).run();
    refused.expect_code(2);
    assert_names_the_ways(&refused);
    assert!(!t.wd.path().join("out").exists(), "a refused certificate left a run directory\n{}", refused.describe());
    assert_eq!(t.server.stats().by_action.get("GetImageInfo OK"), None, "{}", refused.describe());
}

#[test]
fn list_images_refuses_an_unknown_ca_with_exit_2_and_lists_with_ca_file() {
    let t = tls_sim();
    let list = |extra: &[&str]| {
        let a = crate::common::Audit::new(&t.wd, &t.server).no_input().no_out().subcommand("list-images");
        a.args(["--out", "list.csv", "--qps", "0"]).args(extra.iter().copied()).run()
    };
    let refused = list(&[]);
    refused.expect_code(2);
    assert_names_the_ways(&refused);
    assert!(!t.wd.path().join("list.csv").exists(), "{}", refused.describe());
    let listed = list(&["--ca-file", "ca.pem"]);
    listed.expect_code(0);
    assert_eq!(listed.stdout.trim(), "5", "{}", listed.describe());
}
