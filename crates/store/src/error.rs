//! The one error type of the store.

use std::path::PathBuf;

/// Everything a store operation can fail with.
///
/// Messages name what failed without SQL text, bound values or secrets: every value
/// reaches the database as a bound parameter, and token secrets never reach the store
/// at all (only their hashes do). The service maps variants to HTTP problems in one
/// place; the first four are expected outcomes of the issuance flow, not faults.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An intent with this serial already exists; nothing was written. The issuer
    /// draws a new random serial and tries again.
    #[error("serial number already in use")]
    SerialCollision,
    /// The record asked for does not exist (or, for issuance completion, there is no
    /// intent with that serial).
    #[error("not found")]
    NotFound,
    /// The bootstrap token was consumed before.
    #[error("token already used")]
    TokenAlreadyUsed,
    /// The bootstrap token's validity ended.
    #[error("token expired")]
    TokenExpired,
    /// The change contradicts stored state (for example completing an intent that is no
    /// longer pending, a duplicate token or lineage, an intent naming an unknown
    /// lineage).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A scheduled job's write carried a fence that is no longer its lease's current
    /// one: the lease passed to another holder (or this one was never granted it).
    /// Nothing was written; the job stops until it holds the lease again.
    #[error("fenced: {0}")]
    Fenced(String),
    /// A value was refused before reaching the database (for example a serial that is
    /// not lowercase hex, or an intent without names).
    #[error("invalid {0}")]
    Invalid(String),
    /// The database failed (I/O, lock timeout, constraint, closed pool, ...).
    #[error("database: {0}")]
    Database(#[source] sqlx::Error),
    /// The embedded schema migrations could not be applied, or the database holds
    /// migrations this build does not know or that were changed after being applied.
    #[error("schema migration: {0}")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// The database file could not be created or inspected.
    #[error("{operation} {}: {source}", path.display())]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A stored value cannot be read back as what it should be (bad JSON, timestamp out
    /// of range, unknown status). Points at damage or at a writer that bypassed the
    /// store.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the database's disk is full (SQLite `SQLITE_FULL`, PostgreSQL
    /// `53100 disk_full`): the write was rolled back; a 503 until space is freed.
    pub fn is_storage_full(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(database)) = self else {
            return false;
        };
        database
            .code()
            .is_some_and(|code| matches!(code.as_ref(), "13" | "53100"))
    }

    /// Whether the database could not be reached or is going away (pool closed or
    /// exhausted, connection lost, server shutting down, SQLite busy): a temporary
    /// condition to answer with 503, unlike a refused or corrupt write.
    pub fn is_unavailable(&self) -> bool {
        let StoreError::Database(error) = self else {
            return false;
        };
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(database) => database.code().is_some_and(|code| {
                // PostgreSQL: class 08 (connection exception), 57P01-57P03 (admin or
                // crash shutdown, cannot connect now). SQLite: 5 BUSY, 6 LOCKED.
                code.starts_with("08")
                    || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "5" | "6")
            }),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migration(error)
    }
}
