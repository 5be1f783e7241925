//! Load generator for the Twilio edge (a benchmark, not a test): starts its own `redis-server`
//! (`callq::lab::embedded_redis`) and a real `callq serve` (`callq::server::serve`, the demo centre,
//! agents online so the wait estimate reads them), then sends correctly signed webhooks at a
//! fixed rate, open loop, and prints p50/p99 latency and requests/s per endpoint.
//!
//! ```text
//! scripts/bench-webhooks.sh                      # 1,000 req/s for 20 s on /twilio/voice, then /twilio/wait
//! scripts/bench-webhooks.sh --rate 2000 --seconds 10 --endpoints wait
//! ```
//!
//! `/twilio/voice` enqueues a new call per request (so the queue grows to rate × seconds);
//! `/twilio/wait` asks for the wait document of those calls in turn (position, estimate, hold
//! music: the heaviest read). Latency is measured per request from just before sending to the
//! whole body read, on a keep-alive connection pool; "late" is how far behind schedule sends
//! fell (the generator keeping its rate). Logging is on at `info`, formatted into a sink, so its
//! cost is counted. Everything shares this machine's cores, so the latencies include the load
//! generator's own CPU; the machine-independent costs are counted apart: the server runs on a
//! runtime of its own (threads named `callq-serve`, with its own Redis connections), whose CPU
//! time per request comes from Linux' per-thread `schedstat`, and Redis' main-thread CPU per
//! request from `INFO cpu`, both over the measured phase only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use callq::app::{AgentSettings, AppState, EdgeSettings};
use callq::config::CentreConfig;
use callq::lab::embedded_redis::EmbeddedRedis;
use callq::store::{AgentSpec, Arrival, CallKind, NewCall, RequestedStatus, Store, UpsertMode};
use callq::twilio::signature::signed_form;
use clap::Parser;

const AUTH_TOKEN: &str = "bench-auth-token";
const SALES_NUMBER: &str = "+15005550001";

#[derive(Parser, Debug)]
#[command(about = "Load the Twilio webhooks of a real callq server with real Redis")]
struct Args {
    /// Requests per second, per endpoint phase.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Measured seconds per endpoint phase.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Unmeasured seconds at the same rate before each phase.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Endpoints, in order: voice, wait.
    #[arg(long, value_delimiter = ',', default_value = "voice,wait")]
    endpoints: Vec<String>,
    /// Agents online in the queues (the wait estimate reads every agent).
    #[arg(long, default_value_t = 20)]
    agents: u32,
    /// Redis connections in the server's pool (as `CALLQ_REDIS_POOL`).
    #[arg(long, default_value_t = 32)]
    redis_pool: usize,
    /// Use this Redis instead of starting one.
    #[arg(long)]
    redis_url: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    latency: Duration,
    late: Duration,
    ok: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .json()
        .with_writer(std::io::sink)
        .init();

    let embedded = match &args.redis_url {
        Some(_) => None,
        None => Some(EmbeddedRedis::start().context("starting redis-server")?),
    };
    let redis_url = match (&args.redis_url, &embedded) {
        (Some(url), _) => url.clone(),
        (None, Some(r)) => r.url(),
        (None, None) => anyhow::bail!("no redis"),
    };
    let centre_name = format!("bench{}", std::process::id());
    let mut centre = CentreConfig::demo();
    centre.centre = centre_name.clone();
    let store = Store::connect(&redis_url, &centre_name, args.redis_pool)?;
    for q in centre.queue_settings() {
        store.configure_queue(&q).await?;
    }
    for i in 0..args.agents {
        let id = format!("agent{i}");
        store
            .upsert_agent(
                &AgentSpec {
                    id: id.clone(),
                    identity: format!("client-{id}"),
                    queues: vec![("sales".into(), 1), ("support".into(), 1)],
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
            .set_agent_status(&id, RequestedStatus::Available, "")
            .await?;
    }

    // the server on a runtime (and Redis connections) of its own, so its CPU can be told apart
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let base = format!("http://{}", listener.local_addr()?);
    let server_store = Store::connect(&redis_url, &centre_name, args.redis_pool)?;
    let state = AppState {
        store: server_store,
        centre: Arc::new(centre),
        edge: Arc::new(EdgeSettings {
            public_url: base.clone(),
            auth_token: AUTH_TOKEN.into(),
            redis_deadline: Duration::from_millis(300),
            log_caller_numbers: false,
        }),
        agents: Arc::new(AgentSettings {
            voice: None,
            admin_token: "bench-admin".into(),
            agent_secret: b"bench-agent-secret-bench-agent-secret".to_vec(),
            heartbeat_ttl: Duration::from_secs(15),
            voice_sdk_url: String::new(),
        }),
        ops: Default::default(),
        stats_cache: Default::default(),
        switches: Default::default(),
    };
    let (trigger, shutdown) = callq::shutdown::channel();
    let server = std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(SERVE_THREADS)
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            callq::server::serve(listener, state, 64 * 1024, shutdown).await?;
            Ok(())
        })
    });

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(15))
        .build()?;
    let sids: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();

    println!(
        "callq webhook load: {} req/s for {} s per endpoint (+{} s warm-up), {} agents, redis pool {}, {} cores",
        args.rate,
        args.seconds,
        args.warmup,
        args.agents,
        args.redis_pool,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<14} {:>8} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>11} {:>11}",
        "endpoint",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "late p99",
        "serve µs/req",
        "Redis µs/req"
    );
    for endpoint in &args.endpoints {
        let path = match endpoint.as_str() {
            "voice" => "/twilio/voice",
            "wait" => "/twilio/wait",
            other => anyhow::bail!("unknown endpoint {other:?} (voice, wait)"),
        };
        if endpoint == "wait" && sids.lock().map(|s| s.is_empty()).unwrap_or(true) {
            // nobody waiting yet: enter some callers directly
            let mut entered = Vec::new();
            for i in 0..1000 {
                let sid = format!("CAprefill{i:026}");
                store
                    .enqueue(&NewCall {
                        call_sid: &sid,
                        queue: "sales",
                        from: "+14155551234",
                        to: SALES_NUMBER,
                        priority_boost: Duration::ZERO,
                        kind: CallKind::Inbound,
                        arrival: Arrival::Holding {
                            waited: Duration::ZERO,
                        },
                        skills: Default::default(),
                    })
                    .await?;
                entered.push(sid);
            }
            if let Ok(mut s) = sids.lock() {
                *s = entered;
            }
        }
        let _ = phase(&client, &base, path, args.rate, args.warmup, &sids).await;
        let cpu_before = (serve_cpu(), redis_cpu(&store).await);
        let started = Instant::now();
        let samples = phase(&client, &base, path, args.rate, args.seconds, &sids).await;
        let elapsed = started.elapsed();
        let cpu_after = (serve_cpu(), redis_cpu(&store).await);
        let per_request = |before: Option<Duration>, after: Option<Duration>| match (before, after)
        {
            (Some(b), Some(a)) if !samples.is_empty() => {
                Some(a.saturating_sub(b).as_secs_f64() * 1e6 / samples.len() as f64)
            }
            _ => None,
        };
        let costs = (
            per_request(cpu_before.0, cpu_after.0),
            per_request(cpu_before.1, cpu_after.1),
        );
        report(endpoint, &samples, elapsed, costs);
    }
    if let Ok(n) = store.queue_stats("sales").await.map(|s| s.waiting) {
        println!("(sales queue at the end: {n} callers waiting)");
    }
    trigger.trigger();
    match server.join() {
        Ok(Err(e)) => eprintln!("server: {e:#}"),
        Err(_) => eprintln!("server thread panicked"),
        Ok(Ok(())) => {}
    }
    drop(embedded);
    Ok(())
}

/// The name of the server runtime's threads (at most 15 bytes: Linux' `comm`).
const SERVE_THREADS: &str = "callq-serve";

/// CPU time the server's threads have used so far (their `schedstat`, nanoseconds on CPU);
/// None off Linux. A thread that ended takes its time with it: the runtime's worker threads
/// live as long as the server.
fn serve_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = entry.ok()?.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue; // the thread ended meanwhile
        };
        if !comm.trim_end().starts_with(SERVE_THREADS) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// CPU time of Redis' main thread so far (`INFO cpu`: user + system), None when not given.
async fn redis_cpu(store: &Store) -> Option<Duration> {
    let mut c = store.conn().await.ok()?;
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(&mut c)
        .await
        .ok()?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let secs = match (
        field("used_cpu_user_main_thread"),
        field("used_cpu_sys_main_thread"),
    ) {
        (Some(u), Some(s)) => u + s,
        _ => field("used_cpu_user")? + field("used_cpu_sys")?,
    };
    Some(Duration::from_secs_f64(secs))
}

/// Send `rate` requests a second for `seconds`, open loop; wait for every answer.
async fn phase(
    client: &reqwest::Client,
    base: &str,
    path: &'static str,
    rate: u32,
    seconds: u64,
    sids: &Arc<std::sync::Mutex<Vec<String>>>,
) -> Vec<Sample> {
    let total = u64::from(rate) * seconds;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let start = Instant::now();
    let url = format!("{base}{path}");
    let waiting: Vec<String> = sids.lock().map(|s| s.clone()).unwrap_or_default();
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled.into()).await;
        let sid = if path == "/twilio/voice" {
            format!("CA{:016x}{:016x}", rand::random::<u64>(), i)
        } else {
            match waiting.get(i as usize % waiting.len().max(1)) {
                Some(s) => s.clone(),
                None => format!("CAnobody{i}"),
            }
        };
        let (client, url, tx, sids) = (client.clone(), url.clone(), tx.clone(), sids.clone());
        tokio::spawn(async move {
            let params: Vec<(&str, &str)> = if path == "/twilio/voice" {
                vec![
                    ("CallSid", &sid),
                    ("AccountSid", "AC00000000000000000000000000000000"),
                    ("From", "+14155551234"),
                    ("To", SALES_NUMBER),
                    ("CallStatus", "ringing"),
                    ("Direction", "inbound"),
                    ("ApiVersion", "2010-04-01"),
                ]
            } else {
                vec![
                    ("CallSid", &sid),
                    ("AccountSid", "AC00000000000000000000000000000000"),
                    ("From", "+14155551234"),
                    ("QueuePosition", "7"),
                    ("QueueTime", "42"),
                    ("AvgQueueTime", "40"),
                    ("CurrentQueueSize", "100"),
                    ("MaxQueueSize", "1000"),
                ]
            };
            let (body, signature) = signed_form(AUTH_TOKEN, &url, &params);
            let late = scheduled.elapsed();
            let t0 = Instant::now();
            let result = client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-twilio-signature", signature)
                .body(body)
                .send()
                .await;
            let ok = match result {
                Ok(resp) => {
                    let good = resp.status().is_success();
                    let text = resp.text().await.unwrap_or_default();
                    good && text.contains("<Response")
                }
                Err(_) => false,
            };
            let latency = t0.elapsed();
            if ok && path == "/twilio/voice" {
                if let Ok(mut s) = sids.lock() {
                    s.push(sid.clone());
                }
            }
            let _ = tx.send(Sample { latency, late, ok });
        });
    }
    drop(tx);
    let mut samples = Vec::with_capacity(total as usize);
    while let Some(s) = rx.recv().await {
        samples.push(s);
    }
    samples
}

/// One line per endpoint; `costs` are the server's and Redis' CPU µs per request.
fn report(
    endpoint: &str,
    samples: &[Sample],
    elapsed: Duration,
    costs: (Option<f64>, Option<f64>),
) {
    let mut lat: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    lat.sort();
    let mut late: Vec<Duration> = samples.iter().map(|s| s.late).collect();
    late.sort();
    let q = |v: &[Duration], p: f64| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let errors = samples.iter().filter(|s| !s.ok).count();
    let cost = |c: Option<f64>| c.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    println!(
        "{:<14} {:>8} {:>7} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>12} {:>12}",
        format!("/twilio/{endpoint}"),
        samples.len(),
        errors,
        samples.len() as f64 / elapsed.as_secs_f64(),
        q(&lat, 0.50),
        q(&lat, 0.90),
        q(&lat, 0.99),
        q(&lat, 1.0),
        q(&late, 0.99),
        cost(costs.0),
        cost(costs.1),
    );
}
