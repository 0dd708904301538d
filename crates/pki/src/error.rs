//! The crate's one error type.

use std::fmt;

use crate::Finding;

/// Everything that can go wrong while building, linting, signing or parsing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The lints found at least one error-severity problem: nothing was (or may be)
    /// signed. Holds every finding, blocking or not.
    #[error("{}", LintList(.0))]
    Lint(Vec<Finding>),
    /// A template or input value is unusable before any lint can run (a malformed name,
    /// a non-ASCII URL, a key that does not fit the algorithm, ...).
    #[error("invalid template: {0}")]
    InvalidTemplate(String),
    /// A certificate, CRL, name or PEM text could not be parsed.
    #[error("parse error: {0}")]
    Parse(String),
    /// A signature is wrong, or the signing key is not the issuer's.
    #[error("signature error: {0}")]
    Signature(String),
    /// The KMS key failed.
    #[error("KMS: {0}")]
    Kms(#[from] carimbo_kms::Error),
    /// Anything else (an internal invariant that did not hold, a library error).
    #[error("{0}")]
    Other(String),
}

/// Formats findings as `lint refused: e_x: message (citation); ...`.
struct LintList<'a>(&'a [Finding]);

impl fmt::Display for LintList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("lint refused:")?;
        for (index, finding) in self.0.iter().enumerate() {
            let separator = if index == 0 { " " } else { "; " };
            write!(
                f,
                "{separator}{}: {} ({})",
                finding.lint, finding.message, finding.citation
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Severity;

    #[test]
    fn lint_errors_list_every_finding_with_its_citation() {
        let error = PkiError::Lint(vec![
            Finding {
                lint: "e_one",
                severity: Severity::Error,
                citation: "RFC 5280 §4.2.1.3",
                message: "first".into(),
            },
            Finding {
                lint: "w_two",
                severity: Severity::Warning,
                citation: "RFC 5280 §4.2.1.9",
                message: "second".into(),
            },
        ]);
        assert_eq!(
            error.to_string(),
            "lint refused: e_one: first (RFC 5280 §4.2.1.3); w_two: second (RFC 5280 §4.2.1.9)"
        );
    }
}
