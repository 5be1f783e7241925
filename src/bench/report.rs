//! The report of a run (`callq bench`, `callq demo`): what the phone side measured, next to
//! the Erlang C prediction for the same agents, arrival rate and mean handle time.
//!
//! Units: waits (`asa_s`, `ewt_mae_s`, the service-level target) are simulated seconds, as
//! are the load's talk, wrap-up and ring times; latencies (`assign_*_ms`, `webhook_*_ms`) are
//! real milliseconds, since callq runs on real time.

use serde::Serialize;
use tokio::time::Instant;

use super::erlang::ErlangC;
use crate::sim::agents::FloorTime;
use crate::sim::stats::{mean, percentile, Measured};
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
    pub ewt_samples: usize,
    pub rest_requests: u64,
    pub rest_faults_injected: u64,
    /// Calls that arrived after the warm-up (the ones waits are measured on).
    pub measured_calls: u64,
    pub load: Load,
    /// The first few lost calls and why.
    pub lost_examples: Vec<String>,
}

/// Inputs of [`Report::build`].
pub struct RunData<'a> {
    pub load: Load,
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
        let service_level = (denominator > 0).then(|| within as f64 / denominator as f64);

        // Erlang C: ringing holds the agent too, so it is part of the handle time, and every
        // answered call waits for its ring on top of the queue
        let handle = d.load.answer_delay_s + d.load.talk_s + d.load.wrapup_s;
        let erlang = ErlangC::new(d.load.agents.max(1), d.load.rate, handle.max(1e-9)).ok();
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
        let ewt_errors: Vec<f64> = m
            .logs
            .iter()
            .filter_map(|l| {
                let (at, est) = m.ewt.get(&l.info.sid)?;
                let actual = l.answered?.saturating_duration_since(*at).as_secs_f64();
                Some((est - actual).abs() * f)
            })
            .collect();
        let assign: Vec<f64> = m.assign_ms.iter().map(|x| x.max(0.0)).collect();
        Report {
            offered: m.logs.len() as u64,
            answered: count(Outcome::Answered),
            abandoned: count(Outcome::Abandoned),
            callbacks: count(Outcome::Callback),
            callbacks_completed,
            callbacks_pending: d.verdict.callbacks_pending,
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
            ewt_mae_s: mean(ewt_errors.iter().copied()),
            ewt_samples: ewt_errors.len(),
            rest_requests: m.rest_requests,
            rest_faults_injected: m.rest_faults,
            measured_calls: in_window.len() as u64,
            load: d.load,
            lost_examples: d
                .verdict
                .lost
                .iter()
                .take(10)
                .map(|(sid, why)| format!("{sid}: {why}"))
                .collect(),
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
        row(
            "calls",
            format!(
                "{} offered, {} answered, {} abandoned, {} callbacks ({} done), {} voicemail, {} other",
                self.offered,
                self.answered,
                self.abandoned,
                self.callbacks,
                self.callbacks_completed,
                self.voicemail,
                self.other
            ),
        );
        row(
            "lost / double bookings",
            format!("{} / {}", self.lost, self.double_bookings),
        );
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
        row(
            "estimated wait MAE (s)",
            format!("{}   ({} calls)", n(self.ewt_mae_s, 1), self.ewt_samples),
        );
        if self.cut_at_end > 0 || self.callbacks_pending > 0 {
            row(
                "unfinished at end",
                format!(
                    "{} callers hung up at the end, {} callbacks pending",
                    self.cut_at_end, self.callbacks_pending
                ),
            );
        }
        for e in &self.lost_examples {
            row("lost", e.clone());
        }
        out
    }
}
