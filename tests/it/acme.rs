//! ACME (RFC 8555) against `carimbo dev`: the real certbot obtains, renews and revokes
//! a certificate with http-01; a small client written here checks that refused
//! requests get their RFC 8555 error type and change nothing.
//!
//! Names under `localhost` are validated on 127.0.0.1 (the dev config lets validation
//! reach loopback); the http-01 port is moved off 80 in the dev config.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carimbo_tests::{openssl, skip};
use serde_json::{Value, json};

use crate::cli_dev::{free_port, start_dev};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A data directory of `carimbo dev` listening on `api` and `publication`, whose ACME
/// validation uses `http_port` (the first run writes the config; the test's run reads
/// it back).
fn dev_with_http_port(
    dir: &Path,
    http_port: u16,
    api: u16,
    publication: u16,
) -> std::path::PathBuf {
    dev_with(dir, http_port, api, publication, "")
}

/// [`dev_with_http_port`] with `extra` appended to the config.
fn dev_with(
    dir: &Path,
    http_port: u16,
    api: u16,
    publication: u16,
    extra: &str,
) -> std::path::PathBuf {
    let data = dir.join("data");
    let (mut first, _) = start_dev(&data, api, publication);
    first.kill().unwrap();
    let _ = first.wait();
    let config = data.join("carimbo.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("http-01-port = 80\n"), "dev config changed");
    std::fs::write(
        &config,
        text.replace(
            "http-01-port = 80\n",
            &format!("http-01-port = {http_port}\n"),
        ) + extra,
    )
    .unwrap();
    data
}

fn server_log(data: &Path) -> String {
    std::fs::read_to_string(data.with_extension("log")).unwrap_or_default()
}

#[test]
fn certbot_obtains_renews_and_revokes_over_http_01() {
    if Command::new("certbot").arg("--version").output().is_err() {
        skip("certbot", "not on PATH (Debian package certbot)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let (api, publication) = (free_port(), free_port());
    let data = dev_with_http_port(dir.path(), http_port, api, publication);
    let (mut dev, _) = start_dev(&data, api, publication);
    let directory = format!("https://127.0.0.1:{api}/acme/server/directory");
    let certbot_dir = dir.path().join("certbot");
    let certbot = |args: &[&str]| {
        let output = Command::new("certbot")
            .args(args)
            .args(["--server", &directory])
            .arg("--config-dir")
            .arg(certbot_dir.join("config"))
            .arg("--work-dir")
            .arg(certbot_dir.join("work"))
            .arg("--logs-dir")
            .arg(certbot_dir.join("logs"))
            .args(["--non-interactive", "--no-random-sleep-on-renew"])
            .env("REQUESTS_CA_BUNDLE", data.join("ca-bundle.pem"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "certbot {args:?} failed:\n{}\n{}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            server_log(&data)
        );
    };
    let port = http_port.to_string();
    let name = "certbot.localhost";
    certbot(&[
        "certonly",
        "--standalone",
        "--http-01-port",
        &port,
        "--http-01-address",
        "127.0.0.1",
        "--agree-tos",
        "-m",
        "ops@example.com",
        "-d",
        name,
    ]);
    let live = certbot_dir.join("config/live").join(name);
    let first = std::fs::read_to_string(live.join("cert.pem")).unwrap();
    certbot(&["renew", "--force-renewal"]);
    let renewed = std::fs::read_to_string(live.join("cert.pem")).unwrap();
    assert_ne!(first, renewed, "renewal gave no new certificate");

    let bundle = data.join("ca-bundle.pem");
    let (ok, text) = openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        bundle.to_str().unwrap(),
        "-untrusted",
        live.join("chain.pem").to_str().unwrap(),
        live.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(ok, "openssl verify: {text}");
    let ocsp = |cert: &Path| {
        openssl(&[
            "ocsp",
            "-issuer",
            live.join("chain.pem").to_str().unwrap(),
            "-cert",
            cert.to_str().unwrap(),
            "-url",
            &format!("http://127.0.0.1:{publication}/ocsp"),
            "-CAfile",
            bundle.to_str().unwrap(),
            "-timeout",
            "5",
        ])
    };
    let (_, before) = ocsp(&live.join("cert.pem"));
    assert!(before.contains(": good"), "{before}");

    let cert_path = live.join("cert.pem");
    certbot(&[
        "revoke",
        "--cert-path",
        cert_path.to_str().unwrap(),
        "--reason",
        "superseded",
        "--no-delete-after-revoke",
    ]);
    let (_, after) = ocsp(&cert_path);
    assert!(after.contains(": revoked"), "{after}");
    dev.kill().unwrap();
    let _ = dev.wait();
}

/// A minimal ACME client: one P-256 account key, nonces from the server.
struct Client {
    http: reqwest::Client,
    directory: Value,
    key: EcdsaKeyPair,
    kid: Option<String>,
    nonce: Option<String>,
    /// `(origin in the URLs, origin actually contacted)`: requests go to another
    /// replica with the `Host` of the first, as behind a load balancer.
    via: Option<(String, String)>,
}

/// A response: status, body (JSON when it is), headers.
struct Reply {
    status: u16,
    body: Value,
    location: Option<String>,
    text: String,
}

impl Reply {
    fn problem(&self) -> &str {
        self.body["type"].as_str().unwrap_or_default()
    }
}

fn p256_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap()
}

impl Client {
    async fn new(http: &reqwest::Client, directory_url: &str) -> Self {
        let directory = http
            .get(directory_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            http: http.clone(),
            directory,
            key: p256_key(),
            kid: None,
            nonce: None,
            via: None,
        }
    }

    fn url(&self, name: &str) -> String {
        self.directory[name].as_str().unwrap().to_owned()
    }

    fn jwk(&self) -> Value {
        let point = self.key.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
    }

    fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
    }

    async fn fresh_nonce(&mut self) -> String {
        if let Some(nonce) = self.nonce.take() {
            return nonce;
        }
        let response = self
            .request(reqwest::Method::HEAD, &self.url("newNonce"))
            .send()
            .await
            .unwrap();
        response.headers()["replay-nonce"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// A request to `url`, through the replica of `via` if set.
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        match &self.via {
            Some((seen, actual)) => self
                .http
                .request(method, url.replacen(seen.as_str(), actual, 1))
                .header("host", seen.trim_start_matches("https://")),
            None => self.http.request(method, url),
        }
    }

    /// The body of a JWS; `payload` None is POST-as-GET.
    fn sign(&self, header: &Value, payload: Option<&Value>) -> Value {
        let protected = b64(header.to_string().as_bytes());
        let payload = payload
            .map(|p| b64(p.to_string().as_bytes()))
            .unwrap_or_default();
        let input = format!("{protected}.{payload}");
        let signature = self
            .key
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        json!({"protected": protected, "payload": payload, "signature": b64(signature.as_ref())})
    }

    fn header(&self, url: &str, nonce: &str) -> Value {
        match &self.kid {
            Some(kid) => json!({"alg": "ES256", "kid": kid, "nonce": nonce, "url": url}),
            None => json!({"alg": "ES256", "jwk": self.jwk(), "nonce": nonce, "url": url}),
        }
    }

    async fn send(&mut self, url: &str, body: &Value) -> Reply {
        let response = self
            .request(reqwest::Method::POST, url)
            .header("content-type", "application/jose+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if let Some(nonce) = headers.get("replay-nonce") {
            self.nonce = Some(nonce.to_str().unwrap().to_owned());
        }
        assert!(
            headers
                .get_all("link")
                .iter()
                .any(|l| l.to_str().unwrap().contains("rel=\"index\"")),
            "no index link"
        );
        let location = headers
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            location,
            text,
        }
    }

    async fn post(&mut self, url: &str, payload: Option<&Value>) -> Reply {
        let nonce = self.fresh_nonce().await;
        let body = self.sign(&self.header(url, &nonce), payload);
        self.send(url, &body).await
    }

    async fn register(&mut self) {
        let url = self.url("newAccount");
        let reply = self
            .post(&url, Some(&json!({"termsOfServiceAgreed": true})))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        self.kid = reply.location;
    }

    async fn order_count(&mut self) -> usize {
        let account = self.kid.clone().unwrap();
        let orders = self.post(&format!("{account}/orders"), None).await;
        orders.body["orders"].as_array().unwrap().len()
    }
}

/// The end of an RFC 9773 suggested window.
fn parse_end(info: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(
        info["suggestedWindow"]["end"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
}

/// A CSR (DER) for `names`.
fn csr(names: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    params.serialize_request(&key).unwrap().der().to_vec()
}

/// Serves http-01 answers on 127.0.0.1:`port` from `answers` (token → body).
async fn challenge_server(port: u16, answers: Arc<Mutex<HashMap<String, String>>>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let answers = Arc::clone(&answers);
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buffer = vec![0u8; 4096];
                let n = stream.read(&mut buffer).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buffer[..n]).to_string();
                let path = request.split(' ').nth(1).unwrap_or_default();
                let token = path
                    .strip_prefix("/.well-known/acme-challenge/")
                    .unwrap_or_default();
                let body = answers.lock().unwrap().get(token).cloned();
                let response = match body {
                    Some(body) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned(),
                };
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
}

/// Polls `url` (POST-as-GET) until its status is not pending/processing.
async fn settle(client: &mut Client, url: &str) -> Reply {
    for _ in 0..100 {
        let reply = client.post(url, None).await;
        let status = reply.body["status"].as_str().unwrap_or_default().to_owned();
        if status != "pending" && status != "processing" {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} stayed pending");
}

/// Orders `name`, answers its http-01 challenge with `answer(key authorization)`,
/// and waits for the authorization to settle; returns the order URL and the
/// authorization.
async fn order_and_answer(
    client: &mut Client,
    answers: &Arc<Mutex<HashMap<String, String>>>,
    name: &str,
    answer: impl Fn(&str) -> String,
) -> (String, Reply) {
    let new_order = client.url("newOrder");
    let order = client
        .post(
            &new_order,
            Some(&json!({"identifiers": [{"type": "dns", "value": name}]})),
        )
        .await;
    assert_eq!(order.status, 201, "{}", order.text);
    let order_url = order.location.clone().unwrap();
    let authz_url = order.body["authorizations"][0].as_str().unwrap().to_owned();
    let authz = client.post(&authz_url, None).await;
    let challenge = authz.body["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "http-01")
        .unwrap()
        .clone();
    let token = challenge["token"].as_str().unwrap();
    let key_authorization = format!("{token}.{}", client.thumbprint());
    answers
        .lock()
        .unwrap()
        .insert(token.to_owned(), answer(&key_authorization));
    let started = client
        .post(challenge["url"].as_str().unwrap(), Some(&json!({})))
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    (order_url, settle(client, &authz_url).await)
}

#[test]
fn refused_acme_requests_get_their_error_type_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let (api, publication) = (free_port(), free_port());
    let data = dev_with_http_port(dir.path(), http_port, api, publication);
    let (mut dev, _) = start_dev(&data, api, publication);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let answers = Arc::new(Mutex::new(HashMap::new()));
        challenge_server(http_port, Arc::clone(&answers)).await;
        let bundle = std::fs::read(data.join("ca-bundle.pem")).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&bundle).unwrap())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let directory = format!("https://127.0.0.1:{api}/acme/server/directory");
        let admin = std::fs::read_to_string(data.join("admin.token")).unwrap();
        let issued = || {
            let http = http.clone();
            let admin = admin.trim().to_owned();
            async move {
                let reply: Value = http
                    .get(format!(
                        "https://127.0.0.1:{api}/v1/admin/certificates?provisioner=dev-acme&status=all"
                    ))
                    .bearer_auth(admin)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                reply["certificates"].as_array().unwrap().len()
            }
        };
        // No directory for a profile no ACME provisioner grants.
        let missing = http
            .get(format!("https://127.0.0.1:{api}/acme/workload/directory"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status().as_u16(), 404);

        let mut client = Client::new(&http, &directory).await;
        let new_account = client.url("newAccount");

        // Bad JWS signature: malformed, and no account is created.
        let nonce = client.fresh_nonce().await;
        let mut body = client.sign(
            &client.header(&new_account, &nonce),
            Some(&json!({"termsOfServiceAgreed": true})),
        );
        let mut signature = URL_SAFE_NO_PAD
            .decode(body["signature"].as_str().unwrap())
            .unwrap();
        signature[10] ^= 0x01;
        body["signature"] = json!(b64(&signature));
        let reply = client.send(&new_account, &body).await;
        assert_eq!(
            (reply.status, reply.problem()),
            (400, "urn:ietf:params:acme:error:malformed"),
            "{}",
            reply.text
        );
        let lookup = client
            .post(&new_account, Some(&json!({"onlyReturnExisting": true})))
            .await;
        assert_eq!(
            lookup.problem(),
            "urn:ietf:params:acme:error:accountDoesNotExist",
            "{}",
            lookup.text
        );
        // An unsupported algorithm.
        let nonce = client.fresh_nonce().await;
        let header =
            json!({"alg": "HS256", "jwk": client.jwk(), "nonce": nonce, "url": new_account});
        let reply = client
            .send(&new_account, &client.sign(&header, Some(&json!({}))))
            .await;
        assert_eq!(
            reply.problem(),
            "urn:ietf:params:acme:error:badSignatureAlgorithm",
            "{}",
            reply.text
        );

        client.register().await;
        assert_eq!(client.order_count().await, 0);
        let new_order = client.url("newOrder");
        let for_name = |name: &str| json!({"identifiers": [{"type": "dns", "value": name}]});

        // Replayed nonce: badNonce, no second order.
        let nonce = client.fresh_nonce().await;
        let body = client.sign(
            &client.header(&new_order, &nonce),
            Some(&for_name("replay.localhost")),
        );
        assert_eq!(client.send(&new_order, &body).await.status, 201);
        let replayed = client.send(&new_order, &body).await;
        assert_eq!(
            (replayed.status, replayed.problem()),
            (400, "urn:ietf:params:acme:error:badNonce"),
            "{}",
            replayed.text
        );
        assert_eq!(client.order_count().await, 1);

        // Wrong URL in the protected header: unauthorized, no order.
        let nonce = client.fresh_nonce().await;
        let body = client.sign(
            &client.header(&new_account, &nonce),
            Some(&for_name("url.localhost")),
        );
        let reply = client.send(&new_order, &body).await;
        assert_eq!(
            (reply.status, reply.problem()),
            (403, "urn:ietf:params:acme:error:unauthorized"),
            "{}",
            reply.text
        );
        assert_eq!(client.order_count().await, 1);

        // A name the provisioner does not grant: rejectedIdentifier, no order.
        let reply = client
            .post(&new_order, Some(&for_name("www.example.com")))
            .await;
        assert_eq!(
            reply.problem(),
            "urn:ietf:params:acme:error:rejectedIdentifier",
            "{}",
            reply.text
        );
        assert_eq!(client.order_count().await, 1);

        // A challenge answered wrongly: incorrectResponse, authorization and order
        // invalid.
        let (order_url, authz) = order_and_answer(&mut client, &answers, "wrong.localhost", |_| {
            "not-it".into()
        })
        .await;
        assert_eq!(authz.body["status"], "invalid", "{}", authz.text);
        let http_01 = authz.body["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "http-01")
            .unwrap();
        assert_eq!(
            http_01["error"]["type"],
            "urn:ietf:params:acme:error:incorrectResponse",
            "{}",
            authz.text
        );
        let order = client.post(&order_url, None).await;
        assert_eq!(order.body["status"], "invalid", "{}", order.text);

        // A ready order finalized with a CSR for other names: badCSR, still ready, no
        // certificate.
        let (order_url, authz) =
            order_and_answer(&mut client, &answers, "right.localhost", |k| k.to_owned()).await;
        assert_eq!(authz.body["status"], "valid", "{}", authz.text);
        let order = client.post(&order_url, None).await;
        assert_eq!(order.body["status"], "ready", "{}", order.text);
        let finalize = order.body["finalize"].as_str().unwrap().to_owned();
        let reply = client
            .post(
                &finalize,
                Some(&json!({"csr": b64(&csr(&["other.localhost"]))})),
            )
            .await;
        assert_eq!(
            reply.problem(),
            "urn:ietf:params:acme:error:badCSR",
            "{}",
            reply.text
        );
        let order = client.post(&order_url, None).await;
        assert_eq!(order.body["status"], "ready", "{}", order.text);
        assert!(order.body.get("certificate").is_none());
        assert_eq!(issued().await, 0);

        // The right CSR: valid, and the chain downloads.
        let reply = client
            .post(
                &finalize,
                Some(&json!({"csr": b64(&csr(&["right.localhost"]))})),
            )
            .await;
        assert_eq!(reply.body["status"], "valid", "{}", reply.text);
        let certificate_url = reply.body["certificate"].as_str().unwrap().to_owned();
        let chain = client.post(&certificate_url, None).await;
        assert_eq!(chain.status, 200);
        assert_eq!(chain.text.matches("BEGIN CERTIFICATE").count(), 2);
        assert_eq!(issued().await, 1);
        // Finalizing again: orderNotReady.
        let again = client
            .post(
                &finalize,
                Some(&json!({"csr": b64(&csr(&["right.localhost"]))})),
            )
            .await;
        assert_eq!(
            again.problem(),
            "urn:ietf:params:acme:error:orderNotReady",
            "{}",
            again.text
        );

        // Another account may neither download nor revoke it.
        let mut other = Client::new(&http, &directory).await;
        other.register().await;
        let reply = other.post(&certificate_url, None).await;
        assert_eq!(reply.problem(), "urn:ietf:params:acme:error:unauthorized");
        let pem = chain
            .text
            .split("-----END CERTIFICATE-----")
            .next()
            .unwrap();
        let der =
            carimbo_pki::pem_decode(&format!("{pem}-----END CERTIFICATE-----\n"), "CERTIFICATE")
                .unwrap();
        // Renewal information (RFC 9773): the window runs from 2/3 to 80% of the
        // lifetime.
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        let key_identifier = parsed
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .unwrap();
        let cert_id = format!("{}.{}", b64(&key_identifier), b64(parsed.raw_serial()));
        let renewal_info = format!("{}/{cert_id}", client.url("renewalInfo"));
        let info = http.get(&renewal_info).send().await.unwrap();
        assert_eq!(info.status().as_u16(), 200);
        assert!(info.headers().contains_key("retry-after"));
        let info: Value = info.json().await.unwrap();
        let parse = |field: &str| {
            time::OffsetDateTime::parse(
                info["suggestedWindow"][field].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        };
        let not_before = parsed.validity().not_before.timestamp();
        let lifetime = parsed.validity().not_after.timestamp() - not_before;
        let start = parse("start").unix_timestamp() - not_before;
        let end = parse("end").unix_timestamp() - not_before;
        assert!((start - lifetime * 2 / 3).abs() <= 1, "{info}");
        assert!((end - lifetime * 4 / 5).abs() <= 1, "{info}");
        let unknown = http
            .get(format!("{}/AAAA.AAAA", client.url("renewalInfo")))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status().as_u16(), 404);

        let revoke_url = other.url("revokeCert");
        let reply = other
            .post(&revoke_url, Some(&json!({"certificate": b64(&der)})))
            .await;
        assert_eq!(reply.problem(), "urn:ietf:params:acme:error:unauthorized");
        // Its own account may, once.
        let reply = client
            .post(
                &revoke_url,
                Some(&json!({"certificate": b64(&der), "reason": 4})),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let reply = client
            .post(&revoke_url, Some(&json!({"certificate": b64(&der)})))
            .await;
        assert_eq!(
            reply.problem(),
            "urn:ietf:params:acme:error:alreadyRevoked",
            "{}",
            reply.text
        );
        // Revoked: the suggested window is in the past.
        let info: Value = http
            .get(&renewal_info)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(parse_end(&info) < time::OffsetDateTime::now_utc(), "{info}");

        // Key change: the new key signs from now on, the old one no longer does.
        let account_url = client.kid.clone().unwrap();
        let key_change = client.url("keyChange");
        let new_key = p256_key();
        let point = new_key.public_key().as_ref().to_vec();
        let new_jwk =
            json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])});
        let inner_protected =
            b64(json!({"alg": "ES256", "jwk": new_jwk, "url": key_change}).to_string().as_bytes());
        let inner_payload = b64(json!({"account": account_url, "oldKey": client.jwk()})
            .to_string()
            .as_bytes());
        let inner_signature = new_key
            .sign(
                &SystemRandom::new(),
                format!("{inner_protected}.{inner_payload}").as_bytes(),
            )
            .unwrap();
        let inner = json!({
            "protected": inner_protected,
            "payload": inner_payload,
            "signature": b64(inner_signature.as_ref()),
        });
        // Signed by a stranger's account: refused, the key is unchanged.
        let reply = other.post(&key_change, Some(&inner)).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        let reply = client.post(&key_change, Some(&inner)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let old_key = std::mem::replace(&mut client.key, new_key);
        assert_eq!(client.order_count().await, 3);
        let new_key = std::mem::replace(&mut client.key, old_key);
        let reply = client.post(&format!("{account_url}/orders"), None).await;
        assert_eq!(
            reply.problem(),
            "urn:ietf:params:acme:error:malformed",
            "{}",
            reply.text
        );
        client.key = new_key;

        // Deactivation is final: the account can no longer order.
        let reply = client
            .post(&account_url, Some(&json!({"status": "deactivated"})))
            .await;
        assert_eq!(reply.body["status"], "deactivated", "{}", reply.text);
        let reply = client
            .post(&new_order, Some(&for_name("late.localhost")))
            .await;
        assert_eq!(reply.problem(), "urn:ietf:params:acme:error:unauthorized");
    });
    dev.kill().unwrap();
    let _ = dev.wait();
}

/// An External Account Binding by `kid` with `key` over `jwk`, made for `url`.
fn eab(kid: &str, key: &[u8], jwk: &Value, url: &str) -> Value {
    let protected = b64(json!({"alg": "HS256", "kid": kid, "url": url})
        .to_string()
        .as_bytes());
    let payload = b64(jwk.to_string().as_bytes());
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": b64(tag.as_ref())})
}

#[test]
fn external_account_binding_ties_an_account_to_its_provisioner() {
    let dir = tempfile::tempdir().unwrap();
    let (api, publication) = (free_port(), free_port());
    let team_a = [0x5a_u8; 32];
    let team_b = [0xb5_u8; 32];
    let extra = r#"
[[provisioners]]
name = "eab-acme"
type = "acme"
profiles = ["server"]
require-eab = true
sans = ["dns:**.eab.localhost"]
max-ttl = "24h"
eab-keys = [{ kid = "team-a", hmac-key-file = "team-a.eab" }]

[[provisioners]]
name = "eab-clients"
type = "acme"
profiles = ["client"]
require-eab = true
sans = ["dns:**.localhost"]
max-ttl = "24h"
eab-keys = [{ kid = "team-b", hmac-key-file = "team-b.eab" }]
"#;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    for (name, key) in [("team-a.eab", team_a), ("team-b.eab", team_b)] {
        let path = data.join(name);
        std::fs::write(&path, b64(&key)).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let data = dev_with(dir.path(), free_port(), api, publication, extra);
    let (mut dev, _) = start_dev(&data, api, publication);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let bundle = std::fs::read(data.join("ca-bundle.pem")).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&bundle).unwrap())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let base = format!("https://127.0.0.1:{api}/acme");

        // The client profile has only an EAB provisioner: EAB is required.
        let mut client = Client::new(&http, &format!("{base}/client/directory")).await;
        assert_eq!(client.directory["meta"]["externalAccountRequired"], true);
        let new_account = client.url("newAccount");
        let reply = client
            .post(&new_account, Some(&json!({"termsOfServiceAgreed": true})))
            .await;
        assert_eq!(
            reply.problem(),
            "urn:ietf:params:acme:error:externalAccountRequired",
            "{}",
            reply.text
        );

        let mut client = Client::new(&http, &format!("{base}/server/directory")).await;
        assert_eq!(client.directory["meta"]["externalAccountRequired"], false);
        let new_account = client.url("newAccount");
        let jwk = client.jwk();
        let exists = json!({"onlyReturnExisting": true});
        // A wrong MAC, a binding over another key, a key of another profile's
        // provisioner, a binding made for another URL: unauthorized, and no account.
        let other_jwk = {
            let other = p256_key();
            let point = other.public_key().as_ref().to_vec();
            json!({"kty": "EC", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..])})
        };
        for binding in [
            eab("team-a", &[0u8; 32], &jwk, &new_account),
            eab("team-a", &team_a, &other_jwk, &new_account),
            eab("team-b", &team_b, &jwk, &new_account),
            eab(
                "team-a",
                &team_a,
                &jwk,
                &format!("{base}/client/new-account"),
            ),
        ] {
            let reply = client
                .post(
                    &new_account,
                    Some(&json!({"termsOfServiceAgreed": true, "externalAccountBinding": binding})),
                )
                .await;
            assert_eq!(
                reply.problem(),
                "urn:ietf:params:acme:error:unauthorized",
                "{}",
                reply.text
            );
            let reply = client.post(&new_account, Some(&exists)).await;
            assert_eq!(
                reply.problem(),
                "urn:ietf:params:acme:error:accountDoesNotExist"
            );
        }
        // The right binding: the account belongs to eab-acme, whose names it may order
        // and no others (not even names the directory's open provisioner grants).
        let reply = client
            .post(
                &new_account,
                Some(&json!({
                    "termsOfServiceAgreed": true,
                    "externalAccountBinding": eab("team-a", &team_a, &jwk, &new_account),
                })),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        client.kid = reply.location;
        let new_order = client.url("newOrder");
        let order = |name: &str| json!({"identifiers": [{"type": "dns", "value": name}]});
        let reply = client.post(&new_order, Some(&order("web.localhost"))).await;
        assert_eq!(
            reply.problem(),
            "urn:ietf:params:acme:error:rejectedIdentifier",
            "{}",
            reply.text
        );
        let reply = client
            .post(&new_order, Some(&order("web.eab.localhost")))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    });
    dev.kill().unwrap();
    let _ = dev.wait();
}

/// Answers TXT queries on 127.0.0.1:`port` UDP from `records` (name → TXT value);
/// unknown names get NXDOMAIN.
async fn dns_server(port: u16, records: Arc<Mutex<HashMap<String, String>>>) {
    let socket = tokio::net::UdpSocket::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 512];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buffer).await else {
                return;
            };
            let query = &buffer[..n];
            let mut labels = Vec::new();
            let mut at = 12;
            while at < n && query[at] != 0 {
                let length = usize::from(query[at]);
                labels.push(String::from_utf8_lossy(&query[at + 1..at + 1 + length]).to_string());
                at += 1 + length;
            }
            let question_end = at + 5;
            let name = labels.join(".").to_ascii_lowercase();
            let value = records.lock().unwrap().get(&name).cloned();
            let mut answer = query[..2].to_vec();
            answer.extend_from_slice(&[0x81, if value.is_some() { 0x80 } else { 0x83 }]);
            answer.extend_from_slice(&[0, 1, 0, u8::from(value.is_some()), 0, 0, 0, 0]);
            answer.extend_from_slice(&query[12..question_end]);
            if let Some(value) = value {
                answer.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0]);
                answer.push(u8::try_from(value.len() + 1).unwrap());
                answer.push(u8::try_from(value.len()).unwrap());
                answer.extend_from_slice(value.as_bytes());
            }
            let _ = socket.send_to(&answer, peer).await;
        }
    });
}

#[test]
fn dns_01_validates_through_the_configured_resolver() {
    let dir = tempfile::tempdir().unwrap();
    let (api, publication, dns_port) = (free_port(), free_port(), free_port());
    let data = dev_with_http_port(dir.path(), free_port(), api, publication);
    let config = data.join("carimbo.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(
        "[acme]\n",
        &format!("[acme]\ndns-resolver = \"127.0.0.1:{dns_port}\"\n"),
        1,
    );
    std::fs::write(
        &config,
        text + "\n[profiles.server]\nallow-wildcards = true\n",
    )
    .unwrap();
    let (mut dev, _) = start_dev(&data, api, publication);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let records = Arc::new(Mutex::new(HashMap::new()));
        dns_server(dns_port, Arc::clone(&records)).await;
        let bundle = std::fs::read(data.join("ca-bundle.pem")).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&bundle).unwrap())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let mut client = Client::new(
            &http,
            &format!("https://127.0.0.1:{api}/acme/server/directory"),
        )
        .await;
        client.register().await;
        for (name, right) in [("dns.localhost", true), ("wrong-dns.localhost", false)] {
            let new_order = client.url("newOrder");
            let order = client
                .post(
                    &new_order,
                    Some(&json!({"identifiers": [{"type": "dns", "value": name}]})),
                )
                .await;
            assert_eq!(order.status, 201, "{}", order.text);
            let authz_url = order.body["authorizations"][0].as_str().unwrap().to_owned();
            let authz = client.post(&authz_url, None).await;
            let challenge = authz.body["challenges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "dns-01")
                .unwrap_or_else(|| panic!("no dns-01 challenge: {}", authz.text))
                .clone();
            let key_authorization = format!(
                "{}.{}",
                challenge["token"].as_str().unwrap(),
                client.thumbprint()
            );
            let digest = b64(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                key_authorization.as_bytes(),
            )
            .as_ref());
            let value = if right {
                digest
            } else {
                "something-else".into()
            };
            records
                .lock()
                .unwrap()
                .insert(format!("_acme-challenge.{name}"), value);
            let started = client
                .post(challenge["url"].as_str().unwrap(), Some(&json!({})))
                .await;
            assert_eq!(started.status, 200, "{}", started.text);
            let settled = settle(&mut client, &authz_url).await;
            if right {
                assert_eq!(settled.body["status"], "valid", "{}", settled.text);
            } else {
                assert_eq!(settled.body["status"], "invalid", "{}", settled.text);
                let failed = settled.body["challenges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["type"] == "dns-01")
                    .unwrap();
                assert_eq!(
                    failed["error"]["type"], "urn:ietf:params:acme:error:incorrectResponse",
                    "{}",
                    settled.text
                );
            }
        }

        // A wildcard: one authorization for the base name, dns-01 only.
        let new_order = client.url("newOrder");
        let order = client
            .post(
                &new_order,
                Some(&json!({"identifiers": [{"type": "dns", "value": "*.wild.localhost"}]})),
            )
            .await;
        assert_eq!(order.status, 201, "{}", order.text);
        let order_url = order.location.clone().unwrap();
        let authz_url = order.body["authorizations"][0].as_str().unwrap().to_owned();
        let authz = client.post(&authz_url, None).await;
        assert_eq!(authz.body["wildcard"], true, "{}", authz.text);
        assert_eq!(authz.body["identifier"]["value"], "wild.localhost");
        let challenges = authz.body["challenges"].as_array().unwrap();
        assert_eq!(challenges.len(), 1, "{}", authz.text);
        assert_eq!(challenges[0]["type"], "dns-01");
        let key_authorization = format!(
            "{}.{}",
            challenges[0]["token"].as_str().unwrap(),
            client.thumbprint()
        );
        records.lock().unwrap().insert(
            "_acme-challenge.wild.localhost".into(),
            b64(aws_lc_rs::digest::digest(
                &aws_lc_rs::digest::SHA256,
                key_authorization.as_bytes(),
            )
            .as_ref()),
        );
        let challenge_url = challenges[0]["url"].as_str().unwrap().to_owned();
        client.post(&challenge_url, Some(&json!({}))).await;
        let settled = settle(&mut client, &authz_url).await;
        assert_eq!(settled.body["status"], "valid", "{}", settled.text);
        let finalize = format!("{order_url}/finalize");
        let reply = client
            .post(
                &finalize,
                Some(&json!({"csr": b64(&csr(&["*.wild.localhost"]))})),
            )
            .await;
        assert_eq!(reply.body["status"], "valid", "{}", reply.text);
    });
    dev.kill().unwrap();
    let _ = dev.wait();
}

/// Serves TLS on 127.0.0.1:`port` with whatever config `current` holds at each
/// connection (a tls-alpn-01 responder whose certificate the test swaps).
async fn tls_alpn_server(port: u16, current: Arc<Mutex<Option<Arc<rustls::ServerConfig>>>>) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let Some(config) = current.lock().unwrap().clone() else {
                continue;
            };
            tokio::spawn(async move {
                let _ = tokio_rustls::TlsAcceptor::from(config).accept(stream).await;
            });
        }
    });
}

/// Always presents the same certificate.
#[derive(Debug)]
struct OneCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for OneCertificate {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// A tls-alpn-01 responder config for `name` carrying `digest` as its acmeIdentifier.
fn tls_alpn_config(name: &str, digest: &[u8]) -> Arc<rustls::ServerConfig> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params
        .custom_extensions
        .push(rcgen::CustomExtension::new_acme_identifier(digest));
    let certificate = params.self_signed(&key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // A resolver rather than `with_single_cert`, which would refuse the critical
    // acmeIdentifier extension.
    let signing_key = provider
        .key_provider
        .load_private_key(rustls::pki_types::PrivateKeyDer::Pkcs8(
            key.serialize_der().into(),
        ))
        .unwrap();
    let certified = Arc::new(rustls::sign::CertifiedKey::new(
        vec![certificate.der().clone()],
        signing_key,
    ));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OneCertificate(certified)));
    config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    Arc::new(config)
}

#[test]
fn tls_alpn_01_checks_the_acme_identifier_of_the_presented_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (api, publication, tls_port) = (free_port(), free_port(), free_port());
    let data = dev_with_http_port(dir.path(), free_port(), api, publication);
    let config = data.join("carimbo.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(
        "[acme]\n",
        &format!("[acme]\ntls-alpn-01-port = {tls_port}\n"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let (mut dev, _) = start_dev(&data, api, publication);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let current = Arc::new(Mutex::new(None));
        tls_alpn_server(tls_port, Arc::clone(&current)).await;
        let bundle = std::fs::read(data.join("ca-bundle.pem")).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&bundle).unwrap())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let mut client = Client::new(
            &http,
            &format!("https://127.0.0.1:{api}/acme/server/directory"),
        )
        .await;
        client.register().await;
        for (name, right) in [("alpn.localhost", true), ("wrong-alpn.localhost", false)] {
            let new_order = client.url("newOrder");
            let order = client
                .post(
                    &new_order,
                    Some(&json!({"identifiers": [{"type": "dns", "value": name}]})),
                )
                .await;
            assert_eq!(order.status, 201, "{}", order.text);
            let authz_url = order.body["authorizations"][0].as_str().unwrap().to_owned();
            let authz = client.post(&authz_url, None).await;
            let challenge = authz.body["challenges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == "tls-alpn-01")
                .unwrap_or_else(|| panic!("no tls-alpn-01 challenge: {}", authz.text))
                .clone();
            let key_authorization = format!(
                "{}.{}",
                challenge["token"].as_str().unwrap(),
                client.thumbprint()
            );
            let mut digest =
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes())
                    .as_ref()
                    .to_vec();
            if !right {
                digest[0] ^= 1;
            }
            *current.lock().unwrap() = Some(tls_alpn_config(name, &digest));
            let started = client
                .post(challenge["url"].as_str().unwrap(), Some(&json!({})))
                .await;
            assert_eq!(started.status, 200, "{}", started.text);
            let settled = settle(&mut client, &authz_url).await;
            let expected = if right { "valid" } else { "invalid" };
            assert_eq!(settled.body["status"], expected, "{}", settled.text);
            if !right {
                let failed = settled.body["challenges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["type"] == "tls-alpn-01")
                    .unwrap();
                assert_eq!(
                    failed["error"]["type"], "urn:ietf:params:acme:error:incorrectResponse",
                    "{}",
                    settled.text
                );
            }
        }
    });
    dev.kill().unwrap();
    let _ = dev.wait();
}

#[test]
fn two_replicas_on_one_postgresql_database_share_acme_state() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(carimbo_store::postgres_testing::database()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let data = dev_with_http_port(dir.path(), http_port, free_port(), free_port());
    carimbo_tests::write_private(&data.join("pg.url"), database.url.as_bytes());
    let mut replicas = Vec::new();
    for name in ["a", "b"] {
        let (api, publication) = (free_port(), free_port());
        let config = crate::replicas::serve_config(
            &data,
            &format!("replica-{name}"),
            api,
            publication,
            true,
        );
        replicas.push(crate::replicas::start_replica_with(
            &config,
            api,
            publication,
            &[],
            Some(&data.join(format!("replica-{name}.log"))),
        ));
    }
    let (a, b) = (replicas[0].api.clone(), replicas[1].api.clone());
    runtime.block_on(async {
        let answers = Arc::new(Mutex::new(HashMap::new()));
        challenge_server(http_port, Arc::clone(&answers)).await;
        let bundle = std::fs::read(data.join("ca-bundle.pem")).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&bundle).unwrap())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let mut client = Client::new(&http, &format!("{a}/acme/server/directory")).await;
        client.register().await;
        // A nonce from B is good on A, once: the second use, on B, is a replay.
        client.via = Some((a.clone(), b.clone()));
        let nonce = client.fresh_nonce().await;
        client.via = None;
        let new_order = client.url("newOrder");
        let body = client.sign(
            &client.header(&new_order, &nonce),
            Some(&json!({"identifiers": [{"type": "dns", "value": "replay.localhost"}]})),
        );
        assert_eq!(client.send(&new_order, &body).await.status, 201);
        client.via = Some((a.clone(), b.clone()));
        let replayed = client.send(&new_order, &body).await;
        assert_eq!(
            replayed.problem(),
            "urn:ietf:params:acme:error:badNonce",
            "{}",
            replayed.text
        );
        // Ordered and validated through B, ready on A.
        let (order_url, authz) =
            order_and_answer(&mut client, &answers, "shared.localhost", |k| k.to_owned()).await;
        assert_eq!(authz.body["status"], "valid", "{}", authz.text);
        client.via = None;
        let order = client.post(&order_url, None).await;
        assert_eq!(order.body["status"], "ready", "{}", order.text);
        // Finalized on both at once: one certificate.
        let finalize = order.body["finalize"].as_str().unwrap().to_owned();
        let mut bodies = Vec::new();
        for _ in 0..2 {
            let nonce = client.fresh_nonce().await;
            client.nonce = None;
            bodies.push(client.sign(
                &client.header(&finalize, &nonce),
                Some(&json!({"csr": b64(&csr(&["shared.localhost"]))})),
            ));
        }
        let send = |origin: &str, body: Value| {
            let request = http
                .post(finalize.replacen(a.as_str(), origin, 1))
                .header("host", a.trim_start_matches("https://"))
                .header("content-type", "application/jose+json")
                .body(body.to_string());
            async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.text().await.unwrap())
            }
        };
        let (first, second) =
            tokio::join!(send(&a, bodies[0].clone()), send(&b, bodies[1].clone()));
        let mut statuses = [first.0, second.0];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 403], "{first:?} {second:?}");
        let loser = if first.0 == 403 { &first.1 } else { &second.1 };
        assert!(loser.contains("orderNotReady"), "{loser}");
        let order = client.post(&order_url, None).await;
        assert_eq!(order.body["status"], "valid", "{}", order.text);
        let certificate = order.body["certificate"].as_str().unwrap().to_owned();
        client.via = Some((a.clone(), b.clone()));
        let chain = client.post(&certificate, None).await;
        assert_eq!(chain.status, 200, "{}", chain.text);
    });
    for replica in &mut replicas {
        replica.terminate();
    }
}

#[test]
fn ip_identifiers_are_validated_with_http_01_on_the_address_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (api, publication, http_port) = (free_port(), free_port(), free_port());
    let data = dev_with_http_port(dir.path(), http_port, api, publication);
    let config = data.join("carimbo.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let granted = r#"sans = ["dns:localhost", "dns:**.localhost"]"#;
    assert!(text.contains(granted), "dev config changed");
    std::fs::write(
        &config,
        text.replace(
            granted,
            r#"sans = ["dns:localhost", "dns:**.localhost", "ip:127.0.0.1"]"#,
        ),
    )
    .unwrap();
    let (mut dev, _) = start_dev(&data, api, publication);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let answers = Arc::new(Mutex::new(HashMap::new()));
        challenge_server(http_port, Arc::clone(&answers)).await;
        let bundle = std::fs::read(data.join("ca-bundle.pem")).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&bundle).unwrap())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let mut client = Client::new(
            &http,
            &format!("https://127.0.0.1:{api}/acme/server/directory"),
        )
        .await;
        client.register().await;
        let new_order = client.url("newOrder");
        // An address the provisioner does not grant.
        let reply = client
            .post(
                &new_order,
                Some(&json!({"identifiers": [{"type": "ip", "value": "10.0.0.1"}]})),
            )
            .await;
        assert_eq!(
            reply.problem(),
            "urn:ietf:params:acme:error:rejectedIdentifier",
            "{}",
            reply.text
        );
        let order = client
            .post(
                &new_order,
                Some(&json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})),
            )
            .await;
        assert_eq!(order.status, 201, "{}", order.text);
        let order_url = order.location.clone().unwrap();
        let authz_url = order.body["authorizations"][0].as_str().unwrap().to_owned();
        let authz = client.post(&authz_url, None).await;
        let challenges = authz.body["challenges"].as_array().unwrap();
        assert_eq!(challenges.len(), 1, "{}", authz.text);
        assert_eq!(challenges[0]["type"], "http-01");
        let token = challenges[0]["token"].as_str().unwrap().to_owned();
        answers
            .lock()
            .unwrap()
            .insert(token.clone(), format!("{token}.{}", client.thumbprint()));
        let challenge_url = challenges[0]["url"].as_str().unwrap().to_owned();
        client.post(&challenge_url, Some(&json!({}))).await;
        let settled = settle(&mut client, &authz_url).await;
        assert_eq!(settled.body["status"], "valid", "{}", settled.text);
        let reply = client
            .post(
                &format!("{order_url}/finalize"),
                Some(&json!({"csr": b64(&csr(&["127.0.0.1"]))})),
            )
            .await;
        assert_eq!(reply.body["status"], "valid", "{}", reply.text);
    });
    dev.kill().unwrap();
    let _ = dev.wait();
}
