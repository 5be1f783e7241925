//! Load runs against the Twilio simulator, and the Erlang C yardstick they are judged by.
//!
//! `callq bench` starts callq (server and workers), a Redis unless `REDIS_URL` is given, and
//! the simulator in one process, drives Poisson arrivals with exponential talk times at the
//! chosen load through the real webhooks and REST API, then checks every call's final state
//! in the store and prints [`report::Report`]. Time is compressed (`--compress`): the load's
//! times are simulated seconds, callq runs on real time with its queue's wrap-up and delays
//! scaled down to match.

pub mod core;
pub mod erlang;
pub mod report;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use crate::config::CentreConfig;
use crate::lab::stack::{Stack, StackOptions};
use crate::sim::agents::{AgentBehaviour, AgentProfile};
use crate::sim::call::MediaTimes;
use crate::sim::clock::Clock;
use crate::sim::load::{Dialled, LoadSpec};
use crate::sim::rest::Faults;
use crate::sim::SimConfig;
use crate::store::{QueueSettings, Strategy};
use report::{Load, Report, RunData};

/// What `callq bench` runs. Times of the load are simulated seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Measure the routing core alone (Lua transitions against local Redis): see [`core`].
    pub core: bool,
    pub core_options: core::CoreOptions,
    /// Print one JSON object instead of a table (and no progress bar).
    pub json: bool,
    /// Agents on the floor (one queue, capacity 1).
    pub agents: u32,
    /// Arrivals, in calls per simulated second (Poisson).
    pub rate: f64,
    /// Mean talk time, simulated seconds (exponential).
    pub talk: f64,
    /// Wrap-up after each call, simulated seconds.
    pub wrapup: f64,
    /// Mean time an agent takes to pick up, simulated seconds (exponential).
    pub answer_delay: f64,
    /// Mean caller patience, simulated seconds (exponential); 0: callers never hang up.
    pub patience: f64,
    /// Probability that an agent lets an offer ring out.
    pub no_answer: f64,
    /// Real seconds during which calls arrive.
    pub duration: f64,
    /// Real seconds at the start not measured (the queue filling up); None: a sixth of the
    /// duration.
    pub warmup: Option<f64>,
    /// Longest real wait, after arrivals stop, for calls in progress to end.
    pub drain: f64,
    /// callq workers in the process.
    pub workers: usize,
    pub seed: u64,
    /// Simulated seconds per real second.
    pub compress: f64,
    /// Service-level target, simulated seconds.
    pub sl_target: f64,
    /// Offer a callback after this long in line, simulated seconds (0: never).
    pub callback_after: f64,
    /// Share of callers who take a callback when offered.
    pub callback_share: f64,
    /// Mean time between device drops per agent, simulated seconds (0: never).
    pub drops: f64,
    /// Share of REST requests the simulated Twilio refuses (429/500) before processing.
    pub rest_faults: f64,
    /// Use this Redis (a fresh centre in it) instead of a private redis-server.
    pub redis_url: Option<String>,
}

impl Default for BenchOptions {
    /// The command line's defaults.
    fn default() -> Self {
        Self {
            core: false,
            core_options: core::CoreOptions::default(),
            json: false,
            agents: 20,
            rate: 0.09,
            talk: 180.0,
            wrapup: 10.0,
            answer_delay: 2.0,
            patience: 0.0,
            no_answer: 0.0,
            duration: 60.0,
            warmup: None,
            drain: 60.0,
            workers: 2,
            seed: 1,
            compress: 60.0,
            sl_target: 20.0,
            callback_after: 0.0,
            callback_share: 0.0,
            drops: 0.0,
            rest_faults: 0.0,
            redis_url: None,
        }
    }
}

pub async fn run(args: BenchOptions) -> anyhow::Result<()> {
    if args.core {
        core::run(&args.core_options, args.json).await?;
        return Ok(());
    }
    // core micro-benchmark: see bench::core
    crate::lab::quiet_logging();
    let json = args.json;
    let report = run_load(&args, !json && std::io::stderr().is_terminal()).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("callq bench\n{}", report.table());
    }
    Ok(())
}

/// The number every bench caller dials.
const BENCH_NUMBER: &str = "+15005550100";

/// The bench's centre: one queue, on a centre name of its own.
fn bench_centre(
    args: &BenchOptions,
    clock: &Clock,
) -> anyhow::Result<(CentreConfig, QueueSettings)> {
    let ring = clock.real(20.0).as_secs().max(1);
    let callback = if args.callback_after > 0.0 {
        format!(
            "callback_after_s = {}\n",
            clock.real(args.callback_after).as_secs().max(1)
        )
    } else {
        String::new()
    };
    let centre = format!("bench-{}-{}", std::process::id(), rand::random::<u32>());
    let toml = format!(
        "centre = \"{centre}\"\ndefault_queue = \"bench\"\n\n[queues.bench]\n\
         numbers = [\"{BENCH_NUMBER}\"]\nring_timeout_s = {ring}\nwrapup_s = 0\n\
         no_answer_delay_s = 0\nannounce_every_s = 30\n{callback}"
    );
    let cfg = CentreConfig::from_toml(&toml, "bench centre")?;
    let settings = QueueSettings {
        name: "bench".into(),
        strategy: Strategy::LongestIdle,
        ring_timeout: Duration::from_secs(ring),
        wrapup: clock.real(args.wrapup),
        max_no_answer: 3,
        no_answer_delay: clock.real(10.0),
        callback_retries: 2,
        callback_retry_delay: clock.real(60.0),
        check_after: clock.real(300.0),
    };
    Ok((cfg, settings))
}

/// Runs the load and returns the report (the bench without printing; used by the tests).
pub async fn run_load(args: &BenchOptions, progress: bool) -> anyhow::Result<Report> {
    anyhow::ensure!(args.agents >= 1, "--agents must be at least 1");
    anyhow::ensure!(
        args.rate > 0.0 && args.rate.is_finite(),
        "--rate must be more than 0"
    );
    anyhow::ensure!(args.talk > 0.0, "--talk must be more than 0");
    anyhow::ensure!(args.duration > 0.0, "--duration must be more than 0");
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.no_answer),
        "--no-answer is a probability (0 to 1)"
    );
    let clock = Clock::new(args.compress);
    let (centre, settings) = bench_centre(args, &clock)?;
    let behaviour = AgentBehaviour {
        answer_delay_s: args.answer_delay,
        no_answer: args.no_answer,
        drop_every_s: args.drops,
        down_for_s: 120.0,
        back_after_pause_s: 30.0,
        heartbeat_every: Duration::from_millis(500),
    };
    let sim = SimConfig {
        account_sid: String::new(),
        auth_token: String::new(),
        public_url: String::new(),
        callq_url: String::new(),
        admin_token: String::new(),
        clock,
        agents: behaviour,
        wrapup: settings.wrapup,
        no_answer_delay: settings.no_answer_delay,
        media: MediaTimes::default(),
        customer_answer_s: 5.0,
        faults: Faults {
            error_rate: args.rest_faults,
            delay: Duration::ZERO,
        },
        seed: args.seed,
    };
    let stack = Stack::start(StackOptions {
        redis_url: args.redis_url.clone(),
        centre,
        queue_overrides: vec![settings],
        workers: args.workers,
        heartbeat_ttl: Duration::from_secs(3),
        sim,
    })
    .await?;
    let result = drive(&stack, args, clock, progress).await;
    tracing::info!("stopping callq and the simulator");
    stack.stop().await;
    result
}

async fn drive(
    stack: &Stack,
    args: &BenchOptions,
    clock: Clock,
    progress: bool,
) -> anyhow::Result<Report> {
    let sim = stack.sim.clone();
    for i in 1..=args.agents {
        sim.agents
            .add(&AgentProfile {
                id: format!("agent-{i:03}"),
                queues: vec![("bench".into(), 1)],
                capacity: 1,
            })
            .await
            .context("creating agents through the admin API")?;
    }
    let floor = tokio::spawn(sim.agents.clone().run(stack.sim_shutdown()));
    // wait until the floor is logged in
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let agents = stack.store.agents().await?;
        if agents
            .iter()
            .filter(|a| a.status == crate::store::AgentStatus::Available)
            .count()
            >= args.agents as usize
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let spec = LoadSpec {
        rate: args.rate,
        talk_s: args.talk,
        patience_s: args.patience,
        callback_share: args.callback_share,
        message_s: 20.0,
        numbers: vec![Dialled {
            number: BENCH_NUMBER.into(),
            weight: 1.0,
            menu: Vec::new(),
        }],
        seed: args.seed,
    };
    let duration = Duration::from_secs_f64(args.duration);
    let warmup = Duration::from_secs_f64(
        args.warmup
            .unwrap_or(args.duration / 6.0)
            .clamp(0.0, args.duration),
    );
    let start = Instant::now();
    let until = start + duration;
    let (_t, load_shutdown) = crate::shutdown::channel();
    let load = tokio::spawn(crate::sim::load::run(
        sim.clone(),
        spec,
        until,
        load_shutdown,
    ));
    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::new(duration.as_secs().max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {pos}/{len} s  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Some(bar) = &bar {
            let (answered, abandoned) = sim.stats.counts();
            bar.set_position(start.elapsed().as_secs().min(duration.as_secs()));
            bar.set_message(format!(
                "live {} | answered {answered} | abandoned {abandoned}",
                sim.env.registry.live()
            ));
        }
    }
    let placed = load.await.unwrap_or(0);
    tracing::info!(
        placed,
        live = sim.env.registry.live(),
        "arrivals over; draining"
    );
    if let Some(bar) = &bar {
        bar.set_message("draining: calls in progress finish");
    }
    let drain_until = Instant::now() + Duration::from_secs_f64(args.drain);
    let mut ended = false;
    while Instant::now() < drain_until {
        // calls in progress, and callers waiting to be called back
        ended = sim.env.registry.live() == 0 && sim.stats.callbacks_unserved() == 0;
        if ended {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut cut_examples = Vec::new();
    let cut = if ended {
        0
    } else {
        let live = sim.env.registry.live_inbound();
        for sid in live.iter().take(5) {
            let state = stack.store.call(sid).await.ok().flatten().map(|c| c.state);
            cut_examples.push(format!("{sid}: callq says {state:?}"));
        }
        sim.hang_up_all();
        live.len() as u64
    };
    if !cut_examples.is_empty() {
        tracing::warn!(
            ?cut_examples,
            "calls still live when the drain time ran out"
        );
    }
    tracing::info!(ended, cut, "drained; waiting for the last webhooks");
    sim.drain(Duration::from_secs(15)).await;
    tracing::info!("checking every call in the store");
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let window = (start + warmup, until);
    let mut report = settle_and_report(stack, args, clock, window, cut).await?;
    report.cut_examples = cut_examples;
    floor.abort();
    Ok(report)
}

/// Checks every call in the store (giving callq's leases a few seconds to settle the last
/// ones) and builds the report.
async fn settle_and_report(
    stack: &Stack,
    args: &BenchOptions,
    clock: Clock,
    window: (Instant, Instant),
    cut_at_end: u64,
) -> anyhow::Result<Report> {
    let sim = &stack.sim;
    let floor = sim.agents.floor_time(window.0, window.1);
    let mut verdict;
    let mut measured;
    let settle_until = Instant::now() + Duration::from_secs(8);
    loop {
        measured = sim.stats.snapshot();
        let unfinished = sim.env.registry.live_inbound();
        verdict = crate::sim::verify::verify(
            &stack.store,
            &measured.logs,
            &unfinished,
            &measured.callbacks_reached,
        )
        .await?;
        if verdict.lost.is_empty() || Instant::now() >= settle_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let warmup_s = window
        .0
        .saturating_duration_since(window.1 - Duration::from_secs_f64(args.duration))
        .as_secs_f64();
    Ok(Report::build(RunData {
        load: Load {
            agents: args.agents,
            rate: args.rate,
            talk_s: args.talk,
            wrapup_s: args.wrapup,
            answer_delay_s: args.answer_delay,
            patience_s: args.patience,
            no_answer: args.no_answer,
            compress: clock.factor(),
            duration_s: args.duration,
            warmup_s,
            sl_target_s: args.sl_target,
            workers: args.workers,
            seed: args.seed,
        },
        measured: &measured,
        verdict: &verdict,
        floor,
        window,
        cut_at_end,
    }))
}
