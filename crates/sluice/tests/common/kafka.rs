//! Reading Kafka topics back in the tests: an independent consumer (confluent-kafka), the
//! table rebuilt from each format's messages, and the table every format test starts from.

use super::*;

/// Every message of `topic`, read by confluent-kafka.
pub fn consume(topic: &str, expect: usize) -> Result<Vec<Json>, Box<dyn std::error::Error>> {
    consume_from(&KAFKA.get(), topic, expect)
}

/// Every message of `topic` on the broker at `bootstrap`, read by confluent-kafka.
pub fn consume_from(
    bootstrap: &str,
    topic: &str,
    expect: usize,
) -> Result<Vec<Json>, Box<dyn std::error::Error>> {
    consume_with(bootstrap, &[], topic, expect)
}

/// [`consume_from`] with extra client properties (`security.protocol=ssl`, ...).
pub fn consume_with(
    bootstrap: &str,
    config: &[(&str, &str)],
    topic: &str,
    expect: usize,
) -> Result<Vec<Json>, Box<dyn std::error::Error>> {
    let py = services_cache().join("pytools/bin/python");
    let mut cmd = Command::new(py);
    cmd.arg(repo_root().join("dev/probes/kafka_consume.py"));
    for (k, v) in config {
        cmd.args(["--config", &format!("{k}={v}")]);
    }
    let out = cmd
        .args([
            "--bootstrap",
            bootstrap,
            "--idle",
            "3",
            "--expect",
            &expect.to_string(),
            topic,
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!("consumer failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

/// Messages by partition, each partition's in offset order.
pub fn by_partition(msgs: &[Json]) -> BTreeMap<i64, Vec<&Json>> {
    let mut by_part: BTreeMap<i64, Vec<&Json>> = BTreeMap::new();
    for m in msgs {
        by_part
            .entry(m["partition"].as_i64().unwrap_or(-1))
            .or_default()
            .push(m);
    }
    for ms in by_part.values_mut() {
        ms.sort_by_key(|m| m["offset"].as_i64());
    }
    by_part
}

/// Rebuilds the table from OMS messages in partition order; checks per-partition sequences.
pub fn rebuild_oms(msgs: &[Json]) -> Result<BTreeMap<String, Json>, String> {
    let mut state = BTreeMap::new();
    for (_, ms) in by_partition(msgs) {
        let mut last_seq = 0u64;
        for m in ms {
            let v = &m["value"];
            let kind = v["recordType"].as_str().unwrap_or("");
            let seq = v["allMetaData"]["storeDataSequence"].as_u64().unwrap_or(0);
            let header_seq: u64 = m["headers"]["sluice.sequence"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            if seq != header_seq {
                return Err(format!(
                    "header sequence {header_seq} != storeDataSequence {seq}"
                ));
            }
            // Full-sync rows carry no sequence and precede every replayed change of their
            // key (incremental sync starts after full sync ends): apply them as they come.
            if kind == "ROW" {
                let key = v["allMetaData"]["record_primary_value"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                state.insert(key, compared(&v["postStruct"]));
                continue;
            }
            // Duplicates (a replayed batch) are dropped by the documented rule.
            if seq <= last_seq {
                continue;
            }
            last_seq = seq;
            let key = v["allMetaData"]["record_primary_value"]
                .as_str()
                .unwrap_or("")
                .to_string();
            match kind {
                "INSERT" | "UPDATE" => {
                    state.insert(key, compared(&v["postStruct"]));
                }
                "DELETE" => {
                    state.remove(&key);
                }
                "DDL" => {}
                other => return Err(format!("unexpected recordType {other}")),
            }
        }
    }
    Ok(state)
}

/// Only the columns compared (a later ADD COLUMN adds more).
fn compared(post: &Json) -> Json {
    let mut post = post.clone();
    if let Some(o) = post.as_object_mut() {
        o.retain(|k, _| ["id", "v", "amt"].contains(&k.as_str()));
    }
    post
}

/// Kafka's murmur2, as documented in docs/KAFKA.md (checked against Kafka's published values in
/// sluice-mq's unit tests).
pub fn murmur2(b: &[u8]) -> i32 {
    sluice_mq::murmur2(b)
}

/// Checks what a consumer read, by the documented rules: every source sequence from 1 to the
/// highest appears (nothing lost); within a partition, after dropping what is not newer than
/// what was already seen, sequences increase (per-key commit order). Returns the rebuilt table.
pub fn check_sequences_and_rebuild(msgs: &[Json]) -> Result<BTreeMap<String, Json>, String> {
    let seqs: std::collections::BTreeSet<u64> = msgs
        .iter()
        .filter_map(|m| m["value"]["allMetaData"]["storeDataSequence"].as_u64())
        .collect();
    let max = seqs.iter().next_back().copied().unwrap_or(0);
    if max == 0 {
        return Err("no message carried a sequence".into());
    }
    if seqs.len() as u64 != max {
        let missing: Vec<u64> = (1..=max).filter(|s| !seqs.contains(s)).take(10).collect();
        return Err(format!(
            "{} of {max} sequences delivered; missing e.g. {missing:?}",
            seqs.len()
        ));
    }
    rebuild_oms(msgs)
}

/// One row image of any format, reduced to the compared columns as strings.
pub fn as_strings(image: &Json) -> Json {
    let s = |v: &Json| match v {
        Json::Null => Json::Null,
        Json::String(s) => Json::String(s.clone()),
        other => Json::String(other.to_string()),
    };
    serde_json::json!({"id": s(&image["id"]), "v": s(&image["v"]), "amt": s(&image["amt"])})
}

/// Rebuilds the table from the messages of one format (no duplicates in these runs).
pub fn rebuild(format: &str, msgs: &[Json]) -> Result<BTreeMap<String, Json>, String> {
    let mut sorted: Vec<&Json> = msgs.iter().collect();
    sorted.sort_by_key(|m| (m["partition"].as_i64(), m["offset"].as_i64()));
    let mut state = BTreeMap::new();
    for m in sorted {
        let v = &m["value"];
        let (op, image): (&str, &Json) = match format {
            "canal" => {
                if v["isDdl"] == true {
                    continue;
                }
                (v["type"].as_str().unwrap_or(""), &v["data"][0])
            }
            "debezium" => {
                let Some(op) = v["op"].as_str() else { continue };
                (op, if op == "d" { &v["before"] } else { &v["after"] })
            }
            "debezium-flat" => {
                if v.get("ddl").is_some() {
                    continue;
                }
                (if v["__deleted"] == "true" { "d" } else { "c" }, v)
            }
            "maxwell" => {
                let t = v["type"].as_str().unwrap_or("");
                if !["insert", "update", "delete"].contains(&t) {
                    continue;
                }
                (t, &v["data"])
            }
            "dataworks" => {
                let p = &v["payload"];
                match p["op"].as_str().unwrap_or("") {
                    "DELETE" => ("DELETE", &p["before"]["dataColumn"]),
                    op @ ("INSERT" | "UPDATE_AFTER") => (op, &p["after"]["dataColumn"]),
                    _ => continue,
                }
            }
            "shareplex" => {
                let op = v["meta"]["op"].as_str().unwrap_or("");
                if op == "upd" {
                    // An update carries the changed columns only: apply them to the row
                    // its `key` (the image before) names.
                    let key = as_strings(&v["key"])["id"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let row = state
                        .get_mut(&key)
                        .ok_or_else(|| format!("shareplex: update of unknown row {key}"))?;
                    if let (Json::Object(row), Some(changed)) = (row, v["data"].as_object()) {
                        for (col, val) in changed {
                            let val = match val {
                                Json::Null | Json::String(_) => val.clone(),
                                other => Json::String(other.to_string()),
                            };
                            row.insert(col.clone(), val);
                        }
                    }
                    continue;
                }
                (op, &v["data"])
            }
            other => return Err(format!("no rebuild for {other}")),
        };
        let row = as_strings(image);
        let key = row["id"].as_str().unwrap_or("").to_string();
        match op {
            "INSERT" | "UPDATE" | "UPDATE_AFTER" | "c" | "u" | "r" | "insert" | "update"
            | "ins" => {
                state.insert(key, row);
            }
            "DELETE" | "d" | "delete" | "del" => {
                state.remove(&key);
            }
            other => return Err(format!("{format}: unexpected operation {other}")),
        }
    }
    Ok(state)
}

/// Checks what `three_tables_of_updates` delivered in partition (queue) mode `mode` to one topic
/// of 3 partitions: every change once, source commit order in each partition, and each unit of
/// order (everything for `one`, a table for `table`, a key for `hash`) in one partition, the one
/// Kafka's partitioner names (docs/KAFKA.md).
pub fn check_partition_mode(mode: &str, db: &str, all: Vec<Json>) -> TestResult {
    check_sequences_and_rebuild(&all).map_err(|e| format!("{mode}: {e}"))?;
    let msgs: Vec<Json> = all
        .into_iter()
        .filter(|m| m["value"]["recordType"] != "DDL")
        .collect();
    assert_eq!(msgs.len(), 450, "{mode}: every change once");
    let gtid_seq = |m: &Json| -> u64 {
        m["value"]["allMetaData"]["transId"]
            .as_str()
            .and_then(|g| g.rsplit('-').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let by_part = by_partition(&msgs);
    let mut home: BTreeMap<String, i64> = BTreeMap::new();
    for (p, ms) in &by_part {
        // Source commit order (MariaDB GTID sequence numbers) never goes back in a partition.
        let seqs: Vec<u64> = ms.iter().map(|m| gtid_seq(m)).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] <= w[1]),
            "{mode}: partition {p} out of commit order"
        );
        for m in ms.iter() {
            let table = m["value"]["allMetaData"]["table_name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let unit = match mode {
                "one" => String::new(),
                "table" => table,
                _ => format!("{table}/{}", m["key"].as_str().unwrap_or("")),
            };
            let at = *home.entry(unit.clone()).or_insert(*p);
            assert_eq!(
                at, *p,
                "{mode}: {unit:?} spread over partitions {at} and {p}"
            );
        }
    }
    match mode {
        "one" => assert_eq!(
            by_part.keys().collect::<Vec<_>>(),
            vec![&0],
            "one: only partition 0"
        ),
        // Three tables may well share a partition, so spreading is not asserted.
        "table" => {
            for (unit, p) in &home {
                let want = sluice_mq::pick(format!("{db}.{unit}").as_bytes(), 3);
                assert_eq!(*p, i64::from(want), "table: {unit} in partition {p}");
            }
        }
        _ => assert!(
            by_part.len() > 1,
            "{mode}: 30 keys should spread over 3 partitions"
        ),
    }
    Ok(())
}

/// The table of the format tests (every type each format documents) with its one row, created
/// in `db` after the position returned (the project's start): `id 1`, and `extra` columns
/// (SQL definitions) with their values for formats that test more.
pub async fn format_matrix_table(
    c: &mut mysql_async::Conn,
    db: &str,
    extra: &[(&str, &str)],
) -> Result<String, mysql_async::Error> {
    c.query_drop("SET SESSION time_zone = '+00:00'").await?;
    let (file, offset) = sluice_source_mysql_position(c).await?;
    let columns: String = extra.iter().map(|(d, _)| format!(", {d}")).collect();
    let values: String = extra.iter().map(|(_, v)| format!(", {v}")).collect();
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, biu BIGINT UNSIGNED, dec1 DECIMAL(5,2),
           vc VARCHAR(20) CHARACTER SET utf8mb4, vl VARCHAR(20) CHARACTER SET latin1,
           vg VARCHAR(20) CHARACTER SET gbk, vb VARBINARY(8), dt DATE, dt6 DATETIME(6), tm TIME,
           ts3 TIMESTAMP(3) NULL, y YEAR, bt1 BIT(1), bt10 BIT(10), e ENUM('a','b'),
           st SET('a','b','c'), j JSON, f FLOAT, d DOUBLE, n INT{columns})"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t VALUES (1, 18446744073709551615, 1.50, 'ü漢', 'café', '汉字', x'00ff10',
           '2024-05-01', '2024-05-01 08:00:00.123456', '-01:02:03', '2024-05-01 08:00:00.250',
           2024, b'1', b'1000000001', 'b', 'a,c', '{{\"k\": [1, 2]}}', 0.1, 0.1, NULL{values})"
    ))
    .await?;
    Ok(format!("{file}:{offset}"))
}
