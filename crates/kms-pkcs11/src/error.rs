//! The crate's one error type, and how PKCS#11 return codes are named in messages.

use std::path::PathBuf;

use cryptoki::context::Function;
use cryptoki::error::{Error as CryptokiError, RvError};

/// Everything that can go wrong in the PKCS#11 provider.
///
/// Each message names what failed (module path, token label, key reference, PKCS#11
/// function and return code) and never contains a PIN or key bytes. Converted into
/// [`carimbo_kms::Error`] by `From`: an authentication failure while unwrapping becomes
/// [`carimbo_kms::Error::Unauthentic`], a missing mechanism or backup support
/// [`carimbo_kms::Error::NotSupported`], everything else
/// [`carimbo_kms::Error::Provider`] with this error as its source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The config file could not be read or is invalid.
    #[error("PKCS#11 config {origin}: {message}")]
    Config {
        /// The file (or `<text>` for a config given as a string).
        origin: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The PKCS#11 module (shared library) does not exist.
    #[error("PKCS#11 module {} not found", path.display())]
    ModuleNotFound {
        /// The path from the config.
        path: PathBuf,
    },
    /// The PKCS#11 module exists but cannot be loaded.
    #[error("cannot load PKCS#11 module {}: {reason}", path.display())]
    ModuleLoad {
        /// The path from the config.
        path: PathBuf,
        /// Why loading failed.
        reason: String,
    },
    /// No initialised token has the configured label (and serial).
    #[error(
        "no PKCS#11 token labelled '{label}'{} in {} (tokens found: {})",
        serial.as_ref().map(|s| format!(" with serial {s}")).unwrap_or_default(),
        module.display(),
        if labels_seen.is_empty() { "none".to_owned() } else { labels_seen.iter().map(|l| format!("'{l}'")).collect::<Vec<_>>().join(", ") }
    )]
    TokenNotFound {
        /// The configured label.
        label: String,
        /// The configured serial, if any.
        serial: Option<String>,
        /// The module searched.
        module: PathBuf,
        /// Labels of the initialised tokens that were found.
        labels_seen: Vec<String>,
    },
    /// Several tokens carry the label and no serial was configured.
    #[error(
        "{} PKCS#11 tokens are labelled '{label}' (serials {}); set `token-serial` to choose one",
        serials.len(),
        serials.join(", ")
    )]
    AmbiguousToken {
        /// The configured label.
        label: String,
        /// Serials of the tokens carrying it.
        serials: Vec<String>,
    },
    /// The token refused the PIN (`CKR_PIN_INCORRECT`).
    #[error("wrong PIN for token '{token}' (CKR_PIN_INCORRECT)")]
    WrongPin {
        /// Token label.
        token: String,
    },
    /// The token's user PIN is locked after too many failures (`CKR_PIN_LOCKED`).
    #[error(
        "the user PIN of token '{token}' is locked (CKR_PIN_LOCKED); the token's security officer must reset it"
    )]
    PinLocked {
        /// Token label.
        token: String,
    },
    /// The PIN file is missing, unreadable, empty or readable by group or others.
    #[error("PIN file {}: {reason}", path.display())]
    PinFile {
        /// The configured `pin-file`.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The PIN environment variable is not set, empty or not UTF-8.
    #[error("PIN environment variable {variable} is {reason}")]
    PinEnv {
        /// The configured `pin-env`.
        variable: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No key object with the reference's id exists on the token.
    #[error("key {reference} not found on token '{token}'")]
    KeyNotFound {
        /// The key reference.
        reference: String,
        /// Token label.
        token: String,
    },
    /// A key reference that this provider cannot resolve (other provider, other token,
    /// malformed id).
    #[error("key reference {reference}: {reason}")]
    BadReference {
        /// The key reference.
        reference: String,
        /// Why it was refused.
        reason: String,
    },
    /// The token lacks a mechanism an operation needs.
    #[error("token '{token}' does not support {mechanism} (needed for {needed_for})")]
    MechanismUnsupported {
        /// Token label.
        token: String,
        /// The mechanism, e.g. `CKM_AES_GCM`.
        mechanism: String,
        /// What it is needed for, e.g. `envelope keys`.
        needed_for: String,
    },
    /// A key object exists but is not what the reference promised, or a freshly
    /// generated key failed its checks (extractable, wrong size, bad self-signature).
    #[error("key {reference}: {reason}")]
    InvalidKey {
        /// The key reference.
        reference: String,
        /// What is wrong.
        reason: String,
    },
    /// Unwrapping failed authentication: wrong key, associated data, nonce, or a
    /// tampered ciphertext.
    #[error("authentication failed: {0}")]
    Unauthentic(String),
    /// An input was refused before reaching the token (e.g. empty associated data).
    #[error("{0}")]
    InvalidInput(String),
    /// An operation did not finish within the configured time.
    #[error("{operation} on token '{token}' timed out after {seconds} s")]
    Timeout {
        /// The operation (`sign`, `generate`, ...).
        operation: &'static str,
        /// Token label.
        token: String,
        /// The limit that was exceeded.
        seconds: u64,
    },
    /// A PKCS#11 function failed.
    #[error("{function} failed: {}", describe(source))]
    Pkcs11 {
        /// The PKCS#11 function, e.g. `C_Sign`.
        function: &'static str,
        /// The error reported by the module.
        #[source]
        source: CryptokiError,
    },
    /// The token chosen for initialisation is already initialised. `C_InitToken` on it
    /// would erase every key it holds, so it is refused.
    #[error(
        "token '{label}' (serial {serial}) is already initialised; refusing C_InitToken, which would erase it"
    )]
    TokenAlreadyInitialized {
        /// The token's current label.
        label: String,
        /// The token's serial number.
        serial: String,
    },
    /// No present token fits the selector given for initialisation.
    #[error("no token to initialise in {}: {wanted}", module.display())]
    NoTokenToInitialize {
        /// What was asked for (serial, or the first uninitialised token).
        wanted: String,
        /// The module searched.
        module: PathBuf,
    },
    /// The token refused the security officer PIN (`CKR_PIN_INCORRECT`).
    #[error("wrong security officer PIN for token '{token}' (CKR_PIN_INCORRECT)")]
    WrongSoPin {
        /// Token label.
        token: String,
    },
    /// An object with the label already exists on the token; ceremony keys need a
    /// label of their own.
    #[error("label '{label}' is already in use on token '{token}'")]
    LabelInUse {
        /// The label asked for.
        label: String,
        /// Token label.
        token: String,
    },
    /// Several key objects carry the label looked for.
    #[error("{count} key objects are labelled '{label}' on token '{token}'")]
    AmbiguousLabel {
        /// The label looked for.
        label: String,
        /// Token label.
        token: String,
        /// How many private or secret key objects carry it.
        count: usize,
    },
    /// The token cannot make or restore wrapped backups (mechanism missing, or it
    /// refused an operation the backup needs).
    #[error("token '{token}' cannot back up keys by wrapping: {reason}")]
    BackupUnsupported {
        /// Token label.
        token: String,
        /// What is missing or was refused, with the PKCS#11 function and code.
        reason: String,
    },
    /// A key that may not be backed up: generated non-extractable
    /// ([`crate::BackupPolicy::None`]), or extractable without the trusted-wrapping
    /// restriction.
    #[error("key {reference} cannot be backed up: {reason}")]
    NotBackupable {
        /// The key reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The backup wrapping key is missing or not what a backup wrapping key must be
    /// (a trusted, sensitive, non-extractable AES key).
    #[error("backup wrapping key '{label}' on token '{token}': {reason}")]
    WrappingKey {
        /// The wrapping key's label.
        label: String,
        /// Token label.
        token: String,
        /// What is wrong.
        reason: String,
    },
    /// The token has no random number generator (`CKF_RNG` is not set).
    #[error("token '{token}' has no random number generator")]
    NoRandomGenerator {
        /// Token label.
        token: String,
    },
    /// The token is no longer in its slot (removed, replaced or reset); the provider
    /// reconnects on its next operation.
    #[error("token '{token}' (serial {serial}) is no longer in its slot")]
    TokenGone {
        /// Token label.
        token: String,
        /// Token serial.
        serial: String,
    },
    /// Something outside PKCS#11 failed (random generator, a worker thread).
    #[error("{0}")]
    Other(String),
}

impl Pkcs11Error {
    /// Wraps an error returned by a cryptoki call that ran `function` (or, when the
    /// error names a more precise function, that one).
    pub(crate) fn call(function: &'static str) -> impl FnOnce(CryptokiError) -> Self {
        move |source| {
            let function = match &source {
                CryptokiError::Pkcs11(_, called) => function_name(*called).unwrap_or(function),
                _ => function,
            };
            Self::Pkcs11 { function, source }
        }
    }

    /// The PKCS#11 return code, when this is a failed PKCS#11 call.
    pub(crate) fn return_value(&self) -> Option<RvError> {
        match self {
            Self::Pkcs11 {
                source: CryptokiError::Pkcs11(rv, _),
                ..
            } => Some(*rv),
            _ => None,
        }
    }

    /// Whether the session the error came from must be closed rather than reused: the
    /// session, the login or the token itself is gone or in an unknown state.
    pub(crate) fn spoils_session(&self) -> bool {
        self.token_gone()
            || matches!(
                self.return_value(),
                Some(
                    RvError::SessionCount
                        | RvError::DeviceMemory
                        | RvError::GeneralError
                        | RvError::OperationActive
                        | RvError::FunctionCanceled
                )
            )
    }

    /// Whether the error says the token itself is gone or no longer knows this
    /// process (removed, module reset, sessions or login lost), so that it must be
    /// found and logged in again.
    pub(crate) fn token_gone(&self) -> bool {
        matches!(self, Self::TokenGone { .. })
            || matches!(
                self.return_value(),
                Some(
                    RvError::SessionHandleInvalid
                        | RvError::SessionClosed
                        | RvError::DeviceError
                        | RvError::DeviceRemoved
                        | RvError::TokenNotPresent
                        | RvError::TokenNotRecognized
                        | RvError::CryptokiNotInitialized
                        | RvError::UserNotLoggedIn
                )
            )
    }

    /// Whether the token reported that a key handle no longer exists.
    pub(crate) fn is_missing_object(&self) -> bool {
        matches!(
            self.return_value(),
            Some(RvError::KeyHandleInvalid | RvError::ObjectHandleInvalid)
        )
    }
}

impl From<Pkcs11Error> for carimbo_kms::Error {
    fn from(error: Pkcs11Error) -> Self {
        match error {
            Pkcs11Error::Unauthentic(what) => Self::Unauthentic(what),
            Pkcs11Error::MechanismUnsupported {
                token,
                mechanism,
                needed_for,
            } => Self::NotSupported {
                provider: crate::PROVIDER_ID.to_owned(),
                what: format!("{mechanism} on token '{token}' (needed for {needed_for})"),
            },
            Pkcs11Error::BackupUnsupported { token, reason } => Self::NotSupported {
                provider: crate::PROVIDER_ID.to_owned(),
                what: format!("wrapped backup on token '{token}': {reason}"),
            },
            other => Self::provider(crate::PROVIDER_ID, other),
        }
    }
}

/// A short description of a cryptoki error: the `CKR_*` name for PKCS#11 failures.
fn describe(error: &CryptokiError) -> String {
    match error {
        CryptokiError::Pkcs11(rv, _) => return_code_name(*rv),
        other => other.to_string(),
    }
}

/// The `CKR_*` name of a PKCS#11 return code (`PinIncorrect` → `CKR_PIN_INCORRECT`).
pub(crate) fn return_code_name(rv: RvError) -> String {
    match rv {
        RvError::VendorDefined(code) => format!("CKR_VENDOR_DEFINED ({code:#x})"),
        // Codes newer than the binding, named by their PKCS#11 3.x value.
        RvError::UnknownErrorCode(0x35) => "CKR_AEAD_DECRYPT_FAILED".to_owned(),
        RvError::UnknownErrorCode(code) => format!("CKR {code:#x}"),
        other => {
            let camel = format!("{other:?}");
            let mut name = String::from("CKR");
            for c in camel.chars() {
                if c.is_ascii_uppercase() {
                    name.push('_');
                }
                name.push(c.to_ascii_uppercase());
            }
            name
        }
    }
}

/// The C name of the cryptoki functions this crate calls.
fn function_name(function: Function) -> Option<&'static str> {
    Some(match function {
        Function::Initialize => "C_Initialize",
        Function::GetSlotList => "C_GetSlotList",
        Function::GetSlotInfo => "C_GetSlotInfo",
        Function::GetTokenInfo => "C_GetTokenInfo",
        Function::InitToken => "C_InitToken",
        Function::InitPIN => "C_InitPIN",
        Function::Logout => "C_Logout",
        Function::CreateObject => "C_CreateObject",
        Function::SetAttributeValue => "C_SetAttributeValue",
        Function::WrapKey => "C_WrapKey",
        Function::UnwrapKey => "C_UnwrapKey",
        Function::GenerateRandom => "C_GenerateRandom",
        Function::CloseSession => "C_CloseSession",
        Function::GetMechanismList => "C_GetMechanismList",
        Function::OpenSession => "C_OpenSession",
        Function::GetSessionInfo => "C_GetSessionInfo",
        Function::Login => "C_Login",
        Function::DestroyObject => "C_DestroyObject",
        Function::GetAttributeValue => "C_GetAttributeValue",
        Function::FindObjectsInit => "C_FindObjectsInit",
        Function::FindObjects => "C_FindObjects",
        Function::FindObjectsFinal => "C_FindObjectsFinal",
        Function::EncryptInit => "C_EncryptInit",
        Function::Encrypt => "C_Encrypt",
        Function::DecryptInit => "C_DecryptInit",
        Function::Decrypt => "C_Decrypt",
        Function::SignInit => "C_SignInit",
        Function::Sign => "C_Sign",
        Function::GenerateKey => "C_GenerateKey",
        Function::GenerateKeyPair => "C_GenerateKeyPair",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_codes_are_named_as_in_the_standard() {
        assert_eq!(return_code_name(RvError::PinIncorrect), "CKR_PIN_INCORRECT");
        assert_eq!(
            return_code_name(RvError::UserAlreadyLoggedIn),
            "CKR_USER_ALREADY_LOGGED_IN"
        );
        assert_eq!(
            return_code_name(RvError::EncryptedDataInvalid),
            "CKR_ENCRYPTED_DATA_INVALID"
        );
        assert_eq!(
            return_code_name(RvError::UnknownErrorCode(0x35)),
            "CKR_AEAD_DECRYPT_FAILED"
        );
    }

    #[test]
    fn failed_calls_name_the_function_and_code() {
        let error = Pkcs11Error::call("C_Sign")(CryptokiError::Pkcs11(
            RvError::KeyHandleInvalid,
            Function::SignInit,
        ));
        assert_eq!(
            error.to_string(),
            "C_SignInit failed: CKR_KEY_HANDLE_INVALID"
        );
        assert!(error.is_missing_object());
        assert!(!error.spoils_session());
    }

    #[test]
    fn unauthentic_maps_to_the_core_error() {
        let error: carimbo_kms::Error = Pkcs11Error::Unauthentic("wrap block".into()).into();
        assert!(matches!(error, carimbo_kms::Error::Unauthentic(_)));
        let error: carimbo_kms::Error = Pkcs11Error::WrongPin {
            token: "kms".into(),
        }
        .into();
        assert!(error.to_string().contains("wrong PIN"), "{error}");
        let error: carimbo_kms::Error = Pkcs11Error::BackupUnsupported {
            token: "root".into(),
            reason: "it does not offer CKM_AES_KEY_WRAP_PAD".into(),
        }
        .into();
        assert!(
            matches!(error, carimbo_kms::Error::NotSupported { .. }),
            "{error}"
        );
    }

    #[test]
    fn refusals_name_the_token() {
        let error = Pkcs11Error::TokenAlreadyInitialized {
            label: "root".into(),
            serial: "8d1f0c2b4e6a7f90".into(),
        };
        let message = error.to_string();
        assert!(message.contains("'root'"), "{message}");
        assert!(message.contains("8d1f0c2b4e6a7f90"), "{message}");
        assert!(message.contains("C_InitToken"), "{message}");
        let error = Pkcs11Error::WrongSoPin {
            token: "root".into(),
        };
        assert!(error.to_string().contains("CKR_PIN_INCORRECT"), "{error}");
    }
}
