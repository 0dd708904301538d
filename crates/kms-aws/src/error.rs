//! The crate's one error type, and how AWS KMS errors are classified.

use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Everything that can go wrong in the AWS KMS provider.
///
/// Messages name the KMS operation, the key ARN and the AWS error code, and never
/// contain credentials, plaintext or key bytes. Converted into [`carimbo_kms::Error`]
/// by `From`:
///
/// | this error | core error |
/// |---|---|
/// | [`AwsKmsError::Unauthentic`] (`InvalidCiphertextException`, `IncorrectKeyException`) | [`carimbo_kms::Error::Unauthentic`] |
/// | [`AwsKmsError::KeyState`] (`DisabledException`, `KMSInvalidStateException`) | [`carimbo_kms::Error::InvalidState`] |
/// | [`AwsKmsError::Unsupported`] | [`carimbo_kms::Error::NotSupported`] |
/// | anything else (not found, access denied, transient, ...) | [`carimbo_kms::Error::Provider`], with this error as its source |
///
/// A missing AWS key is a provider error, not [`carimbo_kms::Error::KeyNotFound`]:
/// that variant means a Carimbo key *name* is unknown, while a key the keyring
/// references but AWS does not hold is a fault on the service's side. Callers that
/// retry can downcast the source and ask [`AwsKmsError::is_transient`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsKmsError {
    /// The config file could not be read or is invalid.
    #[error("AWS KMS config {origin}: {message}")]
    Config {
        /// The file (or `<text>` for a config given as a string).
        origin: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A key reference this provider cannot use (another provider's, not a key ARN,
    /// another region's).
    #[error("key reference {reference}: {reason}")]
    BadReference {
        /// The key reference.
        reference: String,
        /// Why it was refused.
        reason: String,
    },
    /// AWS KMS has no such key (`NotFoundException`), or it was deleted.
    #[error("{operation} {key}: AWS KMS has no such key ({code})")]
    KeyNotFound {
        /// The KMS operation, e.g. `Sign`.
        operation: &'static str,
        /// The key ARN.
        key: String,
        /// The AWS error code.
        code: String,
    },
    /// The key exists but its state forbids the operation: disabled, pending deletion,
    /// pending import (`DisabledException`, `KMSInvalidStateException`).
    #[error(
        "{operation} {key}: the AWS KMS key is not usable in its current state ({code}: {message})"
    )]
    KeyState {
        /// The KMS operation.
        operation: &'static str,
        /// The key ARN.
        key: String,
        /// The AWS error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// The credentials were refused, or the key policy, IAM policy or a grant does not
    /// allow the operation (`AccessDeniedException`, `UnrecognizedClientException`, ...).
    #[error("{operation} {key}: access denied by AWS ({code}: {message})")]
    AccessDenied {
        /// The KMS operation.
        operation: &'static str,
        /// The key ARN (or `-` for CreateKey).
        key: String,
        /// The AWS error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// A ciphertext did not authenticate: wrong key, wrong encryption context, or
    /// tampered bytes.
    #[error("authentication failed: {0}")]
    Unauthentic(String),
    /// A failure that may pass if retried later: throttling, a KMS-side fault, a
    /// timeout or a network error. The SDK has already retried it.
    #[error("{operation} {key}: transient AWS KMS failure, retries exhausted ({message})")]
    Transient {
        /// The KMS operation.
        operation: &'static str,
        /// The key ARN (or `-`).
        key: String,
        /// What failed, with the AWS code where there is one.
        message: String,
    },
    /// Any other refusal by AWS KMS; retrying will not help.
    #[error("{operation} {key}: AWS KMS refused the request ({code}: {message})")]
    Service {
        /// The KMS operation.
        operation: &'static str,
        /// The key ARN (or `-`).
        key: String,
        /// The AWS error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// A key is not what the reference or the algorithm promised (another key spec or
    /// usage, a public key of another type), or a fresh key failed its self-test.
    #[error("AWS KMS key {key}: {reason}")]
    InvalidKey {
        /// The key ARN.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The provider does not offer this algorithm or operation.
    #[error("{0}")]
    Unsupported(String),
    /// An input was refused before reaching AWS (e.g. empty associated data).
    #[error("{0}")]
    InvalidInput(String),
    /// AWS answered without a field the operation must return.
    #[error("{operation} {key}: the response has no {field}")]
    IncompleteResponse {
        /// The KMS operation.
        operation: &'static str,
        /// The key ARN (or `-`).
        key: String,
        /// The missing field.
        field: &'static str,
    },
}

/// Error codes of failures worth retrying later (the SDK retries them first).
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "LimitExceededException",
    "RequestLimitExceeded",
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
    "CustomKeyStoreInvalidStateException",
    "ServiceUnavailable",
    "InternalFailure",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Error codes that mean the caller's identity may not do this.
const ACCESS_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredTokenException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "SignatureDoesNotMatch",
    "NotAuthorized",
];

impl AwsKmsError {
    /// Whether the failure may pass when retried later (throttling, a KMS fault, a
    /// timeout, the network).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// Classifies a failed SDK call of `operation` on `key`.
    pub(crate) fn from_sdk<E>(operation: &'static str, key: &str, error: SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let key = key.to_owned();
        match &error {
            SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
                let status = error.raw_response().map(|r| r.status().as_u16());
                let code = error.code().unwrap_or("").to_owned();
                let message = error.message().unwrap_or("").to_owned();
                Self::classify(operation, key, code, message, status)
            }
            SdkError::ConstructionFailure(_) => Self::Service {
                operation,
                key,
                code: "request not sent".into(),
                message: DisplayErrorContext(&error).to_string(),
            },
            // Neither a network error nor a timeout: credentials that could not be
            // loaded end up here, with the chain's explanation (no secret in it).
            SdkError::DispatchFailure(failure) if !failure.is_io() && !failure.is_timeout() => {
                Self::Service {
                    operation,
                    key,
                    code: "request not sent".into(),
                    message: DisplayErrorContext(&error).to_string(),
                }
            }
            // Timeouts, connection failures and anything the SDK adds later.
            _ => Self::Transient {
                operation,
                key,
                message: DisplayErrorContext(&error).to_string(),
            },
        }
    }

    /// Classifies an AWS error code (and HTTP status, when known).
    pub(crate) fn classify(
        operation: &'static str,
        key: String,
        code: String,
        message: String,
        status: Option<u16>,
    ) -> Self {
        let code_str = code.as_str();
        if code_str.is_empty() && status.is_some_and(|s| s >= 500) {
            let message = format!("HTTP {}", status.unwrap_or_default());
            return Self::Transient {
                operation,
                key,
                message,
            };
        }
        match code_str {
            "NotFoundException" => Self::KeyNotFound {
                operation,
                key,
                code,
            },
            "DisabledException" | "KMSInvalidStateException" => Self::KeyState {
                operation,
                key,
                code,
                message,
            },
            "InvalidCiphertextException" => Self::Unauthentic(format!(
                "AWS KMS {operation} with key {key}: wrong encryption context or tampered ciphertext ({code})"
            )),
            "IncorrectKeyException" => Self::Unauthentic(format!(
                "AWS KMS {operation}: the ciphertext was not made with key {key} ({code})"
            )),
            c if ACCESS_CODES.contains(&c) => Self::AccessDenied {
                operation,
                key,
                code,
                message,
            },
            c if TRANSIENT_CODES.contains(&c) || status.is_some_and(|s| s >= 500) => {
                Self::Transient {
                    operation,
                    key,
                    message: if message.is_empty() {
                        code
                    } else {
                        format!("{code}: {message}")
                    },
                }
            }
            "UnsupportedOperationException" => Self::Unsupported(format!(
                "AWS KMS does not support {operation} here: {message}"
            )),
            _ => Self::Service {
                operation,
                key,
                code,
                message,
            },
        }
    }
}

impl From<AwsKmsError> for carimbo_kms::Error {
    fn from(error: AwsKmsError) -> Self {
        match error {
            AwsKmsError::Unauthentic(what) => Self::Unauthentic(what),
            AwsKmsError::Unsupported(what) => Self::NotSupported {
                provider: crate::PROVIDER_ID.to_owned(),
                what,
            },
            state @ AwsKmsError::KeyState { .. } => Self::InvalidState(state.to_string()),
            other => Self::provider(crate::PROVIDER_ID, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn classify(code: &str, status: u16) -> AwsKmsError {
        AwsKmsError::classify(
            "Decrypt",
            ARN.into(),
            code.into(),
            "it says why".into(),
            Some(status),
        )
    }

    #[test]
    fn authentication_failures_become_unauthentic() {
        for code in ["InvalidCiphertextException", "IncorrectKeyException"] {
            let error: carimbo_kms::Error = classify(code, 400).into();
            assert!(
                matches!(&error, carimbo_kms::Error::Unauthentic(m) if m.contains(code)),
                "{error}"
            );
        }
    }

    #[test]
    fn key_states_become_invalid_state() {
        for code in ["DisabledException", "KMSInvalidStateException"] {
            let error: carimbo_kms::Error = classify(code, 400).into();
            assert!(
                matches!(&error, carimbo_kms::Error::InvalidState(m) if m.contains(ARN) && m.contains(code)),
                "{error}"
            );
        }
    }

    #[test]
    fn transient_and_permanent_failures_are_told_apart() {
        for (code, status) in [
            ("ThrottlingException", 400),
            ("KMSInternalException", 500),
            ("DependencyTimeoutException", 503),
            ("SomethingNew", 502),
            ("", 503),
        ] {
            let error = classify(code, status);
            assert!(error.is_transient(), "{code} {status}: {error}");
        }
        for (code, status) in [
            ("ValidationException", 400),
            ("InvalidKeyUsageException", 400),
            ("NotFoundException", 400),
            ("AccessDeniedException", 400),
            ("UnrecognizedClientException", 400),
        ] {
            let error = classify(code, status);
            assert!(!error.is_transient(), "{code}: {error}");
        }
    }

    #[test]
    fn access_and_absence_are_named_and_kept_as_the_source() {
        let error = classify("AccessDeniedException", 400);
        assert!(matches!(error, AwsKmsError::AccessDenied { .. }), "{error}");
        let core: carimbo_kms::Error = error.into();
        let text = core.to_string();
        assert!(text.contains("aws provider"), "{text}");
        assert!(text.contains("access denied"), "{text}");
        assert!(text.contains(ARN), "{text}");
        match core {
            carimbo_kms::Error::Provider { source, .. } => {
                let source = source
                    .downcast_ref::<AwsKmsError>()
                    .map(|e| e.is_transient());
                assert_eq!(source, Some(false));
            }
            other => panic!("unexpected {other:?}"),
        }
        let error: carimbo_kms::Error = classify("NotFoundException", 400).into();
        assert!(error.to_string().contains("no such key"), "{error}");
        let error: carimbo_kms::Error = classify("UnsupportedOperationException", 400).into();
        assert!(
            matches!(error, carimbo_kms::Error::NotSupported { .. }),
            "{error}"
        );
    }
}
