//! Observability: `GET /metrics` after a scripted workload (issuance, refusals, a
//! revocation, OCSP answers of every status, KMS calls) moves the documented metrics
//! by the expected amounts and parses as Prometheus text; `/readyz` turns not ready
//! when the database goes down and when the CA's HSM token disappears, and ready again
//! when they come back — the token in the same process, also after its PIN was changed
//! while it was away (once the PIN file holds the new PIN).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use carimbo_tests::{ceremony_pki, softhsm, write_private};
use serde_json::{Value, json};

use crate::cli_dev::free_port;
use crate::replicas::start_replica_with;
use crate::revocation::openssl_ocsp;
use crate::server::{TestCa, p256, s, start_ca, write_issued};

/// Samples of one scrape: `name{labels}` (labels sorted) → value.
type Samples = BTreeMap<String, f64>;

/// Parses OpenMetrics or classic Prometheus text strictly: every sample line is
/// `name{label="value",…} value` and belongs to a family announced by `# TYPE` and
/// `# HELP` (in OpenMetrics a counter's family has no `_total`, and the exposition
/// ends with `# EOF`).
fn parse_exposition(text: &str) -> Samples {
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut helps: BTreeSet<String> = BTreeSet::new();
    let mut samples = Samples::new();
    let mut lines: Vec<&str> = text.lines().collect();
    // OpenMetrics ends with `# EOF`; the classic format has no end marker.
    let openmetrics = lines.last() == Some(&"# EOF");
    if openmetrics {
        lines.pop();
    }
    for line in &lines {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(!help.trim().is_empty(), "empty HELP: {line}");
            helps.insert(name.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(
                ["counter", "gauge", "histogram", "info", "unknown"].contains(&kind),
                "{line}"
            );
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with("# UNIT ") && openmetrics {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment: {line}");
        // name{labels} value
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            other => other
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("labels end with }");
                let mut pairs: Vec<String> = Vec::new();
                if !labels.is_empty() {
                    for pair in split_labels(labels) {
                        let (key, quoted) = pair.split_once('=').unwrap();
                        assert!(
                            key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                            "{line}"
                        );
                        assert!(
                            quoted.starts_with('"') && quoted.ends_with('"') && quoted.len() >= 2,
                            "{line}"
                        );
                        pairs.push(format!("{key}={quoted}"));
                    }
                }
                pairs.sort();
                (name, pairs.join(","))
            }
            None => (series, String::new()),
        };
        assert!(
            name.starts_with("carimbo_")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        let family = ["_total", "_bucket", "_count", "_sum", "_info"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.contains_key(*base))
            })
            .unwrap_or(name);
        assert!(types.contains_key(family), "no # TYPE for {name}");
        assert!(helps.contains(family), "no # HELP for {name}");
        samples.insert(format!("{name}{{{labels}}}"), value);
    }
    samples
}

/// `a="x",b="y"` → [`a="x"`, `b="y"`] (values may hold commas).
fn split_labels(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (index, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        parts.push(&text[start..]);
    }
    parts
}

/// The value of `name` with exactly these labels (0 when absent).
fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    pairs.sort();
    samples
        .get(&format!("{name}{{{}}}", pairs.join(",")))
        .copied()
        .unwrap_or(0.0)
}

fn scrape(ca: &TestCa, bearer: Option<&str>) -> (u16, String, String) {
    scrape_as(
        ca,
        bearer,
        "application/openmetrics-text; version=1.0.0, text/plain;q=0.5",
    )
}

fn scrape_as(ca: &TestCa, bearer: Option<&str>, accept: &str) -> (u16, String, String) {
    ca.runtime.block_on(async {
        let mut request = ca
            .client
            .get(format!("{}/metrics", ca.url))
            .header("accept", accept);
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    })
}

fn metrics(ca: &TestCa) -> Samples {
    let (status, content_type, text) = scrape(ca, Some(&ca.admin_token));
    assert_eq!(status, 200, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse_exposition(&text)
}

fn issue(ca: &TestCa, name: &str) -> (String, PathBuf, tempfile::TempDir) {
    let dns = format!("dns:{name}");
    let token = ca.token("lab", "server", &[&dns], "12h", "5m");
    let request = p256(&[&format!("subjectAltName=DNS:{name}")]);
    let (status, reply) = ca.issue(&token, &request.csr, "server", Some("12h"));
    assert_eq!(status, 201, "{reply}");
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = write_issued(dir.path(), &reply);
    (reply["serial"].as_str().unwrap().to_owned(), cert, dir)
}

fn kms_token(ca: &TestCa, name: &str) -> String {
    std::fs::read_to_string(ca.dir.join(format!("{name}.token")))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn metrics_move_as_documented_after_a_scripted_workload() {
    let Some(ca) = start_ca() else { return };
    let pki = ceremony_pki().unwrap();
    let root = pki.path("root.pem");
    let issuer = pki.path("int-server.pem");
    let ocsp_url = format!("{}/ocsp", ca.publication_url);

    // Access: an auditor or admin token; none, or another role's, is refused.
    let (status, _, _) = scrape(&ca, None);
    assert_eq!(status, 401);
    let (status, _, _) = scrape(&ca, Some(&kms_token(&ca, "kms-admin")));
    assert_eq!(status, 403);

    let before = metrics(&ca);

    // Two certificates issued, two refusals: a profile the token is not for (by the
    // provisioner) and an unknown token (before any provisioner is known).
    let (good_serial, good_cert, _keep_good) = issue(&ca, "metrics-good.example.com");
    let (revoked_serial, revoked_cert, _keep_revoked) = issue(&ca, "metrics-revoked.example.com");
    let token = ca.token(
        "lab",
        "server",
        &["dns:metrics-refused.example.com"],
        "12h",
        "5m",
    );
    let request = p256(&["subjectAltName=DNS:metrics-refused.example.com"]);
    let (status, reply) = ca.issue(&token, &request.csr, "workload", None);
    assert_eq!(
        (status, reply["code"].as_str()),
        (403, Some("forbidden")),
        "{reply}"
    );
    let refused_code = "forbidden";
    let (status, reply) = ca.issue("cbt_not-a-real-token", &request.csr, "server", None);
    assert_eq!(
        (status, reply["code"].as_str()),
        (401, Some("unauthorized")),
        "{reply}"
    );

    // One revoked by an administrator.
    let (status, reply) = ca.post(
        &format!("/v1/certificates/{revoked_serial}/revoke"),
        Some(&ca.admin_token),
        "application/json",
        json!({ "reason": "superseded" }).to_string().into_bytes(),
    );
    assert_eq!(status, 200, "{reply}");

    // OCSP: good twice (the second from the cache), revoked, unknown, malformed.
    for _ in 0..2 {
        let text = openssl_ocsp(&root, &issuer, &["-cert", s(&good_cert)], &ocsp_url, &[]);
        assert!(text.contains(": good"), "{text}");
    }
    let text = openssl_ocsp(&root, &issuer, &["-cert", s(&revoked_cert)], &ocsp_url, &[]);
    assert!(text.contains(": revoked"), "{text}");
    let text = openssl_ocsp(
        &root,
        &issuer,
        &["-serial", "0x0123456789abcdef"],
        &ocsp_url,
        &[],
    );
    assert!(text.contains(": unknown"), "{text}");
    let (status, _) = ca.runtime.block_on(async {
        let response = ca
            .client
            .post(format!("{}/ocsp", ca.url))
            .header("content-type", "application/ocsp-request")
            .body(b"not an OCSP request".to_vec())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.bytes().await.unwrap())
    });
    assert_eq!(status, 200);

    // KMS: one allowed encryption, one denied by the policy.
    let key = format!(
        "envelope-data/test/payments-{}",
        carimbo_tests::random_hex(4)
    );
    let (status, reply) = ca.post(
        "/v1/kms/keys",
        Some(&kms_token(&ca, "kms-admin")),
        "application/json",
        json!({ "name": key, "purpose": "envelope" })
            .to_string()
            .into_bytes(),
    );
    assert_eq!(status, 201, "{reply}");
    let body = json!({ "key": key, "plaintext": "aGVsbG8=", "context": { "tenant": "acme" } });
    for (client, expected) in [("kms-payments", 200), ("kms-ci", 403)] {
        let (status, reply) = ca.post(
            "/v1/kms/encrypt",
            Some(&kms_token(&ca, client)),
            "application/json",
            body.to_string().into_bytes(),
        );
        assert_eq!(status, expected, "{client}: {reply}");
    }

    // The revocation republishes the CRL within the debounce: wait for the job.
    let crl = [("job", "crl")];
    let deadline = Instant::now() + Duration::from_secs(20);
    let after = loop {
        let after = metrics(&ca);
        if value(&after, "carimbo_job_runs_total", &crl)
            > value(&before, "carimbo_job_runs_total", &crl)
        {
            break after;
        }
        assert!(Instant::now() < deadline, "the CRL job never ran");
        std::thread::sleep(Duration::from_millis(250));
    };
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };

    let issued = [
        ("profile", "server"),
        ("provisioner", "lab"),
        ("issuer", "int-server"),
        ("request", "new"),
    ];
    assert_eq!(delta("carimbo_certificates_issued_total", &issued), 2.0);
    let refused_by_policy = [
        ("profile", "workload"),
        ("provisioner", "lab"),
        ("reason", refused_code),
        ("request", "new"),
    ];
    assert_eq!(
        delta("carimbo_certificates_refused_total", &refused_by_policy),
        1.0,
        "{after:#?}"
    );
    let refused_unauthenticated = [
        ("profile", "server"),
        ("provisioner", "none"),
        ("reason", "unauthorized"),
        ("request", "new"),
    ];
    assert_eq!(
        delta(
            "carimbo_certificates_refused_total",
            &refused_unauthenticated
        ),
        1.0
    );

    // Signing: two certificates, a CRL and OCSP answers, each timed by provider.
    let issuer_key = [("provider", "pkcs11"), ("key", "issuer")];
    assert!(delta("carimbo_signing_duration_seconds_count", &issuer_key) >= 3.0);
    assert!(delta("carimbo_signing_duration_seconds_sum", &issuer_key) > 0.0);
    assert!(
        value(
            &after,
            "carimbo_signing_duration_seconds_bucket",
            &[("provider", "pkcs11"), ("key", "issuer"), ("le", "+Inf")]
        ) >= value(
            &after,
            "carimbo_signing_duration_seconds_count",
            &issuer_key
        )
    );
    let responder_key = [("provider", "pkcs11"), ("key", "ocsp-responder")];
    assert!(delta("carimbo_signing_duration_seconds_count", &responder_key) >= 3.0);
    assert_eq!(delta("carimbo_signing_errors_total", &issuer_key), 0.0);

    // OCSP by status, and the cache.
    for (status, expected) in [
        ("good", 2.0),
        ("revoked", 1.0),
        ("unknown", 1.0),
        ("malformed", 1.0),
    ] {
        assert_eq!(
            delta("carimbo_ocsp_requests_total", &[("status", status)]),
            expected,
            "OCSP {status}"
        );
    }
    assert!(delta("carimbo_ocsp_cache_lookups_total", &[("result", "hit")]) >= 1.0);
    assert!(delta("carimbo_ocsp_cache_lookups_total", &[("result", "miss")]) >= 2.0);
    assert!(delta("carimbo_ocsp_response_age_seconds_count", &[]) >= 3.0);
    assert!(value(&after, "carimbo_ocsp_cached_answers", &[]) >= 1.0);
    assert!(
        value(
            &after,
            "carimbo_ocsp_responder_not_after_timestamp_seconds",
            &[("issuer", "int-server")]
        ) > 0.0
    );

    // CRLs: present and fresh; sharded issuers per shard.
    let server_crl = [("issuer", "int-server"), ("shard", "")];
    assert!(after.contains_key("carimbo_crl_age_seconds{issuer=\"int-server\",shard=\"\"}"));
    assert!(value(&after, "carimbo_crl_age_seconds", &server_crl) < 60.0);
    assert!(value(&after, "carimbo_crl_remaining_seconds", &server_crl) > 3600.0);
    assert!(after.contains_key("carimbo_crl_age_seconds{issuer=\"int-workload\",shard=\"3\"}"));
    assert!(value(&after, "carimbo_job_last_success_timestamp_seconds", &crl) > 0.0);
    assert_eq!(delta("carimbo_job_failures_total", &crl), 0.0);
    assert!(value(&after, "carimbo_job_runs_total", &[("job", "lease-keeper")]) >= 1.0);

    // KMS operations and policy denials.
    let encrypt_ok = [("operation", "encrypt"), ("outcome", "ok")];
    assert_eq!(delta("carimbo_kms_operations_total", &encrypt_ok), 1.0);
    let encrypt_denied = [("operation", "encrypt"), ("outcome", "kms_denied")];
    assert_eq!(delta("carimbo_kms_operations_total", &encrypt_denied), 1.0);
    assert_eq!(
        delta(
            "carimbo_kms_policy_denials_total",
            &[("operation", "encrypt")]
        ),
        1.0
    );

    // Expiring soon: both new certificates expire within 24 h, one is revoked.
    for window in ["24h", "7d"] {
        assert_eq!(
            delta("carimbo_certificates_expiring", &[("window", window)]),
            1.0,
            "window {window}"
        );
    }

    // State gauges.
    assert!(
        value(
            &after,
            "carimbo_issuer_not_after_timestamp_seconds",
            &[("issuer", "int-server")]
        ) > 1.7e9
    );
    assert!(value(&after, "carimbo_db_pool_connections", &[("state", "max")]) >= 1.0);
    assert!(value(&after, "carimbo_db_pool_connections", &[("state", "open")]) >= 1.0);
    assert_eq!(
        value(
            &after,
            "carimbo_hsm_sessions",
            &[("token", "ca"), ("state", "size")]
        ),
        8.0
    );
    assert!(
        value(
            &after,
            "carimbo_hsm_sessions",
            &[("token", "kms"), ("state", "size")]
        ) >= 1.0
    );
    assert_eq!(
        value(
            &after,
            "carimbo_dependency_up",
            &[("dependency", "database")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "carimbo_dependency_up",
            &[("dependency", "key-provider:pkcs11")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "carimbo_build_info",
            &[("version", env!("CARGO_PKG_VERSION")), ("role", "all")]
        ),
        1.0
    );

    // No serial or requested name ever becomes a label.
    let text = scrape(&ca, Some(&ca.admin_token)).2;
    // Without OpenMetrics in Accept (curl, older scrapers): the classic text format,
    // with the same samples.
    let (status, content_type, classic) = scrape_as(&ca, Some(&ca.admin_token), "*/*");
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let classic_samples = parse_exposition(&classic);
    assert!(classic.contains("# TYPE carimbo_ocsp_requests_total counter"));
    assert_eq!(
        classic_samples.keys().collect::<Vec<_>>(),
        parse_exposition(&text).keys().collect::<Vec<_>>()
    );
    if let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(classic.as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // docs/metrics.md lists exactly the metrics served.
    let served: BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let (name, kind) = rest.split_once(' ').unwrap();
            if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            }
        })
        .collect();
    assert_eq!(served, documented_metrics());
    for secretish in [
        good_serial.as_str(),
        revoked_serial.as_str(),
        "metrics-good",
    ] {
        assert!(!text.contains(secretish), "{secretish} in the metrics");
    }
}

/// The metric names of the table in docs/metrics.md.
fn documented_metrics() -> BTreeSet<String> {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/metrics.md"))
            .unwrap();
    docs.lines()
        .filter_map(|line| line.strip_prefix("| `carimbo_"))
        .map(|rest| format!("carimbo_{}", rest.split('`').next().unwrap()))
        .collect()
}

#[test]
fn alert_rules_use_only_documented_metrics() {
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/alerts.yml"),
    )
    .unwrap();
    let documented = documented_metrics();
    assert!(documented.len() >= 20, "{documented:?}");
    let mut used = BTreeSet::new();
    for (start, _) in rules.match_indices("carimbo_") {
        let name: String = rules[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name)
            .to_owned();
        assert!(
            documented.contains(&base),
            "{name} is not in docs/metrics.md"
        );
        used.insert(base);
    }
    assert!(used.len() >= 12, "{used:?}");
    // Well-formed YAML with the expected shape (promtool checks the PromQL in CI
    // environments that have it).
    let python = std::env::var("CARIMBO_PYTHON").unwrap_or_else(|_| "python3".into());
    let check = "import sys, yaml\n\
        doc = yaml.safe_load(open(sys.argv[1]))\n\
        rules = [r for g in doc['groups'] for r in g['rules']]\n\
        assert rules and all(r['alert'] and r['expr'] and r['labels']['severity'] in ('warning', 'critical') for r in rules)\n\
        print(len(rules))";
    match std::process::Command::new(&python)
        .args(["-c", check])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/alerts.yml"))
        .output()
    {
        Ok(output) if output.status.success() => {}
        Ok(output)
            if String::from_utf8_lossy(&output.stderr).contains("No module named 'yaml'") =>
        {
            eprintln!("SKIPPED the YAML check (no PyYAML)");
        }
        Ok(output) => panic!("{}", String::from_utf8_lossy(&output.stderr)),
        Err(error) => eprintln!("SKIPPED the YAML check ({python}: {error})"),
    }
    if let Ok(output) = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/alerts.yml"))
        .output()
    {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

/// The token directory of the SoftHSM2 config in `SOFTHSM2_CONF`.
fn token_directory() -> PathBuf {
    let conf = std::fs::read_to_string(std::env::var("SOFTHSM2_CONF").unwrap()).unwrap();
    conf.lines()
        .find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "directories.tokendir").then(|| PathBuf::from(value.trim()))
        })
        .unwrap()
}

/// Copies the token labelled `label` (one directory of SoftHSM2's token directory) into
/// `into`.
fn copy_token(label: &str, into: &Path) {
    let mut copied = false;
    for entry in std::fs::read_dir(token_directory()).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(object) = std::fs::read(dir.join("token.object")) else {
            continue;
        };
        if !object.windows(label.len()).any(|w| w == label.as_bytes()) {
            continue;
        }
        let target = into.join(dir.file_name().unwrap());
        std::fs::create_dir_all(&target).unwrap();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.is_file() {
                std::fs::copy(&file, target.join(file.file_name().unwrap())).unwrap();
            }
        }
        copied = true;
    }
    assert!(copied, "no token labelled {label}");
}

fn readyz(url: &str) -> (u16, Value) {
    let (status, body) = crate::revocation::plain_http("GET", &format!("{url}/readyz"));
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, body)
}

/// Polls `/readyz` until it answers `status`, for at most `seconds`.
fn wait_readyz(url: &str, status: u16, seconds: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let (got, body) = readyz(url);
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {status}: {got} {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn readyz_follows_the_database_and_the_hsm_token() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(pki) = ceremony_pki() else { return };
    let Some(token) = softhsm() else { return };
    // A PostgreSQL server of its own (this test stops it), and a SoftHSM2 token
    // directory of its own holding a copy of the CA token (this test takes it away).
    let Some(server) = carimbo_store::postgres_testing::private_server() else {
        return;
    };
    let database = runtime.block_on(carimbo_store::postgres_testing::database_on(&server));
    let keep = tempfile::tempdir().unwrap();
    let dir = keep.path();
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    copy_token(&token.ca_label, &tokens);
    std::fs::write(
        dir.join("softhsm2.conf"),
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap();
    write_private(&dir.join("ca.pin"), crate::server::ca_pin(pki).as_bytes());
    std::fs::write(
        dir.join("pkcs11-ca.toml"),
        format!(
            "version = 1\nmodule = {:?}\ntoken-label = {:?}\npin-file = \"ca.pin\"\nsessions = 2\ntimeout-seconds = 3\n",
            token.module, token.ca_label
        ),
    )
    .unwrap();
    write_private(&dir.join("pg.url"), database.url.as_bytes());
    write_private(
        &dir.join("admin.token"),
        b"cat_readyz-admin-token-0123456789",
    );
    // The API listener's TLS certificate: a self-signed one made by openssl, which the
    // CLI trusts as its CA bundle.
    let tls = dir.join("tls");
    std::fs::create_dir(&tls).unwrap();
    let (ok, text) = carimbo_tests::openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "extendedKeyUsage=serverAuth",
        "-days",
        "1",
        "-keyout",
        s(&tls.join("server.key")),
        "-out",
        s(&tls.join("server.pem")),
    ]);
    assert!(ok, "{text}");
    let (api, publication) = (free_port(), free_port());
    let ceremony = |name: &str| pki.path(name).display().to_string();
    let config = dir.join("carimbo.toml");
    std::fs::write(
        &config,
        format!(
            r#"version = 1
[server]
listen = "127.0.0.1:{api}"
publication-listen = "127.0.0.1:{publication}"
publication-url = "http://127.0.0.1:{publication}"
[tls]
certificate = "tls/server.pem"
key = "tls/server.key"
[database]
postgres-url-file = "pg.url"
max-connections = 4
[keys]
pkcs11-config = "pkcs11-ca.toml"
[[issuers]]
name = "int-server"
profiles = ["server"]
certificate = {server:?}
chain = [{root:?}]
key-reference = {server_key:?}
[[admins]]
name = "alice"
role = "admin"
token-file = "admin.token"
[[provisioners]]
name = "lab"
type = "token"
profiles = ["server"]
sans = ["dns:*.readyz.example.internal"]
max-ttl = "7d"
"#,
            server = ceremony("int-server.pem"),
            root = ceremony("root.pem"),
            server_key = ceremony("int-server.key.toml"),
        ),
    )
    .unwrap();
    let conf = dir.join("softhsm2.conf");
    let log = dir.join("serve.log");
    let mut replica = start_replica_with(
        &config,
        api,
        publication,
        &[("SOFTHSM2_CONF", s(&conf))],
        Some(&log),
    );
    let url = replica.publication.clone();
    let body = wait_readyz(&url, 200, 30);
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"]["database"]["state"], "ok", "{body}");
    let providers = body["checks"]["key_providers"].as_array().unwrap();
    assert_eq!(providers.len(), 1, "{body}");
    assert_eq!(providers[0]["provider"], "pkcs11", "{body}");
    assert_eq!(providers[0]["state"], "ok", "{body}");
    assert_eq!(providers[0]["token"], token.ca_label.as_str(), "{body}");
    assert_eq!(body["checks"]["crl"]["state"], "ok", "{body}");
    assert_eq!(
        body["checks"]["crl"]["crls"][0]["crl"], "int-server",
        "{body}"
    );
    assert_eq!(body["checks"]["ocsp"]["responders"], "ok", "{body}");

    // The database goes down: not ready, and says why; back when it returns.
    server.stop();
    let body = wait_readyz(&url, 503, 20);
    assert_eq!(body["checks"]["database"]["state"], "down", "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("database is unreachable"),
        "{body}"
    );
    server.start_again();
    let body = wait_readyz(&url, 200, 60);
    assert_eq!(body["checks"]["database"]["state"], "ok", "{body}");

    // The HSM token disappears: not ready, naming the token; back when it returns.
    let away = dir.join("tokens-away");
    std::fs::rename(&tokens, &away).unwrap();
    let body = wait_readyz(&url, 503, 20);
    assert_eq!(body["status"], "not ready", "{body}");
    assert_eq!(
        body["checks"]["key_providers"][0]["state"], "down",
        "{body}"
    );
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("CA keys are unavailable"),
        "{body}"
    );
    // Issuance meanwhile is a clean 503 naming the issuer, and leaves no certificate.
    let refused = issue_through_cli(&replica, dir, "dns:away.readyz.example.internal");
    assert!(
        refused.contains("503") && refused.contains("issuer_unavailable"),
        "{refused}"
    );
    // While away, the token's PIN is changed (by another process, on the moved
    // directory); then it comes back. The same process finds it again but the PIN it
    // holds is refused: still not ready, saying so — and it tries that PIN only once.
    let old_pin = crate::server::ca_pin(pki);
    let new_pin = "changed-readyz-pin-4711";
    let away_conf = dir.join("softhsm2-away.conf");
    std::fs::write(
        &away_conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            away.display()
        ),
    )
    .unwrap();
    let changed = std::process::Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", &away_conf)
        .args([
            "--module",
            s(&token.module),
            "--token-label",
            &token.ca_label,
        ])
        .args([
            "--login",
            "--pin",
            &old_pin,
            "--change-pin",
            "--new-pin",
            new_pin,
        ])
        .output()
        .unwrap();
    assert!(
        changed.status.success(),
        "{}",
        String::from_utf8_lossy(&changed.stderr)
    );
    std::fs::rename(&away, &tokens).unwrap();
    let body = wait_readyz_reason(&url, "wrong PIN", 30);
    assert_eq!(body["status"], "not ready", "{body}");
    std::thread::sleep(Duration::from_secs(6));
    let body = wait_readyz_reason(&url, "wrong PIN", 5);
    assert_eq!(
        body["checks"]["key_providers"][0]["state"], "down",
        "{body}"
    );
    // The operator puts the new PIN in the PIN file: ready again, same process, and
    // issuing again.
    std::fs::remove_file(dir.join("ca.pin")).unwrap();
    write_private(&dir.join("ca.pin"), new_pin.as_bytes());
    let body = wait_readyz(&url, 200, 30);
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["checks"]["key_providers"][0]["state"], "ok", "{body}");
    assert!(replica_alive(&mut replica), "the replica restarted or died");
    let issued = issue_through_cli(&replica, dir, "dns:back.readyz.example.internal");
    assert!(issued.is_empty(), "{issued}");
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("PKCS#11 module re-initialised"),
        "{log_text}"
    );
    assert!(log_text.contains("PKCS#11 token reconnected"), "{log_text}");
    assert_eq!(
        log_text.matches("the token refused the PIN").count(),
        1,
        "the refused PIN was tried more than once: {log_text}"
    );
    drop(replica);
    drop(database);
}

/// Mints a token for `san` and issues a certificate with it through `replica` (whose
/// API certificate and admin token are in `dir`); empty on success, else what the
/// CLI printed.
fn issue_through_cli(replica: &crate::replicas::Replica, dir: &Path, san: &str) -> String {
    let bundle = dir.join("tls/server.pem");
    let token =
        crate::replicas::mint_token(&replica.api, &bundle, &dir.join("admin.token"), "lab", san);
    let out = dir.join(san.replace(':', "-"));
    let (ok, stdout, stderr) =
        crate::replicas::issue_with_token(&replica.api, &bundle, &token, san, &out);
    if ok {
        String::new()
    } else {
        format!("{stdout}{stderr}")
    }
}

/// Whether the replica's process is still running.
fn replica_alive(replica: &mut crate::replicas::Replica) -> bool {
    matches!(replica.child.try_wait(), Ok(None))
}

/// Polls `/readyz` until it answers 503 with a reason containing `reason`, for at most
/// `seconds`.
fn wait_readyz_reason(url: &str, reason: &str, seconds: u64) -> Value {
    let started = Instant::now();
    loop {
        let (got, body) = readyz(url);
        if got == 503 && body["reason"].as_str().is_some_and(|r| r.contains(reason)) {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(seconds),
            "/readyz never gave {reason:?}: {got} {body}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn file_keys_and_aws_kms_are_checked_and_timed_too() {
    let Some(aws) = carimbo_tests::aws_kms_emulator() else {
        return;
    };
    // The development hierarchy (file keys), served with a KMS on the AWS emulator.
    let keep = tempfile::tempdir().unwrap();
    let data = keep.path().join("data");
    let (mut dev, _) = crate::cli_dev::start_dev(&data, free_port(), free_port());
    dev.kill().unwrap();
    let _ = dev.wait();
    std::fs::write(data.join("aws-kms.toml"), aws.config_text("")).unwrap();
    write_private(
        &data.join("kms-admin.token"),
        b"kms-admin-metrics-0123456789",
    );
    let (api, publication) = (free_port(), free_port());
    let config = crate::replicas::serve_config(&data, "metrics", api, publication, false);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        r#"
[[admins]]
name = "kim"
role = "kms-admin"
token-file = "kms-admin.token"

[kms]
provider = "aws"
aws-config = "aws-kms.toml"
"#,
    );
    std::fs::write(&config, text).unwrap();
    let replica = start_replica_with(
        &config,
        api,
        publication,
        &[
            ("AWS_ACCESS_KEY_ID", aws.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", aws.secret_access_key),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        Some(&data.join("metrics.log")),
    );
    let body = wait_readyz(&replica.publication, 200, 30);
    assert_eq!(
        body["checks"]["key_providers"][0]["provider"], "file",
        "{body}"
    );
    assert_eq!(body["checks"]["key_providers"][0]["state"], "ok", "{body}");
    assert_eq!(
        body["checks"]["kms_providers"][0]["provider"], "aws",
        "{body}"
    );
    assert_eq!(body["checks"]["kms_providers"][0]["state"], "ok", "{body}");

    // An OCSP answer for a serial never issued is signed live by a file key.
    let text = openssl_ocsp(
        &data.join("ceremony/root.pem"),
        &data.join("ceremony/int-server.pem"),
        &["-serial", "0x0badc0ffee"],
        &format!("{}/ocsp", replica.publication),
        &[],
    );
    assert!(text.contains(": unknown"), "{text}");
    let root = reqwest::Certificate::from_pem(&std::fs::read(data.join("ca-bundle.pem")).unwrap())
        .unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([root])
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let get_metrics = || {
        runtime.block_on(async {
            let response = client
                .get(format!("{}/metrics", replica.api))
                .bearer_auth(admin.trim())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            parse_exposition(&response.text().await.unwrap())
        })
    };
    let samples = get_metrics();
    assert_eq!(
        value(
            &samples,
            "carimbo_dependency_up",
            &[("dependency", "key-provider:file")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "carimbo_dependency_up",
            &[("dependency", "kms-provider:aws")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "carimbo_signing_duration_seconds_count",
            &[("provider", "file"), ("key", "ocsp-responder")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "carimbo_ocsp_requests_total",
            &[("status", "unknown")]
        ),
        1.0
    );
    drop(replica);
}
