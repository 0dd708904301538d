//! `e_leaf_name_constraints_absent`: nameConstraints belongs in CA certificates only.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_name_constraints_absent",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.10",
    description: "a leaf has no nameConstraints extension",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match input.raw.extension(oid::NAME_CONSTRAINTS) {
        Some(_) => vec!["nameConstraints on a leaf (it is for CA certificates only)".into()],
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::lints::testing::*;

    #[test]
    fn leaves_pass() {
        assert_clean(&LINT, &leaf_case(LeafKind::Server));
    }

    #[test]
    fn name_constraints_are_flagged() {
        let case = bad_leaf(LeafKind::Server, |params| {
            params
                .custom_extensions
                .push(name_constraints_extension(&sample_constraints(), true));
        });
        assert_flags(&LINT, &case, "nameConstraints on a leaf");
    }
}
