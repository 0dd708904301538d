//! `e_crl_issuer_name_matches`: the CRL issuer is the issuing CA's subject, byte for
//! byte (Carimbo CRLs are never indirect).

use super::{CrlInput, CrlLint, Severity};

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_issuer_name_matches",
    severity: Severity::Error,
    citation: "RFC 5280 §5.1.2.3",
    description: "the CRL issuer field is byte-identical to the issuer certificate's subject",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    if input.raw.issuer.raw == input.issuer.subject_der() {
        Vec::new()
    } else {
        vec![format!(
            "CRL issuer is not the issuer's subject ({})",
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
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Arl));
    }

    #[test]
    fn another_name_is_flagged() {
        let case = crl_case(crate::CrlKind::Arl);
        let case = with_crl_der(&case, patch_tbs(&case.der, 2, &name("Other").to_der()));
        assert_crl_flags(&LINT, &case, "not the issuer's subject");
    }
}
