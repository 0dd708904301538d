//! `e_leaf_basic_constraints_not_ca`: a leaf says it is not a CA — basicConstraints
//! present, critical, cA FALSE, no pathLenConstraint — so that no verifier can take it
//! for one (SPIFFE X509-SVID §4.1 requires cA FALSE on leaf SVIDs).

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_basic_constraints_not_ca",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.9; SPIFFE X509-SVID §4.1",
    description: "basicConstraints is present, critical, with cA FALSE and no pathLenConstraint",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(raw) = input.raw.extension(oid::BASIC_CONSTRAINTS) else {
        return vec!["basicConstraints is absent".into()];
    };
    let mut messages = Vec::new();
    if !raw.critical {
        messages.push("basicConstraints is not critical".into());
    }
    match input.parsed.basic_constraints() {
        Ok(Some(constraints)) => {
            if constraints.value.ca {
                messages.push("basicConstraints cA is TRUE on a leaf".into());
            }
            if constraints.value.path_len_constraint.is_some() {
                messages.push("basicConstraints has a pathLenConstraint on a leaf".into());
            }
        }
        Ok(None) => {}
        Err(e) => messages.push(format!("basicConstraints: {e}")),
    }
    messages
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
    fn ca_or_missing_constraints_are_flagged() {
        let case = bad_leaf(LeafKind::Workload, |params| {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        });
        assert_flags(&LINT, &case, "cA is TRUE");
        assert_flags(&LINT, &case, "pathLenConstraint");
        let case = bad_leaf(LeafKind::Server, |params| params.is_ca = rcgen::IsCa::NoCa);
        assert_flags(&LINT, &case, "absent");
    }
}
