//! # carimbo-server — the issuing service
//!
//! Workloads prove who they are and get short-lived certificates over an HTTPS API
//! (axum over rustls). The service loads the intermediates the ceremony produced and
//! opens their keys through the KMS (PKCS#11 in production, the file provider in
//! development), keeps every certificate in the store before and after signing, and
//! writes an audit event for every issuance and refusal. Certificates are revoked by
//! their holders or administrators; a plain-HTTP publication listener serves what
//! relying parties fetch: issuer certificates, CRLs and OCSP answers.
//!
//! The server is a function: [`serve`] takes its listeners, its state and a shutdown
//! future, so tests run it on `127.0.0.1:0`.

pub mod acme;
pub mod audit_heads;
pub mod certificate_search;
pub mod config;
pub mod crl;
pub mod dashboard;
mod error;
pub mod health;
pub mod issuance;
pub mod jobs;
pub mod jwt;
pub mod keys;
pub mod kms_api;
pub mod kms_migrate;
pub mod kms_policy;
pub mod limits;
pub mod metrics;
pub mod ocsp;
pub mod policy;
pub mod renewal;
pub mod revocation;
pub mod routes;
pub mod state;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

pub use error::{ApiError, KmsError, ServerError};

/// Entry points for the fuzz targets (`fuzz/`) and the test that replays their corpora:
/// the parsing steps the service applies to untrusted request bytes, without a running
/// service. Not an API: nothing here skips or relaxes a check of the real path.
#[doc(hidden)]
pub mod fuzzing {
    use carimbo_pki::{LeafProfile, ValidatedCsr, validate_csr};

    use crate::ApiError;

    /// Parses `body` as the JSON body of `POST /v1/certificates` exactly as the route
    /// does (fields, profile, lifetime), then validates its CSR against the default
    /// profile of the kind it names, as issuance does with the configured one.
    pub fn issuance_body(body: &[u8]) -> Result<ValidatedCsr, ApiError> {
        let request = crate::routes::parse_issue_body(body)?;
        Ok(validate_csr(
            &request.csr,
            &LeafProfile::defaults(request.profile),
        )?)
    }
}
pub use state::{AppState, Role};

/// Whether the test failpoint `name` is set (environment `CARIMBO_TEST_FAILPOINT`).
/// Tests use it to stop the process at a precise point (e.g. between a revocation's
/// commit and its new OCSP signature); unset in production.
pub fn failpoint(name: &str) -> bool {
    std::env::var("CARIMBO_TEST_FAILPOINT").is_ok_and(|value| value == name)
}

/// For the test failpoints that model a stalled process: the process stops itself
/// (SIGSTOP) the first time it reaches failpoint `name`, exactly where a pause hurts
/// most (e.g. between signing a CRL and publishing it); the test resumes it with
/// SIGCONT once another replica has taken the job over.
pub(crate) fn stop_once_for_test(name: &str) {
    static STOPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !STOPPED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        tracing::warn!(failpoint = name, "failpoint: stopping this process");
        let _ = std::process::Command::new("sh")
            .args([
                "-c",
                "kill -STOP \"$1\"",
                "sh",
                &std::process::id().to_string(),
            ])
            .status();
    }
}

/// Bound listeners of one replica.
#[derive(Debug)]
pub struct Listeners {
    /// HTTPS API (absent for the OCSP role).
    pub api: Option<tokio::net::TcpListener>,
    /// Plain-HTTP publication listener, if configured.
    pub publication: Option<tokio::net::TcpListener>,
}

/// The jobs a replica of `role` takes part in.
fn jobs_of(role: Role) -> &'static [&'static str] {
    match role {
        Role::All => &[
            jobs::CRL_JOB,
            jobs::OCSP_REFRESH_JOB,
            jobs::KMS_ROTATION_JOB,
        ],
        Role::Ocsp => &[jobs::OCSP_REFRESH_JOB],
    }
}

/// Prepares the revocation side before serving: loads or makes the OCSP responders,
/// starts reading the revocation log at its end, loads the published CRLs, and (role
/// `All`) takes the CRL job's lease if it is free and publishes the CRLs that are due.
pub async fn prepare(state: &AppState) -> Result<(), ServerError> {
    if state.role == Role::All {
        audit_policy_changes(state).await?;
    }
    state.ocsp.ensure_responders(state).await?;
    state.ocsp.start_revocation_log(state).await?;
    state.crls.load_published(state).await?;
    if state.role == Role::All
        && let Some(fence) = state
            .leases
            .refresh(state.store.as_ref(), jobs::CRL_JOB)
            .await?
    {
        for (issuer, result) in state.crls.publish_due(state, Some(&fence)).await {
            match result {
                Ok(_) => {}
                // Another replica took the job over meanwhile: it publishes.
                Err(crl::CrlError::Fenced(_)) => state.leases.lost(jobs::CRL_JOB),
                Err(error) => {
                    return Err(ServerError::Keys(format!("first CRL of {issuer}: {error}")));
                }
            }
        }
    }
    Ok(())
}

/// Records a `config.applied` audit event when the config's policy sections
/// (provisioners, profiles, admins, limits, KMS clients, rules, rotations, rate limits)
/// differ from what this replica's chain last recorded — or were never recorded — with
/// each changed section before and after.
async fn audit_policy_changes(state: &AppState) -> Result<(), ServerError> {
    let (path, policy) = &state.policy;
    let last = state
        .store
        .last_audit_event_of_type(&state.audit_chain, "config.applied")
        .await?;
    let before = last
        .as_ref()
        .and_then(|event| event.event.get("policy"))
        .and_then(serde_json::Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut names: Vec<&String> = before.keys().chain(policy.keys()).collect();
    names.sort();
    names.dedup();
    let mut changes = serde_json::Map::new();
    for name in names {
        let (old, new) = (before.get(name), policy.get(name));
        if old != new {
            changes.insert(
                name.clone(),
                serde_json::json!({ "before": old, "after": new }),
            );
        }
    }
    if last.is_some() && changes.is_empty() {
        return Ok(());
    }
    let changed: Vec<&String> = changes.keys().collect();
    tracing::info!(?changed, "config policy recorded in the audit trail");
    state
        .audit(serde_json::json!({
            "type": "config.applied",
            "config": path.display().to_string(),
            "first": last.is_none(),
            "changes": changes,
            "policy": policy,
        }))
        .await
        .map_err(|e| ServerError::Config(format!("auditing the config: {e}")))
}

/// The background jobs of a replica: the lease keeper, CRL publishing (role `All`,
/// while holding the `crl` lease), the revocation-log poll that drops cached OCSP
/// answers, OCSP refresh (while holding the `ocsp-refresh` lease) and responder
/// rotation (every replica, for the responders it can open).
fn spawn_jobs(state: &Arc<AppState>, stopped: &tokio::sync::watch::Receiver<bool>) {
    {
        let state = Arc::clone(state);
        let mut stop = stopped.clone();
        tokio::spawn(async move {
            loop {
                let mut ok = true;
                for job in jobs_of(state.role) {
                    if let Err(error) = state.leases.refresh(state.store.as_ref(), job).await {
                        tracing::warn!(job, error = %error, "renewing the job lease failed");
                        ok = false;
                    }
                }
                state.metrics.job_ran(jobs::LEASE_KEEPER_JOB, ok);
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    () = tokio::time::sleep(state.leases.renew_interval()) => {}
                }
            }
        });
    }
    if state.role == Role::All && state.kms.as_ref().is_some_and(|k| k.has_rotations()) {
        let state = Arc::clone(state);
        let mut stop = stopped.clone();
        tokio::spawn(async move {
            loop {
                if state.leases.fence(jobs::KMS_ROTATION_JOB).is_some()
                    && let Some(kms) = &state.kms
                {
                    let result = kms.rotate_due(&state).await;
                    state
                        .metrics
                        .job_ran(jobs::KMS_ROTATION_JOB, result.is_ok());
                    match result {
                        Ok(rotated) if !rotated.is_empty() => {
                            tracing::info!(?rotated, "scheduled KMS rotations");
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(error = %error, "scheduled KMS rotation failed")
                        }
                    }
                }
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
            }
        });
    }
    {
        let state = Arc::clone(state);
        let mut stop = stopped.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    () = tokio::time::sleep(state.audit_head_interval) => {}
                };
                sign_audit_head(&state).await;
            }
        });
    }
    if state.role == Role::All {
        let crls = Arc::clone(&state.crls);
        tokio::spawn(crls.run(Arc::clone(state), stopped.clone()));
    }
    let poll = std::time::Duration::from_millis(
        u64::try_from(state.revocation.revocation_poll.0.whole_milliseconds()).unwrap_or(1000),
    );
    {
        let state = Arc::clone(state);
        let mut stop = stopped.clone();
        tokio::spawn(async move {
            loop {
                let applied = state.ocsp.apply_revocation_log(&state).await;
                state
                    .metrics
                    .job_ran(jobs::REVOCATION_LOG_JOB, applied.is_ok());
                if let Err(error) = applied {
                    tracing::warn!(error = %error, "reading the revocation log failed");
                }
                if state.role == Role::Ocsp
                    && let Err(error) = state.crls.load_published(&state).await
                {
                    tracing::warn!(error = %error, "reading published CRLs failed");
                }
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    () = tokio::time::sleep(poll) => {}
                }
            }
        });
    }
    {
        let state = Arc::clone(state);
        let mut stop = stopped.clone();
        tokio::spawn(async move {
            let mut last_rotation = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    () = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
                }
                if last_rotation.elapsed() >= std::time::Duration::from_secs(600) {
                    last_rotation = tokio::time::Instant::now();
                    let result = state.ocsp.ensure_responders(&state).await;
                    state
                        .metrics
                        .job_ran(jobs::OCSP_RESPONDERS_JOB, result.is_ok());
                    if let Err(error) = result {
                        tracing::error!(error = %error, "OCSP responder rotation failed");
                    }
                }
                let Some(fence) = state.leases.fence(jobs::OCSP_REFRESH_JOB) else {
                    continue;
                };
                match state.ocsp.refresh_due(&state, &fence).await {
                    Ok(signed) => {
                        state.metrics.job_ran(jobs::OCSP_REFRESH_JOB, true);
                        if signed > 0 {
                            tracing::debug!(signed, "OCSP answers refreshed");
                        }
                    }
                    // Not a failure of the work: another replica runs the job now.
                    Err(carimbo_store::StoreError::Fenced(why)) => {
                        tracing::warn!(why = %why, "OCSP refresh stopped: fenced");
                        state.leases.lost(jobs::OCSP_REFRESH_JOB);
                    }
                    Err(error) => {
                        state.metrics.job_ran(jobs::OCSP_REFRESH_JOB, false);
                        tracing::warn!(error = %error, "OCSP refresh failed");
                    }
                }
            }
        });
    }
}

/// Signs this replica's audit chain head if events came since the last one.
async fn sign_audit_head(state: &AppState) {
    if let Err(error) = state
        .audit_signer
        .sign_head(
            state.store.as_ref(),
            &state.keys,
            time::OffsetDateTime::now_utc(),
        )
        .await
    {
        tracing::warn!(error = %error, "signing the audit chain head failed");
    }
}

/// Serves the API (over `tls`, required with an API listener) and the publication listener until `shutdown`, with the
/// background jobs of `state.role`. Call [`prepare`] first.
pub async fn serve(
    listeners: Listeners,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if listeners.api.is_some() && tls.is_none() {
        return Err(ServerError::Tls(
            "the API listener needs a TLS config".into(),
        ));
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
        let _ = receiver.wait_for(|stopped| *stopped).await;
    };
    spawn_jobs(&state, &stopped);
    let connection_limits = state.connection_limits;
    let publication = listeners.publication.map(|listener| {
        let router = routes::publication_router(Arc::clone(&state));
        tokio::spawn(tls::serve(
            listener,
            None,
            router,
            connection_limits,
            wait(stopped.clone()),
        ))
    });
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let leases = Arc::clone(&state.leases);
    let store = Arc::clone(&state.store);
    let last_head = Arc::clone(&state);
    let result = match listeners.api {
        Some(api) => {
            tls::serve(
                api,
                tls,
                routes::api_router(state),
                connection_limits,
                wait(stopped),
            )
            .await
        }
        None => {
            wait(stopped).await;
            Ok(())
        }
    };
    let publication = match publication {
        Some(handle) => handle.await.unwrap_or(Ok(())),
        None => Ok(()),
    };
    // Hand the jobs over at once rather than after the lease TTL.
    leases.release_all(store.as_ref()).await;
    // One last head, so a clean stop leaves no unsigned tail.
    sign_audit_head(&last_head).await;
    result.and(publication)
}
