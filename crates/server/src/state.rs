//! The service's state, built once from the config: issuers with their keys, profiles,
//! provisioners, administrators and the store.

use std::collections::HashMap;
use std::sync::Arc;

use carimbo_kms::SigningKey;
use carimbo_pki::{IssuerInfo, LeafKind, LeafProfile, SerialNumber, pem_decode};
use carimbo_store::Store;
use serde_json::Value;
use time::OffsetDateTime;

use crate::config::{LoadedConfig, ProfileSection, RevocationSection};
use crate::crl::CrlService;
use crate::keys::{KeyOpener, KeyReferenceFile};
use crate::ocsp::OcspService;
use crate::policy::Provisioner;
use crate::{ApiError, ServerError};

/// An issuing CA with its key.
#[derive(Debug)]
pub struct Issuer {
    /// Name, as in the config.
    pub name: String,
    /// Profiles it issues.
    pub profiles: Vec<LeafKind>,
    /// Whether it issues now.
    pub active: bool,
    /// Its certificate, DER.
    pub certificate: Vec<u8>,
    /// Its certificate followed by the intermediates above it (not the root), DER.
    pub chain: Vec<Vec<u8>>,
    /// The self-signed root(s) of its chain, DER: the trust anchors to publish.
    pub anchors: Vec<Vec<u8>>,
    /// What building a certificate under it needs.
    pub info: IssuerInfo,
    /// Its key.
    pub key: Arc<dyn SigningKey>,
    /// The provider its key lives in (`pkcs11`, `file`); its OCSP responder keys are
    /// made there too.
    pub key_provider: String,
    /// Number of CRL shards (1: a single CRL).
    pub crl_shards: u16,
}

impl Issuer {
    /// The CRLs it publishes: `[None]` for a single CRL, else one per shard.
    pub fn crl_shards(&self) -> Vec<Option<u8>> {
        if self.crl_shards <= 1 {
            vec![None]
        } else {
            (0..self.crl_shards)
                .filter_map(|shard| u8::try_from(shard).ok())
                .map(Some)
                .collect()
        }
    }

    /// The shard of a new certificate with serial `serial` (big-endian magnitude):
    /// `None` for a single CRL.
    pub fn crl_shard_for(&self, serial: &[u8]) -> Option<u8> {
        if self.crl_shards <= 1 {
            return None;
        }
        let low = serial
            .iter()
            .rev()
            .take(4)
            .rev()
            .fold(0u32, |value, byte| (value << 8) | u32::from(*byte));
        u8::try_from(low % u32::from(self.crl_shards)).ok()
    }
}

/// What a process serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Everything: the API, publication, CRL publishing, OCSP.
    All,
    /// Only the publication listener (OCSP, CRLs, caIssuers), for scaling OCSP apart
    /// from issuance: no API listener, no CRL publishing.
    Ocsp,
}

/// Where serial numbers come from: random by default; tests inject collisions.
pub trait SerialSource: Send + Sync + std::fmt::Debug {
    /// The next serial number.
    fn next_serial(&self) -> Result<SerialNumber, ApiError>;
}

/// 152 random bits per serial ([`SerialNumber::random`]).
#[derive(Debug, Default)]
pub struct RandomSerials;

impl SerialSource for RandomSerials {
    fn next_serial(&self) -> Result<SerialNumber, ApiError> {
        SerialNumber::random().map_err(|e| ApiError::Internal(e.to_string()))
    }
}

/// An administrator.
#[derive(Debug)]
pub struct Admin {
    /// Name.
    pub name: String,
    /// `admin`, `auditor` or `kms-admin`.
    pub role: String,
    /// SHA-256 of the admin's API token.
    pub token_sha256: [u8; 32],
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    /// Issuing CAs.
    pub issuers: Vec<Arc<Issuer>>,
    /// Leaf profiles by kind.
    pub profiles: HashMap<LeafKind, LeafProfile>,
    /// Provisioners by name.
    pub provisioners: HashMap<String, Provisioner>,
    /// Administrators.
    pub admins: Vec<Admin>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// This replica's audit chain.
    pub audit_chain: String,
    /// Signs this replica's audit chain heads.
    pub audit_signer: crate::audit_heads::AuditSigner,
    /// How often the audit signer runs.
    pub audit_head_interval: std::time::Duration,
    /// Per-identity rate limits.
    pub limits: crate::limits::Limits,
    /// The config's policy sections (see [`LoadedConfig::policy`]) and its file.
    pub policy: (std::path::PathBuf, serde_json::Map<String, Value>),
    /// Limits of each listener's connections.
    pub connection_limits: crate::tls::ConnectionLimits,
    /// Base URL of the publication listener (http://).
    pub publication_url: String,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Where serials come from.
    pub serials: Arc<dyn SerialSource>,
    /// Time limit of a request.
    pub request_timeout: std::time::Duration,
    /// Opens, generates and destroys keys.
    pub keys: KeyOpener,
    /// The OCSP responder.
    pub ocsp: OcspService,
    /// The CRL publisher and cache.
    pub crls: Arc<CrlService>,
    /// This replica's leases of the scheduled jobs.
    pub leases: Arc<crate::jobs::JobLeases>,
    /// The KMS API, when `[kms]` is configured.
    pub kms: Option<crate::kms_api::KmsService>,
    /// Revocation settings.
    pub revocation: RevocationSection,
    /// What this process serves.
    pub role: Role,
    /// The service's metrics (`GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Who may read `/metrics`, and where it is served.
    pub metrics_settings: crate::config::MetricsSection,
    /// Sessions of the admin dashboard (`/admin`), in this replica's memory.
    pub dashboard_sessions: crate::dashboard::Sessions,
    /// ACME challenge validation settings.
    pub acme: crate::acme::AcmeSettings,
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref());
    out
}

fn read_pem_certificate(path: &std::path::Path) -> Result<Vec<u8>, ServerError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ServerError::Keys(format!("{}: {e}", path.display())))?;
    pem_decode(&text, "CERTIFICATE")
        .map_err(|e| ServerError::Keys(format!("{}: {e}", path.display())))
}

fn is_self_signed(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
        .unwrap_or(false)
}

fn profile(kind: LeafKind, section: Option<&ProfileSection>) -> LeafProfile {
    let mut profile = LeafProfile::defaults(kind);
    if let Some(section) = section {
        if let Some(ttl) = section.default_ttl {
            profile.default_ttl = ttl.0;
        }
        if let Some(ttl) = section.max_ttl {
            profile.max_ttl = ttl.0;
        }
        if let Some(allow) = section.allow_ed25519 {
            profile.allow_ed25519 = allow;
        }
        if let Some(allow) = section.allow_ip_sans {
            profile.allow_ip_sans = allow;
        }
        if let Some(allow) = section.allow_wildcards {
            profile.allow_wildcards = allow;
        }
    }
    profile
}

impl AppState {
    /// The roots a client certificate may chain to on the API listener: the anchors of
    /// the issuers that issue clientAuth certificates (client and workload profiles).
    pub fn client_anchors(&self) -> Vec<Vec<u8>> {
        let mut anchors: Vec<Vec<u8>> = Vec::new();
        for issuer in &self.issuers {
            if !issuer
                .profiles
                .iter()
                .any(|p| matches!(p, LeafKind::Client | LeafKind::Workload))
            {
                continue;
            }
            for anchor in &issuer.anchors {
                if !anchors.contains(anchor) {
                    anchors.push(anchor.clone());
                }
            }
        }
        anchors
    }

    /// Builds the state: opens every issuer's key and checks it matches its
    /// certificate, reads admin tokens, opens nothing else.
    pub async fn build(loaded: &LoadedConfig, store: Arc<dyn Store>) -> Result<Self, ServerError> {
        let config = &loaded.config;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let opener = KeyOpener::from_config(loaded).with_metrics(Arc::clone(&metrics));
        let mut issuers = Vec::new();
        for section in &config.issuers {
            let certificate = read_pem_certificate(&loaded.resolve(&section.certificate))?;
            let reference = KeyReferenceFile::load(&loaded.resolve(&section.key_reference))?;
            let info = IssuerInfo::from_certificate(&certificate, reference.algorithm)
                .map_err(|e| ServerError::Keys(format!("issuer {}: {e}", section.name)))?;
            let key = opener
                .open(&reference, info.subject_public_key_info())
                .await?;
            // The chain returned with certificates: the issuer and any intermediate above
            // it, not the self-signed root (relying parties have it as a trust anchor).
            let mut chain = vec![certificate.clone()];
            let mut anchors = Vec::new();
            for path in &section.chain {
                let der = read_pem_certificate(&loaded.resolve(path))?;
                if is_self_signed(&der) {
                    anchors.push(der);
                } else {
                    chain.push(der);
                }
            }
            let profiles = section
                .profiles
                .iter()
                .filter_map(|p| p.parse::<LeafKind>().ok())
                .collect();
            issuers.push(Arc::new(Issuer {
                name: section.name.clone(),
                profiles,
                active: section.active,
                certificate,
                chain,
                anchors,
                info,
                key,
                key_provider: reference.provider.clone(),
                crl_shards: section.crl_shards,
            }));
        }
        let sections = &config.profiles;
        let profiles = [
            (LeafKind::Server, sections.server.as_ref()),
            (LeafKind::Client, sections.client.as_ref()),
            (LeafKind::Workload, sections.workload.as_ref()),
        ]
        .into_iter()
        .map(|(kind, section)| (kind, profile(kind, section)))
        .collect();
        let mut provisioners = HashMap::new();
        for (index, section) in config.provisioners.iter().enumerate() {
            let jwks = section
                .jwt
                .as_ref()
                .map(|settings| loaded.resolve(&settings.jwks));
            let mut provisioner = Provisioner::from_config_with_jwks(section, jwks.as_deref())
                .map_err(|e| ServerError::Config(format!("provisioners[{index}]: {e}")))?;
            for (key, eab) in section.eab_keys.iter().enumerate() {
                let field = format!("provisioners[{index}].eab-keys[{key}].hmac-key-file");
                let path = loaded.resolve(&eab.hmac_key_file);
                carimbo_kms::check_private_file(&path)
                    .map_err(|e| ServerError::Config(format!("{field}: {e}")))?;
                let text =
                    zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
                        ServerError::Config(format!("{field}: {}: {e}", path.display()))
                    })?);
                let decoded = zeroize::Zeroizing::new(
                    base64::Engine::decode(
                        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                        text.trim().trim_end_matches('='),
                    )
                    .map_err(|_| ServerError::Config(format!("{field}: not base64url")))?,
                );
                if decoded.len() < 32 {
                    return Err(ServerError::Config(format!(
                        "{field}: the key must be at least 32 bytes"
                    )));
                }
                provisioner.eab_keys.push(crate::policy::EabKey {
                    kid: eab.kid.clone(),
                    key: decoded,
                });
            }
            provisioners.insert(provisioner.name.clone(), provisioner);
        }
        let mut admins = Vec::new();
        for section in &config.admins {
            let path = loaded.resolve(&section.token_file);
            carimbo_kms::check_private_file(&path)
                .map_err(|e| ServerError::Config(e.to_string()))?;
            let token = std::fs::read_to_string(&path)
                .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
            admins.push(Admin {
                name: section.name.clone(),
                role: section.role.clone(),
                token_sha256: sha256(token.trim().as_bytes()),
            });
        }
        let nonce = config
            .issuers
            .iter()
            .map(|section| (section.name.clone(), section.ocsp_nonce))
            .collect();
        let revocation = config.revocation.clone();
        let ocsp = OcspService::new(&issuers, &nonce, &revocation)?;
        let crls = Arc::new(CrlService::new(
            revocation.crl_validity.0,
            revocation.crl_debounce.0,
            revocation.crl_directory.as_ref().map(|p| loaded.resolve(p)),
        ));
        let audit_chain = config.audit.chain.clone().unwrap_or_else(|| "main".into());
        let leases = Arc::new(crate::jobs::JobLeases::new(
            &audit_chain,
            config.jobs.lease_ttl.0,
        ));
        let kms = match &config.kms {
            Some(section) => {
                Some(crate::kms_api::KmsService::build(loaded, section, Arc::clone(&store)).await?)
            }
            None => None,
        };
        let audit_signer = crate::audit_heads::AuditSigner::new(
            &audit_chain,
            config
                .audit
                .key_provider
                .clone()
                .or_else(|| issuers.first().map(|i| i.key_provider.clone())),
        );
        Ok(Self {
            limits: crate::limits::Limits::from_config(&config.limits),
            policy: (loaded.path.clone(), loaded.policy.clone()),
            connection_limits: crate::tls::ConnectionLimits {
                header_timeout: std::time::Duration::from_millis(
                    u64::try_from(config.server.header_timeout.0.whole_milliseconds())
                        .unwrap_or(10_000),
                ),
                max_connections: config.server.max_connections,
            },
            audit_signer,
            audit_head_interval: std::time::Duration::from_millis(
                u64::try_from(config.audit.head_interval.0.whole_milliseconds()).unwrap_or(60_000),
            ),
            keys: opener,
            ocsp,
            crls,
            leases,
            kms,
            revocation,
            role: Role::All,
            metrics,
            metrics_settings: config.metrics.clone(),
            dashboard_sessions: crate::dashboard::Sessions::default(),
            acme: crate::acme::AcmeSettings::from_config(&config.acme)
                .map_err(|e| ServerError::Config(format!("acme: {e}")))?,
            issuers,
            profiles,
            provisioners,
            admins,
            store,
            audit_chain,
            publication_url: config
                .server
                .publication_url
                .trim_end_matches('/')
                .to_owned(),
            max_body_bytes: config.server.max_body_bytes,
            serials: Arc::new(RandomSerials),
            request_timeout: std::time::Duration::from_secs(
                u64::try_from(config.server.request_timeout.0.whole_seconds().max(1)).unwrap_or(10),
            ),
        })
    }

    /// The active issuer for `profile` that is valid now.
    pub fn issuer_for(
        &self,
        profile: LeafKind,
        now: OffsetDateTime,
    ) -> Result<&Arc<Issuer>, ApiError> {
        self.issuers
            .iter()
            .find(|i| i.active && i.profiles.contains(&profile) && i.info.not_after() > now)
            .ok_or_else(|| {
                ApiError::IssuerUnavailable(format!("no active issuer for the {profile} profile"))
            })
    }

    /// Records an audit event on this replica's chain. A failure to record refuses the
    /// request (503 when the database is unreachable or its disk full, else an internal
    /// error): nothing is returned that the audit trail does not show.
    pub async fn audit(&self, event: Value) -> Result<(), ApiError> {
        self.store
            .append_audit(&self.audit_chain, &event, OffsetDateTime::now_utc())
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::error!(error = %e, "audit append failed");
                if e.is_storage_full() {
                    ApiError::StorageFull
                } else if e.is_unavailable() {
                    ApiError::DatabaseUnavailable
                } else {
                    ApiError::Internal("audit trail unavailable".into())
                }
            })
    }
}

impl AppState {
    /// Marks intents left pending by a crash (older than `grace`) as failed: their
    /// certificates were never returned, so nothing relies on them. Returns how many.
    /// Newer intents may still be in flight on another replica and are left alone.
    pub async fn reconcile_pending(&self, grace: time::Duration) -> Result<usize, ServerError> {
        let now = OffsetDateTime::now_utc();
        let mut reconciled = 0;
        for intent in self.store.pending_intents().await? {
            if now - intent.created_at < grace {
                continue;
            }
            self.store
                .fail_issuance(
                    &intent.serial,
                    "interrupted before signing completed; reconciled at start",
                )
                .await?;
            let _ = self
                .audit(serde_json::json!({
                    "type": "certificate.reconciled",
                    "serial": intent.serial,
                    "request_id": intent.request_id,
                    "outcome": "failed",
                }))
                .await;
            reconciled += 1;
        }
        Ok(reconciled)
    }
}
