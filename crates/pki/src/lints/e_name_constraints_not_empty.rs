//! `e_name_constraints_not_empty`: a nameConstraints extension has permitted or
//! excluded subtrees, and neither list, when present, is empty.

use super::{CertificateInput, CertificateLint, Severity, parse_name_constraints};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_name_constraints_not_empty",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.10",
    description: "nameConstraints has permittedSubtrees or excludedSubtrees, each with at least one subtree",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(extension) = input.raw.extension(oid::NAME_CONSTRAINTS) else {
        return Vec::new();
    };
    let constraints = match parse_name_constraints(extension.value) {
        Ok(constraints) => constraints,
        Err(e) => return vec![format!("nameConstraints does not parse: {e}")],
    };
    let mut messages = Vec::new();
    if constraints.permitted.is_none() && constraints.excluded.is_none() {
        messages.push("nameConstraints is an empty sequence".into());
    }
    if constraints.permitted.as_ref().is_some_and(Vec::is_empty) {
        messages.push("permittedSubtrees is present but empty".into());
    }
    if constraints.excluded.as_ref().is_some_and(Vec::is_empty) {
        messages.push("excludedSubtrees is present but empty".into());
    }
    messages
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
    fn empty_constraints_are_flagged() {
        let case = bad_intermediate(|params| {
            params.custom_extensions.push(name_constraints_extension(
                &crate::NameConstraints::default(),
                true,
            ));
        });
        assert_flags(&LINT, &case, "empty sequence");
        let case = bad_intermediate(|params| {
            params
                .custom_extensions
                .push(raw_name_constraints_extension(vec![0x30, 0x02, 0xa0, 0x00]));
        });
        assert_flags(&LINT, &case, "permittedSubtrees is present but empty");
    }
}
