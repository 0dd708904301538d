//! `e_serial_number_entropy`: serials carry enough randomness to be unpredictable.
//! The Baseline Requirements ask for 64 random bits; Carimbo makes 128 or more and
//! refuses serials shorter than 16 octets (not counting a leading sign octet).

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_serial_number_entropy",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.2; CA/B BR §7.1",
    description: "the serial number has at least 16 octets besides a sign octet (random serials of ≥ 128 bits)",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let content = input.raw.serial.content;
    let magnitude = match content {
        [0x00, rest @ ..] => rest,
        all => all,
    };
    if magnitude.len() < 16 {
        vec![format!(
            "serial number has {} octets of value; at least 16 (random) are required",
            magnitude.len()
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
    fn random_serials_pass() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn short_serials_are_flagged() {
        let mut case = root_case();
        let mut serial = vec![0x02, 16, 0x00];
        serial.extend_from_slice(&[0x80; 15]);
        case.der = patch_tbs(&case.der, 1, &serial);
        assert_flags(&LINT, &case, "15 octets");
    }
}
