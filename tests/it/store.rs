//! carimbo-store under load: many concurrent writers on one SQLite file.
//!
//! 50 tasks each record 20 issuance intents, complete them and append an audit event
//! per certificate to one chain. The tasks share two store handles opened on the same
//! file — as the service and an admin command would — so writes contend both in the
//! process (the writer queue) and in SQLite (its lock and busy timeout). Afterwards
//! every completion has its row, the counts add up and the audit chain is gapless.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use carimbo_store::{
    AuditStore, CertificateStatus, CertificateStore, IssuanceIntent, Lineage, SqliteStore, Store,
};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

const TASKS: usize = 50;
const PER_TASK: usize = 20;
const CHAIN: &str = "replica-1";
const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);

fn intent(task: usize, i: usize) -> IssuanceIntent {
    IssuanceIntent {
        crl_shard: None,
        // Serials are unique per (task, i); real ones are 128-bit random.
        serial: format!("{:04x}{:04x}7e57", task, i),
        issuer: "int-server".into(),
        profile: "server".into(),
        provisioner: "tokens".into(),
        lineage: format!("lineage-{task}"),
        requester: format!("svc-{task}"),
        sans: vec![format!("svc-{task}-{i}.example.internal")],
        subject_key_sha256: format!("{:064x}", task * 1000 + i),
        not_before: NOW,
        not_after: NOW + time::Duration::hours(24),
        lint_certificate: vec![0x30; 512],
        request_id: format!("req-{task}-{i}"),
        created_at: NOW,
    }
}

fn certificate_der(serial: &str) -> Vec<u8> {
    let mut der = vec![0x30, 0x82];
    der.extend_from_slice(serial.as_bytes());
    der.resize(900, 0xcc);
    der
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_writers_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("carimbo.db");
    let first: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    let second: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
    for task in 0..TASKS {
        first
            .create_lineage(&Lineage {
                id: format!("lineage-{task}"),
                provisioner: "tokens".into(),
                identity: format!("svc-{task}"),
                created_at: NOW,
            })
            .await
            .unwrap();
    }

    let started = Instant::now();
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = if task % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        handles.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                let intent = intent(task, i);
                store.record_intent(&intent).await.unwrap();
                store
                    .complete_issuance(&intent.serial, &certificate_der(&intent.serial), NOW)
                    .await
                    .unwrap();
                store
                    .append_audit(
                        CHAIN,
                        &json!({"operation": "issue", "serial": intent.serial, "outcome": "success"}),
                        NOW,
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{} intents + completions + audit events from {TASKS} tasks in {elapsed:?}",
        TASKS * PER_TASK
    );

    // Read back through a fresh handle, as after a restart.
    drop((first, second));
    let store = SqliteStore::open(&path).await.unwrap();
    for task in 0..TASKS {
        for i in 0..PER_TASK {
            let intent = intent(task, i);
            let record = store.certificate(&intent.serial).await.unwrap().unwrap();
            assert_eq!(record.status, CertificateStatus::Issued);
            assert_eq!(
                record.certificate.as_deref(),
                Some(&certificate_der(&intent.serial)[..])
            );
            assert_eq!(record.sans, intent.sans);
        }
    }
    let expected: BTreeMap<String, u64> = [
        ("failed", 0),
        ("issued", (TASKS * PER_TASK) as u64),
        ("pending", 0),
        ("revoked", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(store.count_by_status().await.unwrap(), expected);
    assert!(store.pending_intents().await.unwrap().is_empty());

    let events = store.audit_events(CHAIN, 0, u32::MAX).await.unwrap();
    let sequences: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(
        sequences,
        (1..=(TASKS * PER_TASK) as u64).collect::<Vec<_>>()
    );
    assert_eq!(store.verify_audit_chain(CHAIN).await.unwrap(), None);
    store.close().await;
}

/// The KMS keyring over the service database: the same lifecycle as over the JSON file,
/// with lost updates refused.
#[tokio::test]
async fn the_kms_keyring_runs_on_the_sqlite_store() {
    use carimbo_kms::{
        Caller, EncryptionContext, FileProvider, KeyName, Keyring, KeyringSettings, KeyringStore,
        MemoryAuditSink, Purpose, SystemClock, envelope, load_or_create_file_kek,
    };
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("carimbo.db"))
        .await
        .unwrap();
    store
        .set_keyring_settings(&KeyringSettings {
            destroy_wait_seconds: 60,
        })
        .await
        .unwrap();
    assert_eq!(
        KeyringStore::settings(&store)
            .await
            .unwrap()
            .destroy_wait_seconds,
        60
    );
    let kek = load_or_create_file_kek(&dir.path().join("file-kek")).unwrap();
    let provider = FileProvider::new(dir.path().join("keys"), kek).unwrap();
    let keyring = Keyring::new(
        std::sync::Arc::new(store.clone()),
        std::sync::Arc::new(MemoryAuditSink::default()),
        std::sync::Arc::new(SystemClock),
    )
    .with_provider(std::sync::Arc::new(provider));
    let caller = Caller::new("test");
    let name = KeyName::new("envelope-data/test/db").unwrap();
    keyring
        .create_key(&caller, &name, Purpose::Envelope, None, "file")
        .await
        .unwrap();
    assert!(
        keyring
            .create_key(&caller, &name, Purpose::Envelope, None, "file")
            .await
            .is_err()
    );
    let context = EncryptionContext::from_pairs(["t=1"]).unwrap();
    let sealed = keyring
        .seal(&caller, &name, &context, envelope::MIN_SEGMENT_SIZE)
        .await
        .unwrap();
    assert_eq!(keyring.rotate(&caller, &name, None).await.unwrap(), 2);
    let opened = keyring
        .open(&caller, &sealed.headers, &context)
        .await
        .unwrap();
    assert_eq!(opened.key_version, 1);
    let record = KeyringStore::key(&store, &name).await.unwrap().unwrap();
    assert_eq!(record.primary_version, 2);
    // A stale revision is refused.
    let mut stale = record.clone();
    stale.revision = record.revision;
    assert!(KeyringStore::update(&store, &stale).await.is_err());
    assert_eq!(KeyringStore::keys(&store).await.unwrap().len(), 1);
}
