//! The OpenAPI 3 document of the agent and admin APIs, served at `GET /v1/openapi.json`. It
//! is generated from the handlers' `#[utoipa::path]` attributes and the body types in
//! [`super::types`], so it cannot drift from the code; the tests check that every route the
//! router serves is in it and every operation in it is served, and that every status a route
//! answers is one its operation lists. What the extractors every handler shares can answer (a
//! body refused, a path segment that is not UTF-8, Redis out of reach) is added to each
//! operation by [`SharedAnswers`]; `scripts/api-fuzz.sh` checks the running server against
//! this document with schemathesis.

use std::sync::OnceLock;

use axum::Json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Ref, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{admin, api, features, rollout, voice_token};
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
        api::my_queues,
        api::transfer,
        voice_token::voice_token,
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
        features::list_features,
        features::set_feature,
        features::clear_feature,
        openapi_json,
    ),
    modifiers(&BearerSchemes, &SharedAnswers),
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
                "A token for one agent (`v2.<id>.<generation>.<expiry>.<mac>`), valid for \
                 that agent's routes only, until its expiry or until the agent's tokens are \
                 revoked",
            ),
        );
        components.add_security_scheme(
            "admin_token",
            bearer("opaque", "The server's admin token (CALLQ_ADMIN_TOKEN)"),
        );
    }
}

/// The names the store accepts for agent ids, queues and CallSids (`store::check_name`), as a
/// JSON Schema pattern; path parameters `{id}`, `{sid}` and `{name}` are described by it (another value
/// is 404).
pub const NAME_PATTERN: &str = "^[A-Za-z0-9_.-]{1,64}$";

/// What the extractors shared by every handler can answer, added to each operation:
///
/// - an operation with a body: 400 `malformed_json`, 408 `body_timeout` (not all sent within
///   10 s), 413 `body_too_large`, 415 `unsupported_media_type`, 422 (bad shape or value);
/// - an operation with a path parameter: 400 `invalid_path` (a segment that is not UTF-8);
/// - an operation behind a token: 503 `store_unavailable` (Redis out of reach or late).
///
/// It also describes `{id}`, `{sid}` and `{name}` by [`NAME_PATTERN`], and an optional body
/// (`Option<T>`, the token routes') as `T` or nothing, never `null`.
struct SharedAnswers;

impl Modify for SharedAnswers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for item in doc.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                shared_answers(op);
            }
        }
    }
}

fn shared_answers(op: &mut Operation) {
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build()
    };
    let has_body = op.request_body.is_some();
    let has_path = op
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Path);
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());

    for p in op.parameters.iter_mut().flatten() {
        if p.parameter_in == ParameterIn::Path && matches!(p.name.as_str(), "id" | "sid" | "name") {
            p.schema = Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(NAME_PATTERN))
                    .into(),
            );
        }
    }
    if let Some(body) = op.request_body.as_mut() {
        if body.required != Some(Required::True) {
            for content in body.content.values_mut() {
                if let Some(RefOr::T(Schema::OneOf(one))) = &content.schema {
                    let mut others = one.items.iter().filter(|item| !is_null(item));
                    if let (Some(only), None) = (others.next(), others.next()) {
                        content.schema = Some(only.clone());
                    }
                }
            }
        }
    }

    let responses = &mut op.responses.responses;
    let bad_request = match (has_body, has_path) {
        (true, true) => Some(
            "Malformed JSON (`malformed_json`), or a path segment that is not UTF-8 \
             (`invalid_path`)",
        ),
        (true, false) => Some("Malformed JSON (`malformed_json`)"),
        (false, true) => Some("A path segment that is not UTF-8 (`invalid_path`)"),
        (false, false) => None,
    };
    if let Some(description) = bad_request {
        responses.insert("400".into(), RefOr::T(error(description)));
    }
    if has_body {
        let mut add = |code: &str, description: &str| {
            responses
                .entry(code.into())
                .or_insert_with(|| RefOr::T(error(description)));
        };
        add("408", "The body was not sent within 10 s (`body_timeout`)");
        add(
            "413",
            "The body is larger than the server accepts (`body_too_large`)",
        );
        add(
            "415",
            "A Content-Type other than JSON (`unsupported_media_type`)",
        );
        add("422", "Invalid body; `field` names the field");
    }
    if secured {
        responses.entry("503".into()).or_insert_with(|| {
            RefOr::T(error(
                "Redis cannot be reached; try again (`store_unavailable`)",
            ))
        });
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null))
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
