//! The catalog from pg_catalog: tables (a table's schema is the `db` of its [`TableId`]),
//! columns with their types, keys, whole definitions in MySQL terms for database
//! destinations, the end of the WAL, and the source's prechecks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sluice_core::schema::{Column, ColumnDef, IndexDef, TableDef, TableSchema};
use sluice_core::source::{Catalog, CatalogColumn, Finding, Findings, SourceError};
use sluice_core::{Position, TableId};
use tokio_postgres::Client;

use crate::session::{cell, ident, literal, rows, Session};
use crate::types::{Kind, Ty, TypeFacts};
use crate::{lsn_position, PostgresSource};

/// The relation of a table, as an SQL expression of type regclass.
pub(crate) fn regclass(t: &TableId) -> String {
    format!(
        "{}::regclass",
        literal(&format!("{}.{}", ident(&t.db), ident(&t.table)))
    )
}

/// Whether each user table names its rows in updates and deletes: a primary key under
/// REPLICA IDENTITY DEFAULT, or FULL, or USING INDEX. PostgreSQL refuses updates and deletes
/// of a published table that does not.
pub(crate) fn identified(s: &Session) -> Result<HashMap<TableId, bool>, SourceError> {
    Ok(s.rows(USER_TABLES)?
        .iter()
        .map(|r| {
            let covered = match cell(r, 3).as_str() {
                "f" | "i" => true,
                "d" => cell(r, 4) == "true",
                _ => false,
            };
            (TableId::new(cell(r, 0), cell(r, 1)), covered)
        })
        .collect())
}

/// A column as the catalog has it.
#[derive(Debug, Clone)]
pub(crate) struct PgColumn {
    pub(crate) name: String,
    pub(crate) ty: Ty,
    pub(crate) nullable: bool,
}

/// A table's columns (in order) and primary key.
#[derive(Debug, Clone)]
pub(crate) struct TableInfo {
    pub(crate) id: TableId,
    pub(crate) columns: Vec<PgColumn>,
    pub(crate) primary_key: Vec<String>,
}

impl TableInfo {
    /// The schema rows are decoded with.
    pub(crate) fn schema(&self) -> Arc<TableSchema> {
        Arc::new(TableSchema {
            id: self.id.clone(),
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    ty: c.ty.column_type(),
                    sql_type: c.ty.name.clone(),
                    nullable: c.nullable,
                })
                .collect(),
            primary_key: self
                .primary_key
                .iter()
                .filter_map(|k| self.columns.iter().position(|c| &c.name == k))
                .collect(),
        })
    }
}

/// Reads a table's columns and primary key (`rel`: an SQL expression of its regclass/oid).
/// A column of an unsupported type is an error naming the table, the column and the type.
pub(crate) async fn table_info(
    client: &Client,
    id: &TableId,
    rel: &str,
) -> Result<TableInfo, SourceError> {
    let cols = rows(
        client,
        &format!(
            "SELECT a.attname::text, a.attnotnull::text, bt.oid::int8, \
             (CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END)::int8, \
             bt.typtype::text, bt.typcategory::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END \
             WHERE a.attrelid = {rel} AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        ),
    )
    .await?;
    let mut columns = Vec::with_capacity(cols.len());
    for r in &cols {
        let facts = facts_of(r, 2);
        let name = cell(r, 0);
        let ty = Ty::of(&facts).map_err(|e| {
            SourceError::Definite(format!(
                "{id} column {name}: {e}; exclude the table (objects.exclude) or give the column a supported type"
            ))
        })?;
        columns.push(PgColumn {
            name,
            ty,
            nullable: cell(r, 1) != "true",
        });
    }
    let primary_key = primary_key(client, rel).await?;
    Ok(TableInfo {
        id: id.clone(),
        columns,
        primary_key,
    })
}

/// The primary key's columns of a table (`rel`: an SQL expression of its regclass or oid), in
/// key order, as the catalog has them now.
pub(crate) async fn primary_key(client: &Client, rel: &str) -> Result<Vec<String>, SourceError> {
    Ok(rows(
        client,
        &format!(
            "SELECT a.attname::text FROM pg_index x CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum \
             WHERE x.indrelid = {rel} AND x.indisprimary ORDER BY k.n"
        ),
    )
    .await?
    .iter()
    .map(|r| cell(r, 0))
    .collect())
}

/// [`TypeFacts`] from five columns of a row starting at `at` (base oid, typmod, typtype,
/// category, format_type).
pub(crate) fn facts_of(r: &[Option<String>], at: usize) -> TypeFacts {
    let ch = |i| cell(r, i).chars().next().unwrap_or(' ');
    TypeFacts {
        oid: cell(r, at).parse().unwrap_or(0),
        typmod: cell(r, at + 1).parse().unwrap_or(-1),
        typtype: ch(at + 2),
        category: ch(at + 3),
        name: cell(r, at + 4),
    }
}

/// The catalog on one connection.
pub(crate) struct PgCatalog<'a> {
    pub(crate) session: Session,
    pub(crate) source: &'a PostgresSource,
}

impl PgCatalog<'_> {
    fn info(&self, t: &TableId) -> Result<TableInfo, SourceError> {
        self.session
            .rt()
            .block_on(table_info(self.session.client(), t, &regclass(t)))
    }

    fn one(&self, sql: &str) -> Result<String, SourceError> {
        Ok(self
            .session
            .rows(sql)?
            .first()
            .map(|r| cell(r, 0))
            .unwrap_or_default())
    }
}

/// Every user table: schema, name, oid, replica identity (`d`, `n`, `f`, `i`), has a primary key.
const USER_TABLES: &str = "SELECT n.nspname::text, c.relname::text, c.oid::int8, \
     c.relreplident::text, EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = c.oid AND x.indisprimary)::text \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' \
     AND n.nspname NOT LIKE 'pg\\_temp%' ORDER BY 1, 2";

impl Catalog for PgCatalog<'_> {
    fn tables(&mut self) -> Result<Vec<TableId>, SourceError> {
        Ok(self
            .session
            .rows(USER_TABLES)?
            .iter()
            .map(|r| TableId::new(cell(r, 0), cell(r, 1)))
            .collect())
    }

    fn columns(&mut self, table: &TableId) -> Result<Vec<CatalogColumn>, SourceError> {
        let info = self.info(table)?;
        Ok(info
            .columns
            .iter()
            .map(|c| CatalogColumn {
                name: c.name.clone(),
                in_primary_key: info.primary_key.contains(&c.name),
            })
            .collect())
    }

    fn primary_keyed(&mut self) -> Result<HashSet<TableId>, SourceError> {
        Ok(self
            .session
            .rows(USER_TABLES)?
            .iter()
            .filter(|r| cell(r, 4) == "true")
            .map(|r| TableId::new(cell(r, 0), cell(r, 1)))
            .collect())
    }

    fn unique_key(&mut self, table: &TableId) -> Result<Option<Vec<String>>, SourceError> {
        // A unique index on plain columns, all NOT NULL, not partial; the one with the fewest
        // columns (then the oldest).
        let found = self.session.rows(&format!(
            "SELECT x.indexrelid::int8, a.attname::text FROM pg_index x \
             CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum \
             WHERE x.indrelid = {} AND x.indisunique AND x.indpred IS NULL AND x.indexprs IS NULL \
             AND NOT EXISTS (SELECT 1 FROM unnest(x.indkey) u(attnum) JOIN pg_attribute b \
               ON b.attrelid = x.indrelid AND b.attnum = u.attnum WHERE NOT b.attnotnull) \
             ORDER BY x.indnkeyatts, x.indexrelid, k.n",
            regclass(table)
        ))?;
        let Some(first) = found.first().map(|r| cell(r, 0)) else {
            return Ok(None);
        };
        Ok(Some(
            found
                .iter()
                .filter(|r| cell(r, 0) == first)
                .map(|r| cell(r, 1))
                .collect(),
        ))
    }

    fn definition(&mut self, table: &TableId) -> Result<TableDef, SourceError> {
        let info = self.info(table)?;
        let indexes = self.session.rows(&format!(
            "SELECT i.relname::text, x.indisunique::text, a.attname::text FROM pg_index x \
             JOIN pg_class i ON i.oid = x.indexrelid \
             CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum \
             WHERE x.indrelid = {} AND NOT x.indisprimary AND x.indpred IS NULL AND x.indexprs IS NULL \
             ORDER BY i.relname, k.n",
            regclass(table)
        ))?;
        let mut defs: Vec<IndexDef> = Vec::new();
        for r in &indexes {
            let name = cell(r, 0);
            match defs.last_mut() {
                Some(d) if d.name == name => d.columns.push((cell(r, 2), None)),
                _ => defs.push(IndexDef {
                    name,
                    unique: cell(r, 1) == "true",
                    columns: vec![(cell(r, 2), None)],
                }),
            }
        }
        let in_key = |c: &str| {
            info.primary_key.iter().any(|k| k == c)
                || defs.iter().any(|d| d.columns.iter().any(|(n, _)| n == c))
        };
        Ok(TableDef {
            columns: info
                .columns
                .iter()
                .map(|c| ColumnDef {
                    name: c.name.clone(),
                    column_type: c.ty.mysql_type(in_key(&c.name)),
                    nullable: c.nullable,
                    // PostgreSQL defaults are PostgreSQL expressions; every row carries its
                    // values, so the destination needs none.
                    default: None,
                    charset: None,
                    collation: None,
                    json: c.ty.kind == Kind::Json,
                    auto_increment: false,
                })
                .collect(),
            primary_key: info.primary_key.clone(),
            indexes: defs,
        })
    }

    fn end(&mut self) -> Result<Position, SourceError> {
        let lsn = self.one("SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::int8")?;
        Ok(lsn_position(lsn.parse().unwrap_or(0)))
    }

    fn server_id(&mut self) -> Result<u32, SourceError> {
        Ok(0)
    }

    fn precheck(&mut self, tables: &[TableId], rows: u64) -> Result<Findings, SourceError> {
        let _ = rows;
        let mut out = Findings::default();
        let mut fail = |item: &str, problem: String, fix: String| {
            out.failures.push(Finding {
                item: item.into(),
                problem,
                fix,
            })
        };
        let setting = |this: &Self, name: &str| {
            this.one(&format!("SELECT current_setting({})", literal(name)))
        };
        let wal_level = setting(self, "wal_level")?;
        if wal_level != "logical" {
            fail(
                "wal_level",
                format!("wal_level is {wal_level}: logical replication needs logical"),
                "set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL".into(),
            );
        }
        let encoding = setting(self, "server_encoding")?;
        if encoding != "UTF8" {
            fail(
                "server_encoding",
                format!("the database's encoding is {encoding}: pgoutput sends text in it"),
                "use a database created with ENCODING 'UTF8'".into(),
            );
        }
        let role = self.session.rows(
            "SELECT current_user::text, (rolreplication OR rolsuper)::text FROM pg_roles WHERE rolname = current_user",
        )?;
        if let Some(r) = role.first() {
            if cell(r, 1) != "true" {
                let user = cell(r, 0);
                fail(
                    "privileges",
                    format!("user {user} has no REPLICATION privilege"),
                    format!("ALTER ROLE {} REPLICATION", ident(&user)),
                );
            }
        }
        let slot = &self.source.slot;
        let slots = self.session.rows(&format!(
            "SELECT current_setting('max_replication_slots')::int8, \
             (SELECT count(*) FROM pg_replication_slots)::int8, \
             current_setting('max_wal_senders')::int8, \
             (SELECT count(*) FROM pg_stat_replication)::int8, \
             (SELECT active::text FROM pg_replication_slots WHERE slot_name = {0}), \
             (SELECT active_pid::text FROM pg_replication_slots WHERE slot_name = {0}), \
             (SELECT plugin::text FROM pg_replication_slots WHERE slot_name = {0})",
            literal(slot)
        ))?;
        if let Some(r) = slots.first() {
            let num = |i| cell(r, i).parse::<i64>().unwrap_or(0);
            let ours = r.get(4).cloned().flatten();
            if ours.is_none() && num(1) >= num(0) {
                fail(
                    "max_replication_slots",
                    format!("all {} replication slots are taken", num(0)),
                    "raise max_replication_slots in postgresql.conf and restart, or drop an unused slot (pg_drop_replication_slot)".into(),
                );
            }
            if num(3) >= num(2) {
                fail(
                    "max_wal_senders",
                    format!("all {} WAL senders are busy", num(2)),
                    "raise max_wal_senders in postgresql.conf and restart".into(),
                );
            }
            if ours.as_deref() == Some("true") {
                fail(
                    "slot",
                    format!(
                        "replication slot {slot} is in use by another client (pid {})",
                        cell(r, 5)
                    ),
                    "stop the other client, or give this project its own source.slot".into(),
                );
            }
            if ours.is_some() && cell(r, 6) != "pgoutput" {
                fail(
                    "slot",
                    format!("replication slot {slot} uses the {} plugin", cell(r, 6)),
                    "drop it (pg_drop_replication_slot) or give this project another source.slot"
                        .into(),
                );
            }
        }
        if !self.source.create_publication {
            let publication = &self.source.publication;
            let found = self.one(&format!(
                "SELECT count(*) FROM pg_publication WHERE pubname = {}",
                literal(publication)
            ))?;
            if found == "0" {
                fail(
                    "publication",
                    format!("publication {publication} does not exist"),
                    format!(
                        "CREATE PUBLICATION {} FOR TABLE ... (the selected tables), or set source.create_publication: true",
                        ident(publication)
                    ),
                );
            }
        }
        // Updates and deletes of a table without a key and without REPLICA IDENTITY FULL
        // (or an index) are refused by PostgreSQL once it is published, and cannot be
        // captured.
        let identified = identified(&self.session)?;
        for t in tables {
            if identified.get(t) == Some(&false) {
                fail(
                    "replica_identity",
                    format!("{t} has no primary key and no REPLICA IDENTITY: its updates and deletes cannot be captured"),
                    format!(
                        "ALTER TABLE {}.{} REPLICA IDENTITY FULL (or add a primary key)",
                        ident(&t.db),
                        ident(&t.table)
                    ),
                );
            }
        }
        // Every column's type must have a place in the event model.
        for t in tables {
            if let Err(e) = self.info(t) {
                match e {
                    SourceError::Definite(m) => fail(
                        "types",
                        m,
                        "exclude the table (objects.exclude) or give the column a supported type (docs/POSTGRES.md)".into(),
                    ),
                    other => return Err(other),
                }
            }
        }
        out.checked = [
            "wal_level",
            "server_encoding",
            "privileges",
            "max_replication_slots",
            "max_wal_senders",
            "slot",
            "publication",
            "replica_identity",
            "types",
        ]
        .map(String::from)
        .to_vec();
        Ok(out)
    }
}
