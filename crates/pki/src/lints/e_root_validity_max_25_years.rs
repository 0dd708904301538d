//! `e_root_validity_max_25_years`: a root certificate is valid for at most 25 years
//! (Carimbo's trust model).

use super::{CertificateInput, CertificateLint, Severity, add_years};
use crate::ROOT_MAX_YEARS;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_root_validity_max_25_years",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.5; CA/B BR §6.3.2",
    description: "a root's notAfter is at most 25 years after its notBefore",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    if !input.profile.is_root() {
        return Vec::new();
    }
    let validity = input.parsed.validity();
    let not_before = validity.not_before.to_datetime();
    let limit = add_years(not_before, ROOT_MAX_YEARS);
    if validity.not_after.to_datetime() <= limit {
        Vec::new()
    } else {
        vec![format!(
            "root validity ends {}, more than {ROOT_MAX_YEARS} years after {not_before}",
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
    fn twenty_years_pass() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn thirty_years_are_flagged() {
        let case = bad_root(|params| {
            params.not_after = params.not_before + Duration::days(365 * 30);
        });
        assert_flags(&LINT, &case, "more than 25 years");
    }
}
