//! Property tests of envelope format v1 under a file-provider KEK: any plaintext
//! (empty, segment-boundary sizes, up to 64 KiB) and any context round-trips; any
//! single-bit change anywhere in the envelope fails to open (an error, never another
//! plaintext); a different context fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, OnceLock};

use carimbo_kms::envelope::{self, DataHeader, Headers, MIN_SEGMENT_SIZE, WrapBlock};
use carimbo_kms::{
    DataEncryptionKey, EncryptionContext, FileProvider, GenerateRequest, KeyAlgorithm,
    KeyEncryptionKey, KeyName, KeyProvider, Purpose, Result,
};
use proptest::prelude::*;
use zeroize::Zeroizing;

const KEY_NAME: &str = "envelope-data/test/properties";

/// One file-provider KEK (in a temporary directory kept for the whole test process),
/// with its reference, and a runtime for the async KEK calls.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    kek: Arc<dyn KeyEncryptionKey>,
    reference: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let provider =
            FileProvider::new(dir.path().join("keys"), Zeroizing::new([0x42; 32])).unwrap();
        let name = KeyName::new(KEY_NAME).unwrap();
        let (kek, reference) = runtime.block_on(async {
            let generated = provider
                .generate(&GenerateRequest {
                    name: &name,
                    version: 1,
                    purpose: Purpose::Envelope,
                    algorithm: KeyAlgorithm::Aes256Gcm,
                })
                .await
                .unwrap();
            let kek = provider
                .key_encryption_key(&generated.reference)
                .await
                .unwrap();
            (kek, generated.reference.to_string())
        });
        Fixture {
            runtime,
            kek,
            reference,
            _dir: dir,
        }
    })
}

/// Seals `plaintext` as the keyring does: fresh DEK, data header, DEK wrapped with the
/// header, KEK name/version/reference and context as associated data, then segments.
fn seal(plaintext: &[u8], context: &EncryptionContext, segment_size: u32) -> Vec<u8> {
    let f = fixture();
    let dek = DataEncryptionKey::generate().unwrap();
    let data = DataHeader::new(&dek, context, segment_size).unwrap();
    let aad = WrapBlock::aad(&data, KEY_NAME, 1, &f.reference, context);
    let wrapped = f.runtime.block_on(f.kek.wrap(&dek, &aad)).unwrap();
    let headers = Headers {
        data,
        wrap: WrapBlock {
            key_name: KEY_NAME.into(),
            key_version: 1,
            key_reference: f.reference.clone(),
            wrapped,
        },
    };
    let mut out = Vec::new();
    headers.write_to(&mut out).unwrap();
    envelope::encrypt_segments(&dek, &headers.data, &mut &plaintext[..], &mut out).unwrap();
    out
}

/// Opens an envelope as the keyring does, trusting nothing in it: the context digest,
/// the wrap (whose associated data is rebuilt from the fields read), the commitment,
/// then every segment.
fn open(sealed: &[u8], context: &EncryptionContext) -> Result<Vec<u8>> {
    let f = fixture();
    let mut reader = sealed;
    let headers = Headers::read_from(&mut reader)?;
    headers.data.check_context(context)?;
    let aad = WrapBlock::aad(
        &headers.data,
        &headers.wrap.key_name,
        headers.wrap.key_version,
        &headers.wrap.key_reference,
        context,
    );
    let dek = f
        .runtime
        .block_on(f.kek.unwrap(&headers.wrap.wrapped, &aad))?;
    headers.data.check_key(&dek)?;
    let mut out = Vec::new();
    envelope::decrypt_segments(&dek, &headers.data, &mut reader, &mut out)?;
    Ok(out)
}

fn context_strategy() -> impl Strategy<Value = EncryptionContext> {
    proptest::collection::btree_map("[a-z][a-z0-9_-]{0,15}", "\\PC{0,24}", 0..5).prop_map(|pairs| {
        let mut context = EncryptionContext::new();
        for (key, value) in pairs {
            context.insert(&key, &value).unwrap();
        }
        context
    })
}

fn segment_size_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(MIN_SEGMENT_SIZE),
        MIN_SEGMENT_SIZE..=4 * MIN_SEGMENT_SIZE
    ]
}

/// A plaintext length: anything up to 64 KiB, with extra weight on the empty input and
/// on multiples of the segment size and their neighbours.
fn length_strategy(segment_size: u32) -> impl Strategy<Value = usize> {
    let segment = segment_size as usize;
    let boundaries = (0usize..=64 * 1024 / segment, -1isize..=1)
        .prop_map(move |(k, delta)| (k * segment).saturating_add_signed(delta).min(64 * 1024));
    prop_oneof![Just(0usize), boundaries, 0usize..=64 * 1024]
}

fn plaintext_strategy() -> impl Strategy<Value = (u32, Vec<u8>)> {
    segment_size_strategy().prop_flat_map(|segment_size| {
        length_strategy(segment_size).prop_flat_map(move |length| {
            (
                Just(segment_size),
                proptest::collection::vec(any::<u8>(), length),
            )
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_plaintext_and_context_round_trip(
        (segment_size, plaintext) in plaintext_strategy(),
        context in context_strategy(),
    ) {
        let sealed = seal(&plaintext, &context, segment_size);
        prop_assert_eq!(
            sealed.len() as u64,
            (envelope::DATA_HEADER_LEN as u64)
                + u64::from(u16::from_be_bytes([
                    sealed[envelope::DATA_HEADER_LEN],
                    sealed[envelope::DATA_HEADER_LEN + 1],
                ]))
                + 2
                + envelope::sealed_len(plaintext.len() as u64, segment_size)
        );
        prop_assert_eq!(open(&sealed, &context).unwrap(), plaintext);
    }

    #[test]
    fn any_single_bit_flip_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..3 * 1024),
        context in context_strategy(),
        position in any::<proptest::sample::Index>(),
        bit in 0u8..8,
    ) {
        let sealed = seal(&plaintext, &context, MIN_SEGMENT_SIZE);
        let mut flipped = sealed.clone();
        let index = position.index(flipped.len());
        flipped[index] ^= 1 << bit;
        let result = open(&flipped, &context);
        prop_assert!(result.is_err(), "bit {} of byte {} flipped, still opened", bit, index);
    }

    #[test]
    fn a_different_context_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
        context in context_strategy(),
        other in context_strategy(),
    ) {
        prop_assume!(context != other);
        let sealed = seal(&plaintext, &context, MIN_SEGMENT_SIZE);
        prop_assert!(open(&sealed, &other).is_err());
    }
}

/// Every bit of a small envelope, exhaustively: each flip is refused.
#[test]
fn every_bit_of_a_small_envelope_is_authenticated() {
    let mut context = EncryptionContext::new();
    context.insert("tenant", "acme").unwrap();
    let sealed = seal(
        b"two segments? no: one short one",
        &context,
        MIN_SEGMENT_SIZE,
    );
    for index in 0..sealed.len() {
        for bit in 0..8 {
            let mut flipped = sealed.clone();
            flipped[index] ^= 1 << bit;
            assert!(open(&flipped, &context).is_err(), "byte {index} bit {bit}");
        }
    }
}
