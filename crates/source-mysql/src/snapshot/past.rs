//! A table's definition at a past position, from its definition now and the DDL statements the
//! log holds between then and now: each statement undone, newest first. What a statement
//! replaced without saying what was there before (the type of a modified or dropped column)
//! is not known: such a column keeps an empty `column_type`, which schema sync accepts as any
//! type of an existing table, and refuses for a table it would have to create.

use sluice_core::{ColumnDef, TableDef};
use sqlparser::ast::{AlterTableOperation, ObjectType, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

/// What is known of a table before one of its DDL statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Before {
    /// `def` is now the definition before the statement (some column types may be unknown).
    Known,
    /// The table did not exist before the statement (it created the table).
    Absent,
    /// Nothing can be said of the table before the statement (it was dropped and created again,
    /// or renamed), and why.
    Unknown(String),
}

/// A column that existed with a type the log does not tell.
fn unknown_column(name: &str) -> ColumnDef {
    ColumnDef {
        name: name.to_string(),
        column_type: String::new(),
        nullable: true,
        default: None,
        charset: None,
        collation: None,
        json: false,
        auto_increment: false,
    }
}

fn position_of(def: &TableDef, name: &str) -> Option<usize> {
    def.columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
}

/// Undoes DDL statement `sql` on `def`, its table's definition just after it.
pub fn undo_ddl(def: &mut TableDef, sql: &str) -> Before {
    let statements = match Parser::parse_sql(&MySqlDialect {}, sql) {
        Ok(s) => s,
        Err(e) => return Before::Unknown(format!("`{sql}` cannot be parsed ({e})")),
    };
    for st in statements.iter().rev() {
        match st {
            Statement::CreateTable(_) => return Before::Absent,
            Statement::Drop {
                object_type: ObjectType::Table,
                ..
            } => return Before::Unknown(format!("`{sql}` dropped it, and it was created again")),
            Statement::RenameTable(_) => return Before::Unknown(format!("`{sql}` renamed it")),
            Statement::AlterTable(a) => {
                for op in a.operations.iter().rev() {
                    match op {
                        AlterTableOperation::AddColumn { column_def, .. } => {
                            if let Some(i) = position_of(def, &column_def.name.value) {
                                def.columns.remove(i);
                            }
                            def.primary_key
                                .retain(|k| !k.eq_ignore_ascii_case(&column_def.name.value));
                        }
                        AlterTableOperation::DropColumn { column_names, .. } => {
                            for n in column_names {
                                if position_of(def, &n.value).is_none() {
                                    def.columns.push(unknown_column(&n.value));
                                }
                            }
                        }
                        AlterTableOperation::ModifyColumn { col_name, .. } => {
                            if let Some(i) = position_of(def, &col_name.value) {
                                def.columns[i].column_type.clear();
                            }
                        }
                        AlterTableOperation::ChangeColumn {
                            old_name, new_name, ..
                        } => {
                            if let Some(i) = position_of(def, &new_name.value) {
                                def.columns[i].name = old_name.value.clone();
                                def.columns[i].column_type.clear();
                            }
                        }
                        AlterTableOperation::RenameColumn {
                            old_column_name,
                            new_column_name,
                        } => {
                            if let Some(i) = position_of(def, &new_column_name.value) {
                                def.columns[i].name = old_column_name.value.clone();
                            }
                        }
                        AlterTableOperation::RenameTable { .. } => {
                            return Before::Unknown(format!("`{sql}` renamed it"))
                        }
                        // Indexes, constraints and table options: not compared by schema sync.
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Before::Known
}

/// The columns whose type at the past position is not known.
pub fn unknown_types(def: &TableDef) -> Vec<&str> {
    def.columns
        .iter()
        .filter(|c| c.column_type.is_empty())
        .map(|c| c.name.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &str) -> ColumnDef {
        ColumnDef {
            column_type: ty.into(),
            ..unknown_column(name)
        }
    }

    #[test]
    fn statements_are_undone_newest_first() {
        let mut def = TableDef {
            columns: vec![
                col("id", "int(11)"),
                col("f_1", "int(11)"),
                col("f_3", "varchar(9)"),
                col("w", "int(11)"),
            ],
            primary_key: vec!["id".into()],
            indexes: Vec::new(),
        };
        // Oldest first, as the log has them; undone newest first.
        let log = [
            "ALTER TABLE t ADD COLUMN f_3 VARCHAR(9)",
            "ALTER TABLE t DROP COLUMN gone",
            "ALTER TABLE t CHANGE COLUMN v w INT",
            "CREATE INDEX i ON t (w)",
        ];
        for sql in log.iter().rev() {
            assert_eq!(undo_ddl(&mut def, sql), Before::Known, "{sql}");
        }
        let names: Vec<&str> = def.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "f_1", "v", "gone"]);
        assert_eq!(unknown_types(&def), ["v", "gone"]);
        assert_eq!(
            undo_ddl(&mut def, "CREATE TABLE t (id INT)"),
            Before::Absent
        );
        assert!(matches!(
            undo_ddl(&mut def, "RENAME TABLE a TO t"),
            Before::Unknown(_)
        ));
        assert!(matches!(
            undo_ddl(&mut def, "DROP TABLE t"),
            Before::Unknown(_)
        ));
    }
}
