//! `e_key_usage_basic_constraints_consistent`: keyCertSign is asserted if and only if
//! basicConstraints cA is TRUE.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_key_usage_basic_constraints_consistent",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.3, §4.2.1.9",
    description: "keyCertSign is set exactly when basicConstraints cA is TRUE",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Ok(Some(usage)) = input.parsed.key_usage() else {
        return Vec::new();
    };
    let is_ca = matches!(input.parsed.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    match (usage.value.key_cert_sign(), is_ca) {
        (true, false) => vec!["keyCertSign is asserted but basicConstraints cA is not TRUE".into()],
        (false, true) => vec!["basicConstraints cA is TRUE but keyCertSign is not asserted".into()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn profile_certificates_pass() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn key_cert_sign_without_ca_is_flagged() {
        let case = bad_root(|params| params.is_ca = rcgen::IsCa::ExplicitNoCa);
        assert_flags(&LINT, &case, "cA is not TRUE");
        let case = bad_root(|params| {
            params.key_usages = vec![rcgen::KeyUsagePurpose::CrlSign];
        });
        assert_flags(&LINT, &case, "keyCertSign is not asserted");
    }
}
