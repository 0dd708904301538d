//! `e_extension_duplicate`: no extension appears twice; and, as DER requires, a
//! non-critical extension omits the critical flag rather than encoding FALSE.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid_to_string;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_extension_duplicate",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2; X.690 §11.5",
    description: "each extension appears at most once, and critical FALSE is not encoded",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let extensions = &input.raw.extensions;
    let mut messages = Vec::new();
    for (index, extension) in extensions.iter().enumerate() {
        if extensions[..index].iter().any(|e| e.oid == extension.oid) {
            messages.push(format!(
                "extension {} appears more than once",
                oid_to_string(extension.oid)
            ));
        }
        if extension.explicit_false {
            messages.push(format!(
                "extension {} encodes critical FALSE (DEFAULT values are omitted in DER)",
                oid_to_string(extension.oid)
            ));
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::{self, oid};
    use crate::lints::testing::*;

    #[test]
    fn profile_certificates_pass() {
        assert_clean(
            &LINT,
            &intermediate_case(crate::IntermediateUsage::Workload),
        );
    }

    #[test]
    fn a_repeated_extension_is_flagged() {
        let mut case = root_case();
        let value = extension_value(&case.der, oid::SUBJECT_KEY_IDENTIFIER);
        case.der = append_extension(
            &case.der,
            der::extension(oid::SUBJECT_KEY_IDENTIFIER, false, &value),
        );
        assert_flags(&LINT, &case, "2.5.29.14 appears more than once");
    }
}
