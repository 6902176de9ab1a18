//! Schema sync: the CREATE TABLE for a source definition, type comparison, and preparing the
//! destination's tables.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::sink::SinkError;
use sluice_core::{TableDef, TableId, TableSpec};

use crate::{q, unavailable, SHARD_COLUMN};

/// Normalized column type for comparing source and destination (`int(11)` -> `int`).
pub(crate) fn normalized_type(t: &str) -> String {
    let t = t.to_ascii_lowercase();
    let base = t.split_whitespace().collect::<Vec<_>>().join(" ");
    // Display widths of integer types are cosmetic.
    for int in ["tinyint", "smallint", "mediumint", "bigint", "int"] {
        if let Some(rest) = base.strip_prefix(&format!("{int}(")) {
            if let Some(close) = rest.find(')') {
                return format!("{int}{}", &rest[close + 1..]);
            }
        }
    }
    base
}

/// The CREATE TABLE for `def` at `dest`. On OceanBase, text columns become utf8mb4 with
/// `utf8mb4_bin` (for `_bin` collations) or `utf8mb4_general_ci` (all others).
pub fn create_table_sql(
    dest: &TableId,
    def: &TableDef,
    oceanbase: bool,
    shard_column: bool,
    shard_in_key: bool,
) -> String {
    let mut parts = Vec::new();
    for c in &def.columns {
        let mut s = format!("{} ", q(&c.name));
        if c.json {
            s.push_str("json");
        } else {
            s.push_str(&c.column_type);
        }
        if let (Some(cs), Some(co), false) = (&c.charset, &c.collation, c.json) {
            if oceanbase {
                let co = if co.ends_with("_bin") {
                    "utf8mb4_bin"
                } else {
                    "utf8mb4_general_ci"
                };
                s.push_str(&format!(" CHARACTER SET utf8mb4 COLLATE {co}"));
            } else {
                s.push_str(&format!(" CHARACTER SET {cs} COLLATE {co}"));
            }
        }
        s.push_str(if c.nullable { " NULL" } else { " NOT NULL" });
        if let Some(d) = &c.default {
            s.push_str(&format!(" DEFAULT {d}"));
        }
        if c.auto_increment {
            s.push_str(" AUTO_INCREMENT");
        }
        parts.push(s);
    }
    if shard_column {
        parts.push(format!(
            "{} VARCHAR(255) NOT NULL DEFAULT ''",
            q(SHARD_COLUMN)
        ));
    }
    if !def.primary_key.is_empty() {
        let mut k: Vec<String> = def.primary_key.iter().map(|c| q(c)).collect();
        if shard_column && shard_in_key {
            k.push(q(SHARD_COLUMN));
        }
        parts.push(format!("PRIMARY KEY ({})", k.join(", ")));
    }
    for i in &def.indexes {
        let cols: Vec<String> = i
            .columns
            .iter()
            .map(|(c, p)| match p {
                Some(n) => format!("{}({n})", q(c)),
                None => q(c),
            })
            .collect();
        parts.push(format!(
            "{}KEY {} ({})",
            if i.unique { "UNIQUE " } else { "" },
            q(&i.name),
            cols.join(", ")
        ));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {}.{} (\n  {}\n)",
        q(&dest.db),
        q(&dest.table),
        parts.join(",\n  ")
    )
}

/// Schema sync of `tables` (at `dests`) on one connection: creates each missing database and
/// table from its source definition, or checks an existing table's columns, naming the first
/// that differs. A logical table (sharded) without a primary key is refused; other tables
/// without one are applied by a unique key or by whole rows (see keyless.rs).
pub(crate) async fn prepare_tables(
    conn: &mut Conn,
    tables: &[TableSpec],
    dests: &[TableId],
    oceanbase: bool,
    sharded: bool,
    in_key: bool,
) -> Result<(), SinkError> {
    for (spec, dest) in tables.iter().zip(dests) {
        let Some(def) = &spec.def else { continue };
        if def.primary_key.is_empty() && sharded {
            return Err(SinkError::Config(format!(
                "the logical table {dest} (from {}) has no primary key; a logical table needs one \
                 (its rows from every shard are told apart and applied by key, as OMS requires); \
                 add one at the source",
                spec.dest
            )));
        }
        conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", q(&dest.db)))
            .await
            .map_err(unavailable("create the database"))?;
        let have: Vec<(String, String)> = conn
            .exec(
                "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR) FROM information_schema.columns \
                 WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                (&dest.db, &dest.table),
            )
            .await
            .map_err(unavailable("read the destination table"))?;
        if have.is_empty() {
            let unknown: Vec<&str> = def
                .columns
                .iter()
                .filter(|c| c.column_type.is_empty())
                .map(|c| c.name.as_str())
                .collect();
            if !unknown.is_empty() {
                return Err(SinkError::Config(format!(
                    "{dest} is not at the destination, and its definition at the start position \
                     is not fully known: the type of {} was changed or the column dropped since; \
                     create the table at the destination as it was at the start position, or \
                     start later",
                    unknown.join(", ")
                )));
            }
            // IF NOT EXISTS: the parts of a sharded project create it concurrently.
            let sql = create_table_sql(dest, def, oceanbase, sharded, in_key);
            conn.query_drop(&sql)
                .await
                .map_err(|e| SinkError::Config(format!("creating {} failed: {e}\n{sql}", dest)))?;
            continue;
        }
        if sharded && !have.iter().any(|(n, _)| n == SHARD_COLUMN) {
            let sql = format!(
                "ALTER TABLE {}.{} ADD COLUMN {} VARCHAR(255) NOT NULL DEFAULT ''",
                q(&dest.db),
                q(&dest.table),
                q(SHARD_COLUMN)
            );
            if let Err(e) = conn.query_drop(&sql).await {
                // Another part of the project added it meanwhile.
                if !matches!(&e, mysql_async::Error::Server(s) if s.code == 1060) {
                    return Err(SinkError::Config(format!("{sql}: {e}")));
                }
            }
        }
        for c in &def.columns {
            let Some((_, ty)) = have.iter().find(|(n, _)| n.eq_ignore_ascii_case(&c.name)) else {
                return Err(SinkError::Config(format!(
                    "the existing table {} has no column {}; add it or drop the table to let Sluice create it",
                    dest, c.name
                )));
            };
            if c.column_type.is_empty() {
                // Its type at the start position is not known (see snapshot::past).
                continue;
            }
            let want = if c.json {
                "json".to_string()
            } else {
                normalized_type(&c.column_type)
            };
            let got = normalized_type(ty);
            // MariaDB shows its JSON as longtext.
            let json_alias = want == "json" && got == "longtext";
            if want != got && !json_alias {
                return Err(SinkError::Config(format!(
                    "the existing table {} has column {} as {ty}, the source has {}; make them the same type",
                    dest, c.name, c.column_type
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::ColumnDef;
    use sluice_core::TableDef;

    #[test]
    fn create_table_translates_collations_for_oceanbase() {
        let def = TableDef {
            columns: vec![
                ColumnDef {
                    name: "id".into(),
                    column_type: "int(11)".into(),
                    nullable: false,
                    default: None,
                    charset: None,
                    collation: None,
                    json: false,
                    auto_increment: true,
                },
                ColumnDef {
                    name: "name".into(),
                    column_type: "varchar(20)".into(),
                    nullable: true,
                    default: Some("'x'".into()),
                    charset: Some("latin1".into()),
                    collation: Some("latin1_swedish_ci".into()),
                    json: false,
                    auto_increment: false,
                },
                ColumnDef {
                    name: "code".into(),
                    column_type: "varchar(8)".into(),
                    nullable: false,
                    default: None,
                    charset: Some("utf8mb4".into()),
                    collation: Some("utf8mb4_bin".into()),
                    json: false,
                    auto_increment: false,
                },
            ],
            primary_key: vec!["id".into()],
            indexes: vec![sluice_core::IndexDef {
                name: "u".into(),
                unique: true,
                columns: vec![("code".into(), None), ("name".into(), Some(4))],
            }],
        };
        let ob = create_table_sql(&TableId::new("d", "t"), &def, true, false, false);
        assert!(ob.contains("`name` varchar(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL DEFAULT 'x'"), "{ob}");
        assert!(
            ob.contains("`code` varchar(8) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"),
            "{ob}"
        );
        assert!(ob.contains("`id` int(11) NOT NULL AUTO_INCREMENT"), "{ob}");
        assert!(ob.contains("UNIQUE KEY `u` (`code`, `name`(4))"), "{ob}");
        let maria = create_table_sql(&TableId::new("d", "t"), &def, false, true, true);
        assert!(
            maria.contains("PRIMARY KEY (`id`, `_sluice_shard`)"),
            "{maria}"
        );
        assert!(
            maria.contains("`_sluice_shard` VARCHAR(255) NOT NULL DEFAULT ''"),
            "{maria}"
        );
        assert!(
            maria.contains("CHARACTER SET latin1 COLLATE latin1_swedish_ci"),
            "{maria}"
        );
        assert_eq!(normalized_type("INT(11) unsigned"), "int unsigned");
        assert_eq!(normalized_type("decimal(10,2)"), "decimal(10,2)");
    }
}
