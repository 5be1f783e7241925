//! `callq worker`: the process that turns a claimed (call, agent) pair into a ringing agent.
//! Any number of replicas run side by side against one Redis; they share nothing but Redis.
//!
//! The loop, one per worker:
//!
//! 1. Wait for work: a dedicated connection blocks on `BLPOP callq:{C}:wake` (every script that
//!    makes work pushes a capped marker: the time it falls due). A marker for later (a
//!    wrap-up's end) only moves the worker's timer; a marker for now ends the wait. So does
//!    the time the last idle `claim` said something falls due (a wrap-up ending, an arrival's
//!    grace, a callback retry), so a wrap-up that ends at T gets its next call at T, not at
//!    the next unrelated event; and `wake_timeout` at the latest (a safety net, not what sets
//!    latency). See [`wake`] and [`after_wake`].
//! 2. `claim` until it says idle (each claim first promotes due wrap-ups, arrivals and
//!    callback retries; nothing else stands between a wake-up and the offers, not even a
//!    reap). Each offer's REST work runs as its own task, at most `concurrency` at once: a
//!    worker with no free slot claims nothing and hands the wake-up to another worker. One
//!    claim makes as many offers as the worker has free slots, up to `claim_batch`, in one
//!    round trip (when many agents free up at once, or a burst of calls arrives). See
//!    [`offer`].
//! 3. While Twilio looks down (the circuit breaker is open) the worker claims nothing: calls
//!    wait in Redis at their rank instead of being offered to agents who cannot be rung. When
//!    the breaker's cool-down ends, one offer at a time probes Twilio until it closes.
//!
//! A separate task reaps on a timer (see [`reaper`]): lapsed heartbeats (the agents were
//! already unofferable: a claim checks each agent's heartbeat key before offering), and the
//! same promotions as a claim, in case no worker claims; then it asks Twilio about offers
//! whose lease passed (expired offer leases are the check rounds' work, see [`checks`]).
//!
//! Shutdown (SIGTERM/SIGINT): stop claiming, let in-flight REST calls finish within
//! `shutdown_grace`, return `Ok`. Whatever a worker held when it died (even `kill -9`) comes
//! back through the check rounds once its offer lease passes: nothing is lost, nobody is
//! double-booked.

pub mod breaker;
pub mod checks;
pub mod health;
pub mod offer;
pub mod probes;
pub mod reaper;
pub mod wake;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::CentreConfig;
use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::twilio::rest::{Backoff, RestConfig, TwilioRest};

use breaker::{BreakerState, CircuitBreaker};
use checks::Checker;
use health::TwilioHealth;
use offer::Ringer;
use wake::{RedisClock, WakeListener, Woke};

/// Everything a worker is tuned by. The command line fills it (refusing values a worker cannot
/// run with); the lab, tests and benches set fields directly.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Time a claimed offer has to reach Twilio before `reap` returns it to line.
    pub offer_lease: Duration,
    /// REST retries stop this long before the lease ends, so the result can still be written.
    pub lease_margin: Duration,
    /// Added to the ring timeout once Twilio accepted the redirect, for its callbacks.
    pub ring_grace: Duration,
    /// Longest a worker blocks for a wake marker.
    pub wake_timeout: Duration,
    /// Offers rung at once.
    pub concurrency: usize,
    /// Offers one claim makes at most (one round trip to Redis), when slots are free for them.
    pub claim_batch: usize,
    /// Bound on the graceful shutdown.
    pub shutdown_grace: Duration,
    /// How often the reaper runs on its own.
    pub reap_interval: Duration,
    /// Public base URL of `callq serve` (webhook URLs in the TwiML), without trailing slash.
    pub public_url: String,
    /// Backoff between REST retries (never past the lease).
    pub backoff: Backoff,
    /// Consecutive failed requests (5xx, 429, timeouts) that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long the open breaker keeps the worker from claiming before one probe.
    pub breaker_cool_down: Duration,
    /// Longest pause in claiming after Twilio refused requests outright (e.g. bad credentials).
    pub max_reject_pause: Duration,
}

impl Settings {
    /// Defaults for everything the command line does not set.
    pub fn new(public_url: &str) -> Self {
        Self {
            offer_lease: Duration::from_secs(10),
            lease_margin: Duration::from_secs(1),
            ring_grace: Duration::from_secs(30),
            wake_timeout: Duration::from_secs(1),
            concurrency: 64,
            claim_batch: 8,
            shutdown_grace: Duration::from_secs(10),
            reap_interval: Duration::from_secs(1),
            public_url: public_url.trim().trim_end_matches('/').to_string(),
            backoff: Backoff::default(),
            breaker_threshold: 5,
            breaker_cool_down: Duration::from_secs(5),
            max_reject_pause: Duration::from_secs(30),
        }
    }

    /// The same with `offer_lease`, and the lease margin that goes with it.
    pub fn with_offer_lease(mut self, offer_lease: Duration) -> Self {
        self.offer_lease = offer_lease;
        // a tenth of the lease, at most a second: room to write the result before it ends
        self.lease_margin = (offer_lease / 10).min(Duration::from_secs(1));
        self
    }

    /// The REST deadline of an offer claimed at `claimed_at`.
    fn rest_deadline(&self, claimed_at: Instant) -> Instant {
        claimed_at + self.offer_lease.saturating_sub(self.lease_margin)
    }
}

/// The Twilio account a worker calls, and where.
#[derive(Debug, Clone)]
pub struct TwilioAccount {
    /// Base URL of Twilio's REST API (a simulator's in tests and the demo).
    pub api_base: String,
    pub account_sid: String,
    /// Authenticates REST calls unless an API key is given.
    pub auth_token: String,
    /// API key SID and secret for REST calls (instead of the account SID and auth token).
    pub api_key: Option<String>,
    pub api_secret: Option<String>,
}

/// Everything `callq worker` starts from, as plain values.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Redis holding the routing state.
    pub redis_url: String,
    /// Redis connections in the pool.
    pub redis_pool: usize,
    pub twilio: TwilioAccount,
    pub settings: Settings,
    /// Where the worker answers `/healthz`, `/readyz` and `/metrics` (None: nowhere, as in
    /// `callq all`, whose server answers them).
    pub listen: Option<std::net::SocketAddr>,
}

/// The Twilio REST client the worker uses: API key and secret when given, else account SID
/// and auth token; requests time out within the offer lease. [`Worker::new`] puts its circuit
/// breaker in front of it.
pub fn rest_client(account: &TwilioAccount, settings: &Settings) -> anyhow::Result<TwilioRest> {
    let (username, password) = match (&account.api_key, &account.api_secret) {
        (Some(key), Some(secret)) => (key.clone(), secret.clone()),
        (Some(_), None) => anyhow::bail!("TWILIO_API_KEY is set but TWILIO_API_SECRET is not"),
        (None, _) => {
            anyhow::ensure!(
                !account.auth_token.trim().is_empty(),
                "TWILIO_AUTH_TOKEN (--auth-token) is empty; set it, or TWILIO_API_KEY and \
                 TWILIO_API_SECRET"
            );
            (account.account_sid.clone(), account.auth_token.clone())
        }
    };
    let cfg = RestConfig {
        api_base: account.api_base.clone(),
        account_sid: account.account_sid.clone(),
        username,
        password,
        request_timeout: Duration::from_secs(5).min(settings.offer_lease),
    };
    TwilioRest::new(cfg)
        .context("Twilio REST settings (TWILIO_API_BASE, TWILIO_ACCOUNT_SID, credentials)")
}

/// `callq worker`: connect, then work until `shutdown`.
pub async fn run(
    config: &WorkerConfig,
    centre: &CentreConfig,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    run_centres(config, std::slice::from_ref(&centre.centre), shutdown).await
}

/// Serve several centres from one process: a wake loop per centre, each with its own Redis
/// pool (on Redis Cluster, its own slot's master), sharing the Twilio client and the probes.
/// `/readyz` is ready when every centre's Redis answers and Twilio accepts the worker;
/// `/metrics` carries the queue gauges only when the worker serves one centre (with several,
/// the centres' own `callq serve` processes carry them), and the worker's counters always.
pub async fn run_centres(
    config: &WorkerConfig,
    centres: &[String],
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    anyhow::ensure!(!centres.is_empty(), "no centre to serve");
    let settings = config.settings.clone();
    let rest = rest_client(&config.twilio, &settings)?;
    let mut workers = Vec::with_capacity(centres.len());
    for centre in centres {
        let store = Store::connect(&config.redis_url, centre, config.redis_pool)
            .with_context(|| format!("REDIS_URL (centre {centre})"))?;
        tracing::info!(
            centre = %centre,
            concurrency = settings.concurrency,
            offer_lease_ms = settings.offer_lease.as_millis() as u64,
            "callq worker ready"
        );
        workers.push((
            store.clone(),
            Worker::new(store, rest.clone(), settings.clone()),
        ));
    }
    if let Some(addr) = config.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (CALLQ_WORKER_LISTEN)"))?;
        let stores: Vec<Store> = workers.iter().map(|(s, _)| s.clone()).collect();
        let healths = workers.iter().map(|(_, w)| w.health()).collect();
        let sd = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = probes::serve(listener, stores, healths, sd).await {
                tracing::error!(error = %e, "worker probes stopped");
            }
        });
        tracing::info!(listen = %addr, "worker probes and metrics listening");
    }
    let mut runs = tokio::task::JoinSet::new();
    for (_, worker) in workers {
        runs.spawn(worker.run(shutdown.clone()));
    }
    let mut result = Ok(());
    while let Some(done) = runs.join_next().await {
        let ended = done.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = ended {
            tracing::error!(error = format!("{e:#}"), "a centre's worker stopped");
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    result
}

/// One worker: a wake loop over one centre.
pub struct Worker {
    store: Store,
    rest: TwilioRest,
    /// Gates every request of `rest`; while it is open the worker claims nothing.
    breaker: Arc<CircuitBreaker>,
    /// Whether Twilio refuses this worker (bad configuration): its `/readyz`.
    health: Arc<TwilioHealth>,
    settings: Arc<Settings>,
}

/// Why the claim loop stopped.
enum Stop {
    /// `claim` found nothing; it said when something falls due (Redis clock, unix ms).
    Idle(Option<i64>),
    /// Not claiming for now (Twilio down or refusing); look again at this time.
    Paused(Instant),
    Shutdown,
}

impl Worker {
    /// Puts a circuit breaker of its own (`breaker_threshold`, `breaker_cool_down` of
    /// `settings`) in front of `rest`, in place of any gate `rest` had: that is how the worker
    /// tells that Twilio is down.
    pub fn new(store: Store, rest: TwilioRest, settings: Settings) -> Self {
        let breaker = Arc::new(CircuitBreaker::new(
            settings.breaker_threshold,
            settings.breaker_cool_down,
        ));
        Self {
            store,
            rest: rest.with_gate(breaker.clone()),
            breaker,
            health: Arc::default(),
            settings: Arc::new(settings),
        }
    }

    /// What this worker knows of Twilio's view of it, for `/readyz`.
    pub fn health(&self) -> Arc<TwilioHealth> {
        self.health.clone()
    }

    /// Work until `shutdown` trips, then let in-flight REST calls finish (within
    /// `shutdown_grace`) and return. Redis or Twilio failing never ends the loop: it logs,
    /// backs off and tries again.
    pub async fn run(self, mut shutdown: Shutdown) -> anyhow::Result<()> {
        let s = self.settings.clone();
        let clock = RedisClock::default();
        if let Err(e) = clock.measure(&self.store).await {
            tracing::warn!(error = %e, "cannot read Redis' clock yet; assuming it matches ours");
        }
        let checker = Arc::new(Checker::new(
            self.store.clone(),
            self.rest.clone(),
            s.ring_grace,
            self.health.clone(),
        ));
        let reaper = tokio::spawn(reaper::run(
            self.store.clone(),
            checker,
            s.reap_interval,
            clock.clone(),
            shutdown.clone(),
        ));
        let ringer = Arc::new(Ringer::new(
            self.store.clone(),
            self.rest.clone(),
            s.clone(),
            self.health.clone(),
        ));
        let mut listener = WakeListener::new(self.store.clone());
        let slots = Arc::new(Semaphore::new(s.concurrency));
        let mut tasks = JoinSet::new();
        let mut stale_due = StaleDue::default();
        let mut redis_backoff = RedisBackoff::default();

        // a round claims until idle, then waits; a marker for later only moves the timer,
        // and the round after it waits again without claiming
        let mut claim = true;
        let mut next_due: Option<i64> = None;
        loop {
            if shutdown.is_triggered() {
                break;
            }
            if claim {
                while let Some(done) = tasks.try_join_next() {
                    log_task_end(done);
                }
                let stop = self
                    .claim_until_idle(&ringer, &slots, &mut tasks, &mut shutdown)
                    .await;
                match stop {
                    Ok(Stop::Shutdown) => break,
                    Ok(Stop::Paused(until)) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(until) => {}
                            _ = shutdown.wait() => break,
                        }
                        continue;
                    }
                    Ok(Stop::Idle(due)) => {
                        redis_backoff.reset();
                        next_due = stale_due.filter(due, clock.redis_now_ms());
                    }
                    Err(e) => {
                        let pause = redis_backoff.next();
                        tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "claim failed");
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            _ = shutdown.wait() => break,
                        }
                        continue;
                    }
                }
            }
            let wait_until = next_due.map(|ms| clock.instant_at(ms));
            match listener
                .wait(s.wake_timeout, wait_until, &mut shutdown)
                .await
            {
                Ok(Woke::Shutdown) => break,
                Ok(woke) => match after_wake(woke, next_due, clock.redis_now_ms()) {
                    AfterWake::Claim => {
                        tracing::trace!(?woke, ?next_due, "awake");
                        claim = true;
                    }
                    AfterWake::WaitUntil(due) => {
                        tracing::trace!(?woke, next_due = due, "work due later");
                        next_due = Some(due);
                        claim = false;
                    }
                },
                Err(e) => {
                    let pause = redis_backoff.next();
                    tracing::warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "waiting for wake markers failed");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.wait() => break,
                    }
                    claim = true;
                }
            }
        }

        tracing::info!(
            in_flight = tasks.len(),
            "worker stopping: no more claims; finishing in-flight offers"
        );
        listener.close().await;
        let drained = tokio::time::timeout(s.shutdown_grace, async {
            while let Some(done) = tasks.join_next().await {
                log_task_end(done);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                unfinished = tasks.len(),
                grace_ms = s.shutdown_grace.as_millis() as u64,
                "shutdown grace over; unfinished offers come back when their lease passes"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        if let Err(e) = reaper.await {
            tracing::warn!(error = %e, "reaper task ended abnormally");
        }
        tracing::info!("worker stopped");
        Ok(())
    }

    /// Claim until `claim` says idle, spawning each offer's REST work; claims nothing while
    /// no slot is free, or while Twilio is down.
    async fn claim_until_idle(
        &self,
        ringer: &Arc<Ringer>,
        slots: &Arc<Semaphore>,
        tasks: &mut JoinSet<()>,
        shutdown: &mut Shutdown,
    ) -> crate::store::Result<Stop> {
        let s = &self.settings;
        let mut handed_off = false;
        loop {
            if shutdown.is_triggered() {
                return Ok(Stop::Shutdown);
            }
            if let Some(until) = ringer.rejected_until() {
                return Ok(Stop::Paused(until));
            }
            let probing = match self.breaker.state() {
                BreakerState::Closed => false,
                BreakerState::Open => {
                    let poll = (s.breaker_cool_down / 4)
                        .clamp(Duration::from_millis(20), Duration::from_millis(500));
                    return Ok(Stop::Paused(Instant::now() + poll));
                }
                BreakerState::HalfOpen => true,
            };
            let permit = if probing {
                // One offer at a time probes Twilio: wait until nothing else is in flight.
                let all = s.concurrency.min(u32::MAX as usize) as u32;
                tokio::select! {
                    all = slots.clone().acquire_many_owned(all) => drop(all),
                    _ = shutdown.wait() => return Ok(Stop::Shutdown),
                }
                match self.breaker.state() {
                    BreakerState::Closed => continue,
                    BreakerState::Open => continue,
                    BreakerState::HalfOpen => acquire(slots, shutdown).await,
                }
            } else {
                match slots.clone().try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        // Full: leave the rest to a worker with room.
                        if !handed_off {
                            handed_off = true;
                            if let Err(e) = self.store.wake().await {
                                tracing::debug!(error = %e, "could not hand the wake-up on");
                            }
                        }
                        acquire(slots, shutdown).await
                    }
                }
            };
            let Some(permit) = permit else {
                return Ok(Stop::Shutdown);
            };
            // as many more offers as there are free slots, up to the batch (one while probing)
            let mut permits = vec![permit];
            let batch = if probing { 1 } else { s.claim_batch.max(1) };
            while permits.len() < batch {
                match slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let claimed_at = Instant::now();
            let claimed = self
                .store
                .claim_many(s.offer_lease, rand::random(), permits.len())
                .await?;
            // a slot per offer; the rest are free again when `permits` drops
            for offer in claimed.offers {
                let Some(permit) = permits.pop() else {
                    break;
                };
                let span = tracing::info_span!(
                    "offer",
                    call_sid = %offer.call_sid,
                    agent = %offer.agent_id,
                    queue = %offer.queue,
                    attempt = offer.attempt,
                );
                tracing::debug!(
                    parent: &span,
                    call_sid = %offer.call_sid,
                    agent = %offer.agent_id,
                    "claimed"
                );
                let ringer = ringer.clone();
                tasks.spawn(
                    async move {
                        ringer.ring(offer, claimed_at).await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            if let Some(next_due_ms) = claimed.idle {
                return Ok(Stop::Idle(next_due_ms));
            }
        }
    }
}

async fn acquire(slots: &Arc<Semaphore>, shutdown: &mut Shutdown) -> Option<OwnedSemaphorePermit> {
    tokio::select! {
        p = slots.clone().acquire_owned() => p.ok(),
        _ = shutdown.wait() => None,
    }
}

fn log_task_end(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        if e.is_panic() {
            tracing::error!(error = %e, "offer task panicked; its lease returns the call");
        }
    }
}

/// What a worker does once a wait ends.
#[derive(Debug, PartialEq, Eq)]
enum AfterWake {
    Claim,
    /// Go on waiting, now until this time (Redis' clock, unix ms).
    WaitUntil(i64),
}

/// A marker that names a time still to come (a wrap-up's end) only moves the worker's timer
/// (to the earlier of it and `next_due`): nothing can be offered before then, so a claim now
/// would find nothing. Anything else (a marker for now, the due time, the safety net) claims.
fn after_wake(woke: Woke, next_due: Option<i64>, redis_now_ms: i64) -> AfterWake {
    match woke {
        Woke::Marker(Some(at)) if at > redis_now_ms => {
            AfterWake::WaitUntil(next_due.map_or(at, |d| d.min(at)))
        }
        _ => AfterWake::Claim,
    }
}

/// Guards the wait against a due time that stays in the past (it should not: `claim` promotes
/// what is due and reports only what is still to come, but a busy worker must not spin on a
/// stale one).
#[derive(Default)]
struct StaleDue {
    last: Option<i64>,
    repeats: u32,
}

impl StaleDue {
    fn filter(&mut self, due: Option<i64>, redis_now_ms: i64) -> Option<i64> {
        match due {
            Some(d) if d <= redis_now_ms => {
                if self.last == Some(d) {
                    self.repeats += 1;
                } else {
                    self.last = Some(d);
                    self.repeats = 1;
                }
                // passed and seen three times: nothing we do settles it; rely on the reaper
                (self.repeats < 3).then_some(d)
            }
            other => {
                self.last = None;
                self.repeats = 0;
                other
            }
        }
    }
}

/// Exponential pause while Redis fails: 50 ms doubling to 2 s.
#[derive(Default)]
struct RedisBackoff {
    failures: u32,
}

impl RedisBackoff {
    fn next(&mut self) -> Duration {
        let d = Duration::from_millis(50) * 2u32.saturating_pow(self.failures.min(6));
        self.failures += 1;
        d.min(Duration::from_secs(2))
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A pause in claiming after Twilio refused requests outright (not an outage the breaker
/// sees: 401 bad credentials, 403, 400): doubling from 1 s to `max`, cleared by a success.
#[derive(Debug)]
pub(crate) struct RejectPause {
    max: Duration,
    state: Mutex<(u32, Option<Instant>)>,
}

impl RejectPause {
    pub(crate) fn new(max: Duration) -> Self {
        Self {
            max,
            state: Mutex::new((0, None)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u32, Option<Instant>)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn until(&self) -> Option<Instant> {
        let (_, until) = *self.lock();
        until.filter(|u| *u > Instant::now())
    }

    pub(crate) fn rejected(&self) -> Duration {
        let mut st = self.lock();
        let pause = (Duration::from_secs(1) * 2u32.saturating_pow(st.0.min(16))).min(self.max);
        st.0 = st.0.saturating_add(1);
        st.1 = Some(Instant::now() + pause);
        pause
    }

    pub(crate) fn accepted(&self) {
        *self.lock() = (0, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_for_later_moves_the_timer_and_anything_else_claims() {
        let now = 10_000;
        let later = Woke::Marker(Some(now + 500));
        assert_eq!(
            after_wake(later, None, now),
            AfterWake::WaitUntil(now + 500)
        );
        assert_eq!(
            after_wake(later, Some(now + 200), now),
            AfterWake::WaitUntil(now + 200),
            "an earlier due time stands"
        );
        assert_eq!(
            after_wake(later, Some(now + 900), now),
            AfterWake::WaitUntil(now + 500),
            "the marker's time comes first"
        );
        for woke in [
            Woke::Marker(Some(now)),
            Woke::Marker(Some(now - 5)),
            Woke::Marker(None),
            Woke::Due,
            Woke::Timeout,
        ] {
            assert_eq!(
                after_wake(woke, Some(now + 900), now),
                AfterWake::Claim,
                "{woke:?}"
            );
        }
    }

    #[test]
    fn a_due_time_stuck_in_the_past_is_dropped_after_three_rounds() {
        let mut g = StaleDue::default();
        assert_eq!(g.filter(Some(2_000), 1_000), Some(2_000), "future: kept");
        assert_eq!(g.filter(Some(900), 1_000), Some(900));
        assert_eq!(g.filter(Some(900), 1_001), Some(900));
        assert_eq!(g.filter(Some(900), 1_002), None, "third time in the past");
        assert_eq!(
            g.filter(Some(950), 1_003),
            Some(950),
            "a new due time counts afresh"
        );
        assert_eq!(g.filter(None, 1_004), None);
    }

    #[test]
    fn redis_backoff_doubles_to_two_seconds() {
        let mut b = RedisBackoff::default();
        assert_eq!(b.next(), Duration::from_millis(50));
        assert_eq!(b.next(), Duration::from_millis(100));
        for _ in 0..10 {
            b.next();
        }
        assert_eq!(b.next(), Duration::from_secs(2));
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(50));
    }

    #[test]
    fn reject_pause_doubles_and_clears_on_success() {
        let p = RejectPause::new(Duration::from_secs(5));
        assert!(p.until().is_none());
        assert_eq!(p.rejected(), Duration::from_secs(1));
        assert!(p.until().is_some());
        assert_eq!(p.rejected(), Duration::from_secs(2));
        assert_eq!(p.rejected(), Duration::from_secs(4));
        assert_eq!(p.rejected(), Duration::from_secs(5), "capped");
        p.accepted();
        assert!(p.until().is_none());
        assert_eq!(p.rejected(), Duration::from_secs(1));
    }

    #[test]
    fn the_lease_margin_is_a_tenth_of_the_lease_at_most_a_second() {
        let s = Settings::new("https://callq.example.com").with_offer_lease(Duration::from_secs(5));
        assert_eq!(
            (s.offer_lease, s.lease_margin),
            (Duration::from_secs(5), Duration::from_millis(500))
        );
        let s = s.with_offer_lease(Duration::from_secs(30));
        assert_eq!(s.lease_margin, Duration::from_secs(1));
    }

    #[test]
    fn settings_trim_the_public_url() {
        assert_eq!(
            Settings::new(" https://callq.example.com/ ").public_url,
            "https://callq.example.com"
        );
    }
}
