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
use crate::revocation;
use crate::state::{AppState, sha256};

/// The state every handler gets.
pub(crate) type SharedState = Arc<AppState>;

/// The HTTPS API.
pub fn api_router(state: SharedState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/v1/certificates", post(issue_certificate))
        .route("/v1/certificates/renew", post(renew_certificate))
        .route("/v1/certificates/{serial}", get(certificate))
        .route("/v1/certificates/{serial}/revoke", post(revoke_certificate))
        .route("/v1/ca/chain", get(chain))
        .route("/v1/admin/tokens", post(create_token))
        .route("/v1/admin/revocations", post(bulk_revoke))
        .route("/v1/admin/certificates", get(search_certificates))
        .route("/ca/{file}", get(issuer_certificate))
        .route("/crl/{file}", get(crl))
        .route("/crl/{issuer}/{file}", get(crl_shard))
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::kms_api::router())
        .merge(crate::acme::router())
        .merge(crate::dashboard::router())
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

/// The plain-HTTP publication listener: issuer certificates (caIssuers), CRLs, OCSP.
pub fn publication_router(state: SharedState) -> Router {
    let router = if state.metrics_settings.enabled && state.metrics_settings.publication {
        Router::new().route("/metrics", get(metrics))
    } else {
        Router::new()
    };
    router
        .route("/ca/{file}", get(issuer_certificate))
        .route("/crl/{file}", get(crl))
        .route("/crl/{issuer}/{file}", get(crl_shard))
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        // OCSP requests are small (RFC 5019 §2.1.1); anything larger is refused early.
        .layer(DefaultBodyLimit::max(carimbo_pki::MAX_OCSP_REQUEST_BYTES))
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

/// Readiness: every dependency with its state (see `health`). The issuing role needs
/// its database and its CA keys; an OCSP-role process stays ready while it can answer
/// (valid responders and cached answers) and says it is degraded.
async fn readyz(State(state): State<SharedState>) -> Response {
    let readiness = crate::health::check(&state, time::OffsetDateTime::now_utc()).await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness.body)).into_response()
}

/// `GET /metrics`: Prometheus metrics (OpenMetrics or classic text), for an `auditor` or `admin`
/// token unless `[metrics] access = "open"`; 404 when `[metrics] enabled = false`.
async fn metrics(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let settings = &state.metrics_settings;
    if !settings.enabled {
        return ApiError::NotFound("no such resource".into()).into_response();
    }
    if settings.access == crate::config::MetricsAccess::Auditor
        && let Err(error) = admin_in(&state, &headers, &["auditor", "admin"])
    {
        return error.into_response();
    }
    let refresh = std::time::Duration::from_millis(
        u64::try_from(settings.store_refresh.0.whole_milliseconds()).unwrap_or(0),
    );
    let text = state.metrics.render(&state, refresh).await;
    // OpenMetrics for scrapers that ask for it (Prometheus does), else the classic
    // Prometheus text format.
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            crate::metrics::to_prometheus_text(&text),
        )
            .into_response()
    }
}

/// The body of a JSON request: content type checked, size limited, parsed.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
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
    parse_json(&body)
}

/// A JSON body's bytes parsed into `T`; any error is a malformed request.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::MalformedRequest(format!("invalid JSON body: {e}")))
}

pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
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

/// The profile of a request, as a metrics label: a known profile, else `none`.
fn profile_hint(text: &Option<String>) -> Option<&'static str> {
    match text.as_deref().map(str::parse::<LeafKind>) {
        Some(Ok(LeafKind::Server)) => Some("server"),
        Some(Ok(LeafKind::Client)) => Some("client"),
        Some(Ok(LeafKind::Workload)) => Some("workload"),
        _ => None,
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

impl IssueBody {
    /// The certificate request the body asks for: profile and lifetime parsed, CSR as
    /// sent (checked later, against the profile).
    fn request(&self) -> Result<CertificateRequest, ApiError> {
        Ok(CertificateRequest {
            csr: self.csr.clone().into_bytes(),
            profile: profile_of(&self.profile)?,
            ttl: ttl_of(&self.ttl)?,
        })
    }
}

/// The bytes of a `POST /v1/certificates` body parsed as the route parses them (after
/// its content-type and size checks): the JSON fields, the profile and the lifetime.
pub(crate) fn parse_issue_body(body: &[u8]) -> Result<CertificateRequest, ApiError> {
    parse_json::<IssueBody>(body)?.request()
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
    let mut body_profile = None;
    let mut reached_issuance = false;
    let result = async {
        let credential = bearer(&headers)?;
        let body: IssueBody = json_body(&headers, body, state.max_body_bytes)?;
        body_profile = Some(body.profile.clone());
        let request = body.request()?;
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
        reached_issuance = true;
        issuance::issue(&state, &caller, request, true).await
    }
    .await;
    let response = match result {
        Ok(issued) => (StatusCode::CREATED, Json(issued)).into_response(),
        Err(error) => {
            // The issuance flow counts its own refusals.
            if !reached_issuance {
                state.metrics.refused(
                    profile_hint(&body_profile),
                    None,
                    error.code_and_status().0,
                    false,
                );
            }
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
            state
                .metrics
                .refused(None, None, error.code_and_status().0, true);
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
pub(crate) fn admin<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    role: &str,
) -> Result<&'a str, ApiError> {
    admin_in(state, headers, &[role])
}

/// Authenticates an administrator holding one of `roles`.
pub(crate) fn admin_in<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    roles: &[&str],
) -> Result<&'a str, ApiError> {
    admin_by_token(state, bearer(headers)?, roles)
}

/// Authenticates an administrator holding one of `roles` by the token itself (the
/// dashboard's login form).
pub(crate) fn admin_by_token<'a>(
    state: &'a AppState,
    token: &str,
    roles: &[&str],
) -> Result<&'a str, ApiError> {
    let hash = sha256(token.as_bytes());
    let found = state.admins.iter().find(|a| {
        aws_lc_rs::constant_time::verify_slices_are_equal(&a.token_sha256, &hash).is_ok()
    });
    match found {
        Some(admin) if roles.contains(&admin.role.as_str()) => Ok(&admin.name),
        Some(admin) => Err(ApiError::Forbidden(format!(
            "{} is not a {}",
            admin.name,
            roles.join(" or ")
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

async fn revoke_certificate(
    State(state): State<SharedState>,
    Path(serial): Path<String>,
    client: Option<axum::Extension<crate::tls::ClientCertificate>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = random_id(8).unwrap_or_default();
    let serial = serial.to_ascii_lowercase();
    let result = async {
        if serial.is_empty() || serial.len() > 40 || !serial.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(ApiError::MalformedRequest(
                "a serial is 1 to 40 hex digits".into(),
            ));
        }
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = body.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(state.max_body_bytes)
            } else {
                ApiError::MalformedRequest(rejection.body_text())
            }
        })?;
        if !is_json(&headers) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let (reason, revoker) = if let Some(proof) = authorization.strip_prefix("Carimbo-PoP ") {
            let reason = revocation::check_holder(&state, &serial, &body, proof).await?;
            (reason, revocation::Revoker::Holder)
        } else if let (true, Some(axum::Extension(client))) = (authorization.is_empty(), client) {
            // No credential but a verified TLS client certificate: its holder may revoke
            // that very certificate.
            let reason =
                revocation::check_client_certificate(&state, &serial, &client.0, &body).await?;
            (reason, revocation::Revoker::Holder)
        } else {
            let name = admin(&state, &headers, "admin")?.to_owned();
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct AdminBody {
                #[serde(default)]
                reason: Option<String>,
            }
            let parsed: AdminBody = serde_json::from_slice(&body)
                .map_err(|e| ApiError::MalformedRequest(format!("invalid JSON body: {e}")))?;
            let reason = revocation::parse_reason(parsed.reason.as_deref())?;
            (reason, revocation::Revoker::Admin(name))
        };
        revocation::revoke(&state, &serial, reason, &revoker, &request_id).await
    }
    .await;
    let response = match result {
        Ok((record, changed)) => (
            StatusCode::OK,
            Json(revocation::revocation_json(&record, changed)),
        )
            .into_response(),
        Err(error) => {
            let _ = state
                .audit(json!({
                    "type": "certificate.revocation_refused",
                    "request_id": request_id,
                    "serial": serial,
                    "code": error.code_and_status().0,
                    "reason": error.to_string(),
                }))
                .await;
            error.into_response()
        }
    };
    with_request_id(response, &request_id)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        })
}

async fn bulk_revoke(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request_id = random_id(8).unwrap_or_default();
    let result = async {
        let name = admin(&state, &headers, "admin")?.to_owned();
        let body: revocation::BulkBody = json_body(&headers, body, state.max_body_bytes)?;
        revocation::bulk(&state, &name, body, &request_id).await
    }
    .await;
    admin_reply(&state, "revocation.bulk", &request_id, result).await
}

/// The reply of an admin request identified by `request_id`: its JSON, or its error
/// after an `admin.refused` audit event naming `action` (recorded on a best-effort
/// basis: the refusal is answered even when the audit trail cannot take it).
async fn admin_reply(
    state: &AppState,
    action: &str,
    request_id: &str,
    result: Result<Value, ApiError>,
) -> Response {
    let response = match result {
        Ok(value) => Json(value).into_response(),
        Err(error) => {
            let _ = state
                .audit(json!({
                    "type": "admin.refused",
                    "action": action,
                    "request_id": request_id,
                    "code": error.code_and_status().0,
                    "reason": error.to_string(),
                }))
                .await;
            error.into_response()
        }
    };
    with_request_id(response, request_id)
}

/// `GET /v1/admin/certificates?…`: the certificate inventory (`admin` or `auditor`).
async fn search_certificates(
    State(state): State<SharedState>,
    headers: HeaderMap,
    query: Result<
        axum::extract::Query<crate::certificate_search::SearchQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let request_id = random_id(8).unwrap_or_default();
    let result = async {
        let name = admin_in(&state, &headers, &["admin", "auditor"])?.to_owned();
        let axum::extract::Query(query) =
            query.map_err(|e| ApiError::MalformedRequest(e.body_text()))?;
        let reply = crate::certificate_search::search(&state, &query).await?;
        state
            .audit(json!({
                "type": "admin.certificates.search",
                "request_id": request_id,
                "admin": name,
                "returned": reply["certificates"].as_array().map_or(0, Vec::len),
            }))
            .await?;
        Ok::<_, ApiError>(reply)
    }
    .await;
    admin_reply(&state, "certificates.search", &request_id, result).await
}

/// An HTTP date (RFC 9110 IMF-fixdate).
fn http_date(time: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// `Cache-Control`, `Expires`, `ETag`, `Last-Modified` for a signed object valid from
/// `this_update` to `next_update`, cached at most `max_age` (RFC 5019 §6).
fn caching_headers(
    content_type: &'static str,
    etag: &str,
    this_update: time::OffsetDateTime,
    next_update: time::OffsetDateTime,
    max_age: time::Duration,
) -> [(header::HeaderName, HeaderValue); 5] {
    let now = time::OffsetDateTime::now_utc();
    let age = (next_update - now).min(max_age).max(time::Duration::ZERO);
    let value = |text: String| HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static(""));
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CACHE_CONTROL,
            value(format!(
                "public, max-age={}, no-transform, must-revalidate",
                age.whole_seconds()
            )),
        ),
        (header::EXPIRES, value(http_date(now + age))),
        (header::ETAG, value(etag.to_owned())),
        (header::LAST_MODIFIED, value(http_date(this_update))),
    ]
}

async fn crl(
    State(state): State<SharedState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let name = file
        .strip_suffix(".crl")
        .ok_or_else(|| ApiError::NotFound("CRLs are at /crl/{issuer}.crl".into()))?;
    serve_crl(&state, name, None, &headers)
}

async fn crl_shard(
    State(state): State<SharedState>,
    Path((issuer, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let shard = file
        .strip_suffix(".crl")
        .and_then(|shard| shard.parse::<u8>().ok())
        .ok_or_else(|| ApiError::NotFound("CRL shards are at /crl/{issuer}/{shard}.crl".into()))?;
    serve_crl(&state, &issuer, Some(shard), &headers)
}

/// The latest CRL of `name` (of its shard `shard`), with caching headers.
fn serve_crl(
    state: &AppState,
    name: &str,
    shard: Option<u8>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let issuer = state
        .issuers
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("no issuer {name:?}")))?;
    if !issuer.crl_shards().contains(&shard) {
        return Err(ApiError::NotFound(if issuer.crl_shards <= 1 {
            format!("{name} publishes one CRL, at /crl/{name}.crl")
        } else {
            format!(
                "{name} publishes its CRL in {} shards, at /crl/{name}/{{0..{}}}.crl",
                issuer.crl_shards,
                issuer.crl_shards - 1
            )
        }));
    }
    let scope = carimbo_store::crl_scope(name, shard);
    let crl = state
        .crls
        .latest(&scope)
        .ok_or_else(|| ApiError::IssuerUnavailable(format!("no CRL of {scope} published yet")))?;
    let etag = format!("\"crl-{}\"", crl.number);
    let headers_out = caching_headers(
        "application/pkix-crl",
        &etag,
        crl.this_update,
        crl.next_update,
        state.revocation.ocsp_max_age.0,
    );
    if not_modified(headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, headers_out).into_response());
    }
    Ok((headers_out, crl.der.clone()).into_response())
}

fn ocsp_response(state: &AppState, reply: crate::ocsp::OcspReply, headers: &HeaderMap) -> Response {
    use crate::ocsp::OcspReply;
    match reply {
        OcspReply::Answer(answer) => {
            let headers_out = caching_headers(
                "application/ocsp-response",
                &answer.etag,
                answer.this_update,
                answer.next_update,
                state.revocation.ocsp_max_age.0,
            );
            if not_modified(headers, &answer.etag) {
                return (StatusCode::NOT_MODIFIED, headers_out).into_response();
            }
            (headers_out, answer.der.clone()).into_response()
        }
        other => (
            [
                (header::CONTENT_TYPE, "application/ocsp-response"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            other.body(),
        )
            .into_response(),
    }
}

fn ocsp_error(status: carimbo_pki::OcspResponseStatus) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/ocsp-response"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        carimbo_pki::ocsp_error_response(status),
    )
        .into_response()
}

async fn ocsp_post(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let content_type_ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/ocsp-request"));
    if !content_type_ok {
        return ApiError::UnsupportedMediaTypeOf("application/ocsp-request").into_response();
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::PayloadTooLarge(carimbo_pki::MAX_OCSP_REQUEST_BYTES).into_response();
        }
        Err(_) => {
            state.metrics.ocsp_answered("malformed");
            return ocsp_error(carimbo_pki::OcspResponseStatus::MalformedRequest);
        }
    };
    let reply = state.ocsp.answer(&state, &body).await;
    ocsp_response(&state, reply, &headers)
}

async fn ocsp_get(
    State(state): State<SharedState>,
    Path(request): Path<String>,
    headers: HeaderMap,
) -> Response {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    // RFC 6960 appendix A.1: base64 of the DER, URL-encoded (axum decoded the path).
    let text = request.trim();
    if text.len() > carimbo_pki::MAX_OCSP_REQUEST_BYTES * 2 {
        state.metrics.ocsp_answered("malformed");
        return ocsp_error(carimbo_pki::OcspResponseStatus::MalformedRequest);
    }
    let der = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok());
    let Some(der) = der else {
        state.metrics.ocsp_answered("malformed");
        return ocsp_error(carimbo_pki::OcspResponseStatus::MalformedRequest);
    };
    let reply = state.ocsp.answer(&state, &der).await;
    ocsp_response(&state, reply, &headers)
}
