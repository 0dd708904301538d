//! PostgreSQL: the conformance suite against a real server (one database per test, see
//! [`testing`](super::testing)), and tests about PostgreSQL itself: several replicas
//! (separate pools) writing at once, migrations, connection secrets, bulk CRL reads.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use sqlx::AssertSqlSafe;
use time::{Duration, OffsetDateTime};

use super::testing;
use super::*;
use crate::conformance::{
    self, Fixture, NOW, answer, crl, intent, issue, lineage, token, with_lineage,
};
use crate::{OcspCertStatus, RevocationStore, Store, StoredOcspResponse};

/// A database of its own on the test server.
pub(crate) struct PgFixture {
    // Declared first, dropped first: the pool goes before its database.
    store: PostgresStore,
    url: String,
    _database: testing::TestDatabase,
}

impl Fixture for PgFixture {
    type Store = PostgresStore;

    async fn fresh() -> Option<Self> {
        let database = testing::database().await?;
        let url = database.url.clone();
        let store = PostgresStore::connect(&url, &PostgresOptions::default())
            .await
            .unwrap();
        Some(Self {
            store,
            url,
            _database: database,
        })
    }

    fn store(&self) -> &PostgresStore {
        &self.store
    }

    async fn reopen(&self, store: PostgresStore) -> PostgresStore {
        store.close().await;
        PostgresStore::connect(&self.url, &PostgresOptions::default())
            .await
            .unwrap()
    }

    async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&self.store.pool)
            .await
            .map(|done| done.rows_affected())
    }

    async fn scalar_i64(&self, sql: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.store.pool)
            .await
            .unwrap()
    }

    async fn scalar_text(&self, sql: &str) -> String {
        sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.store.pool)
            .await
            .unwrap()
    }

    async fn drop_trigger(&self, table: &str, name: &str) {
        self.execute(&format!("DROP TRIGGER {name} ON {table}"))
            .await
            .unwrap();
    }

    async fn refuse_inserts(&self, table: &str) {
        self.execute(&format!(
            "CREATE TRIGGER test_refuse_insert BEFORE INSERT ON {table} FOR EACH ROW \
             EXECUTE FUNCTION carimbo_refuse_change('refused by test')"
        ))
        .await
        .unwrap();
    }

    async fn allow_inserts(&self, table: &str) {
        self.execute(&format!("DROP TRIGGER test_refuse_insert ON {table}"))
            .await
            .unwrap();
    }

    async fn set_keyring_settings(&self, settings: &carimbo_kms::KeyringSettings) {
        self.store.set_keyring_settings(settings).await.unwrap();
    }
}

conformance::conformance_tests!(PgFixture);

/// A second replica: its own pool on the fixture's database.
async fn replica(fixture: &PgFixture) -> PostgresStore {
    PostgresStore::connect(&fixture.url, &PostgresOptions::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_publishing_crls_never_reuse_a_number() {
    let Some(f) = with_lineage::<PgFixture>().await else {
        return;
    };
    let replicas = [f.store.clone(), replica(&f).await];
    issue(&replicas[0], &intent("0a")).await;
    let mut tasks = Vec::new();
    for task in 0..8u8 {
        let store = replicas[usize::from(task % 2)].clone();
        tasks.push(tokio::spawn(async move {
            let mut published = Vec::new();
            for _ in 0..5 {
                loop {
                    let next = store
                        .crl_head("int-server")
                        .await
                        .unwrap()
                        .map_or(1, |head| head.last_number + 1);
                    let (revision, _) = store
                        .revoked_for_crl("int-server", OffsetDateTime::UNIX_EPOCH)
                        .await
                        .unwrap();
                    let mut candidate = crl("int-server", next, NOW);
                    candidate.der.push(task);
                    match store.publish_crl(&candidate, revision, None).await {
                        Ok(()) => {
                            published.push(next);
                            break;
                        }
                        Err(StoreError::Conflict(_)) => {}
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            }
            published
        }));
    }
    // Meanwhile a revocation moves the revision: publishers built on the old one after
    // a CRL built on the new one are refused, and rebuild.
    replicas[1].revoke("0a", 0, NOW).await.unwrap();
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.extend(task.await.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=40).collect::<Vec<u64>>());
    assert_eq!(f.scalar_i64("SELECT COUNT(*) FROM crls").await, 40);
    let head = replicas[0].crl_head("int-server").await.unwrap().unwrap();
    assert_eq!(head.last_number, 40);
    assert_eq!(
        replicas[1]
            .latest_crl("int-server")
            .await
            .unwrap()
            .unwrap()
            .number,
        40
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_consuming_one_token_have_one_winner() {
    let Some(f) = PgFixture::fresh().await else {
        return;
    };
    let replicas = [f.store.clone(), replica(&f).await];
    let token = token("d4", NOW + Duration::hours(1));
    replicas[0].insert_token(&token).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = replicas[i % 2].clone();
        let hash = token.token_hash.clone();
        tasks.push(tokio::spawn(async move {
            store.consume_token(&hash, NOW, &format!("task-{i}")).await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(consumed) => {
                assert_eq!(consumed, token);
                winners += 1;
            }
            Err(StoreError::TokenAlreadyUsed) => {}
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_revocations_of_one_serial_have_one_change() {
    let Some(f) = with_lineage::<PgFixture>().await else {
        return;
    };
    let replicas = [f.store.clone(), replica(&f).await];
    issue(&replicas[0], &intent("0a")).await;
    let mut tasks = Vec::new();
    for i in 0..16_i64 {
        let store = replicas[usize::from(i % 2 == 1)].clone();
        tasks.push(tokio::spawn(async move {
            store
                .revoke("0a", 4, NOW + Duration::seconds(i))
                .await
                .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let changed: Vec<_> = outcomes.iter().filter(|o| o.changed).collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].log_id, Some(1));
    // Every caller sees the one revocation that happened.
    assert!(outcomes.iter().all(|o| o.record == changed[0].record));
    assert_eq!(f.scalar_i64("SELECT COUNT(*) FROM revocation_log").await, 1);
    assert_eq!(
        replicas[1]
            .crl_head("int-server")
            .await
            .unwrap()
            .unwrap()
            .revision,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_revocations_log_in_commit_order_and_heads_only_grow() {
    let Some(f) = with_lineage::<PgFixture>().await else {
        return;
    };
    let replicas = [f.store.clone(), replica(&f).await];
    let serials: Vec<String> = (1..=24).map(|i| format!("{i:02x}")).collect();
    for (i, serial) in serials.iter().enumerate() {
        let issuer = if i % 3 == 0 {
            "int-client"
        } else {
            "int-server"
        };
        issue(
            &replicas[0],
            &IssuanceIntent {
                crl_shard: None,
                issuer: issuer.into(),
                ..intent(serial)
            },
        )
        .await;
    }
    // A poller follows the log while revocations commit from both replicas.
    let poller = {
        let store = replicas[1].clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut after = 0;
            while seen.len() < 24 {
                for entry in store.revocations_after(after, 5).await.unwrap() {
                    assert!(entry.id > after, "ids only grow");
                    after = entry.id;
                    seen.push(entry.serial);
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    let mut tasks = Vec::new();
    for (i, serial) in serials.iter().enumerate() {
        let store = replicas[i % 2].clone();
        let serial = serial.clone();
        tasks.push(tokio::spawn(async move {
            store.revoke(&serial, 0, NOW).await.unwrap()
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().changed);
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(60), poller)
        .await
        .expect("the poller saw every revocation")
        .unwrap();
    // Nothing skipped, nothing twice: no id committed behind the poller's position.
    assert_eq!(
        seen.iter().cloned().collect::<BTreeSet<_>>(),
        serials.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(seen.len(), 24);
    let log = replicas[0].revocations_after(0, 100).await.unwrap();
    let ids: Vec<u64> = log.iter().map(|entry| entry.id).collect();
    assert_eq!(ids, (1..=24).collect::<Vec<u64>>());
    // Each head is at the last log id of its issuer.
    for issuer in ["int-client", "int-server"] {
        let last = log
            .iter()
            .filter(|entry| entry.issuer == issuer)
            .map(|entry| entry.id)
            .max();
        let head = replicas[0].crl_head(issuer).await.unwrap().unwrap();
        assert_eq!(Some(head.revision), last, "{issuer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_good_answer_racing_a_revocation_is_never_left_stored() {
    let Some(f) = with_lineage::<PgFixture>().await else {
        return;
    };
    let replicas = [f.store.clone(), replica(&f).await];
    let serials: Vec<String> = (1..=20).map(|i| format!("c{i:02x}")).collect();
    for serial in &serials {
        issue(&replicas[0], &intent(serial)).await;
    }
    let mut tasks = Vec::new();
    for serial in &serials {
        let (revoker, signer) = (replicas[0].clone(), replicas[1].clone());
        let good = answer(serial, OcspCertStatus::Good, NOW);
        let serial = serial.clone();
        tasks.push(tokio::spawn(async move {
            let (revoked, stored) = tokio::join!(
                revoker.revoke(&serial, 0, NOW),
                signer.store_ocsp_response(&good, None)
            );
            assert!(revoked.unwrap().changed);
            stored.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for serial in &serials {
        assert_eq!(
            replicas[0].ocsp_response(serial, "sha1").await.unwrap(),
            None,
            "{serial}: a good answer outlived the revocation"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ocsp_stores_keep_the_newest_answer() {
    let Some(f) = with_lineage::<PgFixture>().await else {
        return;
    };
    let replicas = [f.store.clone(), replica(&f).await];
    issue(&replicas[0], &intent("0a")).await;
    let mut tasks = Vec::new();
    for i in 0..16_i64 {
        let store = replicas[usize::from(i % 2 == 1)].clone();
        let response = StoredOcspResponse {
            der: vec![0x30, 0x01, u8::try_from(i).unwrap()],
            ..answer("0a", OcspCertStatus::Good, NOW + Duration::seconds(i))
        };
        tasks.push(tokio::spawn(async move {
            store.store_ocsp_response(&response, None).await.unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stored = replicas[0]
        .ocsp_response("0a", "sha1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.this_update, NOW + Duration::seconds(15));
    assert_eq!(stored.der, vec![0x30, 0x01, 15]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_keep_one_audit_chain_each_without_forks() {
    let Some(f) = PgFixture::fresh().await else {
        return;
    };
    let replicas = [f.store.clone(), replica(&f).await];
    let mut tasks = Vec::new();
    for writer in 0..6 {
        let store = replicas[writer % 2].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let event = serde_json::json!({"writer": writer, "i": i});
                store.append_audit("shared", &event, NOW).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        f.scalar_i64("SELECT MAX(sequence) FROM audit_events WHERE chain = 'shared'")
            .await,
        120
    );
    assert_eq!(
        replicas[1].verify_audit_chain("shared").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn the_password_is_never_shown() {
    let Some(database) = testing::database().await else {
        return;
    };
    let url = database.url.clone();
    let server = testing::server().unwrap();
    let store = PostgresStore::connect(
        &url,
        &PostgresOptions {
            max_connections: 3,
            acquire_timeout: std::time::Duration::from_secs(5),
        },
    )
    .await
    .unwrap();
    let debug = format!("{store:?}");
    assert!(!debug.contains(&server.password), "{debug}");
    assert!(debug.contains("127.0.0.1"), "{debug}");
    assert!(debug.contains("carimbo"), "{debug}");
    assert_eq!(store.pool.options().get_max_connections(), 3);

    // A wrong password: refused, and neither password is in the error.
    let wrong = url.replace(&server.password, "not-the-password-0123");
    let err = PostgresStore::connect(&wrong, &PostgresOptions::default())
        .await
        .unwrap_err();
    let message = format!("{err} {err:?}");
    assert!(matches!(err, StoreError::Database(_)), "{message}");
    assert!(!message.contains("not-the-password-0123"), "{message}");
    assert!(!message.contains(&server.password), "{message}");

    // A malformed URL: refused without quoting it.
    let err = PostgresStore::connect("postgres://user:s3cret@[bad", &PostgresOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(!format!("{err} {err:?}").contains("s3cret"));
}

#[tokio::test]
async fn reconnecting_keeps_data_and_applies_migrations_once() {
    let Some(f) = with_lineage::<PgFixture>().await else {
        return;
    };
    issue(&f.store, &intent("aa")).await;
    for _ in 0..2 {
        let store = f.reopen(f.store.clone()).await;
        assert!(store.certificate("aa").await.unwrap().is_some());
        let applied: Vec<(i64, bool)> =
            sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&store.pool)
                .await
                .unwrap();
        let expected: Vec<(i64, bool)> = MIGRATIONS.iter().map(|m| (m.0, true)).collect();
        assert_eq!(applied, expected);
        store.close().await;
    }
}

#[tokio::test]
async fn an_edited_migration_is_refused() {
    let Some(f) = PgFixture::fresh().await else {
        return;
    };
    f.execute("UPDATE _sqlx_migrations SET checksum = '\\x00'::bytea WHERE version = 1")
        .await
        .unwrap();
    let err = PostgresStore::connect(&f.url, &PostgresOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Migration(_)), "{err}");
}

#[tokio::test]
async fn replicas_starting_together_migrate_once() {
    let Some(database) = testing::database().await else {
        return;
    };
    let url = database.url.clone();
    let options = PostgresOptions::default();
    let (a, b, c) = tokio::join!(
        PostgresStore::connect(&url, &options),
        PostgresStore::connect(&url, &options),
        PostgresStore::connect(&url, &options),
    );
    let (a, _b, _c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&a.pool)
        .await
        .unwrap();
    assert_eq!(applied, i64::try_from(MIGRATIONS.len()).unwrap());
}

#[test]
fn embedded_migrations_match_the_directory() {
    let directory =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/postgres");
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

#[test]
fn both_backends_have_the_same_migrations() {
    let sqlite: Vec<(i64, &str)> = crate::sqlite::MIGRATIONS
        .iter()
        .map(|&(v, d, _)| (v, d))
        .collect();
    let postgres: Vec<(i64, &str)> = MIGRATIONS.iter().map(|&(v, d, _)| (v, d)).collect();
    assert_eq!(sqlite, postgres);
}

/// Test-only bulk load: `count` revoked certificates of `issuer` in one statement,
/// serials `{prefix}{i:016x}`.
async fn insert_revoked(store: &PostgresStore, issuer: &str, prefix: &str, count: i64) {
    sqlx::query(
        "INSERT INTO certificates (serial, issuer, profile, provisioner, lineage, requester, \
         sans, subject_key_sha256, not_before, not_after, lint_certificate, request_id, \
         status, certificate, created_at, issued_at, revoked_at, revocation_reason) \
         SELECT $1 || lpad(to_hex(i), 16, '0'), $2, 'server', 'tokens', 'lineage-1', 'bulk', \
         '[\"bulk.example.internal\"]', lpad(to_hex(i), 64, '0'), $3, $4, '\\x30'::bytea, \
         'req-bulk', 'revoked', '\\x3000'::bytea, $5, $5, $5 + i % 86400, i % 7 \
         FROM generate_series(1::bigint, $6) AS i",
    )
    .bind(prefix)
    .bind(issuer)
    .bind(unix(NOW))
    .bind(unix(NOW + Duration::days(90)))
    .bind(unix(NOW))
    .bind(count)
    .execute(&store.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn revoked_for_crl_reads_200_000_entries_in_one_query() {
    const COUNT: usize = 200_000;
    let Some(f) = with_lineage::<PgFixture>().await else {
        return;
    };
    let store = &f.store;
    let started = Instant::now();
    insert_revoked(store, "int-bulk", "a", i64::try_from(COUNT).unwrap()).await;
    insert_revoked(store, "int-other", "b", 50_000).await;
    f.execute("ANALYZE certificates").await.unwrap();
    let loaded = started.elapsed();

    // The predicate is served by certificates_issuer_status (for a large issuer the
    // planner may rightly prefer a sequential scan; for a small one it must not).
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT serial, revoked_at, revocation_reason FROM certificates \
         WHERE issuer = 'int-small' AND status = 'revoked' AND not_after >= 0 ORDER BY serial",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    assert!(
        plan.iter()
            .any(|step| step.contains("certificates_issuer_status")),
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

#[tokio::test]
async fn store_objects_of_both_backends_agree() {
    let Some(f) = with_lineage::<PgFixture>().await else {
        return;
    };
    let sqlite = SqliteStoreForComparison::open().await;
    sqlite
        .0
        .create_lineage(&lineage("lineage-1"))
        .await
        .unwrap();
    let stores: [Arc<dyn Store>; 2] = [Arc::new(f.store.clone()), Arc::new(sqlite.0.clone())];
    let mut records = Vec::new();
    for store in &stores {
        store.record_intent(&intent("0a")).await.unwrap();
        store.complete_issuance("0a", b"der", NOW).await.unwrap();
        store.revoke("0a", 1, NOW).await.unwrap();
        records.push((
            store.certificate("0a").await.unwrap(),
            store.crl_heads().await.unwrap(),
            store.revocations_after(0, 10).await.unwrap(),
        ));
    }
    assert_eq!(records[0], records[1]);
}

/// A SQLite store in a temporary directory, to compare records with.
struct SqliteStoreForComparison(crate::SqliteStore, #[allow(dead_code)] tempfile::TempDir);

impl SqliteStoreForComparison {
    async fn open() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(&dir.path().join("carimbo.db"))
            .await
            .unwrap();
        Self(store, dir)
    }
}

#[test]
fn the_test_server_runs_as_postgres_when_root_in_a_private_directory() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(server) = testing::server() else {
        return;
    };
    let euid = std::fs::metadata("/proc/self").unwrap().uid();
    let owner = std::fs::metadata(&server.dir).unwrap();
    if euid == 0 {
        let postgres = std::process::Command::new("id")
            .args(["-u", "postgres"])
            .output()
            .unwrap();
        let postgres: u32 = String::from_utf8_lossy(&postgres.stdout)
            .trim()
            .parse()
            .unwrap();
        assert_eq!(owner.uid(), postgres);
    } else {
        assert_eq!(owner.uid(), euid);
    }
    assert_eq!(owner.permissions().mode() & 0o077, 0, "private directory");
    assert!(server.dir.join("data/postmaster.pid").is_file());
}
