//! (in progress) `callq agent`: a heartbeat client.

#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {}

pub async fn run(_args: AgentArgs) -> anyhow::Result<()> {
    anyhow::bail!("callq agent: not yet built")
}
