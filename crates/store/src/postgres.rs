//! The PostgreSQL implementation of the store traits (several replicas, one database).
//!
//! Same records, same errors and same edge cases as [`SqliteStore`](crate::SqliteStore);
//! what differs is how concurrent writers are kept apart. SQLite has one writer at a
//! time (`BEGIN IMMEDIATE`); here every connection of every replica may write at once,
//! so each operation that reads before it writes takes a row or advisory lock first:
//!
//! - a token is consumed by one conditional `UPDATE ... RETURNING` (under READ
//!   COMMITTED the loser re-reads the claimed row and matches nothing);
//! - an audit append holds a transaction-scoped advisory lock derived from the chain
//!   name while it reads the chain's head and inserts the next event;
//! - revocations hold one advisory lock from before their log id is drawn until they
//!   commit (readers go on), then lock the certificate row: log ids are drawn and
//!   committed in one order, so a poller of `revocations_after` never skips an id that
//!   commits late, and an issuer's `crl_heads.revision` only grows;
//! - a CRL publication locks the issuer's `crl_heads` row (`SELECT ... FOR UPDATE`,
//!   created first if absent) for its compare-and-swap on the number;
//! - an OCSP answer is stored under a share lock on its certificate row, which a
//!   revocation's update waits for (and vice versa), and only over an answer with an
//!   older or equal `this_update` (checked in the upsert itself).
//!
//! Locks are always taken in that order (revocation lock, certificate row, CRL head,
//! OCSP answer), so these operations cannot deadlock one another. Advisory locks need
//! no privilege beyond connecting, so the role may be limited to SELECT/INSERT on the
//! append-only tables.
//!
//! Durability is the server's: a commit returns once PostgreSQL reports it durable,
//! which with the default `synchronous_commit = on` means flushed to its WAL (and to a
//! synchronous standby when one is configured).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use aws_lc_rs::digest;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Row, SqlSafeStr};
use time::OffsetDateTime;

use crate::audit::{ChainVerifier, GENESIS_HASH, canonical_json, event_hash};
use crate::validate::{
    VERIFY_PAGE, check_intent, check_token, intent_error, is_unique_violation, keyring_error,
    keyring_json, keyring_record_from, names_from_json, names_to_json, non_negative,
    optional_time_from, reason_from, time_from, unix,
};
use crate::{
    AuditStore, BootstrapToken, CertificateRecord, CertificateStatus, CertificateStore,
    IssuanceIntent, Lineage, LineageStore, SignedAuditHead, StoreError, StoredAuditEvent,
    TokenStore,
};

mod acme;
mod audit_heads;
mod grants;
mod inventory;
mod leases;
mod operations;
mod revocation;

#[cfg(any(test, feature = "test-support"))]
pub mod testing;

#[cfg(test)]
mod tests;

/// The schema migrations of `migrations/postgres/`, embedded in the binary: version,
/// description, SQL. Append-only: a new migration is a new file and a new line here
/// (a test checks this list against the directory).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "keyring",
        include_str!("../../../migrations/postgres/0002_keyring.sql"),
    ),
    (
        3,
        "revocation",
        include_str!("../../../migrations/postgres/0003_revocation.sql"),
    ),
    (
        4,
        "crl shards",
        include_str!("../../../migrations/postgres/0004_crl_shards.sql"),
    ),
    (
        5,
        "job leases",
        include_str!("../../../migrations/postgres/0005_job_leases.sql"),
    ),
    (
        6,
        "kms grants",
        include_str!("../../../migrations/postgres/0006_kms_grants.sql"),
    ),
    (
        7,
        "kms inventory",
        include_str!("../../../migrations/postgres/0007_kms_inventory.sql"),
    ),
    (
        8,
        "audit heads",
        include_str!("../../../migrations/postgres/0008_audit_heads.sql"),
    ),
    (
        9,
        "acme",
        include_str!("../../../migrations/postgres/0009_acme.sql"),
    ),
    (
        10,
        "ocsp floors",
        include_str!("../../../migrations/postgres/0010_ocsp_floors.sql"),
    ),
];

/// Tuning of a [`PostgresStore`]. The connection URL (which may carry a password) is
/// not part of it, so `Debug` shows it whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Most connections the store opens (at least 1).
    pub max_connections: u32,
    /// How long an operation waits for a free connection (or for a new one to be
    /// established) before failing with a database error.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    /// Ten connections, a thirty-second acquire timeout.
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The store in a PostgreSQL database, shared by any number of replicas.
///
/// Cloning is cheap and shares the connections. `Debug` shows the server, database and
/// user, never the password.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// `host:port/database as user`, for `Debug` and logs.
    target: String,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .field(
                "max_connections",
                &self.pool.options().get_max_connections(),
            )
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`,
    /// with the usual libpq parameters such as `sslmode`) and applies the schema
    /// migrations it lacks.
    ///
    /// Migrations that were applied must match the embedded ones byte for byte, and a
    /// database migrated by a newer build is refused. Replicas starting together are
    /// fine: the migrator holds an advisory lock while it works. The URL is never
    /// logged nor put in errors (it may hold a password); a malformed one gives
    /// [`StoreError::Invalid`] without its text.
    pub async fn connect(url: &str, options: &PostgresOptions) -> Result<Self, StoreError> {
        // The parser's message could quote part of the URL: keep only that it failed.
        let connect_options = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Invalid("PostgreSQL connection URL: malformed".into()))?;
        Self::connect_with(connect_options, options).await
    }

    async fn connect_with(
        connect_options: PgConnectOptions,
        options: &PostgresOptions,
    ) -> Result<Self, StoreError> {
        let connect_options = if connect_options.get_application_name().is_none() {
            connect_options.application_name("carimbo")
        } else {
            connect_options
        };
        let target = describe(&connect_options);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect_options)
            .await?;
        migrator().run(&pool).await?;
        tracing::debug!(database = %target, "connected to PostgreSQL");
        Ok(Self { pool, target })
    }

    /// Closes every connection, waiting for them. Dropping the store without closing
    /// loses nothing committed.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Sets the keyring's settings (the waiting period between disable and destroy).
    pub async fn set_keyring_settings(
        &self,
        settings: &carimbo_kms::KeyringSettings,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO keyring_settings (id, destroy_wait_seconds) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET destroy_wait_seconds = excluded.destroy_wait_seconds",
        )
        .bind(i64::try_from(settings.destroy_wait_seconds).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Where `options` connect, without the password.
fn describe(options: &PgConnectOptions) -> String {
    let server = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    format!(
        "{server}/{} as {}",
        options.get_database().unwrap_or(options.get_username()),
        options.get_username()
    )
}

fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

// ---------------------------------------------------------------------------------
// Row decoding.

fn column<'r, T>(row: &'r PgRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// Reads a non-negative BIGINT column as `u64`.
fn sequence_column(row: &PgRow, name: &str) -> Result<u64, StoreError> {
    non_negative(column(row, name)?, name)
}

/// Reads a SMALLINT CRLReason column.
fn optional_reason_column(row: &PgRow, name: &str) -> Result<Option<u8>, StoreError> {
    column::<Option<i16>>(row, name)?
        .map(|code| reason_from(i64::from(code)))
        .transpose()
}

/// The columns [`record_from_row`] reads, as a literal for `concat!`.
macro_rules! record_columns {
    () => {
        "serial, issuer, profile, provisioner, lineage, requester, sans, \
         subject_key_sha256, not_before, not_after, status, certificate, failure_reason, \
         created_at, issued_at, revoked_at, revocation_reason"
    };
}
use record_columns;

fn intent_from_row(row: &PgRow) -> Result<IssuanceIntent, StoreError> {
    Ok(IssuanceIntent {
        serial: column(row, "serial")?,
        issuer: column(row, "issuer")?,
        profile: column(row, "profile")?,
        provisioner: column(row, "provisioner")?,
        lineage: column(row, "lineage")?,
        requester: column(row, "requester")?,
        sans: names_from_json(&column::<String>(row, "sans")?, "sans")?,
        subject_key_sha256: column(row, "subject_key_sha256")?,
        not_before: time_from(column(row, "not_before")?, "not_before")?,
        not_after: time_from(column(row, "not_after")?, "not_after")?,
        lint_certificate: column(row, "lint_certificate")?,
        request_id: column(row, "request_id")?,
        created_at: time_from(column(row, "created_at")?, "created_at")?,
        crl_shard: column::<Option<i16>>(row, "crl_shard")?
            .map(|shard| {
                u8::try_from(shard)
                    .map_err(|_| StoreError::Corrupt(format!("crl_shard {shard} out of range")))
            })
            .transpose()?,
    })
}

fn record_from_row(row: &PgRow) -> Result<CertificateRecord, StoreError> {
    Ok(CertificateRecord {
        serial: column(row, "serial")?,
        issuer: column(row, "issuer")?,
        profile: column(row, "profile")?,
        provisioner: column(row, "provisioner")?,
        lineage: column(row, "lineage")?,
        requester: column(row, "requester")?,
        sans: names_from_json(&column::<String>(row, "sans")?, "sans")?,
        subject_key_sha256: column(row, "subject_key_sha256")?,
        not_before: time_from(column(row, "not_before")?, "not_before")?,
        not_after: time_from(column(row, "not_after")?, "not_after")?,
        status: column::<String>(row, "status")?.parse()?,
        certificate: column(row, "certificate")?,
        failure_reason: column(row, "failure_reason")?,
        created_at: time_from(column(row, "created_at")?, "created_at")?,
        issued_at: optional_time_from(column(row, "issued_at")?, "issued_at")?,
        revoked_at: optional_time_from(column(row, "revoked_at")?, "revoked_at")?,
        revocation_reason: optional_reason_column(row, "revocation_reason")?,
    })
}

fn token_from_row(row: &PgRow) -> Result<BootstrapToken, StoreError> {
    Ok(BootstrapToken {
        token_hash: column(row, "token_hash")?,
        provisioner: column(row, "provisioner")?,
        profile: column(row, "profile")?,
        sans: names_from_json(&column::<String>(row, "sans")?, "sans")?,
        max_ttl_seconds: column(row, "max_ttl_seconds")?,
        expires_at: time_from(column(row, "expires_at")?, "expires_at")?,
        created_by: column(row, "created_by")?,
        created_at: time_from(column(row, "created_at")?, "created_at")?,
    })
}

fn lineage_from_row(row: &PgRow) -> Result<Lineage, StoreError> {
    Ok(Lineage {
        id: column(row, "id")?,
        provisioner: column(row, "provisioner")?,
        identity: column(row, "identity")?,
        created_at: time_from(column(row, "created_at")?, "created_at")?,
    })
}

fn audit_event_from_row(row: &PgRow) -> Result<StoredAuditEvent, StoreError> {
    let sequence = sequence_column(row, "sequence")?;
    let text: String = column(row, "event")?;
    let event = serde_json::from_str(&text)
        .map_err(|_| StoreError::Corrupt(format!("audit event {sequence}: not JSON")))?;
    Ok(StoredAuditEvent {
        chain: column(row, "chain")?,
        sequence,
        previous_hash: column(row, "previous_hash")?,
        hash: column(row, "hash")?,
        event,
        recorded_at: time_from(column(row, "recorded_at")?, "recorded_at")?,
    })
}

/// A transaction-scoped advisory-lock key: the first 8 bytes of a SHA-256 over a
/// Carimbo-specific domain, `purpose` and `name`. Two names sharing a key only wait for
/// each other.
fn lock_key(purpose: &str, name: &str) -> i64 {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(b"carimbo-lock\n");
    context.update(&(purpose.len() as u64).to_be_bytes());
    context.update(purpose.as_bytes());
    context.update(name.as_bytes());
    let digest = context.finish();
    let mut key = [0_u8; 8];
    key.copy_from_slice(&digest.as_ref()[..8]);
    i64::from_be_bytes(key)
}

// ---------------------------------------------------------------------------------
// Certificates.

#[async_trait]
impl CertificateStore for PostgresStore {
    async fn record_intent(&self, intent: &IssuanceIntent) -> Result<(), StoreError> {
        check_intent(intent)?;
        sqlx::query(
            "INSERT INTO certificates (serial, issuer, profile, provisioner, lineage, requester, \
             sans, subject_key_sha256, not_before, not_after, lint_certificate, request_id, \
             status, created_at, crl_shard) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $14)",
        )
        .bind(&intent.serial)
        .bind(&intent.issuer)
        .bind(&intent.profile)
        .bind(&intent.provisioner)
        .bind(&intent.lineage)
        .bind(&intent.requester)
        .bind(names_to_json(&intent.sans)?)
        .bind(&intent.subject_key_sha256)
        .bind(unix(intent.not_before))
        .bind(unix(intent.not_after))
        .bind(&intent.lint_certificate)
        .bind(&intent.request_id)
        .bind(unix(intent.created_at))
        .bind(intent.crl_shard.map(i16::from))
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(|e| intent_error(e, intent))
    }

    async fn complete_issuance(
        &self,
        serial: &str,
        certificate_der: &[u8],
        issued_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if certificate_der.is_empty() {
            return Err(StoreError::Invalid("certificate: empty".into()));
        }
        let serial = serial.to_ascii_lowercase();
        let updated = sqlx::query(
            "UPDATE certificates SET status = 'issued', certificate = $1, issued_at = $2 \
             WHERE serial = $3 AND status = 'pending'",
        )
        .bind(certificate_der)
        .bind(unix(issued_at))
        .bind(&serial)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(());
        }
        // Nothing pending under that serial: say why (a status only moves away from
        // pending, so this read cannot contradict the update).
        let row = sqlx::query("SELECT status, certificate FROM certificates WHERE serial = $1")
            .bind(&serial)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        let status: CertificateStatus = column::<String>(&row, "status")?.parse()?;
        let stored: Option<Vec<u8>> = column(&row, "certificate")?;
        if status == CertificateStatus::Issued && stored.as_deref() == Some(certificate_der) {
            return Ok(());
        }
        Err(StoreError::Conflict(format!(
            "certificate {serial} is {status}, not pending"
        )))
    }

    async fn fail_issuance(&self, serial: &str, reason: &str) -> Result<(), StoreError> {
        let serial = serial.to_ascii_lowercase();
        let updated = sqlx::query(
            "UPDATE certificates SET status = 'failed', failure_reason = $1 \
             WHERE serial = $2 AND status = 'pending'",
        )
        .bind(reason)
        .bind(&serial)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(());
        }
        let row = sqlx::query("SELECT status FROM certificates WHERE serial = $1")
            .bind(&serial)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        match column::<String>(&row, "status")?.parse()? {
            CertificateStatus::Failed => Ok(()),
            status => Err(StoreError::Conflict(format!(
                "certificate {serial} is {status}, not pending"
            ))),
        }
    }

    async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            record_columns!(),
            " FROM certificates WHERE serial = $1"
        ))
        .bind(serial.to_ascii_lowercase())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(record_from_row)
        .transpose()
    }

    async fn pending_intents(&self) -> Result<Vec<IssuanceIntent>, StoreError> {
        sqlx::query(
            "SELECT serial, issuer, profile, provisioner, lineage, requester, sans, \
             subject_key_sha256, not_before, not_after, lint_certificate, request_id, created_at, \
             crl_shard FROM certificates WHERE status = 'pending' ORDER BY created_at, serial",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(intent_from_row)
        .collect()
    }

    async fn count_by_status(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut counts: BTreeMap<String, u64> = CertificateStatus::ALL
            .iter()
            .map(|status| (status.as_str().to_owned(), 0))
            .collect();
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM certificates GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let status: CertificateStatus = column::<String>(&row, "status")?.parse()?;
            counts.insert(status.as_str().to_owned(), sequence_column(&row, "n")?);
        }
        Ok(counts)
    }
}

// ---------------------------------------------------------------------------------
// Bootstrap tokens.

#[async_trait]
impl TokenStore for PostgresStore {
    async fn insert_token(&self, token: &BootstrapToken) -> Result<(), StoreError> {
        check_token(token)?;
        let result = sqlx::query(
            "INSERT INTO bootstrap_tokens (token_hash, provisioner, profile, sans, \
             max_ttl_seconds, expires_at, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&token.token_hash)
        .bind(&token.provisioner)
        .bind(&token.profile)
        .bind(names_to_json(&token.sans)?)
        .bind(token.max_ttl_seconds)
        .bind(unix(token.expires_at))
        .bind(&token.created_by)
        .bind(unix(token.created_at))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict("a token with this hash exists".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn consume_token(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
        used_by: &str,
    ) -> Result<BootstrapToken, StoreError> {
        let token_hash = token_hash.to_ascii_lowercase();
        let now = unix(now);
        // One statement: the row is claimed only if unused and unexpired. A concurrent
        // consumer blocks on the row lock, then re-checks the WHERE clause against the
        // committed claim and matches nothing: exactly one gets the token back.
        let claimed = sqlx::query(
            "UPDATE bootstrap_tokens SET used_at = $1, used_by = $2 \
             WHERE token_hash = $3 AND used_at IS NULL AND expires_at > $1 \
             RETURNING token_hash, provisioner, profile, sans, max_ttl_seconds, expires_at, \
             created_by, created_at",
        )
        .bind(now)
        .bind(used_by)
        .bind(&token_hash)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = claimed {
            return token_from_row(&row);
        }
        let row =
            sqlx::query("SELECT used_at, expires_at FROM bootstrap_tokens WHERE token_hash = $1")
                .bind(&token_hash)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound)?;
        let used_at: Option<i64> = column(&row, "used_at")?;
        let expires_at: i64 = column(&row, "expires_at")?;
        if used_at.is_some() {
            Err(StoreError::TokenAlreadyUsed)
        } else if expires_at <= now {
            Err(StoreError::TokenExpired)
        } else {
            // Inserted between the two statements: it was not there when we tried.
            Err(StoreError::NotFound)
        }
    }
}

// ---------------------------------------------------------------------------------
// Lineages.

#[async_trait]
impl LineageStore for PostgresStore {
    async fn create_lineage(&self, lineage: &Lineage) -> Result<(), StoreError> {
        if lineage.id.is_empty() {
            return Err(StoreError::Invalid("lineage: empty id".into()));
        }
        let result = sqlx::query(
            "INSERT INTO lineages (id, provisioner, identity, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&lineage.id)
        .bind(&lineage.provisioner)
        .bind(&lineage.identity)
        .bind(unix(lineage.created_at))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "lineage {:?} exists",
                lineage.id
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn lineage(&self, id: &str) -> Result<Option<Lineage>, StoreError> {
        sqlx::query("SELECT id, provisioner, identity, created_at FROM lineages WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(lineage_from_row)
            .transpose()
    }
}

// ---------------------------------------------------------------------------------
// Audit chain.

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(
        &self,
        chain: &str,
        event: &serde_json::Value,
        at: OffsetDateTime,
    ) -> Result<StoredAuditEvent, StoreError> {
        if chain.is_empty() {
            return Err(StoreError::Invalid("audit chain: empty name".into()));
        }
        let text = canonical_json(event);
        let recorded_at = unix(at);
        let mut transaction = self.pool.begin().await?;
        // Appenders of one chain (any replica) queue here until the holder commits, so
        // each reads the head the previous one wrote. A first event has no row to lock,
        // hence an advisory lock rather than FOR UPDATE.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_key("audit-chain", chain))
            .execute(&mut *transaction)
            .await?;
        let head = sqlx::query(
            "SELECT sequence, hash FROM audit_events WHERE chain = $1 \
             ORDER BY sequence DESC LIMIT 1",
        )
        .bind(chain)
        .fetch_optional(&mut *transaction)
        .await?;
        let (sequence, previous_hash) = match head {
            None => (1, GENESIS_HASH.to_owned()),
            Some(row) => {
                let last = sequence_column(&row, "sequence")?;
                let sequence = last
                    .checked_add(1)
                    .ok_or_else(|| StoreError::Corrupt(format!("audit chain {chain:?} is full")))?;
                (sequence, column::<String>(&row, "hash")?)
            }
        };
        let stored_sequence = i64::try_from(sequence)
            .map_err(|_| StoreError::Corrupt(format!("audit chain {chain:?} is full")))?;
        let hash = event_hash(chain, sequence, &previous_hash, recorded_at, &text);
        let inserted = sqlx::query(
            "INSERT INTO audit_events (chain, sequence, previous_hash, hash, event, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(chain)
        .bind(stored_sequence)
        .bind(&previous_hash)
        .bind(&hash)
        .bind(&text)
        .bind(recorded_at)
        .execute(&mut *transaction)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "audit chain {chain:?} was appended to concurrently"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        transaction.commit().await?;
        Ok(StoredAuditEvent {
            chain: chain.to_owned(),
            sequence,
            previous_hash,
            hash,
            event: event.clone(),
            recorded_at: time_from(recorded_at, "recorded_at")?,
        })
    }

    async fn audit_events(
        &self,
        chain: &str,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<StoredAuditEvent>, StoreError> {
        let Ok(after) = i64::try_from(after_sequence) else {
            return Ok(Vec::new());
        };
        sqlx::query(
            "SELECT chain, sequence, previous_hash, hash, event, recorded_at FROM audit_events \
             WHERE chain = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
        )
        .bind(chain)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(audit_event_from_row)
        .collect()
    }

    async fn verify_audit_chain(&self, chain: &str) -> Result<Option<u64>, StoreError> {
        let mut verifier = ChainVerifier::new(chain);
        let mut after: i64 = 0;
        loop {
            let rows = sqlx::query(
                "SELECT sequence, previous_hash, hash, event, recorded_at FROM audit_events \
                 WHERE chain = $1 AND sequence > $2 ORDER BY sequence LIMIT $3",
            )
            .bind(chain)
            .bind(after)
            .bind(VERIFY_PAGE)
            .fetch_all(&self.pool)
            .await?;
            let Some(last) = rows.last() else {
                return Ok(verifier.first_broken());
            };
            after = column(last, "sequence")?;
            for row in &rows {
                let sequence = sequence_column(row, "sequence")?;
                let previous_hash: String = column(row, "previous_hash")?;
                let hash: String = column(row, "hash")?;
                let event: String = column(row, "event")?;
                let recorded_at: i64 = column(row, "recorded_at")?;
                if !verifier.check(sequence, &previous_hash, &hash, recorded_at, &event) {
                    return Ok(verifier.first_broken());
                }
            }
        }
    }

    async fn audit_chains(&self) -> Result<Vec<String>, StoreError> {
        self.audit_chain_names().await
    }

    async fn last_audit_event(&self, chain: &str) -> Result<Option<StoredAuditEvent>, StoreError> {
        self.last_event_of(chain).await
    }

    async fn last_audit_event_of_type(
        &self,
        chain: &str,
        event_type: &str,
    ) -> Result<Option<StoredAuditEvent>, StoreError> {
        self.last_event_of_type(chain, event_type).await
    }

    async fn insert_audit_head(&self, head: &SignedAuditHead) -> Result<(), StoreError> {
        self.insert_head(head).await
    }

    async fn audit_heads(&self, chain: &str) -> Result<Vec<SignedAuditHead>, StoreError> {
        self.heads_of(chain).await
    }
}

// ---------------------------------------------------------------------------------
// KMS keyring metadata.

/// The KMS keyring's metadata in the service database, shared by every replica.
#[async_trait]
impl carimbo_kms::KeyringStore for PostgresStore {
    async fn settings(&self) -> carimbo_kms::Result<carimbo_kms::KeyringSettings> {
        let seconds: Option<i64> =
            sqlx::query_scalar("SELECT destroy_wait_seconds FROM keyring_settings WHERE id = 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(keyring_error)?;
        Ok(match seconds {
            Some(seconds) => carimbo_kms::KeyringSettings {
                destroy_wait_seconds: u64::try_from(seconds).unwrap_or(0),
            },
            None => carimbo_kms::KeyringSettings::default(),
        })
    }

    async fn key(
        &self,
        name: &carimbo_kms::KeyName,
    ) -> carimbo_kms::Result<Option<carimbo_kms::KeyRecord>> {
        let text: Option<String> =
            sqlx::query_scalar("SELECT record FROM keyring_keys WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(keyring_error)?;
        text.as_deref().map(keyring_record_from).transpose()
    }

    async fn keys(&self) -> carimbo_kms::Result<Vec<carimbo_kms::KeyRecord>> {
        let texts: Vec<String> =
            sqlx::query_scalar("SELECT record FROM keyring_keys ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(keyring_error)?;
        texts.iter().map(|text| keyring_record_from(text)).collect()
    }

    async fn insert(&self, record: &carimbo_kms::KeyRecord) -> carimbo_kms::Result<()> {
        let json = keyring_json(record)?;
        let result =
            sqlx::query("INSERT INTO keyring_keys (name, revision, record) VALUES ($1, $2, $3)")
                .bind(record.name.as_str())
                .bind(i64::try_from(record.revision).unwrap_or(i64::MAX))
                .bind(json)
                .execute(&self.pool)
                .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) if is_unique_violation(&error) => {
                Err(carimbo_kms::Error::KeyExists(record.name.to_string()))
            }
            Err(error) => Err(keyring_error(error)),
        }
    }

    async fn update(&self, record: &carimbo_kms::KeyRecord) -> carimbo_kms::Result<()> {
        let json = keyring_json(record)?;
        let revision = i64::try_from(record.revision).unwrap_or(i64::MAX);
        // Compare-and-swap on the revision: of two concurrent updates from the same
        // revision, the second re-reads the committed row and matches nothing.
        let updated = sqlx::query(
            "UPDATE keyring_keys SET revision = $1, record = $2 WHERE name = $3 AND revision = $4",
        )
        .bind(revision)
        .bind(json)
        .bind(record.name.as_str())
        .bind(revision - 1)
        .execute(&self.pool)
        .await
        .map_err(keyring_error)?
        .rows_affected();
        if updated == 1 {
            return Ok(());
        }
        let exists = sqlx::query("SELECT 1 FROM keyring_keys WHERE name = $1")
            .bind(record.name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(keyring_error)?;
        match exists {
            None => Err(carimbo_kms::Error::KeyNotFound(record.name.to_string())),
            Some(_) => Err(carimbo_kms::Error::Store(format!(
                "key {} was changed concurrently; retry",
                record.name
            ))),
        }
    }
}
