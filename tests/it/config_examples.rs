//! Every example config under `config/` is loaded by the code that reads it, so the
//! examples cannot rot. A file under `config/` that no loader here claims fails the
//! test.

use std::path::{Path, PathBuf};

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
