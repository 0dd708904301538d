//! `carimbo issue`, `renew`, `revoke`, `token create` and `admin revoke`: clients of the
//! HTTPS API, and the requests they share with `carimbo agent`. Keys are made here and
//! never sent; outputs are written atomically, keys 0600.

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
    ca_client(&args.ca_bundle)
}

impl CaArgs {
    /// The base URL, without a trailing slash.
    pub(crate) fn url(&self) -> &str {
        self.ca.trim_end_matches('/')
    }

    /// An HTTPS client trusting the bundle.
    pub(crate) fn client(
        &self,
    ) -> Result<reqwest::Client, Box<dyn std::error::Error + Send + Sync>> {
        http_client(self)
    }
}

/// An HTTPS client that trusts only the roots in the PEM file `bundle`.
pub(crate) fn ca_client(
    bundle: &Path,
) -> Result<reqwest::Client, Box<dyn std::error::Error + Send + Sync>> {
    let pem = std::fs::read(bundle).map_err(|e| format!("{}: {e}", bundle.display()))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{}: {e}", bundle.display()))?;
    Ok(reqwest::Client::builder()
        .tls_certs_only(roots)
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(30))
        .build()?)
}

/// Why a request to the CA failed.
#[derive(Debug)]
pub(crate) enum CaError {
    /// No answer: connection refused, TLS failure, timeout, a cut connection.
    Unreachable(String),
    /// The CA answered with an error status (and, usually, a problem document).
    Refused {
        /// HTTP status.
        status: reqwest::StatusCode,
        /// The problem's stable code, when the CA sent one.
        code: Option<String>,
        /// The problem's detail.
        detail: String,
    },
    /// The CA answered 2xx with a body that is not the JSON expected.
    BadAnswer(String),
}

impl CaError {
    /// The problem code of a refusal.
    pub(crate) fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

impl std::fmt::Display for CaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) | Self::BadAnswer(why) => f.write_str(why),
            Self::Refused {
                status,
                code: Some(code),
                detail,
            } => write!(f, "the CA refused ({status}, {code}): {detail}"),
            Self::Refused {
                status, code: None, ..
            } => write!(f, "the CA answered {status}"),
        }
    }
}

impl std::error::Error for CaError {}

/// Turns an error response (problem+json) into a [`CaError::Refused`].
async fn problem(response: reqwest::Response) -> CaError {
    let status = response.status();
    match response.json::<Value>().await {
        Ok(body) => CaError::Refused {
            status,
            code: Some(body["code"].as_str().unwrap_or("?").to_owned()),
            detail: body["detail"].as_str().unwrap_or("").to_owned(),
        },
        Err(_) => CaError::Refused {
            status,
            code: None,
            detail: String::new(),
        },
    }
}

/// Sends `request` to `url`; returns the JSON body of a 2xx answer, else the CA's
/// problem (or why it could not be reached) as the error.
pub(crate) async fn send_json(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<Value, CaError> {
    let response = request
        .send()
        .await
        .map_err(|e| CaError::Unreachable(format!("cannot reach {url}: {}", error_chain(&e))))?;
    if !response.status().is_success() {
        return Err(problem(response).await);
    }
    response
        .json()
        .await
        .map_err(|e| CaError::BadAnswer(format!("{url}: unreadable answer: {}", error_chain(&e))))
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

/// `url` with the path `path` (no doubled slash).
fn endpoint(ca: &str, path: &str) -> String {
    format!("{}{path}", ca.trim_end_matches('/'))
}

/// A new key pair of `key_type`: `ecdsa-p256`, `ecdsa-p384` or `ed25519`.
pub(crate) fn generate_key(
    key_type: &str,
) -> Result<rcgen::KeyPair, Box<dyn std::error::Error + Send + Sync>> {
    let algorithm = match key_type {
        "ecdsa-p256" => &rcgen::PKCS_ECDSA_P256_SHA256,
        "ecdsa-p384" => &rcgen::PKCS_ECDSA_P384_SHA384,
        "ed25519" => &rcgen::PKCS_ED25519,
        other => {
            return Err(format!("unknown key type {other:?} ({})", KEY_TYPES.join(", ")).into());
        }
    };
    Ok(rcgen::KeyPair::generate_for(algorithm)?)
}

/// The key types [`generate_key`] knows.
pub(crate) const KEY_TYPES: &[&str] = &["ecdsa-p256", "ecdsa-p384", "ed25519"];

/// `POST /v1/certificates` with a bootstrap credential (a one-time token or a JWT):
/// the CA's JSON answer.
pub(crate) async fn request_certificate(
    client: &reqwest::Client,
    ca: &str,
    credential: &str,
    csr: &str,
    profile: &str,
    ttl: Option<&str>,
    provisioner: Option<&str>,
) -> Result<Value, CaError> {
    let mut body = json!({ "csr": csr, "profile": profile });
    if let Some(ttl) = ttl {
        body["ttl"] = json!(ttl);
    }
    if let Some(provisioner) = provisioner {
        body["provisioner"] = json!(provisioner);
    }
    let url = endpoint(ca, "/v1/certificates");
    send_json(client.post(&url).bearer_auth(credential).json(&body), &url).await
}

/// `POST /v1/certificates/renew`: asks for a certificate for `csr`, proving possession
/// of `current_key`, the key of `certificate_pem` (one certificate). The CA's JSON
/// answer.
pub(crate) async fn request_renewal(
    client: &reqwest::Client,
    ca: &str,
    certificate_pem: &str,
    current_key: &rcgen::KeyPair,
    csr: &str,
    ttl: Option<&str>,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    use base64::Engine;
    use rcgen::SigningKey;
    let mut body = json!({
        "certificate": certificate_pem,
        "csr": csr,
        "timestamp": time::OffsetDateTime::now_utc().unix_timestamp(),
    });
    if let Some(ttl) = ttl {
        body["ttl"] = json!(ttl);
    }
    let body = serde_json::to_vec(&body)?;
    let signature = current_key.sign(&carimbo_server::renewal::proof_message(&body))?;
    let proof = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature);
    let url = endpoint(ca, "/v1/certificates/renew");
    Ok(send_json(
        client
            .post(&url)
            .header("authorization", format!("Carimbo-PoP {proof}"))
            .header("content-type", "application/json")
            .body(body),
        &url,
    )
    .await?)
}

/// `GET /v1/ca/chain`: the PEM bundle of every issuer's roots and intermediates.
pub(crate) async fn fetch_ca_chain(client: &reqwest::Client, ca: &str) -> Result<String, CaError> {
    let url = endpoint(ca, "/v1/ca/chain");
    let response =
        client.get(&url).send().await.map_err(|e| {
            CaError::Unreachable(format!("cannot reach {url}: {}", error_chain(&e)))
        })?;
    if !response.status().is_success() {
        return Err(problem(response).await);
    }
    response
        .text()
        .await
        .map_err(|e| CaError::BadAnswer(format!("{url}: unreadable answer: {}", error_chain(&e))))
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
    let key = generate_key(&args.key_type)?;
    let csr = carimbo_server::tls::csr_pem(&key, &args.sans)?;
    let token = secret_argument(&args.token)?;
    let client = http_client(&args.ca)?;
    let issued = request_certificate(
        &client,
        &args.ca.ca,
        &token,
        &csr,
        &args.profile,
        args.ttl.as_deref(),
        None,
    )
    .await?;
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
    let url = endpoint(&args.ca.ca, "/v1/admin/tokens");
    let created = send_json(client.post(&url).bearer_auth(admin).json(&body), &url).await?;
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
pub(crate) fn certificate_sans(
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
    let client = http_client(&args.ca)?;
    let renewed = request_renewal(
        &client,
        &args.ca.ca,
        &first_pem,
        &current,
        &csr,
        args.ttl.as_deref(),
    )
    .await?;
    write_outputs(&args.out, &next.serialize_pem(), &renewed)?;
    println!(
        "renewed: certificate {} until {} into {}",
        renewed["serial"].as_str().unwrap_or("?"),
        renewed["not_after"].as_str().unwrap_or("?"),
        args.out.display()
    );
    Ok(())
}

/// `carimbo revoke` arguments.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    ca: CaArgs,
    /// The certificate to revoke (PEM). With --key, its holder revokes it by proving
    /// possession of the key; with --admin-token-file, an administrator does.
    #[arg(long, value_name = "FILE", required_unless_present = "serial")]
    cert: Option<PathBuf>,
    /// Serial (hex) of the certificate, for an administrator without the file.
    #[arg(long, conflicts_with = "cert")]
    serial: Option<String>,
    /// The certificate's private key (PEM PKCS#8): revoke as its holder.
    #[arg(long, value_name = "FILE", conflicts_with = "admin_token_file")]
    key: Option<PathBuf>,
    /// File holding an admin API token: revoke as an administrator.
    #[arg(long, value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// Why: unspecified (default), key-compromise, affiliation-changed, superseded,
    /// cessation-of-operation; administrators also ca-compromise,
    /// privilege-withdrawn, aa-compromise.
    #[arg(long, default_value = "unspecified")]
    reason: String,
}

fn print_revocation(result: &Value) {
    let changed = result["changed"].as_bool().unwrap_or(false);
    println!(
        "{} {} ({}) at {}",
        if changed {
            "revoked"
        } else {
            "already revoked:"
        },
        result["serial"].as_str().unwrap_or("?"),
        result["reason"].as_str().unwrap_or("unspecified"),
        result["revoked_at"].as_str().unwrap_or("?"),
    );
}

/// `carimbo revoke`.
pub async fn revoke(args: RevokeArgs) -> CliResult {
    use base64::Engine;
    use rcgen::SigningKey;
    let serial = match (&args.cert, &args.serial) {
        (Some(path), _) => {
            let pem =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let der = carimbo_pki::pem_decode(&pem, "CERTIFICATE")?;
            let (_, certificate) = x509_parser::parse_x509_certificate(&der)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            hex::encode(certificate.raw_serial())
        }
        (None, Some(serial)) => serial.to_ascii_lowercase().replace(':', ""),
        (None, None) => return Err("give --cert or --serial".into()),
    };
    let url = endpoint(&args.ca.ca, &format!("/v1/certificates/{serial}/revoke"));
    let client = http_client(&args.ca)?;
    let request = match (&args.key, &args.admin_token_file) {
        (Some(key_path), None) => {
            let key_pem = std::fs::read_to_string(key_path)
                .map_err(|e| format!("{}: {e}", key_path.display()))?;
            let key = rcgen::KeyPair::from_pem(&key_pem)
                .map_err(|e| format!("{}: {e}", key_path.display()))?;
            let body = serde_json::to_vec(&json!({
                "serial": serial,
                "reason": args.reason,
                "timestamp": time::OffsetDateTime::now_utc().unix_timestamp(),
            }))?;
            let signature = key.sign(&carimbo_server::revocation::revoke_proof_message(&body))?;
            let proof = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature);
            client
                .post(&url)
                .header("authorization", format!("Carimbo-PoP {proof}"))
                .header("content-type", "application/json")
                .body(body)
        }
        (None, Some(token_file)) => {
            let admin = secret_argument(&format!("@{}", token_file.display()))?;
            client
                .post(&url)
                .bearer_auth(admin)
                .json(&json!({ "reason": args.reason }))
        }
        _ => return Err("give --key (as the holder) or --admin-token-file".into()),
    };
    let result = send_json(request, &url).await?;
    print_revocation(&result);
    Ok(())
}

/// `carimbo admin revoke` arguments.
#[derive(Debug, Args)]
pub struct BulkRevokeArgs {
    #[command(flatten)]
    ca: CaArgs,
    /// File holding an admin API token.
    #[arg(long, value_name = "FILE")]
    admin_token_file: PathBuf,
    /// A condition KEY=VALUE (repeatable; all must hold): issuer, provisioner, san
    /// (dns:…, ip:…, uri:…), public-key-sha256, lineage, issued-after, issued-before
    /// (RFC 3339).
    #[arg(long = "where", value_name = "KEY=VALUE", required = true)]
    conditions: Vec<String>,
    /// Why (see `carimbo revoke --help`).
    #[arg(long, default_value = "unspecified")]
    reason: String,
    /// Revoke for real. Without it, only list what would be revoked.
    #[arg(long, requires = "expect")]
    execute: bool,
    /// With --execute: the count the dry run reported; if the match changed since,
    /// nothing is revoked.
    #[arg(long, requires = "execute")]
    expect: Option<u64>,
}

/// `carimbo admin revoke --where …`: a dry run by default.
pub async fn bulk_revoke(args: BulkRevokeArgs) -> CliResult {
    let mut filter = serde_json::Map::new();
    for condition in &args.conditions {
        let (key, value) = condition
            .split_once('=')
            .ok_or_else(|| format!("--where {condition:?}: expected KEY=VALUE"))?;
        let field = match key {
            "issuer" | "provisioner" | "san" | "lineage" => key.to_owned(),
            "public-key-sha256" | "issued-after" | "issued-before" => key.replace('-', "_"),
            other => {
                return Err(format!(
                    "--where: unknown key {other:?} (issuer, provisioner, san, public-key-sha256, lineage, issued-after, issued-before)"
                )
                .into());
            }
        };
        if filter.insert(field, json!(value)).is_some() {
            return Err(format!("--where: {key} given twice").into());
        }
    }
    let admin = secret_argument(&format!("@{}", args.admin_token_file.display()))?;
    let client = http_client(&args.ca)?;
    let url = endpoint(&args.ca.ca, "/v1/admin/revocations");
    let mut body = json!({ "where": filter, "reason": args.reason, "dry_run": !args.execute });
    if let Some(expect) = args.expect {
        body["expect"] = json!(expect);
    }
    let result = send_json(client.post(&url).bearer_auth(admin).json(&body), &url).await?;
    let matched = result["matched"].as_u64().unwrap_or(0);
    if args.execute {
        let failed = result["failed"].as_array().map_or(0, Vec::len);
        println!(
            "revoked {} of {matched} matching certificates ({})",
            result["revoked"].as_u64().unwrap_or(0),
            result["reason"].as_str().unwrap_or("?")
        );
        if failed > 0 {
            return Err(format!("{failed} revocations failed: {}", result["failed"]).into());
        }
    } else {
        for serial in result["serials"].as_array().into_iter().flatten() {
            println!("{}", serial.as_str().unwrap_or("?"));
        }
        eprintln!(
            "dry run: {matched} certificates match; to revoke them run again with --execute --expect {matched}"
        );
    }
    Ok(())
}

/// `carimbo admin certs` arguments.
#[derive(Debug, Args)]
pub struct CertsSearchArgs {
    #[command(flatten)]
    ca: CaArgs,
    /// File holding an admin or auditor API token.
    #[arg(long, value_name = "FILE")]
    admin_token_file: PathBuf,
    /// A condition KEY=VALUE (repeatable; all must hold): issuer, provisioner, san
    /// (dns:…, ip:…, uri:…), serial, public-key-sha256, lineage, issued-after,
    /// issued-before, valid-at, expires-before (RFC 3339 times; valid-at also `now`).
    #[arg(long = "where", value_name = "KEY=VALUE", required = true)]
    conditions: Vec<String>,
    /// Revoked certificates too.
    #[arg(long)]
    include_revoked: bool,
    /// Stop after this many certificates.
    #[arg(long, default_value_t = 1000)]
    max: usize,
    /// Certificates asked per request (1 to 1000).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u16).range(1..=1000))]
    page_size: u16,
    /// One JSON object a line instead of a table.
    #[arg(long)]
    json: bool,
}

/// `carimbo admin certs --where …`: the certificates matching every condition, all
/// pages up to `--max`.
pub async fn certs_search(args: CertsSearchArgs) -> CliResult {
    const KEYS: [&str; 10] = [
        "issuer",
        "provisioner",
        "san",
        "serial",
        "public-key-sha256",
        "lineage",
        "issued-after",
        "issued-before",
        "valid-at",
        "expires-before",
    ];
    let mut query: Vec<(String, String)> = Vec::new();
    for condition in &args.conditions {
        let (key, value) = condition
            .split_once('=')
            .ok_or_else(|| format!("--where {condition:?}: expected KEY=VALUE"))?;
        if !KEYS.contains(&key) {
            return Err(format!("--where: unknown key {key:?} ({})", KEYS.join(", ")).into());
        }
        let field = key.replace('-', "_");
        if query.iter().any(|(k, _)| *k == field) {
            return Err(format!("--where: {key} given twice").into());
        }
        query.push((field, value.to_owned()));
    }
    if args.include_revoked {
        query.push(("status".into(), "all".into()));
    }
    let admin = secret_argument(&format!("@{}", args.admin_token_file.display()))?;
    let client = http_client(&args.ca)?;
    let url = endpoint(&args.ca.ca, "/v1/admin/certificates");
    let mut after: Option<String> = None;
    let mut shown = 0usize;
    if !args.json {
        println!(
            "{:<40} {:<8} {:<20} {:<12} {:<8} names",
            "serial", "status", "not_after", "issuer", "profile"
        );
    }
    'pages: loop {
        let mut page_query = query.clone();
        page_query.push((
            "limit".into(),
            (args.max - shown)
                .clamp(1, usize::from(args.page_size))
                .to_string(),
        ));
        if let Some(cursor) = after.take() {
            page_query.push(("after".into(), cursor));
        }
        let page_url = reqwest::Url::parse_with_params(&url, &page_query)
            .map_err(|e| format!("{url}: {e}"))?;
        let page = send_json(client.get(page_url).bearer_auth(&admin), &url).await?;
        for record in page["certificates"].as_array().into_iter().flatten() {
            if args.json {
                println!("{record}");
            } else {
                let names: Vec<&str> = record["subject_alt_names"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{:<40} {:<8} {:<20} {:<12} {:<8} {}",
                    record["serial"].as_str().unwrap_or("?"),
                    record["status"].as_str().unwrap_or("?"),
                    record["not_after"].as_str().unwrap_or("?"),
                    record["issuer"].as_str().unwrap_or("?"),
                    record["profile"].as_str().unwrap_or("?"),
                    names.join(" ")
                );
            }
            shown += 1;
            if shown >= args.max {
                break 'pages;
            }
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    eprintln!("{shown} certificates");
    Ok(())
}
