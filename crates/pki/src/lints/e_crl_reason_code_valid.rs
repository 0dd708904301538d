//! `e_crl_reason_code_valid`: reason codes are non-critical, one of the RFC 5280
//! values (7 is unassigned), and not removeFromCRL, which belongs to delta CRLs only.

use super::{CrlInput, CrlLint, Severity};
use crate::RevocationReason;
use crate::der::{self, oid};

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_reason_code_valid",
    severity: Severity::Error,
    citation: "RFC 5280 §5.3.1",
    description: "every reasonCode is non-critical, a defined CRLReason, and not removeFromCRL in a full CRL",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    let mut messages = Vec::new();
    for entry in &input.raw.revoked {
        let serial = hex::encode(entry.serial.content);
        for extension in entry
            .extensions
            .iter()
            .filter(|e| e.oid == oid::REASON_CODE)
        {
            if extension.critical {
                messages.push(format!("reasonCode of {serial} is critical"));
            }
            // CRLReason ::= ENUMERATED
            let code = match der::parse_single(extension.value, 0x0a) {
                Ok(value) => match value.content {
                    [code] => RevocationReason::from_code(*code),
                    _ => None,
                },
                Err(_) => None,
            };
            match code {
                None => messages.push(format!("reasonCode of {serial} is not a defined CRLReason")),
                Some(RevocationReason::RemoveFromCrl) => messages.push(format!(
                    "reasonCode of {serial} is removeFromCRL, which only delta CRLs may use"
                )),
                Some(_) => {}
            }
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn key_compromise_passes() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Arl));
    }

    #[test]
    fn remove_from_crl_is_flagged() {
        let case = bad_crl(crate::CrlKind::Arl, true, |_, params| {
            params.revoked_certs[0].reason_code = Some(rcgen::RevocationReason::RemoveFromCrl);
        });
        assert_crl_flags(&LINT, &case, "removeFromCRL");
    }
}
