//! Import of an Apache ShardingSphere rule file (the YAML of ShardingSphere-JDBC or -Proxy,
//! 4.x and 5.x): its data sources become the sharded source's instances (one per server, as
//! Sluice reads one binlog per server), and the `actualDataNodes` of its sharding tables become
//! the logical tables.
//!
//! Read: `dataSources` (`jdbcUrl` or `url`, `username`, `password`); the tables of the
//! `!SHARDING` rule (5.x `rules:`) or of `shardingRule` (4.x), each `actualDataNodes` (inline
//! expressions, comma-separated; when absent, the table of that name in every data source);
//! `databaseName` (5.x) or `schemaName` (4.x), the logical database. Not read: `autoTables`,
//! sharding algorithms (Sluice needs where rows are, not how they were placed), broadcast and
//! single tables.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::raw::{OneOrMany, RawInstance, RawLogical};
use crate::shards::expand_tables;

/// The instances and logical tables a rule file describes.
#[derive(Debug)]
pub(super) struct Imported {
    pub(super) instances: Vec<RawInstance>,
    pub(super) logical_tables: Vec<RawLogical>,
}

/// A data source: the server it is on and its database there.
struct DataSource {
    instance: String,
    database: String,
}

/// Reads rule file `text`; `database` (when given) names the logical database instead of the
/// file's `databaseName` / `schemaName`.
pub(super) fn import(text: &str, database: Option<&str>) -> Result<Imported, String> {
    let doc: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| format!("not a ShardingSphere YAML file: {e}"))?;
    let logical_db = match database {
        Some(d) => d.to_string(),
        None => ["databaseName", "schemaName"]
            .iter()
            .find_map(|k| doc.get(k).and_then(Value::as_str))
            .map(str::to_string)
            .ok_or("the file has no databaseName (or schemaName): name the logical database with source.logical_database")?,
    };
    let sources = doc
        .get("dataSources")
        .and_then(Value::as_mapping)
        .ok_or("the file has no dataSources")?;
    let mut instances: Vec<RawInstance> = Vec::new();
    let mut by_name: BTreeMap<String, DataSource> = BTreeMap::new();
    for (name, ds) in sources {
        let name = name.as_str().ok_or("a data source name is not text")?;
        let url = ["jdbcUrl", "url", "jdbc-url"]
            .iter()
            .find_map(|k| ds.get(k).and_then(Value::as_str))
            .ok_or_else(|| format!("data source {name} has no jdbcUrl (or url)"))?;
        let (host, port, db) = parse_jdbc(url).map_err(|e| format!("data source {name}: {e}"))?;
        let user = ds
            .get("username")
            .and_then(scalar)
            .unwrap_or_else(|| "root".into());
        let password = ds.get("password").and_then(scalar).unwrap_or_default();
        let instance = format!(
            "{}_{port}",
            host.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        if !instances.iter().any(|i| i.name == instance) {
            let auth = if password.is_empty() {
                escape(&user)
            } else {
                format!("{}:{}", escape(&user), escape(&password))
            };
            instances.push(RawInstance {
                name: instance.clone(),
                url: sluice_core::SecretUrl::new(format!("mysql://{auth}@{host}:{port}")),
                server_id: None,
            });
        }
        by_name.insert(
            name.to_string(),
            DataSource {
                instance,
                database: db,
            },
        );
    }
    let tables = sharding_tables(&doc).ok_or(
        "the file has no sharding tables (rules: - !SHARDING tables:, or shardingRule: tables:)",
    )?;
    let mut logical_tables = Vec::new();
    for (logic, rule) in tables {
        let logic = logic.as_str().ok_or("a table name is not text")?;
        let nodes = match rule.get("actualDataNodes").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            // Without actualDataNodes the table is in every data source under its own name.
            None => by_name
                .keys()
                .map(|ds| format!("{ds}.{logic}"))
                .collect::<Vec<_>>()
                .join(","),
        };
        let mut shards: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for node in split_nodes(&nodes) {
            for t in expand_tables(node).map_err(|e| format!("table {logic}: {e}"))? {
                let ds = by_name.get(&t.db).ok_or_else(|| {
                    format!(
                        "table {logic}: actualDataNodes names data source {}, which dataSources does not define",
                        t.db
                    )
                })?;
                shards
                    .entry(ds.instance.clone())
                    .or_default()
                    .push(format!("{}.{}", ds.database, t.table));
            }
        }
        logical_tables.push(RawLogical {
            name: format!("{logical_db}.{logic}"),
            shards: shards
                .into_iter()
                .map(|(i, t)| (i, OneOrMany::Many(t)))
                .collect(),
        });
    }
    Ok(Imported {
        instances,
        logical_tables,
    })
}

/// The `tables` mapping of the sharding rule: 5.x `rules: [!SHARDING {tables}]`, 4.x
/// `shardingRule: {tables}`.
fn sharding_tables(doc: &Value) -> Option<&serde_yaml_ng::Mapping> {
    if let Some(rules) = doc.get("rules").and_then(Value::as_sequence) {
        for r in rules {
            if let Value::Tagged(t) = r {
                if t.tag == "SHARDING" {
                    return t.value.get("tables").and_then(Value::as_mapping);
                }
            }
        }
    }
    doc.get("shardingRule")
        .and_then(|r| r.get("tables"))
        .and_then(Value::as_mapping)
}

/// Node expressions separated by commas outside `${...}`.
fn split_nodes(nodes: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut from) = (0i32, 0);
    for (i, c) in nodes.char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(nodes[from..i].trim());
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(nodes[from..].trim());
    out.retain(|n| !n.is_empty());
    out
}

/// `jdbc:mysql://host:port/db?params` (also `jdbc:mariadb:`, or without `jdbc:`) as (host,
/// port, database).
fn parse_jdbc(url: &str) -> Result<(String, u16, String), String> {
    let rest = url.strip_prefix("jdbc:").unwrap_or(url);
    let rest = ["mysql://", "mariadb://"]
        .iter()
        .find_map(|p| rest.strip_prefix(p))
        .ok_or_else(|| format!("{url:?} is not a jdbc:mysql:// or jdbc:mariadb:// URL"))?;
    let (hostport, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("{url:?} names no database"))?;
    if hostport.contains(',') {
        return Err(format!(
            "{url:?} lists several hosts; give each server its own data source"
        ));
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse()
                .map_err(|_| format!("{url:?}: {p:?} is not a port"))?,
        ),
        None => (hostport, 3306),
    };
    let db = path.split(['?', ';']).next().unwrap_or_default();
    if host.is_empty() || db.is_empty() {
        return Err(format!("{url:?} needs a host and a database"));
    }
    Ok((host.to_string(), port, db.to_string()))
}

/// A YAML scalar as text (a password may be written as a number).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Percent-encodes what a URL's user or password part cannot hold as is.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ShardingSphere-JDBC 5.x, as its documentation shows it.
    const JDBC_5: &str = r#"
databaseName: sharding_db
mode:
  type: Standalone
dataSources:
  ds_0:
    dataSourceClassName: com.zaxxer.hikari.HikariDataSource
    driverClassName: com.mysql.jdbc.Driver
    jdbcUrl: jdbc:mysql://10.0.0.1:3306/demo_ds_0?serverTimezone=UTC&useSSL=false
    username: root
    password:
  ds_1:
    dataSourceClassName: com.zaxxer.hikari.HikariDataSource
    jdbcUrl: jdbc:mysql://10.0.0.1:3306/demo_ds_1?serverTimezone=UTC
    username: root
    password:
  ds_2:
    dataSourceClassName: com.zaxxer.hikari.HikariDataSource
    jdbcUrl: jdbc:mysql://10.0.0.2:3307/demo_ds_2
    username: app
    password: p@ss
rules:
- !SHARDING
  tables:
    t_order:
      actualDataNodes: ds_${0..2}.t_order_${0..1}
      tableStrategy:
        standard:
          shardingColumn: order_id
          shardingAlgorithmName: t_order_inline
    t_order_item:
      actualDataNodes: ds_0.t_order_item_0,ds_${1..2}.t_order_item_${[0, 1]}
  shardingAlgorithms:
    t_order_inline:
      type: INLINE
      props:
        algorithm-expression: t_order_${order_id % 2}
- !BROADCAST
  tables:
  - t_address
"#;

    #[test]
    fn a_jdbc_5_rule_file_gives_one_instance_per_server_and_its_logical_tables() {
        let got = import(JDBC_5, None).expect("imports");
        let inst: Vec<(&str, &str)> = got
            .instances
            .iter()
            .map(|i| (i.name.as_str(), i.url.expose()))
            .collect();
        assert_eq!(
            inst,
            vec![
                ("10_0_0_1_3306", "mysql://root@10.0.0.1:3306"),
                ("10_0_0_2_3307", "mysql://app:p%40ss@10.0.0.2:3307"),
            ]
        );
        let order = &got.logical_tables[0];
        assert_eq!(order.name, "sharding_db.t_order");
        let shards: Vec<(String, Vec<String>)> = order
            .shards
            .iter()
            .map(|(i, t)| match t {
                OneOrMany::Many(v) => (i.clone(), v.clone()),
                OneOrMany::One(v) => (i.clone(), vec![v.clone()]),
            })
            .collect();
        assert_eq!(
            shards,
            vec![
                (
                    "10_0_0_1_3306".to_string(),
                    vec![
                        "demo_ds_0.t_order_0".to_string(),
                        "demo_ds_0.t_order_1".into(),
                        "demo_ds_1.t_order_0".into(),
                        "demo_ds_1.t_order_1".into()
                    ]
                ),
                (
                    "10_0_0_2_3307".to_string(),
                    vec![
                        "demo_ds_2.t_order_0".to_string(),
                        "demo_ds_2.t_order_1".into()
                    ]
                ),
            ]
        );
        let items = &got.logical_tables[1];
        assert_eq!(items.name, "sharding_db.t_order_item");
        let count: usize = items
            .shards
            .values()
            .map(|t| match t {
                OneOrMany::Many(v) => v.len(),
                OneOrMany::One(_) => 1,
            })
            .sum();
        assert_eq!(count, 5);
        // The logical database can be named in the project instead.
        let other = import(JDBC_5, Some("shop")).expect("imports");
        assert_eq!(other.logical_tables[0].name, "shop.t_order");
    }

    #[test]
    fn a_proxy_4_rule_file_and_tables_without_data_nodes() {
        let proxy = r#"
schemaName: sharding_db
dataSources:
  ds_0:
    url: jdbc:mysql://127.0.0.1:3316/db_a
    username: root
    password: 123
  ds_1:
    url: jdbc:mariadb://127.0.0.1:3317/db_b
    username: root
    password: 123
shardingRule:
  tables:
    t_user: {}
"#;
        let got = import(proxy, None).expect("imports");
        assert_eq!(got.instances.len(), 2);
        assert_eq!(
            got.instances[0].url.expose(),
            "mysql://root:123@127.0.0.1:3316"
        );
        assert_eq!(got.logical_tables[0].name, "sharding_db.t_user");
        assert_eq!(got.logical_tables[0].shards.len(), 2);
    }

    #[test]
    fn what_cannot_be_imported_is_named() {
        let e = import("dataSources: {}\n", None).expect_err("no database");
        assert!(e.contains("logical_database"), "{e}");
        let e = import(
            "databaseName: d\ndataSources:\n  ds_0: {jdbcUrl: 'jdbc:postgresql://h/d'}\n",
            None,
        )
        .expect_err("not mysql");
        assert!(e.contains("ds_0") && e.contains("jdbc:mysql://"), "{e}");
        let e = import(
            "databaseName: d\ndataSources:\n  ds_0: {jdbcUrl: 'jdbc:mysql://h:1/d'}\nshardingRule:\n  tables:\n    t: {actualDataNodes: 'ds_${0..1}.t'}\n",
            None,
        )
        .expect_err("unknown data source");
        assert!(e.contains("ds_1") && e.contains("dataSources"), "{e}");
    }
}
