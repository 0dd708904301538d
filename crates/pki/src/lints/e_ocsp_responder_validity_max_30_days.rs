//! `e_ocsp_responder_validity_max_30_days`: a delegated OCSP responder certificate
//! lives at most [`RESPONDER_MAX_VALIDITY`] (30 days). With id-pkix-ocsp-nocheck its
//! revocation is never checked, so its lifetime is what limits a compromise of the
//! responder key (RFC 6960 §4.2.2.2.1).

use super::{CertificateInput, CertificateLint, Severity};
use crate::RESPONDER_MAX_VALIDITY;
use crate::error::show_duration;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ocsp_responder_validity_max_30_days",
    severity: Severity::Error,
    citation: "RFC 6960 §4.2.2.2.1; RFC 5280 §4.1.2.5",
    description: "notAfter − notBefore is at most 30 days",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let validity = input.parsed.validity();
    let lifetime = validity.not_after.to_datetime() - validity.not_before.to_datetime();
    if lifetime <= RESPONDER_MAX_VALIDITY {
        Vec::new()
    } else {
        vec![format!(
            "validity lasts {}, more than the {} an OCSP responder may",
            show_duration(lifetime),
            show_duration(RESPONDER_MAX_VALIDITY)
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use time::Duration;

    #[test]
    fn thirty_days_pass() {
        assert_clean(&LINT, &responder_case());
    }

    #[test]
    fn a_longer_validity_is_flagged() {
        let case = bad_responder(|params| params.not_after += Duration::seconds(1));
        assert_flags(&LINT, &case, "more than the");
    }
}
