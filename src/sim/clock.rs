//! Time compression. callq runs on real time (its ring timeouts, wrap-up, heartbeat TTLs and
//! the TwiML it writes are all real seconds); the people in the simulation (callers' patience
//! and talk, agents' answer delay, devices dropping) live on a simulated clock that runs
//! `factor` times faster, so a working day's minutes of talk pass in seconds.
//!
//! Everything a person does is drawn in simulated seconds and turned into a real [`Duration`]
//! here; every measurement is taken in real time and turned back into simulated seconds for
//! the report (the milliseconds of callq's own latency stay real).

use std::time::Duration;

use rand::Rng;

/// Real time per simulated time: `factor` simulated seconds pass in one real second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    factor: f64,
}

impl Clock {
    /// `factor` ≥ 1 (1 = real time). Out-of-range values are clamped to 1.
    pub fn new(factor: f64) -> Self {
        let factor = if factor.is_finite() && factor >= 1.0 {
            factor
        } else {
            1.0
        };
        Self { factor }
    }

    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// The real duration of `sim_s` simulated seconds (negative and NaN count as zero).
    pub fn real(&self, sim_s: f64) -> Duration {
        if sim_s.is_nan() || sim_s <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64((sim_s / self.factor).min(86_400.0 * 365.0))
    }

    /// Simulated seconds that pass during `real`.
    pub fn sim_s(&self, real: Duration) -> f64 {
        real.as_secs_f64() * self.factor
    }

    /// An exponential draw of mean `mean_sim_s` simulated seconds, as real time.
    pub fn exp<R: Rng + ?Sized>(&self, rng: &mut R, mean_sim_s: f64) -> Duration {
        self.real(exp_draw(rng, mean_sim_s))
    }
}

/// One draw from the exponential distribution with the given mean (0 for a mean ≤ 0).
pub fn exp_draw<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> f64 {
    if mean.is_nan() || mean <= 0.0 {
        return 0.0;
    }
    // 1 - U is in (0, 1], so the logarithm is finite
    let u: f64 = rng.random::<f64>();
    -mean * (1.0 - u).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn compression_converts_both_ways() {
        let c = Clock::new(60.0);
        assert_eq!(c.real(120.0), Duration::from_secs(2));
        assert!((c.sim_s(Duration::from_millis(500)) - 30.0).abs() < 1e-9);
        assert_eq!(c.real(-3.0), Duration::ZERO);
        assert_eq!(Clock::new(0.2).factor(), 1.0);
        assert_eq!(Clock::new(f64::NAN).factor(), 1.0);
    }

    #[test]
    fn exponential_draws_have_the_requested_mean() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let n = 200_000;
        let mean = (0..n).map(|_| exp_draw(&mut rng, 180.0)).sum::<f64>() / n as f64;
        assert!((mean - 180.0).abs() < 2.0, "mean {mean}");
        assert_eq!(exp_draw(&mut rng, 0.0), 0.0);
    }
}
