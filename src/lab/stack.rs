//! callq and everything around it in one process: a Redis (a private `redis-server` child
//! unless a URL is given), `callq serve` on a loopback port, `callq worker`s, and the Twilio
//! simulator with its REST API on another port. Used by `callq demo`, `callq bench` and the
//! end-to-end tests; each run gets a centre of its own, so a shared Redis is never disturbed.

use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::CentreConfig;
use crate::lab::embedded_redis::EmbeddedRedis;
use crate::server::ServeSettings;
use crate::shutdown::{self, ShutdownTrigger};
use crate::sim::{Sim, SimConfig};
use crate::store::{QueueSettings, Store};
use crate::worker::{Settings, TwilioAccount, WorkerConfig};

/// What to start.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// A Redis to use; None starts a private `redis-server`.
    pub redis_url: Option<String>,
    /// The centre (its name is used as given, so pick a fresh one on a shared Redis).
    pub centre: CentreConfig,
    /// Routing settings written after start, with millisecond precision (compressed
    /// wrap-up and delays that whole seconds in the TOML cannot say).
    pub queue_overrides: Vec<QueueSettings>,
    /// `callq worker`s run in this process (0: none; they run elsewhere, e.g. as `callq worker`
    /// processes started with [`Stack::worker_env`]).
    pub workers: usize,
    /// callq's heartbeat TTL (real).
    pub heartbeat_ttl: Duration,
    /// The simulator's settings; its URLs and secrets are filled in here.
    pub sim: SimConfig,
}

/// A running stack. [`Stack::stop`] shuts everything down in order.
pub struct Stack {
    pub sim: std::sync::Arc<Sim>,
    pub store: Store,
    pub centre: CentreConfig,
    /// callq's base URL (webhooks, agent API, metrics).
    pub callq_url: String,
    /// The simulated Twilio REST API's base URL.
    pub rest_url: String,
    pub redis_url: String,
    /// Whether Redis is our own child process.
    pub embedded_redis: bool,
    /// The read-only token that opens the wallboard (this run's own, random).
    pub viewer_token: String,
    /// The admin API's token (this run's own, random).
    pub admin_token: String,
    callq_trigger: ShutdownTrigger,
    sim_trigger: ShutdownTrigger,
    sim_shutdown: crate::shutdown::Shutdown,
    worker: WorkerConfig,
    tasks: Vec<JoinHandle<()>>,
    redis: Option<EmbeddedRedis>,
}

fn secret(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

impl Stack {
    pub async fn start(mut opts: StackOptions) -> anyhow::Result<Stack> {
        let (redis, redis_url) = match opts.redis_url.clone() {
            Some(url) => (None, url),
            None => {
                let r = tokio::task::spawn_blocking(EmbeddedRedis::start)
                    .await
                    .context("starting redis-server")??;
                let url = r.url();
                (Some(r), url)
            }
        };
        let callq_listener = TcpListener::bind("127.0.0.1:0").await?;
        let rest_listener = TcpListener::bind("127.0.0.1:0").await?;
        let callq_url = format!("http://{}", callq_listener.local_addr()?);
        let rest_url = format!("http://{}", rest_listener.local_addr()?);
        let admin_token = secret(32);
        let agent_secret = secret(48);
        let auth_token = secret(32);
        let viewer_token = secret(32);
        let account_sid = format!("AC{:032x}", rand::random::<u128>());
        let heartbeat_ms = opts.heartbeat_ttl.as_millis().max(100);
        let serve = ServeSettings {
            auth_token: auth_token.clone(),
            admin_token: admin_token.clone(),
            agent_secret,
            viewer_token: viewer_token.clone(),
            // the lab's runs are short: a chart point every two seconds
            history_every: Duration::from_secs(2),
            heartbeat_ttl: Duration::from_millis(u64::try_from(heartbeat_ms).unwrap_or(u64::MAX)),
            ..ServeSettings::new(&redis_url, &callq_url)
        };
        let mut settings = Settings::new(&callq_url).with_offer_lease(Duration::from_secs(5));
        settings.ring_grace = Duration::from_secs(5);
        settings.shutdown_grace = Duration::from_secs(3);
        let worker = WorkerConfig {
            redis_url: redis_url.clone(),
            redis_pool: serve.redis_pool,
            twilio: TwilioAccount {
                api_base: rest_url.clone(),
                account_sid: account_sid.clone(),
                auth_token: auth_token.clone(),
                api_key: None,
                api_secret: None,
            },
            settings,
            listen: None,
        };

        let (callq_trigger, callq_shutdown) = shutdown::channel();
        let (sim_trigger, sim_shutdown) = shutdown::channel();
        let state = crate::server::state(&serve, opts.centre.clone())
            .await
            .with_context(|| format!("connecting to redis at {redis_url}"))?;
        let store = state.store.clone();
        for q in &opts.queue_overrides {
            store.configure_queue(q).await?;
        }
        let mut tasks = Vec::new();
        let max_body = serve.max_body;
        let sd = callq_shutdown.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = crate::server::serve(callq_listener, state, max_body, sd).await {
                tracing::error!(error = %e, "callq serve stopped");
            }
        }));
        for _ in 0..opts.workers {
            let config = worker.clone();
            let centre = opts.centre.clone();
            let sd = callq_shutdown.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = crate::worker::run(&config, &centre, sd).await {
                    tracing::error!(error = format!("{e:#}"), "callq worker stopped");
                }
            }));
        }

        opts.sim.account_sid = account_sid;
        opts.sim.auth_token = auth_token;
        opts.sim.public_url = callq_url.clone();
        opts.sim.callq_url = callq_url.clone();
        opts.sim.admin_token = admin_token.clone();
        let sim = Sim::new(opts.sim, Some(store.clone()))?;
        sim.serve_rest(rest_listener, sim_shutdown.clone());
        Ok(Stack {
            sim,
            store,
            centre: opts.centre,
            callq_url,
            rest_url,
            redis_url,
            embedded_redis: redis.is_some(),
            viewer_token,
            admin_token,
            callq_trigger,
            sim_trigger,
            sim_shutdown,
            worker,
            tasks,
            redis,
        })
    }

    /// The environment of a `callq worker` process serving this stack as its in-process
    /// workers do (Redis, the simulator's REST API and account, the same tuning), less
    /// `CALLQ_CONFIG`, which names the centre's file.
    pub fn worker_env(&self) -> Vec<(&'static str, String)> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let w = &self.worker;
        vec![
            ("REDIS_URL", w.redis_url.clone()),
            ("CALLQ_REDIS_POOL", w.redis_pool.to_string()),
            ("TWILIO_API_BASE", w.twilio.api_base.clone()),
            ("TWILIO_ACCOUNT_SID", w.twilio.account_sid.clone()),
            ("TWILIO_AUTH_TOKEN", w.twilio.auth_token.clone()),
            ("CALLQ_PUBLIC_URL", w.settings.public_url.clone()),
            ("CALLQ_OFFER_LEASE", ms(w.settings.offer_lease)),
            ("CALLQ_RING_GRACE", ms(w.settings.ring_grace)),
            ("CALLQ_WAKE_TIMEOUT", ms(w.settings.wake_timeout)),
            (
                "CALLQ_WORKER_CONCURRENCY",
                w.settings.concurrency.to_string(),
            ),
            ("CALLQ_SHUTDOWN_GRACE", ms(w.settings.shutdown_grace)),
            ("CALLQ_WORKER_LISTEN", "127.0.0.1:0".to_string()),
        ]
    }

    /// A shutdown signal for the simulator's own tasks (agents), tripped by [`Stack::stop`].
    pub fn sim_shutdown(&self) -> crate::shutdown::Shutdown {
        self.sim_shutdown.clone()
    }

    /// Stops callq (server and workers), then the simulator, then Redis.
    pub async fn stop(self) {
        self.callq_trigger.trigger();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        self.sim_trigger.trigger();
        if let Some(r) = self.redis {
            let _ = tokio::task::spawn_blocking(move || drop(r)).await;
        }
    }
}
