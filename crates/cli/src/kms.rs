//! `carimbo kms …`: key management and envelope encryption on a local keyring.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use carimbo_kms::envelope::{self, DATA_HEADER_LEN, Headers, TAG_LEN};
use carimbo_kms::{
    Caller, EncryptionContext, Error, KeyAlgorithm, KeyName, KeyRecord, Keyring, KeyringSettings,
    PendingFile, Purpose, WrapAlgorithm,
};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::local_keyring::{self, KeyringOptions};

type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Largest input `sign`, `verify`, `hmac` and `verify-hmac` read (they need the whole
/// message in memory); sign a digest of larger files instead.
const MAX_MESSAGE: u64 = 64 * 1024 * 1024;
/// I/O buffer size for streaming envelopes.
const IO_BUFFER: usize = 256 * 1024;

/// The keyring directory and provider options every command takes.
#[derive(Debug, Args)]
pub struct KeyringArgs {
    /// Keyring directory.
    #[arg(long, value_name = "DIR")]
    keyring: PathBuf,
    /// PKCS#11 provider config (module, token label/serial, PIN file or env var). Recorded
    /// in the keyring the first time; given again, it overrides the recorded one.
    #[arg(long, value_name = "FILE")]
    pkcs11_config: Option<PathBuf>,
}

/// `carimbo kms` subcommands.
#[derive(Debug, Subcommand)]
pub enum KmsCommand {
    /// Create an empty keyring (create-key also creates one with default settings).
    Init {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// How long a version must stay disabled before it may be destroyed
        /// (e.g. 30d, 12h, 0s).
        #[arg(long, default_value = "30d", value_parser = parse_duration)]
        destroy_wait: u64,
    },
    /// Create a key (version 1, primary).
    CreateKey {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// Key name {use}/{env}/{name}, e.g. envelope-data/prod/payments.
        #[arg(long)]
        name: KeyName,
        /// sign, envelope, hmac or pki-ca.
        #[arg(long)]
        purpose: Purpose,
        /// Algorithm (default by purpose: ecdsa-p256-sha256, aes-256-gcm, hmac-sha256,
        /// ecdsa-p384-sha384 for pki-ca).
        #[arg(long)]
        algorithm: Option<KeyAlgorithm>,
        /// file or pkcs11 (default: pkcs11 when --pkcs11-config is given, else file).
        #[arg(long)]
        provider: Option<String>,
    },
    /// Sign a file (its SHA-256) through the KMS API; writes FILE.sig.
    SignBlob(crate::blob::SignBlobArgs),
    /// Check a file against its .sig, offline with a public key or through the API.
    VerifyBlob(crate::blob::VerifyBlobArgs),
    /// Print a service signing key's public key (PEM), fetched from the KMS API.
    FetchPublicKey(crate::blob::PublicKeyArgs),
    /// Move every inventory row of a service key to a version in another provider
    /// (file → pkcs11 → aws), or to the primary version after a rotation: a
    /// resumable rewrap job over the service's database (see docs/kms-api.md).
    Migrate {
        /// The service config (`carimbo serve --config`), with a `[kms]` section.
        #[arg(long)]
        config: std::path::PathBuf,
        /// The key whose rows move.
        #[arg(long)]
        key: KeyName,
        /// The provider they must end up in (file, pkcs11 or aws).
        #[arg(long)]
        to: String,
        /// Only count what would move.
        #[arg(long)]
        dry_run: bool,
        /// Rewraps per second at most (0: unlimited).
        #[arg(long, default_value_t = 0)]
        rate: u32,
        /// Attempts per row on transient failures before the dead letter.
        #[arg(long, default_value_t = 5)]
        max_attempts: u32,
        /// Rows rewrapped at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Lease TTL of the job (e.g. 15s): a killed job is resumed by the next run
        /// once its lease lapses.
        #[arg(long, default_value = "15s", value_parser = parse_duration)]
        lease_ttl: u64,
    },
    /// List keys.
    List {
        #[command(flatten)]
        keyring: KeyringArgs,
    },
    /// Show a key's versions and states as JSON.
    Describe {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// Key name.
        #[arg(long)]
        key: KeyName,
    },
    /// Encrypt a file into an envelope under the key's primary version.
    Encrypt {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// Envelope key (purpose envelope).
        #[arg(long)]
        key: KeyName,
        #[command(flatten)]
        context: ContextArgs,
        #[command(flatten)]
        files: InOut,
        /// Plaintext bytes per segment.
        #[arg(long, default_value_t = envelope::DEFAULT_SEGMENT_SIZE)]
        segment_size: u32,
    },
    /// Decrypt an envelope (the key is named in the envelope).
    Decrypt {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// Refuse envelopes not made with this key.
        #[arg(long)]
        key: Option<KeyName>,
        #[command(flatten)]
        context: ContextArgs,
        #[command(flatten)]
        files: InOut,
    },
    /// Add a new version and make it primary (both rotation phases).
    Rotate {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// Key name.
        #[arg(long)]
        key: KeyName,
        /// Only add the version (phase one); promote it later with `promote`.
        #[arg(long)]
        no_promote: bool,
        /// Provider of the new version (default: that of the primary version).
        #[arg(long)]
        provider: Option<String>,
    },
    /// Make an enabled version the primary (rotation phase two).
    Promote(VersionArgs),
    /// Disable a version (reversible; the primary cannot be disabled).
    Disable(VersionArgs),
    /// Enable a disabled version.
    Enable(VersionArgs),
    /// Destroy a version disabled for at least the keyring's waiting period.
    Destroy(VersionArgs),
    /// Replace an envelope's wrap block with one under the key's primary version; data
    /// segments are copied unchanged.
    Rewrap {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// Refuse envelopes not made with this key.
        #[arg(long)]
        key: Option<KeyName>,
        #[command(flatten)]
        context: ContextArgs,
        #[command(flatten)]
        files: InOut,
    },
    /// Sign a file with the key's primary version (raw signature bytes; DER for ECDSA).
    Sign {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// Signing key.
        #[arg(long)]
        key: KeyName,
        #[command(flatten)]
        files: InOut,
    },
    /// Verify a signature over a file (any enabled version, or --version).
    Verify {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// Signing key.
        #[arg(long)]
        key: KeyName,
        /// Version to verify with.
        #[arg(long)]
        version: Option<u32>,
        /// Signed file.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// Signature file.
        #[arg(long, value_name = "FILE")]
        signature: PathBuf,
    },
    /// Write a signing key's public key as PEM.
    PublicKey {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// Signing key.
        #[arg(long)]
        key: KeyName,
        /// Version (default: primary).
        #[arg(long)]
        version: Option<u32>,
        /// Output file (default: standard output).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// HMAC-SHA-256 of a file with the key's primary version; prints `version hex-tag`.
    Hmac {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// HMAC key.
        #[arg(long)]
        key: KeyName,
        /// Input file.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
    },
    /// Check an HMAC-SHA-256 tag over a file.
    VerifyHmac {
        #[command(flatten)]
        keyring: KeyringArgs,
        /// HMAC key.
        #[arg(long)]
        key: KeyName,
        /// Version that made the tag.
        #[arg(long)]
        version: u32,
        /// Input file.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// The tag in hex.
        #[arg(long)]
        tag: String,
    },
    /// Print an envelope's headers as JSON, without decrypting anything.
    Inspect {
        /// Envelope file.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
    },
}

/// Input and output files.
#[derive(Debug, Args)]
pub struct InOut {
    /// Input file.
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Output file, written under a temporary name and renamed when complete.
    #[arg(long = "out", value_name = "FILE")]
    output: PathBuf,
}

/// Encryption context pairs.
#[derive(Debug, Args)]
pub struct ContextArgs {
    /// Encryption context pair key=value (repeatable); the same pairs are needed to
    /// decrypt.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pairs: Vec<String>,
}

impl ContextArgs {
    fn parse(&self) -> Result<EncryptionContext, Error> {
        EncryptionContext::from_pairs(&self.pairs)
    }
}

/// A key version.
#[derive(Debug, Args)]
pub struct VersionArgs {
    #[command(flatten)]
    keyring: KeyringArgs,
    /// Key name.
    #[arg(long)]
    key: KeyName,
    /// Version number.
    #[arg(long)]
    version: u32,
}

fn parse_duration(text: &str) -> Result<u64, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30d, 12h, 90m or 0s"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?} (use s, m, h or d)")),
    };
    value
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too long"))
}

fn caller() -> Caller {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    Caller::new(format!("cli:{user}"))
}

fn open_keyring(args: &KeyringArgs, create: Option<KeyringSettings>) -> Result<Keyring, Error> {
    local_keyring::open(KeyringOptions {
        directory: &args.keyring,
        create,
        pkcs11_config: args.pkcs11_config.as_deref(),
    })
}

/// Runs one `carimbo kms` command.
pub async fn run(command: KmsCommand) -> CliResult {
    match command {
        KmsCommand::SignBlob(args) => crate::blob::sign_blob(args).await,
        KmsCommand::VerifyBlob(args) => crate::blob::verify_blob(args).await,
        KmsCommand::FetchPublicKey(args) => crate::blob::public_key(args).await,
        KmsCommand::Migrate {
            config,
            key,
            to,
            dry_run,
            rate,
            max_attempts,
            concurrency,
            lease_ttl,
        } => {
            let options = crate::service::MigrateArgs {
                dry_run,
                rate,
                max_attempts,
                concurrency,
                lease_ttl,
            };
            crate::service::kms_migrate(&config, key, to, options).await
        }
        KmsCommand::Init {
            keyring,
            destroy_wait,
        } => {
            if keyring
                .keyring
                .join(carimbo_kms::FileKeyringStore::FILE_NAME)
                .exists()
            {
                return Err(
                    format!("a keyring already exists in {}", keyring.keyring.display()).into(),
                );
            }
            open_keyring(
                &keyring,
                Some(KeyringSettings {
                    destroy_wait_seconds: destroy_wait,
                }),
            )?;
            println!("created keyring {}", keyring.keyring.display());
            Ok(())
        }
        KmsCommand::CreateKey {
            keyring,
            name,
            purpose,
            algorithm,
            provider,
        } => {
            let provider = provider.unwrap_or_else(|| {
                if keyring.pkcs11_config.is_some() {
                    "pkcs11"
                } else {
                    "file"
                }
                .to_owned()
            });
            let ring = open_keyring(&keyring, Some(KeyringSettings::default()))?;
            let record = ring
                .create_key(&caller(), &name, purpose, algorithm, &provider)
                .await?;
            println!(
                "created {} ({} {}, version 1 in {})",
                record.name, record.purpose, record.algorithm, provider
            );
            Ok(())
        }
        KmsCommand::List { keyring } => {
            let ring = open_keyring(&keyring, None)?;
            for record in ring.store().keys().await? {
                println!(
                    "{}\t{}\t{}\tprimary v{}\t{} version(s)",
                    record.name,
                    record.purpose,
                    record.algorithm,
                    record.primary_version,
                    record.versions.len()
                );
            }
            Ok(())
        }
        KmsCommand::Describe { keyring, key } => {
            let ring = open_keyring(&keyring, None)?;
            print_json(&describe(&ring.describe(&key).await?))
        }
        KmsCommand::Encrypt {
            keyring,
            key,
            context,
            files,
            segment_size,
        } => {
            let context = context.parse()?;
            let ring = open_keyring(&keyring, None)?;
            let mut input = open_input(&files.input)?;
            let sealed = ring.seal(&caller(), &key, &context, segment_size).await?;
            write_output(&files.output, 0o644, |out| {
                sealed.headers.write_to(out)?;
                envelope::encrypt_segments(&sealed.dek, &sealed.headers.data, &mut input, out)?;
                Ok(())
            })
        }
        KmsCommand::Decrypt {
            keyring,
            key,
            context,
            files,
        } => {
            let context = context.parse()?;
            let ring = open_keyring(&keyring, None)?;
            let mut input = open_input(&files.input)?;
            let headers = Headers::read_from(&mut input)?;
            check_key(&headers, key.as_ref())?;
            let opened = ring.open(&caller(), &headers, &context).await?;
            // Plaintext is written 0600 and published only once every segment verified.
            write_output(&files.output, 0o600, |out| {
                envelope::decrypt_segments(&opened.dek, &headers.data, &mut input, out)?;
                Ok(())
            })
        }
        KmsCommand::Rewrap {
            keyring,
            key,
            context,
            files,
        } => {
            let context = context.parse()?;
            let ring = open_keyring(&keyring, None)?;
            let mut input = open_input(&files.input)?;
            let headers = Headers::read_from(&mut input)?;
            check_key(&headers, key.as_ref())?;
            let rewrapped = ring.rewrap(&caller(), &headers, &context).await?;
            write_output(&files.output, 0o644, |out| {
                rewrapped.write_to(out)?;
                std::io::copy(&mut input, out)?;
                Ok(())
            })?;
            eprintln!(
                "rewrapped from version {} to version {}",
                headers.wrap.key_version, rewrapped.wrap.key_version
            );
            Ok(())
        }
        KmsCommand::Rotate {
            keyring,
            key,
            no_promote,
            provider,
        } => {
            let ring = open_keyring(&keyring, None)?;
            let caller = caller();
            let version = if no_promote {
                ring.add_version(&caller, &key, provider.as_deref()).await?
            } else {
                ring.rotate(&caller, &key, provider.as_deref()).await?
            };
            let state = if no_promote {
                "added (not primary)"
            } else {
                "is now primary"
            };
            println!("{key} version {version} {state}");
            Ok(())
        }
        KmsCommand::Promote(args) => {
            let ring = open_keyring(&args.keyring, None)?;
            ring.promote(&caller(), &args.key, args.version).await?;
            println!("{} version {} is now primary", args.key, args.version);
            Ok(())
        }
        KmsCommand::Disable(args) => {
            let ring = open_keyring(&args.keyring, None)?;
            ring.disable(&caller(), &args.key, args.version).await?;
            println!("{} version {} disabled", args.key, args.version);
            Ok(())
        }
        KmsCommand::Enable(args) => {
            let ring = open_keyring(&args.keyring, None)?;
            ring.enable(&caller(), &args.key, args.version).await?;
            println!("{} version {} enabled", args.key, args.version);
            Ok(())
        }
        KmsCommand::Destroy(args) => {
            let ring = open_keyring(&args.keyring, None)?;
            ring.destroy(&caller(), &args.key, args.version).await?;
            println!("{} version {} destroyed", args.key, args.version);
            Ok(())
        }
        KmsCommand::Sign {
            keyring,
            key,
            files,
        } => {
            let ring = open_keyring(&keyring, None)?;
            let message = read_message(&files.input)?;
            let (version, signature) = ring.sign(&caller(), &key, &message).await?;
            write_output(&files.output, 0o644, |out| {
                out.write_all(&signature)?;
                Ok(())
            })?;
            eprintln!("signed with {key} version {version}");
            Ok(())
        }
        KmsCommand::Verify {
            keyring,
            key,
            version,
            input,
            signature,
        } => {
            let ring = open_keyring(&keyring, None)?;
            let message = read_message(&input)?;
            let signature = read_message(&signature)?;
            let version = ring
                .verify(&caller(), &key, version, &message, &signature)
                .await?;
            println!("signature OK ({key} version {version})");
            Ok(())
        }
        KmsCommand::PublicKey {
            keyring,
            key,
            version,
            out,
        } => {
            let ring = open_keyring(&keyring, None)?;
            let (_, der) = ring.public_key(&key, version).await?;
            let pem = pem("PUBLIC KEY", &der);
            match out {
                Some(path) => write_output(&path, 0o644, |file| {
                    file.write_all(pem.as_bytes())?;
                    Ok(())
                }),
                None => {
                    print!("{pem}");
                    Ok(())
                }
            }
        }
        KmsCommand::Hmac {
            keyring,
            key,
            input,
        } => {
            let ring = open_keyring(&keyring, None)?;
            let message = read_message(&input)?;
            let (version, tag) = ring.hmac(&caller(), &key, &message).await?;
            println!("{version} {}", hex::encode(tag));
            Ok(())
        }
        KmsCommand::VerifyHmac {
            keyring,
            key,
            version,
            input,
            tag,
        } => {
            let ring = open_keyring(&keyring, None)?;
            let message = read_message(&input)?;
            let tag = hex::decode(tag.trim()).map_err(|_| "--tag is not hex")?;
            ring.verify_hmac(&caller(), &key, version, &message, &tag)
                .await?;
            println!("HMAC OK ({key} version {version})");
            Ok(())
        }
        KmsCommand::Inspect { input } => inspect(&input),
    }
}

fn check_key(headers: &Headers, expected: Option<&KeyName>) -> Result<(), Error> {
    match expected {
        Some(name) if name.as_str() != headers.wrap.key_name => Err(Error::InvalidState(format!(
            "the envelope was made with key {}, not {name}",
            headers.wrap.key_name
        ))),
        _ => Ok(()),
    }
}

fn open_input(path: &Path) -> Result<BufReader<File>, Error> {
    File::open(path)
        .map(|file| BufReader::with_capacity(IO_BUFFER, file))
        .map_err(|e| Error::io("open", path, e))
}

fn read_message(path: &Path) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let length = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    if length > MAX_MESSAGE {
        return Err(format!(
            "{} is larger than {} MiB; sign or MAC its SHA-256 digest instead",
            path.display(),
            MAX_MESSAGE >> 20
        )
        .into());
    }
    let mut message = Vec::with_capacity(length as usize);
    file.take(MAX_MESSAGE)
        .read_to_end(&mut message)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(message)
}

/// Writes `path` through `write`, under a temporary name renamed into place only when
/// `write` succeeds: on any failure nothing is left at `path`.
fn write_output(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut BufWriter<&mut File>) -> Result<(), Error>,
) -> CliResult {
    let mut pending = PendingFile::create(path, mode)?;
    {
        let mut writer = BufWriter::with_capacity(IO_BUFFER, pending.file());
        write(&mut writer)?;
        writer.flush().map_err(|e| Error::io("write", path, e))?;
    }
    pending.commit()?;
    Ok(())
}

fn print_json(value: &serde_json::Value) -> CliResult {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn describe(record: &KeyRecord) -> serde_json::Value {
    let versions: Vec<_> = record
        .versions
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "state": v.state.to_string(),
                "primary": v.version == record.primary_version,
                "provider": v.reference.provider,
                "reference": v.reference.to_string(),
                "created_at": rfc3339(v.created_at),
                "disabled_at": v.disabled_at.map(rfc3339),
                "destroyed_at": v.destroyed_at.map(rfc3339),
            })
        })
        .collect();
    json!({
        "name": record.name.as_str(),
        "purpose": record.purpose.as_str(),
        "algorithm": record.algorithm.to_string(),
        "primary_version": record.primary_version,
        "versions": versions,
    })
}

fn rfc3339(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| time.to_string())
}

fn inspect(path: &Path) -> CliResult {
    let mut input = open_input(path)?;
    let headers = Headers::read_from(&mut input)?;
    let headers_len = input
        .stream_position()
        .map_err(|e| Error::io("seek", path, e))?;
    let file_len = std::fs::metadata(path)
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    let data_bytes = file_len.saturating_sub(headers_len);
    let sealed_segment = u64::from(headers.data.segment_size) + TAG_LEN as u64;
    let segments = data_bytes.div_ceil(sealed_segment);
    let algorithm = match headers.wrap.wrapped.algorithm {
        WrapAlgorithm::Aes256Gcm => "aes-256-gcm",
        WrapAlgorithm::ProviderAead => "provider-aead",
        _ => "unknown",
    };
    print_json(&json!({
        "format_version": envelope::FORMAT_VERSION,
        "suite": "aes-256-gcm-segments/hkdf-sha256",
        "segment_size": headers.data.segment_size,
        "message_id": hex::encode(headers.data.message_id),
        "key_commitment": hex::encode(headers.data.commitment),
        "context_digest": hex::encode(headers.data.context_digest),
        "data_header_bytes": DATA_HEADER_LEN,
        "wrap": {
            "key": headers.wrap.key_name,
            "version": headers.wrap.key_version,
            "key_reference": headers.wrap.key_reference,
            "algorithm": algorithm,
            "nonce_bytes": headers.wrap.wrapped.nonce.len(),
            "wrapped_key_bytes": headers.wrap.wrapped.ciphertext.len(),
        },
        "segments": segments,
        "segment_bytes": data_bytes,
        "plaintext_bytes": data_bytes.saturating_sub(segments * TAG_LEN as u64),
    }))
}

/// PEM with `label` around `der`.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("0s"), Ok(0));
        assert_eq!(parse_duration("30d"), Ok(30 * 86_400));
        assert_eq!(parse_duration("12h"), Ok(12 * 3600));
        assert_eq!(parse_duration("45"), Ok(45));
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("h").is_err());
    }
}
