//! `e_subject_common_name_present`: a CA's subject is non-empty and has exactly one
//! non-empty common name.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_subject_common_name_present",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.6; CA/B BR §7.1.2.10.2",
    description: "the subject of a CA certificate is non-empty with exactly one non-empty commonName",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let subject = input.parsed.subject();
    if subject.iter_attributes().next().is_none() {
        return vec!["subject is empty".into()];
    }
    let names: Vec<_> = subject.iter_common_name().collect();
    match names.as_slice() {
        [] => vec!["subject has no commonName".into()],
        [one] => match one.as_str() {
            Ok(text) if !text.trim().is_empty() => Vec::new(),
            _ => vec!["subject commonName is empty or not a string".into()],
        },
        _ => vec![format!("subject has {} commonNames", names.len())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use crate::{DistinguishedName, DnAttribute};

    #[test]
    fn a_named_subject_passes() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn missing_or_empty_subjects_are_flagged() {
        let mut case = intermediate_case(crate::IntermediateUsage::Server);
        let mut no_cn = DistinguishedName::new();
        no_cn.push(DnAttribute::Organization, "Carimbo").unwrap();
        case.der = patch_tbs(&case.der, 5, &no_cn.to_der());
        assert_flags(&LINT, &case, "no commonName");
        case.der = patch_tbs(&case.der, 5, &DistinguishedName::new().to_der());
        assert_flags(&LINT, &case, "empty");
    }
}
