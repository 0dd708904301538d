//! `e_cert_version_v3`: a certificate with extensions is version 3.

use super::{CertificateInput, CertificateLint, Severity};

pub(crate) const LINT: CertificateLint = CertificateLint {
    name: "e_cert_version_v3",
    severity: Severity::Error,
    citation: "RFC 5280 §4.1.2.1",
    description: "the version field is present and says v3 (integer 2)",
    check,
};

fn check(input: &CertificateInput<'_>) -> Vec<String> {
    match input.raw.version {
        Some(version) if version.content == [0x02, 0x01, 0x02] => Vec::new(),
        Some(_) => vec!["version is not v3".into()],
        None => vec!["version is absent (v1)".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lints::testing::*;

    #[test]
    fn v3_passes() {
        assert_clean(&LINT, &root_case());
    }

    #[test]
    fn v2_is_flagged() {
        let mut case = root_case();
        case.der = patch_tbs(&case.der, 0, &[0xa0, 0x03, 0x02, 0x01, 0x01]);
        assert_flags(&LINT, &case, "not v3");
    }
}
