//! `w_leaf_revocation_pointers_absent`: a leaf says where its revocation status is
//! published — a CRL distribution point or an OCSP responder (DESIGN §4 "Issuance"
//! step 4). Without either, relying parties cannot learn that it was revoked before
//! it expires.

use x509_parser::extensions::ParsedExtension;

use super::{CertificateInput, CertificateLint, Severity, extensions_with};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "w_leaf_revocation_pointers_absent",
    severity: Severity::Warning,
    citation: "RFC 5280 §4.2.1.13, §4.2.2.1; RFC 6960 §3.1",
    description: "a leaf has neither cRLDistributionPoints nor an OCSP responder in authorityInfoAccess",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let extensions = input.parsed.extensions();
    let has_crl = extensions_with(extensions, oid::CRL_DISTRIBUTION_POINTS)
        .next()
        .is_some();
    let has_ocsp = extensions_with(extensions, oid::AUTHORITY_INFO_ACCESS).any(|e| {
        matches!(e.parsed_extension(), ParsedExtension::AuthorityInfoAccess(aia)
            if aia.accessdescs.iter().any(|d| d.access_method.as_bytes() == oid::AD_OCSP))
    });
    if has_crl || has_ocsp {
        Vec::new()
    } else {
        vec!["no CRL distribution point and no OCSP responder: revocation cannot be checked".into()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::lints::testing::*;

    #[test]
    fn either_pointer_passes() {
        assert_clean(&LINT, &leaf_case(LeafKind::Server));
        let case = leaf_case_with(LeafKind::Server, |t| t.crl_distribution_points.clear());
        assert_clean(&LINT, &case);
        let case = leaf_case_with(LeafKind::Server, |t| t.ocsp_responders.clear());
        assert_clean(&LINT, &case);
    }

    #[test]
    fn neither_is_flagged() {
        let case = leaf_case_with(LeafKind::Workload, |t| {
            t.crl_distribution_points.clear();
            t.ocsp_responders.clear();
        });
        assert_flags(&LINT, &case, "revocation cannot be checked");
    }
}
