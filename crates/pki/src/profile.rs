//! Certificate profiles and templates: what a CA certificate of each kind contains.
//!
//! | | Root | Intermediate | Cross-certificate |
//! |---|---|---|---|
//! | basicConstraints (critical) | cA, no pathLen | cA, pathLen 0 | cA, pathLen as given |
//! | keyUsage (critical) | keyCertSign, cRLSign | keyCertSign, cRLSign | keyCertSign, cRLSign |
//! | extKeyUsage | none | serverAuth (+ clientAuth for workload) | per usage, or none |
//! | SKID / AKID | computed / = SKID | computed / = issuer SKID | kept / = issuer SKID |
//! | CRL DP, AIA caIssuers | not recommended | required, `http://` | required, `http://` |
//! | validity | ≤ 25 years | ≤ 8 years, inside the issuer's | ≤ 8 years, inside the issuer's |
//!
//! The key usage of every CA profile is exactly keyCertSign + cRLSign: CA keys sign
//! certificates and CRLs only. OCSP responses are signed by delegated responder
//! certificates, so CA keys do not need digitalSignature. The lints still accept
//! digitalSignature on a CA certificate made elsewhere (with a notice), since RFC 5280
//! allows it for a CA that signs OCSP responses itself.

use time::OffsetDateTime;

use crate::der::{self, TAG_SEQUENCE, context_constructed, context_primitive, oid};
use crate::{DistinguishedName, SerialNumber};

/// Longest root validity: 25 years (DESIGN §2).
pub const ROOT_MAX_YEARS: i32 = 25;
/// Longest intermediate (and cross-certificate) validity: 8 years (DESIGN §2).
pub const INTERMEDIATE_MAX_YEARS: i32 = 8;

/// What an intermediate may issue, expressed as its extended key usage (which
/// constrains everything below it in rustls and OpenSSL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntermediateUsage {
    /// int-server: EKU serverAuth.
    Server,
    /// int-workload: EKU serverAuth + clientAuth (client and SPIFFE certificates).
    Workload,
}

impl IntermediateUsage {
    /// Whether the EKU contains serverAuth and clientAuth respectively.
    pub(crate) fn server_and_client(self) -> (bool, bool) {
        match self {
            Self::Server => (true, false),
            Self::Workload => (true, true),
        }
    }
}

/// The kind of CA certificate to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertificateProfile {
    /// A self-signed root: basicConstraints cA critical without pathLen, keyUsage
    /// critical keyCertSign + cRLSign, no EKU, SKID computed, AKID = SKID, ≤ 25 years.
    Root,
    /// An issuing intermediate: basicConstraints cA critical pathLen 0, keyUsage
    /// critical keyCertSign + cRLSign, EKU per usage, CRL DP and AIA caIssuers
    /// required (`http://` only), ≤ 8 years and inside the issuer's validity.
    Intermediate {
        /// What the intermediate issues.
        usage: IntermediateUsage,
    },
    /// A certificate for an existing CA (its subject and SKID kept from the template)
    /// signed by another issuer; otherwise as [`CertificateProfile::Intermediate`].
    CrossCertificate {
        /// EKU to assert, or none.
        usage: Option<IntermediateUsage>,
        /// basicConstraints pathLenConstraint, or none (unlimited).
        path_len: Option<u8>,
    },
}

impl CertificateProfile {
    /// The pathLenConstraint this profile requires.
    pub fn path_len(&self) -> Option<u8> {
        match self {
            Self::Root => None,
            Self::Intermediate { .. } => Some(0),
            Self::CrossCertificate { path_len, .. } => *path_len,
        }
    }

    /// The EKU usage this profile requires (`None`: no EKU extension).
    pub fn usage(&self) -> Option<IntermediateUsage> {
        match self {
            Self::Root => None,
            Self::Intermediate { usage } => Some(*usage),
            Self::CrossCertificate { usage, .. } => *usage,
        }
    }

    /// Whether this is a root.
    pub fn is_root(&self) -> bool {
        matches!(self, Self::Root)
    }

    /// Longest validity in years.
    pub fn max_years(&self) -> i32 {
        if self.is_root() {
            ROOT_MAX_YEARS
        } else {
            INTERMEDIATE_MAX_YEARS
        }
    }
}

/// Name constraints for an intermediate (RFC 5280 §4.2.1.10), always critical.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameConstraints {
    /// Permitted DNS suffixes (`example.com` permits it and every name below it).
    pub permitted_dns: Vec<String>,
    /// Excluded DNS suffixes.
    pub excluded_dns: Vec<String>,
    /// Permitted URI hosts: SPIFFE trust domains, host-only as RFC 5280 §4.2.1.10
    /// defines URI constraints (`prod.example.org`, or `.example.org` for subdomains).
    pub permitted_uri_hosts: Vec<String>,
}

impl NameConstraints {
    /// DER of the `NameConstraints` extension value.
    pub(crate) fn to_der(&self) -> Vec<u8> {
        fn subtree(tag: u8, value: &str) -> Vec<u8> {
            der::tlv(TAG_SEQUENCE, &der::tlv(tag, value.as_bytes()))
        }
        let mut permitted = Vec::new();
        for name in &self.permitted_dns {
            permitted.extend_from_slice(&subtree(context_primitive(2), name));
        }
        for host in &self.permitted_uri_hosts {
            permitted.extend_from_slice(&subtree(context_primitive(6), host));
        }
        let mut excluded = Vec::new();
        for name in &self.excluded_dns {
            excluded.extend_from_slice(&subtree(context_primitive(2), name));
        }
        let mut content = Vec::new();
        if !permitted.is_empty() {
            content.extend_from_slice(&der::tlv(context_constructed(0), &permitted));
        }
        if !excluded.is_empty() {
            content.extend_from_slice(&der::tlv(context_constructed(1), &excluded));
        }
        der::tlv(TAG_SEQUENCE, &content)
    }
}

/// DER of an `AuthorityInfoAccessSyntax` value: OCSP entries first, then caIssuers.
pub(crate) fn authority_info_access_der(ocsp: &[String], ca_issuers: &[String]) -> Vec<u8> {
    let mut content = Vec::new();
    for (method, urls) in [(oid::AD_OCSP, ocsp), (oid::AD_CA_ISSUERS, ca_issuers)] {
        for url in urls {
            content.extend_from_slice(&der::sequence(&[
                &der::oid(method),
                &der::tlv(context_primitive(6), url.as_bytes()),
            ]));
        }
    }
    der::tlv(TAG_SEQUENCE, &content)
}

/// Everything that goes into a CA certificate, decided by the caller; the profile
/// decides the rest.
#[derive(Clone, Debug)]
pub struct CertificateTemplate {
    /// Which profile to apply.
    pub profile: CertificateProfile,
    /// The subject name.
    pub subject: DistinguishedName,
    /// DER `SubjectPublicKeyInfo` of the subject key.
    pub subject_public_key_info: Vec<u8>,
    /// The serial number (use [`SerialNumber::random`]).
    pub serial: SerialNumber,
    /// Start of validity (truncated to whole seconds, UTC).
    pub not_before: OffsetDateTime,
    /// End of validity, inclusive (truncated to whole seconds, UTC).
    pub not_after: OffsetDateTime,
    /// CRL distribution point URLs (one distribution point listing them all).
    pub crl_distribution_points: Vec<String>,
    /// AIA caIssuers URLs.
    pub ca_issuers: Vec<String>,
    /// AIA OCSP URLs (empty for CA certificates by default: nothing online vouches for
    /// an intermediate, DESIGN §2).
    pub ocsp_responders: Vec<String>,
    /// Optional name constraints (intermediates only).
    pub name_constraints: Option<NameConstraints>,
    /// `None`: computed by RFC 7093 §2 method 1 (leftmost 160 bits of the SHA-256 of
    /// the subjectPublicKey bits); `Some`: used as given (cross-certificates keep the
    /// original's).
    pub subject_key_identifier: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_constraints_encode_permitted_then_excluded() {
        let constraints = NameConstraints {
            permitted_dns: vec!["example.com".into()],
            excluded_dns: vec!["bad.example.com".into()],
            permitted_uri_hosts: vec!["td.example.com".into()],
        };
        let der = constraints.to_der();
        let outer = der::parse_single(&der, TAG_SEQUENCE).unwrap();
        let parts = der::Reader::new(outer.content).read_all().unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].tag, 0xa0);
        assert_eq!(parts[1].tag, 0xa1);
        assert_eq!(NameConstraints::default().to_der(), vec![0x30, 0x00]);
    }
}
