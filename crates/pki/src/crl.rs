//! Building CRLs: the root's ARL (made by the ceremony) and the issuing CAs' CRLs,
//! with the same prepare → sign flow as certificates.

use std::fmt;
use std::str::FromStr;

use carimbo_kms::SignatureAlgorithm;
use time::OffsetDateTime;

use crate::algorithm::signature_algorithm_identifier;
use crate::certificate::{check_issuer_key, verify_signed};
use crate::der::{self, TAG_SEQUENCE, context_constructed, context_primitive, oid};
use crate::issuer::whole_seconds;
use crate::lints::{has_errors, lint_crl, next_update_finding};
use crate::raw::{RawCrl, Signed, assemble};
use crate::throwaway::ThrowawayKey;
use crate::{Finding, IssuerInfo, PkiError, SerialNumber};

/// Positions of fields in `TBSCertList` (version is always present in ours).
const TBS_SIGNATURE: usize = 1;
const TBS_ISSUER: usize = 2;

/// Why a certificate was revoked (RFC 5280 §5.3.1 `CRLReason`). Written in kebab case
/// (`key-compromise`, `ca-compromise`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// 0 unspecified. Never written: an entry with this reason gets no reasonCode
    /// extension, as RFC 5280 §5.3.1 asks.
    Unspecified,
    /// 1 keyCompromise.
    KeyCompromise,
    /// 2 cACompromise.
    CaCompromise,
    /// 3 affiliationChanged.
    AffiliationChanged,
    /// 4 superseded.
    Superseded,
    /// 5 cessationOfOperation.
    CessationOfOperation,
    /// 6 certificateHold.
    CertificateHold,
    /// 8 removeFromCRL (delta CRLs only).
    RemoveFromCrl,
    /// 9 privilegeWithdrawn.
    PrivilegeWithdrawn,
    /// 10 aACompromise.
    AaCompromise,
}

impl RevocationReason {
    const ALL: [(RevocationReason, &'static str); 10] = [
        (Self::Unspecified, "unspecified"),
        (Self::KeyCompromise, "key-compromise"),
        (Self::CaCompromise, "ca-compromise"),
        (Self::AffiliationChanged, "affiliation-changed"),
        (Self::Superseded, "superseded"),
        (Self::CessationOfOperation, "cessation-of-operation"),
        (Self::CertificateHold, "certificate-hold"),
        (Self::RemoveFromCrl, "remove-from-crl"),
        (Self::PrivilegeWithdrawn, "privilege-withdrawn"),
        (Self::AaCompromise, "aa-compromise"),
    ];

    /// The RFC 5280 §5.3.1 code.
    pub fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::CertificateHold => 6,
            Self::RemoveFromCrl => 8,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }

    /// The reason with RFC 5280 §5.3.1 code `code` (7 is unassigned).
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL
            .iter()
            .map(|(reason, _)| *reason)
            .find(|reason| reason.code() == code)
    }

    fn to_rcgen(self) -> rcgen::RevocationReason {
        use rcgen::RevocationReason as R;
        match self {
            Self::Unspecified => R::Unspecified,
            Self::KeyCompromise => R::KeyCompromise,
            Self::CaCompromise => R::CaCompromise,
            Self::AffiliationChanged => R::AffiliationChanged,
            Self::Superseded => R::Superseded,
            Self::CessationOfOperation => R::CessationOfOperation,
            Self::CertificateHold => R::CertificateHold,
            Self::RemoveFromCrl => R::RemoveFromCrl,
            Self::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
            Self::AaCompromise => R::AaCompromise,
        }
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Self::ALL
            .iter()
            .find(|(reason, _)| reason == self)
            .map_or("unspecified", |(_, name)| name);
        f.write_str(name)
    }
}

impl FromStr for RevocationReason {
    type Err = PkiError;

    fn from_str(text: &str) -> Result<Self, PkiError> {
        Self::ALL
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(reason, _)| *reason)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(_, name)| *name).collect();
                PkiError::InvalidTemplate(format!(
                    "unknown revocation reason {text:?} (expected one of {})",
                    names.join(", ")
                ))
            })
    }
}

/// One entry of a CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedCertificate {
    /// Serial of the revoked certificate.
    pub serial: SerialNumber,
    /// When it was revoked (whole seconds, UTC).
    pub revocation_time: OffsetDateTime,
    /// Why, if said (`None` rather than `Unspecified`, RFC 5280 §5.3.1).
    pub reason: Option<RevocationReason>,
}

/// Which kind of CRL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CrlKind {
    /// The root's authority revocation list: covers CA certificates only, so it
    /// carries an issuing distribution point with onlyContainsCACerts, and its
    /// nextUpdate is at most one year after thisUpdate.
    Arl,
    /// An issuing CA's CRL of end-entity certificates; with an issuing distribution
    /// point URL, the IDP also says onlyContainsUserCerts.
    Crl,
}

/// Everything that goes into a CRL.
#[derive(Clone, Debug)]
pub struct CrlTemplate {
    /// ARL or CRL.
    pub kind: CrlKind,
    /// The CRL number: must be greater than the previous one (the caller checks); the
    /// lints check it is positive.
    pub crl_number: u64,
    /// Issue time (whole seconds, UTC).
    pub this_update: OffsetDateTime,
    /// Next issue time, after `this_update`.
    pub next_update: OffsetDateTime,
    /// Revoked certificates.
    pub revoked: Vec<RevokedCertificate>,
    /// The URL this CRL is published at (the CRL DP of the certificates it covers);
    /// becomes the issuing distribution point's name.
    pub issuing_distribution_point: Option<String>,
}

/// A CRL whose TBS has been built and linted: the only thing that can be signed. Get
/// one from [`prepare_crl`].
#[derive(Debug)]
pub struct PreparedCrl {
    tbs: Vec<u8>,
    lint_crl: Vec<u8>,
    algorithm_identifier: Vec<u8>,
    findings: Vec<Finding>,
    kind: CrlKind,
    issuer: IssuerInfo,
}

/// DER of the issuing distribution point extension for `kind` and `url`.
pub(crate) fn issuing_distribution_point_extension(kind: CrlKind, url: Option<&str>) -> Vec<u8> {
    let mut content = Vec::new();
    if let Some(url) = url {
        // distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } }
        let full_name = der::tlv(
            context_constructed(0),
            &der::tlv(context_primitive(6), url.as_bytes()),
        );
        content.extend_from_slice(&der::tlv(context_constructed(0), &full_name));
    }
    let flag = match kind {
        CrlKind::Crl if url.is_some() => Some(1), // onlyContainsUserCerts
        CrlKind::Crl => None,
        CrlKind::Arl => Some(2), // onlyContainsCACerts
    };
    if let Some(tag) = flag {
        content.extend_from_slice(&der::tlv(context_primitive(tag), &[0xff]));
    }
    der::extension(
        oid::ISSUING_DISTRIBUTION_POINT,
        true,
        &der::tlv(TAG_SEQUENCE, &content),
    )
}

/// The rcgen parameters for `template`.
pub(crate) fn crl_params(
    template: &CrlTemplate,
    issuer: &IssuerInfo,
) -> rcgen::CertificateRevocationListParams {
    rcgen::CertificateRevocationListParams {
        this_update: whole_seconds(template.this_update),
        next_update: whole_seconds(template.next_update),
        crl_number: rcgen::SerialNumber::from_slice(&template.crl_number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs: template
            .revoked
            .iter()
            .map(|entry| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(entry.serial.as_bytes()),
                revocation_time: whole_seconds(entry.revocation_time),
                reason_code: entry.reason.map(RevocationReason::to_rcgen),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::PreSpecified(
            issuer.subject_key_identifier().to_vec(),
        ),
    }
}

/// Builds a lint CRL: rcgen encodes and signs with `key`; then the signature
/// AlgorithmIdentifier and issuer name are replaced by their exact DER, `extra`
/// extensions are appended to crlExtensions, and the result is signed again.
pub(crate) fn build_lint_crl(
    params: &rcgen::CertificateRevocationListParams,
    issuer: &IssuerInfo,
    extra_extensions: &[Vec<u8>],
    key: &ThrowawayKey,
) -> Result<Vec<u8>, PkiError> {
    let mut issuer_params = rcgen::CertificateParams::default();
    issuer_params.distinguished_name = issuer.subject().to_rcgen().unwrap_or_default();
    issuer_params.key_identifier_method =
        rcgen::KeyIdMethod::PreSpecified(issuer.subject_key_identifier().to_vec());
    let rcgen_issuer = rcgen::Issuer::new(issuer_params, key);
    let built = params
        .signed_by(&rcgen_issuer)
        .map_err(|e| PkiError::Other(format!("rcgen: {e}")))?;
    let der = built.der().to_vec();
    let rcgen_failed = |e: String| PkiError::Other(format!("rcgen output: {e}"));
    let signed = Signed::parse(&der).map_err(rcgen_failed)?;
    let algorithm = signature_algorithm_identifier(issuer.algorithm());
    let mut replacements: Vec<(usize, Vec<u8>)> = vec![
        (TBS_SIGNATURE, algorithm.clone()),
        (TBS_ISSUER, issuer.subject_der().to_vec()),
    ];
    if !extra_extensions.is_empty() {
        // crlExtensions [0] is the last element of rcgen's TBSCertList.
        let fields = der::Reader::new(signed.tbs.content)
            .read_all()
            .map_err(rcgen_failed)?;
        let last = fields
            .len()
            .checked_sub(1)
            .filter(|at| fields[*at].tag == context_constructed(0))
            .ok_or_else(|| rcgen_failed("no crlExtensions".into()))?;
        let list = der::parse_single(fields[last].content, TAG_SEQUENCE).map_err(rcgen_failed)?;
        let mut content = list.content.to_vec();
        for extension in extra_extensions {
            content.extend_from_slice(extension);
        }
        let wrapped = der::tlv(context_constructed(0), &der::tlv(TAG_SEQUENCE, &content));
        replacements.push((last, wrapped));
    }
    let replacements: Vec<(usize, &[u8])> = replacements
        .iter()
        .map(|(at, bytes)| (*at, bytes.as_slice()))
        .collect();
    let tbs = der::replace_elements(signed.tbs.raw, &replacements).map_err(rcgen_failed)?;
    if tbs == signed.tbs.raw && algorithm == signed.algorithm.raw {
        return Ok(der);
    }
    let signature = key.sign_message(&tbs)?;
    Ok(assemble(&tbs, &algorithm, &signature))
}

/// Builds the TBS of a CRL from `template` and `issuer`, signs it with a throwaway key
/// and lints it. Any error-severity finding refuses with [`PkiError::Lint`]. A CRL whose
/// nextUpdate is not after `now` (stale before it is published) is refused too.
pub fn prepare_crl(
    template: &CrlTemplate,
    issuer: &IssuerInfo,
    now: OffsetDateTime,
) -> Result<PreparedCrl, PkiError> {
    if let Some(url) = &template.issuing_distribution_point
        && (!url.is_ascii()
            || url
                .chars()
                .any(|c| c.is_ascii_whitespace() || c.is_ascii_control()))
    {
        return Err(PkiError::InvalidTemplate(format!(
            "issuing distribution point {url:?} must be ASCII without spaces (IA5String)"
        )));
    }
    let params = crl_params(template, issuer);
    if params.next_update <= params.this_update {
        // rcgen refuses to encode it; report it as the lint would.
        return Err(PkiError::Lint(vec![next_update_finding(
            "nextUpdate is not after thisUpdate".into(),
        )]));
    }
    if params.next_update <= whole_seconds(now) {
        return Err(PkiError::Lint(vec![next_update_finding(format!(
            "nextUpdate {} is already past",
            params.next_update
        ))]));
    }
    let key = ThrowawayKey::generate(issuer.algorithm())?;
    let idp = match (
        template.kind,
        template.issuing_distribution_point.as_deref(),
    ) {
        (CrlKind::Crl, None) => Vec::new(),
        (kind, url) => vec![issuing_distribution_point_extension(kind, url)],
    };
    let lint_der = build_lint_crl(&params, issuer, &idp, &key)?;
    let findings = lint_crl(&lint_der, template.kind, issuer);
    if has_errors(&findings) {
        return Err(PkiError::Lint(findings));
    }
    let raw = RawCrl::parse(&lint_der).map_err(|e| PkiError::Other(format!("lint CRL: {e}")))?;
    Ok(PreparedCrl {
        tbs: raw.signed.tbs.raw.to_vec(),
        algorithm_identifier: raw.signed.algorithm.raw.to_vec(),
        lint_crl: lint_der,
        findings,
        kind: template.kind,
        issuer: issuer.clone(),
    })
}

impl PreparedCrl {
    /// The DER `TBSCertList` that was linted and will be signed.
    pub fn tbs_der(&self) -> &[u8] {
        &self.tbs
    }

    /// The lint CRL: the same TBS signed by a throwaway key.
    pub fn lint_crl_der(&self) -> &[u8] {
        &self.lint_crl
    }

    /// Warnings and notices that did not block.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// Signs the linted TBS with the issuer `key`, with the same checks as
    /// [`crate::PreparedCertificate::sign`]. Returns the CRL DER.
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
        let crl = assemble(&self.tbs, &self.algorithm_identifier, &signature);
        let (rest, _) = x509_parser::parse_x509_crl(&crl)
            .map_err(|e| PkiError::Other(format!("signed CRL does not parse: {e}")))?;
        let raw = RawCrl::parse(&crl).map_err(|e| PkiError::Other(format!("signed CRL: {e}")))?;
        if !rest.is_empty() || raw.signed.tbs.raw != self.tbs.as_slice() {
            return Err(PkiError::Other(
                "signed CRL's TBS differs from the linted TBS".into(),
            ));
        }
        let findings = lint_crl(&crl, self.kind, &self.issuer);
        if has_errors(&findings) {
            return Err(PkiError::Lint(findings));
        }
        verify_crl_signature(
            &crl,
            self.issuer.subject_public_key_info(),
            self.issuer.algorithm(),
        )?;
        Ok(crl)
    }
}

/// Verifies that `crl_der` is signed by the key `issuer_spki` with `algorithm`, and
/// that both of its signature algorithm fields name `algorithm`.
pub fn verify_crl_signature(
    crl_der: &[u8],
    issuer_spki: &[u8],
    algorithm: SignatureAlgorithm,
) -> Result<(), PkiError> {
    let raw = RawCrl::parse(crl_der).map_err(|e| PkiError::Parse(format!("CRL: {e}")))?;
    verify_signed(
        "CRL",
        &raw.signed,
        raw.inner_algorithm.raw,
        issuer_spki,
        algorithm,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_parse_from_kebab_case_and_keep_their_codes() {
        for (reason, name) in RevocationReason::ALL {
            assert_eq!(name.parse::<RevocationReason>().unwrap(), reason);
            assert_eq!(reason.to_string(), name);
            assert_eq!(RevocationReason::from_code(reason.code()), Some(reason));
        }
        assert_eq!(RevocationReason::KeyCompromise.code(), 1);
        assert_eq!(RevocationReason::AaCompromise.code(), 10);
        assert!(RevocationReason::from_code(7).is_none());
        assert!("keyCompromise".parse::<RevocationReason>().is_err());
    }
}
