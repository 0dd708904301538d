//! `e_leaf_key_usage_no_ca_bits`: a leaf's key signs neither certificates nor CRLs —
//! keyCertSign and cRLSign are not asserted (SPIFFE X509-SVID §4.3 says so of leaf
//! SVIDs; RFC 5280 ties keyCertSign to cA TRUE).

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_key_usage_no_ca_bits",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.3, §4.2.1.9; SPIFFE X509-SVID §4.3",
    description: "keyUsage asserts neither keyCertSign nor cRLSign",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Ok(Some(usage)) = input.parsed.key_usage() else {
        return Vec::new();
    };
    let mut messages = Vec::new();
    if usage.value.key_cert_sign() {
        messages.push("keyUsage asserts keyCertSign on a leaf".into());
    }
    if usage.value.crl_sign() {
        messages.push("keyUsage asserts cRLSign on a leaf".into());
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::lints::testing::*;

    #[test]
    fn leaves_pass() {
        assert_clean(&LINT, &leaf_case(LeafKind::Workload));
    }

    #[test]
    fn ca_bits_are_flagged() {
        let case = bad_leaf(LeafKind::Workload, |params| {
            params.key_usages.push(rcgen::KeyUsagePurpose::KeyCertSign);
            params.key_usages.push(rcgen::KeyUsagePurpose::CrlSign);
        });
        assert_flags(&LINT, &case, "keyCertSign");
        assert_flags(&LINT, &case, "cRLSign");
    }
}
