//! `e_ocsp_responder_key_usage_digital_signature`: a delegated OCSP responder's
//! keyUsage is present, critical, and asserts digitalSignature only — the bit
//! consistent with id-kp-OCSPSigning that signing responses needs (RFC 5280
//! §4.2.1.12 lists digitalSignature and/or nonRepudiation; clients such as NSS
//! require digitalSignature). No CA bits: the responder certifies nothing.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ocsp_responder_key_usage_digital_signature",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.3, §4.2.1.12; RFC 6960 §4.2.2.2",
    description: "keyUsage is present, critical, and asserts digitalSignature and nothing else",
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
        Ok(Some(usage)) => {
            let usage = usage.value;
            if !usage.digital_signature() {
                messages.push("keyUsage does not assert digitalSignature".into());
            }
            let extra: Vec<&str> = [
                (usage.non_repudiation(), "contentCommitment"),
                (usage.key_encipherment(), "keyEncipherment"),
                (usage.data_encipherment(), "dataEncipherment"),
                (usage.key_agreement(), "keyAgreement"),
                (usage.key_cert_sign(), "keyCertSign"),
                (usage.crl_sign(), "cRLSign"),
                (usage.encipher_only(), "encipherOnly"),
                (usage.decipher_only(), "decipherOnly"),
            ]
            .into_iter()
            .filter_map(|(set, name)| set.then_some(name))
            .collect();
            if !extra.is_empty() {
                messages.push(format!(
                    "keyUsage asserts {}; a responder asserts digitalSignature only",
                    extra.join(", ")
                ));
            }
        }
        Ok(None) => {}
        Err(e) => messages.push(format!("keyUsage: {e}")),
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn a_responder_passes() {
        assert_clean(&LINT, &responder_case());
    }

    #[test]
    fn other_bits_or_a_missing_extension_are_flagged() {
        let case = bad_responder(|params| {
            params.key_usages.push(rcgen::KeyUsagePurpose::CrlSign);
        });
        assert_flags(&LINT, &case, "asserts cRLSign");
        let case = bad_responder(|params| {
            params.key_usages = vec![rcgen::KeyUsagePurpose::ContentCommitment];
        });
        assert_flags(&LINT, &case, "does not assert digitalSignature");
        let case = bad_responder(|params| params.key_usages.clear());
        assert_flags(&LINT, &case, "absent");
    }
}
