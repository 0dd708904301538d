//! `e_ca_basic_constraints_critical`: a CA certificate has basicConstraints, marked
//! critical, with cA TRUE.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ca_basic_constraints_critical",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.9",
    description: "basicConstraints is present, critical, with cA TRUE",
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
        Ok(Some(constraints)) if constraints.value.ca => {}
        Ok(_) => messages.push("basicConstraints cA is not TRUE".into()),
        Err(e) => messages.push(format!("basicConstraints: {e}")),
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der;
    use crate::lints::testing::*;

    #[test]
    fn profile_certificates_pass() {
        assert_clean(&LINT, &root_case());
        assert_clean(
            &LINT,
            &intermediate_case(crate::IntermediateUsage::Workload),
        );
    }

    #[test]
    fn non_critical_or_non_ca_is_flagged() {
        let mut case = root_case();
        let value = der::sequence(&[&[0x01, 0x01, 0xff]]);
        case.der = set_extension(
            &case.der,
            oid::BASIC_CONSTRAINTS,
            Some(der::extension(oid::BASIC_CONSTRAINTS, false, &value)),
        );
        assert_flags(&LINT, &case, "not critical");
        let case = bad_root(|params| params.is_ca = rcgen::IsCa::ExplicitNoCa);
        assert_flags(&LINT, &case, "cA is not TRUE");
        let case = bad_root(|params| params.is_ca = rcgen::IsCa::NoCa);
        assert_flags(&LINT, &case, "absent");
    }
}
