//! The REST writes: updating a live call (`POST …/Calls/{CallSid}.json`) and creating one
//! (`POST …/Calls.json`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tokio::time::Instant;

use super::read::call_json;
use super::{error, gate, not_found, RestState};
use crate::sim::call::{Outbound, OutboundStart};
use crate::sim::faults::RestOp;
use crate::sim::registry::{CallGone, Update};
use crate::sim::twiml_exec::Control;
use crate::twilio::twiml::{self, DialNoun, Verb, MAX_INLINE_TWIML_CHARS};

// an axum Response as the error: the handler returns it as is
#[allow(clippy::result_large_err)]
fn form(body: &[u8]) -> Result<Vec<(String, String)>, Response> {
    serde_urlencoded::from_bytes(body)
        .map_err(|_| error(StatusCode::BAD_REQUEST, 20001, "Malformed form body"))
}

fn first<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

#[allow(clippy::result_large_err)]
fn parse_twiml(raw: &str) -> Result<twiml::Response, Response> {
    if raw.chars().count() > MAX_INLINE_TWIML_CHARS {
        return Err(error(
            StatusCode::BAD_REQUEST,
            32018,
            "Twiml parameter exceeds the maximum of 4000 characters",
        ));
    }
    twiml::parse(raw).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            12100,
            &format!("Document parse failure: {e}"),
        )
    })
}

pub(super) async fn update_call(
    State(st): State<Arc<RestState>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls/{file}");
    if let Err(r) = gate(&st, &headers, &account, &path, RestOp::Update).await {
        return r;
    }
    let Some(sid) = file.strip_suffix(".json") else {
        return not_found(&path);
    };
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let (update, dialled) = if let Some(raw) = first(&f, "Twiml") {
        match parse_twiml(raw) {
            Ok(doc) => {
                let identity = dialled_client(&doc);
                (Update::Redirect(Control::Twiml(doc)), identity)
            }
            Err(r) => return r,
        }
    } else if let Some(url) = first(&f, "Url") {
        (Update::Redirect(Control::Url(url.to_string())), None)
    } else {
        match first(&f, "Status") {
            Some("completed") => (Update::Complete, None),
            Some("canceled") => (Update::Cancel, None),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    21218,
                    "One of Url, Twiml or Status (completed, canceled) is required",
                )
            }
        }
    };
    let now = Instant::now();
    match st.env.registry.update(sid, update) {
        Ok(view) => {
            if let (Some(identity), Some(waited)) = (dialled, view.waited) {
                // ready since the later of: the call in line, the agent free
                let call_since = now - waited;
                if let Some(agent_since) = st.env.agents.ready_at(&identity) {
                    let since = call_since.max(agent_since);
                    let ms = now.saturating_duration_since(since).as_secs_f64() * 1000.0;
                    st.env.stats.assignment(ms);
                }
            }
            (StatusCode::OK, Json(call_json(&st.account_sid, &view.rec))).into_response()
        }
        Err(CallGone::Unknown) => not_found(&path),
        Err(CallGone::NotInProgress) => error(
            StatusCode::BAD_REQUEST,
            21220,
            "Call is not in-progress. Cannot redirect.",
        ),
    }
}

/// The identity a document dials, if it dials a `<Client>`.
fn dialled_client(doc: &twiml::Response) -> Option<String> {
    doc.verbs.iter().find_map(|v| match v {
        Verb::Dial(d) => d.nouns.iter().find_map(|n| match n {
            DialNoun::Client(c) => Some(c.identity.clone()),
            _ => None,
        }),
        _ => None,
    })
}

pub(super) async fn create_call(
    State(st): State<Arc<RestState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls.json");
    if let Err(r) = gate(&st, &headers, &account, &path, RestOp::Create).await {
        return r;
    }
    let f = match form(&body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(to) = first(&f, "To") else {
        return error(
            StatusCode::BAD_REQUEST,
            21201,
            "No 'To' number is specified",
        );
    };
    let Some(from) = first(&f, "From") else {
        return error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required",
        );
    };
    let start = if let Some(raw) = first(&f, "Twiml") {
        match parse_twiml(raw) {
            Ok(doc) => OutboundStart::Twiml(doc),
            Err(r) => return r,
        }
    } else if let Some(url) = first(&f, "Url") {
        OutboundStart::Url(url.to_string())
    } else {
        return error(
            StatusCode::BAD_REQUEST,
            21205,
            "Either Url, Twiml or ApplicationSid is required",
        );
    };
    let timeout = match first(&f, "Timeout").map(str::parse::<u64>) {
        None => 60,
        Some(Ok(t)) if (1..=600).contains(&t) => t,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                21216,
                "Timeout must be between 1 and 600 seconds",
            )
        }
    };
    let events: Vec<String> = f
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_string))
        .collect();
    let view = st.env.place_outbound(Outbound {
        to: to.to_string(),
        from: from.to_string(),
        start,
        status_callback: first(&f, "StatusCallback").map(str::to_string),
        events: if events.is_empty() {
            vec!["completed".into()]
        } else {
            events
        },
        timeout: Duration::from_secs(timeout),
    });
    (
        StatusCode::CREATED,
        Json(call_json(&st.account_sid, &view.rec)),
    )
        .into_response()
}
