//! `e_ca_key_usage_unexpected_bits`: a CA key signs certificates, CRLs and at most
//! OCSP responses: no bit other than keyCertSign, cRLSign and digitalSignature.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ca_key_usage_unexpected_bits",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.3; CA/B BR §7.1.2.10.7",
    description: "keyUsage asserts nothing beyond keyCertSign, cRLSign and digitalSignature",
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
        vec![format!("keyUsage asserts {} on a CA", extra.join(", "))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn profile_certificates_pass() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn key_encipherment_is_flagged() {
        let case = bad_root(|params| {
            params
                .key_usages
                .push(rcgen::KeyUsagePurpose::KeyEncipherment);
        });
        assert_flags(&LINT, &case, "keyEncipherment");
    }
}
