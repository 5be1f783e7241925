//! The APIs' one error type and the extractors that produce it, so every failure, from a
//! missing token to a body serde cannot read, answers `{"error": {"code", "message",
//! "field"?}}` with a stable code instead of axum's plain-text rejections.

use std::future::Future;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

use super::types::{ErrorBody, ErrorDetail};
use crate::app::{read_body, BodyError};
use crate::store::StoreError;

/// Longest an API request waits on Redis before answering `503 store_unavailable`.
pub const STORE_DEADLINE: Duration = Duration::from_secs(5);

/// An API failure: HTTP status, stable code, message and, for bad input, the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// The same error, naming the request field at fault.
    pub fn on(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 422 `invalid_field`: a value of the right type that is out of range or badly formed.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).on(field)
    }

    pub fn agent_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "agent_not_found",
            format!("no agent {:?}", shorten(id)),
        )
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

/// User input quoted in a message, cut to a readable length.
pub fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid { what, value, why } => {
                let field = if what == "agent id" { "id" } else { what };
                ApiError::invalid(field, format!("invalid {what} {value:?}: {why}"))
            }
            StoreError::UnknownQueue(q) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_queue",
                format!("no queue {q:?} is configured"),
            )
            .on("queues"),
            StoreError::UnknownAgent(id) => ApiError::agent_not_found(&id),
            StoreError::TokenRevoked(_) => ApiError::unauthorized(
                "token_revoked",
                "this agent's tokens were revoked; ask for a new one",
            ),
            StoreError::AgentExists(id) => ApiError::new(
                StatusCode::CONFLICT,
                "agent_exists",
                format!("agent {id:?} already exists; PUT /v1/admin/agents/{id} changes it"),
            ),
            StoreError::AgentBusy(id) => ApiError::new(
                StatusCode::CONFLICT,
                "agent_on_call",
                format!("agent {id:?} holds a call; try again when it ends"),
            ),
            StoreError::Redis(_)
            | StoreError::Pool(_)
            | StoreError::PoolSetup(_)
            | StoreError::Timeout(_) => {
                tracing::warn!(error = %e, "agent API: routing store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "the routing store cannot be reached; try again",
                )
            }
            StoreError::Parse(_) | StoreError::Reply { .. } => {
                tracing::error!(error = %e, "agent API: unexpected reply from the routing store");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "unexpected reply from the routing store",
                )
            }
        }
    }
}

/// Run a store call under [`STORE_DEADLINE`], mapping its errors.
pub async fn store<T>(fut: impl Future<Output = crate::store::Result<T>>) -> Result<T, ApiError> {
    store_raw(fut).await.map_err(ApiError::from)
}

/// Run a store call under [`STORE_DEADLINE`], for callers that look at the error first.
pub async fn store_raw<T>(
    fut: impl Future<Output = crate::store::Result<T>>,
) -> crate::store::Result<T> {
    tokio::time::timeout(STORE_DEADLINE, fut)
        .await
        .unwrap_or(Err(StoreError::Timeout(STORE_DEADLINE)))
}

/// A JSON request body, read under the server's body limit and decoded with errors that name
/// the field (`queues[1].tier`). An absent `Content-Type` is taken as JSON; any other
/// non-JSON type is refused.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        Ok(ApiJson(decode(&read_json_body(req).await?)?))
    }
}

/// A JSON body that may be left out: an empty body reads as `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let bytes = read_json_body(req).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        Ok(OptionalJson(decode(&bytes)?))
    }
}

async fn read_json_body(req: Request) -> Result<Bytes, ApiError> {
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let essence = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let json = essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
    }
    read_body(req).await.map_err(|e| match e {
        BodyError::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than the server accepts",
        ),
        BodyError::TimedOut => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            "the request body was not sent in time",
        ),
        BodyError::Unreadable => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "cannot read the request body",
        ),
    })
}

/// Decode a JSON document into `T`; syntax errors are 400, errors of shape or type 422 with
/// the field's path.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not UTF-8",
        ));
    }
    // serde would read a struct from an array too (`[true]`); the API takes objects only
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            return Err(malformed(&e));
        }
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "the body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        // serde_json reports some type errors as syntax (a number where an enum goes), so
        // the document itself decides: valid JSON means the shape is wrong
        match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Err(syntax) => malformed(&syntax),
            Ok(_) => shape_error(e),
        }
    })?;
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "malformed_json",
        format!("the body is not valid JSON: {e}"),
    )
}

fn shape_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let text = e.into_inner().to_string();
    // serde's own wording: "missing field `x`", "unknown field `x`, expected ..."
    let quoted = text
        .split('`')
        .nth(1)
        .filter(|name| !name.is_empty())
        .map(str::to_string);
    let join = |name: String| {
        if path == "." || path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    let (code, field) = if text.starts_with("missing field") {
        ("missing_field", quoted.map(join))
    } else if text.starts_with("unknown field") {
        // the path already ends at the unknown key
        ("unknown_field", Some(path.clone()).filter(|p| p != "."))
    } else {
        ("invalid_field", Some(path.clone()).filter(|p| p != "."))
    };
    let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, text);
    err.field = field;
    err
}

/// A path parameter, with axum's rejection turned into [`ApiError`].
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::types::{CreateAgentRequest, StatusRequest};

    fn err<T: DeserializeOwned + std::fmt::Debug>(json: &str) -> ApiError {
        decode::<T>(json.as_bytes()).expect_err(json)
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        for bad in [
            "",
            "{",
            "{\"status\":",
            "nul",
            "{} {}",
            "{\"status\":\"paused\"} x",
        ] {
            let e = err::<StatusRequest>(bad);
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "malformed_json"),
                "{bad}"
            );
        }
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e = err::<StatusRequest>("{}");
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("status"))
        );
        let e = err::<StatusRequest>(r#"{"status":"busy"}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("invalid_field", Some("status"))
        );
        let e = err::<StatusRequest>(r#"{"status":"paused","why":1}"#);
        assert_eq!((e.code, e.field.as_deref()), ("unknown_field", Some("why")));
        let e = err::<StatusRequest>(r#"[1]"#);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")
        );
        let e = err::<CreateAgentRequest>(r#"{"id":"a","queues":[{"queue":"s","tier":-1}]}"#);
        assert_eq!(e.field.as_deref(), Some("queues[0].tier"));
        let e = err::<CreateAgentRequest>(r#"{"id":"a","queues":[{"tier":1}]}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("missing_field", Some("queues[0].queue"))
        );
        let e = err::<CreateAgentRequest>(r#"{"id":"a","queues":[{"queue":"s","tier":1,"x":0}]}"#);
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("unknown_field", Some("queues[0].x"))
        );
    }
}
