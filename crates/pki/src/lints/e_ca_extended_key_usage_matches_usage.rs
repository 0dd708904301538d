//! `e_ca_extended_key_usage_matches_usage`: an intermediate's EKU is exactly its
//! usage's — serverAuth for int-server, serverAuth + clientAuth for int-workload —
//! non-critical and without anyExtendedKeyUsage; a cross-certificate without a usage
//! has no EKU.

use super::{CertificateInput, CertificateLint, Severity};
use crate::der::oid;

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_ca_extended_key_usage_matches_usage",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.12; CA/B BR §7.1.2.10.6",
    description: "an intermediate's EKU is exactly serverAuth (server) or serverAuth + clientAuth (workload), non-critical",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    if input.profile.is_root() {
        return Vec::new();
    }
    let raw = input.raw.extension(oid::EXTENDED_KEY_USAGE);
    let Some(usage) = input.profile.usage() else {
        return match raw {
            Some(_) => vec!["extendedKeyUsage is present but the profile has no usage".into()],
            None => Vec::new(),
        };
    };
    let Some(raw) = raw else {
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
    let (server, client) = usage.server_and_client();
    if eku.any {
        messages.push("extendedKeyUsage contains anyExtendedKeyUsage".into());
    }
    if eku.server_auth != server {
        messages.push(format!(
            "serverAuth is {}expected for a {usage:?} intermediate",
            if server { "" } else { "not " }
        ));
    }
    if eku.client_auth != client {
        messages.push(format!(
            "clientAuth is {}expected for a {usage:?} intermediate",
            if client { "" } else { "not " }
        ));
    }
    let others = eku.code_signing
        || eku.email_protection
        || eku.time_stamping
        || eku.ocsp_signing
        || !eku.other.is_empty();
    if others {
        messages.push("extendedKeyUsage contains purposes beyond serverAuth/clientAuth".into());
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IntermediateUsage;
    use crate::lints::testing::*;

    #[test]
    fn both_usages_pass() {
        assert_clean(&LINT, &intermediate_case(IntermediateUsage::Server));
        assert_clean(&LINT, &intermediate_case(IntermediateUsage::Workload));
    }

    #[test]
    fn wrong_or_missing_usages_are_flagged() {
        let case = bad_intermediate(|params| {
            params.extended_key_usages = vec![
                rcgen::ExtendedKeyUsagePurpose::ServerAuth,
                rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            ];
        });
        assert_flags(&LINT, &case, "clientAuth is not expected");
        let case = bad_intermediate(|params| params.extended_key_usages.clear());
        assert_flags(&LINT, &case, "absent");
        let case = bad_intermediate(|params| {
            params
                .extended_key_usages
                .push(rcgen::ExtendedKeyUsagePurpose::Any);
        });
        assert_flags(&LINT, &case, "anyExtendedKeyUsage");
    }
}
