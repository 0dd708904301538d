//! `e_subject_public_key_allowed`: the subject key is one Carimbo accepts: ECDSA P-256
//! or P-384 (named curve), Ed25519, or RSA with a 3072- or 4096-bit modulus.

use super::{CertificateInput, CertificateLint, Severity};
use crate::algorithm::accepted_key_kind;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_subject_public_key_allowed",
    severity: Severity::Error,
    citation: "RFC 5480 §2; RFC 8410 §4; RFC 3279 §2.3.1",
    description: "the subject public key is P-256, P-384, Ed25519 or RSA 3072/4096",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match accepted_key_kind(input.raw.spki.raw) {
        Some(_) => Vec::new(),
        None => vec!["subject public key is not P-256, P-384, Ed25519 or RSA 3072/4096".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn p256_passes() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn a_small_rsa_key_is_flagged() {
        let mut case = intermediate_case(crate::IntermediateUsage::Server);
        let spki = carimbo_kms::encoding::rsa_spki(&[0xc5; 256], &[1, 0, 1]);
        case.der = patch_tbs(&case.der, 6, &spki);
        assert_flags(&LINT, &case, "not P-256");
    }
}
