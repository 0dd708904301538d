//! Property tests over random sequences of issuance, revocation and CRL publication on
//! a SQLite store: serials stay unique (a second intent for a serial is a collision
//! and writes nothing), and each issuer's CRL numbers strictly increase, one by one, in
//! publication order, while stale or skipping publishers are refused.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use time::Duration;

use super::SqliteStore;
use super::tests::open_temp;
use crate::conformance::{NOW, intent, lineage};
use crate::{
    CertificateStatus, CertificateStore, LineageStore, RevocationStore, StoreError, StoredCrl,
};

const ISSUERS: [&str; 2] = ["int-server", "int-workload"];

#[derive(Clone, Debug)]
enum Op {
    /// Record an intent for serial `pool[serial]` of issuer `issuer`; complete it when
    /// `complete`, fail it otherwise.
    Issue {
        serial: u8,
        issuer: usize,
        complete: bool,
    },
    /// Revoke serial `pool[serial]` with `reason`.
    Revoke { serial: u8, reason: u8 },
    /// Publish the next CRL of `issuer`.
    Publish { issuer: usize },
    /// Try to publish CRL number `last + offset` (never the next one) of `issuer`.
    StalePublish { issuer: usize, offset: i8 },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    // A small serial pool so that collisions happen often.
    prop_oneof![
        4 => (0u8..24, 0..ISSUERS.len(), any::<bool>())
            .prop_map(|(serial, issuer, complete)| Op::Issue { serial, issuer, complete }),
        3 => (0u8..24, prop_oneof![Just(0u8), Just(1), Just(4), Just(5)])
            .prop_map(|(serial, reason)| Op::Revoke { serial, reason }),
        2 => (0..ISSUERS.len()).prop_map(|issuer| Op::Publish { issuer }),
        1 => (0..ISSUERS.len(), prop_oneof![-3i8..=0, 2i8..=4])
            .prop_map(|(issuer, offset)| Op::StalePublish { issuer, offset }),
    ]
}

fn serial_of(index: u8) -> String {
    format!("7f{index:02x}")
}

fn crl(issuer: &str, number: u64, step: usize) -> StoredCrl {
    let this_update = NOW + Duration::minutes(step as i64);
    StoredCrl {
        issuer: issuer.into(),
        number,
        this_update,
        next_update: this_update + Duration::hours(24),
        der: vec![0x30, 0x01, (number % 256) as u8],
        entries: 0,
        published_at: this_update,
    }
}

/// A fresh store, on tmpfs where there is one: each case opens a database and
/// `synchronous=FULL` makes every write an fsync, which a disk makes slow.
async fn open_fast() -> (tempfile::TempDir, SqliteStore) {
    match tempfile::tempdir_in("/dev/shm") {
        Ok(dir) => {
            let store = SqliteStore::open(&dir.path().join("carimbo.db"))
                .await
                .unwrap();
            (dir, store)
        }
        Err(_) => open_temp().await,
    }
}

async fn run(ops: Vec<Op>) {
    let (_dir, store) = open_fast().await;
    store.create_lineage(&lineage("lineage-1")).await.unwrap();
    // Model: serial → (issuer, final status).
    let mut recorded: BTreeMap<String, (usize, CertificateStatus)> = BTreeMap::new();
    let mut published: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Issue {
                serial,
                issuer,
                complete,
            } => {
                let serial = serial_of(serial);
                let mut candidate = intent(&serial);
                candidate.issuer = ISSUERS[issuer].into();
                candidate.request_id = format!("req-{step}");
                let result = store.record_intent(&candidate).await;
                if let Some((first_issuer, _)) = recorded.get(&serial) {
                    assert!(
                        matches!(result, Err(StoreError::SerialCollision)),
                        "serial {serial} recorded twice: {result:?}"
                    );
                    // Nothing of the second intent was written.
                    let record = store.certificate(&serial).await.unwrap().unwrap();
                    assert_eq!(record.issuer, ISSUERS[*first_issuer]);
                    continue;
                }
                result.unwrap();
                let status = if complete {
                    store
                        .complete_issuance(&serial, b"certificate DER", NOW)
                        .await
                        .unwrap();
                    CertificateStatus::Issued
                } else {
                    store
                        .fail_issuance(&serial, "signing failed")
                        .await
                        .unwrap();
                    CertificateStatus::Failed
                };
                recorded.insert(serial, (issuer, status));
            }
            Op::Revoke { serial, reason } => {
                let serial = serial_of(serial);
                let result = store.revoke(&serial, reason, NOW).await;
                match recorded.get_mut(&serial) {
                    None => assert!(matches!(result, Err(StoreError::NotFound)), "{result:?}"),
                    Some((_, status)) if *status == CertificateStatus::Failed => {
                        assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}")
                    }
                    Some((_, status)) => {
                        result.unwrap();
                        *status = CertificateStatus::Revoked;
                    }
                }
            }
            Op::Publish { issuer } => {
                let issuer = ISSUERS[issuer];
                let last = store
                    .crl_head(issuer)
                    .await
                    .unwrap()
                    .map_or(0, |head| head.last_number);
                let (revision, _) = store
                    .revoked_for_crl(issuer, NOW - Duration::days(1))
                    .await
                    .unwrap();
                store
                    .publish_crl(&crl(issuer, last + 1, step), revision, None)
                    .await
                    .unwrap();
                published.entry(issuer).or_default().push(last + 1);
            }
            Op::StalePublish { issuer, offset } => {
                let issuer = ISSUERS[issuer];
                let last = store
                    .crl_head(issuer)
                    .await
                    .unwrap()
                    .map_or(0, |head| head.last_number);
                let Some(number) = last.checked_add_signed(i64::from(offset)) else {
                    continue;
                };
                if number == 0 {
                    continue;
                }
                let (revision, _) = store
                    .revoked_for_crl(issuer, NOW - Duration::days(1))
                    .await
                    .unwrap();
                let result = store
                    .publish_crl(&crl(issuer, number, step), revision, None)
                    .await;
                assert!(
                    matches!(result, Err(StoreError::Conflict(_))),
                    "{number} after {last}: {result:?}"
                );
            }
        }
    }
    // Serials: one row per recorded serial, with the status of the model.
    let mut total = 0;
    for (serial, (issuer, status)) in &recorded {
        let record = store.certificate(serial).await.unwrap().unwrap();
        assert_eq!(record.issuer, ISSUERS[*issuer]);
        assert_eq!(record.status, *status, "{serial}");
        total += 1;
    }
    let counted: u64 = store.count_by_status().await.unwrap().values().sum();
    assert_eq!(counted, total);
    let distinct: BTreeSet<&String> = recorded.keys().collect();
    assert_eq!(distinct.len() as u64, total);
    // CRL numbers: 1, 2, 3, ... in publication order; the latest is the last published.
    for issuer in ISSUERS {
        let numbers = published.get(issuer).cloned().unwrap_or_default();
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1),
            "{issuer}: {numbers:?}"
        );
        assert!(numbers.first().is_none_or(|first| *first == 1));
        let latest = store.latest_crl(issuer).await.unwrap().map(|c| c.number);
        assert_eq!(latest, numbers.last().copied(), "{issuer}");
    }
    store.close().await;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn serials_stay_unique_and_crl_numbers_strictly_increase(
        ops in proptest::collection::vec(op_strategy(), 1..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run(ops));
    }
}
