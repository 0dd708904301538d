//! HTTP routes: the HTTPS API and the plain-HTTP publication listener. Handlers parse,
//! call the domain code, and map errors in one place (`ApiError`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use carimbo_pki::{LeafKind, SubjectAltName, pem_encode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiError;
use crate::config::Span;
use crate::issuance::{self, CertificateRequest, TokenRequest, random_id};
use crate::state::{AppState, sha256};

type SharedState = Arc<AppState>;

/// The HTTPS API.
pub fn api_router(state: SharedState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/v1/certificates", post(issue_certificate))
        .route("/v1/certificates/renew", post(renew_certificate))
        .route("/v1/certificates/{serial}", get(certificate))
        .route("/v1/ca/chain", get(chain))
        .route("/v1/admin/tokens", post(create_token))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        // Larger bodies are rejected by the extractor; handlers turn that rejection into
        // a problem+json 413.
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            time_limit,
        ))
        .with_state(state)
}

/// The plain-HTTP publication listener: issuer certificates (caIssuers).
pub fn publication_router(state: SharedState) -> Router {
    Router::new()
        .route("/ca/{file}", get(issuer_certificate))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state)
}

/// Ends a request that takes longer than the configured limit with a 503.
async fn time_limit(
    State(state): State<SharedState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let limit = state.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limit.as_secs()).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".into())
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<SharedState>) -> Response {
    match state.store.count_by_status().await {
        Ok(_) => Json(json!({ "status": "ready", "database": "ok" })).into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "database": error.to_string() })),
        )
            .into_response(),
    }
}

/// The body of a JSON request: content type checked, size limited, parsed.
fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::MalformedRequest(rejection.body_text())
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::MalformedRequest(format!("invalid JSON body: {e}")))
}

fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("an Authorization: Bearer credential is required".into())
        })
}

fn ttl_of(value: &Option<Value>) -> Result<Option<time::Duration>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Span::parse(text)
            .map(|s| Some(s.0))
            .map_err(ApiError::MalformedRequest),
        Some(Value::Number(seconds)) => seconds
            .as_i64()
            .map(|s| Some(time::Duration::seconds(s)))
            .ok_or_else(|| ApiError::MalformedRequest("ttl must be whole seconds".into())),
        Some(_) => Err(ApiError::MalformedRequest(
            "ttl must be \"12h\" or seconds".into(),
        )),
    }
}

fn profile_of(text: &str) -> Result<LeafKind, ApiError> {
    text.parse()
        .map_err(|_| ApiError::UnknownProfile(text.to_owned()))
}

/// `POST /v1/certificates` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    csr: String,
    profile: String,
    /// JWT provisioner to verify the bearer with (optional when there is only one, or
    /// when the token's issuer identifies it).
    #[serde(default)]
    provisioner: Option<String>,
    #[serde(default)]
    ttl: Option<Value>,
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn issue_certificate(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = random_id(8).unwrap_or_default();
    let result = async {
        let credential = bearer(&headers)?;
        let body: IssueBody = json_body(&headers, body, state.max_body_bytes)?;
        let request = CertificateRequest {
            csr: body.csr.clone().into_bytes(),
            profile: profile_of(&body.profile)?,
            ttl: ttl_of(&body.ttl)?,
        };
        let caller = if credential.starts_with(issuance::TOKEN_PREFIX) {
            issuance::authenticate_token(&state, credential, &request_id).await?
        } else if credential.matches('.').count() == 2 {
            issuance::authenticate_jwt(&state, credential, body.provisioner.as_deref(), &request_id)
                .await?
        } else {
            return Err(ApiError::Unauthorized(
                "the credential is neither a bootstrap token nor a JWT".into(),
            ));
        };
        issuance::issue(&state, &caller, request, true).await
    }
    .await;
    let response = match result {
        Ok(issued) => (StatusCode::CREATED, Json(issued)).into_response(),
        Err(error) => {
            // Refusals before the issuance flow (authentication, body) are audited here.
            if matches!(
                error,
                ApiError::Unauthorized(_)
                    | ApiError::Jwt(_)
                    | ApiError::TokenUsed
                    | ApiError::TokenExpired
                    | ApiError::MalformedRequest(_)
                    | ApiError::UnsupportedMediaType
                    | ApiError::PayloadTooLarge(_)
                    | ApiError::UnknownProfile(_)
            ) {
                let _ = state
                    .audit(json!({
                        "type": "certificate.refused",
                        "request_id": request_id,
                        "code": error.code_and_status().0,
                        "reason": error.to_string(),
                    }))
                    .await;
            }
            error.into_response()
        }
    };
    with_request_id(response, &request_id)
}

async fn renew_certificate(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = random_id(8).unwrap_or_default();
    let result = async {
        let proof = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Carimbo-PoP "))
            .ok_or_else(|| {
                ApiError::BadProof("an Authorization: Carimbo-PoP proof is required".into())
            })?
            .to_owned();
        let is_json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let body = body.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(state.max_body_bytes)
            } else {
                ApiError::MalformedRequest(rejection.body_text())
            }
        })?;
        Ok(crate::renewal::renew(&state, &body, &proof, ttl_of, &request_id).await)
    }
    .await;
    let result = match result {
        Ok(inner) => inner,
        Err(error) => {
            // Refused before the renewal flow (which audits its own refusals).
            let _ = state
                .audit(json!({
                    "type": "certificate.renewal_refused",
                    "request_id": request_id,
                    "code": error.code_and_status().0,
                    "reason": error.to_string(),
                }))
                .await;
            Err(error)
        }
    };
    let response = match result {
        Ok(issued) => (StatusCode::CREATED, Json(issued)).into_response(),
        Err(error) => error.into_response(),
    };
    with_request_id(response, &request_id)
}

async fn certificate(
    State(state): State<SharedState>,
    Path(serial): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let serial = serial.to_ascii_lowercase();
    if serial.is_empty() || serial.len() > 40 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::MalformedRequest(
            "a serial is 1 to 40 hex digits".into(),
        ));
    }
    let record = state
        .store
        .certificate(&serial)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no certificate with serial {serial}")))?;
    let format = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    Ok(Json(json!({
        "serial": record.serial,
        "status": format!("{:?}", record.status).to_lowercase(),
        "profile": record.profile,
        "issuer": record.issuer,
        "sans": record.sans,
        "not_before": format(record.not_before),
        "not_after": format(record.not_after),
        "certificate": record.certificate.as_deref().map(|der| pem_encode("CERTIFICATE", der)),
    })))
}

async fn chain(State(state): State<SharedState>) -> Response {
    let mut seen = std::collections::HashSet::new();
    let mut pem = String::new();
    for issuer in &state.issuers {
        for certificate in issuer.anchors.iter().chain(&issuer.chain) {
            if seen.insert(certificate.clone()) {
                pem.push_str(&pem_encode("CERTIFICATE", certificate));
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "application/pem-certificate-chain")],
        pem,
    )
        .into_response()
}

async fn issuer_certificate(
    State(state): State<SharedState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let name = file
        .strip_suffix(".cer")
        .ok_or_else(|| ApiError::NotFound("issuer certificates are at /ca/{name}.cer".into()))?;
    let issuer = state
        .issuers
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no issuer {name:?}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pkix-cert"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        issuer.certificate.clone(),
    )
        .into_response())
}

/// `POST /v1/admin/tokens` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    provisioner: String,
    profile: String,
    sans: Vec<String>,
    #[serde(default)]
    ttl: Option<Value>,
    #[serde(default)]
    expires_in: Option<Value>,
}

/// Authenticates an administrator by API token (constant-time compare of hashes).
fn admin<'a>(state: &'a AppState, headers: &HeaderMap, role: &str) -> Result<&'a str, ApiError> {
    let token = bearer(headers)?;
    let hash = sha256(token.as_bytes());
    let found = state.admins.iter().find(|a| {
        aws_lc_rs::constant_time::verify_slices_are_equal(&a.token_sha256, &hash).is_ok()
    });
    match found {
        Some(admin) if admin.role == role => Ok(&admin.name),
        Some(admin) => Err(ApiError::Forbidden(format!(
            "{} is not a {role}",
            admin.name
        ))),
        None => Err(ApiError::Unauthorized("unknown admin credential".into())),
    }
}

async fn create_token(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let admin = match admin(&state, &headers, "admin") {
        Ok(admin) => admin.to_owned(),
        Err(error) => {
            state
                .audit(json!({ "type": "admin.refused", "action": "token.create", "reason": error.to_string() }))
                .await?;
            return Err(error);
        }
    };
    let result = async {
        let body: TokenBody = json_body(&headers, body, state.max_body_bytes)?;
        let sans = body
            .sans
            .iter()
            .map(|s| {
                s.parse::<SubjectAltName>()
                    .map_err(|e| ApiError::MalformedRequest(format!("SAN {s:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let profile = profile_of(&body.profile)?;
        let default_ttl = state
            .profiles
            .get(&profile)
            .map(|p| p.default_ttl)
            .unwrap_or(time::Duration::hours(1));
        let request = TokenRequest {
            provisioner: body.provisioner,
            profile,
            sans,
            ttl: ttl_of(&body.ttl)?.unwrap_or(default_ttl),
            expires_in: ttl_of(&body.expires_in)?.unwrap_or(time::Duration::minutes(10)),
        };
        issuance::create_token(&state, &admin, request).await
    }
    .await;
    let (token, expires_at) = match result {
        Ok(created) => created,
        Err(error) => {
            state
                .audit(json!({
                    "type": "admin.refused",
                    "admin": admin,
                    "action": "token.create",
                    "code": error.code_and_status().0,
                    "reason": error.to_string(),
                }))
                .await?;
            return Err(error);
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "token": token,
            "expires_at": expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        })),
    )
        .into_response())
}
