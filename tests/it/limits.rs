//! HTTP hardening against a real `carimbo serve`: slow clients are disconnected after
//! the header timeout, oversized request heads are refused, and an identity over its
//! issuance rate gets `429 rate_limited` while others go on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli_dev::{dev_data, free_port};
use crate::replicas::{carimbo, issue_through, serve_config, start_replica_with};
use crate::server::s;

/// Reads until the peer closes (or `limit` passes); returns what came and how long it
/// took.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(_) => break,
        }
    }
    (received, started.elapsed())
}

fn renew(api: &str, data: &Path, cert: &Path, out: &Path) -> (bool, String) {
    let (ok, _, stderr) = carimbo(&[
        "renew",
        "--ca",
        api,
        "--ca-bundle",
        s(&data.join("ca-bundle.pem")),
        "--cert",
        s(&cert.join("cert.pem")),
        "--key",
        s(&cert.join("key.pem")),
        "--out",
        s(out),
    ]);
    (ok, stderr)
}

#[test]
fn slow_clients_big_heads_and_fast_identities_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "limited", api, publication, false);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[server]\n", "[server]\nheader-timeout = \"1s\"\n");
    assert!(text.contains("header-timeout"), "{text}");
    std::fs::write(
        &config,
        format!("{text}\n[limits]\nissuance-per-minute = 3\n"),
    )
    .unwrap();
    let log = dir.path().join("serve.log");
    let mut replica = start_replica_with(&config, api, publication, &[], Some(&log));

    // A client that never finishes its headers is disconnected after about 1 s.
    let mut slow = TcpStream::connect(("127.0.0.1", publication)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (_, took) = read_until_closed(&mut slow, Duration::from_secs(10));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // An idle keep-alive connection too, after a first request answered.
    let mut idle = TcpStream::connect(("127.0.0.1", publication)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (answer, took) = read_until_closed(&mut idle, Duration::from_secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // A request head over 64 KiB is refused without being read to the end.
    let mut big = TcpStream::connect(("127.0.0.1", publication)).unwrap();
    let header = format!("X-Big: {}\r\n", "a".repeat(100 * 1024));
    let _ = big.write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{header}\r\n").as_bytes());
    let (answer, _) = read_until_closed(&mut big, Duration::from_secs(10));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    // Normal clients are served meanwhile.
    let mut fine = TcpStream::connect(("127.0.0.1", publication)).unwrap();
    fine.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (answer, _) = read_until_closed(&mut fine, Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&answer).contains("\"ok\""));

    // Issuance: three certificates a minute per identity. A lineage keeps the identity
    // of its bootstrap token, so the issuance and two renewals pass, the third is refused.
    let first = dir.path().join("first");
    issue_through(&replica, &data, "dns:limited.localhost", &first);
    for round in 0..2 {
        let out = dir.path().join(format!("renewed-{round}"));
        let (ok, stderr) = renew(&replica.api, &data, &first, &out);
        assert!(ok, "renewal {round}: {stderr}");
    }
    let (ok, stderr) = renew(&replica.api, &data, &first, &dir.path().join("refused"));
    assert!(!ok && stderr.contains("rate_limited"), "{stderr}");
    assert!(!dir.path().join("refused").join("cert.pem").exists());
    // Another identity is not affected.
    issue_through(
        &replica,
        &data,
        "dns:other.localhost",
        &dir.path().join("other"),
    );
    replica.terminate();
}
