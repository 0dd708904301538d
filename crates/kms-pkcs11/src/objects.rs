//! Key objects on the token: templates for generation, lookup by `CKA_ID`, public keys
//! read back as `SubjectPublicKeyInfo`, and the checks that keys stay inside the token.
//! Every function here blocks; they run inside [`crate::token::Token::run`].

use carimbo_kms::encoding::{ec_spki, ed25519_spki, rsa_spki, unwrap_octet_string};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use crate::scheme::{Scheme, is_ed25519_params, oid_der};
use crate::{BackupPolicy, Pkcs11Error};

/// RSA public exponent of generated keys (65537).
const RSA_PUBLIC_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];
/// Length of generated AES and HMAC keys.
const SECRET_KEY_LEN: u64 = 32;

/// What a caller knows about the key being worked on, for error messages.
#[derive(Clone, Debug)]
pub(crate) struct KeyLocation {
    /// `CKA_ID` of the key's objects.
    pub(crate) id: Vec<u8>,
    /// The key reference as text (`pkcs11:serial/id`).
    pub(crate) reference: String,
    /// Token label.
    pub(crate) token: String,
}

impl KeyLocation {
    pub(crate) fn invalid(&self, reason: impl Into<String>) -> Pkcs11Error {
        Pkcs11Error::InvalidKey {
            reference: self.reference.clone(),
            reason: reason.into(),
        }
    }

    pub(crate) fn not_found(&self) -> Pkcs11Error {
        Pkcs11Error::KeyNotFound {
            reference: self.reference.clone(),
            token: self.token.clone(),
        }
    }
}

/// Attributes shared by every object a key consists of.
fn common(location: &KeyLocation, label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Id(location.id.clone()),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

/// Generates a key pair for `scheme` labelled `label`, its private key extractable
/// only as `backup` allows; returns (public, private).
pub(crate) fn generate_key_pair(
    session: &Session,
    scheme: Scheme,
    location: &KeyLocation,
    label: &str,
    backup: BackupPolicy,
) -> Result<(ObjectHandle, ObjectHandle), Pkcs11Error> {
    let mut public = common(location, label);
    public.extend([
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
    ]);
    let mut private = common(location, label);
    private.extend([
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]);
    private.extend(backup.attributes());
    let mechanism = match scheme {
        Scheme::Ecdsa(curve, _) => {
            public.push(Attribute::EcParams(oid_der(curve.oid())));
            Mechanism::EccKeyPairGen
        }
        Scheme::Ed25519 => {
            public.push(Attribute::EcParams(oid_der(
                carimbo_kms::encoding::OID_ED25519,
            )));
            Mechanism::EccEdwardsKeyPairGen
        }
        Scheme::Rsa { modulus, .. } => {
            public.extend([
                Attribute::ModulusBits(u64::from(modulus.bits()).into()),
                Attribute::PublicExponent(RSA_PUBLIC_EXPONENT.to_vec()),
            ]);
            Mechanism::RsaPkcsKeyPairGen
        }
    };
    session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(Pkcs11Error::call("C_GenerateKeyPair"))
}

/// What a secret key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SecretKind {
    /// AES-256 key-encryption key (AES-GCM).
    Aes,
    /// HMAC-SHA-256 key (generic secret).
    Hmac,
}

impl SecretKind {
    pub(crate) fn key_type(self) -> KeyType {
        match self {
            Self::Aes => KeyType::AES,
            Self::Hmac => KeyType::GENERIC_SECRET,
        }
    }
}

/// Generates a 256-bit secret key labelled `label`.
pub(crate) fn generate_secret_key(
    session: &Session,
    kind: SecretKind,
    location: &KeyLocation,
    label: &str,
) -> Result<ObjectHandle, Pkcs11Error> {
    let mut template = common(location, label);
    let (mechanism, crypt, mac) = match kind {
        SecretKind::Aes => (Mechanism::AesKeyGen, true, false),
        SecretKind::Hmac => (Mechanism::GenericSecretKeyGen, false, true),
    };
    template.extend([
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(kind.key_type()),
        Attribute::ValueLen(SECRET_KEY_LEN.into()),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(crypt),
        Attribute::Decrypt(crypt),
        Attribute::Sign(mac),
        Attribute::Verify(mac),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]);
    session
        .generate_key(&mechanism, &template)
        .map_err(Pkcs11Error::call("C_GenerateKey"))
}

/// The one object of `class` with the location's `CKA_ID`, if any.
pub(crate) fn find(
    session: &Session,
    class: ObjectClass,
    location: &KeyLocation,
) -> Result<Option<ObjectHandle>, Pkcs11Error> {
    let found = session
        .find_objects(&[Attribute::Class(class), Attribute::Id(location.id.clone())])
        .map_err(Pkcs11Error::call("C_FindObjects"))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(location.invalid(format!(
            "{} objects of class {class} share its CKA_ID",
            found.len()
        ))),
    }
}

/// Every object with the location's `CKA_ID`.
pub(crate) fn find_all(
    session: &Session,
    location: &KeyLocation,
) -> Result<Vec<ObjectHandle>, Pkcs11Error> {
    session
        .find_objects(&[Attribute::Id(location.id.clone())])
        .map_err(Pkcs11Error::call("C_FindObjects"))
}

fn attributes(
    session: &Session,
    object: ObjectHandle,
    types: &[AttributeType],
) -> Result<Vec<Attribute>, Pkcs11Error> {
    session
        .get_attributes(object, types)
        .map_err(Pkcs11Error::call("C_GetAttributeValue"))
}

/// The key type of `object`.
pub(crate) fn key_type(
    session: &Session,
    object: ObjectHandle,
) -> Result<Option<KeyType>, Pkcs11Error> {
    Ok(attributes(session, object, &[AttributeType::KeyType])?
        .into_iter()
        .find_map(|attribute| match attribute {
            Attribute::KeyType(key_type) => Some(key_type),
            _ => None,
        }))
}

/// `CKA_VALUE_LEN` of a secret key.
pub(crate) fn value_len(
    session: &Session,
    object: ObjectHandle,
) -> Result<Option<u64>, Pkcs11Error> {
    Ok(attributes(session, object, &[AttributeType::ValueLen])?
        .into_iter()
        .find_map(|attribute| match attribute {
            Attribute::ValueLen(len) => Some(u64::from(len)),
            _ => None,
        }))
}

/// How well a key object is protected, as the token reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyProtection {
    /// `CKA_SENSITIVE`: the secret cannot be read in plaintext.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`: the key can be wrapped out of the token.
    pub extractable: bool,
    /// `CKA_ALWAYS_SENSITIVE`: it has been sensitive since its creation.
    pub always_sensitive: bool,
    /// `CKA_NEVER_EXTRACTABLE`: it has never been extractable.
    pub never_extractable: bool,
    /// Whether reading the secret value (`CKA_VALUE`, or `CKA_PRIVATE_EXPONENT` for RSA)
    /// returned any bytes. Always false for a well-made key.
    pub secret_readable: bool,
    /// `CKA_WRAP_WITH_TRUSTED`: it can be wrapped only by a key marked `CKA_TRUSTED`.
    pub wrap_with_trusted: bool,
}

impl KeyProtection {
    /// Whether the key can never leave the token.
    pub fn is_locked_in(&self) -> bool {
        self.sensitive
            && !self.extractable
            && self.always_sensitive
            && self.never_extractable
            && !self.secret_readable
    }

    /// Whether the key can leave the token only wrapped by a trusted wrapping key
    /// ([`BackupPolicy::WrapWithTrusted`]): sensitive, never readable, extractable only
    /// under `CKA_WRAP_WITH_TRUSTED`. (`always_sensitive` tells a key generated in
    /// this token from one restored from a backup, which PKCS#11 reports as not
    /// always sensitive.)
    pub fn is_exportable_only_to_trusted(&self) -> bool {
        self.sensitive && self.extractable && self.wrap_with_trusted && !self.secret_readable
    }
}

/// Reads the protection attributes of a private or secret key object.
pub(crate) fn protection(
    session: &Session,
    object: ObjectHandle,
) -> Result<KeyProtection, Pkcs11Error> {
    let mut protection = KeyProtection {
        sensitive: false,
        extractable: true,
        always_sensitive: false,
        never_extractable: false,
        secret_readable: false,
        wrap_with_trusted: false,
    };
    for attribute in attributes(
        session,
        object,
        &[
            AttributeType::Sensitive,
            AttributeType::Extractable,
            AttributeType::AlwaysSensitive,
            AttributeType::NeverExtractable,
            AttributeType::WrapWithTrusted,
        ],
    )? {
        match attribute {
            Attribute::Sensitive(value) => protection.sensitive = value,
            Attribute::Extractable(value) => protection.extractable = value,
            Attribute::AlwaysSensitive(value) => protection.always_sensitive = value,
            Attribute::NeverExtractable(value) => protection.never_extractable = value,
            Attribute::WrapWithTrusted(value) => protection.wrap_with_trusted = value,
            _ => {}
        }
    }
    // A sensitive attribute reads as absent (CKR_ATTRIBUTE_SENSITIVE), not as an error:
    // look at what came back.
    protection.secret_readable = attributes(
        session,
        object,
        &[AttributeType::Value, AttributeType::PrivateExponent],
    )?
    .iter()
    .any(|attribute| match attribute {
        Attribute::Value(bytes) | Attribute::PrivateExponent(bytes) => !bytes.is_empty(),
        _ => false,
    });
    Ok(protection)
}

/// Refuses a freshly generated key that the token left readable or extractable.
pub(crate) fn check_locked_in(
    session: &Session,
    object: ObjectHandle,
    location: &KeyLocation,
) -> Result<(), Pkcs11Error> {
    check_protected(session, object, location, BackupPolicy::None)
}

/// Refuses a fresh key whose protection is not what `backup` asks for: readable, or
/// extractable when it must not be, or extractable without `CKA_WRAP_WITH_TRUSTED`.
pub(crate) fn check_protected(
    session: &Session,
    object: ObjectHandle,
    location: &KeyLocation,
    backup: BackupPolicy,
) -> Result<(), Pkcs11Error> {
    let protection = protection(session, object)?;
    let fits = protection.sensitive
        && !protection.secret_readable
        && match backup {
            BackupPolicy::None => !protection.extractable,
            BackupPolicy::WrapWithTrusted => protection.extractable && protection.wrap_with_trusted,
        };
    if fits {
        Ok(())
    } else {
        Err(location.invalid(format!(
            "the token did not protect the key as asked ({backup:?}): CKA_SENSITIVE={}, CKA_EXTRACTABLE={}, CKA_WRAP_WITH_TRUSTED={}, secret readable: {}",
            protection.sensitive,
            protection.extractable,
            protection.wrap_with_trusted,
            protection.secret_readable
        )))
    }
}

/// The objects of `class` labelled `label`.
pub(crate) fn find_labelled(
    session: &Session,
    class: Option<ObjectClass>,
    label: &str,
) -> Result<Vec<ObjectHandle>, Pkcs11Error> {
    let mut template = vec![Attribute::Label(label.as_bytes().to_vec())];
    if let Some(class) = class {
        template.push(Attribute::Class(class));
    }
    session
        .find_objects(&template)
        .map_err(Pkcs11Error::call("C_FindObjects"))
}

/// `CKA_ID` of `object` (empty when it has none).
pub(crate) fn object_id(session: &Session, object: ObjectHandle) -> Result<Vec<u8>, Pkcs11Error> {
    Ok(attributes(session, object, &[AttributeType::Id])?
        .into_iter()
        .find_map(|attribute| match attribute {
            Attribute::Id(id) => Some(id),
            _ => None,
        })
        .unwrap_or_default())
}

/// A boolean attribute of `object` (`None` when the token does not report it).
pub(crate) fn flag(
    session: &Session,
    object: ObjectHandle,
    attribute: AttributeType,
) -> Result<Option<bool>, Pkcs11Error> {
    Ok(attributes(session, object, &[attribute])?
        .into_iter()
        .find_map(|found| match found {
            Attribute::Trusted(value)
            | Attribute::Wrap(value)
            | Attribute::Unwrap(value)
            | Attribute::Sensitive(value)
            | Attribute::Extractable(value)
            | Attribute::Private(value)
            | Attribute::Encrypt(value)
            | Attribute::Decrypt(value)
            | Attribute::WrapWithTrusted(value) => Some(value),
            _ => None,
        }))
}

/// The public key of any public-key object (EC P-256/P-384, Ed25519, RSA) as DER
/// `SubjectPublicKeyInfo`.
pub(crate) fn any_public_key_spki(
    session: &Session,
    object: ObjectHandle,
    location: &KeyLocation,
) -> Result<Vec<u8>, Pkcs11Error> {
    use carimbo_kms::encoding::{OID_P256, OID_P384};
    match key_type(session, object)? {
        Some(KeyType::EC) => {
            let (params, point) = ec_attributes(session, object, location)?;
            let (oid, len) = if params == oid_der(OID_P256) {
                (OID_P256, 65)
            } else if params == oid_der(OID_P384) {
                (OID_P384, 97)
            } else {
                return Err(location.invalid("is an EC key on a curve other than P-256 or P-384"));
            };
            let point = point_of_len(&point, len)
                .filter(|point| point.first() == Some(&0x04))
                .ok_or_else(|| location.invalid("CKA_EC_POINT is not an uncompressed point"))?;
            Ok(ec_spki(oid, &point))
        }
        Some(KeyType::EC_EDWARDS) => {
            let (params, point) = ec_attributes(session, object, location)?;
            if !is_ed25519_params(&params) {
                return Err(location.invalid("is an Edwards key other than Ed25519"));
            }
            let point = point_of_len(&point, 32)
                .ok_or_else(|| location.invalid("CKA_EC_POINT is not a 32-byte Ed25519 key"))?;
            Ok(ed25519_spki(&point))
        }
        Some(KeyType::RSA) => {
            let (modulus, exponent) = rsa_attributes(session, object, location)?;
            Ok(rsa_spki(&modulus, &exponent))
        }
        other => Err(location.invalid(format!(
            "has a public key of type {}, which this provider does not read",
            other.map_or("unknown".to_owned(), |t| t.to_string())
        ))),
    }
}

fn rsa_attributes(
    session: &Session,
    object: ObjectHandle,
    location: &KeyLocation,
) -> Result<(Vec<u8>, Vec<u8>), Pkcs11Error> {
    let mut modulus = None;
    let mut exponent = None;
    for attribute in attributes(
        session,
        object,
        &[AttributeType::Modulus, AttributeType::PublicExponent],
    )? {
        match attribute {
            Attribute::Modulus(value) => modulus = Some(value),
            Attribute::PublicExponent(value) => exponent = Some(value),
            _ => {}
        }
    }
    match (modulus, exponent) {
        (Some(modulus), Some(exponent)) if !modulus.is_empty() && !exponent.is_empty() => {
            Ok((modulus, exponent))
        }
        _ => Err(location.invalid("public key has no CKA_MODULUS or CKA_PUBLIC_EXPONENT")),
    }
}

/// The public key of `object` (a public-key object) as DER `SubjectPublicKeyInfo`,
/// checked against `scheme` (curve, key size).
pub(crate) fn public_key_spki(
    session: &Session,
    object: ObjectHandle,
    scheme: Scheme,
    location: &KeyLocation,
) -> Result<Vec<u8>, Pkcs11Error> {
    match scheme {
        Scheme::Ecdsa(curve, _) => {
            let (params, point) = ec_attributes(session, object, location)?;
            if params != oid_der(curve.oid()) {
                return Err(location.invalid(format!("is not a key on curve {curve:?}")));
            }
            let point = point_of_len(&point, curve.point_len())
                .filter(|point| point.first() == Some(&0x04))
                .ok_or_else(|| location.invalid("CKA_EC_POINT is not an uncompressed point"))?;
            Ok(ec_spki(curve.oid(), &point))
        }
        Scheme::Ed25519 => {
            let (params, point) = ec_attributes(session, object, location)?;
            if !is_ed25519_params(&params) {
                return Err(location.invalid("is not an Ed25519 key"));
            }
            let point = point_of_len(&point, 32)
                .ok_or_else(|| location.invalid("CKA_EC_POINT is not a 32-byte Ed25519 key"))?;
            Ok(ed25519_spki(&point))
        }
        Scheme::Rsa { modulus: bits, .. } => {
            let (modulus, exponent) = rsa_attributes(session, object, location)?;
            let found = significant_bits(&modulus);
            if found != bits.bits() as usize {
                return Err(location.invalid(format!(
                    "is a {found}-bit RSA key, not {} bits",
                    bits.bits()
                )));
            }
            Ok(rsa_spki(&modulus, &exponent))
        }
    }
}

fn ec_attributes(
    session: &Session,
    object: ObjectHandle,
    location: &KeyLocation,
) -> Result<(Vec<u8>, Vec<u8>), Pkcs11Error> {
    let mut params = None;
    let mut point = None;
    for attribute in attributes(
        session,
        object,
        &[AttributeType::EcParams, AttributeType::EcPoint],
    )? {
        match attribute {
            Attribute::EcParams(value) => params = Some(value),
            Attribute::EcPoint(value) => point = Some(value),
            _ => {}
        }
    }
    match (params, point) {
        (Some(params), Some(point)) => Ok((params, point)),
        _ => Err(location.invalid("public key has no CKA_EC_PARAMS or CKA_EC_POINT")),
    }
}

/// The point in `CKA_EC_POINT`: PKCS#11 wraps it in a DER OCTET STRING, some tokens
/// return it bare. Returns it when it has `len` bytes either way.
fn point_of_len(value: &[u8], len: usize) -> Option<Vec<u8>> {
    let inner = unwrap_octet_string(value);
    if inner.len() == len {
        Some(inner)
    } else if value.len() == len {
        Some(value.to_vec())
    } else {
        None
    }
}

/// Number of significant bits of a big-endian unsigned integer.
fn significant_bits(magnitude: &[u8]) -> usize {
    match magnitude.iter().position(|b| *b != 0) {
        Some(start) => (magnitude.len() - start) * 8 - magnitude[start].leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_unwrapped_when_wrapped() {
        let mut point = vec![0x04; 65];
        point[1] = 0x3f; // bare point that also parses as a (short) OCTET STRING
        assert_eq!(point_of_len(&point, 65), Some(point.clone()));
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend_from_slice(&point);
        assert_eq!(point_of_len(&wrapped, 65), Some(point));
        assert_eq!(point_of_len(&[0x04, 0x01, 0x02], 65), None);
    }

    #[test]
    fn modulus_sizes_count_significant_bits() {
        let mut modulus = vec![0u8; 385];
        modulus[1] = 0x80;
        assert_eq!(significant_bits(&modulus), 3072);
        modulus[1] = 0x40;
        assert_eq!(significant_bits(&modulus), 3071);
        assert_eq!(significant_bits(&[0, 0]), 0);
    }
}
