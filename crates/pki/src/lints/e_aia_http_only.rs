//! `e_aia_http_only`: authorityInfoAccess locations (caIssuers and OCSP) are plain
//! `http://` URIs, which relying parties fetch without a TLS dependency.

use x509_parser::extensions::ParsedExtension;

use super::{CertificateInput, CertificateLint, Severity, check_http_url, extensions_with, uri_of};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_aia_http_only",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.2.1; RFC 6960 §A.1",
    description: "every authorityInfoAccess location is an http:// URI",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let mut messages = Vec::new();
    for extension in extensions_with(input.parsed.extensions(), oid::AUTHORITY_INFO_ACCESS) {
        let ParsedExtension::AuthorityInfoAccess(aia) = extension.parsed_extension() else {
            messages.push("authorityInfoAccess does not parse".into());
            continue;
        };
        if aia.accessdescs.is_empty() {
            messages.push("authorityInfoAccess is empty".into());
        }
        for description in &aia.accessdescs {
            if let Err(e) = uri_of(&description.access_location).and_then(check_http_url) {
                messages.push(format!("authorityInfoAccess location {e}"));
            }
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use crate::profile::authority_info_access_der;

    #[test]
    fn http_passes() {
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
    }

    #[test]
    fn https_is_flagged() {
        let case = bad_intermediate(|params| {
            params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                authority_info_access_der(&[], &["https://ca.example.com/root.cer".into()]),
            )];
        });
        assert_flags(&LINT, &case, "is not an http:// URL");
    }
}
