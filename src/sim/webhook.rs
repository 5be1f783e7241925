//! Twilio's HTTP client toward callq: form-encoded POSTs signed with `X-Twilio-Signature`
//! over the URL as callq is configured to see it (its public URL), timed for the report.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::stats::Stats;
use super::twiml_exec::Params;
use crate::twilio::signature;
use crate::twilio::twiml::{self, Response};

/// How long Twilio waits for a webhook answer.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);

/// Signs and sends webhooks; counts the ones still in flight so a run can wait for them.
pub struct Webhooks {
    http: reqwest::Client,
    auth_token: String,
    /// The base URL callq believes it is reached at (signatures are computed on it).
    public_url: String,
    /// Where requests are actually sent (the same unless callq sits behind a proxy).
    target_url: String,
    stats: Arc<Stats>,
    in_flight: AtomicUsize,
    idle: Notify,
}

impl Webhooks {
    pub fn new(
        auth_token: &str,
        public_url: &str,
        target_url: &str,
        stats: Arc<Stats>,
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
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        })
    }

    /// POSTs `params` to `url` (absolute, on callq's public URL) and returns the body.
    pub async fn post(&self, url: &str, params: &Params) -> Result<String, String> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = self.send(url, params).await;
        self.done();
        result
    }

    /// POSTs in the background, answer ignored (counted in flight from now on).
    pub fn post_detached(self: &Arc<Self>, url: &str, params: Params) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let me = self.clone();
        let url = url.to_string();
        tokio::spawn(async move {
            let _ = me.send(&url, &params).await;
            me.done();
        });
    }

    fn done(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    async fn send(&self, url: &str, params: &Params) -> Result<String, String> {
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
            .header("I-Twilio-Idempotency-Token", uuidish())
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
