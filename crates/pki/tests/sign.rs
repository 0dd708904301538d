//! Prepare → sign with file-provider keys of every algorithm: the signed TBS is the
//! linted TBS, signatures verify, lint errors block, and only the issuer key signs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use carimbo_kms::{
    FileProvider, GenerateRequest, KeyAlgorithm, KeyName, KeyProvider, Purpose, SignatureAlgorithm,
    SigningKey, load_or_create_file_kek,
};
use carimbo_pki::{
    CertificateProfile, CertificateTemplate, CrlKind, CrlTemplate, DistinguishedName, DnAttribute,
    IntermediateUsage, IssuerInfo, NameConstraints, PkiError, RevocationReason, RevokedCertificate,
    SerialNumber, Severity, lint_certificate, lint_crl, prepare_certificate, prepare_crl,
    verify_certificate_signature, verify_crl_signature,
};
use time::{Duration, OffsetDateTime};

struct Keys {
    provider: FileProvider,
    _dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kek = load_or_create_file_kek(&dir.path().join("kek")).unwrap();
        let provider = FileProvider::new(dir.path().join("keys"), kek).unwrap();
        Self {
            provider,
            _dir: dir,
        }
    }

    async fn key(&self, name: &str, algorithm: SignatureAlgorithm) -> Arc<dyn SigningKey> {
        let name = KeyName::new(&format!("pki-ca/test/{name}")).unwrap();
        let generated = self
            .provider
            .generate(&GenerateRequest {
                name: &name,
                version: 1,
                purpose: Purpose::PkiCa,
                algorithm: KeyAlgorithm::Signature(algorithm),
            })
            .await
            .unwrap();
        self.provider
            .signing_key(&generated.reference, algorithm)
            .await
            .unwrap()
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc().replace_nanosecond(0).unwrap()
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnAttribute::Country, "BR").unwrap();
    name.push(DnAttribute::Organization, "Carimbo Tests")
        .unwrap();
    name.push(DnAttribute::CommonName, common_name).unwrap();
    name
}

fn root_template(spki: &[u8], now: OffsetDateTime) -> CertificateTemplate {
    CertificateTemplate {
        profile: CertificateProfile::Root,
        subject: name("Carimbo Test Root"),
        subject_public_key_info: spki.to_vec(),
        serial: SerialNumber::random().unwrap(),
        not_before: now - Duration::hours(1),
        not_after: now + Duration::days(365 * 20),
        crl_distribution_points: Vec::new(),
        ca_issuers: Vec::new(),
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: None,
    }
}

fn intermediate_template(spki: &[u8], now: OffsetDateTime) -> CertificateTemplate {
    CertificateTemplate {
        profile: CertificateProfile::Intermediate {
            usage: IntermediateUsage::Server,
        },
        subject: name("Carimbo Test Server CA"),
        subject_public_key_info: spki.to_vec(),
        serial: SerialNumber::random().unwrap(),
        not_before: now - Duration::hours(1),
        not_after: now + Duration::days(365 * 5),
        crl_distribution_points: vec!["http://crl.example.com/root.crl".into()],
        ca_issuers: vec!["http://ca.example.com/root.cer".into()],
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: None,
    }
}

fn tbs_of(der: &[u8]) -> Vec<u8> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).unwrap();
    certificate.tbs_certificate.as_ref().to_vec()
}

/// Root of `algorithm` → P-256 intermediate → ARL, all signed and checked.
async fn hierarchy_with(algorithm: SignatureAlgorithm) {
    let keys = Keys::new();
    let now = now();
    let root_key = keys.key("root", algorithm).await;
    let template = root_template(root_key.public_key_der(), now);
    let self_issuer = IssuerInfo::self_signed(&template, algorithm).unwrap();
    let prepared = prepare_certificate(&template, &self_issuer, now).unwrap();
    let tbs = prepared.tbs_der().to_vec();
    assert_eq!(tbs_of(prepared.lint_certificate_der()), tbs);
    assert!(prepared.findings().is_empty(), "{:?}", prepared.findings());
    let root = prepared.sign(root_key.as_ref()).await.unwrap();
    assert_eq!(tbs_of(&root), tbs, "{algorithm}: signed TBS differs");
    verify_certificate_signature(&root, root_key.public_key_der(), algorithm).unwrap();

    let root_issuer = IssuerInfo::from_certificate(&root, algorithm).unwrap();
    assert_eq!(root_issuer.subject_der(), self_issuer.subject_der());
    assert_eq!(
        root_issuer.subject_key_identifier(),
        self_issuer.subject_key_identifier()
    );
    assert_eq!(root_issuer.not_after(), self_issuer.not_after());
    assert_eq!(
        root_issuer.subject_public_key_info(),
        root_key.public_key_der()
    );
    assert!(lint_certificate(&root, &CertificateProfile::Root, &root_issuer, now).is_empty());

    let subject_key = keys.key("int", SignatureAlgorithm::EcdsaP256Sha256).await;
    let template = intermediate_template(subject_key.public_key_der(), now);
    let prepared = prepare_certificate(&template, &root_issuer, now).unwrap();
    let tbs = prepared.tbs_der().to_vec();
    let intermediate = prepared.sign(root_key.as_ref()).await.unwrap();
    assert_eq!(tbs_of(&intermediate), tbs);
    verify_certificate_signature(&intermediate, root_key.public_key_der(), algorithm).unwrap();
    assert!(
        verify_certificate_signature(&intermediate, subject_key.public_key_der(), algorithm)
            .is_err()
    );

    let arl = CrlTemplate {
        kind: CrlKind::Arl,
        crl_number: 1,
        this_update: now,
        next_update: now + Duration::days(180),
        revoked: vec![RevokedCertificate {
            serial: SerialNumber::random().unwrap(),
            revocation_time: now - Duration::minutes(5),
            reason: Some(RevocationReason::CaCompromise),
        }],
        issuing_distribution_point: Some("http://crl.example.com/root.crl".into()),
    };
    let prepared = prepare_crl(&arl, &root_issuer, now).unwrap();
    let tbs = prepared.tbs_der().to_vec();
    let crl = prepared.sign(root_key.as_ref()).await.unwrap();
    let (_, parsed) = x509_parser::parse_x509_crl(&crl).unwrap();
    assert_eq!(parsed.tbs_cert_list.as_ref(), tbs.as_slice());
    verify_crl_signature(&crl, root_key.public_key_der(), algorithm).unwrap();
    assert!(lint_crl(&crl, CrlKind::Arl, &root_issuer).is_empty());
}

macro_rules! algorithm_tests {
    ($($test:ident: $algorithm:expr,)*) => {$(
        #[tokio::test]
        async fn $test() {
            hierarchy_with($algorithm).await;
        }
    )*};
}

use carimbo_kms::HashAlgorithm::{Sha256, Sha384, Sha512};
use carimbo_kms::RsaModulus::{Bits3072, Bits4096};
use carimbo_kms::RsaPadding::{Pkcs1v15, Pss};

const fn rsa(
    modulus: carimbo_kms::RsaModulus,
    padding: carimbo_kms::RsaPadding,
    hash: carimbo_kms::HashAlgorithm,
) -> SignatureAlgorithm {
    SignatureAlgorithm::Rsa {
        modulus,
        padding,
        hash,
    }
}

algorithm_tests! {
    ecdsa_p256: SignatureAlgorithm::EcdsaP256Sha256,
    ecdsa_p384: SignatureAlgorithm::EcdsaP384Sha384,
    ed25519: SignatureAlgorithm::Ed25519,
    rsa_3072_pkcs1_sha256: rsa(Bits3072, Pkcs1v15, Sha256),
    rsa_3072_pkcs1_sha384: rsa(Bits3072, Pkcs1v15, Sha384),
    rsa_3072_pkcs1_sha512: rsa(Bits3072, Pkcs1v15, Sha512),
    rsa_3072_pss_sha256: rsa(Bits3072, Pss, Sha256),
    rsa_3072_pss_sha384: rsa(Bits3072, Pss, Sha384),
    rsa_3072_pss_sha512: rsa(Bits3072, Pss, Sha512),
    rsa_4096_pkcs1_sha256: rsa(Bits4096, Pkcs1v15, Sha256),
    rsa_4096_pkcs1_sha384: rsa(Bits4096, Pkcs1v15, Sha384),
    rsa_4096_pkcs1_sha512: rsa(Bits4096, Pkcs1v15, Sha512),
    rsa_4096_pss_sha256: rsa(Bits4096, Pss, Sha256),
    rsa_4096_pss_sha384: rsa(Bits4096, Pss, Sha384),
    rsa_4096_pss_sha512: rsa(Bits4096, Pss, Sha512),
}

#[test]
fn every_algorithm_has_a_test() {
    // Keep the macro list above in step with the KMS's algorithms.
    assert_eq!(SignatureAlgorithm::ALL.len(), 15);
}

/// A root issuer made from a P-256 file key, and the key.
async fn p256_root(keys: &Keys) -> (Arc<dyn SigningKey>, Vec<u8>, IssuerInfo) {
    let now = now();
    let key = keys.key("root", SignatureAlgorithm::EcdsaP256Sha256).await;
    let template = root_template(key.public_key_der(), now);
    let issuer = IssuerInfo::self_signed(&template, SignatureAlgorithm::EcdsaP256Sha256).unwrap();
    let root = prepare_certificate(&template, &issuer, now)
        .unwrap()
        .sign(key.as_ref())
        .await
        .unwrap();
    let issuer = IssuerInfo::from_certificate(&root, SignatureAlgorithm::EcdsaP256Sha256).unwrap();
    (key, root, issuer)
}

fn lint_names(error: PkiError) -> Vec<&'static str> {
    match error {
        PkiError::Lint(findings) => findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| f.lint)
            .collect(),
        other => panic!("expected a lint refusal, got {other}"),
    }
}

#[tokio::test]
async fn lint_errors_block_signing() {
    let keys = Keys::new();
    let now = now();
    let root_key = keys.key("root", SignatureAlgorithm::EcdsaP256Sha256).await;

    // A root valid for 30 years.
    let mut template = root_template(root_key.public_key_der(), now);
    template.not_after = now + Duration::days(365 * 30);
    let issuer = IssuerInfo::self_signed(&template, SignatureAlgorithm::EcdsaP256Sha256).unwrap();
    let error = prepare_certificate(&template, &issuer, now).unwrap_err();
    assert!(error.to_string().contains("e_root_validity_max_25_years"));
    assert_eq!(lint_names(error), vec!["e_root_validity_max_25_years"]);

    let (_, _, root) = p256_root(&keys).await;
    let subject = keys.key("int", SignatureAlgorithm::EcdsaP256Sha256).await;
    let refused = |edit: &dyn Fn(&mut CertificateTemplate)| {
        let mut template = intermediate_template(subject.public_key_der(), now);
        edit(&mut template);
        lint_names(prepare_certificate(&template, &root, now).unwrap_err())
    };
    assert_eq!(
        refused(&|t| t.crl_distribution_points = vec!["https://crl.example.com/r.crl".into()]),
        vec!["e_crl_distribution_point_http_only"]
    );
    assert_eq!(
        refused(&|t| t.crl_distribution_points.clear()),
        vec!["e_crl_distribution_point_present"]
    );
    assert_eq!(
        refused(&|t| t.ca_issuers.clear()),
        vec!["e_aia_ca_issuers_present"]
    );
    assert_eq!(
        refused(&|t| {
            t.name_constraints = Some(NameConstraints {
                permitted_dns: vec!["not a domain".into()],
                ..Default::default()
            })
        }),
        vec!["e_name_constraints_dns_syntax"]
    );
    assert_eq!(
        refused(&|t| t.name_constraints = Some(NameConstraints::default())),
        vec!["e_name_constraints_not_empty"]
    );
    assert_eq!(
        refused(&|t| t.not_after = now + Duration::days(365 * 9)),
        vec!["e_intermediate_validity_max_8_years"]
    );
    assert_eq!(
        refused(&|t| t.not_before = now - Duration::days(1)),
        vec!["e_validity_within_issuer"]
    );
    assert_eq!(
        refused(&|t| t.serial = SerialNumber::from_hex("01").unwrap()),
        vec!["e_serial_number_entropy"]
    );

    // Non-ASCII URLs never reach rcgen.
    let mut template = intermediate_template(subject.public_key_der(), now);
    template.ca_issuers = vec!["http://cá.example.com/r.cer".into()];
    assert!(matches!(
        prepare_certificate(&template, &root, now),
        Err(PkiError::InvalidTemplate(_))
    ));
}

#[tokio::test]
async fn warnings_do_not_block_and_are_reported() {
    let keys = Keys::new();
    let now = now();
    let (root_key, _, root) = p256_root(&keys).await;
    let subject = keys.key("int", SignatureAlgorithm::EcdsaP256Sha256).await;
    let mut template = intermediate_template(subject.public_key_der(), now);
    template.ocsp_responders = vec!["http://ocsp.example.com".into()];
    let prepared = prepare_certificate(&template, &root, now).unwrap();
    let names: Vec<&str> = prepared.findings().iter().map(|f| f.lint).collect();
    assert_eq!(names, vec!["w_ca_aia_ocsp"]);
    prepared.sign(root_key.as_ref()).await.unwrap();
}

#[tokio::test]
async fn only_the_issuer_key_signs() {
    let keys = Keys::new();
    let now = now();
    let (_, _, root) = p256_root(&keys).await;
    let subject = keys.key("int", SignatureAlgorithm::EcdsaP256Sha256).await;
    let template = intermediate_template(subject.public_key_der(), now);

    let other = keys.key("other", SignatureAlgorithm::EcdsaP256Sha256).await;
    let prepared = prepare_certificate(&template, &root, now).unwrap();
    let error = prepared.sign(other.as_ref()).await.unwrap_err();
    assert!(matches!(error, PkiError::Signature(_)), "{error}");

    let p384 = keys.key("p384", SignatureAlgorithm::EcdsaP384Sha384).await;
    let prepared = prepare_certificate(&template, &root, now).unwrap();
    let error = prepared.sign(p384.as_ref()).await.unwrap_err();
    assert!(error.to_string().contains("ecdsa-p384-sha384"), "{error}");
}

#[tokio::test]
async fn issuers_must_be_cas_of_the_right_algorithm() {
    let keys = Keys::new();
    let (_, root, _) = p256_root(&keys).await;
    assert!(IssuerInfo::from_certificate(&root, SignatureAlgorithm::EcdsaP384Sha384).is_err());
    assert!(
        IssuerInfo::from_certificate(&root[..root.len() - 1], SignatureAlgorithm::EcdsaP256Sha256)
            .is_err()
    );
    // A root template whose issuer is not itself is refused before any lint.
    let now = now();
    let key = keys.key("k2", SignatureAlgorithm::EcdsaP256Sha256).await;
    let template = root_template(key.public_key_der(), now);
    let other = IssuerInfo::from_certificate(&root, SignatureAlgorithm::EcdsaP256Sha256).unwrap();
    assert!(matches!(
        prepare_certificate(&template, &other, now),
        Err(PkiError::InvalidTemplate(_))
    ));
}

#[tokio::test]
async fn names_rcgen_cannot_model_are_kept_exactly() {
    let keys = Keys::new();
    let now = now();
    let key = keys.key("root", SignatureAlgorithm::Ed25519).await;
    let mut template = root_template(key.public_key_der(), now);
    let mut subject = DistinguishedName::new();
    subject.push(DnAttribute::Country, "BR").unwrap();
    subject
        .push(DnAttribute::OrganizationalUnit, "PKI")
        .unwrap();
    subject
        .push(DnAttribute::OrganizationalUnit, "Raízes")
        .unwrap();
    subject
        .push(DnAttribute::CommonName, "Carimbo Root R2")
        .unwrap();
    template.subject = subject.clone();
    let issuer = IssuerInfo::self_signed(&template, SignatureAlgorithm::Ed25519).unwrap();
    let root = prepare_certificate(&template, &issuer, now)
        .unwrap()
        .sign(key.as_ref())
        .await
        .unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&root).unwrap();
    assert_eq!(parsed.subject().as_raw(), subject.to_der().as_slice());
    assert_eq!(parsed.issuer().as_raw(), subject.to_der().as_slice());
    let issuer = IssuerInfo::from_certificate(&root, SignatureAlgorithm::Ed25519).unwrap();
    assert_eq!(issuer.subject(), &subject);
}

#[tokio::test]
async fn cross_certificates_keep_subject_and_key_identifier() {
    let keys = Keys::new();
    let now = now();
    let (old_key, old_root, old_issuer) = p256_root(&keys).await;
    let new_key = keys.key("new", SignatureAlgorithm::EcdsaP384Sha384).await;
    let mut template = root_template(new_key.public_key_der(), now);
    template.subject = name("Carimbo Test Root R2");
    let new_self = IssuerInfo::self_signed(&template, SignatureAlgorithm::EcdsaP384Sha384).unwrap();
    let new_root = prepare_certificate(&template, &new_self, now)
        .unwrap()
        .sign(new_key.as_ref())
        .await
        .unwrap();
    let new_issuer =
        IssuerInfo::from_certificate(&new_root, SignatureAlgorithm::EcdsaP384Sha384).unwrap();

    // The old root signs the new root's name and key.
    let cross = CertificateTemplate {
        profile: CertificateProfile::CrossCertificate {
            usage: None,
            path_len: Some(1),
        },
        subject: new_issuer.subject().clone(),
        subject_public_key_info: new_issuer.subject_public_key_info().to_vec(),
        serial: SerialNumber::random().unwrap(),
        not_before: now,
        not_after: now + Duration::days(365 * 5),
        crl_distribution_points: vec!["http://crl.example.com/old.crl".into()],
        ca_issuers: vec!["http://ca.example.com/old.cer".into()],
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: None,
    };
    assert!(matches!(
        prepare_certificate(&cross, &old_issuer, now),
        Err(PkiError::InvalidTemplate(_))
    ));
    let cross = CertificateTemplate {
        subject_key_identifier: Some(new_issuer.subject_key_identifier().to_vec()),
        ..cross
    };
    let certificate = prepare_certificate(&cross, &old_issuer, now)
        .unwrap()
        .sign(old_key.as_ref())
        .await
        .unwrap();
    verify_certificate_signature(
        &certificate,
        old_key.public_key_der(),
        SignatureAlgorithm::EcdsaP256Sha256,
    )
    .unwrap();
    let as_issuer =
        IssuerInfo::from_certificate(&certificate, SignatureAlgorithm::EcdsaP384Sha384).unwrap();
    assert_eq!(as_issuer.subject_der(), new_issuer.subject_der());
    assert_eq!(
        as_issuer.subject_key_identifier(),
        new_issuer.subject_key_identifier()
    );
    let _ = old_root;
}

#[tokio::test]
async fn crl_refusals() {
    let keys = Keys::new();
    let now = now();
    let (root_key, _, root) = p256_root(&keys).await;
    let template = CrlTemplate {
        kind: CrlKind::Arl,
        crl_number: 1,
        this_update: now,
        next_update: now + Duration::days(400),
        revoked: Vec::new(),
        issuing_distribution_point: None,
    };
    let error = prepare_crl(&template, &root, now).unwrap_err();
    assert_eq!(lint_names(error), vec!["e_arl_next_update_within_one_year"]);
    let reversed = CrlTemplate {
        next_update: now - Duration::days(1),
        ..template.clone()
    };
    assert_eq!(
        lint_names(prepare_crl(&reversed, &root, now).unwrap_err()),
        vec!["e_crl_next_update"]
    );
    let zero = CrlTemplate {
        crl_number: 0,
        next_update: now + Duration::days(30),
        ..template.clone()
    };
    assert_eq!(
        lint_names(prepare_crl(&zero, &root, now).unwrap_err()),
        vec!["e_crl_number"]
    );
    // An ARL without a URL still says onlyContainsCACerts; a CRL may omit the IDP.
    let ok = CrlTemplate {
        next_update: now + Duration::days(30),
        ..template
    };
    let arl = prepare_crl(&ok, &root, now)
        .unwrap()
        .sign(root_key.as_ref())
        .await
        .unwrap();
    assert!(lint_crl(&arl, CrlKind::Arl, &root).is_empty());
    let crl = CrlTemplate {
        kind: CrlKind::Crl,
        ..ok
    };
    let crl = prepare_crl(&crl, &root, now)
        .unwrap()
        .sign(root_key.as_ref())
        .await
        .unwrap();
    assert!(lint_crl(&crl, CrlKind::Crl, &root).is_empty());
    let as_arl: Vec<&str> = lint_crl(&crl, CrlKind::Arl, &root)
        .iter()
        .map(|f| f.lint)
        .collect();
    assert_eq!(as_arl, vec!["e_arl_issuing_distribution_point"]);
}

#[tokio::test]
async fn signing_futures_are_send() {
    // The ceremony and the service sign on multi-threaded runtimes.
    fn assert_send<T: Send>(_: &T) {}
    let keys = Keys::new();
    let now = now();
    let (root_key, _, root) = p256_root(&keys).await;
    let subject = keys.key("int", SignatureAlgorithm::EcdsaP256Sha256).await;
    let template = intermediate_template(subject.public_key_der(), now);
    let prepared = prepare_certificate(&template, &root, now).unwrap();
    let future = prepared.sign(root_key.as_ref());
    assert_send(&future);
    let certificate = tokio::spawn({
        let root_key = root_key.clone();
        let prepared = prepare_certificate(&template, &root, now).unwrap();
        async move { prepared.sign(root_key.as_ref()).await }
    })
    .await
    .unwrap()
    .unwrap();
    assert!(!future.await.unwrap().is_empty());
    assert!(!certificate.is_empty());
}
