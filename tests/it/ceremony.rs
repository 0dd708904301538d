//! `ca-ceremony` end to end against SoftHSM2 with two tokens (offline root, online CA):
//! the example hierarchy of `config/ceremony/` checked with `openssl`, `verify`
//! catching modified outputs and transcripts, and bad configs refused before any HSM
//! change with a message naming the field.

use std::path::{Path, PathBuf};
use std::process::Command;

use carimbo_tests::{CeremonyPki, SoftHsmToken, ceremony_pki, openssl, run_ceremony, softhsm};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The objects in a token, as `pkcs11-tool` lists them (an independent PKCS#11 client).
fn token_objects(token: &SoftHsmToken, label: &str) -> Vec<String> {
    // Without a login (the ceremony tokens' PINs exist only as shares): the public
    // objects, which every generated key pair adds to, with their labels.
    let output = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&token.module)
        .args(["--token-label", label, "--list-objects"])
        .output()
        .expect("pkcs11-tool (package opensc) is needed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // One entry per object: its type line and its label.
    let mut objects: Vec<String> = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if line.contains("Object;") {
            objects.push(line.trim().to_owned());
        } else if let (Some(label), Some(last)) =
            (line.trim().strip_prefix("label:"), objects.last_mut())
        {
            last.push_str(" label=");
            last.push_str(label.trim());
        }
    }
    // OCSP responder keys are made in the shared CA token by services other tests
    // run meanwhile; they are not the ceremony's.
    objects.retain(|object| !object.contains("label=sign/ocsp/"));
    objects
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A copy of the finished PKI directory (configs, outputs, credentials).
fn copy_of(pki: &CeremonyPki) -> (tempfile::TempDir, PathBuf, PathBuf) {
    fn copy_dir(from: &Path, to: &Path) {
        for name in files_in(from) {
            let (source, target) = (from.join(&name), to.join(&name));
            if source.is_dir() {
                std::fs::create_dir(&target).unwrap();
                copy_dir(&source, &target);
            } else {
                std::fs::copy(&source, &target).unwrap();
            }
        }
    }
    let keep = tempfile::tempdir().unwrap();
    copy_dir(&pki.dir, keep.path());
    let dir = keep.path().to_path_buf();
    let credentials = dir.join("credentials.toml");
    (keep, dir, credentials)
}

#[test]
fn example_hierarchy_is_valid_for_openssl() {
    let Some(pki) = ceremony_pki() else { return };
    let (root, server, workload, arl) = (
        pki.path("root.pem"),
        pki.path("int-server.pem"),
        pki.path("int-workload.pem"),
        pki.path("root-arl-1.pem"),
    );
    // The example hierarchy is valid from 2026-11-01: verify at a fixed time inside it.
    let at = "1799971200"; // 2027-01-15T00:00:00Z
    for intermediate in [&server, &workload] {
        let (ok, text) = openssl(&[
            "verify",
            "-attime",
            at,
            "-x509_strict",
            "-CAfile",
            s(&root),
            s(intermediate),
        ]);
        assert!(ok, "openssl verify {}: {text}", intermediate.display());
        // With the ARL: the intermediates are not revoked.
        let (ok, text) = openssl(&[
            "verify",
            "-attime",
            at,
            "-x509_strict",
            "-crl_check",
            "-CAfile",
            s(&root),
            "-CRLfile",
            s(&arl),
            s(intermediate),
        ]);
        assert!(ok, "openssl verify -crl_check: {text}");
    }
    let (ok, text) = openssl(&[
        "crl",
        "-in",
        s(&arl),
        "-CAfile",
        s(&root),
        "-verify",
        "-noout",
    ]);
    assert!(ok && text.contains("verify OK"), "{text}");

    let (_, root_text) = openssl(&["x509", "-in", s(&root), "-noout", "-text"]);
    for expected in [
        "Subject: C = BR, O = Example Corp, CN = Example Corp Root CA 2026",
        "Issuer: C = BR, O = Example Corp, CN = Example Corp Root CA 2026",
        "ASN1 OID: secp384r1",
        "X509v3 Basic Constraints: critical\n                CA:TRUE",
        "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign",
        "X509v3 Subject Key Identifier",
        "Not Before: Nov  1 00:00:00 2026 GMT",
        "Not After : Dec  1 00:00:00 2046 GMT",
    ] {
        assert!(
            root_text.contains(expected),
            "root lacks {expected:?}:\n{root_text}"
        );
    }
    assert!(!root_text.contains("Extended Key Usage"), "root has an EKU");

    let (_, server_text) = openssl(&["x509", "-in", s(&server), "-noout", "-text"]);
    for expected in [
        "Subject: C = BR, O = Example Corp, CN = Example Corp Server CA 2026",
        "Issuer: C = BR, O = Example Corp, CN = Example Corp Root CA 2026",
        "CA:TRUE, pathlen:0",
        "X509v3 Key Usage: critical",
        "TLS Web Server Authentication",
        "URI:http://pki.example.com/crl/root.crl",
        "CA Issuers - URI:http://pki.example.com/ca/root.cer",
        "X509v3 Name Constraints: critical",
        "DNS:example.com",
        "X509v3 Authority Key Identifier",
        "ASN1 OID: prime256v1",
        "Signature Algorithm: ecdsa-with-SHA384",
    ] {
        assert!(
            server_text.contains(expected),
            "server intermediate lacks {expected:?}:\n{server_text}"
        );
    }
    assert!(!server_text.contains("TLS Web Client Authentication"));
    let (_, workload_text) = openssl(&["x509", "-in", s(&workload), "-noout", "-text"]);
    assert!(
        workload_text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{workload_text}"
    );
    assert!(!workload_text.contains("Name Constraints"));

    // The intermediate keys are in the CA token, the root key only in the root token.
    let token = softhsm().unwrap();
    let ca_objects = token_objects(token, &token.ca_label).join("\n");
    assert!(ca_objects.contains("int-server-2026") && ca_objects.contains("int-workload-2026"));
    assert!(!ca_objects.contains("root-2026"));
    assert!(
        token_objects(token, &token.root_label)
            .join("\n")
            .contains("root-2026")
    );

    // The key reference names the token and the key.
    let reference = std::fs::read_to_string(pki.path("int-server.key.toml")).unwrap();
    assert!(
        reference.contains(&format!("token-label = {:?}", token.ca_label)),
        "{reference}"
    );
    assert!(reference.contains("key-label = \"int-server-2026\""));
    assert!(reference.contains("algorithm = \"ecdsa-p256-sha256\""));
}

#[test]
fn rollover_cross_certificate_keeps_subject_and_key_identifier() {
    let Some(pki) = ceremony_pki() else { return };
    let (root, next, cross) = (
        pki.path("root.pem"),
        pki.path("root-next.pem"),
        pki.path("cross-sign-next.pem"),
    );
    let at = "1954195200"; // 2031-12-05T00:00:00Z, inside every validity involved
    let (ok, text) = openssl(&[
        "verify",
        "-attime",
        at,
        "-x509_strict",
        "-CAfile",
        s(&root),
        s(&cross),
    ]);
    assert!(
        ok,
        "cross-certificate does not verify under the current root: {text}"
    );
    let fields = |path: &Path| {
        openssl(&[
            "x509",
            "-in",
            s(path),
            "-noout",
            "-subject",
            "-pubkey",
            "-ext",
            "subjectKeyIdentifier",
        ])
        .1
    };
    assert_eq!(fields(&cross), fields(&next), "subject, key or SKID differ");
    let (_, text) = openssl(&["x509", "-in", s(&cross), "-noout", "-text"]);
    assert!(
        text.contains("Issuer: C = BR, O = Example Corp, CN = Example Corp Root CA 2026"),
        "{text}"
    );
    assert!(text.contains("CA:TRUE, pathlen:1"), "{text}");
    // A verifier that trusts only the current root accepts the next root's key through
    // the cross-certificate: the next root, treated as untrusted, chains up.
    let (ok, text) = openssl(&[
        "verify",
        "-attime",
        at,
        "-CAfile",
        s(&root),
        "-untrusted",
        s(&cross),
        s(&cross),
    ]);
    assert!(ok, "{text}");
}

#[test]
fn verify_checks_recorded_final_hashes_and_catches_tampering() {
    let Some(pki) = ceremony_pki() else { return };
    assert_eq!(pki.final_hashes.len(), 13, "{:?}", pki.final_hashes);
    let (_keep, dir, credentials) = copy_of(pki);
    // With the final hashes the officers recorded, verify passes.
    let mut with_hashes = std::fs::read_to_string(dir.join("verify.toml")).unwrap();
    with_hashes.push_str("\n[final-hashes]\n");
    for (name, hash) in &pki.final_hashes {
        with_hashes.push_str(&format!("{name:?} = {hash:?}\n"));
    }
    std::fs::write(dir.join("verify-hashes.toml"), &with_hashes).unwrap();
    let output = run_ceremony(&dir, &credentials, "verify", "verify-hashes.toml", &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("final hash matches the record"));

    // A modified output (a harmless-looking byte appended to a PEM file).
    let server = dir.join("int-server.pem");
    let original = std::fs::read(&server).unwrap();
    let mut modified = original.clone();
    modified.extend_from_slice(b"\n");
    std::fs::write(&server, &modified).unwrap();
    let output = run_ceremony(&dir, &credentials, "verify", "verify-hashes.toml", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("int-server.pem does not match the SHA-256 recorded"),
        "{stderr}"
    );
    std::fs::write(&server, &original).unwrap();

    // A modified transcript line (an operator's name changed on line 1).
    let transcript = dir.join("root.transcript.jsonl");
    let text = std::fs::read_to_string(&transcript).unwrap();
    std::fs::write(&transcript, text.replacen("Carla Dias", "Mallory", 1)).unwrap();
    let output = run_ceremony(&dir, &credentials, "verify", "verify-hashes.toml", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("root.transcript.jsonl line 2: does not chain"),
        "{stderr}"
    );

    // The last line changed: the chain holds, the recorded final hash does not.
    let lines: Vec<&str> = text.lines().collect();
    let last = lines
        .last()
        .unwrap()
        .replace("\"complete\"", "\"complete\",\"x\":1");
    let mut edited = lines[..lines.len() - 1].join("\n");
    edited.push('\n');
    edited.push_str(&last);
    edited.push('\n');
    std::fs::write(&transcript, edited).unwrap();
    let output = run_ceremony(&dir, &credentials, "verify", "verify-hashes.toml", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("differs from the recorded"), "{stderr}");

    // A cut tail: the last lines removed.
    std::fs::write(&transcript, lines[..2].join("\n") + "\n").unwrap();
    let output = run_ceremony(&dir, &credentials, "verify", "verify-hashes.toml", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("does not end with a complete step"),
        "{stderr}"
    );
}

#[test]
fn a_wrong_share_set_is_refused_before_any_login() {
    let Some(pki) = ceremony_pki() else { return };
    let token = softhsm().unwrap();
    let (_keep, dir, credentials) = copy_of(pki);
    // A CA-token user share relabelled as a root share: the check digits still hold,
    // the shares join to a wrong PIN, the PIN check refuses it.
    let forged = std::fs::read_to_string(dir.join("ca-shares/2-bruno-lima.user.share"))
        .unwrap()
        .replace(
            &format!("secret: {} user PIN", token.ca_label),
            &format!("secret: {} user PIN", token.root_label),
        );
    std::fs::write(dir.join("root-shares/2-bruno-lima.user.share"), forged).unwrap();
    let text = std::fs::read_to_string(&credentials).unwrap().replacen(
        "root-shares/3-carla-dias.user.share",
        "root-shares/2-bruno-lima.user.share",
        1,
    );
    std::fs::write(&credentials, text).unwrap();
    // A CRL ceremony with outputs of its own, run as a dry run: it only needs a login.
    let mut crl = std::fs::read_to_string(dir.join("root-arl.toml")).unwrap();
    for (from, to) in FRESH_CRL {
        crl = crl.replace(from, to);
    }
    std::fs::write(dir.join("crl-again.toml"), crl).unwrap();
    let flags = || {
        let output = Command::new("pkcs11-tool")
            .arg("--module")
            .arg(&token.module)
            .arg("-L")
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&output.stdout).into_owned();
        let start = listing
            .find(&format!("token label        : {}", token.root_label))
            .unwrap();
        listing[start..]
            .lines()
            .find(|l| l.contains("token flags"))
            .unwrap()
            .to_owned()
    };
    assert!(!flags().contains("PIN count low"), "{}", flags());
    let output = run_ceremony(&dir, &credentials, "crl", "crl-again.toml", &["--dry-run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("do not reconstruct the user PIN"),
        "{stderr}"
    );
    // No failed login reached the token (SoftHSM2 flags one as "user PIN count low").
    assert!(!flags().contains("PIN count low"), "{}", flags());
    // Too few shares, and a mistyped share, are refused too.
    let one = std::fs::read_to_string(&credentials).unwrap().replacen(
        "files = [\"root-shares/1-ana-souza.user.share\", \"root-shares/2-bruno-lima.user.share\"]",
        "files = [\"root-shares/1-ana-souza.user.share\"]",
        1,
    );
    std::fs::write(&credentials, one).unwrap();
    let output = run_ceremony(&dir, &credentials, "crl", "crl-again.toml", &["--dry-run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("2 are needed"), "{stderr}");
    let share = dir.join("root-shares/1-ana-souza.user.share");
    let typo = std::fs::read_to_string(&share)
        .unwrap()
        .replacen("value: ", "value: 0", 1);
    std::fs::write(&share, typo).unwrap();
    let output = run_ceremony(&dir, &credentials, "crl", "crl-again.toml", &["--dry-run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("mistyped"), "{stderr}");
    assert!(!flags().contains("PIN count low"));
    // Control: a real wrong-PIN login does show in the flags.
    let output = Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&token.module)
        .args([
            "--token-label",
            &token.root_label,
            "--login",
            "--pin",
            "00000000",
            "--list-objects",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(flags().contains("PIN count low"), "{}", flags());
}

#[test]
fn token_ceremony_writes_private_shares_and_no_pin() {
    use std::os::unix::fs::PermissionsExt;
    let Some(pki) = ceremony_pki() else { return };
    let shares = files_in(&pki.path("root-shares"));
    assert_eq!(shares.len(), 6, "{shares:?}");
    for name in &shares {
        let mode = std::fs::metadata(pki.path("root-shares").join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let transcript = std::fs::read_to_string(pki.path("token-root.transcript.jsonl")).unwrap();
    assert!(transcript.contains("\"threshold\":2"));
    assert!(transcript.contains("root-shares/1-ana-souza.user.share"));
    let check = std::fs::read_to_string(pki.path("root-pins.toml")).unwrap();
    assert!(check.contains("hmac-sha256"));
}

#[test]
fn the_root_key_restores_into_the_backup_token() {
    let Some(pki) = ceremony_pki() else { return };
    let token = softhsm().unwrap();
    let reference = std::fs::read_to_string(pki.path("root-2026-restored.key.toml")).unwrap();
    assert!(
        reference.contains(&format!("token-label = {:?}", token.backup_label)),
        "{reference}"
    );
    let original = std::fs::read_to_string(pki.path("root.key.toml")).unwrap();
    let hash = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("public-key-sha256"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(hash(&reference), hash(&original));
    // The backup token now holds the key; the wrapping key is gone from both tokens.
    let backup_objects = token_objects(token, &token.backup_label).join("\n");
    assert!(backup_objects.contains("root-2026"), "{backup_objects}");
    for label in [&token.root_label, &token.backup_label] {
        let objects = token_objects(token, label).join("\n");
        assert!(
            !objects.contains("carimbo-backup-wrap"),
            "wrapping key left in {label}: {objects}"
        );
    }
    let transcript = std::fs::read_to_string(pki.path("restore-root.transcript.jsonl")).unwrap();
    assert!(
        transcript.contains("\"test_signature\":\"verified against the backed-up public key\"")
    );
    // The backup holds no plaintext key: only the wrapped blob and public data.
    let backup = std::fs::read_to_string(pki.path("root-2026.backup")).unwrap();
    assert!(backup.contains("wrapped-key") && backup.contains("CKM_AES_KEY_WRAP_PAD"));
}

#[test]
fn outputs_are_never_overwritten() {
    let Some(pki) = ceremony_pki() else { return };
    let before = std::fs::read(pki.path("root.pem")).unwrap();
    let token = softhsm().unwrap();
    let objects = token_objects(token, &token.root_label);
    let (_keep, dir, credentials) = copy_of(pki);
    // Same config again: the outputs exist (and so does the label).
    let output = run_ceremony(&dir, &credentials, "root", "root.toml", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("already exists; ceremonies never overwrite"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(dir.join("root.pem")).unwrap(), before);
    assert_eq!(token_objects(token, &token.root_label), objects);
}

#[test]
fn validate_and_dry_run_change_nothing() {
    let Some(pki) = ceremony_pki() else { return };
    let token = softhsm().unwrap();
    let (_keep, dir, credentials) = copy_of(pki);
    // A label and outputs of its own.
    let mut config = std::fs::read_to_string(dir.join("root.toml")).unwrap();
    for (from, to) in FRESH_ROOT {
        config = config.replace(from, to);
    }
    let config = config.replace("root-bad", "root-dry-run");
    std::fs::write(dir.join("root.toml"), config).unwrap();
    let files = files_in(&dir);
    let objects = token_objects(token, &token.root_label);
    let output = run_ceremony(
        &dir,
        Path::new("/nonexistent"),
        "root",
        "root.toml",
        &["--validate"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("passes the lints"));
    let output = run_ceremony(&dir, &credentials, "root", "root.toml", &["--dry-run"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("dry run: would generate"));
    assert_eq!(files_in(&dir), files);
    assert!(
        !token_objects(token, &token.root_label)
            .iter()
            .any(|o| o.contains("root-dry-run"))
    );
    assert_eq!(token_objects(token, &token.root_label).len(), objects.len());
}

/// One bad config: which ceremony, which example file, the edit, and what the error
/// must mention.
struct Case {
    what: &'static str,
    kind: &'static str,
    file: &'static str,
    edits: &'static [(&'static str, &'static str)],
    expected: &'static [&'static str],
}

/// Renames outputs and labels so a case fails on its own defect, not on existing files.
const FRESH_ROOT: &[(&str, &str)] = &[
    ("root-2026", "root-bad"),
    ("\"root.pem\"", "\"bad-root.pem\""),
    ("\"root.pub.pem\"", "\"bad-root.pub.pem\""),
    ("\"root.key.toml\"", "\"bad-root.key.toml\""),
    ("\"root.transcript.jsonl\"", "\"bad-root.transcript.jsonl\""),
];
const FRESH_INTERMEDIATE: &[(&str, &str)] = &[
    (
        "certificate = \"int-server.pem\"",
        "certificate = \"bad-int.pem\"",
    ),
    (
        "\"int-server.transcript.jsonl\"",
        "\"bad-int.transcript.jsonl\"",
    ),
];
const FRESH_KEY: &[(&str, &str)] = &[
    ("int-server-2026", "int-bad"),
    ("\"int-server.pub.pem\"", "\"bad.pub.pem\""),
    ("\"int-server.key.toml\"", "\"bad.key.toml\""),
    (
        "\"int-server-key.transcript.jsonl\"",
        "\"bad-key.transcript.jsonl\"",
    ),
];
const FRESH_TOKEN: &[(&str, &str)] = &[
    ("\"root-shares\"", "\"bad-shares\""),
    ("\"root-pins.toml\"", "\"bad-pins.toml\""),
    (
        "\"token-root.transcript.jsonl\"",
        "\"bad-token.transcript.jsonl\"",
    ),
];
const FRESH_BACKUP: &[(&str, &str)] = &[
    ("\"root-2026.backup\"", "\"bad.backup\""),
    ("\"root-wrapping-shares\"", "\"bad-wrapping-shares\""),
    (
        "\"backup-root.transcript.jsonl\"",
        "\"bad-backup.transcript.jsonl\"",
    ),
];
const FRESH_RESTORE: &[(&str, &str)] = &[
    (
        "\"root-2026-restored.key.toml\"",
        "\"bad-restored.key.toml\"",
    ),
    (
        "\"restore-root.transcript.jsonl\"",
        "\"bad-restore.transcript.jsonl\"",
    ),
    ("label = \"root-2026\"", "label = \"root-restore-bad\""),
];
const FRESH_CRL: &[(&str, &str)] = &[
    ("\"root-arl-1.pem\"", "\"bad-arl.pem\""),
    (
        "\"root-arl-1.transcript.jsonl\"",
        "\"bad-arl.transcript.jsonl\"",
    ),
];

fn cases() -> Vec<Case> {
    vec![
        Case {
            what: "RSA 2048",
            kind: "root",
            file: "root.toml",
            edits: &[("ecdsa-p384-sha384", "rsa-2048-pkcs1-sha256")],
            expected: &["key.algorithm", "below 3072"],
        },
        Case {
            what: "root validity over 25 years",
            kind: "root",
            file: "root.toml",
            edits: &[("2046-12-01", "2056-12-01")],
            expected: &["certificate", "25"],
        },
        Case {
            what: "root with an EKU",
            kind: "root",
            file: "root.toml",
            edits: &[(
                "not-before = ",
                "extended-key-usage = [\"server-auth\"]\nnot-before = ",
            )],
            expected: &["certificate.extended-key-usage", "no extended key usage"],
        },
        Case {
            what: "unknown key",
            kind: "root",
            file: "root.toml",
            edits: &[(
                "backup = \"wrap-with-trusted\"",
                "backup = \"wrap-with-trusted\"\ncolour = \"blue\"",
            )],
            expected: &["key", "unknown field `colour`"],
        },
        Case {
            what: "wrong ceremony type",
            kind: "intermediate",
            file: "root.toml",
            edits: &[],
            expected: &["ceremony", "not \"intermediate\""],
        },
        Case {
            what: "unsupported version",
            kind: "root",
            file: "root.toml",
            edits: &[("version = 1", "version = 2")],
            expected: &["version", "must be 1"],
        },
        Case {
            what: "malformed date",
            kind: "root",
            file: "root.toml",
            edits: &[("\"2046-12-01T00:00:00Z\"", "\"1 Dec 2046\"")],
            expected: &["certificate.not-after", "RFC 3339"],
        },
        Case {
            what: "no operators",
            kind: "root",
            file: "root.toml",
            edits: &[(
                "operators = [\"Ana Souza (CA officer)\", \"Bruno Lima (CA officer)\", \"Carla Dias (witness)\"]",
                "operators = []",
            )],
            expected: &["operators"],
        },
        Case {
            what: "bad country",
            kind: "root",
            file: "root.toml",
            edits: &[("country = \"BR\"", "country = \"Brazil\"")],
            expected: &["certificate.subject.country"],
        },
        Case {
            what: "existing output file",
            kind: "root",
            file: "root.toml",
            edits: &[("\"bad-root.pem\"", "\"root.pem\"")],
            expected: &["root.pem already exists"],
        },
        Case {
            what: "label already in the token",
            kind: "root",
            file: "root.toml",
            edits: &[("root-bad", "root-2026")],
            expected: &["key.label", "already used in token"],
        },
        Case {
            what: "label already in the CA token",
            kind: "key",
            file: "int-server-key.toml",
            edits: &[("int-bad", "int-workload-2026")],
            expected: &["key.label", "already used"],
        },
        Case {
            what: "unknown token role",
            kind: "key",
            file: "int-server-key.toml",
            edits: &[("token = \"ca\"", "token = \"hsm9\"")],
            expected: &["no token role \"hsm9\""],
        },
        Case {
            what: "intermediate validity beyond the issuer",
            kind: "intermediate",
            file: "int-server.toml",
            edits: &[("2031-12-01", "2047-12-01")],
            expected: &["certificate", "issuer"],
        },
        Case {
            what: "intermediate validity over 8 years",
            kind: "intermediate",
            file: "int-server.toml",
            edits: &[("2031-12-01", "2036-12-01")],
            expected: &["certificate", "8"],
        },
        Case {
            what: "missing CRL DP",
            kind: "intermediate",
            file: "int-server.toml",
            edits: &[(
                "crl-distribution-points = [\"http://pki.example.com/crl/root.crl\"]",
                "crl-distribution-points = []",
            )],
            expected: &["certificate.crl-distribution-points", "required"],
        },
        Case {
            what: "https CRL DP",
            kind: "intermediate",
            file: "int-server.toml",
            edits: &[(
                "http://pki.example.com/crl/root.crl",
                "https://pki.example.com/crl/root.crl",
            )],
            expected: &["certificate.crl-distribution-points[0]", "http://"],
        },
        Case {
            what: "pathLen other than 0",
            kind: "intermediate",
            file: "int-server.toml",
            edits: &[("usage = \"server\"", "usage = \"server\"\npath-len = 1")],
            expected: &["certificate.path-len", "pathLen 0"],
        },
        Case {
            what: "malformed name constraint",
            kind: "intermediate",
            file: "int-server.toml",
            edits: &[("\"example.internal\"", "\"*.example.internal\"")],
            expected: &["certificate.name-constraints.permitted-dns[1]", "wildcards"],
        },
        Case {
            what: "issuer key algorithm not the root's",
            kind: "intermediate",
            file: "int-server.toml",
            edits: &[(
                "key-algorithm = \"ecdsa-p384-sha384\"",
                "key-algorithm = \"ecdsa-p256-sha256\"",
            )],
            expected: &["issuer.certificate"],
        },
        Case {
            what: "issuer key not in the token",
            kind: "intermediate",
            file: "int-server.toml",
            edits: &[("key-label = \"root-2026\"", "key-label = \"root-1999\"")],
            expected: &["no key labelled \"root-1999\""],
        },
        Case {
            what: "missing subject key file",
            kind: "intermediate",
            file: "int-server.toml",
            edits: &[("\"int-server.pub.pem\"", "\"nope.pub.pem\"")],
            expected: &["subject-key.public-key", "nope.pub.pem"],
        },
        Case {
            what: "CRL number not above the previous",
            kind: "crl",
            file: "root-arl.toml",
            edits: &[(
                "# previous = \"root-arl-0.pem\"",
                "previous = \"root-arl-1.pem\"",
            )],
            expected: &["crl.number", "greater than the previous"],
        },
        Case {
            what: "ARL next-update beyond a year",
            kind: "crl",
            file: "root-arl.toml",
            edits: &[("2027-10-31", "2028-06-01")],
            expected: &["crl.next-update", "one year"],
        },
        Case {
            what: "threshold above the number of holders",
            kind: "token",
            file: "token-root.toml",
            edits: &[("threshold = 2", "threshold = 4")],
            expected: &["pins.threshold", "at most the number of holders"],
        },
        Case {
            what: "threshold of one",
            kind: "token",
            file: "token-root.toml",
            edits: &[("threshold = 2", "threshold = 1")],
            expected: &["pins.threshold", "at least 2"],
        },
        Case {
            what: "backup of a key made without a backup policy",
            kind: "backup",
            file: "backup-root.toml",
            edits: &[
                ("token = \"root\"", "token = \"ca\""),
                ("label = \"root-2026\"", "label = \"int-server-2026\""),
                ("ecdsa-p384-sha384", "ecdsa-p256-sha256"),
            ],
            expected: &["key.label", "not generated for backup"],
        },
        Case {
            what: "restore with too few shares",
            kind: "restore",
            file: "restore-root.toml",
            edits: &[(
                ", \"root-wrapping-shares/3-carla-dias.wrapping-key.share\"",
                "",
            )],
            expected: &["1 share(s) given", "2 are needed"],
        },
        Case {
            what: "restore checked against the wrong certificate",
            kind: "restore",
            file: "restore-root.toml",
            edits: &[(
                "certificate = \"root.pem\"",
                "certificate = \"int-server.pem\"",
            )],
            expected: &["backup.certificate"],
        },
        Case {
            what: "restore onto a used label",
            kind: "restore",
            file: "restore-root.toml",
            edits: &[("label = \"root-restore-bad\"", "label = \"root-2026\"")],
            expected: &["target.label", "already used"],
        },
        Case {
            what: "already initialised token",
            kind: "token",
            file: "token-root.toml",
            edits: &[],
            expected: &["already initialised", "would wipe it"],
        },
        Case {
            what: "missing section",
            kind: "crl",
            file: "root-arl.toml",
            edits: &[(
                "[outputs]\ncrl = \"bad-arl.pem\"\ntranscript = \"bad-arl.transcript.jsonl\"\n",
                "",
            )],
            expected: &["missing field `outputs`"],
        },
    ]
}

#[test]
fn bad_configs_fail_before_any_hsm_change_naming_the_field() {
    let Some(pki) = ceremony_pki() else { return };
    let token = softhsm().unwrap();
    let cases = cases();
    assert!(cases.len() >= 15);
    for case in cases {
        let (_keep, dir, credentials) = copy_of(pki);
        let mut text = std::fs::read_to_string(dir.join(case.file)).unwrap();
        let fresh = match case.file {
            "root.toml" => FRESH_ROOT,
            "int-server.toml" => FRESH_INTERMEDIATE,
            "int-server-key.toml" => FRESH_KEY,
            "token-root.toml" => FRESH_TOKEN,
            "backup-root.toml" => FRESH_BACKUP,
            "restore-root.toml" => FRESH_RESTORE,
            _ => FRESH_CRL,
        };
        for (from, to) in fresh.iter().chain(case.edits) {
            assert!(
                text.contains(from),
                "{}: edit target {from:?} not found",
                case.what
            );
            text = text.replace(from, to);
        }
        let file = format!("bad-{}", case.file);
        std::fs::write(dir.join(&file), text).unwrap();
        let files = files_in(&dir);
        let root_objects = token_objects(token, &token.root_label);
        let ca_objects = token_objects(token, &token.ca_label);
        let backup_objects = token_objects(token, &token.backup_label);

        let output = run_ceremony(&dir, &credentials, case.kind, &file, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{}: {stderr}", case.what);
        assert!(
            stderr.starts_with("error: ") && stderr.trim_end().lines().count() == 1,
            "{}: {stderr}",
            case.what
        );
        eprintln!("{}: {}", case.what, stderr.trim_end());
        for expected in case.expected {
            assert!(
                stderr.contains(expected),
                "{}: expected {expected:?} in {stderr}",
                case.what
            );
        }
        assert_eq!(files_in(&dir), files, "{}: files changed", case.what);
        assert_eq!(
            token_objects(token, &token.root_label),
            root_objects,
            "{}: root token changed",
            case.what
        );
        assert_eq!(
            token_objects(token, &token.ca_label),
            ca_objects,
            "{}: CA token changed",
            case.what
        );
        assert_eq!(
            token_objects(token, &token.backup_label),
            backup_objects,
            "{}: backup token changed",
            case.what
        );
    }
}

#[test]
fn the_same_ceremonies_run_on_a_software_token_for_development() {
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/ceremony");
    for name in [
        "root.toml",
        "int-server-key.toml",
        "int-server.toml",
        "root-arl.toml",
        "token-root.toml",
    ] {
        let text = std::fs::read_to_string(examples.join(name)).unwrap();
        // Software tokens make no backup-able keys.
        let text = text.replace("backup = \"wrap-with-trusted\"", "backup = \"none\"");
        std::fs::write(dir.join(name), text).unwrap();
    }
    let credentials = dir.join("credentials.toml");
    std::fs::write(
        &credentials,
        "version = 1\n\
         [tokens.root]\nprovider = \"file\"\ndirectory = \"dev-root\"\ntoken-label = \"dev-root\"\n\
         [tokens.ca]\nprovider = \"file\"\ndirectory = \"dev-ca\"\ntoken-label = \"dev-ca\"\n",
    )
    .unwrap();
    for (kind, file) in [
        ("root", "root.toml"),
        ("key", "int-server-key.toml"),
        ("intermediate", "int-server.toml"),
        ("crl", "root-arl.toml"),
    ] {
        let output = run_ceremony(dir, &credentials, kind, file, &[]);
        assert!(
            output.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let at = "1799971200"; // 2027-01-15T00:00:00Z
    let (ok, text) = openssl(&[
        "verify",
        "-attime",
        at,
        "-x509_strict",
        "-CAfile",
        s(&dir.join("root.pem")),
        s(&dir.join("int-server.pem")),
    ]);
    assert!(ok, "{text}");
    let reference = std::fs::read_to_string(dir.join("int-server.key.toml")).unwrap();
    assert!(reference.contains("provider = \"file\""), "{reference}");
    // Key files are private; the token ceremony needs a real PKCS#11 token.
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir.join("dev-root/keys")).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let output = run_ceremony(dir, &credentials, "token", "token-root.toml", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("needs a PKCS#11 token"), "{stderr}");
}

#[test]
fn pkilint_accepts_the_ceremony_hierarchy() {
    let Some(pki) = ceremony_pki() else { return };
    if Command::new("lint_pkix_cert")
        .arg("--help")
        .output()
        .is_err()
    {
        carimbo_tests::skip("pkilint", "lint_pkix_cert not found (pip install pkilint)");
        return;
    }
    let lint = |linter: &str, args: &[&str]| {
        let output = Command::new(linter).args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{linter} {args:?}:\n{text}");
    };
    let root = pki.path("root.pem");
    for file in [
        "root.pem",
        "int-server.pem",
        "int-workload.pem",
        "root-next.pem",
    ] {
        lint(
            "lint_pkix_cert",
            &["lint", "-s", "WARNING", s(&pki.path(file))],
        );
    }
    for file in ["int-server.pem", "int-workload.pem", "cross-sign-next.pem"] {
        lint(
            "lint_pkix_signer_signee_cert_chain",
            &["lint", "-s", "WARNING", s(&root), s(&pki.path(file))],
        );
    }
    lint(
        "lint_crl",
        &[
            "lint",
            "-t",
            "ARL",
            "-p",
            "PKIX",
            "-s",
            "WARNING",
            s(&pki.path("root-arl-1.pem")),
        ],
    );
}
