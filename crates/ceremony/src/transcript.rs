//! The ceremony transcript: JSON lines, each carrying the SHA-256 of the previous line,
//! so that changing, removing or reordering a line breaks the chain. The hash of the
//! last line (the *final hash*) is printed for the officers to record; `ca-ceremony
//! verify` recomputes the chain, checks every recorded output hash against the files,
//! and compares the final hash with the recorded one.
//!
//! ```json
//! {"seq":0,"prev":"000…0","time":"2026-12-01T10:00:00Z","ceremony":"root","step":"config",…}
//! {"seq":1,"prev":"<sha256 of line 0>","time":…,"step":"generate-key",…}
//! ```

use std::path::Path;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::{CeremonyError, Result};

/// SHA-256 of `bytes` in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

/// A transcript being written.
#[derive(Debug)]
pub struct Transcript {
    ceremony: String,
    lines: Vec<String>,
    previous: String,
}

impl Transcript {
    /// A new, empty transcript for `ceremony`.
    pub fn new(ceremony: &str) -> Self {
        Self {
            ceremony: ceremony.to_owned(),
            lines: Vec::new(),
            previous: "0".repeat(64),
        }
    }

    /// Appends step `step` with `fields` (an object; never secrets).
    pub fn record(&mut self, step: &str, fields: Value) {
        let mut line = Map::new();
        line.insert("seq".into(), json!(self.lines.len()));
        line.insert("prev".into(), json!(self.previous));
        let now = OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("time".into(), json!(now));
        line.insert("ceremony".into(), json!(self.ceremony));
        line.insert("step".into(), json!(step));
        if let Value::Object(fields) = fields {
            for (key, value) in fields {
                line.entry(key).or_insert(value);
            }
        }
        let text = Value::Object(line).to_string();
        self.previous = sha256_hex(text.as_bytes());
        self.lines.push(text);
    }

    /// The hash of the last line.
    pub fn final_hash(&self) -> &str {
        &self.previous
    }

    /// The transcript as file contents.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.lines.join("\n").into_bytes();
        out.push(b'\n');
        out
    }
}

/// A transcript read back and checked.
#[derive(Debug)]
pub struct CheckedTranscript {
    /// Parsed lines.
    pub lines: Vec<Map<String, Value>>,
    /// Hash of the last line.
    pub final_hash: String,
}

/// Reads `path` and checks the hash chain; names the first broken line.
pub fn check(path: &Path) -> Result<CheckedTranscript> {
    let text = std::fs::read_to_string(path).map_err(|e| CeremonyError::io("read", path, e))?;
    let mut previous = "0".repeat(64);
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let broken = |why: &str| {
            CeremonyError::Verification(format!("{} line {}: {why}", path.display(), index + 1))
        };
        let value: Map<String, Value> =
            serde_json::from_str(line).map_err(|_| broken("not a JSON object"))?;
        if value.get("seq") != Some(&json!(index)) {
            return Err(broken("sequence number out of order"));
        }
        if value.get("prev").and_then(Value::as_str) != Some(previous.as_str()) {
            return Err(broken(
                "does not chain to the previous line (modified, removed or reordered)",
            ));
        }
        previous = sha256_hex(line.as_bytes());
        lines.push(value);
    }
    if lines.is_empty() {
        return Err(CeremonyError::Verification(format!(
            "{} is empty",
            path.display()
        )));
    }
    Ok(CheckedTranscript {
        lines,
        final_hash: previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_detects_edits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut transcript = Transcript::new("root");
        transcript.record("config", json!({"sha256": "ab"}));
        transcript.record("output", json!({"path": "root.pem", "sha256": "cd"}));
        std::fs::write(&path, transcript.to_bytes()).unwrap();
        let checked = check(&path).unwrap();
        assert_eq!(checked.final_hash, transcript.final_hash());
        assert_eq!(checked.lines.len(), 2);

        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("root.pem", "evil.pem", 1)).unwrap();
        // The edited line itself still chains, but the final hash changes...
        assert_ne!(check(&path).unwrap().final_hash, transcript.final_hash());
        // ...and an edit before the last line breaks the chain.
        std::fs::write(&path, text.replacen("\"ab\"", "\"ff\"", 1)).unwrap();
        let error = check(&path).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
    }
}
