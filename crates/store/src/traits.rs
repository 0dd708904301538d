//! The narrow storage traits the issuing service codes against.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{
    BootstrapToken, CertificateFilter, CertificateRecord, CrlHead, DueOcspResponse, Fence,
    InventoryCount, InventoryRow, IssuanceIntent, JobLease, KmsGrant, KmsJob, Lineage,
    OcspResponderRecord, RevocationLogEntry, RevocationOutcome, RevokedEntry, SignedAuditHead,
    StoreError, StoredAuditEvent, StoredCrl, StoredOcspResponse,
};

/// Certificates through issuance: intent before signing, then completion or failure.
#[async_trait]
pub trait CertificateStore: Send + Sync + fmt::Debug {
    /// Persists the intent (status pending) **before** the issuer key signs. A serial
    /// already present gives [`StoreError::SerialCollision`] (detected by the unique
    /// constraint) and nothing is written. An unknown lineage gives
    /// [`StoreError::Conflict`]; a serial that is not lowercase hex, an empty name list
    /// or `not_after <= not_before` gives [`StoreError::Invalid`].
    async fn record_intent(&self, intent: &IssuanceIntent) -> Result<(), StoreError>;

    /// Stores the signed certificate of a pending intent and marks it issued, durably
    /// (committed to disk before `Ok` is returned). [`StoreError::NotFound`] if there is
    /// no intent with that serial, [`StoreError::Conflict`] if it is not pending.
    /// Repeating a completion with the same certificate is `Ok` (a retry after a lost
    /// reply changes nothing).
    async fn complete_issuance(
        &self,
        serial: &str,
        certificate_der: &[u8],
        issued_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Marks a pending intent failed (signing failed or its signature did not verify),
    /// with a reason (an error message, never secrets). Same errors as
    /// [`complete_issuance`](Self::complete_issuance); repeating it is `Ok`.
    async fn fail_issuance(&self, serial: &str, reason: &str) -> Result<(), StoreError>;

    /// The record of `serial` (any status), if there is one.
    async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>, StoreError>;

    /// Intents still pending, oldest first: after a crash between intent and completion,
    /// the service reconciles them at start (nothing was returned to a caller for them).
    async fn pending_intents(&self) -> Result<Vec<IssuanceIntent>, StoreError>;

    /// Number of records by status name (`pending`, `issued`, `failed`, `revoked`);
    /// every status is present, with 0 when there is none. For tests and metrics.
    async fn count_by_status(&self) -> Result<BTreeMap<String, u64>, StoreError>;
}

/// One-time bootstrap tokens, stored by hash.
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// Stores a new token; [`StoreError::Conflict`] if its hash is already stored.
    async fn insert_token(&self, token: &BootstrapToken) -> Result<(), StoreError>;

    /// Consumes a token atomically — one conditional update, so of two concurrent
    /// consumers exactly one succeeds — and returns it. [`StoreError::NotFound`] if no
    /// token has this hash, [`StoreError::TokenAlreadyUsed`] if it was consumed before,
    /// [`StoreError::TokenExpired`] if `now` is at or after its expiry (an expired token
    /// is not consumed).
    async fn consume_token(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        used_by: &str,
    ) -> Result<BootstrapToken, StoreError>;
}

/// Lineages: the bootstrap a chain of renewals started from.
#[async_trait]
pub trait LineageStore: Send + Sync + fmt::Debug {
    /// Records a new lineage; [`StoreError::Conflict`] if the id exists. A lineage must
    /// exist before an intent names it.
    async fn create_lineage(&self, lineage: &Lineage) -> Result<(), StoreError>;

    /// The lineage `id`, if it exists.
    async fn lineage(&self, id: &str) -> Result<Option<Lineage>, StoreError>;
}

/// Hash-chained, append-only audit events, one chain per writer.
#[async_trait]
pub trait AuditStore: Send + Sync + fmt::Debug {
    /// Appends `event` to `chain`: sequence = last + 1, previous hash = last hash
    /// ([`GENESIS_HASH`](crate::audit::GENESIS_HASH) for the first), hash as laid out in
    /// [`audit`](crate::audit) — in one transaction, so concurrent appends to one chain
    /// cannot fork it ((chain, sequence) is unique). Durable when it returns; returns
    /// the stored event. `at` is kept with one-second precision.
    async fn append_audit(
        &self,
        chain: &str,
        event: &serde_json::Value,
        at: OffsetDateTime,
    ) -> Result<StoredAuditEvent, StoreError>;

    /// Up to `limit` events of `chain` with a sequence above `after_sequence`, in order.
    async fn audit_events(
        &self,
        chain: &str,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<StoredAuditEvent>, StoreError>;

    /// Recomputes `chain` from its first event; returns the first broken sequence
    /// number (a gap, a wrong previous hash or a hash that does not match its row), or
    /// `None` if the chain is intact. An empty chain is intact.
    async fn verify_audit_chain(&self, chain: &str) -> Result<Option<u64>, StoreError>;

    /// Names of every audit chain with at least one event, sorted.
    async fn audit_chains(&self) -> Result<Vec<String>, StoreError>;

    /// The last event of `chain`, if it has any.
    async fn last_audit_event(&self, chain: &str) -> Result<Option<StoredAuditEvent>, StoreError>;

    /// The last event of `chain` whose top-level `type` is `event_type`, if any.
    async fn last_audit_event_of_type(
        &self,
        chain: &str,
        event_type: &str,
    ) -> Result<Option<StoredAuditEvent>, StoreError>;

    /// Stores a signed head. Heads are append-only.
    ///
    /// Errors: [`StoreError::Conflict`] if `chain` already has a head at that sequence;
    /// [`StoreError::Invalid`] for an empty chain or key reference, sequence 0, or a
    /// hash that is not 64 lowercase hex digits.
    async fn insert_audit_head(&self, head: &SignedAuditHead) -> Result<(), StoreError>;

    /// The signed heads of `chain`, by sequence.
    async fn audit_heads(&self, chain: &str) -> Result<Vec<SignedAuditHead>, StoreError>;
}

/// Revocation, and what is published from it: CRLs and OCSP answers.
///
/// Serials given as arguments may use either case of hex digits; anything else is
/// [`StoreError::Invalid`]. Serials inside records to insert must be lowercase hex.
#[async_trait]
pub trait RevocationStore: Send + Sync + fmt::Debug {
    /// Revokes `serial` with an RFC 5280 reason code, in one write transaction
    /// (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: revocations serialised by an advisory
    /// lock, the certificate row locked): the certificate goes from issued to revoked
    /// (`reason`, `revoked_at`); its stored OCSP answer is deleted (only fresh signing,
    /// which reads the revoked status, may answer afterwards); a `revocation_log` row is appended;
    /// the issuer's CRL head gets `revision` = that log id (the head is created, with
    /// CRL number 0, if absent); for reason 1 (keyCompromise) the subject key is
    /// blocked.
    ///
    /// Revoking a revoked certificate changes nothing (`changed == false`, no log id),
    /// except that keyCompromise for a certificate revoked for another reason replaces
    /// the reason (keeping `revoked_at`), blocks the key, deletes the OCSP answer, logs
    /// and bumps the revision (`changed == true`).
    ///
    /// Errors: [`StoreError::NotFound`] if there is no such serial;
    /// [`StoreError::Conflict`] if it is pending or failed (never issued);
    /// [`StoreError::Invalid`] for a reason outside 0–10, 7 (unused) or 8
    /// (removeFromCRL, for delta CRLs only), or a malformed serial.
    async fn revoke(
        &self,
        serial: &str,
        reason: u8,
        revoked_at: OffsetDateTime,
    ) -> Result<RevocationOutcome, StoreError>;

    /// Issued certificates (revoked ones too with `include_revoked`) matching every field
    /// given in `filter`, oldest first (by issue time, then serial), at most
    /// `filter.limit`, after `filter.after` when given.
    ///
    /// Errors: [`StoreError::Invalid`] if the filter selects nothing by itself (every
    /// field `None`, or only `unexpired_at`), if the limit is not in 1..=100 000, or if
    /// the subject key hash is not 64 hex digits or the serial not hex.
    async fn find_certificates(
        &self,
        filter: &CertificateFilter,
    ) -> Result<Vec<CertificateRecord>, StoreError>;

    /// Whether a certificate for this subject key (hex SHA-256 of its DER
    /// `SubjectPublicKeyInfo`) was revoked for keyCompromise.
    ///
    /// Errors: [`StoreError::Invalid`] if it is not 64 hex digits.
    async fn is_key_blocked(&self, subject_key_sha256: &str) -> Result<bool, StoreError>;

    /// Up to `limit` revocation log rows with an id above `after_id`, in id (commit)
    /// order. Replicas poll this to drop cached OCSP answers.
    ///
    /// Errors: database failures only.
    async fn revocations_after(
        &self,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<RevocationLogEntry>, StoreError>;

    /// Highest revocation_log id (0 if none).
    ///
    /// Errors: database failures only.
    async fn last_revocation_id(&self) -> Result<u64, StoreError>;

    /// The CRL head of `issuer`, if it has one (it appears with its first revocation or
    /// its first published CRL).
    ///
    /// Errors: database failures only.
    async fn crl_head(&self, issuer: &str) -> Result<Option<CrlHead>, StoreError>;

    /// Revoked certificates of the CRL scope `issuer` (an issuer's name, or
    /// `{issuer}/{shard}` for one shard, see [`crl_scope`](crate::crl_scope)) with
    /// `not_after >= expired_after`, ordered by serial (as text), read in one read
    /// transaction together with the scope's current revision (0 without a head);
    /// returns `(revision, entries)`.
    ///
    /// RFC 5280 §3.3: an entry stays on the CRL until one CRL has been issued after the
    /// certificate expired, so the caller passes the previous CRL's thisUpdate
    /// ([`CrlHead::last_this_update`], the epoch before the first CRL). One query over
    /// the `(issuer, status, not_after)` index, decoded row by row: it scales to
    /// millions of entries with memory for the result only. Pass the revision to
    /// [`publish_crl`](Self::publish_crl).
    ///
    /// Errors: database failures only.
    async fn revoked_for_crl(
        &self,
        issuer: &str,
        expired_after: OffsetDateTime,
    ) -> Result<(u64, Vec<RevokedEntry>), StoreError>;

    /// Publishes a signed CRL in one write transaction (SQLite: `BEGIN IMMEDIATE`;
    /// PostgreSQL: the issuer's `crl_heads` row locked `FOR UPDATE`): the head's
    /// `last_number` must be `crl.number - 1` (no head counts as 0); the `crls` row is
    /// inserted; the head gets `last_number`, `last_this_update`, `last_next_update`
    /// and `published_revision = revision` (the revision the entries were read at, from
    /// [`revoked_for_crl`](Self::revoked_for_crl)). Numbers therefore strictly increase
    /// in commit order, and a CRL built from older data than the last one is refused.
    ///
    /// Errors: [`StoreError::Conflict`] if another publisher won (the number is not the
    /// next one, or `revision` is older than the head's `published_revision`): the
    /// caller reads again and rebuilds; [`StoreError::Invalid`] for an empty issuer or
    /// DER, number 0, `next_update <= this_update`, or a revision the issuer never had.
    ///
    /// With a `fence` (the CRL job's lease), the lease's current fence is checked in
    /// the same transaction first: a stale one gives [`StoreError::Fenced`] and writes
    /// nothing, whatever the number.
    async fn publish_crl(
        &self,
        crl: &StoredCrl,
        revision: u64,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError>;

    /// The CRL of `issuer` with the highest number, if any was published.
    ///
    /// Errors: database failures only.
    async fn latest_crl(&self, issuer: &str) -> Result<Option<StoredCrl>, StoreError>;

    /// Every issuer's CRL head, by issuer name; the caller decides which need a new CRL
    /// ([`CrlHead::is_dirty`], or `last_next_update` near).
    ///
    /// Errors: database failures only.
    async fn crl_heads(&self) -> Result<Vec<CrlHead>, StoreError>;

    /// The stored OCSP answer for `serial` whose CertID uses `cert_id_hash` (`sha1`,
    /// `sha256`, ...), if any.
    ///
    /// Errors: [`StoreError::Invalid`] for a malformed serial.
    async fn ocsp_response(
        &self,
        serial: &str,
        cert_id_hash: &str,
    ) -> Result<Option<StoredOcspResponse>, StoreError>;

    /// The latest `this_update` of any answer stored for `serial` — including the
    /// answers a revocation deleted — or `None` when none was ever stored. A new answer
    /// must not be dated before it.
    ///
    /// Errors: [`StoreError::Invalid`] for a malformed serial.
    async fn ocsp_this_update_floor(
        &self,
        serial: &str,
    ) -> Result<Option<OffsetDateTime>, StoreError>;

    /// Stores (inserts or replaces) an answer, only if — checked inside the same write
    /// transaction — the certificate's status is still the one the answer states
    /// (issued for Good, revoked for Revoked, with the current reason) and the stored
    /// answer for the same serial and CertID hash, if any, has an older or equal
    /// `this_update`. Returns `Ok(false)`, writing nothing, otherwise.
    /// This conditional write is what stops a `good` signed just before a revocation
    /// from being stored after it.
    ///
    /// Errors: [`StoreError::NotFound`] if there is no such certificate;
    /// [`StoreError::Conflict`] if its issuer is not the answer's;
    /// [`StoreError::Invalid`] for a malformed serial or responder serial, an empty
    /// DER or `next_update <= this_update`.
    ///
    /// With a `fence` (the refresh job's lease), a stale fence gives
    /// [`StoreError::Fenced`] and writes nothing. Answers signed on the request path
    /// (after an issuance or a revocation, on a cache miss) are stored without one.
    async fn store_ocsp_response(
        &self,
        response: &StoredOcspResponse,
        fence: Option<&Fence>,
    ) -> Result<bool, StoreError>;

    /// Stored answers due for refresh — half their validity has
    /// passed (`this_update + (next_update - this_update) / 2 <= now`) — whose
    /// certificate has `not_after > now`, longest due first; then, only when
    /// `include_missing`, issued unexpired certificates without a stored answer, oldest
    /// issued first. At most `limit` in all.
    ///
    /// Errors: database failures only.
    async fn ocsp_responses_due(
        &self,
        now: OffsetDateTime,
        include_missing: bool,
        limit: u32,
    ) -> Result<Vec<DueOcspResponse>, StoreError>;

    /// Records a delegated OCSP responder.
    ///
    /// Errors: [`StoreError::Conflict`] if its serial is recorded;
    /// [`StoreError::Invalid`] for a serial that is not lowercase hex, an empty
    /// issuer, key reference, algorithm or certificate, or `not_after <= not_before`.
    async fn insert_ocsp_responder(&self, record: &OcspResponderRecord) -> Result<(), StoreError>;

    /// Responders of `issuer`, newest not_after first.
    ///
    /// Errors: database failures only.
    async fn ocsp_responders(&self, issuer: &str) -> Result<Vec<OcspResponderRecord>, StoreError>;

    /// Records that the responder's signing key was destroyed. Repeating it is `Ok` and
    /// keeps the first time.
    ///
    /// Errors: [`StoreError::NotFound`] if no responder has this serial;
    /// [`StoreError::Invalid`] for a malformed serial.
    async fn mark_responder_key_destroyed(
        &self,
        serial: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// Leases of scheduled jobs, so that each runs on one replica at a time, with the
/// fencing token that the job's writes carry.
///
/// Safety does not rest on clocks: a lease that lapsed because its holder paused is
/// taken over with a new fence, and the paused holder's writes are then refused by the
/// fence check. Clocks only decide how soon the takeover happens.
#[async_trait]
pub trait JobLeaseStore: Send + Sync + fmt::Debug {
    /// Takes or renews the lease of `job` for `holder` until `now + ttl`, in one
    /// statement: granted when nobody holds it, when `holder` already does (a renewal
    /// keeps the fence), or when the current lease expired at or before `now` (a
    /// takeover: fence + 1). Returns the lease held, or `None` if another holder's
    /// lease is still running.
    ///
    /// Errors: [`StoreError::Invalid`] for an empty job or holder or a TTL that is not
    /// positive.
    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<Option<JobLease>, StoreError>;

    /// Ends the lease of `fence` at once (on shutdown), so another replica takes over
    /// without waiting for it to lapse: its expiry becomes the epoch, so even a
    /// replica whose clock is behind the releaser's sees it free. A stale fence
    /// changes nothing.
    ///
    /// Errors: database failures only.
    async fn release_lease(&self, fence: &Fence, now: OffsetDateTime) -> Result<(), StoreError>;

    /// The lease of `job`, if it was ever taken.
    ///
    /// Errors: database failures only.
    async fn job_lease(&self, job: &str) -> Result<Option<JobLease>, StoreError>;

    /// The leases whose job name starts with `prefix` and that have not expired at
    /// `now`, by job name: who takes part in a shared budget (for example the
    /// migration jobs writing to one key provider).
    async fn live_leases(
        &self,
        prefix: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<JobLease>, StoreError>;
}

/// KMS grants made by administrators (the rules themselves live in the config).
#[async_trait]
pub trait KmsGrantStore: Send + Sync + fmt::Debug {
    /// Stores a new grant.
    ///
    /// Errors: [`StoreError::Conflict`] if its id exists; [`StoreError::Invalid`] for
    /// an id that is not lowercase hex, an empty identity, key list or operation list,
    /// or `not_after <= not_before`.
    async fn insert_kms_grant(&self, grant: &KmsGrant) -> Result<(), StoreError>;

    /// Revokes grant `id` at `at` (it stops counting at once). Revoking it again keeps
    /// the first time.
    ///
    /// Errors: [`StoreError::NotFound`] if there is no such grant.
    async fn revoke_kms_grant(&self, id: &str, at: OffsetDateTime) -> Result<(), StoreError>;

    /// Grants not revoked and valid at `now` (`not_before <= now < not_after`).
    ///
    /// Errors: database failures only.
    async fn live_kms_grants(&self, now: OffsetDateTime) -> Result<Vec<KmsGrant>, StoreError>;

    /// Every grant, revoked and expired ones included, newest first, at most `limit`.
    ///
    /// Errors: database failures only.
    async fn kms_grants(&self, limit: u32) -> Result<Vec<KmsGrant>, StoreError>;
}

/// The KMS inventory of wrapped data keys, and the rewrap jobs that move them.
#[async_trait]
pub trait KmsInventoryStore: Send + Sync + fmt::Debug {
    /// Inserts or replaces rows by id (attempts, error and dead letter reset).
    ///
    /// Errors: [`StoreError::Invalid`] for an id outside 1–200 bytes, an empty key
    /// name, provider or wrapped key, or version 0.
    async fn put_inventory(&self, rows: &[InventoryRow]) -> Result<(), StoreError>;

    /// The row `id`, if any.
    ///
    /// Errors: database failures only.
    async fn inventory_row(&self, id: &str) -> Result<Option<InventoryRow>, StoreError>;

    /// Up to `limit` live rows of `key_name` under a version other than `version`,
    /// by id, after `after_id` (paging).
    ///
    /// Errors: database failures only.
    async fn inventory_to_move(
        &self,
        key_name: &str,
        version: u32,
        after_id: &str,
        limit: u32,
    ) -> Result<Vec<InventoryRow>, StoreError>;

    /// Replaces the wrapped key of row `id` if it is still under `from_version`
    /// (conditional: of two movers one wins, and a row is never moved twice), under
    /// `fence` (the job's lease) when given. Returns whether the row was moved.
    ///
    /// Errors: [`StoreError::Fenced`] for a stale fence.
    async fn move_inventory_row(
        &self,
        id: &str,
        from_version: u32,
        to: (&InventoryRow, Option<&Fence>),
    ) -> Result<bool, StoreError>;

    /// Records a failed attempt on row `id`; `dead` sets it aside.
    ///
    /// Errors: database failures only.
    async fn fail_inventory_row(&self, id: &str, error: &str, dead: bool)
    -> Result<(), StoreError>;

    /// Row counts by key version (and provider), for one key or all.
    ///
    /// Errors: database failures only.
    async fn inventory_counts(
        &self,
        key_name: Option<&str>,
    ) -> Result<Vec<InventoryCount>, StoreError>;

    /// Inserts or replaces a job.
    ///
    /// Errors: database failures only.
    async fn put_kms_job(&self, job: &KmsJob) -> Result<(), StoreError>;

    /// The job `id`, if any.
    ///
    /// Errors: database failures only.
    async fn kms_job(&self, id: &str) -> Result<Option<KmsJob>, StoreError>;

    /// The running job of `key_name`, if any.
    ///
    /// Errors: database failures only.
    async fn running_kms_job(&self, key_name: &str) -> Result<Option<KmsJob>, StoreError>;
}

/// What operators watch: a cheap liveness query, bounded counts for metrics, and the
/// connection pool's state. Every query here is read-only and uses existing indexes.
#[async_trait]
pub trait OperationsStore: Send + Sync + fmt::Debug {
    /// A trivial round trip to the database (`SELECT 1`), for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Number of issued (not revoked) certificates whose `not_after` is in
    /// `(from, until]`: those about to expire.
    async fn count_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// The stored OCSP answer (of a certificate not yet expired at `now`) closest to or
    /// furthest past its refresh point (half its validity): the stalest answer the
    /// refresh job has to keep fresh. `None` when no answer is stored.
    async fn stalest_ocsp_response(
        &self,
        now: OffsetDateTime,
    ) -> Result<Option<OcspStaleness>, StoreError>;

    /// The state of the connection pool(s).
    fn pool_status(&self) -> PoolStatus;
}

/// The validity window of one stored OCSP answer ([`OperationsStore::stalest_ocsp_response`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspStaleness {
    /// Issuer name.
    pub issuer: String,
    /// Its thisUpdate.
    pub this_update: OffsetDateTime,
    /// Its nextUpdate.
    pub next_update: OffsetDateTime,
}

/// Connections of the store's pool(s), summed over its pools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Open connections (idle or in use).
    pub open: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Most connections the pool(s) may open.
    pub max: u32,
}

/// Everything the service needs, as one object (`Arc<dyn Store>`), including the KMS
/// keyring's metadata ([`carimbo_kms::KeyringStore`]).
pub trait Store:
    CertificateStore
    + TokenStore
    + LineageStore
    + AuditStore
    + RevocationStore
    + JobLeaseStore
    + KmsGrantStore
    + KmsInventoryStore
    + OperationsStore
    + crate::AcmeStore
    + carimbo_kms::KeyringStore
{
}

impl<
    T: CertificateStore
        + TokenStore
        + LineageStore
        + AuditStore
        + RevocationStore
        + JobLeaseStore
        + KmsGrantStore
        + KmsInventoryStore
        + OperationsStore
        + crate::AcmeStore
        + carimbo_kms::KeyringStore,
> Store for T
{
}
