//! `e_ca_path_len_matches_profile`: the pathLenConstraint is the profile's: none for
//! a root, 0 for an issuing intermediate (it issues end-entity certificates only), as
//! given for a cross-certificate.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ca_path_len_matches_profile",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.9",
    description: "pathLenConstraint is absent for roots, 0 for intermediates, as configured for cross-certificates",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Ok(Some(constraints)) = input.parsed.basic_constraints() else {
        return Vec::new(); // e_ca_basic_constraints_critical reports it
    };
    let found = constraints.value.path_len_constraint;
    let expected = input.profile.path_len().map(u32::from);
    if found == expected {
        return Vec::new();
    }
    let show = |value: Option<u32>| value.map_or("absent".to_string(), |n| n.to_string());
    vec![format!(
        "pathLenConstraint is {}, the profile requires {}",
        show(found),
        show(expected)
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn profile_path_lengths_pass() {
        assert_clean(&LINT, &root_case());
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
    }

    #[test]
    fn an_unconstrained_intermediate_is_flagged() {
        let case = bad_intermediate(|params| {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        });
        assert_flags(
            &LINT,
            &case,
            "pathLenConstraint is absent, the profile requires 0",
        );
        let case = bad_root(|params| {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(1));
        });
        assert_flags(&LINT, &case, "is 1");
    }
}
