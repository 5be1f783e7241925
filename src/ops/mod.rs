//! Operations: Prometheus metrics, liveness and readiness probes, the live wallboard (for
//! operators only, see `access`), and `callq inspect`.

pub mod access;
pub mod inspect;
pub mod wallboard;

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::app::AppState;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Install the process-wide Prometheus recorder (once; later calls reuse it).
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(serve_metrics))
        .route("/wallboard", get(wallboard::page))
        .route("/wallboard/login", post(wallboard::login))
        .route("/wallboard/logout", post(wallboard::logout))
        .route("/wallboard/data", get(wallboard::data))
}

async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let ping = async {
        let mut c = app.store.conn().await.ok()?;
        redis::cmd("PING").query_async::<String>(&mut *c).await.ok()
    };
    match tokio::time::timeout(app.edge.redis_deadline * 3, ping).await {
        Ok(Some(_)) => (StatusCode::OK, "ready\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable\n"),
    }
}

/// `GET /metrics` on `callq serve`: open, or behind `CALLQ_METRICS_TOKEN` when one is set.
async fn serve_metrics(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> axum::response::Response {
    if !access::metrics_allowed(&app.ops.metrics_token, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
            "send Authorization: Bearer <CALLQ_METRICS_TOKEN>\n",
        )
            .into_response();
    }
    metrics().await.into_response()
}

/// `GET /metrics`: the process's Prometheus text (serve's and the worker's listeners).
pub async fn metrics() -> impl IntoResponse {
    match metrics_handle() {
        Some(h) => (StatusCode::OK, h.render()),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable\n".into(),
        ),
    }
}
