//! [`KmsGrantStore`] for [`SqliteStore`] (schema in `0006_kms_grants.sql`).

use async_trait::async_trait;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use super::{SqliteStore, column};
use crate::validate::{
    check_kms_grant, is_unique_violation, names_from_json, names_to_json, optional_time_from,
    time_from, unix,
};
use crate::{KmsGrant, KmsGrantStore, StoreError};

fn grant_from_row(row: &SqliteRow) -> Result<KmsGrant, StoreError> {
    Ok(KmsGrant {
        id: column(row, "id")?,
        identity: column(row, "identity")?,
        keys: names_from_json(&column::<String>(row, "keys")?, "keys")?,
        operations: names_from_json(&column::<String>(row, "operations")?, "operations")?,
        not_before: time_from(column(row, "not_before")?, "not_before")?,
        not_after: time_from(column(row, "not_after")?, "not_after")?,
        created_by: column(row, "created_by")?,
        created_at: time_from(column(row, "created_at")?, "created_at")?,
        revoked_at: optional_time_from(column(row, "revoked_at")?, "revoked_at")?,
    })
}

#[async_trait]
impl KmsGrantStore for SqliteStore {
    async fn insert_kms_grant(&self, grant: &KmsGrant) -> Result<(), StoreError> {
        check_kms_grant(grant)?;
        let inserted = sqlx::query(
            "INSERT INTO kms_grants (id, identity, keys, operations, not_before, not_after, \
             created_by, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        )
        .bind(&grant.id)
        .bind(&grant.identity)
        .bind(names_to_json(&grant.keys)?)
        .bind(names_to_json(&grant.operations)?)
        .bind(unix(grant.not_before))
        .bind(unix(grant.not_after))
        .bind(&grant.created_by)
        .bind(unix(grant.created_at))
        .execute(&self.writer)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::Conflict(format!("grant {} exists", grant.id)))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn revoke_kms_grant(&self, id: &str, at: OffsetDateTime) -> Result<(), StoreError> {
        let updated =
            sqlx::query("UPDATE kms_grants SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?")
                .bind(unix(at))
                .bind(id)
                .execute(&self.writer)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn live_kms_grants(&self, now: OffsetDateTime) -> Result<Vec<KmsGrant>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, identity, keys, operations, not_before, not_after, created_by, \
             created_at, revoked_at FROM kms_grants \
             WHERE revoked_at IS NULL AND not_after > ? AND not_before <= ? ORDER BY id",
        )
        .bind(unix(now))
        .bind(unix(now))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    async fn kms_grants(&self, limit: u32) -> Result<Vec<KmsGrant>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, identity, keys, operations, not_before, not_after, created_by, \
             created_at, revoked_at FROM kms_grants \
             ORDER BY created_at DESC, id LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }
}
