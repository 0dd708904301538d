//! Opening the CA keys named by the key reference files the ceremony wrote, and
//! checking each is the key of its certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use carimbo_kms::{
    FileProvider, GenerateRequest, KeyAlgorithm, KeyName, KeyProvider, KeyReference, Purpose,
    SignatureAlgorithm, SigningKey, check_private_file, load_or_create_file_kek,
};
use carimbo_kms_pkcs11::{Pkcs11Config, Pkcs11Provider};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::ServerError;

/// A key reference file written by `ca-ceremony`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyReferenceFile {
    /// Must be 1.
    pub version: u32,
    /// `pkcs11` or `file`.
    pub provider: String,
    /// `provider:id`.
    pub reference: String,
    /// Token label.
    pub token_label: String,
    /// Token serial.
    pub token_serial: String,
    /// Key label in the token.
    pub key_label: String,
    /// Signature algorithm.
    pub algorithm: SignatureAlgorithm,
    /// SHA-256 of the public key, hex.
    pub public_key_sha256: String,
}

impl KeyReferenceFile {
    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServerError::Keys(format!("{}: {e}", path.display())))?;
        let file: Self = toml::from_str(&text)
            .map_err(|e| ServerError::Keys(format!("{}: {}", path.display(), e.message())))?;
        if file.version != 1 {
            return Err(ServerError::Keys(format!(
                "{}: unknown version",
                path.display()
            )));
        }
        Ok(file)
    }

    fn key_reference(&self) -> Result<KeyReference, ServerError> {
        let (provider, id) = self
            .reference
            .split_once(':')
            .ok_or_else(|| ServerError::Keys(format!("bad key reference {:?}", self.reference)))?;
        if provider != self.provider {
            return Err(ServerError::Keys(format!(
                "key reference {:?} does not match provider {:?}",
                self.reference, self.provider
            )));
        }
        Ok(KeyReference {
            provider: provider.to_owned(),
            id: id.to_owned(),
        })
    }
}

/// Opens CA keys: one PKCS#11 provider for the CA token and one file provider for
/// development keys, each opened on first use.
#[derive(Debug)]
pub struct KeyOpener {
    pkcs11_config: Option<PathBuf>,
    file_directory: Option<PathBuf>,
    pkcs11: OnceCell<Pkcs11Provider>,
    file: OnceCell<FileProvider>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl KeyOpener {
    /// An opener for the configured sources.
    pub fn new(pkcs11_config: Option<PathBuf>, file_directory: Option<PathBuf>) -> Self {
        Self {
            pkcs11_config,
            file_directory,
            pkcs11: OnceCell::new(),
            file: OnceCell::new(),
            metrics: None,
        }
    }

    /// Times every signature of the keys it opens into `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn metered(
        &self,
        key: Arc<dyn SigningKey>,
        provider: &str,
        role: &'static str,
    ) -> Arc<dyn SigningKey> {
        match &self.metrics {
            Some(metrics) => {
                crate::metrics::MeteredKey::wrap(key, provider, role, Arc::clone(metrics))
            }
            None => key,
        }
    }

    /// The CA token's session pool, once the PKCS#11 provider is open.
    pub fn session_pool(&self) -> Option<carimbo_kms_pkcs11::SessionPoolStatus> {
        self.pkcs11.get().map(Pkcs11Provider::session_pool)
    }

    /// Checks the providers opened so far, each within `limit`: the PKCS#11 token is
    /// still there and answers (nothing is signed), the file provider's key directory
    /// is readable.
    /// Returns (provider, token label if any, outcome).
    pub async fn check(
        &self,
        limit: std::time::Duration,
    ) -> Vec<(&'static str, Option<String>, Result<(), String>)> {
        let mut checks = Vec::new();
        if let Some(provider) = self.pkcs11.get() {
            // The check waits for a pooled session like any operation: a token so busy
            // (or hung) that none frees up within the limit is reported down.
            let result = match tokio::time::timeout(limit, provider.check()).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(_) => Err(format!(
                    "token '{}' did not answer within {} seconds",
                    provider.token_label(),
                    limit.as_secs()
                )),
            };
            checks.push(("pkcs11", Some(provider.token_label().to_owned()), result));
        }
        if self.file.get().is_some()
            && let Some(dir) = &self.file_directory
        {
            let result = std::fs::read_dir(dir.join("keys"))
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", dir.join("keys").display()));
            checks.push(("file", None, result));
        }
        checks
    }

    /// An opener for the key sources of a service config (`[keys]`).
    pub fn from_config(loaded: &crate::config::LoadedConfig) -> Self {
        let keys = &loaded.config.keys;
        Self::new(
            keys.pkcs11_config.as_ref().map(|p| loaded.resolve(p)),
            keys.file_directory.as_ref().map(|p| loaded.resolve(p)),
        )
    }

    /// The provider with id `provider` (`pkcs11` or `file`), opened on first use.
    pub async fn provider(&self, provider: &str) -> Result<&dyn KeyProvider, ServerError> {
        match provider {
            "pkcs11" => {
                let provider = self
                    .pkcs11
                    .get_or_try_init(|| async {
                        let path = self.pkcs11_config.as_ref().ok_or_else(|| {
                            ServerError::Keys("a PKCS#11 key needs keys.pkcs11-config".into())
                        })?;
                        let config = Pkcs11Config::from_file(path)
                            .map_err(|e| ServerError::Keys(e.to_string()))?;
                        Pkcs11Provider::open(&config)
                            .await
                            .map_err(|e| ServerError::Keys(e.to_string()))
                    })
                    .await?;
                Ok(provider)
            }
            "file" => {
                let provider = self
                    .file
                    .get_or_try_init(|| async {
                        let dir = self.file_directory.as_ref().ok_or_else(|| {
                            ServerError::Keys("a file key needs keys.file-directory".into())
                        })?;
                        let kek_path = dir.join("file-kek");
                        check_private_file(&kek_path)
                            .map_err(|e| ServerError::Keys(e.to_string()))?;
                        let kek = load_or_create_file_kek(&kek_path)
                            .map_err(|e| ServerError::Keys(e.to_string()))?;
                        FileProvider::new(dir.join("keys"), kek)
                            .map_err(|e| ServerError::Keys(e.to_string()))
                    })
                    .await?;
                Ok(provider)
            }
            other => Err(ServerError::Keys(format!("unknown key provider {other:?}"))),
        }
    }

    /// Generates a signing key named `name` (purpose `sign`) in `provider` and opens
    /// it: for delegated OCSP responders, which live in the same provider as the CA
    /// key they stand for.
    pub async fn generate_signing_key(
        &self,
        provider: &str,
        name: &KeyName,
        algorithm: SignatureAlgorithm,
    ) -> Result<(KeyReference, Arc<dyn SigningKey>), ServerError> {
        self.generate_signing_key_as(provider, name, algorithm, "other")
            .await
    }

    /// [`KeyOpener::generate_signing_key`], its signatures timed as `key` in the
    /// metrics (`ocsp-responder`, …).
    pub async fn generate_signing_key_as(
        &self,
        provider: &str,
        name: &KeyName,
        algorithm: SignatureAlgorithm,
        key: &'static str,
    ) -> Result<(KeyReference, Arc<dyn SigningKey>), ServerError> {
        let provider = self.provider(provider).await?;
        let generated = provider
            .generate(&GenerateRequest {
                name,
                version: 1,
                purpose: Purpose::Sign,
                algorithm: KeyAlgorithm::Signature(algorithm),
            })
            .await
            .map_err(|e| ServerError::Keys(format!("generating {name}: {e}")))?;
        let signing = provider
            .signing_key(&generated.reference, algorithm)
            .await
            .map_err(|e| ServerError::Keys(format!("opening {name}: {e}")))?;
        let signing = self.metered(signing, &generated.reference.provider, key);
        Ok((generated.reference, signing))
    }

    /// Opens the signing key at `reference` (`provider:id`).
    pub async fn open_reference(
        &self,
        reference: &str,
        algorithm: SignatureAlgorithm,
    ) -> Result<Arc<dyn SigningKey>, ServerError> {
        self.open_reference_as(reference, algorithm, "other").await
    }

    /// [`KeyOpener::open_reference`], its signatures timed as `key` in the metrics
    /// (`ocsp-responder`, …).
    pub async fn open_reference_as(
        &self,
        reference: &str,
        algorithm: SignatureAlgorithm,
        key: &'static str,
    ) -> Result<Arc<dyn SigningKey>, ServerError> {
        let reference = parse_reference(reference)?;
        let signing = self
            .provider(&reference.provider)
            .await?
            .signing_key(&reference, algorithm)
            .await
            .map_err(|e| ServerError::Keys(format!("key {reference}: {e}")))?;
        Ok(self.metered(signing, &reference.provider, key))
    }

    /// Destroys the key at `reference` (`provider:id`).
    pub async fn destroy(&self, reference: &str) -> Result<(), ServerError> {
        let reference = parse_reference(reference)?;
        self.provider(&reference.provider)
            .await?
            .destroy(&reference)
            .await
            .map_err(|e| ServerError::Keys(format!("key {reference}: {e}")))
    }

    /// Opens the key of `reference_file` and checks it against `expected_spki`.
    pub async fn open(
        &self,
        reference_file: &KeyReferenceFile,
        expected_spki: &[u8],
    ) -> Result<Arc<dyn SigningKey>, ServerError> {
        let reference = reference_file.key_reference()?;
        let algorithm = reference_file.algorithm;
        let key = self
            .provider(&reference_file.provider)
            .await?
            .signing_key(&reference, algorithm)
            .await
            .map_err(|e| ServerError::Keys(format!("key {:?}: {e}", reference_file.key_label)))?;
        let hash = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            key.public_key_der(),
        ));
        if key.public_key_der() != expected_spki || hash != reference_file.public_key_sha256 {
            return Err(ServerError::Keys(format!(
                "key {:?} in token {:?} is not the key of its certificate",
                reference_file.key_label, reference_file.token_label
            )));
        }
        Ok(self.metered(key, &reference_file.provider, "issuer"))
    }
}

/// `provider:id` as a [`KeyReference`].
fn parse_reference(text: &str) -> Result<KeyReference, ServerError> {
    let (provider, id) = text
        .split_once(':')
        .filter(|(provider, id)| !provider.is_empty() && !id.is_empty())
        .ok_or_else(|| ServerError::Keys(format!("bad key reference {text:?}")))?;
    Ok(KeyReference {
        provider: provider.to_owned(),
        id: id.to_owned(),
    })
}
