//! `ca-ceremony intermediate`: the root key signs an online intermediate over a public
//! key generated in the online CA token (by a `key` ceremony).

use std::path::Path;

use carimbo_pki::{
    CertificateProfile, CertificateTemplate, IntermediateUsage, IssuerInfo, NameConstraints,
    SerialNumber, prepare_certificate,
};
use serde_json::json;
use time::OffsetDateTime;

use super::{Run, findings_json, guarded, open_issuer_key, read_pem, serial_from, subject_name};
use crate::config::{
    IntermediateConfig, Usage, check_http_urls, check_label, check_name_constraints,
    check_operators, load_ceremony,
};
use crate::credentials::Credentials;
use crate::keystore::CeremonyToken;
use crate::transcript::sha256_hex;
use crate::{CeremonyError, CeremonyKind, Outcome, Result, RunOptions};

pub(crate) async fn run(path: &Path, options: &RunOptions) -> Result<Outcome> {
    let loaded = load_ceremony::<IntermediateConfig>(path, "intermediate")?;
    let config = &loaded.config;
    check_operators(&loaded, &config.operators)?;
    check_label(&loaded, "issuer.key-label", &config.issuer.key_label)?;
    let section = &config.certificate;
    check_http_urls(
        &loaded,
        "certificate.crl-distribution-points",
        &section.crl_distribution_points,
        true,
    )?;
    check_http_urls(&loaded, "certificate.ca-issuers", &section.ca_issuers, true)?;
    if section.path_len.is_some_and(|n| n != 0) {
        return Err(loaded.error(
            "certificate.path-len",
            "intermediates are issued with pathLen 0: they sign end-entity certificates only",
        ));
    }
    if let Some(constraints) = &section.name_constraints {
        check_name_constraints(&loaded, "certificate.name-constraints", constraints)?;
    }
    let algorithm = config.issuer.key_algorithm.0;
    let issuer_certificate = read_pem(
        &loaded,
        "issuer.certificate",
        &loaded.resolve(&config.issuer.certificate),
        "CERTIFICATE",
    )?;
    let issuer = IssuerInfo::from_certificate(&issuer_certificate, algorithm)
        .map_err(|e| loaded.error("issuer.certificate", e.to_string()))?;
    let subject_key = read_pem(
        &loaded,
        "subject-key.public-key",
        &loaded.resolve(&config.subject_key.public_key),
        "PUBLIC KEY",
    )?;
    let subject = subject_name(&loaded, "certificate.subject", &section.subject)?;
    let usage = match section.usage {
        Usage::Server => IntermediateUsage::Server,
        Usage::Workload => IntermediateUsage::Workload,
    };
    let name_constraints = section.name_constraints.as_ref().map(|nc| NameConstraints {
        permitted_dns: nc.permitted_dns.clone(),
        excluded_dns: nc.excluded_dns.clone(),
        permitted_uri_hosts: nc.permitted_uri_hosts.clone(),
    });
    let template = |serial: SerialNumber| CertificateTemplate {
        profile: CertificateProfile::Intermediate { usage },
        subject: subject.clone(),
        subject_public_key_info: subject_key.clone(),
        serial,
        not_before: section.not_before.0,
        not_after: section.not_after.0,
        crl_distribution_points: section.crl_distribution_points.clone(),
        ca_issuers: section.ca_issuers.clone(),
        ocsp_responders: Vec::new(),
        name_constraints: name_constraints.clone(),
        subject_key_identifier: None,
    };
    let outputs = [loaded.resolve(&config.outputs.certificate)];
    let transcript = loaded.resolve(&config.outputs.transcript);
    crate::outputs::Outputs::plan(&[outputs.to_vec(), vec![transcript.clone()]].concat())?;

    // The whole certificate is known before the HSM: lint it now (throwaway signature).
    let mut serial_bytes = [0u8; 20];
    aws_lc_rs::rand::fill(&mut serial_bytes)
        .map_err(|_| CeremonyError::Refused("random generator failed".into()))?;
    prepare_certificate(
        &template(SerialNumber::from_random_bytes(&serial_bytes)?),
        &issuer,
        OffsetDateTime::now_utc(),
    )
    .map_err(|e| loaded.error("certificate", e.to_string()))?;
    if options.validate_only {
        return Ok(Outcome {
            report: vec![format!(
                "{}: valid intermediate ceremony config; the certificate passes the lints",
                path.display()
            )],
            ..Outcome::default()
        });
    }

    let credentials = Credentials::load(&Credentials::locate(options.credentials.as_deref())?)?;
    let token_box = credentials.open(&config.issuer.token).await?;
    let token: &dyn CeremonyToken = token_box.as_ref();
    let key = open_issuer_key(
        token,
        &config.issuer.key_label,
        algorithm,
        issuer.subject_public_key_info(),
    )
    .await?;
    if options.dry_run {
        return Ok(Outcome {
            report: vec![format!(
                "dry run: would sign {usage:?} intermediate {subject} with {:?} in token {}",
                config.issuer.key_label,
                token.token_label()
            )],
            ..Outcome::default()
        });
    }
    let run = Run::start(
        CeremonyKind::Intermediate,
        &loaded,
        &outputs,
        transcript,
        &config.operators,
        config.description.as_deref(),
    )?;
    guarded(run, async |run: &mut Run| {
        run.record(
            "inputs",
            json!({
                "issuer_certificate_sha256": sha256_hex(&issuer_certificate),
                "issuer_key": { "token": token.token_label(), "serial": token.token_serial(), "label": config.issuer.key_label },
                "subject_public_key": hex::encode(&subject_key),
                "subject_public_key_sha256": sha256_hex(&subject_key),
            }),
        );
        let (serial, serial_source) = serial_from(token).await?;
        let prepared = prepare_certificate(&template(serial.clone()), &issuer, OffsetDateTime::now_utc())?;
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
        let der = prepared.sign(key.as_ref()).await?;
        run.record(
            "sign",
            json!({ "certificate_sha256": sha256_hex(&der), "subject": subject.to_string() }),
        );
        run.output(&outputs[0], carimbo_pki::pem_encode("CERTIFICATE", &der).into_bytes())?;
        Ok(vec![format!(
            "intermediate {subject} ({usage:?}): serial {}, certificate SHA-256 {}",
            serial.to_hex(),
            sha256_hex(&der)
        )])
    })
    .await
}
