//! # carimbo-kms-aws — AWS KMS keys for the Carimbo KMS
//!
//! A sibling backend of [`carimbo_kms`], like the PKCS#11 crate: the core owns the small
//! traits ([`carimbo_kms::KeyProvider`], [`carimbo_kms::SigningKey`],
//! [`carimbo_kms::KeyEncryptionKey`], [`carimbo_kms::HmacKey`]) and this crate
//! implements them over AWS KMS with `aws-sdk-kms`. Builds that do not use AWS do not
//! link the SDK.
//!
//! - [`AwsKmsConfig`] is the provider's strict TOML config (`aws-kms.toml`): region,
//!   optional endpoint override and profile. Credentials never go in it: they come from
//!   the standard AWS chain (environment, profile files, web identity, instance role).
//! - [`AwsKmsProvider`] creates keys with `CreateKey` (ECDSA P-256/P-384, RSA
//!   3072/4096 and Ed25519 signing keys; `SYMMETRIC_DEFAULT` key-encryption keys;
//!   `HMAC_256` keys), tagged with the Carimbo key name and version; key references
//!   hold the key ARN.
//! - Signing uses KMS `Sign`: the message itself (`RAW`) up to 4096 bytes, its SHA-2
//!   digest (`DIGEST`) beyond; every signature is verified against the public key
//!   before it is returned.
//! - Data keys are wrapped with `Encrypt` and unwrapped with `Decrypt`; the envelope's
//!   associated data is bound as the encryption context (its SHA-256), so a wrong
//!   context, key or ciphertext fails as [`carimbo_kms::Error::Unauthentic`].
//! - Destroying a key schedules its deletion with AWS's shortest window, 7 days.
//!
//! Everything is async on the SDK's tokio-based client; nothing blocks the runtime.

mod config;
#[cfg(test)]
mod emulator_tests;
mod error;
mod keys;
mod provider;

pub use config::AwsKmsConfig;
pub use error::AwsKmsError;
pub use keys::{AAD_CONTEXT_KEY, MAX_MESSAGE_LEN};
pub use provider::{AwsKmsProvider, DELETION_WINDOW_DAYS};

/// Provider id of the AWS KMS provider in key references.
pub const PROVIDER_ID: &str = "aws";
