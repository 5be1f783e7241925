//! The agent API (heartbeat, status) and the admin API, with the tokens that guard them, and
//! `callq agent`, a small client of the same API.
//!
//! - [`api`]: `/v1/agents/{id}/...`, called by the agent's desktop with its own token.
//! - [`admin`]: `/v1/admin/...`, called with the admin token; [`rollout`]: the admin's
//!   rollout switch; [`features`]: the admin's feature switches.
//! - [`auth`]: the extractors that check both kinds of token; [`token`]: agent tokens.
//! - [`types`]: every request and response body, shared with [`client`].
//! - [`error`]: the one JSON error shape and the extractors that produce it.
//! - [`openapi`]: the OpenAPI document, generated from the handlers and types.
//! - [`voice_token`]: Twilio Voice access tokens for the agent's desktop; [`console`]: the
//!   agent console page (`/console`), a browser softphone on this API.

pub mod admin;
pub mod api;
pub mod auth;
pub mod client;
pub mod console;
pub mod error;
pub mod features;
pub mod openapi;
pub mod rollout;
pub mod token;
pub mod types;
pub mod voice_token;

use axum::http::StatusCode;
use axum::routing::{any, get, post, put, MethodRouter};
use axum::Router;

use crate::app::AppState;
use error::ApiError;

/// Routes of the agent and admin APIs (`/v1/...`). Unknown `/v1` paths and methods answer
/// in the API's JSON error shape too.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agents/{id}/heartbeat", json405(post(api::heartbeat)))
        .route("/v1/agents/{id}/status", json405(put(api::set_status)))
        .route("/v1/agents/{id}", json405(get(api::me)))
        .route("/v1/agents/{id}/token", json405(post(api::refresh_token)))
        .route("/v1/agents/{id}/queues", json405(get(api::my_queues)))
        .route("/v1/agents/{id}/transfer", json405(post(api::transfer)))
        .route(
            "/v1/agents/{id}/voice-token",
            json405(post(voice_token::voice_token)),
        )
        .route(
            "/v1/admin/agents",
            json405(post(admin::create_agent).get(admin::list_agents)),
        )
        .route(
            "/v1/admin/agents/{id}",
            json405(
                get(admin::get_agent)
                    .put(admin::update_agent)
                    .delete(admin::delete_agent),
            ),
        )
        .route(
            "/v1/admin/agents/{id}/token",
            json405(post(admin::issue_token)),
        )
        .route(
            "/v1/admin/agents/{id}/token/revoke",
            json405(post(admin::revoke_tokens)),
        )
        .route(
            "/v1/admin/agents/{id}/status",
            json405(put(admin::set_agent_status)),
        )
        .route("/v1/admin/queues", json405(get(admin::list_queues)))
        .route("/v1/admin/calls/{sid}", json405(get(admin::get_call)))
        .route("/v1/admin/calls/{sid}/end", json405(post(admin::end_call)))
        .route(
            "/v1/admin/rollout",
            json405(
                get(rollout::get_rollout)
                    .put(rollout::set_rollout)
                    .delete(rollout::clear_rollout),
            ),
        )
        .route("/v1/admin/features", json405(get(features::list_features)))
        .route(
            "/v1/admin/features/{name}",
            json405(put(features::set_feature).delete(features::clear_feature)),
        )
        .route("/v1/openapi.json", json405(get(openapi::openapi_json)))
        .route("/v1/{*rest}", any(not_found))
        .merge(console::routes())
}

fn json405(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.fallback(|| async {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this path does not take that method; see /v1/openapi.json",
        )
    })
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API path; see /v1/openapi.json",
    )
}
