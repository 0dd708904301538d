//! `e_validity_order`: notBefore is before notAfter.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_validity_order",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.5",
    description: "notBefore is earlier than notAfter",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let validity = input.parsed.validity();
    if validity.not_before < validity.not_after {
        Vec::new()
    } else {
        vec![format!(
            "notBefore {} is not before notAfter {}",
            validity.not_before, validity.not_after
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use time::Duration;

    #[test]
    fn ordered_validity_passes() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn reversed_validity_is_flagged() {
        let case = bad_intermediate(|params| {
            params.not_after = params.not_before - Duration::days(1);
        });
        assert_flags(&LINT, &case, "is not before");
    }
}
