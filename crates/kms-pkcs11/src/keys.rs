//! Keys opened on the token: signing keys, key-encryption keys and HMAC keys. Each holds
//! the object handle of its private or secret key and runs every call through the
//! token's session pool.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use carimbo_kms::encoding::ecdsa_raw_to_der;
use carimbo_kms::{
    DataEncryptionKey, HmacKey, KeyEncryptionKey, SignatureAlgorithm, SigningKey, WrapAlgorithm,
    WrappedKey,
};
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use zeroize::Zeroizing;

use crate::Pkcs11Error;
use crate::module::lock;
use crate::objects::{self, KeyLocation};
use crate::scheme::Scheme;
use crate::token::{PooledSession, Token};

/// The object handle of an opened key, valid in one module generation and found again
/// (by `CKA_ID`) in a later one, after the token was reconnected.
pub(crate) struct CachedHandle {
    class: ObjectClass,
    location: KeyLocation,
    cached: std::sync::Mutex<(u64, ObjectHandle)>,
}

impl CachedHandle {
    /// `handle`, found through a session of `generation`.
    pub(crate) fn new(
        class: ObjectClass,
        location: KeyLocation,
        generation: u64,
        handle: ObjectHandle,
    ) -> Arc<Self> {
        Arc::new(Self {
            class,
            location,
            cached: std::sync::Mutex::new((generation, handle)),
        })
    }

    /// The handle in `session`'s generation. Blocking.
    pub(crate) fn get(&self, session: &PooledSession) -> Result<ObjectHandle, Pkcs11Error> {
        let mut cached = lock(&self.cached);
        if cached.0 == session.generation() {
            return Ok(cached.1);
        }
        let handle = objects::find(session, self.class, &self.location)?
            .ok_or_else(|| self.location.not_found())?;
        *cached = (session.generation(), handle);
        Ok(handle)
    }
}

/// AES-GCM nonce length (96 bits, generated on the host).
const GCM_NONCE_LEN: usize = 12;
/// AES-GCM tag length.
const GCM_TAG_BITS: u64 = 128;
/// A wrapped DEK: 32 bytes of ciphertext and a 16-byte tag.
const WRAPPED_DEK_LEN: usize = DataEncryptionKey::LEN + 16;
/// HMAC-SHA-256 output length.
const HMAC_LEN: usize = 32;

/// Signs `message` with the private key `key` under `scheme`; returns the signature in
/// X.509 encoding (DER `ECDSA-Sig-Value` for ECDSA). Blocking.
pub(crate) fn sign(
    session: &Session,
    key: ObjectHandle,
    scheme: Scheme,
    message: &[u8],
) -> Result<Vec<u8>, Pkcs11Error> {
    let mechanism = scheme.signing_mechanism();
    match scheme {
        Scheme::Ecdsa(curve, hash) => {
            // Tokens such as SoftHSM2 lack CKM_ECDSA_SHA384: hash here, sign the digest.
            let digest = hash.digest(message);
            let raw = session
                .sign(&mechanism, key, &digest)
                .map_err(Pkcs11Error::call("C_Sign"))?;
            if raw.len() != curve.signature_len() {
                return Err(Pkcs11Error::Other(format!(
                    "C_Sign returned a {}-byte ECDSA signature, expected {}",
                    raw.len(),
                    curve.signature_len()
                )));
            }
            ecdsa_raw_to_der(&raw).map_err(|e| Pkcs11Error::Other(e.to_string()))
        }
        Scheme::Rsa { .. } | Scheme::Ed25519 => session
            .sign(&mechanism, key, message)
            .map_err(Pkcs11Error::call("C_Sign")),
    }
}

/// Encrypts a DEK with AES-256-GCM under `key`, binding `aad`. Blocking.
pub(crate) fn gcm_wrap(
    session: &Session,
    key: ObjectHandle,
    dek: &[u8],
    aad: &[u8],
) -> Result<WrappedKey, Pkcs11Error> {
    if aad.is_empty() {
        // Also protects the module: AES-GCM with empty AAD has crashed SoftHSM2.
        return Err(Pkcs11Error::InvalidInput(
            "refusing to wrap without associated data".into(),
        ));
    }
    let mut nonce = [0u8; GCM_NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce)
        .map_err(|_| Pkcs11Error::Other("random generator failed".into()))?;
    let ciphertext = {
        let params = GcmParams::new(&mut nonce, aad, GCM_TAG_BITS.into())
            .map_err(Pkcs11Error::call("C_EncryptInit"))?;
        session
            .encrypt(&Mechanism::AesGcm(params), key, dek)
            .map_err(Pkcs11Error::call("C_Encrypt"))?
    };
    if ciphertext.len() != dek.len() + 16 {
        return Err(Pkcs11Error::Other(format!(
            "C_Encrypt returned {} bytes of AES-GCM output for a {}-byte key",
            ciphertext.len(),
            dek.len()
        )));
    }
    Ok(WrappedKey {
        algorithm: WrapAlgorithm::Aes256Gcm,
        nonce: nonce.to_vec(),
        ciphertext,
    })
}

/// Decrypts a wrapped DEK with AES-256-GCM under `key`, checking `aad`. Blocking.
pub(crate) fn gcm_unwrap(
    session: &Session,
    key: ObjectHandle,
    wrapped: &WrappedKey,
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, Pkcs11Error> {
    if wrapped.algorithm != WrapAlgorithm::Aes256Gcm {
        return Err(Pkcs11Error::Unauthentic(
            "wrap block was not made by an AES-256-GCM key".into(),
        ));
    }
    if wrapped.nonce.len() != GCM_NONCE_LEN || wrapped.ciphertext.len() != WRAPPED_DEK_LEN {
        return Err(Pkcs11Error::Unauthentic(
            "wrap block has the wrong nonce or ciphertext length".into(),
        ));
    }
    if aad.is_empty() {
        return Err(Pkcs11Error::InvalidInput(
            "refusing to unwrap without associated data".into(),
        ));
    }
    let mut nonce = [0u8; GCM_NONCE_LEN];
    nonce.copy_from_slice(&wrapped.nonce);
    let params = GcmParams::new(&mut nonce, aad, GCM_TAG_BITS.into())
        .map_err(Pkcs11Error::call("C_DecryptInit"))?;
    let plaintext = session
        .decrypt(&Mechanism::AesGcm(params), key, &wrapped.ciphertext)
        .map(Zeroizing::new)
        .map_err(Pkcs11Error::call("C_Decrypt"))
        .map_err(|error| {
            let unauthentic = match (&error, error.return_value()) {
                // What tokens answer to a wrong tag: the data is not authentic.
                (
                    _,
                    Some(
                        RvError::EncryptedDataInvalid
                        | RvError::EncryptedDataLenRange
                        | RvError::SignatureInvalid
                        | RvError::UnknownErrorCode(0x35),
                    ),
                ) => true,
                // SoftHSM2 (2.6) answers a failed GCM tag check with CKR_GENERAL_ERROR
                // from C_Decrypt. With lengths checked above and the key open, that is
                // the one failure left; refusing the data is the safe reading either way.
                (
                    Pkcs11Error::Pkcs11 {
                        function: "C_Decrypt",
                        ..
                    },
                    Some(RvError::GeneralError),
                ) => true,
                _ => false,
            };
            if unauthentic {
                Pkcs11Error::Unauthentic(format!(
                    "wrap block (wrong key, associated data or nonce, or tampered; {error})"
                ))
            } else {
                error
            }
        })?;
    Ok(plaintext)
}

/// HMAC-SHA-256 of `message` under `key`. Blocking.
pub(crate) fn hmac(
    session: &Session,
    key: ObjectHandle,
    message: &[u8],
) -> Result<Vec<u8>, Pkcs11Error> {
    let mac = session
        .sign(&Mechanism::Sha256Hmac, key, message)
        .map_err(Pkcs11Error::call("C_Sign"))?;
    if mac.len() != HMAC_LEN {
        return Err(Pkcs11Error::Other(format!(
            "C_Sign returned a {}-byte HMAC-SHA-256",
            mac.len()
        )));
    }
    Ok(mac)
}

/// Maps "handle invalid" (the key was destroyed since it was opened) to key-not-found.
fn missing_as_not_found(location: &KeyLocation) -> impl Fn(Pkcs11Error) -> Pkcs11Error + '_ {
    move |error| {
        if error.is_missing_object() {
            location.not_found()
        } else {
            error
        }
    }
}

/// A signing key whose private half lives on the token.
pub(crate) struct Pkcs11SigningKey {
    pub(crate) token: Arc<Token>,
    pub(crate) private: Arc<CachedHandle>,
    pub(crate) algorithm: SignatureAlgorithm,
    pub(crate) scheme: Scheme,
    pub(crate) public_key: Vec<u8>,
    pub(crate) location: KeyLocation,
}

impl fmt::Debug for Pkcs11SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11SigningKey")
            .field("reference", &self.location.reference)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SigningKey for Pkcs11SigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> &[u8] {
        &self.public_key
    }

    async fn sign(&self, message: &[u8]) -> carimbo_kms::Result<Vec<u8>> {
        let (private, scheme, message) = (Arc::clone(&self.private), self.scheme, message.to_vec());
        self.token
            .run("sign", self.token.timeout(), move |session| {
                sign(session, private.get(session)?, scheme, &message)
            })
            .await
            .map_err(missing_as_not_found(&self.location))
            .map_err(Into::into)
    }
}

/// An AES-256 key-encryption key on the token.
pub(crate) struct Pkcs11Kek {
    pub(crate) token: Arc<Token>,
    pub(crate) secret: Arc<CachedHandle>,
    pub(crate) location: KeyLocation,
}

impl fmt::Debug for Pkcs11Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Kek")
            .field("reference", &self.location.reference)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyEncryptionKey for Pkcs11Kek {
    async fn wrap(&self, key: &DataEncryptionKey, aad: &[u8]) -> carimbo_kms::Result<WrappedKey> {
        if aad.is_empty() {
            return Err(Pkcs11Error::InvalidInput(
                "refusing to wrap without associated data".into(),
            )
            .into());
        }
        let secret = Arc::clone(&self.secret);
        let dek = Zeroizing::new(*key.expose());
        let aad = aad.to_vec();
        self.token
            .run("wrap", self.token.timeout(), move |session| {
                gcm_wrap(session, secret.get(session)?, dek.as_slice(), &aad)
            })
            .await
            .map_err(missing_as_not_found(&self.location))
            .map_err(Into::into)
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        aad: &[u8],
    ) -> carimbo_kms::Result<DataEncryptionKey> {
        let secret = Arc::clone(&self.secret);
        let (wrapped, aad) = (wrapped.clone(), aad.to_vec());
        let plaintext = self
            .token
            .run("unwrap", self.token.timeout(), move |session| {
                gcm_unwrap(session, secret.get(session)?, &wrapped, &aad)
            })
            .await
            .map_err(missing_as_not_found(&self.location))?;
        DataEncryptionKey::from_slice(&plaintext)
    }
}

/// An HMAC-SHA-256 key on the token.
pub(crate) struct Pkcs11HmacKey {
    pub(crate) token: Arc<Token>,
    pub(crate) secret: Arc<CachedHandle>,
    pub(crate) location: KeyLocation,
}

impl fmt::Debug for Pkcs11HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11HmacKey")
            .field("reference", &self.location.reference)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl HmacKey for Pkcs11HmacKey {
    async fn mac(&self, message: &[u8]) -> carimbo_kms::Result<Vec<u8>> {
        let (secret, message) = (Arc::clone(&self.secret), message.to_vec());
        self.token
            .run("mac", self.token.timeout(), move |session| {
                hmac(session, secret.get(session)?, &message)
            })
            .await
            .map_err(missing_as_not_found(&self.location))
            .map_err(Into::into)
    }
}
