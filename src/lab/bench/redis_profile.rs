//! Where Redis spends its time during a benchmark phase, per script: the phase runs with
//! Redis' slow log recording every command (threshold 0), and each `FCALL` is named by its
//! function (`callq_<version>_<script>`), each `EVALSHA` by its script (the SHA-1 of each
//! expanded `lua/` file). Redis runs scripts on its one thread, so
//! a script's execution time is what every other request of the shard waits behind; this is
//! the figure to cut. The server's own settings are put back afterwards.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use sha1::{Digest, Sha1};

use super::core::percentile;
use crate::store::scripts::Scripts;

/// Slow-log entries kept during the phase (enough for a 10 s core bench).
const MAX_ENTRIES: u64 = 1_000_000;

/// One script's (or command's) execution time inside Redis.
#[derive(Debug, Clone, Serialize)]
pub struct ScriptCost {
    /// The script's file name without `.lua`, or the Redis command.
    pub name: String,
    /// A script (FCALL or EVALSHA), or a plain Redis command (run by a script or directly).
    pub script: bool,
    pub calls: u64,
    pub mean_us: f64,
    pub p99_us: f64,
    /// Its share of its kind's recorded time (scripts among scripts, commands among commands).
    pub share: f64,
}

/// A running profile; [`finish`](Profiler::finish) reads it and restores the settings. It
/// talks to Redis on a connection of its own, patient enough to read a long slow log.
pub struct Profiler {
    conn: redis::aio::MultiplexedConnection,
    slower_than: String,
    max_len: String,
}

impl Profiler {
    /// Record every command of the server at `redis_url` from now on.
    pub async fn start(redis_url: &str) -> anyhow::Result<Self> {
        let cfg = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(Duration::from_secs(120)))
            .set_connection_timeout(Some(Duration::from_secs(10)));
        let conn = redis::Client::open(redis_url)?
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        let mut p = Self {
            conn,
            slower_than: String::new(),
            max_len: String::new(),
        };
        p.slower_than = p.config_get("slowlog-log-slower-than").await?;
        p.max_len = p.config_get("slowlog-max-len").await?;
        p.config_set("slowlog-max-len", &MAX_ENTRIES.to_string())
            .await?;
        p.config_set("slowlog-log-slower-than", "0").await?;
        p.slowlog_reset().await?;
        Ok(p)
    }

    /// Stop recording, put the server's settings back and return the cost per script,
    /// costliest first.
    pub async fn finish(mut self) -> anyhow::Result<Vec<ScriptCost>> {
        let slower_than = self.slower_than.clone();
        let max_len = self.max_len.clone();
        // stop recording first; the settings come back even when reading the log fails
        self.config_set("slowlog-log-slower-than", &slower_than)
            .await?;
        let entries = self.read_slowlog().await;
        self.config_set("slowlog-max-len", &max_len).await?;
        self.slowlog_reset().await?;
        Ok(summarize(entries?))
    }

    async fn config_get(&mut self, key: &str) -> anyhow::Result<String> {
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(key)
            .query_async(&mut self.conn)
            .await?;
        Ok(v.get(1).cloned().unwrap_or_default())
    }

    async fn config_set(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(key)
            .arg(value)
            .query_async(&mut self.conn)
            .await?;
        Ok(())
    }

    async fn slowlog_reset(&mut self) -> anyhow::Result<()> {
        let _: () = redis::cmd("SLOWLOG")
            .arg("RESET")
            .query_async(&mut self.conn)
            .await?;
        Ok(())
    }

    /// (command or script name, µs) of every slow-log entry.
    async fn read_slowlog(&mut self) -> anyhow::Result<Vec<(String, f64)>> {
        let names: HashMap<String, String> = Scripts::sources()
            .into_iter()
            .map(|(file, src)| {
                let sha: String = Sha1::digest(src.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                (sha, file.trim_end_matches(".lua").to_string())
            })
            .collect();
        let log: Vec<redis::Value> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .query_async(&mut self.conn)
            .await?;
        let mut out = Vec::with_capacity(log.len());
        for entry in log {
            // [id, unix time, duration µs, [command and args], client, name]
            let redis::Value::Array(fields) = entry else {
                continue;
            };
            let (Some(us), Some(redis::Value::Array(args))) = (fields.get(2), fields.get(3)) else {
                continue;
            };
            let Ok(us) = redis::from_redis_value_ref::<i64>(us) else {
                continue;
            };
            let arg = |i: usize| {
                args.get(i)
                    .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
                    .unwrap_or_default()
            };
            let cmd = arg(0).to_ascii_lowercase();
            let name = match cmd.as_str() {
                "evalsha" => names
                    .get(&arg(1))
                    .cloned()
                    .unwrap_or_else(|| "evalsha (unknown script)".into()),
                // a function is named `callq_<version>_<script>`
                "fcall" => match arg(1).splitn(3, '_').nth(2) {
                    Some(script) if arg(1).starts_with("callq_") => script.to_string(),
                    _ => "fcall (unknown function)".into(),
                },
                // the profile's own commands
                "slowlog" | "config" => continue,
                _ => cmd,
            };
            out.push((name, us as f64));
        }
        Ok(out)
    }
}

/// Group entries by name, each group's share taken within its kind: the scripts share the
/// scripts' total; the plain commands (which are mostly the scripts' own, logged again one by
/// one, so never add the two) share theirs.
fn summarize(entries: Vec<(String, f64)>) -> Vec<ScriptCost> {
    let mut by: HashMap<String, Vec<f64>> = HashMap::new();
    for (name, us) in entries {
        by.entry(name).or_default().push(us);
    }
    // the script names once (expanding every script per group would be wasted work)
    let scripts: Vec<String> = Scripts::sources()
        .into_iter()
        .map(|(f, _)| f.trim_end_matches(".lua").to_string())
        .collect();
    let is_script = |name: &str| {
        scripts.iter().any(|s| s == name)
            || name.starts_with("evalsha")
            || name.starts_with("fcall")
    };
    let mut totals = (0.0f64, 0.0f64);
    for (name, v) in &by {
        let sum: f64 = v.iter().sum();
        if is_script(name) {
            totals.0 += sum;
        } else {
            totals.1 += sum;
        }
    }
    let mut costs: Vec<ScriptCost> = by
        .into_iter()
        .map(|(name, v)| {
            let sum: f64 = v.iter().sum();
            let script = is_script(&name);
            let total = if script { totals.0 } else { totals.1 };
            ScriptCost {
                script,
                calls: v.len() as u64,
                mean_us: sum / v.len() as f64,
                p99_us: percentile(&v, 0.99),
                share: sum / total.max(1.0),
                name,
            }
        })
        .collect();
    costs.sort_by(|a, b| b.script.cmp(&a.script).then(b.share.total_cmp(&a.share)));
    costs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_grouped_by_kind_and_ordered_by_share() {
        let entries = vec![
            ("claim".to_string(), 100.0),
            ("claim".to_string(), 300.0),
            ("enqueue".to_string(), 100.0),
            ("hget".to_string(), 30.0),
            ("zadd".to_string(), 10.0),
        ];
        let c = summarize(entries);
        let names: Vec<&str> = c.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["claim", "enqueue", "hget", "zadd"]);
        assert_eq!((c[0].calls, c[0].mean_us, c[0].p99_us), (2, 200.0, 300.0));
        assert!(c[0].script && c[1].script && !c[2].script);
        assert!((c[0].share - 0.8).abs() < 1e-9);
        assert!((c[2].share - 0.75).abs() < 1e-9);
    }
}
