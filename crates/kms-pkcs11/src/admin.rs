//! Token administration for the offline CA ceremony: listing slots and initialising a
//! token (`C_InitToken`, then the user PIN), through the process-wide module registry.
//!
//! `C_InitToken` on an initialised token erases it without asking, so
//! [`initialize_token`] refuses any token that reports `CKF_TOKEN_INITIALIZED`, checked
//! again immediately before the call. The functions here block: call them from
//! `spawn_blocking` in async code.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use cryptoki::context::Pkcs11;
use cryptoki::error::RvError;
use cryptoki::session::UserType;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use crate::module::{self, Module, TOKEN_STORE, is_transient, lock, retry_transient};
use crate::{Pin, Pkcs11Error};

/// Held while a token is initialised and while slots are listed, so that a listing in
/// this process never sees a token halfway through initialisation.
static ADMIN: Mutex<()> = Mutex::new(());

/// PKCS#11 token labels are at most 32 bytes.
const MAX_LABEL_BYTES: usize = 32;
/// Shortest PIN accepted for a new token, in characters.
const MIN_PIN_CHARS: usize = 8;

/// A slot of a PKCS#11 module and the token in it, as `C_GetSlotInfo` and
/// `C_GetTokenInfo` report them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    /// The slot id. It can change between processes and, with SoftHSM2, when a token
    /// is initialised: find tokens again by serial.
    pub slot_id: u64,
    /// Whether a token is in the slot. The fields below are empty or false when not.
    pub token_present: bool,
    /// Whether the token is initialised (`CKF_TOKEN_INITIALIZED`).
    pub initialized: bool,
    /// The token label (trailing padding removed).
    pub label: String,
    /// The token serial number.
    pub serial: String,
    /// The token manufacturer.
    pub manufacturer: String,
    /// The token model.
    pub model: String,
    /// Whether the token has its own random number generator (`CKF_RNG`).
    pub has_rng: bool,
}

/// Which token [`initialize_token`] works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSelector {
    /// The token with this serial number (an HSM partition or smart card known in
    /// advance).
    Serial(String),
    /// The first present token that is not initialised, in slot order (SoftHSM2 always
    /// offers one).
    FirstUninitialized,
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Serial(serial) => write!(f, "the token with serial {serial}"),
            Self::FirstUninitialized => f.write_str("the first uninitialised token"),
        }
    }
}

/// Lists every slot of the module at `module` and the token in it, loading and
/// initialising the module once per process. Blocking.
pub fn list_slots(module: &Path) -> Result<Vec<SlotInfo>, Pkcs11Error> {
    let module = module::load(module)?;
    let _inside = module.enter();
    let _admin = lock(&ADMIN);
    // A token whose file another process is rewriting can be unreadable for a moment.
    let listed = retry_transient("slot listing", is_transient, || slots(&module.pkcs11))?;
    Ok(listed.into_iter().map(|(_, info)| info).collect())
}

/// Initialises the token chosen by `selector`: `C_InitToken` with `so_pin` and
/// `label`, then, logged in as security officer, `C_InitPIN` with `user_pin`. Returns
/// the token as listed afterwards (SoftHSM2 gives a freshly initialised token a new
/// slot id and its serial number). Blocking.
///
/// Refuses, with [`Pkcs11Error::TokenAlreadyInitialized`], a token that is already
/// initialised: `C_InitToken` would erase it. The label must be 1 to 32 bytes without
/// leading or trailing blanks; both PINs at least 8 characters, and different.
pub fn initialize_token(
    module: &Path,
    selector: &TokenSelector,
    label: &str,
    so_pin: &Pin,
    user_pin: &Pin,
) -> Result<SlotInfo, Pkcs11Error> {
    check_label(label)?;
    check_pin("security officer PIN", so_pin)?;
    check_pin("user PIN", user_pin)?;
    if so_pin.expose() == user_pin.expose() {
        return Err(Pkcs11Error::InvalidInput(
            "the security officer PIN and the user PIN must differ".into(),
        ));
    }
    if matches!(selector, TokenSelector::Serial(serial) if serial.trim().is_empty()) {
        return Err(Pkcs11Error::InvalidInput(
            "the serial of the token to initialise is empty".into(),
        ));
    }
    let module = module::load(module)?;
    let _inside = module.enter();
    let pkcs11 = &module.pkcs11;
    // No other thread of this process creates objects or logs in meanwhile, and two
    // initialisations cannot pick the same free token.
    let _admin = lock(&ADMIN);
    let _store = lock(&TOKEN_STORE);
    let before = retry_transient("slot listing", is_transient, || slots(pkcs11))?;
    let slot = select(&module, &before, selector)?;

    // Check again immediately before the call that would erase an initialised token.
    let info = pkcs11
        .get_token_info(slot)
        .map_err(Pkcs11Error::call("C_GetTokenInfo"))?;
    if info.token_initialized() {
        return Err(Pkcs11Error::TokenAlreadyInitialized {
            label: info.label().to_owned(),
            serial: info.serial_number().to_owned(),
        });
    }
    for (what, pin) in [("security officer PIN", so_pin), ("user PIN", user_pin)] {
        let len = pin.expose().len();
        if len < info.min_pin_length() || len > info.max_pin_length() {
            return Err(Pkcs11Error::InvalidInput(format!(
                "the {what} must be {} to {} bytes long for this token",
                info.min_pin_length(),
                info.max_pin_length()
            )));
        }
    }
    let known: HashSet<&str> = before
        .iter()
        .filter(|(_, listed)| listed.initialized)
        .map(|(_, listed)| listed.serial.as_str())
        .collect();
    pkcs11
        .init_token(slot, &AuthPin::new(so_pin.expose().into()), label)
        .map_err(Pkcs11Error::call("C_InitToken"))?;

    // Find the token again: initialised, with our label, and not there before.
    let after = retry_transient("slot listing", is_transient, || slots(pkcs11))?;
    let fresh: Vec<&(Slot, SlotInfo)> = after
        .iter()
        .filter(|(_, listed)| {
            listed.initialized && listed.label == label && !known.contains(listed.serial.as_str())
        })
        .collect();
    let (fresh_slot, serial) = match fresh.as_slice() {
        [(slot, listed)] => (*slot, listed.serial.clone()),
        _ => {
            return Err(Pkcs11Error::Other(format!(
                "token '{label}' was initialised (C_InitToken) but {} new tokens with that label are listed afterwards; set its user PIN by hand",
                fresh.len()
            )));
        }
    };
    tracing::info!(token = label, serial = %serial, "initialised PKCS#11 token");

    set_user_pin(pkcs11, fresh_slot, so_pin, user_pin).map_err(|error| match error {
        Pkcs11Error::WrongSoPin { .. } => Pkcs11Error::WrongSoPin {
            token: label.to_owned(),
        },
        other => Pkcs11Error::Other(format!(
            "token '{label}' (serial {serial}) was initialised, but setting its user PIN failed: {other}"
        )),
    })?;
    tracing::info!(token = label, serial = %serial, "set the user PIN of PKCS#11 token");

    let listed = retry_transient("slot listing", is_transient, || slots(pkcs11))?;
    listed
        .into_iter()
        .map(|(_, listed)| listed)
        .find(|listed| listed.serial == serial && listed.initialized)
        .ok_or_else(|| {
            Pkcs11Error::Other(format!(
                "token '{label}' (serial {serial}) was initialised but is no longer listed"
            ))
        })
}

/// Logs in as security officer on the fresh token, sets the user PIN, logs out.
fn set_user_pin(
    pkcs11: &Pkcs11,
    slot: Slot,
    so_pin: &Pin,
    user_pin: &Pin,
) -> Result<(), Pkcs11Error> {
    let session = pkcs11
        .open_rw_session(slot)
        .map_err(Pkcs11Error::call("C_OpenSession"))?;
    session
        .login(UserType::So, Some(&AuthPin::new(so_pin.expose().into())))
        .map_err(Pkcs11Error::call("C_Login"))
        .map_err(|error| match error.return_value() {
            Some(RvError::PinIncorrect) => Pkcs11Error::WrongSoPin {
                token: String::new(),
            },
            _ => error,
        })?;
    let result = session
        .init_pin(&AuthPin::new(user_pin.expose().into()))
        .map_err(Pkcs11Error::call("C_InitPIN"));
    let logout = session.logout().map_err(Pkcs11Error::call("C_Logout"));
    result.and(logout)
}

/// Every slot with its token info, in the module's order.
fn slots(pkcs11: &Pkcs11) -> Result<Vec<(Slot, SlotInfo)>, Pkcs11Error> {
    let mut listed = Vec::new();
    for slot in pkcs11
        .get_all_slots()
        .map_err(Pkcs11Error::call("C_GetSlotList"))?
    {
        let slot_info = pkcs11
            .get_slot_info(slot)
            .map_err(Pkcs11Error::call("C_GetSlotInfo"))?;
        let mut info = SlotInfo {
            slot_id: slot.id(),
            token_present: slot_info.token_present(),
            initialized: false,
            label: String::new(),
            serial: String::new(),
            manufacturer: String::new(),
            model: String::new(),
            has_rng: false,
        };
        if info.token_present {
            let token = match pkcs11.get_token_info(slot) {
                Ok(token) => token,
                // Removed between the two calls: list the slot as empty.
                Err(cryptoki::error::Error::Pkcs11(RvError::TokenNotPresent, _)) => {
                    info.token_present = false;
                    listed.push((slot, info));
                    continue;
                }
                Err(error) => return Err(Pkcs11Error::call("C_GetTokenInfo")(error)),
            };
            info.initialized = token.token_initialized();
            info.label = token.label().to_owned();
            info.serial = token.serial_number().to_owned();
            info.manufacturer = token.manufacturer_id().to_owned();
            info.model = token.model().to_owned();
            info.has_rng = token.rng();
        }
        listed.push((slot, info));
    }
    Ok(listed)
}

/// The slot of the token `selector` designates, refusing initialised tokens.
fn select(
    module: &Module,
    listed: &[(Slot, SlotInfo)],
    selector: &TokenSelector,
) -> Result<Slot, Pkcs11Error> {
    let not_found = || Pkcs11Error::NoTokenToInitialize {
        wanted: selector.to_string(),
        module: module.path.clone(),
    };
    let present = listed.iter().filter(|(_, info)| info.token_present);
    let (slot, info) = match selector {
        TokenSelector::Serial(serial) => {
            let matching: Vec<_> = present.filter(|(_, info)| &info.serial == serial).collect();
            match matching.as_slice() {
                [] => return Err(not_found()),
                [one] => *one,
                several => {
                    return Err(Pkcs11Error::NoTokenToInitialize {
                        wanted: format!("{selector} ({} tokens carry it)", several.len()),
                        module: module.path.clone(),
                    });
                }
            }
        }
        TokenSelector::FirstUninitialized => present
            .into_iter()
            .find(|(_, info)| !info.initialized)
            .ok_or_else(not_found)?,
    };
    if info.initialized {
        return Err(Pkcs11Error::TokenAlreadyInitialized {
            label: info.label.clone(),
            serial: info.serial.clone(),
        });
    }
    Ok(*slot)
}

/// A token label `C_InitToken` can store and a later lookup finds again: 1 to 32 bytes
/// (the field is blank-padded, so no leading or trailing blanks), no control characters.
fn check_label(label: &str) -> Result<(), Pkcs11Error> {
    let refuse = |why: &str| Err(Pkcs11Error::InvalidInput(format!("token label {why}")));
    if label.is_empty() || label.len() > MAX_LABEL_BYTES {
        return refuse(&format!("must be 1 to {MAX_LABEL_BYTES} bytes long"));
    }
    if label.trim() != label {
        return refuse("must not start or end with blanks");
    }
    if label.chars().any(char::is_control) {
        return refuse("must not contain control characters");
    }
    Ok(())
}

/// A PIN long enough for a new token. The message never contains the PIN.
fn check_pin(what: &str, pin: &Pin) -> Result<(), Pkcs11Error> {
    if pin.expose().chars().count() < MIN_PIN_CHARS {
        return Err(Pkcs11Error::InvalidInput(format!(
            "the {what} must be at least {MIN_PIN_CHARS} characters long"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_must_survive_the_padded_field() {
        assert!(check_label("root-2025").is_ok());
        assert!(check_label(&"x".repeat(32)).is_ok());
        for bad in ["", " root", "root ", "ro\not", &"x".repeat(33)] {
            assert!(check_label(bad).is_err(), "{bad:?}");
        }
        // 32 bytes, not 32 characters.
        assert!(check_label(&"é".repeat(17)).is_err());
    }

    #[test]
    fn short_pins_are_refused_without_echoing_them() {
        let error = check_pin("user PIN", &Pin::new("1234567".into()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("at least 8"), "{error}");
        assert!(!error.contains("1234567"), "{error}");
        assert!(check_pin("user PIN", &Pin::new("12345678".into())).is_ok());
    }

    #[test]
    fn selectors_describe_themselves() {
        assert_eq!(
            TokenSelector::Serial("8d1f".into()).to_string(),
            "the token with serial 8d1f"
        );
        assert_eq!(
            TokenSelector::FirstUninitialized.to_string(),
            "the first uninitialised token"
        );
    }
}
