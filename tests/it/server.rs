//! The issuing service end to end: a real HTTPS server on 127.0.0.1 over real SQLite,
//! with the intermediates the ceremony put in SoftHSM2. Certificates are checked with
//! `openssl verify`, Python `cryptography` path validation and an `openssl s_server` /
//! `s_client` mTLS handshake; bad requests must get their 4xx and code and leave only
//! an audit record.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use carimbo_ceremony::credentials::PinCheckFile;
use carimbo_ceremony::shares::{ShareFile, join};
use carimbo_server::config::LoadedConfig;
use carimbo_server::state::SerialSource;
use carimbo_server::{AppState, Listeners};
use carimbo_store::SqliteStore;
use carimbo_tests::{ceremony_pki, openssl, random_hex, softhsm, write_private};
use serde_json::{Value, json};

/// A running CA for the tests of this module.
pub(crate) struct TestCa {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) jwt_key: rcgen::KeyPair,
    pub(crate) url: String,
    pub(crate) publication_url: String,
    pub(crate) dir: PathBuf,
    pub(crate) bundle: PathBuf,
    pub(crate) admin_token: String,
    pub(crate) state: Arc<AppState>,
    pub(crate) client: reqwest::Client,
    /// The store, to close it (a database that went away).
    pub(crate) sqlite: Arc<SqliteStore>,
}

pub(crate) fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The CA token's user PIN, joined from two holders' shares (the service keeps it in a
/// secret file; officers provide it once).
pub(crate) fn ca_pin(pki: &carimbo_tests::CeremonyPki) -> String {
    let check: PinCheckFile =
        toml::from_str(&std::fs::read_to_string(pki.path("ca-pins.toml")).unwrap()).unwrap();
    let shares: Vec<ShareFile> = [
        "ca-shares/1-ana-souza.user.share",
        "ca-shares/2-bruno-lima.user.share",
    ]
    .iter()
    .map(|name| {
        let path = pki.path(name);
        ShareFile::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap()
    })
    .collect();
    String::from_utf8(join(&shares, "CA user PIN", &check.user).unwrap().to_vec()).unwrap()
}

/// The CA shared by the tests of this module.
pub(crate) fn test_ca() -> Option<&'static TestCa> {
    static CA: OnceLock<TestCa> = OnceLock::new();
    ceremony_pki()?;
    Some(CA.get_or_init(|| start_ca().unwrap()))
}

/// A CA of its own (own database and audit chain), for tests that count rows.
pub(crate) fn start_ca() -> Option<TestCa> {
    let pki = ceremony_pki()?;
    let token = softhsm()?;
    Some({
        let keep = tempfile::tempdir().unwrap();
        let dir = keep.keep();
        write_private(&dir.join("ca.pin"), ca_pin(pki).as_bytes());
        std::fs::write(
            dir.join("pkcs11-ca.toml"),
            format!(
                "version = 1\nmodule = {:?}\ntoken-label = {:?}\npin-file = \"ca.pin\"\nsessions = 8\n",
                token.module, token.ca_label
            ),
        )
        .unwrap();
        // The JWT issuer's key (an Ed25519 key, as a cluster's token signer) and JWKS.
        let jwt_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let x = {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(jwt_key.public_key_raw())
        };
        std::fs::write(
            dir.join("jwks.json"),
            json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "x": x, "alg": "EdDSA", "kid": "k1", "use": "sig" }] })
                .to_string(),
        )
        .unwrap();
        let admin_token = format!("cat_{}", random_hex(32));
        write_private(&dir.join("admin.token"), admin_token.as_bytes());
        for name in ["kms-admin", "kms-payments", "kms-ci", "kms-everything"] {
            write_private(
                &dir.join(format!("{name}.token")),
                format!("{name}-{}", random_hex(16)).as_bytes(),
            );
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (api, publication) = runtime.block_on(async {
            (
                tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
                tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            )
        });
        let api_address = api.local_addr().unwrap();
        let publication_address = publication.local_addr().unwrap();
        let ceremony = |name: &str| pki.path(name).display().to_string();
        std::fs::write(
            dir.join("carimbo.toml"),
            format!(
                r#"version = 1
[server]
listen = "{api_address}"
publication-listen = "{publication_address}"
publication-url = "http://{publication_address}"
max-body-bytes = 16384
[tls]
certificate = "tls/server.pem"
key = "tls/server.key"
[database]
sqlite = "carimbo.db"
[keys]
pkcs11-config = "pkcs11-ca.toml"
[[issuers]]
name = "int-server"
profiles = ["server"]
certificate = {server:?}
chain = [{root:?}]
key-reference = {server_key:?}
[[issuers]]
name = "int-workload"
profiles = ["client", "workload"]
certificate = {workload:?}
chain = [{root:?}]
key-reference = {workload_key:?}
ocsp-nonce = true
crl-shards = 4
[[provisioners]]
name = "lab"
type = "token"
profiles = ["server", "client", "workload"]
sans = ["dns:**.example.com", "dns:localhost", "ip:127.0.0.1", "uri:spiffe://lab.example.com/**"]
max-ttl = "72h"
[[provisioners]]
name = "k8s"
type = "jwt"
profiles = ["workload"]
sans = ["uri:spiffe://lab.example.com/ns/*/sa/*"]
max-ttl = "6h"
[provisioners.jwt]
jwks = "jwks.json"
issuer = "https://kubernetes.default.svc"
audience = "carimbo"
algorithms = ["EdDSA"]
san-templates = ["uri:spiffe://{{trust-domain}}/ns/{{/kubernetes.io/namespace}}/sa/{{/kubernetes.io/serviceaccount/name}}"]
variables = {{ trust-domain = "lab.example.com" }}
[[provisioners]]
name = "short"
type = "token"
profiles = ["server"]
sans = ["dns:*.short.example.com"]
max-ttl = "1h"
lineage-max-age = "2s"
[[provisioners]]
name = "narrow"
type = "token"
profiles = ["server"]
sans = ["dns:*.narrow.example.com"]
max-ttl = "24h"
[revocation]
crl-directory = "crl-out"
[metrics]
store-refresh = "0s"
[[admins]]
name = "alice"
role = "admin"
token-file = "admin.token"
[[admins]]
name = "kim"
role = "kms-admin"
token-file = "kms-admin.token"
[kms]
provider = "pkcs11"
pkcs11-config = {kms_token:?}
max-batch = 10
[[kms.rotation]]
keys = ["hmac/test/rot-*"]
every = "2s"
[[kms.clients]]
name = "payments"
token-file = "kms-payments.token"
[[kms.clients]]
name = "ci"
token-file = "kms-ci.token"
[[kms.clients]]
name = "everything"
token-file = "kms-everything.token"
[[kms.rules]]
identities = ["client:payments"]
keys = ["envelope-data/test/payments-*"]
operations = ["encrypt", "decrypt", "datakey", "rewrap"]
purposes = ["envelope"]
context = {{ tenant = "acme" }}
[[kms.rules]]
identities = ["spiffe://lab.example.com/ns/ml/**"]
keys = ["model-sign/test/*"]
operations = ["sign", "verify"]
[[kms.rules]]
identities = ["client:everything"]
keys = ["**"]
operations = ["encrypt", "decrypt", "datakey", "rewrap", "sign", "verify", "hmac", "verify-hmac", "public-key"]
"#,
                server = ceremony("int-server.pem"),
                workload = ceremony("int-workload.pem"),
                root = ceremony("root.pem"),
                server_key = ceremony("int-server.key.toml"),
                workload_key = ceremony("int-workload.key.toml"),
                kms_token = token.config_file,
            ),
        )
        .unwrap();
        let loaded = LoadedConfig::load(&dir.join("carimbo.toml")).unwrap();
        let sqlite = Arc::new(
            runtime
                .block_on(SqliteStore::open(&dir.join("carimbo.db")))
                .unwrap(),
        );
        let state = runtime.block_on(async {
            let store: Arc<dyn carimbo_store::Store> = sqlite.clone();
            Arc::new(AppState::build(&loaded, store).await.unwrap())
        });
        // The listener's own certificate comes from the normal issuance path.
        runtime
            .block_on(carimbo_server::tls::issue_listener_certificate(
                &state,
                "lab",
                &dir.join("tls"),
                &[
                    "dns:ca.example.com".parse().unwrap(),
                    "ip:127.0.0.1".parse().unwrap(),
                ],
            ))
            .unwrap();
        runtime.block_on(carimbo_server::prepare(&state)).unwrap();
        let tls = carimbo_server::tls::server_config(
            &dir.join("tls/server.pem"),
            &dir.join("tls/server.key"),
            &state.client_anchors(),
        )
        .unwrap();
        let serving = Arc::clone(&state);
        runtime.spawn(async move {
            carimbo_server::serve(
                Listeners {
                    api: Some(api),
                    publication: Some(publication),
                },
                Some(tls),
                serving,
                std::future::pending(),
            )
            .await
            .unwrap();
        });
        let bundle = pki.path("root.pem");
        let root = reqwest::Certificate::from_pem(&std::fs::read(&bundle).unwrap()).unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_only([root])
            .build()
            .unwrap();
        TestCa {
            runtime,
            jwt_key,
            url: format!("https://{api_address}"),
            publication_url: format!("http://{publication_address}"),
            dir,
            bundle,
            admin_token,
            state,
            client,
            sqlite,
        }
    })
}

impl TestCa {
    /// POSTs `body` to `path` with `bearer`; returns status and JSON body.
    pub(crate) fn post(
        &self,
        path: &str,
        bearer: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        self.runtime.block_on(async {
            let mut request = self
                .client
                .post(format!("{}{path}", self.url))
                .header("content-type", content_type)
                .body(body);
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        })
    }

    pub(crate) fn get(&self, url: &str) -> (u16, Vec<u8>) {
        self.runtime.block_on(async {
            let response = self.client.get(url).send().await.unwrap();
            (
                response.status().as_u16(),
                response.bytes().await.unwrap().to_vec(),
            )
        })
    }

    /// Mints a bootstrap token through the admin API.
    pub(crate) fn token(
        &self,
        provisioner: &str,
        profile: &str,
        sans: &[&str],
        ttl: &str,
        expires_in: &str,
    ) -> String {
        let body = json!({ "provisioner": provisioner, "profile": profile, "sans": sans, "ttl": ttl, "expires_in": expires_in });
        let (status, reply) = self.post(
            "/v1/admin/tokens",
            Some(&self.admin_token),
            "application/json",
            body.to_string().into_bytes(),
        );
        assert_eq!(status, 201, "{reply}");
        reply["token"].as_str().unwrap().to_owned()
    }

    pub(crate) fn issue(
        &self,
        token: &str,
        csr: &str,
        profile: &str,
        ttl: Option<&str>,
    ) -> (u16, Value) {
        let mut body = json!({ "csr": csr, "profile": profile });
        if let Some(ttl) = ttl {
            body["ttl"] = json!(ttl);
        }
        self.post(
            "/v1/certificates",
            Some(token),
            "application/json",
            body.to_string().into_bytes(),
        )
    }

    pub(crate) fn counts(&self) -> (u64, u64) {
        self.runtime.block_on(async {
            let counts = self.state.store.count_by_status().await.unwrap();
            let total: u64 = counts.values().sum();
            let audit = self
                .state
                .store
                .audit_events(&self.state.audit_chain, 0, 100_000)
                .await
                .unwrap();
            (total, audit.len() as u64)
        })
    }
}

/// A key and CSR made by openssl (an independent implementation).
pub(crate) struct Request {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) csr: String,
}

impl Request {
    pub(crate) fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

pub(crate) fn openssl_csr(key_args: &[&str], extensions: &[&str]) -> Request {
    let dir = tempfile::tempdir().unwrap();
    let (key, csr) = (dir.path().join("key.pem"), dir.path().join("csr.pem"));
    let mut args = vec![
        "req",
        "-new",
        "-nodes",
        "-subj",
        "/",
        "-keyout",
        s(&key),
        "-out",
        s(&csr),
    ];
    args.extend(key_args);
    for extension in extensions {
        args.extend(["-addext", extension]);
    }
    let (ok, text) = openssl(&args);
    assert!(ok, "openssl req: {text}");
    let csr = std::fs::read_to_string(&csr).unwrap();
    Request { dir, csr }
}

pub(crate) fn p256(extensions: &[&str]) -> Request {
    openssl_csr(
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        extensions,
    )
}

/// Writes the PEM of an issuance reply to files: (cert, chain, fullchain).
pub(crate) fn write_issued(dir: &Path, reply: &Value) -> (PathBuf, PathBuf) {
    let certificate = dir.join("cert.pem");
    let chain = dir.join("chain.pem");
    std::fs::write(&certificate, reply["certificate"].as_str().unwrap()).unwrap();
    let chain_text: String = reply["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    std::fs::write(&chain, chain_text).unwrap();
    (certificate, chain)
}

fn python_validates(
    ca: &TestCa,
    certificate: &Path,
    chain: &Path,
    server_name: Option<&str>,
) -> bool {
    let python = std::env::var("CARIMBO_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = r#"
import sys, datetime
from cryptography import x509
from cryptography.x509 import DNSName
from cryptography.x509.verification import PolicyBuilder, Store
root = x509.load_pem_x509_certificates(open(sys.argv[1], 'rb').read())
leaf = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
chain = x509.load_pem_x509_certificates(open(sys.argv[3], 'rb').read())
builder = PolicyBuilder().store(Store(root)).time(datetime.datetime.now(datetime.timezone.utc))
if sys.argv[4] == '-':
    builder.build_client_verifier().verify(leaf, chain)
else:
    builder.build_server_verifier(DNSName(sys.argv[4])).verify(leaf, chain)
print('valid')
"#;
    let output = Command::new(python)
        .args([
            "-c",
            script,
            s(&ca.bundle),
            s(certificate),
            s(chain),
            server_name.unwrap_or("-"),
        ])
        .output()
        .unwrap();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("No module named") {
            carimbo_tests::skip("python3 with cryptography", &stderr);
            return true;
        }
        eprintln!("python: {stderr}");
    }
    output.status.success()
}

#[test]
fn issues_server_client_and_workload_certificates_that_verify() {
    let Some(ca) = test_ca() else { return };
    let cases = [
        (
            "server",
            vec!["subjectAltName=DNS:api.example.com,IP:127.0.0.1"],
            "sslserver",
            Some("api.example.com"),
        ),
        (
            "client",
            vec!["subjectAltName=URI:spiffe://lab.example.com/ns/ml/sa/trainer"],
            "sslclient",
            None,
        ),
        (
            "workload",
            vec!["subjectAltName=URI:spiffe://lab.example.com/ns/ml/sa/server"],
            "sslclient",
            None,
        ),
    ];
    for (profile, extensions, purpose, server_name) in cases {
        let request = p256(&extensions);
        let sans: Vec<String> = extensions[0]
            .trim_start_matches("subjectAltName=")
            .split(',')
            .map(|s| match s.split_once(':').unwrap() {
                ("DNS", v) => format!("dns:{v}"),
                ("IP", v) => format!("ip:{v}"),
                ("URI", v) => format!("uri:{v}"),
                _ => unreachable!(),
            })
            .collect();
        let sans: Vec<&str> = sans.iter().map(String::as_str).collect();
        let token = ca.token("lab", profile, &sans, "12h", "10m");
        let (status, reply) = ca.issue(&token, &request.csr, profile, Some("6h"));
        assert_eq!(status, 201, "{profile}: {reply}");
        let (certificate, chain) = write_issued(request.dir.path(), &reply);
        let (ok, text) = openssl(&[
            "verify",
            "-x509_strict",
            "-purpose",
            purpose,
            "-CAfile",
            s(&ca.bundle),
            "-untrusted",
            s(&chain),
            s(&certificate),
        ]);
        assert!(ok, "{profile}: openssl verify -purpose {purpose}: {text}");
        if profile == "client" {
            // A client certificate is not a server certificate.
            let (ok, _) = openssl(&[
                "verify",
                "-purpose",
                "sslserver",
                "-CAfile",
                s(&ca.bundle),
                "-untrusted",
                s(&chain),
                s(&certificate),
            ]);
            assert!(!ok, "client certificate passed as a server certificate");
        }
        if profile == "workload" {
            let (ok, text) = openssl(&[
                "verify",
                "-purpose",
                "sslserver",
                "-CAfile",
                s(&ca.bundle),
                "-untrusted",
                s(&chain),
                s(&certificate),
            ]);
            assert!(
                ok,
                "workload (X509-SVID) must also be a server certificate: {text}"
            );
        }
        assert!(
            python_validates(ca, &certificate, &chain, server_name),
            "{profile}: Python path validation failed"
        );
        // The lifetime asked for, within a second or two (backdated by a minute).
        let (_, text) = openssl(&["x509", "-in", s(&certificate), "-noout", "-dates", "-text"]);
        assert!(
            text.contains("Subject: \n")
                || text.contains("Subject:\n")
                || text.contains("Subject: "),
            "{text}"
        );
        // The database has the row, with the same certificate.
        let serial = reply["serial"].as_str().unwrap();
        let (status, body) = ca.get(&format!("{}/v1/certificates/{serial}", ca.url));
        assert_eq!(status, 200);
        let record: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(record["status"], "issued");
        assert_eq!(record["certificate"], reply["certificate"]);
        assert_eq!(record["profile"], profile);
    }
    // The chain and caIssuers endpoints serve what relying parties need.
    let (status, chain) = ca.get(&format!("{}/v1/ca/chain", ca.url));
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&chain)
            .matches("BEGIN CERTIFICATE")
            .count()
            >= 3
    );
    let (status, der) = ca.get(&format!("{}/ca/int-server.cer", ca.publication_url));
    assert_eq!(status, 200);
    let path = ca.dir.join("int-server-fetched.cer");
    std::fs::write(&path, der).unwrap();
    let (ok, text) = openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        s(&path),
        "-noout",
        "-subject",
    ]);
    assert!(ok && text.contains("Example Corp Server CA 2026"), "{text}");
}

#[test]
fn two_workload_certificates_complete_an_mtls_handshake() {
    let Some(ca) = test_ca() else { return };
    let mut issued = Vec::new();
    for name in ["frontend", "backend"] {
        let uri = format!("spiffe://lab.example.com/ns/shop/sa/{name}");
        let request = p256(&[&format!("subjectAltName=URI:{uri}")]);
        let token = ca.token("lab", "workload", &[&format!("uri:{uri}")], "1h", "5m");
        let (status, reply) = ca.issue(&token, &request.csr, "workload", None);
        assert_eq!(status, 201, "{reply}");
        let (certificate, chain) = write_issued(request.dir.path(), &reply);
        issued.push((request, certificate, chain));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (server, client) = (&issued[0], &issued[1]);
    let mut s_server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-naccept",
            "1",
            "-Verify",
            "2",
            "-verify_return_error",
        ])
        .args([
            "-cert",
            s(&server.1),
            "-key",
            s(&server.0.key()),
            "-cert_chain",
            s(&server.2),
        ])
        .args([
            "-CAfile",
            s(&ca.bundle),
            "-chainCAfile",
            s(&server.2),
            "-purpose",
            "sslclient",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut connected = false;
    let mut text = String::new();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let output = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-verify_return_error",
                "-brief",
            ])
            .args([
                "-cert",
                s(&client.1),
                "-key",
                s(&client.0.key()),
                "-cert_chain",
                s(&client.2),
            ])
            .args(["-CAfile", s(&ca.bundle), "-purpose", "sslserver"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if text.contains("Connection refused") || text.contains("connect:errno") {
            continue;
        }
        connected = output.status.success() && text.contains("Verification: OK");
        break;
    }
    let _ = s_server.kill();
    let server_output = s_server.wait_with_output().unwrap();
    let server_text = String::from_utf8_lossy(&server_output.stderr);
    assert!(connected, "s_client: {text}\ns_server: {server_text}");
}

/// One bad request: a description, the request, and the status and code expected.
struct Bad {
    what: &'static str,
    status: u16,
    code: &'static str,
}

#[test]
fn bad_requests_get_their_4xx_and_leave_only_an_audit_record() {
    let Some(ca) = start_ca() else { return };
    let ca = &ca;
    let good_csr = p256(&["subjectAltName=DNS:good.example.com"]).csr;
    let ok_token = |profile: &str, sans: &[&str]| ca.token("lab", profile, sans, "12h", "10m");
    type Run<'a> = Box<dyn Fn() -> (u16, Value) + 'a>;
    let mut cases: Vec<(Bad, Run)> = Vec::new();
    let json_body = |csr: &str, profile: &str| {
        json!({ "csr": csr, "profile": profile })
            .to_string()
            .into_bytes()
    };
    macro_rules! case {
        ($what:expr, $status:expr, $code:expr, $run:expr) => {
            cases.push((
                Bad {
                    what: $what,
                    status: $status,
                    code: $code,
                },
                Box::new($run),
            ));
        };
    }
    // Authentication and body.
    case!("no credential", 401, "unauthorized", || ca.post(
        "/v1/certificates",
        None,
        "application/json",
        json_body("x", "server")
    ));
    case!("unknown token", 401, "unauthorized", || ca
        .issue("cbt_nope", "x", "server", None));
    case!("not a token", 401, "unauthorized", || ca
        .issue("hello", "x", "server", None));
    let used = ok_token("server", &["dns:good.example.com"]);
    let (status, _) = ca.issue(&used, &good_csr, "server", None);
    assert_eq!(status, 201);
    case!("reused token", 401, "token_used", move || ca
        .issue(&used, &good_csr, "server", None));
    let expiring = ok_token("server", &["dns:good.example.com"]);
    case!("wrong content type", 415, "unsupported_media_type", {
        let token = expiring.clone();
        move || {
            ca.post(
                "/v1/certificates",
                Some(&token),
                "text/plain",
                b"{}".to_vec(),
            )
        }
    });
    case!("oversized body", 413, "payload_too_large", {
        let token = expiring.clone();
        move || {
            ca.post(
                "/v1/certificates",
                Some(&token),
                "application/json",
                vec![b' '; 20_000],
            )
        }
    });
    case!("not JSON", 400, "malformed_request", {
        let token = expiring.clone();
        move || {
            ca.post(
                "/v1/certificates",
                Some(&token),
                "application/json",
                b"{csr".to_vec(),
            )
        }
    });
    case!("unknown JSON field", 400, "malformed_request", {
        let token = expiring.clone();
        move || {
            ca.post(
                "/v1/certificates",
                Some(&token),
                "application/json",
                br#"{"csr":"x","profile":"server","ca":true}"#.to_vec(),
            )
        }
    });
    case!("unknown profile", 400, "unknown_profile", {
        let token = expiring.clone();
        move || ca.issue(&token, "x", "superuser", None)
    });
    case!("malformed ttl", 400, "malformed_request", {
        let token = expiring.clone();
        move || {
            ca.post(
                "/v1/certificates",
                Some(&token),
                "application/json",
                json!({"csr":"x","profile":"server","ttl":"soon"})
                    .to_string()
                    .into_bytes(),
            )
        }
    });
    // The CSR. Each spends a fresh token.
    let csr_case = |extensions: &[&str], key: &[&str]| openssl_csr(key, extensions).csr;
    let with_token = |profile: &'static str,
                      sans: &'static [&'static str],
                      csr: String,
                      ttl: Option<&'static str>| {
        let token = ok_token(profile, sans);
        move || ca.issue(&token, &csr, profile, ttl)
    };
    case!(
        "malformed PEM",
        400,
        "malformed_csr",
        with_token(
            "server",
            &["dns:a.example.com"],
            "-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n"
                .into(),
            None
        )
    );
    case!(
        "a certificate instead of a CSR",
        400,
        "malformed_csr",
        with_token(
            "server",
            &["dns:a.example.com"],
            std::fs::read_to_string(&ca.bundle).unwrap(),
            None
        )
    );
    let mut tampered = p256(&["subjectAltName=DNS:a.example.com"]).csr;
    {
        // Flip one base64 character inside the signature (near the end of the PEM body).
        let end = tampered.rfind("\n-----END").unwrap();
        let index = end - 5;
        let byte = tampered.as_bytes()[index];
        let replacement = if byte == b'A' { "B" } else { "A" };
        tampered.replace_range(index..index + 1, replacement);
    }
    case!(
        "CSR with a bad signature",
        400,
        "bad_csr_signature",
        with_token("server", &["dns:a.example.com"], tampered, None)
    );
    case!(
        "RSA 2048",
        400,
        "weak_key",
        with_token(
            "server",
            &["dns:a.example.com"],
            csr_case(
                &["subjectAltName=DNS:a.example.com"],
                &["-newkey", "rsa:2048"]
            ),
            None
        )
    );
    case!(
        "P-192",
        400,
        "weak_key",
        with_token(
            "server",
            &["dns:a.example.com"],
            csr_case(
                &["subjectAltName=DNS:a.example.com"],
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime192v1"]
            ),
            None
        )
    );
    case!(
        "Ed25519 not enabled",
        400,
        "unsupported_key",
        with_token(
            "server",
            &["dns:a.example.com"],
            csr_case(
                &["subjectAltName=DNS:a.example.com"],
                &["-newkey", "ed25519"]
            ),
            None
        )
    );
    case!(
        "no SAN",
        400,
        "no_san",
        with_token(
            "server",
            &["dns:a.example.com"],
            csr_case(
                &[],
                &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
            ),
            None
        )
    );
    case!(
        "CSR asks for CA:TRUE",
        400,
        "ca_requested",
        with_token(
            "server",
            &["dns:a.example.com"],
            p256(&[
                "subjectAltName=DNS:a.example.com",
                "basicConstraints=critical,CA:TRUE"
            ])
            .csr,
            None
        )
    );
    // Names and policy.
    case!(
        "SAN outside the provisioner's policy",
        403,
        "forbidden",
        with_token(
            "server",
            &["dns:a.example.com"],
            p256(&["subjectAltName=DNS:a.example.org"]).csr,
            None
        )
    );
    case!(
        "SAN beyond what the token allows",
        403,
        "forbidden",
        with_token(
            "server",
            &["dns:a.example.com"],
            p256(&["subjectAltName=DNS:a.example.com,DNS:b.example.com"]).csr,
            None
        )
    );
    case!(
        "wildcard not allowed",
        400,
        "wildcard_not_allowed",
        with_token(
            "server",
            &["dns:a.example.com"],
            p256(&["subjectAltName=DNS:*.example.com"]).csr,
            None
        )
    );
    case!(
        "IP SAN on a client certificate",
        400,
        "san_not_allowed_by_profile",
        with_token(
            "client",
            &["uri:spiffe://lab.example.com/ns/a/sa/b"],
            p256(&["subjectAltName=URI:spiffe://lab.example.com/ns/a/sa/b,IP:127.0.0.1"]).csr,
            None
        )
    );
    case!("second URI SAN on a workload", 400, "uri_san_count", with_token("workload", &["uri:spiffe://lab.example.com/ns/a/sa/b"], p256(&["subjectAltName=URI:spiffe://lab.example.com/ns/a/sa/b,URI:spiffe://lab.example.com/ns/a/sa/c"]).csr, None));
    case!(
        "SPIFFE ID with a root path",
        400,
        "invalid_spiffe_id",
        with_token(
            "workload",
            &["uri:spiffe://lab.example.com/ns/a/sa/b"],
            p256(&["subjectAltName=URI:spiffe://lab.example.com"]).csr,
            None
        )
    );
    case!(
        "SPIFFE ID with ..",
        400,
        "invalid_spiffe_id",
        with_token(
            "workload",
            &["uri:spiffe://lab.example.com/ns/a/sa/b"],
            p256(&["subjectAltName=URI:spiffe://lab.example.com/ns/../sa/b"]).csr,
            None
        )
    );
    case!(
        "workload token used for a server certificate",
        403,
        "forbidden",
        {
            let token = ok_token("workload", &["uri:spiffe://lab.example.com/ns/a/sa/b"]);
            let csr = p256(&["subjectAltName=DNS:a.example.com"]).csr;
            move || ca.issue(&token, &csr, "server", None)
        }
    );
    case!(
        "TTL above the profile's max (refused, not capped)",
        400,
        "ttl_too_long",
        with_token(
            "server",
            &["dns:a.example.com"],
            p256(&["subjectAltName=DNS:a.example.com"]).csr,
            Some("100h")
        )
    );
    case!(
        "TTL above the token's",
        403,
        "forbidden",
        with_token(
            "server",
            &["dns:a.example.com"],
            p256(&["subjectAltName=DNS:a.example.com"]).csr,
            Some("13h")
        )
    );
    case!(
        "negative TTL",
        400,
        "invalid_ttl",
        with_token(
            "server",
            &["dns:a.example.com"],
            p256(&["subjectAltName=DNS:a.example.com"]).csr,
            Some("0s")
        )
    );
    case!("expired token", 401, "token_expired", {
        let token = ca.token("lab", "server", &["dns:a.example.com"], "1h", "1s");
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let csr = p256(&["subjectAltName=DNS:a.example.com"]).csr;
        move || ca.issue(&token, &csr, "server", None)
    });
    // Admin API.
    case!(
        "token minted without admin credential",
        401,
        "unauthorized",
        || {
            ca.post(
                "/v1/admin/tokens",
                Some("cat_wrong"),
                "application/json",
                json!({"provisioner":"lab","profile":"server","sans":["dns:a.example.com"]})
                    .to_string()
                    .into_bytes(),
            )
        }
    );
    case!(
        "token minted beyond the provisioner",
        403,
        "forbidden",
        || {
            ca.post(
                "/v1/admin/tokens",
                Some(&ca.admin_token),
                "application/json",
                json!({"provisioner":"narrow","profile":"server","sans":["dns:a.example.com"]})
                    .to_string()
                    .into_bytes(),
            )
        }
    );
    assert!(cases.len() >= 25, "{} cases", cases.len());

    for (bad, run) in cases {
        let (certificates_before, audit_before) = ca.counts();
        let (status, reply) = run();
        assert_eq!(status, bad.status, "{}: {reply}", bad.what);
        assert_eq!(reply["code"], bad.code, "{}: {reply}", bad.what);
        assert!(
            reply["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}: {reply}",
            bad.what
        );
        let (certificates_after, audit_after) = ca.counts();
        assert_eq!(
            certificates_after, certificates_before,
            "{}: a certificate row was written",
            bad.what
        );
        assert!(audit_after > audit_before, "{}: no audit record", bad.what);
    }
}

#[test]
fn a_thousand_concurrent_issuances_all_have_their_rows() {
    let Some(ca) = test_ca() else { return };
    const COUNT: usize = 1000;
    let csr = p256(&["subjectAltName=DNS:load.example.com"]).csr;
    let tokens: Vec<String> = (0..COUNT)
        .map(|_| ca.token("lab", "server", &["dns:load.example.com"], "1h", "30m"))
        .collect();
    let replies = ca.runtime.block_on(async {
        let semaphore = Arc::new(tokio::sync::Semaphore::new(64));
        let mut handles = Vec::new();
        for token in tokens {
            let (client, url, csr, semaphore) = (
                ca.client.clone(),
                ca.url.clone(),
                csr.clone(),
                Arc::clone(&semaphore),
            );
            handles.push(tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await.unwrap();
                let response = client
                    .post(format!("{url}/v1/certificates"))
                    .bearer_auth(token)
                    .json(&json!({ "csr": csr, "profile": "server" }))
                    .send()
                    .await
                    .unwrap();
                (
                    response.status().as_u16(),
                    response.json::<Value>().await.unwrap(),
                )
            }));
        }
        let mut replies = Vec::new();
        for handle in handles {
            replies.push(handle.await.unwrap());
        }
        replies
    });
    let mut serials = std::collections::HashSet::new();
    for (status, reply) in &replies {
        assert_eq!(*status, 201, "{reply}");
        let serial = reply["serial"].as_str().unwrap().to_owned();
        let record = ca
            .runtime
            .block_on(ca.state.store.certificate(&serial))
            .unwrap()
            .unwrap_or_else(|| panic!("no row for {serial}"));
        let der =
            carimbo_pki::pem_decode(reply["certificate"].as_str().unwrap(), "CERTIFICATE").unwrap();
        assert_eq!(record.certificate.as_deref(), Some(der.as_slice()));
        assert!(serials.insert(serial), "duplicate serial");
    }
    assert_eq!(serials.len(), COUNT);
}

/// Returns a chosen serial first, then random ones.
#[derive(Debug)]
struct CollidingSerials(std::sync::Mutex<Option<carimbo_pki::SerialNumber>>);

impl SerialSource for CollidingSerials {
    fn next_serial(&self) -> Result<carimbo_pki::SerialNumber, carimbo_server::ApiError> {
        match self.0.lock().unwrap().take() {
            Some(serial) => Ok(serial),
            None => Ok(carimbo_pki::SerialNumber::random().unwrap()),
        }
    }
}

#[test]
fn a_serial_collision_is_detected_and_retried() {
    let Some(ca) = test_ca() else { return };
    // A first certificate takes a serial.
    let request = p256(&["subjectAltName=DNS:first.example.com"]);
    let token = ca.token("lab", "server", &["dns:first.example.com"], "1h", "5m");
    let (status, first) = ca.issue(&token, &request.csr, "server", None);
    assert_eq!(status, 201);
    let taken = carimbo_pki::SerialNumber::from_hex(first["serial"].as_str().unwrap()).unwrap();
    // A second state on the same database whose serial source returns that serial first.
    let loaded = LoadedConfig::load(&ca.dir.join("carimbo.toml")).unwrap();
    let second = ca.runtime.block_on(async {
        let store = SqliteStore::open(&ca.dir.join("carimbo.db")).await.unwrap();
        let mut state = AppState::build(&loaded, Arc::new(store)).await.unwrap();
        state.serials = Arc::new(CollidingSerials(std::sync::Mutex::new(Some(taken.clone()))));
        state
    });
    let token = ca.token("lab", "server", &["dns:second.example.com"], "1h", "5m");
    let csr = p256(&["subjectAltName=DNS:second.example.com"]).csr;
    let issued = ca
        .runtime
        .block_on(async {
            let caller =
                carimbo_server::issuance::authenticate_token(&second, &token, "collision-test")
                    .await?;
            carimbo_server::issuance::issue(
                &second,
                &caller,
                carimbo_server::issuance::CertificateRequest {
                    csr: csr.into_bytes(),
                    profile: carimbo_pki::LeafKind::Server,
                    ttl: None,
                },
                true,
            )
            .await
        })
        .unwrap();
    assert_ne!(
        issued.serial,
        taken.to_hex(),
        "the colliding serial was reused"
    );
    let record = ca
        .runtime
        .block_on(ca.state.store.certificate(&taken.to_hex()))
        .unwrap()
        .unwrap();
    assert_eq!(
        record.sans,
        vec!["dns:first.example.com".to_owned()],
        "the first row was overwritten"
    );
    assert!(
        ca.runtime
            .block_on(ca.state.store.certificate(&issued.serial))
            .unwrap()
            .is_some()
    );
}

/// Runs `carimbo renew` with the files of an issued certificate.
fn cli_renew(
    ca: &TestCa,
    certificate: &Path,
    key: &Path,
    out: &Path,
    extra: &[&str],
) -> std::process::Output {
    Command::new(carimbo_tests::carimbo_binary())
        .args(["renew", "--ca", &ca.url, "--ca-bundle", s(&ca.bundle)])
        .args(["--cert", s(certificate), "--key", s(key), "--out", s(out)])
        .args(extra)
        .output()
        .unwrap()
}

fn sans_and_serial(certificate: &Path) -> (String, String) {
    let (_, text) = openssl(&[
        "x509",
        "-in",
        s(certificate),
        "-noout",
        "-ext",
        "subjectAltName",
        "-serial",
        "-pubkey",
    ]);
    let serial = text
        .lines()
        .find(|l| l.starts_with("serial="))
        .unwrap()
        .to_owned();
    (text.replace(&serial, ""), serial)
}

#[test]
fn renewal_by_proof_of_possession_works_for_every_profile() {
    let Some(ca) = test_ca() else { return };
    for (profile, extension, san) in [
        (
            "server",
            "subjectAltName=DNS:renew.example.com",
            "dns:renew.example.com",
        ),
        (
            "client",
            "subjectAltName=URI:spiffe://lab.example.com/ns/r/sa/client",
            "uri:spiffe://lab.example.com/ns/r/sa/client",
        ),
        (
            "workload",
            "subjectAltName=URI:spiffe://lab.example.com/ns/r/sa/workload",
            "uri:spiffe://lab.example.com/ns/r/sa/workload",
        ),
    ] {
        let request = p256(&[extension]);
        let token = ca.token("lab", profile, &[san], "12h", "5m");
        let (status, reply) = ca.issue(&token, &request.csr, profile, Some("2h"));
        assert_eq!(status, 201, "{reply}");
        let (certificate, _) = write_issued(request.dir.path(), &reply);
        // Same key.
        let out = request.dir.path().join("renewed");
        let output = cli_renew(ca, &certificate, &request.key(), &out, &["--ttl", "1h"]);
        assert!(
            output.status.success(),
            "{profile}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (old_names, old_serial) = sans_and_serial(&certificate);
        let (new_names, new_serial) = sans_and_serial(&out.join("cert.pem"));
        assert_eq!(old_names, new_names, "{profile}: names or key changed");
        assert_ne!(old_serial, new_serial);
        let purpose = if profile == "server" {
            "sslserver"
        } else {
            "sslclient"
        };
        let (ok, text) = openssl(&[
            "verify",
            "-purpose",
            purpose,
            "-CAfile",
            s(&ca.bundle),
            "-untrusted",
            s(&out.join("chain.pem")),
            s(&out.join("cert.pem")),
        ]);
        assert!(ok, "{profile}: {text}");
        // A new key, proven by the renewed certificate's key.
        let rekeyed = request.dir.path().join("rekeyed");
        let output = cli_renew(
            ca,
            &out.join("cert.pem"),
            &out.join("key.pem"),
            &rekeyed,
            &["--new-key"],
        );
        assert!(
            output.status.success(),
            "{profile}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_ne!(
            std::fs::read(rekeyed.join("key.pem")).unwrap(),
            std::fs::read(out.join("key.pem")).unwrap()
        );
        let (rekeyed_names, _) = sans_and_serial(&rekeyed.join("cert.pem"));
        assert_ne!(rekeyed_names, new_names, "the public key did not change");
    }
}

/// A renewal request for `certificate`, signed with `key` (PEM), at `timestamp`.
fn renewal_request(
    certificate: &Path,
    key_pem: &str,
    csr: &str,
    timestamp: i64,
) -> (Vec<u8>, String) {
    use base64::Engine;
    use rcgen::SigningKey;
    let body = serde_json::to_vec(&json!({
        "certificate": std::fs::read_to_string(certificate).unwrap(),
        "csr": csr,
        "timestamp": timestamp,
    }))
    .unwrap();
    let key = rcgen::KeyPair::from_pem(key_pem).unwrap();
    let signature = key
        .sign(&carimbo_server::renewal::proof_message(&body))
        .unwrap();
    (
        body,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature),
    )
}

fn post_renewal(ca: &TestCa, body: Vec<u8>, proof: &str) -> (u16, Value) {
    ca.runtime.block_on(async {
        let response = ca
            .client
            .post(format!("{}/v1/certificates/renew", ca.url))
            .header("authorization", format!("Carimbo-PoP {proof}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    })
}

#[test]
fn a_name_outside_the_issuers_name_constraints_is_a_403_naming_them() {
    // The provisioner allows dns:localhost; the issuing CA's name constraints permit
    // example.com and example.internal only.
    let Some(ca) = test_ca() else { return };
    let request = p256(&["subjectAltName=DNS:localhost"]);
    let token = ca.token("lab", "server", &["dns:localhost"], "1h", "5m");
    let (status, reply) = ca.issue(&token, &request.csr, "server", None);
    assert_eq!(status, 403, "{reply}");
    assert_eq!(reply["code"], "forbidden", "{reply}");
    let detail = reply["detail"].as_str().unwrap();
    assert!(
        detail.contains("dns:localhost") && detail.contains("name constraints"),
        "{detail}"
    );
}

#[test]
fn renewal_is_refused_when_it_must_be() {
    let Some(ca) = test_ca() else { return };
    let now = || time::OffsetDateTime::now_utc().unix_timestamp();
    let issue = |provisioner: &str, name: &str, ttl: &str| {
        let request = p256(&[&format!("subjectAltName=DNS:{name}")]);
        let token = ca.token(provisioner, "server", &[&format!("dns:{name}")], "1h", "5m");
        let (status, reply) = ca.issue(&token, &request.csr, "server", Some(ttl));
        assert_eq!(status, 201, "{reply}");
        let (certificate, _) = write_issued(request.dir.path(), &reply);
        (
            request,
            certificate,
            reply["serial"].as_str().unwrap().to_owned(),
        )
    };
    // A good request first, so the refusals below are about what they change.
    let (good, good_certificate, _) = issue("lab", "fine.example.com", "1h");
    let key = std::fs::read_to_string(good.key()).unwrap();
    let (body, proof) = renewal_request(&good_certificate, &key, &good.csr, now());
    assert_eq!(post_renewal(ca, body, &proof).0, 201);

    // Signed by another key.
    let stranger = p256(&["subjectAltName=DNS:fine.example.com"]);
    let (body, proof) = renewal_request(
        &good_certificate,
        &std::fs::read_to_string(stranger.key()).unwrap(),
        &good.csr,
        now(),
    );
    let (status, reply) = post_renewal(ca, body, &proof);
    assert_eq!(
        (status, reply["code"].as_str()),
        (401, Some("bad_proof")),
        "{reply}"
    );
    // A stale request (replayed from long ago).
    let (body, proof) = renewal_request(&good_certificate, &key, &good.csr, now() - 3600);
    let (status, reply) = post_renewal(ca, body, &proof);
    assert_eq!(
        (status, reply["code"].as_str()),
        (401, Some("bad_proof")),
        "{reply}"
    );
    // A body changed after signing.
    let (mut body, proof) = renewal_request(&good_certificate, &key, &good.csr, now());
    let last = body.len() - 2;
    body[last] = b' ';
    let (status, reply) = post_renewal(ca, body, &proof);
    assert_eq!(status / 100, 4, "{reply}");
    // A name the current certificate does not hold.
    let other = p256(&["subjectAltName=DNS:fine.example.com,DNS:extra.example.com"]);
    let key_other = std::fs::read_to_string(other.key()).unwrap();
    let _ = key_other;
    let (body, proof) = renewal_request(&good_certificate, &key, &other.csr, now());
    let (status, reply) = post_renewal(ca, body, &proof);
    assert_eq!(
        (status, reply["code"].as_str()),
        (403, Some("forbidden")),
        "{reply}"
    );

    // Expired.
    let (expired, expired_certificate, _) = issue("lab", "expired.example.com", "1s");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let key = std::fs::read_to_string(expired.key()).unwrap();
    let (body, proof) = renewal_request(&expired_certificate, &key, &expired.csr, now());
    let (status, reply) = post_renewal(ca, body, &proof);
    assert_eq!(
        (status, reply["code"].as_str()),
        (401, Some("certificate_expired")),
        "{reply}"
    );

    // Revoked.
    let (revoked, revoked_certificate, serial) = issue("lab", "revoked.example.com", "1h");
    ca.runtime
        .block_on(
            ca.state
                .store
                .revoke(&serial, 1, time::OffsetDateTime::now_utc()),
        )
        .unwrap();
    let key = std::fs::read_to_string(revoked.key()).unwrap();
    let (body, proof) = renewal_request(&revoked_certificate, &key, &revoked.csr, now());
    let (status, reply) = post_renewal(ca, body, &proof);
    assert_eq!(
        (status, reply["code"].as_str()),
        (403, Some("certificate_revoked")),
        "{reply}"
    );

    // A lineage older than its provisioner allows (lineage-max-age = 2s).
    let (old, old_certificate, _) = issue("short", "a.short.example.com", "1h");
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let key = std::fs::read_to_string(old.key()).unwrap();
    let (body, proof) = renewal_request(&old_certificate, &key, &old.csr, now());
    let (status, reply) = post_renewal(ca, body, &proof);
    assert_eq!(
        (status, reply["code"].as_str()),
        (403, Some("lineage_expired")),
        "{reply}"
    );

    // The provisioner's policy no longer allows the name: a replica started with the
    // changed config refuses the renewal.
    let (changed, changed_certificate, _) = issue("lab", "dropped.example.com", "1h");
    let text = std::fs::read_to_string(ca.dir.join("carimbo.toml"))
        .unwrap()
        .replace(
            r#"sans = ["dns:**.example.com", "#,
            r#"sans = ["dns:**.kept.example.com", "#,
        );
    std::fs::write(ca.dir.join("changed.toml"), text).unwrap();
    let loaded = LoadedConfig::load(&ca.dir.join("changed.toml")).unwrap();
    let key = std::fs::read_to_string(changed.key()).unwrap();
    let (body, proof) = renewal_request(&changed_certificate, &key, &changed.csr, now());
    let result = ca.runtime.block_on(async {
        let store = SqliteStore::open(&ca.dir.join("carimbo.db")).await.unwrap();
        let state = AppState::build(&loaded, Arc::new(store)).await.unwrap();
        carimbo_server::renewal::renew(&state, &body, &proof, |_| Ok(None), "policy-test").await
    });
    match result {
        Err(carimbo_server::ApiError::Forbidden(reason)) => {
            assert!(reason.contains("dropped.example.com"), "{reason}")
        }
        other => panic!("expected forbidden, got {other:?}"),
    }
}

#[test]
fn intents_left_pending_by_a_crash_are_reconciled_at_start() {
    let Some(ca) = test_ca() else { return };
    let old = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let serial = carimbo_pki::SerialNumber::random().unwrap().to_hex();
    let lineage = random_hex(16);
    ca.runtime.block_on(async {
        ca.state
            .store
            .create_lineage(&carimbo_store::Lineage {
                id: lineage.clone(),
                provisioner: "lab".into(),
                identity: "crash-test".into(),
                created_at: old,
            })
            .await
            .unwrap();
        ca.state
            .store
            .record_intent(&carimbo_store::IssuanceIntent {
                crl_shard: None,
                serial: serial.clone(),
                issuer: "int-server".into(),
                profile: "server".into(),
                provisioner: "lab".into(),
                lineage,
                requester: "crash-test".into(),
                sans: vec!["dns:crash.example.com".into()],
                subject_key_sha256: "0".repeat(64),
                not_before: old,
                not_after: old + time::Duration::hours(1),
                lint_certificate: vec![0x30, 0x00],
                request_id: "crash".into(),
                created_at: old,
            })
            .await
            .unwrap();
        let reconciled = ca
            .state
            .reconcile_pending(time::Duration::minutes(2))
            .await
            .unwrap();
        assert!(reconciled >= 1);
        let record = ca.state.store.certificate(&serial).await.unwrap().unwrap();
        assert_eq!(record.status, carimbo_store::CertificateStatus::Failed);
        assert!(record.certificate.is_none());
    });
}

impl TestCa {
    /// A JWT signed by the test cluster's key, with `header` and `claims`.
    pub(crate) fn jwt(&self, header: &Value, claims: &Value) -> String {
        use base64::Engine;
        use rcgen::SigningKey;
        let encode =
            |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", encode(header), encode(claims));
        let signature = self.jwt_key.sign(input.as_bytes()).unwrap();
        format!(
            "{input}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
        )
    }
}

pub(crate) fn service_account_claims(namespace: &str, account: &str, exp_offset: i64) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({
        "iss": "https://kubernetes.default.svc",
        "aud": ["carimbo"],
        "sub": format!("system:serviceaccount:{namespace}:{account}"),
        "iat": now - 5,
        "exp": now + exp_offset,
        "kubernetes.io": { "namespace": namespace, "serviceaccount": { "name": account } },
    })
}

#[test]
fn a_kubernetes_service_account_token_gets_its_spiffe_id_and_nothing_else() {
    let Some(ca) = test_ca() else { return };
    let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": "k1" });
    let id = "spiffe://lab.example.com/ns/ml/sa/trainer";
    let csr = p256(&[&format!("subjectAltName=URI:{id}")]).csr;
    let token = ca.jwt(&header, &service_account_claims("ml", "trainer", 600));
    let (status, reply) = ca.issue(&token, &csr, "workload", None);
    assert_eq!(status, 201, "{reply}");
    let (_, body) = ca.get(&format!(
        "{}/v1/certificates/{}",
        ca.url,
        reply["serial"].as_str().unwrap()
    ));
    let record: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(record["sans"], json!([format!("uri:{id}")]));
    // No lifetime asked: the profile's default (12 h) bounded by the provisioner's
    // max-ttl (6 h), counted from now (notBefore is backdated).
    let not_after = time::OffsetDateTime::parse(
        record["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lifetime = not_after - time::OffsetDateTime::now_utc();
    assert!(
        lifetime <= time::Duration::hours(6) && lifetime > time::Duration::hours(5),
        "{record}"
    );

    let refused = |token: String, csr: &str, status: u16, code: &str| {
        let (got, reply) = ca.issue(&token, csr, "workload", None);
        assert_eq!(
            (got, reply["code"].as_str()),
            (status, Some(code)),
            "{reply}"
        );
    };
    let mut claims = service_account_claims("ml", "trainer", 600);
    claims["aud"] = json!(["kubernetes"]);
    refused(ca.jwt(&header, &claims), &csr, 401, "jwt_wrong_audience");
    let mut claims = service_account_claims("ml", "trainer", 600);
    claims["iss"] = json!("https://evil.example.com");
    refused(ca.jwt(&header, &claims), &csr, 401, "jwt_wrong_issuer");
    refused(
        ca.jwt(&header, &service_account_claims("ml", "trainer", -120)),
        &csr,
        401,
        "jwt_expired",
    );
    // Payload changed after signing.
    let good = ca.jwt(&header, &service_account_claims("ml", "trainer", 600));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut forged = service_account_claims("ml", "trainer", 600);
        forged["kubernetes.io"]["serviceaccount"]["name"] = json!("admin");
        parts[1] = engine.encode(forged.to_string());
    }
    refused(parts.join("."), &csr, 401, "jwt_bad_signature");
    // alg none, and an algorithm other than the key's pinned one.
    {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let none = format!(
            "{}.{}.",
            engine.encode(json!({"alg":"none","kid":"k1"}).to_string()),
            engine.encode(service_account_claims("ml", "trainer", 600).to_string())
        );
        refused(none, &csr, 401, "jwt_algorithm_not_allowed");
    }
    refused(
        ca.jwt(
            &json!({"alg":"ES256","kid":"k1"}),
            &service_account_claims("ml", "trainer", 600),
        ),
        &csr,
        401,
        "jwt_algorithm_not_allowed",
    );
    // Claim values that would smuggle path segments.
    refused(
        ca.jwt(&header, &service_account_claims("ml/sa/admin", "x", 600)),
        &csr,
        403,
        "jwt_bad_claim",
    );
    refused(
        ca.jwt(&header, &service_account_claims("..", "trainer", 600)),
        &csr,
        403,
        "jwt_bad_claim",
    );
    // A CSR for another workload than the token's.
    let other = p256(&["subjectAltName=URI:spiffe://lab.example.com/ns/ml/sa/admin"]).csr;
    refused(
        ca.jwt(&header, &service_account_claims("ml", "trainer", 600)),
        &other,
        403,
        "forbidden",
    );
    // The JWT provisioner grants workload certificates only.
    let (status, reply) = ca.issue(
        &ca.jwt(&header, &service_account_claims("ml", "trainer", 600)),
        &p256(&["subjectAltName=DNS:trainer.example.com"]).csr,
        "server",
        None,
    );
    assert_eq!(status / 100, 4, "{reply}");
}
