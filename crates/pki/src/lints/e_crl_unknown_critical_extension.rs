//! `e_crl_unknown_critical_extension`: the only critical CRL extensions Carimbo
//! expects are the issuing distribution point and delta CRL indicator; CRL entries
//! have no critical extension (certificateIssuer belongs to indirect CRLs).

use super::{CrlInput, CrlLint, Severity};
use crate::der::{oid, oid_to_string};

/// 2.5.29.27 deltaCRLIndicator.
const DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1d, 0x1b];

pub(crate) const LINT: CrlLint = CrlLint {
    name: "e_crl_unknown_critical_extension",
    severity: Severity::Error,
    citation: "RFC 5280 §5.2, §5.3",
    description: "no critical CRL or entry extension other than issuingDistributionPoint and deltaCRLIndicator",
    check,
};

fn check(input: &CrlInput<'_>) -> Vec<String> {
    let known = [oid::ISSUING_DISTRIBUTION_POINT, DELTA_CRL_INDICATOR];
    let mut messages: Vec<String> = input
        .raw
        .extensions
        .iter()
        .filter(|e| e.critical && !known.contains(&e.oid))
        .map(|e| format!("CRL extension {} is critical", oid_to_string(e.oid)))
        .collect();
    for entry in &input.raw.revoked {
        for extension in entry.extensions.iter().filter(|e| e.critical) {
            messages.push(format!(
                "entry {} has critical extension {}",
                hex::encode(entry.serial.content),
                oid_to_string(extension.oid)
            ));
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der;
    use crate::lints::testing::*;

    #[test]
    fn profile_crls_pass() {
        assert_crl_clean(&LINT, &crl_case(crate::CrlKind::Arl));
    }

    #[test]
    fn a_critical_private_extension_is_flagged() {
        let case = crl_case(crate::CrlKind::Arl);
        let private = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f, 0x01];
        let der = set_crl_extension(
            &case.der,
            &private,
            Some(der::extension(&private, true, &[0x05, 0x00])),
        );
        assert_crl_flags(&LINT, &with_crl_der(&case, der), "is critical");
    }
}
