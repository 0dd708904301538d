//! `carimbo-bench issue-load`: issuances per second over HTTPS against a running CA, and
//! their latency. One certificate is bootstrapped with a token, then every worker
//! renews it by proof of possession (the full issuance path: CSR checks, policy,
//! lint, intent stored, HSM signature, certificate stored, audit) as fast as it can
//! until the deadline. With `--ca` given several times (replicas of one CA), workers
//! are spread over them in turn.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use rcgen::SigningKey;
use serde_json::{Value, json};

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Options of `issue-load`.
#[derive(Debug)]
pub struct LoadOptions {
    pub cas: Vec<String>,
    pub ca_bundle: std::path::PathBuf,
    pub admin_token_file: std::path::PathBuf,
    pub provisioner: String,
    pub san: String,
    pub concurrency: usize,
    pub seconds: f64,
}

pub fn parse(args: &[String]) -> BenchResult<LoadOptions> {
    let mut options = LoadOptions {
        cas: Vec::new(),
        ca_bundle: Default::default(),
        admin_token_file: Default::default(),
        provisioner: "dev".into(),
        san: "dns:load.localhost".into(),
        concurrency: 8,
        seconds: 5.0,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = || iter.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--ca" => options.cas.push(value()?.trim_end_matches('/').to_owned()),
            "--ca-bundle" => options.ca_bundle = value()?.into(),
            "--admin-token-file" => options.admin_token_file = value()?.into(),
            "--provisioner" => options.provisioner = value()?,
            "--san" => options.san = value()?,
            "--concurrency" => options.concurrency = value()?.parse()?,
            "--seconds" => options.seconds = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if options.cas.is_empty() {
        return Err("--ca is required".into());
    }
    Ok(options)
}

fn csr(key: &rcgen::KeyPair, san: &str) -> BenchResult<String> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let name = san.strip_prefix("dns:").ok_or("--san must be dns:NAME")?;
    params
        .subject_alt_names
        .push(rcgen::SanType::DnsName(name.to_owned().try_into()?));
    Ok(params.serialize_request(key)?.pem()?)
}

pub async fn run(options: LoadOptions) -> BenchResult {
    let bundle = std::fs::read(&options.ca_bundle)?;
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&bundle)?)
        .pool_max_idle_per_host(options.concurrency)
        .build()?;
    let admin = std::fs::read_to_string(&options.admin_token_file)?
        .trim()
        .to_owned();
    let base = options.cas[0].clone();
    let reply: Value = client
        .post(format!("{base}/v1/admin/tokens"))
        .bearer_auth(admin)
        .json(&json!({ "provisioner": options.provisioner, "profile": "server", "sans": [options.san], "ttl": "24h" }))
        .send()
        .await?
        .json()
        .await?;
    let token = reply["token"]
        .as_str()
        .ok_or(format!("no token: {reply}"))?
        .to_owned();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let csr = csr(&key, &options.san)?;
    let issued: Value = client
        .post(format!("{base}/v1/certificates"))
        .bearer_auth(token)
        .json(&json!({ "csr": csr, "profile": "server" }))
        .send()
        .await?
        .json()
        .await?;
    let certificate = issued["certificate"]
        .as_str()
        .ok_or(format!("no certificate: {issued}"))?
        .to_owned();
    let key = Arc::new(key);
    let deadline = Instant::now() + Duration::from_secs_f64(options.seconds);
    let start = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..options.concurrency {
        let (client, base, key, certificate, csr) = (
            client.clone(),
            options.cas[worker % options.cas.len()].clone(),
            Arc::clone(&key),
            certificate.clone(),
            csr.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let body = serde_json::to_vec(&json!({
                    "certificate": certificate,
                    "csr": csr,
                    "timestamp": time::OffsetDateTime::now_utc().unix_timestamp(),
                }))
                .unwrap_or_default();
                let mut message = b"carimbo-renew-v1\n".to_vec();
                message.extend_from_slice(
                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body).as_ref(),
                );
                let Ok(signature) = key.sign(&message) else {
                    errors += 1;
                    continue;
                };
                let proof = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature);
                let sent = Instant::now();
                let response = client
                    .post(format!("{base}/v1/certificates/renew"))
                    .header("authorization", format!("Carimbo-PoP {proof}"))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status().as_u16() == 201 => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let (mut worker_latencies, worker_errors) = worker.await?;
        latencies.append(&mut worker_latencies);
        errors += worker_errors;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[index].as_secs_f64() * 1000.0
    };
    println!(
        "{}",
        json!({
            "concurrency": options.concurrency,
            "issued": latencies.len(),
            "errors": errors,
            "seconds": elapsed,
            "rate": latencies.len() as f64 / elapsed,
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
        })
    );
    Ok(())
}
