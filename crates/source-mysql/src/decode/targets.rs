//! The tables a DDL statement names: the one it acts on, and a rename's new name.

use sluice_core::TableId;
use sqlparser::ast::{AlterTableOperation, ObjectType, RenameTableNameKind, Statement};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use super::history::table_of;

/// The table a DDL statement acts on (ALTER/CREATE/DROP/TRUNCATE TABLE, RENAME TABLE (the old
/// name), CREATE/DROP INDEX ... ON), whether or not the history knows it; None for statements
/// on no table or that cannot be parsed.
pub fn ddl_target(db: &str, sql: &str) -> Option<TableId> {
    let st = Parser::parse_sql(&MySqlDialect {}, sql)
        .ok()?
        .into_iter()
        .next()?;
    match st {
        Statement::CreateTable(ct) => Some(table_of(&ct.name, db)),
        Statement::AlterTable(at) => Some(table_of(&at.name, db)),
        Statement::RenameTable(r) => r.first().map(|r| table_of(&r.old_name, db)),
        Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        } => names.first().map(|n| table_of(n, db)),
        Statement::Drop {
            object_type: ObjectType::Index,
            table: Some(t),
            ..
        } => Some(table_of(&t, db)),
        Statement::CreateIndex(ci) => Some(table_of(&ci.table_name, db)),
        Statement::Truncate(t) => t.table_names.first().map(|n| table_of(&n.name, db)),
        _ => None,
    }
}

/// The new name of a table a single rename gives it (`RENAME TABLE a TO b`, `ALTER TABLE a
/// RENAME TO b`); None for anything else, a rename of several tables included.
pub fn rename_target(db: &str, sql: &str) -> Option<TableId> {
    let st = Parser::parse_sql(&MySqlDialect {}, sql)
        .ok()?
        .into_iter()
        .next()?;
    match st {
        Statement::RenameTable(r) if r.len() == 1 => r.first().map(|r| table_of(&r.new_name, db)),
        Statement::AlterTable(at) => at.operations.iter().find_map(|op| match op {
            AlterTableOperation::RenameTable { table_name } => {
                let name = match table_name {
                    RenameTableNameKind::As(n) | RenameTableNameKind::To(n) => n,
                };
                Some(table_of(name, db))
            }
            _ => None,
        }),
        _ => None,
    }
}
