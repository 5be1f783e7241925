//! Load runs against the Twilio simulator, and the Erlang C yardstick they are judged by.

pub mod core;
pub mod erlang;

/// (in progress) `callq bench` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Measure the routing core alone (Lua transitions against local Redis): see `bench::core`.
    #[arg(long)]
    pub core: bool,
    #[command(flatten)]
    pub core_args: core::CoreArgs,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.core {
        core::run(&args.core_args, args.json).await?;
        return Ok(());
    }
    anyhow::bail!("callq bench: only --core is built so far")
}
