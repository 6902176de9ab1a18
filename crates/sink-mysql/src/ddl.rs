//! Which source DDL a database destination applies, and how: the statement is parsed with
//! `sqlparser`, checked against the list below, pointed at the destination table, translated
//! for OceanBase (character sets and collations), and printed back.
//!
//! Applied: `ALTER TABLE` with only ADD/DROP/MODIFY/CHANGE COLUMN, ADD [UNIQUE] INDEX/KEY and
//! DROP INDEX/KEY, or only RENAME TO; `CREATE [UNIQUE] INDEX ... ON`; `DROP INDEX ... ON`;
//! `TRUNCATE TABLE`; `DROP TABLE` of one table; `RENAME TABLE` of one table to a name the
//! project selects; `CREATE TABLE` with its columns (not `LIKE` or `AS SELECT`). For a logical
//! table (sharded source) only the column and index changes and TRUNCATE (this shard's rows)
//! are. Anything else is refused with the statement, so the project stops instead of drifting
//! from the source (or skips it, when the project says so).

use mysql_async::prelude::Queryable;
use sluice_core::sink::SinkError;
use sluice_core::TableId;
use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, Ident, ObjectName, ObjectType, Statement,
    TableConstraint,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

fn dest_name(dest: &TableId) -> ObjectName {
    ObjectName::from(vec![
        Ident::with_quote('`', dest.db.clone()),
        Ident::with_quote('`', dest.table.clone()),
    ])
}

/// OceanBase knows only utf8mb4 (`utf8mb4_general_ci`, `utf8mb4_bin`) and binary.
fn translate_options(options: &mut [ColumnOption]) {
    let mut bin = false;
    for o in options.iter() {
        if let ColumnOption::Collation(c) = o {
            bin = c.to_string().to_ascii_lowercase().ends_with("_bin");
        }
    }
    for o in options.iter_mut() {
        match o {
            ColumnOption::CharacterSet(cs) if !cs.to_string().eq_ignore_ascii_case("binary") => {
                *cs = ObjectName::from(vec![Ident::new("utf8mb4")]);
            }
            ColumnOption::Collation(c) => {
                *c = ObjectName::from(vec![Ident::new(if bin {
                    "utf8mb4_bin"
                } else {
                    "utf8mb4_general_ci"
                })]);
            }
            _ => {}
        }
    }
}

fn translate_column(def: &mut ColumnDef) {
    let mut options: Vec<ColumnOption> = def.options.iter().map(|o| o.option.clone()).collect();
    translate_options(&mut options);
    for (d, o) in def.options.iter_mut().zip(options) {
        d.option = o;
    }
}

/// What to do at the destination for one source DDL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Run this statement.
    Run(String),
    /// Run this CREATE TABLE; every writer must see the table before writing to it.
    Create(String),
    /// Remove the rows of this shard (TRUNCATE of one physical table of a logical table).
    ClearShard,
    /// Nothing to do at the destination (a temporary table, table options), and why.
    Skip(&'static str),
}

/// What to do at the destination for source DDL `sql` on the table delivered to `dest` (renamed
/// to `to`, when the project selects the new name), or why it is not applied.
pub fn translate(
    sql: &str,
    dest: &TableId,
    to: Option<&TableId>,
    oceanbase: bool,
    sharded: bool,
) -> Result<Plan, String> {
    let refuse = |why: &str| {
        Err(format!(
            "the DDL `{sql}` is not applied to a database destination ({why}); apply it there by \
             hand and restart, set destination.unsupported_ddl: ignore to skip such statements, \
             or set options.ddl: false to deliver no DDL"
        ))
    };
    if sluice_core::ddl_text::alters_only_table_options(sql) {
        return Ok(Plan::Skip(
            "table options (comment, engine, ...) are not applied",
        ));
    }
    let mut statements = match Parser::parse_sql(&MySqlDialect {}, sql) {
        Ok(s) => s,
        Err(e) => return refuse(&format!("it cannot be parsed: {e}")),
    };
    if statements.len() != 1 {
        return refuse("one statement expected");
    }
    let mut st = statements.remove(0);
    let table_ddl = matches!(
        st,
        Statement::Truncate(_) | Statement::RenameTable(_) | Statement::CreateTable(_)
    ) || matches!(
        st,
        Statement::Drop {
            object_type: ObjectType::Table,
            ..
        }
    );
    if sharded && table_ddl {
        if let Statement::Truncate(_) = st {
            return Ok(Plan::ClearShard);
        }
        return refuse(
            "a logical table follows only column and index changes and TRUNCATE of its shards",
        );
    }
    let renamed = |what: &str| match to {
        Some(t) => Ok(dest_name(t)),
        None => Err(format!(
            "the DDL `{sql}` is not applied to a database destination ({what} renames the table to \
             a name the project does not select); include the new name in objects.include, set \
             destination.unsupported_ddl: ignore to leave the destination table as it is, or set \
             options.ddl: false"
        )),
    };
    match &mut st {
        Statement::AlterTable(a)
            if !a.operations.is_empty()
                && a.operations
                    .iter()
                    .all(|op| matches!(op, AlterTableOperation::RenameTable { .. })) =>
        {
            return Ok(Plan::Run(format!(
                "RENAME TABLE {} TO {}",
                dest_name(dest),
                renamed("ALTER TABLE ... RENAME")?
            )));
        }
        Statement::AlterTable(a) => {
            for op in a.operations.iter_mut() {
                match op {
                    AlterTableOperation::AddColumn { column_def, .. } => {
                        if oceanbase {
                            translate_column(column_def);
                        }
                    }
                    AlterTableOperation::ModifyColumn { options, .. }
                    | AlterTableOperation::ChangeColumn { options, .. } => {
                        if oceanbase {
                            translate_options(options);
                        }
                    }
                    AlterTableOperation::DropColumn { .. }
                    | AlterTableOperation::DropIndex { .. } => {}
                    AlterTableOperation::AddConstraint {
                        constraint: TableConstraint::Index(_) | TableConstraint::Unique(_),
                        ..
                    } => {}
                    other => {
                        return refuse(&format!("`{other}` changes more than columns and indexes"))
                    }
                }
            }
            a.name = dest_name(dest);
        }
        Statement::CreateIndex(ci) => ci.table_name = dest_name(dest),
        Statement::Drop {
            object_type: ObjectType::Index,
            table: Some(t),
            ..
        } => *t = dest_name(dest),
        Statement::Truncate(t) => {
            if t.table_names.len() != 1 {
                return refuse("TRUNCATE of several tables");
            }
            return Ok(Plan::Run(format!("TRUNCATE TABLE {}", dest_name(dest))));
        }
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            temporary,
            ..
        } => {
            if *temporary {
                return Ok(Plan::Skip("a temporary table is not at the destination"));
            }
            if names.len() != 1 {
                return refuse("DROP TABLE of several tables; drop them one per statement");
            }
            // IF EXISTS: replayed after a crash, the table is already gone.
            return Ok(Plan::Run(format!(
                "DROP TABLE IF EXISTS {}",
                dest_name(dest)
            )));
        }
        Statement::RenameTable(pairs) => {
            if pairs.len() != 1 {
                return refuse("RENAME TABLE of several tables; rename them one per statement");
            }
            return Ok(Plan::Run(format!(
                "RENAME TABLE {} TO {}",
                dest_name(dest),
                renamed("RENAME TABLE")?
            )));
        }
        Statement::CreateTable(ct) => {
            if ct.temporary {
                return Ok(Plan::Skip("a temporary table is not at the destination"));
            }
            if ct.like.is_some() || ct.query.is_some() || ct.columns.is_empty() {
                return refuse("CREATE TABLE ... LIKE and ... AS SELECT are not; only a CREATE TABLE with its columns");
            }
            ct.name = dest_name(dest);
            // Replayed after a crash, the table is already there.
            ct.if_not_exists = true;
            if oceanbase {
                for c in ct.columns.iter_mut() {
                    translate_column(c);
                }
                strip_charset_options(&mut ct.table_options);
            }
            return Ok(Plan::Create(st.to_string()));
        }
        _ => return refuse(
            "only ALTER TABLE on columns and indexes, CREATE/DROP INDEX, TRUNCATE, DROP TABLE, \
                 RENAME TABLE and CREATE TABLE are",
        ),
    }
    Ok(Plan::Run(st.to_string()))
}

/// OceanBase: the table's default character set and collation go (its default, utf8mb4, is
/// what every text column becomes there).
fn strip_charset_options(options: &mut sqlparser::ast::CreateTableOptions) {
    use sqlparser::ast::{CreateTableOptions, SqlOption};
    let keep = |o: &SqlOption| match o {
        SqlOption::KeyValue { key, .. } => {
            let k = key.value.to_ascii_uppercase();
            !(k.contains("CHARSET") || k.contains("CHARACTER SET") || k.contains("COLLATE"))
        }
        _ => true,
    };
    match options {
        CreateTableOptions::Plain(v)
        | CreateTableOptions::With(v)
        | CreateTableOptions::Options(v)
        | CreateTableOptions::TableProperties(v) => v.retain(keep),
        CreateTableOptions::None => {}
    }
}

/// Applying one DDL statement at the destination, in stream order.
use crate::apply::write_checkpoint;
use crate::session::wait_visible;
use crate::{first_writer, q, unavailable, SHARD_COLUMN};

impl crate::MysqlSink {
    /// One DDL statement, once: skipped when every writer is past it; a replay of a statement
    /// that was applied before a crash (duplicate column or index, nothing to drop) counts as
    /// applied.
    pub(crate) fn apply_ddl(
        &mut self,
        d: &sluice_core::Ddl,
        sequence: Option<u64>,
    ) -> Result<(), SinkError> {
        let Some(dest) = d.table.as_ref().map(|t| self.dest_of(t)) else {
            return Ok(());
        };
        if sequence.is_some_and(|s| s <= self.applied_floor()) {
            return Ok(());
        }
        let sharded = self.cfg.shard.is_some();
        let plan = match translate(&d.sql, &dest, d.to.as_deref(), self.oceanbase, sharded) {
            Ok(plan) => plan,
            Err(e) if self.cfg.ignore_other_ddl => {
                tracing::warn!("skipped at {}: {e}", d.pos);
                return Ok(());
            }
            Err(e) => return Err(SinkError::Rejected(format!("{e} (at {})", d.pos))),
        };
        let (sql, params, created) = match plan {
            Plan::Run(sql) => (sql, Vec::new(), false),
            Plan::Create(sql) => (sql, Vec::new(), true),
            Plan::ClearShard => {
                let origin = match (&self.cfg.shard, &d.table) {
                    (Some(s), Some(t)) => format!("{s}/{}.{}", t.db, t.table),
                    _ => return Ok(()),
                };
                (
                    format!(
                        "DELETE FROM {}.{} WHERE {} = ?",
                        q(&dest.db),
                        q(&dest.table),
                        q(SHARD_COLUMN)
                    ),
                    vec![mysql_async::Value::Bytes(origin.into_bytes())],
                    false,
                )
            }
            Plan::Skip(why) => {
                tracing::info!("`{}` at {}: not applied: {why}", d.sql, d.pos);
                (String::new(), Vec::new(), false)
            }
        };
        let meta_db = q(&self.cfg.meta_db);
        let project = self.cfg.project.clone();
        let writers = self.conns.len();
        let pos = d.pos.to_string();
        let conn = first_writer(&mut self.conns)?;
        self.rt.block_on(async {
            if created {
                conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {}", q(&dest.db)))
                    .await
                    .map_err(unavailable("create the database"))?;
            }
            let done = if sql.is_empty() {
                Ok(())
            } else if params.is_empty() {
                conn.query_drop(&sql).await
            } else {
                conn.exec_drop(&sql, params).await
            };
            match done {
                Ok(()) => {}
                Err(mysql_async::Error::Server(e)) if matches!(e.code, 1060 | 1061 | 1091) => {
                    // Normal for a sharded table (every shard runs the DDL): not a warning.
                    if sharded {
                        tracing::info!("{sql}: {} (already applied by another shard)", e.message);
                    } else {
                        tracing::warn!("{sql}: {} (applied before a restart)", e.message);
                    }
                }
                // A RENAME replayed after a crash: the old name is gone, the new one is there.
                Err(mysql_async::Error::Server(e))
                    if e.code == 1146 && sql.starts_with("RENAME TABLE") =>
                {
                    tracing::warn!("{sql}: {} (applied before a restart)", e.message);
                }
                Err(e) => {
                    return Err(SinkError::Rejected(format!(
                        "the destination refused `{sql}` (from `{}` at {}): {e}",
                        d.sql, d.pos
                    )))
                }
            }
            if let Some(seq) = sequence {
                write_checkpoint(conn, &meta_db, &project, 0..writers, seq, &pos).await?;
            }
            Ok(())
        })?;
        if created {
            // Every writer writes the new table: each must see it first (see `wait_visible`).
            let name = format!("{}.{}", q(&dest.db), q(&dest.table));
            let conns = &mut self.conns;
            self.rt.block_on(async {
                for c in conns.iter_mut().flatten() {
                    wait_visible(c, &name).await?;
                }
                Ok::<_, SinkError>(())
            })?;
        }
        self.dest_columns.remove(&dest);
        if let Some(seq) = sequence {
            for a in self.applied.iter_mut() {
                *a = (*a).max(seq);
            }
            self.keyless_applied = self.keyless_applied.max(seq);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TableId {
        TableId::new("copy", "orders")
    }

    /// The statement of a plan that runs one.
    fn run(p: Result<Plan, String>) -> String {
        match p {
            Ok(Plan::Run(s) | Plan::Create(s)) => s,
            other => panic!("not a statement: {other:?}"),
        }
    }

    fn plain(sql: &str) -> String {
        run(translate(sql, &t(), None, false, false))
    }

    #[test]
    fn column_and_index_changes_point_at_the_destination() {
        let s = run(translate(
            "ALTER TABLE orders ADD COLUMN note VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_bin DEFAULT 'x'",
            &t(),
            None,
            true,
            false,
        ));
        assert_eq!(
            s,
            "ALTER TABLE `copy`.`orders` ADD COLUMN note VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT 'x'"
        );
        assert_eq!(
            plain("ALTER TABLE shop.orders MODIFY COLUMN v VARCHAR(200)"),
            "ALTER TABLE `copy`.`orders` MODIFY COLUMN v VARCHAR(200)"
        );
        assert!(plain("CREATE INDEX i ON orders (v)").contains("ON `copy`.`orders`"));
        assert!(plain("DROP INDEX i ON orders").contains("ON `copy`.`orders`"));
        let s = plain("ALTER TABLE orders DROP COLUMN v, ADD INDEX j (w)");
        assert!(
            s.starts_with("ALTER TABLE `copy`.`orders` DROP COLUMN v"),
            "{s}"
        );
    }

    #[test]
    fn table_ddl_points_at_the_destination() {
        assert_eq!(
            plain("TRUNCATE TABLE orders"),
            "TRUNCATE TABLE `copy`.`orders`"
        );
        assert_eq!(
            plain("DROP TABLE orders"),
            "DROP TABLE IF EXISTS `copy`.`orders`"
        );
        let to = TableId::new("copy", "o2");
        for sql in [
            "RENAME TABLE orders TO o2",
            "ALTER TABLE orders RENAME TO o2",
        ] {
            assert_eq!(
                run(translate(sql, &t(), Some(&to), false, false)),
                "RENAME TABLE `copy`.`orders` TO `copy`.`o2`"
            );
            let e = translate(sql, &t(), None, false, false).expect_err(sql);
            assert!(
                e.contains("does not select") && e.contains("objects.include"),
                "{e}"
            );
        }
        let s = run(translate(
            "CREATE TABLE orders (id INT PRIMARY KEY, v VARCHAR(9) CHARACTER SET latin1) DEFAULT CHARSET=latin1",
            &t(),
            None,
            true,
            false,
        ));
        assert!(
            s.starts_with("CREATE TABLE IF NOT EXISTS `copy`.`orders`"),
            "{s}"
        );
        assert!(
            s.contains("CHARACTER SET utf8mb4") && !s.contains("latin1"),
            "{s}"
        );
        assert_eq!(
            translate(
                "DROP TEMPORARY TABLE IF EXISTS orders",
                &t(),
                None,
                false,
                false
            ),
            Ok(Plan::Skip("a temporary table is not at the destination"))
        );
        assert_eq!(
            translate("TRUNCATE TABLE orders", &t(), None, false, true),
            Ok(Plan::ClearShard)
        );
    }

    #[test]
    fn other_ddl_is_refused_with_the_statement() {
        for (sql, sharded) in [
            ("ALTER TABLE orders ADD PRIMARY KEY (id)", false),
            ("DROP TABLE orders, other", false),
            ("RENAME TABLE orders TO a, b TO c", false),
            ("CREATE TABLE orders LIKE other", false),
            ("CREATE TABLE orders AS SELECT 1", false),
            ("DROP TABLE orders", true),
            ("ALTER TABLE orders RENAME TO o2, ADD COLUMN x INT", false),
        ] {
            let e = translate(sql, &t(), None, false, sharded).expect_err(sql);
            assert!(e.contains(sql) && e.contains("options.ddl: false"), "{e}");
        }
    }
}
