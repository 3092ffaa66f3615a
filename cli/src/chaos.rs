//! `feastfast chaos`: a steady load through the gateway while a random
//! backend service is killed (SIGKILL, through the ops API of a local
//! `feastfast up`) at every interval and started again shortly after.
//!
//! It prints what it did, as it does it, and the load's table at the end.
//! Requests fail while a service is down — that is the point; what must
//! hold afterwards is checked by `feastfast verify`, which reads every
//! service's state and checks the invariants across them.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};

use crate::load::api::{FeastFast, Setup};
use crate::load::engine::{self, Plan};
use crate::load::mix::{Mix, parse_duration, parse_rate};
use crate::restart::control;

/// The services chaos may kill: every backend one (the gateway serves the
/// ops API it works through).
const VICTIMS: &[&str] = &["users", "restaurants", "orders", "payments", "delivery"];

/// `feastfast chaos`.
#[derive(Debug, clap::Args)]
pub(crate) struct ChaosArgs {
    /// The gateway of a local `feastfast up`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// How long to run.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// A kill every this often.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    interval: Duration,
    /// How long a killed service stays down before it is started again.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    down: Duration,
    /// The steady load's arrivals per second.
    #[arg(long, default_value = "20", value_parser = parse_rate)]
    rate: f64,
    /// The steady load's operations and weights (as `feastfast load`).
    #[arg(long, default_value = "browse=50,track=25,order=25", value_parser = Mix::parse)]
    mix: Mix,
    /// Services to choose from (comma-separated); default: every backend one.
    #[arg(long, value_delimiter = ',')]
    services: Vec<String>,
    /// Seeds the choice of victims, to replay a run.
    #[arg(long)]
    seed: Option<u64>,
}

pub(crate) async fn run(args: ChaosArgs) -> anyhow::Result<()> {
    let victims: Vec<String> = if args.services.is_empty() {
        VICTIMS.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.services.clone()
    };
    if let Some(bad) = victims.iter().find(|v| !VICTIMS.contains(&v.as_str())) {
        bail!(
            "chaos cannot kill {bad:?}: choose among {}",
            VICTIMS.join(", ")
        );
    }
    if args.interval <= args.down {
        bail!(
            "--interval must be longer than --down, so each service is back before the next kill"
        );
    }
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().r#gen());
    let gateway = args.gateway.trim_end_matches('/').to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("an HTTP client")?;
    // Process control exists only in a local run.
    let index: serde_json::Value = client
        .get(format!("{gateway}/api/v1"))
        .send()
        .await
        .with_context(|| format!("cannot reach the gateway at {gateway}"))?
        .json()
        .await
        .context("the gateway's index")?;
    if index["local_run"] != true {
        bail!("{gateway} is not a local `feastfast up` run: chaos needs its process control");
    }

    let target = Arc::new(
        FeastFast::connect(
            &Setup {
                gateway: gateway.clone(),
                customers: 4,
                timeout: Duration::from_secs(10),
            },
            &args.mix,
        )
        .await
        .context("setting up the steady load")?,
    );
    println!(
        "chaos: {} for {:.0} s, a kill every {:.1} s among {} (seed {seed}); load {} ops/s, mix {}",
        gateway,
        args.duration.as_secs_f64(),
        args.interval.as_secs_f64(),
        victims.join(", "),
        args.rate,
        args.mix
    );
    let plan = Plan {
        rate: args.rate,
        duration: args.duration,
        mix: args.mix.clone(),
        max_in_flight: 4096,
        drain: Duration::from_secs(12),
    };
    let load = tokio::spawn({
        let target = target.clone();
        async move { engine::run(target, &plan, |_| {}).await }
    });

    let started = Instant::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut kills = 0u32;
    let mut trouble = Vec::new();
    loop {
        tokio::time::sleep_until((started + args.interval * (kills + 1)).into()).await;
        if started.elapsed() + args.down >= args.duration {
            break;
        }
        let victim = &victims[rng.gen_range(0..victims.len())];
        let at = started.elapsed().as_secs_f64();
        match control(&client, &gateway, victim, "stop?mode=kill").await {
            Ok(_) => say(&format!("chaos: {at:>5.1} s  killed {victim} (SIGKILL)")),
            Err(e) => {
                trouble.push(format!("could not kill {victim}: {e:#}"));
                continue;
            }
        }
        kills += 1;
        tokio::time::sleep(args.down).await;
        let restarting = Instant::now();
        match control(&client, &gateway, victim, "start").await {
            Ok(_) => say(&format!(
                "chaos: {:>5.1} s  started {victim} again (ready after {} ms)",
                started.elapsed().as_secs_f64(),
                restarting.elapsed().as_millis()
            )),
            Err(e) => trouble.push(format!("could not start {victim} again: {e:#}")),
        }
    }
    let report = load.await.context("the steady load")?;
    println!(
        "\nthe steady load through {kills} kills:\n{}",
        report.table()
    );
    println!(
        "chaos: done. Now check the invariants across services:\n  feastfast verify --gateway {gateway} --wait 60s"
    );
    if trouble.is_empty() {
        Ok(())
    } else {
        bail!(
            "chaos could not do everything it meant to:\n  {}",
            trouble.join("\n  ")
        )
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
