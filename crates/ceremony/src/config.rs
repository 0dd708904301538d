//! Ceremony config files: one strict TOML file per ceremony.
//!
//! Unknown keys are refused and every error names the field path
//! (`certificate.not-after`). Paths inside a config are relative to the config's
//! directory. HSM credentials are *not* here (see [`crate::credentials`]), so the
//! reviewed file is byte-identical in rehearsal and on the day.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use carimbo_kms::SignatureAlgorithm;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use crate::{CeremonyError, Result};

/// The config format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// A config file as loaded: its parsed contents, its bytes (hashed into the
/// transcript) and its location.
#[derive(Debug)]
pub struct Loaded<T> {
    /// Parsed contents.
    pub config: T,
    /// The exact bytes read.
    pub bytes: Vec<u8>,
    /// Where it was read from.
    pub path: PathBuf,
}

impl<T> Loaded<T> {
    /// `relative` resolved against the config file's directory.
    pub fn resolve(&self, relative: &Path) -> PathBuf {
        match self.path.parent() {
            Some(dir) if relative.is_relative() => dir.join(relative),
            _ => relative.to_path_buf(),
        }
    }

    /// An error about `field` of this file.
    pub fn error(&self, field: &str, message: impl Into<String>) -> CeremonyError {
        CeremonyError::config(&self.path, Some(field), message)
    }
}

/// Reads a ceremony config: first checks its `version` and that its `ceremony` is
/// `expected` (so a file run as the wrong type says so), then parses it strictly.
pub fn load_ceremony<T: DeserializeOwned>(path: &Path, expected: &str) -> Result<Loaded<T>> {
    let bytes = std::fs::read(path).map_err(|e| CeremonyError::io("read", path, e))?;
    parse_ceremony(path, bytes, expected)
}

/// Parses the bytes of a ceremony config read from `path` (named in errors and kept
/// in the result, never read): the checks of [`load_ceremony`] without the file
/// system. Any bytes give a config or an error.
pub fn parse_ceremony<T: DeserializeOwned>(
    path: &Path,
    bytes: Vec<u8>,
    expected: &str,
) -> Result<Loaded<T>> {
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CeremonyError::config(path, None, "not UTF-8 text"))?;
    let table: toml::Table =
        toml::from_str(text).map_err(|e| CeremonyError::config(path, None, describe(text, &e)))?;
    match table.get("version") {
        Some(toml::Value::Integer(v)) if *v == i64::from(CONFIG_VERSION) => {}
        Some(other) => {
            return Err(CeremonyError::config(
                path,
                Some("version"),
                format!("must be {CONFIG_VERSION}, found {other}"),
            ));
        }
        None => return Err(CeremonyError::config(path, None, "missing field `version`")),
    }
    match table.get("ceremony").and_then(toml::Value::as_str) {
        Some(kind) if kind == expected => {}
        Some(kind) => {
            return Err(CeremonyError::config(
                path,
                Some("ceremony"),
                format!("this file is for a {kind:?} ceremony, not {expected:?}"),
            ));
        }
        None => {
            return Err(CeremonyError::config(
                path,
                Some("ceremony"),
                format!("missing; must be {expected:?}"),
            ));
        }
    }
    parse(path, bytes)
}

/// Reads and parses a strict TOML file, reporting the field path of any error.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<Loaded<T>> {
    let bytes = std::fs::read(path).map_err(|e| CeremonyError::io("read", path, e))?;
    parse(path, bytes)
}

/// Parses the bytes of a strict TOML file read from `path` (named in errors, never
/// read), reporting the field path of any error.
pub fn parse<T: DeserializeOwned>(path: &Path, bytes: Vec<u8>) -> Result<Loaded<T>> {
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CeremonyError::config(path, None, "not UTF-8 text"))?;
    let deserializer = toml::Deserializer::parse(text)
        .map_err(|e| CeremonyError::config(path, None, describe(text, &e)))?;
    let config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let field = e.path().to_string();
        let field = (field != ".").then_some(field);
        CeremonyError::config(path, field.as_deref(), describe(text, e.inner()))
    })?;
    Ok(Loaded {
        config,
        bytes,
        path: path.to_path_buf(),
    })
}

/// A TOML error as "message (line N)", without the source excerpt.
fn describe(text: &str, error: &toml::de::Error) -> String {
    let message = one_line(error.message());
    match error.span() {
        Some(span) => {
            // Counted over bytes: an offset inside a multi-byte character cannot panic.
            let line = text.as_bytes()[..span.start.min(text.len())]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            format!("{message} (line {line})")
        }
        None => message,
    }
}

fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.starts_with("-->"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An instant written as an RFC 3339 string or a TOML offset date-time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp(pub OffsetDateTime);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Toml(toml::value::Datetime),
        }
        let text = match Raw::deserialize(deserializer)? {
            Raw::Text(text) => text,
            Raw::Toml(datetime) => datetime.to_string(),
        };
        OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            .map(|t| Timestamp(t.to_offset(time::UtcOffset::UTC)))
            .map_err(|_| {
                serde::de::Error::custom(format!(
                    "{text:?} is not an RFC 3339 date-time with offset, e.g. 2026-12-01T00:00:00Z"
                ))
            })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self
            .0
            .format(&time::format_description::well_known::Rfc3339)
        {
            Ok(text) => f.write_str(&text),
            Err(_) => write!(f, "{}", self.0),
        }
    }
}

/// A signature algorithm name, checked when parsed (weak ones refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Algorithm(pub SignatureAlgorithm);

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map(Algorithm)
            .map_err(serde::de::Error::custom)
    }
}

/// Whether a CA key may be exported for backup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backup {
    /// Never extractable (the default).
    #[default]
    None,
    /// Extractable only wrapped by a trusted wrapping key (see `ca-ceremony backup`).
    WrapWithTrusted,
}

/// A key to generate in a token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeySection {
    /// Token role in the credentials file (`root`, `ca`, ...).
    pub token: String,
    /// `CKA_LABEL` of the new key; must not exist in the token.
    pub label: String,
    /// Signature algorithm of the key.
    pub algorithm: Algorithm,
    /// Backup policy.
    #[serde(default)]
    pub backup: Backup,
}

/// A distinguished name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SubjectSection {
    /// CN (required).
    pub common_name: String,
    /// O.
    pub organization: Option<String>,
    /// OU.
    pub organizational_unit: Option<String>,
    /// C, two letters.
    pub country: Option<String>,
    /// ST.
    pub state: Option<String>,
    /// L.
    pub locality: Option<String>,
}

/// `ca-ceremony key`: generate a key pair in a token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyConfig {
    /// Must be 1.
    pub version: u32,
    /// Must be `key`.
    pub ceremony: String,
    /// Free text for the transcript.
    pub description: Option<String>,
    /// Names of the people present, recorded in the transcript.
    pub operators: Vec<String>,
    /// The key.
    pub key: KeySection,
    /// Output files.
    pub outputs: KeyOutputs,
}

/// Outputs of a key ceremony.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyOutputs {
    /// Public key, PEM `SubjectPublicKeyInfo`.
    pub public_key: PathBuf,
    /// Key reference for the service (TOML).
    pub key_reference: PathBuf,
    /// Transcript (JSON lines).
    pub transcript: PathBuf,
}

/// Validity and subject of a root.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RootCertificateSection {
    /// Subject (and issuer) name.
    pub subject: SubjectSection,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity (at most 25 years after `not-before`).
    pub not_after: Timestamp,
    /// Must be absent or empty: a root carries no EKU (accepted only to refuse it with
    /// a clear message).
    #[serde(default)]
    pub extended_key_usage: Vec<String>,
}

/// `ca-ceremony root`: key + self-signed root certificate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RootConfig {
    /// Must be 1.
    pub version: u32,
    /// Must be `root`.
    pub ceremony: String,
    /// Free text for the transcript.
    pub description: Option<String>,
    /// Names of the people present.
    pub operators: Vec<String>,
    /// The root key.
    pub key: KeySection,
    /// The certificate.
    pub certificate: RootCertificateSection,
    /// Output files.
    pub outputs: RootOutputs,
}

/// Outputs of a root ceremony.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RootOutputs {
    /// Root certificate (PEM).
    pub certificate: PathBuf,
    /// Public key (PEM).
    pub public_key: PathBuf,
    /// Key reference (TOML).
    pub key_reference: PathBuf,
    /// Transcript.
    pub transcript: PathBuf,
}

/// The signing CA: its certificate and its key in a token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IssuerSection {
    /// Issuer certificate (PEM).
    pub certificate: PathBuf,
    /// Token role holding the issuer key.
    pub token: String,
    /// `CKA_LABEL` of the issuer key.
    pub key_label: String,
    /// Signature algorithm of the issuer key (checked against its certificate).
    pub key_algorithm: Algorithm,
}

/// The key being certified.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SubjectKeySection {
    /// Public key (PEM `SubjectPublicKeyInfo`), e.g. from a key ceremony.
    pub public_key: PathBuf,
}

/// Usage of an intermediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Usage {
    /// Issues server certificates: EKU serverAuth.
    Server,
    /// Issues client and SPIFFE workload certificates: EKU serverAuth + clientAuth.
    Workload,
}

/// Name constraints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NameConstraintsSection {
    /// Permitted DNS suffixes.
    #[serde(default)]
    pub permitted_dns: Vec<String>,
    /// Excluded DNS suffixes.
    #[serde(default)]
    pub excluded_dns: Vec<String>,
    /// Permitted URI hosts (SPIFFE trust domains).
    #[serde(default)]
    pub permitted_uri_hosts: Vec<String>,
}

/// Contents of an intermediate certificate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IntermediateCertificateSection {
    /// `server` or `workload`.
    pub usage: Usage,
    /// Subject name.
    pub subject: SubjectSection,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity (≤ 8 years, inside the issuer's).
    pub not_after: Timestamp,
    /// CRL distribution points (http:// URLs of the root CRL).
    pub crl_distribution_points: Vec<String>,
    /// AIA caIssuers (http:// URLs of the issuer certificate).
    pub ca_issuers: Vec<String>,
    /// Optional name constraints.
    pub name_constraints: Option<NameConstraintsSection>,
    /// Must be absent or 0: intermediates issue only end-entity certificates.
    pub path_len: Option<u32>,
}

/// `ca-ceremony intermediate`: the root signs an online intermediate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IntermediateConfig {
    /// Must be 1.
    pub version: u32,
    /// Must be `intermediate`.
    pub ceremony: String,
    /// Free text for the transcript.
    pub description: Option<String>,
    /// Names of the people present.
    pub operators: Vec<String>,
    /// The signing CA.
    pub issuer: IssuerSection,
    /// The key being certified.
    pub subject_key: SubjectKeySection,
    /// The certificate.
    pub certificate: IntermediateCertificateSection,
    /// Output files.
    pub outputs: CertificateOutputs,
}

/// Outputs of a certificate-signing ceremony.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CertificateOutputs {
    /// Certificate (PEM).
    pub certificate: PathBuf,
    /// Transcript.
    pub transcript: PathBuf,
}

/// A revoked CA certificate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RevokedSection {
    /// The revoked certificate (PEM); its serial is taken from it.
    pub certificate: Option<PathBuf>,
    /// Or its serial in hex.
    pub serial: Option<String>,
    /// When it was revoked.
    pub revocation_time: Timestamp,
    /// RFC 5280 reason, e.g. `key-compromise`, `ca-compromise`, `superseded`.
    pub reason: Option<String>,
}

/// The CRL to issue.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CrlSection {
    /// CRL number; greater than the previous CRL's.
    pub number: u64,
    /// The previous CRL (PEM), to check the number increases.
    pub previous: Option<PathBuf>,
    /// thisUpdate.
    pub this_update: Timestamp,
    /// nextUpdate (at most one year after thisUpdate).
    pub next_update: Timestamp,
    /// Revoked CA certificates.
    #[serde(default)]
    pub revoked: Vec<RevokedSection>,
}

/// `ca-ceremony crl`: the root's CRL of revoked CA certificates (ARL).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CrlConfig {
    /// Must be 1.
    pub version: u32,
    /// Must be `crl`.
    pub ceremony: String,
    /// Free text for the transcript.
    pub description: Option<String>,
    /// Names of the people present.
    pub operators: Vec<String>,
    /// The signing CA (the root).
    pub issuer: IssuerSection,
    /// The CRL.
    pub crl: CrlSection,
    /// Output files.
    pub outputs: CrlOutputs,
}

/// Outputs of a CRL ceremony.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CrlOutputs {
    /// CRL (PEM).
    pub crl: PathBuf,
    /// Transcript.
    pub transcript: PathBuf,
}

/// `ca-ceremony verify`: re-check a finished hierarchy and its transcripts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct VerifyConfig {
    /// Must be 1.
    pub version: u32,
    /// Must be `verify`.
    pub ceremony: String,
    /// Free text.
    pub description: Option<String>,
    /// Root certificate (PEM).
    pub root: PathBuf,
    /// Root key algorithm.
    pub root_algorithm: Algorithm,
    /// Intermediates signed by the root (PEM).
    #[serde(default)]
    pub intermediates: Vec<PathBuf>,
    /// Root CRLs (PEM).
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// Transcripts to check (hash chain and recorded output hashes).
    #[serde(default)]
    pub transcripts: Vec<PathBuf>,
    /// Final transcript hashes the officers recorded, by transcript path.
    #[serde(default)]
    pub final_hashes: BTreeMap<PathBuf, String>,
}

/// Checks the `operators` list: at least one name, none empty. (`version` and
/// `ceremony` are checked by [`load_ceremony`].)
pub fn check_operators<T>(loaded: &Loaded<T>, operators: &[String]) -> Result<()> {
    if operators.is_empty() || operators.iter().any(|o| o.trim().is_empty()) {
        return Err(loaded.error("operators", "name at least one operator, none empty"));
    }
    Ok(())
}

/// Checks a `CKA_LABEL`: 1–64 printable ASCII characters.
pub fn check_label<T>(loaded: &Loaded<T>, field: &str, label: &str) -> Result<()> {
    if label.is_empty()
        || label.len() > 64
        || !label.chars().all(|c| c.is_ascii_graphic() || c == ' ')
    {
        return Err(loaded.error(field, "labels are 1 to 64 printable ASCII characters"));
    }
    Ok(())
}

/// Checks publication URLs: present (when `required`) and plain `http://` (relying
/// parties fetch CRLs and issuer certificates over HTTP; the data is signed).
pub fn check_http_urls<T>(
    loaded: &Loaded<T>,
    field: &str,
    urls: &[String],
    required: bool,
) -> Result<()> {
    if required && urls.is_empty() {
        return Err(loaded.error(field, "at least one http:// URL is required"));
    }
    for (index, url) in urls.iter().enumerate() {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            loaded.error(
                &format!("{field}[{index}]"),
                format!("{url:?} must be an http:// URL (relying parties fetch it without TLS; the data is signed)"),
            )
        })?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || url.chars().any(char::is_whitespace) {
            return Err(loaded.error(&format!("{field}[{index}]"), format!("{url:?} has no host")));
        }
    }
    Ok(())
}

/// Checks name constraint entries: DNS suffixes and URI hosts are lowercase hostnames
/// (labels of letters, digits and `-`, optionally starting with a `.`), no wildcards.
pub fn check_name_constraints<T>(
    loaded: &Loaded<T>,
    field: &str,
    section: &NameConstraintsSection,
) -> Result<()> {
    let lists = [
        ("permitted-dns", &section.permitted_dns),
        ("excluded-dns", &section.excluded_dns),
        ("permitted-uri-hosts", &section.permitted_uri_hosts),
    ];
    if lists.iter().all(|(_, list)| list.is_empty()) {
        return Err(loaded.error(
            field,
            "name constraints with no entries; remove the section instead",
        ));
    }
    for (key, list) in lists {
        for (index, entry) in list.iter().enumerate() {
            let name = entry.strip_prefix('.').unwrap_or(entry);
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                });
            if !valid {
                return Err(loaded.error(
                    &format!("{field}.{key}[{index}]"),
                    format!(
                        "{entry:?} is not a lowercase DNS name (no wildcards, schemes or ports)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The existing CA certificate to cross-certify.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct OriginalSection {
    /// The existing CA certificate (PEM): its subject, SKID and public key are kept.
    pub certificate: PathBuf,
    /// Algorithm of the existing CA's key.
    pub key_algorithm: Algorithm,
}

/// Contents of a cross-certificate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CrossCertificateSection {
    /// EKU to assert (`server` or `workload`), or none.
    pub usage: Option<Usage>,
    /// pathLenConstraint, or none (unlimited, e.g. cross-signing a new root).
    pub path_len: Option<u8>,
    /// Start of validity.
    pub not_before: Timestamp,
    /// End of validity (≤ 8 years, inside the issuer's).
    pub not_after: Timestamp,
    /// CRL distribution points of the issuer (http://).
    pub crl_distribution_points: Vec<String>,
    /// AIA caIssuers of the issuer (http://).
    pub ca_issuers: Vec<String>,
}

/// `ca-ceremony cross-sign`: an issuer certifies an existing CA's key, keeping its
/// subject and SKID, so paths built through either issuer work (e.g. a new root
/// cross-signed by the old one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CrossSignConfig {
    /// Must be 1.
    pub version: u32,
    /// Must be `cross-sign`.
    pub ceremony: String,
    /// Free text for the transcript.
    pub description: Option<String>,
    /// Names of the people present.
    pub operators: Vec<String>,
    /// The signing CA.
    pub issuer: IssuerSection,
    /// The CA being cross-certified.
    pub original: OriginalSection,
    /// The cross-certificate.
    pub certificate: CrossCertificateSection,
    /// Output files.
    pub outputs: CertificateOutputs,
}

/// Which token to initialise: a role of the credentials file, whose `module`,
/// `token-label` (the label to give) and optional `token-serial` (which uninitialised
/// token) are used.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenSection {
    /// Token role in the credentials file.
    pub role: String,
}

/// How the PINs are split.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PinsSection {
    /// Shares needed to rebuild a PIN (M), at least 2.
    pub threshold: u8,
    /// One share of each PIN per holder (N = number of holders).
    pub holders: Vec<String>,
}

/// Outputs of a token ceremony.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenOutputs {
    /// New directory for the share files (one per holder and PIN, mode 0600).
    pub shares_directory: PathBuf,
    /// Salted HMAC of each PIN, to refuse a wrong share set before any login.
    pub pin_check: PathBuf,
    /// Transcript.
    pub transcript: PathBuf,
}

/// `ca-ceremony token`: initialise an uninitialised token with PINs made by the tool
/// and split M-of-N among the holders.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TokenConfig {
    /// Must be 1.
    pub version: u32,
    /// Must be `token`.
    pub ceremony: String,
    /// Free text for the transcript.
    pub description: Option<String>,
    /// Names of the people present.
    pub operators: Vec<String>,
    /// The token.
    pub token: TokenSection,
    /// PIN splitting.
    pub pins: PinsSection,
    /// Output files.
    pub outputs: TokenOutputs,
}

/// The key to back up.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackupKeySection {
    /// Token role holding the key (its credentials need `so-pin-shares`).
    pub token: String,
    /// `CKA_LABEL` of the key (generated with `backup = "wrap-with-trusted"`).
    pub label: String,
    /// The key's algorithm.
    pub algorithm: Algorithm,
}

/// How the backup wrapping key is split.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WrappingKeySection {
    /// Shares needed to rebuild the wrapping key (M), at least 2.
    pub threshold: u8,
    /// One share per holder.
    pub holders: Vec<String>,
}

/// Outputs of a backup ceremony.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackupOutputs {
    /// The backup file (wrapped key, public key, wrapping-key check).
    pub backup: PathBuf,
    /// New directory for the wrapping-key share files.
    pub shares_directory: PathBuf,
    /// Transcript.
    pub transcript: PathBuf,
}

/// `ca-ceremony backup`: wrap a CA key under a fresh trusted wrapping key whose shares
/// go to the holders.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BackupConfig {
    /// Must be 1.
    pub version: u32,
    /// Must be `backup`.
    pub ceremony: String,
    /// Free text for the transcript.
    pub description: Option<String>,
    /// Names of the people present.
    pub operators: Vec<String>,
    /// The key.
    pub key: BackupKeySection,
    /// The wrapping key's split.
    pub wrapping_key: WrappingKeySection,
    /// Output files.
    pub outputs: BackupOutputs,
}

/// The backup to restore.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RestoreBackupSection {
    /// The backup file.
    pub file: PathBuf,
    /// At least `threshold` wrapping-key share files.
    pub shares: Vec<PathBuf>,
    /// Optional: the certificate of the key, checked to match the restored key.
    pub certificate: Option<PathBuf>,
}

/// Where to restore.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RestoreTargetSection {
    /// Token role to restore into (its credentials need `so-pin-shares`).
    pub token: String,
    /// `CKA_LABEL` for the restored key; must be free.
    pub label: String,
}

/// Outputs of a restore ceremony.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RestoreOutputs {
    /// Key reference of the restored key.
    pub key_reference: PathBuf,
    /// Transcript.
    pub transcript: PathBuf,
}

/// `ca-ceremony restore`: unwrap a backup into another token and prove it by a test
/// signature.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RestoreConfig {
    /// Must be 1.
    pub version: u32,
    /// Must be `restore`.
    pub ceremony: String,
    /// Free text for the transcript.
    pub description: Option<String>,
    /// Names of the people present.
    pub operators: Vec<String>,
    /// The backup.
    pub backup: RestoreBackupSection,
    /// The target token.
    pub target: RestoreTargetSection,
    /// Output files.
    pub outputs: RestoreOutputs,
}
