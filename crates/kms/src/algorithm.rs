//! Algorithm vocabulary: which signature algorithms a key may use, and which key
//! algorithms exist for each purpose. Weak choices are refused when parsed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Purpose, Result};

/// Hash function used by a signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// The digest of `message` with this hash.
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            Self::Sha256 => &aws_lc_rs::digest::SHA256,
            Self::Sha384 => &aws_lc_rs::digest::SHA384,
            Self::Sha512 => &aws_lc_rs::digest::SHA512,
        };
        aws_lc_rs::digest::digest(algorithm, message)
            .as_ref()
            .to_vec()
    }
}

/// RSA modulus sizes Carimbo accepts. Anything below 3072 bits is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RsaModulus {
    /// 3072-bit modulus.
    Bits3072,
    /// 4096-bit modulus.
    Bits4096,
}

impl RsaModulus {
    /// Modulus size in bits.
    pub fn bits(self) -> u32 {
        match self {
            Self::Bits3072 => 3072,
            Self::Bits4096 => 4096,
        }
    }
}

/// RSA signature padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RsaPadding {
    /// RSASSA-PKCS1-v1_5.
    Pkcs1v15,
    /// RSASSA-PSS with MGF1 over the same hash and a salt as long as the hash.
    Pss,
}

/// A signature algorithm: key type and size, padding and hash, fixed when the key is
/// created. Written as `ecdsa-p256-sha256`, `ecdsa-p384-sha384`,
/// `rsa-{3072|4096}-{pkcs1|pss}-{sha256|sha384|sha512}` or `ed25519`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// ECDSA on P-256 with SHA-256; signatures are DER `ECDSA-Sig-Value`.
    EcdsaP256Sha256,
    /// ECDSA on P-384 with SHA-384; signatures are DER `ECDSA-Sig-Value`.
    EcdsaP384Sha384,
    /// RSA with the given modulus, padding and hash.
    Rsa {
        /// Modulus size.
        modulus: RsaModulus,
        /// Padding scheme.
        padding: RsaPadding,
        /// Message hash.
        hash: HashAlgorithm,
    },
    /// Ed25519 (pure, no pre-hash).
    Ed25519,
}

impl SignatureAlgorithm {
    /// Every accepted algorithm, for help texts and conformance tests.
    pub const ALL: [SignatureAlgorithm; 15] = {
        use HashAlgorithm::*;
        use RsaModulus::*;
        use RsaPadding::*;
        [
            Self::EcdsaP256Sha256,
            Self::EcdsaP384Sha384,
            Self::Ed25519,
            Self::rsa(Bits3072, Pkcs1v15, Sha256),
            Self::rsa(Bits3072, Pkcs1v15, Sha384),
            Self::rsa(Bits3072, Pkcs1v15, Sha512),
            Self::rsa(Bits3072, Pss, Sha256),
            Self::rsa(Bits3072, Pss, Sha384),
            Self::rsa(Bits3072, Pss, Sha512),
            Self::rsa(Bits4096, Pkcs1v15, Sha256),
            Self::rsa(Bits4096, Pkcs1v15, Sha384),
            Self::rsa(Bits4096, Pkcs1v15, Sha512),
            Self::rsa(Bits4096, Pss, Sha256),
            Self::rsa(Bits4096, Pss, Sha384),
            Self::rsa(Bits4096, Pss, Sha512),
        ]
    };

    const fn rsa(modulus: RsaModulus, padding: RsaPadding, hash: HashAlgorithm) -> Self {
        Self::Rsa {
            modulus,
            padding,
            hash,
        }
    }

    /// The hash applied to the message, if the algorithm hashes (Ed25519 does not).
    pub fn hash(self) -> Option<HashAlgorithm> {
        match self {
            Self::EcdsaP256Sha256 => Some(HashAlgorithm::Sha256),
            Self::EcdsaP384Sha384 => Some(HashAlgorithm::Sha384),
            Self::Rsa { hash, .. } => Some(hash),
            Self::Ed25519 => None,
        }
    }

    /// The aws-lc-rs verification algorithm matching this signature algorithm.
    pub(crate) fn verification(self) -> &'static dyn aws_lc_rs::signature::VerificationAlgorithm {
        use aws_lc_rs::signature as sig;
        match self {
            Self::EcdsaP256Sha256 => &sig::ECDSA_P256_SHA256_ASN1,
            Self::EcdsaP384Sha384 => &sig::ECDSA_P384_SHA384_ASN1,
            Self::Ed25519 => &sig::ED25519,
            Self::Rsa { padding, hash, .. } => match (padding, hash) {
                (RsaPadding::Pkcs1v15, HashAlgorithm::Sha256) => &sig::RSA_PKCS1_2048_8192_SHA256,
                (RsaPadding::Pkcs1v15, HashAlgorithm::Sha384) => &sig::RSA_PKCS1_2048_8192_SHA384,
                (RsaPadding::Pkcs1v15, HashAlgorithm::Sha512) => &sig::RSA_PKCS1_2048_8192_SHA512,
                (RsaPadding::Pss, HashAlgorithm::Sha256) => &sig::RSA_PSS_2048_8192_SHA256,
                (RsaPadding::Pss, HashAlgorithm::Sha384) => &sig::RSA_PSS_2048_8192_SHA384,
                (RsaPadding::Pss, HashAlgorithm::Sha512) => &sig::RSA_PSS_2048_8192_SHA512,
            },
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcdsaP256Sha256 => f.write_str("ecdsa-p256-sha256"),
            Self::EcdsaP384Sha384 => f.write_str("ecdsa-p384-sha384"),
            Self::Ed25519 => f.write_str("ed25519"),
            Self::Rsa {
                modulus,
                padding,
                hash,
            } => {
                let padding = match padding {
                    RsaPadding::Pkcs1v15 => "pkcs1",
                    RsaPadding::Pss => "pss",
                };
                write!(f, "rsa-{}-{}-{}", modulus.bits(), padding, hash.as_str())
            }
        }
    }
}

impl FromStr for SignatureAlgorithm {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let refuse = |reason: &str| Error::UnsupportedAlgorithm {
            algorithm: text.to_owned(),
            reason: reason.to_owned(),
        };
        let lower = text.to_ascii_lowercase();
        if lower.contains("sha1") || lower.contains("md5") || lower.contains("sha224") {
            return Err(refuse("weak hash; use sha256 or stronger"));
        }
        match lower.as_str() {
            "ecdsa-p256-sha256" => return Ok(Self::EcdsaP256Sha256),
            "ecdsa-p384-sha384" => return Ok(Self::EcdsaP384Sha384),
            "ed25519" => return Ok(Self::Ed25519),
            _ => {}
        }
        let parts: Vec<&str> = lower.split('-').collect();
        match parts.as_slice() {
            ["rsa", bits, padding, hash] => {
                let modulus = match *bits {
                    "3072" => RsaModulus::Bits3072,
                    "4096" => RsaModulus::Bits4096,
                    other => {
                        return match other.parse::<u32>() {
                            Ok(n) if n < 3072 => {
                                Err(refuse("RSA keys below 3072 bits are refused"))
                            }
                            _ => Err(refuse("RSA modulus must be 3072 or 4096 bits")),
                        };
                    }
                };
                let padding = match *padding {
                    "pkcs1" => RsaPadding::Pkcs1v15,
                    "pss" => RsaPadding::Pss,
                    _ => return Err(refuse("RSA padding must be pkcs1 or pss")),
                };
                let hash = match *hash {
                    "sha256" => HashAlgorithm::Sha256,
                    "sha384" => HashAlgorithm::Sha384,
                    "sha512" => HashAlgorithm::Sha512,
                    _ => return Err(refuse("hash must be sha256, sha384 or sha512")),
                };
                Ok(Self::rsa(modulus, padding, hash))
            }
            ["ecdsa", ..] => Err(refuse(
                "ECDSA is accepted as ecdsa-p256-sha256 or ecdsa-p384-sha384 only",
            )),
            ["rsa", ..] => Err(refuse(
                "write RSA as rsa-{3072|4096}-{pkcs1|pss}-{sha256|sha384|sha512}",
            )),
            _ => Err(refuse(
                "expected ecdsa-p256-sha256, ecdsa-p384-sha384, ed25519 or rsa-{3072|4096}-{pkcs1|pss}-{sha256|sha384|sha512}",
            )),
        }
    }
}

/// What kind of key a key version is: a signature key, an AES-256-GCM key-encryption
/// key or an HMAC-SHA-256 key. Written as a signature algorithm name, `aes-256-gcm` or
/// `hmac-sha256`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// A signing key.
    Signature(SignatureAlgorithm),
    /// A 256-bit AES key used with AES-GCM to wrap data keys.
    Aes256Gcm,
    /// A 256-bit HMAC-SHA-256 key.
    HmacSha256,
}

impl KeyAlgorithm {
    /// The algorithm used when none is given for `purpose`.
    pub fn default_for(purpose: Purpose) -> Self {
        match purpose {
            Purpose::Sign => Self::Signature(SignatureAlgorithm::EcdsaP256Sha256),
            Purpose::PkiCa => Self::Signature(SignatureAlgorithm::EcdsaP384Sha384),
            Purpose::Envelope => Self::Aes256Gcm,
            Purpose::Hmac => Self::HmacSha256,
        }
    }

    /// Refuses an algorithm that does not fit `purpose` (an AES key for signing, ...).
    pub fn check_purpose(self, purpose: Purpose) -> Result<()> {
        let fits = matches!(
            (self, purpose),
            (Self::Signature(_), Purpose::Sign | Purpose::PkiCa)
                | (Self::Aes256Gcm, Purpose::Envelope)
                | (Self::HmacSha256, Purpose::Hmac)
        );
        if fits {
            Ok(())
        } else {
            Err(Error::UnsupportedAlgorithm {
                algorithm: self.to_string(),
                reason: format!("not usable for purpose {purpose}"),
            })
        }
    }

    /// The signature algorithm, when this is a signing key.
    pub fn signature(self) -> Option<SignatureAlgorithm> {
        match self {
            Self::Signature(algorithm) => Some(algorithm),
            _ => None,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signature(algorithm) => algorithm.fmt(f),
            Self::Aes256Gcm => f.write_str("aes-256-gcm"),
            Self::HmacSha256 => f.write_str("hmac-sha256"),
        }
    }
}

impl FromStr for KeyAlgorithm {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "aes-256-gcm" => Ok(Self::Aes256Gcm),
            "hmac-sha256" => Ok(Self::HmacSha256),
            "aes-128-gcm" | "aes-128" | "aes-192-gcm" => Err(Error::UnsupportedAlgorithm {
                algorithm: text.to_owned(),
                reason: "key-encryption keys are AES-256 only".to_owned(),
            }),
            _ => text.parse().map(Self::Signature),
        }
    }
}

macro_rules! serde_via_string {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: serde::Serializer>(
                &self,
                serializer: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(
                deserializer: D,
            ) -> std::result::Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use serde_via_string;

serde_via_string!(SignatureAlgorithm);
serde_via_string!(KeyAlgorithm);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_its_name() {
        for algorithm in SignatureAlgorithm::ALL {
            let name = algorithm.to_string();
            assert_eq!(name.parse::<SignatureAlgorithm>().unwrap(), algorithm);
        }
    }

    #[test]
    fn weak_algorithms_are_refused_with_a_reason() {
        for (name, reason) in [
            ("rsa-2048-pkcs1-sha256", "below 3072"),
            ("rsa-1024-pss-sha256", "below 3072"),
            ("rsa-8192-pss-sha256", "3072 or 4096"),
            ("ecdsa-p256-sha1", "weak hash"),
            ("rsa-3072-pkcs1-md5", "weak hash"),
            ("ecdsa-p192-sha256", "ecdsa-p256-sha256"),
            ("ecdsa-p256-sha384", "ecdsa-p256-sha256"),
            ("dsa", "expected"),
        ] {
            let error = name.parse::<SignatureAlgorithm>().unwrap_err().to_string();
            assert!(error.contains(reason), "{name}: {error}");
        }
        assert!("aes-128-gcm".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn algorithms_must_fit_the_purpose() {
        let aes = KeyAlgorithm::Aes256Gcm;
        assert!(aes.check_purpose(Purpose::Envelope).is_ok());
        assert!(aes.check_purpose(Purpose::Sign).is_err());
        let p256 = KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP256Sha256);
        assert!(p256.check_purpose(Purpose::PkiCa).is_ok());
        assert!(p256.check_purpose(Purpose::Hmac).is_err());
    }
}
