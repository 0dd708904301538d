//! Issuance, as DESIGN §4: authenticate, authorize, validate the CSR, build the TBS from
//! the profile only, lint it, persist the intent before signing (retrying a serial
//! collision with a new serial), sign through the KMS, verify, persist the certificate
//! durably, audit, return it with its chain.

use std::sync::Arc;

use base64::Engine;
use carimbo_pki::{
    LeafKind, LeafTemplate, OcspHash, SubjectAltName, check_sans, pem_encode, prepare_leaf,
    validate_csr,
};
use carimbo_store::{BootstrapToken, IssuanceIntent, Lineage, StoreError};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::ApiError;
use crate::config::OcspPresign;
use crate::state::{AppState, Issuer, sha256};

/// How many serials are tried when the store reports a collision.
const SERIAL_ATTEMPTS: usize = 3;
/// Prefix of bootstrap tokens.
pub const TOKEN_PREFIX: &str = "cbt_";

/// A request for a certificate, after parsing the body.
#[derive(Debug)]
pub struct CertificateRequest {
    /// The CSR (PEM or DER).
    pub csr: Vec<u8>,
    /// The profile.
    pub profile: LeafKind,
    /// Requested lifetime.
    pub ttl: Option<time::Duration>,
}

/// Who is asking, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The provisioner that vouches for the caller.
    pub provisioner: String,
    /// The identity recorded (e.g. `token:<hash prefix>`).
    pub identity: String,
    /// The lineage the new certificate belongs to.
    pub lineage: String,
    /// Names the credential itself limits the caller to (bootstrap token SANs).
    pub bound_sans: Option<Vec<SubjectAltName>>,
    /// Lifetime the credential itself allows at most.
    pub bound_ttl: Option<time::Duration>,
    /// Profile the credential is for.
    pub bound_profile: Option<LeafKind>,
    /// Request id, for logs and audit.
    pub request_id: String,
}

/// An issued certificate, as returned to the caller.
#[derive(Debug, Serialize)]
pub struct IssuedCertificate {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Profile.
    pub profile: String,
    /// Issuer name.
    pub issuer: String,
    /// The certificate, PEM.
    pub certificate: String,
    /// The issuer's chain, PEM, issuer first, root last.
    pub chain: Vec<String>,
    /// Start of validity (RFC 3339).
    pub not_before: String,
    /// End of validity (RFC 3339).
    pub not_after: String,
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The metrics label of a profile.
fn profile_label(profile: LeafKind) -> &'static str {
    match profile {
        LeafKind::Server => "server",
        LeafKind::Client => "client",
        LeafKind::Workload => "workload",
    }
}

/// A fresh random id (hex).
pub fn random_id(bytes: usize) -> Result<String, ApiError> {
    let mut buffer = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buffer)
        .map_err(|_| ApiError::Internal("random generator failed".into()))?;
    Ok(hex::encode(buffer))
}

/// Authenticates a bootstrap token: spends it (single use, atomically) and returns the
/// caller it vouches for.
pub async fn authenticate_token(
    state: &AppState,
    token: &str,
    request_id: &str,
) -> Result<Caller, ApiError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Err(ApiError::Unauthorized("not a bootstrap token".into()));
    }
    let hash = hex::encode(sha256(token.as_bytes()));
    let record = state
        .store
        .consume_token(&hash, OffsetDateTime::now_utc(), request_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::Unauthorized("unknown bootstrap token".into()),
            other => ApiError::from(other),
        })?;
    let sans = record
        .sans
        .iter()
        .map(|s| s.parse::<SubjectAltName>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::Internal("stored token has an invalid name".into()))?;
    let profile = record
        .profile
        .parse::<LeafKind>()
        .map_err(|_| ApiError::Internal("stored token has an invalid profile".into()))?;
    Ok(Caller {
        provisioner: record.provisioner.clone(),
        identity: format!("token:{}", &hash[..16]),
        lineage: random_id(16)?,
        bound_sans: Some(sans),
        bound_ttl: Some(time::Duration::seconds(record.max_ttl_seconds)),
        bound_profile: Some(profile),
        request_id: request_id.to_owned(),
    })
}

/// Authenticates a JWT bearer: picks the JWT provisioner (named in the request, or the
/// only one, or the one whose issuer the token names), verifies the token, and turns
/// its claims into the names it vouches for.
pub async fn authenticate_jwt(
    state: &AppState,
    token: &str,
    provisioner: Option<&str>,
    request_id: &str,
) -> Result<Caller, ApiError> {
    let jwt_provisioners: Vec<_> = state
        .provisioners
        .values()
        .filter(|p| p.jwt.is_some())
        .collect();
    let chosen = match provisioner {
        Some(name) => *jwt_provisioners
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ApiError::Unauthorized(format!("no JWT provisioner {name:?}")))?,
        None if jwt_provisioners.len() == 1 => jwt_provisioners[0],
        None => {
            let issuer = unverified_issuer(token)
                .ok_or_else(|| ApiError::Unauthorized("not a JWT with an iss claim".into()))?;
            *jwt_provisioners
                .iter()
                .find(|p| p.jwt.as_ref().is_some_and(|v| v.issuer() == issuer))
                .ok_or_else(|| {
                    ApiError::Unauthorized(format!("no JWT provisioner for issuer {issuer:?}"))
                })?
        }
    };
    let verifier = chosen
        .jwt
        .as_ref()
        .ok_or_else(|| ApiError::Internal("provisioner without verifier".into()))?;
    let claims = verifier.verify(token, OffsetDateTime::now_utc())?;
    let names = verifier.names(&claims)?;
    Ok(Caller {
        provisioner: chosen.name.clone(),
        identity: verifier.identity(&claims),
        lineage: random_id(16)?,
        bound_sans: Some(names),
        bound_ttl: None,
        bound_profile: None,
        request_id: request_id.to_owned(),
    })
}

/// The `iss` of a JWT, read without verification (only to choose which provisioner
/// verifies it).
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}

/// Issues a certificate for `caller`. Every refusal leaves an audit event and nothing
/// else.
pub async fn issue(
    state: &AppState,
    caller: &Caller,
    request: CertificateRequest,
    new_lineage: bool,
) -> Result<IssuedCertificate, ApiError> {
    let result = issue_inner(state, caller, &request, new_lineage).await;
    match &result {
        Ok(issued) => state.metrics.issued(
            &issued.profile,
            &caller.provisioner,
            &issued.issuer,
            !new_lineage,
        ),
        Err(error) => state.metrics.refused(
            Some(profile_label(request.profile)),
            Some(&caller.provisioner),
            error.code_and_status().0,
            !new_lineage,
        ),
    }
    match &result {
        Ok(issued) => tracing::info!(
            request_id = %caller.request_id,
            provisioner = %caller.provisioner,
            profile = %issued.profile,
            issuer = %issued.issuer,
            serial = %issued.serial,
            "certificate issued"
        ),
        Err(error) => tracing::info!(
            request_id = %caller.request_id,
            provisioner = %caller.provisioner,
            code = error.code_and_status().0,
            reason = %error,
            "certificate refused"
        ),
    }
    let event = match &result {
        Ok(issued) => json!({
            "type": "certificate.issued",
            "request_id": caller.request_id,
            "provisioner": caller.provisioner,
            "identity": caller.identity,
            "lineage": caller.lineage,
            "profile": issued.profile,
            "issuer": issued.issuer,
            "serial": issued.serial,
            "not_after": issued.not_after,
        }),
        Err(error) => json!({
            "type": "certificate.refused",
            "request_id": caller.request_id,
            "provisioner": caller.provisioner,
            "identity": caller.identity,
            "profile": request.profile.to_string(),
            "code": error.code_and_status().0,
            "reason": error.to_string(),
        }),
    };
    state.audit(event).await?;
    result
}

async fn issue_inner(
    state: &AppState,
    caller: &Caller,
    request: &CertificateRequest,
    new_lineage: bool,
) -> Result<IssuedCertificate, ApiError> {
    if let Some(limiter) = &state.limits.issuance
        && let Err(wait) = limiter.take(&caller.identity, 1)
    {
        return Err(ApiError::RateLimited {
            what: "issuance",
            retry_after: crate::limits::retry_after_seconds(wait),
        });
    }
    let now = OffsetDateTime::now_utc();
    let profile = state
        .profiles
        .get(&request.profile)
        .ok_or_else(|| ApiError::UnknownProfile(request.profile.to_string()))?;
    if let Some(bound) = caller.bound_profile
        && bound != request.profile
    {
        return Err(ApiError::Forbidden(format!(
            "this credential is for the {bound} profile, not {}",
            request.profile
        )));
    }
    // The CSR: signature, key type and size, no CA request, SANs well formed for the
    // profile. Only its public key and names are used.
    let csr = validate_csr(&request.csr, profile)?;
    check_sans(profile, &csr.requested_sans)?;
    if state
        .store
        .is_key_blocked(&hex::encode(sha256(&csr.subject_public_key_info)))
        .await?
    {
        return Err(ApiError::KeyCompromised);
    }
    // The lifetime against the profile first (too long is refused, never capped).
    profile.validity(now, request.ttl, now + time::Duration::days(36_500))?;
    // Authorization: the provisioner's current policy, and the credential's own bounds.
    let provisioner = state.provisioners.get(&caller.provisioner).ok_or_else(|| {
        ApiError::Forbidden(format!(
            "provisioner {:?} no longer exists",
            caller.provisioner
        ))
    })?;
    provisioner
        .authorize(request.profile, &csr.requested_sans, request.ttl)
        .map_err(ApiError::Forbidden)?;
    if let Some(bound) = &caller.bound_sans {
        for san in &csr.requested_sans {
            if !bound.contains(san) {
                return Err(ApiError::Forbidden(format!(
                    "this credential does not allow the name {san}"
                )));
            }
        }
    }
    if let (Some(bound), Some(ttl)) = (caller.bound_ttl, request.ttl)
        && ttl > bound
    {
        return Err(ApiError::Forbidden(format!(
            "this credential allows at most {} seconds",
            bound.whole_seconds()
        )));
    }
    let issuer: Arc<Issuer> = Arc::clone(state.issuer_for(request.profile, now)?);
    // Without a requested lifetime: the profile's default, within the credential's and
    // the provisioner's bounds (a JWT carries none of its own).
    let ttl = Some(
        request
            .ttl
            .unwrap_or_else(|| {
                caller
                    .bound_ttl
                    .map_or(profile.default_ttl, |b| b.min(profile.default_ttl))
            })
            .min(provisioner.max_ttl),
    );
    let (not_before, not_after) = profile.validity(now, ttl, issuer.info.not_after())?;

    if new_lineage {
        state
            .store
            .create_lineage(&Lineage {
                id: caller.lineage.clone(),
                provisioner: caller.provisioner.clone(),
                identity: caller.identity.clone(),
                created_at: now,
            })
            .await?;
    }
    let base = &state.publication_url;
    let mut last_error = None;
    for _ in 0..SERIAL_ATTEMPTS {
        let serial = state.serials.next_serial()?;
        let crl_shard = issuer.crl_shard_for(serial.as_bytes());
        let template = LeafTemplate {
            profile: *profile,
            subject_public_key_info: csr.subject_public_key_info.clone(),
            sans: csr.requested_sans.clone(),
            serial: serial.clone(),
            not_before,
            not_after,
            crl_distribution_points: vec![crate::crl::crl_url(base, &issuer.name, crl_shard)],
            ocsp_responders: vec![format!("{base}/ocsp")],
            ca_issuers: vec![format!("{base}/ca/{}.cer", issuer.name)],
        };
        let prepared = prepare_leaf(&template, &issuer.info, now).map_err(|e| match e {
            // The provisioner allowed a name the issuing CA may not certify: a refusal
            // of the request (the config should narrow the provisioner), not a fault.
            carimbo_pki::PkiError::Leaf(carimbo_pki::LeafError::NameNotPermitted { .. }) => {
                ApiError::Forbidden(e.to_string())
            }
            e => {
                tracing::error!(error = %e, "a leaf failed the lints");
                ApiError::Internal(format!("the certificate failed the lints: {e}"))
            }
        })?;
        let intent = IssuanceIntent {
            serial: serial.to_hex(),
            issuer: issuer.name.clone(),
            profile: request.profile.to_string(),
            provisioner: caller.provisioner.clone(),
            lineage: caller.lineage.clone(),
            requester: caller.identity.clone(),
            sans: csr.requested_sans.iter().map(ToString::to_string).collect(),
            subject_key_sha256: hex::encode(sha256(&csr.subject_public_key_info)),
            not_before,
            not_after,
            lint_certificate: prepared.lint_certificate_der().to_vec(),
            request_id: caller.request_id.clone(),
            created_at: now,
            crl_shard,
        };
        match state.store.record_intent(&intent).await {
            Ok(()) => {}
            Err(StoreError::SerialCollision) => {
                tracing::warn!(serial = %intent.serial, "serial collision; retrying with a new serial");
                last_error = Some(ApiError::Internal("serial collision".into()));
                continue;
            }
            Err(other) => return Err(other.into()),
        }
        let der = match prepared.sign(issuer.key.as_ref()).await {
            Ok(der) => der,
            Err(error) => {
                let _ = state
                    .store
                    .fail_issuance(&intent.serial, &error.to_string())
                    .await;
                tracing::error!(error = %error, "signing failed");
                return Err(ApiError::IssuerUnavailable(
                    "the issuer could not sign".into(),
                ));
            }
        };
        state
            .store
            .complete_issuance(&intent.serial, &der, OffsetDateTime::now_utc())
            .await?;
        if state.ocsp.presign() == OcspPresign::Issuance {
            // Best effort: a failure leaves the first answer to be signed at its first
            // request, like `lazy`.
            if let Ok(Some(record)) = state.store.certificate(&intent.serial).await
                && let Err(error) = state
                    .ocsp
                    .refresh_record(state, &record, &[OcspHash::Sha1], None)
                    .await
            {
                tracing::warn!(serial = %intent.serial, error = %error, "OCSP pre-signing failed");
            }
        }
        return Ok(IssuedCertificate {
            serial: intent.serial,
            profile: request.profile.to_string(),
            issuer: issuer.name.clone(),
            certificate: pem_encode("CERTIFICATE", &der),
            chain: issuer
                .chain
                .iter()
                .map(|c| pem_encode("CERTIFICATE", c))
                .collect(),
            not_before: rfc3339(not_before),
            not_after: rfc3339(not_after),
        });
    }
    Err(last_error.unwrap_or_else(|| ApiError::Internal("no serial available".into())))
}

/// A bootstrap token to create.
#[derive(Debug)]
pub struct TokenRequest {
    /// Provisioner that will vouch for the token.
    pub provisioner: String,
    /// Profile the token is for.
    pub profile: LeafKind,
    /// Names it allows.
    pub sans: Vec<SubjectAltName>,
    /// Longest certificate lifetime it allows.
    pub ttl: time::Duration,
    /// How long the token stays usable.
    pub expires_in: time::Duration,
}

/// Mints a one-time bootstrap token (stored hashed) within the provisioner's policy.
pub async fn create_token(
    state: &AppState,
    admin: &str,
    request: TokenRequest,
) -> Result<(String, OffsetDateTime), ApiError> {
    let provisioner = state
        .provisioners
        .get(&request.provisioner)
        .ok_or_else(|| ApiError::NotFound(format!("no provisioner {:?}", request.provisioner)))?;
    if provisioner.acme {
        return Err(ApiError::Forbidden(format!(
            "provisioner {:?} does not take bootstrap tokens",
            provisioner.name
        )));
    }
    if request.sans.is_empty() {
        return Err(ApiError::MalformedRequest(
            "a token must name at least one SAN".into(),
        ));
    }
    provisioner
        .authorize(request.profile, &request.sans, Some(request.ttl))
        .map_err(ApiError::Forbidden)?;
    if request.expires_in <= time::Duration::ZERO || request.expires_in > provisioner.token_lifetime
    {
        return Err(ApiError::Forbidden(format!(
            "tokens of provisioner {:?} live at most {} seconds",
            provisioner.name,
            provisioner.token_lifetime.whole_seconds()
        )));
    }
    let mut secret = [0u8; 32];
    aws_lc_rs::rand::fill(&mut secret)
        .map_err(|_| ApiError::Internal("random generator failed".into()))?;
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let now = OffsetDateTime::now_utc();
    let expires_at = now + request.expires_in;
    let hash = hex::encode(sha256(token.as_bytes()));
    state
        .store
        .insert_token(&BootstrapToken {
            token_hash: hash.clone(),
            provisioner: provisioner.name.clone(),
            profile: request.profile.to_string(),
            sans: request.sans.iter().map(ToString::to_string).collect(),
            max_ttl_seconds: request.ttl.whole_seconds(),
            expires_at,
            created_by: admin.to_owned(),
            created_at: now,
        })
        .await?;
    state
        .audit(json!({
            "type": "token.created",
            "admin": admin,
            "provisioner": provisioner.name,
            "profile": request.profile.to_string(),
            "sans": request.sans.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "token_hash_prefix": &hash[..16],
            "expires_at": rfc3339(expires_at),
        }))
        .await?;
    Ok((token, expires_at))
}
