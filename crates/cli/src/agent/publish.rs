//! Atomic publication of a key and its certificate.
//!
//! ```text
//! DIR/current -> versions/20261122T234457Z-3f9a1c0b2e4d   (symbolic link, switched by rename)
//! DIR/versions/20261122T234457Z-3f9a1c0b2e4d/
//!     key.pem (0600)  cert.pem  chain.pem  fullchain.pem  ca-bundle.pem
//!     intermediates.pem  meta.json
//! ```
//!
//! A version directory is written completely under a temporary name, flushed, and
//! renamed into `versions/`; then a new symbolic link is made under a temporary name
//! and renamed over `current`. Each rename is atomic, so `current` always names a
//! complete version whose key matches its certificate. Older versions are kept (the
//! last `keep-versions`), so a reader that resolved `current` just before a switch can
//! still read the version it resolved.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The name of the symbolic link workloads read through.
pub const CURRENT: &str = "current";
/// The directory holding the versions.
pub const VERSIONS: &str = "versions";

/// What the agent records about a published certificate, in `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Serial, lowercase hex.
    pub serial: String,
    /// Profile it was issued for.
    pub profile: String,
    /// Its names (`dns:…`, `ip:…`, `uri:…`).
    pub sans: Vec<String>,
    /// When the agent asked for it (the agent's clock): its lifetime counts from here,
    /// not from the backdated notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

/// A certificate with its key, as published (or about to be).
#[derive(Debug)]
pub struct Release {
    /// The key, PEM PKCS#8.
    pub key_pem: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The issuer chain, PEM, issuer first.
    pub chain_pem: String,
    /// Trust anchors (self-signed roots), PEM.
    pub roots_pem: String,
    /// Every other CA certificate the CA publishes, PEM.
    pub intermediates_pem: String,
    /// Its record.
    pub meta: Meta,
}

/// The currently published version.
#[derive(Debug)]
pub struct Current {
    /// Its directory.
    pub directory: PathBuf,
    /// The key.
    pub key: rcgen::KeyPair,
    /// The certificate, PEM (one certificate).
    pub certificate_pem: String,
    /// Its record.
    pub meta: Meta,
}

/// Splits a PEM bundle from the CA into roots (self-signed) and the others.
pub fn split_roots(bundle: &str) -> Result<(String, String), Error> {
    let mut roots = String::new();
    let mut others = String::new();
    for certificate in CertificateDer::pem_slice_iter(bundle.as_bytes()) {
        let der = certificate.map_err(|e| format!("the CA's chain bundle: {e}"))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| format!("the CA's chain bundle: {e}"))?;
        let pem = carimbo_pki::pem_encode("CERTIFICATE", &der);
        if parsed.subject().as_raw() == parsed.issuer().as_raw()
            && parsed.verify_signature(None).is_ok()
        {
            roots.push_str(&pem);
        } else {
            others.push_str(&pem);
        }
    }
    if roots.is_empty() {
        return Err("the CA's chain bundle holds no root certificate".into());
    }
    Ok((roots, others))
}

/// Checks that `key` is the key of the certificate `der`.
pub fn key_matches(key: &rcgen::KeyPair, der: &[u8]) -> Result<bool, Error> {
    use rcgen::PublicKeyData;
    let (_, certificate) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("certificate: {e}"))?;
    Ok(certificate.public_key().raw == key.subject_public_key_info().as_slice())
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

fn sync_directory(path: &Path) -> Result<(), Error> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

fn random_suffix() -> Result<String, Error> {
    let mut bytes = [0u8; 6];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "random generator failed")?;
    Ok(hex::encode(bytes))
}

/// Publishes `release` in `directory` and switches `current` to it; keeps the newest
/// `keep` versions. Returns the new version's directory.
pub fn publish(
    directory: &Path,
    release: &Release,
    file_mode: u32,
    keep: usize,
) -> Result<PathBuf, Error> {
    let versions = directory.join(VERSIONS);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&versions)
        .map_err(|e| format!("{}: {e}", versions.display()))?;
    let stamp = release
        .meta
        .issued_at
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(|e| format!("time: {e}"))?;
    let serial: String = release.meta.serial.chars().take(12).collect();
    let name = format!("{stamp}-{serial}");
    let final_path = versions.join(&name);
    if final_path.exists() {
        return Err(format!("{} already exists", final_path.display()).into());
    }
    // 1. The whole version under a temporary name.
    let temporary = versions.join(format!(".tmp-{name}-{}", random_suffix()?));
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&temporary)
        .map_err(|e| format!("{}: {e}", temporary.display()))?;
    let written = (|| -> Result<(), Error> {
        let meta = serde_json::to_string_pretty(&release.meta)? + "\n";
        write_file(&temporary.join("key.pem"), &release.key_pem, 0o600)?;
        write_file(
            &temporary.join("cert.pem"),
            &release.certificate_pem,
            file_mode,
        )?;
        write_file(&temporary.join("chain.pem"), &release.chain_pem, file_mode)?;
        write_file(
            &temporary.join("fullchain.pem"),
            &format!("{}{}", release.certificate_pem, release.chain_pem),
            file_mode,
        )?;
        write_file(
            &temporary.join("ca-bundle.pem"),
            &release.roots_pem,
            file_mode,
        )?;
        write_file(
            &temporary.join("intermediates.pem"),
            &release.intermediates_pem,
            file_mode,
        )?;
        write_file(&temporary.join("meta.json"), &meta, file_mode)?;
        sync_directory(&temporary)?;
        // 2. Into place.
        fs::rename(&temporary, &final_path)
            .map_err(|e| format!("{}: {e}", final_path.display()))?;
        sync_directory(&versions)
    })();
    if let Err(error) = written {
        let _ = fs::remove_dir_all(&temporary);
        return Err(error);
    }
    // 3. The switch: a new link renamed over `current`.
    let link = directory.join(format!(".{CURRENT}.tmp-{}", random_suffix()?));
    std::os::unix::fs::symlink(Path::new(VERSIONS).join(&name), &link)
        .map_err(|e| format!("{}: {e}", link.display()))?;
    let current = directory.join(CURRENT);
    if let Err(error) = fs::rename(&link, &current) {
        let _ = fs::remove_file(&link);
        return Err(format!("{}: {error}", current.display()).into());
    }
    sync_directory(directory)?;
    prune(&versions, &name, keep);
    Ok(final_path)
}

/// Removes all but the newest `keep` versions (never `current_name`), and temporary
/// directories a crash left behind.
fn prune(versions: &Path, current_name: &str, keep: usize) {
    let Ok(entries) = fs::read_dir(versions) else {
        return;
    };
    let mut names: Vec<String> = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            let _ = fs::remove_dir_all(entry.path());
        } else {
            names.push(name);
        }
    }
    // Names start with the issuance time: they sort oldest first.
    names.sort();
    let excess = names.len().saturating_sub(keep);
    for name in names.into_iter().take(excess) {
        if name == current_name {
            continue;
        }
        if let Err(error) = fs::remove_dir_all(versions.join(&name)) {
            tracing::warn!(version = %name, %error, "cannot remove an old version");
        }
    }
}

/// Reads the version `current` names, if there is one. A version that is incomplete or
/// whose key is not its certificate's is an error (the agent then bootstraps again).
pub fn read_current(directory: &Path) -> Result<Option<Current>, Error> {
    let link = directory.join(CURRENT);
    let target = match fs::read_link(&link) {
        Ok(target) => target,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(format!("{}: {error} (expected a symbolic link)", link.display()).into());
        }
    };
    let version = directory.join(target);
    let read = |name: &str| {
        fs::read_to_string(version.join(name))
            .map_err(|e| format!("{}: {e}", version.join(name).display()))
    };
    let key_pem = read("key.pem")?;
    let key = rcgen::KeyPair::from_pem(&key_pem)
        .map_err(|e| format!("{}: {e}", version.join("key.pem").display()))?;
    let certificate_pem = read("cert.pem")?;
    let der = carimbo_pki::pem_decode(&certificate_pem, "CERTIFICATE")
        .map_err(|e| format!("{}: {e}", version.join("cert.pem").display()))?;
    if !key_matches(&key, &der)? {
        return Err(format!("{}: the key is not the certificate's", version.display()).into());
    }
    let meta: Meta = serde_json::from_str(&read("meta.json")?)
        .map_err(|e| format!("{}: {e}", version.join("meta.json").display()))?;
    Ok(Some(Current {
        directory: version,
        key,
        certificate_pem,
        meta,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn release(serial: &str, issued_at: OffsetDateTime) -> Release {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["app.example.com".into()]).unwrap();
        let certificate = params.self_signed(&key).unwrap();
        Release {
            key_pem: key.serialize_pem(),
            certificate_pem: certificate.pem(),
            chain_pem: String::new(),
            roots_pem: String::new(),
            intermediates_pem: String::new(),
            meta: Meta {
                serial: serial.into(),
                profile: "server".into(),
                sans: vec!["dns:app.example.com".into()],
                issued_at,
                not_before: issued_at,
                not_after: issued_at + time::Duration::hours(1),
            },
        }
    }

    #[test]
    fn versions_are_switched_by_the_link_and_old_ones_pruned() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(read_current(dir.path()).unwrap().is_none());
        let start = OffsetDateTime::now_utc();
        let mut published = Vec::new();
        for i in 0..5_i64 {
            let release = release(
                &format!("{i:02}aabbccddeeff00"),
                start + time::Duration::seconds(i),
            );
            let path = publish(dir.path(), &release, 0o640, 3).unwrap();
            let current = read_current(dir.path()).unwrap().unwrap();
            assert_eq!(current.directory, path);
            assert_eq!(current.meta.serial, release.meta.serial);
            assert_eq!(current.certificate_pem, release.certificate_pem);
            let mode =
                |name: &str| fs::metadata(path.join(name)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode("key.pem"), 0o600);
            assert_eq!(mode("cert.pem"), 0o640);
            published.push(path);
        }
        let left: Vec<_> = fs::read_dir(dir.path().join(VERSIONS))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left.len(), 3, "{left:?}");
        assert!(!published[0].exists() && !published[1].exists());
        assert!(published[2..].iter().all(|p| p.exists()));
        // The link is relative, so the directory can be mounted elsewhere.
        assert!(
            fs::read_link(dir.path().join(CURRENT))
                .unwrap()
                .starts_with(VERSIONS)
        );
    }

    #[test]
    fn a_version_whose_key_is_not_the_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let path = publish(dir.path(), &release("01", now), 0o644, 3).unwrap();
        let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        fs::remove_file(path.join("key.pem")).unwrap();
        fs::write(path.join("key.pem"), other.serialize_pem()).unwrap();
        let error = read_current(dir.path()).unwrap_err().to_string();
        assert!(error.contains("not the certificate's"), "{error}");
    }
}
