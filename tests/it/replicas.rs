//! Several `carimbo serve` replicas on one PostgreSQL database behave as one CA: a token
//! minted on one is consumed once on any, certificates issued on either are known to
//! both, a revocation made on one reaches the other's OCSP answers within the
//! revocation-log poll, and both serve CRLs from one number sequence.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use carimbo_tests::{carimbo_binary, write_private};

use crate::cli_dev::{dev_data, free_port};
use crate::revocation::{openssl_ocsp, plain_http};
use crate::server::s;

/// A running `carimbo serve` replica.
pub(crate) struct Replica {
    pub(crate) child: Child,
    pub(crate) api: String,
    pub(crate) publication: String,
}

impl Replica {
    /// Stops it with SIGTERM (what systemd and container runtimes send) and checks it
    /// exits 0 within ten seconds.
    pub(crate) fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit after SIGTERM: {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still running 10 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `carimbo serve` on `config` and waits for both listeners.
fn start_replica(config: &Path, api: u16, publication: u16) -> Replica {
    start_replica_with(config, api, publication, &[], None)
}

/// Starts `carimbo serve` on `config` with extra environment variables, its log (stderr)
/// written to `log` if given, and waits for both listeners.
pub(crate) fn start_replica_with(
    config: &Path,
    api: u16,
    publication: u16,
    env: &[(&str, &str)],
    log: Option<&Path>,
) -> Replica {
    let stderr = match log {
        Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
        None => Stdio::null(),
    };
    let mut child = Command::new(carimbo_binary())
        .args(["serve", "--config", s(config)])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    for port in [api, publication] {
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                child.try_wait().unwrap().is_none(),
                "replica {} exited at start: {}",
                config.display(),
                log.map(|path| std::fs::read_to_string(path).unwrap_or_default())
                    .unwrap_or_default()
            );
            assert!(
                Instant::now() < deadline,
                "replica never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Replica {
        child,
        api: format!("https://127.0.0.1:{api}"),
        publication: format!("http://127.0.0.1:{publication}"),
    }
}

pub(crate) fn carimbo(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(carimbo_binary()).args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ocsp(root: &Path, issuer: &Path, cert: &Path, replica: &Replica) -> String {
    let url = format!("{}/ocsp", replica.publication);
    openssl_ocsp(root, issuer, &["-cert", s(cert)], &url, &[])
}

/// The CRL number of `replica`'s current int-server CRL, and whether it lists `serial`.
pub(crate) fn crl(replica: &Replica, serial: &str) -> Option<(u64, bool)> {
    let (status, der) = plain_http(
        "GET",
        &format!("{}/crl/int-server.crl", replica.publication),
    );
    if status != 200 {
        return None;
    }
    let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
    let number = crl.crl_number().unwrap().to_u64_digits()[0];
    let listed = crl
        .iter_revoked_certificates()
        .any(|entry| hex::encode(entry.raw_serial()) == serial);
    Some((number, listed))
}

#[test]
fn two_replicas_on_one_postgresql_database_are_one_ca() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(database) = runtime.block_on(carimbo_store::postgres_testing::database()) else {
        return;
    };
    // The development hierarchy and config, then switched to PostgreSQL.
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    write_private(&data.join("pg.url"), database.url.as_bytes());
    let mut ports = Vec::new();
    for name in ["a", "b"] {
        let (api, publication) = (free_port(), free_port());
        serve_config(&data, &format!("replica-{name}"), api, publication, true);
        ports.push((api, publication));
    }
    let a = start_replica(&data.join("replica-a.toml"), ports[0].0, ports[0].1);
    let b = start_replica(&data.join("replica-b.toml"), ports[1].0, ports[1].1);
    let bundle = data.join("ca-bundle.pem");
    let admin = data.join("admin.token");
    let root = data.join("ceremony/root.pem");
    let issuer = data.join("ceremony/int-server.pem");

    // A token minted on A is consumed on B, once.
    let mint = |replica: &Replica| {
        let (ok, stdout, stderr) = carimbo(&[
            "token",
            "create",
            "--ca",
            &replica.api,
            "--ca-bundle",
            s(&bundle),
            "--admin-token-file",
            s(&admin),
            "--provisioner",
            "dev",
            "--profile",
            "server",
            "--san",
            "dns:replica.localhost",
        ]);
        assert!(ok, "{stderr}");
        stdout.trim().to_owned()
    };
    let issue = |replica: &Replica, token: &str, out: &Path| {
        carimbo(&[
            "issue",
            "--ca",
            &replica.api,
            "--ca-bundle",
            s(&bundle),
            "--token",
            token,
            "--profile",
            "server",
            "--san",
            "dns:replica.localhost",
            "--out",
            s(out),
        ])
    };
    let token = mint(&a);
    let first = dir.path().join("first");
    let (ok, _, stderr) = issue(&b, &token, &first);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = issue(&a, &token, &dir.path().join("again"));
    assert!(!ok && stderr.contains("token_used"), "{stderr}");
    let second = dir.path().join("second");
    let (ok, _, stderr) = issue(&a, &mint(&b), &second);
    assert!(ok, "{stderr}");

    // Both replicas answer for both certificates.
    for cert in [first.join("cert.pem"), second.join("cert.pem")] {
        for replica in [&a, &b] {
            let text = ocsp(&root, &issuer, &cert, replica);
            assert!(
                text.contains(": good") && text.contains("Response verify OK"),
                "{text}"
            );
        }
    }

    // Revoked through A: B's OCSP says so within the poll interval (1 s) plus margin.
    let (ok, _, stderr) = carimbo(&[
        "revoke",
        "--ca",
        &a.api,
        "--ca-bundle",
        s(&bundle),
        "--cert",
        s(&first.join("cert.pem")),
        "--admin-token-file",
        s(&admin),
        "--reason",
        "superseded",
    ]);
    assert!(ok, "{stderr}");
    let returned = Instant::now();
    loop {
        let text = ocsp(&root, &issuer, &first.join("cert.pem"), &b);
        if text.contains(": revoked") {
            break;
        }
        assert!(text.contains(": good"), "{text}");
        assert!(
            returned.elapsed() < Duration::from_secs(3),
            "B still says good 3 s after the revocation on A"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("revocation on A seen by B after {:?}", returned.elapsed());

    // Both publish CRLs from one sequence: each lists the revocation soon, and the
    // numbers they serve never go backwards.
    let serial = {
        let der = carimbo_pki::pem_decode(
            &std::fs::read_to_string(first.join("cert.pem")).unwrap(),
            "CERTIFICATE",
        )
        .unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        hex::encode(parsed.raw_serial())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = [0u64; 2];
    loop {
        let a_crl = crl(&a, &serial);
        let b_crl = crl(&b, &serial);
        for (index, current) in [a_crl, b_crl].iter().enumerate() {
            if let Some((number, _)) = current {
                assert!(
                    *number >= seen[index],
                    "CRL number went back on replica {index}"
                );
                seen[index] = *number;
            }
        }
        if matches!((a_crl, b_crl), (Some((_, true)), Some((_, true)))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the CRLs never listed {serial}: {a_crl:?} {b_crl:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(a);
    drop(b);
    drop(database);
}

/// Mints a bootstrap token for `san` (profile server) from `provisioner` through the
/// CA API at `api` (trusted through `bundle`) with the admin token in `admin_token`,
/// with the `carimbo` CLI; panics with its message on failure.
pub(crate) fn mint_token(
    api: &str,
    bundle: &Path,
    admin_token: &Path,
    provisioner: &str,
    san: &str,
) -> String {
    let (ok, token, stderr) = carimbo(&[
        "token",
        "create",
        "--ca",
        api,
        "--ca-bundle",
        s(bundle),
        "--admin-token-file",
        s(admin_token),
        "--provisioner",
        provisioner,
        "--profile",
        "server",
        "--san",
        san,
    ]);
    assert!(ok, "{stderr}");
    token.trim().to_owned()
}

/// Issues a server certificate for `san` with `token` through the CA API at `api`
/// into `out`, with the `carimbo` CLI: whether it succeeded, its stdout and stderr.
pub(crate) fn issue_with_token(
    api: &str,
    bundle: &Path,
    token: &str,
    san: &str,
    out: &Path,
) -> (bool, String, String) {
    carimbo(&[
        "issue",
        "--ca",
        api,
        "--ca-bundle",
        s(bundle),
        "--token",
        token,
        "--profile",
        "server",
        "--san",
        san,
        "--out",
        s(out),
    ])
}

/// Mints a bootstrap token for `san` (provisioner `dev`, profile server) through
/// `replica` with the admin token in `data`, and issues a certificate with it into
/// `out`, both with the `carimbo` CLI; panics with its message on failure.
pub(crate) fn issue_through(replica: &Replica, data: &Path, san: &str, out: &Path) {
    let bundle = data.join("ca-bundle.pem");
    let token = mint_token(&replica.api, &bundle, &data.join("admin.token"), "dev", san);
    let (ok, _, stderr) = issue_with_token(&replica.api, &bundle, &token, san, out);
    assert!(ok, "{stderr}");
}

/// Revokes the one certificate matching `condition` (`KEY=VALUE`) for `reason` through
/// `replica` with `carimbo admin revoke … --execute --expect 1` and the admin token in
/// `data`; panics with its output on failure.
pub(crate) fn admin_revoke_one(replica: &Replica, data: &Path, condition: &str, reason: &str) {
    let (ok, stdout, stderr) = carimbo(&[
        "admin",
        "revoke",
        "--ca",
        replica.api.as_str(),
        "--ca-bundle",
        s(&data.join("ca-bundle.pem")),
        "--admin-token-file",
        s(&data.join("admin.token")),
        "--where",
        condition,
        "--reason",
        reason,
        "--execute",
        "--expect",
        "1",
    ]);
    assert!(ok && stdout.contains("revoked 1 of 1"), "{stdout}{stderr}");
}

/// Writes a copy of the dev config for `carimbo serve`: new ports and, with `postgres`,
/// the PostgreSQL URL file instead of SQLite.
pub(crate) fn serve_config(
    data: &Path,
    name: &str,
    api: u16,
    publication: u16,
    postgres: bool,
) -> std::path::PathBuf {
    let template = std::fs::read_to_string(data.join("carimbo.toml")).unwrap();
    let mut config = String::new();
    for line in template.lines() {
        let line = if line.starts_with("listen = ") {
            format!("listen = \"127.0.0.1:{api}\"")
        } else if line.starts_with("publication-listen = ") {
            format!("publication-listen = \"127.0.0.1:{publication}\"")
        } else if line.starts_with("sqlite = ") && postgres {
            "postgres-url-file = \"pg.url\"\nmax-connections = 4".to_owned()
        } else {
            line.to_owned()
        };
        config.push_str(&line);
        config.push('\n');
    }
    let path = data.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    path
}

/// Issue → renew → revoke (by the holder) → CRL → OCSP → renewal refused, against
/// `carimbo serve` on `postgres` or SQLite.
fn story(postgres: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    if let Some(url) = postgres {
        write_private(&data.join("pg.url"), url.as_bytes());
    }
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "story", api, publication, postgres.is_some());
    let ca = start_replica(&config, api, publication);
    let bundle = data.join("ca-bundle.pem");
    let admin = data.join("admin.token");
    let root = data.join("ceremony/root.pem");
    let issuer = data.join("ceremony/int-server.pem");
    let ca_args = ["--ca", ca.api.as_str(), "--ca-bundle", s(&bundle)];

    let (ok, token, stderr) = carimbo(
        &[
            &["token", "create"][..],
            &ca_args,
            &[
                "--admin-token-file",
                s(&admin),
                "--provisioner",
                "dev",
                "--profile",
                "server",
                "--san",
                "dns:story.localhost",
            ],
        ]
        .concat(),
    );
    assert!(ok, "{stderr}");
    let first = dir.path().join("first");
    let (ok, _, stderr) = carimbo(
        &[
            &["issue"][..],
            &ca_args,
            &[
                "--token",
                token.trim(),
                "--profile",
                "server",
                "--san",
                "dns:story.localhost",
                "--out",
                s(&first),
            ],
        ]
        .concat(),
    );
    assert!(ok, "issue: {stderr}");
    let renewed = dir.path().join("renewed");
    let (ok, _, stderr) = carimbo(
        &[
            &["renew"][..],
            &ca_args,
            &[
                "--cert",
                s(&first.join("cert.pem")),
                "--key",
                s(&first.join("key.pem")),
                "--out",
                s(&renewed),
            ],
        ]
        .concat(),
    );
    assert!(ok, "renew: {stderr}");
    let cert = renewed.join("cert.pem");
    let text = ocsp(&root, &issuer, &cert, &ca);
    assert!(
        text.contains(": good") && text.contains("Response verify OK"),
        "{text}"
    );

    // The holder revokes the renewed certificate with its key.
    let (ok, _, stderr) = carimbo(
        &[
            &["revoke"][..],
            &ca_args,
            &[
                "--cert",
                s(&cert),
                "--key",
                s(&renewed.join("key.pem")),
                "--reason",
                "key-compromise",
            ],
        ]
        .concat(),
    );
    assert!(ok, "revoke: {stderr}");
    let text = ocsp(&root, &issuer, &cert, &ca);
    assert!(
        text.contains(": revoked") && text.contains("keyCompromise"),
        "{text}"
    );
    let serial = {
        let der = carimbo_pki::pem_decode(&std::fs::read_to_string(&cert).unwrap(), "CERTIFICATE")
            .unwrap();
        let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
        hex::encode(parsed.raw_serial())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(crl(&ca, &serial), Some((_, true))) {
        assert!(Instant::now() < deadline, "the CRL never listed {serial}");
        std::thread::sleep(Duration::from_millis(250));
    }
    // Renewing the revoked certificate is refused.
    let (ok, _, stderr) = carimbo(
        &[
            &["renew"][..],
            &ca_args,
            &[
                "--cert",
                s(&cert),
                "--key",
                s(&renewed.join("key.pem")),
                "--out",
                s(&dir.path().join("refused")),
            ],
        ]
        .concat(),
    );
    assert!(!ok && stderr.contains("certificate_revoked"), "{stderr}");
    let mut ca = ca;
    ca.terminate();

    // The audit trail of all that verifies; an event changed behind the service's back
    // (triggers dropped, as someone with raw database access could) is found.
    let (ok, stdout, stderr) = carimbo(&["audit", "verify", "--config", s(&config)]);
    assert!(
        ok && stdout.contains("audit chain main: intact"),
        "{stdout}{stderr}"
    );
    let (ok, _, stderr) = carimbo(&[
        "audit",
        "verify",
        "--config",
        s(&config),
        "--chain",
        "no-such-chain",
    ]);
    assert!(!ok && stderr.contains("no events"), "{stderr}");
    if postgres.is_none() {
        let database = data.join("carimbo.db");
        let output = Command::new(std::env::var("CARIMBO_PYTHON").unwrap_or("python3".into()))
            .args([
                "-c",
                "import sqlite3, sys\n\
                 db = sqlite3.connect(sys.argv[1])\n\
                 db.execute('DROP TRIGGER audit_events_no_update')\n\
                 db.execute(\"UPDATE audit_events SET event = replace(event, 'story', 'storz') \
                 WHERE chain = 'main' AND sequence = (SELECT MAX(sequence) FROM audit_events \
                 WHERE chain = 'main' AND event LIKE '%story%')\")\n\
                 assert db.total_changes == 1, db.total_changes\n\
                 db.commit()\n",
                s(&database),
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let (ok, stdout, stderr) = carimbo(&["audit", "verify", "--config", s(&config)]);
        assert!(
            !ok && stdout.contains("audit chain main: BROKEN: event")
                && stdout.contains("was changed"),
            "{stdout}{stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn the_story_runs_on_sqlite() {
    story(None);
}

#[test]
fn the_story_runs_on_postgresql() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(database) = runtime.block_on(carimbo_store::postgres_testing::database()) else {
        return;
    };
    story(Some(&database.url));
    drop(database);
}

#[test]
fn a_replica_rides_out_a_postgresql_restart() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A server of its own: this test stops it.
    let Some(server) = carimbo_store::postgres_testing::private_server() else {
        return;
    };
    let database = runtime.block_on(carimbo_store::postgres_testing::database_on(&server));
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    write_private(&data.join("pg.url"), database.url.as_bytes());
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "restart", api, publication, true);
    let mut ca = start_replica(&config, api, publication);
    let bundle = data.join("ca-bundle.pem");
    let admin = data.join("admin.token");
    let root = data.join("ceremony/root.pem");
    let issuer = data.join("ceremony/int-server.pem");
    let mint = || {
        carimbo(&[
            "token",
            "create",
            "--ca",
            &ca.api,
            "--ca-bundle",
            s(&bundle),
            "--admin-token-file",
            s(&admin),
            "--provisioner",
            "dev",
            "--profile",
            "server",
            "--san",
            "dns:restart.localhost",
        ])
    };
    let (ok, token, stderr) = mint();
    assert!(ok, "{stderr}");
    let first = dir.path().join("first");
    let (ok, _, stderr) = carimbo(&[
        "issue",
        "--ca",
        &ca.api,
        "--ca-bundle",
        s(&bundle),
        "--token",
        token.trim(),
        "--profile",
        "server",
        "--san",
        "dns:restart.localhost",
        "--out",
        s(&first),
    ]);
    assert!(ok, "{stderr}");
    let text = ocsp(&root, &issuer, &first.join("cert.pem"), &ca);
    assert!(text.contains(": good"), "{text}");

    // PostgreSQL goes down: requests that need it get a 503 that says so; the answer
    // already cached is still served.
    server.stop();
    let (ok, _, stderr) = mint();
    assert!(!ok && stderr.contains("database_unavailable"), "{stderr}");
    let text = ocsp(&root, &issuer, &first.join("cert.pem"), &ca);
    assert!(
        text.contains(": good") && text.contains("Response verify OK"),
        "{text}"
    );
    assert!(ca.child.try_wait().unwrap().is_none(), "the replica exited");

    // Back up: the same process serves again, without a restart.
    server.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    let token = loop {
        let (ok, token, stderr) = mint();
        if ok {
            break token;
        }
        assert!(
            stderr.contains("database_unavailable"),
            "not a 503 while reconnecting: {stderr}"
        );
        assert!(
            Instant::now() < deadline,
            "no recovery after the restart: {stderr}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let (ok, _, stderr) = carimbo(&[
        "issue",
        "--ca",
        &ca.api,
        "--ca-bundle",
        s(&bundle),
        "--token",
        token.trim(),
        "--profile",
        "server",
        "--san",
        "dns:restart.localhost",
        "--out",
        s(&dir.path().join("second")),
    ]);
    assert!(ok, "{stderr}");
    ca.terminate();
    drop(database);
}

/// A CA and a server certificate for 127.0.0.1 signed by it: (CA PEM, chain PEM, key PEM).
fn tls_server_identity() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "database test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn a_replica_reaches_postgresql_over_verified_tls_only() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A server of its own: this test turns TLS on and refuses plain connections.
    let Some(server) = carimbo_store::postgres_testing::private_server() else {
        return;
    };
    let (ca_pem, chain_pem, key_pem) = tls_server_identity();
    server.require_tls(chain_pem.as_bytes(), key_pem.as_bytes());
    let database = runtime.block_on(carimbo_store::postgres_testing::database_on(&server));
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("db-ca.pem");
    std::fs::write(&ca, &ca_pem).unwrap();
    let (other_ca, _, _) = tls_server_identity();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, &other_ca).unwrap();
    let options = carimbo_store::PostgresOptions::default();
    let connect = |query: String| {
        runtime.block_on(carimbo_store::PostgresStore::connect(
            &format!("{}?{query}", database.url),
            &options,
        ))
    };
    // Plain TCP is refused by the server; a certificate from another CA by the client.
    let plain = connect("sslmode=disable".into()).unwrap_err().to_string();
    assert!(
        plain.contains("no pg_hba.conf entry") || plain.contains("SSL off"),
        "{plain}"
    );
    let wrong = connect(format!(
        "sslmode=verify-full&sslrootcert={}",
        other.display()
    ))
    .unwrap_err()
    .to_string();
    assert!(!wrong.contains(&server.password), "{wrong}");
    assert!(
        wrong.to_lowercase().contains("certificate") || wrong.to_lowercase().contains("tls"),
        "{wrong}"
    );
    let verified = connect(format!("sslmode=verify-full&sslrootcert={}", ca.display()));
    runtime.block_on(verified.unwrap().close());

    // A replica whose URL file asks for verify-full serves and issues.
    let data = dev_data(dir.path());
    write_private(
        &data.join("pg.url"),
        format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            database.url,
            ca.display()
        )
        .as_bytes(),
    );
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "tls", api, publication, true);
    let mut replica = start_replica(&config, api, publication);
    issue_through(
        &replica,
        &data,
        "dns:tls.localhost",
        &dir.path().join("issued"),
    );
    replica.terminate();
    drop(database);
}
