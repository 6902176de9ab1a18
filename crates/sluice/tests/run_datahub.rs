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

/// Runs the SDK (`dev/services datahub-python -c SCRIPT ARGS`); returns its output.
fn sdk(script: &str, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new(repo_root().join("dev/services"))
        .args(["datahub-python", "-c", script])
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_topics_are_checked_and_added_columns_need_schema_evolution() -> TestResult {
    ensure_up(&[Service::Mariadb, Service::Datahub]);
    key_env();
    let db = unique_name("dhs");
    let mut c = conn().await?;
    let start = new_table(&mut c, &db).await?;
    write_range(&mut c, &db, 1, 10).await?;

    // A topic made beforehand whose field amt has another type: the schema step stops, naming
    // the field and both types.
    sdk(
        "import sys\nfrom datahub import DataHub\nfrom datahub.models import RecordSchema, FieldType\n\
         dh = DataHub('sluice', 'sluice-secret', sys.argv[1])\n\
         s = RecordSchema.from_lists(['sluice_op','sluice_commit_time','sluice_sequence','sluice_image','id','v','amt'],\
         [FieldType.STRING, FieldType.TIMESTAMP, FieldType.BIGINT, FieldType.STRING, FieldType.BIGINT, FieldType.STRING, FieldType.DOUBLE])\n\
         dh.create_tuple_topic(sys.argv[2], sys.argv[3], 1, 1, s, 'made by hand')\n",
        &[&datahub_endpoint(), DH_PROJECT, &format!("{db}_t_bad")],
    )?;
    let dir = temp_dir(&format!("{db}-bad"));
    let file = datahub_project(
        &dir,
        &format!("{db}-bad"),
        &db,
        &datahub_endpoint(),
        &start,
        "topic: \"{db}_{table}_bad\"",
    );
    let err = run_until_caught_up(&file)
        .expect_err("a field of another type")
        .to_string();
    assert!(
        err.contains("field amt is double") && err.contains("as decimal"),
        "{err}"
    );

    // A column added while the project runs stops it, naming table, column and the fix...
    let dir = temp_dir(&format!("{db}-evolve"));
    let file = datahub_project(
        &dir,
        &format!("{db}-evolve"),
        &db,
        &datahub_endpoint(),
        &start,
        "",
    );
    run_until_caught_up(&file)?;
    c.query_drop(format!("ALTER TABLE {db}.t ADD COLUMN note VARCHAR(10)"))
        .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t VALUES (100, 'x', 1.00, 'hello')"
    ))
    .await?;
    let err = run_until_caught_up(&file)
        .expect_err("an added column")
        .to_string();
    assert!(
        err.contains("no field note") && err.contains("schema_evolution: append"),
        "{err}"
    );
    // ...and with schema_evolution: append the field is appended and the run goes on from its
    // checkpoint: nothing before the column is lost, the new row carries it.
    let yaml = std::fs::read_to_string(&file)?.replace(
        "  access_key_env: SLUICE_TEST_DATAHUB_KEY\n",
        "  access_key_env: SLUICE_TEST_DATAHUB_KEY\n  schema_evolution: append\n",
    );
    std::fs::write(&file, yaml)?;
    run_until_caught_up(&file)?;
    let recs = datahub_read(&datahub_endpoint(), &format!("{db}_t"))?;
    let last = recs
        .iter()
        .find(|r| r["fields"]["id"] == "100")
        .ok_or("row 100 missing")?;
    assert_eq!(last["fields"]["note"], "hello", "{last}");
    let first = recs
        .iter()
        .find(|r| r["fields"]["id"] == "1")
        .ok_or("row 1 missing")?;
    assert_eq!(first["fields"]["note"], Json::Null, "{first}");
    assert_eq!(
        rebuild_tuple(&recs, "id", &["id", "v", "amt"])?,
        source_rows(&mut c, &db).await?
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_over_one_megabyte_stops_the_project_naming_table_key_and_position() -> TestResult
{
    ensure_up(&[Service::Mariadb, Service::Datahub]);
    key_env();
    let db = unique_name("dhbig");
    let mut c = conn().await?;
    let (file, offset) = sluice_source_mysql_position(&mut c).await?;
    c.query_drop(format!("CREATE DATABASE {db}")).await?;
    c.query_drop(format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, b LONGBLOB)"
    ))
    .await?;
    c.query_drop(format!(
        "INSERT INTO {db}.t VALUES (1, 'small'), (2, REPEAT('x', 1100000))"
    ))
    .await?;
    let dir = temp_dir(&db);
    let path = datahub_project(
        &dir,
        &db,
        &db,
        &datahub_endpoint(),
        &format!("{file}:{offset}"),
        "",
    );
    let err = run_until_caught_up(&path)
        .expect_err("an oversized record")
        .to_string();
    assert!(
        err.contains(&format!("`{db}`.`t`"))
            && err.contains("(key 2)")
            && err.contains("mariadb-bin.")
            && err.contains("1048576 per record"),
        "{err}"
    );
    c.query_drop(format!("DROP DATABASE {db}")).await?;
    Ok(())
}

#[test]
fn wrong_settings_are_refused_when_the_file_is_read_and_secrets_never_show() -> TestResult {
    key_env();
    let dir = temp_dir(&unique_name("dhcfg"));
    let check = |extra: &str, want: &[&str]| -> TestResult {
        let file = datahub_project(&dir, "dhcfg", "dhcfg", &datahub_endpoint(), "now", extra);
        let out = sluice()
            .args(["run", "-f"])
            .arg(&file)
            .args(["--until", "caught-up"])
            .output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{extra}: accepted\n{text}");
        for w in want {
            assert!(text.contains(w), "{extra}: {w:?} missing in\n{text}");
        }
        assert!(
            !text.contains("sluice-secret"),
            "a secret in the output:\n{text}"
        );
        Ok(())
    };
    check(
        "topic: \"{db}-{table}\"",
        &["destination.topic", "letters, digits and _"],
    )?;
    check(
        "topic: \"_{table}\"",
        &["destination.topic", "start with a letter"],
    )?;
    check(
        "brokers: 127.0.0.1:9092",
        &[
            "destination.brokers",
            "not a field of a DataHub destination",
        ],
    )?;
    check(
        "format: canal",
        &["destination.format", "record_type: blob"],
    )?;
    check("record_type: blob\nformat: nope", &["destination.format"])?;
    check("shard_count: 0", &["destination.shard_count"])?;
    check(
        "protocol: thrift",
        &["destination.protocol", "protobuf or json"],
    )?;
    // A wrong access key is refused by the server, named, with the fix, and never printed.
    let file = datahub_project(&dir, "dhcfg", "dhcfg", &datahub_endpoint(), "now", "");
    let yaml = std::fs::read_to_string(&file)?.replace(
        "access_key_env: SLUICE_TEST_DATAHUB_KEY",
        "access_key: not-the-sluice-secret",
    );
    std::fs::write(&file, yaml)?;
    ensure_up(&[Service::Mariadb, Service::Datahub]);
    let out = sluice()
        .args(["run", "-f"])
        .arg(&file)
        .args(["--until", "caught-up"])
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("Unauthorized") && text.contains("access_key"),
        "{text}"
    );
    assert!(
        !text.contains("not-the-sluice-secret"),
        "a secret in the output:\n{text}"
    );
    Ok(())
}
