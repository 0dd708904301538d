//! `e_leaf_subject_public_key_allowed`: a leaf's key is ECDSA P-256 or P-384 (named
//! curve, uncompressed point), RSA of 3072 to 8192 bits with an odd exponent of at
//! least 3, or Ed25519 where the profile allows it — the keys CSR validation accepts.

use super::{CertificateInput, CertificateLint, Severity};
use crate::leaf_key::leaf_key;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_subject_public_key_allowed",
    severity: Severity::Error,
    citation: "RFC 5480 §2; RFC 8410 §4; RFC 3279 §2.3.1; CA/B BR §6.1.5, §6.1.6",
    description: "the subject public key is P-256, P-384, RSA 3072–8192, or Ed25519 where the profile allows it",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(profile) = input.profile.leaf() else {
        return Vec::new();
    };
    match leaf_key(input.raw.spki.raw, profile) {
        Ok(_) => Vec::new(),
        Err(e) => vec![e.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use crate::throwaway::ThrowawayKey;
    use crate::{LeafKind, SubjectAltName};
    use carimbo_kms::SignatureAlgorithm;

    #[test]
    fn ec_keys_pass() {
        assert_clean(&LINT, &leaf_case(LeafKind::Server));
        let p384 = ThrowawayKey::generate(SignatureAlgorithm::EcdsaP384Sha384).unwrap();
        let template = leaf_template(LeafKind::Workload, p384.spki());
        let case = build_leaf(&template, leaf_issuer(LeafKind::Workload), |_| {});
        assert_clean(&LINT, &case);
    }

    #[test]
    fn ed25519_needs_the_profile_flag() {
        let ed25519 = ThrowawayKey::generate(SignatureAlgorithm::Ed25519).unwrap();
        let mut template = leaf_template(LeafKind::Workload, ed25519.spki());
        template.sans = vec![SubjectAltName::Uri(SPIFFE_ID.into())];
        let case = build_leaf(&template, leaf_issuer(LeafKind::Workload), |_| {});
        assert_flags(
            &LINT,
            &case,
            "Ed25519 (not allowed by the workload profile)",
        );
        template.profile.allow_ed25519 = true;
        let case = build_leaf(&template, leaf_issuer(LeafKind::Workload), |_| {});
        assert_clean(&LINT, &case);
    }
}
