//! Writing events into PostgreSQL: the schema (the numbered SQL files in `migrations/`,
//! embedded at build time and applied by refinery) and the transaction that writes a batch.
//!
//! Idempotent on the stream entry id: an event whose `(centre, id)` is already in `events`
//! was written, and derived from, before (a batch read again after a crash or a failed
//! acknowledgement), so it changes nothing. Only a newly inserted event updates `calls`,
//! `offers` and `agent_changes`, in the same transaction.

use tokio_postgres::{Client, NoTls, Transaction};

use super::{Event, Result};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Any fixed number: two archives starting at once apply the migrations one after the other.
const MIGRATION_LOCK: i64 = 0x6361_6c6c_7161;

/// A connection to the archive's database, for one centre.
pub struct Writer {
    client: Client,
    centre: String,
    conn: tokio::task::JoinHandle<()>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// Connect to PostgreSQL (no TLS in this build).
pub async fn connect(database_url: &str) -> Result<(Client, tokio::task::JoinHandle<()>)> {
    let (client, connection) = tokio_postgres::connect(database_url, NoTls).await?;
    let conn = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "postgresql connection closed");
        }
    });
    Ok((client, conn))
}

impl Writer {
    pub async fn connect(database_url: &str, centre: &str) -> Result<Self> {
        let (client, conn) = connect(database_url).await?;
        Ok(Self {
            client,
            centre: centre.to_string(),
            conn,
        })
    }

    /// Apply the migrations not yet applied (refinery keeps them in
    /// `refinery_schema_history`), under an advisory lock.
    pub async fn migrate(&mut self) -> Result<()> {
        self.client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        let report = embedded::migrations::runner()
            .run_async(&mut self.client)
            .await;
        let unlock = self
            .client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        let report = report?;
        unlock?;
        for m in report.applied_migrations() {
            tracing::info!(migration = %m, "archive: schema migration applied");
        }
        Ok(())
    }

    /// Write `batch` in one transaction; returns how many events were new.
    pub async fn write(&mut self, batch: &[Event]) -> Result<usize> {
        let tx = self.client.transaction().await?;
        let mut new = 0;
        for e in batch.iter().filter(|e| !e.kind.is_empty()) {
            if insert_event(&tx, &self.centre, e).await? {
                derive(&tx, &self.centre, e).await?;
                new += 1;
            }
        }
        tx.commit().await?;
        Ok(new)
    }
}

/// Insert the raw event; false when it was there already.
async fn insert_event(tx: &Transaction<'_>, centre: &str, e: &Event) -> Result<bool> {
    let fields = serde_json::Value::Object(
        e.fields
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    );
    let n = tx
        .execute(
            "INSERT INTO events (centre, id, type, at, call_sid, agent, queue, fields)
             VALUES ($1, $2, $3, to_timestamp($4::bigint / 1000.0), $5, $6, $7, $8)
             ON CONFLICT (centre, id) DO NOTHING",
            &[
                &centre,
                &e.id,
                &e.kind,
                &e.ms,
                &e.field("call"),
                &e.field("agent"),
                &e.field("queue"),
                &fields,
            ],
        )
        .await?;
    Ok(n == 1)
}

/// A call's row, made if it is not there (its `enqueue` may have been trimmed from the
/// stream before the archive read it).
async fn ensure_call(
    tx: &Transaction<'_>,
    centre: &str,
    sid: &str,
    queue: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO calls (centre, sid, queue) VALUES ($1, $2, $3)
         ON CONFLICT (centre, sid) DO NOTHING",
        &[&centre, &sid, &queue],
    )
    .await?;
    Ok(())
}

/// What the event says about calls, offers and agents.
async fn derive(tx: &Transaction<'_>, centre: &str, e: &Event) -> Result<()> {
    const TS: &str = "to_timestamp($3::bigint / 1000.0)";
    if let (Some(agent), "agent" | "presence") = (e.field("agent"), e.kind.as_str()) {
        let (kind, status) = if e.kind == "agent" {
            ("status", e.field("status").unwrap_or("unknown"))
        } else if e.field("online") == Some("1") {
            ("presence", "registered")
        } else {
            ("presence", "unregistered")
        };
        tx.execute(
            "INSERT INTO agent_changes (centre, event_id, agent, kind, status, reason, at)
             VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7::bigint / 1000.0))
             ON CONFLICT (centre, event_id) DO NOTHING",
            &[
                &centre,
                &e.id,
                &agent,
                &kind,
                &status,
                &e.field("reason"),
                &e.ms,
            ],
        )
        .await?;
        return Ok(());
    }
    let Some(sid) = e.field("call") else {
        return Ok(()); // feature, rollout: the raw event is the record
    };
    let queue = e.field("queue");
    let agent = e.field("agent");
    let attempt = e.int("attempt").map(|a| a as i32);
    let secs = |name: &str| e.int(name).map(|ms| ms as f64 / 1000.0);
    match e.kind.as_str() {
        "enqueue" => {
            let info = e.call.as_ref();
            let entered = info
                .map(|c| c.entered_ms)
                .filter(|ms| *ms > 0)
                .unwrap_or(e.ms);
            tx.execute(
                "INSERT INTO calls (centre, sid, queue, kind, from_number, to_number, entered_at)
                 VALUES ($1, $2, $4, $5, $6, $7, to_timestamp($3::bigint / 1000.0))
                 ON CONFLICT (centre, sid) DO UPDATE SET
                   queue = coalesce(calls.queue, EXCLUDED.queue),
                   kind = coalesce(calls.kind, EXCLUDED.kind),
                   from_number = coalesce(calls.from_number, EXCLUDED.from_number),
                   to_number = coalesce(calls.to_number, EXCLUDED.to_number),
                   entered_at = coalesce(calls.entered_at, EXCLUDED.entered_at)",
                &[
                    &centre,
                    &sid,
                    &entered,
                    &queue,
                    &info.map(|c| c.kind.as_str()),
                    &info.map(|c| c.from.as_str()),
                    &info.map(|c| c.to.as_str()),
                ],
            )
            .await?;
        }
        "offer" => {
            ensure_call(tx, centre, sid, queue).await?;
            let attempt = attempt.unwrap_or(0);
            tx.execute(
                &format!(
                    "UPDATE calls SET attempts = greatest(attempts, $4), offered_at = coalesce(offered_at, {TS})
                     WHERE centre = $1 AND sid = $2"
                ),
                &[&centre, &sid, &e.ms, &attempt],
            )
            .await?;
            tx.execute(
                &format!(
                    "INSERT INTO offers (centre, call_sid, attempt, agent, queue, offered_at)
                     VALUES ($1, $2, $4, $5, $6, {TS})
                     ON CONFLICT (centre, call_sid, attempt) DO NOTHING"
                ),
                &[&centre, &sid, &e.ms, &attempt, &agent.unwrap_or(""), &queue],
            )
            .await?;
        }
        "connected" => {
            ensure_call(tx, centre, sid, queue).await?;
            tx.execute(
                &format!(
                    "UPDATE calls SET answered_at = {TS}, agent = $4, answer_attempt = $5, wait_s = $6,
                       outcome = NULL, ended_at = NULL
                     WHERE centre = $1 AND sid = $2"
                ),
                &[&centre, &sid, &e.ms, &agent, &attempt, &secs("waited_ms")],
            )
            .await?;
            offer_result(tx, centre, sid, e, attempt, "answered").await?;
        }
        "requeued" => {
            let outcome = e.field("outcome").unwrap_or("unknown");
            offer_result(tx, centre, sid, e, attempt, outcome).await?;
        }
        "overflowed" | "abandoned" | "callback_failed" => {
            ensure_call(tx, centre, sid, queue).await?;
            let reason = e
                .field("reason")
                .or_else(|| e.field("rule"))
                .or_else(|| e.field("to"));
            tx.execute(
                &format!(
                    "UPDATE calls SET outcome = $4, end_reason = $5, ended_at = {TS},
                       wait_s = CASE WHEN answered_at IS NULL THEN coalesce($6, wait_s) ELSE wait_s END
                     WHERE centre = $1 AND sid = $2"
                ),
                &[&centre, &sid, &e.ms, &e.kind, &reason, &secs("waited_ms")],
            )
            .await?;
            if e.kind == "overflowed" && attempt.is_some() {
                let outcome = e.field("outcome").unwrap_or("no-answer");
                offer_result(tx, centre, sid, e, attempt, outcome).await?;
            }
        }
        "completed" => {
            ensure_call(tx, centre, sid, queue).await?;
            tx.execute(
                &format!(
                    "UPDATE calls SET outcome = 'completed', end_reason = $4, ended_at = {TS},
                       talk_s = $5, agent = coalesce($6, agent)
                     WHERE centre = $1 AND sid = $2"
                ),
                &[
                    &centre,
                    &sid,
                    &e.ms,
                    &e.field("source"),
                    &secs("talk_ms"),
                    &agent,
                ],
            )
            .await?;
        }
        "ended" => {
            // an operator ended the call: a connected one counts as completed
            ensure_call(tx, centre, sid, queue).await?;
            let connected = e.field("from_state") == Some("connected");
            tx.execute(
                &format!(
                    "UPDATE calls SET
                       outcome = CASE WHEN $4 THEN 'completed' ELSE 'abandoned' END,
                       end_reason = 'ended_by_operator', ended_at = {TS},
                       talk_s = CASE WHEN $4 AND answered_at IS NOT NULL
                         THEN extract(epoch FROM {TS} - answered_at)::double precision ELSE talk_s END,
                       wait_s = CASE WHEN answered_at IS NULL AND entered_at IS NOT NULL
                         THEN extract(epoch FROM {TS} - entered_at)::double precision ELSE wait_s END
                     WHERE centre = $1 AND sid = $2"
                ),
                &[&centre, &sid, &e.ms, &connected],
            )
            .await?;
        }
        "transferred" => {
            ensure_call(tx, centre, sid, queue).await?;
            tx.execute(
                "UPDATE calls SET queue = $3 WHERE centre = $1 AND sid = $2",
                &[&centre, &sid, &queue],
            )
            .await?;
        }
        "reentered" => {
            ensure_call(tx, centre, sid, queue).await?;
            tx.execute(
                "UPDATE calls SET outcome = NULL, end_reason = NULL, ended_at = NULL
                 WHERE centre = $1 AND sid = $2",
                &[&centre, &sid],
            )
            .await?;
        }
        "recorded" => {
            ensure_call(tx, centre, sid, queue).await?;
            tx.execute(
                "UPDATE calls SET recording_sid = $3 WHERE centre = $1 AND sid = $2",
                &[&centre, &sid, &e.field("recording_sid")],
            )
            .await?;
        }
        // callback, callback_retry: the raw events are the record
        _ => {}
    }
    Ok(())
}

/// What became of the offer (`attempt`) of call `sid`.
async fn offer_result(
    tx: &Transaction<'_>,
    centre: &str,
    sid: &str,
    e: &Event,
    attempt: Option<i32>,
    result: &str,
) -> Result<()> {
    let Some(attempt) = attempt else {
        return Ok(());
    };
    tx.execute(
        "UPDATE offers SET result = $5, result_at = to_timestamp($3::bigint / 1000.0)
         WHERE centre = $1 AND call_sid = $2 AND attempt = $4",
        &[&centre, &sid, &e.ms, &attempt, &result],
    )
    .await?;
    Ok(())
}
