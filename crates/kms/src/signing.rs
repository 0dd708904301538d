//! The signing-key trait every provider implements, and signature verification.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::encoding::parse_spki;
use crate::{Error, Result, SignatureAlgorithm};

/// A private key that can sign, wherever it lives (file, HSM, AWS KMS).
///
/// Three things, as in rustls: which algorithm, which public key, sign these bytes.
/// Implementations never expose the private key.
#[async_trait]
pub trait SigningKey: Send + Sync + Debug {
    /// The algorithm this key signs with, fixed at creation.
    fn algorithm(&self) -> SignatureAlgorithm;

    /// The public key as a DER `SubjectPublicKeyInfo`.
    fn public_key_der(&self) -> &[u8];

    /// Signs `message` (the whole message; the key hashes it as its algorithm says) and
    /// returns the signature in the encoding X.509 uses: DER `ECDSA-Sig-Value` for ECDSA,
    /// the raw signature for RSA and Ed25519.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// Verifies `signature` over `message` with the public key `spki` (DER
/// `SubjectPublicKeyInfo`) under `algorithm`.
///
/// Fails with [`Error::VerificationFailed`] for a bad signature and [`Error::Malformed`]
/// for a public key that is not of the algorithm's type.
pub fn verify_signature(
    algorithm: SignatureAlgorithm,
    spki: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<()> {
    let info = parse_spki(spki)?;
    if !info.matches(algorithm) {
        return Err(Error::Malformed(format!(
            "public key is not a {algorithm} key"
        )));
    }
    if let SignatureAlgorithm::Rsa { modulus, .. } = algorithm
        && info.rsa_modulus_bits() != Some(modulus.bits() as usize)
    {
        return Err(Error::Malformed(format!(
            "RSA public key is not {} bits",
            modulus.bits()
        )));
    }
    aws_lc_rs::signature::UnparsedPublicKey::new(algorithm.verification(), info.key)
        .verify(message, signature)
        .map_err(|_| Error::VerificationFailed("signature"))
}
