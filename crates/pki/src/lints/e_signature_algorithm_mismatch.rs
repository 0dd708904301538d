//! `e_signature_algorithm_mismatch`: the TBS `signature` field and the outer
//! `signatureAlgorithm` are the same AlgorithmIdentifier.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_signature_algorithm_mismatch",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.1.2",
    description: "tbsCertificate.signature equals signatureAlgorithm, byte for byte",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
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
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn different_identifiers_are_flagged() {
        let mut case = root_case();
        // ecdsa-with-SHA384 outside, SHA-256 inside.
        case.der = patch_outer_algorithm(
            &case.der,
            &[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
            ],
        );
        assert_flags(&LINT, &case, "differs");
    }
}
