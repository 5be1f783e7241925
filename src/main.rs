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
            let centres: Vec<String> = if args.centres.is_empty() {
                vec![centre.centre.clone()]
            } else {
                args.centres.clone()
            };
            for c in &centres {
                callq::store::check_name("centre", c).context("CALLQ_CENTRES")?;
            }
            let (trigger, shutdown) = callq::shutdown::channel();
            trigger.on_signals();
            callq::worker::run_centres(&config, &centres, shutdown).await?;
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
        Command::Archive(args) => {
            init_logging(args.common.log_json);
            let opts = args.options().map_err(anyhow::Error::msg)?;
            if args.migrate_only {
                callq::archive::migrate(&opts.database_url).await?;
                tracing::info!("archive schema up to date");
                return Ok(());
            }
            let outbound = args.outbound().map_err(anyhow::Error::msg)?;
            let centre = load_centre(&args.common)?;
            let store_opts = callq::store::StoreOptions {
                // a connection for the archive's blocking read and one for each receiver's
                pool_size: args
                    .common
                    .redis_pool
                    .clamp(2, 8)
                    .max(2 + outbound.as_ref().map_or(0, |o| o.urls.len())),
                // a read blocks up to opts.block for new events
                response_timeout: opts.block + std::time::Duration::from_secs(5),
                ..callq::store::StoreOptions::default()
            };
            let store = callq::store::Store::connect_with(
                &args.common.redis_url,
                &centre.centre,
                &store_opts,
            )?;
            let listener = bind(args.listen).await?;
            let (trigger, shutdown) = callq::shutdown::channel();
            trigger.on_signals();
            let health = callq::archive::Health::default();
            let mut tasks = tokio::task::JoinSet::new();
            // the recorder first, so that nothing counted before the first scrape is lost
            callq::ops::metrics_handle();
            tasks.spawn(callq::archive::serve_health(
                listener,
                health.clone(),
                store.clone(),
                shutdown.clone(),
            ));
            if let Some(out) = outbound {
                let (store, centre, opts, shutdown) = (
                    store.clone(),
                    centre.centre.clone(),
                    opts.clone(),
                    shutdown.clone(),
                );
                tasks.spawn(async move {
                    callq::archive::outbound::run(&store, &centre, &out, &opts, shutdown).await
                });
            }
            if args.outbound_only {
                health.set(true);
            } else {
                let (centre, shutdown) = (centre.centre.clone(), shutdown.clone());
                tasks.spawn(async move {
                    callq::archive::run(&store, &centre, &opts, health, shutdown).await
                });
            }
            tracing::info!(listen = %args.listen, "callq archive started");
            while let Some(r) = tasks.join_next().await {
                if let Err(e) = r.context("archive task")? {
                    trigger.trigger();
                    return Err(e.into());
                }
            }
        }
        Command::Report(args) => {
            init_logging(false);
            let centre = match (&args.centre, &args.config) {
                (Some(c), _) => c.clone(),
                (None, Some(path)) => CentreConfig::from_file(path)?.centre,
                (None, None) => {
                    CentreConfig::from_toml(callq::config::DEMO_TOML, "embedded demo config")?
                        .centre
                }
            };
            let (client, _conn) = callq::archive::writer::connect(&args.database_url)
                .await
                .context("cannot reach the archive's PostgreSQL (DATABASE_URL)")?;
            let report = callq::archive::report::report(&client, &args.options(&centre)).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", callq::archive::report::render(&report));
            }
        }
        Command::Reconcile(args) => {
            init_logging(args.common.log_json);
            let centre = load_centre(&args.common)?;
            let store = callq::store::Store::connect(
                &args.common.redis_url,
                &centre.centre,
                args.common.redis_pool,
            )?;
            let rest = callq::worker::rest_client(
                &args.account(),
                &callq::worker::Settings::new(&args.twilio.public_url),
            )?;
            let (client, _conn) = callq::archive::writer::connect(&args.database_url)
                .await
                .context("cannot reach the archive's PostgreSQL (DATABASE_URL)")?;
            let opts = callq::reconcile::Options {
                apply: args.apply,
                ..Default::default()
            };
            let report = callq::reconcile::run(&store, &centre, &rest, &client, &opts).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", callq::reconcile::render(&report));
            }
        }
    }
    Ok(())
}
