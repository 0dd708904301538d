//! Envelope format v1 — specified in `docs/envelope.md`.
//!
//! ```text
//! envelope   = data-header wrap-block segment*
//! data-header (106 bytes, immutable, AAD of every segment):
//!   magic "CRMB" | version 0x01 | suite 0x01 | segment size u32
//!   | message id (32) | key commitment (32) | context digest (32)
//! wrap-block (replaceable by rewrap):
//!   length u16 | wrap version 0x01 | wrap algorithm u8 | key name (u8 len)
//!   | key version u32 | key reference (u16 len) | nonce (u8 len) | wrapped DEK (u16 len)
//! segment    = AES-256-GCM(data key, nonce = 0^3 ‖ counter u64 ‖ last-flag u8,
//!                          aad = data-header, plaintext[segment size]) ‖ tag (16)
//! ```
//!
//! The data key and the commitment are derived from the DEK with HKDF-SHA-256 salted
//! with the message id. Every segment but the last holds exactly `segment size` bytes
//! of plaintext; the last is flagged in its nonce, so truncation at a segment boundary,
//! reordering and splicing between envelopes all fail authentication. The wrap block's
//! AEAD binds the data header, the context and the KEK name and version.

use std::io::{Read, Write};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{DataEncryptionKey, EncryptionContext, Error, Result, WrapAlgorithm, WrappedKey};

/// First bytes of every envelope.
pub const MAGIC: [u8; 4] = *b"CRMB";
/// The format version this module writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Suite 1: AES-256-GCM segments, HKDF-SHA-256 key derivation, HKDF commitment.
pub const SUITE_AES256GCM_HKDF_SHA256: u8 = 1;
/// Length of the data header.
pub const DATA_HEADER_LEN: usize = 106;
/// Segment size used when none is asked for.
pub const DEFAULT_SEGMENT_SIZE: u32 = 64 * 1024;
/// Smallest segment size accepted.
pub const MIN_SEGMENT_SIZE: u32 = 1024;
/// Largest segment size accepted (bounds the memory a reader needs).
pub const MAX_SEGMENT_SIZE: u32 = 4 * 1024 * 1024;
/// Largest wrap block accepted, length prefix excluded.
pub const MAX_WRAP_BLOCK_LEN: usize = 4096;
/// Version of the wrap block layout.
const WRAP_VERSION: u8 = 1;
/// Length of a segment's authentication tag.
pub const TAG_LEN: usize = 16;

const DATA_KEY_INFO: &[u8] = b"carimbo/envelope/v1/data-key";
const COMMITMENT_INFO: &[u8] = b"carimbo/envelope/v1/commitment";
const WRAP_AAD_DOMAIN: &[u8] = b"carimbo/envelope/v1/wrap\0";

/// The immutable first part of an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataHeader {
    /// Plaintext bytes per segment (the last segment may hold fewer).
    pub segment_size: u32,
    /// Random per-envelope id; the HKDF salt.
    pub message_id: [u8; 32],
    /// Key commitment derived from the DEK; checked before any segment is opened.
    pub commitment: [u8; 32],
    /// Digest of the encryption context ([`EncryptionContext::digest`]).
    pub context_digest: [u8; 32],
}

impl DataHeader {
    /// A header for a new envelope under `dek` with `context`.
    pub fn new(
        dek: &DataEncryptionKey,
        context: &EncryptionContext,
        segment_size: u32,
    ) -> Result<Self> {
        check_segment_size(segment_size)?;
        let mut message_id = [0u8; 32];
        aws_lc_rs::rand::fill(&mut message_id)
            .map_err(|_| Error::Crypto("random generator failed".into()))?;
        let (_, commitment) = derive_keys(dek, &message_id)?;
        Ok(Self {
            segment_size,
            message_id,
            commitment,
            context_digest: context.digest(),
        })
    }

    /// The 106-byte encoding.
    pub fn encode(&self) -> [u8; DATA_HEADER_LEN] {
        let mut out = [0u8; DATA_HEADER_LEN];
        out[0..4].copy_from_slice(&MAGIC);
        out[4] = FORMAT_VERSION;
        out[5] = SUITE_AES256GCM_HKDF_SHA256;
        out[6..10].copy_from_slice(&self.segment_size.to_be_bytes());
        out[10..42].copy_from_slice(&self.message_id);
        out[42..74].copy_from_slice(&self.commitment);
        out[74..106].copy_from_slice(&self.context_digest);
        out
    }

    /// Decodes a header; unknown magic, version or suite fail closed.
    pub fn decode(bytes: &[u8; DATA_HEADER_LEN]) -> Result<Self> {
        if bytes[0..4] != MAGIC {
            return Err(Error::Malformed(
                "not a Carimbo envelope (bad magic)".into(),
            ));
        }
        if bytes[4] != FORMAT_VERSION {
            return Err(Error::UnsupportedEnvelope(format!(
                "format version {} (this build reads version {FORMAT_VERSION})",
                bytes[4]
            )));
        }
        if bytes[5] != SUITE_AES256GCM_HKDF_SHA256 {
            return Err(Error::UnsupportedEnvelope(format!("suite {}", bytes[5])));
        }
        let segment_size = u32::from_be_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
        check_segment_size(segment_size)?;
        let array = |range: std::ops::Range<usize>| {
            let mut out = [0u8; 32];
            out.copy_from_slice(&bytes[range]);
            out
        };
        Ok(Self {
            segment_size,
            message_id: array(10..42),
            commitment: array(42..74),
            context_digest: array(74..106),
        })
    }

    /// Checks that `dek` is the key this header commits to (before any segment is
    /// opened).
    pub fn check_key(&self, dek: &DataEncryptionKey) -> Result<()> {
        let (_, commitment) = derive_keys(dek, &self.message_id)?;
        if bool::from(commitment.ct_eq(&self.commitment)) {
            Ok(())
        } else {
            Err(Error::Unauthentic(
                "key commitment does not match the data key".into(),
            ))
        }
    }

    /// Checks that `context` is the one this envelope was sealed with.
    pub fn check_context(&self, context: &EncryptionContext) -> Result<()> {
        if bool::from(self.context_digest.ct_eq(&context.digest())) {
            Ok(())
        } else {
            Err(Error::ContextMismatch)
        }
    }
}

fn check_segment_size(segment_size: u32) -> Result<()> {
    if (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&segment_size) {
        Ok(())
    } else {
        Err(Error::Malformed(format!(
            "segment size {segment_size} outside {MIN_SEGMENT_SIZE}..={MAX_SEGMENT_SIZE}"
        )))
    }
}

/// The replaceable second part of an envelope: which KEK version wrapped the DEK, and
/// the wrapped DEK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrapBlock {
    /// KEK name.
    pub key_name: String,
    /// KEK version.
    pub key_version: u32,
    /// Provider reference of that version (`provider:id`), informative.
    pub key_reference: String,
    /// The wrapped DEK.
    pub wrapped: WrappedKey,
}

impl WrapBlock {
    /// Encodes the block with its u16 length prefix; refuses fields over their caps.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let too_long = |what: &str| Error::Malformed(format!("wrap block {what} too long"));
        let name = self.key_name.as_bytes();
        let reference = self.key_reference.as_bytes();
        let name_len = u8::try_from(name.len()).map_err(|_| too_long("key name"))?;
        let reference_len = u16::try_from(reference.len())
            .ok()
            .filter(|n| *n <= 1024)
            .ok_or_else(|| too_long("key reference"))?;
        let nonce_len = u8::try_from(self.wrapped.nonce.len())
            .ok()
            .filter(|n| *n <= 32)
            .ok_or_else(|| too_long("nonce"))?;
        let wrapped_len = u16::try_from(self.wrapped.ciphertext.len())
            .ok()
            .filter(|n| *n <= 2048)
            .ok_or_else(|| too_long("wrapped key"))?;
        let mut body = Vec::with_capacity(64 + name.len() + reference.len());
        body.push(WRAP_VERSION);
        body.push(self.wrapped.algorithm.code());
        body.push(name_len);
        body.extend_from_slice(name);
        body.extend_from_slice(&self.key_version.to_be_bytes());
        body.extend_from_slice(&reference_len.to_be_bytes());
        body.extend_from_slice(reference);
        body.push(nonce_len);
        body.extend_from_slice(&self.wrapped.nonce);
        body.extend_from_slice(&wrapped_len.to_be_bytes());
        body.extend_from_slice(&self.wrapped.ciphertext);
        if body.len() > MAX_WRAP_BLOCK_LEN {
            return Err(too_long("in total"));
        }
        let mut out = Vec::with_capacity(body.len() + 2);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Reads a length-prefixed wrap block from `reader`.
    pub fn read_from(reader: &mut impl Read) -> Result<Self> {
        let mut length = [0u8; 2];
        read_exact_or(reader, &mut length, "wrap block length")?;
        let length = usize::from(u16::from_be_bytes(length));
        if length > MAX_WRAP_BLOCK_LEN {
            return Err(Error::Malformed(format!(
                "wrap block of {length} bytes exceeds {MAX_WRAP_BLOCK_LEN}"
            )));
        }
        let mut body = vec![0u8; length];
        read_exact_or(reader, &mut body, "wrap block")?;
        Self::decode_body(&body)
    }

    fn decode_body(body: &[u8]) -> Result<Self> {
        let mut cursor = Cursor(body);
        let version = cursor.u8()?;
        if version != WRAP_VERSION {
            return Err(Error::UnsupportedEnvelope(format!(
                "wrap block version {version}"
            )));
        }
        let algorithm = WrapAlgorithm::from_code(cursor.u8()?)?;
        let name_len = usize::from(cursor.u8()?);
        let key_name = cursor.utf8(name_len, "key name")?;
        let key_version = cursor.u32()?;
        let reference_len = usize::from(cursor.u16()?);
        let key_reference = cursor.utf8(reference_len, "key reference")?;
        let nonce_len = usize::from(cursor.u8()?);
        let nonce = cursor.take(nonce_len)?.to_vec();
        let wrapped_len = usize::from(cursor.u16()?);
        let ciphertext = cursor.take(wrapped_len)?.to_vec();
        if !cursor.0.is_empty() {
            return Err(Error::Malformed("trailing bytes in wrap block".into()));
        }
        Ok(Self {
            key_name,
            key_version,
            key_reference,
            wrapped: WrappedKey {
                algorithm,
                nonce,
                ciphertext,
            },
        })
    }

    /// The associated data of the DEK wrap: a domain tag, the data header, the KEK
    /// name, version and provider reference, and the canonical context. Every byte of
    /// the wrap block is thus authenticated, by the AEAD or as its input.
    pub fn aad(
        header: &DataHeader,
        key_name: &str,
        key_version: u32,
        key_reference: &str,
        context: &EncryptionContext,
    ) -> Vec<u8> {
        let mut aad = Vec::with_capacity(256);
        aad.extend_from_slice(WRAP_AAD_DOMAIN);
        aad.extend_from_slice(&header.encode());
        aad.extend_from_slice(&(key_name.len() as u16).to_be_bytes());
        aad.extend_from_slice(key_name.as_bytes());
        aad.extend_from_slice(&key_version.to_be_bytes());
        aad.extend_from_slice(&(key_reference.len() as u16).to_be_bytes());
        aad.extend_from_slice(key_reference.as_bytes());
        aad.extend_from_slice(&context.canonical_bytes());
        aad
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::Malformed("wrap block is truncated".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn utf8(&mut self, n: usize, what: &str) -> Result<String> {
        String::from_utf8(self.take(n)?.to_vec())
            .map_err(|_| Error::Malformed(format!("wrap block {what} is not UTF-8")))
    }
}

/// Both headers of an envelope, as read from its start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Headers {
    /// The data header.
    pub data: DataHeader,
    /// The wrap block.
    pub wrap: WrapBlock,
}

impl Headers {
    /// Reads the data header and wrap block from the start of an envelope, leaving
    /// `reader` at the first segment.
    pub fn read_from(reader: &mut impl Read) -> Result<Self> {
        let mut bytes = [0u8; DATA_HEADER_LEN];
        read_exact_or(reader, &mut bytes, "data header")?;
        let data = DataHeader::decode(&bytes)?;
        let wrap = WrapBlock::read_from(reader)?;
        Ok(Self { data, wrap })
    }

    /// Writes both headers.
    pub fn write_to(&self, writer: &mut impl Write) -> Result<()> {
        writer.write_all(&self.data.encode())?;
        writer.write_all(&self.wrap.encode()?)?;
        Ok(())
    }
}

fn read_exact_or(reader: &mut impl Read, buffer: &mut [u8], what: &str) -> Result<()> {
    match reader.read_exact(buffer) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Error::Malformed(format!(
            "envelope is truncated in the {what}"
        ))),
        Err(e) => Err(Error::Stream(e)),
    }
}

/// Derives the per-envelope data key and the key commitment from the DEK.
fn derive_keys(
    dek: &DataEncryptionKey,
    message_id: &[u8; 32],
) -> Result<(Zeroizing<[u8; 32]>, [u8; 32])> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, message_id).extract(dek.expose());
    let expand = |info: &[u8], out: &mut [u8]| {
        let infos = [info];
        prk.expand(&infos, hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(out))
            .map_err(|_| Error::Crypto("HKDF failed".into()))
    };
    let mut data_key = Zeroizing::new([0u8; 32]);
    expand(DATA_KEY_INFO, data_key.as_mut())?;
    let mut commitment = [0u8; 32];
    expand(COMMITMENT_INFO, &mut commitment)?;
    Ok((data_key, commitment))
}

/// The AEAD for the segments of one envelope.
struct SegmentCipher {
    key: LessSafeKey,
    aad: [u8; DATA_HEADER_LEN],
    counter: u64,
}

impl SegmentCipher {
    /// Derives the data key; when opening, checks the commitment first.
    fn new(dek: &DataEncryptionKey, header: &DataHeader) -> Result<Self> {
        header.check_key(dek)?;
        let (data_key, _) = derive_keys(dek, &header.message_id)?;
        let key = UnboundKey::new(&AES_256_GCM, data_key.as_ref())
            .map(LessSafeKey::new)
            .map_err(|_| Error::Crypto("AES-256-GCM key setup failed".into()))?;
        Ok(Self {
            key,
            aad: header.encode(),
            counter: 0,
        })
    }

    fn nonce(&self, last: bool) -> Nonce {
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&self.counter.to_be_bytes());
        nonce[11] = u8::from(last);
        Nonce::assume_unique_for_key(nonce)
    }

    fn seal(&mut self, buffer: &mut [u8], last: bool) -> Result<[u8; TAG_LEN]> {
        let tag = self
            .key
            .seal_in_place_separate_tag(self.nonce(last), Aad::from(&self.aad), buffer)
            .map_err(|_| Error::Crypto("segment encryption failed".into()))?;
        self.advance()?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    fn open<'b>(&mut self, buffer: &'b mut [u8], last: bool) -> Result<&'b mut [u8]> {
        let index = self.counter;
        let plaintext = self
            .key
            .open_in_place(self.nonce(last), Aad::from(&self.aad), buffer)
            .map_err(|_| {
                Error::Unauthentic(if last {
                    format!("segment {index} (tampered, reordered, or the envelope was truncated)")
                } else {
                    format!("segment {index} (tampered, reordered or spliced)")
                })
            })?;
        self.advance()?;
        Ok(plaintext)
    }

    fn advance(&mut self) -> Result<()> {
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or_else(|| Error::Malformed("too many segments".into()))?;
        Ok(())
    }
}

/// Reads until `buffer` is full or the input ends; returns the bytes read.
fn fill(reader: &mut impl Read, buffer: &mut [u8]) -> Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Stream(e)),
        }
    }
    Ok(filled)
}

/// Encrypts everything `reader` yields into segments written to `writer`, which must
/// already hold the headers. Memory use is one segment. Returns the plaintext length.
pub fn encrypt_segments(
    dek: &DataEncryptionKey,
    header: &DataHeader,
    reader: &mut impl Read,
    writer: &mut impl Write,
) -> Result<u64> {
    let mut cipher = SegmentCipher::new(dek, header)?;
    let segment = header.segment_size as usize;
    // One byte of look-ahead tells whether the current segment is the last.
    let mut buffer = Zeroizing::new(vec![0u8; segment + 1]);
    let mut have = fill(reader, &mut buffer[..])?;
    let mut total = 0u64;
    loop {
        let last = have <= segment;
        let length = have.min(segment);
        let tag = cipher.seal(&mut buffer[..length], last)?;
        writer.write_all(&buffer[..length])?;
        writer.write_all(&tag)?;
        total += length as u64;
        if last {
            return Ok(total);
        }
        buffer[0] = buffer[segment];
        have = 1 + fill(reader, &mut buffer[1..])?;
    }
}

/// Decrypts the segments `reader` yields (positioned after the headers) into
/// `writer`. Output is authentic only once this returns `Ok`: write it somewhere
/// private and publish it only then. Returns the plaintext length.
pub fn decrypt_segments(
    dek: &DataEncryptionKey,
    header: &DataHeader,
    reader: &mut impl Read,
    writer: &mut impl Write,
) -> Result<u64> {
    let mut cipher = SegmentCipher::new(dek, header)?;
    let sealed = header.segment_size as usize + TAG_LEN;
    let mut buffer = Zeroizing::new(vec![0u8; sealed + 1]);
    let mut have = fill(reader, &mut buffer[..])?;
    let mut total = 0u64;
    loop {
        let last = have <= sealed;
        let length = have.min(sealed);
        if length < TAG_LEN {
            return Err(Error::Unauthentic(format!(
                "envelope is truncated: segment {} is incomplete or missing",
                cipher.counter
            )));
        }
        let plaintext = cipher.open(&mut buffer[..length], last)?;
        writer.write_all(plaintext)?;
        total += plaintext.len() as u64;
        if last {
            return Ok(total);
        }
        buffer[0] = buffer[sealed];
        have = 1 + fill(reader, &mut buffer[1..])?;
    }
}

/// Length of the ciphertext that `plaintext_len` bytes become with `segment_size`.
pub fn sealed_len(plaintext_len: u64, segment_size: u32) -> u64 {
    let segments = plaintext_len / u64::from(segment_size) + 1;
    let exact = plaintext_len.is_multiple_of(u64::from(segment_size)) && plaintext_len > 0;
    let segments = if exact { segments - 1 } else { segments };
    plaintext_len + segments * TAG_LEN as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(plaintext: &[u8], segment_size: u32) -> (DataEncryptionKey, DataHeader, Vec<u8>) {
        let dek = DataEncryptionKey::generate().unwrap();
        let header = DataHeader::new(&dek, &EncryptionContext::new(), segment_size).unwrap();
        let mut out = Vec::new();
        encrypt_segments(&dek, &header, &mut &plaintext[..], &mut out).unwrap();
        (dek, header, out)
    }

    fn open(dek: &DataEncryptionKey, header: &DataHeader, sealed: &[u8]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        decrypt_segments(dek, header, &mut &sealed[..], &mut out).map(|_| out)
    }

    #[test]
    fn round_trips_at_segment_boundaries() {
        for length in [0usize, 1, 1023, 1024, 1025, 2048, 5000] {
            let plaintext: Vec<u8> = (0..length).map(|i| i as u8).collect();
            let (dek, header, sealed) = seal(&plaintext, 1024);
            assert_eq!(sealed.len() as u64, sealed_len(length as u64, 1024));
            assert_eq!(open(&dek, &header, &sealed).unwrap(), plaintext, "{length}");
        }
    }

    #[test]
    fn truncation_and_reordering_are_detected() {
        let plaintext = vec![7u8; 3 * 1024];
        let (dek, header, sealed) = seal(&plaintext, 1024);
        let segment = 1024 + TAG_LEN;
        // Dropping the last segment (at a boundary) fails.
        assert!(open(&dek, &header, &sealed[..2 * segment]).is_err());
        // Dropping a byte fails.
        assert!(open(&dek, &header, &sealed[..sealed.len() - 1]).is_err());
        // Swapping two segments fails.
        let mut swapped = sealed.clone();
        swapped[..segment].copy_from_slice(&sealed[segment..2 * segment]);
        swapped[segment..2 * segment].copy_from_slice(&sealed[..segment]);
        assert!(open(&dek, &header, &swapped).is_err());
        // Appending a segment fails.
        let mut longer = sealed.clone();
        longer.extend_from_slice(&sealed[..segment]);
        assert!(open(&dek, &header, &longer).is_err());
        // An empty body is not an empty plaintext.
        assert!(open(&dek, &header, &[]).is_err());
    }

    #[test]
    fn splicing_between_envelopes_is_detected() {
        let (dek, header, sealed) = seal(&[1u8; 2048], 1024);
        let other_header = DataHeader::new(&dek, &EncryptionContext::new(), 1024).unwrap();
        let mut other = Vec::new();
        encrypt_segments(&dek, &other_header, &mut &[1u8; 2048][..], &mut other).unwrap();
        let mut spliced = sealed.clone();
        spliced[..1024 + TAG_LEN].copy_from_slice(&other[..1024 + TAG_LEN]);
        assert!(open(&dek, &header, &spliced).is_err());
    }

    #[test]
    fn wrong_dek_fails_on_the_commitment() {
        let (_, header, sealed) = seal(b"secret", 1024);
        let other = DataEncryptionKey::generate().unwrap();
        let error = open(&other, &header, &sealed).unwrap_err();
        assert!(error.to_string().contains("commitment"), "{error}");
    }

    #[test]
    fn header_fields_fail_closed() {
        let (_, header, _) = seal(b"x", 1024);
        let bytes = header.encode();
        assert_eq!(DataHeader::decode(&bytes).unwrap(), header);
        for (index, expected) in [
            (0, "magic"),
            (4, "version"),
            (5, "suite"),
            (6, "segment size"),
        ] {
            let mut bad = bytes;
            bad[index] ^= 0x80;
            let error = DataHeader::decode(&bad).unwrap_err().to_string();
            assert!(error.contains(expected), "{index}: {error}");
        }
    }

    #[test]
    fn wrap_block_round_trips_and_rejects_garbage() {
        let block = WrapBlock {
            key_name: "envelope-data/test/x".into(),
            key_version: 3,
            key_reference: "file:00".into(),
            wrapped: WrappedKey {
                algorithm: WrapAlgorithm::Aes256Gcm,
                nonce: vec![1; 12],
                ciphertext: vec![2; 48],
            },
        };
        let bytes = block.encode().unwrap();
        assert_eq!(WrapBlock::read_from(&mut &bytes[..]).unwrap(), block);
        for cut in 0..bytes.len() {
            assert!(
                WrapBlock::read_from(&mut &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut huge = bytes.clone();
        huge[0] = 0xff;
        assert!(WrapBlock::read_from(&mut &huge[..]).is_err());
    }
}
