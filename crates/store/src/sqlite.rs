//! The SQLite implementation of the store traits (one node, one file).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqlSafeStr};
use time::OffsetDateTime;

use crate::audit::{ChainVerifier, GENESIS_HASH, canonical_json, event_hash};
use crate::validate::{
    VERIFY_PAGE, check_intent, check_token, intent_error, is_unique_violation, keyring_error,
    keyring_json, keyring_record_from, names_from_json, names_to_json, non_negative,
    optional_time_from, time_from, unix,
};
use crate::{
    AuditStore, BootstrapToken, CertificateRecord, CertificateStatus, CertificateStore,
    IssuanceIntent, Lineage, LineageStore, SignedAuditHead, StoreError, StoredAuditEvent,
    TokenStore,
};

/// The schema migrations of `migrations/sqlite/`, embedded in the binary: version,
/// description, SQL. Append-only: a new migration is a new file and a new line here
/// (a test checks this list against the directory).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../../migrations/sqlite/0001_initial.sql"),
    ),
    (
        2,
        "keyring",
        include_str!("../../../migrations/sqlite/0002_keyring.sql"),
    ),
    (
        3,
        "revocation",
        include_str!("../../../migrations/sqlite/0003_revocation.sql"),
    ),
    (
        4,
        "crl shards",
        include_str!("../../../migrations/sqlite/0004_crl_shards.sql"),
    ),
    (
        5,
        "job leases",
        include_str!("../../../migrations/sqlite/0005_job_leases.sql"),
    ),
    (
        6,
        "kms grants",
        include_str!("../../../migrations/sqlite/0006_kms_grants.sql"),
    ),
    (
        7,
        "kms inventory",
        include_str!("../../../migrations/sqlite/0007_kms_inventory.sql"),
    ),
    (
        8,
        "audit heads",
        include_str!("../../../migrations/sqlite/0008_audit_heads.sql"),
    ),
    (
        9,
        "acme",
        include_str!("../../../migrations/sqlite/0009_acme.sql"),
    ),
    (
        10,
        "ocsp floors",
        include_str!("../../../migrations/sqlite/0010_ocsp_floors.sql"),
    ),
];

/// How long an operation waits for a pooled connection (writes queue for the single
/// writer connection) before failing with a database error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Tuning of a [`SqliteStore`]. Nothing in it is secret (a SQLite database has no
/// password), so `Debug` shows it whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Connections for reads (at least 1). Writes use one more, dedicated connection:
    /// SQLite has one writer at a time anyway, and queueing writers in the process is
    /// fairer and cheaper than letting them poll the database lock.
    pub max_connections: u32,
    /// How long a statement waits for a lock held by another connection or process
    /// (SQLite's busy timeout) before failing with a database error.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    /// Four read connections, a five-second busy timeout.
    fn default() -> Self {
        Self {
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The store in one SQLite file: WAL journal, `synchronous=FULL`, foreign keys on.
///
/// Cloning is cheap and shares the connections.
#[derive(Clone)]
pub struct SqliteStore {
    /// `None` for an in-memory database.
    path: Option<PathBuf>,
    /// One connection: every write goes through it, in arrival order.
    writer: SqlitePool,
    /// Connections with `query_only` set; the writer's pool for an in-memory database.
    reader: SqlitePool,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field(
                "read_connections",
                &self.reader.options().get_max_connections(),
            )
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path` with default [`SqliteOptions`], creating it (mode
    /// 0600) if absent, and applies the schema migrations it lacks.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, &SqliteOptions::default()).await
    }

    /// Opens the database at `path` with `options`; see [`open`](Self::open).
    ///
    /// The parent directory must exist. A database file readable by group or others
    /// is opened with a warning (it may hold requesters' names and certificates, not
    /// keys). Migrations that were applied must match the embedded ones byte for byte,
    /// and a database migrated by a newer build is refused.
    pub async fn open_with(path: &Path, options: &SqliteOptions) -> Result<Self, StoreError> {
        create_private_file(path)?;
        let base = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // SQLite rolls a transaction back by itself on some errors (a full disk
            // among them); the driver's own ROLLBACK then fails and the connection
            // stays marked as inside a transaction, refusing every later BEGIN. Such a
            // connection is closed instead of reused (a new one is opened).
            .after_release(|connection, _| {
                Box::pin(async move {
                    use sqlx::Connection;
                    let clean = !connection.is_in_transaction();
                    if !clean {
                        tracing::warn!(
                            "SQLite writer connection left inside a transaction; reconnecting"
                        );
                    }
                    Ok(clean)
                })
            })
            .connect_with(base.clone())
            .await?;
        migrator().run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(base.pragma("query_only", "ON"))
            .await?;
        Ok(Self {
            path: Some(path.to_path_buf()),
            writer,
            reader,
        })
    }

    /// A fresh, private in-memory database (one connection; gone when the store is
    /// dropped). For tests of code built on the store; it proves nothing about
    /// durability.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        migrator().run(&pool).await?;
        Ok(Self {
            path: None,
            writer: pool.clone(),
            reader: pool,
        })
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Closes every connection, waiting for them; the last one checkpoints the WAL into
    /// the database file. Dropping the store without closing loses nothing committed.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
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

/// Creates `path` empty with mode 0600 unless it exists (SQLite then gives its WAL and
/// shared-memory files the same mode), and makes the new directory entry durable.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let io = |operation, source| StoreError::Io {
        operation,
        path: path.to_path_buf(),
        source,
    };
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => {
            // The mode passed to open is filtered by the umask; set it exactly.
            file.set_permissions(Permissions::from_mode(0o600))
                .map_err(|e| io("set permissions of", e))?;
            file.sync_all().map_err(|e| io("sync", e))?;
            let parent = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            File::open(parent)
                .and_then(|directory| directory.sync_all())
                .map_err(|e| io("sync the directory of", e))?;
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let mode = path
                .metadata()
                .map_err(|e| io("inspect", e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                tracing::warn!(
                    path = %path.display(),
                    mode = format!("{:o}", mode & 0o777),
                    "database file is accessible by group or others; chmod 600 it"
                );
            }
            Ok(())
        }
        Err(e) => Err(io("create database file", e)),
    }
}

// ---------------------------------------------------------------------------------
// Conversions and checks shared by the trait implementations.

fn column<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
}

/// Reads a non-negative integer column as `u64`.
fn sequence_column(row: &SqliteRow, name: &str) -> Result<u64, StoreError> {
    non_negative(column(row, name)?, name)
}

fn intent_from_row(row: &SqliteRow) -> Result<IssuanceIntent, StoreError> {
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
        crl_shard: column::<Option<i64>>(row, "crl_shard")?
            .map(|shard| {
                u8::try_from(shard)
                    .map_err(|_| StoreError::Corrupt(format!("crl_shard {shard} out of range")))
            })
            .transpose()?,
    })
}

fn record_from_row(row: &SqliteRow) -> Result<CertificateRecord, StoreError> {
    let revocation_reason = column::<Option<i64>>(row, "revocation_reason")?
        .map(|code| {
            u8::try_from(code)
                .map_err(|_| StoreError::Corrupt(format!("revocation reason {code} out of range")))
        })
        .transpose()?;
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
        revocation_reason,
    })
}

fn token_from_row(row: &SqliteRow) -> Result<BootstrapToken, StoreError> {
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

fn lineage_from_row(row: &SqliteRow) -> Result<Lineage, StoreError> {
    Ok(Lineage {
        id: column(row, "id")?,
        provisioner: column(row, "provisioner")?,
        identity: column(row, "identity")?,
        created_at: time_from(column(row, "created_at")?, "created_at")?,
    })
}

fn audit_event_from_row(row: &SqliteRow) -> Result<StoredAuditEvent, StoreError> {
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

// ---------------------------------------------------------------------------------
// Certificates.

#[async_trait]
impl CertificateStore for SqliteStore {
    async fn record_intent(&self, intent: &IssuanceIntent) -> Result<(), StoreError> {
        check_intent(intent)?;
        let result = sqlx::query(
            "INSERT INTO certificates (serial, issuer, profile, provisioner, lineage, requester, \
             sans, subject_key_sha256, not_before, not_after, lint_certificate, request_id, \
             status, created_at, crl_shard) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
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
        .bind(intent.crl_shard.map(i64::from))
        .execute(&self.writer)
        .await;
        result.map(|_| ()).map_err(|e| intent_error(e, intent))
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
            "UPDATE certificates SET status = 'issued', certificate = ?, issued_at = ? \
             WHERE serial = ? AND status = 'pending'",
        )
        .bind(certificate_der)
        .bind(unix(issued_at))
        .bind(&serial)
        .execute(&self.writer)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(());
        }
        // Nothing pending under that serial: say why. Read on the writer, which saw
        // every committed write.
        let row = sqlx::query("SELECT status, certificate FROM certificates WHERE serial = ?")
            .bind(&serial)
            .fetch_optional(&self.writer)
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
            "UPDATE certificates SET status = 'failed', failure_reason = ? \
             WHERE serial = ? AND status = 'pending'",
        )
        .bind(reason)
        .bind(&serial)
        .execute(&self.writer)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(());
        }
        let row = sqlx::query("SELECT status FROM certificates WHERE serial = ?")
            .bind(&serial)
            .fetch_optional(&self.writer)
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
        sqlx::query(
            "SELECT serial, issuer, profile, provisioner, lineage, requester, sans, \
             subject_key_sha256, not_before, not_after, status, certificate, failure_reason, \
             created_at, issued_at, revoked_at, revocation_reason \
             FROM certificates WHERE serial = ?",
        )
        .bind(serial.to_ascii_lowercase())
        .fetch_optional(&self.reader)
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
        .fetch_all(&self.reader)
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
            .fetch_all(&self.reader)
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
impl TokenStore for SqliteStore {
    async fn insert_token(&self, token: &BootstrapToken) -> Result<(), StoreError> {
        check_token(token)?;
        let result = sqlx::query(
            "INSERT INTO bootstrap_tokens (token_hash, provisioner, profile, sans, \
             max_ttl_seconds, expires_at, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&token.token_hash)
        .bind(&token.provisioner)
        .bind(&token.profile)
        .bind(names_to_json(&token.sans)?)
        .bind(token.max_ttl_seconds)
        .bind(unix(token.expires_at))
        .bind(&token.created_by)
        .bind(unix(token.created_at))
        .execute(&self.writer)
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
        // One statement: the row is claimed only if unused and unexpired, so of any
        // number of concurrent consumers exactly one gets it back.
        let claimed = sqlx::query(
            "UPDATE bootstrap_tokens SET used_at = ?, used_by = ? \
             WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? \
             RETURNING token_hash, provisioner, profile, sans, max_ttl_seconds, expires_at, \
             created_by, created_at",
        )
        .bind(now)
        .bind(used_by)
        .bind(&token_hash)
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        if let Some(row) = claimed {
            return token_from_row(&row);
        }
        let row =
            sqlx::query("SELECT used_at, expires_at FROM bootstrap_tokens WHERE token_hash = ?")
                .bind(&token_hash)
                .fetch_optional(&self.writer)
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
impl LineageStore for SqliteStore {
    async fn create_lineage(&self, lineage: &Lineage) -> Result<(), StoreError> {
        if lineage.id.is_empty() {
            return Err(StoreError::Invalid("lineage: empty id".into()));
        }
        let result = sqlx::query(
            "INSERT INTO lineages (id, provisioner, identity, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&lineage.id)
        .bind(&lineage.provisioner)
        .bind(&lineage.identity)
        .bind(unix(lineage.created_at))
        .execute(&self.writer)
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
        sqlx::query("SELECT id, provisioner, identity, created_at FROM lineages WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(lineage_from_row)
            .transpose()
    }
}

// ---------------------------------------------------------------------------------
// Audit chain.

#[async_trait]
impl AuditStore for SqliteStore {
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
        // IMMEDIATE takes the write lock before reading the head, so another process
        // appending to the same file cannot read the same head (in this process, the
        // single writer connection already serialises appends).
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let head = sqlx::query(
            "SELECT sequence, hash FROM audit_events WHERE chain = ? \
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
             VALUES (?, ?, ?, ?, ?, ?)",
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
             WHERE chain = ? AND sequence > ? ORDER BY sequence LIMIT ?",
        )
        .bind(chain)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
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
                 WHERE chain = ? AND sequence > ? ORDER BY sequence LIMIT ?",
            )
            .bind(chain)
            .bind(after)
            .bind(VERIFY_PAGE)
            .fetch_all(&self.reader)
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

mod acme;
mod audit_heads;
mod grants;
mod inventory;
mod leases;
mod operations;
mod revocation;

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;

/// The KMS keyring's metadata in the service database (the `carimbo_kms::KeyringStore`
/// the service's keyring uses; the CLI's local keyrings keep a JSON file instead).
#[async_trait]
impl carimbo_kms::KeyringStore for SqliteStore {
    async fn settings(&self) -> carimbo_kms::Result<carimbo_kms::KeyringSettings> {
        let row = sqlx::query("SELECT destroy_wait_seconds FROM keyring_settings WHERE id = 1")
            .fetch_optional(&self.reader)
            .await
            .map_err(keyring_error)?;
        match row {
            Some(row) => {
                let seconds: i64 = row.try_get("destroy_wait_seconds").map_err(keyring_error)?;
                Ok(carimbo_kms::KeyringSettings {
                    destroy_wait_seconds: u64::try_from(seconds).unwrap_or(0),
                })
            }
            None => Ok(carimbo_kms::KeyringSettings::default()),
        }
    }

    async fn key(
        &self,
        name: &carimbo_kms::KeyName,
    ) -> carimbo_kms::Result<Option<carimbo_kms::KeyRecord>> {
        let row = sqlx::query("SELECT record FROM keyring_keys WHERE name = ?")
            .bind(name.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(keyring_error)?;
        row.map(|row| keyring_record(&row)).transpose()
    }

    async fn keys(&self) -> carimbo_kms::Result<Vec<carimbo_kms::KeyRecord>> {
        let rows = sqlx::query("SELECT record FROM keyring_keys ORDER BY name")
            .fetch_all(&self.reader)
            .await
            .map_err(keyring_error)?;
        rows.iter().map(keyring_record).collect()
    }

    async fn insert(&self, record: &carimbo_kms::KeyRecord) -> carimbo_kms::Result<()> {
        let json = keyring_json(record)?;
        let result =
            sqlx::query("INSERT INTO keyring_keys (name, revision, record) VALUES (?, ?, ?)")
                .bind(record.name.as_str())
                .bind(i64::try_from(record.revision).unwrap_or(i64::MAX))
                .bind(json)
                .execute(&self.writer)
                .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                Err(carimbo_kms::Error::KeyExists(record.name.to_string()))
            }
            Err(error) => Err(keyring_error(error)),
        }
    }

    async fn update(&self, record: &carimbo_kms::KeyRecord) -> carimbo_kms::Result<()> {
        let json = keyring_json(record)?;
        let revision = i64::try_from(record.revision).unwrap_or(i64::MAX);
        let updated = sqlx::query(
            "UPDATE keyring_keys SET revision = ?, record = ? WHERE name = ? AND revision = ?",
        )
        .bind(revision)
        .bind(json)
        .bind(record.name.as_str())
        .bind(revision - 1)
        .execute(&self.writer)
        .await
        .map_err(keyring_error)?
        .rows_affected();
        if updated == 1 {
            return Ok(());
        }
        let exists = sqlx::query("SELECT 1 FROM keyring_keys WHERE name = ?")
            .bind(record.name.as_str())
            .fetch_optional(&self.writer)
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

fn keyring_record(row: &SqliteRow) -> carimbo_kms::Result<carimbo_kms::KeyRecord> {
    let text: String = row.try_get("record").map_err(keyring_error)?;
    keyring_record_from(&text)
}

impl SqliteStore {
    /// Sets the keyring's settings (the waiting period between disable and destroy).
    pub async fn set_keyring_settings(
        &self,
        settings: &carimbo_kms::KeyringSettings,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO keyring_settings (id, destroy_wait_seconds) VALUES (1, ?) \
             ON CONFLICT (id) DO UPDATE SET destroy_wait_seconds = excluded.destroy_wait_seconds",
        )
        .bind(i64::try_from(settings.destroy_wait_seconds).unwrap_or(i64::MAX))
        .execute(&self.writer)
        .await?;
        Ok(())
    }
}
