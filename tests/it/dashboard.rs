//! The read-only admin dashboard (`/admin`) of `carimbo serve`: login by form with a
//! session cookie (never the token), bearer access for tools, security headers, audit
//! of logins, the page's content; then rendered by a real headless browser (Debian's
//! `chromium`): the live login page, and the authenticated page saved to a file (the
//! browser cannot log in without scripting), checked in its DOM and in a screenshot.

use std::path::Path;
use std::process::Command;

use crate::cli_dev::{dev_data, free_port};
use crate::replicas::{issue_through, serve_config, start_replica_with};
use crate::server::s;

const CHROMIUM: &str = "/usr/bin/chromium";
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'";
const AUDITOR_TOKEN: &str = "auditor-token-dashboard-0123456789";

/// Decodes a PNG (8-bit RGB or RGBA, not interlaced) with the standard library only and
/// prints its size and number of distinct colours.
const PNG_COLOURS: &str = r#"
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat = 8, b''
while pos < len(data):
    length, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    if kind == b'IHDR':
        width, height, depth, colour, _, _, interlace = struct.unpack('>IIBBBBB', body)
    elif kind == b'IDAT':
        idat += body
    pos += 12 + length
assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
bpp = 3 if colour == 2 else 4
raw = zlib.decompress(idat)
stride = width * bpp
previous = bytearray(stride)
colours = set()
for y in range(height):
    start = y * (stride + 1)
    kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
    for i in range(stride):
        left = line[i - bpp] if i >= bpp else 0
        up = previous[i]
        if kind == 1:
            line[i] = (line[i] + left) & 255
        elif kind == 2:
            line[i] = (line[i] + up) & 255
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 255
        elif kind == 4:
            corner = previous[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
    if y % 4 == 0:
        colours.update(bytes(line[i:i + 3]) for i in range(0, stride, bpp * 4))
    previous = line
print(width, height, len(colours))
"#;

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn assert_secure_headers(response: &reqwest::Response) {
    assert_eq!(header(response, "content-security-policy"), CSP);
    assert_eq!(header(response, "x-content-type-options"), "nosniff");
    assert_eq!(header(response, "cache-control"), "no-store");
}

/// The audit events recorded in `data`'s SQLite database.
fn audit_events(data: &Path) -> String {
    let output = Command::new(std::env::var("CARIMBO_PYTHON").unwrap_or("python3".into()))
        .args([
            "-c",
            "import sqlite3, sys\n\
             for (e,) in sqlite3.connect(sys.argv[1]).execute('SELECT event FROM audit_events ORDER BY sequence'):\n    print(e)",
            s(&data.join("carimbo.db")),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn dashboard_login_cookie_content_audit_and_browser_rendering() {
    let dir = tempfile::tempdir().unwrap();
    let data = dev_data(dir.path());
    let (api, publication) = (free_port(), free_port());
    let config = serve_config(&data, "dashboard", api, publication, false);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[[admins]]\nname = \"ana\"\nrole = \"auditor\"\ntoken-file = \"auditor.token\"\n",
    );
    std::fs::write(&config, text).unwrap();
    carimbo_tests::write_private(&data.join("auditor.token"), AUDITOR_TOKEN.as_bytes());
    let log = dir.path().join("serve.log");
    let mut replica = start_replica_with(&config, api, publication, &[], Some(&log));
    issue_through(
        &replica,
        &data,
        "dns:web-1.dashboard.localhost",
        &dir.path().join("cert"),
    );

    let root = reqwest::Certificate::from_pem(&std::fs::read(data.join("ca-bundle.pem")).unwrap())
        .unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([root])
        .redirect(reqwest::redirect::Policy::none())
        // A fresh connection a request: the service closes idle ones.
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("{}/admin", replica.api);
    let admin_token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let login = |token: &str| {
        runtime.block_on(async {
            client
                .post(format!("{url}/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={token}"))
                .send()
                .await
                .unwrap()
        })
    };
    let page = |cookie: Option<&str>, bearer: Option<&str>| {
        runtime.block_on(async {
            let mut request = client.get(&url);
            if let Some(cookie) = cookie {
                request = request.header("cookie", cookie);
            }
            if let Some(bearer) = bearer {
                request = request.bearer_auth(bearer);
            }
            let response = request.send().await.unwrap();
            assert_secure_headers(&response);
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        })
    };

    // Nobody logged in: the login form, no data.
    let (status, body) = page(None, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<form id=\"login\""), "{body}");
    assert!(!body.contains("int-server"), "{body}");
    assert!(!body.contains("web-1.dashboard.localhost"), "{body}");

    // A wrong token: 401 with the form again, no cookie.
    let response = login("not-a-token");
    assert_eq!(response.status().as_u16(), 401);
    assert_secure_headers(&response);
    assert!(response.headers().get("set-cookie").is_none());
    let body = runtime.block_on(response.text()).unwrap();
    assert!(body.contains("id=\"login-error\""), "{body}");

    // The auditor's token: a session cookie with the right attributes, never the token.
    let response = login(AUDITOR_TOKEN);
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(header(&response, "location"), "/admin");
    let set_cookie = header(&response, "set-cookie").to_owned();
    let attributes: Vec<&str> = set_cookie.split(';').map(str::trim).collect();
    let session = attributes[0].strip_prefix("carimbo_admin=").unwrap();
    assert_eq!(session.len(), 64, "{set_cookie}");
    assert!(
        session.bytes().all(|b| b.is_ascii_hexdigit()),
        "{set_cookie}"
    );
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/admin"] {
        assert!(attributes.contains(&attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains(AUDITOR_TOKEN));
    let cookie = format!("carimbo_admin={session}");

    // The dashboard itself.
    let (status, dashboard) = page(Some(&cookie), None);
    assert_eq!(status, 200, "{dashboard}");
    assert!(
        dashboard.contains("<strong id=\"viewer\">ana</strong>"),
        "{dashboard}"
    );
    for section in [
        "issuers",
        "issuance",
        "expiring",
        "revocations",
        "crls",
        "ocsp",
        "kms",
    ] {
        assert!(
            dashboard.contains(&format!("<section id=\"{section}\">")),
            "{section}: {dashboard}"
        );
    }
    assert!(
        dashboard.contains("<td class=\"issuer\">int-server</td>"),
        "{dashboard}"
    );
    assert!(
        dashboard.contains("<svg id=\"issuance-chart\""),
        "{dashboard}"
    );
    // The certificate issued here and the service's own TLS certificate.
    let issued: u64 = dashboard
        .split("<strong id=\"issued-total\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(issued >= 1, "{dashboard}");
    assert!(dashboard.contains("class=\"bar\""), "{dashboard}");
    // Short-lived: the certificate just issued expires within the week.
    let expiring = dashboard
        .split("<section id=\"expiring\">")
        .nth(1)
        .and_then(|rest| rest.split("</section>").next())
        .unwrap();
    assert!(
        expiring.contains("dns:web-1.dashboard.localhost"),
        "{expiring}"
    );

    // Tools send the admin token as a bearer credential; a wrong one is refused.
    let (status, body) = page(None, Some(admin_token.trim()));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("int-server"), "{body}");
    let (status, body) = page(None, Some("not-a-token"));
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("int-server"), "{body}");
    // A made-up session is nobody.
    let (status, body) = page(Some(&format!("carimbo_admin={}", "ab".repeat(32))), None);
    assert_eq!(status, 200);
    assert!(body.contains("<form id=\"login\""), "{body}");

    // (2) A real browser: the live login page, then the dashboard saved to a file.
    if Path::new(CHROMIUM).exists() {
        browser(dir.path(), &url, &dashboard);
    } else {
        carimbo_tests::skip("chromium", "/usr/bin/chromium is missing");
    }

    // Logout ends the session and clears the cookie.
    let response = runtime.block_on(async {
        client
            .post(format!("{url}/logout"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
    });
    assert_eq!(response.status().as_u16(), 303);
    assert!(header(&response, "set-cookie").contains("Max-Age=0"));
    let (status, body) = page(Some(&cookie), None);
    assert_eq!(status, 200);
    assert!(body.contains("<form id=\"login\""), "{body}");
    replica.terminate();

    // Logins are audited, successful or not; the token never is.
    let events = audit_events(&data);
    assert!(
        events.contains("\"type\":\"admin.dashboard.login\"")
            && events.contains("\"admin\":\"ana\""),
        "{events}"
    );
    assert!(
        events.contains("\"action\":\"dashboard.login\""),
        "{events}"
    );
    assert!(
        events.contains("\"type\":\"admin.dashboard.logout\""),
        "{events}"
    );
    assert!(!events.contains(AUDITOR_TOKEN), "{events}");
    assert!(!events.contains("not-a-token"), "{events}");
    let serve_log = std::fs::read_to_string(&log).unwrap();
    assert!(!serve_log.contains(AUDITOR_TOKEN), "{serve_log}");
    assert!(!serve_log.contains(session), "{serve_log}");
}

/// Runs headless chromium with `args`; returns its standard output.
fn chromium(profile: &Path, args: &[&str]) -> String {
    let output = Command::new("timeout")
        .arg("120")
        .arg(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--ignore-certificate-errors",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn browser(dir: &Path, url: &str, dashboard: &str) {
    let profile = dir.join("chromium-profile");
    // The live login page renders its form.
    let dom = chromium(&profile, &["--dump-dom", url]);
    assert!(dom.contains("id=\"login\""), "{dom}");
    assert!(dom.contains("name=\"token\""), "{dom}");

    // The authenticated page, as the service sent it.
    let file = dir.join("dashboard.html");
    std::fs::write(&file, dashboard).unwrap();
    let file_url = format!("file://{}", file.display());
    let dom = chromium(&profile, &["--dump-dom", &file_url]);
    assert!(
        dom.contains("<td class=\"issuer\">int-server</td>"),
        "{dom}"
    );
    assert!(dom.contains("<svg id=\"issuance-chart\""), "{dom}");
    assert!(dom.contains("class=\"bar\""), "{dom}");

    let png = dir.join("dashboard.png");
    chromium(
        &profile,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,1600",
            "--hide-scrollbars",
            &file_url,
        ],
    );
    assert!(std::fs::metadata(&png).unwrap().len() > 1_000);
    let output = Command::new(std::env::var("CARIMBO_PYTHON").unwrap_or("python3".into()))
        .args(["-c", PNG_COLOURS, s(&png)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let numbers: Vec<u64> = stdout
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(numbers[..2], [1280, 1600], "{stdout}");
    // Text, tables and the chart's bars: many colours, not a blank page.
    assert!(numbers[2] > 10, "{stdout}");
}
