//! `callq inspect`: a readable dump of a centre's queues, agents and waiting calls, read from
//! Redis (the same keys `redis-cli` shows).

use crate::config::CentreConfig;
use crate::store::Store;

/// What `callq inspect` reads and how it prints it.
#[derive(Debug, Clone)]
pub struct InspectOptions {
    /// Redis holding the routing state.
    pub redis_url: String,
    /// Print JSON instead of text.
    pub json: bool,
}

pub async fn run(options: &InspectOptions, centre: &CentreConfig) -> anyhow::Result<()> {
    let store = Store::connect(&options.redis_url, &centre.centre, 2)?;
    let queues = store.queue_names().await?;
    let mut stats = Vec::new();
    for q in &queues {
        stats.push(store.queue_stats(q).await?);
    }
    let agents = store.agents().await?;
    let mut waiting = Vec::new();
    let snap = store.snapshot(&[]).await?;
    for q in &queues {
        for sid in snap.waiting.get(q).into_iter().flatten() {
            if let Some(c) = store.call(sid).await? {
                waiting.push(c);
            }
        }
    }
    if options.json {
        let doc = serde_json::json!({
            "centre": centre.centre,
            "queues": stats,
            "agents": agents,
            "waiting": waiting,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("centre {} (keys {}*)", centre.centre, store.prefix());
    println!(
        "\nQUEUE            WAITING  OLDEST(s)  EST.WAIT(s)  AHT(s)  READY  BUSY  WRAPUP  PAUSED"
    );
    for s in &stats {
        let n = |k: &str| s.agents.get(k).copied().unwrap_or(0);
        println!(
            "{:<16} {:>7}  {:>9.0}  {:>11.0}  {:>6.0}  {:>5}  {:>4}  {:>6}  {:>6}",
            s.name,
            s.waiting,
            s.oldest_wait_s,
            s.estimated_wait_s,
            s.aht_s,
            n("available"),
            n("busy") + n("reserved"),
            n("wrapup"),
            n("paused"),
        );
    }
    println!("\nAGENT            STATUS     CALLS  HANDLED  HEARTBEAT  QUEUES");
    for a in &agents {
        let hb = match a.heartbeat {
            Some(true) => "live",
            Some(false) => "no-device",
            None => "none",
        };
        let queues: Vec<String> = a.queues.iter().map(|(q, t)| format!("{q}={t}")).collect();
        println!(
            "{:<16} {:<10} {:>5}  {:>7}  {:<9}  {}",
            a.id,
            a.status.as_str(),
            a.active,
            a.handled,
            hb,
            queues.join(",")
        );
    }
    println!("\nWAITING CALL                        QUEUE        STATE     ATTEMPTS  FROM");
    for c in &waiting {
        println!(
            "{:<35} {:<12} {:<9} {:>8}  {}",
            c.sid,
            c.queue,
            c.state.as_str(),
            c.attempts,
            c.from
        );
    }
    Ok(())
}
