//! `e_name_constraints_critical`: name constraints are always critical.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_name_constraints_critical",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.10",
    description: "nameConstraints, when present, is marked critical",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match input.raw.extension(oid::NAME_CONSTRAINTS) {
        Some(extension) if !extension.critical => vec!["nameConstraints is not critical".into()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn profile_constraints_pass() {
        let case = intermediate_with(|t| t.name_constraints = Some(sample_constraints()));
        assert_clean(&LINT, &case);
    }

    #[test]
    fn non_critical_constraints_are_flagged() {
        let case = bad_intermediate(|params| {
            params
                .custom_extensions
                .push(name_constraints_extension(&sample_constraints(), false));
        });
        assert_flags(&LINT, &case, "not critical");
    }
}
