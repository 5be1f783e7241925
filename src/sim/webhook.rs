//! Twilio's HTTP client toward callq: form-encoded POSTs signed with `X-Twilio-Signature`
//! over the URL as callq is configured to see it (its public URL), timed for the report, with
//! the webhook faults of [`WebhookFaults`] applied by kind of request ([`Delivery`]): status
//! callbacks may be dropped, duplicated or delayed; TwiML requests, which Twilio waits for,
//! only duplicated (both copies reach callq, Twilio runs one answer) or delayed. Both copies
//! of a duplicate carry the same `I-Twilio-Idempotency-Token`, as a retry of Twilio's does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::faults::{Delivery, Plan, WebhookFaults};
use super::stats::Stats;
use super::twiml_exec::Params;
use crate::twilio::signature;
use crate::twilio::twiml::{self, Response};

/// How long Twilio waits for a webhook answer.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// Signs and sends webhooks; counts the ones still in flight (a delayed or duplicated one
/// included) so a run can wait for them.
pub struct Webhooks {
    http: reqwest::Client,
    auth_token: String,
    /// The base URL callq believes it is reached at (signatures are computed on it).
    public_url: String,
    /// Where requests are actually sent (the same unless callq sits behind a proxy).
    target_url: String,
    stats: Arc<Stats>,
    faults: WebhookFaults,
    rng: Mutex<StdRng>,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Webhooks {
    pub fn new(
        auth_token: &str,
        public_url: &str,
        target_url: &str,
        stats: Arc<Stats>,
        faults: WebhookFaults,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(WEBHOOK_TIMEOUT)
            .pool_max_idle_per_host(256)
            .user_agent("TwilioProxy/1.1 (callq simulator)")
            .build()?;
        Ok(Self {
            http,
            auth_token: auth_token.to_string(),
            public_url: public_url.trim_end_matches('/').to_string(),
            target_url: target_url.trim_end_matches('/').to_string(),
            stats,
            faults,
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x3eb5)),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    /// Draws what happens to one request, and counts it.
    fn plan(&self, kind: Delivery) -> Plan {
        let plan = {
            let mut g = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            self.faults.plan(kind, &mut *g)
        };
        let count = |c: &std::sync::atomic::AtomicU64, yes: bool| {
            if yes {
                c.fetch_add(1, Ordering::Relaxed);
            }
        };
        count(&self.stats.webhooks_dropped, plan.drop);
        count(&self.stats.webhooks_delayed, plan.delay.is_some());
        count(&self.stats.webhooks_duplicated, plan.copy_after.is_some());
        plan
    }

    /// POSTs `params` to `url` (absolute, on callq's public URL) as a TwiML request and
    /// returns the body Twilio goes on with (one copy's, when duplicated).
    pub async fn post(&self, url: &str, params: &Params) -> Result<String, String> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let plan = self.plan(Delivery::Twiml);
        if let Some(d) = plan.delay {
            tokio::time::sleep(d).await;
        }
        let token = uuidish();
        let result = match plan.copy_after {
            None => self.send(url, params, &token).await,
            Some(gap) => {
                let copy = async {
                    tokio::time::sleep(gap).await;
                    self.send(url, params, &token).await
                };
                let (a, b) = tokio::join!(self.send(url, params, &token), copy);
                let take_copy = {
                    let mut g = self.rng.lock().unwrap_or_else(|p| p.into_inner());
                    g.random::<bool>()
                };
                match (a, b) {
                    (Ok(a), Ok(b)) => Ok(if take_copy { b } else { a }),
                    (Ok(a), Err(_)) => Ok(a),
                    (Err(_), Ok(b)) => Ok(b),
                    (Err(e), Err(_)) => Err(e),
                }
            }
        };
        self.done();
        result
    }

    /// POSTs in the background, answer ignored (counted in flight from now on): an action
    /// requested after the call moved on. Duplicated or delayed, never dropped.
    pub fn post_detached(self: &Arc<Self>, url: &str, params: Params) {
        let plan = self.plan(Delivery::Ignored);
        self.deliver(url, params, plan);
    }

    /// A status callback, in the background: dropped, duplicated or delayed as drawn.
    pub fn status_callback(self: &Arc<Self>, url: &str, params: Params) {
        let plan = self.plan(Delivery::StatusCallback);
        if plan.drop {
            tracing::debug!(url, "status callback dropped");
            return;
        }
        self.deliver(url, params, plan);
    }

    fn deliver(self: &Arc<Self>, url: &str, params: Params, plan: Plan) {
        let token = uuidish();
        let delay = plan.delay.unwrap_or_default();
        let mut sends = vec![delay];
        if let Some(gap) = plan.copy_after {
            sends.push(delay + gap);
        }
        for after in sends {
            self.in_flight.fetch_add(1, Ordering::SeqCst);
            let me = self.clone();
            let (url, params, token) = (url.to_string(), params.clone(), token.clone());
            tokio::spawn(async move {
                if !after.is_zero() {
                    tokio::time::sleep(after).await;
                }
                let _ = me.send(&url, &params, &token).await;
                me.done();
            });
        }
    }

    fn done(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    async fn send(&self, url: &str, params: &Params, token: &str) -> Result<String, String> {
        let sig = signature::compute(&self.auth_token, url, params);
        let target = match url.strip_prefix(&self.public_url) {
            Some(rest) => format!("{}{rest}", self.target_url),
            None => url.to_string(),
        };
        let started = Instant::now();
        let sent = self
            .http
            .post(&target)
            .header("X-Twilio-Signature", sig)
            .header("I-Twilio-Idempotency-Token", token)
            .form(params)
            .send()
            .await;
        let result = match sent {
            Ok(resp) => {
                let status = resp.status();
                match resp.text().await {
                    Ok(body) if status.is_success() => Ok(body),
                    Ok(body) => Err(format!(
                        "{target}: HTTP {status}: {}",
                        body.chars().take(200).collect::<String>()
                    )),
                    Err(e) => Err(format!("{target}: reading the answer: {e}")),
                }
            }
            Err(e) => Err(format!("{target}: {e}")),
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        self.stats.webhook(ms, result.is_ok());
        if let Err(e) = &result {
            tracing::debug!(error = %e, "webhook failed");
        }
        result
    }

    /// Requests TwiML: the answer must parse, as Twilio's would have to.
    pub async fn fetch(&self, url: &str, params: &Params) -> Result<Response, String> {
        let body = self.post(url, params).await?;
        twiml::parse(&body).map_err(|e| format!("{url}: TwiML: {e}"))
    }

    /// Waits until no webhook is in flight (or `timeout` passes); true when idle.
    pub async fn quiet(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.in_flight.load(Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.in_flight.load(Ordering::SeqCst) == 0;
            }
        }
    }
}

fn uuidish() -> String {
    let n: u128 = rand::random();
    format!("{n:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::State;
    use axum::routing::post;
    use axum::Router;
    use std::sync::atomic::AtomicU64;

    /// A callq stand-in that counts requests per path and answers with a numbered document.
    #[derive(Default)]
    struct Seen {
        requests: Mutex<Vec<(String, Instant, String)>>,
        n: AtomicU64,
    }

    async fn serve(seen: Arc<Seen>) -> String {
        async fn hook(
            State(seen): State<Arc<Seen>>,
            uri: axum::http::Uri,
            headers: axum::http::HeaderMap,
        ) -> String {
            let token = headers
                .get("I-Twilio-Idempotency-Token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            seen.requests
                .lock()
                .unwrap()
                .push((uri.path().to_string(), Instant::now(), token));
            let n = seen.n.fetch_add(1, Ordering::SeqCst);
            format!("<Response><Say>answer {n}</Say></Response>")
        }
        let app = Router::new().route("/{*path}", post(hook)).with_state(seen);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    async fn hooks(faults: WebhookFaults) -> (Arc<Webhooks>, Arc<Seen>, Arc<Stats>, String) {
        let seen = Arc::new(Seen::default());
        let url = serve(seen.clone()).await;
        let stats = Arc::new(Stats::default());
        let h = Webhooks::new("token", &url, &url, stats.clone(), faults, 9).unwrap();
        (Arc::new(h), seen, stats, url)
    }

    fn params() -> Params {
        vec![("CallSid".into(), format!("CA{:032x}", 1))]
    }

    #[tokio::test]
    async fn dropped_status_callbacks_never_arrive_but_twiml_requests_always_do() {
        let faults = WebhookFaults {
            drop: 1.0,
            ..WebhookFaults::default()
        };
        let (h, seen, stats, url) = hooks(faults).await;
        for _ in 0..5 {
            h.status_callback(&format!("{url}/twilio/status"), params());
        }
        let doc = h.fetch(&format!("{url}/twilio/voice"), &params()).await;
        assert!(doc.is_ok(), "{doc:?}");
        h.post_detached(&format!("{url}/twilio/queue-exit"), params());
        assert!(h.quiet(Duration::from_secs(5)).await);
        let paths: Vec<String> = seen
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0.clone())
            .collect();
        assert_eq!(paths, ["/twilio/voice", "/twilio/queue-exit"]);
        assert_eq!(stats.webhooks_dropped.load(Ordering::Relaxed), 5);
    }

    #[tokio::test]
    async fn a_duplicate_arrives_twice_with_one_token_and_twilio_runs_one_answer() {
        let faults = WebhookFaults {
            duplicate: 1.0,
            max_delay: Duration::from_millis(50),
            ..WebhookFaults::default()
        };
        let (h, seen, stats, url) = hooks(faults).await;
        let doc = h
            .fetch(&format!("{url}/twilio/wait"), &params())
            .await
            .unwrap();
        assert_eq!(doc.verbs.len(), 1, "one document runs");
        h.status_callback(&format!("{url}/twilio/agent-leg"), params());
        assert!(h.quiet(Duration::from_secs(5)).await);
        let reqs = seen.requests.lock().unwrap().clone();
        assert_eq!(reqs.len(), 4);
        for path in ["/twilio/wait", "/twilio/agent-leg"] {
            let copies: Vec<_> = reqs.iter().filter(|r| r.0 == path).collect();
            assert_eq!(copies.len(), 2, "{path}");
            assert_eq!(copies[0].2, copies[1].2, "a retry carries the same token");
        }
        assert_eq!(stats.webhooks_duplicated.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn delayed_status_callbacks_arrive_late_and_out_of_order() {
        let faults = WebhookFaults {
            delay: 1.0,
            max_delay: Duration::from_millis(400),
            ..WebhookFaults::default()
        };
        let (h, seen, stats, url) = hooks(faults).await;
        let sent = Instant::now();
        for i in 0..20 {
            h.status_callback(&format!("{url}/twilio/status/{i}"), params());
        }
        assert!(h.quiet(Duration::from_secs(5)).await);
        let reqs = seen.requests.lock().unwrap().clone();
        assert_eq!(reqs.len(), 20);
        assert!(reqs
            .iter()
            .all(|r| r.1.duration_since(sent) < Duration::from_secs(2)));
        let order: Vec<usize> = reqs
            .iter()
            .filter_map(|r| r.0.rsplit('/').next()?.parse().ok())
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_ne!(order, sorted, "twenty random delays reorder something");
        assert_eq!(stats.webhooks_delayed.load(Ordering::Relaxed), 20);
    }
}
