//! Load runs against the Twilio simulator, and the Erlang C yardstick they are judged by.
//!
//! `callq bench` starts callq (server and workers), a Redis unless `REDIS_URL` is given, and
//! the simulator in one process, drives Poisson arrivals with exponential talk times at the
//! chosen load through the real webhooks and REST API, then checks every call's final state
//! in the store and prints [`report::Report`]. Time is compressed (`--compress`): the load's
//! times are simulated seconds, callq runs on real time with its queue's wrap-up and delays
//! scaled down to match.
//!
//! Faults can be injected while the load runs ([`BenchOptions::faults`], all through Twilio's
//! protocol: see [`crate::sim::faults`]) along with Redis pauses
//! ([`crate::lab::redis_pause`]); [`BenchOptions::chaos`] turns them all on at moderate
//! rates. The report counts what was injected next to the calls lost and double-booked.
//!
//! [`BenchOptions::route`] sends the callers through callq, down the legacy path the centre
//! had before (the single-attempt model, through callq's real rollout gate: see [`route`]), or
//! splits them by the gate's caller hash; [`kpis`] reports each path on the plan's KPIs, and
//! [`BenchOptions::compare`] runs the same arrivals legacy then callq, side by side.

pub mod core;
pub mod erlang;
pub mod kpis;
pub mod redis_profile;
pub mod report;
pub mod route;
pub mod skills;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use crate::config::CentreConfig;
use crate::lab::redis_pause::{self, PauseCount, RedisPauses};
use crate::lab::stack::{Stack, StackOptions};
use crate::sim::agents::{AgentBehaviour, AgentProfile};
use crate::sim::call::MediaTimes;
use crate::sim::clock::Clock;
use crate::sim::faults::{CustomerFaults, RestFaults, WebhookFaults};
use crate::sim::load::{Dialled, LoadSpec};
use crate::sim::Faults;
use crate::sim::{LegacyPhones, SimConfig};
use crate::store::{QueueSettings, RecordMode, Strategy};
use kpis::PathKpis;
use report::{Load, RedisReading, Report, RunData};
use route::{Path, Route, LEGACY_NUMBER};

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
    /// Share of status callbacks never delivered.
    pub drop_webhooks: f64,
    /// Share of webhooks delivered twice.
    pub dup_webhooks: f64,
    /// Share of webhooks held back by a random time up to `max_webhook_delay`.
    pub delay_webhooks: f64,
    /// Longest extra delay of a delayed webhook (real time).
    pub max_webhook_delay: Duration,
    /// Redis paused (`CLIENT PAUSE … ALL`) this long every `redis_pause_every` while calls
    /// arrive (real time; zero: never).
    pub redis_pause: Duration,
    pub redis_pause_every: Duration,
    /// Share of callback rings the customer lets ring out.
    pub callback_no_answer: f64,
    /// Share of callback rings answered busy.
    pub callback_busy: f64,
    /// Shares of REST requests refused before processing, by HTTP status (400: writes only).
    pub rest_404: f64,
    pub rest_400: f64,
    pub rest_429: f64,
    pub rest_500: f64,
    /// Use this Redis (a fresh centre in it) instead of a private redis-server.
    pub redis_url: Option<String>,
    /// Where callers go: callq, the legacy path, or a split by the rollout gate.
    pub route: Route,
    /// How long the old phone system rings its one agent, simulated seconds.
    pub legacy_ring: f64,
    /// Run the same load twice, `--route legacy` then `--route callq`, and report them side by
    /// side (`route` is not used).
    pub compare: bool,
    /// A two-skill floor (see [`skills`]).
    pub skills: bool,
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
            drop_webhooks: 0.0,
            dup_webhooks: 0.0,
            delay_webhooks: 0.0,
            max_webhook_delay: Duration::from_secs(2),
            redis_pause: Duration::ZERO,
            redis_pause_every: Duration::from_secs(20),
            callback_no_answer: 0.0,
            callback_busy: 0.0,
            rest_404: 0.0,
            rest_400: 0.0,
            rest_429: 0.0,
            rest_500: 0.0,
            redis_url: None,
            route: Route::Callq,
            legacy_ring: 30.0,
            compare: false,
            skills: false,
        }
    }
}

impl BenchOptions {
    /// `--chaos`: every fault on at a moderate rate — webhooks 5 % dropped, 5 % duplicated,
    /// 10 % delayed by up to 2 s; Redis paused 1.5 s every 20 s; callback customers 20 % not
    /// answering and 10 % busy; REST 1 % 404, 1 % 400, 2 % 429, 2 % 500 — and, so that the
    /// callback faults have callbacks to act on, callers offered a callback after 60 s, 30 %
    /// taking it. The command line applies this first; flags given explicitly win.
    pub fn chaos(self) -> Self {
        Self {
            drop_webhooks: 0.05,
            dup_webhooks: 0.05,
            delay_webhooks: 0.1,
            max_webhook_delay: Duration::from_secs(2),
            redis_pause: Duration::from_millis(1500),
            redis_pause_every: Duration::from_secs(20),
            callback_no_answer: 0.2,
            callback_busy: 0.1,
            rest_404: 0.01,
            rest_400: 0.01,
            rest_429: 0.02,
            rest_500: 0.02,
            callback_after: 60.0,
            callback_share: 0.3,
            ..self
        }
    }

    /// What the simulator injects.
    pub fn faults(&self) -> Faults {
        Faults {
            webhooks: WebhookFaults {
                drop: self.drop_webhooks,
                duplicate: self.dup_webhooks,
                delay: self.delay_webhooks,
                max_delay: self.max_webhook_delay,
            },
            customers: CustomerFaults {
                no_answer: self.callback_no_answer,
                busy: self.callback_busy,
            },
            rest: RestFaults {
                error_rate: self.rest_faults,
                rate_429: self.rest_429,
                rate_500: self.rest_500,
                rate_404: self.rest_404,
                rate_400: self.rest_400,
                delay: Duration::ZERO,
            },
        }
    }

    fn check_faults(&self) -> anyhow::Result<()> {
        let shares = [
            ("--rest-faults", self.rest_faults),
            ("--drop-webhooks", self.drop_webhooks),
            ("--dup-webhooks", self.dup_webhooks),
            ("--delay-webhooks", self.delay_webhooks),
            ("--callback-no-answer", self.callback_no_answer),
            ("--callback-busy", self.callback_busy),
            ("--rest-404", self.rest_404),
            ("--rest-400", self.rest_400),
            ("--rest-429", self.rest_429),
            ("--rest-500", self.rest_500),
        ];
        for (flag, v) in shares {
            anyhow::ensure!((0.0..=1.0).contains(&v), "{flag} is a share (0 to 1)");
        }
        anyhow::ensure!(
            self.callback_no_answer + self.callback_busy <= 1.0,
            "--callback-no-answer and --callback-busy add up to more than 1"
        );
        anyhow::ensure!(
            self.redis_pause.is_zero() || self.redis_pause < self.redis_pause_every,
            "--redis-pause must be shorter than --redis-pause-every"
        );
        anyhow::ensure!(
            self.max_webhook_delay < crate::sim::webhook::WEBHOOK_TIMEOUT,
            "--max-webhook-delay must be under Twilio's 15 s webhook timeout"
        );
        Ok(())
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
    let progress = !json && std::io::stderr().is_terminal();
    if args.compare {
        let (before, after) = compare(&args, progress).await?;
        if json {
            let both = serde_json::json!({ "legacy": before, "callq": after });
            println!("{}", serde_json::to_string(&both)?);
        } else {
            println!("callq bench --compare: the same arrivals, legacy path then callq");
            println!("\n== before: --route legacy\n{}", before.table());
            println!("== after: --route callq\n{}", after.table());
            println!("{}", kpis::compare_table(&before, &after));
        }
        return Ok(());
    }
    let report = run_load(&args, progress).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("callq bench\n{}", report.table());
    }
    Ok(())
}

/// `--compare`: the same load and seed down the legacy path, then through callq.
pub async fn compare(args: &BenchOptions, progress: bool) -> anyhow::Result<(Report, Report)> {
    let legacy = BenchOptions {
        route: Route::Legacy,
        compare: false,
        ..args.clone()
    };
    let before = run_load(&legacy, progress).await?;
    let callq = BenchOptions {
        route: Route::Callq,
        ..legacy
    };
    let after = run_load(&callq, progress).await?;
    Ok((before, after))
}

/// The number every bench caller dials.
const BENCH_NUMBER: &str = "+15005550100";

/// The bench's centre, on a centre name of its own: one queue, or with `--skills` the two
/// lines of [`skills`]; and its TOML (for a `callq worker` process's `CALLQ_CONFIG`).
pub(crate) fn bench_centre(
    args: &BenchOptions,
    clock: &Clock,
) -> anyhow::Result<(CentreConfig, Vec<QueueSettings>, String)> {
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
    let rollout = match args.route.callq_share() {
        100 => String::new(),
        share => format!(
            "[rollout]\nshare_pct = {share}\nlegacy = {{ action = \"dial\", number = \"{LEGACY_NUMBER}\", timeout_s = {} }}\n\n",
            legacy_dial_timeout_s(clock, args.legacy_ring)
        ),
    };
    let line = |name: &str, number: &str| {
        format!(
            "[queues.{name}]\nnumbers = [\"{number}\"]\nring_timeout_s = {ring}\nwrapup_s = 0\n\
             no_answer_delay_s = 0\nannounce_every_s = 30\nwelcome = \"\"\n{callback}\n"
        )
    };
    let (default_queue, lines) = if args.skills {
        (
            skills::LINES[0].0,
            skills::LINES.iter().map(|(q, n)| line(q, n)).collect(),
        )
    } else {
        ("bench", line("bench", BENCH_NUMBER))
    };
    let toml =
        format!("centre = \"{centre}\"\ndefault_queue = \"{default_queue}\"\n\n{rollout}{lines}");
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
        fallback: cfg.features.fallback,
        half_life: Duration::from_secs(3600),
        record: RecordMode::DoNotRecord,
        skills: Default::default(),
        widen: Vec::new(),
        calls_carry_skills: false,
        busy_delay: None,
        failed_delay: None,
        resume_within: None,
        transfer_keeps_rank: true,
    };
    let settings = if args.skills {
        skills::LINES
            .iter()
            .map(|(q, _)| QueueSettings {
                name: (*q).into(),
                skills: skills::required(q),
                widen: skills::widen(clock),
                ..settings.clone()
            })
            .collect()
    } else {
        vec![settings]
    };
    Ok((cfg, settings, toml))
}

/// The legacy `<Dial>`'s timeout: TwiML says whole seconds (and callq's config at least 5),
/// which at high compression is longer than the legacy ring; the simulated phone system behind
/// the number gives up after the legacy ring itself (see [`crate::sim::LegacyPhones`]), so
/// this only has to be no shorter.
fn legacy_dial_timeout_s(clock: &Clock, legacy_ring: f64) -> u64 {
    clock.real(legacy_ring).as_secs_f64().ceil().max(5.0) as u64
}

/// Runs the load and returns the report (the bench without printing; used by the tests).
pub async fn run_load(args: &BenchOptions, progress: bool) -> anyhow::Result<Report> {
    let clock = check_load(args)?;
    anyhow::ensure!(args.workers >= 1, "--workers must be at least 1");
    let (centre, settings, _) = bench_centre(args, &clock)?;
    let sim = sim_config(args, clock, &settings);
    let stack = Stack::start(StackOptions {
        redis_url: args.redis_url.clone(),
        centre,
        queue_overrides: settings,
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

/// Refuses a load that cannot run; the load's clock.
pub(crate) fn check_load(args: &BenchOptions) -> anyhow::Result<Clock> {
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
    args.check_faults()?;
    args.route.floors(args.agents).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        args.legacy_ring > 0.0 && args.legacy_ring.is_finite(),
        "--legacy-ring must be more than 0"
    );
    Ok(Clock::new(args.compress))
}

/// The simulator's settings for a load (URLs and secrets are filled in by the stack).
pub(crate) fn sim_config(
    args: &BenchOptions,
    clock: Clock,
    settings: &[QueueSettings],
) -> SimConfig {
    let behaviour = AgentBehaviour {
        answer_delay_s: args.answer_delay,
        no_answer: args.no_answer,
        drop_every_s: args.drops,
        down_for_s: 120.0,
        back_after_pause_s: 30.0,
        heartbeat_every: Duration::from_millis(500),
    };
    SimConfig {
        account_sid: String::new(),
        auth_token: String::new(),
        public_url: String::new(),
        callq_url: String::new(),
        admin_token: String::new(),
        clock,
        agents: behaviour,
        // every line of the bench has the same wrap-up and delays
        wrapup: settings.first().map_or(Duration::ZERO, |q| q.wrapup),
        no_answer_delay: settings
            .first()
            .map_or(Duration::ZERO, |q| q.no_answer_delay),
        media: MediaTimes::default(),
        customer_answer_s: 5.0,
        faults: args.faults(),
        seed: args.seed,
        legacy: (args.route.callq_share() < 100).then(|| LegacyPhones {
            number: LEGACY_NUMBER.into(),
            ring: clock.real(args.legacy_ring),
        }),
    }
}

/// Logs the floor in, runs the arrivals, drains, checks every call and reports.
pub(crate) async fn drive(
    stack: &Stack,
    args: &BenchOptions,
    clock: Clock,
    progress: bool,
) -> anyhow::Result<Report> {
    let sim = stack.sim.clone();
    let (callq_floor, legacy_floor) = args.route.floors(args.agents).map_err(anyhow::Error::msg)?;
    for i in 1..=callq_floor {
        sim.agents
            .add(&AgentProfile {
                id: format!("agent-{i:03}"),
                queues: if args.skills {
                    skills::LINES
                        .iter()
                        .map(|(q, _)| ((*q).into(), 1))
                        .collect()
                } else {
                    vec![("bench".into(), 1)]
                },
                capacity: 1,
                skills: if args.skills {
                    skills::agent_skills(i)
                } else {
                    Default::default()
                },
            })
            .await
            .context("creating agents through the admin API")?;
    }
    // the old phone system's floor: callq never hears of them
    for i in 1..=legacy_floor {
        sim.agents.add_legacy(&AgentProfile {
            id: format!("legacy-{i:03}"),
            queues: Vec::new(),
            capacity: 1,
            skills: Default::default(),
        });
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
            >= callq_floor as usize
            && sim.agents.live().1 >= args.agents as usize
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
        numbers: if args.skills {
            skills::numbers()
        } else {
            vec![Dialled {
                number: BENCH_NUMBER.into(),
                weight: 1.0,
                menu: Vec::new(),
            }]
        },
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
    let paused = Arc::new(PauseCount::default());
    let pauser = RedisPauses::new(args.redis_pause, args.redis_pause_every)
        .map(|p| redis_pause::spawn(&stack.redis_url, p, until, paused.clone()));
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
    // Redis' counters at the end of the warm-up and of the arrivals: the run's cost per call
    let mut redis_from: Option<RedisReading> = None;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if redis_from.is_none() && Instant::now() >= start + warmup {
            redis_from = Some(RedisReading::take(&stack.store).await);
        }
        if let Some(bar) = &bar {
            let (answered, abandoned) = sim.stats.counts();
            bar.set_position(start.elapsed().as_secs().min(duration.as_secs()));
            bar.set_message(format!(
                "live {} | answered {answered} | abandoned {abandoned}",
                sim.env.registry.live()
            ));
        }
    }
    let redis_to = RedisReading::take(&stack.store).await;
    let placed = load.await.unwrap_or_default();
    if let Some(p) = pauser {
        match p.await {
            Ok(Err(e)) => tracing::warn!(error = format!("{e:#}"), "redis pauses stopped"),
            Err(e) => tracing::warn!(error = %e, "redis pauses stopped"),
            Ok(Ok(())) => {}
        }
    }
    tracing::info!(
        placed = placed.calls,
        live = sim.env.registry.live(),
        "arrivals over; draining"
    );
    if let Some(bar) = &bar {
        bar.set_message("draining: calls in progress finish");
    }
    let drain_until = Instant::now() + Duration::from_secs_f64(args.drain);
    let mut ended = false;
    while Instant::now() < drain_until {
        // calls in progress, and callers waiting to be called back (unless callq gave up)
        ended = sim.env.registry.live() == 0 && callbacks_settled(stack).await;
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
    let (pauses, paused_ms) = paused.get();
    let mut report = settle_and_report(stack, args, clock, window, cut).await?;
    report.redis_pauses = pauses;
    report.redis_paused_s = paused_ms as f64 / 1000.0;
    report.cut_examples = cut_examples;
    report.arrivals_digest = format!("{:016x}", placed.digest);
    report.redis_cost =
        redis_from.and_then(|from| from.cost_to(&redis_to, &stack.sim.stats.snapshot().logs));
    floor.abort();
    Ok(report)
}

/// True when every caller who asked for a callback has been reached, or callq holds a final
/// state for the request (it gave up: `callback_failed`).
async fn callbacks_settled(stack: &Stack) -> bool {
    let unserved = stack.sim.stats.callbacks_unserved_sids();
    if unserved.is_empty() {
        return true;
    }
    let Ok(snap) = stack.store.snapshot(&unserved).await else {
        return false;
    };
    snap.calls.len() == unserved.len() && snap.calls.iter().all(|c| c.state.is_final())
}

/// Checks every call in the store (giving callq's leases and checks up to 30 s to settle the last
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
    // leases, checks and the last claims settle what the phone side ended; on a busy machine
    // that can take a while, and a clean verdict ends the wait at once
    let settle_until = Instant::now() + Duration::from_secs(30);
    let route = args.route;
    loop {
        measured = sim.stats.snapshot();
        let unfinished = sim.env.registry.live_inbound();
        // callers on the legacy path never reach callq's line: only callq's are checked there
        let callq_calls: Vec<_> = measured
            .logs
            .iter()
            .filter(|l| route.path_of(&l.info.from) == Path::Callq)
            .cloned()
            .collect();
        verdict = crate::sim::verify::verify(
            &stack.store,
            &callq_calls,
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
    let held = held_after_drain(stack, &measured).await?;
    let legacy_in_callq = legacy_in_callq(stack, route, &measured).await?;
    let load = Load {
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
    };
    let (callq_floor, legacy_floor) = route.floors(args.agents).map_err(anyhow::Error::msg)?;
    let paths = route
        .paths()
        .into_iter()
        .map(|path| {
            let (agents, share) = match path {
                Path::Callq => (callq_floor, f64::from(route.callq_share()) / 100.0),
                Path::Legacy => (legacy_floor, 1.0 - f64::from(route.callq_share()) / 100.0),
            };
            let floor = sim
                .agents
                .floor_time_of(window.0, window.1, |a| a.legacy == (path == Path::Legacy));
            PathKpis::build(kpis::PathData {
                path,
                route,
                agents,
                share,
                load: &load,
                measured: &measured,
                floor,
                window,
            })
        })
        .collect();
    let mut report = Report::build(RunData {
        load,
        route,
        measured: &measured,
        verdict: &verdict,
        floor,
        window,
        cut_at_end,
    });
    report.paths = paths;
    report.legacy_in_callq = legacy_in_callq;
    report.legacy_nobody_free = measured.legacy_nobody_free;
    report.legacy_rang_out = measured.legacy_rang_out;
    if args.skills {
        report.skills = Some(skills::report(&stack.store, &measured.logs, window, clock).await?);
    }
    report.agents_held_at_end = held.agents;
    report.open_at_end = held.calls;
    report.held_examples = held.examples;
    Ok(report)
}

/// Callers of the legacy path that callq put in its line anyway (the phone side heard an
/// `<Enqueue>`, or callq's store holds a record of the call): the promise is that there are
/// none, since the gate hands them to the old phone system before anything is recorded.
async fn legacy_in_callq(
    stack: &Stack,
    route: Route,
    measured: &crate::sim::stats::Measured,
) -> anyhow::Result<u64> {
    let legacy: Vec<_> = measured
        .logs
        .iter()
        .filter(|l| route.path_of(&l.info.from) == Path::Legacy)
        .collect();
    let mut found = legacy.iter().filter(|l| l.enqueued.is_some()).count() as u64;
    let sids: Vec<String> = legacy
        .iter()
        .filter(|l| l.enqueued.is_none())
        .map(|l| l.info.sid.clone())
        .collect();
    for chunk in sids.chunks(500) {
        found += stack.store.snapshot(chunk).await?.calls.len() as u64;
    }
    Ok(found)
}

/// What callq still holds once the phone side is quiet.
struct Held {
    agents: u64,
    calls: u64,
    examples: Vec<String>,
}

/// Agents callq holds reserved or busy, and calls in no final state (callbacks still to be
/// made aside), after the drain: the promise is that there are none.
async fn held_after_drain(
    stack: &Stack,
    measured: &crate::sim::stats::Measured,
) -> anyhow::Result<Held> {
    use crate::store::{AgentStatus, CallKind, CallState};
    let sids: Vec<String> = measured.logs.iter().map(|l| l.info.sid.clone()).collect();
    let mut held = Held {
        agents: 0,
        calls: 0,
        examples: Vec::new(),
    };
    for chunk in sids.chunks(500) {
        let snap = stack.store.snapshot(chunk).await?;
        for c in &snap.calls {
            let pending_callback = c.kind == CallKind::Callback && c.state == CallState::Callback;
            if !c.state.is_final() && !pending_callback {
                held.calls += 1;
                if held.examples.len() < 5 {
                    held.examples
                        .push(format!("call {}: {} with {:?}", c.sid, c.state, c.agent));
                }
            }
        }
    }
    for a in stack.store.agents().await? {
        if a.active > 0 || matches!(a.status, AgentStatus::Reserved | AgentStatus::Busy) {
            held.agents += 1;
            if held.examples.len() < 5 {
                held.examples
                    .push(format!("agent {}: {} holding {}", a.id, a.status, a.active));
            }
        }
    }
    Ok(held)
}
