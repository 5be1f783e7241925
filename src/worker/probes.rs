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
    /// Each centre's store (one for most workers).
    stores: Vec<Store>,
    healths: Vec<Arc<TwilioHealth>>,
}

/// The worker's probe and metrics routes, for the centres of `stores` (`healths`: the
/// Twilio health of each centre's wake loop).
pub fn router(stores: Vec<Store>, healths: Vec<Arc<TwilioHealth>>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(p): State<Probes>| async move {
                crate::ops::metrics(&p.stores, Duration::from_secs(1)).await
            }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(Probes { stores, healths })
}

async fn readyz(State(p): State<Probes>) -> impl IntoResponse {
    for store in &p.stores {
        let ping = async { store.ping().await.ok() };
        if tokio::time::timeout(Duration::from_secs(1), ping)
            .await
            .ok()
            .flatten()
            .is_none()
        {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("redis unreachable (centre {})\n", store.centre()),
            );
        }
    }
    match p.healths.iter().find_map(|h| h.problem()) {
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
    stores: Vec<Store>,
    healths: Vec<Arc<TwilioHealth>>,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    crate::ops::metrics_handle();
    axum::serve(listener, router(stores, healths))
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await
}
