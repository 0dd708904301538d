//! Errors, and the one place where they become HTTP statuses and stable codes
//! (RFC 9457 `application/problem+json`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use carimbo_pki::LeafError;
use carimbo_store::StoreError;
use serde_json::json;

/// A failure of start-up or configuration (not of a request).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The config is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A CA key or certificate could not be loaded or does not match.
    #[error("keys: {0}")]
    Keys(String),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// TLS setup failed.
    #[error("tls: {0}")]
    Tls(String),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A refused or failed request. Every variant has a stable code and status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body is not the JSON expected.
    #[error("{0}")]
    MalformedRequest(String),
    /// The content type is not `application/json`.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// The content type is not the one named.
    #[error("content type must be {0}")]
    UnsupportedMediaTypeOf(&'static str),
    /// The body is larger than allowed.
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// No credential, or one that is not valid.
    #[error("{0}")]
    Unauthorized(String),
    /// The bootstrap token was used already.
    #[error("the bootstrap token was already used")]
    TokenUsed,
    /// The bootstrap token expired.
    #[error("the bootstrap token expired")]
    TokenExpired,
    /// The certificate presented for renewal is revoked.
    #[error("the certificate is revoked and cannot be renewed")]
    CertificateRevoked,
    /// The certificate presented for renewal has expired: bootstrap again.
    #[error("the certificate has expired; bootstrap again with a token")]
    CertificateExpired,
    /// The proof of possession is missing, malformed or does not verify.
    #[error("{0}")]
    BadProof(String),
    /// The lineage is older than its provisioner allows: bootstrap again.
    #[error("{0}")]
    LineageExpired(String),
    /// A JWT was refused (signature, issuer, audience, times: 401) or its claims do
    /// not make valid names (403).
    #[error("{0}")]
    Jwt(#[from] crate::jwt::JwtError),
    /// The caller is authenticated but not allowed this.
    #[error("{0}")]
    Forbidden(String),
    /// The caller went over its rate limit; it may retry after this many seconds.
    #[error("rate limit of {what} reached; retry in {retry_after} s")]
    RateLimited {
        /// What is limited (`issuance`, `kms`).
        what: &'static str,
        /// Seconds until a retry can pass.
        retry_after: u64,
    },
    /// The profile named does not exist.
    #[error("unknown profile {0:?} (server, client, workload)")]
    UnknownProfile(String),
    /// The CSR or the names or the lifetime are refused.
    #[error("{0}")]
    Leaf(#[from] LeafError),
    /// Nothing found.
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts the current state (e.g. revoking a serial that was
    /// never issued, or a bulk revocation whose match changed since its dry run).
    #[error("{0}")]
    Conflict(String),
    /// The subject key was revoked for keyCompromise: it gets no more certificates.
    #[error("this public key was reported compromised; generate a new key")]
    KeyCompromised,
    /// No issuer can serve the profile now.
    #[error("{0}")]
    IssuerUnavailable(String),
    /// The database cannot be reached now; nothing was changed by this request.
    #[error("the database is unavailable; retry later")]
    DatabaseUnavailable,
    /// The database's disk is full; the write was rolled back and nothing was changed.
    #[error("the database's disk is full; nothing was changed; retry later")]
    StorageFull,
    /// The request took longer than the service allows.
    #[error("the request took longer than {0} seconds")]
    Timeout(u64),
    /// A KMS API request was refused or failed.
    #[error("{0}")]
    Kms(#[from] KmsError),
    /// Something failed on our side; the message is safe to show.
    #[error("{0}")]
    Internal(String),
}

/// Why a KMS API request (or one item of a batch) did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KmsError {
    /// The KMS API is not enabled on this service (no `[kms]` section).
    #[error("the KMS API is not enabled on this service")]
    NotEnabled,
    /// The policy does not allow this identity this operation on this key.
    #[error("{identity} may not {operation} with key {key}")]
    Denied {
        /// The caller.
        identity: String,
        /// The operation.
        operation: String,
        /// The key.
        key: String,
    },
    /// The key is a CA key: never usable through the KMS API, whatever the policy.
    #[error("key {0} is a CA key; CA keys are not reachable through the KMS API")]
    CaKey(String),
    /// A binary field is not valid base64.
    #[error("{0}: not valid base64")]
    BadBase64(&'static str),
    /// A batch has more items than allowed.
    #[error("a batch may hold at most {0} items")]
    BatchTooLarge(usize),
    /// The key named in the request is not the one the ciphertext was made with.
    #[error("the ciphertext was made with key {actual}, not {requested}")]
    KeyMismatch {
        /// Named in the request.
        requested: String,
        /// Found in the ciphertext.
        actual: String,
    },
    /// The inventory still holds data keys wrapped by this version.
    #[error("{rows} inventory rows still use version {version} of {key}; migrate them first")]
    VersionInUse {
        /// The key.
        key: String,
        /// The version.
        version: u32,
        /// Rows under it.
        rows: u64,
    },
    /// The KMS core refused or failed.
    #[error("{0}")]
    Core(#[from] carimbo_kms::Error),
}

impl KmsError {
    /// The stable code and the HTTP status.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        use carimbo_kms::Error as Core;
        match self {
            Self::NotEnabled => ("kms_disabled", StatusCode::NOT_FOUND),
            Self::Denied { .. } => ("kms_denied", StatusCode::FORBIDDEN),
            Self::CaKey(_) => ("ca_key_not_addressable", StatusCode::FORBIDDEN),
            Self::BadBase64(_) => ("bad_base64", StatusCode::BAD_REQUEST),
            Self::BatchTooLarge(_) => ("batch_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            Self::KeyMismatch { .. } => ("key_mismatch", StatusCode::BAD_REQUEST),
            Self::VersionInUse { .. } => ("version_in_use", StatusCode::CONFLICT),
            Self::Core(error) => match error {
                Core::InvalidKeyName { .. } => ("invalid_key_name", StatusCode::BAD_REQUEST),
                Core::UnsupportedAlgorithm { .. } => {
                    ("unsupported_algorithm", StatusCode::BAD_REQUEST)
                }
                Core::UnknownPurpose(_) => ("unknown_purpose", StatusCode::BAD_REQUEST),
                Core::WrongPurpose { .. } => ("wrong_purpose", StatusCode::BAD_REQUEST),
                Core::KeyNotFound(_) => ("key_not_found", StatusCode::NOT_FOUND),
                Core::KeyExists(_) => ("key_exists", StatusCode::CONFLICT),
                Core::VersionNotFound { .. } => ("version_not_found", StatusCode::NOT_FOUND),
                Core::VersionUnavailable { .. } => ("version_unavailable", StatusCode::CONFLICT),
                Core::InvalidState(_) => ("invalid_state", StatusCode::CONFLICT),
                Core::Malformed(_) => ("malformed_ciphertext", StatusCode::BAD_REQUEST),
                Core::UnsupportedEnvelope(_) => ("unsupported_envelope", StatusCode::BAD_REQUEST),
                Core::ContextMismatch => ("context_mismatch", StatusCode::BAD_REQUEST),
                Core::Unauthentic(_) => ("unauthentic", StatusCode::BAD_REQUEST),
                Core::VerificationFailed(_) => ("verification_failed", StatusCode::BAD_REQUEST),
                _ => ("kms_internal", StatusCode::INTERNAL_SERVER_ERROR),
            },
        }
    }
}

impl ApiError {
    /// The stable code and the HTTP status.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            Self::MalformedRequest(_) => ("malformed_request", StatusCode::BAD_REQUEST),
            Self::UnsupportedMediaType | Self::UnsupportedMediaTypeOf(_) => {
                ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            Self::PayloadTooLarge(_) => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            Self::Unauthorized(_) => ("unauthorized", StatusCode::UNAUTHORIZED),
            Self::TokenUsed => ("token_used", StatusCode::UNAUTHORIZED),
            Self::TokenExpired => ("token_expired", StatusCode::UNAUTHORIZED),
            Self::CertificateRevoked => ("certificate_revoked", StatusCode::FORBIDDEN),
            Self::CertificateExpired => ("certificate_expired", StatusCode::UNAUTHORIZED),
            Self::BadProof(_) => ("bad_proof", StatusCode::UNAUTHORIZED),
            Self::LineageExpired(_) => ("lineage_expired", StatusCode::FORBIDDEN),
            Self::Jwt(error) => {
                use crate::jwt::JwtError;
                let status = match error {
                    JwtError::MissingClaim(_)
                    | JwtError::BadClaim { .. }
                    | JwtError::BadName(_) => StatusCode::FORBIDDEN,
                    _ => StatusCode::UNAUTHORIZED,
                };
                (error.code(), status)
            }
            Self::Forbidden(_) => ("forbidden", StatusCode::FORBIDDEN),
            Self::RateLimited { .. } => ("rate_limited", StatusCode::TOO_MANY_REQUESTS),
            Self::UnknownProfile(_) => ("unknown_profile", StatusCode::BAD_REQUEST),
            Self::Leaf(error) => (error.code(), StatusCode::BAD_REQUEST),
            Self::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
            Self::Conflict(_) => ("conflict", StatusCode::CONFLICT),
            Self::KeyCompromised => ("key_compromised", StatusCode::BAD_REQUEST),
            Self::IssuerUnavailable(_) => ("issuer_unavailable", StatusCode::SERVICE_UNAVAILABLE),
            Self::Timeout(_) => ("timeout", StatusCode::SERVICE_UNAVAILABLE),
            Self::DatabaseUnavailable => ("database_unavailable", StatusCode::SERVICE_UNAVAILABLE),
            Self::StorageFull => ("storage_full", StatusCode::SERVICE_UNAVAILABLE),
            Self::Kms(error) => error.code_and_status(),
            Self::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::TokenAlreadyUsed => Self::TokenUsed,
            StoreError::TokenExpired => Self::TokenExpired,
            StoreError::NotFound => Self::NotFound("not found".into()),
            other if other.is_storage_full() => {
                tracing::error!(error = %other, "database disk full");
                Self::StorageFull
            }
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "database unavailable");
                Self::DatabaseUnavailable
            }
            other => {
                tracing::error!(error = %other, "database error");
                Self::Internal("database error".into())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        let body = json!({
            "type": format!("urn:carimbo:error:{code}"),
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "code": code,
            "detail": self.to_string(),
        });
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::RateLimited { retry_after, .. } = &self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limited_request_gets_429_with_retry_after() {
        let response = ApiError::RateLimited {
            what: "kms",
            retry_after: 3,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
