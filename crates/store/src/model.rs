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
    /// The CRL shard the certificate's CRL distribution point names; `None` for an
    /// issuer with a single CRL.
    pub crl_shard: Option<u8>,
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

/// A signed head of an audit chain: its last sequence and hash at `signed_at`, signed
/// with an audit key over [`audit::head_message`](crate::audit::head_message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedAuditHead {
    /// The chain.
    pub chain: String,
    /// Sequence of the chain's last event when signed (from 1).
    pub sequence: u64,
    /// Hash of that event (64 lowercase hex digits).
    pub hash: String,
    /// When it was signed (one-second precision).
    pub signed_at: OffsetDateTime,
    /// The audit key, `provider:id`.
    pub key_reference: String,
    /// Signature algorithm (for example `ecdsa-p256-sha256`).
    pub algorithm: String,
    /// The audit key's public key, DER `SubjectPublicKeyInfo`.
    pub public_key: Vec<u8>,
    /// The signature.
    pub signature: Vec<u8>,
}

/// What [`revoke`](crate::RevocationStore::revoke) did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationOutcome {
    /// The certificate's record after the call (status revoked).
    pub record: CertificateRecord,
    /// Whether anything was written: `false` when it was already revoked and nothing
    /// changed.
    pub changed: bool,
    /// The `revocation_log` row written, when `changed`.
    pub log_id: Option<u64>,
}

/// Which issued certificates to find (for example to revoke them together). Every field
/// given must match. A filter that selects nothing by itself — every field `None`, or
/// only [`unexpired_at`](Self::unexpired_at) — is refused, so nobody revokes
/// everything by accident.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertificateFilter {
    /// Issuer name.
    pub issuer: Option<String>,
    /// Provisioner that authenticated the request.
    pub provisioner: Option<String>,
    /// One of the subject alternative names, exactly as stored.
    pub san: Option<String>,
    /// Lowercase hex SHA-256 of the subject's DER `SubjectPublicKeyInfo`.
    pub subject_key_sha256: Option<String>,
    /// Lineage id.
    pub lineage: Option<String>,
    /// Issued at or after this time.
    pub issued_from: Option<OffsetDateTime>,
    /// Issued before this time.
    pub issued_until: Option<OffsetDateTime>,
    /// Still valid at this time (`not_after` after it).
    pub unexpired_at: Option<OffsetDateTime>,
    /// Expiring before this time (`not_after` before it).
    pub expires_before: Option<OffsetDateTime>,
    /// Serial number (either case of hex digits).
    pub serial: Option<String>,
    /// Revoked certificates too (by default only issued, unrevoked ones).
    pub include_revoked: bool,
    /// Only records after this one in the listing order (issue time, then serial):
    /// the last record of the previous page, for paging.
    pub after: Option<(OffsetDateTime, String)>,
    /// Most records returned, 1 to 100 000 (the default 0 is refused).
    pub limit: u32,
}

/// One revoked certificate, as a CRL lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// RFC 5280 CRLReason code.
    pub reason: u8,
}

/// An issuer's CRL state: its last published CRL and whether revocations came since.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlHead {
    /// Issuer name.
    pub issuer: String,
    /// Number of the last published CRL; 0 before the first.
    pub last_number: u64,
    /// thisUpdate of the last published CRL; the epoch before the first.
    pub last_this_update: OffsetDateTime,
    /// nextUpdate of the last published CRL; the epoch before the first.
    pub last_next_update: OffsetDateTime,
    /// The last revocation log id that touched this issuer (0 if none).
    pub revision: u64,
    /// The revision the last published CRL was built from.
    pub published_revision: u64,
}

impl CrlHead {
    /// Whether revocations came after the last published CRL was built.
    pub fn is_dirty(&self) -> bool {
        self.revision > self.published_revision
    }
}

/// A signed CRL, as published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCrl {
    /// Issuer name.
    pub issuer: String,
    /// CRL number, from 1, strictly increasing per issuer.
    pub number: u64,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate; after `this_update`.
    pub next_update: OffsetDateTime,
    /// The signed CRL (DER).
    pub der: Vec<u8>,
    /// Number of revoked certificates it lists.
    pub entries: u64,
    /// When it was published.
    pub published_at: OffsetDateTime,
}

/// The certificate status an OCSP answer states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OcspCertStatus {
    /// Issued and not revoked.
    Good,
    /// Revoked.
    Revoked,
}

impl OcspCertStatus {
    /// The stored spelling: `good` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Revoked => "revoked",
        }
    }
}

impl fmt::Display for OcspCertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OcspCertStatus {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "good" => Ok(Self::Good),
            "revoked" => Ok(Self::Revoked),
            _ => Err(StoreError::Corrupt(format!("unknown OCSP status {s:?}"))),
        }
    }
}

/// A signed OCSP answer kept for a certificate (at most one per serial).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredOcspResponse {
    /// Serial of the certificate it is about, lowercase hex.
    pub serial: String,
    /// Issuer of that certificate.
    pub issuer: String,
    /// The hash algorithm of the CertID it names: `sha1`, `sha256`, `sha384` or
    /// `sha512` (one stored answer per serial and hash).
    pub cert_id_hash: String,
    /// The status it states.
    pub cert_status: OcspCertStatus,
    /// The RFC 5280 CRLReason a revoked answer states, `None` when it states none (and
    /// for good answers).
    pub revocation_reason: Option<u8>,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate; after `this_update`.
    pub next_update: OffsetDateTime,
    /// The signed answer (DER `OCSPResponse`).
    pub der: Vec<u8>,
    /// Serial of the certificate that signed it (responder or issuer), lowercase hex.
    pub responder: String,
    /// When it was stored.
    pub stored_at: OffsetDateTime,
}

/// A stored OCSP answer due for re-signing, or (with `include_missing`) an issued
/// certificate without one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueOcspResponse {
    /// Serial of the certificate.
    pub serial: String,
    /// Its issuer.
    pub issuer: String,
    /// The CertID hash of the stored answer; `None` for a certificate without answers.
    pub cert_id_hash: Option<String>,
}

/// One row of the revocation log: a revocation or a reason change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationLogEntry {
    /// Position in the log, from 1, increasing in commit order.
    pub id: u64,
    /// Serial of the revoked certificate.
    pub serial: String,
    /// Its issuer.
    pub issuer: String,
    /// RFC 5280 CRLReason code.
    pub reason: u8,
    /// When the certificate was revoked (kept when only the reason changed).
    pub revoked_at: OffsetDateTime,
}

/// A delegated OCSP responder: its certificate and where its signing key is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspResponderRecord {
    /// Serial of the responder certificate, lowercase hex.
    pub serial: String,
    /// Issuer that certified it (and whose certificates it answers for).
    pub issuer: String,
    /// Reference of its signing key in the KMS; never key material.
    pub key_reference: String,
    /// Signature algorithm name.
    pub algorithm: String,
    /// The responder certificate (DER).
    pub certificate: Vec<u8>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity; after `not_before`.
    pub not_after: OffsetDateTime,
    /// When it was recorded.
    pub created_at: OffsetDateTime,
    /// When its key was destroyed, if it was.
    pub key_destroyed_at: Option<OffsetDateTime>,
}

/// The name of a CRL scope, the key of its head and number sequence: the issuer's name
/// for its single CRL, `{issuer}/{shard}` for one of its shards.
pub fn crl_scope(issuer: &str, shard: Option<u8>) -> String {
    match shard {
        None => issuer.to_owned(),
        Some(shard) => format!("{issuer}/{shard}"),
    }
}

/// The issuer and shard of a CRL scope name made by [`crl_scope`].
pub fn split_crl_scope(scope: &str) -> (&str, Option<u8>) {
    match scope.rsplit_once('/') {
        Some((issuer, shard)) => match shard.parse() {
            Ok(shard) => (issuer, Some(shard)),
            Err(_) => (scope, None),
        },
        None => (scope, None),
    }
}

/// The fencing token of a job lease. Every write a scheduled job makes carries it, and
/// the store checks it in the write's own transaction: once the lease has passed to
/// another holder the token is stale and the write is refused with
/// [`StoreError::Fenced`](crate::StoreError::Fenced), however late a paused process
/// wakes up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    /// The job (`crl`, `ocsp-refresh`, ...).
    pub job: String,
    /// Who holds it: one replica's process.
    pub holder: String,
    /// Grows by one each time the lease passes to another holder.
    pub token: u64,
}

/// A job lease as stored: who runs the job, until when unless renewed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobLease {
    /// The holder's fence.
    pub fence: Fence,
    /// When the current holder took it.
    pub acquired_at: OffsetDateTime,
    /// When it lapses unless renewed (millisecond precision).
    pub expires_at: OffsetDateTime,
}

/// A KMS grant: an administrator lets `identity` use keys matching `keys` for
/// `operations` between `not_before` and `not_after`, on top of the configured rules.
/// Effective as soon as it is stored; revocable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsGrant {
    /// Random id (lowercase hex).
    pub id: String,
    /// Identity pattern (`client:payments`, `spiffe://example.com/ns/ml/*`).
    pub identity: String,
    /// Key name patterns (`envelope-data/prod/*`).
    pub keys: Vec<String>,
    /// Operations (`encrypt`, `decrypt`, `sign`, ...).
    pub operations: Vec<String>,
    /// Start of validity (inclusive).
    pub not_before: OffsetDateTime,
    /// End of validity (exclusive): refused from this second on.
    pub not_after: OffsetDateTime,
    /// The administrator who created it.
    pub created_by: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A wrapped data key the KMS knows about: made by its own `datakey`/`encrypt` with an
/// inventory id, or imported from an application's sidecar. The rewrap job moves rows
/// from old key versions (and providers) to the key's primary version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryRow {
    /// The object's id, chosen by the application (1–200 bytes).
    pub id: String,
    /// The KEK's name.
    pub key_name: String,
    /// The KEK version that wrapped it.
    pub key_version: u32,
    /// The provider holding that version (`file`, `pkcs11`, `aws`).
    pub provider: String,
    /// The envelope headers (data header and wrap block): the wrapped data key.
    pub wrapped_key: Vec<u8>,
    /// The encryption context, as a JSON object of strings (associated data, not
    /// secret).
    pub context: String,
    /// Failed rewrap attempts since the last success.
    pub attempts: u32,
    /// The last rewrap error, if any.
    pub last_error: Option<String>,
    /// Set aside after too many failures (dead letter); the job skips it.
    pub dead: bool,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// How many inventory rows sit under one key version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryCount {
    /// KEK name.
    pub key_name: String,
    /// KEK version.
    pub key_version: u32,
    /// Provider of that version.
    pub provider: String,
    /// Rows still usable by the job.
    pub live: u64,
    /// Rows in the dead letter.
    pub dead: u64,
}

/// A rewrap (migration) job: its progress, kept so that it can be resumed and watched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsJob {
    /// Id (lowercase hex).
    pub id: String,
    /// The KEK whose rows are rewrapped.
    pub key_name: String,
    /// The version rows are moved to.
    pub target_version: u32,
    /// Its provider.
    pub target_provider: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Rows to move when the job started (or resumed).
    pub total: u64,
    /// Rows moved.
    pub done: u64,
    /// Rows set aside in the dead letter.
    pub dead: u64,
    /// Start.
    pub started_at: OffsetDateTime,
    /// Last progress.
    pub updated_at: OffsetDateTime,
}
