//! The KMS API (`/v1/kms/…`): applications encrypt, decrypt, make data keys, rewrap,
//! sign, verify and MAC through keys they never hold, under a deny-by-default policy
//! ([`kms_policy`](crate::kms_policy)); KMS administrators create and rotate keys and
//! grant access for a time.
//!
//! The keys live in their own keyring (metadata in the service's database, key
//! material in the KMS token or, for development, a file directory of their own), apart
//! from the CA keys: a key of purpose `pki-ca` cannot be created here, and is refused
//! before any policy is consulted. Every request item — allowed or denied, succeeded or
//! failed — leaves one audit event on the replica's chain (identity, operation, key,
//! version, context digest, what decided, outcome) before the answer is sent; plaintext,
//! keys and tokens never enter it.

use std::io::Cursor;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use carimbo_kms::envelope::{self, DEFAULT_SEGMENT_SIZE, Headers};
use carimbo_kms::{
    AuditEvent, AuditSink, Caller, EncryptionContext, FileProvider, KeyAlgorithm, KeyName,
    KeyProvider, KeyRecord, Keyring, Purpose, SystemClock, load_or_create_file_kek,
};
use carimbo_kms_pkcs11::{Pkcs11Config, Pkcs11Provider};
use carimbo_store::{InventoryRow, KmsGrant, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::config::{KmsSection, LoadedConfig};
use crate::error::KmsError;
use crate::kms_policy::{Decision, KmsOperation, KmsRequest, KmsRule, decide, is_ca_key};
use crate::routes::{SharedState, bearer, json_body};
use crate::state::{AppState, sha256};
use crate::tls::ClientCertificate;
use crate::{ApiError, ServerError};

/// The keyring's own events go to the log; the API writes the audit trail itself (one
/// event per request item, in the database, before answering).
#[derive(Debug)]
struct LogAuditSink;

impl AuditSink for LogAuditSink {
    fn record(&self, event: &AuditEvent) -> carimbo_kms::Result<()> {
        tracing::debug!(
            actor = %event.actor,
            request_id = %event.request_id,
            operation = ?event.operation,
            key = %event.key_name,
            version = ?event.key_version,
            outcome = ?event.outcome,
            "kms key use"
        );
        Ok(())
    }
}

/// The KMS side of the service.
#[derive(Debug)]
pub struct KmsService {
    keyring: Keyring,
    rules: Vec<KmsRule>,
    /// Token clients: name and SHA-256 of the token.
    clients: Vec<(String, [u8; 32])>,
    /// Where new keys and versions are generated.
    provider: String,
    /// The KMS token, when the KMS uses PKCS#11 (shares the keyring's session pool).
    pkcs11: Option<Pkcs11Provider>,
    /// The AWS KMS client, when configured (for readiness checks).
    aws: Option<carimbo_kms_aws::AwsKmsProvider>,
    max_batch: usize,
    /// Scheduled rotations: key patterns and the largest age of a primary version.
    rotations: Vec<(Vec<String>, time::Duration)>,
    /// Rewraps per second per provider, shared by the migration jobs.
    rate_limits: std::collections::BTreeMap<String, u32>,
}

impl KmsService {
    /// Builds the service of `section`: its providers (refusing the CA token), its
    /// rules and clients, a keyring over `store`.
    pub async fn build(
        loaded: &LoadedConfig,
        section: &KmsSection,
        store: Arc<dyn Store>,
    ) -> Result<Self, ServerError> {
        let rules = section
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| loaded.kms_rule(index, rule))
            .collect::<Result<Vec<_>, _>>()?;
        let mut clients = Vec::new();
        for client in &section.clients {
            let path = loaded.resolve(&client.token_file);
            carimbo_kms::check_private_file(&path)
                .map_err(|e| ServerError::Config(e.to_string()))?;
            let token = std::fs::read_to_string(&path)
                .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
            clients.push((client.name.clone(), sha256(token.trim().as_bytes())));
        }
        let mut keyring = Keyring::new(
            store as Arc<dyn carimbo_kms::KeyringStore>,
            Arc::new(LogAuditSink),
            Arc::new(SystemClock),
        );
        if let Some(dir) = &section.file_directory {
            let dir = loaded.resolve(dir);
            {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .map_err(|e| ServerError::Keys(format!("{}: {e}", dir.display())))?;
            }
            let kek = load_or_create_file_kek(&dir.join("file-kek"))
                .map_err(|e| ServerError::Keys(format!("kms.file-directory: {e}")))?;
            let provider = FileProvider::new(dir.join("keys"), kek)
                .map_err(|e| ServerError::Keys(format!("kms.file-directory: {e}")))?;
            keyring = keyring.with_provider(Arc::new(provider) as Arc<dyn KeyProvider>);
        }
        let mut pkcs11 = None;
        let mut aws = None;
        if let Some(path) = &section.pkcs11_config {
            let config = Pkcs11Config::from_file(&loaded.resolve(path))
                .map_err(|e| ServerError::Keys(format!("kms.pkcs11-config: {e}")))?;
            if let Some(ca_path) = &loaded.config.keys.pkcs11_config {
                let ca = Pkcs11Config::from_file(&loaded.resolve(ca_path))
                    .map_err(|e| ServerError::Keys(format!("keys.pkcs11-config: {e}")))?;
                let same_serial =
                    config.token_serial.is_some() && config.token_serial == ca.token_serial;
                if config.token_label == ca.token_label || same_serial {
                    return Err(ServerError::Config(format!(
                        "kms.pkcs11-config names token {:?}, the CA token: KMS keys need a token of their own",
                        config.token_label
                    )));
                }
            }
            let provider = Pkcs11Provider::open(&config)
                .await
                .map_err(|e| ServerError::Keys(format!("kms.pkcs11-config: {e}")))?;
            pkcs11 = Some(provider.clone());
            keyring = keyring.with_provider(Arc::new(provider) as Arc<dyn KeyProvider>);
        }
        if let Some(path) = &section.aws_config {
            let config = carimbo_kms_aws::AwsKmsConfig::from_file(&loaded.resolve(path))
                .map_err(|e| ServerError::Keys(format!("kms.aws-config: {e}")))?;
            let provider = carimbo_kms_aws::AwsKmsProvider::open(&config)
                .await
                .map_err(|e| ServerError::Keys(format!("kms.aws-config: {e}")))?;
            aws = Some(provider.clone());
            keyring = keyring.with_provider(Arc::new(provider) as Arc<dyn KeyProvider>);
        }
        Ok(Self {
            keyring,
            rules,
            clients,
            provider: section.provider.clone(),
            pkcs11,
            aws,
            max_batch: section.max_batch,
            rotations: section
                .rotation
                .iter()
                .map(|r| (r.keys.clone(), r.every.0))
                .collect(),
            rate_limits: section.rate_limits.clone(),
        })
    }

    /// The KMS token's session pool, when the KMS uses PKCS#11.
    pub fn session_pool(&self) -> Option<carimbo_kms_pkcs11::SessionPoolStatus> {
        self.pkcs11.as_ref().map(Pkcs11Provider::session_pool)
    }

    /// Checks the KMS providers within `limit` each: the PKCS#11 token (still there
    /// and answering) and AWS KMS (reachable with these credentials). Returns
    /// (provider, token label or region, outcome) for each configured one.
    pub async fn check(
        &self,
        limit: std::time::Duration,
    ) -> Vec<(&'static str, String, Result<(), String>)> {
        let timed_out = || Err(format!("no answer within {} seconds", limit.as_secs()));
        let mut checks = Vec::new();
        if let Some(provider) = &self.pkcs11 {
            let result = match tokio::time::timeout(limit, provider.check()).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => timed_out(),
            };
            checks.push(("pkcs11", provider.token_label().to_owned(), result));
        }
        if let Some(provider) = &self.aws {
            let result = match tokio::time::timeout(limit, provider.check_reachable()).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => timed_out(),
            };
            checks.push(("aws", provider.region().to_owned(), result));
        }
        checks
    }

    /// Rewraps per second that `provider` takes from all migration jobs together, if
    /// limited.
    pub fn rate_limit(&self, provider: &str) -> Option<u32> {
        self.rate_limits.get(provider).copied()
    }

    /// The keyring (for tests and tools).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Whether scheduled rotations are configured.
    pub fn has_rotations(&self) -> bool {
        !self.rotations.is_empty()
    }

    /// Rotates every key a scheduled rotation covers whose primary version is older
    /// than its period (run by the replica holding the `kms-rotation` lease). Returns
    /// the keys rotated with their new version.
    pub async fn rotate_due(&self, state: &AppState) -> Result<Vec<(String, u32)>, ApiError> {
        if self.rotations.is_empty() {
            return Ok(Vec::new());
        }
        let now = OffsetDateTime::now_utc();
        let records = self.keyring.store().keys().await.map_err(core)?;
        let mut rotated = Vec::new();
        for record in records {
            if is_ca_key(&record.name, Some(record.purpose)) {
                continue;
            }
            let Some(period) = self
                .rotations
                .iter()
                .filter(|(patterns, _)| {
                    patterns
                        .iter()
                        .any(|p| crate::kms_policy::pattern_matches(p, record.name.as_str()))
                })
                .map(|(_, period)| *period)
                .min()
            else {
                continue;
            };
            let primary = record.version(record.primary_version).map_err(core)?;
            if now - primary.created_at < period {
                continue;
            }
            let caller = Caller::new("scheduler:kms-rotation");
            let result = self
                .keyring
                .rotate(&caller, &record.name, Some(&self.provider))
                .await;
            let outcome = match &result {
                Ok(version) => json!({ "ok": version }),
                Err(error) => json!({ "error": error.to_string() }),
            };
            state
                .audit(json!({
                    "type": "kms.key.rotate",
                    "admin": "scheduler",
                    "key": record.name.as_str(),
                    "after": outcome,
                    "outcome": if result.is_ok() { "ok" } else { "failed" },
                }))
                .await?;
            match result {
                Ok(version) => rotated.push((record.name.to_string(), version)),
                Err(error) => {
                    tracing::warn!(key = %record.name, error = %error, "scheduled rotation failed");
                }
            }
        }
        Ok(rotated)
    }
}

/// The routes of the KMS API, merged into the API listener's router.
pub fn router() -> Router<SharedState> {
    let mut router = Router::new();
    for operation in KmsOperation::ALL {
        router = router.route(
            &format!("/v1/kms/{operation}"),
            post(
                move |state: State<SharedState>,
                      headers: HeaderMap,
                      client: Option<axum::Extension<ClientCertificate>>,
                      body: Result<Bytes, BytesRejection>| {
                    single(state, headers, client, body, operation)
                },
            ),
        );
    }
    router
        .route("/v1/kms/batch/{operation}", post(batch))
        .route("/v1/kms/keys", post(create_key))
        .route("/v1/kms/keys/{action}", post(key_action))
        .route("/v1/kms/grants", post(create_grant).get(list_grants))
        .route("/v1/kms/grants/{id}/revoke", post(revoke_grant))
        .route("/v1/kms/keys-of/{*name}", get(describe_key))
        .route(
            "/v1/kms/inventory",
            post(import_inventory).get(inventory_counts),
        )
        .route("/v1/kms/inventory/{id}", get(inventory_item))
        .route("/v1/kms/jobs/{id}", get(job))
}

fn kms(state: &AppState) -> Result<&KmsService, ApiError> {
    state
        .kms
        .as_ref()
        .ok_or(ApiError::Kms(KmsError::NotEnabled))
}

/// The caller's KMS identity: a verified TLS client certificate that is not revoked
/// (its SPIFFE ID, or `dns:{first name}`), or a client token (`client:{name}`).
async fn identity(
    state: &AppState,
    kms: &KmsService,
    headers: &HeaderMap,
    client: Option<&ClientCertificate>,
) -> Result<String, ApiError> {
    if headers.get(header::AUTHORIZATION).is_some() {
        let token = bearer(headers)?;
        let hash = sha256(token.as_bytes());
        return kms
            .clients
            .iter()
            .find(|(_, known)| {
                aws_lc_rs::constant_time::verify_slices_are_equal(known, &hash).is_ok()
            })
            .map(|(name, _)| format!("client:{name}"))
            .ok_or_else(|| ApiError::Unauthorized("unknown KMS client token".into()));
    }
    let Some(ClientCertificate(der)) = client else {
        return Err(ApiError::Unauthorized(
            "the KMS API needs a client certificate or an Authorization: Bearer client token"
                .into(),
        ));
    };
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| ApiError::Unauthorized("unreadable client certificate".into()))?;
    let serial = hex::encode(certificate.raw_serial());
    let record = state.store.certificate(&serial).await.map_err(|e| {
        if e.is_unavailable() {
            ApiError::DatabaseUnavailable
        } else {
            ApiError::Internal("certificate lookup failed".into())
        }
    })?;
    if record.is_none_or(|r| r.status != carimbo_store::CertificateStatus::Issued) {
        return Err(ApiError::Unauthorized(
            "the client certificate is revoked or unknown to this CA".into(),
        ));
    }
    let mut dns = None;
    if let Ok(Some(san)) = certificate.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::URI(uri) if uri.starts_with("spiffe://") => {
                    return Ok((*uri).to_owned());
                }
                x509_parser::extensions::GeneralName::DNSName(name) if dns.is_none() => {
                    dns = Some(format!("dns:{name}"));
                }
                _ => {}
            }
        }
    }
    dns.ok_or_else(|| ApiError::Unauthorized("the client certificate names no identity".into()))
}

fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, ApiError> {
    BASE64
        .decode(text.trim())
        .map_err(|_| ApiError::Kms(KmsError::BadBase64(field)))
}

fn context_of(
    map: &std::collections::BTreeMap<String, String>,
) -> Result<EncryptionContext, ApiError> {
    let mut context = EncryptionContext::new();
    for (key, value) in map {
        context
            .insert(key, value)
            .map_err(|e| ApiError::Kms(KmsError::Core(e)))?;
    }
    Ok(context)
}

fn key_name(text: &str) -> Result<KeyName, ApiError> {
    KeyName::new(text).map_err(|e| ApiError::Kms(KmsError::Core(e)))
}

/// Request bodies, one per operation (unknown fields refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptBody {
    key: String,
    plaintext: String,
    #[serde(default)]
    context: std::collections::BTreeMap<String, String>,
    /// Keep the wrapped data key in the inventory under this id, so rotations and
    /// migrations rewrap it.
    #[serde(default)]
    inventory_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CiphertextBody {
    /// A whole envelope (from encrypt) …
    #[serde(default)]
    ciphertext: Option<String>,
    /// … or a wrapped data key (from datakey).
    #[serde(default)]
    wrapped_key: Option<String>,
    /// Optional: the key the caller expects the ciphertext to be under.
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    context: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatakeyBody {
    key: String,
    #[serde(default)]
    context: std::collections::BTreeMap<String, String>,
    /// Return the plaintext data key too (default true); false: wrapped only, for
    /// later use through decrypt.
    #[serde(default = "yes")]
    include_plaintext: bool,
    /// Keep the wrapped key in the inventory under this id.
    #[serde(default)]
    inventory_id: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    key: String,
    message: String,
    /// verify / verify-hmac: the signature or tag.
    #[serde(default)]
    signature: Option<String>,
    /// verify / verify-hmac: the version that made it (verify: default any enabled).
    #[serde(default)]
    version: Option<u32>,
}

/// One parsed item: the key it names and what to do.
enum Item {
    Encrypt {
        key: KeyName,
        plaintext: Vec<u8>,
        context: EncryptionContext,
        inventory_id: Option<String>,
    },
    /// Decrypt or rewrap of an envelope or a wrapped key.
    Sealed {
        key: KeyName,
        headers: Box<Headers>,
        rest: Vec<u8>,
        whole_envelope: bool,
        context: EncryptionContext,
    },
    Datakey {
        key: KeyName,
        context: EncryptionContext,
        include_plaintext: bool,
        inventory_id: Option<String>,
    },
    Message {
        key: KeyName,
        message: Vec<u8>,
        signature: Option<Vec<u8>>,
        version: Option<u32>,
    },
}

impl Item {
    fn key(&self) -> &KeyName {
        match self {
            Self::Encrypt { key, .. }
            | Self::Sealed { key, .. }
            | Self::Datakey { key, .. }
            | Self::Message { key, .. } => key,
        }
    }

    fn context(&self) -> Option<&EncryptionContext> {
        match self {
            Self::Encrypt { context, .. }
            | Self::Sealed { context, .. }
            | Self::Datakey { context, .. } => Some(context),
            Self::Message { .. } => None,
        }
    }
}

fn check_inventory_id(id: Option<String>) -> Result<Option<String>, ApiError> {
    match id {
        Some(id) if id.is_empty() || id.len() > 200 => Err(ApiError::MalformedRequest(
            "inventory_id: 1 to 200 bytes".into(),
        )),
        id => Ok(id),
    }
}

/// The inventory row of a wrapped key just made under `record`'s `version`.
fn inventory_row(
    id: String,
    record: &KeyRecord,
    version: u32,
    wrapped_key: Vec<u8>,
    context: &EncryptionContext,
) -> Result<InventoryRow, ApiError> {
    let provider = record
        .version(version)
        .map_err(core)?
        .reference
        .provider
        .clone();
    Ok(InventoryRow {
        id,
        key_name: record.name.to_string(),
        key_version: version,
        provider,
        wrapped_key,
        context: context_json(context),
        attempts: 0,
        last_error: None,
        dead: false,
        updated_at: OffsetDateTime::now_utc(),
    })
}

/// A context as the JSON object kept in the inventory.
pub fn context_json(context: &EncryptionContext) -> String {
    let map: serde_json::Map<String, Value> = context
        .iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    Value::Object(map).to_string()
}

/// The context of an inventory row.
pub fn context_from_json(text: &str) -> Result<EncryptionContext, String> {
    let map: std::collections::BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|e| format!("inventory context: {e}"))?;
    let mut context = EncryptionContext::new();
    for (key, value) in &map {
        context.insert(key, value).map_err(|e| e.to_string())?;
    }
    Ok(context)
}

async fn keep_in_inventory(state: &AppState, row: InventoryRow) -> Result<(), ApiError> {
    state
        .store
        .put_inventory(std::slice::from_ref(&row))
        .await
        .map_err(store_error)
}

fn parse_item(operation: KmsOperation, value: Value) -> Result<Item, ApiError> {
    let malformed = |e: serde_json::Error| ApiError::MalformedRequest(format!("invalid body: {e}"));
    match operation {
        KmsOperation::Encrypt => {
            let body: EncryptBody = serde_json::from_value(value).map_err(malformed)?;
            Ok(Item::Encrypt {
                key: key_name(&body.key)?,
                plaintext: decode("plaintext", &body.plaintext)?,
                context: context_of(&body.context)?,
                inventory_id: check_inventory_id(body.inventory_id)?,
            })
        }
        KmsOperation::Decrypt | KmsOperation::Rewrap => {
            let body: CiphertextBody = serde_json::from_value(value).map_err(malformed)?;
            let (bytes, whole_envelope) = match (&body.ciphertext, &body.wrapped_key) {
                (Some(text), None) => (decode("ciphertext", text)?, true),
                (None, Some(text)) => (decode("wrapped_key", text)?, false),
                _ => {
                    return Err(ApiError::MalformedRequest(
                        "give exactly one of ciphertext and wrapped_key".into(),
                    ));
                }
            };
            let mut reader = Cursor::new(bytes.as_slice());
            let headers =
                Headers::read_from(&mut reader).map_err(|e| ApiError::Kms(KmsError::Core(e)))?;
            let rest = bytes[usize::try_from(reader.position()).unwrap_or(bytes.len())..].to_vec();
            if whole_envelope == rest.is_empty() {
                return Err(ApiError::Kms(KmsError::Core(
                    carimbo_kms::Error::Malformed(if whole_envelope {
                        "ciphertext: no data segments (a wrapped key goes in wrapped_key)".into()
                    } else {
                        "wrapped_key: data follows the key (an envelope goes in ciphertext)".into()
                    }),
                )));
            }
            let key = key_name(&headers.wrap.key_name)?;
            if let Some(requested) = &body.key
                && *requested != headers.wrap.key_name
            {
                return Err(ApiError::Kms(KmsError::KeyMismatch {
                    requested: requested.clone(),
                    actual: headers.wrap.key_name.clone(),
                }));
            }
            Ok(Item::Sealed {
                key,
                headers: Box::new(headers),
                rest,
                whole_envelope,
                context: context_of(&body.context)?,
            })
        }
        KmsOperation::Datakey => {
            let body: DatakeyBody = serde_json::from_value(value).map_err(malformed)?;
            Ok(Item::Datakey {
                key: key_name(&body.key)?,
                context: context_of(&body.context)?,
                include_plaintext: body.include_plaintext,
                inventory_id: check_inventory_id(body.inventory_id)?,
            })
        }
        KmsOperation::PublicKey => {
            #[derive(Debug, Deserialize)]
            #[serde(deny_unknown_fields)]
            struct PublicKeyBody {
                key: String,
                #[serde(default)]
                version: Option<u32>,
            }
            let body: PublicKeyBody = serde_json::from_value(value).map_err(malformed)?;
            Ok(Item::Message {
                key: key_name(&body.key)?,
                message: Vec::new(),
                signature: None,
                version: body.version,
            })
        }
        KmsOperation::Sign
        | KmsOperation::Verify
        | KmsOperation::Hmac
        | KmsOperation::VerifyHmac => {
            let body: MessageBody = serde_json::from_value(value).map_err(malformed)?;
            let needs_signature =
                matches!(operation, KmsOperation::Verify | KmsOperation::VerifyHmac);
            if needs_signature != body.signature.is_some() {
                return Err(ApiError::MalformedRequest(format!(
                    "signature: {} for {operation}",
                    if needs_signature {
                        "required"
                    } else {
                        "not allowed"
                    }
                )));
            }
            if operation == KmsOperation::VerifyHmac && body.version.is_none() {
                return Err(ApiError::MalformedRequest(
                    "version: required for verify-hmac".into(),
                ));
            }
            Ok(Item::Message {
                key: key_name(&body.key)?,
                message: decode("message", &body.message)?,
                signature: body
                    .signature
                    .as_deref()
                    .map(|s| decode("signature", s))
                    .transpose()?,
                version: body.version,
            })
        }
    }
}

/// Runs one item: policy, then the operation; writes its audit event either way.
async fn run_item(
    state: &AppState,
    kms: &KmsService,
    identity: &str,
    operation: KmsOperation,
    value: Value,
    request_id: &str,
) -> Result<Value, ApiError> {
    let item = match parse_item(operation, value) {
        Ok(item) => item,
        Err(error) => {
            return Err(refused(state, identity, operation, error).await);
        }
    };
    let key = item.key().clone();
    let context = item.context().cloned();
    let record = kms
        .keyring
        .store()
        .key(&key)
        .await
        .map_err(|e| ApiError::Kms(KmsError::Core(e)))?;
    let purpose = record.as_ref().map(|r| r.purpose);
    let request = KmsRequest {
        identity,
        key: &key,
        purpose,
        operation,
        context: context.as_ref(),
    };
    let decision = if is_ca_key(&key, purpose) {
        None
    } else {
        let by_rules = crate::kms_policy::decide_by_rules(&kms.rules, &request);
        if by_rules.is_allowed() {
            Some(by_rules)
        } else {
            let grants = live_grants(state).await?;
            Some(decide(&kms.rules, &grants, &request))
        }
    };
    let result = match (&decision, &record) {
        (None, _) => Err(ApiError::Kms(KmsError::CaKey(key.to_string()))),
        (Some(Decision::Denied), _) => Err(ApiError::Kms(KmsError::Denied {
            identity: identity.to_owned(),
            operation: operation.to_string(),
            key: key.to_string(),
        })),
        (Some(_), None) => Err(ApiError::Kms(KmsError::Core(
            carimbo_kms::Error::KeyNotFound(key.to_string()),
        ))),
        (Some(_), Some(record)) => {
            let caller = Caller {
                actor: identity.to_owned(),
                request_id: request_id.to_owned(),
            };
            let started = std::time::Instant::now();
            let result = execute(state, kms, record, &caller, operation, item).await;
            if operation == KmsOperation::Sign {
                let provider = record
                    .version(record.primary_version)
                    .map(|v| v.reference.provider.clone())
                    .unwrap_or_else(|_| kms.provider.clone());
                state.metrics.signed(
                    &provider,
                    "kms",
                    started.elapsed().as_secs_f64(),
                    result.is_ok(),
                );
            }
            result
        }
    };
    let decided_by = decision.map_or_else(|| "ca-key".to_owned(), |d| d.decided_by());
    let version = result.as_ref().ok().and_then(|v| v["key_version"].as_u64());
    audit(
        state,
        identity,
        operation,
        Some(&key),
        version,
        context.as_ref(),
        &decided_by,
        &result.as_ref().map(|_| ()),
    )
    .await?;
    result
}

async fn live_grants(state: &AppState) -> Result<Vec<KmsGrant>, ApiError> {
    state
        .store
        .live_kms_grants(OffsetDateTime::now_utc())
        .await
        .map_err(|e| {
            if e.is_unavailable() {
                ApiError::DatabaseUnavailable
            } else {
                ApiError::Internal("reading KMS grants failed".into())
            }
        })
}

#[allow(clippy::too_many_arguments)]
async fn audit(
    state: &AppState,
    identity: &str,
    operation: KmsOperation,
    key: Option<&KeyName>,
    version: Option<u64>,
    context: Option<&EncryptionContext>,
    decided_by: &str,
    result: &Result<(), &ApiError>,
) -> Result<(), ApiError> {
    let outcome = match result {
        Ok(()) => json!("ok"),
        Err(error) => json!(error.code_and_status().0),
    };
    let denied = matches!(
        result,
        Err(ApiError::Kms(KmsError::Denied { .. } | KmsError::CaKey(_)))
    );
    state
        .metrics
        .kms_operation(operation.as_str(), outcome.as_str().unwrap_or("ok"), denied);
    state
        .audit(json!({
            "type": "kms.operation",
            "identity": identity,
            "operation": operation.as_str(),
            "key": key.map(KeyName::as_str),
            "version": version,
            "context_sha256": context.map(|c| hex::encode(c.digest())),
            "decided_by": decided_by,
            "outcome": outcome,
        }))
        .await
}

/// Audits a request item refused before the policy was asked (malformed body, too
/// large a batch); returns the error to answer with (or the audit's own failure).
/// Takes `cost` operations from `identity`'s KMS budget (`[limits] kms-per-second`).
fn rate_limit(state: &AppState, identity: &str, cost: u32) -> Result<(), ApiError> {
    match &state.limits.kms {
        Some(limiter) => limiter
            .take(identity, cost)
            .map_err(|wait| ApiError::RateLimited {
                what: "kms",
                retry_after: crate::limits::retry_after_seconds(wait),
            }),
        None => Ok(()),
    }
}

async fn refused(
    state: &AppState,
    identity: &str,
    operation: KmsOperation,
    error: ApiError,
) -> ApiError {
    match audit(
        state,
        identity,
        operation,
        None,
        None,
        None,
        "not-decided",
        &Err(&error),
    )
    .await
    {
        Ok(()) => error,
        Err(audit_failure) => audit_failure,
    }
}

fn core(error: carimbo_kms::Error) -> ApiError {
    ApiError::Kms(KmsError::Core(error))
}

async fn execute(
    state: &AppState,
    kms: &KmsService,
    record: &KeyRecord,
    caller: &Caller,
    operation: KmsOperation,
    item: Item,
) -> Result<Value, ApiError> {
    let ring = &kms.keyring;
    match (operation, item) {
        (
            KmsOperation::Encrypt,
            Item::Encrypt {
                key,
                plaintext,
                context,
                inventory_id,
            },
        ) => {
            let sealed = ring
                .seal(caller, &key, &context, DEFAULT_SEGMENT_SIZE)
                .await
                .map_err(core)?;
            let mut out = Vec::with_capacity(plaintext.len() + 512);
            sealed.headers.write_to(&mut out).map_err(core)?;
            if let Some(id) = inventory_id {
                let row = inventory_row(
                    id,
                    record,
                    sealed.headers.wrap.key_version,
                    out.clone(),
                    &context,
                )?;
                keep_in_inventory(state, row).await?;
            }
            envelope::encrypt_segments(
                &sealed.dek,
                &sealed.headers.data,
                &mut plaintext.as_slice(),
                &mut out,
            )
            .map_err(core)?;
            Ok(json!({
                "key": key.as_str(),
                "key_version": sealed.headers.wrap.key_version,
                "ciphertext": BASE64.encode(out),
            }))
        }
        (
            KmsOperation::Decrypt,
            Item::Sealed {
                key,
                headers,
                rest,
                whole_envelope,
                context,
            },
        ) => {
            let opened = ring.open(caller, &headers, &context).await.map_err(core)?;
            if whole_envelope {
                let mut plaintext = Vec::with_capacity(rest.len());
                envelope::decrypt_segments(
                    &opened.dek,
                    &headers.data,
                    &mut rest.as_slice(),
                    &mut plaintext,
                )
                .map_err(core)?;
                Ok(json!({
                    "key": key.as_str(),
                    "key_version": opened.key_version,
                    "plaintext": BASE64.encode(&plaintext),
                }))
            } else {
                Ok(json!({
                    "key": key.as_str(),
                    "key_version": opened.key_version,
                    "plaintext_key": BASE64.encode(opened.dek.expose()),
                }))
            }
        }
        (
            KmsOperation::Rewrap,
            Item::Sealed {
                key,
                headers,
                rest,
                whole_envelope,
                context,
            },
        ) => {
            let rewrapped = ring
                .rewrap(caller, &headers, &context)
                .await
                .map_err(core)?;
            let mut out = Vec::with_capacity(rest.len() + 512);
            rewrapped.write_to(&mut out).map_err(core)?;
            out.extend_from_slice(&rest);
            let field = if whole_envelope {
                "ciphertext"
            } else {
                "wrapped_key"
            };
            Ok(json!({
                "key": key.as_str(),
                "key_version": rewrapped.wrap.key_version,
                "previous_version": headers.wrap.key_version,
                field: BASE64.encode(out),
            }))
        }
        (
            KmsOperation::Datakey,
            Item::Datakey {
                key,
                context,
                include_plaintext,
                inventory_id,
            },
        ) => {
            let sealed = ring
                .seal(caller, &key, &context, DEFAULT_SEGMENT_SIZE)
                .await
                .map_err(core)?;
            let mut wrapped = Vec::with_capacity(512);
            sealed.headers.write_to(&mut wrapped).map_err(core)?;
            if let Some(id) = inventory_id {
                let row = inventory_row(
                    id,
                    record,
                    sealed.headers.wrap.key_version,
                    wrapped.clone(),
                    &context,
                )?;
                keep_in_inventory(state, row).await?;
            }
            let mut reply = json!({
                "key": key.as_str(),
                "key_version": sealed.headers.wrap.key_version,
                "wrapped_key": BASE64.encode(wrapped),
            });
            if include_plaintext {
                reply["plaintext_key"] = json!(BASE64.encode(sealed.dek.expose()));
            }
            Ok(reply)
        }
        (KmsOperation::Sign, Item::Message { key, message, .. }) => {
            let (version, signature) = ring.sign(caller, &key, &message).await.map_err(core)?;
            Ok(json!({
                "key": key.as_str(),
                "key_version": version,
                "algorithm": record.algorithm.to_string(),
                "signature": BASE64.encode(signature),
            }))
        }
        (KmsOperation::PublicKey, Item::Message { key, version, .. }) => {
            let (version, der) = ring.public_key(&key, version).await.map_err(core)?;
            Ok(json!({
                "key": key.as_str(),
                "key_version": version,
                "algorithm": record.algorithm.to_string(),
                "public_key": BASE64.encode(&der),
            }))
        }
        (
            KmsOperation::Verify,
            Item::Message {
                key,
                message,
                signature,
                version,
            },
        ) => {
            let signature = signature.unwrap_or_default();
            match ring
                .verify(caller, &key, version, &message, &signature)
                .await
            {
                Ok(version) => {
                    Ok(json!({"key": key.as_str(), "key_version": version, "valid": true}))
                }
                Err(carimbo_kms::Error::VerificationFailed(_)) => {
                    Ok(json!({"key": key.as_str(), "valid": false}))
                }
                Err(error) => Err(core(error)),
            }
        }
        (KmsOperation::Hmac, Item::Message { key, message, .. }) => {
            let (version, tag) = ring.hmac(caller, &key, &message).await.map_err(core)?;
            Ok(json!({
                "key": key.as_str(),
                "key_version": version,
                "tag": BASE64.encode(tag),
            }))
        }
        (
            KmsOperation::VerifyHmac,
            Item::Message {
                key,
                message,
                signature,
                version,
            },
        ) => {
            let version = version.unwrap_or_default();
            let tag = signature.unwrap_or_default();
            match ring
                .verify_hmac(caller, &key, version, &message, &tag)
                .await
            {
                Ok(()) => Ok(json!({"key": key.as_str(), "key_version": version, "valid": true})),
                Err(carimbo_kms::Error::VerificationFailed(_)) => {
                    Ok(json!({"key": key.as_str(), "valid": false}))
                }
                Err(error) => Err(core(error)),
            }
        }
        _ => Err(ApiError::Internal("operation and body disagree".into())),
    }
}

fn request_id() -> String {
    let mut id = [0u8; 8];
    let _ = aws_lc_rs::rand::fill(&mut id);
    hex::encode(id)
}

/// Authenticates the caller, auditing a refusal.
async fn caller_identity(
    state: &AppState,
    kms: &KmsService,
    headers: &HeaderMap,
    client: Option<&ClientCertificate>,
    operation: &str,
) -> Result<String, ApiError> {
    match identity(state, kms, headers, client).await {
        Ok(identity) => Ok(identity),
        Err(error) => {
            state
                .audit(json!({
                    "type": "kms.refused",
                    "operation": operation,
                    "reason": error.to_string(),
                }))
                .await?;
            Err(error)
        }
    }
}

async fn single(
    State(state): State<SharedState>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientCertificate>>,
    body: Result<Bytes, BytesRejection>,
    operation: KmsOperation,
) -> Result<Response, ApiError> {
    let kms = kms(&state)?;
    let client = client.map(|c| c.0);
    let identity =
        caller_identity(&state, kms, &headers, client.as_ref(), operation.as_str()).await?;
    if let Err(error) = rate_limit(&state, &identity, 1) {
        return Err(refused(&state, &identity, operation, error).await);
    }
    let value: Value = match json_body(&headers, body, state.max_body_bytes) {
        Ok(value) => value,
        Err(error) => {
            return Err(refused(&state, &identity, operation, error).await);
        }
    };
    let reply = run_item(&state, kms, &identity, operation, value, &request_id()).await?;
    Ok(axum::Json(reply).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    items: Vec<Value>,
}

/// `POST /v1/kms/batch/{operation}`: `{"items": [...]}` → `{"results": [...]}`, one per
/// item in order: `{"ok": {...}}` or `{"error": {"code", "status", "detail"}}`.
async fn batch(
    State(state): State<SharedState>,
    Path(operation): Path<String>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientCertificate>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kms = kms(&state)?;
    let client = client.map(|c| c.0);
    let identity = caller_identity(&state, kms, &headers, client.as_ref(), "batch").await?;
    let operation: KmsOperation = match operation.parse() {
        Ok(operation) => operation,
        Err(why) => {
            let error = ApiError::NotFound(why);
            state
                .audit(json!({
                    "type": "kms.refused",
                    "identity": identity,
                    "operation": "batch",
                    "reason": error.to_string(),
                }))
                .await?;
            return Err(error);
        }
    };
    let body: BatchBody = match json_body(&headers, body, state.max_body_bytes) {
        Ok(body) => body,
        Err(error) => {
            return Err(refused(&state, &identity, operation, error).await);
        }
    };
    if body.items.len() > kms.max_batch {
        let error = ApiError::Kms(KmsError::BatchTooLarge(kms.max_batch));
        return Err(refused(&state, &identity, operation, error).await);
    }
    let cost = u32::try_from(body.items.len()).unwrap_or(u32::MAX).max(1);
    if let Err(error) = rate_limit(&state, &identity, cost) {
        return Err(refused(&state, &identity, operation, error).await);
    }
    let id = request_id();
    let mut results = Vec::with_capacity(body.items.len());
    for item in body.items {
        match run_item(&state, kms, &identity, operation, item, &id).await {
            Ok(reply) => results.push(json!({ "ok": reply })),
            // The database being down ends the batch: nothing further can be audited.
            Err(ApiError::DatabaseUnavailable) => return Err(ApiError::DatabaseUnavailable),
            Err(error) => {
                let (code, status) = error.code_and_status();
                results.push(json!({
                    "error": { "code": code, "status": status.as_u16(), "detail": error.to_string() }
                }));
            }
        }
    }
    Ok(axum::Json(json!({ "results": results })).into_response())
}

/// Authenticates a KMS administrator (admin token of role `kms-admin`), auditing a
/// refusal.
async fn kms_admin(
    state: &AppState,
    headers: &HeaderMap,
    action: &str,
) -> Result<String, ApiError> {
    match crate::routes::admin(state, headers, "kms-admin") {
        Ok(name) => Ok(name.to_owned()),
        Err(error) => {
            state
                .audit(json!({ "type": "admin.refused", "action": action, "reason": error.to_string() }))
                .await?;
            Err(error)
        }
    }
}

fn describe(record: &KeyRecord) -> Value {
    json!({
        "name": record.name.as_str(),
        "purpose": record.purpose.as_str(),
        "algorithm": record.algorithm.to_string(),
        "primary_version": record.primary_version,
        "versions": record.versions.iter().map(|v| json!({
            "version": v.version,
            "state": format!("{:?}", v.state).to_lowercase(),
            "provider": v.reference.provider,
        })).collect::<Vec<_>>(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKeyBody {
    name: String,
    purpose: String,
    #[serde(default)]
    algorithm: Option<String>,
}

/// `POST /v1/kms/keys`: creates a key (`kms-admin`).
async fn create_key(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kms = kms(&state)?;
    let admin = kms_admin(&state, &headers, "kms.key.create").await?;
    let result = async {
        let body: CreateKeyBody = json_body(&headers, body, state.max_body_bytes)?;
        let name = key_name(&body.name)?;
        let purpose: Purpose = body.purpose.parse().map_err(core)?;
        if is_ca_key(&name, Some(purpose)) {
            return Err(ApiError::Kms(KmsError::CaKey(name.to_string())));
        }
        let algorithm = body
            .algorithm
            .as_deref()
            .map(str::parse::<KeyAlgorithm>)
            .transpose()
            .map_err(core)?;
        let caller = Caller::new(format!("admin:{admin}"));
        let record = kms
            .keyring
            .create_key(&caller, &name, purpose, algorithm, &kms.provider)
            .await
            .map_err(core)?;
        Ok(describe(&record))
    }
    .await;
    admin_audit(&state, &admin, "kms.key.create", &result).await?;
    result.map(|reply| (StatusCode::CREATED, axum::Json(reply)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyActionBody {
    name: String,
    #[serde(default)]
    version: Option<u32>,
}

/// `POST /v1/kms/keys/{rotate|promote|disable|enable|destroy|describe}` (`kms-admin`).
async fn key_action(
    State(state): State<SharedState>,
    Path(action): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kms = kms(&state)?;
    let what = format!("kms.key.{action}");
    let admin = kms_admin(&state, &headers, &what).await?;
    let result = async {
        let body: KeyActionBody = json_body(&headers, body, state.max_body_bytes)?;
        let name = key_name(&body.name)?;
        if is_ca_key(&name, None) {
            return Err(ApiError::Kms(KmsError::CaKey(name.to_string())));
        }
        let caller = Caller::new(format!("admin:{admin}"));
        let ring = &kms.keyring;
        let version = || {
            body.version
                .ok_or_else(|| ApiError::MalformedRequest(format!("version: required for {action}")))
        };
        match action.as_str() {
            "rotate" => {
                ring.rotate(&caller, &name, Some(&kms.provider))
                    .await
                    .map_err(core)?;
            }
            "promote" => ring.promote(&caller, &name, version()?).await.map_err(core)?,
            "disable" => ring.disable(&caller, &name, version()?).await.map_err(core)?,
            "enable" => ring.enable(&caller, &name, version()?).await.map_err(core)?,
            "destroy" => {
                let version = version()?;
                let rows: u64 = state
                    .store
                    .inventory_counts(Some(name.as_str()))
                    .await
                    .map_err(store_error)?
                    .iter()
                    .filter(|count| count.key_version == version)
                    .map(|count| count.live + count.dead)
                    .sum();
                if rows > 0 {
                    return Err(ApiError::Kms(KmsError::VersionInUse {
                        key: name.to_string(),
                        version,
                        rows,
                    }));
                }
                ring.destroy(&caller, &name, version).await.map_err(core)?;
            }
            "describe" => {}
            other => {
                return Err(ApiError::NotFound(format!(
                    "unknown key action {other:?} (rotate, promote, disable, enable, destroy, describe)"
                )));
            }
        }
        let record = ring.describe(&name).await.map_err(core)?;
        if record.purpose == Purpose::PkiCa {
            return Err(ApiError::Kms(KmsError::CaKey(name.to_string())));
        }
        let mut reply = describe(&record);
        if action == "destroy" {
            reply["note"] = json!(
                "envelopes kept outside the service's inventory that still use this version can no longer be opened; rewrap them before destroying"
            );
        }
        Ok(reply)
    }
    .await;
    admin_audit(&state, &admin, &what, &result).await?;
    result.map(|reply| axum::Json(reply).into_response())
}

/// `GET /v1/kms/keys-of/{name}`: a key's description (`kms-admin`).
async fn describe_key(
    State(state): State<SharedState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let kms = kms(&state)?;
    kms_admin(&state, &headers, "kms.key.describe").await?;
    let name = key_name(&name)?;
    let record = kms.keyring.describe(&name).await.map_err(core)?;
    if is_ca_key(&name, Some(record.purpose)) {
        return Err(ApiError::Kms(KmsError::CaKey(name.to_string())));
    }
    Ok(axum::Json(describe(&record)).into_response())
}

async fn admin_audit(
    state: &AppState,
    admin: &str,
    action: &str,
    result: &Result<Value, ApiError>,
) -> Result<(), ApiError> {
    let outcome = match result {
        Ok(_) => json!("ok"),
        Err(error) => json!(error.code_and_status().0),
    };
    state
        .audit(json!({
            "type": action,
            "admin": admin,
            "after": result.as_ref().ok(),
            "outcome": outcome,
        }))
        .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    identity: String,
    keys: Vec<String>,
    operations: Vec<String>,
    /// RFC 3339; default now.
    #[serde(default)]
    not_before: Option<String>,
    /// RFC 3339.
    not_after: String,
}

fn grant_json(grant: &KmsGrant) -> Value {
    let rfc3339 = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    json!({
        "id": grant.id,
        "identity": grant.identity,
        "keys": grant.keys,
        "operations": grant.operations,
        "not_before": rfc3339(grant.not_before),
        "not_after": rfc3339(grant.not_after),
        "created_by": grant.created_by,
        "revoked_at": grant.revoked_at.map(rfc3339),
    })
}

fn store_error(error: carimbo_store::StoreError) -> ApiError {
    use carimbo_store::StoreError;
    match error {
        StoreError::NotFound => ApiError::NotFound("no such grant".into()),
        StoreError::Invalid(why) => ApiError::MalformedRequest(why),
        StoreError::Conflict(why) => ApiError::Conflict(why),
        error if error.is_storage_full() => ApiError::StorageFull,
        error if error.is_unavailable() => ApiError::DatabaseUnavailable,
        _ => ApiError::Internal("the grant could not be stored".into()),
    }
}

/// `POST /v1/kms/grants`: a grant effective at once (`kms-admin`).
async fn create_grant(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    kms(&state)?;
    let admin = kms_admin(&state, &headers, "kms.grant.create").await?;
    let result = async {
        let body: GrantBody = json_body(&headers, body, state.max_body_bytes)?;
        let parse_time = |field: &str, text: &str| {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .map_err(|e| ApiError::MalformedRequest(format!("{field}: {e}")))
        };
        for operation in &body.operations {
            operation
                .parse::<KmsOperation>()
                .map_err(ApiError::MalformedRequest)?;
        }
        if body.keys.iter().any(|k| k.starts_with("pki-ca/")) {
            return Err(ApiError::Kms(KmsError::CaKey(body.keys.join(", "))));
        }
        let now = OffsetDateTime::now_utc();
        let grant = KmsGrant {
            id: request_id(),
            identity: body.identity,
            keys: body.keys,
            operations: body.operations,
            not_before: match &body.not_before {
                Some(text) => parse_time("not_before", text)?,
                None => now,
            },
            not_after: parse_time("not_after", &body.not_after)?,
            created_by: admin.clone(),
            created_at: now,
            revoked_at: None,
        };
        state
            .store
            .insert_kms_grant(&grant)
            .await
            .map_err(store_error)?;
        Ok(grant_json(&grant))
    }
    .await;
    admin_audit(&state, &admin, "kms.grant.create", &result).await?;
    result.map(|reply| (StatusCode::CREATED, axum::Json(reply)).into_response())
}

/// `POST /v1/kms/grants/{id}/revoke` (`kms-admin`).
async fn revoke_grant(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    kms(&state)?;
    let admin = kms_admin(&state, &headers, "kms.grant.revoke").await?;
    let result = async {
        state
            .store
            .revoke_kms_grant(&id, OffsetDateTime::now_utc())
            .await
            .map_err(store_error)?;
        Ok(json!({ "id": id, "revoked": true }))
    }
    .await;
    admin_audit(&state, &admin, "kms.grant.revoke", &result).await?;
    result.map(|reply| axum::Json(reply).into_response())
}

/// `GET /v1/kms/grants`: every grant, newest first (`kms-admin`).
async fn list_grants(
    State(state): State<SharedState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    kms(&state)?;
    kms_admin(&state, &headers, "kms.grant.list").await?;
    let grants = state.store.kms_grants(1000).await.map_err(store_error)?;
    Ok(
        axum::Json(json!({ "grants": grants.iter().map(grant_json).collect::<Vec<_>>() }))
            .into_response(),
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    items: Vec<ImportItem>,
}

/// An application's sidecar: `{key_id, wrapped_dek, dek_version}` and its context.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportItem {
    id: String,
    key_id: String,
    wrapped_dek: String,
    dek_version: u32,
    #[serde(default)]
    context: std::collections::BTreeMap<String, String>,
}

/// `POST /v1/kms/inventory`: imports sidecars of wrapped data keys (`kms-admin`), so
/// that rotations and migrations rewrap them too. Each is checked: a Carimbo wrapped
/// key (or envelope headers) under the named key and version, of a key that exists.
async fn import_inventory(
    State(state): State<SharedState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let kms = kms(&state)?;
    let admin = kms_admin(&state, &headers, "kms.inventory.import").await?;
    let result = async {
        let body: ImportBody = json_body(&headers, body, state.max_body_bytes)?;
        if body.items.len() > kms.max_batch {
            return Err(ApiError::Kms(KmsError::BatchTooLarge(kms.max_batch)));
        }
        let mut rows = Vec::with_capacity(body.items.len());
        for item in body.items {
            let id = check_inventory_id(Some(item.id))?.unwrap_or_default();
            let bytes = decode("wrapped_dek", &item.wrapped_dek)?;
            let mut reader = Cursor::new(bytes.as_slice());
            let parsed = Headers::read_from(&mut reader).map_err(core)?;
            if parsed.wrap.key_name != item.key_id || parsed.wrap.key_version != item.dek_version {
                return Err(ApiError::Kms(KmsError::KeyMismatch {
                    requested: format!("{} v{}", item.key_id, item.dek_version),
                    actual: format!("{} v{}", parsed.wrap.key_name, parsed.wrap.key_version),
                }));
            }
            let name = key_name(&item.key_id)?;
            let record = kms.keyring.describe(&name).await.map_err(core)?;
            if is_ca_key(&name, Some(record.purpose)) {
                return Err(ApiError::Kms(KmsError::CaKey(name.to_string())));
            }
            let end = usize::try_from(reader.position()).unwrap_or(bytes.len());
            rows.push(inventory_row(
                id,
                &record,
                item.dek_version,
                bytes[..end].to_vec(),
                &context_of(&item.context)?,
            )?);
        }
        state
            .store
            .put_inventory(&rows)
            .await
            .map_err(store_error)?;
        Ok(json!({ "imported": rows.len() }))
    }
    .await;
    admin_audit(&state, &admin, "kms.inventory.import", &result).await?;
    result.map(|reply| axum::Json(reply).into_response())
}

#[derive(Debug, Deserialize)]
struct CountsQuery {
    #[serde(default)]
    key: Option<String>,
}

/// `GET /v1/kms/inventory?key=NAME`: rows by key version and provider (`kms-admin`).
async fn inventory_counts(
    State(state): State<SharedState>,
    axum::extract::Query(query): axum::extract::Query<CountsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    kms(&state)?;
    kms_admin(&state, &headers, "kms.inventory.counts").await?;
    let counts = state
        .store
        .inventory_counts(query.key.as_deref())
        .await
        .map_err(store_error)?;
    Ok(axum::Json(json!({ "versions": counts.iter().map(|c| json!({
        "key": c.key_name, "version": c.key_version, "provider": c.provider,
        "rows": c.live, "dead": c.dead,
    })).collect::<Vec<_>>() }))
    .into_response())
}

/// `GET /v1/kms/inventory/{id}`: the current wrapped key of an object (the read path of
/// applications while a migration runs), for callers the policy allows to decrypt
/// with its key.
async fn inventory_item(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientCertificate>>,
) -> Result<Response, ApiError> {
    let kms = kms(&state)?;
    let client = client.map(|c| c.0);
    let identity = caller_identity(&state, kms, &headers, client.as_ref(), "inventory").await?;
    let row = state.store.inventory_row(&id).await.map_err(store_error)?;
    let result = match &row {
        None => Err(ApiError::NotFound(format!("no inventory row {id:?}"))),
        Some(row) => {
            let key = key_name(&row.key_name)?;
            let context = context_from_json(&row.context).map_err(ApiError::Internal)?;
            let request = KmsRequest {
                identity: &identity,
                key: &key,
                purpose: Some(Purpose::Envelope),
                operation: KmsOperation::Decrypt,
                context: Some(&context),
            };
            let grants = live_grants(&state).await?;
            if decide(&kms.rules, &grants, &request).is_allowed() {
                Ok(json!({
                    "id": row.id,
                    "key": row.key_name,
                    "key_version": row.key_version,
                    "provider": row.provider,
                    "wrapped_key": BASE64.encode(&row.wrapped_key),
                    "context": serde_json::from_str::<Value>(&row.context).unwrap_or(Value::Null),
                }))
            } else {
                Err(ApiError::Kms(KmsError::Denied {
                    identity: identity.clone(),
                    operation: "decrypt".into(),
                    key: row.key_name.clone(),
                }))
            }
        }
    };
    state
        .audit(json!({
            "type": "kms.inventory.read",
            "identity": identity,
            "id": id,
            "outcome": match &result { Ok(_) => json!("ok"), Err(e) => json!(e.code_and_status().0) },
        }))
        .await?;
    result.map(|reply| axum::Json(reply).into_response())
}

/// `GET /v1/kms/jobs/{id}`: a rewrap job's progress (`kms-admin`).
async fn job(
    State(state): State<SharedState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    kms(&state)?;
    kms_admin(&state, &headers, "kms.job.read").await?;
    let job = state
        .store
        .kms_job(&id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::NotFound(format!("no job {id:?}")))?;
    Ok(axum::Json(crate::kms_migrate::job_json(&job)).into_response())
}
