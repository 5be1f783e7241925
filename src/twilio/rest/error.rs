//! [`RestError`]: everything that can go wrong talking to Twilio, read from Twilio's error JSON
//! (or whatever answered instead), and what the caller should do about it (retry, abandon the
//! call, or replay only what Twilio certainly did not process). Twilio's error codes callq acts on
//! are named here.

use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

/// Error 21220: the call is not in progress (it ended); it cannot be redirected.
pub const CODE_CALL_NOT_IN_PROGRESS: u32 = 21220;
/// Error 20404: the resource was not found.
pub const CODE_NOT_FOUND: u32 = 20404;
/// Error 20429: too many concurrent requests; never processed, safe to retry.
pub const CODE_TOO_MANY_REQUESTS: u32 = 20429;
/// Error 32018: inline TwiML longer than 4,000 characters.
pub const CODE_TWIML_TOO_LONG: u32 = 32018;

/// Longest slice of a non-JSON error body kept in [`RestError::Api::message`].
const MAX_ERROR_BODY_CHARS: usize = 300;

/// Twilio's error JSON, the body of every refusal its REST API answers with. Twilio's own
/// answers always carry all four fields; [`RestError::from_response`] also reads bodies that
/// lack some (or are not JSON at all), since something other than Twilio may answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: u32,
    pub message: String,
    /// `https://www.twilio.com/docs/errors/{code}`.
    pub more_info: String,
    /// The HTTP status, repeated.
    pub status: u16,
}

impl ErrorBody {
    /// Twilio's answer with error `code` and HTTP `status`.
    pub fn new(status: u16, code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            more_info: format!("https://www.twilio.com/docs/errors/{code}"),
            status,
        }
    }
}

impl From<ErrorBody> for RestError {
    /// The error the client makes of this answer.
    fn from(body: ErrorBody) -> Self {
        RestError::Api {
            status: body.status,
            code: Some(body.code),
            message: body.message,
            more_info: Some(body.more_info),
        }
    }
}

/// What a failed request says about the request's call, and so what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// 21220: the call is not in progress. It may have ended (the caller hung up) or may not
    /// have started running TwiML yet; only Twilio's view of the call (a fetch) tells which.
    NotInProgress,
    /// 429 / 20429, 5xx, timeouts, connection failures, the breaker open: Twilio is out of
    /// reach or overloaded; retry with backoff, and count no one's fault.
    Outage,
    /// 401 / 403, or 404 on a call Twilio must know (20404, or a 404 that is not Twilio's
    /// JSON): the credentials, account or API base are wrong. Nothing works until an operator
    /// fixes the configuration; it says nothing about the caller.
    Misconfigured,
    /// Another 4xx: Twilio refuses this request for good (an invalid number, a call it cannot
    /// modify). Retrying the same request changes nothing.
    Refused,
    /// Refused before sending (invalid request, TwiML too long): callq's own request is wrong.
    Local,
}

/// Everything that can go wrong talking to Twilio.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestError {
    /// Twilio (or something in front of it) answered with a non-2xx status. `code` and
    /// `more_info` come from Twilio's error JSON when there was one; `status` is the HTTP status.
    #[error("{}", describe_api(*.status, *.code, .message))]
    Api {
        status: u16,
        code: Option<u32>,
        message: String,
        more_info: Option<String>,
    },
    /// The request took longer than the request timeout, or ran into the retry deadline. Twilio
    /// may or may not have acted on it.
    #[error("Twilio request timed out (it may or may not have been processed)")]
    Timeout,
    /// No connection could be made: the request was certainly not sent.
    #[error("could not connect to Twilio: {0}")]
    Connect(String),
    /// The connection failed after it was made (reset, TLS, protocol error).
    #[error("transport error talking to Twilio: {0}")]
    Transport(String),
    /// The client's [request gate](super::RequestGate) (the worker's circuit breaker, open
    /// while Twilio looks down) refused the request: it was not sent.
    #[error("Twilio circuit breaker is open; request not sent")]
    CircuitOpen,
    /// Inline TwiML longer than Twilio accepts; refused locally, nothing was sent.
    #[error(
        "inline TwiML is {len} characters; Twilio accepts at most 4000 (error 32018): \
         shorten it or serve it from a URL"
    )]
    TwimlTooLong { len: usize },
    /// A 2xx answer whose body is not the expected resource JSON.
    #[error("unexpected Twilio response body (HTTP {status}): {message}")]
    Decode { status: u16, message: String },
    /// A request or configuration refused locally; nothing was sent.
    #[error("invalid Twilio request or configuration: {0}")]
    Invalid(String),
}

fn describe_api(status: u16, code: Option<u32>, message: &str) -> String {
    match code {
        Some(code) => format!("Twilio API error {code} (HTTP {status}): {message}"),
        None => format!("Twilio API error (HTTP {status}): {message}"),
    }
}

impl RestError {
    /// Worth retrying with backoff: 429 / 20429, 5xx, timeouts and connection failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            RestError::Api { status, code, .. } => {
                *status == 429
                    || *code == Some(CODE_TOO_MANY_REQUESTS)
                    || (500..600).contains(status)
            }
            RestError::Timeout | RestError::Connect(_) | RestError::Transport(_) => true,
            RestError::CircuitOpen
            | RestError::TwimlTooLong { .. }
            | RestError::Decode { .. }
            | RestError::Invalid(_) => false,
        }
    }

    /// What kind of failure this is, for deciding what to do with the request's call.
    pub fn kind(&self) -> FailureKind {
        if self.is_retryable() || matches!(self, RestError::CircuitOpen) {
            return FailureKind::Outage;
        }
        match self {
            RestError::Api { code, .. } if *code == Some(CODE_CALL_NOT_IN_PROGRESS) => {
                FailureKind::NotInProgress
            }
            RestError::Api {
                status: 401 | 403 | 404,
                ..
            } => FailureKind::Misconfigured,
            RestError::Api { .. } | RestError::Decode { .. } => FailureKind::Refused,
            _ => FailureKind::Local,
        }
    }

    /// Twilio certainly did not act on the request (refused locally, never connected, breaker
    /// open, or 429 / 20429 which Twilio documents as never processed). Only these are safe to
    /// replay for a non-idempotent request such as creating a call.
    pub fn is_unprocessed(&self) -> bool {
        match self {
            RestError::Api { status, code, .. } => {
                *status == 429 || *code == Some(CODE_TOO_MANY_REQUESTS)
            }
            RestError::Connect(_)
            | RestError::CircuitOpen
            | RestError::TwimlTooLong { .. }
            | RestError::Invalid(_) => true,
            RestError::Timeout | RestError::Transport(_) | RestError::Decode { .. } => false,
        }
    }

    /// Twilio's error code, if the answer carried one.
    pub fn code(&self) -> Option<u32> {
        match self {
            RestError::Api { code, .. } => *code,
            RestError::TwimlTooLong { .. } => Some(CODE_TWIML_TOO_LONG),
            _ => None,
        }
    }

    pub(super) fn from_reqwest(err: reqwest::Error) -> Self {
        let detail = error_chain(&err);
        if err.is_connect() {
            RestError::Connect(detail)
        } else if err.is_timeout() {
            RestError::Timeout
        } else {
            RestError::Transport(detail)
        }
    }

    /// Builds an [`RestError::Api`] from a non-2xx answer, tolerating bodies that are not
    /// Twilio's error JSON (proxies, load balancers, empty bodies).
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let obj = json.as_ref().and_then(|v| v.as_object());
        let code = obj.and_then(|o| o.get("code")).and_then(|c| {
            c.as_u64()
                .or_else(|| c.as_str().and_then(|s| s.trim().parse().ok()))
                .and_then(|c| u32::try_from(c).ok())
        });
        let more_info = obj
            .and_then(|o| o.get("more_info"))
            .and_then(|m| m.as_str())
            .map(str::to_owned);
        let message = obj
            .and_then(|o| o.get("message"))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("no response body")
                        .to_owned()
                } else {
                    text.chars().take(MAX_ERROR_BODY_CHARS).collect()
                }
            });
        RestError::Api {
            status,
            code,
            message,
            more_info,
        }
    }
}

pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_by_what_they_say_about_the_call() {
        struct Case {
            status: u16,
            body: &'static [u8],
            want: FailureKind,
        }
        let cases = [
            Case {
                status: 400,
                body: br#"{"code":21220,"message":"Call is not in-progress"}"#,
                want: FailureKind::NotInProgress,
            },
            Case {
                status: 404,
                body: br#"{"code":20404,"message":"not found"}"#,
                want: FailureKind::Misconfigured,
            },
            Case {
                status: 401,
                body: br#"{"code":20003,"message":"Authenticate"}"#,
                want: FailureKind::Misconfigured,
            },
            Case {
                status: 403,
                body: b"",
                want: FailureKind::Misconfigured,
            },
            Case {
                status: 400,
                body: br#"{"code":21211,"message":"Invalid 'To' Phone Number"}"#,
                want: FailureKind::Refused,
            },
            Case {
                status: 429,
                body: br#"{"code":20429,"message":"Too Many Requests"}"#,
                want: FailureKind::Outage,
            },
            Case {
                status: 503,
                body: b"",
                want: FailureKind::Outage,
            },
        ];
        for c in cases {
            let e = RestError::from_response(c.status, c.body);
            assert_eq!(e.kind(), c.want, "{e}");
        }
        assert_eq!(RestError::Timeout.kind(), FailureKind::Outage);
        assert_eq!(RestError::CircuitOpen.kind(), FailureKind::Outage);
        assert_eq!(
            RestError::TwimlTooLong { len: 5000 }.kind(),
            FailureKind::Local
        );
    }

    #[test]
    fn twilios_error_json_reads_back_as_the_error_it_models() {
        let body = ErrorBody::new(400, CODE_CALL_NOT_IN_PROGRESS, "Call is not in-progress.");
        let json = serde_json::to_vec(&body).expect("serialize");
        assert_eq!(
            RestError::from_response(400, &json),
            RestError::from(body),
            "{}",
            String::from_utf8_lossy(&json)
        );
    }

    #[test]
    fn error_bodies_that_are_not_twilio_json_fall_back() {
        let e = RestError::from_response(502, b"");
        assert_eq!(
            e,
            RestError::Api {
                status: 502,
                code: None,
                message: "Bad Gateway".to_owned(),
                more_info: None
            }
        );
        assert!(e.is_retryable());
        let e = RestError::from_response(503, &[b'x'; 10_000]);
        assert!(
            matches!(&e, RestError::Api { message, .. } if message.len() == MAX_ERROR_BODY_CHARS)
        );
        let e = RestError::from_response(400, br#"{"code":"21220","message":"gone"}"#);
        assert_eq!(e.kind(), FailureKind::NotInProgress);
        let e = RestError::from_response(400, br#"[1,2,3]"#);
        assert_eq!(e.code(), None);
        let e = RestError::from_response(404, b"<html>Not Found</html>");
        assert_eq!(
            e.kind(),
            FailureKind::Misconfigured,
            "a 404 that is not Twilio's answer about a call: a wrong API base"
        );
        assert!(RestError::from_response(429, b"slow down").is_retryable());
        assert!(
            !RestError::from_response(401, br#"{"code":20003,"message":"Authenticate"}"#)
                .is_retryable()
        );
    }
}
