//! `e_aia_not_critical`: authorityInfoAccess is never critical.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_aia_not_critical",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.2.1",
    description: "authorityInfoAccess is marked non-critical",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match input.raw.extension(oid::AUTHORITY_INFO_ACCESS) {
        Some(extension) if extension.critical => vec!["authorityInfoAccess is critical".into()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der;
    use crate::lints::testing::*;

    #[test]
    fn a_profile_intermediate_passes() {
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
    }

    #[test]
    fn a_critical_aia_is_flagged() {
        let mut case = intermediate_case(crate::IntermediateUsage::Server);
        let value = extension_value(&case.der, oid::AUTHORITY_INFO_ACCESS);
        case.der = set_extension(
            &case.der,
            oid::AUTHORITY_INFO_ACCESS,
            Some(der::extension(oid::AUTHORITY_INFO_ACCESS, true, &value)),
        );
        assert_flags(&LINT, &case, "critical");
    }
}
