//! Envelope format v1 against its specification (docs/envelope.md): committed test
//! vectors must decrypt with this implementation and with an independent decoder
//! written from the document in Python (`tests/tools/envelope_v1.py`, using the
//! `cryptography` package); fresh envelopes must decrypt with the Python decoder too.

use std::path::{Path, PathBuf};
use std::process::Command;

use carimbo_kms::envelope::{self, DataHeader, Headers, WrapBlock};
use carimbo_kms::{DataEncryptionKey, EncryptionContext, KeyEncryptionKey, SoftwareKek};
use serde_json::{Value, json};
use zeroize::Zeroizing;

fn workspace_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

const VECTORS: &str = "data/envelope-v1-vectors.json";
const KEY_NAME: &str = "envelope-data/test/vectors";
const KEY_REFERENCE: &str = "file:00000000000000000000000000000000";

fn context_of(vector: &Value) -> EncryptionContext {
    let pairs = vector["context"].as_object().unwrap();
    EncryptionContext::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap())),
    )
    .unwrap()
}

fn kek_of(vector: &Value) -> SoftwareKek {
    let bytes: [u8; 32] = hex::decode(vector["kek"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    SoftwareKek::new(Zeroizing::new(bytes))
}

/// Seals `plaintext` under a raw KEK, as the keyring does.
async fn seal(
    kek: &SoftwareKek,
    context: &EncryptionContext,
    plaintext: &[u8],
    segment_size: u32,
) -> Vec<u8> {
    let dek = DataEncryptionKey::generate().unwrap();
    let data = DataHeader::new(&dek, context, segment_size).unwrap();
    let aad = WrapBlock::aad(&data, KEY_NAME, 1, KEY_REFERENCE, context);
    let wrapped = kek.wrap(&dek, &aad).await.unwrap();
    let headers = Headers {
        data,
        wrap: WrapBlock {
            key_name: KEY_NAME.into(),
            key_version: 1,
            key_reference: KEY_REFERENCE.into(),
            wrapped,
        },
    };
    let mut out = Vec::new();
    headers.write_to(&mut out).unwrap();
    envelope::encrypt_segments(&dek, &headers.data, &mut &plaintext[..], &mut out).unwrap();
    out
}

/// Opens an envelope under a raw KEK with this implementation.
async fn open(
    kek: &SoftwareKek,
    context: &EncryptionContext,
    sealed: &[u8],
) -> carimbo_kms::Result<Vec<u8>> {
    let mut reader = sealed;
    let headers = Headers::read_from(&mut reader)?;
    headers.data.check_context(context)?;
    let wrap = &headers.wrap;
    let aad = WrapBlock::aad(
        &headers.data,
        &wrap.key_name,
        wrap.key_version,
        &wrap.key_reference,
        context,
    );
    let dek = kek.unwrap(&headers.wrap.wrapped, &aad).await?;
    let mut out = Vec::new();
    envelope::decrypt_segments(&dek, &headers.data, &mut reader, &mut out)?;
    Ok(out)
}

/// Decrypts with the independent Python decoder; `None` when Python's `cryptography`
/// is unavailable (and backends are not required).
fn python_open(
    kek_hex: &str,
    context: &EncryptionContext,
    sealed: &[u8],
) -> Option<Result<Vec<u8>, String>> {
    let python = std::env::var("CARIMBO_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python)
        .args(["-c", "import cryptography"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        carimbo_tests::skip(
            "python3 with cryptography",
            "import failed (pip install cryptography)",
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("envelope");
    std::fs::write(&path, sealed).unwrap();
    let output = Command::new(&python)
        .arg(workspace_file("tools/envelope_v1.py"))
        .arg(kek_hex)
        .arg(&path)
        .args(context.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .unwrap();
    Some(if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    })
}

fn plaintexts() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("empty plaintext", Vec::new()),
        ("short plaintext", b"hello, envelope".to_vec()),
        (
            "two full segments",
            (0..2048u32).map(|i| (i % 256) as u8).collect(),
        ),
        (
            "three segments, last partial",
            (0..2500u32).map(|i| (i * 7 % 256) as u8).collect(),
        ),
    ]
}

/// Regenerates the committed vectors (run by hand with `--ignored` when the format
/// changes — which, for v1, it must not).
#[tokio::test]
#[ignore = "writes tests/data/envelope-v1-vectors.json"]
async fn generate_vectors() {
    let kek_bytes = hex::decode(carimbo_tests::random_hex(32)).unwrap();
    let kek_hex = hex::encode(&kek_bytes);
    let kek = SoftwareKek::new(Zeroizing::new(kek_bytes.try_into().unwrap()));
    let context = EncryptionContext::from_pairs(["tenant=acme", "table=payments"]).unwrap();
    let mut vectors = Vec::new();
    for (name, plaintext) in plaintexts() {
        let sealed = seal(&kek, &context, &plaintext, 1024).await;
        vectors.push(json!({
            "name": name,
            "kek": kek_hex,
            "context": {"tenant": "acme", "table": "payments"},
            "segment_size": 1024,
            "plaintext": hex::encode(&plaintext),
            "envelope": hex::encode(&sealed),
        }));
    }
    let document = json!({
        "format": "carimbo envelope v1 test vectors",
        "note": "decrypt `envelope` with `kek` and `context`; expect `plaintext`. See docs/envelope.md.",
        "vectors": vectors,
    });
    std::fs::write(
        workspace_file(VECTORS),
        serde_json::to_string_pretty(&document).unwrap() + "\n",
    )
    .unwrap();
}

#[tokio::test]
async fn committed_vectors_decrypt_with_both_implementations() {
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace_file(VECTORS)).unwrap()).unwrap();
    let vectors = document["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 4);
    for vector in vectors {
        let name = vector["name"].as_str().unwrap();
        let kek = kek_of(vector);
        let context = context_of(vector);
        let sealed = hex::decode(vector["envelope"].as_str().unwrap()).unwrap();
        let plaintext = hex::decode(vector["plaintext"].as_str().unwrap()).unwrap();
        assert_eq!(
            open(&kek, &context, &sealed).await.unwrap(),
            plaintext,
            "{name}"
        );
        if let Some(result) = python_open(vector["kek"].as_str().unwrap(), &context, &sealed) {
            assert_eq!(result.unwrap(), plaintext, "{name}: Python decoder");
        }
        // A flipped bit anywhere fails in both implementations.
        for index in [0, 20, 60, 100, 110, sealed.len() - 1] {
            let mut bad = sealed.clone();
            bad[index] ^= 0x10;
            assert!(
                open(&kek, &context, &bad).await.is_err(),
                "{name}: flip at {index}"
            );
            if let Some(result) = python_open(vector["kek"].as_str().unwrap(), &context, &bad) {
                assert!(result.is_err(), "{name}: Python accepted a flip at {index}");
            }
        }
    }
}

#[tokio::test]
async fn fresh_envelopes_decrypt_with_the_independent_decoder() {
    let kek_bytes = hex::decode(carimbo_tests::random_hex(32)).unwrap();
    let kek_hex = hex::encode(&kek_bytes);
    let kek = SoftwareKek::new(Zeroizing::new(kek_bytes.try_into().unwrap()));
    let context = EncryptionContext::from_pairs(["app=billing", "region=eu-1"]).unwrap();
    let plaintext: Vec<u8> = (0..300_000u32).map(|i| (i ^ (i >> 8)) as u8).collect();
    for segment_size in [1024, envelope::DEFAULT_SEGMENT_SIZE] {
        let sealed = seal(&kek, &context, &plaintext, segment_size).await;
        let Some(result) = python_open(&kek_hex, &context, &sealed) else {
            return;
        };
        assert_eq!(result.unwrap(), plaintext);
        let wrong = EncryptionContext::from_pairs(["app=billing"]).unwrap();
        assert!(python_open(&kek_hex, &wrong, &sealed).unwrap().is_err());
    }
}
