//! The durable call archive: `callq archive` copies a centre's event stream
//! (`callq:{C}:events`, capped in Redis) into PostgreSQL, event by event, and derives one row
//! per call, per offer and per agent change from it; `callq report` computes the centre's
//! KPIs per day and queue from those rows; the outbound relay POSTs every event, signed, to
//! the receivers configured.
//!
//! - [`reader`]: the stream read through a consumer group (at-least-once: an entry is
//!   acknowledged only after what it carries is committed), stale entries of dead consumers
//!   reclaimed.
//! - [`writer`]: the schema (`migrations/`, applied at start) and the transaction that writes
//!   a batch of events, idempotent on the stream entry id.
//! - [`report`]: the KPIs, aggregated by SQL.
//! - [`outbound`]: the signed webhooks, each receiver on its own consumer group.

pub mod outbound;
pub mod reader;
pub mod report;
pub mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

pub use reader::{Event, StreamReader};
pub use writer::Writer;

/// Errors of the archive, the report and the outbound relay.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("postgresql: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("schema migration: {0}")]
    Migration(#[from] refinery::Error),
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("the database holds no archive (no table {0:?}): `callq archive` (or `callq archive --migrate-only`) creates it")]
    NoArchive(String),
    #[error("listen: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, ArchiveError>;

/// How `callq archive` runs.
#[derive(Debug, Clone)]
pub struct ArchiveOptions {
    /// `postgres://user[:password]@host:port/db` (`?sslmode=require`: TLS, see
    /// [`writer::connect`]).
    pub database_url: String,
    /// The consumer group on the event stream (one group per archive: its replicas share it).
    pub group: String,
    /// This process's name in the group (default: host name and pid).
    pub consumer: String,
    /// Entries read (and written in one transaction) at a time.
    pub batch: usize,
    /// Longest block of one read on an empty stream.
    pub block: Duration,
    /// An entry read by another consumer and not acknowledged for this long is taken over
    /// (that consumer is taken for dead).
    pub claim_idle: Duration,
    /// Longest pause between attempts while PostgreSQL or Redis is unreachable.
    pub max_backoff: Duration,
}

impl ArchiveOptions {
    pub fn new(database_url: &str) -> Self {
        Self {
            database_url: database_url.to_string(),
            group: "archive".to_string(),
            consumer: default_consumer(),
            batch: 200,
            block: Duration::from_secs(1),
            claim_idle: Duration::from_secs(60),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// `<host name>-<pid>`: unique among live processes, and a restarted pod's new name.
pub fn default_consumer() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "callq".to_string());
    format!("{}-{}", host.trim(), std::process::id())
}

/// How often an idle archive checks that PostgreSQL answers.
const HEALTH_CHECK_EVERY: Duration = Duration::from_secs(10);

/// Whether the archive is keeping up: true after a batch was committed or the stream was
/// read empty, false while PostgreSQL or Redis fails. For `/readyz`.
#[derive(Clone, Default)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    pub fn set(&self, ok: bool) {
        self.0.store(ok, Ordering::Relaxed);
    }
    pub fn ok(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The next pause of an exponential backoff: double, up to `max`.
pub(crate) fn next_backoff(now: Duration, max: Duration) -> Duration {
    (now * 2).clamp(Duration::from_millis(100), max)
}

/// Sleep `d`, or less if shutdown starts; true when shutdown started.
pub(crate) async fn pause(d: Duration, shutdown: &mut Shutdown) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => shutdown.is_triggered(),
        _ = shutdown.wait() => true,
    }
}

/// Apply the schema migrations (`migrations/`) to the database at `database_url`.
pub async fn migrate(database_url: &str) -> Result<()> {
    let mut writer = Writer::connect(database_url, "").await?;
    writer.migrate().await
}

/// Run the archive until shutdown: migrate, then read, write, acknowledge. PostgreSQL or
/// Redis down: the batch in hand is retried with backoff and never acknowledged unwritten.
pub async fn run(
    store: &Store,
    centre: &str,
    opts: &ArchiveOptions,
    health: Health,
    mut shutdown: Shutdown,
) -> Result<()> {
    let mut backoff = Duration::ZERO;
    // the schema first: without it nothing can be written
    let mut writer = loop {
        match Writer::connect(&opts.database_url, centre).await {
            Ok(mut w) => match w.migrate().await {
                Ok(()) => break w,
                Err(e) => tracing::warn!(error = %e, "archive: migrating the schema failed"),
            },
            Err(e) => tracing::warn!(error = %e, "archive: cannot reach PostgreSQL"),
        }
        backoff = next_backoff(backoff, opts.max_backoff);
        if pause(backoff, &mut shutdown).await {
            return Ok(());
        }
    };
    let mut reader = StreamReader::new(store.clone(), &opts.group, &opts.consumer, opts);
    tracing::info!(
        group = %opts.group,
        consumer = %opts.consumer,
        "callq archive ready"
    );
    backoff = Duration::ZERO;
    let mut writer_ok = true;
    let mut last_check = Instant::now();
    while !shutdown.is_triggered() {
        let batch = match reader.next_batch(opts.batch).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "archive: reading the event stream failed");
                health.set(false);
                backoff = next_backoff(backoff, opts.max_backoff);
                if pause(backoff, &mut shutdown).await {
                    break;
                }
                continue;
            }
        };
        if batch.is_empty() {
            // nothing to write: still find out now and then whether PostgreSQL answers, so
            // that /readyz tells before the next event does
            if last_check.elapsed() >= HEALTH_CHECK_EVERY {
                last_check = Instant::now();
                if !writer_ok || writer.ping().await.is_err() {
                    match Writer::connect(&opts.database_url, centre).await {
                        Ok(w) => {
                            writer = w;
                            writer_ok = true;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "archive: cannot reach PostgreSQL");
                            writer_ok = false;
                        }
                    }
                }
            }
            health.set(writer_ok);
            backoff = Duration::ZERO;
            continue;
        }
        // write until committed (or shutdown: then the batch stays pending, read again later)
        loop {
            if !writer_ok {
                match Writer::connect(&opts.database_url, centre).await {
                    Ok(w) => {
                        writer = w;
                        writer_ok = true;
                    }
                    Err(e) => tracing::warn!(error = %e, "archive: cannot reach PostgreSQL"),
                }
            }
            if writer_ok {
                match writer.write(&batch).await {
                    Ok(n) => {
                        tracing::debug!(read = batch.len(), new = n, "archive: batch committed");
                        metrics::counter!("callq_archive_events_total").increment(n as u64);
                        backoff = Duration::ZERO;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "archive: writing a batch failed; retrying");
                        metrics::counter!("callq_archive_write_failures_total").increment(1);
                        writer_ok = false;
                    }
                }
            }
            health.set(false);
            backoff = next_backoff(backoff, opts.max_backoff);
            if pause(backoff, &mut shutdown).await {
                return Ok(());
            }
        }
        if let Err(e) = reader.ack(&batch).await {
            // written but not acknowledged: read again (from this consumer's pending entries)
            // and written again, which changes nothing
            tracing::warn!(error = %e, "archive: acknowledging a batch failed");
            health.set(false);
        } else {
            health.set(true);
        }
    }
    Ok(())
}

/// The stream's consumer groups as gauges, read when scraped: per group, the entries not yet
/// delivered to it (`callq_archive_lag_events`; left unset when Redis cannot tell, after
/// entries were deleted) and those delivered and not acknowledged
/// (`callq_archive_pending_events`).
pub async fn refresh_gauges(store: &Store) -> Result<()> {
    use redis::AsyncCommands;
    let mut c = store.conn().await?;
    let reply: redis::RedisResult<redis::streams::StreamInfoGroupsReply> =
        c.xinfo_groups(store.key("events")).await;
    let groups = match reply {
        Ok(r) => r.groups,
        // no stream yet: no group either
        Err(e) if e.to_string().contains("no such key") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    for g in groups {
        if let Some(lag) = g.lag {
            metrics::gauge!("callq_archive_lag_events", "group" => g.name.clone()).set(lag as f64);
        }
        metrics::gauge!("callq_archive_pending_events", "group" => g.name).set(g.pending as f64);
    }
    Ok(())
}

/// `/healthz` (the process lives), `/readyz` (the archive keeps up) and `/metrics` on
/// `listener`.
pub async fn serve_health(
    listener: tokio::net::TcpListener,
    health: Health,
    store: Store,
    mut shutdown: Shutdown,
) -> Result<()> {
    use axum::{http::StatusCode, routing::get, Router};
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(move || {
                let store = store.clone();
                async move {
                    let read = refresh_gauges(&store);
                    if !matches!(
                        tokio::time::timeout(Duration::from_secs(1), read).await,
                        Ok(Ok(()))
                    ) {
                        tracing::debug!(
                            "archive: the consumer groups could not be read for /metrics"
                        );
                    }
                    // the queue gauges are serve's; the archive shows its own counters
                    crate::ops::metrics(&[], Duration::from_secs(1)).await
                }
            }),
        )
        .route(
            "/readyz",
            get(move || {
                let health = health.clone();
                async move {
                    if health.ok() {
                        (StatusCode::OK, "ready")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                    }
                }
            }),
        );
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_ceiling() {
        let max = Duration::from_secs(30);
        let mut d = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..12 {
            d = next_backoff(d, max);
            seen.push(d);
        }
        assert_eq!(seen[0], Duration::from_millis(100));
        assert_eq!(seen[1], Duration::from_millis(200));
        assert_eq!(*seen.last().unwrap_or(&Duration::ZERO), max);
    }

    #[test]
    fn a_consumer_is_named_after_its_host_and_pid() {
        let c = default_consumer();
        assert!(c.ends_with(&format!("-{}", std::process::id())), "{c}");
    }
}
