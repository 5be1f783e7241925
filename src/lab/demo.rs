//! `callq demo`: callq on an embedded default, nothing to configure. Without `REDIS_URL` it
//! starts its own `redis-server`; it runs `callq serve` and a worker in-process with the
//! embedded demo centre (three queues, one of them in Spanish, an IVR), twelve simulated agents and a stream of
//! simulated callers through the Twilio simulator, shows a live status line, and prints the
//! report when `--duration` has passed or on Ctrl-C.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::CentreConfig;
use crate::lab::bench::report::{Load, Report, RunData};
use crate::lab::bench::route::Route;
use crate::lab::stack::{Stack, StackOptions};
use crate::sim::agents::{AgentBehaviour, AgentProfile};
use crate::sim::call::MediaTimes;
use crate::sim::clock::Clock;
use crate::sim::load::{Dialled, LoadSpec};
use crate::sim::Faults;
use crate::sim::SimConfig;
use crate::store::AgentStatus;

/// What `callq demo` runs with.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How long callers keep arriving (real time).
    pub duration: Duration,
    /// Simulated seconds per real second (talk times of a minute pass in seconds).
    pub compress: f64,
    /// Use this Redis (a fresh centre in it) instead of a private redis-server.
    pub redis_url: Option<String>,
    pub seed: u64,
    /// Simulated agents on the floor.
    pub agents: u32,
    /// Offered load, as a share of what the floor can handle (above 1: a line forms).
    pub load: f64,
}

impl DemoOptions {
    /// What `callq demo` runs by default: a minute of callers, time ten times faster, twelve
    /// agents and 130% of what they can take.
    pub fn new(duration: Duration) -> Self {
        DemoOptions {
            duration,
            compress: 10.0,
            redis_url: None,
            seed: 1,
            agents: AGENTS,
            load: LOAD,
        }
    }
}

/// The demo running: callq, its Redis and the simulator (the [`Stack`]), the agents on the
/// floor, and the callers arriving until the demo's `duration` has passed.
pub struct Demo {
    pub stack: Stack,
    pub centre: CentreConfig,
    pub clock: Clock,
    /// Calls per simulated second.
    pub rate: f64,
    /// When callers began arriving, and when they stop.
    pub started: Instant,
    pub until: Instant,
    wrapup_real_s: f64,
    floor: tokio::task::JoinHandle<()>,
    load: tokio::task::JoinHandle<crate::sim::load::Placed>,
    stop_load: crate::shutdown::ShutdownTrigger,
}

const AGENTS: u32 = 12;
/// Demo load, simulated seconds.
const TALK_S: f64 = 60.0;
const ANSWER_S: f64 = 4.0;
const PATIENCE_S: f64 = 150.0;
/// Offered load, as a share of what the floor can handle.
const LOAD: f64 = 1.3;
/// Sales, in the demo: a callback is offered after this wait, voicemail after the longer one
/// (simulated seconds; the embedded centre's own are longer).
const DEMO_CALLBACK_AFTER_S: f64 = 40.0;
const DEMO_MAX_WAIT_S: f64 = 120.0;

/// A fresh token for agent `id` from the stack's admin API, to print for the reader to try.
async fn agent_token(stack: &Stack, id: &str) -> anyhow::Result<String> {
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?
        .post(format!("{}/v1/admin/agents/{id}/token", stack.callq_url))
        .bearer_auth(&stack.admin_token)
        .send()
        .await?
        .error_for_status()?;
    let body: serde_json::Value = resp.json().await?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no token in the admin API's answer"))
}

/// Start the demo: its Redis (or a fresh centre in `args.redis_url`), `callq serve` and a
/// worker with the embedded centre, the Twilio simulator, `args.agents` agents on the floor
/// and callers at `args.load` of what they can take, arriving for `args.duration`.
pub async fn start(args: &DemoOptions) -> anyhow::Result<Demo> {
    let clock = Clock::new(args.compress);
    let mut centre = CentreConfig::demo();
    // a minute of real time is ten of the centre's: bring sales' callback offer and overflow
    // within reach, so both happen while you watch
    if let Some(sales) = centre.queues.get_mut("sales") {
        // callq runs on real time: the centre's seconds are simulated ones over `compress`
        let real = |sim_s: f64| clock.real(sim_s).as_secs().max(1);
        sales.callback_after_s = Some(real(DEMO_CALLBACK_AFTER_S));
        sales.max_wait_s = Some(real(DEMO_MAX_WAIT_S));
    }
    if args.redis_url.is_some() {
        // someone else's Redis: a centre of our own
        centre.centre = format!("demo-{}", std::process::id());
    }
    let wrapup = centre
        .queues
        .values()
        .map(|q| q.wrapup_s)
        .max()
        .unwrap_or(0);
    let no_answer_delay = centre
        .queues
        .values()
        .map(|q| q.no_answer_delay_s)
        .max()
        .unwrap_or(0);
    let stack = Stack::start(StackOptions {
        redis_url: args.redis_url.clone(),
        centre: centre.clone(),
        queue_overrides: Vec::new(),
        workers: 1,
        heartbeat_ttl: Duration::from_secs(6),
        sim: SimConfig {
            account_sid: String::new(),
            auth_token: String::new(),
            public_url: String::new(),
            callq_url: String::new(),
            admin_token: String::new(),
            clock,
            agents: AgentBehaviour {
                answer_delay_s: ANSWER_S,
                no_answer: 0.05,
                drop_every_s: 1800.0,
                down_for_s: 120.0,
                back_after_pause_s: 60.0,
                heartbeat_every: Duration::from_secs(2),
            },
            wrapup: Duration::from_secs(wrapup),
            no_answer_delay: Duration::from_secs(no_answer_delay),
            media: MediaTimes::default(),
            customer_answer_s: 8.0,
            faults: Faults::default(),
            seed: args.seed,
            legacy: None,
        },
    })
    .await?;
    match populate(stack, args, centre, clock, wrapup as f64).await {
        Ok(demo) => Ok(demo),
        Err((stack, e)) => {
            stack.stop().await;
            Err(e)
        }
    }
}

/// The agents and the callers of a started stack (stopped again by the caller on an error).
async fn populate(
    stack: Stack,
    args: &DemoOptions,
    centre: CentreConfig,
    clock: Clock,
    wrapup_real_s: f64,
) -> Result<Demo, (Stack, anyhow::Error)> {
    let sim = stack.sim.clone();
    let queues: Vec<String> = centre.queues.keys().cloned().collect();
    for i in 1..=args.agents {
        // half sell first and support second, half the other way round
        let (first, second) = if i % 2 == 1 {
            ("sales", "support")
        } else {
            ("support", "sales")
        };
        // every third agent also speaks Spanish and serves the Spanish line first
        let mut wanted = vec![(first, 1), (second, 2)];
        if i % 3 == 0 {
            wanted.push(("soporte", 1));
        }
        let q: Vec<(String, u32)> = wanted
            .into_iter()
            .filter(|(n, _)| queues.iter().any(|q| q == n))
            .map(|(n, t)| (n.to_string(), t))
            .collect();
        let added = sim
            .agents
            .add(&AgentProfile {
                id: format!("agent-{i:02}"),
                queues: q,
                capacity: 1,
                // billing at levels 1 to 4 round the floor, and none for every fifth agent:
                // the menu's billing choice (level 2) reaches them first, then widens
                skills: match i % 5 {
                    0 => crate::store::Skills::default(),
                    level => crate::store::Skills::new([("billing", level as u8)]),
                },
            })
            .await;
        if let Err(e) = added {
            return Err((stack, e));
        }
    }
    let floor = tokio::spawn(sim.agents.clone().run(stack.sim_shutdown()));

    // more callers than the floor can take (handle time = ring + talk + wrap-up), so within
    // a minute a line forms, callers are offered callbacks, some give up and some reach the
    // queue's overflow
    let handle_s = ANSWER_S + TALK_S + wrapup_real_s * clock.factor();
    let rate = args.load * f64::from(args.agents) / handle_s;
    let mut numbers: Vec<Dialled> = Vec::new();
    if let Some(ivr) = &centre.ivr {
        for n in &ivr.numbers {
            numbers.push(Dialled {
                number: n.clone(),
                weight: 1.0,
                menu: ivr.options.keys().cloned().collect(),
            });
        }
    }
    for q in centre.queues.values() {
        for n in &q.numbers {
            numbers.push(Dialled {
                number: n.clone(),
                weight: 1.0,
                menu: Vec::new(),
            });
        }
    }
    let spec = LoadSpec {
        rate,
        talk_s: TALK_S,
        patience_s: PATIENCE_S,
        callback_share: 0.4,
        message_s: 30.0,
        numbers,
        seed: args.seed,
    };
    let started = Instant::now();
    let until = started + args.duration;
    let (stop_load, load_shutdown) = crate::shutdown::channel();
    let load = tokio::spawn(crate::sim::load::run(sim, spec, until, load_shutdown));
    Ok(Demo {
        stack,
        centre,
        clock,
        rate,
        started,
        until,
        wrapup_real_s,
        floor,
        load,
        stop_load,
    })
}

impl Demo {
    /// Stop at once: no more callers, every call hung up, the stack stopped.
    pub async fn stop(self) {
        self.stop_load.trigger();
        let _ = self.load.await;
        self.stack.sim.hang_up_all();
        self.floor.abort();
        self.stack.stop().await;
    }
}

pub async fn run(args: DemoOptions) -> anyhow::Result<()> {
    crate::lab::quiet_logging();
    eprintln!("callq demo: starting redis, callq serve, a worker and the Twilio simulator…");
    let demo = start(&args).await?;
    let result = show(&demo, &args).await;
    let report = finish(demo, &args, result).await?;
    println!("\ncallq demo report\n{}", report.table());
    Ok(())
}

/// What the reader sees while the demo runs: where everything is, then a live status line
/// until the callers stop (Ok(true)) or Ctrl-C (Ok(false)).
async fn show(demo: &Demo, args: &DemoOptions) -> anyhow::Result<bool> {
    let stack = &demo.stack;
    let queues: Vec<String> = demo.centre.queues.keys().cloned().collect();
    println!("callq demo is running (Ctrl-C ends it with the report so far)");
    println!(
        "  wallboard      {}/wallboard (log in with the viewer token {})",
        stack.callq_url, stack.viewer_token
    );
    println!("  metrics        {}/metrics", stack.callq_url);
    println!(
        "  webhooks       {}/twilio/voice (signed by the simulator)",
        stack.callq_url
    );
    println!("  admin API      {}/v1/admin/queues", stack.callq_url);
    println!("    admin token  {}", stack.admin_token);
    match agent_token(stack, "agent-01").await {
        Ok(token) => {
            println!("  agent API      {}/v1/agents/agent-01", stack.callq_url);
            println!("    its token    {token}");
            println!(
                "    try          curl -s -H 'authorization: Bearer {token}' {}/v1/agents/agent-01",
                stack.callq_url
            );
        }
        Err(e) => println!(
            "  agent API      {}/v1/agents/{{id}} ({e:#})",
            stack.callq_url
        ),
    }
    println!("  Twilio (sim)   {}/2010-04-01", stack.rest_url);
    println!(
        "  redis          {}{}",
        stack.redis_url,
        if stack.embedded_redis {
            " (private redis-server, removed on exit)"
        } else {
            ""
        }
    );
    println!(
        "  {} agents, time x{}, callers for {:?} at {:.0}% of what the floor can take",
        args.agents,
        args.compress,
        args.duration,
        args.load * 100.0
    );
    println!(
        "  sales offers a callback after {DEMO_CALLBACK_AFTER_S} s and voicemail after {DEMO_MAX_WAIT_S} s \
         (the centre's simulated time)\n"
    );

    let tty = std::io::stderr().is_terminal();
    let mut last_line = Instant::now();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while Instant::now() < demo.until {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = &mut ctrl_c => {
                if tty {
                    eprintln!();
                }
                return Ok(false);
            }
        }
        let line = status_line(stack, &queues).await;
        if tty {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else if last_line.elapsed() >= Duration::from_secs(10) {
            eprintln!("{line}");
            last_line = Instant::now();
        }
    }
    if tty {
        eprintln!();
    }
    Ok(true)
}

/// End the demo: no more callers; the calls in progress finish (or, after Ctrl-C, are hung
/// up), every call is checked against Redis, and the report is built.
async fn finish(
    demo: Demo,
    args: &DemoOptions,
    shown: anyhow::Result<bool>,
) -> anyhow::Result<Report> {
    let Demo {
        stack,
        clock,
        rate,
        started,
        wrapup_real_s,
        floor,
        load,
        stop_load,
        ..
    } = demo;
    stop_load.trigger();
    let _ = load.await;
    let arrivals_end = Instant::now();
    let sim = stack.sim.clone();
    let report = async {
        let completed = shown?;
        if completed {
            eprintln!("no more callers; letting the calls in progress finish (Ctrl-C to cut)…");
            tokio::select! {
                _ = sim.env.registry.ended(Duration::from_secs(60)) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        } else {
            eprintln!("stopping: callers hang up, agents finish…");
        }
        sim.hang_up_all();
        sim.drain(Duration::from_secs(10)).await;
        let measured = sim.stats.snapshot();
        let unfinished = sim.env.registry.live_inbound();
        let verdict = crate::sim::verify::verify(
            &stack.store,
            &measured.logs,
            &unfinished,
            &measured.callbacks_reached,
        )
        .await?;
        let window = (started, arrivals_end);
        anyhow::Ok(Report::build(RunData {
            route: Route::Callq,
            load: Load {
                agents: args.agents,
                rate,
                talk_s: TALK_S,
                wrapup_s: wrapup_real_s * clock.factor(),
                answer_delay_s: ANSWER_S,
                patience_s: PATIENCE_S,
                no_answer: 0.05,
                compress: clock.factor(),
                duration_s: arrivals_end.duration_since(started).as_secs_f64(),
                warmup_s: 0.0,
                sl_target_s: 20.0,
                workers: 1,
                seed: args.seed,
            },
            floor: sim.agents.floor_time(window.0, window.1),
            measured: &measured,
            verdict: &verdict,
            window,
            cut_at_end: 0,
        }))
    }
    .await;
    sim.hang_up_all();
    floor.abort();
    stack.stop().await;
    report
}

/// `waiting 3 (sales 2, support 1) | agents 4 available, 6 busy, … | answered 35 | abandoned 2`
async fn status_line(stack: &Stack, queues: &[String]) -> String {
    let mut waiting = Vec::new();
    let mut total = 0;
    for q in queues {
        if let Ok(s) = stack.store.queue_stats(q).await {
            total += s.waiting;
            waiting.push(format!("{q} {}", s.waiting));
        }
    }
    let mut by_status: Vec<(AgentStatus, usize)> =
        AgentStatus::ALL.iter().map(|s| (*s, 0)).collect();
    if let Ok(agents) = stack.store.agents().await {
        for a in agents {
            if let Some(e) = by_status.iter_mut().find(|(s, _)| *s == a.status) {
                e.1 += 1;
            }
        }
    }
    let agents: Vec<String> = by_status
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    let (answered, abandoned) = stack.sim.stats.counts();
    format!(
        "waiting {total} ({}) | agents {} | answered {answered} | abandoned {abandoned}",
        waiting.join(", "),
        agents.join(", ")
    )
}
