//! The KMS API over HTTPS against a running service whose KMS keys live in a SoftHSM2
//! token of their own: round trips, the deny-by-default policy with rules and grants,
//! CA keys out of reach, and bad inputs that change nothing but the audit trail.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use carimbo_kms::{Caller, KeyName, Purpose};
use serde_json::{Value, json};

use crate::server::{TestCa, p256, s, start_ca, write_issued};

fn token(ca: &TestCa, name: &str) -> String {
    std::fs::read_to_string(ca.dir.join(format!("{name}.token")))
        .unwrap()
        .trim()
        .to_owned()
}

fn call(ca: &TestCa, path: &str, bearer: &str, body: &Value) -> (u16, Value) {
    ca.post(
        path,
        Some(bearer),
        "application/json",
        serde_json::to_vec(body).unwrap(),
    )
}

/// A unique key name under `use/test/`.
fn key(use_segment: &str, stem: &str) -> String {
    format!("{use_segment}/test/{stem}-{}", carimbo_tests::random_hex(4))
}

fn create_key(ca: &TestCa, name: &str, purpose: &str) {
    let (status, reply) = call(
        ca,
        "/v1/kms/keys",
        &token(ca, "kms-admin"),
        &json!({ "name": name, "purpose": purpose }),
    );
    assert_eq!(status, 201, "{reply}");
}

fn audit_events(ca: &TestCa) -> Vec<Value> {
    ca.runtime
        .block_on(
            ca.state
                .store
                .audit_events(&ca.state.audit_chain, 0, 1_000_000),
        )
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

fn unb64(value: &Value) -> Vec<u8> {
    BASE64.decode(value.as_str().unwrap()).unwrap()
}

#[test]
fn envelopes_and_data_keys_round_trip_and_rewrap_to_the_new_version() {
    let Some(ca) = start_ca() else { return };
    let name = key("envelope-data", "payments");
    create_key(&ca, &name, "envelope");
    let payments = token(&ca, "kms-payments");
    let context = json!({ "tenant": "acme", "record": "42" });
    let plaintext: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();

    let (status, sealed) = call(
        &ca,
        "/v1/kms/encrypt",
        &payments,
        &json!({ "key": name, "plaintext": b64(&plaintext), "context": context }),
    );
    assert_eq!(status, 200, "{sealed}");
    assert_eq!(sealed["key_version"], 1);
    let (status, opened) = call(
        &ca,
        "/v1/kms/decrypt",
        &payments,
        &json!({ "ciphertext": sealed["ciphertext"], "context": context }),
    );
    assert_eq!(status, 200, "{opened}");
    assert_eq!(unb64(&opened["plaintext"]), plaintext);

    // A data key: plaintext for local use, wrapped for later.
    let (status, datakey) = call(
        &ca,
        "/v1/kms/datakey",
        &payments,
        &json!({ "key": name, "context": context }),
    );
    assert_eq!(status, 200, "{datakey}");
    assert_eq!(unb64(&datakey["plaintext_key"]).len(), 32);
    let (status, unwrapped) = call(
        &ca,
        "/v1/kms/decrypt",
        &payments,
        &json!({ "wrapped_key": datakey["wrapped_key"], "context": context }),
    );
    assert_eq!(status, 200, "{unwrapped}");
    assert_eq!(unwrapped["plaintext_key"], datakey["plaintext_key"]);
    let (status, wrapped_only) = call(
        &ca,
        "/v1/kms/datakey",
        &payments,
        &json!({ "key": name, "context": context, "include_plaintext": false }),
    );
    assert_eq!(status, 200);
    assert!(wrapped_only.get("plaintext_key").is_none());

    // Rotation by the KMS admin; rewrap moves the envelope and the data key to v2,
    // keeping their context; both still open to the same bytes.
    let (status, rotated) = call(
        &ca,
        "/v1/kms/keys/rotate",
        &token(&ca, "kms-admin"),
        &json!({ "name": name }),
    );
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["primary_version"], 2);
    let (status, rewrapped) = call(
        &ca,
        "/v1/kms/rewrap",
        &payments,
        &json!({ "ciphertext": sealed["ciphertext"], "context": context }),
    );
    assert_eq!(status, 200, "{rewrapped}");
    assert_eq!(
        (
            rewrapped["previous_version"].as_u64(),
            rewrapped["key_version"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let (status, opened) = call(
        &ca,
        "/v1/kms/decrypt",
        &payments,
        &json!({ "ciphertext": rewrapped["ciphertext"], "context": context }),
    );
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["key_version"], 2);
    assert_eq!(unb64(&opened["plaintext"]), plaintext);
    let (status, rewrapped_key) = call(
        &ca,
        "/v1/kms/rewrap",
        &payments,
        &json!({ "wrapped_key": datakey["wrapped_key"], "context": context }),
    );
    assert_eq!(status, 200, "{rewrapped_key}");
    let (_, unwrapped) = call(
        &ca,
        "/v1/kms/decrypt",
        &payments,
        &json!({ "wrapped_key": rewrapped_key["wrapped_key"], "context": context }),
    );
    assert_eq!(unwrapped["plaintext_key"], datakey["plaintext_key"]);

    // Batch: per-item results, in order.
    let (status, batch) = call(
        &ca,
        "/v1/kms/batch/encrypt",
        &payments,
        &json!({ "items": [
            { "key": name, "plaintext": b64(b"one"), "context": context },
            { "key": name, "plaintext": "%%%", "context": context },
            { "key": name, "plaintext": b64(b"three"), "context": { "tenant": "other" } },
        ]}),
    );
    assert_eq!(status, 200, "{batch}");
    let results = batch["results"].as_array().unwrap();
    assert!(results[0]["ok"]["ciphertext"].is_string());
    assert_eq!(results[1]["error"]["code"], "bad_base64");
    assert_eq!(results[2]["error"]["code"], "kms_denied");
}

#[test]
fn the_policy_denies_by_default_and_allows_by_rule_or_grant_inside_its_window() {
    let Some(ca) = start_ca() else { return };
    let sign_key = key("model-sign", "ml");
    create_key(&ca, &sign_key, "sign");
    let envelope_key = key("envelope-data", "payments");
    create_key(&ca, &envelope_key, "envelope");
    let ci = token(&ca, "kms-ci");
    let admin = token(&ca, "kms-admin");
    let sign = |bearer: &str| {
        call(
            &ca,
            "/v1/kms/sign",
            bearer,
            &json!({ "key": sign_key, "message": b64(b"model digest") }),
        )
    };

    // No rule for ci: denied.
    let (status, reply) = sign(&ci);
    assert_eq!((status, reply["code"].as_str()), (403, Some("kms_denied")));

    // A grant for a few seconds: allowed inside, refused one second after not_after.
    let not_after = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap()
        + time::Duration::seconds(3);
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let (status, grant) = call(
        &ca,
        "/v1/kms/grants",
        &admin,
        &json!({ "identity": "client:ci", "keys": ["model-sign/test/*"],
                 "operations": ["sign"], "not_after": rfc3339(not_after) }),
    );
    assert_eq!(status, 201, "{grant}");
    let (status, signed) = sign(&ci);
    assert_eq!(status, 200, "{signed}");
    // The signature verifies with openssl against the key's public key.
    let record = ca
        .runtime
        .block_on(
            ca.state
                .kms
                .as_ref()
                .unwrap()
                .keyring()
                .public_key(&KeyName::new(&sign_key).unwrap(), None),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pub.pem"),
        carimbo_tests::public_key_pem(&record.1),
    )
    .unwrap();
    std::fs::write(dir.path().join("msg"), b"model digest").unwrap();
    std::fs::write(dir.path().join("sig"), unb64(&signed["signature"])).unwrap();
    let (ok, text) = carimbo_tests::openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        dir.path().join("pub.pem").to_str().unwrap(),
        "-signature",
        dir.path().join("sig").to_str().unwrap(),
        dir.path().join("msg").to_str().unwrap(),
    ]);
    assert!(ok && text.contains("Verified OK"), "{text}");
    // Verify is not in the grant.
    let (status, _) = call(
        &ca,
        "/v1/kms/verify",
        &ci,
        &json!({ "key": sign_key, "message": b64(b"model digest"), "signature": signed["signature"] }),
    );
    assert_eq!(status, 403);
    while time::OffsetDateTime::now_utc() < not_after + time::Duration::seconds(1) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, reply) = sign(&ci);
    assert_eq!((status, reply["code"].as_str()), (403, Some("kms_denied")));

    // A grant revoked is refused at once.
    let (_, grant) = call(
        &ca,
        "/v1/kms/grants",
        &admin,
        &json!({ "identity": "client:ci", "keys": [sign_key], "operations": ["sign"],
                 "not_after": rfc3339(not_after + time::Duration::hours(1)) }),
    );
    assert_eq!(sign(&ci).0, 200);
    let (status, _) = call(
        &ca,
        &format!("/v1/kms/grants/{}/revoke", grant["id"].as_str().unwrap()),
        &admin,
        &json!({}),
    );
    assert_eq!(status, 200);
    assert_eq!(sign(&ci).0, 403);

    // A rule allows only its purposes and context: payments may not sign, nor encrypt
    // for another tenant; wrong purpose for an allow-everything client is refused by
    // the key itself.
    let payments = token(&ca, "kms-payments");
    assert_eq!(sign(&payments).0, 403);
    let (status, _) = call(
        &ca,
        "/v1/kms/encrypt",
        &payments,
        &json!({ "key": envelope_key, "plaintext": b64(b"x"), "context": { "tenant": "evil" } }),
    );
    assert_eq!(status, 403);
    let (status, reply) = call(
        &ca,
        "/v1/kms/encrypt",
        &token(&ca, "kms-everything"),
        &json!({ "key": sign_key, "plaintext": b64(b"x") }),
    );
    assert_eq!(
        (status, reply["code"].as_str()),
        (400, Some("wrong_purpose")),
        "{reply}"
    );

    // A workload with a certificate from the CA is identified by its SPIFFE ID.
    let request = p256(&["subjectAltName=URI:spiffe://lab.example.com/ns/ml/sa/trainer"]);
    let issue_token = ca.token(
        "lab",
        "workload",
        &["uri:spiffe://lab.example.com/ns/ml/sa/trainer"],
        "1h",
        "5m",
    );
    let (status, issued) = ca.post(
        "/v1/certificates",
        Some(&issue_token),
        "application/json",
        serde_json::to_vec(&json!({ "csr": request.csr, "profile": "workload" })).unwrap(),
    );
    assert_eq!(status, 201, "{issued}");
    let (cert, chain) = write_issued(request.dir.path(), &issued);
    let mut pem = std::fs::read(&cert).unwrap();
    pem.extend(std::fs::read(&chain).unwrap());
    pem.extend(std::fs::read(request.dir.path().join("key.pem")).unwrap());
    let mtls = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(&std::fs::read(&ca.bundle).unwrap()).unwrap(),
        ])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let (status, reply) = ca.runtime.block_on(async {
        let response = mtls
            .post(format!("{}/v1/kms/sign", ca.url))
            .json(&json!({ "key": sign_key, "message": b64(b"weights") }))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    });
    assert_eq!(status, 200, "{reply}");

    // Every decision is in the audit trail with what decided it.
    let decisions: Vec<(String, String)> = audit_events(&ca)
        .into_iter()
        .filter(|e| e["type"] == "kms.operation")
        .map(|e| {
            (
                e["decided_by"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("default-deny", "kms_denied"),
        ("rule:1", "ok"),
        ("rule:2", "wrong_purpose"),
    ] {
        assert!(
            decisions
                .iter()
                .any(|(by, outcome)| by == expected.0 && outcome == expected.1),
            "{expected:?} not in {decisions:?}"
        );
    }
    assert!(
        decisions
            .iter()
            .any(|(by, outcome)| by.starts_with("grant:") && outcome == "ok"),
        "{decisions:?}"
    );
    let _ = Purpose::Sign;
}

#[test]
fn ca_keys_are_out_of_reach_even_with_an_allow_everything_policy() {
    let Some(ca) = start_ca() else { return };
    let everything = token(&ca, "kms-everything");
    let admin = token(&ca, "kms-admin");
    // A CA key cannot be made through the API ...
    let (status, reply) = call(
        &ca,
        "/v1/kms/keys",
        &admin,
        &json!({ "name": "pki-ca/test/int-9", "purpose": "pki-ca" }),
    );
    assert_eq!(
        (status, reply["code"].as_str()),
        (403, Some("ca_key_not_addressable"))
    );
    // ... and one that exists in the keyring (made by the PKI code) is not usable.
    let name = format!("pki-ca/test/int-{}", carimbo_tests::random_hex(4));
    let kms = ca.state.kms.as_ref().unwrap();
    ca.runtime
        .block_on(kms.keyring().create_key(
            &Caller::new("ceremony"),
            &KeyName::new(&name).unwrap(),
            Purpose::PkiCa,
            None,
            "pkcs11",
        ))
        .unwrap();
    for (operation, body) in [
        ("sign", json!({ "key": name, "message": b64(b"tbs") })),
        (
            "verify",
            json!({ "key": name, "message": b64(b"tbs"), "signature": b64(b"x") }),
        ),
        ("encrypt", json!({ "key": name, "plaintext": b64(b"x") })),
        ("datakey", json!({ "key": name })),
        ("hmac", json!({ "key": name, "message": b64(b"x") })),
    ] {
        let (status, reply) = call(&ca, &format!("/v1/kms/{operation}"), &everything, &body);
        assert_eq!(
            (status, reply["code"].as_str()),
            (403, Some("ca_key_not_addressable")),
            "{operation}: {reply}"
        );
    }
    // A grant naming CA keys is refused; a grant matching them by pattern reaches
    // nothing.
    let (status, _) = call(
        &ca,
        "/v1/kms/grants",
        &admin,
        &json!({ "identity": "**", "keys": ["pki-ca/test/*"], "operations": ["sign"],
                 "not_after": "2099-01-01T00:00:00Z" }),
    );
    assert_eq!(status, 403);
    let (status, _) = call(
        &ca,
        "/v1/kms/grants",
        &admin,
        &json!({ "identity": "**", "keys": ["**"], "operations": ["sign"],
                 "not_after": "2099-01-01T00:00:00Z" }),
    );
    assert_eq!(status, 201);
    let (status, _) = call(
        &ca,
        "/v1/kms/sign",
        &token(&ca, "kms-ci"),
        &json!({ "key": name, "message": b64(b"tbs") }),
    );
    assert_eq!(status, 403);
    // Nor can an admin rotate, disable or describe it through the API.
    for action in ["rotate", "describe"] {
        let (status, _) = call(
            &ca,
            &format!("/v1/kms/keys/{action}"),
            &admin,
            &json!({ "name": name }),
        );
        assert_eq!(status, 403, "{action}");
    }
}

#[test]
fn bad_inputs_get_a_specific_4xx_and_change_nothing_but_the_audit_trail() {
    let Some(ca) = start_ca() else { return };
    let name = key("envelope-data", "payments");
    create_key(&ca, &name, "envelope");
    let hmac_key = key("hmac", "tags");
    create_key(&ca, &hmac_key, "hmac");
    let payments = token(&ca, "kms-payments");
    let everything = token(&ca, "kms-everything");
    let admin = token(&ca, "kms-admin");
    let context = json!({ "tenant": "acme" });
    let (_, sealed) = call(
        &ca,
        "/v1/kms/encrypt",
        &payments,
        &json!({ "key": name, "plaintext": b64(b"secret"), "context": context }),
    );
    let ciphertext = unb64(&sealed["ciphertext"]);
    let (_, datakey) = call(
        &ca,
        "/v1/kms/datakey",
        &payments,
        &json!({ "key": name, "context": context }),
    );
    // A retired version: rotate, then disable version 1.
    call(&ca, "/v1/kms/keys/rotate", &admin, &json!({ "name": name }));
    let (status, reply) = call(
        &ca,
        "/v1/kms/keys/disable",
        &admin,
        &json!({ "name": name, "version": 1 }),
    );
    assert_eq!(status, 200, "{reply}");
    let (_, fresh) = call(
        &ca,
        "/v1/kms/encrypt",
        &payments,
        &json!({ "key": name, "plaintext": b64(b"secret"), "context": context }),
    );
    let fresh_bytes = unb64(&fresh["ciphertext"]);
    let mut tampered = fresh_bytes.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let keyring = ca.state.kms.as_ref().unwrap().keyring();
    let described = |ca: &TestCa| {
        let record = ca
            .runtime
            .block_on(keyring.describe(&KeyName::new(&name).unwrap()))
            .unwrap();
        (
            record.primary_version,
            record.versions.len(),
            record.revision,
        )
    };
    let before = described(&ca);
    let oversized: Vec<Value> = (0..11)
        .map(|_| json!({ "key": name, "plaintext": b64(b"x"), "context": context }))
        .collect();

    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Value, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "wrong context",
            "/v1/kms/decrypt",
            Some(&payments),
            json!({ "ciphertext": b64(&fresh_bytes), "context": { "tenant": "acme", "x": "1" } }),
            400,
            "context_mismatch",
        ),
        (
            "tampered ciphertext",
            "/v1/kms/decrypt",
            Some(&payments),
            json!({ "ciphertext": b64(&tampered), "context": context }),
            400,
            "unauthentic",
        ),
        (
            "unknown key",
            "/v1/kms/encrypt",
            Some(&everything),
            json!({ "key": "envelope-data/test/nothing-here", "plaintext": b64(b"x") }),
            404,
            "key_not_found",
        ),
        (
            "retired version",
            "/v1/kms/decrypt",
            Some(&payments),
            json!({ "ciphertext": b64(&ciphertext), "context": context }),
            409,
            "version_unavailable",
        ),
        (
            "oversized batch",
            "/v1/kms/batch/encrypt",
            Some(&payments),
            json!({ "items": oversized }),
            413,
            "batch_too_large",
        ),
        (
            "bad base64",
            "/v1/kms/encrypt",
            Some(&payments),
            json!({ "key": name, "plaintext": "not*base64", "context": context }),
            400,
            "bad_base64",
        ),
        (
            "invalid key name",
            "/v1/kms/encrypt",
            Some(&everything),
            json!({ "key": "Payments", "plaintext": b64(b"x") }),
            400,
            "invalid_key_name",
        ),
        (
            "unknown field",
            "/v1/kms/encrypt",
            Some(&payments),
            json!({ "key": name, "plaintext": b64(b"x"), "context": context, "mode": "ecb" }),
            400,
            "malformed_request",
        ),
        (
            "both ciphertext and wrapped key",
            "/v1/kms/decrypt",
            Some(&payments),
            json!({ "ciphertext": b64(&fresh_bytes), "wrapped_key": datakey["wrapped_key"], "context": context }),
            400,
            "malformed_request",
        ),
        (
            "a wrapped key given as ciphertext",
            "/v1/kms/decrypt",
            Some(&payments),
            json!({ "ciphertext": datakey["wrapped_key"], "context": context }),
            400,
            "malformed_ciphertext",
        ),
        (
            "not an envelope",
            "/v1/kms/decrypt",
            Some(&payments),
            json!({ "ciphertext": b64(b"definitely not an envelope"), "context": context }),
            400,
            "malformed_ciphertext",
        ),
        (
            "key mismatch",
            "/v1/kms/decrypt",
            Some(&payments),
            json!({ "ciphertext": b64(&fresh_bytes), "key": "envelope-data/test/payments-other", "context": context }),
            400,
            "key_mismatch",
        ),
        (
            "no credential",
            "/v1/kms/encrypt",
            None,
            json!({ "key": name, "plaintext": b64(b"x"), "context": context }),
            401,
            "unauthorized",
        ),
        (
            "unknown client token",
            "/v1/kms/encrypt",
            Some("kms-guess"),
            json!({ "key": name, "plaintext": b64(b"x"), "context": context }),
            401,
            "unauthorized",
        ),
        (
            "verify-hmac without a version",
            "/v1/kms/verify-hmac",
            Some(&everything),
            json!({ "key": hmac_key, "message": b64(b"x"), "signature": b64(b"t") }),
            400,
            "malformed_request",
        ),
        (
            "unknown purpose",
            "/v1/kms/keys",
            Some(&admin),
            json!({ "name": "envelope-data/test/new", "purpose": "everything" }),
            400,
            "unknown_purpose",
        ),
        (
            "key exists",
            "/v1/kms/keys",
            Some(&admin),
            json!({ "name": name, "purpose": "envelope" }),
            409,
            "key_exists",
        ),
        (
            "client token on the admin API",
            "/v1/kms/keys/rotate",
            Some(&payments),
            json!({ "name": name }),
            401,
            "unauthorized",
        ),
    ];
    for (what, path, bearer, body, status, code) in cases {
        let events = audit_events(&ca).len();
        let (got, reply) = match bearer {
            Some(bearer) => call(&ca, path, bearer, &body),
            None => ca.post(
                path,
                None,
                "application/json",
                serde_json::to_vec(&body).unwrap(),
            ),
        };
        assert_eq!(
            (got, reply["code"].as_str()),
            (status, Some(code)),
            "{what}: {reply}"
        );
        assert_eq!(
            audit_events(&ca).len(),
            events + 1,
            "{what}: one audit event"
        );
        assert_eq!(described(&ca), before, "{what}: the key changed");
    }
    // Wrong content type, too.
    let events = audit_events(&ca).len();
    let (status, reply) = ca.post(
        "/v1/kms/encrypt",
        Some(&payments),
        "text/plain",
        b"{}".to_vec(),
    );
    assert_eq!(
        (status, reply["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    assert_eq!(audit_events(&ca).len(), events + 1);
}

#[test]
fn a_blob_signed_through_the_kms_verifies_offline_with_openssl_and_through_the_api() {
    let Some(ca) = start_ca() else { return };
    let name = key("model-sign", "weights");
    create_key(&ca, &name, "sign");
    let dir = tempfile::tempdir().unwrap();
    let blob = dir.path().join("model.bin");
    let content: Vec<u8> = (0..(1 << 20) as u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&blob, &content).unwrap();
    let token_file = ca.dir.join("kms-everything.token");
    let run = |args: &[&str]| {
        let output = std::process::Command::new(carimbo_tests::carimbo_binary())
            .args(args)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, _, stderr) = run(&[
        "kms",
        "sign-blob",
        "--ca",
        &ca.url,
        "--ca-bundle",
        s(&ca.bundle),
        "--token-file",
        s(&token_file),
        "--key",
        &name,
        "--in",
        s(&blob),
    ]);
    assert!(ok, "{stderr}");
    let signature: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("model.bin.sig")).unwrap())
            .unwrap();
    assert_eq!(signature["key"], name.as_str());
    assert_eq!(signature["key_version"], 1);
    let (ok, pem, stderr) = run(&[
        "kms",
        "fetch-public-key",
        "--ca",
        &ca.url,
        "--ca-bundle",
        s(&ca.bundle),
        "--token-file",
        s(&token_file),
        "--key",
        &name,
    ]);
    assert!(ok, "{stderr}");
    let public_key = dir.path().join("pub.pem");
    std::fs::write(&public_key, pem).unwrap();

    // Offline, and independently with openssl: the signature is over the digest bytes.
    let (ok, stdout, stderr) = run(&[
        "kms",
        "verify-blob",
        "--in",
        s(&blob),
        "--public-key",
        s(&public_key),
    ]);
    assert!(ok && stdout.contains("signed by"), "{stderr}");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &content);
    std::fs::write(dir.path().join("digest"), digest.as_ref()).unwrap();
    std::fs::write(dir.path().join("sig.der"), unb64(&signature["signature"])).unwrap();
    let (ok, text) = carimbo_tests::openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        s(&public_key),
        "-signature",
        s(&dir.path().join("sig.der")),
        s(&dir.path().join("digest")),
    ]);
    assert!(ok && text.contains("Verified OK"), "{text}");
    // Through the API.
    let (ok, _, stderr) = run(&[
        "kms",
        "verify-blob",
        "--in",
        s(&blob),
        "--ca",
        &ca.url,
        "--ca-bundle",
        s(&ca.bundle),
        "--token-file",
        s(&token_file),
    ]);
    assert!(ok, "{stderr}");

    // A changed file, or a signature of another file, fails with a clear message.
    let mut changed = content.clone();
    changed[12345] ^= 1;
    std::fs::write(&blob, &changed).unwrap();
    let (ok, _, stderr) = run(&[
        "kms",
        "verify-blob",
        "--in",
        s(&blob),
        "--public-key",
        s(&public_key),
    ]);
    assert!(!ok && stderr.contains("the file changed"), "{stderr}");
    let mut forged = signature.clone();
    forged["digest"] = json!(format!(
        "sha256:{}",
        hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &changed
        ))
    ));
    std::fs::write(
        dir.path().join("model.bin.sig"),
        serde_json::to_string(&forged).unwrap(),
    )
    .unwrap();
    for extra in [
        vec!["--public-key", s(&public_key)],
        vec![
            "--ca",
            &ca.url,
            "--ca-bundle",
            s(&ca.bundle),
            "--token-file",
            s(&token_file),
        ],
    ] {
        let mut args = vec!["kms", "verify-blob", "--in", s(&blob)];
        args.extend(extra);
        let (ok, _, stderr) = run(&args);
        assert!(!ok && stderr.contains("does not verify"), "{stderr}");
    }
}

#[test]
fn keys_under_a_rotation_schedule_get_a_new_primary_and_old_versions_keep_working() {
    let Some(ca) = start_ca() else { return };
    let name = key("hmac", "rot");
    create_key(&ca, &name, "hmac");
    let everything = token(&ca, "kms-everything");
    let (status, first) = call(
        &ca,
        "/v1/kms/hmac",
        &everything,
        &json!({ "key": name, "message": b64(b"payload") }),
    );
    assert_eq!(
        (status, first["key_version"].as_u64()),
        (200, Some(1)),
        "{first}"
    );
    // The schedule (every 2s for hmac/test/rot-*) rotates it without anyone asking.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, reply) = call(
            &ca,
            "/v1/kms/keys/describe",
            &token(&ca, "kms-admin"),
            &json!({ "name": name }),
        );
        if reply["primary_version"].as_u64() >= Some(2) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never rotated: {reply}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (_, second) = call(
        &ca,
        "/v1/kms/hmac",
        &everything,
        &json!({ "key": name, "message": b64(b"payload") }),
    );
    assert!(second["key_version"].as_u64() >= Some(2), "{second}");
    // A tag made with version 1 still verifies with version 1.
    let (status, reply) = call(
        &ca,
        "/v1/kms/verify-hmac",
        &everything,
        &json!({ "key": name, "message": b64(b"payload"), "signature": first["tag"], "version": 1 }),
    );
    assert_eq!(
        (status, reply["valid"].as_bool()),
        (200, Some(true)),
        "{reply}"
    );
    let scheduled = audit_events(&ca).into_iter().any(|e| {
        e["type"] == "kms.key.rotate" && e["admin"] == "scheduler" && e["key"] == name.as_str()
    });
    assert!(scheduled, "no audit event for the scheduled rotation");
}
