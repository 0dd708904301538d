//! `e_name_constraints_subtree_bounds`: in name constraints, minimum is zero (absent)
//! and maximum is absent.

use super::{CertificateInput, CertificateLint, Severity, parse_name_constraints};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_name_constraints_subtree_bounds",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.10",
    description: "GeneralSubtree minimum and maximum are absent",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(extension) = input.raw.extension(oid::NAME_CONSTRAINTS) else {
        return Vec::new();
    };
    let Ok(constraints) = parse_name_constraints(extension.value) else {
        return Vec::new(); // e_name_constraints_not_empty reports it
    };
    let subtrees = constraints
        .permitted
        .iter()
        .chain(constraints.excluded.iter())
        .flatten();
    let mut messages = Vec::new();
    for subtree in subtrees {
        if subtree.has_minimum {
            messages.push("a subtree encodes minimum (must be absent, i.e. 0)".into());
        }
        if subtree.has_maximum {
            messages.push("a subtree encodes maximum (must be absent)".into());
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der;
    use crate::lints::testing::*;

    #[test]
    fn profile_constraints_pass() {
        let case = intermediate_with(|t| t.name_constraints = Some(sample_constraints()));
        assert_clean(&LINT, &case);
    }

    #[test]
    fn a_maximum_is_flagged() {
        let subtree = der::sequence(&[&der::tlv(0x82, b"example.com"), &der::tlv(0x81, &[1])]);
        let value = der::sequence(&[&der::tlv(0xa0, &subtree)]);
        let case = bad_intermediate(|params| {
            params
                .custom_extensions
                .push(raw_name_constraints_extension(value));
        });
        assert_flags(&LINT, &case, "maximum");
    }
}
