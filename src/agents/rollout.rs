//! The admin's rollout switch: `GET /v1/admin/rollout` shows the share of callers callq
//! routes (and where it comes from), `PUT` overrides it for every server of the centre
//! (each follows within [`SWITCH_TTL`](crate::app::SWITCH_TTL)), `DELETE` goes back to the
//! configured `[rollout] share_pct`. Share 0 is an instant rollback to the legacy path.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::AdminAuth;
use super::error::{store, ApiError, ApiJson};
use super::types::ErrorBody;
use crate::app::AppState;
use crate::config::rollout::LegacyPath;

/// `PUT /v1/admin/rollout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    /// Percent of callers (by a stable hash of their number) routed by callq, 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    pub share_pct: u32,
}

/// The rollout as it applies now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RolloutView {
    /// Percent of callers routed by callq now.
    pub share_pct: u8,
    /// The share in the configuration file (`[rollout] share_pct`).
    pub configured_share_pct: u8,
    /// Whether an admin's override is in force (`share_pct` then comes from it).
    pub overridden: bool,
    /// Where the other callers go: `redirect <url>`, `dial <number>`, `client <identity>`,
    /// or absent when no legacy path is configured (the share is then 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<String>,
}

fn view(app: &AppState, overridden: Option<u8>) -> RolloutView {
    let r = &app.centre.rollout;
    RolloutView {
        share_pct: overridden.unwrap_or(r.share_pct),
        configured_share_pct: r.share_pct,
        overridden: overridden.is_some(),
        legacy: r.legacy.as_ref().map(|l| match l {
            LegacyPath::Redirect { url } => format!("redirect {url}"),
            LegacyPath::Dial { number, .. } => format!("dial {number}"),
            LegacyPath::Client { identity, .. } => format!("client {identity}"),
        }),
    }
}

/// The share of callers callq routes, and where it comes from.
#[utoipa::path(
    get,
    path = "/v1/admin/rollout",
    tag = "admin",
    responses(
        (status = 200, description = "The rollout now", body = RolloutView),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn get_rollout(
    State(app): State<AppState>,
    _: AdminAuth,
) -> Result<Json<RolloutView>, ApiError> {
    let share = store(app.store.rollout_share()).await?;
    Ok(Json(view(&app, share)))
}

/// Override the share for every server of the centre; 0 rolls back at once (new callers
/// take the legacy path, callers already in line finish in callq).
#[utoipa::path(
    put,
    path = "/v1/admin/rollout",
    tag = "admin",
    request_body = RolloutRequest,
    responses(
        (status = 200, description = "Applied; every server follows within half a second", body = RolloutView),
        (status = 409, description = "A share below 100 needs `[rollout] legacy` in the configuration (`no_legacy_path`)", body = ErrorBody),
        (status = 422, description = "Invalid body; `field` names the field", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn set_rollout(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiJson(req): ApiJson<RolloutRequest>,
) -> Result<Json<RolloutView>, ApiError> {
    let share = u8::try_from(req.share_pct)
        .ok()
        .filter(|p| *p <= 100)
        .ok_or_else(|| ApiError::invalid("share_pct", "a percentage: 0 to 100"))?;
    if share < 100 && app.centre.rollout.legacy.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_legacy_path",
            "a share below 100 sends callers down the legacy path: configure [rollout] legacy first",
        ));
    }
    let before = store(app.store.set_rollout_share(Some(share), "admin")).await?;
    tracing::warn!(share_pct = share, was = ?before, "rollout share set by an admin");
    Ok(Json(view(&app, Some(share))))
}

/// Drop the override: the configured share applies again.
#[utoipa::path(
    delete,
    path = "/v1/admin/rollout",
    tag = "admin",
    responses(
        (status = 200, description = "The configured share applies again", body = RolloutView),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn clear_rollout(
    State(app): State<AppState>,
    _: AdminAuth,
) -> Result<Json<RolloutView>, ApiError> {
    let before = store(app.store.set_rollout_share(None, "admin")).await?;
    tracing::warn!(was = ?before, "rollout override cleared by an admin");
    Ok(Json(view(&app, None)))
}
