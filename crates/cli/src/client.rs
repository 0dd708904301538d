//! `carimbo issue` and `carimbo token create`: clients of the HTTPS API. Keys are made
//! here and never sent; outputs are written atomically, keys 0600.

use std::path::{Path, PathBuf};

use carimbo_pki::SubjectAltName;
use clap::Args;
use serde_json::{Value, json};

type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// How to reach the CA.
#[derive(Debug, Args)]
pub struct CaArgs {
    /// CA base URL, e.g. https://127.0.0.1:8443.
    #[arg(long, value_name = "URL")]
    ca: String,
    /// PEM bundle of the CA's root certificate(s), trusted for the TLS connection.
    #[arg(long, value_name = "FILE")]
    ca_bundle: PathBuf,
}

/// `carimbo issue` arguments.
#[derive(Debug, Args)]
pub struct IssueArgs {
    #[command(flatten)]
    ca: CaArgs,
    /// Bootstrap token (or @FILE to read it from a file).
    #[arg(long)]
    token: String,
    /// Profile: server, client or workload.
    #[arg(long)]
    profile: String,
    /// Subject alternative name, e.g. dns:app.lab, ip:10.0.0.5, uri:spiffe://lab/ns/a/sa/b
    /// (repeatable).
    #[arg(long = "san", required = true)]
    sans: Vec<SubjectAltName>,
    /// Requested lifetime, e.g. 12h (default: the profile's).
    #[arg(long)]
    ttl: Option<String>,
    /// Key type: ecdsa-p256 (default), ecdsa-p384, ed25519.
    #[arg(long, default_value = "ecdsa-p256")]
    key_type: String,
    /// Output directory (created 0700): key.pem (0600), cert.pem, chain.pem, fullchain.pem.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// `carimbo token create` arguments.
#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    #[command(flatten)]
    ca: CaArgs,
    /// File holding the admin API token.
    #[arg(long, value_name = "FILE")]
    admin_token_file: PathBuf,
    /// Provisioner that vouches for the token.
    #[arg(long)]
    provisioner: String,
    /// Profile the token is for.
    #[arg(long)]
    profile: String,
    /// Names the token allows (repeatable).
    #[arg(long = "san", required = true)]
    sans: Vec<SubjectAltName>,
    /// Longest certificate lifetime the token allows (default: the profile's).
    #[arg(long)]
    cert_ttl: Option<String>,
    /// How long the token stays usable, e.g. 10m.
    #[arg(long, default_value = "10m")]
    ttl: String,
}

fn http_client(args: &CaArgs) -> Result<reqwest::Client, Box<dyn std::error::Error + Send + Sync>> {
    let bundle =
        std::fs::read(&args.ca_bundle).map_err(|e| format!("{}: {e}", args.ca_bundle.display()))?;
    let roots = reqwest::Certificate::from_pem_bundle(&bundle)
        .map_err(|e| format!("{}: {e}", args.ca_bundle.display()))?;
    Ok(reqwest::Client::builder()
        .tls_certs_only(roots)
        .timeout(std::time::Duration::from_secs(30))
        .build()?)
}

/// Turns an error response (problem+json) into one line.
async fn problem(response: reqwest::Response) -> Box<dyn std::error::Error + Send + Sync> {
    let status = response.status();
    match response.json::<Value>().await {
        Ok(body) => format!(
            "the CA refused ({status}, {}): {}",
            body["code"].as_str().unwrap_or("?"),
            body["detail"].as_str().unwrap_or("")
        )
        .into(),
        Err(_) => format!("the CA answered {status}").into(),
    }
}

/// An error and its sources on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn secret_argument(value: &str) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    match value.strip_prefix('@') {
        Some(path) => Ok(std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: {e}"))?
            .trim()
            .to_owned()),
        None => Ok(value.to_owned()),
    }
}

fn write_outputs(dir: &Path, key_pem: &str, response: &Value) -> CliResult {
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let certificate = response["certificate"]
        .as_str()
        .ok_or("the CA returned no certificate")?;
    let chain: String = response["chain"]
        .as_array()
        .ok_or("the CA returned no chain")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Each file replaced atomically; the key first, so a certificate never sits next to
    // a key it does not belong to for longer than the two renames.
    let write = |name: &str, text: &str, mode: u32| -> CliResult {
        let mut pending = carimbo_kms::PendingFile::create(&dir.join(name), mode)?;
        std::io::Write::write_all(pending.file(), text.as_bytes())?;
        pending.commit()?;
        Ok(())
    };
    write("key.pem", key_pem, 0o600)?;
    write("cert.pem", certificate, 0o644)?;
    write("chain.pem", &chain, 0o644)?;
    write("fullchain.pem", &format!("{certificate}{chain}"), 0o644)?;
    Ok(())
}

/// `carimbo issue`.
pub async fn issue(args: IssueArgs) -> CliResult {
    let algorithm = match args.key_type.as_str() {
        "ecdsa-p256" => &rcgen::PKCS_ECDSA_P256_SHA256,
        "ecdsa-p384" => &rcgen::PKCS_ECDSA_P384_SHA384,
        "ed25519" => &rcgen::PKCS_ED25519,
        other => {
            return Err(
                format!("unknown key type {other:?} (ecdsa-p256, ecdsa-p384, ed25519)").into(),
            );
        }
    };
    let key = rcgen::KeyPair::generate_for(algorithm)?;
    let csr = carimbo_server::tls::csr_pem(&key, &args.sans)?;
    let token = secret_argument(&args.token)?;
    let client = http_client(&args.ca)?;
    let mut body = json!({ "csr": csr, "profile": args.profile });
    if let Some(ttl) = &args.ttl {
        body["ttl"] = json!(ttl);
    }
    let url = format!("{}/v1/certificates", args.ca.ca.trim_end_matches('/'));
    let response = client
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {}", error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(problem(response).await);
    }
    let issued: Value = response.json().await?;
    write_outputs(&args.out, &key.serialize_pem(), &issued)?;
    println!(
        "issued {} certificate {} until {} into {}",
        args.profile,
        issued["serial"].as_str().unwrap_or("?"),
        issued["not_after"].as_str().unwrap_or("?"),
        args.out.display()
    );
    Ok(())
}

/// `carimbo token create`.
pub async fn token_create(args: TokenCreateArgs) -> CliResult {
    let admin = secret_argument(&format!("@{}", args.admin_token_file.display()))?;
    let client = http_client(&args.ca)?;
    let mut body = json!({
        "provisioner": args.provisioner,
        "profile": args.profile,
        "sans": args.sans.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "expires_in": args.ttl,
    });
    if let Some(ttl) = &args.cert_ttl {
        body["ttl"] = json!(ttl);
    }
    let url = format!("{}/v1/admin/tokens", args.ca.ca.trim_end_matches('/'));
    let response = client
        .post(&url)
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {}", error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(problem(response).await);
    }
    let created: Value = response.json().await?;
    println!("{}", created["token"].as_str().unwrap_or_default());
    eprintln!(
        "expires at {}",
        created["expires_at"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// `carimbo renew` arguments.
#[derive(Debug, Args)]
pub struct RenewArgs {
    #[command(flatten)]
    ca: CaArgs,
    /// The current certificate (PEM; the first certificate of the file is used).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// The current certificate's private key (PEM PKCS#8).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Make a new key for the new certificate (the current key still proves possession).
    #[arg(long)]
    new_key: bool,
    /// Requested lifetime, e.g. 12h (default: the profile's).
    #[arg(long)]
    ttl: Option<String>,
    /// Output directory (as for `issue`); may be the directory of --cert.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// The SANs of a certificate.
fn certificate_sans(
    der: &[u8],
) -> Result<Vec<SubjectAltName>, Box<dyn std::error::Error + Send + Sync>> {
    use x509_parser::extensions::GeneralName;
    let (_, certificate) =
        x509_parser::parse_x509_certificate(der).map_err(|e| format!("certificate: {e}"))?;
    let extension = certificate
        .subject_alternative_name()
        .map_err(|e| format!("certificate: {e}"))?
        .ok_or("the certificate has no subject alternative name")?;
    let mut sans = Vec::new();
    for name in &extension.value.general_names {
        sans.push(match name {
            GeneralName::DNSName(dns) => SubjectAltName::Dns((*dns).to_owned()),
            GeneralName::URI(uri) => SubjectAltName::Uri((*uri).to_owned()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => SubjectAltName::Ip(std::net::IpAddr::from(<[u8; 4]>::try_from(*bytes)?)),
                16 => SubjectAltName::Ip(std::net::IpAddr::from(<[u8; 16]>::try_from(*bytes)?)),
                _ => return Err("bad IP address SAN".into()),
            },
            other => return Err(format!("unsupported SAN {other:?}").into()),
        });
    }
    Ok(sans)
}

/// `carimbo renew`: proves possession of the current key and gets a new certificate.
pub async fn renew(args: RenewArgs) -> CliResult {
    use base64::Engine;
    use rcgen::SigningKey;
    let certificate_pem =
        std::fs::read_to_string(&args.cert).map_err(|e| format!("{}: {e}", args.cert.display()))?;
    let der = carimbo_pki::pem_decode(&certificate_pem, "CERTIFICATE")?;
    let first_pem = carimbo_pki::pem_encode("CERTIFICATE", &der);
    let sans = certificate_sans(&der)?;
    let key_pem =
        std::fs::read_to_string(&args.key).map_err(|e| format!("{}: {e}", args.key.display()))?;
    let current =
        rcgen::KeyPair::from_pem(&key_pem).map_err(|e| format!("{}: {e}", args.key.display()))?;
    let next = if args.new_key {
        rcgen::KeyPair::generate_for(current.algorithm())?
    } else {
        rcgen::KeyPair::from_pem(&key_pem)?
    };
    let csr = carimbo_server::tls::csr_pem(&next, &sans)?;
    let mut body = json!({
        "certificate": first_pem,
        "csr": csr,
        "timestamp": time::OffsetDateTime::now_utc().unix_timestamp(),
    });
    if let Some(ttl) = &args.ttl {
        body["ttl"] = json!(ttl);
    }
    let body = serde_json::to_vec(&body)?;
    let signature = current.sign(&carimbo_server::renewal::proof_message(&body))?;
    let proof = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature);
    let client = http_client(&args.ca)?;
    let url = format!("{}/v1/certificates/renew", args.ca.ca.trim_end_matches('/'));
    let response = client
        .post(&url)
        .header("authorization", format!("Carimbo-PoP {proof}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {}", error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(problem(response).await);
    }
    let renewed: Value = response.json().await?;
    write_outputs(&args.out, &next.serialize_pem(), &renewed)?;
    println!(
        "renewed: certificate {} until {} into {}",
        renewed["serial"].as_str().unwrap_or("?"),
        renewed["not_after"].as_str().unwrap_or("?"),
        args.out.display()
    );
    Ok(())
}
