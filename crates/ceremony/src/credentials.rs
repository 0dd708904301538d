//! The credentials file: how to reach each token role (`root`, `ca`, ...) — module,
//! token label and serial, where the PINs come from. Kept apart from the reviewed
//! ceremony configs, so those are byte-identical in rehearsal (SoftHSM2) and on the day.
//!
//! ```toml
//! version = 1
//! [tokens.root]
//! module = "/usr/lib/softhsm/libsofthsm2.so"
//! token-label = "carimbo-root"
//! token-serial = "8d1f0c2b4e6a7f90"
//! # The user PIN: joined from officers' shares and checked before any login...
//! pin-shares = { check = "root-pins.toml", files = ["shares/1-ana.user.share", "shares/2-bruno.user.share"] }
//! # ...or read from a file (rehearsal) — pin-file = "root.pin" — or pin-env = "VAR".
//! # The SO PIN, for backup and restore only:
//! so-pin-shares = { check = "root-pins.toml", files = ["shares/1-ana.so.share", "shares/3-carla.so.share"] }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use carimbo_kms_pkcs11::{Pin, Pkcs11Config, Pkcs11Provider};
use serde::{Deserialize, Serialize};

use crate::config::{CONFIG_VERSION, Loaded, load};
use crate::keystore::{CeremonyToken, SoftwareToken};
use crate::shares::{SecretCheck, ShareFile, join};
use crate::{CeremonyError, Result};

/// Environment variable naming the credentials file when `--credentials` is not given.
pub const CREDENTIALS_ENV: &str = "CARIMBO_CEREMONY_CREDENTIALS";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CredentialsFile {
    version: u32,
    tokens: BTreeMap<String, toml::Table>,
}

/// Where a PIN's shares are.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PinShares {
    /// The PIN check file written by the token ceremony.
    pub check: PathBuf,
    /// At least `threshold` share files.
    pub files: Vec<PathBuf>,
}

/// The PIN check file written by the token ceremony: a salted HMAC of each PIN.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PinCheckFile {
    /// Must be 1.
    pub version: u32,
    /// Label of the token.
    pub token_label: String,
    /// Serial of the token.
    pub token_serial: String,
    /// Shares needed.
    pub threshold: u8,
    /// Share holders, in share order.
    pub holders: Vec<String>,
    /// Check of the user PIN.
    pub user: SecretCheck,
    /// Check of the SO PIN.
    pub so: SecretCheck,
}

/// Which PIN of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinKind {
    /// The user PIN (key use).
    User,
    /// The security officer PIN (token administration: trusted wrapping keys).
    SecurityOfficer,
}

impl PinKind {
    fn name(self) -> &'static str {
        match self {
            Self::User => "user PIN",
            Self::SecurityOfficer => "SO PIN",
        }
    }
}

/// One token role.
#[derive(Debug)]
enum Role {
    /// A PKCS#11 token.
    Pkcs11 {
        config: Pkcs11Config,
        pin_shares: Option<PinShares>,
        so_pin_shares: Option<PinShares>,
    },
    /// A software token (development only).
    Software { directory: PathBuf, label: String },
}

/// A software-token role: `provider = "file"`, `directory`, `token-label`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SoftwareRole {
    provider: String,
    directory: PathBuf,
    token_label: String,
}

/// Token roles and how to reach them.
#[derive(Debug)]
pub struct Credentials {
    path: PathBuf,
    roles: BTreeMap<String, Role>,
}

/// Placeholder PIN source for roles whose PIN comes from shares (never read).
const SHARES_PLACEHOLDER_ENV: &str = "CARIMBO_CEREMONY_PIN_FROM_SHARES";

impl Credentials {
    /// Loads the credentials file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let loaded: Loaded<CredentialsFile> = load(path)?;
        if loaded.config.version != CONFIG_VERSION {
            return Err(loaded.error("version", format!("must be {CONFIG_VERSION}")));
        }
        let base = loaded.path.parent().unwrap_or(Path::new("."));
        let mut roles = BTreeMap::new();
        for (name, table) in &loaded.config.tokens {
            let field = format!("tokens.{name}");
            if table.get("provider").and_then(toml::Value::as_str) == Some("file") {
                let role: SoftwareRole = toml::Value::Table(table.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| loaded.error(&field, e.message().to_owned()))?;
                let _ = role.provider;
                roles.insert(
                    name.clone(),
                    Role::Software {
                        directory: base.join(role.directory),
                        label: role.token_label,
                    },
                );
                continue;
            }
            let mut table = table.clone();
            let mut take_shares = |key: &str| -> Result<Option<PinShares>> {
                let Some(value) = table.remove(key) else {
                    return Ok(None);
                };
                let mut shares: PinShares = value.try_into().map_err(|e: toml::de::Error| {
                    loaded.error(&format!("{field}.{key}"), e.message().to_owned())
                })?;
                shares.check = base.join(&shares.check);
                shares.files = shares.files.iter().map(|f| base.join(f)).collect();
                Ok(Some(shares))
            };
            let pin_shares = take_shares("pin-shares")?;
            let so_pin_shares = take_shares("so-pin-shares")?;
            if pin_shares.is_some() {
                if table.contains_key("pin-file") || table.contains_key("pin-env") {
                    return Err(
                        loaded.error(&field, "give pin-shares or pin-file/pin-env, not both")
                    );
                }
                table.insert(
                    "pin-env".into(),
                    toml::Value::String(SHARES_PLACEHOLDER_ENV.into()),
                );
            }
            table.insert(
                "version".into(),
                toml::Value::Integer(i64::from(CONFIG_VERSION)),
            );
            let text = toml::to_string(&table).map_err(|e| loaded.error(&field, e.to_string()))?;
            let config = Pkcs11Config::from_toml_str(&text, base)
                .map_err(|e| loaded.error(&field, e.to_string()))?;
            roles.insert(
                name.clone(),
                Role::Pkcs11 {
                    config,
                    pin_shares,
                    so_pin_shares,
                },
            );
        }
        Ok(Self {
            path: loaded.path,
            roles,
        })
    }

    /// The credentials file from `--credentials` or [`CREDENTIALS_ENV`].
    pub fn locate(given: Option<&Path>) -> Result<PathBuf> {
        match given {
            Some(path) => Ok(path.to_path_buf()),
            None => std::env::var_os(CREDENTIALS_ENV)
                .map(PathBuf::from)
                .ok_or_else(|| {
                    CeremonyError::Refused(format!(
                        "no credentials file: pass --credentials FILE or set {CREDENTIALS_ENV}"
                    ))
                }),
        }
    }

    fn role(&self, name: &str) -> Result<&Role> {
        self.roles.get(name).ok_or_else(|| {
            CeremonyError::config(
                &self.path,
                Some("tokens"),
                format!(
                    "no token role {name:?} (roles defined: {})",
                    self.roles.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// The PKCS#11 config of token role `role` (refused for a software token).
    pub fn token(&self, role: &str) -> Result<&Pkcs11Config> {
        match self.role(role)? {
            Role::Pkcs11 { config, .. } => Ok(config),
            Role::Software { .. } => Err(self.software_refused(role)),
        }
    }

    fn software_refused(&self, role: &str) -> CeremonyError {
        CeremonyError::config(
            &self.path,
            Some(&format!("tokens.{role}")),
            "this ceremony needs a PKCS#11 token; this role is a software token",
        )
    }

    /// Opens token role `role` for key ceremonies: a PKCS#11 token logged in with its
    /// user PIN (joined from shares and checked first, when the role uses shares), or a
    /// software token.
    pub async fn open(&self, role: &str) -> Result<Box<dyn CeremonyToken>> {
        match self.role(role)? {
            Role::Software { directory, label } => {
                Ok(Box::new(SoftwareToken::open(directory, label)?))
            }
            Role::Pkcs11 { .. } => Ok(Box::new(self.open_pkcs11(role).await?)),
        }
    }

    /// Opens token role `role`, which must be a PKCS#11 token.
    pub async fn open_pkcs11(&self, role: &str) -> Result<Pkcs11Provider> {
        match self.role(role)? {
            Role::Software { .. } => Err(self.software_refused(role)),
            Role::Pkcs11 {
                config, pin_shares, ..
            } => match pin_shares {
                Some(shares) => {
                    let pin = joined_pin(shares, PinKind::User, config)?;
                    Ok(Pkcs11Provider::open_with_pin(config, pin).await?)
                }
                None => Ok(Pkcs11Provider::open(config).await?),
            },
        }
    }

    /// The SO PIN of role `role`, joined from its `so-pin-shares` and checked.
    pub fn security_officer_pin(&self, role: &str) -> Result<Pin> {
        let (config, shares) = match self.role(role)? {
            Role::Software { .. } => return Err(self.software_refused(role)),
            Role::Pkcs11 {
                config,
                so_pin_shares,
                ..
            } => (config, so_pin_shares),
        };
        let shares = shares.as_ref().ok_or_else(|| {
            CeremonyError::config(
                &self.path,
                Some(&format!("tokens.{role}")),
                "this ceremony needs the token's SO PIN: add so-pin-shares",
            )
        })?;
        joined_pin(shares, PinKind::SecurityOfficer, config)
    }
}

/// Joins a PIN from its share files and checks it against the PIN check file, before
/// it goes anywhere near `C_Login`.
fn joined_pin(shares: &PinShares, kind: PinKind, config: &Pkcs11Config) -> Result<Pin> {
    let text = std::fs::read_to_string(&shares.check)
        .map_err(|e| CeremonyError::io("read", &shares.check, e))?;
    let check: PinCheckFile = toml::from_str(&text)
        .map_err(|e| CeremonyError::config(&shares.check, None, e.message().to_owned()))?;
    if check.token_label != config.token_label {
        return Err(CeremonyError::Refused(format!(
            "{} is the PIN check of token {:?}, not {:?}",
            shares.check.display(),
            check.token_label,
            config.token_label
        )));
    }
    let files = shares
        .files
        .iter()
        .map(|path| {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path).map_err(|e| CeremonyError::io("read", path, e))?,
            );
            ShareFile::parse(&text, path)
        })
        .collect::<Result<Vec<_>>>()?;
    let what = format!("{} of token {}", kind.name(), config.token_label);
    let secret_check = match kind {
        PinKind::User => &check.user,
        PinKind::SecurityOfficer => &check.so,
    };
    let secret = join(&files, &what, secret_check)?;
    let text = std::str::from_utf8(&secret)
        .map_err(|_| CeremonyError::Refused(format!("the joined {what} is not text")))?;
    Ok(Pin::new(text.to_owned()))
}
