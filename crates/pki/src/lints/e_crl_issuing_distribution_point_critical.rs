//! `e_crl_issuing_distribution_point_critical`: the issuing distribution point, when
//! present, is critical (it changes the CRL's scope).

use super::{CrlInput, CrlLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_issuing_distribution_point_critical",
    severity: Severity::Error,
    citation: "RFC 5280 §5.2.5",
    description: "issuingDistributionPoint, when present, is critical",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    match input.raw.extension(oid::ISSUING_DISTRIBUTION_POINT) {
        Some(extension) if !extension.critical => {
            vec!["issuingDistributionPoint is not critical".into()]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::{self, RawExtension};
    use crate::lints::testing::*;

    #[test]
    fn a_critical_idp_passes() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Arl));
    }

    #[test]
    fn a_non_critical_idp_is_flagged() {
        let case = crl_case(crate::CrlKind::Arl);
        let raw = crate::raw::RawCrl::parse(&case.der).unwrap();
        let RawExtension { value, .. } = *raw.extension(oid::ISSUING_DISTRIBUTION_POINT).unwrap();
        let der = set_crl_extension(
            &case.der,
            oid::ISSUING_DISTRIBUTION_POINT,
            Some(der::extension(
                oid::ISSUING_DISTRIBUTION_POINT,
                false,
                value,
            )),
        );
        assert_crl_flags(&LINT, &with_crl_der(&case, der), "not critical");
    }
}
