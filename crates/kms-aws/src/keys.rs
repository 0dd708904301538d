//! The key handles the provider hands out: signing keys, KEKs and HMAC keys that call
//! AWS KMS for every use.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    EncryptionAlgorithmSpec, KeySpec, KeyUsageType, MacAlgorithmSpec, MessageType,
    SigningAlgorithmSpec,
};
use carimbo_kms::{
    DataEncryptionKey, HashAlgorithm, HmacKey, KeyAlgorithm, KeyEncryptionKey, RsaModulus,
    RsaPadding, SignatureAlgorithm, SigningKey, WrapAlgorithm, WrappedKey, verify_signature,
};
use zeroize::Zeroizing;

use crate::AwsKmsError;

/// Largest message AWS KMS accepts in `Sign` (as `RAW`) and `GenerateMac`.
pub const MAX_MESSAGE_LEN: usize = 4096;

/// The encryption-context key under which a wrap's associated data is bound (as the
/// hex SHA-256 of the associated data).
pub const AAD_CONTEXT_KEY: &str = "carimbo:aad-sha256";

/// The AWS key spec and key usage of a Carimbo key algorithm.
pub(crate) fn key_spec(algorithm: KeyAlgorithm) -> Result<(KeySpec, KeyUsageType), AwsKmsError> {
    match algorithm {
        KeyAlgorithm::Signature(algorithm) => {
            Ok((signing_spec(algorithm)?.0, KeyUsageType::SignVerify))
        }
        KeyAlgorithm::Aes256Gcm => Ok((KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt)),
        KeyAlgorithm::HmacSha256 => Ok((KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac)),
        other => Err(AwsKmsError::Unsupported(format!(
            "key algorithm {other} is not implemented by the AWS KMS provider"
        ))),
    }
}

/// The AWS key spec and signing algorithm of a Carimbo signature algorithm.
pub(crate) fn signing_spec(
    algorithm: SignatureAlgorithm,
) -> Result<(KeySpec, SigningAlgorithmSpec), AwsKmsError> {
    use HashAlgorithm::{Sha256, Sha384, Sha512};
    use RsaPadding::{Pkcs1v15, Pss};
    use SigningAlgorithmSpec as S;
    Ok(match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => (KeySpec::EccNistP256, S::EcdsaSha256),
        SignatureAlgorithm::EcdsaP384Sha384 => (KeySpec::EccNistP384, S::EcdsaSha384),
        SignatureAlgorithm::Ed25519 => (KeySpec::EccNistEdwards25519, S::Ed25519Sha512),
        SignatureAlgorithm::Rsa {
            modulus,
            padding,
            hash,
        } => {
            let key_spec = match modulus {
                RsaModulus::Bits3072 => KeySpec::Rsa3072,
                RsaModulus::Bits4096 => KeySpec::Rsa4096,
            };
            let signing = match (padding, hash) {
                (Pkcs1v15, Sha256) => S::RsassaPkcs1V15Sha256,
                (Pkcs1v15, Sha384) => S::RsassaPkcs1V15Sha384,
                (Pkcs1v15, Sha512) => S::RsassaPkcs1V15Sha512,
                (Pss, Sha256) => S::RsassaPssSha256,
                (Pss, Sha384) => S::RsassaPssSha384,
                (Pss, Sha512) => S::RsassaPssSha512,
            };
            (key_spec, signing)
        }
        other => {
            return Err(AwsKmsError::Unsupported(format!(
                "signature algorithm {other} is not implemented by the AWS KMS provider"
            )));
        }
    })
}

/// What to send to `Sign` for `message`: the message itself (`RAW`) when AWS takes it
/// whole (1 to 4096 bytes), otherwise its digest under the algorithm's hash
/// (`DIGEST`). Ed25519 signs the message itself only (no pre-hash variant is used).
pub(crate) fn sign_input(
    algorithm: SignatureAlgorithm,
    message: &[u8],
) -> Result<(MessageType, Cow<'_, [u8]>), AwsKmsError> {
    if (1..=MAX_MESSAGE_LEN).contains(&message.len()) {
        return Ok((MessageType::Raw, Cow::Borrowed(message)));
    }
    match algorithm.hash() {
        Some(hash) => Ok((MessageType::Digest, Cow::Owned(hash.digest(message)))),
        None => Err(AwsKmsError::Unsupported(format!(
            "{algorithm} signatures through AWS KMS cover messages of 1 to {MAX_MESSAGE_LEN} bytes, not {}",
            message.len()
        ))),
    }
}

/// A signing key in AWS KMS. Every signature is made by KMS `Sign` and checked against
/// the public key before it is returned.
pub(crate) struct AwsSigningKey {
    pub(crate) client: Client,
    pub(crate) arn: String,
    pub(crate) algorithm: SignatureAlgorithm,
    pub(crate) signing_algorithm: SigningAlgorithmSpec,
    pub(crate) public_key: Vec<u8>,
}

impl fmt::Debug for AwsSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSigningKey")
            .field("arn", &self.arn)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl AwsSigningKey {
    /// The KMS `Sign` call, without the local check of the result.
    pub(crate) async fn kms_sign(&self, message: &[u8]) -> Result<Vec<u8>, AwsKmsError> {
        let (message_type, input) = sign_input(self.algorithm, message)?;
        let output = self
            .client
            .sign()
            .key_id(&self.arn)
            .message(Blob::new(input.into_owned()))
            .message_type(message_type)
            .signing_algorithm(self.signing_algorithm.clone())
            .send()
            .await
            .map_err(|e| AwsKmsError::from_sdk("Sign", &self.arn, e))?;
        output
            .signature
            .map(Blob::into_inner)
            .ok_or_else(|| AwsKmsError::IncompleteResponse {
                operation: "Sign",
                key: self.arn.clone(),
                field: "Signature",
            })
    }
}

#[async_trait]
impl SigningKey for AwsSigningKey {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn public_key_der(&self) -> &[u8] {
        &self.public_key
    }

    async fn sign(&self, message: &[u8]) -> carimbo_kms::Result<Vec<u8>> {
        let signature = self.kms_sign(message).await?;
        // AWS returns DER ECDSA-Sig-Value for ECDSA and the raw signature for RSA and
        // Ed25519, the encodings the trait promises; a signature that does not verify
        // (wrong key, a digest the service hashed again) never leaves this function.
        verify_signature(self.algorithm, &self.public_key, message, &signature).map_err(|e| {
            AwsKmsError::InvalidKey {
                key: self.arn.clone(),
                reason: format!("the signature AWS KMS returned does not verify ({e})"),
            }
        })?;
        Ok(signature)
    }
}

/// The AWS encryption context that binds `aad`: its SHA-256, in hex, under
/// [`AAD_CONTEXT_KEY`]. A digest rather than the bytes themselves: the associated data
/// can exceed the 8 KiB context limit, and AWS logs contexts in CloudTrail in clear,
/// where the caller's context values must not appear.
pub(crate) fn encryption_context(aad: &[u8]) -> Result<HashMap<String, String>, AwsKmsError> {
    if aad.is_empty() {
        return Err(AwsKmsError::InvalidInput(
            "a key wrap needs non-empty associated data".into(),
        ));
    }
    let digest = HashAlgorithm::Sha256.digest(aad);
    Ok(HashMap::from([(
        AAD_CONTEXT_KEY.to_owned(),
        hex::encode(digest),
    )]))
}

/// A symmetric AWS KMS key that wraps data keys with `Encrypt` and unwraps them with
/// `Decrypt`, the associated data bound as the encryption context.
pub(crate) struct AwsKek {
    pub(crate) client: Client,
    pub(crate) arn: String,
}

impl fmt::Debug for AwsKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKek")
            .field("arn", &self.arn)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl KeyEncryptionKey for AwsKek {
    async fn wrap(&self, key: &DataEncryptionKey, aad: &[u8]) -> carimbo_kms::Result<WrappedKey> {
        let context = encryption_context(aad)?;
        let output = self
            .client
            .encrypt()
            .key_id(&self.arn)
            .plaintext(Blob::new(key.expose().to_vec()))
            .set_encryption_context(Some(context))
            .encryption_algorithm(EncryptionAlgorithmSpec::SymmetricDefault)
            .send()
            .await
            .map_err(|e| AwsKmsError::from_sdk("Encrypt", &self.arn, e))?;
        let ciphertext = output
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| AwsKmsError::IncompleteResponse {
                operation: "Encrypt",
                key: self.arn.clone(),
                field: "CiphertextBlob",
            })?;
        Ok(WrappedKey {
            algorithm: WrapAlgorithm::ProviderAead,
            nonce: Vec::new(),
            ciphertext,
        })
    }

    async fn unwrap(
        &self,
        wrapped: &WrappedKey,
        aad: &[u8],
    ) -> carimbo_kms::Result<DataEncryptionKey> {
        if wrapped.algorithm != WrapAlgorithm::ProviderAead || !wrapped.nonce.is_empty() {
            return Err(carimbo_kms::Error::Unauthentic(format!(
                "wrapped key is {:?}, not an AWS KMS ciphertext",
                wrapped.algorithm
            )));
        }
        let context = encryption_context(aad)?;
        let output = self
            .client
            .decrypt()
            .key_id(&self.arn)
            .ciphertext_blob(Blob::new(wrapped.ciphertext.clone()))
            .set_encryption_context(Some(context))
            .encryption_algorithm(EncryptionAlgorithmSpec::SymmetricDefault)
            .send()
            .await
            .map_err(|e| AwsKmsError::from_sdk("Decrypt", &self.arn, e))?;
        if let Some(used) = output.key_id.as_deref()
            && used != self.arn
        {
            return Err(carimbo_kms::Error::Unauthentic(format!(
                "AWS KMS decrypted with key {used}, not {}",
                self.arn
            )));
        }
        let plaintext = output
            .plaintext
            .map(|blob| Zeroizing::new(blob.into_inner()))
            .ok_or_else(|| AwsKmsError::IncompleteResponse {
                operation: "Decrypt",
                key: self.arn.clone(),
                field: "Plaintext",
            })?;
        DataEncryptionKey::from_slice(&plaintext)
    }
}

/// An HMAC key in AWS KMS (`HMAC_256`), used through `GenerateMac`.
pub(crate) struct AwsHmacKey {
    pub(crate) client: Client,
    pub(crate) arn: String,
}

impl fmt::Debug for AwsHmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsHmacKey")
            .field("arn", &self.arn)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl HmacKey for AwsHmacKey {
    async fn mac(&self, message: &[u8]) -> carimbo_kms::Result<Vec<u8>> {
        if !(1..=MAX_MESSAGE_LEN).contains(&message.len()) {
            return Err(AwsKmsError::Unsupported(format!(
                "AWS KMS computes HMACs of messages of 1 to {MAX_MESSAGE_LEN} bytes, not {}",
                message.len()
            ))
            .into());
        }
        let output = self
            .client
            .generate_mac()
            .key_id(&self.arn)
            .message(Blob::new(message.to_vec()))
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .send()
            .await
            .map_err(|e| AwsKmsError::from_sdk("GenerateMac", &self.arn, e))?;
        let mac =
            output
                .mac
                .map(Blob::into_inner)
                .ok_or_else(|| AwsKmsError::IncompleteResponse {
                    operation: "GenerateMac",
                    key: self.arn.clone(),
                    field: "Mac",
                })?;
        if mac.len() != 32 {
            return Err(AwsKmsError::InvalidKey {
                key: self.arn.clone(),
                reason: format!("returned a {}-byte MAC, not HMAC-SHA-256", mac.len()),
            }
            .into());
        }
        Ok(mac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_carimbo_algorithm_has_an_aws_key_spec() {
        for algorithm in SignatureAlgorithm::ALL {
            let (spec, usage) = key_spec(KeyAlgorithm::Signature(algorithm)).unwrap();
            assert_eq!(usage, KeyUsageType::SignVerify);
            let (_, signing) = signing_spec(algorithm).unwrap();
            let name = algorithm.to_string();
            let expected_spec = if name.starts_with("rsa-3072") {
                KeySpec::Rsa3072
            } else if name.starts_with("rsa-4096") {
                KeySpec::Rsa4096
            } else if name.starts_with("ecdsa-p256") {
                KeySpec::EccNistP256
            } else if name.starts_with("ecdsa-p384") {
                KeySpec::EccNistP384
            } else {
                KeySpec::EccNistEdwards25519
            };
            assert_eq!(spec, expected_spec, "{name}");
            // RSA_3072/4096 and the padding and hash spelled out in AWS's name.
            let aws = signing.as_str().to_ascii_lowercase();
            if let Some(hash) = algorithm.hash() {
                let bits = match hash {
                    HashAlgorithm::Sha256 => "256",
                    HashAlgorithm::Sha384 => "384",
                    HashAlgorithm::Sha512 => "512",
                };
                assert!(aws.ends_with(bits), "{name} -> {aws}");
            }
            if name.contains("-pss-") {
                assert!(aws.starts_with("rsassa_pss"), "{name} -> {aws}");
            }
            if name.contains("-pkcs1-") {
                assert!(aws.starts_with("rsassa_pkcs1_v1_5"), "{name} -> {aws}");
            }
        }
        assert_eq!(
            key_spec(KeyAlgorithm::Aes256Gcm).unwrap(),
            (KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt)
        );
        assert_eq!(
            key_spec(KeyAlgorithm::HmacSha256).unwrap(),
            (KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac)
        );
    }

    #[test]
    fn short_messages_go_raw_and_long_ones_as_their_digest() {
        let p384 = SignatureAlgorithm::EcdsaP384Sha384;
        let (kind, input) = sign_input(p384, b"tbs").unwrap();
        assert_eq!(kind, MessageType::Raw);
        assert_eq!(&*input, b"tbs");
        let limit = vec![7u8; MAX_MESSAGE_LEN];
        assert_eq!(sign_input(p384, &limit).unwrap().0, MessageType::Raw);

        let long = vec![7u8; MAX_MESSAGE_LEN + 1];
        let (kind, input) = sign_input(p384, &long).unwrap();
        assert_eq!(kind, MessageType::Digest);
        assert_eq!(&*input, HashAlgorithm::Sha384.digest(&long).as_slice());
        let rsa: SignatureAlgorithm = "rsa-3072-pss-sha512".parse().unwrap();
        let (kind, input) = sign_input(rsa, &long).unwrap();
        assert_eq!(kind, MessageType::Digest);
        assert_eq!(input.len(), 64);
        // AWS refuses an empty RAW message; its digest is signed instead.
        let (kind, input) = sign_input(SignatureAlgorithm::EcdsaP256Sha256, b"").unwrap();
        assert_eq!(kind, MessageType::Digest);
        assert_eq!(&*input, HashAlgorithm::Sha256.digest(b"").as_slice());
        // Ed25519 has no digest path here.
        let error = sign_input(SignatureAlgorithm::Ed25519, &long).unwrap_err();
        assert!(error.to_string().contains("4096"), "{error}");
    }

    #[test]
    fn the_context_binds_a_digest_of_the_associated_data() {
        let context = encryption_context(b"header and context").unwrap();
        assert_eq!(context.len(), 1);
        let value = &context[AAD_CONTEXT_KEY];
        assert_eq!(value.len(), 64);
        assert_ne!(
            encryption_context(b"header and context!").unwrap()[AAD_CONTEXT_KEY],
            *value
        );
        assert!(encryption_context(b"").is_err());
    }
}
