//! `callq agent`: a small client of the agent API for scripts and trials. It checks its token
//! (`whoami`), sends one heartbeat, sets a status once, or runs: heartbeats every few seconds
//! until Ctrl-C or SIGTERM, then goes offline. [`AgentClient`] is the same client as a
//! library, with the request and response types of [`super::types`].

use std::time::Duration;

use anyhow::Context;
use reqwest::{StatusCode, Url};

use super::types::{
    AgentView, ErrorBody, ErrorDetail, HeartbeatRequest, HeartbeatResponse, StatusRequest,
    StatusResponse,
};
use crate::shutdown::Shutdown;
use crate::store::RequestedStatus;

/// What `callq agent` does once its client is set up.
#[derive(Debug, Clone)]
pub enum AgentAction {
    /// Show the agent as the server sees it (also checks the token).
    Whoami,
    /// Send one heartbeat.
    Heartbeat { device_registered: bool },
    /// Ask for a status once, with an optional reason.
    Status {
        status: RequestedStatus,
        reason: Option<String>,
    },
    /// Heartbeat every `every` until Ctrl-C or SIGTERM (asking for `status` after the first
    /// beat), then go offline.
    Run {
        every: Duration,
        status: RequestedStatus,
        device_registered: bool,
    },
}

/// Everything `callq agent` runs with, as plain values.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Base URL of `callq serve`.
    pub server: String,
    /// The agent's id.
    pub agent: String,
    /// The agent's bearer token.
    pub token: String,
    /// Longest one request may take.
    pub timeout: Duration,
    pub action: AgentAction,
}

/// Why a request failed: the network, or the server's JSON error.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{status}: {} ({}){}", .error.message, .error.code,
        .error.field.as_ref().map(|f| format!(" [field {f}]")).unwrap_or_default())]
    Api {
        status: StatusCode,
        error: ErrorDetail,
    },
}

impl ClientError {
    /// The server's stable error code, when the server answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { error, .. } => Some(&error.code),
            ClientError::Http(_) => None,
        }
    }

    /// Whether retrying cannot help: the token or the agent is wrong, or the request is. A
    /// 408 (the body was late: the network's doing) and a 429 (a gateway's rate limit) are
    /// worth another try.
    pub fn is_permanent(&self) -> bool {
        match self {
            ClientError::Api { status, .. } => {
                status.is_client_error()
                    && *status != StatusCode::REQUEST_TIMEOUT
                    && *status != StatusCode::TOO_MANY_REQUESTS
            }
            ClientError::Http(_) => false,
        }
    }
}

/// One agent's client of the agent API.
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    agent_url: Url,
    auth: String,
}

impl AgentClient {
    /// A client for agent `agent` on the server at `server`, with a per-request `timeout`.
    pub fn new(server: &str, agent: &str, token: &str, timeout: Duration) -> anyhow::Result<Self> {
        let mut agent_url =
            Url::parse(server).with_context(|| format!("--server {server:?} is not a URL"))?;
        agent_url
            .path_segments_mut()
            .map_err(|_| anyhow::anyhow!("--server {server:?} cannot be a base URL"))?
            .pop_if_empty()
            .extend(["v1", "agents", agent]);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .context("HTTP client")?;
        Ok(AgentClient {
            http,
            agent_url,
            auth: format!("Bearer {}", token.trim()),
        })
    }

    fn url(&self, leaf: Option<&str>) -> Url {
        let mut url = self.agent_url.clone();
        if let (Some(leaf), Ok(mut segments)) = (leaf, url.path_segments_mut()) {
            segments.push(leaf);
        }
        url
    }

    /// `GET /v1/agents/{id}`.
    pub async fn whoami(&self) -> Result<AgentView, ClientError> {
        let req = self.http.get(self.url(None));
        self.send(req).await
    }

    /// `POST /v1/agents/{id}/heartbeat`.
    pub async fn heartbeat(
        &self,
        device_registered: bool,
    ) -> Result<HeartbeatResponse, ClientError> {
        let req = self
            .http
            .post(self.url(Some("heartbeat")))
            .json(&HeartbeatRequest { device_registered });
        self.send(req).await
    }

    /// `PUT /v1/agents/{id}/status`. On a call, paused/offline is an `Err` with code
    /// `deferred_until_call_ends`: recorded, applied when the call ends.
    pub async fn set_status(
        &self,
        status: RequestedStatus,
        reason: Option<&str>,
    ) -> Result<StatusResponse, ClientError> {
        let req = self
            .http
            .put(self.url(Some("status")))
            .json(&StatusRequest {
                status,
                reason: reason.map(str::to_string),
            });
        self.send(req).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let res = req
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .send()
            .await?;
        let status = res.status();
        if status.is_success() {
            return Ok(res.json().await?);
        }
        let bytes = res.bytes().await?;
        let error = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| b.error)
            .unwrap_or_else(|_| ErrorDetail {
                code: "http".into(),
                message: String::from_utf8_lossy(&bytes)
                    .trim()
                    .chars()
                    .take(200)
                    .collect(),
                field: None,
            });
        Err(ClientError::Api { status, error })
    }
}

pub async fn run(options: AgentOptions) -> anyhow::Result<()> {
    let client = AgentClient::new(
        &options.server,
        &options.agent,
        &options.token,
        options.timeout,
    )?;
    let id = &options.agent;
    match options.action {
        AgentAction::Whoami => {
            let me = client.whoami().await?;
            println!("{}", serde_json::to_string_pretty(&me)?);
        }
        AgentAction::Heartbeat { device_registered } => {
            let hb = client.heartbeat(device_registered).await?;
            println!("{id}: {} (online for {} ms)", hb.status, hb.ttl_ms);
        }
        AgentAction::Status { status, reason } => {
            match client.set_status(status, reason.as_deref()).await {
                Ok(s) => println!("{id}: {}", s.status),
                Err(e) if e.code() == Some("deferred_until_call_ends") => {
                    println!("{id}: on a call; {status} once it ends")
                }
                Err(e) => return Err(e.into()),
            }
        }
        AgentAction::Run {
            every,
            status,
            device_registered,
        } => {
            let (trigger, shutdown) = crate::shutdown::channel();
            trigger.on_signals();
            run_until(&client, id, every, status, device_registered, shutdown).await?;
        }
    }
    Ok(())
}

/// Heartbeat every `every`, asking for `status` after the first one, until `shutdown`
/// trips; then go offline. Network errors and 5xx are logged and retried at the next beat;
/// an error retrying cannot mend (bad token, unknown agent) stops the loop.
pub async fn run_until(
    client: &AgentClient,
    id: &str,
    every: Duration,
    status: RequestedStatus,
    device_registered: bool,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    let every = every.max(Duration::from_millis(100));
    let first = client
        .heartbeat(device_registered)
        .await
        .context("first heartbeat")?;
    if first.ttl_ms <= every.as_millis() as u64 {
        tracing::warn!(
            every_ms = every.as_millis() as u64,
            ttl_ms = first.ttl_ms,
            "heartbeats are further apart than the server's TTL: the agent will flap offline"
        );
    }
    match client.set_status(status, None).await {
        Ok(s) => println!("{id}: {}", s.status),
        Err(e) if e.code() == Some("deferred_until_call_ends") => {
            println!("{id}: on a call; {status} once it ends")
        }
        Err(e) => return Err(e).context(format!("going {status}")),
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is now; that beat was sent above
    let mut last = first.status;
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            _ = tick.tick() => match client.heartbeat(device_registered).await {
                Ok(hb) => {
                    if hb.status != last {
                        println!("{id}: {}", hb.status);
                        last = hb.status;
                    }
                }
                Err(e) if e.is_permanent() => return Err(e).context("heartbeat"),
                Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying"),
            },
        }
    }
    match client
        .set_status(RequestedStatus::Offline, Some("client exit"))
        .await
    {
        Ok(s) => println!("{id}: {}", s.status),
        Err(e) if e.code() == Some("deferred_until_call_ends") => {
            println!("{id}: on a call; offline once it ends")
        }
        Err(e) => return Err(e).context("going offline"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_servers_path_and_escape_the_id() {
        let c = AgentClient::new("http://h:8080/callq/", "a1", " t ", Duration::from_secs(1))
            .expect("client");
        assert_eq!(
            c.url(Some("heartbeat")).as_str(),
            "http://h:8080/callq/v1/agents/a1/heartbeat"
        );
        assert_eq!(c.url(None).as_str(), "http://h:8080/callq/v1/agents/a1");
        assert_eq!(c.auth, "Bearer t");
        let odd =
            AgentClient::new("http://h", "a/b c", "t", Duration::from_secs(1)).expect("client");
        assert_eq!(odd.url(None).as_str(), "http://h/v1/agents/a%2Fb%20c");
        assert!(AgentClient::new("not a url", "a1", "t", Duration::from_secs(1)).is_err());
    }

    #[test]
    fn a_late_body_or_a_rate_limit_is_retried_any_other_4xx_is_permanent() {
        let answered = |status: StatusCode| ClientError::Api {
            status,
            error: ErrorDetail {
                code: "x".into(),
                message: String::new(),
                field: None,
            },
        };
        for retried in [
            StatusCode::REQUEST_TIMEOUT,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::INTERNAL_SERVER_ERROR,
        ] {
            assert!(!answered(retried).is_permanent(), "{retried}");
        }
        for permanent in [
            StatusCode::BAD_REQUEST,
            StatusCode::UNAUTHORIZED,
            StatusCode::NOT_FOUND,
            StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNPROCESSABLE_ENTITY,
        ] {
            assert!(answered(permanent).is_permanent(), "{permanent}");
        }
    }
}
