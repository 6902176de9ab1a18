//! What the sink's tests against the harness's MariaDB share.

use std::collections::HashMap;

use sluice_core::sink::SinkError;
use sluice_sink_mysql::{MysqlConfig, MysqlSink};
use sluice_testkit::MARIADB;

/// The harness MariaDB's URL.
pub fn url() -> String {
    format!("mysql://root@{}", MARIADB.get())
}

/// A sink of project `project` into the harness MariaDB with `writers` writers, as a plain
/// project has it (checkpoint rows in `sluice`, foreign-key checks off, not sharded).
pub fn sink(project: &str, writers: usize) -> Result<MysqlSink, SinkError> {
    MysqlSink::new(MysqlConfig {
        url: sluice_core::SecretUrl::new(url()),
        project: project.into(),
        writers,
        meta_db: "sluice".into(),
        ignore_other_ddl: false,
        merge: HashMap::new(),
        shard: None,
        shard_in_key: false,
        foreign_key_checks: false,
        load_data: None,
        tls: None,
    })
}
