//! `e_ocsp_responder_eku_ocsp_signing`: a delegated OCSP responder certificate has an
//! extendedKeyUsage of exactly id-kp-OCSPSigning — what RFC 6960 §4.2.2.2 requires of
//! a CA Designated Responder — non-critical, with no other purpose: the responder key
//! signs OCSP responses and nothing else.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ocsp_responder_eku_ocsp_signing",
    severity: Severity::Error,
    citation: "RFC 6960 §4.2.2.2; RFC 5280 §4.2.1.12",
    description: "extendedKeyUsage is present, non-critical, and exactly id-kp-OCSPSigning",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(raw) = input.raw.extension(oid::EXTENDED_KEY_USAGE) else {
        return vec!["extendedKeyUsage is absent".into()];
    };
    let mut messages = Vec::new();
    if raw.critical {
        messages.push("extendedKeyUsage is critical".into());
    }
    match input.parsed.extended_key_usage() {
        Ok(Some(eku)) => {
            let eku = eku.value;
            if !eku.ocsp_signing {
                messages.push("extendedKeyUsage does not contain id-kp-OCSPSigning".into());
            }
            if eku.any
                || eku.server_auth
                || eku.client_auth
                || eku.code_signing
                || eku.email_protection
                || eku.time_stamping
                || !eku.other.is_empty()
            {
                messages.push("extendedKeyUsage contains purposes beyond id-kp-OCSPSigning".into());
            }
        }
        Ok(None) => {}
        Err(e) => messages.push(format!("extendedKeyUsage: {e}")),
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
    fn other_or_missing_purposes_are_flagged() {
        let case = bad_responder(|params| {
            params
                .extended_key_usages
                .push(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        });
        assert_flags(&LINT, &case, "beyond id-kp-OCSPSigning");
        let case = bad_responder(|params| {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        });
        assert_flags(&LINT, &case, "does not contain id-kp-OCSPSigning");
        let case = bad_responder(|params| params.extended_key_usages.clear());
        assert_flags(&LINT, &case, "absent");
    }
}
