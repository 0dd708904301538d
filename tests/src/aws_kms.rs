//! A local AWS KMS emulator for the AWS provider's tests: the server of the Python
//! package `moto` (`pip install 'moto[server]'`), on a free port of 127.0.0.1.
//!
//! Started once per test process, by a small watchdog shell in its own session that
//! stops the server when the test process ends, however it ends. Without the package
//! the tests print a `SKIPPED` notice, or fail under `CARIMBO_REQUIRE_BACKENDS=1`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::skip;

/// The emulator of this test process.
#[derive(Debug)]
pub struct AwsKmsEmulator {
    /// Its URL, `http://127.0.0.1:PORT`: the provider's `endpoint`.
    pub endpoint: String,
    /// The region the tests use.
    pub region: &'static str,
    /// Static fake credentials (the emulator accepts any).
    pub access_key_id: &'static str,
    /// Static fake credentials (the emulator accepts any).
    pub secret_access_key: &'static str,
}

impl AwsKmsEmulator {
    /// An `aws-kms.toml` for the emulator, with `extra` lines appended.
    pub fn config_text(&self, extra: &str) -> String {
        format!(
            "version = 1\nregion = {:?}\nendpoint = {:?}\n{extra}",
            self.region, self.endpoint
        )
    }
}

/// The emulator of this test process, started on first use.
///
/// The Python interpreter is `CARIMBO_MOTO_PYTHON` (set by `scripts/test.sh`, which
/// may install the emulator in a virtual environment of its own), else
/// `CARIMBO_PYTHON`, else `python3`.
pub fn aws_kms_emulator() -> Option<&'static AwsKmsEmulator> {
    static EMULATOR: OnceLock<Result<AwsKmsEmulator, String>> = OnceLock::new();
    match EMULATOR.get_or_init(start) {
        Ok(emulator) => Some(emulator),
        Err(why) => {
            skip("AWS KMS emulator (moto)", why);
            None
        }
    }
}

fn start() -> Result<AwsKmsEmulator, String> {
    let python = std::env::var("CARIMBO_MOTO_PYTHON")
        .or_else(|_| std::env::var("CARIMBO_PYTHON"))
        .unwrap_or_else(|_| "python3".into());
    let check = Command::new(&python)
        .args(["-c", "import moto.server, flask, flask_cors"])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !check.status.success() {
        return Err(format!(
            "{python} cannot import moto's server (pip install moto flask flask-cors)"
        ));
    }
    // Holds the server's log; removed by the watchdog when this process ends.
    let dir = tempfile::Builder::new()
        .prefix("carimbo-moto-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?
        .keep();
    let log = dir.join("moto.log");
    // The port is free when chosen, but could be taken before the server binds it.
    let mut last_error = String::new();
    for _ in 0..5 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
        spawn_with_watchdog(&python, port, &log)?;
        match wait_until_serving(port, &log) {
            Ok(()) => {
                return Ok(AwsKmsEmulator {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    region: "us-east-1",
                    access_key_id: "testing",
                    secret_access_key: "testing",
                });
            }
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// Starts `python -m moto.server` on `port` under a watchdog that stops it when this
/// process ends (or when the server dies), and removes the log's directory, if it is
/// one of ours, once this process has ended.
fn spawn_with_watchdog(python: &str, port: u16, log: &Path) -> Result<(), String> {
    // $1: pid to wait for; $2: python; $3: port; $4: log file.
    let script = r#"
        "$2" -m moto.server -H 127.0.0.1 -p "$3" >"$4" 2>&1 &
        server=$!
        while kill -0 "$1" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 1; done
        kill "$server" 2>/dev/null
        wait "$server" 2>/dev/null
        # The log stays while the test process runs: it explains a failed start.
        while kill -0 "$1" 2>/dev/null; do sleep 1; done
        dir=$(dirname "$4")
        case "$dir" in
            /*/carimbo-moto-*) rm -rf -- "$dir" ;;
        esac
    "#;
    let mut command = if Path::new("/usr/bin/setsid").exists() || Path::new("/bin/setsid").exists()
    {
        // Its own session: a Ctrl-C to the test run does not kill the cleanup.
        let mut command = Command::new("setsid");
        command.arg("sh");
        command
    } else {
        Command::new("sh")
    };
    command
        .arg("-c")
        .arg(script)
        .arg("carimbo-moto-watchdog")
        .arg(std::process::id().to_string())
        .arg(python)
        .arg(port.to_string())
        .arg(log)
        // No inherited pipes: cargo would wait for the watchdog to close them.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("start the emulator's watchdog: {e}"))
}

/// Waits (up to 60 s) until the server on `port` answers an HTTP request.
fn wait_until_serving(port: u16, log: &Path) -> Result<(), String> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if answers_http(address) {
            return Ok(());
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("Address already in use") || text.contains("Traceback") {
            return Err(format!("moto server on port {port} failed:\n{text}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "moto server on port {port} did not answer within 60 s:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    ))
}

fn answers_http(address: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
