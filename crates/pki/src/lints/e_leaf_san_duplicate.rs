//! `e_leaf_san_duplicate`: no name appears twice in the subjectAltName (DNS names
//! compare case-insensitively), as CSR validation refuses.

use super::{CertificateInput, CertificateLint, Severity};
use crate::SubjectAltName;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_san_duplicate",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.6",
    description: "no subjectAltName entry appears twice (DNS names compared case-insensitively)",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Ok(Some(san)) = input.parsed.subject_alternative_name() else {
        return Vec::new();
    };
    let names: Vec<SubjectAltName> = san
        .value
        .general_names
        .iter()
        .filter_map(|name| SubjectAltName::from_general_name(name).ok())
        .collect();
    names
        .iter()
        .enumerate()
        .filter(|(index, name)| names[..*index].contains(name))
        .map(|(_, name)| format!("{name} appears more than once"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::lints::testing::*;

    #[test]
    fn distinct_names_pass() {
        assert_clean(&LINT, &leaf_case(LeafKind::Client));
    }

    #[test]
    fn a_repeated_name_is_flagged() {
        let case = bad_leaf(LeafKind::Server, |params| {
            params
                .subject_alt_names
                .push(rcgen::SanType::DnsName(ia5("WWW.example.com")));
        });
        assert_flags(&LINT, &case, "dns:www.example.com appears more than once");
    }
}
