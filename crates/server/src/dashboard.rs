//! `GET /admin`: a read-only dashboard for operators (roles `admin` and `auditor`),
//! rendered on the server as one HTML page with inline CSS and an inline SVG chart — no
//! script, no external asset, so it works offline and under a strict
//! Content-Security-Policy.
//!
//! A browser logs in with its admin token through a form (`POST /admin/login`); the
//! service answers with a random session id in an `HttpOnly; Secure; SameSite=Strict`
//! cookie, mapped in this replica's memory to the admin's name for eight hours. The
//! token itself is never put in the cookie, a URL or a log. Tools may send
//! `Authorization: Bearer` instead.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carimbo_store::{CertificateFilter, CertificateRecord};
use serde_json::json;
use time::OffsetDateTime;

use crate::ApiError;
use crate::issuance::random_id;
use crate::routes::{SharedState, admin_by_token, admin_in};
use crate::state::{AppState, sha256};

/// The session cookie's name.
pub const COOKIE: &str = "carimbo_admin";
/// How long a session lasts after login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Most sessions kept at once; the oldest goes first beyond it.
const MAX_SESSIONS: usize = 1_000;
/// Roles that may read the dashboard.
const ROLES: &[&str] = &["admin", "auditor"];
/// Most certificates read for the issuance chart.
pub const CHART_MAX_RECORDS: usize = 10_000;
/// Hours shown by the issuance chart.
const CHART_HOURS: i64 = 24;
/// Rows of the expiring-certificates table.
const EXPIRING_ROWS: u32 = 50;
/// How far ahead "expiring" looks.
const EXPIRING_WITHIN: time::Duration = time::Duration::days(7);
/// Rows of the recent-revocations table.
const REVOCATION_ROWS: u64 = 20;

/// The Content-Security-Policy of every dashboard response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'";

#[derive(Debug)]
struct Session {
    admin: String,
    expires: Instant,
}

/// Dashboard sessions, by SHA-256 of the session id (so a lookup compares no secret).
#[derive(Debug, Default)]
pub struct Sessions {
    inner: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the lock leaves a map that is still consistent (each
        // operation is one insert or remove), so a poisoned lock is used as is.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a session for `admin`; returns its id (64 hex digits).
    pub fn open(&self, admin: &str) -> Result<String, ApiError> {
        let id = random_id(32)?;
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        while sessions.len() >= MAX_SESSIONS {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(key, _)| *key);
            match oldest {
                Some(key) => sessions.remove(&key),
                None => break,
            };
        }
        sessions.insert(
            sha256(id.as_bytes()),
            Session {
                admin: admin.to_owned(),
                expires: now + SESSION_LIFETIME,
            },
        );
        Ok(id)
    }

    /// The admin of the live session `id`, if any.
    pub fn admin_of(&self, id: &str) -> Option<String> {
        let key = sha256(id.as_bytes());
        let mut sessions = self.lock();
        match sessions.get(&key) {
            Some(session) if session.expires > Instant::now() => Some(session.admin.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends session `id`.
    pub fn close(&self, id: &str) {
        self.lock().remove(&sha256(id.as_bytes()));
    }

    /// Number of sessions held (live or not yet swept).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The dashboard's routes, merged into the HTTPS API.
pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/admin", get(page))
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
}

/// Escapes `text` for HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// The session id in the request's cookie, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// Who is asking: `Ok(None)` when nobody logged in, an error for a bad bearer token.
fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return admin_in(state, headers, ROLES).map(|name| Some(name.to_owned()));
    }
    let Some(id) = session_cookie(headers) else {
        return Ok(None);
    };
    // The admin must still be configured with a dashboard role.
    Ok(state.dashboard_sessions.admin_of(id).filter(|name| {
        state
            .admins
            .iter()
            .any(|a| &a.name == name && ROLES.contains(&a.role.as_str()))
    }))
}

/// Decodes one `application/x-www-form-urlencoded` value.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The field `name` of a form body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| form_decode(value))
}

/// An HTML response with the dashboard's security headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure_headers(headers);
    response
}

fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// A `303 See Other` to the dashboard, with `cookie` set if given.
fn to_dashboard(cookie: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static("/admin"));
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.insert(header::SET_COOKIE, value);
    }
    secure_headers(headers);
    response
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}\
header{background:#1d3557;color:#fff;padding:.8em 1.5em;display:flex;justify-content:space-between;align-items:center}\
header h1{font-size:1.2em;margin:0}header form{margin:0}\
main{padding:1em 1.5em;max-width:1200px}\
section{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:.5em 1em 1em;margin-bottom:1em}\
h2{font-size:1.05em;color:#1d3557}\
table{border-collapse:collapse;width:100%;font-size:.9em}\
th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #e6e9ed;vertical-align:top}\
th{background:#eef1f5}.ok{color:#1a7f37}.warn{color:#9a6700}.bad{color:#cf222e;font-weight:600}\
.muted{color:#57606a}.error{color:#cf222e}\
.login{max-width:26em;margin:4em auto;background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:1.5em}\
input[type=password]{width:100%;box-sizing:border-box;padding:.4em;margin:.5em 0 1em}\
button{padding:.4em 1em}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(title)
    )
}

fn login_page(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"login-error\">{}</p>", escape(e)))
        .unwrap_or_default();
    document(
        "Carimbo — sign in",
        &format!(
            "<div class=\"login\"><h1>Carimbo dashboard</h1>{error}\
             <form id=\"login\" method=\"post\" action=\"/admin/login\">\
             <label for=\"token\">Admin or auditor token</label>\
             <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"off\" required>\
             <button type=\"submit\">Sign in</button></form>\
             <p class=\"muted\">Read-only view of issuers, issuance, expiry, revocation, \
             CRL, OCSP and KMS state.</p></div>"
        ),
    )
}

/// `GET /admin`.
async fn page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    let name = match viewer(&state, &headers) {
        Ok(Some(name)) => name,
        Ok(None) => return html(StatusCode::OK, login_page(None)),
        Err(error) => {
            let status = error.code_and_status().1;
            return html(status, login_page(Some(&error.to_string())));
        }
    };
    let now = OffsetDateTime::now_utc();
    let body = render(&state, &name, now).await;
    if let Err(error) = state
        .audit(json!({"type": "admin.dashboard.view", "admin": name}))
        .await
    {
        let status = error.code_and_status().1;
        return html(
            status,
            document("Carimbo", "<p>audit trail unavailable</p>"),
        );
    }
    html(StatusCode::OK, document("Carimbo dashboard", &body))
}

/// `POST /admin/login` with the form field `token`.
async fn login(State(state): State<SharedState>, body: Result<Bytes, BytesRejection>) -> Response {
    let token = body
        .ok()
        .and_then(|body| form_field(&body, "token"))
        .unwrap_or_default();
    let checked = if token.trim().is_empty() {
        Err(ApiError::Unauthorized("a token is required".into()))
    } else {
        admin_by_token(&state, token.trim(), ROLES).map(str::to_owned)
    };
    let session = checked.and_then(|name| {
        let id = state.dashboard_sessions.open(&name)?;
        Ok((name, id))
    });
    match session {
        Ok((name, id)) => {
            if let Err(error) = state
                .audit(json!({"type": "admin.dashboard.login", "admin": name}))
                .await
            {
                state.dashboard_sessions.close(&id);
                let status = error.code_and_status().1;
                return html(status, login_page(Some("audit trail unavailable")));
            }
            to_dashboard(&format!(
                "{COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path=/admin; Max-Age={}",
                SESSION_LIFETIME.as_secs()
            ))
        }
        Err(error) => {
            let (code, status) = error.code_and_status();
            let _ = state
                .audit(json!({
                    "type": "admin.refused",
                    "action": "dashboard.login",
                    "code": code,
                    "reason": error.to_string(),
                }))
                .await;
            html(status, login_page(Some(&error.to_string())))
        }
    }
}

/// `POST /admin/logout`.
async fn logout(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        if let Some(name) = state.dashboard_sessions.admin_of(id) {
            let _ = state
                .audit(json!({"type": "admin.dashboard.logout", "admin": name}))
                .await;
        }
        state.dashboard_sessions.close(id);
    }
    to_dashboard(&format!(
        "{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/admin; Max-Age=0"
    ))
}

fn when(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// "in 3 d 4 h" / "2 h ago".
fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let delta = at - now;
    let seconds = delta.whole_seconds().abs();
    let text = if seconds >= 86_400 {
        format!("{} d {} h", seconds / 86_400, seconds % 86_400 / 3600)
    } else if seconds >= 3600 {
        format!("{} h {} min", seconds / 3600, seconds % 3600 / 60)
    } else {
        format!("{} min", seconds / 60)
    };
    if delta.is_negative() {
        format!("{text} ago")
    } else {
        format!("in {text}")
    }
}

fn unavailable(error: impl std::fmt::Display) -> String {
    format!(
        "<p class=\"error\">unavailable: {}</p>",
        escape(&error.to_string())
    )
}

async fn render(state: &AppState, name: &str, now: OffsetDateTime) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<header><h1>Carimbo dashboard</h1><div>signed in as <strong id=\"viewer\">{}</strong> \
         · {} <form method=\"post\" action=\"/admin/logout\" style=\"display:inline\">\
         <button type=\"submit\">Sign out</button></form></div></header><main>",
        escape(name),
        escape(&when(now)),
    );
    out.push_str(&issuers_section(state, now));
    out.push_str(&issuance_section(state, now).await);
    out.push_str(&expiring_section(state, now).await);
    out.push_str(&revocations_section(state).await);
    out.push_str(&crl_section(state, now).await);
    out.push_str(&ocsp_section(state, now));
    out.push_str(&kms_section(state).await);
    out.push_str("</main>");
    out
}

fn issuers_section(state: &AppState, now: OffsetDateTime) -> String {
    let mut out = String::from(
        "<section id=\"issuers\"><h2>Issuers</h2><table><tr><th>name</th><th>state</th>\
         <th>profiles</th><th>chain (subject, not after)</th></tr>",
    );
    for issuer in &state.issuers {
        let profiles: Vec<String> = issuer.profiles.iter().map(|p| p.to_string()).collect();
        let mut chain = String::new();
        for der in &issuer.chain {
            match x509_parser::parse_x509_certificate(der) {
                Ok((_, certificate)) => {
                    let not_after = OffsetDateTime::from_unix_timestamp(
                        certificate.validity().not_after.timestamp(),
                    )
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH);
                    let class = if not_after < now + time::Duration::days(30) {
                        "bad"
                    } else {
                        "ok"
                    };
                    let _ = write!(
                        chain,
                        "<div>{} — <span class=\"{class}\">{}</span> ({})</div>",
                        escape(&certificate.subject().to_string()),
                        escape(&when(not_after)),
                        escape(&relative(not_after, now)),
                    );
                }
                Err(error) => chain.push_str(&unavailable(error)),
            }
        }
        let _ = write!(
            out,
            "<tr><td class=\"issuer\">{}</td><td>{}</td><td>{}</td><td>{chain}</td></tr>",
            escape(&issuer.name),
            if issuer.active { "active" } else { "inactive" },
            escape(&profiles.join(", ")),
        );
    }
    out.push_str("</table></section>");
    out
}

/// Certificates issued (revoked ones included) since `from`, oldest first, at most
/// [`CHART_MAX_RECORDS`]; the flag says whether more were left unread.
async fn issued_since(
    state: &AppState,
    from: OffsetDateTime,
) -> Result<(Vec<OffsetDateTime>, bool), ApiError> {
    let mut times = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .store
            .find_certificates(&CertificateFilter {
                issued_from: Some(from),
                include_revoked: true,
                after: after.clone(),
                limit: 1_000,
                ..CertificateFilter::default()
            })
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let full = page.len() == 1_000;
        let last = page
            .last()
            .and_then(|r: &CertificateRecord| r.issued_at.map(|at| (at, r.serial.clone())));
        times.extend(page.iter().filter_map(|r| r.issued_at));
        if times.len() >= CHART_MAX_RECORDS {
            times.truncate(CHART_MAX_RECORDS);
            return Ok((times, true));
        }
        match last {
            Some(last) if full => after = Some(last),
            _ => return Ok((times, false)),
        }
    }
}

/// Counts per hour, the last bucket holding the current hour.
pub fn hourly_counts(times: &[OffsetDateTime], now: OffsetDateTime) -> (OffsetDateTime, Vec<u64>) {
    let hour_start = now
        .replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(now);
    let first = hour_start - time::Duration::hours(CHART_HOURS - 1);
    let mut counts = vec![0u64; usize::try_from(CHART_HOURS).unwrap_or(24)];
    for at in times {
        let index = (*at - first).whole_hours();
        if let Ok(index) = usize::try_from(index)
            && let Some(count) = counts.get_mut(index)
        {
            *count += 1;
        }
    }
    (first, counts)
}

/// The bar chart of `counts` (one bar an hour from `first`) as inline SVG.
pub fn chart_svg(first: OffsetDateTime, counts: &[u64]) -> String {
    const WIDTH: u64 = 760;
    const HEIGHT: u64 = 200;
    const LEFT: u64 = 40;
    const BOTTOM: u64 = 24;
    const TOP: u64 = 12;
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let slots = u64::try_from(counts.len()).unwrap_or(1).max(1);
    let slot = (WIDTH - LEFT - 8) / slots;
    let plot = HEIGHT - BOTTOM - TOP;
    let mut out = format!(
        "<svg id=\"issuance-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" \
         height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"certificates issued per hour\" font-size=\"11\" \
         font-family=\"system-ui,sans-serif\">\
         <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#57606a\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
        HEIGHT - BOTTOM,
        WIDTH - 8,
        HEIGHT - BOTTOM,
        LEFT - 4,
        TOP + 8,
        LEFT - 4,
        HEIGHT - BOTTOM,
    );
    for (index, count) in counts.iter().enumerate() {
        let i = u64::try_from(index).unwrap_or(0);
        let height = count * plot / max;
        let x = LEFT + i * slot + 2;
        let start = first + time::Duration::hours(i64::try_from(index).unwrap_or(0));
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{height}\" \
             fill=\"#2f6fb3\"><title>{}: {count}</title></rect>",
            HEIGHT - BOTTOM - height,
            slot.saturating_sub(4).max(1),
            escape(&when(start)),
        );
        if index % 6 == 0 {
            let _ = write!(
                out,
                "<text x=\"{x}\" y=\"{}\">{:02}:00</text>",
                HEIGHT - 8,
                start.hour(),
            );
        }
    }
    out.push_str("</svg>");
    out
}

async fn issuance_section(state: &AppState, now: OffsetDateTime) -> String {
    let (first, _) = hourly_counts(&[], now);
    let mut out =
        String::from("<section id=\"issuance\"><h2>Issuance, last 24 hours (per hour, UTC)</h2>");
    match issued_since(state, first).await {
        Ok((times, more)) => {
            let (first, counts) = hourly_counts(&times, now);
            let total: u64 = counts.iter().sum();
            let _ = write!(
                out,
                "<p><strong id=\"issued-total\">{}{total}</strong> certificates issued \
                 since {}{}</p>",
                if more { "at least " } else { "" },
                escape(&when(first)),
                if more {
                    format!(" (the chart counts the first {CHART_MAX_RECORDS} only)")
                } else {
                    String::new()
                },
            );
            out.push_str(&chart_svg(first, &counts));
        }
        Err(error) => out.push_str(&unavailable(error)),
    }
    out.push_str("</section>");
    out
}

fn names_of(record: &CertificateRecord) -> String {
    escape(&record.sans.join(", "))
}

async fn expiring_section(state: &AppState, now: OffsetDateTime) -> String {
    let mut out =
        format!("<section id=\"expiring\"><h2>Expiring within 7 days (first {EXPIRING_ROWS})</h2>");
    let found = state
        .store
        .find_certificates(&CertificateFilter {
            unexpired_at: Some(now),
            expires_before: Some(now + EXPIRING_WITHIN),
            limit: EXPIRING_ROWS,
            ..CertificateFilter::default()
        })
        .await;
    match found {
        Ok(mut records) if !records.is_empty() => {
            records.sort_by_key(|r| r.not_after);
            out.push_str(
                "<table><tr><th>names</th><th>profile</th><th>issuer</th><th>serial</th>\
                 <th>not after</th></tr>",
            );
            for record in &records {
                let class = if record.not_after < now + time::Duration::days(1) {
                    "bad"
                } else {
                    "warn"
                };
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td>\
                     <td class=\"{class}\">{} ({})</td></tr>",
                    names_of(record),
                    escape(&record.profile),
                    escape(&record.issuer),
                    escape(&record.serial),
                    escape(&when(record.not_after)),
                    escape(&relative(record.not_after, now)),
                );
            }
            out.push_str("</table>");
        }
        Ok(_) => out.push_str("<p class=\"muted\">none</p>"),
        Err(error) => out.push_str(&unavailable(error)),
    }
    out.push_str("</section>");
    out
}

async fn revocations_section(state: &AppState) -> String {
    let mut out =
        format!("<section id=\"revocations\"><h2>Recent revocations (last {REVOCATION_ROWS})</h2>");
    let entries = async {
        let last = state.store.last_revocation_id().await?;
        let after = last.saturating_sub(REVOCATION_ROWS);
        let limit = u32::try_from(REVOCATION_ROWS).unwrap_or(20);
        state.store.revocations_after(after, limit).await
    }
    .await;
    match entries {
        Ok(entries) if !entries.is_empty() => {
            out.push_str(
                "<table><tr><th>revoked at</th><th>names</th><th>issuer</th><th>serial</th>\
                 <th>reason</th></tr>",
            );
            for entry in entries.iter().rev() {
                let names = match state.store.certificate(&entry.serial).await {
                    Ok(Some(record)) => names_of(&record),
                    _ => String::new(),
                };
                let reason = carimbo_pki::RevocationReason::from_code(entry.reason)
                    .map_or_else(|| entry.reason.to_string(), |r| r.to_string());
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{names}</td><td>{}</td><td><code>{}</code></td>\
                     <td>{}</td></tr>",
                    escape(&when(entry.revoked_at)),
                    escape(&entry.issuer),
                    escape(&entry.serial),
                    escape(&reason),
                );
            }
            out.push_str("</table>");
        }
        Ok(_) => out.push_str("<p class=\"muted\">none</p>"),
        Err(error) => out.push_str(&unavailable(error)),
    }
    out.push_str("</section>");
    out
}

async fn crl_section(state: &AppState, now: OffsetDateTime) -> String {
    let mut out = String::from(
        "<section id=\"crls\"><h2>CRL freshness</h2><table><tr><th>scope</th>\
         <th>number</th><th>this update</th><th>next update</th><th>state</th></tr>",
    );
    match state.store.crl_heads().await {
        Ok(heads) => {
            for head in &heads {
                let (class, text) = if head.last_number == 0 {
                    ("warn", "never published".to_owned())
                } else if head.last_next_update <= now {
                    ("bad", "expired".to_owned())
                } else if head.is_dirty() {
                    ("warn", "revocations pending".to_owned())
                } else {
                    (
                        "ok",
                        format!("fresh, {}", relative(head.last_next_update, now)),
                    )
                };
                let dates = if head.last_number == 0 {
                    ("—".to_owned(), "—".to_owned())
                } else {
                    (when(head.last_this_update), when(head.last_next_update))
                };
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                     <td class=\"{class}\">{}</td></tr>",
                    escape(&head.issuer),
                    head.last_number,
                    escape(&dates.0),
                    escape(&dates.1),
                    escape(&text),
                );
            }
            if heads.is_empty() {
                out.push_str("<tr><td colspan=\"5\" class=\"muted\">no CRL yet</td></tr>");
            }
            out.push_str("</table>");
        }
        Err(error) => {
            out.push_str("</table>");
            out.push_str(&unavailable(error));
        }
    }
    out.push_str("</section>");
    out
}

fn ocsp_section(state: &AppState, now: OffsetDateTime) -> String {
    let mut out = String::from(
        "<section id=\"ocsp\"><h2>OCSP responders</h2><table><tr><th>issuer</th>\
         <th>responder certificate expires</th></tr>",
    );
    for (issuer, not_after) in state.ocsp.responder_expiry() {
        let cell = match not_after {
            Some(at) => {
                let class = if at <= now {
                    "bad"
                } else if at < now + time::Duration::days(1) {
                    "warn"
                } else {
                    "ok"
                };
                format!(
                    "<span class=\"{class}\">{} ({})</span>",
                    escape(&when(at)),
                    escape(&relative(at, now))
                )
            }
            None => "<span class=\"bad\">no responder</span>".to_owned(),
        };
        let _ = write!(out, "<tr><td>{}</td><td>{cell}</td></tr>", escape(&issuer));
    }
    out.push_str("</table></section>");
    out
}

async fn kms_section(state: &AppState) -> String {
    let mut out = String::from("<section id=\"kms\"><h2>KMS keys</h2>");
    let Some(kms) = &state.kms else {
        out.push_str("<p class=\"muted\">the KMS API is not configured</p></section>");
        return out;
    };
    match kms.keyring().store().keys().await {
        Ok(keys) if !keys.is_empty() => {
            out.push_str(
                "<table><tr><th>name</th><th>purpose</th><th>algorithm</th><th>primary</th>\
                 <th>versions (state, provider)</th></tr>",
            );
            for key in &keys {
                let versions: Vec<String> = key
                    .versions
                    .iter()
                    .map(|v| {
                        format!(
                            "v{} {}, {}",
                            v.version,
                            escape(&v.state.to_string()),
                            escape(&v.reference.provider)
                        )
                    })
                    .collect();
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>v{}</td><td>{}</td></tr>",
                    escape(&key.name.to_string()),
                    escape(&key.purpose.to_string()),
                    escape(&key.algorithm.to_string()),
                    key.primary_version,
                    versions.join("<br>"),
                );
            }
            out.push_str("</table>");
        }
        Ok(_) => out.push_str("<p class=\"muted\">no keys</p>"),
        Err(error) => out.push_str(&unavailable(error)),
    }
    out.push_str("</section>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn reads_form_fields() {
        assert_eq!(
            form_field(b"a=1&token=ab%2Bc+d%3D", "token").as_deref(),
            Some("ab+c d=")
        );
        assert_eq!(form_field(b"token=%zz", "token"), None);
        assert_eq!(form_field(b"other=1", "token"), None);
    }

    #[test]
    fn sessions_open_find_and_close() {
        let sessions = Sessions::default();
        let id = sessions.open("ana").unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(sessions.admin_of(&id).as_deref(), Some("ana"));
        assert_eq!(sessions.admin_of("nope"), None);
        sessions.close(&id);
        assert_eq!(sessions.admin_of(&id), None);
        assert!(sessions.is_empty());
    }

    #[test]
    fn counts_by_hour() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000 + 1_234).unwrap();
        let (first, counts) = hourly_counts(
            &[
                now,
                now - time::Duration::hours(1),
                now,
                now - time::Duration::days(2),
            ],
            now,
        );
        assert_eq!(counts.len(), 24);
        assert_eq!(counts[23], 2);
        assert_eq!(counts[22], 1);
        assert_eq!(counts.iter().sum::<u64>(), 3);
        assert!(chart_svg(first, &counts).contains("class=\"bar\""));
    }
}
