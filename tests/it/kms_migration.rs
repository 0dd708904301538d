//! Data keys migrated between providers by the resumable rewrap job: file → SoftHSM2 →
//! AWS KMS (emulator), with the job killed twice mid-way. The service, the job and the
//! tools are real processes; the KMS token is a SoftHSM2 token of the test's own.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use carimbo_store::{KmsInventoryStore, SqliteStore};
use carimbo_tests::{carimbo_binary, private_softhsm, random_hex, write_private};
use serde_json::{Value, json};

use crate::cli_dev::{dev_data, free_port};
use crate::replicas::{Replica, serve_config, start_replica_with};
use crate::server::s;

const KEY: &str = "envelope-data/test/objects";

/// Rows in the inventory: 5,000 in CI; `CARIMBO_MIGRATION_ROWS` for the slow run.
fn rows() -> usize {
    std::env::var("CARIMBO_MIGRATION_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

struct Setup {
    _hsm: carimbo_tests::PrivateSoftHsm,
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    config: std::path::PathBuf,
    env: Vec<(String, String)>,
    admin: String,
    app: String,
    runtime: tokio::runtime::Runtime,
    store: SqliteStore,
}

impl Setup {
    fn env(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn serve(&self, api: u16, publication: u16, log: &str) -> Replica {
        start_replica_with(
            &self.config,
            api,
            publication,
            &self.env(),
            Some(&self.data.join(log)),
        )
    }

    /// Runs `carimbo kms migrate … --to provider` to the end; returns its JSON.
    fn migrate(&self, to: &str, extra: &[&str]) -> Value {
        let output = Command::new(carimbo_binary())
            .args(["kms", "migrate", "--config", s(&self.config), "--key", KEY])
            .args(["--to", to, "--lease-ttl", "2s"])
            .args(extra)
            .envs(self.env())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "migrate to {to}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Starts the migration and kills it (SIGKILL) once the job's progress shows at
    /// least `rows` rows moved; returns the rows moved then.
    fn migrate_and_kill(&self, to: &str, rows: u64) -> u64 {
        let mut child = Command::new(carimbo_binary())
            .args(["kms", "migrate", "--config", s(&self.config), "--key", KEY])
            .args(["--to", to, "--rate", "1500", "--lease-ttl", "2s"])
            .envs(self.env())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(self.data.join("migrate.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        // A minute, plus time for the rows at a slow 100/s (the 100,000-row run).
        let deadline = Instant::now() + Duration::from_secs(60 + rows / 100);
        loop {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the job ended before it could be killed: {}",
                std::fs::read_to_string(self.data.join("migrate.log")).unwrap_or_default()
            );
            let done = self
                .runtime
                .block_on(self.store.running_kms_job(KEY))
                .unwrap()
                .map_or(0, |job| job.done);
            if done >= rows {
                break;
            }
            assert!(Instant::now() < deadline, "no progress to {rows} rows");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        let _ = child.wait();
        self.runtime
            .block_on(self.store.running_kms_job(KEY))
            .unwrap()
            .expect("a running job is left behind")
            .done
    }

    /// Points the config (written for other ports) at two free ports; returns them.
    fn use_ports(&self) -> (u16, u16) {
        let (api, publication) = (free_port(), free_port());
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text: String = text
            .lines()
            .map(|line| {
                if line.starts_with("listen = ") {
                    format!("listen = \"127.0.0.1:{api}\"\n")
                } else if line.starts_with("publication-listen = ") {
                    format!("publication-listen = \"127.0.0.1:{publication}\"\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        std::fs::write(&self.config, text).unwrap();
        (api, publication)
    }

    /// Rows by (version, provider).
    fn counts(&self) -> Vec<(u32, String, u64, u64)> {
        self.runtime
            .block_on(self.store.inventory_counts(Some(KEY)))
            .unwrap()
            .into_iter()
            .map(|c| (c.key_version, c.provider, c.live, c.dead))
            .collect()
    }
}

fn client(data: &Path) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(
            &std::fs::read(data.join("ca-bundle.pem")).unwrap(),
        )
        .unwrap()])
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

fn call(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: String,
    bearer: &str,
    body: &Value,
) -> (u16, Value) {
    runtime.block_on(async {
        let response = client
            .post(url)
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

fn setup() -> Option<Setup> {
    let hsm = private_softhsm()?;
    let aws = carimbo_tests::aws_kms_emulator()?;
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    std::fs::write(data.join("aws-kms.toml"), aws.config_text("")).unwrap();
    let admin = format!("kms-admin-{}", random_hex(16));
    let app = format!("kms-app-{}", random_hex(16));
    write_private(&data.join("kms-admin.token"), admin.as_bytes());
    write_private(&data.join("kms-app.token"), app.as_bytes());
    let config = serve_config(&data, "kms", free_port(), free_port(), false);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        r#"
[[admins]]
name = "kim"
role = "kms-admin"
token-file = "kms-admin.token"

[kms]
provider = "file"
file-directory = "kms-keys"
pkcs11-config = {:?}
aws-config = "aws-kms.toml"
max-batch = 1000

[[kms.clients]]
name = "app"
token-file = "kms-app.token"

[[kms.rules]]
identities = ["client:app"]
keys = ["envelope-data/test/*"]
operations = ["datakey", "decrypt"]
"#,
        hsm.config_file
    ));
    std::fs::write(&config, text).unwrap();
    let env = vec![
        ("SOFTHSM2_CONF".to_owned(), hsm.conf.display().to_string()),
        ("AWS_ACCESS_KEY_ID".to_owned(), aws.access_key_id.to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            aws.secret_access_key.to_owned(),
        ),
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = runtime
        .block_on(SqliteStore::open(&data.join("carimbo.db")))
        .unwrap();
    Some(Setup {
        _hsm: hsm,
        _dir: dir,
        data,
        config,
        env,
        admin,
        app,
        runtime,
        store,
    })
}

#[test]
fn data_keys_move_file_to_softhsm_to_aws_through_two_kills_and_none_is_lost() {
    let Some(setup) = setup() else { return };
    let count = rows();
    let (api, publication) = setup.use_ports();
    let url = |path: &str| format!("https://127.0.0.1:{api}{path}");
    let client = client(&setup.data);
    let rt = &setup.runtime;

    // The service makes the key (file provider) and the data keys, kept in the
    // inventory; the test remembers every plaintext data key.
    let mut service = setup.serve(api, publication, "serve-1.log");
    let (status, reply) = call(
        rt,
        &client,
        url("/v1/kms/keys"),
        &setup.admin,
        &json!({ "name": KEY, "purpose": "envelope" }),
    );
    assert_eq!(status, 201, "{reply}");
    let mut plaintext_keys: HashMap<String, String> = HashMap::new();
    let started = Instant::now();
    for chunk in (0..count).collect::<Vec<_>>().chunks(400) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({ "key": KEY, "context": { "object": format!("obj-{i:06}") },
                        "inventory_id": format!("obj-{i:06}") })
            })
            .collect();
        let (status, reply) = call(
            rt,
            &client,
            url("/v1/kms/batch/datakey"),
            &setup.app,
            &json!({ "items": items }),
        );
        assert_eq!(status, 200, "{reply}");
        for (i, result) in chunk.iter().zip(reply["results"].as_array().unwrap()) {
            let key = result["ok"]["plaintext_key"]
                .as_str()
                .unwrap_or_else(|| panic!("{result}"));
            plaintext_keys.insert(format!("obj-{i:06}"), key.to_owned());
        }
    }
    eprintln!("{count} data keys made in {:?}", started.elapsed());
    assert_eq!(
        setup.counts(),
        vec![(1, "file".to_owned(), count as u64, 0)]
    );
    // Version 1 cannot be destroyed while the inventory uses it.
    let (status, reply) = call(
        rt,
        &client,
        url("/v1/kms/keys/destroy"),
        &setup.admin,
        &json!({ "name": KEY, "version": 1 }),
    );
    assert_eq!(
        (status, reply["code"].as_str()),
        (409, Some("version_in_use"))
    );
    service.terminate();

    // A dry run moves nothing.
    let dry = setup.migrate("pkcs11", &["--dry-run"]);
    assert_eq!(dry["to_move"], count as u64, "{dry}");
    assert_eq!(
        setup.counts(),
        vec![(1, "file".to_owned(), count as u64, 0)]
    );

    // File → SoftHSM2, killed twice, then resumed to the end.
    // Each kill comes once the job reports progress; the second run first waits for
    // the killed job's lease (2 s) to lapse, then counts what is left.
    let first = setup.migrate_and_kill("pkcs11", (count / 8) as u64);
    let second = setup.migrate_and_kill("pkcs11", (count / 2) as u64);
    eprintln!("killed after {first} and {second} rows");
    assert!(first > 0 && second > first && (second as usize) < count);
    let started = Instant::now();
    let done = setup.migrate("pkcs11", &[]);
    eprintln!("file → pkcs11 finished in {:?}: {done}", started.elapsed());
    assert_eq!(done["job"]["state"], "done");
    assert_eq!(done["target_version"], 2);
    assert_eq!(
        setup.counts(),
        vec![(2, "pkcs11".to_owned(), count as u64, 0)]
    );

    // SoftHSM2 → AWS KMS.
    let started = Instant::now();
    let done = setup.migrate("aws", &[]);
    let elapsed = started.elapsed();
    eprintln!(
        "pkcs11 → aws: {count} rows in {elapsed:?} ({:.0}/s)",
        count as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(done["target_version"], 3);
    assert_eq!(setup.counts(), vec![(3, "aws".to_owned(), count as u64, 0)]);

    // Every data key opens to the bytes it had, through the service.
    let mut service = setup.serve(api, publication, "serve-2.log");
    let rows = rt
        .block_on(setup.store.inventory_to_move(KEY, 0, "", u32::MAX))
        .unwrap();
    assert_eq!(rows.len(), count);
    for chunk in rows.chunks(120) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|row| {
                assert_eq!(row.key_version, 3);
                json!({ "wrapped_key": BASE64.encode(&row.wrapped_key),
                        "context": { "object": row.id } })
            })
            .collect();
        let (status, reply) = call(
            rt,
            &client,
            url("/v1/kms/batch/decrypt"),
            &setup.app,
            &json!({ "items": items }),
        );
        assert_eq!(status, 200, "{reply}");
        for (row, result) in chunk.iter().zip(reply["results"].as_array().unwrap()) {
            assert_eq!(
                result["ok"]["plaintext_key"].as_str(),
                Some(plaintext_keys[&row.id].as_str()),
                "{}: {result}",
                row.id
            );
        }
    }

    // Now the old versions may go: disabled, and (waiting period 0 here) destroyed.
    rt.block_on(
        setup
            .store
            .set_keyring_settings(&carimbo_kms::KeyringSettings {
                destroy_wait_seconds: 0,
            }),
    )
    .unwrap();
    for version in [1, 2] {
        for action in ["disable", "destroy"] {
            let (status, reply) = call(
                rt,
                &client,
                url(&format!("/v1/kms/keys/{action}")),
                &setup.admin,
                &json!({ "name": KEY, "version": version }),
            );
            assert_eq!(status, 200, "{action} v{version}: {reply}");
        }
    }
    service.terminate();
}

/// Two migration jobs towards one provider share its `[kms.rate-limits]` budget: 2 × 300
/// rewraps at a limit of 200/s take about 3 s together, where each alone at 200/s
/// would take 1.5 s.
#[test]
fn migration_jobs_share_their_target_providers_rate_limit() {
    let Some(setup) = setup() else { return };
    let (api, publication) = setup.use_ports();
    let url = |path: &str| format!("https://127.0.0.1:{api}{path}");
    let client = client(&setup.data);
    let rt = &setup.runtime;
    let keys = ["envelope-data/test/a", "envelope-data/test/b"];
    let per_key = 300;
    let mut service = setup.serve(api, publication, "serve-rate.log");
    for key in keys {
        let (status, reply) = call(
            rt,
            &client,
            url("/v1/kms/keys"),
            &setup.admin,
            &json!({ "name": key, "purpose": "envelope" }),
        );
        assert_eq!(status, 201, "{reply}");
        let items: Vec<Value> = (0..per_key)
            .map(|i| json!({ "key": key, "context": { "object": format!("{i}") }, "inventory_id": format!("{}-{i}", &key[key.len() - 1..]) }))
            .collect();
        let (status, reply) = call(
            rt,
            &client,
            url("/v1/kms/batch/datakey"),
            &setup.app,
            &json!({ "items": items }),
        );
        assert_eq!(status, 200, "{reply}");
        let results = reply["results"].as_array().unwrap();
        assert!(results.iter().all(|r| r["ok"].is_object()), "{reply}");
    }
    service.terminate();
    let mut text = std::fs::read_to_string(&setup.config).unwrap();
    text.push_str("\n[kms.rate-limits]\npkcs11 = 200\n");
    std::fs::write(&setup.config, text).unwrap();

    let started = Instant::now();
    let jobs: Vec<_> = keys
        .iter()
        .map(|key| {
            Command::new(carimbo_binary())
                .args(["kms", "migrate", "--config", s(&setup.config), "--key", key])
                .args(["--to", "pkcs11", "--lease-ttl", "1s", "--concurrency", "4"])
                .envs(setup.env())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for job in jobs {
        let output = job.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["job"]["state"], "done", "{report}");
        assert_eq!(report["job"]["done"], per_key, "{report}");
    }
    let elapsed = started.elapsed();
    eprintln!("2 × {per_key} rewraps at a shared 200/s: {elapsed:?}");
    // 600 rewraps at 200/s: 3 s, less the moments before a job sees the other.
    assert!(elapsed >= Duration::from_millis(2_500), "{elapsed:?}");
    for key in keys {
        let counts = rt
            .block_on(setup.store.inventory_counts(Some(key)))
            .unwrap();
        let moved: Vec<(u32, &str, u64)> = counts
            .iter()
            .map(|c| (c.key_version, c.provider.as_str(), c.live))
            .collect();
        assert_eq!(moved, [(2, "pkcs11", per_key)], "{key}");
    }
    // The budget leases are released at the end.
    let left = rt
        .block_on(carimbo_store::JobLeaseStore::live_leases(
            &setup.store,
            "kms-provider/",
            time::OffsetDateTime::now_utc(),
        ))
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}
