//! The resources and requests of Twilio's REST API that callq uses: the Call resource, a queue
//! member, a call's status and status-callback events, and the `CreateCall` request with its
//! form parameters in Twilio's names, checked locally before anything is sent.

use serde::{Deserialize, Deserializer, Serialize};

use super::error::RestError;

/// Twilio's limit on inline `Twiml` passed to the REST API, in characters (error 32018).
pub const MAX_INLINE_TWIML_CHARS: usize = 4_000;
/// Twilio's maximum `Timeout` (ring time, seconds) when creating a call.
pub const MAX_CREATE_CALL_TIMEOUT_S: u32 = 600;

/// HTTP method Twilio uses to fetch a URL (`Method`, `StatusCallbackMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HttpMethod {
    #[serde(rename = "GET")]
    Get,
    #[default]
    #[serde(rename = "POST")]
    Post,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// A call's status as Twilio reports it. Values Twilio may add later parse as `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    Failed,
    NoAnswer,
    Canceled,
    #[default]
    #[serde(other)]
    Unknown,
}

impl CallStatus {
    /// Twilio's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Queued => "queued",
            CallStatus::Initiated => "initiated",
            CallStatus::Ringing => "ringing",
            CallStatus::InProgress => "in-progress",
            CallStatus::Completed => "completed",
            CallStatus::Busy => "busy",
            CallStatus::Failed => "failed",
            CallStatus::NoAnswer => "no-answer",
            CallStatus::Canceled => "canceled",
            CallStatus::Unknown => "unknown",
        }
    }

    /// The call is over (no further status changes).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::Busy
                | CallStatus::Failed
                | CallStatus::NoAnswer
                | CallStatus::Canceled
        )
    }
}

/// Status callback events for `StatusCallbackEvent` (`initiated ringing answered completed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEvent {
    Initiated,
    Ringing,
    Answered,
    Completed,
}

impl CallEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            CallEvent::Initiated => "initiated",
            CallEvent::Ringing => "ringing",
            CallEvent::Answered => "answered",
            CallEvent::Completed => "completed",
        }
    }
}

/// The Call resource, as far as callq needs it. Unknown fields are ignored; nullable fields are
/// `Option`s. Times are kept as Twilio's RFC 2822 strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallResource {
    pub sid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub account_sid: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: CallStatus,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    /// `inbound`, `outbound-api`, `outbound-dial`, …
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub parent_call_sid: Option<String>,
    #[serde(default)]
    pub answered_by: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
    #[serde(default)]
    pub end_time: Option<String>,
    /// Seconds, as a string; empty until the call ends.
    #[serde(default)]
    pub duration: Option<String>,
    /// Milliseconds before the call was placed, as a string.
    #[serde(default)]
    pub queue_time: Option<String>,
    #[serde(default)]
    pub uri: Option<String>,
}

/// Which calls `GET …/Calls.json` returns (Twilio's `ListCall` filters); the first page only,
/// newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Only the child legs of this call (the calls its `<Dial>` placed).
    pub parent_call_sid: Option<String>,
    /// Only calls to this number or `client:<identity>`.
    pub to: Option<String>,
    /// Only calls from this number or `client:<identity>`.
    pub from: Option<String>,
    /// Only calls that started on or after this UTC date (`StartTime>`, `YYYY-MM-DD`).
    pub started_on_or_after: Option<String>,
    /// Only calls in this status (`Status`: `queued`, `ringing`, `in-progress`, …).
    pub status: Option<CallStatus>,
    /// Calls per page (Twilio allows up to 1000).
    pub page_size: u32,
}

impl CallFilter {
    /// The query parameters, in Twilio's names.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(p) = &self.parent_call_sid {
            q.push(("ParentCallSid", p.clone()));
        }
        if let Some(to) = &self.to {
            q.push(("To", to.clone()));
        }
        if let Some(from) = &self.from {
            q.push(("From", from.clone()));
        }
        if let Some(d) = &self.started_on_or_after {
            q.push(("StartTime>", d.clone()));
        }
        if let Some(status) = self.status {
            q.push(("Status", status.as_str().to_string()));
        }
        q.push(("PageSize", self.page_size.clamp(1, 1000).to_string()));
        q
    }
}

/// One page of `GET …/Calls.json`; `next_page_uri` (a path from the API's host, with its
/// query) leads to the next one, null on the last.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallPage {
    #[serde(default)]
    pub calls: Vec<CallResource>,
    #[serde(default)]
    pub next_page_uri: Option<String>,
}

/// A Twilio `<Enqueue>` queue (`GET …/Queues.json`), as far as callq needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueResource {
    pub sid: String,
    /// The name `<Enqueue>` gave it: `callq-<queue>` (or `callq-<queue>-<shard>`).
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub current_size: Option<u32>,
    #[serde(default)]
    pub average_wait_time: Option<u64>,
    #[serde(default)]
    pub max_size: Option<u32>,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub uri: Option<String>,
}

/// One page of `GET …/Queues.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePage {
    #[serde(default)]
    pub queues: Vec<QueueResource>,
    #[serde(default)]
    pub next_page_uri: Option<String>,
}

/// One page of `GET …/Queues/{QueueSid}/Members.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberPage {
    #[serde(default)]
    pub queue_members: Vec<QueueMember>,
    #[serde(default)]
    pub next_page_uri: Option<String>,
}

/// A member of a Twilio `<Enqueue>` queue (answer to a dequeue, or listed by
/// `GET …/Queues/{QueueSid}/Members.json`); `wait_time` is in seconds, `date_enqueued` RFC 2822.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueMember {
    pub call_sid: String,
    #[serde(default)]
    pub queue_sid: Option<String>,
    #[serde(default)]
    pub position: Option<u32>,
    #[serde(default)]
    pub wait_time: Option<u64>,
    #[serde(default)]
    pub date_enqueued: Option<String>,
}

/// What a newly created call does when answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallInstructions {
    /// Inline TwiML (at most [`MAX_INLINE_TWIML_CHARS`] characters).
    Twiml(String),
    /// Twilio fetches the TwiML from this absolute URL.
    Url { url: String, method: HttpMethod },
}

/// `POST …/Calls.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateCall {
    /// E.164 number or `client:<identity>`.
    pub to: String,
    /// A Twilio number (or verified caller ID) or `client:<identity>`.
    pub from: String,
    pub instructions: CallInstructions,
    pub status_callback: Option<String>,
    /// Sent as one `StatusCallbackEvent` parameter per value.
    pub status_callback_event: Vec<CallEvent>,
    pub status_callback_method: Option<HttpMethod>,
    /// Ring time in seconds (Twilio's default 60, at most 600).
    pub timeout_s: Option<u32>,
}

impl CreateCall {
    /// A call to `to` from `from` running inline TwiML, no callbacks, Twilio's default timeout.
    pub fn with_twiml(
        to: impl Into<String>,
        from: impl Into<String>,
        twiml: impl Into<String>,
    ) -> Self {
        Self {
            to: to.into(),
            from: from.into(),
            instructions: CallInstructions::Twiml(twiml.into()),
            status_callback: None,
            status_callback_event: Vec::new(),
            status_callback_method: None,
            timeout_s: None,
        }
    }

    /// The form parameters, in Twilio's names, validated locally.
    pub(super) fn form(&self) -> Result<Vec<(&'static str, String)>, RestError> {
        if self.to.is_empty() || self.from.is_empty() {
            return Err(RestError::Invalid(
                "CreateCall needs both To and From".to_owned(),
            ));
        }
        let mut form = vec![("To", self.to.clone()), ("From", self.from.clone())];
        match &self.instructions {
            CallInstructions::Twiml(twiml) => {
                check_twiml_len(twiml)?;
                form.push(("Twiml", twiml.clone()));
            }
            CallInstructions::Url { url, method } => {
                form.push(("Url", url.clone()));
                form.push(("Method", method.as_str().to_owned()));
            }
        }
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb.clone()));
        }
        for ev in &self.status_callback_event {
            form.push(("StatusCallbackEvent", ev.as_str().to_owned()));
        }
        if let Some(m) = self.status_callback_method {
            form.push(("StatusCallbackMethod", m.as_str().to_owned()));
        }
        if let Some(t) = self.timeout_s {
            if t == 0 || t > MAX_CREATE_CALL_TIMEOUT_S {
                return Err(RestError::Invalid(format!(
                    "CreateCall Timeout must be 1..={MAX_CREATE_CALL_TIMEOUT_S} s, got {t}"
                )));
            }
            form.push(("Timeout", t.to_string()));
        }
        Ok(form)
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub(super) fn check_twiml_len(twiml: &str) -> Result<(), RestError> {
    let len = twiml.chars().count();
    if len > MAX_INLINE_TWIML_CHARS {
        return Err(RestError::TwimlTooLong { len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_resource_tolerates_nulls_unknown_status_and_extra_fields() {
        let json =
            r#"{"sid":"CA1","account_sid":null,"status":"brand-new-status","extra":{"a":1}}"#;
        let call: CallResource = serde_json::from_str(json).expect("parse");
        assert_eq!(call.sid, "CA1");
        assert_eq!(call.account_sid, "");
        assert_eq!(call.status, CallStatus::Unknown);
        let call: CallResource =
            serde_json::from_str(r#"{"sid":"CA2","status":"no-answer"}"#).expect("parse");
        assert_eq!(call.status, CallStatus::NoAnswer);
    }
}
