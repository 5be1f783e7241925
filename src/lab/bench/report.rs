//! The report of a run (`callq bench`, `callq demo`): what the phone side measured, next to
//! the Erlang C prediction for the same agents, arrival rate and mean handle time.
//!
//! Units: waits (`asa_s`, `ewt_mae_s`, the service-level target) are simulated seconds, as
//! are the load's talk, wrap-up and ring times; latencies (`assign_*_ms`, `webhook_*_ms`) are
//! real milliseconds, since callq runs on real time.
//!
//! Erlang C judges callq's router, so its figures (and the service level, measured in callq's
//! line) are given for `--route callq` only; every route also reports each path's plan KPIs
//! ([`super::kpis`]).

use serde::Serialize;
use tokio::time::Instant;

use super::core::{redis_main_cpu, ScriptTime};
use super::erlang::ErlangC;
use super::kpis::{self, PathKpis};
use super::route::Route;
use crate::sim::agents::FloorTime;
use crate::sim::stats::{mean, percentile, Injected, Measured};
use crate::sim::twiml_exec::Outcome;
use crate::sim::verify::Verdict;

/// The load a run was driven with (simulated seconds).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Load {
    pub agents: u32,
    /// Calls per simulated second.
    pub rate: f64,
    pub talk_s: f64,
    pub wrapup_s: f64,
    /// Mean time agents take to pick up.
    pub answer_delay_s: f64,
    /// 0: callers never hang up.
    pub patience_s: f64,
    pub no_answer: f64,
    pub compress: f64,
    /// Real seconds during which calls arrived.
    pub duration_s: f64,
    /// Real seconds at the start excluded from waits, service level and occupancy.
    pub warmup_s: f64,
    pub sl_target_s: f64,
    pub workers: usize,
    pub seed: u64,
}

/// Everything a run reports. Figures that cannot be given (no samples, an overloaded
/// Erlang C) are `null` in JSON.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    /// Callers who asked to be called back.
    pub callbacks: u64,
    /// Of those, reached again by an agent.
    pub callbacks_completed: u64,
    pub callbacks_pending: u64,
    /// Of those, given up by callq (`callback_failed`) without the customer ever answering.
    pub callbacks_failed: u64,
    /// Callers who asked for a callback and, after leaving the queue, were put back on hold
    /// (they hang up after their patience; the callback still happens).
    pub callbacks_kept_holding: u64,
    pub voicemail: u64,
    /// Ended by callq without an agent (closed, overflow) or by a failed webhook.
    pub other: u64,
    /// Calls still waiting when the run's drain time ran out, whose callers were hung up.
    pub cut_at_end: u64,
    /// Calls whose final state is unknown or inconsistent (must be 0).
    pub lost: u64,
    /// Moments a device rang with more live legs than its capacity (must be 0).
    pub double_bookings: u64,
    /// Mean wait of answered calls, from entering the line to an agent answering.
    pub asa_s: Option<f64>,
    pub erlang_c_asa_s: Option<f64>,
    pub asa_ratio: Option<f64>,
    /// The same arrivals and handle times (as drawn in this run) replayed through an ideal
    /// router with no overhead: the ASA this very sample allowed. Given when every call was
    /// answered at its first ring (no abandonment, no misses), where it is exact.
    pub ideal_asa_s: Option<f64>,
    /// Measured ASA / ideal ASA: the cost of routing with the sampling noise taken out.
    pub ideal_ratio: Option<f64>,
    /// Answered within the target / (answered + abandoned).
    pub service_level: Option<f64>,
    pub erlang_c_service_level: Option<f64>,
    /// Agent time handling calls (ringing, talking, wrap-up) / logged-in agent time.
    pub occupancy: Option<f64>,
    /// Erlang C's ρ for the same load.
    pub erlang_c_occupancy: Option<f64>,
    pub assign_p50_ms: Option<f64>,
    pub assign_p99_ms: Option<f64>,
    pub assign_samples: usize,
    pub webhook_p50_ms: Option<f64>,
    pub webhook_p99_ms: Option<f64>,
    pub webhooks: usize,
    pub webhook_errors: u64,
    /// Mean absolute error of the first announced estimated wait against the wait that
    /// followed (answered calls).
    pub ewt_mae_s: Option<f64>,
    /// The same for the textbook estimate (position × mean handle time ÷ agents taking
    /// calls) at the same moments, the yardstick callq's estimate must beat.
    pub ewt_naive_mae_s: Option<f64>,
    pub ewt_samples: usize,
    pub rest_requests: u64,
    pub rest_faults_injected: u64,
    /// The faults the simulator injected: webhooks dropped, duplicated and delayed, REST
    /// refusals by HTTP status, callback customers' rings not answered.
    pub injected: Injected,
    /// Times Redis was paused (`CLIENT PAUSE`), and for how long in all (real seconds).
    pub redis_pauses: u64,
    pub redis_paused_s: f64,
    /// Calls that arrived after the warm-up (the ones waits are measured on).
    pub measured_calls: u64,
    pub load: Load,
    /// The first few lost calls and why.
    pub lost_examples: Vec<String>,
    /// After the drain: agents callq still holds reserved or busy (a call it never released).
    pub agents_held_at_end: u64,
    /// After the drain: calls callq holds in no final state (besides callbacks still to be
    /// made, counted in `callbacks_pending`).
    pub open_at_end: u64,
    /// A few of those, for the reader.
    pub held_examples: Vec<String>,
    /// The first few calls cut at the end, with their state in callq.
    pub cut_examples: Vec<String>,
    /// `callq`, `legacy` or `split:<pct>`.
    pub route: String,
    /// Fingerprint of the arrivals as drawn (times, callers, talk, patience): equal in two
    /// runs of the same load and seed, whatever the route.
    pub arrivals_digest: String,
    /// The plan's KPIs for each path callers took (legacy first).
    pub paths: Vec<PathKpis>,
    /// Callers of the legacy path that callq queued or recorded (must be 0).
    pub legacy_in_callq: u64,
    /// Legacy calls the old phone system found nobody free for, and rang out.
    pub legacy_nobody_free: u64,
    pub legacy_rang_out: u64,
    /// `--skills`: the wait per skill and the share answered within each widening step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skills: Option<super::skills::SkillsReport>,
    /// What the measured window cost Redis per call (None: Redis did not say).
    pub redis_cost: Option<RedisCost>,
}

/// What a run cost Redis, per call that arrived between two readings of its counters (taken
/// at the end of the warm-up and at the end of the arrivals): the scripts run (callq's
/// transitions, the worker's claims and rounds included), Redis' time in them and the
/// commands they ran (`INFO commandstats`), and Redis' main-thread CPU, which adds the
/// protocol and the kernel's share (`INFO cpu`). In steady traffic the transitions of calls
/// that arrived before the window stand for those of the window's calls that end after it.
/// The counts are the same on any machine; the microseconds move with its load, less than the
/// latencies do. On a Redis shared with other work, that work is counted too.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RedisCost {
    /// Calls that arrived between the two readings.
    pub calls: u64,
    pub scripts_per_call: f64,
    pub commands_per_call: f64,
    pub script_us_per_call: f64,
    pub cpu_us_per_call: Option<f64>,
}

/// Redis' counters at one moment (see [`RedisCost`]).
#[derive(Debug, Clone, Copy)]
pub struct RedisReading {
    pub at: Instant,
    scripts: ScriptTime,
    cpu_s: Option<f64>,
}

impl RedisReading {
    pub async fn take(store: &crate::store::Store) -> RedisReading {
        let scripts = ScriptTime::read(store).await;
        let cpu_s = redis_main_cpu(store).await;
        RedisReading {
            at: Instant::now(),
            scripts,
            cpu_s,
        }
    }

    /// The cost from `self` to `later` per call of `logs` that arrived between the two; None
    /// when Redis did not report its counters or no call arrived.
    pub fn cost_to(
        &self,
        later: &RedisReading,
        logs: &[crate::sim::twiml_exec::CallLog],
    ) -> Option<RedisCost> {
        let calls = logs
            .iter()
            .filter(|l| l.started >= self.at && l.started <= later.at)
            .count() as u64;
        let d = later.scripts.since(&self.scripts).counts()?;
        if calls == 0 {
            return None;
        }
        let per = |x: f64| x / calls as f64;
        Some(RedisCost {
            calls,
            scripts_per_call: per(d.calls as f64),
            commands_per_call: per(d.inner as f64),
            script_us_per_call: per(d.usec as f64),
            cpu_us_per_call: match (self.cpu_s, later.cpu_s) {
                (Some(a), Some(b)) if b >= a => Some(per((b - a) * 1e6)),
                _ => None,
            },
        })
    }
}

/// Inputs of [`Report::build`].
pub struct RunData<'a> {
    pub load: Load,
    pub route: Route,
    pub measured: &'a Measured,
    pub verdict: &'a Verdict,
    pub floor: FloorTime,
    /// When the measured window began (after warm-up) and when arrivals stopped.
    pub window: (Instant, Instant),
    pub cut_at_end: u64,
}

impl Report {
    pub fn build(d: RunData<'_>) -> Report {
        let f = d.load.compress;
        let m = d.measured;
        let count = |o: Outcome| m.logs.iter().filter(|l| l.outcome() == o).count() as u64;
        let in_window: Vec<_> = m
            .logs
            .iter()
            .filter(|l| l.started >= d.window.0 && l.started <= d.window.1)
            .collect();
        let waits: Vec<f64> = in_window
            .iter()
            .filter_map(|l| l.wait())
            .map(|w| w.as_secs_f64() * f)
            .collect();
        let asa_s = mean(waits.iter().copied());
        let abandoned_in_window = in_window
            .iter()
            .filter(|l| l.outcome() == Outcome::Abandoned)
            .count();
        let within = waits.iter().filter(|w| **w <= d.load.sl_target_s).count();
        let denominator = waits.len() + abandoned_in_window;
        // waits are measured in callq's line: legacy callers have none (see the paths' KPIs)
        let service_level = (denominator > 0 && d.route == Route::Callq)
            .then(|| within as f64 / denominator as f64);

        // Erlang C: ringing holds the agent too, so it is part of the handle time, and every
        // answered call waits for its ring on top of the queue
        let handle = d.load.answer_delay_s + d.load.talk_s + d.load.wrapup_s;
        let erlang = ErlangC::new(d.load.agents.max(1), d.load.rate, handle.max(1e-9))
            .ok()
            .filter(|_| d.route == Route::Callq);
        let erlang_c_asa_s = erlang
            .and_then(|e| e.asa_s().ok())
            .map(|w| w + d.load.answer_delay_s);
        let erlang_c_service_level = erlang.and_then(|e| {
            e.service_level((d.load.sl_target_s - d.load.answer_delay_s).max(0.0))
                .ok()
        });
        let erlang_c_occupancy = erlang.and_then(|e| e.utilisation().ok());

        let callbacks_completed = m
            .logs
            .iter()
            .filter(|l| l.outcome() == Outcome::Callback)
            .filter(|l| m.callbacks_reached.contains_key(&l.info.sid))
            .count() as u64;
        // (callq's error, the naive estimate's error) per answered call, simulated seconds
        let ewt_errors: Vec<(f64, Option<f64>)> = m
            .logs
            .iter()
            .filter_map(|l| {
                let e = m.ewt.get(&l.info.sid)?;
                let actual = l.answered?.saturating_duration_since(e.at).as_secs_f64();
                Some((
                    (e.callq_s - actual).abs() * f,
                    e.naive_s.map(|n| (n - actual).abs() * f),
                ))
            })
            .collect();
        let assign: Vec<f64> = m.assign_ms.iter().map(|x| x.max(0.0)).collect();
        let ideal_asa_s =
            ideal_asa(&m.logs, d.load.agents, d.load.wrapup_s / f, d.window).map(|w| w * f);
        Report {
            offered: m.logs.len() as u64,
            answered: count(Outcome::Answered),
            abandoned: count(Outcome::Abandoned),
            callbacks: count(Outcome::Callback),
            callbacks_completed,
            callbacks_pending: d.verdict.callbacks_pending,
            callbacks_failed: d.verdict.callbacks_failed,
            callbacks_kept_holding: m
                .logs
                .iter()
                .filter(|l| l.callback_asked)
                .filter(|l| l.queue_results.iter().skip_while(|r| *r != "leave").count() > 1)
                .count() as u64,
            voicemail: count(Outcome::Voicemail),
            other: count(Outcome::EndedByCallq) + count(Outcome::Error),
            cut_at_end: d.cut_at_end,
            lost: d.verdict.lost.len() as u64,
            double_bookings: m.double_bookings,
            asa_s,
            erlang_c_asa_s,
            asa_ratio: match (asa_s, erlang_c_asa_s) {
                (Some(a), Some(e)) if e > 0.0 => Some(a / e),
                _ => None,
            },
            ideal_asa_s,
            ideal_ratio: match (asa_s, ideal_asa_s) {
                (Some(a), Some(i)) if i > 0.0 => Some(a / i),
                _ => None,
            },
            service_level,
            erlang_c_service_level,
            occupancy: (d.floor.staffed_s > 0.0).then(|| d.floor.busy_s / d.floor.staffed_s),
            erlang_c_occupancy,
            assign_p50_ms: percentile(&assign, 50.0),
            assign_p99_ms: percentile(&assign, 99.0),
            assign_samples: assign.len(),
            webhook_p50_ms: percentile(&m.webhook_ms, 50.0),
            webhook_p99_ms: percentile(&m.webhook_ms, 99.0),
            webhooks: m.webhook_ms.len(),
            webhook_errors: m.webhook_errors,
            ewt_mae_s: mean(ewt_errors.iter().map(|e| e.0)),
            ewt_naive_mae_s: mean(ewt_errors.iter().filter_map(|e| e.1)),
            ewt_samples: ewt_errors.len(),
            rest_requests: m.rest_requests,
            rest_faults_injected: m.rest_faults,
            injected: m.injected,
            redis_pauses: 0,
            redis_paused_s: 0.0,
            measured_calls: in_window.len() as u64,
            load: d.load,
            lost_examples: d
                .verdict
                .lost
                .iter()
                .take(10)
                .map(|(sid, why)| format!("{sid}: {why}"))
                .collect(),
            cut_examples: Vec::new(),
            agents_held_at_end: 0,
            open_at_end: 0,
            held_examples: Vec::new(),
            route: d.route.to_string(),
            arrivals_digest: String::new(),
            paths: Vec::new(),
            legacy_in_callq: 0,
            legacy_nobody_free: 0,
            legacy_rang_out: 0,
            skills: None,
            redis_cost: None,
        }
    }

    /// The report as a table for a terminal.
    pub fn table(&self) -> String {
        let n = |v: Option<f64>, digits: usize| match v {
            Some(x) => format!("{x:.digits$}"),
            None => "-".to_string(),
        };
        let pct = |v: Option<f64>| match v {
            Some(x) => format!("{:.1}%", x * 100.0),
            None => "-".to_string(),
        };
        let l = &self.load;
        let mut out = String::new();
        let mut row = |k: &str, v: String| out.push_str(&format!("  {k:<26} {v}\n"));
        row(
            "load",
            format!(
                "{} agents, {:.4} calls/s, talk {:.0} s, wrap-up {:.0} s, ring {:.1} s, patience {}, no-answer {:.0}%",
                l.agents,
                l.rate,
                l.talk_s,
                l.wrapup_s,
                l.answer_delay_s,
                if l.patience_s > 0.0 { format!("{:.0} s", l.patience_s) } else { "∞".into() },
                l.no_answer * 100.0
            ),
        );
        row(
            "run",
            format!(
                "{:.0} s real (warm-up {:.0} s), time x{}, {} worker(s), seed {}",
                l.duration_s, l.warmup_s, l.compress, l.workers, l.seed
            ),
        );
        if !self.arrivals_digest.is_empty() {
            row(
                "route",
                format!(
                    "{}   arrivals {} (digest {})",
                    self.route, self.offered, self.arrivals_digest
                ),
            );
        }
        row(
            "calls",
            format!(
                "{} offered, {} answered, {} abandoned, {} callbacks ({} done, {} failed), {} voicemail, {} other",
                self.offered,
                self.answered,
                self.abandoned,
                self.callbacks,
                self.callbacks_completed,
                self.callbacks_failed,
                self.voicemail,
                self.other
            ),
        );
        let i = &self.injected;
        if i.any() || self.redis_pauses > 0 {
            row(
                "injected: webhooks",
                format!(
                    "{} dropped, {} duplicated, {} delayed",
                    i.webhooks_dropped, i.webhooks_duplicated, i.webhooks_delayed
                ),
            );
            row(
                "injected: REST refusals",
                format!(
                    "429 ×{}, 500 ×{}, 404 ×{}, 400 ×{}   ({} requests)",
                    i.rest_429, i.rest_500, i.rest_404, i.rest_400, self.rest_requests
                ),
            );
            row(
                "injected: Redis pauses",
                format!(
                    "{} ({:.1} s in all)",
                    self.redis_pauses, self.redis_paused_s
                ),
            );
            row(
                "injected: callback rings",
                format!(
                    "{} let ring out, {} busy",
                    i.customers_no_answer, i.customers_busy
                ),
            );
        }
        row(
            "lost / double bookings",
            format!("{} / {}", self.lost, self.double_bookings),
        );
        if self.route != "callq" {
            row(
                "legacy path",
                format!(
                    "{} missed with nobody free, {} rang out; {} queued by callq",
                    self.legacy_nobody_free, self.legacy_rang_out, self.legacy_in_callq
                ),
            );
        }
        row(
            "ASA (s)",
            format!(
                "{}   Erlang C {}   ratio {}",
                n(self.asa_s, 2),
                n(self.erlang_c_asa_s, 2),
                n(self.asa_ratio, 3)
            ),
        );
        row(
            "ASA, ideal on this sample",
            format!(
                "{}   measured / ideal {}",
                n(self.ideal_asa_s, 2),
                n(self.ideal_ratio, 3)
            ),
        );
        row(
            &format!("service level ({:.0} s)", l.sl_target_s),
            format!(
                "{}   Erlang C {}",
                pct(self.service_level),
                pct(self.erlang_c_service_level)
            ),
        );
        row(
            "occupancy",
            format!(
                "{}   Erlang C {}",
                pct(self.occupancy),
                pct(self.erlang_c_occupancy)
            ),
        );
        row(
            "assignment p50 / p99 (ms)",
            format!(
                "{} / {}   ({} offers)",
                n(self.assign_p50_ms, 2),
                n(self.assign_p99_ms, 2),
                self.assign_samples
            ),
        );
        row(
            "webhook p50 / p99 (ms)",
            format!(
                "{} / {}   ({} requests, {} errors)",
                n(self.webhook_p50_ms, 2),
                n(self.webhook_p99_ms, 2),
                self.webhooks,
                self.webhook_errors
            ),
        );
        if let Some(c) = &self.redis_cost {
            row(
                "Redis per call",
                format!(
                    "{:.2} scripts, {:.1} commands, {:.0} µs in scripts, main-thread CPU {} µs   ({} calls)",
                    c.scripts_per_call,
                    c.commands_per_call,
                    c.script_us_per_call,
                    n(c.cpu_us_per_call, 0),
                    c.calls
                ),
            );
        }
        row(
            "estimated wait MAE (s)",
            format!(
                "{}   (naive position × AHT ÷ agents: {}; {} calls)",
                n(self.ewt_mae_s, 1),
                n(self.ewt_naive_mae_s, 1),
                self.ewt_samples
            ),
        );
        if self.callbacks_kept_holding > 0 {
            row(
                "kept holding after callback",
                format!(
                    "{} callers were put back on hold after asking for a callback",
                    self.callbacks_kept_holding
                ),
            );
        }
        if self.cut_at_end > 0 || self.callbacks_pending > 0 {
            row(
                "unfinished at end",
                format!(
                    "{} callers hung up at the end, {} callbacks pending",
                    self.cut_at_end, self.callbacks_pending
                ),
            );
        }
        if self.agents_held_at_end > 0 || self.open_at_end > 0 {
            row(
                "held after the drain",
                format!(
                    "{} agents still reserved or busy, {} calls not final",
                    self.agents_held_at_end, self.open_at_end
                ),
            );
        }
        for e in &self.held_examples {
            row("held", e.clone());
        }
        for e in &self.lost_examples {
            row("lost", e.clone());
        }
        for e in &self.cut_examples {
            row("cut at the end", e.clone());
        }
        if !self.paths.is_empty() {
            let columns: Vec<(String, &PathKpis)> = self
                .paths
                .iter()
                .map(|p| (p.path.name().to_string(), p))
                .collect();
            out.push('\n');
            out.push_str(&kpis::table(&columns));
        }
        if let Some(skills) = &self.skills {
            out.push_str(&super::skills::table(skills));
        }
        out
    }
}

/// Mean wait (real seconds, up to the answer) of the calls that entered in `window` when the
/// run's own arrivals and handle times (ring and talk as they happened, plus the wrap-up) go
/// through `agents` servers first come, first served, with no overhead at all. None unless
/// every call was answered at its first ring.
pub fn ideal_asa(
    logs: &[crate::sim::twiml_exec::CallLog],
    agents: u32,
    wrapup_real_s: f64,
    window: (Instant, Instant),
) -> Option<f64> {
    let mut calls: Vec<(Instant, f64, f64)> = Vec::with_capacity(logs.len());
    for l in logs {
        if l.outcome() != Outcome::Answered || l.rings != 1 {
            return None;
        }
        let ring = l
            .answered?
            .saturating_duration_since(l.rang_at?)
            .as_secs_f64();
        calls.push((
            l.enqueued?,
            ring,
            ring + l.talk.as_secs_f64() + wrapup_real_s,
        ));
    }
    calls.sort_by_key(|c| c.0);
    let origin = calls.first()?.0;
    // min-heap of the times (s since origin) each server is next free
    let mut free: std::collections::BinaryHeap<std::cmp::Reverse<u64>> =
        (0..agents.max(1)).map(|_| std::cmp::Reverse(0)).collect();
    let to_us = |s: f64| (s * 1e6) as u64;
    let mut waits = Vec::new();
    for (at, ring, service) in calls {
        let arrival = to_us(at.duration_since(origin).as_secs_f64());
        let std::cmp::Reverse(next_free) = free.pop()?;
        let start = arrival.max(next_free);
        free.push(std::cmp::Reverse(start + to_us(service)));
        if at >= window.0 && at <= window.1 {
            waits.push((start - arrival) as f64 / 1e6 + ring);
        }
    }
    mean(waits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::twiml_exec::{CallInfo, CallLog};
    use std::time::Duration;

    fn answered(origin: Instant, arrive_s: f64, wait_s: f64, talk_s: f64) -> CallLog {
        let mut l = CallLog::new(CallInfo {
            sid: format!("CA{arrive_s}"),
            account_sid: "AC".into(),
            from: "+1".into(),
            to: "+2".into(),
            direction: "inbound".into(),
        });
        let at = origin + Duration::from_secs_f64(arrive_s);
        l.enqueued = Some(at);
        l.rang_at = Some(at + Duration::from_secs_f64(wait_s));
        l.answered = l.rang_at;
        l.rings = 1;
        l.talk = Duration::from_secs_f64(talk_s);
        l
    }

    #[test]
    fn the_ideal_replay_serves_first_come_first_served_with_no_overhead() {
        let o = Instant::now();
        // one agent, handle 10 s: arrivals at 0, 1 and 25 s wait 0, 9 and 0 s
        let logs = vec![
            answered(o, 0.0, 3.0, 10.0),
            answered(o, 1.0, 30.0, 10.0),
            answered(o, 25.0, 0.0, 10.0),
        ];
        let window = (o, o + Duration::from_secs(100));
        let w = ideal_asa(&logs, 1, 0.0, window).unwrap();
        assert!((w - 3.0).abs() < 1e-6, "{w}");
        // two agents: nobody waits
        assert!(ideal_asa(&logs, 2, 0.0, window).unwrap().abs() < 1e-6);
        // wrap-up counts as handle time: 0, 14 and 5 s
        let w = ideal_asa(&logs, 1, 5.0, window).unwrap();
        assert!((w - 19.0 / 3.0).abs() < 1e-6, "{w}");
        // a call that was not answered at its first ring: no exact replay
        let mut missed = logs.clone();
        missed[1].rings = 2;
        assert_eq!(ideal_asa(&missed, 1, 0.0, window), None);
    }
}
