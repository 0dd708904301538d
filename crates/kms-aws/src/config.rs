//! The provider's config: which region, which endpoint, which profile.
//!
//! ```toml
//! version = 1
//! region = "eu-west-1"
//! endpoint = "https://kms.eu-west-1.amazonaws.com"   # optional override
//! profile = "carimbo"                                # optional named profile
//! timeout-seconds = 20                               # optional, per operation
//! ```
//!
//! Credentials never go in this file: they come from the standard AWS chain
//! (environment, the profile's files, web identity, ECS or EC2 instance role).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::AwsKmsError;

/// The only config format version this build reads.
const VERSION: u32 = 1;
const DEFAULT_TIMEOUT_SECONDS: u64 = 20;
const MAX_TIMEOUT_SECONDS: u64 = 600;

/// Config of the AWS KMS provider, as read from a TOML file (`version = 1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawConfig", into = "RawConfig")]
pub struct AwsKmsConfig {
    /// AWS region of the keys, e.g. `eu-west-1` (`region`).
    pub region: String,
    /// Endpoint URL overriding the region's KMS endpoint (`endpoint`): a VPC endpoint,
    /// or an emulator's `http://127.0.0.1:PORT` in tests.
    pub endpoint: Option<String>,
    /// Named profile of the shared AWS config and credentials files (`profile`);
    /// without it the standard chain picks the profile (`AWS_PROFILE` or `default`).
    pub profile: Option<String>,
    /// Time limit of each operation, retries included (`timeout-seconds`, default 20).
    pub timeout: Duration,
}

/// The file format, field by field.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    version: u32,
    region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
    #[serde(default = "default_timeout_seconds")]
    timeout_seconds: u64,
}

fn default_timeout_seconds() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

impl TryFrom<RawConfig> for AwsKmsConfig {
    type Error = String;

    fn try_from(raw: RawConfig) -> Result<Self, String> {
        if raw.version != VERSION {
            return Err(format!(
                "`version` {} is not supported (this build reads version {VERSION})",
                raw.version
            ));
        }
        let config = Self {
            region: raw.region,
            endpoint: raw.endpoint,
            profile: raw.profile,
            timeout: Duration::from_secs(raw.timeout_seconds),
        };
        config.validate()?;
        Ok(config)
    }
}

impl From<AwsKmsConfig> for RawConfig {
    fn from(config: AwsKmsConfig) -> Self {
        Self {
            version: VERSION,
            region: config.region,
            endpoint: config.endpoint,
            profile: config.profile,
            timeout_seconds: config.timeout.as_secs(),
        }
    }
}

impl AwsKmsConfig {
    /// A config for `region` with the defaults: no endpoint override, the default
    /// profile, a 20 s operation limit.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            endpoint: None,
            profile: None,
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECONDS),
        }
    }

    /// Reads and checks the config file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, AwsKmsError> {
        let text = std::fs::read_to_string(path).map_err(|e| AwsKmsError::Config {
            origin: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks config text.
    pub fn from_toml_str(text: &str) -> Result<Self, AwsKmsError> {
        Self::parse(text, "<text>")
    }

    fn parse(text: &str, origin: &str) -> Result<Self, AwsKmsError> {
        toml::from_str(text).map_err(|e| AwsKmsError::Config {
            origin: origin.to_owned(),
            message: toml_message(&e, text),
        })
    }

    /// Checks the values (parsing does it too; [`crate::AwsKmsProvider::open`] checks
    /// configs built in code).
    pub(crate) fn validate(&self) -> Result<(), String> {
        let region_ok = !self.region.is_empty()
            && self.region.len() <= 32
            && self
                .region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !region_ok {
            return Err(format!(
                "`region` {:?} is not an AWS region name (e.g. eu-west-1)",
                self.region
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            let Some((scheme, rest)) = endpoint.split_once("://") else {
                return Err("`endpoint` must be an http:// or https:// URL".into());
            };
            if !matches!(scheme, "https" | "http") || rest.is_empty() {
                return Err("`endpoint` must be an http:// or https:// URL".into());
            }
            // Credentials in a URL would end up in logs and errors.
            if rest
                .split('/')
                .next()
                .is_some_and(|host| host.contains('@'))
            {
                return Err("`endpoint` must not contain user information".into());
            }
        }
        if let Some(profile) = &self.profile
            && (profile.is_empty() || profile.chars().any(char::is_whitespace))
        {
            return Err("`profile` must be a profile name without spaces".into());
        }
        let seconds = self.timeout.as_secs();
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&seconds) {
            return Err(format!(
                "`timeout-seconds` must be between 1 and {MAX_TIMEOUT_SECONDS}, not {seconds}"
            ));
        }
        Ok(())
    }
}

/// A toml error's message with its line number, without the quoted source line (which
/// could hold a secret someone wrote into the file by mistake).
fn toml_message(error: &toml::de::Error, text: &str) -> String {
    let mut message = error.message().trim_end().to_owned();
    if ["access-key", "secret", "session-token", "credentials"]
        .iter()
        .any(|word| message.contains(&format!("unknown field `{word}")))
    {
        message.push_str(
            "; credentials never go in this file: they come from the AWS chain \
             (environment, profile, instance role)",
        );
    }
    match error.span() {
        Some(span) if span.start < text.len() && span != (0..text.len()) => {
            let line = text[..span.start].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        _ => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AwsKmsConfig, String> {
        AwsKmsConfig::from_toml_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_minimal_config_gets_defaults() {
        let config = parse("version = 1\nregion = \"eu-west-1\"\n").unwrap();
        assert_eq!(config, AwsKmsConfig::new("eu-west-1"));
        assert_eq!(config.timeout, Duration::from_secs(20));
    }

    #[test]
    fn every_field_is_read() {
        let config = parse(
            "version = 1\nregion = \"us-east-1\"\nendpoint = \"http://127.0.0.1:4566\"\n\
             profile = \"carimbo\"\ntimeout-seconds = 5\n",
        )
        .unwrap();
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(config.profile.as_deref(), Some("carimbo"));
        assert_eq!(config.timeout, Duration::from_secs(5));
        let written = toml::to_string(&config).unwrap();
        assert!(written.contains("version = 1"), "{written}");
        assert!(written.contains("timeout-seconds = 5"), "{written}");
        assert_eq!(parse(&written).unwrap(), config);
    }

    #[test]
    fn unknown_keys_are_refused_by_name_and_line() {
        let error = parse("version = 1\nregion = \"eu-west-1\"\nkey-id = \"x\"\n").unwrap_err();
        assert!(error.contains("unknown field `key-id`"), "{error}");
        assert!(error.contains("line 3"), "{error}");
    }

    #[test]
    fn credentials_in_the_file_are_refused_without_echoing_them() {
        for field in ["secret-access-key", "access-key-id", "credentials"] {
            let text = format!(
                "version = 1\nregion = \"eu-west-1\"\n{field} = \"wJalrXUtnFEMI-not-a-key\"\n"
            );
            let error = parse(&text).unwrap_err();
            assert!(
                error.contains(&format!("unknown field `{field}`")),
                "{error}"
            );
            assert!(error.contains("AWS chain"), "{error}");
            assert!(!error.contains("wJalrXUtnFEMI"), "{error}");
        }
    }

    #[test]
    fn only_version_1_is_read() {
        let error = parse("version = 2\nregion = \"eu-west-1\"\n").unwrap_err();
        assert!(error.contains("`version` 2"), "{error}");
        let error = parse("region = \"eu-west-1\"\n").unwrap_err();
        assert!(error.contains("version"), "{error}");
    }

    #[test]
    fn values_are_checked() {
        for (line, what) in [
            ("region = \"\"", "`region`"),
            ("region = \"EU West\"", "`region`"),
            (
                "region = \"eu-west-1\"\nendpoint = \"kms.local\"",
                "`endpoint`",
            ),
            (
                "region = \"eu-west-1\"\nendpoint = \"ftp://kms.local\"",
                "`endpoint`",
            ),
            (
                "region = \"eu-west-1\"\nendpoint = \"https://user:pw@kms.local\"",
                "user information",
            ),
            ("region = \"eu-west-1\"\nprofile = \"\"", "`profile`"),
            (
                "region = \"eu-west-1\"\ntimeout-seconds = 0",
                "`timeout-seconds`",
            ),
        ] {
            let error = parse(&format!("version = 1\n{line}\n")).unwrap_err();
            assert!(error.contains(what), "{line}: {error}");
            assert!(!error.contains("pw@"), "{error}");
        }
        let error = parse("version = 1\n").unwrap_err();
        assert!(error.contains("region"), "{error}");
    }

    #[test]
    fn from_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aws-kms.toml");
        std::fs::write(&path, "version = 1\nregion = \"eu-central-1\"\n").unwrap();
        assert_eq!(
            AwsKmsConfig::from_file(&path).unwrap().region,
            "eu-central-1"
        );
        let error = AwsKmsConfig::from_file(&dir.path().join("absent.toml")).unwrap_err();
        assert!(error.to_string().contains("absent.toml"), "{error}");
    }
}
