//! `e_crl_signature_algorithm_matches_issuer_key`: the CRL's signature algorithm is
//! the one the issuer key signs with.

use super::{CrlInput, CrlLint, Severity};
use crate::signature_algorithm_identifier;

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_signature_algorithm_matches_issuer_key",
    severity: Severity::Error,
    citation: "RFC 5280 §5.1.2.2",
    description: "the signature AlgorithmIdentifier is exactly the issuer key's algorithm",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    let expected = signature_algorithm_identifier(input.issuer.algorithm());
    if input.raw.inner_algorithm.raw == expected.as_slice() {
        Vec::new()
    } else {
        vec![format!(
            "signature algorithm is not the issuer's {}",
            input.issuer.algorithm()
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn the_issuer_algorithm_passes() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Arl));
    }

    #[test]
    fn another_algorithm_is_flagged() {
        let case = crl_case(crate::CrlKind::Arl);
        let ed25519 = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
        let case = with_crl_der(&case, patch_tbs(&case.der, 1, &ed25519));
        assert_crl_flags(&LINT, &case, "not the issuer's");
    }
}
