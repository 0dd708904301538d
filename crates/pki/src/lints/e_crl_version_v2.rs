//! `e_crl_version_v2`: CRLs with extensions are version 2.

use super::{CrlInput, CrlLint, Severity};

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_version_v2",
    severity: Severity::Error,
    citation: "RFC 5280 §5.1.2.1",
    description: "the CRL version field is present and says v2 (integer 1)",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    match input.raw.version {
        Some(version) if version.content == [0x01] => Vec::new(),
        Some(_) => vec!["CRL version is not v2".into()],
        None => vec!["CRL version is absent (v1)".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn v2_passes() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Arl));
    }

    #[test]
    fn v3_is_flagged() {
        let case = crl_case(crate::CrlKind::Arl);
        let case = with_crl_der(&case, patch_tbs(&case.der, 0, &[0x02, 0x01, 0x02]));
        assert_crl_flags(&LINT, &case, "not v2");
    }
}
