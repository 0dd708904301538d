//! Leaves end to end with file-provider CA keys: CSR → validate_csr → validity →
//! prepare_leaf → sign; the signed certificate passes lint_leaf and verifies under
//! the intermediate; the issuer-side refusals (root issuer, EKU, name constraints,
//! validity) and lint refusals happen before anything is signed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use carimbo_kms::{
    FileProvider, GenerateRequest, KeyAlgorithm, KeyName, KeyProvider, Purpose, SignatureAlgorithm,
    SigningKey, load_or_create_file_kek,
};
use carimbo_pki::{
    CertificateProfile, CertificateTemplate, DistinguishedName, DnAttribute, IntermediateUsage,
    IssuerInfo, LeafKind, LeafProfile, LeafTemplate, NameConstraints, PkiError, SerialNumber,
    Severity, SubjectAltName, lint_leaf, prepare_certificate, prepare_leaf, validate_csr,
    verify_certificate_signature,
};
use time::{Duration, OffsetDateTime};

const P256: SignatureAlgorithm = SignatureAlgorithm::EcdsaP256Sha256;

struct Pki {
    root: IssuerInfo,
    server: IssuerInfo,
    server_key: Arc<dyn SigningKey>,
    workload: IssuerInfo,
    workload_key: Arc<dyn SigningKey>,
    now: OffsetDateTime,
    _dir: tempfile::TempDir,
}

async fn key(provider: &FileProvider, name: &str) -> Arc<dyn SigningKey> {
    let name = KeyName::new(&format!("pki-ca/test/{name}")).unwrap();
    let generated = provider
        .generate(&GenerateRequest {
            name: &name,
            version: 1,
            purpose: Purpose::PkiCa,
            algorithm: KeyAlgorithm::Signature(P256),
        })
        .await
        .unwrap();
    provider
        .signing_key(&generated.reference, P256)
        .await
        .unwrap()
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnAttribute::Organization, "Carimbo Tests")
        .unwrap();
    name.push(DnAttribute::CommonName, common_name).unwrap();
    name
}

fn ca_template(
    profile: CertificateProfile,
    common_name: &str,
    spki: &[u8],
    now: OffsetDateTime,
) -> CertificateTemplate {
    let root = profile == CertificateProfile::Root;
    CertificateTemplate {
        profile,
        subject: name(common_name),
        subject_public_key_info: spki.to_vec(),
        serial: SerialNumber::random().unwrap(),
        not_before: now - Duration::hours(1),
        not_after: now + Duration::days(if root { 3650 } else { 365 }),
        crl_distribution_points: if root {
            Vec::new()
        } else {
            vec!["http://crl.example.com/root.crl".into()]
        },
        ca_issuers: if root {
            Vec::new()
        } else {
            vec!["http://ca.example.com/root.cer".into()]
        },
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: None,
    }
}

async fn pki(workload_constraints: Option<NameConstraints>) -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let kek = load_or_create_file_kek(&dir.path().join("kek")).unwrap();
    let provider = FileProvider::new(dir.path().join("keys"), kek).unwrap();
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let root_key = key(&provider, "root").await;
    let template = ca_template(
        CertificateProfile::Root,
        "Test Root",
        root_key.public_key_der(),
        now,
    );
    let self_issuer = IssuerInfo::self_signed(&template, P256).unwrap();
    let root_der = prepare_certificate(&template, &self_issuer, now)
        .unwrap()
        .sign(root_key.as_ref())
        .await
        .unwrap();
    let root = IssuerInfo::from_certificate(&root_der, P256).unwrap();
    let mut intermediates = Vec::new();
    for (usage, label) in [
        (IntermediateUsage::Server, "int-server"),
        (IntermediateUsage::Workload, "int-workload"),
    ] {
        let signing_key = key(&provider, label).await;
        let mut template = ca_template(
            CertificateProfile::Intermediate { usage },
            label,
            signing_key.public_key_der(),
            now,
        );
        if usage == IntermediateUsage::Workload {
            template.name_constraints = workload_constraints.clone();
        }
        let der = prepare_certificate(&template, &root, now)
            .unwrap()
            .sign(root_key.as_ref())
            .await
            .unwrap();
        intermediates.push((
            IssuerInfo::from_certificate(&der, P256).unwrap(),
            signing_key,
        ));
    }
    let (workload, workload_key) = intermediates.pop().unwrap();
    let (server, server_key) = intermediates.pop().unwrap();
    Pki {
        root,
        server,
        server_key,
        workload,
        workload_key,
        now,
        _dir: dir,
    }
}

/// A CSR for a fresh P-256 key asking for `sans`.
fn csr(sans: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.subject_alt_names = sans
        .iter()
        .map(|text| match text.parse::<SubjectAltName>().unwrap() {
            SubjectAltName::Dns(name) => rcgen::SanType::DnsName(name.try_into().unwrap()),
            SubjectAltName::Ip(address) => rcgen::SanType::IpAddress(address),
            SubjectAltName::Uri(uri) => rcgen::SanType::URI(uri.try_into().unwrap()),
        })
        .collect();
    params.serialize_request(&key).unwrap().der().to_vec()
}

fn template(
    kind: LeafKind,
    sans: &[&str],
    issuer: &IssuerInfo,
    now: OffsetDateTime,
) -> LeafTemplate {
    let profile = LeafProfile::defaults(kind);
    let validated = validate_csr(&csr(sans), &profile).unwrap();
    let (not_before, not_after) = profile.validity_for_issuer(now, None, issuer).unwrap();
    LeafTemplate {
        profile,
        subject_public_key_info: validated.subject_public_key_info,
        sans: validated.requested_sans,
        serial: SerialNumber::random().unwrap(),
        not_before,
        not_after,
        crl_distribution_points: vec!["http://crl.example.com/issuing.crl".into()],
        ocsp_responders: vec!["http://ocsp.example.com/".into()],
        ca_issuers: vec!["http://ca.example.com/issuing.cer".into()],
    }
}

fn leaf_code(result: Result<carimbo_pki::PreparedCertificate, PkiError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(PkiError::Leaf(e)) => e.code().into(),
        Err(other) => format!("other: {other}"),
    }
}

/// A profile, names, and the issuer with its key.
type Case<'a> = (
    LeafKind,
    &'a [&'a str],
    &'a IssuerInfo,
    &'a Arc<dyn SigningKey>,
);

#[tokio::test]
async fn each_profile_is_issued_signed_and_lints_clean() {
    let pki = pki(None).await;
    let cases: [Case<'_>; 3] = [
        (
            LeafKind::Server,
            &["dns:www.example.com", "ip:192.0.2.10"],
            &pki.server,
            &pki.server_key,
        ),
        (
            LeafKind::Client,
            &[
                "uri:spiffe://prod.example.com/client",
                "dns:client.example.com",
            ],
            &pki.workload,
            &pki.workload_key,
        ),
        (
            LeafKind::Workload,
            &["uri:spiffe://prod.example.com/payments/api"],
            &pki.workload,
            &pki.workload_key,
        ),
    ];
    for (kind, sans, issuer, issuer_key) in cases {
        let template = template(kind, sans, issuer, pki.now);
        let prepared = prepare_leaf(&template, issuer, pki.now).unwrap();
        assert!(prepared.findings().is_empty(), "{:?}", prepared.findings());
        let tbs = prepared.tbs_der().to_vec();
        let der = prepared.sign(issuer_key.as_ref()).await.unwrap();
        verify_certificate_signature(&der, issuer.subject_public_key_info(), P256).unwrap();
        assert!(der.windows(tbs.len()).any(|w| w == tbs.as_slice()));
        let findings = lint_leaf(&der, &template.profile, issuer, pki.now);
        assert!(findings.is_empty(), "{kind}: {findings:?}");
        // Linted as another profile, the same certificate fails.
        let other = LeafProfile::defaults(match kind {
            LeafKind::Server => LeafKind::Workload,
            _ => LeafKind::Server,
        });
        let findings = lint_leaf(&der, &other, issuer, pki.now);
        assert!(
            findings.iter().any(|f| f.severity == Severity::Error),
            "{kind} linted as {}",
            other.kind
        );
    }
}

#[tokio::test]
async fn only_the_issuer_key_signs() {
    let pki = pki(None).await;
    let template = template(
        LeafKind::Server,
        &["dns:a.example.com"],
        &pki.server,
        pki.now,
    );
    let prepared = prepare_leaf(&template, &pki.server, pki.now).unwrap();
    let error = prepared.sign(pki.workload_key.as_ref()).await.unwrap_err();
    assert!(matches!(error, PkiError::Signature(_)), "{error}");
}

#[tokio::test]
async fn issuers_that_may_not_issue_are_refused() {
    let pki = pki(None).await;
    // A server intermediate issues neither client nor workload certificates.
    for (kind, sans) in [
        (LeafKind::Client, &["uri:spiffe://prod.example.com/c"][..]),
        (LeafKind::Workload, &["uri:spiffe://prod.example.com/w"][..]),
    ] {
        let template = template(kind, sans, &pki.server, pki.now);
        let error = prepare_leaf(&template, &pki.server, pki.now).unwrap_err();
        assert!(
            matches!(&error, PkiError::Leaf(e) if e.code() == "issuer_eku_mismatch"),
            "{error}"
        );
        assert!(error.to_string().contains("lacks clientAuth"), "{error}");
    }
    // int-workload (serverAuth + clientAuth) may issue a server certificate.
    let template = template(
        LeafKind::Server,
        &["dns:a.example.com"],
        &pki.workload,
        pki.now,
    );
    assert_eq!(
        leaf_code(prepare_leaf(&template, &pki.workload, pki.now)),
        "ok"
    );
    // The root never issues leaves.
    let template = self::template(LeafKind::Server, &["dns:a.example.com"], &pki.root, pki.now);
    assert_eq!(
        leaf_code(prepare_leaf(&template, &pki.root, pki.now)),
        "issuer_not_allowed"
    );
}

#[tokio::test]
async fn validity_outside_the_issuer_is_refused() {
    let pki = pki(None).await;
    let mut template = template(
        LeafKind::Server,
        &["dns:a.example.com"],
        &pki.server,
        pki.now,
    );
    template.not_after = pki.server.not_after() + Duration::hours(1);
    template.not_before = template.not_after - Duration::hours(24);
    assert_eq!(
        leaf_code(prepare_leaf(&template, &pki.server, pki.now)),
        "validity_outside_issuer"
    );
    // Too long for the profile, though inside the issuer: the lint refuses it.
    let mut template = self::template(
        LeafKind::Server,
        &["dns:a.example.com"],
        &pki.server,
        pki.now,
    );
    template.not_after = template.not_before + Duration::hours(100);
    let error = prepare_leaf(&template, &pki.server, pki.now).unwrap_err();
    assert!(
        matches!(&error, PkiError::Lint(findings)
            if findings.iter().any(|f| f.lint == "e_leaf_validity_max_for_profile")),
        "{error}"
    );
    // The lifetime a caller asks for is refused above the maximum.
    let profile = LeafProfile::defaults(LeafKind::Workload);
    let error = profile
        .validity_for_issuer(pki.now, Some(Duration::hours(49)), &pki.workload)
        .unwrap_err();
    assert_eq!(error.code(), "ttl_too_long");
    // A fresh issuer keeps the backdate inside its validity.
    let (not_before, _) = profile
        .validity_for_issuer(pki.workload.not_before(), None, &pki.workload)
        .unwrap();
    assert_eq!(not_before, pki.workload.not_before());
}

#[tokio::test]
async fn name_constraints_of_the_issuer_are_enforced() {
    let constraints = NameConstraints {
        permitted_dns: vec!["svc.example.com".into()],
        excluded_dns: vec!["legacy.svc.example.com".into()],
        permitted_uri_hosts: vec!["prod.example.com".into()],
    };
    let pki = pki(Some(constraints)).await;
    let issue = |kind: LeafKind, sans: &[&str]| {
        let template = template(kind, sans, &pki.workload, pki.now);
        leaf_code(prepare_leaf(&template, &pki.workload, pki.now))
    };
    assert_eq!(
        issue(LeafKind::Workload, &["uri:spiffe://prod.example.com/api"]),
        "ok"
    );
    assert_eq!(
        issue(
            LeafKind::Client,
            &["uri:spiffe://prod.example.com/c", "dns:c.svc.example.com"]
        ),
        "ok"
    );
    assert_eq!(
        issue(LeafKind::Workload, &["uri:spiffe://dev.example.com/api"]),
        "name_not_permitted"
    );
    assert_eq!(
        issue(
            LeafKind::Client,
            &[
                "uri:spiffe://prod.example.com/c",
                "dns:c.legacy.svc.example.com"
            ]
        ),
        "name_not_permitted"
    );
    assert_eq!(
        issue(LeafKind::Server, &["dns:www.example.org"]),
        "name_not_permitted"
    );
}

#[tokio::test]
async fn templates_are_checked_again_before_building() {
    let pki = pki(None).await;
    let base = template(
        LeafKind::Server,
        &["dns:a.example.com"],
        &pki.server,
        pki.now,
    );
    let mut wildcard = base.clone();
    wildcard.sans = vec![SubjectAltName::Dns("*.example.com".into())];
    assert_eq!(
        leaf_code(prepare_leaf(&wildcard, &pki.server, pki.now)),
        "wildcard_not_allowed"
    );
    wildcard.profile.allow_wildcards = true;
    assert_eq!(
        leaf_code(prepare_leaf(&wildcard, &pki.server, pki.now)),
        "ok"
    );
    let mut no_names = base.clone();
    no_names.sans.clear();
    assert_eq!(
        leaf_code(prepare_leaf(&no_names, &pki.server, pki.now)),
        "no_san"
    );
    let mut ed25519 = base.clone();
    ed25519.subject_public_key_info = carimbo_kms::encoding::ed25519_spki(&[7; 32]);
    assert_eq!(
        leaf_code(prepare_leaf(&ed25519, &pki.server, pki.now)),
        "unsupported_key"
    );
    let mut https = base.clone();
    https.ocsp_responders = vec!["https://ocsp.example.com/".into()];
    let error = prepare_leaf(&https, &pki.server, pki.now).unwrap_err();
    assert!(
        matches!(&error, PkiError::Lint(findings)
            if findings.iter().any(|f| f.lint == "e_aia_http_only")),
        "{error}"
    );
    let mut upper = base;
    upper.sans = vec![SubjectAltName::Dns("WWW.Example.COM".into())];
    let prepared = prepare_leaf(&upper, &pki.server, pki.now).unwrap();
    let der = prepared.lint_certificate_der();
    assert!(der.windows(15).any(|w| w == b"www.example.com"));
}
