//! `e_ocsp_responder_not_ca`: a delegated OCSP responder certificate is an end-entity
//! certificate — basicConstraints absent, or cA FALSE without pathLenConstraint — so
//! that its key, which lives online, can never certify anything.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ocsp_responder_not_ca",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.9; RFC 6960 §4.2.2.2",
    description: "basicConstraints is absent or says cA FALSE with no pathLenConstraint",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let mut messages = Vec::new();
    match input.parsed.basic_constraints() {
        Ok(Some(constraints)) => {
            if constraints.value.ca {
                messages.push("basicConstraints cA is TRUE on an OCSP responder".into());
            }
            if constraints.value.path_len_constraint.is_some() {
                messages.push("basicConstraints has a pathLenConstraint".into());
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
    use crate::lints::testing::*;

    #[test]
    fn a_responder_passes_with_or_without_basic_constraints() {
        assert_clean(&LINT, &responder_case());
        let case = bad_responder(|params| params.is_ca = rcgen::IsCa::NoCa);
        assert_clean(&LINT, &case);
    }

    #[test]
    fn a_ca_is_flagged() {
        let case = bad_responder(|params| {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        });
        assert_flags(&LINT, &case, "cA is TRUE");
        assert_flags(&LINT, &case, "pathLenConstraint");
    }
}
