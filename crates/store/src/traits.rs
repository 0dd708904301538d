//! The narrow storage traits the issuing service codes against.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{
    BootstrapToken, CertificateRecord, IssuanceIntent, Lineage, StoreError, StoredAuditEvent,
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

    /// Marks an issued certificate revoked with an RFC 5280 reason code (0–10, not 7).
    /// Revoking a revoked certificate again keeps the first revocation and returns
    /// `Ok`; NotFound if no such serial; Conflict if it was never issued. (Revocation
    /// proper — OCSP answers in the same transaction, CRL shards — builds on this.)
    async fn mark_revoked(
        &self,
        serial: &str,
        reason: u8,
        revoked_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

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
}

/// Everything the service needs, as one object (`Arc<dyn Store>`).
pub trait Store: CertificateStore + TokenStore + LineageStore + AuditStore {}

impl<T: CertificateStore + TokenStore + LineageStore + AuditStore> Store for T {}
