//! `e_crl_distribution_point_http_only`: CRL distribution points are plain `http://`
//! URLs in fullName form (https would need the very PKI being checked; relying
//! parties fetch http only; the CRL is signed anyway). No reasons or cRLIssuer:
//! Carimbo CRLs are complete and issued by the CA itself.

use x509_parser::extensions::{DistributionPointName, ParsedExtension};

use super::{CertificateInput, CertificateLint, Severity, check_http_url, extensions_with, uri_of};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_crl_distribution_point_http_only",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.13; RFC 5280 §8 (HTTP)",
    description: "every distribution point is a fullName of http:// URIs, without reasons or cRLIssuer",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let mut messages = Vec::new();
    for extension in extensions_with(input.parsed.extensions(), oid::CRL_DISTRIBUTION_POINTS) {
        let ParsedExtension::CRLDistributionPoints(points) = extension.parsed_extension() else {
            messages.push("cRLDistributionPoints does not parse".into());
            continue;
        };
        for point in &points.points {
            match &point.distribution_point {
                Some(DistributionPointName::FullName(names)) => {
                    for name in names {
                        if let Err(e) = uri_of(name).and_then(check_http_url) {
                            messages.push(format!("distribution point {e}"));
                        }
                    }
                }
                Some(DistributionPointName::NameRelativeToCRLIssuer(_)) => {
                    messages.push("distribution point uses nameRelativeToCRLIssuer".into())
                }
                None => messages.push("distribution point has no name".into()),
            }
            if point.reasons.is_some() {
                messages.push("distribution point limits reasons (partitioned CRL)".into());
            }
            if point.crl_issuer.is_some() {
                messages.push("distribution point names a cRLIssuer (indirect CRL)".into());
            }
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn http_passes() {
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
    }

    #[test]
    fn https_and_ldap_are_flagged() {
        let case = bad_intermediate(|params| {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![
                    "https://crl.example.com/root.crl".into(),
                    "ldap://ldap.example.com/cn=root".into(),
                ],
            }];
        });
        assert_flags(
            &LINT,
            &case,
            "\"https://crl.example.com/root.crl\" is not an http:// URL",
        );
        assert_flags(&LINT, &case, "ldap://");
    }
}
