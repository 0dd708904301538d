//! Revocation: by the certificate's holder (proof of possession of its key) or by an
//! administrator, one at a time or in bulk.
//!
//! The store commits the status change, the removal of the serial's stored OCSP answers,
//! the revocation-log row and (for keyCompromise) the key block in one transaction.
//! Then this replica drops its cached answers, signs and stores `revoked` answers, and
//! wakes the CRL publisher. If the process dies between the commit and the new
//! signature, no `good` survives: the stored answers are gone, and a fresh answer is
//! signed from the revoked status.
//!
//! ```text
//! POST /v1/certificates/{serial}/revoke
//! Authorization: Carimbo-PoP <base64url(signature)>     (holder)
//!            or: Bearer <admin token>                    (administrator)
//! { "serial": "<hex>", "reason": "key-compromise", "timestamp": <unix seconds> }
//! signature = Sign(certificate key, "carimbo-revoke-v1\n" ‖ SHA-256(body bytes))
//! ```
//! The holder's body must name the serial of the path and a timestamp within five
//! minutes; an administrator's body needs only the reason.

use base64::Engine;
use carimbo_pki::{OcspHash, RevocationReason};
use carimbo_store::{CertificateFilter, CertificateRecord, CertificateStatus};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::ApiError;
use crate::renewal::proof_algorithm;
use crate::state::{AppState, sha256};

/// Domain separation of the revocation proof-of-possession signature.
pub const REVOKE_PROOF_DOMAIN: &[u8] = b"carimbo-revoke-v1\n";
/// How far a holder's timestamp may be from the server's clock.
const MAX_SKEW: time::Duration = time::Duration::minutes(5);
/// Most certificates one bulk revocation may touch.
pub const MAX_BULK: u32 = 100_000;

/// The message a holder's revocation signature covers.
pub fn revoke_proof_message(body: &[u8]) -> Vec<u8> {
    let mut message = REVOKE_PROOF_DOMAIN.to_vec();
    message.extend_from_slice(&sha256(body));
    message
}

/// Who revokes.
#[derive(Clone, Debug)]
pub enum Revoker {
    /// The holder of the certificate's key.
    Holder,
    /// An administrator, by name.
    Admin(String),
}

impl Revoker {
    fn describe(&self) -> Value {
        match self {
            Self::Holder => json!({ "kind": "holder" }),
            Self::Admin(name) => json!({ "kind": "admin", "name": name }),
        }
    }
}

/// Reasons a holder may give (like the subscriber reasons of public CAs); the others
/// need an administrator. certificateHold (no holds: revocation is final) and
/// removeFromCRL (delta CRLs only) are refused for everyone.
fn check_reason(reason: RevocationReason, revoker: &Revoker) -> Result<(), ApiError> {
    use RevocationReason as R;
    match reason {
        R::CertificateHold | R::RemoveFromCrl => Err(ApiError::MalformedRequest(format!(
            "reason {reason} is not supported: revocation is final and there are no delta CRLs"
        ))),
        R::Unspecified
        | R::KeyCompromise
        | R::AffiliationChanged
        | R::Superseded
        | R::CessationOfOperation => Ok(()),
        R::CaCompromise | R::PrivilegeWithdrawn | R::AaCompromise => match revoker {
            Revoker::Admin(_) => Ok(()),
            Revoker::Holder => Err(ApiError::Forbidden(format!(
                "only an administrator may revoke for {reason}"
            ))),
        },
    }
}

/// Parses a reason name (`key-compromise`, ...); absent means unspecified.
pub fn parse_reason(text: Option<&str>) -> Result<RevocationReason, ApiError> {
    match text {
        None => Ok(RevocationReason::Unspecified),
        Some(text) => text
            .parse()
            .map_err(|e: carimbo_pki::PkiError| ApiError::MalformedRequest(e.to_string())),
    }
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What a revocation returns.
pub fn revocation_json(record: &CertificateRecord, changed: bool) -> Value {
    json!({
        "serial": record.serial,
        "issuer": record.issuer,
        "status": record.status.as_str(),
        "reason": record
            .revocation_reason
            .and_then(RevocationReason::from_code)
            .map(|r| r.to_string()),
        "revoked_at": record.revoked_at.map(rfc3339),
        "changed": changed,
    })
}

/// Revokes `serial` for `reason`. Idempotent: revoking again changes nothing (except
/// that keyCompromise replaces an earlier reason and blocks the key).
pub async fn revoke(
    state: &AppState,
    serial: &str,
    reason: RevocationReason,
    revoker: &Revoker,
    request_id: &str,
) -> Result<(CertificateRecord, bool), ApiError> {
    check_reason(reason, revoker)?;
    let now = OffsetDateTime::now_utc();
    let outcome = state
        .store
        .revoke(serial, reason.code(), now)
        .await
        .map_err(|error| match error {
            carimbo_store::StoreError::NotFound => {
                ApiError::NotFound(format!("no certificate with serial {serial}"))
            }
            carimbo_store::StoreError::Conflict(message) => ApiError::Conflict(message),
            carimbo_store::StoreError::Invalid(message) => ApiError::MalformedRequest(message),
            other => other.into(),
        })?;
    if outcome.changed {
        // The commit is done: nothing here may undo it, and nothing may serve `good`.
        state.ocsp.forget(serial);
        state.crls.mark_dirty();
        tracing::info!(
            request_id,
            serial,
            reason = %reason,
            issuer = %outcome.record.issuer,
            "certificate revoked"
        );
        state
            .audit(json!({
                "type": "certificate.revoked",
                "request_id": request_id,
                "serial": serial,
                "issuer": outcome.record.issuer,
                "reason": reason.to_string(),
                "revoked_at": outcome.record.revoked_at.map(|t| t.unix_timestamp()),
                "by": revoker.describe(),
            }))
            .await
            .inspect_err(|error| {
                // The revocation is committed and stands; only its audit record is
                // missing, which the operator must see.
                tracing::error!(serial, error = %error, "the audit event of a committed revocation could not be written");
            })
            .ok();
        if crate::failpoint("after-revoke-commit") {
            tracing::error!("failpoint after-revoke-commit: exiting");
            std::process::exit(86);
        }
        if let Err(error) = state
            .ocsp
            .refresh_record(
                state,
                &outcome.record,
                &[OcspHash::Sha1, OcspHash::Sha256],
                None,
            )
            .await
        {
            // The revoked status is committed; the answer is signed at the next request.
            tracing::warn!(serial, error = %error, "could not pre-sign the revoked OCSP answer");
        }
    }
    Ok((outcome.record, outcome.changed))
}

/// The holder's revocation body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolderBody {
    serial: String,
    #[serde(default)]
    reason: Option<String>,
    timestamp: i64,
}

/// Checks a holder's proof for revoking `serial` with `body`; returns the reason.
pub async fn check_holder(
    state: &AppState,
    serial: &str,
    body: &[u8],
    proof: &str,
) -> Result<RevocationReason, ApiError> {
    let parsed: HolderBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::MalformedRequest(format!("invalid JSON body: {e}")))?;
    if parsed.serial.to_ascii_lowercase() != serial {
        return Err(ApiError::MalformedRequest(
            "the body's serial is not the serial of the URL".into(),
        ));
    }
    let now = OffsetDateTime::now_utc();
    let stamp = OffsetDateTime::from_unix_timestamp(parsed.timestamp)
        .map_err(|_| ApiError::BadProof("timestamp out of range".into()))?;
    if (now - stamp).abs() > MAX_SKEW {
        return Err(ApiError::BadProof(
            "the timestamp is more than five minutes from the server's clock".into(),
        ));
    }
    let reason = parse_reason(parsed.reason.as_deref())?;
    let record = state
        .store
        .certificate(serial)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no certificate with serial {serial}")))?;
    let der = record
        .certificate
        .as_ref()
        .filter(|_| {
            matches!(
                record.status,
                CertificateStatus::Issued | CertificateStatus::Revoked
            )
        })
        .ok_or_else(|| ApiError::Conflict(format!("serial {serial} was never issued")))?;
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| ApiError::Internal(format!("stored certificate: {e}")))?;
    let spki = certificate.tbs_certificate.subject_pki.raw;
    let algorithm = proof_algorithm(spki)?;
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(proof.trim())
        .map_err(|_| ApiError::BadProof("the proof is not base64url".into()))?;
    carimbo_kms::verify_signature(algorithm, spki, &revoke_proof_message(body), &signature)
        .map_err(|_| {
            ApiError::BadProof("the proof does not verify with the certificate's key".into())
        })?;
    Ok(reason)
}

/// Checks that `client_der`, the certificate the TLS client authenticated with, is the
/// certificate `serial` (byte for byte as issued) and allows client authentication;
/// returns the reason from `body` (`{"reason": …}`, optional).
pub async fn check_client_certificate(
    state: &AppState,
    serial: &str,
    client_der: &[u8],
    body: &[u8],
) -> Result<RevocationReason, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ClientBody {
        #[serde(default)]
        reason: Option<String>,
    }
    let parsed: ClientBody = if body.is_empty() {
        ClientBody { reason: None }
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::MalformedRequest(format!("invalid JSON body: {e}")))?
    };
    let record = state
        .store
        .certificate(serial)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no certificate with serial {serial}")))?;
    if record.certificate.as_deref() != Some(client_der) {
        return Err(ApiError::Forbidden(
            "the TLS client certificate is not the certificate being revoked; its holder \
             revokes another one with a proof of possession (Carimbo-PoP)"
                .into(),
        ));
    }
    let (_, certificate) = x509_parser::parse_x509_certificate(client_der)
        .map_err(|e| ApiError::Internal(format!("stored certificate: {e}")))?;
    let client_auth = certificate
        .extended_key_usage()
        .ok()
        .flatten()
        .is_some_and(|eku| eku.value.client_auth);
    if !client_auth {
        return Err(ApiError::Forbidden(
            "the certificate does not allow client authentication".into(),
        ));
    }
    parse_reason(parsed.reason.as_deref())
}

/// Conditions of a bulk revocation; every given field must match.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkWhere {
    /// Issuer name.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Provisioner name.
    #[serde(default)]
    pub provisioner: Option<String>,
    /// One SAN, typed: `dns:web-1.example.com`, `ip:10.0.0.1` or `uri:spiffe://…`.
    #[serde(default)]
    pub san: Option<String>,
    /// Lowercase hex SHA-256 of the subject public key (DER SPKI).
    #[serde(default)]
    pub public_key_sha256: Option<String>,
    /// Lineage id.
    #[serde(default)]
    pub lineage: Option<String>,
    /// Issued at or after (RFC 3339).
    #[serde(default)]
    pub issued_after: Option<String>,
    /// Issued before (RFC 3339).
    #[serde(default)]
    pub issued_before: Option<String>,
}

/// `POST /v1/admin/revocations` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// What to revoke.
    #[serde(rename = "where")]
    pub filter: BulkWhere,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// Only list what would be revoked (the default).
    #[serde(default = "default_true")]
    pub dry_run: bool,
    /// For a real run: the count the dry run reported; a different match refuses.
    #[serde(default)]
    pub expect: Option<u64>,
}

fn default_true() -> bool {
    true
}

fn parse_time(field: &str, text: &Option<String>) -> Result<Option<OffsetDateTime>, ApiError> {
    text.as_deref()
        .map(|t| {
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map_err(|e| ApiError::MalformedRequest(format!("{field}: {e}")))
        })
        .transpose()
}

/// Runs a bulk revocation (or its dry run) for administrator `admin`.
pub async fn bulk(
    state: &AppState,
    admin: &str,
    body: BulkBody,
    request_id: &str,
) -> Result<Value, ApiError> {
    let reason = parse_reason(body.reason.as_deref())?;
    let revoker = Revoker::Admin(admin.to_owned());
    check_reason(reason, &revoker)?;
    // Names are stored typed and normalised (`dns:` lower case), as the parser makes them.
    let san = body
        .filter
        .san
        .map(|san| san.parse::<carimbo_pki::SubjectAltName>())
        .transpose()?
        .map(|san| san.to_string());
    let filter = CertificateFilter {
        issuer: body.filter.issuer,
        provisioner: body.filter.provisioner,
        san,
        subject_key_sha256: body
            .filter
            .public_key_sha256
            .map(|k| k.to_ascii_lowercase()),
        lineage: body.filter.lineage,
        issued_from: parse_time("issued_after", &body.filter.issued_after)?,
        issued_until: parse_time("issued_before", &body.filter.issued_before)?,
        unexpired_at: Some(OffsetDateTime::now_utc()),
        limit: MAX_BULK,
        ..Default::default()
    };
    let matched = state
        .store
        .find_certificates(&filter)
        .await
        .map_err(|e| match e {
            carimbo_store::StoreError::Invalid(message) => ApiError::MalformedRequest(message),
            other => other.into(),
        })?;
    let serials: Vec<&str> = matched.iter().map(|r| r.serial.as_str()).collect();
    let count = serials.len() as u64;
    if body.dry_run {
        return Ok(json!({
            "dry_run": true,
            "matched": count,
            "serials": serials,
            "reason": reason.to_string(),
        }));
    }
    match body.expect {
        Some(expected) if expected == count => {}
        Some(expected) => {
            return Err(ApiError::Conflict(format!(
                "the filter now matches {count} certificates, not the {expected} expected: run the dry run again"
            )));
        }
        None => {
            return Err(ApiError::MalformedRequest(
                "a bulk revocation needs \"expect\": the count its dry run reported".into(),
            ));
        }
    }
    state
        .audit(json!({
            "type": "revocation.bulk_started",
            "request_id": request_id,
            "admin": admin,
            "matched": count,
            "reason": reason.to_string(),
        }))
        .await?;
    let mut revoked = 0u64;
    let mut failed = Vec::new();
    for serial in &serials {
        match revoke(state, serial, reason, &revoker, request_id).await {
            Ok((_, true)) => revoked += 1,
            Ok((_, false)) => {}
            Err(error) => failed.push(json!({ "serial": serial, "error": error.to_string() })),
        }
    }
    state
        .audit(json!({
            "type": "revocation.bulk_finished",
            "request_id": request_id,
            "admin": admin,
            "revoked": revoked,
            "failed": failed.len(),
        }))
        .await?;
    Ok(json!({
        "dry_run": false,
        "matched": count,
        "revoked": revoked,
        "failed": failed,
        "reason": reason.to_string(),
    }))
}
