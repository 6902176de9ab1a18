//! Avro with a schema registry, proven by the official client: Python confluent-kafka's
//! `SchemaRegistryClient` and `AvroDeserializer` decode every message Sluice wrote (through
//! the repo's own registry, crates/schema-registry-server) back to the source's values.

mod common;

use common::*;
use serde_json::json;
use sluice_testkit::{free_port, TempKafka, SCHEMA_REGISTRY};

/// Every message of `topic`, decoded by confluent-kafka's AvroDeserializer
/// (dev/probes/kafka_consume.py with `--registry`, run by the Python that has the extras).
fn avro_consume(
    bootstrap: &str,
    registry: &str,
    auth: Option<&str>,
    topic: &str,
) -> Result<Vec<Json>, Box<dyn std::error::Error>> {
    let mut cmd = Command::new(repo_root().join("dev/services"));
    cmd.arg("avro-python")
        .arg(repo_root().join("dev/probes/kafka_consume.py"))
        .args([
            "--bootstrap",
            bootstrap,
            "--registry",
            registry,
            "--idle",
            "3",
        ]);
    if let Some(a) = auth {
        cmd.args(["--auth", a]);
    }
    let out = cmd.arg(topic).output()?;
    if !out.status.success() {
        return Err(format!(
            "avro reader failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

fn avro_project(
    dir: &Path,
    name: &str,
    db: &str,
    start: &str,
    brokers: &str,
    registry: &str,
) -> PathBuf {
    let file = project(dir, name, db, "avro", start, "hash");
    let yaml = std::fs::read_to_string(&file).unwrap_or_default().replace(
        &format!("  brokers: {}\n", KAFKA.get()),
        &format!("  brokers: {brokers}\n  schema_registry:\n{registry}"),
    );
    let _ = std::fs::write(&file, yaml);
    file
}

fn registry_get(path: &str) -> Result<Json, Box<dyn std::error::Error>> {
    let url = format!("http://{}{path}", SCHEMA_REGISTRY.get());
    let body = ureq::get(&url).call()?.into_body().read_to_string()?;
    Ok(serde_json::from_str(&body)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_messages_decode_with_the_official_deserializer_and_evolve_with_ddl() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::SchemaRegistry]);
    let kafka = TempKafka::start_memory()?;
    let registry = format!("http://{}", SCHEMA_REGISTRY.get());
    let db = unique_name("avro");
    let topic = format!("{db}.t");
    let mut c = conn().await?;
    let start = format_matrix_table(&mut c, &db, &[("nn VARCHAR(5) NOT NULL", "'x'")]).await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t (id, dec1, nn) VALUES (2, -0.05, 'y')"
    ))
    .await?;
    c.query_drop(format!("UPDATE {db}.t SET dec1 = 7.25, n = 5 WHERE id = 2"))
        .await?;
    c.query_drop(format!("DELETE FROM {db}.t WHERE id = 1"))
        .await?;

    let dir = temp_dir(&db);
    let reg = format!("    url: {registry}\n");
    let file = avro_project(&dir, &db, &db, &start, &kafka.addr, &reg);
    run_until_caught_up(&file)?;
    let msgs = avro_consume(&kafka.addr, &registry, None, &topic)?;
    let mut ops: Vec<(Json, String)> = msgs
        .iter()
        .filter(|m| m["value"].is_object())
        .map(|m| {
            (
                m["key"].clone(),
                m["value"]["op"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    ops.sort_by_key(|(k, _)| k["id"].as_i64());
    assert_eq!(
        ops,
        [
            (json!({"id": 1}), "c".to_string()),
            (json!({"id": 1}), "d".to_string()),
            (json!({"id": 2}), "c".to_string()),
            (json!({"id": 2}), "u".to_string()),
        ],
        "{msgs:?}"
    );
    let insert = msgs
        .iter()
        .find(|m| m["key"] == json!({"id": 1}) && m["value"]["op"] == "c")
        .ok_or("no insert of id 1")?;
    let want = json!({"id": 1, "biu": "18446744073709551615", "dec1": "1.50", "vc": "ü漢",
        "vl": "café", "vg": "汉字", "vb": "AP8Q", "dt": "2024-05-01",
        "dt6": "2024-05-01T08:00:00.123456", "tm": -3_723_000_000_i64,
        "ts3": "2024-05-01T08:00:00.250000+00:00", "y": 2024, "bt1": true, "bt10": "AQI=",
        "e": "b", "st": "a,c", "j": "{\"k\": [1, 2]}", "f": f64::from(0.1_f32), "d": 0.1,
        "n": null, "nn": "x"});
    assert_eq!(insert["value"]["after"], want);
    assert_eq!(insert["value"]["before"], Json::Null);
    assert_eq!(insert["value"]["source"]["table"], json!("t"));
    let delete = msgs
        .iter()
        .find(|m| m["value"]["op"] == "d")
        .ok_or("no delete")?;
    assert_eq!(delete["value"]["before"], want);
    let update = msgs
        .iter()
        .find(|m| m["value"]["op"] == "u")
        .ok_or("no update")?;
    assert_eq!(update["value"]["before"]["dec1"], json!("-0.05"));
    assert_eq!(update["value"]["after"]["dec1"], json!("7.25"));
    assert_eq!(update["value"]["after"]["n"], json!(5));
    assert_eq!(
        registry_get(&format!("/subjects/{topic}-value/versions"))?,
        json!([1])
    );
    assert_eq!(
        registry_get(&format!("/subjects/{topic}-key/versions"))?,
        json!([1])
    );

    // A compatible change (a nullable column): a new version of the subject, used from the
    // table's next row on.
    c.query_drop(format!(
        "ALTER TABLE {db}.t ADD COLUMN extra VARCHAR(10) NULL"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t (id, nn, extra) VALUES (3, 'z', 'new')"
    ))
    .await?;
    run_until_caught_up(&file)?;
    assert_eq!(
        registry_get(&format!("/subjects/{topic}-value/versions"))?,
        json!([1, 2])
    );
    let msgs = avro_consume(&kafka.addr, &registry, None, &topic)?;
    let third = msgs
        .iter()
        .find(|m| m["key"] == json!({"id": 3}))
        .ok_or("no row 3")?;
    assert_eq!(third["value"]["after"]["extra"], json!("new"));
    let v2 = registry_get(&format!("/subjects/{topic}-value/versions/2"))?;
    assert_eq!(third["value_schema_id"], v2["id"]);

    // An incompatible one (a NOT NULL column has no Avro default): the registry refuses it
    // under BACKWARD, and the run stops naming the subject.
    c.query_drop(format!(
        "ALTER TABLE {db}.t ADD COLUMN must INT NOT NULL DEFAULT 0"
    ))
    .await?;
    c.query_drop(format!("INSERT INTO {db}.t (id, nn) VALUES (4, 'w')"))
        .await?;
    let err = run_until_caught_up(&file)
        .err()
        .ok_or("the run went on past an incompatible schema")?
        .to_string();
    assert!(
        err.contains("incompatible") && err.contains(&format!("{topic}-value")),
        "{err}"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

/// A registry that asks for basic auth: the credentials reach it from `password_env`, the
/// official client reads the messages with the same credentials, and a wrong password fails
/// the precheck naming the fields to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_with_basic_auth() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::SchemaRegistry]);
    let kafka = TempKafka::start_memory()?;
    let bin = std::fs::read_dir(services_cache())?
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin/sluice-schema-registry-server"))
        .filter(|p| p.exists())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .ok_or("no schema registry built; run dev/services up schema-registry")?;
    let port = free_port()?;
    let data = temp_dir(&unique_name("registry")).join("registry.json");
    let mut server = std::process::Command::new(bin)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .env("SLUICE_SCHEMA_REGISTRY_AUTH", "sluice:reg-Pa55")
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let registry = format!("http://127.0.0.1:{port}");
    if let Err(e) = sluice_testkit::wait_listening(&mut server, port, 20) {
        let _ = server.kill();
        return Err(format!("the registry: {e}").into());
    }
    let result = async {
        let db = unique_name("avroauth");
        let mut c = conn().await?;
        let start = new_table(&mut c, &db).await?;
        write_range(&mut c, &db, 1, 20).await?;
        let want = source_rows(&mut c, &db).await?;
        let reg = format!(
            "    url: {registry}\n    username: sluice\n    password_env: SLUICE_TEST_REGISTRY_PASSWORD\n"
        );
        let dir = temp_dir(&db);
        let file = avro_project(&dir, &db, &db, &start, &kafka.addr, &reg);
        let precheck = |pw: &str| {
            sluice()
                .args(["precheck", "-f"])
                .arg(&file)
                .env("SLUICE_TEST_REGISTRY_PASSWORD", pw)
                .output()
        };
        let bad = precheck("wrong")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&bad.stdout),
            String::from_utf8_lossy(&bad.stderr)
        );
        assert!(!bad.status.success(), "{text}");
        assert!(text.contains("schema_registry.username"), "{text}");
        assert!(!text.contains("reg-Pa55") && !text.contains("wrong"), "{text}");
        assert!(precheck("reg-Pa55")?.status.success());
        let out = sluice()
            .args(["run", "-f"])
            .arg(&file)
            .args(["--until", "caught-up"])
            .env("SLUICE_TEST_REGISTRY_PASSWORD", "reg-Pa55")
            .output()?;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let msgs = avro_consume(&kafka.addr, &registry, Some("sluice:reg-Pa55"), &format!("{db}.t"))?;
        let mut state = BTreeMap::new();
        for m in &msgs {
            let v = &m["value"];
            let id = v["after"]["id"].to_string();
            state.insert(
                id.clone(),
                json!({"id": id, "v": v["after"]["v"], "amt": v["after"]["amt"]}),
            );
        }
        assert_eq!(state, want);
        c.query_drop(format!("DROP DATABASE {db}")).await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    }
    .await;
    let _ = server.kill();
    let _ = server.wait();
    result
}
