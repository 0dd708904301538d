//! `e_leaf_key_usage_unexpected_bits`: Carimbo leaves assert digitalSignature only.
//! keyEncipherment is left out even for RSA server keys: it would permit TLS 1.2 RSA
//! key transport, which has no forward secrecy and is gone from TLS 1.3 (RFC 8446);
//! the other bits have no use in TLS or SPIFFE. (keyCertSign and cRLSign are reported
//! by `e_leaf_key_usage_no_ca_bits`.)

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_key_usage_unexpected_bits",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.3; RFC 8446 §1.2; CA/B BR §7.1.2.7.11",
    description: "keyUsage asserts nothing besides digitalSignature (no keyEncipherment, even for RSA)",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Ok(Some(usage)) = input.parsed.key_usage() else {
        return Vec::new();
    };
    let usage = usage.value;
    let extra: Vec<&str> = [
        (usage.non_repudiation(), "contentCommitment"),
        (usage.key_encipherment(), "keyEncipherment"),
        (usage.data_encipherment(), "dataEncipherment"),
        (usage.key_agreement(), "keyAgreement"),
        (usage.encipher_only(), "encipherOnly"),
        (usage.decipher_only(), "decipherOnly"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if extra.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "keyUsage asserts {}; leaves assert digitalSignature only",
            extra.join(", ")
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::lints::testing::*;

    #[test]
    fn leaves_pass() {
        for kind in LeafKind::ALL {
            assert_clean(&LINT, &leaf_case(kind));
        }
    }

    #[test]
    fn key_encipherment_is_flagged() {
        let case = bad_leaf(LeafKind::Server, |params| {
            params
                .key_usages
                .push(rcgen::KeyUsagePurpose::KeyEncipherment);
            params.key_usages.push(rcgen::KeyUsagePurpose::KeyAgreement);
        });
        assert_flags(&LINT, &case, "keyEncipherment, keyAgreement");
    }
}
