//! A Twilio simulator that behaves as Twilio does toward callq, for `callq demo`,
//! `callq bench` and the end-to-end tests (the [`crate::lab`] assembles and drives it). It
//! places inbound calls by POSTing signed, form-encoded webhooks with Twilio's parameter names,
//! follows the TwiML callq answers, serves Twilio's REST API for calls (the updates and
//! creations the worker makes, and the reads it checks Twilio's view with), and plays the
//! people: callers with patience, agents with devices, customers called back. It can inject
//! faults, all through the protocol ([`faults`]). Nothing in it knows callq's internals: it
//! speaks only the protocol (and, for measurements, reads callq's store at the end of a run).
//!
//! - [`twiml_exec`]: the TwiML interpreter (one call, as Twilio runs it).
//! - [`call`]: the world calls run in: webhooks, devices, customers.
//! - [`registry`]: Twilio's record of calls and their child legs, as the REST API reads it.
//! - [`rest`]: Twilio's REST API (update, create, fetch and list calls).
//! - [`recorder`]: a recording stand-in for that API whose answers a test or bench scripts,
//!   request by request.
//! - [`faults`]: what the simulator injects, all through Twilio's protocol: webhooks dropped,
//!   duplicated or delayed, callback customers who do not answer, REST refusals by code.
//! - [`agents`]: simulated agents on callq's real agent API; double bookings are seen here.
//! - [`webhook`]: signed webhook requests, timed, with the webhook faults applied.
//! - [`clock`]: time compression; [`load`]: Poisson arrivals of callers.
//! - [`stats`]: what is measured; [`verify`]: every call's final state checked in the store.

pub mod agents;
pub mod call;
pub mod clock;
pub mod faults;
pub mod load;
pub mod recorder;
pub mod registry;
pub mod rest;
pub mod stats;
pub mod twiml_exec;
pub mod verify;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::shutdown::Shutdown;
use crate::store::Store;
use agents::{AgentBehaviour, Agents};
pub use call::LegacyPhones;
use call::{MediaTimes, Numbers, SimEnv};
use clock::Clock;
pub use faults::Faults;
use rest::RestState;
use stats::Stats;
use webhook::Webhooks;

/// Everything the simulator is set up with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub account_sid: String,
    /// Signs webhooks; the REST API's basic-auth password.
    pub auth_token: String,
    /// The base URL callq is configured with (`CALLQ_PUBLIC_URL`): webhooks are signed on it.
    pub public_url: String,
    /// Where callq really listens (the same, unless behind a proxy).
    pub callq_url: String,
    pub admin_token: String,
    pub clock: Clock,
    pub agents: AgentBehaviour,
    /// callq's wrap-up and no-answer delay (real), for when agents are ready again.
    pub wrapup: Duration,
    pub no_answer_delay: Duration,
    pub media: MediaTimes,
    /// Mean time (simulated s) a customer takes to answer a callback.
    pub customer_answer_s: f64,
    /// What to inject (nothing by default).
    pub faults: Faults,
    pub seed: u64,
    /// The centre's old phone system behind a number (callq's legacy path), if any.
    pub legacy: Option<LegacyPhones>,
}

/// A running simulator.
pub struct Sim {
    pub env: Arc<SimEnv>,
    pub agents: Arc<Agents>,
    pub stats: Arc<Stats>,
    pub config: SimConfig,
    /// While set, the REST API answers every request 500 (see [`rest::RestState::outage`]).
    pub rest_outage: Arc<std::sync::atomic::AtomicBool>,
}

impl Sim {
    /// `store`, when given, is read for announced waits and the final check of every call.
    pub fn new(config: SimConfig, store: Option<Store>) -> anyhow::Result<Arc<Self>> {
        let stats = Arc::new(Stats::default());
        let hooks = Arc::new(Webhooks::new(
            &config.auth_token,
            &config.public_url,
            &config.callq_url,
            stats.clone(),
            config.faults.webhooks,
            config.seed,
        )?);
        let agents = Arc::new(Agents::new(
            config.agents.clone(),
            config.clock,
            config.seed,
            stats.clone(),
            &config.callq_url,
            &config.admin_token,
            config.wrapup,
            config.no_answer_delay,
        )?);
        let public = config.public_url.trim_end_matches('/').to_string();
        let numbers = Numbers {
            account_sid: config.account_sid.clone(),
            voice_url: format!("{public}/twilio/voice"),
            status_url: format!("{public}/twilio/status"),
            public_url: public,
        };
        let env = Arc::new(SimEnv::new(
            hooks,
            agents.clone(),
            stats.clone(),
            numbers,
            config.clock,
            config.media,
            config.customer_answer_s,
            config.faults.customers,
            config.seed,
            store,
            config.legacy.clone(),
        ));
        Ok(Arc::new(Self {
            env,
            agents,
            stats,
            config,
            rest_outage: Arc::default(),
        }))
    }

    /// Serves Twilio's REST API on `listener` until `shutdown`.
    pub fn serve_rest(&self, listener: TcpListener, mut shutdown: Shutdown) {
        let state = Arc::new(
            RestState::new(
                self.env.clone(),
                &self.config.account_sid,
                &self.config.auth_token,
                self.config.faults.rest,
                self.config.seed,
            )
            .with_outage(self.rest_outage.clone()),
        );
        let app = rest::router(state);
        if let Ok(addr) = listener.local_addr() {
            self.env.set_rest_base(&format!("http://{addr}"));
        }
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { shutdown.wait().await })
                .await;
        });
    }

    /// Ends every live call (their callers hang up).
    pub fn hang_up_all(&self) {
        self.env.registry.hang_up_all();
    }

    /// Waits until every call has ended and every webhook is answered; true if so in time.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let ended = self.env.registry.ended(timeout).await;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let quiet = self.env.hooks.quiet(left.max(Duration::from_secs(1))).await;
        ended && quiet
    }
}
