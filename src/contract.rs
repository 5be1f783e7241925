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

use crate::store::{check_name, OfferRef};

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
