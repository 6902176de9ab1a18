//! MariaDB -> DataHub through the harness's DataHub-protocol server, read back by the
//! official SDK (pydatahub, in its own process): TUPLE topics with their metadata columns,
//! BLOB topics in every format, the type map, the topic check and schema evolution.

mod common;

use common::datahub::*;
use common::*;

fn key_env() {
    // The projects read the access key from the environment, as a user's would.
    std::env::set_var("SLUICE_TEST_DATAHUB_KEY", "sluice-secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuple_topics_carry_every_operation_and_rebuild_the_table() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Datahub]);
    key_env();
    let db = unique_name("dht");
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    write_range(&mut c, &db, 1, 60).await?;
    c.query_drop(format!(
        "UPDATE {db}.t SET amt = amt + 1, v = NULL WHERE id % 5 = 0"
    ))
    .await?;
    c.query_drop(format!("DELETE FROM {db}.t WHERE id % 9 = 0"))
        .await?;
    c.query_drop(format!("UPDATE {db}.t SET id = id + 1000 WHERE id = 7"))
        .await?;
    write_range(&mut c, &db, 50, 70).await?;
    let want = source_rows(&mut c, &db).await?;
    for protocol in ["protobuf", "json"] {
        let dir = temp_dir(&format!("{db}-{protocol}"));
        let file = datahub_project(
            &dir,
            &format!("{db}-{protocol}"),
            &db,
            &datahub_endpoint(),
            &start,
            &format!(
                "topic: \"{{db}}_{{table}}_{protocol}\"\nprotocol: {protocol}\nshard_count: 3"
            ),
        );
        run_until_caught_up(&file)?;
        let recs = datahub_read(&datahub_endpoint(), &format!("{db}_t_{protocol}"))?;
        let got = rebuild_tuple(&recs, "id", &["id", "v", "amt"])?;
        assert_eq!(got, want, "{protocol}");
        // The metadata columns come first, then the table's columns.
        let names: Vec<&String> = recs[0]["fields"]
            .as_object()
            .ok_or("fields")?
            .keys()
            .collect();
        for n in [
            "sluice_op",
            "sluice_commit_time",
            "sluice_sequence",
            "sluice_image",
            "id",
            "v",
            "amt",
        ] {
            assert!(names.iter().any(|k| *k == n), "{n} missing in {names:?}");
        }
        // An update is a before and an after record with one sequence, in that order, in the
        // key's shard; every key stays in one shard.
        let mut shard_of: BTreeMap<String, String> = BTreeMap::new();
        let mut updates = 0;
        for (i, r) in recs.iter().enumerate() {
            let f = &r["fields"];
            let id = f["id"].as_str().ok_or("id")?.to_string();
            let shard = r["shard"].as_str().ok_or("shard")?.to_string();
            assert_eq!(
                shard_of.entry(id.clone()).or_insert(shard.clone()),
                &shard,
                "{r}"
            );
            if f["sluice_op"] == "update" && f["sluice_image"] == "B" {
                let after = recs.get(i + 1).ok_or("an update's before image is last")?;
                assert_eq!(after["fields"]["sluice_image"], "A", "{after}");
                assert_eq!(
                    after["fields"]["sluice_sequence"], f["sluice_sequence"],
                    "{after}"
                );
                assert_eq!(after["fields"]["id"], f["id"], "{after}");
                updates += 1;
            }
            assert!(
                f["sluice_commit_time"]
                    .as_str()
                    .is_some_and(|t| t.len() == 16),
                "{r}"
            );
        }
        assert!(updates >= 12, "{updates} updates");
        // The key update went as a delete of 7 and an insert of 1007.
        assert!(recs
            .iter()
            .any(|r| r["fields"]["id"] == "7" && r["fields"]["sluice_op"] == "delete"));
        assert!(shard_of.len() > 30, "{} keys", shard_of.len());
        assert!(
            shard_of
                .values()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == 3,
            "3 shards used"
        );
    }
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_topics_carry_every_format_and_rebuild_the_table() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Datahub]);
    key_env();
    let db = unique_name("dhb");
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    write_range(&mut c, &db, 1, 50).await?;
    c.query_drop(format!(
        "UPDATE {db}.t SET amt = amt + 1, v = NULL WHERE id % 5 = 0"
    ))
    .await?;
    c.query_drop(format!("DELETE FROM {db}.t WHERE id % 9 = 0"))
        .await?;
    let want = source_rows(&mut c, &db).await?;
    for &format in sluice_format::FORMAT_NAMES {
        let suffix = format.replace('-', "_");
        let dir = temp_dir(&format!("{db}-{format}"));
        let file = datahub_project(
            &dir,
            &format!("{db}-{format}"),
            &db,
            &datahub_endpoint(),
            &start,
            &format!("record_type: blob\nformat: {format}\ntopic: \"{{db}}_{{table}}_{suffix}\"\nshard_count: 2"),
        );
        run_until_caught_up(&file)?;
        let recs = datahub_read(&datahub_endpoint(), &format!("{db}_t_{suffix}"))?;
        let msgs = blob_messages(&recs)?;
        let got = if format.starts_with("oms") {
            rebuild_oms(&msgs)?
        } else {
            rebuild(format, &msgs)?
        };
        assert_eq!(got, want, "format {format}");
        for m in msgs.iter().filter(|m| m["headers"]["sluice.op"] != "ddl") {
            assert_eq!(m["headers"]["sluice.db"], db.as_str(), "{m}");
            assert_eq!(m["headers"]["sluice.table"], "t", "{m}");
            assert!(m["key"].as_str().is_some_and(|k| !k.is_empty()), "{m}");
        }
    }
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_type_matrix_reaches_tuple_fields_exactly() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Datahub]);
    key_env();
    let db = unique_name("dhm");
    let mut c = conn().await?;
    c.query_drop("SET SESSION time_zone = '+00:00'").await?;
    let (file, offset) = sluice_source_mysql_position(&mut c).await?;
    let start = format!("{file}:{offset}");
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, biu BIGINT UNSIGNED, bi BIGINT, dec1 DECIMAL(5,2),
           dec60 DECIMAL(60,10), vc VARCHAR(20) CHARACTER SET utf8mb4, vl VARCHAR(20) CHARACTER SET latin1,
           vg VARCHAR(20) CHARACTER SET gbk, ch CHAR(5), vb VARBINARY(8), dt DATE, dt6 DATETIME(6),
           tm TIME, ts3 TIMESTAMP(3) NULL, tz TIMESTAMP NULL, y YEAR, bt1 BIT(1), bt64 BIT(64),
           e ENUM('a','b'), st SET('a','b','c'), j JSON, f FLOAT, d DOUBLE, n INT)"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t VALUES (1, 18446744073709551615, -9223372036854775808, 1.50,
           12345678901234567890123456789012345678901234567890.0123456789, 'ü漢', 'café', '汉字', 'ab ',
           x'00ff10', '2024-05-01', '2024-05-01 08:00:00.123456', '-01:02:03', '2024-05-01 08:00:00.250',
           '0000-00-00 00:00:00', 2024, b'1', b'1111111111111111111111111111111111111111111111111111111111111111',
           'b', 'a,c', '{{\"k\": [1, 2]}}', 0.1, 0.1, NULL)"
    ))
    .await?;
    let dir = temp_dir(&db);
    let path = datahub_project(
        &dir,
        &db,
        &db,
        &datahub_endpoint(),
        &start,
        "protocol: json",
    );
    run_until_caught_up(&path)?;
    let recs = datahub_read(&datahub_endpoint(), &format!("{db}_t"))?;
    let row = &recs
        .iter()
        .find(|r| r["fields"]["id"] == "1")
        .ok_or("no row")?["fields"];
    let want = serde_json::json!({
        "id": "1", "biu": "18446744073709551615", "bi": "-9223372036854775808", "dec1": "1.50",
        "dec60": "12345678901234567890123456789012345678901234567890.0123456789",
        "vc": "ü漢", "vl": "café", "vg": "汉字", "ch": "ab", "vb": "AP8Q", "dt": "2024-05-01",
        "dt6": "2024-05-01 08:00:00.123456", "tm": "-01:02:03", "ts3": "1714550400250000",
        "tz": "0", "y": "2024", "bt1": "1", "bt64": "18446744073709551615", "e": "b", "st": "a,c",
        "j": "{\"k\": [1, 2]}", "f": "0.1", "d": "0.1", "n": null,
    });
    for (k, v) in want.as_object().ok_or("want")? {
        assert_eq!(&row[k], v, "field {k} in {row}");
    }
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}
