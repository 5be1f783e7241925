//! The contact centre's KPIs as Prometheus metrics, counted where every transition passes:
//! the store's typed script wrappers call these once a transition is done (never for a stale
//! one, so a duplicated or late webhook counts nothing). Each process counts what it ran;
//! Prometheus sums the replicas. Names and labels are documented in README ("Metrics").

use std::time::Duration;

use super::CallKind;

/// A call entered a queue (new, not a repeated webhook).
pub(crate) fn entered(queue: &str, kind: CallKind) {
    metrics::counter!("callq_calls_entered_total", "queue" => queue.to_string(), "kind" => kind.as_str())
        .increment(1);
}

/// What became of an offer (answered, no-answer, busy, failed, canceled, refused).
pub(crate) fn offer_result(queue: &str, outcome: &str) {
    metrics::counter!("callq_offer_results_total", "queue" => queue.to_string(), "outcome" => outcome.to_string())
        .increment(1);
}

/// An agent answered: the call is connected after `waited` in line (since it entered).
pub(crate) fn answered(queue: &str, kind: &str, attempt: u32, waited: Duration) {
    metrics::counter!("callq_calls_answered_total", "queue" => queue.to_string(), "kind" => kind.to_string())
        .increment(1);
    if attempt == 1 {
        metrics::counter!("callq_calls_answered_first_offer_total", "queue" => queue.to_string())
            .increment(1);
    }
    metrics::histogram!("callq_wait_to_answer_seconds", "queue" => queue.to_string(), "kind" => kind.to_string())
        .record(waited.as_secs_f64());
}

/// The caller left before an agent answered.
pub(crate) fn abandoned(queue: &str) {
    metrics::counter!("callq_calls_abandoned_total", "queue" => queue.to_string()).increment(1);
}

/// The call left for the queue's overflow action (max wait, or Twilio refused it for good).
pub(crate) fn overflowed(queue: &str) {
    metrics::counter!("callq_calls_overflowed_total", "queue" => queue.to_string()).increment(1);
}

/// A connected call ended.
pub(crate) fn completed(queue: &str, kind: &str) {
    metrics::counter!("callq_calls_completed_total", "queue" => queue.to_string(), "kind" => kind.to_string())
        .increment(1);
}

/// A waiting caller asked to be called back.
pub(crate) fn callback_requested(queue: &str) {
    metrics::counter!("callq_callbacks_requested_total", "queue" => queue.to_string()).increment(1);
}

/// A callback's customer was not reached: `retry` later, or failed for good.
pub(crate) fn callback_missed(queue: &str, retry: bool) {
    let result = if retry { "retry" } else { "failed" };
    metrics::counter!("callq_callbacks_missed_total", "queue" => queue.to_string(), "result" => result)
        .increment(1);
}
