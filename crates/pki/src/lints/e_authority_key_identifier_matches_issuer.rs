//! `e_authority_key_identifier_matches_issuer`: the authorityKeyIdentifier is present,
//! non-critical, and its keyIdentifier is the issuer's subjectKeyIdentifier (for a
//! root, its own).

use x509_parser::extensions::ParsedExtension;

use super::{CertificateInput, CertificateLint, Severity, extensions_with};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_authority_key_identifier_matches_issuer",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.1",
    description: "authorityKeyIdentifier is present, non-critical, with keyIdentifier equal to the issuer's SKID",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
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
            Some(identifier) => messages.push(format!(
                "authorityKeyIdentifier {} is not the issuer's key identifier {}",
                hex::encode(identifier.0),
                hex::encode(input.issuer.subject_key_identifier())
            )),
            None => messages.push("authorityKeyIdentifier has no keyIdentifier".into()),
        },
        other => messages.push(format!("authorityKeyIdentifier does not parse: {other:?}")),
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn profile_certificates_pass() {
        assert_clean(&LINT, &root_case());
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
    }

    #[test]
    fn wrong_or_missing_identifiers_are_flagged() {
        let case = bad_intermediate(|params| {
            params.use_authority_key_identifier_extension = false;
        });
        assert_flags(&LINT, &case, "absent");
        let mut case = intermediate_case(crate::IntermediateUsage::Server);
        case.issuer = root_issuer(); // another root, another key identifier
        assert_flags(&LINT, &case, "is not the issuer's key identifier");
    }
}
