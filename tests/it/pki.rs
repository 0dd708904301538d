//! carimbo-pki end to end: a P-384 root, P-256 int-server and int-workload (with name
//! constraints) intermediates and the root's ARL, signed through lint-before-sign with
//! file-provider keys, then checked by independent verifiers: the `openssl` CLI
//! (path validation in strict mode, CRL signature and revocation, extension dump) and
//! `pkilint` (RFC 5280 certificate, issuer/subject and ARL linters).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use carimbo_kms::{
    FileProvider, GenerateRequest, KeyAlgorithm, KeyName, KeyProvider, Purpose, SignatureAlgorithm,
    SigningKey, load_or_create_file_kek,
};
use carimbo_pki::{
    CertificateProfile, CertificateTemplate, CrlKind, CrlTemplate, DistinguishedName, DnAttribute,
    IntermediateUsage, IssuerInfo, NameConstraints, RevocationReason, RevokedCertificate,
    SerialNumber, pem_decode, pem_encode, prepare_certificate, prepare_crl,
};
use carimbo_tests::openssl;
use time::{Duration, OffsetDateTime};

const ROOT_CRL: &str = "http://crl.carimbo.test/root.crl";
const ROOT_CERT: &str = "http://ca.carimbo.test/root.cer";
const SERVER_CRL: &str = "http://crl.carimbo.test/server.crl";

/// The hierarchy as PEM files in a temporary directory.
struct Hierarchy {
    dir: tempfile::TempDir,
    root_serial: SerialNumber,
    retired_serial: SerialNumber,
}

impl Hierarchy {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

async fn key(
    provider: &FileProvider,
    name: &str,
    algorithm: SignatureAlgorithm,
) -> Arc<dyn SigningKey> {
    let name = KeyName::new(&format!("pki-ca/test/{name}")).unwrap();
    let generated = provider
        .generate(&GenerateRequest {
            name: &name,
            version: 1,
            purpose: Purpose::PkiCa,
            algorithm: KeyAlgorithm::Signature(algorithm),
        })
        .await
        .unwrap();
    provider
        .signing_key(&generated.reference, algorithm)
        .await
        .unwrap()
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnAttribute::Country, "BR").unwrap();
    name.push(DnAttribute::Organization, "Carimbo Test PKI")
        .unwrap();
    name.push(DnAttribute::CommonName, common_name).unwrap();
    name
}

fn intermediate(
    usage: IntermediateUsage,
    common_name: &str,
    spki: &[u8],
    now: OffsetDateTime,
) -> CertificateTemplate {
    CertificateTemplate {
        profile: CertificateProfile::Intermediate { usage },
        subject: name(common_name),
        subject_public_key_info: spki.to_vec(),
        serial: SerialNumber::random().unwrap(),
        not_before: now - Duration::minutes(5),
        not_after: now + Duration::days(365 * 5),
        crl_distribution_points: vec![ROOT_CRL.into()],
        ca_issuers: vec![ROOT_CERT.into()],
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: None,
    }
}

fn write_pem(dir: &Path, file: &str, label: &str, der: &[u8]) {
    let pem = pem_encode(label, der);
    assert_eq!(pem_decode(&pem, label).unwrap(), der);
    std::fs::write(dir.join(file), pem).unwrap();
}

async fn hierarchy() -> Hierarchy {
    let dir = tempfile::tempdir().unwrap();
    let kek = load_or_create_file_kek(&dir.path().join("kek")).unwrap();
    let provider = FileProvider::new(dir.path().join("keys"), kek).unwrap();
    let now = OffsetDateTime::now_utc();

    let root_key = key(&provider, "root", SignatureAlgorithm::EcdsaP384Sha384).await;
    let root_template = CertificateTemplate {
        profile: CertificateProfile::Root,
        subject: name("Carimbo Test Root R1"),
        subject_public_key_info: root_key.public_key_der().to_vec(),
        serial: SerialNumber::random().unwrap(),
        not_before: now - Duration::hours(1),
        not_after: now + Duration::days(365 * 20),
        crl_distribution_points: Vec::new(),
        ca_issuers: Vec::new(),
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: None,
    };
    let self_issuer =
        IssuerInfo::self_signed(&root_template, SignatureAlgorithm::EcdsaP384Sha384).unwrap();
    let root = prepare_certificate(&root_template, &self_issuer, now)
        .unwrap()
        .sign(root_key.as_ref())
        .await
        .unwrap();
    let issuer = IssuerInfo::from_certificate(&root, SignatureAlgorithm::EcdsaP384Sha384).unwrap();
    write_pem(dir.path(), "root.pem", "CERTIFICATE", &root);

    let server_key = key(&provider, "int-server", SignatureAlgorithm::EcdsaP256Sha256).await;
    let template = intermediate(
        IntermediateUsage::Server,
        "Carimbo Test Server CA",
        server_key.public_key_der(),
        now,
    );
    let server = prepare_certificate(&template, &issuer, now)
        .unwrap()
        .sign(root_key.as_ref())
        .await
        .unwrap();
    write_pem(dir.path(), "server.pem", "CERTIFICATE", &server);

    let workload_key = key(
        &provider,
        "int-workload",
        SignatureAlgorithm::EcdsaP256Sha256,
    )
    .await;
    let mut template = intermediate(
        IntermediateUsage::Workload,
        "Carimbo Test Workload CA",
        workload_key.public_key_der(),
        now,
    );
    template.name_constraints = Some(NameConstraints {
        permitted_dns: vec!["svc.carimbo.test".into()],
        excluded_dns: vec!["legacy.svc.carimbo.test".into()],
        permitted_uri_hosts: vec!["prod.carimbo.test".into()],
    });
    let workload = prepare_certificate(&template, &issuer, now)
        .unwrap()
        .sign(root_key.as_ref())
        .await
        .unwrap();
    write_pem(dir.path(), "workload.pem", "CERTIFICATE", &workload);

    // A third intermediate, revoked in the ARL.
    let retired_key = key(
        &provider,
        "int-retired",
        SignatureAlgorithm::EcdsaP256Sha256,
    )
    .await;
    let template = intermediate(
        IntermediateUsage::Server,
        "Carimbo Test Retired CA",
        retired_key.public_key_der(),
        now,
    );
    let retired_serial = template.serial.clone();
    let retired = prepare_certificate(&template, &issuer, now)
        .unwrap()
        .sign(root_key.as_ref())
        .await
        .unwrap();
    write_pem(dir.path(), "retired.pem", "CERTIFICATE", &retired);

    let arl = CrlTemplate {
        kind: CrlKind::Arl,
        crl_number: 1,
        this_update: now - Duration::minutes(1),
        next_update: now + Duration::days(180),
        revoked: vec![RevokedCertificate {
            serial: retired_serial.clone(),
            revocation_time: now - Duration::minutes(2),
            reason: Some(RevocationReason::Superseded),
        }],
        issuing_distribution_point: Some(ROOT_CRL.into()),
    };
    let arl = prepare_crl(&arl, &issuer, now)
        .unwrap()
        .sign(root_key.as_ref())
        .await
        .unwrap();
    write_pem(dir.path(), "arl.pem", "X509 CRL", &arl);

    // int-server's own CRL of end-entity certificates.
    let server_issuer =
        IssuerInfo::from_certificate(&server, SignatureAlgorithm::EcdsaP256Sha256).unwrap();
    let crl = CrlTemplate {
        kind: CrlKind::Crl,
        crl_number: 42,
        this_update: now - Duration::minutes(1),
        next_update: now + Duration::days(7),
        revoked: vec![RevokedCertificate {
            serial: SerialNumber::random().unwrap(),
            revocation_time: now - Duration::minutes(3),
            reason: Some(RevocationReason::KeyCompromise),
        }],
        issuing_distribution_point: Some(SERVER_CRL.into()),
    };
    let crl = prepare_crl(&crl, &server_issuer, now)
        .unwrap()
        .sign(server_key.as_ref())
        .await
        .unwrap();
    write_pem(dir.path(), "server-crl.pem", "X509 CRL", &crl);

    Hierarchy {
        dir,
        root_serial: root_template.serial,
        retired_serial,
    }
}

fn assert_openssl(args: &[&str]) -> String {
    let (ok, output) = openssl(args);
    assert!(ok, "openssl {args:?} failed:\n{output}");
    output
}

#[tokio::test]
async fn openssl_validates_the_hierarchy_strictly() {
    let pki = hierarchy().await;
    let root = pki.arg("root.pem");
    for intermediate in ["server.pem", "workload.pem", "retired.pem"] {
        let file = pki.arg(intermediate);
        let output = assert_openssl(&["verify", "-x509_strict", "-CAfile", &root, &file]);
        assert!(output.contains(": OK"), "{output}");
    }
    // The root verifies as a self-signed trust anchor too.
    assert_openssl(&["verify", "-x509_strict", "-CAfile", &root, &root]);

    // With the ARL: the live intermediates pass, the revoked one fails.
    let arl = pki.arg("arl.pem");
    let crl_check = |file: &str| {
        openssl(&[
            "verify",
            "-x509_strict",
            "-crl_check",
            "-CAfile",
            &root,
            "-CRLfile",
            &arl,
            &pki.arg(file),
        ])
    };
    for live in ["server.pem", "workload.pem"] {
        let (ok, output) = crl_check(live);
        assert!(ok, "{live}: {output}");
    }
    let (ok, output) = crl_check("retired.pem");
    assert!(!ok, "a revoked intermediate verified: {output}");
    assert!(output.contains("revoked"), "{output}");
}

#[tokio::test]
async fn openssl_verifies_the_arl_and_shows_its_scope() {
    let pki = hierarchy().await;
    let root = pki.arg("root.pem");
    let arl = pki.arg("arl.pem");
    let output = assert_openssl(&["crl", "-in", &arl, "-CAfile", &root, "-verify", "-noout"]);
    assert!(output.contains("verify OK"), "{output}");
    let text = assert_openssl(&["crl", "-in", &arl, "-noout", "-text"]);
    for expected in [
        "X509v3 CRL Number: \n                1",
        "X509v3 Issuing Distribution Point: critical",
        "Only CA Certificates",
        ROOT_CRL,
        "Superseded",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let retired = pki.retired_serial.to_hex().to_uppercase();
    assert!(text.contains(&retired), "missing {retired} in:\n{text}");

    // An issuing CA's CRL verifies under the intermediate and says it covers
    // end-entity certificates only.
    let server_crl = pki.arg("server-crl.pem");
    let server = pki.arg("server.pem");
    let output = assert_openssl(&[
        "crl",
        "-in",
        &server_crl,
        "-CAfile",
        &server,
        "-verify",
        "-noout",
    ]);
    assert!(output.contains("verify OK"), "{output}");
    let text = assert_openssl(&["crl", "-in", &server_crl, "-noout", "-text"]);
    assert!(text.contains("Only User Certificates"), "{text}");
    assert!(text.contains(SERVER_CRL), "{text}");
}

fn x509_text(pki: &Hierarchy, file: &str) -> String {
    assert_openssl(&["x509", "-in", &pki.arg(file), "-noout", "-text"])
}

/// The value line after `header` in `openssl x509 -text` output.
fn value_after(text: &str, header: &str) -> String {
    let mut lines = text.lines();
    lines
        .find(|line| line.contains(header))
        .unwrap_or_else(|| panic!("no {header} in:\n{text}"));
    lines.next().unwrap().trim().to_owned()
}

#[tokio::test]
async fn openssl_shows_the_profile_extensions() {
    let pki = hierarchy().await;
    let root = x509_text(&pki, "root.pem");
    assert!(
        root.contains("X509v3 Basic Constraints: critical"),
        "{root}"
    );
    assert_eq!(value_after(&root, "X509v3 Basic Constraints"), "CA:TRUE");
    assert!(root.contains("X509v3 Key Usage: critical"), "{root}");
    assert_eq!(
        value_after(&root, "X509v3 Key Usage"),
        "Certificate Sign, CRL Sign"
    );
    assert!(!root.contains("Extended Key Usage"), "{root}");
    assert!(!root.contains("CRL Distribution Points"), "{root}");
    assert!(root.contains("ecdsa-with-SHA384"), "{root}");
    assert!(root.contains("NIST CURVE: P-384"), "{root}");
    let root_skid = value_after(&root, "X509v3 Subject Key Identifier");
    assert_eq!(
        value_after(&root, "X509v3 Authority Key Identifier"),
        root_skid
    );
    assert!(
        root.contains(&pki.root_serial.to_hex()[..2]),
        "serial missing in {root}"
    );

    let server = x509_text(&pki, "server.pem");
    assert!(
        server.contains("X509v3 Basic Constraints: critical"),
        "{server}"
    );
    assert_eq!(
        value_after(&server, "X509v3 Basic Constraints"),
        "CA:TRUE, pathlen:0"
    );
    assert!(server.contains("X509v3 Key Usage: critical"), "{server}");
    assert_eq!(
        value_after(&server, "X509v3 Key Usage"),
        "Certificate Sign, CRL Sign"
    );
    assert_eq!(
        value_after(&server, "X509v3 Extended Key Usage"),
        "TLS Web Server Authentication"
    );
    assert!(!server.contains("Extended Key Usage: critical"), "{server}");
    assert!(server.contains(&format!("URI:{ROOT_CRL}")), "{server}");
    assert!(
        server.contains(&format!("CA Issuers - URI:{ROOT_CERT}")),
        "{server}"
    );
    assert!(!server.contains("OCSP - URI"), "{server}");
    assert!(!server.contains("Name Constraints"), "{server}");
    assert_eq!(
        value_after(&server, "X509v3 Authority Key Identifier"),
        root_skid
    );
    assert!(server.contains("Issuer: C = BR, O = Carimbo Test PKI, CN = Carimbo Test Root R1"));

    let workload = x509_text(&pki, "workload.pem");
    assert_eq!(
        value_after(&workload, "X509v3 Extended Key Usage"),
        "TLS Web Server Authentication, TLS Web Client Authentication"
    );
    assert!(
        workload.contains("X509v3 Name Constraints: critical"),
        "{workload}"
    );
    for expected in [
        "Permitted:",
        "DNS:svc.carimbo.test",
        "URI:prod.carimbo.test",
        "Excluded:",
        "DNS:legacy.svc.carimbo.test",
    ] {
        assert!(
            workload.contains(expected),
            "missing {expected:?} in:\n{workload}"
        );
    }
}

#[tokio::test]
async fn openssl_rejects_a_tampered_certificate() {
    let pki = hierarchy().await;
    let pem = std::fs::read_to_string(pki.path("server.pem")).unwrap();
    let mut der = pem_decode(&pem, "CERTIFICATE").unwrap();
    let at = der
        .windows(b"Server".len())
        .position(|w| w == b"Server")
        .unwrap();
    der[at] = b'X'; // "Xerver": same length, different TBS
    write_pem(pki.dir.path(), "tampered.pem", "CERTIFICATE", &der);
    let (ok, output) = openssl(&[
        "verify",
        "-CAfile",
        &pki.arg("root.pem"),
        &pki.arg("tampered.pem"),
    ]);
    assert!(!ok, "a tampered certificate verified: {output}");
    assert!(output.contains("signature failure"), "{output}");
}

/// Runs a pkilint linter, `None` when pkilint is not installed.
fn pkilint(linter: &str, args: &[&str]) -> Option<(bool, String)> {
    let output = Command::new(linter).args(args).output().ok()?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Some((output.status.success(), text))
}

#[tokio::test]
async fn pkilint_finds_nothing_at_warning_or_above() {
    if pkilint("lint_pkix_cert", &["--help"]).is_none() {
        carimbo_tests::skip("pkilint", "lint_pkix_cert not found (pip install pkilint)");
        return;
    }
    let pki = hierarchy().await;
    let mut runs: Vec<(&str, Vec<String>)> = Vec::new();
    for file in ["root.pem", "server.pem", "workload.pem"] {
        runs.push((
            "lint_pkix_cert",
            vec!["lint".into(), "-s".into(), "WARNING".into(), pki.arg(file)],
        ));
    }
    for file in ["root.pem", "server.pem", "workload.pem"] {
        runs.push((
            "lint_pkix_signer_signee_cert_chain",
            vec![
                "lint".into(),
                "-s".into(),
                "WARNING".into(),
                pki.arg("root.pem"),
                pki.arg(file),
            ],
        ));
    }
    runs.push((
        "lint_crl",
        vec![
            "lint".into(),
            "-t".into(),
            "ARL".into(),
            "-p".into(),
            "PKIX".into(),
            "-s".into(),
            "WARNING".into(),
            pki.arg("arl.pem"),
        ],
    ));
    runs.push((
        "lint_crl",
        vec![
            "lint".into(),
            "-t".into(),
            "CRL".into(),
            "-p".into(),
            "PKIX".into(),
            "-s".into(),
            "WARNING".into(),
            pki.arg("server-crl.pem"),
        ],
    ));
    for (linter, args) in runs {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, output) = pkilint(linter, &args).unwrap();
        assert!(ok, "{linter} {args:?} reported findings:\n{output}");
    }
}
