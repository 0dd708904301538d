//! `w_crl_reason_code_unspecified`: RFC 5280 says to omit the reasonCode rather than
//! use `unspecified`.

use super::{CrlInput, CrlLint, Severity};
use crate::der::{self, oid};

pub(crate) const LINT: CrlLint = CrlLint {
    name: "w_crl_reason_code_unspecified",
    severity: Severity::Warning,
    citation: "RFC 5280 §5.3.1",
    description: "a reasonCode of unspecified (0), which should be omitted instead",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    input
        .raw
        .revoked
        .iter()
        .filter(|entry| {
            entry.extensions.iter().any(|e| {
                e.oid == oid::REASON_CODE
                    && der::parse_single(e.value, 0x0a).is_ok_and(|v| v.content == [0])
            })
        })
        .map(|entry| {
            format!(
                "reasonCode of {} is unspecified; omit the extension instead",
                hex::encode(entry.serial.content)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn a_specific_reason_passes() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Arl));
    }

    #[test]
    fn unspecified_is_flagged() {
        // rcgen (like Carimbo) never writes unspecified: turn keyCompromise (1) into 0.
        let case = crl_case(crate::CrlKind::Arl);
        let key_compromise = [0x06, 0x03, 0x55, 0x1d, 0x15, 0x04, 0x03, 0x0a, 0x01, 0x01];
        let at = case
            .der
            .windows(key_compromise.len())
            .position(|w| w == key_compromise)
            .unwrap();
        let mut der = case.der.clone();
        der[at + key_compromise.len() - 1] = 0x00;
        assert_crl_flags(&LINT, &with_crl_der(&case, der), "unspecified");
    }
}
