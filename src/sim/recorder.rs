//! A recording stand-in for Twilio's REST API, for tests and benches that need to see exactly
//! what callq sent and to choose how Twilio answers each request (where the simulator's
//! [`rest`](super::rest) plays Twilio whole). It serves, on a free loopback port, the paths
//! callq's REST client uses under `/2010-04-01/Accounts/{AccountSid}`:
//!
//! - writes, answered by a script, one [`Reply`] per request: `POST …/Calls/{CallSid}.json`
//!   (update), `POST …/Calls.json` (create) and `POST …/Queues/{QueueSid}/Members/{CallSid}.json`
//!   (dequeue). [`Reply::Ok`] is Twilio's success: 200 with the [`CallResource`] (its status
//!   `completed` or `canceled` when the form asked for it, else `in-progress`), 201 with a new
//!   `queued` call `CAnew…` numbered by request, or 200 with the [`QueueMember`];
//! - reads, answered from a world of calls the caller sets up ([`Recorder::set_call`]):
//!   `GET …/Calls/{CallSid}.json` (20404 when unknown) and `GET …/Calls.json` filtered by
//!   `ParentCallSid`, `To` and `Status`; and of `<Enqueue>` queues
//!   ([`Recorder::set_queue_member`]): `GET …/Queues.json` and
//!   `GET …/Queues/{QueueSid}/Members.json`. Lists are paged (`PageSize`, `Page`,
//!   `next_page_uri`).
//!
//! Every request is recorded ([`Request`]), writes and reads apart. HTTP basic auth and the
//! account are checked (401, 20003). Bodies are the real serialized resource and error types
//! ([`CallResource`], [`QueueMember`], [`ErrorBody`]), so the JSON is the one callq parses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::sim::twiml_exec::TwilioQueues;
use crate::store::OfferRef;
use crate::twilio::rest::{
    CallResource, CallStatus, ErrorBody, QueueMember, CODE_CALL_NOT_IN_PROGRESS, CODE_NOT_FOUND,
    CODE_TOO_MANY_REQUESTS,
};

/// The number a call created by [`Recorder`] or [`call_resource`] comes from, unless told.
const FROM: &str = "+15550001111";
/// The number an updated call was made to, as the recorder describes it.
const TO: &str = "+15005550001";

/// One request the recorder received.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    /// `GET` (a read) or `POST` (an update, a create or a dequeue).
    pub method: String,
    pub path: String,
    /// The query string of a read.
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub form: Vec<(String, String)>,
    /// The CallSid in the path (update, dequeue), or None (create, list).
    pub call_sid: Option<String>,
}

impl Request {
    /// The first form parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every form parameter `name`, in order.
    pub fn params(&self, name: &str) -> Vec<&str> {
        self.form
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The offer a redirect or callback carries, read back from the `<Dial action>` URL in
    /// its TwiML.
    pub fn offer(&self) -> Option<OfferRef> {
        let twiml = self.param("Twiml")?;
        let i = twiml
            .find("dial-result?")
            .or_else(|| twiml.find("callback-result?"))?;
        let rest = &twiml[i..];
        let q = &rest[rest.find('?')? + 1..];
        let q = &q[..q.find('"').unwrap_or(q.len())];
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(&q.replace("&amp;", "&")).ok()?;
        crate::contract::parse(&pairs).ok()
    }

    /// The agent a redirect rings, read back from its TwiML.
    pub fn agent(&self) -> Option<String> {
        self.offer().map(|o| o.agent_id)
    }
}

/// How the recorder answers one write.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Twilio's success (see the module documentation).
    Ok,
    /// Twilio's error JSON with this HTTP status and error code.
    Error {
        status: u16,
        code: u32,
        message: &'static str,
    },
    /// The inner reply, after a delay.
    After(Duration, Box<Reply>),
    /// A bare status and body, as something that is not Twilio would answer (a wrong API
    /// base: a web server's HTML 404), or a 200 that is not JSON.
    Raw(u16, &'static str),
    /// Never answers.
    Hang,
}

impl Reply {
    pub fn error(status: u16, code: u32, message: &'static str) -> Self {
        Reply::Error {
            status,
            code,
            message,
        }
    }
    /// 21220: the call is not in progress.
    pub fn call_gone() -> Self {
        Reply::error(
            400,
            CODE_CALL_NOT_IN_PROGRESS,
            "Call is not in-progress. Cannot redirect.",
        )
    }
    /// 20404 on the call.
    pub fn not_found() -> Self {
        Reply::error(404, CODE_NOT_FOUND, "The requested resource was not found")
    }
    pub fn server_error() -> Self {
        Reply::error(500, 20500, "Internal Server Error")
    }
    pub fn too_many() -> Self {
        Reply::error(429, CODE_TOO_MANY_REQUESTS, "Too Many Requests")
    }
    pub fn after(ms: u64, r: Reply) -> Self {
        Reply::After(Duration::from_millis(ms), Box::new(r))
    }
}

type Script = Box<dyn FnMut(&Request, usize) -> Reply + Send>;

struct Inner {
    account_sid: String,
    /// The `Authorization` header every request must carry.
    authorization: String,
    /// The calls Twilio knows, by SID, for reads.
    world: Mutex<HashMap<String, CallResource>>,
    /// Twilio's `<Enqueue>` queues, by friendly name: their members, first in line first.
    queues: Mutex<std::collections::BTreeMap<String, Vec<QueueMember>>>,
    /// Reads received (kept apart: `writes` and `count` are the writes).
    reads: Mutex<Vec<Request>>,
    writes: Mutex<Vec<Request>>,
    count: watch::Sender<usize>,
    script: Mutex<Script>,
    feed: Mutex<Option<mpsc::UnboundedSender<Request>>>,
}

/// Locks `m`, taking the data of a poisoned lock as it is (a recorder outlives a failed
/// assertion in a script).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running recorder, serving until the runtime it was started on ends.
#[derive(Clone)]
pub struct Recorder {
    /// `http://127.0.0.1:<port>`: the API base to give callq's REST client.
    pub base: String,
    /// How many times longer than asked [`Recorder::wait_for`] waits (1 unless set with
    /// [`Recorder::patient`]).
    patience: u32,
    inner: Arc<Inner>,
}

impl Recorder {
    /// Answers write number `n` (0-based) `req` with `script(req, n)`; accepts only
    /// `account_sid` with `auth_token`.
    pub async fn start(
        account_sid: &str,
        auth_token: &str,
        script: impl FnMut(&Request, usize) -> Reply + Send + 'static,
    ) -> std::io::Result<Self> {
        let (count, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            account_sid: account_sid.to_string(),
            authorization: basic_auth(account_sid, auth_token),
            world: Mutex::default(),
            queues: Mutex::default(),
            reads: Mutex::default(),
            writes: Mutex::default(),
            count,
            script: Mutex::new(Box::new(script)),
            feed: Mutex::new(None),
        });
        let app = Router::new()
            .route(
                "/2010-04-01/Accounts/{account}/Calls.json",
                post(create).get(list),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Calls/{file}",
                post(update).get(fetch),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Queues/{queue}/Members/{file}",
                post(dequeue),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Queues.json",
                axum::routing::get(list_queues),
            )
            .route(
                "/2010-04-01/Accounts/{account}/Queues/{queue}/Members.json",
                axum::routing::get(list_members),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Recorder {
            base: format!("http://{addr}"),
            patience: 1,
            inner,
        })
    }

    /// [`Recorder::wait_for`] waits `factor` times longer than asked (for a busy machine).
    pub fn patient(mut self, factor: u32) -> Self {
        self.patience = factor.max(1);
        self
    }

    /// `member` waits (last) in the `<Enqueue>` queue named `queue` (made when first used;
    /// its SID is the simulator's for that name). Reads list it: `GET …/Queues.json`,
    /// `GET …/Queues/{QueueSid}/Members.json`.
    pub fn set_queue_member(&self, queue: &str, mut member: QueueMember) {
        member.queue_sid = Some(TwilioQueues::sid_for(queue));
        let mut g = lock(&self.inner.queues);
        let members = g.entry(queue.to_string()).or_default();
        members.retain(|m| m.call_sid != member.call_sid);
        members.push(member);
        for (i, m) in members.iter_mut().enumerate() {
            m.position = Some(i as u32 + 1);
        }
    }

    /// Twilio now knows `call` (reads return it; a call with `parent_call_sid` is listed as
    /// that call's child leg).
    pub fn set_call(&self, call: CallResource) {
        lock(&self.inner.world).insert(call.sid.clone(), call);
    }

    /// Change how later writes are answered.
    pub fn set_script(&self, script: impl FnMut(&Request, usize) -> Reply + Send + 'static) {
        *lock(&self.inner.script) = Box::new(script);
    }

    /// Every write from now on is also sent here.
    pub fn feed(&self) -> mpsc::UnboundedReceiver<Request> {
        let (tx, rx) = mpsc::unbounded_channel();
        *lock(&self.inner.feed) = Some(tx);
        rx
    }

    /// The writes (updates, creates, dequeues) received so far.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.inner.writes).clone()
    }

    /// The reads (`GET` a call, list calls) received so far.
    pub fn reads(&self) -> Vec<Request> {
        lock(&self.inner.reads).clone()
    }

    /// How many writes arrived.
    pub fn count(&self) -> usize {
        *self.inner.count.borrow()
    }

    /// The writes, once at least `n` arrived.
    ///
    /// # Panics
    /// When fewer arrive within `within` (times the patience): this is a test's assertion.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Request> {
        let within = within * self.patience;
        let mut rx = self.inner.count.subscribe();
        let ok = tokio::time::timeout(within, rx.wait_for(|c| *c >= n)).await;
        assert!(
            matches!(ok, Ok(Ok(_))),
            "the recorder got {} requests within {within:?}, expected {n}: {:#?}",
            self.count(),
            self.requests()
        );
        self.requests()
    }
}

/// The `Authorization` header of HTTP basic auth as `user` with `password`.
pub fn basic_auth(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A call of `account` as Twilio describes it, created now: to `to`, from a fixed number;
/// `inbound`, or `outbound-dial` when it is a child leg of `parent`.
pub fn call_resource(
    account: &str,
    sid: &str,
    to: &str,
    status: CallStatus,
    parent: Option<&str>,
) -> CallResource {
    let now = super::twiml_exec::rfc2822_now();
    CallResource {
        sid: sid.to_string(),
        account_sid: account.to_string(),
        status,
        to: Some(to.to_string()),
        from: Some(FROM.to_string()),
        direction: Some(
            if parent.is_some() {
                "outbound-dial"
            } else {
                "inbound"
            }
            .to_string(),
        ),
        parent_call_sid: parent.map(str::to_string),
        answered_by: None,
        date_created: Some(now.clone()),
        date_updated: Some(now.clone()),
        start_time: Some(now),
        end_time: None,
        duration: None,
        queue_time: Some("0".to_string()),
        uri: Some(format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json")),
    }
}

fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    let http = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (http, Json(ErrorBody::new(status, code, message))).into_response()
}

fn refused() -> Response {
    twilio_error(401, 20003, "Authenticate")
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Inner {
    fn authorised(&self, account: &str, req: &Request) -> bool {
        account == self.account_sid && req.authorization.as_deref() == Some(&self.authorization)
    }
}

/// What a write is, for the answer [`Reply::Ok`] gives.
enum Write {
    Update { sid: String },
    Create,
    Dequeue { queue: String, sid: String },
}

async fn update(
    State(inner): State<Arc<Inner>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sid = file.strip_suffix(".json").unwrap_or(&file).to_string();
    let path = format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json");
    write(inner, account, path, Write::Update { sid }, headers, body).await
}

async fn create(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls.json");
    write(inner, account, path, Write::Create, headers, body).await
}

async fn dequeue(
    State(inner): State<Arc<Inner>>,
    Path((account, queue, file)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sid = file.strip_suffix(".json").unwrap_or(&file).to_string();
    let path = format!("/2010-04-01/Accounts/{account}/Queues/{queue}/Members/{sid}.json");
    write(
        inner,
        account,
        path,
        Write::Dequeue { queue, sid },
        headers,
        body,
    )
    .await
}

/// Records a write, checks its credentials and answers as the script says.
async fn write(
    inner: Arc<Inner>,
    account: String,
    path: String,
    what: Write,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let req = Request {
        at,
        method: "POST".into(),
        path,
        query: Vec::new(),
        authorization: header(&headers, "authorization"),
        content_type: header(&headers, "content-type"),
        form,
        call_sid: match &what {
            Write::Update { sid } | Write::Dequeue { sid, .. } => Some(sid.clone()),
            Write::Create => None,
        },
    };
    let n = {
        let mut all = lock(&inner.writes);
        all.push(req.clone());
        all.len() - 1
    };
    if let Some(tx) = lock(&inner.feed).as_ref() {
        let _ = tx.send(req.clone());
    }
    inner.count.send_modify(|c| *c += 1);
    if !inner.authorised(&account, &req) {
        return refused();
    }
    let mut reply = (lock(&inner.script))(&req, n);
    loop {
        match reply {
            Reply::Ok => return ok(&account, &what, &req, n),
            Reply::Error {
                status,
                code,
                message,
            } => return twilio_error(status, code, message),
            Reply::After(d, inner) => {
                tokio::time::sleep(d).await;
                reply = *inner;
            }
            Reply::Raw(status, body) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
                return (status, body).into_response();
            }
            Reply::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return StatusCode::GATEWAY_TIMEOUT.into_response();
            }
        }
    }
}

/// Twilio's success for write number `n`.
fn ok(account: &str, what: &Write, req: &Request, n: usize) -> Response {
    match what {
        Write::Update { sid } => {
            let status = match req.param("Status") {
                Some("completed") => CallStatus::Completed,
                Some("canceled") => CallStatus::Canceled,
                _ => CallStatus::InProgress,
            };
            let call = call_resource(account, sid, TO, status, None);
            (StatusCode::OK, Json(call)).into_response()
        }
        Write::Create => {
            let sid = format!("CAnew{n:028}");
            let mut call = call_resource(
                account,
                &sid,
                req.param("To").unwrap_or(TO),
                CallStatus::Queued,
                None,
            );
            call.from = req.param("From").map(str::to_string);
            call.direction = Some("outbound-api".to_string());
            call.start_time = None;
            (StatusCode::CREATED, Json(call)).into_response()
        }
        Write::Dequeue { queue, sid } => {
            let member = QueueMember {
                call_sid: sid.clone(),
                queue_sid: Some(queue.clone()),
                position: Some(1),
                wait_time: Some(0),
                date_enqueued: call_resource(account, sid, TO, CallStatus::InProgress, None)
                    .date_created,
            };
            (StatusCode::OK, Json(member)).into_response()
        }
    }
}

/// Records a read; the refusal to answer when its credentials are wrong.
fn record_read(
    inner: &Inner,
    account: &str,
    path: String,
    headers: &HeaderMap,
    query: Vec<(String, String)>,
) -> Option<Response> {
    let req = Request {
        at: Instant::now(),
        method: "GET".into(),
        path,
        query,
        authorization: header(headers, "authorization"),
        content_type: None,
        form: Vec::new(),
        call_sid: None,
    };
    let authorised = inner.authorised(account, &req);
    lock(&inner.reads).push(req);
    (!authorised).then(refused)
}

async fn fetch(
    State(inner): State<Arc<Inner>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls/{file}");
    if let Some(refused) = record_read(&inner, &account, path, &headers, Vec::new()) {
        return refused;
    }
    let sid = file.strip_suffix(".json").unwrap_or(&file);
    let found = lock(&inner.world).get(sid).cloned();
    match found {
        Some(call) => Json(call).into_response(),
        None => twilio_error(404, CODE_NOT_FOUND, "The requested resource was not found"),
    }
}

async fn list(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let path = format!("/2010-04-01/Accounts/{account}/Calls.json");
    if let Some(refused) = record_read(&inner, &account, path, &headers, query.clone()) {
        return refused;
    }
    let want = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let (parent, to, status) = (want("ParentCallSid"), want("To"), want("Status"));
    let calls: Vec<CallResource> = lock(&inner.world)
        .values()
        .filter(|c| parent.is_none() || c.parent_call_sid == parent)
        .filter(|c| to.is_none() || c.to == to)
        .filter(|c| status.as_deref().is_none_or(|s| c.status.as_str() == s))
        .cloned()
        .collect();
    let path = format!("/2010-04-01/Accounts/{account}/Calls.json");
    let (calls, envelope) = paged(calls, &query, &path);
    let mut body = json!({ "calls": calls });
    merge(&mut body, envelope);
    Json(body).into_response()
}

/// One page of `items` as `Page`/`PageSize` ask (50 by default), and Twilio's paging fields
/// (`page`, `page_size`, `first_page_uri`, `next_page_uri`, ...), the URIs on `path`.
fn paged<T: Clone>(
    items: Vec<T>,
    query: &[(String, String)],
    path: &str,
) -> (Vec<T>, serde_json::Value) {
    let num = |name: &str, default: usize| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let size = num("PageSize", 50).clamp(1, 1000);
    let page = num("Page", 0);
    let start = page.saturating_mul(size).min(items.len());
    let chunk: Vec<T> = items.iter().skip(start).take(size).cloned().collect();
    let keep: Vec<(String, String)> = query
        .iter()
        .filter(|(n, _)| n != "Page" && n != "PageSize" && n != "PageToken")
        .cloned()
        .collect();
    let uri = |p: usize| {
        let mut pairs = keep.clone();
        pairs.push(("PageSize".into(), size.to_string()));
        pairs.push(("Page".into(), p.to_string()));
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let next = (start + chunk.len() < items.len()).then(|| uri(page + 1));
    let previous = (page > 0).then(|| uri(page - 1));
    let envelope = json!({
        "page": page,
        "page_size": size,
        "start": start,
        "end": (start + chunk.len()).saturating_sub(1).max(start),
        "uri": uri(page),
        "first_page_uri": uri(0),
        "next_page_uri": next,
        "previous_page_uri": previous,
    });
    (chunk, envelope)
}

fn merge(body: &mut serde_json::Value, more: serde_json::Value) {
    if let (serde_json::Value::Object(b), serde_json::Value::Object(m)) = (body, more) {
        b.extend(m);
    }
}

async fn list_queues(
    State(inner): State<Arc<Inner>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let path = format!("/2010-04-01/Accounts/{account}/Queues.json");
    if let Some(refused) = record_read(&inner, &account, path.clone(), &headers, query.clone()) {
        return refused;
    }
    let queues: Vec<serde_json::Value> = lock(&inner.queues)
        .iter()
        .map(|(name, members)| {
            let sid = TwilioQueues::sid_for(name);
            json!({
                "sid": sid,
                "account_sid": account,
                "friendly_name": name,
                "current_size": members.len(),
                "max_size": 100,
                "average_wait_time": 0,
                "date_created": "Mon, 30 Nov 2026 08:00:00 +0000",
                "date_updated": "Mon, 30 Nov 2026 08:00:00 +0000",
                "uri": format!("/2010-04-01/Accounts/{account}/Queues/{sid}.json"),
                "subresource_uris": {
                    "members": format!("/2010-04-01/Accounts/{account}/Queues/{sid}/Members.json"),
                },
            })
        })
        .collect();
    let (queues, envelope) = paged(queues, &query, &path);
    let mut body = json!({ "queues": queues });
    merge(&mut body, envelope);
    Json(body).into_response()
}

async fn list_members(
    State(inner): State<Arc<Inner>>,
    Path((account, queue)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let path = format!("/2010-04-01/Accounts/{account}/Queues/{queue}/Members.json");
    if let Some(refused) = record_read(&inner, &account, path.clone(), &headers, query.clone()) {
        return refused;
    }
    let members = lock(&inner.queues)
        .iter()
        .find(|(name, _)| TwilioQueues::sid_for(name) == queue)
        .map(|(_, m)| m.clone());
    let Some(members) = members else {
        return twilio_error(404, CODE_NOT_FOUND, "The requested resource was not found");
    };
    let (members, envelope) = paged(members, &query, &path);
    let mut body = json!({ "queue_members": members });
    merge(&mut body, envelope);
    Json(body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twilio::rest::{RestConfig, RestError, TwilioRest};

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "recorder-token";

    fn client(base: &str, token: &str) -> TwilioRest {
        let mut cfg = RestConfig::with_auth_token(ACCOUNT, token);
        cfg.api_base = base.to_string();
        TwilioRest::new(cfg).expect("client")
    }

    #[tokio::test]
    async fn answers_as_scripted_records_writes_and_reads_apart_and_checks_credentials() {
        let twilio = Recorder::start(ACCOUNT, TOKEN, |_, n| {
            if n == 0 {
                Reply::call_gone()
            } else {
                Reply::Ok
            }
        })
        .await
        .expect("recorder");
        let rest = client(&twilio.base, TOKEN);
        let gone = rest.hangup_call("CA1").await.expect_err("scripted 21220");
        assert_eq!(
            gone,
            RestError::from(ErrorBody::new(
                400,
                21220,
                "Call is not in-progress. Cannot redirect."
            ))
        );
        let call = rest.hangup_call("CA1").await.expect("then Ok");
        assert_eq!(
            (call.sid.as_str(), call.status),
            ("CA1", CallStatus::Completed)
        );

        assert_eq!(
            rest.fetch_call("CA2").await.map_err(|e| e.code()),
            Err(Some(CODE_NOT_FOUND))
        );
        let leg = call_resource(ACCOUNT, "CA3", "client:a", CallStatus::Ringing, Some("CA2"));
        twilio.set_call(leg.clone());
        assert_eq!(rest.fetch_call("CA3").await, Ok(leg));

        let wrong = client(&twilio.base, "wrong-token");
        let refused = wrong.hangup_call("CA1").await.expect_err("401");
        assert_eq!(refused.code(), Some(20003));

        assert_eq!(twilio.count(), 3, "writes");
        assert_eq!(twilio.wait_for(3, Duration::from_secs(1)).await.len(), 3);
        assert_eq!(twilio.reads().len(), 2);
        assert_eq!(
            twilio.requests()[0].form,
            vec![("Status".to_string(), "completed".to_string())]
        );
    }
}
