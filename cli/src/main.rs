//! `feastfast`: run the whole platform (`up`) or one service (`serve`),
//! load it (`load`), restart one service without downtime (`restart`),
//! break it (`chaos`) and check its invariants (`verify`).

mod chaos;
mod control;
mod load;
mod outbox;
mod restart;
mod seed;
mod serve;
mod sim;
mod supervisor;
mod up;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "feastfast",
    version,
    about = "FeastFast: a food-delivery platform built as Rust microservices"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the whole platform on this machine: every service its own
    /// process with its own SQLite file, demo data seeded.
    Up(up::UpArgs),
    /// Runs one service, configured from the environment (as a container runs it).
    Serve {
        #[arg(value_enum)]
        service: serve::ServiceName,
    },
    /// Dead letters: list and redrive the events a service parked.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Loads a running platform through its gateway at a fixed rate
    /// (open loop) and reports latency percentiles per operation.
    Load(load::LoadArgs),
    /// Restarts one service of a running `feastfast up` without downtime:
    /// the new process serves before the old one drains.
    Restart(restart::RestartArgs),
    /// Kills a random backend service of a local `feastfast up` at every
    /// interval (and starts it again) under a steady load; then run
    /// `feastfast verify`.
    Chaos(chaos::ChaosArgs),
    /// Checks the invariants that span services (payments against orders,
    /// stock, tickets, couriers, outboxes, dead letters) on the gateway's
    /// audit; exits non-zero on any violation.
    Verify(verify::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if matches!(cli.command, Command::Load(_))
        && std::env::var_os(supervisor::RUNTIME_THREADS_ENV).is_none()
    {
        // The load generator shares the machine with the platform it loads:
        // with a thread per core, its threads and the gateway's took turns
        // on the same cores (12,500 pages/s held on 2 cores; 14,500 with
        // one thread, docs/PERFORMANCE.md).
        builder.worker_threads(supervisor::half_the_cores());
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("feastfast: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => up::run(args).await,
            Command::Serve { service } => serve::run(service).await,
            Command::Outbox(command) => outbox::run(command).await,
            Command::Load(args) => load::run(args).await,
            Command::Restart(args) => restart::run(args).await,
            Command::Chaos(args) => chaos::run(args).await,
            Command::Verify(args) => verify::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("feastfast: {e:#}");
            ExitCode::FAILURE
        }
    }
}
