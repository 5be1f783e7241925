//! `callq report`: the centre's KPIs per day (UTC) and queue, computed by PostgreSQL from the
//! archive's `calls` and `agent_changes` (percentile_cont for the 90th percentile).
//!
//! A call counts on the day it entered, in the queue it was last in; callbacks (calls callq
//! places to a customer) are left out of the call KPIs. Utilisation is per day for all agents
//! together: the talk time of the calls they completed over the time they were logged in, as
//! far as the archived status changes tell it (see [`AgentDay`]).

use serde::Serialize;
use tokio_postgres::Client;

use super::{ArchiveError, Result};

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    pub centre: String,
    /// First and last day, `YYYY-MM-DD`, both included.
    pub from: String,
    pub to: String,
    /// One queue only (the call KPIs; utilisation is per day for all agents).
    pub queue: Option<String>,
}

/// One queue on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueDay {
    pub day: String,
    pub queue: String,
    /// Calls that entered the queue (callbacks excluded).
    pub calls: i64,
    /// ... of which an agent answered.
    pub answered: i64,
    /// ... of which the caller hung up before an agent answered.
    pub abandoned: i64,
    /// ... of which were sent to the queue's overflow action.
    pub overflowed: i64,
    /// answered / calls.
    pub connected_share: Option<f64>,
    /// Mean and 90th percentile of the wait to answer (entered → answered), answered calls.
    pub avg_wait_s: Option<f64>,
    pub p90_wait_s: Option<f64>,
    /// abandoned / calls.
    pub abandon_rate: Option<f64>,
    /// Calls offered to an agent at least once.
    pub offered: i64,
    /// Calls answered on the first offer / calls offered.
    pub first_offer_success: Option<f64>,
}

/// All agents on one day. `logged_in_s` adds up, for each agent, the time between an archived
/// status change to anything but `offline` (or `deleted`) and the agent's next change,
/// clipped to the day (the last change of an agent runs until now). An agent whose last change
/// came before the archive started is not counted until it changes status again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentDay {
    pub day: String,
    pub logged_in_s: f64,
    /// Talk time of the calls completed that day (answered → ended).
    pub talk_s: f64,
    /// talk_s / logged_in_s.
    pub utilisation: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub centre: String,
    pub from: String,
    pub to: String,
    pub queues: Vec<QueueDay>,
    pub agents: Vec<AgentDay>,
}

fn check_day(what: &'static str, day: &str) -> Result<()> {
    day.parse::<jiff::civil::Date>()
        .map(|_| ())
        .map_err(|_| ArchiveError::Invalid {
            what,
            value: day.chars().take(40).collect(),
            why: "a day is YYYY-MM-DD",
        })
}

const QUEUE_SQL: &str = "
WITH c AS (
  SELECT *, (coalesce(entered_at, offered_at, answered_at, ended_at) AT TIME ZONE 'UTC')::date AS day
  FROM calls
  WHERE centre = $1 AND coalesce(kind, 'inbound') <> 'callback'
)
SELECT to_char(day, 'YYYY-MM-DD') AS day,
       coalesce(queue, '') AS queue,
       count(*) AS calls,
       count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
       count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned,
       count(*) FILTER (WHERE outcome = 'overflowed') AS overflowed,
       avg(wait_s) FILTER (WHERE answered_at IS NOT NULL) AS avg_wait_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_s)
         FILTER (WHERE answered_at IS NOT NULL) AS p90_wait_s,
       count(*) FILTER (WHERE offered_at IS NOT NULL) AS offered,
       count(*) FILTER (WHERE answer_attempt = 1) AS first_offer
FROM c
WHERE day BETWEEN $2::text::date AND $3::text::date
  AND ($4::text IS NULL OR queue = $4::text)
GROUP BY day, queue
ORDER BY day, queue";

const AGENT_SQL: &str = "
WITH ch AS (
  SELECT agent, status, at AT TIME ZONE 'UTC' AS t0,
         coalesce(lead(at) OVER (PARTITION BY agent ORDER BY at, event_id), now())
           AT TIME ZONE 'UTC' AS t1
  FROM agent_changes
  WHERE centre = $1 AND kind = 'status'
),
on_days AS (
  SELECT d::date AS day,
         extract(epoch FROM least(t1, d + interval '1 day') - greatest(t0, d))::double precision AS s
  FROM ch CROSS JOIN LATERAL generate_series(date_trunc('day', t0), t1, interval '1 day') AS d
  WHERE status NOT IN ('offline', 'deleted') AND t1 > t0
),
logged AS (
  SELECT day, sum(s) AS logged_in_s FROM on_days
  WHERE day BETWEEN $2::text::date AND $3::text::date AND s > 0
  GROUP BY day
),
talk AS (
  SELECT (ended_at AT TIME ZONE 'UTC')::date AS day, sum(talk_s) AS talk_s
  FROM calls
  WHERE centre = $1 AND outcome = 'completed' AND talk_s IS NOT NULL
    AND (ended_at AT TIME ZONE 'UTC')::date BETWEEN $2::text::date AND $3::text::date
  GROUP BY 1
)
SELECT to_char(coalesce(l.day, t.day), 'YYYY-MM-DD') AS day,
       coalesce(l.logged_in_s, 0)::double precision AS logged_in_s,
       coalesce(t.talk_s, 0)::double precision AS talk_s
FROM logged l FULL JOIN talk t ON l.day = t.day
ORDER BY 1";

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The KPIs of `opts`' days.
pub async fn report(client: &Client, opts: &ReportOptions) -> Result<Report> {
    check_day("--from", &opts.from)?;
    check_day("--to", &opts.to)?;
    let rows = client
        .query(
            QUEUE_SQL,
            &[&opts.centre, &opts.from, &opts.to, &opts.queue],
        )
        .await
        .map_err(|e| match e.code() {
            Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                ArchiveError::NoArchive("calls".to_string())
            }
            _ => e.into(),
        })?;
    let mut queues = Vec::with_capacity(rows.len());
    for r in rows {
        let calls: i64 = r.try_get("calls")?;
        let answered: i64 = r.try_get("answered")?;
        let abandoned: i64 = r.try_get("abandoned")?;
        let offered: i64 = r.try_get("offered")?;
        let first: i64 = r.try_get("first_offer")?;
        queues.push(QueueDay {
            day: r.try_get("day")?,
            queue: r.try_get("queue")?,
            calls,
            answered,
            abandoned,
            overflowed: r.try_get("overflowed")?,
            connected_share: ratio(answered, calls),
            avg_wait_s: r.try_get("avg_wait_s")?,
            p90_wait_s: r.try_get("p90_wait_s")?,
            abandon_rate: ratio(abandoned, calls),
            offered,
            first_offer_success: ratio(first, offered),
        });
    }
    let rows = client
        .query(AGENT_SQL, &[&opts.centre, &opts.from, &opts.to])
        .await?;
    let mut agents = Vec::with_capacity(rows.len());
    for r in rows {
        let logged_in_s: f64 = r.try_get("logged_in_s")?;
        let talk_s: f64 = r.try_get("talk_s")?;
        agents.push(AgentDay {
            day: r.try_get("day")?,
            logged_in_s,
            talk_s,
            utilisation: (logged_in_s > 0.0).then(|| talk_s / logged_in_s),
        });
    }
    Ok(Report {
        centre: opts.centre.clone(),
        from: opts.from.clone(),
        to: opts.to.clone(),
        queues,
        agents,
    })
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.1}%", v * 100.0))
        .unwrap_or_else(|| "-".to_string())
}

fn secs(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}s"))
        .unwrap_or_else(|| "-".to_string())
}

/// The report as a text table.
pub fn render(r: &Report) -> String {
    let mut out = format!("centre {}, {} to {} (UTC days)\n\n", r.centre, r.from, r.to);
    out.push_str(&format!(
        "{:<10}  {:<12} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}\n",
        "day",
        "queue",
        "calls",
        "connected",
        "avg wait",
        "p90 wait",
        "abandoned",
        "overflow",
        "1st offer"
    ));
    if r.queues.is_empty() {
        out.push_str("(no calls)\n");
    }
    for q in &r.queues {
        out.push_str(&format!(
            "{:<10}  {:<12} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}\n",
            q.day,
            q.queue,
            q.calls,
            pct(q.connected_share),
            secs(q.avg_wait_s),
            secs(q.p90_wait_s),
            pct(q.abandon_rate),
            q.overflowed,
            pct(q.first_offer_success),
        ));
    }
    out.push_str(&format!(
        "\n{:<10}  {:>12} {:>12} {:>11}\n",
        "day", "logged in", "talk", "utilisation"
    ));
    if r.agents.is_empty() {
        out.push_str("(no agent activity)\n");
    }
    for a in &r.agents {
        out.push_str(&format!(
            "{:<10}  {:>12} {:>12} {:>11}\n",
            a.day,
            secs(Some(a.logged_in_s)),
            secs(Some(a.talk_s)),
            pct(a.utilisation),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_iso_dates() {
        assert!(check_day("--from", "2026-11-30").is_ok());
        for bad in [
            "30/11/2026",
            "2026-13-01",
            "",
            "2026-11-30; DROP TABLE calls",
        ] {
            assert!(check_day("--from", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_table_shows_shares_as_percentages_and_missing_figures_as_dashes() {
        let r = Report {
            centre: "main".into(),
            from: "2026-11-30".into(),
            to: "2026-11-30".into(),
            queues: vec![QueueDay {
                day: "2026-11-30".into(),
                queue: "sales".into(),
                calls: 4,
                answered: 3,
                abandoned: 1,
                overflowed: 0,
                connected_share: ratio(3, 4),
                avg_wait_s: Some(20.0),
                p90_wait_s: Some(28.0),
                abandon_rate: ratio(1, 4),
                offered: 0,
                first_offer_success: ratio(0, 0),
            }],
            agents: vec![],
        };
        let text = render(&r);
        assert!(text.contains("75.0%") && text.contains("25.0%"), "{text}");
        assert!(text.contains("20.0s") && text.contains("28.0s"), "{text}");
        assert!(text.contains("(no agent activity)"), "{text}");
        assert_eq!(ratio(1, 0), None);
    }
}
