//! callq: an inbound call queue (ACD) for Twilio Programmable Voice.
//!
//! Every inbound call is held in a queue in Redis; callers hear their position and an honest
//! estimated wait; calls are offered to agents who are really online, one after another, until
//! someone answers. The crate is laid out by concern:
//!
//! - [`store`]: the only code that touches routing keys; one typed function per Lua script.
//! - [`twilio`]: Twilio's protocol: webhook signatures, TwiML, the REST client.
//! - [`webhooks`]: callq's edge: the handlers Twilio calls about a caller, and what callers hear.
//! - [`config`]: the centre's configuration file: queues, numbers, business hours, announcements.
//! - [`agents`]: the agent API (heartbeat, status) and the admin API, with their tokens.
//! - [`worker`]: the wake loop that claims (call, agent) pairs and rings agents; reaping.
//! - [`ops`]: metrics, health and the event stream.
//! - [`archive`]: the durable call archive in PostgreSQL, the KPI report, outbound events.
//! - [`cli`]: the command line, turned into the plain settings each entry point takes.
//!
//! Behind the default `lab` feature (`--no-default-features` builds the product alone):
//!
//! - `sim`: a Twilio simulator that speaks Twilio's real protocol, for the demo and benches.
//! - `lab`: what assembles callq with the simulator and drives it: the in-process stack,
//!   `callq demo`, `callq bench` (with the Erlang C yardstick) and an embedded `redis-server`.
//!
//! These docs are written for whoever works on callq, and link private items freely: read them
//! with `cargo doc --document-private-items` (the test command builds them so, warnings denied).

#![allow(rustdoc::private_intra_doc_links)]

pub mod agents;
pub mod app;
pub mod archive;
pub mod cli;
pub mod config;
pub mod contract;
#[cfg(feature = "lab")]
pub mod lab;
pub mod ops;
pub mod reconcile;
pub mod server;
pub mod shutdown;
#[cfg(feature = "lab")]
pub mod sim;
pub mod store;
pub mod twilio;
pub mod webhooks;
pub mod worker;
