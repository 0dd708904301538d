//! The rewrap job: moves every inventory row of a key to one version — after a
//! rotation, or to a version in another provider (file → HSM → AWS KMS) — one row at a
//! time, resumable after a crash.
//!
//! The target is the key's primary version; when it lives in another provider than the
//! one asked for, the job first adds a version there and makes it primary, so new data
//! keys already go to the new provider while old rows are moved (the old versions stay
//! readable: applications keep working during the move). Each row is unwrapped with
//! its version, wrapped with the target, and stored with a conditional update (only if
//! still under the old version) carrying the job lease's fence: a killed job resumes
//! where it stopped, two jobs never interleave, and no row is rewrapped twice.
//! Transient failures (provider throttling, timeouts, I/O) are retried with exponential
//! backoff and jitter; a row that keeps failing, or fails for good (unauthentic,
//! wrong context), goes to the dead letter with its error.

use std::time::{Duration, Instant};

use carimbo_kms::envelope::Headers;
use carimbo_kms::{Caller, Error as KmsCoreError, KeyName};
use carimbo_store::{Fence, InventoryRow, KmsJob, Store, StoreError};
use futures_util::StreamExt;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::kms_api::{KmsService, context_from_json};

/// How a migration runs.
#[derive(Clone, Debug)]
pub struct MigrateOptions {
    /// Key whose rows move.
    pub key: KeyName,
    /// Provider the rows must end up in.
    pub to_provider: String,
    /// Only report what would move.
    pub dry_run: bool,
    /// Rewraps per second at most (0: unlimited), to spare the providers. A provider
    /// with a `[kms.rate-limits]` entry also caps it at its share of that limit.
    pub rate: u32,
    /// Rows rewrapped at once (network providers answer in milliseconds, so a few
    /// requests in flight multiply the rate).
    pub concurrency: usize,
    /// Attempts per row before the dead letter, for transient failures.
    pub max_attempts: u32,
    /// Who runs it (lease holder and audit actor).
    pub holder: String,
    /// The job lease's TTL: a job that died is taken over this long after its last
    /// renewal (renewed every third of it).
    pub lease_ttl: time::Duration,
}

/// What a migration did or would do.
#[derive(Clone, Debug)]
pub struct MigrateReport {
    /// The job (absent for a dry run).
    pub job: Option<KmsJob>,
    /// Target version.
    pub target_version: Option<u32>,
    /// Rows that would move (dry run) or were left to move at the start.
    pub to_move: u64,
}

/// Why a migration stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The store failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// The keyring refused (unknown key, unknown provider, ...).
    #[error("{0}")]
    Kms(#[from] KmsCoreError),
    /// Another job holds this key's lease.
    #[error("another migration of {0} is running ({1})")]
    Busy(String, String),
}

/// Spaces rewraps out to a rate that can change while the job runs (the provider's
/// budget is shared with the other jobs writing to it).
#[derive(Debug)]
struct Pacer {
    next: tokio::sync::Mutex<Instant>,
    /// Nanoseconds between two rewraps; 0: unlimited.
    interval_nanos: std::sync::atomic::AtomicU64,
}

impl Pacer {
    fn new() -> Self {
        Self {
            next: tokio::sync::Mutex::new(Instant::now()),
            interval_nanos: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Sets the rate in rewraps per second (0 or less: unlimited).
    fn set_rate(&self, per_second: f64) {
        let nanos = if per_second > 0.0 {
            (1e9 / per_second) as u64
        } else {
            0
        };
        self.interval_nanos
            .store(nanos, std::sync::atomic::Ordering::Relaxed);
    }

    /// Waits for the next slot.
    async fn wait(&self) {
        let interval = self
            .interval_nanos
            .load(std::sync::atomic::Ordering::Relaxed);
        if interval == 0 {
            return;
        }
        // Held while sleeping: slots are handed out one at a time, in order.
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep_until((*next).into()).await;
        }
        *next = (*next).max(now) + Duration::from_nanos(interval);
    }
}

/// The lease that makes a job count in its target provider's shared budget.
fn budget_lease(provider: &str, holder: &str, key: &KeyName) -> String {
    format!("{}{holder}/{key}", budget_prefix(provider))
}

fn budget_prefix(provider: &str) -> String {
    format!("kms-provider/{provider}/")
}

/// This job's rate: its share of the provider's limit (the limit over the jobs holding
/// a budget lease), and at most `--rate`.
async fn refresh_rate(
    kms: &KmsService,
    store: &dyn Store,
    options: &MigrateOptions,
    pacer: &Pacer,
) -> Result<(), MigrateError> {
    let own = options.rate;
    let Some(limit) = kms.rate_limit(&options.to_provider) else {
        pacer.set_rate(f64::from(own));
        return Ok(());
    };
    let now = OffsetDateTime::now_utc();
    let lease = budget_lease(&options.to_provider, &options.holder, &options.key);
    store
        .acquire_lease(&lease, &options.holder, now, options.lease_ttl)
        .await?;
    let jobs = store
        .live_leases(&budget_prefix(&options.to_provider), now)
        .await?
        .len()
        .max(1);
    let share = f64::from(limit) / jobs as f64;
    let rate = if own > 0 {
        share.min(f64::from(own))
    } else {
        share
    };
    tracing::debug!(provider = %options.to_provider, jobs, rate, "migration rate");
    pacer.set_rate(rate);
    Ok(())
}

/// A job's progress as JSON (API and CLI).
pub fn job_json(job: &KmsJob) -> Value {
    let rfc3339 = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    json!({
        "id": job.id,
        "key": job.key_name,
        "target_version": job.target_version,
        "target_provider": job.target_provider,
        "state": job.state,
        "total": job.total,
        "done": job.done,
        "dead": job.dead,
        "started_at": rfc3339(job.started_at),
        "updated_at": rfc3339(job.updated_at),
    })
}

fn is_permanent(error: &KmsCoreError) -> bool {
    matches!(
        error,
        KmsCoreError::Unauthentic(_)
            | KmsCoreError::ContextMismatch
            | KmsCoreError::Malformed(_)
            | KmsCoreError::UnsupportedEnvelope(_)
            | KmsCoreError::KeyNotFound(_)
            | KmsCoreError::VersionNotFound { .. }
            | KmsCoreError::VersionUnavailable { .. }
            | KmsCoreError::WrongPurpose { .. }
            | KmsCoreError::InvalidKeyName { .. }
    )
}

fn jitter(base: Duration) -> Duration {
    let mut byte = [0u8; 1];
    let _ = aws_lc_rs::rand::fill(&mut byte);
    // Between half and the whole of base.
    base / 2 + base.mul_f64(f64::from(byte[0]) / 510.0)
}

/// Runs (or resumes) the migration of `options.key` to `options.to_provider`,
/// reporting progress through `progress` after every page of rows.
pub async fn migrate(
    kms: &KmsService,
    store: &dyn Store,
    options: &MigrateOptions,
    mut progress: impl FnMut(&KmsJob),
) -> Result<MigrateReport, MigrateError> {
    let ring = kms.keyring();
    let caller = Caller::new(options.holder.clone());
    let name = &options.key;
    let record = ring.describe(name).await?;
    let primary = record.version(record.primary_version)?;
    let target_ready = primary.reference.provider == options.to_provider;
    let count_to_move = |target: u32| async move {
        let counts = store.inventory_counts(Some(name.as_str())).await?;
        Ok::<u64, StoreError>(
            counts
                .iter()
                .filter(|c| c.key_version != target)
                .map(|c| c.live)
                .sum(),
        )
    };
    if options.dry_run {
        let target = target_ready.then_some(record.primary_version);
        let to_move = count_to_move(target.unwrap_or(0)).await?;
        return Ok(MigrateReport {
            job: None,
            target_version: target,
            to_move,
        });
    }

    let lease_job = format!("kms-rewrap/{name}");
    let lease_ttl = options.lease_ttl;
    let acquire = || async {
        store
            .acquire_lease(
                &lease_job,
                &options.holder,
                OffsetDateTime::now_utc(),
                lease_ttl,
            )
            .await
    };
    let mut lease = acquire().await?;
    if lease.is_none() {
        // A job that died leaves its lease until it lapses; one that runs renews it.
        if let Some(held) = store.job_lease(&lease_job).await? {
            let left = held.expires_at - OffsetDateTime::now_utc();
            if left <= lease_ttl + time::Duration::seconds(1) {
                tracing::info!(holder = %held.fence.holder, "waiting for the previous job's lease to lapse");
                let wait = left.max(time::Duration::ZERO) + time::Duration::milliseconds(100);
                tokio::time::sleep(Duration::from_millis(
                    u64::try_from(wait.whole_milliseconds()).unwrap_or(0),
                ))
                .await;
                lease = acquire().await?;
            }
        }
    }
    let Some(mut lease) = lease else {
        let holder = store
            .job_lease(&lease_job)
            .await?
            .map(|l| l.fence.holder)
            .unwrap_or_default();
        return Err(MigrateError::Busy(name.to_string(), holder));
    };
    let target = if target_ready {
        record.primary_version
    } else {
        ring.rotate(&caller, name, Some(&options.to_provider))
            .await?
    };
    let to_move = count_to_move(target).await?;
    let all_rows: u64 = store
        .inventory_counts(Some(name.as_str()))
        .await?
        .iter()
        .map(|c| c.live + c.dead)
        .sum();
    let now = OffsetDateTime::now_utc();
    let mut job = match store.running_kms_job(name.as_str()).await? {
        Some(job) if job.target_version == target => job,
        Some(mut stale) => {
            // A job towards another version: superseded by this one.
            stale.state = "failed".into();
            stale.updated_at = now;
            store.put_kms_job(&stale).await?;
            new_job(name, target, &options.to_provider, to_move, now)
        }
        None => new_job(name, target, &options.to_provider, to_move, now),
    };
    // Counted from the inventory, so a resumed job reports rows moved before a crash.
    job.total = all_rows;
    job.done = all_rows.saturating_sub(to_move + job.dead);
    store.put_kms_job(&job).await?;
    progress(&job);

    let pacer = Pacer::new();
    refresh_rate(kms, store, options, &pacer).await?;
    let mut last_renewal = Instant::now();
    let mut after = String::new();
    loop {
        if last_renewal.elapsed().as_secs_f64() > lease_ttl.as_seconds_f64() / 3.0 {
            match acquire().await? {
                Some(renewed) => lease = renewed,
                None => return Err(MigrateError::Busy(name.to_string(), "lease lost".into())),
            }
            refresh_rate(kms, store, options, &pacer).await?;
            last_renewal = Instant::now();
        }
        let page = store
            .inventory_to_move(name.as_str(), target, &after, 200)
            .await?;
        let Some(last) = page.last() else {
            break;
        };
        after = last.id.clone();
        let fence = lease.fence.clone();
        let outcomes: Vec<Result<RowOutcome, MigrateError>> =
            futures_util::stream::iter(page.into_iter().map(|row| {
                let fence = fence.clone();
                let caller = &caller;
                let pacer = &pacer;
                async move {
                    pacer.wait().await;
                    move_row(
                        kms,
                        store,
                        caller,
                        &row,
                        target,
                        &options.to_provider,
                        &fence,
                        options.max_attempts,
                    )
                    .await
                }
            }))
            .buffer_unordered(options.concurrency.max(1))
            .collect()
            .await;
        for outcome in outcomes {
            match outcome? {
                RowOutcome::Moved => job.done += 1,
                RowOutcome::Skipped => {}
                RowOutcome::Dead => job.dead += 1,
            }
        }
        job.updated_at = OffsetDateTime::now_utc();
        store.put_kms_job(&job).await?;
        progress(&job);
    }
    job.state = "done".into();
    job.updated_at = OffsetDateTime::now_utc();
    store.put_kms_job(&job).await?;
    store
        .release_lease(&lease.fence, OffsetDateTime::now_utc())
        .await?;
    if kms.rate_limit(&options.to_provider).is_some() {
        let budget = budget_lease(&options.to_provider, &options.holder, name);
        if let Some(held) = store.job_lease(&budget).await? {
            store
                .release_lease(&held.fence, OffsetDateTime::now_utc())
                .await?;
        }
    }
    progress(&job);
    Ok(MigrateReport {
        job: Some(job),
        target_version: Some(target),
        to_move,
    })
}

fn new_job(name: &KeyName, target: u32, provider: &str, total: u64, now: OffsetDateTime) -> KmsJob {
    let mut id = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut id);
    KmsJob {
        id: hex::encode(id),
        key_name: name.to_string(),
        target_version: target,
        target_provider: provider.to_owned(),
        state: "running".into(),
        total,
        done: 0,
        dead: 0,
        started_at: now,
        updated_at: now,
    }
}

enum RowOutcome {
    Moved,
    /// Moved meanwhile by someone else (or changed): nothing to do.
    Skipped,
    Dead,
}

#[allow(clippy::too_many_arguments)]
async fn move_row(
    kms: &KmsService,
    store: &dyn Store,
    caller: &Caller,
    row: &InventoryRow,
    target: u32,
    provider: &str,
    fence: &Fence,
    max_attempts: u32,
) -> Result<RowOutcome, MigrateError> {
    let parsed = Headers::read_from(&mut row.wrapped_key.as_slice()).and_then(|headers| {
        Ok((
            headers,
            context_from_json(&row.context).map_err(KmsCoreError::Malformed)?,
        ))
    });
    let (headers, context) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            store
                .fail_inventory_row(&row.id, &error.to_string(), true)
                .await?;
            return Ok(RowOutcome::Dead);
        }
    };
    let mut attempt = 0;
    let rewrapped = loop {
        attempt += 1;
        match kms.keyring().rewrap(caller, &headers, &context).await {
            Ok(rewrapped) => break rewrapped,
            Err(error) if is_permanent(&error) || attempt >= max_attempts => {
                store
                    .fail_inventory_row(&row.id, &error.to_string(), true)
                    .await?;
                tracing::warn!(id = %row.id, error = %error, "inventory row set aside");
                return Ok(RowOutcome::Dead);
            }
            Err(error) => {
                store
                    .fail_inventory_row(&row.id, &error.to_string(), false)
                    .await?;
                let backoff = Duration::from_millis(50) * 2u32.saturating_pow(attempt - 1);
                tokio::time::sleep(jitter(backoff.min(Duration::from_secs(10)))).await;
            }
        }
    };
    if rewrapped.wrap.key_version != target {
        // The primary moved under us (another rotation): the next run picks it up.
        return Ok(RowOutcome::Skipped);
    }
    let mut wrapped_key = Vec::with_capacity(row.wrapped_key.len() + 64);
    rewrapped.write_to(&mut wrapped_key)?;
    let moved = InventoryRow {
        key_version: target,
        provider: provider.to_owned(),
        wrapped_key,
        attempts: 0,
        last_error: None,
        updated_at: OffsetDateTime::now_utc(),
        ..row.clone()
    };
    if store
        .move_inventory_row(&row.id, row.key_version, (&moved, Some(fence)))
        .await?
    {
        Ok(RowOutcome::Moved)
    } else {
        Ok(RowOutcome::Skipped)
    }
}
