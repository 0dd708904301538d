//! `e_arl_next_update_within_one_year`: the root's ARL is reissued at least yearly,
//! so nextUpdate is at most one year after thisUpdate.

use super::{CrlInput, CrlLint, Severity, add_years};
use crate::CrlKind;

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_arl_next_update_within_one_year",
    severity: Severity::Error,
    citation: "RFC 5280 §5.1.2.5; CA/B BR §4.9.7",
    description: "an ARL's nextUpdate is at most one year after its thisUpdate",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    if input.kind != CrlKind::Arl {
        return Vec::new();
    }
    let this_update = input.parsed.last_update().to_datetime();
    match input.parsed.next_update() {
        Some(next) if next.to_datetime() > add_years(this_update, 1) => vec![format!(
            "ARL nextUpdate {next} is more than one year after thisUpdate {this_update}"
        )],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use time::Duration;

    #[test]
    fn six_months_pass() {
        assert_crl_clean(&LINT, &crl_case(CrlKind::Arl));
    }

    #[test]
    fn two_years_are_flagged() {
        let case = bad_crl(CrlKind::Arl, true, |_, params| {
            params.next_update = params.this_update + Duration::days(730);
        });
        assert_crl_flags(&LINT, &case, "more than one year");
    }
}
