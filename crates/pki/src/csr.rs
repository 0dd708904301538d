//! Certificate signing requests (PKCS#10, RFC 2986) from callers, checked before
//! anything is built from them (DESIGN §4 "Issuance" step 3).
//!
//! Only three things are taken from a CSR: its public key (the SPKI, byte for byte),
//! the description of that key, and the names it asks for — which the caller still
//! authorises against its policy. Everything else (subject, requested key usage,
//! extended key usage, any other extension or attribute) is ignored and never copied:
//! the certificate's contents come from the profile ([`prepare_leaf`](crate::prepare_leaf)).
//! A CSR asking to be a CA is refused outright rather than ignored, because it says
//! something is wrong with the requester.

use aws_lc_rs::signature::{self as sig, VerificationAlgorithm};
use x509_parser::extensions::{BasicConstraints, KeyUsage, SubjectAlternativeName as X509San};
use x509_parser::prelude::FromDer;

use crate::der::{
    self, Reader, TAG_INTEGER, TAG_NULL, TAG_OID, TAG_SEQUENCE, TAG_SET, context_constructed, oid,
};
use crate::leaf_key::{LeafKey, LeafKeyKind, leaf_key};
use crate::raw::Signed;
use crate::{LeafError, LeafProfile, SubjectAltName, check_sans, pem_decode};

/// Largest CSR accepted, PEM or DER (64 KiB; a CSR with an 8192-bit RSA key and a
/// hundred names is well under 16 KiB).
pub const MAX_CSR_BYTES: usize = 64 * 1024;

/// 1.2.840.113549.1.9.14 extensionRequest (PKCS#9).
const OID_EXTENSION_REQUEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];

/// Signature algorithm OIDs.
const OID_ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
const OID_ECDSA_SHA2_PREFIX: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
const OID_RSA_PREFIX: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_SHA2_PREFIX: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02];
/// 1.2.840.113549.1.1.8 id-mgf1.
const OID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];

/// What a checked CSR contributes to a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedCsr {
    /// The subject key, the CSR's DER `SubjectPublicKeyInfo` byte for byte.
    pub subject_public_key_info: Vec<u8>,
    /// The key, e.g. `ECDSA P-256`, `RSA 3072`, `Ed25519`.
    pub key_description: String,
    /// The names the CSR asks for, in its order (DNS names in lower case), already
    /// checked with [`check_sans`] for the profile — still to be authorised by the
    /// caller's policy.
    pub requested_sans: Vec<SubjectAltName>,
}

/// Checks a CSR (PEM `CERTIFICATE REQUEST` or DER) for `profile`:
///
/// 1. at most [`MAX_CSR_BYTES`] (`csr_too_large`);
/// 2. a well-formed DER PKCS#10 v1 request, parsed by x509-parser and by a strict DER
///    reader, with nothing after it (`malformed_csr`);
/// 3. its key is accepted: ECDSA P-256 or P-384, RSA of 3072 to 8192 bits, Ed25519 only
///    if the profile allows it (`weak_key`, `unsupported_key`);
/// 4. its signature over the CertificationRequestInfo verifies with that key, using
///    ECDSA with SHA-2, RSA PKCS#1 v1.5 or PSS (salt as long as the hash, MGF1 with the
///    same hash) with SHA-2, or Ed25519 (`bad_csr_signature`; SHA-1 is refused);
/// 5. it does not ask to be a CA — basicConstraints cA TRUE, or keyCertSign/cRLSign in
///    its requested key usage (`ca_requested`);
/// 6. it asks for at least one name (`no_san`) of the supported types (`invalid_san`),
///    and the names pass [`check_sans`] for the profile.
///
/// Requested extensions other than basicConstraints, keyUsage and subjectAltName are
/// ignored and never copied; so are the subject and other attributes.
pub fn validate_csr(csr: &[u8], profile: &LeafProfile) -> Result<ValidatedCsr, LeafError> {
    if csr.len() > MAX_CSR_BYTES {
        return Err(LeafError::CsrTooLarge {
            size: csr.len(),
            max: MAX_CSR_BYTES,
        });
    }
    let der = csr_der(csr)?;
    let request = RawRequest::parse(&der).map_err(malformed)?;
    match x509_parser::certification_request::X509CertificationRequest::from_der(&der) {
        Ok(([], _)) => {}
        Ok(_) => return Err(malformed("trailing bytes after the CSR".into())),
        Err(e) => return Err(malformed(format!("does not parse as PKCS#10: {e}"))),
    }
    let key = leaf_key(request.spki, profile)?;
    verify_request_signature(&key, request.algorithm, request.info, request.signature)?;
    let sans = requested_names(&request)?;
    if sans.is_empty() {
        return Err(LeafError::NoSan);
    }
    check_sans(profile, &sans)?;
    Ok(ValidatedCsr {
        subject_public_key_info: request.spki.to_vec(),
        key_description: key.description(),
        requested_sans: sans,
    })
}

fn malformed(reason: String) -> LeafError {
    LeafError::MalformedCsr { reason }
}

/// The DER of `input`: DER as given when it starts like a SEQUENCE; otherwise PEM
/// text with exactly one block, labelled `CERTIFICATE REQUEST` (or the legacy `NEW
/// CERTIFICATE REQUEST`, RFC 7468 §7); explanatory text around the block is ignored.
fn csr_der(input: &[u8]) -> Result<Vec<u8>, LeafError> {
    if input.first() == Some(&TAG_SEQUENCE) {
        return Ok(input.to_vec());
    }
    if !input.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(malformed(
            "neither DER nor a PEM CERTIFICATE REQUEST".into(),
        ));
    }
    let text = std::str::from_utf8(input).map_err(|_| malformed("PEM text is not ASCII".into()))?;
    if text.matches("-----BEGIN ").count() != 1 {
        return Err(malformed("expected exactly one PEM block".into()));
    }
    let label = text
        .split_once("-----BEGIN ")
        .and_then(|(_, rest)| rest.split_once("-----"))
        .map(|(label, _)| label)
        .unwrap_or_default();
    if label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST" {
        return Err(malformed(format!(
            "the PEM block is labelled {label:?}, not \"CERTIFICATE REQUEST\""
        )));
    }
    pem_decode(text, label).map_err(|e| malformed(e.to_string()))
}

/// A CSR split into its raw fields by the strict DER reader.
struct RawRequest<'a> {
    /// The whole CertificationRequestInfo (what is signed).
    info: &'a [u8],
    spki: &'a [u8],
    /// The whole signature AlgorithmIdentifier.
    algorithm: &'a [u8],
    signature: &'a [u8],
    /// Each attribute as (type OID, values in its SET).
    attributes: Vec<(&'a [u8], Vec<der::Tlv<'a>>)>,
}

impl<'a> RawRequest<'a> {
    fn parse(der: &'a [u8]) -> Result<Self, String> {
        let signed = Signed::parse(der)?;
        let mut fields = Reader::new(signed.tbs.content);
        let version = fields.read(TAG_INTEGER)?;
        if version.content != [0] {
            return Err("version is not v1 (0)".into());
        }
        fields.read(TAG_SEQUENCE)?; // subject: ignored
        let spki = fields.read(TAG_SEQUENCE)?.raw;
        let wrapper = fields.read(context_constructed(0))?;
        if !fields.is_empty() {
            return Err("trailing fields in CertificationRequestInfo".into());
        }
        let mut attributes = Vec::new();
        let mut list = Reader::new(wrapper.content);
        while !list.is_empty() {
            let attribute = list.read(TAG_SEQUENCE)?;
            let mut parts = Reader::new(attribute.content);
            let kind = parts.read(TAG_OID)?.content;
            let values = Reader::new(parts.read(TAG_SET)?.content).read_all()?;
            if !parts.is_empty() {
                return Err("trailing fields in an attribute".into());
            }
            attributes.push((kind, values));
        }
        Ok(Self {
            info: signed.tbs.raw,
            spki,
            algorithm: signed.algorithm.raw,
            signature: signed.signature,
            attributes,
        })
    }
}

/// The names the CSR asks for; refuses a CA request.
fn requested_names(request: &RawRequest<'_>) -> Result<Vec<SubjectAltName>, LeafError> {
    let requests: Vec<_> = request
        .attributes
        .iter()
        .filter(|(kind, _)| *kind == OID_EXTENSION_REQUEST)
        .collect();
    let values = match requests.as_slice() {
        [] => return Ok(Vec::new()),
        [(_, values)] => values,
        _ => return Err(malformed("more than one extensionRequest attribute".into())),
    };
    let [extensions] = values.as_slice() else {
        return Err(malformed(
            "extensionRequest does not have exactly one value".into(),
        ));
    };
    if extensions.tag != TAG_SEQUENCE {
        return Err(malformed("extensionRequest value is not a SEQUENCE".into()));
    }
    let extensions = der::parse_extensions(extensions.content).map_err(malformed)?;
    for (index, extension) in extensions.iter().enumerate() {
        if extensions[..index].iter().any(|e| e.oid == extension.oid) {
            return Err(malformed(format!(
                "requested extension {} appears twice",
                der::oid_to_string(extension.oid)
            )));
        }
    }
    let unreadable =
        |what: &str, e: String| malformed(format!("requested {what} does not parse: {e}"));
    let mut sans = Vec::new();
    for extension in &extensions {
        if extension.oid == oid::BASIC_CONSTRAINTS {
            let (_, constraints) = BasicConstraints::from_der(extension.value)
                .map_err(|e| unreadable("basicConstraints", e.to_string()))?;
            if constraints.ca {
                return Err(LeafError::CaRequested {
                    detail: "basicConstraints cA TRUE".into(),
                });
            }
        } else if extension.oid == oid::KEY_USAGE {
            let (_, usage) = KeyUsage::from_der(extension.value)
                .map_err(|e| unreadable("keyUsage", e.to_string()))?;
            if usage.key_cert_sign() || usage.crl_sign() {
                return Err(LeafError::CaRequested {
                    detail: "keyUsage keyCertSign or cRLSign".into(),
                });
            }
        } else if extension.oid == oid::SUBJECT_ALT_NAME {
            let (rest, names) = X509San::from_der(extension.value)
                .map_err(|e| unreadable("subjectAltName", e.to_string()))?;
            if !rest.is_empty() {
                return Err(unreadable("subjectAltName", "trailing bytes".into()));
            }
            for name in &names.general_names {
                sans.push(SubjectAltName::from_general_name(name)?);
            }
        }
    }
    Ok(sans)
}

/// A SHA-2 hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_last_arc(arc: u8) -> Option<Self> {
        match arc {
            1 => Some(Self::Sha256),
            2 => Some(Self::Sha384),
            3 => Some(Self::Sha512),
            _ => None,
        }
    }

    fn length(self) -> u8 {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

fn bad_signature(reason: impl Into<String>) -> LeafError {
    LeafError::BadCsrSignature {
        reason: reason.into(),
    }
}

/// The hash of a hash AlgorithmIdentifier (SHA-2, parameters absent or NULL).
fn hash_identifier(identifier: &[u8]) -> Result<Hash, LeafError> {
    let outer = der::parse_single(identifier, TAG_SEQUENCE).map_err(bad_signature)?;
    let mut fields = Reader::new(outer.content);
    let oid = fields.read(TAG_OID).map_err(bad_signature)?.content;
    let parameters = fields.read_all().map_err(bad_signature)?;
    let no_parameters = match parameters.as_slice() {
        [] => true,
        [null] => null.tag == TAG_NULL && null.content.is_empty(),
        _ => false,
    };
    match oid.strip_prefix(OID_SHA2_PREFIX) {
        Some([arc]) if no_parameters => Hash::from_last_arc(*arc),
        _ => None,
    }
    .ok_or_else(|| bad_signature(format!("hash {} is not accepted", der::oid_to_string(oid))))
}

/// The hash of RSASSA-PSS parameters, which must be: that hash, MGF1 with the same
/// hash, a salt as long as the hash, the default trailer field.
fn pss_hash(parameters: &[der::Tlv<'_>]) -> Result<Hash, LeafError> {
    let [parameters] = parameters else {
        return Err(bad_signature("RSASSA-PSS without parameters"));
    };
    if parameters.tag != TAG_SEQUENCE {
        return Err(bad_signature("RSASSA-PSS parameters are not a SEQUENCE"));
    }
    let mut fields = Reader::new(parameters.content);
    let explicit = |fields: &mut Reader<'_>, n: u8, what: &str| {
        fields
            .read(context_constructed(n))
            .map(|tagged| tagged.content.to_vec())
            .map_err(|_| bad_signature(format!("RSASSA-PSS without an explicit {what}")))
    };
    let hash = hash_identifier(&explicit(&mut fields, 0, "hash (SHA-1 default)")?)?;
    let mgf = explicit(&mut fields, 1, "mask generation function")?;
    let salt = explicit(&mut fields, 2, "salt length")?;
    if let Some(trailer) = fields
        .read_optional(context_constructed(3))
        .map_err(bad_signature)?
        && trailer.content != [TAG_INTEGER, 1, 1]
    {
        return Err(bad_signature("RSASSA-PSS trailer field is not 1"));
    }
    if !fields.is_empty() {
        return Err(bad_signature("trailing RSASSA-PSS parameters"));
    }
    let mgf = der::parse_single(&mgf, TAG_SEQUENCE).map_err(bad_signature)?;
    let mut mgf_fields = Reader::new(mgf.content);
    let mgf_oid = mgf_fields.read(TAG_OID).map_err(bad_signature)?.content;
    let mgf_hash = mgf_fields.read(TAG_SEQUENCE).map_err(bad_signature)?.raw;
    if mgf_oid != OID_MGF1 || hash_identifier(mgf_hash)? != hash || !mgf_fields.is_empty() {
        return Err(bad_signature(
            "RSASSA-PSS mask generation is not MGF1 with the same hash",
        ));
    }
    if salt != [TAG_INTEGER, 1, hash.length()] {
        return Err(bad_signature(format!(
            "RSASSA-PSS salt length is not {} (the hash length)",
            hash.length()
        )));
    }
    Ok(hash)
}

/// Verifies the CSR's self-signature with its own key.
fn verify_request_signature(
    key: &LeafKey<'_>,
    algorithm: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), LeafError> {
    let outer = der::parse_single(algorithm, TAG_SEQUENCE).map_err(bad_signature)?;
    let mut fields = Reader::new(outer.content);
    let oid = fields.read(TAG_OID).map_err(bad_signature)?.content;
    let parameters = fields.read_all().map_err(bad_signature)?;
    let null_or_absent = match parameters.as_slice() {
        [] => true,
        [null] => null.tag == TAG_NULL && null.content.is_empty(),
        _ => false,
    };
    let mismatch = || {
        bad_signature(format!(
            "signature algorithm {} does not fit the {} key",
            der::oid_to_string(oid),
            key.description()
        ))
    };
    let verification: &'static dyn VerificationAlgorithm =
        if oid == OID_ECDSA_SHA1 || oid.strip_prefix(OID_RSA_PREFIX) == Some(&[0x05][..]) {
            return Err(bad_signature("SHA-1 signatures are not accepted"));
        } else if let Some([arc]) = oid.strip_prefix(OID_ECDSA_SHA2_PREFIX) {
            if !parameters.is_empty() {
                return Err(bad_signature("ECDSA signature algorithm with parameters"));
            }
            match (key.kind, arc) {
                (LeafKeyKind::P256, 2) => &sig::ECDSA_P256_SHA256_ASN1,
                (LeafKeyKind::P256, 3) => &sig::ECDSA_P256_SHA384_ASN1,
                (LeafKeyKind::P256, 4) => &sig::ECDSA_P256_SHA512_ASN1,
                (LeafKeyKind::P384, 2) => &sig::ECDSA_P384_SHA256_ASN1,
                (LeafKeyKind::P384, 3) => &sig::ECDSA_P384_SHA384_ASN1,
                (LeafKeyKind::P384, 4) => &sig::ECDSA_P384_SHA512_ASN1,
                _ => return Err(mismatch()),
            }
        } else if let Some([arc]) = oid.strip_prefix(OID_RSA_PREFIX) {
            if !matches!(key.kind, LeafKeyKind::Rsa(_)) {
                return Err(mismatch());
            }
            match arc {
                0x0b if null_or_absent => &sig::RSA_PKCS1_2048_8192_SHA256,
                0x0c if null_or_absent => &sig::RSA_PKCS1_2048_8192_SHA384,
                0x0d if null_or_absent => &sig::RSA_PKCS1_2048_8192_SHA512,
                0x0a => match pss_hash(&parameters)? {
                    Hash::Sha256 => &sig::RSA_PSS_2048_8192_SHA256,
                    Hash::Sha384 => &sig::RSA_PSS_2048_8192_SHA384,
                    Hash::Sha512 => &sig::RSA_PSS_2048_8192_SHA512,
                },
                _ => {
                    return Err(bad_signature(format!(
                        "RSA signature algorithm {} is not accepted",
                        der::oid_to_string(oid)
                    )));
                }
            }
        } else if oid == OID_ED25519 {
            if key.kind != LeafKeyKind::Ed25519 {
                return Err(mismatch());
            }
            if !parameters.is_empty() {
                return Err(bad_signature("Ed25519 signature algorithm with parameters"));
            }
            &sig::ED25519
        } else {
            return Err(bad_signature(format!(
                "signature algorithm {} is not accepted",
                der::oid_to_string(oid)
            )));
        };
    sig::UnparsedPublicKey::new(verification, key.key)
        .verify(message, signature)
        .map_err(|_| bad_signature("the signature does not verify with the CSR's own key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::throwaway::ThrowawayKey;
    use crate::{LeafKind, pem_encode};
    use aws_lc_rs::signature::KeyPair;
    use carimbo_kms::{HashAlgorithm, RsaModulus, RsaPadding, SignatureAlgorithm};

    fn server() -> LeafProfile {
        LeafProfile::defaults(LeafKind::Server)
    }

    fn params(sans: &[&str]) -> rcgen::CertificateParams {
        let mut params = rcgen::CertificateParams::default();
        params.subject_alt_names = sans
            .iter()
            .map(|san| match san.split_once(':') {
                Some(("dns", name)) => {
                    rcgen::SanType::DnsName(rcgen::string::Ia5String::try_from(name).unwrap())
                }
                Some(("uri", uri)) => {
                    rcgen::SanType::URI(rcgen::string::Ia5String::try_from(uri).unwrap())
                }
                Some(("ip", ip)) => rcgen::SanType::IpAddress(ip.parse().unwrap()),
                _ => panic!("{san}"),
            })
            .collect();
        params
    }

    fn csr_with(key: &impl rcgen::SigningKey, params: &rcgen::CertificateParams) -> Vec<u8> {
        params.serialize_request(key).unwrap().der().to_vec()
    }

    fn csr(algorithm: SignatureAlgorithm, sans: &[&str]) -> (Vec<u8>, ThrowawayKey) {
        let key = ThrowawayKey::generate(algorithm).unwrap();
        (csr_with(&key, &params(sans)), key)
    }

    fn code(result: Result<ValidatedCsr, LeafError>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }

    /// An RSA-2048 key, which Carimbo never makes itself.
    struct Rsa2048(aws_lc_rs::signature::RsaKeyPair);

    impl rcgen::PublicKeyData for Rsa2048 {
        fn der_bytes(&self) -> &[u8] {
            self.0.public_key().as_ref()
        }
        fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
            &rcgen::PKCS_RSA_SHA256
        }
    }

    impl rcgen::SigningKey for Rsa2048 {
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
            let mut signature = vec![0; self.0.public_modulus_len()];
            self.0
                .sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(|_| rcgen::Error::RemoteKeyError)?;
            Ok(signature)
        }
    }

    #[test]
    fn good_requests_give_key_and_names() {
        let (der, key) = csr(
            SignatureAlgorithm::EcdsaP256Sha256,
            &["dns:WWW.example.com", "ip:192.0.2.1"],
        );
        let validated = validate_csr(&der, &server()).unwrap();
        assert_eq!(validated.subject_public_key_info, key.spki());
        assert_eq!(validated.key_description, "ECDSA P-256");
        assert_eq!(
            validated.requested_sans,
            vec![
                SubjectAltName::Dns("www.example.com".into()),
                SubjectAltName::Ip("192.0.2.1".parse().unwrap())
            ]
        );
        // PEM, with text around it and the legacy label, gives the same.
        let pem = format!(
            "issued by a test\n{}",
            pem_encode("CERTIFICATE REQUEST", &der)
        );
        assert_eq!(validate_csr(pem.as_bytes(), &server()).unwrap(), validated);
        let legacy = pem_encode("NEW CERTIFICATE REQUEST", &der);
        assert_eq!(
            validate_csr(legacy.as_bytes(), &server()).unwrap(),
            validated
        );

        let (der, _) = csr(SignatureAlgorithm::EcdsaP384Sha384, &["dns:a.example.com"]);
        let validated = validate_csr(&der, &server()).unwrap();
        assert_eq!(validated.key_description, "ECDSA P-384");

        let rsa = SignatureAlgorithm::Rsa {
            modulus: RsaModulus::Bits3072,
            padding: RsaPadding::Pkcs1v15,
            hash: HashAlgorithm::Sha256,
        };
        let (der, _) = csr(rsa, &["dns:a.example.com"]);
        let validated = validate_csr(&der, &server()).unwrap();
        assert_eq!(validated.key_description, "RSA 3072");
    }

    #[test]
    fn ed25519_follows_the_profile_flag() {
        let workload = LeafProfile::defaults(LeafKind::Workload);
        let (der, _) = csr(
            SignatureAlgorithm::Ed25519,
            &["uri:spiffe://prod.example.com/api"],
        );
        let error = validate_csr(&der, &workload).unwrap_err();
        assert_eq!(error.code(), "unsupported_key");
        assert!(error.to_string().contains("Ed25519"), "{error}");
        let mut allowed = workload;
        allowed.allow_ed25519 = true;
        let validated = validate_csr(&der, &allowed).unwrap();
        assert_eq!(validated.key_description, "Ed25519");
    }

    #[test]
    fn rsa_2048_is_weak() {
        let key = Rsa2048(
            aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
        );
        let der = csr_with(&key, &params(&["dns:a.example.com"]));
        let error = validate_csr(&der, &server()).unwrap_err();
        assert_eq!(error.code(), "weak_key");
        assert!(error.to_string().contains("RSA 2048"), "{error}");
    }

    #[test]
    fn tampered_requests_fail_the_signature() {
        let (der, _) = csr(
            SignatureAlgorithm::EcdsaP256Sha256,
            &["dns:www.example.com"],
        );
        let mut changed_name = der.clone();
        let at = changed_name.windows(3).position(|w| w == b"www").unwrap();
        changed_name[at] = b'v';
        let error = validate_csr(&changed_name, &server()).unwrap_err();
        assert_eq!(error.code(), "bad_csr_signature", "{error}");
        let mut changed_signature = der;
        let last = changed_signature.len() - 1;
        changed_signature[last] ^= 0x01;
        assert_eq!(
            code(validate_csr(&changed_signature, &server())),
            "bad_csr_signature"
        );
    }

    #[test]
    fn ca_requests_are_refused() {
        let key = ThrowawayKey::generate(SignatureAlgorithm::EcdsaP256Sha256).unwrap();
        let mut ca = params(&["dns:a.example.com"]);
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let error = validate_csr(&csr_with(&key, &ca), &server()).unwrap_err();
        assert_eq!(error.code(), "ca_requested");
        assert!(error.to_string().contains("cA TRUE"), "{error}");
        let mut cert_sign = params(&["dns:a.example.com"]);
        cert_sign.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        assert_eq!(
            code(validate_csr(&csr_with(&key, &cert_sign), &server())),
            "ca_requested"
        );
        // An explicit cA FALSE is fine.
        let mut not_ca = params(&["dns:a.example.com"]);
        not_ca.is_ca = rcgen::IsCa::ExplicitNoCa;
        assert_eq!(
            code(validate_csr(&csr_with(&key, &not_ca), &server())),
            "ok"
        );
    }

    #[test]
    fn other_requested_extensions_are_ignored() {
        let key = ThrowawayKey::generate(SignatureAlgorithm::EcdsaP256Sha256).unwrap();
        let mut asking = params(&["dns:a.example.com"]);
        asking
            .distinguished_name
            .push(rcgen::DnType::CommonName, "evil.example.org");
        asking.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::CodeSigning];
        asking.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment];
        let mut custom = rcgen::CustomExtension::from_oid_content(&[1, 2, 3, 4], vec![5, 0]);
        custom.set_criticality(true);
        asking.custom_extensions.push(custom);
        let validated = validate_csr(&csr_with(&key, &asking), &server()).unwrap();
        assert_eq!(
            validated.requested_sans,
            vec![SubjectAltName::Dns("a.example.com".into())]
        );
    }

    #[test]
    fn names_are_required_and_checked_for_the_profile() {
        let (der, _) = csr(SignatureAlgorithm::EcdsaP256Sha256, &[]);
        assert_eq!(code(validate_csr(&der, &server())), "no_san");
        let (der, _) = csr(
            SignatureAlgorithm::EcdsaP256Sha256,
            &["uri:spiffe://prod.example.com/api", "dns:api.example.com"],
        );
        let workload = LeafProfile::defaults(LeafKind::Workload);
        assert_eq!(
            code(validate_csr(&der, &workload)),
            "san_not_allowed_by_profile"
        );
        let (der, _) = csr(SignatureAlgorithm::EcdsaP256Sha256, &["dns:*.example.com"]);
        assert_eq!(code(validate_csr(&der, &server())), "wildcard_not_allowed");
        let key = ThrowawayKey::generate(SignatureAlgorithm::EcdsaP256Sha256).unwrap();
        let mut email = params(&["dns:a.example.com"]);
        email.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            rcgen::string::Ia5String::try_from("a@example.com").unwrap(),
        ));
        let error = validate_csr(&csr_with(&key, &email), &server()).unwrap_err();
        assert_eq!(error.code(), "invalid_san");
        assert!(error.to_string().contains("a@example.com"), "{error}");
    }

    #[test]
    fn malformed_inputs_are_refused() {
        assert_eq!(code(validate_csr(b"", &server())), "malformed_csr");
        assert_eq!(code(validate_csr(b"garbage", &server())), "malformed_csr");
        assert_eq!(
            code(validate_csr(&[0x30, 0x03, 0x02, 0x01, 0x00], &server())),
            "malformed_csr"
        );
        let (der, _) = csr(SignatureAlgorithm::EcdsaP256Sha256, &["dns:a.example.com"]);
        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(code(validate_csr(&trailing, &server())), "malformed_csr");
        let wrong_label = pem_encode("CERTIFICATE", &der);
        let error = validate_csr(wrong_label.as_bytes(), &server()).unwrap_err();
        assert_eq!(error.code(), "malformed_csr");
        assert!(error.to_string().contains("\"CERTIFICATE\""), "{error}");
        let two = format!(
            "{}{}",
            pem_encode("CERTIFICATE REQUEST", &der),
            pem_encode("CERTIFICATE REQUEST", &der)
        );
        assert_eq!(
            code(validate_csr(two.as_bytes(), &server())),
            "malformed_csr"
        );
        let broken =
            "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n";
        assert_eq!(
            code(validate_csr(broken.as_bytes(), &server())),
            "malformed_csr"
        );
    }

    #[test]
    fn oversized_inputs_are_refused_before_parsing() {
        let big = vec![b'A'; MAX_CSR_BYTES + 1];
        let error = validate_csr(&big, &server()).unwrap_err();
        assert_eq!(error.code(), "csr_too_large");
        assert!(error.to_string().contains(&(MAX_CSR_BYTES + 1).to_string()));
    }
}
