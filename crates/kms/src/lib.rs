//! # carimbo-kms — the key management core of Carimbo
//!
//! Everything in Carimbo that signs, encrypts or MACs goes through this crate: the
//! offline `ca-ceremony`, the issuing service (certificates, CRLs, OCSP responses) and
//! applications using envelope encryption. It owns
//!
//! - the small backend traits — [`SigningKey`], [`KeyEncryptionKey`], [`HmacKey`] and
//!   [`KeyProvider`] — that the PKCS#11 and AWS KMS crates implement;
//! - the key vocabulary: [`KeyName`] (`{use}/{env}/{name}`), [`Purpose`] fixed at
//!   creation, [`SignatureAlgorithm`] (weak ones refused);
//! - the [`envelope`] format v1 (streaming AES-256-GCM segments under a per-object data
//!   key, key commitment, replaceable wrap block);
//! - the [`Keyring`]: named keys with integer versions, two-phase rotation, explicit
//!   disable/destroy, rewrap, and an [`AuditEvent`] for every key use;
//! - the [`FileProvider`], a software provider for development only.
//!
//! It does no networking and holds no database code; the keyring's metadata sits
//! behind [`KeyringStore`], implemented here for a local file.

mod algorithm;
mod audit;
mod clock;
mod context;
pub mod encoding;
pub mod envelope;
mod error;
mod file_provider;
mod fsutil;
mod hmac;
mod kek;
mod keyring;
mod name;
mod provider;
mod signing;
mod store;

pub use algorithm::{HashAlgorithm, KeyAlgorithm, RsaModulus, RsaPadding, SignatureAlgorithm};
pub use audit::{AuditEvent, AuditSink, JsonLinesAuditSink, MemoryAuditSink, Operation, Outcome};
pub use clock::{Clock, FixedClock, SystemClock};
pub use context::EncryptionContext;
pub use error::{Error, Result};
pub use file_provider::{FileProvider, SoftwareKek, load_or_create_file_kek};
pub use fsutil::{
    PendingFile, check_private_file, write_new_private_file, write_private_file_atomically,
};
pub use hmac::{HmacKey, verify_hmac};
pub use kek::{DataEncryptionKey, KeyEncryptionKey, WrapAlgorithm, WrappedKey};
pub use keyring::{Caller, Keyring, OpenedEnvelope, SealedEnvelope};
pub use name::{KeyName, Purpose};
pub use provider::{GenerateRequest, GeneratedKey, KeyProvider, KeyReference};
pub use signing::{SigningKey, verify_signature};
pub use store::{
    FileKeyringStore, KeyRecord, KeyVersionRecord, KeyringSettings, KeyringStore, VersionState,
};
