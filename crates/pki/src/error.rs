//! The crate's one error type.

use std::fmt;

use time::Duration;

use crate::{Finding, LeafKind};

/// Everything that can go wrong while building, linting, signing or parsing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The lints found at least one error-severity problem: nothing was (or may be)
    /// signed. Holds every finding, blocking or not.
    #[error("{}", LintList(.0))]
    Lint(Vec<Finding>),
    /// A template or input value is unusable before any lint can run (a malformed name,
    /// a non-ASCII URL, a key that does not fit the algorithm, ...).
    #[error("invalid template: {0}")]
    InvalidTemplate(String),
    /// A certificate, CRL, name or PEM text could not be parsed.
    #[error("parse error: {0}")]
    Parse(String),
    /// A signature is wrong, or the signing key is not the issuer's.
    #[error("signature error: {0}")]
    Signature(String),
    /// A leaf certificate request or template breaks its profile or its issuer's
    /// constraints (see [`LeafError::code`]).
    #[error("{0}")]
    Leaf(#[from] LeafError),
    /// The KMS key failed.
    #[error("KMS: {0}")]
    Kms(#[from] carimbo_kms::Error),
    /// Anything else (an internal invariant that did not hold, a library error).
    #[error("{0}")]
    Other(String),
}

/// Why a leaf (end-entity) certificate request is refused: the CSR, the names, the
/// lifetime or the issuer. Each variant has a stable snake_case [`code`](Self::code)
/// for API errors and audit records, and a message that names the offending value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeafError {
    /// The CSR is not a well-formed PKCS#10 request (DER or PEM `CERTIFICATE REQUEST`).
    #[error("malformed CSR: {reason}")]
    MalformedCsr {
        /// What is wrong.
        reason: String,
    },
    /// The CSR is larger than [`MAX_CSR_BYTES`](crate::MAX_CSR_BYTES).
    #[error("the CSR is {size} bytes; at most {max} bytes are accepted")]
    CsrTooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The CSR's signature does not verify with its own key, or uses an algorithm that
    /// is not accepted (SHA-1, unknown, or not matching the key).
    #[error("the CSR signature is not acceptable: {reason}")]
    BadCsrSignature {
        /// What is wrong.
        reason: String,
    },
    /// The key is of an accepted family but too weak (RSA under 3072 bits, P-192, P-224).
    #[error(
        "the key is too weak: {key} (accepted: ECDSA P-256 or P-384, RSA of at least 3072 bits)"
    )]
    WeakKey {
        /// The key, e.g. `RSA 2048`.
        key: String,
    },
    /// The key type is not accepted (DSA, other curves, Ed25519 where the profile does
    /// not allow it, ...).
    #[error("the key is not supported: {key}")]
    UnsupportedKey {
        /// The key and why, e.g. `ECDSA P-521`.
        key: String,
    },
    /// The CSR asks for a CA certificate (basicConstraints cA TRUE, or keyCertSign /
    /// cRLSign in its requested key usage).
    #[error(
        "the CSR requests a CA certificate ({detail}); only end-entity certificates are issued"
    )]
    CaRequested {
        /// What it asked for.
        detail: String,
    },
    /// No subject alternative name was requested.
    #[error(
        "no subject alternative name: a certificate names its subject in the subjectAltName extension"
    )]
    NoSan,
    /// A subject alternative name is syntactically invalid or of an unsupported type.
    #[error("invalid subject alternative name {san}: {reason}")]
    InvalidSan {
        /// The name as given.
        san: String,
        /// What is wrong.
        reason: String,
    },
    /// A name of a type the profile does not carry (a URI in a server certificate, a
    /// DNS name in a workload SVID, an IP address outside the server profile).
    #[error("subject alternative name {san} is not allowed in a {profile} certificate")]
    SanNotAllowedByProfile {
        /// The name.
        san: String,
        /// The profile.
        profile: LeafKind,
    },
    /// A wildcard DNS name where the profile does not allow wildcards.
    #[error("wildcard name {san} is not allowed by the {profile} profile")]
    WildcardNotAllowed {
        /// The name.
        san: String,
        /// The profile.
        profile: LeafKind,
    },
    /// An IP address SAN where the profile does not allow them.
    #[error("IP address {san} is not allowed by the {profile} profile")]
    IpSanNotAllowed {
        /// The name.
        san: String,
        /// The profile.
        profile: LeafKind,
    },
    /// A client or workload certificate needs exactly one URI SAN (its SPIFFE ID).
    #[error(
        "a {profile} certificate carries exactly one URI SAN (its SPIFFE ID); {count} requested"
    )]
    UriSanCount {
        /// How many URI SANs were requested.
        count: usize,
        /// The profile.
        profile: LeafKind,
    },
    /// A URI SAN that is not a valid SPIFFE ID for a workload.
    #[error("invalid SPIFFE ID {id:?}: {reason}")]
    InvalidSpiffeId {
        /// The URI as given.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The same name requested twice (DNS names compare case-insensitively).
    #[error("subject alternative name {san} is requested more than once")]
    DuplicateSan {
        /// The name.
        san: String,
    },
    /// More names than a certificate may carry.
    #[error("{count} subject alternative names requested; at most {max} are allowed")]
    TooManySans {
        /// How many were requested.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The requested lifetime is longer than the profile allows. Refused, not capped:
    /// the caller learns the limit instead of silently getting less.
    #[error("requested lifetime {} is longer than the profile's maximum {}", show_duration(*.requested), show_duration(*.max))]
    TtlTooLong {
        /// What was asked.
        requested: Duration,
        /// The profile's maximum.
        max: Duration,
    },
    /// The requested lifetime is zero or negative.
    #[error("requested lifetime {} is not positive", show_duration(*.requested))]
    InvalidTtl {
        /// What was asked.
        requested: Duration,
    },
    /// The issuer is not valid at the time of issuance (expired, or not yet valid).
    #[error("the issuer is not valid at {now}: {reason}")]
    IssuerNotValid {
        /// The time of issuance.
        now: time::OffsetDateTime,
        /// Why, with the issuer's date.
        reason: String,
    },
    /// The leaf's validity is not inside the issuer's.
    #[error(
        "validity {not_before} to {not_after} is not inside the issuer's validity {issuer_not_before} to {issuer_not_after}"
    )]
    ValidityOutsideIssuer {
        /// The leaf's notBefore.
        not_before: time::OffsetDateTime,
        /// The leaf's notAfter.
        not_after: time::OffsetDateTime,
        /// The issuer's notBefore.
        issuer_not_before: time::OffsetDateTime,
        /// The issuer's notAfter.
        issuer_not_after: time::OffsetDateTime,
    },
    /// The issuer cannot issue leaves at all (a root, or an issuer without a
    /// certificate).
    #[error("issuer {issuer} may not issue end-entity certificates: {reason}")]
    IssuerNotAllowed {
        /// The issuer's subject.
        issuer: String,
        /// Why.
        reason: String,
    },
    /// The issuer's extended key usage does not cover the profile's (a server
    /// intermediate cannot issue client or workload certificates).
    #[error(
        "issuer {issuer} cannot issue {profile} certificates: its extended key usage ({issuer_usage}) lacks {missing}"
    )]
    IssuerEkuMismatch {
        /// The issuer's subject.
        issuer: String,
        /// The profile.
        profile: LeafKind,
        /// The issuer's EKU purposes.
        issuer_usage: String,
        /// The purposes it lacks.
        missing: String,
    },
    /// A name falls outside the issuer's name constraints.
    #[error(
        "subject alternative name {san} is not permitted by the issuer's name constraints: {reason}"
    )]
    NameNotPermitted {
        /// The name.
        san: String,
        /// Which constraint refuses it.
        reason: String,
    },
    /// A profile name other than `server`, `client` or `workload`.
    #[error("unknown certificate profile {0:?}: expected server, client or workload")]
    UnknownProfile(String),
}

impl LeafError {
    /// The stable snake_case code of this refusal, for API problem documents and audit
    /// records (`malformed_csr`, `weak_key`, `ttl_too_long`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedCsr { .. } => "malformed_csr",
            Self::CsrTooLarge { .. } => "csr_too_large",
            Self::BadCsrSignature { .. } => "bad_csr_signature",
            Self::WeakKey { .. } => "weak_key",
            Self::UnsupportedKey { .. } => "unsupported_key",
            Self::CaRequested { .. } => "ca_requested",
            Self::NoSan => "no_san",
            Self::InvalidSan { .. } => "invalid_san",
            Self::SanNotAllowedByProfile { .. } => "san_not_allowed_by_profile",
            Self::WildcardNotAllowed { .. } => "wildcard_not_allowed",
            Self::IpSanNotAllowed { .. } => "ip_san_not_allowed",
            Self::UriSanCount { .. } => "uri_san_count",
            Self::InvalidSpiffeId { .. } => "invalid_spiffe_id",
            Self::DuplicateSan { .. } => "duplicate_san",
            Self::TooManySans { .. } => "too_many_sans",
            Self::TtlTooLong { .. } => "ttl_too_long",
            Self::InvalidTtl { .. } => "invalid_ttl",
            Self::IssuerNotValid { .. } => "issuer_not_valid",
            Self::ValidityOutsideIssuer { .. } => "validity_outside_issuer",
            Self::IssuerNotAllowed { .. } => "issuer_not_allowed",
            Self::IssuerEkuMismatch { .. } => "issuer_eku_mismatch",
            Self::NameNotPermitted { .. } => "name_not_permitted",
            Self::UnknownProfile(_) => "unknown_profile",
        }
    }
}

/// A duration as hours, minutes and seconds (`72h`, `1h30m`, `90s`, `-5m`).
pub(crate) fn show_duration(duration: Duration) -> String {
    let total = duration.whole_seconds();
    let sign = if total < 0 { "-" } else { "" };
    let total = total.unsigned_abs();
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    let mut out = sign.to_string();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if seconds > 0 || total == 0 {
        out.push_str(&format!("{seconds}s"));
    }
    out
}

/// Formats findings as `lint refused: e_x: message (citation); ...`.
struct LintList<'a>(&'a [Finding]);

impl fmt::Display for LintList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("lint refused:")?;
        for (index, finding) in self.0.iter().enumerate() {
            let separator = if index == 0 { " " } else { "; " };
            write!(
                f,
                "{separator}{}: {} ({})",
                finding.lint, finding.message, finding.citation
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    #[test]
    fn durations_read_as_hours_minutes_seconds() {
        assert_eq!(show_duration(Duration::hours(72)), "72h");
        assert_eq!(show_duration(Duration::minutes(90)), "1h30m");
        assert_eq!(show_duration(Duration::seconds(45)), "45s");
        assert_eq!(show_duration(Duration::ZERO), "0s");
        assert_eq!(show_duration(Duration::minutes(-5)), "-5m");
    }

    #[test]
    fn leaf_errors_have_codes_and_name_the_value() {
        let error = LeafError::TtlTooLong {
            requested: Duration::hours(100),
            max: Duration::hours(72),
        };
        assert_eq!(error.code(), "ttl_too_long");
        assert_eq!(
            error.to_string(),
            "requested lifetime 100h is longer than the profile's maximum 72h"
        );
        let error = LeafError::WildcardNotAllowed {
            san: "dns:*.example.com".into(),
            profile: LeafKind::Server,
        };
        assert_eq!(error.code(), "wildcard_not_allowed");
        assert!(error.to_string().contains("dns:*.example.com"));
        let wrapped = PkiError::from(LeafError::NoSan);
        assert!(matches!(wrapped, PkiError::Leaf(LeafError::NoSan)));
    }

    #[test]
    fn lint_errors_list_every_finding_with_its_citation() {
        let error = PkiError::Lint(vec![
            Finding {
                lint: "e_one",
                severity: Severity::Error,
                citation: "RFC 5280 §4.2.1.3",
                message: "first".into(),
            },
            Finding {
                lint: "w_two",
                severity: Severity::Warning,
                citation: "RFC 5280 §4.2.1.9",
                message: "second".into(),
            },
        ]);
        assert_eq!(
            error.to_string(),
            "lint refused: e_one: first (RFC 5280 §4.2.1.3); w_two: second (RFC 5280 §4.2.1.9)"
        );
    }
}
