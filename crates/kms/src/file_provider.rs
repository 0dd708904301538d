//! The file provider — **development only**.
//!
//! Keys are generated in software (aws-lc-rs) and stored one per file, each encrypted
//! with AES-256-GCM under a file KEK, with the key's id, purpose and algorithm as
//! associated data. Files are created 0600 and refused when group or others can read
//! them. Plaintext key bytes live only in memory, in zeroizing buffers.
//!
//! This gives the zero-setup default real key separation from the data it protects, but
//! the file KEK sits on the same disk: production keys belong in an HSM or AWS KMS.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::encoding::{OID_P256, OID_P384, ec_spki, ed25519_spki, rsa_spki_from_pkcs1};
use crate::fsutil::{check_private_file, write_new_private_file};
use crate::kek::{aes_gcm_unwrap, aes_gcm_wrap};
use crate::{
    DataEncryptionKey, Error, GenerateRequest, GeneratedKey, HmacKey, KeyAlgorithm,
    KeyEncryptionKey, KeyProvider, KeyReference, Purpose, Result, RsaModulus, RsaPadding,
    SignatureAlgorithm, SigningKey, WrapAlgorithm, WrappedKey,
};

/// Provider id of the file provider in key references.
const PROVIDER_ID: &str = "file";
/// Format tag of key files.
const KEY_FILE_FORMAT: &str = "carimbo-file-key/v1";

/// Loads the 32-byte file KEK at `path`, creating it (0600, random) when absent.
/// Refuses a KEK file that group or others can read, or of the wrong size.
pub fn load_or_create_file_kek(path: &Path) -> Result<Zeroizing<[u8; 32]>> {
    if !path.exists() {
        let mut kek = Zeroizing::new([0u8; 32]);
        fill_random(kek.as_mut())?;
        write_new_private_file(path, kek.as_ref())?;
        return Ok(kek);
    }
    check_private_file(path)?;
    let bytes = Zeroizing::new(fs::read(path).map_err(|e| Error::io("read", path, e))?);
    let kek: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| Error::Malformed(format!("{} is not a 32-byte file KEK", path.display())))?;
    Ok(Zeroizing::new(kek))
}

fn fill_random(buffer: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buffer).map_err(|_| Error::Crypto("random generator failed".into()))
}

/// Software keys in a directory, encrypted under a file KEK. Development only.
pub struct FileProvider {
    directory: PathBuf,
    kek: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for FileProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileProvider")
            .field("directory", &self.directory)
            .field("kek", &"[redacted]")
            .finish()
    }
}

/// On-disk form of one key: the secret encrypted under the file KEK.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    format: String,
    key_id: String,
    purpose: Purpose,
    algorithm: KeyAlgorithm,
    nonce: String,
    ciphertext: String,
}

impl KeyFile {
    fn aad(key_id: &str, purpose: Purpose, algorithm: KeyAlgorithm) -> Vec<u8> {
        format!("{KEY_FILE_FORMAT}\0{key_id}\0{purpose}\0{algorithm}").into_bytes()
    }
}

impl FileProvider {
    /// A provider keeping key files in `directory` (created 0700 if absent), encrypted
    /// under `kek`.
    pub fn new(directory: impl Into<PathBuf>, kek: Zeroizing<[u8; 32]>) -> Result<Self> {
        let directory = directory.into();
        if !directory.exists() {
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&directory)
                .map_err(|e| Error::io("create directory", &directory, e))?;
        }
        Ok(Self { directory, kek })
    }

    fn path_of(&self, reference: &KeyReference) -> Result<PathBuf> {
        let id = &reference.id;
        let well_formed = reference.provider == PROVIDER_ID
            && id.len() == 32
            && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Err(Error::Malformed(format!(
                "{reference} is not a file-provider key reference"
            )));
        }
        Ok(self.directory.join(format!("{id}.key")))
    }

    /// Reads and decrypts a key file, checking it holds a key of `algorithm`.
    fn load_secret(
        &self,
        reference: &KeyReference,
        algorithm: KeyAlgorithm,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let path = self.path_of(reference)?;
        if !path.exists() {
            return Err(Error::provider(
                PROVIDER_ID,
                format!("key file {} not found", path.display()),
            ));
        }
        check_private_file(&path)?;
        let text = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
        let file: KeyFile = serde_json::from_str(&text)
            .map_err(|e| Error::Malformed(format!("{}: {e}", path.display())))?;
        if file.format != KEY_FILE_FORMAT || file.key_id != reference.id {
            return Err(Error::Malformed(format!(
                "{} is not the key file of {reference}",
                path.display()
            )));
        }
        if file.algorithm != algorithm {
            return Err(Error::Malformed(format!(
                "{reference} holds a {} key, not {algorithm}",
                file.algorithm
            )));
        }
        let decode = |field: &str| {
            BASE64
                .decode(field)
                .map_err(|e| Error::Malformed(format!("{}: {e}", path.display())))
        };
        aes_gcm_unwrap(
            &self.kek,
            &decode(&file.nonce)?,
            &decode(&file.ciphertext)?,
            &KeyFile::aad(&file.key_id, file.purpose, file.algorithm),
            "key file",
        )
    }
}

#[async_trait]
impl KeyProvider for FileProvider {
    fn id(&self) -> &str {
        PROVIDER_ID
    }

    async fn generate(&self, request: &GenerateRequest<'_>) -> Result<GeneratedKey> {
        request.algorithm.check_purpose(request.purpose)?;
        let rng = SystemRandom::new();
        let secret: Zeroizing<Vec<u8>> = match request.algorithm {
            KeyAlgorithm::Signature(algorithm) => generate_pkcs8(algorithm, &rng)?,
            KeyAlgorithm::Aes256Gcm | KeyAlgorithm::HmacSha256 => {
                let mut bytes = Zeroizing::new(vec![0u8; 32]);
                fill_random(&mut bytes)?;
                bytes
            }
        };
        let mut id = [0u8; 16];
        fill_random(&mut id)?;
        let reference = KeyReference {
            provider: PROVIDER_ID.into(),
            id: hex::encode(id),
        };
        let public_key = match request.algorithm {
            KeyAlgorithm::Signature(algorithm) => {
                Some(SoftwareSigningKey::from_pkcs8(algorithm, &secret)?.spki)
            }
            _ => None,
        };
        let (nonce, ciphertext) = aes_gcm_wrap(
            &self.kek,
            &secret,
            &KeyFile::aad(&reference.id, request.purpose, request.algorithm),
        )?;
        let file = KeyFile {
            format: KEY_FILE_FORMAT.into(),
            key_id: reference.id.clone(),
            purpose: request.purpose,
            algorithm: request.algorithm,
            nonce: BASE64.encode(nonce),
            ciphertext: BASE64.encode(ciphertext),
        };
        let json = serde_json::to_vec_pretty(&file)
            .map_err(|e| Error::Malformed(format!("key file encoding: {e}")))?;
        write_new_private_file(&self.path_of(&reference)?, &json)?;
        Ok(GeneratedKey {
            reference,
            public_key,
        })
    }

    async fn signing_key(
        &self,
        reference: &KeyReference,
        algorithm: SignatureAlgorithm,
    ) -> Result<Arc<dyn SigningKey>> {
        let secret = self.load_secret(reference, KeyAlgorithm::Signature(algorithm))?;
        Ok(Arc::new(SoftwareSigningKey::from_pkcs8(
            algorithm, &secret,
        )?))
    }

    async fn key_encryption_key(
        &self,
        reference: &KeyReference,
    ) -> Result<Arc<dyn KeyEncryptionKey>> {
        let secret = self.load_secret(reference, KeyAlgorithm::Aes256Gcm)?;
        Ok(Arc::new(SoftwareKek(secret_array(&secret)?)))
    }

    async fn hmac_key(&self, reference: &KeyReference) -> Result<Arc<dyn HmacKey>> {
        let secret = self.load_secret(reference, KeyAlgorithm::HmacSha256)?;
        Ok(Arc::new(SoftwareHmacKey(aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            &secret,
        ))))
    }

    async fn destroy(&self, reference: &KeyReference) -> Result<()> {
        let path = self.path_of(reference)?;
        // Overwrite before unlinking: the KEK-encrypted bytes are not plaintext, but a
        // destroyed key should not be recoverable with a leaked KEK either.
        if let Ok(metadata) = fs::metadata(&path) {
            let zeros = vec![0u8; metadata.len() as usize];
            fs::write(&path, zeros).map_err(|e| Error::io("overwrite", &path, e))?;
        }
        fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))
    }
}

fn secret_array(secret: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let array: [u8; 32] = secret
        .try_into()
        .map_err(|_| Error::Malformed("secret key is not 32 bytes".into()))?;
    Ok(Zeroizing::new(array))
}

/// Generates a key pair and returns its PKCS#8 document.
fn generate_pkcs8(algorithm: SignatureAlgorithm, rng: &SystemRandom) -> Result<Zeroizing<Vec<u8>>> {
    let failed = |_| Error::Crypto(format!("{algorithm} key generation failed"));
    let document = match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => {
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, rng)
                .map_err(failed)?
                .as_ref()
                .to_vec()
        }
        SignatureAlgorithm::EcdsaP384Sha384 => {
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P384_SHA384_ASN1_SIGNING, rng)
                .map_err(failed)?
                .as_ref()
                .to_vec()
        }
        SignatureAlgorithm::Ed25519 => sig::Ed25519KeyPair::generate_pkcs8(rng)
            .map_err(failed)?
            .as_ref()
            .to_vec(),
        SignatureAlgorithm::Rsa { modulus, .. } => {
            use aws_lc_rs::encoding::AsDer;
            let size = match modulus {
                RsaModulus::Bits3072 => aws_lc_rs::rsa::KeySize::Rsa3072,
                RsaModulus::Bits4096 => aws_lc_rs::rsa::KeySize::Rsa4096,
            };
            sig::RsaKeyPair::generate(size)
                .map_err(failed)?
                .as_der()
                .map_err(failed)?
                .as_ref()
                .to_vec()
        }
    };
    Ok(Zeroizing::new(document))
}

/// A key pair held in process memory.
enum SoftwareKeyPair {
    Ecdsa(sig::EcdsaKeyPair),
    Rsa(sig::RsaKeyPair, &'static dyn sig::RsaEncoding),
    Ed25519(sig::Ed25519KeyPair),
}

/// A signing key in memory, loaded from PKCS#8.
pub(crate) struct SoftwareSigningKey {
    algorithm: SignatureAlgorithm,
    spki: Vec<u8>,
    pair: SoftwareKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for SoftwareSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SoftwareSigningKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SoftwareSigningKey {
    pub(crate) fn from_pkcs8(algorithm: SignatureAlgorithm, pkcs8: &[u8]) -> Result<Self> {
        let bad = |_| Error::Malformed(format!("stored key is not a valid {algorithm} key"));
        let (pair, spki) = match algorithm {
            SignatureAlgorithm::EcdsaP256Sha256 | SignatureAlgorithm::EcdsaP384Sha384 => {
                let (signing, curve) = if algorithm == SignatureAlgorithm::EcdsaP256Sha256 {
                    (&sig::ECDSA_P256_SHA256_ASN1_SIGNING, OID_P256)
                } else {
                    (&sig::ECDSA_P384_SHA384_ASN1_SIGNING, OID_P384)
                };
                let pair = sig::EcdsaKeyPair::from_pkcs8(signing, pkcs8).map_err(bad)?;
                let spki = ec_spki(curve, pair.public_key().as_ref());
                (SoftwareKeyPair::Ecdsa(pair), spki)
            }
            SignatureAlgorithm::Ed25519 => {
                let pair = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(bad)?;
                let spki = ed25519_spki(pair.public_key().as_ref());
                (SoftwareKeyPair::Ed25519(pair), spki)
            }
            SignatureAlgorithm::Rsa {
                modulus, padding, ..
            } => {
                let pair = sig::RsaKeyPair::from_pkcs8(pkcs8).map_err(bad)?;
                if pair.public_modulus_len() * 8 != modulus.bits() as usize {
                    return Err(Error::Malformed(format!(
                        "stored RSA key is not {} bits",
                        modulus.bits()
                    )));
                }
                let spki = rsa_spki_from_pkcs1(pair.public_key().as_ref());
                let encoding = rsa_encoding(algorithm, padding);
                (SoftwareKeyPair::Rsa(pair, encoding), spki)
            }
        };
        Ok(Self {
            algorithm,
            spki,
            pair,
            rng: SystemRandom::new(),
        })
    }
}

fn rsa_encoding(
    algorithm: SignatureAlgorithm,
    padding: RsaPadding,
) -> &'static dyn sig::RsaEncoding {
    use crate::HashAlgorithm::*;
    match (padding, algorithm.hash()) {
        (RsaPadding::Pkcs1v15, Some(Sha384)) => &sig::RSA_PKCS1_SHA384,
        (RsaPadding::Pkcs1v15, Some(Sha512)) => &sig::RSA_PKCS1_SHA512,
        (RsaPadding::Pkcs1v15, _) => &sig::RSA_PKCS1_SHA256,
        (RsaPadding::Pss, Some(Sha384)) => &sig::RSA_PSS_SHA384,
        (RsaPadding::Pss, Some(Sha512)) => &sig::RSA_PSS_SHA512,
        (RsaPadding::Pss, _) => &sig::RSA_PSS_SHA256,
    }
}

#[async_trait]
impl SigningKey for SoftwareSigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        let failed = |_| Error::Crypto(format!("{} signing failed", self.algorithm));
        match &self.pair {
            SoftwareKeyPair::Ecdsa(pair) => Ok(pair
                .sign(&self.rng, message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            SoftwareKeyPair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            SoftwareKeyPair::Rsa(pair, encoding) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(*encoding, &self.rng, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

/// An AES-256-GCM KEK held in process memory (the file provider's KEKs, test vectors).
pub struct SoftwareKek(Zeroizing<[u8; 32]>);

impl SoftwareKek {
    /// A KEK with these key bytes.
    pub fn new(key: Zeroizing<[u8; 32]>) -> Self {
        Self(key)
    }
}

impl fmt::Debug for SoftwareKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SoftwareKek([redacted])")
    }
}

#[async_trait]
impl KeyEncryptionKey for SoftwareKek {
    async fn wrap(&self, key: &DataEncryptionKey, aad: &[u8]) -> Result<WrappedKey> {
        if aad.is_empty() {
            return Err(Error::Crypto(
                "refusing to wrap without associated data".into(),
            ));
        }
        let (nonce, ciphertext) = aes_gcm_wrap(&self.0, key.expose(), aad)?;
        Ok(WrappedKey {
            algorithm: WrapAlgorithm::Aes256Gcm,
            nonce,
            ciphertext,
        })
    }

    async fn unwrap(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<DataEncryptionKey> {
        if wrapped.algorithm != WrapAlgorithm::Aes256Gcm {
            return Err(Error::Unauthentic(
                "wrap block was not made by an AES-256-GCM key".into(),
            ));
        }
        let plaintext = aes_gcm_unwrap(
            &self.0,
            &wrapped.nonce,
            &wrapped.ciphertext,
            aad,
            "wrap block",
        )?;
        DataEncryptionKey::from_slice(&plaintext)
    }
}

/// An HMAC key in memory.
struct SoftwareHmacKey(aws_lc_rs::hmac::Key);

impl fmt::Debug for SoftwareHmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SoftwareHmacKey([redacted])")
    }
}

#[async_trait]
impl HmacKey for SoftwareHmacKey {
    async fn mac(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(aws_lc_rs::hmac::sign(&self.0, message).as_ref().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyName, verify_signature};

    fn provider(dir: &Path) -> FileProvider {
        let kek = load_or_create_file_kek(&dir.join("file-kek")).unwrap();
        FileProvider::new(dir.join("keys"), kek).unwrap()
    }

    #[tokio::test]
    async fn every_algorithm_signs_and_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let provider = provider(dir.path());
        let name = KeyName::new("model-sign/test/all").unwrap();
        for algorithm in SignatureAlgorithm::ALL {
            let generated = provider
                .generate(&GenerateRequest {
                    name: &name,
                    version: 1,
                    purpose: Purpose::Sign,
                    algorithm: KeyAlgorithm::Signature(algorithm),
                })
                .await
                .unwrap();
            let key = provider
                .signing_key(&generated.reference, algorithm)
                .await
                .unwrap();
            assert_eq!(Some(key.public_key_der()), generated.public_key.as_deref());
            let signature = key.sign(b"hello").await.unwrap();
            verify_signature(algorithm, key.public_key_der(), b"hello", &signature).unwrap();
            assert!(
                verify_signature(algorithm, key.public_key_der(), b"hellO", &signature).is_err()
            );
        }
    }

    #[tokio::test]
    async fn key_files_are_private_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let provider = provider(dir.path());
        let name = KeyName::new("envelope-data/test/x").unwrap();
        let generated = provider
            .generate(&GenerateRequest {
                name: &name,
                version: 1,
                purpose: Purpose::Envelope,
                algorithm: KeyAlgorithm::Aes256Gcm,
            })
            .await
            .unwrap();
        let path = provider.path_of(&generated.reference).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The file does not contain the key in plaintext: it cannot be opened under
        // another KEK.
        let other = FileProvider::new(dir.path().join("keys"), Zeroizing::new([7u8; 32])).unwrap();
        assert!(matches!(
            other.key_encryption_key(&generated.reference).await,
            Err(Error::Unauthentic(_))
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            provider.key_encryption_key(&generated.reference).await,
            Err(Error::InsecurePermissions { .. })
        ));
        // A key opened as the wrong kind is refused.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(provider.hmac_key(&generated.reference).await.is_err());
        provider.destroy(&generated.reference).await.unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn world_readable_kek_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file-kek");
        load_or_create_file_kek(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(load_or_create_file_kek(&path).is_err());
    }
}
