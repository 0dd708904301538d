//! The README's run command: `carimbo dev` on a fresh data directory, then
//! `carimbo issue` against it, then a second `carimbo dev` reusing the same data.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use carimbo_tests::{carimbo_binary, openssl};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A data directory `dir/data` made by a first `carimbo dev` run (hierarchy, keys,
/// config, admin token), the process then killed: the base of the tests that run
/// `carimbo serve` over it.
pub(crate) fn dev_data(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    let (mut dev, _) = start_dev(&data, free_port(), free_port());
    dev.kill().unwrap();
    let _ = dev.wait();
    data
}

/// Starts `carimbo dev` and reads its banner until the bootstrap token line.
pub(crate) fn start_dev(data: &Path, api: u16, publication: u16) -> (Child, String) {
    start_dev_env(data, api, publication, &[])
}

/// [`start_dev`] with extra environment variables for the child.
pub(crate) fn start_dev_env(
    data: &Path,
    api: u16,
    publication: u16,
    environment: &[(&str, &str)],
) -> (Child, String) {
    let mut child = Command::new(carimbo_binary())
        .envs(environment.iter().copied())
        .args(["dev", "--data-dir"])
        .arg(data)
        .args(["--listen", &format!("127.0.0.1:{api}")])
        .args(["--publication-listen", &format!("127.0.0.1:{publication}")])
        .env("RUST_LOG", "carimbo_server=debug,warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(data.with_extension("log")).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    // Read the banner, then keep draining standard output until the process ends.
    std::thread::spawn(move || {
        let mut token = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(found) = line.split_whitespace().find(|w| w.starts_with("cbt_")) {
                token = Some(found.to_owned());
            }
            if line.starts_with("Try:") {
                let _ = sender.send(token.take());
            }
        }
        let _ = sender.send(None);
    });
    let token = receiver
        .recv_timeout(std::time::Duration::from_secs(120))
        .ok()
        .flatten();
    (
        child,
        token.expect("carimbo dev printed no bootstrap token"),
    )
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn dev_then_issue_works_from_the_readme() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (api, publication) = (free_port(), free_port());
    let (mut dev, token) = start_dev(&data, api, publication);
    let issue = |token: &str, out: &Path| {
        Command::new(carimbo_binary())
            .args(["issue", "--ca", &format!("https://127.0.0.1:{api}")])
            .args([
                "--ca-bundle",
                s(&data.join("ca-bundle.pem")),
                "--token",
                token,
            ])
            .args([
                "--profile",
                "server",
                "--san",
                "dns:app.localhost",
                "--out",
                s(out),
            ])
            .output()
            .unwrap()
    };
    let out = dir.path().join("app-cert");
    let output = issue(&token, &out);
    assert!(
        output.status.success(),
        "{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
    );
    let (ok, text) = openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        s(&data.join("ca-bundle.pem")),
        "-untrusted",
        s(&out.join("chain.pem")),
        s(&out.join("cert.pem")),
    ]);
    assert!(ok, "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(out.join("key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // The token is single use: a second attempt is refused with a clear line.
    let output = issue(&token, &dir.path().join("again"));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("token_used"));
    assert!(!dir.path().join("again").exists());
    dev.kill().unwrap();
    let _ = dev.wait();

    // A second run reuses the data: same root, a new token that works.
    let root = std::fs::read(data.join("ceremony/root.pem")).unwrap();
    let (mut dev, second_token) = start_dev(&data, api, publication);
    assert_ne!(second_token, token);
    assert_eq!(std::fs::read(data.join("ceremony/root.pem")).unwrap(), root);
    let output = issue(&second_token, &dir.path().join("app-cert-2"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    dev.kill().unwrap();
    let _ = dev.wait();
}
