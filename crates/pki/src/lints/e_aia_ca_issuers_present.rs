//! `e_aia_ca_issuers_present`: intermediates and cross-certificates say where their
//! issuer's certificate is (authorityInfoAccess caIssuers), so paths can be built.

use x509_parser::extensions::ParsedExtension;

use super::{CertificateInput, CertificateLint, Severity, extensions_with};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_aia_ca_issuers_present",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.2.1; CA/B BR §7.1.2.10.3",
    description: "a non-root CA certificate has authorityInfoAccess with a caIssuers URI",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    if input.profile.is_root() {
        return Vec::new();
    }
    let found = extensions_with(input.parsed.extensions(), oid::AUTHORITY_INFO_ACCESS).any(|e| {
        matches!(e.parsed_extension(), ParsedExtension::AuthorityInfoAccess(aia)
            if aia.accessdescs.iter().any(|d| d.access_method.as_bytes() == oid::AD_CA_ISSUERS))
    });
    if found {
        Vec::new()
    } else {
        vec!["authorityInfoAccess has no caIssuers entry".into()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn a_profile_intermediate_passes() {
        assert_clean(
            &LINT,
            &intermediate_case(crate::IntermediateUsage::Workload),
        );
    }

    #[test]
    fn a_missing_ca_issuers_is_flagged() {
        let case = bad_intermediate(|params| params.custom_extensions.clear());
        assert_flags(&LINT, &case, "no caIssuers");
    }
}
