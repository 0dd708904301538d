//! Signature `AlgorithmIdentifier`s, public-key checks and key identifiers.

use carimbo_kms::encoding::parse_spki;
use carimbo_kms::{HashAlgorithm, RsaPadding, SignatureAlgorithm};

use crate::PkiError;
use crate::der::{self, TAG_NULL, TAG_SEQUENCE};

const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_RSA_PKCS1_PREFIX: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
/// 1.2.840.113549.1.1.10 id-RSASSA-PSS.
const OID_RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// 1.2.840.113549.1.1.8 id-mgf1.
const OID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];

fn hash_oid(hash: HashAlgorithm) -> Vec<u8> {
    // 2.16.840.1.101.3.4.2.{1,2,3}
    let last = match hash {
        HashAlgorithm::Sha256 => 1,
        HashAlgorithm::Sha384 => 2,
        HashAlgorithm::Sha512 => 3,
    };
    vec![0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, last]
}

fn hash_length(hash: HashAlgorithm) -> u8 {
    match hash {
        HashAlgorithm::Sha256 => 32,
        HashAlgorithm::Sha384 => 48,
        HashAlgorithm::Sha512 => 64,
    }
}

/// The DER `AlgorithmIdentifier` a certificate or CRL signed with `algorithm` carries:
/// ecdsa-with-SHA256/384 (RFC 5758 §3.2, no parameters), id-Ed25519 (RFC 8410 §3),
/// sha{256,384,512}WithRSAEncryption with NULL (RFC 4055 §5), or id-RSASSA-PSS with
/// explicit parameters: the hash, MGF1 over the same hash, salt as long as the hash,
/// trailer field default (RFC 4055 §3.1; hash identifiers with NULL as §2.1 lists them).
pub fn signature_algorithm_identifier(algorithm: SignatureAlgorithm) -> Vec<u8> {
    let null = der::tlv(TAG_NULL, &[]);
    match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256 => der::sequence(&[&der::oid(OID_ECDSA_SHA256)]),
        SignatureAlgorithm::EcdsaP384Sha384 => der::sequence(&[&der::oid(OID_ECDSA_SHA384)]),
        SignatureAlgorithm::Ed25519 => der::sequence(&[&der::oid(OID_ED25519)]),
        SignatureAlgorithm::Rsa {
            padding: RsaPadding::Pkcs1v15,
            hash,
            ..
        } => {
            let mut oid = OID_RSA_PKCS1_PREFIX.to_vec();
            oid.push(match hash {
                HashAlgorithm::Sha256 => 0x0b,
                HashAlgorithm::Sha384 => 0x0c,
                HashAlgorithm::Sha512 => 0x0d,
            });
            der::sequence(&[&der::oid(&oid), &null])
        }
        SignatureAlgorithm::Rsa {
            padding: RsaPadding::Pss,
            hash,
            ..
        } => {
            let hash_identifier = der::sequence(&[&der::oid(&hash_oid(hash)), &null]);
            let mgf = der::sequence(&[&der::oid(OID_MGF1), &hash_identifier]);
            let salt = der::tlv(der::TAG_INTEGER, &[hash_length(hash)]);
            let parameters = der::sequence(&[
                &der::tlv(der::context_constructed(0), &hash_identifier),
                &der::tlv(der::context_constructed(1), &mgf),
                &der::tlv(der::context_constructed(2), &salt),
            ]);
            der::sequence(&[&der::oid(OID_RSASSA_PSS), &parameters])
        }
        // `SignatureAlgorithm` is non-exhaustive; an algorithm this crate does not know
        // gets an identifier no lint accepts, so nothing is ever signed with it.
        _ => der::tlv(TAG_SEQUENCE, &[]),
    }
}

/// Checks that `spki` (DER `SubjectPublicKeyInfo`) is a key of `algorithm` (type,
/// curve, RSA modulus size).
pub(crate) fn check_spki_fits(spki: &[u8], algorithm: SignatureAlgorithm) -> Result<(), PkiError> {
    let info =
        parse_spki(spki).map_err(|e| PkiError::InvalidTemplate(format!("public key: {e}")))?;
    if !info.matches(algorithm) {
        return Err(PkiError::InvalidTemplate(format!(
            "public key is not a {algorithm} key"
        )));
    }
    if let SignatureAlgorithm::Rsa { modulus, .. } = algorithm
        && info.rsa_modulus_bits() != Some(modulus.bits() as usize)
    {
        return Err(PkiError::InvalidTemplate(format!(
            "RSA public key is not {} bits",
            modulus.bits()
        )));
    }
    Ok(())
}

/// The signature algorithm families a public key could be used with, if it is one
/// Carimbo accepts (P-256, P-384, Ed25519, RSA 3072 or 4096).
pub(crate) fn accepted_key_kind(spki: &[u8]) -> Option<&'static str> {
    let info = parse_spki(spki).ok()?;
    SignatureAlgorithm::ALL.iter().find_map(|algorithm| {
        let fits = info.matches(*algorithm)
            && match algorithm {
                SignatureAlgorithm::Rsa { modulus, .. } => {
                    info.rsa_modulus_bits() == Some(modulus.bits() as usize)
                }
                _ => true,
            };
        fits.then_some(match algorithm {
            SignatureAlgorithm::EcdsaP256Sha256 => "P-256",
            SignatureAlgorithm::EcdsaP384Sha384 => "P-384",
            SignatureAlgorithm::Ed25519 => "Ed25519",
            _ => "RSA",
        })
    })
}

/// The subject key identifier Carimbo computes: RFC 7093 §2 method 1, the leftmost 160
/// bits of the SHA-256 hash of the subjectPublicKey BIT STRING value (without tag,
/// length and unused-bits octet).
pub fn key_identifier(spki: &[u8]) -> Result<Vec<u8>, PkiError> {
    let info =
        parse_spki(spki).map_err(|e| PkiError::InvalidTemplate(format!("public key: {e}")))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, info.key);
    Ok(digest.as_ref()[..20].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use carimbo_kms::RsaModulus;

    #[test]
    fn identifiers_match_the_well_known_encodings() {
        assert_eq!(
            hex::encode(signature_algorithm_identifier(
                SignatureAlgorithm::EcdsaP256Sha256
            )),
            "300a06082a8648ce3d040302"
        );
        assert_eq!(
            hex::encode(signature_algorithm_identifier(SignatureAlgorithm::Ed25519)),
            "300506032b6570"
        );
        let pkcs1 = SignatureAlgorithm::Rsa {
            modulus: RsaModulus::Bits3072,
            padding: RsaPadding::Pkcs1v15,
            hash: HashAlgorithm::Sha256,
        };
        assert_eq!(
            hex::encode(signature_algorithm_identifier(pkcs1)),
            "300d06092a864886f70d01010b0500"
        );
        // What OpenSSL writes for RSA-PSS with SHA-256, MGF1-SHA-256, salt 32.
        let pss = SignatureAlgorithm::Rsa {
            modulus: RsaModulus::Bits3072,
            padding: RsaPadding::Pss,
            hash: HashAlgorithm::Sha256,
        };
        assert_eq!(
            hex::encode(signature_algorithm_identifier(pss)),
            "304106092a864886f70d01010a3034a00f300d06096086480165030402010500\
             a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120"
        );
    }
}
