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
        .merge(crate::webhooks::routes())
        .merge(crate::agents::routes())
        .merge(crate::ops::routes())
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Build the shared state from flags and the centre's configuration, and make sure Redis
/// holds the configured queues.
pub async fn state_from_args(args: &ServeArgs, centre: CentreConfig) -> anyhow::Result<AppState> {
    check_secrets(args)?;
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
        stats_cache: Default::default(),
    })
}

/// Refuse to start with secrets that would leave webhooks or agent tokens unprotected.
fn check_secrets(args: &ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        !args.twilio.auth_token.trim().is_empty(),
        "TWILIO_AUTH_TOKEN (--auth-token) is empty: it is what every Twilio webhook is signed with"
    );
    let secret = args.agent_secret.len();
    anyhow::ensure!(
        secret == 0 || secret >= MIN_AGENT_SECRET,
        "CALLQ_AGENT_SECRET (--agent-secret) has {secret} bytes; use at least {MIN_AGENT_SECRET} \
         random bytes (or leave it empty to turn the agent API off)"
    );
    if secret == 0 {
        tracing::warn!("CALLQ_AGENT_SECRET is empty: the agent API answers 403");
    }
    if args.admin_token.is_empty() {
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
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(extra: &[&str]) -> ServeArgs {
        let mut argv = vec!["callq"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv) {
            Ok(c) => c.serve,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn serve_refuses_an_empty_auth_token_or_a_short_agent_secret() {
        let err = check_secrets(&args(&["--auth-token", ""])).expect_err("refused");
        assert!(err.to_string().contains("TWILIO_AUTH_TOKEN"), "{err}");
        let err = check_secrets(&args(&["--auth-token", "t", "--agent-secret", "short"]))
            .expect_err("refused");
        assert!(err.to_string().contains("CALLQ_AGENT_SECRET"), "{err}");
        let long = "x".repeat(MIN_AGENT_SECRET);
        assert!(check_secrets(&args(&["--auth-token", "t", "--agent-secret", &long])).is_ok());
        assert!(
            check_secrets(&args(&["--auth-token", "t"])).is_ok(),
            "agent API off"
        );
    }
}
