//! `e_leaf_san_critical_when_subject_empty`: with an empty subject the whole identity
//! is in the subjectAltName, which must then be critical, so that a verifier that
//! cannot read it rejects the certificate rather than accepting a nameless one.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_san_critical_when_subject_empty",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.6, §4.2.1.6",
    description: "subjectAltName is critical when the subject is empty",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match input.raw.extension(oid::SUBJECT_ALT_NAME) {
        Some(san) if input.raw.subject.content.is_empty() && !san.critical => {
            vec!["the subject is empty but subjectAltName is not critical".into()]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::lints::testing::*;

    #[test]
    fn leaves_pass() {
        for kind in LeafKind::ALL {
            assert_clean(&LINT, &leaf_case(kind));
        }
    }

    #[test]
    fn a_non_critical_san_is_flagged() {
        // rcgen writes a non-critical SAN for a named subject; the subject is then
        // replaced by the empty one.
        let case = bad_leaf(LeafKind::Workload, |params| {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "workload");
        });
        assert_flags(&LINT, &case, "not critical");
    }
}
