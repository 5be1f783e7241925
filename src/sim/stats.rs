//! What the simulator measures from the phone side: webhook latency (its own HTTP client),
//! assignment latency (a call waiting and an agent ready → the REST request reaching it),
//! double bookings (a device ringing with more live legs than its capacity), announced
//! estimated waits, processing time (a caller and a free agent both there → that agent's
//! phone ringing), what the old phone system did (nobody free, rang out), the log of every
//! finished call, and the faults it injected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::time::Instant;

use super::twiml_exec::{CallLog, Outcome};

/// Shared, cheap to update from any task.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Inner>,
    pub double_bookings: AtomicU64,
    pub rest_requests: AtomicU64,
    pub rest_faults: AtomicU64,
    /// REST refusals injected, by HTTP status.
    pub rest_429: AtomicU64,
    pub rest_500: AtomicU64,
    pub rest_404: AtomicU64,
    pub rest_400: AtomicU64,
    pub webhooks_dropped: AtomicU64,
    pub webhooks_duplicated: AtomicU64,
    pub webhooks_delayed: AtomicU64,
    /// Callback customers' rings let ring out, and answered busy.
    pub customers_no_answer: AtomicU64,
    pub customers_busy: AtomicU64,
    pub offered: AtomicU64,
    /// Calls the old phone system found no free agent for.
    pub legacy_nobody_free: AtomicU64,
    /// Calls the old phone system rang an agent for, who let it ring out.
    pub legacy_rang_out: AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    webhook_ms: Vec<f64>,
    webhook_errors: u64,
    assign_ms: Vec<f64>,
    /// Inbound CallSid → processing time of its first ring (real ms).
    processing_ms: HashMap<String, f64>,
    /// CallSid → the first wait estimate the caller heard
    ewt: HashMap<String, Estimate>,
    estimated: std::collections::HashSet<String>,
    /// original CallSid → when the customer was reached on the callback
    callbacks_reached: HashMap<String, Instant>,
    logs: Vec<CallLog>,
    /// When each device started ringing with a call (a leg within its capacity).
    rings: Vec<Instant>,
    answered: u64,
    abandoned: u64,
}

impl Stats {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn webhook(&self, ms: f64, ok: bool) {
        self.with(|i| {
            i.webhook_ms.push(ms);
            if !ok {
                i.webhook_errors += 1;
            }
        });
    }

    pub fn assignment(&self, ms: f64) {
        self.with(|i| i.assign_ms.push(ms));
    }

    /// The first ring of the inbound call `sid` came `ms` (real) after the caller and a free
    /// agent were both there; later rings of the call are not counted.
    pub fn first_ring(&self, sid: &str, ms: f64) {
        self.with(|i| {
            i.processing_ms.entry(sid.to_string()).or_insert(ms);
        });
    }

    /// A device started ringing with a call at `at` (an assignment reached the phone side).
    pub fn rang(&self, at: Instant) {
        self.with(|i| i.rings.push(at));
    }

    /// The first ring at or after `since`, if any yet.
    pub fn first_ring_since(&self, since: Instant) -> Option<Instant> {
        self.with(|i| i.rings.iter().copied().filter(|r| *r >= since).min())
    }

    /// True the first time it is asked about `sid` (one estimate per call).
    pub fn first_estimate(&self, sid: &str) -> bool {
        self.with(|i| i.estimated.insert(sid.to_string()))
    }

    pub fn announced(&self, sid: &str, estimate: Estimate) {
        self.with(|i| {
            i.ewt.entry(sid.to_string()).or_insert(estimate);
        });
    }

    pub fn callback_reached(&self, original_sid: &str) {
        self.with(|i| {
            i.callbacks_reached
                .entry(original_sid.to_string())
                .or_insert_with(Instant::now);
        });
    }

    pub fn finished(&self, log: CallLog) {
        self.with(|i| {
            match log.outcome() {
                Outcome::Answered => i.answered += 1,
                Outcome::Abandoned => i.abandoned += 1,
                _ => {}
            }
            i.logs.push(log)
        });
    }

    /// Callers who asked for a callback and have not been reached yet.
    pub fn callbacks_unserved(&self) -> usize {
        self.callbacks_unserved_sids().len()
    }

    /// The CallSids of callers who asked for a callback and have not been reached yet,
    /// including those who pressed the key and hung up before callq's answer played (Twilio
    /// still sent the key, so callq may have taken the request and will call back).
    pub fn callbacks_unserved_sids(&self) -> Vec<String> {
        self.with(|i| {
            i.logs
                .iter()
                .filter(|l| l.outcome() == Outcome::Callback || l.callback_pressed)
                .filter(|l| !i.callbacks_reached.contains_key(&l.info.sid))
                .map(|l| l.info.sid.clone())
                .collect()
        })
    }

    /// A REST refusal was injected with this HTTP status.
    pub fn rest_fault(&self, status: u16) {
        self.rest_faults.fetch_add(1, Ordering::Relaxed);
        let c = match status {
            429 => &self.rest_429,
            404 => &self.rest_404,
            400 => &self.rest_400,
            _ => &self.rest_500,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The faults injected so far.
    pub fn injected(&self) -> Injected {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Injected {
            webhooks_dropped: n(&self.webhooks_dropped),
            webhooks_duplicated: n(&self.webhooks_duplicated),
            webhooks_delayed: n(&self.webhooks_delayed),
            rest_429: n(&self.rest_429),
            rest_500: n(&self.rest_500),
            rest_404: n(&self.rest_404),
            rest_400: n(&self.rest_400),
            customers_no_answer: n(&self.customers_no_answer),
            customers_busy: n(&self.customers_busy),
        }
    }

    /// (answered, abandoned) so far, for a live status line.
    pub fn counts(&self) -> (u64, u64) {
        self.with(|i| (i.answered, i.abandoned))
    }

    /// A copy of everything measured so far.
    pub fn snapshot(&self) -> Measured {
        self.with(|i| Measured {
            webhook_ms: i.webhook_ms.clone(),
            webhook_errors: i.webhook_errors,
            assign_ms: i.assign_ms.clone(),
            processing_ms: i.processing_ms.clone(),
            ewt: i.ewt.clone(),
            callbacks_reached: i.callbacks_reached.clone(),
            logs: i.logs.clone(),
            double_bookings: self.double_bookings.load(Ordering::Relaxed),
            rest_requests: self.rest_requests.load(Ordering::Relaxed),
            rest_faults: self.rest_faults.load(Ordering::Relaxed),
            injected: self.injected(),
            legacy_nobody_free: self.legacy_nobody_free.load(Ordering::Relaxed),
            legacy_rang_out: self.legacy_rang_out.load(Ordering::Relaxed),
        })
    }
}

/// The faults the simulator injected (see [`super::faults`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Injected {
    pub webhooks_dropped: u64,
    pub webhooks_duplicated: u64,
    pub webhooks_delayed: u64,
    /// REST requests refused, by HTTP status (429, 500, 404, 400).
    pub rest_429: u64,
    pub rest_500: u64,
    pub rest_404: u64,
    pub rest_400: u64,
    /// Rings of callback customers who let it ring out.
    pub customers_no_answer: u64,
    /// Rings of callback customers answered busy.
    pub customers_busy: u64,
}

impl Injected {
    pub fn any(&self) -> bool {
        *self != Injected::default()
    }
}

/// The wait a caller was told as they joined the line, next to the naive yardstick.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    /// When the caller joined the line (real time).
    pub at: Instant,
    /// callq's estimate, seconds of callq's clock.
    pub callq_s: f64,
    /// The textbook estimate at the same moment: position × mean handle time ÷ agents
    /// taking calls (None when nobody took calls).
    pub naive_s: Option<f64>,
}

/// Everything measured, copied out of [`Stats`].
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub webhook_ms: Vec<f64>,
    pub webhook_errors: u64,
    pub assign_ms: Vec<f64>,
    /// Inbound CallSid → processing time of its first ring (real ms).
    pub processing_ms: HashMap<String, f64>,
    pub ewt: HashMap<String, Estimate>,
    pub callbacks_reached: HashMap<String, Instant>,
    pub logs: Vec<CallLog>,
    pub double_bookings: u64,
    pub rest_requests: u64,
    pub rest_faults: u64,
    pub injected: Injected,
    pub legacy_nobody_free: u64,
    pub legacy_rang_out: u64,
}

/// The `p`-th percentile (0-100) by nearest rank; None for no samples.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

pub fn mean(samples: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (n, sum) = samples
        .into_iter()
        .fold((0u64, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(mean([1.0, 2.0, 6.0]), Some(3.0));
        assert_eq!(mean(std::iter::empty()), None);
    }
}
