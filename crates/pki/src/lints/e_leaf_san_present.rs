//! `e_leaf_san_present`: every leaf names its subject in a subjectAltName extension
//! with at least one name (DESIGN §6 invariant 3; RFC 5280 requires the SAN when the
//! subject is empty).

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_san_present",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.6, §4.2.1.6",
    description: "subjectAltName is present with at least one name",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    if input.raw.extension(oid::SUBJECT_ALT_NAME).is_none() {
        return vec!["subjectAltName is absent".into()];
    }
    match input.parsed.subject_alternative_name() {
        Ok(Some(san)) if !san.value.general_names.is_empty() => Vec::new(),
        Ok(_) => vec!["subjectAltName has no names".into()],
        Err(e) => vec![format!("subjectAltName: {e}")],
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
    fn a_missing_san_is_flagged() {
        let case = bad_leaf(LeafKind::Server, |params| params.subject_alt_names.clear());
        assert_flags(&LINT, &case, "absent");
    }
}
