//! The admin's feature switches: `GET /v1/admin/features` shows every feature of
//! [`crate::config::features`] as it applies now (and where that comes from), `PUT
//! /v1/admin/features/{name}` turns one on or off for every server and worker of the centre
//! (each follows within [`SWITCH_TTL`](crate::app::SWITCH_TTL); the `fallback` switch is read
//! by the routing script itself, so it applies to the next result at once), `DELETE` goes back
//! to the file's `[features]`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::AdminAuth;
use super::error::{store, ApiError, ApiJson, ApiPath};
use super::types::ErrorBody;
use crate::app::AppState;
use crate::config::features::Feature;

/// `PUT /v1/admin/features/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureRequest {
    /// On or off, for every server and worker of the centre.
    pub enabled: bool,
}

/// One feature as it applies now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeatureView {
    /// `callbacks`, `priority`, `device_check` or `fallback`.
    pub name: String,
    /// Whether it is on now.
    pub enabled: bool,
    /// The setting in the configuration file (`[features]`).
    pub configured: bool,
    /// Whether an admin's override is in force (`enabled` then comes from it).
    pub overridden: bool,
    /// What it does, on and off.
    pub description: String,
}

/// Every feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeatureList {
    pub features: Vec<FeatureView>,
}

fn view(app: &AppState, f: Feature, overridden: Option<bool>) -> FeatureView {
    let configured = app.centre.features.get(f);
    FeatureView {
        name: f.as_str().to_string(),
        enabled: overridden.unwrap_or(configured),
        configured,
        overridden: overridden.is_some(),
        description: f.describe().to_string(),
    }
}

fn feature(name: &str) -> Result<Feature, ApiError> {
    Feature::parse(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "feature_not_found",
            "no such feature: callbacks, priority, device_check or fallback",
        )
    })
}

/// Every feature, as it applies now.
#[utoipa::path(
    get,
    path = "/v1/admin/features",
    tag = "admin",
    responses(
        (status = 200, description = "Every feature now", body = FeatureList),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn list_features(
    State(app): State<AppState>,
    _: AdminAuth,
) -> Result<Json<FeatureList>, ApiError> {
    let sw = store(app.store.switches()).await?;
    let over = |f: Feature| {
        sw.features
            .iter()
            .find(|(n, _)| n == f.as_str())
            .map(|(_, on)| *on)
    };
    Ok(Json(FeatureList {
        features: Feature::ALL
            .into_iter()
            .map(|f| view(&app, f, over(f)))
            .collect(),
    }))
}

/// Turn a feature on or off for every server and worker of the centre.
#[utoipa::path(
    put,
    path = "/v1/admin/features/{name}",
    tag = "admin",
    params(("name" = String, Path, description = "`callbacks`, `priority`, `device_check` or `fallback`")),
    request_body = FeatureRequest,
    responses(
        (status = 200, description = "Applied; every server follows within half a second", body = FeatureView),
        (status = 404, description = "No such feature (`feature_not_found`)", body = ErrorBody),
        (status = 422, description = "Invalid body; `field` names the field", body = ErrorBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn set_feature(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiPath(name): ApiPath<String>,
    ApiJson(req): ApiJson<FeatureRequest>,
) -> Result<Json<FeatureView>, ApiError> {
    let f = feature(&name)?;
    let before = store(
        app.store
            .set_feature(f.as_str(), Some(req.enabled), "admin"),
    )
    .await?;
    tracing::warn!(feature = f.as_str(), enabled = req.enabled, was = ?before, "feature switched by an admin");
    Ok(Json(view(&app, f, Some(req.enabled))))
}

/// Drop the override: the file's setting applies again.
#[utoipa::path(
    delete,
    path = "/v1/admin/features/{name}",
    tag = "admin",
    params(("name" = String, Path, description = "`callbacks`, `priority`, `device_check` or `fallback`")),
    responses(
        (status = 200, description = "The configured setting applies again", body = FeatureView),
        (status = 404, description = "No such feature (`feature_not_found`)", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 403, description = "Admin API disabled", body = ErrorBody),
    ),
    security(("admin_token" = []))
)]
pub async fn clear_feature(
    State(app): State<AppState>,
    _: AdminAuth,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<FeatureView>, ApiError> {
    let f = feature(&name)?;
    let before = store(app.store.set_feature(f.as_str(), None, "admin")).await?;
    tracing::warn!(feature = f.as_str(), was = ?before, "feature override cleared by an admin");
    Ok(Json(view(&app, f, None)))
}
