//! Watching and steering a running project: the Prometheus page, pause and resume, the rows/s
//! throttle, and sharding columns choosing the partition.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// GET /metrics.
fn scrape(addr: &str) -> Result<String, Box<dyn std::error::Error>> {
    http_get(addr, "/metrics")
}

/// The value of the first sample line starting with `prefix`.
fn sample(page: &str, prefix: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn wait_for(what: &str, mut ok: impl FnMut() -> bool) -> TestResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pause_resume_throttle_and_sharding_columns() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    // A broker of its own (in memory): quick to read back, and no load on the shared one.
    let kafka = sluice_testkit::TempKafka::start_memory()?;
    let db = unique_name("ctl");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let (file, offset) = sluice_source_mysql_position(&mut c).await?;
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, grp INT NOT NULL, v VARCHAR(20))"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, seq % 5, 'x' FROM {db}.seq_1_to_600"
    ))
    .await?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let path = project(&dir, &db, &db, "oms", &format!("{file}:{offset}"), "hash");
    use_broker(&path, &kafka.addr)?;
    let yaml = std::fs::read_to_string(&path)?
        .replace(
            "objects:\n",
            &format!("objects:\n  sharding:\n    {db}.t: [grp]\n"),
        )
        .replace(
            "  heartbeat_secs: 1",
            &format!("  heartbeat_secs: 1\n  batch_rows: 50\n  throttle_rows: 200\n  metrics_listen: \"{metrics}\""),
        );
    std::fs::write(&path, yaml)?;

    let t0 = Instant::now();
    let mut child = spawn_run(&path)?;
    let writer_rows = format!("sluice_rows_total{{component=\"writer\",project=\"{db}\"}}");
    wait_for("600 rows delivered", || {
        scrape(&metrics)
            .ok()
            .and_then(|p| sample(&p, &writer_rows))
            .is_some_and(|n| n >= 600.0)
    })
    .await?;
    // 600 rows at 200 rows/s take at least 3 s (minus one batch of slack).
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(2700),
        "throttle not applied: {took:?}"
    );
    let page = scrape(&metrics)?;
    for family in [
        "sluice_rows_total{component=\"reader\"",
        "sluice_bytes_total{component=\"writer\"",
        "sluice_position_offset{component=\"writer\"",
        "sluice_checkpoint_timestamp_seconds{",
        "sluice_latency_seconds{",
    ] {
        assert!(page.contains(family), "no {family} in\n{page}");
    }
    for component in ["writer", "reader"] {
        assert!(
            sample(
                &page,
                &format!("sluice_bytes_total{{component=\"{component}\",project=\"{db}\"}}")
            )
            .unwrap_or(0.0)
                > 0.0,
            "no {component} bytes in\n{page}"
        );
    }

    // Pause: nothing more is delivered; the state says so; resume delivers the rest.
    let out = sluice()
        .args(["project", "pause", "-f"])
        .arg(&path)
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = |p: &Path| {
        sluice()
            .args(["status", "-f"])
            .arg(p)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    wait_for("state Paused", || {
        status(&path).contains("state:      Paused")
    })
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t SELECT seq, seq % 5, 'y' FROM {db}.seq_601_to_610"
    ))
    .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        sample(&scrape(&metrics)?, &writer_rows),
        Some(600.0),
        "delivered while paused"
    );
    let out = sluice()
        .args(["project", "resume", "-f"])
        .arg(&path)
        .output()?;
    assert!(out.status.success());
    wait_for("610 rows delivered after resume", || {
        scrape(&metrics)
            .ok()
            .and_then(|p| sample(&p, &writer_rows))
            .is_some_and(|n| n >= 610.0)
    })
    .await?;
    assert!(status(&path).contains("state:      Running"));
    sigterm(&child)?;
    assert!(child.wait()?.success());

    // Sharding: every row lands in the partition of its grp value, not of its id.
    let msgs: Vec<Json> = consume_from(&kafka.addr, &format!("{db}.t"), 0)?
        .into_iter()
        .filter(|m| m["value"]["recordType"] == "INSERT")
        .collect();
    assert_eq!(msgs.len(), 610);
    for m in &msgs {
        let grp = m["value"]["postStruct"]["grp"].as_str().ok_or("grp")?;
        let want = i64::from((murmur2(grp.as_bytes()) & 0x7fff_ffff) % 3);
        assert_eq!(m["partition"].as_i64(), Some(want), "{m}");
        assert_eq!(
            m["key"], m["value"]["postStruct"]["id"],
            "the key stays the primary key"
        );
    }
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
