//! Retrying a Twilio request under a deadline: [`Backoff`] (full-jitter exponential),
//! [`with_retry`] for requests that are safe to repeat and [`with_retry_if`] for those that
//! are not (creating a call).

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::error::RestError;

/// Full-jitter exponential backoff: before retry `n` (0-based) sleep a uniform random time in
/// `[0, min(cap, base · 2ⁿ)]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    /// Total attempts including the first; at least 1 is always made.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(2),
            max_attempts: 8,
        }
    }
}

impl Backoff {
    /// The upper bound of the sleep before retry `retry` (0-based).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(31));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A full-jitter sleep before retry `retry` (0-based).
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

/// Runs `op`, retrying [retryable](RestError::is_retryable) errors with `policy`'s backoff, and
/// never past `deadline`: an attempt still running at the deadline is abandoned with
/// [`RestError::Timeout`], and no retry is started whose sleep would reach it. Returns the first
/// success or the last error. If the deadline has already passed, `op` is not called and the
/// answer is `Timeout`.
///
/// Creating a call is not idempotent: a retried timeout may place the call twice. For that,
/// use [`with_retry_if`] with [`RestError::is_unprocessed`].
pub async fn with_retry<F, Fut, T>(
    deadline: Instant,
    policy: &Backoff,
    op: F,
) -> Result<T, RestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RestError>>,
{
    with_retry_if(deadline, policy, RestError::is_retryable, op).await
}

/// [`with_retry`] with a caller-chosen test of which errors to retry.
pub async fn with_retry_if<F, Fut, T, P>(
    deadline: Instant,
    policy: &Backoff,
    should_retry: P,
    mut op: F,
) -> Result<T, RestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RestError>>,
    P: Fn(&RestError) -> bool,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt: u32 = 0;
    loop {
        if Instant::now() >= deadline {
            return Err(RestError::Timeout);
        }
        attempt += 1;
        let err = match tokio::time::timeout_at(deadline, op()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => err,
            Err(_elapsed) => RestError::Timeout,
        };
        if attempt >= max_attempts || !should_retry(&err) {
            return Err(err);
        }
        let wake = Instant::now() + policy.delay(attempt - 1);
        if wake >= deadline {
            tracing::debug!(attempt, error = %err, "Twilio request failed; no time left to retry");
            return Err(err);
        }
        tracing::debug!(attempt, error = %err, "Twilio request failed; retrying");
        tokio::time::sleep_until(wake).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_full_jitter_exponential_and_capped() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_attempts: 10,
        };
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(1), Duration::from_millis(200));
        assert_eq!(b.ceiling(3), Duration::from_millis(800));
        assert_eq!(b.ceiling(4), Duration::from_secs(1));
        assert_eq!(b.ceiling(1_000), Duration::from_secs(1));
        let samples: Vec<Duration> = (0..200).map(|_| b.delay(2)).collect();
        assert!(samples.iter().all(|d| *d <= Duration::from_millis(400)));
        assert!(samples.iter().any(|d| *d < Duration::from_millis(200)));
        assert!(samples.iter().any(|d| *d > Duration::from_millis(200)));
        let zero = Backoff {
            base: Duration::ZERO,
            ..b
        };
        assert_eq!(zero.delay(5), Duration::ZERO);
    }
}
