//! Command-line interface: every setting is a flag and an environment variable (clap `env`).
//! The binary (`main.rs`) only parses these and calls into the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer Twilio's webhooks and the agent and admin APIs.
    Serve(ServeArgs),
    /// Claim (call, agent) pairs and ring agents through Twilio's REST API; reap leases.
    Worker(WorkerArgs),
    /// Serve and work in one process (single-node installs, development).
    All(AllArgs),
    /// Everything on an embedded default: own redis-server, simulated Twilio, agents, callers.
    Demo(crate::lab::demo::DemoArgs),
    /// The demo under a chosen load, reported against Erlang C.
    Bench(crate::lab::bench::BenchArgs),
    /// A readable dump of a centre's queues, agents and calls.
    Inspect(InspectArgs),
    /// A small agent client: heartbeat and status, for scripts and trials.
    Agent(crate::agents::client::AgentArgs),
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
    /// The public base URL Twilio calls (as configured on the number), e.g. https://callq.example.com.
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
    /// Heartbeat time-to-live: an agent silent this long is offline.
    #[arg(long, env = "CALLQ_HEARTBEAT_TTL", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat_ttl: Duration,
    /// Longest a webhook waits on Redis before answering with the fallback.
    #[arg(long, env = "CALLQ_REDIS_DEADLINE", default_value = "300ms", value_parser = parse_duration)]
    pub redis_deadline: Duration,
    /// Largest request body accepted (bytes).
    #[arg(long, env = "CALLQ_MAX_BODY", default_value_t = 64 * 1024)]
    pub max_body: usize,
}

#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub twilio: TwilioArgs,
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
    /// Bound on the graceful shutdown (in-flight REST calls finish within it).
    #[arg(long, env = "CALLQ_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct AllArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[arg(long, env = "CALLQ_OFFER_LEASE", default_value = "10s", value_parser = parse_duration)]
    pub offer_lease: Duration,
    #[arg(long, env = "CALLQ_RING_GRACE", default_value = "30s", value_parser = parse_duration)]
    pub ring_grace: Duration,
    #[arg(long, env = "CALLQ_WAKE_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub wake_timeout: Duration,
    #[arg(long, env = "CALLQ_WORKER_CONCURRENCY", default_value_t = 64)]
    pub concurrency: usize,
    #[arg(long, env = "CALLQ_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl AllArgs {
    pub fn worker_args(&self) -> WorkerArgs {
        WorkerArgs {
            common: self.serve.common.clone(),
            twilio: self.serve.twilio.clone(),
            offer_lease: self.offer_lease,
            ring_grace: self.ring_grace,
            wake_timeout: self.wake_timeout,
            concurrency: self.concurrency,
            shutdown_grace: self.shutdown_grace,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
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
}
