//! (in progress) `callq demo`.

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {}

pub async fn run(_args: DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("callq demo: not yet built")
}
