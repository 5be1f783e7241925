//! What every `callq serve` handler shares: the routing store, the centre's configuration,
//! the process's settings and a short-lived cache of queue numbers. Built once at start; cheap
//! to clone into each request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::CentreConfig;
use crate::store::read::QueueStats;
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
    /// Queue numbers for the wait estimate, shared by every request of this server.
    pub stats_cache: Arc<StatsCache>,
}

impl AppState {
    /// An absolute URL on our public base for `path` (which starts with `/`).
    pub fn public(&self, path: &str) -> String {
        format!("{}{}", self.edge.public_url.trim_end_matches('/'), path)
    }
}

/// Each queue's numbers for the wait estimate (agents by status, mean handle time), kept a
/// short while: the caller's place in line is always read live, but the estimate around it
/// moves slowly, and reading every agent on every wait request would cost five round trips.
#[derive(Debug, Default)]
pub struct StatsCache {
    entries: Mutex<HashMap<String, (Instant, Arc<QueueStats>)>>,
}

impl StatsCache {
    /// [`Store::queue_stats`] of `queue`, reused while younger than `ttl` (per centre and
    /// queue).
    pub async fn queue_stats(
        &self,
        store: &Store,
        queue: &str,
        ttl: Duration,
    ) -> crate::store::Result<Arc<QueueStats>> {
        let key = format!("{}{}", store.prefix(), queue);
        if let Ok(map) = self.entries.lock() {
            if let Some((at, stats)) = map.get(&key) {
                if at.elapsed() < ttl {
                    return Ok(stats.clone());
                }
            }
        }
        let stats = Arc::new(store.queue_stats(queue).await?);
        if let Ok(mut map) = self.entries.lock() {
            map.insert(key, (Instant::now(), stats.clone()));
        }
        Ok(stats)
    }
}
