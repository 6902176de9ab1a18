//! Which source DDL a database destination applies, and how: the statement is parsed with
//! `sqlparser`, checked against the list below, pointed at the destination table, translated
//! for OceanBase (character sets and collations), and printed back.
//!
//! Applied: `ALTER TABLE` with only ADD/DROP/MODIFY/CHANGE COLUMN, ADD [UNIQUE] INDEX/KEY and
//! DROP INDEX/KEY; `CREATE [UNIQUE] INDEX ... ON`; `DROP INDEX ... ON`. Anything else is refused
//! with the statement, so the project stops instead of drifting from the source.

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

/// The statement to run at the destination for source DDL `sql`, or why it is not applied.
pub fn translate(sql: &str, dest: &TableId, oceanbase: bool) -> Result<String, String> {
    let refuse = |why: &str| {
        Err(format!(
            "the DDL `{sql}` is not applied to a database destination ({why}); apply it there by \
             hand and restart, or set options.ddl: false to deliver no DDL"
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
    match &mut st {
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
        _ => {
            return refuse(
                "only ALTER TABLE on columns and indexes, CREATE INDEX and DROP INDEX are",
            )
        }
    }
    Ok(st.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> TableId {
        TableId::new("copy", "orders")
    }

    #[test]
    fn column_and_index_changes_point_at_the_destination() {
        let s = translate(
            "ALTER TABLE orders ADD COLUMN note VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_bin DEFAULT 'x'",
            &t(),
            true,
        )
        .expect("applied");
        assert_eq!(
            s,
            "ALTER TABLE `copy`.`orders` ADD COLUMN note VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT 'x'"
        );
        let s = translate(
            "ALTER TABLE shop.orders MODIFY COLUMN v VARCHAR(200)",
            &t(),
            false,
        )
        .expect("applied");
        assert_eq!(
            s,
            "ALTER TABLE `copy`.`orders` MODIFY COLUMN v VARCHAR(200)"
        );
        let s = translate("CREATE INDEX i ON orders (v)", &t(), false).expect("applied");
        assert!(s.contains("ON `copy`.`orders`"), "{s}");
        let s = translate("DROP INDEX i ON orders", &t(), false).expect("applied");
        assert!(s.contains("ON `copy`.`orders`"), "{s}");
        let s = translate(
            "ALTER TABLE orders DROP COLUMN v, ADD INDEX j (w)",
            &t(),
            false,
        )
        .expect("applied");
        assert!(
            s.starts_with("ALTER TABLE `copy`.`orders` DROP COLUMN v"),
            "{s}"
        );
    }

    #[test]
    fn other_ddl_is_refused_with_the_statement() {
        for sql in [
            "TRUNCATE TABLE orders",
            "RENAME TABLE orders TO o2",
            "ALTER TABLE orders RENAME TO o2",
            "DROP TABLE orders",
            "ALTER TABLE orders ADD PRIMARY KEY (id)",
        ] {
            let e = translate(sql, &t(), false).expect_err(sql);
            assert!(e.contains(sql) && e.contains("options.ddl: false"), "{e}");
        }
    }
}
