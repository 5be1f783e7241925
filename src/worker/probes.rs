//! The worker's own small HTTP listener, so an orchestrator can probe it and Prometheus can
//! scrape it: `/healthz` (the process answers), `/readyz` (Redis answers and Twilio accepts
//! this worker's credentials; 503 with the reason otherwise) and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use super::health::TwilioHealth;
use crate::shutdown::Shutdown;
use crate::store::Store;

#[derive(Clone)]
struct Probes {
    store: Store,
    health: Arc<TwilioHealth>,
}

/// The worker's probe and metrics routes.
pub fn router(store: Store, health: Arc<TwilioHealth>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(p): State<Probes>| async move {
                crate::ops::metrics(&p.store, Duration::from_secs(1)).await
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(Probes { store, health })
}

async fn readyz(State(p): State<Probes>) -> impl IntoResponse {
    let ping = async { p.store.ping().await.ok() };
    if tokio::time::timeout(Duration::from_secs(1), ping)
        .await
        .ok()
        .flatten()
        .is_none()
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "redis unreachable\n".to_string(),
        );
    }
    match p.health.problem() {
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("Twilio refuses this worker: {why}\n"),
        ),
        None => (StatusCode::OK, "ready\n".to_string()),
    }
}

/// Serve the probes on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    store: Store,
    health: Arc<TwilioHealth>,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    crate::ops::metrics_handle();
    axum::serve(listener, router(store, health))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}
