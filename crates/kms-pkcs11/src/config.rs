//! The provider's config: which module, which token, where the PIN comes from.
//!
//! ```toml
//! version = 1
//! module = "/usr/lib/softhsm/libsofthsm2.so"
//! token-label = "kms"
//! token-serial = "8d1f0c2b4e6a7f90"   # optional; required when labels repeat
//! pin-file = "kms.pin"                 # or: pin-env = "CARIMBO_KMS_PIN"
//! sessions = 4                         # optional, 1..=64
//! timeout-seconds = 10                 # optional, per operation
//! ```
//!
//! The PIN itself is never in the config: it is read from a file that only its owner
//! can read, or from an environment variable.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Pkcs11Error;

/// The only config format version this build reads.
const VERSION: u32 = 1;
const DEFAULT_SESSIONS: usize = 4;
const MAX_SESSIONS: usize = 64;
const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
const MAX_TIMEOUT_SECONDS: u64 = 3600;
/// PKCS#11 token labels are at most 32 bytes.
const MAX_LABEL_BYTES: usize = 32;

/// Where the user PIN comes from. The PIN is never written in the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinSource {
    /// A file holding the PIN (one trailing newline ignored), readable only by its
    /// owner (`pin-file`).
    File(PathBuf),
    /// An environment variable holding the PIN (`pin-env`).
    Env(String),
}

/// Config of the PKCS#11 provider, as read from a TOML file (`version = 1`).
///
/// Serialising it writes the same format back, with the PIN *reference* (`pin-file`
/// path or `pin-env` name), never a PIN. Deserialising it directly keeps paths as
/// written; [`Pkcs11Config::from_file`] and [`Pkcs11Config::from_toml_str`] resolve
/// relative paths against the config's directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawConfig", into = "RawConfig")]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (shared library) (`module`).
    pub module: PathBuf,
    /// Label of the token holding the keys (`token-label`).
    pub token_label: String,
    /// Serial of the token, needed when several tokens share the label
    /// (`token-serial`).
    pub token_serial: Option<String>,
    /// Where the user PIN comes from (`pin-file` or `pin-env`, exactly one).
    pub pin: PinSource,
    /// Number of pooled sessions, 1..=64 (`sessions`, default 4).
    pub sessions: usize,
    /// Time limit of each operation, including the wait for a free session
    /// (`timeout-seconds`, default 10). Key generation, which takes long for RSA on
    /// some tokens, is given at least five minutes.
    pub timeout: Duration,
}

/// The file format, field by field.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    version: u32,
    module: PathBuf,
    token_label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pin_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pin_env: Option<String>,
    #[serde(default = "default_sessions")]
    sessions: usize,
    #[serde(default = "default_timeout_seconds")]
    timeout_seconds: u64,
}

fn default_sessions() -> usize {
    DEFAULT_SESSIONS
}

fn default_timeout_seconds() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

impl TryFrom<RawConfig> for Pkcs11Config {
    type Error = String;

    fn try_from(raw: RawConfig) -> Result<Self, String> {
        if raw.version != VERSION {
            return Err(format!(
                "`version` {} is not supported (this build reads version {VERSION})",
                raw.version
            ));
        }
        let pin = match (raw.pin_file, raw.pin_env) {
            (Some(path), None) => PinSource::File(path),
            (None, Some(variable)) => PinSource::Env(variable),
            (Some(_), Some(_)) => {
                return Err("`pin-file` and `pin-env` are both set; give exactly one".into());
            }
            (None, None) => {
                return Err(
                    "one of `pin-file` or `pin-env` is required (the PIN itself never goes in the config)"
                        .into(),
                );
            }
        };
        let config = Self {
            module: raw.module,
            token_label: raw.token_label,
            token_serial: raw.token_serial,
            pin,
            sessions: raw.sessions,
            timeout: Duration::from_secs(raw.timeout_seconds),
        };
        config.validate()?;
        Ok(config)
    }
}

impl From<Pkcs11Config> for RawConfig {
    fn from(config: Pkcs11Config) -> Self {
        let (pin_file, pin_env) = match config.pin {
            PinSource::File(path) => (Some(path), None),
            PinSource::Env(variable) => (None, Some(variable)),
        };
        Self {
            version: VERSION,
            module: config.module,
            token_label: config.token_label,
            token_serial: config.token_serial,
            pin_file,
            pin_env,
            sessions: config.sessions,
            timeout_seconds: config.timeout.as_secs(),
        }
    }
}

impl Pkcs11Config {
    /// Reads and checks the config file at `path`; relative paths in it are resolved
    /// against the file's directory.
    pub fn from_file(path: &Path) -> Result<Self, Pkcs11Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Pkcs11Error::Config {
            origin: path.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base_dir, &path.display().to_string())
    }

    /// Parses and checks config text; relative paths are resolved against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Self, Pkcs11Error> {
        Self::parse(text, base_dir, "<text>")
    }

    fn parse(text: &str, base_dir: &Path, origin: &str) -> Result<Self, Pkcs11Error> {
        let mut config: Self = toml::from_str(text).map_err(|e| Pkcs11Error::Config {
            origin: origin.to_owned(),
            message: toml_message(&e, text),
        })?;
        if config.module.is_relative() {
            config.module = base_dir.join(&config.module);
        }
        if let PinSource::File(path) = &mut config.pin
            && path.is_relative()
        {
            *path = base_dir.join(&*path);
        }
        Ok(config)
    }

    /// Checks the values' ranges (parsing does it too; [`crate::Pkcs11Provider::open`]
    /// checks configs built in code).
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.module.as_os_str().is_empty() {
            return Err("`module` is empty".into());
        }
        if self.token_label.is_empty() || self.token_label.len() > MAX_LABEL_BYTES {
            return Err(format!(
                "`token-label` must be 1 to {MAX_LABEL_BYTES} bytes long"
            ));
        }
        if self.token_serial.as_deref().is_some_and(str::is_empty) {
            return Err("`token-serial` is empty".into());
        }
        match &self.pin {
            PinSource::File(path) if path.as_os_str().is_empty() => {
                return Err("`pin-file` is empty".into());
            }
            PinSource::Env(variable) if variable.is_empty() || variable.contains('=') => {
                return Err("`pin-env` must be an environment variable name".into());
            }
            _ => {}
        }
        if !(1..=MAX_SESSIONS).contains(&self.sessions) {
            return Err(format!(
                "`sessions` must be between 1 and {MAX_SESSIONS}, not {}",
                self.sessions
            ));
        }
        let seconds = self.timeout.as_secs();
        if !(1..=MAX_TIMEOUT_SECONDS).contains(&seconds) {
            return Err(format!(
                "`timeout-seconds` must be between 1 and {MAX_TIMEOUT_SECONDS}, not {seconds}"
            ));
        }
        Ok(())
    }

    /// Reads the user PIN from its source.
    pub(crate) fn read_pin(&self) -> Result<Pin, Pkcs11Error> {
        match &self.pin {
            PinSource::File(path) => read_pin_file(path),
            PinSource::Env(variable) => {
                let refuse = |reason| Pkcs11Error::PinEnv {
                    variable: variable.clone(),
                    reason,
                };
                let value = match std::env::var(variable) {
                    Ok(value) => Zeroizing::new(value),
                    Err(std::env::VarError::NotPresent) => return Err(refuse("not set")),
                    Err(std::env::VarError::NotUnicode(_)) => {
                        return Err(refuse("not valid UTF-8"));
                    }
                };
                if value.is_empty() {
                    return Err(refuse("empty"));
                }
                Ok(Pin(value))
            }
        }
    }
}

fn read_pin_file(path: &Path) -> Result<Pin, Pkcs11Error> {
    let refuse = |reason: String| Pkcs11Error::PinFile {
        path: path.to_path_buf(),
        reason,
    };
    carimbo_kms::check_private_file(path).map_err(|e| match e {
        carimbo_kms::Error::InsecurePermissions { mode, .. } => refuse(format!(
            "is accessible by group or others (mode {mode:o}); chmod 600 it"
        )),
        carimbo_kms::Error::Io { source, .. } => refuse(source.to_string()),
        other => refuse(other.to_string()),
    })?;
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| refuse(e.to_string()))?);
    let text = std::str::from_utf8(&bytes).map_err(|_| refuse("is not UTF-8".into()))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text);
    if text.is_empty() {
        return Err(refuse("is empty".into()));
    }
    Ok(Pin(Zeroizing::new(text.to_owned())))
}

/// A toml error's message with its line number, without the quoted source line (which
/// could hold a PIN someone wrote into the file by mistake).
fn toml_message(error: &toml::de::Error, text: &str) -> String {
    let mut message = error.message().trim_end().to_owned();
    if message.contains("unknown field `pin`") {
        message.push_str("; the PIN never goes in the config: use `pin-file` or `pin-env`");
    }
    match error.span() {
        Some(span) if span.start < text.len() && span != (0..text.len()) => {
            let line = text[..span.start].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        _ => message,
    }
}

/// A PIN (user or security officer) in memory: zeroized on drop, redacted in `Debug`,
/// never logged and never part of an error message.
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Wraps `text` as a PIN; the string is zeroized when the PIN is dropped.
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// The PIN, to hand to `C_Login` (or to split among officers). Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const BASE: &str = "version = 1\nmodule = \"/opt/hsm/lib.so\"\ntoken-label = \"kms\"\n";

    /// Compiles only for types that wipe themselves when dropped.
    fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>(_: &T) {}

    #[test]
    fn a_pin_is_wiped_on_drop_and_redacted_in_debug_output() {
        let pin = Pin::new("4711-secret-pin".into());
        // The PIN's one field is wiped when the PIN is dropped.
        zeroized_on_drop(&pin.0);
        let shown = format!("{pin:?} {:?}", Some(&pin));
        assert!(!shown.contains("4711"), "{shown}");
    }

    fn parse(text: &str) -> Result<Pkcs11Config, String> {
        Pkcs11Config::from_toml_str(text, Path::new("/etc/carimbo")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_minimal_config_gets_defaults() {
        let config = parse(&format!("{BASE}pin-env = \"KMS_PIN\"\n")).unwrap();
        assert_eq!(config.module, PathBuf::from("/opt/hsm/lib.so"));
        assert_eq!(config.token_label, "kms");
        assert_eq!(config.token_serial, None);
        assert_eq!(config.pin, PinSource::Env("KMS_PIN".into()));
        assert_eq!(config.sessions, 4);
        assert_eq!(config.timeout, Duration::from_secs(10));
    }

    #[test]
    fn relative_paths_are_resolved_against_the_config_directory() {
        let text = "version = 1\nmodule = \"lib/p11.so\"\ntoken-label = \"kms\"\npin-file = \"kms.pin\"\nsessions = 8\ntimeout-seconds = 3\ntoken-serial = \"0123\"\n";
        let config = parse(text).unwrap();
        assert_eq!(config.module, PathBuf::from("/etc/carimbo/lib/p11.so"));
        assert_eq!(
            config.pin,
            PinSource::File(PathBuf::from("/etc/carimbo/kms.pin"))
        );
        assert_eq!(config.sessions, 8);
        assert_eq!(config.timeout, Duration::from_secs(3));
        assert_eq!(config.token_serial.as_deref(), Some("0123"));
    }

    #[test]
    fn from_file_resolves_against_the_files_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pkcs11.toml");
        std::fs::write(
            &path,
            "version = 1\nmodule = \"p11.so\"\ntoken-label = \"kms\"\npin-file = \"pin\"\n",
        )
        .unwrap();
        let config = Pkcs11Config::from_file(&path).unwrap();
        assert_eq!(config.module, dir.path().join("p11.so"));
        assert_eq!(config.pin, PinSource::File(dir.path().join("pin")));
        let missing = Pkcs11Config::from_file(&dir.path().join("absent.toml")).unwrap_err();
        assert!(missing.to_string().contains("absent.toml"), "{missing}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let error = parse(&format!("{BASE}pin-env = \"P\"\nslot = 3\n")).unwrap_err();
        assert!(error.contains("unknown field `slot`"), "{error}");
        assert!(error.contains("line 5"), "{error}");
    }

    #[test]
    fn a_pin_in_the_config_is_refused_without_echoing_it() {
        let error = parse(&format!("{BASE}pin = \"s3cr3t-pin\"\n")).unwrap_err();
        assert!(error.contains("unknown field `pin`"), "{error}");
        assert!(error.contains("pin-file"), "{error}");
        assert!(!error.contains("s3cr3t-pin"), "{error}");
    }

    #[test]
    fn exactly_one_pin_source_is_required() {
        let both = parse(&format!("{BASE}pin-file = \"/p\"\npin-env = \"P\"\n")).unwrap_err();
        assert!(both.contains("`pin-file` and `pin-env`"), "{both}");
        let neither = parse(BASE).unwrap_err();
        assert!(
            neither.contains("one of `pin-file` or `pin-env`"),
            "{neither}"
        );
    }

    #[test]
    fn only_version_1_is_read() {
        let text = BASE.replace("version = 1", "version = 2") + "pin-env = \"P\"\n";
        let error = parse(&text).unwrap_err();
        assert!(error.contains("`version` 2"), "{error}");
        let missing = parse(&BASE.replace("version = 1\n", "")).unwrap_err();
        assert!(missing.contains("version"), "{missing}");
    }

    #[test]
    fn ranges_are_checked() {
        let error = parse(&format!("{BASE}pin-env = \"P\"\nsessions = 0\n")).unwrap_err();
        assert!(error.contains("`sessions`"), "{error}");
        let error = parse(&format!("{BASE}pin-env = \"P\"\nsessions = 65\n")).unwrap_err();
        assert!(error.contains("`sessions`"), "{error}");
        let error = parse(&format!("{BASE}pin-env = \"P\"\ntimeout-seconds = 0\n")).unwrap_err();
        assert!(error.contains("`timeout-seconds`"), "{error}");
        let long = BASE.replace("\"kms\"", &format!("\"{}\"", "x".repeat(33)));
        let error = parse(&format!("{long}pin-env = \"P\"\n")).unwrap_err();
        assert!(error.contains("`token-label`"), "{error}");
    }

    #[test]
    fn serialising_writes_references_not_pins() {
        let dir = tempfile::tempdir().unwrap();
        let pin_path = dir.path().join("pin");
        std::fs::write(&pin_path, "123456\n").unwrap();
        std::fs::set_permissions(&pin_path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = format!("{BASE}pin-file = {:?}\nsessions = 2\n", pin_path);
        let config = parse(&text).unwrap();
        assert_eq!(config.read_pin().unwrap().expose(), "123456");
        let written = toml::to_string(&config).unwrap();
        assert!(!written.contains("123456"), "{written}");
        assert!(written.contains("version = 1"), "{written}");
        assert!(written.contains("pin-file = "), "{written}");
        assert!(written.contains("token-label = \"kms\""), "{written}");
        assert_eq!(parse(&written).unwrap(), config);
        assert_eq!(
            format!("{:?}", config.read_pin().unwrap()),
            "Pin([redacted])"
        );
    }

    #[test]
    fn pin_files_must_be_private_and_lose_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "1234\n\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_pin_file(&path).unwrap().expose(), "1234\n");
        std::fs::write(&path, "1234\r\n").unwrap();
        assert_eq!(read_pin_file(&path).unwrap().expose(), "1234");

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = read_pin_file(&path).unwrap_err().to_string();
        assert!(error.contains("group or others"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");

        let error = read_pin_file(&dir.path().join("absent"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("absent"), "{error}");

        std::fs::write(&path, "\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let error = read_pin_file(&path).unwrap_err().to_string();
        assert!(error.contains("empty"), "{error}");
    }

    #[test]
    fn a_missing_pin_variable_is_named() {
        let config = parse(&format!(
            "{BASE}pin-env = \"CARIMBO_TEST_PIN_THAT_IS_NOT_SET_7f3a\"\n"
        ))
        .unwrap();
        let error = config.read_pin().unwrap_err().to_string();
        assert!(
            error.contains("CARIMBO_TEST_PIN_THAT_IS_NOT_SET_7f3a is not set"),
            "{error}"
        );
    }
}
