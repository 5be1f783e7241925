//! What every `callq serve` handler shares: the routing store, the centre's configuration and
//! the process's settings. Built once at start; cheap to clone into each request.

use std::sync::Arc;
use std::time::Duration;

use crate::config::CentreConfig;
use crate::store::Store;

/// Settings of the Twilio edge (webhooks).
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Public base URL Twilio calls, without a trailing slash; signatures are checked on it.
    pub public_url: String,
    /// Twilio auth token; signs every webhook.
    pub auth_token: String,
    /// Longest a webhook waits on Redis before answering with the fallback.
    pub redis_deadline: Duration,
}

/// Settings of the agent and admin APIs.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub admin_token: String,
    pub agent_secret: Vec<u8>,
    pub heartbeat_ttl: Duration,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub centre: Arc<CentreConfig>,
    pub edge: Arc<EdgeSettings>,
    pub agents: Arc<AgentSettings>,
}

impl AppState {
    /// An absolute URL on our public base for `path` (which starts with `/`).
    pub fn public(&self, path: &str) -> String {
        format!("{}{}", self.edge.public_url.trim_end_matches('/'), path)
    }
}
