//! Twilio's protocol: webhook signatures ([`signature`]), TwiML written and parsed ([`twiml`])
//! and the REST client ([`rest`]). Nothing here decides anything about calls; what callq does
//! when Twilio calls it lives in [`crate::webhooks`]. `docs/twilio.md` sums up the Twilio facts
//! this code relies on.

pub mod rest;
pub mod signature;
pub mod twiml;
