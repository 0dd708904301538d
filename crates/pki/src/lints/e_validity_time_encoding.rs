//! `e_validity_time_encoding`: validity dates through 2049 are UTCTime, from 2050
//! GeneralizedTime, both in Zulu with seconds and no fractions.

use super::{CertificateInput, CertificateLint, Severity};
use crate::raw::check_time_encoding;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_validity_time_encoding",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.5.1, §4.1.2.5.2",
    description: "UTCTime YYMMDDHHMMSSZ before 2050, GeneralizedTime YYYYMMDDHHMMSSZ from 2050",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    [
        ("notBefore", &input.raw.not_before),
        ("notAfter", &input.raw.not_after),
    ]
    .into_iter()
    .filter_map(|(field, time)| {
        check_time_encoding(time)
            .err()
            .map(|e| format!("{field}: {e}"))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der;
    use crate::lints::testing::*;

    #[test]
    fn dates_on_both_sides_of_2050_pass() {
        // The root runs 2026–2046; add one ending after 2050.
        assert_clean(&LINT, &root_case());
        let case = bad_intermediate(|params| {
            params.not_after = time::macros::datetime!(2051-01-01 00:00 UTC);
        });
        assert_clean(&LINT, &case);
    }

    #[test]
    fn generalized_time_before_2050_is_flagged() {
        let mut case = root_case();
        let validity = der::sequence(&[
            &der::tlv(0x18, b"20260101000000Z"),
            &der::tlv(0x17, b"460101000000Z"),
        ]);
        case.der = patch_tbs(&case.der, 4, &validity);
        assert_flags(&LINT, &case, "notBefore: GeneralizedTime");
    }
}
