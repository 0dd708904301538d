//! `w_ca_aia_ocsp`: an OCSP URL in an intermediate promises an online answer about
//! the intermediate, but in Carimbo's trust model only the offline root's ARL vouches
//! for intermediates.

use x509_parser::extensions::ParsedExtension;

use super::{CertificateInput, CertificateLint, Severity, extensions_with};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "w_ca_aia_ocsp",
    severity: Severity::Warning,
    citation: "RFC 5280 §4.2.2.1; RFC 6960 §2.6",
    description: "a CA certificate names an OCSP responder, though only the root ARL covers CA certificates",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let has_ocsp =
        extensions_with(input.parsed.extensions(), oid::AUTHORITY_INFO_ACCESS).any(|e| {
            matches!(e.parsed_extension(), ParsedExtension::AuthorityInfoAccess(aia)
            if aia.accessdescs.iter().any(|d| d.access_method.as_bytes() == oid::AD_OCSP))
        });
    if has_ocsp && !input.profile.is_root() {
        vec!["authorityInfoAccess names an OCSP responder for a CA certificate".into()]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use crate::profile::authority_info_access_der;

    #[test]
    fn a_profile_intermediate_passes() {
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
    }

    #[test]
    fn an_ocsp_url_is_flagged() {
        let case = bad_intermediate(|params| {
            params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                authority_info_access_der(
                    &["http://ocsp.example.com".into()],
                    &[CA_ISSUERS_URL.into()],
                ),
            )];
        });
        assert_flags(&LINT, &case, "OCSP responder");
    }
}
