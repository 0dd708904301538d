//! Readiness: each dependency checked, with its state, for `GET /readyz` (and the
//! `carimbo_dependency_up` gauge).
//!
//! - the database: one `SELECT 1` within two seconds;
//! - the CA key providers: a PKCS#11 token must still be in its slot and answer
//!   (session, token info, object search; nothing is signed), a file provider's key
//!   directory must be readable;
//! - the KMS providers: the KMS token when the KMS API uses PKCS#11, AWS KMS (one
//!   `ListKeys`) when configured — reported only: they do not make the replica
//!   unready, since issuance and OCSP do not need them;
//! - CRL freshness: each issuer's latest CRL not past nextUpdate minus a quarter of
//!   its validity (the CRL job reissues at half of it);
//! - OCSP freshness: responder certificates valid, and the stalest stored answer not
//!   past nextUpdate minus a quarter of the OCSP validity.
//!
//! Freshness problems are reported (`"state": "stale"`) without making the replica
//! unready: every replica reads the same database, so taking one out would not bring
//! a fresher answer, only fewer servers.

use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::state::{AppState, Role};

/// Time limit of each check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of the checks.
#[derive(Debug)]
pub struct Readiness {
    /// Whether the process should receive traffic (HTTP 200).
    pub ready: bool,
    /// `ready`, `degraded` or `not ready`.
    pub status: &'static str,
    /// Why it is not simply ready.
    pub reason: Option<String>,
    /// The JSON body.
    pub body: Value,
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn state_of(result: &Result<(), String>) -> Value {
    match result {
        Ok(()) => json!({ "state": "ok" }),
        Err(error) => json!({ "state": "down", "error": error }),
    }
}

/// Runs every check, all at once and each bounded by two seconds (so the whole takes
/// at most about two seconds), and records `dependency_up`.
pub async fn check(state: &AppState, now: OffsetDateTime) -> Readiness {
    let database = async {
        match tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err("the database did not answer within 2 seconds".to_owned()),
        }
    };
    let stalest = async {
        match tokio::time::timeout(CHECK_TIMEOUT, state.store.stalest_ocsp_response(now)).await {
            Ok(Ok(stalest)) => stalest,
            _ => None,
        }
    };
    let kms_checks = async {
        match &state.kms {
            Some(service) => service.check(CHECK_TIMEOUT).await,
            None => Vec::new(),
        }
    };
    let (database, stalest, key_checks, kms_checks) = tokio::join!(
        database,
        stalest,
        state.keys.check(CHECK_TIMEOUT),
        kms_checks
    );
    state.metrics.dependency("database", database.is_ok());

    let mut providers = Vec::new();
    let mut providers_ok = true;
    let mut provider_errors = Vec::new();
    for (name, detail, result) in key_checks {
        state
            .metrics
            .dependency(&format!("key-provider:{name}"), result.is_ok());
        if let Err(error) = &result {
            providers_ok = false;
            provider_errors.push(format!("key provider {name}: {error}"));
        }
        let mut entry = state_of(&result);
        entry["provider"] = json!(name);
        if let Some(detail) = detail {
            entry["token"] = json!(detail);
        }
        providers.push(entry);
    }
    let mut kms = Vec::new();
    for (provider, detail, result) in kms_checks {
        state
            .metrics
            .dependency(&format!("kms-provider:{provider}"), result.is_ok());
        let mut entry = state_of(&result);
        entry["provider"] = json!(provider);
        entry[if provider == "aws" { "region" } else { "token" }] = json!(detail);
        kms.push(entry);
    }

    // CRLs: the latest of every issuer (and shard) this process knows.
    let margin = state.revocation.crl_validity.0 / 4;
    let mut crls = Vec::new();
    let mut crls_fresh = true;
    for issuer in &state.issuers {
        if issuer.info.not_after() <= now {
            continue;
        }
        for shard in issuer.crl_shards() {
            let scope = carimbo_store::crl_scope(&issuer.name, shard);
            let entry = match state.crls.latest(&scope) {
                Some(crl) => {
                    let fresh = now < crl.next_update - margin;
                    crls_fresh &= fresh;
                    json!({
                        "crl": scope,
                        "state": if fresh { "ok" } else { "stale" },
                        "number": crl.number,
                        "this_update": rfc3339(crl.this_update),
                        "next_update": rfc3339(crl.next_update),
                    })
                }
                None => {
                    crls_fresh = false;
                    json!({ "crl": scope, "state": "missing" })
                }
            };
            crls.push(entry);
        }
    }

    // OCSP: responders, the in-memory cache, the stalest stored answer.
    let (cached, fresh) = state.ocsp.cache_stats(now);
    let responders = state.ocsp.responders_ready(now);
    let ocsp_margin = state.revocation.ocsp_validity.0 / 4;
    let answers_fresh = stalest
        .as_ref()
        .is_none_or(|s| now < s.next_update - ocsp_margin);
    let ocsp_state = if !responders {
        "not ready"
    } else if answers_fresh {
        "ok"
    } else {
        "stale"
    };
    let mut ocsp = json!({
        "state": ocsp_state,
        "responders": if responders { "ok" } else { "missing or expired" },
        "cached_answers": cached,
        "valid_cached_answers": fresh,
    });
    if let Some(stalest) = &stalest {
        ocsp["stalest_stored_answer"] = json!({
            "issuer": stalest.issuer,
            "this_update": rfc3339(stalest.this_update),
            "next_update": rfc3339(stalest.next_update),
        });
    }

    let mut warnings = Vec::new();
    if !crls_fresh && state.role == Role::All {
        warnings.push("a CRL is stale or missing".to_owned());
    }
    if !answers_fresh {
        warnings.push("stored OCSP answers are not being refreshed".to_owned());
    }
    let (ready, status, reason) = match (&database, state.role) {
        (Ok(()), _) if !responders => (
            false,
            "not ready",
            Some("no valid OCSP responder certificate".to_owned()),
        ),
        (Ok(()), Role::All) if !providers_ok => (
            false,
            "not ready",
            Some(format!(
                "the CA keys are unavailable: {}",
                provider_errors.join("; ")
            )),
        ),
        (Ok(()), Role::Ocsp) if !providers_ok => (
            true,
            "degraded",
            Some(format!(
                "the responder keys are unavailable: serving stored OCSP answers only ({})",
                provider_errors.join("; ")
            )),
        ),
        (Ok(()), _) => (true, "ready", None),
        (Err(_), Role::Ocsp) if responders && fresh > 0 => (
            true,
            "degraded",
            Some(
                "the database is unreachable: serving cached OCSP answers until they expire"
                    .to_owned(),
            ),
        ),
        (Err(_), _) => (
            false,
            "degraded",
            Some(
                "the database is unreachable: no issuance or revocation; OCSP serves cached answers only"
                    .to_owned(),
            ),
        ),
    };
    let mut body = json!({
        "status": status,
        "database": match &database { Ok(()) => "ok".to_owned(), Err(e) => e.clone() },
        "ocsp": ocsp.clone(),
        "checks": {
            "database": state_of(&database),
            "key_providers": providers,
            "kms_providers": kms,
            "crl": {
                "state": if crls_fresh { "ok" } else { "stale" },
                "crls": crls,
            },
            "ocsp": ocsp,
        },
    });
    if let Some(reason) = &reason {
        body["reason"] = json!(reason);
    }
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings);
    }
    Readiness {
        ready,
        status,
        reason,
        body,
    }
}
