//! Signed audit heads and chain listing: the conformance tests of the head part of
//! [`AuditStore`].

use serde_json::json;
use time::Duration;

use super::{Fixture, NOW};
use crate::{AuditStore, SignedAuditHead, StoreError};

fn head(chain: &str, sequence: u64, hash: &str) -> SignedAuditHead {
    SignedAuditHead {
        chain: chain.to_owned(),
        sequence,
        hash: hash.to_owned(),
        signed_at: NOW + Duration::seconds(sequence as i64),
        key_reference: "file:audit-key".into(),
        algorithm: "ecdsa-p256-sha256".into(),
        public_key: vec![0x30, 0x59, 0x01],
        signature: vec![0xab; 70],
    }
}

pub(crate) async fn signed_heads_are_append_only_and_listed_by_sequence<F: Fixture>() {
    let Some(f) = F::fresh().await else { return };
    let store = f.store();
    assert!(store.audit_chains().await.unwrap().is_empty());
    assert_eq!(store.last_audit_event("b").await.unwrap(), None);
    for i in 0..3 {
        store
            .append_audit("b", &json!({ "i": i }), NOW)
            .await
            .unwrap();
    }
    let first_a = store.append_audit("a", &json!({}), NOW).await.unwrap();
    assert_eq!(store.audit_chains().await.unwrap(), ["a", "b"]);
    let last_b = store.last_audit_event("b").await.unwrap().unwrap();
    assert_eq!(
        (last_b.sequence, last_b.event.clone()),
        (3, json!({ "i": 2 }))
    );
    assert_eq!(store.last_audit_event("a").await.unwrap().unwrap(), first_a);
    // The last event of a type: at the top level only, per chain.
    store
        .append_audit("b", &json!({ "type": "config.applied", "n": 1 }), NOW)
        .await
        .unwrap();
    store
        .append_audit(
            "b",
            &json!({ "type": "other", "inner": { "type": "config.applied" } }),
            NOW,
        )
        .await
        .unwrap();
    let found = store
        .last_audit_event_of_type("b", "config.applied")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.event["n"], 1);
    assert_eq!(
        store
            .last_audit_event_of_type("a", "config.applied")
            .await
            .unwrap(),
        None
    );

    assert!(store.audit_heads("b").await.unwrap().is_empty());
    let later = head("b", 3, &last_b.hash);
    let earlier = head("b", 1, &"1".repeat(64));
    store.insert_audit_head(&later).await.unwrap();
    store.insert_audit_head(&earlier).await.unwrap();
    assert_eq!(
        store.audit_heads("b").await.unwrap(),
        [earlier.clone(), later.clone()]
    );
    assert!(store.audit_heads("a").await.unwrap().is_empty());

    // A second head at one sequence is a conflict; the first stays.
    let mut other = later.clone();
    other.signature = vec![1; 64];
    assert!(matches!(
        store.insert_audit_head(&other).await,
        Err(StoreError::Conflict(_))
    ));
    // Malformed heads never reach the database.
    for bad in [
        head("", 1, &"1".repeat(64)),
        head("b", 0, &"1".repeat(64)),
        head("b", 5, "not-a-hash"),
        head("b", 5, &"A".repeat(64)),
        SignedAuditHead {
            key_reference: String::new(),
            ..head("b", 5, &"1".repeat(64))
        },
    ] {
        assert!(
            matches!(
                store.insert_audit_head(&bad).await,
                Err(StoreError::Invalid(_))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(store.audit_heads("b").await.unwrap(), [earlier, later]);
    // Append-only for the application too.
    assert!(f.execute("DELETE FROM audit_heads").await.is_err());
    assert!(
        f.execute("UPDATE audit_heads SET signature = '00'")
            .await
            .is_err()
    );
}
