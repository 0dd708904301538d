//! `e_leaf_eku_matches_profile`: a leaf's extendedKeyUsage is exactly its profile's —
//! serverAuth (server), clientAuth (client), serverAuth + clientAuth (workload, SPIFFE
//! X509-SVID §4.4) — non-critical, without anyExtendedKeyUsage or other purposes.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_eku_matches_profile",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.12; SPIFFE X509-SVID §4.4",
    description: "extendedKeyUsage is present, non-critical, and exactly serverAuth (server), clientAuth (client) or both (workload)",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Some(profile) = input.profile.leaf() else {
        return Vec::new();
    };
    let Some(raw) = input.raw.extension(oid::EXTENDED_KEY_USAGE) else {
        return vec!["extendedKeyUsage is absent".into()];
    };
    let mut messages = Vec::new();
    if raw.critical {
        messages.push("extendedKeyUsage is critical".into());
    }
    let eku = match input.parsed.extended_key_usage() {
        Ok(Some(eku)) => eku.value,
        Ok(None) => return messages,
        Err(e) => {
            messages.push(format!("extendedKeyUsage: {e}"));
            return messages;
        }
    };
    let (server, client) = profile.kind.server_and_client();
    if eku.any {
        messages.push("extendedKeyUsage contains anyExtendedKeyUsage".into());
    }
    for (found, expected, name) in [
        (eku.server_auth, server, "serverAuth"),
        (eku.client_auth, client, "clientAuth"),
    ] {
        if found != expected {
            messages.push(format!(
                "{name} is {}expected in a {} certificate",
                if expected { "" } else { "not " },
                profile.kind
            ));
        }
    }
    if eku.code_signing
        || eku.email_protection
        || eku.time_stamping
        || eku.ocsp_signing
        || !eku.other.is_empty()
    {
        messages.push("extendedKeyUsage contains purposes beyond serverAuth/clientAuth".into());
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::lints::testing::*;

    #[test]
    fn each_profile_passes() {
        for kind in LeafKind::ALL {
            assert_clean(&LINT, &leaf_case(kind));
        }
    }

    #[test]
    fn wrong_purposes_are_flagged() {
        let case = bad_leaf(LeafKind::Server, |params| {
            params
                .extended_key_usages
                .push(rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        });
        assert_flags(
            &LINT,
            &case,
            "clientAuth is not expected in a server certificate",
        );
        let case = bad_leaf(LeafKind::Workload, |params| {
            params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        });
        assert_flags(
            &LINT,
            &case,
            "clientAuth is expected in a workload certificate",
        );
        let case = bad_leaf(LeafKind::Client, |params| {
            params
                .extended_key_usages
                .push(rcgen::ExtendedKeyUsagePurpose::CodeSigning);
        });
        assert_flags(&LINT, &case, "beyond serverAuth/clientAuth");
        let case = bad_leaf(LeafKind::Client, |params| {
            params.extended_key_usages.clear()
        });
        assert_flags(&LINT, &case, "absent");
    }
}
