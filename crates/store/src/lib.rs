//! # carimbo-store — what the issuing service keeps
//!
//! The service (`carimbo-server`) codes against small traits, one per concern —
//! [`CertificateStore`] (issuance intents and their completion), [`TokenStore`]
//! (one-time bootstrap tokens, by hash), [`LineageStore`], [`AuditStore`]
//! (hash-chained audit events, one chain per replica) and [`RevocationStore`]
//! (revocation in one transaction with its log, blocked keys and OCSP invalidation;
//! CRL heads and published CRLs; stored OCSP answers, written only while the
//! certificate's status is still the one they state; OCSP responders) and
//! [`AcmeStore`] (ACME accounts, orders, authorizations, challenges and single-use
//! nonces, changed only by conditional updates) — gathered as
//! [`Store`] so it can hold one `Arc<dyn Store>`. Handlers never see SQL.
//!
//! Each database gets its own implementation with its own migrations rather than one
//! implementation over sqlx's `Any` driver: every backend keeps its native types,
//! placeholders and locking (`BEGIN IMMEDIATE` here, row locks and `LISTEN/NOTIFY` in
//! PostgreSQL), and nothing needs a database at compile time (no `query!` macros).
//! There is [`SqliteStore`] (one node, schema in `migrations/sqlite/`) and
//! [`PostgresStore`] (several replicas sharing one database, schema in
//! `migrations/postgres/`: the same tables and invariants in PostgreSQL terms, with row
//! and advisory locks where SQLite relies on its single writer). The hash chain's layout
//! lives in [`audit`], shared by both; so are the checks on every value written, and one
//! conformance test suite runs against both backends.
//!
//! ## Durability
//!
//! Issuance persists its intent before the issuer key signs and the certificate before
//! it is returned (invariant: no certificate without its record). [`SqliteStore`]
//! therefore runs SQLite in WAL mode with `synchronous=FULL`: every commit — an intent,
//! a completion, a consumed token, an audit event — is fsynced to the WAL before the
//! call returns, so it survives a power loss, not only a process crash. (`NORMAL`
//! would be faster but may lose the last commits on power loss: a certificate could
//! then be in a client's hands with no record.) Foreign keys are enforced and a busy
//! timeout bounds waits for locks held by other processes. Writes go through one
//! dedicated connection, queued in the process; reads use a pool of `query_only`
//! connections that WAL lets run alongside the writer. The file is created with mode
//! 0600; SQLite gives its `-wal` and `-shm` files the same mode.
//!
//! [`PostgresStore`] leaves durability to the server: a call returns after its commit,
//! which PostgreSQL acknowledges once its WAL is flushed under the default
//! `synchronous_commit = on` (keep it on, and `fsync` too, for the same guarantee; a
//! synchronous standby extends it beyond one machine). Where SQLite serialises writers,
//! PostgreSQL replicas write concurrently: operations that read before they write lock
//! what they read (an advisory lock per audit chain, one for revocations so that log
//! ids follow commit order, the issuer's CRL head row for publishing, a share lock on
//! the certificate row while an OCSP answer is stored). The connection URL may carry
//! a password: it is never logged nor put in errors, and `Debug` omits it.
//!
//! Timestamps are stored as unix seconds: sub-second parts are dropped and values
//! come back in UTC.
//!
//! ## Issuance, as the service drives it
//!
//! ```
//! use std::sync::Arc;
//! use carimbo_store::{IssuanceIntent, Lineage, SqliteStore, Store};
//! use time::macros::datetime;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("carimbo.db")).await?);
//! let now = datetime!(2026-03-01 12:00 UTC);
//! // A bootstrap starts a lineage; renewals reuse it.
//! store
//!     .create_lineage(&Lineage {
//!         id: "lineage-1".into(),
//!         provisioner: "tokens".into(),
//!         identity: "web-1".into(),
//!         created_at: now,
//!     })
//!     .await?;
//! let intent = IssuanceIntent {
//!     crl_shard: None,
//!     serial: "5f3a9c0e".into(),
//!     issuer: "int-server".into(),
//!     profile: "server".into(),
//!     provisioner: "tokens".into(),
//!     lineage: "lineage-1".into(),
//!     requester: "web-1".into(),
//!     sans: vec!["web-1.example.internal".into()],
//!     subject_key_sha256: "ab".repeat(32),
//!     not_before: now,
//!     not_after: now + time::Duration::hours(24),
//!     lint_certificate: vec![0x30, 0x00],
//!     request_id: "req-1".into(),
//!     created_at: now,
//! };
//! // Step 6: the intent, before the issuer key signs. On
//! // `StoreError::SerialCollision` nothing was written: draw a new serial, record again.
//! store.record_intent(&intent).await?;
//! // Step 7 signs; step 8 stores the certificate before anyone sees it.
//! let certificate_der = vec![0x30, 0x01, 0x00];
//! store.complete_issuance(&intent.serial, &certificate_der, now).await?;
//! store
//!     .append_audit("replica-1", &serde_json::json!({"operation": "issue"}), now)
//!     .await?;
//! assert_eq!(store.count_by_status().await?["issued"], 1);
//! # Ok(())
//! # }
//! ```

mod error;
mod model;

pub mod acme;
mod postgres;
mod sqlite;
mod traits;
mod validate;

#[cfg(test)]
mod conformance;

pub mod audit;

pub use acme::{
    AcmeAccount, AcmeAccountStatus, AcmeAuthorization, AcmeAuthorizationStatus, AcmeChallenge,
    AcmeChallengeStatus, AcmeIdentifier, AcmeOrder, AcmeOrderStatus, AcmeStore, ChallengeOutcome,
};
pub use error::StoreError;
pub use model::{
    BootstrapToken, CertificateFilter, CertificateRecord, CertificateStatus, CrlHead,
    DueOcspResponse, Fence, InventoryCount, InventoryRow, IssuanceIntent, JobLease, KmsGrant,
    KmsJob, Lineage, OcspCertStatus, OcspResponderRecord, RevocationLogEntry, RevocationOutcome,
    RevokedEntry, SignedAuditHead, StoredAuditEvent, StoredCrl, StoredOcspResponse, crl_scope,
    split_crl_scope,
};
/// A throwaway PostgreSQL server for tests (feature `test-support`).
#[cfg(any(test, feature = "test-support"))]
pub use postgres::testing as postgres_testing;
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use traits::{
    AuditStore, CertificateStore, JobLeaseStore, KmsGrantStore, KmsInventoryStore, LineageStore,
    OcspStaleness, OperationsStore, PoolStatus, RevocationStore, Store, TokenStore,
};
