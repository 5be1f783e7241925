//! `callq serve`: assembles the HTTP router (Twilio webhooks, agent and admin APIs, ops
//! endpoints) with its limits, and runs it until shutdown.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::Router;
use tokio::net::TcpListener;

use crate::app::{AgentSettings, AppState, EdgeSettings};
use crate::cli::ServeArgs;
use crate::config::CentreConfig;
use crate::shutdown::Shutdown;
use crate::store::Store;

/// The whole HTTP surface of `callq serve`.
pub fn router(state: AppState, max_body: usize) -> Router {
    Router::new()
        .merge(crate::twilio::webhooks::routes())
        .merge(crate::agents::routes())
        .merge(crate::ops::routes())
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Build the shared state from flags and the centre's configuration, and make sure Redis
/// holds the configured queues.
pub async fn state_from_args(args: &ServeArgs, centre: CentreConfig) -> anyhow::Result<AppState> {
    let store = Store::connect(
        &args.common.redis_url,
        &centre.centre,
        args.common.redis_pool,
    )?;
    for q in centre.queue_settings() {
        store.configure_queue(&q).await?;
    }
    Ok(AppState {
        store,
        centre: Arc::new(centre),
        edge: Arc::new(EdgeSettings {
            public_url: args.twilio.public_url.trim_end_matches('/').to_string(),
            auth_token: args.twilio.auth_token.clone(),
            redis_deadline: args.redis_deadline,
        }),
        agents: Arc::new(AgentSettings {
            admin_token: args.admin_token.clone(),
            agent_secret: args.agent_secret.as_bytes().to_vec(),
            heartbeat_ttl: args.heartbeat_ttl,
        }),
    })
}

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
