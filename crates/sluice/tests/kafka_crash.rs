//! No loss through crashes and outages: `kill -9` cycles under a concurrent writer, a broker
//! outage mid-stream.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kill_9_cycles_under_a_concurrent_writer_lose_nothing() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    // A broker of its own: 20 producer sessions' worth of records, read back from a fresh store.
    let kafka = sluice_testkit::TempKafka::start()?;
    let db = unique_name("crash");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    let file_path = project(&dir, &db, &db, "oms", &start, "hash");
    let yaml = std::fs::read_to_string(&file_path)?.replace(&KAFKA.get(), &kafka.addr);
    std::fs::write(&file_path, yaml)?;

    // The writer: single-row and multi-row transactions on 150 keys until told to stop.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, db) = (stop.clone(), db.clone());
        tokio::spawn(async move {
            let mut c = conn().await?;
            let mut rng = Lcg(u64::from(std::process::id()));
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let id = rng.next(150) + 1;
                let sql = match rng.next(4) {
                    0 | 1 => format!("REPLACE INTO {db}.t VALUES ({id}, 'w{n}', {n}.25)"),
                    2 => format!("UPDATE {db}.t SET v = 'u{n}', amt = amt + 1 WHERE id = {id}"),
                    _ => format!(
                        "BEGIN; DELETE FROM {db}.t WHERE id = {id}; INSERT INTO {db}.t VALUES ({}, 'm{n}', 1.00) \
                         ON DUPLICATE KEY UPDATE v = 'm{n}'; COMMIT",
                        rng.next(150) + 1
                    ),
                };
                c.query_drop(sql).await?;
                n += 1;
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            Ok::<u64, mysql_async::Error>(n)
        })
    };

    kill_9_cycles(&file_path, 20, 7 + u64::from(std::process::id())).await?;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written = writer.await??;
    assert!(written > 200, "the writer made only {written} changes");
    run_until_caught_up(&file_path)?;

    let msgs = consume_from(&kafka.addr, &format!("{db}.t"), 0)?;
    let rebuilt = check_sequences_and_rebuild(&msgs)?;
    assert_eq!(
        rebuilt,
        source_rows(&mut c, &db).await?,
        "state rebuilt after 20 kill -9 cycles"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_mid_stream_loses_nothing_and_shows_in_status() -> TestResult {
    ensure_up(&[Service::Mariadb]);
    let mut kafka = sluice_testkit::TempKafka::start()?;
    let db = unique_name("outage");
    let dir = temp_dir(&db);
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    let file_path = project(&dir, &db, &db, "oms", &start, "hash");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let yaml = std::fs::read_to_string(&file_path)?
        .replace(&KAFKA.get(), &kafka.addr)
        .replace(
            "  heartbeat_secs: 1\n",
            &format!("  heartbeat_secs: 1\n  metrics_listen: \"{metrics}\"\n"),
        );
    std::fs::write(&file_path, yaml)?;

    let mut child = sluice()
        .args(["run", "-f"])
        .arg(&file_path)
        .stderr(std::process::Stdio::null())
        .spawn()?;
    write_range(&mut c, &db, 1, 200).await?;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let healthy = http_get(&metrics, "/health")?;
    kafka.stop();
    // Changes made while the broker is down, and updates of rows already delivered.
    write_range(&mut c, &db, 150, 400).await?;
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let status = sluice().args(["status", "-f"]).arg(&file_path).output()?;
    let text = String::from_utf8_lossy(&status.stdout).to_string();
    let during = http_get(&metrics, "/health")?;
    kafka.resume()?;
    // Once the broker is back, health is too.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut after = http_get(&metrics, "/health")?;
    while http_status(&after) != Some(200) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        after = http_get(&metrics, "/health")?;
    }
    write_range(&mut c, &db, 400, 500).await?;
    // SIGTERM: a graceful stop; then a run to the end.
    sigterm(&child)?;
    let _ = child.wait()?;
    run_until_caught_up(&file_path)?;
    assert!(
        text.contains("kafka brokers unreachable"),
        "status during the outage: {text}"
    );
    assert_eq!(http_status(&healthy), Some(200), "before: {healthy}");
    assert!(
        http_status(&during) == Some(503) && during.contains("kafka brokers unreachable"),
        "/health during the outage: {during}"
    );
    assert!(after.ends_with("ok\n"), "/health after the outage: {after}");

    let py = services_cache().join("pytools/bin/python");
    let out = Command::new(py)
        .arg(repo_root().join("dev/probes/kafka_consume.py"))
        .args([
            "--bootstrap",
            &kafka.addr,
            "--idle",
            "2",
            &format!("{db}.t"),
        ])
        .output()?;
    let msgs: Vec<Json> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let rebuilt = check_sequences_and_rebuild(&msgs)?;
    assert_eq!(
        rebuilt,
        source_rows(&mut c, &db).await?,
        "state rebuilt across the outage"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
