//! `e_root_no_extended_key_usage`: a root carries no extendedKeyUsage (it would
//! constrain the whole hierarchy; usages belong to the intermediates).

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_root_no_extended_key_usage",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.12; CA/B BR §7.1.2.1.2",
    description: "a root certificate has no extendedKeyUsage",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    if input.profile.is_root() && input.raw.extension(oid::EXTENDED_KEY_USAGE).is_some() {
        vec!["root certificate has an extendedKeyUsage extension".into()]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn a_profile_root_passes() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn a_root_with_eku_is_flagged() {
        let case = bad_root(|params| {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        });
        assert_flags(&LINT, &case, "extendedKeyUsage");
    }
}
