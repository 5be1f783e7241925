//! (in progress) `callq worker`.

use crate::cli::WorkerArgs;
use crate::config::CentreConfig;
use crate::shutdown::Shutdown;

pub async fn run(_args: &WorkerArgs, _centre: &CentreConfig, _shutdown: Shutdown) -> anyhow::Result<()> {
    anyhow::bail!("callq worker: not yet built")
}
