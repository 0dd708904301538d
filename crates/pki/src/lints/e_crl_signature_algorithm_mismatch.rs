//! `e_crl_signature_algorithm_mismatch`: the TBSCertList `signature` and the outer
//! `signatureAlgorithm` are the same AlgorithmIdentifier.

use super::{CrlInput, CrlLint, Severity};

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_signature_algorithm_mismatch",
    severity: Severity::Error,
    citation: "RFC 5280 §5.1.1.2",
    description: "tbsCertList.signature equals signatureAlgorithm, byte for byte",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    if input.raw.inner_algorithm.raw == input.raw.signed.algorithm.raw {
        Vec::new()
    } else {
        vec!["the TBS signature algorithm differs from the outer signatureAlgorithm".into()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn equal_identifiers_pass() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Crl));
    }

    #[test]
    fn different_identifiers_are_flagged() {
        let case = crl_case(crate::CrlKind::Crl);
        let sha384 = [
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
        ];
        let case = with_crl_der(&case, patch_outer_algorithm(&case.der, &sha384));
        assert_crl_flags(&LINT, &case, "differs");
    }
}
