//! The faults the simulator injects, all through Twilio's own protocol, each a rate or a span
//! ([`Faults`], whose `Default` injects nothing), drawn from the run's seed:
//!
//! - **Webhooks** ([`WebhookFaults`], applied in [`super::webhook`]). Twilio sends three kinds
//!   of request, and not every fault can happen to every kind:
//!   - *status callbacks* (the number's `/twilio/status`, a `<Client>`'s or a created call's
//!     `statusCallback` such as `/twilio/agent-leg`): sent once, never retried, never waited
//!     for. They may be **dropped** (never delivered), **duplicated** (delivered twice, the copy
//!     a little later) and **delayed** (held back a random time up to `max_delay`, which
//!     reorders them against each other and against later TwiML requests).
//!   - *TwiML requests* (the voice URL, `waitUrl`, `<Gather>` actions, `<Enqueue action>` after
//!     `<Leave/>`, `<Dial action>` such as `/twilio/dial-result` and `/twilio/callback-result`):
//!     Twilio waits for the answer, since the call cannot go on without it, so they are never
//!     dropped; they may be **duplicated** (Twilio retried: both copies reach callq, Twilio runs
//!     one answer, either one) and **delayed** (the call waits meanwhile).
//!   - *actions whose answer is ignored* (`<Enqueue action>` after a redirect or a hang-up,
//!     `<Dial action>` after a REST update, `<Record action>`): duplicated and delayed, never
//!     dropped.
//! - **Callback customers** ([`CustomerFaults`]): a share who let the phone ring out (the
//!   `<Dial>` ends `no-answer` after its timeout) and a share who are `busy`.
//! - **REST** ([`RestFaults`], applied in [`super::rest`]): shares of requests refused before
//!   anything is done, by code: 429 (20429), 500 (20500), 404 (20404), and, for writes only,
//!   400 (21210 on an update, 21211 on a create); plus the older `error_rate` (half 429, half
//!   500) and a fixed `delay` on every answer.
//!
//! Every draw comes from a generator seeded with the run's seed, so a seed draws the same
//! sequence of decisions; which request meets which decision still depends on timing.

use std::time::Duration;

use axum::http::StatusCode;
use rand::Rng;

/// Everything the simulator injects. `Faults::default()` injects nothing.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    pub webhooks: WebhookFaults,
    pub customers: CustomerFaults,
    pub rest: RestFaults,
}

impl Faults {
    /// True when nothing is injected (a delay bound alone injects nothing).
    pub fn is_none(&self) -> bool {
        self.webhooks.is_none()
            && self.customers.is_none()
            && self.rest.is_none()
            && self.rest.delay.is_zero()
    }
}

/// Webhook faults: shares of requests (0 to 1) and the longest extra delay (real time).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WebhookFaults {
    /// Status callbacks never delivered.
    pub drop: f64,
    /// Requests delivered twice.
    pub duplicate: f64,
    /// Requests held back by a uniform random time in `[0, max_delay]`.
    pub delay: f64,
    pub max_delay: Duration,
}

/// Which kind of request a webhook is (what may happen to it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A TwiML request: Twilio waits for its answer.
    Twiml,
    /// A request whose answer Twilio ignores (an action after the call moved on).
    Ignored,
    /// A status callback: sent once, never retried.
    StatusCallback,
}

/// What happens to one webhook request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Plan {
    /// Never delivered.
    pub drop: bool,
    /// Held back this long before it is sent.
    pub delay: Option<Duration>,
    /// Sent a second time, this long after the first.
    pub copy_after: Option<Duration>,
}

/// The gap before a duplicate when no delay bound is set.
const DEFAULT_COPY_GAP: Duration = Duration::from_millis(250);

impl WebhookFaults {
    pub fn is_none(&self) -> bool {
        self.drop <= 0.0 && self.duplicate <= 0.0 && self.delay <= 0.0
    }

    /// Draws what happens to one request of kind `kind`. Only status callbacks are dropped;
    /// a dropped request is neither delayed nor copied.
    pub fn plan<R: Rng + ?Sized>(&self, kind: Delivery, rng: &mut R) -> Plan {
        let mut p = Plan::default();
        if self.is_none() {
            return p;
        }
        // one draw per fault, always in this order, so decisions do not shift with the kind
        let (d, u, l) = (
            rng.random::<f64>(),
            rng.random::<f64>(),
            rng.random::<f64>(),
        );
        let (g, x) = (rng.random::<f64>(), rng.random::<f64>());
        if kind == Delivery::StatusCallback && d < self.drop {
            p.drop = true;
            return p;
        }
        if l < self.delay {
            p.delay = Some(self.max_delay.mul_f64(x));
        }
        if u < self.duplicate {
            let gap = if self.max_delay.is_zero() {
                DEFAULT_COPY_GAP
            } else {
                self.max_delay
            };
            p.copy_after = Some(gap.mul_f64(g));
        }
        p
    }
}

/// Callback customers who do not pick up.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CustomerFaults {
    /// Share of rings the customer lets ring out (`no-answer` after the `<Dial>` timeout).
    pub no_answer: f64,
    /// Share of rings answered `busy`.
    pub busy: f64,
}

/// How a customer's phone answers one ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerPick {
    Answers,
    RingsOut,
    Busy,
}

impl CustomerFaults {
    pub fn is_none(&self) -> bool {
        self.no_answer <= 0.0 && self.busy <= 0.0
    }

    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> CustomerPick {
        if self.is_none() {
            return CustomerPick::Answers;
        }
        let u = rng.random::<f64>();
        if u < self.no_answer {
            CustomerPick::RingsOut
        } else if u < self.no_answer + self.busy {
            CustomerPick::Busy
        } else {
            CustomerPick::Answers
        }
    }
}

/// REST faults: shares of requests (0 to 1) refused before processing, by HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RestFaults {
    /// Refused with 429 or 500, half each (on top of the per-code shares).
    pub error_rate: f64,
    /// 429, code 20429.
    pub rate_429: f64,
    /// 500, code 20500.
    pub rate_500: f64,
    /// 404, code 20404 (as if the call were unknown).
    pub rate_404: f64,
    /// 400 on writes only: 21210 on an update, 21211 on a create.
    pub rate_400: f64,
    /// Added to every answer.
    pub delay: Duration,
}

/// Which REST operation a request is (the 400 codes differ, reads never get one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestOp {
    Read,
    Update,
    Create,
}

/// A refusal to inject: HTTP status, Twilio code, message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: u32,
    pub message: &'static str,
}

const TOO_MANY: Refusal = Refusal {
    status: StatusCode::TOO_MANY_REQUESTS,
    code: 20429,
    message: "Too Many Requests",
};
const SERVER: Refusal = Refusal {
    status: StatusCode::INTERNAL_SERVER_ERROR,
    code: 20500,
    message: "Internal Server Error",
};

impl RestFaults {
    pub fn is_none(&self) -> bool {
        [
            self.error_rate,
            self.rate_429,
            self.rate_500,
            self.rate_404,
            self.rate_400,
        ]
        .iter()
        .all(|r| *r <= 0.0)
    }

    /// Draws whether a request of `op` is refused, and how. The shares stack in the order
    /// 429, 500, 404, 400, `error_rate`; past 1 they are cut.
    pub fn draw<R: Rng + ?Sized>(&self, op: RestOp, rng: &mut R) -> Option<Refusal> {
        if self.is_none() {
            return None;
        }
        let (u, half) = (rng.random::<f64>(), rng.random::<bool>());
        let bad_request = match op {
            RestOp::Read => None,
            RestOp::Update => Some(Refusal {
                status: StatusCode::BAD_REQUEST,
                code: 21210,
                message: "Caller phone number is not verified",
            }),
            RestOp::Create => Some(Refusal {
                status: StatusCode::BAD_REQUEST,
                code: 21211,
                message: "Invalid 'To' Phone Number",
            }),
        };
        let bins = [
            (self.rate_429, Some(TOO_MANY)),
            (self.rate_500, Some(SERVER)),
            (
                self.rate_404,
                Some(Refusal {
                    status: StatusCode::NOT_FOUND,
                    code: 20404,
                    message: "The requested resource was not found",
                }),
            ),
            (self.rate_400, bad_request),
            (self.error_rate, Some(if half { TOO_MANY } else { SERVER })),
        ];
        let mut edge = 0.0;
        for (share, refusal) in bins {
            edge += share.max(0.0);
            if u < edge {
                return refusal;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn share(n: usize, hits: usize) -> f64 {
        hits as f64 / n as f64
    }

    #[test]
    fn no_faults_plan_nothing() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(Faults::default().is_none());
        for kind in [Delivery::Twiml, Delivery::Ignored, Delivery::StatusCallback] {
            assert_eq!(
                WebhookFaults::default().plan(kind, &mut rng),
                Plan::default()
            );
        }
        assert_eq!(RestFaults::default().draw(RestOp::Update, &mut rng), None);
        assert_eq!(
            CustomerFaults::default().pick(&mut rng),
            CustomerPick::Answers
        );
    }

    #[test]
    fn only_status_callbacks_are_dropped() {
        let f = WebhookFaults {
            drop: 1.0,
            ..WebhookFaults::default()
        };
        let mut rng = StdRng::seed_from_u64(2);
        assert!(f.plan(Delivery::StatusCallback, &mut rng).drop);
        assert!(!f.plan(Delivery::Twiml, &mut rng).drop);
        assert!(!f.plan(Delivery::Ignored, &mut rng).drop);
    }

    #[test]
    fn webhook_shares_and_delay_bounds_hold() {
        let f = WebhookFaults {
            drop: 0.1,
            duplicate: 0.2,
            delay: 0.3,
            max_delay: Duration::from_secs(2),
        };
        let mut rng = StdRng::seed_from_u64(3);
        let n = 20_000;
        let plans: Vec<Plan> = (0..n)
            .map(|_| f.plan(Delivery::StatusCallback, &mut rng))
            .collect();
        let dropped = plans.iter().filter(|p| p.drop).count();
        let kept: Vec<_> = plans.iter().filter(|p| !p.drop).collect();
        let delayed = kept.iter().filter(|p| p.delay.is_some()).count();
        let copied = kept.iter().filter(|p| p.copy_after.is_some()).count();
        assert!((share(n, dropped) - 0.1).abs() < 0.01, "{dropped}");
        assert!(
            (share(kept.len(), delayed) - 0.3).abs() < 0.015,
            "{delayed}"
        );
        assert!((share(kept.len(), copied) - 0.2).abs() < 0.015, "{copied}");
        assert!(kept
            .iter()
            .filter_map(|p| p.delay.or(p.copy_after))
            .all(|d| d <= Duration::from_secs(2)));
        // the same seed draws the same plans
        let mut again = StdRng::seed_from_u64(3);
        let replay: Vec<Plan> = (0..n)
            .map(|_| f.plan(Delivery::StatusCallback, &mut again))
            .collect();
        assert_eq!(plans, replay);
    }

    #[test]
    fn rest_refusals_come_in_their_shares_and_reads_never_get_a_400() {
        let f = RestFaults {
            rate_429: 0.1,
            rate_500: 0.1,
            rate_404: 0.1,
            rate_400: 0.1,
            ..RestFaults::default()
        };
        let mut rng = StdRng::seed_from_u64(4);
        let n = 20_000;
        let count = |op: RestOp, code: u32, rng: &mut StdRng| {
            (0..n)
                .filter(|_| f.draw(op, rng).map(|r| r.code) == Some(code))
                .count()
        };
        for code in [20429, 20500, 20404] {
            assert!((share(n, count(RestOp::Update, code, &mut rng)) - 0.1).abs() < 0.01);
        }
        assert!((share(n, count(RestOp::Update, 21210, &mut rng)) - 0.1).abs() < 0.01);
        assert!((share(n, count(RestOp::Create, 21211, &mut rng)) - 0.1).abs() < 0.01);
        let reads: Vec<_> = (0..n)
            .filter_map(|_| f.draw(RestOp::Read, &mut rng))
            .collect();
        assert!(reads.iter().all(|r| r.status != StatusCode::BAD_REQUEST));
        assert!((share(n, reads.len()) - 0.3).abs() < 0.015);
        // error_rate alone splits between 429 and 500
        let legacy = RestFaults {
            error_rate: 1.0,
            ..RestFaults::default()
        };
        let codes: std::collections::HashSet<u32> = (0..200)
            .filter_map(|_| legacy.draw(RestOp::Create, &mut rng).map(|r| r.code))
            .collect();
        assert_eq!(codes, [20429, 20500].into_iter().collect());
    }

    #[test]
    fn customers_ring_out_or_are_busy_in_their_shares() {
        let f = CustomerFaults {
            no_answer: 0.2,
            busy: 0.1,
        };
        let mut rng = StdRng::seed_from_u64(5);
        let n = 20_000;
        let picks: Vec<_> = (0..n).map(|_| f.pick(&mut rng)).collect();
        let out = picks
            .iter()
            .filter(|p| **p == CustomerPick::RingsOut)
            .count();
        let busy = picks.iter().filter(|p| **p == CustomerPick::Busy).count();
        assert!((share(n, out) - 0.2).abs() < 0.01);
        assert!((share(n, busy) - 0.1).abs() < 0.01);
    }
}
