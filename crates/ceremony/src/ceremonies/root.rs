//! `ca-ceremony root`: generate the root key in the offline token and self-sign the
//! root certificate, linted before the HSM signs.

use std::path::Path;

use carimbo_pki::{
    CertificateProfile, CertificateTemplate, IssuerInfo, SerialNumber, prepare_certificate,
};
use serde_json::json;
use time::OffsetDateTime;

use super::key::backup_policy;
use super::{
    Run, findings_json, guarded, key_reference_toml, public_key_pem, serial_from, subject_name,
    throwaway_spki,
};
use crate::config::{RootConfig, check_label, check_operators, load_ceremony};
use crate::credentials::Credentials;
use crate::keystore::CeremonyToken;
use crate::transcript::sha256_hex;
use crate::{CeremonyError, CeremonyKind, Outcome, Result, RunOptions};

pub(crate) async fn run(path: &Path, options: &RunOptions) -> Result<Outcome> {
    let loaded = load_ceremony::<RootConfig>(path, "root")?;
    let config = &loaded.config;
    check_operators(&loaded, &config.operators)?;
    check_label(&loaded, "key.label", &config.key.label)?;
    if !config.certificate.extended_key_usage.is_empty() {
        return Err(loaded.error(
            "certificate.extended-key-usage",
            "a root carries no extended key usage (RFC 5280 §4.2.1.12; EKU in a CA constrains every certificate below it)",
        ));
    }
    let algorithm = config.key.algorithm.0;
    let subject = subject_name(&loaded, "certificate.subject", &config.certificate.subject)?;
    let template = |spki: Vec<u8>, serial: SerialNumber| CertificateTemplate {
        profile: CertificateProfile::Root,
        subject: subject.clone(),
        subject_public_key_info: spki,
        serial,
        not_before: config.certificate.not_before.0,
        not_after: config.certificate.not_after.0,
        crl_distribution_points: Vec::new(),
        ca_issuers: Vec::new(),
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: None,
    };
    let outputs = [
        loaded.resolve(&config.outputs.certificate),
        loaded.resolve(&config.outputs.public_key),
        loaded.resolve(&config.outputs.key_reference),
    ];
    let transcript = loaded.resolve(&config.outputs.transcript);
    crate::outputs::Outputs::plan(&[outputs.to_vec(), vec![transcript.clone()]].concat())?;

    // Lint the certificate this config describes with a throwaway key, before any
    // token is opened: a bad validity or name fails here, with nothing changed.
    let mut serial_bytes = [0u8; 20];
    aws_lc_rs::rand::fill(&mut serial_bytes)
        .map_err(|_| CeremonyError::Refused("random generator failed".into()))?;
    let rehearsal = template(
        throwaway_spki(algorithm)?,
        SerialNumber::from_random_bytes(&serial_bytes)?,
    );
    let rehearsal_issuer = IssuerInfo::self_signed(&rehearsal, algorithm)?;
    prepare_certificate(&rehearsal, &rehearsal_issuer, OffsetDateTime::now_utc())
        .map_err(|e| loaded.error("certificate", e.to_string()))?;
    if options.validate_only {
        return Ok(Outcome {
            report: vec![format!(
                "{}: valid root ceremony config; the certificate passes the lints",
                path.display()
            )],
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
                "dry run: would generate {algorithm} key {:?} in token {} and self-sign {}",
                config.key.label,
                token.token_label(),
                subject
            )],
            ..Outcome::default()
        });
    }
    let run = Run::start(
        CeremonyKind::Root,
        &loaded,
        &outputs,
        transcript,
        &config.operators,
        config.description.as_deref(),
    )?;
    guarded(run, async |run: &mut Run| {
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
            .clone()
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
        let (serial, serial_source) = serial_from(token).await?;
        let certificate = template(spki.clone(), serial.clone());
        let issuer = IssuerInfo::self_signed(&certificate, algorithm)?;
        let prepared = prepare_certificate(&certificate, &issuer, OffsetDateTime::now_utc())?;
        run.record(
            "lint",
            json!({
                "tbs_sha256": sha256_hex(prepared.tbs_der()),
                "lint_certificate_sha256": sha256_hex(prepared.lint_certificate_der()),
                "findings": findings_json(prepared.findings()),
                "serial": serial.to_hex(),
                "serial_source": serial_source,
            }),
        );
        let key = token.signing_key(&generated.reference, algorithm).await?;
        let der = prepared.sign(key.as_ref()).await?;
        run.record(
            "sign",
            json!({ "certificate_sha256": sha256_hex(&der), "subject": subject.to_string() }),
        );
        run.output(
            &outputs[0],
            carimbo_pki::pem_encode("CERTIFICATE", &der).into_bytes(),
        )?;
        run.output(&outputs[1], public_key_pem(&spki))?;
        let reference = key_reference_toml(
            token,
            &config.key.label,
            &generated.reference,
            algorithm,
            &spki,
        );
        run.output(&outputs[2], reference)?;
        Ok(vec![format!(
            "root {subject}: serial {}, certificate SHA-256 {}",
            serial.to_hex(),
            sha256_hex(&der)
        )])
    })
    .await
}
