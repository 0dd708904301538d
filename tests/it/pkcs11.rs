//! PKCS#11 provider tests against SoftHSM2 (bad PINs, missing tokens, mechanisms, pool).
//!
//! Every signature is also checked by `openssl`, and key protection by `pkcs11-tool`
//! where it is installed, so the provider is not its own only judge.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use carimbo_kms::{
    DataEncryptionKey, Error, GenerateRequest, GeneratedKey, HashAlgorithm, KeyAlgorithm, KeyName,
    KeyProvider, KeyReference, Purpose, RsaModulus, RsaPadding, SignatureAlgorithm, WrapAlgorithm,
    verify_hmac, verify_signature,
};
use carimbo_kms_pkcs11::{Pkcs11Config, Pkcs11Error, Pkcs11Provider};
use carimbo_tests::{SoftHsmToken, openssl, public_key_pem, random_hex, softhsm, write_private};

async fn open(token: &SoftHsmToken) -> Pkcs11Provider {
    let config = Pkcs11Config::from_file(&token.config_file).unwrap();
    Pkcs11Provider::open(&config).await.unwrap()
}

/// Opens a provider from config text (paths in it are absolute).
async fn open_text(text: &str) -> Result<Pkcs11Provider, Pkcs11Error> {
    let config = Pkcs11Config::from_toml_str(text, Path::new("/")).unwrap();
    Pkcs11Provider::open(&config).await
}

/// Config text for `label` on the fixture's module with the given PIN line.
fn config_text(token: &SoftHsmToken, label: &str, pin_line: &str, extra: &str) -> String {
    format!(
        "version = 1\nmodule = {:?}\ntoken-label = {label:?}\n{pin_line}\n{extra}",
        token.module
    )
}

fn unique_name(use_segment: &str) -> KeyName {
    KeyName::new(&format!("{use_segment}/test/k{}", random_hex(6))).unwrap()
}

async fn generate(
    provider: &Pkcs11Provider,
    purpose: Purpose,
    algorithm: KeyAlgorithm,
) -> GeneratedKey {
    let name = unique_name(match purpose {
        Purpose::Sign => "model-sign",
        Purpose::Envelope => "envelope-data",
        Purpose::Hmac => "token-mac",
        Purpose::PkiCa => "pki-ca",
    });
    provider
        .generate(&GenerateRequest {
            name: &name,
            version: 1,
            purpose,
            algorithm,
        })
        .await
        .unwrap_or_else(|e| panic!("generating {algorithm}: {e}"))
}

/// Verifies `signature` with the openssl CLI.
fn openssl_verify(algorithm: SignatureAlgorithm, spki: &[u8], message: &[u8], signature: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("pub.pem");
    let msg = dir.path().join("msg");
    let sig = dir.path().join("sig");
    std::fs::write(&key, public_key_pem(spki)).unwrap();
    std::fs::write(&msg, message).unwrap();
    std::fs::write(&sig, signature).unwrap();
    let (key, msg, sig) = (
        key.to_str().unwrap(),
        msg.to_str().unwrap(),
        sig.to_str().unwrap(),
    );
    let (ok, output) = match algorithm {
        SignatureAlgorithm::Ed25519 => openssl(&[
            "pkeyutl", "-verify", "-pubin", "-inkey", key, "-rawin", "-in", msg, "-sigfile", sig,
        ]),
        _ => {
            let hash = match algorithm.hash().unwrap() {
                HashAlgorithm::Sha256 => "-sha256",
                HashAlgorithm::Sha384 => "-sha384",
                HashAlgorithm::Sha512 => "-sha512",
            };
            let mut args = vec!["dgst", hash, "-verify", key, "-signature", sig];
            if let SignatureAlgorithm::Rsa {
                padding: RsaPadding::Pss,
                ..
            } = algorithm
            {
                // Salt length = digest length, as the provider signs.
                args.extend([
                    "-sigopt",
                    "rsa_padding_mode:pss",
                    "-sigopt",
                    "rsa_pss_saltlen:-1",
                ]);
            }
            args.push(msg);
            openssl(&args)
        }
    };
    assert!(ok, "openssl rejects the {algorithm} signature: {output}");
}

#[tokio::test]
async fn every_algorithm_signs_and_openssl_verifies() {
    let Some(token) = softhsm() else { return };
    let provider = open(token).await;
    // RSA-4096 generation is slow: one key serves all six RSA-4096 algorithms (the
    // algorithm is chosen when the key is opened).
    let mut rsa_4096: Option<GeneratedKey> = None;
    for algorithm in SignatureAlgorithm::ALL {
        let is_4096 = matches!(
            algorithm,
            SignatureAlgorithm::Rsa {
                modulus: RsaModulus::Bits4096,
                ..
            }
        );
        let generated = match (&rsa_4096, is_4096) {
            (Some(existing), true) => existing.clone(),
            _ => {
                let generated =
                    generate(&provider, Purpose::Sign, KeyAlgorithm::Signature(algorithm)).await;
                if is_4096 {
                    rsa_4096 = Some(generated.clone());
                }
                generated
            }
        };
        assert_eq!(generated.reference.provider, "pkcs11");
        assert!(
            generated
                .reference
                .id
                .starts_with(&format!("{}/", provider.token_serial())),
            "{}",
            generated.reference
        );
        let key = provider
            .signing_key(&generated.reference, algorithm)
            .await
            .unwrap();
        assert_eq!(key.algorithm(), algorithm);
        assert_eq!(Some(key.public_key_der()), generated.public_key.as_deref());
        let message = format!("carimbo {algorithm} {}", random_hex(8)).into_bytes();
        let signature = key.sign(&message).await.unwrap();
        verify_signature(algorithm, key.public_key_der(), &message, &signature)
            .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
        assert!(
            verify_signature(algorithm, key.public_key_der(), b"other", &signature).is_err(),
            "{algorithm} signature verifies for another message"
        );
        openssl_verify(algorithm, key.public_key_der(), &message, &signature);
    }
}

#[tokio::test]
async fn keys_open_only_as_what_they_are() {
    let Some(token) = softhsm() else { return };
    let provider = open(token).await;
    let p256 = generate(
        &provider,
        Purpose::Sign,
        KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP256Sha256),
    )
    .await;
    let error = provider
        .signing_key(&p256.reference, SignatureAlgorithm::EcdsaP384Sha384)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("curve"), "{error}");
    let error = provider
        .signing_key(&p256.reference, SignatureAlgorithm::Ed25519)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot sign ed25519"), "{error}");
    let rsa_3072 = "rsa-3072-pss-sha256".parse().unwrap();
    let error = provider
        .signing_key(&p256.reference, rsa_3072)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot sign"), "{error}");

    let aes = generate(&provider, Purpose::Envelope, KeyAlgorithm::Aes256Gcm).await;
    let error = provider
        .hmac_key(&aes.reference)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a CKK_GENERIC_SECRET key"), "{error}");
    let error = provider
        .signing_key(&aes.reference, SignatureAlgorithm::EcdsaP256Sha256)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not found"), "{error}");
    let error = provider
        .key_encryption_key(&p256.reference)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not found"), "{error}");

    // Purpose and algorithm must fit before anything reaches the token.
    let name = unique_name("model-sign");
    let error = provider
        .generate(&GenerateRequest {
            name: &name,
            version: 1,
            purpose: Purpose::Sign,
            algorithm: KeyAlgorithm::Aes256Gcm,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::UnsupportedAlgorithm { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn envelope_keys_wrap_and_unwrap_inside_the_token() {
    let Some(token) = softhsm() else { return };
    let provider = open(token).await;
    let generated = generate(&provider, Purpose::Envelope, KeyAlgorithm::Aes256Gcm).await;
    assert_eq!(generated.public_key, None);
    let kek = provider
        .key_encryption_key(&generated.reference)
        .await
        .unwrap();
    let dek = DataEncryptionKey::generate().unwrap();
    let aad = b"envelope v1 header";
    let wrapped = kek.wrap(&dek, aad).await.unwrap();
    assert_eq!(wrapped.algorithm, WrapAlgorithm::Aes256Gcm);
    assert_eq!(wrapped.nonce.len(), 12);
    assert_eq!(wrapped.ciphertext.len(), 48);
    assert_ne!(&wrapped.ciphertext[..32], dek.expose().as_slice());
    let again = kek.wrap(&dek, aad).await.unwrap();
    assert_ne!(again.nonce, wrapped.nonce, "nonces must not repeat");
    let unwrapped = kek.unwrap(&wrapped, aad).await.unwrap();
    assert_eq!(unwrapped.expose(), dek.expose());

    // Wrong associated data, tampering, another nonce, another KEK: all unauthentic.
    let error = kek
        .unwrap(&wrapped, b"envelope v1 headeR")
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Unauthentic(_)), "{error}");
    let mut tampered = wrapped.clone();
    tampered.ciphertext[5] ^= 1;
    let error = kek.unwrap(&tampered, aad).await.unwrap_err();
    assert!(matches!(error, Error::Unauthentic(_)), "{error}");
    let mut renonced = wrapped.clone();
    renonced.nonce[0] ^= 1;
    let error = kek.unwrap(&renonced, aad).await.unwrap_err();
    assert!(matches!(error, Error::Unauthentic(_)), "{error}");
    let mut truncated = wrapped.clone();
    truncated.ciphertext.pop();
    let error = kek.unwrap(&truncated, aad).await.unwrap_err();
    assert!(matches!(error, Error::Unauthentic(_)), "{error}");
    let other = generate(&provider, Purpose::Envelope, KeyAlgorithm::Aes256Gcm).await;
    let other = provider.key_encryption_key(&other.reference).await.unwrap();
    let error = other.unwrap(&wrapped, aad).await.unwrap_err();
    assert!(matches!(error, Error::Unauthentic(_)), "{error}");

    // Associated data is mandatory.
    let error = kek.wrap(&dek, b"").await.unwrap_err().to_string();
    assert!(error.contains("associated data"), "{error}");

    // The session that saw the failures is still good.
    assert_eq!(
        kek.unwrap(&wrapped, aad).await.unwrap().expose(),
        dek.expose()
    );
}

#[tokio::test]
async fn hmac_keys_are_deterministic_and_distinct() {
    let Some(token) = softhsm() else { return };
    let provider = open(token).await;
    let first = generate(&provider, Purpose::Hmac, KeyAlgorithm::HmacSha256).await;
    let second = generate(&provider, Purpose::Hmac, KeyAlgorithm::HmacSha256).await;
    let first = provider.hmac_key(&first.reference).await.unwrap();
    let second = provider.hmac_key(&second.reference).await.unwrap();
    let mac = first.mac(b"message").await.unwrap();
    assert_eq!(mac.len(), 32);
    assert_eq!(first.mac(b"message").await.unwrap(), mac);
    assert_ne!(first.mac(b"messagE").await.unwrap(), mac);
    assert_ne!(second.mac(b"message").await.unwrap(), mac);
    verify_hmac(first.as_ref(), b"message", &mac).await.unwrap();
    assert!(
        verify_hmac(second.as_ref(), b"message", &mac)
            .await
            .is_err()
    );
}

/// Runs `pkcs11-tool` on the fixture's token; `None` when it (OpenSC) is not installed.
/// Retries a few times when the token is momentarily unreadable: SoftHSM2's file store
/// is not safe across processes, and this test process writes to it concurrently.
fn pkcs11_tool(token: &SoftHsmToken, args: &[&str]) -> Option<(bool, String)> {
    let mut last = (false, String::new());
    for _ in 0..5 {
        let output = Command::new("pkcs11-tool")
            .arg("--module")
            .arg(&token.module)
            .args([
                "--token-label",
                &token.label,
                "--login",
                "--pin",
                &token.pin,
            ])
            .args(args)
            .output()
            .ok()?;
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        let transient = text.contains("No slot with token")
            || text.contains("CKR_GENERAL_ERROR")
            || text.contains("CKR_FUNCTION_FAILED");
        last = (output.status.success(), text);
        if !transient {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Some(last)
}

fn object_id(reference: &KeyReference) -> &str {
    reference.id.rsplit_once('/').unwrap().1
}

/// The blocks of a `pkcs11-tool --list-objects` listing that describe objects with
/// `CKA_ID` `id` (its `--id` option does not filter listings).
fn objects_with_id(listing: &str, id: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in listing.lines() {
        if !line.starts_with(' ') || blocks.is_empty() {
            blocks.push(String::new());
        }
        let block = blocks.last_mut().unwrap();
        block.push_str(line);
        block.push('\n');
    }
    blocks
        .into_iter()
        .filter(|block| {
            block
                .lines()
                .any(|line| line.trim() == format!("ID:         {id}"))
        })
        .collect()
}

/// The `Access:` line of an object block.
fn access(block: &str) -> &str {
    block
        .lines()
        .find_map(|line| line.trim().strip_prefix("Access:"))
        .unwrap_or_default()
        .trim()
}

#[tokio::test]
async fn generated_keys_never_leave_the_token() {
    let Some(token) = softhsm() else { return };
    let provider = open(token).await;
    let signing = generate(
        &provider,
        Purpose::Sign,
        KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP256Sha256),
    )
    .await;
    let rsa = generate(
        &provider,
        Purpose::Sign,
        KeyAlgorithm::Signature("rsa-3072-pkcs1-sha256".parse().unwrap()),
    )
    .await;
    let kek = generate(&provider, Purpose::Envelope, KeyAlgorithm::Aes256Gcm).await;
    let mac = generate(&provider, Purpose::Hmac, KeyAlgorithm::HmacSha256).await;
    for generated in [&signing, &rsa, &kek, &mac] {
        let protection = provider.protection(&generated.reference).await.unwrap();
        assert!(protection.is_locked_in(), "{protection:?}");
        assert!(!protection.secret_readable);
    }

    // An independent reader sees the same: sensitive, never extractable, no value.
    let Some((ok, listing)) = pkcs11_tool(token, &["--list-objects"]) else {
        eprintln!("pkcs11-tool not installed: independent attribute check skipped");
        return;
    };
    assert!(ok, "{listing}");
    for (generated, class) in [
        (&signing, "Private Key Object; EC"),
        (&rsa, "Private Key Object; RSA"),
        (&kek, "Secret Key Object; AES length 32"),
        (&mac, "Secret Key Object; Generic secret length 32"),
    ] {
        let objects = objects_with_id(&listing, object_id(&generated.reference));
        let secret = objects
            .iter()
            .find(|block| block.starts_with(class))
            .unwrap_or_else(|| panic!("no {class} in {objects:?}"));
        assert_eq!(
            access(secret),
            "sensitive, always sensitive, never extractable, local",
            "{secret}"
        );
    }
    let signing_objects = objects_with_id(&listing, object_id(&signing.reference));
    assert_eq!(signing_objects.len(), 2, "{signing_objects:?}");
    for block in &signing_objects {
        assert!(block.contains("label:      model-sign/test/"), "{block}");
        let usage = block
            .lines()
            .find_map(|line| line.trim().strip_prefix("Usage:"))
            .unwrap_or_default()
            .trim();
        assert!(usage == "sign" || usage == "verify", "{block}");
    }
    let (ok, output) = pkcs11_tool(
        token,
        &[
            "--read-object",
            "--type",
            "secrkey",
            "--id",
            object_id(&kek.reference),
        ],
    )
    .unwrap();
    assert!(!ok, "the KEK's value could be read: {output}");
    assert!(output.contains("CKR_ATTRIBUTE_SENSITIVE"), "{output}");
}

#[tokio::test]
async fn destroyed_keys_are_not_found() {
    let Some(token) = softhsm() else { return };
    let provider = open(token).await;
    let generated = generate(
        &provider,
        Purpose::Sign,
        KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP256Sha256),
    )
    .await;
    let key = provider
        .signing_key(&generated.reference, SignatureAlgorithm::EcdsaP256Sha256)
        .await
        .unwrap();
    key.sign(b"before").await.unwrap();
    provider.destroy(&generated.reference).await.unwrap();
    let error = provider
        .signing_key(&generated.reference, SignatureAlgorithm::EcdsaP256Sha256)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("not found"), "{error}");
    assert!(error.contains(&generated.reference.id), "{error}");
    let error = key.sign(b"after").await.unwrap_err().to_string();
    assert!(error.contains("not found"), "{error}");
    // Destroying what is gone is fine.
    provider.destroy(&generated.reference).await.unwrap();
    // Every object went, public key included.
    if let Some((ok, listing)) = pkcs11_tool(token, &["--list-objects"]) {
        assert!(ok, "{listing}");
        let left = objects_with_id(&listing, object_id(&generated.reference));
        assert!(left.is_empty(), "{left:?}");
    }
}

#[tokio::test]
async fn references_are_checked() {
    let Some(token) = softhsm() else { return };
    let provider = open(token).await;
    let serial = provider.token_serial().to_owned();
    let cases = [
        (
            "file",
            format!("{serial}/00112233445566778899aabbccddeeff"),
            "provider 'file'",
        ),
        (
            "pkcs11",
            "00112233".to_owned(),
            "<token serial>/<object id>",
        ),
        ("pkcs11", format!("{serial}/zz"), "hex"),
        (
            "pkcs11",
            "0000000000000000/0011".to_owned(),
            "serial 0000000000000000",
        ),
    ];
    for (provider_id, id, expected) in cases {
        let reference = KeyReference {
            provider: provider_id.into(),
            id,
        };
        let error = provider.hmac_key(&reference).await.unwrap_err().to_string();
        assert!(error.contains(expected), "{reference}: {error}");
    }
    let absent = KeyReference {
        provider: "pkcs11".into(),
        id: format!("{serial}/{}", random_hex(16)),
    };
    let error = provider.hmac_key(&absent).await.unwrap_err().to_string();
    assert!(error.contains("not found"), "{error}");
    assert!(error.contains(&token.label), "{error}");
}

#[tokio::test]
async fn unknown_token_label_is_named() {
    let Some(token) = softhsm() else { return };
    let label = format!("absent-{}", random_hex(4));
    let pin_line = format!("pin-file = {:?}", token.pin_file);
    let error = open_text(&config_text(token, &label, &pin_line, ""))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Pkcs11Error::TokenNotFound { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains(&label), "{message}");
    assert!(message.contains(&format!("'{}'", token.label)), "{message}");
}

/// Serials of the tokens labelled `label`, as softhsm2-util lists them.
fn serials_of(label: &str) -> Vec<String> {
    let output = Command::new("softhsm2-util")
        .arg("--show-slots")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let mut serials = Vec::new();
    let mut serial = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(value) = line.strip_prefix("Serial number:") {
            serial = value.trim().to_owned();
        } else if let Some(value) = line.strip_prefix("Label:")
            && value.trim() == label
        {
            serials.push(serial.clone());
        }
    }
    serials
}

#[tokio::test]
async fn duplicate_labels_need_a_serial() {
    let Some(token) = softhsm() else { return };
    let pin_line = format!("pin-file = {:?}", token.pin_file);
    let text = config_text(token, &token.duplicate_label, &pin_line, "");
    let error = open_text(&text).await.unwrap_err();
    assert!(
        matches!(error, Pkcs11Error::AmbiguousToken { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("token-serial"), "{message}");
    assert!(message.contains(&token.duplicate_label), "{message}");
    let serials = serials_of(&token.duplicate_label);
    assert_eq!(serials.len(), 2, "{serials:?}");
    for serial in &serials {
        assert!(message.contains(serial.as_str()), "{message}");
    }

    // With a serial, the right one opens, and its keys are its own.
    let extra = format!("token-serial = {:?}\n", serials[1]);
    let duplicate = open_text(&config_text(
        token,
        &token.duplicate_label,
        &pin_line,
        &extra,
    ))
    .await
    .unwrap();
    assert_eq!(duplicate.token_serial(), serials[1]);
    let elsewhere = generate(&duplicate, Purpose::Hmac, KeyAlgorithm::HmacSha256).await;
    let provider = open(token).await;
    let error = provider
        .hmac_key(&elsewhere.reference)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains(&serials[1]), "{error}");
    assert!(error.contains(provider.token_serial()), "{error}");
    duplicate.destroy(&elsewhere.reference).await.unwrap();
}

#[tokio::test]
async fn missing_or_broken_modules_are_named() {
    let Some(token) = softhsm() else { return };
    let pin_line = format!("pin-file = {:?}", token.pin_file);
    let missing = format!("/nonexistent/libpkcs11-{}.so", random_hex(4));
    let text = format!(
        "version = 1\nmodule = {missing:?}\ntoken-label = {:?}\n{pin_line}\n",
        token.label
    );
    let error = open_text(&text).await.unwrap_err();
    assert!(
        matches!(error, Pkcs11Error::ModuleNotFound { .. }),
        "{error}"
    );
    assert!(error.to_string().contains(&missing), "{error}");

    // A file that is not a shared library.
    let not_a_module = token.config_file.display().to_string();
    let text = format!(
        "version = 1\nmodule = {not_a_module:?}\ntoken-label = {:?}\n{pin_line}\n",
        token.label
    );
    let error = open_text(&text).await.unwrap_err();
    assert!(matches!(error, Pkcs11Error::ModuleLoad { .. }), "{error}");
    assert!(error.to_string().contains(&not_a_module), "{error}");
}

#[tokio::test]
async fn pin_problems_are_reported_clearly() {
    let Some(token) = softhsm() else { return };
    // A variable that is not set.
    let variable = format!("CARIMBO_TEST_UNSET_PIN_{}", random_hex(4).to_uppercase());
    let text = config_text(token, &token.label, &format!("pin-env = {variable:?}"), "");
    let error = open_text(&text).await.unwrap_err();
    assert!(matches!(error, Pkcs11Error::PinEnv { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("PIN") && message.contains(&variable),
        "{message}"
    );

    let dir = tempfile::tempdir().unwrap();
    // A wrong PIN (one attempt: SoftHSM2 does not lock, real tokens might).
    let wrong = dir.path().join("wrong-pin");
    write_private(&wrong, format!("{}x\n", token.pin).as_bytes());
    let text = config_text(token, &token.label, &format!("pin-file = {wrong:?}"), "");
    let error = open_text(&text).await.unwrap_err();
    assert!(matches!(error, Pkcs11Error::WrongPin { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("wrong PIN") && message.contains(&token.label),
        "{message}"
    );
    assert!(!message.contains(&token.pin), "{message}");

    // A world-readable PIN file is refused before it is used.
    let readable = dir.path().join("readable-pin");
    write_private(&readable, token.pin.as_bytes());
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let text = config_text(token, &token.label, &format!("pin-file = {readable:?}"), "");
    let error = open_text(&text).await.unwrap_err();
    assert!(matches!(error, Pkcs11Error::PinFile { .. }), "{error}");
    assert!(error.to_string().contains("chmod 600"), "{error}");
}

#[tokio::test]
async fn the_config_file_round_trips_without_the_pin() {
    let Some(token) = softhsm() else { return };
    let config = Pkcs11Config::from_file(&token.config_file).unwrap();
    let text = toml::to_string(&config).unwrap();
    assert!(!text.contains(&token.pin), "{text}");
    assert!(text.contains("pin-file"), "{text}");
    assert_eq!(
        Pkcs11Config::from_toml_str(&text, Path::new("/")).unwrap(),
        config
    );
    let provider = Pkcs11Provider::open(&config).await.unwrap();
    let debug = format!("{provider:?}");
    assert!(!debug.contains(&token.pin), "{debug}");
    for mechanism in ["CKM_ECDSA", "CKM_AES_GCM", "CKM_SHA256_HMAC"] {
        assert!(
            provider.mechanisms().iter().any(|m| m == mechanism),
            "{mechanism} missing from {:?}",
            provider.mechanisms()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_signing_through_the_pool() {
    let Some(token) = softhsm() else { return };
    let provider = open(token).await;
    let algorithm = SignatureAlgorithm::EcdsaP256Sha256;
    let generated = generate(&provider, Purpose::Sign, KeyAlgorithm::Signature(algorithm)).await;
    let key = provider
        .signing_key(&generated.reference, algorithm)
        .await
        .unwrap();
    const TASKS: usize = 8;
    const PER_TASK: usize = 25;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..TASKS {
        let key = Arc::clone(&key);
        tasks.spawn(async move {
            let mut signed = Vec::with_capacity(PER_TASK);
            for n in 0..PER_TASK {
                let message = format!("task {task} message {n}").into_bytes();
                let signature = key.sign(&message).await.unwrap();
                signed.push((message, signature));
            }
            signed
        });
    }
    let mut count = 0;
    while let Some(signed) = tasks.join_next().await {
        for (message, signature) in signed.unwrap() {
            verify_signature(algorithm, key.public_key_der(), &message, &signature).unwrap();
            count += 1;
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(count, TASKS * PER_TASK);
    eprintln!(
        "{count} ECDSA P-256 signatures through the pool in {elapsed:?} ({:.0}/s)",
        count as f64 / elapsed.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_session_pool_queues_callers() {
    let Some(token) = softhsm() else { return };
    let pin_line = format!("pin-file = {:?}", token.pin_file);
    let text = config_text(
        token,
        &token.label,
        &pin_line,
        "sessions = 1\ntimeout-seconds = 30\n",
    );
    let provider = open_text(&text).await.unwrap();
    let algorithm = SignatureAlgorithm::Ed25519;
    let generated = generate(&provider, Purpose::Sign, KeyAlgorithm::Signature(algorithm)).await;
    let key = provider
        .signing_key(&generated.reference, algorithm)
        .await
        .unwrap();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..4 {
        let key = Arc::clone(&key);
        tasks.spawn(async move {
            for n in 0..25 {
                let message = format!("queued {task} {n}").into_bytes();
                let signature = key.sign(&message).await.unwrap();
                verify_signature(algorithm, key.public_key_der(), &message, &signature).unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    eprintln!(
        "100 Ed25519 signatures through a one-session pool in {:?}",
        started.elapsed()
    );
}
