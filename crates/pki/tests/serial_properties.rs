//! Property tests of the serial generator (RFC 5280 §4.1.2.2): every serial made from
//! random bytes is a positive, non-zero, minimal INTEGER of at most 20 octets that
//! keeps the randomness given (so distinct inputs give distinct serials), round-trips
//! through hex and DER content, and fresh random serials do not repeat.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeSet;

use carimbo_pki::{MIN_RANDOM_SERIAL_BYTES, SerialNumber};
use proptest::prelude::*;

/// What RFC 5280 and DER ask of the content octets of a serial.
fn assert_valid(content: &[u8]) {
    assert!(!content.is_empty() && content.len() <= 20, "{content:02x?}");
    // Positive: the sign bit of the first octet is clear.
    assert_eq!(content[0] & 0x80, 0, "{content:02x?}");
    // Minimal: no redundant leading zero octet.
    assert!(
        !(content.len() > 1 && content[0] == 0 && content[1] & 0x80 == 0),
        "{content:02x?}"
    );
    // Non-zero.
    assert!(content.iter().any(|b| *b != 0), "{content:02x?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn serials_from_random_bytes_are_valid_and_keep_the_randomness(
        random in proptest::collection::vec(any::<u8>(), MIN_RANDOM_SERIAL_BYTES..48),
    ) {
        let serial = SerialNumber::from_random_bytes(&random).unwrap();
        assert_valid(serial.as_bytes());
        // The randomness is kept whole (up to 19 bytes): distinct random inputs give
        // distinct serials.
        let kept = random.len().min(19);
        prop_assert_eq!(&serial.as_bytes()[1..], &random[..kept]);
        prop_assert_eq!(SerialNumber::from_hex(&serial.to_hex()).unwrap(), serial.clone());
        prop_assert_eq!(SerialNumber::from_der_content(serial.as_bytes()).unwrap(), serial);
    }

    #[test]
    fn distinct_random_inputs_give_distinct_serials(
        a in proptest::collection::vec(any::<u8>(), 19),
        b in proptest::collection::vec(any::<u8>(), 19),
    ) {
        prop_assume!(a != b);
        prop_assert_ne!(
            SerialNumber::from_random_bytes(&a).unwrap(),
            SerialNumber::from_random_bytes(&b).unwrap()
        );
    }

    #[test]
    fn too_little_randomness_is_refused(
        random in proptest::collection::vec(any::<u8>(), 0..MIN_RANDOM_SERIAL_BYTES),
    ) {
        prop_assert!(SerialNumber::from_random_bytes(&random).is_err());
    }

    #[test]
    fn any_hex_accepted_is_a_valid_serial(text in "[0-9a-fA-F:]{0,48}") {
        if let Ok(serial) = SerialNumber::from_hex(&text) {
            assert_valid(serial.as_bytes());
        }
    }
}

/// The system generator: 20-octet, valid, and no repeats over many draws.
#[test]
fn fresh_random_serials_are_valid_and_distinct() {
    let mut seen = BTreeSet::new();
    for _ in 0..20_000 {
        let serial = SerialNumber::random().unwrap();
        assert_eq!(serial.as_bytes().len(), 20);
        assert_valid(serial.as_bytes());
        assert!(seen.insert(serial), "a serial repeated");
    }
}
