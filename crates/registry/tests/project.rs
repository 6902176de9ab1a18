//! Tests of the project file with every registered type: defaults, examples, errors naming
//! file, line and field, secrets.

use std::path::{Path, PathBuf};

use sluice_core::TableId;
use sluice_pipeline::project::{default_server_id, line_of};
use sluice_pipeline::Project;
use sluice_registry::{Destination, MysqlSpec};
use sluice_source_mysql::live::StartAt;

/// The project's source as the MySQL type it is.
fn mysql(p: &Project) -> &MysqlSpec {
    p.source
        .as_any()
        .downcast_ref::<MysqlSpec>()
        .expect("a MySQL-family source")
}

const GOOD: &str = "name: p1
source:
  type: mariadb
  url: mysql://root@127.0.0.1:3316
destination:
  type: kafka
  brokers: 127.0.0.1:9092
  format: oms
objects:
  include: [\"shop.*\"]
";

#[test]
fn a_good_file_gets_defaults() {
    let p = sluice_registry::parse(GOOD, "p.yaml", Path::new("/tmp")).expect("valid");
    let Some(Destination::Kafka(k)) = p.destination.as_any().downcast_ref::<Destination>() else {
        panic!("a Kafka destination");
    };
    assert_eq!(k.config.routing.mode, sluice_mq::PartitionMode::Hash);
    assert_eq!(mysql(&p).start, StartAt::Now);
    assert_eq!(p.data_dir, PathBuf::from("/tmp/sluice-data"));
    assert!(p.router.selects(&TableId::new("shop", "x")));
}

#[test]
fn default_replica_ids_differ_by_project_and_instance_and_stay_put() {
    let a = sluice_registry::parse(GOOD, "p.yaml", Path::new("/tmp")).expect("valid");
    let b = sluice_registry::parse(
        &GOOD.replace("name: p1", "name: p2"),
        "p.yaml",
        Path::new("/tmp"),
    )
    .expect("valid");
    let (a, b) = (mysql(&a).server_id, mysql(&b).server_id);
    assert_ne!(a, b);
    assert_eq!(a, default_server_id("p1"));
    assert!((4_000_000_000..4_200_000_000).contains(&a));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let p = sluice_registry::load(&dir.join("sharded-from-shardingsphere.yaml")).expect("loads");
    let ids: Vec<u32> = p.shards.iter().map(|s| s.server_id).collect();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn a_shardingsphere_file_is_for_a_sharded_source_only_and_alone() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let with = |extra: &str| {
        GOOD.replace(
            "  url: mysql://root@127.0.0.1:3316\n",
            &format!("  url: mysql://root@127.0.0.1:3316\n{extra}"),
        )
    };
    let e = sluice_registry::parse(
        &with("  shardingsphere: shardingsphere/config-sharding.yaml\n"),
        "p.yaml",
        &dir,
    )
    .expect_err("not sharded");
    assert!(e.to_string().contains("source.type: sharded"), "{e}");
    let e = sluice_registry::parse(
        &with("  shardingsphere: nowhere.yaml\n").replace("type: mariadb", "type: sharded"),
        "p.yaml",
        &dir,
    )
    .expect_err("no file");
    assert!(e.to_string().contains("nowhere.yaml"), "{e}");
}

#[test]
fn every_example_project_file_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("examples/") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "yaml") {
            sluice_registry::load(&path).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n > 0, "no example in {}", dir.display());
}

#[test]
fn errors_name_file_line_and_field() {
    let e = sluice_registry::parse(
        &GOOD
            .replace("partitionz", "x")
            .replace("format: oms", "format: omz"),
        "p.yaml",
        Path::new("."),
    )
    .expect_err("bad format");
    assert_eq!(
        e.to_string().split(" is not").next(),
        Some("p.yaml:8: destination.format: \"omz\"")
    );
    let e = sluice_registry::parse(
        &GOOD.replace("brokers:", "brokerz:"),
        "p.yaml",
        Path::new("."),
    )
    .expect_err("unknown field");
    let msg = e.to_string();
    assert!(
        msg.starts_with("p.yaml:7: destination.brokerz: unknown field `brokerz`, expected one of"),
        "{msg}"
    );
    let e = sluice_registry::parse("name: [", "p.yaml", Path::new(".")).expect_err("broken yaml");
    assert!(e.to_string().starts_with("p.yaml:1"), "{e}");
}

#[test]
fn an_error_about_one_url_names_that_url_s_line() {
    let db = GOOD
        .replace("  type: kafka\n", "  type: mariadb\n")
        .replace("  format: oms\n", "")
        .replace(
            "  brokers: 127.0.0.1:9092\n",
            "  url: \"mysql://x:1:2:3\"\n",
        );
    let e = sluice_registry::parse(&db, "p.yaml", Path::new(".")).expect_err("bad url");
    assert!(
        e.to_string().starts_with("p.yaml:7: destination.url: "),
        "{e}"
    );
    let sharded = "name: s
source:
  type: sharded
  instances:
    - name: a
      url: mysql://root@127.0.0.1:3317
    - name: b
      url: \"mysql://root:1:2@x\"
  logical_tables:
    - name: d.t
      shards: {a: d.t, b: d.t}
destination:
  type: mariadb
  url: mysql://root@127.0.0.1:3316
objects:
  include: [\"d.*\"]
";
    assert_eq!(line_of(sharded, "source.instances[1].url"), Some(8));
    assert_eq!(line_of(sharded, "source.instances[0].name"), Some(5));
    assert_eq!(line_of(sharded, "destination.url"), Some(14));
    assert_eq!(line_of(sharded, "objects.include"), Some(16));
}

#[test]
fn a_password_that_breaks_a_url_is_never_shown() {
    for (field, yaml) in [
        (
            "source.url",
            GOOD.replace("mysql://root@", "mysql://root:pa#s/wd@"),
        ),
        (
            "destination.url",
            GOOD.replace("  type: kafka\n", "  type: mariadb\n")
                .replace("  format: oms\n", "")
                .replace(
                    "  brokers: 127.0.0.1:9092\n",
                    "  url: mysql://app:pa#s/wd@127.0.0.1:2881\n",
                ),
        ),
    ] {
        let e = sluice_registry::parse(&yaml, "p.yaml", Path::new(".")).expect_err(field);
        let msg = format!("{e} {e:?}");
        assert!(msg.contains(field), "{msg}");
        assert!(!msg.contains("pa#s"), "the password shows: {msg}");
    }
    let p = sluice_registry::parse(
        &GOOD
            .replace("mysql://root@", "mysql://root:hunter2@")
            .replace(
                "  format: oms\n",
                "  format: oms\n  properties:\n    sasl.password: swordfish\n",
            ),
        "p.yaml",
        Path::new("."),
    )
    .expect("valid");
    let shown = format!("{p:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("swordfish"), "{shown}");
    assert_eq!(
        mysql(&p).source.url().expose(),
        "mysql://root:hunter2@127.0.0.1:3316"
    );
}

#[test]
fn a_field_of_another_destination_type_is_an_error_naming_it_and_its_line() {
    let db = GOOD
        .replace(
            "  type: kafka\n",
            "  type: mariadb\n  url: mysql://root@127.0.0.1:3317\n",
        )
        .replace("  format: oms\n", "");
    let e = sluice_registry::parse(&db, "p.yaml", Path::new("/tmp"))
        .expect_err("brokers on a database");
    let text = e.to_string();
    assert!(
        text.starts_with(
            "p.yaml:8: destination.brokers: brokers is not a field of a database destination"
        ),
        "{text}"
    );
    let kafka = GOOD.replace("  format: oms\n", "  format: oms\n  writers: 3\n");
    let e =
        sluice_registry::parse(&kafka, "p.yaml", Path::new("/tmp")).expect_err("writers on Kafka");
    assert!(
        e.to_string().starts_with(
            "p.yaml:9: destination.writers: writers is not a field of a Kafka destination"
        ),
        "{e}"
    );
    let fine = db.replace("  brokers: 127.0.0.1:9092\n", "");
    assert!(sluice_registry::parse(&fine, "p.yaml", Path::new("/tmp")).is_ok());
}

#[test]
fn a_postgres_source_names_its_slot_and_publication_and_refuses_what_is_not_its() {
    use sluice_registry::PostgresSpec;
    let pg = GOOD.replace(
        "  type: mariadb\n  url: mysql://root@127.0.0.1:3316\n",
        "  type: postgres\n  url: postgres://sluice@127.0.0.1:5433/shop\n",
    );
    let p = sluice_registry::parse(
        &pg.replace("name: p1", "name: Shop-To.Kafka"),
        "p.yaml",
        Path::new("/tmp"),
    )
    .expect("valid");
    let s = &p
        .source
        .as_any()
        .downcast_ref::<PostgresSpec>()
        .expect("a PostgreSQL source")
        .source;
    assert_eq!(s.slot(), "sluice_shop_to_kafka", "from the project's name");
    assert_eq!(s.publication(), "sluice_shop_to_kafka", "the slot's name");
    // Host form: the database and the default user and port.
    let by_host = pg.replace(
        "  url: postgres://sluice@127.0.0.1:5433/shop\n",
        "  host: 127.0.0.1\n  database: shop\n  slot: mine\n  publication: pubs\n",
    );
    let p = sluice_registry::parse(&by_host, "p.yaml", Path::new("/tmp")).expect("valid");
    let s = &p
        .source
        .as_any()
        .downcast_ref::<PostgresSpec>()
        .expect("postgres")
        .source;
    assert_eq!((s.slot(), s.publication()), ("mine", "pubs"));
    for (bad, says) in [
        (
            pg.replace("/shop", ""),
            "source.url: postgres://sluice@127.0.0.1:5433 names no database",
        ),
        (
            pg.replace("objects:", "stages:\n  start: earliest\nobjects:"),
            "stages.start: \"earliest\": a postgres project starts now",
        ),
        (
            pg.replace("/shop\n", "/shop\n  slot: Bad-Name\n"),
            "source.slot: source.slot \"Bad-Name\"",
        ),
        (
            pg.replace("/shop\n", "/shop\n  server_id: 7\n"),
            "source.server_id: a postgres source has no replica id",
        ),
        (
            GOOD.replace("3316\n", "3316\n  slot: s\n"),
            "source.slot: a mariadb source has no such setting",
        ),
        (
            GOOD.replace("3316\n", "3316\n  database: shop\n"),
            "source.database: only a postgres source given by host",
        ),
    ] {
        let e = sluice_registry::parse(&bad, "p.yaml", Path::new("/tmp")).expect_err(says);
        assert!(e.to_string().contains(says), "{e}");
    }
}

/// The sections of issue 21 name their field and line when they are wrong.
#[test]
fn tls_security_and_registry_mistakes_name_their_field_and_line() {
    let err = |yaml: &str| {
        sluice_registry::parse(yaml, "p.yaml", Path::new("/tmp"))
            .expect_err("refused")
            .to_string()
    };
    let e = err(&GOOD.replace(
        "  format: oms\n",
        "  format: oms\n  security:\n    protocol: sasl_ssl\n",
    ));
    assert!(e.contains("destination.security.sasl_mechanism"), "{e}");
    let e = err(&GOOD.replace("  format: oms\n", "  format: avro\n"));
    assert!(e.contains("destination.schema_registry"), "{e}");
    let e = err(&GOOD.replace(
        "  format: oms\n",
        "  format: oms\n  schema_registry:\n    url: http://127.0.0.1:8281\n",
    ));
    assert!(
        e.starts_with("p.yaml:9: destination.schema_registry: only format avro"),
        "{e}"
    );
    let e = err(&GOOD.replace(
        "  url: mysql://root@127.0.0.1:3316\n",
        "  url: mysql://root@127.0.0.1:3316\n  tls:\n    mode: sometimes\n",
    ));
    assert!(e.starts_with("p.yaml:6: source.tls.mode:"), "{e}");
    let e = err(&GOOD.replace(
        "  url: mysql://root@127.0.0.1:3316\n",
        "  url: mysql://root@127.0.0.1:3316\n  tls:\n    mode: verify_ca\n    ca_file: /nonexistent/ca.pem\n",
    ));
    assert!(
        e.contains("source.tls.ca_file") && e.contains("/nonexistent/ca.pem"),
        "{e}"
    );
    let ok = GOOD.replace(
        "  format: oms\n",
        "  format: avro\n  schema_registry:\n    url: http://127.0.0.1:8281\n  security:\n    protocol: ssl\n",
    );
    assert!(sluice_registry::parse(&ok, "p.yaml", Path::new("/tmp")).is_ok());
}
