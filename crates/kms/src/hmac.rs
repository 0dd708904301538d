//! HMAC keys.

use std::fmt::Debug;

use async_trait::async_trait;
use subtle::ConstantTimeEq;

use crate::{Error, Result};

/// A secret HMAC-SHA-256 key held by a provider.
#[async_trait]
pub trait HmacKey: Send + Sync + Debug {
    /// HMAC-SHA-256 of `message` (32 bytes).
    async fn mac(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// Recomputes the MAC of `message` with `key` and compares it with `tag` in constant
/// time.
pub async fn verify_hmac(key: &dyn HmacKey, message: &[u8], tag: &[u8]) -> Result<()> {
    let expected = key.mac(message).await?;
    if bool::from(expected.as_slice().ct_eq(tag)) {
        Ok(())
    } else {
        Err(Error::VerificationFailed("HMAC"))
    }
}
