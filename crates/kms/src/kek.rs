//! Key-encryption keys: wrap and unwrap a data key, always with associated data.

use std::fmt;

use async_trait::async_trait;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{Error, Result};

/// A 256-bit data encryption key (DEK) in plaintext. Zeroized on drop, redacted in
/// `Debug`, never serialised.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataEncryptionKey([u8; 32]);

impl DataEncryptionKey {
    /// Length of a DEK in bytes.
    pub const LEN: usize = 32;

    /// A fresh random DEK.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; Self::LEN];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| Error::Crypto("random generator failed".into()))?;
        Ok(Self(bytes))
    }

    /// Takes ownership of key bytes (as unwrapped by a provider). The caller's copy
    /// should be zeroized.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let bytes: [u8; Self::LEN] = bytes.try_into().map_err(|_| {
            Error::Unauthentic(format!("unwrapped key is {} bytes, not 32", bytes.len()))
        })?;
        Ok(Self(bytes))
    }

    /// The key bytes, for the envelope's key derivation and for providers' wrap calls.
    pub fn expose(&self) -> &[u8; Self::LEN] {
        &self.0
    }
}

impl fmt::Debug for DataEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataEncryptionKey([redacted])")
    }
}

/// How a DEK was wrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WrapAlgorithm {
    /// AES-256-GCM with a 96-bit random nonce and the envelope's AAD; the wrapped key is
    /// ciphertext‖tag (48 bytes).
    Aes256Gcm,
    /// An AEAD performed inside the provider with its own ciphertext format (AWS KMS
    /// `Encrypt` with an encryption context); the nonce is empty.
    ProviderAead,
}

impl WrapAlgorithm {
    /// Code written in the envelope's wrap block.
    pub fn code(self) -> u8 {
        match self {
            Self::Aes256Gcm => 1,
            Self::ProviderAead => 2,
        }
    }

    /// The algorithm with wrap-block code `code`.
    pub fn from_code(code: u8) -> Result<Self> {
        match code {
            1 => Ok(Self::Aes256Gcm),
            2 => Ok(Self::ProviderAead),
            other => Err(Error::UnsupportedEnvelope(format!(
                "unknown wrap algorithm {other}"
            ))),
        }
    }
}

/// A DEK wrapped by a key-encryption key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// How it was wrapped.
    pub algorithm: WrapAlgorithm,
    /// The nonce used (12 bytes for AES-GCM).
    pub nonce: Vec<u8>,
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

/// A key-encryption key (KEK). Wrapping is always authenticated and always binds
/// associated data: plain AES key wrap is not offered.
#[async_trait]
pub trait KeyEncryptionKey: Send + Sync + fmt::Debug {
    /// Wraps `key` binding `aad`, which must be non-empty.
    async fn wrap(&self, key: &DataEncryptionKey, aad: &[u8]) -> Result<WrappedKey>;

    /// Unwraps `wrapped`, checking `aad`. Any mismatch is [`Error::Unauthentic`].
    async fn unwrap(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<DataEncryptionKey>;
}

/// AES-256-GCM wrap in software, shared by providers that hold the KEK bytes.
pub(crate) fn aes_gcm_wrap(
    kek: &[u8; 32],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<(Vec<u8>, Vec<u8>)> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
    let key = UnboundKey::new(&AES_256_GCM, kek)
        .map(LessSafeKey::new)
        .map_err(|_| Error::Crypto("AES-256-GCM key setup failed".into()))?;
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce)
        .map_err(|_| Error::Crypto("random generator failed".into()))?;
    let mut sealed = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut sealed,
    )
    .map_err(|_| Error::Crypto("AES-256-GCM seal failed".into()))?;
    Ok((nonce.to_vec(), sealed))
}

/// AES-256-GCM unwrap in software. The returned plaintext is zeroized on drop.
pub(crate) fn aes_gcm_unwrap(
    kek: &[u8; 32],
    nonce: &[u8],
    ciphertext: &[u8],
    aad: &[u8],
    what: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = UnboundKey::new(&AES_256_GCM, kek)
        .map(LessSafeKey::new)
        .map_err(|_| Error::Crypto("AES-256-GCM key setup failed".into()))?;
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| Error::Unauthentic(format!("{what}: bad nonce length")))?;
    let mut buffer = zeroize::Zeroizing::new(ciphertext.to_vec());
    let plaintext_len = key
        .open_in_place(nonce, Aad::from(aad), &mut buffer)
        .map_err(|_| Error::Unauthentic(format!("{what} (wrong key, context or data)")))?
        .len();
    buffer.truncate(plaintext_len);
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroize;

    use super::DataEncryptionKey;

    /// Compiles only for types that wipe themselves when dropped.
    fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}

    #[test]
    fn a_data_key_wipes_all_its_bytes_and_does_so_on_drop() {
        // Dropping runs the same wipe as `zeroize` (derived `ZeroizeOnDrop`).
        zeroized_on_drop::<DataEncryptionKey>();
        zeroized_on_drop::<zeroize::Zeroizing<Vec<u8>>>();
        let mut key = DataEncryptionKey::from_slice(&[0xa5; DataEncryptionKey::LEN]).unwrap();
        key.zeroize();
        assert_eq!(key.expose(), &[0u8; DataEncryptionKey::LEN]);
    }

    #[test]
    fn a_data_key_is_redacted_in_debug_output() {
        let key = DataEncryptionKey::from_slice(&[0xa5; DataEncryptionKey::LEN]).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("a5") && !shown.contains("165"), "{shown}");
    }
}
