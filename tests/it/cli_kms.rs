//! `carimbo kms` end to end: the real binary on real files, with the file provider and
//! with SoftHSM2. Failures must exit non-zero with one `error:` line and leave no
//! output file (nor temporary file) behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use carimbo_tests::{carimbo_binary, openssl, random_hex};

/// A keyring directory and the flags that select a provider.
struct Kms {
    dir: tempfile::TempDir,
    /// `--pkcs11-config FILE` when testing the PKCS#11 provider.
    provider_flags: Vec<String>,
    /// The child's own SoftHSM2 token directory when testing the PKCS#11 provider.
    token: Option<carimbo_tests::PrivateSoftHsm>,
}

impl Kms {
    fn file() -> Option<Self> {
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            provider_flags: Vec::new(),
            token: None,
        })
    }

    fn softhsm() -> Option<Self> {
        let token = carimbo_tests::private_softhsm()?;
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            provider_flags: vec![
                "--pkcs11-config".into(),
                token.config_file.to_str().unwrap().into(),
            ],
            token: Some(token),
        })
    }

    fn keyring(&self) -> PathBuf {
        self.dir.path().join("keyring")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `carimbo kms <args> --keyring DIR`.
    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(carimbo_binary());
        command.arg("kms").args(args);
        if let Some(token) = &self.token {
            command.env("SOFTHSM2_CONF", &token.conf);
        }
        if args[0] != "inspect" {
            command.arg("--keyring").arg(self.keyring());
        }
        command.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "carimbo kms {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs a command that must fail: non-zero exit, one `error:` line mentioning
    /// `expected`; returns the message.
    fn fails(&self, args: &[&str], expected: &str) -> String {
        let output = self.run(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "carimbo kms {args:?} succeeded");
        // 1 for a refused operation, 2 for a usage error caught by the parser.
        assert!(matches!(output.status.code(), Some(1 | 2)), "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "more than one line: {stderr}"
        );
        assert!(
            stderr.to_lowercase().contains(&expected.to_lowercase()),
            "expected {expected:?} in {stderr}"
        );
        stderr
    }

    fn create_key(&self, name: &str, purpose: &str, extra: &[&str]) {
        let mut args = vec!["create-key", "--name", name, "--purpose", purpose];
        args.extend(self.provider_flags.iter().map(String::as_str));
        args.extend(extra);
        self.ok(&args);
    }

    /// No temporary or partial files in the working directory.
    fn assert_no_leftovers(&self) {
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                !name.contains(".tmp-"),
                "temporary file left behind: {name}"
            );
        }
    }
}

fn random_file(path: &Path, length: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(length);
    while data.len() < length {
        data.extend_from_slice(&hex::decode(random_hex(64)).unwrap());
    }
    data.truncate(length);
    std::fs::write(path, &data).unwrap();
    data
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Headers length of an envelope file (data header + length-prefixed wrap block).
fn headers_len(envelope: &[u8]) -> usize {
    let wrap = u16::from_be_bytes([envelope[106], envelope[107]]);
    106 + 2 + usize::from(wrap)
}

fn multi_segment_round_trip_tamper_and_rotation(kms: Kms) {
    let key = "envelope-data/test/files";
    kms.create_key(key, "envelope", &[]);
    let (plain, sealed, opened) = (kms.path("plain"), kms.path("sealed"), kms.path("opened"));
    // 5.5 segments of 1 KiB.
    let data = random_file(&plain, 5 * 1024 + 512);
    let context = ["--context", "tenant=acme", "--context", "purpose=backup"];
    let mut encrypt = vec![
        "encrypt",
        "--key",
        key,
        "--in",
        s(&plain),
        "--out",
        s(&sealed),
    ];
    encrypt.extend(["--segment-size", "1024"]);
    encrypt.extend(context);
    kms.ok(&encrypt);

    let info: serde_json::Value =
        serde_json::from_str(&kms.ok(&["inspect", "--in", s(&sealed)])).unwrap();
    assert_eq!(info["segments"], 6);
    assert_eq!(info["plaintext_bytes"], data.len() as u64);
    assert_eq!(info["wrap"]["key"], key);
    assert_eq!(info["wrap"]["version"], 1);

    let mut decrypt = vec![
        "decrypt",
        "--key",
        key,
        "--in",
        s(&sealed),
        "--out",
        s(&opened),
    ];
    decrypt.extend(context);
    kms.ok(&decrypt);
    assert_eq!(std::fs::read(&opened).unwrap(), data);
    std::fs::remove_file(&opened).unwrap();

    // Tampering: bytes of the data header, the wrap block, the first, a middle and the
    // last segment, each flipped; then truncation, segment swap, wrong context, and a
    // wrap block from another envelope. Each fails cleanly and leaves no output.
    let envelope = std::fs::read(&sealed).unwrap();
    let headers = headers_len(&envelope);
    let tampered = kms.path("tampered");
    let mut broken: Vec<(String, Vec<u8>)> = Vec::new();
    for index in [
        0,
        4,
        5,
        8,
        20,
        50,
        90,
        106,
        109,
        headers - 1,
        headers,
        headers + 2000,
        envelope.len() - 1,
    ] {
        let mut bad = envelope.clone();
        bad[index] ^= 0x04;
        broken.push((format!("byte {index} flipped"), bad));
    }
    broken.push((
        "truncated at a segment boundary".into(),
        envelope[..headers + 5 * 1040].to_vec(),
    ));
    broken.push((
        "truncated by one byte".into(),
        envelope[..envelope.len() - 1].to_vec(),
    ));
    let mut swapped = envelope.clone();
    swapped[headers..headers + 1040].copy_from_slice(&envelope[headers + 1040..headers + 2080]);
    swapped[headers + 1040..headers + 2080].copy_from_slice(&envelope[headers..headers + 1040]);
    broken.push(("segments swapped".into(), swapped));
    let mut other_args = encrypt.clone();
    let other = kms.path("other");
    other_args[6] = s(&other);
    kms.ok(&other_args);
    let other_envelope = std::fs::read(&other).unwrap();
    let mut spliced = envelope[..106].to_vec();
    spliced.extend_from_slice(&other_envelope[106..headers_len(&other_envelope)]);
    spliced.extend_from_slice(&envelope[headers..]);
    broken.push(("wrap block from another envelope".into(), spliced));
    for (what, bytes) in broken {
        std::fs::write(&tampered, bytes).unwrap();
        let mut args = vec!["decrypt", "--in", s(&tampered), "--out", s(&opened)];
        args.extend(context);
        let output = kms.run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{what}: decrypt succeeded");
        assert!(stderr.starts_with("error: "), "{what}: {stderr}");
        assert!(!opened.exists(), "{what}: output left behind");
        kms.assert_no_leftovers();
    }
    let mut wrong_context = vec![
        "decrypt",
        "--in",
        s(&sealed),
        "--out",
        s(&opened),
        "--context",
        "tenant=acme",
    ];
    kms.fails(&wrong_context, "context does not match");
    wrong_context.truncate(5);
    kms.fails(&wrong_context, "context does not match");
    assert!(!opened.exists());
    kms.fails(
        &[
            "decrypt",
            "--key",
            "envelope-data/test/other",
            "--in",
            s(&sealed),
            "--out",
            s(&opened),
        ],
        "made with key envelope-data/test/files",
    );

    // Rotate: old envelopes still decrypt; rewrap moves them to version 2 and leaves the
    // data segments byte-for-byte unchanged.
    assert!(
        kms.ok(&["rotate", "--key", key])
            .contains("version 2 is now primary")
    );
    kms.ok(&decrypt);
    assert_eq!(std::fs::read(&opened).unwrap(), data);
    let rewrapped = kms.path("rewrapped");
    let mut rewrap = vec![
        "rewrap",
        "--key",
        key,
        "--in",
        s(&sealed),
        "--out",
        s(&rewrapped),
    ];
    rewrap.extend(context);
    kms.ok(&rewrap);
    let after = std::fs::read(&rewrapped).unwrap();
    assert_eq!(after[..106], envelope[..106], "data header changed");
    assert_eq!(
        after[headers_len(&after)..],
        envelope[headers..],
        "data segments changed"
    );
    let info: serde_json::Value =
        serde_json::from_str(&kms.ok(&["inspect", "--in", s(&rewrapped)])).unwrap();
    assert_eq!(info["wrap"]["version"], 2);
    let reopened = kms.path("reopened");
    let mut decrypt_rewrapped = vec!["decrypt", "--in", s(&rewrapped), "--out", s(&reopened)];
    decrypt_rewrapped.extend(context);
    kms.ok(&decrypt_rewrapped);
    assert_eq!(std::fs::read(&reopened).unwrap(), data);

    // Version 1 disabled: the old envelope no longer opens, the rewrapped one does.
    kms.ok(&["disable", "--key", key, "--version", "1"]);
    std::fs::remove_file(&opened).unwrap();
    kms.fails(&decrypt, "version 1 is disabled");
    kms.fails(
        &["disable", "--key", key, "--version", "2"],
        "promote another version first",
    );
    kms.fails(
        &["destroy", "--key", key, "--version", "1"],
        "can be destroyed from",
    );
    kms.assert_no_leftovers();

    // Every key use left an audit line, none with the context values or plaintext.
    let audit = std::fs::read_to_string(kms.keyring().join("audit.jsonl")).unwrap();
    assert!(audit.lines().count() >= 10);
    assert!(audit.contains("\"operation\":\"unwrap\""));
    assert!(audit.contains("\"operation\":\"rewrap\""));
    assert!(!audit.contains("acme"));
}

fn sign_verify_with_openssl(kms: Kms) {
    for (key, algorithm, openssl_args) in [
        (
            "model-sign/test/p256",
            "ecdsa-p256-sha256",
            vec!["dgst", "-sha256"],
        ),
        (
            "model-sign/test/p384",
            "ecdsa-p384-sha384",
            vec!["dgst", "-sha384"],
        ),
        (
            "model-sign/test/pss",
            "rsa-3072-pss-sha256",
            vec![
                "dgst",
                "-sha256",
                "-sigopt",
                "rsa_padding_mode:pss",
                "-sigopt",
                "rsa_pss_saltlen:-1",
            ],
        ),
    ] {
        kms.create_key(key, "sign", &["--algorithm", algorithm]);
        let (artifact, signature, public) =
            (kms.path("artifact"), kms.path("sig"), kms.path("pub.pem"));
        random_file(&artifact, 100_000);
        let _ = std::fs::remove_file(&signature);
        let _ = std::fs::remove_file(&public);
        kms.ok(&[
            "sign",
            "--key",
            key,
            "--in",
            s(&artifact),
            "--out",
            s(&signature),
        ]);
        assert!(
            kms.ok(&[
                "verify",
                "--key",
                key,
                "--in",
                s(&artifact),
                "--signature",
                s(&signature)
            ])
            .contains("OK")
        );
        kms.ok(&["public-key", "--key", key, "--out", s(&public)]);
        let mut args = openssl_args.clone();
        args.extend([
            "-verify",
            s(&public),
            "-signature",
            s(&signature),
            s(&artifact),
        ]);
        let (ok, text) = openssl(&args);
        assert!(ok && text.contains("Verified OK"), "{algorithm}: {text}");
        random_file(&artifact, 100_000);
        kms.fails(
            &[
                "verify",
                "--key",
                key,
                "--in",
                s(&artifact),
                "--signature",
                s(&signature),
            ],
            "verification failed",
        );
    }
    // HMAC through the CLI.
    kms.create_key("webhook-hmac/test/h", "hmac", &[]);
    let message = kms.path("message");
    random_file(&message, 1000);
    let out = kms.ok(&["hmac", "--key", "webhook-hmac/test/h", "--in", s(&message)]);
    let (version, tag) = out.trim().split_once(' ').unwrap();
    kms.ok(&[
        "verify-hmac",
        "--key",
        "webhook-hmac/test/h",
        "--version",
        version,
        "--in",
        s(&message),
        "--tag",
        tag,
    ]);
    let mut wrong = tag.to_owned();
    wrong.replace_range(0..1, if tag.starts_with('0') { "1" } else { "0" });
    kms.fails(
        &[
            "verify-hmac",
            "--key",
            "webhook-hmac/test/h",
            "--version",
            version,
            "--in",
            s(&message),
            "--tag",
            &wrong,
        ],
        "HMAC verification failed",
    );
}

macro_rules! for_each_provider {
    ($($name:ident),*) => {
        mod file {
            $(#[test] fn $name() { if let Some(kms) = super::Kms::file() { super::$name(kms) } })*
        }
        mod softhsm {
            $(#[test] fn $name() { if let Some(kms) = super::Kms::softhsm() { super::$name(kms) } })*
        }
    };
}

for_each_provider!(
    multi_segment_round_trip_tamper_and_rotation,
    sign_verify_with_openssl
);

#[test]
fn bad_input_is_refused_with_one_clear_line() {
    let kms = Kms::file().unwrap();
    let input = kms.path("input");
    random_file(&input, 10);
    let out = kms.path("out");
    kms.fails(&["list"], "no keyring");
    kms.fails(
        &["create-key", "--name", "nope", "--purpose", "sign"],
        "invalid key name",
    );
    kms.fails(
        &[
            "create-key",
            "--name",
            "model-sign/test/x",
            "--purpose",
            "sign",
            "--algorithm",
            "rsa-2048-pkcs1-sha256",
        ],
        "below 3072",
    );
    kms.fails(
        &[
            "create-key",
            "--name",
            "model-sign/test/x",
            "--purpose",
            "launch",
        ],
        "unknown key purpose",
    );
    kms.fails(
        &["create-key", "--name", "pki-ca/test/x", "--purpose", "sign"],
        "reserved",
    );
    kms.ok(&[
        "create-key",
        "--name",
        "envelope-data/test/x",
        "--purpose",
        "envelope",
    ]);
    kms.fails(
        &[
            "create-key",
            "--name",
            "envelope-data/test/x",
            "--purpose",
            "envelope",
        ],
        "already exists",
    );
    kms.fails(
        &[
            "encrypt",
            "--key",
            "envelope-data/test/missing",
            "--in",
            s(&input),
            "--out",
            s(&out),
        ],
        "not found",
    );
    kms.fails(
        &[
            "encrypt",
            "--key",
            "envelope-data/test/x",
            "--in",
            s(&kms.path("absent")),
            "--out",
            s(&out),
        ],
        "absent",
    );
    kms.fails(
        &[
            "encrypt",
            "--key",
            "envelope-data/test/x",
            "--in",
            s(&input),
            "--out",
            s(&out),
            "--context",
            "novalue",
        ],
        "not key=value",
    );
    kms.fails(
        &[
            "encrypt",
            "--key",
            "envelope-data/test/x",
            "--in",
            s(&input),
            "--out",
            s(&out),
            "--segment-size",
            "10",
        ],
        "segment size",
    );
    kms.fails(
        &[
            "sign",
            "--key",
            "envelope-data/test/x",
            "--in",
            s(&input),
            "--out",
            s(&out),
        ],
        "does not allow sign",
    );
    kms.fails(
        &["decrypt", "--in", s(&input), "--out", s(&out)],
        "truncated",
    );
    kms.fails(&["inspect", "--in", s(&input)], "truncated");
    std::fs::write(&input, vec![0u8; 300]).unwrap();
    kms.fails(&["inspect", "--in", s(&input)], "not a Carimbo envelope");
    kms.fails(
        &[
            "rotate",
            "--key",
            "envelope-data/test/x",
            "--provider",
            "aws",
        ],
        "does not support",
    );
    assert!(!out.exists());
    kms.assert_no_leftovers();
    // A world-readable file KEK is refused.
    use std::os::unix::fs::PermissionsExt;
    let kek = kms.keyring().join("file-kek");
    std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o644)).unwrap();
    kms.fails(&["list"], "chmod 600");
}
