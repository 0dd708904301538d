//! `e_leaf_validity_max_for_profile`: a leaf lives no longer than its profile's
//! maximum lifetime plus the backdate (short-lived certificates, DESIGN §6 invariant
//! 3: "TTL within policy").

use super::{CertificateInput, CertificateLint, Severity};
use crate::error::show_duration;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_validity_max_for_profile",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.5",
    description: "notAfter − notBefore is at most the profile's maximum lifetime plus its backdate",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(profile) = input.profile.leaf() else {
        return Vec::new();
    };
    let validity = input.parsed.validity();
    let lifetime = validity.not_after.to_datetime() - validity.not_before.to_datetime();
    let backdate = profile.backdate.max(time::Duration::ZERO);
    if lifetime <= profile.max_ttl + backdate {
        Vec::new()
    } else {
        vec![format!(
            "validity lasts {}, more than the {} profile's maximum {} plus {} backdate",
            show_duration(lifetime),
            profile.kind,
            show_duration(profile.max_ttl),
            show_duration(backdate)
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::lints::testing::*;
    use time::Duration;

    #[test]
    fn the_longest_allowed_lifetime_passes() {
        let case = leaf_case_with(LeafKind::Server, |template| {
            template.not_after = LEAF_NOW + Duration::hours(72);
        });
        assert_clean(&LINT, &case);
    }

    #[test]
    fn a_longer_lifetime_is_flagged() {
        let case = bad_leaf(LeafKind::Workload, |params| {
            params.not_after += Duration::hours(48);
        });
        assert_flags(&LINT, &case, "more than the workload profile's maximum 48h");
    }
}
