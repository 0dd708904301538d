//! `carimbo agent`: keeps a workload's certificate fresh.
//!
//! The agent runs beside a workload. It gets the first certificate with a bootstrap
//! credential (a one-time token or a JWT, read from its file at each use), then renews
//! by proof of possession of the current key before the renewal point (by default 2/3
//! of the lifetime counted from issuance, never later than 80%, made earlier by a
//! random jitter). Each new key, certificate, chain and trust bundle is published
//! together as a new version directory switched in by renaming a symbolic link
//! ([`publish`]), then the workload is told to reload (a signal to the process of a
//! pidfile, or a command). While the CA cannot be reached it retries with exponential
//! backoff and jitter; if the certificate expired meanwhile (or the CA refuses to renew
//! it: revoked, lineage too old), it bootstraps again and says so. The key is made
//! locally and never sent.

mod config;
mod publish;

use std::path::{Path, PathBuf};
use std::time::Duration;

use carimbo_pki::SubjectAltName;
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::client::{self, CaError};
pub use config::AgentConfig;
use config::{Bootstrap, Reload};
use publish::{Current, Meta, Release};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `carimbo agent` arguments.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Agent config file (TOML; see docs/agent.md).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Do what is due once (bootstrap, or renew when past the renewal point) and exit:
    /// for cron and systemd timers. Exits non-zero when that fails.
    #[arg(long)]
    once: bool,
    /// With --once: renew even when the renewal point is not reached yet.
    #[arg(long, requires = "once")]
    force: bool,
    /// Load and check the config, print a summary, and exit (reads no other file).
    #[arg(long, conflicts_with = "once")]
    check: bool,
}

/// Problem codes after which a renewal cannot succeed: bootstrap again. (`bad_proof`
/// is not one: a clock too far from the CA's also gives it, and is fixed in time; a
/// certificate the CA does not know is retried until it expires.)
const BOOTSTRAP_AGAIN: &[&str] = &[
    "certificate_expired",
    "certificate_revoked",
    "lineage_expired",
];

/// What is to be done with the current certificate.
#[derive(Debug)]
enum Due {
    /// Get a certificate with the bootstrap credential, for this reason.
    Bootstrap(String),
    /// Renew by proof of possession.
    Renew,
    /// Nothing until this time.
    NotUntil(OffsetDateTime),
}

/// Why an attempt failed.
#[derive(Debug)]
enum Failure {
    /// The CA will not renew this certificate: bootstrap again.
    NeedsBootstrap(String),
    /// Anything else: retry later.
    Retry(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self::Retry(error)
    }
}

/// The status document (`[status] file`), rewritten at each change.
#[derive(Debug, Default, Serialize)]
struct Status {
    /// `valid`, `renewing`, `bootstrapping`, `retrying`, `stopped`.
    state: &'static str,
    serial: Option<String>,
    not_before: Option<String>,
    not_after: Option<String>,
    issued_at: Option<String>,
    next_renewal: Option<String>,
    version: Option<String>,
    renewals: u64,
    bootstraps: u64,
    last_bootstrap_reason: Option<String>,
    consecutive_failures: u32,
    next_retry: Option<String>,
    last_error: Option<String>,
    last_error_at: Option<String>,
    last_reload: Option<String>,
    last_reload_error: Option<String>,
    updated_at: String,
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A uniformly random number in [0, 1).
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // No randomness: no jitter, which is still correct, only less spread.
        return 0.0;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

fn to_std(duration: time::Duration) -> Duration {
    Duration::try_from(duration).unwrap_or(Duration::ZERO)
}

/// The agent's state between attempts.
struct Agent {
    config: AgentConfig,
    status: Status,
    /// The renewal point chosen for a serial (jitter drawn once per certificate).
    plan: Option<(String, OffsetDateTime)>,
}

/// `carimbo agent --config FILE [--once [--force] | --check]`.
pub async fn run(args: AgentArgs) -> Result<(), Error> {
    let config = AgentConfig::load(&args.config)?;
    if args.check {
        println!("{}", config.summary());
        println!("{}: OK", args.config.display());
        return Ok(());
    }
    let mut agent = Agent {
        config,
        status: Status::default(),
        plan: None,
    };
    if args.once {
        agent.once(args.force).await
    } else {
        agent.daemon().await
    }
}

impl Agent {
    /// The renewal point of `meta`: issuance + lifetime × (renew-at − jitter × u).
    fn renewal_point(&mut self, meta: &Meta) -> OffsetDateTime {
        if let Some((serial, point)) = &self.plan
            && *serial == meta.serial
        {
            return *point;
        }
        let lifetime = meta.not_after - meta.issued_at;
        let fraction = self.config.renew_at - self.config.jitter * random_unit();
        let point = meta.issued_at + lifetime * fraction.clamp(0.0, config::LATEST_RENEWAL);
        self.plan = Some((meta.serial.clone(), point));
        point
    }

    /// Reads what is published and decides what is due at `now`.
    fn assess(&mut self, now: OffsetDateTime) -> (Option<Current>, Due) {
        let current = match publish::read_current(&self.config.directory) {
            Ok(Some(current)) => current,
            Ok(None) => return (None, Due::Bootstrap("no certificate yet".into())),
            Err(error) => {
                return (
                    None,
                    Due::Bootstrap(format!("the published version cannot be used: {error}")),
                );
            }
        };
        let meta = &current.meta;
        let mut wanted: Vec<String> = self
            .config
            .sans
            .iter()
            .map(|s| s.to_string().to_ascii_lowercase())
            .collect();
        let mut have: Vec<String> = meta.sans.iter().map(|s| s.to_ascii_lowercase()).collect();
        wanted.sort();
        have.sort();
        if meta.profile != self.config.profile || wanted != have {
            return (
                Some(current),
                Due::Bootstrap("the configured profile or names changed".into()),
            );
        }
        if now >= meta.not_after {
            let reason = format!(
                "certificate {} expired at {} before it could be renewed",
                meta.serial,
                rfc3339(meta.not_after)
            );
            return (Some(current), Due::Bootstrap(reason));
        }
        let point = self.renewal_point(&current.meta);
        if now >= point {
            (Some(current), Due::Renew)
        } else {
            (Some(current), Due::NotUntil(point))
        }
    }

    fn record_current(&mut self, meta: &Meta, version: &Path, next_renewal: OffsetDateTime) {
        let status = &mut self.status;
        status.serial = Some(meta.serial.clone());
        status.not_before = Some(rfc3339(meta.not_before));
        status.not_after = Some(rfc3339(meta.not_after));
        status.issued_at = Some(rfc3339(meta.issued_at));
        status.next_renewal = Some(rfc3339(next_renewal));
        status.version = version
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
    }

    fn write_status(&mut self) {
        let Some(path) = self.config.status_file.clone() else {
            return;
        };
        self.status.updated_at = rfc3339(OffsetDateTime::now_utc());
        let written = (|| -> Result<(), Error> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let text = serde_json::to_string_pretty(&self.status)? + "\n";
            let mut pending = carimbo_kms::PendingFile::create(&path, 0o644)?;
            std::io::Write::write_all(pending.file(), text.as_bytes())?;
            pending.commit()?;
            Ok(())
        })();
        if let Err(error) = written {
            tracing::warn!(path = %path.display(), %error, "cannot write the status file");
        }
    }

    /// The bootstrap credential, read now (a projected token may have been replaced).
    fn credential(&self) -> Result<(String, Option<String>), Error> {
        let (path, provisioner) = match &self.config.bootstrap {
            Bootstrap::TokenFile(path) => (path, None),
            Bootstrap::JwtFile { path, provisioner } => (path, provisioner.clone()),
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("bootstrap credential {}: {e}", path.display()))?;
        let credential = text.trim().to_owned();
        if credential.is_empty() {
            return Err(format!("bootstrap credential {} is empty", path.display()).into());
        }
        Ok((credential, provisioner))
    }

    /// One attempt: gets a certificate (bootstrap or renewal) and publishes it; returns
    /// its record and the version directory.
    async fn attempt(
        &mut self,
        current: Option<&Current>,
        due: &Due,
    ) -> Result<(Meta, PathBuf), Failure> {
        let config = &self.config;
        let client = client::ca_client(&config.ca_bundle)?;
        // The trust bundle first: nothing is spent (a single-use token) if the CA
        // cannot be reached.
        let bundle = client::fetch_ca_chain(&client, &config.ca_url)
            .await
            .map_err(|e| Failure::Retry(e.into()))?;
        let (roots_pem, intermediates_pem) = publish::split_roots(&bundle)?;
        let renewing = match (due, current) {
            (Due::Renew, Some(current)) => Some(current),
            _ => None,
        };
        let key = match renewing {
            Some(current) if !config.new_key_on_renewal => {
                rcgen::KeyPair::from_pem(&current.key.serialize_pem()).map_err(Error::from)?
            }
            _ => client::generate_key(&config.key_type)?,
        };
        let csr = carimbo_server::tls::csr_pem(&key, &config.sans).map_err(Error::from)?;
        let issued_at = OffsetDateTime::now_utc();
        let answer: Value = match renewing {
            Some(current) => {
                let certificate_pem = carimbo_pki::pem_encode(
                    "CERTIFICATE",
                    &carimbo_pki::pem_decode(&current.certificate_pem, "CERTIFICATE")
                        .map_err(Error::from)?,
                );
                match client::request_renewal(
                    &client,
                    &config.ca_url,
                    &certificate_pem,
                    &current.key,
                    &csr,
                    config.ttl.as_deref(),
                )
                .await
                {
                    Ok(answer) => answer,
                    Err(error) => {
                        if let Some(code) = error
                            .downcast_ref::<CaError>()
                            .and_then(CaError::code)
                            .filter(|code| BOOTSTRAP_AGAIN.contains(code))
                        {
                            return Err(Failure::NeedsBootstrap(format!(
                                "the CA will not renew certificate {} ({code}): {error}",
                                current.meta.serial
                            )));
                        }
                        return Err(Failure::Retry(error));
                    }
                }
            }
            None => {
                let (credential, provisioner) = self.credential()?;
                client::request_certificate(
                    &client,
                    &config.ca_url,
                    &credential,
                    &csr,
                    &config.profile,
                    config.ttl.as_deref(),
                    provisioner.as_deref(),
                )
                .await
                .map_err(|e| Failure::Retry(e.into()))?
            }
        };
        let release = release(
            &key,
            &answer,
            &config.profile,
            issued_at,
            roots_pem,
            intermediates_pem,
        )?;
        let version = publish::publish(
            &config.directory,
            &release,
            config.file_mode,
            config.keep_versions,
        )?;
        let meta = release.meta;
        let point = self.renewal_point(&meta);
        self.record_current(&meta, &version, point);
        Ok((meta, version))
    }

    /// Tells the workload; a failure is logged and recorded, the new files stay.
    async fn reload(&mut self, version: &Path, meta: &Meta) {
        let Some(reload) = self.config.reload.clone() else {
            return;
        };
        let result = match &reload {
            Reload::Signal { pid_file, signal } => send_signal(pid_file, signal),
            Reload::Command { argv, timeout } => {
                run_command(argv, *timeout, version, &meta.serial).await
            }
        };
        let now = rfc3339(OffsetDateTime::now_utc());
        match result {
            Ok(done) => {
                tracing::info!(serial = %meta.serial, action = %done, "workload told to reload");
                self.status.last_reload = Some(now);
                self.status.last_reload_error = None;
            }
            Err(error) => {
                tracing::warn!(serial = %meta.serial, %error, "the reload action failed");
                self.status.last_reload_error = Some(format!("{now}: {error}"));
            }
        }
    }

    /// `--once`: what is due, once.
    async fn once(&mut self, force: bool) -> Result<(), Error> {
        let now = OffsetDateTime::now_utc();
        let (current, mut due) = self.assess(now);
        if let (Due::NotUntil(point), Some(current)) = (&due, &current) {
            if !force {
                println!(
                    "certificate {} valid until {}; renewal due at {}: nothing to do",
                    current.meta.serial,
                    rfc3339(current.meta.not_after),
                    rfc3339(*point)
                );
                self.record_current(&current.meta, &current.directory, *point);
                self.status.state = "valid";
                self.write_status();
                return Ok(());
            }
            due = Due::Renew;
        }
        let mut result = self.step(current.as_ref(), &due).await;
        if let Err(Failure::NeedsBootstrap(reason)) = result {
            due = Due::Bootstrap(reason);
            result = self.step(current.as_ref(), &due).await;
        }
        match result {
            Ok(meta) => {
                println!(
                    "{} certificate {} until {} into {}",
                    if matches!(due, Due::Renew) {
                        "renewed:"
                    } else {
                        "bootstrapped:"
                    },
                    meta.serial,
                    rfc3339(meta.not_after),
                    self.config.directory.join(publish::CURRENT).display()
                );
                Ok(())
            }
            Err(Failure::NeedsBootstrap(reason)) => Err(reason.into()),
            Err(Failure::Retry(error)) => Err(error),
        }
    }

    /// One attempt with its logs and status.
    async fn step(&mut self, current: Option<&Current>, due: &Due) -> Result<Meta, Failure> {
        match due {
            Due::Renew => {
                self.status.state = "renewing";
                tracing::info!(
                    serial = %current.map_or("", |c| c.meta.serial.as_str()),
                    "renewing by proof of possession"
                );
            }
            Due::Bootstrap(reason) => {
                self.status.state = "bootstrapping";
                if current.is_some() || self.status.serial.is_some() {
                    tracing::warn!(%reason, "bootstrapping again");
                } else {
                    tracing::info!(%reason, "bootstrapping");
                }
            }
            Due::NotUntil(_) => {}
        }
        let result = self.attempt(current, due).await;
        let now = OffsetDateTime::now_utc();
        match &result {
            Ok((meta, _)) => {
                self.status.state = "valid";
                self.status.consecutive_failures = 0;
                self.status.next_retry = None;
                let next = self.renewal_point(meta);
                match due {
                    Due::Bootstrap(reason) => {
                        self.status.bootstraps += 1;
                        self.status.last_bootstrap_reason = Some(reason.clone());
                        tracing::info!(
                            serial = %meta.serial,
                            not_after = %rfc3339(meta.not_after),
                            next_renewal = %rfc3339(next),
                            %reason,
                            "bootstrapped"
                        );
                    }
                    _ => {
                        self.status.renewals += 1;
                        tracing::info!(
                            serial = %meta.serial,
                            not_after = %rfc3339(meta.not_after),
                            next_renewal = %rfc3339(next),
                            "renewed"
                        );
                    }
                }
            }
            Err(Failure::Retry(error)) => {
                self.status.state = "retrying";
                self.status.consecutive_failures += 1;
                self.status.last_error = Some(crate::one_line(error.as_ref()));
                self.status.last_error_at = Some(rfc3339(now));
            }
            Err(Failure::NeedsBootstrap(reason)) => {
                self.status.last_error = Some(reason.clone());
                self.status.last_error_at = Some(rfc3339(now));
            }
        }
        self.write_status();
        // Published: now the workload may reload (a command may take a while: the
        // status above already names the new certificate).
        match result {
            Ok((meta, version)) => {
                self.reload(&version, &meta).await;
                self.write_status();
                Ok(meta)
            }
            Err(failure) => Err(failure),
        }
    }

    /// The delay before retry number `failures` (1, 2, …): exponential, capped, with
    /// jitter (between half and all of it); never past half the time the current
    /// certificate has left, so the CA's return is caught before the certificate ends.
    fn retry_delay(&self, failures: u32, current: Option<&Current>) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        let full = self
            .config
            .retry_initial
            .saturating_mul(1u32 << exponent)
            .min(self.config.retry_max);
        let mut delay = full.mul_f64(0.5 + 0.5 * random_unit());
        if let Some(current) = current {
            let left = to_std(current.meta.not_after - OffsetDateTime::now_utc());
            if left > Duration::ZERO {
                delay = delay.min((left / 2).max(Duration::from_secs(1)));
            }
        }
        delay.max(Duration::from_millis(100))
    }

    /// The long-running agent: until SIGTERM or SIGINT.
    async fn daemon(&mut self) -> Result<(), Error> {
        tracing::info!(
            config = %self.config.path.display(),
            ca = %self.config.ca_url,
            directory = %self.config.directory.display(),
            "agent started"
        );
        let shutdown = crate::service::shutdown_signal();
        tokio::pin!(shutdown);
        let mut bootstrap_reason: Option<String> = None;
        let mut failures: u32 = 0;
        let mut last_valid: Option<(String, OffsetDateTime)> = None;
        loop {
            let now = OffsetDateTime::now_utc();
            let (current, mut due) = self.assess(now);
            if let Some(reason) = &bootstrap_reason
                && !matches!(due, Due::Bootstrap(_))
            {
                due = Due::Bootstrap(reason.clone());
            }
            let wait = match &due {
                Due::NotUntil(point) => {
                    if let Some(current) = &current {
                        let planned = (current.meta.serial.clone(), *point);
                        if last_valid.as_ref() != Some(&planned) {
                            self.record_current(&current.meta, &current.directory, *point);
                            self.status.state = "valid";
                            self.write_status();
                            tracing::info!(
                                serial = %current.meta.serial,
                                not_after = %rfc3339(current.meta.not_after),
                                next_renewal = %rfc3339(*point),
                                "certificate valid"
                            );
                            last_valid = Some(planned);
                        }
                    }
                    // Wake at least every minute: the wall clock may jump (suspend).
                    Some(to_std(*point - now).min(Duration::from_secs(60)))
                }
                Due::Renew | Due::Bootstrap(_) => match self.step(current.as_ref(), &due).await {
                    Ok(_) => {
                        failures = 0;
                        bootstrap_reason = None;
                        None
                    }
                    Err(Failure::NeedsBootstrap(reason)) => {
                        tracing::warn!(%reason, "the CA refused to renew; bootstrapping again");
                        bootstrap_reason = Some(reason);
                        None
                    }
                    Err(Failure::Retry(error)) => {
                        failures += 1;
                        let delay = self.retry_delay(failures, current.as_ref());
                        let retry_at = now + delay;
                        self.status.next_retry = Some(rfc3339(retry_at));
                        self.write_status();
                        tracing::warn!(
                            error = %crate::one_line(error.as_ref()),
                            failures,
                            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                            "attempt failed; retrying"
                        );
                        Some(delay)
                    }
                },
            };
            if let Some(wait) = wait {
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
        tracing::info!("agent stopping");
        self.status.state = "stopped";
        self.write_status();
        Ok(())
    }
}

/// The release to publish from the CA's answer, checked: the certificate's key is
/// `key`, and the names are read back from the certificate.
fn release(
    key: &rcgen::KeyPair,
    answer: &Value,
    profile: &str,
    issued_at: OffsetDateTime,
    roots_pem: String,
    intermediates_pem: String,
) -> Result<Release, Error> {
    let certificate_pem = answer["certificate"]
        .as_str()
        .ok_or("the CA returned no certificate")?;
    let chain_pem: String = answer["chain"]
        .as_array()
        .ok_or("the CA returned no chain")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let der = carimbo_pki::pem_decode(certificate_pem, "CERTIFICATE")?;
    if !publish::key_matches(key, &der)? {
        return Err("the CA returned a certificate for another key".into());
    }
    let (_, parsed) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| format!("certificate: {e}"))?;
    let validity = parsed.validity();
    let not_before = OffsetDateTime::from_unix_timestamp(validity.not_before.timestamp())?;
    let not_after = OffsetDateTime::from_unix_timestamp(validity.not_after.timestamp())?;
    let sans = client::certificate_sans(&der)?
        .iter()
        .map(SubjectAltName::to_string)
        .collect();
    Ok(Release {
        key_pem: key.serialize_pem(),
        certificate_pem: carimbo_pki::pem_encode("CERTIFICATE", &der),
        chain_pem,
        roots_pem,
        intermediates_pem,
        meta: Meta {
            serial: hex::encode(parsed.raw_serial()),
            profile: profile.to_owned(),
            sans,
            // Never before notBefore, whatever the two clocks say.
            issued_at: issued_at.max(not_before),
            not_before,
            not_after,
        },
    })
}

/// Sends `signal` to the process whose id is in `pid_file`.
fn send_signal(pid_file: &Path, signal: &str) -> Result<String, Error> {
    use rustix::process::{Pid, Signal, kill_process};
    let text = std::fs::read_to_string(pid_file)
        .map_err(|e| format!("pidfile {}: {e}", pid_file.display()))?;
    let pid = text
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|pid| *pid > 1)
        .and_then(Pid::from_raw)
        .ok_or_else(|| format!("pidfile {}: no process id in it", pid_file.display()))?;
    let value = match signal {
        "HUP" => Signal::HUP,
        "USR1" => Signal::USR1,
        "USR2" => Signal::USR2,
        "TERM" => Signal::TERM,
        "INT" => Signal::INT,
        "QUIT" => Signal::QUIT,
        other => return Err(format!("unknown signal {other}").into()),
    };
    kill_process(pid, value).map_err(|e| format!("SIG{signal} to process {pid}: {e}"))?;
    Ok(format!("SIG{signal} to process {pid}"))
}

/// Runs the reload command (no shell) with the new version in its environment.
async fn run_command(
    argv: &[String],
    timeout: Duration,
    version: &Path,
    serial: &str,
) -> Result<String, Error> {
    let (program, arguments) = argv.split_first().ok_or("empty reload command")?;
    let mut child = tokio::process::Command::new(program)
        .args(arguments)
        .env("CARIMBO_AGENT_VERSION", version)
        .env("CARIMBO_AGENT_SERIAL", serial)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("reload command {program}: {e}"))?;
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(format!("command {program}")),
        Ok(Ok(status)) => Err(format!("reload command {program}: {status}").into()),
        Ok(Err(error)) => Err(format!("reload command {program}: {error}").into()),
        Err(_) => {
            let _ = child.kill().await;
            Err(format!(
                "reload command {program}: killed after {}s",
                timeout.as_secs()
            )
            .into())
        }
    }
}
