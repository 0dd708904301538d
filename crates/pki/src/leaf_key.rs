//! The subject keys a leaf may certify: ECDSA P-256 or P-384 (named curve,
//! uncompressed point, RFC 5480 §2), RSA of 3072 to 8192 bits with an odd public
//! exponent of at least 3 (RFC 3279 §2.3.1; CA/B BR §6.1.6), and Ed25519 (RFC 8410
//! §4) where the profile allows it. Weaker keys of an accepted family (RSA under 3072
//! bits, P-192, P-224) are "weak"; everything else (DSA, other curves, RSA-PSS-only
//! keys, X25519, Ed448, unknown algorithms) is "unsupported".

use crate::der::{self, Reader, TAG_BIT_STRING, TAG_INTEGER, TAG_NULL, TAG_OID, TAG_SEQUENCE};
use crate::{LeafError, LeafProfile};

/// 1.2.840.10045.2.1 id-ecPublicKey.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.113549.1.1.1 rsaEncryption.
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.2.840.113549.1.1.10 id-RSASSA-PSS (as a key algorithm: a PSS-restricted key).
const OID_RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// 1.3.101.112 id-Ed25519.
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Curves and algorithms named in refusals.
const NAMED: &[(&[u8], &str)] = &[
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01],
        "ECDSA P-192",
    ),
    (&[0x2b, 0x81, 0x04, 0x00, 0x21], "ECDSA P-224"),
    (&[0x2b, 0x81, 0x04, 0x00, 0x23], "ECDSA P-521"),
    (&[0x2b, 0x81, 0x04, 0x00, 0x0a], "ECDSA secp256k1"),
    (&[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01], "DSA"),
    (&[0x2b, 0x65, 0x71], "Ed448"),
    (&[0x2b, 0x65, 0x6e], "X25519"),
    (&[0x2b, 0x65, 0x6f], "X448"),
];

fn named(oid: &[u8]) -> String {
    NAMED.iter().find(|(known, _)| *known == oid).map_or_else(
        || format!("algorithm or curve {}", der::oid_to_string(oid)),
        |(_, name)| (*name).to_string(),
    )
}

/// The family of an accepted subject key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeafKeyKind {
    /// ECDSA on P-256.
    P256,
    /// ECDSA on P-384.
    P384,
    /// Ed25519.
    Ed25519,
    /// RSA with this many modulus bits.
    Rsa(usize),
}

/// An accepted subject key: its family and its subjectPublicKey bits (EC point,
/// PKCS#1 `RSAPublicKey`, Ed25519 key), as signature verification takes them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeafKey<'a> {
    pub kind: LeafKeyKind,
    pub key: &'a [u8],
}

impl LeafKey<'_> {
    /// `ECDSA P-256`, `ECDSA P-384`, `Ed25519` or `RSA 3072`.
    pub(crate) fn description(&self) -> String {
        match self.kind {
            LeafKeyKind::P256 => "ECDSA P-256".into(),
            LeafKeyKind::P384 => "ECDSA P-384".into(),
            LeafKeyKind::Ed25519 => "Ed25519".into(),
            LeafKeyKind::Rsa(bits) => format!("RSA {bits}"),
        }
    }
}

/// Smallest and largest accepted RSA moduli.
pub(crate) const RSA_MIN_BITS: usize = 3072;
pub(crate) const RSA_MAX_BITS: usize = 8192;

/// Significant bits of a DER INTEGER's content (an unsigned magnitude).
fn significant_bits(content: &[u8]) -> usize {
    match content.iter().position(|b| *b != 0) {
        Some(start) => (content.len() - start) * 8 - content[start].leading_zeros() as usize,
        None => 0,
    }
}

fn rsa_key(key: &[u8]) -> Result<LeafKeyKind, LeafError> {
    let unsupported = |why: &str| LeafError::UnsupportedKey {
        key: format!("RSA ({why})"),
    };
    let outer = der::parse_single(key, TAG_SEQUENCE).map_err(|e| unsupported(&e))?;
    let mut fields = Reader::new(outer.content);
    let modulus = fields.read(TAG_INTEGER).map_err(|e| unsupported(&e))?;
    let exponent = fields.read(TAG_INTEGER).map_err(|e| unsupported(&e))?;
    if !fields.is_empty() {
        return Err(unsupported("trailing fields in the public key"));
    }
    if modulus.content.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(unsupported("negative modulus"));
    }
    let bits = significant_bits(modulus.content);
    if bits < RSA_MIN_BITS {
        return Err(LeafError::WeakKey {
            key: format!("RSA {bits}"),
        });
    }
    if bits > RSA_MAX_BITS {
        return Err(LeafError::UnsupportedKey {
            key: format!("RSA {bits} (at most {RSA_MAX_BITS} bits)"),
        });
    }
    let odd = exponent.content.last().is_some_and(|b| b & 1 == 1);
    if exponent.content.first().is_some_and(|b| b & 0x80 != 0)
        || !odd
        || significant_bits(exponent.content) < 2
    {
        return Err(unsupported(
            "the public exponent must be odd and at least 3",
        ));
    }
    Ok(LeafKeyKind::Rsa(bits))
}

/// Checks `spki` (DER `SubjectPublicKeyInfo`) is a key `profile` accepts for a leaf.
pub(crate) fn leaf_key<'a>(
    spki: &'a [u8],
    profile: &LeafProfile,
) -> Result<LeafKey<'a>, LeafError> {
    let malformed = |why: String| LeafError::UnsupportedKey {
        key: format!("unreadable public key ({why})"),
    };
    let outer = der::parse_single(spki, TAG_SEQUENCE).map_err(malformed)?;
    let mut fields = Reader::new(outer.content);
    let algorithm = fields.read(TAG_SEQUENCE).map_err(malformed)?;
    let bits = fields.read(TAG_BIT_STRING).map_err(malformed)?;
    if !fields.is_empty() {
        return Err(malformed("trailing fields".into()));
    }
    let key = match bits.content.split_first() {
        Some((0, key)) => key,
        _ => return Err(malformed("BIT STRING with unused bits".into())),
    };
    let mut algorithm = Reader::new(algorithm.content);
    let oid = algorithm.read(TAG_OID).map_err(malformed)?.content;
    let parameters = algorithm.read_all().map_err(malformed)?;
    let kind = if oid == OID_EC_PUBLIC_KEY {
        let curve = match parameters.as_slice() {
            [curve] if curve.tag == TAG_OID => curve.content,
            _ => {
                return Err(LeafError::UnsupportedKey {
                    key: "ECDSA with explicit curve parameters (named curves only)".into(),
                });
            }
        };
        let (kind, point_length) = if curve == carimbo_kms::encoding::OID_P256 {
            (LeafKeyKind::P256, 65)
        } else if curve == carimbo_kms::encoding::OID_P384 {
            (LeafKeyKind::P384, 97)
        } else {
            let name = named(curve);
            return Err(if name.contains("P-192") || name.contains("P-224") {
                LeafError::WeakKey { key: name }
            } else {
                LeafError::UnsupportedKey { key: name }
            });
        };
        if key.len() != point_length || key.first() != Some(&0x04) {
            return Err(LeafError::UnsupportedKey {
                key: "ECDSA key that is not an uncompressed point".into(),
            });
        }
        kind
    } else if oid == OID_RSA_ENCRYPTION {
        if !matches!(parameters.as_slice(), [null] if null.tag == TAG_NULL && null.content.is_empty())
        {
            return Err(LeafError::UnsupportedKey {
                key: "RSA without NULL parameters".into(),
            });
        }
        rsa_key(key)?
    } else if oid == OID_RSASSA_PSS {
        return Err(LeafError::UnsupportedKey {
            key: "RSASSA-PSS-restricted RSA key (use an rsaEncryption key)".into(),
        });
    } else if oid == OID_ED25519 {
        if !parameters.is_empty() || key.len() != 32 {
            return Err(malformed(
                "Ed25519 key is not 32 bytes without parameters".into(),
            ));
        }
        if !profile.allow_ed25519 {
            return Err(LeafError::UnsupportedKey {
                key: format!("Ed25519 (not allowed by the {} profile)", profile.kind),
            });
        }
        LeafKeyKind::Ed25519
    } else {
        return Err(LeafError::UnsupportedKey { key: named(oid) });
    };
    Ok(LeafKey { kind, key })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LeafKind;
    use carimbo_kms::encoding::{OID_P256, ec_spki, ed25519_spki, rsa_spki};

    fn profile() -> LeafProfile {
        LeafProfile::defaults(LeafKind::Server)
    }

    fn code(spki: &[u8], profile: &LeafProfile) -> &'static str {
        match leaf_key(spki, profile) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    fn rsa(bits: usize, exponent: &[u8]) -> Vec<u8> {
        let mut modulus = vec![0xffu8; bits / 8];
        modulus[bits / 8 - 1] = 0xf1;
        rsa_spki(&modulus, exponent)
    }

    #[test]
    fn accepted_keys_are_described() {
        let mut point = vec![0x04];
        point.extend_from_slice(&[7; 64]);
        let describe =
            |spki: &[u8], profile: &LeafProfile| leaf_key(spki, profile).unwrap().description();
        assert_eq!(
            describe(&ec_spki(OID_P256, &point), &profile()),
            "ECDSA P-256"
        );
        assert_eq!(describe(&rsa(3072, &[1, 0, 1]), &profile()), "RSA 3072");
        assert_eq!(code(&rsa(8192, &[1, 0, 1]), &profile()), "ok");
        let mut allowed = profile();
        allowed.allow_ed25519 = true;
        assert_eq!(describe(&ed25519_spki(&[9; 32]), &allowed), "Ed25519");
    }

    #[test]
    fn weak_and_unsupported_keys_are_refused() {
        assert_eq!(code(&rsa(2048, &[1, 0, 1]), &profile()), "weak_key");
        assert_eq!(code(&rsa(1024, &[1, 0, 1]), &profile()), "weak_key");
        assert_eq!(code(&rsa(16384, &[1, 0, 1]), &profile()), "unsupported_key");
        assert_eq!(code(&rsa(3072, &[1, 0, 0]), &profile()), "unsupported_key");
        assert_eq!(code(&rsa(3072, &[1]), &profile()), "unsupported_key");
        assert_eq!(code(&ed25519_spki(&[9; 32]), &profile()), "unsupported_key");
        let p192 = ec_spki(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x01], &[4; 49]);
        assert_eq!(code(&p192, &profile()), "weak_key");
        let p521 = ec_spki(&[0x2b, 0x81, 0x04, 0x00, 0x23], &[4; 133]);
        let error = leaf_key(&p521, &profile()).unwrap_err();
        assert_eq!(error.code(), "unsupported_key");
        assert!(error.to_string().contains("P-521"), "{error}");
        let compressed = ec_spki(OID_P256, &[2; 33]);
        assert_eq!(code(&compressed, &profile()), "unsupported_key");
        assert_eq!(code(b"garbage", &profile()), "unsupported_key");
    }
}
