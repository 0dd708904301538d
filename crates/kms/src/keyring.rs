//! The keyring: named, versioned keys over one or more providers, with two-phase
//! rotation, explicit disable/destroy, envelope sealing, rewrap, and an audit event for
//! every key use.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use time::Duration;

use crate::envelope::{DataHeader, Headers, WrapBlock};
use crate::{
    AuditEvent, AuditSink, Clock, DataEncryptionKey, EncryptionContext, Error, GenerateRequest,
    HmacKey, KeyAlgorithm, KeyEncryptionKey, KeyName, KeyProvider, KeyRecord, KeyReference,
    KeyVersionRecord, KeyringStore, Operation, Outcome, Purpose, Result, SigningKey, VersionState,
    verify_hmac, verify_signature,
};

/// Who is asking, for the audit trail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Identity (`cli:alice`, `spiffe://...`, `admin:bob`).
    pub actor: String,
    /// Request id, to correlate with logs.
    pub request_id: String,
}

impl Caller {
    /// A caller with a fresh random request id.
    pub fn new(actor: impl Into<String>) -> Self {
        let mut id = [0u8; 8];
        // A request id is not security relevant; fall back to zeros if random fails.
        let _ = aws_lc_rs::rand::fill(&mut id);
        Self {
            actor: actor.into(),
            request_id: hex::encode(id),
        }
    }
}

/// A new envelope's headers and its DEK, ready for [`crate::envelope::encrypt_segments`].
#[derive(Debug)]
pub struct SealedEnvelope {
    /// Data header and wrap block to write first.
    pub headers: Headers,
    /// The plaintext DEK (zeroized on drop).
    pub dek: DataEncryptionKey,
}

/// An envelope whose DEK was unwrapped, ready for [`crate::envelope::decrypt_segments`].
#[derive(Debug)]
pub struct OpenedEnvelope {
    /// The plaintext DEK (zeroized on drop), already checked against the commitment.
    pub dek: DataEncryptionKey,
    /// KEK version that had wrapped it.
    pub key_version: u32,
}

/// Named keys with versions, over a set of providers.
pub struct Keyring {
    store: Arc<dyn KeyringStore>,
    providers: BTreeMap<String, Arc<dyn KeyProvider>>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    signing_keys: Mutex<HashMap<KeyReference, Arc<dyn SigningKey>>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("store", &self.store)
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What an audited operation touched, for its audit event.
struct Subject<'a> {
    operation: Operation,
    name: &'a str,
    purpose: Option<Purpose>,
    version: Option<u32>,
    context: Option<&'a EncryptionContext>,
}

impl Keyring {
    /// A keyring over `store`, recording to `audit`, reading time from `clock`. Add
    /// providers with [`Keyring::with_provider`].
    pub fn new(
        store: Arc<dyn KeyringStore>,
        audit: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            providers: BTreeMap::new(),
            audit,
            clock,
            signing_keys: Mutex::new(HashMap::new()),
        }
    }

    /// Registers a provider under its [`KeyProvider::id`].
    pub fn with_provider(mut self, provider: Arc<dyn KeyProvider>) -> Self {
        self.providers.insert(provider.id().to_owned(), provider);
        self
    }

    /// The metadata store.
    pub fn store(&self) -> &dyn KeyringStore {
        self.store.as_ref()
    }

    fn provider(&self, id: &str) -> Result<&Arc<dyn KeyProvider>> {
        self.providers.get(id).ok_or_else(|| Error::NotSupported {
            provider: id.to_owned(),
            what: format!(
                "this keyring (configured providers: {})",
                self.providers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    async fn record_event<T>(
        &self,
        caller: &Caller,
        subject: Subject<'_>,
        result: Result<T>,
    ) -> Result<T> {
        // On failure the purpose may not be known yet; look it up for the record.
        let purpose = match subject.purpose {
            Some(purpose) => Some(purpose),
            None => match KeyName::new(subject.name) {
                Ok(name) => self.purpose_of(&name).await,
                Err(_) => None,
            },
        };
        let outcome = match &result {
            Ok(_) => Outcome::Success,
            Err(error) => Outcome::Failure(error.to_string()),
        };
        let event = AuditEvent {
            time: self.clock.now(),
            actor: caller.actor.clone(),
            request_id: caller.request_id.clone(),
            operation: subject.operation,
            key_name: subject.name.to_owned(),
            key_version: subject.version,
            purpose,
            context_digest: subject.context.map(|c| hex::encode(c.digest())),
            outcome,
        };
        self.audit.record(&event)?;
        result
    }

    async fn require(&self, name: &KeyName) -> Result<KeyRecord> {
        self.store
            .key(name)
            .await?
            .ok_or_else(|| Error::KeyNotFound(name.to_string()))
    }

    fn require_purpose(record: &KeyRecord, allowed: &[Purpose], operation: &str) -> Result<()> {
        if allowed.contains(&record.purpose) {
            Ok(())
        } else {
            Err(Error::WrongPurpose {
                name: record.name.to_string(),
                purpose: record.purpose.to_string(),
                operation: operation.to_owned(),
            })
        }
    }

    /// The record of `name`.
    pub async fn describe(&self, name: &KeyName) -> Result<KeyRecord> {
        self.require(name).await
    }

    /// Creates key `name` with version 1 as primary, generated by `provider_id`.
    /// `algorithm` defaults by purpose ([`KeyAlgorithm::default_for`]).
    pub async fn create_key(
        &self,
        caller: &Caller,
        name: &KeyName,
        purpose: Purpose,
        algorithm: Option<KeyAlgorithm>,
        provider_id: &str,
    ) -> Result<KeyRecord> {
        let subject = Subject {
            operation: Operation::CreateKey,
            name: name.as_str(),
            purpose: Some(purpose),
            version: Some(1),
            context: None,
        };
        let result = async {
            name.check_purpose(purpose)?;
            let algorithm = algorithm.unwrap_or(KeyAlgorithm::default_for(purpose));
            algorithm.check_purpose(purpose)?;
            if self.store.key(name).await?.is_some() {
                return Err(Error::KeyExists(name.to_string()));
            }
            let version = self
                .generate_version(name, 1, purpose, algorithm, provider_id)
                .await?;
            let record = KeyRecord {
                name: name.clone(),
                purpose,
                algorithm,
                created_at: self.clock.now(),
                primary_version: 1,
                versions: vec![version],
                revision: 1,
            };
            self.store.insert(&record).await?;
            Ok(record)
        }
        .await;
        self.record_event(caller, subject, result).await
    }

    async fn generate_version(
        &self,
        name: &KeyName,
        version: u32,
        purpose: Purpose,
        algorithm: KeyAlgorithm,
        provider_id: &str,
    ) -> Result<KeyVersionRecord> {
        let provider = self.provider(provider_id)?;
        let generated = provider
            .generate(&GenerateRequest {
                name,
                version,
                purpose,
                algorithm,
            })
            .await?;
        if algorithm.signature().is_some() && generated.public_key.is_none() {
            return Err(Error::provider(
                provider_id,
                "generated a signing key without returning its public key",
            ));
        }
        Ok(KeyVersionRecord {
            version,
            reference: generated.reference,
            state: VersionState::Enabled,
            created_at: self.clock.now(),
            disabled_at: None,
            destroyed_at: None,
            public_key: generated.public_key.map(hex::encode),
        })
    }

    /// Phase one of a rotation: adds a new enabled, non-primary version, generated by
    /// `provider_id` (default: the provider of the primary version). Returns its number.
    pub async fn add_version(
        &self,
        caller: &Caller,
        name: &KeyName,
        provider_id: Option<&str>,
    ) -> Result<u32> {
        let mut version_for_audit = None;
        let result = async {
            let mut record = self.require(name).await?;
            let next = record.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
            version_for_audit = Some(next);
            let provider_id = match provider_id {
                Some(id) => id.to_owned(),
                None => record
                    .version(record.primary_version)?
                    .reference
                    .provider
                    .clone(),
            };
            let version = self
                .generate_version(name, next, record.purpose, record.algorithm, &provider_id)
                .await?;
            record.versions.push(version);
            record.revision += 1;
            self.store.update(&record).await?;
            Ok((next, record.purpose))
        }
        .await;
        let purpose = result.as_ref().ok().map(|(_, purpose)| *purpose);
        let subject = Subject {
            operation: Operation::AddVersion,
            name: name.as_str(),
            purpose,
            version: version_for_audit,
            context: None,
        };
        self.record_event(caller, subject, result.map(|(version, _)| version))
            .await
    }

    /// Phase two of a rotation: makes `version` (enabled) the primary.
    pub async fn promote(&self, caller: &Caller, name: &KeyName, version: u32) -> Result<()> {
        self.change_version(caller, name, version, Operation::Promote, |record, _| {
            record.usable_version(version)?;
            record.primary_version = version;
            Ok(())
        })
        .await
    }

    /// Adds a version and promotes it: both phases of a rotation in order. Returns the
    /// new version.
    pub async fn rotate(
        &self,
        caller: &Caller,
        name: &KeyName,
        provider_id: Option<&str>,
    ) -> Result<u32> {
        let version = self.add_version(caller, name, provider_id).await?;
        self.promote(caller, name, version).await?;
        Ok(version)
    }

    /// Disables `version` (reversible). The primary version cannot be disabled.
    pub async fn disable(&self, caller: &Caller, name: &KeyName, version: u32) -> Result<()> {
        let now = self.clock.now();
        self.change_version(caller, name, version, Operation::Disable, |record, _| {
            if record.primary_version == version {
                return Err(Error::InvalidState(format!(
                    "version {version} is the primary of {name}; promote another version first"
                )));
            }
            let entry = record.version_mut(version)?;
            match entry.state {
                VersionState::Enabled => {
                    entry.state = VersionState::Disabled;
                    entry.disabled_at = Some(now);
                    Ok(())
                }
                VersionState::Disabled => Ok(()),
                VersionState::Destroyed => Err(Error::InvalidState(format!(
                    "version {version} of {name} is destroyed"
                ))),
            }
        })
        .await
    }

    /// Enables a disabled `version` again.
    pub async fn enable(&self, caller: &Caller, name: &KeyName, version: u32) -> Result<()> {
        self.change_version(caller, name, version, Operation::Enable, |record, _| {
            let entry = record.version_mut(version)?;
            match entry.state {
                VersionState::Destroyed => Err(Error::InvalidState(format!(
                    "version {version} of {name} is destroyed and cannot be enabled"
                ))),
                _ => {
                    entry.state = VersionState::Enabled;
                    entry.disabled_at = None;
                    Ok(())
                }
            }
        })
        .await
    }

    /// Destroys the material of `version`, which must have been disabled for at least the
    /// keyring's waiting period. Never automatic.
    pub async fn destroy(&self, caller: &Caller, name: &KeyName, version: u32) -> Result<()> {
        let subject = Subject {
            operation: Operation::Destroy,
            name: name.as_str(),
            purpose: None,
            version: Some(version),
            context: None,
        };
        let result = async {
            let mut record = self.require(name).await?;
            let wait = self.store.settings().await?.destroy_wait_seconds;
            let now = self.clock.now();
            let entry = record.version(version)?;
            let reference = entry.reference.clone();
            match (entry.state, entry.disabled_at) {
                (VersionState::Disabled, Some(since)) => {
                    let ready = since + Duration::seconds(i64::try_from(wait).unwrap_or(i64::MAX));
                    if now < ready {
                        return Err(Error::InvalidState(format!(
                            "version {version} of {name} was disabled at {since}; it can be destroyed from {ready}"
                        )));
                    }
                }
                (VersionState::Destroyed, _) => {
                    return Err(Error::InvalidState(format!(
                        "version {version} of {name} is already destroyed"
                    )));
                }
                _ => {
                    return Err(Error::InvalidState(format!(
                        "version {version} of {name} must be disabled before it is destroyed"
                    )));
                }
            }
            self.provider(&reference.provider)?.destroy(&reference).await?;
            self.forget(&reference);
            let entry = record.version_mut(version)?;
            entry.state = VersionState::Destroyed;
            entry.destroyed_at = Some(now);
            record.revision += 1;
            self.store.update(&record).await?;
            Ok(record.purpose)
        }
        .await;
        let subject = Subject {
            purpose: result.as_ref().ok().copied(),
            ..subject
        };
        self.record_event(caller, subject, result.map(|_| ())).await
    }

    fn forget(&self, reference: &KeyReference) {
        if let Ok(mut cache) = self.signing_keys.lock() {
            cache.remove(reference);
        }
    }

    async fn change_version(
        &self,
        caller: &Caller,
        name: &KeyName,
        version: u32,
        operation: Operation,
        change: impl FnOnce(&mut KeyRecord, u32) -> Result<()>,
    ) -> Result<()> {
        let result = async {
            let mut record = self.require(name).await?;
            change(&mut record, version)?;
            record.revision += 1;
            self.store.update(&record).await?;
            Ok(record.purpose)
        }
        .await;
        let subject = Subject {
            operation,
            name: name.as_str(),
            purpose: result.as_ref().ok().copied(),
            version: Some(version),
            context: None,
        };
        self.record_event(caller, subject, result.map(|_| ())).await
    }

    /// Opens the signing key of `version` (default: primary) of `name`, checking that the
    /// provider returns the public key recorded at generation. Not audited by itself:
    /// use [`Keyring::sign`], or wrap the key with the caller's own audit.
    pub async fn signing_key(
        &self,
        name: &KeyName,
        version: Option<u32>,
    ) -> Result<(u32, Arc<dyn SigningKey>)> {
        let record = self.require(name).await?;
        Self::require_purpose(&record, &[Purpose::Sign, Purpose::PkiCa], "sign")?;
        let version = version.unwrap_or(record.primary_version);
        let entry = record.usable_version(version)?;
        let algorithm = record.algorithm.signature().ok_or_else(|| {
            Error::Store(format!(
                "key {name} has purpose sign but algorithm {}",
                record.algorithm
            ))
        })?;
        let cached = self
            .signing_keys
            .lock()
            .ok()
            .and_then(|cache| cache.get(&entry.reference).cloned());
        if let Some(key) = cached {
            return Ok((version, key));
        }
        let key = self
            .provider(&entry.reference.provider)?
            .signing_key(&entry.reference, algorithm)
            .await?;
        let recorded = entry.public_key.as_deref().unwrap_or_default();
        if hex::encode(key.public_key_der()) != recorded {
            return Err(Error::provider(
                entry.reference.provider.clone(),
                format!(
                    "{} holds a different public key than recorded for {name} v{version}",
                    entry.reference
                ),
            ));
        }
        if let Ok(mut cache) = self.signing_keys.lock() {
            cache.insert(entry.reference.clone(), key.clone());
        }
        Ok((version, key))
    }

    /// Signs `message` with the primary version of `name`; returns the version used and
    /// the signature.
    pub async fn sign(
        &self,
        caller: &Caller,
        name: &KeyName,
        message: &[u8],
    ) -> Result<(u32, Vec<u8>)> {
        let result = async {
            let (version, key) = self.signing_key(name, None).await?;
            Ok((version, key.sign(message).await?))
        }
        .await;
        let subject = Subject {
            operation: Operation::Sign,
            name: name.as_str(),
            purpose: None,
            version: result.as_ref().ok().map(|(v, _)| *v),
            context: None,
        };
        self.record_event(caller, subject, result).await
    }

    async fn purpose_of(&self, name: &KeyName) -> Option<Purpose> {
        self.store.key(name).await.ok().flatten().map(|r| r.purpose)
    }

    /// The public key (DER SPKI) of `version` (default: primary) of signing key `name`.
    pub async fn public_key(&self, name: &KeyName, version: Option<u32>) -> Result<(u32, Vec<u8>)> {
        let record = self.require(name).await?;
        Self::require_purpose(
            &record,
            &[Purpose::Sign, Purpose::PkiCa],
            "public key export",
        )?;
        let version = version.unwrap_or(record.primary_version);
        let entry = record.version(version)?;
        let der = entry
            .public_key
            .as_deref()
            .map(hex::decode)
            .transpose()
            .map_err(|_| Error::Store(format!("bad public key recorded for {name} v{version}")))?
            .ok_or_else(|| Error::Store(format!("no public key recorded for {name} v{version}")))?;
        Ok((version, der))
    }

    /// Verifies `signature` over `message` with `version` of `name`, or, without a
    /// version, with any enabled version. Returns the version that verified.
    pub async fn verify(
        &self,
        caller: &Caller,
        name: &KeyName,
        version: Option<u32>,
        message: &[u8],
        signature: &[u8],
    ) -> Result<u32> {
        let result = async {
            let record = self.require(name).await?;
            Self::require_purpose(&record, &[Purpose::Sign, Purpose::PkiCa], "verify")?;
            let algorithm = record
                .algorithm
                .signature()
                .ok_or_else(|| Error::Store(format!("key {name} is not a signing key")))?;
            let candidates: Vec<u32> = match version {
                Some(version) => vec![record.usable_version(version)?.version],
                None => record
                    .versions
                    .iter()
                    .filter(|v| v.state == VersionState::Enabled)
                    .map(|v| v.version)
                    .collect(),
            };
            for candidate in candidates {
                let (_, spki) = self.public_key(name, Some(candidate)).await?;
                if verify_signature(algorithm, &spki, message, signature).is_ok() {
                    return Ok((candidate, record.purpose));
                }
            }
            Err(Error::VerificationFailed("signature"))
        }
        .await;
        let subject = Subject {
            operation: Operation::Verify,
            name: name.as_str(),
            purpose: result.as_ref().ok().map(|(_, p)| *p),
            version: result.as_ref().ok().map(|(v, _)| *v).or(version),
            context: None,
        };
        self.record_event(caller, subject, result.map(|(v, _)| v))
            .await
    }

    async fn kek(&self, record: &KeyRecord, version: u32) -> Result<Arc<dyn KeyEncryptionKey>> {
        Self::require_purpose(record, &[Purpose::Envelope], "envelope encryption")?;
        let entry = record.usable_version(version)?;
        self.provider(&entry.reference.provider)?
            .key_encryption_key(&entry.reference)
            .await
    }

    /// Starts a new envelope under the primary version of KEK `name`: a fresh DEK, the
    /// data header, and the DEK wrapped with the header, KEK name/version and context
    /// as associated data.
    pub async fn seal(
        &self,
        caller: &Caller,
        name: &KeyName,
        context: &EncryptionContext,
        segment_size: u32,
    ) -> Result<SealedEnvelope> {
        let mut version_used = None;
        let result = async {
            let record = self.require(name).await?;
            let version = record.primary_version;
            version_used = Some(version);
            let kek = self.kek(&record, version).await?;
            let dek = DataEncryptionKey::generate()?;
            let data = DataHeader::new(&dek, context, segment_size)?;
            let wrap = self
                .wrap(&record, version, kek.as_ref(), &dek, &data, context)
                .await?;
            Ok((
                SealedEnvelope {
                    headers: Headers { data, wrap },
                    dek,
                },
                record.purpose,
            ))
        }
        .await;
        let subject = Subject {
            operation: Operation::Wrap,
            name: name.as_str(),
            purpose: result.as_ref().ok().map(|(_, p)| *p),
            version: version_used,
            context: Some(context),
        };
        self.record_event(caller, subject, result.map(|(sealed, _)| sealed))
            .await
    }

    async fn wrap(
        &self,
        record: &KeyRecord,
        version: u32,
        kek: &dyn KeyEncryptionKey,
        dek: &DataEncryptionKey,
        data: &DataHeader,
        context: &EncryptionContext,
    ) -> Result<WrapBlock> {
        let key_reference = record.version(version)?.reference.to_string();
        let aad = WrapBlock::aad(data, record.name.as_str(), version, &key_reference, context);
        let wrapped = kek.wrap(dek, &aad).await?;
        Ok(WrapBlock {
            key_name: record.name.to_string(),
            key_version: version,
            key_reference,
            wrapped,
        })
    }

    async fn unwrap(
        &self,
        headers: &Headers,
        context: &EncryptionContext,
    ) -> Result<(KeyRecord, OpenedEnvelope)> {
        headers.data.check_context(context)?;
        let name = KeyName::new(&headers.wrap.key_name)?;
        let record = self.require(&name).await?;
        let version = headers.wrap.key_version;
        let kek = self.kek(&record, version).await?;
        let aad = WrapBlock::aad(
            &headers.data,
            name.as_str(),
            version,
            &headers.wrap.key_reference,
            context,
        );
        let dek = kek.unwrap(&headers.wrap.wrapped, &aad).await?;
        headers.data.check_key(&dek)?;
        Ok((
            record,
            OpenedEnvelope {
                dek,
                key_version: version,
            },
        ))
    }

    /// Unwraps the DEK of an envelope, given the context it was sealed with.
    pub async fn open(
        &self,
        caller: &Caller,
        headers: &Headers,
        context: &EncryptionContext,
    ) -> Result<OpenedEnvelope> {
        let result = self.unwrap(headers, context).await;
        let subject = Subject {
            operation: Operation::Unwrap,
            name: &headers.wrap.key_name,
            purpose: result.as_ref().ok().map(|(r, _)| r.purpose),
            version: Some(headers.wrap.key_version),
            context: Some(context),
        };
        self.record_event(caller, subject, result.map(|(_, opened)| opened))
            .await
    }

    /// Replaces the wrap block of an envelope with one under the KEK's current primary
    /// version. The data header — and so every data segment — is unchanged.
    pub async fn rewrap(
        &self,
        caller: &Caller,
        headers: &Headers,
        context: &EncryptionContext,
    ) -> Result<Headers> {
        let mut new_version = None;
        let result = async {
            let (record, opened) = self.unwrap(headers, context).await?;
            let version = record.primary_version;
            new_version = Some(version);
            let kek = self.kek(&record, version).await?;
            let wrap = self
                .wrap(
                    &record,
                    version,
                    kek.as_ref(),
                    &opened.dek,
                    &headers.data,
                    context,
                )
                .await?;
            Ok((
                Headers {
                    data: headers.data.clone(),
                    wrap,
                },
                record.purpose,
            ))
        }
        .await;
        let subject = Subject {
            operation: Operation::Rewrap,
            name: &headers.wrap.key_name,
            purpose: result.as_ref().ok().map(|(_, p)| *p),
            version: new_version.or(Some(headers.wrap.key_version)),
            context: Some(context),
        };
        self.record_event(caller, subject, result.map(|(h, _)| h))
            .await
    }

    async fn hmac_key(
        &self,
        name: &KeyName,
        version: Option<u32>,
    ) -> Result<(KeyRecord, u32, Arc<dyn HmacKey>)> {
        let record = self.require(name).await?;
        Self::require_purpose(&record, &[Purpose::Hmac], "hmac")?;
        let version = version.unwrap_or(record.primary_version);
        let entry = record.usable_version(version)?;
        let key = self
            .provider(&entry.reference.provider)?
            .hmac_key(&entry.reference)
            .await?;
        Ok((record, version, key))
    }

    /// HMAC-SHA-256 of `message` with the primary version of `name`; returns the
    /// version used and the tag.
    pub async fn hmac(
        &self,
        caller: &Caller,
        name: &KeyName,
        message: &[u8],
    ) -> Result<(u32, Vec<u8>)> {
        let result = async {
            let (record, version, key) = self.hmac_key(name, None).await?;
            Ok((version, key.mac(message).await?, record.purpose))
        }
        .await;
        let subject = Subject {
            operation: Operation::Hmac,
            name: name.as_str(),
            purpose: result.as_ref().ok().map(|r| r.2),
            version: result.as_ref().ok().map(|r| r.0),
            context: None,
        };
        self.record_event(caller, subject, result.map(|(v, tag, _)| (v, tag)))
            .await
    }

    /// Checks `tag` over `message` with `version` of `name` (constant-time compare).
    pub async fn verify_hmac(
        &self,
        caller: &Caller,
        name: &KeyName,
        version: u32,
        message: &[u8],
        tag: &[u8],
    ) -> Result<()> {
        let result = async {
            let (record, _, key) = self.hmac_key(name, Some(version)).await?;
            verify_hmac(key.as_ref(), message, tag).await?;
            Ok(record.purpose)
        }
        .await;
        let subject = Subject {
            operation: Operation::VerifyHmac,
            name: name.as_str(),
            purpose: result.as_ref().ok().copied(),
            version: Some(version),
            context: None,
        };
        self.record_event(caller, subject, result.map(|_| ())).await
    }
}
