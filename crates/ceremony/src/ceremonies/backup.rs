//! `ca-ceremony backup` and `restore`: a CA key generated "extractable only to trusted
//! keys" is wrapped (`CKM_AES_KEY_WRAP_PAD`) under a fresh AES-256 wrapping key from the
//! token's RNG; the wrapping key is imported by the SO as a trusted key only for the
//! moment of the wrap, then destroyed, and its shares go M-of-N to the holders. Restore
//! joins the shares (checked first), imports the wrapping key into the target token,
//! unwraps, proves the key with a test signature against the recorded public key (and
//! the certificate when given), and destroys the wrapping key again. See
//! `docs/ceremony-backup.md` for what the token enforces.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use carimbo_kms::{KeyProvider, SignatureAlgorithm};
use carimbo_kms_pkcs11::Pkcs11Provider;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use super::{Run, guarded, key_reference_toml, read_pem, relative_name};
use crate::config::{BackupConfig, RestoreConfig, check_label, check_operators, load_ceremony};
use crate::credentials::Credentials;
use crate::shares::{SecretCheck, ShareFile, join, split};
use crate::transcript::sha256_hex;
use crate::{CeremonyError, CeremonyKind, Outcome, Result, RunOptions};

/// The backup file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct BackupFile {
    version: u32,
    format: String,
    key_label: String,
    algorithm: String,
    public_key: String,
    mechanism: String,
    wrapped_key: String,
    source_token_label: String,
    source_token_serial: String,
    threshold: u8,
    holders: Vec<String>,
    wrapping_key_check: SecretCheck,
}

const BACKUP_FORMAT: &str = "carimbo-key-backup";

fn slug(name: &str) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    slug.split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

/// A label for the wrapping key that exists only during one ceremony.
fn wrapping_label() -> Result<String> {
    let mut bytes = [0u8; 6];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| CeremonyError::Refused("random generator failed".into()))?;
    Ok(format!("carimbo-backup-wrap-{}", hex::encode(bytes)))
}

/// Runs `work` with the trusted wrapping key imported into `token`, and destroys the
/// wrapping key afterwards whatever happened.
async fn with_wrapping_key<T>(
    token: &Pkcs11Provider,
    so_pin: &carimbo_kms_pkcs11::Pin,
    key: &Zeroizing<[u8; 32]>,
    work: impl AsyncFnOnce(&str) -> Result<T>,
) -> Result<T> {
    let label = wrapping_label()?;
    token
        .import_trusted_wrapping_key(so_pin, &label, key)
        .await?;
    let result = work(&label).await;
    let destroyed = token.destroy_wrapping_key(&label).await;
    let value = result?;
    destroyed?;
    Ok(value)
}

pub(crate) async fn backup(path: &Path, options: &RunOptions) -> Result<Outcome> {
    let loaded = load_ceremony::<BackupConfig>(path, "backup")?;
    let config = &loaded.config;
    check_operators(&loaded, &config.operators)?;
    check_label(&loaded, "key.label", &config.key.label)?;
    let holders = &config.wrapping_key.holders;
    let threshold = config.wrapping_key.threshold;
    if threshold < 2 || usize::from(threshold) > holders.len() || holders.len() > 255 {
        return Err(loaded.error(
            "wrapping-key.threshold",
            format!(
                "must be at least 2 and at most the number of holders ({})",
                holders.len()
            ),
        ));
    }
    if holders.iter().any(|h| slug(h).is_empty()) {
        return Err(loaded.error("wrapping-key.holders", "every holder needs a name"));
    }
    let shares_dir = loaded.resolve(&config.outputs.shares_directory);
    if shares_dir.exists() {
        return Err(CeremonyError::OutputExists(shares_dir));
    }
    let backup_path = loaded.resolve(&config.outputs.backup);
    let transcript = loaded.resolve(&config.outputs.transcript);
    crate::outputs::Outputs::plan(&[backup_path.clone(), transcript.clone()])?;
    if options.validate_only {
        return Ok(Outcome {
            report: vec![format!("{}: valid backup ceremony config", path.display())],
            ..Outcome::default()
        });
    }
    let credentials = Credentials::load(&Credentials::locate(options.credentials.as_deref())?)?;
    // The SO PIN is joined and checked before any login.
    let so_pin = credentials.security_officer_pin(&config.key.token)?;
    let token = credentials.open_pkcs11(&config.key.token).await?;
    let reference = token.find_key(&config.key.label).await?.ok_or_else(|| {
        loaded.error(
            "key.label",
            format!(
                "no key labelled {:?} in token {}",
                config.key.label,
                token.token_label()
            ),
        )
    })?;
    let protection = token.protection(&reference).await?;
    if !protection.is_exportable_only_to_trusted() {
        return Err(loaded.error(
            "key.label",
            "this key was not generated for backup (backup = \"wrap-with-trusted\"); it cannot leave its token",
        ));
    }
    let algorithm: SignatureAlgorithm = config.key.algorithm.0;
    let spki = token
        .signing_key(&reference, algorithm)
        .await?
        .public_key_der()
        .to_vec();
    if options.dry_run {
        return Ok(Outcome {
            report: vec![format!(
                "dry run: would back up {:?} from token {}",
                config.key.label,
                token.token_label()
            )],
            ..Outcome::default()
        });
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&shares_dir)
        .map_err(|e| CeremonyError::io("create directory", &shares_dir, e))?;
    let share_paths: Vec<PathBuf> = holders
        .iter()
        .enumerate()
        .map(|(i, h)| shares_dir.join(format!("{}-{}.wrapping-key.share", i + 1, slug(h))))
        .collect();
    let mut outputs = share_paths.clone();
    outputs.push(backup_path.clone());
    let run = match Run::start(
        CeremonyKind::Backup,
        &loaded,
        &outputs,
        transcript.clone(),
        &config.operators,
        config.description.as_deref(),
    ) {
        Ok(run) => run,
        Err(error) => {
            let _ = std::fs::remove_dir(&shares_dir);
            return Err(error);
        }
    };
    let result = guarded(run, async |run: &mut Run| {
        let random = Zeroizing::new(token.random_bytes(32).await?);
        let mut wrapping_key = Zeroizing::new([0u8; 32]);
        wrapping_key.copy_from_slice(&random);
        let check = SecretCheck::new(&wrapping_key[..])?;
        let shares = split(
            &wrapping_key[..],
            &format!("backup wrapping key of {}", config.key.label),
            threshold,
            holders,
        )?;
        let wrapped = with_wrapping_key(&token, &so_pin, &wrapping_key, async |label: &str| {
            Ok(token.wrap_for_backup(&reference, label).await?)
        })
        .await?;
        run.hsm_changed();
        run.record(
            "wrap",
            json!({
                "token": { "label": token.token_label(), "serial": token.token_serial() },
                "key_label": config.key.label,
                "public_key_sha256": sha256_hex(&spki),
                "wrapped_key_sha256": sha256_hex(&wrapped),
                "mechanism": "CKM_AES_KEY_WRAP_PAD",
                "wrapping_key": "imported as trusted for the wrap, then destroyed",
                "threshold": threshold,
                "holders": holders,
            }),
        );
        let file = BackupFile {
            version: 1,
            format: BACKUP_FORMAT.into(),
            key_label: config.key.label.clone(),
            algorithm: algorithm.to_string(),
            public_key: hex::encode(&spki),
            mechanism: "CKM_AES_KEY_WRAP_PAD".into(),
            wrapped_key: hex::encode(&wrapped),
            source_token_label: token.token_label().to_owned(),
            source_token_serial: token.token_serial().to_owned(),
            threshold,
            holders: holders.clone(),
            wrapping_key_check: check,
        };
        let text = toml::to_string(&file).map_err(|e| CeremonyError::Refused(e.to_string()))?;
        for (path, share) in share_paths.iter().zip(&shares) {
            run.private_output(path, share.to_text().as_bytes().to_vec())?;
        }
        run.private_output(&backup_path, text.into_bytes())?;
        Ok(vec![format!(
            "backed up {:?}; wrapping key split {threshold} of {}; shares under {}",
            config.key.label,
            holders.len(),
            relative_name(&transcript, &shares_dir)
        )])
    })
    .await;
    if result.is_err() && std::fs::read_dir(&shares_dir).is_ok_and(|mut d| d.next().is_none()) {
        let _ = std::fs::remove_dir(&shares_dir);
    }
    result
}

pub(crate) async fn restore(path: &Path, options: &RunOptions) -> Result<Outcome> {
    let loaded = load_ceremony::<RestoreConfig>(path, "restore")?;
    let config = &loaded.config;
    check_operators(&loaded, &config.operators)?;
    check_label(&loaded, "target.label", &config.target.label)?;
    let backup_path = loaded.resolve(&config.backup.file);
    let text = std::fs::read_to_string(&backup_path).map_err(|e| {
        loaded.error(
            "backup.file",
            format!("cannot read {}: {e}", backup_path.display()),
        )
    })?;
    let backup: BackupFile = toml::from_str(&text)
        .map_err(|e| loaded.error("backup.file", format!("not a backup file: {}", e.message())))?;
    if backup.format != BACKUP_FORMAT || backup.version != 1 {
        return Err(loaded.error("backup.file", "not a version 1 carimbo key backup"));
    }
    let algorithm: SignatureAlgorithm = backup
        .algorithm
        .parse()
        .map_err(|e: carimbo_kms::Error| loaded.error("backup.file", e.to_string()))?;
    let decode = |field: &str, value: &str| {
        hex::decode(value).map_err(|_| loaded.error("backup.file", format!("{field} is not hex")))
    };
    let spki = decode("public-key", &backup.public_key)?;
    let wrapped = decode("wrapped-key", &backup.wrapped_key)?;
    if let Some(certificate) = &config.backup.certificate {
        let der = read_pem(
            &loaded,
            "backup.certificate",
            &loaded.resolve(certificate),
            "CERTIFICATE",
        )?;
        let issuer = carimbo_pki::IssuerInfo::from_certificate(&der, algorithm)
            .map_err(|e| loaded.error("backup.certificate", e.to_string()))?;
        if issuer.subject_public_key_info() != spki.as_slice() {
            return Err(loaded.error(
                "backup.certificate",
                "is not the certificate of the backed-up key",
            ));
        }
    }
    // The wrapping key is joined and checked before any token is touched.
    let shares = config
        .backup
        .shares
        .iter()
        .map(|p| {
            let path = loaded.resolve(p);
            let text = Zeroizing::new(
                std::fs::read_to_string(&path).map_err(|e| CeremonyError::io("read", &path, e))?,
            );
            ShareFile::parse(&text, &path)
        })
        .collect::<Result<Vec<_>>>()?;
    let secret = join(&shares, "backup wrapping key", &backup.wrapping_key_check)?;
    let mut wrapping_key = Zeroizing::new([0u8; 32]);
    if secret.len() != 32 {
        return Err(CeremonyError::Refused(
            "the joined wrapping key is not 32 bytes".into(),
        ));
    }
    wrapping_key.copy_from_slice(&secret);
    let outputs = [loaded.resolve(&config.outputs.key_reference)];
    let transcript = loaded.resolve(&config.outputs.transcript);
    crate::outputs::Outputs::plan(&[outputs.to_vec(), vec![transcript.clone()]].concat())?;
    if options.validate_only {
        return Ok(Outcome {
            report: vec![format!(
                "{}: valid restore ceremony config; the shares rebuild the wrapping key",
                path.display()
            )],
            ..Outcome::default()
        });
    }
    let credentials = Credentials::load(&Credentials::locate(options.credentials.as_deref())?)?;
    let so_pin = credentials.security_officer_pin(&config.target.token)?;
    let token = credentials.open_pkcs11(&config.target.token).await?;
    if token.label_in_use(&config.target.label).await? {
        return Err(loaded.error(
            "target.label",
            format!(
                "label {:?} is already used in token {}",
                config.target.label,
                token.token_label()
            ),
        ));
    }
    if options.dry_run {
        return Ok(Outcome {
            report: vec![format!(
                "dry run: would restore {:?} into token {}",
                backup.key_label,
                token.token_label()
            )],
            ..Outcome::default()
        });
    }
    let run = Run::start(
        CeremonyKind::Restore,
        &loaded,
        &outputs,
        transcript,
        &config.operators,
        config.description.as_deref(),
    )?;
    guarded(run, async |run: &mut Run| {
        let target_label = config.target.label.clone();
        let restored = with_wrapping_key(&token, &so_pin, &wrapping_key, async |label: &str| {
            Ok(token.restore_from_backup(&wrapped, &spki, algorithm, label, &target_label).await?)
        })
        .await?;
        run.hsm_changed();
        // One more proof, through the public API: sign and verify against the backup's
        // (and so the certificate's) public key.
        let key = token.signing_key(&restored.reference, algorithm).await?;
        let message = b"carimbo restore check";
        let signature = key.sign(message).await?;
        carimbo_kms::verify_signature(algorithm, &spki, message, &signature)?;
        run.record(
            "restore",
            json!({
                "backup_sha256": sha256_hex(text.as_bytes()),
                "source_token": { "label": backup.source_token_label, "serial": backup.source_token_serial },
                "target_token": { "label": token.token_label(), "serial": token.token_serial() },
                "label": target_label,
                "reference": restored.reference.to_string(),
                "public_key_sha256": sha256_hex(&spki),
                "test_signature": "verified against the backed-up public key",
            }),
        );
        run.output(&outputs[0], key_reference_toml(&token, &target_label, &restored.reference, algorithm, &spki))?;
        Ok(vec![format!(
            "restored {:?} into token {} ({}); test signature verified",
            target_label,
            token.token_label(),
            token.token_serial()
        )])
    })
    .await
}
