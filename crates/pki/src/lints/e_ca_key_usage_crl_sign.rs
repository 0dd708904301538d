//! `e_ca_key_usage_crl_sign`: Carimbo CAs sign their own CRLs (no indirect CRLs), so
//! cRLSign is set.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ca_key_usage_crl_sign",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.3",
    description: "keyUsage asserts cRLSign",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match input.parsed.key_usage() {
        Ok(Some(usage)) if usage.value.crl_sign() => Vec::new(),
        Ok(Some(_)) => vec!["keyUsage does not assert cRLSign".into()],
        Ok(None) => Vec::new(),
        Err(e) => vec![format!("keyUsage: {e}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn profile_certificates_pass() {
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
    }

    #[test]
    fn missing_crl_sign_is_flagged() {
        let case = bad_intermediate(|params| {
            params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
        });
        assert_flags(&LINT, &case, "cRLSign");
    }
}
