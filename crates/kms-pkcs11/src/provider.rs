//! The PKCS#11 key provider: opening a token, generating keys in it and opening them.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use carimbo_kms::{
    DataEncryptionKey, GenerateRequest, GeneratedKey, HmacKey, KeyAlgorithm, KeyEncryptionKey,
    KeyProvider, KeyReference, SignatureAlgorithm, SigningKey, verify_signature,
};
use cryptoki::mechanism::MechanismType;
use cryptoki::object::{ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use crate::keys::{self, CachedHandle, Pkcs11HmacKey, Pkcs11Kek, Pkcs11SigningKey};
use crate::module::{TOKEN_STORE, is_transient, lock, retry_transient};
use crate::objects::{self, KeyLocation, KeyProtection, SecretKind};
use crate::scheme::Scheme;
use crate::token::Token;
use crate::{BackupPolicy, PROVIDER_ID, Pin, Pkcs11Config, Pkcs11Error};

/// Length of the random `CKA_ID` of generated keys.
const OBJECT_ID_LEN: usize = 16;
/// Message signed to test a freshly generated key.
pub(crate) const SELF_TEST_MESSAGE: &[u8] = b"carimbo-kms-pkcs11 key generation self-test";

/// The session pool of a [`Pkcs11Provider`] ([`Pkcs11Provider::session_pool`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPoolStatus {
    /// Most sessions the pool holds (`sessions` in the config).
    pub size: usize,
    /// Sessions held by running operations.
    pub in_use: usize,
    /// Open sessions waiting for an operation.
    pub idle: usize,
}

/// Keys in a PKCS#11 token (an HSM, or SoftHSM2 in development and tests).
///
/// Private and secret keys are generated inside the token as sensitive and
/// non-extractable, and used there; only public keys leave it. Key references read
/// `<token serial>/<CKA_ID in hex>`; the objects are labelled `<key name>/v<version>`.
///
/// Cloning is cheap and shares the session pool.
#[derive(Clone)]
pub struct Pkcs11Provider {
    pub(crate) token: Arc<Token>,
}

impl fmt::Debug for Pkcs11Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Provider")
            .field("token", &self.token)
            .finish()
    }
}

impl Pkcs11Provider {
    /// Opens the configured token: loads and initialises the module (once per process),
    /// finds the token by label (and serial), reads the PIN, logs in and probes the
    /// token's mechanisms. Never initialises (formats) a token.
    pub async fn open(config: &Pkcs11Config) -> Result<Self, Pkcs11Error> {
        Self::open_inner(config, None).await
    }

    /// Like [`Pkcs11Provider::open`], but logs in with `pin` instead of the config's PIN
    /// source — for callers that reconstruct the PIN themselves (the ceremony joins it
    /// from officers' shares and checks it before any `C_Login`).
    pub async fn open_with_pin(config: &Pkcs11Config, pin: Pin) -> Result<Self, Pkcs11Error> {
        Self::open_inner(config, Some(pin)).await
    }

    async fn open_inner(config: &Pkcs11Config, pin: Option<Pin>) -> Result<Self, Pkcs11Error> {
        config.validate().map_err(|message| Pkcs11Error::Config {
            origin: "(given in code)".into(),
            message,
        })?;
        let config = config.clone();
        let limit = config.timeout;
        let label = config.token_label.clone();
        let task = tokio::task::spawn_blocking(move || Token::open(&config, pin));
        match tokio::time::timeout(limit, task).await {
            Err(_) => Err(Pkcs11Error::Timeout {
                operation: "open",
                token: label,
                seconds: limit.as_secs(),
            }),
            Ok(Err(join_error)) => Err(Pkcs11Error::Other(format!(
                "opening token '{label}' failed: {join_error}"
            ))),
            Ok(Ok(token)) => Ok(Self {
                token: Arc::new(token?),
            }),
        }
    }

    /// Label of the token.
    pub fn token_label(&self) -> &str {
        &self.token.label
    }

    /// Serial number of the token, as written in key references.
    pub fn token_serial(&self) -> &str {
        &self.token.serial
    }

    /// Names of the mechanisms the token offers (`CKM_ECDSA`, ...), as probed at open.
    pub fn mechanisms(&self) -> Vec<String> {
        self.token
            .mechanisms()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// The state of the session pool: its size and how many operations hold a
    /// session now. Cheap (no PKCS#11 call), for metrics.
    pub fn session_pool(&self) -> SessionPoolStatus {
        self.token.pool_status()
    }

    /// Checks that the token is still present and answers, within the configured
    /// timeout: a pooled session's `C_GetSessionInfo` (still logged in), then
    /// `C_GetTokenInfo` on the token's slot (same label and serial, initialised) and a
    /// `C_FindObjects` over its private keys (which makes the module read its object
    /// store). Signs nothing. For readiness checks.
    pub async fn check(&self) -> Result<(), Pkcs11Error> {
        let token = Arc::clone(&self.token);
        self.token
            .run("check", self.token.timeout(), move |session| {
                let info = session
                    .get_session_info()
                    .map_err(Pkcs11Error::call("C_GetSessionInfo"))?;
                if !matches!(
                    info.session_state(),
                    cryptoki::session::SessionState::RwUser
                        | cryptoki::session::SessionState::RoUser
                ) {
                    token.mark_gone();
                    return Err(Pkcs11Error::Other(format!(
                        "token '{}': the session is not logged in",
                        token.label
                    )));
                }
                let info = token
                    .module
                    .pkcs11
                    .get_token_info(info.slot_id())
                    .map_err(Pkcs11Error::call("C_GetTokenInfo"))?;
                if !info.token_initialized()
                    || info.label() != token.label
                    || info.serial_number() != token.serial
                {
                    return Err(Pkcs11Error::TokenGone {
                        token: token.label.clone(),
                        serial: token.serial.clone(),
                    });
                }
                session
                    .find_objects(&[cryptoki::object::Attribute::Class(ObjectClass::PRIVATE_KEY)])
                    .map_err(Pkcs11Error::call("C_FindObjects"))?;
                Ok(())
            })
            .await
    }

    /// Reports how the private or secret key of `reference` is protected (sensitive,
    /// extractable, whether its value can be read), for audits and tests.
    pub async fn protection(&self, reference: &KeyReference) -> Result<KeyProtection, Pkcs11Error> {
        let location = self.locate(reference)?;
        self.token
            .run("inspect", self.token.timeout(), move |session| {
                let object = match objects::find(session, ObjectClass::PRIVATE_KEY, &location)? {
                    Some(object) => object,
                    None => objects::find(session, ObjectClass::SECRET_KEY, &location)?
                        .ok_or_else(|| location.not_found())?,
                };
                objects::protection(session, object)
            })
            .await
    }

    /// Resolves a reference to this token's object id, refusing other providers' and
    /// other tokens' references.
    pub(crate) fn locate(&self, reference: &KeyReference) -> Result<KeyLocation, Pkcs11Error> {
        let refuse = |reason: String| Pkcs11Error::BadReference {
            reference: reference.to_string(),
            reason,
        };
        if reference.provider != PROVIDER_ID {
            return Err(refuse(format!(
                "belongs to provider '{}', not '{PROVIDER_ID}'",
                reference.provider
            )));
        }
        let Some((serial, id)) = reference.id.rsplit_once('/') else {
            return Err(refuse(
                "is not of the form <token serial>/<object id>".into(),
            ));
        };
        if serial != self.token.serial {
            return Err(refuse(format!(
                "is on the token with serial {serial}, not on token '{}' (serial {})",
                self.token.label, self.token.serial
            )));
        }
        let id = hex::decode(id)
            .ok()
            .filter(|id| (1..=64).contains(&id.len()))
            .ok_or_else(|| refuse("object id is not 1 to 64 bytes of hex".into()))?;
        Ok(KeyLocation {
            id,
            reference: reference.to_string(),
            token: self.token.label.clone(),
        })
    }

    /// Checks the token can generate and use keys of `algorithm`.
    pub(crate) fn require_for(&self, algorithm: KeyAlgorithm) -> Result<(), Pkcs11Error> {
        let token = &self.token;
        match algorithm {
            KeyAlgorithm::Signature(algorithm) => {
                let scheme = Scheme::of(algorithm)?;
                token.require(
                    scheme.generation_mechanism(),
                    format!("{algorithm} key generation"),
                )?;
                token.require(
                    scheme.signing_mechanism_type(),
                    format!("{algorithm} signatures"),
                )
            }
            KeyAlgorithm::Aes256Gcm => {
                token.require(MechanismType::AES_KEY_GEN, "envelope keys")?;
                token.require(MechanismType::AES_GCM, "envelope keys")
            }
            KeyAlgorithm::HmacSha256 => {
                token.require(MechanismType::GENERIC_SECRET_KEY_GEN, "HMAC keys")?;
                token.require(MechanismType::SHA256_HMAC, "HMAC keys")
            }
            other => Err(Pkcs11Error::InvalidInput(format!(
                "key algorithm {other} is not implemented by the PKCS#11 provider"
            ))),
        }
    }

    /// Finds the secret key of `location`, checking its type and length.
    fn open_secret(
        session: &Session,
        location: &KeyLocation,
        kind: SecretKind,
    ) -> Result<ObjectHandle, Pkcs11Error> {
        let secret = objects::find(session, ObjectClass::SECRET_KEY, location)?
            .ok_or_else(|| location.not_found())?;
        let key_type = objects::key_type(session, secret)?;
        if key_type != Some(kind.key_type()) {
            let found = key_type.map_or("unknown".to_owned(), |t| t.to_string());
            return Err(
                location.invalid(format!("is a {found} key, not a {} key", kind.key_type()))
            );
        }
        let len = objects::value_len(session, secret)?;
        if len != Some(DataEncryptionKey::LEN as u64) {
            return Err(location.invalid("is not a 256-bit key"));
        }
        Ok(secret)
    }
}

/// A fresh random `CKA_ID` on `token`, as a reference and a location.
pub(crate) fn new_location(token: &Token) -> Result<(KeyReference, KeyLocation), Pkcs11Error> {
    let mut id = [0u8; OBJECT_ID_LEN];
    aws_lc_rs::rand::fill(&mut id)
        .map_err(|_| Pkcs11Error::Other("random generator failed".into()))?;
    let reference = KeyReference {
        provider: PROVIDER_ID.into(),
        id: format!("{}/{}", token.serial, hex::encode(id)),
    };
    let location = KeyLocation {
        id: id.to_vec(),
        reference: reference.to_string(),
        token: token.label.clone(),
    };
    Ok((reference, location))
}

/// Generates a key of `algorithm` labelled `label` with a fresh `CKA_ID`, checks it
/// and self-tests it (see the two functions below). Retries transient failures, each
/// attempt with a new `CKA_ID`. Returns the reference and, for signing keys, the
/// public key. Blocking; the caller holds [`TOKEN_STORE`].
pub(crate) fn generate_checked(
    session: &Session,
    token: &Token,
    algorithm: KeyAlgorithm,
    label: &str,
    backup: BackupPolicy,
) -> Result<(KeyReference, Option<Vec<u8>>), Pkcs11Error> {
    // Each attempt uses a new CKA_ID: a failed attempt's objects are destroyed, but
    // must never be mistaken for the new key's.
    retry_transient("key generation", is_transient, || {
        let (reference, location) = new_location(token)?;
        let public_key = match algorithm {
            KeyAlgorithm::Signature(algorithm) => Some(generate_signing_key(
                session, algorithm, &location, label, backup,
            )?),
            KeyAlgorithm::Aes256Gcm => {
                generate_secret_key(session, SecretKind::Aes, &location, label)?;
                None
            }
            KeyAlgorithm::HmacSha256 => {
                generate_secret_key(session, SecretKind::Hmac, &location, label)?;
                None
            }
            other => {
                return Err(Pkcs11Error::InvalidInput(format!(
                    "key algorithm {other} is not implemented by the PKCS#11 provider"
                )));
            }
        };
        Ok((reference, public_key))
    })
}

/// Generates a signing key pair, reads its public key, checks the private key is
/// protected as `backup` asks and signs a test message; destroys the pair if any
/// check fails.
fn generate_signing_key(
    session: &Session,
    algorithm: SignatureAlgorithm,
    location: &KeyLocation,
    label: &str,
    backup: BackupPolicy,
) -> Result<Vec<u8>, Pkcs11Error> {
    let scheme = Scheme::of(algorithm)?;
    let (public, private) = objects::generate_key_pair(session, scheme, location, label, backup)?;
    let checked = (|| {
        objects::check_protected(session, private, location, backup)?;
        let spki = objects::public_key_spki(session, public, scheme, location)?;
        let signature = keys::sign(session, private, scheme, SELF_TEST_MESSAGE)?;
        verify_signature(algorithm, &spki, SELF_TEST_MESSAGE, &signature)
            .map_err(|e| location.invalid(format!("self-test signature does not verify: {e}")))?;
        Ok(spki)
    })();
    if checked.is_err() {
        destroy_quietly(session, &[private, public]);
    }
    checked
}

/// Generates a secret key, checks it is locked in and works; destroys it otherwise.
fn generate_secret_key(
    session: &Session,
    kind: SecretKind,
    location: &KeyLocation,
    label: &str,
) -> Result<(), Pkcs11Error> {
    let secret = objects::generate_secret_key(session, kind, location, label)?;
    let checked = (|| {
        objects::check_locked_in(session, secret, location)?;
        match kind {
            SecretKind::Aes => {
                let dek = [0x5au8; DataEncryptionKey::LEN];
                let wrapped = keys::gcm_wrap(session, secret, &dek, SELF_TEST_MESSAGE)?;
                let unwrapped = keys::gcm_unwrap(session, secret, &wrapped, SELF_TEST_MESSAGE)?;
                if unwrapped.as_slice() != dek {
                    return Err(location.invalid("AES-GCM self-test round trip failed"));
                }
            }
            SecretKind::Hmac => {
                keys::hmac(session, secret, SELF_TEST_MESSAGE)?;
            }
        }
        Ok(())
    })();
    if checked.is_err() {
        destroy_quietly(session, &[secret]);
    }
    checked
}

pub(crate) fn destroy_quietly(session: &Session, objects: &[ObjectHandle]) {
    for object in objects {
        if let Err(error) = session.destroy_object(*object) {
            tracing::warn!(%error, "could not destroy a rejected key object");
        }
    }
}

#[async_trait]
impl KeyProvider for Pkcs11Provider {
    fn id(&self) -> &str {
        PROVIDER_ID
    }

    async fn generate(&self, request: &GenerateRequest<'_>) -> carimbo_kms::Result<GeneratedKey> {
        request.algorithm.check_purpose(request.purpose)?;
        self.require_for(request.algorithm)?;
        let label = format!("{}/v{}", request.name, request.version);
        let algorithm = request.algorithm;
        let token = Arc::clone(&self.token);
        let (reference, public_key) = self
            .token
            .run("generate", self.token.generate_timeout(), move |session| {
                let _store = lock(&TOKEN_STORE);
                generate_checked(session, &token, algorithm, &label, BackupPolicy::None)
            })
            .await?;
        tracing::info!(
            token = %self.token.label,
            reference = %reference,
            algorithm = %algorithm,
            "generated key in PKCS#11 token"
        );
        Ok(GeneratedKey {
            reference,
            public_key,
        })
    }

    async fn signing_key(
        &self,
        reference: &KeyReference,
        algorithm: SignatureAlgorithm,
    ) -> carimbo_kms::Result<Arc<dyn SigningKey>> {
        let scheme = Scheme::of(algorithm)?;
        self.token.require(
            scheme.signing_mechanism_type(),
            format!("{algorithm} signatures"),
        )?;
        let location = self.locate(reference)?;
        let found = location.clone();
        let (private, public_key) = self
            .token
            .run("open key", self.token.timeout(), move |session| {
                let private = objects::find(session, ObjectClass::PRIVATE_KEY, &found)?
                    .ok_or_else(|| found.not_found())?;
                let public = objects::find(session, ObjectClass::PUBLIC_KEY, &found)?
                    .ok_or_else(|| found.invalid("has no public-key object"))?;
                let key_type = objects::key_type(session, private)?;
                if key_type != Some(scheme.key_type()) {
                    let found_type = key_type.map_or("unknown".to_owned(), |t| t.to_string());
                    return Err(found.invalid(format!(
                        "is a {found_type} key, which cannot sign {algorithm}"
                    )));
                }
                let spki = objects::public_key_spki(session, public, scheme, &found)?;
                let private = CachedHandle::new(
                    ObjectClass::PRIVATE_KEY,
                    found,
                    session.generation(),
                    private,
                );
                Ok((private, spki))
            })
            .await?;
        Ok(Arc::new(Pkcs11SigningKey {
            token: Arc::clone(&self.token),
            private,
            algorithm,
            scheme,
            public_key,
            location,
        }))
    }

    async fn key_encryption_key(
        &self,
        reference: &KeyReference,
    ) -> carimbo_kms::Result<Arc<dyn KeyEncryptionKey>> {
        self.token
            .require(MechanismType::AES_GCM, "envelope keys")?;
        let location = self.locate(reference)?;
        let found = location.clone();
        let secret = self
            .token
            .run("open key", self.token.timeout(), move |session| {
                let secret = Self::open_secret(session, &found, SecretKind::Aes)?;
                Ok(CachedHandle::new(
                    ObjectClass::SECRET_KEY,
                    found,
                    session.generation(),
                    secret,
                ))
            })
            .await?;
        Ok(Arc::new(Pkcs11Kek {
            token: Arc::clone(&self.token),
            secret,
            location,
        }))
    }

    async fn hmac_key(&self, reference: &KeyReference) -> carimbo_kms::Result<Arc<dyn HmacKey>> {
        self.token
            .require(MechanismType::SHA256_HMAC, "HMAC keys")?;
        let location = self.locate(reference)?;
        let found = location.clone();
        let secret = self
            .token
            .run("open key", self.token.timeout(), move |session| {
                let secret = Self::open_secret(session, &found, SecretKind::Hmac)?;
                Ok(CachedHandle::new(
                    ObjectClass::SECRET_KEY,
                    found,
                    session.generation(),
                    secret,
                ))
            })
            .await?;
        Ok(Arc::new(Pkcs11HmacKey {
            token: Arc::clone(&self.token),
            secret,
            location,
        }))
    }

    async fn destroy(&self, reference: &KeyReference) -> carimbo_kms::Result<()> {
        let location = self.locate(reference)?;
        let destroyed = self
            .token
            .run("destroy", self.token.timeout(), move |session| {
                let _store = lock(&TOKEN_STORE);
                retry_transient("key destruction", is_transient, || {
                    let objects = objects::find_all(session, &location)?;
                    for object in &objects {
                        session
                            .destroy_object(*object)
                            .map_err(Pkcs11Error::call("C_DestroyObject"))?;
                    }
                    Ok(objects.len())
                })
            })
            .await?;
        tracing::info!(
            token = %self.token.label,
            reference = %reference,
            objects = destroyed,
            "destroyed key in PKCS#11 token"
        );
        Ok(())
    }
}
