//! `carimbo-bench kms-load`: KMS API requests per second over HTTPS against a running
//! service — `encrypt` of a payload, or `decrypt` of one envelope made first — and
//! their latency. The key is created first if it does not exist (with a `kms-admin`
//! token).

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Options of `kms-load`.
#[derive(Debug)]
pub struct KmsLoadOptions {
    pub ca: String,
    pub ca_bundle: std::path::PathBuf,
    pub client_token_file: std::path::PathBuf,
    pub admin_token_file: std::path::PathBuf,
    pub key: String,
    pub operation: String,
    pub payload: usize,
    pub concurrency: usize,
    pub seconds: f64,
}

pub fn parse(args: &[String]) -> BenchResult<KmsLoadOptions> {
    let mut options = KmsLoadOptions {
        ca: String::new(),
        ca_bundle: Default::default(),
        client_token_file: Default::default(),
        admin_token_file: Default::default(),
        key: "envelope-data/bench/load".into(),
        operation: "encrypt".into(),
        payload: 1024,
        concurrency: 16,
        seconds: 5.0,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = || iter.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--ca" => options.ca = value()?.trim_end_matches('/').to_owned(),
            "--ca-bundle" => options.ca_bundle = value()?.into(),
            "--client-token-file" => options.client_token_file = value()?.into(),
            "--admin-token-file" => options.admin_token_file = value()?.into(),
            "--key" => options.key = value()?,
            "--operation" => options.operation = value()?,
            "--payload" => options.payload = value()?.parse()?,
            "--concurrency" => options.concurrency = value()?.parse()?,
            "--seconds" => options.seconds = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if !matches!(options.operation.as_str(), "encrypt" | "decrypt") {
        return Err("--operation must be encrypt or decrypt".into());
    }
    Ok(options)
}

pub async fn run(options: KmsLoadOptions) -> BenchResult {
    let bundle = std::fs::read(&options.ca_bundle)?;
    let client = reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(&bundle)?)
        .pool_max_idle_per_host(options.concurrency)
        .build()?;
    let read = |path: &std::path::Path| -> BenchResult<String> {
        Ok(std::fs::read_to_string(path)?.trim().to_owned())
    };
    let token = read(&options.client_token_file)?;
    let admin = read(&options.admin_token_file)?;
    let base = options.ca.clone();
    let created = client
        .post(format!("{base}/v1/kms/keys"))
        .bearer_auth(&admin)
        .json(&json!({ "name": options.key, "purpose": "envelope" }))
        .send()
        .await?;
    if !matches!(created.status().as_u16(), 201 | 409) {
        return Err(format!("creating the key: {}", created.text().await?).into());
    }
    let plaintext = BASE64.encode(vec![0x5a; options.payload]);
    let encrypt_body =
        json!({ "key": options.key, "plaintext": plaintext, "context": { "bench": "load" } });
    let sealed: Value = client
        .post(format!("{base}/v1/kms/encrypt"))
        .bearer_auth(&token)
        .json(&encrypt_body)
        .send()
        .await?
        .json()
        .await?;
    let ciphertext = sealed["ciphertext"]
        .as_str()
        .ok_or(format!("no ciphertext: {sealed}"))?
        .to_owned();
    let (path, body) = match options.operation.as_str() {
        "encrypt" => ("encrypt", encrypt_body),
        _ => (
            "decrypt",
            json!({ "ciphertext": ciphertext, "context": { "bench": "load" } }),
        ),
    };
    let body = serde_json::to_vec(&body)?;
    let deadline = Instant::now() + Duration::from_secs_f64(options.seconds);
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..options.concurrency {
        let (client, url, token, body) = (
            client.clone(),
            format!("{base}/v1/kms/{path}"),
            token.clone(),
            body.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status().is_success() => {
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
        let (mut part, part_errors) = worker.await?;
        latencies.append(&mut part);
        errors += part_errors;
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
            "operation": options.operation,
            "concurrency": options.concurrency,
            "requests": latencies.len(),
            "errors": errors,
            "rate": latencies.len() as f64 / elapsed,
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
        })
    );
    Ok(())
}
