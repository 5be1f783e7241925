//! (in progress) The Twilio simulator.

pub mod demo;
