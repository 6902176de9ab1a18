//! A table's schema and definition as `information_schema` shows them now.

use std::collections::HashSet;

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sluice_core::{Column, ColumnType, TableId, TableSchema};

use super::{server_error, SnapshotError};
use crate::decode::history::{ColumnInfo, Family, LogicalSchema};

#[derive(Debug)]
struct ColumnRow {
    name: String,
    data_type: String,
    column_type: String,
    charset: Option<String>,
    nullable: bool,
    octets: Option<u64>,
    precision: Option<u64>,
    scale: Option<u64>,
    datetime_precision: Option<u64>,
}

/// The labels of `enum('a','b''c')` / `set(...)` as information_schema shows them.
fn labels(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else {
        return Vec::new();
    };
    let inner = column_type[open + 1..].trim_end_matches(')');
    let mut out = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => {
                    if let Some(n) = chars.next() {
                        label.push(n);
                    }
                }
                other => label.push(other),
            }
        }
        out.push(label);
    }
    out
}

fn fsp_name(name: &str, fsp: u8) -> String {
    if fsp == 0 {
        name.into()
    } else {
        format!("{name}({fsp})")
    }
}

/// The column type as the binlog decoder would see it, with the same type text.
fn column_type(c: &ColumnRow, json: bool) -> Result<(ColumnType, String), String> {
    let unsigned = c.column_type.to_ascii_lowercase().contains("unsigned");
    let int = |bytes: u8, name: &str| {
        (
            ColumnType::Integer { bytes, unsigned },
            if unsigned {
                format!("{name} unsigned")
            } else {
                name.to_string()
            },
        )
    };
    let fsp = c.datetime_precision.unwrap_or(0).min(6) as u8;
    let text_or_binary = |text: &str, binary: String, pad_to: u16| match c.charset.as_deref() {
        None | Some("binary") => (ColumnType::Binary { pad_to }, binary),
        Some(cs) => (
            ColumnType::Text {
                charset: cs.to_string(),
            },
            text.to_string(),
        ),
    };
    Ok(match c.data_type.to_ascii_lowercase().as_str() {
        "tinyint" => int(1, "tinyint"),
        "smallint" => int(2, "smallint"),
        "mediumint" => int(3, "mediumint"),
        "int" | "integer" => int(4, "int"),
        "bigint" => int(8, "bigint"),
        "float" => (ColumnType::Float, "float".into()),
        "double" | "real" => (ColumnType::Double, "double".into()),
        "decimal" | "numeric" => {
            let precision = c.precision.unwrap_or(10).min(65) as u8;
            let scale = c.scale.unwrap_or(0).min(30) as u8;
            (
                ColumnType::Decimal { precision, scale },
                format!(
                    "decimal({precision},{scale}){}",
                    if unsigned { " unsigned" } else { "" }
                ),
            )
        }
        "varchar" => text_or_binary("varchar", "varbinary".into(), 0),
        "varbinary" => (ColumnType::Binary { pad_to: 0 }, "varbinary".into()),
        "char" => {
            let len = u16::try_from(c.octets.unwrap_or(0)).unwrap_or(u16::MAX);
            text_or_binary("char", format!("binary({len})"), len)
        }
        "binary" => {
            let len = u16::try_from(c.octets.unwrap_or(0)).unwrap_or(u16::MAX);
            (ColumnType::Binary { pad_to: len }, format!("binary({len})"))
        }
        "tinytext" | "text" | "mediumtext" | "longtext" if json => {
            (ColumnType::Json, "json".into())
        }
        "tinytext" | "text" | "mediumtext" | "longtext" => text_or_binary("text", "blob".into(), 0),
        "tinyblob" | "blob" | "mediumblob" | "longblob" => {
            (ColumnType::Binary { pad_to: 0 }, "blob".into())
        }
        "enum" => (
            ColumnType::Enum {
                values: labels(&c.column_type),
            },
            "enum".into(),
        ),
        "set" => (
            ColumnType::Set {
                values: labels(&c.column_type),
            },
            "set".into(),
        ),
        "date" => (ColumnType::Date, "date".into()),
        "datetime" => (ColumnType::DateTime { fsp }, fsp_name("datetime", fsp)),
        "time" => (ColumnType::Time { fsp }, fsp_name("time", fsp)),
        "timestamp" => (ColumnType::Timestamp { fsp }, fsp_name("timestamp", fsp)),
        "year" => (ColumnType::Year, "year".into()),
        "bit" => {
            let width = c.precision.unwrap_or(1).min(64) as u8;
            (ColumnType::Bit { width }, format!("bit({width})"))
        }
        "json" => (ColumnType::Json, "json".into()),
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" | "geomcollection" => {
            (ColumnType::Geometry, "geometry".into())
        }
        "vector" => (ColumnType::Vector, "vector".into()),
        other => {
            return Err(format!(
                "column {} has type {other}, which full sync does not read yet",
                c.name
            ))
        }
    })
}

/// A table as full sync reads it now, with an estimate of its size.
#[derive(Debug, Clone)]
pub struct SnapshotTable {
    /// Columns and key (the primary key, or the unique columns the user named).
    pub schema: TableSchema,
    /// `information_schema.tables.table_rows`: an estimate for progress display.
    pub estimated_rows: u64,
}

/// Reads the current schema of `id`. `key_override` names unique columns to use when the
/// table has no primary key.
pub async fn table(
    conn: &mut Conn,
    id: &TableId,
    key_override: Option<&[String]>,
) -> Result<SnapshotTable, SnapshotError> {
    let server = |what: &'static str| server_error(id, what);
    type Raw = (
        String,
        String,
        String,
        Option<String>,
        String,
        Option<u64>,
        Option<u64>,
        Option<u64>,
        Option<u64>,
    );
    let rows: Vec<Raw> = conn
        .exec(
            "SELECT CAST(column_name AS CHAR), CAST(data_type AS CHAR), CAST(column_type AS CHAR), \
             CAST(character_set_name AS CHAR), CAST(is_nullable AS CHAR), character_octet_length, \
             numeric_precision, numeric_scale, datetime_precision \
             FROM information_schema.columns WHERE table_schema = ? AND table_name = ? \
             ORDER BY ordinal_position",
            (&id.db, &id.table),
        )
        .await
        .map_err(server("reading information_schema.columns"))?;
    if rows.is_empty() {
        return Err(no_such_table(id));
    }
    let json = json_columns(conn, id).await;
    let mut columns = Vec::with_capacity(rows.len());
    for (name, data_type, ctype, charset, nullable, octets, precision, scale, dtp) in rows {
        let c = ColumnRow {
            name,
            data_type,
            column_type: ctype,
            charset,
            nullable: nullable.eq_ignore_ascii_case("YES"),
            octets,
            precision,
            scale,
            datetime_precision: dtp,
        };
        let (ty, sql_type) =
            column_type(&c, json.contains(&c.name)).map_err(|message| SnapshotError::Table {
                table: id.to_string(),
                message,
            })?;
        columns.push(Column {
            name: c.name,
            ty,
            sql_type,
            nullable: c.nullable,
        });
    }
    let pk: Vec<String> = conn
        .exec(
            "SELECT CAST(column_name AS CHAR) FROM information_schema.statistics \
             WHERE table_schema = ? AND table_name = ? AND index_name = 'PRIMARY' \
             ORDER BY seq_in_index",
            (&id.db, &id.table),
        )
        .await
        .map_err(server("reading the primary key"))?;
    // No primary key: the columns named in objects.keys, else a NOT NULL unique key, else
    // none (the table is read whole, in one consistent read: see `read_all`).
    let key_names: Vec<String> = match (pk.is_empty(), key_override) {
        (false, _) => pk,
        (true, Some(k)) if !k.is_empty() => k.to_vec(),
        (true, _) => unique_key(conn, id).await?.unwrap_or_default(),
    };
    let mut primary_key = Vec::new();
    for k in &key_names {
        let i = columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(k))
            .ok_or_else(|| SnapshotError::Table {
                table: id.to_string(),
                message: format!("key column {k} does not exist"),
            })?;
        if matches!(columns[i].ty, ColumnType::Json | ColumnType::Geometry) {
            return Err(SnapshotError::Table {
                table: id.to_string(),
                message: format!("key column {k} is JSON or GEOMETRY and cannot order chunks"),
            });
        }
        primary_key.push(i);
    }
    let estimated_rows: Option<u64> = conn
        .exec_first(
            "SELECT table_rows FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            (&id.db, &id.table),
        )
        .await
        .map_err(server("reading information_schema.tables"))?;
    Ok(SnapshotTable {
        schema: TableSchema {
            id: id.clone(),
            columns,
            primary_key,
        },
        estimated_rows: estimated_rows.unwrap_or(0),
    })
}

/// The key of a table without a primary key: the columns of its first unique index (fewest
/// columns first, then by name) whose columns are all NOT NULL and whole (no prefix), as
/// InnoDB itself would pick to cluster the rows; None when the table has a primary key or no
/// such index.
pub async fn unique_key(
    conn: &mut Conn,
    id: &TableId,
) -> Result<Option<Vec<String>>, SnapshotError> {
    type Raw = (String, String, String, Option<u64>, u64);
    let rows: Vec<Raw> = conn
        .exec(
            "SELECT CAST(index_name AS CHAR), CAST(column_name AS CHAR), CAST(nullable AS CHAR), \
             sub_part, non_unique FROM information_schema.statistics \
             WHERE table_schema = ? AND table_name = ? ORDER BY index_name, seq_in_index",
            (&id.db, &id.table),
        )
        .await
        .map_err(server_error(id, "reading the indexes"))?;
    if rows.iter().any(|r| r.0 == "PRIMARY") {
        return Ok(None);
    }
    let mut indexes: Vec<(String, Vec<String>, bool)> = Vec::new();
    for (index, column, nullable, sub_part, non_unique) in rows {
        let usable = non_unique == 0 && !nullable.eq_ignore_ascii_case("YES") && sub_part.is_none();
        match indexes.last_mut() {
            Some((name, cols, ok)) if *name == index => {
                cols.push(column);
                *ok &= usable;
            }
            _ => indexes.push((index, vec![column], usable)),
        }
    }
    Ok(indexes
        .into_iter()
        .filter(|(_, _, ok)| *ok)
        .min_by(|a, b| (a.1.len(), &a.0).cmp(&(b.1.len(), &b.0)))
        .map(|(_, cols, _)| cols))
}

/// The definition of `id` as the source has it now (columns with full types, defaults,
/// character sets; primary key; secondary indexes), for destinations that create tables.
pub async fn table_def(
    conn: &mut Conn,
    id: &TableId,
) -> Result<sluice_core::TableDef, SnapshotError> {
    use sluice_core::{ColumnDef, IndexDef, TableDef};
    let server = |what: &'static str| server_error(id, what);
    let mariadb: bool = conn
        .query_first::<String, _>("SELECT VERSION()")
        .await
        .map_err(server("reading the server version"))?
        .is_some_and(|v| v.contains("MariaDB"));
    type Raw = (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    );
    let rows: Vec<Raw> = conn
        .exec(
            "SELECT CAST(column_name AS CHAR), CAST(column_type AS CHAR), CAST(is_nullable AS CHAR), \
             CAST(column_default AS CHAR), CAST(character_set_name AS CHAR), CAST(collation_name AS CHAR), \
             CAST(extra AS CHAR) \
             FROM information_schema.columns WHERE table_schema = ? AND table_name = ? \
             ORDER BY ordinal_position",
            (&id.db, &id.table),
        )
        .await
        .map_err(server("reading information_schema.columns"))?;
    if rows.is_empty() {
        return Err(no_such_table(id));
    }
    let json = json_columns(conn, id).await;
    let mut columns = Vec::new();
    for (name, column_type, nullable, default, charset, collation, extra) in rows {
        let extra_l = extra.to_ascii_lowercase();
        if extra_l.contains("generated") && !extra_l.contains("default_generated") {
            return Err(SnapshotError::Table {
                table: id.to_string(),
                message: format!(
                    "column {name} is a generated column, which the database destination does not create yet; \
                     leave it out with objects.columns"
                ),
            });
        }
        // MariaDB shows defaults as SQL (`'abc'`, `NULL`, `current_timestamp()`); MySQL shows
        // literals bare and marks expressions DEFAULT_GENERATED.
        let default = match default {
            None => None,
            Some(d) if mariadb && d.eq_ignore_ascii_case("NULL") => None,
            Some(d) if mariadb => Some(d),
            Some(d)
                if extra_l.contains("default_generated")
                    || d.eq_ignore_ascii_case("CURRENT_TIMESTAMP")
                    || d.to_ascii_uppercase().starts_with("CURRENT_TIMESTAMP(") =>
            {
                Some(d)
            }
            Some(d) => Some(format!("'{}'", d.replace('\\', "\\\\").replace('\'', "''"))),
        };
        columns.push(ColumnDef {
            json: json.contains(&name),
            name,
            column_type,
            nullable: nullable.eq_ignore_ascii_case("YES"),
            default,
            charset,
            collation,
            auto_increment: extra_l.contains("auto_increment"),
        });
    }
    let stats: Vec<(String, i64, String, Option<u64>)> = conn
        .exec(
            "SELECT CAST(index_name AS CHAR), non_unique, CAST(column_name AS CHAR), sub_part \
             FROM information_schema.statistics WHERE table_schema = ? AND table_name = ? \
             ORDER BY index_name, seq_in_index",
            (&id.db, &id.table),
        )
        .await
        .map_err(server("reading information_schema.statistics"))?;
    let mut primary_key = Vec::new();
    let mut indexes: Vec<IndexDef> = Vec::new();
    for (index, non_unique, column, sub_part) in stats {
        if index == "PRIMARY" {
            primary_key.push(column);
            continue;
        }
        match indexes.iter_mut().find(|i| i.name == index) {
            Some(i) => i.columns.push((column, sub_part)),
            None => indexes.push(IndexDef {
                name: index,
                unique: non_unique == 0,
                columns: vec![(column, sub_part)],
            }),
        }
    }
    Ok(TableDef {
        columns,
        primary_key,
        indexes,
    })
}

/// The logical schema of a table read from `information_schema`, for seeding the schema
/// history at the position where it is known to be current.
pub fn logical_schema(schema: &TableSchema) -> LogicalSchema {
    LogicalSchema {
        columns: schema
            .columns
            .iter()
            .map(|c| ColumnInfo {
                name: c.name.clone(),
                sql_type: c.sql_type.clone(),
                family: Family::of_column(&c.ty),
            })
            .collect(),
        primary_key: schema
            .primary_key_names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

fn no_such_table(id: &TableId) -> SnapshotError {
    SnapshotError::Table {
        table: id.to_string(),
        message: "the table does not exist (or this user may not see it; grant SELECT)".into(),
    }
}

/// The table's JSON columns (MariaDB's JSON is LONGTEXT with a check); none when unreadable.
async fn json_columns(conn: &mut Conn, id: &TableId) -> HashSet<String> {
    crate::live::json_columns(conn, id)
        .await
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_labels_unescape_quotes() {
        assert_eq!(
            labels("enum('a','b''c','d,e','')"),
            vec!["a", "b'c", "d,e", ""]
        );
        assert_eq!(labels("set('x')"), vec!["x"]);
    }
}
