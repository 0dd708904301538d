//! `ca-ceremony cross-sign`: an issuer signs a certificate for an existing CA key,
//! keeping the original's subject and subject key identifier (a new root cross-signed
//! by the old one, or an intermediate certified by a second root).

use std::path::Path;

use carimbo_pki::{
    CertificateProfile, CertificateTemplate, IntermediateUsage, IssuerInfo, SerialNumber,
    prepare_certificate,
};
use serde_json::json;
use time::OffsetDateTime;

use super::{Run, findings_json, guarded, open_issuer_key, read_pem, serial_from};
use crate::config::{
    CrossSignConfig, Usage, check_http_urls, check_label, check_operators, load_ceremony,
};
use crate::credentials::Credentials;
use crate::keystore::CeremonyToken;
use crate::transcript::sha256_hex;
use crate::{CeremonyError, CeremonyKind, Outcome, Result, RunOptions};

pub(crate) async fn run(path: &Path, options: &RunOptions) -> Result<Outcome> {
    let loaded = load_ceremony::<CrossSignConfig>(path, "cross-sign")?;
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
    let algorithm = config.issuer.key_algorithm.0;
    let issuer_certificate = read_pem(
        &loaded,
        "issuer.certificate",
        &loaded.resolve(&config.issuer.certificate),
        "CERTIFICATE",
    )?;
    let issuer = IssuerInfo::from_certificate(&issuer_certificate, algorithm)
        .map_err(|e| loaded.error("issuer.certificate", e.to_string()))?;
    let original_certificate = read_pem(
        &loaded,
        "original.certificate",
        &loaded.resolve(&config.original.certificate),
        "CERTIFICATE",
    )?;
    let original =
        IssuerInfo::from_certificate(&original_certificate, config.original.key_algorithm.0)
            .map_err(|e| loaded.error("original.certificate", e.to_string()))?;
    if original.subject_public_key_info() == issuer.subject_public_key_info() {
        return Err(loaded.error(
            "original.certificate",
            "is the issuer itself; a cross-certificate certifies another CA",
        ));
    }
    let usage = section.usage.map(|usage| match usage {
        Usage::Server => IntermediateUsage::Server,
        Usage::Workload => IntermediateUsage::Workload,
    });
    let template = |serial: SerialNumber| CertificateTemplate {
        profile: CertificateProfile::CrossCertificate {
            usage,
            path_len: section.path_len,
        },
        subject: original.subject().clone(),
        subject_public_key_info: original.subject_public_key_info().to_vec(),
        serial,
        not_before: section.not_before.0,
        not_after: section.not_after.0,
        crl_distribution_points: section.crl_distribution_points.clone(),
        ca_issuers: section.ca_issuers.clone(),
        ocsp_responders: Vec::new(),
        name_constraints: None,
        subject_key_identifier: Some(original.subject_key_identifier().to_vec()),
    };
    let outputs = [loaded.resolve(&config.outputs.certificate)];
    let transcript = loaded.resolve(&config.outputs.transcript);
    crate::outputs::Outputs::plan(&[outputs.to_vec(), vec![transcript.clone()]].concat())?;
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
                "{}: valid cross-sign ceremony config; the certificate passes the lints",
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
                "dry run: would cross-sign {} with {:?}",
                original.subject(),
                config.issuer.key_label
            )],
            ..Outcome::default()
        });
    }
    let run = Run::start(
        CeremonyKind::CrossSign,
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
                "original_certificate_sha256": sha256_hex(&original_certificate),
                "issuer_key": { "token": token.token_label(), "serial": token.token_serial(), "label": config.issuer.key_label },
            }),
        );
        let (serial, serial_source) = serial_from(token).await?;
        let prepared = prepare_certificate(&template(serial.clone()), &issuer, OffsetDateTime::now_utc())?;
        run.record(
            "lint",
            json!({
                "tbs_sha256": sha256_hex(prepared.tbs_der()),
                "findings": findings_json(prepared.findings()),
                "serial": serial.to_hex(),
                "serial_source": serial_source,
            }),
        );
        let der = prepared.sign(key.as_ref()).await?;
        run.record("sign", json!({ "certificate_sha256": sha256_hex(&der) }));
        run.output(&outputs[0], carimbo_pki::pem_encode("CERTIFICATE", &der).into_bytes())?;
        Ok(vec![format!(
            "cross-certificate for {} issued by {}: serial {}, SHA-256 {}",
            original.subject(),
            issuer.subject(),
            serial.to_hex(),
            sha256_hex(&der)
        )])
    })
    .await
}
