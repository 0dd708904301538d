//! `carimbo audit verify` and `carimbo audit export`: the audit trail checked and
//! exported straight from the database.

use std::io::Write;
use std::path::PathBuf;

use carimbo_server::audit_heads::{TrustedAuditKeys, verify_chain};
use carimbo_server::config::LoadedConfig;
use carimbo_server::keys::KeyOpener;
use carimbo_store::{CertificateFilter, CertificateRecord, SignedAuditHead, StoredAuditEvent};
use clap::Args;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::service::{ConfigArgs, open_store};

type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Events and certificates read per database call.
const PAGE: u32 = 1_000;

/// `carimbo audit verify` arguments.
#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only this chain (default: every chain in the database).
    #[arg(long)]
    chain: Option<String>,
    /// A public key (PEM) trusted to sign chain heads, for keys the config's key
    /// providers cannot open (another replica's file key, a destroyed key). Repeatable.
    #[arg(long = "trusted-key", value_name = "PEM")]
    trusted_keys: Vec<PathBuf>,
}

/// `carimbo audit verify`: recomputes every audit chain and checks it against its
/// signed heads; exits 1 naming the first problem of each broken chain.
pub async fn verify(args: AuditVerifyArgs) -> CliResult {
    let loaded = LoadedConfig::load(&args.config.config)?;
    let store = open_store(&loaded).await?;
    let opener = KeyOpener::from_config(&loaded);
    let mut trusted = TrustedAuditKeys {
        opener: Some(&opener),
        public_keys: Vec::new(),
    };
    for path in &args.trusted_keys {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--trusted-key {}: {e}", path.display()))?;
        let der = carimbo_pki::pem_decode(&text, "PUBLIC KEY")
            .map_err(|e| format!("--trusted-key {}: {e}", path.display()))?;
        trusted.public_keys.push(der);
    }
    let chains = match args.chain {
        Some(chain) => {
            if store.audit_events(&chain, 0, 1).await?.is_empty() {
                // A mistyped name would otherwise pass as an intact, empty chain.
                return Err(format!("audit chain {chain}: no events in this database").into());
            }
            vec![chain]
        }
        None => store.audit_chains().await?,
    };
    if chains.is_empty() {
        return Err("no audit events in this database".into());
    }
    let mut broken = 0;
    for chain in &chains {
        let report = verify_chain(store.as_ref(), chain, &trusted).await?;
        match &report.problem {
            None => {
                let tail = report.events - report.last_signed;
                println!(
                    "audit chain {chain}: intact, {} events, {} signed heads (last at event {}){}",
                    report.events,
                    report.heads,
                    report.last_signed,
                    if tail > 0 {
                        format!(", {tail} events after the last signed head")
                    } else {
                        String::new()
                    }
                );
            }
            Some(problem) => {
                broken += 1;
                println!("audit chain {chain}: BROKEN: {problem}");
            }
        }
    }
    if broken > 0 {
        return Err(format!("{broken} of {} audit chains broken", chains.len()).into());
    }
    Ok(())
}

/// `carimbo audit export` arguments.
#[derive(Debug, Args)]
pub struct AuditExportArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Start of the period (RFC 3339, inclusive).
    #[arg(long, value_parser = parse_time)]
    since: OffsetDateTime,
    /// End of the period (RFC 3339, exclusive; default: now).
    #[arg(long, value_parser = parse_time)]
    until: Option<OffsetDateTime>,
    /// `jsonl`: certificates issued in the period, audit events recorded and chain
    /// heads signed in it, one JSON object a line; `csv`: the certificate report only.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv"])]
    format: String,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time (2026-01-31T00:00:00Z): {e}"))
}

/// `carimbo audit export`: the issuance and revocation report of a period, with the
/// audit events and signed heads that back it.
pub async fn export(args: AuditExportArgs) -> CliResult {
    let since = args.since;
    let until = args.until.unwrap_or_else(OffsetDateTime::now_utc);
    if until <= since {
        return Err("--until must be after --since".into());
    }
    let loaded = LoadedConfig::load(&args.config.config)?;
    let store = open_store(&loaded).await?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let csv = args.format == "csv";
    if csv {
        writeln!(out, "{}", CSV_COLUMNS.join(","))?;
    }
    let mut counts = (0u64, 0u64, 0u64);
    let mut after = None;
    loop {
        let page = store
            .find_certificates(&CertificateFilter {
                issued_from: Some(since),
                issued_until: Some(until),
                include_revoked: true,
                after: after.take(),
                limit: PAGE,
                ..Default::default()
            })
            .await?;
        for record in &page {
            if csv {
                writeln!(out, "{}", csv_row(record))?;
            } else {
                writeln!(out, "{}", certificate_json(record))?;
            }
        }
        counts.0 += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == PAGE as usize => {
                after = last.issued_at.map(|at| (at, last.serial.clone()));
            }
            _ => break,
        }
    }
    if !csv {
        for chain in store.audit_chains().await? {
            let mut sequence = 0;
            loop {
                let events = store.audit_events(&chain, sequence, PAGE).await?;
                for event in &events {
                    if event.recorded_at >= since && event.recorded_at < until {
                        writeln!(out, "{}", event_json(event))?;
                        counts.1 += 1;
                    }
                }
                match events.last() {
                    Some(last) if events.len() == PAGE as usize => sequence = last.sequence,
                    _ => break,
                }
            }
            for head in store.audit_heads(&chain).await? {
                if head.signed_at >= since && head.signed_at < until {
                    writeln!(out, "{}", head_json(&head))?;
                    counts.2 += 1;
                }
            }
        }
    }
    out.flush()?;
    if csv {
        eprintln!("exported {} certificates", counts.0);
    } else {
        eprintln!(
            "exported {} certificates, {} audit events, {} signed heads",
            counts.0, counts.1, counts.2
        );
    }
    Ok(())
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}

const CSV_COLUMNS: [&str; 13] = [
    "serial",
    "issuer",
    "profile",
    "provisioner",
    "requester",
    "subject_alt_names",
    "subject_key_sha256",
    "not_before",
    "not_after",
    "issued_at",
    "status",
    "revoked_at",
    "revocation_reason",
];

fn certificate_json(record: &CertificateRecord) -> Value {
    json!({
        "record": "certificate",
        "serial": record.serial,
        "issuer": record.issuer,
        "profile": record.profile,
        "provisioner": record.provisioner,
        "requester": record.requester,
        "subject_alt_names": record.sans,
        "subject_key_sha256": record.subject_key_sha256,
        "not_before": rfc3339(record.not_before),
        "not_after": rfc3339(record.not_after),
        "issued_at": record.issued_at.map(rfc3339),
        "status": record.status.as_str(),
        "revoked_at": record.revoked_at.map(rfc3339),
        "revocation_reason": record.revocation_reason.map(crl_reason_name),
    })
}

fn csv_row(record: &CertificateRecord) -> String {
    let fields = [
        record.serial.clone(),
        record.issuer.clone(),
        record.profile.clone(),
        record.provisioner.clone(),
        record.requester.clone(),
        record.sans.join(" "),
        record.subject_key_sha256.clone(),
        rfc3339(record.not_before),
        rfc3339(record.not_after),
        record.issued_at.map(rfc3339).unwrap_or_default(),
        record.status.as_str().to_owned(),
        record.revoked_at.map(rfc3339).unwrap_or_default(),
        record
            .revocation_reason
            .map(|r| crl_reason_name(r).to_owned())
            .unwrap_or_default(),
    ];
    fields
        .iter()
        .map(|field| csv_field(field))
        .collect::<Vec<_>>()
        .join(",")
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so spreadsheets never run it as a formula
/// (names come from requests).
fn csv_field(field: &str) -> String {
    let guarded = if field.starts_with(['=', '+', '-', '@']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

fn crl_reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown",
    }
}

fn event_json(event: &StoredAuditEvent) -> Value {
    json!({
        "record": "event",
        "chain": event.chain,
        "sequence": event.sequence,
        "previous_hash": event.previous_hash,
        "hash": event.hash,
        "recorded_at": event.recorded_at.unix_timestamp(),
        "event": event.event,
    })
}

fn head_json(head: &SignedAuditHead) -> Value {
    json!({
        "record": "head",
        "chain": head.chain,
        "sequence": head.sequence,
        "hash": head.hash,
        "signed_at": head.signed_at.unix_timestamp(),
        "key_reference": head.key_reference,
        "algorithm": head.algorithm,
        "public_key": hex::encode(&head.public_key),
        "signature": hex::encode(&head.signature),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("-1,2"), "\"'-1,2\"");
        assert_eq!(csv_field(""), "");
    }

    #[test]
    fn reasons_have_their_rfc_5280_names() {
        assert_eq!(crl_reason_name(1), "keyCompromise");
        assert_eq!(crl_reason_name(4), "superseded");
        assert_eq!(crl_reason_name(7), "unknown");
    }
}
