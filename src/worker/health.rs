//! What the worker knows about its own fitness, for `/readyz`: whether Twilio refused it in a
//! way only an operator can fix (bad credentials, a wrong account or API base). Set by the
//! REST paths when Twilio answers 401/403/404, cleared by the next request Twilio accepts. An
//! outage (5xx, timeouts) is not a misconfiguration: the circuit breaker handles it.

use std::sync::Mutex;

use tokio::time::Instant;

use crate::twilio::rest::RestError;

/// Shared by every task of one worker.
#[derive(Debug, Default)]
pub struct TwilioHealth {
    /// The last misconfiguration seen and when, until a request succeeds.
    refused: Mutex<Option<(Instant, String)>>,
}

impl TwilioHealth {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, String)>> {
        self.refused.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Twilio refused a request in a way that points at the configuration.
    pub fn misconfigured(&self, e: &RestError) {
        let mut g = self.lock();
        if g.is_none() {
            tracing::error!(error = %e, "Twilio refuses this worker's requests: check TWILIO_API_BASE, TWILIO_ACCOUNT_SID and the credentials; calls wait in line meanwhile");
        }
        *g = Some((Instant::now(), e.to_string()));
        metrics::gauge!("callq_twilio_misconfigured").set(1.0);
    }

    /// Twilio accepted a request: whatever was wrong is fixed.
    pub fn accepted(&self) {
        let mut g = self.lock();
        if g.take().is_some() {
            tracing::info!("Twilio accepts this worker's requests again");
            metrics::gauge!("callq_twilio_misconfigured").set(0.0);
        }
    }

    /// Why the worker is not ready, if it is not.
    pub fn problem(&self) -> Option<String> {
        self.lock().as_ref().map(|(_, why)| why.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_makes_the_worker_unready_until_twilio_accepts_again() {
        let h = TwilioHealth::default();
        assert_eq!(h.problem(), None);
        let e = RestError::from_response(401, br#"{"code":20003,"message":"Authenticate"}"#);
        h.misconfigured(&e);
        assert!(h.problem().is_some_and(|p| p.contains("20003")));
        h.accepted();
        assert_eq!(h.problem(), None);
    }
}
