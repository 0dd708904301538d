//! The few DER structures key providers need: `SubjectPublicKeyInfo` for EC, RSA and
//! Ed25519 public keys, and the conversion of raw ECDSA `r‖s` signatures (what PKCS#11
//! returns) into the DER `ECDSA-Sig-Value` X.509 wants.

use crate::{Error, Result, SignatureAlgorithm};

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

/// DER of OID 1.2.840.10045.2.1 (id-ecPublicKey), without tag and length.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER of OID 1.2.840.10045.3.1.7 (prime256v1 / P-256).
pub const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of OID 1.3.132.0.34 (secp384r1 / P-384).
pub const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER of OID 1.2.840.113549.1.1.1 (rsaEncryption).
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// DER of OID 1.3.101.112 (id-Ed25519).
pub const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn push_length(out: &mut Vec<u8>, length: usize) {
    if length < 0x80 {
        out.push(length as u8);
    } else {
        let bytes = length.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER holding the unsigned big-endian `magnitude`.
fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed = match magnitude.iter().position(|b| *b != 0) {
        Some(start) => &magnitude[start..],
        None => &[0u8][..],
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(TAG_INTEGER, &content)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    tlv(TAG_BIT_STRING, &content)
}

fn spki(algorithm_identifier: &[u8], public_key: &[u8]) -> Vec<u8> {
    let mut content = tlv(TAG_SEQUENCE, algorithm_identifier);
    content.extend_from_slice(&bit_string(public_key));
    tlv(TAG_SEQUENCE, &content)
}

/// `SubjectPublicKeyInfo` for an EC key on the curve with DER OID `curve_oid`
/// ([`OID_P256`] or [`OID_P384`]) and uncompressed point `point` (`04‖x‖y`).
pub fn ec_spki(curve_oid: &[u8], point: &[u8]) -> Vec<u8> {
    let mut algorithm = tlv(TAG_OID, OID_EC_PUBLIC_KEY);
    algorithm.extend_from_slice(&tlv(TAG_OID, curve_oid));
    spki(&algorithm, point)
}

/// `SubjectPublicKeyInfo` for an RSA key from its big-endian modulus and exponent.
pub fn rsa_spki(modulus: &[u8], public_exponent: &[u8]) -> Vec<u8> {
    let mut key = unsigned_integer(modulus);
    key.extend_from_slice(&unsigned_integer(public_exponent));
    rsa_spki_from_pkcs1(&tlv(TAG_SEQUENCE, &key))
}

/// `SubjectPublicKeyInfo` for an RSA key given as a DER PKCS#1 `RSAPublicKey`.
pub fn rsa_spki_from_pkcs1(rsa_public_key: &[u8]) -> Vec<u8> {
    let mut algorithm = tlv(TAG_OID, OID_RSA_ENCRYPTION);
    algorithm.extend_from_slice(&tlv(TAG_NULL, &[]));
    spki(&algorithm, rsa_public_key)
}

/// `SubjectPublicKeyInfo` for a 32-byte Ed25519 public key.
pub fn ed25519_spki(public_key: &[u8]) -> Vec<u8> {
    spki(&tlv(TAG_OID, OID_ED25519), public_key)
}

/// Unwraps a DER OCTET STRING (as PKCS#11 returns `CKA_EC_POINT`); returns the input
/// unchanged when it is not one.
pub fn unwrap_octet_string(bytes: &[u8]) -> Vec<u8> {
    let mut reader = Reader::new(bytes);
    match reader.read(TAG_OCTET_STRING) {
        Ok(inner) if reader.is_empty() => inner.to_vec(),
        _ => bytes.to_vec(),
    }
}

/// Converts a raw ECDSA signature `r‖s` (each half `field_len` bytes) to DER
/// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`.
pub fn ecdsa_raw_to_der(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) || raw.len() > 132 {
        return Err(Error::Crypto(format!(
            "raw ECDSA signature of {} bytes is not r||s",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut content = unsigned_integer(r);
    content.extend_from_slice(&unsigned_integer(s));
    Ok(tlv(TAG_SEQUENCE, &content))
}

/// The parts of a `SubjectPublicKeyInfo` needed to check it against an algorithm.
#[derive(Debug)]
pub struct PublicKeyInfo<'a> {
    /// Algorithm OID (DER content, without tag and length).
    pub algorithm: &'a [u8],
    /// Curve OID for EC keys.
    pub curve: Option<&'a [u8]>,
    /// The subjectPublicKey bits: EC point, PKCS#1 `RSAPublicKey`, or Ed25519 key.
    pub key: &'a [u8],
}

/// Parses a DER `SubjectPublicKeyInfo`.
pub fn parse_spki(der: &[u8]) -> Result<PublicKeyInfo<'_>> {
    let bad = |what: &str| Error::Malformed(format!("public key: {what}"));
    let mut outer = Reader::new(der);
    let mut spki = Reader::new(
        outer
            .read(TAG_SEQUENCE)
            .map_err(|_| bad("not a SEQUENCE"))?,
    );
    if !outer.is_empty() {
        return Err(bad("trailing bytes"));
    }
    let mut algorithm_id = Reader::new(
        spki.read(TAG_SEQUENCE)
            .map_err(|_| bad("no algorithm identifier"))?,
    );
    let algorithm = algorithm_id
        .read(TAG_OID)
        .map_err(|_| bad("no algorithm OID"))?;
    let curve = if algorithm == OID_EC_PUBLIC_KEY {
        Some(
            algorithm_id
                .read(TAG_OID)
                .map_err(|_| bad("no curve OID"))?,
        )
    } else {
        None
    };
    let bits = spki
        .read(TAG_BIT_STRING)
        .map_err(|_| bad("no public key BIT STRING"))?;
    if !spki.is_empty() {
        return Err(bad("trailing bytes"));
    }
    match bits.split_first() {
        Some((0, key)) => Ok(PublicKeyInfo {
            algorithm,
            curve,
            key,
        }),
        _ => Err(bad("BIT STRING with unused bits")),
    }
}

impl PublicKeyInfo<'_> {
    /// Whether this public key can be the key of `algorithm` (type and curve; RSA size is
    /// checked by the verifier).
    pub fn matches(&self, algorithm: SignatureAlgorithm) -> bool {
        match algorithm {
            SignatureAlgorithm::EcdsaP256Sha256 => self.curve == Some(OID_P256),
            SignatureAlgorithm::EcdsaP384Sha384 => self.curve == Some(OID_P384),
            SignatureAlgorithm::Ed25519 => self.algorithm == OID_ED25519 && self.key.len() == 32,
            SignatureAlgorithm::Rsa { .. } => self.algorithm == OID_RSA_ENCRYPTION,
        }
    }

    /// For RSA keys, the modulus size in bits.
    pub fn rsa_modulus_bits(&self) -> Option<usize> {
        if self.algorithm != OID_RSA_ENCRYPTION {
            return None;
        }
        let mut key = Reader::new(self.key);
        let mut fields = Reader::new(key.read(TAG_SEQUENCE).ok()?);
        let modulus = fields.read(TAG_INTEGER).ok()?;
        let significant = match modulus.iter().position(|b| *b != 0) {
            Some(start) => &modulus[start..],
            None => return Some(0),
        };
        Some(significant.len() * 8 - significant[0].leading_zeros() as usize)
    }
}

/// A minimal DER reader over definite-length TLVs.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn read(&mut self, tag: u8) -> std::result::Result<&'a [u8], ()> {
        let (&found, rest) = self.rest.split_first().ok_or(())?;
        if found != tag {
            return Err(());
        }
        let (&first, mut rest) = rest.split_first().ok_or(())?;
        let length = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return Err(());
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            let length = bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b));
            if length < 0x80 || bytes[0] == 0 {
                return Err(()); // not minimal: DER forbids it
            }
            length
        };
        if rest.len() < length {
            return Err(());
        }
        let (content, after) = rest.split_at(length);
        self.rest = after;
        Ok(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_signatures_become_minimal_der() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero
        raw[32] = 0x00;
        raw[33] = 0x01; // s has leading zeros to strip
        let der = ecdsa_raw_to_der(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, der.len() as u8 - 2, 0x02, 33, 0x00]);
        let s_at = 2 + 2 + 33;
        assert_eq!(&der[s_at..s_at + 2], &[0x02, 31]);
        assert!(ecdsa_raw_to_der(&[1, 2, 3]).is_err());
    }

    #[test]
    fn spki_round_trips() {
        let point = [4u8; 65];
        let der = ec_spki(OID_P256, &point);
        let info = parse_spki(&der).unwrap();
        assert!(info.matches(SignatureAlgorithm::EcdsaP256Sha256));
        assert!(!info.matches(SignatureAlgorithm::EcdsaP384Sha384));
        assert_eq!(info.key, &point);

        let modulus = [0xffu8; 384];
        let der = rsa_spki(&modulus, &[1, 0, 1]);
        let info = parse_spki(&der).unwrap();
        assert_eq!(info.rsa_modulus_bits(), Some(3072));

        assert!(parse_spki(&der[..der.len() - 1]).is_err());
    }
}
