//! # carimbo-server — the issuing service
//!
//! Workloads prove who they are and get short-lived certificates over an HTTPS API
//! (axum over rustls). The service loads the intermediates the ceremony produced and
//! opens their keys through the KMS (PKCS#11 in production, the file provider in
//! development), keeps every certificate in the store before and after signing, and
//! writes an audit event for every issuance and refusal. A plain-HTTP publication
//! listener serves what relying parties fetch (issuer certificates now; CRLs and OCSP
//! with the revocation work).
//!
//! The server is a function: [`serve`] takes its listeners, its state and a shutdown
//! future, so tests run it on `127.0.0.1:0`.

pub mod config;
mod error;
pub mod issuance;
pub mod jwt;
pub mod keys;
pub mod policy;
pub mod renewal;
pub mod routes;
pub mod state;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

pub use error::{ApiError, ServerError};
pub use state::AppState;

/// Bound listeners of one replica.
#[derive(Debug)]
pub struct Listeners {
    /// HTTPS API.
    pub api: tokio::net::TcpListener,
    /// Plain-HTTP publication listener, if configured.
    pub publication: Option<tokio::net::TcpListener>,
}

/// Serves the API (over `tls`) and the publication listener until `shutdown`.
pub async fn serve(
    listeners: Listeners,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
        let _ = receiver.wait_for(|stopped| *stopped).await;
    };
    let publication = listeners.publication.map(|listener| {
        let router = routes::publication_router(Arc::clone(&state));
        tokio::spawn(tls::serve(listener, None, router, wait(stopped.clone())))
    });
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let api = tls::serve(
        listeners.api,
        Some(tls),
        routes::api_router(state),
        wait(stopped),
    );
    let result = api.await;
    if let Some(handle) = publication {
        let _ = handle.await;
    }
    result
}
