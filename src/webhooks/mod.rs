//! Twilio's webhooks: what `callq serve` answers when Twilio calls it about a caller. This is
//! callq's edge, its policy for callers; Twilio's protocol itself (signatures, TwiML) is in
//! [`crate::twilio`]. See `docs/design.md` ("Twilio flow") for how the routes fit together and
//! `docs/twilio.md` for Twilio's side of the contract.
//!
//! | route | Twilio calls it | callq does |
//! |---|---|---|
//! | `POST /twilio/voice` | a call comes in | hours, IVR or queue by called number, priority, `enqueue`, welcome + `<Enqueue>` |
//! | `POST /twilio/voice/menu` | the IVR `<Gather>` ends | the chosen queue (or the menu again, then the default queue) |
//! | `POST /twilio/wait` | `<Enqueue waitUrl>` | position and estimated wait in our order, hold music, callback offer, max wait |
//! | `POST /twilio/wait/gather` | the callback offer's `<Gather>` | `1`: `request_callback` and `<Leave/>`; else back to hold |
//! | `POST /twilio/queue-exit` | `<Enqueue action>` | hangup: `abandon`; leave: callback goodbye or overflow action; errors: enqueue again |
//! | `POST /twilio/dial-result?call=&agent=&attempt=` | `<Dial action>` to an agent | answered: `complete` + `<Hangup/>`; else `offer_result` and back in line |
//! | `POST /twilio/agent-leg?call=&agent=&attempt=` | the agent leg's statusCallback | answered: `offer_result(answered)`; completed: `complete`; else `offer_result` for that leg (`leg_result`: of a `ring_all` offer, its agent alone while others still ring) |
//! | `POST /twilio/callback-result?call=&agent=&attempt=` | a callback's `<Dial action>` to the customer | answered: `complete`; else `callback_result` (retry later or `callback_failed`), a sentence to the agent, `<Hangup/>` |
//! | `POST /twilio/status` | the number's status callback | ended: `abandon` (or `complete` when connected) |
//! | `POST /twilio/voicemail` | `<Record action>` | log the recording, thank, `<Hangup/>` |
//! | `POST /twilio/recording?call=` | `<Dial recordingStatusCallback>` of a recording queue | completed: `record` (the URL kept with the call, never logged); `<Response/>` |
//!
//! Every request is checked the same way before any handler runs ([`accept`]): an
//! `X-Twilio-Signature` header (missing: 403), a body within the server's limit (413), a
//! well-formed form body and query (400), a signature that matches the public URL Twilio
//! requested (`CALLQ_PUBLIC_URL` + the exact path and query) and the parameters (403), a valid
//! `CallSid` (400). Other methods get 405, other paths 404 (the server's fallback). Errors are
//! short `text/plain`; TwiML answers are `text/xml`, built with [`crate::twilio::twiml`].
//!
//! Handlers never answer 5xx. Every Redis round trip of a request runs under one deadline
//! (`edge.redis_deadline`); when Redis errors or is late, the handler logs a warning with the
//! CallSid and answers TwiML that keeps the caller in a sensible place: `/twilio/voice` the
//! configured fallback (a number, else Twilio's own queue, else an apology), the hold
//! endpoints hold music. Every handler is idempotent and tolerates Twilio's retries and
//! out-of-order delivery, because every transition is a Lua script that finds a call in a
//! state it no longer applies to and changes nothing (`Stale`).
//!
//! Metrics: `callq_webhooks_total{endpoint,outcome}` and `callq_webhook_seconds{endpoint}`;
//! each request runs in a `webhook` tracing span carrying `endpoint` and `call_sid`.

pub mod announce;
mod hold;
mod legs;
mod recording;
mod rollout;
mod speech;
mod voice;

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Router;
use tracing::Instrument;

use crate::app::{read_body, AppState, BodyError};
use crate::config::{Action, QueueConfig};
use crate::store::{check_name, Arrival, CallKind, Enqueued, NewCall, Skills, StoreError};
use crate::twilio::signature;
use crate::twilio::twiml::{self, Dial, DialNoun, Enqueue, Number, Play, Record, Say};
use speech::Speech;

/// The header Twilio signs every webhook with.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// How many form parameters a webhook may carry (Twilio sends a few dozen at most).
const MAX_PARAMS: usize = 256;

/// Longest recorded message on voicemail, seconds.
const VOICEMAIL_MAX_LENGTH_S: u32 = 120;

/// Every Twilio webhook route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/twilio/voice", endpoint("voice", voice::voice))
        .route("/twilio/voice/menu", endpoint("voice_menu", voice::menu))
        .route("/twilio/voicemail", endpoint("voicemail", voice::voicemail))
        .route("/twilio/wait", endpoint("wait", hold::wait))
        .route("/twilio/wait/gather", endpoint("wait_gather", hold::gather))
        .route(
            "/twilio/queue-exit",
            endpoint("queue_exit", hold::queue_exit),
        )
        .route(
            "/twilio/dial-result",
            endpoint("dial_result", legs::dial_result),
        )
        .route("/twilio/agent-leg", endpoint("agent_leg", legs::agent_leg))
        .route(
            "/twilio/callback-result",
            endpoint("callback_result", legs::callback_result),
        )
        .route("/twilio/status", endpoint("status", legs::status))
        .route(
            "/twilio/recording",
            endpoint("recording", recording::recording),
        )
        .route(
            "/twilio/legacy-result",
            endpoint("legacy_result", rollout::legacy_result),
        )
}

/// A POST route running `handler` after [`accept`]; other methods get a plain 405.
fn endpoint<F, Fut>(name: &'static str, handler: F) -> MethodRouter<AppState>
where
    F: Fn(Hook) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send + 'static,
{
    post(
        move |State(app): State<AppState>, req: Request| async move {
            run(app, name, req, handler).await
        },
    )
    .fallback(|| async {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            "method not allowed\n",
        )
    })
}

/// Check the request, run the handler in a span, and count and time it.
async fn run<F, Fut>(app: AppState, name: &'static str, req: Request, handler: F) -> Response
where
    F: FnOnce(Hook) -> Fut,
    Fut: Future<Output = Reply>,
{
    let started = Instant::now();
    let reply = match accept(&app, name, req).await {
        Ok(hook) => {
            let span = tracing::info_span!("webhook", endpoint = name, call_sid = %hook.call_sid);
            handler(hook).instrument(span).await
        }
        Err(rejected) => rejected,
    };
    metrics::counter!("callq_webhooks_total", "endpoint" => name, "outcome" => reply.outcome)
        .increment(1);
    metrics::histogram!("callq_webhook_seconds", "endpoint" => name)
        .record(started.elapsed().as_secs_f64());
    reply.response
}

/// A signed, well-formed Twilio request, ready for its handler.
pub(crate) struct Hook {
    pub app: AppState,
    /// The form body's parameters.
    pub params: Params,
    /// The URL's query parameters (ours: `agent`, `call`, `attempt`, …).
    pub query: Params,
    /// The request's `CallSid`, checked with [`check_name`].
    pub call_sid: String,
}

impl Hook {
    /// The phone number in parameter `name` as logs may show it: masked to its last four
    /// digits unless the server runs with `CALLQ_LOG_CALLER_NUMBERS`.
    pub fn number_for_log(&self, name: &str) -> String {
        if self.app.edge.log_caller_numbers {
            excerpt(self.param(name))
        } else {
            mask_number(self.param(name))
        }
    }

    /// A body parameter, or "" when absent.
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).unwrap_or("")
    }
}

/// Form parameters in the order they came; a repeated name's first value wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A webhook's answer and the outcome label it is counted under.
pub(crate) struct Reply {
    pub response: Response,
    pub outcome: &'static str,
}

impl Reply {
    /// A TwiML document, `text/xml`. A document Twilio would refuse (a mistake in the
    /// configuration, e.g. a queue name too long) is logged and replaced by an apology.
    pub fn twiml(doc: twiml::Response, outcome: &'static str) -> Self {
        let xml = match doc.to_xml_checked() {
            Ok(xml) => xml,
            Err(e) => {
                tracing::error!(error = %e, "TwiML Twilio would refuse; answering an apology");
                apology(&Speech::default()).to_xml()
            }
        };
        Reply {
            response: (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                xml,
            )
                .into_response(),
            outcome,
        }
    }

    /// 204, for status callbacks (Twilio reads nothing back).
    pub fn no_content(outcome: &'static str) -> Self {
        Reply {
            response: StatusCode::NO_CONTENT.into_response(),
            outcome,
        }
    }

    /// A short plain-text error.
    pub fn plain(status: StatusCode, message: &'static str, outcome: &'static str) -> Self {
        Reply {
            response: (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message,
            )
                .into_response(),
            outcome,
        }
    }
}

fn forbidden() -> Reply {
    Reply::plain(StatusCode::FORBIDDEN, "invalid signature\n", "forbidden")
}

fn bad_request(message: &'static str) -> Reply {
    Reply::plain(StatusCode::BAD_REQUEST, message, "bad_request")
}

/// Everything every webhook checks before its handler runs (see the module docs).
async fn accept(app: &AppState, name: &'static str, req: Request) -> Result<Hook, Reply> {
    let Some(sig) = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        tracing::warn!(
            endpoint = name,
            "webhook without X-Twilio-Signature refused"
        );
        return Err(forbidden());
    };
    let uri = req.uri().clone();
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path(), |pq| pq.as_str());
    let query = parse_form(uri.query().unwrap_or("").as_bytes())
        .map_err(|_| bad_request("malformed query string\n"))?;
    let body = read_body(req).await.map_err(|e| match e {
        BodyError::TooLarge => Reply::plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large\n",
            "too_large",
        ),
        BodyError::TimedOut => Reply::plain(
            StatusCode::REQUEST_TIMEOUT,
            "request body not sent in time\n",
            "body_timeout",
        ),
        BodyError::Unreadable => bad_request("unreadable request body\n"),
    })?;
    let params = parse_form(&body).map_err(|_| bad_request("malformed form body\n"))?;
    let url = app.public(path_and_query);
    if !signature::validate(&app.edge.auth_token, &url, &params.0, &sig) {
        tracing::warn!(
            endpoint = name,
            url = %url,
            "X-Twilio-Signature does not match; check CALLQ_PUBLIC_URL and TWILIO_AUTH_TOKEN"
        );
        return Err(forbidden());
    }
    let call_sid = params.get("CallSid").unwrap_or("").to_owned();
    if check_name("CallSid", &call_sid).is_err() {
        return Err(bad_request("missing or invalid CallSid\n"));
    }
    Ok(Hook {
        app: app.clone(),
        params,
        query,
        call_sid,
    })
}

/// Why a form could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MalformedForm;

/// `application/x-www-form-urlencoded`, strictly: UTF-8, `%` followed by two hex digits, the
/// decoded bytes UTF-8 again, at most [`MAX_PARAMS`] pairs. `+` is a space; a pair without `=`
/// has an empty value; empty pairs (`a=1&&b=2`) are skipped.
pub(crate) fn parse_form(raw: &[u8]) -> Result<Params, MalformedForm> {
    let text = std::str::from_utf8(raw).map_err(|_| MalformedForm)?;
    let mut pairs = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        if pairs.len() == MAX_PARAMS {
            return Err(MalformedForm);
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((percent_decode(name)?, percent_decode(value)?));
    }
    Ok(Params(pairs))
}

fn percent_decode(s: &str) -> Result<String, MalformedForm> {
    fn hex(b: Option<&u8>) -> Option<u8> {
        match b? {
            b @ b'0'..=b'9' => Some(b - b'0'),
            b @ b'a'..=b'f' => Some(b - b'a' + 10),
            b @ b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex(bytes.get(i + 1)).ok_or(MalformedForm)?;
                let lo = hex(bytes.get(i + 2)).ok_or(MalformedForm)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| MalformedForm)
}

// ---------------------------------------------------------------------------------------------
// Shared pieces of the handlers
// ---------------------------------------------------------------------------------------------

/// How long a caller between two documents may wait for Redis: after pressing the callback
/// key, or on leaving Twilio's queue for it. A moment of silence there is better than an
/// answer taken blind (hold music, or the fallback number, for a caller whose callback is
/// booked), and a Redis failover's pause is usually shorter; Twilio waits 15 s for a
/// webhook's answer.
const PATIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Between two tries of [`within_patiently`].
const PATIENT_RETRY: Duration = Duration::from_millis(200);

/// Run `op` (a request's Redis work, safe to repeat: a read or an idempotent transition)
/// until it succeeds or [`PATIENT_DEADLINE`] (at least the edge's Redis deadline) has passed:
/// for the few answers that must not be given without Redis' word while Redis pauses.
pub(crate) async fn within_patiently<T, F, Fut>(
    app: &AppState,
    mut op: F,
) -> crate::store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = crate::store::Result<T>>,
{
    let deadline = PATIENT_DEADLINE.max(app.edge.redis_deadline);
    let until = Instant::now() + deadline;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, op()).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if Instant::now() + PATIENT_RETRY >= until => return Err(e),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "redis did not answer; trying again");
                tokio::time::sleep(PATIENT_RETRY).await;
            }
            Err(_) => return Err(StoreError::Timeout(deadline)),
        }
    }
}

/// Run `fut` (a request's Redis work) under the edge's Redis deadline.
pub(crate) async fn within<T>(
    app: &AppState,
    fut: impl Future<Output = crate::store::Result<T>>,
) -> crate::store::Result<T> {
    let deadline = app.edge.redis_deadline;
    match tokio::time::timeout(deadline, fut).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Timeout(deadline)),
    }
}

/// `store.enqueue` with the caller's priority boost and the skills the call requires of its
/// own (`choice`: the IVR choice's, if the caller came through one; priority rules add
/// theirs); when Redis does not know the queue
/// (restarted empty, flushed), write the centre's queue settings again and retry once.
// the call's parts as every handler has them, one argument each
#[allow(clippy::too_many_arguments)]
pub(crate) async fn enqueue_healing(
    app: &AppState,
    sid: &str,
    queue: &str,
    from: &str,
    to: &str,
    kind: CallKind,
    arrival: Arrival,
    choice: Option<&Skills>,
) -> crate::store::Result<Enqueued> {
    // the `priority` feature off: every caller in arrival order
    let priority_boost = if app.features().await.priority {
        app.centre.priority_boost(from, queue)
    } else {
        Duration::ZERO
    };
    let call = NewCall {
        call_sid: sid,
        queue,
        from,
        to,
        priority_boost,
        kind,
        arrival,
        skills: app.centre.call_skills(from, queue, choice),
    };
    match app.store.enqueue(&call).await {
        Err(StoreError::UnknownQueue(_)) => {
            tracing::warn!(
                queue,
                "queue missing in redis; writing the queue settings again"
            );
            for settings in app.centre.queue_settings() {
                app.store.configure_queue(&settings).await?;
            }
            app.store.enqueue(&call).await
        }
        other => other,
    }
}

/// How long [`record_later`] keeps trying.
const RECORD_LATER_FOR: Duration = Duration::from_secs(60);

/// A caller answered with the fallback `<Enqueue>` because Redis missed the deadline: keep
/// trying in the background to record them (as holding since now), so a caller who hangs up
/// before their next wait request still leaves a record that a worker can settle with Twilio.
/// Best effort, within this process, for at most [`RECORD_LATER_FOR`]; the wait request does
/// the same when it finds Redis back.
pub(crate) fn record_later(app: &AppState, sid: &str, queue: &str, from: &str, to: &str) {
    let (app, sid, queue, from, to) = (
        app.clone(),
        sid.to_owned(),
        queue.to_owned(),
        from.to_owned(),
        to.to_owned(),
    );
    tokio::spawn(async move {
        let started = Instant::now();
        let mut pause = Duration::from_millis(250);
        while started.elapsed() < RECORD_LATER_FOR {
            tokio::time::sleep(pause).await;
            let arrival = Arrival::Holding {
                waited: started.elapsed(),
            };
            let attempt = enqueue_healing(
                &app,
                &sid,
                &queue,
                &from,
                &to,
                CallKind::Inbound,
                arrival,
                None,
            );
            match tokio::time::timeout(Duration::from_secs(2), attempt).await {
                Ok(Ok(entered)) => {
                    if entered.created {
                        tracing::info!(call_sid = %sid, queue, "a caller answered with the fallback is recorded now that Redis answers");
                    }
                    return;
                }
                Ok(Err(e)) => {
                    tracing::debug!(call_sid = %sid, error = %e, "still cannot record the caller")
                }
                Err(_) => {
                    tracing::debug!(call_sid = %sid, "still cannot record the caller: Redis is slow")
                }
            }
            pause = (pause * 2).min(Duration::from_secs(2));
        }
        tracing::warn!(call_sid = %sid, "gave up recording a caller answered with the fallback; their next wait request will");
    });
}

/// Milliseconds since the epoch on this host's clock.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A queue's configuration, falling back to the default queue's (always present).
pub(crate) fn queue_config<'a>(app: &'a AppState, queue: &str) -> Option<&'a QueueConfig> {
    app.centre
        .queues
        .get(queue)
        .or_else(|| app.centre.queues.get(&app.centre.default_queue))
}

/// The name of the Twilio queue a caller of `queue` holds in. Twilio's queue is only where the
/// caller hears the wait document; the order is ours, in Redis. `shard` > 0 names a sibling
/// used when Twilio reports the queue full. At most 64 characters, as Twilio requires.
pub(crate) fn twilio_queue_name(queue: &str, shard: u32) -> String {
    let name = if shard == 0 {
        format!("callq-{queue}")
    } else {
        format!("callq-{queue}-{shard}")
    };
    name.chars().take(twiml::MAX_QUEUE_NAME_CHARS).collect()
}

/// Where a re-enqueued caller stands in Twilio's queue troubles: which sibling Twilio queue
/// (after `queue-full`) and how many times in a row Twilio reported an error. Carried in the
/// `<Enqueue action>` query so `/twilio/queue-exit` can stop a loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExitState {
    pub shard: u32,
    pub retry: u32,
}

impl ExitState {
    pub fn from_query(query: &Params) -> Self {
        let n = |k: &str| query.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        ExitState {
            shard: n("shard"),
            retry: n("retry"),
        }
    }

    fn action_path(self) -> String {
        match (self.shard, self.retry) {
            (0, 0) => "/twilio/queue-exit".to_owned(),
            (shard, 0) => format!("/twilio/queue-exit?shard={shard}"),
            (0, retry) => format!("/twilio/queue-exit?retry={retry}"),
            (shard, retry) => format!("/twilio/queue-exit?shard={shard}&retry={retry}"),
        }
    }
}

/// The `<Enqueue>` every caller holds in: our waitUrl and our action, both POST.
pub(crate) fn enqueue_verb(app: &AppState, queue: &str, exit: ExitState) -> Enqueue {
    Enqueue {
        name: twilio_queue_name(queue, exit.shard),
        action: Some(app.public(&exit.action_path())),
        method: Some("POST".into()),
        wait_url: Some(app.public(&format!("/twilio/wait?queue={queue}"))),
        wait_url_method: Some("POST".into()),
        max_queue_size: None,
    }
}

/// Hold music of `queue` for a caller who has held `waited_s` (Twilio's `QueueTime`), until
/// Twilio asks for the wait document again: silence of `announce_every_s` when the queue has
/// no music; its files whole when their length is not configured; else as many clips as fill
/// `announce_every_s` (at least one), continuing the piece where the caller's wait has got to.
pub(crate) fn hold_verbs(app: &AppState, queue: &str, waited_s: u64) -> twiml::Response {
    let Some(cfg) = queue_config(app, queue) else {
        return twiml::Response::new().pause(30);
    };
    let every = u32::try_from(cfg.announce_every_s).unwrap_or(30);
    let music = &cfg.hold_music;
    match (music.len(), cfg.hold_music_clip_s) {
        (0, _) => twiml::Response::new().pause(every),
        (_, None) => music
            .iter()
            .fold(twiml::Response::new(), |doc, url| doc.play(url.as_str())),
        (1, Some(clip)) => twiml::Response::new().verb(Play {
            url: music[0].clone(),
            loop_: Some(clips_per_announcement(cfg.announce_every_s, clip)),
        }),
        (n, Some(clip)) => {
            let first = (waited_s / clip.max(1)) as usize;
            (0..clips_per_announcement(cfg.announce_every_s, clip) as usize)
                .map(|i| &music[(first + i) % n])
                .fold(twiml::Response::new(), |doc, url| doc.play(url.as_str()))
        }
    }
}

/// Clips of `clip_s` that fill `every_s` (rounded up, so the announcement never comes early;
/// at least one, at most 100).
fn clips_per_announcement(every_s: u64, clip_s: u64) -> u32 {
    u32::try_from(every_s.div_ceil(clip_s.max(1)).clamp(1, 100)).unwrap_or(1)
}

/// How callers of `queue` are spoken to (the default queue's way when it is unknown).
pub(crate) fn speech_of(app: &AppState, queue: &str) -> Speech {
    queue_config(app, queue)
        .map(Speech::of_queue)
        .unwrap_or_default()
}

/// What a caller hears when nothing else can be done: an apology and a hangup.
pub(crate) fn apology(sp: &Speech) -> twiml::Response {
    sp.spoken(twiml::Response::new().say(sp.phrases().apology).hangup())
}

/// The fallback for a caller whose call callq cannot record (Redis out of reach): dial the
/// fallback number when one is configured; else hold in `queue`'s Twilio queue with callq's
/// wait URL, so the first wait request that finds Redis back takes the caller into callq's
/// line at the time they first arrived (see `/twilio/wait`).
pub(crate) fn fallback(app: &AppState, queue: &str) -> twiml::Response {
    if app
        .centre
        .fallback
        .number
        .as_deref()
        .is_some_and(|n| !n.trim().is_empty())
    {
        return last_resort(app, queue);
    }
    let welcome = queue_config(app, queue).map_or("", |c| c.welcome.as_str());
    let mut doc = twiml::Response::new();
    if !welcome.trim().is_empty() {
        doc = doc.say(welcome);
    }
    speech_of(app, queue).spoken(doc.verb(enqueue_verb(app, queue, ExitState::default())))
}

/// When a caller cannot be kept in callq's line at all (Twilio's queue keeps failing): the
/// fallback number when one is configured, else an apology.
pub(crate) fn last_resort(app: &AppState, queue: &str) -> twiml::Response {
    let sp = speech_of(app, queue);
    match app
        .centre
        .fallback
        .number
        .as_deref()
        .filter(|n| !n.trim().is_empty())
    {
        Some(number) => sp.spoken(
            twiml::Response::new()
                .say(sp.phrases().connecting)
                .verb(dial_number(number))
                .hangup(),
        ),
        None => apology(&sp),
    }
}

fn dial_number(number: &str) -> Dial {
    Dial {
        nouns: vec![DialNoun::Number(Number::new(number.trim()))],
        ..Dial::default()
    }
}

/// Why a caller is sent to an [`Action`], which decides the words around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Why {
    /// The queue is closed (its closed message was said already).
    Closed,
    /// The caller waited the queue's max wait.
    MaxWait,
    /// No agent of the queue is logged in.
    NoAgents,
    /// The one agent offered the call did not answer (the `fallback` feature off).
    NoAnswer,
    /// The caller found the line full (the queue's `max_waiting`).
    QueueFull,
}

/// The TwiML of an action that ends the call's time with us: voicemail, a number, goodbye,
/// in `queue`'s language. `Queue` and `Callback` need Redis and are carried out by the
/// handlers; here they end in a goodbye (a configuration loop, or Redis gone).
pub(crate) fn action_twiml(
    app: &AppState,
    queue: &str,
    action: Option<&Action>,
    why: Why,
) -> twiml::Response {
    let sp = speech_of(app, queue);
    let words = sp.phrases();
    let doc = twiml::Response::new();
    let doc = match action {
        Some(Action::Voicemail) => voicemail(app, &sp, doc.say(words.voicemail_lead.get(why))),
        Some(Action::Dial { number }) => doc
            .say(words.transfer_lead.get(why))
            .verb(dial_number(number))
            .hangup(),
        _ => doc.say(words.farewell.get(why)).hangup(),
    };
    sp.spoken(doc)
}

/// Append `<Record>` to our voicemail endpoint, then a goodbye for when nothing was recorded.
pub(crate) fn voicemail(app: &AppState, sp: &Speech, doc: twiml::Response) -> twiml::Response {
    doc.verb(Record {
        action: Some(app.public("/twilio/voicemail")),
        max_length: Some(VOICEMAIL_MAX_LENGTH_S),
        play_beep: Some(true),
        transcribe: None,
        finish_on_key: Some("#".into()),
    })
    .verb(Say::new(sp.phrases().voicemail_empty))
    .hangup()
}

/// Whether `from` is a number we can call back: E.164, not a withheld caller ID.
pub(crate) fn callable(from: &str) -> bool {
    const WITHHELD: &[&str] = &["+266696687", "+7378742833", "+2562533", "+86282452253"];
    let Some(digits) = from.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !WITHHELD.contains(&from)
}

/// A phone number as logs may show it: its last four digits only (`…1234`); `client:` and
/// withheld identities as they are. Logs are read by more people than call records.
pub(crate) fn mask_number(n: &str) -> String {
    let n = n.trim();
    if n.is_empty() || n.starts_with("client:") || !n.starts_with('+') {
        return excerpt(n);
    }
    let digits: String = n.chars().filter(char::is_ascii_digit).collect();
    let tail = &digits[digits.len().saturating_sub(4)..];
    format!("…{tail}")
}

/// A short, loggable excerpt of caller-controlled text.
pub(crate) fn excerpt(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &Params) -> Vec<(&str, &str)> {
        p.0.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
    }

    #[test]
    fn forms_decode_strictly() {
        let p = parse_form(b"CallSid=CA1&From=%2B1415+555&Empty=&Bare&&x=%C3%A9").expect("ok");
        assert_eq!(
            pairs(&p),
            vec![
                ("CallSid", "CA1"),
                ("From", "+1415 555"),
                ("Empty", ""),
                ("Bare", ""),
                ("x", "é")
            ]
        );
        assert_eq!(p.get("From"), Some("+1415 555"));
        assert_eq!(parse_form(b""), Ok(Params::default()));
        for bad in [
            &b"a=%"[..],
            b"a=%4",
            b"a=%zz",
            b"a=%C3",
            b"\xff=1",
            b"%FF=1",
        ] {
            assert_eq!(parse_form(bad), Err(MalformedForm), "{bad:?}");
        }
        let many = vec!["a=1"; MAX_PARAMS + 1].join("&");
        assert_eq!(parse_form(many.as_bytes()), Err(MalformedForm));
    }

    #[test]
    fn callable_numbers() {
        assert!(callable("+14155550100"));
        assert!(!callable("+266696687"));
        assert!(!callable("client:alice"));
        assert!(!callable("Anonymous"));
        assert!(!callable("+1415abc"));
        assert!(!callable(""));
    }

    #[test]
    fn logs_show_only_the_last_four_digits_of_a_number() {
        assert_eq!(mask_number("+14155551234"), "…1234");
        assert_eq!(mask_number(" +44 20 7946 0958 "), "…0958");
        assert_eq!(mask_number("+12"), "…12");
        assert_eq!(mask_number("client:alice"), "client:alice");
        assert_eq!(mask_number("Anonymous"), "Anonymous");
        assert_eq!(mask_number(""), "");
    }

    #[test]
    fn twilio_queue_names_fit() {
        assert_eq!(twilio_queue_name("sales", 0), "callq-sales");
        assert_eq!(twilio_queue_name("sales", 2), "callq-sales-2");
        let long = "q".repeat(64);
        assert_eq!(twilio_queue_name(&long, 3).chars().count(), 64);
    }
}
