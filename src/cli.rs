//! The command line: every clap type of callq, and nothing else knows clap. Every setting is a
//! flag and an environment variable (clap `env`). The binary (`main.rs`) parses [`Cli`] and
//! turns each command's flags into the plain settings its library entry point takes
//! ([`crate::server::ServeSettings`], [`crate::worker::WorkerConfig`], …); refusals of values
//! a process cannot run with name the environment variable and the flag.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::agents::client::{AgentAction, AgentOptions};
use crate::archive::outbound::OutboundOptions;
use crate::archive::report::ReportOptions;
use crate::archive::ArchiveOptions;
#[cfg(feature = "lab")]
use crate::lab::{
    bench::core::CoreOptions, bench::route::Route, bench::BenchOptions, demo::DemoOptions,
};
use crate::ops::inspect::InspectOptions;
use crate::server::ServeSettings;
use crate::store::RequestedStatus;
use crate::worker::{Settings, TwilioAccount, WorkerConfig};

#[derive(Debug, Parser)]
#[command(
    name = "callq",
    version,
    about = "An inbound call queue (ACD) for Twilio"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The command line of this process, parsed (on a parse error or `--help`, clap prints and
/// exits).
pub fn parse() -> Cli {
    Cli::parse()
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer Twilio's webhooks and the agent and admin APIs.
    Serve(ServeArgs),
    /// Claim (call, agent) pairs and ring agents through Twilio's REST API; reap leases.
    Worker(WorkerArgs),
    /// Serve and work in one process (single-node installs, development).
    All(AllArgs),
    /// Everything on an embedded default: own redis-server, simulated Twilio, agents, callers.
    #[cfg(feature = "lab")]
    Demo(DemoArgs),
    /// The demo under a chosen load, reported against Erlang C.
    #[cfg(feature = "lab")]
    Bench(BenchArgs),
    /// Failure drills under the bench's load: a worker killed, Redis restarted, a cluster
    /// failover, Twilio's REST API answering 500; calls lost, double bookings, time to recover.
    #[cfg(feature = "lab")]
    Drill(DrillArgs),
    /// A readable dump of a centre's queues, agents and calls.
    Inspect(InspectArgs),
    /// A small agent client: heartbeat and status, for scripts and trials.
    Agent(AgentArgs),
    /// Copy the centre's event stream into PostgreSQL (the durable call archive), and relay
    /// each event to the outbound receivers configured.
    Archive(ArchiveArgs),
    /// The centre's KPIs per day and queue, from the archive in PostgreSQL.
    Report(ReportArgs),
    /// After Redis lost data: restore queues (config), agents and callbacks (archive) and
    /// waiting callers (Twilio). A dry run unless --apply.
    Reconcile(ReconcileArgs),
}

/// `callq reconcile` settings.
#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub twilio: TwilioArgs,
    /// The archive's PostgreSQL (agents and callbacks are restored from it).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Write what is missing (without it: only say what would be written).
    #[arg(long)]
    pub apply: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl ReconcileArgs {
    /// The Twilio account to read the queues and calls of.
    pub fn account(&self) -> TwilioAccount {
        self.twilio.account()
    }
}

/// Settings every process shares.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Redis holding the routing state.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379/")]
    pub redis_url: String,
    /// The centre's TOML file (queues, numbers, hours, priority). Default: the embedded demo.
    #[arg(long, env = "CALLQ_CONFIG")]
    pub config: Option<PathBuf>,
    /// Redis connections per process.
    #[arg(long, env = "CALLQ_REDIS_POOL", default_value_t = 32)]
    pub redis_pool: usize,
    /// Log as JSON lines (for log shippers) instead of text.
    #[arg(long, env = "CALLQ_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

/// Twilio account settings.
#[derive(Debug, Clone, Args)]
pub struct TwilioArgs {
    #[arg(
        long,
        env = "TWILIO_ACCOUNT_SID",
        default_value = "AC00000000000000000000000000000000"
    )]
    pub account_sid: String,
    /// Signs webhooks and authenticates REST calls (unless an API key is given).
    #[arg(
        long,
        env = "TWILIO_AUTH_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub auth_token: String,
    /// API key SID for REST calls (optional; the account SID and auth token otherwise).
    #[arg(long, env = "TWILIO_API_KEY")]
    pub api_key: Option<String>,
    #[arg(long, env = "TWILIO_API_SECRET", hide_env_values = true)]
    pub api_secret: Option<String>,
    /// Base URL of Twilio's REST API (a simulator's in tests and the demo).
    #[arg(
        long,
        env = "TWILIO_API_BASE",
        default_value = "https://api.twilio.com"
    )]
    pub api_base: String,
    /// The public base URL Twilio calls (as configured on the number), e.g. `https://callq.example.com`.
    /// Signatures are checked against it, since callq sits behind a load balancer.
    #[arg(
        long,
        env = "CALLQ_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub twilio: TwilioArgs,
    #[arg(long, env = "CALLQ_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Bearer token for the admin API.
    #[arg(
        long,
        env = "CALLQ_ADMIN_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub admin_token: String,
    /// Secret that signs agent tokens (at least 32 bytes).
    #[arg(
        long,
        env = "CALLQ_AGENT_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub agent_secret: String,
    /// Read-only token for the wallboard (at least 24 bytes; the admin token opens it too).
    #[arg(
        long,
        env = "CALLQ_VIEWER_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub viewer_token: String,
    /// Bearer token `/metrics` asks for (at least 16 bytes; empty: `/metrics` is open).
    #[arg(
        long,
        env = "CALLQ_METRICS_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub metrics_token: String,
    /// Heartbeat time-to-live: an agent silent this long is offline.
    #[arg(long, env = "CALLQ_HEARTBEAT_TTL", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat_ttl: Duration,
    /// Longest a webhook waits on Redis before answering with the fallback.
    #[arg(long, env = "CALLQ_REDIS_DEADLINE", default_value = "300ms", value_parser = parse_duration)]
    pub redis_deadline: Duration,
    /// Log callers' full numbers (for debugging a number's routing); off: logs show the last
    /// four digits only.
    #[arg(long, env = "CALLQ_LOG_CALLER_NUMBERS", default_value_t = false)]
    pub log_caller_numbers: bool,
    /// Largest request body accepted (bytes).
    #[arg(long, env = "CALLQ_MAX_BODY", default_value_t = 64 * 1024)]
    pub max_body: usize,
    /// Where the agent console (`/console`) loads the Twilio Voice SDK from: an http(s) URL or
    /// a path on this server. The default, a pinned release, is checked by subresource
    /// integrity; another URL is loaded as given.
    #[arg(long, env = "CALLQ_VOICE_SDK_URL", default_value = crate::agents::console::DEFAULT_VOICE_SDK_URL)]
    pub voice_sdk_url: String,
}

/// How a worker is tuned: shared by `callq worker` and `callq all`.
#[derive(Debug, Clone, Args)]
pub struct WorkerTuningArgs {
    /// Time a claimed offer has to reach Twilio before it is reaped and offered again.
    #[arg(long, env = "CALLQ_OFFER_LEASE", default_value = "10s", value_parser = parse_duration)]
    pub offer_lease: Duration,
    /// Grace added to the ring timeout once the agent's phone rings, for Twilio's callbacks.
    #[arg(long, env = "CALLQ_RING_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub ring_grace: Duration,
    /// Longest a worker blocks waiting for a wake marker (a safety net; wake-ups are pushed).
    #[arg(long, env = "CALLQ_WAKE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub wake_timeout: Duration,
    /// Offers rung at once per worker.
    #[arg(long, env = "CALLQ_WORKER_CONCURRENCY", default_value_t = 64)]
    pub concurrency: usize,
    /// Offers one claim makes at most, in one round trip to Redis, when the worker has slots
    /// free for them (1: one offer per claim).
    #[arg(long, env = "CALLQ_CLAIM_BATCH", default_value_t = 8)]
    pub claim_batch: usize,
    /// Bound on the graceful shutdown (in-flight REST calls finish within it).
    #[arg(long, env = "CALLQ_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub twilio: TwilioArgs,
    #[command(flatten)]
    pub tuning: WorkerTuningArgs,
    /// Where the worker answers /healthz, /readyz and /metrics.
    #[arg(long, env = "CALLQ_WORKER_LISTEN", default_value = "0.0.0.0:9090")]
    pub listen: SocketAddr,
    /// Centres this worker serves, comma-separated (default: the config file's `centre`):
    /// one process, a wake loop per centre.
    #[arg(long, env = "CALLQ_CENTRES", value_delimiter = ',')]
    pub centres: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AllArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub tuning: WorkerTuningArgs,
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `callq archive` settings.
#[derive(Debug, Clone, Args)]
pub struct ArchiveArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The archive's PostgreSQL, e.g. postgres://callq@db:5432/callq (`?sslmode=require`: TLS,
    /// checked against the system roots or PGSSLROOTCERT).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Apply the schema migrations and exit.
    #[arg(long)]
    pub migrate_only: bool,
    /// The consumer group the archive's replicas share on the event stream.
    #[arg(long, env = "CALLQ_ARCHIVE_GROUP", default_value = "archive")]
    pub group: String,
    /// This process's consumer name in the group [default: host name and pid].
    #[arg(long, env = "CALLQ_ARCHIVE_CONSUMER")]
    pub consumer: Option<String>,
    /// Events read and written per transaction.
    #[arg(long, env = "CALLQ_ARCHIVE_BATCH", default_value_t = 200)]
    pub batch: usize,
    /// Events another consumer read and did not acknowledge for this long are taken over.
    #[arg(long, env = "CALLQ_ARCHIVE_CLAIM_IDLE", default_value = "60s", value_parser = parse_duration)]
    pub claim_idle: Duration,
    /// Receivers every event is POSTed to, comma-separated (empty: none).
    #[arg(
        long,
        env = "CALLQ_OUTBOUND_URLS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub outbound_urls: Vec<String>,
    /// The key of the outbound requests' HMAC-SHA256 signature (at least 16 bytes).
    #[arg(
        long,
        env = "CALLQ_OUTBOUND_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub outbound_secret: String,
    /// Longest wait for one receiver's answer.
    #[arg(long, env = "CALLQ_OUTBOUND_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub outbound_timeout: Duration,
    /// Write no archive (no PostgreSQL): relay the outbound events only.
    #[arg(long, env = "CALLQ_ARCHIVE_OUTBOUND_ONLY", default_value_t = false)]
    pub outbound_only: bool,
    /// Where the archive answers /healthz and /readyz.
    #[arg(long, env = "CALLQ_ARCHIVE_LISTEN", default_value = "0.0.0.0:9091")]
    pub listen: SocketAddr,
}

/// `callq report` settings.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The archive's PostgreSQL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// The centre [default: the config file's, else `main`].
    #[arg(long, env = "CALLQ_CENTRE")]
    pub centre: Option<String>,
    /// The centre's TOML file (for its name).
    #[arg(long, env = "CALLQ_CONFIG")]
    pub config: Option<PathBuf>,
    /// First day, YYYY-MM-DD (UTC).
    #[arg(long)]
    pub from: String,
    /// Last day, YYYY-MM-DD (UTC), included.
    #[arg(long)]
    pub to: String,
    /// One queue only.
    #[arg(long)]
    pub queue: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl ArchiveArgs {
    /// The archive's settings; refuses a missing DATABASE_URL (unless relaying only) and a
    /// short outbound secret.
    pub fn options(&self) -> Result<ArchiveOptions, String> {
        let database_url = match (&self.database_url, self.outbound_only) {
            (Some(u), _) if !u.trim().is_empty() => u.trim().to_string(),
            (_, true) => String::new(),
            _ => {
                return Err("set DATABASE_URL (--database-url) to the archive's PostgreSQL".into())
            }
        };
        let mut o = ArchiveOptions::new(&database_url);
        o.group = self.group.clone();
        if let Some(c) = self.consumer.as_ref().filter(|c| !c.trim().is_empty()) {
            o.consumer = c.trim().to_string();
        }
        o.batch = self.batch.clamp(1, 10_000);
        o.claim_idle = self.claim_idle;
        Ok(o)
    }

    /// The outbound receivers, or None when there are none.
    pub fn outbound(&self) -> Result<Option<OutboundOptions>, String> {
        let urls: Vec<String> = self
            .outbound_urls
            .iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if urls.is_empty() {
            if self.outbound_only {
                return Err("--outbound-only needs CALLQ_OUTBOUND_URLS (--outbound-urls)".into());
            }
            return Ok(None);
        }
        for u in &urls {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(format!(
                    "CALLQ_OUTBOUND_URLS (--outbound-urls): {u:?} is not an http(s) URL"
                ));
            }
        }
        if self.outbound_secret.len() < 16 {
            return Err(
                "CALLQ_OUTBOUND_SECRET (--outbound-secret) must be at least 16 bytes".into(),
            );
        }
        Ok(Some(OutboundOptions {
            urls,
            secret: self.outbound_secret.clone(),
            timeout: self.outbound_timeout,
        }))
    }
}

impl ReportArgs {
    pub fn options(&self, centre: &str) -> ReportOptions {
        ReportOptions {
            centre: centre.to_string(),
            from: self.from.trim().to_string(),
            to: self.to.trim().to_string(),
            queue: self.queue.clone().filter(|q| !q.trim().is_empty()),
        }
    }
}

#[cfg(feature = "lab")]
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// How long callers keep arriving (real seconds).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Simulated seconds per real second (talk times of a minute pass in seconds).
    #[arg(long, default_value_t = 10.0)]
    pub compress: f64,
    /// Use this Redis (a fresh centre in it) instead of a private redis-server.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// `callq bench` settings. Times of the load are simulated seconds.
#[cfg(feature = "lab")]
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Measure the routing core alone (Lua transitions against local Redis): see `bench::core`.
    #[arg(long)]
    pub core: bool,
    #[command(flatten)]
    pub core_args: CoreArgs,
    /// Print one JSON object instead of a table (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Agents on the floor (one queue, capacity 1).
    #[arg(id = "load_agents", long = "agents", default_value_t = 20)]
    pub agents: u32,
    /// Arrivals, in calls per simulated second (Poisson).
    #[arg(long, default_value_t = 0.09)]
    pub rate: f64,
    /// Mean talk time, simulated seconds (exponential).
    #[arg(long, default_value_t = 180.0)]
    pub talk: f64,
    /// Wrap-up after each call, simulated seconds.
    #[arg(long, default_value_t = 10.0)]
    pub wrapup: f64,
    /// Mean time an agent takes to pick up, simulated seconds (exponential).
    #[arg(long, default_value_t = 2.0)]
    pub answer_delay: f64,
    /// Mean caller patience, simulated seconds (exponential); 0: callers never hang up.
    #[arg(long, default_value_t = 0.0)]
    pub patience: f64,
    /// Probability that an agent lets an offer ring out.
    #[arg(long, default_value_t = 0.0)]
    pub no_answer: f64,
    /// Real seconds during which calls arrive.
    #[arg(long, default_value_t = 60.0)]
    pub duration: f64,
    /// Real seconds at the start not measured (the queue filling up); default a sixth of
    /// the duration.
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Longest real wait, after arrivals stop, for calls in progress to end.
    #[arg(long, default_value_t = 60.0)]
    pub drain: f64,
    /// callq workers in the process.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 60.0)]
    pub compress: f64,
    /// Service-level target, simulated seconds.
    #[arg(long, default_value_t = 20.0)]
    pub sl_target: f64,
    /// Offer a callback after this long in line, simulated seconds (0: never)
    /// [default: 0; --chaos: 60].
    #[arg(long)]
    pub callback_after: Option<f64>,
    /// Share of callers who take a callback when offered [default: 0; --chaos: 0.3].
    #[arg(long)]
    pub callback_share: Option<f64>,
    /// Mean time between device drops per agent, simulated seconds (0: never).
    #[arg(long, default_value_t = 0.0)]
    pub drops: f64,
    /// Share of REST requests the simulated Twilio refuses (429/500) before processing.
    #[arg(long, default_value_t = 0.0)]
    pub rest_faults: f64,
    /// Every fault below on at a moderate rate (the "--chaos" value in each one's help), and
    /// callers offered callbacks; flags given explicitly win.
    #[arg(long)]
    pub chaos: bool,
    /// Share of status callbacks (the number's, agent legs') never delivered
    /// [default: 0; --chaos: 0.05].
    #[arg(long)]
    pub drop_webhooks: Option<f64>,
    /// Share of webhooks delivered twice [default: 0; --chaos: 0.05].
    #[arg(long)]
    pub dup_webhooks: Option<f64>,
    /// Share of webhooks delayed by up to --max-webhook-delay, reordering them
    /// [default: 0; --chaos: 0.1].
    #[arg(long)]
    pub delay_webhooks: Option<f64>,
    /// Longest extra delay of a delayed webhook, real time [default: 2s].
    #[arg(long, value_parser = parse_duration)]
    pub max_webhook_delay: Option<Duration>,
    /// Pause Redis (CLIENT PAUSE … ALL) this long every --redis-pause-every while calls
    /// arrive, real time [default: 0s, never; --chaos: 1.5s].
    #[arg(long, value_parser = parse_duration)]
    pub redis_pause: Option<Duration>,
    /// Interval between Redis pauses [default: 20s].
    #[arg(long, value_parser = parse_duration)]
    pub redis_pause_every: Option<Duration>,
    /// Share of callback rings the customer lets ring out [default: 0; --chaos: 0.2].
    #[arg(long)]
    pub callback_no_answer: Option<f64>,
    /// Share of callback rings answered busy [default: 0; --chaos: 0.1].
    #[arg(long)]
    pub callback_busy: Option<f64>,
    /// Share of REST requests answered 404 (20404) before processing
    /// [default: 0; --chaos: 0.01].
    #[arg(long = "rest-404")]
    pub rest_404: Option<f64>,
    /// Share of REST writes answered 400 (21210 update, 21211 create)
    /// [default: 0; --chaos: 0.01].
    #[arg(long = "rest-400")]
    pub rest_400: Option<f64>,
    /// Share of REST requests answered 429 (20429) before processing
    /// [default: 0; --chaos: 0.02].
    #[arg(long = "rest-429")]
    pub rest_429: Option<f64>,
    /// Share of REST requests answered 500 (20500) before processing
    /// [default: 0; --chaos: 0.02].
    #[arg(long = "rest-500")]
    pub rest_500: Option<f64>,
    /// Use this Redis (a fresh centre in it) instead of a private redis-server.
    #[arg(id = "load_redis_url", long = "redis-url", env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// Where callers go: `callq`, `legacy` (callq's rollout gate at share 0: the old
    /// single-attempt path, one free agent rung once) or `split:<pct>` (that percent of callers,
    /// by the gate's caller hash, to callq; agents split in proportion).
    #[arg(long, default_value = "callq")]
    pub route: Route,
    /// How long the old phone system rings its one agent, simulated seconds.
    #[arg(long, default_value_t = 30.0)]
    pub legacy_ring: f64,
    /// Run the same load and seed with --route legacy, then --route callq, and print the
    /// plan's KPIs before and after side by side.
    #[arg(long, conflicts_with = "route")]
    pub compare: bool,
    /// A two-skill floor: callers split between a billing and a Spanish line, each requiring
    /// its skill at level 3 and widening as calls wait; reports the wait per skill and the
    /// share of calls answered within each widening step. With --core: calls and agents with
    /// skills in the routing core's cycle.
    #[arg(long)]
    pub skills: bool,
}

/// `callq drill` settings. Times of the load are simulated seconds; the fault's are real.
#[cfg(feature = "lab")]
#[derive(Debug, Clone, Args)]
pub struct DrillArgs {
    /// The drills, run one after another (default: all of them).
    #[arg(value_enum)]
    pub drills: Vec<crate::lab::drill::Drill>,
    /// How long callers keep arriving (real time).
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    pub duration: Duration,
    /// When the fault comes, into the arrivals (real time) [default: a third of the duration].
    #[arg(long, value_parser = parse_duration)]
    pub fault_at: Option<Duration>,
    /// How long Twilio's REST API answers 500 (rest-500) [default: 30s], or Redis stays down
    /// before it is started again (redis-restart, redis-kill) [default: 2s].
    #[arg(long, value_parser = parse_duration)]
    pub outage: Option<Duration>,
    /// Agents on the floor (one queue, capacity 1).
    #[arg(long, default_value_t = 20)]
    pub agents: u32,
    /// Arrivals, in calls per simulated second (Poisson).
    #[arg(long, default_value_t = 0.06)]
    pub rate: f64,
    /// Mean talk time, simulated seconds (exponential).
    #[arg(long, default_value_t = 180.0)]
    pub talk: f64,
    /// Simulated seconds per real second.
    #[arg(long, default_value_t = 60.0)]
    pub compress: f64,
    /// `callq worker` processes.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "lab")]
impl DrillArgs {
    /// One drill's settings each, the workers running `exe worker`.
    pub fn options(&self, exe: &std::path::Path) -> Vec<crate::lab::drill::DrillOptions> {
        use crate::lab::drill::{Drill, DrillOptions};
        let drills = if self.drills.is_empty() {
            Drill::ALL.to_vec()
        } else {
            self.drills.clone()
        };
        let duration = self.duration.as_secs_f64();
        drills
            .into_iter()
            .map(|d| {
                let base = DrillOptions::new(d, exe.to_path_buf());
                DrillOptions {
                    duration,
                    fault_at: self.fault_at.map_or(duration / 3.0, |f| f.as_secs_f64()),
                    outage: self.outage.map_or(base.outage, |o| o.as_secs_f64()),
                    agents: self.agents,
                    rate: self.rate,
                    talk: self.talk,
                    compress: self.compress,
                    workers: self.workers,
                    seed: self.seed,
                    ..base
                }
            })
            .collect()
    }
}

/// `callq bench --core` settings.
#[cfg(feature = "lab")]
#[derive(Debug, Clone, Args)]
pub struct CoreArgs {
    /// Redis to measure against (default: a private redis-server started for the run).
    #[arg(long = "core-redis-url", env = "CALLQ_BENCH_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Agents in the centre.
    #[arg(long = "core-agents", default_value_t = 200)]
    pub agents: u32,
    /// Concurrent claimers (as worker replicas would be).
    #[arg(long = "core-claimers", default_value_t = 8)]
    pub claimers: u32,
    /// How long the throughput phase runs, in seconds.
    #[arg(long = "core-seconds", default_value_t = 10)]
    pub seconds: u64,
    /// Samples per script in the latency phase.
    #[arg(long = "core-samples", default_value_t = 5000)]
    pub samples: u32,
    /// Skip the per-script Redis profile (its slow log at threshold 0 costs Redis time on
    /// every command); for comparing the cycle rate with another system on the same Redis.
    #[arg(long = "core-no-profile")]
    pub no_profile: bool,
    /// Also count the instructions Redis runs per script call: the Redis of
    /// `--core-redis-url` runs under `valgrind --tool=callgrind --callgrind-out-file=FILE`
    /// (`scripts/bench-instructions.sh` sets this up).
    #[arg(long = "core-callgrind", value_name = "FILE", requires = "redis_url")]
    pub callgrind: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Base URL of `callq serve`.
    #[arg(long, env = "CALLQ_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// The agent's id.
    #[arg(long = "agent", env = "CALLQ_AGENT_ID")]
    pub agent: String,
    /// The agent's bearer token (POST /v1/admin/agents/{id}/token issues one).
    #[arg(long, env = "CALLQ_AGENT_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Longest one request may take.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(subcommand)]
    pub command: AgentCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AgentCommand {
    /// Show the agent as the server sees it (also checks the token).
    Whoami,
    /// Send one heartbeat.
    Heartbeat {
        /// Report the Voice SDK device as not registered (no calls are offered then).
        #[arg(long)]
        no_device: bool,
    },
    /// Ask for a status once: available, paused or offline.
    Status {
        #[arg(value_parser = parse_status)]
        status: RequestedStatus,
        /// Kept with the status (e.g. "lunch").
        #[arg(long)]
        reason: Option<String>,
    },
    /// Heartbeat every --every until Ctrl-C or SIGTERM, then go offline.
    Run {
        /// Time between heartbeats (keep it well under the server's heartbeat TTL).
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        every: Duration,
        /// Status to ask for after the first heartbeat.
        #[arg(long, default_value = "available", value_parser = parse_status)]
        status: RequestedStatus,
        /// Report the Voice SDK device as not registered.
        #[arg(long)]
        no_device: bool,
    },
}

fn parse_status(s: &str) -> Result<RequestedStatus, String> {
    s.parse()
        .map_err(|_| format!("{s:?}: use available, paused or offline"))
}

impl ServeArgs {
    /// The server's settings (the listen address stays here: the binary binds it).
    pub fn settings(&self) -> ServeSettings {
        ServeSettings {
            redis_url: self.common.redis_url.clone(),
            redis_pool: self.common.redis_pool,
            public_url: self.twilio.public_url.clone(),
            auth_token: self.twilio.auth_token.clone(),
            admin_token: self.admin_token.clone(),
            agent_secret: self.agent_secret.clone(),
            viewer_token: self.viewer_token.clone(),
            metrics_token: self.metrics_token.clone(),
            history_every: crate::ops::wallboard::HISTORY_EVERY,
            heartbeat_ttl: self.heartbeat_ttl,
            redis_deadline: self.redis_deadline,
            max_body: self.max_body,
            log_caller_numbers: self.log_caller_numbers,
            voice: match (&self.twilio.api_key, &self.twilio.api_secret) {
                (Some(key), Some(secret)) if !key.is_empty() && !secret.is_empty() => {
                    Some(crate::app::VoiceGrant {
                        account_sid: self.twilio.account_sid.clone(),
                        api_key: key.clone(),
                        api_secret: secret.clone(),
                        ttl: crate::agents::voice_token::DEFAULT_VOICE_TOKEN_TTL,
                    })
                }
                _ => None,
            },
            voice_sdk_url: self.voice_sdk_url.clone(),
        }
    }
}

impl TwilioArgs {
    fn account(&self) -> TwilioAccount {
        TwilioAccount {
            api_base: self.api_base.clone(),
            account_sid: self.account_sid.clone(),
            auth_token: self.auth_token.clone(),
            api_key: self.api_key.clone(),
            api_secret: self.api_secret.clone(),
        }
    }
}

impl WorkerTuningArgs {
    /// The worker's settings for a server at `public_url`, refusing values a worker cannot
    /// run with.
    pub fn settings(&self, public_url: &str) -> anyhow::Result<Settings> {
        anyhow::ensure!(
            !self.offer_lease.is_zero(),
            "CALLQ_OFFER_LEASE (--offer-lease) must be more than 0"
        );
        anyhow::ensure!(
            !self.wake_timeout.is_zero(),
            "CALLQ_WAKE_TIMEOUT (--wake-timeout) must be more than 0"
        );
        anyhow::ensure!(
            self.concurrency > 0,
            "CALLQ_WORKER_CONCURRENCY (--concurrency) must be at least 1"
        );
        anyhow::ensure!(
            (1..=100).contains(&self.claim_batch),
            "CALLQ_CLAIM_BATCH (--claim-batch) must be from 1 to 100, got {}",
            self.claim_batch
        );
        let public = public_url.trim();
        anyhow::ensure!(
            public.starts_with("http://") || public.starts_with("https://"),
            "CALLQ_PUBLIC_URL (--public-url) must be an http(s) URL, got {public:?}"
        );
        let mut s = Settings::new(public).with_offer_lease(self.offer_lease);
        s.ring_grace = self.ring_grace;
        s.wake_timeout = self.wake_timeout;
        s.concurrency = self.concurrency;
        s.claim_batch = self.claim_batch;
        s.shutdown_grace = self.shutdown_grace;
        Ok(s)
    }

    fn worker_config(
        &self,
        common: &CommonArgs,
        twilio: &TwilioArgs,
        listen: Option<SocketAddr>,
    ) -> anyhow::Result<WorkerConfig> {
        Ok(WorkerConfig {
            redis_url: common.redis_url.clone(),
            redis_pool: common.redis_pool,
            twilio: twilio.account(),
            settings: self.settings(&twilio.public_url)?,
            listen,
        })
    }
}

impl WorkerArgs {
    /// What `callq worker` starts from.
    pub fn config(&self) -> anyhow::Result<WorkerConfig> {
        self.tuning
            .worker_config(&self.common, &self.twilio, Some(self.listen))
    }
}

impl AllArgs {
    /// What the worker of `callq all` starts from: the server's Redis and Twilio settings.
    pub fn worker_config(&self) -> anyhow::Result<WorkerConfig> {
        self.tuning
            .worker_config(&self.serve.common, &self.serve.twilio, None)
    }
}

impl InspectArgs {
    pub fn options(&self) -> InspectOptions {
        InspectOptions {
            redis_url: self.common.redis_url.clone(),
            json: self.json,
        }
    }
}

impl AgentArgs {
    pub fn options(&self) -> AgentOptions {
        let action = match &self.command {
            AgentCommand::Whoami => AgentAction::Whoami,
            AgentCommand::Heartbeat { no_device } => AgentAction::Heartbeat {
                device_registered: !no_device,
            },
            AgentCommand::Status { status, reason } => AgentAction::Status {
                status: *status,
                reason: reason.clone(),
            },
            AgentCommand::Run {
                every,
                status,
                no_device,
            } => AgentAction::Run {
                every: *every,
                status: *status,
                device_registered: !no_device,
            },
        };
        AgentOptions {
            server: self.server.clone(),
            agent: self.agent.clone(),
            token: self.token.clone(),
            timeout: self.timeout,
            action,
        }
    }
}

#[cfg(feature = "lab")]
impl DemoArgs {
    pub fn options(&self) -> DemoOptions {
        DemoOptions {
            duration: self.duration,
            compress: self.compress,
            redis_url: self.redis_url.clone(),
            seed: self.seed,
            ..DemoOptions::new(self.duration)
        }
    }
}

#[cfg(feature = "lab")]
impl BenchArgs {
    pub fn options(&self) -> BenchOptions {
        let c = &self.core_args;
        let base = BenchOptions {
            core: self.core,
            core_options: CoreOptions {
                redis_url: c.redis_url.clone(),
                agents: c.agents,
                claimers: c.claimers,
                seconds: c.seconds,
                samples: c.samples,
                profile: !c.no_profile,
                skills: self.skills,
                callgrind: c.callgrind.clone(),
            },
            json: self.json,
            agents: self.agents,
            rate: self.rate,
            talk: self.talk,
            wrapup: self.wrapup,
            answer_delay: self.answer_delay,
            patience: self.patience,
            no_answer: self.no_answer,
            duration: self.duration,
            warmup: self.warmup,
            drain: self.drain,
            workers: self.workers,
            seed: self.seed,
            compress: self.compress,
            sl_target: self.sl_target,
            drops: self.drops,
            rest_faults: self.rest_faults,
            redis_url: self.redis_url.clone(),
            route: self.route,
            legacy_ring: self.legacy_ring,
            compare: self.compare,
            skills: self.skills,
            ..BenchOptions::default()
        };
        let base = if self.chaos { base.chaos() } else { base };
        BenchOptions {
            callback_after: self.callback_after.unwrap_or(base.callback_after),
            callback_share: self.callback_share.unwrap_or(base.callback_share),
            drop_webhooks: self.drop_webhooks.unwrap_or(base.drop_webhooks),
            dup_webhooks: self.dup_webhooks.unwrap_or(base.dup_webhooks),
            delay_webhooks: self.delay_webhooks.unwrap_or(base.delay_webhooks),
            max_webhook_delay: self.max_webhook_delay.unwrap_or(base.max_webhook_delay),
            redis_pause: self.redis_pause.unwrap_or(base.redis_pause),
            redis_pause_every: self.redis_pause_every.unwrap_or(base.redis_pause_every),
            callback_no_answer: self.callback_no_answer.unwrap_or(base.callback_no_answer),
            callback_busy: self.callback_busy.unwrap_or(base.callback_busy),
            rest_404: self.rest_404.unwrap_or(base.rest_404),
            rest_400: self.rest_400.unwrap_or(base.rest_400),
            rest_429: self.rest_429.unwrap_or(base.rest_429),
            rest_500: self.rest_500.unwrap_or(base.rest_500),
            ..base
        }
    }
}

/// Durations as `250ms`, `15s`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 250ms, 15s, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if !secs.is_finite() || !(0.0..=86_400.0 * 30.0).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    fn parse(argv: &[&str]) -> Command {
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.command,
            Err(e) => panic!("{argv:?}: {e}"),
        }
    }

    #[test]
    fn worker_and_all_share_the_worker_flags_and_refuse_what_a_worker_cannot_run_with() {
        let config = |cmd: &str, public_url: &str, extra: &[&str]| {
            let mut argv = vec!["callq", cmd, "--public-url", public_url];
            argv.extend_from_slice(extra);
            match parse(&argv) {
                Command::Worker(args) => args.config(),
                Command::All(args) => args.worker_config(),
                other => panic!("{other:?}"),
            }
        };
        let tuned = [
            "--offer-lease",
            "5s",
            "--concurrency",
            "3",
            "--claim-batch",
            "2",
        ];
        for cmd in ["worker", "all"] {
            let c = config(cmd, " https://callq.example.com/ ", &tuned).expect("valid");
            assert_eq!(c.settings.public_url, "https://callq.example.com");
            assert_eq!(c.settings.offer_lease, Duration::from_secs(5));
            assert_eq!(c.settings.lease_margin, Duration::from_millis(500));
            assert_eq!(c.settings.concurrency, 3);
            assert_eq!(c.settings.claim_batch, 2);
            let defaults = config(cmd, "https://callq.example.com", &[]).expect("valid");
            assert_eq!(defaults.settings.claim_batch, 8);
        }
        let url = "https://callq.example.com";
        for (cmd, public_url, extra, names) in [
            (
                "worker",
                url,
                &["--offer-lease", "0s"][..],
                "CALLQ_OFFER_LEASE",
            ),
            ("all", url, &["--wake-timeout", "0"], "CALLQ_WAKE_TIMEOUT"),
            (
                "worker",
                url,
                &["--concurrency", "0"],
                "CALLQ_WORKER_CONCURRENCY",
            ),
            ("worker", url, &["--claim-batch", "0"], "CALLQ_CLAIM_BATCH"),
            ("all", url, &["--claim-batch", "101"], "CALLQ_CLAIM_BATCH"),
            ("all", "callq.example.com", &[], "CALLQ_PUBLIC_URL"),
        ] {
            let err = config(cmd, public_url, extra).expect_err("refused");
            assert!(err.to_string().contains(names), "{cmd} {extra:?}: {err}");
        }
    }

    #[cfg(feature = "lab")]
    #[test]
    fn bench_flags_default_to_the_bench_defaults() {
        let Command::Bench(args) = parse(&["callq", "bench"]) else {
            panic!("not the bench command")
        };
        let mut options = args.options();
        // REDIS_URL and CALLQ_BENCH_REDIS_URL may be set where the tests run
        options.redis_url = None;
        options.core_options.redis_url = None;
        assert_eq!(options, BenchOptions::default());
        assert!(options.faults().is_none());
    }

    #[cfg(feature = "lab")]
    #[test]
    fn chaos_turns_every_fault_on_and_explicit_flags_win() {
        let bench = |argv: &[&str]| {
            let mut full = vec!["callq", "bench"];
            full.extend_from_slice(argv);
            let Command::Bench(args) = parse(&full) else {
                panic!("not the bench command")
            };
            args.options()
        };
        let o = bench(&[
            "--drop-webhooks",
            "0.05",
            "--dup-webhooks",
            "0.05",
            "--delay-webhooks",
            "0.1",
            "--max-webhook-delay",
            "2s",
            "--redis-pause",
            "1.5s",
            "--redis-pause-every",
            "20s",
            "--callback-no-answer",
            "0.2",
            "--callback-busy",
            "0.1",
            "--rest-404",
            "0.01",
            "--rest-400",
            "0.01",
            "--rest-429",
            "0.02",
            "--rest-500",
            "0.02",
        ]);
        let chaos = bench(&["--chaos"]);
        assert_eq!(
            o.faults(),
            chaos.faults(),
            "the flags one by one give what --chaos gives"
        );
        assert_eq!(
            (o.redis_pause, o.redis_pause_every),
            (chaos.redis_pause, chaos.redis_pause_every)
        );
        assert_eq!(chaos.redis_pause, Duration::from_millis(1500));
        assert!(chaos.callback_share > 0.0 && chaos.callback_after > 0.0);
        let f = chaos.faults();
        assert!(f.webhooks.drop > 0.0 && f.customers.busy > 0.0 && f.rest.rate_400 > 0.0);
        let calm = bench(&["--chaos", "--drop-webhooks", "0", "--callback-share", "0"]);
        assert_eq!(calm.drop_webhooks, 0.0);
        assert_eq!(calm.callback_share, 0.0);
        assert_eq!(calm.dup_webhooks, 0.05);
    }

    #[cfg(feature = "lab")]
    #[test]
    fn drills_parse_by_name_and_default_to_all_five() {
        use crate::lab::drill::Drill;
        let exe = std::path::Path::new("/bin/callq");
        let Command::Drill(args) = parse(&["callq", "drill"]) else {
            panic!("not a drill")
        };
        let all = args.options(exe);
        assert_eq!(
            all.iter().map(|o| o.drill).collect::<Vec<_>>(),
            Drill::ALL.to_vec()
        );
        // a third of the way in by default; REST down 30 s, Redis 2 s
        assert!(all.iter().all(|o| o.fault_at == 30.0));
        assert_eq!(all[4].outage, 30.0);
        assert_eq!(all[1].outage, 2.0);
        for d in Drill::ALL {
            let Command::Drill(args) = parse(&["callq", "drill", d.name(), "--outage", "1s"])
            else {
                panic!("not a drill")
            };
            let o = args.options(exe);
            assert_eq!((o.len(), o[0].drill, o[0].outage), (1, d, 1.0));
        }
    }

    #[cfg(feature = "lab")]
    #[test]
    fn bench_routes_parse() {
        let bench = |argv: &[&str]| {
            let mut full = vec!["callq", "bench"];
            full.extend_from_slice(argv);
            Cli::try_parse_from(full).map(|cli| match cli.command {
                Command::Bench(args) => args.options(),
                _ => panic!("not the bench command"),
            })
        };
        let o = bench(&[]).expect("defaults");
        assert_eq!(
            (o.route, o.compare, o.legacy_ring),
            (Route::Callq, false, 30.0)
        );
        assert_eq!(bench(&["--route", "legacy"]).unwrap().route, Route::Legacy);
        assert_eq!(bench(&["--route", "callq"]).unwrap().route, Route::Callq);
        assert_eq!(
            bench(&["--route", "split:25"]).unwrap().route,
            Route::Split(25)
        );
        assert_eq!(bench(&["--route=split:0"]).unwrap().route, Route::Split(0));
        for bad in ["split:101", "split", "old", "split:ten"] {
            assert!(bench(&["--route", bad]).is_err(), "--route {bad} accepted");
        }
        let c = bench(&["--compare", "--legacy-ring", "20"]).unwrap();
        assert!(c.compare);
        assert_eq!(c.legacy_ring, 20.0);
        assert!(
            bench(&["--compare", "--route", "legacy"]).is_err(),
            "--compare runs both routes itself"
        );
    }

    #[test]
    fn agent_commands_parse() {
        let Command::Agent(args) = parse(&[
            "callq",
            "agent",
            "--server",
            "http://x:1",
            "--agent",
            "a1",
            "--token",
            "t",
            "run",
            "--every",
            "2s",
            "--status",
            "paused",
        ]) else {
            panic!("not the agent command")
        };
        let options = args.options();
        assert_eq!(
            (options.server.as_str(), options.agent.as_str()),
            ("http://x:1", "a1")
        );
        assert!(matches!(
            options.action,
            AgentAction::Run { every, status: RequestedStatus::Paused, device_registered: true }
                if every == Duration::from_secs(2)
        ));
        let Command::Agent(args) = parse(&[
            "callq", "agent", "--agent", "a1", "--token", "t", "status", "offline", "--reason",
            "home",
        ]) else {
            panic!("not the agent command")
        };
        assert!(matches!(
            args.options().action,
            AgentAction::Status { status: RequestedStatus::Offline, reason: Some(ref r) } if r == "home"
        ));
        let Command::Agent(args) = parse(&[
            "callq",
            "agent",
            "--agent",
            "a1",
            "--token",
            "t",
            "heartbeat",
            "--no-device",
        ]) else {
            panic!("not the agent command")
        };
        assert!(matches!(
            args.options().action,
            AgentAction::Heartbeat {
                device_registered: false
            }
        ));
        for bad in [
            &[
                "callq", "agent", "--agent", "a1", "--token", "t", "status", "busy",
            ][..],
            &[
                "callq", "agent", "--agent", "a1", "--token", "t", "run", "--every", "soon",
            ],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn archive_needs_a_database_and_a_long_enough_outbound_secret() {
        let archive = |extra: &[&str]| {
            let mut argv = vec!["callq", "archive"];
            argv.extend_from_slice(extra);
            match parse(&argv) {
                Command::Archive(args) => args,
                other => panic!("{other:?}"),
            }
        };
        // explicit flags: an environment's DATABASE_URL must not decide the test
        let a = archive(&["--database-url", "", "--outbound-urls", ""]);
        assert!(a.options().unwrap_err().contains("DATABASE_URL"));
        let a = archive(&[
            "--database-url",
            "postgres://postgres@db/callq",
            "--consumer",
            "me",
            "--batch",
            "0",
            "--outbound-urls",
            "",
        ]);
        let o = a.options().expect("valid");
        assert_eq!((o.consumer.as_str(), o.batch), ("me", 1));
        assert!(a.outbound().expect("none").is_none());
        let with = |urls: &str, secret: &str| {
            archive(&[
                "--database-url",
                "postgres://db/callq",
                "--outbound-urls",
                urls,
                "--outbound-secret",
                secret,
            ])
            .outbound()
        };
        let o = with(
            "https://a.example/h, http://b.example/h",
            "0123456789abcdef",
        )
        .expect("valid")
        .expect("receivers");
        assert_eq!(o.urls, ["https://a.example/h", "http://b.example/h"]);
        assert!(with("https://a.example/h", "short").is_err());
        assert!(with("ftp://a.example/h", "0123456789abcdef").is_err());
        // relaying alone needs no database, but receivers
        let a = archive(&[
            "--database-url",
            "",
            "--outbound-only",
            "--outbound-urls",
            "",
        ]);
        assert!(a.options().is_ok());
        assert!(a.outbound().is_err());
        let Command::Report(r) = parse(&[
            "callq",
            "report",
            "--database-url",
            "postgres://db/callq",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--queue",
            "sales",
        ]) else {
            panic!("not the report command")
        };
        let o = r.options("main");
        assert_eq!(
            (o.from.as_str(), o.queue.as_deref()),
            ("2026-11-01", Some("sales"))
        );
    }
}
