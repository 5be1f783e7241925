//! `callq bench --skills`: the load on a two-skill floor. Callers ring one of two lines,
//! `billing` and `spanish`, each requiring its skill at level 3 and widening as the call
//! waits (level 1 after 30 simulated seconds, any agent of the line after 90). The agents serve
//! both lines, strong in one skill and weak in the other (every fourth middling in both). The
//! report gives the wait to answer per skill, and the share of answered calls offered within
//! each widening step, read from callq's own record of each call (its wait when the answered
//! offer was made).

use std::time::Duration;

use tokio::time::Instant;

use serde::Serialize;

use crate::sim::clock::Clock;
use crate::sim::load::Dialled;
use crate::sim::twiml_exec::CallLog;
use crate::store::{Skills, Store, WidenStep};

/// The two lines: skill (also the queue's name) and the number callers ring.
pub const LINES: [(&str, &str); 2] = [("billing", "+15005550101"), ("spanish", "+15005550102")];
/// The level each line requires before widening.
pub const LEVEL: u8 = 3;
/// When a call's reach widens, simulated seconds of waiting: level 1, then anyone.
pub const STEPS_S: [f64; 2] = [30.0, 90.0];

/// A line's widening steps, in real time.
pub fn widen(clock: &Clock) -> Vec<WidenStep> {
    vec![
        WidenStep {
            after: clock.real(STEPS_S[0]),
            min_level: Some(1),
            ..WidenStep::default()
        },
        WidenStep {
            after: clock.real(STEPS_S[1]),
            any_skill: true,
            ..WidenStep::default()
        },
    ]
}

/// What line `skill` requires.
pub fn required(skill: &str) -> Skills {
    Skills::new([(skill, LEVEL)])
}

/// Agent `i`'s skills: odd agents billing 4 and Spanish 1, even ones the other way round,
/// every fourth billing 3 and Spanish 3.
pub fn agent_skills(i: u32) -> Skills {
    if i.is_multiple_of(4) {
        Skills::new([("billing", 3), ("spanish", 3)])
    } else if i % 2 == 1 {
        Skills::new([("billing", 4), ("spanish", 1)])
    } else {
        Skills::new([("billing", 1), ("spanish", 4)])
    }
}

/// Callers split evenly between the two lines.
pub fn numbers() -> Vec<Dialled> {
    LINES
        .iter()
        .map(|(_, number)| Dialled {
            number: (*number).into(),
            weight: 1.0,
            menu: Vec::new(),
        })
        .collect()
}

/// One line's answered calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkillLine {
    pub skill: String,
    pub answered: u64,
    /// Mean wait to answer, simulated seconds.
    pub asa_s: Option<f64>,
    pub p90_wait_s: Option<f64>,
}

/// Answered calls by the widening step their answered offer was made in.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepShare {
    /// `at once (level 3)`, `after 30 s (level 1)`, `after 90 s (anyone)`.
    pub step: String,
    pub answered: u64,
    pub share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkillsReport {
    pub lines: Vec<SkillLine>,
    pub steps: Vec<StepShare>,
}

/// The skills section of the report: calls that entered within `window`.
pub async fn report(
    store: &Store,
    logs: &[CallLog],
    window: (Instant, Instant),
    clock: Clock,
) -> anyhow::Result<SkillsReport> {
    let mut waits: Vec<Vec<f64>> = vec![Vec::new(); LINES.len()];
    let mut by_step = [0u64; 3];
    for log in logs {
        let (Some(enqueued), Some(answered)) = (log.enqueued, log.answered) else {
            continue;
        };
        if enqueued < window.0 || enqueued >= window.1 {
            continue;
        }
        let Some(line) = LINES.iter().position(|(_, n)| *n == log.info.to) else {
            continue;
        };
        waits[line].push(clock.sim_s(answered.saturating_duration_since(enqueued)));
        // callq's record of the answered offer: how long the call had waited when it was made
        if let Some(call) = store.call(&log.info.sid).await? {
            if let Some(offered) = call.offered_ms {
                let waited = Duration::from_millis((offered - call.entered_ms).max(0) as u64);
                let waited_s = clock.sim_s(waited);
                let step = STEPS_S.iter().filter(|s| waited_s >= **s).count();
                by_step[step] += 1;
            }
        }
    }
    let lines = LINES
        .iter()
        .zip(&waits)
        .map(|((skill, _), w)| SkillLine {
            skill: (*skill).into(),
            answered: w.len() as u64,
            asa_s: crate::sim::stats::mean(w.iter().copied()),
            p90_wait_s: crate::sim::stats::percentile(w, 90.0),
        })
        .collect();
    let total: u64 = by_step.iter().sum();
    let labels = [
        format!("at once (level {LEVEL})"),
        format!("after {:.0} s (level 1)", STEPS_S[0]),
        format!("after {:.0} s (anyone)", STEPS_S[1]),
    ];
    let steps = labels
        .into_iter()
        .zip(by_step)
        .map(|(step, answered)| StepShare {
            step,
            answered,
            share: (total > 0).then(|| answered as f64 / total as f64),
        })
        .collect();
    Ok(SkillsReport { lines, steps })
}

/// The section as table rows.
pub fn table(r: &SkillsReport) -> String {
    let n = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
    let mut out = String::from("  skills (two-skill floor)\n");
    for l in &r.lines {
        out.push_str(&format!(
            "    {:<24} answered {:>5}   ASA {} s   p90 wait {} s\n",
            l.skill,
            l.answered,
            n(l.asa_s),
            n(l.p90_wait_s)
        ));
    }
    for s in &r.steps {
        out.push_str(&format!(
            "    offered {:<25} {:>5}   {}\n",
            s.step,
            s.answered,
            s.share
                .map_or("-".to_string(), |x| format!("{:.1}%", x * 100.0))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_has_both_skills_strong_and_weak() {
        let floor: Vec<Skills> = (1..=8).map(agent_skills).collect();
        for (skill, _) in LINES {
            let need = required(skill);
            let able = floor.iter().filter(|s| s.meet(&need)).count();
            assert!(able >= 2 && able < floor.len(), "{skill}: {able} of 8 able");
        }
    }
}
