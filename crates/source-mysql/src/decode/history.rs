//! The schema history: for each table, the versions of its logical schema (column names, type
//! families, JSON columns, primary key), each keyed by the binlog position where it took
//! effect. Fed by the DDL in the log (parsed with `sqlparser`) and persisted as JSON.
//!
//! The table-map event stays the authority for the physical types of each row; the history adds
//! what a table map may lack (names without `binlog_row_metadata=FULL`, MariaDB's JSON columns,
//! the primary key) and is checked against every table map: a disagreement stops the reader
//! with both schemas, so no row is ever decoded with the wrong one.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sluice_core::{ColumnType, TableId, TableSchema};

use crate::position::BinlogPosition;
use sqlparser::ast::{
    AlterTableOperation, ColumnDef, CreateTableLikeKind, MySQLColumnPosition, ObjectName,
    ObjectType, RenameTableNameKind, Statement, TableConstraint,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

/// What kind of values a column holds, coarse enough to compare a DDL type with a table map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Any integer width.
    Integer,
    /// FLOAT or DOUBLE.
    Floating,
    /// DECIMAL.
    Decimal,
    /// CHAR, VARCHAR, TEXT, BINARY, VARBINARY, BLOB (and MariaDB's JSON, a LONGTEXT).
    String,
    /// DATE.
    Date,
    /// DATETIME.
    DateTime,
    /// TIME.
    Time,
    /// TIMESTAMP.
    Timestamp,
    /// YEAR.
    Year,
    /// BIT.
    Bit,
    /// ENUM.
    Enum,
    /// SET.
    Set,
    /// MySQL's binary JSON.
    Json,
    /// GEOMETRY and its subtypes.
    Geometry,
    /// VECTOR.
    Vector,
    /// A type the parser knows but this list does not: compatible with anything.
    Other,
}

impl Family {
    /// The family of a type as written in DDL (`varchar(20)`, `int unsigned`, `json`, ...).
    pub fn of_sql(sql_type: &str) -> Family {
        let t = sql_type.trim().to_ascii_lowercase();
        let word = t
            .split(|c: char| c == '(' || c.is_whitespace())
            .next()
            .unwrap_or("");
        match word {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" | "bool"
            | "boolean" | "serial" => Family::Integer,
            "float" | "double" | "real" => Family::Floating,
            "decimal" | "numeric" | "dec" | "fixed" => Family::Decimal,
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "binary"
            | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "nchar"
            | "nvarchar" | "character" | "uuid" | "inet4" | "inet6" => Family::String,
            "date" => Family::Date,
            "datetime" => Family::DateTime,
            "time" => Family::Time,
            "timestamp" => Family::Timestamp,
            "year" => Family::Year,
            "bit" => Family::Bit,
            "enum" => Family::Enum,
            "set" => Family::Set,
            "json" => Family::Json,
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" => Family::Geometry,
            "vector" => Family::Vector,
            _ => Family::Other,
        }
    }

    /// The family of a column type decoded from a table map.
    pub fn of_column(ty: &ColumnType) -> Family {
        match ty {
            ColumnType::Integer { .. } => Family::Integer,
            ColumnType::Float | ColumnType::Double => Family::Floating,
            ColumnType::Decimal { .. } => Family::Decimal,
            ColumnType::Text { .. } | ColumnType::Binary { .. } => Family::String,
            ColumnType::Date => Family::Date,
            ColumnType::DateTime { .. } => Family::DateTime,
            ColumnType::Time { .. } => Family::Time,
            ColumnType::Timestamp { .. } => Family::Timestamp,
            ColumnType::Year => Family::Year,
            ColumnType::Bit { .. } => Family::Bit,
            ColumnType::Enum { .. } => Family::Enum,
            ColumnType::Set { .. } => Family::Set,
            ColumnType::Json => Family::Json,
            ColumnType::Geometry => Family::Geometry,
            ColumnType::Vector => Family::Vector,
        }
    }

    /// Whether a table-map column of family `map` can hold this DDL family.
    fn admits(self, map: Family) -> bool {
        self == map
            || self == Family::Other
            // MariaDB's JSON is LONGTEXT in the binlog.
            || (self == Family::Json && map == Family::String)
    }
}

/// One column as the DDL declared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Name.
    pub name: String,
    /// The declared type text.
    pub sql_type: String,
    /// Family of the type.
    pub family: Family,
}

/// A table's logical schema at some position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogicalSchema {
    /// Columns in table order.
    pub columns: Vec<ColumnInfo>,
    /// Primary-key column names, in key order.
    pub primary_key: Vec<String>,
}

impl LogicalSchema {
    fn describe(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.sql_type))
            .collect();
        format!("({})", cols.join(", "))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Version {
    pos: BinlogPosition,
    /// None: the table was dropped (or renamed away) here.
    schema: Option<LogicalSchema>,
}

/// Versions of every table's schema, keyed by position.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SchemaHistory {
    tables: BTreeMap<String, Vec<Version>>,
    /// Position of the last DDL applied: a stretch of log read twice (after a reconnect, or a
    /// restart from an older checkpoint) must not apply its DDL twice.
    #[serde(default)]
    last_ddl: Option<BinlogPosition>,
}

/// The history's key of a table: `db.table`, or `` `db`.`table` `` when a name holds `.` or a
/// backquote (so that `a.b` + `c` and `a` + `b.c` stay apart; plain names keep the form that
/// saved histories have).
fn key(t: &TableId) -> String {
    if [&t.db, &t.table]
        .iter()
        .any(|n| n.contains('.') || n.contains('`'))
    {
        let q = |n: &str| format!("`{}`", n.replace('`', "``"));
        format!("{}.{}", q(&t.db), q(&t.table))
    } else {
        format!("{}.{}", t.db, t.table)
    }
}

fn ident(s: &str) -> String {
    s.trim().trim_matches('`').trim_matches('"').to_string()
}

pub(super) fn table_of(name: &ObjectName, default_db: &str) -> TableId {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| i.value.clone())
        .collect();
    match parts.as_slice() {
        [db, table] => TableId::new(db.clone(), table.clone()),
        [table] => TableId::new(default_db, table.clone()),
        _ => TableId::new(default_db, name.to_string()),
    }
}

fn column_of(def: &ColumnDef) -> (ColumnInfo, bool) {
    let sql_type = def.data_type.to_string();
    let is_pk = def.options.iter().any(|o| {
        o.option
            .to_string()
            .to_ascii_uppercase()
            .contains("PRIMARY KEY")
    });
    (
        ColumnInfo {
            name: def.name.value.clone(),
            family: Family::of_sql(&sql_type),
            sql_type,
        },
        is_pk,
    )
}

/// Column names inside the parentheses after `PRIMARY KEY` of a constraint's text.
fn primary_key_of(constraint: &str) -> Option<Vec<String>> {
    let upper = constraint.to_ascii_uppercase();
    let at = upper.find("PRIMARY KEY")?;
    let rest = &constraint[at..];
    let open = rest.find('(')?;
    let close = rest.rfind(')')?;
    let inner = rest.get(open + 1..close)?;
    Some(
        inner
            .split(',')
            .map(|c| {
                // `name(10) DESC` -> name
                let c = c.trim();
                let c = c.split('(').next().unwrap_or(c);
                ident(c.split_whitespace().next().unwrap_or(c))
            })
            .collect(),
    )
}

/// The hidden columns MySQL 8 adds for the functional key parts of an index (`INDEX i((a+1))`):
/// appended after the existing columns, named as the server names them, and present in table
/// maps like any other column.
fn hidden_columns(c: &TableConstraint) -> Vec<ColumnInfo> {
    let (name, parts) = match c {
        TableConstraint::Index(i) => (i.name.as_ref(), &i.columns),
        TableConstraint::Unique(u) => (u.index_name.as_ref().or(u.name.as_ref()), &u.columns),
        _ => return Vec::new(),
    };
    let index = name.map(|n| n.value.clone()).unwrap_or_default();
    parts
        .iter()
        .enumerate()
        // MySQL requires a functional part in its own parentheses; `name(10)` is a prefix.
        .filter(|(_, p)| matches!(p.column.expr, sqlparser::ast::Expr::Nested(_)))
        .map(|(i, _)| ColumnInfo {
            name: format!("!hidden!{index}!{i}!0"),
            sql_type: "hidden (functional index part)".into(),
            family: Family::Other,
        })
        .collect()
}

/// MODIFY / CHANGE COLUMN: the column `old` gets name `new`, type `sql_type`, and moves to
/// `position` (stays in place when none); key references follow the rename.
fn redefine(
    schema: &mut LogicalSchema,
    what: &str,
    old: &str,
    new: &str,
    sql_type: &str,
    position: &Option<MySQLColumnPosition>,
) -> Result<(), String> {
    let i = schema
        .columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(old))
        .ok_or_else(|| format!("{what}: no such column"))?;
    let mut col = schema.columns.remove(i);
    col.name = new.to_string();
    col.sql_type = sql_type.to_string();
    col.family = Family::of_sql(sql_type);
    for k in schema.primary_key.iter_mut() {
        if k.eq_ignore_ascii_case(old) {
            *k = new.to_string();
        }
    }
    match position {
        None => schema.columns.insert(i, col),
        p => insert_at(&mut schema.columns, col, p)?,
    }
    Ok(())
}

fn insert_at(
    cols: &mut Vec<ColumnInfo>,
    col: ColumnInfo,
    position: &Option<MySQLColumnPosition>,
) -> Result<(), String> {
    match position {
        None => cols.push(col),
        Some(MySQLColumnPosition::First) => cols.insert(0, col),
        Some(MySQLColumnPosition::After(after)) => {
            let i = cols
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(&after.value))
                .ok_or_else(|| format!("AFTER {}: no such column", after.value))?;
            cols.insert(i + 1, col);
        }
    }
    Ok(())
}

impl SchemaHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// The schema of `table` in force at `pos`: the last version at or before it.
    pub fn at(&self, table: &TableId, pos: &BinlogPosition) -> Option<&LogicalSchema> {
        let versions = self.tables.get(&key(table))?;
        versions
            .iter()
            .rev()
            .find(|v| v.pos <= *pos)
            .and_then(|v| v.schema.as_ref())
    }

    /// The latest schema of `table`, whatever the position.
    fn latest(&self, table: &TableId) -> Option<&LogicalSchema> {
        self.tables
            .get(&key(table))
            .and_then(|v| v.last())
            .and_then(|v| v.schema.as_ref())
    }

    /// Records the schema of `table` from `pos` on (None: dropped).
    pub fn record(&mut self, table: &TableId, pos: BinlogPosition, schema: Option<LogicalSchema>) {
        let versions = self.tables.entry(key(table)).or_default();
        // Reading a stretch of log twice (a reconnect) must not stack duplicate versions.
        versions.retain(|v| v.pos != pos);
        versions.push(Version { pos, schema });
        versions.sort_by(|a, b| a.pos.cmp(&b.pos));
    }

    /// Applies one DDL statement found at `pos`, run with default database `db`. Returns the
    /// tables whose schema changed; statements that change no table schema return none. A DDL
    /// the parser cannot read is an error only if it names a table the history tracks.
    pub fn apply_ddl(
        &mut self,
        pos: &BinlogPosition,
        db: &str,
        sql: &str,
    ) -> Result<Vec<TableId>, String> {
        if self.last_ddl.as_ref().is_some_and(|last| pos <= last) {
            return Ok(Vec::new());
        }
        self.last_ddl = Some(pos.clone());
        let statements = match Parser::parse_sql(&MySqlDialect {}, sql) {
            Ok(s) => s,
            // Table options only (COMMENT, ENGINE, ...): no schema change, whatever the parser
            // makes of it.
            Err(_) if sluice_core::ddl_text::alters_only_table_options(sql) => {
                return Ok(Vec::new())
            }
            Err(e) => {
                let upper = sql.to_ascii_uppercase();
                let touches = self.tables.keys().any(|k| {
                    let table = k.rsplit('.').next().unwrap_or(k).to_ascii_uppercase();
                    upper.contains(&table)
                });
                let schema_ddl = ["ALTER TABLE", "CREATE TABLE", "RENAME TABLE", "DROP TABLE"]
                    .iter()
                    .any(|k| upper.trim_start().starts_with(k));
                if touches && schema_ddl {
                    return Err(format!(
                        "cannot parse DDL that changes a captured table ({e}): {sql}"
                    ));
                }
                return Ok(Vec::new());
            }
        };
        let mut changed = Vec::new();
        for st in statements {
            match st {
                Statement::CreateTable(ct) => {
                    let id = table_of(&ct.name, db);
                    let schema = if let Some(like) = &ct.like {
                        let src = match like {
                            CreateTableLikeKind::Parenthesized(l)
                            | CreateTableLikeKind::Plain(l) => table_of(&l.name, db),
                        };
                        match self.latest(&src) {
                            Some(s) => s.clone(),
                            None => {
                                return Err(format!(
                                    "CREATE TABLE {id} LIKE {src}: {src} is not known"
                                ))
                            }
                        }
                    } else {
                        let mut primary_key = Vec::new();
                        let mut columns = Vec::new();
                        for def in &ct.columns {
                            let (col, pk) = column_of(def);
                            if pk {
                                primary_key.push(col.name.clone());
                            }
                            columns.push(col);
                        }
                        for c in &ct.constraints {
                            if let Some(pk) = primary_key_of(&c.to_string()) {
                                primary_key = pk;
                            }
                        }
                        for c in &ct.constraints {
                            columns.extend(hidden_columns(c));
                        }
                        LogicalSchema {
                            columns,
                            primary_key,
                        }
                    };
                    self.record(&id, pos.clone(), Some(schema));
                    changed.push(id);
                }
                Statement::AlterTable(at) => {
                    let mut id = table_of(&at.name, db);
                    let Some(mut schema) = self.latest(&id).cloned() else {
                        // Unknown table: its table maps remain the only source.
                        continue;
                    };
                    let old_id = id.clone();
                    for op in &at.operations {
                        match op {
                            AlterTableOperation::AddColumn {
                                column_def,
                                column_position,
                                ..
                            } => {
                                let (col, pk) = column_of(column_def);
                                if pk {
                                    schema.primary_key = vec![col.name.clone()];
                                }
                                insert_at(&mut schema.columns, col, column_position)?;
                            }
                            AlterTableOperation::DropColumn { column_names, .. } => {
                                for n in column_names {
                                    schema
                                        .columns
                                        .retain(|c| !c.name.eq_ignore_ascii_case(&n.value));
                                    schema
                                        .primary_key
                                        .retain(|c| !c.eq_ignore_ascii_case(&n.value));
                                }
                            }
                            AlterTableOperation::ModifyColumn {
                                col_name,
                                data_type,
                                column_position,
                                ..
                            } => redefine(
                                &mut schema,
                                &format!("MODIFY {} in {id}", col_name.value),
                                &col_name.value,
                                &col_name.value,
                                &data_type.to_string(),
                                column_position,
                            )?,
                            AlterTableOperation::ChangeColumn {
                                old_name,
                                new_name,
                                data_type,
                                column_position,
                                ..
                            } => redefine(
                                &mut schema,
                                &format!("CHANGE {} in {id}", old_name.value),
                                &old_name.value,
                                &new_name.value,
                                &data_type.to_string(),
                                column_position,
                            )?,
                            AlterTableOperation::RenameColumn {
                                old_column_name,
                                new_column_name,
                            } => {
                                for c in schema.columns.iter_mut() {
                                    if c.name.eq_ignore_ascii_case(&old_column_name.value) {
                                        c.name = new_column_name.value.clone();
                                    }
                                }
                                for k in schema.primary_key.iter_mut() {
                                    if k.eq_ignore_ascii_case(&old_column_name.value) {
                                        *k = new_column_name.value.clone();
                                    }
                                }
                            }
                            AlterTableOperation::RenameTable { table_name } => {
                                let (RenameTableNameKind::As(n) | RenameTableNameKind::To(n)) =
                                    table_name;
                                id = table_of(n, db);
                            }
                            AlterTableOperation::AddConstraint { constraint, .. } => {
                                if let Some(pk) = primary_key_of(&constraint.to_string()) {
                                    schema.primary_key = pk;
                                }
                                schema.columns.extend(hidden_columns(constraint));
                            }
                            AlterTableOperation::DropIndex { name } => {
                                let prefix = format!("!hidden!{}!", name.value);
                                schema.columns.retain(|c| !c.name.starts_with(&prefix));
                            }
                            other => {
                                let text = other.to_string();
                                if let Some(pk) = primary_key_of(&text)
                                    .filter(|_| text.to_ascii_uppercase().starts_with("ADD"))
                                {
                                    schema.primary_key = pk;
                                } else if text.to_ascii_uppercase().starts_with("DROP PRIMARY KEY")
                                {
                                    schema.primary_key.clear();
                                }
                                // Indexes, options, partitions: no change to columns.
                            }
                        }
                    }
                    if id != old_id {
                        self.record(&old_id, pos.clone(), None);
                        changed.push(old_id);
                    }
                    self.record(&id, pos.clone(), Some(schema));
                    changed.push(id);
                }
                Statement::RenameTable(renames) => {
                    for r in renames {
                        let from = table_of(&r.old_name, db);
                        let to = table_of(&r.new_name, db);
                        if let Some(s) = self.latest(&from).cloned() {
                            self.record(&from, pos.clone(), None);
                            self.record(&to, pos.clone(), Some(s));
                            changed.push(from);
                            changed.push(to);
                        }
                    }
                }
                Statement::Drop {
                    object_type: ObjectType::Table,
                    names,
                    ..
                } => {
                    for n in names {
                        let id = table_of(&n, db);
                        if self.latest(&id).is_some() {
                            self.record(&id, pos.clone(), None);
                            changed.push(id);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(changed)
    }

    /// Checks a table map's schema against the version in force at `pos`, and fills in what
    /// the map lacks (names when the map has none, the primary key). An error names the table,
    /// the position and both schemas.
    pub fn reconcile(&self, schema: &mut TableSchema, pos: &BinlogPosition) -> Result<(), String> {
        let Some(known) = self.at(&schema.id, pos) else {
            return Ok(());
        };
        let map: Vec<String> = schema
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.sql_type))
            .collect();
        let (table, map) = (schema.id.to_string(), map.join(", "));
        let mismatch = |why: String| {
            format!(
                "the table map of {table} at {pos} disagrees with the schema history ({why}): table map ({map}), \
                 history {}; the history missed a DDL — restart capture from a position before it, or from now",
                known.describe()
            )
        };
        if known.columns.len() != schema.columns.len() {
            return Err(mismatch(format!(
                "{} columns vs {}",
                schema.columns.len(),
                known.columns.len()
            )));
        }
        let unnamed = schema.columns.iter().all(|c| c.name.starts_with('@'));
        for (col, k) in schema.columns.iter_mut().zip(&known.columns) {
            if !k.family.admits(Family::of_column(&col.ty)) {
                return Err(mismatch(format!(
                    "column {}: {} vs {}",
                    k.name, col.sql_type, k.sql_type
                )));
            }
            if unnamed {
                col.name = k.name.clone();
            } else if !col.name.eq_ignore_ascii_case(&k.name) {
                return Err(mismatch(format!(
                    "column {} is named {} in the history",
                    col.name, k.name
                )));
            }
            if k.family == Family::Json && col.ty != ColumnType::Json {
                col.ty = ColumnType::Json;
                col.sql_type = "json".into();
            }
        }
        if schema.primary_key.is_empty() {
            schema.primary_key = known
                .primary_key
                .iter()
                .filter_map(|n| {
                    schema
                        .columns
                        .iter()
                        .position(|c| c.name.eq_ignore_ascii_case(n))
                })
                .collect();
        }
        Ok(())
    }

    /// Loads a history saved with [`SchemaHistory::save`].
    pub fn load(path: &Path) -> Result<Self, HistoryFileError> {
        let io = |source| HistoryFileError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(io)?;
        serde_json::from_str(&text).map_err(|source| HistoryFileError::NotAHistory {
            path: path.display().to_string(),
            source,
        })
    }

    /// Saves the history as JSON, atomically (write then rename).
    pub fn save(&self, path: &Path) -> Result<(), HistoryFileError> {
        let tmp = path.with_extension("tmp");
        let io = |p: &Path| {
            let path = p.display().to_string();
            move |source| HistoryFileError::Io { path, source }
        };
        let text = serde_json::to_string(self).map_err(|source| HistoryFileError::NotAHistory {
            path: path.display().to_string(),
            source,
        })?;
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))
    }
}

/// A schema history file that cannot be read or written (`sluice capture --history`).
#[derive(Debug, thiserror::Error)]
pub enum HistoryFileError {
    /// The file system refused.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a schema history Sluice wrote.
    #[error("{path}: not a schema history: {source}")]
    NotAHistory {
        /// The file.
        path: String,
        /// Why.
        source: serde_json::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: u64) -> BinlogPosition {
        BinlogPosition {
            file: "b.000001".into(),
            offset,
            gtid: None,
        }
    }

    #[test]
    fn ddl_builds_versions_by_position() {
        let mut h = SchemaHistory::new();
        let t = TableId::new("d", "t");
        h.apply_ddl(
            &at(100),
            "d",
            "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), j JSON)",
        )
        .expect("create");
        h.apply_ddl(
            &at(200),
            "d",
            "ALTER TABLE t ADD COLUMN b INT AFTER id, CHANGE a a2 TEXT",
        )
        .expect("alter");
        h.apply_ddl(
            &at(300),
            "d",
            "ALTER TABLE d.t DROP COLUMN j, RENAME COLUMN b TO b2",
        )
        .expect("alter");
        h.apply_ddl(&at(400), "d", "RENAME TABLE t TO u")
            .expect("rename");
        let names = |p: u64, t: &TableId| -> Vec<String> {
            h.at(t, &at(p))
                .map(|s| s.columns.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default()
        };
        assert_eq!(names(150, &t), ["id", "a", "j"]);
        assert_eq!(names(250, &t), ["id", "b", "a2", "j"]);
        assert_eq!(names(350, &t), ["id", "b2", "a2"]);
        assert!(h.at(&t, &at(450)).is_none(), "renamed away");
        assert_eq!(names(450, &TableId::new("d", "u")), ["id", "b2", "a2"]);
        assert_eq!(
            h.at(&TableId::new("d", "u"), &at(450))
                .map(|s| s.primary_key.clone()),
            Some(vec!["id".to_string()])
        );
        assert!(h.at(&t, &at(50)).is_none());
    }

    #[test]
    fn a_table_map_that_disagrees_is_an_error_naming_both_schemas() {
        let mut h = SchemaHistory::new();
        h.apply_ddl(
            &at(100),
            "d",
            "CREATE TABLE t (id INT, PRIMARY KEY (id), v VARCHAR(5))",
        )
        .expect("create");
        let col = |name: &str, ty: ColumnType| sluice_core::Column {
            name: name.into(),
            ty,
            sql_type: "x".into(),
            nullable: true,
        };
        let mut ok = TableSchema {
            id: TableId::new("d", "t"),
            columns: vec![
                col(
                    "@1",
                    ColumnType::Integer {
                        bytes: 4,
                        unsigned: false,
                    },
                ),
                col("@2", ColumnType::Binary { pad_to: 0 }),
            ],
            primary_key: vec![],
        };
        h.reconcile(&mut ok, &at(150)).expect("compatible");
        assert_eq!(ok.columns[0].name, "id");
        assert_eq!(ok.primary_key, vec![0]);
        let mut bad = TableSchema {
            columns: vec![col("@1", ColumnType::Date), col("@2", ColumnType::Date)],
            ..ok.clone()
        };
        let err = h.reconcile(&mut bad, &at(150)).expect_err("mismatch");
        assert!(
            err.contains("`d`.`t` at b.000001:150 disagrees")
                && err.contains("history (id INT, v VARCHAR(5))"),
            "{err}"
        );
    }

    #[test]
    fn history_round_trips_through_its_file() {
        let mut h = SchemaHistory::new();
        h.apply_ddl(
            &at(100),
            "d",
            "CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY)",
        )
        .expect("create");
        let path = std::env::temp_dir().join(format!("sluice-history-{}.json", std::process::id()));
        h.save(&path).expect("save");
        let back = SchemaHistory::load(&path).expect("load");
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            back.at(&TableId::new("d", "t"), &at(101)),
            h.at(&TableId::new("d", "t"), &at(101))
        );
    }
}
