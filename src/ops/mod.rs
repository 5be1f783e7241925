//! Operations: Prometheus metrics, liveness and readiness probes, the live wallboard (for
//! operators only, see `access`), and `callq inspect`.

pub mod access;
pub mod inspect;
pub mod wallboard;

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::AppState;
use crate::store::Store;

static PROMETHEUS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Buckets (seconds) of a caller's wait to answer: the plan's targets (20 s service level,
/// 2 min average) fall on bucket edges.
const WAIT_BUCKETS: &[f64] = &[
    5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0,
];
/// Buckets (seconds) of callq's own latencies (webhooks, assigning an agent); 2 s is the
/// plan's call processing target.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0,
];

/// Install the process-wide Prometheus recorder (once; later calls reuse it). Durations are
/// histograms (aggregatable across replicas), not summaries.
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    PROMETHEUS
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("callq_wait_to_answer_seconds".into()),
                    WAIT_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("callq_webhook_seconds".into()),
                        LATENCY_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("callq_assign_seconds".into()),
                        LATENCY_BUCKETS,
                    )
                })
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}

/// The centre's live queue numbers as gauges, read from Redis when scraped: O(queues), since
/// the scripts keep the agent counts. Every process reports the same centre-wide values (take
/// `max` across instances). `callq_redis_up` is 0 when Redis did not answer in time; the
/// queue gauges then keep their last values.
async fn refresh_queue_gauges(store: &Store, deadline: Duration) {
    let read = async {
        for q in store.queue_names().await? {
            let s = store.queue_stats(&q).await?;
            metrics::gauge!("callq_queue_waiting_calls", "queue" => q.clone())
                .set(s.waiting as f64);
            metrics::gauge!("callq_queue_oldest_wait_seconds", "queue" => q.clone())
                .set(s.oldest_wait_s);
            metrics::gauge!("callq_queue_estimated_wait_seconds", "queue" => q.clone())
                .set(s.estimated_wait_s);
            for (state, n) in &s.agents {
                metrics::gauge!("callq_queue_agents", "queue" => q.clone(), "state" => state.clone())
                    .set(*n as f64);
            }
        }
        Ok::<_, crate::store::StoreError>(())
    };
    let up = matches!(tokio::time::timeout(deadline, read).await, Ok(Ok(())));
    metrics::gauge!("callq_redis_up").set(if up { 1.0 } else { 0.0 });
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
    let ping = async { app.store.ping().await.ok() };
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
    metrics(
        std::slice::from_ref(&app.store),
        app.edge.redis_deadline * 3,
    )
    .await
    .into_response()
}

/// `GET /metrics`: the process's Prometheus text (serve's, the worker's and the archive's
/// listeners), after reading, within `deadline`, what the centres it serves (`stores`) show:
/// for one centre its queue gauges and `callq_redis_up`; for several (a worker with
/// `CALLQ_CENTRES`) no queue gauges, which carry no centre, but `callq_redis_up`, 1 only when
/// every centre's Redis answered a PING, so `CallqRedisDown` watches those processes too;
/// for none (the archive) nothing.
pub async fn metrics(stores: &[Store], deadline: Duration) -> impl IntoResponse {
    // the recorder first: a gauge set before it exists would be lost
    let handle = metrics_handle();
    match stores {
        [] => {}
        [one] => refresh_queue_gauges(one, deadline).await,
        several => {
            let pings = async {
                for store in several {
                    store.ping().await?;
                }
                Ok::<_, crate::store::StoreError>(())
            };
            let up = matches!(tokio::time::timeout(deadline, pings).await, Ok(Ok(())));
            metrics::gauge!("callq_redis_up").set(if up { 1.0 } else { 0.0 });
        }
    }
    match handle {
        Some(h) => (StatusCode::OK, h.render()),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable\n".into(),
        ),
    }
}
