//! The service config (`carimbo serve --config FILE`): strict TOML, unknown keys refused,
//! paths relative to the file, secrets only by reference (files or environment).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ServerError;

/// The config format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// A duration written `90s`, `10m`, `24h` or `30d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub time::Duration);

impl Span {
    /// Parses `90s`, `10m`, `24h`, `30d` (or plain seconds).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: i64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration like 90s, 10m, 24h or 30d"))?;
        let seconds = match unit {
            "" | "s" => value,
            "m" => value.saturating_mul(60),
            "h" => value.saturating_mul(3600),
            "d" => value.saturating_mul(86_400),
            _ => return Err(format!("{text:?}: unknown unit {unit:?} (s, m, h or d)")),
        };
        Ok(Self(time::Duration::seconds(seconds)))
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Span::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The whole service config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerConfig {
    /// Must be 1.
    pub version: u32,
    /// Listeners and limits.
    pub server: ListenSection,
    /// TLS of the API listener.
    pub tls: TlsSection,
    /// Storage.
    pub database: DatabaseSection,
    /// Where CA keys are opened.
    #[serde(default)]
    pub keys: KeysSection,
    /// Leaf profiles (defaults when absent).
    #[serde(default)]
    pub profiles: ProfilesSection,
    /// Issuing CAs.
    pub issuers: Vec<IssuerSection>,
    /// Who may obtain which certificates.
    #[serde(default)]
    pub provisioners: Vec<ProvisionerSection>,
    /// Administrators.
    #[serde(default)]
    pub admins: Vec<AdminSection>,
    /// Audit settings.
    #[serde(default)]
    pub audit: AuditSection,
    /// Revocation, CRL and OCSP settings (defaults when absent).
    #[serde(default)]
    pub revocation: RevocationSection,
    /// Scheduled jobs shared by replicas (defaults when absent).
    #[serde(default)]
    pub jobs: JobsSection,
    /// The KMS API (`/v1/kms/…`); off when absent.
    pub kms: Option<KmsSection>,
    /// Per-identity rate limits (off when absent).
    #[serde(default)]
    pub limits: LimitsSection,
    /// `GET /metrics` (defaults when absent: on, auditor or admin token required).
    #[serde(default)]
    pub metrics: MetricsSection,
    /// ACME (RFC 8555) challenge validation settings (docs/acme.md); ACME itself is on
    /// for every profile an ACME provisioner grants.
    #[serde(default)]
    pub acme: AcmeSection,
}

/// How the ACME server validates challenges.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(default)]
pub struct AcmeSection {
    /// Port of http-01 validation requests (default 80, as RFC 8555 §8.3 requires;
    /// another port only for tests and closed networks).
    pub http_01_port: u16,
    /// Port of tls-alpn-01 validation handshakes (default 443, RFC 8737 §3).
    pub tls_alpn_01_port: u16,
    /// Address ranges (CIDR, e.g. `10.0.0.0/8`, `::1/128`) validation may reach even
    /// though they are refused by default: loopback, private (RFC 1918, unique local),
    /// link-local, shared (100.64/10), unspecified, multicast and broadcast addresses.
    /// Every other address is reachable.
    pub allow_networks: Vec<String>,
    /// Time limit of one challenge validation: resolution, connection, redirects and
    /// response (default 10s).
    pub validation_timeout: Span,
    /// Lifetime of orders and their authorizations (default 1h).
    pub order_lifetime: Span,
    /// The recursive DNS resolver dns-01 validation asks (`address:port`); default: the
    /// first `nameserver` of `/etc/resolv.conf`. Without one, dns-01 is not offered.
    pub dns_resolver: Option<SocketAddr>,
}

impl Default for AcmeSection {
    fn default() -> Self {
        Self {
            http_01_port: 80,
            tls_alpn_01_port: 443,
            allow_networks: Vec::new(),
            validation_timeout: Span(time::Duration::seconds(10)),
            order_lifetime: Span(time::Duration::hours(1)),
            dns_resolver: None,
        }
    }
}

/// Who may read `GET /metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricsAccess {
    /// An administrator token of role `auditor` or `admin` (`Authorization: Bearer`).
    #[default]
    Auditor,
    /// Anyone who reaches the listener (protect it by network policy).
    Open,
}

/// `GET /metrics` (Prometheus text, docs/metrics.md).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(default)]
pub struct MetricsSection {
    /// Serve `/metrics` at all (default true).
    pub enabled: bool,
    /// `auditor` (default): an `auditor` or `admin` token is required; `open`: none.
    pub access: MetricsAccess,
    /// Also serve `/metrics` on the plain-HTTP publication listener (default false):
    /// for `serve --role ocsp`, which has no API listener. With `access = "auditor"`
    /// the token then crosses the network in clear: keep that listener's metrics
    /// port private, or use `open` behind a network policy.
    pub publication: bool,
    /// How long the gauges read from the database (certificates about to expire, the
    /// stalest stored OCSP answer) are reused between scrapes (default 30s).
    pub store_refresh: Span,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            access: MetricsAccess::Auditor,
            publication: false,
            store_refresh: Span(time::Duration::seconds(30)),
        }
    }
}

/// The KMS API: keys for applications (envelope encryption, signing, HMAC), kept apart
/// from the CA keys, used under a deny-by-default policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KmsSection {
    /// Where new keys are generated: `pkcs11` (the KMS token), `aws` (AWS KMS) or
    /// `file` (development). Every configured provider stays readable, so keys can
    /// move between them (docs/kms-api.md, migration).
    pub provider: String,
    /// PKCS#11 provider config of the KMS token: a token (and PIN) other than the CA
    /// token's.
    pub pkcs11_config: Option<PathBuf>,
    /// Directory of the KMS's development file keys (not the CA's `keys.file-directory`).
    pub file_directory: Option<PathBuf>,
    /// AWS KMS provider config (`aws-kms.toml`; credentials from the standard AWS chain).
    pub aws_config: Option<PathBuf>,
    /// Largest number of items in one batch request (default 100, at most 1000).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Applications that authenticate with a bearer token (identity `client:{name}`).
    /// Clients with a TLS client certificate from a client or workload issuer are
    /// identified by its SPIFFE ID (or `dns:{name}`) instead.
    #[serde(default)]
    pub clients: Vec<KmsClientSection>,
    /// Allow rules; nothing else is allowed, except by grants.
    #[serde(default)]
    pub rules: Vec<KmsRuleSection>,
    /// Scheduled rotations: keys matching a pattern get a new primary version when
    /// their primary is older than the period.
    #[serde(default)]
    pub rotation: Vec<KmsRotationSection>,
    /// Rewraps per second each key provider takes from migration jobs (`pkcs11`,
    /// `aws`, `file`), shared by every job writing to it: a job gets the limit divided
    /// by the number of jobs running towards that provider.
    #[serde(default)]
    pub rate_limits: std::collections::BTreeMap<String, u32>,
}

/// A scheduled rotation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KmsRotationSection {
    /// Key name patterns.
    pub keys: Vec<String>,
    /// Largest age of a primary version (e.g. `90d`).
    pub every: Span,
}

fn default_max_batch() -> usize {
    100
}

/// A token-authenticated KMS client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KmsClientSection {
    /// Name: the identity is `client:{name}`.
    pub name: String,
    /// File holding its token (0600).
    pub token_file: PathBuf,
}

/// An allow rule: identities × keys × operations × purposes, with optional context
/// constraints (docs/kms.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KmsRuleSection {
    /// Identity patterns.
    pub identities: Vec<String>,
    /// Key name patterns.
    pub keys: Vec<String>,
    /// Operations: encrypt, decrypt, datakey, rewrap, sign, verify, hmac, verify-hmac.
    pub operations: Vec<String>,
    /// Purposes the key must have (sign, envelope, hmac); empty: any.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// Context entries the request must carry (values are patterns).
    #[serde(default)]
    pub context: std::collections::BTreeMap<String, String>,
}

/// Scheduled jobs (CRL publication, OCSP refresh): each runs on the one replica that
/// holds its lease in the database.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(default)]
pub struct JobsSection {
    /// How long a lease lasts unless renewed (default 15s; renewed every third of it).
    /// When its holder dies or stalls, another replica takes the job over within about
    /// this long; the stalled one's writes are then refused by their fencing token.
    pub lease_ttl: Span,
}

impl Default for JobsSection {
    fn default() -> Self {
        Self {
            lease_ttl: Span(time::Duration::seconds(15)),
        }
    }
}

/// Revocation, CRLs and OCSP.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(default)]
pub struct RevocationSection {
    /// nextUpdate − thisUpdate of the issuers' CRLs (default 24h). A CRL is reissued
    /// when half of it has passed, and within `crl-debounce` of a revocation.
    pub crl_validity: Span,
    /// How long after a revocation the CRL is reissued, so a burst of revocations makes
    /// one CRL (default 2s).
    pub crl_debounce: Span,
    /// A directory to also write each issuer's current CRL to (`{issuer}.crl`), for
    /// static hosting.
    pub crl_directory: Option<PathBuf>,
    /// nextUpdate − thisUpdate of OCSP answers (default 4h); answers are re-signed when
    /// half of it has passed.
    pub ocsp_validity: Span,
    /// Largest `Cache-Control: max-age` of an OCSP answer: the bound on how long an HTTP
    /// cache may keep serving a `good` after a revocation (default 60s).
    pub ocsp_max_age: Span,
    /// When the first OCSP answer of a certificate is signed: `lazy` (at its first
    /// request) or `issuance` (right after the certificate is stored).
    pub ocsp_presign: OcspPresign,
    /// Validity of the delegated OCSP responder certificates (default 7d); a new
    /// responder key and certificate are made when half of it has passed.
    pub ocsp_responder_validity: Span,
    /// How many OCSP answers may be signed at once on the request path (nonces, first
    /// requests, unknown serials); beyond that requests get `tryLater` (default 8).
    pub ocsp_live_signing_limit: usize,
    /// How often this replica reads the revocation log to drop cached OCSP answers of
    /// certificates revoked through other replicas (default 1s).
    pub revocation_poll: Span,
}

impl Default for RevocationSection {
    fn default() -> Self {
        Self {
            crl_validity: Span(time::Duration::hours(24)),
            crl_debounce: Span(time::Duration::seconds(2)),
            crl_directory: None,
            ocsp_validity: Span(time::Duration::hours(4)),
            ocsp_max_age: Span(time::Duration::seconds(60)),
            ocsp_presign: OcspPresign::Lazy,
            ocsp_responder_validity: Span(time::Duration::days(7)),
            ocsp_live_signing_limit: 8,
            revocation_poll: Span(time::Duration::seconds(1)),
        }
    }
}

/// When a certificate's first OCSP answer is signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OcspPresign {
    /// At the first request for it (then kept and refreshed).
    Lazy,
    /// Right after issuance (one more signature and write per certificate).
    Issuance,
}

/// Listeners and limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ListenSection {
    /// HTTPS API address, e.g. `127.0.0.1:8443`.
    pub listen: SocketAddr,
    /// Plain-HTTP publication address (caIssuers, CRLs, OCSP).
    pub publication_listen: Option<SocketAddr>,
    /// Base URL written into certificates for the publication listener, e.g.
    /// `http://pki.example.com` (`http://` only).
    pub publication_url: String,
    /// Largest request body accepted, in bytes (default 64 KiB).
    #[serde(default = "default_body_limit")]
    pub max_body_bytes: usize,
    /// Time limit of a request (default 10s).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: Span,
    /// Time a client has to send a request's headers, from the connection's start or
    /// the end of the previous request (default 10s): slow and idle clients are
    /// disconnected.
    #[serde(default = "default_request_timeout")]
    pub header_timeout: Span,
    /// Connections served at once per listener (default 4096); more wait to be
    /// accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_connections() -> usize {
    4096
}

/// Per-identity rate limits (off unless set). Refused requests get `429 rate_limited`
/// with `Retry-After`, and are audited.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(default)]
pub struct LimitsSection {
    /// Certificates (issuance and renewal) per minute per identity, with bursts of as
    /// many; 0: no limit.
    pub issuance_per_minute: u32,
    /// KMS operations per second per identity (each batch item counts), with bursts of
    /// as many; 0: no limit.
    pub kms_per_second: u32,
}

fn default_body_limit() -> usize {
    64 * 1024
}

fn default_request_timeout() -> Span {
    Span(time::Duration::seconds(10))
}

/// TLS of the API listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsSection {
    /// Certificate chain (PEM) of the listener.
    pub certificate: PathBuf,
    /// Private key (PEM PKCS#8) of the listener; refused if group/world readable.
    pub key: PathBuf,
    /// Have the service issue its own listener certificate from its issuers at start
    /// (when the files are missing or expire within a day), through the normal issuance
    /// path.
    pub self_issue: Option<SelfIssueSection>,
}

/// Self-issued listener certificate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SelfIssueSection {
    /// Provisioner whose policy must allow the names.
    pub provisioner: String,
    /// Names of the listener, e.g. `dns:ca.example.com`, `ip:127.0.0.1`.
    pub sans: Vec<String>,
}

/// Storage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DatabaseSection {
    /// SQLite database file (created if absent): one node, or several processes on one
    /// host.
    pub sqlite: Option<PathBuf>,
    /// PostgreSQL instead (several replicas sharing one CA): a file holding the
    /// connection URL (`postgres://user:password@host/db`), readable by the service
    /// only.
    pub postgres_url_file: Option<PathBuf>,
    /// PostgreSQL instead: an environment variable holding the connection URL.
    pub postgres_url_env: Option<String>,
    /// Most connections to PostgreSQL (default 10).
    pub max_connections: Option<u32>,
}

/// The database a [`DatabaseSection`] names.
#[derive(Debug)]
pub enum DatabaseChoice {
    /// SQLite, at this file.
    Sqlite(PathBuf),
    /// PostgreSQL, at this URL (holds the password: never log it).
    Postgres {
        /// The connection URL.
        url: String,
        /// Pool size.
        max_connections: u32,
    },
}

/// Where CA keys are opened.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeysSection {
    /// PKCS#11 provider config for the CA token (keys with `provider = "pkcs11"`).
    pub pkcs11_config: Option<PathBuf>,
    /// Directory of development software-token keys (keys with `provider = "file"`).
    pub file_directory: Option<PathBuf>,
}

/// Leaf profiles.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProfilesSection {
    /// `server` profile overrides.
    pub server: Option<ProfileSection>,
    /// `client` profile overrides.
    pub client: Option<ProfileSection>,
    /// `workload` profile overrides.
    pub workload: Option<ProfileSection>,
}

/// Overrides of one profile's defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProfileSection {
    /// Lifetime when the request names none.
    pub default_ttl: Option<Span>,
    /// Longest lifetime; longer requests are refused.
    pub max_ttl: Option<Span>,
    /// Allow Ed25519 subject keys.
    pub allow_ed25519: Option<bool>,
    /// Allow IP SANs (server).
    pub allow_ip_sans: Option<bool>,
    /// Allow wildcard DNS SANs (server).
    pub allow_wildcards: Option<bool>,
}

/// One issuing CA.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IssuerSection {
    /// Name (used in URLs: `/ca/{name}.cer`).
    pub name: String,
    /// Profiles it issues (`server`, `client`, `workload`).
    pub profiles: Vec<String>,
    /// Its certificate (PEM), from the ceremony.
    pub certificate: PathBuf,
    /// Certificates above it up to the root (PEM files), for the chain returned.
    #[serde(default)]
    pub chain: Vec<PathBuf>,
    /// Its key reference file, from the ceremony.
    pub key_reference: PathBuf,
    /// Whether it issues (several issuers per profile allow a rollover; one active).
    #[serde(default = "default_true")]
    pub active: bool,
    /// Echo OCSP nonces for this issuer. Answers with a nonce cannot be pre-signed, so
    /// this switches the issuer's nonce requests to live signing (bounded by
    /// `revocation.ocsp-live-signing-limit`, `tryLater` beyond it).
    #[serde(default)]
    pub ocsp_nonce: bool,
    /// Split the issuer's CRL into this many shards (1 to 256; default 1, one CRL). A
    /// certificate's shard is drawn from its serial at issuance, stored with it and
    /// written into its CRL distribution point (`/crl/{name}/{shard}.crl`); raising the
    /// count later leaves earlier certificates in their shard.
    #[serde(default = "default_crl_shards")]
    pub crl_shards: u16,
}

fn default_crl_shards() -> u16 {
    1
}

fn default_true() -> bool {
    true
}

/// A provisioner.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProvisionerSection {
    /// Name.
    pub name: String,
    /// `token` (one-time bootstrap tokens minted by an admin), `jwt` (OIDC/JWT
    /// bearer tokens, e.g. Kubernetes service-account tokens; settings in
    /// `[provisioners.jwt]`) or `acme` (ACME clients, at `/acme/{profile}/directory`
    /// for each of its profiles; at most one ACME provisioner per profile).
    #[serde(rename = "type")]
    pub kind: String,
    /// JWT settings (type `jwt` only).
    pub jwt: Option<crate::jwt::JwtSettings>,
    /// Profiles it may grant.
    pub profiles: Vec<String>,
    /// SAN patterns it may grant, e.g. `dns:*.lab.example.com`, `uri:spiffe://lab/*`
    /// (`*` matches within one DNS label or one path segment; `**` at the end of a URI
    /// matches the rest).
    pub sans: Vec<String>,
    /// Longest certificate lifetime it may grant.
    pub max_ttl: Span,
    /// Renewals of a lineage older than this must bootstrap again.
    #[serde(default = "default_lineage_age")]
    pub lineage_max_age: Span,
    /// Longest lifetime of its bootstrap tokens.
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime: Span,
    /// ACME only: accept only accounts created with External Account Binding by one of
    /// its `eab-keys` (default false). Of the ACME provisioners granting a profile, at
    /// most one may leave this off: accounts created without EAB belong to it.
    #[serde(default)]
    pub require_eab: bool,
    /// ACME only: External Account Binding keys; an account created with one of them
    /// belongs to this provisioner, whose policy then limits what it may order.
    #[serde(default)]
    pub eab_keys: Vec<EabKeySection>,
}

/// An ACME External Account Binding key (RFC 8555 §7.3.4).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EabKeySection {
    /// The key identifier given to the account holder.
    pub kid: String,
    /// File (0600) holding the HMAC key, base64url as handed to ACME clients (at least
    /// 32 bytes once decoded).
    pub hmac_key_file: PathBuf,
}

fn default_lineage_age() -> Span {
    Span(time::Duration::days(30))
}

fn default_token_lifetime() -> Span {
    Span(time::Duration::minutes(60))
}

/// An administrator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdminSection {
    /// Name, recorded in audit events.
    pub name: String,
    /// `admin`, `auditor` or `kms-admin`.
    pub role: String,
    /// File holding the admin's API token (0600).
    pub token_file: PathBuf,
}

/// Audit settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
#[serde(default)]
pub struct AuditSection {
    /// Name of this replica's audit chain (default `main`).
    pub chain: Option<String>,
    /// How often the chain's head is signed when events were added (default 1m). Events
    /// after the last signed head are what someone with database access could rewrite
    /// unseen, so this bounds that window.
    pub head_interval: Span,
    /// Key provider of the audit key (`pkcs11` or `file`; default: the provider of the
    /// first issuer's key).
    pub key_provider: Option<String>,
}

impl Default for AuditSection {
    fn default() -> Self {
        Self {
            chain: None,
            head_interval: Span(time::Duration::minutes(1)),
            key_provider: None,
        }
    }
}

/// The sections of a config that decide who gets what — provisioners, profiles, admins
/// and their roles, rate limits, ACME validation settings, and the KMS clients, rules,
/// rotations and rate limits —
/// as JSON, section by section, for the `config.applied` audit event.
fn policy_sections(text: &str) -> serde_json::Map<String, serde_json::Value> {
    let Ok(table) = text.parse::<toml::Table>() else {
        return serde_json::Map::new();
    };
    let mut sections = serde_json::Map::new();
    for name in ["provisioners", "profiles", "admins", "limits", "acme"] {
        if let Some(value) = table.get(name) {
            sections.insert(
                name.to_owned(),
                serde_json::to_value(value).unwrap_or_default(),
            );
        }
    }
    if let Some(toml::Value::Table(kms)) = table.get("kms") {
        for name in ["clients", "rules", "rotation", "rate-limits"] {
            if let Some(value) = kms.get(name) {
                sections.insert(
                    format!("kms.{name}"),
                    serde_json::to_value(value).unwrap_or_default(),
                );
            }
        }
    }
    sections
}

/// A config as loaded, with its directory for relative paths.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The config.
    pub config: ServerConfig,
    /// The file.
    pub path: PathBuf,
    /// Its policy sections as JSON (provisioners, profiles, admins, limits, ACME, KMS
    /// clients, rules, rotations and rate limits), for auditing changes between starts.
    pub policy: serde_json::Map<String, serde_json::Value>,
}

impl LoadedConfig {
    /// Loads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        let deserializer = toml::Deserializer::parse(&text)
            .map_err(|e| ServerError::Config(format!("{}: {}", path.display(), e.message())))?;
        let config: ServerConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            ServerError::Config(format!(
                "{}: {}: {}",
                path.display(),
                e.path(),
                e.inner().message()
            ))
        })?;
        let loaded = Self {
            config,
            path: path.to_path_buf(),
            policy: policy_sections(&text),
        };
        loaded.check()?;
        Ok(loaded)
    }

    /// `relative` resolved against the config file's directory.
    pub fn resolve(&self, relative: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if relative.is_relative() => dir.join(relative),
            _ => relative.to_path_buf(),
        }
    }

    /// The database to open: reads the PostgreSQL URL from its file (refused when
    /// group or others can read it) or environment variable.
    pub fn database(&self) -> Result<DatabaseChoice, ServerError> {
        let section = &self.config.database;
        let max_connections = section.max_connections.unwrap_or(10);
        match (
            &section.sqlite,
            &section.postgres_url_file,
            &section.postgres_url_env,
        ) {
            (Some(file), None, None) => Ok(DatabaseChoice::Sqlite(self.resolve(file))),
            (None, Some(file), None) => {
                let path = self.resolve(file);
                carimbo_kms::check_private_file(&path)
                    .map_err(|e| self.error("database.postgres-url-file", e))?;
                let url = std::fs::read_to_string(&path).map_err(|e| {
                    self.error(
                        "database.postgres-url-file",
                        format!("{}: {e}", path.display()),
                    )
                })?;
                Ok(DatabaseChoice::Postgres {
                    url: url.trim().to_owned(),
                    max_connections,
                })
            }
            (None, None, Some(variable)) => {
                let url = std::env::var(variable).map_err(|_| {
                    self.error(
                        "database.postgres-url-env",
                        format!("environment variable {variable} is not set"),
                    )
                })?;
                Ok(DatabaseChoice::Postgres {
                    url: url.trim().to_owned(),
                    max_connections,
                })
            }
            _ => Err(self.error(
                "database",
                "give exactly one of sqlite, postgres-url-file, postgres-url-env",
            )),
        }
    }

    fn error(&self, field: &str, message: impl std::fmt::Display) -> ServerError {
        ServerError::Config(format!("{}: {field}: {message}", self.path.display()))
    }

    fn check_kms(&self, kms: &KmsSection) -> Result<(), ServerError> {
        match kms.provider.as_str() {
            "pkcs11" if kms.pkcs11_config.is_none() => {
                return Err(self.error("kms.pkcs11-config", "required with provider pkcs11"));
            }
            "file" if kms.file_directory.is_none() => {
                return Err(self.error("kms.file-directory", "required with provider file"));
            }
            "aws" if kms.aws_config.is_none() => {
                return Err(self.error("kms.aws-config", "required with provider aws"));
            }
            "pkcs11" | "file" | "aws" => {}
            other => {
                return Err(self.error(
                    "kms.provider",
                    format!("{other:?}: expected pkcs11, aws or file"),
                ));
            }
        }
        for (provider, limit) in &kms.rate_limits {
            if !matches!(provider.as_str(), "pkcs11" | "aws" | "file") {
                return Err(self.error(
                    &format!("kms.rate-limits.{provider}"),
                    "unknown provider: expected pkcs11, aws or file",
                ));
            }
            if *limit == 0 {
                return Err(self.error(
                    &format!("kms.rate-limits.{provider}"),
                    "must be at least 1 (leave it out for no limit)",
                ));
            }
        }
        let keys = &self.config.keys;
        if kms.pkcs11_config.is_some() && kms.pkcs11_config == keys.pkcs11_config {
            return Err(self.error(
                "kms.pkcs11-config",
                "must name the KMS token, not the CA token of keys.pkcs11-config",
            ));
        }
        if kms.file_directory.is_some() && kms.file_directory == keys.file_directory {
            return Err(self.error(
                "kms.file-directory",
                "must differ from keys.file-directory (the CA keys)",
            ));
        }
        if kms.max_batch == 0 || kms.max_batch > 1000 {
            return Err(self.error("kms.max-batch", "must be between 1 and 1000"));
        }
        let mut names = std::collections::HashSet::new();
        for (index, client) in kms.clients.iter().enumerate() {
            if client.name.is_empty() || !names.insert(client.name.as_str()) {
                return Err(self.error(
                    &format!("kms.clients[{index}].name"),
                    "must be non-empty and unique",
                ));
            }
        }
        for (index, rule) in kms.rules.iter().enumerate() {
            self.kms_rule(index, rule)?;
        }
        for (index, rotation) in kms.rotation.iter().enumerate() {
            if rotation.keys.is_empty() || rotation.keys.iter().any(|k| k.starts_with("pki-ca/")) {
                return Err(self.error(
                    &format!("kms.rotation[{index}].keys"),
                    "must list key patterns, and no CA keys",
                ));
            }
            if rotation.every.0 < time::Duration::seconds(1) {
                return Err(self.error(
                    &format!("kms.rotation[{index}].every"),
                    "must be at least 1s",
                ));
            }
        }
        Ok(())
    }

    fn check_acme(&self) -> Result<(), ServerError> {
        let mut open = std::collections::HashMap::new();
        let mut kids = std::collections::HashSet::new();
        for (index, provisioner) in self.config.provisioners.iter().enumerate() {
            if provisioner.kind != "acme" {
                if provisioner.require_eab || !provisioner.eab_keys.is_empty() {
                    return Err(self.error(
                        &format!("provisioners[{index}].eab-keys"),
                        "only ACME provisioners take require-eab and eab-keys",
                    ));
                }
                continue;
            }
            for (key, eab) in provisioner.eab_keys.iter().enumerate() {
                if eab.kid.is_empty() || !kids.insert(eab.kid.as_str()) {
                    return Err(self.error(
                        &format!("provisioners[{index}].eab-keys[{key}].kid"),
                        "must be non-empty and unique across provisioners",
                    ));
                }
            }
            if provisioner.require_eab {
                if provisioner.eab_keys.is_empty() {
                    return Err(self.error(
                        &format!("provisioners[{index}].require-eab"),
                        "needs at least one entry in eab-keys",
                    ));
                }
                continue;
            }
            for profile in &provisioner.profiles {
                if let Some(other) = open.insert(profile.as_str(), provisioner.name.as_str()) {
                    return Err(self.error(
                        &format!("provisioners[{index}].profiles"),
                        format!(
                            "ACME provisioner {other:?} already takes accounts without External \
                             Account Binding for profile {profile:?}; set require-eab on one"
                        ),
                    ));
                }
            }
        }
        let acme = &self.config.acme;
        if acme.http_01_port == 0 {
            return Err(self.error("acme.http-01-port", "must be a port number (1-65535)"));
        }
        if acme.tls_alpn_01_port == 0 {
            return Err(self.error("acme.tls-alpn-01-port", "must be a port number (1-65535)"));
        }
        for (index, network) in acme.allow_networks.iter().enumerate() {
            crate::acme::validation::Network::parse(network)
                .map_err(|e| self.error(&format!("acme.allow-networks[{index}]"), e))?;
        }
        let timeout = acme.validation_timeout.0;
        if timeout < time::Duration::seconds(1) || timeout > time::Duration::minutes(2) {
            return Err(self.error("acme.validation-timeout", "must be between 1s and 2m"));
        }
        let lifetime = acme.order_lifetime.0;
        if lifetime < time::Duration::minutes(1) || lifetime > time::Duration::days(7) {
            return Err(self.error("acme.order-lifetime", "must be between 1m and 7d"));
        }
        Ok(())
    }

    /// The rule `index` of `kms.rules`, checked.
    pub fn kms_rule(
        &self,
        index: usize,
        rule: &KmsRuleSection,
    ) -> Result<crate::kms_policy::KmsRule, ServerError> {
        let field = |name: &str| format!("kms.rules[{index}].{name}");
        for (name, list) in [
            ("identities", &rule.identities),
            ("keys", &rule.keys),
            ("operations", &rule.operations),
        ] {
            if list.is_empty() || list.iter().any(String::is_empty) {
                return Err(self.error(&field(name), "must list at least one non-empty entry"));
            }
        }
        if rule.keys.iter().any(|k| k.starts_with("pki-ca/")) {
            return Err(self.error(
                &field("keys"),
                "CA keys (pki-ca/…) are never reachable through the KMS API",
            ));
        }
        let operations = rule
            .operations
            .iter()
            .map(|op| op.parse())
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| self.error(&field("operations"), e))?;
        let purposes = rule
            .purposes
            .iter()
            .map(|p| match p.parse::<carimbo_kms::Purpose>() {
                Ok(carimbo_kms::Purpose::PkiCa) => {
                    Err("pki-ca keys are never reachable through the KMS API".to_owned())
                }
                Ok(purpose) => Ok(purpose),
                Err(e) => Err(e.to_string()),
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| self.error(&field("purposes"), e))?;
        Ok(crate::kms_policy::KmsRule {
            identities: rule.identities.clone(),
            keys: rule.keys.clone(),
            operations,
            purposes,
            context: rule.context.clone(),
        })
    }

    fn check(&self) -> Result<(), ServerError> {
        let config = &self.config;
        let database = &config.database;
        let chosen = usize::from(database.sqlite.is_some())
            + usize::from(database.postgres_url_file.is_some())
            + usize::from(database.postgres_url_env.is_some());
        if chosen != 1 {
            return Err(self.error(
                "database",
                "give exactly one of sqlite, postgres-url-file, postgres-url-env",
            ));
        }
        if database.max_connections == Some(0) {
            return Err(self.error("database.max-connections", "at least 1"));
        }
        if config.version != CONFIG_VERSION {
            return Err(self.error("version", format!("must be {CONFIG_VERSION}")));
        }
        if !config.server.publication_url.starts_with("http://") {
            return Err(self.error(
                "server.publication-url",
                "must be an http:// URL (relying parties fetch it without TLS)",
            ));
        }
        if config.issuers.is_empty() {
            return Err(self.error("issuers", "at least one issuer is needed"));
        }
        for (index, issuer) in config.issuers.iter().enumerate() {
            if issuer.name.is_empty()
                || !issuer
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(self.error(
                    &format!("issuers[{index}].name"),
                    "letters, digits, '-' and '_' only",
                ));
            }
            if !(1..=256).contains(&issuer.crl_shards) {
                return Err(self.error(
                    &format!("issuers[{index}].crl-shards"),
                    "from 1 (one CRL) to 256",
                ));
            }
            for profile in &issuer.profiles {
                if !matches!(profile.as_str(), "server" | "client" | "workload") {
                    return Err(self.error(
                        &format!("issuers[{index}].profiles"),
                        format!("unknown profile {profile:?}"),
                    ));
                }
            }
        }
        for (index, provisioner) in config.provisioners.iter().enumerate() {
            match (provisioner.kind.as_str(), &provisioner.jwt) {
                ("token", None) => {}
                ("jwt", Some(settings)) => settings
                    .check()
                    .map_err(|e| self.error(&format!("provisioners[{index}].jwt"), e))?,
                ("acme", None) => {}
                ("token" | "acme", Some(_)) => {
                    return Err(self.error(
                        &format!("provisioners[{index}].jwt"),
                        "only provisioners of type jwt take JWT settings",
                    ));
                }
                ("jwt", None) => {
                    return Err(self.error(
                        &format!("provisioners[{index}].jwt"),
                        "a jwt provisioner needs a [provisioners.jwt] table",
                    ));
                }
                (other, _) => {
                    return Err(self.error(
                        &format!("provisioners[{index}].type"),
                        format!("unknown provisioner type {other:?} (token, jwt or acme)"),
                    ));
                }
            }
            if provisioner.max_ttl.0 <= time::Duration::ZERO {
                return Err(self.error(
                    &format!("provisioners[{index}].max-ttl"),
                    "must be positive",
                ));
            }
        }
        self.check_acme()?;
        if let Some(kms) = &config.kms {
            self.check_kms(kms)?;
        }
        let header_timeout = config.server.header_timeout.0;
        if header_timeout < time::Duration::seconds(1)
            || header_timeout > time::Duration::minutes(10)
        {
            return Err(self.error("server.header-timeout", "must be between 1s and 10m"));
        }
        if config.server.max_connections == 0 {
            return Err(self.error("server.max-connections", "must be at least 1"));
        }
        let head_interval = config.audit.head_interval.0;
        if head_interval < time::Duration::seconds(1) || head_interval > time::Duration::hours(24) {
            return Err(self.error("audit.head-interval", "must be between 1s and 24h"));
        }
        if let Some(provider) = &config.audit.key_provider
            && !matches!(provider.as_str(), "pkcs11" | "file")
        {
            return Err(self.error("audit.key-provider", "must be pkcs11 or file"));
        }
        let lease_ttl = config.jobs.lease_ttl.0;
        if lease_ttl < time::Duration::seconds(1) || lease_ttl > time::Duration::minutes(10) {
            return Err(self.error("jobs.lease-ttl", "must be between 1s and 10m"));
        }
        let revocation = &config.revocation;
        for (field, span, least) in [
            (
                "crl-validity",
                revocation.crl_validity,
                time::Duration::minutes(10),
            ),
            (
                "crl-debounce",
                revocation.crl_debounce,
                time::Duration::ZERO,
            ),
            (
                "ocsp-validity",
                revocation.ocsp_validity,
                time::Duration::minutes(10),
            ),
            (
                "ocsp-max-age",
                revocation.ocsp_max_age,
                time::Duration::ZERO,
            ),
            (
                "ocsp-responder-validity",
                revocation.ocsp_responder_validity,
                time::Duration::hours(1),
            ),
            (
                "revocation-poll",
                revocation.revocation_poll,
                time::Duration::seconds(1),
            ),
        ] {
            if span.0 < least {
                return Err(self.error(
                    &format!("revocation.{field}"),
                    format!("must be at least {}s", least.whole_seconds()),
                ));
            }
        }
        if revocation.crl_debounce.0 > time::Duration::minutes(10) {
            return Err(self.error("revocation.crl-debounce", "must be at most 10m"));
        }
        if revocation.ocsp_responder_validity.0 > time::Duration::days(30) {
            return Err(self.error("revocation.ocsp-responder-validity", "must be at most 30d"));
        }
        if revocation.ocsp_validity.0 * 2 > revocation.ocsp_responder_validity.0 {
            return Err(self.error(
                "revocation.ocsp-validity",
                "must be at most half of ocsp-responder-validity (answers never outlive their responder certificate)",
            ));
        }
        if revocation.ocsp_live_signing_limit == 0 {
            return Err(self.error("revocation.ocsp-live-signing-limit", "must be at least 1"));
        }
        for (index, admin) in config.admins.iter().enumerate() {
            if !matches!(admin.role.as_str(), "admin" | "auditor" | "kms-admin") {
                return Err(self.error(
                    &format!("admins[{index}].role"),
                    "must be admin, auditor or kms-admin",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Span;

    #[test]
    fn spans_parse() {
        assert_eq!(Span::parse("90s").unwrap().0.whole_seconds(), 90);
        assert_eq!(Span::parse("24h").unwrap().0.whole_hours(), 24);
        assert_eq!(Span::parse("30d").unwrap().0.whole_days(), 30);
        assert!(Span::parse("3w").is_err());
        assert!(Span::parse("").is_err());
    }
}
