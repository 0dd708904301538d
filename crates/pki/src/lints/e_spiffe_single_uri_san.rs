//! `e_spiffe_single_uri_san`: an X509-SVID carries exactly one URI SAN, its SPIFFE ID
//! (SPIFFE X509-SVID §2); Carimbo's client certificates follow the same rule, so that
//! a client has exactly one workload identity.

use x509_parser::extensions::GeneralName;

use super::{CertificateInput, CertificateLint, Severity};
use crate::LeafKind;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_spiffe_single_uri_san",
    severity: Severity::Error,
    citation: "SPIFFE X509-SVID §2",
    description: "a workload or client certificate has exactly one URI SAN",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(profile) = input.profile.leaf() else {
        return Vec::new();
    };
    if profile.kind == LeafKind::Server {
        return Vec::new();
    }
    let count = match input.parsed.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter(|name| matches!(name, GeneralName::URI(_)))
            .count(),
        _ => 0,
    };
    if count == 1 {
        Vec::new()
    } else {
        vec![format!(
            "{count} URI SANs in a {} certificate; exactly one (the SPIFFE ID) is required",
            profile.kind
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn one_spiffe_id_passes() {
        assert_clean(&LINT, &leaf_case(LeafKind::Workload));
        assert_clean(&LINT, &leaf_case(LeafKind::Client));
        assert_clean(&LINT, &leaf_case(LeafKind::Server));
    }

    #[test]
    fn none_or_two_are_flagged() {
        let case = bad_leaf(LeafKind::Workload, |params| {
            params
                .subject_alt_names
                .push(rcgen::SanType::URI(ia5("spiffe://prod.example.com/other")));
        });
        assert_flags(&LINT, &case, "2 URI SANs in a workload certificate");
        let case = bad_leaf(LeafKind::Client, |params| {
            params
                .subject_alt_names
                .retain(|name| !matches!(name, rcgen::SanType::URI(_)));
        });
        assert_flags(&LINT, &case, "0 URI SANs in a client certificate");
    }
}
