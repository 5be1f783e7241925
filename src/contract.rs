//! The contract between the worker and the webhooks: every URL callq gives Twilio to call back
//! about an offer, built and parsed here and nowhere else, so a change to one side does not
//! compile until the other follows.
//!
//! Each URL names the offer it belongs to ([`OfferRef`]: call, agent, attempt) in its query
//! string. Twilio calls these URLs late, twice, out of order, or not at all; the offer's name
//! lets every transition that acts on a result check that it is about the current offer, so
//! a result for an earlier ring of the same call, even to the same agent, changes nothing.
//!
//! | hook | Twilio calls it | request `CallSid` |
//! |---|---|---|
//! | [`OfferHook::DialResult`] | `<Dial action>` of the caller's redirect to the agent | the caller's call |
//! | [`OfferHook::AgentLeg`] | status callback of the agent's leg (both kinds of offer) | the agent's leg |
//! | [`OfferHook::CallbackResult`] | `<Dial action>` of a callback's customer leg | the agent's leg |
//! | [`recording_url`] | `<Dial recordingStatusCallback>` of a recording queue's offer | the caller's call |
//!
//! The recording hook names the call only (`?call=`), not the offer: a recording belongs to
//! the call, and Twilio reports it once the bridged conversation is over.
//!
//! The agent's leg of an inbound offer also carries [`LegParameters`] to the agent's desktop
//! (`<Parameter>`s of the `<Client>`, the Voice SDK's `call.customParameters`): the call, the
//! caller's number, the queue and the wait, which the agent console shows while it rings.

use std::time::Duration;

use crate::store::{check_name, Offer, OfferRef};

/// The webhooks that report on an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferHook {
    /// `/twilio/dial-result`: the caller's `<Dial>` to the agent ended.
    DialResult,
    /// `/twilio/agent-leg`: the agent's leg changed status (answered, completed, …).
    AgentLeg,
    /// `/twilio/callback-result`: a callback's `<Dial>` to the customer ended.
    CallbackResult,
}

impl OfferHook {
    pub const ALL: [OfferHook; 3] = [
        OfferHook::DialResult,
        OfferHook::AgentLeg,
        OfferHook::CallbackResult,
    ];

    /// The route's path on callq's public URL.
    pub const fn path(self) -> &'static str {
        match self {
            OfferHook::DialResult => "/twilio/dial-result",
            OfferHook::AgentLeg => "/twilio/agent-leg",
            OfferHook::CallbackResult => "/twilio/callback-result",
        }
    }

    /// The absolute URL of this hook for `offer`, on the public base `public_url` (no
    /// trailing slash).
    pub fn url(self, public_url: &str, offer: &OfferRef) -> String {
        format!(
            "{}{}?{}",
            public_url.trim_end_matches('/'),
            self.path(),
            query(offer)
        )
    }
}

/// The query string naming `offer`. Its parts are names [`check_name`] accepts (letters,
/// digits, `_-.`), so they need no escaping; [`parse`] refuses anything else.
fn query(offer: &OfferRef) -> String {
    format!(
        "call={}&agent={}&attempt={}",
        offer.call_sid, offer.agent_id, offer.attempt
    )
}

/// How many times a caller whose `<Dial>` to an agent ended is sent back to ask again
/// ([`dial_retry_url`]) while Redis cannot say whether the agent transferred the call, and
/// how many seconds the caller holds before each ask: about half a minute in all, a Redis
/// failover's length, after which the caller is hung up as after any finished call.
pub const DIAL_RETRIES: u32 = 15;
pub const DIAL_RETRY_PAUSE_S: u32 = 2;

/// The URL (for a `<Redirect>`) that asks the dial result of `offer` again, as its `retry`-th
/// ask. Twilio's redirect request carries no `DialCallStatus`: the `retry` mark stands for
/// `completed`, the only result that is asked again.
pub fn dial_retry_url(public_url: &str, offer: &OfferRef, retry: u32) -> String {
    format!(
        "{}&retry={retry}",
        OfferHook::DialResult.url(public_url, offer)
    )
}

/// Which ask of a dial result this is: `Some(n)` for the `n`-th retry ([`dial_retry_url`]),
/// None for Twilio's own `<Dial action>` request (or a mark that is not a number).
pub fn parse_retry(query: &[(String, String)]) -> Option<u32> {
    query
        .iter()
        .find(|(n, _)| n == "retry")
        .and_then(|(_, v)| v.parse().ok())
}

/// What the agent's leg of an inbound offer tells the agent's Voice SDK about the call, as
/// `<Parameter name value>`s of the `<Client>` the worker dials; the SDK hands them to the
/// desktop as `call.customParameters`, and the agent console (`agents::console`) reads them by
/// these names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegParameters {
    /// The caller's CallSid.
    pub call_sid: String,
    /// The caller's number, as Twilio gave it (may be `anonymous` or empty).
    pub from: String,
    /// The queue the call waited in.
    pub queue: String,
    /// How long the caller had waited when the offer was claimed.
    pub waited: Duration,
}

impl LegParameters {
    /// Parameter names; the console's script reads these.
    pub const CALL: &'static str = "callq_call";
    pub const FROM: &'static str = "callq_from";
    pub const QUEUE: &'static str = "callq_queue";
    /// Whole milliseconds.
    pub const WAITED_MS: &'static str = "callq_waited_ms";
    pub const NAMES: [&'static str; 4] = [Self::CALL, Self::FROM, Self::QUEUE, Self::WAITED_MS];

    /// The parameters of `offer`'s agent leg.
    pub fn of(offer: &Offer) -> Self {
        LegParameters {
            call_sid: offer.call_sid.clone(),
            from: offer.from.clone(),
            queue: offer.queue.clone(),
            waited: offer.waited,
        }
    }

    /// (name, value) pairs in [`Self::NAMES`] order, as the `<Client>`'s `<Parameter>`s.
    pub fn pairs(&self) -> Vec<(String, String)> {
        vec![
            (Self::CALL.into(), self.call_sid.clone()),
            (Self::FROM.into(), self.from.clone()),
            (Self::QUEUE.into(), self.queue.clone()),
            (
                Self::WAITED_MS.into(),
                u64::try_from(self.waited.as_millis())
                    .unwrap_or(u64::MAX)
                    .to_string(),
            ),
        ]
    }

    /// The parameters read back from (name, value) pairs (a first value counts); None when
    /// one is missing or the wait is not a number.
    pub fn parse(pairs: &[(String, String)]) -> Option<Self> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        Some(LegParameters {
            call_sid: get(Self::CALL)?,
            from: get(Self::FROM)?,
            queue: get(Self::QUEUE)?,
            waited: Duration::from_millis(get(Self::WAITED_MS)?.parse().ok()?),
        })
    }
}

/// The path of Twilio's recording status callback for the agent leg of an inbound offer.
pub const RECORDING_PATH: &str = "/twilio/recording";

/// The absolute URL of the recording status callback for call `call_sid`, on the public base
/// `public_url` (no trailing slash needed). A CallSid is a name [`check_name`] accepts, so it
/// needs no escaping.
pub fn recording_url(public_url: &str, call_sid: &str) -> String {
    format!(
        "{}{RECORDING_PATH}?call={call_sid}",
        public_url.trim_end_matches('/')
    )
}

/// The CallSid a recording hook's query names.
pub fn parse_recording(query: &[(String, String)]) -> Result<String, BadOffer> {
    let call = query
        .iter()
        .find(|(n, _)| n == "call")
        .map(|(_, v)| v.as_str())
        .ok_or(BadOffer::Missing("call"))?;
    check_name("CallSid", call).map_err(|_| BadOffer::Invalid("call"))?;
    Ok(call.to_string())
}

/// Why a hook's query does not name an offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadOffer {
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// The offer a hook's query names; `query` is its decoded (name, value) pairs, and a repeated
/// name's first value counts.
pub fn parse(query: &[(String, String)]) -> Result<OfferRef, BadOffer> {
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let field = |name: &'static str, what: &'static str| -> Result<&str, BadOffer> {
        let v = get(name).ok_or(BadOffer::Missing(name))?;
        check_name(what, v).map_err(|_| BadOffer::Invalid(name))?;
        Ok(v)
    };
    let call_sid = field("call", "CallSid")?.to_string();
    let agent_id = field("agent", "agent id")?.to_string();
    let attempt = get("attempt")
        .ok_or(BadOffer::Missing("attempt"))?
        .parse::<u32>()
        .map_err(|_| BadOffer::Invalid("attempt"))?;
    Ok(OfferRef {
        call_sid,
        agent_id,
        attempt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> OfferRef {
        OfferRef {
            call_sid: "CA0123456789abcdef0123456789abcdef".into(),
            agent_id: "alice.b-1_x".into(),
            attempt: 7,
        }
    }

    /// Split a URL's query the way the webhooks' form parser would see it.
    fn query_of(url: &str) -> Vec<(String, String)> {
        let (_, q) = url.split_once('?').expect("a query");
        serde_urlencoded::from_str(q).expect("form-encoded")
    }

    #[test]
    fn the_recording_hook_round_trips_its_call() {
        let url = recording_url("https://q.example.com/", &offer().call_sid);
        assert_eq!(
            url,
            "https://q.example.com/twilio/recording?call=CA0123456789abcdef0123456789abcdef"
        );
        assert_eq!(parse_recording(&query_of(&url)), Ok(offer().call_sid));
        assert_eq!(parse_recording(&[]), Err(BadOffer::Missing("call")));
        let bad = vec![("call".to_string(), "CA 1".to_string())];
        assert_eq!(parse_recording(&bad), Err(BadOffer::Invalid("call")));
    }

    #[test]
    fn every_hook_round_trips_its_offer() {
        for hook in OfferHook::ALL {
            let url = hook.url("https://q.example.com/", &offer());
            assert!(
                url.starts_with(&format!("https://q.example.com{}?", hook.path())),
                "{url}"
            );
            let pairs = query_of(&url);
            assert_eq!(parse(&pairs), Ok(offer()), "{url}");
        }
    }

    #[test]
    fn a_dial_retry_names_its_offer_and_its_count() {
        let url = dial_retry_url("https://q.example.com", &offer(), 3);
        let pairs = query_of(&url);
        assert_eq!(parse(&pairs), Ok(offer()), "{url}");
        assert_eq!(parse_retry(&pairs), Some(3));
        let first = query_of(&OfferHook::DialResult.url("https://q.example.com", &offer()));
        assert_eq!(parse_retry(&first), None);
        let bad = vec![("retry".to_string(), "x".to_string())];
        assert_eq!(parse_retry(&bad), None);
    }

    #[test]
    fn leg_parameters_round_trip_in_their_order() {
        let offer = Offer {
            call_sid: "CA01".into(),
            agent_id: "a1".into(),
            identity: "alice".into(),
            queue: "sales".into(),
            attempt: 2,
            ring_timeout: Duration::from_secs(15),
            kind: crate::store::CallKind::Inbound,
            from: "+14155551234".into(),
            to: "+15005550001".into(),
            waited: Duration::from_millis(61_250),
            record: crate::store::RecordMode::DoNotRecord,
            also: Vec::new(),
        };
        let p = LegParameters::of(&offer);
        let pairs = p.pairs();
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, LegParameters::NAMES);
        assert_eq!(pairs[3].1, "61250");
        assert_eq!(LegParameters::parse(&pairs), Some(p));
        assert_eq!(LegParameters::parse(&pairs[..3]), None);
    }

    #[test]
    fn a_query_that_does_not_name_an_offer_is_refused() {
        let cases: &[(&str, BadOffer)] = &[
            ("agent=a&attempt=1", BadOffer::Missing("call")),
            ("call=CA1&attempt=1", BadOffer::Missing("agent")),
            ("call=CA1&agent=a", BadOffer::Missing("attempt")),
            ("call=CA1&agent=a%2Cb&attempt=1", BadOffer::Invalid("agent")),
            ("call=&agent=a&attempt=1", BadOffer::Invalid("call")),
            ("call=CA1&agent=a&attempt=x", BadOffer::Invalid("attempt")),
            ("call=CA1&agent=a&attempt=-1", BadOffer::Invalid("attempt")),
        ];
        for (q, want) in cases {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).expect("form");
            assert_eq!(parse(&pairs).as_ref(), Err(want), "{q}");
        }
    }
}
