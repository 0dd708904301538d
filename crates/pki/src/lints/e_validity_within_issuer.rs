//! `e_validity_within_issuer`: a certificate's validity lies inside its issuer's, so
//! it never outlives the CA that vouches for it.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_validity_within_issuer",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.5, §6.1.3",
    description: "notBefore and notAfter lie within the issuer's validity",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let validity = input.parsed.validity();
    let mut messages = Vec::new();
    if validity.not_before.to_datetime() < input.issuer.not_before() {
        messages.push(format!(
            "notBefore {} is before the issuer's notBefore {}",
            validity.not_before,
            input.issuer.not_before()
        ));
    }
    if validity.not_after.to_datetime() > input.issuer.not_after() {
        messages.push(format!(
            "notAfter {} is after the issuer's notAfter {}",
            validity.not_after,
            input.issuer.not_after()
        ));
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use time::Duration;

    #[test]
    fn nested_validity_passes() {
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn outliving_the_issuer_is_flagged() {
        let case = bad_intermediate(|params| {
            params.not_before -= Duration::days(1);
            params.not_after += Duration::days(365 * 16);
        });
        assert_flags(&LINT, &case, "after the issuer's notAfter");
        assert_flags(&LINT, &case, "before the issuer's notBefore");
    }
}
