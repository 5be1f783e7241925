//! Where `callq bench --route` sends the callers: all through callq, all down the legacy
//! path the centre had before callq (the single-attempt model: ring one free agent once, for
//! 30 s; nobody free or no answer is a missed call), or a split by the rollout gate's own
//! stable caller hash ([`crate::config::rollout::routed_by_callq`]).
//!
//! The legacy path is the product's own: the bench's centre gets a `[rollout]` section with
//! `share_pct` and `legacy = { action = "dial", number = LEGACY_NUMBER }`, so callers outside
//! callq's share are answered by callq's real gate with its legacy `<Dial>`. Behind that number
//! the simulator plays the centre's old phone system (a hunt group: see
//! [`crate::sim::agents::Agents::hunt`]). Each path has its own floor of agents, sized in
//! proportion to its share of callers (see [`Route::floors`]): callq never knows about the
//! legacy floor's calls, so sharing agents between the two would have callq ring agents that
//! are already on a legacy call.

use std::fmt;
use std::str::FromStr;

use crate::config::rollout::routed_by_callq;

/// The number callq's legacy `<Dial>` rings: the centre's old phone system, in the simulator.
pub const LEGACY_NUMBER: &str = "+15005550199";

/// `--route legacy|callq|split:<pct>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Route {
    /// Every caller down the legacy path (the rollout gate at share 0).
    Legacy,
    /// Every caller through callq (no rollout section: share 100).
    #[default]
    Callq,
    /// This percent of callers (by the gate's caller hash) through callq, the rest legacy.
    Split(u8),
}

/// Which path a caller took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    Legacy,
    Callq,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::Legacy => "legacy",
            Path::Callq => "callq",
        }
    }
}

impl Route {
    /// Percent of callers callq routes (the rollout share).
    pub fn callq_share(self) -> u8 {
        match self {
            Route::Legacy => 0,
            Route::Callq => 100,
            Route::Split(p) => p.min(100),
        }
    }

    /// The path `caller` takes: the gate's decision, from the same hash.
    pub fn path_of(self, caller: &str) -> Path {
        if routed_by_callq(caller, self.callq_share()) {
            Path::Callq
        } else {
            Path::Legacy
        }
    }

    /// The paths callers can take on this route, legacy first.
    pub fn paths(self) -> Vec<Path> {
        match self.callq_share() {
            0 => vec![Path::Legacy],
            100 => vec![Path::Callq],
            _ => vec![Path::Legacy, Path::Callq],
        }
    }

    /// How `agents` are split between the floors: `(callq, legacy)`, in proportion to the
    /// share of callers, rounded, at least one on each floor that gets callers. Errors when
    /// there are too few agents for that.
    pub fn floors(self, agents: u32) -> Result<(u32, u32), String> {
        let share = u32::from(self.callq_share());
        match share {
            0 => Ok((0, agents)),
            100 => Ok((agents, 0)),
            _ => {
                if agents < 2 {
                    return Err(format!(
                        "--route {self} needs at least 2 agents (one on each floor)"
                    ));
                }
                let callq = ((agents * share + 50) / 100).clamp(1, agents - 1);
                Ok((callq, agents - callq))
            }
        }
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Route::Legacy => f.write_str("legacy"),
            Route::Callq => f.write_str("callq"),
            Route::Split(p) => write!(f, "split:{p}"),
        }
    }
}

impl FromStr for Route {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "legacy" => return Ok(Route::Legacy),
            "callq" => return Ok(Route::Callq),
            _ => {}
        }
        let Some(pct) = s.strip_prefix("split:") else {
            return Err(format!(
                "{s:?}: expected legacy, callq or split:<pct> (split:10 sends 10% of callers to callq)"
            ));
        };
        match pct.trim().trim_end_matches('%').parse::<u8>() {
            Ok(p) if p <= 100 => Ok(Route::Split(p)),
            _ => Err(format!(
                "{s:?}: the split is a whole percent of callers sent to callq, 0 to 100"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_and_print_back() {
        for (text, route) in [
            ("legacy", Route::Legacy),
            ("callq", Route::Callq),
            ("split:10", Route::Split(10)),
            ("split:0", Route::Split(0)),
            ("split:100", Route::Split(100)),
        ] {
            assert_eq!(text.parse::<Route>(), Ok(route), "{text}");
            assert_eq!(route.to_string(), text);
        }
        assert_eq!(" split:25% ".parse::<Route>(), Ok(Route::Split(25)));
        for bad in [
            "",
            "Legacy",
            "split",
            "split:",
            "split:101",
            "split:-1",
            "split:2.5",
            "split:x",
            "callq2",
            "50",
        ] {
            assert!(bad.parse::<Route>().is_err(), "{bad:?} accepted");
        }
        assert_eq!(Route::default(), Route::Callq);
    }

    #[test]
    fn shares_and_paths() {
        assert_eq!(Route::Legacy.callq_share(), 0);
        assert_eq!(Route::Callq.callq_share(), 100);
        assert_eq!(Route::Split(30).callq_share(), 30);
        assert_eq!(Route::Legacy.paths(), vec![Path::Legacy]);
        assert_eq!(Route::Split(100).paths(), vec![Path::Callq]);
        assert_eq!(Route::Split(1).paths(), vec![Path::Legacy, Path::Callq]);
        for i in 0..500u32 {
            let caller = format!("+1202{i:07}");
            assert_eq!(Route::Legacy.path_of(&caller), Path::Legacy);
            assert_eq!(Route::Callq.path_of(&caller), Path::Callq);
        }
    }

    #[test]
    fn a_split_sends_callers_as_the_gate_does_within_two_points_of_the_share() {
        // the bench's callers are numbered as the load numbers them
        let callers: Vec<String> = (1..=10_000u32).map(|n| format!("+1202{n:07}")).collect();
        for pct in [10u8, 25, 50, 90] {
            let route = Route::Split(pct);
            let to_callq = callers
                .iter()
                .filter(|c| route.path_of(c) == Path::Callq)
                .count();
            let got = to_callq as f64 / 100.0;
            assert!(
                (got - f64::from(pct)).abs() <= 2.0,
                "split:{pct}: {got:.2}% to callq"
            );
            for c in &callers {
                assert_eq!(
                    route.path_of(c) == Path::Callq,
                    routed_by_callq(c, pct),
                    "the bench's split is the gate's: {c}"
                );
            }
        }
    }

    #[test]
    fn floors_follow_the_share_with_at_least_one_agent_each() {
        assert_eq!(Route::Callq.floors(20), Ok((20, 0)));
        assert_eq!(Route::Legacy.floors(20), Ok((0, 20)));
        assert_eq!(Route::Split(50).floors(20), Ok((10, 10)));
        assert_eq!(Route::Split(10).floors(20), Ok((2, 18)));
        assert_eq!(Route::Split(1).floors(20), Ok((1, 19)));
        assert_eq!(Route::Split(99).floors(20), Ok((19, 1)));
        assert_eq!(Route::Split(0).floors(5), Ok((0, 5)));
        assert_eq!(Route::Split(100).floors(5), Ok((5, 0)));
        assert!(Route::Split(50).floors(1).is_err());
        for agents in 2..40 {
            for pct in 1..100u8 {
                let (c, l) = Route::Split(pct).floors(agents).unwrap();
                assert!(c >= 1 && l >= 1 && c + l == agents, "{pct}% of {agents}");
            }
        }
    }
}
