//! AWS KMS keys as CA keys: a P-384 root and a P-256 intermediate whose keys live in AWS
//! KMS (a local emulator here), signed through carimbo-pki's lint-before-sign, and a
//! CRL of the intermediate; `openssl` validates the chain and the CRL.

use std::path::Path;
use std::sync::Arc;

use carimbo_kms::{
    GenerateRequest, KeyAlgorithm, KeyName, KeyProvider, Purpose, SignatureAlgorithm, SigningKey,
};
use carimbo_kms_aws::{AwsKmsConfig, AwsKmsProvider};
use carimbo_pki::{
    CertificateProfile, CertificateTemplate, CrlKind, CrlTemplate, DistinguishedName, DnAttribute,
    IntermediateUsage, IssuerInfo, RevocationReason, RevokedCertificate, SerialNumber, pem_encode,
    prepare_certificate, prepare_crl,
};
use carimbo_tests::{openssl, random_hex};
use time::{Duration, OffsetDateTime};

fn provider() -> Option<AwsKmsProvider> {
    let emulator = carimbo_tests::aws_kms_emulator()?;
    let config = AwsKmsConfig::from_toml_str(&emulator.config_text("")).unwrap();
    Some(
        AwsKmsProvider::open_with_static_credentials(
            &config,
            emulator.access_key_id,
            emulator.secret_access_key,
        )
        .unwrap(),
    )
}

async fn ca_key(provider: &AwsKmsProvider, algorithm: SignatureAlgorithm) -> Arc<dyn SigningKey> {
    let name = KeyName::new(&format!("pki-ca/test/aws-{}", random_hex(4))).unwrap();
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
    name.push(DnAttribute::Organization, "Carimbo Test PKI")
        .unwrap();
    name.push(DnAttribute::CommonName, common_name).unwrap();
    name
}

fn write_pem(dir: &Path, file: &str, label: &str, der: &[u8]) -> String {
    let path = dir.join(file);
    std::fs::write(&path, pem_encode(label, der)).unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_kms_keys_sign_a_chain_and_a_crl_that_openssl_accepts() {
    let Some(provider) = provider() else { return };
    let dir = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();

    let root_key = ca_key(&provider, SignatureAlgorithm::EcdsaP384Sha384).await;
    let root_template = CertificateTemplate {
        profile: CertificateProfile::Root,
        subject: name("Carimbo AWS KMS Test Root"),
        subject_public_key_info: root_key.public_key_der().to_vec(),
        serial: SerialNumber::random().unwrap(),
        not_before: now - Duration::hours(1),
        not_after: now + Duration::days(365 * 10),
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
    let root_path = write_pem(dir.path(), "root.pem", "CERTIFICATE", &root);

    let intermediate_key = ca_key(&provider, SignatureAlgorithm::EcdsaP256Sha256).await;
    let template = CertificateTemplate {
        profile: CertificateProfile::Intermediate {
            usage: IntermediateUsage::Server,
        },
        subject: name("Carimbo AWS KMS Test Server CA"),
        subject_public_key_info: intermediate_key.public_key_der().to_vec(),
        serial: SerialNumber::random().unwrap(),
        not_before: now - Duration::minutes(5),
        not_after: now + Duration::days(365 * 5),
        crl_distribution_points: vec!["http://crl.carimbo.test/aws-root.crl".into()],
        ca_issuers: vec!["http://ca.carimbo.test/aws-root.cer".into()],
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: None,
    };
    let issuer = IssuerInfo::from_certificate(&root, SignatureAlgorithm::EcdsaP384Sha384).unwrap();
    let intermediate = prepare_certificate(&template, &issuer, now)
        .unwrap()
        .sign(root_key.as_ref())
        .await
        .unwrap();
    let intermediate_path = write_pem(dir.path(), "server.pem", "CERTIFICATE", &intermediate);

    let (ok, output) = openssl(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        &root_path,
        &intermediate_path,
    ]);
    assert!(ok && output.contains(": OK"), "{output}");

    // The intermediate's AWS key signs a CRL.
    let server_issuer =
        IssuerInfo::from_certificate(&intermediate, SignatureAlgorithm::EcdsaP256Sha256).unwrap();
    let crl = CrlTemplate {
        kind: CrlKind::Crl,
        crl_number: 7,
        this_update: now - Duration::minutes(1),
        next_update: now + Duration::days(7),
        revoked: vec![RevokedCertificate {
            serial: SerialNumber::random().unwrap(),
            revocation_time: now - Duration::minutes(3),
            reason: Some(RevocationReason::KeyCompromise),
        }],
        issuing_distribution_point: Some("http://crl.carimbo.test/aws-server.crl".into()),
    };
    let crl = prepare_crl(&crl, &server_issuer, now)
        .unwrap()
        .sign(intermediate_key.as_ref())
        .await
        .unwrap();
    let crl_path = write_pem(dir.path(), "server.crl", "X509 CRL", &crl);
    let (ok, output) = openssl(&[
        "crl",
        "-in",
        &crl_path,
        "-CAfile",
        &intermediate_path,
        "-noout",
    ]);
    assert!(ok && output.contains("verify OK"), "{output}");

    // A certificate signed by another key does not verify under this root.
    let mut tampered = intermediate.clone();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x01;
    let tampered_path = write_pem(dir.path(), "tampered.pem", "CERTIFICATE", &tampered);
    let (ok, _) = openssl(&["verify", "-CAfile", &root_path, &tampered_path]);
    assert!(!ok, "a tampered certificate verified");
}
