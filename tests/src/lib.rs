//! Shared fixtures for Carimbo's integration tests: backends (SoftHSM2 tokens, an AWS
//! KMS emulator), the skip-or-fail rule for absent backends, and helpers to run independent verifiers.
//!
//! A test that needs a backend calls its fixture; when the backend is absent the
//! fixture prints a `SKIPPED` notice and returns `None`, unless
//! `CARIMBO_REQUIRE_BACKENDS=1` (set by `scripts/test.sh`), in which case it panics so
//! that CI can never skip silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod aws_kms;
pub mod fuzzing;
pub use aws_kms::{AwsKmsEmulator, aws_kms_emulator};

/// Whether an absent backend must fail the test run instead of skipping.
pub fn backends_required() -> bool {
    std::env::var("CARIMBO_REQUIRE_BACKENDS").is_ok_and(|v| v == "1")
}

/// Prints a skip notice, or panics when backends are required.
pub fn skip(backend: &str, why: &str) {
    if backends_required() {
        panic!("{backend} is required (CARIMBO_REQUIRE_BACKENDS=1) but unavailable: {why}");
    }
    eprintln!("SKIPPED ({backend} unavailable: {why}; scripts/test.sh sets it up)");
}

/// Paths where Debian and other distributions install the SoftHSM2 module.
const SOFTHSM_MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// A SoftHSM2 token made for this test process.
#[derive(Debug)]
pub struct SoftHsmToken {
    /// Path of the SoftHSM2 PKCS#11 module.
    pub module: PathBuf,
    /// Token label (unique per test process).
    pub label: String,
    /// User PIN.
    pub pin: String,
    /// File holding the user PIN (0600).
    pub pin_file: PathBuf,
    /// A `carimbo-kms-pkcs11` config file for this token (PIN by file).
    pub config_file: PathBuf,
    /// Label shared by two other tokens, to test ambiguous lookups.
    pub duplicate_label: String,
    /// Label the token ceremony gives the offline root token in ceremony tests.
    pub root_label: String,
    /// Label the token ceremony gives the online CA token in ceremony tests.
    pub ca_label: String,
    /// Label the token ceremony gives the root backup token in ceremony tests.
    pub backup_label: String,
    _dir: tempfile::TempDir,
}

impl SoftHsmToken {
    /// The config file text for this token with `extra` lines appended.
    pub fn config_text(&self, extra: &str) -> String {
        format!(
            "version = 1\nmodule = {:?}\ntoken-label = {:?}\npin-file = {:?}\n{extra}",
            self.module, self.label, self.pin_file
        )
    }
}

/// The SoftHSM2 token of this test process, created on first use.
///
/// Needs `softhsm2-util`, the module, and `SOFTHSM2_CONF` pointing at a config whose
/// token directory is writable (the library reads that variable once, at
/// `C_Initialize`, so the test process cannot set it safely itself).
pub fn softhsm() -> Option<&'static SoftHsmToken> {
    static TOKEN: OnceLock<Result<SoftHsmToken, String>> = OnceLock::new();
    match TOKEN.get_or_init(make_softhsm_token) {
        Ok(token) => Some(token),
        Err(why) => {
            skip("SoftHSM2", why);
            None
        }
    }
}

fn make_softhsm_token() -> Result<SoftHsmToken, String> {
    let module = SOFTHSM_MODULES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("libsofthsm2.so not found (apt-get install softhsm2)")?;
    let conf = std::env::var("SOFTHSM2_CONF")
        .map_err(|_| "SOFTHSM2_CONF is not set to a throwaway token directory".to_string())?;
    if !Path::new(&conf).exists() {
        return Err(format!("SOFTHSM2_CONF={conf} does not exist"));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let suffix = format!("{}-{}", std::process::id(), random_hex(4));
    let label = format!("carimbo-{suffix}");
    let duplicate_label = format!("dup-{suffix}");
    let root_label = format!("root-{suffix}");
    let ca_label = format!("ca-{suffix}");
    let backup_label = format!("backup-{suffix}");
    let pin = random_hex(8);
    // Every token of the process is made here, before any test loads the module: the
    // library reads its token directory once, at C_Initialize. (The root and CA tokens
    // of the ceremony tests are initialised by the token ceremony, in a free slot.)
    for token_label in [&label, &duplicate_label, &duplicate_label] {
        let output = Command::new("softhsm2-util")
            .args(["--init-token", "--free", "--label", token_label])
            .args(["--so-pin", &random_hex(8), "--pin", &pin])
            .output()
            .map_err(|e| format!("softhsm2-util: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "softhsm2-util --init-token failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    let pin_file = dir.path().join("pin");
    write_private(&pin_file, pin.as_bytes());
    let token = SoftHsmToken {
        module,
        label,
        pin,
        pin_file,
        config_file: dir.path().join("pkcs11.toml"),
        duplicate_label,
        root_label,
        ca_label,
        backup_label,
        _dir: dir,
    };
    let text = token.config_text("");
    std::fs::write(&token.config_file, text).map_err(|e| e.to_string())?;
    Ok(token)
}

/// A SoftHSM2 token in a token directory of its own, for tests whose child processes
/// write keys.
///
/// SoftHSM2's file store does not keep one token consistent while several processes
/// write it at once (a reader can miss the whole token, a writer can get
/// `CKR_TEMPLATE_INCONSISTENT`), so children that generate keys never share a token
/// directory with the test process. Pass [`PrivateSoftHsm::conf`] to the child as
/// `SOFTHSM2_CONF`.
#[derive(Debug)]
pub struct PrivateSoftHsm {
    /// The `softhsm2.conf` naming this token directory.
    pub conf: PathBuf,
    /// A `carimbo-kms-pkcs11` config file for the token (PIN by file).
    pub config_file: PathBuf,
    /// Token label.
    pub label: String,
    _dir: tempfile::TempDir,
}

/// Makes a [`PrivateSoftHsm`]; `None` (or a panic in CI) when SoftHSM2 is absent.
pub fn private_softhsm() -> Option<PrivateSoftHsm> {
    // The shared fixture checks that the module and tools are installed.
    let shared = softhsm()?;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
    let label = format!("private-{}", random_hex(4));
    let pin = random_hex(8);
    let output = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", &label])
        .args(["--so-pin", &random_hex(8), "--pin", &pin])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "softhsm2-util --init-token failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pin_file = dir.path().join("pin");
    write_private(&pin_file, pin.as_bytes());
    let config_file = dir.path().join("pkcs11.toml");
    std::fs::write(
        &config_file,
        format!(
            "version = 1\nmodule = {:?}\ntoken-label = {:?}\npin-file = {:?}\n",
            shared.module, label, pin_file
        ),
    )
    .unwrap();
    Some(PrivateSoftHsm {
        conf,
        config_file,
        label,
        _dir: dir,
    })
}

/// Writes `bytes` to a new file with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `openssl` with `args`; returns (success, stdout+stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let output = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl CLI not found (apt-get install openssl)");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// PEM encoding of a DER public key (`SubjectPublicKeyInfo`).
pub fn public_key_pem(spki_der: &[u8]) -> String {
    pem("PUBLIC KEY", spki_der)
}

/// PEM with `label` around `der`.
pub fn pem(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::new();
    for chunk in der.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                encoded.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                encoded.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Path of the `carimbo` binary built from this workspace (see [`workspace_binary`]).
pub fn carimbo_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| workspace_binary("carimbo-cli", "carimbo"))
        .clone()
}

/// Path of the `ca-ceremony` binary built from this workspace.
pub fn ceremony_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| workspace_binary("ca-ceremony", "ca-ceremony"))
        .clone()
}

/// Builds binary `bin` of `package` with cargo (a no-op when up to date, so tests never
/// run a stale binary) and returns its path next to the test binary's `deps/`.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", package, "--bin", bin]);
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build.status().unwrap();
    assert!(status.success(), "cargo build -p {package} failed");
    let binary = profile_dir.join(bin);
    assert!(
        binary.exists(),
        "{} not found after cargo build",
        binary.display()
    );
    binary
}

/// The example hierarchy of `config/ceremony/`, made once per test process by the real
/// `ca-ceremony` binary against two SoftHSM2 tokens (offline root, online CA), for every
/// test that needs a PKI (dogfooding: the test PKI is made by the ceremony tool).
#[derive(Debug)]
pub struct CeremonyPki {
    /// Directory holding the configs, the credentials file and every output.
    pub dir: PathBuf,
    /// The credentials file mapping roles `root` and `ca` to the tokens.
    pub credentials: PathBuf,
    /// Final transcript hashes printed by each ceremony, by transcript file name.
    pub final_hashes: Vec<(String, String)>,
    /// What each ceremony printed (stdout, then stderr), by `kind file`.
    pub outputs: Vec<(String, String)>,
    _keep: tempfile::TempDir,
}

impl CeremonyPki {
    /// Path of a file in the PKI directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The order in which the example ceremonies run, with their config files.
pub const EXAMPLE_CEREMONIES: &[(&str, &str)] = &[
    ("token", "token-root.toml"),
    ("token", "token-ca.toml"),
    ("root", "root.toml"),
    ("key", "int-server-key.toml"),
    ("key", "int-workload-key.toml"),
    ("intermediate", "int-server.toml"),
    ("intermediate", "int-workload.toml"),
    ("crl", "root-arl.toml"),
    ("verify", "verify.toml"),
    ("root", "root-next.toml"),
    ("cross-sign", "cross-sign-next.toml"),
    ("token", "token-root-backup.toml"),
    ("backup", "backup-root.toml"),
    ("restore", "restore-root.toml"),
];

/// Copies the example ceremony configs into a fresh directory with a credentials file
/// for this process's SoftHSM2 tokens; returns (dir guard, dir, credentials path).
pub fn ceremony_workspace(token: &SoftHsmToken) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path().to_path_buf();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/ceremony");
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".toml") && !name.starts_with("credentials") {
            std::fs::copy(&path, dir.join(&name)).unwrap();
        }
    }
    let credentials = dir.join("credentials.toml");
    // PINs from two of the three holders' shares, as on the day.
    let role = |role: &str, label: &str| {
        let share = |holder: &str, pin: &str| format!("\"{role}-shares/{holder}.{pin}.share\"");
        format!(
            "[tokens.{role}]\nmodule = {:?}\ntoken-label = {label:?}\n\
             pin-shares = {{ check = \"{role}-pins.toml\", files = [{}, {}] }}\n\
             so-pin-shares = {{ check = \"{role}-pins.toml\", files = [{}, {}] }}\n",
            token.module,
            share("1-ana-souza", "user"),
            share("3-carla-dias", "user"),
            share("2-bruno-lima", "so"),
            share("3-carla-dias", "so"),
        )
    };
    std::fs::write(
        &credentials,
        format!(
            "version = 1\n{}{}{}",
            role("root", &token.root_label),
            role("ca", &token.ca_label),
            role("root-backup", &token.backup_label)
        ),
    )
    .unwrap();
    (keep, dir, credentials)
}

/// Runs `ca-ceremony <kind> --config <dir>/<file> --credentials <credentials> [extra]`.
pub fn run_ceremony(
    dir: &Path,
    credentials: &Path,
    kind: &str,
    file: &str,
    extra: &[&str],
) -> std::process::Output {
    Command::new(ceremony_binary())
        .arg(kind)
        .arg("--config")
        .arg(dir.join(file))
        .arg("--credentials")
        .arg(credentials)
        .args(extra)
        .output()
        .unwrap()
}

/// The example hierarchy, made on first use (see [`CeremonyPki`]).
pub fn ceremony_pki() -> Option<&'static CeremonyPki> {
    static PKI: OnceLock<CeremonyPki> = OnceLock::new();
    let token = softhsm()?;
    Some(PKI.get_or_init(|| {
        let (keep, dir, credentials) = ceremony_workspace(token);
        let mut final_hashes = Vec::new();
        let mut outputs = Vec::new();
        for (kind, file) in EXAMPLE_CEREMONIES {
            let output = run_ceremony(&dir, &credentials, kind, file, &[]);
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            outputs.push((
                format!("{kind} {file}"),
                format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
            ));
            assert!(
                output.status.success(),
                "ca-ceremony {kind} {file} failed: {}{stdout}",
                String::from_utf8_lossy(&output.stderr)
            );
            // "... transcript NAME final hash (record it): HASH"
            if let Some((name, hash)) = stdout.lines().find_map(|l| {
                let rest = l.split(" transcript ").nth(1)?;
                let (name, hash) = rest.split_once(" final hash (record it): ")?;
                Some((name.to_owned(), hash.trim().to_owned()))
            }) {
                final_hashes.push((name, hash));
            }
        }
        CeremonyPki {
            dir,
            credentials,
            final_hashes,
            outputs,
            _keep: keep,
        }
    }))
}
