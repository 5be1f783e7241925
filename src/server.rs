//! `callq serve`: assembles the HTTP router (Twilio webhooks, agent and admin APIs, ops
//! endpoints) with its limits, and runs it until shutdown. It takes plain [`ServeSettings`]
//! (the command line fills them; the lab's in-process stack sets them directly).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use tokio::net::TcpListener;

use crate::app::{AgentSettings, AppState, EdgeSettings};
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
    /// An agent silent this long is offline.
    pub heartbeat_ttl: Duration,
    /// Longest a webhook waits on Redis before answering with the fallback.
    pub redis_deadline: Duration,
    /// Largest request body accepted (bytes).
    pub max_body: usize,
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
            heartbeat_ttl: Duration::from_secs(15),
            redis_deadline: Duration::from_millis(300),
            max_body: 64 * 1024,
        }
    }
}

/// Build the shared state from the settings and the centre's configuration, and make sure
/// Redis holds the configured queues.
pub async fn state(settings: &ServeSettings, centre: CentreConfig) -> anyhow::Result<AppState> {
    check_secrets(settings)?;
    let store = Store::connect(&settings.redis_url, &centre.centre, settings.redis_pool)?;
    for q in centre.queue_settings() {
        store.configure_queue(&q).await?;
    }
    Ok(AppState {
        store,
        centre: Arc::new(centre),
        edge: Arc::new(EdgeSettings {
            public_url: settings.public_url.trim_end_matches('/').to_string(),
            auth_token: settings.auth_token.clone(),
            redis_deadline: settings.redis_deadline,
        }),
        agents: Arc::new(AgentSettings {
            admin_token: settings.admin_token.clone(),
            agent_secret: settings.agent_secret.as_bytes().to_vec(),
            heartbeat_ttl: settings.heartbeat_ttl,
        }),
        stats_cache: Default::default(),
    })
}

/// Refuse to start with secrets that would leave webhooks or agent tokens unprotected.
fn check_secrets(settings: &ServeSettings) -> anyhow::Result<()> {
    anyhow::ensure!(
        !settings.auth_token.trim().is_empty(),
        "TWILIO_AUTH_TOKEN (--auth-token) is empty: it is what every Twilio webhook is signed with"
    );
    let secret = settings.agent_secret.len();
    anyhow::ensure!(
        secret == 0 || secret >= MIN_AGENT_SECRET,
        "CALLQ_AGENT_SECRET (--agent-secret) has {secret} bytes; use at least {MIN_AGENT_SECRET} \
         random bytes (or leave it empty to turn the agent API off)"
    );
    if secret == 0 {
        tracing::warn!("CALLQ_AGENT_SECRET is empty: the agent API answers 403");
    }
    if settings.admin_token.is_empty() {
        tracing::warn!("CALLQ_ADMIN_TOKEN is empty: the admin API answers 403");
    }
    Ok(())
}

/// Shortest agent-token secret accepted.
pub const MIN_AGENT_SECRET: usize = 32;

/// Serve on `listener` until `shutdown` trips, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    max_body: usize,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    crate::ops::metrics_handle();
    let app = router(state, max_body);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
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

    #[test]
    fn serve_refuses_an_empty_auth_token_or_a_short_agent_secret() {
        let err = check_secrets(&settings("", "")).expect_err("refused");
        assert!(err.to_string().contains("TWILIO_AUTH_TOKEN"), "{err}");
        let err = check_secrets(&settings("t", "short")).expect_err("refused");
        assert!(err.to_string().contains("CALLQ_AGENT_SECRET"), "{err}");
        let long = "x".repeat(MIN_AGENT_SECRET);
        assert!(check_secrets(&settings("t", &long)).is_ok());
        assert!(check_secrets(&settings("t", "")).is_ok(), "agent API off");
    }
}
