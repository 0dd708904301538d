//! [`AcmeStore`] for [`PostgresStore`] (schema in `0009_acme.sql`). Single-row state
//! changes are conditional updates (under READ COMMITTED the loser re-reads the row and
//! matches nothing); ending a challenge locks its order row first, so two challenges of
//! one order finishing on two replicas cannot both miss that the order became ready.

use async_trait::async_trait;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use super::{PostgresStore, column};
use crate::acme::{check_account, check_order, identifiers_from_json, identifiers_to_json};
use crate::validate::{
    is_unique_violation, names_from_json, names_to_json, optional_time_from, time_from, unix,
};
use crate::{
    AcmeAccount, AcmeAuthorization, AcmeChallenge, AcmeIdentifier, AcmeOrder, AcmeStore,
    ChallengeOutcome, StoreError,
};

const ACCOUNT_COLUMNS: &str =
    "id, thumbprint, jwk, contact, status, provisioner, profile, created_at";
const ORDER_COLUMNS: &str = "id, account_id, profile, status, identifiers, expires_at, error, \
                             certificate_serial, created_at";
const AUTHORIZATION_COLUMNS: &str =
    "id, order_id, account_id, identifier_type, identifier_value, status, expires_at";
const CHALLENGE_COLUMNS: &str = "id, authorization_id, type, token, status, validated_at, error";

fn account_from_row(row: &PgRow) -> Result<AcmeAccount, StoreError> {
    Ok(AcmeAccount {
        id: column(row, "id")?,
        thumbprint: column(row, "thumbprint")?,
        jwk: column(row, "jwk")?,
        contact: names_from_json(&column::<String>(row, "contact")?, "contact")?,
        status: column::<String>(row, "status")?.parse()?,
        provisioner: column(row, "provisioner")?,
        profile: column(row, "profile")?,
        created_at: time_from(column(row, "created_at")?, "created_at")?,
    })
}

fn order_from_row(row: &PgRow) -> Result<AcmeOrder, StoreError> {
    Ok(AcmeOrder {
        id: column(row, "id")?,
        account_id: column(row, "account_id")?,
        profile: column(row, "profile")?,
        status: column::<String>(row, "status")?.parse()?,
        identifiers: identifiers_from_json(&column::<String>(row, "identifiers")?)?,
        expires_at: time_from(column(row, "expires_at")?, "expires_at")?,
        error: column(row, "error")?,
        certificate_serial: column(row, "certificate_serial")?,
        created_at: time_from(column(row, "created_at")?, "created_at")?,
    })
}

fn authorization_from_row(row: &PgRow) -> Result<AcmeAuthorization, StoreError> {
    Ok(AcmeAuthorization {
        id: column(row, "id")?,
        order_id: column(row, "order_id")?,
        account_id: column(row, "account_id")?,
        identifier: AcmeIdentifier {
            kind: column(row, "identifier_type")?,
            value: column(row, "identifier_value")?,
        },
        status: column::<String>(row, "status")?.parse()?,
        expires_at: time_from(column(row, "expires_at")?, "expires_at")?,
        challenges: Vec::new(),
    })
}

fn challenge_from_row(row: &PgRow) -> Result<AcmeChallenge, StoreError> {
    Ok(AcmeChallenge {
        id: column(row, "id")?,
        authorization_id: column(row, "authorization_id")?,
        kind: column(row, "type")?,
        token: column(row, "token")?,
        status: column::<String>(row, "status")?.parse()?,
        validated_at: optional_time_from(column(row, "validated_at")?, "validated_at")?,
        error: column(row, "error")?,
    })
}

impl PostgresStore {
    async fn with_challenges(
        &self,
        mut authorization: AcmeAuthorization,
    ) -> Result<AcmeAuthorization, StoreError> {
        authorization.challenges = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHALLENGE_COLUMNS} FROM acme_challenges WHERE authorization_id = $1 \
             ORDER BY type, id"
        )))
        .bind(&authorization.id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(challenge_from_row)
        .collect::<Result<_, _>>()?;
        Ok(authorization)
    }
}

#[async_trait]
impl AcmeStore for PostgresStore {
    async fn insert_acme_nonce(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if nonce.is_empty() {
            return Err(StoreError::Invalid("nonce: empty".into()));
        }
        let inserted = sqlx::query("INSERT INTO acme_nonces (nonce, expires_at) VALUES ($1, $2)")
            .bind(nonce)
            .bind(unix(expires_at))
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict("nonce exists".into())),
            Err(e) => Err(e.into()),
        }
    }

    async fn consume_acme_nonce(
        &self,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let expires_at: Option<i64> =
            sqlx::query_scalar("DELETE FROM acme_nonces WHERE nonce = $1 RETURNING expires_at")
                .bind(nonce)
                .fetch_optional(&self.pool)
                .await?;
        Ok(expires_at.is_some_and(|expiry| expiry > unix(now)))
    }

    async fn prune_acme_nonces(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM acme_nonces WHERE expires_at <= $1")
                .bind(unix(now))
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    async fn create_acme_account(&self, account: &AcmeAccount) -> Result<(), StoreError> {
        check_account(account)?;
        let inserted = sqlx::query(
            "INSERT INTO acme_accounts (id, thumbprint, jwk, contact, status, provisioner, \
             profile, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&account.id)
        .bind(&account.thumbprint)
        .bind(&account.jwk)
        .bind(names_to_json(&account.contact)?)
        .bind(account.status.as_str())
        .bind(&account.provisioner)
        .bind(&account.profile)
        .bind(unix(account.created_at))
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(
                "an account with this id or key exists".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn acme_account(&self, id: &str) -> Result<Option<AcmeAccount>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM acme_accounts WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(account_from_row)
        .transpose()
    }

    async fn acme_account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccount>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM acme_accounts WHERE thumbprint = $1"
        )))
        .bind(thumbprint)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(account_from_row)
        .transpose()
    }

    async fn update_acme_account_contact(
        &self,
        id: &str,
        contact: &[String],
    ) -> Result<AcmeAccount, StoreError> {
        let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE acme_accounts SET contact = $1 WHERE id = $2 AND status = 'valid' \
             RETURNING {ACCOUNT_COLUMNS}"
        )))
        .bind(names_to_json(contact)?)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match updated {
            Some(row) => account_from_row(&row),
            None => match self.acme_account(id).await? {
                None => Err(StoreError::NotFound),
                Some(account) => Err(StoreError::Conflict(format!(
                    "the account is {}",
                    account.status
                ))),
            },
        }
    }

    async fn change_acme_account_key(
        &self,
        id: &str,
        old_thumbprint: &str,
        new_thumbprint: &str,
        new_jwk: &str,
    ) -> Result<AcmeAccount, StoreError> {
        if new_thumbprint.is_empty() || new_jwk.is_empty() {
            return Err(StoreError::Invalid("account key: empty".into()));
        }
        let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE acme_accounts SET thumbprint = $1, jwk = $2 \
             WHERE id = $3 AND thumbprint = $4 AND status = 'valid' \
             RETURNING {ACCOUNT_COLUMNS}"
        )))
        .bind(new_thumbprint)
        .bind(new_jwk)
        .bind(id)
        .bind(old_thumbprint)
        .fetch_optional(&self.pool)
        .await;
        match updated {
            Ok(Some(row)) => account_from_row(&row),
            Ok(None) => match self.acme_account(id).await? {
                None => Err(StoreError::NotFound),
                Some(account) => Err(StoreError::Conflict(format!(
                    "the account is {} or its key changed",
                    account.status
                ))),
            },
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(
                "another account holds this key".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn deactivate_acme_account(&self, id: &str) -> Result<AcmeAccount, StoreError> {
        let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE acme_accounts SET status = 'deactivated' \
             WHERE id = $1 AND status IN ('valid', 'deactivated') RETURNING {ACCOUNT_COLUMNS}"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match updated {
            Some(row) => account_from_row(&row),
            None => match self.acme_account(id).await? {
                None => Err(StoreError::NotFound),
                Some(account) => Err(StoreError::Conflict(format!(
                    "the account is {}",
                    account.status
                ))),
            },
        }
    }

    async fn create_acme_order(
        &self,
        order: &AcmeOrder,
        authorizations: &[AcmeAuthorization],
    ) -> Result<(), StoreError> {
        check_order(order, authorizations)?;
        let conflict = |e: sqlx::Error| {
            if is_unique_violation(&e) {
                StoreError::Conflict("an ACME object with this id exists".into())
            } else {
                e.into()
            }
        };
        let mut transaction = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO acme_orders (id, account_id, profile, status, identifiers, expires_at, \
             error, certificate_serial, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&order.id)
        .bind(&order.account_id)
        .bind(&order.profile)
        .bind(order.status.as_str())
        .bind(identifiers_to_json(&order.identifiers))
        .bind(unix(order.expires_at))
        .bind(&order.error)
        .bind(&order.certificate_serial)
        .bind(unix(order.created_at))
        .execute(&mut *transaction)
        .await
        .map_err(conflict)?;
        for authorization in authorizations {
            sqlx::query(
                "INSERT INTO acme_authorizations (id, order_id, account_id, identifier_type, \
                 identifier_value, status, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&authorization.id)
            .bind(&authorization.order_id)
            .bind(&authorization.account_id)
            .bind(&authorization.identifier.kind)
            .bind(&authorization.identifier.value)
            .bind(authorization.status.as_str())
            .bind(unix(authorization.expires_at))
            .execute(&mut *transaction)
            .await
            .map_err(conflict)?;
            for challenge in &authorization.challenges {
                sqlx::query(
                    "INSERT INTO acme_challenges (id, authorization_id, type, token, status, \
                     validated_at, error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&challenge.id)
                .bind(&challenge.authorization_id)
                .bind(&challenge.kind)
                .bind(&challenge.token)
                .bind(challenge.status.as_str())
                .bind(challenge.validated_at.map(unix))
                .bind(&challenge.error)
                .execute(&mut *transaction)
                .await
                .map_err(conflict)?;
            }
        }
        transaction.commit().await?;
        Ok(())
    }

    async fn acme_order(&self, id: &str) -> Result<Option<AcmeOrder>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM acme_orders WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(order_from_row)
        .transpose()
    }

    async fn acme_orders_of(
        &self,
        account_id: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM acme_orders WHERE account_id = $1 \
             ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(account_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn acme_order_by_certificate(
        &self,
        serial: &str,
    ) -> Result<Option<AcmeOrder>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM acme_orders WHERE certificate_serial = $1"
        )))
        .bind(serial.to_ascii_lowercase())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(order_from_row)
        .transpose()
    }

    async fn acme_order_authorizations(
        &self,
        order_id: &str,
    ) -> Result<Vec<AcmeAuthorization>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {AUTHORIZATION_COLUMNS} FROM acme_authorizations WHERE order_id = $1 \
             ORDER BY identifier_type, identifier_value, id"
        )))
        .bind(order_id)
        .fetch_all(&self.pool)
        .await?;
        let mut authorizations = Vec::with_capacity(rows.len());
        for row in &rows {
            authorizations.push(self.with_challenges(authorization_from_row(row)?).await?);
        }
        Ok(authorizations)
    }

    async fn acme_authorization(&self, id: &str) -> Result<Option<AcmeAuthorization>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {AUTHORIZATION_COLUMNS} FROM acme_authorizations WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some(
                self.with_challenges(authorization_from_row(&row)?).await?,
            )),
            None => Ok(None),
        }
    }

    async fn acme_challenge(&self, id: &str) -> Result<Option<AcmeChallenge>, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CHALLENGE_COLUMNS} FROM acme_challenges WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(challenge_from_row)
        .transpose()
    }

    async fn start_acme_challenge(&self, id: &str) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE acme_challenges SET status = 'processing' \
             WHERE id = $1 AND status = 'pending' AND authorization_id IN \
             (SELECT id FROM acme_authorizations WHERE status = 'pending')",
        )
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(true);
        }
        match self.acme_challenge(id).await? {
            None => Err(StoreError::NotFound),
            Some(_) => Ok(false),
        }
    }

    async fn finish_acme_challenge(
        &self,
        id: &str,
        outcome: &ChallengeOutcome,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT c.status AS status, c.authorization_id AS authorization_id, \
             a.order_id AS order_id FROM acme_challenges c \
             JOIN acme_authorizations a ON a.id = c.authorization_id WHERE c.id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or(StoreError::NotFound)?;
        let order_id: String = column(&row, "order_id")?;
        // Lock order: the order row, then the challenge row (read again under its lock).
        sqlx::query("SELECT id FROM acme_orders WHERE id = $1 FOR UPDATE")
            .bind(&order_id)
            .execute(&mut *transaction)
            .await?;
        let row = sqlx::query(
            "SELECT status, authorization_id FROM acme_challenges WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_one(&mut *transaction)
        .await?;
        let status: String = column(&row, "status")?;
        if status != "processing" {
            return Ok(false);
        }
        let authorization_id: String = column(&row, "authorization_id")?;
        let (status, validated_at, error) = match outcome {
            ChallengeOutcome::Valid(at) => ("valid", Some(unix(*at)), None),
            ChallengeOutcome::Invalid(problem) => ("invalid", None, Some(problem.as_str())),
        };
        sqlx::query(
            "UPDATE acme_challenges SET status = $1, validated_at = $2, error = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(validated_at)
        .bind(error)
        .bind(id)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "UPDATE acme_authorizations SET status = $1 WHERE id = $2 AND status = 'pending'",
        )
        .bind(status)
        .bind(&authorization_id)
        .execute(&mut *transaction)
        .await?;
        if let Some(problem) = error {
            sqlx::query(
                "UPDATE acme_orders SET status = 'invalid', error = $1 \
                 WHERE id = $2 AND status = 'pending'",
            )
            .bind(problem)
            .bind(&order_id)
            .execute(&mut *transaction)
            .await?;
        } else {
            sqlx::query(
                "UPDATE acme_orders SET status = 'ready' WHERE id = $1 AND status = 'pending' \
                 AND NOT EXISTS (SELECT 1 FROM acme_authorizations \
                 WHERE order_id = $2 AND status <> 'valid')",
            )
            .bind(&order_id)
            .bind(&order_id)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(true)
    }

    async fn begin_acme_finalization(&self, order_id: &str) -> Result<bool, StoreError> {
        let updated = sqlx::query(
            "UPDATE acme_orders SET status = 'processing' WHERE id = $1 AND status = 'ready'",
        )
        .bind(order_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(true);
        }
        match self.acme_order(order_id).await? {
            None => Err(StoreError::NotFound),
            Some(_) => Ok(false),
        }
    }

    async fn abandon_acme_finalization(&self, order_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE acme_orders SET status = 'ready' WHERE id = $1 AND status = 'processing'",
        )
        .bind(order_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn complete_acme_order(&self, order_id: &str, serial: &str) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE acme_orders SET status = 'valid', certificate_serial = $1 \
             WHERE id = $2 AND status = 'processing'",
        )
        .bind(serial)
        .bind(order_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            return Ok(());
        }
        match self.acme_order(order_id).await? {
            None => Err(StoreError::NotFound),
            Some(order) => Err(StoreError::Conflict(format!(
                "the order is {}",
                order.status
            ))),
        }
    }
}
