//! `e_spiffe_id_syntax`: the URI SAN of a workload or client certificate is a SPIFFE
//! ID naming a workload: `spiffe://` in lower case, a trust domain of lower-case
//! letters, digits, `.`, `-`, `_` (no port or user info), a non-empty path of segments
//! of letters, digits, `.`, `-`, `_` (none empty, `.` or `..`, no trailing slash), no
//! query or fragment, at most 2048 octets.

use x509_parser::extensions::GeneralName;

use super::{CertificateInput, CertificateLint, Severity};
use crate::LeafKind;
use crate::san::check_spiffe_id;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_spiffe_id_syntax",
    severity: Severity::Error,
    citation: "SPIFFE-ID §2, §2.1, §2.2; SPIFFE X509-SVID §2",
    description: "every URI SAN of a workload or client certificate is a SPIFFE ID with a non-root path",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(profile) = input.profile.leaf() else {
        return Vec::new();
    };
    if profile.kind == LeafKind::Server {
        return Vec::new();
    }
    let Ok(Some(san)) = input.parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => check_spiffe_id(uri)
                .err()
                .map(|e| format!("URI {uri:?} is not a workload SPIFFE ID: {e}")),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn spiffe_ids_pass() {
        assert_clean(&LINT, &leaf_case(LeafKind::Workload));
        assert_clean(&LINT, &leaf_case(LeafKind::Client));
    }

    #[test]
    fn bad_ids_are_flagged() {
        let case = bad_leaf(LeafKind::Workload, |params| {
            params.subject_alt_names =
                vec![rcgen::SanType::URI(ia5("spiffe://Prod.example.com/x"))];
        });
        assert_flags(&LINT, &case, "lower case");
        let case = bad_leaf(LeafKind::Workload, |params| {
            params.subject_alt_names = vec![rcgen::SanType::URI(ia5("spiffe://prod.example.com"))];
        });
        assert_flags(&LINT, &case, "no path");
    }
}
