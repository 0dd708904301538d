//! Encryption context: the caller's key=value pairs bound to an envelope.

use std::collections::BTreeMap;

use crate::{Error, Result};

/// Key=value pairs that must be presented again to decrypt (e.g. `tenant=acme`,
/// `table=payments`). Not secret, not stored in the envelope: only their digest is.
///
/// Keys are 1–128 bytes, values at most 1024 bytes, at most 64 pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// Maximum number of pairs.
    pub const MAX_PAIRS: usize = 64;
    const MAX_KEY: usize = 128;
    const MAX_VALUE: usize = 1024;
    const DIGEST_DOMAIN: &'static [u8] = b"carimbo/envelope/v1/context\0";

    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a pair; a key given twice or a pair out of bounds is refused.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<()> {
        if key.is_empty() || key.len() > Self::MAX_KEY {
            return Err(Error::Malformed(format!(
                "context key {key:?} must be 1 to {} bytes",
                Self::MAX_KEY
            )));
        }
        if value.len() > Self::MAX_VALUE {
            return Err(Error::Malformed(format!(
                "context value for {key:?} is longer than {} bytes",
                Self::MAX_VALUE
            )));
        }
        if self.0.len() >= Self::MAX_PAIRS {
            return Err(Error::Malformed(format!(
                "more than {} context pairs",
                Self::MAX_PAIRS
            )));
        }
        if self.0.insert(key.to_owned(), value.to_owned()).is_some() {
            return Err(Error::Malformed(format!("context key {key:?} given twice")));
        }
        Ok(())
    }

    /// Parses `key=value` strings (as given on a command line).
    pub fn from_pairs<I, S>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut context = Self::new();
        for pair in pairs {
            let pair = pair.as_ref();
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::Malformed(format!("context {pair:?} is not key=value")))?;
            context.insert(key, value)?;
        }
        Ok(context)
    }

    /// The pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Canonical encoding: pair count (u16), then for each pair sorted by key, key length
    /// (u16), key, value length (u16), value — all big-endian.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Bounds checked in insert: the count and lengths fit in u16.
        out.extend_from_slice(&(self.0.len() as u16).to_be_bytes());
        for (key, value) in &self.0 {
            out.extend_from_slice(&(key.len() as u16).to_be_bytes());
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&(value.len() as u16).to_be_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        out
    }

    /// SHA-256 over a domain tag and the canonical encoding; stored in the envelope's
    /// data header.
    pub fn digest(&self) -> [u8; 32] {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        context.update(Self::DIGEST_DOMAIN);
        context.update(&self.canonical_bytes());
        let mut digest = [0u8; 32];
        digest.copy_from_slice(context.finish().as_ref());
        digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_of_pairs_does_not_matter() {
        let a = EncryptionContext::from_pairs(["b=2", "a=1"]).unwrap();
        let b = EncryptionContext::from_pairs(["a=1", "b=2"]).unwrap();
        assert_eq!(a.digest(), b.digest());
        let c = EncryptionContext::from_pairs(["a=1", "b=3"]).unwrap();
        assert_ne!(a.digest(), c.digest());
        // Splitting differently must give another digest.
        let d = EncryptionContext::from_pairs(["a=1b=2"]).unwrap();
        assert_ne!(a.digest(), d.digest());
    }

    #[test]
    fn bad_pairs_are_refused() {
        assert!(EncryptionContext::from_pairs(["novalue"]).is_err());
        assert!(EncryptionContext::from_pairs(["=v"]).is_err());
        assert!(EncryptionContext::from_pairs(["a=1", "a=2"]).is_err());
        assert!(EncryptionContext::from_pairs(["a=x=y"]).is_ok());
    }
}
