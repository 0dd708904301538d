//! Delegated OCSP responder certificates (RFC 6960 §4.2.2.2): end-entity certificates
//! an issuing CA gives to the key that signs its OCSP responses, so that the CA key
//! itself signs only certificates and CRLs.
//!
//! | field | value |
//! |---|---|
//! | subject | as given, e.g. `CN=<issuer CN> OCSP responder` and the issuer's other attributes |
//! | basicConstraints (critical) | cA FALSE |
//! | keyUsage (critical) | digitalSignature |
//! | extKeyUsage | id-kp-OCSPSigning only |
//! | id-pkix-ocsp-nocheck | NULL, non-critical |
//! | SKID / AKID | computed / = issuer SKID |
//! | subjectAltName, CRL DP, AIA | none |
//! | validity | inside the issuer's, at most [`RESPONDER_MAX_VALIDITY`] |
//!
//! Decisions:
//!
//! - **id-pkix-ocsp-nocheck and a short life instead of revocation pointers.** A client
//!   cannot ask the responder about the responder's own certificate; RFC 6960
//!   §4.2.2.2.1 lets the CA say "do not check" and advises a short lifetime, which
//!   is what bounds a compromise of the responder key. So there is no CRL DP or AIA.
//! - **Own lint target.** Responder certificates run the lints for every certificate,
//!   the CA subject and key lints (a responder has a named subject and a key Carimbo
//!   can sign with), and their own `e_ocsp_responder_*` lints. The leaf lints do not
//!   apply: a responder has no subjectAltName (it names no TLS peer), and its EKU
//!   need not be among the issuer's — RFC 6960 §4.2.2.2 asks only for
//!   id-kp-OCSPSigning in the responder certificate, while Carimbo's intermediates
//!   carry serverAuth or serverAuth + clientAuth for their leaves. (OpenSSL checks it
//!   the same way: the delegated signer needs OCSPSigning, the issuer's EKU is not
//!   consulted.)

use time::{Duration, OffsetDateTime};

use crate::algorithm::key_identifier;
use crate::certificate::{PreparedCertificate, build_lint_certificate};
use crate::der;
use crate::issuer::whole_seconds;
use crate::lints::{Target, has_errors, lint_target};
use crate::throwaway::ThrowawayKey;
use crate::{DistinguishedName, DnAttribute, IssuerInfo, PkiError, SerialNumber};

/// Longest validity of a responder certificate.
pub const RESPONDER_MAX_VALIDITY: Duration = Duration::days(30);

/// OID arcs of id-pkix-ocsp-nocheck, for an rcgen custom extension.
const ARCS_OCSP_NOCHECK: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];

/// Everything that goes into a responder certificate; the profile decides the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponderTemplate {
    /// The serial number (use [`SerialNumber::random`]).
    pub serial: SerialNumber,
    /// The subject: non-empty, with one commonName.
    pub subject: DistinguishedName,
    /// DER `SubjectPublicKeyInfo` of the responder key.
    pub subject_public_key_info: Vec<u8>,
    /// Start of validity (whole seconds, UTC), not before the issuer's.
    pub not_before: OffsetDateTime,
    /// End of validity, inclusive: at most [`RESPONDER_MAX_VALIDITY`] after
    /// `not_before`, not after the issuer's.
    pub not_after: OffsetDateTime,
}

impl ResponderTemplate {
    /// A template for the responder key `spki` of `issuer`, issued at `now`: a random
    /// serial; the issuer's subject with the commonName `<issuer CN> OCSP responder`
    /// (cut to the 64-character upper bound); notBefore one minute before `now` (never
    /// before the issuer's notBefore), notAfter `lifetime` later (never after the
    /// issuer's notAfter). A lifetime over [`RESPONDER_MAX_VALIDITY`] is refused.
    pub fn for_issuer(
        issuer: &IssuerInfo,
        spki: &[u8],
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Result<Self, PkiError> {
        if !lifetime.is_positive() || lifetime > RESPONDER_MAX_VALIDITY {
            return Err(PkiError::InvalidTemplate(format!(
                "a responder certificate lives more than 0 and at most {} days",
                RESPONDER_MAX_VALIDITY.whole_days()
            )));
        }
        let mut subject = DistinguishedName::new();
        for (attribute, value) in issuer.subject().iter() {
            if attribute != DnAttribute::CommonName {
                subject.push(attribute, value)?;
            }
        }
        let issuer_name = issuer.subject().common_name().unwrap_or("Carimbo CA");
        let common_name: String = format!("{issuer_name} OCSP responder")
            .chars()
            .take(64)
            .collect();
        subject.push(DnAttribute::CommonName, &common_name)?;
        let not_before = (whole_seconds(now) - Duration::minutes(1)).max(issuer.not_before());
        let not_after = (not_before + lifetime).min(issuer.not_after());
        Ok(Self {
            serial: SerialNumber::random()?,
            subject,
            subject_public_key_info: spki.to_vec(),
            not_before,
            not_after,
        })
    }
}

/// The rcgen parameters for a responder certificate.
pub(crate) fn responder_params(
    template: &ResponderTemplate,
) -> Result<rcgen::CertificateParams, PkiError> {
    let mut params = rcgen::CertificateParams::default();
    params.not_before = whole_seconds(template.not_before);
    params.not_after = whole_seconds(template.not_after);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(template.serial.as_bytes()));
    params.distinguished_name = template.subject.to_rcgen().unwrap_or_default();
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::OcspSigning];
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            ARCS_OCSP_NOCHECK,
            der::tlv(der::TAG_NULL, &[]),
        ));
    params.use_authority_key_identifier_extension = true;
    params.key_identifier_method =
        rcgen::KeyIdMethod::PreSpecified(key_identifier(&template.subject_public_key_info)?);
    Ok(params)
}

/// Builds the TBS of a delegated OCSP responder certificate from `template`, issued by
/// `issuer`, signs it with a throwaway key of the issuer's algorithm and lints it as of
/// `now` with the responder lints — the lint-before-sign path of every certificate;
/// the result is signed by the issuer key with [`PreparedCertificate::sign`]. Any
/// error-severity finding (a subject without commonName, a validity outside the
/// issuer's or over [`RESPONDER_MAX_VALIDITY`], a key Carimbo does not accept, ...)
/// refuses with [`PkiError::Lint`].
pub fn prepare_ocsp_responder(
    template: &ResponderTemplate,
    issuer: &IssuerInfo,
    now: OffsetDateTime,
) -> Result<PreparedCertificate, PkiError> {
    let params = responder_params(template)?;
    let key = ThrowawayKey::generate(issuer.algorithm())?;
    let lint_der = build_lint_certificate(
        &params,
        &template.subject.to_der(),
        &template.subject_public_key_info,
        issuer,
        &key,
    )?;
    let target = Target::Responder;
    let findings = lint_target(&lint_der, target, issuer, now);
    if has_errors(&findings) {
        return Err(PkiError::Lint(findings));
    }
    PreparedCertificate::from_lint_certificate(lint_der, findings, target, issuer, now)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::lints::testing::{
        LEAF_NOW, intermediate_issuer, key, leaf_case, responder_template,
    };
    use crate::{IntermediateUsage, LeafKind, lint_ocsp_responder};

    fn lint_names(error: PkiError) -> Vec<&'static str> {
        match error {
            PkiError::Lint(findings) => findings.iter().map(|f| f.lint).collect(),
            other => panic!("expected lint findings, got {other}"),
        }
    }

    #[test]
    fn a_template_for_the_issuer_passes_every_lint() {
        let issuer = intermediate_issuer(IntermediateUsage::Workload);
        let template =
            ResponderTemplate::for_issuer(&issuer, key().spki(), LEAF_NOW, Duration::days(7))
                .unwrap();
        assert_eq!(
            template.subject.common_name(),
            Some("Carimbo Test Issuing CA OCSP responder")
        );
        assert_eq!(template.subject.iter().count(), 3);
        assert_eq!(template.not_before, LEAF_NOW - Duration::minutes(1));
        assert_eq!(template.not_after - template.not_before, Duration::days(7));
        let prepared = prepare_ocsp_responder(&template, &issuer, LEAF_NOW).unwrap();
        assert!(prepared.findings().is_empty(), "{:?}", prepared.findings());
        let findings = lint_ocsp_responder(prepared.lint_certificate_der(), &issuer, LEAF_NOW);
        assert!(findings.is_empty(), "{findings:?}");
        for lifetime in [
            Duration::ZERO,
            RESPONDER_MAX_VALIDITY + Duration::seconds(1),
        ] {
            assert!(
                ResponderTemplate::for_issuer(&issuer, key().spki(), LEAF_NOW, lifetime).is_err()
            );
        }
    }

    #[test]
    fn out_of_profile_templates_are_refused_by_the_lints() {
        let issuer = intermediate_issuer(IntermediateUsage::Server);
        let mut template = responder_template(key().spki());
        template.not_after += Duration::days(1);
        let error = prepare_ocsp_responder(&template, &issuer, LEAF_NOW).unwrap_err();
        assert!(lint_names(error).contains(&"e_ocsp_responder_validity_max_30_days"));

        let mut template = responder_template(key().spki());
        template.subject = DistinguishedName::new();
        let error = prepare_ocsp_responder(&template, &issuer, LEAF_NOW).unwrap_err();
        assert!(lint_names(error).contains(&"e_subject_common_name_present"));

        let mut template = responder_template(key().spki());
        template.not_before = issuer.not_before() - Duration::days(1);
        template.not_after = template.not_before + Duration::days(2);
        let error = prepare_ocsp_responder(&template, &issuer, LEAF_NOW).unwrap_err();
        assert!(lint_names(error).contains(&"e_validity_within_issuer"));
    }

    #[test]
    fn a_leaf_is_not_a_responder() {
        let leaf = leaf_case(LeafKind::Server);
        let findings: Vec<&str> = lint_ocsp_responder(&leaf.der, &leaf.issuer, LEAF_NOW)
            .iter()
            .map(|f| f.lint)
            .collect();
        for lint in [
            "e_ocsp_responder_eku_ocsp_signing",
            "e_ocsp_responder_nocheck_present",
            "e_ocsp_responder_extensions_allowed",
            "e_subject_common_name_present",
        ] {
            assert!(findings.contains(&lint), "{lint}: {findings:?}");
        }
    }
}
