//! Revocation, CRLs and OCSP end to end: a real service on 127.0.0.1 (SoftHSM2-held
//! intermediates, real SQLite), checked with `openssl ocsp`, `openssl crl`, `openssl
//! verify -crl_check`, Python `cryptography` and pkilint; the kill-between-commit-and-
//! re-sign story with the `carimbo` binary; the database going away; malformed OCSP
//! requests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use carimbo_server::AppState;
use carimbo_server::config::LoadedConfig;
use carimbo_store::{CertificateStore, SqliteStore};
use carimbo_tests::{carimbo_binary, ceremony_pki, openssl};
use serde_json::{Value, json};

use crate::cli_dev::{free_port, start_dev};
use crate::server::{TestCa, p256, s, start_ca, write_issued};

/// An issued certificate on disk.
struct Issued {
    dir: tempfile::TempDir,
    serial: String,
    key: PathBuf,
}

impl Issued {
    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
}

fn issue_server(ca: &TestCa, name: &str) -> Issued {
    let request = p256(&[&format!("subjectAltName=DNS:{name}")]);
    let token = ca.token("lab", "server", &[&format!("dns:{name}")], "1h", "10m");
    let (status, reply) = ca.issue(&token, &request.csr, "server", None);
    assert_eq!(status, 201, "{reply}");
    let dir = tempfile::tempdir().unwrap();
    write_issued(dir.path(), &reply);
    let key = dir.path().join("key.pem");
    std::fs::copy(request.key(), &key).unwrap();
    Issued {
        dir,
        serial: reply["serial"].as_str().unwrap().to_owned(),
        key,
    }
}

/// `openssl ocsp` against the service; returns its output.
pub(crate) fn openssl_ocsp(
    ca_file: &Path,
    issuer: &Path,
    target: &[&str],
    url: &str,
    extra: &[&str],
) -> String {
    let mut args = vec![
        "ocsp",
        "-issuer",
        s(issuer),
        "-CAfile",
        s(ca_file),
        "-url",
        url,
        "-timeout",
        "5",
        "-no_nonce",
    ];
    // openssl wants the digest (-sha256) before -cert/-serial.
    args.extend(extra);
    args.extend(target);
    let (_, text) = openssl(&args);
    text
}

fn admin_revoke(ca: &TestCa, serial: &str, reason: &str) -> (u16, Value) {
    ca.post(
        &format!("/v1/certificates/{serial}/revoke"),
        Some(&ca.admin_token),
        "application/json",
        json!({ "reason": reason }).to_string().into_bytes(),
    )
}

fn python() -> String {
    std::env::var("CARIMBO_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs a pkilint linter, `None` when it is not installed.
fn pkilint(linter: &str, args: &[&str]) -> Option<(bool, String)> {
    let output = Command::new(linter).args(args).output().ok()?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Some((output.status.success(), text))
}

/// Python `cryptography` parses the OCSP response, checks its status, and verifies its
/// signature with the responder certificate and that certificate with the issuer.
fn python_checks_ocsp(response: &Path, issuer: &Path, expected: &str) {
    let script = r#"
import sys
from cryptography import x509
from cryptography.x509 import ocsp
from cryptography.hazmat.primitives.asymmetric import ec
der = open(sys.argv[1], 'rb').read()
issuer = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
r = ocsp.load_der_ocsp_response(der)
assert r.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, r.response_status
status = r.certificate_status.name.lower()
assert status == sys.argv[3], (status, sys.argv[3])
responder = r.certificates[0]
responder.verify_directly_issued_by(issuer)
eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
assert x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in eku
responder.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.5"))
responder.public_key().verify(r.signature, r.tbs_response_bytes, ec.ECDSA(r.signature_hash_algorithm))
assert r.next_update_utc > r.this_update_utc
if status == 'revoked':
    print('reason', r.revocation_reason)
print('ok', status)
"#;
    let output = Command::new(python())
        .args(["-c", script, s(response), s(issuer), expected])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && stderr.contains("No module named") {
        carimbo_tests::skip("python3 with cryptography", &stderr);
        return;
    }
    assert!(
        output.status.success(),
        "cryptography refused the OCSP response: {stderr}"
    );
}

fn get_raw(
    ca: &TestCa,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    ca.runtime.block_on(async {
        let mut request = ca.client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.bytes().await.unwrap().to_vec())
    })
}

fn post_raw(ca: &TestCa, url: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
    ca.runtime.block_on(async {
        let mut request = ca.client.post(url).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.bytes().await.unwrap().to_vec(),
        )
    })
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The DER of an `openssl ocsp` request for `cert` under `issuer`.
fn request_der(issuer: &Path, cert: &Path, extra: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("req.der");
    let mut args = vec![
        "ocsp",
        "-issuer",
        s(issuer),
        "-cert",
        s(cert),
        "-reqout",
        s(&out),
    ];
    args.extend(extra);
    let (ok, text) = openssl(&args);
    assert!(ok, "{text}");
    std::fs::read(out).unwrap()
}

/// Waits until the published CRL of `issuer` lists `serial`; returns its DER.
fn wait_for_crl_entry(ca: &TestCa, issuer: &str, serial: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, der) = ca.get(&format!("{}/crl/{issuer}.crl", ca.publication_url));
        if status == 200 {
            let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
            if crl
                .iter_revoked_certificates()
                .any(|entry| hex::encode(entry.raw_serial()) == serial)
            {
                return der;
            }
        }
        assert!(Instant::now() < deadline, "the CRL never listed {serial}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ocsp_and_crl_follow_a_revocation() {
    let Some(ca) = start_ca() else { return };
    let pki = ceremony_pki().unwrap();
    let issuer = pki.path("int-server.pem");
    let root = pki.path("root.pem");
    let url = format!("{}/ocsp", ca.publication_url);
    let leaf = issue_server(&ca, "web-ocsp.example.com");
    let cert = leaf.cert();

    // good, over POST, with SHA-1 (OpenSSL's default) and SHA-256 CertIDs.
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&cert)], &url, &[]);
    assert!(text.contains("Response verify OK"), "{text}");
    assert!(text.contains(&format!("{}: good", s(&cert))), "{text}");
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&cert)], &url, &["-sha256"]);
    assert!(
        text.contains("Response verify OK") && text.contains(": good"),
        "{text}"
    );

    // GET (RFC 6960 appendix A.1) with the RFC 5019 caching headers, and 304.
    let der = request_der(&issuer, &cert, &["-no_nonce"]);
    let get_url = format!("{url}/{}", base64(&der));
    let (status, headers, body) = get_raw(&ca, &get_url, &[]);
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/ocsp-response");
    let cache_control = headers["cache-control"].to_str().unwrap();
    let max_age: i64 = cache_control
        .split(',')
        .find_map(|p| p.trim().strip_prefix("max-age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&max_age), "{cache_control}");
    assert!(headers.contains_key("last-modified") && headers.contains_key("expires"));
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (status, _, _) = get_raw(&ca, &get_url, &[("if-none-match", &etag)]);
    assert_eq!(status, 304);
    let work = tempfile::tempdir().unwrap();
    let good = work.path().join("good.der");
    std::fs::write(&good, &body).unwrap();
    let (ok, text) = openssl(&[
        "ocsp",
        "-respin",
        s(&good),
        "-issuer",
        s(&issuer),
        "-CAfile",
        s(&root),
        "-cert",
        s(&cert),
    ]);
    assert!(ok && text.contains(": good"), "{text}");
    python_checks_ocsp(&good, &issuer, "good");

    // unknown for a serial never issued; unauthorized for an issuer we do not serve.
    let text = openssl_ocsp(
        &root,
        &issuer,
        &["-serial", "0x7fc0ffee000000000000000000000001"],
        &url,
        &[],
    );
    assert!(text.contains(": unknown"), "{text}");
    // An unknown serial may be an intent about to complete: its answer is short-lived
    // (ocsp-max-age plus the backdate), not the hours of a good one.
    let update = |label: &str| {
        let line = text
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {text}"));
        let format = time::macros::format_description!(
            "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
        );
        time::PrimitiveDateTime::parse(line.trim(), format)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    };
    let lifetime = update("Next Update:") - update("This Update:");
    assert!(
        lifetime <= time::Duration::minutes(2),
        "unknown answer valid for {lifetime}: {text}"
    );
    let text = openssl_ocsp(&root, &root, &["-cert", s(&cert)], &url, &[]);
    assert!(text.contains("unauthorized"), "{text}");

    // Revoke (administrator, keyCompromise): revoked within 2 s of the call's return.
    let (status, reply) = admin_revoke(&ca, &leaf.serial, "key-compromise");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["status"], "revoked");
    assert_eq!(reply["changed"], true);
    let returned = Instant::now();
    loop {
        let text = openssl_ocsp(&root, &issuer, &["-cert", s(&cert)], &url, &[]);
        if text.contains(": revoked") {
            assert!(text.contains("Response verify OK"), "{text}");
            assert!(text.contains("Reason: keyCompromise"), "{text}");
            break;
        }
        assert!(text.contains(": good"), "{text}");
        assert!(
            returned.elapsed() < Duration::from_secs(2),
            "still not revoked 2 s after the revocation returned: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let propagation = returned.elapsed();
    eprintln!("revocation visible over OCSP after {propagation:?}");
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&cert)], &url, &["-sha256"]);
    assert!(text.contains(": revoked"), "{text}");
    let revoked = work.path().join("revoked.der");
    let (status, _, body) = get_raw(&ca, &get_url, &[]);
    assert_eq!(status, 200);
    std::fs::write(&revoked, &body).unwrap();
    python_checks_ocsp(&revoked, &issuer, "revoked");
    // Idempotent.
    let (status, reply) = admin_revoke(&ca, &leaf.serial, "superseded");
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["changed"], false);
    assert_eq!(reply["reason"], "key-compromise");

    // The CRL lists it within the debounce; OpenSSL verifies the CRL and rejects the
    // certificate with it.
    let crl_der = wait_for_crl_entry(&ca, "int-server", &leaf.serial);
    // The static copy for plain file hosting (`crl-directory`) follows.
    let copy = ca.dir.join("crl-out/int-server.crl");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read(&copy).ok().as_deref() != Some(crl_der.as_slice()) {
        assert!(
            Instant::now() < deadline,
            "{} is not the served CRL",
            copy.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let crl = work.path().join("crl.der");
    std::fs::write(&crl, &crl_der).unwrap();
    let crl_pem = work.path().join("crl.pem");
    let (ok, text) = openssl(&["crl", "-inform", "DER", "-in", s(&crl), "-out", s(&crl_pem)]);
    assert!(ok, "{text}");
    let (ok, text) = openssl(&[
        "crl",
        "-in",
        s(&crl_pem),
        "-noout",
        "-CAfile",
        s(&issuer),
        "-verify",
    ]);
    assert!(ok && text.contains("verify OK"), "{text}");
    let (ok, text) = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        s(&crl_pem),
        "-CAfile",
        s(&root),
        "-untrusted",
        s(&issuer),
        s(&cert),
    ]);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let other = issue_server(&ca, "web-other.example.com");
    let (ok, text) = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        s(&crl_pem),
        "-CAfile",
        s(&root),
        "-untrusted",
        s(&issuer),
        s(&other.cert()),
    ]);
    assert!(ok, "an unrevoked certificate failed with the CRL: {text}");

    // keyCompromise blocked the key: the same key gets no certificate any more.
    let csr = {
        let out = work.path().join("again.csr");
        let (ok, text) = openssl(&[
            "req",
            "-new",
            "-key",
            s(&leaf.key),
            "-subj",
            "/",
            "-addext",
            "subjectAltName=DNS:web-ocsp.example.com",
            "-out",
            s(&out),
        ]);
        assert!(ok, "{text}");
        std::fs::read_to_string(out).unwrap()
    };
    let token = ca.token("lab", "server", &["dns:web-ocsp.example.com"], "1h", "10m");
    let (status, reply) = ca.issue(&token, &csr, "server", None);
    assert_eq!(
        (status, reply["code"].as_str()),
        (400, Some("key_compromised")),
        "{reply}"
    );

    // pkilint's RFC 5280 CRL and RFC 6960 OCSP linters find nothing at WARNING or above.
    if pkilint("lint_ocsp_response", &["--help"]).is_none() {
        carimbo_tests::skip(
            "pkilint",
            "lint_ocsp_response not found (pip install pkilint)",
        );
        return;
    }
    let (ok, output) = pkilint(
        "lint_crl",
        &[
            "lint",
            "-t",
            "CRL",
            "-p",
            "PKIX",
            "-s",
            "WARNING",
            s(&crl_pem),
        ],
    )
    .unwrap();
    assert!(ok, "lint_crl: {output}");
    for response in [&good, &revoked] {
        let (ok, output) = pkilint(
            "lint_ocsp_response",
            &["lint", "-s", "WARNING", s(response)],
        )
        .unwrap();
        assert!(ok, "lint_ocsp_response {}: {output}", response.display());
    }
}

#[test]
fn holders_and_bulk_revocations() {
    let Some(ca) = start_ca() else { return };
    let pki = ceremony_pki().unwrap();
    let issuer = pki.path("int-server.pem");
    let root = pki.path("root.pem");
    let url = format!("{}/ocsp", ca.publication_url);

    // The holder revokes with `carimbo revoke --cert --key` (proof of possession).
    let leaf = issue_server(&ca, "holder.example.com");
    let run = |args: &[&str]| {
        let output = Command::new(carimbo_binary()).args(args).output().unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // A key that is not the certificate's is refused.
    let stranger = issue_server(&ca, "stranger.example.com");
    let (ok, _, stderr) = run(&[
        "revoke",
        "--ca",
        &ca.url,
        "--ca-bundle",
        s(&ca.bundle),
        "--cert",
        s(&leaf.cert()),
        "--key",
        s(&stranger.key),
    ]);
    assert!(!ok && stderr.contains("bad_proof"), "{stderr}");
    // A holder may not claim an administrator's reason.
    let (ok, _, stderr) = run(&[
        "revoke",
        "--ca",
        &ca.url,
        "--ca-bundle",
        s(&ca.bundle),
        "--cert",
        s(&leaf.cert()),
        "--key",
        s(&leaf.key),
        "--reason",
        "ca-compromise",
    ]);
    assert!(!ok && stderr.contains("forbidden"), "{stderr}");
    let (ok, stdout, stderr) = run(&[
        "revoke",
        "--ca",
        &ca.url,
        "--ca-bundle",
        s(&ca.bundle),
        "--cert",
        s(&leaf.cert()),
        "--key",
        s(&leaf.key),
        "--reason",
        "superseded",
    ]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.starts_with(&format!("revoked {}", leaf.serial)),
        "{stdout}"
    );
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&leaf.cert())], &url, &[]);
    assert!(
        text.contains(": revoked") && text.contains("Reason: superseded"),
        "{text}"
    );
    // A revoked certificate cannot be renewed.
    let (ok, _, stderr) = run(&[
        "renew",
        "--ca",
        &ca.url,
        "--ca-bundle",
        s(&ca.bundle),
        "--cert",
        s(&leaf.cert()),
        "--key",
        s(&leaf.key),
        "--out",
        s(&leaf.dir.path().join("renewed")),
    ]);
    assert!(!ok && stderr.contains("certificate_revoked"), "{stderr}");
    // Unknown serials and bad reasons are refused with their codes.
    let (status, reply) = admin_revoke(&ca, "01abcdef", "superseded");
    assert_eq!(
        (status, reply["code"].as_str()),
        (404, Some("not_found")),
        "{reply}"
    );
    let (status, reply) = admin_revoke(&ca, &stranger.serial, "certificate-hold");
    assert_eq!(
        (status, reply["code"].as_str()),
        (400, Some("malformed_request")),
        "{reply}"
    );
    let (status, reply) = admin_revoke(&ca, &stranger.serial, "keyCompromise");
    assert_eq!(
        (status, reply["code"].as_str()),
        (400, Some("malformed_request")),
        "{reply}"
    );
    let (status, reply) = ca.post(
        &format!("/v1/certificates/{}/revoke", stranger.serial),
        Some("cat_not-an-admin"),
        "application/json",
        b"{}".to_vec(),
    );
    assert_eq!(status, 401, "{reply}");

    // Bulk: three certificates for one name; a dry run lists them, a real run needs the
    // count the dry run reported.
    let bulk: Vec<Issued> = (0..3)
        .map(|_| issue_server(&ca, "bulk.example.com"))
        .collect();
    let admin_file = ca.dir.join("admin.token");
    let base = [
        "admin",
        "revoke",
        "--ca",
        &ca.url,
        "--ca-bundle",
        s(&ca.bundle),
        "--admin-token-file",
        s(&admin_file),
        "--where",
        "san=dns:bulk.example.com",
        "--where",
        "provisioner=lab",
        "--reason",
        "cessation-of-operation",
    ];
    let (ok, stdout, stderr) = run(&base);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("dry run: 3 certificates match"), "{stderr}");
    for issued in &bulk {
        assert!(stdout.contains(&issued.serial), "{stdout}");
    }
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&bulk[0].cert())], &url, &[]);
    assert!(text.contains(": good"), "the dry run revoked: {text}");
    let mut wrong = base.to_vec();
    wrong.extend(["--execute", "--expect", "2"]);
    let (ok, _, stderr) = run(&wrong);
    assert!(!ok && stderr.contains("conflict"), "{stderr}");
    let (ok, _, stderr) = run(&[
        "admin",
        "revoke",
        "--ca",
        &ca.url,
        "--ca-bundle",
        s(&ca.bundle),
        "--admin-token-file",
        s(&admin_file),
        "--where",
        "colour=blue",
    ]);
    assert!(!ok && stderr.contains("unknown key"), "{stderr}");
    let mut execute = base.to_vec();
    execute.extend(["--execute", "--expect", "3"]);
    let (ok, stdout, stderr) = run(&execute);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("revoked 3 of 3"), "{stdout}");
    for issued in &bulk {
        let text = openssl_ocsp(&root, &issuer, &["-cert", s(&issued.cert())], &url, &[]);
        assert!(
            text.contains(": revoked") && text.contains("cessationOfOperation"),
            "{text}"
        );
    }
    let (ok, _, stderr) = run(&base);
    assert!(
        ok && stderr.contains("dry run: 0 certificates match"),
        "{stderr}"
    );
}

#[test]
fn crl_numbers_increase_across_restarts_and_publishers() {
    let Some(ca) = start_ca() else { return };
    let first = ca
        .state
        .crls
        .latest("int-server")
        .expect("a CRL at start")
        .number;
    // A second process over the same database (a restart, or another replica).
    let loaded = LoadedConfig::load(&ca.dir.join("carimbo.toml")).unwrap();
    let other = ca.runtime.block_on(async {
        let store = SqliteStore::open(&ca.dir.join("carimbo.db")).await.unwrap();
        Arc::new(AppState::build(&loaded, Arc::new(store)).await.unwrap())
    });
    let issuer = Arc::clone(&ca.state.issuers[0]);
    let numbers = ca.runtime.block_on(async {
        let mut numbers = Vec::new();
        for _ in 0..3 {
            // Both publish at once: every number is used once, none goes backwards.
            let (a, b) = tokio::join!(
                ca.state.crls.publish(&ca.state, &issuer, None, None),
                other.crls.publish(&other, &issuer, None, None)
            );
            numbers.push(a.unwrap());
            numbers.push(b.unwrap());
        }
        numbers
    });
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        6,
        "a CRL number was published twice: {numbers:?}"
    );
    assert!(sorted[0] > first, "{numbers:?} after {first}");
    let latest = ca
        .runtime
        .block_on(other.store.latest_crl("int-server"))
        .unwrap()
        .unwrap();
    assert_eq!(latest.number, *sorted.last().unwrap());
    let (_, crl) = x509_parser::parse_x509_crl(&latest.der).unwrap();
    let number = crl.crl_number().unwrap();
    assert_eq!(number.to_u64_digits(), vec![latest.number]);
}

#[test]
fn with_the_database_gone_cached_answers_are_still_served() {
    let Some(ca) = start_ca() else { return };
    let pki = ceremony_pki().unwrap();
    let issuer = pki.path("int-server.pem");
    let root = pki.path("root.pem");
    let url = format!("{}/ocsp", ca.publication_url);
    let known = issue_server(&ca, "cached.example.com");
    let uncached = issue_server(&ca, "uncached.example.com");
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&known.cert())], &url, &[]);
    assert!(text.contains(": good"), "{text}");

    ca.runtime.block_on(ca.sqlite.close());
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&known.cert())], &url, &[]);
    assert!(
        text.contains("Response verify OK") && text.contains(": good"),
        "{text}"
    );
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&uncached.cert())], &url, &[]);
    assert!(text.to_lowercase().contains("trylater"), "{text}");
    let (status, body) = ca.get(&format!("{}/readyz", ca.url));
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "degraded");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("database is unreachable"),
        "{body}"
    );
    // Issuance fails cleanly, with a JSON body.
    let request = p256(&["subjectAltName=DNS:gone.example.com"]);
    // Issuance fails with a 503 that says the database is unavailable (not a 500).
    let (status, reply) = ca.issue("cbt_whatever", &request.csr, "server", None);
    assert_eq!(
        (status, reply["code"].as_str()),
        (503, Some("database_unavailable")),
        "{reply}"
    );
}

#[test]
fn malformed_ocsp_requests_get_an_ocsp_error_or_a_4xx() {
    let Some(ca) = start_ca() else { return };
    let pki = ceremony_pki().unwrap();
    let issuer = pki.path("int-server.pem");
    let leaf = issue_server(&ca, "malformed.example.com");
    let good = request_der(&issuer, &leaf.cert(), &["-no_nonce"]);
    let two = request_der(
        &issuer,
        &leaf.cert(),
        &["-no_nonce", "-cert", s(&leaf.cert())],
    );
    let url = format!("{}/ocsp", ca.publication_url);
    let mut wrong_version = good.clone();
    // Insert an explicit version v2 ([0] { INTEGER 1 }) at the start of the TBSRequest.
    {
        let tbs_at = 2 + usize::from(good[1] & 0x80 != 0) * usize::from(good[1] & 0x7f);
        let version = [0xa0, 0x03, 0x02, 0x01, 0x01];
        wrong_version.splice(tbs_at + 2..tbs_at + 2, version);
        wrong_version[tbs_at + 1] += 5;
        wrong_version[1] += 5;
    }
    let mut unknown_hash = good.clone();
    // SHA-1's OID 1.3.14.3.2.26 becomes 1.3.14.3.2.27.
    let at = unknown_hash
        .windows(5)
        .position(|w| w == [0x06, 0x05, 0x2b, 0x0e, 0x03])
        .unwrap();
    unknown_hash[at + 6] += 1;
    let mut huge_length = good.clone();
    huge_length.splice(1..2, [0x84, 0x7f, 0xff, 0xff, 0xff]);
    let cases: Vec<(&str, Option<&str>, Vec<u8>)> = vec![
        ("empty body", Some("application/ocsp-request"), Vec::new()),
        (
            "truncated",
            Some("application/ocsp-request"),
            good[..good.len() / 2].to_vec(),
        ),
        (
            "one byte short",
            Some("application/ocsp-request"),
            good[..good.len() - 1].to_vec(),
        ),
        (
            "trailing bytes",
            Some("application/ocsp-request"),
            [good.clone(), vec![0]].concat(),
        ),
        (
            "wrong version",
            Some("application/ocsp-request"),
            wrong_version,
        ),
        (
            "unknown hash algorithm",
            Some("application/ocsp-request"),
            unknown_hash,
        ),
        (
            "huge length field",
            Some("application/ocsp-request"),
            huge_length,
        ),
        (
            "indefinite length",
            Some("application/ocsp-request"),
            [&[0x30, 0x80][..], &good[2..], &[0, 0]].concat(),
        ),
        (
            "not DER at all",
            Some("application/ocsp-request"),
            b"hello, responder".to_vec(),
        ),
        (
            "an empty SEQUENCE",
            Some("application/ocsp-request"),
            vec![0x30, 0x00],
        ),
        ("a certificate instead", Some("application/ocsp-request"), {
            let pem = std::fs::read_to_string(&issuer).unwrap();
            carimbo_pki::pem_decode(&pem, "CERTIFICATE").unwrap()
        }),
        ("two certificates", Some("application/ocsp-request"), two),
        ("wrong content type", Some("application/json"), good.clone()),
        ("no content type", None, good.clone()),
        (
            "oversized",
            Some("application/ocsp-request"),
            vec![0x30; 70_000],
        ),
    ];
    let mut count = 0;
    for (what, content_type, body) in cases {
        let (status, reply) = post_raw(&ca, &url, content_type, body);
        check_error(what, status, &reply);
        count += 1;
    }
    let get_cases = [
        ("GET not base64", format!("{url}/%%%%")),
        (
            "GET base64 of garbage",
            format!("{url}/{}", base64(b"garbage")),
        ),
        ("GET truncated", format!("{url}/{}", base64(&good[..10]))),
        ("GET empty", format!("{url}/")),
        ("GET oversized", format!("{url}/{}", "A".repeat(20_000))),
    ];
    for (what, target) in get_cases {
        let (status, _, reply) = get_raw(&ca, &target, &[]);
        check_error(what, status, &reply);
        count += 1;
    }
    assert!(count >= 20);
    // The responder still answers.
    let (status, _, body) = get_raw(&ca, &format!("{url}/{}", base64(&good)), &[]);
    assert_eq!(status, 200);
    assert_eq!(
        &body[..5],
        &[0x30, 0x82, body[2], body[3], 0x0a],
        "not an OCSPResponse"
    );
}

/// A malformed request gets an OCSP error status (HTTP 200, `application/ocsp-response`,
/// status not successful) or an HTTP 4xx — never a 5xx.
fn check_error(what: &str, status: u16, body: &[u8]) {
    assert!(status < 500, "{what}: HTTP {status}");
    if status == 200 {
        // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED (not 0) } — 30 03 0a 01 XX
        assert_eq!(&body[..4], &[0x30, 0x03, 0x0a, 0x01], "{what}: {body:02x?}");
        assert_ne!(body[4], 0, "{what}: answered successfully");
    } else {
        assert!((400..500).contains(&status), "{what}: HTTP {status}");
    }
}

#[test]
fn a_responder_killed_after_the_revocation_commit_never_says_good() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (api, publication) = (free_port(), free_port());
    let (mut dev, token) = start_dev(&data, api, publication);
    let out = dir.path().join("cert");
    let output = Command::new(carimbo_binary())
        .args(["issue", "--ca", &format!("https://127.0.0.1:{api}")])
        .args([
            "--ca-bundle",
            s(&data.join("ca-bundle.pem")),
            "--token",
            &token,
        ])
        .args([
            "--profile",
            "server",
            "--san",
            "dns:app.localhost",
            "--out",
            s(&out),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let cert = out.join("cert.pem");
    let issuer = data.join("ceremony/int-server.pem");
    let root = data.join("ca-bundle.pem");
    let url = format!("http://127.0.0.1:{publication}/ocsp");
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&cert)], &url, &[]);
    assert!(text.contains(": good"), "{text}");
    dev.kill().unwrap();
    let _ = dev.wait();

    // Restarted with the failpoint: the revocation commits, then the process dies
    // before it signs the revoked answer.
    let (mut dev, _) = start_dev_with(&data, api, publication, Some("after-revoke-commit"));
    let admin = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let (ok, text) = {
        let output = Command::new(carimbo_binary())
            .args(["revoke", "--ca", &format!("https://127.0.0.1:{api}")])
            .args(["--ca-bundle", s(&root), "--cert", s(&cert)])
            .args([
                "--admin-token-file",
                s(&data.join("admin.token")),
                "--reason",
                "key-compromise",
            ])
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    assert!(
        !ok,
        "the revocation answered although the process should have died: {text}"
    );
    let status = dev.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(86),
        "the failpoint did not stop the process"
    );
    assert!(!admin.is_empty());

    // Restarted normally: the stored `good` is gone; the answer is revoked.
    let (mut dev, _) = start_dev_with(&data, api, publication, None);
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&cert)], &url, &[]);
    assert!(
        text.contains(": revoked") && text.contains("keyCompromise"),
        "{text}"
    );
    assert!(text.contains("Response verify OK"), "{text}");
    dev.kill().unwrap();
    let _ = dev.wait();
}

fn start_dev_with(
    data: &Path,
    api: u16,
    publication: u16,
    failpoint: Option<&str>,
) -> (std::process::Child, String) {
    match failpoint {
        Some(name) => crate::cli_dev::start_dev_env(
            data,
            api,
            publication,
            &[("CARIMBO_TEST_FAILPOINT", name)],
        ),
        None => start_dev(data, api, publication),
    }
}

/// Issues a server certificate for `dns:app.localhost` from a running `carimbo dev`.
fn dev_issue(data: &Path, api: u16, token: &str, out: &Path) {
    let output = Command::new(carimbo_binary())
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
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One plain-HTTP request with an empty body: (status, body).
pub(crate) fn plain_http(method: &str, url: &str) -> (u16, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = client.request(method, url).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn an_ocsp_role_process_follows_the_issuing_process_and_outlives_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (api, publication, ocsp_port) = (free_port(), free_port(), free_port());
    let (mut dev, token) = start_dev(&data, api, publication);
    let out = dir.path().join("cert");
    dev_issue(&data, api, &token, &out);
    let cert = out.join("cert.pem");
    let issuer = data.join("ceremony/int-server.pem");
    let root = data.join("ca-bundle.pem");

    // The OCSP role on the same database, its own publication port.
    let config = std::fs::read_to_string(data.join("carimbo.toml"))
        .unwrap()
        .replace(
            &format!("publication-listen = \"127.0.0.1:{publication}\""),
            &format!("publication-listen = \"127.0.0.1:{ocsp_port}\""),
        );
    assert!(config.contains(&ocsp_port.to_string()), "{config}");
    std::fs::write(data.join("ocsp.toml"), config).unwrap();
    let mut ocsp = Command::new(carimbo_binary())
        .args(["serve", "--role", "ocsp", "--config"])
        .arg(data.join("ocsp.toml"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{ocsp_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", ocsp_port)).is_err() {
        assert!(
            ocsp.try_wait().unwrap().is_none(),
            "the OCSP role exited at start"
        );
        assert!(Instant::now() < deadline, "the OCSP role never listened");
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("{base}/ocsp");
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&cert)], &url, &[]);
    assert!(
        text.contains(": good") && text.contains("Response verify OK"),
        "{text}"
    );
    // It has no API: the issuing endpoints are not there.
    let (status, _) = plain_http("POST", &format!("{base}/v1/certificates"));
    assert_eq!(status, 404);

    // A revocation through the issuing process reaches the OCSP process's answers
    // within the revocation-log poll (1 s in the dev config) plus a margin.
    let output = Command::new(carimbo_binary())
        .args(["revoke", "--ca", &format!("https://127.0.0.1:{api}")])
        .args(["--ca-bundle", s(&root), "--cert", s(&cert)])
        .args(["--admin-token-file", s(&data.join("admin.token"))])
        .args(["--reason", "superseded"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let returned = Instant::now();
    loop {
        let text = openssl_ocsp(&root, &issuer, &["-cert", s(&cert)], &url, &[]);
        if text.contains(": revoked") {
            assert!(text.contains("Reason: superseded"), "{text}");
            break;
        }
        assert!(text.contains(": good"), "{text}");
        assert!(
            returned.elapsed() < Duration::from_secs(3),
            "the OCSP process still says good 3 s after the revocation: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "revocation visible on the other process after {:?}",
        returned.elapsed()
    );
    // The CRL the issuing process publishes is served by the OCSP process too.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, der) = plain_http("GET", &format!("{base}/crl/int-server.crl"));
        if status == 200 {
            let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
            if crl.iter_revoked_certificates().count() == 1 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the OCSP process never served the new CRL"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The issuing process goes away; the OCSP process keeps answering and stays ready.
    dev.kill().unwrap();
    let _ = dev.wait();
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&cert)], &url, &[]);
    assert!(text.contains(": revoked"), "{text}");
    let (status, body) = plain_http("GET", &format!("{base}/readyz"));
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    ocsp.kill().unwrap();
    let _ = ocsp.wait();
}

/// A client presenting `identity_pem` (key + certificate + chain) to the test CA's API.
fn mtls_client(ca: &TestCa, identity_pem: &[u8]) -> reqwest::Client {
    let roots = reqwest::Certificate::from_pem_bundle(&std::fs::read(&ca.bundle).unwrap()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only(roots)
        .identity(reqwest::Identity::from_pem(identity_pem).unwrap())
        .build()
        .unwrap()
}

#[test]
fn a_client_certificate_revokes_itself_over_mtls_and_nothing_else() {
    let Some(ca) = start_ca() else { return };
    let mut workloads = Vec::new();
    for name in ["payments", "ledger"] {
        let uri = format!("spiffe://lab.example.com/ns/shop/sa/{name}");
        let request = p256(&[&format!("subjectAltName=URI:{uri}")]);
        let token = ca.token("lab", "workload", &[&format!("uri:{uri}")], "1h", "5m");
        let (status, reply) = ca.issue(&token, &request.csr, "workload", None);
        assert_eq!(status, 201, "{reply}");
        let mut identity = std::fs::read(request.key()).unwrap();
        identity.extend_from_slice(reply["certificate"].as_str().unwrap().as_bytes());
        for pem in reply["chain"].as_array().unwrap() {
            identity.extend_from_slice(pem.as_str().unwrap().as_bytes());
        }
        workloads.push((reply["serial"].as_str().unwrap().to_owned(), identity));
    }
    let revoke = |client: &reqwest::Client, serial: &str, body: &str| {
        ca.runtime.block_on(async {
            let response = client
                .post(format!("{}/v1/certificates/{serial}/revoke", ca.url))
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
                .await?;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            Ok::<_, reqwest::Error>((status, body))
        })
    };
    let (payments, ledger) = (&workloads[0], &workloads[1]);
    let client = mtls_client(&ca, &payments.1);

    // Its certificate is not a credential for another one.
    let (status, body) = revoke(&client, &ledger.0, "{}").unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    // Holders may not claim a CA compromise.
    let (status, body) = revoke(&client, &payments.0, r#"{"reason":"ca-compromise"}"#).unwrap();
    assert_eq!(status, 403, "{body}");
    // Its own serial, with a reason: revoked by its holder, then idempotent.
    let (status, body) = revoke(&client, &payments.0, r#"{"reason":"superseded"}"#).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "revoked", "{body}");
    assert_eq!(body["changed"], true, "{body}");
    let (status, body) = revoke(&client, &payments.0, r#"{"reason":"superseded"}"#).unwrap();
    assert_eq!((status, &body["changed"]), (200, &json!(false)), "{body}");
    let record = ca
        .runtime
        .block_on(ca.sqlite.certificate(&payments.0))
        .unwrap()
        .unwrap();
    assert_eq!(record.status, carimbo_store::CertificateStatus::Revoked);
    // The other workload is untouched.
    let record = ca
        .runtime
        .block_on(ca.sqlite.certificate(&ledger.0))
        .unwrap()
        .unwrap();
    assert_eq!(record.status, carimbo_store::CertificateStatus::Issued);

    // A server certificate (serverAuth only) is no TLS client credential: the handshake
    // fails, nothing is revoked.
    let server = issue_server(&ca, "mtls-server.example.com");
    let mut identity = std::fs::read(&server.key).unwrap();
    identity.extend_from_slice(&std::fs::read(server.cert()).unwrap());
    identity.extend_from_slice(&std::fs::read(server.dir.path().join("chain.pem")).unwrap());
    let client = mtls_client(&ca, &identity);
    assert!(revoke(&client, &server.serial, "{}").is_err());
    let record = ca
        .runtime
        .block_on(ca.sqlite.certificate(&server.serial))
        .unwrap()
        .unwrap();
    assert_eq!(record.status, carimbo_store::CertificateStatus::Issued);
}

#[test]
fn nonces_are_echoed_only_by_issuers_that_enable_them() {
    let Some(ca) = start_ca() else { return };
    let pki = ceremony_pki().unwrap();
    let root = pki.path("root.pem");
    let url = format!("{}/ocsp", ca.publication_url);
    let with_nonce = |issuer: &Path, cert: &Path| {
        let (_, text) = openssl(&[
            "ocsp",
            "-issuer",
            s(issuer),
            "-CAfile",
            s(&root),
            "-url",
            &url,
            "-timeout",
            "5",
            "-cert",
            s(cert),
        ]);
        text
    };
    // int-workload has ocsp-nonce = true: the nonce comes back, signed live.
    let uri = "spiffe://lab.example.com/ns/shop/sa/nonce";
    let request = p256(&[&format!("subjectAltName=URI:{uri}")]);
    let token = ca.token("lab", "workload", &[&format!("uri:{uri}")], "1h", "5m");
    let (status, reply) = ca.issue(&token, &request.csr, "workload", None);
    assert_eq!(status, 201, "{reply}");
    let (workload, _) = write_issued(request.dir.path(), &reply);
    let issuer = pki.path("int-workload.pem");
    for _ in 0..2 {
        let text = with_nonce(&issuer, &workload);
        assert!(
            text.contains("Response verify OK") && text.contains(": good"),
            "{text}"
        );
        assert!(!text.to_lowercase().contains("nonce"), "{text}");
    }
    // int-server does not: the pre-signed answer, without the nonce (OpenSSL warns).
    let leaf = issue_server(&ca, "no-nonce.example.com");
    let text = with_nonce(&pki.path("int-server.pem"), &leaf.cert());
    assert!(
        text.contains("Response verify OK") && text.contains(": good"),
        "{text}"
    );
    assert!(text.contains("WARNING: no nonce in response"), "{text}");
}

#[test]
fn a_sharded_issuer_lists_each_revocation_in_the_shard_its_certificate_names() {
    let Some(ca) = start_ca() else { return };
    let pki = ceremony_pki().unwrap();
    let issuer = pki.path("int-workload.pem");
    let root = pki.path("root.pem");
    // int-workload has crl-shards = 4: each certificate names one shard's CRL.
    let mut issued = Vec::new();
    for index in 0..8 {
        let uri = format!("spiffe://lab.example.com/ns/shards/sa/w{index}");
        let request = p256(&[&format!("subjectAltName=URI:{uri}")]);
        let token = ca.token("lab", "workload", &[&format!("uri:{uri}")], "1h", "5m");
        let (status, reply) = ca.issue(&token, &request.csr, "workload", None);
        assert_eq!(status, 201, "{reply}");
        let (certificate, _) = write_issued(request.dir.path(), &reply);
        let der = carimbo_pki::pem_decode(
            &std::fs::read_to_string(&certificate).unwrap(),
            "CERTIFICATE",
        )
        .unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let text = format!("{:?}", parsed.extensions());
        let prefix = format!("{}/crl/int-workload/", ca.publication_url);
        let start = text
            .find(&prefix)
            .unwrap_or_else(|| panic!("no shard CRL DP: {text}"));
        let shard: u8 = text[start + prefix.len()..]
            .split(".crl")
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(shard < 4, "{shard}");
        issued.push((
            reply["serial"].as_str().unwrap().to_owned(),
            certificate,
            shard,
            request,
        ));
    }
    let (serial, certificate, shard, _) = &issued[0];
    let (status, reply) = admin_revoke(&ca, serial, "superseded");
    assert_eq!(status, 200, "{reply}");

    // Its shard's CRL lists it (within the debounce), and OpenSSL rejects the
    // certificate with that CRL; the other shards do not list it.
    let url = format!("{}/crl/int-workload/{shard}.crl", ca.publication_url);
    let deadline = Instant::now() + Duration::from_secs(15);
    let crl_der = loop {
        let (status, _, der) = get_raw(&ca, &url, &[]);
        if status == 200 {
            let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
            if crl
                .iter_revoked_certificates()
                .any(|entry| hex::encode(entry.raw_serial()) == *serial)
            {
                break der;
            }
        }
        assert!(
            Instant::now() < deadline,
            "shard {shard} never listed {serial}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for other in (0..4u8).filter(|other| other != shard) {
        let (status, _, der) = get_raw(
            &ca,
            &format!("{}/crl/int-workload/{other}.crl", ca.publication_url),
            &[],
        );
        assert_eq!(status, 200);
        let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
        assert_eq!(crl.iter_revoked_certificates().count(), 0, "shard {other}");
    }
    let work = tempfile::tempdir().unwrap();
    let crl = work.path().join("shard.der");
    std::fs::write(&crl, &crl_der).unwrap();
    let crl_pem = work.path().join("shard.pem");
    let (ok, text) = openssl(&["crl", "-inform", "DER", "-in", s(&crl), "-out", s(&crl_pem)]);
    assert!(ok, "{text}");
    let (ok, text) = openssl(&["crl", "-in", s(&crl_pem), "-noout", "-text"]);
    assert!(
        ok && text.contains(&url),
        "the IDP is not the shard's URL: {text}"
    );
    let (ok, text) = openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        s(&root),
        "-untrusted",
        s(&issuer),
        "-CRLfile",
        s(&crl_pem),
        s(certificate),
    ]);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    // A certificate of the same shard that is not revoked passes with the same CRL.
    if let Some((_, same_shard, _, _)) = issued[1..].iter().find(|(_, _, k, _)| k == shard) {
        let (ok, text) = openssl(&[
            "verify",
            "-crl_check",
            "-CAfile",
            s(&root),
            "-untrusted",
            s(&issuer),
            "-CRLfile",
            s(&crl_pem),
            s(same_shard),
        ]);
        assert!(ok, "{text}");
    }
    // No unsharded CRL and no shard beyond the count.
    let (status, _, body) = get_raw(
        &ca,
        &format!("{}/crl/int-workload.crl", ca.publication_url),
        &[],
    );
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("4 shards"));
    let (status, _, _) = get_raw(
        &ca,
        &format!("{}/crl/int-workload/4.crl", ca.publication_url),
        &[],
    );
    assert_eq!(status, 404);
}
