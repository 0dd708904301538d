//! `e_leaf_subject_empty`: Carimbo leaves carry their identity in the subjectAltName
//! only; the subject is empty (RFC 5280 §4.1.2.6 allows it when the SAN is critical).
//! A CN would be one more copy of a name to authorise, and verifiers no longer read it
//! (RFC 9525, which obsoletes RFC 6125, dropped the CN fallback).

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_subject_empty",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.6, §4.2.1.6",
    description: "the subject is empty: the identity is in the subjectAltName only",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    if input.raw.subject.content.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "subject is not empty ({}); leaves name their subject in the subjectAltName",
            input.parsed.subject()
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::lints::testing::*;

    #[test]
    fn empty_subjects_pass() {
        for kind in LeafKind::ALL {
            assert_clean(&LINT, &leaf_case(kind));
        }
    }

    #[test]
    fn a_named_subject_is_flagged() {
        let mut case = leaf_case(LeafKind::Server);
        case.der = patch_tbs(&case.der, 5, &name("www.example.com").to_der());
        assert_flags(&LINT, &case, "subject is not empty");
    }
}
