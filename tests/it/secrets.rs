//! Secret hygiene: a scripted session against a real `carimbo serve` with debug logging
//! — bootstrap token, issuance, renewal, revocation, refused credentials, KMS key
//! creation, encrypt/decrypt and a data key — then every secret it handled, in every
//! encoding it travels in, is searched for in the service's log, in every row of the
//! database (audit events included) and in the error bodies. A planted secret proves
//! the search finds what it looks for.

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use carimbo_tests::{random_hex, write_private};
use serde_json::{Value, json};

use crate::cli_dev::{dev_data, free_port};
use crate::replicas::{carimbo, serve_config, start_replica_with};
use crate::server::s;

/// A secret and the forms it may leak in.
struct Secret {
    what: String,
    forms: Vec<String>,
}

impl Secret {
    fn text(what: &str, value: &str) -> Self {
        Self::bytes(what, value.as_bytes(), Some(value))
    }

    fn bytes(what: &str, value: &[u8], as_text: Option<&str>) -> Self {
        let mut forms = vec![BASE64.encode(value), hex::encode(value)];
        if let Some(text) = as_text {
            forms.push(text.to_owned());
        }
        Self {
            what: what.to_owned(),
            forms,
        }
    }
}

/// The secrets (by name and form) found in `haystack`.
fn leaks(secrets: &[Secret], haystack: &str) -> Vec<String> {
    let mut found = Vec::new();
    for secret in secrets {
        for form in &secret.forms {
            if form.len() >= 12 && haystack.contains(form.as_str()) {
                found.push(format!("{} ({form:.16}…)", secret.what));
            }
        }
    }
    found
}

/// The base64 lines of a PEM private key: each is secret material.
fn pem_secret(what: &str, path: &Path) -> Vec<Secret> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("-----") && line.len() >= 16)
        .map(|line| Secret {
            what: what.to_owned(),
            forms: vec![line.to_owned()],
        })
        .collect()
}

/// Every row of every table, as text.
fn database_text(db: &Path) -> String {
    let output = std::process::Command::new(
        std::env::var("CARIMBO_PYTHON").unwrap_or("python3".into()),
    )
    .args([
        "-c",
        "import sqlite3, sys\nfor line in sqlite3.connect(sys.argv[1]).iterdump(): print(line)",
        s(db),
    ])
    .output()
    .unwrap();
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_scripted_session_leaves_no_secret_in_logs_database_rows_or_error_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "hygiene", api, publication, false);
    let kms_admin = format!("kms-admin-{}", random_hex(16));
    let kms_client = format!("kms-app-{}", random_hex(16));
    write_private(&data.join("kms-admin.token"), kms_admin.as_bytes());
    write_private(&data.join("kms-app.token"), kms_client.as_bytes());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        r#"
[[admins]]
name = "kim"
role = "kms-admin"
token-file = "kms-admin.token"

[kms]
provider = "file"
file-directory = "kms-keys"

[[kms.clients]]
name = "app"
token-file = "kms-app.token"

[[kms.rules]]
identities = ["client:app"]
keys = ["envelope-data/test/*"]
operations = ["encrypt", "decrypt", "datakey"]
"#,
    );
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("serve.log");
    let mut replica = start_replica_with(
        &config,
        api,
        publication,
        &[("RUST_LOG", "debug")],
        Some(&log),
    );
    let bundle = data.join("ca-bundle.pem");
    let admin_token = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    let ca = ["--ca", replica.api.as_str(), "--ca-bundle", s(&bundle)];

    // Certificates: a bootstrap token, issuance, renewal, revocation by the holder.
    let (ok, token, stderr) = carimbo(
        &[
            &["token", "create"][..],
            &ca,
            &[
                "--admin-token-file",
                s(&data.join("admin.token")),
                "--provisioner",
                "dev",
                "--profile",
                "server",
                "--san",
                "dns:hygiene.localhost",
            ],
        ]
        .concat(),
    );
    assert!(ok, "{stderr}");
    let token = token.trim().to_owned();
    let first = dir.path().join("first");
    let renewed = dir.path().join("renewed");
    for (args, out) in [
        (
            vec![
                "issue",
                "--token",
                token.as_str(),
                "--profile",
                "server",
                "--san",
                "dns:hygiene.localhost",
            ],
            &first,
        ),
        (
            vec![
                "renew",
                "--cert",
                s(&first.join("cert.pem")),
                "--key",
                s(&first.join("key.pem")),
            ],
            &renewed,
        ),
    ] {
        let (ok, _, stderr) = carimbo(&[&args[..], &ca, &["--out", s(out)]].concat());
        assert!(ok, "{args:?}: {stderr}");
    }
    let (ok, _, stderr) = carimbo(
        &[
            &["revoke"][..],
            &ca,
            &[
                "--cert",
                s(&renewed.join("cert.pem")),
                "--key",
                s(&renewed.join("key.pem")),
                "--reason",
                "superseded",
            ],
        ]
        .concat(),
    );
    assert!(ok, "{stderr}");
    // The used token again: refused; its error must not echo it.
    let (ok, _, reused_error) = carimbo(
        &[
            &["issue", "--token", token.as_str(), "--profile", "server"][..],
            &["--san", "dns:hygiene.localhost"],
            &ca,
            &["--out", s(&dir.path().join("again"))],
        ]
        .concat(),
    );
    assert!(!ok && reused_error.contains("token_used"), "{reused_error}");

    // KMS: a key, a secret encrypted and decrypted, a data key; refused credentials.
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&bundle).unwrap()).unwrap()])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let call = |path: &str, bearer: &str, body: Value| -> (u16, String) {
        runtime.block_on(async {
            let response = client
                .post(format!("{}{path}", replica.api))
                .bearer_auth(bearer)
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    let key = "envelope-data/test/hygiene";
    let (status, body) = call(
        "/v1/kms/keys",
        &kms_admin,
        json!({ "name": key, "purpose": "envelope" }),
    );
    assert_eq!(status, 201, "{body}");
    let plaintext = format!("the launch code is {}", random_hex(16));
    let context = json!({ "tenant": "acme" });
    let (status, body) = call(
        "/v1/kms/encrypt",
        &kms_client,
        json!({ "key": key, "plaintext": BASE64.encode(&plaintext), "context": context }),
    );
    assert_eq!(status, 200, "{body}");
    let ciphertext = serde_json::from_str::<Value>(&body).unwrap()["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = call(
        "/v1/kms/decrypt",
        &kms_client,
        json!({ "ciphertext": ciphertext, "context": context }),
    );
    assert_eq!(status, 200, "{body}");
    let opened = serde_json::from_str::<Value>(&body).unwrap()["plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(BASE64.decode(opened).unwrap(), plaintext.as_bytes());
    let (status, body) = call(
        "/v1/kms/datakey",
        &kms_client,
        json!({ "key": key, "context": context }),
    );
    assert_eq!(status, 200, "{body}");
    let data_key = BASE64
        .decode(
            serde_json::from_str::<Value>(&body).unwrap()["plaintext_key"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    // Wrong context and a tampered ciphertext: refused, nothing echoed.
    let mut error_bodies = vec![reused_error];
    let (status, body) = call(
        "/v1/kms/decrypt",
        &kms_client,
        json!({ "ciphertext": ciphertext, "context": { "tenant": "other" } }),
    );
    assert_eq!(status, 400, "{body}");
    error_bodies.push(body);
    let wrong_admin = format!("cat_{}", random_hex(24));
    let wrong_client = format!("kms-app-{}", random_hex(16));
    for (path, bearer, body) in [
        (
            "/v1/admin/tokens",
            wrong_admin.as_str(),
            json!({ "provisioner": "dev", "profile": "server", "sans": ["dns:x.localhost"] }),
        ),
        (
            "/v1/kms/encrypt",
            wrong_client.as_str(),
            json!({ "key": key, "plaintext": BASE64.encode(&plaintext), "context": context }),
        ),
    ] {
        let (status, body) = call(path, bearer, body);
        assert_eq!(status, 401, "{body}");
        error_bodies.push(body);
    }
    replica.terminate();

    let mut secrets = vec![
        Secret::text("admin token", &admin_token),
        Secret::text("bootstrap token", &token),
        Secret::text("KMS admin token", &kms_admin),
        Secret::text("KMS client token", &kms_client),
        Secret::text("refused admin credential", &wrong_admin),
        Secret::text("refused client credential", &wrong_client),
        Secret::text("plaintext", &plaintext),
        Secret::bytes("data key", &data_key, None),
    ];
    for (what, path) in [
        (
            "file KEK of the CA keys",
            data.join("ceremony/dev-ca/file-kek"),
        ),
        ("file KEK of the KMS keys", data.join("kms-keys/file-kek")),
    ] {
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8(bytes.clone()).ok();
        secrets.push(Secret::bytes(what, &bytes, text.as_deref().map(str::trim)));
    }
    for (what, path) in [
        ("leaf private key", first.join("key.pem")),
        ("renewed leaf private key", renewed.join("key.pem")),
        ("listener private key", data.join("tls/server.key")),
    ] {
        if path.exists() {
            secrets.extend(pem_secret(what, &path));
        }
    }
    secrets.retain(|secret| secret.forms.iter().any(|f| f.len() >= 12));

    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.lines().count() > 20 && log_text.contains("DEBUG"),
        "debug logging was on: {log_text}"
    );
    let database = database_text(&data.join("carimbo.db"));
    assert!(database.contains("certificate.issued") && database.contains("kms."));
    for (place, haystack) in [
        ("the service log", log_text.as_str()),
        ("the database", database.as_str()),
        ("the error bodies", error_bodies.join("\n").as_str()),
    ] {
        let found = leaks(&secrets, haystack);
        assert!(found.is_empty(), "secrets in {place}: {found:?}");
    }
    // The search finds a secret that is there: one planted in a copy of the log.
    let planted = format!("{log_text}\nDEBUG request bearer={kms_client}\n");
    assert_eq!(
        leaks(&secrets, &planted),
        [format!("KMS client token ({kms_client:.16}…)")]
    );
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_ceremony_leaves_no_pin_or_share_outside_the_share_files() {
    use carimbo_ceremony::credentials::PinCheckFile;
    use carimbo_ceremony::shares::{ShareFile, join};
    let Some(pki) = carimbo_tests::ceremony_pki() else {
        return;
    };
    // The secrets: each share's value, and each PIN joined back from its shares.
    let files = files_under(&pki.dir);
    let mut secrets = Vec::new();
    let mut by_secret: std::collections::BTreeMap<(String, String), Vec<ShareFile>> =
        Default::default();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "share"))
    {
        let share = ShareFile::parse(&std::fs::read_to_string(path).unwrap(), path).unwrap();
        let shown = format!("{share:?}");
        assert!(
            shown.contains("[redacted]") && !shown.contains(&hex::encode(&share.value[..])),
            "{shown}"
        );
        secrets.push(Secret::bytes(
            &format!("share of {} held by {}", share.secret, share.holder),
            &share.value,
            None,
        ));
        let role_dir = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy();
        let role = role_dir.trim_end_matches("-shares").to_owned();
        by_secret
            .entry((role, share.secret.clone()))
            .or_default()
            .push(share);
    }
    let mut pins = 0;
    for ((role, what), shares) in by_secret {
        // PIN shares come with a PIN check file; other shares (the backup wrapping
        // key's) are searched for by their values only.
        let Ok(checks) = std::fs::read_to_string(pki.path(&format!("{role}-pins.toml"))) else {
            continue;
        };
        let check: PinCheckFile = toml::from_str(&checks).unwrap();
        let check = if what.contains("SO PIN") {
            &check.so
        } else {
            &check.user
        };
        let needed = usize::from(shares[0].threshold);
        let pin = join(&shares[..needed], &what, check).unwrap();
        secrets.push(Secret::bytes(
            &what,
            &pin,
            Some(std::str::from_utf8(&pin).unwrap()),
        ));
        pins += 1;
    }
    assert!(
        pins >= 4,
        "expected the user and SO PINs of two tokens, got {pins}"
    );

    // Where they must not be: everything the ceremonies printed, and every file they
    // wrote except the share files themselves (transcripts, PIN checks, certificates,
    // key records, configs).
    let mut found = Vec::new();
    for (run, output) in &pki.outputs {
        for leak in leaks(&secrets, output) {
            found.push(format!("{leak} in the output of ca-ceremony {run}"));
        }
    }
    let mut searched = 0;
    for path in files
        .iter()
        .filter(|p| p.extension().is_none_or(|e| e != "share"))
    {
        let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
        for leak in leaks(&secrets, &text) {
            found.push(format!("{leak} in {}", path.display()));
        }
        searched += 1;
    }
    assert!(found.is_empty(), "secrets leaked: {found:#?}");
    assert!(searched >= 20, "only {searched} files searched");

    // The search finds a planted share value and a planted PIN.
    let transcript = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a transcript");
    let mut planted = std::fs::read_to_string(transcript).unwrap();
    planted.push_str(&secrets[0].forms[1]);
    assert_eq!(leaks(&secrets, &planted).len(), 1);
    let pin = secrets.last().unwrap();
    let planted = format!("debug: pin={}", pin.forms.last().unwrap());
    assert!(!leaks(&secrets, &planted).is_empty(), "{planted}");
}
