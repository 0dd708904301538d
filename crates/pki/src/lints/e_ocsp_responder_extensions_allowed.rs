//! `e_ocsp_responder_extensions_allowed`: a delegated OCSP responder certificate has
//! the profile's extensions only — basicConstraints, keyUsage, extendedKeyUsage,
//! subject and authority key identifiers, id-pkix-ocsp-nocheck. In particular no
//! subjectAltName (the responder is no network peer), and no CRL distribution point
//! or authorityInfoAccess: with id-pkix-ocsp-nocheck nobody checks its revocation
//! (RFC 6960 §4.2.2.2.1), and clients find its chain through the response.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::{oid, oid_to_string};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ocsp_responder_extensions_allowed",
    severity: Severity::Error,
    citation: "RFC 6960 §4.2.2.2, §4.2.2.2.1; RFC 5280 §4.2",
    description: "the only extensions are basicConstraints, keyUsage, extendedKeyUsage, the key identifiers and id-pkix-ocsp-nocheck",
    check,
};

const ALLOWED: &[&[u8]] = &[
    oid::BASIC_CONSTRAINTS,
    oid::KEY_USAGE,
    oid::EXTENDED_KEY_USAGE,
    oid::SUBJECT_KEY_IDENTIFIER,
    oid::AUTHORITY_KEY_IDENTIFIER,
    oid::OCSP_NOCHECK,
];

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    input
        .raw
        .extensions
        .iter()
        .filter(|e| !ALLOWED.contains(&e.oid))
        .map(|e| {
            let name = match e.oid {
                oid::SUBJECT_ALT_NAME => "subjectAltName".to_string(),
                oid::CRL_DISTRIBUTION_POINTS => "cRLDistributionPoints".to_string(),
                oid::AUTHORITY_INFO_ACCESS => "authorityInfoAccess".to_string(),
                other => oid_to_string(other),
            };
            format!("extension {name} is not part of the OCSP responder profile")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn a_responder_passes() {
        assert_clean(&LINT, &responder_case());
    }

    #[test]
    fn names_and_revocation_pointers_are_flagged() {
        let case = bad_responder(|params| {
            params.subject_alt_names = vec![rcgen::SanType::DnsName(ia5("ocsp.example.com"))];
        });
        assert_flags(&LINT, &case, "subjectAltName is not part");
        let case = bad_responder(|params| {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![LEAF_CRL_URL.into()],
            }];
        });
        assert_flags(&LINT, &case, "cRLDistributionPoints is not part");
    }
}
