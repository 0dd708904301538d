//! # ca-ceremony — Carimbo's offline CA ceremonies
//!
//! Administrators run `ca-ceremony <type> --config FILE.toml` on an air-gapped machine
//! with the offline HSM attached. Each ceremony takes one strict config file (unknown
//! keys refused, errors naming the field), reads HSM credentials from a separate file,
//! checks everything it can before touching the HSM (outputs absent, labels free, the
//! certificate linted with a throwaway key), then generates or uses keys inside the
//! token, signs with lint-before-sign (`carimbo-pki`), and writes its outputs — never
//! over an existing file, all or nothing — with a hash-chained transcript.
//!
//! This crate links `carimbo-kms`, `carimbo-kms-pkcs11` and `carimbo-pki` only: no
//! networking, no database. The ceremony logic lives in this library so that other
//! front ends (the development mode of the service) can run the same steps.

mod ceremonies;
pub mod config;
pub mod credentials;
mod error;
pub mod keystore;
pub mod outputs;
pub mod shares;
pub mod transcript;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use error::{CeremonyError, Result};

/// The ceremony types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Initialise an uninitialised token; PINs split M-of-N among holders.
    Token,
    /// Generate a key pair in a token; write its public key and key reference.
    Key,
    /// Generate the root key and self-sign the root certificate.
    Root,
    /// Sign an intermediate CA certificate with the root key.
    Intermediate,
    /// Cross-certify an existing CA's key (subject and SKID kept) with another issuer.
    CrossSign,
    /// Issue the root's CRL of revoked CA certificates (ARL).
    Crl,
    /// Wrap a CA key for backup under a trusted wrapping key split M-of-N.
    Backup,
    /// Restore a backup into another token, proven by a test signature.
    Restore,
    /// Re-check a finished hierarchy and its transcripts.
    Verify,
}

impl CeremonyKind {
    /// Every kind, for help texts.
    pub const ALL: [CeremonyKind; 9] = [
        Self::Token,
        Self::Key,
        Self::Root,
        Self::Intermediate,
        Self::CrossSign,
        Self::Crl,
        Self::Backup,
        Self::Restore,
        Self::Verify,
    ];

    /// The name used on the command line and in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Key => "key",
            Self::Root => "root",
            Self::Intermediate => "intermediate",
            Self::CrossSign => "cross-sign",
            Self::Crl => "crl",
            Self::Backup => "backup",
            Self::Restore => "restore",
            Self::Verify => "verify",
        }
    }
}

impl fmt::Display for CeremonyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CeremonyKind {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "unknown ceremony {text:?} (expected one of: {})",
                    Self::ALL.map(CeremonyKind::as_str).join(", ")
                )
            })
    }
}

/// How far a run goes.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Only check the config (and the certificate it describes, linted with a
    /// throwaway key); do not open any token.
    pub validate_only: bool,
    /// Open the tokens and run every check, but change nothing and write nothing.
    pub dry_run: bool,
    /// Credentials file (else the `CARIMBO_CEREMONY_CREDENTIALS` variable).
    pub credentials: Option<PathBuf>,
}

/// What a ceremony did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Files written.
    pub outputs: Vec<PathBuf>,
    /// Final hash of the transcript, for the officers to record.
    pub final_hash: Option<String>,
    /// Lines to show the operators.
    pub report: Vec<String>,
}

/// Runs ceremony `kind` with the config at `config`.
pub async fn run(kind: CeremonyKind, config: &Path, options: &RunOptions) -> Result<Outcome> {
    match kind {
        CeremonyKind::Token => ceremonies::token::run(config, options).await,
        CeremonyKind::Key => ceremonies::key::run(config, options).await,
        CeremonyKind::Root => ceremonies::root::run(config, options).await,
        CeremonyKind::Intermediate => ceremonies::intermediate::run(config, options).await,
        CeremonyKind::CrossSign => ceremonies::cross_sign::run(config, options).await,
        CeremonyKind::Crl => ceremonies::crl::run(config, options).await,
        CeremonyKind::Backup => ceremonies::backup::backup(config, options).await,
        CeremonyKind::Restore => ceremonies::backup::restore(config, options).await,
        CeremonyKind::Verify => ceremonies::verify::run(config, options).await,
    }
}
