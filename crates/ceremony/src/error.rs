//! The ceremony's error type.

use std::path::PathBuf;

/// Everything that stops a ceremony. Messages name the file, the field path or the
/// artifact concerned; none contains a PIN or key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CeremonyError {
    /// A config or credentials file is invalid; `field` is the dotted path of the
    /// offending field when there is one.
    #[error("{file}: {field}{message}", field = field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Config {
        /// The file.
        file: PathBuf,
        /// Dotted field path, e.g. `certificate.not-after`.
        field: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// An output already exists: ceremonies never overwrite.
    #[error("output {0} already exists; ceremonies never overwrite outputs")]
    OutputExists(PathBuf),
    /// The token refused or failed an operation.
    #[error("HSM: {0}")]
    Hsm(#[from] carimbo_kms_pkcs11::Pkcs11Error),
    /// Building or linting a certificate or CRL failed.
    #[error("{0}")]
    Pki(#[from] carimbo_pki::PkiError),
    /// A KMS-level failure (signing, verification).
    #[error("{0}")]
    Kms(#[from] carimbo_kms::Error),
    /// A check of the ceremony's own state failed (label in use, key mismatch, ...).
    #[error("{0}")]
    Refused(String),
    /// `verify` found a problem.
    #[error("verification failed: {0}")]
    Verification(String),
    /// A file operation failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl CeremonyError {
    /// An I/O error on `path`.
    pub fn io(operation: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            operation,
            path: path.into(),
            source,
        }
    }

    /// A config error about `field` of `file`.
    pub fn config(
        file: impl Into<PathBuf>,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self::Config {
            file: file.into(),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Result with [`CeremonyError`].
pub type Result<T, E = CeremonyError> = std::result::Result<T, E>;
