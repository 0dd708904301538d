//! Intermediate rollover, as docs/operations.md tells it: a new server intermediate from
//! the offline ceremony (`ca-ceremony key` + `intermediate`, signed by the root) becomes
//! the active issuer; the old one, `active = false`, issues nothing more but keeps its
//! CRL and OCSP for the certificates it issued; both are published during the overlap.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use carimbo_tests::ceremony_binary;

use crate::cli_dev::{dev_data, free_port};
use crate::replicas::{admin_revoke_one, crl, issue_through, serve_config, start_replica_with};
use crate::revocation::{openssl_ocsp, plain_http};
use crate::server::s;

fn issuer_cn(cert: &Path) -> (String, String) {
    let der = carimbo_pki::pem_decode(
        &std::fs::read_to_string(cert.join("cert.pem")).unwrap(),
        "CERTIFICATE",
    )
    .unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    let cn = parsed
        .issuer()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    (cn, hex::encode(parsed.raw_serial()))
}

fn ceremony(data: &Path, kind: &str, file: &str) {
    let output = Command::new(ceremony_binary())
        .args([kind, "--config"])
        .arg(data.join("ceremony").join(file))
        .arg("--credentials")
        .arg(data.join("ceremony/credentials.toml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ca-ceremony {kind} {file}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_new_intermediate_takes_over_while_the_old_one_keeps_revoking() {
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "rollover", api, publication, false);
    let root = data.join("ceremony/root.pem");

    // Before: certificates come from int-server.
    let mut replica = start_replica_with(&config, api, publication, &[], None);
    let old_cert = dir.path().join("old");
    issue_through(&replica, &data, "dns:old.rollover.localhost", &old_cert);
    let (old_issuer, old_serial) = issuer_cn(&old_cert);
    assert_eq!(old_issuer, "Carimbo Development int-server");
    replica.terminate();

    // Offline: a new key in the CA token and its intermediate, signed by the root.
    for (from, to) in [
        ("int-server-key.toml", "int-next-key.toml"),
        ("int-server.toml", "int-next.toml"),
    ] {
        let text = std::fs::read_to_string(data.join("ceremony").join(from))
            .unwrap()
            .replace("int-server", "int-next");
        std::fs::write(data.join("ceremony").join(to), text).unwrap();
    }
    ceremony(&data, "key", "int-next-key.toml");
    ceremony(&data, "intermediate", "int-next.toml");
    let (ok, text) = carimbo_tests::openssl(&[
        "verify",
        "-CAfile",
        s(&root),
        s(&data.join("ceremony/int-next.pem")),
    ]);
    assert!(ok, "{text}");

    // Online: the new issuer active, the old one not.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "name = \"int-server\"\n",
        "name = \"int-server\"\nactive = false\n",
    );
    assert!(text.contains("active = false"));
    std::fs::write(
        &config,
        format!(
            "{text}\n[[issuers]]\nname = \"int-next\"\nprofiles = [\"server\"]\n\
             certificate = \"ceremony/int-next.pem\"\nchain = [\"ceremony/root.pem\"]\n\
             key-reference = \"ceremony/int-next.key.toml\"\n"
        ),
    )
    .unwrap();
    let mut replica = start_replica_with(&config, api, publication, &[], None);

    // New certificates come from the new intermediate and verify to the same root.
    let new_cert = dir.path().join("new");
    issue_through(&replica, &data, "dns:new.rollover.localhost", &new_cert);
    let (new_issuer, _) = issuer_cn(&new_cert);
    assert_eq!(new_issuer, "Carimbo Development int-next");
    let (ok, text) = carimbo_tests::openssl(&[
        "verify",
        "-purpose",
        "sslserver",
        "-CAfile",
        s(&root),
        "-untrusted",
        s(&new_cert.join("chain.pem")),
        s(&new_cert.join("cert.pem")),
    ]);
    assert!(ok, "{text}");
    // Both intermediates are published.
    for name in ["int-server", "int-next"] {
        let (status, _) = plain_http("GET", &format!("{}/ca/{name}.cer", replica.publication));
        assert_eq!(status, 200, "{name}");
    }

    // The old intermediate still revokes what it issued: CRL and OCSP.
    admin_revoke_one(
        &replica,
        &data,
        "san=dns:old.rollover.localhost",
        "superseded",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(crl(&replica, &old_serial), Some((_, true))) {
        assert!(
            Instant::now() < deadline,
            "the old CRL never listed {old_serial}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let url = format!("{}/ocsp", replica.publication);
    let text = openssl_ocsp(
        &root,
        &data.join("ceremony/int-server.pem"),
        &["-cert", s(&old_cert.join("cert.pem"))],
        &url,
        &[],
    );
    assert!(
        text.contains(": revoked") && text.contains("Response verify OK"),
        "{text}"
    );
    let text = openssl_ocsp(
        &root,
        &data.join("ceremony/int-next.pem"),
        &["-cert", s(&new_cert.join("cert.pem"))],
        &url,
        &[],
    );
    assert!(
        text.contains(": good") && text.contains("Response verify OK"),
        "{text}"
    );
    replica.terminate();
}
