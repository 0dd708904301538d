//! ACME state: the conformance tests of [`AcmeStore`].

use time::Duration;

use super::revocation::with_issued;
use super::{Fixture, NOW};
use crate::{
    AcmeAccount, AcmeAccountStatus, AcmeAuthorization, AcmeAuthorizationStatus, AcmeChallenge,
    AcmeChallengeStatus, AcmeIdentifier, AcmeOrder, AcmeOrderStatus, AcmeStore, ChallengeOutcome,
    StoreError,
};

pub(crate) fn account(id: &str, thumbprint: &str) -> AcmeAccount {
    AcmeAccount {
        id: id.into(),
        thumbprint: thumbprint.into(),
        jwk: r#"{"kty":"EC"}"#.into(),
        contact: vec!["mailto:ops@example.internal".into()],
        status: AcmeAccountStatus::Valid,
        provisioner: "acme".into(),
        profile: "server".into(),
        created_at: NOW,
    }
}

/// An order `id` of account `acct-1` for `names`, one authorization per name with one
/// http-01 challenge each (ids `{id}-authz-{n}` and `{id}-chall-{n}`).
pub(crate) fn order(id: &str, names: &[&str]) -> (AcmeOrder, Vec<AcmeAuthorization>) {
    let identifiers: Vec<AcmeIdentifier> = names
        .iter()
        .map(|n| AcmeIdentifier {
            kind: "dns".into(),
            value: (*n).into(),
        })
        .collect();
    let authorizations = identifiers
        .iter()
        .enumerate()
        .map(|(n, identifier)| {
            let authorization_id = format!("{id}-authz-{n}");
            AcmeAuthorization {
                id: authorization_id.clone(),
                order_id: id.into(),
                account_id: "acct-1".into(),
                identifier: identifier.clone(),
                status: AcmeAuthorizationStatus::Pending,
                expires_at: NOW + Duration::days(1),
                challenges: vec![AcmeChallenge {
                    id: format!("{id}-chall-{n}"),
                    authorization_id,
                    kind: "http-01".into(),
                    token: format!("token-{id}-{n}"),
                    status: AcmeChallengeStatus::Pending,
                    validated_at: None,
                    error: None,
                }],
            }
        })
        .collect();
    (
        AcmeOrder {
            id: id.into(),
            account_id: "acct-1".into(),
            profile: "server".into(),
            status: AcmeOrderStatus::Pending,
            identifiers,
            expires_at: NOW + Duration::days(1),
            error: None,
            certificate_serial: None,
            created_at: NOW,
        },
        authorizations,
    )
}

pub(crate) async fn acme_accounts_are_unique_per_key_and_deactivation_is_final<F: Fixture>() {
    let Some(f) = F::fresh().await else { return };
    let store = f.store();
    let first = account("acct-1", "thumb-1");
    store.create_acme_account(&first).await.unwrap();
    assert_eq!(
        store.acme_account("acct-1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        store.acme_account_by_thumbprint("thumb-1").await.unwrap(),
        Some(first.clone())
    );
    // Same key, other id: refused, nothing written.
    assert!(matches!(
        store
            .create_acme_account(&account("acct-2", "thumb-1"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.acme_account("acct-2").await.unwrap(), None);
    assert!(matches!(
        store.create_acme_account(&account("", "thumb-3")).await,
        Err(StoreError::Invalid(_))
    ));

    let updated = store
        .update_acme_account_contact("acct-1", &["mailto:b@example.internal".into()])
        .await
        .unwrap();
    assert_eq!(
        updated.contact,
        vec!["mailto:b@example.internal".to_owned()]
    );
    let deactivated = store.deactivate_acme_account("acct-1").await.unwrap();
    assert_eq!(deactivated.status, AcmeAccountStatus::Deactivated);
    // Again: Ok, still deactivated; contacts can no longer change.
    assert_eq!(
        store
            .deactivate_acme_account("acct-1")
            .await
            .unwrap()
            .status,
        AcmeAccountStatus::Deactivated
    );
    assert!(matches!(
        store.update_acme_account_contact("acct-1", &[]).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.deactivate_acme_account("nobody").await,
        Err(StoreError::NotFound)
    ));
}

pub(crate) async fn an_acme_nonce_is_consumed_once_and_expires<F: Fixture>() {
    let Some(f) = F::fresh().await else { return };
    let store = f.store();
    store
        .insert_acme_nonce("n-1", NOW + Duration::minutes(5))
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_acme_nonce("n-1", NOW + Duration::minutes(5))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.consume_acme_nonce("n-1", NOW).await.unwrap());
    assert!(!store.consume_acme_nonce("n-1", NOW).await.unwrap());
    assert!(!store.consume_acme_nonce("never-issued", NOW).await.unwrap());
    // Expired: refused (and gone).
    store
        .insert_acme_nonce("n-2", NOW + Duration::minutes(5))
        .await
        .unwrap();
    assert!(
        !store
            .consume_acme_nonce("n-2", NOW + Duration::minutes(5))
            .await
            .unwrap()
    );
    store
        .insert_acme_nonce("n-3", NOW + Duration::minutes(5))
        .await
        .unwrap();
    store
        .insert_acme_nonce("n-4", NOW + Duration::minutes(50))
        .await
        .unwrap();
    assert_eq!(
        store
            .prune_acme_nonces(NOW + Duration::minutes(10))
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .consume_acme_nonce("n-4", NOW + Duration::minutes(10))
            .await
            .unwrap()
    );
}

pub(crate) async fn concurrent_consumers_of_one_acme_nonce_have_one_winner<F: Fixture>() {
    let Some(f) = F::fresh().await else { return };
    let store = f.store();
    store
        .insert_acme_nonce("shared", NOW + Duration::minutes(5))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.consume_acme_nonce("shared", NOW).await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

pub(crate) async fn an_acme_order_becomes_ready_when_every_authorization_is_valid<F: Fixture>() {
    let Some(f) = with_issued::<F>().await else {
        return;
    };
    let store = f.store();
    store
        .create_acme_account(&account("acct-1", "thumb-1"))
        .await
        .unwrap();
    let (new_order, authorizations) = order("o-1", &["a.example.internal", "b.example.internal"]);
    store
        .create_acme_order(&new_order, &authorizations)
        .await
        .unwrap();
    assert_eq!(
        store.acme_order("o-1").await.unwrap(),
        Some(new_order.clone())
    );
    assert_eq!(
        store.acme_order_authorizations("o-1").await.unwrap(),
        authorizations
    );
    assert_eq!(
        store.acme_authorization("o-1-authz-1").await.unwrap(),
        Some(authorizations[1].clone())
    );
    assert_eq!(
        store.acme_orders_of("acct-1", 10).await.unwrap(),
        vec!["o-1".to_owned()]
    );
    // The same ids again: refused, nothing more written.
    assert!(matches!(
        store.create_acme_order(&new_order, &authorizations).await,
        Err(StoreError::Conflict(_))
    ));
    // Not ready: finalization cannot begin.
    assert!(!store.begin_acme_finalization("o-1").await.unwrap());

    // A challenge that was not started cannot finish.
    let valid = ChallengeOutcome::Valid(NOW);
    assert!(
        !store
            .finish_acme_challenge("o-1-chall-0", &valid)
            .await
            .unwrap()
    );
    assert!(store.start_acme_challenge("o-1-chall-0").await.unwrap());
    assert!(!store.start_acme_challenge("o-1-chall-0").await.unwrap());
    assert!(
        store
            .finish_acme_challenge("o-1-chall-0", &valid)
            .await
            .unwrap()
    );
    let challenge = store.acme_challenge("o-1-chall-0").await.unwrap().unwrap();
    assert_eq!(challenge.status, AcmeChallengeStatus::Valid);
    assert_eq!(challenge.validated_at, Some(NOW));
    // One of two authorizations: still pending.
    assert_eq!(
        store.acme_order("o-1").await.unwrap().unwrap().status,
        AcmeOrderStatus::Pending
    );
    assert!(store.start_acme_challenge("o-1-chall-1").await.unwrap());
    assert!(
        store
            .finish_acme_challenge("o-1-chall-1", &valid)
            .await
            .unwrap()
    );
    assert_eq!(
        store.acme_order("o-1").await.unwrap().unwrap().status,
        AcmeOrderStatus::Ready
    );

    // Finalization: begin, abandon, begin again, complete with the issued serial.
    assert!(store.begin_acme_finalization("o-1").await.unwrap());
    store.abandon_acme_finalization("o-1").await.unwrap();
    assert!(store.begin_acme_finalization("o-1").await.unwrap());
    store.complete_acme_order("o-1", "0a").await.unwrap();
    let finished = store.acme_order("o-1").await.unwrap().unwrap();
    assert_eq!(finished.status, AcmeOrderStatus::Valid);
    assert_eq!(finished.certificate_serial.as_deref(), Some("0a"));
    assert_eq!(
        store.acme_order_by_certificate("0A").await.unwrap(),
        Some(finished)
    );
    assert!(matches!(
        store.complete_acme_order("o-1", "0a").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.begin_acme_finalization("nothing").await,
        Err(StoreError::NotFound)
    ));
}

pub(crate) async fn a_failed_challenge_invalidates_its_authorization_and_order<F: Fixture>() {
    let Some(f) = F::fresh().await else { return };
    let store = f.store();
    store
        .create_acme_account(&account("acct-1", "thumb-1"))
        .await
        .unwrap();
    let (new_order, authorizations) = order("o-2", &["a.example.internal", "b.example.internal"]);
    store
        .create_acme_order(&new_order, &authorizations)
        .await
        .unwrap();
    assert!(store.start_acme_challenge("o-2-chall-0").await.unwrap());
    let problem = r#"{"type":"urn:ietf:params:acme:error:incorrectResponse"}"#;
    assert!(
        store
            .finish_acme_challenge("o-2-chall-0", &ChallengeOutcome::Invalid(problem.into()))
            .await
            .unwrap()
    );
    let authorization = store
        .acme_authorization("o-2-authz-0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(authorization.status, AcmeAuthorizationStatus::Invalid);
    assert_eq!(authorization.challenges[0].error.as_deref(), Some(problem));
    let failed = store.acme_order("o-2").await.unwrap().unwrap();
    assert_eq!(failed.status, AcmeOrderStatus::Invalid);
    assert_eq!(failed.error.as_deref(), Some(problem));
    // The other authorization succeeding later does not revive the order.
    assert!(store.start_acme_challenge("o-2-chall-1").await.unwrap());
    store
        .finish_acme_challenge("o-2-chall-1", &ChallengeOutcome::Valid(NOW))
        .await
        .unwrap();
    assert_eq!(
        store.acme_order("o-2").await.unwrap().unwrap().status,
        AcmeOrderStatus::Invalid
    );
    // The failed authorization's challenge cannot be retried.
    assert!(!store.start_acme_challenge("o-2-chall-0").await.unwrap());
    assert!(matches!(
        store.start_acme_challenge("nothing").await,
        Err(StoreError::NotFound)
    ));
}

pub(crate) async fn concurrent_finalizers_of_one_order_have_one_winner<F: Fixture>() {
    let Some(f) = F::fresh().await else { return };
    let store = f.store();
    store
        .create_acme_account(&account("acct-1", "thumb-1"))
        .await
        .unwrap();
    let (new_order, authorizations) = order("o-3", &["a.example.internal"]);
    store
        .create_acme_order(&new_order, &authorizations)
        .await
        .unwrap();
    assert!(store.start_acme_challenge("o-3-chall-0").await.unwrap());
    store
        .finish_acme_challenge("o-3-chall-0", &ChallengeOutcome::Valid(NOW))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.begin_acme_finalization("o-3").await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(
        store.acme_order("o-3").await.unwrap().unwrap().status,
        AcmeOrderStatus::Processing
    );
}

pub(crate) async fn concurrent_challenges_of_one_order_make_it_ready<F: Fixture>() {
    let Some(f) = F::fresh().await else { return };
    let store = f.store();
    store
        .create_acme_account(&account("acct-1", "thumb-1"))
        .await
        .unwrap();
    let names: Vec<String> = (0..8).map(|n| format!("n{n}.example.internal")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let (new_order, authorizations) = order("o-4", &names);
    store
        .create_acme_order(&new_order, &authorizations)
        .await
        .unwrap();
    for n in 0..names.len() {
        assert!(
            store
                .start_acme_challenge(&format!("o-4-chall-{n}"))
                .await
                .unwrap()
        );
    }
    let mut tasks = Vec::new();
    for n in 0..names.len() {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .finish_acme_challenge(&format!("o-4-chall-{n}"), &ChallengeOutcome::Valid(NOW))
                .await
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().unwrap());
    }
    assert_eq!(
        store.acme_order("o-4").await.unwrap().unwrap().status,
        AcmeOrderStatus::Ready
    );
}

pub(crate) async fn an_acme_account_key_changes_once_and_never_to_a_key_in_use<F: Fixture>() {
    let Some(f) = F::fresh().await else { return };
    let store = f.store();
    store
        .create_acme_account(&account("acct-1", "thumb-1"))
        .await
        .unwrap();
    store
        .create_acme_account(&account("acct-2", "thumb-2"))
        .await
        .unwrap();
    // To a key another account holds: refused, nothing changes.
    assert!(matches!(
        store
            .change_acme_account_key("acct-1", "thumb-1", "thumb-2", "{}")
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .acme_account("acct-1")
            .await
            .unwrap()
            .unwrap()
            .thumbprint,
        "thumb-1"
    );
    let changed = store
        .change_acme_account_key("acct-1", "thumb-1", "thumb-3", r#"{"new":1}"#)
        .await
        .unwrap();
    assert_eq!(
        (changed.thumbprint.as_str(), changed.jwk.as_str()),
        ("thumb-3", r#"{"new":1}"#)
    );
    assert_eq!(
        store
            .acme_account_by_thumbprint("thumb-3")
            .await
            .unwrap()
            .unwrap()
            .id,
        "acct-1"
    );
    assert_eq!(
        store.acme_account_by_thumbprint("thumb-1").await.unwrap(),
        None
    );
    // A second change from the old key (a concurrent loser): refused.
    assert!(matches!(
        store
            .change_acme_account_key("acct-1", "thumb-1", "thumb-4", "{}")
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .change_acme_account_key("nobody", "thumb-1", "thumb-4", "{}")
            .await,
        Err(StoreError::NotFound)
    ));
}
