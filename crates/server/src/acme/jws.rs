//! JSON Web Signatures as ACME uses them (RFC 8555 §6.2, RFC 7515): the flattened JSON
//! serialization, a protected header with `alg`, `nonce`, `url` and exactly one of
//! `jwk` or `kid`, and no unprotected header.
//!
//! Pure functions, no I/O, so the parser can be fuzzed. Accepted algorithms: ES256
//! (P-256), RS256 (RSA of 2048 bits or more) and EdDSA (Ed25519); `none`, MACs and
//! anything else are refused as `badSignatureAlgorithm`. Keys are compared and stored
//! in their RFC 7638 canonical form, whose SHA-256 is the account's thumbprint.

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// The algorithms accepted, as `alg` names (for `badSignatureAlgorithm` problems).
pub const ALGORITHMS: &[&str] = &["ES256", "RS256", "EdDSA"];

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Why a JWS was refused; each maps to one ACME error type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// Not a well-formed ACME JWS (`malformed`).
    #[error("{0}")]
    Malformed(String),
    /// An algorithm this server does not accept (`badSignatureAlgorithm`).
    #[error("unsupported JWS algorithm {0:?} (ES256, RS256 or EdDSA)")]
    BadSignatureAlgorithm(String),
    /// A key this server does not accept (`badPublicKey`).
    #[error("{0}")]
    BadPublicKey(String),
    /// The signature does not verify with the key (`malformed`, RFC 8555 §6.2).
    #[error("the JWS signature does not verify")]
    BadSignature,
}

/// A signature algorithm accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256, signature `r ‖ s` (64 bytes).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// Ed25519.
    EdDsa,
}

impl Algorithm {
    fn parse(name: &str) -> Result<Self, JwsError> {
        match name {
            "ES256" => Ok(Self::Es256),
            "RS256" => Ok(Self::Rs256),
            "EdDSA" => Ok(Self::EdDsa),
            other => Err(JwsError::BadSignatureAlgorithm(other.to_owned())),
        }
    }
}

/// A public key from a JWK, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Jwk {
    /// P-256: the affine coordinates, 32 bytes each.
    P256 {
        /// x coordinate.
        x: Vec<u8>,
        /// y coordinate.
        y: Vec<u8>,
    },
    /// RSA: modulus and public exponent, big-endian without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// Ed25519: the 32-byte public key.
    Ed25519 {
        /// The key.
        x: Vec<u8>,
    },
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `what` names the field in the error.
pub fn decode_b64(text: &str, what: &str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JwsError::Malformed(format!("{what}: not base64url without padding")))
}

fn string_member<'a>(object: &'a Map<String, Value>, name: &str) -> Result<&'a str, JwsError> {
    object
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| JwsError::Malformed(format!("JWK: {name} missing or not a string")))
}

fn strip_leading_zeros(bytes: Vec<u8>) -> Vec<u8> {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

/// DER prefix of a P-256 `SubjectPublicKeyInfo` (id-ecPublicKey, prime256v1), before
/// the uncompressed point.
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// DER prefix of an Ed25519 `SubjectPublicKeyInfo`, before the key.
const ED25519_SPKI_PREFIX: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl Jwk {
    /// Reads a JWK object: `EC` with `crv` `P-256`, `RSA` (modulus of at least
    /// [`MIN_RSA_BITS`]), or `OKP` with `crv` `Ed25519`. Private members are refused.
    pub fn from_json(value: &Value) -> Result<Self, JwsError> {
        let object = value
            .as_object()
            .ok_or_else(|| JwsError::Malformed("jwk: not a JSON object".into()))?;
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|m| object.contains_key(*m))
        {
            return Err(JwsError::BadPublicKey(
                "jwk: holds private key material".into(),
            ));
        }
        match string_member(object, "kty")? {
            "EC" => {
                let curve = string_member(object, "crv")?;
                if curve != "P-256" {
                    return Err(JwsError::BadPublicKey(format!(
                        "jwk: curve {curve:?} is not accepted (P-256)"
                    )));
                }
                let x = decode_b64(string_member(object, "x")?, "jwk x")?;
                let y = decode_b64(string_member(object, "y")?, "jwk y")?;
                if x.len() != 32 || y.len() != 32 {
                    return Err(JwsError::BadPublicKey(
                        "jwk: P-256 coordinates must be 32 bytes".into(),
                    ));
                }
                Ok(Self::P256 { x, y })
            }
            "RSA" => {
                let n = strip_leading_zeros(decode_b64(string_member(object, "n")?, "jwk n")?);
                let e = strip_leading_zeros(decode_b64(string_member(object, "e")?, "jwk e")?);
                let bits = n
                    .first()
                    .map(|top| (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize))
                    .unwrap_or(0);
                if bits < MIN_RSA_BITS {
                    return Err(JwsError::BadPublicKey(format!(
                        "jwk: RSA modulus of {bits} bits; at least {MIN_RSA_BITS} required"
                    )));
                }
                if e.is_empty() || e.len() > 4 || e.last().is_some_and(|low| low & 1 == 0) {
                    return Err(JwsError::BadPublicKey(
                        "jwk: RSA public exponent must be odd and at most 32 bits".into(),
                    ));
                }
                Ok(Self::Rsa { n, e })
            }
            "OKP" => {
                let curve = string_member(object, "crv")?;
                if curve != "Ed25519" {
                    return Err(JwsError::BadPublicKey(format!(
                        "jwk: curve {curve:?} is not accepted (Ed25519)"
                    )));
                }
                let x = decode_b64(string_member(object, "x")?, "jwk x")?;
                if x.len() != 32 {
                    return Err(JwsError::BadPublicKey(
                        "jwk: Ed25519 keys are 32 bytes".into(),
                    ));
                }
                Ok(Self::Ed25519 { x })
            }
            other => Err(JwsError::BadPublicKey(format!(
                "jwk: key type {other:?} is not accepted (EC, RSA, OKP)"
            ))),
        }
    }

    /// The canonical JSON of RFC 7638 §3: required members only, in lexicographic
    /// order, no whitespace. It is also how the key is stored.
    pub fn canonical_json(&self) -> String {
        match self {
            Self::P256 { x, y } => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64(x),
                b64(y)
            ),
            Self::Rsa { n, e } => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n)),
            Self::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, b64(x)),
        }
    }

    /// The RFC 7638 thumbprint: base64url(SHA-256(canonical JSON)).
    pub fn thumbprint(&self) -> String {
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.canonical_json().as_bytes());
        b64(digest.as_ref())
    }

    /// Whether `algorithm` is the one this key signs with.
    fn suits(&self, algorithm: Algorithm) -> bool {
        matches!(
            (self, algorithm),
            (Self::P256 { .. }, Algorithm::Es256)
                | (Self::Rsa { .. }, Algorithm::Rs256)
                | (Self::Ed25519 { .. }, Algorithm::EdDsa)
        )
    }

    /// Verifies `signature` over `message` with `algorithm`.
    pub fn verify(
        &self,
        algorithm: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), JwsError> {
        if !self.suits(algorithm) {
            return Err(JwsError::Malformed(
                "the JWS algorithm does not match the key type".into(),
            ));
        }
        let verified = match self {
            Self::P256 { x, y } => {
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
            }
            Self::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                signature,
            ),
            Self::Ed25519 { x } => {
                UnparsedPublicKey::new(&signature::ED25519, x).verify(message, signature)
            }
        };
        verified.map_err(|_| JwsError::BadSignature)
    }

    /// Whether this is the key of a DER `SubjectPublicKeyInfo` (a certificate's key,
    /// for revocation signed by the certificate key).
    pub fn matches_spki(&self, spki: &[u8]) -> bool {
        match self {
            Self::P256 { x, y } => {
                let mut expected = P256_SPKI_PREFIX.to_vec();
                expected.push(0x04);
                expected.extend_from_slice(x);
                expected.extend_from_slice(y);
                expected == spki
            }
            Self::Ed25519 { x } => {
                let mut expected = ED25519_SPKI_PREFIX.to_vec();
                expected.extend_from_slice(x);
                expected == spki
            }
            Self::Rsa { n, e } => {
                use x509_parser::prelude::FromDer;
                let Ok((rest, info)) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki)
                else {
                    return false;
                };
                if !rest.is_empty() {
                    return false;
                }
                match info.parsed() {
                    Ok(x509_parser::public_key::PublicKey::RSA(key)) => {
                        strip_leading_zeros(key.modulus.to_vec()) == *n
                            && strip_leading_zeros(key.exponent.to_vec()) == *e
                    }
                    _ => false,
                }
            }
        }
    }
}

/// Who signed: a new key (`jwk`: newAccount, revocation by certificate key) or an
/// account (`kid`: its URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signer {
    /// The key itself.
    Jwk(Jwk),
    /// An account URL.
    Kid(String),
}

/// The protected header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtectedHeader {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The anti-replay nonce (absent only where the caller allows it).
    pub nonce: Option<String>,
    /// The URL the request was sent to, as the client saw it.
    pub url: String,
    /// The key or the account.
    pub signer: Signer,
}

/// A parsed, not yet verified, JWS.
#[derive(Clone, Debug)]
pub struct Jws {
    /// The protected header.
    pub header: ProtectedHeader,
    /// The payload, decoded (empty for POST-as-GET).
    pub payload: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl Jws {
    /// Parses a flattened JSON JWS (the request body). Checks its shape and header;
    /// does not verify the signature (the key may have to be looked up first).
    pub fn parse(body: &[u8]) -> Result<Self, JwsError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|_| JwsError::Malformed("the body is not JSON".into()))?;
        let object = value
            .as_object()
            .ok_or_else(|| JwsError::Malformed("the body is not a JSON object".into()))?;
        for key in object.keys() {
            if !matches!(key.as_str(), "protected" | "payload" | "signature") {
                return Err(JwsError::Malformed(format!(
                    "unexpected JWS member {key:?}: only the flattened serialization with a \
                     protected header is accepted"
                )));
            }
        }
        let member = |name: &str| {
            object
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JwsError::Malformed(format!("JWS: {name} missing or not a string")))
        };
        let protected_b64 = member("protected")?;
        let payload_b64 = member("payload")?;
        let signature = decode_b64(member("signature")?, "signature")?;
        let protected = decode_b64(protected_b64, "protected header")?;
        let payload = decode_b64(payload_b64, "payload")?;
        let header: Value = serde_json::from_slice(&protected)
            .map_err(|_| JwsError::Malformed("protected header: not JSON".into()))?;
        let header = header
            .as_object()
            .ok_or_else(|| JwsError::Malformed("protected header: not a JSON object".into()))?;
        let text = |name: &str| -> Result<Option<String>, JwsError> {
            match header.get(name) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(JwsError::Malformed(format!(
                    "protected header: {name} is not a string"
                ))),
            }
        };
        let algorithm_name = text("alg")?
            .ok_or_else(|| JwsError::Malformed("protected header: alg missing".into()))?;
        let algorithm = Algorithm::parse(&algorithm_name)?;
        if header.contains_key("crit") {
            return Err(JwsError::Malformed(
                "protected header: no critical extensions are supported".into(),
            ));
        }
        let url = text("url")?
            .ok_or_else(|| JwsError::Malformed("protected header: url missing".into()))?;
        let nonce = text("nonce")?;
        let signer = match (header.get("jwk"), text("kid")?) {
            (Some(jwk), None) => Signer::Jwk(Jwk::from_json(jwk)?),
            (None, Some(kid)) => Signer::Kid(kid),
            _ => {
                return Err(JwsError::Malformed(
                    "protected header: exactly one of jwk and kid is required".into(),
                ));
            }
        };
        let mut signing_input = protected_b64.as_bytes().to_vec();
        signing_input.push(b'.');
        signing_input.extend_from_slice(payload_b64.as_bytes());
        Ok(Self {
            header: ProtectedHeader {
                algorithm,
                nonce,
                url,
                signer,
            },
            payload,
            signing_input,
            signature,
        })
    }

    /// Verifies the signature with `key` (the header's `jwk`, or the account's key).
    pub fn verify(&self, key: &Jwk) -> Result<(), JwsError> {
        key.verify(self.header.algorithm, &self.signing_input, &self.signature)
    }

    /// The payload parsed as JSON; an empty payload (POST-as-GET) is an error.
    pub fn payload_json(&self) -> Result<Value, JwsError> {
        serde_json::from_slice(&self.payload)
            .map_err(|_| JwsError::Malformed("the payload is not JSON".into()))
    }
}

/// An External Account Binding (RFC 8555 §7.3.4): a JWS MACed with a key the CA handed
/// out, over the new account's key.
#[derive(Clone, Debug)]
pub struct ExternalAccountBinding {
    /// The EAB key identifier.
    pub kid: String,
    /// The URL it was made for (the newAccount URL).
    pub url: String,
    /// The payload: the account key as a JWK (JSON bytes).
    pub payload: Vec<u8>,
    algorithm: aws_lc_rs::hmac::Algorithm,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl ExternalAccountBinding {
    /// Parses the `externalAccountBinding` member of a newAccount payload: a flattened
    /// JWS whose protected header has `alg` HS256, HS384 or HS512, `kid` and `url`, and
    /// no `nonce`.
    pub fn parse(value: &Value) -> Result<Self, JwsError> {
        let object = value.as_object().ok_or_else(|| {
            JwsError::Malformed("externalAccountBinding: not a JSON object".into())
        })?;
        if object
            .keys()
            .any(|k| !matches!(k.as_str(), "protected" | "payload" | "signature"))
        {
            return Err(JwsError::Malformed(
                "externalAccountBinding: unexpected member".into(),
            ));
        }
        let member = |name: &str| {
            object.get(name).and_then(Value::as_str).ok_or_else(|| {
                JwsError::Malformed(format!("externalAccountBinding: {name} missing"))
            })
        };
        let protected_b64 = member("protected")?;
        let payload_b64 = member("payload")?;
        let signature = decode_b64(member("signature")?, "externalAccountBinding signature")?;
        let header: Value =
            serde_json::from_slice(&decode_b64(protected_b64, "externalAccountBinding header")?)
                .map_err(|_| {
                    JwsError::Malformed("externalAccountBinding: header not JSON".into())
                })?;
        let text = |name: &str| header.get(name).and_then(Value::as_str).map(str::to_owned);
        let algorithm = match text("alg").as_deref() {
            Some("HS256") => aws_lc_rs::hmac::HMAC_SHA256,
            Some("HS384") => aws_lc_rs::hmac::HMAC_SHA384,
            Some("HS512") => aws_lc_rs::hmac::HMAC_SHA512,
            other => {
                return Err(JwsError::BadSignatureAlgorithm(
                    other.unwrap_or_default().to_owned(),
                ));
            }
        };
        if header.get("nonce").is_some() || header.get("crit").is_some() {
            return Err(JwsError::Malformed(
                "externalAccountBinding: no nonce or crit allowed".into(),
            ));
        }
        let kid = text("kid")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| JwsError::Malformed("externalAccountBinding: kid missing".into()))?;
        let url = text("url")
            .ok_or_else(|| JwsError::Malformed("externalAccountBinding: url missing".into()))?;
        let payload = decode_b64(payload_b64, "externalAccountBinding payload")?;
        let mut signing_input = protected_b64.as_bytes().to_vec();
        signing_input.push(b'.');
        signing_input.extend_from_slice(payload_b64.as_bytes());
        Ok(Self {
            kid,
            url,
            payload,
            algorithm,
            signing_input,
            signature,
        })
    }

    /// Verifies the MAC with `key` (constant time).
    pub fn verify(&self, key: &[u8]) -> Result<(), JwsError> {
        let key = aws_lc_rs::hmac::Key::new(self.algorithm, key);
        aws_lc_rs::hmac::verify(&key, &self.signing_input, &self.signature)
            .map_err(|_| JwsError::BadSignature)
    }

    /// Whether the payload is `account_key`.
    pub fn binds(&self, account_key: &Jwk) -> bool {
        serde_json::from_slice::<Value>(&self.payload)
            .ok()
            .and_then(|value| Jwk::from_json(&value).ok())
            .is_some_and(|key| key == *account_key)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};
    use serde_json::json;

    use super::*;

    fn p256() -> (EcdsaKeyPair, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        let key =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .unwrap();
        let point = key.public_key().as_ref().to_vec();
        let jwk =
            json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])});
        (key, jwk)
    }

    fn sign_es256(key: &EcdsaKeyPair, header: &Value, payload: &[u8]) -> Vec<u8> {
        let protected = b64(header.to_string().as_bytes());
        let payload = b64(payload);
        let input = format!("{protected}.{payload}");
        let signature = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        json!({"protected": protected, "payload": payload, "signature": b64(signature.as_ref())})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn an_es256_jws_verifies_and_a_changed_one_does_not() {
        let (key, jwk) = p256();
        let header =
            json!({"alg": "ES256", "nonce": "n", "url": "https://ca/acme/new-account", "jwk": jwk});
        let body = sign_es256(&key, &header, br#"{"termsOfServiceAgreed":true}"#);
        let jws = Jws::parse(&body).unwrap();
        let Signer::Jwk(public) = &jws.header.signer else {
            panic!("jwk expected")
        };
        jws.verify(public).unwrap();
        assert_eq!(jws.header.url, "https://ca/acme/new-account");
        assert_eq!(jws.header.nonce.as_deref(), Some("n"));
        // Another payload under the same signature.
        let mut value: Value = serde_json::from_slice(&body).unwrap();
        value["payload"] = json!(b64(b"{}"));
        let forged = Jws::parse(value.to_string().as_bytes()).unwrap();
        assert_eq!(forged.verify(public), Err(JwsError::BadSignature));
    }

    #[test]
    fn none_macs_and_unknown_algorithms_are_refused() {
        let (key, jwk) = p256();
        for alg in ["none", "HS256", "ES384", "PS256", ""] {
            let header = json!({"alg": alg, "nonce": "n", "url": "u", "jwk": jwk});
            let body = sign_es256(&key, &header, b"{}");
            assert_eq!(
                Jws::parse(&body).unwrap_err(),
                JwsError::BadSignatureAlgorithm(alg.into()),
                "{alg}"
            );
        }
    }

    #[test]
    fn the_header_needs_exactly_one_of_jwk_and_kid_and_no_unprotected_header() {
        let (key, jwk) = p256();
        let both = json!({"alg": "ES256", "nonce": "n", "url": "u", "jwk": jwk, "kid": "k"});
        let neither = json!({"alg": "ES256", "nonce": "n", "url": "u"});
        for header in [both, neither] {
            let body = sign_es256(&key, &header, b"{}");
            assert!(matches!(Jws::parse(&body), Err(JwsError::Malformed(_))));
        }
        let header = json!({"alg": "ES256", "nonce": "n", "url": "u", "kid": "k"});
        let mut value: Value = serde_json::from_slice(&sign_es256(&key, &header, b"{}")).unwrap();
        value["header"] = json!({"kid": "other"});
        assert!(matches!(
            Jws::parse(value.to_string().as_bytes()),
            Err(JwsError::Malformed(_))
        ));
        let no_url = json!({"alg": "ES256", "nonce": "n", "kid": "k"});
        assert!(matches!(
            Jws::parse(&sign_es256(&key, &no_url, b"{}")),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn the_algorithm_must_match_the_key() {
        let (key, jwk) = p256();
        let header = json!({"alg": "EdDSA", "nonce": "n", "url": "u", "jwk": jwk});
        let jws = Jws::parse(&sign_es256(&key, &header, b"{}")).unwrap();
        let Signer::Jwk(public) = &jws.header.signer else {
            panic!("jwk expected")
        };
        assert!(matches!(jws.verify(public), Err(JwsError::Malformed(_))));
    }

    #[test]
    fn ed25519_signatures_verify_and_spkis_match() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = Jwk::from_json(&json!({
            "kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key().as_ref())
        }))
        .unwrap();
        let signature = key.sign(b"message");
        jwk.verify(Algorithm::EdDsa, b"message", signature.as_ref())
            .unwrap();
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(key.public_key().as_ref());
        assert!(jwk.matches_spki(&spki));
        spki[20] ^= 1;
        assert!(!jwk.matches_spki(&spki));
    }

    #[test]
    fn weak_or_private_keys_are_bad_public_keys() {
        let short = json!({"kty": "RSA", "n": b64(&[0xc5; 128]), "e": "AQAB"});
        assert!(matches!(
            Jwk::from_json(&short),
            Err(JwsError::BadPublicKey(_))
        ));
        let (_, mut jwk) = p256();
        jwk["d"] = json!("AAAA");
        assert!(matches!(
            Jwk::from_json(&jwk),
            Err(JwsError::BadPublicKey(_))
        ));
        let p384 = json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"});
        assert!(matches!(
            Jwk::from_json(&p384),
            Err(JwsError::BadPublicKey(_))
        ));
        let oct = json!({"kty": "oct", "k": "AA"});
        assert!(matches!(
            Jwk::from_json(&oct),
            Err(JwsError::BadPublicKey(_))
        ));
    }

    #[test]
    fn the_rfc_7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = Jwk::from_json(&json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }))
        .unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
