//! Throwaway software keys that sign lint certificates and lint CRLs.
//!
//! A lint artifact is the real TBS signed by a key nobody trusts, so that the lints can
//! run on a complete, parseable certificate before the real (HSM) key signs anything.
//! The private key lives only in process memory. RSA keys are slow to generate, so one
//! per modulus size is kept for the life of the process; EC and Ed25519 keys are fresh
//! each time.

use std::fmt;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, KeyPair};
use carimbo_kms::encoding::{OID_P256, OID_P384, ec_spki, ed25519_spki, rsa_spki_from_pkcs1};
use carimbo_kms::{HashAlgorithm, RsaModulus, RsaPadding, SignatureAlgorithm};

use crate::PkiError;

enum Pair {
    Ecdsa(sig::EcdsaKeyPair),
    Rsa(Arc<sig::RsaKeyPair>, &'static dyn sig::RsaEncoding),
    Ed25519(sig::Ed25519KeyPair),
}

/// A software key of a given [`SignatureAlgorithm`], usable by rcgen.
pub(crate) struct ThrowawayKey {
    algorithm: SignatureAlgorithm,
    pair: Pair,
    /// The subjectPublicKey bits (EC point, PKCS#1 `RSAPublicKey`, Ed25519 key).
    public_key: Vec<u8>,
    /// The DER `SubjectPublicKeyInfo` (tests use throwaway keys as subject keys).
    #[cfg_attr(not(test), allow(dead_code))]
    spki: Vec<u8>,
    rng: SystemRandom,
}

impl fmt::Debug for ThrowawayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrowawayKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

static RSA_3072: Mutex<Option<Arc<sig::RsaKeyPair>>> = Mutex::new(None);
static RSA_4096: Mutex<Option<Arc<sig::RsaKeyPair>>> = Mutex::new(None);

fn rsa_pair(modulus: RsaModulus) -> Result<Arc<sig::RsaKeyPair>, PkiError> {
    let (slot, size) = match modulus {
        RsaModulus::Bits3072 => (&RSA_3072, aws_lc_rs::rsa::KeySize::Rsa3072),
        RsaModulus::Bits4096 => (&RSA_4096, aws_lc_rs::rsa::KeySize::Rsa4096),
    };
    let mut cached = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(pair) = cached.as_ref() {
        return Ok(pair.clone());
    }
    let pair = Arc::new(
        sig::RsaKeyPair::generate(size)
            .map_err(|_| PkiError::Other("throwaway RSA key generation failed".into()))?,
    );
    *cached = Some(pair.clone());
    Ok(pair)
}

fn rsa_encoding(padding: RsaPadding, hash: HashAlgorithm) -> &'static dyn sig::RsaEncoding {
    match (padding, hash) {
        (RsaPadding::Pkcs1v15, HashAlgorithm::Sha256) => &sig::RSA_PKCS1_SHA256,
        (RsaPadding::Pkcs1v15, HashAlgorithm::Sha384) => &sig::RSA_PKCS1_SHA384,
        (RsaPadding::Pkcs1v15, HashAlgorithm::Sha512) => &sig::RSA_PKCS1_SHA512,
        (RsaPadding::Pss, HashAlgorithm::Sha256) => &sig::RSA_PSS_SHA256,
        (RsaPadding::Pss, HashAlgorithm::Sha384) => &sig::RSA_PSS_SHA384,
        (RsaPadding::Pss, HashAlgorithm::Sha512) => &sig::RSA_PSS_SHA512,
    }
}

impl ThrowawayKey {
    /// A new (or, for RSA, process-cached) key for `algorithm`.
    pub(crate) fn generate(algorithm: SignatureAlgorithm) -> Result<Self, PkiError> {
        let failed = |_: aws_lc_rs::error::Unspecified| {
            PkiError::Other(format!("throwaway {algorithm} key generation failed"))
        };
        let rejected = |_: aws_lc_rs::error::KeyRejected| {
            PkiError::Other(format!("throwaway {algorithm} key generation failed"))
        };
        let rng = SystemRandom::new();
        let (pair, public_key, spki) = match algorithm {
            SignatureAlgorithm::EcdsaP256Sha256 | SignatureAlgorithm::EcdsaP384Sha384 => {
                let (signing, curve) = if algorithm == SignatureAlgorithm::EcdsaP256Sha256 {
                    (&sig::ECDSA_P256_SHA256_ASN1_SIGNING, OID_P256)
                } else {
                    (&sig::ECDSA_P384_SHA384_ASN1_SIGNING, OID_P384)
                };
                let document = sig::EcdsaKeyPair::generate_pkcs8(signing, &rng).map_err(failed)?;
                let pair =
                    sig::EcdsaKeyPair::from_pkcs8(signing, document.as_ref()).map_err(rejected)?;
                let point = pair.public_key().as_ref().to_vec();
                let spki = ec_spki(curve, &point);
                (Pair::Ecdsa(pair), point, spki)
            }
            SignatureAlgorithm::Ed25519 => {
                let document = sig::Ed25519KeyPair::generate_pkcs8(&rng).map_err(failed)?;
                let pair = sig::Ed25519KeyPair::from_pkcs8(document.as_ref()).map_err(rejected)?;
                let key = pair.public_key().as_ref().to_vec();
                let spki = ed25519_spki(&key);
                (Pair::Ed25519(pair), key, spki)
            }
            SignatureAlgorithm::Rsa {
                modulus,
                padding,
                hash,
            } => {
                let pair = rsa_pair(modulus)?;
                let key = pair.public_key().as_ref().to_vec();
                let spki = rsa_spki_from_pkcs1(&key);
                (Pair::Rsa(pair, rsa_encoding(padding, hash)), key, spki)
            }
            _ => {
                return Err(PkiError::InvalidTemplate(format!(
                    "signature algorithm {algorithm} is not supported"
                )));
            }
        };
        Ok(Self {
            algorithm,
            pair,
            public_key,
            spki,
            rng,
        })
    }

    /// The DER `SubjectPublicKeyInfo`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// Signs `message` in the X.509 encoding (DER `ECDSA-Sig-Value`, raw RSA/Ed25519).
    pub(crate) fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let failed = |_| PkiError::Other(format!("throwaway {} signing failed", self.algorithm));
        match &self.pair {
            Pair::Ecdsa(pair) => Ok(pair
                .sign(&self.rng, message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Pair::Rsa(pair, encoding) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(*encoding, &self.rng, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

impl rcgen::PublicKeyData for ThrowawayKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key
    }

    /// rcgen has no RSA-PSS algorithm: it gets the PKCS#1 v1.5 algorithm of the same
    /// hash here, and the caller replaces the TBS `signature` field with the PSS
    /// identifier (and signs again) before anything is linted.
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self.algorithm {
            SignatureAlgorithm::EcdsaP256Sha256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            SignatureAlgorithm::EcdsaP384Sha384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            SignatureAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
            SignatureAlgorithm::Rsa {
                hash: HashAlgorithm::Sha384,
                ..
            } => &rcgen::PKCS_RSA_SHA384,
            SignatureAlgorithm::Rsa {
                hash: HashAlgorithm::Sha512,
                ..
            } => &rcgen::PKCS_RSA_SHA512,
            _ => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl rcgen::SigningKey for ThrowawayKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.sign_message(message)
            .map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throwaway_keys_sign_verifiably_for_every_algorithm() {
        for algorithm in SignatureAlgorithm::ALL {
            let key = ThrowawayKey::generate(algorithm).unwrap();
            let signature = key.sign_message(b"message").unwrap();
            carimbo_kms::verify_signature(algorithm, key.spki(), b"message", &signature)
                .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        }
    }
}
