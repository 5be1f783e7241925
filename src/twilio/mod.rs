//! Twilio's side of callq: webhook signatures, TwiML (written and parsed), business hours,
//! spoken announcements and the REST client the worker uses.

pub mod announce;
pub mod hours;
pub mod rest;
pub mod signature;
pub mod twiml;
pub mod webhooks;
