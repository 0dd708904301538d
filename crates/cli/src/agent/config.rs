//! The agent's config file: one strict TOML file, kebab-case keys, `version = 1`,
//! unknown keys refused. Relative paths are resolved against the file's directory.

use std::path::{Path, PathBuf};

use carimbo_pki::SubjectAltName;
use carimbo_server::config::Span;
use serde::Deserialize;

use crate::client::KEY_TYPES;

/// The latest point of a certificate's lifetime at which the agent may renew.
pub const LATEST_RENEWAL: f64 = 0.8;

/// `agent.toml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    version: u32,
    ca: CaSection,
    certificate: CertificateSection,
    bootstrap: BootstrapSection,
    output: OutputSection,
    #[serde(default)]
    renewal: RenewalSection,
    #[serde(default)]
    reload: Option<ReloadSection>,
    #[serde(default)]
    status: Option<StatusSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CaSection {
    url: String,
    bundle: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CertificateSection {
    profile: String,
    sans: Vec<String>,
    #[serde(default = "default_key_type")]
    key_type: String,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    new_key_on_renewal: bool,
}

fn default_key_type() -> String {
    "ecdsa-p256".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BootstrapSection {
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    jwt_file: Option<PathBuf>,
    #[serde(default)]
    provisioner: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct OutputSection {
    directory: PathBuf,
    #[serde(default)]
    file_mode: Option<String>,
    #[serde(default = "default_keep_versions")]
    keep_versions: usize,
}

fn default_keep_versions() -> usize {
    3
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RenewalSection {
    #[serde(default = "default_renew_at")]
    renew_at: f64,
    #[serde(default = "default_jitter")]
    jitter: f64,
    #[serde(default = "default_retry_initial")]
    retry_initial: Span,
    #[serde(default = "default_retry_max")]
    retry_max: Span,
}

impl Default for RenewalSection {
    fn default() -> Self {
        Self {
            renew_at: default_renew_at(),
            jitter: default_jitter(),
            retry_initial: default_retry_initial(),
            retry_max: default_retry_max(),
        }
    }
}

fn default_renew_at() -> f64 {
    2.0 / 3.0
}

fn default_jitter() -> f64 {
    0.05
}

fn default_retry_initial() -> Span {
    Span(time::Duration::seconds(1))
}

fn default_retry_max() -> Span {
    Span(time::Duration::minutes(5))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ReloadSection {
    #[serde(default)]
    pid_file: Option<PathBuf>,
    #[serde(default)]
    signal: Option<String>,
    #[serde(default)]
    command: Option<Vec<String>>,
    #[serde(default)]
    timeout: Option<Span>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct StatusSection {
    file: PathBuf,
}

/// How the agent proves who it is the first time (and after its certificate expired).
#[derive(Debug, Clone)]
pub enum Bootstrap {
    /// A one-time bootstrap token, read from this file at each use.
    TokenFile(PathBuf),
    /// A JWT (e.g. a projected Kubernetes service-account token), read from this file
    /// at each use, for the named JWT provisioner (or the CA's choice).
    JwtFile {
        /// The file.
        path: PathBuf,
        /// The JWT provisioner to name in the request.
        provisioner: Option<String>,
    },
}

/// Signals the agent may send to a workload.
pub const SIGNALS: &[&str] = &["HUP", "USR1", "USR2", "TERM", "INT", "QUIT"];

/// How the workload is told to reload.
#[derive(Debug, Clone)]
pub enum Reload {
    /// Send `signal` to the process whose id is in `pid_file` (read at each reload).
    Signal {
        /// The pidfile.
        pid_file: PathBuf,
        /// The signal name, one of [`SIGNALS`] without `SIG`.
        signal: String,
    },
    /// Run a program (no shell) with arguments, killed after `timeout`.
    Command {
        /// Program and arguments.
        argv: Vec<String>,
        /// Longest run.
        timeout: std::time::Duration,
    },
}

/// The checked agent config.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The config file.
    pub path: PathBuf,
    /// CA base URL (https).
    pub ca_url: String,
    /// The roots the agent trusts for its TLS connection to the CA.
    pub ca_bundle: PathBuf,
    /// Profile: server, client or workload.
    pub profile: String,
    /// Names to ask for.
    pub sans: Vec<SubjectAltName>,
    /// Key type of new keys.
    pub key_type: String,
    /// Requested lifetime (the profile's default otherwise), as the API takes it.
    pub ttl: Option<String>,
    /// Make a new key at each renewal.
    pub new_key_on_renewal: bool,
    /// First and emergency credential.
    pub bootstrap: Bootstrap,
    /// Where versions and the `current` symlink live.
    pub directory: PathBuf,
    /// Mode of the published certificate files (the key is always 0600).
    pub file_mode: u32,
    /// How many published versions to keep (the current one included).
    pub keep_versions: usize,
    /// Fraction of the lifetime (counted from issuance) at which to renew.
    pub renew_at: f64,
    /// Largest fraction of the lifetime by which a renewal is randomly made earlier.
    pub jitter: f64,
    /// First retry delay while the CA cannot be reached.
    pub retry_initial: std::time::Duration,
    /// Longest retry delay.
    pub retry_max: std::time::Duration,
    /// How to tell the workload.
    pub reload: Option<Reload>,
    /// Where to write the status document (JSON).
    pub status_file: Option<PathBuf>,
}

fn positive(span: Span, field: &str) -> Result<std::time::Duration, String> {
    if !span.0.is_positive() {
        return Err(format!("{field}: must be more than zero"));
    }
    std::time::Duration::try_from(span.0).map_err(|e| format!("{field}: {e}"))
}

impl AgentConfig {
    /// One line saying what the agent will do.
    pub fn summary(&self) -> String {
        let names: Vec<String> = self.sans.iter().map(ToString::to_string).collect();
        let bootstrap = match &self.bootstrap {
            Bootstrap::TokenFile(path) => format!("token file {}", path.display()),
            Bootstrap::JwtFile { path, .. } => format!("JWT file {}", path.display()),
        };
        let reload = match &self.reload {
            None => "no reload action".to_owned(),
            Some(Reload::Signal { pid_file, signal }) => {
                format!("SIG{signal} to the process in {}", pid_file.display())
            }
            Some(Reload::Command { argv, .. }) => format!("reload command {}", argv.join(" ")),
        };
        format!(
            "{} certificate for {} ({}{}) from {}, bootstrap with {bootstrap}; renewal at {:.0}% of the lifetime (up to {:.0}% earlier by jitter); published under {}; {reload}",
            self.profile,
            names.join(", "),
            self.key_type,
            if self.new_key_on_renewal {
                ", new key at each renewal"
            } else {
                ""
            },
            self.ca_url,
            self.renew_at * 100.0,
            self.jitter * 100.0,
            self.directory.join("current").display(),
        )
    }

    /// Loads and checks `path`; every error names the file and the field.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text, path).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn parse(text: &str, path: &Path) -> Result<Self, String> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| e.message().to_owned())?;
        let file: File = serde_path_to_error::deserialize(deserializer)
            .map_err(|e| format!("{}: {}", e.path(), e.inner().message()))?;
        if file.version != 1 {
            return Err(format!("version: {} is not supported (1)", file.version));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| base.join(p);

        let ca_url = file.ca.url.trim_end_matches('/').to_owned();
        if !ca_url.starts_with("https://") {
            return Err(format!("ca.url: {ca_url:?} must be an https:// URL"));
        }

        let certificate = file.certificate;
        if !["server", "client", "workload"].contains(&certificate.profile.as_str()) {
            return Err(format!(
                "certificate.profile: {:?} is not server, client or workload",
                certificate.profile
            ));
        }
        if certificate.sans.is_empty() {
            return Err("certificate.sans: give at least one name".into());
        }
        let sans = certificate
            .sans
            .iter()
            .map(|s| {
                s.parse::<SubjectAltName>()
                    .map_err(|e| format!("certificate.sans: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !KEY_TYPES.contains(&certificate.key_type.as_str()) {
            return Err(format!(
                "certificate.key-type: {:?} is not one of {}",
                certificate.key_type,
                KEY_TYPES.join(", ")
            ));
        }
        if let Some(ttl) = &certificate.ttl {
            let span = Span::parse(ttl).map_err(|e| format!("certificate.ttl: {e}"))?;
            positive(span, "certificate.ttl")?;
        }

        let bootstrap = match file.bootstrap {
            BootstrapSection {
                token_file: Some(token),
                jwt_file: None,
                provisioner: None,
            } => Bootstrap::TokenFile(resolve(&token)),
            BootstrapSection {
                token_file: None,
                jwt_file: Some(jwt),
                provisioner,
            } => Bootstrap::JwtFile {
                path: resolve(&jwt),
                provisioner,
            },
            BootstrapSection {
                token_file: Some(_),
                jwt_file: None,
                provisioner: Some(_),
            } => {
                return Err(
                    "bootstrap.provisioner: only for jwt-file (a token names its provisioner)"
                        .into(),
                );
            }
            _ => return Err("bootstrap: give exactly one of token-file and jwt-file".into()),
        };

        let output = file.output;
        let file_mode = match &output.file_mode {
            None => 0o644,
            Some(text) => {
                let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
                    .ok()
                    .filter(|m| *m <= 0o777 && m & 0o111 == 0)
                    .ok_or_else(|| {
                        format!("output.file-mode: {text:?} is not a file mode like \"0644\"")
                    })?;
                if mode & 0o600 != 0o600 {
                    return Err(format!(
                        "output.file-mode: {text:?} must let the owner read and write"
                    ));
                }
                mode
            }
        };
        if output.keep_versions < 2 {
            return Err(
                "output.keep-versions: at least 2 (a reader may still be reading the previous one)"
                    .into(),
            );
        }

        let renewal = file.renewal;
        if !(renewal.renew_at > 0.0 && renewal.renew_at <= LATEST_RENEWAL) {
            return Err(format!(
                "renewal.renew-at: {} must be more than 0 and at most {LATEST_RENEWAL} (a fraction of the lifetime)",
                renewal.renew_at
            ));
        }
        if !(renewal.jitter >= 0.0 && renewal.jitter < renewal.renew_at) {
            return Err(format!(
                "renewal.jitter: {} must be at least 0 and less than renew-at",
                renewal.jitter
            ));
        }
        let retry_initial = positive(renewal.retry_initial, "renewal.retry-initial")?;
        let retry_max = positive(renewal.retry_max, "renewal.retry-max")?;
        if retry_max < retry_initial {
            return Err("renewal.retry-max: must not be less than retry-initial".into());
        }

        let reload = match file.reload {
            None => None,
            Some(ReloadSection {
                pid_file: Some(pid_file),
                signal,
                command: None,
                timeout: None,
            }) => {
                let signal = signal
                    .unwrap_or_else(|| "HUP".into())
                    .trim_start_matches("SIG")
                    .to_owned();
                if !SIGNALS.contains(&signal.as_str()) {
                    return Err(format!(
                        "reload.signal: {signal:?} is not one of {}",
                        SIGNALS.join(", ")
                    ));
                }
                Some(Reload::Signal {
                    pid_file: resolve(&pid_file),
                    signal,
                })
            }
            Some(ReloadSection {
                pid_file: None,
                signal: None,
                command: Some(argv),
                timeout,
            }) => {
                if argv.first().is_none_or(String::is_empty) {
                    return Err("reload.command: give the program and its arguments".into());
                }
                let timeout = match timeout {
                    Some(span) => positive(span, "reload.timeout")?,
                    None => std::time::Duration::from_secs(30),
                };
                Some(Reload::Command { argv, timeout })
            }
            Some(ReloadSection {
                pid_file: None,
                signal: Some(_),
                ..
            }) => return Err("reload.signal: needs reload.pid-file".into()),
            Some(ReloadSection {
                pid_file: Some(_),
                timeout: Some(_),
                command: None,
                ..
            }) => return Err("reload.timeout: only for reload.command".into()),
            Some(_) => {
                return Err(
                    "reload: give either pid-file (and signal) or command, not both".into(),
                );
            }
        };

        Ok(Self {
            path: path.to_path_buf(),
            ca_url,
            ca_bundle: resolve(&file.ca.bundle),
            profile: certificate.profile,
            sans,
            key_type: certificate.key_type,
            ttl: certificate.ttl,
            new_key_on_renewal: certificate.new_key_on_renewal,
            bootstrap,
            directory: resolve(&output.directory),
            file_mode,
            keep_versions: output.keep_versions,
            renew_at: renewal.renew_at,
            jitter: renewal.jitter,
            retry_initial,
            retry_max,
            reload,
            status_file: file.status.map(|s| resolve(&s.file)),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MINIMAL: &str = r#"
version = 1
[ca]
url = "https://ca.example.com:8443/"
bundle = "ca.pem"
[certificate]
profile = "server"
sans = ["dns:app.example.com"]
[bootstrap]
token-file = "token"
[output]
directory = "tls"
"#;

    fn parse(text: &str) -> Result<AgentConfig, String> {
        AgentConfig::parse(text, Path::new("/etc/carimbo/agent.toml"))
    }

    #[test]
    fn a_minimal_config_gets_the_documented_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.ca_url, "https://ca.example.com:8443");
        assert_eq!(config.ca_bundle, Path::new("/etc/carimbo/ca.pem"));
        assert_eq!(config.directory, Path::new("/etc/carimbo/tls"));
        assert!((config.renew_at - 2.0 / 3.0).abs() < 1e-9);
        assert!((config.jitter - 0.05).abs() < 1e-9);
        assert_eq!(config.file_mode, 0o644);
        assert_eq!(config.keep_versions, 3);
        assert_eq!(config.key_type, "ecdsa-p256");
        assert!(!config.new_key_on_renewal);
        assert!(config.reload.is_none());
        assert!(
            matches!(config.bootstrap, Bootstrap::TokenFile(ref p) if p == Path::new("/etc/carimbo/token"))
        );
    }

    #[test]
    fn bad_configs_are_refused_with_the_field_named() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "[output]",
                "[output]\ncolour = \"red\"",
                "unknown field `colour`",
            ),
            ("version = 1", "version = 2", "version: 2"),
            ("https://ca", "http://ca", "ca.url"),
            (
                "profile = \"server\"",
                "profile = \"ca\"",
                "certificate.profile",
            ),
            ("dns:app.example.com", "app.example.com", "certificate.sans"),
            (
                "token-file = \"token\"",
                "token-file = \"token\"\njwt-file = \"jwt\"",
                "exactly one of token-file and jwt-file",
            ),
            (
                "directory = \"tls\"",
                "directory = \"tls\"\nfile-mode = \"0755\"",
                "output.file-mode",
            ),
            (
                "directory = \"tls\"",
                "directory = \"tls\"\nkeep-versions = 1",
                "output.keep-versions",
            ),
        ];
        for (from, to, expected) in cases {
            let text = MINIMAL.replacen(from, to, 1);
            let error = parse(&text).unwrap_err();
            assert!(error.contains(expected), "{to}: {error}");
        }
        let appended: &[(&str, &str)] = &[
            ("[renewal]\nrenew-at = 0.9", "renewal.renew-at"),
            ("[renewal]\nrenew-at = 0.5\njitter = 0.5", "renewal.jitter"),
            ("[renewal]\nretry-initial = \"0s\"", "renewal.retry-initial"),
            (
                "[renewal]\nretry-initial = \"10m\"\nretry-max = \"1m\"",
                "retry-max",
            ),
            ("[reload]\nsignal = \"HUP\"", "needs reload.pid-file"),
            (
                "[reload]\npid-file = \"p\"\nsignal = \"KILL\"",
                "reload.signal",
            ),
            ("[reload]\npid-file = \"p\"\ncommand = [\"x\"]", "not both"),
            ("[reload]\ncommand = []", "reload.command"),
            ("[certificate.extra]\nx = 1", "unknown field `extra`"),
        ];
        for (extra, expected) in appended {
            let text = format!("{MINIMAL}{extra}\n");
            let error = parse(&text).unwrap_err();
            assert!(error.contains(expected), "{extra}: {error}");
        }
    }

    #[test]
    fn reload_actions_parse() {
        let config = parse(&format!(
            "{MINIMAL}[reload]\npid-file = \"/run/nginx.pid\"\nsignal = \"SIGHUP\"\n"
        ))
        .unwrap();
        assert!(
            matches!(config.reload, Some(Reload::Signal { ref signal, .. }) if signal == "HUP")
        );
        let config = parse(&format!(
            "{MINIMAL}[reload]\ncommand = [\"systemctl\", \"reload\", \"nginx\"]\ntimeout = \"10s\"\n"
        ))
        .unwrap();
        assert!(matches!(
            config.reload,
            Some(Reload::Command { ref argv, timeout }) if argv.len() == 3 && timeout.as_secs() == 10
        ));
    }
}
