//! The audit trail against someone with raw database access: `carimbo audit verify`
//! checks every chain against the heads the service signed, and pinpoints an edited
//! event, a deleted event, a chain recomputed after an edit and a cut tail; `carimbo
//! audit export` writes the report of a period with the events and heads behind it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::cli_dev::{dev_data, free_port};
use crate::replicas::{carimbo, issue_through, serve_config, start_replica_with};
use crate::server::s;

/// Runs a Python script on the SQLite database `db` (triggers dropped first, as someone
/// owning the file could).
fn tamper(db: &Path, script: &str) {
    let program = format!(
        "import sqlite3, sys, hashlib, struct\n\
         db = sqlite3.connect(sys.argv[1])\n\
         db.execute('DROP TRIGGER audit_events_no_update')\n\
         db.execute('DROP TRIGGER audit_events_no_delete')\n\
         db.execute('DROP TRIGGER audit_heads_no_update')\n\
         def event_hash(chain, seq, prev, at, text):\n\
         \x20   c = chain.encode(); e = text.encode()\n\
         \x20   m = b'carimbo-audit-v1\\n' + struct.pack('>Q', len(c)) + c + struct.pack('>Q', seq) \
         + prev.encode() + struct.pack('>q', at) + struct.pack('>Q', len(e)) + e\n\
         \x20   return hashlib.sha256(m).hexdigest()\n\
         {script}\n\
         db.commit()\n"
    );
    let output = Command::new(std::env::var("CARIMBO_PYTHON").unwrap_or("python3".into()))
        .args(["-c", &program, s(db)])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A copy of the whole data directory (database, keys, config), for one tampering.
fn copy_of(data: &Path, name: &str) -> PathBuf {
    let copy = data.with_file_name(name);
    let status = Command::new("cp")
        .args(["-a", s(data), s(&copy)])
        .status()
        .unwrap();
    assert!(status.success());
    copy
}

fn verify(config: &Path) -> (bool, String) {
    let (ok, stdout, stderr) = carimbo(&["audit", "verify", "--config", s(config)]);
    (ok, format!("{stdout}{stderr}"))
}

#[test]
fn audit_verify_pinpoints_edits_deletions_recomputed_chains_and_cut_tails() {
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "audited", api, publication, false);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[audit]\nhead-interval = \"1s\"\n\n\
         [[admins]]\nname = \"ana\"\nrole = \"auditor\"\ntoken-file = \"auditor.token\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let auditor = data.join("auditor.token");
    carimbo_tests::write_private(&auditor, b"auditor-token-0123456789abcdef");

    let log = dir.path().join("serve.log");
    let mut replica = start_replica_with(&config, api, publication, &[], Some(&log));
    // Whole seconds: the database keeps times to the second.
    let start =
        time::OffsetDateTime::from_unix_timestamp(time::OffsetDateTime::now_utc().unix_timestamp())
            .unwrap();
    for round in 0..3 {
        for i in 0..2 {
            issue_through(
                &replica,
                &data,
                &format!("dns:r{round}-{i}.audit.localhost"),
                &dir.path().join(format!("cert-{round}-{i}")),
            );
        }
        // A head is signed within the interval.
        std::thread::sleep(Duration::from_millis(1500));
    }
    search_and_revoke(&replica, &data, &auditor);
    replica.terminate();

    // Intact: every head verifies, and the head signed at shutdown leaves no tail.
    let (ok, out) = verify(&config);
    assert!(ok, "{out}");
    let out_heads = out.clone();
    assert!(out.contains("audit chain main: intact"), "{out}");
    assert!(!out.contains("after the last signed head"), "{out}");
    let heads: usize = out
        .split(" signed heads")
        .next()
        .and_then(|t| t.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(heads >= 3, "{out}");

    let db = |copy: &Path| copy.join("carimbo.db");
    let config_in = |copy: &Path| copy.join("audited.toml");
    let scalar = |copy: &Path, sql: &str| -> i64 {
        let output = Command::new(std::env::var("CARIMBO_PYTHON").unwrap_or("python3".into()))
            .args([
                "-c",
                "import sqlite3, sys\nprint(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])",
                s(&db(copy)),
                sql,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap()
    };
    let last = scalar(
        &data,
        "SELECT MAX(sequence) FROM audit_events WHERE chain = 'main'",
    );
    let first_head = scalar(
        &data,
        "SELECT MIN(sequence) FROM audit_heads WHERE chain = 'main'",
    );
    assert!(last > 2, "{last}");

    // 1. One event edited in place.
    let edited = copy_of(&data, "edited");
    tamper(
        &db(&edited),
        "db.execute(\"UPDATE audit_events SET event = replace(event, 'audit.localhost', 'audit.example') \
         WHERE chain = 'main' AND sequence = (SELECT MIN(sequence) FROM audit_events WHERE event LIKE '%r1-0.audit%')\")\n\
         assert db.total_changes == 1",
    );
    let changed = scalar(
        &edited,
        "SELECT MIN(sequence) FROM audit_events WHERE event LIKE '%r1-0.audit.example%'",
    );
    let (ok, out) = verify(&config_in(&edited));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("BROKEN: event {changed} was changed")),
        "{out}"
    );

    // 2. One event deleted.
    let deleted = copy_of(&data, "deleted");
    tamper(
        &db(&deleted),
        "db.execute(\"DELETE FROM audit_events WHERE chain = 'main' AND sequence = 2\")",
    );
    let (ok, out) = verify(&config_in(&deleted));
    assert!(!ok && out.contains("BROKEN: event 2 is missing"), "{out}");

    // 3. An event edited and every hash after it recomputed: the chain holds together,
    //    the first head signed after the edit does not.
    let recomputed = copy_of(&data, "recomputed");
    let target = scalar(
        &data,
        "SELECT MIN(sequence) FROM audit_events WHERE event LIKE '%audit.localhost%'",
    );
    tamper(
        &db(&recomputed),
        &format!(
            "rows = db.execute(\"SELECT sequence, event, recorded_at FROM audit_events \
             WHERE chain = 'main' ORDER BY sequence\").fetchall()\n\
             prev = '0' * 64\n\
             for seq, text, at in rows:\n\
             \x20   if seq == {target}:\n\
             \x20       text = text.replace('audit.localhost', 'audit.example')\n\
             \x20   h = event_hash('main', seq, prev, at, text)\n\
             \x20   db.execute('UPDATE audit_events SET event = ?, previous_hash = ?, hash = ? \
             WHERE chain = ? AND sequence = ?', (text, prev, h, 'main', seq))\n\
             \x20   prev = h"
        ),
    );
    let before = scalar(
        &data,
        &format!("SELECT COALESCE(MAX(sequence), 0) FROM audit_heads WHERE sequence < {target}"),
    );
    let after = scalar(
        &data,
        &format!("SELECT MIN(sequence) FROM audit_heads WHERE sequence >= {target}"),
    );
    let (ok, out) = verify(&config_in(&recomputed));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "BROKEN: events {} to {after} were rewritten and the chain recomputed",
            before + 1
        )),
        "{out}"
    );

    // 4. The tail cut after the last head was signed.
    let cut = copy_of(&data, "cut");
    tamper(
        &db(&cut),
        &format!(
            "db.execute(\"DELETE FROM audit_events WHERE chain = 'main' AND sequence > {}\")",
            last - 2
        ),
    );
    let cut_head = scalar(
        &data,
        &format!(
            "SELECT MIN(sequence) FROM audit_heads WHERE sequence > {}",
            last - 2
        ),
    );
    let (ok, out) = verify(&config_in(&cut));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "BROKEN: the chain was cut: it ends at event {} but a head was signed at event {cut_head}",
            last - 2
        )),
        "{out}"
    );

    // 5. A signed head altered: its signature no longer verifies.
    let forged = copy_of(&data, "forged");
    tamper(
        &db(&forged),
        &format!(
            "db.execute(\"UPDATE audit_heads SET signed_at = signed_at + 1 WHERE chain = 'main' AND sequence = {first_head}\")"
        ),
    );
    let (ok, out) = verify(&config_in(&forged));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "BROKEN: the signed head at sequence {first_head} is not valid: its signature does not verify"
        )),
        "{out}"
    );

    // Export: the certificate report and, in JSON lines, the events and heads behind it.
    let since = start
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let jsonl = dir.path().join("export.jsonl");
    let (ok, _, stderr) = carimbo(&[
        "audit",
        "export",
        "--config",
        s(&config),
        "--since",
        &since,
        "--output",
        s(&jsonl),
    ]);
    assert!(ok, "{stderr}");
    let records: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let of = |kind: &str| records.iter().filter(|r| r["record"] == kind).count();
    let from = start.unix_timestamp();
    let certificates = scalar(
        &data,
        &format!("SELECT COUNT(*) FROM certificates WHERE issued_at >= {from}"),
    );
    assert!(certificates >= 6, "{certificates}");
    assert_eq!(of("certificate") as i64, certificates, "{records:?}");
    assert_eq!(
        of("event") as i64,
        scalar(
            &data,
            &format!("SELECT COUNT(*) FROM audit_events WHERE recorded_at >= {from}")
        )
    );
    assert_eq!(
        of("head") as i64,
        scalar(
            &data,
            &format!("SELECT COUNT(*) FROM audit_heads WHERE signed_at >= {from}")
        ),
        "{out_heads}"
    );
    assert!(records.iter().any(|r| r["record"] == "certificate"
        && r["subject_alt_names"][0] == "dns:r2-1.audit.localhost"
        && r["status"] == "issued"));
    let (ok, csv, stderr) = carimbo(&[
        "audit",
        "export",
        "--config",
        s(&config),
        "--since",
        &since,
        "--format",
        "csv",
    ]);
    assert!(ok, "{stderr}");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("serial,issuer,profile,"), "{csv}");
    assert_eq!(lines.len() as i64, certificates + 1, "{csv}");
    // An empty period exports nothing; a reversed one is refused.
    let (ok, _, stderr) = carimbo(&[
        "audit",
        "export",
        "--config",
        s(&config),
        "--since",
        "2030-01-01T00:00:00Z",
        "--until",
        "2029-01-01T00:00:00Z",
    ]);
    assert!(
        !ok && stderr.contains("--until must be after --since"),
        "{stderr}"
    );
}

/// `carimbo admin certs` with the admin and the auditor tokens, across pages; a bulk
/// revocation (admin only) and the revoked certificate found only on request.
fn search_and_revoke(replica: &crate::replicas::Replica, data: &Path, auditor: &Path) {
    let bundle = data.join("ca-bundle.pem");
    let admin = data.join("admin.token");
    let certs = |token: &Path, extra: &[&str]| {
        carimbo(
            &[
                &[
                    "admin",
                    "certs",
                    "--ca",
                    replica.api.as_str(),
                    "--ca-bundle",
                    s(&bundle),
                    "--admin-token-file",
                    s(token),
                    "--json",
                ][..],
                extra,
            ]
            .concat(),
        )
    };
    let lines = |stdout: &str| -> Vec<Value> {
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    let (ok, stdout, stderr) = certs(&admin, &["--where", "san=dns:r1-0.audit.localhost"]);
    assert!(ok, "{stderr}");
    let found = lines(&stdout);
    assert_eq!(found.len(), 1, "{stdout}");
    assert_eq!(found[0]["subject_alt_names"][0], "dns:r1-0.audit.localhost");
    assert_eq!(found[0]["status"], "issued");
    let serial = found[0]["serial"].as_str().unwrap().to_owned();
    // The auditor reads too, page by page (two a page).
    let (ok, stdout, stderr) = certs(
        auditor,
        &[
            "--where",
            "issuer=int-server",
            "--page-size",
            "2",
            "--where",
            "expires-before=2100-01-01T00:00:00Z",
        ],
    );
    assert!(ok, "{stderr}");
    let all = lines(&stdout);
    // Issue order is by the second, then by serial.
    let mut names: Vec<&str> = all
        .iter()
        .filter_map(|r| r["subject_alt_names"][0].as_str())
        .filter(|n| n.ends_with(".audit.localhost"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "dns:r0-0.audit.localhost",
            "dns:r0-1.audit.localhost",
            "dns:r1-0.audit.localhost",
            "dns:r1-1.audit.localhost",
            "dns:r2-0.audit.localhost",
            "dns:r2-1.audit.localhost"
        ]
    );
    let (ok, stdout, _) = certs(
        auditor,
        &[
            "--where",
            &format!("serial={}", serial.to_uppercase()),
            "--max",
            "1",
        ],
    );
    assert!(ok && lines(&stdout).len() == 1, "{stdout}");
    // Bad conditions and credentials are named.
    let (ok, _, stderr) = certs(&admin, &["--where", "expires-before=tomorrow"]);
    assert!(!ok && stderr.contains("expires_before"), "{stderr}");
    let (ok, _, stderr) = certs(&admin, &["--where", "colour=blue"]);
    assert!(!ok && stderr.contains("unknown key"), "{stderr}");
    let wrong = data.join("wrong.token");
    carimbo_tests::write_private(&wrong, b"not-a-token");
    let (ok, _, stderr) = certs(&wrong, &["--where", "issuer=int-server"]);
    assert!(!ok && stderr.contains("unauthorized"), "{stderr}");

    // Only an admin revokes; the auditor is refused.
    let revoke = |token: &Path| {
        carimbo(&[
            "admin",
            "revoke",
            "--ca",
            replica.api.as_str(),
            "--ca-bundle",
            s(&bundle),
            "--admin-token-file",
            s(token),
            "--where",
            "san=dns:r1-0.audit.localhost",
            "--reason",
            "superseded",
            "--execute",
            "--expect",
            "1",
        ])
    };
    let (ok, _, stderr) = revoke(auditor);
    assert!(!ok && stderr.contains("not a admin"), "{stderr}");
    let (ok, stdout, stderr) = revoke(&admin);
    assert!(ok && stdout.contains("revoked 1 of 1"), "{stdout}{stderr}");
    let (ok, stdout, _) = certs(&admin, &["--where", "san=dns:r1-0.audit.localhost"]);
    assert!(ok && lines(&stdout).is_empty(), "{stdout}");
    let (ok, stdout, _) = certs(
        &admin,
        &[
            "--where",
            "san=dns:r1-0.audit.localhost",
            "--include-revoked",
        ],
    );
    let found = lines(&stdout);
    assert!(ok && found.len() == 1, "{stdout}");
    assert_eq!(found[0]["status"], "revoked");
    assert_eq!(found[0]["revocation_reason"], 4);
}

/// The `config.applied` events of the export, in chain order.
fn config_events(config: &Path) -> Vec<Value> {
    let (ok, stdout, stderr) = carimbo(&[
        "audit",
        "export",
        "--config",
        s(config),
        "--since",
        "1970-01-01T00:00:00Z",
    ]);
    assert!(ok, "{stderr}");
    stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["record"] == "event" && r["event"]["type"] == "config.applied")
        .map(|r| r["event"].clone())
        .collect()
}

#[test]
fn policy_changes_between_starts_are_audited_with_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "policy", api, publication, false);
    let start = || start_replica_with(&config, api, publication, &[], None);

    // The policy is recorded once at the first start (this config is the dev one).
    start().terminate();
    let events = config_events(&config);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["first"], true);
    assert_eq!(
        events[0]["policy"]["provisioners"][0]["max-ttl"], "72h",
        "{events:?}"
    );

    // A provisioner's lifetime shortened and rate limits added: one event naming both.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("max-ttl = \"72h\"", "max-ttl = \"24h\"");
    std::fs::write(
        &config,
        format!("{text}\n[limits]\nissuance-per-minute = 30\n"),
    )
    .unwrap();
    start().terminate();
    // Unchanged: nothing more.
    start().terminate();
    let events = config_events(&config);
    assert_eq!(events.len(), 2, "{events:?}");
    let changes = &events[1]["changes"];
    let mut changed: Vec<&String> = changes.as_object().unwrap().keys().collect();
    changed.sort();
    assert_eq!(changed, ["limits", "provisioners"], "{changes}");
    assert_eq!(changes["provisioners"]["before"][0]["max-ttl"], "72h");
    assert_eq!(changes["provisioners"]["after"][0]["max-ttl"], "24h");
    assert_eq!(changes["limits"]["before"], Value::Null);
    assert_eq!(changes["limits"]["after"]["issuance-per-minute"], 30);
    assert_eq!(events[1]["first"], false);
}
