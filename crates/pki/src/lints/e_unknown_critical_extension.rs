//! `e_unknown_critical_extension`: no critical extension that relying parties cannot
//! be expected to process (they must reject the certificate).

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::{oid, oid_to_string};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_unknown_critical_extension",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2",
    description: "every critical extension is one RFC 5280 defines",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    input
        .raw
        .extensions
        .iter()
        .filter(|e| e.critical && !oid::KNOWN_CERTIFICATE_EXTENSIONS.contains(&e.oid))
        .map(|e| format!("unknown extension {} is critical", oid_to_string(e.oid)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn profile_certificates_pass() {
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
    }

    #[test]
    fn a_critical_private_extension_is_flagged() {
        let case = bad_intermediate(|params| {
            let mut extension = rcgen::CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 99999, 1],
                vec![0x05, 0x00],
            );
            extension.set_criticality(true);
            params.custom_extensions.push(extension);
        });
        assert_flags(&LINT, &case, "1.3.6.1.4.1.99999.1 is critical");
    }
}
