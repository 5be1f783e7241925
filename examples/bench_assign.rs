//! Assignment latency: from the moment an agent becomes ready while a call waits, to the moment
//! Twilio (here the lab's REST recorder standing in for its API) receives the redirect that
//! rings the agent.
//! Everything between is measured: the Lua transition that makes the agent ready and pushes the
//! wake marker, the worker's BLPOP waking, `claim`, building the TwiML and the HTTP
//! request over loopback.
//!
//! Each of `--agents` chains has its own queue and agent, so chains run side by side without
//! stealing each other's calls. In each round a call is enqueued while the agent cannot take
//! it, then the clock starts and the agent becomes ready in one of two ways:
//!
//! - `complete`: the agent's previous call ends, freeing the agent (at once, or with
//!   `--wrapup-ms` when its wrap-up ends: the clock then starts that long after the
//!   `complete` request was sent, which times the worker's own timer for a wrap-up's end);
//! - `available`: the paused agent asks for `available` (as after a break).
//!
//! Beside the latencies it prints what a round costs Redis, which the machine's load moves
//! little: the scripts run per round, Redis' time in them (`INFO commandstats`) and its main
//! thread's CPU (`INFO cpu`).
//!
//! Run with `scripts/bench-assign.sh` (release build; it starts its own `redis-server`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::sync::oneshot;
use tokio::time::Instant;

use callq::lab::bench::core::{redis_main_cpu, ScriptTime};
use callq::lab::embedded_redis::EmbeddedRedis;
use callq::sim::recorder::{Recorder, Reply};
use callq::store::{
    AgentSpec, Arrival, CallKind, EndSource, NewCall, OfferOutcome, OfferRef, QueueSettings,
    RecordMode, RequestedStatus, Store, Strategy, UpsertMode,
};
use callq::twilio::rest::{RestConfig, TwilioRest};
use callq::worker::{Settings, Worker};

#[derive(Debug, Parser)]
#[command(about = "Assignment latency: agent ready with a call waiting -> REST redirect received")]
struct Args {
    /// Measured assignments (after the warm-up).
    #[arg(long, default_value_t = 2000)]
    assignments: usize,
    /// Unmeasured assignments first (connections, script cache).
    #[arg(long, default_value_t = 50)]
    warmup: usize,
    /// Chains (queue + agent) running side by side.
    #[arg(long, default_value_t = 1)]
    agents: usize,
    /// Worker instances (each on its own runtime thread, as separate processes would be).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// How the agent becomes ready: complete, available, or mixed (alternating).
    #[arg(long, default_value = "mixed")]
    trigger: String,
    /// Each queue's wrap-up, ms: a `complete` round's agent is ready this long after its call
    /// ended (0: at once, through the wake marker the completion pushes).
    #[arg(long, default_value_t = 0)]
    wrapup_ms: u64,
    /// Use this Redis instead of starting a private redis-server.
    #[arg(long, env = "BENCH_REDIS_URL")]
    redis_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Trigger {
    Complete,
    Available,
}

impl Trigger {
    fn name(self) -> &'static str {
        match self {
            Trigger::Complete => "complete",
            Trigger::Available => "available",
        }
    }
}

const ACCOUNT: &str = "AC00000000000000000000000000000000";
const TOKEN: &str = "bench-token";

/// CallSid -> who waits for its redirect to arrive.
type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Instant>>>>;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.agents >= 1 && args.workers >= 1,
        "need at least one agent and worker"
    );
    let plan: Vec<Trigger> = match args.trigger.as_str() {
        "complete" => vec![Trigger::Complete],
        "available" => vec![Trigger::Available],
        "mixed" => vec![Trigger::Complete, Trigger::Available],
        other => anyhow::bail!("--trigger {other:?}: use complete, available or mixed"),
    };
    let _embedded;
    let redis_url = match &args.redis_url {
        Some(u) => u.clone(),
        None => {
            let r = EmbeddedRedis::start()?;
            let url = r.url();
            _embedded = r;
            url
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(bench(args, plan, redis_url))
}

async fn bench(args: Args, plan: Vec<Trigger>, redis_url: String) -> anyhow::Result<()> {
    let centre = format!("bench{}", std::process::id());
    let store = Store::connect(&redis_url, &centre, 16)?;

    // Twilio's REST API: each redirect tells whoever waits for its call when it arrived
    let waiters: Waiters = Arc::default();
    let told = waiters.clone();
    let twilio = Recorder::start(ACCOUNT, TOKEN, move |req, _| {
        let waiter = req
            .call_sid
            .as_ref()
            .and_then(|sid| told.lock().ok().and_then(|mut w| w.remove(sid)));
        if let Some(tx) = waiter {
            let _ = tx.send(req.at);
        }
        Reply::Ok
    })
    .await?;
    let api_base = twilio.base.clone();

    // workers, each on a runtime of its own
    let mut settings = Settings::new("https://bench.example.com");
    settings.offer_lease = Duration::from_secs(10);
    let mut stops = Vec::new();
    for _ in 0..args.workers {
        let mut cfg = RestConfig::with_auth_token(ACCOUNT, TOKEN);
        cfg.api_base = api_base.clone();
        let rest = TwilioRest::new(cfg)?;
        let worker = Worker::new(store.clone(), rest, settings.clone());
        let (trigger, shutdown) = callq::shutdown::channel();
        let thread = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(worker.run(shutdown))
        });
        stops.push((trigger, thread));
    }

    // chains: a queue and an agent each, paused (not ready) to start
    for k in 0..args.agents {
        let q = format!("q{k}");
        store
            .configure_queue(&QueueSettings {
                name: q.clone(),
                strategy: Strategy::LongestIdle,
                ring_timeout: Duration::from_secs(20),
                wrapup: Duration::from_millis(args.wrapup_ms),
                max_no_answer: 100,
                no_answer_delay: Duration::ZERO,
                callback_retries: 0,
                callback_retry_delay: Duration::ZERO,
                check_after: Duration::from_secs(300),
                fallback: true,
                half_life: Duration::from_secs(3600),
                record: RecordMode::DoNotRecord,
                skills: Default::default(),
                widen: Vec::new(),
                calls_carry_skills: false,
                busy_delay: None,
                failed_delay: None,
                resume_within: None,
                transfer_keeps_rank: true,
            })
            .await?;
        let id = format!("a{k}");
        store
            .upsert_agent(
                &AgentSpec {
                    id: id.clone(),
                    identity: format!("agent-{k}"),
                    queues: vec![(q, 1)],
                    capacity: 1,
                    skills: Default::default(),
                    order: 0,
                    weight: 1,
                },
                UpsertMode::Upsert,
            )
            .await?;
        store
            .heartbeat(&id, Duration::from_secs(3600), true)
            .await?;
        store
            .set_agent_status(&id, RequestedStatus::Paused, "bench")
            .await?;
    }

    let per_chain = (args.assignments + args.warmup).div_ceil(args.agents);
    let wrapup = Duration::from_millis(args.wrapup_ms);
    let (scripts0, cpu0) = (ScriptTime::read(&store).await, redis_main_cpu(&store).await);
    let started = Instant::now();
    let mut chains = Vec::new();
    for k in 0..args.agents {
        let (store, waiters, plan) = (store.clone(), waiters.clone(), plan.clone());
        chains.push(tokio::spawn(async move {
            chain(k, per_chain, &plan, wrapup, &store, &waiters).await
        }));
    }
    let mut samples: Vec<(usize, Trigger, Duration)> = Vec::new();
    for c in chains {
        samples.extend(c.await.context("chain task")??);
    }
    let wall = started.elapsed();
    let scripts = ScriptTime::read(&store).await.since(&scripts0);
    let cpu = redis_main_cpu(&store)
        .await
        .zip(cpu0)
        .map(|(after, before)| after - before);
    let rounds = (per_chain * args.agents) as f64;
    for (trigger, _) in &stops {
        trigger.trigger();
    }
    for (_, thread) in stops {
        match thread.join() {
            Ok(r) => r?,
            Err(_) => anyhow::bail!("a worker thread panicked"),
        }
    }

    // drop each chain's warm-up rounds
    let warm_per_chain = args.warmup.div_ceil(args.agents);
    let measured: Vec<(Trigger, Duration)> = samples
        .into_iter()
        .filter(|(round, _, _)| *round >= warm_per_chain)
        .map(|(_, t, d)| (t, d))
        .collect();
    println!(
        "assignment latency (agent ready with a call waiting -> REST redirect received)\n\
         {} assignments, {} chain(s), {} worker(s), trigger {}, wrap-up {} ms, {:.1} s wall",
        measured.len(),
        args.agents,
        args.workers,
        args.trigger,
        args.wrapup_ms,
        wall.as_secs_f64()
    );
    println!(
        "{:<10} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "trigger", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms"
    );
    report("all", measured.iter().map(|(_, d)| *d).collect());
    for t in plan {
        report(
            t.name(),
            measured
                .iter()
                .filter(|(x, _)| *x == t)
                .map(|(_, d)| *d)
                .collect(),
        );
    }
    // what a round costs Redis, whatever the machine's load: the scripts run (the bench's own
    // transitions and the worker's), Redis' time in them, and its main thread's CPU (which
    // also counts the bench's polling for the lease extension)
    if let Some(c) = scripts.counts() {
        println!(
            "per round (warm-up included): {:.2} scripts, {:.1} µs in them; Redis main-thread CPU {}",
            c.calls as f64 / rounds,
            c.usec as f64 / rounds,
            cpu.map_or("unknown".to_string(), |s| format!("{:.1} µs", s * 1e6 / rounds)),
        );
    }
    Ok(())
}

fn report(label: &str, mut v: Vec<Duration>) {
    if v.is_empty() {
        return;
    }
    v.sort();
    let q = |p: f64| {
        let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i].as_secs_f64() * 1000.0
    };
    let mean = v.iter().map(|d| d.as_secs_f64()).sum::<f64>() / v.len() as f64 * 1000.0;
    println!(
        "{label:<10} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
        v.len(),
        q(0.50),
        q(0.90),
        q(0.99),
        q(1.0),
        mean
    );
}

/// One chain's rounds: enqueue a call the agent cannot take yet, start the clock, make the
/// agent ready, stop the clock when the redirect reaches the recorder; then answer the call.
/// A completion's clock starts `wrapup` after the request was sent: when the agent's wrap-up
/// ends (Redis starts it a little later, when the script runs, which this counts against the
/// worker).
async fn chain(
    k: usize,
    rounds: usize,
    plan: &[Trigger],
    wrapup: Duration,
    store: &Store,
    waiters: &Waiters,
) -> anyhow::Result<Vec<(usize, Trigger, Duration)>> {
    let (agent, queue) = (format!("a{k}"), format!("q{k}"));
    let mut out = Vec::with_capacity(rounds);
    let mut on_call: Option<OfferRef> = None; // the call the agent is talking on
    for round in 0..rounds {
        let trigger = match on_call {
            // nothing to complete on the first round
            None => Trigger::Available,
            Some(_) => plan[round % plan.len()],
        };
        if trigger == Trigger::Available {
            // the agent must be paused and free: end its call, then pause
            if let Some(prev) = on_call.take() {
                store
                    .set_agent_status(&agent, RequestedStatus::Paused, "bench")
                    .await?;
                store
                    .complete(&prev.call_sid, Some(&prev), EndSource::Dial)
                    .await?;
            }
        }
        let sid = format!("CA{k:04}x{round:010}");
        let (tx, rx) = oneshot::channel();
        waiters
            .lock()
            .map_err(|_| anyhow::anyhow!("waiters lock"))?
            .insert(sid.clone(), tx);
        store
            .enqueue(&NewCall {
                call_sid: &sid,
                queue: &queue,
                from: "+15550001111",
                to: "+15005550001",
                priority_boost: Duration::ZERO,
                kind: CallKind::Inbound,
                arrival: Arrival::Holding {
                    waited: Duration::ZERO,
                },
                skills: Default::default(),
            })
            .await?;
        let mut t0 = Instant::now();
        match trigger {
            Trigger::Available => {
                store
                    .set_agent_status(&agent, RequestedStatus::Available, "")
                    .await?;
            }
            Trigger::Complete => {
                if let Some(prev) = on_call.take() {
                    store
                        .complete(&prev.call_sid, Some(&prev), EndSource::Dial)
                        .await?;
                    t0 += wrapup;
                }
            }
        }
        let at = tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .with_context(|| format!("{sid}: no redirect within 10 s"))?
            .context("the recorder dropped the waiter")?;
        out.push((round, trigger, at.saturating_duration_since(t0)));
        // wait for the worker to record the ring (extend_offer), then the agent answers
        wait_extended(store, &sid).await?;
        let offer = current_offer(store, &sid).await?;
        store
            .offer_result(&offer, OfferOutcome::Answered, "")
            .await?;
        on_call = Some(offer);
    }
    if let Some(prev) = on_call {
        store
            .complete(&prev.call_sid, Some(&prev), EndSource::Dial)
            .await?;
    }
    Ok(out)
}

/// The call's current offer, as the worker's URLs name it.
async fn current_offer(store: &Store, sid: &str) -> anyhow::Result<OfferRef> {
    let call = store
        .call(sid)
        .await?
        .with_context(|| format!("{sid}: no such call"))?;
    Ok(OfferRef {
        call_sid: sid.to_string(),
        agent_id: call.agent.with_context(|| format!("{sid}: not offered"))?,
        attempt: call.attempts,
    })
}

async fn wait_extended(store: &Store, sid: &str) -> anyhow::Result<()> {
    for _ in 0..2000 {
        let mut c = store.conn().await?;
        let (score, (secs, micros)): (Option<f64>, (i64, i64)) = redis::pipe()
            .zscore(store.key("offers"), sid)
            .cmd("TIME")
            .query_async(&mut c)
            .await?;
        let now = secs * 1000 + micros / 1000;
        if score.is_some_and(|s| s as i64 - now > 15_000) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    anyhow::bail!("{sid}: the worker never extended the lease")
}
