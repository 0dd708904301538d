//! `e_leaf_issuer_not_root`: leaves are issued by intermediates. A root's key stays
//! offline and signs only CA certificates and ARLs (DESIGN §2), so a leaf whose issuer
//! is self-issued — or has no certificate at all — is refused.

use super::{CertificateInput, CertificateLint, Severity};
use crate::leaf::IssuerFacts;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_issuer_not_root",
    severity: Severity::Error,
    citation: "CA/B BR §6.1.7; RFC 5280 §6.1",
    description: "the issuer is an intermediate with a certificate, not a self-issued root",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match IssuerFacts::of(input.issuer) {
        Ok(facts) if facts.self_issued => {
            vec!["the issuer is a self-issued root; root keys do not sign leaves".into()]
        }
        Ok(_) => Vec::new(),
        Err(e) => vec![format!("the issuer cannot sign leaves: {e}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::lints::testing::*;

    #[test]
    fn intermediates_pass() {
        assert_clean(&LINT, &leaf_case(LeafKind::Server));
    }

    #[test]
    fn roots_are_flagged() {
        let template = leaf_template(LeafKind::Server, key().spki());
        let case = build_leaf(&template, root_issuer(), |_| {});
        assert_flags(&LINT, &case, "self-issued root");
        let case = build_leaf(&template, root_case().issuer, |_| {});
        assert_flags(&LINT, &case, "no certificate");
    }
}
