//! Browser tests: the web UI in headless Debian chromium, driven by
//! `playwright-core` (the scenarios in `web/e2e/*.mjs`), against a whole
//! platform. Each scenario fails on any console error or page error, and
//! saves a screenshot of each view under `<target dir>/screenshots/`.
//!
//! Without node, `web/e2e/node_modules` or chromium the tests skip with a
//! printed reason, unless `CI` is set: then they fail (`.ci/run` installs
//! what is missing).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Platform, free_base_port};

/// How long one scenario may take before it is killed.
const SCENARIO_LIMIT: Duration = Duration::from_secs(240);

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/e2e")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// Where the screenshots go: `screenshots/` in the build output.
fn screenshot_dir() -> PathBuf {
    let exe = Path::new(env!("CARGO_BIN_EXE_feastfast"));
    exe.parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| Path::new("."))
        .join("screenshots")
}

/// Why the browser tests cannot run on this machine, if they cannot.
fn missing() -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        return Some("node is not installed".to_owned());
    }
    if !e2e_dir().join("node_modules/playwright-core").is_dir() {
        return Some("web/e2e/node_modules is missing (run `npm ci` in web/e2e)".to_owned());
    }
    let browser = chromium();
    if !browser.exists() {
        return Some(format!(
            "{} is missing (apt-get install chromium)",
            browser.display()
        ));
    }
    None
}

/// Whether to run; in CI a missing tool is a failure, not a skip.
fn can_run() -> bool {
    match missing() {
        None => true,
        Some(why) if std::env::var_os("CI").is_some() => {
            panic!("the browser tests must run in CI, but {why}")
        }
        Some(why) => {
            eprintln!("skipping the browser test: {why}");
            false
        }
    }
}

/// Runs `web/e2e/<scenario>.mjs` against the platform; panics with its
/// output unless it exits 0.
fn scenario(p: &Platform, name: &str, scratch: &Path) {
    let base = p.api.url("").trim_end_matches("/api/v1").to_owned();
    let log = scratch.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).expect("creates the log");
    let err = out.try_clone().expect("clones the log handle");
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(format!("{name}.mjs"))
        .current_dir(e2e_dir())
        .env("FEASTFAST_URL", &base)
        .env("SCREENSHOT_DIR", screenshot_dir())
        .env("CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("runs node");
    let status = loop {
        if let Some(status) = child.try_wait().expect("waits for node") {
            break Some(status);
        }
        if started.elapsed() > SCENARIO_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    match status {
        Some(s) if s.success() => {
            println!(
                "{name} passed in {:.1} s:\n{output}",
                started.elapsed().as_secs_f64()
            );
        }
        Some(s) => panic!(
            "browser scenario {name} failed ({s}):\n{output}\nplatform output:\n{}\n{}{}",
            p.output.lock().expect("lock").join("\n"),
            service_warnings(scratch),
            orders_placed_trail(&output, scratch, name)
        ),
        None => panic!(
            "browser scenario {name} took longer than {SCENARIO_LIMIT:?}:\n{output}\n{}{}",
            service_warnings(scratch),
            orders_placed_trail(&output, scratch, name)
        ),
    }
}

/// For a failure's message: what every service logged about each order
/// the scenario placed (its "placed order <id>" lines), and where a copy
/// of the services' logs is kept (beside the screenshots), since the data
/// directory is gone once the test ends.
fn orders_placed_trail(output: &str, data_dir: &Path, scenario: &str) -> String {
    let kept = screenshot_dir().with_file_name(format!("browser-logs-{scenario}"));
    let _ = std::fs::remove_dir_all(&kept);
    let copied = std::fs::create_dir_all(&kept).is_ok()
        && std::fs::read_dir(data_dir.join("logs"))
            .into_iter()
            .flatten()
            .flatten()
            .all(|log| std::fs::copy(log.path(), kept.join(log.file_name())).is_ok());
    let mut report = if copied {
        format!("the services' logs are kept in {}\n", kept.display())
    } else {
        String::new()
    };
    let ids = output
        .lines()
        .filter_map(|l| l.split("placed order ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next());
    for id in ids {
        report.push_str(&log_lines(data_dir, &format!("on order {id}"), 40, |l| {
            l.contains(id)
        }));
    }
    report
}

/// The warnings and errors each service logged under `data_dir/logs`
/// (the last few of each), for a failure's message: the data directory
/// is gone once the test ends.
fn service_warnings(data_dir: &Path) -> String {
    log_lines(data_dir, "warnings and errors", 20, |l| {
        l.contains("\"WARN\"") || l.contains("\"ERROR\"")
    })
}

/// The last `last` lines each service logged under `data_dir/logs` that
/// `pick` keeps, headed by the service and `what`.
fn log_lines(data_dir: &Path, what: &str, last: usize, pick: impl Fn(&str) -> bool) -> String {
    let mut report = String::new();
    for service in std::iter::once("gateway").chain(gateway::SERVICES.iter().copied()) {
        let log = std::fs::read_to_string(data_dir.join(format!("logs/{service}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().filter(|l| pick(l)).collect();
        if !lines.is_empty() {
            report.push_str(&format!(
                "--- {service}, {what}: {} lines, the last {}:\n{}\n",
                lines.len(),
                lines.len().min(last),
                lines[lines.len().saturating_sub(last)..].join("\n")
            ));
        }
    }
    report
}

#[test]
fn in_a_browser_a_customer_watches_an_order_arrive_and_ops_breaks_delivery() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // Fast enough to keep the test short, slow enough for the courier to
    // be seen moving on the map.
    // orders at debug: a saga that pauses says why (CI once saw an order
    // placed while delivery was down stay AWAITING_RESTAURANT).
    let p = Platform::start_with_env(
        dir.path(),
        free_base_port(),
        &["--sim-speed", "50", "--prep-secs", "30"],
        &[("RUST_LOG", "info,orders=debug")],
    );
    scenario(&p, "customer", dir.path());
    scenario(&p, "ops", dir.path());
}

#[test]
fn in_a_browser_an_owner_accepts_and_a_courier_delivers() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // No simulators: the owner and the courier are the test's own hands.
    let p = Platform::start(dir.path(), free_base_port());
    scenario(&p, "kitchen", dir.path());
}
