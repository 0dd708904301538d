//! The lints: one per file, named `e_` (error: blocks signing), `w_` (warning) or `n_`
//! (notice), each citing the section it enforces, each with a good and a bad example
//! in its tests.
//!
//! [`lint_certificate`] (CA certificates), [`lint_leaf`] (end-entity certificates) and
//! [`lint_crl`] run every lint on any DER input, so that the same checks serve
//! lint-before-sign and the re-check of finished artifacts. Certificate lints come in
//! four lists: those for every certificate, those for CA certificates, those for
//! leaves and those for delegated OCSP responders ([`lint_ocsp_responder`], which also
//! runs two CA lints: the named subject and the key).

use std::fmt;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, X509Extension};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::der::{self, Reader, TAG_SEQUENCE, context_constructed};
use crate::raw::{RawCertificate, RawCrl};
use crate::{CertificateProfile, CrlKind, IntermediateUsage, IssuerInfo, LeafProfile};

#[cfg(test)]
pub(crate) mod testing;

mod e_aia_ca_issuers_present;
mod e_aia_http_only;
mod e_aia_not_critical;
mod e_arl_issuing_distribution_point;
mod e_arl_next_update_within_one_year;
mod e_authority_key_identifier_matches_issuer;
mod e_ca_basic_constraints_critical;
mod e_ca_extended_key_usage_matches_usage;
mod e_ca_key_usage_critical;
mod e_ca_key_usage_crl_sign;
mod e_ca_key_usage_key_cert_sign;
mod e_ca_key_usage_unexpected_bits;
mod e_ca_path_len_matches_profile;
mod e_cert_version_v3;
mod e_crl_authority_key_identifier;
mod e_crl_distribution_point_http_only;
mod e_crl_distribution_point_present;
mod e_crl_empty_revoked_list_absent;
mod e_crl_entry_serial_number;
mod e_crl_issuer_name_matches;
mod e_crl_issuing_distribution_point_critical;
mod e_crl_next_update;
mod e_crl_number;
mod e_crl_reason_code_valid;
mod e_crl_signature_algorithm_matches_issuer_key;
mod e_crl_signature_algorithm_mismatch;
mod e_crl_time_encoding;
mod e_crl_unknown_critical_extension;
mod e_crl_version_v2;
mod e_dns_name_syntax;
mod e_extension_duplicate;
mod e_intermediate_validity_max_8_years;
mod e_issuer_name_matches_issuer_subject;
mod e_key_usage_basic_constraints_consistent;
mod e_leaf_basic_constraints_not_ca;
mod e_leaf_eku_matches_profile;
mod e_leaf_ip_address_san_length;
mod e_leaf_issuer_eku_permits;
mod e_leaf_issuer_not_root;
mod e_leaf_key_usage_critical_digital_signature;
mod e_leaf_key_usage_no_ca_bits;
mod e_leaf_key_usage_unexpected_bits;
mod e_leaf_name_constraints_absent;
mod e_leaf_name_constraints_permit;
mod e_leaf_san_critical_when_subject_empty;
mod e_leaf_san_duplicate;
mod e_leaf_san_present;
mod e_leaf_san_types_match_profile;
mod e_leaf_subject_empty;
mod e_leaf_subject_public_key_allowed;
mod e_leaf_validity_max_for_profile;
mod e_name_constraints_critical;
mod e_name_constraints_dns_syntax;
mod e_name_constraints_not_empty;
mod e_name_constraints_subtree_bounds;
mod e_name_constraints_uri_host_syntax;
mod e_ocsp_responder_eku_ocsp_signing;
mod e_ocsp_responder_extensions_allowed;
mod e_ocsp_responder_key_usage_digital_signature;
mod e_ocsp_responder_nocheck_present;
mod e_ocsp_responder_not_ca;
mod e_ocsp_responder_validity_max_30_days;
mod e_root_no_extended_key_usage;
mod e_root_self_issued;
mod e_root_validity_max_25_years;
mod e_serial_number_entropy;
mod e_serial_number_positive;
mod e_serial_number_too_long;
mod e_signature_algorithm_matches_issuer_key;
mod e_signature_algorithm_mismatch;
mod e_spiffe_id_syntax;
mod e_spiffe_single_uri_san;
mod e_subject_common_name_present;
mod e_subject_key_identifier_present;
mod e_subject_name_encoding;
mod e_subject_public_key_allowed;
mod e_unique_identifiers_absent;
mod e_unknown_critical_extension;
mod e_validity_not_expired;
mod e_validity_order;
mod e_validity_time_encoding;
mod e_validity_within_issuer;
mod n_ca_key_usage_digital_signature;
mod w_ca_aia_ocsp;
mod w_crl_reason_code_unspecified;
mod w_leaf_revocation_pointers_absent;
mod w_root_revocation_pointers;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// A requirement is violated: nothing is signed.
    Error,
    /// A recommendation is not followed; signing proceeds, the finding is reported.
    Warning,
    /// Worth knowing; signing proceeds.
    Notice,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
        })
    }
}

/// One problem a lint found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The lint's name, e.g. `e_ca_key_usage_critical`.
    pub lint: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// The section it enforces, e.g. `RFC 5280 §4.2.1.3`.
    pub citation: &'static str,
    /// What is wrong in this artifact.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} ({})",
            self.severity, self.lint, self.message, self.citation
        )
    }
}

/// A lint's description, for listings and documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LintInfo {
    /// The lint's name.
    pub name: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// The section it enforces.
    pub citation: &'static str,
    /// What it checks.
    pub description: &'static str,
    /// `certificate` (every certificate), `CA certificate`, `leaf certificate`,
    /// `OCSP responder certificate` or `crl`.
    pub applies_to: &'static str,
}

/// What a certificate is linted as: a CA certificate of a [`CertificateProfile`], a
/// leaf of a [`LeafProfile`] or a delegated OCSP responder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Ca(CertificateProfile),
    Leaf(LeafProfile),
    Responder,
}

impl Target {
    /// Whether this is a root.
    pub(crate) fn is_root(&self) -> bool {
        matches!(self, Self::Ca(profile) if profile.is_root())
    }

    /// The CA profile's EKU usage (`None` for roots and leaves).
    pub(crate) fn usage(&self) -> Option<IntermediateUsage> {
        match self {
            Self::Ca(profile) => profile.usage(),
            Self::Leaf(_) | Self::Responder => None,
        }
    }

    /// The CA profile's pathLenConstraint (`None` for leaves).
    pub(crate) fn path_len(&self) -> Option<u8> {
        match self {
            Self::Ca(profile) => profile.path_len(),
            Self::Leaf(_) | Self::Responder => None,
        }
    }

    /// The leaf profile, for leaves.
    pub(crate) fn leaf(&self) -> Option<&LeafProfile> {
        match self {
            Self::Leaf(profile) => Some(profile),
            Self::Ca(_) | Self::Responder => None,
        }
    }
}

/// What a certificate lint sees.
pub(crate) struct CertificateInput<'a> {
    pub raw: RawCertificate<'a>,
    pub parsed: X509Certificate<'a>,
    pub profile: Target,
    pub issuer: &'a IssuerInfo,
    pub now: OffsetDateTime,
}

/// A certificate lint: returns one message per problem found.
pub(crate) struct CertificateLint {
    pub name: &'static str,
    pub severity: Severity,
    pub citation: &'static str,
    pub description: &'static str,
    pub check: fn(&CertificateInput<'_>) -> Vec<String>,
}

/// What a CRL lint sees.
pub(crate) struct CrlInput<'a> {
    pub raw: RawCrl<'a>,
    pub parsed: CertificateRevocationList<'a>,
    pub kind: CrlKind,
    pub issuer: &'a IssuerInfo,
}

/// A CRL lint: returns one message per problem found.
pub(crate) struct CrlLint {
    pub name: &'static str,
    pub severity: Severity,
    pub citation: &'static str,
    pub description: &'static str,
    pub check: fn(&CrlInput<'_>) -> Vec<String>,
}

/// Lints for every certificate, CA or leaf.
const COMMON_LINTS: &[CertificateLint] = &[
    e_cert_version_v3::LINT,
    e_serial_number_positive::LINT,
    e_serial_number_too_long::LINT,
    e_serial_number_entropy::LINT,
    e_signature_algorithm_mismatch::LINT,
    e_signature_algorithm_matches_issuer_key::LINT,
    e_issuer_name_matches_issuer_subject::LINT,
    e_subject_name_encoding::LINT,
    e_unique_identifiers_absent::LINT,
    e_validity_order::LINT,
    e_validity_time_encoding::LINT,
    e_validity_not_expired::LINT,
    e_validity_within_issuer::LINT,
    e_key_usage_basic_constraints_consistent::LINT,
    e_subject_key_identifier_present::LINT,
    e_authority_key_identifier_matches_issuer::LINT,
    e_crl_distribution_point_http_only::LINT,
    e_aia_http_only::LINT,
    e_aia_not_critical::LINT,
    e_name_constraints_critical::LINT,
    e_name_constraints_not_empty::LINT,
    e_name_constraints_subtree_bounds::LINT,
    e_name_constraints_dns_syntax::LINT,
    e_name_constraints_uri_host_syntax::LINT,
    e_unknown_critical_extension::LINT,
    e_extension_duplicate::LINT,
];

/// Lints for CA certificates (roots, intermediates, cross-certificates).
const CA_LINTS: &[CertificateLint] = &[
    e_subject_common_name_present::LINT,
    e_subject_public_key_allowed::LINT,
    e_root_validity_max_25_years::LINT,
    e_intermediate_validity_max_8_years::LINT,
    e_ca_basic_constraints_critical::LINT,
    e_ca_path_len_matches_profile::LINT,
    e_ca_key_usage_critical::LINT,
    e_ca_key_usage_key_cert_sign::LINT,
    e_ca_key_usage_crl_sign::LINT,
    e_ca_key_usage_unexpected_bits::LINT,
    n_ca_key_usage_digital_signature::LINT,
    e_root_no_extended_key_usage::LINT,
    e_ca_extended_key_usage_matches_usage::LINT,
    e_root_self_issued::LINT,
    e_crl_distribution_point_present::LINT,
    e_aia_ca_issuers_present::LINT,
    w_ca_aia_ocsp::LINT,
    w_root_revocation_pointers::LINT,
];

/// Lints for leaf (end-entity) certificates.
const LEAF_LINTS: &[CertificateLint] = &[
    e_leaf_subject_empty::LINT,
    e_leaf_subject_public_key_allowed::LINT,
    e_leaf_validity_max_for_profile::LINT,
    e_leaf_basic_constraints_not_ca::LINT,
    e_leaf_key_usage_critical_digital_signature::LINT,
    e_leaf_key_usage_no_ca_bits::LINT,
    e_leaf_key_usage_unexpected_bits::LINT,
    e_leaf_eku_matches_profile::LINT,
    e_leaf_san_present::LINT,
    e_leaf_san_critical_when_subject_empty::LINT,
    e_leaf_san_duplicate::LINT,
    e_leaf_san_types_match_profile::LINT,
    e_dns_name_syntax::LINT,
    e_leaf_ip_address_san_length::LINT,
    e_spiffe_single_uri_san::LINT,
    e_spiffe_id_syntax::LINT,
    e_leaf_name_constraints_absent::LINT,
    e_leaf_issuer_not_root::LINT,
    e_leaf_issuer_eku_permits::LINT,
    e_leaf_name_constraints_permit::LINT,
    w_leaf_revocation_pointers_absent::LINT,
];

/// Lints for delegated OCSP responder certificates. The two CA lints come first: a
/// responder has a named subject and a key Carimbo signs with.
const RESPONDER_LINTS: &[CertificateLint] = &[
    e_subject_common_name_present::LINT,
    e_subject_public_key_allowed::LINT,
    e_ocsp_responder_validity_max_30_days::LINT,
    e_ocsp_responder_not_ca::LINT,
    e_ocsp_responder_key_usage_digital_signature::LINT,
    e_ocsp_responder_eku_ocsp_signing::LINT,
    e_ocsp_responder_nocheck_present::LINT,
    e_ocsp_responder_extensions_allowed::LINT,
];

const CRL_LINTS: &[CrlLint] = &[
    e_crl_version_v2::LINT,
    e_crl_signature_algorithm_mismatch::LINT,
    e_crl_signature_algorithm_matches_issuer_key::LINT,
    e_crl_issuer_name_matches::LINT,
    e_crl_authority_key_identifier::LINT,
    e_crl_number::LINT,
    e_crl_next_update::LINT,
    e_crl_time_encoding::LINT,
    e_arl_next_update_within_one_year::LINT,
    e_arl_issuing_distribution_point::LINT,
    e_crl_issuing_distribution_point_critical::LINT,
    e_crl_reason_code_valid::LINT,
    w_crl_reason_code_unspecified::LINT,
    e_crl_empty_revoked_list_absent::LINT,
    e_crl_entry_serial_number::LINT,
    e_crl_unknown_critical_extension::LINT,
];

const CERTIFICATE_PARSE: &str = "e_certificate_parse";
const CRL_PARSE: &str = "e_crl_parse";

/// Every lint this crate runs, certificates first. A lint that runs on several kinds
/// of certificate is listed once, with the first kind it was written for.
pub fn lint_catalog() -> Vec<LintInfo> {
    let mut catalog = vec![LintInfo {
        name: CERTIFICATE_PARSE,
        severity: Severity::Error,
        citation: "RFC 5280 §4.1",
        description: "the certificate is DER and parses as an X.509 certificate",
        applies_to: "certificate",
    }];
    for (lints, applies_to) in [
        (COMMON_LINTS, "certificate"),
        (CA_LINTS, "CA certificate"),
        (LEAF_LINTS, "leaf certificate"),
        (RESPONDER_LINTS, "OCSP responder certificate"),
    ] {
        for lint in lints {
            if catalog.iter().any(|listed| listed.name == lint.name) {
                continue;
            }
            catalog.push(LintInfo {
                name: lint.name,
                severity: lint.severity,
                citation: lint.citation,
                description: lint.description,
                applies_to,
            });
        }
    }
    catalog.push(LintInfo {
        name: CRL_PARSE,
        severity: Severity::Error,
        citation: "RFC 5280 §5.1",
        description: "the CRL is DER and parses as an X.509 CRL",
        applies_to: "crl",
    });
    catalog.extend(CRL_LINTS.iter().map(|lint| LintInfo {
        name: lint.name,
        severity: lint.severity,
        citation: lint.citation,
        description: lint.description,
        applies_to: "crl",
    }));
    catalog
}

/// Runs every certificate lint for CA certificates on `der`, a CA certificate of
/// `profile` issued by `issuer`, as of `now`. Usable on any certificate (lint
/// certificates before signing, finished certificates afterwards). Findings come in
/// lint order.
pub fn lint_certificate(
    der: &[u8],
    profile: &CertificateProfile,
    issuer: &IssuerInfo,
    now: OffsetDateTime,
) -> Vec<Finding> {
    lint_target(der, Target::Ca(*profile), issuer, now)
}

/// Runs every certificate lint for leaves on `der`, a leaf (end-entity) certificate of
/// `profile` issued by `issuer` (from its certificate: the issuer's EKU and name
/// constraints are checked), as of `now`. Findings come in lint order.
pub fn lint_leaf(
    der: &[u8],
    profile: &LeafProfile,
    issuer: &IssuerInfo,
    now: OffsetDateTime,
) -> Vec<Finding> {
    lint_target(der, Target::Leaf(*profile), issuer, now)
}

/// Runs the lints for delegated OCSP responder certificates on `der`, a responder
/// certificate issued by `issuer`, as of `now`: the lints for every certificate, the
/// CA subject and key lints, and the `e_ocsp_responder_*` lints. Findings come in lint
/// order.
pub fn lint_ocsp_responder(der: &[u8], issuer: &IssuerInfo, now: OffsetDateTime) -> Vec<Finding> {
    lint_target(der, Target::Responder, issuer, now)
}

/// Runs the common lints and those of `target`'s kind.
pub(crate) fn lint_target(
    der: &[u8],
    target: Target,
    issuer: &IssuerInfo,
    now: OffsetDateTime,
) -> Vec<Finding> {
    let parse_failed = |message: String| {
        vec![Finding {
            lint: CERTIFICATE_PARSE,
            severity: Severity::Error,
            citation: "RFC 5280 §4.1",
            message,
        }]
    };
    let raw = match RawCertificate::parse(der) {
        Ok(raw) => raw,
        Err(e) => return parse_failed(format!("not a DER certificate: {e}")),
    };
    let parsed = match x509_parser::parse_x509_certificate(der) {
        Ok(([], parsed)) => parsed,
        Ok(_) => return parse_failed("trailing bytes after the certificate".into()),
        Err(e) => return parse_failed(format!("does not parse: {e}")),
    };
    let input = CertificateInput {
        raw,
        parsed,
        profile: target,
        issuer,
        now,
    };
    let specific = match target {
        Target::Ca(_) => CA_LINTS,
        Target::Leaf(_) => LEAF_LINTS,
        Target::Responder => RESPONDER_LINTS,
    };
    COMMON_LINTS
        .iter()
        .chain(specific)
        .flat_map(|lint| {
            (lint.check)(&input).into_iter().map(|message| Finding {
                lint: lint.name,
                severity: lint.severity,
                citation: lint.citation,
                message,
            })
        })
        .collect()
}

/// Runs every CRL lint on `der`, a CRL of `kind` issued by `issuer`.
pub fn lint_crl(der: &[u8], kind: CrlKind, issuer: &IssuerInfo) -> Vec<Finding> {
    let parse_failed = |message: String| {
        vec![Finding {
            lint: CRL_PARSE,
            severity: Severity::Error,
            citation: "RFC 5280 §5.1",
            message,
        }]
    };
    let raw = match RawCrl::parse(der) {
        Ok(raw) => raw,
        Err(e) => return parse_failed(format!("not a DER CRL: {e}")),
    };
    let parsed = match x509_parser::parse_x509_crl(der) {
        Ok(([], parsed)) => parsed,
        Ok(_) => return parse_failed("trailing bytes after the CRL".into()),
        Err(e) => return parse_failed(format!("does not parse: {e}")),
    };
    let input = CrlInput {
        raw,
        parsed,
        kind,
        issuer,
    };
    CRL_LINTS
        .iter()
        .flat_map(|lint| {
            (lint.check)(&input).into_iter().map(|message| Finding {
                lint: lint.name,
                severity: lint.severity,
                citation: lint.citation,
                message,
            })
        })
        .collect()
}

/// Whether any finding is an error.
pub(crate) fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// A finding of `e_crl_next_update`, for refusals made before a lint CRL exists.
pub(crate) fn next_update_finding(message: String) -> Finding {
    let lint = &e_crl_next_update::LINT;
    Finding {
        lint: lint.name,
        severity: lint.severity,
        citation: lint.citation,
        message,
    }
}

// ---- helpers shared by several lints ----

/// The parsed extensions with `oid` (DER content bytes).
pub(crate) fn extensions_with<'a, 'b>(
    extensions: &'b [X509Extension<'a>],
    oid: &'b [u8],
) -> impl Iterator<Item = &'b X509Extension<'a>> {
    extensions.iter().filter(move |e| e.oid.as_bytes() == oid)
}

/// The URI of a general name, or a description of what it is instead.
pub(crate) fn uri_of<'a>(name: &GeneralName<'a>) -> Result<&'a str, String> {
    match name {
        GeneralName::URI(uri) => Ok(uri),
        other => Err(format!("{other} is not a URI")),
    }
}

/// Checks `url` is a plain `http://` URL with a host (RFC 5280 §4.2.1.13 and
/// §4.2.2.1 name HTTP; relying parties such as nginx fetch only http://, and the data
/// is signed, DESIGN §4 "Publication").
pub(crate) fn check_http_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!("{url:?} is not an http:// URL"));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(host, _port)| host);
    if host.is_empty() || host.contains('@') {
        return Err(format!("{url:?} has no usable host"));
    }
    if !url.is_ascii()
        || url
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control())
    {
        return Err(format!("{url:?} contains spaces or non-ASCII characters"));
    }
    Ok(())
}

/// Checks `name` is a DNS domain in preferred name syntax (RFC 1034 §3.5, RFC 1123
/// §2.1): LDH labels of 1–63 octets, at most 253 octets, no leading or trailing hyphen.
pub(crate) fn check_dns_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.len() > 253 {
        return Err(format!("{name:?} is longer than 253 octets"));
    }
    for label in name.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "{name:?} is not a valid DNS name (label {label:?})"
            ));
        }
    }
    Ok(())
}

/// `time` plus `years` calendar years (29 February becomes 28 February).
pub(crate) fn add_years(time: OffsetDateTime, years: i32) -> OffsetDateTime {
    let year = time.year() + years;
    time.replace_year(year)
        .or_else(|_| {
            time.replace_day(28)
                .and_then(|earlier| earlier.replace_year(year))
        })
        .unwrap_or(time)
}

/// One `GeneralSubtree` of a name constraints extension, from the raw DER.
pub(crate) struct Subtree<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub has_minimum: bool,
    pub has_maximum: bool,
}

/// A name constraints extension value, from the raw DER: each list is `None` when
/// absent and `Some` (possibly empty, which is invalid) when present.
pub(crate) struct RawNameConstraints<'a> {
    pub permitted: Option<Vec<Subtree<'a>>>,
    pub excluded: Option<Vec<Subtree<'a>>>,
}

pub(crate) fn parse_name_constraints(value: &[u8]) -> Result<RawNameConstraints<'_>, String> {
    fn subtrees<'a>(content: &'a [u8]) -> Result<Vec<Subtree<'a>>, String> {
        let mut reader = Reader::new(content);
        let mut list = Vec::new();
        while !reader.is_empty() {
            let subtree = reader.read(TAG_SEQUENCE)?;
            let mut fields = Reader::new(subtree.content);
            let base = fields.read_any()?;
            let has_minimum = fields.read_optional(der::context_primitive(0))?.is_some();
            let has_maximum = fields.read_optional(der::context_primitive(1))?.is_some();
            if !fields.is_empty() {
                return Err("trailing fields in a GeneralSubtree".into());
            }
            list.push(Subtree {
                tag: base.tag,
                value: base.content,
                has_minimum,
                has_maximum,
            });
        }
        Ok(list)
    }
    let outer = der::parse_single(value, TAG_SEQUENCE)?;
    let mut fields = Reader::new(outer.content);
    let permitted = match fields.read_optional(context_constructed(0))? {
        Some(list) => Some(subtrees(list.content)?),
        None => None,
    };
    let excluded = match fields.read_optional(context_constructed(1))? {
        Some(list) => Some(subtrees(list.content)?),
        None => None,
    };
    if !fields.is_empty() {
        return Err("trailing fields in NameConstraints".into());
    }
    Ok(RawNameConstraints {
        permitted,
        excluded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_follow_the_convention_and_are_unique() {
        let catalog = lint_catalog();
        let mut names: Vec<&str> = catalog.iter().map(|l| l.name).collect();
        for lint in &catalog {
            let prefix = match lint.severity {
                Severity::Error => "e_",
                Severity::Warning => "w_",
                Severity::Notice => "n_",
            };
            assert!(lint.name.starts_with(prefix), "{}", lint.name);
            assert!(
                lint.citation.contains("RFC")
                    || lint.citation.contains("BR")
                    || lint.citation.contains("SPIFFE"),
                "{}",
                lint.name
            );
        }
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn urls_and_dns_names() {
        assert!(check_http_url("http://crl.example.com/root.crl").is_ok());
        assert!(check_http_url("http://10.0.0.1:8080/x").is_ok());
        assert!(check_http_url("https://crl.example.com/root.crl").is_err());
        assert!(check_http_url("http:///path").is_err());
        assert!(check_http_url("ldap://x").is_err());
        assert!(check_dns_name("example.com").is_ok());
        assert!(check_dns_name("internal").is_ok());
        assert!(check_dns_name("not a domain").is_err());
        assert!(check_dns_name(".example.com").is_err());
        assert!(check_dns_name("-a.example.com").is_err());
        assert!(check_dns_name("").is_err());
    }

    #[test]
    fn years_are_calendar_years() {
        use time::macros::datetime;
        assert_eq!(
            add_years(datetime!(2024-02-29 12:00 UTC), 1),
            datetime!(2025-02-28 12:00 UTC)
        );
        assert_eq!(
            add_years(datetime!(2026-01-01 00:00 UTC), 25),
            datetime!(2051-01-01 00:00 UTC)
        );
    }
}

#[cfg(test)]
mod catalog_tests {
    use super::*;

    /// The README's lint table is written from the catalog; this keeps it in step.
    #[test]
    fn readme_lists_every_lint_with_its_severity_and_citation() {
        let readme = include_str!("../../README.md");
        for lint in lint_catalog() {
            let row = format!(
                "| `{}` | {} | {} | {} |",
                lint.name, lint.severity, lint.citation, lint.description
            );
            assert!(readme.contains(&row), "README.md lacks the row:\n{row}");
        }
    }
}
