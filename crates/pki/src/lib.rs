//! # carimbo-pki — X.509 for the Carimbo CA
//!
//! Builds CA certificates (root, intermediates, cross-certificates), leaf certificates
//! (server, client, SPIFFE workload) and CRLs (the root's ARL, issuing CAs' CRLs) over
//! a [`carimbo_kms::SigningKey`], and holds the lints they must pass. The offline
//! `ca-ceremony` and the issuing service share it.
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
//! Leaves take the same path too. The issuing service checks a caller's CSR with
//! [`validate_csr`] (PKCS#10 well-formedness, self-signature, key type and size, no CA
//! request, names checked by [`check_sans`]) and keeps only its public key and
//! names; it computes the validity with [`LeafProfile::validity`], and
//! [`prepare_leaf`] builds the TBS from a [`LeafTemplate`] — every extension from the
//! [`LeafProfile`], none from the CSR — after checking the issuer may issue it (EKU,
//! name constraints, validity), lints it, and returns a [`PreparedCertificate`].
//! Refusals are [`LeafError`]s with stable codes.
//!
//! The lints (module `lints`, one per file, `e_`/`w_`/`n_` with their RFC citations)
//! also run on any finished artifact through [`lint_certificate`], [`lint_leaf`],
//! [`lint_ocsp_responder`] and [`lint_crl`]; [`lint_catalog`] lists them.
//!
//! OCSP (RFC 6960, RFC 5019 profile) is written and read with the crate's own DER
//! code: [`parse_ocsp_request`] checks a request strictly, [`prepare_ocsp_response`]
//! builds a response that [`PreparedOcspResponse::sign`] signs through the responder's
//! KMS key, and [`parse_ocsp_response`] reads one back. The delegated responder's
//! certificate takes the certificate path: [`prepare_ocsp_responder`], its own lints,
//! [`PreparedCertificate::sign`] with the issuing CA's key.

mod algorithm;
mod certificate;
mod constraints;
mod crl;
mod csr;
mod der;
mod error;
mod issuer;
mod leaf;
mod leaf_key;
mod lints;
mod name;
mod ocsp;
mod pem;
mod profile;
mod raw;
mod responder;
mod san;
mod serial;
mod throwaway;

pub use algorithm::{key_identifier, signature_algorithm_identifier};
pub use certificate::{PreparedCertificate, prepare_certificate, verify_certificate_signature};
pub use crl::{
    CrlKind, CrlTemplate, PreparedCrl, RevocationReason, RevokedCertificate, prepare_crl,
    verify_crl_signature,
};
pub use csr::{MAX_CSR_BYTES, ValidatedCsr, validate_csr};
pub use error::{LeafError, PkiError};
pub use issuer::IssuerInfo;
pub use leaf::{LeafKind, LeafProfile, LeafTemplate, MAX_BACKDATE, prepare_leaf};
pub use lints::{
    Finding, LintInfo, Severity, lint_catalog, lint_certificate, lint_crl, lint_leaf,
    lint_ocsp_responder,
};
pub use name::{DistinguishedName, DnAttribute};
pub use ocsp::{
    CertId, CertStatus, IssuerHashes, MAX_OCSP_CLOCK_SKEW, MAX_OCSP_NONCE_BYTES,
    MAX_OCSP_REQUEST_BYTES, MAX_OCSP_REQUEST_CERTS, OcspHash, OcspRequest, OcspRequestError,
    OcspResponseInfo, OcspResponseStatus, OcspResponseTemplate, PreparedOcspResponse,
    SingleResponseInfo, SingleResponseTemplate, build_ocsp_request, ocsp_error_response,
    parse_ocsp_request, parse_ocsp_response, prepare_ocsp_response,
};
pub use pem::{pem_decode, pem_encode};
pub use profile::{
    CertificateProfile, CertificateTemplate, INTERMEDIATE_MAX_YEARS, IntermediateUsage,
    NameConstraints, ROOT_MAX_YEARS,
};
pub use responder::{RESPONDER_MAX_VALIDITY, ResponderTemplate, prepare_ocsp_responder};
pub use san::{MAX_SANS, MAX_SPIFFE_ID_BYTES, SubjectAltName, check_sans};
pub use serial::{MIN_RANDOM_SERIAL_BYTES, SerialNumber};
