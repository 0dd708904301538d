//! `e_ocsp_responder_nocheck_present`: a delegated OCSP responder certificate carries
//! id-pkix-ocsp-nocheck (NULL, non-critical). A client cannot ask the responder about
//! the responder's own certificate, and Carimbo's responder certificates carry no CRL
//! distribution point: the extension tells clients not to look, and the short
//! lifetime (`e_ocsp_responder_validity_max_30_days`) bounds a key compromise, as RFC
//! 6960 §4.2.2.2.1 advises.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ocsp_responder_nocheck_present",
    severity: Severity::Error,
    citation: "RFC 6960 §4.2.2.2.1",
    description: "id-pkix-ocsp-nocheck is present, non-critical, with a NULL value",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(raw) = input.raw.extension(oid::OCSP_NOCHECK) else {
        return vec!["id-pkix-ocsp-nocheck is absent".into()];
    };
    let mut messages = Vec::new();
    if raw.critical {
        messages.push("id-pkix-ocsp-nocheck is critical".into());
    }
    if raw.value != [crate::der::TAG_NULL, 0x00] {
        messages.push(format!(
            "id-pkix-ocsp-nocheck value {} is not NULL",
            hex::encode(raw.value)
        ));
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der;
    use crate::lints::testing::*;

    #[test]
    fn a_responder_passes() {
        assert_clean(&LINT, &responder_case());
    }

    #[test]
    fn missing_critical_or_non_null_values_are_flagged() {
        let good = responder_case();
        let absent = Case {
            der: set_extension(&good.der, oid::OCSP_NOCHECK, None),
            ..responder_case()
        };
        assert_flags(&LINT, &absent, "absent");
        let critical = der::extension(oid::OCSP_NOCHECK, true, &[der::TAG_NULL, 0]);
        let case = Case {
            der: set_extension(&good.der, oid::OCSP_NOCHECK, Some(critical)),
            ..responder_case()
        };
        assert_flags(&LINT, &case, "is critical");
        let octets = der::extension(oid::OCSP_NOCHECK, false, &[der::TAG_OCTET_STRING, 0]);
        let case = Case {
            der: set_extension(&good.der, oid::OCSP_NOCHECK, Some(octets)),
            ..responder_case()
        };
        assert_flags(&LINT, &case, "is not NULL");
    }
}
