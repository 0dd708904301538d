//! # carimbo-pki — X.509 for the Carimbo CA
//!
//! Builds CA certificates (root, intermediates, cross-certificates) and CRLs (the
//! root's ARL, issuing CAs' CRLs) over a [`carimbo_kms::SigningKey`], and holds the
//! lints they must pass. The offline `ca-ceremony` and the issuing service share it.
//! It is pure: no files, network or database; the only outside effect is asking the key
//! to sign.
//!
//! Lint-before-sign is enforced by types. [`prepare_certificate`] builds the TBS once
//! (with rcgen), signs it with a throwaway software key of the issuer's algorithm, and
//! runs every lint on that lint certificate; an error-severity finding refuses with
//! [`PkiError::Lint`]. Only the resulting [`PreparedCertificate`], which has no public
//! constructor, can be signed: [`PreparedCertificate::sign`] checks the key is the
//! issuer's, signs exactly the linted TBS bytes, verifies the signature, checks the
//! assembled certificate's TBS is byte-identical to the linted one and lints it again.
//! CRLs follow the same path ([`prepare_crl`], [`PreparedCrl`]).
//!
//! The lints (module `lints`, one per file, `e_`/`w_`/`n_` with their RFC citations)
//! also run on any finished artifact through [`lint_certificate`] and [`lint_crl`];
//! [`lint_catalog`] lists them.

mod algorithm;
mod certificate;
mod crl;
mod der;
mod error;
mod issuer;
mod lints;
mod name;
mod pem;
mod profile;
mod raw;
mod serial;
mod throwaway;

pub use algorithm::{key_identifier, signature_algorithm_identifier};
pub use certificate::{PreparedCertificate, prepare_certificate, verify_certificate_signature};
pub use crl::{
    CrlKind, CrlTemplate, PreparedCrl, RevocationReason, RevokedCertificate, prepare_crl,
    verify_crl_signature,
};
pub use error::PkiError;
pub use issuer::IssuerInfo;
pub use lints::{Finding, LintInfo, Severity, lint_catalog, lint_certificate, lint_crl};
pub use name::{DistinguishedName, DnAttribute};
pub use pem::{pem_decode, pem_encode};
pub use profile::{
    CertificateProfile, CertificateTemplate, INTERMEDIATE_MAX_YEARS, IntermediateUsage,
    NameConstraints, ROOT_MAX_YEARS,
};
pub use serial::{MIN_RANDOM_SERIAL_BYTES, SerialNumber};
