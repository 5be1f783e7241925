//! Who may see the operator views. The wallboard and its data name agents, their statuses and
//! reasons, and CallSids, so they answer only to an operator: a request carrying the admin
//! token or the read-only viewer token as `Authorization: Bearer`, or a browser holding a
//! session cookie from the login form. `/metrics` answers to its own bearer token when one is
//! configured (`CALLQ_METRICS_TOKEN`) and to anyone otherwise, since Prometheus scrapes it
//! from inside the cluster and it names queues only.
//!
//! The session cookie never holds a token. It is `<role>.<expires_at>.<mac>`, the MAC being
//! HMAC-SHA256 keyed by the token the operator logged in with, over a fixed label, the role and
//! the expiry; so it cannot be forged or extended, and changing that token ends every session
//! made with it.

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::agents::auth::{constant_time_eq, now_unix_s};
use crate::app::AppState;

/// Name of the operator session cookie.
pub const SESSION_COOKIE: &str = "callq_session";

/// How long a login lasts: one long shift.
pub const SESSION_TTL_S: i64 = 12 * 3600;

/// Prepended to the MAC input so these MACs mean "operator session" and nothing else.
const DOMAIN: &[u8] = b"callq operator session\0";

/// What an operator may do: both roles see the views; only the admin token also opens the
/// admin API (checked there, not here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// Why an operator view was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Neither an admin nor a viewer token is configured: nobody can see the views.
    Disabled,
    /// No credentials, or none that are valid.
    LoginRequired,
}

/// The configured token of `role` (empty: that role cannot log in).
fn token_of(app: &AppState, role: Role) -> &str {
    match role {
        Role::Admin => &app.agents.admin_token,
        Role::Viewer => &app.ops.viewer_token,
    }
}

/// Whether operator views can be opened at all.
pub fn enabled(app: &AppState) -> bool {
    !app.agents.admin_token.is_empty() || !app.ops.viewer_token.is_empty()
}

/// The role whose configured token equals `given` (compared in constant time).
pub fn role_for_token(app: &AppState, given: &str) -> Option<Role> {
    [Role::Admin, Role::Viewer].into_iter().find(|role| {
        let configured = token_of(app, *role);
        !configured.is_empty() && constant_time_eq(given.as_bytes(), configured.as_bytes())
    })
}

/// Who is asking, from a bearer token or a session cookie.
pub fn operator(app: &AppState, headers: &HeaderMap, jar: &CookieJar) -> Result<Role, Denied> {
    if !enabled(app) {
        return Err(Denied::Disabled);
    }
    if let Some(given) = bearer(headers) {
        return role_for_token(app, given).ok_or(Denied::LoginRequired);
    }
    jar.get(SESSION_COOKIE)
        .and_then(|c| verify_session(app, c.value(), now_unix_s()))
        .ok_or(Denied::LoginRequired)
}

/// Whether `/metrics` may be read: always when no metrics token is configured, else only with
/// it as the bearer token.
pub fn metrics_allowed(metrics_token: &str, headers: &HeaderMap) -> bool {
    metrics_token.is_empty()
        || bearer(headers)
            .is_some_and(|given| constant_time_eq(given.as_bytes(), metrics_token.as_bytes()))
}

/// The cookie that logs `role` in until `now + SESSION_TTL_S`.
pub fn session_cookie(app: &AppState, role: Role, now_unix_s: i64) -> Cookie<'static> {
    let expires_at = now_unix_s + SESSION_TTL_S;
    let value = format!(
        "{}.{expires_at}.{}",
        role.as_str(),
        mac(token_of(app, role), role, expires_at)
    );
    base_cookie(app, value, SESSION_TTL_S)
}

/// The cookie that ends a session.
pub fn logout_cookie(app: &AppState) -> Cookie<'static> {
    base_cookie(app, String::new(), 0)
}

fn base_cookie(app: &AppState, value: String, max_age_s: i64) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(app.edge.public_url.starts_with("https://"))
        .max_age(cookie::time::Duration::seconds(max_age_s))
        .build()
}

/// The role a session cookie's value proves at `now`, if it is genuine and unexpired.
fn verify_session(app: &AppState, value: &str, now_unix_s: i64) -> Option<Role> {
    let mut parts = value.splitn(3, '.');
    let role = Role::parse(parts.next()?)?;
    let expires_text = parts.next()?;
    let given_mac = parts.next()?;
    let expires_at: i64 = expires_text.parse().ok()?;
    let key = token_of(app, role);
    if key.is_empty() {
        return None;
    }
    let genuine = constant_time_eq(given_mac.as_bytes(), mac(key, role, expires_at).as_bytes());
    (genuine && now_unix_s < expires_at).then_some(role)
}

fn mac(key: &str, role: Role, expires_at: i64) -> String {
    // HMAC takes keys of any length, so this never fails; an empty key never gets here.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    m.update(DOMAIN);
    m.update(format!("{}.{expires_at}", role.as_str()).as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// The credentials of `Authorization: Bearer <token>`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    let credentials = credentials.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
}
