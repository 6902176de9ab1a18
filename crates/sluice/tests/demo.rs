//! `dev/demo --once` is the README's first command: it must run a real sync to the end.

use std::process::Command;

#[test]
fn the_demo_runs_a_real_sync_to_the_end() -> Result<(), Box<dyn std::error::Error>> {
    sluice_testkit::ensure_up(&[sluice_testkit::Service::Mariadb]);
    let out = Command::new(sluice_testkit::repo_root().join("dev/demo"))
        .arg("--once")
        .env("SLUICE_BIN", env!("CARGO_BIN_EXE_sluice"))
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dev/demo --once failed:\n{stdout}\n{stderr}"
    );
    for want in [
        "state:      Stopped",
        "full sync:  finished",
        "full:       shop.customers 10000 of",
        "full:       shop.order_items 30000 of",
        "rows:       shop.customers 10000",
        "rows:       shop.order_items 30000",
    ] {
        assert!(stdout.contains(want), "no {want:?} in:\n{stdout}\n{stderr}");
    }
    // Orders: 60,000 copied (plus the writer's new ones copied or replayed) and the writer's
    // changes replayed on top.
    let orders: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("rows:       shop.orders "))
        .and_then(|n| n.trim().parse().ok())
        .ok_or("no rows line for shop.orders")?;
    assert!(
        orders > 60_000 + 5_000,
        "only {orders} order changes delivered"
    );
    // Where the console is, and how to sign in.
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains(
            "console: http://127.0.0.1:8640/#/projects/demo  (user admin, password sluice-demo)"
        ),
        "no console address in:\n{said}"
    );
    // The independent consumer printed delivered messages.
    assert!(stderr.contains("a few delivered messages") && stdout.contains("\"allMetaData\""));
    Ok(())
}
