//! `e_subject_name_encoding`: the subject uses only Carimbo's attribute types, one per
//! RDN, as UTF8String (countryName as a two-letter PrintableString), within the RFC
//! 5280 upper bounds, so it can be reproduced byte-for-byte as an issuer name.

use super::{CertificateInput, CertificateLint, Severity};
use crate::DistinguishedName;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_subject_name_encoding",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.4, §4.1.2.6, Appendix A",
    description: "subject attributes are CN/O/OU/C/ST/L, single-valued, UTF8String or PrintableString (C: two letters), within upper bounds",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match DistinguishedName::from_der(input.raw.subject.raw) {
        Ok(_) => Vec::new(),
        Err(e) => vec![format!("subject {e}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der;
    use crate::lints::testing::*;

    #[test]
    fn profile_names_pass() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn a_utf8_country_is_flagged() {
        let mut case = intermediate_case(crate::IntermediateUsage::Server);
        let pair = der::sequence(&[&der::oid(&[0x55, 0x04, 0x06]), &der::tlv(0x0c, b"BR")]);
        let subject = der::tlv(0x30, &der::tlv(0x31, &pair));
        case.der = patch_tbs(&case.der, 5, &subject);
        assert_flags(&LINT, &case, "PrintableString");
    }
}
