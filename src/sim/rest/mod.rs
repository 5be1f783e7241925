//! Twilio's REST API for calls, as the simulator serves it (paths, parameters, JSON and error
//! shapes as Twilio's own), under `/2010-04-01/Accounts/{AccountSid}`:
//!
//! - `POST …/Calls/{CallSid}.json` with `Twiml`, `Url` (+`Method`) or
//!   `Status=completed|canceled` ([`mod@write`]): an `in-progress` call is interrupted and runs the
//!   new instructions; 200 with the Call resource. New TwiML for a call that is not
//!   `in-progress` — ended, or an inbound call whose first TwiML has not run yet — is refused
//!   with 21220, as Twilio does. `canceled` ends a queued or ringing call and leaves an
//!   answered one alone; `completed` ends any live call.
//! - `POST …/Calls.json` with `To`, `From`, `Twiml` or `Url`, `StatusCallback`,
//!   `StatusCallbackEvent` (repeated), `Timeout`: a new `outbound-api` call; 201.
//! - `GET …/Calls/{CallSid}.json` ([`read`]): the Call resource; 20404 when unknown.
//! - `GET …/Calls.json` with `ParentCallSid`, `To`, `From`, `Status`, `StartTime`,
//!   `StartTime>`, `StartTime<`, `EndTime` (and its `>`/`<`), `PageSize` (1 to 1000, 50 by
//!   default) and `Page`: Twilio's list envelope (`calls`, `page`, `page_size`, `start`,
//!   `end`, `uri`, `first_page_uri`, `next_page_uri`, `previous_page_uri`), newest first.
//! - `GET …/Queues.json` and `GET …/Queues/{QueueSid}/Members.json` ([`read`]): the
//!   `<Enqueue>` queues (`queues`: `sid`, `friendly_name`, `current_size`, `max_size`,
//!   `average_wait_time`, …) and their members first in line first (`queue_members`:
//!   `call_sid`, `queue_sid`, `position`, `wait_time` in seconds, `date_enqueued`), in the same
//!   paged envelope (`PageSize`, `Page`).
//!
//! The calls are Twilio's record ([`crate::sim::registry`]): inbound calls, created calls and
//! every child leg a `<Dial>` made. HTTP basic auth is checked (401, code 20003). Errors have
//! Twilio's JSON shape (`code`, `message`, `more_info`, `status`): 20404 for an unknown call
//! or path, 21220 for a call not in progress, 32018 for inline TwiML over 4,000 characters,
//! 12100 for TwiML that does not parse. The REST faults of [`RestFaults`] refuse a share of
//! requests before anything is done (429, 500, 404, and 400 on writes), as Twilio's own
//! failures would; while the outage switch is on ([`RestState::outage`]), every request is.
//!
//! Every update that dials an agent's `<Client>` is also where assignment latency is measured:
//! the call has waited since callq put it in line, the agent has been ready since its last
//! leg ended plus wrap-up; the later of the two up to now is the time callq took.

mod read;
mod write;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::rngs::StdRng;
use rand::SeedableRng;

use super::call::SimEnv;
use super::faults::{RestFaults, RestOp};
use crate::twilio::rest::ErrorBody;

/// What the REST server needs.
pub struct RestState {
    pub env: Arc<SimEnv>,
    pub account_sid: String,
    /// Basic-auth user and password accepted (the account SID and auth token).
    pub username: String,
    pub password: String,
    pub faults: RestFaults,
    /// While set, every request is refused with 500 (20500) before anything is done: Twilio's
    /// REST API down for a span (`callq drill rest-500`).
    pub outage: Arc<AtomicBool>,
    rng: Mutex<StdRng>,
}

impl RestState {
    pub fn new(
        env: Arc<SimEnv>,
        account_sid: &str,
        password: &str,
        faults: RestFaults,
        seed: u64,
    ) -> Self {
        Self {
            env,
            account_sid: account_sid.to_string(),
            username: account_sid.to_string(),
            password: password.to_string(),
            faults,
            outage: Arc::new(AtomicBool::new(false)),
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x4e57)),
        }
    }

    /// The same, with its outage switch shared with `outage`.
    pub fn with_outage(mut self, outage: Arc<AtomicBool>) -> Self {
        self.outage = outage;
        self
    }
}

pub fn router(state: Arc<RestState>) -> Router {
    Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            post(write::create_call).get(read::list_calls),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Calls/{file}",
            post(write::update_call).get(read::fetch_call),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Queues.json",
            axum::routing::get(read::list_queues),
        )
        .route(
            "/2010-04-01/Accounts/{account}/Queues/{queue}/Members.json",
            axum::routing::get(read::list_members),
        )
        .fallback(|uri: axum::http::Uri| async move { not_found(uri.path()) })
        .with_state(state)
}

/// Twilio's error JSON.
pub fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(ErrorBody::new(status.as_u16(), code, message))).into_response()
}

fn not_found(path: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

/// Auth, account and fault injection, common to every request. `Err` is the answer.
async fn gate(
    st: &RestState,
    headers: &HeaderMap,
    account: &str,
    path: &str,
    op: RestOp,
) -> Result<(), Response> {
    st.env.stats.rest_requests.fetch_add(1, Ordering::Relaxed);
    if !st.faults.delay.is_zero() {
        tokio::time::sleep(st.faults.delay).await;
    }
    let authorised = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|raw| String::from_utf8(raw).ok())
        .is_some_and(|pair| pair == format!("{}:{}", st.username, st.password));
    if !authorised {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            20003,
            "Authenticate: invalid username or password",
        ));
    }
    if account != st.account_sid {
        return Err(not_found(path));
    }
    if st.outage.load(Ordering::Relaxed) {
        st.env.stats.rest_fault(500);
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "Internal Server Error",
        ));
    }
    let refusal = {
        let mut g = st.rng.lock().unwrap_or_else(|p| p.into_inner());
        st.faults.draw(op, &mut *g)
    };
    if let Some(r) = refusal {
        st.env.stats.rest_fault(r.status.as_u16());
        let message = if r.code == 20404 {
            format!("The requested resource {path} was not found")
        } else {
            r.message.to_string()
        };
        return Err(error(r.status, r.code, &message));
    }
    Ok(())
}
