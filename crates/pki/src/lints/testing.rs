//! Test fixtures for the lints: good artifacts made through the profiles, bad ones made
//! with rcgen directly or by editing DER, bypassing the profiles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use carimbo_kms::SignatureAlgorithm;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{CertificateInput, CertificateLint, CrlInput, CrlLint, Target};
use crate::certificate::{build_lint_certificate, certificate_params};
use crate::crl::{build_lint_crl, crl_params, issuing_distribution_point_extension};
use crate::der::{self, TAG_SEQUENCE, context_constructed};
use crate::leaf::{EMPTY_NAME, leaf_params};
use crate::raw::{RawCertificate, RawCrl, Signed, assemble};
use crate::responder::responder_params;
use crate::throwaway::ThrowawayKey;
use crate::{
    CertificateProfile, CertificateTemplate, CrlKind, CrlTemplate, DistinguishedName, DnAttribute,
    IntermediateUsage, IssuerInfo, LeafKind, LeafProfile, LeafTemplate, ResponderTemplate,
    RevocationReason, RevokedCertificate, SerialNumber, SubjectAltName, prepare_certificate,
    prepare_crl, prepare_leaf, prepare_ocsp_responder,
};

/// The time every lint test runs at.
pub(crate) const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

pub(crate) const CRL_URL: &str = "http://crl.example.com/root.crl";
pub(crate) const CA_ISSUERS_URL: &str = "http://ca.example.com/root.cer";

/// A certificate with what its lints need.
pub(crate) struct Case {
    pub der: Vec<u8>,
    pub profile: Target,
    pub issuer: IssuerInfo,
}

/// A CRL with what its lints need.
pub(crate) struct CrlCase {
    pub der: Vec<u8>,
    pub kind: CrlKind,
    pub issuer: IssuerInfo,
}

pub(crate) fn key() -> ThrowawayKey {
    ThrowawayKey::generate(SignatureAlgorithm::EcdsaP256Sha256).unwrap()
}

pub(crate) fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnAttribute::Country, "BR").unwrap();
    name.push(DnAttribute::Organization, "Carimbo Tests")
        .unwrap();
    name.push(DnAttribute::CommonName, common_name).unwrap();
    name
}

pub(crate) fn root_template(spki: &[u8]) -> CertificateTemplate {
    CertificateTemplate {
        profile: CertificateProfile::Root,
        subject: name("Carimbo Test Root"),
        subject_public_key_info: spki.to_vec(),
        serial: SerialNumber::random().unwrap(),
        not_before: NOW,
        not_after: NOW + Duration::days(365 * 20),
        crl_distribution_points: Vec::new(),
        ca_issuers: Vec::new(),
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: None,
    }
}

pub(crate) fn intermediate_template(usage: IntermediateUsage, spki: &[u8]) -> CertificateTemplate {
    CertificateTemplate {
        profile: CertificateProfile::Intermediate { usage },
        subject: name("Carimbo Test Issuing CA"),
        subject_public_key_info: spki.to_vec(),
        serial: SerialNumber::random().unwrap(),
        not_before: NOW,
        not_after: NOW + Duration::days(365 * 5),
        crl_distribution_points: vec![CRL_URL.into()],
        ca_issuers: vec![CA_ISSUERS_URL.into()],
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: None,
    }
}

/// A good root (lint certificate) and its self-issuer.
pub(crate) fn root_case() -> Case {
    let key = key();
    let template = root_template(key.spki());
    let issuer = IssuerInfo::self_signed(&template, SignatureAlgorithm::EcdsaP256Sha256).unwrap();
    let prepared = prepare_certificate(&template, &issuer, NOW).unwrap();
    Case {
        der: prepared.lint_certificate_der().to_vec(),
        profile: Target::Ca(CertificateProfile::Root),
        issuer,
    }
}

/// The issuer described by a good root certificate.
pub(crate) fn root_issuer() -> IssuerInfo {
    let root = root_case();
    IssuerInfo::from_certificate(&root.der, SignatureAlgorithm::EcdsaP256Sha256).unwrap()
}

/// A good intermediate of `usage` under a good root.
pub(crate) fn intermediate_case(usage: IntermediateUsage) -> Case {
    let issuer = root_issuer();
    let template = intermediate_template(usage, key().spki());
    let prepared = prepare_certificate(&template, &issuer, NOW).unwrap();
    Case {
        der: prepared.lint_certificate_der().to_vec(),
        profile: Target::Ca(template.profile),
        issuer,
    }
}

/// A certificate from `template` built with rcgen after `mutate` edits the parameters,
/// signed by a throwaway key, without any lint.
pub(crate) fn build(
    template: &CertificateTemplate,
    issuer: &IssuerInfo,
    mutate: impl FnOnce(&mut rcgen::CertificateParams),
) -> Vec<u8> {
    let mut params = certificate_params(template).unwrap();
    mutate(&mut params);
    let key = ThrowawayKey::generate(issuer.algorithm()).unwrap();
    build_lint_certificate(
        &params,
        &template.subject.to_der(),
        &template.subject_public_key_info,
        issuer,
        &key,
    )
    .unwrap()
}

/// An intermediate under a good root, built with `mutate` applied to its parameters.
pub(crate) fn bad_intermediate(mutate: impl FnOnce(&mut rcgen::CertificateParams)) -> Case {
    let issuer = root_issuer();
    let template = intermediate_template(IntermediateUsage::Server, key().spki());
    Case {
        der: build(&template, &issuer, mutate),
        profile: Target::Ca(template.profile),
        issuer,
    }
}

/// A root built with `mutate` applied to its parameters.
pub(crate) fn bad_root(mutate: impl FnOnce(&mut rcgen::CertificateParams)) -> Case {
    let key = key();
    let template = root_template(key.spki());
    let issuer = IssuerInfo::self_signed(&template, SignatureAlgorithm::EcdsaP256Sha256).unwrap();
    Case {
        der: build(&template, &issuer, mutate),
        profile: Target::Ca(CertificateProfile::Root),
        issuer,
    }
}

/// The messages of `lint` on `case`.
pub(crate) fn run(lint: &CertificateLint, case: &Case) -> Vec<String> {
    run_at(lint, case, NOW)
}

pub(crate) fn run_at(lint: &CertificateLint, case: &Case, now: OffsetDateTime) -> Vec<String> {
    let raw = RawCertificate::parse(&case.der).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&case.der).unwrap();
    let input = CertificateInput {
        raw,
        parsed,
        profile: case.profile,
        issuer: &case.issuer,
        now,
    };
    (lint.check)(&input)
}

/// Asserts `lint` finds nothing on `case`.
pub(crate) fn assert_clean(lint: &CertificateLint, case: &Case) {
    let messages = run(lint, case);
    assert!(messages.is_empty(), "{}: {messages:?}", lint.name);
}

/// Asserts `lint` flags `case` with a message containing `expected`.
pub(crate) fn assert_flags(lint: &CertificateLint, case: &Case, expected: &str) {
    let messages = run(lint, case);
    assert!(
        messages.iter().any(|m| m.contains(expected)),
        "{}: expected a message with {expected:?}, got {messages:?}",
        lint.name
    );
}

/// Replaces TBS element `index` (keeping the old signature: lints do not verify it).
pub(crate) fn patch_tbs(der: &[u8], index: usize, replacement: &[u8]) -> Vec<u8> {
    let signed = Signed::parse(der).unwrap();
    let tbs = der::replace_elements(signed.tbs.raw, &[(index, replacement)]).unwrap();
    assemble(&tbs, signed.algorithm.raw, signed.signature)
}

/// Replaces the outer signature algorithm.
pub(crate) fn patch_outer_algorithm(der: &[u8], algorithm: &[u8]) -> Vec<u8> {
    let signed = Signed::parse(der).unwrap();
    assemble(signed.tbs.raw, algorithm, signed.signature)
}

/// Rewrites the extensions (last TBS element, `[3]` for certificates, `[0]` for CRLs)
/// with `edit` on the list of encoded extensions.
fn edit_extensions(der: &[u8], edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    let signed = Signed::parse(der).unwrap();
    let fields = der::Reader::new(signed.tbs.content).read_all().unwrap();
    let last = fields.len() - 1;
    let wrapper = fields[last];
    assert!(wrapper.tag == context_constructed(3) || wrapper.tag == context_constructed(0));
    let list = der::parse_single(wrapper.content, TAG_SEQUENCE).unwrap();
    let mut extensions: Vec<Vec<u8>> = der::Reader::new(list.content)
        .read_all()
        .unwrap()
        .iter()
        .map(|e| e.raw.to_vec())
        .collect();
    edit(&mut extensions);
    let replacement = der::tlv(wrapper.tag, &der::tlv(TAG_SEQUENCE, &extensions.concat()));
    patch_tbs(der, last, &replacement)
}

fn oid_of(extension: &[u8]) -> Vec<u8> {
    let outer = der::parse_single(extension, TAG_SEQUENCE).unwrap();
    der::Reader::new(outer.content)
        .read(der::TAG_OID)
        .unwrap()
        .content
        .to_vec()
}

/// Replaces the extension with `oid` by `new` (appended when absent), or removes it
/// when `new` is `None`.
pub(crate) fn set_extension(der: &[u8], oid: &[u8], new: Option<Vec<u8>>) -> Vec<u8> {
    edit_extensions(der, |extensions| {
        let position = extensions.iter().position(|e| oid_of(e) == oid);
        match (position, new) {
            (Some(at), Some(new)) => extensions[at] = new,
            (Some(at), None) => {
                extensions.remove(at);
            }
            (None, Some(new)) => extensions.push(new),
            (None, None) => {}
        }
    })
}

/// Appends `extension` even if one with the same OID exists.
pub(crate) fn append_extension(der: &[u8], extension: Vec<u8>) -> Vec<u8> {
    edit_extensions(der, |extensions| extensions.push(extension))
}

/// The raw value of the extension with `oid` in certificate `der`.
pub(crate) fn extension_value(der: &[u8], oid: &[u8]) -> Vec<u8> {
    let raw = RawCertificate::parse(der).unwrap();
    raw.extension(oid).unwrap().value.to_vec()
}

// ---- CRLs ----

pub(crate) fn crl_template(kind: CrlKind) -> CrlTemplate {
    CrlTemplate {
        kind,
        crl_number: 7,
        this_update: NOW,
        next_update: NOW + Duration::days(180),
        revoked: vec![RevokedCertificate {
            serial: SerialNumber::random().unwrap(),
            revocation_time: NOW - Duration::days(1),
            reason: Some(RevocationReason::KeyCompromise),
        }],
        issuing_distribution_point: Some(CRL_URL.into()),
    }
}

/// A good CRL of `kind` from a good root.
pub(crate) fn crl_case(kind: CrlKind) -> CrlCase {
    let issuer = root_issuer();
    let prepared = prepare_crl(&crl_template(kind), &issuer, NOW).unwrap();
    CrlCase {
        der: prepared.lint_crl_der().to_vec(),
        kind,
        issuer,
    }
}

/// An ARL from `template` (after `mutate` edits the rcgen parameters), with the
/// issuing distribution point only if `with_idp`, without any lint.
pub(crate) fn bad_crl(
    kind: CrlKind,
    with_idp: bool,
    mutate: impl FnOnce(&mut CrlTemplate, &mut rcgen::CertificateRevocationListParams),
) -> CrlCase {
    let issuer = root_issuer();
    let mut template = crl_template(kind);
    let mut params = crl_params(&template, &issuer);
    mutate(&mut template, &mut params);
    let extras = if with_idp {
        vec![issuing_distribution_point_extension(
            kind,
            template.issuing_distribution_point.as_deref(),
        )]
    } else {
        Vec::new()
    };
    let key = ThrowawayKey::generate(issuer.algorithm()).unwrap();
    CrlCase {
        der: build_lint_crl(&params, &issuer, &extras, &key).unwrap(),
        kind,
        issuer,
    }
}

/// `case` with its DER replaced.
pub(crate) fn with_crl_der(case: &CrlCase, der: Vec<u8>) -> CrlCase {
    CrlCase {
        der,
        kind: case.kind,
        issuer: case.issuer.clone(),
    }
}

pub(crate) fn run_crl(lint: &CrlLint, case: &CrlCase) -> Vec<String> {
    let raw = RawCrl::parse(&case.der).unwrap();
    let (_, parsed) = x509_parser::parse_x509_crl(&case.der).unwrap();
    let input = CrlInput {
        raw,
        parsed,
        kind: case.kind,
        issuer: &case.issuer,
    };
    (lint.check)(&input)
}

pub(crate) fn assert_crl_clean(lint: &CrlLint, case: &CrlCase) {
    let messages = run_crl(lint, case);
    assert!(messages.is_empty(), "{}: {messages:?}", lint.name);
}

pub(crate) fn assert_crl_flags(lint: &CrlLint, case: &CrlCase, expected: &str) {
    let messages = run_crl(lint, case);
    assert!(
        messages.iter().any(|m| m.contains(expected)),
        "{}: expected a message with {expected:?}, got {messages:?}",
        lint.name
    );
}

/// Replaces the extension with `oid` in a CRL.
pub(crate) fn set_crl_extension(der: &[u8], oid: &[u8], new: Option<Vec<u8>>) -> Vec<u8> {
    set_extension(der, oid, new)
}

/// A good intermediate whose template `edit` changed (it must still pass the lints).
pub(crate) fn intermediate_with(edit: impl FnOnce(&mut CertificateTemplate)) -> Case {
    let issuer = root_issuer();
    let mut template = intermediate_template(IntermediateUsage::Server, key().spki());
    edit(&mut template);
    let prepared = prepare_certificate(&template, &issuer, NOW).unwrap();
    Case {
        der: prepared.lint_certificate_der().to_vec(),
        profile: Target::Ca(template.profile),
        issuer,
    }
}

/// A name constraints extension for rcgen parameters, encoded as the profile does.
pub(crate) fn name_constraints_extension(
    constraints: &crate::NameConstraints,
    critical: bool,
) -> rcgen::CustomExtension {
    let mut extension =
        rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 30], constraints.to_der());
    extension.set_criticality(critical);
    extension
}

/// A name constraints extension with raw `value`.
pub(crate) fn raw_name_constraints_extension(value: Vec<u8>) -> rcgen::CustomExtension {
    let mut extension = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 30], value);
    extension.set_criticality(true);
    extension
}

/// Example constraints: DNS suffix, an exclusion and a SPIFFE trust domain.
pub(crate) fn sample_constraints() -> crate::NameConstraints {
    crate::NameConstraints {
        permitted_dns: vec!["example.com".into()],
        excluded_dns: vec!["secret.example.com".into()],
        permitted_uri_hosts: vec!["prod.example.com".into()],
    }
}

// ---- leaves ----

/// When test leaves are issued: an hour into the test intermediates' validity, so that
/// the backdate stays inside it.
pub(crate) const LEAF_NOW: OffsetDateTime = datetime!(2026-01-01 01:00 UTC);

pub(crate) const LEAF_CRL_URL: &str = "http://crl.example.com/issuing.crl";
pub(crate) const OCSP_URL: &str = "http://ocsp.example.com/";
pub(crate) const SPIFFE_ID: &str = "spiffe://prod.example.com/payments/api";

/// The issuer of `usage` described by a good intermediate certificate.
pub(crate) fn intermediate_issuer(usage: IntermediateUsage) -> IssuerInfo {
    let case = intermediate_case(usage);
    IssuerInfo::from_certificate(&case.der, SignatureAlgorithm::EcdsaP256Sha256).unwrap()
}

/// The intermediate that issues `kind` by default (DESIGN §2).
pub(crate) fn leaf_issuer(kind: LeafKind) -> IssuerInfo {
    intermediate_issuer(match kind {
        LeafKind::Server => IntermediateUsage::Server,
        LeafKind::Client | LeafKind::Workload => IntermediateUsage::Workload,
    })
}

/// Typical names of `kind`.
pub(crate) fn leaf_sans(kind: LeafKind) -> Vec<SubjectAltName> {
    let texts: &[&str] = match kind {
        LeafKind::Server => &["dns:www.example.com", "ip:192.0.2.10"],
        LeafKind::Client => &[
            "uri:spiffe://prod.example.com/client",
            "dns:client.example.com",
        ],
        LeafKind::Workload => &["uri:spiffe://prod.example.com/payments/api"],
    };
    texts.iter().map(|t| t.parse().unwrap()).collect()
}

/// A good template of `kind` for the subject key `spki`, issued at [`LEAF_NOW`].
pub(crate) fn leaf_template(kind: LeafKind, spki: &[u8]) -> LeafTemplate {
    let profile = LeafProfile::defaults(kind);
    let (not_before, not_after) = profile
        .validity(LEAF_NOW, None, NOW + Duration::days(365))
        .unwrap();
    LeafTemplate {
        profile,
        subject_public_key_info: spki.to_vec(),
        sans: leaf_sans(kind),
        serial: SerialNumber::random().unwrap(),
        not_before,
        not_after,
        crl_distribution_points: vec![LEAF_CRL_URL.into()],
        ocsp_responders: vec![OCSP_URL.into()],
        ca_issuers: vec![CA_ISSUERS_URL.into()],
    }
}

/// A good leaf of `kind` (lint certificate) from its default issuer.
pub(crate) fn leaf_case(kind: LeafKind) -> Case {
    leaf_case_with(kind, |_| {})
}

/// A good leaf of `kind` whose template `edit` changed (it must still pass).
pub(crate) fn leaf_case_with(kind: LeafKind, edit: impl FnOnce(&mut LeafTemplate)) -> Case {
    let issuer = leaf_issuer(kind);
    let mut template = leaf_template(kind, key().spki());
    edit(&mut template);
    let prepared = prepare_leaf(&template, &issuer, LEAF_NOW)
        .unwrap_or_else(|e| panic!("a good {kind} leaf was refused: {e}"));
    Case {
        der: prepared.lint_certificate_der().to_vec(),
        profile: Target::Leaf(template.profile),
        issuer,
    }
}

/// A leaf from `template` and `issuer`, built with `mutate` applied to its rcgen
/// parameters, signed by a throwaway key, without any check or lint.
pub(crate) fn build_leaf(
    template: &LeafTemplate,
    issuer: IssuerInfo,
    mutate: impl FnOnce(&mut rcgen::CertificateParams),
) -> Case {
    let mut params = leaf_params(template).unwrap();
    mutate(&mut params);
    let key = ThrowawayKey::generate(issuer.algorithm()).unwrap();
    let der = build_lint_certificate(
        &params,
        EMPTY_NAME,
        &template.subject_public_key_info,
        &issuer,
        &key,
    )
    .unwrap();
    Case {
        der,
        profile: Target::Leaf(template.profile),
        issuer,
    }
}

/// A leaf of `kind` from its default issuer, built with `mutate` applied to its rcgen
/// parameters.
pub(crate) fn bad_leaf(kind: LeafKind, mutate: impl FnOnce(&mut rcgen::CertificateParams)) -> Case {
    build_leaf(
        &leaf_template(kind, key().spki()),
        leaf_issuer(kind),
        mutate,
    )
}

/// An IA5String for rcgen SANs.
pub(crate) fn ia5(text: &str) -> rcgen::string::Ia5String {
    rcgen::string::Ia5String::try_from(text).unwrap()
}

// ---- OCSP responders ----

/// A good responder template for the subject key `spki`, issued at [`LEAF_NOW`] for
/// the longest allowed validity.
pub(crate) fn responder_template(spki: &[u8]) -> ResponderTemplate {
    ResponderTemplate {
        serial: SerialNumber::random().unwrap(),
        subject: name("Carimbo Test Issuing CA OCSP responder"),
        subject_public_key_info: spki.to_vec(),
        not_before: LEAF_NOW,
        not_after: LEAF_NOW + crate::RESPONDER_MAX_VALIDITY,
    }
}

/// A good responder (lint certificate) issued by the server intermediate.
pub(crate) fn responder_case() -> Case {
    let issuer = intermediate_issuer(IntermediateUsage::Server);
    let template = responder_template(key().spki());
    let prepared = prepare_ocsp_responder(&template, &issuer, LEAF_NOW)
        .unwrap_or_else(|e| panic!("a good responder was refused: {e}"));
    Case {
        der: prepared.lint_certificate_der().to_vec(),
        profile: Target::Responder,
        issuer,
    }
}

/// A responder built with `mutate` applied to its rcgen parameters, without any lint.
pub(crate) fn bad_responder(mutate: impl FnOnce(&mut rcgen::CertificateParams)) -> Case {
    let issuer = intermediate_issuer(IntermediateUsage::Server);
    let template = responder_template(key().spki());
    let mut params = responder_params(&template).unwrap();
    mutate(&mut params);
    let key = ThrowawayKey::generate(issuer.algorithm()).unwrap();
    let der = build_lint_certificate(
        &params,
        &template.subject.to_der(),
        &template.subject_public_key_info,
        &issuer,
        &key,
    )
    .unwrap();
    Case {
        der,
        profile: Target::Responder,
        issuer,
    }
}
