//! `e_crl_next_update`: nextUpdate is present and after thisUpdate.

use super::{CrlInput, CrlLint, Severity};

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_next_update",
    severity: Severity::Error,
    citation: "RFC 5280 §5.1.2.5",
    description: "nextUpdate is present and later than thisUpdate",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    let this_update = input.parsed.last_update();
    match input.parsed.next_update() {
        None => vec!["nextUpdate is absent".into()],
        Some(next) if next <= this_update => vec![format!(
            "nextUpdate {next} is not after thisUpdate {this_update}"
        )],
        Some(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der;
    use crate::lints::testing::*;

    #[test]
    fn a_later_next_update_passes() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Crl));
    }

    #[test]
    fn an_earlier_next_update_is_flagged() {
        let case = crl_case(crate::CrlKind::Crl);
        // Element 4 is nextUpdate.
        let der = patch_tbs(&case.der, 4, &der::tlv(0x17, b"250101000000Z"));
        assert_crl_flags(&LINT, &with_crl_der(&case, der), "is not after thisUpdate");
    }
}
