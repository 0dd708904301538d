//! The records the store keeps, independent of any database.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use crate::StoreError;

/// What the service is about to sign, persisted before the issuer key is used
/// (issuance step 6). Timestamps are stored with one-second precision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuanceIntent {
    /// Serial number, lowercase hex (unique across all issuers).
    pub serial: String,
    /// Issuer (issuing CA) name.
    pub issuer: String,
    /// Certificate profile (`server`, `client`, `workload`, ...).
    pub profile: String,
    /// Provisioner that authenticated the request.
    pub provisioner: String,
    /// Lineage id; the lineage must exist (see [`LineageStore`](crate::LineageStore)).
    pub lineage: String,
    /// The authenticated identity that asked.
    pub requester: String,
    /// Subject alternative names as they go into the certificate; never empty.
    pub sans: Vec<String>,
    /// Lowercase hex SHA-256 of the subject's DER `SubjectPublicKeyInfo`.
    pub subject_key_sha256: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity; after `not_before`.
    pub not_after: OffsetDateTime,
    /// The linted certificate (same TBS, signed by a throwaway key), DER.
    pub lint_certificate: Vec<u8>,
    /// Request id, for correlation with logs and audit events.
    pub request_id: String,
    /// When the intent was recorded.
    pub created_at: OffsetDateTime,
}

/// Where a serial is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CertificateStatus {
    /// Intent recorded; not signed yet (or the process stopped before completion).
    Pending,
    /// Signed and stored.
    Issued,
    /// Signing failed; nothing was issued under this serial.
    Failed,
    /// Issued, then revoked.
    Revoked,
}

impl CertificateStatus {
    /// Every status, in life-cycle order.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Issued, Self::Failed, Self::Revoked];

    /// The stored spelling: `pending`, `issued`, `failed` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Issued => "issued",
            Self::Failed => "failed",
            Self::Revoked => "revoked",
        }
    }
}

impl fmt::Display for CertificateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CertificateStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown certificate status {s:?}")))
    }
}

/// A serial's stored record: its intent, status and, once issued, the certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRecord {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// Issuer name.
    pub issuer: String,
    /// Certificate profile.
    pub profile: String,
    /// Provisioner that authenticated the request.
    pub provisioner: String,
    /// Lineage id.
    pub lineage: String,
    /// The authenticated identity that asked.
    pub requester: String,
    /// Subject alternative names.
    pub sans: Vec<String>,
    /// Lowercase hex SHA-256 of the subject's DER `SubjectPublicKeyInfo`.
    pub subject_key_sha256: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Life-cycle status.
    pub status: CertificateStatus,
    /// The signed certificate (DER), once issued.
    pub certificate: Option<Vec<u8>>,
    /// Why signing failed, for [`CertificateStatus::Failed`].
    pub failure_reason: Option<String>,
    /// When the intent was recorded.
    pub created_at: OffsetDateTime,
    /// When the certificate was stored.
    pub issued_at: Option<OffsetDateTime>,
    /// When it was revoked.
    pub revoked_at: Option<OffsetDateTime>,
    /// RFC 5280 CRLReason code of the revocation.
    pub revocation_reason: Option<u8>,
}

/// A one-time bootstrap token as stored: bound to a provisioner, a profile and names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootstrapToken {
    /// Lowercase hex SHA-256 of the token; the token itself is never stored.
    pub token_hash: String,
    /// Provisioner the token belongs to.
    pub provisioner: String,
    /// Profile it may be used for.
    pub profile: String,
    /// Names it may obtain.
    pub sans: Vec<String>,
    /// Longest certificate lifetime it may obtain, in seconds (positive).
    pub max_ttl_seconds: i64,
    /// End of the token's validity.
    pub expires_at: OffsetDateTime,
    /// Administrator who made it.
    pub created_by: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
}

/// The start of a chain of renewals: who bootstrapped it and through which
/// provisioner, so renewals can re-check that provisioner's current policy and age.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lineage {
    /// Lineage id (unique, non-empty).
    pub id: String,
    /// Provisioner that started it.
    pub provisioner: String,
    /// The identity it was started for.
    pub identity: String,
    /// When it was started.
    pub created_at: OffsetDateTime,
}

/// An audit event as stored in its hash chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredAuditEvent {
    /// Writer id; one chain per replica.
    pub chain: String,
    /// Position in the chain, from 1, without gaps.
    pub sequence: u64,
    /// Hash of the previous event (64 zeros for the first).
    pub previous_hash: String,
    /// This event's hash; see [`audit::event_hash`](crate::audit::event_hash).
    pub hash: String,
    /// The event.
    pub event: serde_json::Value,
    /// When it was appended.
    pub recorded_at: OffsetDateTime,
}
