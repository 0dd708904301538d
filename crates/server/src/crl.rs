//! Issuers' CRLs: built from the store, signed with the issuer's own key through the
//! KMS, published with a CRL number that only grows, and served from memory.
//!
//! Publication (DESIGN §4 "CRL", invariant 5): the entries and the issuer's revocation
//! revision are read together; the CRL is built with number = last + 1, linted and
//! signed; then [`RevocationStore::publish_crl`](carimbo_store::RevocationStore) stores
//! it in one transaction that also moves the head from last to last + 1 — and refuses
//! if another publisher moved it first, in which case this one is discarded unpublished
//! and rebuilt. Signing happens before that transaction (a CA key operation is not held
//! under a database lock), but only the transaction publishes, so numbers increase in
//! publication order, across restarts and replicas.
//!
//! A CRL is (re)issued when a revocation made its issuer dirty (after `crl-debounce`, so
//! a burst of revocations makes one CRL), when half of its validity has passed, or when
//! the issuer has none yet. Only the replica holding the `crl` job lease publishes
//! ([`jobs`](crate::jobs)); its publications carry the lease's fence, so a replica that
//! stalled past its lease cannot publish when it wakes up. The others load what it
//! published. An entry stays until one CRL was issued after its
//! certificate expired (RFC 5280 §3.3).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use carimbo_pki::{CrlKind, CrlTemplate, RevocationReason, RevokedCertificate, prepare_crl};
use carimbo_store::{CrlHead, Fence, StoreError, StoredCrl, crl_scope};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::state::{AppState, Issuer};

/// A published CRL, ready to serve.
#[derive(Debug)]
pub struct PublishedCrl {
    /// Its number.
    pub number: u64,
    /// DER.
    pub der: Bytes,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// Number of entries.
    pub entries: u64,
}

/// Why a publication did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    /// The store failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// Building, linting or signing failed.
    #[error("{0}")]
    Build(String),
    /// Another publisher took the number each time.
    #[error("another replica kept publishing first")]
    Contended,
    /// The CRL job's lease passed to another replica: this CRL was not published.
    #[error("not published, the CRL job's lease passed to another replica: {0}")]
    Fenced(String),
}

/// The CRL side of one replica.
#[derive(Debug)]
pub struct CrlService {
    latest: RwLock<HashMap<String, Arc<PublishedCrl>>>,
    validity: time::Duration,
    debounce: std::time::Duration,
    directory: Option<PathBuf>,
    /// Woken by revocations on this replica.
    dirty: Notify,
}

/// The URL of `issuer`'s CRL (or of its shard `shard`) under `publication_url`: the CRL
/// DP of its certificates and its CRLs' issuing distribution point.
pub fn crl_url(publication_url: &str, issuer: &str, shard: Option<u8>) -> String {
    match shard {
        None => format!("{publication_url}/crl/{issuer}.crl"),
        Some(shard) => format!("{publication_url}/crl/{issuer}/{shard}.crl"),
    }
}

impl CrlService {
    /// A service with these settings.
    pub fn new(
        validity: time::Duration,
        debounce: time::Duration,
        directory: Option<PathBuf>,
    ) -> Self {
        Self {
            latest: RwLock::new(HashMap::new()),
            validity,
            debounce: std::time::Duration::from_millis(
                u64::try_from(debounce.whole_milliseconds()).unwrap_or(2000),
            ),
            directory,
            dirty: Notify::new(),
        }
    }

    /// The latest CRL of `issuer` this replica knows.
    pub fn latest(&self, issuer: &str) -> Option<Arc<PublishedCrl>> {
        self.latest
            .read()
            .ok()
            .and_then(|latest| latest.get(issuer).cloned())
    }

    /// Tells the publisher a revocation happened here.
    pub fn mark_dirty(&self) {
        self.dirty.notify_one();
    }

    fn remember(&self, issuer: &str, crl: &StoredCrl) {
        let published = Arc::new(PublishedCrl {
            number: crl.number,
            der: Bytes::from(crl.der.clone()),
            this_update: crl.this_update,
            next_update: crl.next_update,
            entries: crl.entries,
        });
        if let Ok(mut latest) = self.latest.write() {
            let newer = latest
                .get(issuer)
                .is_none_or(|known| known.number < published.number);
            if newer {
                latest.insert(issuer.to_owned(), published);
            }
        }
    }

    /// Loads the latest published CRL of each issuer whose number moved (published by
    /// another replica, or before a restart).
    pub async fn load_published(&self, state: &AppState) -> Result<(), StoreError> {
        for head in state.store.crl_heads().await? {
            let known = self.latest(&head.issuer).map(|c| c.number);
            if head.last_number == 0 || known == Some(head.last_number) {
                continue;
            }
            if let Some(crl) = state.store.latest_crl(&head.issuer).await? {
                self.remember(&head.issuer, &crl);
            }
        }
        Ok(())
    }

    fn is_due(&self, head: Option<&CrlHead>, now: OffsetDateTime) -> bool {
        match head {
            None => true,
            Some(head) if head.last_number == 0 => true,
            Some(head) => {
                head.is_dirty()
                    || now
                        >= head.last_this_update
                            + (head.last_next_update - head.last_this_update) / 2
            }
        }
    }

    /// Publishes a new CRL for every issuer that needs one, under `fence` (the CRL
    /// job's lease; `None` only where no other replica can run, as in tests). Returns
    /// the numbers published; stops at the first fenced write.
    pub async fn publish_due(
        &self,
        state: &AppState,
        fence: Option<&Fence>,
    ) -> Vec<(String, Result<u64, CrlError>)> {
        let now = OffsetDateTime::now_utc();
        let heads = match state.store.crl_heads().await {
            Ok(heads) => heads,
            Err(error) => {
                state.metrics.job_ran(crate::jobs::CRL_JOB, false);
                return state
                    .issuers
                    .iter()
                    .map(|i| (i.name.clone(), Err(CrlError::Build(error.to_string()))))
                    .collect();
            }
        };
        let mut results = Vec::new();
        for issuer in &state.issuers {
            for shard in issuer.crl_shards() {
                let scope = crl_scope(&issuer.name, shard);
                let head = heads.iter().find(|h| h.issuer == scope);
                if !self.is_due(head, now) || issuer.info.not_after() <= now {
                    continue;
                }
                let result = self.publish(state, issuer, shard, fence).await;
                let fenced = matches!(result, Err(CrlError::Fenced(_)));
                // A fenced write is not a failure: another replica publishes now.
                if !fenced {
                    state.metrics.job_ran(crate::jobs::CRL_JOB, result.is_ok());
                }
                results.push((scope, result));
                if fenced {
                    return results;
                }
            }
        }
        results
    }

    /// Builds, signs and publishes the next CRL of `issuer` (of its shard `shard`)
    /// under `fence`; returns its number.
    pub async fn publish(
        &self,
        state: &AppState,
        issuer: &Issuer,
        shard: Option<u8>,
        fence: Option<&Fence>,
    ) -> Result<u64, CrlError> {
        let started = std::time::Instant::now();
        let scope = crl_scope(&issuer.name, shard);
        for _ in 0..3 {
            let head = state.store.crl_head(&scope).await?;
            let (last_number, expired_after) = match &head {
                Some(head) if head.last_number > 0 => (head.last_number, head.last_this_update),
                _ => (0, OffsetDateTime::UNIX_EPOCH),
            };
            // A clock that went backwards (or a replica whose clock lags) never dates a
            // CRL before the last one: thisUpdate only moves forward.
            let clock = OffsetDateTime::now_utc();
            let now = if clock < expired_after {
                tracing::warn!(
                    issuer = %scope,
                    behind_seconds = (expired_after - clock).whole_seconds(),
                    "the clock is behind the last CRL's thisUpdate; dating the CRL at that time"
                );
                expired_after
            } else {
                clock
            };
            let (revision, entries) = state.store.revoked_for_crl(&scope, expired_after).await?;
            let number = last_number + 1;
            let this_update = now;
            let next_update = (now + self.validity).min(issuer.info.not_after());
            let revoked = entries
                .iter()
                .map(|entry| {
                    Ok(RevokedCertificate {
                        serial: carimbo_pki::SerialNumber::from_hex(&entry.serial).map_err(
                            |e| CrlError::Build(format!("serial {}: {e}", entry.serial)),
                        )?,
                        revocation_time: entry.revoked_at,
                        reason: RevocationReason::from_code(entry.reason)
                            .filter(|r| *r != RevocationReason::Unspecified),
                    })
                })
                .collect::<Result<Vec<_>, CrlError>>()?;
            drop(entries);
            let count = revoked.len() as u64;
            let template = CrlTemplate {
                kind: CrlKind::Crl,
                crl_number: number,
                this_update,
                next_update,
                revoked,
                issuing_distribution_point: Some(crl_url(
                    &state.publication_url,
                    &issuer.name,
                    shard,
                )),
            };
            // Building and linting a large CRL takes CPU time: off the async workers.
            let info = issuer.info.clone();
            let prepared = tokio::task::spawn_blocking(move || prepare_crl(&template, &info, now))
                .await
                .map_err(|e| CrlError::Build(format!("CRL of {}: {e}", issuer.name)))?
                .map_err(|e| CrlError::Build(format!("CRL of {}: {e}", issuer.name)))?;
            let der = prepared
                .sign(issuer.key.as_ref())
                .await
                .map_err(|e| CrlError::Build(format!("signing the CRL of {}: {e}", issuer.name)))?;
            let crl = StoredCrl {
                issuer: scope.clone(),
                number,
                this_update: carimbo_pki_whole_seconds(this_update),
                next_update: carimbo_pki_whole_seconds(next_update),
                der,
                entries: count,
                published_at: OffsetDateTime::now_utc(),
            };
            if count > 0 && crate::failpoint("crl-stop-before-publish") {
                crate::stop_once_for_test("crl-stop-before-publish");
            }
            match state.store.publish_crl(&crl, revision, fence).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => continue,
                Err(StoreError::Fenced(why)) => return Err(CrlError::Fenced(why)),
                Err(error) => return Err(error.into()),
            }
            self.remember(&scope, &crl);
            if let Some(directory) = &self.directory {
                // The same layout as the URLs: {issuer}.crl, or {issuer}/{shard}.crl.
                let path = directory.join(format!("{scope}.crl"));
                if let Some(parent) = path.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let written =
                    carimbo_kms::PendingFile::create(&path, 0o644).and_then(|mut file| {
                        std::io::Write::write_all(file.file(), &crl.der)
                            .map_err(|e| carimbo_kms::Error::io("write", &path, e))?;
                        file.commit()
                    });
                if let Err(error) = written {
                    tracing::warn!(path = %path.display(), error = %error, "could not write the CRL copy");
                }
            }
            let _ = state
                .audit(json!({
                    "type": "crl.published",
                    "issuer": issuer.name,
                    "shard": shard,
                    "number": number,
                    "entries": count,
                    "this_update": crl.this_update.unix_timestamp(),
                    "next_update": crl.next_update.unix_timestamp(),
                    "lease": fence.map(|f| json!({"holder": f.holder, "fence": f.token})),
                }))
                .await;
            tracing::info!(
                issuer = %issuer.name,
                shard = ?shard,
                number,
                entries = count,
                bytes = crl.der.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "CRL published"
            );
            return Ok(number);
        }
        Err(CrlError::Contended)
    }

    /// Publishes what is due, if this replica holds the CRL job's lease.
    pub async fn publish_due_if_leader(&self, state: &AppState) {
        let Some(fence) = state.leases.fence(crate::jobs::CRL_JOB) else {
            return;
        };
        for (issuer, result) in self.publish_due(state, Some(&fence)).await {
            match result {
                Ok(_) => {}
                Err(CrlError::Fenced(why)) => {
                    tracing::warn!(issuer = %issuer, why = %why, "CRL not published: fenced");
                    state.leases.lost(crate::jobs::CRL_JOB);
                }
                Err(error) => {
                    tracing::error!(issuer = %issuer, error = %error, "CRL publication failed");
                }
            }
        }
    }

    /// The publisher loop: while this replica holds the CRL job's lease, publishes
    /// what is due every `max(1s, crl-debounce)` (revocations made through any
    /// replica mark their issuer dirty in the database), and within `crl-debounce` of
    /// a revocation on this replica; loads what other replicas published.
    pub async fn run(
        self: Arc<Self>,
        state: Arc<AppState>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let tick = self.debounce.max(std::time::Duration::from_secs(1));
        loop {
            self.publish_due_if_leader(&state).await;
            if let Err(error) = self.load_published(&state).await {
                tracing::warn!(error = %error, "reading published CRLs failed");
            }
            let woken_by_revocation = tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(tick) => false,
                () = self.dirty.notified() => true,
            };
            if woken_by_revocation {
                // Let a burst of revocations land in the same CRL.
                tokio::time::sleep(self.debounce).await;
            }
            if *stop.borrow() {
                return;
            }
        }
    }
}

fn carimbo_pki_whole_seconds(time: OffsetDateTime) -> OffsetDateTime {
    time.replace_nanosecond(0).unwrap_or(time)
}
