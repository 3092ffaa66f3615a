//! `feastfast load`: an open-loop load generator for the public API.
//!
//! - `mix` — the operations and their weights (pure).
//! - `engine` — the open-loop scheduler over any [`engine::Target`]; the
//!   invariant it keeps (latency from the scheduled send time) is there.
//! - `stats` — histograms, counts, the table and the JSON report (pure).
//! - `find_max` — the rate search of `--find-max` (pure).
//! - `api` — FeastFast through its gateway as a target, and its setup.
//!
//! This file wires them to the command line: setup, one run or a rate
//! search, a live progress line on stderr, the table on stdout and the
//! JSON report.

pub(crate) mod api;
pub(crate) mod engine;
mod find_max;
mod http1;
pub(crate) mod mix;
mod stats;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use engine::{Live, Plan};
use mix::{Mix, parse_duration, parse_rate};
use stats::StepReport;

/// `feastfast load`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoadArgs {
    /// The gateway of the platform to load.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// Arrivals per second (with --find-max: the first rate tried).
    #[arg(long, default_value = "100", value_parser = parse_rate)]
    rate: f64,
    /// How long to send (each step, with --find-max): 15s, 500ms, 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Operations and their weights: browse (a restaurant page with its
    /// menu), search (the restaurant list by cuisine), track (one of the
    /// customer's orders), order (a new order).
    #[arg(long, default_value = "browse=65,search=5,track=25,order=5", value_parser = Mix::parse)]
    mix: Mix,
    /// How many customers to play (each logs in once, before the clock).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1000))]
    customers: u16,
    /// Requests in flight at most; a request due beyond it is dropped and
    /// counted as an error.
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    /// A request not answered within this is an error.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Writes the full report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Ramps the rate (doubling, then bisecting; each step --duration
    /// long) and reports the highest rate held with zero errors and p99
    /// within --p99-target.
    #[arg(long)]
    find_max: bool,
    /// The p99 a --find-max step must stay within.
    #[arg(long, default_value = "25ms", value_parser = parse_duration)]
    p99_target: Duration,
    /// --find-max never tries above this rate.
    #[arg(long, default_value = "200000", value_parser = parse_rate)]
    max_rate: f64,
    /// A pause between --find-max steps, so work queued by one step (sagas,
    /// events) does not count against the next.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    cooldown: Duration,
}

/// The JSON report: what was asked, and each step's results.
#[derive(Debug, Serialize)]
struct Report {
    gateway: String,
    mix: String,
    customers: u16,
    max_in_flight: usize,
    started_at: String,
    steps: Vec<StepReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    find_max: Option<FindMax>,
}

#[derive(Debug, Serialize)]
struct FindMax {
    p99_target_ms: f64,
    /// The highest rate that held (zero errors, p99 within target).
    max_rate: Option<f64>,
}

pub(crate) async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let setup = api::Setup {
        gateway: args.gateway.clone(),
        customers: usize::from(args.customers),
        timeout: args.timeout,
    };
    eprintln!(
        "load: setting up against {} (mix {})…",
        args.gateway, args.mix
    );
    let target = Arc::new(
        api::FeastFast::connect(&setup, &args.mix)
            .await
            .context("setting up the load")?,
    );
    eprintln!("load: {}", target.describe());

    let plan = |rate: f64| Plan {
        rate,
        duration: args.duration,
        mix: args.mix.clone(),
        max_in_flight: args.max_in_flight,
        drain: args.timeout + Duration::from_secs(2),
    };
    let mut report = Report {
        gateway: args.gateway.clone(),
        mix: args.mix.to_string(),
        customers: args.customers,
        max_in_flight: args.max_in_flight,
        started_at: platform::time::format(time::OffsetDateTime::now_utc()),
        steps: Vec::new(),
        find_max: None,
    };

    let outcome = if args.find_max {
        let mut search = find_max::RateSearch::new(args.rate, args.max_rate);
        while let Some(rate) = search.next() {
            if !report.steps.is_empty() {
                tokio::time::sleep(args.cooldown).await;
            }
            // Tokens live an hour; a long search logs in again halfway.
            target.refresh_logins(Duration::from_secs(20 * 60)).await?;
            let label = format!("step {} at {rate}/s", report.steps.len() + 1);
            let mut step = engine::run(target.clone(), &plan(rate), progress(label)).await;
            let held = step.holds(args.p99_target);
            step.passed = Some(held);
            finish_progress();
            println!(
                "step {}: {rate} ops/s for {:.0} s: {} (p99 {:.2} ms, errors {})",
                report.steps.len() + 1,
                args.duration.as_secs_f64(),
                if held { "held" } else { "did not hold" },
                step.all().latency_ms.p99,
                step.errors,
            );
            search.record(rate, held);
            report.steps.push(step);
        }
        let best = search.best();
        if let Some(best) = best
            && let Some(step) = report.steps.iter().find(|s| s.rate == best)
        {
            println!("\nthe highest rate held, {best} ops/s:\n{}", step.table());
        }
        match best {
            Some(best) => println!(
                "max sustained: {best} ops/s (p99 ≤ {} ms, zero errors, mix {})",
                args.p99_target.as_millis(),
                args.mix
            ),
            None => println!(
                "no rate held (p99 ≤ {} ms, zero errors)",
                args.p99_target.as_millis()
            ),
        }
        report.find_max = Some(FindMax {
            p99_target_ms: args.p99_target.as_secs_f64() * 1000.0,
            max_rate: best,
        });
        if best.is_none() {
            Err(anyhow::anyhow!("no rate held"))
        } else {
            Ok(())
        }
    } else {
        let step = engine::run(
            target.clone(),
            &plan(args.rate),
            progress(format!("{}/s", args.rate)),
        )
        .await;
        finish_progress();
        println!("{}", step.table());
        let errors = step.errors;
        report.steps.push(step);
        if errors > 0 {
            Err(anyhow::anyhow!("{errors} requests failed"))
        } else {
            Ok(())
        }
    };

    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("load: report written to {}", path.display());
    }
    outcome
}

/// The progress line: redrawn in place on a terminal, a plain line every
/// five seconds otherwise (CI logs).
fn progress(label: String) -> impl FnMut(Live) + Send {
    let tty = std::io::stderr().is_terminal();
    let mut ticks = 0u64;
    move |live: Live| {
        ticks += 1;
        if !tty && !ticks.is_multiple_of(5) {
            return;
        }
        let line = format!(
            "[{label}] {:>5.1}/{:.0} s  {:>8.0} ops/s  p99 {:>8.2} ms (run {:.2} ms)  errors {}  in flight {}",
            live.elapsed.as_secs_f64(),
            live.duration.as_secs_f64(),
            live.rate,
            live.window.p99.as_secs_f64() * 1000.0,
            live.p99_so_far.as_secs_f64() * 1000.0,
            live.errors,
            live.in_flight,
        );
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

fn finish_progress() {
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
}
