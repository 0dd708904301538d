//! Checks and conversions every backend applies the same way, before a value reaches
//! the database and after it comes back: one copy, so the backends cannot drift apart
//! on what they accept.

use time::OffsetDateTime;

use crate::{
    BootstrapToken, CertificateFilter, CertificateStatus, IssuanceIntent, OcspCertStatus,
    OcspResponderRecord, StoreError, StoredCrl, StoredOcspResponse,
};

/// RFC 5280 CRLReason keyCompromise.
pub(crate) const KEY_COMPROMISE: u8 = 1;

/// Most records [`RevocationStore::find_certificates`](crate::RevocationStore::find_certificates)
/// returns at once.
pub(crate) const MAX_FIND_LIMIT: u32 = 100_000;

/// Rows read per round trip when verifying an audit chain.
pub(crate) const VERIFY_PAGE: i64 = 1000;

pub(crate) fn unix(time: OffsetDateTime) -> i64 {
    time.unix_timestamp()
}

pub(crate) fn unix_millis(time: OffsetDateTime) -> i64 {
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn time_from_millis(millis: i64, column: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|_| StoreError::Corrupt(format!("{column}: timestamp {millis} ms out of range")))
}

/// Checks the arguments of a lease acquisition; returns `(now, expiry)` in unix ms.
pub(crate) fn check_lease_request(
    job: &str,
    holder: &str,
    now: OffsetDateTime,
    ttl: time::Duration,
) -> Result<(i64, i64), StoreError> {
    check_not_empty(job, "job name")?;
    check_not_empty(holder, "lease holder")?;
    if !ttl.is_positive() {
        return Err(StoreError::Invalid("lease TTL: not positive".into()));
    }
    Ok((unix_millis(now), unix_millis(now + ttl)))
}

/// The error of a write whose fence is not the lease's current one.
pub(crate) fn stale_fence(fence: &crate::Fence, current: Option<(String, i64)>) -> StoreError {
    match current {
        Some((holder, token)) => StoreError::Fenced(format!(
            "job {:?}: fence {} of {:?} is stale, the lease is at fence {token} of {holder:?}",
            fence.job, fence.token, fence.holder
        )),
        None => StoreError::Fenced(format!("job {:?}: no lease was ever taken", fence.job)),
    }
}

pub(crate) fn time_from(seconds: i64, column: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| StoreError::Corrupt(format!("{column}: timestamp {seconds} out of range")))
}

pub(crate) fn optional_time_from(
    seconds: Option<i64>,
    column: &str,
) -> Result<Option<OffsetDateTime>, StoreError> {
    seconds.map(|s| time_from(s, column)).transpose()
}

pub(crate) fn names_to_json(names: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(names).map_err(|e| StoreError::Invalid(format!("names: {e}")))
}

pub(crate) fn names_from_json(text: &str, column: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text)
        .map_err(|_| StoreError::Corrupt(format!("{column}: not a JSON list of strings")))
}

/// A stored non-negative integer as `u64`.
pub(crate) fn non_negative(value: i64, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column}: negative ({value})")))
}

/// A stored CRLReason code.
pub(crate) fn reason_from(code: i64) -> Result<u8, StoreError> {
    u8::try_from(code)
        .map_err(|_| StoreError::Corrupt(format!("revocation reason {code} out of range")))
}

pub(crate) fn is_lower_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub(crate) fn check_serial(serial: &str) -> Result<(), StoreError> {
    if is_lower_hex(serial) && serial.len() <= 64 {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "serial: expected 1 to 64 lowercase hex digits".into(),
        ))
    }
}

pub(crate) fn check_sha256_hex(value: &str, what: &str) -> Result<(), StoreError> {
    if is_lower_hex(value) && value.len() == 64 {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what}: expected 64 lowercase hex digits (SHA-256)"
        )))
    }
}

pub(crate) fn check_intent(intent: &IssuanceIntent) -> Result<(), StoreError> {
    check_serial(&intent.serial)?;
    check_sha256_hex(&intent.subject_key_sha256, "subject key hash")?;
    if intent.sans.is_empty() {
        return Err(StoreError::Invalid(
            "intent: a certificate needs at least one subject alternative name".into(),
        ));
    }
    if unix(intent.not_after) <= unix(intent.not_before) {
        return Err(StoreError::Invalid(
            "intent: not_after must be after not_before".into(),
        ));
    }
    if intent.lint_certificate.is_empty() {
        return Err(StoreError::Invalid("intent: empty lint certificate".into()));
    }
    Ok(())
}

pub(crate) fn check_token(token: &BootstrapToken) -> Result<(), StoreError> {
    check_sha256_hex(&token.token_hash, "token hash")?;
    if token.max_ttl_seconds <= 0 {
        return Err(StoreError::Invalid(
            "token: max TTL must be positive".into(),
        ));
    }
    Ok(())
}

/// A serial given as an argument: either case of hex digits, compared lowercase.
pub(crate) fn serial_argument(serial: &str) -> Result<String, StoreError> {
    let serial = serial.to_ascii_lowercase();
    check_serial(&serial)?;
    Ok(serial)
}

/// Reason codes [`RevocationStore::revoke`](crate::RevocationStore::revoke) accepts:
/// 0–10 except 7 (unused) and 8 (removeFromCRL, which only delta CRLs use).
pub(crate) fn check_reason(reason: u8) -> Result<(), StoreError> {
    if reason > 10 || reason == 7 || reason == 8 {
        return Err(StoreError::Invalid(format!(
            "revocation reason {reason}: expected an RFC 5280 code 0-10 other than 7 and 8"
        )));
    }
    Ok(())
}

/// `value` as a stored integer, or [`StoreError::Invalid`] naming `what`.
pub(crate) fn stored_u64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Invalid(format!("{what}: too large")))
}

pub(crate) fn check_not_empty(value: &str, what: &str) -> Result<(), StoreError> {
    if value.is_empty() {
        Err(StoreError::Invalid(format!("{what}: empty")))
    } else {
        Ok(())
    }
}

pub(crate) fn check_validity(
    start: OffsetDateTime,
    end: OffsetDateTime,
    what: &str,
) -> Result<(), StoreError> {
    if unix(end) <= unix(start) {
        Err(StoreError::Invalid(format!(
            "{what}: the end must be after the start"
        )))
    } else {
        Ok(())
    }
}

/// Checks a [`CertificateFilter`]; returns its subject key hash, lowercased.
pub(crate) fn check_filter(filter: &CertificateFilter) -> Result<Option<String>, StoreError> {
    let selects = filter.issuer.is_some()
        || filter.provisioner.is_some()
        || filter.san.is_some()
        || filter.subject_key_sha256.is_some()
        || filter.lineage.is_some()
        || filter.issued_from.is_some()
        || filter.issued_until.is_some()
        || filter.serial.is_some()
        || filter.expires_before.is_some();
    if !selects {
        return Err(StoreError::Invalid(
            "certificate filter: give at least one of issuer, provisioner, name, \
             subject key, lineage, serial, issue time or expiry time"
                .into(),
        ));
    }
    if !(1..=MAX_FIND_LIMIT).contains(&filter.limit) {
        return Err(StoreError::Invalid(format!(
            "certificate filter: limit must be 1 to {MAX_FIND_LIMIT}"
        )));
    }
    if let Some(serial) = &filter.serial {
        check_serial(&serial.to_ascii_lowercase())?;
    }
    filter
        .subject_key_sha256
        .as_deref()
        .map(|key| {
            let key = key.to_ascii_lowercase();
            check_sha256_hex(&key, "subject key hash").map(|()| key)
        })
        .transpose()
}

/// Checks a CRL to publish; returns its number and entry count as stored integers.
pub(crate) fn check_crl(crl: &StoredCrl) -> Result<(i64, i64), StoreError> {
    check_not_empty(&crl.issuer, "CRL issuer")?;
    if crl.der.is_empty() {
        return Err(StoreError::Invalid("CRL: empty DER".into()));
    }
    if crl.number == 0 {
        return Err(StoreError::Invalid("CRL number: starts at 1".into()));
    }
    check_validity(crl.this_update, crl.next_update, "CRL")?;
    Ok((
        stored_u64(crl.number, "CRL number")?,
        stored_u64(crl.entries, "CRL entries")?,
    ))
}

/// The compare-and-swap rule of `publish_crl`, given the issuer's head as read under
/// the publishing transaction's lock (`(0, 0, 0)` without a head).
pub(crate) fn check_crl_head(
    crl: &StoredCrl,
    revision: u64,
    (last_number, head_revision, published_revision): (u64, u64, u64),
) -> Result<(), StoreError> {
    if revision > head_revision {
        return Err(StoreError::Invalid(format!(
            "CRL revision {revision}: issuer {:?} is at revision {head_revision}",
            crl.issuer
        )));
    }
    if last_number != crl.number - 1 {
        return Err(StoreError::Conflict(format!(
            "CRL number {} of issuer {:?} is not the next one: {last_number} was published",
            crl.number, crl.issuer
        )));
    }
    if revision < published_revision {
        return Err(StoreError::Conflict(format!(
            "CRL of issuer {:?} built at revision {revision}, older than the published \
             revision {published_revision}",
            crl.issuer
        )));
    }
    Ok(())
}

pub(crate) fn check_ocsp_response(response: &StoredOcspResponse) -> Result<(), StoreError> {
    check_serial(&response.serial)?;
    if !is_lower_hex(&response.responder) {
        return Err(StoreError::Invalid(
            "OCSP responder serial: expected lowercase hex".into(),
        ));
    }
    if response.der.is_empty() {
        return Err(StoreError::Invalid("OCSP response: empty DER".into()));
    }
    check_validity(response.this_update, response.next_update, "OCSP response")?;
    if !matches!(
        response.cert_id_hash.as_str(),
        "sha1" | "sha256" | "sha384" | "sha512"
    ) {
        return Err(StoreError::Invalid(format!(
            "OCSP CertID hash {:?}: expected sha1, sha256, sha384 or sha512",
            response.cert_id_hash
        )));
    }
    Ok(())
}

/// Whether an OCSP answer states the certificate's current status and, for a revoked
/// one, its current reason ("no reason" stands for unspecified, RFC 5280 §5.3.1;
/// keyCompromise may have replaced an earlier reason).
pub(crate) fn states_current(
    status: CertificateStatus,
    reason: Option<i64>,
    response: &StoredOcspResponse,
) -> bool {
    let states_current_status = matches!(
        (status, response.cert_status),
        (CertificateStatus::Issued, OcspCertStatus::Good)
            | (CertificateStatus::Revoked, OcspCertStatus::Revoked)
    );
    let states_current_reason = response.cert_status == OcspCertStatus::Good
        || reason.filter(|r| *r != 0)
            == response
                .revocation_reason
                .map(i64::from)
                .filter(|r| *r != 0);
    states_current_status && states_current_reason
}

pub(crate) fn check_responder(record: &OcspResponderRecord) -> Result<(), StoreError> {
    check_serial(&record.serial)?;
    check_not_empty(&record.issuer, "OCSP responder issuer")?;
    check_not_empty(&record.key_reference, "OCSP responder key reference")?;
    check_not_empty(&record.algorithm, "OCSP responder algorithm")?;
    if record.certificate.is_empty() {
        return Err(StoreError::Invalid(
            "OCSP responder: empty certificate".into(),
        ));
    }
    check_validity(record.not_before, record.not_after, "OCSP responder")
}

/// Whether `error` is the database refusing a duplicate key.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_foreign_key_violation())
}

pub(crate) fn is_check_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_check_violation())
}

/// Maps the database's refusal of an intent to the error the trait documents.
pub(crate) fn intent_error(error: sqlx::Error, intent: &IssuanceIntent) -> StoreError {
    if is_unique_violation(&error) {
        StoreError::SerialCollision
    } else if is_foreign_key_violation(&error) {
        StoreError::Conflict(format!("lineage {:?} does not exist", intent.lineage))
    } else if is_check_violation(&error) {
        StoreError::Invalid("intent: refused by a check constraint".into())
    } else {
        error.into()
    }
}

pub(crate) fn keyring_error(error: sqlx::Error) -> carimbo_kms::Error {
    carimbo_kms::Error::Store(format!("database: {error}"))
}

pub(crate) fn keyring_json(record: &carimbo_kms::KeyRecord) -> carimbo_kms::Result<String> {
    serde_json::to_string(record)
        .map_err(|e| carimbo_kms::Error::Store(format!("encoding key record: {e}")))
}

pub(crate) fn keyring_record_from(text: &str) -> carimbo_kms::Result<carimbo_kms::KeyRecord> {
    serde_json::from_str(text)
        .map_err(|e| carimbo_kms::Error::Store(format!("stored key record: {e}")))
}

pub(crate) fn check_kms_grant(grant: &crate::KmsGrant) -> Result<(), StoreError> {
    if grant.id.is_empty() || !is_lower_hex(&grant.id) {
        return Err(StoreError::Invalid("grant id: not lowercase hex".into()));
    }
    check_not_empty(&grant.identity, "grant identity")?;
    if grant.keys.is_empty() || grant.keys.iter().any(String::is_empty) {
        return Err(StoreError::Invalid("grant keys: empty".into()));
    }
    if grant.operations.is_empty() || grant.operations.iter().any(String::is_empty) {
        return Err(StoreError::Invalid("grant operations: empty".into()));
    }
    if unix(grant.not_after) <= unix(grant.not_before) {
        return Err(StoreError::Invalid(
            "grant: not_after must be after not_before".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_inventory_row(row: &crate::InventoryRow) -> Result<(), StoreError> {
    if row.id.is_empty() || row.id.len() > 200 {
        return Err(StoreError::Invalid("inventory id: 1 to 200 bytes".into()));
    }
    check_not_empty(&row.key_name, "inventory key name")?;
    check_not_empty(&row.provider, "inventory provider")?;
    if row.wrapped_key.is_empty() {
        return Err(StoreError::Invalid("inventory wrapped key: empty".into()));
    }
    if row.key_version == 0 {
        return Err(StoreError::Invalid("inventory key version: 0".into()));
    }
    Ok(())
}

pub(crate) fn check_audit_head(head: &crate::SignedAuditHead) -> Result<i64, StoreError> {
    check_not_empty(&head.chain, "audit head chain")?;
    check_not_empty(&head.key_reference, "audit head key reference")?;
    check_sha256_hex(&head.hash, "audit head hash")?;
    if head.sequence == 0 {
        return Err(StoreError::Invalid(
            "audit head sequence: must be 1 or more".into(),
        ));
    }
    stored_u64(head.sequence, "audit head sequence")
}
