//! `e_serial_number_positive`: the serial is a positive, non-zero, minimally encoded
//! INTEGER.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_serial_number_positive",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.2",
    description: "the serial number is a positive, non-zero, minimally encoded INTEGER",
    check,
};

/// The problem with INTEGER content `serial`, if any.
pub(crate) fn serial_problem(serial: &[u8]) -> Option<String> {
    match serial {
        [] => Some("serial number is empty".into()),
        [first, ..] if first & 0x80 != 0 => Some("serial number is negative".into()),
        bytes if bytes.iter().all(|b| *b == 0) => Some("serial number is zero".into()),
        [0x00, next, ..] if next & 0x80 == 0 => {
            Some("serial number has a superfluous leading zero (not DER)".into())
        }
        _ => None,
    }
}

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    serial_problem(input.raw.serial.content)
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn random_serials_pass() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn negative_and_zero_serials_are_flagged() {
        let mut case = root_case();
        case.der = patch_tbs(&case.der, 1, &[0x02, 0x02, 0xff, 0x01]);
        assert_flags(&LINT, &case, "negative");
        case.der = patch_tbs(&case.der, 1, &[0x02, 0x01, 0x00]);
        assert_flags(&LINT, &case, "zero");
        case.der = patch_tbs(&case.der, 1, &[0x02, 0x02, 0x00, 0x01]);
        assert_flags(&LINT, &case, "leading zero");
    }
}
