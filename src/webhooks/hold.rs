//! While a caller holds: the wait document `/twilio/wait`, the callback offer's `<Gather>`
//! action `/twilio/wait/gather`, and the `<Enqueue>` action `/twilio/queue-exit`.

use std::time::Duration;

use super::speech::Speech;
use super::{
    action_twiml, callable, enqueue_healing, enqueue_verb, fallback, hold_verbs, last_resort,
    now_ms, queue_config, speech_of, within, within_patiently, ExitState, Hook, Reply, Why,
};
use crate::app::AppState;
use crate::config::Action;
use crate::store::read::{estimate_wait, Position};
use crate::store::{Arrival, CallKind, CallRecord, CallState, OverflowRule, Transition};
use crate::twilio::twiml::{self, Gather, GatherChild, Say, Verb};
use crate::webhooks::announce;

/// Seconds the callback offer's `<Gather>` waits for a digit after its prompts and music.
const GATHER_TIMEOUT_S: u32 = 3;

/// How many times in a row `/twilio/queue-exit` puts a caller back after Twilio's `error`.
const MAX_REENQUEUE_RETRIES: u32 = 3;

/// How many sibling Twilio queues are tried when Twilio reports the queue full.
const MAX_SHARDS: u32 = 4;

/// `POST /twilio/wait?queue=`: position and estimated wait in our order, hold music, the
/// callback offer after the queue's `callback_after_s`, the overflow action at `max_wait_s`.
///
/// A wait request is Twilio's word that it holds the caller, so it also settles what callq
/// could not know: an arriving call joins its line (Twilio will now accept a redirect); a
/// caller callq has no record of (answered with the fallback while Redis was out of reach)
/// joins the line at the time they first arrived; a caller held as abandoned on anything but
/// their own hangup rejoins at their rank. A call callq holds as over is let go (`<Leave/>`
/// for an overflow, whose action the queue exit plays; `<Hangup/>` else), never kept on music.
pub(crate) async fn wait(h: Hook) -> Reply {
    let app = &h.app;
    let sid = h.call_sid.as_str();
    let looked_up = within(app, async {
        let Some(mut call) = known_or_entered(&h).await? else {
            return Ok(None);
        };
        let mut arrived = false;
        match call.state {
            CallState::Arriving => {
                if let Transition::Done(()) = app.store.arrive(sid).await? {
                    tracing::debug!("caller on hold: offerable now");
                    arrived = true;
                }
                call.state = CallState::Waiting;
            }
            CallState::Abandoned if call.end_reason.as_deref() != Some("hangup") => {
                if let Transition::Done(()) = app.store.reenter(sid).await? {
                    tracing::warn!(was = ?call.end_reason, "a caller held as gone asked for the wait document; back in line at their rank");
                    call.state = CallState::Waiting;
                }
            }
            _ => {}
        }
        if call.state != CallState::Waiting {
            return Ok(Some((call, None)));
        }
        let Some(place) = app.store.place_in_line(sid, &call.queue).await? else {
            return Ok(Some((call, None)));
        };
        let stats = app
            .stats_cache
            .queue_stats(&app.store, &call.queue, STATS_TTL)
            .await?;
        let line = Line {
            position: Position {
                position: place,
                estimated_wait_s: estimate_wait(place, &stats),
            },
            staffed: stats.staffed(),
            logged_in: stats.logged_in(),
            arrived,
        };
        Ok(Some((call, Some(line))))
    })
    .await;
    let queue = hook_queue(&h);
    match looked_up {
        Err(e) => {
            tracing::warn!(call_sid = %sid, error = %e, "redis unavailable; hold music only");
            Reply::twiml(hold_verbs(app, &queue, queue_time(&h)), "redis_error")
        }
        Ok(None) => Reply::twiml(hold_verbs(app, &queue, queue_time(&h)), "unknown_call"),
        Ok(Some((call, _))) if call.state == CallState::Overflowed => {
            Reply::twiml(twiml::Response::new().leave(), "overflowed")
        }
        Ok(Some((call, _)))
            if call.state == CallState::Callback
                || (call.kind == CallKind::Callback && !call.state.is_final()) =>
        {
            // asked for a callback, and our <Leave/> did not reach Twilio or the exit was
            // answered without Redis (so the caller was held again): leave now, even when
            // the callback is already ringing an agent
            Reply::twiml(twiml::Response::new().leave(), "callback")
        }
        Ok(Some((call, _))) if call.state.is_final() => {
            tracing::info!(state = %call.state, "wait request for a call already over; hanging up");
            Reply::twiml(twiml::Response::new().hangup(), "ended")
        }
        Ok(Some((call, None))) => {
            // offered or connected: the worker is moving the call; just music meanwhile
            Reply::twiml(hold_verbs(app, &call.queue, queue_time(&h)), "not_waiting")
        }
        Ok(Some((call, Some(line)))) => waiting(&h, &call, line).await,
    }
}

/// The queue a hold request is about: the `queue` our wait URL carries, else the called
/// number's.
fn hook_queue(h: &Hook) -> String {
    h.query
        .get("queue")
        .filter(|q| h.app.centre.queues.contains_key(*q))
        .map(str::to_owned)
        .unwrap_or_else(|| h.app.centre.queue_for_number(h.param("To")).to_owned())
}

/// The call of a wait request; a caller callq has no record of (answered with the fallback
/// while Redis was out of reach, or Redis lost its data) is taken into the line first, at
/// the time Twilio says they started holding.
async fn known_or_entered(h: &Hook) -> crate::store::Result<Option<CallRecord>> {
    let app = &h.app;
    if let Some(call) = app.store.call(&h.call_sid).await? {
        return Ok(Some(call));
    }
    let queue = hook_queue(h);
    let waited_s: u64 = h.param("QueueTime").trim().parse().unwrap_or(0);
    let arrival = Arrival::Holding {
        waited: Duration::from_secs(waited_s.min(86_400)),
    };
    let (from, to) = (h.param("From"), h.param("To"));
    let entered = enqueue_healing(
        app,
        &h.call_sid,
        &queue,
        from,
        to,
        CallKind::Inbound,
        arrival,
        None,
    )
    .await?;
    if entered.created {
        tracing::warn!(queue = %queue, waited_s, "a caller on hold without a record (fallback while Redis was out of reach) joins the line");
    }
    app.store.call(&h.call_sid).await
}

/// How long a queue's numbers (agents by status, mean handle time) are reused for the wait
/// estimate, from the server's [`StatsCache`](crate::app::StatsCache). The caller's place in
/// line is always read live; the estimate around it moves slowly, and reading every agent on
/// every wait request would cost five round trips.
const STATS_TTL: Duration = Duration::from_secs(1);

/// A waiting caller's place and who could serve them.
struct Line {
    position: Position,
    /// The queue's agents taking calls (available, reserved, busy, wrap-up).
    staffed: u64,
    /// The queue's agents logged in (staffed or paused).
    logged_in: u64,
    /// This is the caller's first wait request: they just joined the line.
    arrived: bool,
}

/// The wait document of a waiting caller.
async fn waiting(h: &Hook, call: &CallRecord, line: Line) -> Reply {
    let app = &h.app;
    let Some(cfg) = queue_config(app, &call.queue) else {
        return Reply::twiml(hold_verbs(app, &call.queue, queue_time(h)), "waiting");
    };
    let now = now_ms();
    let queue_time_s = queue_time(h);
    // Twilio's QueueTime restarts when the caller is put back after an unanswered offer; our
    // entry time does not. The max wait of a queue counts from the call's arrival in it.
    let waited_s = (secs_since(now, call.entered_ms)).max(queue_time_s);
    let in_queue_s = secs_since(now, call.transferred_ms.unwrap_or(call.entered_ms));

    // a full line turns a new caller to the overflow action at once, as a busy signal would
    if let (Some(max), Some(action)) = (cfg.max_waiting, cfg.overflow.as_ref()) {
        if line.arrived && line.position.position > max {
            return leave_line(h, call, action, Why::QueueFull).await;
        }
    }
    if let (Some(max), Some(action)) = (cfg.max_wait_s, cfg.overflow.as_ref()) {
        if in_queue_s >= max {
            return leave_line(h, call, action, Why::MaxWait).await;
        }
    }
    if let Some(action) = cfg.no_agents.as_ref() {
        if line.logged_in == 0 && in_queue_s >= cfg.no_agents_after_s {
            return leave_line(h, call, action, Why::NoAgents).await;
        }
    }

    let sp = Speech::of_queue(cfg);
    let position_words = announce::position_in(sp.lang, line.position.position);
    let wait_words = if line.staffed == 0 {
        sp.phrases().nobody_staffed.to_string()
    } else {
        announce::wait_sentence_in(sp.lang, line.position.estimated_wait_s)
    };
    let offer = cfg.callback_after_s.is_some_and(|after| waited_s >= after)
        && callable(caller(h, call))
        && app.features().await.callbacks;
    Reply::twiml(
        sp.spoken(announcements(
            app,
            &call.queue,
            &[position_words, wait_words],
            offer,
            queue_time_s,
        )),
        if offer { "callback_offer" } else { "waiting" },
    )
}

/// How long Twilio says the caller has held in its queue (`QueueTime`; 0 when absent).
fn queue_time(h: &Hook) -> u64 {
    h.param("QueueTime").trim().parse().unwrap_or(0)
}

/// The caller's number: Twilio's `From`, else the one recorded when the call came in.
fn caller<'a>(h: &'a Hook, call: &'a CallRecord) -> &'a str {
    match h.param("From") {
        "" => call.from.as_str(),
        from => from,
    }
}

fn secs_since(now_ms: i64, then_ms: i64) -> u64 {
    u64::try_from(now_ms.saturating_sub(then_ms).max(0) / 1000).unwrap_or(0)
}

/// What a waiting caller hears: `words`, then hold music; with the callback offer, all of it
/// inside a one-digit `<Gather>` so that 1 can be pressed at any time.
fn announcements(
    app: &AppState,
    queue: &str,
    words: &[String],
    offer: bool,
    waited_s: u64,
) -> twiml::Response {
    let music = hold_verbs(app, queue, waited_s);
    if !offer {
        let mut doc = twiml::Response::new();
        for w in words {
            doc = doc.say(w.as_str());
        }
        doc.verbs.extend(music.verbs);
        return doc;
    }
    let mut children: Vec<GatherChild> = words
        .iter()
        .map(|w| GatherChild::Say(Say::new(w.as_str())))
        .collect();
    children.push(GatherChild::Say(Say::new(
        speech_of(app, queue).phrases().callback_offer,
    )));
    for verb in music.verbs {
        match verb {
            Verb::Play(p) => children.push(GatherChild::Play(p)),
            Verb::Pause { length } => children.push(GatherChild::Pause { length }),
            _ => {}
        }
    }
    twiml::Response::new().verb(Gather {
        input: Some("dtmf".into()),
        num_digits: Some(1),
        action: Some(app.public("/twilio/wait/gather")),
        method: Some("POST".into()),
        timeout: Some(GATHER_TIMEOUT_S),
        finish_on_key: None,
        children,
    })
}

/// The caller leaves the line for `action`: the queue's overflow at its max wait, or its
/// `no_agents` action. The rule is recorded with the overflow, so the queue exit plays the
/// right action.
async fn leave_line(h: &Hook, call: &CallRecord, action: &Action, why: Why) -> Reply {
    let app = &h.app;
    let sid = h.call_sid.as_str();
    match action {
        Action::Queue { queue } => match within(app, app.store.transfer(sid, queue)).await {
            Ok(Transition::Done(from)) => {
                tracing::info!(from_queue = %from, to = %queue, ?why, "call moved to another queue");
                // said in the language of the queue the caller leaves
                let sp = speech_of(app, &call.queue);
                let mut doc = twiml::Response::new().say(sp.phrases().passed_to_more_agents);
                doc.verbs
                    .extend(hold_verbs(app, queue, queue_time(h)).verbs);
                Reply::twiml(sp.spoken(doc), "overflow_queue")
            }
            Ok(Transition::Stale(state)) => {
                tracing::info!(state = ?state, ?why, "call no longer waiting");
                Reply::twiml(hold_verbs(app, &call.queue, queue_time(h)), "not_waiting")
            }
            Err(e) => {
                tracing::warn!(call_sid = %sid, error = %e, ?why, "redis unavailable; hold music");
                Reply::twiml(hold_verbs(app, &call.queue, queue_time(h)), "redis_error")
            }
        },
        Action::Callback => {
            let from = caller(h, call);
            if !callable(from) {
                // nothing to call back: keep the caller in line rather than drop them
                return Reply::twiml(hold_verbs(app, &call.queue, queue_time(h)), "waiting");
            }
            callback(h, from, &call.queue).await
        }
        other => {
            let label = match other {
                Action::Voicemail => "voicemail".to_owned(),
                Action::Dial { number } => format!("dial:{number}"),
                _ => "hangup".to_owned(),
            };
            let rule = match why {
                Why::NoAgents => OverflowRule::NoAgents,
                Why::QueueFull => OverflowRule::QueueFull,
                _ => OverflowRule::MaxWait,
            };
            match within(app, app.store.overflow(sid, &label, rule)).await {
                Ok(Transition::Done(())) => {
                    tracing::info!(to = %label, ?why, "call overflowed");
                    // `<Leave/>`: the Enqueue action (/twilio/queue-exit) plays the action
                    Reply::twiml(twiml::Response::new().leave(), "overflow")
                }
                Ok(Transition::Stale(state)) => {
                    tracing::info!(state = ?state, ?why, "call no longer waiting");
                    Reply::twiml(hold_verbs(app, &call.queue, queue_time(h)), "not_waiting")
                }
                Err(e) => {
                    tracing::warn!(call_sid = %sid, error = %e, ?why, "redis unavailable; hold music");
                    Reply::twiml(hold_verbs(app, &call.queue, queue_time(h)), "redis_error")
                }
            }
        }
    }
}

/// Record a callback request for `from` and let the caller leave the queue.
async fn callback(h: &Hook, from: &str, queue: &str) -> Reply {
    let app = &h.app;
    // the caller pressed the key and waits for the answer: Redis is given time to pause
    // (the request is idempotent, so a try that timed out may be made again)
    match within_patiently(app, || app.store.request_callback(&h.call_sid, from)).await {
        Ok(Transition::Done(())) | Ok(Transition::Stale(Some(CallState::Callback))) => {
            tracing::info!("callback requested");
            let sp = speech_of(app, queue);
            let doc = twiml::Response::new()
                .say(sp.phrases().callback_taken)
                .leave();
            Reply::twiml(sp.spoken(doc), "callback")
        }
        Ok(Transition::Stale(state)) => {
            tracing::info!(state = ?state, "callback request for a call no longer waiting");
            Reply::twiml(hold_verbs(app, queue, queue_time(h)), "not_waiting")
        }
        Err(e) => {
            tracing::warn!(call_sid = %h.call_sid, error = %e, "redis unavailable; callback request not taken");
            let sp = speech_of(app, queue);
            let mut doc = twiml::Response::new().say(sp.phrases().callback_not_taken);
            doc.verbs
                .extend(hold_verbs(app, queue, queue_time(h)).verbs);
            Reply::twiml(sp.spoken(doc), "redis_error")
        }
    }
}

/// `POST /twilio/wait/gather`: the callback offer's answer. `1` asks for a callback (the
/// caller leaves the queue and keeps their place); anything else goes back to hold music.
/// Its TwiML runs in the wait context: Play, Say, Pause, Leave, Hangup, Redirect, Gather.
pub(crate) async fn gather(h: Hook) -> Reply {
    let app = &h.app;
    // the caller's queue, for its hold music (the default queue's when Redis cannot tell);
    // the caller pressed a key and waits for the answer, so Redis is given time to pause
    let looked_up = within_patiently(app, || app.store.call(&h.call_sid)).await;
    let (queue, recorded_from, redis_ok) = match looked_up {
        Ok(Some(call)) => (call.queue, call.from, true),
        Ok(None) => (app.centre.default_queue.clone(), String::new(), true),
        Err(e) => {
            tracing::warn!(call_sid = %h.call_sid, error = %e, "redis unavailable at the callback offer");
            (app.centre.default_queue.clone(), String::new(), false)
        }
    };
    let sp = speech_of(app, &queue);
    let digits = h.param("Digits").trim();
    if digits != "1" {
        let mut doc = twiml::Response::new();
        if !digits.is_empty() {
            doc = doc.say(sp.phrases().hold_not_an_option);
        }
        doc.verbs
            .extend(hold_verbs(app, &queue, queue_time(&h)).verbs);
        return Reply::twiml(sp.spoken(doc), "hold");
    }
    let from = match h.param("From") {
        "" => recorded_from,
        from => from.to_owned(),
    };
    if !callable(&from) {
        let mut doc = twiml::Response::new().say(sp.phrases().hold_withheld);
        doc.verbs
            .extend(hold_verbs(app, &queue, queue_time(&h)).verbs);
        return Reply::twiml(sp.spoken(doc), "withheld");
    }
    if !redis_ok {
        let mut doc = twiml::Response::new().say(sp.phrases().callback_not_taken);
        doc.verbs
            .extend(hold_verbs(app, &queue, queue_time(&h)).verbs);
        return Reply::twiml(sp.spoken(doc), "redis_error");
    }
    callback(&h, &from, &queue).await
}

/// `POST /twilio/queue-exit`: why the caller left Twilio's queue (`QueueResult`).
pub(crate) async fn queue_exit(h: Hook) -> Reply {
    let app = &h.app;
    let result = h.param("QueueResult").to_owned();
    let exit = ExitState::from_query(&h.query);
    match result.as_str() {
        // the worker redirected the caller to an agent (or Twilio bridged them): their
        // document now comes from elsewhere
        "bridged" | "bridging-in-process" | "redirected" | "redirected-from-bridged" => {
            Reply::twiml(twiml::Response::new(), "dequeued")
        }
        "hangup" => {
            match within(app, app.store.abandon(&h.call_sid, "hangup")).await {
                Ok(Transition::Done(prior)) => {
                    tracing::info!(prior = %prior, "caller hung up while holding");
                }
                Ok(Transition::Stale(state)) => {
                    tracing::debug!(state = ?state, "hangup of a call already settled");
                }
                Err(e) => {
                    tracing::warn!(call_sid = %h.call_sid, error = %e, "redis unavailable; abandon not recorded (the status callback retries it)");
                }
            }
            Reply::twiml(twiml::Response::new(), "hangup")
        }
        "leave" => left(&h, exit).await,
        "queue-full" => {
            tracing::warn!(shard = exit.shard, "Twilio queue full");
            if exit.shard.saturating_add(1) >= MAX_SHARDS {
                return Reply::twiml(last_resort(app, &hook_queue(&h)), "fallback");
            }
            let next = ExitState {
                shard: exit.shard.saturating_add(1),
                retry: 0,
            };
            back_in_line(&h, next, "queue_full").await
        }
        other => {
            // `error`, `system-error`, or something new: put the caller back, a few times
            tracing::warn!(queue_result = %super::excerpt(other), retry = exit.retry, "caller left Twilio's queue on an error");
            if exit.retry >= MAX_REENQUEUE_RETRIES {
                return Reply::twiml(last_resort(app, &hook_queue(&h)), "fallback");
            }
            let next = ExitState {
                shard: exit.shard,
                retry: exit.retry.saturating_add(1),
            };
            back_in_line(&h, next, "error").await
        }
    }
}

/// `<Enqueue>` again in the call's queue (read from Redis; the called number's when Redis
/// cannot tell).
async fn back_in_line(h: &Hook, exit: ExitState, outcome: &'static str) -> Reply {
    let app = &h.app;
    let queue = match within(app, app.store.call(&h.call_sid)).await {
        Ok(Some(call)) => call.queue,
        _ => app.centre.queue_for_number(h.param("To")).to_owned(),
    };
    Reply::twiml(
        twiml::Response::new().verb(enqueue_verb(app, &queue, exit)),
        outcome,
    )
}

/// What a caller whose call overflowed hears next: the action of the rule that overflowed it
/// (`end_reason`: the queue's `no_agents` action, else its `overflow` action). A `queue` or
/// `callback` action was carried out when the call overflowed, so it ends in a goodbye here.
pub(crate) fn overflowed_twiml(app: &AppState, call: &CallRecord) -> twiml::Response {
    let rule = call
        .end_reason
        .as_deref()
        .and_then(|r| r.parse::<OverflowRule>().ok());
    let (action, why) = match (queue_config(app, &call.queue), rule) {
        (Some(c), Some(OverflowRule::NoAgents)) => (c.no_agents.as_ref(), Why::NoAgents),
        (Some(c), Some(OverflowRule::NoAnswer)) => (c.overflow.as_ref(), Why::NoAnswer),
        (Some(c), Some(OverflowRule::QueueFull)) => (c.overflow.as_ref(), Why::QueueFull),
        (Some(c), _) => (c.overflow.as_ref(), Why::MaxWait),
        (None, _) => (None, Why::MaxWait),
    };
    let action = match action {
        Some(Action::Queue { .. }) | Some(Action::Callback) => None,
        other => other,
    };
    action_twiml(app, &call.queue, action, why)
}

/// The caller left on our `<Leave/>`: a callback request, or an overflow action.
async fn left(h: &Hook, exit: ExitState) -> Reply {
    let app = &h.app;
    // Why the caller left is in Redis only (a callback taken, an overflow): answered blind, a
    // caller whose callback is booked would be held again, or sent to the fallback number
    let call = match within_patiently(app, || app.store.call(&h.call_sid)).await {
        Ok(Some(call)) => call,
        Ok(None) => {
            tracing::warn!("caller left the queue but the call is unknown; fallback");
            return Reply::twiml(fallback(app, &hook_queue(h)), "fallback");
        }
        Err(e) => {
            tracing::warn!(call_sid = %h.call_sid, error = %e, "redis unavailable after leave; fallback");
            return Reply::twiml(fallback(app, &hook_queue(h)), "fallback");
        }
    };
    let sp = speech_of(app, &call.queue);
    let goodbye = || sp.spoken(twiml::Response::new().say(sp.phrases().goodbye).hangup());
    if call.kind == CallKind::Callback && !call.state.is_final() {
        // the caller asked to be called back; a worker may already be ringing the agent for it
        return Reply::twiml(goodbye(), "callback");
    }
    match call.state {
        CallState::Callback => Reply::twiml(goodbye(), "callback"),
        CallState::Overflowed => Reply::twiml(overflowed_twiml(app, &call), "overflow"),
        CallState::Completed | CallState::Abandoned | CallState::CallbackFailed => {
            Reply::twiml(twiml::Response::new().hangup(), "ended")
        }
        // still ours to route (waiting, offered, connected): keep the caller in line
        _ => Reply::twiml(
            twiml::Response::new().verb(enqueue_verb(app, &call.queue, exit)),
            "requeued",
        ),
    }
}
