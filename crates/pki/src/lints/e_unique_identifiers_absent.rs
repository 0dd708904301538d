//! `e_unique_identifiers_absent`: conforming CAs do not generate issuer or subject
//! unique identifiers.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_unique_identifiers_absent",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.8",
    description: "issuerUniqueID and subjectUniqueID are absent",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let mut messages = Vec::new();
    if input.raw.issuer_unique_id.is_some() {
        messages.push("issuerUniqueID is present".into());
    }
    if input.raw.subject_unique_id.is_some() {
        messages.push("subjectUniqueID is present".into());
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der;
    use crate::lints::testing::*;

    #[test]
    fn profile_certificates_pass() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn a_subject_unique_id_is_flagged() {
        let mut case = root_case();
        // Insert [2] subjectUniqueID before the extensions (element 7).
        let raw = crate::raw::RawCertificate::parse(&case.der).unwrap();
        let extensions = der::Reader::new(raw.signed.tbs.content)
            .read_all()
            .unwrap()
            .last()
            .unwrap()
            .raw
            .to_vec();
        let mut replacement = der::tlv(0x82, &[0x00, 0x01]);
        replacement.extend_from_slice(&extensions);
        case.der = patch_tbs(&case.der, 7, &replacement);
        assert_flags(&LINT, &case, "subjectUniqueID");
    }
}
