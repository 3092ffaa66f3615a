//! `feastfast chaos` in CI: a minute of random SIGKILLs under a steady
//! load, then `feastfast verify` must find every invariant kept.

use crate::failpoints::verify;
use crate::harness::{Platform, free_base_port};

#[tokio::test]
async fn a_minute_of_chaos_leaves_every_invariant_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_base_port();
    // The simulators cook and deliver, so orders run their whole course
    // (captures included) while services die around them.
    let p = Platform::start_with(dir.path(), port, &["--sim-speed", "50"]);
    let gateway = format!("http://127.0.0.1:{port}");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_feastfast"))
        .args(["chaos", "--gateway", &gateway])
        .args(["--duration", "60s", "--interval", "5s", "--rate", "10"])
        .output()
        .await
        .expect("feastfast chaos runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{said}");
    assert!(out.status.success(), "chaos itself failed:\n{said}");
    let kills = said.matches("(SIGKILL)").count();
    assert!(kills >= 10, "{kills} kills in a minute:\n{said}");
    assert_eq!(
        said.matches("started").count() - said.matches("(ready after").count(),
        0,
        "every victim came back:\n{said}"
    );

    let (clean, report) = verify(port, &["--wait", "90s"]).await;
    println!("{report}");
    assert!(clean, "verify found violations after chaos:\n{report}");
    assert!(report.contains("0 violations"), "{report}");
    drop(p);
}
