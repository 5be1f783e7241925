//! `callq reconcile`: put a centre back together after Redis lost its data (a `FLUSHALL`, a
//! failover that lost writes). Dry run by default; with `apply` it writes, and only through
//! the store's scripts ([`Store`]), as every other part of callq does.
//!
//! - Queues: every queue of the centre's configuration is configured again (as `serve` does
//!   when it starts).
//! - Agents: from the archive (PostgreSQL). An agent the archive knows, not deleted there and
//!   unknown to Redis is created offline with the last profile its events recorded (identity,
//!   queues and tiers, capacity, skills, order, weight: `upsert_agent` puts them on every
//!   `agent` event) and its last token generation (on the same events and on a revocation's),
//!   so the tokens its desktop holds stay good and its next heartbeat and status bring it
//!   back. An agent archived before events carried profiles gets identity = id, capacity 1,
//!   tier 1 in each configured queue it was offered calls from, and a new token generation:
//!   it then needs a new token (`POST /v1/admin/agents/{id}/token`).
//! - Waiting callers: from Twilio. Each member of a `callq-<queue>` `<Enqueue>` queue that
//!   Redis no longer knows is put back in its queue at its original arrival
//!   (`Arrival::Holding { waited }`, `waited` = Twilio's `wait_time`), so it keeps its rank.
//! - Connected calls: a call in progress to the centre's numbers, in no Twilio queue and
//!   unknown to Redis, that the archive says an agent answered (and that has no outcome
//!   there) is connected to that agent again (`Store::restore_connected`): its end then
//!   completes it as usual, so the archive gets its outcome, and the agent is not offered
//!   another call while still talking. Other calls in progress in no Twilio queue (in the
//!   welcome, or answered after the archive last heard) are reported and left alone.
//! - Callbacks: from the archive. A callback request whose call has no outcome and was not
//!   answered there, and that Redis no longer knows, is queued again as a callback at its
//!   original time. The archive keeps the caller's number, not a different number the caller
//!   may have asked to be called at: the callback goes to the caller's number.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use tokio_postgres::Client;

use crate::config::CentreConfig;
use crate::store::{
    AgentSpec, Arrival, CallKind, ConnectedCall, NewCall, RestoredCall, Skills, Store, StoreError,
    UpsertMode,
};
use crate::twilio::rest::{CallFilter, CallStatus, RestError, TwilioRest};

/// What can stop a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("redis: {0}")]
    Store(#[from] StoreError),
    #[error("twilio: {0}")]
    Rest(#[from] RestError),
    #[error("archive: {0}")]
    Archive(#[from] tokio_postgres::Error),
}

pub type Result<T> = std::result::Result<T, ReconcileError>;

/// How to reconcile.
#[derive(Debug, Clone)]
pub struct Options {
    /// Write (else only say what would be written).
    pub apply: bool,
    /// Most pages read per Twilio list.
    pub max_pages: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            apply: false,
            max_pages: 100,
        }
    }
}

/// An agent to create.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentPlan {
    pub id: String,
    pub queues: Vec<String>,
    /// The profile the archive recorded last (None: only the queues offers came from).
    #[serde(skip)]
    pub profile: Option<AgentSpec>,
    /// The agent's last token generation on record (None: a new one; its tokens are refused).
    #[serde(skip)]
    pub token_gen: Option<String>,
    /// Whether the agent's old tokens stay good.
    pub tokens_kept: bool,
}

/// The profile an `agent` event recorded (`upsert_agent.lua`), if it carries one.
fn recorded_profile(id: &str, f: &serde_json::Value) -> Option<AgentSpec> {
    let text = |k: &str| f.get(k).and_then(|v| v.as_str());
    let queues = AgentSpec::parse_queues_field(text("queues")?);
    if queues.is_empty() {
        return None;
    }
    Some(AgentSpec {
        id: id.to_string(),
        identity: text("identity").unwrap_or(id).to_string(),
        queues,
        capacity: text("capacity").and_then(|c| c.parse().ok()).unwrap_or(1),
        skills: Skills::parse_field(text("skills").unwrap_or("")),
        order: text("order").and_then(|o| o.parse().ok()).unwrap_or(0),
        weight: text("weight").and_then(|w| w.parse().ok()).unwrap_or(1),
    })
}

/// A waiting caller to put back in line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallerPlan {
    pub sid: String,
    pub queue: String,
    pub from: String,
    pub to: String,
    pub waited_s: u64,
}

/// A call to connect to its agent again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectedPlan {
    pub sid: String,
    pub queue: String,
    pub agent: String,
    pub attempt: u32,
    pub kind: String,
    pub from: String,
    pub to: String,
    pub waited_s: u64,
    pub talking_s: u64,
}

/// A callback to queue again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallbackPlan {
    pub sid: String,
    pub queue: String,
    pub number: String,
    pub waited_s: u64,
}

/// What reconcile found and did (or would do).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub centre: String,
    /// False: a dry run, nothing was written.
    pub applied: bool,
    /// Queues of the configuration (all configured again on apply).
    pub queues: Vec<String>,
    /// Those Redis did not have.
    pub queues_missing: Vec<String>,
    /// Agents the archive knows (deleted ones included).
    pub agents_in_archive: usize,
    pub agents_deleted: Vec<String>,
    /// Agents Redis still has.
    pub agents_known: Vec<String>,
    /// Agents to create (offline).
    pub agents_restore: Vec<AgentPlan>,
    /// Agents never offered a call from a configured queue: no queue to give them.
    pub agents_no_queue: Vec<String>,
    /// Members of the centre's Twilio queues.
    pub twilio_members: usize,
    pub callers_known: Vec<String>,
    pub callers_restore: Vec<CallerPlan>,
    /// Twilio queues named `callq-…` for a queue the configuration does not have.
    pub twilio_queues_unknown: Vec<String>,
    /// Calls in progress to the centre's numbers, in no Twilio queue, unknown to Redis, that
    /// the archive says an agent answered: connected to that agent again.
    pub calls_connected_restore: Vec<ConnectedPlan>,
    /// The other calls in progress to the centre's numbers, in no Twilio queue, unknown to
    /// Redis: left alone.
    pub calls_unqueued: Vec<String>,
    /// Callback requests without outcome in the archive.
    pub callbacks_pending: usize,
    pub callbacks_known: Vec<String>,
    pub callbacks_restore: Vec<CallbackPlan>,
    /// Pending callbacks that cannot be restored (no number, or a queue no longer configured).
    pub callbacks_skipped: Vec<String>,
    /// What failed while applying (the rest went on).
    pub errors: Vec<String>,
}

/// Find what Redis lost and, with `opts.apply`, restore it.
pub async fn run(
    store: &Store,
    centre: &CentreConfig,
    rest: &TwilioRest,
    archive: &Client,
    opts: &Options,
) -> Result<Report> {
    let mut r = Report {
        centre: centre.centre.clone(),
        applied: opts.apply,
        ..Report::default()
    };
    let configured: BTreeSet<String> = centre.queues.keys().cloned().collect();

    // 1. queues
    let had: HashSet<String> = store.queue_names().await?.into_iter().collect();
    for q in centre.queue_settings() {
        r.queues.push(q.name.clone());
        if !had.contains(&q.name) {
            r.queues_missing.push(q.name.clone());
        }
        if opts.apply {
            if let Err(e) = store.configure_queue(&q).await {
                r.errors.push(format!("queue {}: {e}", q.name));
            }
        }
    }

    // 2. agents, from the archive
    let rows = archive
        .query(
            "SELECT a.agent,
               (SELECT s.status FROM agent_changes s
                 WHERE s.centre = $1 AND s.agent = a.agent AND s.kind = 'status'
                 ORDER BY s.at DESC, s.event_id DESC LIMIT 1) AS last,
               ARRAY(SELECT DISTINCT o.queue FROM offers o
                 WHERE o.centre = $1 AND o.agent = a.agent AND o.queue IS NOT NULL
                 ORDER BY o.queue) AS queues
             FROM (SELECT agent FROM agent_changes WHERE centre = $1
                   UNION SELECT agent FROM offers WHERE centre = $1 AND agent <> '') a
             ORDER BY a.agent",
            &[&centre.centre],
        )
        .await?;
    r.agents_in_archive = rows.len();
    for row in rows {
        let id: String = row.try_get(0)?;
        let last: Option<String> = row.try_get(1)?;
        let queues: Vec<String> = row.try_get(2)?;
        if last.as_deref() == Some("deleted") {
            r.agents_deleted.push(id);
            continue;
        }
        if store.agent(&id).await?.is_some() {
            r.agents_known.push(id);
            continue;
        }
        // the last profile and token generation its events recorded
        let profile_row = archive
            .query_opt(
                "SELECT fields FROM events
                  WHERE centre = $1 AND agent = $2 AND type = 'agent' AND fields ? 'queues'
                  ORDER BY at DESC, id DESC LIMIT 1",
                &[&centre.centre, &id],
            )
            .await?;
        let gen_row = archive
            .query_opt(
                "SELECT fields->>'token_gen' FROM events
                  WHERE centre = $1 AND agent = $2 AND type = 'agent'
                    AND coalesce(fields->>'token_gen', '') <> ''
                  ORDER BY at DESC, id DESC LIMIT 1",
                &[&centre.centre, &id],
            )
            .await?;
        let profile = match profile_row {
            Some(row) => {
                let fields: serde_json::Value = row.try_get(0)?;
                recorded_profile(&id, &fields).map(|mut p| {
                    p.queues.retain(|(q, _)| configured.contains(q));
                    p
                })
            }
            None => None,
        };
        let token_gen = match gen_row {
            Some(row) => row.try_get::<_, Option<String>>(0)?,
            None => None,
        };
        let queues: Vec<String> = match &profile {
            Some(p) => p.queues.iter().map(|(q, _)| q.clone()).collect(),
            None => queues
                .into_iter()
                .filter(|q| configured.contains(q))
                .collect(),
        };
        if queues.is_empty() {
            r.agents_no_queue.push(id);
            continue;
        }
        let tokens_kept = token_gen.is_some();
        r.agents_restore.push(AgentPlan {
            id,
            queues,
            profile,
            token_gen,
            tokens_kept,
        });
    }
    if opts.apply {
        let mut created = Vec::new();
        for a in std::mem::take(&mut r.agents_restore) {
            let spec = a.profile.clone().unwrap_or_else(|| AgentSpec {
                id: a.id.clone(),
                identity: a.id.clone(),
                queues: a.queues.iter().map(|q| (q.clone(), 1)).collect(),
                capacity: 1,
                skills: Skills::default(),
                order: 0,
                weight: 1,
            });
            let made = match &a.token_gen {
                Some(gen) => {
                    store
                        .upsert_agent_with_generation(&spec, UpsertMode::Create, gen)
                        .await
                }
                None => store.upsert_agent(&spec, UpsertMode::Create).await,
            };
            match made {
                Ok(_) => created.push(a),
                Err(StoreError::AgentExists(_)) => r.agents_known.push(a.id),
                Err(e) => r.errors.push(format!("agent {}: {e}", a.id)),
            }
        }
        r.agents_restore = created;
    }

    // 3. waiting callers, from Twilio
    let mut queued_sids: HashSet<String> = HashSet::new();
    for tq in rest.list_queues(opts.max_pages).await? {
        let Some(name) = tq.friendly_name.as_deref() else {
            continue;
        };
        let Some(queue) = callq_queue(name, &configured) else {
            if name.starts_with("callq-") {
                r.twilio_queues_unknown.push(name.to_string());
            }
            continue;
        };
        for m in rest.list_queue_members(&tq.sid, opts.max_pages).await? {
            r.twilio_members += 1;
            queued_sids.insert(m.call_sid.clone());
            if store.call(&m.call_sid).await?.is_some() {
                r.callers_known.push(m.call_sid);
                continue;
            }
            let call = rest.fetch_call(&m.call_sid).await?;
            if call.status.is_final() {
                continue; // hung up since
            }
            r.callers_restore.push(CallerPlan {
                sid: m.call_sid,
                queue: queue.clone(),
                from: call.from.unwrap_or_default(),
                to: call.to.unwrap_or_default(),
                waited_s: m.wait_time.unwrap_or(0),
            });
        }
    }
    // first in line first: the longest wait
    r.callers_restore
        .sort_by(|a, b| b.waited_s.cmp(&a.waited_s).then(a.sid.cmp(&b.sid)));
    let (secs, micros) = store.redis_time().await?;
    let now_ms = secs * 1000 + micros / 1000;
    for number in centre_numbers(centre) {
        let filter = CallFilter {
            to: Some(number),
            status: Some(CallStatus::InProgress),
            page_size: 1000,
            ..CallFilter::default()
        };
        for c in rest.list_calls_all(&filter, opts.max_pages).await? {
            if queued_sids.contains(&c.sid) || c.parent_call_sid.is_some() {
                continue;
            }
            if store.call(&c.sid).await?.is_some() {
                continue;
            }
            match answered_in_archive(archive, &centre.centre, &c.sid, &configured, now_ms).await? {
                Some(plan) => r.calls_connected_restore.push(plan),
                None => r.calls_unqueued.push(c.sid),
            }
        }
    }
    if opts.apply {
        let mut done = Vec::new();
        for c in std::mem::take(&mut r.calls_connected_restore) {
            let kind = c.kind.parse().unwrap_or(CallKind::Inbound);
            let call = ConnectedCall {
                call_sid: &c.sid,
                queue: &c.queue,
                agent_id: &c.agent,
                attempt: c.attempt,
                from: &c.from,
                to: &c.to,
                kind,
                waited: Duration::from_secs(c.waited_s),
                talking: Duration::from_secs(c.talking_s),
            };
            match store.restore_connected(&call).await {
                Ok(RestoredCall::Restored) => done.push(c),
                Ok(RestoredCall::Known(_)) => {}
                Ok(other) => {
                    r.errors
                        .push(format!("connected call {}: {other:?}", c.sid));
                    r.calls_unqueued.push(c.sid);
                }
                Err(e) => r.errors.push(format!("connected call {}: {e}", c.sid)),
            }
        }
        r.calls_connected_restore = done;
    }
    if opts.apply {
        let mut done = Vec::new();
        for c in std::mem::take(&mut r.callers_restore) {
            let call = NewCall {
                call_sid: &c.sid,
                queue: &c.queue,
                from: &c.from,
                to: &c.to,
                priority_boost: centre.priority_boost(&c.from, &c.queue),
                kind: CallKind::Inbound,
                arrival: Arrival::Holding {
                    waited: Duration::from_secs(c.waited_s),
                },
                skills: centre.call_skills(&c.from, &c.queue, None),
            };
            match store.enqueue(&call).await {
                Ok(_) => done.push(c),
                Err(e) => r.errors.push(format!("caller {}: {e}", c.sid)),
            }
        }
        r.callers_restore = done;
    }

    // 4. callbacks, from the archive
    let (secs, micros) = store.redis_time().await?;
    let now_ms = secs * 1000 + micros / 1000;
    let rows = archive
        .query(
            "SELECT c.sid, c.queue, c.from_number,
               (extract(epoch FROM c.entered_at) * 1000)::bigint AS entered_ms
             FROM calls c
             WHERE c.centre = $1 AND c.outcome IS NULL AND c.answered_at IS NULL
               AND c.entered_at IS NOT NULL
               AND (c.kind = 'callback' OR EXISTS (SELECT 1 FROM events e
                     WHERE e.centre = $1 AND e.call_sid = c.sid AND e.type = 'callback'))
             ORDER BY c.entered_at, c.sid",
            &[&centre.centre],
        )
        .await?;
    r.callbacks_pending = rows.len();
    for row in rows {
        let sid: String = row.try_get(0)?;
        let queue: Option<String> = row.try_get(1)?;
        let number: Option<String> = row.try_get(2)?;
        let entered_ms: i64 = row.try_get(3)?;
        if store.call(&sid).await?.is_some() {
            r.callbacks_known.push(sid);
            continue;
        }
        let (Some(queue), Some(number)) = (queue, number.filter(|n| !n.is_empty())) else {
            r.callbacks_skipped.push(sid);
            continue;
        };
        if !configured.contains(&queue) {
            r.callbacks_skipped.push(sid);
            continue;
        }
        r.callbacks_restore.push(CallbackPlan {
            sid,
            queue,
            number,
            waited_s: (now_ms - entered_ms).max(0) as u64 / 1000,
        });
    }
    if opts.apply {
        let mut done = Vec::new();
        for c in std::mem::take(&mut r.callbacks_restore) {
            let call = NewCall {
                call_sid: &c.sid,
                queue: &c.queue,
                // a callback rings back its From
                from: &c.number,
                to: "",
                priority_boost: Duration::ZERO,
                kind: CallKind::Callback,
                arrival: Arrival::Holding {
                    waited: Duration::from_secs(c.waited_s),
                },
                skills: Skills::default(),
            };
            match store.enqueue(&call).await {
                Ok(_) => done.push(c),
                Err(e) => r.errors.push(format!("callback {}: {e}", c.sid)),
            }
        }
        r.callbacks_restore = done;
    }
    Ok(r)
}

/// The connection the archive recorded for call `sid` when an agent answered it and it has
/// no outcome there, in a configured queue; `now_ms` is Redis' clock.
async fn answered_in_archive(
    archive: &Client,
    centre: &str,
    sid: &str,
    configured: &BTreeSet<String>,
    now_ms: i64,
) -> Result<Option<ConnectedPlan>> {
    let row = archive
        .query_opt(
            "SELECT queue, agent, answer_attempt, coalesce(kind, 'inbound'),
               coalesce(from_number, ''), coalesce(to_number, ''),
               (extract(epoch FROM coalesce(entered_at, answered_at)) * 1000)::bigint,
               (extract(epoch FROM answered_at) * 1000)::bigint
             FROM calls
             WHERE centre = $1 AND sid = $2 AND answered_at IS NOT NULL AND outcome IS NULL
               AND agent IS NOT NULL AND agent <> '' AND queue IS NOT NULL",
            &[&centre, &sid],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let queue: String = row.try_get(0)?;
    if !configured.contains(&queue) {
        return Ok(None);
    }
    let attempt: Option<i32> = row.try_get(2)?;
    let entered_ms: i64 = row.try_get(6)?;
    let answered_ms: i64 = row.try_get(7)?;
    let secs_since = |t: i64| u64::try_from((now_ms - t).max(0) / 1000).unwrap_or(0);
    Ok(Some(ConnectedPlan {
        sid: sid.to_string(),
        queue,
        agent: row.try_get(1)?,
        attempt: attempt.and_then(|a| u32::try_from(a).ok()).unwrap_or(1),
        kind: row.try_get(3)?,
        from: row.try_get(4)?,
        to: row.try_get(5)?,
        waited_s: secs_since(entered_ms),
        talking_s: secs_since(answered_ms),
    }))
}

/// The callq queue a Twilio queue named `callq-<queue>` or `callq-<queue>-<shard>` holds the
/// callers of, if configured.
pub fn callq_queue(friendly_name: &str, configured: &BTreeSet<String>) -> Option<String> {
    let rest = friendly_name.strip_prefix("callq-")?;
    if configured.contains(rest) {
        return Some(rest.to_string());
    }
    let (base, shard) = rest.rsplit_once('-')?;
    (shard.chars().all(|c| c.is_ascii_digit()) && !shard.is_empty() && configured.contains(base))
        .then(|| base.to_string())
}

/// The numbers callers reach the centre on: every queue's and the IVR's.
fn centre_numbers(centre: &CentreConfig) -> Vec<String> {
    let mut numbers: BTreeSet<String> = centre
        .queues
        .values()
        .flat_map(|q| q.numbers.iter().cloned())
        .collect();
    if let Some(ivr) = &centre.ivr {
        numbers.extend(ivr.numbers.iter().cloned());
    }
    numbers.into_iter().collect()
}

/// The report as text.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let verb = if r.applied {
        "restored"
    } else {
        "would restore"
    };
    let ids = |v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!(": {}", v.join(", "))
        }
    };
    let _ = writeln!(
        s,
        "centre {}: {}",
        r.centre,
        if r.applied {
            "applied"
        } else {
            "dry run (nothing written; --apply to write)"
        }
    );
    let _ = writeln!(
        s,
        "queues: {} configured, {} missing in Redis{}",
        r.queues.len(),
        r.queues_missing.len(),
        ids(&r.queues_missing)
    );
    let _ = writeln!(
        s,
        "agents: {} in the archive, {} deleted, {} still in Redis, {} without a known queue{}",
        r.agents_in_archive,
        r.agents_deleted.len(),
        r.agents_known.len(),
        r.agents_no_queue.len(),
        ids(&r.agents_no_queue)
    );
    let agents: Vec<String> = r
        .agents_restore
        .iter()
        .map(|a| format!("{} ({})", a.id, a.queues.join(",")))
        .collect();
    let _ = writeln!(
        s,
        "  {verb} {} agents, offline{}",
        agents.len(),
        ids(&agents)
    );
    let new_tokens: Vec<String> = r
        .agents_restore
        .iter()
        .filter(|a| !a.tokens_kept)
        .map(|a| a.id.clone())
        .collect();
    if !new_tokens.is_empty() {
        let _ = writeln!(
            s,
            "  {} of them need a new token (POST /v1/admin/agents/{{id}}/token): no token generation on record{}",
            new_tokens.len(),
            ids(&new_tokens)
        );
    }
    let _ = writeln!(
        s,
        "callers: {} in the centre's Twilio queues, {} still in Redis",
        r.twilio_members,
        r.callers_known.len()
    );
    let callers: Vec<String> = r
        .callers_restore
        .iter()
        .map(|c| format!("{} ({}, waited {}s)", c.sid, c.queue, c.waited_s))
        .collect();
    let _ = writeln!(s, "  {verb} {} callers{}", callers.len(), ids(&callers));
    let connected: Vec<String> = r
        .calls_connected_restore
        .iter()
        .map(|c| {
            format!(
                "{} ({}, {}, talking {}s)",
                c.sid, c.queue, c.agent, c.talking_s
            )
        })
        .collect();
    if !connected.is_empty() {
        let _ = writeln!(
            s,
            "  {verb} {} calls connected to their agent{}",
            connected.len(),
            ids(&connected)
        );
    }
    if !r.calls_unqueued.is_empty() {
        let _ = writeln!(
            s,
            "  left alone: {} calls in progress in no Twilio queue{}",
            r.calls_unqueued.len(),
            ids(&r.calls_unqueued)
        );
    }
    if !r.twilio_queues_unknown.is_empty() {
        let _ = writeln!(
            s,
            "  Twilio queues of no configured queue{}",
            ids(&r.twilio_queues_unknown)
        );
    }
    let _ = writeln!(
        s,
        "callbacks: {} pending in the archive, {} still in Redis, {} skipped{}",
        r.callbacks_pending,
        r.callbacks_known.len(),
        r.callbacks_skipped.len(),
        ids(&r.callbacks_skipped)
    );
    let callbacks: Vec<String> = r
        .callbacks_restore
        .iter()
        .map(|c| {
            format!(
                "{} ({}, to {}, waited {}s)",
                c.sid, c.queue, c.number, c.waited_s
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "  {verb} {} callbacks{}",
        callbacks.len(),
        ids(&callbacks)
    );
    for e in &r.errors {
        let _ = writeln!(s, "error: {e}");
    }
    s
}

/// The counts of a report, per part (for logs and tests).
pub fn counts(r: &Report) -> BTreeMap<&'static str, usize> {
    BTreeMap::from([
        ("queues_missing", r.queues_missing.len()),
        ("agents_restore", r.agents_restore.len()),
        ("callers_restore", r.callers_restore.len()),
        ("calls_connected_restore", r.calls_connected_restore.len()),
        ("callbacks_restore", r.callbacks_restore.len()),
        ("errors", r.errors.len()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_queue_names_map_to_configured_queues() {
        let configured: BTreeSet<String> = ["sales", "support-2x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            callq_queue("callq-sales", &configured).as_deref(),
            Some("sales")
        );
        assert_eq!(
            callq_queue("callq-sales-3", &configured).as_deref(),
            Some("sales")
        );
        assert_eq!(
            callq_queue("callq-support-2x", &configured).as_deref(),
            Some("support-2x")
        );
        assert_eq!(callq_queue("callq-billing", &configured), None);
        assert_eq!(callq_queue("sales", &configured), None);
        assert_eq!(callq_queue("callq-sales-x", &configured), None);
    }
}
