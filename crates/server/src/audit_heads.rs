//! Signed audit chain heads, and the check of every chain against them.
//!
//! The hash chain alone shows an edited or deleted event, but not a chain recomputed
//! from an edit onwards, nor a cut tail: whoever can write the database can do both.
//! So each replica signs the head of its own chain (last sequence and hash) every
//! `[audit] head-interval` with an audit key that lives in a key provider (the CA's
//! token or the file provider), and stores the signed head next to the chain. A
//! rewritten or truncated chain no longer matches the heads signed before the change;
//! only events after the last signed head are unprotected, so the interval bounds what
//! an attacker with database access can rewrite unseen. Heads are append-only too, and
//! they travel in `carimbo audit export`, so a copy kept elsewhere can be checked
//! against the database later.
//!
//! [`verify_chain`] trusts a head's key only if the operator vouches for it: either the
//! key provider holds the key at that reference with the recorded public key, or the
//! public key is among those given on the command line.

use std::collections::HashMap;
use std::sync::Arc;

use carimbo_kms::{KeyName, SignatureAlgorithm, SigningKey, verify_signature};
use carimbo_store::audit::head_message;
use carimbo_store::{SignedAuditHead, Store, StoreError};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::ServerError;
use crate::keys::KeyOpener;

/// Algorithm of the audit keys the service generates.
pub const HEAD_ALGORITHM: SignatureAlgorithm = SignatureAlgorithm::EcdsaP256Sha256;

/// Signs the heads of one replica's chain.
#[derive(Debug)]
pub struct AuditSigner {
    chain: String,
    provider: Option<String>,
    state: Mutex<SignerState>,
}

#[derive(Debug, Default)]
struct SignerState {
    key: Option<(String, Arc<dyn SigningKey>)>,
    /// Sequence of the last head signed (`None`: not read from the store yet).
    last_signed: Option<u64>,
}

impl AuditSigner {
    /// A signer for `chain` whose key lives in `provider` (`pkcs11` or `file`); without
    /// a provider nothing is signed.
    pub fn new(chain: &str, provider: Option<String>) -> Self {
        Self {
            chain: chain.to_owned(),
            provider,
            state: Mutex::new(SignerState::default()),
        }
    }

    /// Signs and stores the chain's head if events were appended since the last signed
    /// head; returns the new head. The audit key is the one of the chain's last head if
    /// the provider still holds it, else a new one.
    pub async fn sign_head(
        &self,
        store: &dyn Store,
        keys: &KeyOpener,
        now: OffsetDateTime,
    ) -> Result<Option<SignedAuditHead>, ServerError> {
        let Some(provider) = &self.provider else {
            return Ok(None);
        };
        let mut state = self.state.lock().await;
        let heads = match state.last_signed {
            Some(_) => None,
            None => Some(store.audit_heads(&self.chain).await?),
        };
        if let Some(heads) = &heads {
            state.last_signed = Some(heads.last().map_or(0, |h| h.sequence));
        }
        let Some(last) = store.last_audit_event(&self.chain).await? else {
            return Ok(None);
        };
        if Some(last.sequence) <= state.last_signed {
            return Ok(None);
        }
        if state.key.is_none() {
            let heads = match heads {
                Some(heads) => heads,
                None => store.audit_heads(&self.chain).await?,
            };
            state.key = Some(
                self.open_or_generate(keys, provider, heads.last(), now)
                    .await?,
            );
        }
        let Some((reference, key)) = state.key.clone() else {
            return Ok(None);
        };
        let signed_at = OffsetDateTime::from_unix_timestamp(now.unix_timestamp())
            .map_err(|e| ServerError::Keys(e.to_string()))?;
        let message = head_message(
            &self.chain,
            last.sequence,
            &last.hash,
            signed_at.unix_timestamp(),
        );
        let signature = key
            .sign(&message)
            .await
            .map_err(|e| ServerError::Keys(format!("signing the audit head: {e}")))?;
        let head = SignedAuditHead {
            chain: self.chain.clone(),
            sequence: last.sequence,
            hash: last.hash,
            signed_at,
            key_reference: reference,
            algorithm: HEAD_ALGORITHM.to_string(),
            public_key: key.public_key_der().to_vec(),
            signature,
        };
        match store.insert_audit_head(&head).await {
            Ok(()) => {}
            // Signed already (by this replica before a restart): nothing to add.
            Err(StoreError::Conflict(_)) => {
                state.last_signed = Some(head.sequence);
                return Ok(None);
            }
            Err(error) => return Err(error.into()),
        }
        state.last_signed = Some(head.sequence);
        tracing::info!(
            chain = %head.chain,
            sequence = head.sequence,
            hash = %head.hash,
            "audit chain head signed"
        );
        Ok(Some(head))
    }

    async fn open_or_generate(
        &self,
        keys: &KeyOpener,
        provider: &str,
        last: Option<&SignedAuditHead>,
        now: OffsetDateTime,
    ) -> Result<(String, Arc<dyn SigningKey>), ServerError> {
        if let Some(head) = last {
            match keys
                .open_reference(&head.key_reference, HEAD_ALGORITHM)
                .await
            {
                Ok(key) if key.public_key_der() == head.public_key.as_slice() => {
                    return Ok((head.key_reference.clone(), key));
                }
                Ok(_) => tracing::warn!(
                    key = %head.key_reference,
                    "the audit key holds another public key than recorded; making a new one"
                ),
                Err(error) => tracing::warn!(
                    key = %head.key_reference,
                    error = %error,
                    "the last audit key cannot be opened; making a new one"
                ),
            }
        }
        let mut unique = [0u8; 4];
        aws_lc_rs::rand::fill(&mut unique)
            .map_err(|_| ServerError::Keys("random failed".into()))?;
        let label: String = self
            .chain
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let name = KeyName::new(&format!(
            "sign/audit/{label}-{}-{}",
            now.unix_timestamp(),
            hex::encode(unique)
        ))
        .map_err(|e| ServerError::Keys(e.to_string()))?;
        let (reference, key) = keys
            .generate_signing_key(provider, &name, HEAD_ALGORITHM)
            .await?;
        tracing::info!(chain = %self.chain, key = %reference, "new audit key");
        Ok((reference.to_string(), key))
    }
}

/// Which audit keys the verifier trusts.
#[derive(Debug, Default)]
pub struct TrustedAuditKeys<'a> {
    /// Opens keys by reference: a key is trusted if its provider holds it with the
    /// recorded public key.
    pub opener: Option<&'a KeyOpener>,
    /// Public keys (DER SPKI) trusted as given.
    pub public_keys: Vec<Vec<u8>>,
}

impl TrustedAuditKeys<'_> {
    /// Whether `head`'s key is trusted; why not otherwise.
    async fn check(&self, head: &SignedAuditHead) -> Result<(), String> {
        if self.public_keys.contains(&head.public_key) {
            return Ok(());
        }
        let Some(opener) = self.opener else {
            return Err(format!(
                "its key {} is not among the trusted public keys",
                head.key_reference
            ));
        };
        let algorithm: SignatureAlgorithm = head
            .algorithm
            .parse()
            .map_err(|_| format!("unknown algorithm {:?}", head.algorithm))?;
        match opener.open_reference(&head.key_reference, algorithm).await {
            Ok(key) if key.public_key_der() == head.public_key.as_slice() => Ok(()),
            Ok(_) => Err(format!(
                "the provider holds another public key at {} than the head records",
                head.key_reference
            )),
            Err(error) => Err(format!(
                "its key cannot be checked against the provider ({error}); give its public key with --trusted-key"
            )),
        }
    }
}

/// The outcome of checking one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    /// The chain.
    pub chain: String,
    /// Its last sequence (0 if empty).
    pub events: u64,
    /// Signed heads checked.
    pub heads: usize,
    /// Sequence of the last signed head (0 if none).
    pub last_signed: u64,
    /// The first problem found, if any.
    pub problem: Option<ChainProblem>,
}

/// What is wrong with a chain, pinned down as far as the evidence allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainProblem {
    /// Event `sequence` is missing: a gap (deleted row).
    Missing {
        /// The first missing sequence.
        sequence: u64,
    },
    /// Event `sequence` does not match its hash or link: it was changed.
    Changed {
        /// The changed event.
        sequence: u64,
    },
    /// The chain holds together but events in `from..=to` differ from what the head
    /// signed for `to` says: rewritten and re-hashed after that head was signed.
    Rewritten {
        /// First event that may have changed (after the last head that still matches).
        from: u64,
        /// The head that no longer matches.
        to: u64,
    },
    /// The chain ends before a signed head: events after `last` were cut.
    Truncated {
        /// The chain's last sequence now.
        last: u64,
        /// The signed head's sequence.
        signed: u64,
    },
    /// A signed head is not trustworthy (bad signature or untrusted key).
    BadHead {
        /// The head's sequence.
        sequence: u64,
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing { sequence } => {
                write!(f, "event {sequence} is missing (deleted or out of place)")
            }
            Self::Changed { sequence } => write!(
                f,
                "event {sequence} was changed (its hash or its link to the previous event does not match)"
            ),
            Self::Rewritten { from, to } => write!(
                f,
                "events {from} to {to} were rewritten and the chain recomputed: the head signed at sequence {to} does not match"
            ),
            Self::Truncated { last, signed } => write!(
                f,
                "the chain was cut: it ends at event {last} but a head was signed at event {signed}"
            ),
            Self::BadHead { sequence, reason } => {
                write!(
                    f,
                    "the signed head at sequence {sequence} is not valid: {reason}"
                )
            }
        }
    }
}

/// Checks `chain`: the hash chain from its first event, then every signed head (key
/// trusted, signature valid, the event it names present with the hash it signed).
/// Returns the first problem; events after the last signed head are reported as the
/// unsigned tail, not as a problem.
pub async fn verify_chain(
    store: &dyn Store,
    chain: &str,
    trusted: &TrustedAuditKeys<'_>,
) -> Result<ChainReport, StoreError> {
    let last = store
        .last_audit_event(chain)
        .await?
        .map_or(0, |event| event.sequence);
    let heads = store.audit_heads(chain).await?;
    let mut report = ChainReport {
        chain: chain.to_owned(),
        events: last,
        heads: heads.len(),
        last_signed: heads.last().map_or(0, |h| h.sequence),
        problem: None,
    };
    if let Some(broken) = store.verify_audit_chain(chain).await? {
        let present = store
            .audit_events(chain, broken.saturating_sub(1), 1)
            .await?
            .first()
            .is_some_and(|event| event.sequence == broken);
        report.problem = Some(if present {
            ChainProblem::Changed { sequence: broken }
        } else {
            ChainProblem::Missing { sequence: broken }
        });
        return Ok(report);
    }
    let mut trust: HashMap<(String, Vec<u8>), Result<(), String>> = HashMap::new();
    let mut last_good = 0;
    for head in &heads {
        let key = (head.key_reference.clone(), head.public_key.clone());
        if !trust.contains_key(&key) {
            let verdict = trusted.check(head).await;
            trust.insert(key.clone(), verdict);
        }
        if let Some(Err(reason)) = trust.get(&key) {
            report.problem = Some(ChainProblem::BadHead {
                sequence: head.sequence,
                reason: reason.clone(),
            });
            return Ok(report);
        }
        let message = head_message(
            &head.chain,
            head.sequence,
            &head.hash,
            head.signed_at.unix_timestamp(),
        );
        let valid = head
            .algorithm
            .parse::<SignatureAlgorithm>()
            .ok()
            .is_some_and(|algorithm| {
                verify_signature(algorithm, &head.public_key, &message, &head.signature).is_ok()
            });
        if !valid {
            report.problem = Some(ChainProblem::BadHead {
                sequence: head.sequence,
                reason: "its signature does not verify".into(),
            });
            return Ok(report);
        }
        if head.sequence > last {
            report.problem = Some(ChainProblem::Truncated {
                last,
                signed: head.sequence,
            });
            return Ok(report);
        }
        let event = store
            .audit_events(chain, head.sequence - 1, 1)
            .await?
            .into_iter()
            .next()
            .filter(|event| event.sequence == head.sequence);
        if event.is_none_or(|event| event.hash != head.hash) {
            report.problem = Some(ChainProblem::Rewritten {
                from: last_good + 1,
                to: head.sequence,
            });
            return Ok(report);
        }
        last_good = head.sequence;
    }
    Ok(report)
}
