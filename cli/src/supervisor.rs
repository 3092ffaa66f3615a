//! The process supervisor of `feastfast up`.
//!
//! Each service runs as a child process (`feastfast serve <name>`) owned by
//! one task, which restarts it with back-off when it crashes and obeys stop
//! and start commands (the fault-isolation demo). Children run in their own
//! process group, so a Ctrl-C in the terminal reaches only the supervisor,
//! which then stops them in order; their stdin is a pipe from the
//! supervisor, so if the supervisor dies however it dies, they notice the
//! pipe closing and exit too.
//!
//! Failpoints (`FEASTFAST_FAILPOINTS`, `platform::failpoint`) reach a
//! service's first start only: the process restarted after a crash runs
//! clean, so a crash test sees the recovery instead of a crash loop.
//!
//! Invariant: a service the user stopped stays stopped; a service that
//! crashed comes back.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use contracts::ops::{ProcessState, ProcessStatus};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// How to stop a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopMode {
    /// SIGKILL: the crash demo.
    Kill,
    /// SIGTERM, then SIGKILL if it has not exited within the grace period.
    Graceful,
}

/// Everything needed to start one service.
#[derive(Debug, Clone)]
pub(crate) struct ServiceSpec {
    /// What it runs (`feastfast serve <service>`).
    pub(crate) service: &'static str,
    /// The instance's name: the service's, or `orders-2` for a replica.
    pub(crate) name: String,
    pub(crate) port: u16,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) log_file: PathBuf,
}

enum Cmd {
    Stop(StopMode, oneshot::Sender<ProcessStatus>),
    Start(oneshot::Sender<ProcessStatus>),
    Restart(oneshot::Sender<Result<ProcessStatus, String>>),
    Status(oneshot::Sender<ProcessStatus>),
}

/// A handle on every supervised service.
#[derive(Clone)]
pub(crate) struct Supervisor {
    /// In start order (the gateway first).
    services: Vec<(String, u16, mpsc::Sender<Cmd>)>,
}

const GRACE: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A process that ran this long before crashing restarts without delay growth.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

impl Supervisor {
    /// Starts every service and its supervising task.
    pub(crate) fn start(exe: PathBuf, specs: Vec<ServiceSpec>) -> Supervisor {
        let services = specs
            .into_iter()
            .map(|spec| {
                let (tx, rx) = mpsc::channel(8);
                let name = spec.name.clone();
                let port = spec.port;
                tokio::spawn(supervise(exe.clone(), spec, rx));
                (name, port, tx)
            })
            .collect();
        Supervisor { services }
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = (&str, u16)> + '_ {
        self.services
            .iter()
            .map(|(name, port, _)| (name.as_str(), *port))
    }

    pub(crate) fn port(&self, name: &str) -> Option<u16> {
        self.names().find(|(n, _)| *n == name).map(|(_, port)| port)
    }

    async fn ask(
        &self,
        name: &str,
        make: impl FnOnce(oneshot::Sender<ProcessStatus>) -> Cmd,
    ) -> Option<ProcessStatus> {
        let (_, _, tx) = self.services.iter().find(|(n, _, _)| *n == name)?;
        let (reply, answer) = oneshot::channel();
        tx.send(make(reply)).await.ok()?;
        answer.await.ok()
    }

    pub(crate) async fn stop(&self, name: &str, mode: StopMode) -> Option<ProcessStatus> {
        self.ask(name, |reply| Cmd::Stop(mode, reply)).await
    }

    pub(crate) async fn start_service(&self, name: &str) -> Option<ProcessStatus> {
        self.ask(name, Cmd::Start).await
    }

    /// Replaces a running service's process without downtime: the new one
    /// binds the same port (`SO_REUSEPORT`), and only once it answers
    /// ready is the old one drained and stopped. `None` for an unknown
    /// name; `Err` says why the old process was kept.
    pub(crate) async fn restart(&self, name: &str) -> Option<Result<ProcessStatus, String>> {
        let (_, _, tx) = self.services.iter().find(|(n, _, _)| *n == name)?;
        let (reply, answer) = oneshot::channel();
        tx.send(Cmd::Restart(reply)).await.ok()?;
        answer.await.ok()
    }

    pub(crate) async fn status(&self, name: &str) -> Option<ProcessStatus> {
        self.ask(name, Cmd::Status).await
    }

    /// Stops every service gracefully, the gateway first so no new
    /// requests arrive while the rest drain.
    pub(crate) async fn shutdown(&self) {
        self.stop("gateway", StopMode::Graceful).await;
        let mut stopping = tokio::task::JoinSet::new();
        for (name, _) in self.names().filter(|(n, _)| *n != "gateway") {
            let (supervisor, name) = (self.clone(), name.to_owned());
            stopping.spawn(async move { supervisor.stop(&name, StopMode::Graceful).await });
        }
        stopping.join_all().await;
    }
}

struct Supervised {
    exe: PathBuf,
    spec: ServiceSpec,
    child: Option<Child>,
    /// The write end of the child's stdin. Held here because tokio's
    /// `Child::wait` closes a stdin it still owns, which the child would
    /// take for the supervisor's death.
    lifeline: Option<tokio::process::ChildStdin>,
    /// Whether the user wants it running.
    wanted: bool,
    started_at: Instant,
    backoff: Duration,
    restart_at: Option<tokio::time::Instant>,
    /// How many times it was started: failpoints arm the first only.
    starts: u32,
}

impl Supervised {
    fn status(&self) -> ProcessStatus {
        ProcessStatus {
            name: self.spec.name.clone(),
            status: match (&self.child, self.wanted) {
                (Some(_), _) => ProcessState::Running,
                (None, true) => ProcessState::Restarting,
                (None, false) => ProcessState::Stopped,
            },
            pid: self.child.as_ref().and_then(Child::id),
        }
    }

    fn spawn(&mut self) {
        let first = self.starts == 0;
        self.starts += 1;
        match spawn_child(&self.exe, &self.spec, first) {
            Ok(mut child) => {
                self.lifeline = child.stdin.take();
                self.started_at = Instant::now();
                self.restart_at = None;
                self.child = Some(child);
            }
            Err(e) => {
                println!("{}: cannot start: {e:#}", self.spec.name);
                self.schedule_restart();
            }
        }
    }

    fn schedule_restart(&mut self) {
        if self.started_at.elapsed() > HEALTHY_RUN {
            self.backoff = FIRST_BACKOFF;
        }
        println!(
            "{}: restarting in {:.1} s",
            self.spec.name,
            self.backoff.as_secs_f64()
        );
        self.restart_at = Some(tokio::time::Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    async fn stop(&mut self, mode: StopMode) {
        self.wanted = false;
        self.restart_at = None;
        if let Some(child) = self.child.take() {
            stop_child(&self.spec.name, child, mode).await;
        }
    }

    /// The zero-downtime restart: start the new process beside the old,
    /// wait until the new one answers ready, then stop the old gracefully
    /// (readiness off, in-flight requests finished). If the new one does
    /// not come up, it is killed and the old one keeps serving.
    async fn restart(&mut self) -> Result<ProcessStatus, String> {
        if self.child.is_none() {
            return Err(format!(
                "{} is not running; start it instead",
                self.spec.name
            ));
        }
        let mut fresh = spawn_child(&self.exe, &self.spec, false).map_err(|e| format!("{e:#}"))?;
        // Held apart from the child: `wait` would close it (see `lifeline`).
        let fresh_lifeline = fresh.stdin.take();
        let fresh_pid = fresh.id().unwrap_or(0);
        let ready = tokio::select! {
            ready = wait_ready_pid(self.spec.port, fresh_pid, RESTART_READY) => ready,
            exit = fresh.wait() => {
                return Err(format!("the new process exited before it was ready ({})",
                    exit.map_or_else(|e| e.to_string(), |s| s.to_string())));
            }
        };
        if !ready {
            let _ = fresh.kill().await;
            return Err(format!(
                "the new process was not ready within {RESTART_READY:?}; the old one keeps serving"
            ));
        }
        let old = self.child.replace(fresh);
        let old_lifeline = std::mem::replace(&mut self.lifeline, fresh_lifeline);
        self.started_at = Instant::now();
        self.backoff = FIRST_BACKOFF;
        if let Some(old) = old {
            stop_child(&self.spec.name, old, StopMode::Graceful).await;
        }
        drop(old_lifeline);
        Ok(self.status())
    }
}

/// How long a restarted service's new process may take to be ready.
const RESTART_READY: Duration = Duration::from_secs(15);

/// Polls `/readyz` on `port` until process `pid` answers ready (the old
/// process answers too while both listen), or `limit` passes.
async fn wait_ready_pid(port: u16, pid: u32, limit: Duration) -> bool {
    // A fresh connection per poll: the kernel spreads new connections over
    // both processes, so the new one is reached within a few polls.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a plain client builds");
    let url = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(r) = client
            .get(&url)
            .timeout(Duration::from_millis(500))
            .send()
            .await
            && r.status().is_success()
            && let Ok(body) = r.json::<serde_json::Value>().await
            && body["pid"].as_u64() == Some(u64::from(pid))
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn stop_child(name: &str, mut child: Child, mode: StopMode) {
    match (mode, child.id()) {
        (StopMode::Graceful, Some(pid)) => {
            let pid = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
            let _ = kill(pid, Signal::SIGTERM);
            if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
                println!("{name}: did not stop within {GRACE:?}; killing it");
                let _ = child.kill().await;
            }
        }
        _ => {
            let _ = child.kill().await;
        }
    }
}

async fn supervise(exe: PathBuf, spec: ServiceSpec, mut commands: mpsc::Receiver<Cmd>) {
    let mut s = Supervised {
        exe,
        spec,
        child: None,
        lifeline: None,
        wanted: true,
        started_at: Instant::now(),
        backoff: FIRST_BACKOFF,
        restart_at: None,
        starts: 0,
    };
    s.spawn();
    loop {
        let restart_at = s.restart_at;
        tokio::select! {
            exit = async {
                match s.child.as_mut() {
                    Some(child) => child.wait().await,
                    None => std::future::pending().await,
                }
            } => {
                s.child = None;
                let how = exit.map_or_else(|e| e.to_string(), |status| status.to_string());
                println!("{}: exited unexpectedly ({how})", s.spec.name);
                s.schedule_restart();
            }
            () = async {
                match restart_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                if s.wanted && s.child.is_none() {
                    s.spawn();
                }
            }
            command = commands.recv() => match command {
                None => {
                    s.stop(StopMode::Graceful).await;
                    return;
                }
                Some(Cmd::Stop(mode, reply)) => {
                    s.stop(mode).await;
                    println!("{}: stopped ({})", s.spec.name, if mode == StopMode::Kill { "killed" } else { "gracefully" });
                    let _ = reply.send(s.status());
                }
                Some(Cmd::Start(reply)) => {
                    s.wanted = true;
                    if s.child.is_none() {
                        s.backoff = FIRST_BACKOFF;
                        s.spawn();
                        println!("{}: started", s.spec.name);
                    }
                    let _ = reply.send(s.status());
                }
                Some(Cmd::Restart(reply)) => {
                    let result = s.restart().await;
                    match &result {
                        Ok(status) => println!("{}: restarted without downtime (pid {})", s.spec.name, status.pid.unwrap_or(0)),
                        Err(why) => println!("{}: restart failed: {why}", s.spec.name),
                    }
                    let _ = reply.send(result);
                }
                Some(Cmd::Status(reply)) => {
                    let _ = reply.send(s.status());
                }
            }
        }
    }
}

/// glibc raises its mmap threshold after the first large free, after which
/// argon2's 19 MiB blocks come from per-thread heaps that are never given
/// back: the users service idled at ~160 MB RSS after a few logins. A fixed
/// threshold keeps such blocks mmapped and returned on free (~12 MB).
/// Measured with `ps -o rss` after 8 concurrent registrations.
const MALLOC_TUNING: &[(&str, &str)] = &[("MALLOC_MMAP_THRESHOLD_", "1048576")];

/// What tokio reads for its runtime's worker threads.
pub(crate) const RUNTIME_THREADS_ENV: &str = "TOKIO_WORKER_THREADS";

/// The async runtime's worker threads for each service (tokio reads
/// `TOKIO_WORKER_THREADS`), unless the environment sets them: a thread per
/// core for the gateway, half the cores (at least one) for the others. By
/// default a runtime has a thread per core, and six services on one small
/// machine then wake each other's idle threads far more than they work: on
/// 2 cores, one thread each took the platform from 1.26 to 1.08 cores at
/// 100 orders/s, and p99 from 34 to 20 ms. The gateway is the exception:
/// it answers restaurant pages from its edge cache with no other service
/// involved, so one thread would cap browsing at one core
/// (docs/PERFORMANCE.md).
fn runtime_threads(service: &str) -> Option<(&'static str, String)> {
    if std::env::var_os(RUNTIME_THREADS_ENV).is_some() {
        return None;
    }
    let threads = if service == "gateway" {
        cores()
    } else {
        half_the_cores()
    };
    Some((RUNTIME_THREADS_ENV, threads.to_string()))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Half this machine's cores, at least one: the runtime threads of a
/// process that shares the machine with others of the platform.
pub(crate) fn half_the_cores() -> usize {
    (cores() / 2).max(1)
}

/// Starts `spec`'s process; `first` says whether it is its first start
/// (the only one that inherits `FEASTFAST_FAILPOINTS`).
fn spawn_child(exe: &PathBuf, spec: &ServiceSpec, first: bool) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_file)
        .with_context(|| format!("cannot open {}", spec.log_file.display()))?;
    let log_err = log.try_clone()?;
    let mut command = Command::new(exe);
    if !first {
        command.env_remove(platform::failpoint::ENV);
    }
    command
        .arg("serve")
        .arg(spec.service)
        .envs(spec.env.iter().cloned())
        .env(platform::server::SUPERVISED_ENV, "1")
        .envs(
            MALLOC_TUNING
                .iter()
                .filter(|(k, _)| std::env::var_os(k).is_none())
                .copied(),
        )
        .envs(runtime_threads(spec.service))
        .stdin(Stdio::piped())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {} serve {}", exe.display(), spec.service))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_gets_a_thread_per_core_and_the_others_half() {
        if std::env::var_os(RUNTIME_THREADS_ENV).is_some() {
            // Set by whoever runs the tests: then it is theirs, for all.
            assert_eq!(runtime_threads("gateway"), None);
            return;
        }
        let threads = |service| runtime_threads(service).map(|(_, n)| n);
        assert_eq!(threads("gateway"), Some(cores().to_string()));
        for service in ["users", "restaurants", "orders", "payments", "delivery"] {
            assert_eq!(threads(service), Some(half_the_cores().to_string()));
        }
        assert!(half_the_cores() >= 1 && half_the_cores() <= cores());
    }
}
