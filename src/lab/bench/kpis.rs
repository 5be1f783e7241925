//! The improvement plan's KPIs for each path callers took in a bench run (callq, or the legacy
//! single-attempt path), and the tables that put paths side by side: one run's paths
//! ([`table`]), or `--compare`'s legacy run before callq's on the same arrivals
//! ([`compare_table`]).
//!
//! Definitions (calls that arrived after the warm-up; waits in simulated seconds):
//! - connected: an agent answered; abandoned: the caller hung up before that; missed: the call
//!   ended with no agent and not by the caller (legacy: nobody free, or the one agent rung let
//!   it ring out; callq: an overflow or hang-up action); other: callbacks, voicemail, errors.
//! - wait to answer: from the caller's call reaching the number to an agent answering, over
//!   connected calls (the legacy path's is its one ring).
//! - utilisation: the path's own floor, agent time ringing, talking and wrapping up over
//!   logged-in time.
//! - processing: from the moment a caller and a free agent are both there (the call arriving,
//!   or the agent becoming free while the caller waits) to that agent's phone ringing, for
//!   each call's first ring; real milliseconds, the machine's own time, never compressed.
//! - yardstick: Erlang B's blocking for the legacy floor (the share of callers a single-attempt
//!   hunt group finds with nobody free, every agent answering), Erlang C's ASA plus the ring
//!   for callq's floor.

use serde::Serialize;
use tokio::time::Instant;

use super::erlang::{erlang_b, ErlangC};
use super::report::{Load, Report};
use super::route::{Path, Route};
use crate::sim::agents::FloorTime;
use crate::sim::stats::{mean, percentile, Measured};
use crate::sim::twiml_exec::{CallLog, Outcome};

/// One path's KPIs over the measured window. Figures without samples are `null` in JSON.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PathKpis {
    pub path: Path,
    /// Agents on this path's floor.
    pub agents: u32,
    /// Calls of this path that arrived in the measured window.
    pub calls: u64,
    pub connected: u64,
    pub abandoned: u64,
    pub missed: u64,
    /// Of the missed: nobody free to ring, and rung but not answered.
    pub missed_no_agent: u64,
    pub missed_rang_out: u64,
    /// Callbacks, voicemail, errors.
    pub other: u64,
    pub connected_share: Option<f64>,
    pub abandoned_share: Option<f64>,
    pub missed_share: Option<f64>,
    /// Abandoned + missed: callers who never reached an agent.
    pub unserved_share: Option<f64>,
    pub wait_avg_s: Option<f64>,
    pub wait_p90_s: Option<f64>,
    pub utilisation: Option<f64>,
    pub processing_p50_ms: Option<f64>,
    pub processing_p90_ms: Option<f64>,
    pub processing_samples: usize,
    /// Calls that rang more than one agent (the legacy path: must be 0).
    pub rung_again: u64,
    /// Calls that waited in callq's line (the legacy path: must be 0).
    pub queued: u64,
    /// Legacy floor: Erlang B's share of callers finding nobody free.
    pub erlang_b_missed: Option<f64>,
    /// callq's floor: Erlang C's mean wait to answer, ring included.
    pub erlang_c_wait_s: Option<f64>,
    /// The offered load (Erlangs: the path's arrival rate × ring, talk and wrap-up) is at
    /// least its floor: Erlang C has no wait to give, the line grows while callers hold on.
    pub overloaded: bool,
}

/// Inputs of [`PathKpis::build`].
pub struct PathData<'a> {
    pub path: Path,
    pub route: Route,
    /// Agents on the path's floor.
    pub agents: u32,
    /// Share of callers sent down this path (0 to 1).
    pub share: f64,
    pub load: &'a Load,
    pub measured: &'a Measured,
    /// The path's floor over the window.
    pub floor: FloorTime,
    pub window: (Instant, Instant),
}

impl PathKpis {
    pub fn build(d: PathData<'_>) -> PathKpis {
        let f = d.load.compress;
        let calls: Vec<&CallLog> = d
            .measured
            .logs
            .iter()
            .filter(|l| d.route.path_of(&l.info.from) == d.path)
            .filter(|l| l.started >= d.window.0 && l.started <= d.window.1)
            .collect();
        let n = calls.len() as u64;
        let count = |o: Outcome| calls.iter().filter(|l| l.outcome() == o).count() as u64;
        let connected = count(Outcome::Answered);
        let abandoned = count(Outcome::Abandoned);
        let missed_calls: Vec<&&CallLog> = calls
            .iter()
            .filter(|l| l.outcome() == Outcome::EndedByCallq)
            .collect();
        let missed = missed_calls.len() as u64;
        let missed_rang_out = missed_calls
            .iter()
            .filter(|l| l.dial_results.last().is_some_and(|r| r == "no-answer"))
            .count() as u64;
        let missed_no_agent = missed - missed_rang_out;
        let share = |k: u64| (n > 0).then(|| k as f64 / n as f64);
        let waits: Vec<f64> = calls
            .iter()
            .filter_map(|l| Some(l.answered?.saturating_duration_since(l.started)))
            .map(|w| w.as_secs_f64() * f)
            .collect();
        let processing: Vec<f64> = calls
            .iter()
            .filter_map(|l| d.measured.processing_ms.get(&l.info.sid).copied())
            .collect();
        let load = d.load;
        let handle = load.answer_delay_s + load.talk_s + load.wrapup_s;
        let rate = load.rate * d.share;
        let (erlang_b_missed, erlang_c_wait_s) = match d.path {
            Path::Legacy if d.agents > 0 => (Some(erlang_b(d.agents, rate * handle)), None),
            Path::Callq if d.agents > 0 => (
                None,
                ErlangC::new(d.agents, rate, handle.max(1e-9))
                    .and_then(|e| e.asa_s())
                    .ok()
                    .map(|w| w + load.answer_delay_s),
            ),
            _ => (None, None),
        };
        PathKpis {
            path: d.path,
            agents: d.agents,
            calls: n,
            connected,
            abandoned,
            missed,
            missed_no_agent,
            missed_rang_out,
            other: n - connected - abandoned - missed,
            connected_share: share(connected),
            abandoned_share: share(abandoned),
            missed_share: share(missed),
            unserved_share: share(abandoned + missed),
            wait_avg_s: mean(waits.iter().copied()),
            wait_p90_s: percentile(&waits, 90.0),
            utilisation: (d.floor.staffed_s > 0.0).then(|| d.floor.busy_s / d.floor.staffed_s),
            processing_p50_ms: percentile(&processing, 50.0),
            processing_p90_ms: percentile(&processing, 90.0),
            processing_samples: processing.len(),
            rung_again: calls.iter().filter(|l| l.rings > 1).count() as u64,
            queued: calls.iter().filter(|l| l.enqueued.is_some()).count() as u64,
            erlang_b_missed,
            erlang_c_wait_s,
            overloaded: rate * handle >= f64::from(d.agents),
        }
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{:.1}%", x * 100.0))
}

fn num(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
}

/// The KPIs of each column side by side, with the plan's target in the last column.
pub fn table(columns: &[(String, &PathKpis)]) -> String {
    let mut rows: Vec<(String, Vec<String>, &str)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&PathKpis) -> String, plan: &'static str| {
        rows.push((
            name.to_string(),
            columns.iter().map(|(_, k)| f(k)).collect(),
            plan,
        ));
    };
    row("agents on the floor", &|k| k.agents.to_string(), "");
    row("calls (after warm-up)", &|k| k.calls.to_string(), "");
    row("connected", &|k| pct(k.connected_share), "> 95%");
    row(
        "abandoned (caller hung up)",
        &|k| pct(k.abandoned_share),
        "",
    );
    row(
        "missed (nobody free / rang out)",
        &|k| {
            format!(
                "{} ({} / {})",
                pct(k.missed_share),
                k.missed_no_agent,
                k.missed_rang_out
            )
        },
        "",
    );
    row(
        "not connected (abandoned + missed)",
        &|k| pct(k.unserved_share),
        "halved",
    );
    row(
        "wait to answer, avg (s)",
        &|k| num(k.wait_avg_s, 1),
        "< 120",
    );
    row("wait to answer, p90 (s)", &|k| num(k.wait_p90_s, 1), "");
    row("agent utilisation", &|k| pct(k.utilisation), "> 85%");
    row(
        "processing p50 / p90 (ms, real)",
        &|k| {
            format!(
                "{} / {}",
                num(k.processing_p50_ms, 2),
                num(k.processing_p90_ms, 2)
            )
        },
        "< 2000",
    );
    row(
        "rang again / queued",
        &|k| format!("{} / {}", k.rung_again, k.queued),
        "",
    );
    row(
        "yardstick",
        &|k| match (k.erlang_b_missed, k.erlang_c_wait_s) {
            (Some(b), _) => format!("Erlang B {} missed", pct(Some(b))),
            (_, Some(w)) => format!("Erlang C wait {w:.1} s"),
            _ if k.overloaded => "Erlang C: overloaded".to_string(),
            _ => "-".to_string(),
        },
        "",
    );
    let header: Vec<String> = columns.iter().map(|(name, _)| name.clone()).collect();
    let first = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(3);
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.1[i].chars().count())
                .chain(std::iter::once(header[i].chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |name: &str, cells: &[String], plan: &str| {
        let mut l = format!("  {name:<first$}");
        for (cell, w) in cells.iter().zip(&widths) {
            l.push_str(&format!("   {cell:<w$}"));
        }
        l.push_str(&format!("   {plan}"));
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line("KPI", &header, "plan");
    for (name, cells, plan) in &rows {
        line(name, cells, plan);
    }
    out
}

/// `--compare`: the legacy run's legacy path before callq's run's callq path, and whether
/// both saw the same arrivals.
pub fn compare_table(before: &Report, after: &Report) -> String {
    let legacy = before.paths.iter().find(|p| p.path == Path::Legacy);
    let callq = after.paths.iter().find(|p| p.path == Path::Callq);
    let mut out = String::new();
    let same = before.arrivals_digest == after.arrivals_digest && before.offered == after.offered;
    out.push_str(&format!(
        "before / after on the same arrivals: {} ({} calls, digest {} / {})\n",
        if same { "yes" } else { "NO" },
        after.offered,
        before.arrivals_digest,
        after.arrivals_digest
    ));
    if let (Some(l), Some(c)) = (legacy, callq) {
        out.push_str(&table(&[
            ("before: legacy".to_string(), l),
            ("after: callq".to_string(), c),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::twiml_exec::CallInfo;
    use std::time::Duration;

    fn load() -> Load {
        Load {
            agents: 4,
            rate: 0.05,
            talk_s: 60.0,
            wrapup_s: 5.0,
            answer_delay_s: 2.0,
            patience_s: 0.0,
            no_answer: 0.0,
            compress: 10.0,
            duration_s: 10.0,
            warmup_s: 0.0,
            sl_target_s: 20.0,
            workers: 1,
            seed: 1,
        }
    }

    fn call(n: u32, start: Instant) -> CallLog {
        let mut l = CallLog::new(CallInfo {
            sid: format!("CA{n}"),
            account_sid: "AC".into(),
            from: format!("+1202{n:07}"),
            to: "+15005550100".into(),
            direction: "inbound".into(),
        });
        l.started = start;
        l
    }

    #[test]
    fn each_call_counts_once_on_its_own_path() {
        let t0 = Instant::now();
        let route = Route::Split(50);
        let mut logs = Vec::new();
        for n in 1..=200u32 {
            let mut l = call(n, t0 + Duration::from_millis(u64::from(n)));
            match n % 4 {
                // answered after 1 s real = 10 s simulated
                0 => {
                    l.rings = 1;
                    l.answered = Some(l.started + Duration::from_secs(1));
                }
                1 => l.gave_up = true,
                2 => {
                    l.rings = 1;
                    l.dial_results.push("no-answer".into());
                }
                _ => {
                    l.rings = 1;
                    l.dial_results.push("busy".into());
                }
            }
            logs.push(l);
        }
        let mut measured = Measured {
            logs,
            ..Measured::default()
        };
        measured.processing_ms.insert("CA4".into(), 3.0);
        let window = (t0, t0 + Duration::from_secs(60));
        let load = load();
        let kpis: Vec<PathKpis> = route
            .paths()
            .into_iter()
            .map(|path| {
                PathKpis::build(PathData {
                    path,
                    route,
                    agents: 2,
                    share: 0.5,
                    load: &load,
                    measured: &measured,
                    floor: FloorTime {
                        busy_s: 5.0,
                        staffed_s: 10.0,
                    },
                    window,
                })
            })
            .collect();
        assert_eq!(kpis.len(), 2);
        assert_eq!(kpis.iter().map(|k| k.calls).sum::<u64>(), 200);
        for k in &kpis {
            let on_path = measured
                .logs
                .iter()
                .filter(|l| route.path_of(&l.info.from) == k.path)
                .count() as u64;
            assert_eq!(k.calls, on_path, "{:?}", k.path);
            assert_eq!(
                k.connected + k.abandoned + k.missed + k.other,
                k.calls,
                "one outcome each"
            );
            assert_eq!(k.missed, k.missed_no_agent + k.missed_rang_out);
            assert_eq!(k.other, 0);
            assert_eq!(k.utilisation, Some(0.5));
            if k.connected > 0 {
                assert!((k.wait_avg_s.unwrap() - 10.0).abs() < 1e-6);
            }
        }
        let legacy = &kpis[0];
        assert_eq!(legacy.path, Path::Legacy);
        assert!(legacy.erlang_b_missed.is_some() && legacy.erlang_c_wait_s.is_none());
        assert!(kpis[1].erlang_c_wait_s.is_some() && kpis[1].erlang_b_missed.is_none());
        let text = table(&[
            ("legacy".to_string(), &kpis[0]),
            ("callq".to_string(), &kpis[1]),
        ]);
        assert!(
            text.contains("connected") && text.contains("> 95%"),
            "{text}"
        );
    }

    #[test]
    fn calls_outside_the_window_are_not_measured() {
        let t0 = Instant::now();
        let logs = vec![call(1, t0), call(2, t0 + Duration::from_secs(5))];
        let measured = Measured {
            logs,
            ..Measured::default()
        };
        let load = load();
        let k = PathKpis::build(PathData {
            path: Path::Callq,
            route: Route::Callq,
            agents: 4,
            share: 1.0,
            load: &load,
            measured: &measured,
            floor: FloorTime::default(),
            window: (t0 + Duration::from_secs(1), t0 + Duration::from_secs(10)),
        });
        assert_eq!(k.calls, 1);
        assert_eq!(k.connected_share, Some(0.0));
        assert_eq!(k.utilisation, None);
        assert_eq!(k.wait_avg_s, None);
    }
}
