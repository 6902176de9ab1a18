//! Row filters: a SQL condition (`status <> 'DRAFT' AND amount > 100`) evaluated on each row
//! with MySQL's semantics — three-valued logic (NULL is unknown, and unknown does not pass),
//! numbers compared as numbers (exactly for integers and DECIMALs), text compared
//! case-insensitively and ignoring trailing spaces as MySQL's default collations do, `IN`, `BETWEEN`, `LIKE`, `IS [NOT]
//! NULL`, `AND`/`OR`/`XOR`/`NOT`, arithmetic (`+ - * / DIV %`).
//!
//! The condition is parsed with `sqlparser` once, when the project is loaded, into a small
//! expression tree; a construct outside that list is refused then, naming it.

use std::cmp::Ordering;

use sluice_core::render::civil_from_days;
use sluice_core::{TableSchema, Value};
use sqlparser::ast::{BinaryOperator, Expr as SqlExpr, UnaryOperator, Value as SqlValue};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Null,
    Int(i128),
    /// Exact decimal text (`-12.50`).
    Dec(String),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    NullSafeEq,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    IntDiv,
    Mod,
}

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Column(String),
    Lit(Lit),
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    Arith(Arith, Box<Expr>, Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Xor(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    IsNull(Box<Expr>, bool),
    IsTrue(Box<Expr>, bool, bool),
    In(Box<Expr>, Vec<Expr>, bool),
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    Like(Box<Expr>, Box<Expr>, char, bool),
}

/// A parsed row filter.
#[derive(Debug, Clone, PartialEq)]
pub struct RowFilter {
    text: String,
    expr: Expr,
    /// The column names the condition reads, sorted, once.
    columns: Vec<String>,
}

fn unsupported(what: &str) -> String {
    format!(
        "{what} is not supported in a row filter; use columns, literals, comparisons, \
         AND/OR/XOR/NOT, IS [NOT] NULL, IN, BETWEEN, LIKE and + - * / DIV %"
    )
}

fn literal(v: &SqlValue) -> Result<Lit, String> {
    Ok(match v {
        SqlValue::Null => Lit::Null,
        SqlValue::Boolean(b) => Lit::Int(i128::from(*b)),
        SqlValue::Number(n, _) => {
            if let Ok(i) = n.parse::<i128>() {
                Lit::Int(i)
            } else if n.contains(['e', 'E']) {
                Lit::Float(n.parse().map_err(|_| format!("bad number {n}"))?)
            } else {
                Lit::Dec(n.clone())
            }
        }
        SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => Lit::Str(s.clone()),
        other => return Err(unsupported(&format!("the literal {other}"))),
    })
}

fn compile(e: &SqlExpr) -> Result<Expr, String> {
    let b = |e: &SqlExpr| compile(e).map(Box::new);
    Ok(match e {
        SqlExpr::Identifier(i) => Expr::Column(i.value.clone()),
        SqlExpr::CompoundIdentifier(parts) => Expr::Column(
            parts
                .last()
                .map(|i| i.value.clone())
                .ok_or_else(|| "empty identifier".to_string())?,
        ),
        SqlExpr::Value(v) => Expr::Lit(literal(&v.value)?),
        SqlExpr::Nested(inner) => compile(inner)?,
        SqlExpr::UnaryOp { op, expr } => match op {
            UnaryOperator::Not => Expr::Not(b(expr)?),
            UnaryOperator::Minus => Expr::Neg(b(expr)?),
            UnaryOperator::Plus => compile(expr)?,
            other => return Err(unsupported(&format!("the operator {other}"))),
        },
        SqlExpr::BinaryOp { left, op, right } => {
            let (l, r) = (b(left)?, b(right)?);
            let cmp = |c| Ok::<_, String>(Expr::Cmp(c, l.clone(), r.clone()));
            let ar = |a| Ok::<_, String>(Expr::Arith(a, l.clone(), r.clone()));
            match op {
                BinaryOperator::Eq => cmp(Cmp::Eq)?,
                BinaryOperator::NotEq => cmp(Cmp::NotEq)?,
                BinaryOperator::Lt => cmp(Cmp::Lt)?,
                BinaryOperator::LtEq => cmp(Cmp::LtEq)?,
                BinaryOperator::Gt => cmp(Cmp::Gt)?,
                BinaryOperator::GtEq => cmp(Cmp::GtEq)?,
                BinaryOperator::Spaceship => cmp(Cmp::NullSafeEq)?,
                BinaryOperator::Plus => ar(Arith::Add)?,
                BinaryOperator::Minus => ar(Arith::Sub)?,
                BinaryOperator::Multiply => ar(Arith::Mul)?,
                BinaryOperator::Divide => ar(Arith::Div)?,
                BinaryOperator::MyIntegerDivide => ar(Arith::IntDiv)?,
                BinaryOperator::Modulo => ar(Arith::Mod)?,
                BinaryOperator::And => Expr::And(l, r),
                BinaryOperator::Or => Expr::Or(l, r),
                BinaryOperator::Xor => Expr::Xor(l, r),
                other => return Err(unsupported(&format!("the operator {other}"))),
            }
        }
        SqlExpr::IsNull(x) => Expr::IsNull(b(x)?, false),
        SqlExpr::IsNotNull(x) => Expr::IsNull(b(x)?, true),
        SqlExpr::IsTrue(x) => Expr::IsTrue(b(x)?, true, false),
        SqlExpr::IsNotTrue(x) => Expr::IsTrue(b(x)?, true, true),
        SqlExpr::IsFalse(x) => Expr::IsTrue(b(x)?, false, false),
        SqlExpr::IsNotFalse(x) => Expr::IsTrue(b(x)?, false, true),
        SqlExpr::InList {
            expr,
            list,
            negated,
        } => Expr::In(
            b(expr)?,
            list.iter().map(compile).collect::<Result<_, _>>()?,
            *negated,
        ),
        SqlExpr::Between {
            expr,
            negated,
            low,
            high,
        } => Expr::Between(b(expr)?, b(low)?, b(high)?, *negated),
        SqlExpr::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char,
        } => {
            let escape = match escape_char.as_deref() {
                None => '\\',
                Some(SqlExpr::Value(v)) => match &v.value {
                    SqlValue::SingleQuotedString(s) if s.chars().count() == 1 => {
                        s.chars().next().unwrap_or('\\')
                    }
                    _ => return Err("ESCAPE takes one character".into()),
                },
                Some(_) => return Err("ESCAPE takes one character".into()),
            };
            Expr::Like(b(expr)?, b(pattern)?, escape, *negated)
        }
        other => return Err(unsupported(&format!("`{other}`"))),
    })
}

fn columns_of(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Column(c) => out.push(c.clone()),
        Expr::Lit(_) => {}
        Expr::Neg(x) | Expr::Not(x) | Expr::IsNull(x, _) | Expr::IsTrue(x, ..) => {
            columns_of(x, out)
        }
        Expr::Cmp(_, a, b)
        | Expr::Arith(_, a, b)
        | Expr::And(a, b)
        | Expr::Or(a, b)
        | Expr::Xor(a, b)
        | Expr::Like(a, b, ..) => {
            columns_of(a, out);
            columns_of(b, out);
        }
        Expr::In(x, list, _) => {
            columns_of(x, out);
            for l in list {
                columns_of(l, out);
            }
        }
        Expr::Between(x, lo, hi, _) => {
            columns_of(x, out);
            columns_of(lo, out);
            columns_of(hi, out);
        }
    }
}

impl RowFilter {
    /// Parses a condition.
    pub fn parse(text: &str) -> Result<Self, crate::RouteError> {
        let dialect = MySqlDialect {};
        let mut parser = Parser::new(&dialect)
            .try_with_sql(text)
            .map_err(|e| format!("cannot read the condition: {e}"))?;
        let parsed = parser
            .parse_expr()
            .map_err(|e| format!("cannot read the condition: {e}"))?;
        if parser.peek_token().token != sqlparser::tokenizer::Token::EOF {
            return Err(format!(
                "cannot read the condition: unexpected {} after the expression",
                parser.peek_token().token
            )
            .into());
        }
        let expr = compile(&parsed)?;
        let mut columns = Vec::new();
        columns_of(&expr, &mut columns);
        columns.sort();
        columns.dedup();
        Ok(Self {
            text: text.to_string(),
            expr,
            columns,
        })
    }

    /// The condition as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The column names the condition reads.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Whether a row passes: the condition is TRUE (not FALSE, not unknown). A column the
    /// table does not have is an error.
    pub fn passes(&self, schema: &TableSchema, row: &[Value]) -> Result<bool, crate::RouteError> {
        let v = eval(&self.expr, schema, row)?;
        Ok(truth(&v) == Some(true))
    }
}

fn timestamp_text(seconds: i64, micros: u32, fsp: u8) -> String {
    let (y, m, d) = civil_from_days(seconds.div_euclid(86_400));
    let s = seconds.rem_euclid(86_400);
    let mut t = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    if fsp > 0 {
        let f = format!("{micros:06}");
        t.push('.');
        t.push_str(&f[..usize::from(fsp.min(6))]);
    }
    t
}

/// A column value as a filter operand.
fn operand(v: &Value) -> Lit {
    match v {
        Value::Null | Value::Unavailable => Lit::Null,
        Value::Int(i) => Lit::Int(i128::from(*i)),
        Value::UInt(u) => Lit::Int(i128::from(*u)),
        Value::Float(f) => Lit::Float(f64::from(*f)),
        Value::Double(f) => Lit::Float(*f),
        Value::Decimal(d) => Lit::Dec(d.clone()),
        Value::Text(s) | Value::Json(s) => Lit::Str(s.clone()),
        Value::Bytes(b) => Lit::Bytes(b.clone()),
        Value::Year(y) => Lit::Int(i128::from(*y)),
        Value::Bit { value, .. } => Lit::Int(i128::from(*value)),
        Value::Enum { label, .. } => Lit::Str(label.clone()),
        Value::Set { text, .. } => Lit::Str(text.clone()),
        Value::Timestamp {
            seconds,
            micros,
            fsp,
        } => {
            if *seconds == 0 && *micros == 0 {
                Lit::Str("0000-00-00 00:00:00".into())
            } else {
                Lit::Str(timestamp_text(*seconds, *micros, *fsp))
            }
        }
        Value::Geometry { wkb, .. } => Lit::Bytes(wkb.clone()),
        other => match sluice_core::render::value_to_json(other) {
            serde_json::Value::String(s) => Lit::Str(s),
            j => Lit::Str(j.to_string()),
        },
    }
}

fn eval(e: &Expr, schema: &TableSchema, row: &[Value]) -> Result<Lit, String> {
    let ev = |x: &Expr| eval(x, schema, row);
    Ok(match e {
        Expr::Column(name) => {
            let i = schema
                .columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    format!(
                        "the row filter reads column {name}, which {} does not have",
                        schema.id
                    )
                })?;
            operand(row.get(i).unwrap_or(&Value::Null))
        }
        Expr::Lit(l) => l.clone(),
        Expr::Cmp(op, a, b) => {
            let (a, b) = (ev(a)?, ev(b)?);
            if *op == Cmp::NullSafeEq {
                return Ok(bool_lit(match (&a, &b) {
                    (Lit::Null, Lit::Null) => Some(true),
                    (Lit::Null, _) | (_, Lit::Null) => Some(false),
                    _ => compare(&a, &b).map(|o| o == Ordering::Equal),
                }));
            }
            bool_lit(compare(&a, &b).map(|o| match op {
                Cmp::Eq | Cmp::NullSafeEq => o == Ordering::Equal,
                Cmp::NotEq => o != Ordering::Equal,
                Cmp::Lt => o == Ordering::Less,
                Cmp::LtEq => o != Ordering::Greater,
                Cmp::Gt => o == Ordering::Greater,
                Cmp::GtEq => o != Ordering::Less,
            }))
        }
        Expr::Arith(op, a, b) => arith(*op, &ev(a)?, &ev(b)?),
        Expr::Neg(x) => arith(Arith::Sub, &Lit::Int(0), &ev(x)?),
        Expr::And(a, b) => {
            let (a, b) = (truth(&ev(a)?), truth(&ev(b)?));
            bool_lit(match (a, b) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            })
        }
        Expr::Or(a, b) => {
            let (a, b) = (truth(&ev(a)?), truth(&ev(b)?));
            bool_lit(match (a, b) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            })
        }
        Expr::Xor(a, b) => {
            let (a, b) = (truth(&ev(a)?), truth(&ev(b)?));
            bool_lit(a.zip(b).map(|(a, b)| a != b))
        }
        Expr::Not(x) => bool_lit(truth(&ev(x)?).map(|t| !t)),
        Expr::IsNull(x, negated) => bool_lit(Some((ev(x)? == Lit::Null) != *negated)),
        Expr::IsTrue(x, want, negated) => {
            bool_lit(Some((truth(&ev(x)?) == Some(*want)) != *negated))
        }
        Expr::In(x, list, negated) => {
            let v = ev(x)?;
            if v == Lit::Null {
                return Ok(Lit::Null);
            }
            let mut unknown = false;
            let mut found = false;
            for item in list {
                match compare(&v, &ev(item)?) {
                    Some(Ordering::Equal) => {
                        found = true;
                        break;
                    }
                    None => unknown = true,
                    _ => {}
                }
            }
            bool_lit(if found {
                Some(!negated)
            } else if unknown {
                None
            } else {
                Some(*negated)
            })
        }
        Expr::Between(x, lo, hi, negated) => {
            let (v, lo, hi) = (ev(x)?, ev(lo)?, ev(hi)?);
            let ge = compare(&v, &lo).map(|o| o != Ordering::Less);
            let le = compare(&v, &hi).map(|o| o != Ordering::Greater);
            let inside = match (ge, le) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            };
            bool_lit(inside.map(|i| i != *negated))
        }
        Expr::Like(x, p, escape, negated) => {
            let (v, p) = (ev(x)?, ev(p)?);
            match (text_of(&v), text_of(&p)) {
                (Some(v), Some(p)) => bool_lit(Some(like(&v, &p, *escape) != *negated)),
                _ => Lit::Null,
            }
        }
    })
}

fn bool_lit(b: Option<bool>) -> Lit {
    match b {
        None => Lit::Null,
        Some(b) => Lit::Int(i128::from(b)),
    }
}

/// MySQL truthiness: NULL is unknown, a number is true when non-zero, a string by its number.
fn truth(v: &Lit) -> Option<bool> {
    match v {
        Lit::Null => None,
        other => number(other).map(|n| n != 0.0),
    }
}

fn text_of(v: &Lit) -> Option<String> {
    match v {
        Lit::Null => None,
        Lit::Int(i) => Some(i.to_string()),
        Lit::Dec(d) => Some(d.clone()),
        Lit::Float(f) => Some(f.to_string()),
        Lit::Str(s) => Some(s.clone()),
        Lit::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

/// A value as a double (MySQL converts a string by its leading number, else 0).
fn number(v: &Lit) -> Option<f64> {
    match v {
        Lit::Null => None,
        Lit::Int(i) => Some(*i as f64),
        Lit::Dec(d) => d.parse().ok(),
        Lit::Float(f) => Some(*f),
        Lit::Str(s) => Some(leading_number(s)),
        Lit::Bytes(b) => Some(leading_number(&String::from_utf8_lossy(b))),
    }
}

fn leading_number(s: &str) -> f64 {
    let t = s.trim_start();
    let mut end = 0;
    let mut seen_digit = false;
    for (i, c) in t.char_indices() {
        let ok = c.is_ascii_digit()
            || (i == 0 && (c == '-' || c == '+'))
            || (c == '.' && !t[..i].contains('.'));
        if !ok {
            break;
        }
        seen_digit |= c.is_ascii_digit();
        end = i + c.len_utf8();
    }
    if !seen_digit {
        return 0.0;
    }
    t[..end].parse().unwrap_or(0.0)
}

/// Exact comparison of two decimal texts (`-1.50` vs `-1.5`).
fn compare_decimal(a: &str, b: &str) -> Option<Ordering> {
    fn parts(s: &str) -> Option<(bool, String, String)> {
        let s = s.trim();
        let (neg, s) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (i, f) = s.split_once('.').unwrap_or((s, ""));
        if !i.chars().chain(f.chars()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        let i = i.trim_start_matches('0').to_string();
        let f = f.trim_end_matches('0').to_string();
        let zero = i.is_empty() && f.is_empty();
        Some((neg && !zero, i, f))
    }
    let (an, ai, af) = parts(a)?;
    let (bn, bi, bf) = parts(b)?;
    let magnitude = ai
        .len()
        .cmp(&bi.len())
        .then_with(|| ai.cmp(&bi))
        .then_with(|| af.cmp(&bf));
    Some(match (an, bn) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
    })
}

fn exact_text(v: &Lit) -> Option<String> {
    match v {
        Lit::Int(i) => Some(i.to_string()),
        Lit::Dec(d) => Some(d.clone()),
        _ => None,
    }
}

/// MySQL comparison: NULL is unknown; two strings compare as text (case-insensitively, as the
/// default collations do); bytes compare as bytes; otherwise as numbers (exactly when both
/// are integers or decimals).
fn compare(a: &Lit, b: &Lit) -> Option<Ordering> {
    match (a, b) {
        (Lit::Null, _) | (_, Lit::Null) => None,
        (Lit::Str(x), Lit::Str(y)) => Some(fold(x).cmp(&fold(y))),
        (Lit::Bytes(x), Lit::Bytes(y)) => Some(x.cmp(y)),
        (Lit::Bytes(x), Lit::Str(y)) => Some(x.as_slice().cmp(y.as_bytes())),
        (Lit::Str(x), Lit::Bytes(y)) => Some(x.as_bytes().cmp(y.as_slice())),
        _ => match (exact_text(a), exact_text(b)) {
            (Some(x), Some(y)) => compare_decimal(&x, &y),
            _ => number(a)?.partial_cmp(&number(b)?),
        },
    }
}

/// Text as the default collations compare it: case-insensitively, and PAD SPACE (trailing
/// spaces do not count; all of MariaDB's collations and MySQL's before utf8mb4_0900 pad).
fn fold(s: &str) -> String {
    s.trim_end_matches(' ').to_lowercase()
}

fn arith(op: Arith, a: &Lit, b: &Lit) -> Lit {
    if *a == Lit::Null || *b == Lit::Null {
        return Lit::Null;
    }
    if let (Lit::Int(x), Lit::Int(y)) = (a, b) {
        let r = match op {
            Arith::Add => x.checked_add(*y),
            Arith::Sub => x.checked_sub(*y),
            Arith::Mul => x.checked_mul(*y),
            Arith::IntDiv => x.checked_div(*y),
            Arith::Mod => x.checked_rem(*y),
            Arith::Div => None,
        };
        match (r, op) {
            (Some(r), _) => return Lit::Int(r),
            // Division by zero is NULL in MySQL.
            (None, Arith::IntDiv | Arith::Mod) if *y == 0 => return Lit::Null,
            _ => {}
        }
    }
    let (Some(x), Some(y)) = (number(a), number(b)) else {
        return Lit::Null;
    };
    match op {
        Arith::Add => Lit::Float(x + y),
        Arith::Sub => Lit::Float(x - y),
        Arith::Mul => Lit::Float(x * y),
        Arith::Div | Arith::IntDiv | Arith::Mod if y == 0.0 => Lit::Null,
        Arith::Div => Lit::Float(x / y),
        Arith::IntDiv => Lit::Float((x / y).trunc()),
        Arith::Mod => Lit::Float(x % y),
    }
}

/// SQL LIKE: `%` any run, `_` one character, `escape` quotes the next; case-insensitive.
fn like(value: &str, pattern: &str, escape: char) -> bool {
    // LIKE compares character by character: trailing spaces count here.
    let v: Vec<char> = value.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    // Tokens: Some(c) literal, None for `_`, and '%' marked separately.
    #[derive(Clone, Copy, PartialEq)]
    enum T {
        Lit(char),
        One,
        Any,
    }
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        let c = p[i];
        if c == escape && i + 1 < p.len() {
            toks.push(T::Lit(p[i + 1]));
            i += 2;
            continue;
        }
        toks.push(match c {
            '%' => T::Any,
            '_' => T::One,
            c => T::Lit(c),
        });
        i += 1;
    }
    // Iterative matching with backtracking to the last `%`.
    let (mut vi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match toks.get(ti) {
            Some(T::Any) => {
                star = Some((ti, vi));
                ti += 1;
            }
            Some(T::One) => {
                vi += 1;
                ti += 1;
            }
            Some(T::Lit(c)) if *c == v[vi] => {
                vi += 1;
                ti += 1;
            }
            _ => match star {
                Some((st, sv)) => {
                    ti = st + 1;
                    vi = sv + 1;
                    star = Some((st, sv + 1));
                }
                None => return false,
            },
        }
    }
    toks[ti..].iter().all(|t| *t == T::Any)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::{Column, ColumnType, TableId};

    fn schema() -> TableSchema {
        let col = |n: &str, ty: ColumnType| Column {
            name: n.into(),
            ty,
            sql_type: String::new(),
            nullable: true,
        };
        TableSchema {
            id: TableId::new("shop", "orders"),
            columns: vec![
                col(
                    "id",
                    ColumnType::Integer {
                        bytes: 4,
                        unsigned: false,
                    },
                ),
                col(
                    "status",
                    ColumnType::Text {
                        charset: "utf8mb4".into(),
                    },
                ),
                col(
                    "amount",
                    ColumnType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
                col(
                    "note",
                    ColumnType::Text {
                        charset: "utf8mb4".into(),
                    },
                ),
            ],
            primary_key: vec![0],
        }
    }

    fn row(id: i64, status: &str, amount: &str, note: Option<&str>) -> Vec<Value> {
        vec![
            Value::Int(id),
            Value::Text(status.into()),
            Value::Decimal(amount.into()),
            note.map_or(Value::Null, |n| Value::Text(n.into())),
        ]
    }

    fn passes(cond: &str, r: &[Value]) -> bool {
        RowFilter::parse(cond)
            .unwrap_or_else(|e| panic!("{cond}: {e}"))
            .passes(&schema(), r)
            .unwrap_or_else(|e| panic!("{cond}: {e}"))
    }

    #[test]
    fn mysql_semantics() {
        let paid = row(1, "PAID", "150.00", None);
        let draft = row(2, "DRAFT", "99.99", Some("rush order"));
        let c = "status <> 'DRAFT' AND amount > 100";
        assert!(passes(c, &paid));
        assert!(!passes(c, &draft));
        // Case-insensitive, PAD SPACE text, as the default collations compare.
        assert!(passes("status = 'paid'", &paid));
        assert!(passes("status = 'paid  '", &paid));
        assert!(!passes("status LIKE 'paid '", &paid));
        // NULL: unknown, which does not pass; IS NULL and <=> see it.
        assert!(!passes("note = 'x'", &paid));
        assert!(!passes("note <> 'x'", &paid));
        assert!(!passes("NOT (note = 'x')", &paid));
        assert!(passes("note IS NULL", &paid));
        assert!(passes("note <=> NULL", &paid));
        assert!(passes("note IS NULL OR note <> 'x'", &paid));
        assert!(!passes("id NOT IN (2, NULL)", &paid));
        assert!(passes("id IN (2, NULL, 1)", &paid));
        // Exact decimals, arithmetic, BETWEEN, LIKE.
        assert!(passes("amount = 150", &paid));
        assert!(passes("amount * 2 - 0.5 > 299", &paid));
        assert!(passes("amount BETWEEN 99.99 AND 100", &draft));
        assert!(!passes("amount NOT BETWEEN 99.99 AND 100", &draft));
        assert!(passes("note LIKE 'RUSH%'", &draft));
        assert!(passes("note LIKE '_ush o%r'", &draft));
        assert!(!passes("note NOT LIKE '%order'", &draft));
        assert!(passes("id % 2 = 0 XOR id = 1", &paid));
        assert!(passes("id DIV 0 IS NULL", &paid));
        assert!(passes("-id < 0", &paid));
    }

    #[test]
    fn decimals_compare_exactly() {
        assert_eq!(compare_decimal("1.50", "1.5"), Some(Ordering::Equal));
        assert_eq!(compare_decimal("-0.00", "0"), Some(Ordering::Equal));
        assert_eq!(
            compare_decimal(
                "99999999999999999999.000000000000000000000000000001",
                "99999999999999999999"
            ),
            Some(Ordering::Greater)
        );
        assert_eq!(compare_decimal("-2", "-10"), Some(Ordering::Greater));
    }

    #[test]
    fn bad_conditions_are_refused_at_load_with_the_reason() {
        let e = RowFilter::parse("amount > (SELECT 1)")
            .expect_err("subquery")
            .to_string();
        assert!(e.contains("not supported"), "{e}");
        let e = RowFilter::parse("amount >")
            .expect_err("broken")
            .to_string();
        assert!(e.starts_with("cannot read the condition"), "{e}");
        let e = RowFilter::parse("a = 1 b")
            .expect_err("trailing")
            .to_string();
        assert!(e.contains("unexpected"), "{e}");
        let f = RowFilter::parse("missing = 1").expect("parses");
        let err = f
            .passes(&schema(), &row(1, "PAID", "1", None))
            .expect_err("no such column")
            .to_string();
        assert!(err.contains("missing"), "{err}");
        assert_eq!(f.columns(), ["missing".to_string()]);
    }
}
