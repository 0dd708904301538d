//! `e_leaf_key_usage_critical_digital_signature`: a leaf's keyUsage is present,
//! critical, and asserts digitalSignature — what TLS (and an X509-SVID, SPIFFE
//! X509-SVID §4.3) needs of the key.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_key_usage_critical_digital_signature",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.3; SPIFFE X509-SVID §4.3",
    description: "keyUsage is present, critical, and asserts digitalSignature",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(raw) = input.raw.extension(oid::KEY_USAGE) else {
        return vec!["keyUsage is absent".into()];
    };
    let mut messages = Vec::new();
    if !raw.critical {
        messages.push("keyUsage is not critical".into());
    }
    match input.parsed.key_usage() {
        Ok(Some(usage)) if usage.value.digital_signature() => {}
        Ok(_) => messages.push("keyUsage does not assert digitalSignature".into()),
        Err(e) => messages.push(format!("keyUsage: {e}")),
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
        for kind in LeafKind::ALL {
            assert_clean(&LINT, &leaf_case(kind));
        }
    }

    #[test]
    fn missing_bit_or_extension_is_flagged() {
        let case = bad_leaf(LeafKind::Server, |params| {
            params.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment];
        });
        assert_flags(&LINT, &case, "does not assert digitalSignature");
        let case = bad_leaf(LeafKind::Server, |params| params.key_usages.clear());
        assert_flags(&LINT, &case, "absent");
    }
}
