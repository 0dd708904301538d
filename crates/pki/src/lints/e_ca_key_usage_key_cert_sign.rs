//! `e_ca_key_usage_key_cert_sign`: a CA key may sign certificates: keyCertSign is set.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ca_key_usage_key_cert_sign",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.3",
    description: "keyUsage asserts keyCertSign",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match input.parsed.key_usage() {
        Ok(Some(usage)) if usage.value.key_cert_sign() => Vec::new(),
        Ok(Some(_)) => vec!["keyUsage does not assert keyCertSign".into()],
        Ok(None) => Vec::new(), // e_ca_key_usage_critical reports it
        Err(e) => vec![format!("keyUsage: {e}")],
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
    fn missing_key_cert_sign_is_flagged() {
        let case = bad_root(|params| {
            params.key_usages = vec![rcgen::KeyUsagePurpose::CrlSign];
        });
        assert_flags(&LINT, &case, "keyCertSign");
    }
}
