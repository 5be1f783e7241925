//! What every `callq serve` handler shares: the routing store, the centre's configuration,
//! the process's settings and a short-lived cache of queue numbers (built once at start; cheap
//! to clone into each request), and the one way handlers read a request body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::features::{Feature, FeaturesConfig};
use crate::config::CentreConfig;
use crate::store::read::QueueStats;
use crate::store::{Store, Switches};

/// Settings of the Twilio edge (webhooks).
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Public base URL Twilio calls, without a trailing slash; signatures are checked on it.
    pub public_url: String,
    /// Twilio auth token; signs every webhook.
    pub auth_token: String,
    /// Longest a webhook waits on Redis before answering with the fallback.
    pub redis_deadline: Duration,
    /// Log callers' full numbers; off (the default), logs show the last four digits only.
    pub log_caller_numbers: bool,
}

/// Settings of the agent and admin APIs.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub admin_token: String,
    pub agent_secret: Vec<u8>,
    pub heartbeat_ttl: Duration,
    /// What signs Twilio Voice access tokens for agent desktops (None: no API key set).
    pub voice: Option<VoiceGrant>,
    /// Where the agent console loads the Twilio Voice SDK from (`CALLQ_VOICE_SDK_URL`; empty:
    /// the pinned default, `agents::console::DEFAULT_VOICE_SDK_URL`).
    pub voice_sdk_url: String,
}

/// What signs Twilio Voice access tokens (`agents::voice_token`): the account and one of its
/// API keys.
#[derive(Debug, Clone)]
pub struct VoiceGrant {
    /// `AC…`: the token's subject.
    pub account_sid: String,
    /// `SK…`: the token's issuer.
    pub api_key: String,
    /// The API key's secret: the HS256 key.
    pub api_secret: String,
    /// How long a token lasts.
    pub ttl: Duration,
}

/// Settings of the operator views (wallboard, metrics).
#[derive(Debug, Clone, Default)]
pub struct OpsSettings {
    /// Read-only token that opens the wallboard (the admin token opens it too); empty: none.
    pub viewer_token: String,
    /// Bearer token `/metrics` asks for; empty: `/metrics` answers anyone.
    pub metrics_token: String,
    /// How often the wallboard's history samples every queue (see `store::history`); zero:
    /// this server takes no samples (another replica may).
    pub history_every: std::time::Duration,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub centre: Arc<CentreConfig>,
    pub edge: Arc<EdgeSettings>,
    pub agents: Arc<AgentSettings>,
    pub ops: Arc<OpsSettings>,
    /// Queue numbers for the wait estimate, shared by every request of this server.
    pub stats_cache: Arc<StatsCache>,
    /// Run-time switches (the rollout share), as Redis last said.
    pub switches: Arc<SwitchCache>,
}

impl AppState {
    /// An absolute URL on our public base for `path` (which starts with `/`).
    pub fn public(&self, path: &str) -> String {
        format!("{}{}", self.edge.public_url.trim_end_matches('/'), path)
    }

    /// The features as they apply now (the file's `[features]` with an admin's overrides,
    /// read through [`SwitchCache`]; the last known ones when Redis is slow).
    pub async fn features(&self) -> FeaturesConfig {
        let deadline = SWITCH_DEADLINE.min(self.edge.redis_deadline);
        self.switches
            .features(&self.store, self.centre.features, deadline)
            .await
    }
}

/// Longest a read of the switches may take before the last known ones are used.
pub const SWITCH_DEADLINE: Duration = Duration::from_millis(100);

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

/// How long a run-time switch read from Redis is used before it is read again: an admin's
/// change reaches every server within this.
pub const SWITCH_TTL: Duration = Duration::from_millis(500);

/// The run-time switches as Redis last said (re-read at most every [`SWITCH_TTL`]). When
/// Redis does not answer, the last value read stands (the configured one before any read),
/// and it is not asked again before the TTL passes, so an outage costs a caller no more than
/// one short wait.
#[derive(Debug, Default)]
pub struct SwitchCache {
    last: Mutex<Option<(Instant, Switches)>>,
}

impl SwitchCache {
    /// The overrides now: one read of the switches hash per [`SWITCH_TTL`].
    async fn current(&self, store: &Store, deadline: Duration) -> Switches {
        let last = self.last.lock().ok().and_then(|g| g.clone());
        if let Some((at, sw)) = &last {
            if at.elapsed() < SWITCH_TTL {
                return sw.clone();
            }
        }
        let sw = match tokio::time::timeout(deadline, store.switches()).await {
            Ok(Ok(sw)) => sw,
            _ => last.map(|(_, sw)| sw).unwrap_or_default(),
        };
        if let Ok(mut g) = self.last.lock() {
            *g = Some((Instant::now(), sw.clone()));
        }
        sw
    }

    /// The share of callers callq routes now: the admin's override, else `configured`.
    pub async fn rollout_share(&self, store: &Store, configured: u8, deadline: Duration) -> u8 {
        self.current(store, deadline)
            .await
            .share_pct
            .unwrap_or(configured)
    }

    /// The features as they apply now: `configured` (the file's) with the admin's overrides.
    pub async fn features(
        &self,
        store: &Store,
        configured: FeaturesConfig,
        deadline: Duration,
    ) -> FeaturesConfig {
        let sw = self.current(store, deadline).await;
        let overrides: Vec<(Feature, bool)> = sw
            .features
            .iter()
            .filter_map(|(name, on)| Some((Feature::parse(name)?, *on)))
            .collect();
        configured.with(&overrides)
    }
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the server's limit (413).
    TooLarge,
    /// Not all sent within the server's body read timeout (408).
    TimedOut,
    /// The connection failed mid-body, or the like (400).
    Unreadable,
}

/// The whole body of `req`, within the server's size limit and read timeout.
pub async fn read_body(req: axum::extract::Request) -> Result<axum::body::Bytes, BodyError> {
    use axum::extract::FromRequest;
    let rejection = match axum::body::Bytes::from_request(req, &()).await {
        Ok(bytes) => return Ok(bytes),
        Err(rejection) => rejection,
    };
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return Err(BodyError::TooLarge);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return Err(BodyError::TimedOut);
        }
        source = e.source();
    }
    Err(BodyError::Unreadable)
}
