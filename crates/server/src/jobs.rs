//! Leases of the scheduled jobs, so that each runs on one replica at a time (DESIGN §7).
//!
//! A replica runs a job only while it holds the job's lease row in the database and
//! its own clock says the lease has not lapsed; every write the job makes carries the
//! lease's fencing token, which the store checks inside the write's transaction. A
//! replica that dies stops renewing and another takes over when the lease lapses
//! (within `jobs.lease-ttl`). A replica that stalls (paused, swapped out, cut off) and
//! wakes up after the takeover still believes for an instant that it leads, but its
//! writes carry the old fence and are refused: a stale leader cannot publish.

use std::collections::HashMap;
use std::sync::Mutex;

use carimbo_store::{Fence, Store, StoreError};
use time::OffsetDateTime;
use tokio::time::Instant;

/// The CRL publication job.
pub const CRL_JOB: &str = "crl";
/// The OCSP refresh job (re-signing stored answers before they go stale).
pub const OCSP_REFRESH_JOB: &str = "ocsp-refresh";
/// Scheduled rotation of KMS keys.
pub const KMS_ROTATION_JOB: &str = "kms-rotation";
/// The lease keeper (takes and renews the leases of the jobs above); a metrics name
/// only, it holds no lease itself.
pub const LEASE_KEEPER_JOB: &str = "lease-keeper";
/// The revocation-log poll that drops cached OCSP answers (every replica); a metrics
/// name only.
pub const REVOCATION_LOG_JOB: &str = "revocation-log";
/// OCSP responder rotation (every replica, for its own responders); a metrics name only.
pub const OCSP_RESPONDERS_JOB: &str = "ocsp-responders";

#[derive(Debug)]
struct Held {
    fence: Fence,
    /// The lease lapses at this local instant unless renewed: the renewal's start plus
    /// the TTL, so the local view never outlasts the database's.
    until: Instant,
}

/// This replica's job leases.
#[derive(Debug)]
pub struct JobLeases {
    holder: String,
    ttl: time::Duration,
    held: Mutex<HashMap<&'static str, Held>>,
}

impl JobLeases {
    /// Leases held under a holder name unique to this process: the audit chain name
    /// (one per replica) and a random suffix, so a restarted replica is a new holder
    /// and its first lease is a takeover with a new fence.
    pub fn new(audit_chain: &str, ttl: time::Duration) -> Self {
        let mut suffix = [0u8; 4];
        // A failure leaves zeros: the name stays unique enough with the process id.
        let _ = aws_lc_rs::rand::fill(&mut suffix);
        Self {
            holder: format!(
                "{audit_chain}/{}-{}",
                std::process::id(),
                hex::encode(suffix)
            ),
            ttl,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Who this replica is in the lease table.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// How often held leases are renewed (a third of the TTL).
    pub fn renew_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            u64::try_from(self.ttl.whole_milliseconds() / 3).unwrap_or(1000),
        )
    }

    /// The fence of `job` if this replica holds its lease and it has not lapsed.
    pub fn fence(&self, job: &str) -> Option<Fence> {
        let held = self.held.lock().ok()?;
        held.get(job)
            .filter(|held| held.until > Instant::now())
            .map(|held| held.fence.clone())
    }

    /// Takes or renews the lease of `job`; returns its fence if held afterwards.
    /// Logs when the lease is taken (with its new fence) or lost.
    pub async fn refresh(
        &self,
        store: &dyn Store,
        job: &'static str,
    ) -> Result<Option<Fence>, StoreError> {
        let started = Instant::now();
        // On an error, what is held stays until it lapses locally: a failed renewal
        // does not make the lease lapse earlier in the database either.
        let lease = store
            .acquire_lease(job, &self.holder, OffsetDateTime::now_utc(), self.ttl)
            .await?;
        let ttl = std::time::Duration::from_millis(
            u64::try_from(self.ttl.whole_milliseconds()).unwrap_or(0),
        );
        let Ok(mut held) = self.held.lock() else {
            return Ok(None);
        };
        match lease {
            Some(lease) => {
                let fence = lease.fence;
                let taken = held.get(job).is_none_or(|h| h.fence != fence);
                if taken {
                    tracing::info!(job, holder = %self.holder, fence = fence.token, "job lease taken");
                }
                held.insert(
                    job,
                    Held {
                        fence: fence.clone(),
                        until: started + ttl,
                    },
                );
                Ok(Some(fence))
            }
            None => {
                if let Some(lost) = held.remove(job) {
                    tracing::warn!(
                        job,
                        fence = lost.fence.token,
                        "job lease lost to another replica"
                    );
                }
                Ok(None)
            }
        }
    }

    /// Forgets the lease of `job` after one of its writes was fenced: another replica
    /// holds it now.
    pub fn lost(&self, job: &str) {
        if let Ok(mut held) = self.held.lock()
            && let Some(lost) = held.remove(job)
        {
            tracing::warn!(
                job,
                fence = lost.fence.token,
                "job lease lost: a write was fenced, another replica runs the job"
            );
        }
    }

    /// Releases every held lease (at shutdown), so another replica takes the jobs
    /// over at once instead of after the TTL.
    pub async fn release_all(&self, store: &dyn Store) {
        let fences: Vec<Fence> = match self.held.lock() {
            Ok(mut held) => held.drain().map(|(_, held)| held.fence).collect(),
            Err(_) => return,
        };
        for fence in fences {
            if let Err(error) = store.release_lease(&fence, OffsetDateTime::now_utc()).await {
                tracing::warn!(job = %fence.job, error = %error, "releasing the job lease failed");
            }
        }
    }
}
