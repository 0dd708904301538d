//! `e_leaf_issuer_eku_permits`: an EKU in a CA certificate constrains everything below
//! it in OpenSSL, rustls and most verifiers, so the issuer's EKU (when present, and
//! unless it holds anyExtendedKeyUsage) must include every purpose of the leaf's: a
//! server intermediate does not issue client or workload certificates.

use super::{CertificateInput, CertificateLint, Severity};
use crate::leaf::IssuerFacts;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_issuer_eku_permits",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.12; CA/B BR §7.1.2.10.6",
    description: "the issuer's extendedKeyUsage, when present, includes every purpose of the leaf's profile",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(profile) = input.profile.leaf() else {
        return Vec::new();
    };
    let Ok(IssuerFacts {
        usage: Some(usage), ..
    }) = IssuerFacts::of(input.issuer)
    else {
        return Vec::new(); // no EKU constrains nothing; no certificate: e_leaf_issuer_not_root
    };
    let missing = usage.missing_for(profile.kind);
    if missing.is_empty() {
        Vec::new()
    } else {
        vec![format!(
            "the issuer's extendedKeyUsage ({}) lacks {} needed by a {} certificate",
            usage.listed.join(", "),
            missing.join(", "),
            profile.kind
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use crate::{IntermediateUsage, LeafKind};

    #[test]
    fn matching_issuers_pass() {
        for kind in LeafKind::ALL {
            assert_clean(&LINT, &leaf_case(kind));
        }
        // int-workload may also issue server certificates (its EKU has serverAuth).
        let template = leaf_template(LeafKind::Server, key().spki());
        let case = build_leaf(
            &template,
            intermediate_issuer(IntermediateUsage::Workload),
            |_| {},
        );
        assert_clean(&LINT, &case);
    }

    #[test]
    fn a_server_intermediate_issuing_clients_is_flagged() {
        for kind in [LeafKind::Client, LeafKind::Workload] {
            let template = leaf_template(kind, key().spki());
            let case = build_leaf(
                &template,
                intermediate_issuer(IntermediateUsage::Server),
                |_| {},
            );
            assert_flags(&LINT, &case, "(serverAuth) lacks clientAuth");
        }
    }
}
