//! `feastfast up`: the whole platform on one machine.
//!
//! Every service is its own OS process on its own port with its own SQLite
//! file under the data directory; the gateway listens on `--port` and the
//! services on the ports after it. Once every service is ready, demo data
//! is seeded (only what is missing, so a second `up` keeps the data) and
//! the URL is printed.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;

use crate::control;
use crate::seed;
use crate::supervisor::{ServiceSpec, Supervisor};

#[derive(Args, Debug)]
pub(crate) struct UpArgs {
    /// The gateway's port; the services take the next ports (users +1,
    /// restaurants +2, …).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Where each service keeps its SQLite file, and where logs go.
    #[arg(long, default_value = ".feastfast")]
    data_dir: PathBuf,
    /// Keep each service's data in PostgreSQL instead of SQLite: the
    /// server's URL (e.g. `postgres://postgres@127.0.0.1:5432`); each
    /// service gets its own database, `feastfast_<service>`, created if
    /// missing.
    #[arg(long)]
    postgres: Option<String>,
    /// With --postgres: the prefix of the databases' names.
    #[arg(long, default_value = "feastfast", requires = "postgres")]
    database_prefix: String,
    /// Carry events on NATS JetStream instead of the embedded feed: the
    /// server's URL (e.g. `nats://127.0.0.1:4222`). Each producing service
    /// gets a stream `<PREFIX>_<SERVICE>`, each consumer a durable consumer.
    #[arg(long)]
    nats: Option<String>,
    /// With --nats: the prefix of the subjects and streams.
    #[arg(long, default_value = "feastfast", requires = "nats")]
    nats_prefix: String,
    /// Run several processes of a service, e.g. `orders=2,delivery=2,payments=2`
    /// (needs --postgres: replicas share their service's database). Replica
    /// k of a service listens k×10 ports above the first (orders-2 on 8093);
    /// callers take the replicas in turn, skipping one that fails its
    /// health check.
    #[arg(long, value_parser = parse_replicas, requires = "postgres")]
    replicas: Option<Replicas>,
    /// Do not run the simulated kitchens and couriers.
    #[arg(long)]
    no_sim: bool,
    /// How many times faster than real time the simulators run (movement
    /// and cooking); at the default a demo order arrives in about a minute.
    #[arg(long, default_value_t = 10.0, value_parser = parse_speed)]
    sim_speed: f64,
    /// How long an order of an auto-accepting restaurant takes to cook, in
    /// real-world seconds (divided by --sim-speed).
    #[arg(long, default_value_t = 60)]
    prep_secs: u64,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=1000.0).contains(&v) => Ok(v),
        _ => Err("must be a number from 0.1 to 1000".to_owned()),
    }
}

/// How many processes each service runs (1 unless `--replicas` says more).
#[derive(Debug, Clone, Default)]
pub(crate) struct Replicas(Vec<(&'static str, usize)>);

impl Replicas {
    fn of(&self, service: &str) -> usize {
        self.0
            .iter()
            .find(|(s, _)| *s == service)
            .map_or(1, |(_, n)| *n)
    }
}

fn parse_replicas(s: &str) -> Result<Replicas, String> {
    let mut replicas = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, count) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not <service>=<count>"))?;
        let service = SERVICES
            .iter()
            .find(|s| **s == name.trim())
            .ok_or_else(|| format!("{name:?} is not one of {}", SERVICES.join(", ")))?;
        let count: usize = count
            .trim()
            .parse()
            .ok()
            .filter(|n| (1..=8).contains(n))
            .ok_or_else(|| format!("{part:?}: the count must be 1 to 8"))?;
        replicas.push((*service, count));
    }
    Ok(Replicas(replicas))
}

/// The services after the gateway, in port order.
const SERVICES: &[&str] = gateway::SERVICES;

pub(crate) async fn run(args: UpArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let failpoints = check_failpoints()?;
    let data_dir = absolute(&args.data_dir)?;
    let logs = data_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;

    // Every process: (service, instance name, port). Replica k (from 0) of
    // the i-th service listens on port + 10k + i.
    let replicas = args.replicas.clone().unwrap_or_default();
    let instances: Vec<(&'static str, String, u16)> =
        std::iter::once(("gateway", "gateway".to_owned(), args.port))
            .chain(SERVICES.iter().zip(1u16..).flat_map(|(service, i)| {
                (0..replicas.of(service)).map(move |k| {
                    let offset = i + 10 * u16::try_from(k).unwrap_or(0);
                    (
                        *service,
                        gateway::replica_name(service, k),
                        args.port.saturating_add(offset),
                    )
                })
            }))
            .collect();
    let ports: Vec<(&str, u16)> = instances
        .iter()
        .map(|(_, name, port)| (name.as_str(), *port))
        .collect();
    for (name, port) in &ports {
        StdListener::bind(("127.0.0.1", *port)).with_context(|| {
            format!(
                "port {port} for {name} is in use (is another `feastfast up` running? try --port)"
            )
        })?;
    }
    // A service's URLs: its replicas', comma-separated.
    let url_of = |service: &str| {
        instances
            .iter()
            .filter(|(s, _, _)| *s == service)
            .map(|(_, _, port)| format!("http://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    };

    // One secret per run: services exchange it with users for service tokens.
    let service_secret = match std::env::var("SERVICE_SECRET") {
        Ok(secret) if !secret.is_empty() => secret,
        _ => random_hex(32)?,
    };

    write_secret(&data_dir.join(crate::outbox::SECRET_FILE), &service_secret)?;

    let control_listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let control_url = format!("http://{}", control_listener.local_addr()?);

    let specs = instances
        .iter()
        .map(|(service, name, port)| {
            let (service, port) = (*service, *port);
            let mut env = vec![
                ("HOST".to_owned(), "127.0.0.1".to_owned()),
                ("PORT".to_owned(), port.to_string()),
                ("LOG_FORMAT".to_owned(), "json".to_owned()),
                ("SERVICE_SECRET".to_owned(), service_secret.clone()),
                (
                    "DATABASE_URL".to_owned(),
                    database_url(&args, &data_dir, service),
                ),
            ];
            for upstream in SERVICES {
                env.push((format!("{}_URL", upstream.to_uppercase()), url_of(upstream)));
            }
            if let Some(nats) = &args.nats {
                env.push(("NATS_URL".to_owned(), nats.clone()));
                env.push(("NATS_PREFIX".to_owned(), args.nats_prefix.clone()));
            }
            if service == "gateway" {
                env.push(("FEASTFAST_CONTROL_URL".to_owned(), control_url.clone()));
            }
            if service == "delivery" && !args.no_sim {
                // ETAs in the simulated time the couriers ride in.
                let kmh = (25.0 * args.sim_speed).clamp(1.0, 200.0);
                env.push(("COURIER_SPEED_KMH".to_owned(), format!("{kmh:.0}")));
            }
            ServiceSpec {
                service,
                name: name.clone(),
                port,
                env,
                log_file: logs.join(format!("{name}.log")),
            }
        })
        .collect();

    let exe = std::env::current_exe().context("cannot find the feastfast executable")?;
    let supervisor = Supervisor::start(exe, specs);
    tokio::spawn(control::serve(control_listener, supervisor.clone()));

    let storage = match &args.postgres {
        Some(server) => format!("PostgreSQL at {server}, one database per service"),
        None => format!("SQLite files in {}", data_dir.display()),
    };
    let events = match &args.nats {
        Some(server) => format!(
            "NATS JetStream at {server}, streams {}_<SERVICE>",
            args.nats_prefix.to_uppercase()
        ),
        None => "each producer's feed".to_owned(),
    };
    println!(
        "Starting FeastFast (data: {storage}; events: {events}; logs in {})",
        logs.display()
    );
    if let Some(failpoints) = failpoints {
        println!("Failpoints armed for each service's first start: {failpoints}");
    }
    let mut waiting = tokio::task::JoinSet::new();
    for (name, port) in ports.iter().map(|(n, p)| ((*n).to_owned(), *p)) {
        waiting.spawn(async move {
            (
                name,
                control::wait_ready(port, Duration::from_secs(60)).await,
            )
        });
    }
    let not_ready: Vec<String> = waiting
        .join_all()
        .await
        .into_iter()
        .filter(|(_, ready)| !ready)
        .map(|(name, _)| name)
        .collect();
    if !not_ready.is_empty() {
        supervisor.shutdown().await;
        anyhow::bail!(
            "not ready within 60 s: {} (see {})",
            not_ready.join(", "),
            logs.display()
        );
    }
    let ready_in = started.elapsed();

    let gateway_url = url_of("gateway");
    if let Err(e) = seed::ensure_demo_data(&gateway_url).await {
        supervisor.shutdown().await;
        return Err(e.context("cannot seed the demo data"));
    }

    for (name, port) in supervisor.names() {
        println!("  {name:<12} http://127.0.0.1:{port}");
    }
    seed::print_logins();
    if args.no_sim {
        println!("Simulators: off (--no-sim)");
    } else {
        let mut sim = crate::sim::SimConfig::new(args.sim_speed);
        sim.prep = Duration::from_secs(args.prep_secs);
        crate::sim::start(gateway_url.clone(), sim);
        println!(
            "Simulators: on at {}x real time (kitchens cook in {} s, couriers ride); --no-sim turns them off",
            args.sim_speed,
            (args.prep_secs as f64 / args.sim_speed).round()
        );
    }
    println!("All services ready in {} ms.", ready_in.as_millis());
    println!("FeastFast is up: {gateway_url}");
    println!("Press Ctrl-C to stop.");

    wait_for_stop().await;
    println!("Stopping FeastFast…");
    supervisor.shutdown().await;
    println!("Stopped.");
    Ok(())
}

/// The failpoints armed for this run (`FEASTFAST_FAILPOINTS`), checked
/// here so a bad name stops `up` at once: a child refusing it would be
/// restarted without it, and the typo would go unnoticed.
fn check_failpoints() -> anyhow::Result<Option<String>> {
    let Some(value) = std::env::var(platform::failpoint::ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(None);
    };
    platform::failpoint::parse(&value, "")?;
    for entry in value.split(',') {
        if let Some((service, _)) = entry.split_once(':') {
            let service = service.trim();
            if service != "gateway" && !SERVICES.contains(&service) {
                anyhow::bail!(
                    "{}: {service:?} is not a service (gateway, {})",
                    platform::failpoint::ENV,
                    SERVICES.join(", ")
                );
            }
        }
    }
    Ok(Some(value))
}

/// Where service `name` keeps its data: its own SQLite file under the
/// data directory, or its own database on `--postgres`.
fn database_url(args: &UpArgs, data_dir: &std::path::Path, name: &str) -> String {
    match &args.postgres {
        Some(server) => format!(
            "{}/{}_{name}",
            server.trim_end_matches('/'),
            args.database_prefix
        ),
        None => format!("sqlite://{}", data_dir.join(format!("{name}.db")).display()),
    }
}

/// Leaves the run's service secret where `feastfast outbox` finds it,
/// readable by this user only.
fn write_secret(path: &std::path::Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    Ok(())
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("cannot read /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn absolute(path: &PathBuf) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.clone())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

async fn wait_for_stop() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
