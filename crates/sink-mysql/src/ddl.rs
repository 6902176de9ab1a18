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
    /// Nothing to do at the destination (a temporary table), and why.
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
