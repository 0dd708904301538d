//! `carimbo kms sign-blob` / `verify-blob`: artifacts (model weights, images, release
//! archives) signed through the KMS API without the key ever leaving it.
//!
//! The file is hashed here (SHA-256, streamed); the KMS signs the 32-byte digest with
//! the key's primary version. The signature file (JSON) names the key, version and
//! algorithm, so a service can check its artifacts at start-up offline, with the
//! public key (`fetch-public-key`, exported once), or through the API.

use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use carimbo_kms::{KeyAlgorithm, verify_signature};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{CaArgs, send_json};

type BlobResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The signature file's format name.
const FORMAT: &str = "carimbo-blob-signature/v1";

/// A blob signature file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlobSignature {
    format: String,
    key: String,
    key_version: u32,
    algorithm: String,
    /// `sha256:{hex}` of the file.
    digest: String,
    /// Base64 signature over the 32 digest bytes.
    signature: String,
}

/// `carimbo kms sign-blob` arguments.
#[derive(Debug, Args)]
pub struct SignBlobArgs {
    #[command(flatten)]
    ca: CaArgs,
    /// File holding the KMS client token.
    #[arg(long)]
    token_file: PathBuf,
    /// Signing key (purpose sign), e.g. model-sign/prod/ml.
    #[arg(long)]
    key: String,
    /// The file to sign.
    #[arg(long = "in")]
    input: PathBuf,
    /// Where to write the signature (default: the input with `.sig` appended).
    #[arg(long = "out")]
    output: Option<PathBuf>,
}

/// `carimbo kms verify-blob` arguments.
#[derive(Debug, Args)]
pub struct VerifyBlobArgs {
    /// The file.
    #[arg(long = "in")]
    input: PathBuf,
    /// Its signature (default: the input with `.sig` appended).
    #[arg(long)]
    signature: Option<PathBuf>,
    /// Verify offline with this public key (PEM SubjectPublicKeyInfo, from
    /// `carimbo kms fetch-public-key`).
    #[arg(long, conflicts_with_all = ["ca", "ca_bundle", "token_file"])]
    public_key: Option<PathBuf>,
    /// Or verify through the KMS API at this URL.
    #[arg(long)]
    ca: Option<String>,
    /// The CA bundle for the API.
    #[arg(long)]
    ca_bundle: Option<PathBuf>,
    /// File holding the KMS client token for the API.
    #[arg(long)]
    token_file: Option<PathBuf>,
}

/// `carimbo kms fetch-public-key` arguments.
#[derive(Debug, Args)]
pub struct PublicKeyArgs {
    #[command(flatten)]
    ca: CaArgs,
    /// File holding the KMS client token.
    #[arg(long)]
    token_file: PathBuf,
    /// Signing key.
    #[arg(long)]
    key: String,
    /// Version (default: primary).
    #[arg(long)]
    version: Option<u32>,
}

fn sha256_file(path: &Path) -> BlobResult<[u8; 32]> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if read == 0 {
            break;
        }
        context.update(&buffer[..read]);
    }
    let mut digest = [0u8; 32];
    digest.copy_from_slice(context.finish().as_ref());
    Ok(digest)
}

fn token(path: &Path) -> BlobResult<String> {
    Ok(std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .trim()
        .to_owned())
}

fn sig_path(input: &Path, given: Option<&PathBuf>) -> PathBuf {
    given.cloned().unwrap_or_else(|| {
        let mut name = input.as_os_str().to_owned();
        name.push(".sig");
        PathBuf::from(name)
    })
}

/// Signs a file through the KMS API.
pub async fn sign_blob(args: SignBlobArgs) -> BlobResult {
    let digest = sha256_file(&args.input)?;
    let url = format!("{}/v1/kms/sign", args.ca.url());
    let reply = send_json(
        args.ca
            .client()?
            .post(&url)
            .bearer_auth(token(&args.token_file)?)
            .json(&json!({ "key": args.key, "message": BASE64.encode(digest) })),
        &url,
    )
    .await?;
    let signature = BlobSignature {
        format: FORMAT.into(),
        key: args.key.clone(),
        key_version: reply["key_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or("the answer has no key_version")?,
        algorithm: reply["algorithm"]
            .as_str()
            .ok_or("the answer has no algorithm")?
            .to_owned(),
        digest: format!("sha256:{}", hex::encode(digest)),
        signature: reply["signature"]
            .as_str()
            .ok_or("the answer has no signature")?
            .to_owned(),
    };
    let out = sig_path(&args.input, args.output.as_ref());
    std::fs::write(&out, serde_json::to_string_pretty(&signature)? + "\n")
        .map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!(
        "signed {} with {} v{} ({}): {}",
        args.input.display(),
        signature.key,
        signature.key_version,
        signature.algorithm,
        out.display()
    );
    Ok(())
}

/// Checks a file against its signature, offline or through the API; an error (exit
/// 1) unless it verifies.
pub async fn verify_blob(args: VerifyBlobArgs) -> BlobResult {
    let path = sig_path(&args.input, args.signature.as_ref());
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let signature: BlobSignature = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a blob signature: {e}", path.display()))?;
    if signature.format != FORMAT {
        return Err(format!("{}: unknown format {:?}", path.display(), signature.format).into());
    }
    let digest = sha256_file(&args.input)?;
    if signature.digest != format!("sha256:{}", hex::encode(digest)) {
        return Err(format!(
            "{} does not match its signature: the file changed (digest differs)",
            args.input.display()
        )
        .into());
    }
    let signature_bytes = BASE64
        .decode(signature.signature.trim())
        .map_err(|_| format!("{}: signature is not base64", path.display()))?;
    let valid = match (&args.public_key, &args.ca) {
        (Some(public_key), _) => {
            let pem = std::fs::read_to_string(public_key)
                .map_err(|e| format!("{}: {e}", public_key.display()))?;
            let spki = carimbo_pki::pem_decode(&pem, "PUBLIC KEY")
                .map_err(|e| format!("{}: {e}", public_key.display()))?;
            let algorithm = signature
                .algorithm
                .parse::<KeyAlgorithm>()?
                .signature()
                .ok_or("the signature names a key that is not a signing key")?;
            verify_signature(algorithm, &spki, &digest, &signature_bytes).is_ok()
        }
        (None, Some(ca)) => {
            let bundle = args.ca_bundle.as_ref().ok_or("--ca needs --ca-bundle")?;
            let token_file = args.token_file.as_ref().ok_or("--ca needs --token-file")?;
            let url = format!("{}/v1/kms/verify", ca.trim_end_matches('/'));
            let reply = send_json(
                crate::client::ca_client(bundle)?
                    .post(&url)
                    .bearer_auth(token(token_file)?)
                    .json(&json!({
                        "key": signature.key,
                        "version": signature.key_version,
                        "message": BASE64.encode(digest),
                        "signature": signature.signature,
                    })),
                &url,
            )
            .await?;
            reply["valid"].as_bool() == Some(true)
        }
        (None, None) => {
            return Err("give --public-key, or --ca with --ca-bundle and --token-file".into());
        }
    };
    if !valid {
        return Err(format!(
            "{}: the signature does not verify with {} v{}",
            args.input.display(),
            signature.key,
            signature.key_version
        )
        .into());
    }
    println!(
        "{}: signed by {} v{} ({})",
        args.input.display(),
        signature.key,
        signature.key_version,
        signature.digest
    );
    Ok(())
}

/// Prints a signing key's public key (PEM) from the KMS API.
pub async fn public_key(args: PublicKeyArgs) -> BlobResult {
    let url = format!("{}/v1/kms/public-key", args.ca.url());
    let reply = send_json(
        args.ca
            .client()?
            .post(&url)
            .bearer_auth(token(&args.token_file)?)
            .json(&json!({ "key": args.key, "version": args.version })),
        &url,
    )
    .await?;
    let der = BASE64
        .decode(
            reply["public_key"]
                .as_str()
                .ok_or("no public key in the answer")?,
        )
        .map_err(|_| "the public key is not base64")?;
    print!("{}", carimbo_pki::pem_encode("PUBLIC KEY", &der));
    Ok(())
}
