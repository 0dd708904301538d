//! `ca-ceremony crl`: the root's CRL of revoked CA certificates (ARL) — the only way
//! the status of intermediates is published. CRL numbers must increase.

use std::path::Path;

use carimbo_pki::{
    CrlKind, CrlTemplate, IssuerInfo, RevocationReason, RevokedCertificate, SerialNumber,
    prepare_crl,
};
use serde_json::json;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate, parse_x509_crl};

use super::{Run, findings_json, guarded, open_issuer_key, read_pem};
use crate::config::{CrlConfig, check_label, check_operators, load_ceremony};
use crate::credentials::Credentials;
use crate::keystore::CeremonyToken;
use crate::transcript::sha256_hex;
use crate::{CeremonyKind, Outcome, Result, RunOptions};

/// Longest time between thisUpdate and nextUpdate of a root CRL.
const MAX_ARL_VALIDITY_DAYS: i64 = 366;

pub(crate) async fn run(path: &Path, options: &RunOptions) -> Result<Outcome> {
    let loaded = load_ceremony::<CrlConfig>(path, "crl")?;
    let config = &loaded.config;
    check_operators(&loaded, &config.operators)?;
    check_label(&loaded, "issuer.key-label", &config.issuer.key_label)?;
    let algorithm = config.issuer.key_algorithm.0;
    let issuer_certificate = read_pem(
        &loaded,
        "issuer.certificate",
        &loaded.resolve(&config.issuer.certificate),
        "CERTIFICATE",
    )?;
    let issuer = IssuerInfo::from_certificate(&issuer_certificate, algorithm)
        .map_err(|e| loaded.error("issuer.certificate", e.to_string()))?;
    let crl = &config.crl;
    if crl.number == 0 {
        return Err(loaded.error("crl.number", "CRL numbers start at 1"));
    }
    if crl.next_update.0 <= crl.this_update.0 {
        return Err(loaded.error("crl.next-update", "must be after this-update"));
    }
    if crl.next_update.0 - crl.this_update.0 > time::Duration::days(MAX_ARL_VALIDITY_DAYS) {
        return Err(loaded.error(
            "crl.next-update",
            "a root CRL must be reissued within one year of this-update",
        ));
    }
    if let Some(previous) = &crl.previous {
        let der = read_pem(
            &loaded,
            "crl.previous",
            &loaded.resolve(previous),
            "X509 CRL",
        )?;
        let (_, parsed) = parse_x509_crl(&der)
            .map_err(|e| loaded.error("crl.previous", format!("not a CRL: {e}")))?;
        let previous_number = parsed
            .crl_number()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| loaded.error("crl.previous", "the previous CRL has no CRL number"))?;
        if crl.number <= previous_number {
            return Err(loaded.error(
                "crl.number",
                format!("must be greater than the previous CRL's number {previous_number}"),
            ));
        }
    }
    let mut revoked = Vec::new();
    for (index, entry) in crl.revoked.iter().enumerate() {
        let field = |name: &str| format!("crl.revoked[{index}].{name}");
        let serial = match (&entry.certificate, &entry.serial) {
            (Some(certificate), None) => {
                let der = read_pem(
                    &loaded,
                    &field("certificate"),
                    &loaded.resolve(certificate),
                    "CERTIFICATE",
                )?;
                let (_, parsed) = X509Certificate::from_der(&der).map_err(|e| {
                    loaded.error(&field("certificate"), format!("not a certificate: {e}"))
                })?;
                if parsed.issuer().as_raw() != issuer_subject_raw(&issuer_certificate)?.as_slice() {
                    return Err(
                        loaded.error(&field("certificate"), "was not issued by this CRL's issuer")
                    );
                }
                SerialNumber::from_hex(&hex::encode(parsed.raw_serial()))?
            }
            (None, Some(hex)) => SerialNumber::from_hex(hex)
                .map_err(|e| loaded.error(&field("serial"), e.to_string()))?,
            _ => {
                return Err(loaded.error(
                    &format!("crl.revoked[{index}]"),
                    "give exactly one of certificate or serial",
                ));
            }
        };
        let reason = entry
            .reason
            .as_deref()
            .map(|r| r.parse::<RevocationReason>())
            .transpose()
            .map_err(|e| loaded.error(&field("reason"), e.to_string()))?;
        revoked.push(RevokedCertificate {
            serial,
            revocation_time: entry.revocation_time.0,
            reason,
        });
    }
    let template = CrlTemplate {
        kind: CrlKind::Arl,
        crl_number: crl.number,
        this_update: crl.this_update.0,
        next_update: crl.next_update.0,
        revoked,
        issuing_distribution_point: None,
    };
    let outputs = [loaded.resolve(&config.outputs.crl)];
    let transcript = loaded.resolve(&config.outputs.transcript);
    crate::outputs::Outputs::plan(&[outputs.to_vec(), vec![transcript.clone()]].concat())?;
    prepare_crl(&template, &issuer, OffsetDateTime::now_utc())
        .map_err(|e| loaded.error("crl", e.to_string()))?;
    if options.validate_only {
        return Ok(Outcome {
            report: vec![format!(
                "{}: valid CRL ceremony config; the CRL passes the lints",
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
                "dry run: would sign CRL number {} with {:?}",
                crl.number, config.issuer.key_label
            )],
            ..Outcome::default()
        });
    }
    let run = Run::start(
        CeremonyKind::Crl,
        &loaded,
        &outputs,
        transcript,
        &config.operators,
        config.description.as_deref(),
    )?;
    guarded(run, async |run: &mut Run| {
        let prepared = prepare_crl(&template, &issuer, OffsetDateTime::now_utc())?;
        run.record(
            "lint",
            json!({
                "issuer_certificate_sha256": sha256_hex(&issuer_certificate),
                "crl_number": crl.number,
                "revoked": template.revoked.iter().map(|r| r.serial.to_hex()).collect::<Vec<_>>(),
                "tbs_sha256": sha256_hex(prepared.tbs_der()),
                "findings": findings_json(prepared.findings()),
            }),
        );
        let der = prepared.sign(key.as_ref()).await?;
        run.record("sign", json!({ "crl_sha256": sha256_hex(&der) }));
        run.output(
            &outputs[0],
            carimbo_pki::pem_encode("X509 CRL", &der).into_bytes(),
        )?;
        Ok(vec![format!(
            "CRL number {} with {} revoked certificate(s), SHA-256 {}",
            crl.number,
            template.revoked.len(),
            sha256_hex(&der)
        )])
    })
    .await
}

fn issuer_subject_raw(certificate: &[u8]) -> Result<Vec<u8>> {
    let (_, parsed) = X509Certificate::from_der(certificate)
        .map_err(|e| crate::CeremonyError::Refused(format!("issuer certificate: {e}")))?;
    Ok(parsed.subject().as_raw().to_vec())
}
