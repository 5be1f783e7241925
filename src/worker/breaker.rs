//! The worker's circuit breaker around Twilio's REST API. After a run of failed requests
//! (5xx, 429, timeouts, no connection) Twilio is taken to be down: every request fails fast
//! with [`RestError::CircuitOpen`] without touching the network, and the worker claims nothing
//! (calls wait in Redis at their rank). After a cool-down one trial request goes through; its
//! success closes the breaker. The REST client consults it as its [`RequestGate`]; the worker
//! reads [`CircuitBreaker::state`] to decide whether to claim.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::twilio::rest::{RequestGate, RequestPass, RestError};

/// What the breaker would do with the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Requests fail fast with [`RestError::CircuitOpen`].
    Open,
    /// The cool-down is over: the next request is the single trial; others fail fast until it
    /// ends.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_in_flight: bool },
}

/// Shared (via `Arc`) by every client of one upstream. Opens after `failure_threshold`
/// consecutive retryable failures; stays open for `cool_down`; then lets one trial request
/// through: its success closes the breaker, its failure opens it for another cool-down.
/// Non-retryable answers (e.g. 21220) count as successes: Twilio is up.
#[derive(Debug)]
pub struct CircuitBreaker {
    failure_threshold: u32,
    cool_down: Duration,
    phase: Mutex<Phase>,
}

impl CircuitBreaker {
    pub fn new(failure_threshold: u32, cool_down: Duration) -> Self {
        Self {
            failure_threshold: failure_threshold.max(1),
            cool_down,
            phase: Mutex::new(Phase::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        // No code panics while holding the lock; recover the state if it ever did.
        self.phase
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        self.state_at(Instant::now())
    }

    fn state_at(&self, now: Instant) -> BreakerState {
        match *self.lock() {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { until } if now < until => BreakerState::Open,
            Phase::Open { .. } | Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to send one request. The permit must be resolved with [`BreakerPermit::record`]
    /// (or `success` / `failure`); dropping it unresolved (e.g. the request was cancelled)
    /// leaves the counts alone and frees the half-open trial slot.
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, RestError> {
        self.try_acquire_at(Instant::now())
    }

    fn try_acquire_at(&self, now: Instant) -> Result<BreakerPermit<'_>, RestError> {
        let mut phase = self.lock();
        let trial = match *phase {
            Phase::Closed { .. } => false,
            Phase::Open { until } if now < until => return Err(RestError::CircuitOpen),
            Phase::Open { .. }
            | Phase::HalfOpen {
                trial_in_flight: false,
            } => {
                *phase = Phase::HalfOpen {
                    trial_in_flight: true,
                };
                true
            }
            Phase::HalfOpen {
                trial_in_flight: true,
            } => return Err(RestError::CircuitOpen),
        };
        Ok(BreakerPermit {
            breaker: self,
            trial,
            resolved: false,
        })
    }

    fn on_success(&self, trial: bool) {
        let mut phase = self.lock();
        match *phase {
            Phase::Closed { .. } => *phase = Phase::Closed { failures: 0 },
            Phase::HalfOpen { .. } if trial => *phase = Phase::Closed { failures: 0 },
            // A request that started before the breaker opened says nothing about the trial.
            _ => {}
        }
    }

    fn on_failure(&self, trial: bool, now: Instant) {
        let mut phase = self.lock();
        match *phase {
            Phase::Closed { failures } => {
                let failures = failures.saturating_add(1);
                *phase = if failures >= self.failure_threshold {
                    tracing::warn!(
                        failures,
                        cool_down_ms = self.cool_down.as_millis() as u64,
                        "Twilio circuit breaker opened"
                    );
                    Phase::Open {
                        until: now + self.cool_down,
                    }
                } else {
                    Phase::Closed { failures }
                };
            }
            Phase::HalfOpen { .. } if trial => {
                tracing::warn!("Twilio circuit breaker trial failed; open again");
                *phase = Phase::Open {
                    until: now + self.cool_down,
                };
            }
            _ => {}
        }
    }

    fn on_abandon(&self, trial: bool) {
        if !trial {
            return;
        }
        let mut phase = self.lock();
        if let Phase::HalfOpen { .. } = *phase {
            *phase = Phase::HalfOpen {
                trial_in_flight: false,
            };
        }
    }
}

/// Leave to send one request through a [`CircuitBreaker`].
#[derive(Debug)]
#[must_use = "resolve the permit with record(), success() or failure()"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    trial: bool,
    resolved: bool,
}

impl BreakerPermit<'_> {
    /// Whether this is the single half-open trial request.
    pub fn is_trial(&self) -> bool {
        self.trial
    }

    pub fn success(mut self) {
        self.resolved = true;
        self.breaker.on_success(self.trial);
    }

    pub fn failure(self) {
        self.failure_at(Instant::now());
    }

    fn failure_at(mut self, now: Instant) {
        self.resolved = true;
        self.breaker.on_failure(self.trial, now);
    }

    /// Success unless the result is a [retryable](RestError::is_retryable) error.
    pub fn record<T>(self, result: &Result<T, RestError>) {
        self.resolve(result.as_ref().err());
    }

    fn resolve(self, error: Option<&RestError>) {
        match error {
            Some(e) if e.is_retryable() => self.failure(),
            _ => self.success(),
        }
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if !self.resolved {
            self.breaker.on_abandon(self.trial);
        }
    }
}

impl RequestGate for CircuitBreaker {
    fn admit(&self) -> Result<Box<dyn RequestPass + '_>, RestError> {
        Ok(Box::new(self.try_acquire()?))
    }
}

impl RequestPass for BreakerPermit<'_> {
    fn finish(self: Box<Self>, error: Option<&RestError>) {
        (*self).resolve(error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_state_machine() {
        let cool = Duration::from_secs(10);
        let b = CircuitBreaker::new(3, cool);
        let t0 = Instant::now();
        assert_eq!(b.state_at(t0), BreakerState::Closed);
        // Two failures, a success resets the count, then three in a row open it.
        b.try_acquire_at(t0).expect("closed").failure();
        b.try_acquire_at(t0).expect("closed").failure();
        b.try_acquire_at(t0).expect("closed").success();
        b.try_acquire_at(t0).expect("closed").failure();
        b.try_acquire_at(t0).expect("closed").failure();
        assert_eq!(b.state_at(t0), BreakerState::Closed);
        let before_open = Instant::now();
        b.try_acquire_at(t0).expect("closed").failure();
        assert_eq!(b.state_at(before_open), BreakerState::Open);
        assert!(matches!(
            b.try_acquire_at(before_open),
            Err(RestError::CircuitOpen)
        ));

        // After the cool-down exactly one trial goes through.
        let later = Instant::now() + cool + Duration::from_millis(1);
        assert_eq!(b.state_at(later), BreakerState::HalfOpen);
        let trial = b.try_acquire_at(later).expect("trial");
        assert!(trial.is_trial());
        assert!(matches!(
            b.try_acquire_at(later),
            Err(RestError::CircuitOpen)
        ));
        // A cancelled trial frees the slot.
        drop(trial);
        let trial = b.try_acquire_at(later).expect("trial again");
        // A failed trial opens the breaker for another cool-down.
        trial.failure_at(later);
        assert_eq!(b.state_at(later), BreakerState::Open);
        let much_later = later + cool + cool;
        let trial = b.try_acquire_at(much_later).expect("trial");
        trial.success();
        assert_eq!(b.state_at(much_later), BreakerState::Closed);
        b.try_acquire_at(much_later).expect("closed").success();
    }

    #[test]
    fn breaker_ignores_non_trial_results_while_not_closed() {
        let b = CircuitBreaker::new(1, Duration::from_secs(10));
        let now = Instant::now();
        let old = b.try_acquire_at(now).expect("closed");
        b.try_acquire_at(now).expect("closed").failure();
        assert_eq!(b.state_at(now), BreakerState::Open);
        // A request that began before the breaker opened does not close it.
        old.success();
        assert_eq!(b.state_at(now), BreakerState::Open);
    }
}
