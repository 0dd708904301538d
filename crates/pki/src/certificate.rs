//! Building CA certificates: prepare (build the TBS once, sign it with a throwaway key,
//! lint) → sign (the real key signs exactly the linted TBS). Leaf certificates
//! ([`crate::prepare_leaf`]) share the lint certificate and the signing step.

use carimbo_kms::SignatureAlgorithm;
use time::OffsetDateTime;

use crate::algorithm::{key_identifier, signature_algorithm_identifier};
use crate::issuer::whole_seconds;
use crate::lints::{Target, has_errors, lint_target};
use crate::profile::authority_info_access_der;
use crate::raw::{RawCertificate, Signed, assemble};
use crate::throwaway::ThrowawayKey;
use crate::{
    CertificateProfile, CertificateTemplate, Finding, IntermediateUsage, IssuerInfo, PkiError,
};

/// OID arcs for rcgen custom extensions.
const ARCS_NAME_CONSTRAINTS: &[u64] = &[2, 5, 29, 30];
const ARCS_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];

/// Positions of fields in `TBSCertificate` (version is always present in ours).
const TBS_SIGNATURE: usize = 2;
const TBS_ISSUER: usize = 3;
const TBS_SUBJECT: usize = 5;
const TBS_SPKI: usize = 6;

/// A certificate whose TBS has been built and has passed the lints: the only thing
/// that can be signed. There is no public constructor; get one from
/// [`prepare_certificate`] (CA certificates) or [`crate::prepare_leaf`] (leaves).
#[derive(Debug)]
pub struct PreparedCertificate {
    tbs: Vec<u8>,
    lint_certificate: Vec<u8>,
    algorithm_identifier: Vec<u8>,
    findings: Vec<Finding>,
    target: Target,
    issuer: IssuerInfo,
    now: OffsetDateTime,
}

/// Refuses strings rcgen would have to write as IA5String but cannot (non-ASCII), and
/// whitespace in URLs and names.
pub(crate) fn check_ia5(what: &str, value: &str) -> Result<(), PkiError> {
    if !value.is_ascii()
        || value
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(PkiError::InvalidTemplate(format!(
            "{what} {value:?} must be ASCII without spaces (IA5String)"
        )));
    }
    Ok(())
}

fn check_template(template: &CertificateTemplate, issuer: &IssuerInfo) -> Result<(), PkiError> {
    for url in template
        .crl_distribution_points
        .iter()
        .chain(&template.ca_issuers)
        .chain(&template.ocsp_responders)
    {
        check_ia5("URL", url)?;
    }
    // Name constraints are encoded here, not by rcgen: a malformed entry reaches the
    // lints, which name the problem.
    match template.profile {
        CertificateProfile::Root => {
            if issuer.subject_der() != template.subject.to_der()
                || issuer.subject_public_key_info() != template.subject_public_key_info
            {
                return Err(PkiError::InvalidTemplate(
                    "a root is its own issuer: use IssuerInfo::self_signed for it".into(),
                ));
            }
        }
        CertificateProfile::CrossCertificate { .. } => {
            if template.subject_key_identifier.is_none() {
                return Err(PkiError::InvalidTemplate(
                    "a cross-certificate keeps the original's subject key identifier: set \
                     subject_key_identifier"
                        .into(),
                ));
            }
        }
        CertificateProfile::Intermediate { .. } => {}
    }
    Ok(())
}

/// A name rcgen can carry; the exact bytes are spliced in afterwards when rcgen's
/// model cannot express the name (repeated attribute types).
fn rcgen_name(name: &crate::DistinguishedName) -> rcgen::DistinguishedName {
    name.to_rcgen().unwrap_or_default()
}

/// The rcgen parameters for `template`: everything the profile decides.
pub(crate) fn certificate_params(
    template: &CertificateTemplate,
) -> Result<rcgen::CertificateParams, PkiError> {
    let mut params = rcgen::CertificateParams::default();
    params.not_before = whole_seconds(template.not_before);
    params.not_after = whole_seconds(template.not_after);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(template.serial.as_bytes()));
    params.distinguished_name = rcgen_name(&template.subject);
    params.is_ca = rcgen::IsCa::Ca(match template.profile.path_len() {
        Some(length) => rcgen::BasicConstraints::Constrained(length),
        None => rcgen::BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.extended_key_usages = match template.profile.usage() {
        None => Vec::new(),
        Some(IntermediateUsage::Server) => vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth],
        Some(IntermediateUsage::Workload) => vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ],
    };
    if !template.crl_distribution_points.is_empty() {
        params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
            uris: template.crl_distribution_points.clone(),
        }];
    }
    if let Some(constraints) = &template.name_constraints {
        let mut extension =
            rcgen::CustomExtension::from_oid_content(ARCS_NAME_CONSTRAINTS, constraints.to_der());
        extension.set_criticality(true);
        params.custom_extensions.push(extension);
    }
    if !template.ca_issuers.is_empty() || !template.ocsp_responders.is_empty() {
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                ARCS_AUTHORITY_INFO_ACCESS,
                authority_info_access_der(&template.ocsp_responders, &template.ca_issuers),
            ));
    }
    params.use_authority_key_identifier_extension = true;
    let subject_key_identifier = match &template.subject_key_identifier {
        Some(identifier) => identifier.clone(),
        None => key_identifier(&template.subject_public_key_info)?,
    };
    params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(subject_key_identifier);
    Ok(params)
}

/// Builds the lint certificate from `params`: rcgen encodes the TBS and signs it with
/// `key`; then the fields rcgen cannot always express exactly — the signature
/// AlgorithmIdentifier (rcgen has no RSA-PSS), the issuer and subject names (rcgen
/// cannot repeat an attribute type) and the subject public key info — are replaced
/// by their exact DER (`subject_der`, `subject_public_key_info`), and if that changed
/// anything the TBS is signed again.
pub(crate) fn build_lint_certificate(
    params: &rcgen::CertificateParams,
    subject_der: &[u8],
    subject_public_key_info: &[u8],
    issuer: &IssuerInfo,
    key: &ThrowawayKey,
) -> Result<Vec<u8>, PkiError> {
    let subject_key = rcgen::SubjectPublicKeyInfo::from_der(subject_public_key_info)
        .map_err(|e| PkiError::InvalidTemplate(format!("subject public key: {e}")))?;
    let mut issuer_params = rcgen::CertificateParams::default();
    issuer_params.distinguished_name = rcgen_name(issuer.subject());
    issuer_params.key_identifier_method =
        rcgen::KeyIdMethod::PreSpecified(issuer.subject_key_identifier().to_vec());
    let rcgen_issuer = rcgen::Issuer::new(issuer_params, key);
    let built = params
        .signed_by(&subject_key, &rcgen_issuer)
        .map_err(|e| PkiError::Other(format!("rcgen: {e}")))?;
    let der = built.der().to_vec();
    let signed = Signed::parse(&der).map_err(|e| PkiError::Other(format!("rcgen output: {e}")))?;
    let algorithm = signature_algorithm_identifier(issuer.algorithm());
    let tbs = crate::der::replace_elements(
        signed.tbs.raw,
        &[
            (TBS_SIGNATURE, &algorithm),
            (TBS_ISSUER, issuer.subject_der()),
            (TBS_SUBJECT, subject_der),
            (TBS_SPKI, subject_public_key_info),
        ],
    )
    .map_err(|e| PkiError::Other(format!("rcgen output: {e}")))?;
    if tbs == signed.tbs.raw && algorithm == signed.algorithm.raw {
        return Ok(der);
    }
    let signature = key.sign_message(&tbs)?;
    Ok(assemble(&tbs, &algorithm, &signature))
}

/// Builds the TBS of a CA certificate from `template` and `issuer`, signs it with a
/// throwaway key of the issuer's algorithm, and lints that lint certificate as of
/// `now`. Any error-severity finding refuses with [`PkiError::Lint`]; otherwise the
/// result can be signed by the issuer key, over exactly the TBS that was linted.
pub fn prepare_certificate(
    template: &CertificateTemplate,
    issuer: &IssuerInfo,
    now: OffsetDateTime,
) -> Result<PreparedCertificate, PkiError> {
    check_template(template, issuer)?;
    let params = certificate_params(template)?;
    let key = ThrowawayKey::generate(issuer.algorithm())?;
    let lint_der = build_lint_certificate(
        &params,
        &template.subject.to_der(),
        &template.subject_public_key_info,
        issuer,
        &key,
    )?;
    let target = Target::Ca(template.profile);
    let findings = lint_target(&lint_der, target, issuer, now);
    if has_errors(&findings) {
        return Err(PkiError::Lint(findings));
    }
    PreparedCertificate::from_lint_certificate(lint_der, findings, target, issuer, now)
}

/// Checks that `key` is the issuer's key (same algorithm, same public key).
pub(crate) fn check_issuer_key(
    key: &dyn carimbo_kms::SigningKey,
    issuer: &IssuerInfo,
) -> Result<(), PkiError> {
    if key.algorithm() != issuer.algorithm() {
        return Err(PkiError::Signature(format!(
            "the key signs with {}, the issuer with {}",
            key.algorithm(),
            issuer.algorithm()
        )));
    }
    if key.public_key_der() != issuer.subject_public_key_info() {
        return Err(PkiError::Signature(
            "the key's public key is not the issuer's".into(),
        ));
    }
    Ok(())
}

impl PreparedCertificate {
    /// Wraps a lint certificate that passed the lints (`findings` hold no error).
    pub(crate) fn from_lint_certificate(
        lint_der: Vec<u8>,
        findings: Vec<Finding>,
        target: Target,
        issuer: &IssuerInfo,
        now: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        let raw = RawCertificate::parse(&lint_der)
            .map_err(|e| PkiError::Other(format!("lint certificate: {e}")))?;
        let tbs = raw.signed.tbs.raw.to_vec();
        let algorithm_identifier = raw.signed.algorithm.raw.to_vec();
        Ok(Self {
            tbs,
            lint_certificate: lint_der,
            algorithm_identifier,
            findings,
            target,
            issuer: issuer.clone(),
            now,
        })
    }

    /// The DER `TBSCertificate` that was linted and will be signed.
    pub fn tbs_der(&self) -> &[u8] {
        &self.tbs
    }

    /// The lint certificate: the same TBS signed by a throwaway key. Store it before
    /// signing (it records what was about to be signed).
    pub fn lint_certificate_der(&self) -> &[u8] {
        &self.lint_certificate
    }

    /// Warnings and notices that did not block.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Signs the linted TBS with the issuer `key`: checks the key is the issuer's,
    /// verifies the signature against the issuer public key, assembles the
    /// certificate, checks that its TBS is byte-identical to the linted one, and lints
    /// the final certificate again. Returns the certificate DER.
    pub async fn sign(self, key: &dyn carimbo_kms::SigningKey) -> Result<Vec<u8>, PkiError> {
        check_issuer_key(key, &self.issuer)?;
        let signature = key.sign(&self.tbs).await?;
        carimbo_kms::verify_signature(
            self.issuer.algorithm(),
            self.issuer.subject_public_key_info(),
            &self.tbs,
            &signature,
        )
        .map_err(|e| PkiError::Signature(format!("the new signature does not verify: {e}")))?;
        let certificate = assemble(&self.tbs, &self.algorithm_identifier, &signature);
        let (rest, _) = x509_parser::parse_x509_certificate(&certificate)
            .map_err(|e| PkiError::Other(format!("signed certificate does not parse: {e}")))?;
        let raw = RawCertificate::parse(&certificate)
            .map_err(|e| PkiError::Other(format!("signed certificate: {e}")))?;
        if !rest.is_empty() || raw.signed.tbs.raw != self.tbs.as_slice() {
            return Err(PkiError::Other(
                "signed certificate's TBS differs from the linted TBS".into(),
            ));
        }
        let findings = lint_target(&certificate, self.target, &self.issuer, self.now);
        if has_errors(&findings) {
            return Err(PkiError::Lint(findings));
        }
        verify_certificate_signature(
            &certificate,
            self.issuer.subject_public_key_info(),
            self.issuer.algorithm(),
        )?;
        Ok(certificate)
    }
}

/// Checks the signature and signature algorithm of `signed_der` (certificate or CRL).
pub(crate) fn verify_signed(
    what: &str,
    signed: &Signed<'_>,
    inner_algorithm: &[u8],
    issuer_spki: &[u8],
    algorithm: SignatureAlgorithm,
) -> Result<(), PkiError> {
    let expected = signature_algorithm_identifier(algorithm);
    if signed.algorithm.raw != expected.as_slice() {
        return Err(PkiError::Signature(format!(
            "{what} signature algorithm is not {algorithm}"
        )));
    }
    if inner_algorithm != signed.algorithm.raw {
        return Err(PkiError::Signature(format!(
            "{what} inner and outer signature algorithms differ"
        )));
    }
    carimbo_kms::verify_signature(algorithm, issuer_spki, signed.tbs.raw, signed.signature)
        .map_err(|e| PkiError::Signature(format!("{what} signature: {e}")))
}

/// Verifies that `cert_der` is signed by the key `issuer_spki` (DER
/// `SubjectPublicKeyInfo`) with `algorithm`, and that both of its signature algorithm
/// fields name `algorithm`.
pub fn verify_certificate_signature(
    cert_der: &[u8],
    issuer_spki: &[u8],
    algorithm: SignatureAlgorithm,
) -> Result<(), PkiError> {
    let raw = RawCertificate::parse(cert_der)
        .map_err(|e| PkiError::Parse(format!("certificate: {e}")))?;
    verify_signed(
        "certificate",
        &raw.signed,
        raw.inner_algorithm.raw,
        issuer_spki,
        algorithm,
    )
}
