//! `e_crl_empty_revoked_list_absent`: with no revoked certificates, the
//! revokedCertificates list is absent rather than empty.

use super::{CrlInput, CrlLint, Severity};

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_empty_revoked_list_absent",
    severity: Severity::Error,
    citation: "RFC 5280 §5.1.2.6",
    description: "revokedCertificates is absent when empty",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    match input.raw.revoked_list {
        Some(list) if list.content.is_empty() => {
            vec!["revokedCertificates is present but empty".into()]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn lists_with_or_without_entries_pass() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Arl));
        let case = bad_crl(crate::CrlKind::Arl, true, |_, params| {
            params.revoked_certs.clear()
        });
        assert_crl_clean(&LINT, &case);
    }

    #[test]
    fn an_empty_list_is_flagged() {
        let case = bad_crl(crate::CrlKind::Arl, true, |_, params| {
            params.revoked_certs.clear()
        });
        // Insert an empty SEQUENCE before crlExtensions (element 5 → new element 5).
        let raw = crate::raw::RawCrl::parse(&case.der).unwrap();
        let fields = crate::der::Reader::new(raw.signed.tbs.content)
            .read_all()
            .unwrap();
        let mut replacement = vec![0x30, 0x00];
        replacement.extend_from_slice(fields[5].raw);
        let der = patch_tbs(&case.der, 5, &replacement);
        assert_crl_flags(&LINT, &with_crl_der(&case, der), "present but empty");
    }
}
