//! Failure drills (`callq drill`): the bench's load ([`crate::lab::bench`]) through callq and
//! the Twilio simulator, with `callq worker`s as real child processes, and one fault injected a
//! while into the arrivals:
//!
//! - `kill-worker`: a worker process gets a SIGKILL; a replacement is started at once.
//! - `redis-restart`: Redis (append-only file on, `appendfsync everysec`, a directory of its own)
//!   is stopped with `SHUTDOWN` and started again on the same port and directory.
//! - `redis-kill`: the same with a SIGKILL instead, under `appendfsync always`.
//! - `cluster-failover`: on a local cluster of three masters and three replicas,
//!   `CLUSTER FAILOVER` of the master of the centre's slot.
//! - `rest-500`: Twilio's REST API answers every request 500 for a span (30 s by default).
//!
//! Each reports the calls offered and answered, the calls lost (a caller still on the line at
//! the end whom nobody answered, or a call whose end callq's store does not agree with, or has
//! no record of), double bookings (a device rung past its capacity), and the time to recover
//! from the fault's end: to the next assignment reaching an agent's phone, and until the callers
//! waiting are no more than before the fault. A restart drill also counts the writes Redis
//! acknowledged and then lost (a Redis matter, reported apart from callq's).

pub mod process;
pub mod redis;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use tokio::time::Instant;

use crate::lab::bench::report::Report;
use crate::lab::bench::{self, BenchOptions};
use crate::lab::cluster::LocalCluster;
use crate::lab::stack::{Stack, StackOptions};
use crate::sim::Sim;
use process::Guarded;
use redis::{AofRedis, Stop, WriteProbe, WritesLost};

/// The faults a drill injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Drill {
    /// SIGKILL a `callq worker` process, then start a replacement.
    KillWorker,
    /// `SHUTDOWN` Redis (append-only file, fsync every second) and start it again.
    RedisRestart,
    /// SIGKILL Redis (append-only file, fsync always) and start it again.
    RedisKill,
    /// `CLUSTER FAILOVER` of the master of the centre's slot.
    ClusterFailover,
    /// Twilio's REST API answers 500 to everything for a span.
    #[value(name = "rest-500")]
    #[serde(rename = "rest-500")]
    Rest500,
}

impl Drill {
    pub const ALL: [Drill; 5] = [
        Drill::KillWorker,
        Drill::RedisRestart,
        Drill::RedisKill,
        Drill::ClusterFailover,
        Drill::Rest500,
    ];

    /// The drill's name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Drill::KillWorker => "kill-worker",
            Drill::RedisRestart => "redis-restart",
            Drill::RedisKill => "redis-kill",
            Drill::ClusterFailover => "cluster-failover",
            Drill::Rest500 => "rest-500",
        }
    }
}

/// One drill's settings. Times of the load are simulated seconds, as in the bench; the
/// fault's times are real.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillOptions {
    pub drill: Drill,
    /// Real seconds during which calls arrive.
    pub duration: f64,
    /// Real seconds into the arrivals when the fault comes.
    pub fault_at: f64,
    /// Real seconds the fault lasts: REST answering 500; Redis down between its stop and its
    /// start (0: started again at once). Not used by the other drills.
    pub outage: f64,
    pub agents: u32,
    /// Calls per simulated second.
    pub rate: f64,
    pub talk: f64,
    pub wrapup: f64,
    pub compress: f64,
    /// `callq worker` processes.
    pub workers: usize,
    pub seed: u64,
    /// Longest real wait, after arrivals stop, for calls in progress to end.
    pub drain: f64,
    /// The `callq` executable the workers run (`callq worker`).
    pub worker_exe: PathBuf,
}

impl DrillOptions {
    /// The full-size drill: 20 agents at about 60 % occupancy for 90 s, the fault 30 s in,
    /// REST down for 30 s, Redis down for 2 s.
    pub fn new(drill: Drill, worker_exe: PathBuf) -> Self {
        Self {
            drill,
            duration: 90.0,
            fault_at: 30.0,
            outage: match drill {
                Drill::Rest500 => 30.0,
                Drill::RedisRestart | Drill::RedisKill => 2.0,
                Drill::KillWorker | Drill::ClusterFailover => 0.0,
            },
            agents: 20,
            rate: 0.06,
            talk: 180.0,
            wrapup: 10.0,
            compress: 60.0,
            workers: 2,
            seed: 1,
            drain: 120.0,
            worker_exe,
        }
    }

    /// A quick version for CI: 4 agents, 12 s of arrivals, the fault 4 s in, REST down 4 s,
    /// Redis down 2 s.
    pub fn quick(drill: Drill, worker_exe: PathBuf) -> Self {
        let base = Self::new(drill, worker_exe);
        Self {
            duration: 12.0,
            fault_at: 4.0,
            outage: if drill == Drill::Rest500 {
                4.0
            } else {
                base.outage
            },
            agents: 4,
            rate: 0.04,
            talk: 60.0,
            wrapup: 5.0,
            drain: 60.0,
            ..base
        }
    }

    fn bench(&self) -> BenchOptions {
        BenchOptions {
            agents: self.agents,
            rate: self.rate,
            talk: self.talk,
            wrapup: self.wrapup,
            duration: self.duration,
            warmup: Some(0.0),
            drain: self.drain,
            workers: self.workers,
            seed: self.seed,
            compress: self.compress,
            ..BenchOptions::default()
        }
    }
}

/// What a drill found.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub drill: Drill,
    /// What was done, e.g. the pids killed.
    pub fault: String,
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Calls lost: whose end callq disagrees with or has no record of, and callers still on
    /// the line when the drain ran out (must be 0).
    pub lost: u64,
    /// A device rung past its capacity (must be 0).
    pub double_bookings: u64,
    /// After the drain: agents callq still holds, calls in no final state.
    pub agents_held_at_end: u64,
    pub open_at_end: u64,
    /// When the fault began, real seconds into the arrivals, and how long it lasted.
    pub fault_at_s: f64,
    pub fault_s: f64,
    /// From the fault's end to the next call reaching an agent's phone.
    pub next_assignment_s: Option<f64>,
    /// From the fault's end until no more callers wait than did before the fault (the most
    /// waiting at once over the 5 s before it).
    pub back_to_normal_s: Option<f64>,
    pub waiting_before: u64,
    /// The most callers waiting at once from the fault's start until back to normal.
    pub waiting_peak: u64,
    /// Writes Redis acknowledged and lost over a restart (restart drills only).
    pub redis_writes: Option<WritesLost>,
    pub webhook_errors: u64,
    /// REST requests answered 500.
    pub rest_500s: u64,
    /// The first few lost calls and why.
    pub lost_examples: Vec<String>,
    /// The bench's whole report of the run.
    pub run: Report,
}

impl DrillReport {
    /// True when nothing was lost, nobody double-booked, nothing held, and routing resumed.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.double_bookings == 0
            && self.agents_held_at_end == 0
            && self.open_at_end == 0
            && self.next_assignment_s.is_some()
            && self.redis_writes.is_none_or(|w| w.lost == 0)
    }
}

/// Runs the drills one after another and prints a table (or a JSON array).
pub async fn run(drills: Vec<DrillOptions>, json: bool) -> anyhow::Result<()> {
    crate::lab::quiet_logging();
    let mut reports = Vec::new();
    for d in &drills {
        eprintln!("drill {}: running", d.drill.name());
        let r = run_drill(d)
            .await
            .with_context(|| format!("drill {}", d.drill.name()))?;
        if !json {
            eprintln!("{}", r.detail());
        }
        reports.push(r);
    }
    if json {
        println!("{}", serde_json::to_string(&reports)?);
    } else {
        println!("{}", table(&reports));
    }
    anyhow::ensure!(
        reports.iter().all(DrillReport::clean),
        "a drill lost calls, double-booked an agent, held one, or did not recover"
    );
    Ok(())
}

/// One row per drill.
pub fn table(reports: &[DrillReport]) -> String {
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |s| format!("{s:.2} s"));
    let mut out = format!(
        "{:<17} {:>7} {:>8} {:>4} {:>6} {:>10} {:>10} {:>11}\n",
        "drill", "offered", "answered", "lost", "double", "next call", "normal", "redis lost"
    );
    for r in reports {
        out.push_str(&format!(
            "{:<17} {:>7} {:>8} {:>4} {:>6} {:>10} {:>10} {:>11}\n",
            r.drill.name(),
            r.offered,
            r.answered,
            r.lost,
            r.double_bookings,
            secs(r.next_assignment_s),
            secs(r.back_to_normal_s),
            r.redis_writes.map_or("-".to_string(), |w| format!(
                "{}/{}",
                w.lost, w.acknowledged
            )),
        ));
    }
    out
}

impl DrillReport {
    /// A few lines on one drill.
    pub fn detail(&self) -> String {
        let mut s = format!(
            "drill {}: {} at {:.1} s for {:.1} s; waiting {} before, {} at most; held at end: {} agents, {} calls; webhook errors {}, REST 500s {}",
            self.drill.name(),
            self.fault,
            self.fault_at_s,
            self.fault_s,
            self.waiting_before,
            self.waiting_peak,
            self.agents_held_at_end,
            self.open_at_end,
            self.webhook_errors,
            self.rest_500s,
        );
        for e in &self.lost_examples {
            s.push_str(&format!("\n  lost: {e}"));
        }
        s
    }
}

/// The `callq worker` processes of a drill.
struct Workers {
    exe: PathBuf,
    env: Vec<(&'static str, String)>,
    dir: tempfile::TempDir,
    running: Vec<Guarded>,
    started: usize,
}

impl Workers {
    fn new(exe: &Path, stack: &Stack, toml: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("callq-drill-workers-")
            .tempdir()?;
        let config = dir.path().join("centre.toml");
        std::fs::write(&config, toml).context("writing the centre's config")?;
        let mut env = stack.worker_env();
        env.push(("CALLQ_CONFIG", config.to_string_lossy().into_owned()));
        env.push(("RUST_LOG", "warn".into()));
        Ok(Self {
            exe: exe.to_path_buf(),
            env,
            dir,
            running: Vec::new(),
            started: 0,
        })
    }

    /// Starts one more; its pid.
    fn start(&mut self) -> anyhow::Result<u32> {
        self.started += 1;
        let log = self.dir.path().join(format!("worker{}.log", self.started));
        let w = Guarded::spawn(&self.exe, &["worker"], &self.env, &log)?;
        let pid = w.pid;
        self.running.push(w);
        Ok(pid)
    }

    /// SIGKILLs the first one; its pid.
    async fn kill_first(&mut self) -> anyhow::Result<u32> {
        anyhow::ensure!(!self.running.is_empty(), "no worker to kill");
        let mut w = self.running.remove(0);
        let pid = w.pid;
        w.sigkill().await?;
        Ok(pid)
    }

    /// Checks they are all still running (a worker that exits by itself is a finding).
    fn check_alive(&mut self) -> anyhow::Result<()> {
        for w in &mut self.running {
            if !w.alive() {
                let logs: Vec<String> = (1..=self.started)
                    .filter_map(|n| {
                        std::fs::read_to_string(self.dir.path().join(format!("worker{n}.log"))).ok()
                    })
                    .collect();
                anyhow::bail!(
                    "callq worker pid {} exited by itself; logs:\n{}",
                    w.pid,
                    logs.join("\n")
                );
            }
        }
        Ok(())
    }
}

/// The Redis a drill runs on.
enum DrillRedis {
    /// The stack's own private redis-server.
    Private,
    Aof(AofRedis),
    Cluster(Arc<LocalCluster>),
}

/// When the fault was, and what was done.
struct FaultDone {
    load_start: Instant,
    start: Instant,
    end: Instant,
    what: String,
}

/// (when, callers waiting: on the line, not connected to an agent).
type Samples = Arc<Mutex<Vec<(Instant, u64)>>>;

/// Runs one drill and reports.
pub async fn run_drill(o: &DrillOptions) -> anyhow::Result<DrillReport> {
    let args = o.bench();
    anyhow::ensure!(o.workers >= 1, "--workers must be at least 1");
    anyhow::ensure!(
        o.fault_at >= 0.0 && o.fault_at < o.duration,
        "--fault-at must fall within the arrivals"
    );
    anyhow::ensure!(o.outage >= 0.0, "--outage must not be negative");
    let clock = bench::check_load(&args)?;
    let (centre, settings, toml) = bench::bench_centre(&args, &clock)?;
    let sim = bench::sim_config(&args, clock, &settings);
    let mut redis = match o.drill {
        Drill::RedisRestart => DrillRedis::Aof(AofRedis::start("everysec").await?),
        Drill::RedisKill => DrillRedis::Aof(AofRedis::start("always").await?),
        Drill::ClusterFailover => DrillRedis::Cluster(Arc::new(
            tokio::task::spawn_blocking(LocalCluster::start)
                .await
                .context("joining the cluster's start")??,
        )),
        Drill::KillWorker | Drill::Rest500 => DrillRedis::Private,
    };
    let redis_url = match &redis {
        DrillRedis::Private => None,
        DrillRedis::Aof(r) => Some(r.url()),
        DrillRedis::Cluster(c) => Some(c.url()),
    };
    let stack = Stack::start(StackOptions {
        redis_url,
        centre,
        queue_overrides: settings,
        workers: 0,
        heartbeat_ttl: Duration::from_secs(3),
        sim,
    })
    .await?;
    let mut workers = Workers::new(&o.worker_exe, &stack, &toml)?;
    for _ in 0..o.workers {
        workers.start()?;
    }
    let probe = match &redis {
        DrillRedis::Aof(r) => Some(WriteProbe::start(
            &r.url(),
            &format!("callq-drill-probe-{}", r.port()),
        )),
        _ => None,
    };
    let samples: Samples = Arc::default();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(sample(stack.sim.clone(), samples.clone(), sampling.clone()));
    let (run, fault) = tokio::join!(
        bench::drive(&stack, &args, clock, false),
        inject(o, &stack, &mut workers, &mut redis),
    );
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let alive = workers.check_alive();
    let redis_writes = match probe {
        Some(p) => Some(p.finish().await?),
        None => None,
    };
    drop(workers);
    let sim = stack.sim.clone();
    stack.stop().await;
    drop(redis);
    let run = run?;
    let fault = fault?;
    alive?;
    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut r = report(o.drill, run, &fault, &samples, redis_writes);
    r.next_assignment_s = sim
        .stats
        .first_ring_since(fault.end)
        .map(|t| t.saturating_duration_since(fault.end).as_secs_f64());
    Ok(r)
}

/// Waits for the first caller, then the fault's moment, and injects it.
async fn inject(
    o: &DrillOptions,
    stack: &Stack,
    workers: &mut Workers,
    redis: &mut DrillRedis,
) -> anyhow::Result<FaultDone> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack.sim.stats.offered.load(Ordering::Relaxed) == 0 {
        anyhow::ensure!(Instant::now() < deadline, "no caller within 60 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let load_start = Instant::now();
    tokio::time::sleep_until(load_start + Duration::from_secs_f64(o.fault_at)).await;
    workers.check_alive()?;
    let outage = Duration::from_secs_f64(o.outage);
    let start = Instant::now();
    let what = match (o.drill, redis) {
        (Drill::KillWorker, _) => {
            let killed = workers.kill_first().await?;
            let new = workers.start()?;
            format!("SIGKILL worker pid {killed}, replacement pid {new}")
        }
        (Drill::RedisRestart | Drill::RedisKill, DrillRedis::Aof(r)) => {
            let how = if o.drill == Drill::RedisKill {
                Stop::Kill
            } else {
                Stop::Graceful
            };
            r.down(how).await?;
            tokio::time::sleep(outage).await;
            r.up().await?;
            format!(
                "redis-server {} and started again",
                if how == Stop::Kill {
                    "SIGKILLed (appendfsync always)"
                } else {
                    "SHUTDOWN (appendfsync everysec)"
                }
            )
        }
        (Drill::ClusterFailover, DrillRedis::Cluster(c)) => {
            let (c, key) = (c.clone(), stack.store.prefix().to_string());
            let (old, new) = tokio::task::spawn_blocking(move || c.fail_over(&key))
                .await
                .context("joining the failover")??;
            format!("CLUSTER FAILOVER: master :{old} -> :{new}")
        }
        (Drill::Rest500, _) => {
            stack.sim.rest_outage.store(true, Ordering::Relaxed);
            tokio::time::sleep(outage).await;
            stack.sim.rest_outage.store(false, Ordering::Relaxed);
            format!("REST answering 500 for {:.0} s", outage.as_secs_f64())
        }
        (d, _) => anyhow::bail!("drill {} without its Redis", d.name()),
    };
    Ok(FaultDone {
        load_start,
        start,
        end: Instant::now(),
        what,
    })
}

/// Every 100 ms: callers on the line not connected to an agent's leg.
async fn sample(sim: Arc<Sim>, into: Samples, on: Arc<AtomicBool>) {
    while on.load(Ordering::Relaxed) {
        let live = sim.env.registry.live_inbound().len();
        let legs = sim.agents.live().0;
        let waiting = live.saturating_sub(legs) as u64;
        into.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((Instant::now(), waiting));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The callers waiting around a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Waiting {
    /// The most at once over the 5 s before the fault.
    before: u64,
    /// The first sample from the fault's end with no more than `before`.
    normal_at: Option<Instant>,
    /// The most at once from the fault's start until then.
    peak: u64,
}

fn waiting(fault: &FaultDone, samples: &[(Instant, u64)]) -> Waiting {
    let before_from = fault.start.checked_sub(Duration::from_secs(5));
    let before = samples
        .iter()
        .filter(|(t, _)| *t < fault.start && before_from.is_none_or(|b| *t >= b))
        .map(|(_, w)| *w)
        .max()
        .unwrap_or(0);
    let normal_at = samples
        .iter()
        .find(|(t, w)| *t >= fault.end && *w <= before)
        .map(|(t, _)| *t);
    let peak = samples
        .iter()
        .filter(|(t, _)| *t >= fault.start && normal_at.is_none_or(|n| *t <= n))
        .map(|(_, w)| *w)
        .max()
        .unwrap_or(0);
    Waiting {
        before,
        normal_at,
        peak,
    }
}

fn report(
    drill: Drill,
    run: Report,
    fault: &FaultDone,
    samples: &[(Instant, u64)],
    redis_writes: Option<WritesLost>,
) -> DrillReport {
    let Waiting {
        before: waiting_before,
        normal_at,
        peak: waiting_peak,
    } = waiting(fault, samples);
    let since_end = |t: Instant| t.saturating_duration_since(fault.end).as_secs_f64();
    let mut lost_examples = run.lost_examples.clone();
    lost_examples.extend(run.cut_examples.iter().map(|c| format!("cut at end: {c}")));
    lost_examples.extend(
        run.held_examples
            .iter()
            .map(|c| format!("held at end: {c}")),
    );
    DrillReport {
        drill,
        fault: fault.what.clone(),
        offered: run.offered,
        answered: run.answered,
        abandoned: run.abandoned,
        lost: run.lost + run.cut_at_end,
        double_bookings: run.double_bookings,
        agents_held_at_end: run.agents_held_at_end,
        open_at_end: run.open_at_end,
        fault_at_s: fault
            .start
            .saturating_duration_since(fault.load_start)
            .as_secs_f64(),
        fault_s: fault
            .end
            .saturating_duration_since(fault.start)
            .as_secs_f64(),
        next_assignment_s: None,
        back_to_normal_s: normal_at.map(since_end),
        waiting_before,
        waiting_peak,
        redis_writes,
        webhook_errors: run.webhook_errors,
        rest_500s: run.injected.rest_500,
        lost_examples,
        run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_to_normal_is_the_first_sample_after_the_fault_with_no_more_waiting_than_before() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let fault = FaultDone {
            load_start: t0,
            start: at(10_000),
            end: at(12_000),
            what: String::new(),
        };
        // 3 at most over the 5 s before (7 earlier does not count), 9 during, 4 then 2 after
        let samples = [
            (at(4_000), 7),
            (at(6_000), 3),
            (at(9_000), 1),
            (at(11_000), 9),
            (at(12_500), 4),
            (at(13_000), 2),
            (at(14_000), 8),
        ];
        let w = waiting(&fault, &samples);
        assert_eq!(w.before, 3);
        assert_eq!(w.normal_at, Some(at(13_000)));
        assert_eq!(w.peak, 9);
        // never back: no time
        let w = waiting(&fault, &samples[..5]);
        assert_eq!(w.normal_at, None);
    }
}
