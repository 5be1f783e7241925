//! Twilio's record of calls, which its REST API reads and updates: every call Twilio has made
//! or received — inbound calls, calls created with `POST …/Calls.json` (`outbound-api`), and
//! the child legs a `<Dial>` creates (`outbound-dial`, with the dialling call as parent) — with
//! its status and times, and, while it is live, the channel that reaches it.
//!
//! Statuses move as Twilio's do: an inbound call is `ringing` until Twilio runs its first
//! TwiML, then `in-progress`; a created call or a dialled leg is `queued`, `ringing`, then
//! `in-progress` once answered; a call ends `completed`, or, never answered, `busy`, `failed`,
//! `no-answer` or `canceled`. Only an `in-progress` call takes new TwiML; `Status=canceled`
//! ends a call still queued or ringing and leaves an answered one alone; `Status=completed`
//! ends any live call.
//!
//! Memory stays bounded on long runs: ended calls are kept for reads up to
//! [`RETAIN_ENDED`], the oldest forgotten first (a read of a forgotten call is a 20404).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::twiml_exec::{CallInfo, Control};

/// Ended calls kept for the REST API's reads.
pub const RETAIN_ENDED: usize = 50_000;

/// A call as Twilio records it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub info: CallInfo,
    pub parent_call_sid: Option<String>,
    /// `queued`, `ringing`, `in-progress`, or a final status.
    pub status: &'static str,
    pub created: Timestamp,
    pub updated: Timestamp,
    /// When it was dialled (None while queued).
    pub started: Option<Timestamp>,
    /// When it was answered (went `in-progress`).
    pub answered: Option<Timestamp>,
    pub ended: Option<Timestamp>,
    /// Creation order, for newest-first lists.
    pub seq: u64,
}

impl CallRecord {
    pub fn is_live(&self) -> bool {
        is_live(self.status)
    }

    /// Whole seconds from answer to end, for a completed call (None otherwise, as Twilio
    /// leaves it empty for busy, failed, unanswered and ongoing calls).
    pub fn duration_s(&self) -> Option<i64> {
        if self.status != "completed" {
            return None;
        }
        let (a, e) = (self.answered?, self.ended?);
        Some(e.duration_since(a).as_secs().max(0))
    }
}

fn is_live(status: &str) -> bool {
    matches!(status, "queued" | "ringing" | "in-progress")
}

#[derive(Debug)]
struct Entry {
    rec: CallRecord,
    /// Reaches the live call (None once ended, or for a leg nobody can steer).
    control: Option<mpsc::UnboundedSender<Control>>,
    /// A call placed by a caller or created over REST (counted in [`Registry::live`]), not a
    /// dialled leg.
    top_level: bool,
    /// Since when callq has had the call in line (None: not waiting now).
    waiting_since: Option<Instant>,
}

#[derive(Debug)]
struct Inner {
    calls: HashMap<String, Entry>,
    ended: VecDeque<String>,
    seq: u64,
    retain: usize,
}

/// Why a REST request about a call cannot be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallGone {
    /// Twilio never had this call, or has forgotten it (20404).
    Unknown,
    /// The call is not in progress: ended, or not yet answered (21220).
    NotInProgress,
}

/// A REST update of a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// `Twiml` or `Url`: new instructions, for an `in-progress` call only.
    Redirect(Control),
    /// `Status=completed`: end the call, whatever its live status.
    Complete,
    /// `Status=canceled`: end the call if it is still queued or ringing.
    Cancel,
}

/// A call as an update or a read answers it.
#[derive(Debug, Clone)]
pub struct CallView {
    pub rec: CallRecord,
    /// How long callq had it in line when an update reached it (inbound calls).
    pub waited: Option<Duration>,
}

/// Filters of `GET …/Calls.json`; dates are UTC days.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    pub to: Option<String>,
    pub from: Option<String>,
    pub parent_call_sid: Option<String>,
    pub status: Option<String>,
    pub start: DateFilter,
    pub end: DateFilter,
}

/// `StartTime=D` (that day), `StartTime>=D` (at or after its midnight), `StartTime<=D`
/// (before its midnight), and the same for `EndTime`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DateFilter {
    pub on: Option<Date>,
    pub on_or_after: Option<Date>,
    pub before: Option<Date>,
}

fn midnight(d: Date) -> Option<Timestamp> {
    d.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp())
}

impl DateFilter {
    pub fn is_empty(&self) -> bool {
        *self == DateFilter::default()
    }

    fn admits(&self, t: Option<Timestamp>) -> bool {
        if self.is_empty() {
            return true;
        }
        let Some(t) = t else { return false };
        let day = t.to_zoned(TimeZone::UTC).date();
        self.on.is_none_or(|d| day == d)
            && self.on_or_after.and_then(midnight).is_none_or(|m| t >= m)
            && self.before.and_then(midnight).is_none_or(|m| t < m)
    }
}

impl CallFilter {
    pub fn admits(&self, r: &CallRecord) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == have)
        };
        eq(&self.to, Some(&r.info.to))
            && eq(&self.from, Some(&r.info.from))
            && eq(&self.parent_call_sid, r.parent_call_sid.as_deref())
            && eq(&self.status, Some(r.status))
            && self.start.admits(r.started)
            && self.end.admits(r.ended)
    }
}

/// Every call Twilio knows of, by CallSid.
#[derive(Debug)]
pub struct Registry {
    inner: Mutex<Inner>,
    live: AtomicUsize,
    idle: Notify,
}

impl Default for Registry {
    fn default() -> Self {
        Self::with_retention(RETAIN_ENDED)
    }
}

impl Registry {
    /// A registry keeping at most `retain` ended calls.
    pub fn with_retention(retain: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                calls: HashMap::new(),
                ended: VecDeque::new(),
                seq: 0,
                retain,
            }),
            live: AtomicUsize::new(0),
            idle: Notify::new(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    fn add(
        &self,
        info: CallInfo,
        parent: Option<&str>,
        control: Option<mpsc::UnboundedSender<Control>>,
        status: &'static str,
        top_level: bool,
    ) -> CallRecord {
        if top_level {
            self.live.fetch_add(1, Ordering::SeqCst);
        }
        let now = Timestamp::now();
        self.with(|m| {
            m.seq += 1;
            let rec = CallRecord {
                info,
                parent_call_sid: parent.map(str::to_string),
                status,
                created: now,
                updated: now,
                started: (status != "queued").then_some(now),
                answered: (status == "in-progress").then_some(now),
                ended: None,
                seq: m.seq,
            };
            m.calls.insert(
                rec.info.sid.clone(),
                Entry {
                    rec: rec.clone(),
                    control,
                    top_level,
                    waiting_since: None,
                },
            );
            rec
        })
    }

    /// A call placed by a caller (`ringing`) or created over REST (`queued`).
    pub(crate) fn insert(
        &self,
        info: CallInfo,
        control: mpsc::UnboundedSender<Control>,
        status: &'static str,
    ) -> CallView {
        let rec = self.add(info, None, Some(control), status, true);
        CallView { rec, waited: None }
    }

    /// A child leg dialled by `parent`, `queued`; returns its control channel.
    pub(crate) fn insert_leg(
        &self,
        info: CallInfo,
        parent: &str,
    ) -> mpsc::UnboundedReceiver<Control> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.add(info, Some(parent), Some(tx), "queued", false);
        rx
    }

    /// The call reached `status`; a final status ends it. Nothing changes once it has ended.
    pub(crate) fn set_status(&self, sid: &str, status: &'static str) {
        let now = Timestamp::now();
        let ended_top_level = self.with(|m| {
            let e = m.calls.get_mut(sid)?;
            if !e.rec.is_live() || e.rec.status == status {
                return None;
            }
            e.rec.status = status;
            e.rec.updated = now;
            if status != "queued" {
                e.rec.started.get_or_insert(now);
            }
            if status == "in-progress" {
                e.rec.answered.get_or_insert(now);
            }
            if is_live(status) {
                return None;
            }
            e.rec.ended = Some(now);
            e.control = None;
            e.waiting_since = None;
            let top = e.top_level;
            m.ended.push_back(sid.to_string());
            while m.ended.len() > m.retain {
                if let Some(old) = m.ended.pop_front() {
                    m.calls.remove(&old);
                }
            }
            Some(top)
        });
        if ended_top_level == Some(true) && self.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// The call is over: `completed` if it was answered, else `failed` (or its final status
    /// stays, if it already has one).
    pub(crate) fn end(&self, sid: &str) {
        let status = self.with(|m| match m.calls.get(sid).map(|e| e.rec.status) {
            Some("in-progress") => "completed",
            _ => "failed",
        });
        self.set_status(sid, status);
    }

    pub(crate) fn waiting(&self, sid: &str) {
        self.with(|m| {
            if let Some(e) = m.calls.get_mut(sid) {
                e.waiting_since.get_or_insert_with(Instant::now);
            }
        });
    }

    /// Applies a REST update to a call, as Twilio would.
    pub fn update(&self, sid: &str, u: Update) -> Result<CallView, CallGone> {
        self.with(|m| {
            let e = m.calls.get_mut(sid).ok_or(CallGone::Unknown)?;
            let status = e.rec.status;
            let control = match u {
                _ if !is_live(status) => return Err(CallGone::NotInProgress),
                Update::Redirect(_) if status != "in-progress" => {
                    return Err(CallGone::NotInProgress)
                }
                Update::Redirect(c) => Some(c),
                Update::Complete => Some(Control::Hangup),
                // an answered call is not affected by a cancel
                Update::Cancel if status == "in-progress" => None,
                Update::Cancel => Some(Control::Hangup),
            };
            let waited = match &control {
                Some(Control::Twiml(_) | Control::Url(_)) => {
                    e.waiting_since.take().map(|t| t.elapsed())
                }
                _ => None,
            };
            if let Some(c) = control {
                let sent = e.control.as_ref().is_some_and(|tx| tx.send(c).is_ok());
                if !sent {
                    return Err(CallGone::NotInProgress);
                }
            }
            Ok(CallView {
                rec: e.rec.clone(),
                waited,
            })
        })
    }

    pub fn view(&self, sid: &str) -> Option<CallView> {
        self.with(|m| {
            m.calls.get(sid).map(|e| CallView {
                rec: e.rec.clone(),
                waited: None,
            })
        })
    }

    /// The calls `filter` admits, newest first.
    pub fn list(&self, filter: &CallFilter) -> Vec<CallRecord> {
        let mut v: Vec<CallRecord> = self.with(|m| {
            m.calls
                .values()
                .filter(|e| filter.admits(&e.rec))
                .map(|e| e.rec.clone())
                .collect()
        });
        v.sort_by_key(|c| std::cmp::Reverse(c.seq));
        v
    }

    /// Calls (placed or created, not dialled legs) not yet ended.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Calls held in the registry, live or ended.
    pub fn len(&self) -> usize {
        self.with(|m| m.calls.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inbound calls not yet ended.
    pub fn live_inbound(&self) -> Vec<String> {
        self.with(|m| {
            m.calls
                .values()
                .filter(|e| e.rec.is_live() && e.rec.info.direction == "inbound")
                .map(|e| e.rec.info.sid.clone())
                .collect()
        })
    }

    /// Tells every live call that its caller hangs up.
    pub fn hang_up_all(&self) {
        self.with(|m| {
            for e in m.calls.values().filter(|e| e.top_level && e.rec.is_live()) {
                if let Some(tx) = &e.control {
                    let _ = tx.send(Control::CallerHangup);
                }
            }
        });
    }

    /// Waits until no call is live, or `timeout`; true when none is.
    pub async fn ended(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.live() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.live() == 0;
            }
        }
    }

    /// Moves a call's times back by `by` (tests of the date filters).
    #[cfg(test)]
    pub(crate) fn backdate(&self, sid: &str, by: jiff::SignedDuration) {
        self.with(|m| {
            if let Some(e) = m.calls.get_mut(sid) {
                let back = |t: Timestamp| t.checked_sub(by).unwrap_or(t);
                e.rec.created = back(e.rec.created);
                e.rec.updated = back(e.rec.updated);
                e.rec.started = e.rec.started.map(back);
                e.rec.answered = e.rec.answered.map(back);
                e.rec.ended = e.rec.ended.map(back);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(sid: &str, to: &str, direction: &str) -> CallInfo {
        CallInfo {
            sid: sid.into(),
            account_sid: "AC1".into(),
            from: "+15550001111".into(),
            to: to.into(),
            direction: direction.into(),
        }
    }

    #[test]
    fn an_inbound_call_takes_twiml_only_once_in_progress() {
        let r = Registry::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        r.insert(info("CA1", "+15005550001", "inbound"), tx, "ringing");
        let twiml = || Update::Redirect(Control::Url("https://x/y".into()));
        assert_eq!(
            r.update("CA1", twiml()).err(),
            Some(CallGone::NotInProgress)
        );
        r.set_status("CA1", "in-progress");
        let v = r.update("CA1", twiml()).expect("in progress");
        assert_eq!(v.rec.status, "in-progress");
        assert!(matches!(rx.try_recv(), Ok(Control::Url(_))));
        // a cancel leaves an answered call alone; completed hangs it up
        r.update("CA1", Update::Cancel).expect("accepted");
        assert!(rx.try_recv().is_err());
        r.update("CA1", Update::Complete).expect("accepted");
        assert_eq!(rx.try_recv(), Ok(Control::Hangup));
        r.end("CA1");
        assert_eq!(r.view("CA1").map(|v| v.rec.status), Some("completed"));
        for u in [twiml(), Update::Complete, Update::Cancel] {
            assert_eq!(r.update("CA1", u).err(), Some(CallGone::NotInProgress));
        }
        assert_eq!(
            r.update("CA9", Update::Complete).err(),
            Some(CallGone::Unknown)
        );
        assert_eq!(r.live(), 0);
    }

    #[test]
    fn a_leg_progresses_and_records_its_times() {
        let r = Registry::default();
        let _rx = r.insert_leg(info("CA2", "client:alice", "outbound-dial"), "CA1");
        let v = r.view("CA2").expect("known").rec;
        assert_eq!((v.status, v.started), ("queued", None));
        assert_eq!(v.parent_call_sid.as_deref(), Some("CA1"));
        r.set_status("CA2", "ringing");
        assert!(r.view("CA2").expect("known").rec.started.is_some());
        r.set_status("CA2", "in-progress");
        r.set_status("CA2", "completed");
        let v = r.view("CA2").expect("known").rec;
        assert_eq!(v.status, "completed");
        assert!(v.ended.is_some() && v.answered.is_some());
        assert_eq!(v.duration_s(), Some(0));
        // a final status never changes, and legs are not counted live
        r.set_status("CA2", "in-progress");
        assert_eq!(r.view("CA2").expect("known").rec.status, "completed");
        assert_eq!(r.live(), 0);
        let _rx = r.insert_leg(info("CA3", "client:bob", "outbound-dial"), "CA1");
        r.set_status("CA3", "no-answer");
        let v = r.view("CA3").expect("known").rec;
        assert_eq!(
            (v.status, v.duration_s(), v.answered),
            ("no-answer", None, None)
        );
    }

    #[test]
    fn a_cancel_ends_a_ringing_call() {
        let r = Registry::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        r.insert(info("CA1", "client:alice", "outbound-api"), tx, "queued");
        r.set_status("CA1", "ringing");
        r.update("CA1", Update::Cancel).expect("accepted");
        assert_eq!(rx.try_recv(), Ok(Control::Hangup));
    }

    #[test]
    fn ended_calls_are_forgotten_oldest_first_past_the_bound() {
        let r = Registry::with_retention(2);
        for i in 0..4 {
            let (tx, _rx) = mpsc::unbounded_channel();
            let sid = format!("CA{i}");
            r.insert(info(&sid, "+1", "inbound"), tx, "in-progress");
            r.end(&sid);
        }
        assert_eq!(r.len(), 2);
        assert!(r.view("CA0").is_none() && r.view("CA1").is_none());
        assert!(r.view("CA3").is_some());
        // live calls are never forgotten
        let (tx, _rx) = mpsc::unbounded_channel();
        r.insert(info("CAlive", "+1", "inbound"), tx, "ringing");
        for i in 4..8 {
            let (tx, _rx) = mpsc::unbounded_channel();
            let sid = format!("CA{i}");
            r.insert(info(&sid, "+1", "inbound"), tx, "in-progress");
            r.end(&sid);
        }
        assert!(r.view("CAlive").is_some());
        assert_eq!(r.live(), 1);
    }

    #[test]
    fn lists_filter_and_come_newest_first() {
        let r = Registry::default();
        let (tx, _rx) = mpsc::unbounded_channel();
        r.insert(info("CA1", "+15005550001", "inbound"), tx, "ringing");
        r.set_status("CA1", "in-progress");
        let _a = r.insert_leg(info("CA2", "client:alice", "outbound-dial"), "CA1");
        r.set_status("CA2", "ringing");
        r.set_status("CA2", "no-answer");
        let _b = r.insert_leg(info("CA3", "client:bob", "outbound-dial"), "CA1");
        r.set_status("CA3", "ringing");
        let sids =
            |f: &CallFilter| -> Vec<String> { r.list(f).into_iter().map(|c| c.info.sid).collect() };
        let children = CallFilter {
            parent_call_sid: Some("CA1".into()),
            ..CallFilter::default()
        };
        assert_eq!(sids(&children), ["CA3", "CA2"]);
        let ringing = CallFilter {
            status: Some("ringing".into()),
            ..children.clone()
        };
        assert_eq!(sids(&ringing), ["CA3"]);
        let to_alice = CallFilter {
            to: Some("client:alice".into()),
            from: Some("+15550001111".into()),
            ..CallFilter::default()
        };
        assert_eq!(sids(&to_alice), ["CA2"]);
        assert_eq!(sids(&CallFilter::default()), ["CA3", "CA2", "CA1"]);
    }

    #[test]
    fn date_filters_work_by_utc_day() {
        let r = Registry::default();
        let (tx, _rx) = mpsc::unbounded_channel();
        r.insert(info("CAold", "+1", "inbound"), tx, "ringing");
        r.end("CAold");
        r.backdate("CAold", jiff::SignedDuration::from_hours(72));
        let (tx, _rx) = mpsc::unbounded_channel();
        r.insert(info("CAnew", "+1", "inbound"), tx, "ringing");
        let _q = r.insert_leg(info("CAqueued", "client:a", "outbound-dial"), "CAnew");
        let today = Timestamp::now().to_zoned(TimeZone::UTC).date();
        let day = |n: i64| today.checked_add(jiff::Span::new().days(n)).expect("date");
        let start = |d: DateFilter| CallFilter {
            start: d,
            ..CallFilter::default()
        };
        let sids =
            |f: &CallFilter| -> Vec<String> { r.list(f).into_iter().map(|c| c.info.sid).collect() };
        // a queued leg has no start time and matches no start filter
        let on = |d| DateFilter {
            on: Some(d),
            ..DateFilter::default()
        };
        let after = |d| DateFilter {
            on_or_after: Some(d),
            ..DateFilter::default()
        };
        let before = |d| DateFilter {
            before: Some(d),
            ..DateFilter::default()
        };
        assert_eq!(sids(&start(on(today))), ["CAnew"]);
        assert_eq!(sids(&start(on(day(-3)))), ["CAold"]);
        assert_eq!(sids(&start(after(day(-1)))), ["CAnew"]);
        assert_eq!(sids(&start(after(day(-3)))), ["CAnew", "CAold"]);
        assert!(sids(&start(after(day(1)))).is_empty());
        assert_eq!(sids(&start(before(today))), ["CAold"]);
        assert_eq!(sids(&start(before(day(1)))), ["CAnew", "CAold"]);
        let ended = CallFilter {
            end: on(day(-3)),
            ..CallFilter::default()
        };
        assert_eq!(sids(&ended), ["CAold"]);
    }
}
