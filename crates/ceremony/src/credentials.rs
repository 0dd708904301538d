//! The credentials file: how to reach each token role (`root`, `ca`, ...) — module,
//! token label and serial, where the PIN comes from. Kept apart from the reviewed
//! ceremony configs, so those are byte-identical in rehearsal (SoftHSM2) and on the day.
//!
//! ```toml
//! version = 1
//! [tokens.root]
//! module = "/usr/lib/softhsm/libsofthsm2.so"
//! token-label = "carimbo-root"
//! token-serial = "8d1f0c2b4e6a7f90"
//! pin-file = "/media/officer/root.pin"      # or pin-env = "CARIMBO_ROOT_PIN"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use carimbo_kms_pkcs11::{Pkcs11Config, Pkcs11Provider};
use serde::Deserialize;

use crate::config::{CONFIG_VERSION, Loaded, load};
use crate::{CeremonyError, Result};

/// Environment variable naming the credentials file when `--credentials` is not given.
pub const CREDENTIALS_ENV: &str = "CARIMBO_CEREMONY_CREDENTIALS";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CredentialsFile {
    version: u32,
    tokens: BTreeMap<String, toml::Table>,
}

/// Token roles and their PKCS#11 configs.
#[derive(Debug)]
pub struct Credentials {
    path: PathBuf,
    tokens: BTreeMap<String, Pkcs11Config>,
}

impl Credentials {
    /// Loads the credentials file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let loaded: Loaded<CredentialsFile> = load(path)?;
        if loaded.config.version != CONFIG_VERSION {
            return Err(loaded.error("version", format!("must be {CONFIG_VERSION}")));
        }
        let base = loaded.path.parent().unwrap_or(Path::new("."));
        let mut tokens = BTreeMap::new();
        for (role, table) in &loaded.config.tokens {
            let mut table = table.clone();
            table.insert(
                "version".into(),
                toml::Value::Integer(i64::from(CONFIG_VERSION)),
            );
            let text = toml::to_string(&table)
                .map_err(|e| loaded.error(&format!("tokens.{role}"), e.to_string()))?;
            let config = Pkcs11Config::from_toml_str(&text, base)
                .map_err(|e| loaded.error(&format!("tokens.{role}"), e.to_string()))?;
            tokens.insert(role.clone(), config);
        }
        Ok(Self {
            path: loaded.path,
            tokens,
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

    /// The config of token role `role`.
    pub fn token(&self, role: &str) -> Result<&Pkcs11Config> {
        self.tokens.get(role).ok_or_else(|| {
            CeremonyError::config(
                &self.path,
                Some("tokens"),
                format!(
                    "no token role {role:?} (roles defined: {})",
                    self.tokens.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// Opens token role `role`.
    pub async fn open(&self, role: &str) -> Result<Pkcs11Provider> {
        Ok(Pkcs11Provider::open(self.token(role)?).await?)
    }
}
