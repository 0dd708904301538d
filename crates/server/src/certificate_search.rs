//! `GET /v1/admin/certificates`: the certificate inventory for operators (roles `admin`
//! and `auditor`), searched by name, provisioner, issuer, serial, public key, lineage,
//! issue time and expiry window, paged. The same conditions feed bulk revocation.

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use carimbo_store::{CertificateFilter, CertificateRecord, StoreError};

use crate::error::ApiError;
use crate::state::AppState;

/// Records per page by default, and at most.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1_000;

/// The query string of a search. Every condition given must hold; at least one of the
/// selecting ones is required (so nobody lists the whole CA by accident).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Issuer name.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Provisioner name.
    #[serde(default)]
    pub provisioner: Option<String>,
    /// One SAN, typed: `dns:web-1.example.com`, `ip:10.0.0.1` or `uri:spiffe://…`.
    #[serde(default)]
    pub san: Option<String>,
    /// Serial number, hex.
    #[serde(default)]
    pub serial: Option<String>,
    /// Hex SHA-256 of the subject public key (DER SPKI).
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
    /// Still valid at this time (RFC 3339, or `now`).
    #[serde(default)]
    pub valid_at: Option<String>,
    /// Expiring before (RFC 3339).
    #[serde(default)]
    pub expires_before: Option<String>,
    /// `issued` (default: issued and not revoked) or `all` (revoked ones too).
    #[serde(default)]
    pub status: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next` cursor of the previous page.
    #[serde(default)]
    pub after: Option<String>,
}

fn time_field(field: &str, text: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    text.map(|t| {
        if t == "now" {
            return Ok(OffsetDateTime::now_utc());
        }
        OffsetDateTime::parse(t, &Rfc3339).map_err(|e| {
            ApiError::MalformedRequest(format!("{field}: {t:?} is not an RFC 3339 time: {e}"))
        })
    })
    .transpose()
}

/// The cursor after `record`: its issue time (unix seconds) and serial.
fn cursor(record: &CertificateRecord) -> Option<String> {
    record
        .issued_at
        .map(|at| format!("{}.{}", at.unix_timestamp(), record.serial))
}

fn parse_cursor(text: &str) -> Result<(OffsetDateTime, String), ApiError> {
    let bad =
        || ApiError::MalformedRequest(format!("after: {text:?} is not a cursor this service gave"));
    let (seconds, serial) = text.split_once('.').ok_or_else(bad)?;
    let seconds: i64 = seconds.parse().map_err(|_| bad())?;
    let at = OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| bad())?;
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok((at, serial.to_ascii_lowercase()))
}

/// The store filter of `query`.
pub fn filter_of(query: &SearchQuery) -> Result<CertificateFilter, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::MalformedRequest(format!(
            "limit: must be 1 to {MAX_LIMIT}"
        )));
    }
    let include_revoked = match query.status.as_deref() {
        None | Some("issued") => false,
        Some("all") => true,
        Some(other) => {
            return Err(ApiError::MalformedRequest(format!(
                "status: {other:?} is not issued or all"
            )));
        }
    };
    // Names are stored typed and normalised (`dns:` lower case), as the parser makes them.
    let san = query
        .san
        .as_deref()
        .map(|san| san.parse::<carimbo_pki::SubjectAltName>())
        .transpose()
        .map_err(|e| ApiError::MalformedRequest(format!("san: {e}")))?
        .map(|san| san.to_string());
    Ok(CertificateFilter {
        issuer: query.issuer.clone(),
        provisioner: query.provisioner.clone(),
        san,
        subject_key_sha256: query
            .public_key_sha256
            .as_ref()
            .map(|k| k.to_ascii_lowercase()),
        lineage: query.lineage.clone(),
        issued_from: time_field("issued_after", query.issued_after.as_deref())?,
        issued_until: time_field("issued_before", query.issued_before.as_deref())?,
        unexpired_at: time_field("valid_at", query.valid_at.as_deref())?,
        expires_before: time_field("expires_before", query.expires_before.as_deref())?,
        serial: query.serial.clone(),
        include_revoked,
        after: query.after.as_deref().map(parse_cursor).transpose()?,
        limit,
    })
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

/// One record as the API shows it.
pub fn record_json(record: &CertificateRecord) -> Value {
    json!({
        "serial": record.serial,
        "issuer": record.issuer,
        "profile": record.profile,
        "provisioner": record.provisioner,
        "requester": record.requester,
        "lineage": record.lineage,
        "subject_alt_names": record.sans,
        "public_key_sha256": record.subject_key_sha256,
        "not_before": rfc3339(record.not_before),
        "not_after": rfc3339(record.not_after),
        "issued_at": record.issued_at.map(rfc3339),
        "status": record.status.as_str(),
        "revoked_at": record.revoked_at.map(rfc3339),
        "revocation_reason": record.revocation_reason,
    })
}

/// Runs a search: a page of records and the cursor of the next page (`null` on the
/// last page).
pub async fn search(state: &AppState, query: &SearchQuery) -> Result<Value, ApiError> {
    let filter = filter_of(query)?;
    let records = state
        .store
        .find_certificates(&filter)
        .await
        .map_err(|e| match e {
            StoreError::Invalid(message) => ApiError::MalformedRequest(message),
            other => other.into(),
        })?;
    let next = if records.len() == filter.limit as usize {
        records.last().and_then(cursor)
    } else {
        None
    };
    Ok(json!({
        "certificates": records.iter().map(record_json).collect::<Vec<_>>(),
        "next": next,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_become_filters_and_bad_fields_are_named() {
        let filter = filter_of(&SearchQuery {
            san: Some("dns:WEB.example.com".into()),
            status: Some("all".into()),
            after: Some("1700000000.0aF1".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(filter.san.as_deref(), Some("dns:web.example.com"));
        assert!(filter.include_revoked);
        assert_eq!(filter.limit, DEFAULT_LIMIT);
        let (at, serial) = filter.after.unwrap();
        assert_eq!(
            (at.unix_timestamp(), serial.as_str()),
            (1_700_000_000, "0af1")
        );

        for (query, field) in [
            (
                SearchQuery {
                    limit: Some(0),
                    ..Default::default()
                },
                "limit",
            ),
            (
                SearchQuery {
                    status: Some("revoked".into()),
                    ..Default::default()
                },
                "status",
            ),
            (
                SearchQuery {
                    expires_before: Some("tomorrow".into()),
                    ..Default::default()
                },
                "expires_before",
            ),
            (
                SearchQuery {
                    after: Some("12.zz".into()),
                    ..Default::default()
                },
                "after",
            ),
            (
                SearchQuery {
                    san: Some("web.example.com".into()),
                    ..Default::default()
                },
                "san",
            ),
        ] {
            match filter_of(&query) {
                Err(ApiError::MalformedRequest(message)) => {
                    assert!(message.starts_with(field), "{message}")
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }
}
