//! PKCS#11 modules: loaded and initialised once per process, found again by path.
//!
//! `C_Initialize` may run only once per module and process (until `C_Finalize`), and
//! concurrent initialise/finalise calls crash some modules, so every provider opened in
//! the process shares one [`Module`] per canonical module path from a process-global
//! registry. A module lives until the process exits. A child process made by `fork()`
//! must not reuse it.
//!
//! Recovery: some modules never notice a token that comes back after it was removed
//! (SoftHSM2 keeps a vanished token invalid until it is initialised again), so
//! [`Module::reinitialize`] finalises and initialises the module in place, at most once
//! per [`REINITIALIZE_PAUSE`], while no other call of the process is inside the module.
//! Each initialisation is a new *generation*: sessions, logins and object handles of an
//! older one are void, and the tokens open again on their next operation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CryptokiError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;

use crate::Pkcs11Error;
use crate::config::Pin;

/// Modules loaded in this process, by canonical path.
static MODULES: LazyLock<Mutex<HashMap<PathBuf, Arc<Module>>>> = LazyLock::new(Default::default);

/// Serialises, in the whole process, the calls that write a token's persistent store:
/// object creation and destruction, and login (SoftHSM2 records login outcomes in its
/// token file). SoftHSM2's file store fails such writes with `CKR_GENERAL_ERROR` when
/// threads race. Calls that only use existing objects (signing) run in parallel.
pub(crate) static TOKEN_STORE: Mutex<()> = Mutex::new(());

/// Attempts made by [`retry_transient`].
const ATTEMPTS: u32 = 5;
/// First pause between attempts; doubled after each.
const FIRST_PAUSE: Duration = Duration::from_millis(20);

/// Runs `call` again (up to five times, pausing 20, 40, 80, 160 ms) while it fails with
/// an error `retryable` accepts. Blocking.
///
/// For calls that write the token's store or read its token file. SoftHSM2's file store
/// is not safe across processes: while another process writes it, a token can vanish
/// from the slot list, and `C_Login` or object creation fail with `CKR_GENERAL_ERROR`
/// or `CKR_FUNCTION_FAILED` — codes for which PKCS#11 itself says a retry may succeed.
pub(crate) fn retry_transient<T>(
    what: &str,
    retryable: impl Fn(&Pkcs11Error) -> bool,
    mut call: impl FnMut() -> Result<T, Pkcs11Error>,
) -> Result<T, Pkcs11Error> {
    let mut pause = FIRST_PAUSE;
    for attempt in 1..ATTEMPTS {
        match call() {
            Err(error) if retryable(&error) => {
                tracing::debug!(%error, attempt, "{what}: transient failure, retrying");
                std::thread::sleep(pause);
                pause *= 2;
            }
            result => return result,
        }
    }
    call()
}

/// Errors worth one more try: the module's "something failed, try again" codes.
pub(crate) fn is_transient(error: &Pkcs11Error) -> bool {
    matches!(
        error.return_value(),
        Some(RvError::GeneralError | RvError::FunctionFailed)
    )
}

/// Locks a mutex, going on after a panic elsewhere: the data guarded here (registries,
/// idle sessions) stays consistent at every await-free step.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Shortest time between two re-initialisations of a module: each one voids every
/// session of every token the process has open through it.
pub(crate) const REINITIALIZE_PAUSE: Duration = Duration::from_secs(5);

/// Longest wait of a re-initialisation for the calls in flight to return.
const REINITIALIZE_WAIT: Duration = Duration::from_secs(10);

/// A loaded and initialised PKCS#11 module.
pub(crate) struct Module {
    /// The module's canonical path.
    pub(crate) path: PathBuf,
    /// The module's function table.
    pub(crate) pkcs11: Pkcs11,
    /// Per token serial: a keyed digest of the PIN this process logged in with.
    logins: Mutex<HashMap<String, PinCheck>>,
    /// How many times the module was initialised (starts at 1).
    generation: AtomicU64,
    /// Held shared by every call into the module, exclusively by a re-initialisation.
    calls: RwLock<()>,
    /// When the module was last re-initialised.
    reinitialized_at: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module").field("path", &self.path).finish()
    }
}

/// Loads and initialises the module at `path`, or returns the one already loaded.
pub(crate) fn load(path: &Path) -> Result<Arc<Module>, Pkcs11Error> {
    let canonical = std::fs::canonicalize(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Pkcs11Error::ModuleNotFound {
            path: path.to_path_buf(),
        },
        _ => Pkcs11Error::ModuleLoad {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })?;
    let mut modules = lock(&MODULES);
    if let Some(module) = modules.get(&canonical) {
        return Ok(Arc::clone(module));
    }
    let pkcs11 = Pkcs11::new(&canonical).map_err(|e| Pkcs11Error::ModuleLoad {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // OS locking: the module may be called from several threads at once (the session
    // pool); without it SoftHSM2 crashes under concurrent use.
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        // Someone else in this process initialised it (another library): share it.
        Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(Pkcs11Error::call("C_Initialize")(e)),
    }
    tracing::debug!(module = %canonical.display(), "PKCS#11 module initialised");
    let module = Arc::new(Module {
        path: canonical.clone(),
        pkcs11,
        logins: Mutex::new(HashMap::new()),
        generation: AtomicU64::new(1),
        calls: RwLock::new(()),
        reinitialized_at: Mutex::new(None),
    });
    modules.insert(canonical, Arc::clone(&module));
    Ok(module)
}

impl Module {
    /// The current generation: how many times the module was initialised.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Enters the module for a call: a re-initialisation waits until the guard drops.
    /// Never take it twice on one thread.
    pub(crate) fn enter(&self) -> RwLockReadGuard<'_, ()> {
        self.calls.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Finalises and initialises the module again, unless it was re-initialised since
    /// generation `seen` was read or less than [`REINITIALIZE_PAUSE`] ago. Waits (at
    /// most ten seconds) until no call is inside the module. Returns the generation now
    /// current. Blocking; the caller must not be inside the module.
    pub(crate) fn reinitialize(&self, seen: u64) -> Result<u64, Pkcs11Error> {
        let started = Instant::now();
        let _exclusive = loop {
            match self.calls.try_write() {
                Ok(guard) => break guard,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => break poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    if started.elapsed() > REINITIALIZE_WAIT {
                        return Err(Pkcs11Error::Other(format!(
                            "PKCS#11 module {} is busy: calls still running after {} s, not re-initialised",
                            self.path.display(),
                            REINITIALIZE_WAIT.as_secs()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        let current = self.generation();
        if current != seen {
            return Ok(current);
        }
        let mut last = lock(&self.reinitialized_at);
        if last.is_some_and(|at| at.elapsed() < REINITIALIZE_PAUSE) {
            return Ok(current);
        }
        *last = Some(Instant::now());
        lock(&self.logins).clear();
        match self.pkcs11.clone().finalize() {
            Ok(()) | Err(CryptokiError::Pkcs11(RvError::CryptokiNotInitialized, _)) => {}
            Err(e) => return Err(Pkcs11Error::call("C_Finalize")(e)),
        }
        // From here on the old generation is void even if initialising fails: the
        // next attempt initialises again.
        let next = current + 1;
        self.generation.store(next, Ordering::Release);
        match self
            .pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        {
            Ok(()) | Err(CryptokiError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                // Let the next attempt try again at once.
                *last = None;
                return Err(Pkcs11Error::call("C_Initialize")(e));
            }
        }
        tracing::warn!(
            module = %self.path.display(),
            generation = next,
            "PKCS#11 module re-initialised to recover a token"
        );
        Ok(next)
    }

    /// Logs the user in on the token with serial `serial` through `session`.
    ///
    /// PKCS#11 login is per application, not per session: once one session logged in,
    /// every session of the process is, and `C_Login` answers
    /// `CKR_USER_ALREADY_LOGGED_IN` without looking at the PIN. So that a provider
    /// opened with a wrong PIN still fails while another one is logged in, the PIN of
    /// the first login is remembered as a keyed digest and compared.
    pub(crate) fn login(
        &self,
        session: &Session,
        label: &str,
        serial: &str,
        pin: &Pin,
    ) -> Result<(), Pkcs11Error> {
        let mut logins = lock(&self.logins);
        let _store = lock(&TOKEN_STORE);
        let auth = AuthPin::new(pin.expose().into());
        let attempt = retry_transient("C_Login", is_transient, || {
            session
                .login(UserType::User, Some(&auth))
                .map_err(Pkcs11Error::call("C_Login"))
        });
        match attempt {
            Ok(()) => {
                logins.insert(serial.to_owned(), PinCheck::new(pin)?);
                tracing::info!(token = label, serial, "logged in to PKCS#11 token");
                Ok(())
            }
            Err(error) if error.return_value() == Some(RvError::UserAlreadyLoggedIn) => {
                match logins.get(serial) {
                    Some(check) if !check.matches(pin) => Err(Pkcs11Error::WrongPin {
                        token: label.to_owned(),
                    }),
                    _ => Ok(()),
                }
            }
            Err(error) if error.return_value() == Some(RvError::PinIncorrect) => {
                Err(Pkcs11Error::WrongPin {
                    token: label.to_owned(),
                })
            }
            Err(error) if error.return_value() == Some(RvError::PinLocked) => {
                Err(Pkcs11Error::PinLocked {
                    token: label.to_owned(),
                })
            }
            Err(error) => Err(error),
        }
    }
}

/// HMAC-SHA-256 of a PIN under a random key made for it: lets a later login be
/// compared with the first without keeping the PIN itself in the registry.
pub(crate) struct PinCheck {
    key: aws_lc_rs::hmac::Key,
    tag: Vec<u8>,
}

impl PinCheck {
    pub(crate) fn new(pin: &Pin) -> Result<Self, Pkcs11Error> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let key = aws_lc_rs::hmac::Key::generate(aws_lc_rs::hmac::HMAC_SHA256, &rng)
            .map_err(|_| Pkcs11Error::Other("random generator failed".into()))?;
        let tag = aws_lc_rs::hmac::sign(&key, pin.expose().as_bytes())
            .as_ref()
            .to_vec();
        Ok(Self { key, tag })
    }

    pub(crate) fn matches(&self, pin: &Pin) -> bool {
        aws_lc_rs::hmac::verify(&self.key, pin.expose().as_bytes(), &self.tag).is_ok()
    }
}
