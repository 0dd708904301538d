//! `e_leaf_name_constraints_permit`: every name of the leaf lies inside the issuer's
//! permitted subtrees and outside its excluded ones, as a verifier will check (DNS on
//! label boundaries, URI by host, IP by address and mask; wildcards must fit whole).

use super::{CertificateInput, CertificateLint, Severity};
use crate::SubjectAltName;
use crate::constraints::IssuerNameConstraints;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_name_constraints_permit",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.10, §6.1.3",
    description: "every subjectAltName entry is permitted by the issuer's name constraints",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let constraints = match IssuerNameConstraints::of(input.issuer) {
        Ok(Some(constraints)) => constraints,
        Ok(None) => return Vec::new(),
        Err(e) => return vec![format!("the issuer's name constraints: {e}")],
    };
    let Ok(Some(san)) = input.parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| SubjectAltName::from_general_name(name).ok())
        .filter_map(|name| constraints.check(&name).err())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;
    use crate::{LeafKind, NameConstraints};
    use carimbo_kms::SignatureAlgorithm;

    fn constrained_issuer() -> crate::IssuerInfo {
        let intermediate = intermediate_with(|template| {
            template.name_constraints = Some(NameConstraints {
                permitted_dns: vec!["example.com".into()],
                excluded_dns: vec!["secret.example.com".into()],
                permitted_uri_hosts: Vec::new(),
            });
        });
        crate::IssuerInfo::from_certificate(&intermediate.der, SignatureAlgorithm::EcdsaP256Sha256)
            .unwrap()
    }

    #[test]
    fn names_inside_pass() {
        assert_clean(&LINT, &leaf_case(LeafKind::Server));
        let template = leaf_template(LeafKind::Server, key().spki());
        let case = build_leaf(&template, constrained_issuer(), |_| {});
        assert_clean(&LINT, &case);
    }

    #[test]
    fn names_outside_are_flagged() {
        let mut template = leaf_template(LeafKind::Server, key().spki());
        template.sans = vec![
            "dns:www.example.org".parse().unwrap(),
            "dns:db.secret.example.com".parse().unwrap(),
        ];
        let case = build_leaf(&template, constrained_issuer(), |_| {});
        assert_flags(&LINT, &case, "dns:www.example.org is outside the permitted");
        assert_flags(
            &LINT,
            &case,
            "dns:db.secret.example.com is inside the excluded",
        );
    }
}
