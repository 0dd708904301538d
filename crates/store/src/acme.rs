//! ACME (RFC 8555) state: accounts, orders, authorizations, challenges and nonces, in
//! the same database as the certificates (schema in `0009_acme.sql`).
//!
//! Every state change is a conditional update (the row moves only from the state the
//! caller expects), so two requests racing on one object — two replicas finalizing
//! one order, two consumers of one nonce — have exactly one winner. Nonces are
//! consumed by deleting their row: only the delete that removed it counts.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::StoreError;

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// The name stored and shown in ACME objects.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StoreError;

            fn from_str(text: &str) -> Result<Self, StoreError> {
                match text {
                    $($text => Ok(Self::$variant),)*
                    other => Err(StoreError::Corrupt(format!(
                        concat!("unknown ", stringify!($name), " {:?}"),
                        other
                    ))),
                }
            }
        }
    };
}

status_enum!(
    /// Status of an ACME account (RFC 8555 §7.1.6).
    AcmeAccountStatus {
        /// Usable.
        Valid = "valid",
        /// Deactivated by its holder (final).
        Deactivated = "deactivated",
        /// Revoked by the server (final).
        Revoked = "revoked",
    }
);

status_enum!(
    /// Status of an ACME order (RFC 8555 §7.1.6).
    AcmeOrderStatus {
        /// Some authorization is not valid yet.
        Pending = "pending",
        /// Every authorization is valid: the order may be finalized.
        Ready = "ready",
        /// Being finalized (the certificate is being issued).
        Processing = "processing",
        /// Finalized: the certificate is issued.
        Valid = "valid",
        /// Failed (an authorization failed, or the order expired).
        Invalid = "invalid",
    }
);

status_enum!(
    /// Status of an ACME authorization (RFC 8555 §7.1.6).
    AcmeAuthorizationStatus {
        /// No challenge succeeded yet.
        Pending = "pending",
        /// A challenge succeeded.
        Valid = "valid",
        /// A challenge failed.
        Invalid = "invalid",
        /// Deactivated by the account.
        Deactivated = "deactivated",
        /// Expired.
        Expired = "expired",
        /// Revoked by the server.
        Revoked = "revoked",
    }
);

status_enum!(
    /// Status of an ACME challenge (RFC 8555 §7.1.6).
    AcmeChallengeStatus {
        /// Waiting for the client to say it is ready.
        Pending = "pending",
        /// Being validated.
        Processing = "processing",
        /// Validated.
        Valid = "valid",
        /// Validation failed.
        Invalid = "invalid",
    }
);

/// An ACME account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeAccount {
    /// Random id (lowercase hex); part of the account URL.
    pub id: String,
    /// RFC 7638 thumbprint of the account key (base64url); unique.
    pub thumbprint: String,
    /// The account key as a JWK (JSON text).
    pub jwk: String,
    /// Contact URLs (`mailto:`).
    pub contact: Vec<String>,
    /// Status.
    pub status: AcmeAccountStatus,
    /// The ACME provisioner whose policy limits what the account may order.
    pub provisioner: String,
    /// The profile of the directory the account was created through.
    pub profile: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// An identifier of an order (`dns` or `ip`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AcmeIdentifier {
    /// `dns` or `ip`.
    pub kind: String,
    /// The name or address.
    pub value: String,
}

/// An ACME order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeOrder {
    /// Random id.
    pub id: String,
    /// The account that placed it.
    pub account_id: String,
    /// The profile of the certificate.
    pub profile: String,
    /// Status.
    pub status: AcmeOrderStatus,
    /// What it is for.
    pub identifiers: Vec<AcmeIdentifier>,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// A problem document (JSON) once invalid.
    pub error: Option<String>,
    /// The serial of the certificate, once valid.
    pub certificate_serial: Option<String>,
    /// When it was placed.
    pub created_at: OffsetDateTime,
}

/// An ACME authorization, with its challenges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeAuthorization {
    /// Random id.
    pub id: String,
    /// The order it belongs to.
    pub order_id: String,
    /// The account it belongs to.
    pub account_id: String,
    /// The identifier to prove control of.
    pub identifier: AcmeIdentifier,
    /// Status.
    pub status: AcmeAuthorizationStatus,
    /// When it expires.
    pub expires_at: OffsetDateTime,
    /// Its challenges.
    pub challenges: Vec<AcmeChallenge>,
}

/// An ACME challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeChallenge {
    /// Random id.
    pub id: String,
    /// The authorization it belongs to.
    pub authorization_id: String,
    /// `http-01`, `dns-01`, `tls-alpn-01`.
    pub kind: String,
    /// The token (base64url, 128 bits or more of entropy).
    pub token: String,
    /// Status.
    pub status: AcmeChallengeStatus,
    /// When it was validated.
    pub validated_at: Option<OffsetDateTime>,
    /// A problem document (JSON) once invalid.
    pub error: Option<String>,
}

/// How a challenge validation ended ([`AcmeStore::finish_acme_challenge`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChallengeOutcome {
    /// The response matched, at this time.
    Valid(OffsetDateTime),
    /// It did not: the problem document (JSON) to show.
    Invalid(String),
}

/// ACME state in the service database.
#[async_trait]
pub trait AcmeStore: Send + Sync + fmt::Debug {
    /// Stores a fresh nonce valid until `expires_at`.
    ///
    /// Errors: [`StoreError::Conflict`] if it exists; [`StoreError::Invalid`] if empty.
    async fn insert_acme_nonce(
        &self,
        nonce: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Consumes `nonce` by deleting its row in one statement: `true` only for the one
    /// caller whose delete removed an unexpired nonce. Unknown, used or expired nonces
    /// give `false` (an expired one is deleted too).
    async fn consume_acme_nonce(
        &self,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Deletes nonces expired at `now`; returns how many.
    async fn prune_acme_nonces(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    /// Stores a new account.
    ///
    /// Errors: [`StoreError::Conflict`] if an account has this id or key thumbprint;
    /// [`StoreError::Invalid`] for an empty id, thumbprint, key, provisioner or profile.
    async fn create_acme_account(&self, account: &AcmeAccount) -> Result<(), StoreError>;

    /// The account `id`, if any.
    async fn acme_account(&self, id: &str) -> Result<Option<AcmeAccount>, StoreError>;

    /// The account whose key has this thumbprint, if any.
    async fn acme_account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AcmeAccount>, StoreError>;

    /// Replaces the contacts of a valid account; returns it.
    ///
    /// Errors: [`StoreError::NotFound`]; [`StoreError::Conflict`] if it is not valid.
    async fn update_acme_account_contact(
        &self,
        id: &str,
        contact: &[String],
    ) -> Result<AcmeAccount, StoreError>;

    /// Replaces the key of a valid account whose key is still `old_thumbprint` (RFC 8555
    /// key change), in one conditional update; returns the account.
    ///
    /// Errors: [`StoreError::NotFound`]; [`StoreError::Conflict`] if another account
    /// holds the new key, the account is not valid, or its key changed meanwhile;
    /// [`StoreError::Invalid`] for an empty thumbprint or key.
    async fn change_acme_account_key(
        &self,
        id: &str,
        old_thumbprint: &str,
        new_thumbprint: &str,
        new_jwk: &str,
    ) -> Result<AcmeAccount, StoreError>;

    /// Deactivates a valid account (final); returns it. Deactivating it again is `Ok`.
    ///
    /// Errors: [`StoreError::NotFound`]; [`StoreError::Conflict`] if it was revoked.
    async fn deactivate_acme_account(&self, id: &str) -> Result<AcmeAccount, StoreError>;

    /// Stores an order with its authorizations and their challenges, in one
    /// transaction.
    ///
    /// Errors: [`StoreError::Conflict`] for an id in use; [`StoreError::Invalid`] for
    /// an order without identifiers, or an authorization of another order or account.
    async fn create_acme_order(
        &self,
        order: &AcmeOrder,
        authorizations: &[AcmeAuthorization],
    ) -> Result<(), StoreError>;

    /// The order `id`, if any.
    async fn acme_order(&self, id: &str) -> Result<Option<AcmeOrder>, StoreError>;

    /// Ids of the newest `limit` orders of an account, newest first.
    async fn acme_orders_of(&self, account_id: &str, limit: u32)
    -> Result<Vec<String>, StoreError>;

    /// The order that led to certificate `serial`, if any.
    async fn acme_order_by_certificate(
        &self,
        serial: &str,
    ) -> Result<Option<AcmeOrder>, StoreError>;

    /// The authorizations of an order (with their challenges), by identifier.
    async fn acme_order_authorizations(
        &self,
        order_id: &str,
    ) -> Result<Vec<AcmeAuthorization>, StoreError>;

    /// The authorization `id` with its challenges, if any.
    async fn acme_authorization(&self, id: &str) -> Result<Option<AcmeAuthorization>, StoreError>;

    /// The challenge `id`, if any.
    async fn acme_challenge(&self, id: &str) -> Result<Option<AcmeChallenge>, StoreError>;

    /// Moves a pending challenge of a pending authorization to processing: `true` for
    /// the one caller that moved it, `false` if it was not pending (already started,
    /// finished, or its authorization is no longer pending).
    ///
    /// Errors: [`StoreError::NotFound`] if there is no such challenge.
    async fn start_acme_challenge(&self, id: &str) -> Result<bool, StoreError>;

    /// Ends a processing challenge, in one transaction with the order row locked:
    /// the challenge and its authorization become valid or invalid; the order becomes
    /// invalid (with the challenge's error) when the authorization failed, or ready
    /// when every one of its authorizations is valid — only while the order is pending.
    /// A challenge that is not processing changes nothing (`Ok(false)`).
    ///
    /// Errors: [`StoreError::NotFound`] if there is no such challenge.
    async fn finish_acme_challenge(
        &self,
        id: &str,
        outcome: &ChallengeOutcome,
    ) -> Result<bool, StoreError>;

    /// Moves a ready order to processing before its certificate is issued: `true` for
    /// the one caller that moved it.
    ///
    /// Errors: [`StoreError::NotFound`] if there is no such order.
    async fn begin_acme_finalization(&self, order_id: &str) -> Result<bool, StoreError>;

    /// Moves a processing order back to ready (issuance was refused or failed, nothing
    /// was issued). A no-op for an order in any other state.
    async fn abandon_acme_finalization(&self, order_id: &str) -> Result<(), StoreError>;

    /// Moves a processing order to valid with the serial of its issued certificate
    /// (whose record must exist).
    ///
    /// Errors: [`StoreError::NotFound`] if there is no such order;
    /// [`StoreError::Conflict`] if it is not processing.
    async fn complete_acme_order(&self, order_id: &str, serial: &str) -> Result<(), StoreError>;
}

/// Identifiers as stored: a JSON array of `{"type", "value"}`.
pub(crate) fn identifiers_to_json(identifiers: &[AcmeIdentifier]) -> String {
    serde_json::Value::Array(
        identifiers
            .iter()
            .map(|i| serde_json::json!({ "type": i.kind, "value": i.value }))
            .collect(),
    )
    .to_string()
}

/// Identifiers read back.
pub(crate) fn identifiers_from_json(text: &str) -> Result<Vec<AcmeIdentifier>, StoreError> {
    let corrupt = || StoreError::Corrupt("acme_orders.identifiers: not a JSON list".into());
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| corrupt())?;
    value
        .as_array()
        .ok_or_else(corrupt)?
        .iter()
        .map(|item| {
            Ok(AcmeIdentifier {
                kind: item
                    .get("type")
                    .and_then(|v| v.as_str())
                    .ok_or_else(corrupt)?
                    .to_owned(),
                value: item
                    .get("value")
                    .and_then(|v| v.as_str())
                    .ok_or_else(corrupt)?
                    .to_owned(),
            })
        })
        .collect()
}

/// Checks an account before it is written.
pub(crate) fn check_account(account: &AcmeAccount) -> Result<(), StoreError> {
    for (value, what) in [
        (&account.id, "account id"),
        (&account.thumbprint, "account key thumbprint"),
        (&account.jwk, "account key"),
        (&account.provisioner, "account provisioner"),
        (&account.profile, "account profile"),
    ] {
        if value.is_empty() {
            return Err(StoreError::Invalid(format!("{what}: empty")));
        }
    }
    Ok(())
}

/// Checks an order and its authorizations before they are written.
pub(crate) fn check_order(
    order: &AcmeOrder,
    authorizations: &[AcmeAuthorization],
) -> Result<(), StoreError> {
    if order.id.is_empty() || order.identifiers.is_empty() {
        return Err(StoreError::Invalid(
            "order: empty id or no identifiers".into(),
        ));
    }
    for authorization in authorizations {
        if authorization.order_id != order.id || authorization.account_id != order.account_id {
            return Err(StoreError::Invalid(
                "authorization: belongs to another order or account".into(),
            ));
        }
        if authorization
            .challenges
            .iter()
            .any(|c| c.authorization_id != authorization.id || c.token.is_empty())
        {
            return Err(StoreError::Invalid(
                "challenge: belongs to another authorization, or has no token".into(),
            ));
        }
    }
    Ok(())
}
