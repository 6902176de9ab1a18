//! Table-map event -> [`TableSchema`]: column types from the map, names, signedness, character
//! sets, ENUM/SET labels and the primary key from its optional metadata
//! (`binlog_row_metadata=FULL`), when the server wrote it.

use std::collections::HashSet;

use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_async::consts::ColumnType as My;
use sluice_core::{Column, ColumnType, TableId, TableSchema};

use super::charset::charset_of_collation;

/// Extra knowledge about a table that the table map cannot carry (e.g. MariaDB JSON columns,
/// which the binlog shows as LONGTEXT).
#[derive(Debug, Clone, Default)]
pub struct TableHints {
    /// Column names that hold JSON.
    pub json_columns: HashSet<String>,
}

fn is_numeric(t: My) -> bool {
    matches!(
        t,
        My::MYSQL_TYPE_TINY
            | My::MYSQL_TYPE_SHORT
            | My::MYSQL_TYPE_INT24
            | My::MYSQL_TYPE_LONG
            | My::MYSQL_TYPE_LONGLONG
            | My::MYSQL_TYPE_FLOAT
            | My::MYSQL_TYPE_DOUBLE
            | My::MYSQL_TYPE_NEWDECIMAL
            | My::MYSQL_TYPE_DECIMAL
    )
}

fn is_character(t: My) -> bool {
    matches!(
        t,
        My::MYSQL_TYPE_STRING
            | My::MYSQL_TYPE_VAR_STRING
            | My::MYSQL_TYPE_VARCHAR
            | My::MYSQL_TYPE_BLOB
            | My::MYSQL_TYPE_TINY_BLOB
            | My::MYSQL_TYPE_MEDIUM_BLOB
            | My::MYSQL_TYPE_LONG_BLOB
    )
}

/// Builds the schema of the table a table map describes.
pub fn schema_from_table_map(
    tme: &TableMapEvent<'_>,
    hints: Option<&TableHints>,
) -> Result<TableSchema, String> {
    let n =
        usize::try_from(tme.columns_count()).map_err(|_| "column count overflows".to_string())?;
    let mut types = Vec::with_capacity(n);
    for i in 0..n {
        let t = tme
            .get_column_type(i)
            .map_err(|e| format!("column {}: {e}", i + 1))?
            .ok_or_else(|| format!("column {} has no type", i + 1))?;
        let meta = tme.get_column_metadata(i).unwrap_or(&[]).to_vec();
        types.push((t, meta));
    }

    let mut names: Vec<Option<String>> = vec![None; n];
    let mut unsigned = vec![false; n];
    let mut charsets: Vec<Option<u16>> = vec![None; n];
    let mut enum_set_charsets: Vec<Option<u16>> = vec![None; n];
    let mut enum_values: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut set_values: Vec<Vec<Vec<u8>>> = Vec::new();
    let mut primary_key: Vec<usize> = Vec::new();

    let numeric_idx: Vec<usize> = (0..n).filter(|&i| is_numeric(types[i].0)).collect();
    let char_idx: Vec<usize> = (0..n).filter(|&i| is_character(types[i].0)).collect();
    let enum_set_idx: Vec<usize> = (0..n)
        .filter(|&i| matches!(types[i].0, My::MYSQL_TYPE_ENUM | My::MYSQL_TYPE_SET))
        .collect();

    for field in tme.iter_optional_meta() {
        let field = field.map_err(|e| format!("optional metadata: {e}"))?;
        match field {
            OptionalMetadataField::Signedness(bits) => {
                for (k, &i) in numeric_idx.iter().enumerate() {
                    unsigned[i] = bits.get(k).map(|b| *b).unwrap_or(false);
                }
            }
            OptionalMetadataField::DefaultCharset(dc) => {
                for &i in &char_idx {
                    charsets[i] = Some(dc.default_charset());
                }
                for nd in dc.iter_non_default() {
                    let nd = nd.map_err(|e| format!("charset metadata: {e}"))?;
                    if let Some(&i) = usize::try_from(nd.column_index())
                        .ok()
                        .and_then(|k| char_idx.get(k))
                    {
                        charsets[i] = Some(nd.charset());
                    }
                }
            }
            OptionalMetadataField::ColumnCharset(cc) => {
                for (k, c) in cc.iter_charsets().enumerate() {
                    let c = c.map_err(|e| format!("charset metadata: {e}"))?;
                    if let Some(&i) = char_idx.get(k) {
                        charsets[i] = Some(c);
                    }
                }
            }
            OptionalMetadataField::EnumAndSetDefaultCharset(dc) => {
                for &i in &enum_set_idx {
                    enum_set_charsets[i] = Some(dc.default_charset());
                }
                for nd in dc.iter_non_default() {
                    let nd = nd.map_err(|e| format!("charset metadata: {e}"))?;
                    if let Some(&i) = usize::try_from(nd.column_index())
                        .ok()
                        .and_then(|k| enum_set_idx.get(k))
                    {
                        enum_set_charsets[i] = Some(nd.charset());
                    }
                }
            }
            OptionalMetadataField::EnumAndSetColumnCharset(cc) => {
                for (k, c) in cc.iter_charsets().enumerate() {
                    let c = c.map_err(|e| format!("charset metadata: {e}"))?;
                    if let Some(&i) = enum_set_idx.get(k) {
                        enum_set_charsets[i] = Some(c);
                    }
                }
            }
            OptionalMetadataField::ColumnName(cn) => {
                for (i, name) in cn.iter_names().enumerate() {
                    let name = name.map_err(|e| format!("column names: {e}"))?;
                    if let Some(slot) = names.get_mut(i) {
                        *slot = Some(name.name().into_owned());
                    }
                }
            }
            OptionalMetadataField::EnumStrValue(ev) => {
                for v in ev.iter_values() {
                    let v = v.map_err(|e| format!("ENUM labels: {e}"))?;
                    enum_values.push(v.values().iter().map(|s| s.value_raw().to_vec()).collect());
                }
            }
            OptionalMetadataField::SetStrValue(sv) => {
                for v in sv.iter_values() {
                    let v = v.map_err(|e| format!("SET members: {e}"))?;
                    set_values.push(v.values().iter().map(|s| s.value_raw().to_vec()).collect());
                }
            }
            OptionalMetadataField::SimplePrimaryKey(pk) => {
                for k in pk.iter_indexes() {
                    let k = k.map_err(|e| format!("primary key metadata: {e}"))?;
                    primary_key
                        .push(usize::try_from(k).map_err(|_| "primary key index".to_string())?);
                }
            }
            OptionalMetadataField::PrimaryKeyWithPrefix(pk) => {
                for k in pk.iter_keys() {
                    let k = k.map_err(|e| format!("primary key metadata: {e}"))?;
                    primary_key.push(
                        usize::try_from(k.column_index())
                            .map_err(|_| "primary key index".to_string())?,
                    );
                }
            }
            OptionalMetadataField::GeometryType(_)
            | OptionalMetadataField::ColumnVisibility(_)
            | OptionalMetadataField::Dimensionality(_) => {}
        }
    }

    let mut enum_iter = enum_values.into_iter();
    let mut set_iter = set_values.into_iter();
    let mut columns = Vec::with_capacity(n);
    for (i, (t, meta)) in types.iter().enumerate() {
        let name = names[i].clone().unwrap_or_else(|| format!("@{}", i + 1));
        let m = |k: usize| meta.get(k).copied().unwrap_or(0);
        let is_json_hint = hints.is_some_and(|h| h.json_columns.contains(&name));
        let text_or_binary = |cs: Option<u16>, pad_to: u16| -> ColumnType {
            match cs.and_then(charset_of_collation) {
                Some(c) if c == "binary" => ColumnType::Binary { pad_to },
                Some(c) => ColumnType::Text { charset: c },
                // Without charset metadata, bytes are carried as bytes rather than guessed at.
                None => ColumnType::Binary { pad_to: 0 },
            }
        };
        let is_binary = |t: &ColumnType| matches!(t, ColumnType::Binary { .. });
        let (ty, sql_type) = match *t {
            My::MYSQL_TYPE_TINY => int_type(1, unsigned[i]),
            My::MYSQL_TYPE_SHORT => int_type(2, unsigned[i]),
            My::MYSQL_TYPE_INT24 => int_type(3, unsigned[i]),
            My::MYSQL_TYPE_LONG => int_type(4, unsigned[i]),
            My::MYSQL_TYPE_LONGLONG => int_type(8, unsigned[i]),
            My::MYSQL_TYPE_FLOAT => (ColumnType::Float, "float".into()),
            My::MYSQL_TYPE_DOUBLE => (ColumnType::Double, "double".into()),
            My::MYSQL_TYPE_NEWDECIMAL => (
                ColumnType::Decimal {
                    precision: m(0),
                    scale: m(1),
                },
                format!(
                    "decimal({},{}){}",
                    m(0),
                    m(1),
                    if unsigned[i] { " unsigned" } else { "" }
                ),
            ),
            My::MYSQL_TYPE_VARCHAR | My::MYSQL_TYPE_VAR_STRING => {
                let ty = text_or_binary(charsets[i], 0);
                let s = if is_binary(&ty) {
                    "varbinary"
                } else {
                    "varchar"
                };
                (ty, s.into())
            }
            My::MYSQL_TYPE_STRING => {
                // CHAR/BINARY length in bytes, as the server packs it into two metadata bytes.
                let (b0, b1) = (u16::from(m(0)), u16::from(m(1)));
                let len = if (b0 & 0x30) != 0x30 {
                    b1 | (((b0 & 0x30) ^ 0x30) << 4)
                } else {
                    b1
                };
                let ty = text_or_binary(charsets[i], len);
                let s = if is_binary(&ty) {
                    format!("binary({len})")
                } else {
                    "char".to_string()
                };
                (ty, s)
            }
            My::MYSQL_TYPE_TINY_BLOB
            | My::MYSQL_TYPE_BLOB
            | My::MYSQL_TYPE_MEDIUM_BLOB
            | My::MYSQL_TYPE_LONG_BLOB => {
                if is_json_hint {
                    (ColumnType::Json, "json".into())
                } else {
                    let ty = text_or_binary(charsets[i], 0);
                    let s = if is_binary(&ty) { "blob" } else { "text" };
                    (ty, s.into())
                }
            }
            My::MYSQL_TYPE_ENUM => {
                let values = labels(enum_iter.next().unwrap_or_default(), enum_set_charsets[i])
                    .map_err(|e| format!("ENUM labels of column {name}: {e}"))?;
                (ColumnType::Enum { values }, "enum".into())
            }
            My::MYSQL_TYPE_SET => {
                let values = labels(set_iter.next().unwrap_or_default(), enum_set_charsets[i])
                    .map_err(|e| format!("SET members of column {name}: {e}"))?;
                (ColumnType::Set { values }, "set".into())
            }
            My::MYSQL_TYPE_DATE | My::MYSQL_TYPE_NEWDATE => (ColumnType::Date, "date".into()),
            My::MYSQL_TYPE_DATETIME => (ColumnType::DateTime { fsp: 0 }, "datetime".into()),
            My::MYSQL_TYPE_DATETIME2 => (
                ColumnType::DateTime { fsp: m(0) },
                fsp_type("datetime", m(0)),
            ),
            My::MYSQL_TYPE_TIME => (ColumnType::Time { fsp: 0 }, "time".into()),
            My::MYSQL_TYPE_TIME2 => (ColumnType::Time { fsp: m(0) }, fsp_type("time", m(0))),
            My::MYSQL_TYPE_TIMESTAMP => (ColumnType::Timestamp { fsp: 0 }, "timestamp".into()),
            My::MYSQL_TYPE_TIMESTAMP2 => (
                ColumnType::Timestamp { fsp: m(0) },
                fsp_type("timestamp", m(0)),
            ),
            My::MYSQL_TYPE_YEAR => (ColumnType::Year, "year".into()),
            My::MYSQL_TYPE_BIT => {
                let width = m(1).saturating_mul(8).saturating_add(m(0));
                (ColumnType::Bit { width }, format!("bit({width})"))
            }
            My::MYSQL_TYPE_JSON => (ColumnType::Json, "json".into()),
            My::MYSQL_TYPE_GEOMETRY => (ColumnType::Geometry, "geometry".into()),
            My::MYSQL_TYPE_VECTOR => (ColumnType::Vector, "vector".into()),
            other => {
                return Err(format!(
                    "column {} ({name}) has binlog type {other:?}, which Sluice does not decode",
                    i + 1
                ))
            }
        };
        let nullable = tme.null_bitmask().get(i).map(|b| *b).unwrap_or(true);
        columns.push(Column {
            name,
            ty,
            sql_type,
            nullable,
        });
    }
    Ok(TableSchema {
        id: TableId::new(tme.database_name(), tme.table_name()),
        columns,
        primary_key,
    })
}

fn int_type(bytes: u8, unsigned: bool) -> (ColumnType, String) {
    let name = match bytes {
        1 => "tinyint",
        2 => "smallint",
        3 => "mediumint",
        4 => "int",
        _ => "bigint",
    };
    (
        ColumnType::Integer { bytes, unsigned },
        if unsigned {
            format!("{name} unsigned")
        } else {
            name.into()
        },
    )
}

fn fsp_type(name: &str, fsp: u8) -> String {
    if fsp == 0 {
        name.into()
    } else {
        format!("{name}({fsp})")
    }
}

/// ENUM/SET labels, decoded from the column's character set (utf8mb4 when not given).
fn labels(raw: Vec<Vec<u8>>, collation: Option<u16>) -> Result<Vec<String>, String> {
    let charset = collation
        .and_then(charset_of_collation)
        .unwrap_or_else(|| "utf8mb4".into());
    let charset = if charset == "binary" {
        "latin1".to_string()
    } else {
        charset
    };
    raw.iter()
        .map(|b| super::charset::decode(&charset, b))
        .collect()
}
