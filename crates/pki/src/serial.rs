//! Certificate serial numbers (RFC 5280 §4.1.2.2).

use std::fmt;

use crate::PkiError;
use crate::der::unsigned_integer_content;

/// A certificate serial number: a positive, non-zero INTEGER of at most 20 octets, kept
/// as its minimal DER content octets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerialNumber(Vec<u8>);

/// Minimum number of random bytes for a new serial (128 bits).
pub const MIN_RANDOM_SERIAL_BYTES: usize = 16;

impl SerialNumber {
    /// A serial from `random` (at least 16 bytes from a CSPRNG). The serial is the
    /// fixed byte `0x01` followed by the first 19 (or fewer) random bytes: positive,
    /// never zero, never shortened by leading zeros, 17 to 20 octets, and carrying
    /// all the randomness given up to 152 bits.
    pub fn from_random_bytes(random: &[u8]) -> Result<Self, PkiError> {
        if random.len() < MIN_RANDOM_SERIAL_BYTES {
            return Err(PkiError::InvalidTemplate(format!(
                "a random serial needs at least {MIN_RANDOM_SERIAL_BYTES} random bytes, got {}",
                random.len()
            )));
        }
        let mut content = Vec::with_capacity(20);
        content.push(0x01);
        content.extend_from_slice(&random[..random.len().min(19)]);
        Ok(Self(content))
    }

    /// A fresh random serial of 20 octets (152 random bits) from the system CSPRNG.
    pub fn random() -> Result<Self, PkiError> {
        let mut bytes = [0u8; 19];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| PkiError::Other("random generator failed".into()))?;
        Self::from_random_bytes(&bytes)
    }

    /// A serial from the minimal DER content octets of a positive INTEGER.
    pub fn from_der_content(content: &[u8]) -> Result<Self, PkiError> {
        let minimal = match content {
            [] => false,
            [0x00] => false,
            [0x00, next, ..] => next & 0x80 != 0,
            [first, ..] => first & 0x80 == 0,
        };
        if !minimal {
            return Err(PkiError::Parse(
                "serial is not a minimal positive non-zero INTEGER".into(),
            ));
        }
        Self::checked(content.to_vec())
    }

    /// Parses hex (upper or lower case, optional `:` separators, no `0x`) as an unsigned
    /// number; refuses zero and values over 20 octets.
    pub fn from_hex(text: &str) -> Result<Self, PkiError> {
        let cleaned: String = text.chars().filter(|c| *c != ':').collect();
        let cleaned = if cleaned.len() % 2 == 1 {
            format!("0{cleaned}")
        } else {
            cleaned
        };
        let bytes = hex::decode(&cleaned)
            .map_err(|e| PkiError::Parse(format!("serial {text:?} is not hex: {e}")))?;
        Self::checked(unsigned_integer_content(&bytes))
    }

    fn checked(content: Vec<u8>) -> Result<Self, PkiError> {
        if content.iter().all(|b| *b == 0) {
            return Err(PkiError::InvalidTemplate("serial number is zero".into()));
        }
        if content.len() > 20 {
            return Err(PkiError::InvalidTemplate(format!(
                "serial number is {} octets; RFC 5280 §4.1.2.2 allows at most 20",
                content.len()
            )));
        }
        Ok(Self(content))
    }

    /// The DER content octets of the INTEGER (minimal two's complement, so a leading
    /// `0x00` when the top bit of the next byte is set).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex of the content octets, without separators.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Display for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_fixed_length_and_keep_the_entropy() {
        let serial = SerialNumber::from_random_bytes(&[0xff; 16]).unwrap();
        assert_eq!(serial.as_bytes().len(), 17);
        assert_eq!(serial.as_bytes()[0], 0x01);
        let serial = SerialNumber::from_random_bytes(&[0u8; 32]).unwrap();
        assert_eq!(serial.as_bytes().len(), 20);
        assert!(SerialNumber::from_random_bytes(&[1u8; 15]).is_err());
        let random = SerialNumber::random().unwrap();
        assert_eq!(random.as_bytes().len(), 20);
    }

    #[test]
    fn hex_round_trips_and_normalises() {
        let serial = SerialNumber::from_hex("00:8f:01").unwrap();
        assert_eq!(serial.as_bytes(), &[0x00, 0x8f, 0x01]);
        assert_eq!(serial.to_hex(), "008f01");
        assert_eq!(
            SerialNumber::from_hex("abc").unwrap().as_bytes(),
            &[0x0a, 0xbc]
        );
        assert!(SerialNumber::from_hex("0000").is_err());
        assert!(SerialNumber::from_hex(&"7f".repeat(21)).is_err());
        assert!(SerialNumber::from_hex("zz").is_err());
    }

    #[test]
    fn der_content_must_be_minimal_and_positive() {
        assert!(SerialNumber::from_der_content(&[0x01]).is_ok());
        assert!(SerialNumber::from_der_content(&[0x00, 0x80]).is_ok());
        assert!(SerialNumber::from_der_content(&[0x00, 0x01]).is_err());
        assert!(SerialNumber::from_der_content(&[0x80]).is_err());
        assert!(SerialNumber::from_der_content(&[0x00]).is_err());
    }
}
