//! [`OperationsStore`] for [`SqliteStore`]: read-only queries over existing indexes.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::SqliteStore;
use crate::validate::{time_from, unix};
use crate::{OcspStaleness, OperationsStore, PoolStatus, StoreError};

#[async_trait]
impl OperationsStore for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn count_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        // Per issuer, the range of the index certificates_issuer_status.
        let (count,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM certificates \
             WHERE status = 'issued' AND not_after > ? AND not_after <= ?",
        )
        .bind(unix(from))
        .bind(unix(until))
        .fetch_one(&self.reader)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn stalest_ocsp_response(
        &self,
        now: OffsetDateTime,
    ) -> Result<Option<OcspStaleness>, StoreError> {
        // In the order of the index ocsp_responses_refresh: the first live one is it.
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT o.issuer, o.this_update, o.next_update FROM ocsp_responses AS o \
             JOIN certificates AS c ON c.serial = o.serial \
             WHERE c.not_after > ? \
             ORDER BY o.this_update + (o.next_update - o.this_update) / 2 LIMIT 1",
        )
        .bind(unix(now))
        .fetch_optional(&self.reader)
        .await?;
        row.map(|(issuer, this_update, next_update)| {
            Ok(OcspStaleness {
                issuer,
                this_update: time_from(this_update, "this_update")?,
                next_update: time_from(next_update, "next_update")?,
            })
        })
        .transpose()
    }

    fn pool_status(&self) -> PoolStatus {
        let mut status = PoolStatus::default();
        let pools = if self.path.is_some() {
            vec![&self.writer, &self.reader]
        } else {
            vec![&self.writer]
        };
        for pool in pools {
            status.open += pool.size();
            status.idle += u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
            status.max += pool.options().get_max_connections();
        }
        status
    }
}
