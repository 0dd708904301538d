//! Tests against real SQLite files in temporary directories.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use serde_json::json;
use tempfile::TempDir;
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;
use crate::Store;

pub(super) const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);

pub(super) async fn open_temp() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("carimbo.db"))
        .await
        .unwrap();
    (dir, store)
}

pub(super) fn lineage(id: &str) -> Lineage {
    Lineage {
        id: id.into(),
        provisioner: "tokens".into(),
        identity: "web-1".into(),
        created_at: NOW,
    }
}

pub(super) fn intent(serial: &str) -> IssuanceIntent {
    IssuanceIntent {
        serial: serial.into(),
        issuer: "int-server".into(),
        profile: "server".into(),
        provisioner: "tokens".into(),
        lineage: "lineage-1".into(),
        requester: "web-1".into(),
        sans: vec!["web-1.example.internal".into(), "10.0.0.7".into()],
        subject_key_sha256: "ab".repeat(32),
        not_before: NOW,
        not_after: NOW + time::Duration::hours(24),
        lint_certificate: vec![0x30, 0x82, 0x01, 0x00, 0xaa],
        request_id: "req-1".into(),
        created_at: NOW,
    }
}

/// A store with lineage-1 created.
pub(super) async fn open_with_lineage() -> (TempDir, SqliteStore) {
    let (dir, store) = open_temp().await;
    store.create_lineage(&lineage("lineage-1")).await.unwrap();
    (dir, store)
}

fn token(hash_byte: &str, expires_at: OffsetDateTime) -> BootstrapToken {
    BootstrapToken {
        token_hash: hash_byte.repeat(32),
        provisioner: "tokens".into(),
        profile: "server".into(),
        sans: vec!["web-1.example.internal".into()],
        max_ttl_seconds: 86_400,
        expires_at,
        created_by: "admin:alice".into(),
        created_at: NOW,
    }
}

fn counts(pending: u64, issued: u64, failed: u64, revoked: u64) -> BTreeMap<String, u64> {
    [
        ("failed", failed),
        ("issued", issued),
        ("pending", pending),
        ("revoked", revoked),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[tokio::test]
async fn intent_then_completion_then_fetch() {
    let (_dir, store) = open_with_lineage().await;
    let intent = intent("0a1b2c");
    store.record_intent(&intent).await.unwrap();

    let pending = store.certificate("0a1b2c").await.unwrap().unwrap();
    assert_eq!(pending.status, CertificateStatus::Pending);
    assert_eq!(pending.certificate, None);
    assert_eq!(store.pending_intents().await.unwrap(), vec![intent.clone()]);

    let issued_at = NOW + time::Duration::seconds(1);
    store
        .complete_issuance("0a1b2c", b"certificate DER", issued_at)
        .await
        .unwrap();
    let record = store.certificate("0a1b2c").await.unwrap().unwrap();
    assert_eq!(
        record,
        CertificateRecord {
            serial: intent.serial.clone(),
            issuer: intent.issuer.clone(),
            profile: intent.profile.clone(),
            provisioner: intent.provisioner.clone(),
            lineage: intent.lineage.clone(),
            requester: intent.requester.clone(),
            sans: intent.sans.clone(),
            subject_key_sha256: intent.subject_key_sha256.clone(),
            not_before: intent.not_before,
            not_after: intent.not_after,
            status: CertificateStatus::Issued,
            certificate: Some(b"certificate DER".to_vec()),
            failure_reason: None,
            created_at: intent.created_at,
            issued_at: Some(issued_at),
            revoked_at: None,
            revocation_reason: None,
        }
    );
    // Lookup ignores the case of the hex digits.
    assert_eq!(
        store.certificate("0A1B2C").await.unwrap(),
        Some(record.clone())
    );
    assert!(store.pending_intents().await.unwrap().is_empty());
    assert_eq!(store.count_by_status().await.unwrap(), counts(0, 1, 0, 0));

    // A retried completion with the same certificate is fine; another one is not.
    store
        .complete_issuance("0a1b2c", b"certificate DER", issued_at)
        .await
        .unwrap();
    assert!(matches!(
        store.complete_issuance("0a1b2c", b"other", issued_at).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.certificate("0a1b2c").await.unwrap(), Some(record));
}

#[tokio::test]
async fn duplicate_serial_is_a_collision_and_changes_nothing() {
    let (_dir, store) = open_with_lineage().await;
    store.record_intent(&intent("77")).await.unwrap();
    let before = store.certificate("77").await.unwrap();

    let mut other = intent("77");
    other.requester = "someone-else".into();
    other.sans = vec!["other.example.internal".into()];
    assert!(matches!(
        store.record_intent(&other).await,
        Err(StoreError::SerialCollision)
    ));
    assert_eq!(store.certificate("77").await.unwrap(), before);
    assert_eq!(store.count_by_status().await.unwrap(), counts(1, 0, 0, 0));

    // Also once the first one is issued.
    store.complete_issuance("77", b"der", NOW).await.unwrap();
    assert!(matches!(
        store.record_intent(&other).await,
        Err(StoreError::SerialCollision)
    ));
    assert_eq!(
        store.certificate("77").await.unwrap().unwrap().requester,
        "web-1"
    );
}

#[tokio::test]
async fn completion_or_failure_without_intent_is_not_found() {
    let (_dir, store) = open_with_lineage().await;
    assert!(matches!(
        store.complete_issuance("dead", b"der", NOW).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.fail_issuance("dead", "boom").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.certificate("dead").await.unwrap(), None);
    assert_eq!(store.count_by_status().await.unwrap(), counts(0, 0, 0, 0));
}

#[tokio::test]
async fn failed_issuance_is_recorded_and_final() {
    let (_dir, store) = open_with_lineage().await;
    store.record_intent(&intent("f00d")).await.unwrap();
    store
        .fail_issuance("f00d", "issuer key unavailable")
        .await
        .unwrap();
    let record = store.certificate("f00d").await.unwrap().unwrap();
    assert_eq!(record.status, CertificateStatus::Failed);
    assert_eq!(
        record.failure_reason.as_deref(),
        Some("issuer key unavailable")
    );
    assert_eq!(record.certificate, None);
    assert!(store.pending_intents().await.unwrap().is_empty());

    // Repeating the failure is fine; completing it afterwards is not.
    store.fail_issuance("f00d", "again").await.unwrap();
    assert!(matches!(
        store.complete_issuance("f00d", b"der", NOW).await,
        Err(StoreError::Conflict(_))
    ));
    // An issued certificate cannot be marked failed.
    store.record_intent(&intent("beef")).await.unwrap();
    store.complete_issuance("beef", b"der", NOW).await.unwrap();
    assert!(matches!(
        store.fail_issuance("beef", "late").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.count_by_status().await.unwrap(), counts(0, 1, 1, 0));
}

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
async fn intents_are_checked_before_the_database() {
    let (_dir, store) = open_with_lineage().await;
    for (what, bad) in [
        (
            "uppercase serial",
            IssuanceIntent {
                serial: "0A".into(),
                ..intent("0a")
            },
        ),
        (
            "non-hex serial",
            IssuanceIntent {
                serial: "0x12".into(),
                ..intent("0a")
            },
        ),
        (
            "empty serial",
            IssuanceIntent {
                serial: String::new(),
                ..intent("0a")
            },
        ),
        (
            "no names",
            IssuanceIntent {
                sans: vec![],
                ..intent("0a")
            },
        ),
        (
            "short key hash",
            IssuanceIntent {
                subject_key_sha256: "abcd".into(),
                ..intent("0a")
            },
        ),
        (
            "empty validity",
            IssuanceIntent {
                not_after: NOW,
                ..intent("0a")
            },
        ),
        (
            "empty lint certificate",
            IssuanceIntent {
                lint_certificate: vec![],
                ..intent("0a")
            },
        ),
    ] {
        assert!(
            matches!(store.record_intent(&bad).await, Err(StoreError::Invalid(_))),
            "{what}"
        );
    }
    // An intent must name an existing lineage.
    let orphan = IssuanceIntent {
        lineage: "no-such-lineage".into(),
        ..intent("0b")
    };
    assert!(matches!(
        store.record_intent(&orphan).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.count_by_status().await.unwrap(), counts(0, 0, 0, 0));
}

#[tokio::test]
async fn lineages_are_created_once() {
    let (_dir, store) = open_temp().await;
    assert_eq!(store.lineage("lineage-1").await.unwrap(), None);
    store.create_lineage(&lineage("lineage-1")).await.unwrap();
    assert_eq!(
        store.lineage("lineage-1").await.unwrap(),
        Some(lineage("lineage-1"))
    );
    assert!(matches!(
        store.create_lineage(&lineage("lineage-1")).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.create_lineage(&lineage("")).await,
        Err(StoreError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_token_is_consumed_once() {
    let (_dir, store) = open_temp().await;
    let token = token("a1", NOW + time::Duration::hours(1));
    store.insert_token(&token).await.unwrap();
    assert!(matches!(
        store.insert_token(&token).await,
        Err(StoreError::Conflict(_))
    ));
    let consumed = store
        .consume_token(&token.token_hash, NOW, "web-1")
        .await
        .unwrap();
    assert_eq!(consumed, token);
    assert!(matches!(
        store.consume_token(&token.token_hash, NOW, "web-1").await,
        Err(StoreError::TokenAlreadyUsed)
    ));
    assert!(matches!(
        store.consume_token(&"ff".repeat(32), NOW, "web-1").await,
        Err(StoreError::NotFound)
    ));
    // Only hashes are stored, and they look like hashes.
    assert!(matches!(
        store
            .insert_token(&BootstrapToken {
                token_hash: "my-secret-token".into(),
                ..token.clone()
            })
            .await,
        Err(StoreError::Invalid(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_consumers_of_one_token_have_one_winner() {
    let (_dir, store) = open_temp().await;
    let token = token("b2", NOW + time::Duration::hours(1));
    store.insert_token(&token).await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let hash = token.token_hash.clone();
        tasks.push(tokio::spawn(async move {
            store.consume_token(&hash, NOW, &format!("task-{i}")).await
        }));
    }
    let mut winners = 0;
    let mut already_used = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(consumed) => {
                assert_eq!(consumed, token);
                winners += 1;
            }
            Err(StoreError::TokenAlreadyUsed) => already_used += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!((winners, already_used), (1, 15));
}

#[tokio::test]
async fn an_expired_token_is_refused_and_not_consumed() {
    let (_dir, store) = open_temp().await;
    let expires_at = NOW + time::Duration::minutes(10);
    let token = token("c3", expires_at);
    store.insert_token(&token).await.unwrap();
    // At the expiry instant it is already expired.
    assert!(matches!(
        store
            .consume_token(&token.token_hash, expires_at, "web-1")
            .await,
        Err(StoreError::TokenExpired)
    ));
    assert!(matches!(
        store
            .consume_token(
                &token.token_hash,
                expires_at + time::Duration::days(1),
                "web-1"
            )
            .await,
        Err(StoreError::TokenExpired)
    ));
    // Refusal left it unused: with a clock before expiry it still works (once).
    store
        .consume_token(
            &token.token_hash,
            expires_at - time::Duration::seconds(1),
            "web-1",
        )
        .await
        .unwrap();
    let used: (Option<i64>, Option<String>) =
        sqlx::query_as("SELECT used_at, used_by FROM bootstrap_tokens WHERE token_hash = ?")
            .bind(&token.token_hash)
            .fetch_one(&store.reader)
            .await
            .unwrap();
    assert_eq!(used, (Some(unix(expires_at) - 1), Some("web-1".to_owned())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_audit_appends_make_one_gapless_chain() {
    let (_dir, store) = open_temp().await;
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut appended = Vec::new();
            for i in 0..25 {
                let event = json!({"writer": writer, "i": i, "what": "issue"});
                appended.push(store.append_audit("replica-a", &event, NOW).await.unwrap());
            }
            appended
        }));
    }
    let mut sequences = Vec::new();
    for task in tasks {
        sequences.extend(task.await.unwrap().into_iter().map(|e| e.sequence));
    }
    sequences.sort_unstable();
    assert_eq!(sequences, (1..=200).collect::<Vec<u64>>());
    assert_eq!(store.verify_audit_chain("replica-a").await.unwrap(), None);

    // Reading back: in order, linked, and paged.
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store.audit_events("replica-a", after, 64).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.sequence;
        all.extend(page);
    }
    assert_eq!(all.len(), 200);
    assert_eq!(all[0].previous_hash, GENESIS_HASH);
    for pair in all.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence + 1);
        assert_eq!(pair[1].previous_hash, pair[0].hash);
    }
    assert_eq!(all[0].recorded_at, NOW);
    // Another chain starts at 1 and does not touch this one.
    let other = store
        .append_audit("replica-b", &json!({"what": "start"}), NOW)
        .await
        .unwrap();
    assert_eq!(
        (other.sequence, other.previous_hash.as_str()),
        (1, GENESIS_HASH)
    );
    assert_eq!(store.verify_audit_chain("replica-a").await.unwrap(), None);
    assert_eq!(store.verify_audit_chain("replica-b").await.unwrap(), None);
    assert_eq!(store.verify_audit_chain("empty").await.unwrap(), None);
}

#[tokio::test]
async fn appended_event_is_stored_canonically_and_hashed_as_documented() {
    let (_dir, store) = open_temp().await;
    let event: serde_json::Value = serde_json::from_str(r#"{"z": 1, "a": [true, null]}"#).unwrap();
    let stored = store.append_audit("r", &event, NOW).await.unwrap();
    let text: String =
        sqlx::query_scalar("SELECT event FROM audit_events WHERE chain = 'r' AND sequence = 1")
            .fetch_one(&store.reader)
            .await
            .unwrap();
    assert_eq!(text, r#"{"a":[true,null],"z":1}"#);
    assert_eq!(
        stored.hash,
        event_hash("r", 1, GENESIS_HASH, unix(NOW), &text)
    );
    assert_eq!(store.audit_events("r", 0, 10).await.unwrap(), vec![stored]);
}

#[tokio::test]
async fn tampering_is_found_at_its_sequence() {
    let (_dir, store) = open_temp().await;
    for i in 1..=100 {
        store
            .append_audit("replica-a", &json!({"i": i, "outcome": "success"}), NOW)
            .await
            .unwrap();
    }
    // The application cannot change or delete events...
    let refused = sqlx::query("UPDATE audit_events SET event = '{}' WHERE sequence = 57")
        .execute(&store.writer)
        .await;
    assert!(refused.is_err());
    let refused = sqlx::query("DELETE FROM audit_events WHERE sequence = 57")
        .execute(&store.writer)
        .await;
    assert!(refused.is_err());

    // ...someone with the file can, after dropping the triggers: the chain shows where.
    sqlx::raw_sql("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete")
        .execute(&store.writer)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit_events SET event = '{\"i\":57,\"outcome\":\"failure\"}' \
         WHERE chain = 'replica-a' AND sequence = 57",
    )
    .execute(&store.writer)
    .await
    .unwrap();
    assert_eq!(
        store.verify_audit_chain("replica-a").await.unwrap(),
        Some(57)
    );

    // Moving an event's time breaks it too.
    let (_dir2, store) = open_temp().await;
    for i in 1..=10 {
        store
            .append_audit("c", &json!({ "i": i }), NOW)
            .await
            .unwrap();
    }
    sqlx::raw_sql("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete")
        .execute(&store.writer)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_events SET recorded_at = recorded_at + 1 WHERE sequence = 4")
        .execute(&store.writer)
        .await
        .unwrap();
    assert_eq!(store.verify_audit_chain("c").await.unwrap(), Some(4));
    // A deleted event is a gap at its sequence.
    sqlx::query("DELETE FROM audit_events WHERE sequence = 2")
        .execute(&store.writer)
        .await
        .unwrap();
    assert_eq!(store.verify_audit_chain("c").await.unwrap(), Some(2));
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

#[tokio::test]
async fn error_messages_do_not_carry_values() {
    let (_dir, store) = open_with_lineage().await;
    store.record_intent(&intent("abc")).await.unwrap();
    let secret = "super-secret-token-value";
    let err = store.consume_token(secret, NOW, "x").await.unwrap_err();
    assert!(!err.to_string().contains(secret));
    let err = store.record_intent(&intent("abc")).await.unwrap_err();
    assert_eq!(err.to_string(), "serial number already in use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_intents_for_one_serial_have_one_winner() {
    let (_dir, store) = open_with_lineage().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let intent = IssuanceIntent {
                request_id: format!("req-{i}"),
                ..intent("5e5e")
            };
            store.record_intent(&intent).await
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(e, StoreError::SerialCollision))
    );
    assert_eq!(store.count_by_status().await.unwrap(), counts(1, 0, 0, 0));
}
