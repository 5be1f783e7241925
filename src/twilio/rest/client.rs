//! [`TwilioRest`], the client itself: its configuration ([`RestConfig`]), the calls callq makes
//! (update a live call, create a call, dequeue a member, fetch a call, list calls, list the
//! `<Enqueue>` queues and their members, every page through `next_page_uri`), and the
//! optional [`RequestGate`]
//! consulted around every request, which is how the worker's circuit breaker keeps requests
//! from going out while Twilio is unreachable.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT, USER_AGENT};
use reqwest::Url;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::error::{error_chain, RestError};
use super::resources::{
    check_twiml_len, CallFilter, CallPage, CallResource, CreateCall, HttpMethod, MemberPage,
    QueueMember, QueuePage, QueueResource,
};

/// Twilio's production API base.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

const API_VERSION: &str = "2010-04-01";

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

/// Consulted around every request a [`TwilioRest`] sends. [`RequestGate::admit`] is asked
/// first: a refusal fails the request with that error and nothing is sent. The pass it hands
/// out is told how the request ended; dropping the pass unfinished means the request was
/// cancelled. The worker's circuit breaker is the one gate callq has.
pub trait RequestGate: fmt::Debug + Send + Sync {
    fn admit(&self) -> Result<Box<dyn RequestPass + '_>, RestError>;
}

/// Leave from a [`RequestGate`] to send one request.
pub trait RequestPass: Send {
    /// The request ended: `None` on success, else its error.
    fn finish(self: Box<Self>, error: Option<&RestError>);
}

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
    gate: Option<Arc<dyn RequestGate>>,
}

impl fmt::Debug for TwilioRest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioRest")
            .field("base", &self.inner.base.as_str())
            .field("account_sid", &self.inner.account_sid)
            .field("username", &self.inner.username)
            .field("gate", &self.inner.gate)
            .finish_non_exhaustive()
    }
}

impl TwilioRest {
    /// Checks the configuration and builds the HTTP client (rustls). No gate: add one with
    /// [`TwilioRest::with_gate`].
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
                gate: None,
            }),
        })
    }

    /// The same client, consulting `gate` around every request (in place of any gate it had).
    /// Clones share the gate.
    pub fn with_gate(self, gate: Arc<dyn RequestGate>) -> Self {
        let mut inner = (*self.inner).clone();
        inner.gate = Some(gate);
        Self {
            inner: Arc::new(inner),
        }
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

    /// Reads a call as Twilio sees it now (`GET …/Calls/{Sid}.json`).
    pub async fn fetch_call(&self, call_sid: &str) -> Result<CallResource, RestError> {
        let url = self.call_url(call_sid)?;
        self.request(reqwest::Method::GET, url, &[], call_sid).await
    }

    /// The first page of calls matching `filter` (`GET …/Calls.json`), newest first.
    pub async fn list_calls(&self, filter: &CallFilter) -> Result<Vec<CallResource>, RestError> {
        let mut url = self.endpoint(&["Calls.json"])?;
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in filter.query() {
                pairs.append_pair(name, &value);
            }
        }
        let page: CallPage = self
            .request(reqwest::Method::GET, url, &[], "Calls.json")
            .await?;
        Ok(page.calls)
    }

    /// Every call matching `filter` (`GET …/Calls.json`), following `next_page_uri` to the
    /// last page (at most `max_pages` pages), newest first.
    pub async fn list_calls_all(
        &self,
        filter: &CallFilter,
        max_pages: usize,
    ) -> Result<Vec<CallResource>, RestError> {
        let mut url = self.endpoint(&["Calls.json"])?;
        {
            let mut pairs = url.query_pairs_mut();
            for (name, value) in filter.query() {
                pairs.append_pair(name, &value);
            }
        }
        let mut out = Vec::new();
        for _ in 0..max_pages.max(1) {
            let page: CallPage = self
                .request(reqwest::Method::GET, url, &[], "Calls.json")
                .await?;
            out.extend(page.calls);
            match self.next_page(page.next_page_uri.as_deref())? {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// Every `<Enqueue>` queue of the account (`GET …/Queues.json`, every page).
    pub async fn list_queues(&self, max_pages: usize) -> Result<Vec<QueueResource>, RestError> {
        let mut url = self.endpoint(&["Queues.json"])?;
        url.query_pairs_mut().append_pair("PageSize", "1000");
        let mut out = Vec::new();
        for _ in 0..max_pages.max(1) {
            let page: QueuePage = self
                .request(reqwest::Method::GET, url, &[], "Queues.json")
                .await?;
            out.extend(page.queues);
            match self.next_page(page.next_page_uri.as_deref())? {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// The callers waiting in queue `queue_sid` (`GET …/Queues/{QueueSid}/Members.json`,
    /// every page), first in line first.
    pub async fn list_queue_members(
        &self,
        queue_sid: &str,
        max_pages: usize,
    ) -> Result<Vec<QueueMember>, RestError> {
        require_sid("queue_sid", queue_sid)?;
        let mut url = self.endpoint(&["Queues", queue_sid, "Members.json"])?;
        url.query_pairs_mut().append_pair("PageSize", "1000");
        let mut out = Vec::new();
        for _ in 0..max_pages.max(1) {
            let page: MemberPage = self
                .request(reqwest::Method::GET, url, &[], queue_sid)
                .await?;
            out.extend(page.queue_members);
            match self.next_page(page.next_page_uri.as_deref())? {
                Some(next) => url = next,
                None => break,
            }
        }
        Ok(out)
    }

    /// The URL of a page's `next_page_uri` (a path on the API's host), None on the last page.
    fn next_page(&self, next: Option<&str>) -> Result<Option<Url>, RestError> {
        match next {
            None | Some("") => Ok(None),
            Some(path) if path.starts_with('/') && !path.starts_with("//") => self
                .inner
                .base
                .join(path)
                .map(Some)
                .map_err(|e| RestError::Invalid(format!("next_page_uri {path:?}: {e}"))),
            Some(other) => Err(RestError::Invalid(format!(
                "next_page_uri {other:?} is not a path on the API's host"
            ))),
        }
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
        self.request(reqwest::Method::POST, url, form, subject)
            .await
    }

    /// One request through the gate: a POST with `form`, or a GET (`form` empty).
    async fn request<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: Url,
        form: &[(&str, &str)],
        subject: &str,
    ) -> Result<T, RestError> {
        let pass = match &self.inner.gate {
            Some(gate) => Some(gate.admit()?),
            None => None,
        };
        let started = Instant::now();
        let result = self.send(method, url, form).await;
        if let Some(pass) = pass {
            pass.finish(result.as_ref().err());
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
        method: reqwest::Method,
        url: Url,
        form: &[(&str, &str)],
    ) -> Result<T, RestError> {
        let post = method == reqwest::Method::POST;
        let mut builder = self
            .inner
            .client
            .request(method, url)
            .basic_auth(&self.inner.username, Some(&self.inner.password))
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .header(
                USER_AGENT,
                HeaderValue::from_static(concat!("callq/", env!("CARGO_PKG_VERSION"))),
            );
        if post {
            builder = builder.form(form);
        }
        let response = builder.send().await.map_err(RestError::from_reqwest)?;
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
