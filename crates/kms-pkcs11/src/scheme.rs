//! Which PKCS#11 mechanisms carry out Carimbo's algorithms.

use carimbo_kms::encoding::{OID_ED25519, OID_P256, OID_P384};
use carimbo_kms::{HashAlgorithm, RsaModulus, RsaPadding, SignatureAlgorithm};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::KeyType;

use crate::Pkcs11Error;

/// A NIST curve for ECDSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
}

impl Curve {
    /// DER of the curve's OID, without tag and length.
    pub(crate) fn oid(self) -> &'static [u8] {
        match self {
            Self::P256 => OID_P256,
            Self::P384 => OID_P384,
        }
    }

    /// Length of an uncompressed point (`04‖x‖y`).
    pub(crate) fn point_len(self) -> usize {
        match self {
            Self::P256 => 65,
            Self::P384 => 97,
        }
    }

    /// Length of a raw `r‖s` signature.
    pub(crate) fn signature_len(self) -> usize {
        self.point_len() - 1
    }
}

/// A signature algorithm as the token sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// ECDSA: hashed on the host, signed with `CKM_ECDSA`.
    Ecdsa(Curve, HashAlgorithm),
    /// RSA with a hash-and-sign mechanism (`CKM_SHA*_RSA_PKCS[_PSS]`).
    Rsa {
        modulus: RsaModulus,
        padding: RsaPadding,
        hash: HashAlgorithm,
    },
    /// Pure Ed25519 with `CKM_EDDSA`.
    Ed25519,
}

impl Scheme {
    /// The scheme of `algorithm`.
    pub(crate) fn of(algorithm: SignatureAlgorithm) -> Result<Self, Pkcs11Error> {
        match algorithm {
            SignatureAlgorithm::EcdsaP256Sha256 => {
                Ok(Self::Ecdsa(Curve::P256, HashAlgorithm::Sha256))
            }
            SignatureAlgorithm::EcdsaP384Sha384 => {
                Ok(Self::Ecdsa(Curve::P384, HashAlgorithm::Sha384))
            }
            SignatureAlgorithm::Ed25519 => Ok(Self::Ed25519),
            SignatureAlgorithm::Rsa {
                modulus,
                padding,
                hash,
            } => Ok(Self::Rsa {
                modulus,
                padding,
                hash,
            }),
            other => Err(Pkcs11Error::InvalidInput(format!(
                "signature algorithm {other} is not implemented by the PKCS#11 provider"
            ))),
        }
    }

    /// The mechanism that generates key pairs for this scheme.
    pub(crate) fn generation_mechanism(self) -> MechanismType {
        match self {
            Self::Ecdsa(..) => MechanismType::ECC_KEY_PAIR_GEN,
            Self::Rsa { .. } => MechanismType::RSA_PKCS_KEY_PAIR_GEN,
            Self::Ed25519 => MechanismType::ECC_EDWARDS_KEY_PAIR_GEN,
        }
    }

    /// The key type of the scheme's keys.
    pub(crate) fn key_type(self) -> KeyType {
        match self {
            Self::Ecdsa(..) => KeyType::EC,
            Self::Rsa { .. } => KeyType::RSA,
            Self::Ed25519 => KeyType::EC_EDWARDS,
        }
    }

    /// The mechanism that signs.
    pub(crate) fn signing_mechanism_type(self) -> MechanismType {
        self.signing_mechanism().mechanism_type()
    }

    /// The signing mechanism with its parameters.
    pub(crate) fn signing_mechanism(self) -> Mechanism<'static> {
        use HashAlgorithm::*;
        match self {
            Self::Ecdsa(..) => Mechanism::Ecdsa,
            Self::Ed25519 => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            Self::Rsa {
                padding: RsaPadding::Pkcs1v15,
                hash,
                ..
            } => match hash {
                Sha256 => Mechanism::Sha256RsaPkcs,
                Sha384 => Mechanism::Sha384RsaPkcs,
                Sha512 => Mechanism::Sha512RsaPkcs,
            },
            Self::Rsa {
                padding: RsaPadding::Pss,
                hash,
                ..
            } => {
                // MGF1 over the message hash, salt as long as the hash (RFC 4055 defaults
                // for each hash, what X.509 verifiers expect).
                let (hash_alg, mgf, salt) = match hash {
                    Sha256 => (MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32u64),
                    Sha384 => (MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48),
                    Sha512 => (MechanismType::SHA512, PkcsMgfType::MGF1_SHA512, 64),
                };
                let params = PkcsPssParams {
                    hash_alg,
                    mgf,
                    s_len: salt.into(),
                };
                match hash {
                    Sha256 => Mechanism::Sha256RsaPkcsPss(params),
                    Sha384 => Mechanism::Sha384RsaPkcsPss(params),
                    Sha512 => Mechanism::Sha512RsaPkcsPss(params),
                }
            }
        }
    }
}

/// DER of the named-curve `CKA_EC_PARAMS` for an OID (tag, length, content).
pub(crate) fn oid_der(oid: &[u8]) -> Vec<u8> {
    let mut der = Vec::with_capacity(oid.len() + 2);
    der.push(0x06);
    // Curve OIDs are short: one length byte suffices.
    der.push(oid.len() as u8);
    der.extend_from_slice(oid);
    der
}

/// `CKA_EC_PARAMS` values that denote Ed25519: the OID (RFC 8410) or the
/// PrintableString `edwards25519` some tokens use.
pub(crate) fn is_ed25519_params(params: &[u8]) -> bool {
    params == oid_der(OID_ED25519).as_slice() || params == b"\x13\x0cedwards25519"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_has_a_scheme_and_mechanisms() {
        for algorithm in SignatureAlgorithm::ALL {
            let scheme = Scheme::of(algorithm).unwrap();
            let signing = scheme.signing_mechanism_type().to_string();
            let expected = match algorithm {
                SignatureAlgorithm::EcdsaP256Sha256 | SignatureAlgorithm::EcdsaP384Sha384 => {
                    "CKM_ECDSA".to_owned()
                }
                SignatureAlgorithm::Ed25519 => "CKM_EDDSA".to_owned(),
                SignatureAlgorithm::Rsa { padding, hash, .. } => {
                    let hash = match hash {
                        HashAlgorithm::Sha256 => "SHA256",
                        HashAlgorithm::Sha384 => "SHA384",
                        HashAlgorithm::Sha512 => "SHA512",
                    };
                    match padding {
                        RsaPadding::Pkcs1v15 => format!("CKM_{hash}_RSA_PKCS"),
                        RsaPadding::Pss => format!("CKM_{hash}_RSA_PKCS_PSS"),
                    }
                }
                _ => unreachable!(),
            };
            assert_eq!(signing, expected, "{algorithm}");
        }
    }

    #[test]
    fn curve_parameters_are_der_oids() {
        assert_eq!(
            oid_der(OID_P256),
            [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]
        );
        assert!(is_ed25519_params(&[0x06, 0x03, 0x2b, 0x65, 0x70]));
        assert!(!is_ed25519_params(&oid_der(OID_P256)));
    }
}
