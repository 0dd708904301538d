//! Key names (`{use}/{env}/{name}`) and purposes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::algorithm::serde_via_string;
use crate::{Error, Result};

/// What a key is for, fixed when the key is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// Signing artifacts (model and image digests, OCSP responder keys, ...).
    Sign,
    /// Key-encryption keys that wrap the data keys of envelopes.
    Envelope,
    /// HMAC keys.
    Hmac,
    /// Certificate-authority keys. Only the PKI code signs with them; they are never
    /// addressable through the KMS API. Their names start with `pki-ca/`.
    PkiCa,
}

impl Purpose {
    /// The purpose as written in names, configs and audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sign => "sign",
            Self::Envelope => "envelope",
            Self::Hmac => "hmac",
            Self::PkiCa => "pki-ca",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Purpose {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "sign" => Ok(Self::Sign),
            "envelope" => Ok(Self::Envelope),
            "hmac" => Ok(Self::Hmac),
            "pki-ca" => Ok(Self::PkiCa),
            other => Err(Error::UnknownPurpose(other.to_owned())),
        }
    }
}

serde_via_string!(Purpose);

/// The prefix (use segment) reserved for CA keys.
const PKI_CA_USE: &str = "pki-ca";

/// A key name `{use}/{env}/{name}`, e.g. `envelope-data/prod/payments`.
///
/// Each of the three segments is 1–64 characters of lowercase ASCII letters, digits,
/// `-`, `_` and `.`, starting with a letter or digit. The name is at most 200 bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Maximum length of a whole name in bytes.
    pub const MAX_LEN: usize = 200;

    /// Parses and validates a key name.
    pub fn new(text: &str) -> Result<Self> {
        let refuse = |reason: &str| Error::InvalidKeyName {
            name: text.to_owned(),
            reason: reason.to_owned(),
        };
        if text.len() > Self::MAX_LEN {
            return Err(refuse("longer than 200 bytes"));
        }
        let segments: Vec<&str> = text.split('/').collect();
        if segments.len() != 3 {
            return Err(refuse(
                "expected three segments {use}/{env}/{name}, e.g. envelope-data/prod/payments",
            ));
        }
        for segment in segments {
            if segment.is_empty() || segment.len() > 64 {
                return Err(refuse("each segment must be 1 to 64 characters"));
            }
            let mut chars = segment.chars();
            let first_ok = chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
            let rest_ok = segment.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
            });
            if !first_ok || !rest_ok {
                return Err(refuse(
                    "segments use lowercase letters, digits, '-', '_' and '.', starting with a letter or digit",
                ));
            }
        }
        Ok(Self(text.to_owned()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `{use}` segment.
    pub fn use_segment(&self) -> &str {
        self.0.split('/').next().unwrap_or_default()
    }

    /// Refuses a name/purpose pair that breaks the convention that CA keys, and only
    /// they, live under `pki-ca/`.
    pub fn check_purpose(&self, purpose: Purpose) -> Result<()> {
        let is_ca_name = self.use_segment() == PKI_CA_USE;
        match (is_ca_name, purpose == Purpose::PkiCa) {
            (true, false) => Err(Error::InvalidKeyName {
                name: self.0.clone(),
                reason: "names under pki-ca/ are reserved for keys of purpose pki-ca".into(),
            }),
            (false, true) => Err(Error::InvalidKeyName {
                name: self.0.clone(),
                reason: "keys of purpose pki-ca must be named pki-ca/{env}/{name}".into(),
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for KeyName {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        Self::new(text)
    }
}

serde_via_string!(KeyName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_parse() {
        for name in [
            "envelope-data/prod/payments",
            "model-sign/prod/ml",
            "pki-ca/prod/int-server",
            "a/b/c.d_e",
        ] {
            assert_eq!(KeyName::new(name).unwrap().as_str(), name);
        }
    }

    #[test]
    fn invalid_names_are_refused() {
        for name in [
            "",
            "one",
            "two/parts",
            "a/b/c/d",
            "a//c",
            "Upper/prod/x",
            "a/b/-x",
            "a/b/x y",
            "a/b/../x",
            &"x".repeat(65),
        ] {
            assert!(KeyName::new(name).is_err(), "{name} should be refused");
        }
    }

    #[test]
    fn ca_names_and_purposes_go_together() {
        let ca = KeyName::new("pki-ca/prod/root").unwrap();
        assert!(ca.check_purpose(Purpose::PkiCa).is_ok());
        assert!(ca.check_purpose(Purpose::Sign).is_err());
        let app = KeyName::new("model-sign/prod/ml").unwrap();
        assert!(app.check_purpose(Purpose::PkiCa).is_err());
        assert!(app.check_purpose(Purpose::Sign).is_ok());
    }
}
