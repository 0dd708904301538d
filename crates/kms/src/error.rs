//! The one error type of the KMS core.

use std::path::PathBuf;

/// Result with the KMS [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the KMS core or a key provider.
///
/// Messages say what failed and why, without key bytes, plaintext or PINs. Callers
/// (CLI, HTTP service) map variants to exit codes and HTTP statuses in one place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key name does not follow `{use}/{env}/{name}`.
    #[error("invalid key name {name:?}: {reason}")]
    InvalidKeyName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// An algorithm is unknown, weak or not allowed for the key's purpose.
    #[error("unsupported algorithm {algorithm:?}: {reason}")]
    UnsupportedAlgorithm {
        /// The algorithm as given.
        algorithm: String,
        /// Why it was refused.
        reason: String,
    },
    /// A purpose string is unknown.
    #[error("unknown key purpose {0:?} (expected sign, envelope, hmac or pki-ca)")]
    UnknownPurpose(String),
    /// The key's purpose does not allow the requested operation.
    #[error("key {name} has purpose {purpose}, which does not allow {operation}")]
    WrongPurpose {
        /// Key name.
        name: String,
        /// The key's purpose.
        purpose: String,
        /// The operation that was attempted.
        operation: String,
    },
    /// No key of that name exists.
    #[error("key {0} not found")]
    KeyNotFound(String),
    /// A key of that name already exists.
    #[error("key {0} already exists")]
    KeyExists(String),
    /// The key exists but not that version.
    #[error("key {name} has no version {version}")]
    VersionNotFound {
        /// Key name.
        name: String,
        /// Requested version.
        version: u32,
    },
    /// The version exists but is disabled or destroyed.
    #[error("key {name} version {version} is {state}")]
    VersionUnavailable {
        /// Key name.
        name: String,
        /// Requested version.
        version: u32,
        /// `disabled` or `destroyed`.
        state: String,
    },
    /// A lifecycle operation is not allowed in the key's current state.
    #[error("{0}")]
    InvalidState(String),
    /// An input is malformed or out of bounds (not an envelope, header too large, ...).
    #[error("malformed input: {0}")]
    Malformed(String),
    /// The envelope declares a format version or suite this build does not know.
    #[error("unsupported envelope: {0}")]
    UnsupportedEnvelope(String),
    /// The encryption context given does not match the one the envelope was sealed with.
    #[error("encryption context does not match the envelope's")]
    ContextMismatch,
    /// Authentication failed: tampered, truncated, reordered or spliced data, a wrong key
    /// or a wrong context. The string names the part that failed.
    #[error("authentication failed: {0}")]
    Unauthentic(String),
    /// A signature or MAC did not verify.
    #[error("{0} verification failed")]
    VerificationFailed(&'static str),
    /// A cryptographic primitive failed unexpectedly (e.g. random generation).
    #[error("cryptographic operation failed: {0}")]
    Crypto(String),
    /// A file holding key material is readable by group or others.
    #[error("{path} is accessible by group or others (mode {mode:o}); chmod 600 it")]
    InsecurePermissions {
        /// The offending file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A file operation failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`, `rename`, ...).
        operation: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading or writing a stream failed (not tied to a path).
    #[error("i/o: {0}")]
    Stream(#[from] std::io::Error),
    /// The keyring metadata store failed or was changed concurrently.
    #[error("keyring store: {0}")]
    Store(String),
    /// The audit sink could not record an event; the operation's result was discarded.
    #[error("audit sink failed, operation refused: {0}")]
    Audit(String),
    /// A key provider (PKCS#11, AWS KMS, file) failed; the source names what failed.
    #[error("{provider} provider: {source}")]
    Provider {
        /// Provider kind (`file`, `pkcs11`, `aws`).
        provider: String,
        /// The provider's own error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The provider does not offer this operation or key type.
    #[error("{provider} provider does not support {what}")]
    NotSupported {
        /// Provider kind.
        provider: String,
        /// What is missing.
        what: String,
    },
}

impl Error {
    /// Builds an [`Error::Io`] for `path`.
    pub fn io(operation: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            operation,
            path: path.into(),
            source,
        }
    }

    /// Wraps a provider's error, keeping it as the source.
    pub fn provider(
        provider: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Provider {
            provider: provider.into(),
            source: source.into(),
        }
    }
}
