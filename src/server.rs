//! `callq serve`: assembles the HTTP router (Twilio webhooks, agent and admin APIs, ops
//! endpoints) with its limits, and runs it until shutdown. It takes plain [`ServeSettings`]
//! (the command line fills them; the lab's in-process stack sets them directly).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::app::{AgentSettings, AppState, EdgeSettings, OpsSettings};
use crate::config::CentreConfig;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// The whole HTTP surface of `callq serve`.
pub fn router(state: AppState, max_body: usize) -> Router {
    Router::new()
        .merge(crate::webhooks::routes())
        .merge(crate::agents::routes())
        .merge(crate::ops::routes())
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Everything `callq serve` runs with, as plain values.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// Redis holding the routing state.
    pub redis_url: String,
    /// Redis connections in the pool.
    pub redis_pool: usize,
    /// The public base URL Twilio calls (as configured on the number); webhook signatures are
    /// checked against it.
    pub public_url: String,
    /// Twilio auth token: signs every webhook.
    pub auth_token: String,
    /// Bearer token for the admin API (empty: the admin API answers 403).
    pub admin_token: String,
    /// Secret that signs agent tokens, at least [`MIN_AGENT_SECRET`] bytes (empty: the agent
    /// API answers 403).
    pub agent_secret: String,
    /// Read-only token for the operator views (empty: only the admin token opens them).
    pub viewer_token: String,
    /// Bearer token `/metrics` asks for (empty: `/metrics` is open).
    pub metrics_token: String,
    /// How often the wallboard's chart samples every queue.
    pub history_every: Duration,
    /// An agent silent this long is offline.
    pub heartbeat_ttl: Duration,
    /// Longest a webhook waits on Redis before answering with the fallback.
    pub redis_deadline: Duration,
    /// Largest request body accepted (bytes).
    pub max_body: usize,
    /// Log callers' full numbers (off: the last four digits only).
    pub log_caller_numbers: bool,
    /// What signs Twilio Voice access tokens for agent desktops (None: the voice-token route
    /// answers 503).
    pub voice: Option<crate::app::VoiceGrant>,
    /// Where the agent console loads the Twilio Voice SDK from (empty: the pinned default).
    pub voice_sdk_url: String,
}

impl ServeSettings {
    /// Settings with the command line's defaults for everything but Redis and the public URL;
    /// the secrets are empty (set at least `auth_token` before [`state`]).
    pub fn new(redis_url: &str, public_url: &str) -> Self {
        Self {
            redis_url: redis_url.to_string(),
            redis_pool: 32,
            public_url: public_url.to_string(),
            auth_token: String::new(),
            admin_token: String::new(),
            agent_secret: String::new(),
            viewer_token: String::new(),
            metrics_token: String::new(),
            history_every: crate::ops::wallboard::HISTORY_EVERY,
            heartbeat_ttl: Duration::from_secs(15),
            redis_deadline: Duration::from_millis(300),
            max_body: 64 * 1024,
            log_caller_numbers: false,
            voice: None,
            voice_sdk_url: crate::agents::console::DEFAULT_VOICE_SDK_URL.to_string(),
        }
    }
}

/// Build the shared state from the settings and the centre's configuration, and make sure
/// Redis holds the configured queues.
pub async fn state(settings: &ServeSettings, centre: CentreConfig) -> anyhow::Result<AppState> {
    check_secrets(settings)?;
    crate::agents::console::VoiceSdk::from_url(&settings.voice_sdk_url)
        .map_err(|e| anyhow::anyhow!("CALLQ_VOICE_SDK_URL (--voice-sdk-url): {e}"))?;
    let store = Store::connect(&settings.redis_url, &centre.centre, settings.redis_pool)?;
    for q in centre.queue_settings() {
        store.configure_queue(&q).await?;
    }
    // the queue views read per-queue agent counters the scripts keep; check them once here
    // (and repair them after an upgrade from a version that did not keep them)
    for d in store.recount_agents(true).await? {
        tracing::warn!(
            queue = %d.queue, state = %d.state, stored = d.stored, counted = d.counted,
            "agent counter was off; repaired"
        );
    }
    Ok(AppState {
        store,
        centre: Arc::new(centre),
        edge: Arc::new(EdgeSettings {
            public_url: settings.public_url.trim_end_matches('/').to_string(),
            auth_token: settings.auth_token.clone(),
            redis_deadline: settings.redis_deadline,
            log_caller_numbers: settings.log_caller_numbers,
        }),
        agents: Arc::new(AgentSettings {
            admin_token: settings.admin_token.clone(),
            agent_secret: settings.agent_secret.as_bytes().to_vec(),
            heartbeat_ttl: settings.heartbeat_ttl,
            voice: settings.voice.clone(),
            voice_sdk_url: settings.voice_sdk_url.clone(),
        }),
        ops: Arc::new(OpsSettings {
            viewer_token: settings.viewer_token.clone(),
            metrics_token: settings.metrics_token.clone(),
            history_every: settings.history_every,
        }),
        stats_cache: Default::default(),
        switches: Default::default(),
    })
}

/// Refuse to start with secrets that would leave webhooks, tokens or views unprotected: each
/// one set must be at least its minimum length, and the message names the variable.
fn check_secrets(settings: &ServeSettings) -> anyhow::Result<()> {
    anyhow::ensure!(
        !settings.auth_token.trim().is_empty(),
        "TWILIO_AUTH_TOKEN (--auth-token) is empty: it is what every Twilio webhook is signed with"
    );
    let rules = [
        (
            "TWILIO_AUTH_TOKEN (--auth-token)",
            &settings.auth_token,
            MIN_AUTH_TOKEN,
            "Twilio's are 32 characters",
        ),
        (
            "CALLQ_AGENT_SECRET (--agent-secret)",
            &settings.agent_secret,
            MIN_AGENT_SECRET,
            "or leave it empty to turn the agent API off",
        ),
        (
            "CALLQ_ADMIN_TOKEN (--admin-token)",
            &settings.admin_token,
            MIN_OPERATOR_TOKEN,
            "or leave it empty to turn the admin API off",
        ),
        (
            "CALLQ_VIEWER_TOKEN (--viewer-token)",
            &settings.viewer_token,
            MIN_OPERATOR_TOKEN,
            "or leave it empty",
        ),
        (
            "CALLQ_METRICS_TOKEN (--metrics-token)",
            &settings.metrics_token,
            MIN_METRICS_TOKEN,
            "or leave it empty to leave /metrics open",
        ),
    ];
    for (name, value, min, hint) in rules {
        let len = value.len();
        anyhow::ensure!(
            len == 0 || len >= min,
            "{name} has {len} bytes; use at least {min} random bytes ({hint})"
        );
    }
    let same = |a: &str, b: &str| !a.is_empty() && a == b;
    anyhow::ensure!(
        !same(&settings.viewer_token, &settings.admin_token),
        "CALLQ_VIEWER_TOKEN equals CALLQ_ADMIN_TOKEN; the viewer token must be a different secret"
    );
    if settings.agent_secret.is_empty() {
        tracing::warn!("CALLQ_AGENT_SECRET is empty: the agent API answers 403");
    }
    if settings.admin_token.is_empty() {
        tracing::warn!("CALLQ_ADMIN_TOKEN is empty: the admin API answers 403");
    }
    if settings.admin_token.is_empty() && settings.viewer_token.is_empty() {
        tracing::warn!(
            "neither CALLQ_ADMIN_TOKEN nor CALLQ_VIEWER_TOKEN is set: the wallboard answers 403"
        );
    }
    Ok(())
}

/// Shortest Twilio auth token accepted.
pub const MIN_AUTH_TOKEN: usize = 16;
/// Shortest admin or viewer token accepted.
pub const MIN_OPERATOR_TOKEN: usize = 24;
/// Shortest metrics token accepted.
pub const MIN_METRICS_TOKEN: usize = 16;
/// Shortest agent-token secret accepted.
pub const MIN_AGENT_SECRET: usize = 32;

/// Longest a client may take to send a request's headers; a slower one is disconnected
/// (a client that opens connections and trickles bytes cannot hold them open).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a client may take to send a request's body once its headers are in; a slower one
/// gets 408 and its connection is closed.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests may run on after `shutdown` trips before their connections
/// are dropped.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve on `listener` until `shutdown` trips, then finish in-flight requests (within
/// [`DRAIN_TIMEOUT`]). Each connection is HTTP/1.1 or HTTP/2, with [`HEADER_READ_TIMEOUT`]
/// on the headers and [`BODY_READ_TIMEOUT`] on the body.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    max_body: usize,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    crate::ops::metrics_handle();
    tokio::spawn(crate::ops::wallboard::sample_history(
        state.store.clone(),
        state.ops.history_every,
        shutdown.clone(),
    ));
    let app = router(state, max_body).layer(RequestBodyTimeoutLayer::new(BODY_READ_TIMEOUT));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // out of file descriptors and the like: wait for some to close
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait() => break,
        };
        let service = TowerToHyperService::new(
            app.clone()
                .map_request(|req: axum::http::Request<Incoming>| req.map(axum::body::Body::new)),
        );
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running {DRAIN_TIMEOUT:?} after shutdown; dropping them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(auth_token: &str, agent_secret: &str) -> ServeSettings {
        ServeSettings {
            auth_token: auth_token.to_string(),
            agent_secret: agent_secret.to_string(),
            ..ServeSettings::new("redis://127.0.0.1:6379/", "http://127.0.0.1:8080")
        }
    }

    const TWILIO: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn serve_refuses_an_empty_auth_token_or_a_short_agent_secret() {
        let err = check_secrets(&settings("", "")).expect_err("refused");
        assert!(err.to_string().contains("TWILIO_AUTH_TOKEN"), "{err}");
        let err = check_secrets(&settings(TWILIO, "short")).expect_err("refused");
        assert!(err.to_string().contains("CALLQ_AGENT_SECRET"), "{err}");
        let long = "x".repeat(MIN_AGENT_SECRET);
        assert!(check_secrets(&settings(TWILIO, &long)).is_ok());
        assert!(
            check_secrets(&settings(TWILIO, "")).is_ok(),
            "agent API off"
        );
    }

    /// Each secret shorter than its minimum is refused with its variable named; at the
    /// minimum, or empty (that feature off), it is accepted.
    #[test]
    fn every_secret_has_a_minimum_length_naming_the_variable() {
        type Set = fn(&mut ServeSettings, String);
        let cases: [(&str, usize, Set); 5] = [
            ("TWILIO_AUTH_TOKEN", MIN_AUTH_TOKEN, |s, v| s.auth_token = v),
            ("CALLQ_AGENT_SECRET", MIN_AGENT_SECRET, |s, v| {
                s.agent_secret = v
            }),
            ("CALLQ_ADMIN_TOKEN", MIN_OPERATOR_TOKEN, |s, v| {
                s.admin_token = v
            }),
            ("CALLQ_VIEWER_TOKEN", MIN_OPERATOR_TOKEN, |s, v| {
                s.viewer_token = v
            }),
            ("CALLQ_METRICS_TOKEN", MIN_METRICS_TOKEN, |s, v| {
                s.metrics_token = v
            }),
        ];
        for (name, min, set) in cases {
            let mut s = settings(TWILIO, "");
            set(&mut s, "k".repeat(min - 1));
            let err = check_secrets(&s).expect_err(name);
            assert!(err.to_string().contains(name), "{name}: {err}");
            set(&mut s, "k".repeat(min));
            assert!(check_secrets(&s).is_ok(), "{name} at its minimum");
        }
        let mut s = settings(TWILIO, "");
        s.admin_token = "a".repeat(MIN_OPERATOR_TOKEN);
        s.viewer_token = s.admin_token.clone();
        let err = check_secrets(&s).expect_err("viewer = admin");
        assert!(err.to_string().contains("CALLQ_VIEWER_TOKEN"), "{err}");
    }
}
