//! `e_crl_number`: every CRL has a non-critical cRLNumber, a positive INTEGER of at
//! most 20 octets (Carimbo numbers start at 1).

use super::{CrlInput, CrlLint, Severity};
use crate::der::{self, TAG_INTEGER, oid};
use crate::lints::e_serial_number_positive::serial_problem;

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_number",
    severity: Severity::Error,
    citation: "RFC 5280 §5.2.3",
    description: "cRLNumber is present, non-critical, positive and at most 20 octets",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    let Some(extension) = input.raw.extension(oid::CRL_NUMBER) else {
        return vec!["cRLNumber is absent".into()];
    };
    let mut messages = Vec::new();
    if extension.critical {
        messages.push("cRLNumber is critical".into());
    }
    match der::parse_single(extension.value, TAG_INTEGER) {
        Ok(number) => {
            if let Some(problem) = serial_problem(number.content) {
                messages.push(problem.replace("serial number", "cRLNumber"));
            }
            if number.content.len() > 20 {
                messages.push(format!("cRLNumber is {} octets", number.content.len()));
            }
        }
        Err(e) => messages.push(format!("cRLNumber is not an INTEGER: {e}")),
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn a_positive_number_passes() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Arl));
    }

    #[test]
    fn zero_is_flagged() {
        let case = bad_crl(crate::CrlKind::Arl, true, |_, params| {
            params.crl_number = rcgen::SerialNumber::from_slice(&[0]);
        });
        assert_crl_flags(&LINT, &case, "cRLNumber is zero");
    }
}
