//! `w_root_revocation_pointers`: a root is a trust anchor; relying parties do not
//! check its revocation, so CRL distribution points and AIA in it are dead weight.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "w_root_revocation_pointers",
    severity: Severity::Warning,
    citation: "RFC 5280 §6.1.1 (d); CA/B BR §7.1.2.1.2",
    description: "a root carries cRLDistributionPoints or authorityInfoAccess",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    if !input.profile.is_root() {
        return Vec::new();
    }
    [
        (oid::CRL_DISTRIBUTION_POINTS, "cRLDistributionPoints"),
        (oid::AUTHORITY_INFO_ACCESS, "authorityInfoAccess"),
    ]
    .into_iter()
    .filter(|(oid, _)| input.raw.extension(oid).is_some())
    .map(|(_, name)| format!("root certificate carries {name}"))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn a_bare_root_passes() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn a_root_with_a_crl_pointer_is_flagged() {
        let case = bad_root(|params| {
            params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec![CRL_URL.into()],
            }];
        });
        assert_flags(&LINT, &case, "cRLDistributionPoints");
    }
}
