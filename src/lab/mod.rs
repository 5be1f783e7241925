//! The lab: what assembles callq with the Twilio simulator ([`crate::sim`]) and drives it.
//! None of it is part of the product; it sits behind the default `lab` cargo feature.
//!
//! - [`stack`]: callq (server and workers), its Redis and the simulator in one process.
//! - [`demo`]: `callq demo`.
//! - [`mod@bench`]: `callq bench`: load runs against the simulator, judged by Erlang C, and the
//!   routing-core micro-benchmark.
//! - [`drill`]: `callq drill`: the bench's load with one fault injected (a worker killed, Redis
//!   restarted, a cluster failover, Twilio's REST API down), reported as calls lost, double
//!   bookings and time to recover.
//! - [`embedded_redis`]: a private `redis-server` child for the demo, the benches and the tests.
//! - [`redis_pause`]: Redis frozen for spans while a bench runs (`CLIENT PAUSE`).

pub mod bench;
pub mod cluster;
pub mod demo;
pub mod drill;
pub mod embedded_redis;
pub mod redis_pause;
pub mod stack;

/// Logs to stderr at `warn` unless `RUST_LOG` says otherwise, so the demo's and the bench's own
/// output stays readable; a no-op when logging is already set up.
pub(crate) fn quiet_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}
