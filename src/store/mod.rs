//! The routing store: the only code that touches routing keys. All routing state lives in
//! Redis; every state transition is one Lua script in `lua/` (see [`scripts`]), and each script
//! has exactly one typed function on [`Store`] below. Reads that change nothing live in
//! [`read`]. The scripts run as Redis functions (`FCALL`, the library loaded again whenever
//! Redis lost it: a restart without persistence, `FUNCTION FLUSH`), or by SHA (`EVALSHA`) on
//! a Redis without functions (before 7.0).
//!
//! Keys (centre `C`; the `{C}` hash tag keeps a centre in one slot; `lua/includes/keys.lua`
//! says what each holds): `callq:{C}:call:<CallSid>`, `callq:{C}:queue:<Q>` (settings),
//! `callq:{C}:queue:<Q>:stats` (running figures), `callq:{C}:queue:<Q>:waiting`,
//! `callq:{C}:queue:<Q>:ready:<tier>`, `callq:{C}:agent:<A>`,
//! `callq:{C}:agent:<A>:alive`, `callq:{C}:queues`, `callq:{C}:agents`, `callq:{C}:arriving`,
//! `callq:{C}:offers`, `callq:{C}:connected`, `callq:{C}:retry`, `callq:{C}:wrapup`,
//! `callq:{C}:heartbeats`, `callq:{C}:wake`, `callq:{C}:events`.

mod backend;
pub mod history;
mod kpi;
pub mod read;
pub mod scripts;
pub mod types;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{FromRedisValue, Script};

use backend::Backend;
pub use backend::{Conn, RedisTarget};
pub use types::*;

/// Errors from the routing store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis reply: {0}")]
    Parse(#[from] redis::ParsingError),
    #[error("redis connection pool: {0}")]
    Pool(#[from] deadpool::managed::PoolError<redis::RedisError>),
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
    #[error("agent {0:?}: the token's generation was revoked")]
    TokenRevoked(String),
    #[error("agent {0:?} holds a call")]
    AgentBusy(String),
    #[error("agent {0:?} already exists")]
    AgentExists(String),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Length cap of the wake list `callq:{C}:wake` (`WAKE_CAP` in `lua/includes/events.lua`).
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

/// How a [`Store`] talks to Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Redis connections in the pool.
    pub pool_size: usize,
    /// Longest wait for one reply before the command fails (`StoreError::Redis`); callers
    /// that need a tighter bound (the webhooks) set their own deadline on top.
    pub response_timeout: Duration,
    /// Longest wait to open a connection.
    pub connect_timeout: Duration,
    /// Run the scripts as Redis functions (the default), falling back to EVALSHA on a Redis
    /// without them; false: by SHA only.
    pub functions: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            pool_size: 32,
            response_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            functions: true,
        }
    }
}

/// A handle on one contact centre's routing state. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Backend,
    prefix: Arc<str>,
    scripts: Arc<scripts::Scripts>,
    library: Arc<scripts::Library>,
    /// False once Redis answered that it has no functions (then scripts run by SHA).
    functions: Arc<AtomicBool>,
}

/// Redis does not have the function called (never loaded, or lost: a restart without
/// persistence, `FUNCTION FLUSH`).
fn function_missing(e: &redis::RedisError) -> bool {
    e.to_string().contains("Function not found")
}

/// Redis has no functions at all (before 7.0).
fn functions_unsupported(e: &redis::RedisError) -> bool {
    let m = e.to_string().to_ascii_lowercase();
    m.contains("unknown command") && m.contains("fcall")
}

impl Store {
    /// Connect to `redis_url` for centre `centre` (`main` unless configured otherwise). A
    /// `redis+cluster://` URL or several comma-separated URLs name a Redis Cluster
    /// ([`RedisTarget::parse`]).
    pub fn connect(redis_url: &str, centre: &str, pool_size: usize) -> Result<Self> {
        let opts = StoreOptions {
            pool_size,
            ..StoreOptions::default()
        };
        Self::connect_with(redis_url, centre, &opts)
    }

    /// [`Store::connect`] with every connection setting given.
    pub fn connect_with(redis_url: &str, centre: &str, opts: &StoreOptions) -> Result<Self> {
        check_name("centre", centre)?;
        let prefix = format!("callq:{{{centre}}}:");
        let pool = Backend::connect(&RedisTarget::parse(redis_url)?, &prefix, opts)?;
        Ok(Self {
            pool,
            prefix: prefix.into(),
            scripts: Arc::new(scripts::Scripts::load()),
            library: Arc::new(scripts::Scripts::library()),
            functions: Arc::new(AtomicBool::new(opts.functions)),
        })
    }

    /// The key prefix `callq:{C}:` every routing key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The centre's name (`C` of the prefix).
    pub fn centre(&self) -> &str {
        self.prefix
            .strip_prefix("callq:{")
            .and_then(|rest| rest.strip_suffix("}:"))
            .unwrap_or(&self.prefix)
    }

    /// A pooled connection, for reads. On a cluster it routes each command by its key, and a
    /// pipeline whole by its first key: keep commands without a key out of it or after a
    /// keyed one ([`Store::ping`] and [`Store::redis_time`] route theirs).
    pub async fn conn(&self) -> Result<Conn> {
        self.pool.get().await
    }

    /// True on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.pool.is_cluster()
    }

    /// PING the server holding the centre (on a cluster, the master of its slot).
    pub async fn ping(&self) -> Result<()> {
        self.pool.ping().await
    }

    /// Redis' `TIME` as (seconds, microseconds), from the server holding the centre: the
    /// clock its scripts read.
    pub async fn redis_time(&self) -> Result<(i64, i64)> {
        self.pool.time().await
    }

    /// A client for plain connections to the server holding the centre (on a cluster, the
    /// master of its slot as the cluster says now): for blocking commands, which must not
    /// hold a pooled connection, and `CLIENT UNBLOCK`, which must reach the same node.
    pub async fn wake_client(&self) -> Result<redis::Client> {
        self.pool.wake_client().await
    }

    pub fn key(&self, suffix: &str) -> String {
        format!("{}{}", self.prefix, suffix)
    }

    /// Run transition `name`: its function, the library loaded first when Redis lost it, or
    /// `script` by SHA on a Redis without functions.
    async fn run<T: FromRedisValue>(
        &self,
        name: &'static str,
        script: &Script,
        args: &[&str],
    ) -> Result<T> {
        let mut conn = self.pool.get().await?;
        if self.functions.load(Ordering::Relaxed) {
            let mut call = redis::cmd("FCALL");
            call.arg(format!("{}{name}", self.library.prefix))
                .arg(1)
                .arg(&*self.prefix)
                .arg(args);
            match call.query_async::<T>(&mut conn).await {
                Ok(v) => return Ok(v),
                Err(e) if function_missing(&e) => {
                    self.load_library(&mut conn).await?;
                    return Ok(call.query_async::<T>(&mut conn).await?);
                }
                Err(e) if functions_unsupported(&e) => {
                    self.functions.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut inv = script.key(&*self.prefix);
        for a in args {
            inv.arg(*a);
        }
        // EVALSHA goes to the slot's master; on NOSCRIPT (a new master after a failover, a
        // restart, a SCRIPT FLUSH) the crate sends SCRIPT LOAD, which the cluster client
        // sends to every master, and runs the EVALSHA again.
        Ok(inv.invoke_async(&mut conn).await?)
    }

    /// Load this version's library (another process may just have done it). On a cluster
    /// the client sends `FUNCTION LOAD` to every master.
    async fn load_library(&self, conn: &mut Conn) -> Result<()> {
        let loaded: redis::RedisResult<String> = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(&self.library.source)
            .query_async(conn)
            .await;
        match loaded {
            Err(e) if !e.to_string().contains("already exists") => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn run_list(&self, name: &'static str, script: &Script, args: &[&str]) -> Result<Reply> {
        let reply: Vec<String> = self.run(name, script, args).await?;
        Ok(Reply {
            script: name,
            v: reply,
        })
    }

    /// Create or update a queue's routing settings (`configure_queue.lua`).
    pub async fn configure_queue(&self, q: &QueueSettings) -> Result<()> {
        check_name("queue", &q.name)?;
        q.skills.check()?;
        for step in &q.widen {
            if let Some(other) = &step.queue {
                check_name("queue", other)?;
            }
        }
        let r = self
            .run_list(
                "configure_queue",
                &self.scripts.configure_queue,
                &[
                    &q.name,
                    q.strategy.as_str(),
                    &ms(q.ring_timeout),
                    &ms(q.wrapup),
                    &q.max_no_answer.max(1).to_string(),
                    &ms(q.no_answer_delay),
                    &q.callback_retries.to_string(),
                    &ms(q.callback_retry_delay),
                    &ms(q.check_after.max(Duration::from_millis(100))),
                    if q.fallback { "1" } else { "0" },
                    &ms(q.half_life.max(Duration::from_secs(1))),
                    q.record.as_str(),
                    &q.skills.field(),
                    &q.widen_field(),
                    &q.claim_depth().to_string(),
                    &ms(q.busy_delay.unwrap_or(q.no_answer_delay)),
                    &ms(q.failed_delay.unwrap_or(q.no_answer_delay)),
                    &q.resume_within.map_or_else(|| "0".to_string(), ms),
                    if q.transfer_keeps_rank { "keep" } else { "new" },
                ],
            )
            .await?;
        match r.tag() {
            "created" | "updated" => Ok(()),
            _ => Err(r.unexpected()),
        }
    }

    /// Create an agent (offline) or update its profile (`upsert_agent.lua`). Returns true
    /// when created. [`UpsertMode::Create`] refuses an existing agent
    /// ([`StoreError::AgentExists`]), [`UpsertMode::Update`] an unknown one
    /// ([`StoreError::UnknownAgent`]); neither changes anything then.
    pub async fn upsert_agent(&self, spec: &AgentSpec, mode: UpsertMode) -> Result<bool> {
        self.upsert_agent_with_generation(spec, mode, &new_token_generation())
            .await
    }

    /// [`Store::upsert_agent`] giving a new agent token generation `generation` (letters and
    /// digits) rather than a fresh one: `callq reconcile` restoring an agent whose tokens
    /// should stay good.
    pub async fn upsert_agent_with_generation(
        &self,
        spec: &AgentSpec,
        mode: UpsertMode,
        generation: &str,
    ) -> Result<bool> {
        if generation.is_empty() || !generation.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(StoreError::Invalid {
                what: "token generation",
                value: generation.chars().take(80).collect(),
                why: "letters and digits",
            });
        }
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
        spec.skills.check()?;
        if spec.weight == 0 || spec.weight > 1000 {
            return Err(StoreError::Invalid {
                what: "weight",
                value: spec.weight.to_string(),
                why: "weights run from 1 to 1000",
            });
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
                "upsert_agent",
                &self.scripts.upsert_agent,
                &[
                    &spec.id,
                    &spec.identity,
                    &spec.queues_field(),
                    &spec.capacity.to_string(),
                    mode.as_arg(),
                    generation,
                    &spec.skills.field(),
                    &spec.order.to_string(),
                    &spec.weight.to_string(),
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

    /// Remove an agent that holds no call (`delete_agent.lua`).
    pub async fn delete_agent(&self, id: &str) -> Result<()> {
        check_name("agent id", id)?;
        let r = self
            .run_list("delete_agent", &self.scripts.delete_agent, &[id])
            .await?;
        match r.tag() {
            "deleted" => Ok(()),
            "unknown" => Err(StoreError::UnknownAgent(id.to_string())),
            "busy" => Err(StoreError::AgentBusy(id.to_string())),
            _ => Err(r.unexpected()),
        }
    }

    /// Void every agent token issued so far for `id` by giving it a new token generation
    /// (`revoke_tokens.lua`), which it returns; nothing else about the agent changes.
    pub async fn revoke_tokens(&self, id: &str) -> Result<String> {
        check_name("agent id", id)?;
        let generation = new_token_generation();
        let r = self
            .run_list(
                "revoke_tokens",
                &self.scripts.revoke_tokens,
                &[id, &generation],
            )
            .await?;
        match r.tag() {
            "ok" => Ok(generation),
            "unknown" => Err(StoreError::UnknownAgent(id.to_string())),
            _ => Err(r.unexpected()),
        }
    }

    /// Recompute every queue's agent counters from the agent hashes (`recount_agents.lua`,
    /// O(agents)). With `fix` the counters that were off are rewritten; either way the ones
    /// that were off are returned (empty when the scripts kept them in step).
    pub async fn recount_agents(&self, fix: bool) -> Result<Vec<CounterDrift>> {
        let mode = if fix { "fix" } else { "check" };
        let r = self
            .run_list("recount_agents", &self.scripts.recount_agents, &[mode])
            .await?;
        if r.v.len() % 4 != 0 {
            return Err(r.unexpected());
        }
        r.v.chunks(4)
            .map(|c| {
                Ok(CounterDrift {
                    queue: c[0].clone(),
                    state: c[1].clone(),
                    stored: c[2].parse().map_err(|_| r.unexpected())?,
                    counted: c[3].parse().map_err(|_| r.unexpected())?,
                })
            })
            .collect()
    }

    /// Override the share of callers callq routes for every server of the centre, or with
    /// None go back to the configured share (`set_rollout.lua`). Returns the override before.
    pub async fn set_rollout_share(&self, share_pct: Option<u8>, by: &str) -> Result<Option<u8>> {
        let share = match share_pct {
            Some(p) if p > 100 => {
                return Err(StoreError::Invalid {
                    what: "rollout share",
                    value: p.to_string(),
                    why: "a percentage: 0 to 100",
                })
            }
            Some(p) => p.to_string(),
            None => String::new(),
        };
        let by: String = by.chars().take(64).collect();
        let r = self
            .run_list("set_rollout", &self.scripts.set_rollout, &[&share, &by])
            .await?;
        match r.tag() {
            "ok" => Ok(r.field(1).parse().ok()),
            _ => Err(r.unexpected()),
        }
    }

    /// The run-time override of the rollout share, if an admin set one.
    pub async fn rollout_share(&self) -> Result<Option<u8>> {
        Ok(self.switches().await?.share_pct)
    }

    /// Turn feature `name` on or off for every server and worker of the centre, or with None
    /// go back to the configured setting (`set_feature.lua`). Returns the override before.
    /// The caller checks that `name` is a feature.
    pub async fn set_feature(
        &self,
        name: &str,
        on: Option<bool>,
        by: &str,
    ) -> Result<Option<bool>> {
        check_name("feature", name)?;
        let value = match on {
            Some(true) => "1",
            Some(false) => "0",
            None => "",
        };
        let by: String = by.chars().take(64).collect();
        let r = self
            .run_list(
                "set_feature",
                &self.scripts.set_feature,
                &[name, value, &by],
            )
            .await?;
        match r.tag() {
            "ok" => Ok(parse_switch(r.field(1))),
            _ => Err(r.unexpected()),
        }
    }

    /// Every run-time override an admin set (the switches hash, one read).
    pub async fn switches(&self) -> Result<Switches> {
        let mut c = self.conn().await?;
        let all: Vec<(String, String)> =
            redis::AsyncCommands::hgetall(&mut c, self.key("switches")).await?;
        let mut sw = Switches::default();
        for (field, value) in all {
            if field == "share_pct" {
                sw.share_pct = value.parse().ok();
            } else if let Some(name) = field.strip_prefix("feature:") {
                if let Some(on) = parse_switch(&value) {
                    sw.features.push((name.to_string(), on));
                }
            }
        }
        Ok(sw)
    }

    /// Refresh an agent's heartbeat for `ttl` (`heartbeat.lua`). Returns the agent's status
    /// (presence never changes it).
    pub async fn heartbeat(
        &self,
        id: &str,
        ttl: Duration,
        device_registered: bool,
    ) -> Result<AgentStatus> {
        self.heartbeat_with_token(id, "", ttl, device_registered)
            .await
    }

    /// [`Store::heartbeat`] for an agent token of token generation `generation`, checked in
    /// the same round trip: [`StoreError::TokenRevoked`] when the agent's tokens were revoked
    /// since (`''`: not checked).
    pub async fn heartbeat_with_token(
        &self,
        id: &str,
        generation: &str,
        ttl: Duration,
        device_registered: bool,
    ) -> Result<AgentStatus> {
        check_name("agent id", id)?;
        let dev = if device_registered { "1" } else { "0" };
        let r = self
            .run_list(
                "heartbeat",
                &self.scripts.heartbeat,
                &[id, &ms(ttl), dev, generation],
            )
            .await?;
        match r.tag() {
            "ok" => r.parse(1),
            "unknown" => Err(StoreError::UnknownAgent(id.to_string())),
            "revoked" => Err(StoreError::TokenRevoked(id.to_string())),
            _ => Err(r.unexpected()),
        }
    }

    /// Ask for available, paused or offline (`set_agent_status.lua`). While on a call,
    /// paused/offline is deferred.
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
                "set_agent_status",
                &self.scripts.set_agent_status,
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

    /// A call enters a queue (`enqueue.lua`); idempotent per CallSid.
    pub async fn enqueue(&self, call: &NewCall<'_>) -> Result<Enqueued> {
        check_name("CallSid", call.call_sid)?;
        check_name("queue", call.queue)?;
        call.skills.check()?;
        let from: String = call.from.chars().take(64).collect();
        let to: String = call.to.chars().take(64).collect();
        let (arrival, waited) = match call.arrival {
            Arrival::Arriving => ("arriving", Duration::ZERO),
            Arrival::Holding { waited } => ("holding", waited),
        };
        let r = self
            .run_list(
                "enqueue",
                &self.scripts.enqueue,
                &[
                    call.call_sid,
                    call.queue,
                    &from,
                    &to,
                    &ms(call.priority_boost),
                    call.kind.as_str(),
                    arrival,
                    &ms(waited),
                    &call.skills.field(),
                ],
            )
            .await?;
        if r.tag() == "new" {
            kpi::entered(call.queue, call.kind);
        }
        match r.tag() {
            "new" | "existing" => Ok(Enqueued {
                created: r.tag() == "new",
                state: r.parse(1)?,
                rank: r.parse(2)?,
                resumed: r.field(3) == "1",
            }),
            "unknown_queue" => Err(StoreError::UnknownQueue(call.queue.to_string())),
            _ => Err(r.unexpected()),
        }
    }

    /// Twilio holds the arriving caller now: the call joins its line (`arrive.lua`).
    pub async fn arrive(&self, call_sid: &str) -> Result<Transition<()>> {
        let r = self
            .run_list("arrive", &self.scripts.arrive, &[call_sid])
            .await?;
        match r.tag() {
            "arrived" => Ok(Transition::Done(())),
            "stale" => Ok(Transition::Stale(r.state(1))),
            _ => Err(r.unexpected()),
        }
    }

    /// Take the best (call, agent) pair, reserving both under an offer lease of `lease`
    /// (`claim.lua`). `random` feeds the `random` strategy.
    pub async fn claim(&self, lease: Duration, random: u32) -> Result<Claim> {
        let mut batch = self.claim_many(lease, random, 1).await?;
        match batch.offers.pop() {
            Some(offer) => Ok(Claim::Offer(offer)),
            None => Ok(Claim::Idle {
                next_due_ms: batch.idle.flatten(),
            }),
        }
    }

    /// Up to `max` offers in one step (`claim.lua`), each decided as `claim` decides one, one
    /// after another: a worker with `max` free slots takes them in one round trip.
    pub async fn claim_many(&self, lease: Duration, random: u32, max: usize) -> Result<ClaimBatch> {
        let r = self
            .run_list(
                "claim",
                &self.scripts.claim,
                &[&ms(lease), &random.to_string(), &max.max(1).to_string()],
            )
            .await?;
        if r.tag() != "batch" {
            return Err(r.unexpected());
        }
        let idle = match r.field(1) {
            "more" => None,
            due => Some(due.parse().ok()),
        };
        let mut offers = Vec::new();
        let mut at = 2;
        while at < r.v.len() {
            let n: usize = r.parse(at)?;
            let end = at + 1 + n;
            let Some(one) = r.v.get(at + 1..end) else {
                return Err(r.unexpected());
            };
            offers.push(parse_offer(one).ok_or_else(|| r.unexpected())?);
            at = end;
        }
        Ok(ClaimBatch { offers, idle })
    }

    /// The offer is ringing (or, after a check, still ringing or still talking): its next
    /// deadline moves to `lease` from now (`extend_offer.lua`); None takes the queue's own
    /// (its ring timeout and 30 s while offered, its `check_after` once connected). `leg_sid`
    /// records the Twilio call ringing the agent when known.
    pub async fn extend_offer(
        &self,
        offer: &OfferRef,
        lease: Option<Duration>,
        leg_sid: Option<&str>,
    ) -> Result<Transition<()>> {
        let attempt = offer.attempt.to_string();
        let lease = lease.map(ms).unwrap_or_default();
        let r = self
            .run_list(
                "extend_offer",
                &self.scripts.extend_offer,
                &[
                    &offer.call_sid,
                    &offer.agent_id,
                    &attempt,
                    &lease,
                    leg_sid.unwrap_or(""),
                ],
            )
            .await?;
        match r.tag() {
            "ok" => Ok(Transition::Done(())),
            "stale" => Ok(Transition::Stale(r.state(1))),
            _ => Err(r.unexpected()),
        }
    }

    /// What became of `offer` (`offer_result.lua`). `detail` is the agent leg's CallSid for
    /// `Answered` when known, the reason for `Refused`, else "".
    /// For a `ring_all` offer this is the whole offer's result (its `<Dial>` ended, or the
    /// worker's, or a check's word): the call goes back and every agent still ringing is
    /// released; one agent's own leg is [`Store::leg_result`].
    pub async fn offer_result(
        &self,
        offer: &OfferRef,
        outcome: OfferOutcome,
        detail: &str,
    ) -> Result<OfferResult> {
        self.offer_result_scoped(offer, outcome, detail, "").await
    }

    /// What became of agent `offer.agent_id`'s own leg of `offer` (its status callback):
    /// as [`Store::offer_result`] for an offer to one agent; for a `ring_all` offer an
    /// unanswered leg releases that agent alone while others still ring
    /// ([`OfferResult::Released`]), and the last one's ends the offer.
    pub async fn leg_result(
        &self,
        offer: &OfferRef,
        outcome: OfferOutcome,
        detail: &str,
    ) -> Result<OfferResult> {
        self.offer_result_scoped(offer, outcome, detail, "leg")
            .await
    }

    async fn offer_result_scoped(
        &self,
        offer: &OfferRef,
        outcome: OfferOutcome,
        detail: &str,
        scope: &str,
    ) -> Result<OfferResult> {
        let attempt = offer.attempt.to_string();
        let r = self
            .run_list(
                "offer_result",
                &self.scripts.offer_result,
                &[
                    &offer.call_sid,
                    &offer.agent_id,
                    &attempt,
                    outcome.as_str(),
                    detail,
                    scope,
                ],
            )
            .await?;
        match r.tag() {
            "connected" => {
                let (queue, kind) = (r.field(1), r.field(2));
                kpi::offer_result(queue, outcome.as_str());
                let waited = Duration::from_millis(r.field(3).parse().unwrap_or(0));
                kpi::answered(queue, kind, offer.attempt, waited);
                Ok(OfferResult::Connected)
            }
            "requeued" => {
                kpi::offer_result(r.field(2), r.field(3));
                Ok(OfferResult::Requeued(
                    r.field(1).parse().unwrap_or(AgentStatus::Offline),
                ))
            }
            "missed" => {
                kpi::offer_result(r.field(2), r.field(3));
                kpi::overflowed(r.field(2));
                Ok(OfferResult::Missed(
                    r.field(1).parse().unwrap_or(AgentStatus::Offline),
                ))
            }
            "released" => {
                kpi::offer_result(r.field(2), r.field(3));
                Ok(OfferResult::Released(
                    r.field(1).parse().unwrap_or(AgentStatus::Offline),
                ))
            }
            "refused" => {
                kpi::offer_result(r.field(1), outcome.as_str());
                kpi::overflowed(r.field(1));
                Ok(OfferResult::Refused)
            }
            "stale" => Ok(OfferResult::Stale(r.state(1))),
            _ => Err(r.unexpected()),
        }
    }

    /// A connected call ended (`complete.lua`). `offer` names the offer when the sender knows
    /// it (our URLs carry it); None accepts whichever is current (the caller's own call
    /// ended). A callback completes only from `EndSource::Dial` or `EndSource::Check`.
    pub async fn complete(
        &self,
        call_sid: &str,
        offer: Option<&OfferRef>,
        source: EndSource,
    ) -> Result<Completion> {
        let (agent, attempt) = match offer {
            Some(o) => (o.agent_id.as_str(), o.attempt.to_string()),
            None => ("", String::new()),
        };
        let r = self
            .run_list(
                "complete",
                &self.scripts.complete,
                &[call_sid, agent, &attempt, source.as_str()],
            )
            .await?;
        match r.tag() {
            "completed" => {
                kpi::completed(r.field(2), r.field(3));
                Ok(Completion::Completed(r.field(1).to_string()))
            }
            "check" => Ok(Completion::Check),
            "stale" => Ok(Completion::Stale(r.state(1))),
            _ => Err(r.unexpected()),
        }
    }

    /// The caller left before being connected (`abandon.lua`); returns the state the call was
    /// in. `reason` is `hangup` when Twilio said the caller hung up.
    pub async fn abandon(&self, call_sid: &str, reason: &str) -> Result<Transition<CallState>> {
        let r = self
            .run_list("abandon", &self.scripts.abandon, &[call_sid, reason])
            .await?;
        match r.tag() {
            "abandoned" => {
                kpi::abandoned(r.field(2));
                Ok(Transition::Done(r.parse(1)?))
            }
            "stale" => Ok(Transition::Stale(r.state(1))),
            _ => Err(r.unexpected()),
        }
    }

    /// A waiting caller asked to be called back at `number`; the call keeps its rank
    /// (`request_callback.lua`).
    pub async fn request_callback(&self, call_sid: &str, number: &str) -> Result<Transition<()>> {
        let r = self
            .run_list(
                "request_callback",
                &self.scripts.request_callback,
                &[call_sid, number],
            )
            .await?;
        match r.tag() {
            "callback" => {
                // a queue is named only when the request was taken now, not on a retried webhook
                if !r.field(1).is_empty() {
                    kpi::callback_requested(r.field(1));
                }
                Ok(Transition::Done(()))
            }
            "stale" => Ok(Transition::Stale(r.state(1))),
            _ => Err(r.unexpected()),
        }
    }

    /// The customer leg of callback `offer` did not connect (`callback_result.lua`): retry
    /// later or, retries spent or `Refused`, `callback_failed`. `still_playing` is how long
    /// the agent's own leg goes on (the words it is told before it ends): the agent is not
    /// offered another call before that.
    pub async fn callback_result(
        &self,
        offer: &OfferRef,
        outcome: OfferOutcome,
        reason: &str,
        still_playing: Duration,
    ) -> Result<CallbackRetry> {
        if outcome == OfferOutcome::Answered {
            return Err(StoreError::Invalid {
                what: "callback outcome",
                value: outcome.to_string(),
                why: "an answered customer completes the call",
            });
        }
        let attempt = offer.attempt.to_string();
        let reason: String = reason.chars().take(64).collect();
        let r = self
            .run_list(
                "callback_result",
                &self.scripts.callback_result,
                &[
                    &offer.call_sid,
                    &offer.agent_id,
                    &attempt,
                    outcome.as_str(),
                    &reason,
                    &ms(still_playing),
                ],
            )
            .await?;
        match r.tag() {
            "retry" => {
                kpi::callback_missed(r.field(2), true);
                Ok(CallbackRetry::Retry {
                    due_ms: r.parse(1)?,
                })
            }
            "failed" => {
                kpi::callback_missed(r.field(1), false);
                Ok(CallbackRetry::Failed)
            }
            "stale" => Ok(CallbackRetry::Stale(r.state(1))),
            _ => Err(r.unexpected()),
        }
    }

    /// A waiting caller leaves for the action `to` by `rule`: the queue's max wait, or nobody
    /// of the queue logged in (`overflow.lua`).
    pub async fn overflow(
        &self,
        call_sid: &str,
        to: &str,
        rule: OverflowRule,
    ) -> Result<Transition<()>> {
        let r = self
            .run_list(
                "overflow",
                &self.scripts.overflow,
                &[call_sid, to, rule.as_str()],
            )
            .await?;
        match r.tag() {
            "overflowed" => {
                kpi::overflowed(r.field(1));
                Ok(Transition::Done(()))
            }
            "stale" => Ok(Transition::Stale(r.state(1))),
            _ => Err(r.unexpected()),
        }
    }

    /// A waiting call moves to queue `to`, keeping its rank; returns the queue it left
    /// (`transfer.lua`).
    pub async fn transfer(&self, call_sid: &str, to: &str) -> Result<Transition<String>> {
        check_name("queue", to)?;
        let r = self
            .run_list("transfer", &self.scripts.transfer, &[call_sid, to])
            .await?;
        match r.tag() {
            "transferred" => Ok(Transition::Done(r.field(1).to_string())),
            "stale" => Ok(Transition::Stale(r.state(1))),
            "unknown_queue" => Err(StoreError::UnknownQueue(to.to_string())),
            _ => Err(r.unexpected()),
        }
    }

    /// The agent on a connected call sends the caller to `queue`, or to agent `to_agent` (in
    /// `queue`): the call waits again and the agent goes to wrap-up
    /// (`transfer_connected.lua`).
    pub async fn transfer_connected(
        &self,
        call_sid: &str,
        agent_id: &str,
        queue: &str,
        to_agent: Option<&str>,
    ) -> Result<HandOver> {
        check_name("queue", queue)?;
        if let Some(to) = to_agent {
            check_name("agent id", to)?;
        }
        let r = self
            .run_list(
                "transfer_connected",
                &self.scripts.transfer_connected,
                &[call_sid, agent_id, queue, to_agent.unwrap_or("")],
            )
            .await?;
        match r.tag() {
            "transferred" => Ok(HandOver::Transferred {
                from_queue: r.field(1).to_string(),
            }),
            "stale" => Ok(HandOver::Stale(r.state(1))),
            "not_yours" => Ok(HandOver::NotYours),
            "unknown_agent" => Ok(HandOver::UnknownAgent),
            "unknown_queue" => Err(StoreError::UnknownQueue(queue.to_string())),
            _ => Err(r.unexpected()),
        }
    }

    /// After Redis lost the centre: a call still in progress at Twilio that the archive says
    /// `call.agent_id` answered is connected to that agent again (`restore_connected.lua`),
    /// so its end completes it as usual and the agent is not offered another call meanwhile.
    pub async fn restore_connected(&self, call: &ConnectedCall<'_>) -> Result<RestoredCall> {
        check_name("CallSid", call.call_sid)?;
        check_name("queue", call.queue)?;
        check_name("agent id", call.agent_id)?;
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).to_string();
        let r = self
            .run_list(
                "restore_connected",
                &self.scripts.restore_connected,
                &[
                    call.call_sid,
                    call.queue,
                    call.agent_id,
                    &call.attempt.to_string(),
                    call.from,
                    call.to,
                    call.kind.as_str(),
                    &ms(call.waited),
                    &ms(call.talking),
                ],
            )
            .await?;
        match r.tag() {
            "restored" => Ok(RestoredCall::Restored),
            "known" => Ok(RestoredCall::Known(r.state(1))),
            "unknown_agent" => Ok(RestoredCall::UnknownAgent),
            "unknown_queue" => Ok(RestoredCall::UnknownQueue),
            "agent_full" => Ok(RestoredCall::AgentFull),
            _ => Err(r.unexpected()),
        }
    }

    /// A caller held as abandoned (not by hanging up) asked for the wait document: back in
    /// line at the original rank (`reenter.lua`).
    pub async fn reenter(&self, call_sid: &str) -> Result<Transition<()>> {
        let r = self
            .run_list("reenter", &self.scripts.reenter, &[call_sid])
            .await?;
        match r.tag() {
            "reentered" => Ok(Transition::Done(())),
            "stale" => Ok(Transition::Stale(r.state(1))),
            _ => Err(r.unexpected()),
        }
    }

    /// An operator ends a call callq still holds open, releasing its agent (`end_call.lua`).
    /// Returns the state the call was in.
    pub async fn end_call(&self, call_sid: &str, who: &str) -> Result<Transition<CallState>> {
        check_name("CallSid", call_sid)?;
        let who: String = who.chars().take(64).collect();
        let r = self
            .run_list("end_call", &self.scripts.end_call, &[call_sid, &who])
            .await?;
        match r.tag() {
            "ended" => Ok(Transition::Done(r.parse(1)?)),
            "stale" => Ok(Transition::Stale(r.state(1))),
            _ => Err(r.unexpected()),
        }
    }

    /// Twilio finished recording the agent leg of `call_sid`: keep the recording with the call
    /// (`record.lua`). The same recording again, or a call callq has no record of, changes
    /// nothing.
    pub async fn record(&self, call_sid: &str, recording: &Recording) -> Result<Recorded> {
        check_name("CallSid", call_sid)?;
        check_name("RecordingSid", &recording.sid)?;
        let r = self
            .run_list(
                "record",
                &self.scripts.record,
                &[
                    call_sid,
                    &recording.sid,
                    &recording.url,
                    &recording.duration_s.to_string(),
                ],
            )
            .await?;
        match r.tag() {
            "recorded" => Ok(Recorded::Kept),
            "duplicate" => Ok(Recorded::Duplicate),
            "unknown" => Ok(Recorded::UnknownCall),
            _ => Err(r.unexpected()),
        }
    }

    /// Take at most `limit` calls that need Twilio's word (offers past their lease, connected
    /// calls due a check), each held for `lease` (`take_checks.lua`).
    pub async fn take_checks(&self, limit: u32, lease: Duration) -> Result<Vec<Check>> {
        let rows: Vec<Vec<String>> = self
            .run(
                "take_checks",
                &self.scripts.take_checks,
                &[&limit.to_string(), &ms(lease)],
            )
            .await?;
        rows.into_iter()
            .map(|row| {
                let r = Reply {
                    script: "take_checks",
                    v: row,
                };
                if r.v.len() < 10 || !r.v.len().is_multiple_of(2) {
                    return Err(r.unexpected());
                }
                Ok(Check {
                    offer: OfferRef {
                        call_sid: r.field(0).to_string(),
                        agent_id: r.field(2).to_string(),
                        attempt: r.parse(3)?,
                    },
                    state: r.parse(1)?,
                    kind: r.parse(4)?,
                    phase: r.field(5).to_string(),
                    leg_sid: Some(r.field(6).to_string()).filter(|s| !s.is_empty()),
                    identity: r.field(7).to_string(),
                    since_ms: r.field(8).parse().ok(),
                    checks: r.parse(9)?,
                    ringing: r.v[10..]
                        .chunks(2)
                        .map(|p| (p[0].clone(), p[1].clone()))
                        .collect(),
                })
            })
            .collect()
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
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Take dead agents' presence, end due wrap-ups, let overdue arrivals and due callback
    /// retries into line, at most `limit` of each (`reap.lua`).
    pub async fn reap(&self, limit: u32) -> Result<Reaped> {
        let r: Vec<i64> = self
            .run("reap", &self.scripts.reap, &[&limit.to_string()])
            .await?;
        let n = |v: i64| u32::try_from(v).unwrap_or(0);
        match r.as_slice() {
            [a, b, c, d] => Ok(Reaped {
                agents_lost: n(*a),
                wrapups_ended: n(*b),
                arrivals: n(*c),
                retries: n(*d),
            }),
            _ => Err(StoreError::Reply {
                script: "reap",
                reply: r.iter().map(|v| v.to_string()).collect(),
            }),
        }
    }
}

/// How [`Store::upsert_agent`] treats an agent that exists (or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertMode {
    /// Create or update.
    Upsert,
    /// Only create; an existing agent is refused.
    Create,
    /// Only update; an unknown agent is refused.
    Update,
}

impl UpsertMode {
    fn as_arg(self) -> &'static str {
        match self {
            UpsertMode::Upsert => "",
            UpsertMode::Create => "create",
            UpsertMode::Update => "update",
        }
    }
}

/// A stored switch: '1' on, '0' off; anything else is no override.
fn parse_switch(v: &str) -> Option<bool> {
    match v {
        "1" => Some(true),
        "0" => Some(false),
        _ => None,
    }
}

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

/// One offer of a claim's reply: {'offer', CallSid, agent, identity, queue, attempt,
/// ring_timeout_ms, kind, from, to, waited_ms, record, [agent, identity]...}.
fn parse_offer(v: &[String]) -> Option<Offer> {
    if v.len() < 12 || !v.len().is_multiple_of(2) || v[0] != "offer" {
        return None;
    }
    Some(Offer {
        call_sid: v[1].clone(),
        agent_id: v[2].clone(),
        identity: v[3].clone(),
        queue: v[4].clone(),
        attempt: v[5].parse().ok()?,
        ring_timeout: Duration::from_millis(v[6].parse().ok()?),
        kind: v[7].parse().ok()?,
        from: v[8].clone(),
        to: v[9].clone(),
        waited: Duration::from_millis(v[10].parse().ok()?),
        // a queue configured before recording existed reads as not recording
        record: v[11].parse().unwrap_or_default(),
        also: v[12..]
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect(),
    })
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

    /// A call state named in a `stale` reply (None for 'unknown').
    fn state(&self, i: usize) -> Option<CallState> {
        self.field(i).parse().ok()
    }

    fn unexpected(&self) -> StoreError {
        StoreError::Reply {
            script: self.script,
            reply: self.v.clone(),
        }
    }
}

/// A fresh agent token generation: 16 random letters and digits (about 95 bits), so a
/// re-created agent never gets back a generation an old token carries.
fn new_token_generation() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
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

    #[test]
    fn token_generations_are_fresh_words() {
        let a = new_token_generation();
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, new_token_generation());
    }
}
