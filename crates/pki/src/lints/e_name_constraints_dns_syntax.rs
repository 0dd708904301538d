//! `e_name_constraints_dns_syntax`: dNSName constraints are DNS names in preferred
//! syntax — suffixes such as `example.com`, which cover the name and everything below
//! it. A leading dot, wildcard or empty entry is refused.

use super::{CertificateInput, CertificateLint, Severity, check_dns_name, parse_name_constraints};
use crate::der::{context_primitive, oid};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_name_constraints_dns_syntax",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.10; RFC 1034 §3.5",
    description: "every dNSName constraint is a valid DNS name (no leading dot, wildcard or empty name)",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(extension) = input.raw.extension(oid::NAME_CONSTRAINTS) else {
        return Vec::new();
    };
    let Ok(constraints) = parse_name_constraints(extension.value) else {
        return Vec::new();
    };
    constraints
        .permitted
        .iter()
        .chain(constraints.excluded.iter())
        .flatten()
        .filter(|subtree| subtree.tag == context_primitive(2))
        .filter_map(|subtree| {
            let name = String::from_utf8_lossy(subtree.value);
            check_dns_name(&name)
                .err()
                .map(|e| format!("dNSName constraint: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn suffixes_pass() {
        let case = intermediate_with(|t| t.name_constraints = Some(sample_constraints()));
        assert_clean(&LINT, &case);
    }

    #[test]
    fn malformed_names_are_flagged() {
        let constraints = crate::NameConstraints {
            permitted_dns: vec!["not a domain".into(), ".example.com".into()],
            excluded_dns: vec![String::new()],
            permitted_uri_hosts: Vec::new(),
        };
        let case = bad_intermediate(|params| {
            params
                .custom_extensions
                .push(name_constraints_extension(&constraints, true));
        });
        assert_flags(&LINT, &case, "\"not a domain\"");
        assert_flags(&LINT, &case, "\".example.com\"");
        assert_flags(&LINT, &case, "empty name");
    }
}
