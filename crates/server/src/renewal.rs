//! Renewal by proof of possession: the holder of a current, unexpired, unrevoked
//! certificate asks for a new one (same key or a new one) by signing the request body
//! with the *current* certificate's key. Works for every profile, unlike mTLS with a
//! serverAuth-only certificate. The lineage's provisioner is re-checked with its
//! *current* policy, and a lineage older than the provisioner's `lineage-max-age` must
//! bootstrap again.
//!
//! ```text
//! POST /v1/certificates/renew
//! Authorization: Carimbo-PoP <base64url(signature)>
//! { "certificate": "<current certificate PEM>", "csr": "<PEM>", "timestamp": <unix>, "ttl": "12h" }
//! signature = Sign(current key, "carimbo-renew-v1\n" ‖ SHA-256(body bytes))
//! ```
//! ECDSA P-256/P-384 sign with SHA-256/SHA-384 (DER signature), Ed25519 as is, RSA with
//! PKCS#1 v1.5 and SHA-256.

use base64::Engine;
use carimbo_kms::SignatureAlgorithm;
use carimbo_kms::encoding::{OID_ED25519, OID_P256, OID_P384, parse_spki};
use carimbo_pki::{LeafKind, SubjectAltName, pem_decode};
use carimbo_store::CertificateStatus;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::ApiError;
use crate::issuance::{self, Caller, CertificateRequest, IssuedCertificate};
use crate::state::{AppState, sha256};

/// Domain separation of the proof-of-possession signature.
pub const PROOF_DOMAIN: &[u8] = b"carimbo-renew-v1\n";
/// How far the request's timestamp may be from the server's clock.
const MAX_SKEW: time::Duration = time::Duration::minutes(5);

/// The message a renewal request's signature covers.
pub fn proof_message(body: &[u8]) -> Vec<u8> {
    let mut message = PROOF_DOMAIN.to_vec();
    message.extend_from_slice(&sha256(body));
    message
}

/// The signature algorithm a holder's key uses for the proof.
pub fn proof_algorithm(spki: &[u8]) -> Result<SignatureAlgorithm, ApiError> {
    let info = parse_spki(spki).map_err(|e| ApiError::BadProof(format!("certificate key: {e}")))?;
    if info.curve == Some(OID_P256) {
        return Ok(SignatureAlgorithm::EcdsaP256Sha256);
    }
    if info.curve == Some(OID_P384) {
        return Ok(SignatureAlgorithm::EcdsaP384Sha384);
    }
    if info.algorithm == OID_ED25519 {
        return Ok(SignatureAlgorithm::Ed25519);
    }
    match info.rsa_modulus_bits() {
        Some(3072) => Ok("rsa-3072-pkcs1-sha256"
            .parse()
            .map_err(|_| ApiError::Internal("algorithm".into()))?),
        Some(4096) => Ok("rsa-4096-pkcs1-sha256"
            .parse()
            .map_err(|_| ApiError::Internal("algorithm".into()))?),
        _ => Err(ApiError::BadProof(
            "the certificate's key type cannot prove possession".into(),
        )),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    certificate: String,
    csr: String,
    timestamp: i64,
    #[serde(default)]
    ttl: Option<serde_json::Value>,
}

/// Renews: checks the presented certificate, the proof and the lineage, then issues
/// through the normal path under the lineage's provisioner and the current names.
pub async fn renew(
    state: &AppState,
    body: &[u8],
    proof: &str,
    ttl_parser: impl Fn(&Option<serde_json::Value>) -> Result<Option<time::Duration>, ApiError>,
    request_id: &str,
) -> Result<IssuedCertificate, ApiError> {
    let result = prepare(state, body, proof, &ttl_parser, request_id).await;
    let (caller, request) = match result {
        Ok(ready) => ready,
        Err(error) => {
            state
                .metrics
                .refused(None, None, error.code_and_status().0, true);
            state
                .audit(json!({
                    "type": "certificate.renewal_refused",
                    "request_id": request_id,
                    "code": error.code_and_status().0,
                    "reason": error.to_string(),
                }))
                .await?;
            return Err(error);
        }
    };
    issuance::issue(state, &caller, request, false).await
}

async fn prepare(
    state: &AppState,
    body: &[u8],
    proof: &str,
    ttl_parser: &impl Fn(&Option<serde_json::Value>) -> Result<Option<time::Duration>, ApiError>,
    request_id: &str,
) -> Result<(Caller, CertificateRequest), ApiError> {
    let now = OffsetDateTime::now_utc();
    let parsed: RenewBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::MalformedRequest(format!("invalid JSON body: {e}")))?;
    let der = pem_decode(&parsed.certificate, "CERTIFICATE")
        .map_err(|e| ApiError::MalformedRequest(format!("certificate: {e}")))?;
    let (_, certificate) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| ApiError::MalformedRequest(format!("certificate: {e}")))?;
    let serial = hex::encode(certificate.raw_serial());
    // Only certificates this CA issued and recorded, byte for byte.
    let record = state
        .store
        .certificate(&serial)
        .await?
        .filter(|r| r.certificate.as_deref() == Some(der.as_slice()))
        .ok_or_else(|| ApiError::BadProof("the certificate was not issued by this CA".into()))?;
    match record.status {
        CertificateStatus::Issued => {}
        CertificateStatus::Revoked => return Err(ApiError::CertificateRevoked),
        _ => return Err(ApiError::BadProof("the certificate was not issued".into())),
    }
    if now >= record.not_after {
        return Err(ApiError::CertificateExpired);
    }
    // The proof: the body signed with the current certificate's key.
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(proof.trim())
        .map_err(|_| ApiError::BadProof("the proof is not base64url".into()))?;
    let spki = certificate.public_key().raw;
    let algorithm = proof_algorithm(spki)?;
    carimbo_kms::verify_signature(algorithm, spki, &proof_message(body), &signature).map_err(
        |_| ApiError::BadProof("the proof does not verify with the certificate's key".into()),
    )?;
    let sent = OffsetDateTime::from_unix_timestamp(parsed.timestamp)
        .map_err(|_| ApiError::BadProof("bad timestamp".into()))?;
    if (now - sent).abs() > MAX_SKEW {
        return Err(ApiError::BadProof(
            "the request's timestamp is more than 5 minutes from the CA's clock".into(),
        ));
    }
    // The lineage and its provisioner's current rules.
    let lineage = state
        .store
        .lineage(&record.lineage)
        .await?
        .ok_or_else(|| ApiError::Internal("the certificate's lineage is missing".into()))?;
    let provisioner = state
        .provisioners
        .get(&lineage.provisioner)
        .ok_or_else(|| {
            ApiError::Forbidden(format!(
                "provisioner {:?} no longer exists; bootstrap again",
                lineage.provisioner
            ))
        })?;
    if now - lineage.created_at > provisioner.lineage_max_age {
        return Err(ApiError::LineageExpired(format!(
            "this lineage started at {} and provisioner {:?} renews for {} days at most; bootstrap again",
            lineage.created_at,
            provisioner.name,
            provisioner.lineage_max_age.whole_days()
        )));
    }
    let profile: LeafKind = record
        .profile
        .parse()
        .map_err(|_| ApiError::Internal("stored profile is invalid".into()))?;
    let sans = record
        .sans
        .iter()
        .map(|s| s.parse::<SubjectAltName>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiError::Internal("stored name is invalid".into()))?;
    let caller = Caller {
        provisioner: lineage.provisioner.clone(),
        identity: lineage.identity.clone(),
        lineage: lineage.id.clone(),
        bound_sans: Some(sans),
        bound_ttl: None,
        bound_profile: Some(profile),
        request_id: request_id.to_owned(),
    };
    let request = CertificateRequest {
        csr: parsed.csr.into_bytes(),
        profile,
        ttl: ttl_parser(&parsed.ttl)?,
    };
    Ok((caller, request))
}
