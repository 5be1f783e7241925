//! `POST /twilio/recording?call=`: Twilio's recording status callback for the agent leg of a
//! recording queue's offer (`<Dial record recordingStatusCallback>`, built by the worker from
//! [`crate::contract::recording_url`]). A completed recording is kept with the call
//! ([`crate::store::Store::record`]); its URL is the caller's voice, so logs name the
//! `RecordingSid` only. Twilio reads nothing back: the answer is an empty `<Response/>`.

use crate::contract;
use crate::store::{check_name, Recorded, Recording};
use crate::twilio::twiml;

use super::{within, Hook, Reply};

/// Longest `RecordingUrl` kept (Twilio's are about 120 characters).
const MAX_URL_CHARS: usize = 1024;

/// The call the recording belongs to: the one the URL names (signed with it), else the
/// request's own `CallSid` (for `<Dial>` recordings, the caller's call either way).
fn call_of(h: &Hook) -> String {
    contract::parse_recording(&h.query.0).unwrap_or_else(|_| h.call_sid.clone())
}

/// A recording URL worth keeping: http(s), one line, bounded.
fn plausible_url(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= MAX_URL_CHARS
        && !url.chars().any(char::is_control)
}

pub(crate) async fn recording(h: Hook) -> Reply {
    let empty = |outcome| Reply::twiml(twiml::Response::new(), outcome);
    let call = call_of(&h);
    let rec_sid = h.param("RecordingSid");
    let status = h.param("RecordingStatus");
    if check_name("RecordingSid", rec_sid).is_err() {
        tracing::warn!(call = %call, "recording callback without a valid RecordingSid; ignored");
        return empty("invalid");
    }
    if status != "completed" {
        // `in-progress` (not asked for), `absent` (nothing recorded), `failed`
        tracing::info!(call = %call, recording_sid = %rec_sid, status = %super::excerpt(status),
            "recording not completed; nothing kept");
        return empty("ignored");
    }
    let url = h.param("RecordingUrl");
    if !plausible_url(url) {
        tracing::warn!(call = %call, recording_sid = %rec_sid,
            "completed recording without a usable RecordingUrl; nothing kept");
        return empty("invalid");
    }
    let recording = Recording {
        sid: rec_sid.to_string(),
        url: url.to_string(),
        duration_s: h.param("RecordingDuration").parse().unwrap_or(0),
    };
    match within(&h.app, h.app.store.record(&call, &recording)).await {
        Ok(Recorded::Kept) => {
            tracing::info!(call = %call, recording_sid = %rec_sid,
                duration_s = recording.duration_s, "recording kept with the call");
            empty("recorded")
        }
        Ok(Recorded::Duplicate) => empty("duplicate"),
        Ok(Recorded::UnknownCall) => {
            tracing::warn!(call = %call, recording_sid = %rec_sid,
                "recording of a call callq has no record of; not kept (it stays at Twilio)");
            empty("unknown_call")
        }
        Err(e) => {
            tracing::warn!(call = %call, recording_sid = %rec_sid, error = %e,
                "redis unavailable; recording not kept with the call (it stays at Twilio)");
            empty("redis_error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_urls_are_kept() {
        assert!(plausible_url(
            "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"
        ));
        assert!(plausible_url(
            "http://127.0.0.1:9/2010-04-01/Accounts/AC1/Recordings/RE1"
        ));
        assert!(!plausible_url(""));
        assert!(!plausible_url("javascript:alert(1)"));
        assert!(!plausible_url("https://a.example/\nforged"));
        assert!(!plausible_url(&format!(
            "https://a.example/{}",
            "x".repeat(2000)
        )));
    }
}
