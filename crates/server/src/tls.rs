//! TLS for the API listener (rustls, TLS 1.2 and 1.3) and the accept loop that serves a
//! router over it.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use carimbo_pki::{LeafKind, SubjectAltName};

use crate::{AppState, ServerError, issuance};

/// Time a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The client certificate a TLS peer presented and rustls verified (chain to one of the
/// CA's roots, clientAuth EKU, in validity), DER; put in each request's extensions.
#[derive(Clone, Debug)]
pub struct ClientCertificate(pub Arc<Vec<u8>>);

/// A rustls server config from a PEM certificate chain and a PEM PKCS#8 key file
/// (refused when group or others can read it).
///
/// With `client_anchors` (DER roots), clients may present a certificate chaining to one
/// of them (optional: clients without one are served as before); a presented one that
/// does not verify fails the handshake.
pub fn server_config(
    certificate: &Path,
    key: &Path,
    client_anchors: &[Vec<u8>],
) -> Result<Arc<ServerConfig>, ServerError> {
    carimbo_kms::check_private_file(key).map_err(|e| ServerError::Tls(e.to_string()))?;
    let chain = CertificateDer::pem_file_iter(certificate)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", certificate.display())))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls(format!("{}: {e}", certificate.display())))?;
    if chain.is_empty() {
        return Err(ServerError::Tls(format!(
            "{}: no certificate",
            certificate.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServerError::Tls(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let builder = if client_anchors.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for anchor in client_anchors {
            roots
                .add(CertificateDer::from(anchor.clone()))
                .map_err(|e| ServerError::Tls(format!("client trust anchor: {e}")))?;
        }
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| ServerError::Tls(format!("client verifier: {e}")))?;
        builder.with_client_cert_verifier(verifier)
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let mut config = config;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Limits of a listener's connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers (from the connection's start or
    /// the end of the previous request).
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the kernel's backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// Largest request head (request line and headers) an HTTP/1 client may send.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest header list of an HTTP/2 request.
const MAX_HEADER_LIST_BYTES: u32 = 32 * 1024;
/// HTTP/2 streams at once per connection.
const MAX_STREAMS: u32 = 128;

/// Serves `router` on `listener`: over TLS when `tls` is given, plain HTTP otherwise,
/// until `shutdown` completes (connections in flight finish on their own).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let acceptor = tls.map(TlsAcceptor::from);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return Ok(()),
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .max_buf_size(MAX_HEAD_BYTES);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_header_list_size(MAX_HEADER_LIST_BYTES)
                .max_concurrent_streams(MAX_STREAMS)
                .keep_alive_interval(Some(Duration::from_secs(30)))
                .keep_alive_timeout(Duration::from_secs(20));
            let result = match acceptor {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let client = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|chain| chain.first())
                                .map(|der| ClientCertificate(Arc::new(der.to_vec())));
                            let service = TowerToHyperService::new(
                                tower::ServiceBuilder::new()
                                    .map_request(
                                        move |mut request: hyper::Request<
                                            hyper::body::Incoming,
                                        >| {
                                            if let Some(client) = &client {
                                                request.extensions_mut().insert(client.clone());
                                            }
                                            request
                                        },
                                    )
                                    .service(router),
                            );
                            builder.serve_connection(TokioIo::new(tls), service).await
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => {
                    builder
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router))
                        .await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

/// A CSR (PEM) for `sans` with an empty subject, signed by `key`.
pub fn csr_pem(key: &rcgen::KeyPair, sans: &[SubjectAltName]) -> Result<String, ServerError> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for san in sans {
        let san = match san {
            SubjectAltName::Dns(name) => rcgen::SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(|e| ServerError::Tls(format!("{name}: {e}")))?,
            ),
            SubjectAltName::Ip(ip) => rcgen::SanType::IpAddress(*ip),
            SubjectAltName::Uri(uri) => rcgen::SanType::URI(
                uri.clone()
                    .try_into()
                    .map_err(|e| ServerError::Tls(format!("{uri}: {e}")))?,
            ),
        };
        params.subject_alt_names.push(san);
    }
    params
        .serialize_request(key)
        .and_then(|csr| csr.pem())
        .map_err(|e| ServerError::Tls(e.to_string()))
}

/// Issues the API listener's own certificate through the normal issuance path (so it
/// has its database record and audit event) under `provisioner`, and writes
/// `server.pem` (chain) and `server.key` (0600) in `dir`. Keeps a certificate that is
/// still valid for more than a day.
pub async fn issue_listener_certificate(
    state: &AppState,
    provisioner: &str,
    dir: &Path,
    sans: &[SubjectAltName],
) -> Result<(), ServerError> {
    let certificate = dir.join("server.pem");
    if let Ok(text) = std::fs::read_to_string(&certificate)
        && let Ok(der) = carimbo_pki::pem_decode(&text, "CERTIFICATE")
        && let Ok((_, parsed)) = x509_parser::parse_x509_certificate(&der)
        && parsed
            .validity()
            .time_to_expiration()
            .is_some_and(|left| left > time::Duration::hours(24))
    {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    let csr = csr_pem(&key, sans)?;
    let refused =
        |e: crate::ApiError| ServerError::Tls(format!("issuing the listener certificate: {e}"));
    // As long as the provisioner and the server profile allow, up to three days.
    let mut ttl = time::Duration::hours(72).min(
        state
            .profiles
            .get(&LeafKind::Server)
            .map(|p| p.max_ttl)
            .unwrap_or(time::Duration::hours(24)),
    );
    if let Some(policy) = state.provisioners.get(provisioner) {
        ttl = ttl.min(policy.max_ttl);
    }
    let (token, _) = issuance::create_token(
        state,
        "carimbo (listener certificate)",
        issuance::TokenRequest {
            provisioner: provisioner.to_owned(),
            profile: LeafKind::Server,
            sans: sans.to_vec(),
            ttl,
            expires_in: time::Duration::minutes(1),
        },
    )
    .await
    .map_err(refused)?;
    let caller = issuance::authenticate_token(state, &token, "listener-certificate")
        .await
        .map_err(refused)?;
    let issued = issuance::issue(
        state,
        &caller,
        issuance::CertificateRequest {
            csr: csr.into_bytes(),
            profile: LeafKind::Server,
            ttl: Some(ttl),
        },
        true,
    )
    .await
    .map_err(refused)?;
    let mut chain = issued.certificate.clone();
    for certificate in &issued.chain {
        chain.push_str(certificate);
    }
    let key_path = dir.join("server.key");
    let keep = |e: carimbo_kms::Error| ServerError::Tls(e.to_string());
    carimbo_kms::write_private_file_atomically(&key_path, key.serialize_pem().as_bytes())
        .map_err(keep)?;
    carimbo_kms::write_private_file_atomically(&certificate, chain.as_bytes()).map_err(keep)?;
    Ok(())
}
