//! `e_issuer_name_matches_issuer_subject`: the issuer name is the issuer's subject
//! name, byte for byte (path building compares names; byte equality avoids every
//! string-matching subtlety).

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_issuer_name_matches_issuer_subject",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.4",
    description: "the issuer field is byte-identical to the issuer certificate's subject",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    if input.raw.issuer.raw == input.issuer.subject_der() {
        Vec::new()
    } else {
        vec![format!(
            "issuer name is not the issuer's subject ({})",
            input.issuer.subject()
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn the_issuer_subject_passes() {
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn another_name_is_flagged() {
        let mut case = intermediate_case(crate::IntermediateUsage::Server);
        case.der = patch_tbs(&case.der, 3, &name("Someone Else").to_der());
        assert_flags(&LINT, &case, "not the issuer's subject");
    }
}
