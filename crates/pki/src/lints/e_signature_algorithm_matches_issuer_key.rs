//! `e_signature_algorithm_matches_issuer_key`: the signature algorithm is the one the
//! issuer key signs with, encoded as Carimbo encodes it.

use super::{CertificateInput, CertificateLint, Severity};
use crate::signature_algorithm_identifier;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_signature_algorithm_matches_issuer_key",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.3",
    description: "the signature AlgorithmIdentifier is exactly the issuer key's algorithm (RFC 5758, RFC 4055, RFC 8410 encodings)",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
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
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
    }

    #[test]
    fn another_algorithm_is_flagged() {
        let mut case = root_case();
        let sha384 = [
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
        ];
        case.der = patch_tbs(&case.der, 2, &sha384);
        assert_flags(&LINT, &case, "ecdsa-p256-sha256");
    }
}
