use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use platform::testing::Api;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The service secret of the platforms the tests start.
pub(crate) const SERVICE_SECRET: &str = "platform-test-secret";

/// A running `feastfast up`.
pub(crate) struct Platform {
    child: Child,
    pub(crate) output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    /// The gateway's public `/api/v1`.
    pub(crate) api: Api,
}

/// The PostgreSQL and NATS servers of CI's production pass, when set
/// (FEASTFAST_TEST_POSTGRES, FEASTFAST_TEST_NATS).
pub(crate) fn production_servers() -> Option<(String, String)> {
    let postgres = std::env::var(platform::testing::TEST_POSTGRES_ENV).ok()?;
    let nats = std::env::var(platform::testing::TEST_NATS_ENV).ok()?;
    Some((postgres, nats))
}

/// In CI's production pass (FEASTFAST_TEST_POSTGRES and FEASTFAST_TEST_NATS
/// set), every platform runs on PostgreSQL and NATS, with databases and
/// streams of its own; a test that chose its storage itself keeps it.
fn production_mode(data_dir: &Path, args: &[&str]) -> Vec<String> {
    let Some((postgres, nats)) = production_servers() else {
        return Vec::new();
    };
    if args.contains(&"--postgres") || args.contains(&"--nats") {
        return Vec::new();
    }
    let prefix = format!("fftest_{}", platform::testing::test_key(data_dir));
    [
        "--postgres",
        &postgres,
        "--database-prefix",
        &prefix,
        "--nats",
        &nats,
        "--nats-prefix",
        &prefix,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Where `service` of the platform in `data_dir` keeps its data: the
/// database `feastfast up` gave it (in production mode, as
/// [`production_mode`] names them).
pub(crate) fn database_url(data_dir: &Path, service: &str) -> String {
    match production_servers() {
        Some((postgres, _)) => format!(
            "{}/fftest_{}_{service}",
            postgres.trim_end_matches('/'),
            platform::testing::test_key(data_dir)
        ),
        None => format!(
            "sqlite://{}",
            data_dir.join(format!("{service}.db")).display()
        ),
    }
}

/// A base port with the ports of a platform after it free too (the six
/// services and their second replicas, base + 0..16). Chosen below Linux's
/// ephemeral range (32768 and up): a port from that range can be taken
/// between this check and the service's bind by any outgoing connection
/// (a database or NATS connection of another test), and was — a service
/// then exited "address in use" until the platform gave up.
pub(crate) fn free_base_port() -> u16 {
    for _ in 0..200 {
        let base = 10_000 + (rand_u16() % 22_000);
        if (0..16).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free port range found");
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id().rotate_left(16)) as u16
}

impl Platform {
    /// Starts `feastfast up --no-sim` and waits for its "is up" line.
    pub(crate) fn start(data_dir: &Path, port: u16) -> Platform {
        Self::start_with(data_dir, port, &["--no-sim"])
    }

    /// Starts `feastfast up` with `args` and waits for its "is up" line.
    /// Services share [`SERVICE_SECRET`], so the test can make internal
    /// calls too.
    pub(crate) fn start_with(data_dir: &Path, port: u16, args: &[&str]) -> Platform {
        Self::start_with_env(data_dir, port, args, &[])
    }

    /// [`Platform::start_with`] with extra environment variables for
    /// `feastfast up` (and so for its services' first start).
    pub(crate) fn start_with_env(
        data_dir: &Path,
        port: u16,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Platform {
        let mut child = Command::new(env!("CARGO_BIN_EXE_feastfast"))
            .args(["up", "--port", &port.to_string(), "--data-dir"])
            .arg(data_dir)
            .args(args)
            .args(production_mode(data_dir, args))
            .env("SERVICE_SECRET", SERVICE_SECRET)
            // In production mode every process holds a pool; the replica
            // test runs nine beside other tests on one PostgreSQL.
            .env("DATABASE_POOL_MAX", "4")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("runs feastfast up");
        let stdout = child.stdout.take().expect("piped stdout");
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("FeastFast is up: ") {
                    let _ = tx.send(url.to_owned());
                }
                lines.lock().expect("lock").push(line);
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                // What each service said last, for the why.
                let mut logs = String::new();
                for entry in std::fs::read_dir(data_dir.join("logs"))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(3).collect();
                    logs.push_str(&format!(
                        "--- {}\n{}\n",
                        entry.path().display(),
                        tail.join("\n")
                    ));
                }
                panic!(
                    "feastfast up did not come up:\n{}\n{logs}",
                    output.lock().expect("lock").join("\n")
                );
            }
        };
        Platform {
            child,
            api: Api::with_prefix(&base, "/api/v1"),
            output,
        }
    }

    pub(crate) async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .api
            .post(
                "/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "login {email}");
        r.json::<Value>().await.expect("json")["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    pub(crate) async fn register(&self, email: &str, role: &str) -> String {
        let r = self
            .api
            .post(
                "/auth/register",
                None,
                json!({"email": email, "password": "correct horse", "name": role, "role": role}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "register {email}");
        self.login(email, "correct horse").await
    }

    /// Stops with SIGTERM (as Ctrl-C would) and returns whether it exited 0.
    pub(crate) fn stop(mut self) -> bool {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        // Its children notice their stdin closing and exit on their own.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Retries `check` until it is true or `limit` passes.
pub(crate) async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `GET path` on service `service` of the platform whose gateway listens
/// on `port` (services on the next ports, in `up`'s order), with a service
/// token: the internal view a test checks business outcomes in.
pub(crate) async fn internal_get(port: u16, service: &str, path: &str) -> (StatusCode, Value) {
    let offset = match service {
        "users" => 1,
        "restaurants" => 2,
        "orders" => 3,
        "payments" => 4,
        "delivery" => 5,
        other => panic!("no service {other}"),
    };
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("http://127.0.0.1:{}/internal/token", port + 1))
        .json(&json!({"service": "verify", "secret": SERVICE_SECRET}))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let token = token["access_token"].as_str().expect("token");
    let r = client
        .get(format!("http://127.0.0.1:{}{path}", port + offset))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}
