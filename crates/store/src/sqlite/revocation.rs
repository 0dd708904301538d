//! [`RevocationStore`] for [`SqliteStore`]: revocation, CRL heads and published CRLs,
//! stored OCSP answers and OCSP responders (schema in `0003_revocation.sql`).

use async_trait::async_trait;
use sqlx::sqlite::{Sqlite, SqliteRow};
use sqlx::{QueryBuilder, SqliteConnection};
use time::OffsetDateTime;

use super::leases::check_fence;
use super::{SqliteStore, column, record_from_row, sequence_column};
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

/// The columns [`record_from_row`] reads (for queries built at run time).
const RECORD_COLUMNS: &str = "serial, issuer, profile, provisioner, lineage, requester, sans, \
     subject_key_sha256, not_before, not_after, status, certificate, failure_reason, \
     created_at, issued_at, revoked_at, revocation_reason";

fn reason_column(row: &SqliteRow, name: &str) -> Result<u8, StoreError> {
    reason_from(column(row, name)?)
}

/// The record of `serial`, read on the connection of an open transaction.
async fn record_in(
    connection: &mut SqliteConnection,
    serial: &str,
) -> Result<CertificateRecord, StoreError> {
    let row = sqlx::query(
        "SELECT serial, issuer, profile, provisioner, lineage, requester, sans, \
         subject_key_sha256, not_before, not_after, status, certificate, failure_reason, \
         created_at, issued_at, revoked_at, revocation_reason \
         FROM certificates WHERE serial = ?",
    )
    .bind(serial)
    .fetch_optional(connection)
    .await?
    .ok_or(StoreError::NotFound)?;
    record_from_row(&row)
}

fn head_from_row(row: &SqliteRow) -> Result<CrlHead, StoreError> {
    Ok(CrlHead {
        issuer: column(row, "issuer")?,
        last_number: sequence_column(row, "last_number")?,
        last_this_update: time_from(column(row, "last_this_update")?, "last_this_update")?,
        last_next_update: time_from(column(row, "last_next_update")?, "last_next_update")?,
        revision: sequence_column(row, "revision")?,
        published_revision: sequence_column(row, "published_revision")?,
    })
}

fn crl_from_row(row: &SqliteRow) -> Result<StoredCrl, StoreError> {
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

fn ocsp_response_from_row(row: &SqliteRow) -> Result<StoredOcspResponse, StoreError> {
    Ok(StoredOcspResponse {
        serial: column(row, "serial")?,
        issuer: column(row, "issuer")?,
        cert_id_hash: column(row, "cert_id_hash")?,
        cert_status: column::<String>(row, "cert_status")?.parse()?,
        revocation_reason: column::<Option<i64>>(row, "revocation_reason")?
            .map(reason_from)
            .transpose()?,
        this_update: time_from(column(row, "this_update")?, "this_update")?,
        next_update: time_from(column(row, "next_update")?, "next_update")?,
        der: column(row, "der")?,
        responder: column(row, "responder")?,
        stored_at: time_from(column(row, "stored_at")?, "stored_at")?,
    })
}

fn log_entry_from_row(row: &SqliteRow) -> Result<RevocationLogEntry, StoreError> {
    Ok(RevocationLogEntry {
        id: sequence_column(row, "id")?,
        serial: column(row, "serial")?,
        issuer: column(row, "issuer")?,
        reason: reason_column(row, "reason")?,
        revoked_at: time_from(column(row, "revoked_at")?, "revoked_at")?,
    })
}

fn responder_from_row(row: &SqliteRow) -> Result<OcspResponderRecord, StoreError> {
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

impl<'r> sqlx::FromRow<'r, SqliteRow> for RevokedRow {
    fn from_row(row: &'r SqliteRow) -> Result<Self, sqlx::Error> {
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
impl RevocationStore for SqliteStore {
    async fn revoke(
        &self,
        serial: &str,
        reason: u8,
        revoked_at: OffsetDateTime,
    ) -> Result<RevocationOutcome, StoreError> {
        check_reason(reason)?;
        let serial = serial_argument(serial)?;
        // IMMEDIATE: the write lock is held from the status read to the commit, so a
        // concurrent revocation or OCSP store (another process included) sees either
        // all of this or none of it.
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row = sqlx::query(
            "SELECT status, issuer, subject_key_sha256, revoked_at, revocation_reason, \
             crl_shard FROM certificates WHERE serial = ?",
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
            column::<Option<i64>>(&row, "crl_shard")?
                .map(|shard| {
                    u8::try_from(shard)
                        .map_err(|_| StoreError::Corrupt(format!("crl_shard {shard} out of range")))
                })
                .transpose()?,
        );
        let subject_key: String = column(&row, "subject_key_sha256")?;
        let logged_revoked_at = match status {
            CertificateStatus::Pending | CertificateStatus::Failed => {
                return Err(StoreError::Conflict(format!(
                    "certificate {serial} is {status}: it was never issued"
                )));
            }
            CertificateStatus::Issued => {
                sqlx::query(
                    "UPDATE certificates SET status = 'revoked', revoked_at = ?, \
                     revocation_reason = ? WHERE serial = ? AND status = 'issued'",
                )
                .bind(unix(revoked_at))
                .bind(i64::from(reason))
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
                sqlx::query("UPDATE certificates SET revocation_reason = ? WHERE serial = ?")
                    .bind(i64::from(reason))
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
             SELECT serial, max(this_update) FROM ocsp_responses WHERE serial = ? \
             GROUP BY serial \
             ON CONFLICT (serial) DO UPDATE SET \
             this_update = max(ocsp_floors.this_update, excluded.this_update)",
        )
        .bind(&serial)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM ocsp_responses WHERE serial = ?")
            .bind(&serial)
            .execute(&mut *transaction)
            .await?;
        let recorded_at = unix(OffsetDateTime::now_utc());
        let log_id: i64 = sqlx::query_scalar(
            "INSERT INTO revocation_log (serial, issuer, reason, revoked_at, recorded_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&serial)
        .bind(&issuer)
        .bind(i64::from(reason))
        .bind(logged_revoked_at)
        .bind(recorded_at)
        .fetch_one(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO crl_heads (issuer, last_number, last_this_update, last_next_update, \
             revision, published_revision) VALUES (?, 0, 0, 0, ?, 0) \
             ON CONFLICT (issuer) DO UPDATE SET revision = excluded.revision",
        )
        .bind(&scope)
        .bind(log_id)
        .execute(&mut *transaction)
        .await?;
        if reason == KEY_COMPROMISE {
            sqlx::query(
                "INSERT OR IGNORE INTO blocked_keys (subject_key_sha256, serial, blocked_at) \
                 VALUES (?, ?, ?)",
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

        let mut query = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {RECORD_COLUMNS} FROM certificates WHERE status IN ('issued', 'revoked')"
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
            query
                .push(
                    " AND EXISTS (SELECT 1 FROM json_each(certificates.sans) AS name \
                     WHERE name.value = ",
                )
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
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(record_from_row)
            .collect()
    }

    async fn is_key_blocked(&self, subject_key_sha256: &str) -> Result<bool, StoreError> {
        let key = subject_key_sha256.to_ascii_lowercase();
        check_sha256_hex(&key, "subject key hash")?;
        let row = sqlx::query("SELECT 1 FROM blocked_keys WHERE subject_key_sha256 = ?")
            .bind(&key)
            .fetch_optional(&self.reader)
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
             WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(log_entry_from_row)
        .collect()
    }

    async fn last_revocation_id(&self) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS id FROM revocation_log")
            .fetch_one(&self.reader)
            .await?;
        sequence_column(&row, "id")
    }

    async fn crl_head(&self, issuer: &str) -> Result<Option<CrlHead>, StoreError> {
        sqlx::query(
            "SELECT issuer, last_number, last_this_update, last_next_update, revision, \
             published_revision FROM crl_heads WHERE issuer = ?",
        )
        .bind(issuer)
        .fetch_optional(&self.reader)
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
        // One read transaction: the revision and the entries come from one snapshot.
        let mut transaction = self.reader.begin().await?;
        let revision: Option<i64> =
            sqlx::query_scalar("SELECT revision FROM crl_heads WHERE issuer = ?")
                .bind(issuer)
                .fetch_optional(&mut *transaction)
                .await?;
        let revision = u64::try_from(revision.unwrap_or(0))
            .map_err(|_| StoreError::Corrupt("crl_heads.revision: negative".into()))?;
        // INDEXED BY: a range scan of the issuer's revoked certificates, never a walk of
        // every certificate in serial order (which the planner might prefer, to skip the
        // sort).
        let (certificate_issuer, shard) = crate::split_crl_scope(issuer);
        let rows: Vec<RevokedRow> = sqlx::query_as(
            "SELECT serial, revoked_at, revocation_reason \
             FROM certificates INDEXED BY certificates_issuer_status \
             WHERE issuer = ? AND status = 'revoked' AND not_after >= ? AND crl_shard IS ? \
             ORDER BY serial",
        )
        .bind(certificate_issuer)
        .bind(unix(expired_after))
        .bind(shard.map(i64::from))
        .fetch_all(&mut *transaction)
        .await
        .map_err(unwrap_decode_error)?;
        transaction.commit().await?;
        // Same layout: the vector is reused in place.
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

        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        check_fence(&mut transaction, fence).await?;
        let head = sqlx::query(
            "SELECT last_number, revision, published_revision FROM crl_heads WHERE issuer = ?",
        )
        .bind(&crl.issuer)
        .fetch_optional(&mut *transaction)
        .await?;
        let (last_number, head_revision, published_revision) = match &head {
            Some(row) => (
                sequence_column(row, "last_number")?,
                sequence_column(row, "revision")?,
                sequence_column(row, "published_revision")?,
            ),
            None => (0, 0, 0),
        };
        check_crl_head(
            crl,
            revision,
            (last_number, head_revision, published_revision),
        )?;
        let inserted = sqlx::query(
            "INSERT INTO crls (issuer, number, this_update, next_update, der, entries, \
             published_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
            "INSERT INTO crl_heads (issuer, last_number, last_this_update, last_next_update, \
             revision, published_revision) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (issuer) DO UPDATE SET last_number = excluded.last_number, \
             last_this_update = excluded.last_this_update, \
             last_next_update = excluded.last_next_update, \
             published_revision = excluded.published_revision",
        )
        .bind(&crl.issuer)
        .bind(number)
        .bind(unix(crl.this_update))
        .bind(unix(crl.next_update))
        // A new head: its revision is 0, the only one `revision` can be (checked above).
        // CHECK constraints apply to this candidate row even when it becomes an update.
        .bind(stored_revision)
        .bind(stored_revision)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    async fn latest_crl(&self, issuer: &str) -> Result<Option<StoredCrl>, StoreError> {
        sqlx::query(
            "SELECT issuer, number, this_update, next_update, der, entries, published_at \
             FROM crls WHERE issuer = ? ORDER BY number DESC LIMIT 1",
        )
        .bind(issuer)
        .fetch_optional(&self.reader)
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
        .fetch_all(&self.reader)
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
             WHERE serial = ? AND cert_id_hash = ?",
        )
        .bind(&serial)
        .bind(cert_id_hash)
        .fetch_optional(&self.reader)
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
             SELECT this_update FROM ocsp_responses WHERE serial = ? \
             UNION ALL SELECT this_update FROM ocsp_floors WHERE serial = ?) AS answers",
        )
        .bind(&serial)
        .bind(&serial)
        .fetch_one(&self.reader)
        .await?;
        floor.map(|at| time_from(at, "this_update")).transpose()
    }

    async fn store_ocsp_response(
        &self,
        response: &StoredOcspResponse,
        fence: Option<&Fence>,
    ) -> Result<bool, StoreError> {
        check_ocsp_response(response)?;
        let mut transaction = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        check_fence(&mut transaction, fence).await?;
        let row = sqlx::query(
            "SELECT status, issuer, revocation_reason FROM certificates WHERE serial = ?",
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
        let reason: Option<i64> = column(&row, "revocation_reason")?;
        if !states_current(status, reason, response) {
            return Ok(false);
        }
        let stored_this_update: Option<i64> = sqlx::query_scalar(
            "SELECT this_update FROM ocsp_responses WHERE serial = ? AND cert_id_hash = ?",
        )
        .bind(&response.serial)
        .bind(&response.cert_id_hash)
        .fetch_optional(&mut *transaction)
        .await?;
        if stored_this_update.is_some_and(|stored| stored > unix(response.this_update)) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO ocsp_responses (serial, cert_id_hash, issuer, cert_status, \
             revocation_reason, this_update, next_update, der, responder, stored_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (serial, cert_id_hash) DO UPDATE SET issuer = excluded.issuer, \
             cert_status = excluded.cert_status, revocation_reason = excluded.revocation_reason, \
             this_update = excluded.this_update, next_update = excluded.next_update, \
             der = excluded.der, responder = excluded.responder, stored_at = excluded.stored_at",
        )
        .bind(&response.serial)
        .bind(&response.cert_id_hash)
        .bind(&response.issuer)
        .bind(response.cert_status.as_str())
        .bind(response.revocation_reason.map(i64::from))
        .bind(unix(response.this_update))
        .bind(unix(response.next_update))
        .bind(&response.der)
        .bind(&response.responder)
        .bind(unix(response.stored_at))
        .execute(&mut *transaction)
        .await?;
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
             WHERE o.this_update + (o.next_update - o.this_update) / 2 <= ? \
             AND c.not_after > ? \
             ORDER BY o.this_update + (o.next_update - o.this_update) / 2 LIMIT ?",
        )
        .bind(now)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let remaining = u64::from(limit).saturating_sub(due.len() as u64);
        if include_missing && remaining > 0 {
            let missing: Vec<(String, String, Option<String>)> = sqlx::query_as(
                "SELECT c.serial, c.issuer, NULL FROM certificates AS c \
                 WHERE c.status = 'issued' AND c.not_after > ? \
                 AND NOT EXISTS (SELECT 1 FROM ocsp_responses AS o WHERE o.serial = c.serial) \
                 ORDER BY c.issued_at, c.serial LIMIT ?",
            )
            .bind(now)
            .bind(i64::try_from(remaining).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        .execute(&self.writer)
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
             WHERE issuer = ? ORDER BY not_after DESC, serial",
        )
        .bind(issuer)
        .fetch_all(&self.reader)
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
            "UPDATE ocsp_responders SET key_destroyed_at = ? \
             WHERE serial = ? AND key_destroyed_at IS NULL",
        )
        .bind(unix(at))
        .bind(&serial)
        .execute(&self.writer)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(());
        }
        // Already destroyed (the first time stays), or no such responder.
        sqlx::query("SELECT 1 FROM ocsp_responders WHERE serial = ?")
            .bind(&serial)
            .fetch_optional(&self.writer)
            .await?
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }
}
