//! The conformance suite: every behaviour the store traits document, checked the same
//! way against each backend. Test bodies are generic over a [`Fixture`] (a fresh, empty
//! store of one backend plus the few backend-specific statements a test needs);
//! [`conformance_tests!`] instantiates them as `#[tokio::test]`s inside a backend's test
//! module. Tests about one backend only (files, pragmas, the server's locking) live in
//! that backend's own test module.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::audit::{GENESIS_HASH, event_hash};
use crate::validate::unix;
use crate::{
    AuditStore, BootstrapToken, CertificateRecord, CertificateStatus, CertificateStore,
    IssuanceIntent, Lineage, LineageStore, Store, StoreError, TokenStore,
};

mod acme;
mod audit_heads;
mod leases;
mod revocation;

pub(crate) use acme::*;
pub(crate) use audit_heads::*;
pub(crate) use leases::*;
pub(crate) use revocation::*;

pub(crate) const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);

/// One backend, as the conformance tests drive it.
pub(crate) trait Fixture: Sized + Send + Sync + 'static {
    /// The backend's store.
    type Store: Store + carimbo_kms::KeyringStore + Clone + 'static;

    /// A fresh, empty store; `None` when the backend is unavailable (the test has
    /// printed a skip notice, or panicked if backends are required).
    async fn fresh() -> Option<Self>;

    /// The store under test.
    fn store(&self) -> &Self::Store;

    /// Closes `store` and opens the same database again.
    async fn reopen(&self, store: Self::Store) -> Self::Store;

    /// Runs a statement with literal values (portable SQL), bypassing the store.
    async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error>;

    /// The single BIGINT/INTEGER value `sql` selects.
    async fn scalar_i64(&self, sql: &str) -> i64;

    /// The single text value `sql` selects.
    async fn scalar_text(&self, sql: &str) -> String;

    /// Drops trigger `name` of `table` (as someone owning the database could).
    async fn drop_trigger(&self, table: &str, name: &str);

    /// Makes every insert into `table` fail (trigger `test_refuse_insert`).
    async fn refuse_inserts(&self, table: &str);

    /// Undoes [`refuse_inserts`](Self::refuse_inserts).
    async fn allow_inserts(&self, table: &str);

    /// The store's (inherent) `set_keyring_settings`.
    async fn set_keyring_settings(&self, settings: &carimbo_kms::KeyringSettings);
}

/// Instantiates every conformance test for one backend's [`Fixture`].
macro_rules! conformance_tests {
    ($fixture:ty) => {
        $crate::conformance::conformance_tests!(@current $fixture;
            intent_then_completion_then_fetch,
            duplicate_serial_is_a_collision_and_changes_nothing,
            completion_or_failure_without_intent_is_not_found,
            failed_issuance_is_recorded_and_final,
            intents_are_checked_before_the_database,
            lineages_are_created_once,
            a_token_is_consumed_once,
            an_expired_token_is_refused_and_not_consumed,
            appended_event_is_stored_canonically_and_hashed_as_documented,
            tampering_is_found_at_its_sequence,
            error_messages_do_not_carry_values,
            works_as_a_store_object,
            keyring_records_are_replaced_with_a_revision_check,
            revoking_changes_status_logs_bumps_the_head_and_drops_the_ocsp_answer,
            revoking_again_changes_nothing_except_an_upgrade_to_key_compromise,
            key_compromise_blocks_the_subject_key_once,
            revoke_refuses_unknown_unissued_and_malformed,
            a_revocation_that_fails_midway_leaves_everything_as_it_was,
            an_ocsp_answer_is_stored_only_while_it_states_the_current_status,
            ocsp_answers_due_at_half_their_validity,
            crl_numbers_follow_commit_order_and_survive_reopening,
            revoked_entries_stay_until_a_crl_follows_their_expiry,
            find_certificates_matches_every_given_field,
            ocsp_responders_are_listed_newest_first_and_keep_their_destruction_time,
            revocation_works_through_a_store_object,
            revocations_land_in_the_crl_shard_of_their_certificate,
            a_lease_is_held_by_one_holder_renewed_and_taken_over_with_a_new_fence,
            writes_under_a_stale_fence_are_refused_and_change_nothing,
            kms_grants_are_live_in_their_window_until_revoked,
            inventory_rows_move_once_under_their_fence,
            operations_queries_count_expiring_and_find_the_stalest_answer,
            signed_heads_are_append_only_and_listed_by_sequence,
            acme_accounts_are_unique_per_key_and_deactivation_is_final,
            an_acme_nonce_is_consumed_once_and_expires,
            an_acme_order_becomes_ready_when_every_authorization_is_valid,
            a_failed_challenge_invalidates_its_authorization_and_order,
            an_acme_account_key_changes_once_and_never_to_a_key_in_use,
        );
        $crate::conformance::conformance_tests!(@multi $fixture;
            concurrent_consumers_of_one_token_have_one_winner,
            concurrent_audit_appends_make_one_gapless_chain,
            concurrent_intents_for_one_serial_have_one_winner,
            concurrent_publishers_get_each_number_once,
            concurrent_acquirers_of_one_lease_have_one_winner,
            concurrent_consumers_of_one_acme_nonce_have_one_winner,
            concurrent_finalizers_of_one_order_have_one_winner,
            concurrent_challenges_of_one_order_make_it_ready,
        );
    };
    (@current $fixture:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::conformance::$name::<$fixture>().await;
            }
        )*
    };
    (@multi $fixture:ty; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::conformance::$name::<$fixture>().await;
            }
        )*
    };
}

pub(crate) use conformance_tests;

/// A fresh store with lineage-1 created.
pub(crate) async fn with_lineage<F: Fixture>() -> Option<F> {
    let fixture = F::fresh().await?;
    fixture
        .store()
        .create_lineage(&lineage("lineage-1"))
        .await
        .unwrap();
    Some(fixture)
}

pub(crate) fn lineage(id: &str) -> Lineage {
    Lineage {
        id: id.into(),
        provisioner: "tokens".into(),
        identity: "web-1".into(),
        created_at: NOW,
    }
}

pub(crate) fn intent(serial: &str) -> IssuanceIntent {
    IssuanceIntent {
        crl_shard: None,
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

pub(crate) fn token(hash_byte: &str, expires_at: OffsetDateTime) -> BootstrapToken {
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

pub(crate) fn counts(
    pending: u64,
    issued: u64,
    failed: u64,
    revoked: u64,
) -> BTreeMap<String, u64> {
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

pub(crate) async fn intent_then_completion_then_fetch<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
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

pub(crate) async fn duplicate_serial_is_a_collision_and_changes_nothing<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
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

pub(crate) async fn completion_or_failure_without_intent_is_not_found<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
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

pub(crate) async fn failed_issuance_is_recorded_and_final<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
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

pub(crate) async fn intents_are_checked_before_the_database<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
    for (what, bad) in [
        (
            "uppercase serial",
            IssuanceIntent {
                crl_shard: None,
                serial: "0A".into(),
                ..intent("0a")
            },
        ),
        (
            "non-hex serial",
            IssuanceIntent {
                crl_shard: None,
                serial: "0x12".into(),
                ..intent("0a")
            },
        ),
        (
            "empty serial",
            IssuanceIntent {
                crl_shard: None,
                serial: String::new(),
                ..intent("0a")
            },
        ),
        (
            "no names",
            IssuanceIntent {
                crl_shard: None,
                sans: vec![],
                ..intent("0a")
            },
        ),
        (
            "short key hash",
            IssuanceIntent {
                crl_shard: None,
                subject_key_sha256: "abcd".into(),
                ..intent("0a")
            },
        ),
        (
            "empty validity",
            IssuanceIntent {
                crl_shard: None,
                not_after: NOW,
                ..intent("0a")
            },
        ),
        (
            "empty lint certificate",
            IssuanceIntent {
                crl_shard: None,
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
        crl_shard: None,
        lineage: "no-such-lineage".into(),
        ..intent("0b")
    };
    assert!(matches!(
        store.record_intent(&orphan).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.count_by_status().await.unwrap(), counts(0, 0, 0, 0));
}

pub(crate) async fn lineages_are_created_once<F: Fixture>() {
    let Some(f) = F::fresh().await else {
        return;
    };
    let store = f.store();
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

pub(crate) async fn a_token_is_consumed_once<F: Fixture>() {
    let Some(f) = F::fresh().await else {
        return;
    };
    let store = f.store();
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

pub(crate) async fn concurrent_consumers_of_one_token_have_one_winner<F: Fixture>() {
    let Some(f) = F::fresh().await else {
        return;
    };
    let store = f.store();
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

pub(crate) async fn an_expired_token_is_refused_and_not_consumed<F: Fixture>() {
    let Some(f) = F::fresh().await else {
        return;
    };
    let store = f.store();
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
    let where_token = format!(
        "FROM bootstrap_tokens WHERE token_hash = '{}'",
        token.token_hash
    );
    let used = (
        f.scalar_i64(&format!("SELECT used_at {where_token}")).await,
        f.scalar_text(&format!("SELECT used_by {where_token}"))
            .await,
    );
    assert_eq!(used, (unix(expires_at) - 1, "web-1".to_owned()));
}

pub(crate) async fn concurrent_audit_appends_make_one_gapless_chain<F: Fixture>() {
    let Some(f) = F::fresh().await else {
        return;
    };
    let store = f.store();
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

pub(crate) async fn appended_event_is_stored_canonically_and_hashed_as_documented<F: Fixture>() {
    let Some(f) = F::fresh().await else {
        return;
    };
    let store = f.store();
    let event: serde_json::Value = serde_json::from_str(r#"{"z": 1, "a": [true, null]}"#).unwrap();
    let stored = store.append_audit("r", &event, NOW).await.unwrap();
    let text = f
        .scalar_text("SELECT event FROM audit_events WHERE chain = 'r' AND sequence = 1")
        .await;
    assert_eq!(text, r#"{"a":[true,null],"z":1}"#);
    assert_eq!(
        stored.hash,
        event_hash("r", 1, GENESIS_HASH, unix(NOW), &text)
    );
    assert_eq!(store.audit_events("r", 0, 10).await.unwrap(), vec![stored]);
}

pub(crate) async fn tampering_is_found_at_its_sequence<F: Fixture>() {
    let Some(f) = F::fresh().await else {
        return;
    };
    let store = f.store();
    for i in 1..=100 {
        store
            .append_audit("replica-a", &json!({"i": i, "outcome": "success"}), NOW)
            .await
            .unwrap();
    }
    // The application cannot change or delete events...
    assert!(
        f.execute("UPDATE audit_events SET event = '{}' WHERE sequence = 57")
            .await
            .is_err()
    );
    assert!(
        f.execute("DELETE FROM audit_events WHERE sequence = 57")
            .await
            .is_err()
    );

    // ...someone owning the database can, after dropping the triggers: the chain shows
    // where.
    f.drop_trigger("audit_events", "audit_events_no_update")
        .await;
    f.drop_trigger("audit_events", "audit_events_no_delete")
        .await;
    f.execute(
        "UPDATE audit_events SET event = '{\"i\":57,\"outcome\":\"failure\"}' \
         WHERE chain = 'replica-a' AND sequence = 57",
    )
    .await
    .unwrap();
    assert_eq!(
        store.verify_audit_chain("replica-a").await.unwrap(),
        Some(57)
    );

    // Moving an event's time breaks it too.
    let Some(f) = F::fresh().await else {
        return;
    };
    let store = f.store();
    for i in 1..=10 {
        store
            .append_audit("c", &json!({ "i": i }), NOW)
            .await
            .unwrap();
    }
    f.drop_trigger("audit_events", "audit_events_no_update")
        .await;
    f.drop_trigger("audit_events", "audit_events_no_delete")
        .await;
    f.execute("UPDATE audit_events SET recorded_at = recorded_at + 1 WHERE sequence = 4")
        .await
        .unwrap();
    assert_eq!(store.verify_audit_chain("c").await.unwrap(), Some(4));
    // A deleted event is a gap at its sequence.
    f.execute("DELETE FROM audit_events WHERE sequence = 2")
        .await
        .unwrap();
    assert_eq!(store.verify_audit_chain("c").await.unwrap(), Some(2));
}

pub(crate) async fn works_as_a_store_object<F: Fixture>() {
    let Some(f) = F::fresh().await else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(f.store().clone());
    store.create_lineage(&lineage("lineage-1")).await.unwrap();
    store.record_intent(&intent("01")).await.unwrap();
    store.complete_issuance("01", b"der", NOW).await.unwrap();
    assert_eq!(store.count_by_status().await.unwrap(), counts(0, 1, 0, 0));
    store.append_audit("r", &json!({}), NOW).await.unwrap();
    assert_eq!(store.verify_audit_chain("r").await.unwrap(), None);
}

pub(crate) async fn error_messages_do_not_carry_values<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
    store.record_intent(&intent("abc")).await.unwrap();
    let secret = "super-secret-token-value";
    let err = store.consume_token(secret, NOW, "x").await.unwrap_err();
    assert!(!err.to_string().contains(secret));
    let err = store.record_intent(&intent("abc")).await.unwrap_err();
    assert_eq!(err.to_string(), "serial number already in use");
}

pub(crate) async fn concurrent_intents_for_one_serial_have_one_winner<F: Fixture>() {
    let Some(f) = with_lineage::<F>().await else {
        return;
    };
    let store = f.store();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let intent = IssuanceIntent {
                crl_shard: None,
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

pub(crate) async fn keyring_records_are_replaced_with_a_revision_check<F: Fixture>() {
    use carimbo_kms::{KeyAlgorithm, KeyName, KeyRecord, KeyringSettings, KeyringStore, Purpose};
    let Some(f) = F::fresh().await else {
        return;
    };
    let store = f.store();
    assert_eq!(
        KeyringStore::settings(store).await.unwrap(),
        KeyringSettings::default()
    );
    for seconds in [86_400, 0] {
        f.set_keyring_settings(&KeyringSettings {
            destroy_wait_seconds: seconds,
        })
        .await;
        assert_eq!(
            KeyringStore::settings(store)
                .await
                .unwrap()
                .destroy_wait_seconds,
            seconds
        );
    }
    let record = |name: &str, revision: u64| KeyRecord {
        name: KeyName::new(name).unwrap(),
        purpose: Purpose::Envelope,
        algorithm: KeyAlgorithm::Aes256Gcm,
        created_at: NOW,
        primary_version: 1,
        versions: vec![],
        revision,
    };
    assert!(KeyringStore::keys(store).await.unwrap().is_empty());
    let b = record("envelope/test/b", 1);
    let a = record("envelope/test/a", 1);
    KeyringStore::insert(store, &b).await.unwrap();
    KeyringStore::insert(store, &a).await.unwrap();
    assert!(matches!(
        KeyringStore::insert(store, &a).await,
        Err(carimbo_kms::Error::KeyExists(_))
    ));
    // Sorted by name.
    assert_eq!(
        KeyringStore::keys(store).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    // The next revision replaces; a stale or skipping one is refused.
    let next = KeyRecord {
        primary_version: 2,
        ..record("envelope/test/a", 2)
    };
    KeyringStore::update(store, &next).await.unwrap();
    assert!(matches!(
        KeyringStore::update(store, &next).await,
        Err(carimbo_kms::Error::Store(_))
    ));
    assert!(matches!(
        KeyringStore::update(store, &record("envelope/test/a", 5)).await,
        Err(carimbo_kms::Error::Store(_))
    ));
    assert!(matches!(
        KeyringStore::update(store, &record("envelope/test/none", 2)).await,
        Err(carimbo_kms::Error::KeyNotFound(_))
    ));
    assert_eq!(KeyringStore::key(store, &a.name).await.unwrap(), Some(next));
    assert_eq!(
        KeyringStore::key(store, &KeyName::new("envelope/test/none").unwrap())
            .await
            .unwrap(),
        None
    );
    // Records are never deleted.
    assert!(f.execute("DELETE FROM keyring_keys").await.is_err());
}
