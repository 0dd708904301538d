//! [`JobLeaseStore`] for [`SqliteStore`] (schema in `0005_job_leases.sql`), and the
//! fence check the jobs' writes run inside their transactions.

use async_trait::async_trait;
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use super::{SqliteStore, column, sequence_column};
use crate::validate::{
    check_lease_request, stale_fence, stored_u64, time_from_millis, unix_millis,
};
use crate::{Fence, JobLease, JobLeaseStore, StoreError};

fn lease_from_row(job: &str, row: &SqliteRow) -> Result<JobLease, StoreError> {
    Ok(JobLease {
        fence: Fence {
            job: job.to_owned(),
            holder: column(row, "holder")?,
            token: sequence_column(row, "fence")?,
        },
        acquired_at: time_from_millis(column(row, "acquired_at")?, "acquired_at")?,
        expires_at: time_from_millis(column(row, "expires_at")?, "expires_at")?,
    })
}

/// Refuses with [`StoreError::Fenced`] unless `fence` is the current fence of its job.
/// Run inside the write's `BEGIN IMMEDIATE` transaction: no takeover can commit
/// between this check and the write.
pub(super) async fn check_fence(
    connection: &mut SqliteConnection,
    fence: Option<&Fence>,
) -> Result<(), StoreError> {
    let Some(fence) = fence else {
        return Ok(());
    };
    let current: Option<(String, i64)> =
        sqlx::query_as("SELECT holder, fence FROM job_leases WHERE job = ?")
            .bind(&fence.job)
            .fetch_optional(&mut *connection)
            .await?;
    match &current {
        Some((holder, token))
            if *holder == fence.holder && u64::try_from(*token).ok() == Some(fence.token) =>
        {
            Ok(())
        }
        _ => Err(stale_fence(fence, current)),
    }
}

#[async_trait]
impl JobLeaseStore for SqliteStore {
    async fn acquire_lease(
        &self,
        job: &str,
        holder: &str,
        now: OffsetDateTime,
        ttl: time::Duration,
    ) -> Result<Option<JobLease>, StoreError> {
        let (now, expires) = check_lease_request(job, holder, now, ttl)?;
        // One statement: a renewal keeps the fence, a takeover of a lapsed lease bumps
        // it, a running lease of another holder matches no row.
        let row = sqlx::query(
            "INSERT INTO job_leases (job, holder, fence, acquired_at, expires_at) \
             VALUES (?1, ?2, 1, ?3, ?4) \
             ON CONFLICT (job) DO UPDATE SET \
             fence = CASE WHEN job_leases.holder = excluded.holder \
                     THEN job_leases.fence ELSE job_leases.fence + 1 END, \
             acquired_at = CASE WHEN job_leases.holder = excluded.holder \
                     THEN job_leases.acquired_at ELSE excluded.acquired_at END, \
             holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= ?3 \
             RETURNING holder, fence, acquired_at, expires_at",
        )
        .bind(job)
        .bind(holder)
        .bind(now)
        .bind(expires)
        .fetch_optional(&self.writer)
        .await?;
        row.map(|row| lease_from_row(job, &row)).transpose()
    }

    async fn release_lease(&self, fence: &Fence, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE job_leases SET expires_at = ? WHERE job = ? AND holder = ? AND fence = ?",
        )
        .bind(unix_millis(now))
        .bind(&fence.job)
        .bind(&fence.holder)
        .bind(stored_u64(fence.token, "fence")?)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn job_lease(&self, job: &str) -> Result<Option<JobLease>, StoreError> {
        let row = sqlx::query(
            "SELECT holder, fence, acquired_at, expires_at FROM job_leases WHERE job = ?",
        )
        .bind(job)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| lease_from_row(job, &row)).transpose()
    }

    async fn live_leases(
        &self,
        prefix: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<JobLease>, StoreError> {
        let length = i64::try_from(prefix.chars().count())
            .map_err(|_| StoreError::Invalid("lease prefix: too long".into()))?;
        let rows = sqlx::query(
            "SELECT job, holder, fence, acquired_at, expires_at FROM job_leases \
             WHERE substr(job, 1, ?) = ? AND expires_at > ? ORDER BY job",
        )
        .bind(length)
        .bind(prefix)
        .bind(unix_millis(now))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| lease_from_row(&column::<String>(row, "job")?, row))
            .collect()
    }
}
