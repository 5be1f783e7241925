//! The agent API (heartbeat, status) and the admin API, with the tokens that guard them, and
//! `callq agent`, a small client of the same API.

pub mod client;
pub mod token;

use axum::Router;

use crate::app::AppState;

/// Routes of the agent and admin APIs (`/v1/...`).
pub fn routes() -> Router<AppState> {
    Router::new()
}
