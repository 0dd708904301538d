//! `ca-ceremony key`: generate a CA key pair in a token (e.g. an online intermediate's
//! key in the CA token) and write its public key and the key reference the service
//! loads.

use std::path::Path;

use carimbo_kms_pkcs11::BackupPolicy;
use serde_json::json;

use super::{Run, guarded, key_reference_toml, public_key_pem};
use crate::config::{Backup, KeyConfig, check_label, check_operators, load_ceremony};
use crate::credentials::Credentials;
use crate::keystore::CeremonyToken;
use crate::transcript::sha256_hex;
use crate::{CeremonyError, CeremonyKind, Outcome, Result, RunOptions};

pub(crate) async fn run(path: &Path, options: &RunOptions) -> Result<Outcome> {
    let loaded = load_ceremony::<KeyConfig>(path, "key")?;
    let config = &loaded.config;
    check_operators(&loaded, &config.operators)?;
    check_label(&loaded, "key.label", &config.key.label)?;
    let outputs = [
        loaded.resolve(&config.outputs.public_key),
        loaded.resolve(&config.outputs.key_reference),
    ];
    let transcript = loaded.resolve(&config.outputs.transcript);
    crate::outputs::Outputs::plan(&[outputs.to_vec(), vec![transcript.clone()]].concat())?;
    if options.validate_only {
        return Ok(Outcome {
            report: vec![format!("{}: valid key ceremony config", path.display())],
            ..Outcome::default()
        });
    }
    let credentials = Credentials::load(&Credentials::locate(options.credentials.as_deref())?)?;
    let token_box = credentials.open(&config.key.token).await?;
    let token: &dyn CeremonyToken = token_box.as_ref();
    if token.label_in_use(&config.key.label).await? {
        return Err(loaded.error(
            "key.label",
            format!(
                "label {:?} is already used in token {} ({})",
                config.key.label,
                token.token_label(),
                token.token_serial()
            ),
        ));
    }
    if options.dry_run {
        return Ok(Outcome {
            report: vec![format!(
                "dry run: would generate {} key {:?} in token {}",
                config.key.algorithm.0,
                config.key.label,
                token.token_label()
            )],
            ..Outcome::default()
        });
    }
    let run = Run::start(
        CeremonyKind::Key,
        &loaded,
        &outputs,
        transcript,
        &config.operators,
        config.description.as_deref(),
    )?;
    guarded(run, async |run: &mut Run| {
        let algorithm = config.key.algorithm.0;
        let generated = token
            .generate_labeled(
                &config.key.label,
                algorithm,
                backup_policy(config.key.backup),
            )
            .await?;
        run.hsm_changed();
        let spki = generated
            .public_key
            .ok_or_else(|| CeremonyError::Refused("the token returned no public key".into()))?;
        run.record(
            "generate-key",
            json!({
                "token": { "label": token.token_label(), "serial": token.token_serial() },
                "label": config.key.label,
                "algorithm": algorithm.to_string(),
                "backup": format!("{:?}", config.key.backup),
                "reference": generated.reference.to_string(),
                "public_key": hex::encode(&spki),
                "public_key_sha256": sha256_hex(&spki),
            }),
        );
        run.output(&outputs[0], public_key_pem(&spki))?;
        let reference = key_reference_toml(
            token,
            &config.key.label,
            &generated.reference,
            algorithm,
            &spki,
        );
        run.output(&outputs[1], reference)?;
        Ok(vec![format!(
            "generated {algorithm} key {:?} in token {} ({}); public key SHA-256 {}",
            config.key.label,
            token.token_label(),
            token.token_serial(),
            sha256_hex(&spki)
        )])
    })
    .await
}

pub(crate) fn backup_policy(backup: Backup) -> BackupPolicy {
    match backup {
        Backup::None => BackupPolicy::None,
        Backup::WrapWithTrusted => BackupPolicy::WrapWithTrusted,
    }
}
