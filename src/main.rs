//! The `callq` binary: parse flags, set up logging, turn the flags into each command's plain
//! settings ([`callq::cli`]) and hand over to the library.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use callq::cli::{Command, CommonArgs};
use callq::config::CentreConfig;

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // colour codes only for a person at a terminal, never into a log file or a collector
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

fn load_centre(common: &CommonArgs) -> anyhow::Result<CentreConfig> {
    match &common.config {
        Some(path) => Ok(CentreConfig::from_file(path)?),
        None => Ok(CentreConfig::from_toml(
            callq::config::DEMO_TOML,
            "embedded demo config",
        )?),
    }
}

async fn bind(listen: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = callq::cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.common.log_json);
            let centre = load_centre(&args.common)?;
            let settings = args.settings();
            let state = callq::server::state(&settings, centre).await?;
            let listener = bind(args.listen).await?;
            tracing::info!(listen = %args.listen, "callq serve ready");
            let (trigger, shutdown) = callq::shutdown::channel();
            trigger.on_signals();
            callq::server::serve(listener, state, settings.max_body, shutdown).await?;
        }
        Command::Worker(args) => {
            init_logging(args.common.log_json);
            let centre = load_centre(&args.common)?;
            let config = args.config()?;
            let (trigger, shutdown) = callq::shutdown::channel();
            trigger.on_signals();
            callq::worker::run(&config, &centre, shutdown).await?;
        }
        Command::All(args) => {
            init_logging(args.serve.common.log_json);
            let centre = load_centre(&args.serve.common)?;
            let settings = args.serve.settings();
            let state = callq::server::state(&settings, centre.clone()).await?;
            let listener = bind(args.serve.listen).await?;
            let worker_config = args.worker_config()?;
            let (trigger, shutdown) = callq::shutdown::channel();
            trigger.on_signals();
            let worker_shutdown = shutdown.clone();
            let worker = tokio::spawn(async move {
                callq::worker::run(&worker_config, &centre, worker_shutdown).await
            });
            tracing::info!(listen = %args.serve.listen, "callq all ready");
            callq::server::serve(listener, state, settings.max_body, shutdown).await?;
            worker.await.context("worker task")??;
        }
        #[cfg(feature = "lab")]
        Command::Demo(args) => callq::lab::demo::run(args.options()).await?,
        #[cfg(feature = "lab")]
        Command::Bench(args) => callq::lab::bench::run(args.options()).await?,
        #[cfg(feature = "lab")]
        Command::Drill(args) => {
            let exe = std::env::current_exe().context("finding this executable")?;
            callq::lab::drill::run(args.options(&exe), args.json).await?
        }
        Command::Inspect(args) => {
            init_logging(args.common.log_json);
            let centre = load_centre(&args.common)?;
            callq::ops::inspect::run(&args.options(), &centre).await?;
        }
        Command::Agent(args) => {
            init_logging(false);
            callq::agents::client::run(args.options()).await?;
        }
    }
    Ok(())
}
