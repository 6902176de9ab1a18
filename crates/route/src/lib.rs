//! Routing: which changes of the source reach the destination, and under which names.
//!
//! Invariant: a change is routed by the rules alone (no state), so a replay after a restart
//! routes exactly as the first pass did.
#![deny(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sluice_core::{Event, Op, TableId, TableSchema};

pub mod filter;
pub use filter::RowFilter;

/// One part (database or table) of a name in the project file: unquoted, where `*` matches any
/// run of characters, or quoted in backquotes as MySQL quotes identifiers (`` `my.db` ``,
/// `` `t*1` ``, ``` `a``b` ``` for a name with a backquote), where every character is itself.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Glob(String),
    Exact(String),
}

impl Part {
    fn matches(&self, s: &str) -> bool {
        match self {
            Part::Glob(p) => wild(p, s),
            Part::Exact(e) => e == s,
        }
    }

    /// The name, when the part matches one name only.
    fn exact(&self) -> Option<&str> {
        match self {
            Part::Exact(e) => Some(e),
            Part::Glob(g) if !g.contains('*') => Some(g),
            Part::Glob(_) => None,
        }
    }
}

/// Splits `db.table`, `db` or quoted forms (`` `my.db`.`t*1` ``, `` `my.db`.orders_* ``) into
/// its parts: a `.` separates only outside backquotes.
fn parts(text: &str) -> Result<Vec<Part>, String> {
    let bad = |why: &str| format!("{text:?} is not a db.table name: {why}");
    let mut out = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        let part = if chars.peek() == Some(&'`') {
            chars.next();
            let mut name = String::new();
            loop {
                match chars.next() {
                    Some('`') if chars.peek() == Some(&'`') => {
                        chars.next();
                        name.push('`');
                    }
                    Some('`') => break,
                    Some(c) => name.push(c),
                    None => return Err(bad("a backquote is not closed")),
                }
            }
            Part::Exact(name)
        } else {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                if c == '`' {
                    return Err(bad(
                        "quote the whole part in backquotes, e.g. `my.db`.`t*1`",
                    ));
                }
                name.push(c);
                chars.next();
            }
            Part::Glob(name)
        };
        if matches!(&part, Part::Glob(n) | Part::Exact(n) if n.is_empty()) {
            return Err(bad("a part is empty"));
        }
        out.push(part);
        match chars.next() {
            None => return Ok(out),
            Some('.') => {}
            Some(c) => return Err(bad(&format!("{c:?} after a quoted part; use `db`.`table`"))),
        }
    }
}

/// A routing rule that cannot be read, or a row a rule cannot be judged on (a row filter
/// naming a column the table lacks). Definite: the project file must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RouteError(pub String);

impl From<String> for RouteError {
    fn from(s: String) -> Self {
        RouteError(s)
    }
}

/// An exact table name of the project file: `db.table`, with either part in backquotes when it
/// holds `.`, `*`, spaces or quotes (`` `my.db`.`t*1` ``). No wildcards.
pub fn parse_table(text: &str) -> Result<TableId, RouteError> {
    let p = parts(text)?;
    let exact = |part: &Part| match part {
        Part::Exact(e) => Ok(e.clone()),
        Part::Glob(g) if g.contains('*') => Err(RouteError::from(format!(
            "{text:?}: a table name here takes no wildcard; quote a name with `*` in backquotes"
        ))),
        Part::Glob(g) => Ok(g.clone()),
    };
    match p.as_slice() {
        [db, table] => Ok(TableId::new(exact(db)?, exact(table)?)),
        _ => Err(RouteError::from(format!(
            "{text:?} must be db.table (quote a name with `.` in backquotes: `my.db`.`t`)"
        ))),
    }
}

/// A `db.table` pattern with `*` wildcards (`shop*.order_*`, `*.*`, `shop.orders`); a part in
/// backquotes is one exact name (`` `my.db`.`t*1` ``).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    db: Part,
    table: Part,
}

fn wild(pattern: &str, s: &str) -> bool {
    // Classic two-pointer glob with `*` only, over bytes: UTF-8 never starts a character with
    // a continuation byte, so a byte match is a character match (and this runs per row).
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si, mut star, mut mark) = (0usize, 0usize, None::<usize>, 0usize);
    while si < s.len() {
        if pi < p.len() && p[pi] != b'*' && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

impl Pattern {
    /// Parses `db.table` (`db` alone means every table of it), either part in backquotes to
    /// be taken literally.
    pub fn parse(text: &str) -> Result<Self, RouteError> {
        let mut p = parts(text)?;
        match p.len() {
            1 => Ok(Self {
                db: p.remove(0),
                table: Part::Glob("*".into()),
            }),
            2 => {
                let table = p.remove(1);
                Ok(Self {
                    db: p.remove(0),
                    table,
                })
            }
            _ => Err(RouteError::from(format!(
                "{text:?} is not a db.table pattern (quote a name with `.` in backquotes: `my.db`.`t`)"
            ))),
        }
    }

    /// The pattern that matches exactly this table.
    pub fn exact(t: &TableId) -> Self {
        Self {
            db: Part::Exact(t.db.clone()),
            table: Part::Exact(t.table.clone()),
        }
    }

    /// Whether the table matches.
    pub fn matches(&self, t: &TableId) -> bool {
        self.db.matches(&t.db) && self.table.matches(&t.table)
    }

    /// The database, when the pattern names one database only (to list its tables).
    pub fn db(&self) -> Option<&str> {
        self.db.exact()
    }
}

/// The routing rules of a project.
#[derive(Debug, Clone, Default)]
pub struct Router {
    /// Tables included (any match).
    pub include: Vec<Pattern>,
    /// Tables excluded (any match wins over include).
    pub exclude: Vec<Pattern>,
    /// `db.table` -> new `db.table` at the destination.
    pub rename: HashMap<TableId, TableId>,
    /// Per table (source name): the columns to deliver, in the given order of the table.
    /// Key columns must be among them (checked when the project is loaded).
    pub columns: HashMap<TableId, Vec<String>>,
    /// Row filters: the first pattern that matches a table gives its condition.
    pub filters: Vec<(Pattern, RowFilter)>,
    /// Key columns of tables without a primary key (from `objects.keys`, or a NOT NULL unique
    /// key found at start): their rows are delivered keyed by them.
    pub keys: HashMap<TableId, Vec<String>>,
    /// Row operations to deliver.
    pub ops: Vec<Op>,
    /// Deliver DDL.
    pub ddl: bool,
    /// Schemas as delivered, made once per source schema (not per row).
    pub shapes: Shapes,
}

/// The delivered schema (renamed, columns kept) of each source schema met, with the indexes of
/// the kept columns. One `Arc` per source schema: rows of one table share their schema, which
/// saves a copy per row and lets destinations group rows of one table by pointer. Each router
/// has its own (a clone starts empty: its rules may be changed).
#[derive(Default)]
pub struct Shapes(Mutex<HashMap<TableId, Vec<Shape>>>);

/// Schema versions kept per table (older ones are made again if they come back).
const SHAPES_PER_TABLE: usize = 4;

struct Shape {
    input: Arc<TableSchema>,
    output: Arc<TableSchema>,
    keep: Option<Vec<usize>>,
}

impl Clone for Shapes {
    fn clone(&self) -> Self {
        Shapes::default()
    }
}

impl std::fmt::Debug for Shapes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shapes")
    }
}

impl Router {
    /// Whether a table is selected.
    pub fn selects(&self, t: &TableId) -> bool {
        self.include.iter().any(|p| p.matches(t)) && !self.exclude.iter().any(|p| p.matches(t))
    }

    /// The schema rows of `schema` are delivered with, and which of their values they keep
    /// (None: all), made once per source schema.
    fn shape(&self, schema: &Arc<TableSchema>) -> (Arc<TableSchema>, Option<Vec<usize>>) {
        let same = |s: &&Shape| Arc::ptr_eq(&s.input, schema) || *s.input == **schema;
        if let Ok(shapes) = self.shapes.0.lock() {
            if let Some(s) = shapes.get(&schema.id).and_then(|l| l.iter().find(same)) {
                return (s.output.clone(), s.keep.clone());
            }
        }
        let (mut out, keep) = match self.columns.get(&schema.id) {
            Some(cols) => {
                let (s, idx) = projected(schema, cols);
                (s, Some(idx))
            }
            None => ((**schema).clone(), None),
        };
        if let Some(to) = self.rename.get(&schema.id) {
            out.id = to.clone();
        }
        let mut keyed = false;
        if out.primary_key.is_empty() {
            if let Some(names) = self.keys.get(&schema.id) {
                let idx: Option<Vec<usize>> = names
                    .iter()
                    .map(|n| {
                        out.columns
                            .iter()
                            .position(|c| c.name.eq_ignore_ascii_case(n))
                    })
                    .collect();
                if let Some(idx) = idx {
                    out.primary_key = idx;
                    keyed = true;
                }
            }
        }
        let out = if keep.is_none() && out.id == schema.id && !keyed {
            schema.clone()
        } else {
            Arc::new(out)
        };
        if let Ok(mut shapes) = self.shapes.0.lock() {
            let list = shapes.entry(schema.id.clone()).or_default();
            list.push(Shape {
                input: schema.clone(),
                output: out.clone(),
                keep: keep.clone(),
            });
            if list.len() > SHAPES_PER_TABLE {
                list.remove(0);
            }
        }
        (out, keep)
    }

    /// The row filter of a table, if any.
    pub fn filter_for(&self, t: &TableId) -> Option<&RowFilter> {
        self.filters
            .iter()
            .find(|(p, _)| p.matches(t))
            .map(|(_, f)| f)
    }

    /// The event as the destination should see it, or `None` when it is not delivered.
    /// Begin/Commit/Heartbeat pass through untouched. An error means a row filter cannot be
    /// evaluated on this row (it names a column the table does not have).
    ///
    /// With a row filter, an update is judged on both images: both pass -> the update; only
    /// the after image -> an insert of it (the row enters the selection); only the before
    /// image -> a delete of it (the row leaves); neither -> nothing. So a destination rebuilt
    /// from the messages holds exactly the source rows that pass.
    pub fn route(&self, e: Event) -> Result<Option<Event>, RouteError> {
        Ok(match e {
            Event::Row(mut r) => {
                if !self.selects(&r.table.id) {
                    return Ok(None);
                }
                if let Some(f) = self.filter_for(&r.table.id) {
                    // The error names the row (built only on failure: this runs per row).
                    let judge = |img: &Option<Vec<sluice_core::Value>>| match img {
                        Some(v) => f.passes(&r.table, v).map_err(|e| {
                            RouteError(format!("{} ({} at {})", e.0, r.table.id, r.pos))
                        }),
                        None => Ok(false),
                    };
                    // A before image without a column the condition reads (a PostgreSQL
                    // table with REPLICA IDENTITY DEFAULT logs only the key) cannot say
                    // whether the old row passed: it is taken as passing, so that a row
                    // leaving the selection is deleted (a delete of a row the destination
                    // never had changes nothing there).
                    let unknown = r.before.as_ref().is_some_and(|b| {
                        b.contains(&sluice_core::Value::Unavailable)
                            && f.columns().iter().any(|c| {
                                r.table
                                    .columns
                                    .iter()
                                    .position(|col| col.name.eq_ignore_ascii_case(c))
                                    .and_then(|i| b.get(i))
                                    .is_some_and(|v| *v == sluice_core::Value::Unavailable)
                            })
                    });
                    let before = unknown || judge(&r.before)?;
                    let after = judge(&r.after)?;
                    match (r.op, before, after) {
                        (Op::Insert, _, false) | (Op::Delete, false, _) => return Ok(None),
                        (Op::Update, false, false) => return Ok(None),
                        (Op::Update, false, true) => {
                            r.op = Op::Insert;
                            r.before = None;
                        }
                        (Op::Update, true, false) => {
                            r.op = Op::Delete;
                            r.after = None;
                        }
                        _ => {}
                    }
                }
                if !self.ops.contains(&r.op) {
                    return Ok(None);
                }
                let (schema, keep) = self.shape(&r.table);
                if let Some(idx) = keep {
                    let pick = |img: &mut Option<Vec<sluice_core::Value>>| {
                        if let Some(values) = img.take() {
                            *img =
                                Some(idx.iter().filter_map(|&i| values.get(i).cloned()).collect());
                        }
                    };
                    pick(&mut r.before);
                    pick(&mut r.after);
                }
                r.table = schema;
                Some(Event::Row(r))
            }
            Event::Ddl(mut d) => {
                if !self.ddl {
                    return Ok(None);
                }
                let routed = |t: &TableId| self.rename.get(t).cloned().unwrap_or_else(|| t.clone());
                match &d.table {
                    Some(t) if self.selects(t) => {
                        d.table = Some(routed(t));
                        d.to =
                            d.to.as_deref()
                                .filter(|t| self.selects(t))
                                .map(|t| Box::new(routed(t)));
                        Some(Event::Ddl(d))
                    }
                    _ => None,
                }
            }
            other => Some(other),
        })
    }
}

/// The schema with only the `keep` columns (by name, case-insensitive), and their indexes.
fn projected(table: &TableSchema, keep: &[String]) -> (TableSchema, Vec<usize>) {
    let idx: Vec<usize> = table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| keep.iter().any(|k| k.eq_ignore_ascii_case(&c.name)))
        .map(|(i, _)| i)
        .collect();
    let mut schema = table.clone();
    schema.columns = idx
        .iter()
        .filter_map(|&i| table.columns.get(i).cloned())
        .collect();
    schema.primary_key = table
        .primary_key
        .iter()
        .filter_map(|k| idx.iter().position(|i| i == k))
        .collect();
    (schema, idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_include_and_exclude() {
        let r = Router {
            include: vec![
                Pattern::parse("shop*.order_*").expect("p"),
                Pattern::parse("crm").expect("p"),
            ],
            exclude: vec![Pattern::parse("shop_test.*").expect("p")],
            ..Router::default()
        };
        let t = TableId::new;
        assert!(r.selects(&t("shop", "order_1")));
        assert!(r.selects(&t("shop_eu", "order_")));
        assert!(!r.selects(&t("shop", "orders")));
        assert!(!r.selects(&t("shop_test", "order_1")));
        assert!(r.selects(&t("crm", "anything")));
        assert!(!r.selects(&t("crmx", "a")));
        assert!(wild("a*b*c", "aXXbYc") && !wild("a*b*c", "aXXbY"));
        assert!(wild("é*ü", "éaü") && wild("*ü", "ßü") && !wild("é*", "e\u{301}x"));
    }

    #[test]
    fn quoted_parts_are_exact_names() {
        let t = TableId::new;
        let p = Pattern::parse("`my.db`.`t*1`").expect("p");
        assert!(p.matches(&t("my.db", "t*1")));
        assert!(!p.matches(&t("my.db", "t11")) && !p.matches(&t("my", "db.t*1")));
        let p = Pattern::parse("`my.db`.t_*").expect("p");
        assert!(p.matches(&t("my.db", "t_9")) && !p.matches(&t("myxdb", "t_9")));
        assert!(Pattern::parse("`my.db`")
            .expect("p")
            .matches(&t("my.db", "any")));
        assert_eq!(
            parse_table("`a``b`.`sp ace@'\"`").expect("t"),
            t("a`b", "sp ace@'\"")
        );
        assert_eq!(
            parse_table(" shop.orders ").expect("t"),
            t("shop", "orders")
        );
        for bad in ["`open.t", "shop", "a.b.c", "`x`y.t", "shop.*", "a..b", "."] {
            assert!(parse_table(bad).is_err(), "{bad}");
        }
        assert!(Pattern::parse("a.b.c").is_err());
    }

    /// A BIGINT column.
    fn col(n: &str) -> sluice_core::Column {
        sluice_core::Column {
            name: n.into(),
            ty: sluice_core::ColumnType::Integer {
                bytes: 8,
                unsigned: false,
            },
            sql_type: "bigint".into(),
            nullable: false,
        }
    }

    fn row(table: &Arc<TableSchema>, id: i64) -> Event {
        Event::Row(sluice_core::RowChange {
            op: Op::Insert,
            table: table.clone(),
            before: None,
            after: Some(vec![
                sluice_core::Value::Int(id),
                sluice_core::Value::Int(id * 10),
            ]),
            ts_ms: 0,
            txn: String::new(),
            seq: 0,
            pos: sluice_core::Position::new("binlog", "f.000001", 4),
        })
    }

    #[test]
    fn rows_of_one_table_share_their_delivered_schema() {
        let schema = TableSchema {
            id: TableId::new("d", "t"),
            columns: vec![col("id"), col("v")],
            primary_key: vec![0],
        };
        // Two copies of one schema, as two transactions' table maps could give.
        let (a, b) = (Arc::new(schema.clone()), Arc::new(schema));
        let r = Router {
            include: vec![Pattern::parse("d.*").expect("p")],
            rename: [(TableId::new("d", "t"), TableId::new("e", "u"))].into(),
            columns: [(TableId::new("d", "t"), vec!["id".to_string()])].into(),
            ops: vec![Op::Insert],
            ..Router::default()
        };
        let out = |e: Event| match r.route(e) {
            Ok(Some(Event::Row(r))) => r,
            other => panic!("{other:?}"),
        };
        let (x, y) = (out(row(&a, 1)), out(row(&b, 2)));
        assert!(Arc::ptr_eq(&x.table, &y.table), "one delivered schema");
        assert_eq!(x.table.id, TableId::new("e", "u"));
        assert_eq!(x.table.columns.len(), 1);
        assert_eq!(y.after, Some(vec![sluice_core::Value::Int(2)]));
    }

    #[test]
    fn a_before_image_without_the_filtered_column_counts_as_passing() {
        use sluice_core::Value::{Int, Unavailable};
        let table = Arc::new(TableSchema {
            id: TableId::new("d", "t"),
            columns: vec![col("id"), col("v")],
            primary_key: vec![0],
        });
        let r = Router {
            include: vec![Pattern::parse("d.*").expect("p")],
            filters: vec![(
                Pattern::parse("d.t").expect("p"),
                RowFilter::parse("v > 5").expect("f"),
            )],
            ops: vec![Op::Insert, Op::Update, Op::Delete],
            ..Router::default()
        };
        let update = |before: Vec<sluice_core::Value>, after: i64| {
            let e = Event::Row(sluice_core::RowChange {
                op: Op::Update,
                table: table.clone(),
                before: Some(before),
                after: Some(vec![Int(1), Int(after)]),
                ts_ms: 0,
                txn: String::new(),
                seq: 0,
                pos: sluice_core::Position::new("lsn", "", 4),
            });
            match r.route(e) {
                Ok(Some(Event::Row(r))) => Some(r.op),
                Ok(None) => None,
                other => panic!("{other:?}"),
            }
        };
        // Key only before: leaving is a delete, staying an update.
        assert_eq!(update(vec![Int(1), Unavailable], 0), Some(Op::Delete));
        assert_eq!(update(vec![Int(1), Unavailable], 9), Some(Op::Update));
        // A whole before image is judged as before.
        assert_eq!(update(vec![Int(1), Int(0)], 0), None);
        assert_eq!(update(vec![Int(1), Int(0)], 9), Some(Op::Insert));
    }
}
