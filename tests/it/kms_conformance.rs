//! One KMS conformance suite, run against every provider: the file provider always,
//! SoftHSM2 through PKCS#11 and AWS KMS through a local emulator (moto's server) when
//! available (always under `scripts/test.sh`).
//!
//! Everything goes through the [`Keyring`], so the suite checks the providers and the
//! core together: signatures (also verified by `openssl`), envelope round trips and
//! tampering, rotation, rewrap, disable/destroy, HMAC, purpose checks and audit events.

use std::path::Path;
use std::sync::Arc;

use carimbo_kms::envelope::{self, DATA_HEADER_LEN, Headers, TAG_LEN};
use carimbo_kms::{
    Caller, EncryptionContext, Error, FileKeyringStore, FileProvider, FixedClock, KeyAlgorithm,
    KeyName, KeyProvider, Keyring, KeyringSettings, MemoryAuditSink, Operation, Outcome, Purpose,
    SignatureAlgorithm, load_or_create_file_kek,
};
use carimbo_kms_aws::{AwsKmsConfig, AwsKmsProvider};
use carimbo_kms_pkcs11::{Pkcs11Config, Pkcs11Provider};
use carimbo_tests::{openssl, public_key_pem, random_hex};

/// A keyring over one provider, with an in-memory audit sink and a settable clock.
struct Fixture {
    keyring: Keyring,
    provider: String,
    audit: Arc<MemoryAuditSink>,
    clock: Arc<FixedClock>,
    dir: tempfile::TempDir,
}

const DESTROY_WAIT_SECONDS: u64 = 3600;

fn fixture_with(provider: Arc<dyn KeyProvider>, dir: tempfile::TempDir) -> Fixture {
    let store = FileKeyringStore::create(
        dir.path(),
        KeyringSettings {
            destroy_wait_seconds: DESTROY_WAIT_SECONDS,
        },
    )
    .unwrap();
    let audit = Arc::new(MemoryAuditSink::default());
    let clock = Arc::new(FixedClock::new(time::OffsetDateTime::now_utc()));
    let id = provider.id().to_owned();
    let keyring =
        Keyring::new(Arc::new(store), audit.clone(), clock.clone()).with_provider(provider);
    Fixture {
        keyring,
        provider: id,
        audit,
        clock,
        dir,
    }
}

async fn file_fixture() -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let kek = load_or_create_file_kek(&dir.path().join("file-kek")).unwrap();
    let provider = FileProvider::new(dir.path().join("keys"), kek).unwrap();
    Some(fixture_with(Arc::new(provider), dir))
}

async fn softhsm_fixture() -> Option<Fixture> {
    let token = carimbo_tests::softhsm()?;
    let config = Pkcs11Config::from_file(&token.config_file).unwrap();
    let provider = Pkcs11Provider::open(&config).await.unwrap();
    Some(fixture_with(
        Arc::new(provider),
        tempfile::tempdir().unwrap(),
    ))
}

async fn aws_fixture() -> Option<Fixture> {
    let emulator = carimbo_tests::aws_kms_emulator()?;
    let config = AwsKmsConfig::from_toml_str(&emulator.config_text("")).unwrap();
    let provider = AwsKmsProvider::open_with_static_credentials(
        &config,
        emulator.access_key_id,
        emulator.secret_access_key,
    )
    .unwrap();
    Some(fixture_with(
        Arc::new(provider),
        tempfile::tempdir().unwrap(),
    ))
}

/// Why the AWS KMS emulator cannot test `algorithm`, if it cannot. Real AWS KMS offers
/// both; the provider's own tests cover what the emulator allows.
fn emulator_gap(provider: &str, algorithm: SignatureAlgorithm) -> Option<&'static str> {
    if provider != carimbo_kms_aws::PROVIDER_ID {
        return None;
    }
    match algorithm {
        SignatureAlgorithm::Ed25519 => Some("the emulator has no ECC_NIST_EDWARDS25519 keys"),
        SignatureAlgorithm::Rsa {
            padding: carimbo_kms::RsaPadding::Pss,
            ..
        } => Some("the emulator signs RSA-PSS with the longest salt, not the hash length"),
        _ => None,
    }
}

fn caller() -> Caller {
    Caller::new("test:conformance")
}

/// A unique key name under `use_segment`.
fn unique(use_segment: &str) -> KeyName {
    KeyName::new(&format!("{use_segment}/test/k{}", random_hex(6))).unwrap()
}

impl Fixture {
    async fn create(
        &self,
        use_segment: &str,
        purpose: Purpose,
        algorithm: Option<KeyAlgorithm>,
    ) -> KeyName {
        let name = unique(use_segment);
        self.keyring
            .create_key(&caller(), &name, purpose, algorithm, &self.provider)
            .await
            .unwrap();
        name
    }

    async fn seal(&self, name: &KeyName, context: &EncryptionContext, plaintext: &[u8]) -> Vec<u8> {
        let sealed = self
            .keyring
            .seal(&caller(), name, context, envelope::MIN_SEGMENT_SIZE)
            .await
            .unwrap();
        let mut out = Vec::new();
        sealed.headers.write_to(&mut out).unwrap();
        envelope::encrypt_segments(
            &sealed.dek,
            &sealed.headers.data,
            &mut &plaintext[..],
            &mut out,
        )
        .unwrap();
        out
    }

    async fn open(
        &self,
        envelope_bytes: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, Error> {
        let mut reader = envelope_bytes;
        let headers = Headers::read_from(&mut reader)?;
        let opened = self.keyring.open(&caller(), &headers, context).await?;
        let mut out = Vec::new();
        envelope::decrypt_segments(&opened.dek, &headers.data, &mut reader, &mut out)?;
        Ok(out)
    }
}

fn context() -> EncryptionContext {
    EncryptionContext::from_pairs(["tenant=acme", "table=payments"]).unwrap()
}

/// 3.5 segments of recognisable bytes.
fn plaintext() -> Vec<u8> {
    (0..(envelope::MIN_SEGMENT_SIZE as usize * 7 / 2))
        .map(|i| (i % 251) as u8)
        .collect()
}

/// Verifies `signature` over `message` with `openssl`, an independent implementation.
fn openssl_verifies(
    dir: &Path,
    algorithm: SignatureAlgorithm,
    spki: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    let tag = random_hex(4);
    let public = dir.join(format!("pub-{tag}.pem"));
    let message_path = dir.join(format!("msg-{tag}"));
    let signature_path = dir.join(format!("sig-{tag}"));
    std::fs::write(&public, public_key_pem(spki)).unwrap();
    std::fs::write(&message_path, message).unwrap();
    std::fs::write(&signature_path, signature).unwrap();
    let (public, message_path, signature_path) = (
        public.to_str().unwrap(),
        message_path.to_str().unwrap(),
        signature_path.to_str().unwrap(),
    );
    let (ok, output) = match algorithm {
        SignatureAlgorithm::Ed25519 => openssl(&[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            public,
            "-rawin",
            "-in",
            message_path,
            "-sigfile",
            signature_path,
        ]),
        other => {
            let digest = format!(
                "-{}",
                match other.hash() {
                    Some(carimbo_kms::HashAlgorithm::Sha384) => "sha384",
                    Some(carimbo_kms::HashAlgorithm::Sha512) => "sha512",
                    _ => "sha256",
                }
            );
            let mut args = vec![
                "dgst",
                digest.as_str(),
                "-verify",
                public,
                "-signature",
                signature_path,
            ];
            if matches!(
                other,
                SignatureAlgorithm::Rsa {
                    padding: carimbo_kms::RsaPadding::Pss,
                    ..
                }
            ) {
                args.extend([
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    "rsa_pss_saltlen:-1",
                ]);
            }
            args.push(message_path);
            openssl(&args)
        }
    };
    if !ok {
        eprintln!("openssl: {output}");
    }
    ok
}

async fn every_algorithm_signs_and_openssl_verifies(f: Fixture) {
    let message = b"model digest sha256:0123456789abcdef";
    for algorithm in SignatureAlgorithm::ALL {
        if let Some(gap) = emulator_gap(&f.provider, algorithm) {
            eprintln!("{algorithm} not tested on {}: {gap}", f.provider);
            continue;
        }
        let name = f
            .create(
                "model-sign",
                Purpose::Sign,
                Some(KeyAlgorithm::Signature(algorithm)),
            )
            .await;
        let (version, signature) = f.keyring.sign(&caller(), &name, message).await.unwrap();
        assert_eq!(version, 1);
        let verified = f
            .keyring
            .verify(&caller(), &name, None, message, &signature)
            .await
            .unwrap();
        assert_eq!(verified, 1);
        assert!(
            f.keyring
                .verify(&caller(), &name, None, b"another message", &signature)
                .await
                .is_err(),
            "{algorithm}: signature over another message accepted"
        );
        let (_, spki) = f.keyring.public_key(&name, None).await.unwrap();
        assert!(
            openssl_verifies(f.dir.path(), algorithm, &spki, message, &signature),
            "{algorithm}: openssl rejected the signature"
        );
        assert!(
            !openssl_verifies(f.dir.path(), algorithm, &spki, b"tampered", &signature),
            "{algorithm}: openssl accepted a signature over another message"
        );
    }
}

async fn envelope_round_trips_across_segments(f: Fixture) {
    let name = f.create("envelope-data", Purpose::Envelope, None).await;
    for length in [
        0usize,
        1,
        envelope::MIN_SEGMENT_SIZE as usize,
        plaintext().len(),
    ] {
        let data = &plaintext()[..length];
        let sealed = f.seal(&name, &context(), data).await;
        assert_eq!(
            sealed.len() as u64 - DATA_HEADER_LEN as u64 - wrap_block_len(&sealed) as u64,
            envelope::sealed_len(length as u64, envelope::MIN_SEGMENT_SIZE)
        );
        assert_eq!(f.open(&sealed, &context()).await.unwrap(), data);
    }
}

fn wrap_block_len(sealed: &[u8]) -> usize {
    2 + usize::from(u16::from_be_bytes([
        sealed[DATA_HEADER_LEN],
        sealed[DATA_HEADER_LEN + 1],
    ]))
}

async fn envelope_tampering_is_detected(f: Fixture) {
    let name = f.create("envelope-data", Purpose::Envelope, None).await;
    let data = plaintext();
    let sealed = f.seal(&name, &context(), &data).await;
    let headers_len = DATA_HEADER_LEN + wrap_block_len(&sealed);

    // Every byte of both headers, flipped, fails.
    for index in 0..headers_len {
        let mut bad = sealed.clone();
        bad[index] ^= 0x01;
        assert!(
            f.open(&bad, &context()).await.is_err(),
            "flip at header byte {index} accepted"
        );
    }
    // A flipped bit in each segment fails.
    let segment = envelope::MIN_SEGMENT_SIZE as usize + TAG_LEN;
    for start in (headers_len..sealed.len()).step_by(segment) {
        let mut bad = sealed.clone();
        bad[start + 5] ^= 0x80;
        assert!(matches!(
            f.open(&bad, &context()).await,
            Err(Error::Unauthentic(_))
        ));
    }
    // Truncation: at a segment boundary, mid-segment, and inside the headers.
    for cut in [
        headers_len + 3 * segment,
        sealed.len() - 1,
        headers_len,
        DATA_HEADER_LEN + 3,
        10,
    ] {
        assert!(
            f.open(&sealed[..cut], &context()).await.is_err(),
            "cut at {cut} accepted"
        );
    }
    // Reordered segments.
    let mut swapped = sealed.clone();
    let (first, second) = (headers_len, headers_len + segment);
    swapped[first..second].copy_from_slice(&sealed[second..second + segment]);
    swapped[second..second + segment].copy_from_slice(&sealed[first..second]);
    assert!(matches!(
        f.open(&swapped, &context()).await,
        Err(Error::Unauthentic(_))
    ));
    // Wrong context, missing context, extra pair.
    let wrong = EncryptionContext::from_pairs(["tenant=evil", "table=payments"]).unwrap();
    assert!(matches!(
        f.open(&sealed, &wrong).await,
        Err(Error::ContextMismatch)
    ));
    assert!(matches!(
        f.open(&sealed, &EncryptionContext::new()).await,
        Err(Error::ContextMismatch)
    ));
    // Wrap block swapped in from another envelope of the same key.
    let other = f.seal(&name, &context(), &data).await;
    let other_headers_len = DATA_HEADER_LEN + wrap_block_len(&other);
    let mut spliced = sealed[..DATA_HEADER_LEN].to_vec();
    spliced.extend_from_slice(&other[DATA_HEADER_LEN..other_headers_len]);
    spliced.extend_from_slice(&sealed[headers_len..]);
    assert!(matches!(
        f.open(&spliced, &context()).await,
        Err(Error::Unauthentic(_))
    ));
    // Segments of another envelope under the right headers.
    let mut foreign = sealed[..headers_len].to_vec();
    foreign.extend_from_slice(&other[other_headers_len..]);
    assert!(matches!(
        f.open(&foreign, &context()).await,
        Err(Error::Unauthentic(_))
    ));
    // Wrong key: the envelope rewritten to name another KEK.
    let other_key = f.create("envelope-data", Purpose::Envelope, None).await;
    let mut reader = &sealed[..];
    let mut headers = Headers::read_from(&mut reader).unwrap();
    headers.wrap.key_name = other_key.to_string();
    let mut renamed = Vec::new();
    headers.write_to(&mut renamed).unwrap();
    renamed.extend_from_slice(reader);
    assert!(matches!(
        f.open(&renamed, &context()).await,
        Err(Error::Unauthentic(_))
    ));
    // The original still opens.
    assert_eq!(f.open(&sealed, &context()).await.unwrap(), data);
}

async fn rotation_rewrap_disable_destroy(f: Fixture) {
    let name = f.create("envelope-data", Purpose::Envelope, None).await;
    let data = plaintext();
    let old = f.seal(&name, &context(), &data).await;

    // Phase one: the new version exists but is not used for new envelopes yet.
    let version = f.keyring.add_version(&caller(), &name, None).await.unwrap();
    assert_eq!(version, 2);
    let still_v1 = f.seal(&name, &context(), &data).await;
    assert_eq!(key_version(&still_v1), 1);
    // Phase two.
    f.keyring.promote(&caller(), &name, 2).await.unwrap();
    let new = f.seal(&name, &context(), &data).await;
    assert_eq!(key_version(&new), 2);
    // Old envelopes still decrypt.
    assert_eq!(f.open(&old, &context()).await.unwrap(), data);

    // Rewrap moves the old envelope to version 2 without touching its data.
    let mut reader = &old[..];
    let headers = Headers::read_from(&mut reader).unwrap();
    let rewrapped = f
        .keyring
        .rewrap(&caller(), &headers, &context())
        .await
        .unwrap();
    assert_eq!(rewrapped.data, headers.data);
    assert_eq!(rewrapped.wrap.key_version, 2);
    let mut moved = Vec::new();
    rewrapped.write_to(&mut moved).unwrap();
    moved.extend_from_slice(reader);
    assert_eq!(
        &moved[moved.len() - reader.len()..],
        reader,
        "segments changed"
    );
    assert_eq!(f.open(&moved, &context()).await.unwrap(), data);
    // Rewrap needs the right context too.
    assert!(
        f.keyring
            .rewrap(&caller(), &headers, &EncryptionContext::new())
            .await
            .is_err()
    );

    // The primary cannot be disabled; version 1 can, and then it stops decrypting.
    assert!(matches!(
        f.keyring.disable(&caller(), &name, 2).await,
        Err(Error::InvalidState(_))
    ));
    f.keyring.disable(&caller(), &name, 1).await.unwrap();
    assert!(matches!(
        f.open(&old, &context()).await,
        Err(Error::VersionUnavailable { .. })
    ));
    assert!(f.keyring.promote(&caller(), &name, 1).await.is_err());
    f.keyring.enable(&caller(), &name, 1).await.unwrap();
    assert_eq!(f.open(&old, &context()).await.unwrap(), data);

    // Destroy: only disabled versions, only after the waiting period.
    assert!(matches!(
        f.keyring.destroy(&caller(), &name, 1).await,
        Err(Error::InvalidState(_))
    ));
    f.keyring.disable(&caller(), &name, 1).await.unwrap();
    let refused = f.keyring.destroy(&caller(), &name, 1).await.unwrap_err();
    assert!(
        refused.to_string().contains("can be destroyed from"),
        "{refused}"
    );
    f.clock
        .advance(time::Duration::seconds(DESTROY_WAIT_SECONDS as i64));
    f.keyring.destroy(&caller(), &name, 1).await.unwrap();
    assert!(f.keyring.enable(&caller(), &name, 1).await.is_err());
    assert!(f.open(&old, &context()).await.is_err());
    // What was rewrapped survives the destruction of the old version.
    assert_eq!(f.open(&moved, &context()).await.unwrap(), data);
    let record = f.keyring.describe(&name).await.unwrap();
    assert_eq!(
        record.version(1).unwrap().state,
        carimbo_kms::VersionState::Destroyed
    );
}

fn key_version(sealed: &[u8]) -> u32 {
    Headers::read_from(&mut &sealed[..])
        .unwrap()
        .wrap
        .key_version
}

async fn hmac_keys_mac_and_verify(f: Fixture) {
    let a = f.create("webhook-hmac", Purpose::Hmac, None).await;
    let b = f.create("webhook-hmac", Purpose::Hmac, None).await;
    let (version, tag) = f.keyring.hmac(&caller(), &a, b"payload").await.unwrap();
    assert_eq!(tag.len(), 32);
    assert_eq!(
        f.keyring.hmac(&caller(), &a, b"payload").await.unwrap().1,
        tag
    );
    assert_ne!(
        f.keyring.hmac(&caller(), &b, b"payload").await.unwrap().1,
        tag
    );
    f.keyring
        .verify_hmac(&caller(), &a, version, b"payload", &tag)
        .await
        .unwrap();
    assert!(
        f.keyring
            .verify_hmac(&caller(), &a, version, b"payloaD", &tag)
            .await
            .is_err()
    );
    assert!(
        f.keyring
            .verify_hmac(&caller(), &b, version, b"payload", &tag)
            .await
            .is_err()
    );
}

async fn purposes_are_enforced(f: Fixture) {
    let envelope_key = f.create("envelope-data", Purpose::Envelope, None).await;
    let signing_key = f.create("model-sign", Purpose::Sign, None).await;
    assert!(matches!(
        f.keyring.sign(&caller(), &envelope_key, b"x").await,
        Err(Error::WrongPurpose { .. })
    ));
    assert!(matches!(
        f.keyring
            .seal(
                &caller(),
                &signing_key,
                &context(),
                envelope::DEFAULT_SEGMENT_SIZE
            )
            .await,
        Err(Error::WrongPurpose { .. })
    ));
    assert!(matches!(
        f.keyring.hmac(&caller(), &signing_key, b"x").await,
        Err(Error::WrongPurpose { .. })
    ));
    // Algorithms must fit the purpose, and CA names go with the CA purpose.
    let refused = f
        .keyring
        .create_key(
            &caller(),
            &unique("envelope-data"),
            Purpose::Envelope,
            Some(KeyAlgorithm::HmacSha256),
            &f.provider,
        )
        .await;
    assert!(matches!(refused, Err(Error::UnsupportedAlgorithm { .. })));
    let refused = f
        .keyring
        .create_key(
            &caller(),
            &unique("pki-ca"),
            Purpose::Sign,
            None,
            &f.provider,
        )
        .await;
    assert!(matches!(refused, Err(Error::InvalidKeyName { .. })));
    // A name is taken once.
    let taken = f
        .keyring
        .create_key(
            &caller(),
            &envelope_key,
            Purpose::Envelope,
            None,
            &f.provider,
        )
        .await;
    assert!(matches!(taken, Err(Error::KeyExists(_))));
}

async fn every_key_use_is_audited_without_secrets(f: Fixture) {
    let name = f.create("envelope-data", Purpose::Envelope, None).await;
    let secret_text = b"the plaintext must never reach the audit trail";
    let sealed = f.seal(&name, &context(), secret_text).await;
    f.open(&sealed, &context()).await.unwrap();
    let _ = f.open(&sealed, &EncryptionContext::new()).await;
    let events = f.audit.events();
    let operations: Vec<_> = events
        .iter()
        .map(|e| (e.operation, e.outcome.clone()))
        .collect();
    assert!(operations.contains(&(Operation::CreateKey, Outcome::Success)));
    assert!(operations.contains(&(Operation::Wrap, Outcome::Success)));
    assert!(operations.contains(&(Operation::Unwrap, Outcome::Success)));
    assert!(
        operations
            .iter()
            .any(|(op, outcome)| *op == Operation::Unwrap && matches!(outcome, Outcome::Failure(_))),
        "a refused unwrap leaves a failure event"
    );
    let wrap = events
        .iter()
        .find(|e| e.operation == Operation::Wrap)
        .unwrap();
    assert_eq!(wrap.key_name, name.as_str());
    assert_eq!(wrap.key_version, Some(1));
    assert_eq!(wrap.context_digest, Some(hex::encode(context().digest())));
    let json = serde_json::to_string(&events).unwrap();
    assert!(!json.contains("plaintext must never"));
    assert!(
        !json.contains("acme"),
        "context values are digested, not logged"
    );
}

macro_rules! conformance_suite {
    ($provider:ident, $fixture:path) => {
        mod $provider {
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        if let Some(fixture) = $fixture().await {
                            super::$name(fixture).await;
                        }
                    }
                };
            }
            case!(every_algorithm_signs_and_openssl_verifies);
            case!(envelope_round_trips_across_segments);
            case!(envelope_tampering_is_detected);
            case!(rotation_rewrap_disable_destroy);
            case!(hmac_keys_mac_and_verify);
            case!(purposes_are_enforced);
            case!(every_key_use_is_audited_without_secrets);
        }
    };
}

conformance_suite!(file, super::file_fixture);
conformance_suite!(softhsm, super::softhsm_fixture);
conformance_suite!(aws, super::aws_fixture);
