//! carimbo-pki OCSP end to end: a P-384 root and a P-256 issuing intermediate signed
//! with file-provider keys, three server leaves, and a delegated responder certificate
//! issued through lint-before-sign. Requests are made by `openssl ocsp` (SHA-1 and
//! SHA-256 CertIDs, with and without a nonce) and parsed; good, revoked
//! (keyCompromise) and unknown answers are signed by the responder key and checked by
//! `openssl ocsp` (signature, delegation, status, nonce) and, when installed, by
//! pkilint's `lint_ocsp_response`. The responder certificate is checked by `openssl
//! verify -purpose ocsphelper` and pkilint's certificate linters.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use carimbo_kms::{
    FileProvider, GenerateRequest, KeyAlgorithm, KeyName, KeyProvider, Purpose, SignatureAlgorithm,
    SigningKey, load_or_create_file_kek,
};
use carimbo_pki::{
    CertStatus, CertificateProfile, CertificateTemplate, DistinguishedName, DnAttribute,
    IntermediateUsage, IssuerHashes, IssuerInfo, LeafKind, LeafProfile, LeafTemplate, OcspHash,
    OcspRequest, OcspResponseStatus, OcspResponseTemplate, ResponderTemplate, RevocationReason,
    SerialNumber, SingleResponseTemplate, SubjectAltName, lint_ocsp_responder, ocsp_error_response,
    parse_ocsp_request, parse_ocsp_response, pem_encode, prepare_certificate, prepare_leaf,
    prepare_ocsp_responder, prepare_ocsp_response,
};
use carimbo_tests::openssl;
use time::{Duration, OffsetDateTime};

/// The leaves, by file stem, with the status the responder gives each.
const LEAVES: [&str; 3] = ["good", "revoked", "unknown"];

/// The hierarchy, the leaves, the responder and a directory of PEM files.
struct Pki {
    dir: tempfile::TempDir,
    now: OffsetDateTime,
    issuer: IssuerInfo,
    responder_key: Arc<dyn SigningKey>,
    responder: Vec<u8>,
    /// Leaf serials, in [`LEAVES`] order.
    serials: Vec<SerialNumber>,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn revoked_at(&self) -> OffsetDateTime {
        self.now - Duration::minutes(10)
    }

    /// The status the responder gives the certificate with `serial`.
    fn status_of(&self, serial: &SerialNumber) -> CertStatus {
        match self.serials.iter().position(|s| s == serial) {
            Some(0) => CertStatus::Good,
            Some(1) => CertStatus::Revoked {
                time: self.revoked_at(),
                reason: Some(RevocationReason::KeyCompromise),
            },
            _ => CertStatus::Unknown,
        }
    }
}

async fn file_key(
    provider: &FileProvider,
    name: &str,
    purpose: Purpose,
    algorithm: SignatureAlgorithm,
) -> Arc<dyn SigningKey> {
    let name = KeyName::new(name).unwrap();
    let generated = provider
        .generate(&GenerateRequest {
            name: &name,
            version: 1,
            purpose,
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

fn write_pem(pki_dir: &std::path::Path, file: &str, der: &[u8]) {
    std::fs::write(pki_dir.join(file), pem_encode("CERTIFICATE", der)).unwrap();
}

async fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let kek = load_or_create_file_kek(&dir.path().join("kek")).unwrap();
    let provider = FileProvider::new(dir.path().join("keys"), kek).unwrap();
    let now = OffsetDateTime::now_utc();

    let p384 = SignatureAlgorithm::EcdsaP384Sha384;
    let p256 = SignatureAlgorithm::EcdsaP256Sha256;
    let root_key = file_key(&provider, "pki-ca/test/root", Purpose::PkiCa, p384).await;
    let root_template = CertificateTemplate {
        profile: CertificateProfile::Root,
        subject: name("Carimbo OCSP Test Root"),
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
    let self_issuer = IssuerInfo::self_signed(&root_template, p384).unwrap();
    let root = prepare_certificate(&root_template, &self_issuer, now)
        .unwrap()
        .sign(root_key.as_ref())
        .await
        .unwrap();
    write_pem(dir.path(), "root.pem", &root);
    let root_issuer = IssuerInfo::from_certificate(&root, p384).unwrap();

    let issuer_key = file_key(&provider, "pki-ca/test/int-server", Purpose::PkiCa, p256).await;
    let template = CertificateTemplate {
        profile: CertificateProfile::Intermediate {
            usage: IntermediateUsage::Server,
        },
        subject: name("Carimbo OCSP Test Server CA"),
        subject_public_key_info: issuer_key.public_key_der().to_vec(),
        serial: SerialNumber::random().unwrap(),
        not_before: now - Duration::minutes(30),
        not_after: now + Duration::days(365 * 5),
        crl_distribution_points: vec!["http://crl.carimbo.test/root.crl".into()],
        ca_issuers: vec!["http://ca.carimbo.test/root.cer".into()],
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: None,
    };
    let intermediate = prepare_certificate(&template, &root_issuer, now)
        .unwrap()
        .sign(root_key.as_ref())
        .await
        .unwrap();
    write_pem(dir.path(), "issuer.pem", &intermediate);
    let issuer = IssuerInfo::from_certificate(&intermediate, p256).unwrap();

    let profile = LeafProfile::defaults(LeafKind::Server);
    let mut serials = Vec::new();
    for stem in LEAVES {
        let key = file_key(
            &provider,
            &format!("sign/test/leaf-{stem}"),
            Purpose::Sign,
            p256,
        )
        .await;
        let (not_before, not_after) = profile.validity_for_issuer(now, None, &issuer).unwrap();
        let serial = SerialNumber::random().unwrap();
        let template = LeafTemplate {
            profile,
            subject_public_key_info: key.public_key_der().to_vec(),
            sans: vec![SubjectAltName::Dns(format!("{stem}.carimbo.test"))],
            serial: serial.clone(),
            not_before,
            not_after,
            crl_distribution_points: vec!["http://crl.carimbo.test/int-server.crl".into()],
            ocsp_responders: vec!["http://ocsp.carimbo.test/".into()],
            ca_issuers: vec!["http://ca.carimbo.test/int-server.cer".into()],
        };
        let leaf = prepare_leaf(&template, &issuer, now)
            .unwrap()
            .sign(issuer_key.as_ref())
            .await
            .unwrap();
        write_pem(dir.path(), &format!("{stem}.pem"), &leaf);
        serials.push(serial);
    }

    let responder_key = file_key(&provider, "sign/test/ocsp-responder", Purpose::Sign, p256).await;
    let template = ResponderTemplate::for_issuer(
        &issuer,
        responder_key.public_key_der(),
        now,
        Duration::days(7),
    )
    .unwrap();
    let prepared = prepare_ocsp_responder(&template, &issuer, now).unwrap();
    assert!(prepared.findings().is_empty(), "{:?}", prepared.findings());
    let responder = prepared.sign(issuer_key.as_ref()).await.unwrap();
    let findings = lint_ocsp_responder(&responder, &issuer, now);
    assert!(findings.is_empty(), "{findings:?}");
    write_pem(dir.path(), "responder.pem", &responder);
    Pki {
        dir,
        now,
        issuer,
        responder_key,
        responder,
        serials,
    }
}

/// Runs `openssl` and asserts it succeeded; returns its output.
fn assert_openssl(args: &[&str]) -> String {
    let (ok, output) = openssl(args);
    assert!(ok, "openssl {args:?} failed:\n{output}");
    output
}

/// `openssl ocsp -issuer issuer.pem [-sha256] -cert <leaf>... -reqout <file>` with
/// `-no_nonce` unless `nonce`; returns the request DER.
fn openssl_request(pki: &Pki, file: &str, sha256: bool, nonce: bool) -> Vec<u8> {
    let issuer = pki.arg("issuer.pem");
    let out = pki.arg(file);
    let leaves: Vec<String> = LEAVES
        .iter()
        .map(|s| pki.arg(&format!("{s}.pem")))
        .collect();
    let mut args = vec!["ocsp", "-issuer", &issuer];
    if sha256 {
        args.push("-sha256");
    }
    for leaf in &leaves {
        args.extend_from_slice(&["-cert", leaf]);
    }
    args.extend_from_slice(&["-reqout", &out]);
    if !nonce {
        args.push("-no_nonce");
    }
    assert_openssl(&args);
    std::fs::read(pki.path(file)).unwrap()
}

/// Signs the answer to `request` with the responder key (echoing `nonce`).
async fn respond(pki: &Pki, request: &OcspRequest, nonce: Option<Vec<u8>>) -> Vec<u8> {
    let hashes = IssuerHashes::from_issuer(&pki.issuer).unwrap();
    let responses = request
        .certs
        .iter()
        .map(|id| {
            assert!(hashes.matches(id), "a CertID of another issuer: {id:?}");
            SingleResponseTemplate {
                cert_id_der: id.der.clone(),
                status: pki.status_of(&id.serial_number().unwrap()),
                this_update: pki.now,
                next_update: pki.now + Duration::hours(1),
            }
        })
        .collect();
    let template = OcspResponseTemplate {
        produced_at: pki.now,
        responses,
        nonce,
        responder_certificate: pki.responder.clone(),
    };
    prepare_ocsp_response(
        &template,
        pki.responder_key.public_key_der(),
        pki.responder_key.algorithm(),
    )
    .unwrap()
    .sign(pki.responder_key.as_ref())
    .await
    .unwrap()
}

/// `openssl ocsp -respin <file>` verifying against the root (the intermediate as an
/// untrusted certificate), with `extra` arguments; returns (success, output).
fn openssl_check(pki: &Pki, file: &str, extra: &[&str]) -> (bool, String) {
    let respin = pki.arg(file);
    let root = pki.arg("root.pem");
    let issuer = pki.arg("issuer.pem");
    let mut args = vec![
        "ocsp",
        "-respin",
        &respin,
        "-CAfile",
        &root,
        "-verify_other",
        &issuer,
        "-resp_text",
    ];
    args.extend_from_slice(extra);
    openssl(&args)
}

#[tokio::test]
async fn openssl_verifies_the_responder_certificate() {
    let pki = pki().await;
    let output = assert_openssl(&[
        "verify",
        "-purpose",
        "ocsphelper",
        "-x509_strict",
        "-CAfile",
        &pki.arg("root.pem"),
        "-untrusted",
        &pki.arg("issuer.pem"),
        &pki.arg("responder.pem"),
    ]);
    assert!(output.contains(": OK"), "{output}");
    let text = assert_openssl(&["x509", "-in", &pki.arg("responder.pem"), "-noout", "-text"]);
    for expected in [
        "Subject: C = BR, O = Carimbo Test PKI, CN = Carimbo OCSP Test Server CA OCSP responder",
        "X509v3 Key Usage: critical",
        "Digital Signature",
        "X509v3 Extended Key Usage: \n                OCSP Signing",
        "OCSP No Check",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Authority Key Identifier",
        "X509v3 Subject Key Identifier",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    for absent in [
        "Subject Alternative Name",
        "CRL Distribution",
        "Authority Information",
    ] {
        assert!(!text.contains(absent), "{absent:?} in\n{text}");
    }
}

#[tokio::test]
async fn openssl_requests_are_parsed_and_answered_verifiably() {
    let pki = pki().await;
    let hashes = IssuerHashes::from_issuer(&pki.issuer).unwrap();
    for (sha256, hash) in [(false, OcspHash::Sha1), (true, OcspHash::Sha256)] {
        let stem = if sha256 { "sha256" } else { "sha1" };
        let der = openssl_request(&pki, &format!("{stem}-req.der"), sha256, false);
        let request = parse_ocsp_request(&der).unwrap();
        assert_eq!(request.nonce, None);
        assert_eq!(request.certs.len(), LEAVES.len());
        for (id, serial) in request.certs.iter().zip(&pki.serials) {
            assert_eq!(id.hash, hash);
            assert!(hashes.matches(id));
            assert_eq!(&id.serial_number().unwrap(), serial);
            // Our CertID encoding is OpenSSL's.
            assert_eq!(hashes.cert_id(hash, serial.as_bytes()).unwrap().der, id.der);
        }

        let response = respond(&pki, &request, None).await;
        let file = format!("{stem}-resp.der");
        std::fs::write(pki.path(&file), &response).unwrap();
        let issuer = pki.arg("issuer.pem");
        let leaves: Vec<String> = LEAVES
            .iter()
            .map(|s| pki.arg(&format!("{s}.pem")))
            .collect();
        let mut extra = vec!["-issuer", issuer.as_str(), "-no_nonce"];
        if sha256 {
            extra.push("-sha256");
        }
        for leaf in &leaves {
            extra.extend_from_slice(&["-cert", leaf]);
        }
        let (ok, output) = openssl_check(&pki, &file, &extra);
        assert!(ok, "{stem}: {output}");
        assert!(output.contains("Response verify OK"), "{stem}: {output}");
        assert!(!output.contains("WARNING"), "{stem}: {output}");
        for (stem, status) in LEAVES.iter().zip(["good", "revoked", "unknown"]) {
            let line = format!("{}: {status}", pki.arg(&format!("{stem}.pem")));
            assert!(output.contains(&line), "{line:?} in\n{output}");
        }
        assert!(output.contains("Reason: keyCompromise"), "{output}");
        assert!(
            output.contains("Responder Id: ") && output.contains("OCSP Signing"),
            "{output}"
        );

        // A flipped signature bit fails verification.
        let mut tampered = response.clone();
        let last = tampered.len() - pki.responder.len() - 10;
        tampered[last] ^= 0x01;
        std::fs::write(pki.path("tampered.der"), &tampered).unwrap();
        let (ok, output) = openssl_check(&pki, "tampered.der", &extra);
        assert!(!ok && !output.contains("Response verify OK"), "{output}");
    }
}

#[tokio::test]
async fn the_nonce_is_echoed_and_checked_by_openssl() {
    let pki = pki().await;
    let der = openssl_request(&pki, "nonce-req.der", false, true);
    let request = parse_ocsp_request(&der).unwrap();
    let nonce = request
        .nonce
        .clone()
        .expect("openssl sends a nonce by default");
    // OpenSSL writes an OCTET STRING of 16 random bytes inside extnValue.
    assert_eq!(nonce.len(), 18, "{nonce:02x?}");
    assert_eq!(&nonce[..2], &[0x04, 0x10]);

    let response = respond(&pki, &request, Some(nonce.clone())).await;
    assert_eq!(
        parse_ocsp_response(&response).unwrap().nonce,
        Some(nonce.clone())
    );
    std::fs::write(pki.path("nonce-resp.der"), &response).unwrap();
    let reqin = pki.arg("nonce-req.der");
    let (ok, output) = openssl_check(&pki, "nonce-resp.der", &["-reqin", &reqin]);
    assert!(ok, "{output}");
    assert!(output.contains("Response verify OK"), "{output}");
    assert!(output.contains("OCSP Nonce:"), "{output}");
    assert!(
        !output.contains("Nonce Verify error") && !output.contains("WARNING"),
        "{output}"
    );
    assert!(output.contains("Cert Status: revoked"), "{output}");

    // Another nonce is a verification error; none at all a warning.
    let mut other = nonce.clone();
    other[5] ^= 0xff;
    let response = respond(&pki, &request, Some(other)).await;
    std::fs::write(pki.path("other-nonce.der"), &response).unwrap();
    let (ok, output) = openssl_check(&pki, "other-nonce.der", &["-reqin", &reqin]);
    assert!(!ok && output.contains("Nonce Verify error"), "{output}");
    let response = respond(&pki, &request, None).await;
    std::fs::write(pki.path("no-nonce.der"), &response).unwrap();
    let (_, output) = openssl_check(&pki, "no-nonce.der", &["-reqin", &reqin]);
    assert!(output.contains("WARNING: no nonce in response"), "{output}");
}

#[tokio::test]
async fn error_responses_are_understood_by_openssl() {
    let pki = pki().await;
    for (status, text) in [
        (OcspResponseStatus::MalformedRequest, "malformedrequest (1)"),
        (OcspResponseStatus::Unauthorized, "unauthorized (6)"),
        (OcspResponseStatus::TryLater, "trylater (3)"),
    ] {
        std::fs::write(pki.path("error.der"), ocsp_error_response(status)).unwrap();
        let (ok, output) = openssl(&["ocsp", "-respin", &pki.arg("error.der"), "-resp_text"]);
        assert!(!ok, "{output}");
        assert!(output.contains(text), "{text:?} in\n{output}");
    }
}

/// Runs a pkilint linter, `None` when pkilint is not installed.
fn pkilint(linter: &str, args: &[&str]) -> Option<(bool, String)> {
    let output = Command::new(linter).args(args).output().ok()?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Some((output.status.success(), text))
}

/// The findings in a pkilint report: its lines `<code> (<SEVERITY>): <message>`.
fn pkilint_findings(report: &str) -> Vec<(&str, &str)> {
    report
        .lines()
        .filter_map(|line| {
            let (code, rest) = line.trim().split_once(' ')?;
            let (severity, message) = rest.split_once("): ")?;
            let severity = severity.strip_prefix('(')?;
            ["FATAL", "ERROR", "WARNING", "NOTICE", "INFO"]
                .contains(&severity)
                .then_some((code, message))
        })
        .collect()
}

/// Runs `linter lint -s WARNING <args>` and asserts it reports nothing (no false
/// positive is expected here: none is filtered).
fn assert_pkilint_clean(linter: &str, args: &[&str]) {
    let mut all = vec!["lint", "-s", "WARNING"];
    all.extend_from_slice(args);
    let (ok, output) = pkilint(linter, &all).unwrap();
    let findings = pkilint_findings(&output);
    assert!(
        findings.is_empty(),
        "{linter} {args:?}: {findings:?}\n{output}"
    );
    assert!(ok, "{linter} {args:?} failed without findings:\n{output}");
}

#[tokio::test]
async fn pkilint_finds_nothing_at_warning_or_above() {
    for linter in ["lint_ocsp_response", "lint_pkix_cert"] {
        if pkilint(linter, &["--help"]).is_none() {
            carimbo_tests::skip(
                "pkilint",
                &format!("{linter} not found (pip install pkilint)"),
            );
            return;
        }
    }
    let pki = pki().await;
    let responder = pki.arg("responder.pem");
    assert_pkilint_clean("lint_pkix_cert", &[&responder]);
    assert_pkilint_clean(
        "lint_pkix_signer_signee_cert_chain",
        &[&pki.arg("issuer.pem"), &responder],
    );
    for nonce in [false, true] {
        let der = openssl_request(&pki, "lint-req.der", false, nonce);
        let request = parse_ocsp_request(&der).unwrap();
        let response = respond(&pki, &request, request.nonce.clone()).await;
        std::fs::write(pki.path("lint-resp.der"), &response).unwrap();
        assert_pkilint_clean(
            "lint_ocsp_response",
            &["--document-format", "DER", &pki.arg("lint-resp.der")],
        );
    }
}
