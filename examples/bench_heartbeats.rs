//! Heartbeat throughput of a running `callq serve`: many agents beating through the real
//! HTTP API (admin API to provision, per-agent tokens, keep-alive connections).
//!
//! Two phases after setup:
//! - paced: heartbeats at a fixed rate (default 2,000/s: 10,000 agents every 5 s), each
//!   agent in turn; latency is measured from when each beat was due, so a server that falls
//!   behind shows it (no coordinated omission);
//! - max: every connection sends back to back for a while: the most the server takes.
//!
//! `scripts/bench-heartbeats.sh` starts a release-mode server and a private redis-server
//! and runs this against them; run it directly against a server of your own with
//! `cargo run --release --example bench_heartbeats -- --server URL --admin-token T`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use serde_json::json;

use callq::agents::types::{HeartbeatResponse, QueueList, TokenResponse};
use callq::cli::parse_duration;

#[derive(Debug, Parser)]
#[command(about = "Heartbeat throughput of a running callq serve")]
struct Args {
    /// Base URL of `callq serve`.
    #[arg(long, env = "CALLQ_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The server's admin token (agents are created and given tokens through the admin API).
    #[arg(long, env = "CALLQ_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
    /// Agents beating.
    #[arg(long, default_value_t = 10_000)]
    agents: usize,
    /// Queue the agents serve.
    #[arg(long, default_value = "sales")]
    queue: String,
    /// Agent ids are `<prefix>-<n>`.
    #[arg(long, default_value = "hb")]
    prefix: String,
    /// Concurrent keep-alive connections (one task each).
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Heartbeats per second in the paced phase (0 skips it).
    #[arg(long, default_value_t = 2_000)]
    rate: u64,
    /// Length of the paced phase.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    paced: Duration,
    /// Length of the max-throughput phase (0 skips it).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    max: Duration,
    /// Requests in flight during setup.
    #[arg(long, default_value_t = 64)]
    setup_concurrency: usize,
    /// Report the CPU time of these processes in each phase, as NAME=PID (Linux /proc).
    #[arg(long = "watch", value_parser = parse_watch)]
    watch: Vec<(String, u32)>,
}

fn parse_watch(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s.split_once('=').ok_or("use NAME=PID")?;
    Ok((
        name.to_string(),
        pid.parse().map_err(|_| "PID is a number")?,
    ))
}

/// CPU seconds (user + system) a process has used so far, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ, 100 on Linux
}

/// CPU use of the watched processes across a phase.
struct CpuWatch(Vec<(String, u32, Option<f64>)>);

impl CpuWatch {
    fn start(watch: &[(String, u32)]) -> Self {
        CpuWatch(
            watch
                .iter()
                .map(|(name, pid)| (name.clone(), *pid, cpu_seconds(*pid)))
                .collect(),
        )
    }

    /// "serve 0.21 cores (105 µs/heartbeat), redis 0.08 cores (...)"
    fn report(&self, elapsed: Duration, heartbeats: usize) -> String {
        self.0
            .iter()
            .filter_map(|(name, pid, before)| {
                let used = cpu_seconds(*pid)? - (*before)?;
                Some(format!(
                    "{name} {:.2} cores ({:.0} µs CPU/heartbeat)",
                    used / elapsed.as_secs_f64().max(1e-9),
                    used * 1e6 / heartbeats.max(1) as f64
                ))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One agent's ready-made request parts.
struct Agent {
    url: String,
    auth: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.agents == 0 || args.connections == 0 {
        bail!("--agents and --connections must be at least 1");
    }
    // One core for the load generator: on a small machine the server and Redis need the rest.
    let threads = std::env::var("BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections.max(args.setup_concurrency))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = args.server.trim_end_matches('/').to_string();

    let started = Instant::now();
    let agents = Arc::new(setup(&http, &base, &args).await?);
    println!(
        "setup: {} agents created, given tokens, beating and available in {:.1} s",
        agents.len(),
        started.elapsed().as_secs_f64()
    );

    let need = args.agents as f64 / 5.0;
    if args.rate > 0 && !args.paced.is_zero() {
        let cpu = CpuWatch::start(&args.watch);
        let r = paced(&http, &agents, &args).await;
        let used = cpu.report(r.elapsed, r.latencies_us.len());
        r.print(&format!(
            "paced  {}/s for {:.0} s, {} connections",
            args.rate,
            args.paced.as_secs_f64(),
            args.connections
        ));
        if !used.is_empty() {
            println!("  CPU: {used}");
        }
    }
    if !args.max.is_zero() {
        let cpu = CpuWatch::start(&args.watch);
        let r = flat_out(&http, &agents, &args).await;
        let rate = r.rate();
        let used = cpu.report(r.elapsed, r.latencies_us.len());
        r.print(&format!(
            "max    {} connections back to back for {:.0} s",
            args.connections,
            args.max.as_secs_f64()
        ));
        if !used.is_empty() {
            println!("  CPU: {used}");
        }
        println!(
            "{} agents every 5 s need {:.0} heartbeats/s: the server took {:.0}/s, {:.1}x that",
            args.agents,
            need,
            rate,
            rate / need
        );
    }

    let queues: QueueList = http
        .get(format!("{base}/v1/admin/queues"))
        .bearer_auth(&args.admin_token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    if let Some(q) = queues.queues.iter().find(|q| q.name == args.queue) {
        println!(
            "queue {}: {} agents available, {} offline after the run",
            q.name, q.agents.available, q.agents.offline
        );
    }
    Ok(())
}

/// Create every agent (an existing one is reused), issue its token, beat once and go
/// available, `setup_concurrency` at a time.
async fn setup(http: &reqwest::Client, base: &str, args: &Args) -> anyhow::Result<Vec<Agent>> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.setup_concurrency.max(1) {
        let (http, base, next) = (http.clone(), base.to_string(), next.clone());
        let (admin, queue, prefix, n) = (
            format!("Bearer {}", args.admin_token),
            args.queue.clone(),
            args.prefix.clone(),
            args.agents as u64,
        );
        tasks.spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(made);
                }
                let id = format!("{prefix}-{i}");
                let r = http
                    .post(format!("{base}/v1/admin/agents"))
                    .header("authorization", &admin)
                    .json(&json!({"id": id, "queues": [{"queue": queue, "tier": 1}]}))
                    .send()
                    .await?;
                if !(r.status().is_success() || r.status() == reqwest::StatusCode::CONFLICT) {
                    bail!("creating {id}: {} {}", r.status(), r.text().await?);
                }
                let token: TokenResponse = http
                    .post(format!("{base}/v1/admin/agents/{id}/token"))
                    .header("authorization", &admin)
                    .send()
                    .await?
                    .error_for_status()
                    .with_context(|| format!("token for {id}"))?
                    .json()
                    .await?;
                let agent = Agent {
                    url: format!("{base}/v1/agents/{id}/heartbeat"),
                    auth: format!("Bearer {}", token.token),
                };
                beat(&http, &agent)
                    .await
                    .with_context(|| format!("heartbeat of {id}"))?;
                http.put(format!("{base}/v1/agents/{id}/status"))
                    .header("authorization", &agent.auth)
                    .json(&json!({"status": "available"}))
                    .send()
                    .await?
                    .error_for_status()
                    .with_context(|| format!("{id} going available"))?;
                made.push((i, agent));
            }
        });
    }
    let mut all = Vec::with_capacity(args.agents);
    while let Some(done) = tasks.join_next().await {
        all.extend(done??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, a)| a).collect())
}

const BODY: &str = r#"{"device_registered":true}"#;

async fn beat(http: &reqwest::Client, agent: &Agent) -> anyhow::Result<()> {
    let r = http
        .post(&agent.url)
        .header("authorization", &agent.auth)
        .header("content-type", "application/json")
        .body(BODY)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("{} {}", r.status(), r.text().await.unwrap_or_default());
    }
    // read the whole answer, as a client would, and keep the connection reusable
    let _: HeartbeatResponse = r.json().await?;
    Ok(())
}

/// Latencies (µs) and failures of one phase.
#[derive(Default)]
struct Run {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

impl Run {
    fn merge(&mut self, other: Run) {
        self.latencies_us.extend(other.latencies_us);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn rate(&self) -> f64 {
        self.latencies_us.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn print(mut self, title: &str) {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| {
            let v = &self.latencies_us;
            if v.is_empty() {
                return 0.0;
            }
            let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
            v[i] as f64 / 1000.0
        };
        println!(
            "{title}: {} ok, {} errors, {:.0} heartbeats/s; latency ms p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            self.latencies_us.len(),
            self.errors,
            self.rate(),
            pct(0.50),
            pct(0.90),
            pct(0.99),
            pct(0.999),
            pct(1.0),
        );
        if let Some(e) = &self.first_error {
            println!("  first error: {e}");
        }
    }
}

/// Heartbeat `i` is due at `start + i / rate`, from agent `i mod n`.
async fn paced(http: &reqwest::Client, agents: &Arc<Vec<Agent>>, args: &Args) -> Run {
    let total = (args.rate as f64 * args.paced.as_secs_f64()) as u64;
    let every = Duration::from_secs_f64(1.0 / args.rate as f64);
    let next = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now() + Duration::from_millis(50);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (http, agents, next) = (http.clone(), agents.clone(), next.clone());
        tasks.spawn(async move {
            let mut run = Run::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return run;
                }
                let due = start + every.mul_f64(i as f64);
                tokio::time::sleep_until(due).await;
                let agent = &agents[(i % agents.len() as u64) as usize];
                record(&mut run, beat(&http, agent).await, due.into_std());
            }
        });
    }
    collect(tasks, start.into_std()).await
}

/// Every connection sends back to back until the time is up.
async fn flat_out(http: &reqwest::Client, agents: &Arc<Vec<Agent>>, args: &Args) -> Run {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + args.max;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let (http, agents, next) = (http.clone(), agents.clone(), next.clone());
        tasks.spawn(async move {
            let mut run = Run::default();
            while Instant::now() < end {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let agent = &agents[(i % agents.len() as u64) as usize];
                let sent = Instant::now();
                record(&mut run, beat(&http, agent).await, sent);
            }
            run
        });
    }
    collect(tasks, start).await
}

fn record(run: &mut Run, result: anyhow::Result<()>, since: Instant) {
    match result {
        Ok(()) => {
            let us = since.elapsed().as_micros().min(u32::MAX as u128) as u32;
            run.latencies_us.push(us);
        }
        Err(e) => {
            run.errors += 1;
            if run.first_error.is_none() {
                run.first_error = Some(format!("{e:#}"));
            }
        }
    }
}

async fn collect(mut tasks: tokio::task::JoinSet<Run>, start: Instant) -> Run {
    let mut all = Run::default();
    while let Some(done) = tasks.join_next().await {
        if let Ok(run) = done {
            all.merge(run);
        }
    }
    all.elapsed = start.elapsed();
    all
}
