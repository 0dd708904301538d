//! PKCS#11 token administration and ceremony key operations against SoftHSM2: slot
//! listing, token initialisation (and its refusal on initialised tokens), labelled
//! keys, the token's random generator, and backup by trusted wrapping restored into
//! another token.
//!
//! Signatures of restored keys are checked by `openssl` too; what the token itself
//! enforces (trusted wrapping, the unwrap template) is checked with raw PKCS#11 calls
//! that bypass the provider's own checks.

use std::path::Path;

use carimbo_kms::{
    GeneratedKey, HashAlgorithm, KeyAlgorithm, KeyProvider, KeyReference, Purpose, RsaPadding,
    SignatureAlgorithm, verify_signature,
};
use carimbo_kms_pkcs11::{
    BackupPolicy, Pin, Pkcs11Config, Pkcs11Error, Pkcs11Provider, SlotInfo, TokenSelector,
    initialize_token, list_slots,
};
use carimbo_tests::{SoftHsmToken, openssl, public_key_pem, random_hex, softhsm, write_private};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

/// A token initialised by a test, with its PINs and a provider config.
struct FreshToken {
    info: SlotInfo,
    so_pin: String,
    user_pin: String,
    config: Pkcs11Config,
    _dir: tempfile::TempDir,
}

impl FreshToken {
    fn so_pin(&self) -> Pin {
        Pin::new(self.so_pin.clone())
    }

    async fn open(&self) -> Pkcs11Provider {
        Pkcs11Provider::open(&self.config).await.unwrap()
    }
}

/// Initialises the free SoftHSM2 token with a unique label and random PINs.
fn fresh_token(fixture: &SoftHsmToken, prefix: &str) -> FreshToken {
    let label = format!("{prefix}-{}", random_hex(4));
    let (so_pin, user_pin) = (random_hex(8), random_hex(8));
    let info = initialize_token(
        &fixture.module,
        &TokenSelector::FirstUninitialized,
        &label,
        &Pin::new(so_pin.clone()),
        &Pin::new(user_pin.clone()),
    )
    .unwrap_or_else(|e| panic!("initialising a free token: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let pin_file = dir.path().join("pin");
    write_private(&pin_file, user_pin.as_bytes());
    let text = format!(
        "version = 1\nmodule = {:?}\ntoken-label = {label:?}\ntoken-serial = {:?}\npin-file = {pin_file:?}\n",
        fixture.module, info.serial
    );
    let config = Pkcs11Config::from_toml_str(&text, Path::new("/")).unwrap();
    FreshToken {
        info,
        so_pin,
        user_pin,
        config,
        _dir: dir,
    }
}

async fn open_fixture(token: &SoftHsmToken) -> Pkcs11Provider {
    let config = Pkcs11Config::from_file(&token.config_file).unwrap();
    Pkcs11Provider::open(&config).await.unwrap()
}

fn ca_label() -> String {
    format!("pki-ca/test/root-{}", random_hex(4))
}

/// Signs `message` with `reference` on `provider`.
async fn sign(
    provider: &Pkcs11Provider,
    reference: &KeyReference,
    algorithm: SignatureAlgorithm,
    message: &[u8],
) -> Vec<u8> {
    let key = provider.signing_key(reference, algorithm).await.unwrap();
    key.sign(message).await.unwrap()
}

/// Verifies a signature over `message` with the openssl CLI.
fn openssl_verify(algorithm: SignatureAlgorithm, spki: &[u8], message: &[u8], signature: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let (key, msg, sig) = (
        dir.path().join("pub.pem"),
        dir.path().join("msg"),
        dir.path().join("sig"),
    );
    std::fs::write(&key, public_key_pem(spki)).unwrap();
    std::fs::write(&msg, message).unwrap();
    std::fs::write(&sig, signature).unwrap();
    let (key, msg, sig) = (
        key.to_str().unwrap(),
        msg.to_str().unwrap(),
        sig.to_str().unwrap(),
    );
    let mut args = match algorithm.hash() {
        None => vec![
            "pkeyutl", "-verify", "-pubin", "-inkey", key, "-rawin", "-in", msg, "-sigfile", sig,
        ],
        Some(hash) => {
            let hash = match hash {
                HashAlgorithm::Sha256 => "-sha256",
                HashAlgorithm::Sha384 => "-sha384",
                HashAlgorithm::Sha512 => "-sha512",
            };
            vec!["dgst", hash, "-verify", key, "-signature", sig]
        }
    };
    if let SignatureAlgorithm::Rsa {
        padding: RsaPadding::Pss,
        ..
    } = algorithm
    {
        // Salt as long as the digest, as the provider signs.
        args.extend([
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:-1",
        ]);
    }
    if algorithm.hash().is_some() {
        args.push(msg);
    }
    let (ok, output) = openssl(&args);
    assert!(ok, "openssl rejects the {algorithm} signature: {output}");
}

#[tokio::test]
async fn list_slots_shows_the_fixture_token() {
    let Some(token) = softhsm() else { return };
    let slots = list_slots(&token.module).unwrap();
    let fixture: Vec<&SlotInfo> = slots.iter().filter(|s| s.label == token.label).collect();
    assert_eq!(fixture.len(), 1, "{slots:?}");
    let fixture = fixture[0];
    assert!(fixture.token_present && fixture.initialized, "{fixture:?}");
    assert!(!fixture.serial.is_empty(), "{fixture:?}");
    assert!(fixture.has_rng, "{fixture:?}");
    assert_eq!(fixture.manufacturer, "SoftHSM project");
    assert_eq!(fixture.model, "SoftHSM v2");
    // The provider sees the same serial.
    let provider = open_fixture(token).await;
    assert_eq!(provider.token_serial(), fixture.serial);
    // The two tokens sharing a label are told apart by serial.
    let duplicates: Vec<&str> = slots
        .iter()
        .filter(|s| s.label == token.duplicate_label)
        .map(|s| s.serial.as_str())
        .collect();
    assert_eq!(duplicates.len(), 2, "{slots:?}");
    assert_ne!(duplicates[0], duplicates[1]);
    // SoftHSM2 always offers a free token.
    assert!(
        slots.iter().any(|s| s.token_present && !s.initialized),
        "{slots:?}"
    );
    // A missing module is named.
    let error = list_slots(Path::new("/nonexistent/libp11.so")).unwrap_err();
    assert!(
        matches!(error, Pkcs11Error::ModuleNotFound { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_free_token_is_initialised_and_opens_with_the_user_pin() {
    let Some(fixture) = softhsm() else { return };
    let before = list_slots(&fixture.module).unwrap();
    let fresh = fresh_token(fixture, "adm-init");
    let info = &fresh.info;
    assert!(info.token_present && info.initialized, "{info:?}");
    assert!(info.label.starts_with("adm-init-"), "{info:?}");
    assert!(!info.serial.is_empty(), "{info:?}");
    assert!(
        before.iter().all(|s| s.serial != info.serial),
        "serial {} was already there: {before:?}",
        info.serial
    );

    // Visible to a new listing and to the provider, in this process ...
    let after = list_slots(&fixture.module).unwrap();
    assert!(after.contains(info), "{after:?}");
    assert!(after.iter().any(|s| s.token_present && !s.initialized));
    let provider = fresh.open().await;
    assert_eq!(provider.token_label(), info.label);
    assert_eq!(provider.token_serial(), info.serial);
    let generated = provider
        .generate_labeled(
            &ca_label(),
            Purpose::PkiCa,
            KeyAlgorithm::Signature(SignatureAlgorithm::EcdsaP256Sha256),
            BackupPolicy::None,
        )
        .await
        .unwrap();
    let spki = generated.public_key.unwrap();
    let signature = sign(
        &provider,
        &generated.reference,
        SignatureAlgorithm::EcdsaP256Sha256,
        b"fresh token",
    )
    .await;
    verify_signature(
        SignatureAlgorithm::EcdsaP256Sha256,
        &spki,
        b"fresh token",
        &signature,
    )
    .unwrap();

    // ... and in another process, with the user PIN (not the SO PIN).
    let output = std::process::Command::new("pkcs11-tool")
        .arg("--module")
        .arg(&fixture.module)
        .args(["--token-label", &info.label, "--login", "--pin"])
        .arg(&fresh.user_pin)
        .arg("--list-objects")
        .output();
    match output {
        Ok(output) => {
            let text = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{text}");
            assert!(text.contains("pki-ca/test/root-"), "{text}");
        }
        Err(_) => eprintln!("pkcs11-tool not installed: cross-process check skipped"),
    }

    // The SO PIN is not a user PIN.
    let mut config = fresh.config.clone();
    let dir = tempfile::tempdir().unwrap();
    let so_pin_file = dir.path().join("so-pin");
    write_private(&so_pin_file, fresh.so_pin.as_bytes());
    config.pin = carimbo_kms_pkcs11::PinSource::File(so_pin_file);
    drop(provider);
    let error = Pkcs11Provider::open(&config).await.unwrap_err();
    assert!(matches!(error, Pkcs11Error::WrongPin { .. }), "{error}");
}

#[tokio::test]
async fn initialising_an_initialised_token_is_refused_and_keeps_its_keys() {
    let Some(fixture) = softhsm() else { return };
    let fresh = fresh_token(fixture, "adm-keep");
    let provider = fresh.open().await;
    let algorithm = SignatureAlgorithm::EcdsaP256Sha256;
    let label = ca_label();
    let generated = provider
        .generate_labeled(
            &label,
            Purpose::PkiCa,
            KeyAlgorithm::Signature(algorithm),
            BackupPolicy::None,
        )
        .await
        .unwrap();

    // With the right SO PIN and a valid label: refused before C_InitToken.
    let error = initialize_token(
        &fixture.module,
        &TokenSelector::Serial(fresh.info.serial.clone()),
        "wiped",
        &fresh.so_pin(),
        &Pin::new(random_hex(8)),
    )
    .unwrap_err();
    assert!(
        matches!(error, Pkcs11Error::TokenAlreadyInitialized { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains(&fresh.info.label), "{message}");
    assert!(message.contains(&fresh.info.serial), "{message}");
    assert!(!message.contains(&fresh.so_pin), "{message}");
    // The fixture's tokens are refused as well.
    let fixture_serial = open_fixture(fixture).await.token_serial().to_owned();
    let error = initialize_token(
        &fixture.module,
        &TokenSelector::Serial(fixture_serial),
        "wiped",
        &Pin::new(random_hex(8)),
        &Pin::new(random_hex(8)),
    )
    .unwrap_err();
    assert!(
        matches!(error, Pkcs11Error::TokenAlreadyInitialized { .. }),
        "{error}"
    );

    // The key survived, under its label, and still signs.
    let slots = list_slots(&fixture.module).unwrap();
    assert!(slots.contains(&fresh.info), "{slots:?}");
    assert_eq!(
        provider.find_key(&label).await.unwrap(),
        Some(generated.reference.clone())
    );
    let signature = sign(&provider, &generated.reference, algorithm, b"still here").await;
    verify_signature(
        algorithm,
        generated.public_key.as_deref().unwrap(),
        b"still here",
        &signature,
    )
    .unwrap();

    // Unknown serials, short PINs and bad labels are refused before any change.
    let error = initialize_token(
        &fixture.module,
        &TokenSelector::Serial("no-such-serial".into()),
        "x",
        &Pin::new(random_hex(8)),
        &Pin::new(random_hex(8)),
    )
    .unwrap_err();
    assert!(
        matches!(error, Pkcs11Error::NoTokenToInitialize { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("no-such-serial"), "{error}");
    let short = initialize_token(
        &fixture.module,
        &TokenSelector::FirstUninitialized,
        "short-pin",
        &Pin::new("1234567".into()),
        &Pin::new(random_hex(8)),
    )
    .unwrap_err()
    .to_string();
    assert!(short.contains("at least 8"), "{short}");
    assert!(!short.contains("1234567"), "{short}");
    let long_label = "x".repeat(33);
    let error = initialize_token(
        &fixture.module,
        &TokenSelector::FirstUninitialized,
        &long_label,
        &Pin::new(random_hex(8)),
        &Pin::new(random_hex(8)),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("32 bytes"), "{error}");
    let same = random_hex(8);
    let error = initialize_token(
        &fixture.module,
        &TokenSelector::FirstUninitialized,
        "same-pins",
        &Pin::new(same.clone()),
        &Pin::new(same),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("must differ"), "{error}");
}

#[tokio::test]
async fn labelled_keys_are_found_and_labels_are_unique() {
    let Some(token) = softhsm() else { return };
    let provider = open_fixture(token).await;
    let label = ca_label();
    assert!(!provider.label_in_use(&label).await.unwrap());
    assert_eq!(provider.find_key(&label).await.unwrap(), None);
    let algorithm = SignatureAlgorithm::EcdsaP384Sha384;
    let generated = provider
        .generate_labeled(
            &label,
            Purpose::PkiCa,
            KeyAlgorithm::Signature(algorithm),
            BackupPolicy::None,
        )
        .await
        .unwrap();
    assert!(
        generated
            .reference
            .id
            .starts_with(&format!("{}/", provider.token_serial()))
    );
    assert!(provider.label_in_use(&label).await.unwrap());
    assert_eq!(
        provider.find_key(&label).await.unwrap(),
        Some(generated.reference.clone())
    );
    let spki = provider.public_key_der(&generated.reference).await.unwrap();
    assert_eq!(Some(&spki), generated.public_key.as_ref());
    let protection = provider.protection(&generated.reference).await.unwrap();
    assert!(protection.is_locked_in(), "{protection:?}");
    assert!(!protection.wrap_with_trusted, "{protection:?}");

    // The label is taken, whatever is asked for.
    let error = provider
        .generate_labeled(
            &label,
            Purpose::PkiCa,
            KeyAlgorithm::Signature(SignatureAlgorithm::Ed25519),
            BackupPolicy::None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::LabelInUse { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&label) && message.contains(&token.label),
        "{message}"
    );

    // Keys made through the KeyProvider trait are found by their `name/vN` label too.
    let name = carimbo_kms::KeyName::new(&format!("model-sign/test/k{}", random_hex(4))).unwrap();
    let other = provider
        .generate(&carimbo_kms::GenerateRequest {
            name: &name,
            version: 1,
            purpose: Purpose::Sign,
            algorithm: KeyAlgorithm::HmacSha256,
        })
        .await;
    assert!(other.is_err(), "HMAC is not a signing purpose");
    let hmac_name =
        carimbo_kms::KeyName::new(&format!("token-mac/test/k{}", random_hex(4))).unwrap();
    let hmac = provider
        .generate(&carimbo_kms::GenerateRequest {
            name: &hmac_name,
            version: 1,
            purpose: Purpose::Hmac,
            algorithm: KeyAlgorithm::HmacSha256,
        })
        .await
        .unwrap();
    assert_eq!(
        provider.find_key(&format!("{hmac_name}/v1")).await.unwrap(),
        Some(hmac.reference.clone())
    );
    // A secret key has no public key to read.
    let error = provider.public_key_der(&hmac.reference).await.unwrap_err();
    assert!(error.to_string().contains("not found"), "{error}");

    // Purpose and algorithm must fit; trusted-wrap backup is for signing keys.
    let error = provider
        .generate_labeled(
            &ca_label(),
            Purpose::Envelope,
            KeyAlgorithm::Signature(algorithm),
            BackupPolicy::None,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::InvalidInput(_)), "{error}");
    let error = provider
        .generate_labeled(
            &format!("envelope-data/test/{}", random_hex(4)),
            Purpose::Envelope,
            KeyAlgorithm::Aes256Gcm,
            BackupPolicy::WrapWithTrusted,
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("signing keys only"), "{error}");
}

#[tokio::test]
async fn random_bytes_come_from_the_token() {
    let Some(token) = softhsm() else { return };
    let provider = open_fixture(token).await;
    let first = provider.random_bytes(32).await.unwrap();
    let second = provider.random_bytes(32).await.unwrap();
    assert_eq!(first.len(), 32);
    assert_eq!(second.len(), 32);
    assert_ne!(first, second);
    assert_ne!(first, vec![0u8; 32]);
    assert_eq!(provider.random_bytes(20).await.unwrap().len(), 20);
    assert!(provider.random_bytes(0).await.unwrap().is_empty());
    let error = provider.random_bytes(1 << 20).await.unwrap_err();
    assert!(matches!(error, Pkcs11Error::InvalidInput(_)), "{error}");
}

/// A backup wrapping key from `provider`'s random generator.
async fn wrapping_key(provider: &Pkcs11Provider) -> Zeroizing<[u8; 32]> {
    let bytes = Zeroizing::new(provider.random_bytes(32).await.unwrap());
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&bytes);
    key
}

/// Generates a backup-able CA key on `source`, backs it up, restores it into a fresh
/// token and checks the restored key signs for the original public key.
async fn backup_and_restore(
    fixture: &SoftHsmToken,
    algorithm: SignatureAlgorithm,
) -> Result<(), Pkcs11Error> {
    let (source_token, target_token) = (
        fresh_token(fixture, "adm-src"),
        fresh_token(fixture, "adm-dst"),
    );
    let (source, target) = (source_token.open().await, target_token.open().await);
    let label = ca_label();
    let generated = source
        .generate_labeled(
            &label,
            Purpose::PkiCa,
            KeyAlgorithm::Signature(algorithm),
            BackupPolicy::WrapWithTrusted,
        )
        .await?;
    let spki = generated.public_key.clone().unwrap();
    let protection = source.protection(&generated.reference).await?;
    assert!(protection.is_exportable_only_to_trusted(), "{protection:?}");
    assert!(protection.always_sensitive, "{protection:?}");
    assert!(!protection.is_locked_in(), "{protection:?}");

    let key = wrapping_key(&source).await;
    let wrap_label = format!("backup-wrap-{}", random_hex(4));
    source
        .import_trusted_wrapping_key(&source_token.so_pin(), &wrap_label, &key)
        .await?;
    let blob = source
        .wrap_for_backup(&generated.reference, &wrap_label)
        .await?;
    assert!(blob.len() > 32 && blob.len() % 8 == 0, "{}", blob.len());

    target
        .import_trusted_wrapping_key(&target_token.so_pin(), &wrap_label, &key)
        .await?;
    let restored = target
        .restore_from_backup(&blob, &spki, algorithm, &wrap_label, &label)
        .await?;
    assert!(
        restored
            .reference
            .id
            .starts_with(&format!("{}/", target.token_serial()))
    );
    assert_eq!(restored.public_key.as_ref(), Some(&spki));
    assert_eq!(
        target.find_key(&label).await?,
        Some(restored.reference.clone())
    );
    assert_eq!(target.public_key_der(&restored.reference).await?, spki);
    let protection = target.protection(&restored.reference).await?;
    assert!(protection.is_exportable_only_to_trusted(), "{protection:?}");
    // PKCS#11 marks unwrapped keys as not always sensitive: a restored copy is told
    // apart from a key generated in the token.
    assert!(!protection.always_sensitive, "{protection:?}");

    let message = format!("restored {algorithm} {}", random_hex(8)).into_bytes();
    let signature = sign(&target, &restored.reference, algorithm, &message).await;
    verify_signature(algorithm, &spki, &message, &signature).unwrap();
    openssl_verify(algorithm, &spki, &message, &signature);
    // The restored token can make the next backup.
    let again = target
        .wrap_for_backup(&restored.reference, &wrap_label)
        .await?;
    assert!(!again.is_empty());

    // Done: the wrapping key leaves both tokens; the keys stay, no longer wrappable.
    for provider in [&source, &target] {
        assert!(provider.destroy_wrapping_key(&wrap_label).await?);
        assert!(!provider.label_in_use(&wrap_label).await?);
        assert!(!provider.destroy_wrapping_key(&wrap_label).await?);
    }
    let error = source
        .wrap_for_backup(&generated.reference, &wrap_label)
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::WrappingKey { .. }), "{error}");
    let signature = sign(&source, &generated.reference, algorithm, &message).await;
    verify_signature(algorithm, &spki, &message, &signature).unwrap();
    Ok(())
}

#[tokio::test]
async fn a_backup_restores_into_another_token_and_signs_for_the_original_key() {
    let Some(fixture) = softhsm() else { return };
    backup_and_restore(fixture, SignatureAlgorithm::EcdsaP384Sha384)
        .await
        .unwrap();
}

#[tokio::test]
async fn backups_of_other_key_types() {
    let Some(fixture) = softhsm() else { return };
    for algorithm in [
        "ecdsa-p256-sha256",
        "rsa-3072-pss-sha256",
        "rsa-4096-pkcs1-sha384",
    ] {
        let algorithm: SignatureAlgorithm = algorithm.parse().unwrap();
        backup_and_restore(fixture, algorithm)
            .await
            .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
    }
    // SoftHSM2 2.6 does not wrap Edwards keys (CKR_KEY_NOT_WRAPPABLE from C_WrapKey,
    // although the key is extractable and the wrapping key trusted): a clean refusal.
    let error = backup_and_restore(fixture, SignatureAlgorithm::Ed25519)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Pkcs11Error::BackupUnsupported { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("CKR_KEY_NOT_WRAPPABLE"), "{message}");
    assert!(message.contains("CKK_EC_EDWARDS"), "{message}");
}

#[tokio::test]
async fn bad_backups_and_restores_are_refused() {
    let Some(fixture) = softhsm() else { return };
    let (source_token, target_token) = (
        fresh_token(fixture, "adm-bsrc"),
        fresh_token(fixture, "adm-bdst"),
    );
    let (source, target) = (source_token.open().await, target_token.open().await);
    let algorithm = SignatureAlgorithm::EcdsaP256Sha256;
    let key = wrapping_key(&source).await;
    let wrap_label = "backup-wrap";

    // A wrong SO PIN is named, and the provider stays logged in as the user.
    let error = source
        .import_trusted_wrapping_key(&Pin::new(random_hex(8)), wrap_label, &key)
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::WrongSoPin { .. }), "{error}");
    assert!(!source.label_in_use(wrap_label).await.unwrap());
    source
        .import_trusted_wrapping_key(&source_token.so_pin(), wrap_label, &key)
        .await
        .unwrap();
    let error = source
        .import_trusted_wrapping_key(&source_token.so_pin(), wrap_label, &key)
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::LabelInUse { .. }), "{error}");

    // Keys generated without the backup policy never leave the token.
    let locked = source
        .generate_labeled(
            &ca_label(),
            Purpose::PkiCa,
            KeyAlgorithm::Signature(algorithm),
            BackupPolicy::None,
        )
        .await
        .unwrap();
    let error = source
        .wrap_for_backup(&locked.reference, wrap_label)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Pkcs11Error::NotBackupable { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("non-extractable"), "{error}");

    // Only with a trusted wrapping key that exists.
    let label = ca_label();
    let backupable = source
        .generate_labeled(
            &label,
            Purpose::PkiCa,
            KeyAlgorithm::Signature(algorithm),
            BackupPolicy::WrapWithTrusted,
        )
        .await
        .unwrap();
    let error = source
        .wrap_for_backup(&backupable.reference, "no-such-wrapping-key")
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::WrappingKey { .. }), "{error}");
    // Still signing after the SO steps: the user is logged in again.
    let signature = sign(&source, &backupable.reference, algorithm, b"after SO").await;
    verify_signature(
        algorithm,
        backupable.public_key.as_deref().unwrap(),
        b"after SO",
        &signature,
    )
    .unwrap();

    let blob = source
        .wrap_for_backup(&backupable.reference, wrap_label)
        .await
        .unwrap();
    let spki = backupable.public_key.clone().unwrap();

    // Restoring needs the same wrapping key, imported into the target first.
    let error = target
        .restore_from_backup(&blob, &spki, algorithm, wrap_label, &label)
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::WrappingKey { .. }), "{error}");
    let other_key = wrapping_key(&target).await;
    target
        .import_trusted_wrapping_key(&target_token.so_pin(), "other-wrap", &other_key)
        .await
        .unwrap();
    let error = target
        .restore_from_backup(&blob, &spki, algorithm, "other-wrap", &label)
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::Unauthentic(_)), "{error}");
    target
        .import_trusted_wrapping_key(&target_token.so_pin(), wrap_label, &key)
        .await
        .unwrap();
    // A damaged blob.
    let mut damaged = blob.clone();
    damaged[10] ^= 1;
    let error = target
        .restore_from_backup(&damaged, &spki, algorithm, wrap_label, &label)
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::Unauthentic(_)), "{error}");
    // The public key of another key: the test signature fails, nothing is left.
    let stranger = source
        .generate_labeled(
            &ca_label(),
            Purpose::PkiCa,
            KeyAlgorithm::Signature(algorithm),
            BackupPolicy::None,
        )
        .await
        .unwrap();
    let error = target
        .restore_from_backup(
            &blob,
            stranger.public_key.as_deref().unwrap(),
            algorithm,
            wrap_label,
            &label,
        )
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("does not match the given public key"),
        "{error}"
    );
    assert!(!target.label_in_use(&label).await.unwrap());
    // The wrong algorithm for the key.
    let error = target
        .restore_from_backup(
            &blob,
            &spki,
            SignatureAlgorithm::EcdsaP384Sha384,
            wrap_label,
            &label,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::InvalidInput(_)), "{error}");
    // Finally the right one; then the label is taken.
    target
        .restore_from_backup(&blob, &spki, algorithm, wrap_label, &label)
        .await
        .unwrap();
    let error = target
        .restore_from_backup(&blob, &spki, algorithm, wrap_label, &label)
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::LabelInUse { .. }), "{error}");
}

/// A raw PKCS#11 handle on the module, sharing the process's initialisation (the
/// provider's module registry has initialised it already).
fn raw_module(fixture: &SoftHsmToken) -> Pkcs11 {
    // Make sure the registry initialised the module first, with OS locking.
    list_slots(&fixture.module).unwrap();
    let pkcs11 = Pkcs11::new(&fixture.module).unwrap();
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(error) => panic!("C_Initialize: {error}"),
    }
    pkcs11
}

/// A raw read-write session on the token with serial `serial`.
fn raw_session(pkcs11: &Pkcs11, serial: &str) -> Session {
    let slot = pkcs11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|slot| pkcs11.get_token_info(*slot).unwrap().serial_number() == serial)
        .unwrap();
    pkcs11.open_rw_session(slot).unwrap()
}

fn one(session: &Session, template: &[Attribute]) -> ObjectHandle {
    let found = session.find_objects(template).unwrap();
    assert_eq!(found.len(), 1, "{template:?}");
    found[0]
}

fn return_code<T: std::fmt::Debug>(result: Result<T, CryptokiError>) -> RvError {
    match result {
        Err(CryptokiError::Pkcs11(rv, _)) => rv,
        other => panic!("expected a PKCS#11 error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_token_itself_enforces_trusted_wrapping() {
    let Some(fixture) = softhsm() else { return };
    let fresh = fresh_token(fixture, "adm-raw");
    let provider = fresh.open().await;
    let algorithm = SignatureAlgorithm::EcdsaP256Sha256;
    let label = ca_label();
    let generated: GeneratedKey = provider
        .generate_labeled(
            &label,
            Purpose::PkiCa,
            KeyAlgorithm::Signature(algorithm),
            BackupPolicy::WrapWithTrusted,
        )
        .await
        .unwrap();
    let key = wrapping_key(&provider).await;
    provider
        .import_trusted_wrapping_key(&fresh.so_pin(), "trusted-wrap", &key)
        .await
        .unwrap();

    // The provider's session is logged in as the user; raw sessions of this process
    // share that login.
    let pkcs11 = raw_module(fixture);
    let session = raw_session(&pkcs11, &fresh.info.serial);
    let private = one(
        &session,
        &[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Label(label.as_bytes().to_vec()),
        ],
    );
    let trusted = one(
        &session,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(b"trusted-wrap".to_vec()),
        ],
    );

    // An AES wrapping key the user made is not trusted: the token refuses to wrap the
    // CA key with it (the provider refuses even earlier).
    let untrusted = session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(b"user-wrap".to_vec()),
                Attribute::Id(vec![0x42]),
                Attribute::ValueLen(32.into()),
                Attribute::Wrap(true),
                Attribute::Unwrap(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
            ],
        )
        .unwrap();
    assert_eq!(
        return_code(session.wrap_key(&Mechanism::AesKeyWrapPad, untrusted, private)),
        RvError::KeyNotWrappable
    );
    let error = provider
        .wrap_for_backup(&generated.reference, "user-wrap")
        .await
        .unwrap_err();
    assert!(matches!(error, Pkcs11Error::WrappingKey { .. }), "{error}");
    assert!(error.to_string().contains("CKA_TRUSTED"), "{error}");
    let error = provider
        .destroy_wrapping_key("user-wrap")
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("not a trusted AES key"),
        "{error}"
    );
    // The user cannot mark a key trusted, nor lift CKA_WRAP_WITH_TRUSTED.
    assert_eq!(
        return_code(session.update_attributes(untrusted, &[Attribute::Trusted(true)])),
        RvError::AttributeReadOnly
    );
    assert_eq!(
        return_code(session.update_attributes(private, &[Attribute::WrapWithTrusted(false)])),
        RvError::AttributeReadOnly
    );
    // Nor change the trusted key (CKA_MODIFIABLE false).
    assert_eq!(
        return_code(session.update_attributes(trusted, &[Attribute::Decrypt(true)])),
        RvError::ActionProhibited
    );

    // A key generated without the backup policy is refused by the token too.
    let locked = provider
        .generate_labeled(
            &ca_label(),
            Purpose::PkiCa,
            KeyAlgorithm::Signature(algorithm),
            BackupPolicy::None,
        )
        .await
        .unwrap();
    let locked = one(
        &session,
        &[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(hex::decode(locked.reference.id.rsplit_once('/').unwrap().1).unwrap()),
        ],
    );
    assert_eq!(
        return_code(session.wrap_key(&Mechanism::AesKeyWrapPad, trusted, locked)),
        RvError::KeyUnextractable
    );

    // With the trusted key the wrap works ...
    let blob = session
        .wrap_key(&Mechanism::AesKeyWrapPad, trusted, private)
        .unwrap();
    // ... but the unwrap template stops anyone from unwrapping it as a readable key.
    let weak = [
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(false),
        Attribute::Extractable(true),
        Attribute::WrapWithTrusted(true),
        Attribute::Sign(true),
    ];
    assert_eq!(
        return_code(session.unwrap_key(&Mechanism::AesKeyWrapPad, trusted, &blob, &weak)),
        RvError::TemplateInconsistent
    );
    // Nor as a sensitive key that any wrapping key could export.
    let exportable = [
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::WrapWithTrusted(false),
        Attribute::Sign(true),
    ];
    assert_eq!(
        return_code(session.unwrap_key(&Mechanism::AesKeyWrapPad, trusted, &blob, &exportable)),
        RvError::TemplateInconsistent
    );
    // The trusted key never decrypts (no AES-KW plaintext through C_Decrypt).
    assert_eq!(
        return_code(session.decrypt(&Mechanism::AesKeyWrapPad, trusted, &blob)),
        RvError::KeyFunctionNotPermitted
    );
    // Nor can it be copied with other attributes (CKA_COPYABLE false).
    assert_eq!(
        return_code(session.copy_object(trusted, &[Attribute::Token(false)])),
        RvError::ActionProhibited
    );
    // A damaged blob fails RFC 5649's integrity check; SoftHSM2 2.6 reports it as
    // CKR_GENERAL_ERROR (the provider turns it into an authentication failure).
    let mut damaged = blob.clone();
    damaged[9] ^= 0x80;
    let strong = [
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(true),
        Attribute::WrapWithTrusted(true),
        Attribute::Sign(true),
    ];
    assert_eq!(
        return_code(session.unwrap_key(&Mechanism::AesKeyWrapPad, trusted, &damaged, &strong)),
        RvError::GeneralError
    );
    // The template the unwrap template allows works: a session copy of the CA key,
    // just as protected.
    let copy = session
        .unwrap_key(&Mechanism::AesKeyWrapPad, trusted, &blob, &strong)
        .unwrap();
    session.destroy_object(copy).unwrap();

    // A user cannot create a trusted key; the security officer can, but only as a
    // public object (the SO cannot create private objects).
    let trusted_template = |private: bool| {
        vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Private(private),
            Attribute::Value(vec![7u8; 32]),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Trusted(true),
            Attribute::Wrap(true),
        ]
    };
    assert_eq!(
        return_code(session.create_object(&trusted_template(true))),
        RvError::AttributeReadOnly
    );
    // The security officer cannot log in while the user is logged in.
    let so_pin = AuthPin::new(fresh.so_pin.clone().into());
    assert_eq!(
        return_code(session.login(UserType::So, Some(&so_pin))),
        RvError::UserAnotherAlreadyLoggedIn
    );
    drop(provider);
    session.logout().unwrap();
    session.login(UserType::So, Some(&so_pin)).unwrap();
    assert_eq!(
        return_code(session.create_object(&trusted_template(true))),
        RvError::UserNotLoggedIn
    );
    let object = session.create_object(&trusted_template(false)).unwrap();
    session.destroy_object(object).unwrap();
    session.logout().unwrap();
}
