//! The audit hash chain, independent of the database that holds it.
//!
//! Each event is stored as canonical JSON text and hashed together with its place in
//! the chain:
//!
//! ```text
//! hash = SHA-256( "carimbo-audit-v1\n"
//!               ‖ u64be(len(chain)) ‖ chain
//!               ‖ u64be(sequence)
//!               ‖ previous_hash            (64 lowercase hex characters)
//!               ‖ i64be(recorded_at)       (unix seconds)
//!               ‖ u64be(len(event)) ‖ event )   (the stored JSON text, UTF-8)
//! ```
//!
//! rendered as lowercase hex. The first event of a chain has [`GENESIS_HASH`] as its
//! previous hash. Lengths make the encoding unambiguous; `recorded_at` is covered so
//! the time of an event cannot be moved without breaking the chain.
//!
//! Verification hashes the text exactly as stored, so it never depends on how a JSON
//! library re-serialises numbers. (A database implementation must therefore keep the
//! text byte for byte — PostgreSQL `text`, not `jsonb`.) A chain recomputed from the
//! tampered row onwards, or a cut tail, is only detectable against chain heads signed
//! elsewhere; this module gives the heads, the signing is the service's.

use aws_lc_rs::digest;
use serde_json::Value;

/// Previous hash of the first event in every chain: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const DOMAIN: &[u8] = b"carimbo-audit-v1\n";

/// Serialises `value` deterministically: no whitespace, object keys sorted by their
/// UTF-8 bytes (whatever order the map had), strings and numbers as `serde_json`
/// writes them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        // Scalars: serde_json's own rendering (Display of a Value is its compact JSON).
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The hash of one event, lowercase hex; see the module documentation for the layout.
pub fn event_hash(
    chain: &str,
    sequence: u64,
    previous_hash: &str,
    recorded_at: i64,
    event_json: &str,
) -> String {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(DOMAIN);
    context.update(&(chain.len() as u64).to_be_bytes());
    context.update(chain.as_bytes());
    context.update(&sequence.to_be_bytes());
    context.update(previous_hash.as_bytes());
    context.update(&recorded_at.to_be_bytes());
    context.update(&(event_json.len() as u64).to_be_bytes());
    context.update(event_json.as_bytes());
    hex::encode(context.finish().as_ref())
}

const HEAD_DOMAIN: &[u8] = b"carimbo-audit-head-v1\n";

/// The bytes an audit key signs for a chain head:
///
/// ```text
/// "carimbo-audit-head-v1\n" ‖ u64be(len(chain)) ‖ chain ‖ u64be(sequence)
///   ‖ hash (64 lowercase hex characters) ‖ i64be(signed_at, unix seconds)
/// ```
pub fn head_message(chain: &str, sequence: u64, hash: &str, signed_at: i64) -> Vec<u8> {
    let mut message = Vec::with_capacity(HEAD_DOMAIN.len() + chain.len() + hash.len() + 24);
    message.extend_from_slice(HEAD_DOMAIN);
    message.extend_from_slice(&(chain.len() as u64).to_be_bytes());
    message.extend_from_slice(chain.as_bytes());
    message.extend_from_slice(&sequence.to_be_bytes());
    message.extend_from_slice(hash.as_bytes());
    message.extend_from_slice(&signed_at.to_be_bytes());
    message
}

/// Walks a chain's stored rows in sequence order and finds the first one that does
/// not fit: a gap or reordering, a previous hash that is not the hash before it, or a
/// hash that does not match the row's contents.
#[derive(Debug)]
pub struct ChainVerifier {
    chain: String,
    expected_sequence: u64,
    previous_hash: String,
    broken: Option<u64>,
}

impl ChainVerifier {
    /// Starts at the beginning of `chain`.
    pub fn new(chain: &str) -> Self {
        Self {
            chain: chain.to_owned(),
            expected_sequence: 1,
            previous_hash: GENESIS_HASH.to_owned(),
            broken: None,
        }
    }

    /// Checks the next stored row. Returns `false` once the chain is broken (at this
    /// row or before); later rows are then ignored.
    pub fn check(
        &mut self,
        sequence: u64,
        previous_hash: &str,
        hash: &str,
        recorded_at: i64,
        event_json: &str,
    ) -> bool {
        if self.broken.is_some() {
            return false;
        }
        if sequence != self.expected_sequence {
            // A missing (or duplicated) sequence: the expected one is the first broken.
            self.broken = Some(self.expected_sequence);
            return false;
        }
        let recomputed = event_hash(
            &self.chain,
            sequence,
            previous_hash,
            recorded_at,
            event_json,
        );
        if previous_hash != self.previous_hash || hash != recomputed {
            self.broken = Some(sequence);
            return false;
        }
        self.previous_hash = recomputed;
        self.expected_sequence = sequence.saturating_add(1);
        true
    }

    /// The first broken sequence number seen so far, if any.
    pub fn first_broken(&self) -> Option<u64> {
        self.broken
    }

    /// Sequence number of the last verified event (0 if none).
    pub fn last_sequence(&self) -> u64 {
        self.expected_sequence.saturating_sub(1)
    }

    /// Hash of the last verified event ([`GENESIS_HASH`] if none): the chain head to
    /// compare with a signed one.
    pub fn head_hash(&self) -> &str {
        &self.previous_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_drops_whitespace() {
        let value: Value = serde_json::from_str(
            r#"{ "b": 1, "a": { "z": [1, 2.5, "x"], "y": null }, "A": true }"#,
        )
        .unwrap();
        assert_eq!(
            canonical_json(&value),
            r#"{"A":true,"a":{"y":null,"z":[1,2.5,"x"]},"b":1}"#
        );
        // Re-parsing canonical text gives the same text.
        let again: Value = serde_json::from_str(&canonical_json(&value)).unwrap();
        assert_eq!(canonical_json(&again), canonical_json(&value));
        assert_eq!(canonical_json(&json!("é\"\n")), r#""é\"\n""#);
    }

    #[test]
    fn hash_covers_every_field() {
        let base = event_hash("r1", 1, GENESIS_HASH, 10, "{}");
        assert_eq!(base.len(), 64);
        assert_ne!(base, event_hash("r2", 1, GENESIS_HASH, 10, "{}"));
        assert_ne!(base, event_hash("r1", 2, GENESIS_HASH, 10, "{}"));
        assert_ne!(base, event_hash("r1", 1, &"1".repeat(64), 10, "{}"));
        assert_ne!(base, event_hash("r1", 1, GENESIS_HASH, 11, "{}"));
        assert_ne!(base, event_hash("r1", 1, GENESIS_HASH, 10, "[]"));
        // Length prefixes: moving bytes between chain and event changes the hash.
        assert_ne!(
            event_hash("ab", 1, GENESIS_HASH, 0, "c"),
            event_hash("a", 1, GENESIS_HASH, 0, "bc")
        );
    }

    #[test]
    fn verifier_reports_first_broken_sequence() {
        let h1 = event_hash("c", 1, GENESIS_HASH, 0, "1");
        let h2 = event_hash("c", 2, &h1, 0, "2");
        let h3 = event_hash("c", 3, &h2, 0, "3");

        let mut ok = ChainVerifier::new("c");
        assert!(ok.check(1, GENESIS_HASH, &h1, 0, "1"));
        assert!(ok.check(2, &h1, &h2, 0, "2"));
        assert!(ok.check(3, &h2, &h3, 0, "3"));
        assert_eq!(ok.first_broken(), None);
        assert_eq!(ok.last_sequence(), 3);
        assert_eq!(ok.head_hash(), h3);

        let mut tampered = ChainVerifier::new("c");
        assert!(tampered.check(1, GENESIS_HASH, &h1, 0, "1"));
        assert!(!tampered.check(2, &h1, &h2, 0, "two"));
        assert!(!tampered.check(3, &h2, &h3, 0, "3"));
        assert_eq!(tampered.first_broken(), Some(2));

        let mut gap = ChainVerifier::new("c");
        assert!(gap.check(1, GENESIS_HASH, &h1, 0, "1"));
        assert!(!gap.check(3, &h2, &h3, 0, "3"));
        assert_eq!(gap.first_broken(), Some(2));

        let mut wrong_chain = ChainVerifier::new("other");
        assert!(!wrong_chain.check(1, GENESIS_HASH, &h1, 0, "1"));
        assert_eq!(wrong_chain.first_broken(), Some(1));
    }
}
