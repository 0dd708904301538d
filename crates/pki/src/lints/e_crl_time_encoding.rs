//! `e_crl_time_encoding`: thisUpdate, nextUpdate and revocation dates use UTCTime
//! through 2049 and GeneralizedTime from 2050, in Zulu with seconds, no fractions.

use super::{CrlInput, CrlLint, Severity};
use crate::raw::check_time_encoding;

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_time_encoding",
    severity: Severity::Error,
    citation: "RFC 5280 §5.1.2.4, §5.1.2.5, §5.1.2.6",
    description: "CRL times are UTCTime before 2050 and GeneralizedTime from 2050, YYMMDDHHMMSSZ / YYYYMMDDHHMMSSZ",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    let mut times = vec![("thisUpdate", &input.raw.this_update)];
    if let Some(next) = &input.raw.next_update {
        times.push(("nextUpdate", next));
    }
    for entry in &input.raw.revoked {
        times.push(("revocationDate", &entry.date));
    }
    times
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
    fn utc_times_pass() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Arl));
    }

    #[test]
    fn a_fractional_time_is_flagged() {
        let case = crl_case(crate::CrlKind::Arl);
        let der = patch_tbs(&case.der, 3, &der::tlv(0x18, b"20260101000000.5Z"));
        assert_crl_flags(
            &LINT,
            &with_crl_der(&case, der),
            "thisUpdate: GeneralizedTime",
        );
    }
}
