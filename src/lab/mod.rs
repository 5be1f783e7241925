//! The lab: what assembles callq with the Twilio simulator ([`crate::sim`]) and drives it.
//! None of it is part of the product; it sits behind the default `lab` cargo feature.
//!
//! - [`stack`]: callq (server and workers), its Redis and the simulator in one process.
//! - [`demo`]: `callq demo`.
//! - [`bench`]: `callq bench`: load runs against the simulator, judged by Erlang C, and the
//!   routing-core micro-benchmark.
//! - [`embedded_redis`]: a private `redis-server` child for the demo, the benches and the tests.

pub mod bench;
pub mod demo;
pub mod embedded_redis;
pub mod stack;
