//! Revocation, CRL and OCSP storage: the conformance tests of [`RevocationStore`].

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::{Fixture, NOW, intent, lineage, with_lineage};
use crate::{
    CertificateFilter, CertificateRecord, CertificateStatus, CertificateStore, CrlHead,
    DueOcspResponse, IssuanceIntent, LineageStore, OcspCertStatus, OcspResponderRecord,
    RevocationLogEntry, RevocationStore, RevokedEntry, Store, StoreError, StoredCrl,
    StoredOcspResponse,
};

const DER: &[u8] = b"certificate DER";

/// Records and completes `intent`, issued at its `created_at`.
pub(crate) async fn issue<S: Store>(store: &S, intent: &IssuanceIntent) {
    store.record_intent(intent).await.unwrap();
    store
        .complete_issuance(&intent.serial, DER, intent.created_at)
        .await
        .unwrap();
}

/// A fresh store with lineage-1 and certificate `0a` (issuer int-server) issued at NOW.
pub(crate) async fn with_issued<F: Fixture>() -> Option<F> {
    let fixture = with_lineage::<F>().await?;
    issue(fixture.store(), &intent("0a")).await;
    Some(fixture)
}

pub(crate) fn answer(
    serial: &str,
    status: OcspCertStatus,
    this_update: OffsetDateTime,
) -> StoredOcspResponse {
    StoredOcspResponse {
        serial: serial.into(),
        issuer: "int-server".into(),
        cert_id_hash: "sha1".into(),
        cert_status: status,
        revocation_reason: None,
        this_update,
        next_update: this_update + Duration::hours(4),
        der: vec![0x30, 0x03, 0x0a, 0x01, 0x00],
        responder: "5e".into(),
        stored_at: this_update,
    }
}

pub(crate) fn crl(issuer: &str, number: u64, this_update: OffsetDateTime) -> StoredCrl {
    StoredCrl {
        issuer: issuer.into(),
        number,
        this_update,
        next_update: this_update + Duration::hours(24),
        der: vec![0x30, 0x01, u8::try_from(number % 256).unwrap()],
        entries: number,
        published_at: this_update,
    }
}

pub(crate) fn responder(serial: &str, not_after: OffsetDateTime) -> OcspResponderRecord {
    OcspResponderRecord {
        serial: serial.into(),
        issuer: "int-server".into(),
        key_reference: format!("kms:ocsp-{serial}/1"),
        algorithm: "ecdsa-p256-sha256".into(),
        certificate: vec![0x30, 0x82, 0x01],
        not_before: NOW,
        not_after,
        created_at: NOW,
        key_destroyed_at: None,
    }
}

async fn revocation_log_rows<F: Fixture>(f: &F) -> i64 {
    f.scalar_i64("SELECT COUNT(*) FROM revocation_log").await
}

pub(crate) async fn revoking_changes_status_logs_bumps_the_head_and_drops_the_ocsp_answer<
    F: Fixture,
>() {
    let Some(f) = with_issued::<F>().await else {
        return;
    };
    let store = f.store();
    assert_eq!(store.ocsp_this_update_floor("0a").await.unwrap(), None);
    assert!(
        store
            .store_ocsp_response(&answer("0a", OcspCertStatus::Good, NOW), None)
            .await
            .unwrap()
    );
    let good_this_update = answer("0a", OcspCertStatus::Good, NOW).this_update;
    assert_eq!(
        store.ocsp_this_update_floor("0a").await.unwrap(),
        Some(good_this_update)
    );
    assert_eq!(store.last_revocation_id().await.unwrap(), 0);
    assert_eq!(store.crl_head("int-server").await.unwrap(), None);

    let revoked_at = NOW + Duration::hours(1);
    // Either case of hex digits names the serial.
    let outcome = store.revoke("0A", 4, revoked_at).await.unwrap();
    assert!(outcome.changed);
    assert_eq!(outcome.log_id, Some(1));
    assert_eq!(outcome.record.status, CertificateStatus::Revoked);
    assert_eq!(outcome.record.revoked_at, Some(revoked_at));
    assert_eq!(outcome.record.revocation_reason, Some(4));
    assert_eq!(store.certificate("0a").await.unwrap(), Some(outcome.record));
    assert_eq!(store.ocsp_response("0a", "sha1").await.unwrap(), None);
    // The answer is gone, its thisUpdate stays as the floor of the next one.
    assert_eq!(
        store.ocsp_this_update_floor("0a").await.unwrap(),
        Some(good_this_update)
    );
    assert!(!store.is_key_blocked(&"ab".repeat(32)).await.unwrap());

    let head = store.crl_head("int-server").await.unwrap().unwrap();
    assert_eq!(
        head,
        CrlHead {
            issuer: "int-server".into(),
            last_number: 0,
            last_this_update: OffsetDateTime::UNIX_EPOCH,
            last_next_update: OffsetDateTime::UNIX_EPOCH,
            revision: 1,
            published_revision: 0,
        }
    );
    assert!(head.is_dirty());
    assert_eq!(
        store.revocations_after(0, 10).await.unwrap(),
        vec![RevocationLogEntry {
            id: 1,
            serial: "0a".into(),
            issuer: "int-server".into(),
            reason: 4,
            revoked_at,
        }]
    );
    assert_eq!(store.count_by_status().await.unwrap()["revoked"], 1);
}

pub(crate) async fn revoking_again_changes_nothing_except_an_upgrade_to_key_compromise<
    F: Fixture,
>() {
    let Some(f) = with_issued::<F>().await else {
        return;
    };
    let store = f.store();
    let revoked_at = NOW + Duration::hours(1);
    let first = store.revoke("0a", 4, revoked_at).await.unwrap();

    // Same or another reason (not keyCompromise): the first revocation stands.
    for reason in [4, 0, 3, 6] {
        let again = store
            .revoke("0a", reason, revoked_at + Duration::hours(2))
            .await
            .unwrap();
        assert!(!again.changed, "reason {reason}");
        assert_eq!(again.log_id, None);
        assert_eq!(again.record, first.record);
    }
    assert_eq!(store.last_revocation_id().await.unwrap(), 1);

    // A revoked answer was stored meanwhile; the upgrade drops it too.
    assert!(
        store
            .store_ocsp_response(
                &StoredOcspResponse {
                    revocation_reason: Some(4),
                    ..answer("0a", OcspCertStatus::Revoked, revoked_at)
                },
                None
            )
            .await
            .unwrap()
    );
    let upgraded = store
        .revoke("0a", 1, revoked_at + Duration::hours(3))
        .await
        .unwrap();
    assert!(upgraded.changed);
    assert_eq!(upgraded.log_id, Some(2));
    assert_eq!(upgraded.record.revocation_reason, Some(1));
    assert_eq!(upgraded.record.revoked_at, Some(revoked_at), "time kept");
    assert!(store.is_key_blocked(&"AB".repeat(32)).await.unwrap());
    assert_eq!(store.ocsp_response("0a", "sha1").await.unwrap(), None);
    let head = store.crl_head("int-server").await.unwrap().unwrap();
    assert_eq!(head.revision, 2);
    let log = store.revocations_after(1, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].id, log[0].reason, log[0].revoked_at),
        (2, 1, revoked_at)
    );

    // keyCompromise again, or anything else: nothing more.
    for reason in [1, 4] {
        let again = store.revoke("0a", reason, NOW).await.unwrap();
        assert!(!again.changed);
        assert_eq!(again.record, upgraded.record);
    }
    assert_eq!(store.last_revocation_id().await.unwrap(), 2);
    assert_eq!(store.revocations_after(2, 10).await.unwrap(), vec![]);
    assert_eq!(store.revocations_after(u64::MAX, 10).await.unwrap(), vec![]);
}

pub(crate) async fn key_compromise_blocks_the_subject_key_once<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
    let key = "cd".repeat(32);
    for serial in ["01", "02"] {
        issue(
            store,
            &IssuanceIntent {
                crl_shard: None,
                subject_key_sha256: key.clone(),
                ..intent(serial)
            },
        )
        .await;
    }
    assert!(!store.is_key_blocked(&key).await.unwrap());
    assert!(store.revoke("01", 1, NOW).await.unwrap().changed);
    assert!(store.is_key_blocked(&key).await.unwrap());
    // A second certificate with the same key: blocked already, no error.
    assert!(store.revoke("02", 1, NOW).await.unwrap().changed);
    let serial = f
        .scalar_text(&format!(
            "SELECT serial FROM blocked_keys WHERE subject_key_sha256 = '{key}'"
        ))
        .await;
    let blocked = f.scalar_i64("SELECT COUNT(*) FROM blocked_keys").await;
    assert_eq!((serial.as_str(), blocked), ("01", 1));
    assert!(matches!(
        store.is_key_blocked("not-a-hash").await,
        Err(StoreError::Invalid(_))
    ));
}

pub(crate) async fn revoke_refuses_unknown_unissued_and_malformed<F: Fixture>() {
    let Some(f) = with_issued::<F>().await else {
        return;
    };
    let store = f.store();
    store.record_intent(&intent("0b")).await.unwrap();
    store.record_intent(&intent("0c")).await.unwrap();
    store.fail_issuance("0c", "signing failed").await.unwrap();

    assert!(matches!(
        store.revoke("dead", 0, NOW).await,
        Err(StoreError::NotFound)
    ));
    for never_issued in ["0b", "0c"] {
        assert!(
            matches!(
                store.revoke(never_issued, 0, NOW).await,
                Err(StoreError::Conflict(_))
            ),
            "{never_issued}"
        );
    }
    for reason in [7, 8, 11, 255] {
        assert!(
            matches!(
                store.revoke("0a", reason, NOW).await,
                Err(StoreError::Invalid(_))
            ),
            "reason {reason}"
        );
    }
    for serial in ["", "0x0a", "zz", &"a".repeat(65)] {
        assert!(
            matches!(
                store.revoke(serial, 0, NOW).await,
                Err(StoreError::Invalid(_))
            ),
            "{serial:?}"
        );
    }
    // Nothing was written by any refusal.
    assert_eq!(store.last_revocation_id().await.unwrap(), 0);
    assert_eq!(store.crl_heads().await.unwrap(), vec![]);
    assert_eq!(
        store.certificate("0a").await.unwrap().unwrap().status,
        CertificateStatus::Issued
    );
    assert_eq!(
        store.certificate("0b").await.unwrap().unwrap().status,
        CertificateStatus::Pending
    );
}

pub(crate) async fn a_revocation_that_fails_midway_leaves_everything_as_it_was<F: Fixture>() {
    let Some(f) = with_issued::<F>().await else {
        return;
    };
    let store = f.store();
    let good = answer("0a", OcspCertStatus::Good, NOW);
    assert!(store.store_ocsp_response(&good, None).await.unwrap());
    // Make the last write of a keyCompromise revocation fail.
    f.refuse_inserts("blocked_keys").await;
    assert!(matches!(
        store.revoke("0a", 1, NOW).await,
        Err(StoreError::Database(_))
    ));
    // The status change, the OCSP deletion, the log row and the head rolled back.
    assert_eq!(
        store.certificate("0a").await.unwrap().unwrap().status,
        CertificateStatus::Issued
    );
    assert_eq!(store.ocsp_response("0a", "sha1").await.unwrap(), Some(good));
    assert_eq!(revocation_log_rows(&f).await, 0);
    assert_eq!(store.crl_head("int-server").await.unwrap(), None);
    // The log cannot be rewritten either.
    f.allow_inserts("blocked_keys").await;
    store.revoke("0a", 1, NOW).await.unwrap();
    assert!(
        f.execute("UPDATE revocation_log SET reason = 0")
            .await
            .is_err()
    );
    assert!(f.execute("DELETE FROM revocation_log").await.is_err());
}

pub(crate) async fn an_ocsp_answer_is_stored_only_while_it_states_the_current_status<F: Fixture>() {
    let Some(f) = with_issued::<F>().await else {
        return;
    };
    let store = f.store();
    let t = NOW + Duration::minutes(10);
    // A revoked answer for an issued certificate: refused.
    assert!(
        !store
            .store_ocsp_response(&answer("0a", OcspCertStatus::Revoked, t), None)
            .await
            .unwrap()
    );
    assert_eq!(store.ocsp_response("0a", "sha1").await.unwrap(), None);

    let current = answer("0a", OcspCertStatus::Good, t);
    assert!(store.store_ocsp_response(&current, None).await.unwrap());
    assert_eq!(
        store.ocsp_response("0A", "sha1").await.unwrap(),
        Some(current.clone())
    );
    // An older answer does not replace a newer one; an equal or newer one does.
    let older = StoredOcspResponse {
        der: vec![0x30, 0x00],
        ..answer("0a", OcspCertStatus::Good, t - Duration::seconds(1))
    };
    assert!(!store.store_ocsp_response(&older, None).await.unwrap());
    assert_eq!(
        store.ocsp_response("0a", "sha1").await.unwrap(),
        Some(current.clone())
    );
    let same_time = StoredOcspResponse {
        der: vec![0x30, 0x01, 0x01],
        ..current.clone()
    };
    assert!(store.store_ocsp_response(&same_time, None).await.unwrap());
    assert_eq!(
        store.ocsp_response("0a", "sha1").await.unwrap(),
        Some(same_time)
    );

    // A `good` signed just before the revocation arrives just after it: refused, and
    // nothing is stored (the revocation deleted the previous answer).
    let signed_before = answer("0a", OcspCertStatus::Good, t + Duration::minutes(1));
    store
        .revoke("0a", 0, t + Duration::minutes(1))
        .await
        .unwrap();
    assert!(
        !store
            .store_ocsp_response(&signed_before, None)
            .await
            .unwrap()
    );
    assert_eq!(store.ocsp_response("0a", "sha1").await.unwrap(), None);
    let revoked = answer("0a", OcspCertStatus::Revoked, t + Duration::minutes(2));
    assert!(store.store_ocsp_response(&revoked, None).await.unwrap());
    assert_eq!(
        store.ocsp_response("0a", "sha1").await.unwrap(),
        Some(revoked.clone())
    );
    // Answers are kept per CertID hash.
    assert_eq!(store.ocsp_response("0a", "sha256").await.unwrap(), None);
    let sha256 = StoredOcspResponse {
        cert_id_hash: "sha256".into(),
        ..revoked.clone()
    };
    assert!(store.store_ocsp_response(&sha256, None).await.unwrap());
    assert_eq!(
        store.ocsp_response("0a", "sha256").await.unwrap(),
        Some(sha256)
    );
    assert_eq!(
        store.ocsp_response("0a", "sha1").await.unwrap(),
        Some(revoked.clone())
    );
    // An upgrade to keyCompromise drops the answers; one still stating the old reason
    // (signed before the upgrade) is refused, one stating keyCompromise is kept.
    store
        .revoke("0a", 1, t + Duration::minutes(3))
        .await
        .unwrap();
    assert_eq!(store.ocsp_response("0a", "sha1").await.unwrap(), None);
    let stale = answer("0a", OcspCertStatus::Revoked, t + Duration::minutes(4));
    assert!(!store.store_ocsp_response(&stale, None).await.unwrap());
    let current = StoredOcspResponse {
        revocation_reason: Some(1),
        ..stale
    };
    assert!(store.store_ocsp_response(&current, None).await.unwrap());
    let bad_hash = StoredOcspResponse {
        cert_id_hash: "md5".into(),
        ..current
    };
    assert!(matches!(
        store.store_ocsp_response(&bad_hash, None).await,
        Err(StoreError::Invalid(_))
    ));

    // Refusals before and at the database.
    assert!(matches!(
        store
            .store_ocsp_response(&answer("dead", OcspCertStatus::Good, t), None)
            .await,
        Err(StoreError::NotFound)
    ));
    let other_issuer = StoredOcspResponse {
        issuer: "int-client".into(),
        ..answer("0a", OcspCertStatus::Revoked, t + Duration::hours(1))
    };
    assert!(matches!(
        store.store_ocsp_response(&other_issuer, None).await,
        Err(StoreError::Conflict(_))
    ));
    for bad in [
        StoredOcspResponse {
            der: vec![],
            ..answer("0a", OcspCertStatus::Revoked, t)
        },
        StoredOcspResponse {
            next_update: t,
            ..answer("0a", OcspCertStatus::Revoked, t)
        },
        StoredOcspResponse {
            responder: "Responder".into(),
            ..answer("0a", OcspCertStatus::Revoked, t)
        },
        answer("0A", OcspCertStatus::Revoked, t),
    ] {
        assert!(matches!(
            store.store_ocsp_response(&bad, None).await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert!(matches!(
        store.ocsp_response("no", "sha1").await,
        Err(StoreError::Invalid(_))
    ));
}

pub(crate) async fn ocsp_answers_due_at_half_their_validity<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
    // 01: answer valid NOW..NOW+4h, due at NOW+2h. 02: valid NOW+1h..NOW+5h, due at
    // NOW+3h. 03: no answer. 04: its answer is due, but the certificate expires at
    // NOW+2h30. 05: revoked, no answer.
    for serial in ["01", "02", "03", "05"] {
        issue(store, &intent(serial)).await;
    }
    issue(
        store,
        &IssuanceIntent {
            crl_shard: None,
            not_after: NOW + Duration::minutes(150),
            ..intent("04")
        },
    )
    .await;
    store.revoke("05", 0, NOW).await.unwrap();
    for (serial, this_update) in [("01", NOW), ("02", NOW + Duration::hours(1)), ("04", NOW)] {
        assert!(
            store
                .store_ocsp_response(&answer(serial, OcspCertStatus::Good, this_update), None)
                .await
                .unwrap()
        );
    }
    let pair = |serial: &str| DueOcspResponse {
        serial: serial.to_owned(),
        issuer: "int-server".to_owned(),
        cert_id_hash: (serial != "03").then(|| "sha1".to_owned()),
    };

    let before = NOW + Duration::hours(2) - Duration::seconds(1);
    assert_eq!(
        store.ocsp_responses_due(before, false, 10).await.unwrap(),
        vec![]
    );
    assert_eq!(
        store
            .ocsp_responses_due(NOW + Duration::hours(2), false, 10)
            .await
            .unwrap(),
        vec![pair("01"), pair("04")]
    );
    // At NOW+3h, 04 has expired; 01 (due longest) comes first.
    let later = NOW + Duration::hours(3);
    assert_eq!(
        store.ocsp_responses_due(later, false, 10).await.unwrap(),
        vec![pair("01"), pair("02")]
    );
    assert_eq!(
        store.ocsp_responses_due(later, true, 10).await.unwrap(),
        vec![pair("01"), pair("02"), pair("03")]
    );
    // The limit counts both kinds.
    assert_eq!(
        store.ocsp_responses_due(later, true, 2).await.unwrap(),
        vec![pair("01"), pair("02")]
    );
    assert_eq!(
        store.ocsp_responses_due(NOW, true, 10).await.unwrap(),
        vec![pair("03")]
    );
    assert_eq!(
        store.ocsp_responses_due(later, true, 0).await.unwrap(),
        vec![]
    );
}

pub(crate) async fn crl_numbers_follow_commit_order_and_survive_reopening<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store().clone();
    issue(&store, &intent("0a")).await;
    issue(&store, &intent("0b")).await;

    // The first CRL of an issuer without revocations: revision 0, no head before.
    assert_eq!(store.latest_crl("int-server").await.unwrap(), None);
    store
        .publish_crl(&crl("int-server", 1, NOW), 0, None)
        .await
        .unwrap();
    store.revoke("0a", 0, NOW).await.unwrap();
    let (revision, entries) = store.revoked_for_crl("int-server", NOW).await.unwrap();
    assert_eq!((revision, entries.len()), (1, 1));
    let second = crl("int-server", 2, NOW + Duration::hours(1));
    store.publish_crl(&second, revision, None).await.unwrap();
    let head = store.crl_head("int-server").await.unwrap().unwrap();
    assert!(!head.is_dirty());
    store.revoke("0b", 0, NOW).await.unwrap();
    assert!(
        store
            .crl_head("int-server")
            .await
            .unwrap()
            .unwrap()
            .is_dirty()
    );

    // A stale publisher that also built number 2 lost; so does one that skips ahead.
    assert!(matches!(
        store.publish_crl(&crl("int-server", 2, NOW), 2, None).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.publish_crl(&crl("int-server", 4, NOW), 2, None).await,
        Err(StoreError::Conflict(_))
    ));
    // Number 3 built from entries older than those CRL 2 had: refused.
    assert!(matches!(
        store.publish_crl(&crl("int-server", 3, NOW), 0, None).await,
        Err(StoreError::Conflict(_))
    ));
    // A revision the issuer never reached, and malformed CRLs.
    assert!(matches!(
        store
            .publish_crl(&crl("int-server", 3, NOW), 99, None)
            .await,
        Err(StoreError::Invalid(_))
    ));
    for bad in [
        crl("int-server", 0, NOW),
        crl("", 3, NOW),
        StoredCrl {
            der: vec![],
            ..crl("int-server", 3, NOW)
        },
        StoredCrl {
            next_update: NOW,
            ..crl("int-server", 3, NOW)
        },
        crl("int-server", u64::MAX, NOW),
    ] {
        assert!(matches!(
            store.publish_crl(&bad, 2, None).await,
            Err(StoreError::Invalid(_))
        ));
    }
    let third = crl("int-server", 3, NOW + Duration::hours(2));
    store.publish_crl(&third, 2, None).await.unwrap();
    // Another issuer counts on its own.
    store
        .publish_crl(&crl("int-client", 1, NOW), 0, None)
        .await
        .unwrap();

    // Published CRLs cannot be changed or removed.
    assert!(
        f.execute("UPDATE crls SET entries = entries + 1")
            .await
            .is_err()
    );
    assert!(f.execute("DELETE FROM crls").await.is_err());

    let store = f.reopen(store).await;
    assert_eq!(
        store.latest_crl("int-server").await.unwrap(),
        Some(third.clone())
    );
    let head = store.crl_head("int-server").await.unwrap().unwrap();
    assert_eq!(
        head,
        CrlHead {
            issuer: "int-server".into(),
            last_number: 3,
            last_this_update: third.this_update,
            last_next_update: third.next_update,
            revision: 2,
            published_revision: 2,
        }
    );
    let issuers: Vec<String> = store
        .crl_heads()
        .await
        .unwrap()
        .into_iter()
        .map(|head| head.issuer)
        .collect();
    assert_eq!(issuers, ["int-client", "int-server"]);
    assert!(matches!(
        store.publish_crl(&crl("int-server", 3, NOW), 2, None).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .publish_crl(&crl("int-server", 4, NOW + Duration::hours(3)), 2, None)
        .await
        .unwrap();
    assert_eq!(
        store
            .latest_crl("int-server")
            .await
            .unwrap()
            .unwrap()
            .number,
        4
    );
}

pub(crate) async fn concurrent_publishers_get_each_number_once<F: Fixture>() {
    let Some(f) = F::fresh().await else {
        return;
    };
    let store = f.store();
    let mut tasks = Vec::new();
    for task in 0..8u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut published = Vec::new();
            for _ in 0..5 {
                // Read the head, build, publish; rebuild on Conflict.
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
    let mut numbers = Vec::new();
    for task in tasks {
        numbers.extend(task.await.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=40).collect::<Vec<u64>>());
}

pub(crate) async fn revoked_entries_stay_until_a_crl_follows_their_expiry<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
    // Serials 01..05 expire at NOW+1h..NOW+5h; all revoked, plus an issued 06 and a
    // revoked 07 of another issuer.
    for i in 1..=5 {
        issue(
            store,
            &IssuanceIntent {
                crl_shard: None,
                not_after: NOW + Duration::hours(i),
                ..intent(&format!("{i:02}"))
            },
        )
        .await;
    }
    issue(store, &intent("06")).await;
    issue(
        store,
        &IssuanceIntent {
            crl_shard: None,
            issuer: "int-client".into(),
            ..intent("07")
        },
    )
    .await;
    // Revoked in reverse order, with their own reasons: entries still come by serial.
    for i in (1..=5).rev() {
        store
            .revoke(
                &format!("{i:02}"),
                u8::try_from(i).unwrap(),
                NOW + Duration::minutes(i),
            )
            .await
            .unwrap();
    }
    store.revoke("07", 0, NOW).await.unwrap();

    let (revision, all) = store
        .revoked_for_crl("int-server", OffsetDateTime::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!(revision, 5);
    assert_eq!(
        all,
        (1..=5)
            .map(|i| RevokedEntry {
                serial: format!("{i:02}"),
                revoked_at: NOW + Duration::minutes(i),
                reason: u8::try_from(i).unwrap(),
            })
            .collect::<Vec<_>>()
    );
    // The previous CRL was issued at NOW+3h: 01 and 02 expired before it and were on
    // it, so they go; 03 expired exactly then and stays one more time.
    let (_, kept) = store
        .revoked_for_crl("int-server", NOW + Duration::hours(3))
        .await
        .unwrap();
    let serials: Vec<&str> = kept.iter().map(|e| e.serial.as_str()).collect();
    assert_eq!(serials, ["03", "04", "05"]);
    let (revision, none) = store
        .revoked_for_crl("int-server", NOW + Duration::hours(6))
        .await
        .unwrap();
    assert_eq!((revision, none), (5, vec![]));
    // The other issuer's revision is its own log id.
    let (revision, client) = store
        .revoked_for_crl("int-client", OffsetDateTime::UNIX_EPOCH)
        .await
        .unwrap();
    assert_eq!((revision, client.len()), (6, 1));
    assert_eq!(
        store.revoked_for_crl("nobody", NOW).await.unwrap(),
        (0, vec![])
    );
}

pub(crate) async fn find_certificates_matches_every_given_field<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
    store.create_lineage(&lineage("lineage-2")).await.unwrap();
    let base = |serial: &str, minutes: i64| IssuanceIntent {
        crl_shard: None,
        created_at: NOW + Duration::minutes(minutes),
        ..intent(serial)
    };
    // Issued at NOW + 0, 10, 20, ... minutes (created_at is the issue time here).
    let certificates = [
        base("01", 0),
        IssuanceIntent {
            crl_shard: None,
            sans: vec!["api.example.internal".into()],
            ..base("02", 10)
        },
        IssuanceIntent {
            crl_shard: None,
            issuer: "int-client".into(),
            provisioner: "oidc".into(),
            ..base("03", 20)
        },
        IssuanceIntent {
            crl_shard: None,
            lineage: "lineage-2".into(),
            subject_key_sha256: "ef".repeat(32),
            ..base("04", 30)
        },
        IssuanceIntent {
            crl_shard: None,
            not_after: NOW + Duration::hours(1),
            ..base("05", 40)
        },
        base("06", 50),
    ];
    for certificate in &certificates {
        issue(store, certificate).await;
    }
    store.revoke("06", 0, NOW).await.unwrap();
    let serials = |records: Vec<CertificateRecord>| -> Vec<String> {
        records.into_iter().map(|r| r.serial).collect()
    };
    let find = |filter: CertificateFilter| {
        let store = store.clone();
        async move {
            serials(
                store
                    .find_certificates(&CertificateFilter {
                        limit: 100,
                        ..filter
                    })
                    .await
                    .unwrap(),
            )
        }
    };

    // Revoked 06 is never found; oldest first.
    assert_eq!(
        find(CertificateFilter {
            issuer: Some("int-server".into()),
            ..Default::default()
        })
        .await,
        ["01", "02", "04", "05"]
    );
    assert_eq!(
        find(CertificateFilter {
            provisioner: Some("oidc".into()),
            ..Default::default()
        })
        .await,
        ["03"]
    );
    // A name matches exactly one element of the list, never a substring.
    assert_eq!(
        find(CertificateFilter {
            san: Some("10.0.0.7".into()),
            ..Default::default()
        })
        .await,
        ["01", "03", "04", "05"]
    );
    assert_eq!(
        find(CertificateFilter {
            san: Some("api.example".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        find(CertificateFilter {
            subject_key_sha256: Some("EF".repeat(32)),
            ..Default::default()
        })
        .await,
        ["04"]
    );
    assert_eq!(
        find(CertificateFilter {
            lineage: Some("lineage-2".into()),
            ..Default::default()
        })
        .await,
        ["04"]
    );
    // [from, until) on the issue time.
    assert_eq!(
        find(CertificateFilter {
            issued_from: Some(NOW + Duration::minutes(10)),
            issued_until: Some(NOW + Duration::minutes(40)),
            ..Default::default()
        })
        .await,
        ["02", "03", "04"]
    );
    assert_eq!(
        find(CertificateFilter {
            issuer: Some("int-server".into()),
            unexpired_at: Some(NOW + Duration::hours(1)),
            ..Default::default()
        })
        .await,
        ["01", "02", "04"]
    );
    // Every field must match.
    assert_eq!(
        find(CertificateFilter {
            issuer: Some("int-server".into()),
            provisioner: Some("oidc".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
    let first_two = store
        .find_certificates(&CertificateFilter {
            issuer: Some("int-server".into()),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let after_second = (
        first_two[1].issued_at.expect("issued"),
        first_two[1].serial.clone(),
    );
    assert_eq!(serials(first_two), ["01", "02"]);
    // Paging: the records after the last one of the previous page.
    assert_eq!(
        find(CertificateFilter {
            issuer: Some("int-server".into()),
            after: Some(after_second),
            ..Default::default()
        })
        .await,
        ["04", "05"]
    );
    // Revoked certificates only on request; by serial (either case); by expiry.
    assert_eq!(
        find(CertificateFilter {
            issuer: Some("int-server".into()),
            include_revoked: true,
            ..Default::default()
        })
        .await,
        ["01", "02", "04", "05", "06"]
    );
    for (include_revoked, expected) in [(false, vec![]), (true, vec!["06".to_owned()])] {
        assert_eq!(
            find(CertificateFilter {
                serial: Some("06".into()),
                include_revoked,
                ..Default::default()
            })
            .await,
            expected
        );
    }
    assert_eq!(
        find(CertificateFilter {
            expires_before: Some(NOW + Duration::hours(2)),
            ..Default::default()
        })
        .await,
        ["05"]
    );

    // Filters that select everything, bad limits and bad key hashes are refused.
    for (what, bad) in [
        (
            "empty",
            CertificateFilter {
                limit: 10,
                ..Default::default()
            },
        ),
        (
            "only unexpired_at",
            CertificateFilter {
                unexpired_at: Some(NOW),
                limit: 10,
                ..Default::default()
            },
        ),
        (
            "limit 0",
            CertificateFilter {
                issuer: Some("int-server".into()),
                ..Default::default()
            },
        ),
        (
            "limit too large",
            CertificateFilter {
                issuer: Some("int-server".into()),
                limit: 100_001,
                ..Default::default()
            },
        ),
        (
            "bad serial",
            CertificateFilter {
                serial: Some("not-hex".into()),
                limit: 10,
                ..Default::default()
            },
        ),
        (
            "short key hash",
            CertificateFilter {
                subject_key_sha256: Some("abcd".into()),
                limit: 10,
                ..Default::default()
            },
        ),
    ] {
        assert!(
            matches!(
                store.find_certificates(&bad).await,
                Err(StoreError::Invalid(_))
            ),
            "{what}"
        );
    }
}

pub(crate) async fn ocsp_responders_are_listed_newest_first_and_keep_their_destruction_time<
    F: Fixture,
>() {
    let Some(f) = F::fresh().await else {
        return;
    };
    let store = f.store();
    let older = responder("0100", NOW + Duration::days(7));
    let newer = responder("0200", NOW + Duration::days(14));
    store.insert_ocsp_responder(&older).await.unwrap();
    store.insert_ocsp_responder(&newer).await.unwrap();
    store
        .insert_ocsp_responder(&OcspResponderRecord {
            issuer: "int-client".into(),
            ..responder("0300", NOW + Duration::days(30))
        })
        .await
        .unwrap();
    assert!(matches!(
        store.insert_ocsp_responder(&older).await,
        Err(StoreError::Conflict(_))
    ));
    for bad in [
        responder("01AB", NOW + Duration::days(1)),
        responder("0400", NOW),
        OcspResponderRecord {
            key_reference: String::new(),
            ..responder("0400", NOW + Duration::days(1))
        },
        OcspResponderRecord {
            certificate: vec![],
            ..responder("0400", NOW + Duration::days(1))
        },
    ] {
        assert!(matches!(
            store.insert_ocsp_responder(&bad).await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert_eq!(
        store.ocsp_responders("int-server").await.unwrap(),
        vec![newer.clone(), older.clone()]
    );

    let destroyed_at = NOW + Duration::days(8);
    store
        .mark_responder_key_destroyed("0100", destroyed_at)
        .await
        .unwrap();
    // Again, later: the first time stays.
    store
        .mark_responder_key_destroyed("0100", destroyed_at + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(
        store.ocsp_responders("int-server").await.unwrap()[1],
        OcspResponderRecord {
            key_destroyed_at: Some(destroyed_at),
            ..older
        }
    );
    assert!(matches!(
        store.mark_responder_key_destroyed("0999", NOW).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.mark_responder_key_destroyed("0x1", NOW).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.ocsp_responders("nobody").await.unwrap(), vec![]);
    assert!(f.execute("DELETE FROM ocsp_responders").await.is_err());
}

pub(crate) async fn revocation_works_through_a_store_object<F: Fixture>() {
    let Some(f) = F::fresh().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(f.store().clone());
    store.create_lineage(&lineage("lineage-1")).await.unwrap();
    store.record_intent(&intent("01")).await.unwrap();
    store.complete_issuance("01", DER, NOW).await.unwrap();
    let outcome = store.revoke("01", 5, NOW).await.unwrap();
    assert_eq!(
        outcome.log_id,
        Some(store.last_revocation_id().await.unwrap())
    );
    assert_eq!(
        store
            .revoked_for_crl("int-server", NOW)
            .await
            .unwrap()
            .1
            .len(),
        1
    );
}

/// A sharded issuer: each revocation bumps its shard's head and lists only there; the
/// unsharded scope of the same issuer is a CRL of its own.
pub(crate) async fn revocations_land_in_the_crl_shard_of_their_certificate<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
    for (serial, shard) in [
        ("01", Some(1)),
        ("02", Some(2)),
        ("03", Some(1)),
        ("04", None),
    ] {
        let mut certificate = intent(serial);
        certificate.crl_shard = shard;
        issue(store, &certificate).await;
    }
    assert_eq!(
        store.pending_intents().await.unwrap(),
        Vec::<IssuanceIntent>::new()
    );
    for serial in ["01", "02", "03", "04"] {
        store.revoke(serial, 1, NOW).await.unwrap();
    }
    let listed = |entries: Vec<RevokedEntry>| {
        entries
            .into_iter()
            .map(|entry| entry.serial)
            .collect::<Vec<_>>()
    };
    let (shard_1_revision, shard_1) = store.revoked_for_crl("int-server/1", NOW).await.unwrap();
    assert_eq!(listed(shard_1), ["01", "03"]);
    let (_, shard_2) = store.revoked_for_crl("int-server/2", NOW).await.unwrap();
    assert_eq!(listed(shard_2), ["02"]);
    let (_, shard_0) = store.revoked_for_crl("int-server/0", NOW).await.unwrap();
    assert!(shard_0.is_empty());
    let (_, whole) = store.revoked_for_crl("int-server", NOW).await.unwrap();
    assert_eq!(listed(whole), ["04"]);
    // Each scope has its head; shard 1's revision is that of its last revocation.
    let heads = store.crl_heads().await.unwrap();
    let scopes: Vec<&str> = heads.iter().map(|head| head.issuer.as_str()).collect();
    assert_eq!(scopes, ["int-server", "int-server/1", "int-server/2"]);
    let shard_1_head = store.crl_head("int-server/1").await.unwrap().unwrap();
    assert_eq!(shard_1_head.revision, shard_1_revision);
    assert!(shard_1_head.is_dirty());
    // A pending intent keeps its shard.
    let mut pending = intent("05");
    pending.crl_shard = Some(3);
    store.record_intent(&pending).await.unwrap();
    assert_eq!(store.pending_intents().await.unwrap(), vec![pending]);
}

pub(crate) async fn operations_queries_count_expiring_and_find_the_stalest_answer<F: Fixture>() {
    use crate::{OcspStaleness, OperationsStore};
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
    store.ping().await.unwrap();
    let pool = store.pool_status();
    assert!(
        pool.max >= 1 && pool.open <= pool.max && pool.idle <= pool.open,
        "{pool:?}"
    );
    assert_eq!(store.stalest_ocsp_response(NOW).await.unwrap(), None);
    // 01 and 02 expire at NOW+24h, 03 at NOW+3d, 04 at NOW+10d; 02 is revoked; 05 is
    // only an intent.
    for (serial, lifetime) in [
        ("01", Duration::hours(24)),
        ("02", Duration::hours(24)),
        ("03", Duration::days(3)),
        ("04", Duration::days(10)),
    ] {
        issue(
            store,
            &IssuanceIntent {
                not_after: NOW + lifetime,
                ..intent(serial)
            },
        )
        .await;
    }
    store.record_intent(&intent("05")).await.unwrap();
    store.revoke("02", 0, NOW).await.unwrap();
    let day = Duration::hours(24);
    assert_eq!(store.count_expiring(NOW, NOW + day).await.unwrap(), 1);
    assert_eq!(
        store
            .count_expiring(NOW, NOW + Duration::days(7))
            .await
            .unwrap(),
        2
    );
    // The window is (from, until]: a certificate expiring at `from` is not counted.
    assert_eq!(
        store
            .count_expiring(NOW + day, NOW + Duration::days(7))
            .await
            .unwrap(),
        1
    );
    // Answers: 01 signed at NOW, 03 at NOW+1h, 04 at NOW-1h. The stalest is the one
    // closest to (or furthest past) its refresh point, among certificates still valid.
    for (serial, this_update) in [
        ("01", NOW),
        ("03", NOW + Duration::hours(1)),
        ("04", NOW - Duration::hours(1)),
    ] {
        assert!(
            store
                .store_ocsp_response(&answer(serial, OcspCertStatus::Good, this_update), None)
                .await
                .unwrap()
        );
    }
    let stalest = |this_update: OffsetDateTime| OcspStaleness {
        issuer: "int-server".into(),
        this_update,
        next_update: this_update + Duration::hours(4),
    };
    assert_eq!(
        store.stalest_ocsp_response(NOW).await.unwrap(),
        Some(stalest(NOW - Duration::hours(1)))
    );
    // Two days on, 01 has expired: the stalest answer of a live certificate is 04's.
    assert_eq!(
        store
            .stalest_ocsp_response(NOW + Duration::days(2))
            .await
            .unwrap(),
        Some(stalest(NOW - Duration::hours(1)))
    );
    // Eleven days on, every certificate has expired.
    assert_eq!(
        store
            .stalest_ocsp_response(NOW + Duration::days(11))
            .await
            .unwrap(),
        None
    );
}
