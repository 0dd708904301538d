//! Job leases and fenced writes: the conformance tests of [`JobLeaseStore`].

use std::sync::Arc;

use time::Duration;

use super::revocation::{answer, crl, with_issued};
use super::{Fixture, NOW};
use crate::{Fence, JobLeaseStore, OcspCertStatus, RevocationStore, StoreError};

const TTL: Duration = Duration::seconds(10);

pub(crate) async fn a_lease_is_held_by_one_holder_renewed_and_taken_over_with_a_new_fence<
    F: Fixture,
>() {
    let Some(f) = F::fresh().await else { return };
    let store = f.store();
    assert_eq!(store.job_lease("crl").await.unwrap(), None);

    let a = store.acquire_lease("crl", "a", NOW, TTL).await.unwrap();
    let a = a.expect("a free lease is granted");
    assert_eq!(a.fence.token, 1);
    assert_eq!((a.acquired_at, a.expires_at), (NOW, NOW + TTL));
    // Another holder while it runs: refused, the lease is unchanged.
    let later = NOW + Duration::milliseconds(9_999);
    assert_eq!(
        store.acquire_lease("crl", "b", later, TTL).await.unwrap(),
        None
    );
    assert_eq!(store.job_lease("crl").await.unwrap(), Some(a.clone()));
    // Renewal by the holder keeps the fence and the acquisition time.
    let renewed = store
        .acquire_lease("crl", "a", later, TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renewed.fence, a.fence);
    assert_eq!(renewed.acquired_at, NOW);
    assert_eq!(renewed.expires_at, later + TTL);
    // Leases are per job.
    let other = store
        .acquire_lease("ocsp-refresh", "b", later, TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.fence.token, 1);
    // Lapsed: another holder takes it over with the next fence.
    let lapsed = later + TTL;
    let b = store
        .acquire_lease("crl", "b", lapsed, TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.fence.token, 2);
    assert_eq!(b.fence.holder, "b");
    assert_eq!(b.acquired_at, lapsed);
    // The ex-holder coming back is a takeover of its own: refused while b runs.
    assert_eq!(
        store.acquire_lease("crl", "a", lapsed, TTL).await.unwrap(),
        None
    );
    // Released by a stale fence: nothing changes; by the holder: free at once.
    store.release_lease(&a.fence, lapsed).await.unwrap();
    assert_eq!(store.job_lease("crl").await.unwrap(), Some(b.clone()));
    store.release_lease(&b.fence, lapsed).await.unwrap();
    let a_again = store
        .acquire_lease("crl", "a", lapsed, TTL)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a_again.fence.token, 3);

    // Live leases by prefix: "ocsp-refresh" (taken at `later`) has lapsed by now.
    let jobs = |leases: Vec<crate::JobLease>| -> Vec<String> {
        leases.into_iter().map(|l| l.fence.job).collect()
    };
    assert_eq!(jobs(store.live_leases("", lapsed).await.unwrap()), ["crl"]);
    assert_eq!(
        jobs(store.live_leases("", later).await.unwrap()),
        ["crl", "ocsp-refresh"]
    );
    assert_eq!(
        jobs(store.live_leases("ocsp-", later).await.unwrap()),
        ["ocsp-refresh"]
    );
    let live = store.live_leases("crl", lapsed).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0], a_again);
    assert!(store.live_leases("kms-", later).await.unwrap().is_empty());

    for (job, holder, ttl) in [
        ("", "a", TTL),
        ("crl", "", TTL),
        ("crl", "a", Duration::ZERO),
    ] {
        assert!(matches!(
            store.acquire_lease(job, holder, NOW, ttl).await,
            Err(StoreError::Invalid(_))
        ));
    }
}

/// A paused ex-leader's CRL and OCSP writes are refused once its lease passed on, even
/// when the CRL number and the answer's freshness would have let them through; the new
/// leader's writes are kept.
pub(crate) async fn writes_under_a_stale_fence_are_refused_and_change_nothing<F: Fixture>() {
    let Some(f) = with_issued::<F>().await else {
        return;
    };
    let store = f.store();
    let old = store
        .acquire_lease("crl", "a", NOW, TTL)
        .await
        .unwrap()
        .unwrap()
        .fence;
    store
        .publish_crl(&crl("int-server", 1, NOW), 0, Some(&old))
        .await
        .unwrap();
    let new = store
        .acquire_lease("crl", "b", NOW + TTL, TTL)
        .await
        .unwrap()
        .unwrap()
        .fence;
    // Number 2 is the next one: only the fence refuses it.
    let late = crl("int-server", 2, NOW + Duration::seconds(1));
    assert!(matches!(
        store.publish_crl(&late, 0, Some(&old)).await,
        Err(StoreError::Fenced(_))
    ));
    assert_eq!(
        store
            .latest_crl("int-server")
            .await
            .unwrap()
            .unwrap()
            .number,
        1
    );
    let kept = crl("int-server", 2, NOW + Duration::seconds(2));
    store.publish_crl(&kept, 0, Some(&new)).await.unwrap();
    assert_eq!(store.latest_crl("int-server").await.unwrap(), Some(kept));
    // A fence of a job that was never leased, or with a forged holder, is refused too.
    for forged in [
        Fence {
            job: "never".into(),
            ..new.clone()
        },
        Fence {
            holder: "a".into(),
            ..new.clone()
        },
    ] {
        assert!(matches!(
            store
                .publish_crl(&crl("int-server", 3, NOW + TTL), 0, Some(&forged))
                .await,
            Err(StoreError::Fenced(_))
        ));
    }

    let refresh_old = store
        .acquire_lease("ocsp-refresh", "a", NOW, TTL)
        .await
        .unwrap()
        .unwrap()
        .fence;
    let refresh_new = store
        .acquire_lease("ocsp-refresh", "b", NOW + TTL, TTL)
        .await
        .unwrap()
        .unwrap()
        .fence;
    // Fresher than anything stored and stating the current status: only the fence
    // refuses it.
    let late = answer("0a", OcspCertStatus::Good, NOW + Duration::hours(1));
    assert!(matches!(
        store.store_ocsp_response(&late, Some(&refresh_old)).await,
        Err(StoreError::Fenced(_))
    ));
    assert_eq!(store.ocsp_response("0a", "sha1").await.unwrap(), None);
    assert!(
        store
            .store_ocsp_response(&late, Some(&refresh_new))
            .await
            .unwrap()
    );
    assert_eq!(store.ocsp_response("0a", "sha1").await.unwrap(), Some(late));
}

/// Of many holders racing for one lapsed lease, exactly one wins, with one new fence.
pub(crate) async fn concurrent_acquirers_of_one_lease_have_one_winner<F: Fixture>() {
    let Some(f) = F::fresh().await else { return };
    let store = Arc::new(f.store().clone());
    store.acquire_lease("crl", "old", NOW, TTL).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .acquire_lease("crl", &format!("h{i}"), NOW + TTL, TTL)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(lease) = task.await.unwrap() {
            winners.push(lease);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(winners[0].fence.token, 2);
    assert_eq!(
        store.job_lease("crl").await.unwrap().unwrap().fence,
        winners[0].fence
    );
}

pub(crate) async fn kms_grants_are_live_in_their_window_until_revoked<F: Fixture>() {
    use crate::{KmsGrant, KmsGrantStore};
    let Some(f) = F::fresh().await else { return };
    let store = f.store();
    let grant = KmsGrant {
        id: "0a1b".into(),
        identity: "client:payments".into(),
        keys: vec!["envelope-data/prod/*".into()],
        operations: vec!["encrypt".into(), "decrypt".into()],
        not_before: NOW,
        not_after: NOW + Duration::hours(1),
        created_by: "alice".into(),
        created_at: NOW,
        revoked_at: None,
    };
    store.insert_kms_grant(&grant).await.unwrap();
    assert!(matches!(
        store.insert_kms_grant(&grant).await,
        Err(StoreError::Conflict(_))
    ));
    let live = |at| async move { store.live_kms_grants(at).await.unwrap() };
    assert!(live(NOW - Duration::seconds(1)).await.is_empty());
    assert_eq!(live(NOW).await, vec![grant.clone()]);
    assert_eq!(live(NOW + Duration::seconds(3599)).await.len(), 1);
    // Refused from not_after on.
    assert!(live(NOW + Duration::hours(1)).await.is_empty());
    let revoked_at = NOW + Duration::minutes(5);
    store.revoke_kms_grant("0a1b", revoked_at).await.unwrap();
    store
        .revoke_kms_grant("0a1b", revoked_at + Duration::minutes(1))
        .await
        .unwrap();
    assert!(live(NOW + Duration::minutes(6)).await.is_empty());
    let all = store.kms_grants(10).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].revoked_at, Some(revoked_at));
    assert!(matches!(
        store.revoke_kms_grant("ffff", NOW).await,
        Err(StoreError::NotFound)
    ));
    for bad in [
        KmsGrant {
            id: "XYZ".into(),
            ..grant.clone()
        },
        KmsGrant {
            keys: vec![],
            ..grant.clone()
        },
        KmsGrant {
            operations: vec![],
            ..grant.clone()
        },
        KmsGrant {
            not_after: NOW,
            ..grant.clone()
        },
    ] {
        assert!(matches!(
            store.insert_kms_grant(&bad).await,
            Err(StoreError::Invalid(_))
        ));
    }
}

pub(crate) async fn inventory_rows_move_once_under_their_fence<F: Fixture>() {
    use crate::{InventoryRow, KmsInventoryStore, KmsJob};
    let Some(f) = F::fresh().await else { return };
    let store = f.store();
    let row = |id: &str, version: u32, provider: &str| InventoryRow {
        id: id.into(),
        key_name: "envelope-data/prod/a".into(),
        key_version: version,
        provider: provider.into(),
        wrapped_key: vec![1, 2, u8::try_from(version).unwrap()],
        context: "{}".into(),
        attempts: 0,
        last_error: None,
        dead: false,
        updated_at: NOW,
    };
    let rows: Vec<InventoryRow> = (0..5)
        .map(|i| row(&format!("obj-{i}"), 1, "file"))
        .collect();
    store.put_inventory(&rows).await.unwrap();
    assert_eq!(
        store.inventory_row("obj-3").await.unwrap(),
        Some(rows[3].clone())
    );
    let page = store
        .inventory_to_move("envelope-data/prod/a", 2, "", 3)
        .await
        .unwrap();
    assert_eq!(page.len(), 3);
    let next = store
        .inventory_to_move("envelope-data/prod/a", 2, &page[2].id, 3)
        .await
        .unwrap();
    assert_eq!(next.len(), 2);

    let fence = store
        .acquire_lease("kms-rewrap/envelope-data/prod/a", "job-1", NOW, TTL)
        .await
        .unwrap()
        .unwrap()
        .fence;
    let moved = row("obj-0", 2, "pkcs11");
    assert!(
        store
            .move_inventory_row("obj-0", 1, (&moved, Some(&fence)))
            .await
            .unwrap()
    );
    // Moving it again from version 1 changes nothing: never rewrapped twice.
    assert!(
        !store
            .move_inventory_row("obj-0", 1, (&row("obj-0", 3, "aws"), Some(&fence)))
            .await
            .unwrap()
    );
    assert_eq!(store.inventory_row("obj-0").await.unwrap(), Some(moved));
    // A stale fence moves nothing.
    store
        .acquire_lease("kms-rewrap/envelope-data/prod/a", "job-2", NOW + TTL, TTL)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        store
            .move_inventory_row("obj-1", 1, (&row("obj-1", 2, "pkcs11"), Some(&fence)))
            .await,
        Err(StoreError::Fenced(_))
    ));
    // Failures count; a dead row is skipped.
    store
        .fail_inventory_row("obj-2", "throttled", false)
        .await
        .unwrap();
    store
        .fail_inventory_row("obj-2", "gone", true)
        .await
        .unwrap();
    let failed = store.inventory_row("obj-2").await.unwrap().unwrap();
    assert_eq!((failed.attempts, failed.dead), (2, true));
    assert_eq!(failed.last_error.as_deref(), Some("gone"));
    let left = store
        .inventory_to_move("envelope-data/prod/a", 2, "", 100)
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["obj-1", "obj-3", "obj-4"]
    );
    let counts = store.inventory_counts(None).await.unwrap();
    let summary: Vec<(u32, &str, u64, u64)> = counts
        .iter()
        .map(|c| (c.key_version, c.provider.as_str(), c.live, c.dead))
        .collect();
    assert_eq!(summary, [(1, "file", 3, 1), (2, "pkcs11", 1, 0)]);
    assert_eq!(
        store.inventory_counts(Some("other/x/y")).await.unwrap(),
        vec![]
    );

    let job = KmsJob {
        id: "0b".into(),
        key_name: "envelope-data/prod/a".into(),
        target_version: 2,
        target_provider: "pkcs11".into(),
        state: "running".into(),
        total: 5,
        done: 1,
        dead: 1,
        started_at: NOW,
        updated_at: NOW,
    };
    store.put_kms_job(&job).await.unwrap();
    assert_eq!(
        store.running_kms_job("envelope-data/prod/a").await.unwrap(),
        Some(job.clone())
    );
    let finished = KmsJob {
        state: "done".into(),
        done: 4,
        ..job
    };
    store.put_kms_job(&finished).await.unwrap();
    assert_eq!(store.kms_job("0b").await.unwrap(), Some(finished));
    assert_eq!(
        store.running_kms_job("envelope-data/prod/a").await.unwrap(),
        None
    );
    assert!(matches!(
        store.put_inventory(&[row("", 1, "file")]).await,
        Err(StoreError::Invalid(_))
    ));
}
