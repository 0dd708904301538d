//! `ca-ceremony token`: initialise an *uninitialised* token. The tool makes the user
//! and SO PINs, never shows them, splits each M-of-N into one share file per holder,
//! and writes a salted HMAC of each PIN so that a wrong share set is refused later
//! before any `C_Login`. An initialised token is refused: re-initialising wipes it.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use carimbo_kms_pkcs11::{
    Pin, Pkcs11Provider, SlotInfo, TokenSelector, initialize_token, list_slots,
};
use serde_json::json;

use super::{Run, guarded, relative_name};
use crate::config::{TokenConfig, check_operators, load_ceremony};
use crate::credentials::{Credentials, PinCheckFile};
use crate::shares::{SecretCheck, generate_pin, split};
use crate::{CeremonyError, CeremonyKind, Outcome, Result, RunOptions};

/// A file-name-safe form of a holder's name.
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

pub(crate) async fn run(path: &Path, options: &RunOptions) -> Result<Outcome> {
    let loaded = load_ceremony::<TokenConfig>(path, "token")?;
    let config = &loaded.config;
    check_operators(&loaded, &config.operators)?;
    let holders = &config.pins.holders;
    if holders.iter().any(|h| slug(h).is_empty()) {
        return Err(loaded.error("pins.holders", "every holder needs a name"));
    }
    if holders.len() > 255 {
        return Err(loaded.error("pins.holders", "at most 255 holders"));
    }
    let count = holders.len();
    if config.pins.threshold < 2 || usize::from(config.pins.threshold) > count {
        return Err(loaded.error(
            "pins.threshold",
            format!(
                "threshold {} must be at least 2 and at most the number of holders ({count})",
                config.pins.threshold
            ),
        ));
    }
    let shares_dir = loaded.resolve(&config.outputs.shares_directory);
    if shares_dir.exists() {
        return Err(CeremonyError::OutputExists(shares_dir));
    }
    let share_path = |index: usize, holder: &str, pin: &str| -> PathBuf {
        shares_dir.join(format!("{}-{}.{pin}.share", index + 1, slug(holder)))
    };
    let pin_check = loaded.resolve(&config.outputs.pin_check);
    let transcript = loaded.resolve(&config.outputs.transcript);
    crate::outputs::Outputs::plan(&[pin_check.clone(), transcript.clone()])?;
    if options.validate_only {
        return Ok(Outcome {
            report: vec![format!("{}: valid token ceremony config", path.display())],
            ..Outcome::default()
        });
    }

    let credentials = Credentials::load(&Credentials::locate(options.credentials.as_deref())?)?;
    let token_config = credentials.token(&config.token.role)?.clone();
    let module = token_config.module.clone();
    let slots = tokio::task::spawn_blocking(move || list_slots(&module))
        .await
        .map_err(|e| CeremonyError::Refused(format!("listing slots: {e}")))??;
    let label = token_config.token_label.clone();
    if let Some(existing) = slots.iter().find(|s| s.initialized && s.label == label) {
        return Err(CeremonyError::Refused(format!(
            "a token labelled {label:?} is already initialised (serial {}); re-initialising would wipe it, so this ceremony refuses",
            existing.serial
        )));
    }
    let selector = match &token_config.token_serial {
        Some(serial) => {
            let slot = slots
                .iter()
                .find(|s| &s.serial == serial)
                .ok_or_else(|| CeremonyError::Refused(format!("no token with serial {serial}")))?;
            if slot.initialized {
                return Err(CeremonyError::Refused(format!(
                    "token {serial} ({:?}) is already initialised; re-initialising would wipe it, so this ceremony refuses",
                    slot.label
                )));
            }
            TokenSelector::Serial(serial.clone())
        }
        None => {
            if !slots
                .iter()
                .any(|s: &SlotInfo| s.token_present && !s.initialized)
            {
                return Err(CeremonyError::Refused(
                    "no uninitialised token is present".into(),
                ));
            }
            TokenSelector::FirstUninitialized
        }
    };
    if options.dry_run {
        return Ok(Outcome {
            report: vec![format!(
                "dry run: would initialise a token labelled {label:?}; PINs split {} of {count}",
                config.pins.threshold
            )],
            ..Outcome::default()
        });
    }

    // The share directory is created now (it did not exist) and removed again if the
    // ceremony fails before its files are written.
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&shares_dir)
        .map_err(|e| CeremonyError::io("create directory", &shares_dir, e))?;
    let mut share_files = Vec::new();
    for (index, holder) in holders.iter().enumerate() {
        share_files.push(share_path(index, holder, "user"));
        share_files.push(share_path(index, holder, "so"));
    }
    let mut outputs = share_files.clone();
    outputs.push(pin_check.clone());
    let run = match Run::start(
        CeremonyKind::Token,
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
        let user_pin = generate_pin()?;
        let so_pin = generate_pin()?;
        let user_check = SecretCheck::new(user_pin.as_bytes())?;
        let so_check = SecretCheck::new(so_pin.as_bytes())?;
        let threshold = config.pins.threshold;
        let user_shares = split(user_pin.as_bytes(), &format!("{label} user PIN"), threshold, holders)?;
        let so_shares = split(so_pin.as_bytes(), &format!("{label} SO PIN"), threshold, holders)?;

        let module = token_config.module.clone();
        let (init_label, init_selector) = (label.clone(), selector.clone());
        let (so, user) = (Pin::new(so_pin.to_string()), Pin::new(user_pin.to_string()));
        let slot = tokio::task::spawn_blocking(move || {
            initialize_token(&module, &init_selector, &init_label, &so, &user)
        })
        .await
        .map_err(|e| CeremonyError::Refused(format!("initialising the token: {e}")))??;
        run.hsm_changed();
        run.record(
            "initialize-token",
            json!({
                "label": slot.label,
                "serial": slot.serial,
                "manufacturer": slot.manufacturer,
                "model": slot.model,
                "has_rng": slot.has_rng,
                "threshold": threshold,
                "holders": holders,
            }),
        );
        // Prove the user PIN works before anyone relies on the shares.
        let mut check_config = token_config.clone();
        check_config.token_serial = Some(slot.serial.clone());
        Pkcs11Provider::open_with_pin(&check_config, Pin::new(user_pin.to_string())).await?;
        run.record("login-check", json!({ "user_pin": "accepted by the token" }));

        for (index, holder) in holders.iter().enumerate() {
            run.private_output(&share_path(index, holder, "user"), user_shares[index].to_text().as_bytes().to_vec())?;
            run.private_output(&share_path(index, holder, "so"), so_shares[index].to_text().as_bytes().to_vec())?;
        }
        let check_file = PinCheckFile {
            version: 1,
            token_label: slot.label.clone(),
            token_serial: slot.serial.clone(),
            threshold,
            holders: holders.clone(),
            user: user_check,
            so: so_check,
        };
        let text = toml::to_string(&check_file).map_err(|e| CeremonyError::Refused(e.to_string()))?;
        run.output(&pin_check, text.into_bytes())?;
        Ok(vec![
            format!(
                "initialised token {:?}, serial {} — put token-serial = {:?} in the credentials file",
                slot.label, slot.serial, slot.serial
            ),
            format!(
                "user and SO PINs split {threshold} of {count}; give each holder their two files under {}",
                relative_name(&transcript, &shares_dir)
            ),
        ])
    })
    .await;
    if result.is_err() && std::fs::read_dir(&shares_dir).is_ok_and(|mut d| d.next().is_none()) {
        let _ = std::fs::remove_dir(&shares_dir);
    }
    result
}
