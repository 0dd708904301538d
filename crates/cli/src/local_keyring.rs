//! A keyring in a local directory, as the `carimbo kms` commands use it.
//!
//! ```text
//! DIR/keyring.json   key metadata (names, versions, states, references; no secrets)
//! DIR/file-kek       32-byte KEK of the file provider (0600, development only)
//! DIR/keys/*.key     file-provider keys, encrypted under file-kek (0600)
//! DIR/pkcs11.toml    PKCS#11 provider config (module, token, PIN *reference*), if used
//! DIR/audit.jsonl    audit events, one JSON line per key use
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use carimbo_kms::{
    Error, FileKeyringStore, FileProvider, GenerateRequest, GeneratedKey, HmacKey,
    JsonLinesAuditSink, KeyEncryptionKey, KeyProvider, KeyReference, Keyring, KeyringSettings,
    SignatureAlgorithm, SigningKey, SystemClock, load_or_create_file_kek,
};
use carimbo_kms_pkcs11::{Pkcs11Config, Pkcs11Provider};
use tokio::sync::OnceCell;

/// File name of the PKCS#11 config kept in a keyring directory.
const PKCS11_CONFIG_FILE: &str = "pkcs11.toml";

/// How to open a keyring directory.
pub struct KeyringOptions<'a> {
    /// The keyring directory.
    pub directory: &'a Path,
    /// Create the keyring if there is none (with these settings).
    pub create: Option<KeyringSettings>,
    /// A PKCS#11 config to use instead of (or to record as) the keyring's.
    pub pkcs11_config: Option<&'a Path>,
}

/// Opens (or creates) the keyring in a directory with the file provider and, when
/// configured, the PKCS#11 provider (opened on first use).
pub fn open(options: KeyringOptions<'_>) -> Result<Keyring, Error> {
    let directory = options.directory;
    let store = if directory.join(FileKeyringStore::FILE_NAME).exists() {
        FileKeyringStore::open(directory)?
    } else if let Some(settings) = options.create {
        create_private_dir(directory)?;
        FileKeyringStore::create(directory, settings)?
    } else {
        FileKeyringStore::open(directory)?
    };
    let kek = load_or_create_file_kek(&directory.join("file-kek"))?;
    let file_provider = FileProvider::new(directory.join("keys"), kek)?;
    let audit = JsonLinesAuditSink::open(&directory.join("audit.jsonl"))?;
    let mut keyring = Keyring::new(Arc::new(store), Arc::new(audit), Arc::new(SystemClock))
        .with_provider(Arc::new(file_provider));
    if let Some(config) = pkcs11_config(directory, options.pkcs11_config)? {
        keyring = keyring.with_provider(Arc::new(LazyPkcs11 {
            config,
            provider: OnceCell::new(),
        }));
    }
    Ok(keyring)
}

fn create_private_dir(directory: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .map_err(|e| Error::io("create directory", directory, e))
}

/// The PKCS#11 config to use: the one given (recorded in the keyring the first time),
/// else the keyring's own, else none.
fn pkcs11_config(directory: &Path, given: Option<&Path>) -> Result<Option<Pkcs11Config>, Error> {
    let recorded: PathBuf = directory.join(PKCS11_CONFIG_FILE);
    match given {
        Some(path) => {
            let config = Pkcs11Config::from_file(path).map_err(Error::from)?;
            if !recorded.exists() {
                let text = toml::to_string(&config)
                    .map_err(|e| Error::Malformed(format!("PKCS#11 config: {e}")))?;
                carimbo_kms::write_new_private_file(&recorded, text.as_bytes())?;
            }
            Ok(Some(config))
        }
        None if recorded.exists() => Ok(Some(
            Pkcs11Config::from_file(&recorded).map_err(Error::from)?,
        )),
        None => Ok(None),
    }
}

/// The PKCS#11 provider, opened when a key first needs it, so that commands on file
/// keys work while the token is absent.
struct LazyPkcs11 {
    config: Pkcs11Config,
    provider: OnceCell<Pkcs11Provider>,
}

impl fmt::Debug for LazyPkcs11 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyPkcs11")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl LazyPkcs11 {
    async fn get(&self) -> Result<&Pkcs11Provider, Error> {
        self.provider
            .get_or_try_init(|| async { Pkcs11Provider::open(&self.config).await })
            .await
            .map_err(Error::from)
    }
}

#[async_trait]
impl KeyProvider for LazyPkcs11 {
    fn id(&self) -> &str {
        "pkcs11"
    }

    async fn generate(&self, request: &GenerateRequest<'_>) -> Result<GeneratedKey, Error> {
        self.get().await?.generate(request).await
    }

    async fn signing_key(
        &self,
        reference: &KeyReference,
        algorithm: SignatureAlgorithm,
    ) -> Result<Arc<dyn SigningKey>, Error> {
        self.get().await?.signing_key(reference, algorithm).await
    }

    async fn key_encryption_key(
        &self,
        reference: &KeyReference,
    ) -> Result<Arc<dyn KeyEncryptionKey>, Error> {
        self.get().await?.key_encryption_key(reference).await
    }

    async fn hmac_key(&self, reference: &KeyReference) -> Result<Arc<dyn HmacKey>, Error> {
        self.get().await?.hmac_key(reference).await
    }

    async fn destroy(&self, reference: &KeyReference) -> Result<(), Error> {
        self.get().await?.destroy(reference).await
    }
}
