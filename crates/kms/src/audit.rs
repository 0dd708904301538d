//! Audit events: one for every key use and every key lifecycle change.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

use crate::{Error, Purpose, Result};

/// What was done with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Operation {
    /// A key was created (version 1).
    CreateKey,
    /// A new version was added.
    AddVersion,
    /// A version became the primary.
    Promote,
    /// A version was disabled.
    Disable,
    /// A disabled version was enabled again.
    Enable,
    /// A version's key material was destroyed.
    Destroy,
    /// A message was signed.
    Sign,
    /// A signature was verified.
    Verify,
    /// A DEK was wrapped (envelope encryption).
    Wrap,
    /// A DEK was unwrapped (envelope decryption).
    Unwrap,
    /// A wrap block was replaced with one under another version.
    Rewrap,
    /// An HMAC was computed.
    Hmac,
    /// An HMAC was verified.
    VerifyHmac,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "kebab-case")]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It failed; the reason is the error message (never key bytes or plaintext).
    Failure(String),
}

/// One audit record. Never holds key bytes, plaintext or secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Who asked (an identity such as `cli:alice` or a service caller).
    pub actor: String,
    /// Request id for correlation with logs.
    pub request_id: String,
    /// What was done.
    pub operation: Operation,
    /// Key name.
    pub key_name: String,
    /// Key version concerned, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_version: Option<u32>,
    /// The key's purpose, when the key exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purpose: Option<Purpose>,
    /// Hex SHA-256 digest of the encryption context, for envelope operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_digest: Option<String>,
    /// Success or failure.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Where audit events go. Recording must be durable before it returns `Ok`; a sink
/// error makes the keyring refuse the operation's result.
pub trait AuditSink: Send + Sync + fmt::Debug {
    /// Records one event.
    fn record(&self, event: &AuditEvent) -> Result<()>;
}

/// Appends events as JSON lines to a file (created 0600), flushed per event.
#[derive(Debug)]
pub struct JsonLinesAuditSink {
    path: PathBuf,
    file: Mutex<File>,
}

impl JsonLinesAuditSink {
    /// Opens (or creates) `path` for appending.
    pub fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io("open audit log", path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }
}

impl AuditSink for JsonLinesAuditSink {
    fn record(&self, event: &AuditEvent) -> Result<()> {
        let mut line =
            serde_json::to_vec(event).map_err(|e| Error::Audit(format!("encoding: {e}")))?;
        line.push(b'\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| Error::Audit("audit log lock poisoned".into()))?;
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| Error::Audit(format!("{}: {e}", self.path.display())))
    }
}

/// Keeps events in memory, for tests and embedding.
#[derive(Debug, Default)]
pub struct MemoryAuditSink(Mutex<Vec<AuditEvent>>);

impl MemoryAuditSink {
    /// A copy of the events recorded so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.0
            .lock()
            .map(|events| events.clone())
            .unwrap_or_default()
    }
}

impl AuditSink for MemoryAuditSink {
    fn record(&self, event: &AuditEvent) -> Result<()> {
        self.0
            .lock()
            .map_err(|_| Error::Audit("lock poisoned".into()))?
            .push(event.clone());
        Ok(())
    }
}
