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
use crate::module::{self, Module, lock};

/// Key generation gets at least this long (RSA-4096 is slow on some tokens).
const MIN_GENERATE_TIMEOUT: Duration = Duration::from_secs(300);

/// An opened, logged-in token.
pub(crate) struct Token {
    pub(crate) module: Arc<Module>,
    pub(crate) slot: Slot,
    pub(crate) label: String,
    pub(crate) serial: String,
    /// Whether the token has its own random number generator (`CKF_RNG`).
    pub(crate) has_rng: bool,
    mechanisms: Vec<MechanismType>,
    pin: Pin,
    idle: Mutex<Vec<Session>>,
    permits: Arc<Semaphore>,
    pool_size: usize,
    timeout: Duration,
    /// A session held open for the provider's lifetime: PKCS#11 logs the application
    /// out when its last session on the token closes.
    _anchor: Mutex<Session>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("module", &self.module.path)
            .field("label", &self.label)
            .field("serial", &self.serial)
            .field("sessions", &self.pool_size)
            .field("timeout", &self.timeout)
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Loads the module, finds the token, logs in and probes the mechanisms. Blocking.
    pub(crate) fn open(config: &Pkcs11Config, pin: Option<Pin>) -> Result<Self, Pkcs11Error> {
        let pin = match pin {
            Some(pin) => pin,
            None => config.read_pin()?,
        };
        let module = module::load(&config.module)?;
        let pkcs11 = &module.pkcs11;
        // A token whose file another process is rewriting can be missing for a moment.
        let (slot, info) = module::retry_transient(
            "token lookup",
            |error| {
                module::is_transient(error) || matches!(error, Pkcs11Error::TokenNotFound { .. })
            },
            || find_token(pkcs11, config),
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
        let anchor = pkcs11
            .open_rw_session(slot)
            .map_err(Pkcs11Error::call("C_OpenSession"))?;
        module.login(&anchor, &label, &serial, &pin)?;
        tracing::info!(
            token = %label,
            serial = %serial,
            mechanisms = mechanisms.len(),
            "PKCS#11 token opened"
        );
        Ok(Self {
            slot,
            label,
            serial,
            has_rng,
            mechanisms,
            pin,
            idle: Mutex::new(Vec::with_capacity(config.sessions)),
            permits: Arc::new(Semaphore::new(config.sessions)),
            pool_size: config.sessions,
            timeout: config.timeout,
            _anchor: Mutex::new(anchor),
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

    /// Runs `call` with a pooled session on the blocking thread pool, within `limit`.
    pub(crate) async fn run<T, F>(
        self: &Arc<Self>,
        operation: &'static str,
        limit: Duration,
        call: F,
    ) -> Result<T, Pkcs11Error>
    where
        F: FnOnce(&Session) -> Result<T, Pkcs11Error> + Send + 'static,
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
        F: FnOnce(&Session) -> Result<T, Pkcs11Error> + Send + 'static,
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
        F: FnOnce(&Session) -> Result<T, Pkcs11Error> + Send + 'static,
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
                    drop(session);
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

    /// Logs the user in again through `session` (after a security-officer step logged
    /// the application out). Blocking.
    pub(crate) fn login_user(&self, session: &Session) -> Result<(), Pkcs11Error> {
        self.module
            .login(session, &self.label, &self.serial, &self.pin)
    }

    /// An idle session, or a new one (logged in again if the token logged the
    /// application out, e.g. after a reset).
    fn take_session(&self) -> Result<Session, Pkcs11Error> {
        if let Some(session) = lock(&self.idle).pop() {
            return Ok(session);
        }
        let session = self
            .module
            .pkcs11
            .open_rw_session(self.slot)
            .map_err(Pkcs11Error::call("C_OpenSession"))?;
        let state = session
            .get_session_info()
            .map_err(Pkcs11Error::call("C_GetSessionInfo"))?
            .session_state();
        if !matches!(state, SessionState::RwUser | SessionState::RoUser) {
            self.module
                .login(&session, &self.label, &self.serial, &self.pin)?;
        }
        Ok(session)
    }
}

/// The one initialised token with the configured label (and serial).
fn find_token(pkcs11: &Pkcs11, config: &Pkcs11Config) -> Result<(Slot, TokenInfo), Pkcs11Error> {
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
        let serial_fits = config
            .token_serial
            .as_deref()
            .is_none_or(|serial| serial == info.serial_number());
        if info.label() == config.token_label && serial_fits {
            matches.push((slot, info));
        }
    }
    match matches.len() {
        0 => Err(Pkcs11Error::TokenNotFound {
            label: config.token_label.clone(),
            serial: config.token_serial.clone(),
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
