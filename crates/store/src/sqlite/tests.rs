//! SQLite: the conformance suite against real files in temporary directories, and the
//! tests about SQLite itself (files, pragmas, reopening, migrations, bulk CRL reads).

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use sqlx::AssertSqlSafe;
use tempfile::TempDir;
use time::Duration;

use super::*;
use crate::conformance::{self, Fixture, NOW, counts, intent, lineage};
use crate::{RevocationStore, Store};

pub(super) async fn open_temp() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("carimbo.db"))
        .await
        .unwrap();
    (dir, store)
}

/// A store with lineage-1 created.
pub(super) async fn open_with_lineage() -> (TempDir, SqliteStore) {
    let (dir, store) = open_temp().await;
    store.create_lineage(&lineage("lineage-1")).await.unwrap();
    (dir, store)
}

/// A SQLite file in a temporary directory.
pub(crate) struct SqliteFixture {
    dir: TempDir,
    store: SqliteStore,
}

impl Fixture for SqliteFixture {
    type Store = SqliteStore;

    async fn fresh() -> Option<Self> {
        let (dir, store) = open_temp().await;
        Some(Self { dir, store })
    }

    fn store(&self) -> &SqliteStore {
        &self.store
    }

    async fn reopen(&self, store: SqliteStore) -> SqliteStore {
        store.close().await;
        SqliteStore::open(&self.dir.path().join("carimbo.db"))
            .await
            .unwrap()
    }

    async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&self.store.writer)
            .await
            .map(|done| done.rows_affected())
    }

    async fn scalar_i64(&self, sql: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.store.reader)
            .await
            .unwrap()
    }

    async fn scalar_text(&self, sql: &str) -> String {
        sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.store.reader)
            .await
            .unwrap()
    }

    async fn drop_trigger(&self, _table: &str, name: &str) {
        self.execute(&format!("DROP TRIGGER {name}")).await.unwrap();
    }

    async fn refuse_inserts(&self, table: &str) {
        self.execute(&format!(
            "CREATE TRIGGER test_refuse_insert BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        ))
        .await
        .unwrap();
    }

    async fn allow_inserts(&self, _table: &str) {
        self.execute("DROP TRIGGER test_refuse_insert")
            .await
            .unwrap();
    }

    async fn set_keyring_settings(&self, settings: &carimbo_kms::KeyringSettings) {
        self.store.set_keyring_settings(settings).await.unwrap();
    }
}

conformance::conformance_tests!(SqliteFixture);

#[tokio::test]
async fn pending_intents_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("carimbo.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.create_lineage(&lineage("lineage-1")).await.unwrap();
    let mut first = intent("01");
    first.created_at = NOW - time::Duration::seconds(5);
    let second = intent("02");
    store.record_intent(&second).await.unwrap();
    store.record_intent(&first).await.unwrap();
    store.record_intent(&intent("03")).await.unwrap();
    store.complete_issuance("03", b"der", NOW).await.unwrap();
    // The process dies between intent and completion: no close, no checkpoint.
    drop(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        reopened.pending_intents().await.unwrap(),
        vec![first, second]
    );
    assert_eq!(
        reopened.certificate("03").await.unwrap().unwrap().status,
        CertificateStatus::Issued
    );
}

#[tokio::test]
async fn durability_pragmas_are_in_force_on_every_connection() {
    let (_dir, store) = open_temp().await;
    for pool in [&store.writer, &store.reader] {
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(journal_mode, "wal");
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(synchronous, 2, "synchronous=FULL");
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(foreign_keys, 1);
        let busy_timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(busy_timeout, 5000);
    }
    // Readers cannot write.
    let refused = sqlx::query("INSERT INTO lineages VALUES ('x', 'p', 'i', 0)")
        .execute(&store.reader)
        .await;
    assert!(refused.is_err());
    assert_eq!(store.lineage("x").await.unwrap(), None);
}

#[tokio::test]
async fn options_set_pool_size_and_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        max_connections: 2,
        busy_timeout: std::time::Duration::from_millis(1500),
    };
    let store = SqliteStore::open_with(&dir.path().join("x.db"), &options)
        .await
        .unwrap();
    assert_eq!(store.reader.options().get_max_connections(), 2);
    let busy_timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&store.writer)
        .await
        .unwrap();
    assert_eq!(busy_timeout, 1500);
    assert!(format!("{store:?}").contains("x.db"));
}

#[tokio::test]
async fn database_files_are_private() {
    let (dir, store) = open_temp().await;
    // Write something so the WAL and shared-memory files exist.
    store.create_lineage(&lineage("lineage-1")).await.unwrap();
    for name in ["carimbo.db", "carimbo.db-wal", "carimbo.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
}

#[tokio::test]
async fn opening_needs_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = SqliteStore::open(&dir.path().join("missing/carimbo.db"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
}

#[tokio::test]
async fn reopening_keeps_data_and_applies_migrations_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("carimbo.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.create_lineage(&lineage("lineage-1")).await.unwrap();
    store.record_intent(&intent("aa")).await.unwrap();
    store.complete_issuance("aa", b"der", NOW).await.unwrap();
    store
        .append_audit("r", &json!({"n": 1}), NOW)
        .await
        .unwrap();
    store.close().await;

    for _ in 0..2 {
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(
            store.certificate("aa").await.unwrap().unwrap().certificate,
            Some(b"der".to_vec())
        );
        assert!(store.lineage("lineage-1").await.unwrap().is_some());
        assert_eq!(store.verify_audit_chain("r").await.unwrap(), None);
        let applied: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&store.reader)
                .await
                .unwrap();
        let expected: Vec<(i64, bool)> = MIGRATIONS.iter().map(|m| (m.0, true)).collect();
        assert_eq!(applied, expected);
        store.close().await;
    }
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("carimbo.db");
    let store = SqliteStore::open(&path).await.unwrap();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = x'00' WHERE version = 1")
        .execute(&store.writer)
        .await
        .unwrap();
    store.close().await;
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Migration(_)), "{err}");
}

#[test]
fn embedded_migrations_match_the_directory() {
    let directory =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
    let mut files: Vec<(i64, String, String)> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let (version, description) = name.split_once('_').unwrap();
            (
                version.parse().unwrap(),
                description.replace('_', " "),
                std::fs::read_to_string(&path).unwrap(),
            )
        })
        .collect();
    files.sort();
    let embedded: Vec<(i64, String, String)> = MIGRATIONS
        .iter()
        .map(|&(v, d, sql)| (v, d.to_owned(), sql.to_owned()))
        .collect();
    assert_eq!(files, embedded);
}

#[tokio::test]
async fn in_memory_store_works_as_a_store_object() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
    store.create_lineage(&lineage("lineage-1")).await.unwrap();
    store.record_intent(&intent("01")).await.unwrap();
    store.complete_issuance("01", b"der", NOW).await.unwrap();
    assert_eq!(store.count_by_status().await.unwrap(), counts(0, 1, 0, 0));
    store.append_audit("r", &json!({}), NOW).await.unwrap();
    assert_eq!(store.verify_audit_chain("r").await.unwrap(), None);
}

/// Test-only bulk load: `count` revoked certificates of `issuer` in one INSERT ... SELECT
/// (one statement, one transaction), serials `{prefix}{i:016x}`.
async fn insert_revoked(store: &SqliteStore, issuer: &str, prefix: &str, count: i64) {
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
         INSERT INTO certificates (serial, issuer, profile, provisioner, lineage, requester, \
         sans, subject_key_sha256, not_before, not_after, lint_certificate, request_id, \
         status, certificate, created_at, issued_at, revoked_at, revocation_reason) \
         SELECT ? || printf('%016x', i), ?, 'server', 'tokens', 'lineage-1', 'bulk', \
         '[\"bulk.example.internal\"]', printf('%064x', i), ?, ?, x'30', 'req-bulk', \
         'revoked', x'3000', ?, ?, ? + i % 86400, i % 7 FROM n",
    )
    .bind(count)
    .bind(prefix)
    .bind(issuer)
    .bind(unix(NOW))
    .bind(unix(NOW + Duration::days(90)))
    .bind(unix(NOW))
    .bind(unix(NOW))
    .bind(unix(NOW))
    .execute(&store.writer)
    .await
    .unwrap();
}

#[tokio::test]
async fn revoked_for_crl_reads_200_000_entries_in_one_query() {
    const COUNT: usize = 200_000;
    let (_dir, store) = open_with_lineage().await;
    let started = Instant::now();
    insert_revoked(&store, "int-bulk", "a", i64::try_from(COUNT).unwrap()).await;
    // Noise the query must skip through the index: another issuer.
    insert_revoked(&store, "int-other", "b", 50_000).await;
    let loaded = started.elapsed();

    // The plan is a range over certificates_issuer_status, not a scan.
    let plan: Vec<String> = sqlx::query_as::<_, (i64, i64, i64, String)>(
        "EXPLAIN QUERY PLAN SELECT serial, revoked_at, revocation_reason \
         FROM certificates INDEXED BY certificates_issuer_status \
         WHERE issuer = ? AND status = 'revoked' AND not_after >= ? ORDER BY serial",
    )
    .bind("int-bulk")
    .bind(0_i64)
    .fetch_all(&store.reader)
    .await
    .unwrap()
    .into_iter()
    .map(|step| step.3)
    .collect();
    assert!(
        plan.iter()
            .any(|step| step.contains("USING INDEX certificates_issuer_status")),
        "{plan:?}"
    );

    let started = Instant::now();
    let (revision, entries) = store.revoked_for_crl("int-bulk", NOW).await.unwrap();
    let read = started.elapsed();
    assert_eq!(revision, 0, "bulk rows bypassed revoke: no head");
    assert_eq!(entries.len(), COUNT);
    assert!(
        entries
            .windows(2)
            .all(|pair| pair[0].serial < pair[1].serial)
    );
    assert_eq!(entries[0].serial, format!("a{:016x}", 1));
    assert_eq!(entries[0].reason, 1);
    eprintln!(
        "loaded {} rows in {loaded:?}, read {COUNT} entries in {read:?}",
        COUNT + 50_000
    );
}
