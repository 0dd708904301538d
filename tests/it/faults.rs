//! Faults from outside the service: a clock turned back must not date a CRL before the
//! last one published.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli_dev::{dev_data, free_port};
use crate::replicas::{
    admin_revoke_one, carimbo, issue_through, issue_with_token, mint_token, serve_config,
    start_replica_with,
};
use crate::revocation::plain_http;
use crate::server::s;

/// libfaketime (Debian package `faketime`), which shifts a process's clock.
fn faketime() -> Option<PathBuf> {
    let found = ["x86_64-linux-gnu", "aarch64-linux-gnu", ""]
        .iter()
        .map(|arch| PathBuf::from(format!("/usr/lib/{arch}/faketime/libfaketime.so.1")))
        .find(|path| path.exists());
    if found.is_none() {
        carimbo_tests::skip(
            "libfaketime",
            "not installed (Debian: apt-get install faketime)",
        );
    }
    found
}

/// Number, thisUpdate and whether `serial` is listed, of the current int-server CRL.
fn current_crl(publication: &str, serial: &str) -> Option<(u64, time::OffsetDateTime, bool)> {
    let (status, der) = plain_http("GET", &format!("{publication}/crl/int-server.crl"));
    if status != 200 {
        return None;
    }
    let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
    let number = crl.crl_number().unwrap().to_u64_digits()[0];
    let listed = crl
        .iter_revoked_certificates()
        .any(|entry| hex::encode(entry.raw_serial()) == serial);
    Some((number, crl.last_update().to_datetime(), listed))
}

#[test]
fn a_clock_turned_back_never_dates_a_crl_or_ocsp_answer_before_the_last_one() {
    let Some(library) = faketime() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "clock", api, publication, false);
    let first_log = dir.path().join("first.log");
    let mut replica = start_replica_with(
        &config,
        api,
        publication,
        &[("RUST_LOG", "info")],
        Some(&first_log),
    );
    // The CRL job's lease: still held by the killed `carimbo dev` until it lapses (wall
    // clock, 15 s); this replica must hold it — and release it at shutdown — so that a
    // replica whose clock is behind can take it (a lapsed lease of a dead replica, seen
    // by a clock two hours behind, stays held for two hours: clocks must be in sync).
    let deadline = Instant::now() + Duration::from_secs(40);
    while !std::fs::read_to_string(&first_log)
        .unwrap_or_default()
        .contains("job lease taken job=\"crl\"")
    {
        assert!(Instant::now() < deadline, "the CRL lease was never taken");
        std::thread::sleep(Duration::from_millis(200));
    }
    let cert = dir.path().join("cert");
    issue_through(&replica, &data, "dns:clock.localhost", &cert);
    let der = carimbo_pki::pem_decode(
        &std::fs::read_to_string(cert.join("cert.pem")).unwrap(),
        "CERTIFICATE",
    )
    .unwrap();
    let serial = hex::encode(
        x509_parser::parse_x509_certificate(&der)
            .unwrap()
            .1
            .raw_serial(),
    );
    let (before, last_this_update, _) = current_crl(&replica.publication, &serial).unwrap();
    let ocsp = |publication: &str| {
        crate::revocation::openssl_ocsp(
            &data.join("ceremony/root.pem"),
            &data.join("ceremony/int-server.pem"),
            &["-cert", s(&cert.join("cert.pem"))],
            &format!("{publication}/ocsp"),
            &[],
        )
    };
    let good = ocsp(&replica.publication);
    assert!(
        good.contains(": good"),
        "{good}{}",
        std::fs::read_to_string(&first_log).unwrap_or_default()
    );
    let good_this_update = ocsp_this_update(&good);
    replica.terminate();

    // The same service, its clock two hours behind, revokes: the next CRL is dated no
    // earlier than the last one.
    let log = dir.path().join("behind.log");
    let mut behind = start_replica_with(
        &config,
        api,
        publication,
        &[
            ("LD_PRELOAD", s(&library)),
            ("FAKETIME", "-2h"),
            ("RUST_LOG", "info"),
        ],
        Some(&log),
    );
    admin_revoke_one(&behind, &data, "san=dns:clock.localhost", "unspecified");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (number, this_update) = loop {
        if let Some((number, this_update, true)) = current_crl(&behind.publication, &serial) {
            break (number, this_update);
        }
        assert!(
            Instant::now() < deadline,
            "the revocation never reached the CRL: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // Its OCSP answer says revoked, dated no earlier than the good answer it replaces.
    let revoked = ocsp(&behind.publication);
    behind.terminate();
    assert!(revoked.contains(": revoked"), "{revoked}");
    let revoked_this_update = ocsp_this_update(&revoked);
    assert!(
        revoked_this_update >= good_this_update,
        "revoked answer dated {revoked_this_update}, before the good one ({good_this_update})"
    );
    assert!(number > before, "{number} after {before}");
    assert!(
        this_update >= last_this_update,
        "CRL {number} dated {this_update}, before CRL {before} ({last_this_update})"
    );
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("the clock is behind the last CRL"),
        "{log_text}"
    );
    assert!(
        log_text.contains("OCSP answer dated at the certificate's last thisUpdate"),
        "{log_text}"
    );
}

/// The `This Update` of an `openssl ocsp` report, in unix seconds (read by `date`).
fn ocsp_this_update(report: &str) -> i64 {
    let line = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("This Update: "))
        .unwrap_or_else(|| panic!("no This Update in {report}"));
    let output = Command::new("date")
        .args(["-u", "-d", line, "+%s"])
        .output()
        .unwrap();
    assert!(output.status.success(), "date cannot read {line:?}");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap()
}

/// The serial (hex) of the certificate in `dir/cert.pem`.
fn serial_of(dir: &std::path::Path) -> String {
    let der = carimbo_pki::pem_decode(
        &std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
        "CERTIFICATE",
    )
    .unwrap();
    hex::encode(
        x509_parser::parse_x509_certificate(&der)
            .unwrap()
            .1
            .raw_serial(),
    )
}

#[test]
fn a_process_killed_while_publishing_a_crl_restarts_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "killed", api, publication, false);
    let log = dir.path().join("killed.log");
    // The failpoint stops the process (SIGSTOP) after it signed a CRL with entries and
    // before it stores it; the test then kills it (SIGKILL) there.
    let mut replica = start_replica_with(
        &config,
        api,
        publication,
        &[
            ("CARIMBO_TEST_FAILPOINT", "crl-stop-before-publish"),
            ("RUST_LOG", "info"),
        ],
        Some(&log),
    );
    let deadline = Instant::now() + Duration::from_secs(40);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("job lease taken job=\"crl\"")
    {
        assert!(Instant::now() < deadline, "the CRL lease was never taken");
        std::thread::sleep(Duration::from_millis(200));
    }
    let cert = dir.path().join("cert");
    issue_through(&replica, &data, "dns:killed.localhost", &cert);
    let serial = serial_of(&cert);
    let (before, _, listed) = current_crl(&replica.publication, &serial).unwrap();
    assert!(!listed);
    admin_revoke_one(
        &replica,
        &data,
        "san=dns:killed.localhost",
        "key-compromise",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !crate::leases::is_stopped(&replica) {
        assert!(
            Instant::now() < deadline,
            "the failpoint never stopped the process: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    replica.child.kill().unwrap();
    let _ = replica.child.wait();

    // Restarted: the revocation is there, the CRL that was signed but never stored is
    // not, and the next CRL takes the next number and lists the serial.
    let mut replica = start_replica_with(&config, api, publication, &[], None);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (number, _) = loop {
        if let Some((number, this_update, true)) = current_crl(&replica.publication, &serial) {
            break (number, this_update);
        }
        assert!(Instant::now() < deadline, "the CRL never listed {serial}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(number, before + 1, "CRL numbers go on without a gap");
    let text = crate::revocation::openssl_ocsp(
        &data.join("ceremony/root.pem"),
        &data.join("ceremony/int-server.pem"),
        &["-cert", s(&cert.join("cert.pem"))],
        &format!("{}/ocsp", replica.publication),
        &[],
    );
    assert!(
        text.contains(": revoked") && text.contains("keyCompromise"),
        "{text}"
    );
    replica.terminate();
    let (ok, stdout, stderr) = carimbo(&["audit", "verify", "--config", s(&config)]);
    assert!(ok && stdout.contains("intact"), "{stdout}{stderr}");
}

/// A tmpfs mounted for one test (root only), unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `megabytes` at `path`; `None` (a skip notice, or a failure
    /// under `CARIMBO_REQUIRE_BACKENDS=1`) when that is not permitted.
    fn mount(path: PathBuf, megabytes: u32) -> Option<Self> {
        std::fs::create_dir_all(&path).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m,mode=0755")])
            .arg("tmpfs")
            .arg(&path)
            .output();
        match output {
            Ok(output) if output.status.success() => Some(Self { path }),
            Ok(output) => {
                carimbo_tests::skip(
                    "a small tmpfs (mount as root)",
                    String::from_utf8_lossy(&output.stderr).trim(),
                );
                None
            }
            Err(error) => {
                carimbo_tests::skip("a small tmpfs (mount as root)", &error.to_string());
                None
            }
        }
    }

    /// Fills the disk with a file `filler` until the writes fail; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let bytes = vec![0u8; chunk];
            while file.write_all(&bytes).is_ok() {}
        }
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Rows of the SQLite database at `db` answering `query` (one text column), read with
/// Python's sqlite3 module.
fn sqlite_rows(db: &std::path::Path, query: &str) -> Vec<String> {
    let python = std::env::var("CARIMBO_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(python)
        .args([
            "-c",
            "import sqlite3, sys\nfor row in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]): print(row[0])",
        ])
        .arg(db)
        .arg(query)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_full_disk_fails_the_request_cleanly_and_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(dir.path().join("disk"), 48) else {
        return;
    };
    let data = dev_data(&disk.path);
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "full", api, publication, false);
    let log = dir.path().join("full.log");
    let mut replica = start_replica_with(&config, api, publication, &[], Some(&log));
    let first = dir.path().join("first");
    issue_through(&replica, &data, "dns:first.localhost", &first);
    let bundle = data.join("ca-bundle.pem");
    let mint = |san: &str| mint_token(&replica.api, &bundle, &data.join("admin.token"), "dev", san);
    let issue = |token: &str, san: &str, out: &std::path::Path| {
        issue_with_token(&replica.api, &bundle, token, san, out)
    };
    let token = mint("dns:second.localhost");
    let db = data.join("carimbo.db");
    let count = |query: &str| sqlite_rows(&db, query)[0].parse::<u64>().unwrap();
    let certificates_before = count("SELECT count(*) FROM certificates");
    let events_before = count("SELECT count(*) FROM audit_events");

    // The disk fills up: the issuance is refused with a clean 503, nothing written.
    let filler = disk.fill();
    let second = dir.path().join("second");
    let (ok, stdout, stderr) = issue(&token, "dns:second.localhost", &second);
    assert!(!ok, "issued on a full disk: {stdout}");
    assert!(
        stderr.contains("503") && stderr.contains("storage_full"),
        "{stderr}"
    );
    assert!(!second.join("cert.pem").exists());
    // A revocation too.
    let (ok, stdout, stderr) = carimbo(&[
        "revoke",
        "--ca",
        &replica.api,
        "--ca-bundle",
        s(&bundle),
        "--cert",
        s(&first.join("cert.pem")),
        "--key",
        s(&first.join("key.pem")),
        "--reason",
        "superseded",
    ]);
    assert!(!ok, "revoked on a full disk: {stdout}");
    assert!(
        stderr.contains("503") && stderr.contains("storage_full"),
        "{stderr}{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // Space comes back: the same token works (it was not spent by the failed request),
    // and the database holds exactly what was acknowledged.
    std::fs::remove_file(&filler).unwrap();
    let (ok, stdout, stderr) = issue(&token, "dns:second.localhost", &second);
    assert!(ok, "{stdout}{stderr}");
    replica.terminate();
    assert_eq!(sqlite_rows(&db, "PRAGMA integrity_check"), ["ok"]);
    assert_eq!(
        count("SELECT count(*) FROM certificates"),
        certificates_before + 1
    );
    assert_eq!(
        count("SELECT count(*) FROM certificates WHERE status <> 'issued'"),
        0,
        "a pending, failed or revoked row was left"
    );
    assert!(count("SELECT count(*) FROM audit_events") > events_before);
    let (ok, stdout, stderr) = carimbo(&["audit", "verify", "--config", s(&config)]);
    assert!(ok && stdout.contains("intact"), "{stdout}{stderr}");
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("database disk full"), "{log_text}");
    drop(disk);
}
