//! Erlang C (M/M/c): the yardstick `callq bench` judges the router by.
//!
//! For `c` agents, Poisson arrivals at rate λ and exponential handle times of mean `h`, Erlang C
//! gives the probability that a caller waits, the average speed of answer (ASA) and the service
//! level an ideal router with zero overhead would achieve. callq's measured figures next to these
//! show what our routing costs.
//!
//! Formulas (A = λ·h, offered load in Erlangs; defined only when A < c):
//! - Erlang B by the stable recursion B(0) = 1, B(k) = A·B(k−1) / (k + A·B(k−1)) (no factorials,
//!   no overflow for thousands of agents);
//! - P_w = C(c, A) = c·B / (c − A·(1 − B));
//! - ASA = P_w · h / (c − A);
//! - service level SL(t) = 1 − P_w · e^{−(c−A)·t/h}.
//!
//! Caller abandonment is not modelled (that would be Erlang A): with impatient callers the real
//! queue is shorter than Erlang C predicts.

use std::fmt;

/// Why an Erlang C figure cannot be given.
#[derive(Debug, Clone, PartialEq)]
pub enum ErlangError {
    /// A parameter is out of range (named in the message).
    InvalidInput(String),
    /// Offered load A = λ·h is at least the number of agents: the queue grows without bound,
    /// every caller waits and the mean wait is infinite.
    Overloaded { offered_load: f64, agents: u32 },
}

impl fmt::Display for ErlangError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErlangError::InvalidInput(msg) => write!(f, "invalid Erlang C input: {msg}"),
            ErlangError::Overloaded {
                offered_load,
                agents,
            } => write!(
                f,
                "overloaded: offered load {offered_load:.3} Erlangs >= {agents} agents; \
                 the queue grows without bound"
            ),
        }
    }
}

impl std::error::Error for ErlangError {}

/// An M/M/c system: `agents` servers, Poisson arrivals, exponential handle times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErlangC {
    agents: u32,
    arrival_rate_per_s: f64,
    mean_handle_s: f64,
}

impl ErlangC {
    /// `agents` ≥ 1, `arrival_rate_per_s` ≥ 0, `mean_handle_s` > 0, all finite. An overloaded
    /// system is accepted here; the figures that do not exist for it return
    /// [`ErlangError::Overloaded`].
    pub fn new(
        agents: u32,
        arrival_rate_per_s: f64,
        mean_handle_s: f64,
    ) -> Result<Self, ErlangError> {
        if agents == 0 {
            return Err(ErlangError::InvalidInput(
                "agents must be at least 1".into(),
            ));
        }
        if !arrival_rate_per_s.is_finite() || arrival_rate_per_s < 0.0 {
            return Err(ErlangError::InvalidInput(format!(
                "arrival_rate_per_s must be finite and >= 0, got {arrival_rate_per_s}"
            )));
        }
        if !mean_handle_s.is_finite() || mean_handle_s <= 0.0 {
            return Err(ErlangError::InvalidInput(format!(
                "mean_handle_s must be finite and > 0, got {mean_handle_s}"
            )));
        }
        Ok(Self {
            agents,
            arrival_rate_per_s,
            mean_handle_s,
        })
    }

    /// The same, with the arrival rate given in calls per hour (as contact centres quote it).
    pub fn from_calls_per_hour(
        agents: u32,
        calls_per_hour: f64,
        mean_handle_s: f64,
    ) -> Result<Self, ErlangError> {
        Self::new(agents, calls_per_hour / 3600.0, mean_handle_s)
    }

    pub fn agents(&self) -> u32 {
        self.agents
    }

    pub fn arrival_rate_per_s(&self) -> f64 {
        self.arrival_rate_per_s
    }

    pub fn mean_handle_s(&self) -> f64 {
        self.mean_handle_s
    }

    /// A = λ·h, in Erlangs.
    pub fn offered_load(&self) -> f64 {
        self.arrival_rate_per_s * self.mean_handle_s
    }

    /// Whether A < c (a steady state exists).
    pub fn is_stable(&self) -> bool {
        self.offered_load() < f64::from(self.agents)
    }

    fn check_stable(&self) -> Result<f64, ErlangError> {
        let a = self.offered_load();
        if a < f64::from(self.agents) {
            Ok(a)
        } else {
            Err(ErlangError::Overloaded {
                offered_load: a,
                agents: self.agents,
            })
        }
    }

    /// Agent occupancy ρ = A / c (share of agent time spent handling calls).
    pub fn utilisation(&self) -> Result<f64, ErlangError> {
        Ok(self.check_stable()? / f64::from(self.agents))
    }

    /// Erlang B: the blocking probability of the same load on `c` lines with no queue.
    /// Defined for any load.
    pub fn erlang_b(&self) -> f64 {
        erlang_b(self.agents, self.offered_load())
    }

    /// P_w, the probability that a caller has to wait (Erlang C formula).
    pub fn prob_wait(&self) -> Result<f64, ErlangError> {
        let a = self.check_stable()?;
        Ok(erlang_c_from_b(self.agents, a, self.erlang_b()))
    }

    /// Average speed of answer over all callers (those answered at once count as 0 s):
    /// P_w · h / (c − A).
    pub fn asa_s(&self) -> Result<f64, ErlangError> {
        let a = self.check_stable()?;
        Ok(self.prob_wait()? * self.mean_handle_s / (f64::from(self.agents) - a))
    }

    /// Mean wait of the callers who do wait: h / (c − A).
    pub fn mean_wait_of_waiters_s(&self) -> Result<f64, ErlangError> {
        let a = self.check_stable()?;
        Ok(self.mean_handle_s / (f64::from(self.agents) - a))
    }

    /// Mean number of callers waiting (Little's law: λ · ASA).
    pub fn mean_queue_length(&self) -> Result<f64, ErlangError> {
        Ok(self.arrival_rate_per_s * self.asa_s()?)
    }

    /// Share of callers answered within `target_s` seconds: 1 − P_w · e^{−(c−A)·t/h}.
    pub fn service_level(&self, target_s: f64) -> Result<f64, ErlangError> {
        if !target_s.is_finite() || target_s < 0.0 {
            return Err(ErlangError::InvalidInput(format!(
                "target_s must be finite and >= 0, got {target_s}"
            )));
        }
        let a = self.check_stable()?;
        let pw = self.prob_wait()?;
        let decay = (-(f64::from(self.agents) - a) * target_s / self.mean_handle_s).exp();
        Ok((1.0 - pw * decay).clamp(0.0, 1.0))
    }
}

/// Erlang B by the recursion B(0) = 1, B(k) = A·B(k−1) / (k + A·B(k−1)).
pub fn erlang_b(agents: u32, offered_load: f64) -> f64 {
    let mut b = 1.0_f64;
    for k in 1..=agents {
        let ab = offered_load * b;
        b = ab / (f64::from(k) + ab);
    }
    b
}

fn erlang_c_from_b(agents: u32, offered_load: f64, b: f64) -> f64 {
    let c = f64::from(agents);
    let denom = c - offered_load * (1.0 - b);
    if denom <= 0.0 {
        // Only reachable through rounding right at A → c, where P_w → 1.
        return 1.0;
    }
    (c * b / denom).clamp(0.0, 1.0)
}

/// Fewest agents meeting `level` (e.g. 0.8) of calls answered within `target_s` (e.g. 20 s) for
/// the given load, by Erlang C. `level` must be in [0, 1).
pub fn agents_for_service_level(
    arrival_rate_per_s: f64,
    mean_handle_s: f64,
    target_s: f64,
    level: f64,
) -> Result<u32, ErlangError> {
    if !(0.0..1.0).contains(&level) {
        return Err(ErlangError::InvalidInput(format!(
            "level must be in [0, 1), got {level}"
        )));
    }
    // Validates the rates; one agent is the smallest system.
    let probe = ErlangC::new(1, arrival_rate_per_s, mean_handle_s)?;
    let a = probe.offered_load();
    // The smallest stable system has floor(A) + 1 agents; SL → 1 as agents grow, so the search
    // ends. The bound only guards against absurd inputs.
    let first = (a.floor() as u64).saturating_add(1);
    let limit = first.saturating_add(1_000_000);
    let mut c = first;
    while c <= limit {
        let agents = u32::try_from(c).map_err(|_| {
            ErlangError::InvalidInput(format!("offered load {a} needs more than u32::MAX agents"))
        })?;
        let sys = ErlangC::new(agents, arrival_rate_per_s, mean_handle_s)?;
        if sys.is_stable() && sys.service_level(target_s)? >= level {
            return Ok(agents);
        }
        c += 1;
    }
    Err(ErlangError::InvalidInput(format!(
        "no staffing up to {limit} agents reaches service level {level}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P_w by the textbook factorial formula, independent of the recursion (small c only).
    fn erlang_c_factorial(c: u32, a: f64) -> f64 {
        let fact = |n: u32| (1..=n).map(f64::from).product::<f64>();
        let head: f64 = (0..c).map(|k| a.powi(k as i32) / fact(k)).sum();
        let tail = a.powi(c as i32) / fact(c) * f64::from(c) / (f64::from(c) - a);
        tail / (head + tail)
    }

    fn erlang_b_factorial(c: u32, a: f64) -> f64 {
        let fact = |n: u32| (1..=n).map(f64::from).product::<f64>();
        let all: f64 = (0..=c).map(|k| a.powi(k as i32) / fact(k)).sum();
        a.powi(c as i32) / fact(c) / all
    }

    fn close(x: f64, y: f64, tol: f64) -> bool {
        (x - y).abs() <= tol
    }

    #[test]
    fn two_agents_one_erlang_waits_a_third_of_the_time() {
        // c = 2, A = 1: P_w = 1/3, ASA = (1/3)·h/(2−1).
        let sys = ErlangC::new(2, 0.01, 100.0).expect("valid");
        assert!(close(sys.offered_load(), 1.0, 1e-12));
        assert!(close(sys.utilisation().expect("stable"), 0.5, 1e-12));
        assert!(close(sys.prob_wait().expect("stable"), 1.0 / 3.0, 1e-12));
        assert!(close(sys.asa_s().expect("stable"), 100.0 / 3.0, 1e-9));
        assert!(close(
            sys.mean_wait_of_waiters_s().expect("stable"),
            100.0,
            1e-9
        ));
        // Erlang B for c = 2, A = 1: (1/2) / (1 + 1 + 1/2) = 0.2.
        assert!(close(sys.erlang_b(), 0.2, 1e-12));
    }

    #[test]
    fn single_agent_is_mm1() {
        // M/M/1: P_w = ρ, ASA = ρ·h/(1−ρ).
        let sys = ErlangC::new(1, 0.6 / 30.0, 30.0).expect("valid");
        assert!(close(sys.prob_wait().expect("stable"), 0.6, 1e-12));
        assert!(close(sys.asa_s().expect("stable"), 0.6 * 30.0 / 0.4, 1e-9));
    }

    #[test]
    fn recursion_matches_factorial_formula() {
        for c in 1..=25u32 {
            for frac in [0.05, 0.3, 0.5, 0.8, 0.95, 0.999] {
                let a = f64::from(c) * frac;
                let sys = ErlangC::new(c, a / 60.0, 60.0).expect("valid");
                let pw = sys.prob_wait().expect("stable");
                let want = erlang_c_factorial(c, a);
                assert!(close(pw, want, 1e-10), "c={c} A={a}: {pw} vs {want}");
                assert!(close(sys.erlang_b(), erlang_b_factorial(c, a), 1e-12));
            }
        }
    }

    #[test]
    fn classic_call_centre_example() {
        // 100 calls in 30 minutes (200/h), AHT 180 s → A = 10 Erlangs; 80% in 20 s.
        // Published figures for 14 agents: P_w ≈ 17.4%, ASA ≈ 7.8 s, service level ≈ 88.8%.
        let sys = ErlangC::from_calls_per_hour(14, 200.0, 180.0).expect("valid");
        assert!(close(sys.offered_load(), 10.0, 1e-9));
        let pw = sys.prob_wait().expect("stable");
        let asa = sys.asa_s().expect("stable");
        let sl = sys.service_level(20.0).expect("stable");
        let pw_direct = erlang_c_factorial(14, 10.0);
        let asa_direct = pw_direct * 180.0 / 4.0;
        let sl_direct = 1.0 - pw_direct * (-(4.0 * 20.0) / 180.0_f64).exp();
        assert!(close(pw, pw_direct, 1e-10));
        assert!(close(asa, asa_direct, 1e-8));
        assert!(close(sl, sl_direct, 1e-10));
        assert!(close(pw, 0.17413, 1e-4), "{pw}");
        assert!(close(asa, 7.836, 1e-2), "{asa}");
        assert!(close(sl, 0.88835, 1e-4), "{sl}");
        assert!(close(
            sys.utilisation().expect("stable"),
            10.0 / 14.0,
            1e-12
        ));
        // 13 agents miss the 80/20 target, 14 meet it.
        let thirteen = ErlangC::from_calls_per_hour(13, 200.0, 180.0).expect("valid");
        assert!(thirteen.service_level(20.0).expect("stable") < 0.8);
        assert_eq!(
            agents_for_service_level(200.0 / 3600.0, 180.0, 20.0, 0.8).expect("staffing"),
            14
        );
    }

    #[test]
    fn three_hundred_sixty_calls_an_hour() {
        // λ = 360 calls/h = 0.1/s, h = 240 s → A = 24 Erlangs.
        let sys = ErlangC::from_calls_per_hour(28, 360.0, 240.0).expect("valid");
        assert!(close(sys.offered_load(), 24.0, 1e-9));
        let pw = sys.prob_wait().expect("stable");
        assert!(close(pw, erlang_c_factorial(28, 24.0), 1e-10));
        assert!(close(pw, 0.33314, 1e-4), "{pw}");
        let asa = sys.asa_s().expect("stable");
        assert!(close(asa, pw * 240.0 / 4.0, 1e-9));
        assert!(close(asa, 19.988, 1e-2), "{asa}");
        // Little's law.
        assert!(close(
            sys.mean_queue_length().expect("stable"),
            0.1 * asa,
            1e-12
        ));
    }

    #[test]
    fn more_agents_less_wait() {
        let mut prev: Option<(f64, f64, f64)> = None;
        for c in 25..=60 {
            let sys = ErlangC::from_calls_per_hour(c, 360.0, 240.0).expect("valid");
            let pw = sys.prob_wait().expect("stable");
            let asa = sys.asa_s().expect("stable");
            let sl = sys.service_level(20.0).expect("stable");
            assert!((0.0..=1.0).contains(&pw) && (0.0..=1.0).contains(&sl));
            if let Some((ppw, pasa, psl)) = prev {
                assert!(pw < ppw, "P_w must fall with agents (c={c})");
                assert!(asa < pasa, "ASA must fall with agents (c={c})");
                assert!(sl > psl, "service level must rise with agents (c={c})");
            }
            prev = Some((pw, asa, sl));
        }
        // And more load, more wait.
        let light = ErlangC::new(10, 0.05, 100.0).expect("valid");
        let heavy = ErlangC::new(10, 0.08, 100.0).expect("valid");
        assert!(light.prob_wait().expect("stable") < heavy.prob_wait().expect("stable"));
    }

    #[test]
    fn service_level_edges() {
        let sys = ErlangC::new(2, 0.01, 100.0).expect("valid");
        // At t = 0 the service level is the share not waiting at all.
        assert!(close(
            sys.service_level(0.0).expect("stable"),
            2.0 / 3.0,
            1e-12
        ));
        assert!(sys.service_level(1e9).expect("stable") > 1.0 - 1e-12);
        assert!(matches!(
            sys.service_level(-1.0),
            Err(ErlangError::InvalidInput(_))
        ));
        assert!(matches!(
            sys.service_level(f64::NAN),
            Err(ErlangError::InvalidInput(_))
        ));
    }

    #[test]
    fn no_traffic_no_wait() {
        let sys = ErlangC::new(3, 0.0, 120.0).expect("valid");
        assert_eq!(sys.prob_wait(), Ok(0.0));
        assert_eq!(sys.asa_s(), Ok(0.0));
        assert_eq!(sys.service_level(0.0), Ok(1.0));
    }

    #[test]
    fn overload_is_reported_not_computed() {
        // A = c exactly, and A > c.
        for (c, lambda) in [(2u32, 0.02), (2, 0.05), (1, 1.0)] {
            let sys = ErlangC::new(c, lambda, 100.0).expect("valid");
            assert!(!sys.is_stable());
            let want = ErlangError::Overloaded {
                offered_load: lambda * 100.0,
                agents: c,
            };
            assert_eq!(sys.prob_wait(), Err(want.clone()));
            assert_eq!(sys.asa_s(), Err(want.clone()));
            assert_eq!(sys.service_level(20.0), Err(want.clone()));
            assert_eq!(sys.utilisation(), Err(want.clone()));
            assert!(want.to_string().contains("overloaded"));
            // Erlang B still exists for a loss system.
            assert!((0.0..=1.0).contains(&sys.erlang_b()));
        }
    }

    #[test]
    fn bad_inputs_are_rejected() {
        assert!(matches!(
            ErlangC::new(0, 0.1, 10.0),
            Err(ErlangError::InvalidInput(_))
        ));
        assert!(matches!(
            ErlangC::new(1, -0.1, 10.0),
            Err(ErlangError::InvalidInput(_))
        ));
        assert!(matches!(
            ErlangC::new(1, f64::NAN, 10.0),
            Err(ErlangError::InvalidInput(_))
        ));
        assert!(matches!(
            ErlangC::new(1, 0.1, 0.0),
            Err(ErlangError::InvalidInput(_))
        ));
        assert!(matches!(
            ErlangC::new(1, 0.1, f64::INFINITY),
            Err(ErlangError::InvalidInput(_))
        ));
        assert!(matches!(
            agents_for_service_level(0.1, 10.0, 20.0, 1.0),
            Err(ErlangError::InvalidInput(_))
        ));
    }

    #[test]
    fn large_systems_stay_finite() {
        // Factorials of 2,000 overflow f64; the recursion does not.
        let sys = ErlangC::new(2_000, 1_950.0 / 180.0, 180.0).expect("valid");
        let pw = sys.prob_wait().expect("stable");
        let asa = sys.asa_s().expect("stable");
        assert!(pw.is_finite() && pw > 0.0 && pw < 1.0, "{pw}");
        assert!(asa.is_finite() && asa > 0.0, "{asa}");
        let more = ErlangC::new(2_010, 1_950.0 / 180.0, 180.0).expect("valid");
        assert!(more.prob_wait().expect("stable") < pw);
        // Very lightly loaded: P_w underflows gracefully towards 0.
        let idle = ErlangC::new(5_000, 1.0 / 180.0, 180.0).expect("valid");
        assert!(idle.prob_wait().expect("stable") >= 0.0);
        assert!(idle.prob_wait().expect("stable") < 1e-12);
    }

    #[test]
    fn staffing_search_finds_the_smallest_team() {
        // A = 24 (360/h, 240 s): check the answer against its neighbour.
        let c = agents_for_service_level(0.1, 240.0, 20.0, 0.8).expect("staffing");
        let at = ErlangC::new(c, 0.1, 240.0).expect("valid");
        let below = ErlangC::new(c - 1, 0.1, 240.0).expect("valid");
        assert!(at.service_level(20.0).expect("stable") >= 0.8);
        assert!(!below.is_stable() || below.service_level(20.0).expect("stable") < 0.8);
        // Zero traffic needs one agent.
        assert_eq!(agents_for_service_level(0.0, 240.0, 20.0, 0.8), Ok(1));
    }
}
