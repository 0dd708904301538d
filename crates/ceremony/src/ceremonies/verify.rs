//! `ca-ceremony verify`: re-check a finished hierarchy — signatures, profile lints, the
//! root CRLs — and every transcript: its hash chain, the outputs it recorded against
//! the files on disk, and its final hash against the one the officers recorded.

use std::path::Path;

use carimbo_kms::SignatureAlgorithm;
use carimbo_pki::{
    CertificateProfile, CrlKind, IntermediateUsage, IssuerInfo, Severity, lint_certificate,
    lint_crl, verify_certificate_signature, verify_crl_signature,
};
use serde_json::Value;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::read_pem;
use crate::config::{Loaded, VerifyConfig, load_ceremony};
use crate::transcript::{check, sha256_hex};
use crate::{CeremonyError, Outcome, Result, RunOptions};

pub(crate) async fn run(path: &Path, _options: &RunOptions) -> Result<Outcome> {
    let loaded = load_ceremony::<VerifyConfig>(path, "verify")?;
    let config = &loaded.config;
    let mut report = Vec::new();
    let mut problems = Vec::new();
    let now = OffsetDateTime::now_utc();
    let algorithm = config.root_algorithm.0;

    let root = read_pem(
        &loaded,
        "root",
        &loaded.resolve(&config.root),
        "CERTIFICATE",
    )?;
    let root_issuer = IssuerInfo::from_certificate(&root, algorithm)
        .map_err(|e| loaded.error("root", e.to_string()))?;
    check_certificate(
        &loaded,
        "root",
        &root,
        &root_issuer,
        algorithm,
        CertificateProfile::Root,
        now,
        &mut report,
        &mut problems,
    );

    for (index, intermediate) in config.intermediates.iter().enumerate() {
        let field = format!("intermediates[{index}]");
        let der = read_pem(
            &loaded,
            &field,
            &loaded.resolve(intermediate),
            "CERTIFICATE",
        )?;
        match usage_of(&der) {
            Ok(usage) => check_certificate(
                &loaded,
                &field,
                &der,
                &root_issuer,
                algorithm,
                CertificateProfile::Intermediate { usage },
                now,
                &mut report,
                &mut problems,
            ),
            Err(error) => problems.push(format!("{field}: {error}")),
        }
    }

    for (index, crl) in config.crls.iter().enumerate() {
        let field = format!("crls[{index}]");
        let der = read_pem(&loaded, &field, &loaded.resolve(crl), "X509 CRL")?;
        match verify_crl_signature(&der, root_issuer.subject_public_key_info(), algorithm) {
            Ok(()) => report.push(format!("{field}: signature by the root verifies")),
            Err(error) => problems.push(format!("{field}: signature: {error}")),
        }
        blocking(
            lint_crl(&der, CrlKind::Arl, &root_issuer),
            &field,
            &mut problems,
        );
    }

    for (index, transcript) in config.transcripts.iter().enumerate() {
        let field = format!("transcripts[{index}]");
        let transcript_path = loaded.resolve(transcript);
        let checked = match check(&transcript_path) {
            Ok(checked) => checked,
            Err(error) => {
                problems.push(format!("{field}: {error}"));
                continue;
            }
        };
        let directory = transcript_path.parent().unwrap_or(Path::new("."));
        for line in checked
            .lines
            .iter()
            .filter(|l| l.get("step") == Some(&Value::from("output")))
        {
            let (Some(name), Some(recorded)) = (
                line.get("path").and_then(Value::as_str),
                line.get("sha256").and_then(Value::as_str),
            ) else {
                problems.push(format!("{field}: output line without path or hash"));
                continue;
            };
            match std::fs::read(directory.join(name)) {
                Ok(bytes) if sha256_hex(&bytes) == recorded => {}
                Ok(_) => problems.push(format!("{field}: {name} does not match the SHA-256 recorded in the transcript (modified)")),
                Err(error) => problems.push(format!("{field}: {name}: {error}")),
            }
        }
        if checked.lines.last().and_then(|l| l.get("step")) != Some(&Value::from("complete")) {
            problems.push(format!(
                "{field}: the transcript does not end with a complete step"
            ));
        }
        match config.final_hashes.get(transcript) {
            Some(expected) if expected != &checked.final_hash => problems.push(format!(
                "{field}: final hash {} differs from the recorded {expected} (lines changed or cut)",
                checked.final_hash
            )),
            Some(_) => report.push(format!("{field}: chain intact, outputs match, final hash matches the record")),
            None => report.push(format!("{field}: chain intact, outputs match; final hash {}", checked.final_hash)),
        }
    }

    if problems.is_empty() {
        report.push("verify: everything checks out".into());
        Ok(Outcome {
            report,
            ..Outcome::default()
        })
    } else {
        Err(CeremonyError::Verification(problems.join("; ")))
    }
}

#[allow(clippy::too_many_arguments)]
fn check_certificate(
    loaded: &Loaded<VerifyConfig>,
    field: &str,
    der: &[u8],
    issuer: &IssuerInfo,
    algorithm: SignatureAlgorithm,
    profile: CertificateProfile,
    now: OffsetDateTime,
    report: &mut Vec<String>,
    problems: &mut Vec<String>,
) {
    let _ = loaded;
    match verify_certificate_signature(der, issuer.subject_public_key_info(), algorithm) {
        Ok(()) => report.push(format!("{field}: signature by the root verifies")),
        Err(error) => problems.push(format!("{field}: signature: {error}")),
    }
    blocking(
        lint_certificate(der, &profile, issuer, now),
        field,
        problems,
    );
}

fn blocking(findings: Vec<carimbo_pki::Finding>, field: &str, problems: &mut Vec<String>) {
    for finding in findings.iter().filter(|f| f.severity == Severity::Error) {
        problems.push(format!(
            "{field}: {}: {} ({})",
            finding.lint, finding.message, finding.citation
        ));
    }
}

/// The usage of an intermediate, read from its EKU.
fn usage_of(der: &[u8]) -> std::result::Result<IntermediateUsage, String> {
    let (_, certificate) =
        X509Certificate::from_der(der).map_err(|e| format!("not a certificate: {e}"))?;
    let eku = certificate
        .extended_key_usage()
        .map_err(|e| e.to_string())?
        .ok_or("no extended key usage")?
        .value;
    match (eku.server_auth, eku.client_auth) {
        (true, false) => Ok(IntermediateUsage::Server),
        (true, true) => Ok(IntermediateUsage::Workload),
        _ => Err("extended key usage is neither server nor workload".into()),
    }
}
