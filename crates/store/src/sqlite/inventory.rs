//! [`KmsInventoryStore`] for [`SqliteStore`] (schema in `0007_kms_inventory.sql`).

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use super::leases::check_fence;
use super::{SqliteStore, column, sequence_column};
use crate::validate::{check_inventory_row, time_from, unix};
use crate::{Fence, InventoryCount, InventoryRow, KmsInventoryStore, KmsJob, StoreError};

fn version_column(row: &SqliteRow, name: &str) -> Result<u32, StoreError> {
    u32::try_from(sequence_column(row, name)?)
        .map_err(|_| StoreError::Corrupt(format!("{name}: out of range")))
}

fn row_from(row: &SqliteRow) -> Result<InventoryRow, StoreError> {
    Ok(InventoryRow {
        id: column(row, "id")?,
        key_name: column(row, "key_name")?,
        key_version: version_column(row, "key_version")?,
        provider: column(row, "provider")?,
        wrapped_key: column(row, "wrapped_key")?,
        context: column(row, "context")?,
        attempts: version_column(row, "attempts")?,
        last_error: column(row, "last_error")?,
        dead: column::<i64>(row, "dead")? != 0,
        updated_at: time_from(column(row, "updated_at")?, "updated_at")?,
    })
}

fn job_from(row: &SqliteRow) -> Result<KmsJob, StoreError> {
    Ok(KmsJob {
        id: column(row, "id")?,
        key_name: column(row, "key_name")?,
        target_version: version_column(row, "target_version")?,
        target_provider: column(row, "target_provider")?,
        state: column(row, "state")?,
        total: sequence_column(row, "total")?,
        done: sequence_column(row, "done")?,
        dead: sequence_column(row, "dead")?,
        started_at: time_from(column(row, "started_at")?, "started_at")?,
        updated_at: time_from(column(row, "updated_at")?, "updated_at")?,
    })
}

#[async_trait]
impl KmsInventoryStore for SqliteStore {
    async fn put_inventory(&self, rows: &[InventoryRow]) -> Result<(), StoreError> {
        for row in rows {
            check_inventory_row(row)?;
        }
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO kms_inventory (id, key_name, key_version, provider, wrapped_key, \
                 context, attempts, last_error, dead, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, 0, NULL, 0, ?) \
                 ON CONFLICT (id) DO UPDATE SET key_name = excluded.key_name, \
                 key_version = excluded.key_version, provider = excluded.provider, \
                 wrapped_key = excluded.wrapped_key, context = excluded.context, \
                 attempts = 0, last_error = NULL, dead = 0, updated_at = excluded.updated_at",
            )
            .bind(&row.id)
            .bind(&row.key_name)
            .bind(i64::from(row.key_version))
            .bind(&row.provider)
            .bind(&row.wrapped_key)
            .bind(&row.context)
            .bind(unix(row.updated_at))
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn inventory_row(&self, id: &str) -> Result<Option<InventoryRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, key_name, key_version, provider, wrapped_key, context, attempts, \
             last_error, dead, updated_at FROM kms_inventory WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(row_from).transpose()
    }

    async fn inventory_to_move(
        &self,
        key_name: &str,
        version: u32,
        after_id: &str,
        limit: u32,
    ) -> Result<Vec<InventoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, key_name, key_version, provider, wrapped_key, context, attempts, \
             last_error, dead, updated_at FROM kms_inventory \
             WHERE key_name = ? AND key_version <> ? AND dead = 0 AND id > ? \
             ORDER BY id LIMIT ?",
        )
        .bind(key_name)
        .bind(i64::from(version))
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(row_from).collect()
    }

    async fn move_inventory_row(
        &self,
        id: &str,
        from_version: u32,
        (to, fence): (&InventoryRow, Option<&Fence>),
    ) -> Result<bool, StoreError> {
        check_inventory_row(to)?;
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        check_fence(&mut transaction, fence).await?;
        let moved = sqlx::query(
            "UPDATE kms_inventory SET key_version = ?, provider = ?, wrapped_key = ?, \
             attempts = 0, last_error = NULL, updated_at = ? \
             WHERE id = ? AND key_version = ? AND dead = 0",
        )
        .bind(i64::from(to.key_version))
        .bind(&to.provider)
        .bind(&to.wrapped_key)
        .bind(unix(to.updated_at))
        .bind(id)
        .bind(i64::from(from_version))
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        transaction.commit().await?;
        Ok(moved == 1)
    }

    async fn fail_inventory_row(
        &self,
        id: &str,
        error: &str,
        dead: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE kms_inventory SET attempts = attempts + 1, last_error = ?, \
             dead = MAX(dead, ?), updated_at = ? WHERE id = ?",
        )
        .bind(error)
        .bind(i64::from(dead))
        .bind(unix(OffsetDateTime::now_utc()))
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn inventory_counts(
        &self,
        key_name: Option<&str>,
    ) -> Result<Vec<InventoryCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_name, key_version, provider, \
             SUM(CASE WHEN dead = 0 THEN 1 ELSE 0 END) AS live, \
             SUM(CASE WHEN dead = 1 THEN 1 ELSE 0 END) AS dead \
             FROM kms_inventory WHERE (? IS NULL OR key_name = ?) \
             GROUP BY key_name, key_version, provider ORDER BY key_name, key_version, provider",
        )
        .bind(key_name)
        .bind(key_name)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(InventoryCount {
                    key_name: column(row, "key_name")?,
                    key_version: version_column(row, "key_version")?,
                    provider: column(row, "provider")?,
                    live: sequence_column(row, "live")?,
                    dead: sequence_column(row, "dead")?,
                })
            })
            .collect()
    }

    async fn put_kms_job(&self, job: &KmsJob) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kms_jobs (id, key_name, target_version, target_provider, state, total, \
             done, dead, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, total = excluded.total, \
             done = excluded.done, dead = excluded.dead, updated_at = excluded.updated_at",
        )
        .bind(&job.id)
        .bind(&job.key_name)
        .bind(i64::from(job.target_version))
        .bind(&job.target_provider)
        .bind(&job.state)
        .bind(i64::try_from(job.total).unwrap_or(i64::MAX))
        .bind(i64::try_from(job.done).unwrap_or(i64::MAX))
        .bind(i64::try_from(job.dead).unwrap_or(i64::MAX))
        .bind(unix(job.started_at))
        .bind(unix(job.updated_at))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn kms_job(&self, id: &str) -> Result<Option<KmsJob>, StoreError> {
        let row = sqlx::query(
            "SELECT id, key_name, target_version, target_provider, state, total, done, dead, \
             started_at, updated_at FROM kms_jobs WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(job_from).transpose()
    }

    async fn running_kms_job(&self, key_name: &str) -> Result<Option<KmsJob>, StoreError> {
        let row = sqlx::query(
            "SELECT id, key_name, target_version, target_provider, state, total, done, dead, \
             started_at, updated_at FROM kms_jobs WHERE key_name = ? AND state = 'running' \
             ORDER BY started_at DESC LIMIT 1",
        )
        .bind(key_name)
        .fetch_optional(&self.reader)
        .await?;
        row.as_ref().map(job_from).transpose()
    }
}
