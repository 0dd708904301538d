//! `e_crl_entry_serial_number`: revoked serials are valid serial numbers: positive,
//! non-zero, minimally encoded, at most 20 octets, and listed once.

use super::{CrlInput, CrlLint, Severity};
use crate::lints::e_serial_number_positive::serial_problem;

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_entry_serial_number",
    severity: Severity::Error,
    citation: "RFC 5280 §5.1.2.6, §4.1.2.2",
    description: "each revoked serial is positive, minimal, at most 20 octets, and appears once",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    let mut messages = Vec::new();
    // A set, not a scan of the earlier entries: CRLs reach millions of entries.
    let mut seen = std::collections::HashSet::with_capacity(input.raw.revoked.len());
    for (index, entry) in input.raw.revoked.iter().enumerate() {
        let serial = entry.serial.content;
        if let Some(problem) = serial_problem(serial) {
            messages.push(format!("revoked entry {index}: {problem}"));
        }
        if serial.len() > 20 {
            messages.push(format!(
                "revoked entry {index}: serial is {} octets",
                serial.len()
            ));
        }
        if !seen.insert(serial) {
            messages.push(format!("serial {} is listed twice", hex::encode(serial)));
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn random_serials_pass() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Crl));
    }

    #[test]
    fn duplicate_and_zero_serials_are_flagged() {
        let case = bad_crl(crate::CrlKind::Crl, true, |_, params| {
            let entry = params.revoked_certs[0].clone();
            params.revoked_certs.push(entry);
            let mut zero = params.revoked_certs[0].clone();
            zero.serial_number = rcgen::SerialNumber::from_slice(&[0]);
            params.revoked_certs.push(zero);
        });
        assert_crl_flags(&LINT, &case, "listed twice");
        assert_crl_flags(&LINT, &case, "zero");
    }
}
