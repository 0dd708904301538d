//! Signed audit chain heads and chain listing for [`PostgresStore`] (schema in
//! `0008_audit_heads.sql`).

use sqlx::postgres::PgRow;

use super::{PostgresStore, audit_event_from_row, column, sequence_column};
use crate::validate::{check_audit_head, is_unique_violation, time_from, unix};
use crate::{SignedAuditHead, StoreError, StoredAuditEvent};

fn head_from_row(row: &PgRow) -> Result<SignedAuditHead, StoreError> {
    let hex_column = |name: &str| -> Result<Vec<u8>, StoreError> {
        hex::decode(column::<String>(row, name)?)
            .map_err(|_| StoreError::Corrupt(format!("audit head {name}: not hex")))
    };
    Ok(SignedAuditHead {
        chain: column(row, "chain")?,
        sequence: sequence_column(row, "sequence")?,
        hash: column(row, "hash")?,
        signed_at: time_from(column(row, "signed_at")?, "signed_at")?,
        key_reference: column(row, "key_reference")?,
        algorithm: column(row, "algorithm")?,
        public_key: hex_column("public_key")?,
        signature: hex_column("signature")?,
    })
}

impl PostgresStore {
    pub(super) async fn audit_chain_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT chain FROM audit_events ORDER BY chain")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub(super) async fn last_event_of(
        &self,
        chain: &str,
    ) -> Result<Option<StoredAuditEvent>, StoreError> {
        sqlx::query(
            "SELECT chain, sequence, previous_hash, hash, event, recorded_at FROM audit_events \
             WHERE chain = $1 ORDER BY sequence DESC LIMIT 1",
        )
        .bind(chain)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(audit_event_from_row)
        .transpose()
    }

    pub(super) async fn last_event_of_type(
        &self,
        chain: &str,
        event_type: &str,
    ) -> Result<Option<StoredAuditEvent>, StoreError> {
        // Events are stored as canonical JSON, so the type appears literally; a match
        // inside a nested object is filtered out below.
        let pattern = format!("%\"type\":{}%", serde_json::Value::from(event_type));
        let rows = sqlx::query(
            "SELECT chain, sequence, previous_hash, hash, event, recorded_at FROM audit_events \
             WHERE chain = $1 AND event LIKE $2 ORDER BY sequence DESC LIMIT 20",
        )
        .bind(chain)
        .bind(pattern)
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let event = audit_event_from_row(row)?;
            if event.event.get("type").and_then(|t| t.as_str()) == Some(event_type) {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    pub(super) async fn insert_head(&self, head: &SignedAuditHead) -> Result<(), StoreError> {
        let sequence = check_audit_head(head)?;
        let inserted = sqlx::query(
            "INSERT INTO audit_heads (chain, sequence, hash, signed_at, key_reference, \
             algorithm, public_key, signature) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&head.chain)
        .bind(sequence)
        .bind(&head.hash)
        .bind(unix(head.signed_at))
        .bind(&head.key_reference)
        .bind(&head.algorithm)
        .bind(hex::encode(&head.public_key))
        .bind(hex::encode(&head.signature))
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "audit chain {:?} already has a signed head at sequence {}",
                head.chain, head.sequence
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn heads_of(&self, chain: &str) -> Result<Vec<SignedAuditHead>, StoreError> {
        sqlx::query(
            "SELECT chain, sequence, hash, signed_at, key_reference, algorithm, public_key, \
             signature FROM audit_heads WHERE chain = $1 ORDER BY sequence",
        )
        .bind(chain)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(head_from_row)
        .collect()
    }
}
