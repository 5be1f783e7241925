//! Load runs against the Twilio simulator, and the Erlang C yardstick they are judged by.

pub mod erlang;

/// (in progress) `callq bench` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("callq bench: not yet built")
}
