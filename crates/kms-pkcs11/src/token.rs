//! An opened token: its slot, serial and mechanisms, the login, and the session pool
//! through which every PKCS#11 call runs.
//!
//! `Session` is `Send` but not `Sync`, and PKCS#11 calls block. Each operation takes a
//! permit (one per pooled session), then runs on tokio's blocking pool with an idle
//! session (or a new one), and puts the session back afterwards — unless the call failed
//! in a way that leaves the session unusable, in which case it is closed. The whole
//! operation, including the wait for a permit, is bounded by the configured timeout.
//! A call that outlives its timeout keeps its permit and session until the module
//! returns, so a hung token cannot make the pool open ever more sessions.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::MechanismType;
use cryptoki::session::{Session, SessionState};
use cryptoki::slot::Slot;
use cryptoki::slot::TokenInfo;
use tokio::sync::Semaphore;

use crate::Pkcs11Error;
use crate::config::{Pin, Pkcs11Config};
use crate::module::{self, Module, PinCheck, lock};

/// Key generation gets at least this long (RSA-4096 is slow on some tokens).
const MIN_GENERATE_TIMEOUT: Duration = Duration::from_secs(300);

/// An opened, logged-in token.
///
/// When the token goes away (removed, its module restarted, its PIN changed and the
/// login lost), operations fail and the token is marked for recovery: the next
/// operation re-initialises the module (at most once per
/// [`module::REINITIALIZE_PAUSE`]), finds the token again by label and serial, reads
/// the PIN again from its file or variable and logs in (a token that cannot be found
/// makes the next operation re-initialise the module again). A PIN the token refused is
/// never tried twice: recovery waits until the PIN source holds another one, so an HSM
/// that locks its PIN after a few failures is not locked by retries.
pub(crate) struct Token {
    pub(crate) module: Arc<Module>,
    pub(crate) label: String,
    pub(crate) serial: String,
    /// Whether the token has its own random number generator (`CKF_RNG`).
    pub(crate) has_rng: bool,
    mechanisms: Vec<MechanismType>,
    /// The config the token was opened with (label, serial and PIN source).
    config: Pkcs11Config,
    /// Whether the PIN was given by the caller rather than read from the config.
    pin_given: bool,
    pin: Mutex<Pin>,
    /// The last PIN the token refused.
    refused_pin: Mutex<Option<PinCheck>>,
    connection: Mutex<Connection>,
    /// Set when an operation found the token gone; cleared by a successful reconnect.
    needs_reconnect: AtomicBool,
    /// Set when the token could not be found: the module must be initialised again
    /// before looking (some modules only rescan their tokens then).
    needs_reinit: AtomicBool,
    idle: Mutex<Vec<PooledSession>>,
    permits: Arc<Semaphore>,
    pool_size: usize,
    timeout: Duration,
}

/// The token's place in the module's current generation.
struct Connection {
    /// The module generation this connection belongs to.
    generation: u64,
    /// A session held open while connected: PKCS#11 logs the application out when its
    /// last session on the token closes. `None` while not connected.
    anchor: Option<PooledSession>,
}

/// A session of one module generation. Never closed on drop: it is closed explicitly
/// while its generation is current, and forgotten otherwise (after a re-initialisation
/// its handle may belong to another session).
pub(crate) struct PooledSession {
    session: Session,
    generation: u64,
}

impl PooledSession {
    /// The module generation the session was opened in: object handles found through
    /// it are valid in that generation only.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Closes the session if its generation is current. Call while inside the module.
    fn close(self, module: &Module) {
        if self.generation == module.generation()
            && let Err(error) = self.session.close()
        {
            tracing::debug!(%error, "closing a PKCS#11 session failed");
        }
    }
}

impl Deref for PooledSession {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("module", &self.module.path)
            .field("label", &self.label)
            .field("serial", &self.serial)
            .field("sessions", &self.pool_size)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        let module = Arc::clone(&self.module);
        let _inside = module.enter();
        for session in std::mem::take(&mut *lock(&self.idle)) {
            session.close(&module);
        }
        if let Some(anchor) = lock(&self.connection).anchor.take() {
            anchor.close(&module);
        }
    }
}

impl Token {
    /// Loads the module, finds the token, logs in and probes the mechanisms. Blocking.
    pub(crate) fn open(config: &Pkcs11Config, pin: Option<Pin>) -> Result<Self, Pkcs11Error> {
        let pin_given = pin.is_some();
        let pin = match pin {
            Some(pin) => pin,
            None => config.read_pin()?,
        };
        let module = module::load(&config.module)?;
        let inside = module.enter();
        let generation = module.generation();
        let pkcs11 = &module.pkcs11;
        // A token whose file another process is rewriting can be missing for a moment.
        let (slot, info) = module::retry_transient(
            "token lookup",
            |error| {
                module::is_transient(error) || matches!(error, Pkcs11Error::TokenNotFound { .. })
            },
            || find_token(pkcs11, config, config.token_serial.as_deref()),
        )?;
        let label = info.label().to_owned();
        let serial = info.serial_number().to_owned();
        let has_rng = info.rng();
        if info.user_pin_locked() {
            return Err(Pkcs11Error::PinLocked { token: label });
        }
        let mechanisms = pkcs11
            .get_mechanism_list(slot)
            .map_err(Pkcs11Error::call("C_GetMechanismList"))?;
        let anchor = open_session(pkcs11, slot, generation)?;
        if let Err(error) = module.login(&anchor, &label, &serial, &pin) {
            anchor.close(&module);
            return Err(error);
        }
        tracing::info!(
            token = %label,
            serial = %serial,
            mechanisms = mechanisms.len(),
            "PKCS#11 token opened"
        );
        drop(inside);
        Ok(Self {
            label,
            serial,
            has_rng,
            mechanisms,
            config: config.clone(),
            pin_given,
            pin: Mutex::new(pin),
            refused_pin: Mutex::new(None),
            connection: Mutex::new(Connection {
                generation,
                anchor: Some(anchor),
            }),
            needs_reconnect: AtomicBool::new(false),
            needs_reinit: AtomicBool::new(false),
            idle: Mutex::new(Vec::with_capacity(config.sessions)),
            permits: Arc::new(Semaphore::new(config.sessions)),
            pool_size: config.sessions,
            timeout: config.timeout,
            module,
        })
    }

    /// Fails unless the token offers `mechanism`, saying what it is `needed_for`.
    pub(crate) fn require(
        &self,
        mechanism: MechanismType,
        needed_for: impl Into<String>,
    ) -> Result<(), Pkcs11Error> {
        if self.mechanisms.contains(&mechanism) {
            Ok(())
        } else {
            Err(Pkcs11Error::MechanismUnsupported {
                token: self.label.clone(),
                mechanism: mechanism.to_string(),
                needed_for: needed_for.into(),
            })
        }
    }

    /// The mechanisms the token offers.
    pub(crate) fn mechanisms(&self) -> &[MechanismType] {
        &self.mechanisms
    }

    /// The per-operation time limit.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The time limit of key generation.
    pub(crate) fn generate_timeout(&self) -> Duration {
        self.timeout.max(MIN_GENERATE_TIMEOUT)
    }

    /// Size of the session pool, sessions in use and idle sessions.
    pub(crate) fn pool_status(&self) -> crate::provider::SessionPoolStatus {
        crate::provider::SessionPoolStatus {
            size: self.pool_size,
            in_use: self
                .pool_size
                .saturating_sub(self.permits.available_permits()),
            idle: lock(&self.idle).len(),
        }
    }

    /// Marks the token for recovery: the next operation reconnects first.
    pub(crate) fn mark_gone(&self) {
        self.needs_reinit.store(true, Ordering::Release);
        if !self.needs_reconnect.swap(true, Ordering::AcqRel) {
            tracing::warn!(token = %self.label, serial = %self.serial, "PKCS#11 token lost; will reconnect");
        }
    }

    /// Runs `call` with a pooled session on the blocking thread pool, within `limit`.
    pub(crate) async fn run<T, F>(
        self: &Arc<Self>,
        operation: &'static str,
        limit: Duration,
        call: F,
    ) -> Result<T, Pkcs11Error>
    where
        F: FnOnce(&PooledSession) -> Result<T, Pkcs11Error> + Send + 'static,
        T: Send + 'static,
    {
        self.run_with_permits(operation, limit, 1, call).await
    }

    /// Like [`Token::run`], but holds every permit of the pool: no other operation of
    /// this provider runs meanwhile. For calls that change the login state (which
    /// PKCS#11 shares among all sessions of the application).
    pub(crate) async fn run_exclusive<T, F>(
        self: &Arc<Self>,
        operation: &'static str,
        limit: Duration,
        call: F,
    ) -> Result<T, Pkcs11Error>
    where
        F: FnOnce(&PooledSession) -> Result<T, Pkcs11Error> + Send + 'static,
        T: Send + 'static,
    {
        // The pool size is at most 64 (checked in the config), so it fits.
        let all = u32::try_from(self.pool_size).unwrap_or(u32::MAX);
        self.run_with_permits(operation, limit, all, call).await
    }

    async fn run_with_permits<T, F>(
        self: &Arc<Self>,
        operation: &'static str,
        limit: Duration,
        permits: u32,
        call: F,
    ) -> Result<T, Pkcs11Error>
    where
        F: FnOnce(&PooledSession) -> Result<T, Pkcs11Error> + Send + 'static,
        T: Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + limit;
        let timed_out = || Pkcs11Error::Timeout {
            operation,
            token: self.label.clone(),
            seconds: limit.as_secs(),
        };
        let permit = tokio::time::timeout_at(
            deadline,
            Arc::clone(&self.permits).acquire_many_owned(permits),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(|_| Pkcs11Error::Other("session pool closed".into()))?;
        let token = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            token.recover_if_needed()?;
            let _inside = token.module.enter();
            token.connect()?;
            let session = token.take_session()?;
            let result = call(&session);
            match &result {
                Err(error) if error.spoils_session() => {
                    tracing::warn!(
                        token = %token.label,
                        operation,
                        %error,
                        "closing PKCS#11 session after a session-level error"
                    );
                    if error.token_gone() || !token.still_present(&session) {
                        token.mark_gone();
                    }
                    session.close(&token.module);
                }
                _ => lock(&token.idle).push(session),
            }
            result
        });
        match tokio::time::timeout_at(deadline, task).await {
            Err(_) => {
                tracing::warn!(token = %self.label, operation, "PKCS#11 operation timed out");
                Err(timed_out())
            }
            Ok(Err(join_error)) => Err(Pkcs11Error::Other(format!(
                "PKCS#11 {operation} worker failed: {join_error}"
            ))),
            Ok(Ok(result)) => result,
        }
    }

    /// Whether the token still answers in its slot with its label and serial (asked
    /// after a session-level failure, e.g. SoftHSM2's `CKR_GENERAL_ERROR` for a token
    /// whose store vanished). Blocking; call inside the module.
    fn still_present(&self, session: &PooledSession) -> bool {
        let Ok(info) = session.get_session_info() else {
            return false;
        };
        self.module
            .pkcs11
            .get_token_info(info.slot_id())
            .is_ok_and(|info| {
                info.token_initialized()
                    && info.label() == self.label
                    && info.serial_number() == self.serial
            })
    }

    /// Logs the user in again through `session` (after a security-officer step logged
    /// the application out). Blocking.
    pub(crate) fn login_user(&self, session: &Session) -> Result<(), Pkcs11Error> {
        let pin = lock(&self.pin);
        self.module.login(session, &self.label, &self.serial, &pin)
    }

    /// When the token was marked gone: re-initialises the module (unless that happened
    /// since this token's connection was made, or too recently). Blocking; call outside
    /// the module.
    fn recover_if_needed(&self) -> Result<(), Pkcs11Error> {
        if !self.needs_reinit.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let seen = lock(&self.connection).generation;
        self.module.reinitialize(seen).map(|_| ()).inspect_err(|_| {
            self.needs_reinit.store(true, Ordering::Release);
        })
    }

    /// Makes sure the token is connected in the module's current generation: when not,
    /// forgets the sessions of the old one, finds the token again (same label and
    /// serial), reads the PIN again and logs in. Blocking; call inside the module.
    fn connect(&self) -> Result<(), Pkcs11Error> {
        let generation = self.module.generation();
        let mut connection = lock(&self.connection);
        if connection.generation == generation
            && connection.anchor.is_some()
            && !self.needs_reconnect.load(Ordering::Acquire)
        {
            return Ok(());
        }
        if let Some(anchor) = connection.anchor.take() {
            anchor.close(&self.module);
        }
        for session in std::mem::take(&mut *lock(&self.idle)) {
            session.close(&self.module);
        }
        connection.generation = generation;
        match self.reconnect(generation) {
            Ok(anchor) => {
                connection.anchor = Some(anchor);
                self.needs_reconnect.store(false, Ordering::Release);
                tracing::warn!(token = %self.label, serial = %self.serial, generation, "PKCS#11 token reconnected");
                Ok(())
            }
            Err(error) => {
                self.needs_reconnect.store(true, Ordering::Release);
                // A token not found may only show again after re-initialisation; a
                // refused PIN or an unreadable PIN file needs none.
                if matches!(error, Pkcs11Error::TokenNotFound { .. }) || error.token_gone() {
                    self.needs_reinit.store(true, Ordering::Release);
                }
                Err(error)
            }
        }
    }

    /// Finds the token, opens the anchor session and logs in. Blocking.
    fn reconnect(&self, generation: u64) -> Result<PooledSession, Pkcs11Error> {
        let pkcs11 = &self.module.pkcs11;
        let (slot, info) = find_token(pkcs11, &self.config, Some(&self.serial))?;
        if info.user_pin_locked() {
            return Err(Pkcs11Error::PinLocked {
                token: self.label.clone(),
            });
        }
        let mut pin = lock(&self.pin);
        if !self.pin_given {
            *pin = self.config.read_pin()?;
        }
        let mut refused = lock(&self.refused_pin);
        if refused.as_ref().is_some_and(|check| check.matches(&pin)) {
            return Err(Pkcs11Error::WrongPin {
                token: self.label.clone(),
            });
        }
        let anchor = open_session(pkcs11, slot, generation)?;
        match self.module.login(&anchor, &self.label, &self.serial, &pin) {
            Ok(()) => {
                *refused = None;
                Ok(anchor)
            }
            Err(error) => {
                if matches!(error, Pkcs11Error::WrongPin { .. }) {
                    tracing::error!(
                        token = %self.label,
                        serial = %self.serial,
                        "the token refused the PIN; it will not be tried again until the PIN source holds another one"
                    );
                    *refused = Some(PinCheck::new(&pin)?);
                }
                anchor.close(&self.module);
                Err(error)
            }
        }
    }

    /// An idle session of the current generation, or a new one (logged in again if the
    /// token logged the application out, e.g. after a reset). Call inside the module,
    /// connected.
    fn take_session(&self) -> Result<PooledSession, Pkcs11Error> {
        let generation = self.module.generation();
        while let Some(session) = lock(&self.idle).pop() {
            if session.generation == generation {
                return Ok(session);
            }
        }
        let slot = lock(&self.connection)
            .anchor
            .as_ref()
            .map(|anchor| anchor.get_session_info())
            .transpose()
            .map_err(Pkcs11Error::call("C_GetSessionInfo"))?
            .map(|info| info.slot_id())
            .ok_or_else(|| {
                Pkcs11Error::Other(format!("token '{}' is not connected", self.label))
            })?;
        let session = open_session(&self.module.pkcs11, slot, generation)?;
        let state = session
            .get_session_info()
            .map_err(Pkcs11Error::call("C_GetSessionInfo"))?
            .session_state();
        if !matches!(state, SessionState::RwUser | SessionState::RoUser) {
            let pin = lock(&self.pin);
            if let Err(error) = self.module.login(&session, &self.label, &self.serial, &pin) {
                session.close(&self.module);
                return Err(error);
            }
        }
        Ok(session)
    }
}

/// Opens a read-write session that is not closed on drop (see [`PooledSession`]).
fn open_session(
    pkcs11: &Pkcs11,
    slot: Slot,
    generation: u64,
) -> Result<PooledSession, Pkcs11Error> {
    let session = pkcs11
        .open_rw_session_no_drop(slot)
        .map_err(Pkcs11Error::call("C_OpenSession"))?;
    Ok(PooledSession {
        session,
        generation,
    })
}

/// The one initialised token with the configured label and `serial` (any serial when
/// `None`).
fn find_token(
    pkcs11: &Pkcs11,
    config: &Pkcs11Config,
    serial: Option<&str>,
) -> Result<(Slot, TokenInfo), Pkcs11Error> {
    let slots = pkcs11
        .get_slots_with_token()
        .map_err(Pkcs11Error::call("C_GetSlotList"))?;
    let mut labels_seen = Vec::new();
    let mut matches = Vec::new();
    for slot in slots {
        let info = pkcs11
            .get_token_info(slot)
            .map_err(Pkcs11Error::call("C_GetTokenInfo"))?;
        if !info.token_initialized() {
            continue;
        }
        labels_seen.push(info.label().to_owned());
        let serial_fits = serial.is_none_or(|serial| serial == info.serial_number());
        if info.label() == config.token_label && serial_fits {
            matches.push((slot, info));
        }
    }
    match matches.len() {
        0 => Err(Pkcs11Error::TokenNotFound {
            label: config.token_label.clone(),
            serial: serial.map(str::to_owned),
            module: config.module.clone(),
            labels_seen,
        }),
        1 => Ok(matches.remove(0)),
        _ => Err(Pkcs11Error::AmbiguousToken {
            label: config.token_label.clone(),
            serials: matches
                .iter()
                .map(|(_, info)| info.serial_number().to_owned())
                .collect(),
        }),
    }
}
