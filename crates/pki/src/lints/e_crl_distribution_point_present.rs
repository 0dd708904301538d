//! `e_crl_distribution_point_present`: intermediates and cross-certificates say where
//! their issuer's CRL is (the only way their revocation is published: nothing online
//! vouches for an intermediate).

use x509_parser::extensions::{DistributionPointName, ParsedExtension};

use super::{CertificateInput, CertificateLint, Severity, extensions_with};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_crl_distribution_point_present",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.13; CA/B BR §7.1.2.10.4",
    description: "a non-root CA certificate has cRLDistributionPoints with at least one fullName URI",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    if input.profile.is_root() {
        return Vec::new();
    }
    let extensions = input.parsed.extensions();
    let Some(extension) = extensions_with(extensions, oid::CRL_DISTRIBUTION_POINTS).next() else {
        return vec!["cRLDistributionPoints is absent".into()];
    };
    let ParsedExtension::CRLDistributionPoints(points) = extension.parsed_extension() else {
        return vec!["cRLDistributionPoints does not parse".into()];
    };
    let has_uri = points.points.iter().any(|point| {
        matches!(&point.distribution_point, Some(DistributionPointName::FullName(names)) if !names.is_empty())
    });
    if has_uri {
        Vec::new()
    } else {
        vec!["cRLDistributionPoints has no fullName".into()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn a_profile_intermediate_passes() {
        assert_clean(&LINT, &intermediate_case(crate::IntermediateUsage::Server));
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn a_missing_distribution_point_is_flagged() {
        let case = bad_intermediate(|params| params.crl_distribution_points.clear());
        assert_flags(&LINT, &case, "absent");
    }
}
