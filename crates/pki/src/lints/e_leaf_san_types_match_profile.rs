//! `e_leaf_san_types_match_profile`: the subjectAltName carries only the name types of
//! its profile — server: DNS names (wildcards only when allowed) and IP addresses
//! (when allowed); client: URIs and DNS names (no wildcards); workload (X509-SVID):
//! URIs only — and no other GeneralName type.

use x509_parser::extensions::GeneralName;

use super::{CertificateInput, CertificateLint, Severity};
use crate::LeafKind;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_san_types_match_profile",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.6; SPIFFE X509-SVID §2",
    description: "SAN types fit the profile: server DNS (+ IP, wildcards when allowed), client URI + DNS, workload URI only",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(profile) = input.profile.leaf() else {
        return Vec::new();
    };
    let Ok(Some(san)) = input.parsed.subject_alternative_name() else {
        return Vec::new();
    };
    let kind = profile.kind;
    let mut messages = Vec::new();
    for name in &san.value.general_names {
        match name {
            GeneralName::DNSName(dns) => {
                if kind == LeafKind::Workload {
                    messages.push(format!("dNSName {dns:?} in a workload SVID"));
                } else if dns.starts_with("*.")
                    && !(kind == LeafKind::Server && profile.allow_wildcards)
                {
                    messages.push(format!(
                        "wildcard {dns:?} is not allowed by the {kind} profile"
                    ));
                }
            }
            GeneralName::IPAddress(_) => {
                if kind != LeafKind::Server || !profile.allow_ip_sans {
                    messages.push(format!("{name} is not allowed by the {kind} profile"));
                }
            }
            GeneralName::URI(uri) => {
                if kind == LeafKind::Server {
                    messages.push(format!("URI {uri:?} in a server certificate"));
                }
            }
            other => messages.push(format!("{other} is not a name type leaves carry")),
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn each_profile_passes() {
        for kind in LeafKind::ALL {
            assert_clean(&LINT, &leaf_case(kind));
        }
    }

    #[test]
    fn foreign_types_are_flagged() {
        let case = bad_leaf(LeafKind::Server, |params| {
            params
                .subject_alt_names
                .push(rcgen::SanType::URI(ia5("spiffe://td/x")));
            params
                .subject_alt_names
                .push(rcgen::SanType::DnsName(ia5("*.example.com")));
        });
        assert_flags(
            &LINT,
            &case,
            "URI \"spiffe://td/x\" in a server certificate",
        );
        assert_flags(&LINT, &case, "wildcard \"*.example.com\"");
        let case = bad_leaf(LeafKind::Workload, |params| {
            params
                .subject_alt_names
                .push(rcgen::SanType::DnsName(ia5("api.example.com")));
            params
                .subject_alt_names
                .push(rcgen::SanType::Rfc822Name(ia5("a@example.com")));
        });
        assert_flags(
            &LINT,
            &case,
            "dNSName \"api.example.com\" in a workload SVID",
        );
        assert_flags(&LINT, &case, "is not a name type leaves carry");
        let case = bad_leaf(LeafKind::Client, |params| {
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress("192.0.2.1".parse().unwrap()));
        });
        assert_flags(&LINT, &case, "not allowed by the client profile");
    }
}
