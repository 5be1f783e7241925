//! The `callq` binary: parse flags, set up logging, hand over to the library.

use anyhow::Context;
use clap::Parser;

use callq::cli::{Cli, Command, CommonArgs};
use callq::config::CentreConfig;

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.common.log_json);
            let centre = load_centre(&args.common)?;
            let state = callq::server::state_from_args(&args, centre).await?;
            let listener = tokio::net::TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("cannot listen on {}", args.listen))?;
            tracing::info!(listen = %args.listen, "callq serve ready");
            let (trigger, shutdown) = callq::shutdown::channel();
            trigger.on_signals();
            callq::server::serve(listener, state, args.max_body, shutdown).await?;
        }
        Command::Worker(args) => {
            init_logging(args.common.log_json);
            let centre = load_centre(&args.common)?;
            let (trigger, shutdown) = callq::shutdown::channel();
            trigger.on_signals();
            callq::worker::run(&args, &centre, shutdown).await?;
        }
        Command::All(args) => {
            init_logging(args.serve.common.log_json);
            let centre = load_centre(&args.serve.common)?;
            let state = callq::server::state_from_args(&args.serve, centre.clone()).await?;
            let listener = tokio::net::TcpListener::bind(args.serve.listen)
                .await
                .with_context(|| format!("cannot listen on {}", args.serve.listen))?;
            let (trigger, shutdown) = callq::shutdown::channel();
            trigger.on_signals();
            let worker_args = args.worker_args();
            let worker_shutdown = shutdown.clone();
            let worker = tokio::spawn(async move {
                callq::worker::run(&worker_args, &centre, worker_shutdown).await
            });
            tracing::info!(listen = %args.serve.listen, "callq all ready");
            callq::server::serve(listener, state, args.serve.max_body, shutdown).await?;
            worker.await.context("worker task")??;
        }
        Command::Demo(args) => callq::lab::demo::run(args).await?,
        Command::Bench(args) => callq::lab::bench::run(args).await?,
        Command::Inspect(args) => {
            init_logging(args.common.log_json);
            let centre = load_centre(&args.common)?;
            callq::ops::inspect::run(&args, &centre).await?;
        }
        Command::Agent(args) => {
            init_logging(false);
            callq::agents::client::run(args).await?;
        }
    }
    Ok(())
}
