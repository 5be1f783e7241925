//! The OpenAPI 3 document of the agent and admin APIs, served at `GET /v1/openapi.json`. It
//! is generated from the handlers' `#[utoipa::path]` attributes and the body types in
//! [`super::types`], so it cannot drift from the code; the tests check that every route the
//! router serves is in it and every operation in it is served.

use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

use super::{admin, api, rollout};
use crate::store::{AgentStatus, CallKind, CallState, RequestedStatus};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "callq agent and admin API",
        description = "Agents heartbeat and set their status with a per-agent bearer token \
            (`agent_token`, issued by `POST /v1/admin/agents/{id}/token`); supervisors and \
            provisioning use the admin token (`admin_token`). Every error is \
            `{\"error\": {\"code\", \"message\", \"field\"?}}` with a stable `code`."
    ),
    paths(
        api::heartbeat,
        api::set_status,
        api::me,
        api::refresh_token,
        admin::create_agent,
        admin::list_agents,
        admin::get_agent,
        admin::update_agent,
        admin::delete_agent,
        admin::issue_token,
        admin::revoke_tokens,
        admin::set_agent_status,
        admin::list_queues,
        admin::get_call,
        admin::end_call,
        rollout::get_rollout,
        rollout::set_rollout,
        rollout::clear_rollout,
        openapi_json,
    ),
    modifiers(&BearerSchemes),
    tags(
        (name = "agent", description = "Called by the agent's desktop with its own token"),
        (name = "admin", description = "Called by supervisors and provisioning with the admin token"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// The two bearer schemes the operations name in their `security`.
struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |format: &str, description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(format)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "agent_token",
            bearer(
                "callq-agent-v1",
                "A token for one agent (`v1.<id>.<expiry>.<mac>`), valid for that agent's \
                 routes only, until its expiry",
            ),
        );
        components.add_security_scheme(
            "admin_token",
            bearer("opaque", "The server's admin token (CALLQ_ADMIN_TOKEN)"),
        );
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    Json(DOC.get_or_init(ApiDoc::openapi))
}

/// The store's string enums, described by their stored forms.
macro_rules! string_enum_schema {
    ($($t:ty => $description:literal),* $(,)?) => {$(
        impl utoipa::PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(<$t>::ALL.iter().map(|v| v.as_str())))
                    .description(Some($description))
                    .into()
            }
        }
        impl utoipa::ToSchema for $t {}
    )*};
}

string_enum_schema! {
    AgentStatus => "Where an agent stands in routing",
    RequestedStatus => "A status an agent or supervisor may ask for",
    CallState => "A call's place in the state machine",
    CallKind => "A caller holding (inbound) or a callback request",
}
