//! `feastfast restart <service>`: a zero-downtime restart of one service of
//! a running `feastfast up`, through the gateway's ops API (which forwards
//! to the supervisor): the new process starts beside the old one on the
//! same port, and the old one is drained only once the new one is ready.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use contracts::ops::ProcessStatus;

#[derive(Args, Debug)]
pub(crate) struct RestartArgs {
    /// The service (or replica, e.g. `orders-2`) to restart.
    service: String,
    /// The gateway of the running platform.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
}

pub(crate) async fn run(args: RestartArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .context("an HTTP client")?;
    let process = control(&client, &args.gateway, &args.service, "restart")
        .await
        .with_context(|| format!("{} was not restarted", args.service))?;
    println!(
        "{}: restarted without downtime in {} ms (now pid {})",
        process.name,
        started.elapsed().as_millis(),
        process
            .pid
            .map_or_else(|| "?".to_owned(), |p| p.to_string())
    );
    Ok(())
}

/// `POST /api/v1/ops/services/{service}/{action}` on a local run's gateway
/// (`stop?mode=kill`, `start`, `restart`): the process's status, or the
/// problem's detail as the error.
pub(crate) async fn control(
    client: &reqwest::Client,
    gateway: &str,
    service: &str,
    action: &str,
) -> anyhow::Result<ProcessStatus> {
    let response = client
        .post(format!(
            "{}/api/v1/ops/services/{service}/{action}",
            gateway.trim_end_matches('/')
        ))
        .send()
        .await
        .with_context(|| format!("cannot reach the gateway at {gateway}"))?;
    let status = response.status();
    if !status.is_success() {
        let problem: serde_json::Value = response.json().await.unwrap_or_default();
        bail!(
            "the ops API answered {status}: {}",
            problem["detail"].as_str().unwrap_or("no reason given")
        );
    }
    response.json().await.context("a process status")
}
