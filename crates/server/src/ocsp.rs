//! The OCSP responder (RFC 6960, RFC 5019 profile): delegated responder certificates per
//! issuer, answers signed once and served from memory, refreshed before they go stale.
//!
//! A request is answered, in order, from:
//! 1. the in-memory cache (no database, no signing) — what keeps answers flowing when
//!    the database is unreachable, for as long as they are valid;
//! 2. the answer stored in the database (signed earlier by any replica), which is then
//!    cached;
//! 3. a fresh signature, for the first request of a certificate (`lazy`), a nonce
//!    (issuers with `ocsp-nonce`), or a serial never issued (`unknown`). Fresh signing
//!    is bounded by a semaphore; beyond it the answer is `tryLater`.
//!
//! Revocation keeps answers honest (DESIGN invariant 5): the store deletes a serial's
//! stored answers in the revocation's own transaction and refuses to store an answer
//! whose status no longer matches the certificate's; the revoking replica drops its
//! cached copies right after the commit and every replica polls the revocation log
//! (`revocation-poll`) to drop theirs. A `good` signed concurrently with a revocation is
//! kept out of the cache by an epoch check.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::body::Bytes;
use carimbo_kms::{KeyName, SignatureAlgorithm, SigningKey};
use carimbo_pki::{
    CertId, CertStatus, DistinguishedName, DnAttribute, IssuerHashes, OcspHash, OcspRequest,
    OcspResponseStatus, OcspResponseTemplate, ResponderTemplate, RevocationReason, SerialNumber,
    SingleResponseTemplate, ocsp_error_response, parse_ocsp_request, prepare_ocsp_responder,
    prepare_ocsp_response,
};
use carimbo_store::{
    CertificateRecord, CertificateStatus, Fence, OcspCertStatus, OcspResponderRecord, StoreError,
    StoredOcspResponse,
};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Semaphore;

use crate::ServerError;
use crate::config::{OcspPresign, RevocationSection};
use crate::state::{AppState, Issuer, sha256};

/// Most answers kept in memory; beyond it, arbitrary entries are dropped (they are
/// still in the database).
const CACHE_CAPACITY: usize = 1_000_000;
/// How far thisUpdate is set back, for relying parties whose clocks run slow.
const THIS_UPDATE_BACKDATE: time::Duration = time::Duration::minutes(1);
/// The algorithm of responder keys: fast to sign and verify everywhere.
const RESPONDER_ALGORITHM: SignatureAlgorithm = SignatureAlgorithm::EcdsaP256Sha256;
/// A responder certificate with less validity left than this signs nothing more.
const RESPONDER_MIN_LEFT: time::Duration = time::Duration::minutes(10);
/// Answers refreshed per run of the refresh job.
const REFRESH_BATCH: u32 = 2_000;

/// A signed answer ready to serve.
#[derive(Debug)]
pub struct CachedAnswer {
    /// The DER `OCSPResponse`.
    pub der: Bytes,
    /// Its thisUpdate.
    pub this_update: OffsetDateTime,
    /// Its nextUpdate.
    pub next_update: OffsetDateTime,
    /// `"…"`: a strong validator derived from the bytes.
    pub etag: String,
    /// The certificate status it states: `good`, `revoked` or `unknown`.
    pub status: &'static str,
}

impl CachedAnswer {
    fn new(
        der: Vec<u8>,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
        status: &'static str,
    ) -> Self {
        let etag = format!("\"{}\"", hex::encode(&sha256(&der)[..16]));
        Self {
            der: Bytes::from(der),
            this_update,
            next_update,
            etag,
            status,
        }
    }

    /// Whether it may still be served at `now`.
    pub fn is_fresh(&self, now: OffsetDateTime) -> bool {
        now < self.next_update
    }
}

/// What a request gets.
#[derive(Debug)]
pub enum OcspReply {
    /// A successful answer (cached or fresh).
    Answer(Arc<CachedAnswer>),
    /// An answer signed for this request only (it echoes a nonce): never cached; with
    /// the certificate status it states.
    Fresh(Bytes, &'static str),
    /// An OCSP error status (`malformedRequest`, `unauthorized`, `tryLater`, ...).
    Error(OcspResponseStatus),
}

/// The metrics label of an answer stating `status`.
fn status_label(status: &CertStatus) -> &'static str {
    match status {
        CertStatus::Good => "good",
        CertStatus::Revoked { .. } => "revoked",
        CertStatus::Unknown => "unknown",
    }
}

/// The metrics label of an OCSP error status.
pub fn error_label(status: OcspResponseStatus) -> &'static str {
    match status {
        OcspResponseStatus::Successful => "successful",
        OcspResponseStatus::MalformedRequest => "malformed",
        OcspResponseStatus::InternalError => "internal_error",
        OcspResponseStatus::TryLater => "try_later",
        OcspResponseStatus::SigRequired => "sig_required",
        OcspResponseStatus::Unauthorized => "unauthorized",
    }
}

impl OcspReply {
    /// The metrics label of this reply: the certificate status it states, or the
    /// OCSP error status.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Answer(answer) => answer.status,
            Self::Fresh(_, status) => status,
            Self::Error(status) => error_label(*status),
        }
    }

    /// The DER body.
    pub fn body(&self) -> Bytes {
        match self {
            Self::Answer(answer) => answer.der.clone(),
            Self::Fresh(der, _) => der.clone(),
            Self::Error(status) => Bytes::from(ocsp_error_response(*status)),
        }
    }
}

/// A delegated responder: its key (through the KMS) and certificate.
#[derive(Debug)]
pub struct Responder {
    /// Serial of its certificate, hex.
    pub serial: String,
    /// Its key.
    pub key: Arc<dyn SigningKey>,
    /// Its certificate, DER.
    pub certificate: Vec<u8>,
    /// End of its certificate's validity.
    pub not_after: OffsetDateTime,
}

/// The OCSP side of one issuer.
#[derive(Debug)]
struct OcspIssuer {
    issuer: Arc<Issuer>,
    hashes: IssuerHashes,
    nonce: bool,
    responder: RwLock<Option<Arc<Responder>>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    issuer: usize,
    hash: OcspHash,
    serial: Box<[u8]>,
}

/// The responder of one replica: issuers, responder keys, the answer cache.
#[derive(Debug)]
pub struct OcspService {
    issuers: Vec<OcspIssuer>,
    cache: RwLock<HashMap<CacheKey, Arc<CachedAnswer>>>,
    /// Bumped whenever cached answers are dropped for a revocation: an answer whose
    /// signing started before a bump is not cached.
    epoch: AtomicU64,
    live: Semaphore,
    validity: time::Duration,
    /// nextUpdate − thisUpdate of `unknown` answers: `ocsp-max-age` (plus the
    /// backdate), so a serial that is an intent about to complete is not answered
    /// `unknown` for hours by the caches of relying parties.
    unknown_validity: time::Duration,
    presign: OcspPresign,
    responder_validity: time::Duration,
    /// Highest revocation-log id whose cache invalidation this replica has applied.
    seen_revocation: AtomicU64,
    /// Why the database could not be reached at the last attempt, if it could not.
    database_error: Mutex<Option<String>>,
    database_ok: AtomicBool,
}

fn status_of(record: &CertificateRecord) -> CertStatus {
    match record.status {
        CertificateStatus::Issued => CertStatus::Good,
        CertificateStatus::Revoked => CertStatus::Revoked {
            time: record.revoked_at.unwrap_or(record.created_at),
            reason: record
                .revocation_reason
                .and_then(RevocationReason::from_code)
                .filter(|r| *r != RevocationReason::Unspecified),
        },
        CertificateStatus::Pending | CertificateStatus::Failed => CertStatus::Unknown,
    }
}

/// The reason code a revoked answer states (`None`: no reason, i.e. unspecified).
fn reason_of(status: &CertStatus) -> Option<u8> {
    match status {
        CertStatus::Revoked { reason, .. } => reason.map(RevocationReason::code),
        _ => None,
    }
}

fn hash_name(hash: OcspHash) -> &'static str {
    match hash {
        OcspHash::Sha1 => "sha1",
        OcspHash::Sha256 => "sha256",
        OcspHash::Sha384 => "sha384",
        OcspHash::Sha512 => "sha512",
    }
}

fn hash_from_name(name: &str) -> Option<OcspHash> {
    [
        OcspHash::Sha1,
        OcspHash::Sha256,
        OcspHash::Sha384,
        OcspHash::Sha512,
    ]
    .into_iter()
    .find(|h| hash_name(*h) == name)
}

/// The stored (DER content, lowercase hex) spelling of a serial's magnitude bytes.
fn der_hex(magnitude: &[u8]) -> String {
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        format!("00{}", hex::encode(magnitude))
    } else {
        hex::encode(magnitude)
    }
}

/// The serial's magnitude bytes from its lowercase hex.
fn serial_bytes(hex_serial: &str) -> Option<Vec<u8>> {
    let bytes = hex::decode(hex_serial).ok()?;
    let first = bytes.iter().position(|b| *b != 0)?;
    Some(bytes[first..].to_vec())
}

impl OcspService {
    /// The responder for `issuers` with `settings`; responders are loaded or made by
    /// [`OcspService::ensure_responders`].
    pub fn new(
        issuers: &[Arc<Issuer>],
        nonce: &HashMap<String, bool>,
        settings: &RevocationSection,
    ) -> Result<Self, ServerError> {
        let issuers = issuers
            .iter()
            .map(|issuer| {
                let hashes = IssuerHashes::from_certificate(&issuer.certificate)
                    .map_err(|e| ServerError::Keys(format!("issuer {}: {e}", issuer.name)))?;
                Ok(OcspIssuer {
                    issuer: Arc::clone(issuer),
                    hashes,
                    nonce: nonce.get(&issuer.name).copied().unwrap_or(false),
                    responder: RwLock::new(None),
                })
            })
            .collect::<Result<Vec<_>, ServerError>>()?;
        Ok(Self {
            issuers,
            cache: RwLock::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            live: Semaphore::new(settings.ocsp_live_signing_limit),
            validity: settings.ocsp_validity.0,
            unknown_validity: (settings.ocsp_max_age.0 + THIS_UPDATE_BACKDATE)
                .min(settings.ocsp_validity.0),
            presign: settings.ocsp_presign,
            responder_validity: settings.ocsp_responder_validity.0,
            seen_revocation: AtomicU64::new(0),
            database_error: Mutex::new(None),
            database_ok: AtomicBool::new(true),
        })
    }

    /// When the first answer of a certificate is signed.
    pub fn presign(&self) -> OcspPresign {
        self.presign
    }

    fn note_database<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => {
                if !self.database_ok.swap(true, Ordering::Relaxed)
                    && let Ok(mut error) = self.database_error.lock()
                {
                    *error = None;
                }
            }
            Err(error) => {
                self.database_ok.store(false, Ordering::Relaxed);
                if let Ok(mut slot) = self.database_error.lock() {
                    *slot = Some(error.to_string());
                }
            }
        }
    }

    /// Why the last database access failed, if it did.
    pub fn database_error(&self) -> Option<String> {
        if self.database_ok.load(Ordering::Relaxed) {
            return None;
        }
        self.database_error.lock().ok().and_then(|e| e.clone())
    }

    /// Number of answers in memory, and how many of them are still valid at `now`.
    pub fn cache_stats(&self, now: OffsetDateTime) -> (usize, usize) {
        let cache = match self.cache.read() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        let fresh = cache.values().filter(|a| a.is_fresh(now)).count();
        (cache.len(), fresh)
    }

    /// Number of answers in memory.
    pub fn cache_len(&self) -> usize {
        match self.cache.read() {
            Ok(cache) => cache.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    /// Each issuer's name and the end of validity of its current responder certificate.
    pub fn responder_expiry(&self) -> Vec<(String, Option<OffsetDateTime>)> {
        self.issuers
            .iter()
            .map(|i| {
                let not_after = i
                    .responder
                    .read()
                    .ok()
                    .and_then(|r| r.as_ref().map(|r| r.not_after));
                (i.issuer.name.clone(), not_after)
            })
            .collect()
    }

    /// Whether every issuer has a responder the signer would still use at `now`.
    pub fn responders_ready(&self, now: OffsetDateTime) -> bool {
        self.issuers.iter().all(|i| {
            i.responder
                .read()
                .ok()
                .and_then(|r| r.as_ref().map(|r| r.not_after > now + RESPONDER_MIN_LEFT))
                .unwrap_or(false)
        })
    }

    fn cached(&self, key: &CacheKey, now: OffsetDateTime) -> Option<Arc<CachedAnswer>> {
        let cache = match self.cache.read() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        cache.get(key).filter(|a| a.is_fresh(now)).cloned()
    }

    fn cache_insert(&self, key: CacheKey, answer: Arc<CachedAnswer>, epoch: u64) {
        let mut cache = match self.cache.write() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Checked under the write lock: a revocation bumps the epoch *before* taking it
        // to drop entries, so an answer read before the revocation cannot slip in after.
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        if cache.len() >= CACHE_CAPACITY
            && !cache.contains_key(&key)
            && let Some(victim) = cache.keys().next().cloned()
        {
            cache.remove(&victim);
        }
        cache.insert(key, answer);
    }

    /// Drops every cached answer of `serial_hex` (all issuers, all hashes).
    pub fn forget(&self, serial_hex: &str) {
        let Some(serial) = serial_bytes(serial_hex) else {
            return;
        };
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let mut cache = match self.cache.write() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        cache.retain(|key, _| *key.serial != *serial);
    }

    fn issuer_index(&self, name: &str) -> Option<usize> {
        self.issuers.iter().position(|i| i.issuer.name == name)
    }

    fn current_responder(&self, index: usize) -> Option<Arc<Responder>> {
        self.issuers
            .get(index)?
            .responder
            .read()
            .ok()
            .and_then(|r| r.clone())
    }

    /// Answers a DER request (and counts it in the metrics).
    pub async fn answer(&self, state: &AppState, request_der: &[u8]) -> OcspReply {
        let reply = self.answer_unmetered(state, request_der).await;
        state.metrics.ocsp_answered(reply.label());
        if let OcspReply::Answer(answer) = &reply {
            state
                .metrics
                .ocsp_served(answer.this_update, OffsetDateTime::now_utc());
        }
        reply
    }

    async fn answer_unmetered(&self, state: &AppState, request_der: &[u8]) -> OcspReply {
        let request = match parse_ocsp_request(request_der) {
            Ok(request) => request,
            Err(error) => {
                tracing::debug!(error = %error, "malformed OCSP request");
                return OcspReply::Error(error.status());
            }
        };
        self.answer_parsed(state, &request).await
    }

    async fn answer_parsed(&self, state: &AppState, request: &OcspRequest) -> OcspReply {
        // RFC 5019 §2.1.1: one certificate per request. Several are refused rather than
        // answered with a live signature per request.
        let [cert_id] = request.certs.as_slice() else {
            return OcspReply::Error(OcspResponseStatus::MalformedRequest);
        };
        let Some(index) = self.issuers.iter().position(|i| i.hashes.matches(cert_id)) else {
            return OcspReply::Error(OcspResponseStatus::Unauthorized);
        };
        let now = OffsetDateTime::now_utc();
        let issuer = &self.issuers[index];
        if let Some(nonce) = request.nonce.as_deref()
            && issuer.nonce
        {
            return self
                .live_answer(state, index, cert_id, Some(nonce), now)
                .await;
        }
        let key = CacheKey {
            issuer: index,
            hash: cert_id.hash,
            serial: cert_id.serial.clone().into_boxed_slice(),
        };
        if let Some(answer) = self.cached(&key, now) {
            state.metrics.ocsp_cache(true);
            return OcspReply::Answer(answer);
        }
        state.metrics.ocsp_cache(false);
        let epoch = self.epoch.load(Ordering::SeqCst);
        let serial_hex = der_hex(&cert_id.serial);
        let stored = state
            .store
            .ocsp_response(&serial_hex, hash_name(cert_id.hash))
            .await;
        self.note_database(&stored);
        match stored {
            Ok(Some(stored)) if stored.issuer == issuer.issuer.name && now < stored.next_update => {
                let status = match stored.cert_status {
                    OcspCertStatus::Good => "good",
                    OcspCertStatus::Revoked => "revoked",
                };
                let answer = Arc::new(CachedAnswer::new(
                    stored.der,
                    stored.this_update,
                    stored.next_update,
                    status,
                ));
                self.cache_insert(key, Arc::clone(&answer), epoch);
                return OcspReply::Answer(answer);
            }
            Ok(_) => {}
            Err(_) => return OcspReply::Error(OcspResponseStatus::TryLater),
        }
        self.live_answer(state, index, cert_id, None, now).await
    }

    /// Signs an answer now, with the certificate's current status, stores it (unless
    /// it echoes a nonce or says `unknown`) and caches it.
    async fn live_answer(
        &self,
        state: &AppState,
        index: usize,
        cert_id: &CertId,
        nonce: Option<&[u8]>,
        now: OffsetDateTime,
    ) -> OcspReply {
        let Ok(_permit) = self.live.try_acquire() else {
            return OcspReply::Error(OcspResponseStatus::TryLater);
        };
        let epoch = self.epoch.load(Ordering::SeqCst);
        let serial_hex = der_hex(&cert_id.serial);
        let record = state.store.certificate(&serial_hex).await;
        self.note_database(&record);
        let Ok(record) = record else {
            return OcspReply::Error(OcspResponseStatus::TryLater);
        };
        let issuer_name = &self.issuers[index].issuer.name;
        let status = match &record {
            Some(record) if &record.issuer == issuer_name => status_of(record),
            _ => CertStatus::Unknown,
        };
        let floor = match &record {
            Some(record) if &record.issuer == issuer_name => {
                let floor = state.store.ocsp_this_update_floor(&record.serial).await;
                self.note_database(&floor);
                match floor {
                    Ok(floor) => floor,
                    Err(_) => return OcspReply::Error(OcspResponseStatus::TryLater),
                }
            }
            _ => None,
        };
        let signed = match self.sign(index, cert_id, &status, nonce, now, floor).await {
            Ok(signed) => signed,
            Err(error) => {
                tracing::error!(issuer = %issuer_name, error = %error, "OCSP signing failed");
                return OcspReply::Error(OcspResponseStatus::TryLater);
            }
        };
        let (der, this_update, next_update, responder) = signed;
        if nonce.is_some() {
            return OcspReply::Fresh(Bytes::from(der), status_label(&status));
        }
        let answer = Arc::new(CachedAnswer::new(
            der.clone(),
            this_update,
            next_update,
            status_label(&status),
        ));
        let cert_status = match status {
            CertStatus::Good => OcspCertStatus::Good,
            CertStatus::Revoked { .. } => OcspCertStatus::Revoked,
            // Unknown answers are neither stored nor cached: the serial may be an intent
            // about to complete.
            CertStatus::Unknown => return OcspReply::Answer(answer),
        };
        let stored = state
            .store
            .store_ocsp_response(
                &StoredOcspResponse {
                    serial: serial_hex,
                    issuer: issuer_name.clone(),
                    cert_id_hash: hash_name(cert_id.hash).to_owned(),
                    cert_status,
                    revocation_reason: reason_of(&status),
                    this_update,
                    next_update,
                    der,
                    responder,
                    stored_at: now,
                },
                None,
            )
            .await;
        self.note_database(&stored);
        match stored {
            Ok(true) => {
                let key = CacheKey {
                    issuer: index,
                    hash: cert_id.hash,
                    serial: cert_id.serial.clone().into_boxed_slice(),
                };
                self.cache_insert(key, Arc::clone(&answer), epoch);
                OcspReply::Answer(answer)
            }
            // The certificate's status changed while this answer was signed (a
            // revocation committed): serve nothing from the old status.
            Ok(false) => OcspReply::Error(OcspResponseStatus::TryLater),
            // Signed from the status just read, so it is true; it is only not kept.
            Err(_) => OcspReply::Answer(answer),
        }
    }

    /// Signs one answer with the issuer's current responder, dated no earlier than
    /// `floor` (the latest thisUpdate ever stored for the certificate: a clock that went
    /// back must not date an answer — a revoked one after a good one — before it).
    /// Returns the DER, its thisUpdate and nextUpdate, and the responder's serial.
    async fn sign(
        &self,
        index: usize,
        cert_id: &CertId,
        status: &CertStatus,
        nonce: Option<&[u8]>,
        now: OffsetDateTime,
        floor: Option<OffsetDateTime>,
    ) -> Result<(Vec<u8>, OffsetDateTime, OffsetDateTime, String), String> {
        let responder = self
            .current_responder(index)
            .filter(|r| r.not_after > now + RESPONDER_MIN_LEFT)
            .ok_or_else(|| "no valid OCSP responder certificate".to_owned())?;
        let mut this_update = now - THIS_UPDATE_BACKDATE;
        if let Some(floor) = floor.filter(|floor| *floor > this_update) {
            tracing::warn!(
                %floor,
                clock = %now,
                "OCSP answer dated at the certificate's last thisUpdate: this clock is behind it"
            );
            this_update = floor;
        }
        let now = now.max(this_update);
        let validity = if matches!(status, CertStatus::Unknown) {
            self.unknown_validity
        } else {
            self.validity
        };
        let next_update = (this_update + validity).min(responder.not_after);
        let template = OcspResponseTemplate {
            produced_at: now,
            responses: vec![SingleResponseTemplate {
                cert_id_der: cert_id.der.clone(),
                status: status.clone(),
                this_update,
                next_update,
            }],
            nonce: nonce.map(<[u8]>::to_vec),
            responder_certificate: responder.certificate.clone(),
        };
        let prepared = prepare_ocsp_response(
            &template,
            responder.key.public_key_der(),
            responder.key.algorithm(),
        )
        .map_err(|e| e.to_string())?;
        let der = prepared
            .sign(responder.key.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        Ok((der, this_update, next_update, responder.serial.clone()))
    }

    /// Signs and stores the answers (SHA-1 and SHA-256 CertIDs) of `record` with its
    /// current status, and caches them: after issuance (`presign = issuance`), after a
    /// revocation, and in the refresh job. Errors are returned for logging; a failure
    /// leaves the serial to be answered by fresh signing.
    pub async fn refresh_record(
        &self,
        state: &AppState,
        record: &CertificateRecord,
        hashes: &[OcspHash],
        fence: Option<&Fence>,
    ) -> Result<(), RefreshError> {
        let Some(index) = self.issuer_index(&record.issuer) else {
            return Err(RefreshError::Failed(format!(
                "no issuer {:?} here",
                record.issuer
            )));
        };
        let status = status_of(record);
        let cert_status = match status {
            CertStatus::Good => OcspCertStatus::Good,
            CertStatus::Revoked { .. } => OcspCertStatus::Revoked,
            CertStatus::Unknown => return Ok(()),
        };
        let serial = serial_bytes(&record.serial)
            .ok_or_else(|| RefreshError::Failed("bad serial".into()))?;
        let now = OffsetDateTime::now_utc();
        let floor = state
            .store
            .ocsp_this_update_floor(&record.serial)
            .await
            .map_err(|e| RefreshError::Failed(e.to_string()))?;
        for hash in hashes {
            let epoch = self.epoch.load(Ordering::SeqCst);
            let cert_id = self.issuers[index]
                .hashes
                .cert_id(*hash, &serial)
                .map_err(|e| RefreshError::Failed(e.to_string()))?;
            let (der, this_update, next_update, responder) = self
                .sign(index, &cert_id, &status, None, now, floor)
                .await
                .map_err(RefreshError::Failed)?;
            let stored = state
                .store
                .store_ocsp_response(
                    &StoredOcspResponse {
                        serial: record.serial.clone(),
                        issuer: record.issuer.clone(),
                        cert_id_hash: hash_name(*hash).to_owned(),
                        cert_status,
                        revocation_reason: reason_of(&status),
                        this_update,
                        next_update,
                        der: der.clone(),
                        responder,
                        stored_at: now,
                    },
                    fence,
                )
                .await;
            self.note_database(&stored);
            let stored = match stored {
                Ok(stored) => stored,
                Err(StoreError::Fenced(why)) => return Err(RefreshError::Fenced(why)),
                Err(error) => return Err(RefreshError::Failed(error.to_string())),
            };
            if stored {
                let key = CacheKey {
                    issuer: index,
                    hash: *hash,
                    serial: serial.clone().into_boxed_slice(),
                };
                self.cache_insert(
                    key,
                    Arc::new(CachedAnswer::new(
                        der,
                        this_update,
                        next_update,
                        status_label(&status),
                    )),
                    epoch,
                );
            }
        }
        Ok(())
    }

    /// Reads the revocation log past what this replica has applied and drops the
    /// cached answers of those serials. Returns how many entries were applied.
    pub async fn apply_revocation_log(&self, state: &AppState) -> Result<usize, StoreError> {
        let mut applied = 0;
        loop {
            let after = self.seen_revocation.load(Ordering::SeqCst);
            let entries = state.store.revocations_after(after, 1000).await;
            self.note_database(&entries);
            let entries = entries?;
            let Some(last) = entries.last().map(|e| e.id) else {
                return Ok(applied);
            };
            for entry in &entries {
                self.forget(&entry.serial);
            }
            applied += entries.len();
            self.seen_revocation.fetch_max(last, Ordering::SeqCst);
        }
    }

    /// Starts reading the revocation log at its current end (at start-up nothing is
    /// cached yet).
    pub async fn start_revocation_log(&self, state: &AppState) -> Result<(), StoreError> {
        let last = state.store.last_revocation_id().await?;
        self.seen_revocation.fetch_max(last, Ordering::SeqCst);
        Ok(())
    }

    /// Makes sure every issuer has a responder whose certificate has more than half of
    /// its validity left: reuses a stored one whose key opens, or generates a key in
    /// the issuer key's provider and issues a responder certificate with the issuer
    /// key. Keys of responders that expired are destroyed.
    pub async fn ensure_responders(&self, state: &AppState) -> Result<(), ServerError> {
        let now = OffsetDateTime::now_utc();
        for ocsp_issuer in &self.issuers {
            let issuer = &ocsp_issuer.issuer;
            let keep_until = now + self.responder_validity / 2;
            let current = ocsp_issuer.responder.read().ok().and_then(|r| r.clone());
            if current.as_ref().is_some_and(|r| r.not_after > keep_until) {
                continue;
            }
            let records = state.store.ocsp_responders(&issuer.name).await?;
            let mut chosen = None;
            for record in records
                .iter()
                .filter(|r| r.key_destroyed_at.is_none() && r.not_after > keep_until)
            {
                let Ok(algorithm) = record.algorithm.parse::<SignatureAlgorithm>() else {
                    continue;
                };
                match state
                    .keys
                    .open_reference_as(&record.key_reference, algorithm, "ocsp-responder")
                    .await
                {
                    Ok(key) => {
                        chosen = Some(Responder {
                            serial: record.serial.clone(),
                            key,
                            certificate: record.certificate.clone(),
                            not_after: record.not_after,
                        });
                        break;
                    }
                    Err(error) => tracing::warn!(
                        issuer = %issuer.name,
                        responder = %record.serial,
                        error = %error,
                        "stored OCSP responder key does not open here"
                    ),
                }
            }
            let responder = match chosen {
                Some(responder) => responder,
                None => self.new_responder(state, issuer, now).await?,
            };
            if let Ok(mut slot) = ocsp_issuer.responder.write() {
                *slot = Some(Arc::new(responder));
            }
            for record in records
                .iter()
                .filter(|r| r.key_destroyed_at.is_none() && r.not_after <= now)
            {
                match state.keys.destroy(&record.key_reference).await {
                    Ok(()) => {
                        state
                            .store
                            .mark_responder_key_destroyed(&record.serial, now)
                            .await?;
                    }
                    Err(error) => tracing::warn!(
                        responder = %record.serial,
                        error = %error,
                        "could not destroy an expired OCSP responder key"
                    ),
                }
            }
        }
        Ok(())
    }

    async fn new_responder(
        &self,
        state: &AppState,
        issuer: &Issuer,
        now: OffsetDateTime,
    ) -> Result<Responder, ServerError> {
        let stamp = now.unix_timestamp();
        // A random part too: replicas sharing one token may make a responder for the
        // same issuer in the same second, and two keys must not share a label.
        let mut unique = [0u8; 4];
        aws_lc_rs::rand::fill(&mut unique)
            .map_err(|_| ServerError::Keys("random failed".into()))?;
        let name = KeyName::new(&format!(
            "sign/ocsp/{}-{stamp}-{}",
            issuer.name.to_ascii_lowercase().replace('_', "-"),
            hex::encode(unique)
        ))
        .map_err(|e| ServerError::Keys(e.to_string()))?;
        let (reference, key) = state
            .keys
            .generate_signing_key_as(
                &issuer.key_provider,
                &name,
                RESPONDER_ALGORITHM,
                "ocsp-responder",
            )
            .await?;
        let not_before = now - THIS_UPDATE_BACKDATE;
        let not_after = (now + self.responder_validity).min(issuer.info.not_after());
        let serial = SerialNumber::random().map_err(|e| ServerError::Keys(e.to_string()))?;
        let mut subject = DistinguishedName::new();
        subject
            .push(
                DnAttribute::CommonName,
                &format!("{} OCSP responder", issuer.name),
            )
            .map_err(|e| ServerError::Keys(e.to_string()))?;
        let template = ResponderTemplate {
            serial: serial.clone(),
            subject,
            subject_public_key_info: key.public_key_der().to_vec(),
            not_before,
            not_after,
        };
        let certificate = prepare_ocsp_responder(&template, &issuer.info, now)
            .map_err(|e| ServerError::Keys(format!("OCSP responder of {}: {e}", issuer.name)))?
            .sign(issuer.key.as_ref())
            .await
            .map_err(|e| ServerError::Keys(format!("OCSP responder of {}: {e}", issuer.name)))?;
        let record = OcspResponderRecord {
            serial: serial.to_hex(),
            issuer: issuer.name.clone(),
            key_reference: reference.to_string(),
            algorithm: RESPONDER_ALGORITHM.to_string(),
            certificate: certificate.clone(),
            not_before,
            not_after,
            created_at: now,
            key_destroyed_at: None,
        };
        state.store.insert_ocsp_responder(&record).await?;
        state
            .audit(json!({
                "type": "ocsp.responder_issued",
                "issuer": issuer.name,
                "serial": record.serial,
                "key": record.key_reference,
                "not_after": not_after.unix_timestamp(),
            }))
            .await
            .map_err(|e| ServerError::Keys(e.to_string()))?;
        tracing::info!(issuer = %issuer.name, serial = %record.serial, "new OCSP responder certificate");
        Ok(Responder {
            serial: record.serial,
            key,
            certificate,
            not_after,
        })
    }

    /// Re-signs stored answers that passed half their validity (and, with
    /// `presign = issuance`, signs missing ones), storing them under `fence` (the
    /// refresh job's lease). Returns how many were signed; a fenced write ends the run
    /// with [`StoreError::Fenced`].
    pub async fn refresh_due(&self, state: &AppState, fence: &Fence) -> Result<usize, StoreError> {
        let now = OffsetDateTime::now_utc();
        let due = state
            .store
            .ocsp_responses_due(now, self.presign == OcspPresign::Issuance, REFRESH_BATCH)
            .await;
        self.note_database(&due);
        let mut signed = 0;
        for due in due? {
            let serial = due.serial;
            let Some(record) = state.store.certificate(&serial).await? else {
                continue;
            };
            let hashes = match due.cert_id_hash.as_deref().and_then(hash_from_name) {
                Some(hash) => vec![hash],
                None => vec![OcspHash::Sha1, OcspHash::Sha256],
            };
            match self
                .refresh_record(state, &record, &hashes, Some(fence))
                .await
            {
                Ok(()) => signed += hashes.len(),
                Err(RefreshError::Fenced(why)) => return Err(StoreError::Fenced(why)),
                Err(RefreshError::Failed(error)) => {
                    tracing::warn!(serial = %serial, error = %error, "OCSP refresh failed");
                }
            }
        }
        Ok(signed)
    }
}

/// Why an answer was not refreshed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The refresh job's lease passed to another replica: nothing was stored.
    #[error("fenced: {0}")]
    Fenced(String),
    /// Signing or storing failed; the serial is answered by fresh signing.
    #[error("{0}")]
    Failed(String),
}

/// The CertID of `serial` under `hashes` (used by tests and tools).
pub fn cert_id_for(hashes: &IssuerHashes, hash: OcspHash, serial: &[u8]) -> Option<CertId> {
    hashes.cert_id(hash, serial).ok()
}
