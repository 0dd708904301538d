//! Where a ceremony's keys live. On the day: a PKCS#11 token. For the development mode
//! of the service and for demos: a *software token*, a directory of file-provider keys
//! with a label index — the same ceremony code, with keys that are only as safe as the
//! disk they are on (development only).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use carimbo_kms::{
    FileProvider, GenerateRequest, GeneratedKey, KeyAlgorithm, KeyName, KeyProvider, KeyReference,
    Purpose, SignatureAlgorithm, SigningKey, load_or_create_file_kek,
};
use carimbo_kms_pkcs11::{BackupPolicy, Pkcs11Provider};
use serde::{Deserialize, Serialize};

use crate::{CeremonyError, Result};

/// The operations the key, root, intermediate, cross-sign and CRL ceremonies need from
/// wherever their keys live.
#[async_trait]
pub trait CeremonyToken: Send + Sync + Debug {
    /// The token's label.
    fn token_label(&self) -> &str;
    /// The token's serial number.
    fn token_serial(&self) -> &str;
    /// Whether any object in the token has `label`.
    async fn label_in_use(&self, label: &str) -> Result<bool>;
    /// Generates a CA key pair labelled `label`, reads it back and tests it.
    async fn generate_labeled(
        &self,
        label: &str,
        algorithm: SignatureAlgorithm,
        backup: BackupPolicy,
    ) -> Result<GeneratedKey>;
    /// The key labelled `label`, if any.
    async fn find_key(&self, label: &str) -> Result<Option<KeyReference>>;
    /// Opens a signing key.
    async fn signing_key(
        &self,
        reference: &KeyReference,
        algorithm: SignatureAlgorithm,
    ) -> Result<Arc<dyn SigningKey>>;
    /// `n` random bytes from the token's generator.
    async fn random_bytes(&self, n: usize) -> Result<Vec<u8>>;
}

#[async_trait]
impl CeremonyToken for Pkcs11Provider {
    fn token_label(&self) -> &str {
        Pkcs11Provider::token_label(self)
    }

    fn token_serial(&self) -> &str {
        Pkcs11Provider::token_serial(self)
    }

    async fn label_in_use(&self, label: &str) -> Result<bool> {
        Ok(Pkcs11Provider::label_in_use(self, label).await?)
    }

    async fn generate_labeled(
        &self,
        label: &str,
        algorithm: SignatureAlgorithm,
        backup: BackupPolicy,
    ) -> Result<GeneratedKey> {
        Ok(Pkcs11Provider::generate_labeled(
            self,
            label,
            Purpose::PkiCa,
            KeyAlgorithm::Signature(algorithm),
            backup,
        )
        .await?)
    }

    async fn find_key(&self, label: &str) -> Result<Option<KeyReference>> {
        Ok(Pkcs11Provider::find_key(self, label).await?)
    }

    async fn signing_key(
        &self,
        reference: &KeyReference,
        algorithm: SignatureAlgorithm,
    ) -> Result<Arc<dyn SigningKey>> {
        Ok(KeyProvider::signing_key(self, reference, algorithm).await?)
    }

    async fn random_bytes(&self, n: usize) -> Result<Vec<u8>> {
        Ok(Pkcs11Provider::random_bytes(self, n).await?)
    }
}

/// The label index of a software token.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SoftwareTokenIndex {
    label: String,
    serial: String,
    keys: BTreeMap<String, KeyReference>,
}

/// A directory of file-provider CA keys with a label index — **development only**: the
/// keys are encrypted under a file KEK stored beside them.
#[derive(Debug)]
pub struct SoftwareToken {
    index_path: PathBuf,
    index: tokio::sync::Mutex<SoftwareTokenIndex>,
    label: String,
    serial: String,
    provider: FileProvider,
}

impl SoftwareToken {
    const INDEX: &'static str = "token.json";

    /// Opens (creating if needed) the software token in `directory` with `label`.
    pub fn open(directory: &Path, label: &str) -> Result<Self> {
        std::fs::create_dir_all(directory)
            .map_err(|e| CeremonyError::io("create directory", directory, e))?;
        let index_path = directory.join(Self::INDEX);
        let index = if index_path.exists() {
            let text = std::fs::read_to_string(&index_path)
                .map_err(|e| CeremonyError::io("read", &index_path, e))?;
            let index: SoftwareTokenIndex = serde_json::from_str(&text)
                .map_err(|e| CeremonyError::config(&index_path, None, e.to_string()))?;
            if index.label != label {
                return Err(CeremonyError::Refused(format!(
                    "the software token in {} is labelled {:?}, not {label:?}",
                    directory.display(),
                    index.label
                )));
            }
            index
        } else {
            let mut serial = [0u8; 8];
            aws_lc_rs::rand::fill(&mut serial)
                .map_err(|_| CeremonyError::Refused("random generator failed".into()))?;
            SoftwareTokenIndex {
                label: label.to_owned(),
                serial: hex::encode(serial),
                keys: BTreeMap::new(),
            }
        };
        let kek = load_or_create_file_kek(&directory.join("file-kek"))?;
        let provider = FileProvider::new(directory.join("keys"), kek)?;
        Ok(Self {
            index_path,
            label: index.label.clone(),
            serial: index.serial.clone(),
            index: tokio::sync::Mutex::new(index),
            provider,
        })
    }

    /// A key name for the file provider from a label.
    fn key_name(label: &str) -> Result<KeyName> {
        let slug: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let slug = slug.trim_matches('-');
        Ok(KeyName::new(&format!("pki-ca/dev/{slug}"))?)
    }
}

#[async_trait]
impl CeremonyToken for SoftwareToken {
    fn token_label(&self) -> &str {
        &self.label
    }

    fn token_serial(&self) -> &str {
        &self.serial
    }

    async fn label_in_use(&self, label: &str) -> Result<bool> {
        Ok(self.index.lock().await.keys.contains_key(label))
    }

    async fn generate_labeled(
        &self,
        label: &str,
        algorithm: SignatureAlgorithm,
        backup: BackupPolicy,
    ) -> Result<GeneratedKey> {
        if backup != BackupPolicy::None {
            return Err(CeremonyError::Refused(
                "a software token makes no backup-able keys; use backup = \"none\"".into(),
            ));
        }
        let mut index = self.index.lock().await;
        if index.keys.contains_key(label) {
            return Err(CeremonyError::Refused(format!(
                "label {label:?} is already used"
            )));
        }
        let name = Self::key_name(label)?;
        let generated = self
            .provider
            .generate(&GenerateRequest {
                name: &name,
                version: 1,
                purpose: Purpose::PkiCa,
                algorithm: KeyAlgorithm::Signature(algorithm),
            })
            .await?;
        index
            .keys
            .insert(label.to_owned(), generated.reference.clone());
        let json = serde_json::to_vec_pretty(&*index)
            .map_err(|e| CeremonyError::Refused(format!("software token index: {e}")))?;
        carimbo_kms::write_private_file_atomically(&self.index_path, &json)?;
        Ok(generated)
    }

    async fn find_key(&self, label: &str) -> Result<Option<KeyReference>> {
        Ok(self.index.lock().await.keys.get(label).cloned())
    }

    async fn signing_key(
        &self,
        reference: &KeyReference,
        algorithm: SignatureAlgorithm,
    ) -> Result<Arc<dyn SigningKey>> {
        Ok(self.provider.signing_key(reference, algorithm).await?)
    }

    async fn random_bytes(&self, n: usize) -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; n];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| CeremonyError::Refused("random generator failed".into()))?;
        Ok(bytes)
    }
}
