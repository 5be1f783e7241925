//! The live wallboard: a page for the supervisors' screen (`GET /wallboard`) and the JSON it
//! refreshes from every two seconds (`GET /wallboard/data`): per-queue waiting calls, oldest
//! wait, estimated wait and agents by state, plus the latest transitions from the event
//! stream. It shows counts and call SIDs only, never callers' numbers.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::app::AppState;
use crate::store::read::QueueStats;

const PAGE: &str = include_str!("wallboard.html");

#[derive(Debug, Serialize)]
pub struct WallboardData {
    pub centre: String,
    pub queues: Vec<QueueStats>,
    /// Latest transitions, newest first, as short lines.
    pub events: Vec<String>,
}

pub async fn page() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-cache")], Html(PAGE))
}

pub async fn data(State(app): State<AppState>) -> Response {
    let deadline = app.edge.redis_deadline * 3;
    match tokio::time::timeout(deadline, collect(&app)).await {
        Ok(Ok(d)) => Json(d).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "wallboard: redis error");
            (StatusCode::SERVICE_UNAVAILABLE, "redis unavailable\n").into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "redis too slow\n").into_response(),
    }
}

async fn collect(app: &AppState) -> crate::store::Result<WallboardData> {
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
    Ok(WallboardData {
        centre: app.centre.centre.clone(),
        queues,
        events,
    })
}
