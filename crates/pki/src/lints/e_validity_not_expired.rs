//! `e_validity_not_expired`: the certificate has not already expired.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_validity_not_expired",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.5",
    description: "notAfter is in the future",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let not_after = input.parsed.validity().not_after.to_datetime();
    if not_after > input.now {
        Vec::new()
    } else {
        vec![format!(
            "notAfter {not_after} is not after now ({})",
            input.now
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use time::Duration;

    #[test]
    fn a_current_certificate_passes() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn an_expired_certificate_is_flagged() {
        let case = root_case();
        let later = NOW + Duration::days(365 * 30);
        let messages = run_at(&LINT, &case, later);
        assert!(messages.iter().any(|m| m.contains("is not after now")));
    }
}
