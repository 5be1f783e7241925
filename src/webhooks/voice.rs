//! A call comes in: `/twilio/voice`, the IVR menu `/twilio/voice/menu`, and the voicemail
//! `<Record>` action `/twilio/voicemail`.

use jiff::Timestamp;

use super::speech::Speech;
use super::{
    action_twiml, callable, enqueue_healing, enqueue_verb, excerpt, fallback, speech_of, within,
    ExitState, Hook, Reply, Why,
};
use crate::app::AppState;
use crate::config::{Action, IvrConfig};
use crate::store::{Arrival, CallKind, Skills};
use crate::twilio::twiml::{self, Gather, GatherChild, Say};
use crate::webhooks::announce;

/// How many times the IVR menu is played before the caller goes to the default queue.
const MENU_TRIES: u32 = 3;

/// Seconds the menu waits for a digit after the prompt.
const MENU_TIMEOUT_S: u32 = 5;

/// How many after-hours `queue` actions are followed before giving up (a configuration loop).
const MAX_QUEUE_HOPS: usize = 4;

/// `POST /twilio/voice`: callers outside callq's rollout share take the legacy path; the
/// others get the IVR menu for IVR numbers, else the queue of the called number.
pub(crate) async fn voice(h: Hook) -> Reply {
    if let Some(doc) = super::rollout::legacy_for(&h).await {
        return Reply::twiml(doc, "legacy");
    }
    let to = h.param("To");
    if let Some(ivr) = h.app.centre.ivr.as_ref() {
        if ivr.numbers.iter().any(|n| n == to) {
            return Reply::twiml(menu_doc(&h.app, ivr, 0, None), "menu");
        }
    }
    let queue = h.app.centre.queue_for_number(to).to_owned();
    route(&h, &queue, None).await
}

/// `POST /twilio/voice/menu?attempt=N`: the digit chosen in the IVR menu (`Digits`). No digit
/// or a wrong one plays the menu again, up to [`MENU_TRIES`] times, then the default queue.
pub(crate) async fn menu(h: Hook) -> Reply {
    let Some(ivr) = h.app.centre.ivr.as_ref() else {
        let queue = h.app.centre.queue_for_number(h.param("To")).to_owned();
        return route(&h, &queue, None).await;
    };
    let digits = h.param("Digits").trim();
    if let Some(choice) = ivr.options.get(digits) {
        return route(&h, choice.queue(), choice.skills()).await;
    }
    let attempt = h
        .query
        .get("attempt")
        .and_then(|a| a.parse::<u32>().ok())
        .unwrap_or(0);
    if attempt.saturating_add(1) < MENU_TRIES {
        let words = Speech::new(ivr.language.as_deref(), ivr.voice.as_deref());
        let sorry = if digits.is_empty() {
            words.phrases().menu_not_caught
        } else {
            words.phrases().menu_not_an_option
        };
        return Reply::twiml(
            menu_doc(&h.app, ivr, attempt.saturating_add(1), Some(sorry)),
            "menu",
        );
    }
    let queue = h.app.centre.default_queue.clone();
    route(&h, &queue, None).await
}

/// The menu: a one-digit `<Gather>` around the prompt, then (no digit) the menu URL again.
fn menu_doc(app: &AppState, ivr: &IvrConfig, attempt: u32, sorry: Option<&str>) -> twiml::Response {
    let url = if attempt == 0 {
        app.public("/twilio/voice/menu")
    } else {
        app.public(&format!("/twilio/voice/menu?attempt={attempt}"))
    };
    let mut children = Vec::new();
    if let Some(sorry) = sorry {
        children.push(GatherChild::Say(Say::new(sorry)));
    }
    children.push(GatherChild::Say(Say::new(ivr.prompt.as_str())));
    let sp = Speech::new(ivr.language.as_deref(), ivr.voice.as_deref());
    let doc = twiml::Response::new()
        .verb(Gather {
            input: Some("dtmf".into()),
            num_digits: Some(1),
            action: Some(url.clone()),
            method: Some("POST".into()),
            timeout: Some(MENU_TIMEOUT_S),
            finish_on_key: None,
            children,
        })
        .verb(twiml::Verb::Redirect {
            url,
            method: Some("POST".into()),
        });
    sp.spoken(doc)
}

/// The caller chose `queue`: check its hours (following after-hours `queue` actions), then
/// enqueue, or say it is closed and carry out the after-hours action.
async fn route(h: &Hook, queue: &str, skills: Option<&Skills>) -> Reply {
    let app = &h.app;
    let now = Timestamp::now();
    let mut queue = queue.to_owned();
    let mut visited = vec![queue.clone()];
    loop {
        let Some(cfg) = app.centre.queues.get(&queue) else {
            // only configured names reach here; be safe anyway
            queue = app.centre.default_queue.clone();
            break;
        };
        let Some(hours) = cfg.hours.as_ref() else {
            break;
        };
        if hours.is_open(now) {
            break;
        }
        match cfg.after_hours.as_ref() {
            Some(Action::Queue { queue: next })
                if !visited.contains(next) && visited.len() < MAX_QUEUE_HOPS =>
            {
                visited.push(next.clone());
                queue = next.clone();
            }
            _ => return closed(h, &queue, now).await,
        }
    }
    enqueue(h, &queue, skills).await
}

/// The queue is open: record the call and hold it.
async fn enqueue(h: &Hook, queue: &str, skills: Option<&Skills>) -> Reply {
    let app = &h.app;
    let (from, to) = (h.param("From"), h.param("To"));
    let result = within(
        app,
        enqueue_healing(
            app,
            &h.call_sid,
            queue,
            from,
            to,
            CallKind::Inbound,
            Arrival::Arriving,
            skills,
        ),
    )
    .await;
    match result {
        Ok(entered) => {
            let welcome = app
                .centre
                .queues
                .get(queue)
                .map_or("", |c| c.welcome.as_str());
            let mut doc = twiml::Response::new();
            if entered.resumed {
                doc = doc.say(speech_of(app, queue).phrases().welcome_back);
            } else if !welcome.trim().is_empty() {
                doc = doc.say(welcome);
            }
            let doc = speech_of(app, queue).spoken(doc.verb(enqueue_verb(
                app,
                queue,
                ExitState::default(),
            )));
            if entered.created {
                tracing::info!(queue, state = %entered.state, "call enqueued");
                Reply::twiml(doc, "enqueued")
            } else {
                tracing::info!(queue, state = %entered.state, "retried webhook: call already known");
                Reply::twiml(doc, "retry")
            }
        }
        Err(e) => {
            tracing::warn!(call_sid = %h.call_sid, queue, error = %e, "redis unavailable; answering the fallback (the caller joins the line from a wait request once Redis is back)");
            if app.centre.fallback.number.is_none() {
                // held in our own Twilio queue: record the caller as soon as Redis answers,
                // even if they hang up before their next wait request
                super::record_later(app, &h.call_sid, queue, from, to);
            }
            Reply::twiml(fallback(app, queue), "fallback")
        }
    }
}

/// The queue is closed: its closed message, when it opens, and its after-hours action.
async fn closed(h: &Hook, queue: &str, now: Timestamp) -> Reply {
    let app = &h.app;
    let sp = speech_of(app, queue);
    let Some(cfg) = app.centre.queues.get(queue) else {
        return Reply::twiml(super::apology(&sp), "closed");
    };
    let mut doc = twiml::Response::new();
    if !cfg.closed_message.trim().is_empty() {
        doc = doc.say(cfg.closed_message.as_str());
    }
    if let Some(hours) = cfg.hours.as_ref() {
        if let Some(opens) = hours.next_open(now) {
            let here = now.to_zoned(hours.timezone().clone());
            let when = announce::opening_in(sp.lang, &here, &opens);
            doc = doc.say(sp.phrases().we_open.replacen("{}", &when, 1));
        }
    }
    tracing::info!(queue, action = ?cfg.after_hours, "queue closed");
    match cfg.after_hours.as_ref() {
        Some(Action::Callback) => closed_callback(h, queue, sp.spoken(doc)).await,
        action => Reply::twiml(
            append(
                sp.spoken(doc),
                action_twiml(app, queue, action, Why::Closed),
            ),
            "closed",
        ),
    }
}

/// After hours with a callback: record a callback request for the caller's number; a caller
/// we cannot call back (withheld number, Redis gone) is offered voicemail instead.
async fn closed_callback(h: &Hook, queue: &str, doc: twiml::Response) -> Reply {
    let app = &h.app;
    let from = h.param("From");
    let sp = speech_of(app, queue);
    if !callable(from) {
        let doc = sp.spoken(doc.say(sp.phrases().closed_withheld));
        let doc = append(
            doc,
            action_twiml(app, queue, Some(&Action::Voicemail), Why::Closed),
        );
        return Reply::twiml(doc, "closed");
    }
    let result = within(
        app,
        enqueue_healing(
            app,
            &h.call_sid,
            queue,
            from,
            h.param("To"),
            CallKind::Callback,
            Arrival::Arriving,
            None,
        ),
    )
    .await;
    match result {
        Ok(_) => {
            tracing::info!(queue, "after-hours callback requested");
            let doc = doc.say(sp.phrases().closed_callback_taken).hangup();
            Reply::twiml(sp.spoken(doc), "closed_callback")
        }
        Err(e) => {
            tracing::warn!(call_sid = %h.call_sid, queue, error = %e, "redis unavailable; offering voicemail instead of a callback");
            let doc = append(
                doc,
                action_twiml(app, queue, Some(&Action::Voicemail), Why::Closed),
            );
            Reply::twiml(doc, "fallback")
        }
    }
}

/// The recording's SID (`RE…`, the last path segment of its URL), or `unknown`.
fn recording_sid(url: &str) -> String {
    let last = url.rsplit('/').next().unwrap_or("");
    let sid = last.split(['.', '?']).next().unwrap_or("");
    if sid.starts_with("RE") && sid.chars().all(|c| c.is_ascii_alphanumeric()) {
        sid.to_string()
    } else {
        "unknown".to_string()
    }
}

fn append(mut doc: twiml::Response, more: twiml::Response) -> twiml::Response {
    doc.verbs.extend(more.verbs);
    doc
}

/// `POST /twilio/voicemail`: the `<Record>` action. The recording stays at Twilio; its SID
/// (not its URL, which would let anyone with the logs fetch it) is logged for whoever listens
/// to messages in Twilio's console.
pub(crate) async fn voicemail(h: Hook) -> Reply {
    let url = h.param("RecordingUrl");
    let duration = h.param("RecordingDuration");
    if url.is_empty() {
        tracing::info!(from = %h.number_for_log("From"), "voicemail ended without a recording");
    } else {
        tracing::info!(
            from = %h.number_for_log("From"),
            recording_sid = %recording_sid(url),
            duration_s = %excerpt(duration),
            "voicemail recorded"
        );
    }
    // the queue of the number called (the recording ends the call; Redis is not asked)
    let sp = speech_of(&h.app, h.app.centre.queue_for_number(h.param("To")));
    let doc = twiml::Response::new()
        .say(sp.phrases().voicemail_thanks)
        .hangup();
    Reply::twiml(
        sp.spoken(doc),
        if url.is_empty() { "empty" } else { "recorded" },
    )
}
