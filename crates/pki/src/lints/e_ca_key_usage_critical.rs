//! `e_ca_key_usage_critical`: a CA certificate has keyUsage, marked critical.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ca_key_usage_critical",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.3",
    description: "keyUsage is present and critical",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match input.raw.extension(oid::KEY_USAGE) {
        None => vec!["keyUsage is absent".into()],
        Some(extension) if !extension.critical => vec!["keyUsage is not critical".into()],
        Some(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der;
    use crate::lints::testing::*;

    #[test]
    fn profile_certificates_pass() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn missing_or_non_critical_key_usage_is_flagged() {
        let case = bad_root(|params| params.key_usages.clear());
        assert_flags(&LINT, &case, "absent");
        let mut case = root_case();
        let value = extension_value(&case.der, oid::KEY_USAGE);
        case.der = set_extension(
            &case.der,
            oid::KEY_USAGE,
            Some(der::extension(oid::KEY_USAGE, false, &value)),
        );
        assert_flags(&LINT, &case, "not critical");
    }
}
