//! `carimbo agent` end to end: the real agent binary against a real `carimbo dev` CA on
//! 127.0.0.1 (killed and restarted on the same port and data directory to make it
//! unreachable), with `openssl s_server` as the workload and `openssl s_client` /
//! `openssl verify` checking what the agent publishes. Short lifetimes (6–20 s) keep
//! the tests quick; the dev CA backdates notBefore by one minute, which is why the
//! agent must count lifetimes from issuance.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use carimbo_tests::{carimbo_binary, openssl};
use serde_json::Value;

use crate::cli_dev::{free_port, start_dev};
use crate::server::s;

/// The dev CA's backdate (config/dev.toml's profiles: one minute).
const BACKDATE: i64 = 60;

/// A `carimbo dev` CA that the test can stop and start again on the same port and data.
struct DevCa {
    data: PathBuf,
    api: u16,
    publication: u16,
    child: Option<Child>,
}

impl DevCa {
    fn start(dir: &Path) -> Self {
        let mut ca = Self {
            data: dir.join("ca"),
            api: free_port(),
            publication: free_port(),
            child: None,
        };
        ca.resume();
        ca
    }

    /// Starts the CA again (same port, same data).
    fn resume(&mut self) {
        assert!(self.child.is_none());
        let (child, _) = start_dev(&self.data, self.api, self.publication);
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.api)
    }

    fn bundle(&self) -> PathBuf {
        self.data.join("ca-bundle.pem")
    }

    /// A bootstrap token for `san` (server profile) from the admin API.
    fn token(&self, san: &str) -> String {
        let output = Command::new(carimbo_binary())
            .args(["token", "create", "--ca", &self.url()])
            .args(["--ca-bundle", s(&self.bundle())])
            .args(["--admin-token-file", s(&self.data.join("admin.token"))])
            .args(["--provisioner", "dev", "--profile", "server"])
            .args(["--san", san, "--ttl", "10m"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

impl Drop for DevCa {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A child process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills the process named by a pidfile when dropped (the workload the reload script
/// started in the background).
struct PidFileGuard(PathBuf);

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// Writes the agent config for `ca` into `dir`, with `certificate` lines added to its
/// `[certificate]` section and `extra` TOML appended; returns its path. Output goes to
/// `dir/tls`, the status to `dir/status.json`.
fn agent_config(dir: &Path, ca: &DevCa, san: &str, certificate: &str, extra: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            r#"version = 1
[ca]
url = "{url}"
bundle = {bundle:?}
[certificate]
profile = "server"
sans = ["{san}"]
{certificate}
[bootstrap]
token-file = "token"
[output]
directory = "tls"
[status]
file = "status.json"
{extra}"#,
            url = ca.url(),
            bundle = ca.bundle(),
        ),
    )
    .unwrap();
    path
}

fn write_token(dir: &Path, token: &str) {
    std::fs::write(dir.join("token"), format!("{token}\n")).unwrap();
}

/// Starts `carimbo agent --config CONFIG` with JSON logs into `log`.
fn spawn_agent(config: &Path, log: &Path) -> Running {
    Running(
        Command::new(carimbo_binary())
            .args(["agent", "--config", s(config)])
            .env("CARIMBO_LOG_FORMAT", "json")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn agent_once(config: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(carimbo_binary())
        .args(["agent", "--config", s(config), "--once"])
        .args(extra)
        .output()
        .unwrap()
}

/// A published certificate as a reader sees it.
#[derive(Debug, Clone)]
struct Seen {
    serial: String,
    not_before: i64,
    not_after: i64,
    at: Instant,
}

/// The version `tls/current` names now: its directory, resolved once.
fn current_version(out: &Path) -> Option<PathBuf> {
    let target = std::fs::read_link(out.join("current")).ok()?;
    Some(out.join(target))
}

fn read_certificate(path: &Path) -> (String, i64, i64) {
    let pem = std::fs::read_to_string(path).unwrap();
    let der = carimbo_pki::pem_decode(&pem, "CERTIFICATE").unwrap();
    let (_, certificate) = x509_parser::parse_x509_certificate(&der).unwrap();
    (
        hex::encode(certificate.raw_serial()),
        certificate.validity().not_before.timestamp(),
        certificate.validity().not_after.timestamp(),
    )
}

fn seen_now(out: &Path) -> Option<Seen> {
    let version = current_version(out)?;
    let (serial, not_before, not_after) = read_certificate(&version.join("cert.pem"));
    Some(Seen {
        serial,
        not_before,
        not_after,
        at: Instant::now(),
    })
}

/// Polls until `check` gives a value or `limit` passes.
fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(dir: &Path) -> Value {
    std::fs::read_to_string(dir.join("status.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `openssl verify` of a version directory's certificate against its own chain and
/// trust bundle, as a TLS peer would.
fn verifies(version: &Path) -> (bool, String) {
    openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        s(&version.join("ca-bundle.pem")),
        "-untrusted",
        s(&version.join("chain.pem")),
        s(&version.join("cert.pem")),
    ])
}

/// The serial of the certificate the TLS server on `port` presents, if the handshake
/// verifies against `bundle`.
fn served_serial(port: u16, bundle: &Path) -> Option<String> {
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-CAfile", s(bundle), "-verify_return_error"])
        .args(["-servername", "app.localhost"])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let der = carimbo_pki::pem_decode(&text, "CERTIFICATE").ok()?;
    let (_, certificate) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(hex::encode(certificate.raw_serial()))
}

#[test]
fn the_agent_renews_before_80_percent_and_the_reloaded_server_serves_each_new_certificate() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ca = DevCa::start(dir);
    write_token(dir, &ca.token("dns:app.localhost"));
    let port = free_port();
    // The reload hook restarts the workload, an `openssl s_server`, on the current files
    // and records which serial it was started for.
    let script = dir.join("restart-server.sh");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
set -e
cd {dir:?}
if [ -f s_server.pid ]; then
    pid=$(cat s_server.pid)
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
fi
openssl s_server -accept {port} -www -cert tls/current/cert.pem \
    -key tls/current/key.pem -cert_chain tls/current/chain.pem </dev/null >/dev/null 2>&1 &
echo $! > s_server.pid
echo "$CARIMBO_AGENT_SERIAL" >> reloads.log
"#
        ),
    )
    .unwrap();
    let _server = PidFileGuard(dir.join("s_server.pid"));
    let config = agent_config(
        dir,
        &ca,
        "dns:app.localhost",
        "ttl = \"20s\"",
        &format!(
            "[renewal]\nretry-initial = \"1s\"\nretry-max = \"4s\"\n\
             [reload]\ncommand = [\"sh\", {script:?}]\ntimeout = \"10s\"\n"
        ),
    );
    let out = dir.join("tls");

    // --once bootstraps: a complete version behind `current`, key 0600.
    let output = agent_once(&config, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("bootstrapped:"));
    let first = seen_now(&out).unwrap();
    let version = current_version(&out).unwrap();
    let (ok, text) = verifies(&version);
    assert!(ok, "{text}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(version.join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(status(dir)["serial"], first.serial.as_str());
    // A second --once is not due: nothing changes.
    let output = agent_once(&config, &[]);
    assert!(output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("nothing to do"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(seen_now(&out).unwrap().serial, first.serial);

    // The reload hook of that first publication started the workload; then the agent
    // runs.
    let bundle = version.join("ca-bundle.pem");
    wait_for(Duration::from_secs(10), "s_server to serve", || {
        (served_serial(port, &bundle)? == first.serial).then_some(())
    });
    let log = dir.join("agent.log");
    let _agent = spawn_agent(&config, &log);
    let mut seen = vec![first];
    while seen.len() < 4 {
        let previous = seen.last().unwrap().clone();
        let next = wait_for(Duration::from_secs(30), "a renewal", || {
            seen_now(&out).filter(|s| s.serial != previous.serial)
        });
        // Before the old certificate ended, with a fresh one published.
        assert!(unix_now() < previous.not_after, "renewed after expiry");
        // The reload fired for this certificate and the restarted server serves it.
        wait_for(Duration::from_secs(10), "the reload hook", || {
            std::fs::read_to_string(dir.join("reloads.log"))
                .ok()?
                .contains(&next.serial)
                .then_some(())
        });
        let version = current_version(&out).unwrap();
        let (ok, text) = verifies(&version);
        assert!(ok, "{text}");
        wait_for(
            Duration::from_secs(10),
            "s_server to serve the new certificate",
            || (served_serial(port, &version.join("ca-bundle.pem"))? == next.serial).then_some(()),
        );
        seen.push(next);
    }
    // Each renewal happened before 80% of the lifetime counted from issuance. The CA's
    // clock: issued at notBefore + backdate; the lifetime is notAfter − that. (Whole
    // seconds, so each fraction is known within 1/20.)
    let mut fractions = Vec::new();
    for pair in seen.windows(2) {
        let issued = pair[0].not_before + BACKDATE;
        let lifetime = (pair[0].not_after - issued) as f64;
        let renewed = (pair[1].not_before + BACKDATE - issued) as f64;
        let by_ca_clock = renewed / lifetime;
        let by_reader = pair[1].at.duration_since(pair[0].at).as_secs_f64() / lifetime;
        fractions.push((by_ca_clock, by_reader));
    }
    eprintln!("renewal points (fraction of lifetime: CA clock, reader): {fractions:?}");
    for (by_ca_clock, _) in &fractions {
        assert!(
            *by_ca_clock < 0.8 && *by_ca_clock > 0.5,
            "renewed at {by_ca_clock} of the lifetime (expected about 2/3, never 0.8)"
        );
    }
    // One reload per publication, each for its certificate.
    let reloads = std::fs::read_to_string(dir.join("reloads.log")).unwrap();
    let reloaded: Vec<&str> = reloads.lines().collect();
    let published: Vec<&str> = seen.iter().map(|s| s.serial.as_str()).collect();
    assert_eq!(reloaded, published);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        log_text.matches("\"message\":\"renewed\"").count(),
        3,
        "{log_text}"
    );
    assert!(
        !log_text.contains("PRIVATE KEY"),
        "the key must never be logged"
    );
    let status = wait_for(Duration::from_secs(5), "the status", || {
        let status = status(dir);
        (status["serial"] == seen[3].serial.as_str()).then_some(status)
    });
    assert_eq!(status["renewals"], 3, "{status}");
    assert!(status["next_renewal"].is_string(), "{status}");
    eprintln!("agent renewal test: {:?}", started.elapsed());
}

#[test]
fn the_agent_retries_while_the_ca_is_down_and_bootstraps_again_after_expiry() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut ca = DevCa::start(dir);
    let san = "dns:outage.localhost";
    write_token(dir, &ca.token(san));
    let spare_token = ca.token(san);
    // The workload: counts the SIGHUPs the agent sends it.
    let workload = Running(
        Command::new("sh")
            .arg("-c")
            .arg("trap 'echo hup >> hups.log' HUP; while :; do sleep 0.1; done")
            .current_dir(dir)
            .spawn()
            .unwrap(),
    );
    std::fs::write(dir.join("workload.pid"), workload.0.id().to_string()).unwrap();
    let config = agent_config(
        dir,
        &ca,
        san,
        "ttl = \"30s\"",
        "[renewal]\nrenew-at = 0.5\njitter = 0.0\nretry-initial = \"1s\"\nretry-max = \"4s\"\n\
         [reload]\npid-file = \"workload.pid\"\nsignal = \"HUP\"\n",
    );
    let out = dir.join("tls");
    let log = dir.join("agent.log");
    let _agent = spawn_agent(&config, &log);
    let first = wait_for(Duration::from_secs(30), "the first certificate", || {
        seen_now(&out)
    });
    // The next bootstrap credential waits in the file (read at each use).
    write_token(dir, &spare_token);

    // Outage 1, longer than the renewal interval (15 s): the agent retries with backoff
    // and renews as soon as the CA is back, before its certificate ends.
    ca.stop();
    let renew_point = first.not_before + BACKDATE + 15;
    wait_for(Duration::from_secs(30), "failed renewal attempts", || {
        let status = status(dir);
        (status["state"] == "retrying"
            && status["consecutive_failures"].as_u64()? >= 2
            && status["last_error"].as_str()?.contains("cannot reach"))
        .then_some(())
    });
    while unix_now() < renew_point + 5 {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen_now(&out).unwrap().serial, first.serial);
    let failures_during_outage = status(dir)["consecutive_failures"].as_u64().unwrap();
    ca.resume();
    let back = Instant::now();
    let second = wait_for(
        Duration::from_secs(15),
        "the renewal after the outage",
        || seen_now(&out).filter(|s| s.serial != first.serial),
    );
    let caught_up = back.elapsed();
    let margin = first.not_after - unix_now();
    assert!(margin > 0, "renewed only after the certificate expired");
    let after_outage = wait_for(Duration::from_secs(5), "the status", || {
        let status = status(dir);
        (status["serial"] == second.serial.as_str()).then_some(status)
    });
    assert_eq!(after_outage["renewals"], 1, "{after_outage}");
    assert_eq!(after_outage["bootstraps"], 1, "{after_outage}");

    // Outage 2, past the certificate's end: the agent bootstraps again and says so.
    ca.stop();
    while unix_now() <= second.not_after + 1 {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen_now(&out).unwrap().serial, second.serial);
    ca.resume();
    let third = wait_for(Duration::from_secs(20), "the new bootstrap", || {
        seen_now(&out).filter(|s| s.serial != second.serial)
    });
    let final_status = wait_for(Duration::from_secs(5), "the status", || {
        let status = status(dir);
        (status["serial"] == third.serial.as_str()).then_some(status)
    });
    assert_eq!(final_status["bootstraps"], 2, "{final_status}");
    assert!(
        final_status["last_bootstrap_reason"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{final_status}"
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("bootstrapping again") && log_text.contains("expired at"),
        "{log_text}"
    );
    // A SIGHUP for each of the three publications.
    let hups = wait_for(Duration::from_secs(5), "three reload signals", || {
        let count = std::fs::read_to_string(dir.join("hups.log"))
            .ok()?
            .lines()
            .count();
        (count >= 3).then_some(count)
    });
    assert_eq!(hups, 3);
    eprintln!(
        "outage test: {failures_during_outage} failed attempts during outage 1, renewed {caught_up:?} after the CA was back, {margin} s before the certificate's end; total {:?}",
        started.elapsed()
    );
}

/// One read of a version as a workload does: the key, the certificate, the chain. The
/// serial, or what is wrong.
fn check_version(version: &Path) -> Result<String, String> {
    use rcgen::PublicKeyData;
    let read = |name: &str| {
        std::fs::read_to_string(version.join(name)).map_err(|e| format!("{name}: {e}"))
    };
    let key = rcgen::KeyPair::from_pem(&read("key.pem")?).map_err(|e| format!("key.pem: {e}"))?;
    let der = carimbo_pki::pem_decode(&read("cert.pem")?, "CERTIFICATE")
        .map_err(|e| format!("cert.pem: {e}"))?;
    let (_, certificate) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| format!("cert.pem: {e}"))?;
    if certificate.public_key().raw != key.subject_public_key_info().as_slice() {
        return Err("the key is not the certificate's".into());
    }
    let (ok, text) = verifies(version);
    if !ok {
        return Err(format!("the chain does not verify: {text}"));
    }
    Ok(hex::encode(certificate.raw_serial()))
}

#[test]
fn a_reader_never_sees_a_key_that_is_not_its_certificates_across_many_renewals() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ca = DevCa::start(dir);
    let san = "dns:reader.localhost";
    write_token(dir, &ca.token(san));
    let config = agent_config(
        dir,
        &ca,
        san,
        "ttl = \"6s\"\nnew-key-on-renewal = true",
        "[renewal]\nrenew-at = 0.4\njitter = 0.1\nretry-initial = \"1s\"\nretry-max = \"2s\"\n",
    );
    let out = dir.join("tls");
    let _agent = spawn_agent(&config, &dir.join("agent.log"));
    wait_for(Duration::from_secs(30), "the first certificate", || {
        seen_now(&out)
    });
    // The reader resolves `current` once per read, as docs/agent.md tells workloads to,
    // and checks every read: key is the certificate's, chain verifies.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = std::sync::Arc::clone(&stop);
        let out = out.clone();
        std::thread::spawn(move || {
            let mut reads = 0u32;
            let mut failures = Vec::new();
            let mut serials = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let version = current_version(&out).unwrap();
                match check_version(&version) {
                    Ok(serial) => {
                        serials.insert(serial);
                    }
                    Err(why) => failures.push(format!("{}: {why}", version.display())),
                }
                reads += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (reads, failures, serials)
        })
    };
    // At least ten renewals while the reader reads.
    let mut last = seen_now(&out).unwrap().serial;
    let mut renewals = 0;
    while renewals < 10 {
        let next = wait_for(Duration::from_secs(10), "a renewal", || {
            seen_now(&out).filter(|s| s.serial != last)
        });
        last = next.serial;
        renewals += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, failures, serials) = reader.join().unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(serials.len() >= 10, "{serials:?}");
    assert!(reads >= 100, "only {reads} reads");
    // Old versions are pruned (just after each switch): the last three are kept.
    wait_for(Duration::from_secs(2), "old versions to be pruned", || {
        let versions = std::fs::read_dir(out.join("versions"))
            .unwrap()
            .filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count();
        (versions <= 3).then_some(())
    });
    eprintln!(
        "reader test: {reads} reads over {} certificates, no mismatch; {:?}",
        serials.len(),
        started.elapsed()
    );
}

#[test]
fn a_bad_agent_config_is_refused_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let mut file = std::fs::File::create(&config).unwrap();
    write!(
        file,
        "version = 1\n[ca]\nurl = \"https://127.0.0.1:1\"\nbundle = \"ca.pem\"\n\
         [certificate]\nprofile = \"server\"\nsans = [\"dns:a.localhost\"]\n\
         [bootstrap]\ntoken-file = \"token\"\n[output]\ndirectory = \"tls\"\ncolour = \"red\"\n"
    )
    .unwrap();
    drop(file);
    for extra in [&[][..], &["--once"][..]] {
        let output = Command::new(carimbo_binary())
            .args(["agent", "--config", s(&config)])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ")
                && stderr.contains("agent.toml")
                && stderr.contains("output")
                && stderr.contains("colour"),
            "{stderr}"
        );
    }
    // No CA bundle, no CA: --once fails with the reason, and publishes nothing.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("colour = \"red\"\n", "");
    std::fs::write(&config, text).unwrap();
    std::fs::write(dir.path().join("token"), "cbt_x\n").unwrap();
    let output = Command::new(carimbo_binary())
        .args(["agent", "--config", s(&config), "--once"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(!dir.path().join("tls/current").exists());
    // --force without --once is a usage error.
    let output = Command::new(carimbo_binary())
        .args(["agent", "--config", s(&config), "--force"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn the_agent_bootstraps_with_a_kubernetes_jwt_and_renews_a_workload_certificate() {
    let Some(ca) = crate::server::test_ca() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let header = serde_json::json!({ "alg": "EdDSA", "typ": "JWT", "kid": "k1" });
    let claims = crate::server::service_account_claims("payments", "api", 600);
    std::fs::write(dir.join("jwt"), ca.jwt(&header, &claims)).unwrap();
    let id = "spiffe://lab.example.com/ns/payments/sa/api";
    let config = dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[ca]\nurl = {url:?}\nbundle = {bundle:?}\n\
             [certificate]\nprofile = \"workload\"\nsans = [\"uri:{id}\"]\nttl = \"1h\"\n\
             [bootstrap]\njwt-file = \"jwt\"\nprovisioner = \"k8s\"\n\
             [output]\ndirectory = \"svid\"\n[status]\nfile = \"status.json\"\n",
            url = ca.url,
            bundle = ca.bundle,
        ),
    )
    .unwrap();
    let output = agent_once(&config, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = dir.join("svid");
    let version = current_version(&out).unwrap();
    let (ok, text) = openssl(&[
        "verify",
        "-purpose",
        "sslclient",
        "-CAfile",
        s(&version.join("ca-bundle.pem")),
        "-untrusted",
        s(&version.join("chain.pem")),
        s(&version.join("cert.pem")),
    ]);
    assert!(ok, "{text}");
    let (_, text) = openssl(&[
        "x509",
        "-in",
        s(&version.join("cert.pem")),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    assert!(text.contains(&format!("URI:{id}")), "{text}");
    let first = seen_now(&out).unwrap();
    // Renewal by proof of possession: the JWT is not needed (a spent one stays put).
    std::fs::write(dir.join("jwt"), "not a token").unwrap();
    let output = agent_once(&config, &["--force"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("renewed:"));
    let second = seen_now(&out).unwrap();
    assert_ne!(second.serial, first.serial);
    assert_eq!(status(dir)["renewals"], 1);
    // The key stayed (no new-key-on-renewal) and the SVID names the same identity.
    let key = |v: &Path| std::fs::read(v.join("key.pem")).unwrap();
    assert_eq!(key(&version), key(&current_version(&out).unwrap()));
}
