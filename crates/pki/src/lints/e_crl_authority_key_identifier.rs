//! `e_crl_authority_key_identifier`: every CRL has a non-critical
//! authorityKeyIdentifier whose keyIdentifier is the issuer's subjectKeyIdentifier.

use x509_parser::extensions::ParsedExtension;

use super::{CrlInput, CrlLint, Severity, extensions_with};
use crate::der::oid;

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_authority_key_identifier",
    severity: Severity::Error,
    citation: "RFC 5280 §5.2.1",
    description: "authorityKeyIdentifier is present, non-critical, with keyIdentifier equal to the issuer's SKID",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    let extensions = input.parsed.extensions();
    let Some(extension) = extensions_with(extensions, oid::AUTHORITY_KEY_IDENTIFIER).next() else {
        return vec!["authorityKeyIdentifier is absent".into()];
    };
    let mut messages = Vec::new();
    if extension.critical {
        messages.push("authorityKeyIdentifier is critical".into());
    }
    match extension.parsed_extension() {
        ParsedExtension::AuthorityKeyIdentifier(aki) => match &aki.key_identifier {
            Some(identifier) if identifier.0 == input.issuer.subject_key_identifier() => {}
            Some(_) => messages
                .push("authorityKeyIdentifier is not the issuer's subject key identifier".into()),
            None => messages.push("authorityKeyIdentifier has no keyIdentifier".into()),
        },
        _ => messages.push("authorityKeyIdentifier does not parse".into()),
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn the_issuer_identifier_passes() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Crl));
    }

    #[test]
    fn a_wrong_or_missing_identifier_is_flagged() {
        let case = bad_crl(crate::CrlKind::Arl, true, |_, params| {
            params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(vec![1, 2, 3]);
        });
        assert_crl_flags(&LINT, &case, "not the issuer's");
        let case = crl_case(crate::CrlKind::Arl);
        let der = set_crl_extension(&case.der, oid::AUTHORITY_KEY_IDENTIFIER, None);
        assert_crl_flags(&LINT, &with_crl_der(&case, der), "absent");
    }
}
