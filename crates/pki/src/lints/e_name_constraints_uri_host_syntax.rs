//! `e_name_constraints_uri_host_syntax`: URI constraints name a host, not a URI: a
//! fully qualified domain name (`prod.example.org`, a SPIFFE trust domain) or a domain
//! with a leading period (`.example.org`, its subdomains). No scheme, port or path.

use super::{CertificateInput, CertificateLint, Severity, check_dns_name, parse_name_constraints};
use crate::der::{context_primitive, oid};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_name_constraints_uri_host_syntax",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.10",
    description: "every uniformResourceIdentifier constraint is a host or .domain, without scheme, port or path",
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
        .filter(|subtree| subtree.tag == context_primitive(6))
        .filter_map(|subtree| {
            let host = String::from_utf8_lossy(subtree.value);
            if host.contains("://") || host.contains('/') || host.contains(':') {
                return Some(format!(
                    "URI constraint {host:?} must be a host only (no scheme, port or path)"
                ));
            }
            let domain = host.strip_prefix('.').unwrap_or(&host);
            check_dns_name(domain)
                .err()
                .map(|e| format!("URI constraint {host:?}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn hosts_and_domains_pass() {
        let case = intermediate_with(|t| {
            t.name_constraints = Some(crate::NameConstraints {
                permitted_uri_hosts: vec!["prod.example.com".into(), ".example.org".into()],
                ..Default::default()
            })
        });
        assert_clean(&LINT, &case);
    }

    #[test]
    fn uris_are_flagged() {
        let constraints = crate::NameConstraints {
            permitted_uri_hosts: vec!["spiffe://prod.example.com".into(), "a..b".into()],
            ..Default::default()
        };
        let case = bad_intermediate(|params| {
            params
                .custom_extensions
                .push(name_constraints_extension(&constraints, true));
        });
        assert_flags(&LINT, &case, "host only");
        assert_flags(&LINT, &case, "\"a..b\"");
    }
}
