//! Writing events into PostgreSQL: the schema (the numbered SQL files in `migrations/`,
//! embedded at build time and applied by refinery) and the transaction that writes a batch.
//!
//! Idempotent on the stream entry id: an event whose `(centre, id)` is already in `events`
//! was written, and derived from, before (a batch read again after a crash or a failed
//! acknowledgement), so it changes nothing. Only a newly inserted event updates `calls`,
//! `offers` and `agent_changes`, in the same transaction.

use std::collections::HashMap;

use tokio_postgres::config::SslMode;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement, Transaction};

use super::{ArchiveError, Event, Result};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Any fixed number: two archives starting at once apply the migrations one after the other.
const MIGRATION_LOCK: i64 = 0x6361_6c6c_7161;

/// A connection to the archive's database, for one centre.
pub struct Writer {
    client: Client,
    /// Each statement prepared once per connection (a round trip saved per use).
    statements: HashMap<String, Statement>,
    centre: String,
    conn: tokio::task::JoinHandle<()>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// Connect to PostgreSQL at `database_url` (a `postgres://` URL or a `key=value` string).
/// With `sslmode=require` the connection is TLS (rustls): the server's certificate and host
/// name are checked against the system's roots, or the PEM file `PGSSLROOTCERT` names (as
/// libpq's `sslrootcert`; `SSL_CERT_FILE` also replaces the system's roots). Any other
/// sslmode, the default `prefer` included, connects in the clear.
pub async fn connect(database_url: &str) -> Result<(Client, tokio::task::JoinHandle<()>)> {
    let roots = std::env::var_os("PGSSLROOTCERT").map(std::path::PathBuf::from);
    connect_with(database_url, roots.as_deref()).await
}

/// [`connect`], with the roots to trust named here: `roots`, a PEM file, or the system's
/// roots when None.
pub async fn connect_with(
    database_url: &str,
    roots: Option<&std::path::Path>,
) -> Result<(Client, tokio::task::JoinHandle<()>)> {
    let config: tokio_postgres::Config = database_url.parse()?;
    let on_close = |e: tokio_postgres::Error| {
        tracing::warn!(error = %e, "postgresql connection closed");
    };
    if config.get_ssl_mode() == SslMode::Require {
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(roots)?);
        let (client, connection) = config.connect(tls).await?;
        let conn = tokio::spawn(async move { connection.await.unwrap_or_else(on_close) });
        Ok((client, conn))
    } else {
        let (client, connection) = config.connect(NoTls).await?;
        let conn = tokio::spawn(async move { connection.await.unwrap_or_else(on_close) });
        Ok((client, conn))
    }
}

/// A TLS client configuration trusting `roots` (a PEM file) or else the system's roots.
fn tls_config(roots: Option<&std::path::Path>) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let invalid = |value: String, why: &'static str| ArchiveError::Invalid {
        what: "PostgreSQL root certificates",
        value,
        why,
    };
    let mut store = rustls::RootCertStore::empty();
    match roots {
        Some(path) => {
            let shown = path.display().to_string();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|_| invalid(shown.clone(), "cannot read the file"))?;
            for cert in certs {
                let cert =
                    cert.map_err(|_| invalid(shown.clone(), "not a PEM certificate file"))?;
                store
                    .add(cert)
                    .map_err(|_| invalid(shown.clone(), "a certificate rustls cannot use"))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "a system root certificate could not be read");
            }
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(invalid(
                    "the system's".to_string(),
                    "no root certificate found (set PGSSLROOTCERT)",
                ));
            }
        }
    }
    if store.is_empty() {
        return Err(invalid(
            roots.map(|p| p.display().to_string()).unwrap_or_default(),
            "no certificate in the file",
        ));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| invalid(String::new(), "no TLS version available"))?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(config)
}

impl Writer {
    pub async fn connect(database_url: &str, centre: &str) -> Result<Self> {
        let (client, conn) = connect(database_url).await?;
        Ok(Self {
            client,
            statements: HashMap::new(),
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

    /// Whether PostgreSQL answers on this connection.
    pub async fn ping(&self) -> Result<()> {
        self.client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Write `batch` in one transaction; returns how many events were new.
    pub async fn write(&mut self, batch: &[Event]) -> Result<usize> {
        let tx = self.client.transaction().await?;
        let mut x = Exec {
            tx: &tx,
            statements: &mut self.statements,
        };
        let mut new = 0;
        for e in batch.iter().filter(|e| !e.kind.is_empty()) {
            if insert_event(&mut x, &self.centre, e).await? {
                derive(&mut x, &self.centre, e).await?;
                new += 1;
            }
        }
        tx.commit().await?;
        Ok(new)
    }
}

/// A transaction that runs each statement prepared once per connection.
struct Exec<'a, 'b> {
    tx: &'b Transaction<'a>,
    statements: &'b mut HashMap<String, Statement>,
}

impl Exec<'_, '_> {
    async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = match self.statements.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = self.tx.prepare(sql).await?;
                self.statements.insert(sql.to_string(), s.clone());
                s
            }
        };
        Ok(self.tx.execute(&statement, params).await?)
    }
}

/// Insert the raw event; false when it was there already.
async fn insert_event(tx: &mut Exec<'_, '_>, centre: &str, e: &Event) -> Result<bool> {
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

/// The call's row, made if it is not there (its `enqueue` may have been trimmed from the
/// stream before the archive read it), in the queue the event names unless a newer event
/// already placed it (every call event names the call's queue at the time).
async fn ensure_call(tx: &mut Exec<'_, '_>, centre: &str, e: &Event, sid: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO calls (centre, sid, queue, queue_pos)
         VALUES ($1, $2, $4, CASE WHEN $4::text IS NULL THEN NULL ELSE $3::text::numeric END)
         ON CONFLICT (centre, sid) DO UPDATE SET queue = EXCLUDED.queue, queue_pos = EXCLUDED.queue_pos
         WHERE EXCLUDED.queue IS NOT NULL
           AND (calls.queue_pos IS NULL OR calls.queue_pos < EXCLUDED.queue_pos)",
        &[&centre, &sid, &e.pos(), &e.field("queue")],
    )
    .await?;
    Ok(())
}

/// In the statements below `$3` is the event's stream position ([`Event::pos`]); this is its
/// time.
const TS: &str = "to_timestamp(floor($3::text::numeric / 10000000000) / 1000.0)";
/// Only when no later event of the stream set the call's outcome (events of a dead consumer
/// are taken over, and so written, after newer ones).
const NEWER: &str = "(outcome_pos IS NULL OR outcome_pos < $3::text::numeric)";

/// What the event says about calls, offers and agents. Order-proof: a call's row comes out
/// the same whichever order its events are written in.
async fn derive(tx: &mut Exec<'_, '_>, centre: &str, e: &Event) -> Result<()> {
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
    ensure_call(tx, centre, e, sid).await?;
    let pos = e.pos();
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
                "UPDATE calls SET
                   kind = coalesce(kind, $4), from_number = coalesce(from_number, $5),
                   to_number = coalesce(to_number, $6),
                   entered_at = coalesce(entered_at, to_timestamp($3::bigint / 1000.0))
                 WHERE centre = $1 AND sid = $2",
                &[
                    &centre,
                    &sid,
                    &entered,
                    &info.map(|c| c.kind.as_str()),
                    &info.map(|c| c.from.as_str()),
                    &info.map(|c| c.to.as_str()),
                ],
            )
            .await?;
        }
        "offer" => {
            let attempt = attempt.unwrap_or(0);
            tx.execute(
                &format!(
                    "UPDATE calls SET attempts = greatest(attempts, $4), offered_at = least(offered_at, {TS})
                     WHERE centre = $1 AND sid = $2"
                ),
                &[&centre, &sid, &pos, &attempt],
            )
            .await?;
            tx.execute(
                &format!(
                    "INSERT INTO offers (centre, call_sid, attempt, agent, queue, offered_at)
                     VALUES ($1, $2, $4, $5, $6, {TS})
                     ON CONFLICT (centre, call_sid, attempt) DO UPDATE SET
                       agent = CASE WHEN offers.result = 'answered' THEN offers.agent ELSE EXCLUDED.agent END,
                       queue = EXCLUDED.queue, offered_at = EXCLUDED.offered_at"
                ),
                &[&centre, &sid, &pos, &attempt, &agent.unwrap_or(""), &e.field("queue")],
            )
            .await?;
        }
        "connected" => {
            tx.execute(
                &format!(
                    "UPDATE calls SET answered_at = {TS}, agent = $4, answer_attempt = $5, wait_s = $6,
                       attempts = greatest(attempts, coalesce($5, 0))
                     WHERE centre = $1 AND sid = $2"
                ),
                &[&centre, &sid, &pos, &agent, &attempt, &secs("waited_ms")],
            )
            .await?;
            offer_result(tx, centre, sid, e, attempt, "answered").await?;
        }
        "requeued" => {
            let outcome = e.field("outcome").unwrap_or("unknown");
            offer_result(tx, centre, sid, e, attempt, outcome).await?;
        }
        "overflowed" | "abandoned" | "callback_failed" => {
            let reason = e
                .field("reason")
                .or_else(|| e.field("rule"))
                .or_else(|| e.field("to"));
            tx.execute(
                &format!(
                    "UPDATE calls SET outcome = $4, end_reason = $5, ended_at = {TS}, outcome_pos = $3::text::numeric,
                       wait_s = CASE WHEN answered_at IS NULL THEN coalesce($6, wait_s) ELSE wait_s END
                     WHERE centre = $1 AND sid = $2 AND {NEWER}"
                ),
                &[&centre, &sid, &pos, &e.kind, &reason, &secs("waited_ms")],
            )
            .await?;
            if e.kind == "overflowed" && attempt.is_some() {
                let outcome = e.field("outcome").unwrap_or("no-answer");
                offer_result(tx, centre, sid, e, attempt, outcome).await?;
            }
        }
        "completed" => {
            tx.execute(
                "UPDATE calls SET talk_s = $3, agent = coalesce($4, agent)
                 WHERE centre = $1 AND sid = $2",
                &[&centre, &sid, &secs("talk_ms"), &agent],
            )
            .await?;
            tx.execute(
                &format!(
                    "UPDATE calls SET outcome = 'completed', end_reason = $4, ended_at = {TS}, outcome_pos = $3::text::numeric
                     WHERE centre = $1 AND sid = $2 AND {NEWER}"
                ),
                &[&centre, &sid, &pos, &e.field("source")],
            )
            .await?;
        }
        "ended" => {
            // an operator ended the call: a connected one counts as completed
            let connected = e.field("from_state") == Some("connected");
            tx.execute(
                &format!(
                    "UPDATE calls SET
                       outcome = CASE WHEN $4 THEN 'completed' ELSE 'abandoned' END,
                       end_reason = 'ended_by_operator', ended_at = {TS}, outcome_pos = $3::text::numeric,
                       talk_s = CASE WHEN $4 AND answered_at IS NOT NULL
                         THEN extract(epoch FROM {TS} - answered_at)::double precision ELSE talk_s END,
                       wait_s = CASE WHEN answered_at IS NULL AND entered_at IS NOT NULL
                         THEN extract(epoch FROM {TS} - entered_at)::double precision ELSE wait_s END
                     WHERE centre = $1 AND sid = $2 AND {NEWER}"
                ),
                &[&centre, &sid, &pos, &connected],
            )
            .await?;
        }
        "reentered" => {
            tx.execute(
                &format!(
                    "UPDATE calls SET outcome = NULL, end_reason = NULL, ended_at = NULL, outcome_pos = $3::text::numeric,
                       wait_s = CASE WHEN answered_at IS NULL THEN NULL ELSE wait_s END
                     WHERE centre = $1 AND sid = $2 AND {NEWER}"
                ),
                &[&centre, &sid, &pos],
            )
            .await?;
        }
        "recorded" => {
            tx.execute(
                "UPDATE calls SET recording_sid = $3 WHERE centre = $1 AND sid = $2",
                &[&centre, &sid, &e.field("recording_sid")],
            )
            .await?;
        }
        // transferred: the new queue is placed above; callback, callback_retry: the raw
        // events are the record
        _ => {}
    }
    Ok(())
}

/// What became of the offer (`attempt`) of call `sid`; the offer's row is made if its
/// `offer` event has not been written yet (it then sets the agent and time). An answered
/// offer's row names the agent who answered (of a `ring_all` offer, not always the first).
async fn offer_result(
    tx: &mut Exec<'_, '_>,
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
        &format!(
            "INSERT INTO offers (centre, call_sid, attempt, agent, queue, offered_at, result, result_at)
             VALUES ($1, $2, $4, $5, $6, {TS}, $7, {TS})
             ON CONFLICT (centre, call_sid, attempt) DO UPDATE SET
               result = EXCLUDED.result, result_at = EXCLUDED.result_at,
               agent = CASE WHEN EXCLUDED.result = 'answered' AND EXCLUDED.agent <> ''
                 THEN EXCLUDED.agent ELSE offers.agent END"
        ),
        &[
            &centre,
            &sid,
            &e.pos(),
            &attempt,
            &e.field("agent").unwrap_or(""),
            &e.field("queue"),
            &result,
        ],
    )
    .await?;
    Ok(())
}
