//! OCSP (RFC 6960) with the RFC 5019 lightweight profile: parsing requests, building
//! and signing responses over a [`carimbo_kms::SigningKey`], reading responses back.
//! Everything is written and read with this crate's own strict DER code.
//!
//! Decisions:
//!
//! - **Requests are parsed strictly.** DER with definite, minimal lengths; no trailing
//!   bytes; at most [`MAX_OCSP_REQUEST_BYTES`] (refused before any parsing) and
//!   [`MAX_OCSP_REQUEST_CERTS`] certificates; version v1 only; CertID hashes SHA-1,
//!   SHA-256, SHA-384 or SHA-512 with hash values of the right length; serials
//!   positive, minimal, at most 20 octets. The two DEFAULT values a client might
//!   encode explicitly (version v1, critical FALSE) are tolerated: they are
//!   unambiguous. Every refusal is an [`OcspRequestError`], answered with
//!   `malformedRequest`.
//! - **Signed requests are accepted and their signature is ignored.** The responder
//!   answers anyone (RFC 5019 §2.1.1 clients do not sign), so a signature proves
//!   nothing it needs; it is neither verified nor required.
//! - **Extensions**: the nonce (RFC 6960 §4.4.1, RFC 8954) is the only request
//!   extension understood. Its extnValue content (the bytes inside the OCTET STRING)
//!   is echoed verbatim, 1 to [`MAX_OCSP_NONCE_BYTES`] bytes. Other non-critical
//!   extensions are ignored; an unknown critical extension, or any extension twice, is
//!   refused.
//! - **Responses** are BasicOCSPResponses (v1) identified by key: responderID byKey is
//!   the SHA-1 of the responder's subjectPublicKey bits (RFC 6960 §4.2.1 KeyHash).
//!   Times are GeneralizedTime `YYYYMMDDHHMMSSZ` (RFC 6960 §4.2.2.1, RFC 5019 §2.2.4);
//!   every single response has a nextUpdate (RFC 5019 §2.2.4); a revocation reason of
//!   unspecified is omitted as in CRLs (RFC 5280 §5.3.1). The delegated responder's
//!   certificate goes in `certs` so that clients can verify it (RFC 6960 §4.2.2.2).
//! - **Sign like certificates and CRLs**: [`prepare_ocsp_response`] builds and checks
//!   the ResponseData once; [`PreparedOcspResponse::sign`] checks the key is the
//!   responder's, signs exactly those bytes, verifies the signature, and reads the
//!   assembled response back before returning it.

use std::fmt;
use std::ops::Range;

use carimbo_kms::SignatureAlgorithm;
use carimbo_kms::encoding::parse_spki;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::algorithm::{check_spki_fits, signature_algorithm_identifier};
use crate::der::{
    self, RawExtension, Reader, TAG_BIT_STRING, TAG_ENUMERATED, TAG_GENERALIZED_TIME, TAG_INTEGER,
    TAG_NULL, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE, Tlv, context_constructed, context_primitive,
    oid,
};
use crate::issuer::whole_seconds;
use crate::raw::RawCertificate;
use crate::{IssuerInfo, PkiError, RevocationReason, SerialNumber};

/// Largest OCSP request accepted, in bytes; larger input is refused before parsing.
pub const MAX_OCSP_REQUEST_BYTES: usize = 4096;

/// Most certificates one OCSP request may ask about.
pub const MAX_OCSP_REQUEST_CERTS: usize = 16;

/// Longest nonce accepted and echoed, in bytes (the extnValue content).
pub const MAX_OCSP_NONCE_BYTES: usize = 128;

/// How far a response's thisUpdate may lie after its producedAt (clock skew between
/// the machine that decided the status and the one that signs).
pub const MAX_OCSP_CLOCK_SKEW: Duration = Duration::minutes(5);

/// Longest serial magnitude accepted in a CertID (RFC 5280 §4.1.2.2).
const MAX_SERIAL_BYTES: usize = 20;

// ---- hashes and CertIDs ----

/// The hash algorithm of a CertID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OcspHash {
    /// SHA-1: what RFC 5019 §2.1.1 clients use (only to identify certificates, never
    /// to sign).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl OcspHash {
    /// Every supported hash.
    pub const ALL: [OcspHash; 4] = [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512];

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        use aws_lc_rs::digest;
        let algorithm = match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        };
        digest::digest(algorithm, data).as_ref().to_vec()
    }

    /// The digest length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The algorithm's OID as DER content bytes.
    fn oid(self) -> &'static [u8] {
        match self {
            Self::Sha1 => oid::SHA1,
            Self::Sha256 => oid::SHA256,
            Self::Sha384 => oid::SHA384,
            Self::Sha512 => oid::SHA512,
        }
    }

    fn from_oid(content: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|hash| hash.oid() == content)
    }

    /// The DER `AlgorithmIdentifier`, with NULL parameters as OpenSSL writes it.
    pub fn algorithm_identifier(self) -> Vec<u8> {
        der::sequence(&[&der::oid(self.oid()), &der::tlv(TAG_NULL, &[])])
    }
}

impl fmt::Display for OcspHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        })
    }
}

/// A `CertID` (RFC 6960 §4.1.1): which certificate a request asks about, or a
/// response answers for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertId {
    /// The hash algorithm of the two issuer hashes.
    pub hash: OcspHash,
    /// Hash of the issuer's subject name DER.
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's subjectPublicKey bits.
    pub issuer_key_hash: Vec<u8>,
    /// The serial number's magnitude: big-endian, without a leading zero byte.
    pub serial: Vec<u8>,
    /// The exact DER of the CertID, echoed in the response.
    pub der: Vec<u8>,
}

impl CertId {
    /// A CertID for the certificate with `serial` (unsigned big-endian bytes, leading
    /// zeros ignored: a magnitude or [`SerialNumber::as_bytes`]), from the issuer's
    /// hashes, encoded as OpenSSL encodes it (hash AlgorithmIdentifier with NULL
    /// parameters).
    pub fn new(
        hash: OcspHash,
        issuer_name_hash: &[u8],
        issuer_key_hash: &[u8],
        serial: &[u8],
    ) -> Result<Self, PkiError> {
        for (what, value) in [
            ("issuer name hash", issuer_name_hash),
            ("issuer key hash", issuer_key_hash),
        ] {
            if value.len() != hash.output_len() {
                return Err(PkiError::InvalidTemplate(format!(
                    "{what} is {} bytes; {hash} hashes are {}",
                    value.len(),
                    hash.output_len()
                )));
            }
        }
        let der = der::sequence(&[
            &hash.algorithm_identifier(),
            &der::tlv(TAG_OCTET_STRING, issuer_name_hash),
            &der::tlv(TAG_OCTET_STRING, issuer_key_hash),
            &der::tlv(TAG_INTEGER, &der::unsigned_integer_content(serial)),
        ]);
        Self::parse(&der).map_err(|e| PkiError::InvalidTemplate(format!("CertID: {e}")))
    }

    /// Parses `der`, exactly one DER `CertID`, with the request checks.
    pub fn parse(der: &[u8]) -> Result<Self, OcspRequestError> {
        let element = der::parse_single(der, TAG_SEQUENCE).map_err(malformed("CertID"))?;
        parse_cert_id(element)
    }

    /// The serial as a [`SerialNumber`] (to look the certificate up).
    pub fn serial_number(&self) -> Result<SerialNumber, PkiError> {
        SerialNumber::from_der_content(&der::unsigned_integer_content(&self.serial))
    }

    /// Whether `other` names the same certificate: same hash algorithm, issuer hashes
    /// and serial (the AlgorithmIdentifier parameters may differ).
    pub fn same_certificate(&self, other: &CertId) -> bool {
        self.hash == other.hash
            && self.issuer_name_hash == other.issuer_name_hash
            && self.issuer_key_hash == other.issuer_key_hash
            && self.serial == other.serial
    }
}

/// Parses the content of a CertID SEQUENCE.
fn parse_cert_id(element: Tlv<'_>) -> Result<CertId, OcspRequestError> {
    let mut fields = Reader::new(element.content);
    let algorithm = fields
        .read(TAG_SEQUENCE)
        .map_err(malformed("CertID hashAlgorithm"))?;
    let name_hash = fields
        .read(TAG_OCTET_STRING)
        .map_err(malformed("CertID issuerNameHash"))?;
    let key_hash = fields
        .read(TAG_OCTET_STRING)
        .map_err(malformed("CertID issuerKeyHash"))?;
    let serial = fields
        .read(TAG_INTEGER)
        .map_err(malformed("CertID serialNumber"))?;
    if !fields.is_empty() {
        return Err(OcspRequestError::Malformed(
            "trailing fields in a CertID".into(),
        ));
    }
    let mut parts = Reader::new(algorithm.content);
    let algorithm_oid = parts
        .read(TAG_OID)
        .map_err(malformed("CertID hashAlgorithm"))?;
    if let Some(parameters) = parts
        .read_optional(TAG_NULL)
        .map_err(malformed("hashAlgorithm"))?
        && !parameters.content.is_empty()
    {
        return Err(OcspRequestError::Malformed(
            "hashAlgorithm NULL parameters are not empty".into(),
        ));
    }
    if !parts.is_empty() {
        return Err(OcspRequestError::Malformed(
            "hashAlgorithm parameters are neither absent nor NULL".into(),
        ));
    }
    let hash = OcspHash::from_oid(algorithm_oid.content).ok_or_else(|| {
        OcspRequestError::UnsupportedHash {
            oid: der::oid_to_string(algorithm_oid.content),
        }
    })?;
    for (field, value) in [
        ("issuerNameHash", name_hash.content),
        ("issuerKeyHash", key_hash.content),
    ] {
        if value.len() != hash.output_len() {
            return Err(OcspRequestError::HashLength {
                field,
                hash,
                found: value.len(),
            });
        }
    }
    Ok(CertId {
        hash,
        issuer_name_hash: name_hash.content.to_vec(),
        issuer_key_hash: key_hash.content.to_vec(),
        serial: serial_magnitude(serial.content)?,
        der: element.raw.to_vec(),
    })
}

/// The magnitude of a positive, minimal, non-zero INTEGER of at most 20 octets.
fn serial_magnitude(content: &[u8]) -> Result<Vec<u8>, OcspRequestError> {
    let invalid = |why: &str| Err(OcspRequestError::InvalidSerial(why.into()));
    let magnitude = match content {
        [] => return invalid("the INTEGER has no content"),
        [first, ..] if first & 0x80 != 0 => return invalid("it is negative"),
        [0x00] => return invalid("it is zero"),
        [0x00, next, ..] if next & 0x80 == 0 => {
            return invalid("it is not minimally encoded");
        }
        [0x00, rest @ ..] => rest,
        all => all,
    };
    if magnitude.len() > MAX_SERIAL_BYTES {
        return invalid("it is longer than 20 octets");
    }
    Ok(magnitude.to_vec())
}

/// The issuer's name and key hashes under every [`OcspHash`], to recognise the CertIDs
/// of certificates it issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerHashes {
    hashes: Vec<(OcspHash, Vec<u8>, Vec<u8>)>,
}

impl IssuerHashes {
    /// The hashes of the issuer certificate `der`: its subject Name DER and its
    /// subjectPublicKey BIT STRING value (without tag, length and unused-bits byte).
    pub fn from_certificate(der: &[u8]) -> Result<Self, PkiError> {
        let raw = RawCertificate::parse(der)
            .map_err(|e| PkiError::Parse(format!("issuer certificate: {e}")))?;
        Self::new(raw.subject.raw, raw.spki.raw)
    }

    /// The hashes of `issuer` (its subject DER and public key).
    pub fn from_issuer(issuer: &IssuerInfo) -> Result<Self, PkiError> {
        Self::new(issuer.subject_der(), issuer.subject_public_key_info())
    }

    fn new(subject_der: &[u8], spki: &[u8]) -> Result<Self, PkiError> {
        let info =
            parse_spki(spki).map_err(|e| PkiError::Parse(format!("issuer public key: {e}")))?;
        Ok(Self {
            hashes: OcspHash::ALL
                .into_iter()
                .map(|hash| (hash, hash.digest(subject_der), hash.digest(info.key)))
                .collect(),
        })
    }

    fn entry(&self, hash: OcspHash) -> Option<&(OcspHash, Vec<u8>, Vec<u8>)> {
        self.hashes.iter().find(|(h, _, _)| *h == hash)
    }

    /// The hash of the issuer's name under `hash`.
    pub fn name_hash(&self, hash: OcspHash) -> &[u8] {
        self.entry(hash).map_or(&[][..], |(_, name, _)| name)
    }

    /// The hash of the issuer's public key under `hash`.
    pub fn key_hash(&self, hash: OcspHash) -> &[u8] {
        self.entry(hash).map_or(&[][..], |(_, _, key)| key)
    }

    /// Whether `id` names a certificate of this issuer: both hashes match, computed
    /// with the CertID's own hash algorithm.
    pub fn matches(&self, id: &CertId) -> bool {
        self.entry(id.hash).is_some_and(|(_, name, key)| {
            *name == id.issuer_name_hash && *key == id.issuer_key_hash
        })
    }

    /// The CertID of this issuer's certificate `serial` (unsigned big-endian bytes,
    /// leading zeros ignored: a magnitude or [`SerialNumber::as_bytes`]) under `hash`.
    pub fn cert_id(&self, hash: OcspHash, serial: &[u8]) -> Result<CertId, PkiError> {
        CertId::new(hash, self.name_hash(hash), self.key_hash(hash), serial)
    }
}

// ---- requests ----

/// A parsed OCSP request: what a responder needs from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspRequest {
    /// The certificates asked about, in request order (1 to
    /// [`MAX_OCSP_REQUEST_CERTS`]).
    pub certs: Vec<CertId>,
    /// The nonce's extnValue content, to echo in the response.
    pub nonce: Option<Vec<u8>>,
}

/// Why an OCSP request is refused. Every variant is answered with the
/// `malformedRequest` status ([`status`](Self::status)).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OcspRequestError {
    /// No bytes at all.
    #[error("the OCSP request is empty")]
    Empty,
    /// More than [`MAX_OCSP_REQUEST_BYTES`].
    #[error("the OCSP request is {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Not DER, or not the OCSPRequest structure.
    #[error("malformed OCSP request: {0}")]
    Malformed(String),
    /// A version other than v1.
    #[error("unsupported OCSP request version {0} (only v1 is defined)")]
    UnsupportedVersion(String),
    /// An empty requestList.
    #[error("the OCSP request asks about no certificate")]
    NoCertificates,
    /// More than [`MAX_OCSP_REQUEST_CERTS`] certificates.
    #[error("the OCSP request asks about {count} certificates; at most {max} are accepted")]
    TooManyCertificates {
        /// How many were asked about.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A CertID hash algorithm other than SHA-1, SHA-256, SHA-384 or SHA-512.
    #[error("unsupported CertID hash algorithm {oid}")]
    UnsupportedHash {
        /// The algorithm's OID, dotted.
        oid: String,
    },
    /// A CertID hash whose length does not fit its algorithm.
    #[error("CertID {field} is {found} bytes; {hash} hashes are {} bytes", hash.output_len())]
    HashLength {
        /// `issuerNameHash` or `issuerKeyHash`.
        field: &'static str,
        /// The CertID's hash algorithm.
        hash: OcspHash,
        /// The length found.
        found: usize,
    },
    /// A CertID serial that is negative, zero, non-minimal or longer than 20 octets.
    #[error("invalid CertID serial number: {0}")]
    InvalidSerial(String),
    /// A critical extension this responder does not understand.
    #[error("unsupported critical extension {oid}")]
    CriticalExtension {
        /// The extension's OID, dotted.
        oid: String,
    },
    /// An empty or oversized nonce.
    #[error("invalid nonce: {0}")]
    InvalidNonce(String),
}

impl OcspRequestError {
    /// The OCSP response status to answer with: always `malformedRequest`.
    pub fn status(&self) -> OcspResponseStatus {
        OcspResponseStatus::MalformedRequest
    }

    /// A stable snake_case code, for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_request",
            Self::TooLarge { .. } => "request_too_large",
            Self::Malformed(_) => "malformed_request",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::NoCertificates => "no_certificates",
            Self::TooManyCertificates { .. } => "too_many_certificates",
            Self::UnsupportedHash { .. } => "unsupported_hash",
            Self::HashLength { .. } => "hash_length",
            Self::InvalidSerial(_) => "invalid_serial",
            Self::CriticalExtension { .. } => "critical_extension",
            Self::InvalidNonce(_) => "invalid_nonce",
        }
    }
}

/// Maps a DER reader error about `what` to [`OcspRequestError::Malformed`].
fn malformed(what: &'static str) -> impl Fn(String) -> OcspRequestError {
    move |e| OcspRequestError::Malformed(format!("{what}: {e}"))
}

/// Parses `[n] EXPLICIT Extensions` content: at least one extension, none twice, none
/// critical unless its OID is in `known`.
fn parse_request_extensions<'a>(
    wrapper: Tlv<'a>,
    known: &[&[u8]],
) -> Result<Vec<RawExtension<'a>>, OcspRequestError> {
    let list = der::parse_single(wrapper.content, TAG_SEQUENCE).map_err(malformed("extensions"))?;
    let extensions = der::parse_extensions(list.content).map_err(malformed("extensions"))?;
    if extensions.is_empty() {
        return Err(OcspRequestError::Malformed(
            "an empty extension list".into(),
        ));
    }
    for (index, extension) in extensions.iter().enumerate() {
        if extensions[..index].iter().any(|e| e.oid == extension.oid) {
            return Err(OcspRequestError::Malformed(format!(
                "extension {} appears twice",
                der::oid_to_string(extension.oid)
            )));
        }
        if extension.critical && !known.contains(&extension.oid) {
            return Err(OcspRequestError::CriticalExtension {
                oid: der::oid_to_string(extension.oid),
            });
        }
    }
    Ok(extensions)
}

/// Checks an explicit `[0] EXPLICIT Version` (its content).
fn check_version(content: &[u8]) -> Result<(), OcspRequestError> {
    let version = der::parse_single(content, TAG_INTEGER).map_err(malformed("version"))?;
    match version.content {
        [0x00] => Ok(()),
        [] => Err(OcspRequestError::Malformed(
            "version INTEGER has no content".into(),
        )),
        other => Err(OcspRequestError::UnsupportedVersion(format!(
            "0x{}",
            hex::encode(other)
        ))),
    }
}

/// Parses a DER `OCSPRequest` (RFC 6960 §4.1.1) with the checks of the module
/// documentation. A signed request is accepted and its signature ignored. Never
/// panics, whatever the input.
pub fn parse_ocsp_request(der: &[u8]) -> Result<OcspRequest, OcspRequestError> {
    if der.is_empty() {
        return Err(OcspRequestError::Empty);
    }
    if der.len() > MAX_OCSP_REQUEST_BYTES {
        return Err(OcspRequestError::TooLarge {
            size: der.len(),
            max: MAX_OCSP_REQUEST_BYTES,
        });
    }
    let outer = der::parse_single(der, TAG_SEQUENCE).map_err(malformed("OCSPRequest"))?;
    let mut fields = Reader::new(outer.content);
    let tbs = fields.read(TAG_SEQUENCE).map_err(malformed("tbsRequest"))?;
    // optionalSignature: accepted, not verified (see the module documentation).
    fields
        .read_optional(context_constructed(0))
        .map_err(malformed("optionalSignature"))?;
    if !fields.is_empty() {
        return Err(OcspRequestError::Malformed(
            "trailing fields in OCSPRequest".into(),
        ));
    }

    let mut fields = Reader::new(tbs.content);
    if let Some(version) = fields
        .read_optional(context_constructed(0))
        .map_err(malformed("version"))?
    {
        check_version(version.content)?;
    }
    // requestorName: informative only.
    fields
        .read_optional(context_constructed(1))
        .map_err(malformed("requestorName"))?;
    let list = fields
        .read(TAG_SEQUENCE)
        .map_err(malformed("requestList"))?;
    let extensions = match fields
        .read_optional(context_constructed(2))
        .map_err(malformed("requestExtensions"))?
    {
        Some(wrapper) => parse_request_extensions(wrapper, &[oid::OCSP_NONCE])?,
        None => Vec::new(),
    };
    if !fields.is_empty() {
        return Err(OcspRequestError::Malformed(
            "trailing fields in tbsRequest".into(),
        ));
    }

    let requests = Reader::new(list.content)
        .read_all()
        .map_err(malformed("requestList"))?;
    if requests.is_empty() {
        return Err(OcspRequestError::NoCertificates);
    }
    if requests.len() > MAX_OCSP_REQUEST_CERTS {
        return Err(OcspRequestError::TooManyCertificates {
            count: requests.len(),
            max: MAX_OCSP_REQUEST_CERTS,
        });
    }
    let mut certs = Vec::with_capacity(requests.len());
    for request in requests {
        if request.tag != TAG_SEQUENCE {
            return Err(OcspRequestError::Malformed(
                "a Request is not a SEQUENCE".into(),
            ));
        }
        let mut parts = Reader::new(request.content);
        let cert_id = parts.read(TAG_SEQUENCE).map_err(malformed("reqCert"))?;
        if let Some(wrapper) = parts
            .read_optional(context_constructed(0))
            .map_err(malformed("singleRequestExtensions"))?
        {
            parse_request_extensions(wrapper, &[])?;
        }
        if !parts.is_empty() {
            return Err(OcspRequestError::Malformed(
                "trailing fields in a Request".into(),
            ));
        }
        certs.push(parse_cert_id(cert_id)?);
    }

    let nonce = match extensions.iter().find(|e| e.oid == oid::OCSP_NONCE) {
        None => None,
        Some(extension) if extension.value.is_empty() => {
            return Err(OcspRequestError::InvalidNonce("it is empty".into()));
        }
        Some(extension) if extension.value.len() > MAX_OCSP_NONCE_BYTES => {
            return Err(OcspRequestError::InvalidNonce(format!(
                "it is {} bytes; at most {MAX_OCSP_NONCE_BYTES} are accepted",
                extension.value.len()
            )));
        }
        Some(extension) => Some(extension.value.to_vec()),
    };
    Ok(OcspRequest { certs, nonce })
}

/// Encodes an unsigned OCSP request for `certs`, with `nonce` (the extnValue content,
/// e.g. a DER OCTET STRING of random bytes as RFC 8954 asks) when given: the client
/// side, for tests and health checks.
pub fn build_ocsp_request(certs: &[CertId], nonce: Option<&[u8]>) -> Vec<u8> {
    let requests: Vec<Vec<u8>> = certs.iter().map(|id| der::sequence(&[&id.der])).collect();
    let requests: Vec<&[u8]> = requests.iter().map(Vec::as_slice).collect();
    let mut tbs = der::sequence(&requests);
    if let Some(nonce) = nonce {
        let extensions = der::sequence(&[&der::extension(oid::OCSP_NONCE, false, nonce)]);
        tbs.extend_from_slice(&der::tlv(context_constructed(2), &extensions));
    }
    der::sequence(&[&der::tlv(TAG_SEQUENCE, &tbs)])
}

// ---- responses ----

/// `OCSPResponseStatus` (RFC 6960 §4.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OcspResponseStatus {
    /// 0: the response has valid confirmations.
    Successful,
    /// 1: the request was not understood.
    MalformedRequest,
    /// 2: the responder failed internally.
    InternalError,
    /// 3: try again later.
    TryLater,
    /// 5: the request must be signed.
    SigRequired,
    /// 6: this responder does not answer for that certificate (RFC 5019 §2.2.3).
    Unauthorized,
}

impl OcspResponseStatus {
    const ALL: [OcspResponseStatus; 6] = [
        Self::Successful,
        Self::MalformedRequest,
        Self::InternalError,
        Self::TryLater,
        Self::SigRequired,
        Self::Unauthorized,
    ];

    /// The ENUMERATED value.
    pub fn code(self) -> u8 {
        match self {
            Self::Successful => 0,
            Self::MalformedRequest => 1,
            Self::InternalError => 2,
            Self::TryLater => 3,
            Self::SigRequired => 5,
            Self::Unauthorized => 6,
        }
    }

    /// The status with ENUMERATED value `code` (4 is unused).
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.code() == code)
    }
}

impl fmt::Display for OcspResponseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Successful => "successful",
            Self::MalformedRequest => "malformedRequest",
            Self::InternalError => "internalError",
            Self::TryLater => "tryLater",
            Self::SigRequired => "sigRequired",
            Self::Unauthorized => "unauthorized",
        })
    }
}

fn enumerated(value: u8) -> Vec<u8> {
    der::tlv(TAG_ENUMERATED, &der::unsigned_integer_content(&[value]))
}

/// An unsigned `OCSPResponse` carrying only `status` (RFC 6960 §4.2.1: no
/// responseBytes). A successful response needs a signed body, so `Successful` is
/// answered as `internalError` here.
pub fn ocsp_error_response(status: OcspResponseStatus) -> Vec<u8> {
    let status = match status {
        OcspResponseStatus::Successful => OcspResponseStatus::InternalError,
        other => other,
    };
    der::sequence(&[&enumerated(status.code())])
}

/// The status of one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked (RFC 6960 §2.2: at least not known to be revoked).
    Good,
    /// Revoked at `time`, for `reason` (`None` or `Unspecified`: no reason written).
    Revoked {
        /// When it was revoked.
        time: OffsetDateTime,
        /// Why, if said.
        reason: Option<RevocationReason>,
    },
    /// The responder does not know the certificate.
    Unknown,
}

/// One `SingleResponse` to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleResponseTemplate {
    /// The DER CertID: the request's, byte for byte ([`CertId::der`]).
    pub cert_id_der: Vec<u8>,
    /// The certificate's status.
    pub status: CertStatus,
    /// When the status was known to be correct (whole seconds are written).
    pub this_update: OffsetDateTime,
    /// When newer information will be available; after `this_update`.
    pub next_update: OffsetDateTime,
}

/// Everything that goes into a BasicOCSPResponse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspResponseTemplate {
    /// When the response is signed.
    pub produced_at: OffsetDateTime,
    /// The answers (at least one).
    pub responses: Vec<SingleResponseTemplate>,
    /// The request's nonce to echo, if any (extnValue content, 1 to
    /// [`MAX_OCSP_NONCE_BYTES`] bytes).
    pub nonce: Option<Vec<u8>>,
    /// DER of the delegated responder's certificate, placed in `certs`; empty when
    /// the CA signs its responses itself (nothing is placed then).
    pub responder_certificate: Vec<u8>,
}

/// A ResponseData built and checked: the only thing that can be signed. Get one from
/// [`prepare_ocsp_response`].
#[derive(Debug)]
pub struct PreparedOcspResponse {
    tbs: Vec<u8>,
    algorithm: SignatureAlgorithm,
    algorithm_identifier: Vec<u8>,
    responder_spki: Vec<u8>,
    responder_certificate: Vec<u8>,
}

/// GeneralizedTime `YYYYMMDDHHMMSSZ` of `time` (whole seconds, UTC).
fn generalized_time(time: OffsetDateTime) -> Result<Vec<u8>, PkiError> {
    let time = whole_seconds(time);
    if !(0..=9999).contains(&time.year()) {
        return Err(PkiError::InvalidTemplate(format!(
            "{time} cannot be written as a GeneralizedTime"
        )));
    }
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    Ok(der::tlv(TAG_GENERALIZED_TIME, text.as_bytes()))
}

/// Reads a GeneralizedTime `YYYYMMDDHHMMSSZ`.
fn parse_generalized_time(element: Tlv<'_>) -> Result<OffsetDateTime, String> {
    let text = element.content;
    if element.tag != TAG_GENERALIZED_TIME
        || text.len() != 15
        || text.get(14) != Some(&b'Z')
        || !text[..14].iter().all(u8::is_ascii_digit)
    {
        return Err("a time is not a GeneralizedTime YYYYMMDDHHMMSSZ".into());
    }
    let number = |range: Range<usize>| {
        text[range]
            .iter()
            .fold(0u32, |n, digit| n * 10 + u32::from(digit - b'0'))
    };
    let invalid = |e: time::error::ComponentRange| format!("invalid time: {e}");
    let month = Month::try_from(number(4..6) as u8).map_err(invalid)?;
    let date = Date::from_calendar_date(number(0..4) as i32, month, number(6..8) as u8)
        .map_err(invalid)?;
    let clock = Time::from_hms(
        number(8..10) as u8,
        number(10..12) as u8,
        number(12..14) as u8,
    )
    .map_err(invalid)?;
    Ok(PrimitiveDateTime::new(date, clock).assume_utc())
}

fn encode_status(status: &CertStatus) -> Result<Vec<u8>, PkiError> {
    Ok(match status {
        // good [0] IMPLICIT NULL, unknown [2] IMPLICIT UnknownInfo (NULL).
        CertStatus::Good => der::tlv(context_primitive(0), &[]),
        CertStatus::Unknown => der::tlv(context_primitive(2), &[]),
        // revoked [1] IMPLICIT RevokedInfo ::= SEQUENCE { revocationTime,
        // revocationReason [0] EXPLICIT CRLReason OPTIONAL }.
        CertStatus::Revoked { time, reason } => {
            let mut content = generalized_time(*time)?;
            if let Some(reason) = reason.filter(|r| *r != RevocationReason::Unspecified) {
                content.extend_from_slice(&der::tlv(
                    context_constructed(0),
                    &enumerated(reason.code()),
                ));
            }
            der::tlv(context_constructed(1), &content)
        }
    })
}

/// Builds the `ResponseData` of a BasicOCSPResponse from `template`, to be signed by
/// the responder key `responder_spki` (DER SubjectPublicKeyInfo) with `algorithm`.
///
/// Checks: the key fits the algorithm; at least one response; every `cert_id_der` is
/// a CertID; nextUpdate after thisUpdate; thisUpdate and any revocation time no later
/// than producedAt plus [`MAX_OCSP_CLOCK_SKEW`]; the nonce is 1 to
/// [`MAX_OCSP_NONCE_BYTES`] bytes; the responder certificate, when given, certifies
/// `responder_spki`.
pub fn prepare_ocsp_response(
    template: &OcspResponseTemplate,
    responder_spki: &[u8],
    algorithm: SignatureAlgorithm,
) -> Result<PreparedOcspResponse, PkiError> {
    check_spki_fits(responder_spki, algorithm)?;
    let invalid = |message: String| Err(PkiError::InvalidTemplate(message));
    if template.responses.is_empty() {
        return invalid("an OCSP response needs at least one single response".into());
    }
    let produced_at = whole_seconds(template.produced_at);
    let latest = produced_at + MAX_OCSP_CLOCK_SKEW;
    let mut responses = Vec::new();
    for (index, single) in template.responses.iter().enumerate() {
        CertId::parse(&single.cert_id_der).map_err(|e| {
            PkiError::InvalidTemplate(format!("response {index}: not a usable CertID: {e}"))
        })?;
        let this_update = whole_seconds(single.this_update);
        let next_update = whole_seconds(single.next_update);
        if next_update <= this_update {
            return invalid(format!(
                "response {index}: nextUpdate {next_update} is not after thisUpdate {this_update}"
            ));
        }
        if this_update > latest {
            return invalid(format!(
                "response {index}: thisUpdate {this_update} is after producedAt {produced_at}"
            ));
        }
        if let CertStatus::Revoked { time, .. } = &single.status
            && whole_seconds(*time) > latest
        {
            return invalid(format!(
                "response {index}: revocation time {time} is after producedAt {produced_at}"
            ));
        }
        responses.push(der::sequence(&[
            &single.cert_id_der,
            &encode_status(&single.status)?,
            &generalized_time(this_update)?,
            &der::tlv(context_constructed(0), &generalized_time(next_update)?),
        ]));
    }
    if let Some(nonce) = &template.nonce
        && (nonce.is_empty() || nonce.len() > MAX_OCSP_NONCE_BYTES)
    {
        return invalid(format!(
            "the nonce is {} bytes; 1 to {MAX_OCSP_NONCE_BYTES} are allowed",
            nonce.len()
        ));
    }
    if !template.responder_certificate.is_empty() {
        let raw = RawCertificate::parse(&template.responder_certificate)
            .map_err(|e| PkiError::InvalidTemplate(format!("responder certificate: {e}")))?;
        if raw.spki.raw != responder_spki {
            return invalid("the responder certificate does not certify the responder key".into());
        }
    }
    let key = parse_spki(responder_spki)
        .map_err(|e| PkiError::InvalidTemplate(format!("responder public key: {e}")))?;
    // ResponderID byKey [2] EXPLICIT KeyHash (RFC 6960 §4.2.1).
    let responder_id = der::tlv(
        context_constructed(2),
        &der::tlv(TAG_OCTET_STRING, &OcspHash::Sha1.digest(key.key)),
    );
    let responses: Vec<&[u8]> = responses.iter().map(Vec::as_slice).collect();
    let mut content = responder_id;
    content.extend_from_slice(&generalized_time(produced_at)?);
    content.extend_from_slice(&der::sequence(&responses));
    if let Some(nonce) = &template.nonce {
        let extensions = der::sequence(&[&der::extension(oid::OCSP_NONCE, false, nonce)]);
        content.extend_from_slice(&der::tlv(context_constructed(1), &extensions));
    }
    Ok(PreparedOcspResponse {
        tbs: der::tlv(TAG_SEQUENCE, &content),
        algorithm,
        algorithm_identifier: signature_algorithm_identifier(algorithm),
        responder_spki: responder_spki.to_vec(),
        responder_certificate: template.responder_certificate.clone(),
    })
}

impl PreparedOcspResponse {
    /// The DER `ResponseData` that will be signed.
    pub fn tbs_der(&self) -> &[u8] {
        &self.tbs
    }

    /// Signs the ResponseData with the responder `key`: checks the key is the
    /// responder's (algorithm and public key), verifies the signature, assembles the
    /// BasicOCSPResponse (with the responder certificate in `certs`) inside a
    /// successful OCSPResponse, and reads it back. Returns the OCSPResponse DER.
    pub async fn sign(self, key: &dyn carimbo_kms::SigningKey) -> Result<Vec<u8>, PkiError> {
        if key.algorithm() != self.algorithm {
            return Err(PkiError::Signature(format!(
                "the key signs with {}, the responder with {}",
                key.algorithm(),
                self.algorithm
            )));
        }
        if key.public_key_der() != self.responder_spki.as_slice() {
            return Err(PkiError::Signature(
                "the key's public key is not the responder's".into(),
            ));
        }
        let signature = key.sign(&self.tbs).await?;
        carimbo_kms::verify_signature(self.algorithm, &self.responder_spki, &self.tbs, &signature)
            .map_err(|e| PkiError::Signature(format!("the new signature does not verify: {e}")))?;
        let mut basic = self.tbs.clone();
        basic.extend_from_slice(&self.algorithm_identifier);
        basic.extend_from_slice(&der::bit_string(&signature));
        if !self.responder_certificate.is_empty() {
            basic.extend_from_slice(&der::tlv(
                context_constructed(0),
                &der::sequence(&[&self.responder_certificate]),
            ));
        }
        let basic = der::tlv(TAG_SEQUENCE, &basic);
        let response_bytes = der::sequence(&[
            &der::oid(oid::OCSP_BASIC),
            &der::tlv(TAG_OCTET_STRING, &basic),
        ]);
        let response = der::sequence(&[
            &enumerated(OcspResponseStatus::Successful.code()),
            &der::tlv(context_constructed(0), &response_bytes),
        ]);
        let info = parse_ocsp_response(&response)?;
        if info.tbs_der() != Some(self.tbs.as_slice()) {
            return Err(PkiError::Other(
                "the assembled OCSP response's ResponseData differs from the prepared one".into(),
            ));
        }
        info.verify_signature(&self.responder_spki, self.algorithm)?;
        Ok(response)
    }
}

// ---- reading responses ----

/// One `SingleResponse` read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SingleResponseInfo {
    /// The CertID (with its exact DER).
    pub cert_id: CertId,
    /// The status.
    pub status: CertStatus,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate, when present.
    pub next_update: Option<OffsetDateTime>,
}

/// The signed parts of a BasicOCSPResponse.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SignedParts {
    tbs: Vec<u8>,
    algorithm: Vec<u8>,
    signature: Vec<u8>,
}

/// An `OCSPResponse` read back by [`parse_ocsp_response`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspResponseInfo {
    /// The response status; the other fields are empty unless it is `Successful`.
    pub status: OcspResponseStatus,
    /// producedAt.
    pub produced_at: Option<OffsetDateTime>,
    /// The responderID's KeyHash, when the responder is identified by key.
    pub responder_key_hash: Option<Vec<u8>>,
    /// The single responses, in order.
    pub responses: Vec<SingleResponseInfo>,
    /// The nonce extension's extnValue content, when present.
    pub nonce: Option<Vec<u8>>,
    /// The certificates in `certs` (DER), in order.
    pub certificates: Vec<Vec<u8>>,
    signed: Option<SignedParts>,
}

impl OcspResponseInfo {
    /// The DER ResponseData, for a successful response.
    pub fn tbs_der(&self) -> Option<&[u8]> {
        self.signed.as_ref().map(|signed| signed.tbs.as_slice())
    }

    /// Verifies that the response is signed by `responder_spki` with `algorithm`, and
    /// that its signatureAlgorithm names `algorithm`.
    pub fn verify_signature(
        &self,
        responder_spki: &[u8],
        algorithm: SignatureAlgorithm,
    ) -> Result<(), PkiError> {
        let signed = self.signed.as_ref().ok_or_else(|| {
            PkiError::Signature(format!("a {} OCSP response is not signed", self.status))
        })?;
        if signed.algorithm != signature_algorithm_identifier(algorithm) {
            return Err(PkiError::Signature(format!(
                "OCSP response signature algorithm is not {algorithm}"
            )));
        }
        carimbo_kms::verify_signature(algorithm, responder_spki, &signed.tbs, &signed.signature)
            .map_err(|e| PkiError::Signature(format!("OCSP response signature: {e}")))
    }
}

fn parse_single_response(element: Tlv<'_>) -> Result<SingleResponseInfo, String> {
    let mut fields = Reader::new(element.content);
    let cert_id = parse_cert_id(fields.read(TAG_SEQUENCE)?).map_err(|e| e.to_string())?;
    let status = fields.read_any()?;
    let status = match status.tag {
        tag if tag == context_primitive(0) && status.content.is_empty() => CertStatus::Good,
        tag if tag == context_primitive(2) && status.content.is_empty() => CertStatus::Unknown,
        tag if tag == context_constructed(1) => {
            let mut info = Reader::new(status.content);
            let time = parse_generalized_time(info.read(TAG_GENERALIZED_TIME)?)?;
            let reason = match info.read_optional(context_constructed(0))? {
                Some(wrapper) => {
                    let value = der::parse_single(wrapper.content, TAG_ENUMERATED)?;
                    let code = match value.content {
                        [code] if *code < 0x80 => *code,
                        _ => return Err("revocationReason is not a small ENUMERATED".into()),
                    };
                    Some(
                        RevocationReason::from_code(code)
                            .ok_or(format!("unknown revocationReason {code}"))?,
                    )
                }
                None => None,
            };
            if !info.is_empty() {
                return Err("trailing fields in RevokedInfo".into());
            }
            CertStatus::Revoked { time, reason }
        }
        other => return Err(format!("certStatus has tag {other:#04x}")),
    };
    let this_update = parse_generalized_time(fields.read(TAG_GENERALIZED_TIME)?)?;
    let next_update = match fields.read_optional(context_constructed(0))? {
        Some(wrapper) => Some(parse_generalized_time(der::parse_single(
            wrapper.content,
            TAG_GENERALIZED_TIME,
        )?)?),
        None => None,
    };
    // singleExtensions [1]: not used by Carimbo, ignored when present.
    fields.read_optional(context_constructed(1))?;
    if !fields.is_empty() {
        return Err("trailing fields in a SingleResponse".into());
    }
    Ok(SingleResponseInfo {
        cert_id,
        status,
        this_update,
        next_update,
    })
}

fn parse_basic(bytes: &[u8], info: &mut OcspResponseInfo) -> Result<(), String> {
    let basic = der::parse_single(bytes, TAG_SEQUENCE)?;
    let mut fields = Reader::new(basic.content);
    let tbs = fields.read(TAG_SEQUENCE)?;
    let algorithm = fields.read(TAG_SEQUENCE)?;
    let signature = match fields.read(TAG_BIT_STRING)?.content.split_first() {
        Some((0, signature)) => signature,
        _ => return Err("signature BIT STRING has unused bits".into()),
    };
    if let Some(wrapper) = fields.read_optional(context_constructed(0))? {
        let list = der::parse_single(wrapper.content, TAG_SEQUENCE)?;
        for certificate in Reader::new(list.content).read_all()? {
            if certificate.tag != TAG_SEQUENCE {
                return Err("an entry of certs is not a Certificate".into());
            }
            info.certificates.push(certificate.raw.to_vec());
        }
    }
    if !fields.is_empty() {
        return Err("trailing fields in BasicOCSPResponse".into());
    }

    let mut data = Reader::new(tbs.content);
    if let Some(version) = data.read_optional(context_constructed(0))? {
        let version = der::parse_single(version.content, TAG_INTEGER)?;
        if version.content != [0x00] {
            return Err("ResponseData version is not v1".into());
        }
    }
    let responder = data.read_any()?;
    if responder.tag == context_constructed(2) {
        let hash = der::parse_single(responder.content, TAG_OCTET_STRING)?;
        info.responder_key_hash = Some(hash.content.to_vec());
    } else if responder.tag != context_constructed(1) {
        return Err(format!("responderID has tag {:#04x}", responder.tag));
    }
    info.produced_at = Some(parse_generalized_time(data.read(TAG_GENERALIZED_TIME)?)?);
    let list = data.read(TAG_SEQUENCE)?;
    for single in Reader::new(list.content).read_all()? {
        if single.tag != TAG_SEQUENCE {
            return Err("a SingleResponse is not a SEQUENCE".into());
        }
        info.responses.push(parse_single_response(single)?);
    }
    if let Some(wrapper) = data.read_optional(context_constructed(1))? {
        let list = der::parse_single(wrapper.content, TAG_SEQUENCE)?;
        for extension in der::parse_extensions(list.content)? {
            if extension.oid == oid::OCSP_NONCE {
                if info.nonce.is_some() {
                    return Err("two nonce extensions".into());
                }
                info.nonce = Some(extension.value.to_vec());
            }
        }
    }
    if !data.is_empty() {
        return Err("trailing fields in ResponseData".into());
    }
    info.signed = Some(SignedParts {
        tbs: tbs.raw.to_vec(),
        algorithm: algorithm.raw.to_vec(),
        signature: signature.to_vec(),
    });
    Ok(())
}

/// Reads a DER `OCSPResponse`: its status and, for a successful BasicOCSPResponse,
/// producedAt, the responder key hash, each single response, the nonce and the
/// certificates. Does not verify the signature (see
/// [`OcspResponseInfo::verify_signature`]).
pub fn parse_ocsp_response(der: &[u8]) -> Result<OcspResponseInfo, PkiError> {
    let parse = |e: String| PkiError::Parse(format!("OCSP response: {e}"));
    let outer = der::parse_single(der, TAG_SEQUENCE).map_err(parse)?;
    let mut fields = Reader::new(outer.content);
    let status = fields.read(TAG_ENUMERATED).map_err(parse)?;
    let status = match status.content {
        [code] => OcspResponseStatus::from_code(*code),
        _ => None,
    }
    .ok_or_else(|| parse("unknown responseStatus".into()))?;
    let response_bytes = fields
        .read_optional(context_constructed(0))
        .map_err(parse)?;
    if !fields.is_empty() {
        return Err(parse("trailing fields in OCSPResponse".into()));
    }
    let mut info = OcspResponseInfo {
        status,
        produced_at: None,
        responder_key_hash: None,
        responses: Vec::new(),
        nonce: None,
        certificates: Vec::new(),
        signed: None,
    };
    match (status, response_bytes) {
        (OcspResponseStatus::Successful, Some(wrapper)) => {
            let bytes = der::parse_single(wrapper.content, TAG_SEQUENCE).map_err(parse)?;
            let mut parts = Reader::new(bytes.content);
            let kind = parts.read(TAG_OID).map_err(parse)?;
            if kind.content != oid::OCSP_BASIC {
                return Err(parse(format!(
                    "response type {} is not id-pkix-ocsp-basic",
                    der::oid_to_string(kind.content)
                )));
            }
            let body = parts.read(TAG_OCTET_STRING).map_err(parse)?;
            if !parts.is_empty() {
                return Err(parse("trailing fields in ResponseBytes".into()));
            }
            parse_basic(body.content, &mut info).map_err(parse)?;
        }
        (OcspResponseStatus::Successful, None) => {
            return Err(parse("a successful response without responseBytes".into()));
        }
        (_, Some(_)) => {
            return Err(parse(format!("a {status} response with responseBytes")));
        }
        (_, None) => {}
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use carimbo_kms::{
        FileProvider, GenerateRequest, KeyAlgorithm, KeyName, KeyProvider, Purpose, SigningKey,
        load_or_create_file_kek,
    };
    use time::macros::datetime;

    use super::*;
    use crate::IntermediateUsage;
    use crate::lints::testing::{intermediate_issuer, key, responder_template};
    use crate::prepare_ocsp_responder;

    const NOW: OffsetDateTime = datetime!(2026-01-01 02:00 UTC);

    fn hashes() -> (IssuerInfo, IssuerHashes) {
        let issuer = intermediate_issuer(IntermediateUsage::Server);
        let hashes = IssuerHashes::from_certificate(issuer.certificate_der().unwrap()).unwrap();
        (issuer, hashes)
    }

    fn serial() -> SerialNumber {
        SerialNumber::random().unwrap()
    }

    /// A CertID from raw parts: the AlgorithmIdentifier, both hashes and the serial's
    /// INTEGER content.
    fn raw_cert_id(algorithm: &[u8], name: &[u8], key: &[u8], serial: &[u8]) -> Vec<u8> {
        der::sequence(&[
            algorithm,
            &der::tlv(TAG_OCTET_STRING, name),
            &der::tlv(TAG_OCTET_STRING, key),
            &der::tlv(TAG_INTEGER, serial),
        ])
    }

    fn sha1_cert_id(serial: &[u8]) -> Vec<u8> {
        raw_cert_id(
            &OcspHash::Sha1.algorithm_identifier(),
            &[1; 20],
            &[2; 20],
            serial,
        )
    }

    /// An OCSPRequest from tbsRequest fields, followed by `after` (e.g. a signature).
    fn request(tbs_fields: &[&[u8]], after: &[&[u8]]) -> Vec<u8> {
        let tbs = der::sequence(tbs_fields);
        let mut content = tbs;
        for part in after {
            content.extend_from_slice(part);
        }
        der::tlv(TAG_SEQUENCE, &content)
    }

    /// A requestList of one Request per CertID.
    fn list(cert_ids: &[Vec<u8>]) -> Vec<u8> {
        let requests: Vec<Vec<u8>> = cert_ids.iter().map(|id| der::sequence(&[id])).collect();
        let requests: Vec<&[u8]> = requests.iter().map(Vec::as_slice).collect();
        der::sequence(&requests)
    }

    fn request_extensions(extensions: &[Vec<u8>]) -> Vec<u8> {
        let extensions: Vec<&[u8]> = extensions.iter().map(Vec::as_slice).collect();
        der::tlv(context_constructed(2), &der::sequence(&extensions))
    }

    fn nonce_extension(nonce: &[u8]) -> Vec<u8> {
        der::extension(oid::OCSP_NONCE, false, nonce)
    }

    fn one_request(cert_id: Vec<u8>) -> Vec<u8> {
        request(&[&list(&[cert_id])], &[])
    }

    fn good_request() -> Vec<u8> {
        let (_, hashes) = hashes();
        let id = hashes.cert_id(OcspHash::Sha1, serial().as_bytes()).unwrap();
        let nonce = der::tlv(TAG_OCTET_STRING, &[0x5a; 16]);
        build_ocsp_request(&[id], Some(&nonce))
    }

    // ---- requests: good ----

    #[test]
    fn issuer_hashes_from_the_certificate_and_the_issuer_agree() {
        let (issuer, hashes) = hashes();
        assert_eq!(IssuerHashes::from_issuer(&issuer).unwrap(), hashes);
        for hash in OcspHash::ALL {
            assert_eq!(hashes.name_hash(hash), hash.digest(issuer.subject_der()));
            assert_eq!(hashes.name_hash(hash).len(), hash.output_len());
            assert_eq!(hashes.key_hash(hash).len(), hash.output_len());
        }
        // SHA-1 of "abc" (FIPS 180 example).
        assert_eq!(
            hex::encode(OcspHash::Sha1.digest(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn requests_for_each_hash_parse_and_match_the_issuer() {
        let (_, hashes) = hashes();
        let serial = serial();
        let ids: Vec<CertId> = OcspHash::ALL
            .into_iter()
            .map(|hash| hashes.cert_id(hash, serial.as_bytes()).unwrap())
            .collect();
        let parsed = parse_ocsp_request(&build_ocsp_request(&ids, None)).unwrap();
        assert_eq!(parsed.certs, ids);
        assert_eq!(parsed.nonce, None);
        for id in &parsed.certs {
            assert!(hashes.matches(id), "{}", id.hash);
            assert_eq!(id.serial_number().unwrap(), serial);
            assert!(id.same_certificate(&ids[0]) == (id.hash == OcspHash::Sha1));
        }
        // The same hashes under another algorithm do not match.
        let mut other = ids[1].clone();
        other.hash = OcspHash::Sha1;
        assert!(!hashes.matches(&other));
        let (_, foreign) = {
            let issuer = intermediate_issuer(IntermediateUsage::Workload);
            let hashes = IssuerHashes::from_issuer(&issuer).unwrap();
            (issuer, hashes)
        };
        assert!(!foreign.matches(&ids[0]));
    }

    #[test]
    fn the_nonce_is_returned_as_the_extn_value_content() {
        let (_, hashes) = hashes();
        let id = hashes
            .cert_id(OcspHash::Sha256, serial().as_bytes())
            .unwrap();
        let nonce = der::tlv(TAG_OCTET_STRING, &[7; 32]);
        let parsed = parse_ocsp_request(&build_ocsp_request(&[id], Some(&nonce))).unwrap();
        assert_eq!(parsed.nonce, Some(nonce));
        let largest = vec![9; MAX_OCSP_NONCE_BYTES];
        let request = request(
            &[
                &list(&[sha1_cert_id(&[1])]),
                &request_extensions(&[nonce_extension(&largest)]),
            ],
            &[],
        );
        assert_eq!(parse_ocsp_request(&request).unwrap().nonce, Some(largest));
    }

    #[test]
    fn tolerated_forms_parse() {
        let id = sha1_cert_id(&[0x00, 0x80, 0x01]);
        // Explicit v1, a requestorName, a non-critical unknown extension, single
        // request extensions, a signature, AlgorithmIdentifier without parameters.
        let version = der::tlv(context_constructed(0), &[TAG_INTEGER, 1, 0]);
        let requestor = der::tlv(
            context_constructed(1),
            &der::tlv(context_primitive(2), b"client.example"),
        );
        let unknown = der::extension(&[0x2a, 0x03], false, &[TAG_NULL, 0]);
        let single_extensions = der::tlv(context_constructed(0), &der::sequence(&[&unknown]));
        let with_extensions = der::sequence(&[&id, &single_extensions]);
        let no_parameters = raw_cert_id(
            &der::sequence(&[&der::oid(oid::SHA256)]),
            &[3; 32],
            &[4; 32],
            &[5],
        );
        let signature = der::tlv(
            context_constructed(0),
            &der::sequence(&[
                &der::sequence(&[&der::oid(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])]),
                &der::bit_string(&[0; 8]),
            ]),
        );
        let tolerated = request(
            &[
                &version,
                &requestor,
                &der::sequence(&[&with_extensions, &der::sequence(&[&no_parameters])]),
                &request_extensions(&[unknown.clone(), nonce_extension(&[1, 2, 3])]),
            ],
            &[&signature],
        );
        let parsed = parse_ocsp_request(&tolerated).unwrap();
        assert_eq!(parsed.certs.len(), 2);
        assert_eq!(parsed.certs[0].serial, vec![0x80, 0x01]);
        assert_eq!(parsed.certs[0].der, id);
        assert_eq!(parsed.certs[1].hash, OcspHash::Sha256);
        assert_eq!(parsed.certs[1].der, no_parameters);
        assert_eq!(parsed.nonce, Some(vec![1, 2, 3]));
        // Twenty-octet magnitudes, with and without the sign octet.
        for serial in [vec![0x7f; 20], [&[0x00][..], &[0x80; 20]].concat()] {
            let parsed = parse_ocsp_request(&one_request(sha1_cert_id(&serial))).unwrap();
            assert_eq!(parsed.certs[0].serial.len(), 20);
        }
        let sixteen: Vec<Vec<u8>> = (1..=16u8).map(|n| sha1_cert_id(&[n])).collect();
        let parsed = parse_ocsp_request(&request(&[&list(&sixteen)], &[])).unwrap();
        assert_eq!(parsed.certs.len(), MAX_OCSP_REQUEST_CERTS);
    }

    // ---- requests: refused ----

    fn refused(der: &[u8]) -> OcspRequestError {
        let error = parse_ocsp_request(der).expect_err("a malformed request was accepted");
        assert_eq!(error.status(), OcspResponseStatus::MalformedRequest);
        assert!(!error.to_string().is_empty());
        error
    }

    #[test]
    fn malformed_requests_are_refused_with_a_reason() {
        let good = good_request();
        let good_id = sha1_cert_id(&[1]);
        let md5 = der::sequence(&[
            &der::oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05]),
            &der::tlv(TAG_NULL, &[]),
        ]);
        let critical_unknown = der::extension(&[0x2a, 0x03], true, &[TAG_NULL, 0]);
        let seventeen: Vec<Vec<u8>> = (1..=17u8).map(|n| sha1_cert_id(&[n])).collect();
        let mut indefinite = vec![0x30, 0x80];
        indefinite.extend_from_slice(&good[2..]);
        indefinite.extend_from_slice(&[0, 0]);
        let mut trailing = good.clone();
        trailing.push(0);
        let mut non_minimal_length = vec![0x30, 0x81];
        non_minimal_length.push(good[1]);
        non_minimal_length.extend_from_slice(&good[2..]);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty input", Vec::new(), "empty_request"),
            (
                "too large",
                vec![0x30; MAX_OCSP_REQUEST_BYTES + 1],
                "request_too_large",
            ),
            (
                "not a SEQUENCE",
                der::tlv(TAG_OCTET_STRING, &good),
                "malformed_request",
            ),
            (
                "truncated",
                good[..good.len() - 1].to_vec(),
                "malformed_request",
            ),
            ("trailing bytes", trailing, "malformed_request"),
            ("indefinite length", indefinite, "malformed_request"),
            (
                "huge length field",
                vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00],
                "malformed_request",
            ),
            (
                "non-minimal length",
                non_minimal_length,
                "malformed_request",
            ),
            (
                "version v2",
                request(
                    &[
                        &der::tlv(context_constructed(0), &[TAG_INTEGER, 1, 1]),
                        &list(std::slice::from_ref(&good_id)),
                    ],
                    &[],
                ),
                "unsupported_version",
            ),
            (
                "empty request list",
                request(&[&list(&[])], &[]),
                "no_certificates",
            ),
            (
                "17 certificates",
                request(&[&list(&seventeen)], &[]),
                "too_many_certificates",
            ),
            (
                "MD5 CertID",
                one_request(raw_cert_id(&md5, &[1; 16], &[2; 16], &[1])),
                "unsupported_hash",
            ),
            (
                "SHA-256 with SHA-1 lengths",
                one_request(raw_cert_id(
                    &OcspHash::Sha256.algorithm_identifier(),
                    &[1; 20],
                    &[2; 20],
                    &[1],
                )),
                "hash_length",
            ),
            (
                "short key hash",
                one_request(raw_cert_id(
                    &OcspHash::Sha1.algorithm_identifier(),
                    &[1; 20],
                    &[2; 19],
                    &[1],
                )),
                "hash_length",
            ),
            (
                "hash parameters not NULL",
                one_request(raw_cert_id(
                    &der::sequence(&[&der::oid(oid::SHA1), &der::tlv(TAG_OCTET_STRING, &[])]),
                    &[1; 20],
                    &[2; 20],
                    &[1],
                )),
                "malformed_request",
            ),
            (
                "negative serial",
                one_request(sha1_cert_id(&[0xff])),
                "invalid_serial",
            ),
            (
                "zero serial",
                one_request(sha1_cert_id(&[0x00])),
                "invalid_serial",
            ),
            (
                "empty serial",
                one_request(sha1_cert_id(&[])),
                "invalid_serial",
            ),
            (
                "non-minimal serial",
                one_request(sha1_cert_id(&[0x00, 0x01])),
                "invalid_serial",
            ),
            (
                "21-octet serial",
                one_request(sha1_cert_id(&[0x01; 21])),
                "invalid_serial",
            ),
            (
                "critical unknown request extension",
                request(
                    &[
                        &list(std::slice::from_ref(&good_id)),
                        &request_extensions(std::slice::from_ref(&critical_unknown)),
                    ],
                    &[],
                ),
                "critical_extension",
            ),
            (
                "critical unknown single request extension",
                request(
                    &[&der::sequence(&[&der::sequence(&[
                        &good_id,
                        &der::tlv(context_constructed(0), &der::sequence(&[&critical_unknown])),
                    ])])],
                    &[],
                ),
                "critical_extension",
            ),
            (
                "oversized nonce",
                request(
                    &[
                        &list(std::slice::from_ref(&good_id)),
                        &request_extensions(&[nonce_extension(&[0; MAX_OCSP_NONCE_BYTES + 1])]),
                    ],
                    &[],
                ),
                "invalid_nonce",
            ),
            (
                "empty nonce",
                request(
                    &[
                        &list(std::slice::from_ref(&good_id)),
                        &request_extensions(&[nonce_extension(&[])]),
                    ],
                    &[],
                ),
                "invalid_nonce",
            ),
            (
                "two nonces",
                request(
                    &[
                        &list(std::slice::from_ref(&good_id)),
                        &request_extensions(&[nonce_extension(&[1]), nonce_extension(&[2])]),
                    ],
                    &[],
                ),
                "malformed_request",
            ),
            (
                "empty extension list",
                request(
                    &[
                        &list(std::slice::from_ref(&good_id)),
                        &request_extensions(&[]),
                    ],
                    &[],
                ),
                "malformed_request",
            ),
            (
                "fields after the signature",
                request(&[&list(std::slice::from_ref(&good_id))], &[&[0x05, 0x00]]),
                "malformed_request",
            ),
            (
                "a Request that is not a SEQUENCE",
                request(&[&der::sequence(&[&der::tlv(der::TAG_SET, &good_id)])], &[]),
                "malformed_request",
            ),
            (
                "trailing field in a CertID",
                one_request(der::sequence(&[&good_id[2..], &[0x05, 0x00]])),
                "malformed_request",
            ),
        ];
        for (what, der, code) in cases {
            let error = refused(&der);
            assert_eq!(error.code(), code, "{what}: {error}");
        }
    }

    /// A tiny deterministic generator for the fuzz-like loops.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u8 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u8
        }
    }

    #[test]
    fn truncated_flipped_and_random_requests_never_panic() {
        let good = good_request();
        parse_ocsp_request(&good).unwrap();
        for end in 0..good.len() {
            assert!(parse_ocsp_request(&good[..end]).is_err());
        }
        for at in 0..good.len() {
            for mask in [0x01, 0x02, 0x40, 0x80, 0xff] {
                let mut mutated = good.clone();
                mutated[at] ^= mask;
                let _ = parse_ocsp_request(&mutated);
            }
        }
        let mut random = Lcg(0x5eed);
        for round in 0..2000 {
            let mut mutated = good.clone();
            for _ in 0..1 + round % 4 {
                let at = usize::from(random.next()) % mutated.len();
                mutated[at] = random.next();
            }
            if round % 3 == 0 {
                let cut = usize::from(random.next()) % mutated.len();
                mutated.truncate(cut);
            }
            let _ = parse_ocsp_request(&mutated);
            let noise: Vec<u8> = (0..usize::from(random.next()))
                .map(|_| random.next())
                .collect();
            let _ = parse_ocsp_request(&noise);
        }
    }

    // ---- responses ----

    async fn file_key(dir: &std::path::Path, algorithm: SignatureAlgorithm) -> Arc<dyn SigningKey> {
        let kek = load_or_create_file_kek(&dir.join("kek")).unwrap();
        let provider = FileProvider::new(dir.join("keys"), kek).unwrap();
        let name = KeyName::new("ocsp-signing/test/responder").unwrap();
        let generated = provider
            .generate(&GenerateRequest {
                name: &name,
                version: 1,
                purpose: Purpose::Sign,
                algorithm: KeyAlgorithm::Signature(algorithm),
            })
            .await
            .unwrap();
        provider
            .signing_key(&generated.reference, algorithm)
            .await
            .unwrap()
    }

    /// The responder certificate (a lint certificate) for `spki`.
    fn responder_certificate(spki: &[u8]) -> Vec<u8> {
        let issuer = intermediate_issuer(IntermediateUsage::Server);
        let template = responder_template(spki);
        prepare_ocsp_responder(&template, &issuer, template.not_before)
            .unwrap()
            .lint_certificate_der()
            .to_vec()
    }

    fn single(cert_id: &CertId, status: CertStatus) -> SingleResponseTemplate {
        SingleResponseTemplate {
            cert_id_der: cert_id.der.clone(),
            status,
            this_update: NOW,
            next_update: NOW + Duration::hours(4),
        }
    }

    #[tokio::test]
    async fn signed_responses_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let algorithm = SignatureAlgorithm::EcdsaP256Sha256;
        let key = file_key(dir.path(), algorithm).await;
        let spki = key.public_key_der().to_vec();
        let certificate = responder_certificate(&spki);
        let (_, hashes) = hashes();
        let ids: Vec<CertId> = [
            OcspHash::Sha1,
            OcspHash::Sha256,
            OcspHash::Sha1,
            OcspHash::Sha512,
        ]
        .into_iter()
        .map(|hash| hashes.cert_id(hash, serial().as_bytes()).unwrap())
        .collect();
        let revoked_at = datetime!(2025-12-31 23:00:01 UTC);
        let statuses = [
            CertStatus::Good,
            CertStatus::Revoked {
                time: revoked_at,
                reason: Some(RevocationReason::KeyCompromise),
            },
            CertStatus::Unknown,
            CertStatus::Revoked {
                time: revoked_at,
                reason: Some(RevocationReason::Unspecified),
            },
        ];
        let nonce = der::tlv(TAG_OCTET_STRING, &[0xa5; 16]);
        let template = OcspResponseTemplate {
            produced_at: NOW + Duration::milliseconds(900),
            responses: ids
                .iter()
                .zip(statuses.iter())
                .map(|(id, status)| single(id, status.clone()))
                .collect(),
            nonce: Some(nonce.clone()),
            responder_certificate: certificate.clone(),
        };
        let prepared = prepare_ocsp_response(&template, &spki, algorithm).unwrap();
        let tbs = prepared.tbs_der().to_vec();
        // responderID byKey: [2] { OCTET STRING (20) }.
        let key_hash = OcspHash::Sha1.digest(parse_spki(&spki).unwrap().key);
        let responder_id = [&[0xa2, 0x16, 0x04, 0x14][..], &key_hash].concat();
        assert!(tbs.windows(responder_id.len()).any(|w| w == responder_id));
        // good is [0] IMPLICIT NULL; unknown [2] IMPLICIT NULL.
        let good = [&ids[0].der[..], &[0x80, 0x00]].concat();
        assert!(tbs.windows(good.len()).any(|w| w == good));
        let unknown = [&ids[2].der[..], &[0x82, 0x00]].concat();
        assert!(tbs.windows(unknown.len()).any(|w| w == unknown));
        assert!(
            tbs.windows(15).any(|w| w == b"20260101020000Z"),
            "producedAt in whole seconds"
        );

        let response = prepared.sign(key.as_ref()).await.unwrap();
        let info = parse_ocsp_response(&response).unwrap();
        assert_eq!(info.status, OcspResponseStatus::Successful);
        assert_eq!(info.produced_at, Some(NOW));
        assert_eq!(info.responder_key_hash, Some(key_hash));
        assert_eq!(info.nonce, Some(nonce));
        assert_eq!(info.certificates, vec![certificate]);
        assert_eq!(info.tbs_der(), Some(tbs.as_slice()));
        assert_eq!(info.responses.len(), 4);
        for ((response, id), status) in info.responses.iter().zip(&ids).zip(&statuses) {
            assert_eq!(&response.cert_id, id);
            assert_eq!(response.this_update, NOW);
            assert_eq!(response.next_update, Some(NOW + Duration::hours(4)));
            let expected = match status {
                // Unspecified is written as no reason (RFC 5280 §5.3.1).
                CertStatus::Revoked {
                    time,
                    reason: Some(RevocationReason::Unspecified),
                } => CertStatus::Revoked {
                    time: *time,
                    reason: None,
                },
                other => other.clone(),
            };
            assert_eq!(response.status, expected);
        }
        info.verify_signature(&spki, algorithm).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = file_key(other_dir.path(), algorithm).await;
        assert!(
            info.verify_signature(other.public_key_der(), algorithm)
                .is_err()
        );
        assert!(
            info.verify_signature(&spki, SignatureAlgorithm::EcdsaP384Sha384)
                .is_err()
        );

        // Without nonce and responder certificate: neither is written.
        let bare = OcspResponseTemplate {
            nonce: None,
            responder_certificate: Vec::new(),
            ..template.clone()
        };
        let response = prepare_ocsp_response(&bare, &spki, algorithm)
            .unwrap()
            .sign(key.as_ref())
            .await
            .unwrap();
        let info = parse_ocsp_response(&response).unwrap();
        assert_eq!(info.nonce, None);
        assert!(info.certificates.is_empty());

        // The wrong key is refused before signing.
        let error = prepare_ocsp_response(&template, &spki, algorithm)
            .unwrap()
            .sign(other.as_ref())
            .await
            .unwrap_err();
        assert!(matches!(error, PkiError::Signature(_)), "{error}");

        // Truncated and flipped responses never panic.
        for end in 0..response.len() {
            assert!(parse_ocsp_response(&response[..end]).is_err());
        }
        for at in 0..response.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut mutated = response.clone();
                mutated[at] ^= mask;
                let _ = parse_ocsp_response(&mutated);
            }
        }
    }

    #[test]
    fn response_templates_are_checked() {
        let algorithm = SignatureAlgorithm::EcdsaP256Sha256;
        let responder = key();
        let spki = responder.spki().to_vec();
        let (_, hashes) = hashes();
        let id = hashes.cert_id(OcspHash::Sha1, serial().as_bytes()).unwrap();
        let good = OcspResponseTemplate {
            produced_at: NOW,
            responses: vec![single(&id, CertStatus::Good)],
            nonce: None,
            responder_certificate: responder_certificate(&spki),
        };
        prepare_ocsp_response(&good, &spki, algorithm).unwrap();
        let skewed = OcspResponseTemplate {
            responses: vec![SingleResponseTemplate {
                this_update: NOW + MAX_OCSP_CLOCK_SKEW,
                next_update: NOW + Duration::hours(1),
                ..single(&id, CertStatus::Good)
            }],
            ..good.clone()
        };
        prepare_ocsp_response(&skewed, &spki, algorithm).unwrap();

        let refused = |template: OcspResponseTemplate, expected: &str| match prepare_ocsp_response(
            &template, &spki, algorithm,
        ) {
            Err(PkiError::InvalidTemplate(message)) => {
                assert!(message.contains(expected), "{message}")
            }
            other => panic!("{expected}: {other:?}"),
        };
        refused(
            OcspResponseTemplate {
                responses: Vec::new(),
                ..good.clone()
            },
            "at least one",
        );
        let mut template = good.clone();
        template.responses[0].next_update = NOW;
        refused(template, "not after thisUpdate");
        let mut template = good.clone();
        template.responses[0].this_update = NOW + MAX_OCSP_CLOCK_SKEW + Duration::seconds(1);
        template.responses[0].next_update = NOW + Duration::hours(1);
        refused(template, "after producedAt");
        let mut template = good.clone();
        template.responses[0].status = CertStatus::Revoked {
            time: NOW + Duration::hours(1),
            reason: None,
        };
        refused(template, "revocation time");
        let mut template = good.clone();
        template.responses[0].cert_id_der = vec![0x30, 0x00];
        refused(template, "CertID");
        refused(
            OcspResponseTemplate {
                nonce: Some(vec![0; MAX_OCSP_NONCE_BYTES + 1]),
                ..good.clone()
            },
            "nonce",
        );
        refused(
            OcspResponseTemplate {
                nonce: Some(Vec::new()),
                ..good.clone()
            },
            "nonce",
        );
        refused(
            OcspResponseTemplate {
                responder_certificate: responder_certificate(key().spki()),
                ..good.clone()
            },
            "does not certify",
        );
        let mut template = good.clone();
        template.responses[0].status = CertStatus::Revoked {
            time: Date::from_calendar_date(-1, Month::January, 1)
                .unwrap()
                .midnight()
                .assume_utc(),
            reason: None,
        };
        refused(template, "GeneralizedTime");
        // A key that does not fit the algorithm.
        assert!(prepare_ocsp_response(&good, &spki, SignatureAlgorithm::Ed25519).is_err());
    }

    #[test]
    fn error_responses_carry_only_the_status() {
        assert_eq!(
            ocsp_error_response(OcspResponseStatus::MalformedRequest),
            vec![0x30, 0x03, 0x0a, 0x01, 0x01]
        );
        assert_eq!(
            ocsp_error_response(OcspResponseStatus::Successful),
            ocsp_error_response(OcspResponseStatus::InternalError)
        );
        for status in OcspResponseStatus::ALL {
            assert_eq!(OcspResponseStatus::from_code(status.code()), Some(status));
            let info = parse_ocsp_response(&ocsp_error_response(status)).unwrap();
            if status != OcspResponseStatus::Successful {
                assert_eq!(info.status, status);
                assert!(info.responses.is_empty() && info.tbs_der().is_none());
                assert!(
                    info.verify_signature(&[], SignatureAlgorithm::Ed25519)
                        .is_err()
                );
            }
        }
        assert_eq!(OcspResponseStatus::from_code(4), None);
        assert!(parse_ocsp_response(&[0x30, 0x03, 0x0a, 0x01, 0x00]).is_err());
        assert!(parse_ocsp_response(&[0x30, 0x03, 0x0a, 0x01, 0x04]).is_err());
    }

    #[test]
    fn generalized_times_round_trip_and_are_strict() {
        for time in [
            datetime!(2026-01-01 02:00:59 UTC),
            datetime!(2050-06-30 23:59:59 UTC),
            datetime!(1999-12-31 00:00:00 UTC),
        ] {
            let encoded = generalized_time(time).unwrap();
            let parsed = der::parse_single(&encoded, TAG_GENERALIZED_TIME).unwrap();
            assert_eq!(parse_generalized_time(parsed).unwrap(), time);
        }
        for text in [
            "20260101020000",
            "20260101020000.5Z",
            "202601010200Z",
            "20261301020000Z",
            "20260101250000Z",
            "2026010102000+Z",
        ] {
            let encoded = der::tlv(TAG_GENERALIZED_TIME, text.as_bytes());
            let parsed = der::parse_single(&encoded, TAG_GENERALIZED_TIME).unwrap();
            assert!(parse_generalized_time(parsed).is_err(), "{text}");
        }
    }

    #[test]
    fn cert_ids_are_built_like_openssl_and_checked() {
        let (_, hashes) = hashes();
        let serial = SerialNumber::from_hex("80").unwrap();
        let id = hashes.cert_id(OcspHash::Sha1, serial.as_bytes()).unwrap();
        // SEQUENCE { SEQUENCE { sha1, NULL }, OCTET STRING (20), OCTET STRING (20),
        // INTEGER 00 80 }.
        assert_eq!(
            &id.der[..13],
            &[
                0x30, 0x3b, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00
            ]
        );
        assert_eq!(&id.der[id.der.len() - 4..], &[0x02, 0x02, 0x00, 0x80]);
        assert_eq!(id.serial, vec![0x80]);
        assert_eq!(hashes.cert_id(OcspHash::Sha1, &[0, 0, 0x80]).unwrap(), id);
        assert!(CertId::new(OcspHash::Sha256, &[0; 20], &[0; 32], &[1]).is_err());
        assert!(hashes.cert_id(OcspHash::Sha1, &[0, 0]).is_err());
        assert!(hashes.cert_id(OcspHash::Sha1, &[1; 21]).is_err());
        assert!(CertId::parse(&[id.der.clone(), vec![0]].concat()).is_err());
    }
}
