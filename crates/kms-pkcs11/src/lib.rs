//! # carimbo-kms-pkcs11 — HSM keys for the Carimbo KMS, through PKCS#11
//!
//! A sibling backend of [`carimbo_kms`], the way rustls' crypto providers are sibling
//! crates of rustls: the core owns the small traits ([`carimbo_kms::KeyProvider`],
//! [`carimbo_kms::SigningKey`], [`carimbo_kms::KeyEncryptionKey`],
//! [`carimbo_kms::HmacKey`]) and this crate implements them for any PKCS#11 token
//! (an HSM in production, SoftHSM2 in development and tests), through `cryptoki`.
//! Builds that do not use an HSM do not link it.
//!
//! - [`Pkcs11Config`] is the provider's strict TOML config: module, token label (and
//!   serial), the PIN *by reference* (file or environment variable), pool size, timeout.
//! - [`Pkcs11Provider::open`] loads the module once per process, finds the token, logs
//!   in and probes its mechanisms. It never initialises (formats) a token.
//! - Keys are generated inside the token, sensitive and non-extractable; the public key
//!   is read back, checked, and a test signature verified before a key is handed out.
//!   ECDSA is hashed on the host and signed with `CKM_ECDSA`; KEKs wrap with
//!   `CKM_AES_GCM` under a host-generated nonce and mandatory associated data.
//! - For the offline CA ceremony: [`list_slots`] and [`initialize_token`] (which refuses
//!   an initialised token), keys with a chosen label
//!   ([`Pkcs11Provider::generate_labeled`]), the token's random generator, and backup
//!   by trusted wrapping: a [`BackupPolicy::WrapWithTrusted`] key leaves the token only
//!   wrapped by an AES key the token's security officer marked trusted
//!   ([`Pkcs11Provider::wrap_for_backup`], [`Pkcs11Provider::restore_from_backup`]).
//! - Every PKCS#11 call runs on tokio's blocking pool with a pooled, logged-in session
//!   and a time limit; errors name the module, token, key reference or PKCS#11 function
//!   and `CKR_*` code that failed, and never contain a PIN.

mod admin;
mod backup;
mod ceremony;
mod config;
mod error;
mod keys;
mod module;
mod objects;
mod provider;
mod scheme;
mod token;

pub use admin::{SlotInfo, TokenSelector, initialize_token, list_slots};
pub use ceremony::BackupPolicy;
pub use config::{Pin, PinSource, Pkcs11Config};
pub use error::Pkcs11Error;
pub use objects::KeyProtection;
pub use provider::{Pkcs11Provider, SessionPoolStatus};

/// Provider id of the PKCS#11 provider in key references.
pub const PROVIDER_ID: &str = "pkcs11";
