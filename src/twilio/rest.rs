//! Twilio REST client used by the worker: redirect a live call to new TwiML or a URL, hang it up,
//! dequeue a queue member, and create outbound calls (agent-first callbacks).
//!
//! Everything Twilio can answer is turned into a [`RestError`] (nothing from the network panics),
//! and the error says what the worker should do next: [`RestError::is_retryable`] (429 / 20429,
//! 5xx, timeouts, connection failures) and [`RestError::is_call_gone`] (21220, 20404, HTTP 404:
//! the caller hung up, so abandon instead of retrying). [`with_retry`] retries with full-jitter
//! exponential backoff but never past a deadline (the offer lease), and a shared
//! [`CircuitBreaker`] makes every request fail fast while Twilio is unreachable, so leases are not
//! burnt waiting on a dead upstream.
//!
//! Paths and parameter names follow Twilio's OpenAPI description (`twilio_api_v2010.json`):
//! `UpdateCall` (`Url`, `Method`, `Twiml`, `Status`), `CreateCall` (`To`, `From`, `Url`, `Method`,
//! `Twiml`, `StatusCallback`, `StatusCallbackEvent` once per value, `StatusCallbackMethod`,
//! `Timeout`) and `UpdateMember` (`Url`, `Method`).

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderValue, ACCEPT, USER_AGENT};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::time::Instant;

/// Twilio's production API base.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";
/// Twilio's limit on inline `Twiml` passed to the REST API, in characters (error 32018).
pub const MAX_INLINE_TWIML_CHARS: usize = 4_000;
/// Twilio's maximum `Timeout` (ring time, seconds) when creating a call.
pub const MAX_CREATE_CALL_TIMEOUT_S: u32 = 600;

/// Error 21220: the call is not in progress (it ended); it cannot be redirected.
pub const CODE_CALL_NOT_IN_PROGRESS: u32 = 21220;
/// Error 20404: the resource was not found.
pub const CODE_NOT_FOUND: u32 = 20404;
/// Error 20429: too many concurrent requests; never processed, safe to retry.
pub const CODE_TOO_MANY_REQUESTS: u32 = 20429;
/// Error 32018: inline TwiML longer than 4,000 characters.
pub const CODE_TWIML_TOO_LONG: u32 = 32018;

const API_VERSION: &str = "2010-04-01";
/// Longest slice of a non-JSON error body kept in [`RestError::Api::message`].
const MAX_ERROR_BODY_CHARS: usize = 300;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// Where and as whom the client talks to Twilio.
#[derive(Clone)]
pub struct RestConfig {
    /// API base without the version path, e.g. `https://api.twilio.com`, or a local stand-in.
    pub api_base: String,
    /// The account that owns the calls (`AC…`); it is part of every path.
    pub account_sid: String,
    /// Basic-auth user: the account SID, or an API key SID (`SK…`).
    pub username: String,
    /// Basic-auth password: the auth token, or the API key secret.
    pub password: String,
    /// Whole-request timeout (connect, send, response body).
    pub request_timeout: Duration,
}

impl RestConfig {
    /// Production base, account SID as user and auth token as password, 5 s request timeout.
    pub fn with_auth_token(account_sid: impl Into<String>, auth_token: impl Into<String>) -> Self {
        let account_sid = account_sid.into();
        Self {
            api_base: DEFAULT_API_BASE.to_owned(),
            username: account_sid.clone(),
            account_sid,
            password: auth_token.into(),
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl fmt::Debug for RestConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RestConfig")
            .field("api_base", &self.api_base)
            .field("account_sid", &self.account_sid)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Resources and request types
// ---------------------------------------------------------------------------------------------

/// HTTP method Twilio uses to fetch a URL (`Method`, `StatusCallbackMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HttpMethod {
    #[serde(rename = "GET")]
    Get,
    #[default]
    #[serde(rename = "POST")]
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// A call's status as Twilio reports it. Values Twilio may add later parse as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
    #[default]
    #[serde(other)]
    Unknown,
}

impl CallStatus {
    /// The call is over (no further status changes).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::Failed
                | CallStatus::NoAnswer
                | CallStatus::Canceled
        )
    }
}

/// Status callback events for `StatusCallbackEvent` (`initiated ringing answered completed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEvent {
    Initiated,
    Ringing,
    Answered,
    Completed,
}

impl CallEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            CallEvent::Initiated => "initiated",
            CallEvent::Ringing => "ringing",
            CallEvent::Answered => "answered",
            CallEvent::Completed => "completed",
        }
    }
}

/// The Call resource, as far as callq needs it. Unknown fields are ignored; nullable fields are
/// `Option`s. Times are kept as Twilio's RFC 2822 strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResource {
    pub sid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub account_sid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: CallStatus,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    /// `inbound`, `outbound-api`, `outbound-dial`, …
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub parent_call_sid: Option<String>,
    #[serde(default)]
    pub answered_by: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    /// Seconds, as a string; empty until the call ends.
    #[serde(default)]
    pub duration: Option<String>,
    /// Milliseconds before the call was placed, as a string.
    #[serde(default)]
    pub queue_time: Option<String>,
    #[serde(default)]
    pub uri: Option<String>,
}

/// A member of a Twilio `<Enqueue>` queue (answer to a dequeue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMember {
    pub call_sid: String,
    #[serde(default)]
    pub queue_sid: Option<String>,
    #[serde(default)]
    pub position: Option<u32>,
    #[serde(default)]
    pub wait_time: Option<u64>,
    #[serde(default)]
    pub date_enqueued: Option<String>,
}

/// What a newly created call does when answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallInstructions {
    /// Inline TwiML (at most [`MAX_INLINE_TWIML_CHARS`] characters).
    Twiml(String),
    /// Twilio fetches the TwiML from this absolute URL.
    Url { url: String, method: HttpMethod },
}

/// `POST …/Calls.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateCall {
    /// E.164 number or `client:<identity>`.
    pub to: String,
    /// A Twilio number (or verified caller ID) or `client:<identity>`.
    pub from: String,
    pub instructions: CallInstructions,
    pub status_callback: Option<String>,
    /// Sent as one `StatusCallbackEvent` parameter per value.
    pub status_callback_event: Vec<CallEvent>,
    pub status_callback_method: Option<HttpMethod>,
    /// Ring time in seconds (Twilio's default 60, at most 600).
    pub timeout_s: Option<u32>,
}

impl CreateCall {
    /// A call to `to` from `from` running inline TwiML, no callbacks, Twilio's default timeout.
    pub fn with_twiml(
        to: impl Into<String>,
        from: impl Into<String>,
        twiml: impl Into<String>,
    ) -> Self {
        Self {
            to: to.into(),
            from: from.into(),
            instructions: CallInstructions::Twiml(twiml.into()),
            status_callback: None,
            status_callback_event: Vec::new(),
            status_callback_method: None,
            timeout_s: None,
        }
    }

    /// The form parameters, in Twilio's names, validated locally.
    fn form(&self) -> Result<Vec<(&'static str, String)>, RestError> {
        if self.to.is_empty() || self.from.is_empty() {
            return Err(RestError::Invalid(
                "CreateCall needs both To and From".to_owned(),
            ));
        }
        let mut form = vec![("To", self.to.clone()), ("From", self.from.clone())];
        match &self.instructions {
            CallInstructions::Twiml(twiml) => {
                check_twiml_len(twiml)?;
                form.push(("Twiml", twiml.clone()));
            }
            CallInstructions::Url { url, method } => {
                form.push(("Url", url.clone()));
                form.push(("Method", method.as_str().to_owned()));
            }
        }
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb.clone()));
        }
        for ev in &self.status_callback_event {
            form.push(("StatusCallbackEvent", ev.as_str().to_owned()));
        }
        if let Some(m) = self.status_callback_method {
            form.push(("StatusCallbackMethod", m.as_str().to_owned()));
        }
        if let Some(t) = self.timeout_s {
            if t == 0 || t > MAX_CREATE_CALL_TIMEOUT_S {
                return Err(RestError::Invalid(format!(
                    "CreateCall Timeout must be 1..={MAX_CREATE_CALL_TIMEOUT_S} s, got {t}"
                )));
            }
            form.push(("Timeout", t.to_string()));
        }
        Ok(form)
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn check_twiml_len(twiml: &str) -> Result<(), RestError> {
    let len = twiml.chars().count();
    if len > MAX_INLINE_TWIML_CHARS {
        return Err(RestError::TwimlTooLong { len });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

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
    /// The circuit breaker is open: the request was not sent.
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

    /// The call is no longer live (21220 not in progress, 20404 / HTTP 404 not found): the
    /// caller hung up; abandon the offer rather than retry.
    pub fn is_call_gone(&self) -> bool {
        match self {
            RestError::Api { status, code, .. } => {
                *status == 404 || matches!(code, Some(CODE_CALL_NOT_IN_PROGRESS | CODE_NOT_FOUND))
            }
            _ => false,
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

    fn from_reqwest(err: reqwest::Error) -> Self {
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

fn error_chain(err: &dyn std::error::Error) -> String {
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

// ---------------------------------------------------------------------------------------------
// Retry with deadline
// ---------------------------------------------------------------------------------------------

/// Full-jitter exponential backoff: before retry `n` (0-based) sleep a uniform random time in
/// `[0, min(cap, base · 2ⁿ)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Total attempts including the first; at least 1 is always made.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            max_attempts: 8,
        }
    }
}

impl Backoff {
    /// The upper bound of the sleep before retry `retry` (0-based).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A full-jitter sleep before retry `retry` (0-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

/// Runs `op`, retrying [retryable](RestError::is_retryable) errors with `policy`'s backoff, and
/// never past `deadline`: an attempt still running at the deadline is abandoned with
/// [`RestError::Timeout`], and no retry is started whose sleep would reach it. Returns the first
/// success or the last error. If the deadline has already passed, `op` is not called and the
/// answer is `Timeout`.
///
/// Creating a call is not idempotent: a retried timeout may place the call twice. For that,
/// use [`with_retry_if`] with [`RestError::is_unprocessed`].
pub async fn with_retry<F, Fut, T>(
    deadline: Instant,
    policy: &Backoff,
    op: F,
) -> Result<T, RestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RestError>>,
{
    with_retry_if(deadline, policy, RestError::is_retryable, op).await
}

/// [`with_retry`] with a caller-chosen test of which errors to retry.
pub async fn with_retry_if<F, Fut, T, P>(
    deadline: Instant,
    policy: &Backoff,
    should_retry: P,
    mut op: F,
) -> Result<T, RestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RestError>>,
    P: Fn(&RestError) -> bool,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt: u32 = 0;
    loop {
        if Instant::now() >= deadline {
            return Err(RestError::Timeout);
        }
        attempt += 1;
        let err = match tokio::time::timeout_at(deadline, op()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => err,
            Err(_elapsed) => RestError::Timeout,
        };
        if attempt >= max_attempts || !should_retry(&err) {
            return Err(err);
        }
        let wake = Instant::now() + policy.delay(attempt - 1);
        if wake >= deadline {
            tracing::debug!(attempt, error = %err, "Twilio request failed; no time left to retry");
            return Err(err);
        }
        tracing::debug!(attempt, error = %err, "Twilio request failed; retrying");
        tokio::time::sleep_until(wake).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker
// ---------------------------------------------------------------------------------------------

/// What the breaker would do with the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests fail fast with [`RestError::CircuitOpen`].
    Open,
    /// The cool-down is over: the next request is the single trial; others fail fast until it
    /// ends.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_in_flight: bool },
}

/// Shared (via `Arc`) by every client of one upstream. Opens after `failure_threshold`
/// consecutive retryable failures; stays open for `cool_down`; then lets one trial request
/// through: its success closes the breaker, its failure opens it for another cool-down.
/// Non-retryable answers (e.g. 21220) count as successes: Twilio is up.
#[derive(Debug)]
pub struct CircuitBreaker {
    failure_threshold: u32,
    cool_down: Duration,
    phase: Mutex<Phase>,
}

impl CircuitBreaker {
    pub fn new(failure_threshold: u32, cool_down: Duration) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            cool_down,
            phase: Mutex::new(Phase::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        // No code panics while holding the lock; recover the state if it ever did.
        self.phase
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        self.state_at(Instant::now())
    }

    fn state_at(&self, now: Instant) -> BreakerState {
        match *self.lock() {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { until } if now < until => BreakerState::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to send one request. The permit must be resolved with [`BreakerPermit::record`]
    /// (or `success` / `failure`); dropping it unresolved (e.g. the request was cancelled)
    /// leaves the counts alone and frees the half-open trial slot.
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, RestError> {
        self.try_acquire_at(Instant::now())
    }

    fn try_acquire_at(&self, now: Instant) -> Result<BreakerPermit<'_>, RestError> {
        let mut phase = self.lock();
        let trial = match *phase {
            Phase::Closed { .. } => false,
            Phase::Open { until } if now < until => return Err(RestError::CircuitOpen),
            Phase::Open { .. }
            | Phase::HalfOpen {
                trial_in_flight: false,
            } => {
                *phase = Phase::HalfOpen {
                    trial_in_flight: true,
                };
                true
            }
            Phase::HalfOpen {
                trial_in_flight: true,
            } => return Err(RestError::CircuitOpen),
        };
        Ok(BreakerPermit {
            breaker: self,
            trial,
            resolved: false,
        })
    }

    fn on_success(&self, trial: bool) {
        let mut phase = self.lock();
        match *phase {
            Phase::Closed { .. } => *phase = Phase::Closed { failures: 0 },
            Phase::HalfOpen { .. } if trial => *phase = Phase::Closed { failures: 0 },
            // A request that started before the breaker opened says nothing about the trial.
            _ => {}
        }
    }

    fn on_failure(&self, trial: bool, now: Instant) {
        let mut phase = self.lock();
        match *phase {
            Phase::Closed { failures } => {
                let failures = failures.saturating_add(1);
                *phase = if failures >= self.failure_threshold {
                    tracing::warn!(
                        failures,
                        cool_down_ms = self.cool_down.as_millis() as u64,
                        "Twilio circuit breaker opened"
                    );
                    Phase::Open {
                        until: now + self.cool_down,
                    }
                } else {
                    Phase::Closed { failures }
                };
            }
            Phase::HalfOpen { .. } if trial => {
                tracing::warn!("Twilio circuit breaker trial failed; open again");
                *phase = Phase::Open {
                    until: now + self.cool_down,
                };
            }
            _ => {}
        }
    }

    fn on_abandon(&self, trial: bool) {
        if !trial {
            return;
        }
        let mut phase = self.lock();
        if let Phase::HalfOpen { .. } = *phase {
            *phase = Phase::HalfOpen {
                trial_in_flight: false,
            };
        }
    }
}

/// Leave to send one request through a [`CircuitBreaker`].
#[derive(Debug)]
#[must_use = "resolve the permit with record(), success() or failure()"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    trial: bool,
    resolved: bool,
}

impl BreakerPermit<'_> {
    /// Whether this is the single half-open trial request.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    pub fn success(mut self) {
        self.resolved = true;
        self.breaker.on_success(self.trial);
    }

    pub fn failure(self) {
        self.failure_at(Instant::now());
    }

    fn failure_at(mut self, now: Instant) {
        self.resolved = true;
        self.breaker.on_failure(self.trial, now);
    }

    /// Success unless the result is a [retryable](RestError::is_retryable) error.
    pub fn record<T>(self, result: &Result<T, RestError>) {
        match result {
            Err(e) if e.is_retryable() => self.failure(),
            _ => self.success(),
        }
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if !self.resolved {
            self.breaker.on_abandon(self.trial);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// Twilio REST client. Cheap to clone (one shared connection pool).
#[derive(Clone)]
pub struct TwilioRest {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    client: reqwest::Client,
    base: Url,
    account_sid: String,
    username: String,
    password: String,
    breaker: Option<Arc<CircuitBreaker>>,
}

impl fmt::Debug for TwilioRest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioRest")
            .field("base", &self.inner.base.as_str())
            .field("account_sid", &self.inner.account_sid)
            .field("username", &self.inner.username)
            .field("breaker", &self.inner.breaker.as_ref().map(|b| b.state()))
            .finish_non_exhaustive()
    }
}

impl TwilioRest {
    /// Checks the configuration and builds the HTTP client (rustls). No circuit breaker: add
    /// one with [`TwilioRest::with_circuit_breaker`].
    pub fn new(cfg: RestConfig) -> Result<Self, RestError> {
        let base = Url::parse(cfg.api_base.trim())
            .map_err(|e| RestError::Invalid(format!("api_base {:?}: {e}", cfg.api_base)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(RestError::Invalid(format!(
                "api_base {:?} must be an http(s) URL",
                cfg.api_base
            )));
        }
        for (name, value) in [
            ("account_sid", &cfg.account_sid),
            ("username", &cfg.username),
            ("password", &cfg.password),
        ] {
            if value.trim().is_empty() {
                return Err(RestError::Invalid(format!("{name} is empty")));
            }
        }
        if cfg.request_timeout.is_zero() {
            return Err(RestError::Invalid("request_timeout is zero".to_owned()));
        }
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout)
            .user_agent(concat!("callq/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| RestError::Invalid(format!("HTTP client: {}", error_chain(&e))))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                base,
                account_sid: cfg.account_sid,
                username: cfg.username,
                password: cfg.password,
                breaker: None,
            }),
        })
    }

    /// The same client, consulting `breaker` before every request.
    pub fn with_circuit_breaker(self, breaker: Arc<CircuitBreaker>) -> Self {
        let mut inner = (*self.inner).clone();
        inner.breaker = Some(breaker);
        Self {
            inner: Arc::new(inner),
        }
    }

    pub fn circuit_breaker(&self) -> Option<&Arc<CircuitBreaker>> {
        self.inner.breaker.as_ref()
    }

    pub fn account_sid(&self) -> &str {
        &self.inner.account_sid
    }

    /// Redirects a live call to inline TwiML (`Twiml=…`). TwiML over 4,000 characters is
    /// refused locally with [`RestError::TwimlTooLong`].
    pub async fn update_call_twiml(
        &self,
        call_sid: &str,
        twiml: &str,
    ) -> Result<CallResource, RestError> {
        check_twiml_len(twiml)?;
        let url = self.call_url(call_sid)?;
        self.post_form(url, &[("Twiml", twiml)], call_sid).await
    }

    /// Redirects a live call to TwiML fetched from `url` with `method`.
    pub async fn update_call_url(
        &self,
        call_sid: &str,
        url: &str,
        method: HttpMethod,
    ) -> Result<CallResource, RestError> {
        let endpoint = self.call_url(call_sid)?;
        self.post_form(
            endpoint,
            &[("Url", url), ("Method", method.as_str())],
            call_sid,
        )
        .await
    }

    /// Ends a call (`Status=completed`; hangs up a call in progress).
    pub async fn hangup_call(&self, call_sid: &str) -> Result<CallResource, RestError> {
        let url = self.call_url(call_sid)?;
        self.post_form(url, &[("Status", "completed")], call_sid)
            .await
    }

    /// Places an outbound call (`POST …/Calls.json`, 201 with the new call).
    pub async fn create_call(&self, req: &CreateCall) -> Result<CallResource, RestError> {
        let form = req.form()?;
        let url = self.endpoint(&["Calls.json"])?;
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post_form(url, &pairs, &req.to).await
    }

    /// Takes one member out of a Twilio `<Enqueue>` queue and sends it to `url`.
    pub async fn dequeue_member(
        &self,
        queue_sid: &str,
        call_sid: &str,
        url: &str,
        method: HttpMethod,
    ) -> Result<QueueMember, RestError> {
        require_sid("queue_sid", queue_sid)?;
        require_sid("call_sid", call_sid)?;
        let endpoint =
            self.endpoint(&["Queues", queue_sid, "Members", &format!("{call_sid}.json")])?;
        self.post_form(
            endpoint,
            &[("Url", url), ("Method", method.as_str())],
            call_sid,
        )
        .await
    }

    fn call_url(&self, call_sid: &str) -> Result<Url, RestError> {
        require_sid("call_sid", call_sid)?;
        self.endpoint(&["Calls", &format!("{call_sid}.json")])
    }

    /// `{base}/2010-04-01/Accounts/{AccountSid}/…`, each segment percent-encoded.
    fn endpoint(&self, tail: &[&str]) -> Result<Url, RestError> {
        let mut url = self.inner.base.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| RestError::Invalid("api_base cannot be a base URL".to_owned()))?;
            segments
                .pop_if_empty()
                .extend([API_VERSION, "Accounts", self.inner.account_sid.as_str()])
                .extend(tail);
        }
        Ok(url)
    }

    async fn post_form<T: DeserializeOwned>(
        &self,
        url: Url,
        form: &[(&str, &str)],
        subject: &str,
    ) -> Result<T, RestError> {
        let permit = match &self.inner.breaker {
            Some(breaker) => Some(breaker.try_acquire()?),
            None => None,
        };
        let started = Instant::now();
        let result = self.send(url, form).await;
        if let Some(permit) = permit {
            permit.record(&result);
        }
        match &result {
            Ok(_) => tracing::debug!(
                subject,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "Twilio request ok"
            ),
            Err(e) => tracing::debug!(
                subject,
                elapsed_ms = started.elapsed().as_millis() as u64,
                error = %e,
                "Twilio request failed"
            ),
        }
        result
    }

    async fn send<T: DeserializeOwned>(
        &self,
        url: Url,
        form: &[(&str, &str)],
    ) -> Result<T, RestError> {
        let response = self
            .inner
            .client
            .post(url)
            .basic_auth(&self.inner.username, Some(&self.inner.password))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(
                USER_AGENT,
                HeaderValue::from_static(concat!("callq/", env!("CARGO_PKG_VERSION"))),
            )
            .form(form)
            .send()
            .await
            .map_err(RestError::from_reqwest)?;
        let status = response.status();
        let body = response.bytes().await.map_err(RestError::from_reqwest)?;
        if status.is_success() {
            serde_json::from_slice(&body).map_err(|e| RestError::Decode {
                status: status.as_u16(),
                message: e.to_string(),
            })
        } else {
            Err(RestError::from_response(status.as_u16(), &body))
        }
    }
}

fn require_sid(name: &str, sid: &str) -> Result<(), RestError> {
    if sid.is_empty() || !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(RestError::Invalid(format!(
            "{name} {sid:?} is not a Twilio SID"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::body::Bytes;
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode as AxStatus};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use axum::Router;
    use base64::Engine;

    const ACCOUNT: &str = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const TOKEN: &str = "secret-token";

    #[derive(Debug, Clone)]
    struct Seen {
        path: String,
        auth: Option<String>,
        content_type: Option<String>,
        form: Vec<(String, String)>,
    }

    #[derive(Default)]
    struct StandIn {
        seen: Mutex<Vec<Seen>>,
        /// Requests to `CAflaky…` answered 500 before the first 200.
        flaky_failures: AtomicU32,
        /// While true, `CAswitch` answers 500; otherwise 200.
        switch_failing: std::sync::atomic::AtomicBool,
    }

    impl StandIn {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().map(|s| s.clone()).unwrap_or_default()
        }
        fn count(&self) -> usize {
            self.seen().len()
        }
    }

    fn call_json(sid: &str, status: &str) -> serde_json::Value {
        serde_json::json!({
            "account_sid": ACCOUNT,
            "answered_by": null,
            "api_version": "2010-04-01",
            "caller_name": null,
            "date_created": "Tue, 31 Aug 2010 20:36:28 +0000",
            "date_updated": "Tue, 31 Aug 2010 20:36:44 +0000",
            "direction": "inbound",
            "duration": null,
            "end_time": null,
            "from": "+14158675308",
            "from_formatted": "(415) 867-5308",
            "group_sid": null,
            "parent_call_sid": null,
            "phone_number_sid": "PNaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "price": null,
            "sid": sid,
            "start_time": "Tue, 31 Aug 2010 20:36:29 +0000",
            "status": status,
            "subresource_uris": {"notifications": "/x.json"},
            "to": "+14158675309",
            "to_formatted": "(415) 867-5309",
            "trunk_sid": null,
            "uri": format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"),
            "queue_time": "0"
        })
    }

    fn twilio_error(status: u16, code: u32, message: &str) -> Response {
        let body = serde_json::json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        });
        let status = AxStatus::from_u16(status).unwrap_or(AxStatus::INTERNAL_SERVER_ERROR);
        (status, axum::Json(body)).into_response()
    }

    fn record(state: &StandIn, path: String, headers: &HeaderMap, body: &Bytes) {
        let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let seen = Seen {
            path,
            auth: get("authorization"),
            content_type: get("content-type"),
            form,
        };
        if let Ok(mut s) = state.seen.lock() {
            s.push(seen);
        }
    }

    async fn update_call(
        State(state): State<Arc<StandIn>>,
        Path((account, file)): Path<(String, String)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        record(
            &state,
            format!("/2010-04-01/Accounts/{account}/Calls/{file}"),
            &headers,
            &body,
        );
        let Some(sid) = file.strip_suffix(".json") else {
            return twilio_error(404, 20404, "The requested resource was not found");
        };
        match sid {
            s if s.starts_with("CA429") => twilio_error(429, 20429, "Too Many Requests"),
            s if s.starts_with("CA500") => {
                (AxStatus::INTERNAL_SERVER_ERROR, "upstream exploded").into_response()
            }
            s if s.starts_with("CAgone") => {
                twilio_error(400, 21220, "Call is not in-progress. Cannot redirect.")
            }
            s if s.starts_with("CA404") => {
                twilio_error(404, 20404, "The requested resource was not found")
            }
            s if s.starts_with("CAslow") => {
                tokio::time::sleep(Duration::from_millis(1_000)).await;
                axum::Json(call_json(sid, "in-progress")).into_response()
            }
            s if s.starts_with("CAflaky") => {
                let left = state.flaky_failures.load(Ordering::SeqCst);
                if left > 0 {
                    state.flaky_failures.store(left - 1, Ordering::SeqCst);
                    twilio_error(503, 20500, "Service Unavailable")
                } else {
                    axum::Json(call_json(sid, "in-progress")).into_response()
                }
            }
            s if s.starts_with("CAswitch") => {
                if state.switch_failing.load(Ordering::SeqCst) {
                    twilio_error(500, 20500, "Internal Server Error")
                } else {
                    axum::Json(call_json(sid, "in-progress")).into_response()
                }
            }
            s if s.starts_with("CAbadjson") => (AxStatus::OK, "<html>ok</html>").into_response(),
            _ => {
                let completed = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
                    .unwrap_or_default()
                    .iter()
                    .any(|(k, v)| k == "Status" && v == "completed");
                let status = if completed {
                    "completed"
                } else {
                    "in-progress"
                };
                axum::Json(call_json(sid, status)).into_response()
            }
        }
    }

    async fn create_call(
        State(state): State<Arc<StandIn>>,
        Path(account): Path<String>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        record(
            &state,
            format!("/2010-04-01/Accounts/{account}/Calls.json"),
            &headers,
            &body,
        );
        let mut call = call_json("CAbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "queued");
        call["direction"] = serde_json::json!("outbound-api");
        (AxStatus::CREATED, axum::Json(call)).into_response()
    }

    async fn dequeue(
        State(state): State<Arc<StandIn>>,
        Path((account, queue, file)): Path<(String, String, String)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        record(
            &state,
            format!("/2010-04-01/Accounts/{account}/Queues/{queue}/Members/{file}"),
            &headers,
            &body,
        );
        let sid = file.trim_end_matches(".json");
        axum::Json(serde_json::json!({
            "call_sid": sid, "queue_sid": queue, "position": 1, "wait_time": 12,
            "date_enqueued": "Tue, 07 Aug 2012 22:57:41 +0000", "uri": "/x.json"
        }))
        .into_response()
    }

    async fn stand_in() -> (String, Arc<StandIn>) {
        let state = Arc::new(StandIn::default());
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                post(create_call),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{file}",
                post(update_call),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Queues/{queue}/Members/{file}",
                post(dequeue),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind stand-in");
        let addr = listener.local_addr().expect("stand-in address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), state)
    }

    fn client(base: &str, timeout_ms: u64) -> TwilioRest {
        TwilioRest::new(RestConfig {
            api_base: base.to_owned(),
            account_sid: ACCOUNT.to_owned(),
            username: ACCOUNT.to_owned(),
            password: TOKEN.to_owned(),
            request_timeout: Duration::from_millis(timeout_ms),
        })
        .expect("client")
    }

    fn fast_backoff() -> Backoff {
        Backoff {
            base: Duration::from_millis(5),
            cap: Duration::from_millis(20),
            max_attempts: 50,
        }
    }

    fn form_get<'a>(seen: &'a Seen, key: &str) -> Vec<&'a str> {
        seen.form
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    // ---- requests and parsing -----------------------------------------------------------

    #[tokio::test]
    async fn update_call_twiml_sends_form_and_basic_auth_and_parses_call() {
        let (base, state) = stand_in().await;
        let rest = client(&base, 2_000);
        let twiml =
            r#"<Response><Dial timeout="20"><Client>alice &amp; bob</Client></Dial></Response>"#;
        let call = rest
            .update_call_twiml("CAok000000000000000000000000000001", twiml)
            .await
            .expect("redirect ok");
        assert_eq!(call.sid, "CAok000000000000000000000000000001");
        assert_eq!(call.status, CallStatus::InProgress);
        assert_eq!(call.account_sid, ACCOUNT);
        assert_eq!(call.to.as_deref(), Some("+14158675309"));
        assert_eq!(call.from.as_deref(), Some("+14158675308"));
        assert_eq!(call.direction.as_deref(), Some("inbound"));
        assert_eq!(call.duration, None);

        let seen = state.seen();
        assert_eq!(seen.len(), 1);
        let req = &seen[0];
        assert_eq!(
            req.path,
            format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/CAok000000000000000000000000000001.json")
        );
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"))
        );
        assert_eq!(req.auth.as_deref(), Some(expected.as_str()));
        assert_eq!(
            req.content_type.as_deref(),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(req.form, vec![("Twiml".to_owned(), twiml.to_owned())]);
    }

    #[tokio::test]
    async fn update_call_url_and_hangup_send_twilio_parameter_names() {
        let (base, state) = stand_in().await;
        // A trailing slash on the base must not produce `//2010-04-01`.
        let rest = client(&format!("{base}/"), 2_000);
        rest.update_call_url(
            "CAok1",
            "https://callq.example/twilio/wait?q=1",
            HttpMethod::Get,
        )
        .await
        .expect("url redirect");
        let call = rest.hangup_call("CAok2").await.expect("hangup");
        assert_eq!(call.status, CallStatus::Completed);
        assert!(call.status.is_final());

        let seen = state.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0].path,
            format!("/2010-04-01/Accounts/{ACCOUNT}/Calls/CAok1.json")
        );
        assert_eq!(
            seen[0].form,
            vec![
                (
                    "Url".to_owned(),
                    "https://callq.example/twilio/wait?q=1".to_owned()
                ),
                ("Method".to_owned(), "GET".to_owned()),
            ]
        );
        assert_eq!(
            seen[1].form,
            vec![("Status".to_owned(), "completed".to_owned())]
        );
    }

    #[tokio::test]
    async fn create_call_sends_repeated_status_callback_event_and_expects_201() {
        let (base, state) = stand_in().await;
        let rest = client(&base, 2_000);
        let req = CreateCall {
            to: "client:alice".to_owned(),
            from: "+15005550006".to_owned(),
            instructions: CallInstructions::Twiml("<Response><Say>Hi</Say></Response>".into()),
            status_callback: Some("https://callq.example/twilio/agent-leg".to_owned()),
            status_callback_event: vec![
                CallEvent::Initiated,
                CallEvent::Ringing,
                CallEvent::Answered,
                CallEvent::Completed,
            ],
            status_callback_method: Some(HttpMethod::Post),
            timeout_s: Some(20),
        };
        let call = rest.create_call(&req).await.expect("created");
        assert_eq!(call.status, CallStatus::Queued);
        assert_eq!(call.direction.as_deref(), Some("outbound-api"));

        let seen = state.seen();
        assert_eq!(seen.len(), 1);
        let r = &seen[0];
        assert_eq!(r.path, format!("/2010-04-01/Accounts/{ACCOUNT}/Calls.json"));
        assert_eq!(form_get(r, "To"), ["client:alice"]);
        assert_eq!(form_get(r, "From"), ["+15005550006"]);
        assert_eq!(form_get(r, "Twiml"), ["<Response><Say>Hi</Say></Response>"]);
        assert!(form_get(r, "Url").is_empty());
        assert_eq!(
            form_get(r, "StatusCallback"),
            ["https://callq.example/twilio/agent-leg"]
        );
        assert_eq!(
            form_get(r, "StatusCallbackEvent"),
            ["initiated", "ringing", "answered", "completed"]
        );
        assert_eq!(form_get(r, "StatusCallbackMethod"), ["POST"]);
        assert_eq!(form_get(r, "Timeout"), ["20"]);
        assert!(r.auth.is_some());
    }

    #[tokio::test]
    async fn create_call_with_url_sends_url_and_method() {
        let (base, state) = stand_in().await;
        let rest = client(&base, 2_000);
        let req = CreateCall {
            instructions: CallInstructions::Url {
                url: "https://callq.example/twilio/callback".to_owned(),
                method: HttpMethod::Post,
            },
            ..CreateCall::with_twiml("client:bob", "+15005550006", "")
        };
        rest.create_call(&req).await.expect("created");
        let seen = state.seen();
        assert_eq!(
            form_get(&seen[0], "Url"),
            ["https://callq.example/twilio/callback"]
        );
        assert_eq!(form_get(&seen[0], "Method"), ["POST"]);
        assert!(form_get(&seen[0], "Twiml").is_empty());
        assert!(form_get(&seen[0], "StatusCallbackEvent").is_empty());
        assert!(form_get(&seen[0], "Timeout").is_empty());
    }

    #[tokio::test]
    async fn dequeue_member_posts_url_and_method() {
        let (base, state) = stand_in().await;
        let rest = client(&base, 2_000);
        let m = rest
            .dequeue_member("QU1", "CA9", "https://callq.example/x", HttpMethod::Post)
            .await
            .expect("dequeued");
        assert_eq!(m.call_sid, "CA9");
        assert_eq!(m.position, Some(1));
        let seen = state.seen();
        assert_eq!(
            seen[0].path,
            format!("/2010-04-01/Accounts/{ACCOUNT}/Queues/QU1/Members/CA9.json")
        );
        assert_eq!(form_get(&seen[0], "Url"), ["https://callq.example/x"]);
        assert_eq!(form_get(&seen[0], "Method"), ["POST"]);
    }

    #[tokio::test]
    async fn long_twiml_is_refused_locally() {
        let (base, state) = stand_in().await;
        let rest = client(&base, 2_000);
        // 4,000 two-byte characters are fine (the limit is in characters, not bytes).
        let ok = "é".repeat(MAX_INLINE_TWIML_CHARS);
        rest.update_call_twiml("CAok", &ok)
            .await
            .expect("4000 chars ok");
        let too_long = "x".repeat(MAX_INLINE_TWIML_CHARS + 1);
        let err = rest
            .update_call_twiml("CAok", &too_long)
            .await
            .expect_err("too long");
        assert_eq!(err, RestError::TwimlTooLong { len: 4_001 });
        assert_eq!(err.code(), Some(CODE_TWIML_TOO_LONG));
        assert!(err.to_string().contains("32018"));
        assert!(!err.is_retryable());
        let err = rest
            .create_call(&CreateCall::with_twiml(
                "client:a",
                "+15005550006",
                too_long,
            ))
            .await
            .expect_err("too long");
        assert!(matches!(err, RestError::TwimlTooLong { .. }));
        assert_eq!(
            state.count(),
            1,
            "only the 4,000-character request was sent"
        );
    }

    #[tokio::test]
    async fn bad_input_is_refused_locally() {
        let (base, state) = stand_in().await;
        let rest = client(&base, 2_000);
        for sid in ["", "CA/../Queues", "CA 1"] {
            let err = rest.hangup_call(sid).await.expect_err("bad sid");
            assert!(matches!(err, RestError::Invalid(_)), "{sid:?}: {err:?}");
        }
        let mut req = CreateCall::with_twiml("client:a", "+15005550006", "<Response/>");
        req.timeout_s = Some(601);
        assert!(matches!(
            rest.create_call(&req).await,
            Err(RestError::Invalid(_))
        ));
        assert_eq!(state.count(), 0);

        let mut cfg = RestConfig::with_auth_token(ACCOUNT, TOKEN);
        cfg.api_base = "not a url".to_owned();
        assert!(matches!(TwilioRest::new(cfg), Err(RestError::Invalid(_))));
        let cfg = RestConfig::with_auth_token(ACCOUNT, "");
        assert!(matches!(TwilioRest::new(cfg), Err(RestError::Invalid(_))));
        let dbg = format!("{:?}", RestConfig::with_auth_token(ACCOUNT, TOKEN));
        assert!(!dbg.contains(TOKEN), "password must not be printed");
    }

    // ---- errors ---------------------------------------------------------------------------

    #[tokio::test]
    async fn twilio_errors_are_parsed_and_classified() {
        let (base, _state) = stand_in().await;
        let rest = client(&base, 2_000);

        let gone = rest.update_call_twiml("CAgone", "<Response/>").await;
        let gone = gone.expect_err("21220");
        assert_eq!(
            gone,
            RestError::Api {
                status: 400,
                code: Some(21220),
                message: "Call is not in-progress. Cannot redirect.".to_owned(),
                more_info: Some("https://www.twilio.com/docs/errors/21220".to_owned()),
            }
        );
        assert!(gone.is_call_gone());
        assert!(!gone.is_retryable());

        let nf = rest.hangup_call("CA404").await.expect_err("20404");
        assert_eq!(nf.code(), Some(20404));
        assert!(nf.is_call_gone());
        assert!(!nf.is_retryable());

        let busy = rest.hangup_call("CA429").await.expect_err("20429");
        assert!(matches!(
            busy,
            RestError::Api {
                status: 429,
                code: Some(20429),
                ..
            }
        ));
        assert!(busy.is_retryable());
        assert!(busy.is_unprocessed());
        assert!(!busy.is_call_gone());

        let boom = rest.hangup_call("CA500").await.expect_err("500");
        assert_eq!(
            boom,
            RestError::Api {
                status: 500,
                code: None,
                message: "upstream exploded".to_owned(),
                more_info: None,
            }
        );
        assert!(boom.is_retryable());
        assert!(!boom.is_unprocessed());

        let bad = rest.hangup_call("CAbadjson").await.expect_err("decode");
        assert!(matches!(bad, RestError::Decode { status: 200, .. }));
        assert!(!bad.is_retryable());
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
        assert!(e.is_call_gone());
        let e = RestError::from_response(400, br#"[1,2,3]"#);
        assert_eq!(e.code(), None);
        let e = RestError::from_response(404, b"<html>Not Found</html>");
        assert!(e.is_call_gone());
        assert!(RestError::from_response(429, b"slow down").is_retryable());
        assert!(
            !RestError::from_response(401, br#"{"code":20003,"message":"Authenticate"}"#)
                .is_retryable()
        );
    }

    #[test]
    fn call_resource_tolerates_nulls_unknown_status_and_extra_fields() {
        let json =
            r#"{"sid":"CA1","account_sid":null,"status":"brand-new-status","extra":{"a":1}}"#;
        let call: CallResource = serde_json::from_str(json).expect("parse");
        assert_eq!(call.sid, "CA1");
        assert_eq!(call.account_sid, "");
        assert_eq!(call.status, CallStatus::Unknown);
        let call: CallResource =
            serde_json::from_str(r#"{"sid":"CA2","status":"no-answer"}"#).expect("parse");
        assert_eq!(call.status, CallStatus::NoAnswer);
    }

    #[tokio::test]
    async fn slow_response_times_out() {
        let (base, _state) = stand_in().await;
        let rest = client(&base, 100);
        let started = Instant::now();
        let err = rest.hangup_call("CAslow").await.expect_err("timeout");
        assert_eq!(err, RestError::Timeout);
        assert!(err.is_retryable());
        assert!(!err.is_unprocessed());
        assert!(started.elapsed() < Duration::from_millis(900));
    }

    #[tokio::test]
    async fn connection_refused_is_a_retryable_connect_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let rest = client(&format!("http://{addr}"), 500);
        let err = rest.hangup_call("CAok").await.expect_err("refused");
        assert!(matches!(err, RestError::Connect(_)), "{err:?}");
        assert!(err.is_retryable());
        assert!(err.is_unprocessed());
    }

    // ---- retry ----------------------------------------------------------------------------

    #[tokio::test]
    async fn retry_then_success() {
        let (base, state) = stand_in().await;
        state.flaky_failures.store(3, Ordering::SeqCst);
        let rest = client(&base, 2_000);
        let deadline = Instant::now() + Duration::from_secs(5);
        let call = with_retry(deadline, &fast_backoff(), || {
            rest.update_call_twiml("CAflaky1", "<Response/>")
        })
        .await
        .expect("eventually ok");
        assert_eq!(call.sid, "CAflaky1");
        assert_eq!(state.count(), 4);
    }

    #[tokio::test]
    async fn retries_stop_at_the_deadline_and_return_the_last_error() {
        let (base, state) = stand_in().await;
        let rest = client(&base, 2_000);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(300);
        let err = with_retry(deadline, &fast_backoff(), || rest.hangup_call("CA429"))
            .await
            .expect_err("never succeeds");
        let elapsed = started.elapsed();
        // The last error is Twilio's 20429, unless the machine was slow enough that the last
        // attempt was still in flight at the deadline and was cut short.
        assert!(
            matches!(
                err,
                RestError::Api {
                    code: Some(20429),
                    ..
                } | RestError::Timeout
            ),
            "{err:?}"
        );
        // generous bound: these machines are shared; what matters is that retrying stops
        assert!(elapsed <= Duration::from_millis(300 + 700), "{elapsed:?}");
        assert!(state.count() >= 2, "retried at least once");
    }

    #[tokio::test]
    async fn an_attempt_running_into_the_deadline_is_cut_short() {
        let (base, _state) = stand_in().await;
        let rest = client(&base, 5_000);
        let started = Instant::now();
        let deadline = started + Duration::from_millis(100);
        let err = with_retry(deadline, &fast_backoff(), || rest.hangup_call("CAslow"))
            .await
            .expect_err("deadline");
        assert_eq!(err, RestError::Timeout);
        assert!(started.elapsed() < Duration::from_millis(500));
        // Past the deadline nothing is attempted at all.
        let calls = AtomicU32::new(0);
        let err = with_retry(Instant::now(), &fast_backoff(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<(), RestError>(())
        })
        .await
        .expect_err("no time");
        assert_eq!(err, RestError::Timeout);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn non_retryable_errors_are_not_retried() {
        let (base, state) = stand_in().await;
        let rest = client(&base, 2_000);
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = with_retry(deadline, &fast_backoff(), || {
            rest.update_call_twiml("CAgone", "<Response/>")
        })
        .await
        .expect_err("gone");
        assert!(err.is_call_gone());
        assert_eq!(state.count(), 1);
    }

    #[tokio::test]
    async fn max_attempts_and_custom_predicate_are_honoured() {
        let calls = AtomicU32::new(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        let policy = Backoff {
            max_attempts: 3,
            ..fast_backoff()
        };
        let err = with_retry(deadline, &policy, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(RestError::Transport("reset".into()))
        })
        .await
        .expect_err("fails");
        assert_eq!(err, RestError::Transport("reset".into()));
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        // For creating calls only replay what Twilio certainly did not process.
        calls.store(0, Ordering::SeqCst);
        let err = with_retry_if(
            deadline,
            &fast_backoff(),
            RestError::is_unprocessed,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(RestError::Timeout)
            },
        )
        .await
        .expect_err("fails");
        assert_eq!(err, RestError::Timeout);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn backoff_is_full_jitter_exponential_and_capped() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_attempts: 10,
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(4), Duration::from_secs(1));
        assert_eq!(b.ceiling(1_000), Duration::from_secs(1));
        let samples: Vec<Duration> = (0..200).map(|_| b.delay(2)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(400)));
        assert!(samples.iter().any(|d| *d < Duration::from_millis(200)));
        assert!(samples.iter().any(|d| *d > Duration::from_millis(200)));
        let zero = Backoff {
            base: Duration::ZERO,
            ..b
        };
        assert_eq!(zero.delay(5), Duration::ZERO);
    }

    // ---- circuit breaker ------------------------------------------------------------------

    #[test]
    fn breaker_state_machine() {
        let cool = Duration::from_secs(10);
        let b = CircuitBreaker::new(3, cool);
        let t0 = Instant::now();
        assert_eq!(b.state_at(t0), BreakerState::Closed);
        // Two failures, a success resets the count, then three in a row open it.
        b.try_acquire_at(t0).expect("closed").failure();
        b.try_acquire_at(t0).expect("closed").failure();
        b.try_acquire_at(t0).expect("closed").success();
        b.try_acquire_at(t0).expect("closed").failure();
        b.try_acquire_at(t0).expect("closed").failure();
        assert_eq!(b.state_at(t0), BreakerState::Closed);
        let before_open = Instant::now();
        b.try_acquire_at(t0).expect("closed").failure();
        assert_eq!(b.state_at(before_open), BreakerState::Open);
        assert!(matches!(
            b.try_acquire_at(before_open),
            Err(RestError::CircuitOpen)
        ));

        // After the cool-down exactly one trial goes through.
        let later = Instant::now() + cool + Duration::from_millis(1);
        assert_eq!(b.state_at(later), BreakerState::HalfOpen);
        let trial = b.try_acquire_at(later).expect("trial");
        assert!(trial.is_trial());
        assert!(matches!(
            b.try_acquire_at(later),
            Err(RestError::CircuitOpen)
        ));
        // A cancelled trial frees the slot.
        drop(trial);
        let trial = b.try_acquire_at(later).expect("trial again");
        // A failed trial opens the breaker for another cool-down.
        trial.failure_at(later);
        assert_eq!(b.state_at(later), BreakerState::Open);
        let much_later = later + cool + cool;
        let trial = b.try_acquire_at(much_later).expect("trial");
        trial.success();
        assert_eq!(b.state_at(much_later), BreakerState::Closed);
        b.try_acquire_at(much_later).expect("closed").success();
    }

    #[test]
    fn breaker_ignores_non_trial_results_while_not_closed() {
        let b = CircuitBreaker::new(1, Duration::from_secs(10));
        let now = Instant::now();
        let old = b.try_acquire_at(now).expect("closed");
        b.try_acquire_at(now).expect("closed").failure();
        assert_eq!(b.state_at(now), BreakerState::Open);
        // A request that began before the breaker opened does not close it.
        old.success();
        assert_eq!(b.state_at(now), BreakerState::Open);
    }

    #[tokio::test]
    async fn breaker_opens_fails_fast_half_opens_and_closes() {
        let (base, state) = stand_in().await;
        let breaker = Arc::new(CircuitBreaker::new(2, Duration::from_millis(250)));
        let rest = client(&base, 2_000).with_circuit_breaker(breaker.clone());
        state.switch_failing.store(true, Ordering::SeqCst);

        for _ in 0..2 {
            let err = rest.hangup_call("CAswitch").await.expect_err("500");
            assert!(err.is_retryable());
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        let sent = state.count();
        let err = rest.hangup_call("CAswitch").await.expect_err("open");
        assert_eq!(err, RestError::CircuitOpen);
        assert!(!err.is_retryable());
        assert_eq!(
            state.count(),
            sent,
            "an open breaker does not touch the network"
        );

        // Half-open: the trial fails, the breaker opens again.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        rest.hangup_call("CAswitch").await.expect_err("trial fails");
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(state.count(), sent + 1);

        // Half-open again: Twilio is back, the trial succeeds, the breaker closes.
        state.switch_failing.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(300)).await;
        rest.hangup_call("CAswitch").await.expect("trial ok");
        assert_eq!(breaker.state(), BreakerState::Closed);
        rest.hangup_call("CAswitch").await.expect("closed");
    }

    #[tokio::test]
    async fn call_gone_errors_do_not_trip_the_breaker() {
        let (base, _state) = stand_in().await;
        let breaker = Arc::new(CircuitBreaker::new(1, Duration::from_secs(60)));
        let rest = client(&base, 2_000).with_circuit_breaker(breaker.clone());
        for _ in 0..3 {
            let err = rest.hangup_call("CAgone").await.expect_err("21220");
            assert!(err.is_call_gone());
        }
        let err = rest.hangup_call("CA404").await.expect_err("20404");
        assert!(err.is_call_gone());
        assert_eq!(breaker.state(), BreakerState::Closed);
        // Local refusals never reach the breaker either.
        let long = "x".repeat(MAX_INLINE_TWIML_CHARS + 1);
        assert!(rest.update_call_twiml("CAok", &long).await.is_err());
        assert_eq!(breaker.state(), BreakerState::Closed);
        // One retryable failure (threshold 1) opens it.
        rest.hangup_call("CA500").await.expect_err("500");
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test]
    async fn clones_share_the_breaker() {
        let (base, _state) = stand_in().await;
        let breaker = Arc::new(CircuitBreaker::new(1, Duration::from_secs(60)));
        let a = client(&base, 2_000).with_circuit_breaker(breaker);
        let b = a.clone();
        a.hangup_call("CA500").await.expect_err("500");
        assert_eq!(b.hangup_call("CAok").await, Err(RestError::CircuitOpen));
    }
}
