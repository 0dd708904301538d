//! `e_subject_key_identifier_present`: CA certificates carry a non-critical, non-empty
//! subjectKeyIdentifier.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_subject_key_identifier_present",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.2",
    description: "subjectKeyIdentifier is present, non-critical and non-empty",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(raw) = input.raw.extension(oid::SUBJECT_KEY_IDENTIFIER) else {
        return vec!["subjectKeyIdentifier is absent".into()];
    };
    let mut messages = Vec::new();
    if raw.critical {
        messages.push("subjectKeyIdentifier is critical".into());
    }
    // KeyIdentifier ::= OCTET STRING
    match crate::der::parse_single(raw.value, crate::der::TAG_OCTET_STRING) {
        Ok(identifier) if !identifier.content.is_empty() => {}
        Ok(_) => messages.push("subjectKeyIdentifier is empty".into()),
        Err(e) => messages.push(format!("subjectKeyIdentifier: {e}")),
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn profile_certificates_pass() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn empty_or_missing_identifiers_are_flagged() {
        let case = bad_intermediate(|params| {
            params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(Vec::new());
        });
        assert_flags(&LINT, &case, "empty");
        let mut case = root_case();
        case.der = set_extension(&case.der, oid::SUBJECT_KEY_IDENTIFIER, None);
        assert_flags(&LINT, &case, "absent");
    }
}
