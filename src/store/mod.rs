//! The routing store: the only code that touches routing keys. All routing state lives in
//! Redis; every state transition is one Lua script in `lua/` (see [`scripts`]), and each script
//! has exactly one typed function on [`Store`] below. Reads that change nothing live in
//! [`read`].
//!
//! Keys (centre `C`; the `{C}` hash tag keeps a centre in one slot):
//! `callq:{C}:call:<CallSid>`, `callq:{C}:queue:<Q>`, `callq:{C}:queue:<Q>:waiting`,
//! `callq:{C}:queue:<Q>:ready:<tier>`, `callq:{C}:agent:<A>`, `callq:{C}:agent:<A>:alive`,
//! `callq:{C}:queues`, `callq:{C}:agents`, `callq:{C}:offers`, `callq:{C}:wrapup`,
//! `callq:{C}:heartbeats`, `callq:{C}:wake`, `callq:{C}:events`.

pub mod read;
pub mod scripts;
pub mod types;

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::{Config as PoolConfig, Pool, Runtime};
use redis::{FromRedisValue, Script};

pub use types::*;

/// Errors from the routing store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis reply: {0}")]
    Parse(#[from] redis::ParsingError),
    #[error("redis connection pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis pool setup: {0}")]
    PoolSetup(String),
    #[error("script {script} returned an unexpected reply: {reply:?}")]
    Reply {
        script: &'static str,
        reply: Vec<String>,
    },
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("unknown queue {0:?}")]
    UnknownQueue(String),
    #[error("unknown agent {0:?}")]
    UnknownAgent(String),
    #[error("agent {0:?} holds a call")]
    AgentBusy(String),
    #[error("agent {0:?} already exists")]
    AgentExists(String),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Length cap of the wake list `callq:{C}:wake` (`WAKE_CAP` in `lua/includes/common.lua`).
pub const WAKE_CAP: isize = 16;

/// Names that become part of a key or a script's list fields: queue names, agent ids, CallSids.
/// Letters, digits, `_`, `-` and `.`, at most 64: readable in redis-cli and safe as separators.
pub fn check_name(what: &'static str, value: &str) -> Result<()> {
    let ok_len = !value.is_empty() && value.len() <= 64;
    let ok_chars = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(StoreError::Invalid {
            what,
            value: value.chars().take(80).collect(),
            why: "use 1-64 letters, digits, '_', '-' or '.'",
        })
    }
}

/// A handle on one contact centre's routing state. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    prefix: Arc<str>,
    scripts: Arc<scripts::Scripts>,
}

impl Store {
    /// Connect to `redis_url` for centre `centre` (`main` unless configured otherwise).
    pub fn connect(redis_url: &str, centre: &str, pool_size: usize) -> Result<Self> {
        check_name("centre", centre)?;
        let mut cfg = PoolConfig::from_url(redis_url);
        cfg.pool = Some(deadpool_redis::PoolConfig::new(pool_size.max(1)));
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1))
            .map_err(|e| StoreError::PoolSetup(e.to_string()))?;
        Ok(Self {
            pool,
            prefix: format!("callq:{{{centre}}}:").into(),
            scripts: Arc::new(scripts::Scripts::load()),
        })
    }

    /// The key prefix `callq:{C}:` every routing key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A pooled connection, for reads.
    pub async fn conn(&self) -> Result<deadpool_redis::Connection> {
        Ok(self.pool.get().await?)
    }

    pub fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.prefix, suffix)
    }

    async fn run<T: FromRedisValue>(&self, script: &Script, args: &[&str]) -> Result<T> {
        let mut conn = self.pool.get().await?;
        let mut inv = script.key(&*self.prefix);
        for a in args {
            inv.arg(*a);
        }
        Ok(inv.invoke_async(&mut *conn).await?)
    }

    async fn run_list(&self, name: &'static str, script: &Script, args: &[&str]) -> Result<Reply> {
        let reply: Vec<String> = self.run(script, args).await?;
        Ok(Reply {
            script: name,
            v: reply,
        })
    }

    /// Create or update a queue's routing settings.
    pub async fn configure_queue(&self, q: &QueueSettings) -> Result<()> {
        check_name("queue", &q.name)?;
        let r = self
            .run_list(
                "queue_config",
                &self.scripts.queue_config,
                &[
                    &q.name,
                    q.strategy.as_str(),
                    &ms(q.ring_timeout),
                    &ms(q.wrapup),
                    &q.max_no_answer.max(1).to_string(),
                    &ms(q.no_answer_delay),
                ],
            )
            .await?;
        match r.tag() {
            "created" | "updated" => Ok(()),
            _ => Err(r.unexpected()),
        }
    }

    /// Create an agent (offline) or update its profile. Returns true when created.
    pub async fn upsert_agent(&self, spec: &AgentSpec) -> Result<bool> {
        self.write_agent(spec, "").await
    }

    /// Create an agent (offline); [`StoreError::AgentExists`] (nothing changed) when it exists.
    pub async fn create_agent(&self, spec: &AgentSpec) -> Result<()> {
        self.write_agent(spec, "create").await.map(|_| ())
    }

    /// Replace an existing agent's profile; [`StoreError::UnknownAgent`] when there is none.
    pub async fn update_agent(&self, spec: &AgentSpec) -> Result<()> {
        self.write_agent(spec, "update").await.map(|_| ())
    }

    /// `agent_upsert` in `mode` ("" upsert, "create" or "update"). Returns true when created.
    async fn write_agent(&self, spec: &AgentSpec, mode: &str) -> Result<bool> {
        check_name("agent id", &spec.id)?;
        for (q, tier) in &spec.queues {
            check_name("queue", q)?;
            if *tier == 0 || *tier > 9 {
                return Err(StoreError::Invalid {
                    what: "tier",
                    value: tier.to_string(),
                    why: "tiers run from 1 to 9",
                });
            }
        }
        if spec.capacity == 0 || spec.capacity > 100 {
            return Err(StoreError::Invalid {
                what: "capacity",
                value: spec.capacity.to_string(),
                why: "capacity runs from 1 to 100",
            });
        }
        let r = self
            .run_list(
                "agent_upsert",
                &self.scripts.agent_upsert,
                &[
                    &spec.id,
                    &spec.identity,
                    &spec.queues_field(),
                    &spec.capacity.to_string(),
                    mode,
                ],
            )
            .await?;
        match r.tag() {
            "created" => Ok(true),
            "updated" => Ok(false),
            "unknown_queue" => Err(StoreError::UnknownQueue(r.field(1).to_string())),
            "exists" => Err(StoreError::AgentExists(spec.id.clone())),
            "unknown" => Err(StoreError::UnknownAgent(spec.id.clone())),
            _ => Err(r.unexpected()),
        }
    }

    /// Remove an agent that holds no call.
    pub async fn delete_agent(&self, id: &str) -> Result<()> {
        check_name("agent id", id)?;
        let r = self
            .run_list("agent_delete", &self.scripts.agent_delete, &[id])
            .await?;
        match r.tag() {
            "deleted" => Ok(()),
            "unknown" => Err(StoreError::UnknownAgent(id.to_string())),
            "busy" => Err(StoreError::AgentBusy(id.to_string())),
            _ => Err(r.unexpected()),
        }
    }

    /// Refresh an agent's heartbeat for `ttl`. Returns the agent's status afterwards.
    pub async fn heartbeat(
        &self,
        id: &str,
        ttl: Duration,
        device_registered: bool,
    ) -> Result<AgentStatus> {
        check_name("agent id", id)?;
        let dev = if device_registered { "1" } else { "0" };
        let r = self
            .run_list("heartbeat", &self.scripts.heartbeat, &[id, &ms(ttl), dev])
            .await?;
        match r.tag() {
            "ok" => r.parse(1),
            "unknown" => Err(StoreError::UnknownAgent(id.to_string())),
            _ => Err(r.unexpected()),
        }
    }

    /// Ask for available, paused or offline. While on a call, paused/offline is deferred.
    pub async fn set_agent_status(
        &self,
        id: &str,
        status: RequestedStatus,
        reason: &str,
    ) -> Result<StatusChange> {
        check_name("agent id", id)?;
        let reason: String = reason.chars().take(200).collect();
        let r = self
            .run_list(
                "agent_status",
                &self.scripts.agent_status,
                &[id, status.as_str(), &reason],
            )
            .await?;
        match r.tag() {
            "ok" => Ok(StatusChange::Applied(r.parse(1)?)),
            "deferred" => Ok(StatusChange::Deferred(r.parse(1)?)),
            "unknown" => Err(StoreError::UnknownAgent(id.to_string())),
            _ => Err(r.unexpected()),
        }
    }

    /// A call enters queue `queue`; idempotent per CallSid.
    pub async fn enqueue(
        &self,
        call_sid: &str,
        queue: &str,
        from: &str,
        to: &str,
        priority_boost: Duration,
        kind: CallKind,
    ) -> Result<Enqueued> {
        check_name("CallSid", call_sid)?;
        check_name("queue", queue)?;
        let from: String = from.chars().take(64).collect();
        let to: String = to.chars().take(64).collect();
        let r = self
            .run_list(
                "enqueue",
                &self.scripts.enqueue,
                &[
                    call_sid,
                    queue,
                    &from,
                    &to,
                    &ms(priority_boost),
                    kind.as_str(),
                ],
            )
            .await?;
        match r.tag() {
            "new" | "existing" => Ok(Enqueued {
                created: r.tag() == "new",
                state: r.parse(1)?,
                rank: r.parse(2)?,
            }),
            "unknown_queue" => Err(StoreError::UnknownQueue(queue.to_string())),
            _ => Err(r.unexpected()),
        }
    }

    /// Take the best (call, agent) pair, reserving both under an offer lease of `lease`.
    /// `random` feeds the `random` strategy.
    pub async fn claim(&self, lease: Duration, random: u32) -> Result<Claim> {
        let r = self
            .run_list(
                "claim",
                &self.scripts.claim,
                &[&ms(lease), &random.to_string()],
            )
            .await?;
        match r.tag() {
            "offer" if r.v.len() == 10 => Ok(Claim::Offer(Offer {
                call_sid: r.field(1).to_string(),
                agent_id: r.field(2).to_string(),
                identity: r.field(3).to_string(),
                queue: r.field(4).to_string(),
                attempt: r.parse(5)?,
                ring_timeout: Duration::from_millis(r.parse(6)?),
                kind: r.parse(7)?,
                from: r.field(8).to_string(),
                to: r.field(9).to_string(),
            })),
            "none" => Ok(Claim::Idle {
                next_due_ms: r.field(1).parse().ok(),
            }),
            _ => Err(r.unexpected()),
        }
    }

    /// The agent's phone is ringing: stretch the offer lease to `lease` from now.
    pub async fn extend_offer(
        &self,
        call_sid: &str,
        agent: &str,
        lease: Duration,
    ) -> Result<Transition<()>> {
        let r = self
            .run_list(
                "extend_offer",
                &self.scripts.extend_offer,
                &[call_sid, agent, &ms(lease)],
            )
            .await?;
        match r.tag() {
            "ok" => Ok(Transition::Done(())),
            "stale" => Ok(Transition::Stale(r.field(1).parse().ok())),
            _ => Err(r.unexpected()),
        }
    }

    /// What became of the offer of `call_sid` to `agent`.
    pub async fn offer_result(
        &self,
        call_sid: &str,
        agent: &str,
        outcome: OfferOutcome,
    ) -> Result<OfferResult> {
        let r = self
            .run_list(
                "offer_result",
                &self.scripts.offer_result,
                &[call_sid, agent, outcome.as_str()],
            )
            .await?;
        match r.tag() {
            "connected" => Ok(OfferResult::Connected),
            "requeued" => Ok(OfferResult::Requeued(
                r.field(1).parse().unwrap_or(AgentStatus::Offline),
            )),
            "stale" => Ok(OfferResult::Stale(r.field(1).parse().ok())),
            _ => Err(r.unexpected()),
        }
    }

    /// A connected call ended; returns the agent who had it.
    pub async fn complete(&self, call_sid: &str) -> Result<Transition<String>> {
        let r = self
            .run_list("complete", &self.scripts.complete, &[call_sid])
            .await?;
        match r.tag() {
            "completed" => Ok(Transition::Done(r.field(1).to_string())),
            "stale" => Ok(Transition::Stale(r.field(1).parse().ok())),
            _ => Err(r.unexpected()),
        }
    }

    /// The caller hung up before being connected; returns the state the call was in.
    pub async fn abandon(&self, call_sid: &str, reason: &str) -> Result<Transition<CallState>> {
        let r = self
            .run_list("abandon", &self.scripts.abandon, &[call_sid, reason])
            .await?;
        match r.tag() {
            "abandoned" => Ok(Transition::Done(r.parse(1)?)),
            "stale" => Ok(Transition::Stale(r.field(1).parse().ok())),
            _ => Err(r.unexpected()),
        }
    }

    /// A waiting caller asked to be called back at `number`; the call keeps its rank.
    pub async fn request_callback(&self, call_sid: &str, number: &str) -> Result<Transition<()>> {
        let r = self
            .run_list("callback", &self.scripts.callback, &[call_sid, number])
            .await?;
        match r.tag() {
            "callback" => Ok(Transition::Done(())),
            "stale" => Ok(Transition::Stale(r.field(1).parse().ok())),
            _ => Err(r.unexpected()),
        }
    }

    /// A waiting caller reached the max wait and leaves for the overflow action `to`.
    pub async fn overflow(&self, call_sid: &str, to: &str) -> Result<Transition<()>> {
        let r = self
            .run_list("overflow", &self.scripts.overflow, &[call_sid, to])
            .await?;
        match r.tag() {
            "overflowed" => Ok(Transition::Done(())),
            "stale" => Ok(Transition::Stale(r.field(1).parse().ok())),
            _ => Err(r.unexpected()),
        }
    }

    /// A waiting call moves to queue `to`, keeping its rank; returns the queue it left.
    pub async fn transfer(&self, call_sid: &str, to: &str) -> Result<Transition<String>> {
        check_name("queue", to)?;
        let r = self
            .run_list("transfer", &self.scripts.transfer, &[call_sid, to])
            .await?;
        match r.tag() {
            "transferred" => Ok(Transition::Done(r.field(1).to_string())),
            "stale" => Ok(Transition::Stale(r.field(1).parse().ok())),
            "unknown_queue" => Err(StoreError::UnknownQueue(to.to_string())),
            _ => Err(r.unexpected()),
        }
    }

    /// Push a wake marker, capped like the scripts' own (a worker that cannot take the work
    /// hands it to another; a worker stopping gives back a marker it popped).
    pub async fn wake(&self) -> Result<()> {
        let key = self.key("wake");
        let mut conn = self.pool.get().await?;
        redis::pipe()
            .atomic()
            .lpush(&key, "handoff")
            .ignore()
            .ltrim(&key, 0, WAKE_CAP - 1)
            .ignore()
            .query_async::<()>(&mut *conn)
            .await?;
        Ok(())
    }

    /// Return expired offers, take dead agents offline, end due wrap-ups (at most `limit` each).
    pub async fn reap(&self, limit: u32) -> Result<Reaped> {
        let r: Vec<i64> = self.run(&self.scripts.reap, &[&limit.to_string()]).await?;
        match r.as_slice() {
            [a, b, c] => Ok(Reaped {
                expired_offers: *a as u32,
                agents_lost: *b as u32,
                wrapups_ended: *c as u32,
            }),
            _ => Err(StoreError::Reply {
                script: "reap",
                reply: r.iter().map(|v| v.to_string()).collect(),
            }),
        }
    }
}

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

/// A script's reply: a tag then fields.
struct Reply {
    script: &'static str,
    v: Vec<String>,
}

impl Reply {
    fn tag(&self) -> &str {
        self.field(0)
    }

    fn field(&self, i: usize) -> &str {
        self.v.get(i).map(String::as_str).unwrap_or("")
    }

    fn parse<T: std::str::FromStr>(&self, i: usize) -> Result<T> {
        self.field(i).parse().map_err(|_| self.unexpected())
    }

    fn unexpected(&self) -> StoreError {
        StoreError::Reply {
            script: self.script,
            reply: self.v.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("queue", "sales").is_ok());
        assert!(check_name("CallSid", "CA0123456789abcdef0123456789abcdef").is_ok());
        assert!(check_name("queue", "").is_err());
        assert!(check_name("queue", "a,b").is_err());
        assert!(check_name("queue", "a=b").is_err());
        assert!(check_name("queue", "a b").is_err());
        assert!(check_name("queue", &"x".repeat(65)).is_err());
    }
}
