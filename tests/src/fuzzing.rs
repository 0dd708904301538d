//! The fuzzing harness: one function per parser that sees untrusted bytes, each feeding
//! any input to the same entry points the service, the KMS or the ceremony use. The
//! coverage-guided targets in `fuzz/` call these functions, and the `fuzz_replay`
//! integration test feeds them every committed corpus and regression input, so CI
//! checks on the stable toolchain that none of them panics.
//!
//! Every function accepts any bytes and returns nothing: errors are the expected
//! outcome for most inputs; a panic (or an abort, a hang, a runaway allocation) is a bug.

use std::path::Path;
use std::sync::OnceLock;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carimbo_ceremony::config::{
    BackupConfig, CrlConfig, CrossSignConfig, IntermediateConfig, KeyConfig, RestoreConfig,
    RootConfig, TokenConfig, VerifyConfig, parse_ceremony,
};
use carimbo_kms::envelope::{self, DataHeader, Headers, WrapBlock};
use carimbo_kms::{DataEncryptionKey, EncryptionContext, KeyEncryptionKey, SoftwareKek};
use carimbo_pki::{LeafKind, LeafProfile, parse_ocsp_request, validate_csr};
use carimbo_server::jwt::{JwtError, JwtSettings, JwtVerifier};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The fuzz targets, by name (`fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`).
pub const TARGETS: [&str; 6] = [
    "csr",
    "ocsp_request",
    "envelope",
    "jwt",
    "issuance_body",
    "ceremony_config",
];

/// Runs the harness of target `name` on `data`; `false` for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "csr" => csr(data),
        "ocsp_request" => ocsp_request(data),
        "envelope" => envelope(data),
        "jwt" => jwt(data),
        "issuance_body" => issuance_body(data),
        "ceremony_config" => ceremony_config(data),
        _ => return false,
    }
    true
}

// ---- CSR ------------------------------------------------------------------------------

/// A CSR (DER, or PEM text) as issuance validates it: against a permissive server
/// profile (Ed25519, IP addresses and wildcards allowed) and the workload profile.
pub fn csr(data: &[u8]) {
    let permissive = LeafProfile {
        allow_ed25519: true,
        allow_ip_sans: true,
        allow_wildcards: true,
        ..LeafProfile::defaults(LeafKind::Server)
    };
    let _ = validate_csr(data, &permissive);
    let _ = validate_csr(data, &LeafProfile::defaults(LeafKind::Workload));
}

// ---- OCSP -----------------------------------------------------------------------------

/// An OCSP request (DER) as the responder parses it, then each CertID's serial.
pub fn ocsp_request(data: &[u8]) {
    if let Ok(request) = parse_ocsp_request(data) {
        for id in &request.certs {
            let _ = id.serial_number();
        }
    }
}

// ---- envelope -------------------------------------------------------------------------

const ENVELOPE_KEY_NAME: &str = "envelope-data/fuzz/seed";
const ENVELOPE_KEY_REFERENCE: &str = "file:00000000000000000000000000000000";

struct EnvelopeFixture {
    runtime: tokio::runtime::Runtime,
    kek: SoftwareKek,
    context: EncryptionContext,
    /// A DEK and a header committing to it, to open fuzzed segments.
    dek: DataEncryptionKey,
    header: DataHeader,
}

fn envelope_fixture() -> &'static EnvelopeFixture {
    static FIXTURE: OnceLock<EnvelopeFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut context = EncryptionContext::new();
        context.insert("tenant", "fuzz").unwrap();
        let dek = DataEncryptionKey::from_slice(&[0x11; 32]).unwrap();
        let header = DataHeader::new(&dek, &context, envelope::MIN_SEGMENT_SIZE).unwrap();
        EnvelopeFixture {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            kek: SoftwareKek::new(Zeroizing::new([0x5a; 32])),
            context,
            dek,
            header,
        }
    })
}

/// An envelope as the keyring opens one: headers parsed, context checked, the DEK
/// unwrapped under the fixed KEK of [`envelope_seed`] with associated data rebuilt
/// from the fields read, the commitment checked, then every segment. The same bytes
/// are also read as a lone wrap block, and as the segments of a fixed valid header.
pub fn envelope(data: &[u8]) {
    let f = envelope_fixture();
    let _ = open_envelope(f, data);
    let _ = WrapBlock::read_from(&mut &data[..]);
    let _ = envelope::decrypt_segments(&f.dek, &f.header, &mut &data[..], &mut std::io::sink());
}

fn open_envelope(f: &EnvelopeFixture, data: &[u8]) -> carimbo_kms::Result<u64> {
    let mut reader = data;
    let headers = Headers::read_from(&mut reader)?;
    headers.data.check_context(&f.context)?;
    let aad = WrapBlock::aad(
        &headers.data,
        &headers.wrap.key_name,
        headers.wrap.key_version,
        &headers.wrap.key_reference,
        &f.context,
    );
    let dek = f
        .runtime
        .block_on(f.kek.unwrap(&headers.wrap.wrapped, &aad))?;
    headers.data.check_key(&dek)?;
    envelope::decrypt_segments(&dek, &headers.data, &mut reader, &mut std::io::sink())
}

/// A valid envelope of `plaintext` that [`envelope`] opens completely (seed corpus).
pub fn envelope_seed(plaintext: &[u8], segment_size: u32) -> Vec<u8> {
    let f = envelope_fixture();
    let dek = DataEncryptionKey::generate().unwrap();
    let data = DataHeader::new(&dek, &f.context, segment_size).unwrap();
    let aad = WrapBlock::aad(
        &data,
        ENVELOPE_KEY_NAME,
        1,
        ENVELOPE_KEY_REFERENCE,
        &f.context,
    );
    let wrapped = f.runtime.block_on(f.kek.wrap(&dek, &aad)).unwrap();
    let headers = Headers {
        data,
        wrap: WrapBlock {
            key_name: ENVELOPE_KEY_NAME.into(),
            key_version: 1,
            key_reference: ENVELOPE_KEY_REFERENCE.into(),
            wrapped,
        },
    };
    let mut out = Vec::new();
    headers.write_to(&mut out).unwrap();
    envelope::encrypt_segments(&dek, &headers.data, &mut &plaintext[..], &mut out).unwrap();
    assert_eq!(open_envelope(f, &out).unwrap(), plaintext.len() as u64);
    out
}

// ---- JWT ------------------------------------------------------------------------------

/// The fixed "now" of the JWT harness: 2026-01-01T00:00:00Z.
pub const JWT_NOW: i64 = 1_767_225_600;
/// The issuer the JWT harness's verifier requires.
pub const JWT_ISSUER: &str = "https://issuer.fuzz.example";
/// The audience the JWT harness's verifier requires.
pub const JWT_AUDIENCE: &str = "carimbo-fuzz";

struct JwtFixture {
    verifier: JwtVerifier,
    key: Ed25519KeyPair,
    _dir: tempfile::TempDir,
}

fn jwt_fixture() -> &'static JwtFixture {
    static FIXTURE: OnceLock<JwtFixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = Ed25519KeyPair::from_seed_unchecked(&[0x24; 32]).unwrap();
        let jwks = serde_json::json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": "fuzz-1",
            "alg": "EdDSA",
            "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()),
        }]});
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks.to_string()).unwrap();
        let settings = JwtSettings {
            jwks: path.clone(),
            issuer: JWT_ISSUER.into(),
            audience: JWT_AUDIENCE.into(),
            algorithms: vec!["EdDSA".into()],
            san_templates: vec![
                "dns:{/sub}.svc.example.com".into(),
                "uri:spiffe://{trust-domain}/ns/{/ns}/sa/{/sa}".into(),
            ],
            variables: [("trust-domain".to_owned(), "fuzz.example".to_owned())]
                .into_iter()
                .collect(),
            leeway_seconds: 30,
            max_token_age_seconds: 3600,
        };
        JwtFixture {
            verifier: JwtVerifier::from_settings(&settings, &path).unwrap(),
            key,
            _dir: dir,
        }
    })
}

/// Signs `header_json` and `claims_json` (any bytes) with the harness's key into a
/// compact JWS.
pub fn jwt_sign(header_json: &[u8], claims_json: &[u8]) -> String {
    let f = jwt_fixture();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header_json),
        URL_SAFE_NO_PAD.encode(claims_json)
    );
    let signature = f.key.sign(signing_input.as_bytes());
    format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    )
}

/// A bearer JWT as the JWT provisioner checks it, then its claims mapped to names.
/// Input with a newline is `header JSON \n claims JSON`, signed here with the key the
/// verifier trusts (so the fuzzer reaches the header, claim and template checks behind
/// the signature); any other input is the token text itself.
pub fn jwt(data: &[u8]) {
    let _ = jwt_names(data);
}

/// What [`jwt`] does, with its outcome: the names the token's claims give.
pub fn jwt_names(data: &[u8]) -> Result<Vec<String>, JwtError> {
    let f = jwt_fixture();
    let token = match data.iter().position(|b| *b == b'\n') {
        Some(split) => jwt_sign(&data[..split], &data[split + 1..]),
        None => String::from_utf8_lossy(data).into_owned(),
    };
    let now = OffsetDateTime::from_unix_timestamp(JWT_NOW).unwrap();
    let claims = f.verifier.verify(&token, now)?;
    let _ = f.verifier.identity(&claims);
    Ok(f.verifier
        .names(&claims)?
        .iter()
        .map(ToString::to_string)
        .collect())
}

// ---- issuance body --------------------------------------------------------------------

/// The JSON body of `POST /v1/certificates` as the route parses it, then its CSR.
pub fn issuance_body(data: &[u8]) {
    let _ = carimbo_server::fuzzing::issuance_body(data);
}

// ---- ceremony config ------------------------------------------------------------------

/// A ceremony config file as `ca-ceremony <type> --config` reads it, as the type its
/// `ceremony` key names (a `key` ceremony when it names none or an unknown one).
pub fn ceremony_config(data: &[u8]) {
    fn parse<T: serde::de::DeserializeOwned>(data: &[u8], kind: &str) {
        let _ = parse_ceremony::<T>(Path::new("ceremony.toml"), data.to_vec(), kind);
    }
    let named = std::str::from_utf8(data)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .and_then(|table| table.get("ceremony")?.as_str().map(str::to_owned));
    match named.as_deref().unwrap_or("key") {
        "root" => parse::<RootConfig>(data, "root"),
        "intermediate" => parse::<IntermediateConfig>(data, "intermediate"),
        "cross-sign" => parse::<CrossSignConfig>(data, "cross-sign"),
        "crl" => parse::<CrlConfig>(data, "crl"),
        "verify" => parse::<VerifyConfig>(data, "verify"),
        "token" => parse::<TokenConfig>(data, "token"),
        "backup" => parse::<BackupConfig>(data, "backup"),
        "restore" => parse::<RestoreConfig>(data, "restore"),
        _ => parse::<KeyConfig>(data, "key"),
    }
}
