//! The live wallboard: a page for the supervisors' screen (`GET /wallboard`) and the JSON it
//! refreshes from every two seconds (`GET /wallboard/data`): per-queue waiting calls, oldest
//! wait, estimated wait and agents by state, the latest transitions from the event stream, and
//! the last hour of each queue's length, oldest and average wait for the chart. The chart's
//! samples are taken by [`sample_history`] (every replica runs it; each period is recorded
//! once, see `store::history`); the page asks only for samples newer than its last
//! (`?since=<id>`), so a refresh reads a few entries, not the hour. It shows counts, agent ids
//! and call SIDs, never callers' numbers, and only to an operator (see [`super::access`]):
//! without credentials the page is a login form (`POST /wallboard/login` sets the session
//! cookie) and the data answers 401. Both pages carry a Content-Security-Policy: the board runs
//! only its own inline script (by hash), the form none.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use super::access::{self, Denied};
use crate::agents::auth::now_unix_s;
use crate::app::AppState;
use crate::shutdown::Shutdown;
use crate::store::history::HistorySample;
use crate::store::read::QueueStats;
use crate::store::Store;

const PAGE: &str = include_str!("wallboard.html");
const LOGIN: &str = include_str!("login.html");

#[derive(Debug, Serialize)]
pub struct WallboardData {
    pub centre: String,
    pub queues: Vec<QueueStats>,
    /// Latest transitions, newest first, as short lines.
    pub events: Vec<String>,
    /// Chart samples, oldest first: the last [`HISTORY_WINDOW`], or those after `since`.
    pub history: Vec<HistorySample>,
    /// Seconds between samples.
    pub history_every_s: f64,
    /// Seconds of history the chart spans.
    pub history_window_s: f64,
}

/// How often `callq serve` samples the queues for the chart.
pub const HISTORY_EVERY: Duration = Duration::from_secs(10);
/// How far back the chart goes.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(3600);

/// Query of `GET /wallboard/data`.
#[derive(Debug, Deserialize)]
pub struct DataQuery {
    /// Only chart samples newer than this stream id (the last one the page has).
    since: Option<String>,
}

/// Sample every queue for the chart each `every` until `shutdown` (zero: take none). A failed
/// sample is logged and skipped (the chart shows a gap), never fatal.
pub async fn sample_history(store: Store, every: Duration, mut shutdown: Shutdown) {
    if every.is_zero() {
        return;
    }
    let every = every.max(crate::store::history::MIN_PERIOD);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        match tokio::time::timeout(every, store.record_history(every)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "wallboard history: sample skipped"),
            Err(_) => tracing::debug!("wallboard history: redis too slow; sample skipped"),
        }
    }
}

/// `GET /wallboard`: the board for an operator, the login form for anyone else.
pub async fn page(State(app): State<AppState>, headers: HeaderMap, jar: CookieJar) -> Response {
    match access::operator(&app, &headers, &jar) {
        Ok(_) => (
            [
                (header::CACHE_CONTROL, "no-cache"),
                (header::CONTENT_SECURITY_POLICY, page_csp()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            Html(PAGE),
        )
            .into_response(),
        Err(Denied::LoginRequired) => login_page(StatusCode::UNAUTHORIZED, ""),
        Err(Denied::Disabled) => disabled_page(),
    }
}

/// The login form with `message` above it.
fn login_page(status: StatusCode, message: &str) -> Response {
    let html = LOGIN.replace("{{message}}", message);
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, LOGIN_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(html),
    )
        .into_response()
}

/// The login form's Content-Security-Policy: no script at all, its own style, posting only to
/// callq, never framed.
const LOGIN_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                         frame-ancestors 'none'; base-uri 'none'";

/// The board's Content-Security-Policy: only its own inline script (by its SHA-256, so no
/// other script can run), fetches to callq only, posting (log out) only to callq, never framed.
fn page_csp() -> &'static str {
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        use base64::Engine;
        use sha2::Digest;
        let script = PAGE
            .split_once("<script>")
            .and_then(|(_, rest)| rest.split_once("</script>"))
            .map(|(body, _)| body)
            .unwrap_or("");
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
        format!(
            "default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    })
}

fn disabled_page() -> Response {
    (
        StatusCode::FORBIDDEN,
        "the wallboard is off: the server has neither CALLQ_ADMIN_TOKEN nor CALLQ_VIEWER_TOKEN\n",
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /wallboard/login` (form `token`): a right admin or viewer token sets the session
/// cookie and goes to the board; a wrong one gets the form again with 401.
pub async fn login(
    State(app): State<AppState>,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    if !access::enabled(&app) {
        return disabled_page();
    }
    match access::role_for_token(&app, form.token.trim()) {
        Some(role) => {
            tracing::info!(role = ?role, "wallboard login");
            let jar = jar.add(access::session_cookie(&app, role, now_unix_s()));
            (jar, Redirect::to("/wallboard")).into_response()
        }
        None => {
            tracing::warn!("wallboard login refused: wrong token");
            login_page(StatusCode::UNAUTHORIZED, "That token is not right.")
        }
    }
}

/// `POST /wallboard/logout`: ends the session.
pub async fn logout(State(app): State<AppState>, jar: CookieJar) -> Response {
    (
        jar.add(access::logout_cookie(&app)),
        Redirect::to("/wallboard"),
    )
        .into_response()
}

/// `GET /wallboard/data`: the board's numbers, for an operator only.
pub async fn data(
    State(app): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    Query(query): Query<DataQuery>,
) -> Response {
    match access::operator(&app, &headers, &jar) {
        Ok(_) => {}
        Err(Denied::LoginRequired) => {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(serde_json::json!({"error": {
                    "code": "login_required",
                    "message": "send Authorization: Bearer <admin or viewer token>, or log in at /wallboard"
                }})),
            )
                .into_response()
        }
        Err(Denied::Disabled) => {
            return (
                StatusCode::FORBIDDEN,
                Json(serde_json::json!({"error": {
                    "code": "operator_views_disabled",
                    "message": "the server has neither CALLQ_ADMIN_TOKEN nor CALLQ_VIEWER_TOKEN"
                }})),
            )
                .into_response()
        }
    }
    let deadline = app.edge.redis_deadline * 3;
    match tokio::time::timeout(deadline, collect(&app, query.since.as_deref())).await {
        Ok(Ok(d)) => Json(d).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "wallboard: redis error");
            (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable\n").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "redis too slow\n").into_response(),
    }
}

async fn collect(app: &AppState, since: Option<&str>) -> crate::store::Result<WallboardData> {
    let mut queues = Vec::new();
    for q in app.store.queue_names().await? {
        queues.push(app.store.queue_stats(&q).await?);
    }
    let events = app
        .store
        .recent_events(20)
        .await?
        .into_iter()
        .map(|(id, f)| {
            let ms: i64 = id
                .split('-')
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let time = jiff::Timestamp::from_millisecond(ms)
                .map(|t| t.strftime("%H:%M:%S").to_string())
                .unwrap_or_default();
            let mut line = format!(
                "{time} {}",
                f.get("type").map(String::as_str).unwrap_or("?")
            );
            for k in ["queue", "call", "agent", "status", "outcome", "reason"] {
                if let Some(v) = f.get(k).filter(|v| !v.is_empty()) {
                    line.push_str(&format!(" {k}={v}"));
                }
            }
            line
        })
        .collect();
    let history = app.store.history(since, HISTORY_WINDOW).await?;
    Ok(WallboardData {
        centre: app.centre.centre.clone(),
        queues,
        events,
        history,
        history_every_s: app.ops.history_every.as_secs_f64(),
        history_window_s: HISTORY_WINDOW.as_secs_f64(),
    })
}
