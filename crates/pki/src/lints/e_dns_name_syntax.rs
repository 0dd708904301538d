//! `e_dns_name_syntax`: every dNSName is a host name in preferred name syntax, in lower
//! case: LDH labels of 1–63 octets without leading or trailing hyphens, at most 253
//! octets, no trailing dot, not numeric at the end, A-labels for internationalised
//! names, and a wildcard only as the whole leftmost label.

use x509_parser::extensions::GeneralName;

use super::{CertificateInput, CertificateLint, Severity};
use crate::san::check_dns_syntax;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_dns_name_syntax",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.6; RFC 1034 §3.5; RFC 1123 §2.1",
    description: "every dNSName is a lower-case name in preferred syntax, a wildcard only as the whole leftmost label",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Ok(Some(san)) = input.parsed.subject_alternative_name() else {
        return Vec::new();
    };
    let mut messages = Vec::new();
    for name in &san.value.general_names {
        if let GeneralName::DNSName(dns) = name {
            if let Err(e) = check_dns_syntax(dns) {
                messages.push(format!("dNSName {dns:?}: {e}"));
            } else if dns.bytes().any(|b| b.is_ascii_uppercase()) {
                messages.push(format!("dNSName {dns:?} is not in lower case"));
            }
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::lints::testing::*;

    #[test]
    fn host_names_pass() {
        assert_clean(&LINT, &leaf_case(LeafKind::Server));
        assert_clean(&LINT, &leaf_case(LeafKind::Client));
    }

    #[test]
    fn bad_names_are_flagged() {
        let case = bad_leaf(LeafKind::Server, |params| {
            params.subject_alt_names = ["a_b.example.com", "Upper.example.com", "x.example.com."]
                .into_iter()
                .map(|n| rcgen::SanType::DnsName(ia5(n)))
                .collect();
        });
        assert_flags(&LINT, &case, "\"a_b.example.com\": character '_'");
        assert_flags(&LINT, &case, "not in lower case");
        assert_flags(&LINT, &case, "trailing dot");
    }
}
