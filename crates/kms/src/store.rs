//! Keyring metadata: which keys exist, their versions and where each version lives.
//! Behind [`KeyringStore`]; a JSON file implementation here, the database one in
//! `carimbo-store`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::fsutil::write_private_file_atomically;
use crate::{Error, KeyAlgorithm, KeyName, KeyReference, Purpose, Result};

/// Lifecycle state of a key version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionState {
    /// Usable (the primary version is always enabled).
    Enabled,
    /// Unusable until enabled again; destroyable after the waiting period.
    Disabled,
    /// Key material destroyed; only the record remains.
    Destroyed,
}

impl fmt::Display for VersionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
            Self::Destroyed => "destroyed",
        })
    }
}

/// One version of a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyVersionRecord {
    /// Version number, from 1.
    pub version: u32,
    /// Where the key material lives.
    pub reference: KeyReference,
    /// Lifecycle state.
    pub state: VersionState,
    /// When the version was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last disabled.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub disabled_at: Option<OffsetDateTime>,
    /// When its material was destroyed.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub destroyed_at: Option<OffsetDateTime>,
    /// For signing keys: hex DER `SubjectPublicKeyInfo`, read back at generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

/// A named key and all its versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// `{use}/{env}/{name}`.
    pub name: KeyName,
    /// Purpose, fixed at creation.
    pub purpose: Purpose,
    /// Algorithm of every version, fixed at creation.
    pub algorithm: KeyAlgorithm,
    /// When the key was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The version used for new signatures, wraps and MACs.
    pub primary_version: u32,
    /// All versions, in order.
    pub versions: Vec<KeyVersionRecord>,
    /// Incremented by every update; stores use it to refuse lost updates.
    pub revision: u64,
}

impl KeyRecord {
    /// The record of `version`.
    pub fn version(&self, version: u32) -> Result<&KeyVersionRecord> {
        self.versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| Error::VersionNotFound {
                name: self.name.to_string(),
                version,
            })
    }

    /// Mutable record of `version`.
    pub fn version_mut(&mut self, version: u32) -> Result<&mut KeyVersionRecord> {
        let name = self.name.to_string();
        self.versions
            .iter_mut()
            .find(|v| v.version == version)
            .ok_or(Error::VersionNotFound { name, version })
    }

    /// The record of `version` if it is enabled.
    pub fn usable_version(&self, version: u32) -> Result<&KeyVersionRecord> {
        let record = self.version(version)?;
        if record.state != VersionState::Enabled {
            return Err(Error::VersionUnavailable {
                name: self.name.to_string(),
                version,
                state: record.state.to_string(),
            });
        }
        Ok(record)
    }
}

/// Keyring-wide settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyringSettings {
    /// Seconds a version must stay disabled before it may be destroyed.
    pub destroy_wait_seconds: u64,
}

impl Default for KeyringSettings {
    /// Thirty days between disable and destroy.
    fn default() -> Self {
        Self {
            destroy_wait_seconds: 30 * 24 * 3600,
        }
    }
}

/// Storage of keyring metadata (no key material). Narrow on purpose.
#[async_trait]
pub trait KeyringStore: Send + Sync + fmt::Debug {
    /// Keyring-wide settings.
    async fn settings(&self) -> Result<KeyringSettings>;
    /// The record of `name`, if any.
    async fn key(&self, name: &KeyName) -> Result<Option<KeyRecord>>;
    /// Every record, sorted by name.
    async fn keys(&self) -> Result<Vec<KeyRecord>>;
    /// Adds a new record; [`Error::KeyExists`] if the name is taken.
    async fn insert(&self, record: &KeyRecord) -> Result<()>;
    /// Replaces a record. `record.revision` must be one more than the stored
    /// revision, otherwise someone else changed it first and [`Error::Store`] is
    /// returned.
    async fn update(&self, record: &KeyRecord) -> Result<()>;
}

/// The keyring metadata in one JSON file, replaced atomically on every change, with
/// an advisory lock file serialising writers across processes.
#[derive(Debug)]
pub struct FileKeyringStore {
    path: PathBuf,
    lock_path: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    format: String,
    settings: KeyringSettings,
    keys: Vec<KeyRecord>,
}

const KEYRING_FORMAT: &str = "carimbo-keyring/v1";

impl FileKeyringStore {
    /// Name of the metadata file inside a keyring directory.
    pub const FILE_NAME: &'static str = "keyring.json";

    /// Opens the keyring in `directory`; fails if there is none.
    pub fn open(directory: &Path) -> Result<Self> {
        let store = Self::at(directory);
        if !store.path.exists() {
            return Err(Error::Store(format!(
                "no keyring in {} (create one with `carimbo kms init` or `create-key`)",
                directory.display()
            )));
        }
        store.read()?;
        Ok(store)
    }

    /// Creates a keyring in `directory` with `settings`; fails if one exists.
    pub fn create(directory: &Path, settings: KeyringSettings) -> Result<Self> {
        let store = Self::at(directory);
        if store.path.exists() {
            return Err(Error::Store(format!(
                "a keyring already exists in {}",
                directory.display()
            )));
        }
        store.write(&KeyringFile {
            format: KEYRING_FORMAT.into(),
            settings,
            keys: Vec::new(),
        })?;
        Ok(store)
    }

    fn at(directory: &Path) -> Self {
        Self {
            path: directory.join(Self::FILE_NAME),
            lock_path: directory.join(".keyring.lock"),
        }
    }

    fn read(&self) -> Result<KeyringFile> {
        let text = fs::read_to_string(&self.path).map_err(|e| Error::io("read", &self.path, e))?;
        let file: KeyringFile = serde_json::from_str(&text)
            .map_err(|e| Error::Store(format!("{}: {e}", self.path.display())))?;
        if file.format != KEYRING_FORMAT {
            return Err(Error::Store(format!(
                "{}: unknown format {:?}",
                self.path.display(),
                file.format
            )));
        }
        Ok(file)
    }

    fn write(&self, file: &KeyringFile) -> Result<()> {
        let json =
            serde_json::to_vec_pretty(file).map_err(|e| Error::Store(format!("encoding: {e}")))?;
        write_private_file_atomically(&self.path, &json)
    }

    /// Runs `change` on the file contents under the writer lock and writes the result.
    fn modify(&self, change: impl FnOnce(&mut KeyringFile) -> Result<()>) -> Result<()> {
        let lock = self.lock()?;
        let mut file = self.read()?;
        change(&mut file)?;
        file.keys.sort_by(|a, b| a.name.cmp(&b.name));
        let written = self.write(&file);
        drop(lock);
        written
    }

    fn lock(&self) -> Result<File> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.lock_path)
            .map_err(|e| Error::io("open", &self.lock_path, e))?;
        file.lock()
            .map_err(|e| Error::io("lock", &self.lock_path, e))?;
        Ok(file)
    }
}

#[async_trait]
impl KeyringStore for FileKeyringStore {
    async fn settings(&self) -> Result<KeyringSettings> {
        Ok(self.read()?.settings)
    }

    async fn key(&self, name: &KeyName) -> Result<Option<KeyRecord>> {
        Ok(self.read()?.keys.into_iter().find(|k| &k.name == name))
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>> {
        Ok(self.read()?.keys)
    }

    async fn insert(&self, record: &KeyRecord) -> Result<()> {
        self.modify(|file| {
            if file.keys.iter().any(|k| k.name == record.name) {
                return Err(Error::KeyExists(record.name.to_string()));
            }
            file.keys.push(record.clone());
            Ok(())
        })
    }

    async fn update(&self, record: &KeyRecord) -> Result<()> {
        self.modify(|file| {
            let stored = file
                .keys
                .iter_mut()
                .find(|k| k.name == record.name)
                .ok_or_else(|| Error::KeyNotFound(record.name.to_string()))?;
            if stored.revision + 1 != record.revision {
                return Err(Error::Store(format!(
                    "key {} was changed concurrently; retry",
                    record.name
                )));
            }
            *stored = record.clone();
            Ok(())
        })
    }
}
