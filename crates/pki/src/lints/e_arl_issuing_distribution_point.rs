//! `e_arl_issuing_distribution_point`: the root's ARL says it covers CA certificates
//! only: an issuing distribution point with onlyContainsCACerts TRUE.

use x509_parser::extensions::ParsedExtension;

use super::{CrlInput, CrlLint, Severity, extensions_with};
use crate::CrlKind;
use crate::der::oid;

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_arl_issuing_distribution_point",
    severity: Severity::Error,
    citation: "RFC 5280 §5.2.5",
    description: "an ARL has issuingDistributionPoint with onlyContainsCACerts TRUE and no other scope",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    if input.kind != CrlKind::Arl {
        return Vec::new();
    }
    let extensions = input.parsed.extensions();
    let Some(extension) = extensions_with(extensions, oid::ISSUING_DISTRIBUTION_POINT).next()
    else {
        return vec!["ARL has no issuingDistributionPoint".into()];
    };
    let ParsedExtension::IssuingDistributionPoint(idp) = extension.parsed_extension() else {
        return vec!["issuingDistributionPoint does not parse".into()];
    };
    let mut messages = Vec::new();
    if !idp.only_contains_ca_certs {
        messages.push("ARL issuingDistributionPoint lacks onlyContainsCACerts".into());
    }
    if idp.only_contains_user_certs || idp.only_contains_attribute_certs {
        messages.push("ARL issuingDistributionPoint also limits to user or attribute certs".into());
    }
    if idp.indirect_crl || idp.only_some_reasons.is_some() {
        messages.push("ARL is indirect or partitioned by reasons".into());
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn ca_only_scope_passes_with_and_without_a_url() {
        assert_crl_clean(&LINT, &crl_case(CrlKind::Arl));
        let case = bad_crl(CrlKind::Arl, true, |template, _| {
            template.issuing_distribution_point = None;
        });
        assert_crl_clean(&LINT, &case);
    }

    #[test]
    fn a_missing_or_user_scope_is_flagged() {
        let case = bad_crl(CrlKind::Arl, false, |_, _| {});
        assert_crl_flags(&LINT, &case, "no issuingDistributionPoint");
        let user_scope = bad_crl(CrlKind::Crl, true, |_, _| {});
        let case = with_crl_der(&crl_case(CrlKind::Arl), user_scope.der);
        let case = CrlCase {
            kind: CrlKind::Arl,
            ..case
        };
        assert_crl_flags(&LINT, &case, "lacks onlyContainsCACerts");
    }
}
