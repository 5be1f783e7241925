//! Simulated agents: a person with a Voice SDK device. Each one uses callq's real agent API
//! (heartbeats with `device_registered`, `PUT status available`) with its own bearer token,
//! answers a ringing device after a delay (exponential) or sometimes not at all, comes back
//! when callq paused them after missed calls, and now and then loses its device: heartbeats
//! stop, rings go unanswered, and later it registers again.
//!
//! The devices are also where double bookings are seen: a device asked to ring while it
//! already holds as many live legs as its capacity is a double booking, counted here, on the
//! phone side, without asking callq. And they know when each agent is ready for a call
//! (the end of its last leg plus wrap-up, or plus the no-answer delay after a miss), which is
//! what assignment latency is measured from.
//!
//! A second kind of agent staffs the centre's old phone system instead of callq (the legacy
//! floor of `callq bench --route legacy|split`): it never talks to callq; the old system's
//! hunt group ([`Agents::hunt`]) rings one of them, free per the phone side, once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::clock::Clock;
use super::stats::Stats;
use super::twiml_exec::{LegEnd, RingResult};
use crate::agents::types::{
    CreateAgentRequest, HeartbeatRequest, HeartbeatResponse, QueueTier, StatusRequest,
    TokenRequest, TokenResponse,
};
use crate::shutdown::Shutdown;
use crate::store::{AgentStatus, RequestedStatus};

/// How the simulated agents behave. Times in simulated seconds unless said otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentBehaviour {
    /// Mean delay before picking up a ringing device (exponential).
    pub answer_delay_s: f64,
    /// Probability that an agent lets an offer ring out.
    pub no_answer: f64,
    /// Mean time between device drops per agent (0: devices never drop).
    pub drop_every_s: f64,
    /// Mean time a dropped device stays away.
    pub down_for_s: f64,
    /// Time before an agent that callq paused (missed calls) makes itself available again.
    pub back_after_pause_s: f64,
    /// Real interval between heartbeats.
    pub heartbeat_every: Duration,
}

impl Default for AgentBehaviour {
    fn default() -> Self {
        Self {
            answer_delay_s: 3.0,
            no_answer: 0.0,
            drop_every_s: 0.0,
            down_for_s: 60.0,
            back_after_pause_s: 30.0,
            heartbeat_every: Duration::from_secs(2),
        }
    }
}

/// One agent as the admin API creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProfile {
    pub id: String,
    pub queues: Vec<(String, u32)>,
    pub capacity: u32,
    /// Skills with levels, as the admin API takes them.
    pub skills: crate::store::Skills,
}

#[derive(Debug)]
struct Device {
    registered: bool,
    /// live legs: sid → (rung at, answered)
    legs: HashMap<String, (Instant, bool)>,
    /// When the agent is ready for a call per the phone side; None: not ready (paused,
    /// offline, not yet logged in, or holding a call).
    ready_at: Option<Instant>,
    /// Handling intervals (ring start → leg end + wrap-up).
    busy: Vec<(Instant, Instant)>,
    /// Intervals the device was away.
    away: Vec<(Instant, Instant)>,
    /// callq said paused; the agent will come back.
    paused_seen: bool,
}

/// One simulated agent.
#[derive(Debug)]
pub struct SimAgent {
    pub id: String,
    pub capacity: u32,
    /// On the old phone system's floor: rung by its hunt group, unknown to callq.
    pub legacy: bool,
    token: Mutex<String>,
    device: Mutex<Device>,
}

impl SimAgent {
    fn device<T>(&self, f: impl FnOnce(&mut Device) -> T) -> T {
        let mut g = self.device.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    fn token(&self) -> String {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The floor: every simulated agent, by identity (the id, in the simulator).
pub struct Agents {
    by_identity: Mutex<HashMap<String, Arc<SimAgent>>>,
    behaviour: AgentBehaviour,
    clock: Clock,
    rng: Mutex<StdRng>,
    stats: Arc<Stats>,
    http: reqwest::Client,
    /// callq's base URL (agent and admin API).
    base: String,
    admin_token: String,
    /// Real wrap-up after a call and real delay after a miss, as callq is configured.
    wrapup: Duration,
    no_answer_delay: Duration,
    started: Instant,
    /// Serialises the hunt group's picks, so two calls never pick the same free agent.
    hunt: Mutex<()>,
}

/// What the agents did over a window, from the devices.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FloorTime {
    /// Agent-seconds (real) handling calls: ringing, talking, wrapping up.
    pub busy_s: f64,
    /// Agent-seconds (real) logged in with a device.
    pub staffed_s: f64,
}

impl Agents {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        behaviour: AgentBehaviour,
        clock: Clock,
        seed: u64,
        stats: Arc<Stats>,
        base: &str,
        admin_token: &str,
        wrapup: Duration,
        no_answer_delay: Duration,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            by_identity: Mutex::new(HashMap::new()),
            behaviour,
            clock,
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0xa6e7)),
            stats,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            base: base.trim_end_matches('/').to_string(),
            admin_token: admin_token.to_string(),
            wrapup,
            no_answer_delay,
            started: Instant::now(),
            hunt: Mutex::new(()),
        })
    }

    fn draw<T>(&self, f: impl FnOnce(&mut StdRng) -> T) -> T {
        let mut g = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    fn get(&self, identity: &str) -> Option<Arc<SimAgent>> {
        self.by_identity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(identity)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<SimAgent>> {
        let mut v: Vec<_> = self
            .by_identity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Creates the agent through the admin API (an existing one is updated) and gets its
    /// token; the agent is offline until [`Agents::run`] logs it in.
    pub async fn add(&self, p: &AgentProfile) -> anyhow::Result<()> {
        let queues: Vec<QueueTier> = p
            .queues
            .iter()
            .map(|(q, t)| QueueTier {
                queue: q.clone(),
                tier: *t,
            })
            .collect();
        let body = CreateAgentRequest {
            id: p.id.clone(),
            identity: Some(p.id.clone()),
            queues: queues.clone(),
            capacity: p.capacity,
            skills: skill_levels(&p.skills),
            order: 0,
            weight: 1,
        };
        let resp = self
            .http
            .post(format!("{}/v1/admin/agents", self.base))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::CONFLICT {
            let update = crate::agents::types::UpdateAgentRequest {
                identity: Some(p.id.clone()),
                queues,
                capacity: p.capacity,
                skills: skill_levels(&p.skills),
                order: 0,
                weight: 1,
            };
            let resp = self
                .http
                .put(format!("{}/v1/admin/agents/{}", self.base, p.id))
                .bearer_auth(&self.admin_token)
                .json(&update)
                .send()
                .await?;
            check(resp, "update agent").await?;
        } else {
            check(resp, "create agent").await?;
        }
        let resp = self
            .http
            .post(format!("{}/v1/admin/agents/{}/token", self.base, p.id))
            .bearer_auth(&self.admin_token)
            .json(&TokenRequest {
                ttl_s: Some(86_400),
            })
            .send()
            .await?;
        let token: TokenResponse = check(resp, "agent token").await?.json().await?;
        self.insert(p, false, token.token);
        Ok(())
    }

    /// An agent of the old phone system's floor: unknown to callq (no API call), rung only by
    /// [`Agents::hunt`]. Logged in by [`Agents::run`] like the others.
    pub fn add_legacy(&self, p: &AgentProfile) {
        self.insert(p, true, String::new());
    }

    fn insert(&self, p: &AgentProfile, legacy: bool, token: String) {
        let agent = Arc::new(SimAgent {
            id: p.id.clone(),
            capacity: p.capacity.max(1),
            legacy,
            token: Mutex::new(token),
            device: Mutex::new(Device {
                registered: false,
                legs: HashMap::new(),
                ready_at: None,
                busy: Vec::new(),
                away: Vec::new(),
                paused_seen: false,
            }),
        });
        self.by_identity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(p.id.clone(), agent);
    }

    /// Logs every agent in and keeps them alive (heartbeats, coming back after a pause,
    /// device drops) until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let mut tasks = tokio::task::JoinSet::new();
        for agent in self.all() {
            let me = self.clone();
            let sd = shutdown.clone();
            tasks.spawn(async move { me.staff(agent, sd).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn staff(&self, agent: Arc<SimAgent>, mut shutdown: Shutdown) {
        agent.device(|d| d.registered = true);
        self.log_in(&agent).await;
        let mut next_drop = self.next_drop();
        let mut back_at: Option<Instant> = None;
        loop {
            if shutdown.is_triggered() {
                break;
            }
            if next_drop.is_some_and(|t| Instant::now() >= t) {
                // only drop between calls: a device dropping mid-call would drop the caller
                if agent.device(|d| d.legs.is_empty()) {
                    let down = self
                        .clock
                        .exp(&mut *self.rng_guard(), self.behaviour.down_for_s);
                    let since = Instant::now();
                    agent.device(|d| {
                        d.registered = false;
                        d.ready_at = None;
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(down) => {}
                        _ = shutdown.wait() => break,
                    }
                    agent.device(|d| {
                        d.registered = true;
                        d.away.push((since, Instant::now()));
                    });
                    self.log_in(&agent).await;
                }
                next_drop = self.next_drop();
            }
            if back_at.is_some_and(|t| Instant::now() >= t) {
                back_at = None;
                self.set_available(&agent).await;
            }
            match self.heartbeat(&agent).await {
                Some(AgentStatus::Paused) | Some(AgentStatus::Offline) if back_at.is_none() => {
                    let first = agent.device(|d| {
                        let first = !d.paused_seen;
                        d.paused_seen = true;
                        d.ready_at = None;
                        first
                    });
                    if first {
                        let delay = self.clock.real(self.behaviour.back_after_pause_s.max(0.0));
                        back_at = Some(Instant::now() + delay);
                    }
                }
                _ => {}
            }
            let mut sleep = self.behaviour.heartbeat_every;
            for t in [next_drop, back_at].into_iter().flatten() {
                sleep = sleep.min(t.saturating_duration_since(Instant::now()));
            }
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = shutdown.wait() => break,
            }
        }
    }

    fn rng_guard(&self) -> std::sync::MutexGuard<'_, StdRng> {
        self.rng.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_drop(&self) -> Option<Instant> {
        (self.behaviour.drop_every_s > 0.0).then(|| {
            Instant::now()
                + self
                    .clock
                    .exp(&mut *self.rng_guard(), self.behaviour.drop_every_s)
        })
    }

    async fn log_in(&self, agent: &SimAgent) {
        self.heartbeat(agent).await;
        self.set_available(agent).await;
    }

    async fn heartbeat(&self, agent: &SimAgent) -> Option<AgentStatus> {
        if agent.legacy || !agent.device(|d| d.registered) {
            return None;
        }
        let resp = self
            .http
            .post(format!("{}/v1/agents/{}/heartbeat", self.base, agent.id))
            .bearer_auth(agent.token())
            .json(&HeartbeatRequest {
                device_registered: true,
            })
            .send()
            .await
            .ok()?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            // the token was revoked (an agent restored after Redis lost it gets a new token
            // generation): the desk is given a new one, as an admin would
            tracing::debug!(agent = %agent.id, "token refused; asking for a new one");
            self.renew_token(agent).await;
            return None;
        }
        if !resp.status().is_success() {
            tracing::debug!(agent = %agent.id, status = %resp.status(), "heartbeat refused");
            return None;
        }
        let body: HeartbeatResponse = resp.json().await.ok()?;
        Some(body.status)
    }

    /// A new token for `agent` from the admin API (kept when none is given).
    async fn renew_token(&self, agent: &SimAgent) {
        let resp = self
            .http
            .post(format!("{}/v1/admin/agents/{}/token", self.base, agent.id))
            .bearer_auth(&self.admin_token)
            .json(&TokenRequest {
                ttl_s: Some(86_400),
            })
            .send()
            .await;
        let Ok(resp) = resp else { return };
        if let Ok(t) = resp.error_for_status() {
            if let Ok(t) = t.json::<TokenResponse>().await {
                *agent.token.lock().unwrap_or_else(|p| p.into_inner()) = t.token;
            }
        }
    }

    async fn set_available(&self, agent: &SimAgent) {
        if agent.legacy {
            // the old phone system rings whoever's phone is free: logging in is having one
            agent.device(|d| {
                if d.legs.is_empty() {
                    let now = Instant::now();
                    d.ready_at = Some(d.ready_at.map_or(now, |t| t.max(now)));
                }
            });
            return;
        }
        let resp = self
            .http
            .put(format!("{}/v1/agents/{}/status", self.base, agent.id))
            .bearer_auth(agent.token())
            .json(&StatusRequest {
                status: RequestedStatus::Available,
                reason: None,
            })
            .send()
            .await;
        let ok = match resp {
            Ok(r) if r.status().is_success() => r
                .json::<crate::agents::types::StatusResponse>()
                .await
                .map(|s| s.status == AgentStatus::Available)
                .unwrap_or(false),
            _ => false,
        };
        agent.device(|d| {
            d.paused_seen = false;
            if ok && d.legs.is_empty() {
                // ready now, unless a wrap-up the phone side knows of still runs
                let now = Instant::now();
                d.ready_at = Some(d.ready_at.map_or(now, |t| t.max(now)));
            }
        });
    }

    /// Rings the device of `identity` for leg `leg_sid`: resolves when the agent answers or
    /// refuses; stays pending when it never answers (the `<Dial>` timeout ends it).
    pub async fn ring(&self, identity: &str, leg_sid: &str) -> RingResult {
        let Some(agent) = self.get(identity) else {
            return std::future::pending().await;
        };
        let now = Instant::now();
        let over_capacity = agent.device(|d| {
            if !d.registered {
                return None;
            }
            let over = d.legs.len() as u32 >= agent.capacity;
            d.legs.insert(leg_sid.to_string(), (now, false));
            d.ready_at = None;
            Some(over)
        });
        match over_capacity {
            None => return std::future::pending().await,
            Some(true) => {
                self.stats.double_bookings.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(agent = %agent.id, leg = leg_sid, "double booking: device already full");
                return RingResult::Busy;
            }
            Some(false) => self.stats.rang(now),
        }
        self.pick_up(&agent, leg_sid).await
    }

    /// The old phone system's hunt group: picks the legacy agent whose phone has been free
    /// longest (registered, no live leg, wrap-up over) and rings it for leg `leg_sid` (the
    /// device holds the leg from here on). Returns the agent and when it became free; None
    /// when every legacy phone is busy, away or wrapping up. Picks are serialised, so two
    /// calls never get the same agent.
    pub fn hunt(&self, leg_sid: &str) -> Option<(Arc<SimAgent>, Instant)> {
        let _one_at_a_time = self.hunt.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let free = self
            .all()
            .into_iter()
            .filter(|a| a.legacy)
            .filter_map(|a| {
                let since = a.device(|d| {
                    (d.registered && d.legs.is_empty())
                        .then_some(d.ready_at)
                        .flatten()
                        .filter(|t| *t <= now)
                })?;
                Some((a, since))
            })
            .min_by_key(|(a, since)| (*since, a.id.clone()));
        let (agent, since) = free?;
        agent.device(|d| {
            d.legs.insert(leg_sid.to_string(), (now, false));
            d.ready_at = None;
        });
        Some((agent, since))
    }

    /// A device already holding the leg `leg_sid` rings: the agent picks up after the answer
    /// delay, or lets it ring (pending: the caller side's timeout ends it).
    pub async fn pick_up(&self, agent: &SimAgent, leg_sid: &str) -> RingResult {
        let (rings_out, delay) = self.draw(|rng| {
            let out = rng.random::<f64>() < self.behaviour.no_answer;
            (out, self.clock.exp(rng, self.behaviour.answer_delay_s))
        });
        if rings_out {
            return std::future::pending().await;
        }
        tokio::time::sleep(delay).await;
        let answered = agent.device(|d| match d.legs.get_mut(leg_sid) {
            Some(leg) if d.registered => {
                leg.1 = true;
                true
            }
            _ => false,
        });
        if answered {
            RingResult::Answered { talk: None }
        } else {
            std::future::pending().await
        }
    }

    /// The leg is over: the device is free again (after wrap-up, or the no-answer delay).
    pub fn leg_over(&self, identity: &str, leg_sid: &str, end: LegEnd) {
        let Some(agent) = self.get(identity) else {
            return;
        };
        let now = Instant::now();
        agent.device(|d| {
            let Some((since, _)) = d.legs.remove(leg_sid) else {
                return;
            };
            let ready = match end {
                LegEnd::Completed => now + self.wrapup,
                // callq rests an agent after a miss; the old phone system does not
                LegEnd::NoAnswer if !agent.legacy => now + self.no_answer_delay,
                LegEnd::NoAnswer | LegEnd::Canceled => now,
            };
            d.busy.push((since, ready));
            if d.legs.is_empty() && d.registered && !d.paused_seen {
                d.ready_at = Some(ready);
            }
        });
    }

    /// When the agent became ready for a call, per the phone side.
    pub fn ready_at(&self, identity: &str) -> Option<Instant> {
        self.get(identity).and_then(|a| a.device(|d| d.ready_at))
    }

    /// Live legs on the floor and devices registered.
    pub fn live(&self) -> (usize, usize) {
        self.all().iter().fold((0, 0), |(legs, reg), a| {
            a.device(|d| (legs + d.legs.len(), reg + usize::from(d.registered)))
        })
    }

    /// Busy and staffed agent-seconds (real) within `[from, to]`.
    pub fn floor_time(&self, from: Instant, to: Instant) -> FloorTime {
        self.floor_time_of(from, to, |_| true)
    }

    /// The same, over the agents `which` selects (one floor).
    pub fn floor_time_of(
        &self,
        from: Instant,
        to: Instant,
        which: impl Fn(&SimAgent) -> bool,
    ) -> FloorTime {
        let clip = |(a, b): (Instant, Instant)| {
            let (a, b) = (a.max(from), b.min(to));
            b.saturating_duration_since(a).as_secs_f64()
        };
        let window = to.saturating_duration_since(from).as_secs_f64();
        let mut t = FloorTime::default();
        for a in self.all().into_iter().filter(|a| which(a)) {
            a.device(|d| {
                t.busy_s += d.busy.iter().copied().map(clip).sum::<f64>();
                let away: f64 = d.away.iter().copied().map(clip).sum();
                t.staffed_s += (window - away).max(0.0);
            });
        }
        t
    }

    pub fn started(&self) -> Instant {
        self.started
    }
}

async fn check(resp: reqwest::Response, what: &str) -> anyhow::Result<reqwest::Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    anyhow::bail!(
        "{what}: HTTP {status}: {}",
        body.chars().take(300).collect::<String>()
    )
}

/// Skills as the admin API's body lists them.
fn skill_levels(skills: &crate::store::Skills) -> Vec<crate::agents::types::SkillLevel> {
    skills
        .0
        .iter()
        .map(|(skill, level)| crate::agents::types::SkillLevel {
            skill: skill.clone(),
            level: *level,
        })
        .collect()
}
