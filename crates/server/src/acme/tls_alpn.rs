//! tls-alpn-01 validation (RFC 8737): a TLS handshake with the name being validated
//! (SNI = the name, ALPN `acme-tls/1` only), on the configured port, to an address the
//! address policy permits. The certificate presented is not checked against any trust
//! anchor (it is self-signed by design); what counts is that it has exactly one SAN,
//! the name, and the critical `acmeIdentifier` extension holding SHA-256 of the key
//! authorization, and that the server chose `acme-tls/1`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;

use super::validation::{AddressPolicy, ValidationError, resolve_permitted};

/// The ALPN protocol of the challenge.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// id-pe-acmeIdentifier (RFC 8737 §6.1), dotted.
const ACME_IDENTIFIER_OID: &str = "1.3.6.1.5.5.7.1.31";

fn failed(kind: &'static str, detail: impl Into<String>) -> ValidationError {
    ValidationError {
        kind,
        detail: detail.into(),
    }
}

/// Accepts any certificate (it is self-signed and carries a critical extension that
/// certificate-path libraries refuse), but still checks the handshake signature with
/// the certificate's own key, so the peer holds that key.
#[derive(Debug)]
struct AnyCertificate;

/// The schemes checked, and how.
const SCHEMES: &[(
    SignatureScheme,
    &dyn aws_lc_rs::signature::VerificationAlgorithm,
)] = &[
    (
        SignatureScheme::ECDSA_NISTP256_SHA256,
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
    ),
    (
        SignatureScheme::ECDSA_NISTP384_SHA384,
        &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1,
    ),
    (SignatureScheme::ED25519, &aws_lc_rs::signature::ED25519),
    (
        SignatureScheme::RSA_PSS_SHA256,
        &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA256,
    ),
    (
        SignatureScheme::RSA_PSS_SHA384,
        &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA384,
    ),
    (
        SignatureScheme::RSA_PSS_SHA512,
        &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA512,
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA256,
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA384,
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA384,
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA512,
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA512,
    ),
];

impl AnyCertificate {
    fn verify(
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signed: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let invalid = || rustls::Error::General("handshake signature does not verify".into());
        let algorithm = SCHEMES
            .iter()
            .find(|(scheme, _)| *scheme == signed.scheme)
            .map(|(_, algorithm)| *algorithm)
            .ok_or_else(invalid)?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(certificate.as_ref()).map_err(|_| invalid())?;
        let key = parsed.public_key().subject_public_key.data.as_ref();
        aws_lc_rs::signature::UnparsedPublicKey::new(algorithm, key)
            .verify(message, signed.signature())
            .map_err(|_| invalid())?;
        Ok(HandshakeSignatureValid::assertion())
    }
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::verify(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Self::verify(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.iter().map(|(scheme, _)| *scheme).collect()
    }
}

/// Settings of one tls-alpn-01 validation.
#[derive(Clone, Debug)]
pub struct TlsAlpn01 {
    /// Port to connect to (443 unless configured).
    pub port: u16,
    /// Which addresses may be contacted.
    pub policy: AddressPolicy,
    /// Time limit of the whole validation.
    pub timeout: Duration,
}

impl TlsAlpn01 {
    /// Validates `name` against the key authorization.
    pub async fn validate(
        &self,
        name: &str,
        key_authorization: &str,
    ) -> Result<(), ValidationError> {
        let digest = crate::state::sha256(key_authorization.as_bytes());
        match tokio::time::timeout(self.timeout, self.validate_inner(name, &digest)).await {
            Ok(result) => result,
            Err(_) => Err(failed(
                "connection",
                format!(
                    "validation of {name} did not finish within {} s",
                    self.timeout.as_secs()
                ),
            )),
        }
    }

    async fn validate_inner(&self, name: &str, digest: &[u8; 32]) -> Result<(), ValidationError> {
        let addresses = resolve_permitted(name, self.port, &self.policy).await?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(AnyCertificate);
        let mut config = rustls::ClientConfig::builder_with_provider(
            Arc::clone(&provider) as Arc<CryptoProvider>
        )
        .with_safe_default_protocol_versions()
        .map_err(|e| failed("serverInternal", format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|_| failed("malformed", format!("{name} is not a DNS name")))?;
        let mut last_error = String::new();
        for address in addresses {
            let target = SocketAddr::new(address, self.port);
            let stream = match TcpStream::connect(target).await {
                Ok(stream) => stream,
                Err(error) => {
                    last_error = format!("{target}: {error}");
                    continue;
                }
            };
            let tls = connector
                .connect(server_name.clone(), stream)
                .await
                .map_err(|e| failed("tls", format!("TLS handshake with {target} failed: {e}")))?;
            let (_, session) = tls.get_ref();
            if session.alpn_protocol() != Some(ACME_TLS_ALPN) {
                return Err(failed(
                    "incorrectResponse",
                    format!("{name} did not negotiate the acme-tls/1 protocol"),
                ));
            }
            let certificate = session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .ok_or_else(|| failed("incorrectResponse", "no certificate presented"))?;
            return check_certificate(certificate.as_ref(), name, digest);
        }
        Err(failed(
            "connection",
            format!("cannot connect to {name}: {last_error}"),
        ))
    }
}

/// RFC 8737 §3: exactly one SAN, the dNSName `name`, and a critical acmeIdentifier
/// extension whose value is the DER OCTET STRING of `digest`.
pub fn check_certificate(der: &[u8], name: &str, digest: &[u8; 32]) -> Result<(), ValidationError> {
    use x509_parser::extensions::{GeneralName, ParsedExtension};
    let wrong = |detail: String| failed("incorrectResponse", detail);
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| wrong("the presented certificate does not parse".into()))?;
    let mut names = Vec::new();
    let mut identifier = None;
    for extension in certificate.extensions() {
        if extension.oid.to_id_string() == ACME_IDENTIFIER_OID {
            if !extension.critical {
                return Err(wrong("the acmeIdentifier extension is not critical".into()));
            }
            identifier = Some(extension.value);
        }
        if let ParsedExtension::SubjectAlternativeName(san) = extension.parsed_extension() {
            names.extend(san.general_names.iter().map(|n| match n {
                GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                _ => None,
            }));
        }
    }
    if names.len() != 1 || names[0].as_deref() != Some(name.to_ascii_lowercase().as_str()) {
        return Err(wrong(format!(
            "the certificate must name exactly {name} as its only subject alternative name"
        )));
    }
    let mut expected = vec![0x04, 0x20];
    expected.extend_from_slice(digest);
    match identifier {
        Some(value) if value == expected.as_slice() => Ok(()),
        Some(_) => Err(wrong(
            "the acmeIdentifier does not match the key authorization".into(),
        )),
        None => Err(wrong(
            "the certificate has no acmeIdentifier extension".into(),
        )),
    }
}
