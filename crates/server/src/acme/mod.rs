//! ACME (RFC 8555) on the HTTPS API listener, one directory per profile
//! (`/acme/{profile}/directory`) for each profile an ACME provisioner grants.
//!
//! Carimbo keeps its own policy: an account belongs to an ACME provisioner granting its
//! directory's profile (the one its External Account Binding key names, or the
//! profile's provisioner that takes accounts without EAB), whose SAN patterns decide
//! which identifiers it may order (`rejectedIdentifier` otherwise) and whose `max-ttl`
//! bounds the certificate.
//! Finalization goes through the ordinary issuance path ([`crate::issuance::issue`]),
//! which writes the certificate record and its audit event before the order is linked
//! to the serial; revocation goes through [`crate::revocation::revoke`].
//!
//! State lives in the database ([`carimbo_store::AcmeStore`]): nonces are single use
//! across replicas, and every state change is a conditional update. Every response
//! carries a fresh `Replay-Nonce` and a `Link: <directory>;rel="index"`; errors are
//! `application/problem+json` with `urn:ietf:params:acme:error:*` types. Every change,
//! and every refusal, leaves an audit event.
//!
//! Implemented: nonces, accounts (ES256, RS256, EdDSA; `onlyReturnExisting`, contact
//! update, deactivation), orders, http-01, finalization, download
//! with chain, revocation by the owning account or by the certificate key, ACME Renewal
//! Information (RFC 9773), key change, External Account Binding, tls-alpn-01 (RFC 8737),
//! dns-01 (through the configured resolver; wildcards with dns-01 only), `ip`
//! identifiers with http-01 (RFC 8738). Not yet: tls-alpn-01 for `ip` identifiers.

pub mod dns;
pub mod jws;
pub mod tls_alpn;
pub mod validation;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carimbo_pki::{LeafKind, RevocationReason, SubjectAltName, pem_encode, validate_csr};
use carimbo_store::{
    AcmeAccount, AcmeAccountStatus, AcmeAuthorization, AcmeAuthorizationStatus, AcmeChallenge,
    AcmeChallengeStatus, AcmeIdentifier, AcmeOrder, AcmeOrderStatus, ChallengeOutcome, StoreError,
};
use serde_json::{Value, json};
use time::OffsetDateTime;

use self::jws::{ALGORITHMS, Jwk, Jws, JwsError, Signer};
use self::validation::{AddressPolicy, Http01, Network};
use crate::config::AcmeSection;
use crate::issuance::{self, Caller, CertificateRequest, random_id};
use crate::policy::Provisioner;
use crate::routes::SharedState;
use crate::state::AppState;
use crate::{ApiError, revocation};

/// How long a nonce stays usable.
const NONCE_LIFETIME: time::Duration = time::Duration::hours(1);
/// Most identifiers in one order.
const MAX_IDENTIFIERS: usize = 100;
/// Orders listed in an account's `orders` resource.
const ORDERS_LISTED: u32 = 100;
/// One in this many nonce issuances also deletes expired nonces.
const PRUNE_EVERY: u8 = 64;
/// The content type of ACME requests.
const JOSE_JSON: &str = "application/jose+json";

/// The ACME settings the service runs with (from `[acme]`).
#[derive(Clone, Debug)]
pub struct AcmeSettings {
    /// http-01 validation settings (its timeout also bounds dns-01).
    pub http01: Http01,
    /// tls-alpn-01 validation settings.
    pub tls_alpn01: tls_alpn::TlsAlpn01,
    /// The recursive resolver dns-01 asks; dns-01 is offered only when there is one.
    pub dns_resolver: Option<std::net::SocketAddr>,
    /// Lifetime of orders and authorizations.
    pub order_lifetime: time::Duration,
}

impl AcmeSettings {
    /// From the config section (already checked by the config loader).
    pub fn from_config(section: &AcmeSection) -> Result<Self, String> {
        let allowed = section
            .allow_networks
            .iter()
            .map(|n| Network::parse(n))
            .collect::<Result<Vec<_>, _>>()?;
        let timeout = Duration::from_millis(
            u64::try_from(section.validation_timeout.0.whole_milliseconds()).unwrap_or(10_000),
        );
        Ok(Self {
            http01: Http01 {
                port: section.http_01_port,
                policy: AddressPolicy {
                    allowed: allowed.clone(),
                },
                timeout,
            },
            order_lifetime: section.order_lifetime.0,
            dns_resolver: section.dns_resolver.or_else(system_resolver),
            tls_alpn01: tls_alpn::TlsAlpn01 {
                port: section.tls_alpn_01_port,
                policy: AddressPolicy { allowed },
                timeout,
            },
        })
    }
}

/// The first `nameserver` of `/etc/resolv.conf`, port 53.
fn system_resolver() -> Option<std::net::SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").ok()?;
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("nameserver"))
            .then(|| words.next())
            .flatten()
            .and_then(|address| address.parse::<std::net::IpAddr>().ok())
            .map(|ip| std::net::SocketAddr::new(ip, 53))
    })
}

/// An ACME problem (RFC 8555 §6.7).
#[derive(Debug)]
pub struct Problem {
    /// The error type after `urn:ietf:params:acme:error:`.
    pub kind: &'static str,
    /// What went wrong.
    pub detail: String,
    /// The HTTP status.
    pub status: StatusCode,
}

impl Problem {
    fn new(kind: &'static str, status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status,
        }
    }

    fn malformed(detail: impl Into<String>) -> Self {
        Self::new("malformed", StatusCode::BAD_REQUEST, detail)
    }

    fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new("unauthorized", StatusCode::FORBIDDEN, detail)
    }

    fn not_found(detail: impl Into<String>) -> Self {
        Self::new("malformed", StatusCode::NOT_FOUND, detail)
    }

    fn internal(detail: impl Into<String>) -> Self {
        Self::new("serverInternal", StatusCode::INTERNAL_SERVER_ERROR, detail)
    }

    /// The problem document.
    pub fn document(&self) -> Value {
        let mut document = json!({
            "type": format!("urn:ietf:params:acme:error:{}", self.kind),
            "detail": self.detail,
            "status": self.status.as_u16(),
        });
        if self.kind == "badSignatureAlgorithm" {
            document["algorithms"] = json!(ALGORITHMS);
        }
        document
    }
}

impl From<JwsError> for Problem {
    fn from(error: JwsError) -> Self {
        match error {
            JwsError::BadSignatureAlgorithm(_) => Self::new(
                "badSignatureAlgorithm",
                StatusCode::BAD_REQUEST,
                error.to_string(),
            ),
            JwsError::BadPublicKey(_) => {
                Self::new("badPublicKey", StatusCode::BAD_REQUEST, error.to_string())
            }
            _ => Self::malformed(error.to_string()),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        let api = ApiError::from(error);
        match api {
            ApiError::DatabaseUnavailable => Self::new(
                "serverInternal",
                StatusCode::SERVICE_UNAVAILABLE,
                api.to_string(),
            ),
            other => Self::internal(other.to_string()),
        }
    }
}

/// Routes of every ACME directory (`/acme/{profile}/…`).
pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/acme/{profile}/directory", get(directory))
        .route("/acme/{profile}/new-nonce", get(new_nonce))
        .route("/acme/{profile}/new-account", post(new_account))
        .route("/acme/{profile}/acct/{id}", post(account))
        .route("/acme/{profile}/acct/{id}/orders", post(account_orders))
        .route("/acme/{profile}/new-order", post(new_order))
        .route("/acme/{profile}/order/{id}", post(order))
        .route("/acme/{profile}/order/{id}/finalize", post(finalize))
        .route("/acme/{profile}/authz/{id}", post(authorization))
        .route("/acme/{profile}/chall/{id}", post(challenge))
        .route("/acme/{profile}/cert/{serial}", post(certificate))
        .route("/acme/{profile}/revoke-cert", post(revoke_certificate))
        .route("/acme/{profile}/renewal-info/{id}", get(renewal_info))
        .route("/acme/{profile}/key-change", post(key_change))
}

/// What every handler starts from: the directory's profile, its provisioners and base
/// URL.
struct Directory {
    profile: LeafKind,
    /// The ACME provisioner that takes accounts without External Account Binding, if
    /// any (otherwise EAB is required).
    open: Option<Provisioner>,
    /// Every ACME provisioner granting the profile.
    provisioners: Vec<Provisioner>,
    /// `https://{host}/acme/{profile}`.
    base: String,
}

impl Directory {
    fn find(
        state: &AppState,
        profile: &str,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Self, Problem> {
        let kind: LeafKind = profile
            .parse()
            .map_err(|_| Problem::not_found(format!("no ACME directory for {profile:?}")))?;
        let provisioners: Vec<Provisioner> = state
            .provisioners
            .values()
            .filter(|p| p.acme && p.profiles.contains(&kind))
            .cloned()
            .collect();
        if provisioners.is_empty() {
            return Err(Problem::not_found(format!(
                "no ACME directory for {profile:?}"
            )));
        }
        let open = provisioners.iter().find(|p| !p.require_eab).cloned();
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                headers
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .ok_or_else(|| Problem::malformed("the request names no host"))?;
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        {
            return Err(Problem::malformed("invalid Host header"));
        }
        Ok(Self {
            profile: kind,
            open,
            provisioners,
            base: format!("https://{host}/acme/{kind}"),
        })
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/{tail}", self.base)
    }

    /// The provisioner an account belongs to: it must still exist, be an ACME
    /// provisioner and grant this profile.
    fn provisioner_of(&self, account: &AcmeAccount) -> Result<&Provisioner, Problem> {
        self.provisioners
            .iter()
            .find(|p| p.name == account.provisioner)
            .ok_or_else(|| {
                Problem::unauthorized(format!(
                    "the account's provisioner {:?} no longer grants this profile",
                    account.provisioner
                ))
            })
    }

    /// The provisioner a new account with this binding (or none) belongs to, and the
    /// binding's key id.
    fn provisioner_for_binding(
        &self,
        binding: Option<&Value>,
        account_key: &Jwk,
    ) -> Result<(&Provisioner, Option<String>), Problem> {
        let Some(binding) = binding else {
            return self.open.as_ref().map(|p| (p, None)).ok_or_else(|| {
                Problem::new(
                    "externalAccountRequired",
                    StatusCode::UNAUTHORIZED,
                    "this directory requires External Account Binding",
                )
            });
        };
        let binding = jws::ExternalAccountBinding::parse(binding)?;
        if binding.url != self.url("new-account") {
            return Err(Problem::unauthorized(
                "the external account binding was made for another URL",
            ));
        }
        let (provisioner, key) = self
            .provisioners
            .iter()
            .find_map(|p| {
                p.eab_keys
                    .iter()
                    .find(|k| k.kid == binding.kid)
                    .map(|k| (p, k))
            })
            .ok_or_else(|| Problem::unauthorized("unknown external account key"))?;
        binding
            .verify(&key.key)
            .map_err(|_| Problem::unauthorized("the external account binding does not verify"))?;
        if !binding.binds(account_key) {
            return Err(Problem::unauthorized(
                "the external account binding is not over this account's key",
            ));
        }
        Ok((provisioner, Some(binding.kid)))
    }
}

/// A response with a fresh nonce and the index link; refusals are audited.
async fn respond(
    state: &AppState,
    base: Option<&str>,
    path: &str,
    result: Result<Response, Problem>,
) -> Response {
    let mut response = match result {
        Ok(response) => response,
        Err(problem) => {
            let _ = state
                .audit(json!({
                    "type": "acme.refused",
                    "path": path,
                    "problem": problem.kind,
                    "detail": problem.detail,
                }))
                .await;
            let mut response = (problem.status, axum::Json(problem.document())).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            );
            response
        }
    };
    let headers = response.headers_mut();
    match fresh_nonce(state).await {
        Ok(nonce) => {
            if let Ok(value) = HeaderValue::from_str(&nonce) {
                headers.insert("replay-nonce", value);
            }
        }
        Err(problem) => tracing::warn!(detail = %problem.detail, "no ACME nonce could be stored"),
    }
    if let Some(base) = base
        && let Ok(value) = HeaderValue::from_str(&format!("<{base}/directory>;rel=\"index\""))
    {
        headers.append(header::LINK, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn fresh_nonce(state: &AppState) -> Result<String, Problem> {
    let mut bytes = [0u8; 17];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Problem::internal("random generator failed"))?;
    let nonce = URL_SAFE_NO_PAD.encode(&bytes[..16]);
    let now = OffsetDateTime::now_utc();
    state
        .store
        .insert_acme_nonce(&nonce, now + NONCE_LIFETIME)
        .await?;
    if bytes[16] % PRUNE_EVERY == 0 {
        let _ = state.store.prune_acme_nonces(now).await;
    }
    Ok(nonce)
}

fn json_response(status: StatusCode, body: Value, location: Option<&str>) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(location) = location
        && let Ok(value) = HeaderValue::from_str(location)
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn directory(
    State(state): State<SharedState>,
    Path(profile): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path().to_owned();
    let found = Directory::find(&state, &profile, &headers, &uri);
    let base = found.as_ref().ok().map(|d| d.base.clone());
    let result = found.map(|d| {
        json_response(
            StatusCode::OK,
            json!({
                "newNonce": d.url("new-nonce"),
                "newAccount": d.url("new-account"),
                "newOrder": d.url("new-order"),
                "revokeCert": d.url("revoke-cert"),
                "renewalInfo": d.url("renewal-info"),
                "keyChange": d.url("key-change"),
                "meta": {
                    "externalAccountRequired": d.open.is_none(),
                },
            }),
            None,
        )
    });
    respond(&state, base.as_deref(), &path, result).await
}

async fn new_nonce(
    State(state): State<SharedState>,
    Path(profile): Path<String>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path().to_owned();
    let found = Directory::find(&state, &profile, &headers, &uri);
    let base = found.as_ref().ok().map(|d| d.base.clone());
    let result = found.map(|_| {
        let status = if method == Method::HEAD {
            StatusCode::OK
        } else {
            StatusCode::NO_CONTENT
        };
        status.into_response()
    });
    respond(&state, base.as_deref(), &path, result).await
}

/// Which key a request must be signed with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyMode {
    /// A new key (`jwk`): newAccount.
    Jwk,
    /// An existing account (`kid`).
    Account,
    /// Either (revokeCert).
    Either,
}

/// A request whose JWS verified and whose nonce was consumed.
struct Verified {
    jws: Jws,
    /// The signing key.
    key: Jwk,
    /// The account, for `kid` requests.
    account: Option<AcmeAccount>,
}

impl Verified {
    fn account(&self) -> Result<&AcmeAccount, Problem> {
        self.account
            .as_ref()
            .ok_or_else(|| Problem::malformed("this request must be signed by an account (kid)"))
    }

    fn payload(&self) -> Result<Value, Problem> {
        self.jws.payload_json().map_err(Problem::from)
    }

    fn is_post_as_get(&self) -> bool {
        self.jws.payload.is_empty()
    }
}

fn stored_key(account: &AcmeAccount) -> Result<Jwk, Problem> {
    let value: Value = serde_json::from_str(&account.jwk)
        .map_err(|_| Problem::internal("stored account key is not JSON"))?;
    Jwk::from_json(&value).map_err(|_| Problem::internal("stored account key is invalid"))
}

/// Checks a POST: content type, JWS shape, URL, key, signature, then the nonce (last,
/// so a request refused for anything else does not spend it).
async fn verify(
    state: &AppState,
    directory: &Directory,
    headers: &HeaderMap,
    uri: &Uri,
    body: Result<Bytes, BytesRejection>,
    mode: KeyMode,
) -> Result<Verified, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.eq_ignore_ascii_case(JOSE_JSON) {
        return Err(Problem::new(
            "malformed",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("the content type must be {JOSE_JSON}"),
        ));
    }
    let body = body.map_err(|rejection| {
        Problem::new("malformed", rejection.status(), rejection.body_text())
    })?;
    let jws = Jws::parse(&body)?;
    let expected_url = format!(
        "{}{}",
        directory
            .base
            .trim_end_matches(&format!("/acme/{}", directory.profile)),
        uri.path()
    );
    if jws.header.url != expected_url {
        return Err(Problem::unauthorized(format!(
            "the JWS url {:?} is not the URL of this request",
            jws.header.url
        )));
    }
    let (key, account) = match (&jws.header.signer, mode) {
        (Signer::Jwk(key), KeyMode::Jwk | KeyMode::Either) => (key.clone(), None),
        (Signer::Kid(kid), KeyMode::Account | KeyMode::Either) => {
            let id = kid
                .strip_prefix(&format!("{}/acct/", directory.base))
                .filter(|id| !id.is_empty() && !id.contains('/'))
                .ok_or_else(|| {
                    Problem::new(
                        "accountDoesNotExist",
                        StatusCode::BAD_REQUEST,
                        "kid is not an account URL of this directory",
                    )
                })?;
            let account = state.store.acme_account(id).await?.ok_or_else(|| {
                Problem::new(
                    "accountDoesNotExist",
                    StatusCode::BAD_REQUEST,
                    "no such account",
                )
            })?;
            if account.status != AcmeAccountStatus::Valid {
                return Err(Problem::unauthorized(format!(
                    "the account is {}",
                    account.status
                )));
            }
            if account.profile != directory.profile.as_str() {
                return Err(Problem::unauthorized(
                    "the account belongs to another directory",
                ));
            }
            (stored_key(&account)?, Some(account))
        }
        (Signer::Jwk(_), KeyMode::Account) => {
            return Err(Problem::malformed(
                "this request must name its account with kid, not jwk",
            ));
        }
        (Signer::Kid(_), KeyMode::Jwk) => {
            return Err(Problem::malformed(
                "this request must carry its key as jwk, not kid",
            ));
        }
    };
    jws.verify(&key)?;
    let nonce =
        jws.header.nonce.as_deref().ok_or_else(|| {
            Problem::new("badNonce", StatusCode::BAD_REQUEST, "the JWS has no nonce")
        })?;
    if !state
        .store
        .consume_acme_nonce(nonce, OffsetDateTime::now_utc())
        .await?
    {
        return Err(Problem::new(
            "badNonce",
            StatusCode::BAD_REQUEST,
            "the nonce is unknown, used or expired",
        ));
    }
    Ok(Verified { jws, key, account })
}

/// Runs a POST handler body with the common checks and the common response.
async fn handle<F, Fut>(
    state: SharedState,
    profile: String,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
    mode: KeyMode,
    work: F,
) -> Response
where
    F: FnOnce(SharedState, Directory, Verified) -> Fut,
    Fut: std::future::Future<Output = Result<Response, Problem>>,
{
    let path = uri.path().to_owned();
    let found = Directory::find(&state, &profile, &headers, &uri);
    let base = found.as_ref().ok().map(|d| d.base.clone());
    let result = match found {
        Ok(directory) => match verify(&state, &directory, &headers, &uri, body, mode).await {
            Ok(verified) => work(Arc::clone(&state), directory, verified).await,
            Err(problem) => Err(problem),
        },
        Err(problem) => Err(problem),
    };
    respond(&state, base.as_deref(), &path, result).await
}

fn account_json(directory: &Directory, account: &AcmeAccount) -> Value {
    json!({
        "status": account.status.as_str(),
        "contact": account.contact,
        "orders": directory.url(&format!("acct/{}/orders", account.id)),
    })
}

fn check_contacts(value: Option<&Value>) -> Result<Option<Vec<String>>, Problem> {
    let Some(value) = value else { return Ok(None) };
    let list = value
        .as_array()
        .ok_or_else(|| Problem::malformed("contact must be a list of URLs"))?;
    let mut contacts = Vec::new();
    for item in list {
        let text = item
            .as_str()
            .ok_or_else(|| Problem::malformed("contact must be a list of URLs"))?;
        let Some(address) = text.strip_prefix("mailto:") else {
            return Err(Problem::new(
                "unsupportedContact",
                StatusCode::BAD_REQUEST,
                "only mailto: contacts are supported",
            ));
        };
        if address.is_empty()
            || address.len() > 254
            || !address.contains('@')
            || address.contains(',')
            || address.contains('?')
            || address.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Problem::new(
                "invalidContact",
                StatusCode::BAD_REQUEST,
                "a contact must be one mailto: address",
            ));
        }
        contacts.push(text.to_owned());
    }
    if contacts.len() > 10 {
        return Err(Problem::malformed("at most 10 contacts"));
    }
    Ok(Some(contacts))
}

async fn new_account(
    State(state): State<SharedState>,
    Path(profile): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(
        state,
        profile,
        headers,
        uri,
        body,
        KeyMode::Jwk,
        |state, directory, verified| async move {
            let payload = verified.payload()?;
            let thumbprint = verified.key.thumbprint();
            if let Some(existing) = state.store.acme_account_by_thumbprint(&thumbprint).await? {
                if existing.profile != directory.profile.as_str() {
                    return Err(Problem::unauthorized(
                        "this key holds an account of another directory",
                    ));
                }
                let location = directory.url(&format!("acct/{}", existing.id));
                return Ok(json_response(
                    StatusCode::OK,
                    account_json(&directory, &existing),
                    Some(&location),
                ));
            }
            if payload.get("onlyReturnExisting").and_then(Value::as_bool) == Some(true) {
                return Err(Problem::new(
                    "accountDoesNotExist",
                    StatusCode::BAD_REQUEST,
                    "no account has this key",
                ));
            }
            let (provisioner, eab_kid) = directory
                .provisioner_for_binding(payload.get("externalAccountBinding"), &verified.key)?;
            let provisioner = provisioner.name.clone();

            let contact = check_contacts(payload.get("contact"))?.unwrap_or_default();
            let account = AcmeAccount {
                id: random_id(16).map_err(|e| Problem::internal(e.to_string()))?,
                thumbprint,
                jwk: verified.key.canonical_json(),
                contact,
                status: AcmeAccountStatus::Valid,
                provisioner,
                profile: directory.profile.to_string(),
                created_at: OffsetDateTime::now_utc(),
            };
            match state.store.create_acme_account(&account).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => {
                    // Created concurrently with the same key: return that one.
                    let existing = state
                        .store
                        .acme_account_by_thumbprint(&account.thumbprint)
                        .await?
                        .ok_or_else(|| Problem::internal("account vanished"))?;
                    let location = directory.url(&format!("acct/{}", existing.id));
                    return Ok(json_response(
                        StatusCode::OK,
                        account_json(&directory, &existing),
                        Some(&location),
                    ));
                }
                Err(other) => return Err(other.into()),
            }
            state
                .audit(json!({
                        "type": "acme.account.created",
                        "account": account.id,
                        "provisioner": account.provisioner,
                        "profile": account.profile,
                        "key_thumbprint": account.thumbprint,
                    "external_account": eab_kid,
                }))
                .await
                .map_err(|e| Problem::internal(e.to_string()))?;
            let location = directory.url(&format!("acct/{}", account.id));
            Ok(json_response(
                StatusCode::CREATED,
                account_json(&directory, &account),
                Some(&location),
            ))
        },
    )
    .await
}

/// The account of a `kid` request, which must be the account `id` of the path.
fn own_account<'a>(verified: &'a Verified, id: &str) -> Result<&'a AcmeAccount, Problem> {
    let account = verified.account()?;
    if account.id != id {
        return Err(Problem::unauthorized("this is not the signing account"));
    }
    Ok(account)
}

async fn account(
    State(state): State<SharedState>,
    Path((profile, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(
        state,
        profile,
        headers,
        uri,
        body,
        KeyMode::Account,
        |state, directory, verified| async move {
            let account = own_account(&verified, &id)?.clone();
            let location = directory.url(&format!("acct/{}", account.id));
            if verified.is_post_as_get() {
                return Ok(json_response(
                    StatusCode::OK,
                    account_json(&directory, &account),
                    Some(&location),
                ));
            }
            let payload = verified.payload()?;
            let updated = match payload.get("status").and_then(Value::as_str) {
                Some("deactivated") => {
                    let updated = state.store.deactivate_acme_account(&account.id).await?;
                    state
                        .audit(json!({"type": "acme.account.deactivated", "account": account.id}))
                        .await
                        .map_err(|e| Problem::internal(e.to_string()))?;
                    updated
                }
                Some(other) => {
                    return Err(Problem::malformed(format!(
                        "an account's status can only be set to deactivated, not {other:?}"
                    )));
                }
                None => match check_contacts(payload.get("contact"))? {
                    Some(contact) => {
                        let updated = state
                            .store
                            .update_acme_account_contact(&account.id, &contact)
                            .await?;
                        state
                            .audit(json!({"type": "acme.account.updated", "account": account.id}))
                            .await
                            .map_err(|e| Problem::internal(e.to_string()))?;
                        updated
                    }
                    None => account,
                },
            };
            Ok(json_response(
                StatusCode::OK,
                account_json(&directory, &updated),
                Some(&location),
            ))
        },
    )
    .await
}

async fn account_orders(
    State(state): State<SharedState>,
    Path((profile, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(
        state,
        profile,
        headers,
        uri,
        body,
        KeyMode::Account,
        |state, directory, verified| async move {
            let account = own_account(&verified, &id)?;
            let orders = state
                .store
                .acme_orders_of(&account.id, ORDERS_LISTED)
                .await?;
            let urls: Vec<String> = orders
                .iter()
                .map(|id| directory.url(&format!("order/{id}")))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                json!({ "orders": urls }),
                None,
            ))
        },
    )
    .await
}

/// The order's status as shown: a pending or ready order past its expiry is invalid.
fn shown_status(order: &AcmeOrder, now: OffsetDateTime) -> AcmeOrderStatus {
    match order.status {
        AcmeOrderStatus::Pending | AcmeOrderStatus::Ready if order.expires_at <= now => {
            AcmeOrderStatus::Invalid
        }
        status => status,
    }
}

async fn order_json(
    state: &AppState,
    directory: &Directory,
    order: &AcmeOrder,
) -> Result<Value, Problem> {
    let authorizations = state.store.acme_order_authorizations(&order.id).await?;
    let mut body = json!({
        "status": shown_status(order, OffsetDateTime::now_utc()).as_str(),
        "expires": rfc3339(order.expires_at),
        "identifiers": order
            .identifiers
            .iter()
            .map(|i| json!({"type": i.kind, "value": i.value}))
            .collect::<Vec<_>>(),
        "authorizations": authorizations
            .iter()
            .map(|a| directory.url(&format!("authz/{}", a.id)))
            .collect::<Vec<_>>(),
        "finalize": directory.url(&format!("order/{}/finalize", order.id)),
    });
    if let Some(serial) = &order.certificate_serial {
        body["certificate"] = json!(directory.url(&format!("cert/{serial}")));
    }
    if let Some(error) = &order.error
        && let Ok(problem) = serde_json::from_str::<Value>(error)
    {
        body["error"] = problem;
    }
    Ok(body)
}

/// The identifiers of a newOrder payload, normalised, deduplicated and checked against
/// the profile and the provisioner's policy.
fn order_identifiers(
    state: &AppState,
    directory: &Directory,
    provisioner: &Provisioner,
    payload: &Value,
) -> Result<(Vec<AcmeIdentifier>, Vec<SubjectAltName>), Problem> {
    if payload.get("notBefore").is_some() || payload.get("notAfter").is_some() {
        return Err(Problem::malformed(
            "notBefore and notAfter are not supported: the profile sets the validity",
        ));
    }
    let list = payload
        .get("identifiers")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| Problem::malformed("identifiers must be a non-empty list"))?;
    if list.len() > MAX_IDENTIFIERS {
        return Err(Problem::new(
            "rejectedIdentifier",
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_IDENTIFIERS} identifiers per order"),
        ));
    }
    let mut names = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    for item in list {
        let kind = item.get("type").and_then(Value::as_str);
        let value = item.get("value").and_then(Value::as_str);
        match (kind, value) {
            (Some("dns"), Some(value)) if !value.is_empty() => {
                names.insert(value.trim_end_matches('.').to_ascii_lowercase());
            }
            (Some("dns"), _) => return Err(Problem::malformed("a dns identifier needs a value")),
            (Some("ip"), Some(value)) => {
                // RFC 8738: the address in its canonical text form.
                let ip: std::net::IpAddr = value
                    .parse()
                    .map_err(|_| Problem::malformed(format!("{value:?} is not an IP address")))?;
                addresses.insert(ip);
            }
            (Some(other), _) => {
                return Err(Problem::new(
                    "unsupportedIdentifier",
                    StatusCode::BAD_REQUEST,
                    format!("identifier type {other:?} is not supported (dns, ip)"),
                ));
            }
            (None, _) => return Err(Problem::malformed("an identifier needs a type")),
        }
    }
    let mut sans = Vec::new();
    for name in &names {
        if name.starts_with("*.") && state.acme.dns_resolver.is_none() {
            return Err(Problem::new(
                "rejectedIdentifier",
                StatusCode::BAD_REQUEST,
                format!("{name}: wildcard names need dns-01, and no DNS resolver is configured"),
            ));
        }
        sans.push(SubjectAltName::Dns(name.clone()));
    }
    sans.extend(addresses.iter().copied().map(SubjectAltName::Ip));
    let profile = state
        .profiles
        .get(&directory.profile)
        .ok_or_else(|| Problem::internal("profile not configured"))?;
    carimbo_pki::check_sans(profile, &sans)
        .map_err(|e| Problem::new("rejectedIdentifier", StatusCode::BAD_REQUEST, e.to_string()))?;
    provisioner
        .authorize(directory.profile, &sans, None)
        .map_err(|e| Problem::new("rejectedIdentifier", StatusCode::FORBIDDEN, e))?;
    let identifiers = names
        .into_iter()
        .map(|value| AcmeIdentifier {
            kind: "dns".into(),
            value,
        })
        .chain(addresses.iter().map(|ip| AcmeIdentifier {
            kind: "ip".into(),
            value: ip.to_string(),
        }))
        .collect();
    Ok((identifiers, sans))
}

fn random_token() -> Result<String, Problem> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Problem::internal("random generator failed"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn new_id() -> Result<String, Problem> {
    random_id(16).map_err(|e| Problem::internal(e.to_string()))
}

async fn new_order(
    State(state): State<SharedState>,
    Path(profile): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, profile, headers, uri, body, KeyMode::Account, |state, directory, verified| async move {
        let account = verified.account()?.clone();
        let payload = verified.payload()?;
        let provisioner = directory.provisioner_of(&account)?;
        let (identifiers, _) = order_identifiers(&state, &directory, provisioner, &payload)?;
        let now = OffsetDateTime::now_utc();
        let expires_at = now + state.acme.order_lifetime;
        let order_id = new_id()?;
        let mut authorizations = Vec::new();
        for identifier in &identifiers {
            let authorization_id = new_id()?;
            authorizations.push(AcmeAuthorization {
                id: authorization_id.clone(),
                order_id: order_id.clone(),
                account_id: account.id.clone(),
                identifier: identifier.clone(),
                status: AcmeAuthorizationStatus::Pending,
                expires_at,
                challenges: {
                    // A wildcard is proven for its base name, by dns-01 only (RFC 8555
                    // §7.1.3, §8).
                    let mut kinds = if identifier.kind == "ip" {
                        // RFC 8738 §7: no dns-01 for addresses; tls-alpn-01 for them
                        // (reverse-DNS SNI) is not implemented.
                        vec!["http-01"]
                    } else if identifier.value.starts_with("*.") {
                        vec![]
                    } else {
                        vec!["http-01", "tls-alpn-01"]
                    };
                    if state.acme.dns_resolver.is_some() && identifier.kind == "dns" {
                        kinds.push("dns-01");
                    }
                    let mut challenges = Vec::new();
                    for kind in kinds {
                        challenges.push(AcmeChallenge {
                            id: new_id()?,
                            authorization_id: authorization_id.clone(),
                            kind: kind.into(),
                            token: random_token()?,
                            status: AcmeChallengeStatus::Pending,
                            validated_at: None,
                            error: None,
                        });
                    }
                    challenges
                },
            });
        }
        let order = AcmeOrder {
            id: order_id,
            account_id: account.id.clone(),
            profile: directory.profile.to_string(),
            status: AcmeOrderStatus::Pending,
            identifiers,
            expires_at,
            error: None,
            certificate_serial: None,
            created_at: now,
        };
        state.store.create_acme_order(&order, &authorizations).await?;
        state
            .audit(json!({
                "type": "acme.order.created",
                "account": account.id,
                "order": order.id,
                "provisioner": account.provisioner,
                "identifiers": order.identifiers.iter().map(|i| format!("{}:{}", i.kind, i.value)).collect::<Vec<_>>(),
            }))
            .await
            .map_err(|e| Problem::internal(e.to_string()))?;
        let location = directory.url(&format!("order/{}", order.id));
        Ok(json_response(
            StatusCode::CREATED,
            order_json(&state, &directory, &order).await?,
            Some(&location),
        ))
    })
    .await
}

/// The order `id`, which must belong to the signing account.
async fn owned_order(
    state: &AppState,
    verified: &Verified,
    id: &str,
) -> Result<AcmeOrder, Problem> {
    let account = verified.account()?;
    match state.store.acme_order(id).await? {
        Some(order) if order.account_id == account.id => Ok(order),
        Some(_) => Err(Problem::unauthorized(
            "the order belongs to another account",
        )),
        None => Err(Problem::not_found("no such order")),
    }
}

async fn order(
    State(state): State<SharedState>,
    Path((profile, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(
        state,
        profile,
        headers,
        uri,
        body,
        KeyMode::Account,
        |state, directory, verified| async move {
            let order = owned_order(&state, &verified, &id).await?;
            let location = directory.url(&format!("order/{}", order.id));
            Ok(json_response(
                StatusCode::OK,
                order_json(&state, &directory, &order).await?,
                Some(&location),
            ))
        },
    )
    .await
}

fn challenge_json(directory: &Directory, challenge: &AcmeChallenge) -> Value {
    let mut body = json!({
        "type": challenge.kind,
        "url": directory.url(&format!("chall/{}", challenge.id)),
        "token": challenge.token,
        "status": challenge.status.as_str(),
    });
    if let Some(at) = challenge.validated_at {
        body["validated"] = json!(rfc3339(at));
    }
    if let Some(error) = &challenge.error
        && let Ok(problem) = serde_json::from_str::<Value>(error)
    {
        body["error"] = problem;
    }
    body
}

/// The name a wildcard identifier is validated for: without its `*.`.
fn base_name(value: &str) -> &str {
    value.strip_prefix("*.").unwrap_or(value)
}

fn authorization_json(directory: &Directory, authorization: &AcmeAuthorization) -> Value {
    let status = match authorization.status {
        AcmeAuthorizationStatus::Pending | AcmeAuthorizationStatus::Valid
            if authorization.expires_at <= OffsetDateTime::now_utc() =>
        {
            AcmeAuthorizationStatus::Expired
        }
        status => status,
    };
    let mut body = json!({
        "identifier": {
            "type": authorization.identifier.kind,
            "value": base_name(&authorization.identifier.value),
        },
        "status": status.as_str(),
        "expires": rfc3339(authorization.expires_at),
        "challenges": authorization
            .challenges
            .iter()
            .map(|c| challenge_json(directory, c))
            .collect::<Vec<_>>(),
    });
    if authorization.identifier.value.starts_with("*.") {
        // RFC 8555 §7.1.4: present, and true, only for wildcard authorizations.
        body["wildcard"] = json!(true);
    }
    body
}

async fn owned_authorization(
    state: &AppState,
    verified: &Verified,
    id: &str,
) -> Result<AcmeAuthorization, Problem> {
    let account = verified.account()?;
    match state.store.acme_authorization(id).await? {
        Some(authorization) if authorization.account_id == account.id => Ok(authorization),
        Some(_) => Err(Problem::unauthorized(
            "the authorization belongs to another account",
        )),
        None => Err(Problem::not_found("no such authorization")),
    }
}

async fn authorization(
    State(state): State<SharedState>,
    Path((profile, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(
        state,
        profile,
        headers,
        uri,
        body,
        KeyMode::Account,
        |state, directory, verified| async move {
            let authorization = owned_authorization(&state, &verified, &id).await?;
            if !verified.is_post_as_get() {
                return Err(Problem::malformed(
                    "deactivating authorizations is not supported; use POST-as-GET",
                ));
            }
            Ok(json_response(
                StatusCode::OK,
                authorization_json(&directory, &authorization),
                None,
            ))
        },
    )
    .await
}

async fn challenge(
    State(state): State<SharedState>,
    Path((profile, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(
        state,
        profile,
        headers,
        uri,
        body,
        KeyMode::Account,
        |state, directory, verified| async move {
            let account = verified.account()?.clone();
            let challenge = state
                .store
                .acme_challenge(&id)
                .await?
                .ok_or_else(|| Problem::not_found("no such challenge"))?;
            let authorization =
                owned_authorization(&state, &verified, &challenge.authorization_id).await?;
            let link = format!(
                "<{}>;rel=\"up\"",
                directory.url(&format!("authz/{}", authorization.id))
            );
            let with_link = |mut response: Response| {
                if let Ok(value) = HeaderValue::from_str(&link) {
                    response.headers_mut().append(header::LINK, value);
                }
                response
            };
            if verified.is_post_as_get() {
                return Ok(with_link(json_response(
                    StatusCode::OK,
                    challenge_json(&directory, &challenge),
                    None,
                )));
            }
            if !verified.payload()?.is_object() {
                return Err(Problem::malformed("a challenge response is the object {}"));
            }
            if authorization.expires_at <= OffsetDateTime::now_utc() {
                return Err(Problem::malformed("the authorization has expired"));
            }
            if !matches!(
                challenge.kind.as_str(),
                "http-01" | "dns-01" | "tls-alpn-01"
            ) {
                return Err(Problem::malformed("unsupported challenge type"));
            }
            if state.store.start_acme_challenge(&id).await? {
                state
                    .audit(json!({
                        "type": "acme.challenge.started",
                        "account": account.id,
                        "challenge": challenge.id,
                        "identifier": authorization.identifier.value,
                    }))
                    .await
                    .map_err(|e| Problem::internal(e.to_string()))?;
                let key_authorization =
                    format!("{}.{}", challenge.token, stored_key(&account)?.thumbprint());
                let task_state = Arc::clone(&state);
                let name = base_name(&authorization.identifier.value).to_owned();
                let token = challenge.token.clone();
                let challenge_id = challenge.id.clone();
                let account_id = account.id.clone();
                let kind = challenge.kind.clone();
                tokio::spawn(async move {
                    run_validation(
                        &task_state,
                        &kind,
                        &challenge_id,
                        &account_id,
                        &name,
                        &token,
                        &key_authorization,
                    )
                    .await;
                });
            }
            let current = state
                .store
                .acme_challenge(&id)
                .await?
                .ok_or_else(|| Problem::not_found("no such challenge"))?;
            Ok(with_link(json_response(
                StatusCode::OK,
                challenge_json(&directory, &current),
                None,
            )))
        },
    )
    .await
}

/// dns-01: a TXT record of `_acme-challenge.{name}` must be base64url(SHA-256(key
/// authorization)).
async fn validate_dns01(
    resolver: std::net::SocketAddr,
    timeout: Duration,
    name: &str,
    key_authorization: &str,
) -> Result<(), validation::ValidationError> {
    let expected = URL_SAFE_NO_PAD.encode(crate::state::sha256(key_authorization.as_bytes()));
    let records = dns::txt_records(resolver, &format!("_acme-challenge.{name}"), timeout).await?;
    if records.iter().any(|r| r.trim() == expected) {
        Ok(())
    } else {
        Err(validation::ValidationError {
            kind: "incorrectResponse",
            detail: format!(
                "no TXT record of _acme-challenge.{name} matches the key authorization ({} found)",
                records.len()
            ),
        })
    }
}

/// Validates one challenge (http-01 or dns-01) and records the outcome (and its audit
/// event).
async fn run_validation(
    state: &AppState,
    kind: &str,
    challenge_id: &str,
    account_id: &str,
    name: &str,
    token: &str,
    key_authorization: &str,
) {
    let result = match (kind, state.acme.dns_resolver) {
        ("dns-01", Some(resolver)) => {
            validate_dns01(resolver, state.acme.http01.timeout, name, key_authorization).await
        }
        ("tls-alpn-01", _) => {
            state
                .acme
                .tls_alpn01
                .validate(name, key_authorization)
                .await
        }
        ("dns-01", None) => Err(validation::ValidationError {
            kind: "serverInternal",
            detail: "no DNS resolver is configured".into(),
        }),
        _ => {
            state
                .acme
                .http01
                .validate(name, token, key_authorization)
                .await
        }
    };
    let outcome = match &result {
        Ok(()) => ChallengeOutcome::Valid(OffsetDateTime::now_utc()),
        Err(error) => ChallengeOutcome::Invalid(
            json!({
                "type": format!("urn:ietf:params:acme:error:{}", error.kind),
                "detail": error.detail,
                "status": 403,
            })
            .to_string(),
        ),
    };
    match state
        .store
        .finish_acme_challenge(challenge_id, &outcome)
        .await
    {
        Ok(_) => {}
        Err(error) => {
            tracing::error!(challenge = challenge_id, error = %error, "could not record a challenge outcome");
            return;
        }
    }
    let event = match &result {
        Ok(()) => json!({
            "type": "acme.challenge.valid",
            "account": account_id,
            "challenge": challenge_id,
            "identifier": name,
        }),
        Err(error) => json!({
            "type": "acme.challenge.invalid",
            "account": account_id,
            "challenge": challenge_id,
            "identifier": name,
            "problem": error.kind,
            "detail": error.detail,
        }),
    };
    let _ = state.audit(event).await;
}

async fn finalize(
    State(state): State<SharedState>,
    Path((profile, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(state, profile, headers, uri, body, KeyMode::Account, |state, directory, verified| async move {
        let account = verified.account()?.clone();
        let order = owned_order(&state, &verified, &id).await?;
        let now = OffsetDateTime::now_utc();
        if shown_status(&order, now) != AcmeOrderStatus::Ready {
            return Err(Problem::new(
                "orderNotReady",
                StatusCode::FORBIDDEN,
                format!("the order is {}", shown_status(&order, now)),
            ));
        }
        let payload = verified.payload()?;
        let csr = payload
            .get("csr")
            .and_then(Value::as_str)
            .ok_or_else(|| Problem::malformed("csr missing"))?;
        let csr = jws::decode_b64(csr, "csr")?;
        let bad_csr = |detail: String| Problem::new("badCSR", StatusCode::BAD_REQUEST, detail);
        let profile = state
            .profiles
            .get(&directory.profile)
            .ok_or_else(|| Problem::internal("profile not configured"))?;
        // The names first, before anything changes: they must be exactly the order's.
        let validated = validate_csr(&csr, profile).map_err(|e| bad_csr(e.to_string()))?;
        let requested: BTreeSet<String> =
            validated.requested_sans.iter().map(ToString::to_string).collect();
        let ordered: BTreeSet<String> = order
            .identifiers
            .iter()
            .map(|i| format!("{}:{}", i.kind, i.value))
            .collect();
        if requested != ordered {
            return Err(bad_csr(
                "the CSR's names are not exactly the order's identifiers".into(),
            ));
        }
        if !state.store.begin_acme_finalization(&order.id).await? {
            return Err(Problem::new(
                "orderNotReady",
                StatusCode::FORBIDDEN,
                "the order is being finalized or was finalized",
            ));
        }
        let request_id = new_id()?;
        let caller = Caller {
            provisioner: account.provisioner.clone(),
            identity: format!("acme:{}", account.id),
            lineage: new_id()?,
            bound_sans: Some(validated.requested_sans.clone()),
            bound_ttl: None,
            bound_profile: Some(directory.profile),
            request_id: request_id.clone(),
        };
        let issued = issuance::issue(
            &state,
            &caller,
            CertificateRequest {
                csr,
                profile: directory.profile,
                // The profile's default lifetime, bounded by the provisioner's (done by
                // the issuance path for every request without a lifetime).
                ttl: None,
            },
            true,
        )
        .await;
        let issued = match issued {
            Ok(issued) => issued,
            Err(error) => {
                if let Err(store_error) = state.store.abandon_acme_finalization(&order.id).await {
                    tracing::error!(order = %order.id, error = %store_error, "could not return an order to ready");
                }
                return Err(match error {
                    ApiError::Leaf(e) => bad_csr(e.to_string()),
                    ApiError::KeyCompromised => {
                        Problem::new("badPublicKey", StatusCode::BAD_REQUEST, error.to_string())
                    }
                    ApiError::Forbidden(detail) => {
                        Problem::new("rejectedIdentifier", StatusCode::FORBIDDEN, detail)
                    }
                    ApiError::RateLimited { .. } => Problem::new(
                        "rateLimited",
                        StatusCode::TOO_MANY_REQUESTS,
                        error.to_string(),
                    ),
                    other => Problem::internal(other.to_string()),
                });
            }
        };
        state.store.complete_acme_order(&order.id, &issued.serial).await?;
        state
            .audit(json!({
                "type": "acme.order.finalized",
                "request_id": request_id,
                "account": account.id,
                "order": order.id,
                "serial": issued.serial,
            }))
            .await
            .map_err(|e| Problem::internal(e.to_string()))?;
        let finished = state
            .store
            .acme_order(&order.id)
            .await?
            .ok_or_else(|| Problem::internal("order vanished"))?;
        let location = directory.url(&format!("order/{}", order.id));
        Ok(json_response(
            StatusCode::OK,
            order_json(&state, &directory, &finished).await?,
            Some(&location),
        ))
    })
    .await
}

async fn certificate(
    State(state): State<SharedState>,
    Path((profile, serial)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(
        state,
        profile,
        headers,
        uri,
        body,
        KeyMode::Account,
        |state, _directory, verified| async move {
            let account = verified.account()?;
            if !serial.chars().all(|c| c.is_ascii_hexdigit()) || serial.is_empty() {
                return Err(Problem::not_found("no such certificate"));
            }
            let order = state
                .store
                .acme_order_by_certificate(&serial)
                .await?
                .ok_or_else(|| Problem::not_found("no such certificate"))?;
            if order.account_id != account.id {
                return Err(Problem::unauthorized(
                    "the certificate belongs to another account",
                ));
            }
            let record = state
                .store
                .certificate(&serial)
                .await?
                .ok_or_else(|| Problem::not_found("no such certificate"))?;
            let der = record
                .certificate
                .as_ref()
                .ok_or_else(|| Problem::not_found("the certificate was not issued"))?;
            let mut pem = pem_encode("CERTIFICATE", der);
            if let Some(issuer) = state.issuers.iter().find(|i| i.name == record.issuer) {
                for certificate in &issuer.chain {
                    pem.push_str(&pem_encode("CERTIFICATE", certificate));
                }
            }
            let mut response = (StatusCode::OK, pem).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pem-certificate-chain"),
            );
            Ok(response)
        },
    )
    .await
}

async fn revoke_certificate(
    State(state): State<SharedState>,
    Path(profile): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(
        state,
        profile,
        headers,
        uri,
        body,
        KeyMode::Either,
        |state, _directory, verified| async move {
            let payload = verified.payload()?;
            let der = payload
                .get("certificate")
                .and_then(Value::as_str)
                .ok_or_else(|| Problem::malformed("certificate missing"))?;
            let der = jws::decode_b64(der, "certificate")?;
            let (rest, parsed) = x509_parser::parse_x509_certificate(&der)
                .map_err(|_| Problem::malformed("the certificate does not parse"))?;
            if !rest.is_empty() {
                return Err(Problem::malformed("trailing bytes after the certificate"));
            }
            let serial = hex::encode(parsed.raw_serial());
            let reason_code = match payload.get("reason") {
                None => 0,
                Some(value) => value
                    .as_u64()
                    .and_then(|c| u8::try_from(c).ok())
                    .ok_or_else(|| {
                        Problem::new(
                            "badRevocationReason",
                            StatusCode::BAD_REQUEST,
                            "reason must be a number",
                        )
                    })?,
            };
            let reason = RevocationReason::from_code(reason_code).ok_or_else(|| {
                Problem::new(
                    "badRevocationReason",
                    StatusCode::BAD_REQUEST,
                    "unknown reason code",
                )
            })?;
            let record = state
                .store
                .certificate(&serial)
                .await?
                .filter(|r| r.certificate.as_deref() == Some(der.as_slice()))
                .ok_or_else(|| Problem::not_found("this CA did not issue this certificate"))?;
            let by = match &verified.account {
                Some(account) => {
                    let order = state.store.acme_order_by_certificate(&serial).await?;
                    if order.is_none_or(|o| o.account_id != account.id) {
                        return Err(Problem::unauthorized(
                            "only the account that ordered the certificate may revoke it",
                        ));
                    }
                    json!({"kind": "acme-account", "account": account.id})
                }
                None => {
                    if !verified.key.matches_spki(parsed.public_key().raw) {
                        return Err(Problem::unauthorized(
                            "the JWS is not signed by the certificate's key",
                        ));
                    }
                    json!({"kind": "acme-certificate-key"})
                }
            };
            let request_id = new_id()?;
            state
                .audit(json!({
                    "type": "acme.revocation.requested",
                    "request_id": request_id,
                    "serial": record.serial,
                    "by": by,
                }))
                .await
                .map_err(|e| Problem::internal(e.to_string()))?;
            let (_, changed) = revocation::revoke(
                &state,
                &record.serial,
                reason,
                &revocation::Revoker::Holder,
                &request_id,
            )
            .await
            .map_err(|error| match error {
                ApiError::Forbidden(detail) | ApiError::MalformedRequest(detail) => {
                    Problem::new("badRevocationReason", StatusCode::BAD_REQUEST, detail)
                }
                ApiError::Conflict(detail) => Problem::malformed(detail),
                other => Problem::internal(other.to_string()),
            })?;
            if !changed {
                return Err(Problem::new(
                    "alreadyRevoked",
                    StatusCode::BAD_REQUEST,
                    "the certificate is already revoked",
                ));
            }
            Ok(StatusCode::OK.into_response())
        },
    )
    .await
}

/// Start of the suggested renewal window, as a fraction of the lifetime from notBefore:
/// the `carimbo agent` default renewal point (docs/agent.md).
const RENEW_FROM: f64 = 2.0 / 3.0;
/// End of the suggested renewal window: the latest renewal point the agent allows.
const RENEW_UNTIL: f64 = 0.8;

/// The serial (lowercase hex) and authority key identifier of an RFC 9773 certificate
/// identifier `base64url(AKI keyIdentifier) "." base64url(serial)`.
fn parse_cert_id(id: &str) -> Option<(String, Vec<u8>)> {
    let (key_identifier, serial) = id.split_once('.')?;
    let key_identifier = URL_SAFE_NO_PAD.decode(key_identifier).ok()?;
    let serial = URL_SAFE_NO_PAD.decode(serial).ok()?;
    if key_identifier.is_empty() || serial.is_empty() || serial.len() > 21 {
        return None;
    }
    Some((hex::encode(serial), key_identifier))
}

/// The keyIdentifier of a certificate's authority key identifier extension.
fn authority_key_identifier(der: &[u8]) -> Option<Vec<u8>> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    certificate
        .extensions()
        .iter()
        .find_map(|extension| match extension.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
}

/// `GET /acme/{profile}/renewal-info/{certID}` (RFC 9773): when to renew. The window runs
/// from 2/3 to 80% of the certificate's lifetime; for a revoked certificate it lies in
/// the past (renew now).
async fn renewal_info(
    State(state): State<SharedState>,
    Path((profile, id)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path().to_owned();
    let found = Directory::find(&state, &profile, &headers, &uri);
    let base = found.as_ref().ok().map(|d| d.base.clone());
    let result = async {
        found?;
        let unknown = || Problem::not_found("no certificate with this identifier");
        let (serial, key_identifier) = parse_cert_id(&id)
            .ok_or_else(|| Problem::malformed("not a certificate identifier (RFC 9773 §4.1)"))?;
        let record = state
            .store
            .certificate(&serial)
            .await?
            .ok_or_else(unknown)?;
        let der = record.certificate.as_deref().ok_or_else(unknown)?;
        if authority_key_identifier(der).as_deref() != Some(key_identifier.as_slice()) {
            return Err(unknown());
        }
        let lifetime: time::Duration = record.not_after - record.not_before;
        let now = OffsetDateTime::now_utc();
        let (start, end) = if record.revoked_at.is_some() {
            (
                now - time::Duration::hours(1),
                now - time::Duration::minutes(1),
            )
        } else {
            (
                record.not_before + lifetime * RENEW_FROM,
                record.not_before + lifetime * RENEW_UNTIL,
            )
        };
        let retry_after = (lifetime / 10_i32)
            .clamp(time::Duration::minutes(1), time::Duration::hours(6))
            .whole_seconds();
        let mut response = json_response(
            StatusCode::OK,
            json!({"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}}),
            None,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        Ok(response)
    }
    .await;
    respond(&state, base.as_deref(), &path, result).await
}

/// `POST /acme/{profile}/key-change` (RFC 8555 §7.3.5): the outer JWS is signed by the
/// account's current key, its payload is an inner JWS signed by the new key (`jwk`) over
/// `{"account": <account URL>, "oldKey": <current JWK>}` with the same `url`.
async fn key_change(
    State(state): State<SharedState>,
    Path(profile): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    handle(
        state,
        profile,
        headers,
        uri,
        body,
        KeyMode::Account,
        |state, directory, verified| async move {
            let account = verified.account()?.clone();
            let inner = Jws::parse(&verified.jws.payload)?;
            let Signer::Jwk(new_key) = &inner.header.signer else {
                return Err(Problem::malformed(
                    "the inner JWS must carry the new key as jwk",
                ));
            };
            inner.verify(new_key)?;
            if inner.header.url != verified.jws.header.url {
                return Err(Problem::malformed(
                    "the inner JWS url differs from the outer one",
                ));
            }
            let payload = inner.payload_json()?;
            let account_url = directory.url(&format!("acct/{}", account.id));
            if payload.get("account").and_then(Value::as_str) != Some(account_url.as_str()) {
                return Err(Problem::malformed(
                    "the inner payload does not name the signing account",
                ));
            }
            let old_key = payload
                .get("oldKey")
                .ok_or_else(|| Problem::malformed("the inner payload has no oldKey"))
                .and_then(|value| Jwk::from_json(value).map_err(Problem::from))?;
            if old_key.thumbprint() != account.thumbprint {
                return Err(Problem::malformed(
                    "oldKey is not the account's current key",
                ));
            }
            let new_thumbprint = new_key.thumbprint();
            if new_thumbprint == account.thumbprint {
                return Err(Problem::malformed("the new key is the current key"));
            }
            let changed = match state
                .store
                .change_acme_account_key(
                    &account.id,
                    &account.thumbprint,
                    &new_thumbprint,
                    &new_key.canonical_json(),
                )
                .await
            {
                Ok(changed) => changed,
                Err(StoreError::Conflict(detail)) => {
                    let holder = state
                        .store
                        .acme_account_by_thumbprint(&new_thumbprint)
                        .await?;
                    let mut problem = Problem::new("malformed", StatusCode::CONFLICT, detail);
                    if holder.is_none() {
                        problem.status = StatusCode::BAD_REQUEST;
                    }
                    return Err(problem);
                }
                Err(other) => return Err(other.into()),
            };
            state
                .audit(json!({
                    "type": "acme.account.key-changed",
                    "account": account.id,
                    "old_key_thumbprint": account.thumbprint,
                    "new_key_thumbprint": new_thumbprint,
                }))
                .await
                .map_err(|e| Problem::internal(e.to_string()))?;
            Ok(json_response(
                StatusCode::OK,
                account_json(&directory, &changed),
                Some(&account_url),
            ))
        },
    )
    .await
}
