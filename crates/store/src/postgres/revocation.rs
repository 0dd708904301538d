//! [`RevocationStore`] for [`PostgresStore`]: revocation, CRL heads and published CRLs,
//! stored OCSP answers and OCSP responders (schema in `0003_revocation.sql`).

use async_trait::async_trait;
use sqlx::QueryBuilder;
use sqlx::postgres::{PgConnection, PgRow, Postgres};
use time::OffsetDateTime;

use super::leases::check_fence;
use super::record_columns;
use super::{
    PostgresStore, column, lock_key, optional_reason_column, record_from_row, sequence_column,
};
use crate::validate::{
    KEY_COMPROMISE, check_crl, check_crl_head, check_filter, check_ocsp_response, check_reason,
    check_responder, check_sha256_hex, is_unique_violation, optional_time_from, reason_from,
    serial_argument, states_current, stored_u64, time_from, unix,
};
use crate::{
    CertificateFilter, CertificateRecord, CertificateStatus, CrlHead, DueOcspResponse, Fence,
    OcspResponderRecord, RevocationLogEntry, RevocationOutcome, RevocationStore, RevokedEntry,
    StoreError, StoredCrl, StoredOcspResponse,
};

/// Reads a SMALLINT CRLReason column that cannot be NULL.
fn reason_column(row: &PgRow, name: &str) -> Result<u8, StoreError> {
    reason_from(i64::from(column::<i16>(row, name)?))
}

/// The record of `serial`, read on the connection of an open transaction.
async fn record_in(
    connection: &mut PgConnection,
    serial: &str,
) -> Result<CertificateRecord, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        record_columns!(),
        " FROM certificates WHERE serial = $1"
    ))
    .bind(serial)
    .fetch_optional(connection)
    .await?
    .ok_or(StoreError::NotFound)?;
    record_from_row(&row)
}

fn head_from_row(row: &PgRow) -> Result<CrlHead, StoreError> {
    Ok(CrlHead {
        issuer: column(row, "issuer")?,
        last_number: sequence_column(row, "last_number")?,
        last_this_update: time_from(column(row, "last_this_update")?, "last_this_update")?,
        last_next_update: time_from(column(row, "last_next_update")?, "last_next_update")?,
        revision: sequence_column(row, "revision")?,
        published_revision: sequence_column(row, "published_revision")?,
    })
}

fn crl_from_row(row: &PgRow) -> Result<StoredCrl, StoreError> {
    Ok(StoredCrl {
        issuer: column(row, "issuer")?,
        number: sequence_column(row, "number")?,
        this_update: time_from(column(row, "this_update")?, "this_update")?,
        next_update: time_from(column(row, "next_update")?, "next_update")?,
        der: column(row, "der")?,
        entries: sequence_column(row, "entries")?,
        published_at: time_from(column(row, "published_at")?, "published_at")?,
    })
}

fn ocsp_response_from_row(row: &PgRow) -> Result<StoredOcspResponse, StoreError> {
    Ok(StoredOcspResponse {
        serial: column(row, "serial")?,
        issuer: column(row, "issuer")?,
        cert_id_hash: column(row, "cert_id_hash")?,
        cert_status: column::<String>(row, "cert_status")?.parse()?,
        revocation_reason: optional_reason_column(row, "revocation_reason")?,
        this_update: time_from(column(row, "this_update")?, "this_update")?,
        next_update: time_from(column(row, "next_update")?, "next_update")?,
        der: column(row, "der")?,
        responder: column(row, "responder")?,
        stored_at: time_from(column(row, "stored_at")?, "stored_at")?,
    })
}

fn log_entry_from_row(row: &PgRow) -> Result<RevocationLogEntry, StoreError> {
    Ok(RevocationLogEntry {
        id: sequence_column(row, "id")?,
        serial: column(row, "serial")?,
        issuer: column(row, "issuer")?,
        reason: reason_column(row, "reason")?,
        revoked_at: time_from(column(row, "revoked_at")?, "revoked_at")?,
    })
}

fn responder_from_row(row: &PgRow) -> Result<OcspResponderRecord, StoreError> {
    Ok(OcspResponderRecord {
        serial: column(row, "serial")?,
        issuer: column(row, "issuer")?,
        key_reference: column(row, "key_reference")?,
        algorithm: column(row, "algorithm")?,
        certificate: column(row, "certificate")?,
        not_before: time_from(column(row, "not_before")?, "not_before")?,
        not_after: time_from(column(row, "not_after")?, "not_after")?,
        created_at: time_from(column(row, "created_at")?, "created_at")?,
        key_destroyed_at: optional_time_from(column(row, "key_destroyed_at")?, "key_destroyed_at")?,
    })
}

/// A CRL entry decoded while the query streams, so a million-row CRL holds its entries
/// once, not its rows as well.
struct RevokedRow(RevokedEntry);

impl<'r> sqlx::FromRow<'r, PgRow> for RevokedRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        let entry = (|| {
            Ok::<_, StoreError>(RevokedEntry {
                serial: column(row, "serial")?,
                revoked_at: time_from(column(row, "revoked_at")?, "revoked_at")?,
                reason: reason_column(row, "revocation_reason")?,
            })
        })();
        entry
            .map(Self)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }
}

/// Undoes the wrapping of [`RevokedRow::from_row`]: a store error comes back as itself.
fn unwrap_decode_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Decode(inner) => match inner.downcast::<StoreError>() {
            Ok(store_error) => *store_error,
            Err(other) => StoreError::Corrupt(other.to_string()),
        },
        other => other.into(),
    }
}

#[async_trait]
impl RevocationStore for PostgresStore {
    async fn revoke(
        &self,
        serial: &str,
        reason: u8,
        revoked_at: OffsetDateTime,
    ) -> Result<RevocationOutcome, StoreError> {
        check_reason(reason)?;
        let serial = serial_argument(serial)?;
        let mut transaction = self.pool.begin().await?;
        // Revocations run one at a time (every replica), from before the log id is
        // drawn until the commit: ids then appear in commit order, so a replica polling
        // `revocations_after` never steps over an id that commits later, and an
        // issuer's head revision only grows. Taken first, before any row lock (see the
        // module's lock order).
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(lock_key("revocation-log", ""))
            .execute(&mut *transaction)
            .await?;
        // The row lock makes a concurrent OCSP store (which holds a share lock while it
        // checks the status) finish before, or start after, this revocation.
        let row = sqlx::query(
            "SELECT status, issuer, subject_key_sha256, revoked_at, revocation_reason, \
             crl_shard FROM certificates WHERE serial = $1 FOR NO KEY UPDATE",
        )
        .bind(&serial)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or(StoreError::NotFound)?;
        let status: CertificateStatus = column::<String>(&row, "status")?.parse()?;
        let issuer: String = column(&row, "issuer")?;
        // The CRL the certificate names: its issuer's, or one shard of it.
        let scope = crate::crl_scope(
            &issuer,
            column::<Option<i16>>(&row, "crl_shard")?
                .map(|shard| {
                    u8::try_from(shard)
                        .map_err(|_| StoreError::Corrupt(format!("crl_shard {shard} out of range")))
                })
                .transpose()?,
        );
        let subject_key: String = column(&row, "subject_key_sha256")?;
        let logged_revoked_at: i64 = match status {
            CertificateStatus::Pending | CertificateStatus::Failed => {
                return Err(StoreError::Conflict(format!(
                    "certificate {serial} is {status}: it was never issued"
                )));
            }
            CertificateStatus::Issued => {
                sqlx::query(
                    "UPDATE certificates SET status = 'revoked', revoked_at = $1, \
                     revocation_reason = $2 WHERE serial = $3 AND status = 'issued'",
                )
                .bind(unix(revoked_at))
                .bind(i16::from(reason))
                .bind(&serial)
                .execute(&mut *transaction)
                .await?;
                unix(revoked_at)
            }
            CertificateStatus::Revoked => {
                let current = reason_column(&row, "revocation_reason")?;
                if reason != KEY_COMPROMISE || current == KEY_COMPROMISE {
                    // The first revocation stands; nothing to write.
                    let record = record_in(&mut transaction, &serial).await?;
                    transaction.rollback().await?;
                    return Ok(RevocationOutcome {
                        record,
                        changed: false,
                        log_id: None,
                    });
                }
                // The key turned out to be compromised: the reason changes, the
                // revocation time stays.
                sqlx::query("UPDATE certificates SET revocation_reason = $1 WHERE serial = $2")
                    .bind(i16::from(reason))
                    .bind(&serial)
                    .execute(&mut *transaction)
                    .await?;
                column(&row, "revoked_at")?
            }
        };
        // Same transaction: no reader can see the revoked status and still be served a
        // stored `good`.
        // The answers go, their latest thisUpdate stays: later answers never
        // predate it.
        sqlx::query(
            "INSERT INTO ocsp_floors (serial, this_update) \
             SELECT serial, max(this_update) FROM ocsp_responses WHERE serial = $1 \
             GROUP BY serial \
             ON CONFLICT (serial) DO UPDATE SET \
             this_update = GREATEST(ocsp_floors.this_update, excluded.this_update)",
        )
        .bind(&serial)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM ocsp_responses WHERE serial = $1")
            .bind(&serial)
            .execute(&mut *transaction)
            .await?;
        let recorded_at = unix(OffsetDateTime::now_utc());
        let log_id: i64 = sqlx::query_scalar(
            "INSERT INTO revocation_log (serial, issuer, reason, revoked_at, recorded_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(&serial)
        .bind(&issuer)
        .bind(i16::from(reason))
        .bind(logged_revoked_at)
        .bind(recorded_at)
        .fetch_one(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO crl_heads (issuer, last_number, last_this_update, last_next_update, \
             revision, published_revision) VALUES ($1, 0, 0, 0, $2, 0) \
             ON CONFLICT (issuer) DO UPDATE SET revision = excluded.revision",
        )
        .bind(&scope)
        .bind(log_id)
        .execute(&mut *transaction)
        .await?;
        if reason == KEY_COMPROMISE {
            sqlx::query(
                "INSERT INTO blocked_keys (subject_key_sha256, serial, blocked_at) \
                 VALUES ($1, $2, $3) ON CONFLICT (subject_key_sha256) DO NOTHING",
            )
            .bind(&subject_key)
            .bind(&serial)
            .bind(recorded_at)
            .execute(&mut *transaction)
            .await?;
        }
        let record = record_in(&mut transaction, &serial).await?;
        transaction.commit().await?;
        let log_id = u64::try_from(log_id)
            .map_err(|_| StoreError::Corrupt(format!("revocation log id {log_id} negative")))?;
        Ok(RevocationOutcome {
            record,
            changed: true,
            log_id: Some(log_id),
        })
    }

    async fn find_certificates(
        &self,
        filter: &CertificateFilter,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let subject_key = check_filter(filter)?;
        let mut query = QueryBuilder::<Postgres>::new(concat!(
            "SELECT ",
            record_columns!(),
            " FROM certificates WHERE status IN ('issued', 'revoked')"
        ));
        if let Some(issuer) = &filter.issuer {
            query.push(" AND issuer = ").push_bind(issuer.clone());
        }
        if let Some(provisioner) = &filter.provisioner {
            query
                .push(" AND provisioner = ")
                .push_bind(provisioner.clone());
        }
        if let Some(san) = &filter.san {
            // `?` on a jsonb array: the name is one of its string elements, exactly.
            query
                .push(" AND (certificates.sans::jsonb ? ")
                .push_bind(san.clone())
                .push(")");
        }
        if let Some(key) = subject_key {
            query.push(" AND subject_key_sha256 = ").push_bind(key);
        }
        if let Some(lineage) = &filter.lineage {
            query.push(" AND lineage = ").push_bind(lineage.clone());
        }
        if let Some(from) = filter.issued_from {
            query.push(" AND issued_at >= ").push_bind(unix(from));
        }
        if let Some(until) = filter.issued_until {
            query.push(" AND issued_at < ").push_bind(unix(until));
        }
        if !filter.include_revoked {
            query.push(" AND status = 'issued'");
        }
        if let Some(at) = filter.unexpired_at {
            query.push(" AND not_after > ").push_bind(unix(at));
        }
        if let Some(at) = filter.expires_before {
            query.push(" AND not_after < ").push_bind(unix(at));
        }
        if let Some(serial) = &filter.serial {
            query
                .push(" AND serial = ")
                .push_bind(serial.to_ascii_lowercase());
        }
        if let Some((issued_at, serial)) = &filter.after {
            query
                .push(" AND (issued_at > ")
                .push_bind(unix(*issued_at))
                .push(" OR (issued_at = ")
                .push_bind(unix(*issued_at))
                .push(" AND serial > ")
                .push_bind(serial.clone())
                .push("))");
        }
        query
            .push(" ORDER BY issued_at, serial LIMIT ")
            .push_bind(i64::from(filter.limit));
        query
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(record_from_row)
            .collect()
    }

    async fn is_key_blocked(&self, subject_key_sha256: &str) -> Result<bool, StoreError> {
        let key = subject_key_sha256.to_ascii_lowercase();
        check_sha256_hex(&key, "subject key hash")?;
        let row = sqlx::query("SELECT 1 FROM blocked_keys WHERE subject_key_sha256 = $1")
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn revocations_after(
        &self,
        after_id: u64,
        limit: u32,
    ) -> Result<Vec<RevocationLogEntry>, StoreError> {
        let Ok(after) = i64::try_from(after_id) else {
            return Ok(Vec::new());
        };
        sqlx::query(
            "SELECT id, serial, issuer, reason, revoked_at FROM revocation_log \
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(log_entry_from_row)
        .collect()
    }

    async fn last_revocation_id(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS id FROM revocation_log")
            .fetch_one(&self.pool)
            .await?;
        sequence_column(&row, "id")
    }

    async fn crl_head(&self, issuer: &str) -> Result<Option<CrlHead>, StoreError> {
        sqlx::query(
            "SELECT issuer, last_number, last_this_update, last_next_update, revision, \
             published_revision FROM crl_heads WHERE issuer = $1",
        )
        .bind(issuer)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(head_from_row)
        .transpose()
    }

    async fn revoked_for_crl(
        &self,
        issuer: &str,
        expired_after: OffsetDateTime,
    ) -> Result<(u64, Vec<RevokedEntry>), StoreError> {
        // One snapshot for both reads: a revocation commits its status change and its
        // revision together, so the pair is consistent.
        let mut transaction = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?;
        let revision: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM crl_heads WHERE issuer = $1")
                .bind(issuer)
                .fetch_optional(&mut *transaction)
                .await?;
        let revision = u64::try_from(revision.unwrap_or(0))
            .map_err(|_| StoreError::Corrupt("crl_heads.revision: negative".into()))?;
        // A range over certificates_issuer_status (issuer, status, not_after), sorted by
        // serial ("C" collation: bytewise).
        let (certificate_issuer, shard) = crate::split_crl_scope(issuer);
        let rows: Vec<RevokedRow> = sqlx::query_as(
            "SELECT serial, revoked_at, revocation_reason FROM certificates \
             WHERE issuer = $1 AND status = 'revoked' AND not_after >= $2 \
             AND crl_shard IS NOT DISTINCT FROM $3 ORDER BY serial",
        )
        .bind(certificate_issuer)
        .bind(unix(expired_after))
        .bind(shard.map(i16::from))
        .fetch_all(&mut *transaction)
        .await
        .map_err(unwrap_decode_error)?;
        transaction.commit().await?;
        Ok((revision, rows.into_iter().map(|row| row.0).collect()))
    }

    async fn publish_crl(
        &self,
        crl: &StoredCrl,
        revision: u64,
        fence: Option<&Fence>,
    ) -> Result<(), StoreError> {
        let (number, entries) = check_crl(crl)?;
        let stored_revision = stored_u64(revision, "CRL revision")?;

        let mut transaction = self.pool.begin().await?;
        check_fence(&mut transaction, fence).await?;
        // The head row must exist to be locked; creating it here is undone with the
        // transaction if the publication is refused.
        sqlx::query(
            "INSERT INTO crl_heads (issuer, last_number, last_this_update, last_next_update, \
             revision, published_revision) VALUES ($1, 0, 0, 0, 0, 0) \
             ON CONFLICT (issuer) DO NOTHING",
        )
        .bind(&crl.issuer)
        .execute(&mut *transaction)
        .await?;
        // Compare-and-swap under the row lock: a concurrent publisher (any replica)
        // waits here and then reads the number this one committed.
        let head = sqlx::query(
            "SELECT last_number, revision, published_revision FROM crl_heads \
             WHERE issuer = $1 FOR UPDATE",
        )
        .bind(&crl.issuer)
        .fetch_one(&mut *transaction)
        .await?;
        check_crl_head(
            crl,
            revision,
            (
                sequence_column(&head, "last_number")?,
                sequence_column(&head, "revision")?,
                sequence_column(&head, "published_revision")?,
            ),
        )?;
        let inserted = sqlx::query(
            "INSERT INTO crls (issuer, number, this_update, next_update, der, entries, \
             published_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&crl.issuer)
        .bind(number)
        .bind(unix(crl.this_update))
        .bind(unix(crl.next_update))
        .bind(&crl.der)
        .bind(entries)
        .bind(unix(crl.published_at))
        .execute(&mut *transaction)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "CRL number {} of issuer {:?} exists",
                    crl.number, crl.issuer
                )));
            }
            Err(e) => return Err(e.into()),
        }
        sqlx::query(
            "UPDATE crl_heads SET last_number = $2, last_this_update = $3, \
             last_next_update = $4, published_revision = $5 WHERE issuer = $1",
        )
        .bind(&crl.issuer)
        .bind(number)
        .bind(unix(crl.this_update))
        .bind(unix(crl.next_update))
        .bind(stored_revision)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn latest_crl(&self, issuer: &str) -> Result<Option<StoredCrl>, StoreError> {
        sqlx::query(
            "SELECT issuer, number, this_update, next_update, der, entries, published_at \
             FROM crls WHERE issuer = $1 ORDER BY number DESC LIMIT 1",
        )
        .bind(issuer)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(crl_from_row)
        .transpose()
    }

    async fn crl_heads(&self) -> Result<Vec<CrlHead>, StoreError> {
        sqlx::query(
            "SELECT issuer, last_number, last_this_update, last_next_update, revision, \
             published_revision FROM crl_heads ORDER BY issuer",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(head_from_row)
        .collect()
    }

    async fn ocsp_response(
        &self,
        serial: &str,
        cert_id_hash: &str,
    ) -> Result<Option<StoredOcspResponse>, StoreError> {
        let serial = serial_argument(serial)?;
        sqlx::query(
            "SELECT serial, cert_id_hash, issuer, cert_status, revocation_reason, this_update, \
             next_update, der, responder, stored_at FROM ocsp_responses \
             WHERE serial = $1 AND cert_id_hash = $2",
        )
        .bind(&serial)
        .bind(cert_id_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(ocsp_response_from_row)
        .transpose()
    }

    async fn ocsp_this_update_floor(
        &self,
        serial: &str,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let serial = serial_argument(serial)?;
        let floor: Option<i64> = sqlx::query_scalar(
            "SELECT max(this_update) FROM (\
             SELECT this_update FROM ocsp_responses WHERE serial = $1 \
             UNION ALL SELECT this_update FROM ocsp_floors WHERE serial = $2) AS answers",
        )
        .bind(&serial)
        .bind(&serial)
        .fetch_one(&self.pool)
        .await?;
        floor.map(|at| time_from(at, "this_update")).transpose()
    }

    async fn store_ocsp_response(
        &self,
        response: &StoredOcspResponse,
        fence: Option<&Fence>,
    ) -> Result<bool, StoreError> {
        check_ocsp_response(response)?;
        let mut transaction = self.pool.begin().await?;
        check_fence(&mut transaction, fence).await?;
        // FOR SHARE: a revocation's update of this row waits until this answer is
        // stored (and then deletes it), or this read waits for the revocation's commit
        // and sees the new status. Stores of several answers do not block each other.
        let row = sqlx::query(
            "SELECT status, issuer, revocation_reason FROM certificates \
             WHERE serial = $1 FOR SHARE",
        )
        .bind(&response.serial)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or(StoreError::NotFound)?;
        let issuer: String = column(&row, "issuer")?;
        if issuer != response.issuer {
            return Err(StoreError::Conflict(format!(
                "certificate {} was issued by {issuer:?}, not {:?}",
                response.serial, response.issuer
            )));
        }
        let status: CertificateStatus = column::<String>(&row, "status")?.parse()?;
        let reason: Option<i64> = column::<Option<i16>>(&row, "revocation_reason")?.map(i64::from);
        if !states_current(status, reason, response) {
            return Ok(false);
        }
        // The freshness check is part of the upsert: it runs on the locked, latest
        // version of a stored answer, so of two concurrent stores the newer one stays.
        let written = sqlx::query(
            "INSERT INTO ocsp_responses (serial, cert_id_hash, issuer, cert_status, \
             revocation_reason, this_update, next_update, der, responder, stored_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (serial, cert_id_hash) DO UPDATE SET issuer = excluded.issuer, \
             cert_status = excluded.cert_status, revocation_reason = excluded.revocation_reason, \
             this_update = excluded.this_update, next_update = excluded.next_update, \
             der = excluded.der, responder = excluded.responder, stored_at = excluded.stored_at \
             WHERE ocsp_responses.this_update <= excluded.this_update",
        )
        .bind(&response.serial)
        .bind(&response.cert_id_hash)
        .bind(&response.issuer)
        .bind(response.cert_status.as_str())
        .bind(response.revocation_reason.map(i16::from))
        .bind(unix(response.this_update))
        .bind(unix(response.next_update))
        .bind(&response.der)
        .bind(&response.responder)
        .bind(unix(response.stored_at))
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        if written == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }
        transaction.commit().await?;
        Ok(true)
    }

    async fn ocsp_responses_due(
        &self,
        now: OffsetDateTime,
        include_missing: bool,
        limit: u32,
    ) -> Result<Vec<DueOcspResponse>, StoreError> {
        let now = unix(now);
        // The refresh time is written exactly as in the index ocsp_responses_refresh,
        // so the range and the order come from it.
        let mut due: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT o.serial, o.issuer, o.cert_id_hash FROM ocsp_responses AS o \
             JOIN certificates AS c ON c.serial = o.serial \
             WHERE o.this_update + (o.next_update - o.this_update) / 2 <= $1 \
             AND c.not_after > $1 \
             ORDER BY o.this_update + (o.next_update - o.this_update) / 2 LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let remaining = u64::from(limit).saturating_sub(due.len() as u64);
        if include_missing && remaining > 0 {
            let missing: Vec<(String, String, Option<String>)> = sqlx::query_as(
                "SELECT c.serial, c.issuer, NULL::text FROM certificates AS c \
                 WHERE c.status = 'issued' AND c.not_after > $1 \
                 AND NOT EXISTS (SELECT 1 FROM ocsp_responses AS o WHERE o.serial = c.serial) \
                 ORDER BY c.issued_at, c.serial LIMIT $2",
            )
            .bind(now)
            .bind(i64::try_from(remaining).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
            due.extend(missing);
        }
        Ok(due
            .into_iter()
            .map(|(serial, issuer, cert_id_hash)| DueOcspResponse {
                serial,
                issuer,
                cert_id_hash,
            })
            .collect())
    }

    async fn insert_ocsp_responder(&self, record: &OcspResponderRecord) -> Result<(), StoreError> {
        check_responder(record)?;
        let result = sqlx::query(
            "INSERT INTO ocsp_responders (serial, issuer, key_reference, algorithm, certificate, \
             not_before, not_after, created_at, key_destroyed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&record.serial)
        .bind(&record.issuer)
        .bind(&record.key_reference)
        .bind(&record.algorithm)
        .bind(&record.certificate)
        .bind(unix(record.not_before))
        .bind(unix(record.not_after))
        .bind(unix(record.created_at))
        .bind(record.key_destroyed_at.map(unix))
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                "OCSP responder {} exists",
                record.serial
            ))),
            Err(e) => Err(e.into()),
        }
    }

    async fn ocsp_responders(&self, issuer: &str) -> Result<Vec<OcspResponderRecord>, StoreError> {
        sqlx::query(
            "SELECT serial, issuer, key_reference, algorithm, certificate, not_before, \
             not_after, created_at, key_destroyed_at FROM ocsp_responders \
             WHERE issuer = $1 ORDER BY not_after DESC, serial",
        )
        .bind(issuer)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(responder_from_row)
        .collect()
    }

    async fn mark_responder_key_destroyed(
        &self,
        serial: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let serial = serial_argument(serial)?;
        let updated = sqlx::query(
            "UPDATE ocsp_responders SET key_destroyed_at = $1 \
             WHERE serial = $2 AND key_destroyed_at IS NULL",
        )
        .bind(unix(at))
        .bind(&serial)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(());
        }
        // Already destroyed (the first time stays), or no such responder.
        sqlx::query("SELECT 1 FROM ocsp_responders WHERE serial = $1")
            .bind(&serial)
            .fetch_optional(&self.pool)
            .await?
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }
}
