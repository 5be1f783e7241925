//! Outbound events: every event of the centre's stream POSTed as JSON to each configured
//! receiver, signed, at least once. Each receiver reads through its own consumer group
//! (`outbound-<hash of the URL>`, [`group_for`]), so a slow or failing one holds up neither the
//! archive nor the other receivers.
//!
//! The request: `POST <url>`, `Content-Type: application/json`, the body
//! `{"id": "<stream id>", "centre": "...", "type": "...", "at_ms": <unix ms>, "fields": {..}}`,
//! `X-Callq-Event-Id: <stream id>` (the same event may come twice: dedup on it) and
//! `X-Callq-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with the secret>`. A 2xx
//! is delivered; a 5xx, 408, 429, timeout or connection failure is tried again with
//! exponential backoff (up to `max_backoff` between tries) until it is delivered or the
//! process stops; any other status (a redirect included: never followed) is a refusal: logged,
//! and the event is not sent again.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{next_backoff, pause, ArchiveOptions, Event, Result, StreamReader};
use crate::shutdown::Shutdown;
use crate::store::Store;

/// Where and how events are sent.
#[derive(Debug, Clone)]
pub struct OutboundOptions {
    pub urls: Vec<String>,
    /// The HMAC key of `X-Callq-Signature`.
    pub secret: String,
    /// Longest wait for one receiver's answer.
    pub timeout: Duration,
}

/// `sha256=<hex>` of `body` keyed with `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC takes a key of any length
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The JSON body of an event.
pub fn body(centre: &str, e: &Event) -> Vec<u8> {
    let v = serde_json::json!({
        "id": e.id,
        "centre": centre,
        "type": e.kind,
        "at_ms": e.ms,
        "fields": e.fields,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

enum Sent {
    Delivered,
    Refused(u16),
    Retry(String),
}

async fn send(client: &reqwest::Client, url: &str, secret: &str, centre: &str, e: &Event) -> Sent {
    let body = body(centre, e);
    let sig = signature(secret.as_bytes(), &body);
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-callq-event-id", &e.id)
        .header("x-callq-signature", sig)
        .body(body)
        .send()
        .await;
    match r {
        Ok(resp) if resp.status().is_success() => Sent::Delivered,
        Ok(resp) => {
            let s = resp.status().as_u16();
            if s >= 500 || s == 408 || s == 429 {
                Sent::Retry(format!("status {s}"))
            } else {
                Sent::Refused(s)
            }
        }
        Err(err) => Sent::Retry(err.to_string()),
    }
}

/// Relay the stream to the receiver `url` (group `group`) until shutdown.
pub async fn relay(
    store: &Store,
    centre: &str,
    url: &str,
    group: &str,
    out: &OutboundOptions,
    opts: &ArchiveOptions,
    mut shutdown: Shutdown,
) -> Result<()> {
    let client = reqwest::Client::builder()
        .timeout(out.timeout)
        // a redirect is the receiver's misconfiguration: a refusal, never followed
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| super::ArchiveError::Invalid {
            what: "outbound client",
            value: e.to_string(),
            why: "cannot build an HTTP client",
        })?;
    let mut reader =
        StreamReader::new(store.clone(), group, &opts.consumer, opts).without_call_info();
    let mut backoff = Duration::ZERO;
    while !shutdown.is_triggered() {
        let batch = match reader.next_batch(opts.batch.min(50)).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, url, "outbound: reading the event stream failed");
                backoff = next_backoff(backoff, opts.max_backoff);
                if pause(backoff, &mut shutdown).await {
                    break;
                }
                continue;
            }
        };
        for e in batch.iter().filter(|e| !e.kind.is_empty()) {
            let mut wait = Duration::ZERO;
            loop {
                let sent = send(&client, url, &out.secret, centre, e).await;
                let outcome = match sent {
                    Sent::Delivered => "delivered",
                    Sent::Refused(_) => "refused",
                    Sent::Retry(_) => "failed",
                };
                metrics::counter!("callq_outbound_requests_total", "outcome" => outcome)
                    .increment(1);
                match sent {
                    Sent::Delivered => break,
                    Sent::Refused(s) => {
                        tracing::warn!(url, id = %e.id, status = s, "outbound: the receiver refused an event; not sent again");
                        break;
                    }
                    Sent::Retry(why) => {
                        tracing::info!(url, id = %e.id, why, "outbound: delivery failed; trying again");
                        wait = next_backoff(wait, opts.max_backoff);
                        if pause(wait, &mut shutdown).await {
                            // not acknowledged: sent again after a restart
                            return Ok(());
                        }
                    }
                }
            }
        }
        if let Err(e) = reader.ack(&batch).await {
            tracing::warn!(error = %e, url, "outbound: acknowledging failed");
        }
        backoff = Duration::ZERO;
    }
    Ok(())
}

/// The consumer group of receiver `url`: `outbound-` and the first 12 hex digits of the
/// URL's SHA-256, so a receiver keeps its place in the stream when the list is reordered.
pub fn group_for(url: &str) -> String {
    use sha2::Digest;
    let d = Sha256::digest(url.as_bytes());
    let hex: String = d.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("outbound-{hex}")
}

/// One relay per receiver, until shutdown.
pub async fn run(
    store: &Store,
    centre: &str,
    out: &OutboundOptions,
    opts: &ArchiveOptions,
    shutdown: Shutdown,
) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for url in &out.urls {
        let (store, centre, url, out, opts, shutdown) = (
            store.clone(),
            centre.to_string(),
            url.clone(),
            out.clone(),
            opts.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            relay(
                &store,
                &centre,
                &url,
                &group_for(&url),
                &out,
                &opts,
                shutdown,
            )
            .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(r) => r?,
            Err(e) => tracing::warn!(error = %e, "outbound: a relay task ended"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn each_receiver_has_a_stable_group_of_its_own() {
        let a = group_for("https://a.example/h");
        assert_eq!(a, group_for("https://a.example/h"));
        assert_ne!(a, group_for("https://b.example/h"));
        assert!(
            a.starts_with("outbound-") && a.len() == "outbound-".len() + 12,
            "{a}"
        );
    }
}
