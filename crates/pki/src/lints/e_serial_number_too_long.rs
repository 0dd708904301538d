//! `e_serial_number_too_long`: serial numbers are at most 20 octets.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_serial_number_too_long",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.2",
    description: "the serial number is at most 20 octets long",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let length = input.raw.serial.content.len();
    if length > 20 {
        vec![format!(
            "serial number is {length} octets; at most 20 are allowed"
        )]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn twenty_octets_pass() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn twenty_one_octets_are_flagged() {
        let mut case = root_case();
        let mut serial = vec![0x02, 21];
        serial.extend_from_slice(&[0x11; 21]);
        case.der = patch_tbs(&case.der, 1, &serial);
        assert_flags(&LINT, &case, "21 octets");
    }
}
