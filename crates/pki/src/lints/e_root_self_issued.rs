//! `e_root_self_issued`: a root is self-issued and self-signed: its issuer is its
//! subject, byte for byte, and its key is the issuer key.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_root_self_issued",
    severity: Severity::Error,
    citation: "RFC 5280 §3.2, §6.1",
    description: "a root's issuer equals its subject and its public key is the issuer key",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    if !input.profile.is_root() {
        return Vec::new();
    }
    let mut messages = Vec::new();
    if input.raw.issuer.raw != input.raw.subject.raw {
        messages.push("root issuer name differs from its subject name".into());
    }
    if input.raw.spki.raw != input.issuer.subject_public_key_info() {
        messages.push("root public key is not the signing key".into());
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn a_profile_root_passes() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn a_root_with_another_subject_or_key_is_flagged() {
        let mut case = root_case();
        case.der = patch_tbs(&case.der, 5, &name("Not The Issuer").to_der());
        assert_flags(&LINT, &case, "differs from its subject");
        let mut case = root_case();
        case.der = patch_tbs(&case.der, 6, key().spki());
        assert_flags(&LINT, &case, "not the signing key");
    }
}
