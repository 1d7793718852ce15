//! The `baton` binary: the operators' command line of the API contract.
//! `serve` runs the HTTP API, the event store, the outbox relay, the boards'
//! runner and the SLA clock until SIGTERM or Ctrl-C; `token` prints a signed
//! token for the local key; `demo` loads a synthetic system.
//! `anyhow` lives only here, at the binary's edge.
#![allow(clippy::print_stdout)] // a command-line tool prints its answers

use std::path::PathBuf;

use anyhow::Context;
use api::app::Application;
use clap::{Args, Parser, Subcommand};
use infra::auth::{Principal, Role, ScopeClaims};
use infra::config::{Config, LogFormat};
use infra::pipeline::{open_database, Pipeline};
use std::time::Duration;

/// mimalloc instead of glibc's malloc: under many concurrent requests on a
/// few cores glibc's malloc and free were the largest single cost in a
/// profile of `bench-http` (about a sixth of the process's CPU). In one
/// before/after run of `bench-http` every figure rose 11-14%, bare
/// postgres-es's too; this VM's run-to-run noise is near 10%, so read that
/// as "no worse, likely better".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Baton: a live transfer-of-care tracker for an integrated care system.
#[derive(Debug, Parser)]
#[command(name = "baton", version, about)]
struct Cli {
    /// A TOML configuration file (also `BATON_CONFIG`); `BATON_*` variables
    /// and flags override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Baton: the API and pages, the outbox relay, the boards.
    Serve(ServeArgs),
    /// Print a token signed with the local key (trusted when no external
    /// identity provider is configured).
    Token(TokenArgs),
    /// Load a realistic synthetic system: hospitals, wards, teams, patients.
    Demo(DemoArgs),
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// The transactional outbox.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// The boards (read models).
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Check an NHS number by Modulus 11.
    CheckNhsNumber {
        /// The number, as `9912003888` or `991 200 3888`.
        number: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Ward,
    Team,
    Hub,
    System,
    Admin,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// The role.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// Hospital code (role `ward`, one hospital).
    #[arg(long, conflicts_with = "trust")]
    hospital: Option<String>,
    /// Trust code (role `ward`, every hospital of the trust).
    #[arg(long)]
    trust: Option<String>,
    /// Team code (role `team`).
    #[arg(long)]
    team: Option<String>,
    /// Care transfer hub code (role `hub`).
    #[arg(long)]
    hub: Option<String>,
    /// User id.
    #[arg(long, default_value = "dev-user")]
    sub: String,
    /// Display name.
    #[arg(long, default_value = "Developer")]
    name: String,
    /// Hours the token stays valid.
    #[arg(long, default_value_t = 12)]
    hours: u64,
    /// Data directory holding the local key (`BATON_DATA_DIR`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Random seed: the same seed loads the same system.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
    /// Data directory of the embedded default (`BATON_DATA_DIR`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL (`BATON_DATABASE_URL`).
    #[arg(long)]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Depth, oldest row age, last published position and relay owner.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Replay the whole event stream into fresh boards; every running Baton
    /// process swaps them in at its next checkpoint tick, and new ones start
    /// from them.
    Rebuild,
}

/// Flags of `serve`; each overrides its `BATON_*` variable.
#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (`BATON_LISTEN`).
    #[arg(long)]
    listen: Option<String>,
    /// Data directory of the embedded default (`BATON_DATA_DIR`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// PostgreSQL URL (`BATON_DATABASE_URL`).
    #[arg(long)]
    database_url: Option<String>,
    /// NATS servers, comma-separated (`BATON_NATS_URL`).
    #[arg(long)]
    nats_url: Option<String>,
    /// JetStream stream (`BATON_STREAM`).
    #[arg(long)]
    stream: Option<String>,
    /// Subject prefix (`BATON_SUBJECT_PREFIX`).
    #[arg(long)]
    subject_prefix: Option<String>,
    /// Stream replicas (`BATON_STREAM_REPLICAS`).
    #[arg(long)]
    stream_replicas: Option<usize>,
}

impl ServeArgs {
    fn apply(self, config: &mut Config) {
        let ServeArgs {
            listen,
            data_dir,
            database_url,
            nats_url,
            stream,
            subject_prefix,
            stream_replicas,
        } = self;
        if let Some(v) = listen {
            config.listen = v;
        }
        if let Some(v) = data_dir {
            config.data_dir = v;
        }
        if database_url.is_some() {
            config.database_url = database_url.map(Into::into);
        }
        if nats_url.is_some() {
            config.nats_url = nats_url.map(Into::into);
        }
        if let Some(v) = stream {
            config.stream = v;
        }
        if let Some(v) = subject_prefix {
            config.subject_prefix = v;
        }
        if let Some(v) = stream_replicas {
            config.stream_replicas = v;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    infra::telemetry::init(config.log_format);
    match cli.command {
        Command::Serve(args) => {
            args.apply(&mut config);
            serve(config).await
        }
        Command::Token(args) => {
            if let Some(dir) = args.data_dir {
                config.data_dir = dir;
            }
            let role = match args.role {
                RoleArg::Ward => Role::Ward,
                RoleArg::Team => Role::Team,
                RoleArg::Hub => Role::Hub,
                RoleArg::System => Role::System,
                RoleArg::Admin => Role::Admin,
            };
            let scope = ScopeClaims {
                hospital: args.hospital,
                trust: args.trust,
                team: args.team,
                hub: args.hub,
            };
            let principal =
                Principal::scoped(args.sub, args.name, role, scope).map_err(|problem| {
                    anyhow::anyhow!(
                    "{problem} (--hospital or --trust for ward, --team for team, --hub for hub)"
                )
                })?;
            let token = infra::auth::sign_local(
                &config.data_dir,
                &principal,
                Duration::from_secs(args.hours * 3600),
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Demo(args) => {
            if let Some(dir) = args.data_dir {
                config.data_dir = dir;
            }
            if args.database_url.is_some() {
                config.database_url = args.database_url.map(Into::into);
            }
            let summary = api::demo::load(&config, args.seed).await?;
            println!("{summary}");
            Ok(())
        }
        Command::Migrate => {
            let db = open_database(&config).await?;
            tracing::info!(database = %db.describe(), "schema is up to date");
            Ok(())
        }
        Command::Outbox {
            command: OutboxCommand::Status { json },
        } => {
            let db = open_database(&config).await?;
            let status = infra::outbox::status(&db).await?;
            if json || config.log_format == LogFormat::Json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("database:                {}", db.describe());
                println!("outbox depth:            {}", status.depth);
                match status.oldest_age_seconds {
                    Some(age) => println!("oldest row age:          {age:.1}s"),
                    None => println!("oldest row age:          (empty)"),
                }
                println!(
                    "last published position: {}",
                    status.last_published_position
                );
                println!("published in all:        {}", status.published_total);
                println!(
                    "relay owner:             {}",
                    status.relay_owner.as_deref().unwrap_or("(none)")
                );
            }
            Ok(())
        }
        Command::Projections {
            command: ProjectionsCommand::Rebuild,
        } => rebuild_projections(config).await,
        Command::CheckNhsNumber { number } => match domain::values::NhsNumber::parse(&number) {
            Ok(valid) => {
                println!("{} is a valid NHS number", valid.spaced());
                Ok(())
            }
            Err(reason) => anyhow::bail!("not a valid NHS number: {reason}"),
        },
    }
}

/// How often `serve` tries again to reach an event store it could not.
const START_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves Baton. If the event store cannot be reached at start (PostgreSQL
/// down, or recovering after a crash), Baton still comes up: it answers
/// `/readyz` with 503 and everything else with "starting", and keeps trying
/// until the store answers, then serves on the same socket.
async fn serve(config: Config) -> anyhow::Result<()> {
    let socket = std::net::TcpListener::bind(&config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    socket.set_nonblocking(true)?;
    let listener = || -> anyhow::Result<tokio::net::TcpListener> {
        Ok(tokio::net::TcpListener::from_std(socket.try_clone()?)?)
    };
    let mut shutdown = Box::pin(shutdown_signal());
    let mut starting: Option<(
        tokio::sync::watch::Sender<bool>,
        tokio::task::JoinHandle<()>,
    )> = None;
    let app = loop {
        match Application::build_on(config.clone(), listener()?).await {
            Ok(app) => break app,
            Err(error) if error.is_store_unreachable() => {
                tracing::warn!(%error, "cannot reach the event store; answering not ready and trying again");
                if starting.is_none() {
                    let (stop, stopped) = tokio::sync::watch::channel(false);
                    let waiting = listener()?;
                    let config = config.clone();
                    let task = tokio::spawn(async move {
                        let served = api::app::serve_starting(&config, waiting, stopped).await;
                        if let Err(error) = served {
                            tracing::warn!(%error, "the starting page failed");
                        }
                    });
                    starting = Some((stop, task));
                }
                tokio::select! {
                    () = tokio::time::sleep(START_RETRY) => {}
                    () = &mut shutdown => return Ok(()),
                }
            }
            Err(error) => return Err(anyhow::Error::new(error).context("starting Baton")),
        }
    };
    // The application holds its own clone of the socket; this one would
    // keep the port accepting (into nobody's queue) through shutdown.
    drop(socket);
    if let Some((stop, task)) = starting {
        let _ = stop.send(true);
        if tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .is_err()
        {
            tracing::warn!("the starting page did not finish within 5 s");
        }
        tracing::info!("the event store answers: serving");
    }
    app.run_until_stopped(shutdown).await?;
    Ok(())
}

async fn rebuild_projections(config: Config) -> anyhow::Result<()> {
    let pipeline = Pipeline::start(&config).await?;
    let state = infra::runner::rebuild(&pipeline.feed).await?;
    let snapshot = infra::snapshots::Snapshot {
        position: state.position,
        state: serde_json::to_string(&state)?,
        generation: 0,
    };
    let write = infra::snapshots::Write::Rebuild;
    infra::snapshots::store(&pipeline.db, &pipeline.feed.identity(), &snapshot, write).await?;
    println!(
        "rebuilt the boards from {} events; running processes swap them in within 30 s",
        state.position
    );
    pipeline.stop().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
