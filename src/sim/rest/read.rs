//! The REST reads: the Call resource (`GET …/Calls/{CallSid}.json`), the list of calls
//! (`GET …/Calls.json`, filtered, paged, newest first), and the `<Enqueue>` queues and their
//! members (`GET …/Queues.json`, `GET …/Queues/{QueueSid}/Members.json`), with Twilio's field
//! names and RFC 2822 times.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiff::civil::Date;
use jiff::Timestamp;
use serde::de::value::StrDeserializer;
use serde::Deserialize;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::{error, gate, not_found, RestState};
use crate::sim::faults::RestOp;
use crate::sim::registry::{CallFilter, CallRecord, DateFilter};
use crate::sim::twiml_exec::{rfc2822, TwilioQueues};
use crate::twilio::rest::{CallResource, CallStatus};

/// `PageSize` when none is given, and the most Twilio allows.
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// The PhoneNumberSid Twilio would give the number `n` (stable per number).
fn phone_number_sid(n: &str) -> String {
    let digest = Sha1::digest(n.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("PN{}", &hex[..32])
}

/// The Call resource as Twilio writes it: the fields callq reads, as [`CallResource`]
/// serializes them, and the rest of Twilio's.
pub(super) fn call_json(account: &str, r: &CallRecord) -> Value {
    let sid = &r.info.sid;
    let base = format!("/2010-04-01/Accounts/{account}/Calls/{sid}");
    let time = |t: Option<Timestamp>| t.map(rfc2822);
    let call = CallResource {
        sid: sid.clone(),
        account_sid: account.to_string(),
        // the registry keeps Twilio's own status names
        status: CallStatus::deserialize(StrDeserializer::<serde_json::Error>::new(r.status))
            .unwrap_or_default(),
        to: Some(r.info.to.clone()),
        from: Some(r.info.from.clone()),
        direction: Some(r.info.direction.clone()),
        parent_call_sid: r.parent_call_sid.clone(),
        answered_by: None,
        date_created: Some(rfc2822(r.created)),
        date_updated: Some(rfc2822(r.updated)),
        start_time: time(r.started),
        // empty unless the call completed
        end_time: time(r.ended.filter(|_| r.status == "completed")),
        duration: r.duration_s().map(|d| d.to_string()),
        queue_time: Some("0".to_string()),
        uri: Some(format!("{base}.json")),
    };
    let subresources: serde_json::Map<String, Value> = [
        ("notifications", "Notifications"),
        ("recordings", "Recordings"),
        ("payments", "Payments"),
        ("events", "Events"),
        ("siprec", "Siprec"),
        ("streams", "Streams"),
        ("transcriptions", "Transcriptions"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), Value::String(format!("{base}/{v}.json"))))
    .collect();
    let inbound = r.info.direction == "inbound";
    let mut json = serde_json::to_value(call).unwrap_or_else(|_| json!({}));
    if let Value::Object(fields) = &mut json {
        let others = json!({
            "to_formatted": r.info.to,
            "from_formatted": r.info.from,
            "phone_number_sid": inbound.then(|| phone_number_sid(&r.info.to)),
            "price": null,
            "price_unit": "USD",
            "api_version": "2010-04-01",
            "forwarded_from": null,
            "group_sid": null,
            "caller_name": null,
            "trunk_sid": null,
            "subresource_uris": subresources,
        });
        if let Value::Object(others) = others {
            fields.extend(others);
        }
    }
    json
}

pub(super) async fn fetch_call(
    State(st): State<Arc<RestState>>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls/{file}");
    if let Err(r) = gate(&st, &headers, &account, &path, RestOp::Read).await {
        return r;
    }
    let view = file
        .strip_suffix(".json")
        .and_then(|sid| st.env.registry.view(sid));
    match view {
        Some(v) => (StatusCode::OK, Json(call_json(&st.account_sid, &v.rec))).into_response(),
        None => not_found(&path),
    }
}

/// A list request's filters and page, read from its query.
#[derive(Debug, Clone, PartialEq)]
struct ListQuery {
    filter: CallFilter,
    page: usize,
    page_size: usize,
    /// The filters as given, for the page URIs.
    echo: Vec<(String, String)>,
}

fn bad(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, 20001, &message)
}

#[allow(clippy::result_large_err)]
fn parse_query(raw: Option<&str>) -> Result<ListQuery, Response> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|_| bad("Malformed query".into()))?;
    let mut q = ListQuery {
        filter: CallFilter::default(),
        page: 0,
        page_size: DEFAULT_PAGE_SIZE,
        echo: Vec::new(),
    };
    let date = |name: &str, v: &str| {
        v.trim()
            .parse::<Date>()
            .map_err(|_| bad(format!("{name} must be a date as YYYY-MM-DD, not {v:?}")))
    };
    for (k, v) in pairs {
        let set = |slot: &mut DateFilter, which: char| -> Result<(), Response> {
            let d = Some(date(&k, &v)?);
            match which {
                '>' => slot.on_or_after = d,
                '<' => slot.before = d,
                _ => slot.on = d,
            }
            Ok(())
        };
        match k.as_str() {
            "To" => q.filter.to = Some(v.clone()),
            "From" => q.filter.from = Some(v.clone()),
            "ParentCallSid" => q.filter.parent_call_sid = Some(v.clone()),
            "Status" => q.filter.status = Some(v.clone()),
            "StartTime" => set(&mut q.filter.start, '=')?,
            "StartTime>" => set(&mut q.filter.start, '>')?,
            "StartTime<" => set(&mut q.filter.start, '<')?,
            "EndTime" => set(&mut q.filter.end, '=')?,
            "EndTime>" => set(&mut q.filter.end, '>')?,
            "EndTime<" => set(&mut q.filter.end, '<')?,
            "PageSize" => {
                q.page_size = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                    .ok_or_else(|| bad(format!("PageSize must be 1 to {MAX_PAGE_SIZE}")))?;
                continue;
            }
            "Page" => {
                q.page = v.parse().map_err(|_| bad("Page must be a number".into()))?;
                continue;
            }
            _ => continue,
        }
        q.echo.push((k, v));
    }
    Ok(q)
}

pub(super) async fn list_calls(
    State(st): State<Arc<RestState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Calls.json");
    if let Err(r) = gate(&st, &headers, &account, &path, RestOp::Read).await {
        return r;
    }
    let q = match parse_query(raw.as_deref()) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let all = st.env.registry.list(&q.filter);
    let start = q.page.saturating_mul(q.page_size).min(all.len());
    let page: Vec<&CallRecord> = all.iter().skip(start).take(q.page_size).collect();
    let uri = |page: usize, token: Option<String>| {
        let mut pairs = q.echo.clone();
        pairs.push(("PageSize".into(), q.page_size.to_string()));
        pairs.push(("Page".into(), page.to_string()));
        if let Some(t) = token {
            pairs.push(("PageToken".into(), t));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("/2010-04-01/Accounts/{}/Calls.json?{query}", st.account_sid)
    };
    let next = (start + page.len() < all.len())
        .then(|| {
            page.last()
                .map(|c| uri(q.page + 1, Some(format!("PA{}", c.info.sid))))
        })
        .flatten();
    let previous = (q.page > 0).then(|| {
        let token = page.first().map(|c| format!("PB{}", c.info.sid));
        uri(q.page - 1, token)
    });
    let calls: Vec<Value> = page.iter().map(|c| call_json(&st.account_sid, c)).collect();
    let body = json!({
        "calls": calls,
        "end": (start + page.len()).saturating_sub(1).max(start),
        "first_page_uri": uri(0, None),
        "next_page_uri": next,
        "page": q.page,
        "page_size": q.page_size,
        "previous_page_uri": previous,
        "start": start,
        "uri": uri(q.page, None),
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// `PageSize` and `Page` of a list request (Twilio's defaults: 50, the first page).
#[allow(clippy::result_large_err)]
fn page_of(raw: Option<&str>) -> Result<(usize, usize), Response> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|_| bad("Malformed query".into()))?;
    let (mut page, mut size) = (0, DEFAULT_PAGE_SIZE);
    for (k, v) in pairs {
        match k.as_str() {
            "PageSize" => {
                size = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                    .ok_or_else(|| bad(format!("PageSize must be 1 to {MAX_PAGE_SIZE}")))?;
            }
            "Page" => page = v.parse().map_err(|_| bad("Page must be a number".into()))?,
            _ => {}
        }
    }
    Ok((page, size))
}

/// Page `page` of `items` in Twilio's list envelope, the list under `key`, URIs on `path`.
fn envelope(key: &str, items: Vec<Value>, page: usize, size: usize, path: &str) -> Value {
    let start = page.saturating_mul(size).min(items.len());
    let total = items.len();
    let chunk: Vec<Value> = items.into_iter().skip(start).take(size).collect();
    let uri = |p: usize| format!("{path}?PageSize={size}&Page={p}");
    let n = chunk.len();
    let mut body = json!({
        "end": (start + n).saturating_sub(1).max(start),
        "first_page_uri": uri(0),
        "next_page_uri": (start + n < total).then(|| uri(page + 1)),
        "page": page,
        "page_size": size,
        "previous_page_uri": (page > 0).then(|| uri(page - 1)),
        "start": start,
        "uri": uri(page),
    });
    if let Value::Object(fields) = &mut body {
        fields.insert(key.to_string(), Value::Array(chunk));
    }
    body
}

/// `GET …/Queues.json`: the `<Enqueue>` queues Twilio has made, by friendly name.
pub(super) async fn list_queues(
    State(st): State<Arc<RestState>>,
    Path(account): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Queues.json");
    if let Err(r) = gate(&st, &headers, &account, &path, RestOp::Read).await {
        return r;
    }
    let (page, size) = match page_of(raw.as_deref()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let now = rfc2822(Timestamp::now());
    let queues: Vec<Value> = st
        .env
        .twilio_queues()
        .members()
        .into_iter()
        .map(|(name, members)| {
            let sid = TwilioQueues::sid_for(&name);
            let base = format!("/2010-04-01/Accounts/{}/Queues/{sid}", st.account_sid);
            let wait = members.iter().map(|(_, w)| w.as_secs()).sum::<u64>();
            json!({
                "sid": sid,
                "account_sid": st.account_sid,
                "friendly_name": name,
                "current_size": members.len(),
                "max_size": 100,
                "average_wait_time": wait.checked_div(members.len() as u64).unwrap_or(0),
                "date_created": now,
                "date_updated": now,
                "uri": format!("{base}.json"),
                "subresource_uris": { "members": format!("{base}/Members.json") },
            })
        })
        .collect();
    let body = envelope("queues", queues, page, size, &path);
    (StatusCode::OK, Json(body)).into_response()
}

/// `GET …/Queues/{QueueSid}/Members.json`: the queue's callers, first in line first.
pub(super) async fn list_members(
    State(st): State<Arc<RestState>>,
    Path((account, queue)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{account}/Queues/{queue}/Members.json");
    if let Err(r) = gate(&st, &headers, &account, &path, RestOp::Read).await {
        return r;
    }
    let (page, size) = match page_of(raw.as_deref()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some((_, members)) = st
        .env
        .twilio_queues()
        .members()
        .into_iter()
        .find(|(name, _)| TwilioQueues::sid_for(name) == queue)
    else {
        return not_found(&path);
    };
    let now = Timestamp::now();
    let members: Vec<Value> = members
        .into_iter()
        .enumerate()
        .map(|(i, (call_sid, waited))| {
            let enqueued = jiff::SignedDuration::try_from(waited)
                .ok()
                .and_then(|d| now.checked_sub(d).ok())
                .unwrap_or(now);
            json!({
                "call_sid": call_sid,
                "queue_sid": queue,
                "position": i + 1,
                "wait_time": waited.as_secs(),
                "date_enqueued": rfc2822(enqueued),
                "uri": format!(
                    "/2010-04-01/Accounts/{}/Queues/{queue}/Members/{call_sid}.json",
                    st.account_sid
                ),
            })
        })
        .collect();
    let body = envelope("queue_members", members, page, size, &path);
    (StatusCode::OK, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_the_registry_keeps_is_written_back_as_it_is() {
        for status in [
            "queued",
            "initiated",
            "ringing",
            "in-progress",
            "completed",
            "busy",
            "failed",
            "no-answer",
            "canceled",
        ] {
            let parsed = CallStatus::deserialize(StrDeserializer::<serde_json::Error>::new(status))
                .unwrap_or_default();
            assert_eq!(serde_json::to_value(parsed).ok(), Some(json!(status)));
        }
    }

    #[test]
    fn the_query_reads_twilios_filter_names() {
        let q = parse_query(Some(
            "ParentCallSid=CA1&To=client%3Aalice&From=%2B15005550001&Status=ringing\
             &StartTime%3E=2024-05-01&StartTime<=2024-05-03&EndTime=2024-05-02&PageSize=20&Page=1&Foo=x",
        ))
        .unwrap_or_else(|_| panic!("parses"));
        let f = &q.filter;
        assert_eq!(f.parent_call_sid.as_deref(), Some("CA1"));
        assert_eq!(f.to.as_deref(), Some("client:alice"));
        assert_eq!(f.from.as_deref(), Some("+15005550001"));
        assert_eq!(f.status.as_deref(), Some("ringing"));
        let d = |s: &str| s.parse::<Date>().ok();
        assert_eq!(f.start.on_or_after, d("2024-05-01"));
        assert_eq!(f.start.before, d("2024-05-03"));
        assert_eq!(f.end.on, d("2024-05-02"));
        assert_eq!((q.page, q.page_size), (1, 20));
        assert_eq!(
            q.echo.len(),
            7,
            "every filter is echoed, the unknown and paging not"
        );
        for bad in [
            "PageSize=0",
            "PageSize=1001",
            "StartTime=yesterday",
            "Page=x",
        ] {
            assert!(parse_query(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(parse_query(None).map(|q| q.page_size).ok(), Some(50));
    }
}
