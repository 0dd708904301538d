//! The provider trait: where keys are generated and how they are opened again.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{
    HmacKey, KeyAlgorithm, KeyEncryptionKey, KeyName, Purpose, Result, SignatureAlgorithm,
    SigningKey,
};

/// Where a key version lives: the provider that holds it and the provider's own
/// locator (a file name, a PKCS#11 token serial and object id, an AWS key ARN).
/// Contains no secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyReference {
    /// Provider id (`file`, `pkcs11`, ...), as returned by [`KeyProvider::id`].
    pub provider: String,
    /// Provider-specific locator.
    pub id: String,
}

impl fmt::Display for KeyReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.id)
    }
}

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct GenerateRequest<'a> {
    /// Key name (providers use it for labels).
    pub name: &'a KeyName,
    /// Version being created.
    pub version: u32,
    /// Purpose, fixed for the key's life.
    pub purpose: Purpose,
    /// Key algorithm; already checked against the purpose.
    pub algorithm: KeyAlgorithm,
}

/// A freshly generated key version.
#[derive(Clone, Debug)]
pub struct GeneratedKey {
    /// How to open it again.
    pub reference: KeyReference,
    /// For signing keys: the public key (DER `SubjectPublicKeyInfo`), read back from the
    /// provider after generation.
    pub public_key: Option<Vec<u8>>,
}

/// A place that holds private and secret keys and uses them without releasing them.
///
/// Implemented by the [`crate::FileProvider`] (development), the PKCS#11 provider and
/// the AWS KMS provider. All methods may block on I/O; implementations keep blocking
/// FFI off the async runtime.
#[async_trait]
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// The id written into [`KeyReference::provider`].
    fn id(&self) -> &str;

    /// Generates a key inside the provider (non-extractable where the provider allows).
    async fn generate(&self, request: &GenerateRequest<'_>) -> Result<GeneratedKey>;

    /// Opens a signing key.
    async fn signing_key(
        &self,
        reference: &KeyReference,
        algorithm: SignatureAlgorithm,
    ) -> Result<Arc<dyn SigningKey>>;

    /// Opens a key-encryption key.
    async fn key_encryption_key(
        &self,
        reference: &KeyReference,
    ) -> Result<Arc<dyn KeyEncryptionKey>>;

    /// Opens an HMAC key.
    async fn hmac_key(&self, reference: &KeyReference) -> Result<Arc<dyn HmacKey>>;

    /// Destroys the key material for good.
    async fn destroy(&self, reference: &KeyReference) -> Result<()>;
}
