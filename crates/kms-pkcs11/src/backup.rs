//! Backup and restore of ceremony keys by trusted wrapping (`docs/ceremony-backup.md`).
//!
//! A backup wrapping key — AES-256, made by the ceremony from the HSM's random
//! generator and split among officers — is imported into a token by its security
//! officer as a *trusted* secret key (`CKA_TRUSTED`, which only the SO may set). A key
//! generated with [`BackupPolicy::WrapWithTrusted`] (`CKA_WRAP_WITH_TRUSTED`) can be
//! wrapped only by such a key: `C_WrapKey` with `CKM_AES_KEY_WRAP_PAD` (RFC 5649).
//! Restoring imports the same wrapping key into another token, unwraps the blob into a
//! private key, creates its public key from the `SubjectPublicKeyInfo` kept beside the
//! blob, and proves the pair with a test signature.
//!
//! The wrapping key carries an unwrap template (`CKA_UNWRAP_TEMPLATE`): whatever
//! `C_UnwrapKey` makes with it must be a private, sensitive private key that again
//! exports only to trusted keys. Without it, a user session could unwrap a backup blob
//! as a non-sensitive key and read the CA key in the clear.

use std::sync::Arc;

use carimbo_kms::encoding::{OID_ED25519, parse_spki};
use carimbo_kms::{GeneratedKey, KeyReference, SignatureAlgorithm, verify_signature};
use cryptoki::error::RvError;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use cryptoki_sys::{
    CK_ATTRIBUTE, CK_ATTRIBUTE_TYPE, CK_BBOOL, CK_OBJECT_CLASS, CK_TRUE, CK_ULONG, CKA_CLASS,
    CKA_PRIVATE, CKA_SENSITIVE, CKA_UNWRAP_TEMPLATE, CKA_WRAP_WITH_TRUSTED, CKO_PRIVATE_KEY,
};
use zeroize::Zeroizing;

use crate::ceremony::label_used;
use crate::module::{TOKEN_STORE, lock};
use crate::objects::{self, KeyLocation};
use crate::provider::{SELF_TEST_MESSAGE, destroy_quietly, new_location};
use crate::scheme::{Scheme, oid_der};
use crate::token::Token;
use crate::{BackupPolicy, Pin, Pkcs11Error, Pkcs11Provider};

/// Length of the backup wrapping key (AES-256).
const WRAPPING_KEY_LEN: usize = 32;
/// RFC 5649 output is a multiple of 8 bytes and at least 16.
const KEY_WRAP_BLOCK: usize = 8;

/// Values the unwrap template points to. Statics: their addresses stay valid for the
/// whole process, which is what the token needs while it parses the template.
static TRUE: CK_BBOOL = CK_TRUE;
static PRIVATE_KEY_CLASS: CK_OBJECT_CLASS = CKO_PRIVATE_KEY;

/// What the wrapping key is about to be used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    Wrap,
    Unwrap,
}

impl Pkcs11Provider {
    /// Imports the backup wrapping key `key` into the token as a trusted AES-256
    /// secret key labelled `label`, usable only to wrap and unwrap.
    ///
    /// `CKA_TRUSTED` can be set only by the token's security officer, so this logs the
    /// application out, logs in as SO with `so_pin`, creates the key, logs the SO out
    /// and logs the user in again. The SO may create only public objects
    /// (`CKA_PRIVATE` false); the key is sensitive, non-extractable, not modifiable and
    /// carries an unwrap template. While it runs, no other operation of this provider
    /// runs; other providers opened on the same token in this process are logged out
    /// meanwhile, so run it when nothing else uses the token.
    pub async fn import_trusted_wrapping_key(
        &self,
        so_pin: &Pin,
        label: &str,
        key: &Zeroizing<[u8; WRAPPING_KEY_LEN]>,
    ) -> Result<(), Pkcs11Error> {
        if label.is_empty() {
            return Err(Pkcs11Error::InvalidInput(
                "wrapping key label is empty".into(),
            ));
        }
        self.require_backup_mechanism()?;
        let token = Arc::clone(&self.token);
        let so_pin = Pin::new(so_pin.expose().to_owned());
        let key = Zeroizing::new(**key);
        let label = label.to_owned();
        let logged = label.clone();
        self.token
            .run_exclusive("import wrapping key", self.token.timeout(), move |session| {
                if label_used(session, &label)? {
                    return Err(Pkcs11Error::LabelInUse {
                        label,
                        token: token.label.clone(),
                    });
                }
                let (_, location) = new_location(&token)?;
                let created = as_security_officer(session, &token, &so_pin, || {
                    session
                        .create_object(&wrapping_key_template(&location, &label, key.as_slice()))
                        .map_err(|error| {
                            let error = Pkcs11Error::call("C_CreateObject")(error);
                            Pkcs11Error::BackupUnsupported {
                                token: token.label.clone(),
                                reason: format!(
                                    "the security officer cannot create the trusted wrapping key ({error})"
                                ),
                            }
                        })
                });
                let object = created?;
                // Read back as the user: the token must have kept what was asked.
                if let Err(error) = check_wrapping_key(session, object, &label, &token, None) {
                    tracing::warn!(%error, "imported wrapping key fails its checks");
                    return Err(error);
                }
                Ok(())
            })
            .await?;
        tracing::info!(
            token = %self.token.label,
            label = %logged,
            "imported trusted backup wrapping key into PKCS#11 token"
        );
        Ok(())
    }

    /// Wraps the private key `key` for backup under the trusted wrapping key labelled
    /// `wrapping_key_label` (`C_WrapKey`, `CKM_AES_KEY_WRAP_PAD`, RFC 5649). Returns
    /// the blob; keep the key's public key beside it for
    /// [`Pkcs11Provider::restore_from_backup`].
    ///
    /// Refuses keys generated with [`BackupPolicy::None`] and keys that are
    /// extractable without `CKA_WRAP_WITH_TRUSTED`, and wrapping keys that are not
    /// trusted, sensitive, non-extractable AES-256 keys.
    pub async fn wrap_for_backup(
        &self,
        key: &KeyReference,
        wrapping_key_label: &str,
    ) -> Result<Vec<u8>, Pkcs11Error> {
        self.require_backup_mechanism()?;
        let location = self.locate(key)?;
        let token = Arc::clone(&self.token);
        let wrapping_label = wrapping_key_label.to_owned();
        let blob = self
            .token
            .run("wrap for backup", self.token.timeout(), move |session| {
                let private = objects::find(session, ObjectClass::PRIVATE_KEY, &location)?
                    .ok_or_else(|| location.not_found())?;
                let protection = objects::protection(session, private)?;
                let refuse = |reason: &str| Pkcs11Error::NotBackupable {
                    reference: location.reference.clone(),
                    reason: reason.to_owned(),
                };
                if !protection.extractable {
                    return Err(refuse(
                        "it was generated non-extractable (CKA_EXTRACTABLE false, backup policy None) and can never leave the token",
                    ));
                }
                if !protection.wrap_with_trusted || !protection.sensitive {
                    return Err(refuse(
                        "it is extractable without CKA_WRAP_WITH_TRUSTED or not sensitive; only keys generated with BackupPolicy::WrapWithTrusted are backed up",
                    ));
                }
                let wrapping = find_wrapping_key(session, &wrapping_label, &token, Use::Wrap)?;
                let key_type = objects::key_type(session, private)?
                    .map_or("unknown".to_owned(), |t| t.to_string());
                let blob = session
                    .wrap_key(&Mechanism::AesKeyWrapPad, wrapping, private)
                    .map_err(Pkcs11Error::call("C_WrapKey"))
                    .map_err(|error| match error.return_value() {
                        Some(RvError::KeyUnextractable) => {
                            refuse(&format!("the token refused to wrap it ({error})"))
                        }
                        // The key is extractable under CKA_WRAP_WITH_TRUSTED and the
                        // wrapping key trusted (both checked above): the token cannot
                        // wrap keys of this type. SoftHSM2 2.6 answers so for Ed25519.
                        Some(
                            RvError::KeyNotWrappable
                            | RvError::MechanismInvalid
                            | RvError::KeyTypeInconsistent
                            | RvError::FunctionNotSupported
                            | RvError::WrappingKeyTypeInconsistent,
                        ) => Pkcs11Error::BackupUnsupported {
                            token: token.label.clone(),
                            reason: format!(
                                "it does not wrap {key_type} private keys with CKM_AES_KEY_WRAP_PAD ({error})"
                            ),
                        },
                        _ => error,
                    })?;
                if blob.len() < 2 * KEY_WRAP_BLOCK || !blob.len().is_multiple_of(KEY_WRAP_BLOCK) {
                    return Err(Pkcs11Error::Other(format!(
                        "C_WrapKey returned {} bytes, not an RFC 5649 blob",
                        blob.len()
                    )));
                }
                Ok(blob)
            })
            .await?;
        tracing::info!(
            token = %self.token.label,
            reference = %key,
            wrapping_key = wrapping_key_label,
            "wrapped key for backup"
        );
        Ok(blob)
    }

    /// Restores a backup made by [`Pkcs11Provider::wrap_for_backup`] into this token:
    /// unwraps `wrapped` with the trusted wrapping key labelled `wrapping_key_label`
    /// (imported here first with [`Pkcs11Provider::import_trusted_wrapping_key`]) into
    /// a private key labelled `label` — sensitive, extractable only to trusted keys
    /// (as [`BackupPolicy::WrapWithTrusted`], so the restored token can make the next
    /// backup), able to sign — creates its public-key object from `public_key_der`
    /// (DER `SubjectPublicKeyInfo`), and proves the pair with a test signature
    /// verified against `public_key_der`. Destroys what it created if any step fails.
    pub async fn restore_from_backup(
        &self,
        wrapped: &[u8],
        public_key_der: &[u8],
        algorithm: SignatureAlgorithm,
        wrapping_key_label: &str,
        label: &str,
    ) -> Result<GeneratedKey, Pkcs11Error> {
        let scheme = Scheme::of(algorithm)?;
        let public_template = public_key_template(public_key_der, algorithm)?;
        if label.is_empty() {
            return Err(Pkcs11Error::InvalidInput("key label is empty".into()));
        }
        if wrapped.len() < 2 * KEY_WRAP_BLOCK || !wrapped.len().is_multiple_of(KEY_WRAP_BLOCK) {
            return Err(Pkcs11Error::InvalidInput(format!(
                "a {}-byte backup blob is not an RFC 5649 key wrap",
                wrapped.len()
            )));
        }
        self.require_backup_mechanism()?;
        self.token.require(
            scheme.signing_mechanism_type(),
            format!("{algorithm} signatures"),
        )?;
        let token = Arc::clone(&self.token);
        let wrapped = Zeroizing::new(wrapped.to_vec());
        let spki = public_key_der.to_vec();
        let logged = label.to_owned();
        let (label, wrapping_label) = (label.to_owned(), wrapping_key_label.to_owned());
        let reference = self
            .token
            .run("restore", self.token.generate_timeout(), move |session| {
                let _store = lock(&TOKEN_STORE);
                if label_used(session, &label)? {
                    return Err(Pkcs11Error::LabelInUse {
                        label,
                        token: token.label.clone(),
                    });
                }
                let wrapping = find_wrapping_key(session, &wrapping_label, &token, Use::Unwrap)?;
                let (reference, location) = new_location(&token)?;
                let restore = Restore {
                    session,
                    token: &token,
                    location: &location,
                    label: &label,
                    scheme,
                    algorithm,
                };
                restore.run(wrapping, &wrapped, &wrapping_label, public_template, &spki)?;
                Ok(reference)
            })
            .await?;
        tracing::info!(
            token = %self.token.label,
            reference = %reference,
            label = %logged,
            "restored key from backup into PKCS#11 token"
        );
        Ok(GeneratedKey {
            reference,
            public_key: Some(public_key_der.to_vec()),
        })
    }

    /// Destroys the trusted wrapping key labelled `label` from the token, once the
    /// backup (or restore) is done: the officers hold its shares, and a token that no
    /// longer holds it can neither wrap nor unwrap backups. Returns whether a key was
    /// destroyed. Refuses to destroy anything but a trusted AES secret key.
    ///
    /// Recommended after every backup and restore: SoftHSM2 stores the public wrapping
    /// key's value unencrypted in its token directory (see `docs/ceremony-backup.md`).
    pub async fn destroy_wrapping_key(&self, label: &str) -> Result<bool, Pkcs11Error> {
        let token = Arc::clone(&self.token);
        let label = label.to_owned();
        let logged = label.clone();
        let destroyed = self
            .token
            .run(
                "destroy wrapping key",
                self.token.timeout(),
                move |session| {
                    let _store = lock(&TOKEN_STORE);
                    let found =
                        objects::find_labelled(session, Some(ObjectClass::SECRET_KEY), &label)?;
                    let object = match found.as_slice() {
                        [] => return Ok(false),
                        [object] => *object,
                        several => {
                            return Err(Pkcs11Error::WrappingKey {
                                label,
                                token: token.label.clone(),
                                reason: format!("{} secret keys carry the label", several.len()),
                            });
                        }
                    };
                    let key_type = objects::key_type(session, object)?;
                    let trusted = objects::flag(session, object, AttributeType::Trusted)?;
                    if key_type != Some(KeyType::AES) || trusted != Some(true) {
                        return Err(Pkcs11Error::WrappingKey {
                            label,
                            token: token.label.clone(),
                            reason: "is not a trusted AES key; not destroying it".into(),
                        });
                    }
                    session
                        .destroy_object(object)
                        .map_err(Pkcs11Error::call("C_DestroyObject"))?;
                    Ok(true)
                },
            )
            .await?;
        if destroyed {
            tracing::info!(
                token = %self.token.label,
                label = %logged,
                "destroyed backup wrapping key in PKCS#11 token"
            );
        }
        Ok(destroyed)
    }

    /// Fails with [`Pkcs11Error::BackupUnsupported`] unless the token offers
    /// `CKM_AES_KEY_WRAP_PAD`.
    fn require_backup_mechanism(&self) -> Result<(), Pkcs11Error> {
        if self
            .token
            .mechanisms()
            .contains(&MechanismType::AES_KEY_WRAP_PAD)
        {
            Ok(())
        } else {
            Err(Pkcs11Error::BackupUnsupported {
                token: self.token.label.clone(),
                reason: "it does not offer CKM_AES_KEY_WRAP_PAD (RFC 5649)".into(),
            })
        }
    }
}

/// One restore, inside the token's session. Blocking.
struct Restore<'a> {
    session: &'a Session,
    token: &'a Token,
    location: &'a KeyLocation,
    label: &'a str,
    scheme: Scheme,
    algorithm: SignatureAlgorithm,
}

impl Restore<'_> {
    fn run(
        &self,
        wrapping: ObjectHandle,
        wrapped: &[u8],
        wrapping_label: &str,
        mut public_template: Vec<Attribute>,
        spki: &[u8],
    ) -> Result<(), Pkcs11Error> {
        let mut private_template = self.common();
        private_template.extend([
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(self.scheme.key_type()),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
        ]);
        private_template.extend(BackupPolicy::WrapWithTrusted.attributes());
        let private = self
            .session
            .unwrap_key(
                &Mechanism::AesKeyWrapPad,
                wrapping,
                wrapped,
                &private_template,
            )
            .map_err(Pkcs11Error::call("C_UnwrapKey"))
            .map_err(|error| match error.return_value() {
                // SoftHSM2 (2.6) answers a failed RFC 5649 integrity check with
                // CKR_GENERAL_ERROR. With the blob's length and the wrapping key
                // checked beforehand, that is the failure left; refusing is the safe
                // reading either way.
                Some(
                    RvError::WrappedKeyInvalid
                    | RvError::WrappedKeyLenRange
                    | RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::GeneralError,
                ) => Pkcs11Error::Unauthentic(format!(
                    "the backup blob does not unwrap under wrapping key '{wrapping_label}' on token '{}' (wrong wrapping key, or a damaged blob; {error})",
                    self.token.label
                )),
                _ => error,
            })?;
        public_template.extend(self.common());
        let public = match self.session.create_object(&public_template) {
            Ok(public) => public,
            Err(error) => {
                destroy_quietly(self.session, &[private]);
                return Err(Pkcs11Error::call("C_CreateObject")(error));
            }
        };
        let checked = self.check(private, public, spki);
        if checked.is_err() {
            destroy_quietly(self.session, &[private, public]);
        }
        checked
    }

    /// `CKA_TOKEN`, `CKA_ID`, `CKA_LABEL` of both objects.
    fn common(&self) -> Vec<Attribute> {
        vec![
            Attribute::Token(true),
            Attribute::Id(self.location.id.clone()),
            Attribute::Label(self.label.as_bytes().to_vec()),
        ]
    }

    /// The restored pair is what the backup promised: the private key is of the right
    /// type, protected, and signs for `spki`; the public object holds `spki`.
    fn check(
        &self,
        private: ObjectHandle,
        public: ObjectHandle,
        spki: &[u8],
    ) -> Result<(), Pkcs11Error> {
        let (session, location) = (self.session, self.location);
        let key_type = objects::key_type(session, private)?;
        if key_type != Some(self.scheme.key_type()) {
            let found = key_type.map_or("unknown".to_owned(), |t| t.to_string());
            return Err(location.invalid(format!(
                "the backup holds a {found} key, which cannot sign {}",
                self.algorithm
            )));
        }
        objects::check_protected(session, private, location, BackupPolicy::WrapWithTrusted)?;
        let stored = objects::public_key_spki(session, public, self.scheme, location)?;
        if stored != spki {
            return Err(location.invalid("the public-key object does not hold the given key"));
        }
        let signature = crate::keys::sign(session, private, self.scheme, SELF_TEST_MESSAGE)?;
        verify_signature(self.algorithm, spki, SELF_TEST_MESSAGE, &signature).map_err(|e| {
            location.invalid(format!(
                "the restored private key does not match the given public key (test signature: {e})"
            ))
        })
    }
}

/// Runs `create` logged in as security officer: logs the application out, logs in as
/// SO, runs it, logs the SO out and the user in again (even when `create` failed).
fn as_security_officer(
    session: &Session,
    token: &Token,
    so_pin: &Pin,
    create: impl FnOnce() -> Result<ObjectHandle, Pkcs11Error>,
) -> Result<ObjectHandle, Pkcs11Error> {
    let created = {
        let _store = lock(&TOKEN_STORE);
        match session.logout() {
            Ok(()) | Err(cryptoki::error::Error::Pkcs11(RvError::UserNotLoggedIn, _)) => {}
            Err(error) => return Err(Pkcs11Error::call("C_Logout")(error)),
        }
        let login = session
            .login(UserType::So, Some(&AuthPin::new(so_pin.expose().into())))
            .map_err(Pkcs11Error::call("C_Login"))
            .map_err(|error| match error.return_value() {
                Some(RvError::PinIncorrect) => Pkcs11Error::WrongSoPin {
                    token: token.label.clone(),
                },
                Some(RvError::PinLocked) => Pkcs11Error::Other(format!(
                    "the security officer PIN of token '{}' is locked (CKR_PIN_LOCKED)",
                    token.label
                )),
                _ => error,
            });
        match login {
            Ok(()) => {
                let created = create();
                let logout = session.logout().map_err(Pkcs11Error::call("C_Logout"));
                created.and_then(|object| logout.map(|()| object))
            }
            Err(error) => Err(error),
        }
    };
    let relogin = token.login_user(session);
    let object = created?;
    relogin?;
    Ok(object)
}

/// Template of the trusted wrapping key: a public (the SO cannot create private
/// objects), sensitive, non-extractable, non-modifiable AES key that only wraps and
/// unwraps, with the unwrap template.
fn wrapping_key_template(location: &KeyLocation, label: &str, key: &[u8]) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Id(location.id.clone()),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Value(key.to_vec()),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Trusted(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Encrypt(false),
        Attribute::Decrypt(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::Copyable(false),
        Attribute::Modifiable(false),
        unwrap_template(),
    ]
}

/// `CKA_UNWRAP_TEMPLATE`: an array of `CK_ATTRIBUTE` that every key unwrapped with the
/// wrapping key must match: class private key, `CKA_PRIVATE`, `CKA_SENSITIVE` and
/// `CKA_WRAP_WITH_TRUSTED` true.
///
/// cryptoki has no variant for array attributes, so the array is laid out here as the
/// C structs it is, at the offsets of `CK_ATTRIBUTE`, each entry pointing to a static
/// value.
fn unwrap_template() -> Attribute {
    let class: *const CK_OBJECT_CLASS = &PRIVATE_KEY_CLASS;
    let flag: *const CK_BBOOL = &TRUE;
    let entries: [(CK_ATTRIBUTE_TYPE, usize, usize); 4] = [
        (CKA_CLASS, class as usize, size_of::<CK_OBJECT_CLASS>()),
        (CKA_PRIVATE, flag as usize, size_of::<CK_BBOOL>()),
        (CKA_SENSITIVE, flag as usize, size_of::<CK_BBOOL>()),
        (CKA_WRAP_WITH_TRUSTED, flag as usize, size_of::<CK_BBOOL>()),
    ];
    let size = size_of::<CK_ATTRIBUTE>();
    let mut bytes = vec![0u8; size * entries.len()];
    for (index, (kind, address, len)) in entries.into_iter().enumerate() {
        let base = index * size;
        let mut put = |offset: usize, value: &[u8]| {
            bytes[base + offset..base + offset + value.len()].copy_from_slice(value);
        };
        put(
            std::mem::offset_of!(CK_ATTRIBUTE, type_),
            &kind.to_ne_bytes(),
        );
        put(
            std::mem::offset_of!(CK_ATTRIBUTE, pValue),
            &address.to_ne_bytes(),
        );
        // Lengths of a CK_ULONG or a CK_BBOOL: they fit.
        let len = CK_ULONG::try_from(len).unwrap_or_default();
        put(
            std::mem::offset_of!(CK_ATTRIBUTE, ulValueLen),
            &len.to_ne_bytes(),
        );
    }
    Attribute::VendorDefined((AttributeType::VendorDefined(CKA_UNWRAP_TEMPLATE), bytes))
}

/// The one trusted AES-256 wrapping key labelled `label`, checked for `purpose`.
fn find_wrapping_key(
    session: &Session,
    label: &str,
    token: &Token,
    purpose: Use,
) -> Result<ObjectHandle, Pkcs11Error> {
    let refuse = |reason: String| Pkcs11Error::WrappingKey {
        label: label.to_owned(),
        token: token.label.clone(),
        reason,
    };
    let found = objects::find_labelled(session, Some(ObjectClass::SECRET_KEY), label)?;
    let object = match found.as_slice() {
        [] => return Err(refuse("no secret key carries the label".into())),
        [object] => *object,
        several => {
            return Err(refuse(format!(
                "{} secret keys carry the label",
                several.len()
            )));
        }
    };
    check_wrapping_key(session, object, label, token, Some(purpose))?;
    Ok(object)
}

/// A backup wrapping key must be a trusted, sensitive, non-extractable AES-256 key
/// (that can wrap, or unwrap, as `purpose` needs).
fn check_wrapping_key(
    session: &Session,
    object: ObjectHandle,
    label: &str,
    token: &Token,
    purpose: Option<Use>,
) -> Result<(), Pkcs11Error> {
    let refuse = |reason: String| {
        Err(Pkcs11Error::WrappingKey {
            label: label.to_owned(),
            token: token.label.clone(),
            reason,
        })
    };
    let key_type = objects::key_type(session, object)?;
    if key_type != Some(KeyType::AES) {
        let found = key_type.map_or("unknown".to_owned(), |t| t.to_string());
        return refuse(format!("is a {found} key, not an AES key"));
    }
    if objects::value_len(session, object)? != Some(WRAPPING_KEY_LEN as u64) {
        return refuse("is not a 256-bit key".into());
    }
    let flag = |attribute| objects::flag(session, object, attribute);
    if flag(AttributeType::Trusted)? != Some(true) {
        return refuse(
            "is not marked CKA_TRUSTED (only the token's security officer can import a backup wrapping key)"
                .into(),
        );
    }
    let protection = objects::protection(session, object)?;
    if !protection.sensitive || protection.extractable || protection.secret_readable {
        return refuse(format!(
            "is not locked in (CKA_SENSITIVE={}, CKA_EXTRACTABLE={}, value readable: {})",
            protection.sensitive, protection.extractable, protection.secret_readable
        ));
    }
    let needed = match purpose {
        None => vec![AttributeType::Wrap, AttributeType::Unwrap],
        Some(Use::Wrap) => vec![AttributeType::Wrap],
        Some(Use::Unwrap) => vec![AttributeType::Unwrap],
    };
    for attribute in needed {
        if flag(attribute)? != Some(true) {
            return refuse(format!("has {attribute} false"));
        }
    }
    for attribute in [AttributeType::Encrypt, AttributeType::Decrypt] {
        if flag(attribute)? == Some(true) {
            return refuse(format!(
                "has {attribute} true; a backup wrapping key must only wrap and unwrap"
            ));
        }
    }
    Ok(())
}

/// The public-key template (without `CKA_TOKEN`, `CKA_ID`, `CKA_LABEL`) for the DER
/// `SubjectPublicKeyInfo` `spki`, checked against `algorithm`.
fn public_key_template(
    spki: &[u8],
    algorithm: SignatureAlgorithm,
) -> Result<Vec<Attribute>, Pkcs11Error> {
    let refuse = |why: String| Pkcs11Error::InvalidInput(format!("backup public key: {why}"));
    let info = parse_spki(spki).map_err(|e| refuse(e.to_string()))?;
    if !info.matches(algorithm) {
        return Err(refuse(format!("is not a key for {algorithm}")));
    }
    let mut template = vec![
        Attribute::Class(ObjectClass::PUBLIC_KEY),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Derive(false),
    ];
    match Scheme::of(algorithm)? {
        Scheme::Ecdsa(curve, _) => {
            if info.key.len() != curve.point_len() || info.key.first() != Some(&0x04) {
                return Err(refuse("is not an uncompressed point on its curve".into()));
            }
            template.extend([
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(oid_der(curve.oid())),
                Attribute::EcPoint(octet_string(info.key)),
            ]);
        }
        Scheme::Ed25519 => {
            template.extend([
                Attribute::KeyType(KeyType::EC_EDWARDS),
                Attribute::EcParams(oid_der(OID_ED25519)),
                Attribute::EcPoint(octet_string(info.key)),
            ]);
        }
        Scheme::Rsa { modulus: bits, .. } => {
            if info.rsa_modulus_bits() != Some(bits.bits() as usize) {
                return Err(refuse(format!("is not a {}-bit RSA key", bits.bits())));
            }
            let (modulus, exponent) = rsa_public_key(info.key)
                .ok_or_else(|| refuse("RSAPublicKey is malformed".into()))?;
            template.extend([
                Attribute::KeyType(KeyType::RSA),
                Attribute::Modulus(modulus),
                Attribute::PublicExponent(exponent),
            ]);
        }
    }
    Ok(template)
}

/// A DER OCTET STRING around `content` (how PKCS#11 stores `CKA_EC_POINT`).
fn octet_string(content: &[u8]) -> Vec<u8> {
    let mut der = vec![0x04];
    let len = content.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        der.push(0x80 | (bytes.len() - skip) as u8);
        der.extend_from_slice(&bytes[skip..]);
    }
    der.extend_from_slice(content);
    der
}

/// Modulus and public exponent (big-endian, without sign bytes) of a DER PKCS#1
/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn rsa_public_key(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (sequence, rest) = der_read(der, 0x30)?;
    if !rest.is_empty() {
        return None;
    }
    let (modulus, rest) = der_read(sequence, 0x02)?;
    let (exponent, rest) = der_read(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    let strip = |integer: &[u8]| -> Vec<u8> {
        let start = integer
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(integer.len());
        integer[start..].to_vec()
    };
    let (modulus, exponent) = (strip(modulus), strip(exponent));
    (!modulus.is_empty() && !exponent.is_empty()).then_some((modulus, exponent))
}

/// Reads one definite-length DER element with `tag`: (content, rest).
fn der_read(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use carimbo_kms::encoding::{ec_spki, rsa_spki};

    #[test]
    fn the_unwrap_template_is_an_array_of_ck_attribute() {
        let Attribute::VendorDefined((kind, bytes)) = unwrap_template() else {
            panic!("not a raw attribute");
        };
        assert_eq!(CK_ATTRIBUTE_TYPE::from(kind), CKA_UNWRAP_TEMPLATE);
        let size = size_of::<CK_ATTRIBUTE>();
        assert_eq!(bytes.len(), 4 * size);
        let type_at = std::mem::offset_of!(CK_ATTRIBUTE, type_);
        let kinds: Vec<CK_ATTRIBUTE_TYPE> = bytes
            .chunks(size)
            .map(|entry| {
                let mut raw = [0u8; size_of::<CK_ATTRIBUTE_TYPE>()];
                raw.copy_from_slice(&entry[type_at..type_at + size_of::<CK_ATTRIBUTE_TYPE>()]);
                CK_ATTRIBUTE_TYPE::from_ne_bytes(raw)
            })
            .collect();
        assert_eq!(
            kinds,
            [CKA_CLASS, CKA_PRIVATE, CKA_SENSITIVE, CKA_WRAP_WITH_TRUSTED]
        );
    }

    #[test]
    fn public_templates_come_from_the_spki() {
        let point = {
            let mut point = vec![0x04];
            point.extend([7u8; 64]);
            point
        };
        let spki = ec_spki(carimbo_kms::encoding::OID_P256, &point);
        let template = public_key_template(&spki, SignatureAlgorithm::EcdsaP256Sha256).unwrap();
        assert!(template.contains(&Attribute::EcPoint(octet_string(&point))));
        let error = public_key_template(&spki, SignatureAlgorithm::EcdsaP384Sha384)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a key for"), "{error}");

        let mut modulus = vec![0xc5u8; 384];
        modulus[383] |= 1;
        let spki = rsa_spki(&modulus, &[1, 0, 1]);
        let algorithm: SignatureAlgorithm = "rsa-3072-pss-sha256".parse().unwrap();
        let template = public_key_template(&spki, algorithm).unwrap();
        assert!(template.contains(&Attribute::Modulus(modulus.clone())));
        assert!(template.contains(&Attribute::PublicExponent(vec![1, 0, 1])));
        let algorithm: SignatureAlgorithm = "rsa-4096-pss-sha256".parse().unwrap();
        assert!(public_key_template(&spki, algorithm).is_err());
        assert!(public_key_template(b"junk", SignatureAlgorithm::Ed25519).is_err());
    }

    #[test]
    fn octet_strings_use_long_lengths_when_needed() {
        assert_eq!(octet_string(&[1, 2]), [0x04, 0x02, 0x01, 0x02]);
        let long = octet_string(&[0u8; 200]);
        assert_eq!(&long[..3], &[0x04, 0x81, 200]);
        assert_eq!(long.len(), 203);
    }
}
