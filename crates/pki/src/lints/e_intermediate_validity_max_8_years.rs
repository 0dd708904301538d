//! `e_intermediate_validity_max_8_years`: intermediates and cross-certificates are
//! valid for at most 8 years (Carimbo's trust model).

use super::{CertificateInput, CertificateLint, Severity, add_years};
use crate::INTERMEDIATE_MAX_YEARS;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_intermediate_validity_max_8_years",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.5",
    description: "an intermediate's notAfter is at most 8 years after its notBefore",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    if input.profile.is_root() {
        return Vec::new();
    }
    let validity = input.parsed.validity();
    let not_before = validity.not_before.to_datetime();
    if validity.not_after.to_datetime() <= add_years(not_before, INTERMEDIATE_MAX_YEARS) {
        Vec::new()
    } else {
        vec![format!(
            "validity ends {}, more than {INTERMEDIATE_MAX_YEARS} years after {not_before}",
            validity.not_after
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use time::Duration;

    #[test]
    fn five_years_pass() {
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
    }

    #[test]
    fn nine_years_are_flagged() {
        let case = bad_intermediate(|params| {
            params.not_after = params.not_before + Duration::days(365 * 9);
        });
        assert_flags(&LINT, &case, "more than 8 years");
    }
}
