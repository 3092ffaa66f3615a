//! `feastfast outbox list-dead <service>` and `feastfast outbox redrive
//! <service>`: the dead-letter operations of a consuming service, called
//! with a service token (the secret comes from `SERVICE_SECRET`, or from
//! the data directory of a local `feastfast up`).

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

#[derive(Subcommand, Debug)]
pub(crate) enum OutboxCommand {
    /// Lists the events a service's consumers parked as dead letters.
    ListDead(Target),
    /// Applies a service's parked events again (each at most once).
    Redrive(Target),
    /// Lists the JetStream streams of a deployment (production mode), with
    /// their message counts; `--delete` removes them.
    Streams(StreamsArgs),
}

#[derive(Args, Debug)]
pub(crate) struct StreamsArgs {
    /// The NATS server.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// The deployment's prefix (`feastfast up --nats-prefix`); streams are
    /// named `<PREFIX>_<SERVICE>`.
    #[arg(long, default_value = "feastfast")]
    prefix: String,
    /// Delete the streams (and every event in them).
    #[arg(long)]
    delete: bool,
}

async fn streams(args: StreamsArgs) -> anyhow::Result<()> {
    let nats =
        platform::events::nats::Nats::connect(&args.nats, &args.prefix, "feastfast-cli").await?;
    let found = nats.streams().await?;
    for (name, messages) in &found {
        if args.delete {
            nats.delete_stream_named(name).await?;
            println!("{name:<40} deleted ({messages} messages)");
        } else {
            println!("{name:<40} {messages} messages");
        }
    }
    println!(
        "{} streams with prefix {}_",
        found.len(),
        args.prefix.to_ascii_uppercase()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub(crate) struct Target {
    /// The consuming service: orders or delivery.
    service: String,
    /// The service's base URL (default: its local port).
    #[arg(long)]
    url: Option<String>,
    /// The users service, which issues the service token.
    #[arg(long)]
    users_url: Option<String>,
    /// The data directory of the local `feastfast up` (its service secret).
    #[arg(long, default_value = ".feastfast")]
    data_dir: PathBuf,
}

/// Where `feastfast up` keeps the run's service secret.
pub(crate) const SECRET_FILE: &str = "service-secret";

pub(crate) async fn run(command: OutboxCommand) -> anyhow::Result<()> {
    let (target, redrive) = match command {
        OutboxCommand::ListDead(t) => (t, false),
        OutboxCommand::Redrive(t) => (t, true),
        OutboxCommand::Streams(args) => return streams(args).await,
    };
    let base = target
        .url
        .clone()
        .unwrap_or_else(|| platform::config::default_url(&target.service));
    let users = target
        .users_url
        .clone()
        .unwrap_or_else(|| platform::config::default_url("users"));
    let secret = match std::env::var("SERVICE_SECRET") {
        Ok(s) if !s.is_empty() => s,
        _ => std::fs::read_to_string(target.data_dir.join(SECRET_FILE))
            .map(|s| s.trim().to_owned())
            .with_context(|| {
                format!(
                    "no SERVICE_SECRET set and no {} (is this the data directory of `feastfast up`?)",
                    target.data_dir.join(SECRET_FILE).display()
                )
            })?,
    };
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{users}/internal/token"))
        .json(&json!({"service": "feastfast-cli", "secret": secret}))
        .send()
        .await
        .with_context(|| format!("cannot reach users at {users}"))?
        .error_for_status()
        .context("the users service refused a service token")?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("no token in the answer")?;
    let request = if redrive {
        client.post(format!("{base}/internal/dead-letters/redrive"))
    } else {
        client.get(format!("{base}/internal/dead-letters"))
    };
    let answer = request
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("cannot reach {} at {base}", target.service))?;
    if !answer.status().is_success() {
        bail!(
            "{} answered {}: {}",
            target.service,
            answer.status(),
            answer.text().await.unwrap_or_default()
        );
    }
    let body: Value = answer.json().await?;
    if redrive {
        let count = |k: &str| body[k].as_array().map_or(0, Vec::len);
        println!(
            "{}: {} redriven and applied, {} still failing",
            target.service,
            count("applied"),
            count("still_failing")
        );
    } else {
        let letters = body.as_array().cloned().unwrap_or_default();
        for l in &letters {
            println!(
                "{}  {:<12} {:<34} attempts={} dead_at={}{}  {}",
                l["event_id"].as_str().unwrap_or_default(),
                l["source"].as_str().unwrap_or_default(),
                l["type"].as_str().unwrap_or_default(),
                l["attempts"],
                l["dead_at"].as_str().unwrap_or_default(),
                l["redriven_at"]
                    .as_str()
                    .map(|at| format!(" redriven_at={at}"))
                    .unwrap_or_default(),
                l["error"].as_str().unwrap_or_default(),
            );
        }
        let parked = letters
            .iter()
            .filter(|l| l["redriven_at"].is_null())
            .count();
        println!(
            "{}: {parked} dead letters parked ({} in all)",
            target.service,
            letters.len()
        );
    }
    Ok(())
}
