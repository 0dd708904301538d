//! `e_leaf_ip_address_san_length`: an iPAddress name is an IPv4 (4 octets) or IPv6
//! (16 octets) address; address ranges belong only in name constraints.

use x509_parser::extensions::GeneralName;

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_leaf_ip_address_san_length",
    severity: Severity::Error,
    citation: "RFC 5280 §4.2.1.6",
    description: "every iPAddress name is 4 (IPv4) or 16 (IPv6) octets",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    let Ok(Some(san)) = input.parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::IPAddress(bytes) if bytes.len() != 4 && bytes.len() != 16 => Some(
                format!("iPAddress {} is {} octets", hex::encode(bytes), bytes.len()),
            ),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use crate::der::{self, TAG_SEQUENCE, context_primitive, oid};
    use crate::lints::testing::*;

    #[test]
    fn addresses_pass() {
        assert_clean(&LINT, &leaf_case(LeafKind::Server));
        let case = leaf_case_with(LeafKind::Server, |template| {
            template.sans.push("ip:2001:db8::10".parse().unwrap());
        });
        assert_clean(&LINT, &case);
    }

    #[test]
    fn a_range_is_flagged() {
        let mut case = leaf_case(LeafKind::Server);
        let names = der::tlv(
            TAG_SEQUENCE,
            &der::tlv(context_primitive(7), &[10, 0, 0, 0, 255, 0, 0, 0]),
        );
        let extension = der::extension(oid::SUBJECT_ALT_NAME, true, &names);
        case.der = set_extension(&case.der, oid::SUBJECT_ALT_NAME, Some(extension));
        assert_flags(&LINT, &case, "is 8 octets");
    }
}
