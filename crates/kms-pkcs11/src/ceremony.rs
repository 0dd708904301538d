//! What the offline CA ceremony needs beyond the [`carimbo_kms::KeyProvider`] trait:
//! keys with a label chosen by the ceremony, lookup by that label, the token's random
//! generator, and public keys read back by reference.

use std::sync::Arc;

use carimbo_kms::{GeneratedKey, KeyAlgorithm, KeyReference, Purpose};
use cryptoki::object::{Attribute, ObjectClass};
use cryptoki::session::Session;

use crate::module::{TOKEN_STORE, lock};
use crate::objects::{self, KeyLocation};
use crate::provider::generate_checked;
use crate::{PROVIDER_ID, Pkcs11Error, Pkcs11Provider};

/// Most random bytes [`Pkcs11Provider::random_bytes`] returns in one call.
const MAX_RANDOM_BYTES: usize = 64 * 1024;

/// Whether a generated private key may ever leave the token, wrapped for backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BackupPolicy {
    /// Never: sensitive and `CKA_EXTRACTABLE` false, like every key
    /// [`carimbo_kms::KeyProvider::generate`] makes.
    #[default]
    None,
    /// Only wrapped by a trusted key: sensitive, `CKA_EXTRACTABLE` true and
    /// `CKA_WRAP_WITH_TRUSTED` true, so that only a wrapping key the token's security
    /// officer marked `CKA_TRUSTED` can export it (see
    /// [`Pkcs11Provider::wrap_for_backup`]).
    WrapWithTrusted,
}

impl BackupPolicy {
    /// The private-key template attributes that carry the policy.
    pub(crate) fn attributes(self) -> Vec<Attribute> {
        match self {
            Self::None => vec![Attribute::Extractable(false)],
            Self::WrapWithTrusted => vec![
                Attribute::Extractable(true),
                Attribute::WrapWithTrusted(true),
            ],
        }
    }
}

impl Pkcs11Provider {
    /// The private or secret key object labelled `label` (`CKA_LABEL`), as a reference
    /// of this provider; `None` when there is none. Fails when several carry the label
    /// or the object has no `CKA_ID`.
    pub async fn find_key(&self, label: &str) -> Result<Option<KeyReference>, Pkcs11Error> {
        let token = Arc::clone(&self.token);
        let label = label.to_owned();
        self.token
            .run("find key", self.token.timeout(), move |session| {
                let mut found =
                    objects::find_labelled(session, Some(ObjectClass::PRIVATE_KEY), &label)?;
                found.extend(objects::find_labelled(
                    session,
                    Some(ObjectClass::SECRET_KEY),
                    &label,
                )?);
                match found.as_slice() {
                    [] => Ok(None),
                    [object] => {
                        let id = objects::object_id(session, *object)?;
                        if id.is_empty() {
                            return Err(Pkcs11Error::InvalidKey {
                                reference: format!("labelled '{label}'"),
                                reason: format!("has no CKA_ID on token '{}'", token.label),
                            });
                        }
                        Ok(Some(KeyReference {
                            provider: PROVIDER_ID.into(),
                            id: format!("{}/{}", token.serial, hex::encode(id)),
                        }))
                    }
                    several => Err(Pkcs11Error::AmbiguousLabel {
                        label,
                        token: token.label.clone(),
                        count: several.len(),
                    }),
                }
            })
            .await
    }

    /// Whether any object on the token (public, private or secret key, certificate,
    /// data) is labelled `label`.
    pub async fn label_in_use(&self, label: &str) -> Result<bool, Pkcs11Error> {
        let label = label.to_owned();
        self.token
            .run("find label", self.token.timeout(), move |session| {
                label_used(session, &label)
            })
            .await
    }

    /// Generates a key like [`carimbo_kms::KeyProvider::generate`] — inside the token,
    /// public key read back and checked, test signature verified — but labelled exactly
    /// `label` (on every object of the key) and, for signing keys, extractable as
    /// `backup` says. Refuses a label that any object on the token already carries.
    pub async fn generate_labeled(
        &self,
        label: &str,
        purpose: Purpose,
        algorithm: KeyAlgorithm,
        backup: BackupPolicy,
    ) -> Result<GeneratedKey, Pkcs11Error> {
        algorithm
            .check_purpose(purpose)
            .map_err(|e| Pkcs11Error::InvalidInput(e.to_string()))?;
        if label.is_empty() {
            return Err(Pkcs11Error::InvalidInput("key label is empty".into()));
        }
        if backup == BackupPolicy::WrapWithTrusted && algorithm.signature().is_none() {
            return Err(Pkcs11Error::InvalidInput(format!(
                "backup by trusted wrapping is offered for signing keys only, not {algorithm}"
            )));
        }
        self.require_for(algorithm)?;
        let token = Arc::clone(&self.token);
        let owned_label = label.to_owned();
        let (reference, public_key) = self
            .token
            .run("generate", self.token.generate_timeout(), move |session| {
                // Checked under the store lock, so that two generations in this
                // process cannot both take the label.
                let _store = lock(&TOKEN_STORE);
                if label_used(session, &owned_label)? {
                    return Err(Pkcs11Error::LabelInUse {
                        label: owned_label,
                        token: token.label.clone(),
                    });
                }
                generate_checked(session, &token, algorithm, &owned_label, backup)
            })
            .await?;
        tracing::info!(
            token = %self.token.label,
            reference = %reference,
            label,
            algorithm = %algorithm,
            backup = ?backup,
            "generated labelled key in PKCS#11 token"
        );
        Ok(GeneratedKey {
            reference,
            public_key,
        })
    }

    /// `n` bytes from the token's random number generator (`C_GenerateRandom`), e.g.
    /// for certificate serial numbers. Fails with [`Pkcs11Error::NoRandomGenerator`]
    /// when the token has none; at most 64 KiB per call.
    pub async fn random_bytes(&self, n: usize) -> Result<Vec<u8>, Pkcs11Error> {
        if !self.token.has_rng {
            return Err(Pkcs11Error::NoRandomGenerator {
                token: self.token.label.clone(),
            });
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        if n > MAX_RANDOM_BYTES {
            return Err(Pkcs11Error::InvalidInput(format!(
                "asked for {n} random bytes; at most {MAX_RANDOM_BYTES} per call"
            )));
        }
        // n is at most 64 KiB: it fits in u32.
        let len = u32::try_from(n).unwrap_or(u32::MAX);
        let bytes = self
            .token
            .run("random", self.token.timeout(), move |session| {
                session
                    .generate_random_vec(len)
                    .map_err(Pkcs11Error::call("C_GenerateRandom"))
            })
            .await?;
        if bytes.len() != n {
            return Err(Pkcs11Error::Other(format!(
                "C_GenerateRandom returned {} bytes, not {n}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// The public key of the key pair `reference` as DER `SubjectPublicKeyInfo`, read
    /// from its public-key object.
    pub async fn public_key_der(&self, reference: &KeyReference) -> Result<Vec<u8>, Pkcs11Error> {
        let location = self.locate(reference)?;
        self.token
            .run("read public key", self.token.timeout(), move |session| {
                public_key_of(session, &location)
            })
            .await
    }
}

/// Whether any object carries `label`. Blocking.
pub(crate) fn label_used(session: &Session, label: &str) -> Result<bool, Pkcs11Error> {
    Ok(!objects::find_labelled(session, None, label)?.is_empty())
}

/// The SPKI of the public-key object at `location`. Blocking.
pub(crate) fn public_key_of(
    session: &Session,
    location: &KeyLocation,
) -> Result<Vec<u8>, Pkcs11Error> {
    let public = match objects::find(session, ObjectClass::PUBLIC_KEY, location)? {
        Some(public) => public,
        None if objects::find(session, ObjectClass::PRIVATE_KEY, location)?.is_some() => {
            return Err(location.invalid("has no public-key object"));
        }
        None => return Err(location.not_found()),
    };
    objects::any_public_key_spki(session, public, location)
}
