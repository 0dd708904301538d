//! What the lints and the builder need to know about the issuing CA.

use carimbo_kms::SignatureAlgorithm;
use time::OffsetDateTime;
use x509_parser::extensions::ParsedExtension;

use crate::algorithm::{check_spki_fits, key_identifier};
use crate::{CertificateTemplate, DistinguishedName, PkiError};

/// The issuing CA: its subject name (exact DER), subject key identifier, public key,
/// validity, signature algorithm and, unless it is the certificate being built
/// (self-signed root), its certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerInfo {
    subject: DistinguishedName,
    subject_der: Vec<u8>,
    subject_key_identifier: Vec<u8>,
    subject_public_key_info: Vec<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    algorithm: SignatureAlgorithm,
    certificate: Option<Vec<u8>>,
}

/// Drops sub-second precision and normalises to UTC: X.509 times have whole seconds.
pub(crate) fn whole_seconds(time: OffsetDateTime) -> OffsetDateTime {
    let utc = time.to_offset(time::UtcOffset::UTC);
    utc.replace_nanosecond(0).unwrap_or(utc)
}

impl IssuerInfo {
    /// The issuer described by its CA certificate `der`, whose key signs with
    /// `algorithm`. Checks that the certificate's public key fits `algorithm`, that it
    /// is a CA (basicConstraints cA TRUE, keyUsage keyCertSign) and that it has a
    /// subject key identifier.
    pub fn from_certificate(der: &[u8], algorithm: SignatureAlgorithm) -> Result<Self, PkiError> {
        let (rest, certificate) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| PkiError::Parse(format!("issuer certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(PkiError::Parse("issuer certificate: trailing bytes".into()));
        }
        let tbs = &certificate.tbs_certificate;
        let spki = tbs.subject_pki.raw.to_vec();
        check_spki_fits(&spki, algorithm)
            .map_err(|e| PkiError::InvalidTemplate(format!("issuer certificate: {e}")))?;
        let not_ca = |why: &str| PkiError::InvalidTemplate(format!("issuer certificate {why}"));
        let mut is_ca = false;
        let mut cert_sign = false;
        let mut subject_key_identifier = None;
        for extension in tbs.extensions() {
            match extension.parsed_extension() {
                ParsedExtension::BasicConstraints(constraints) => is_ca = constraints.ca,
                ParsedExtension::KeyUsage(usage) => cert_sign = usage.key_cert_sign(),
                ParsedExtension::SubjectKeyIdentifier(identifier) => {
                    subject_key_identifier = Some(identifier.0.to_vec())
                }
                _ => {}
            }
        }
        if !is_ca {
            return Err(not_ca("is not a CA (basicConstraints cA is not TRUE)"));
        }
        if !cert_sign {
            return Err(not_ca("does not allow keyCertSign"));
        }
        let subject_key_identifier =
            subject_key_identifier.ok_or_else(|| not_ca("has no subject key identifier"))?;
        let subject_der = tbs.subject.as_raw().to_vec();
        Ok(Self {
            subject: DistinguishedName::from_der(&subject_der)?,
            subject_der,
            subject_key_identifier,
            subject_public_key_info: spki,
            not_before: tbs.validity.not_before.to_datetime(),
            not_after: tbs.validity.not_after.to_datetime(),
            algorithm,
            certificate: Some(der.to_vec()),
        })
    }

    /// The issuer of a self-signed certificate built from `template`: its own subject,
    /// key, key identifier (given or computed) and validity. Checks that the template's
    /// public key fits `algorithm`.
    pub fn self_signed(
        template: &CertificateTemplate,
        algorithm: SignatureAlgorithm,
    ) -> Result<Self, PkiError> {
        check_spki_fits(&template.subject_public_key_info, algorithm)?;
        let subject_key_identifier = match &template.subject_key_identifier {
            Some(identifier) => identifier.clone(),
            None => key_identifier(&template.subject_public_key_info)?,
        };
        Ok(Self {
            subject: template.subject.clone(),
            subject_der: template.subject.to_der(),
            subject_key_identifier,
            subject_public_key_info: template.subject_public_key_info.clone(),
            not_before: whole_seconds(template.not_before),
            not_after: whole_seconds(template.not_after),
            algorithm,
            certificate: None,
        })
    }

    /// DER `SubjectPublicKeyInfo` of the issuer key.
    pub fn subject_public_key_info(&self) -> &[u8] {
        &self.subject_public_key_info
    }

    /// End of the issuer's validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Start of the issuer's validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.not_before
    }

    /// The issuer's subject name.
    pub fn subject(&self) -> &DistinguishedName {
        &self.subject
    }

    /// The issuer's subject name as DER, exactly as in its certificate; it becomes the
    /// issuer name of everything it signs.
    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    /// The issuer's subject key identifier (the AKID of everything it signs).
    pub fn subject_key_identifier(&self) -> &[u8] {
        &self.subject_key_identifier
    }

    /// The algorithm the issuer key signs with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The issuer's certificate, when it exists (not for a root being built).
    pub fn certificate_der(&self) -> Option<&[u8]> {
        self.certificate.as_deref()
    }
}
