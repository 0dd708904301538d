//! Every example config under `config/` is loaded by the code that reads it, so the
//! examples cannot rot. A file under `config/` that no loader here claims fails the
//! test.

use std::path::{Path, PathBuf};

use carimbo_ceremony::config::{self, load_ceremony};
use carimbo_ceremony::credentials::Credentials;
use carimbo_kms_pkcs11::{PinSource, Pkcs11Config};

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Loads one example with its loader; returns false when no loader claims the file.
fn load(relative: &str, path: &Path) -> bool {
    match relative {
        "kms/pkcs11.toml" => {
            let config = Pkcs11Config::from_file(path).unwrap();
            assert_eq!(config.token_label, "carimbo-kms");
            assert_eq!(
                config.pin,
                PinSource::File("/run/secrets/carimbo-kms-pin".into())
            );
            assert_eq!(config.sessions, 4);
            true
        }
        "kms/aws-kms.toml" => {
            let config = carimbo_kms_aws::AwsKmsConfig::from_file(path).unwrap();
            assert_eq!(config.region, "eu-west-1");
            assert_eq!(config.endpoint, None);
            assert_eq!(config.profile.as_deref(), Some("carimbo-kms"));
            assert_eq!(config.timeout, std::time::Duration::from_secs(20));
            true
        }
        "carimbo.toml" | "dev.toml" => {
            let loaded = carimbo_server::config::LoadedConfig::load(path).unwrap();
            assert_eq!(loaded.config.issuers.len(), 2);
            // The production example enables the KMS API, and its rules check.
            if relative == "carimbo.toml" {
                let kms = loaded.config.kms.as_ref().expect("a [kms] section");
                assert_eq!(kms.rules.len(), 1);
                loaded.kms_rule(0, &kms.rules[0]).unwrap();
            }
            assert!(!loaded.config.provisioners.is_empty());
            // Every provisioner's SAN patterns and profiles parse.
            for section in &loaded.config.provisioners {
                carimbo_server::policy::Provisioner::from_config(section).unwrap();
            }
            true
        }
        "agent.toml" => {
            // The agent's parser lives in the binary: `carimbo agent --check` runs it.
            let output = std::process::Command::new(carimbo_tests::carimbo_binary())
                .args(["agent", "--check", "--config"])
                .arg(path)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            assert!(
                stdout.contains("server certificate for dns:app.example.com")
                    && stdout.contains("renewal at 67% of the lifetime")
                    && stdout.contains("SIGHUP to the process in /run/nginx.pid")
                    && stdout.contains("/run/carimbo/app/current"),
                "{stdout}"
            );
            true
        }
        "ceremony/credentials.example.toml" => {
            let credentials = Credentials::load(path).unwrap();
            assert_eq!(
                credentials.token("root").unwrap().token_label,
                "carimbo-root"
            );
            assert_eq!(credentials.token("ca").unwrap().token_label, "carimbo-ca");
            // The SO PIN comes from shares that do not exist here: a clear refusal.
            let error = credentials
                .security_officer_pin("root")
                .unwrap_err()
                .to_string();
            assert!(error.contains("root-pins.toml"), "{error}");
            true
        }
        name if name.starts_with("ceremony/") => {
            let text = std::fs::read_to_string(path).unwrap();
            let kind = text
                .lines()
                .find_map(|l| l.strip_prefix("ceremony = \""))
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or_else(|| panic!("config/{name} has no ceremony line"));
            // Strict parsing of the file as its ceremony type (unknown keys refused).
            match kind {
                "token" => drop(load_ceremony::<config::TokenConfig>(path, kind).unwrap()),
                "root" => drop(load_ceremony::<config::RootConfig>(path, kind).unwrap()),
                "key" => drop(load_ceremony::<config::KeyConfig>(path, kind).unwrap()),
                "intermediate" => {
                    drop(load_ceremony::<config::IntermediateConfig>(path, kind).unwrap())
                }
                "crl" => drop(load_ceremony::<config::CrlConfig>(path, kind).unwrap()),
                "backup" => drop(load_ceremony::<config::BackupConfig>(path, kind).unwrap()),
                "restore" => drop(load_ceremony::<config::RestoreConfig>(path, kind).unwrap()),
                "cross-sign" => drop(load_ceremony::<config::CrossSignConfig>(path, kind).unwrap()),
                "verify" => drop(load_ceremony::<config::VerifyConfig>(path, kind).unwrap()),
                other => panic!("config/{name}: unknown ceremony {other}"),
            }
            // The whole example hierarchy also runs, in order, in tests/it/ceremony.rs.
            assert!(
                carimbo_tests::EXAMPLE_CEREMONIES
                    .iter()
                    .any(|(_, file)| name.ends_with(file)),
                "config/{name} is not part of the example hierarchy run"
            );
            true
        }
        _ => false,
    }
}

#[test]
fn every_example_config_loads() {
    let root = config_dir();
    let files = files_under(&root);
    assert!(!files.is_empty());
    for path in files {
        let relative = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            load(&relative, &path),
            "config/{relative} is not loaded by any test"
        );
    }
}
