//! `callq bench --core`: a micro-benchmark of the routing core alone. It drives the Lua
//! transitions straight through [`Store`] against a local Redis (its own embedded
//! `redis-server` unless `--redis-url` is given) and reports claim throughput (full
//! enqueue → claim → answer → complete cycles per second, with several claimers racing) and
//! each script's latency percentiles. Every latency is also given as a ratio to a plain
//! `PING` round trip measured in the same run, which stays comparable on a noisy machine.
//! When that Redis runs under valgrind's callgrind (`--core-callgrind`,
//! `scripts/bench-instructions.sh`), each script's cost is also counted in instructions Redis
//! ran per call, a figure no machine's load moves.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::redis_profile::{Profiler, ScriptCost};
use crate::lab::embedded_redis::EmbeddedRedis;
use crate::store::{
    AgentSpec, Arrival, CallKind, Claim, EndSource, NewCall, Offer, OfferOutcome, QueueSettings,
    RecordMode, RequestedStatus, Skills, Store, Strategy, UpsertMode, WidenStep,
};

/// What `callq bench --core` measures.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreOptions {
    /// Redis to measure against (None: a private redis-server started for the run).
    pub redis_url: Option<String>,
    /// Agents in the centre.
    pub agents: u32,
    /// Concurrent claimers (as worker replicas would be).
    pub claimers: u32,
    /// How long the throughput phase runs, in seconds.
    pub seconds: u64,
    /// Samples per script in the latency phase.
    pub samples: u32,
    /// Record Redis' time per script during the throughput phase (its slow log at threshold
    /// 0, which itself costs Redis time on every command).
    pub profile: bool,
    /// Agents with two skills at levels, a queue requiring one (with widening steps the cycle
    /// never reaches) and every other call requiring the other: the claim's skill path.
    pub skills: bool,
    /// The `--callgrind-out-file` of the valgrind callgrind that Redis runs under: count the
    /// instructions Redis runs per script call (None: not counted).
    pub callgrind: Option<PathBuf>,
}

impl Default for CoreOptions {
    fn default() -> Self {
        Self {
            redis_url: None,
            agents: 200,
            claimers: 8,
            seconds: 10,
            samples: 5000,
            profile: true,
            skills: false,
            callgrind: None,
        }
    }
}

/// Latency percentiles of one operation, in microseconds and as a ratio to PING's p50.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub op: String,
    pub samples: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p50_vs_ping: f64,
    pub p99_vs_ping: f64,
    /// Redis' own execution time per call, mean, from `INFO commandstats` around each batch
    /// (one call at a time, no slow log recording, so no profiling cost in it); None for PING
    /// or when the server does not report it.
    pub redis_mean_us: Option<f64>,
    /// Redis commands the script ran per call (its `redis.call`s, from `INFO commandstats`
    /// around the same batches): what its time is made of, the same on any machine.
    pub redis_commands: Option<f64>,
    /// Instructions Redis ran per call (callgrind, around the same batches; `INFO
    /// commandstats` once per batch included), when Redis runs under callgrind.
    pub redis_instructions: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoreReport {
    pub agents: u32,
    pub claimers: u32,
    /// Whether calls and agents carried skills (`--skills`).
    pub skills: bool,
    pub seconds: f64,
    /// Successful claims per second during the throughput phase; each is one full call cycle
    /// (enqueue, claim, answered, complete).
    pub claims_per_s: f64,
    /// Claims that found nothing (lost races), per successful claim.
    pub idle_claim_ratio: f64,
    /// CPU time of Redis' main thread (user + system, from `INFO cpu`) during the throughput
    /// phase, per successful claim: what one full cycle costs the shard, comparable across
    /// machines better than a rate. None when the server does not report it.
    pub redis_cpu_us_per_cycle: Option<f64>,
    pub latencies: Vec<Latency>,
    /// Redis' own execution time per script during the throughput phase (its slow log at
    /// threshold 0); empty when the server refused `CONFIG SET`.
    pub redis_profile: Vec<ScriptCost>,
    /// A burst claimed one offer per claim and several per claim (see [`BurstClaim`]).
    pub burst: Vec<BurstClaim>,
}

/// Offers per claim in the burst phase: one (a claim per offer) and a worker's default batch.
const BURST_BATCHES: [usize; 2] = [1, 8];
/// Bursts per batch size (interleaved: one of each in turn).
const BURST_ROUNDS: usize = 10;

/// A burst: every agent ready and as many calls waiting (as after many agents freed up at
/// once), claimed by one claimer making `batch` offers per claim until the claim says idle.
#[derive(Debug, Clone, Serialize)]
pub struct BurstClaim {
    pub batch: usize,
    pub offers: u64,
    /// Claims (round trips to Redis) per offer, the last idle claim of each burst included.
    pub claims_per_offer: f64,
    /// The claimer's wall time per offer, µs (round trips included).
    pub wall_us_per_offer: f64,
    /// Redis main-thread CPU per offer, µs: scripts, the protocol and the kernel's share.
    pub redis_cpu_us_per_offer: Option<f64>,
    /// Redis' time in the claim scripts per offer, µs (`INFO commandstats`).
    pub script_us_per_offer: Option<f64>,
}

pub async fn run(args: &CoreOptions, json: bool) -> anyhow::Result<CoreReport> {
    let _own;
    let url = match &args.redis_url {
        Some(u) => u.clone(),
        None => {
            let r = EmbeddedRedis::start()?;
            let url = r.url();
            _own = r;
            url
        }
    };
    let centre = format!("bench{}", std::process::id());
    let store = Store::connect(&url, &centre, (args.claimers as usize * 2).max(8))?;
    let report = measure(&store, &url, args).await?;
    cleanup(&store).await;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(report)
}

/// A call of the bench queue, offerable at once; with `--skills`, every other one (by the
/// number `n`) requires Spanish at level 2 of its own, the others the queue's billing.
fn bench_call(sid: &str, skilled: bool, n: u64) -> NewCall<'_> {
    let skills = if skilled && n % 2 == 1 {
        Skills::new([("spanish", 2)])
    } else {
        Skills::default()
    };
    NewCall {
        call_sid: sid,
        queue: "bench",
        from: "+1",
        to: "+2",
        priority_boost: Duration::ZERO,
        kind: CallKind::Inbound,
        arrival: Arrival::Holding {
            waited: Duration::ZERO,
        },
        skills,
    }
}

/// The rest of a call cycle: offer `o` answered, then the call completed.
async fn answer_and_complete(store: &Store, o: &Offer) -> anyhow::Result<()> {
    store
        .offer_result(&o.offer_ref(), OfferOutcome::Answered, "")
        .await?;
    store
        .complete(&o.call_sid, Some(&o.offer_ref()), EndSource::Dial)
        .await?;
    Ok(())
}

/// The bench queue and its agents, online and available. With `skills`, the queue requires
/// billing at level 2, widening (level 1 after an hour, anyone after two: steps the cycle
/// never reaches but every claim evaluates), and each agent has billing at levels 2 to 5 and
/// every other one Spanish at 1 to 3.
async fn setup(store: &Store, agents: u32, skills: bool) -> anyhow::Result<Vec<String>> {
    store
        .configure_queue(&QueueSettings {
            name: "bench".into(),
            strategy: Strategy::LongestIdle,
            ring_timeout: Duration::from_secs(20),
            wrapup: Duration::ZERO,
            max_no_answer: 3,
            no_answer_delay: Duration::ZERO,
            callback_retries: 0,
            callback_retry_delay: Duration::ZERO,
            check_after: Duration::from_secs(300),
            fallback: true,
            half_life: Duration::from_secs(3600),
            record: RecordMode::DoNotRecord,
            skills: if skills {
                Skills::new([("billing", 2)])
            } else {
                Skills::default()
            },
            widen: if skills {
                vec![
                    WidenStep {
                        after: Duration::from_secs(3600),
                        min_level: Some(1),
                        ..WidenStep::default()
                    },
                    WidenStep {
                        after: Duration::from_secs(7200),
                        any_skill: true,
                        ..WidenStep::default()
                    },
                ]
            } else {
                Vec::new()
            },
            calls_carry_skills: skills,
            busy_delay: None,
            failed_delay: None,
            resume_within: None,
            transfer_keeps_rank: true,
        })
        .await?;
    let mut ids = Vec::new();
    for i in 0..agents {
        let id = format!("agent{i:05}");
        store
            .upsert_agent(
                &AgentSpec {
                    id: id.clone(),
                    identity: id.clone(),
                    queues: vec![("bench".into(), 1)],
                    capacity: 1,
                    skills: if !skills {
                        Skills::default()
                    } else if i % 2 == 1 {
                        Skills::new([
                            ("billing", 2 + (i % 4) as u8),
                            ("spanish", 1 + (i % 3) as u8),
                        ])
                    } else {
                        Skills::new([("billing", 2 + (i % 4) as u8)])
                    },
                    order: 0,
                    weight: 1,
                },
                UpsertMode::Upsert,
            )
            .await?;
        store.heartbeat(&id, Duration::from_secs(600), true).await?;
        store
            .set_agent_status(&id, RequestedStatus::Available, "")
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

async fn measure(store: &Store, redis_url: &str, args: &CoreOptions) -> anyhow::Result<CoreReport> {
    let instr = match &args.callgrind {
        Some(out) => Some(Instructions::attach(store, out).await?),
        None => None,
    };
    let instr = instr.as_ref();
    let agents = setup(store, args.agents.max(1), args.skills).await?;

    // Throughput: claimers race; each claimed pair is answered and completed at once, and a
    // feeder keeps the queue non-empty.
    let stop = Arc::new(AtomicBool::new(false));
    let claims = Arc::new(AtomicU64::new(0));
    let idle = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.claimers.max(1) {
        let (store, stop, claims, idle, seq) = (
            store.clone(),
            stop.clone(),
            claims.clone(),
            idle.clone(),
            seq.clone(),
        );
        let skilled = args.skills;
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                let sid = format!("CAthru{n}");
                store.enqueue(&bench_call(&sid, skilled, n)).await?;
                match store.claim(Duration::from_secs(30), 0).await? {
                    Claim::Offer(o) => {
                        claims.fetch_add(1, Ordering::Relaxed);
                        answer_and_complete(&store, &o).await?;
                    }
                    Claim::Idle { .. } => {
                        idle.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    let profiler = if args.profile {
        match Profiler::start(redis_url).await {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("no Redis profile (CONFIG SET refused?): {e}");
                None
            }
        }
    } else {
        None
    };
    let cpu_before = redis_main_cpu(store).await;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.seconds.max(1))).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.context("claimer task")??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = redis_main_cpu(store).await;
    let redis_profile = match profiler {
        Some(p) => p.finish().await?,
        None => Vec::new(),
    };
    let claimed = claims.load(Ordering::Relaxed) as f64;

    // Latency per script, one at a time (no contention), against a PING baseline.
    let n = args.samples.max(100) as usize;
    let mut lat = Vec::new();
    let mut conn = store.conn().await?;
    let mut ping = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        ping.push(t.elapsed().as_secs_f64());
    }
    drop(conn);
    let ping_p50 = percentile(&ping, 0.50).max(1e-9);
    let mut add = |op: &str, v: Vec<f64>, redis: ScriptTime| {
        lat.push(Latency {
            op: op.to_string(),
            samples: v.len(),
            p50_us: percentile(&v, 0.50) * 1e6,
            p99_us: percentile(&v, 0.99) * 1e6,
            p50_vs_ping: percentile(&v, 0.50) / ping_p50,
            p99_vs_ping: percentile(&v, 0.99) / ping_p50,
            redis_mean_us: redis.mean_us(),
            redis_commands: redis.commands_per_call(),
            redis_instructions: redis.instructions_per_call(),
        });
    };
    add("PING (baseline)", ping.clone(), ScriptTime::default());
    let base = seq.load(Ordering::Relaxed);
    let sid = |i: usize| format!("CAlat{}", base as usize + i);
    let mut i = 0;
    let before = ScriptTime::read_with(store, instr).await;
    let enq = time_n(n, || {
        i += 1;
        let s = sid(i);
        async move {
            store
                .enqueue(&bench_call(&s, args.skills, i as u64))
                .await?;
            Ok(())
        }
    })
    .await?;
    let enq_redis = ScriptTime::read_with(store, instr).await.since(&before);
    add("enqueue", enq, enq_redis);
    // In batches, each timed inside Redis as a whole: claims while calls wait and agents are
    // ready, then an answer for each offer, then its completion, until n of each.
    let mut claim_t = Vec::with_capacity(n);
    let mut answer_t = Vec::with_capacity(n);
    let mut complete_t = Vec::with_capacity(n);
    let (mut claim_r, mut answer_r, mut complete_r) = Default::default();
    while claim_t.len() < n {
        let mut offers = Vec::new();
        let before = ScriptTime::read_with(store, instr).await;
        for _ in 0..agents.len() {
            if claim_t.len() >= n {
                break;
            }
            let t = Instant::now();
            match store.claim(Duration::from_secs(30), 0).await? {
                Claim::Offer(o) => {
                    claim_t.push(t.elapsed().as_secs_f64());
                    offers.push(o);
                }
                Claim::Idle { .. } => break,
            }
        }
        ScriptTime::add(&mut claim_r, &before, store, instr).await;
        if offers.is_empty() {
            break;
        }
        let before = ScriptTime::read_with(store, instr).await;
        for o in &offers {
            let t = Instant::now();
            store
                .offer_result(&o.offer_ref(), OfferOutcome::Answered, "")
                .await?;
            answer_t.push(t.elapsed().as_secs_f64());
        }
        ScriptTime::add(&mut answer_r, &before, store, instr).await;
        let before = ScriptTime::read_with(store, instr).await;
        for o in &offers {
            let t = Instant::now();
            store
                .complete(&o.call_sid, Some(&o.offer_ref()), EndSource::Dial)
                .await?;
            complete_t.push(t.elapsed().as_secs_f64());
        }
        ScriptTime::add(&mut complete_r, &before, store, instr).await;
    }
    add("claim", claim_t, claim_r.unwrap_or_default());
    add(
        "offer_result(answered)",
        answer_t,
        answer_r.unwrap_or_default(),
    );
    add("complete", complete_t, complete_r.unwrap_or_default());
    let mut k = 0;
    let before = ScriptTime::read_with(store, instr).await;
    let hb = time_n(n, || {
        k += 1;
        let id = agents[k % agents.len()].clone();
        async move {
            store.heartbeat(&id, Duration::from_secs(600), true).await?;
            Ok(())
        }
    })
    .await?;
    let hb_redis = ScriptTime::read_with(store, instr).await.since(&before);
    add("heartbeat", hb, hb_redis);
    let before = ScriptTime::read_with(store, instr).await;
    let reap = time_n(n, || async {
        store.reap(100).await?;
        Ok(())
    })
    .await?;
    let reap_redis = ScriptTime::read_with(store, instr).await.since(&before);
    add("reap", reap, reap_redis);
    let burst = burst_claims(store, &agents, args.skills, base as usize + n * 4).await?;

    Ok(CoreReport {
        agents: args.agents,
        claimers: args.claimers,
        skills: args.skills,
        seconds: elapsed,
        claims_per_s: claimed / elapsed,
        idle_claim_ratio: idle.load(Ordering::Relaxed) as f64 / claimed.max(1.0),
        redis_cpu_us_per_cycle: match (cpu_before, cpu_after) {
            (Some(b), Some(a)) if claimed > 0.0 => Some((a - b) * 1e6 / claimed),
            _ => None,
        },
        latencies: lat,
        redis_profile,
        burst,
    })
}

/// One batch size's bursts, summed.
struct BurstSum {
    offers: u64,
    claims: u64,
    wall_s: f64,
    /// Redis main-thread CPU seconds; None once a reading was unavailable.
    cpu_s: Option<f64>,
    script: Option<ScriptTime>,
}

impl BurstSum {
    fn new() -> Self {
        Self {
            offers: 0,
            claims: 0,
            wall_s: 0.0,
            cpu_s: Some(0.0),
            script: None,
        }
    }
}

/// The burst phase: BURST_ROUNDS bursts per batch size, interleaved. Each burst enqueues a
/// call per agent, then claims until idle, timed (wall, Redis CPU, script time) around the
/// claiming alone; answering and completing the offers (untimed) frees the agents again.
async fn burst_claims(
    store: &Store,
    agents: &[String],
    skilled: bool,
    first_sid: usize,
) -> anyhow::Result<Vec<BurstClaim>> {
    let mut sums: Vec<BurstSum> = BURST_BATCHES.iter().map(|_| BurstSum::new()).collect();
    let mut next = first_sid;
    for _ in 0..BURST_ROUNDS {
        for (b, &batch) in BURST_BATCHES.iter().enumerate() {
            for _ in 0..agents.len() {
                next += 1;
                let sid = format!("CAburst{next}");
                store
                    .enqueue(&bench_call(&sid, skilled, next as u64))
                    .await?;
            }
            let mut offers = Vec::new();
            let mut claims = 0u64;
            let cpu0 = redis_main_cpu(store).await;
            let before = ScriptTime::read(store).await;
            let t = Instant::now();
            loop {
                let got = store
                    .claim_many(Duration::from_secs(30), next as u32, batch)
                    .await?;
                claims += 1;
                offers.extend(got.offers);
                if got.idle.is_some() {
                    break;
                }
            }
            let wall = t.elapsed().as_secs_f64();
            let sum = &mut sums[b];
            ScriptTime::add(&mut sum.script, &before, store, None).await;
            let cpu1 = redis_main_cpu(store).await;
            sum.cpu_s = match (sum.cpu_s, cpu0, cpu1) {
                (Some(total), Some(c0), Some(c1)) => Some(total + (c1 - c0)),
                _ => None,
            };
            sum.offers += offers.len() as u64;
            sum.claims += claims;
            sum.wall_s += wall;
            for o in &offers {
                answer_and_complete(store, o).await?;
            }
        }
    }
    Ok(BURST_BATCHES
        .iter()
        .zip(sums)
        .map(|(&batch, sum)| {
            let per = sum.offers.max(1) as f64;
            BurstClaim {
                batch,
                offers: sum.offers,
                claims_per_offer: sum.claims as f64 / per,
                wall_us_per_offer: sum.wall_s * 1e6 / per,
                redis_cpu_us_per_offer: sum.cpu_s.map(|c| c * 1e6 / per),
                script_us_per_offer: sum.script.and_then(|s| s.0).map(|c| c.usec as f64 / per),
            }
        })
        .collect())
}

/// Seconds of CPU Redis' main thread has used (`used_cpu_user_main_thread` +
/// `used_cpu_sys_main_thread` of `INFO cpu`); None when unavailable.
pub async fn redis_main_cpu(store: &Store) -> Option<f64> {
    let mut c = store.conn().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(&mut c)
        .await
        .ok()?;
    main_thread_cpu(&info)
}

/// The main thread's user + system CPU seconds in an `INFO cpu` reply.
fn main_thread_cpu(info: &str) -> Option<f64> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some(field("used_cpu_user_main_thread")? + field("used_cpu_sys_main_thread")?)
}

/// What `INFO commandstats` counts: scripts run (`FCALL` and `EVALSHA`), Redis' µs in them,
/// and the other commands run (the scripts' own `redis.call`s, and any sent directly; `INFO`
/// itself, and the connection's `HELLO`, `CLIENT` and `SELECT`, left out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Scripts run.
    pub calls: u64,
    /// Redis' µs in them.
    pub usec: u64,
    /// Other commands run.
    pub inner: u64,
    /// Instructions Redis ran since the bench began (None: not counted; see
    /// [`Instructions`]).
    pub instructions: Option<u64>,
}

/// Scripts run so far, Redis' time in them and the commands run besides (see [`Counts`]), or
/// a difference of two readings. Unknown (None) when the server does not report it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScriptTime(Option<Counts>);

impl ScriptTime {
    pub async fn read(store: &Store) -> Self {
        Self::read_with(store, None).await
    }

    /// A reading that also counts the instructions Redis ran, when `instr` is given.
    async fn read_with(store: &Store, instr: Option<&Instructions>) -> Self {
        let instructions = match instr {
            Some(i) => i.total().await,
            None => None,
        };
        let Ok(mut c) = store.conn().await else {
            return Self(None);
        };
        let info: Result<String, _> = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut c)
            .await;
        Self(
            info.ok()
                .and_then(|i| script_counts(&i))
                .map(|c| Counts { instructions, ..c }),
        )
    }

    /// What the reading holds (None: the server did not say).
    pub fn counts(&self) -> Option<Counts> {
        self.0
    }

    /// This reading less an earlier one.
    pub fn since(&self, before: &Self) -> Self {
        match (self.0, before.0) {
            (Some(a), Some(b)) => Self(Some(Counts {
                calls: a.calls.saturating_sub(b.calls),
                usec: a.usec.saturating_sub(b.usec),
                inner: a.inner.saturating_sub(b.inner),
                instructions: a
                    .instructions
                    .zip(b.instructions)
                    .map(|(a, b)| a.saturating_sub(b)),
            })),
            _ => Self(None),
        }
    }

    /// Add what ran since `before` to the running total `sum` (a batch of many).
    async fn add(
        sum: &mut Option<Self>,
        before: &Self,
        store: &Store,
        instr: Option<&Instructions>,
    ) {
        let d = Self::read_with(store, instr).await.since(before);
        *sum = Some(match *sum {
            None => d,
            Some(s) => match (s.0, d.0) {
                (Some(a), Some(b)) => Self(Some(Counts {
                    calls: a.calls + b.calls,
                    usec: a.usec + b.usec,
                    inner: a.inner + b.inner,
                    instructions: a.instructions.zip(b.instructions).map(|(a, b)| a + b),
                })),
                _ => Self(None),
            },
        });
    }

    fn mean_us(&self) -> Option<f64> {
        match self.0 {
            Some(c) if c.calls > 0 => Some(c.usec as f64 / c.calls as f64),
            _ => None,
        }
    }

    /// Commands run per script call: a script's `redis.call`s when nothing else ran.
    fn commands_per_call(&self) -> Option<f64> {
        match self.0 {
            Some(c) if c.calls > 0 => Some(c.inner as f64 / c.calls as f64),
            _ => None,
        }
    }

    /// Instructions Redis ran per script call, when counted.
    fn instructions_per_call(&self) -> Option<f64> {
        match self.0 {
            Some(c) if c.calls > 0 => c.instructions.map(|i| i as f64 / c.calls as f64),
            _ => None,
        }
    }
}

/// The instructions a Redis running under valgrind's callgrind has run, read by asking
/// callgrind to dump its counters (`callgrind_control -d`, which also zeroes them) and
/// adding up the dumps' totals. Valgrind slows Redis some fifty times, but counts the same
/// instructions for the same work on any machine under any load.
struct Instructions {
    /// Redis' process (valgrind runs it in its own).
    pid: u32,
    /// callgrind's `--callgrind-out-file`: each dump is written beside it as `<file>.<n>`.
    out: PathBuf,
    /// Instructions counted so far.
    total: AtomicU64,
}

impl Instructions {
    /// The callgrind running the Redis behind `store`, writing its dumps beside `out`.
    async fn attach(store: &Store, out: &Path) -> anyhow::Result<Self> {
        let mut c = store.conn().await?;
        let info: String = redis::cmd("INFO").arg("server").query_async(&mut c).await?;
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .context("INFO server gave no process_id")?;
        let me = Self {
            pid,
            out: out.to_path_buf(),
            total: AtomicU64::new(0),
        };
        me.dump()
            .await
            .context("callgrind_control -d (is Redis running under valgrind --tool=callgrind with this --callgrind-out-file?)")?;
        Ok(me)
    }

    /// Instructions Redis ran since [`Instructions::attach`]; None when a dump failed.
    async fn total(&self) -> Option<u64> {
        let n = self.dump().await.ok()?;
        Some(self.total.fetch_add(n, Ordering::Relaxed) + n)
    }

    /// Dump callgrind's counters (zeroing them) and return the instructions in the dump.
    async fn dump(&self) -> anyhow::Result<u64> {
        let status = tokio::process::Command::new("callgrind_control")
            .arg("-d")
            .arg(self.pid.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .context("running callgrind_control")?;
        anyhow::ensure!(status.success(), "callgrind_control -d failed: {status}");
        let dir = match self.out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let stem = self
            .out
            .file_name()
            .and_then(|n| n.to_str())
            .context("callgrind out file has no name")?;
        // the newest dump is the highest `<file>.<n>`
        let mut newest: Option<(u64, PathBuf)> = None;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let n = path
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.strip_prefix(stem)?.strip_prefix('.')?.parse::<u64>().ok());
            if let Some(n) = n {
                if newest.as_ref().is_none_or(|(m, _)| n > *m) {
                    newest = Some((n, path));
                }
            }
        }
        let (_, path) = newest.context("callgrind wrote no dump")?;
        let text = std::fs::read_to_string(&path)?;
        // the dump's own part only: the earlier parts are already counted
        let _ = std::fs::remove_file(&path);
        callgrind_total(&text).context("no totals line in the callgrind dump")
    }
}

/// The instruction total of a callgrind dump (its `totals:` line, or `summary:`).
fn callgrind_total(dump: &str) -> Option<u64> {
    dump.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// The [`Counts`] of an `INFO commandstats` reply (None when no script has run).
fn script_counts(info: &str) -> Option<Counts> {
    let mut scripts: Option<(u64, u64)> = None;
    let mut inner = 0;
    for line in info.lines() {
        let Some((name, stats)) = line
            .strip_prefix("cmdstat_")
            .and_then(|l| l.split_once(':'))
        else {
            continue;
        };
        let field = |name: &str| {
            stats
                .split(',')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        match name {
            "fcall" | "evalsha" => {
                let (calls, usec) = (field("calls")?, field("usec")?);
                let (c, u) = scripts.unwrap_or((0, 0));
                scripts = Some((c + calls, u + usec));
            }
            "info" | "hello" | "select" => {}
            _ if name.starts_with("client") => {}
            _ => inner += field("calls").unwrap_or(0),
        }
    }
    scripts.map(|(calls, usec)| Counts {
        calls,
        usec,
        inner,
        instructions: None,
    })
}

async fn time_n<F, Fut>(n: usize, mut f: F) -> anyhow::Result<Vec<f64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await?;
        v.push(t.elapsed().as_secs_f64());
    }
    Ok(v)
}

/// The q-quantile (nearest rank) of `v`; 0 for an empty sample.
pub fn percentile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

async fn cleanup(store: &Store) {
    let Ok(mut c) = store.conn().await else {
        return;
    };
    let pattern = format!("{}*", store.prefix());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(&pattern)
        .query_async(&mut c)
        .await
        .unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query_async(&mut c).await;
    }
}

fn print_table(r: &CoreReport) {
    println!(
        "routing core: {} agents, {} claimers, {:.1} s{}",
        r.agents,
        r.claimers,
        r.seconds,
        if r.skills {
            ", skills (two skills with levels, widening)"
        } else {
            ""
        }
    );
    println!(
        "  throughput: {:.0} claims/s, each a full call cycle (enqueue+claim+answer+complete); idle claims per claim {:.2}",
        r.claims_per_s, r.idle_claim_ratio
    );
    if let Some(us) = r.redis_cpu_us_per_cycle {
        println!("  Redis main thread CPU per cycle: {us:.0} µs");
    }
    let counted = r.latencies.iter().any(|l| l.redis_instructions.is_some());
    println!(
        "\n  {:<24} {:>8} {:>10} {:>10} {:>10} {:>10} {:>14} {:>9}{}",
        "script",
        "samples",
        "p50 µs",
        "p99 µs",
        "p50/PING",
        "p99/PING",
        "in Redis µs",
        "commands",
        if counted { "  k instructions" } else { "" }
    );
    for l in &r.latencies {
        let in_redis = l
            .redis_mean_us
            .map_or_else(|| "-".to_string(), |us| format!("{us:.1}"));
        let commands = l
            .redis_commands
            .map_or_else(|| "-".to_string(), |n| format!("{n:.1}"));
        let instructions = match (counted, l.redis_instructions) {
            (false, _) => String::new(),
            (true, None) => format!("{:>16}", "-"),
            (true, Some(i)) => format!("{:>16.1}", i / 1000.0),
        };
        println!(
            "  {:<24} {:>8} {:>10.1} {:>10.1} {:>10.2} {:>10.2} {:>14} {:>9}{instructions}",
            l.op, l.samples, l.p50_us, l.p99_us, l.p50_vs_ping, l.p99_vs_ping, in_redis, commands
        );
    }
    println!(
        "  (in Redis: the script's own execution time, mean, from INFO commandstats around each batch, one call at a time;"
    );
    println!("   commands: the Redis commands it ran per call, the same on any machine)");
    if counted {
        println!("   k instructions: thousands of instructions Redis ran per call (callgrind), the same on any machine under any load;");
        println!("   under valgrind the times above are some fifty times Redis' own)");
    }
    if !r.burst.is_empty() {
        println!(
            "\n  a burst ({} agents ready, a call each), claimed until idle, {} bursts per batch size:",
            r.agents, BURST_ROUNDS
        );
        println!(
            "  {:<18} {:>8} {:>12} {:>12} {:>16} {:>16}",
            "offers per claim",
            "offers",
            "claims/offer",
            "wall µs/offer",
            "Redis CPU µs/offer",
            "script µs/offer"
        );
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        for b in &r.burst {
            println!(
                "  {:<18} {:>8} {:>12.3} {:>12.1} {:>16} {:>16}",
                b.batch,
                b.offers,
                b.claims_per_offer,
                b.wall_us_per_offer,
                opt(b.redis_cpu_us_per_offer),
                opt(b.script_us_per_offer)
            );
        }
        if let [one, many] = r.burst.as_slice() {
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
                _ => "-".to_string(),
            };
            println!(
                "  {} per claim vs 1: wall {:.2}x, Redis CPU {}, script time {}",
                many.batch,
                many.wall_us_per_offer / one.wall_us_per_offer.max(1e-9),
                ratio(many.redis_cpu_us_per_offer, one.redis_cpu_us_per_offer),
                ratio(many.script_us_per_offer, one.script_us_per_offer)
            );
        }
    }
    if !r.redis_profile.is_empty() {
        println!(
            "\n  inside Redis during the throughput phase (its one thread; slow log at 0 µs):"
        );
        println!(
            "  {:<24} {:>8} {:>10} {:>10} {:>8}",
            "script", "calls", "mean µs", "p99 µs", "share"
        );
        for c in r.redis_profile.iter().filter(|c| c.script) {
            println!(
                "  {:<24} {:>8} {:>10.1} {:>10.1} {:>7.1}%",
                c.name,
                c.calls,
                c.mean_us,
                c.p99_us,
                c.share * 100.0
            );
        }
        let scripts: f64 = r
            .redis_profile
            .iter()
            .filter(|c| c.script)
            .map(|c| c.mean_us * c.calls as f64)
            .sum();
        let commands: f64 = r
            .redis_profile
            .iter()
            .filter(|c| !c.script)
            .map(|c| c.mean_us * c.calls as f64)
            .sum();
        println!(
            "  the Redis commands (the scripts' own, and a few direct ones) take {:.0}% of the scripts' time; the rest is Lua",
            100.0 * commands / scripts.max(1.0)
        );
        let top: Vec<String> = r
            .redis_profile
            .iter()
            .filter(|c| !c.script)
            .take(6)
            .map(|c| format!("{} {}×{:.1} µs", c.name, c.calls, c.mean_us))
            .collect();
        println!("  costliest commands: {}", top.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::{callgrind_total, main_thread_cpu, percentile, script_counts, Counts, ScriptTime};

    #[test]
    fn main_thread_cpu_adds_user_and_system() {
        let info = "# CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.0\r\nused_cpu_sys_main_thread:0.25\r\nused_cpu_user_main_thread:1.5\r\n";
        assert_eq!(main_thread_cpu(info), Some(1.75));
        assert_eq!(main_thread_cpu("# CPU\r\nused_cpu_sys:1.5\r\n"), None);
    }

    #[test]
    fn script_time_sums_fcall_and_evalsha() {
        let info = "# Commandstats\r\ncmdstat_get:calls=9,usec=9,usec_per_call=1.00,rejected_calls=0,failed_calls=0\r\ncmdstat_fcall:calls=10,usec=400,usec_per_call=40.00,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=5,usec=50\r\ncmdstat_client|setinfo:calls=2,usec=2\r\ncmdstat_hset:calls=3,usec=3\r\ncmdstat_evalsha:calls=2,usec=100,usec_per_call=50.00,rejected_calls=0,failed_calls=0\r\n";
        let counts = |calls, usec, inner| Counts {
            calls,
            usec,
            inner,
            instructions: None,
        };
        assert_eq!(script_counts(info), Some(counts(12, 500, 12)));
        assert_eq!(script_counts("cmdstat_get:calls=1,usec=1\r\n"), None);
        let before = ScriptTime(Some(counts(12, 500, 12)));
        let after = ScriptTime(Some(counts(22, 800, 162)));
        assert_eq!(after.since(&before).mean_us(), Some(30.0));
        assert_eq!(after.since(&before).commands_per_call(), Some(15.0));
        assert_eq!(ScriptTime(None).since(&before).mean_us(), None);
    }

    #[test]
    fn a_callgrind_dump_gives_its_instruction_total() {
        let dump = "version: 1\ncreator: callgrind-3.19.0\npid: 7\ncmd:  redis-server\npart: 3\n\
                    events: Ir\nsummary: 123456\n\nfn=(1) main\n0 5\ntotals: 123456\n";
        assert_eq!(callgrind_total(dump), Some(123456));
        assert_eq!(callgrind_total("events: Ir\nsummary: 42\n"), Some(42));
        assert_eq!(callgrind_total("events: Ir\nfn=(1) main\n"), None);
    }

    #[test]
    fn instructions_per_call_need_both_readings() {
        let with = |calls, instructions| {
            ScriptTime(Some(Counts {
                calls,
                usec: 0,
                inner: 0,
                instructions,
            }))
        };
        let d = with(30, Some(9_000_000)).since(&with(10, Some(1_000_000)));
        assert_eq!(d.instructions_per_call(), Some(400_000.0));
        assert_eq!(
            with(30, Some(9))
                .since(&with(10, None))
                .instructions_per_call(),
            None
        );
        assert_eq!(with(0, Some(9)).instructions_per_call(), None);
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
    }
}
