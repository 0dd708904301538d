//! `carimbo-bench`: measures what `docs/benchmarks.md` reports, each figure next to a
//! baseline measured in the same run.
//!
//! ```text
//! carimbo-bench [--seconds N] [--pkcs11-config FILE]   markdown tables on stdout
//! carimbo-bench issue-load --ca URL [--ca URL…] --ca-bundle F --admin-token-file F
//!               [--provisioner P] [--san dns:N] [--concurrency C] [--seconds S]
//!                                                      (issuances/s over HTTPS, latency)
//! carimbo-bench kms-load --ca URL --ca-bundle F --client-token-file F --admin-token-file F
//!               [--key K] [--operation encrypt|decrypt] [--payload BYTES] [--concurrency C] [--seconds S]
//!                                                      (KMS API requests/s over HTTPS, latency)
//! carimbo-bench static-http --listen ADDR --body FILE  (baseline for the OCSP figure:
//!                                                       the same bytes from memory)
//! carimbo-bench raw-softhsm --pkcs11-config FILE --seconds N --threads T
//!                                                      (internal: raw C_Sign baseline,
//!                                                       in its own process)
//! ```
//!
//! Figures: signatures/s per provider and algorithm on 1 and 2 threads next to
//! `openssl speed` and raw SoftHSM2 `C_Sign`; envelope encrypt/decrypt throughput for
//! 1 MiB in memory and 1 GiB streamed, next to raw AES-256-GCM; peak RSS of the 1 GiB
//! streaming encrypt. The end-to-end 1 GiB file round trips through the `carimbo` CLI
//! are timed by `scripts/bench.sh`.
#![allow(clippy::print_stdout)]

mod issue_load;
mod kms_load;
mod static_http;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use carimbo_kms::envelope::{self, DataHeader};
use carimbo_kms::{
    DataEncryptionKey, EncryptionContext, FileProvider, GenerateRequest, KeyAlgorithm, KeyName,
    KeyProvider, Purpose, SignatureAlgorithm, SigningKey, load_or_create_file_kek,
};
use carimbo_kms_pkcs11::{Pkcs11Config, Pkcs11Provider};

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Options {
    seconds: f64,
    pkcs11_config: Option<PathBuf>,
    threads: usize,
}

fn parse_options(args: &[String]) -> BenchResult<Options> {
    let mut options = Options {
        seconds: 3.0,
        pkcs11_config: None,
        threads: 1,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = || iter.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--seconds" => options.seconds = value()?.parse()?,
            "--pkcs11-config" => options.pkcs11_config = Some(PathBuf::from(value()?)),
            "--threads" => options.threads = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("raw-softhsm") => parse_options(&args[1..]).and_then(|o| raw_softhsm(&o)),
        Some("static-http") => static_http::parse(&args[1..]).and_then(|o| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(static_http::run(o))
        }),
        Some("kms-load") => kms_load::parse(&args[1..]).and_then(|o| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(kms_load::run(o))
        }),
        Some("issue-load") => issue_load::parse(&args[1..]).and_then(|o| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(issue_load::run(o))
        }),
        _ => parse_options(&args).and_then(|o| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?
                .block_on(run(o))
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> BenchResult {
    let dir = std::env::temp_dir().join(format!("carimbo-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kek = load_or_create_file_kek(&dir.join("file-kek"))?;
    let file: Arc<dyn KeyProvider> = Arc::new(FileProvider::new(dir.join("keys"), kek)?);
    let pkcs11: Option<Arc<dyn KeyProvider>> = match &options.pkcs11_config {
        Some(path) => Some(Arc::new(
            Pkcs11Provider::open(&Pkcs11Config::from_file(path)?).await?,
        )),
        None => None,
    };

    println!("### Signatures per second\n");
    println!(
        "Each cell: signatures/s with 1 task | 2 concurrent tasks ({}s each).\n",
        options.seconds
    );
    let algorithms = [
        (
            "ECDSA P-256",
            SignatureAlgorithm::EcdsaP256Sha256,
            "ecdsap256",
        ),
        (
            "ECDSA P-384",
            SignatureAlgorithm::EcdsaP384Sha384,
            "ecdsap384",
        ),
        ("Ed25519", SignatureAlgorithm::Ed25519, "ed25519"),
        (
            "RSA-3072 PKCS#1",
            "rsa-3072-pkcs1-sha256".parse()?,
            "rsa3072",
        ),
        ("RSA-4096 PSS", "rsa-4096-pss-sha256".parse()?, "rsa4096"),
    ];
    println!(
        "| algorithm | `openssl speed` (1 \\| 2 proc) | file provider (aws-lc-rs) | PKCS#11 provider (SoftHSM2, pool) |"
    );
    println!("|---|---|---|---|");
    for (label, algorithm, openssl_name) in algorithms {
        let openssl_one = openssl_speed(openssl_name, 1, options.seconds)?;
        let openssl_two = openssl_speed(openssl_name, 2, options.seconds)?;
        let file_rates = sign_rates(file.as_ref(), algorithm, options.seconds).await?;
        let pkcs11_rates = match &pkcs11 {
            Some(provider) => match sign_rates(provider.as_ref(), algorithm, options.seconds).await
            {
                Ok((one, two)) => format!("{one:.0} \\| {two:.0}"),
                Err(error) => format!("n/a ({error})"),
            },
            None => "not measured".into(),
        };
        println!(
            "| {label} | {openssl_one:.0} \\| {openssl_two:.0} | {:.0} \\| {:.0} | {pkcs11_rates} |",
            file_rates.0, file_rates.1
        );
    }
    if let Some(path) = &options.pkcs11_config {
        let mut cells = Vec::new();
        for threads in [1, 2] {
            let output = Command::new(std::env::current_exe()?)
                .args(["raw-softhsm", "--pkcs11-config"])
                .arg(path)
                .args([
                    "--seconds",
                    &options.seconds.to_string(),
                    "--threads",
                    &threads.to_string(),
                ])
                .output()?;
            if !output.status.success() {
                return Err(
                    format!("raw-softhsm: {}", String::from_utf8_lossy(&output.stderr)).into(),
                );
            }
            cells.push(String::from_utf8_lossy(&output.stdout).trim().to_owned());
        }
        println!(
            "\nBaseline, raw SoftHSM2 `C_Sign` on a private token-object key (CKM_ECDSA, P-256, host-side SHA-256, one session per thread, no pool, no async): {} (1 thread) | {} (2 threads) signatures/s.",
            cells[0], cells[1]
        );
    }

    println!("\n### Rewrap (data keys per second)\n");
    println!(
        "A keyring over one provider, {REWRAP_KEYS} data keys sealed under version 1 of an envelope key, the key rotated, then every wrapped key rewrapped to version 2 (unwrap with v1, wrap with v2; the context kept), for {}s; 1 task | 4 concurrent tasks. Baseline: raw AES-256-GCM seal+open of a 32-byte key in aws-lc-rs, one core.\n",
        options.seconds
    );
    println!("| provider | rewraps/s (1 \\| 4 tasks) |");
    println!("|---|---|");
    println!(
        "| raw AES-256-GCM seal+open of 32 bytes (baseline) | {:.0} |",
        raw_key_wrap(options.seconds)?
    );
    let mut providers = vec![("file provider (aws-lc-rs)", Arc::clone(&file))];
    if let Some(provider) = &pkcs11 {
        providers.push(("PKCS#11 provider (SoftHSM2)", Arc::clone(provider)));
    }
    for (label, provider) in providers {
        let (one, four) = rewrap_rates(&dir, provider, options.seconds).await?;
        println!("| {label} | {one:.0} \\| {four:.0} |");
    }

    println!("\n### Envelope throughput\n");
    let context = EncryptionContext::from_pairs(["bench=1"])?;
    let raw = raw_aes_gcm(1 << 20, options.seconds)?;
    let (encrypt_mib, decrypt_mib) = envelope_in_memory(&context, 1 << 20, options.seconds)?;
    let (encrypt_gib, decrypt_gib, peak) = envelope_streamed(&context, 1 << 30)?;
    println!("| measurement | MB/s (one core) |");
    println!("|---|---|");
    println!(
        "| raw AES-256-GCM, aws-lc-rs, 64 KiB chunks of a 1 MiB buffer (baseline) | {raw:.0} |"
    );
    println!("| envelope encrypt, 1 MiB in memory | {encrypt_mib:.0} |");
    println!("| envelope decrypt, 1 MiB in memory | {decrypt_mib:.0} |");
    println!(
        "| envelope encrypt, 1 GiB streamed (generated input, discarded output) | {encrypt_gib:.0} |"
    );
    println!("| envelope decrypt, 1 GiB streamed (from the encrypted stream) | {decrypt_gib:.0} |");
    println!(
        "\nPeak resident memory of this process after the 1 GiB streams: {:.1} MiB.",
        peak as f64 / 1024.0
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

const REWRAP_KEYS: usize = 2000;

/// Raw AES-256-GCM seal and open of a 32-byte key per second (the floor of a rewrap).
fn raw_key_wrap(seconds: f64) -> BenchResult<f64> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32])?);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut count = 0u64;
    while Instant::now() < deadline {
        let mut data = [0x11u8; 32].to_vec();
        let nonce = [0u8; 12];
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(b"aad"),
            &mut data,
        )?;
        key.open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(b"aad"),
            &mut data,
        )?;
        count += 1;
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// Rewraps per second through a keyring over `provider`: 1 task, 4 tasks.
async fn rewrap_rates(
    dir: &std::path::Path,
    provider: Arc<dyn KeyProvider>,
    seconds: f64,
) -> BenchResult<(f64, f64)> {
    use carimbo_kms::{
        Caller, FileKeyringStore, KeyName, Keyring, KeyringSettings, MemoryAuditSink, Purpose,
        SystemClock,
    };
    let ring_dir = dir.join(format!("ring-{}", provider.id()));
    std::fs::create_dir_all(&ring_dir)?;
    let store = FileKeyringStore::create(
        &ring_dir,
        KeyringSettings {
            destroy_wait_seconds: 0,
        },
    )?;
    let keyring = Arc::new(
        Keyring::new(
            Arc::new(store),
            Arc::new(MemoryAuditSink::default()),
            Arc::new(SystemClock),
        )
        .with_provider(Arc::clone(&provider)),
    );
    let caller = Caller::new("bench");
    let name = KeyName::new(&format!(
        "envelope-data/bench/rewrap-{}",
        std::process::id()
    ))?;
    keyring
        .create_key(&caller, &name, Purpose::Envelope, None, provider.id())
        .await?;
    let context = EncryptionContext::from_pairs(["bench=rewrap"])?;
    let mut headers = Vec::with_capacity(REWRAP_KEYS);
    for _ in 0..REWRAP_KEYS {
        headers.push(keyring.seal(&caller, &name, &context, 65536).await?.headers);
    }
    keyring.rotate(&caller, &name, None).await?;
    let headers = Arc::new(headers);
    let mut rates = Vec::new();
    for tasks in [1usize, 4] {
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        let start = Instant::now();
        let done = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::new();
        for task in 0..tasks {
            let (keyring, headers, done, context, caller) = (
                Arc::clone(&keyring),
                Arc::clone(&headers),
                Arc::clone(&done),
                context.clone(),
                caller.clone(),
            );
            handles.push(tokio::spawn(async move {
                let mut index = task;
                while Instant::now() < deadline {
                    keyring
                        .rewrap(&caller, &headers[index % headers.len()], &context)
                        .await?;
                    done.fetch_add(1, Ordering::Relaxed);
                    index += tasks;
                }
                Ok::<(), carimbo_kms::Error>(())
            }));
        }
        for handle in handles {
            handle.await??;
        }
        rates.push(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64());
    }
    Ok((rates[0], rates[1]))
}

/// Signatures/s on 1 task and on 2 concurrent tasks.
async fn sign_rates(
    provider: &dyn KeyProvider,
    algorithm: SignatureAlgorithm,
    seconds: f64,
) -> BenchResult<(f64, f64)> {
    static KEYS: AtomicU64 = AtomicU64::new(0);
    let name = KeyName::new(&format!(
        "bench-sign/bench/k{}-{}",
        std::process::id(),
        KEYS.fetch_add(1, Ordering::Relaxed)
    ))?;
    let generated = provider
        .generate(&GenerateRequest {
            name: &name,
            version: 1,
            purpose: Purpose::Sign,
            algorithm: KeyAlgorithm::Signature(algorithm),
        })
        .await?;
    let key = provider
        .signing_key(&generated.reference, algorithm)
        .await?;
    let one = sign_loop(key.clone(), 1, seconds).await?;
    let two = sign_loop(key, 2, seconds).await?;
    provider.destroy(&generated.reference).await?;
    Ok((one, two))
}

async fn sign_loop(key: Arc<dyn SigningKey>, tasks: usize, seconds: f64) -> BenchResult<f64> {
    let count = Arc::new(AtomicU64::new(0));
    let message = [0x5au8; 64];
    let mut handles = Vec::new();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    // Each task watches the deadline itself: software signing never yields, so a timer
    // on the same runtime could not fire while the tasks run.
    for _ in 0..tasks {
        let (key, count) = (key.clone(), count.clone());
        handles.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                key.sign(&message).await?;
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, carimbo_kms::Error>(())
        }));
    }
    for handle in handles {
        handle.await??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// `openssl speed` sign/s for `algorithm` with `processes` processes.
fn openssl_speed(algorithm: &str, processes: usize, seconds: f64) -> BenchResult<f64> {
    let mut command = Command::new("openssl");
    command.args(["speed", "-seconds", &format!("{}", seconds.ceil() as u64)]);
    if processes > 1 {
        command.args(["-multi", &processes.to_string()]);
    }
    let output = command.arg(algorithm).output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    // The last table row holds the figures; sign/s is the first of the two numbers
    // after the two timing columns.
    let row = text
        .lines()
        .rev()
        .find(|line| line.contains("bits") || line.starts_with("rsa"))
        .ok_or("no result line from openssl speed")?;
    let numbers: Vec<f64> = row
        .split_whitespace()
        .filter_map(|word| word.trim_end_matches('s').parse().ok())
        .collect();
    // Columns: [bits, sign time, verify time, sign/s, verify/s] (time columns end in 's').
    numbers
        .get(numbers.len().wrapping_sub(2))
        .copied()
        .ok_or_else(|| format!("cannot parse openssl speed output: {row}").into())
}

fn raw_aes_gcm(size: usize, seconds: f64) -> BenchResult<f64> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).map_err(|_| "aes key")?);
    let mut buffer = vec![0u8; size];
    let mut bytes = 0u64;
    let mut counter = 0u64;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        for chunk in buffer.chunks_mut(64 * 1024) {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&counter.to_be_bytes());
            counter += 1;
            let _tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&[0u8; 106]),
                    chunk,
                )
                .map_err(|_| "seal")?;
        }
        bytes += size as u64;
    }
    Ok(bytes as f64 / start.elapsed().as_secs_f64() / 1e6)
}

fn envelope_in_memory(
    context: &EncryptionContext,
    size: usize,
    seconds: f64,
) -> BenchResult<(f64, f64)> {
    let dek = DataEncryptionKey::generate()?;
    let header = DataHeader::new(&dek, context, envelope::DEFAULT_SEGMENT_SIZE)?;
    let plaintext = vec![0x42u8; size];
    let mut sealed = Vec::with_capacity(size + size / 1024);
    let mut opened = Vec::with_capacity(size);
    let (mut encrypted, mut decrypted) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        sealed.clear();
        envelope::encrypt_segments(&dek, &header, &mut &plaintext[..], &mut sealed)?;
        encrypted += size as u64;
    }
    let encrypt_rate = encrypted as f64 / start.elapsed().as_secs_f64() / 1e6;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        opened.clear();
        envelope::decrypt_segments(&dek, &header, &mut &sealed[..], &mut opened)?;
        decrypted += size as u64;
    }
    if opened != plaintext {
        return Err("round trip mismatch".into());
    }
    Ok((
        encrypt_rate,
        decrypted as f64 / start.elapsed().as_secs_f64() / 1e6,
    ))
}

/// Streams `size` bytes through encrypt (into a pipe-like hand-off of the ciphertext to
/// a decrypting thread) and reports both rates and peak RSS.
fn envelope_streamed(context: &EncryptionContext, size: u64) -> BenchResult<(f64, f64, u64)> {
    let dek = DataEncryptionKey::generate()?;
    let header = DataHeader::new(&dek, context, envelope::DEFAULT_SEGMENT_SIZE)?;
    let mut input = std::io::repeat(0x42).take(size);
    let mut counter = CountingSink(0);
    let start = Instant::now();
    envelope::encrypt_segments(&dek, &header, &mut input, &mut counter)?;
    let encrypt_rate = size as f64 / start.elapsed().as_secs_f64() / 1e6;
    // Decrypt a re-generated ciphertext stream without storing it: encrypt in one
    // thread into a bounded channel, decrypt in this one.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let producer_dek = dek.clone();
    let producer_header = header.clone();
    let producer = std::thread::spawn(move || {
        let mut writer = ChannelWriter(sender);
        let mut input = std::io::repeat(0x42).take(size);
        envelope::encrypt_segments(&producer_dek, &producer_header, &mut input, &mut writer)
    });
    let mut reader = ChannelReader {
        receiver,
        buffer: Vec::new(),
        position: 0,
    };
    let mut sink = CountingSink(0);
    let start = Instant::now();
    envelope::decrypt_segments(&dek, &header, &mut reader, &mut sink)?;
    let decrypt_rate = size as f64 / start.elapsed().as_secs_f64() / 1e6;
    producer
        .join()
        .map_err(|_| "encrypting thread panicked")??;
    if sink.0 != size {
        return Err("streamed round trip lost bytes".into());
    }
    Ok((encrypt_rate, decrypt_rate, peak_rss_kib()?))
}

struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        self.0 += buffer.len() as u64;
        Ok(buffer.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct ChannelWriter(std::sync::mpsc::SyncSender<Vec<u8>>);

impl Write for ChannelWriter {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        self.0
            .send(buffer.to_vec())
            .map_err(|_| std::io::Error::other("reader gone"))?;
        Ok(buffer.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct ChannelReader {
    receiver: std::sync::mpsc::Receiver<Vec<u8>>,
    buffer: Vec<u8>,
    position: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.position == self.buffer.len() {
            match self.receiver.recv() {
                Ok(next) => {
                    self.buffer = next;
                    self.position = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buffer.len() - self.position);
        out[..n].copy_from_slice(&self.buffer[self.position..self.position + n]);
        self.position += n;
        Ok(n)
    }
}

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kib() -> BenchResult<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("bad VmHWM line")?
        .parse()?)
}

/// Raw `C_Sign` loop on SoftHSM2 through cryptoki, without the provider: the baseline
/// for the provider's pool. Prints signatures/s.
fn raw_softhsm(options: &Options) -> BenchResult {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::Attribute;
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;

    let path = options
        .pkcs11_config
        .as_ref()
        .ok_or("--pkcs11-config is required")?;
    let config = Pkcs11Config::from_file(path)?;
    let pin = match &config.pin {
        carimbo_kms_pkcs11::PinSource::File(file) => {
            std::fs::read_to_string(file)?.trim_end().to_owned()
        }
        carimbo_kms_pkcs11::PinSource::Env(name) => std::env::var(name)?,
    };
    let pkcs11 = Pkcs11::new(&config.module)?;
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))?;
    let slot = pkcs11
        .get_slots_with_token()?
        .into_iter()
        .find(|slot| {
            pkcs11
                .get_token_info(*slot)
                .is_ok_and(|info| info.label().trim_end() == config.token_label)
        })
        .ok_or("token not found")?;
    let session = pkcs11.open_rw_session(slot)?;
    session.login(UserType::User, Some(&AuthPin::new(pin.into())))?;
    let p256 = vec![0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    // A token object, private and sensitive, like the provider's keys (SoftHSM2 signs
    // with session objects faster, which would flatter the baseline).
    let (public, private) = session.generate_key_pair(
        &Mechanism::EccKeyPairGen,
        &[
            Attribute::Token(true),
            Attribute::EcParams(p256),
            Attribute::Verify(true),
        ],
        &[
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
        ],
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let pkcs11 = Arc::new(pkcs11);
    let start = Instant::now();
    let mut threads = Vec::new();
    // A session object is visible to every session of the application that made it.
    for _ in 0..options.threads {
        let (pkcs11, stop, count) = (pkcs11.clone(), stop.clone(), count.clone());
        threads.push(std::thread::spawn(
            move || -> Result<(), cryptoki::error::Error> {
                let session = pkcs11.open_ro_session(slot)?;
                let message = [0x5au8; 64];
                while !stop.load(Ordering::Relaxed) {
                    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &message);
                    session.sign(&Mechanism::Ecdsa, private, digest.as_ref())?;
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            },
        ));
    }
    std::thread::sleep(Duration::from_secs_f64(options.seconds));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().map_err(|_| "signing thread panicked")??;
    }
    println!(
        "{:.0}",
        count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
    );
    session.destroy_object(private)?;
    session.destroy_object(public)?;
    Ok(())
}
