//! `n_ca_key_usage_digital_signature`: digitalSignature on a CA is allowed (a CA that
//! signs OCSP responses itself needs it) but Carimbo's profiles leave it out: its OCSP
//! responses come from delegated responder certificates.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "n_ca_key_usage_digital_signature",
    severity: Severity::Notice,
    citation: "RFC 5280 §4.2.1.3; RFC 6960 §4.2.2.2",
    description: "keyUsage digitalSignature on a CA (needed only to sign OCSP responses directly)",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match input.parsed.key_usage() {
        Ok(Some(usage)) if usage.value.digital_signature() => {
            vec!["CA keyUsage asserts digitalSignature; Carimbo CAs delegate OCSP signing".into()]
        }
        _ => Vec::new(),
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
    fn digital_signature_is_noted() {
        let case = bad_intermediate(|params| {
            params
                .key_usages
                .push(rcgen::KeyUsagePurpose::DigitalSignature);
        });
        assert_flags(&LINT, &case, "digitalSignature");
    }
}
