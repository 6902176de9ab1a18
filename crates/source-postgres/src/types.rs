//! PostgreSQL types in the event model (docs/POSTGRES.md keeps the table).
//!
//! Every value is read as PostgreSQL's own text output (pgoutput sends text; full sync reads
//! with the simple query protocol, which is text too), in a session with `DateStyle=ISO`,
//! `TimeZone=UTC`, `IntervalStyle=postgres`, `bytea_output=hex` and `extra_float_digits=1`
//! (the shortest text that reads back to the same float). One decoder serves both paths, so
//! a row copied by full sync and the same row streamed are the same values.
//!
//! A type with no exact place in the event model is refused by name when a table is read,
//! never turned into something else; a value outside what the model holds (a date before
//! year 1 or after 9999, `infinity`) is refused with the table and column.

use sluice_core::schema::ColumnType;
use sluice_core::Value;

/// The PostgreSQL types Sluice reads, by what decides their value and destination type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    /// numeric(precision, scale) that fits DECIMAL(65,30); None: unconstrained or wider
    /// (travels as text, exactly as PostgreSQL prints it).
    Numeric(Option<(u8, u8)>),
    Float4,
    Float8,
    /// text, varchar(n), char(n) (`max`: n), name.
    Text {
        max: Option<u32>,
    },
    Bytea,
    Date,
    Time(u8),
    Timestamp(u8),
    TimestampTz(u8),
    Json,
    /// Carried as PostgreSQL's text: timetz, interval, uuid, inet, cidr, macaddr, xml,
    /// arrays, enums. The destination type for databases is given.
    AsText(&'static str),
}

/// A column's type: what it is and PostgreSQL's own name for it (`numeric(10,2)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ty {
    pub(crate) kind: Kind,
    pub(crate) name: String,
}

/// What pg_type says of a column's type (after following a domain to its base type).
#[derive(Debug, Clone)]
pub(crate) struct TypeFacts {
    /// The base type's oid.
    pub(crate) oid: u32,
    /// Its type modifier (-1: none).
    pub(crate) typmod: i32,
    /// pg_type.typtype of the base type (`b`, `e`, `c`, `r`, `p`, ...).
    pub(crate) typtype: char,
    /// pg_type.typcategory (`A` for arrays).
    pub(crate) category: char,
    /// format_type of the column's declared type.
    pub(crate) name: String,
}

/// The SQL that gives [`TypeFacts`] for a type oid ($1) and typmod ($2), in that order of
/// columns: base oid, base typmod, typtype, typcategory, format_type.
pub(crate) const FACTS_SQL: &str = "SELECT b.oid::int8, \
     (CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE $2::int4 END)::int8, \
     b.typtype::text, b.typcategory::text, format_type(t.oid, $2::int4) \
     FROM pg_type t JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END \
     WHERE t.oid = $1::int8::oid";

/// Fractional digits of a time or timestamp typmod (-1: the default, 6).
fn fsp(typmod: i32) -> u8 {
    if (0..=6).contains(&typmod) {
        typmod as u8
    } else {
        6
    }
}

impl Ty {
    /// The type of a column from its facts; Err names the type when it is not supported.
    pub(crate) fn of(f: &TypeFacts) -> Result<Ty, String> {
        let kind = if f.category == 'A' {
            Kind::AsText("longtext")
        } else if f.typtype == 'e' {
            Kind::AsText("varchar(255)")
        } else {
            match f.oid {
                16 => Kind::Bool,
                20 => Kind::Int8,
                21 => Kind::Int2,
                23 => Kind::Int4,
                26 => Kind::Oid,
                1700 => {
                    let m = f.typmod - 4;
                    let (p, s) = ((m >> 16) & 0xffff, m & 0xffff);
                    if f.typmod >= 4 && (1..=65).contains(&p) && s <= 30 && s <= p {
                        Kind::Numeric(Some((p as u8, s as u8)))
                    } else {
                        Kind::Numeric(None)
                    }
                }
                700 => Kind::Float4,
                701 => Kind::Float8,
                25 => Kind::Text { max: None },
                19 => Kind::Text { max: Some(63) },
                1042 | 1043 => Kind::Text {
                    max: (f.typmod > 4).then(|| (f.typmod - 4) as u32),
                },
                17 => Kind::Bytea,
                1082 => Kind::Date,
                1083 => Kind::Time(fsp(f.typmod)),
                1114 => Kind::Timestamp(fsp(f.typmod)),
                1184 => Kind::TimestampTz(fsp(f.typmod)),
                114 | 3802 => Kind::Json,
                1266 => Kind::AsText("varchar(32)"),
                1186 => Kind::AsText("varchar(255)"),
                2950 => Kind::AsText("char(36)"),
                869 | 650 => Kind::AsText("varchar(64)"),
                829 | 774 => Kind::AsText("varchar(32)"),
                142 => Kind::AsText("longtext"),
                _ => {
                    return Err(format!(
                        "type {} is not supported (docs/POSTGRES.md lists the types Sluice reads)",
                        f.name
                    ))
                }
            }
        };
        Ok(Ty {
            kind,
            name: f.name.clone(),
        })
    }

    /// The column type of the event model.
    pub(crate) fn column_type(&self) -> ColumnType {
        let text = || ColumnType::Text {
            charset: "utf8mb4".into(),
        };
        let int = |bytes, unsigned| ColumnType::Integer { bytes, unsigned };
        match &self.kind {
            Kind::Bool => int(1, false),
            Kind::Int2 => int(2, false),
            Kind::Int4 => int(4, false),
            Kind::Int8 => int(8, false),
            Kind::Oid => int(4, true),
            Kind::Numeric(Some((precision, scale))) => ColumnType::Decimal {
                precision: *precision,
                scale: *scale,
            },
            Kind::Float4 => ColumnType::Float,
            Kind::Float8 => ColumnType::Double,
            Kind::Bytea => ColumnType::Binary { pad_to: 0 },
            Kind::Date => ColumnType::Date,
            Kind::Time(fsp) => ColumnType::Time { fsp: *fsp },
            Kind::Timestamp(fsp) => ColumnType::DateTime { fsp: *fsp },
            Kind::TimestampTz(fsp) => ColumnType::Timestamp { fsp: *fsp },
            Kind::Json => ColumnType::Json,
            Kind::Numeric(None) | Kind::Text { .. } | Kind::AsText(_) => text(),
        }
    }

    /// The column's type at a MySQL-compatible destination (`in_key`: it is part of a key,
    /// where MySQL needs a bounded length).
    pub(crate) fn mysql_type(&self, in_key: bool) -> String {
        let long_text = if in_key { "varchar(768)" } else { "longtext" };
        match &self.kind {
            Kind::Bool => "tinyint(1)".into(),
            Kind::Int2 => "smallint".into(),
            Kind::Int4 => "int".into(),
            Kind::Int8 => "bigint".into(),
            Kind::Oid => "int unsigned".into(),
            Kind::Numeric(Some((p, s))) => format!("decimal({p},{s})"),
            Kind::Numeric(None) => if in_key { "varchar(1000)" } else { "text" }.into(),
            Kind::Float4 => "float".into(),
            Kind::Float8 => "double".into(),
            // char(n) too: MySQL's CHAR drops the trailing spaces PostgreSQL keeps.
            Kind::Text { max: Some(n) } if *n <= 16_383 => format!("varchar({n})"),
            Kind::Text { .. } => long_text.into(),
            Kind::Bytea => if in_key {
                "varbinary(3072)"
            } else {
                "longblob"
            }
            .into(),
            Kind::Date => "date".into(),
            Kind::Time(f) => with_fsp("time", *f),
            Kind::Timestamp(f) => with_fsp("datetime", *f),
            // DATETIME holding UTC: MySQL's TIMESTAMP ends in 2038.
            Kind::TimestampTz(f) => with_fsp("datetime", *f),
            Kind::Json => "json".into(),
            Kind::AsText("longtext") => long_text.into(),
            Kind::AsText(t) => (*t).into(),
        }
    }

    /// A value from PostgreSQL's text output of it (`None`: SQL NULL).
    pub(crate) fn decode(&self, text: Option<&str>) -> Result<Value, String> {
        let Some(s) = text else {
            return Ok(Value::Null);
        };
        let bad = || format!("{s:?} is not a {} value Sluice can read", self.name);
        Ok(match &self.kind {
            Kind::Bool => match s {
                "t" | "true" => Value::Int(1),
                "f" | "false" => Value::Int(0),
                _ => return Err(bad()),
            },
            Kind::Int2 | Kind::Int4 | Kind::Int8 => Value::Int(s.parse().map_err(|_| bad())?),
            Kind::Oid => Value::UInt(s.parse().map_err(|_| bad())?),
            Kind::Numeric(Some(_)) => Value::Decimal(s.to_string()),
            Kind::Numeric(None) | Kind::Text { .. } | Kind::AsText(_) => Value::Text(s.to_string()),
            Kind::Float4 => Value::Float(s.parse().map_err(|_| bad())?),
            Kind::Float8 => Value::Double(s.parse().map_err(|_| bad())?),
            Kind::Bytea => Value::Bytes(unhex(s).ok_or_else(bad)?),
            Kind::Json => Value::Json(s.to_string()),
            Kind::Date => {
                let (year, month, day) = date(s).ok_or_else(|| out_of_range(s, &self.name))?;
                Value::Date { year, month, day }
            }
            Kind::Time(fsp) => {
                let (hours, minutes, seconds, micros) = time(s).ok_or_else(bad)?;
                Value::Time {
                    negative: false,
                    hours: u32::from(hours),
                    minutes,
                    seconds,
                    micros,
                    fsp: *fsp,
                }
            }
            Kind::Timestamp(fsp) => {
                let (d, t) = s
                    .split_once(' ')
                    .ok_or_else(|| out_of_range(s, &self.name))?;
                let (year, month, day) = date(d).ok_or_else(|| out_of_range(s, &self.name))?;
                let (hour, minute, second, micros) = time(t).ok_or_else(bad)?;
                Value::DateTime {
                    year,
                    month,
                    day,
                    hour,
                    minute,
                    second,
                    micros,
                    fsp: *fsp,
                }
            }
            Kind::TimestampTz(fsp) => {
                let (seconds, micros) =
                    timestamptz(s).ok_or_else(|| out_of_range(s, &self.name))?;
                Value::Timestamp {
                    seconds,
                    micros,
                    fsp: *fsp,
                }
            }
        })
    }
}

fn with_fsp(base: &str, fsp: u8) -> String {
    if fsp == 0 {
        base.to_string()
    } else {
        format!("{base}({fsp})")
    }
}

fn out_of_range(s: &str, ty: &str) -> String {
    format!(
        "{ty} value {s:?} is outside what Sluice carries (years 1 to 9999, no infinity, no BC \
         dates); change the value or leave the column out with objects.columns"
    )
}

/// `\x0aff` -> bytes.
fn unhex(s: &str) -> Option<Vec<u8>> {
    let hex = s.strip_prefix("\\x")?.as_bytes();
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.chunks(2)
        .map(|p| {
            let d = |c: u8| (c as char).to_digit(16);
            Some((d(p[0])? * 16 + d(p[1])?) as u8)
        })
        .collect()
}

/// `YYYY-MM-DD` with a year 1..=9999 (ISO DateStyle; BC dates and infinity are refused).
fn date(s: &str) -> Option<(u16, u8, u8)> {
    let mut p = s.splitn(3, '-');
    let (y, m, d) = (p.next()?, p.next()?, p.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let year: u16 = y.parse().ok()?;
    (year >= 1).then_some(())?;
    Some((year, m.parse().ok()?, d.parse().ok()?))
}

/// `HH:MM:SS[.ffffff]` -> parts (24:00:00 is a PostgreSQL time).
fn time(s: &str) -> Option<(u8, u8, u8, u32)> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let mut p = hms.splitn(3, ':');
    let (h, m, sec) = (p.next()?, p.next()?, p.next()?);
    let micros = match frac {
        Some(f) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<6}").parse().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    Some((h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?, micros))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM[:SS]]` -> seconds and micros since the epoch, UTC.
fn timestamptz(s: &str) -> Option<(i64, u32)> {
    let (d, rest) = s.split_once(' ')?;
    let at = rest.rfind(['+', '-'])?;
    let (t, zone) = rest.split_at(at);
    let (year, month, day) = date(d)?;
    let (h, m, sec, micros) = time(t)?;
    let sign: i64 = if zone.starts_with('-') { -1 } else { 1 };
    let mut z = zone[1..].split(':');
    let zh: i64 = z.next()?.parse().ok()?;
    let zm: i64 = z.next().map_or(Some(0), |v| v.parse().ok())?;
    let zs: i64 = z.next().map_or(Some(0), |v| v.parse().ok())?;
    let days =
        sluice_core::render::days_from_civil(i64::from(year), u32::from(month), u32::from(day));
    let local = days * 86_400 + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(sec);
    Some((local - sign * (zh * 3600 + zm * 60 + zs), micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(oid: u32, typmod: i32) -> Ty {
        Ty::of(&TypeFacts {
            oid,
            typmod,
            typtype: 'b',
            category: 'N',
            name: format!("t{oid}"),
        })
        .expect("a supported type")
    }

    #[test]
    fn text_output_reads_into_exact_values() -> Result<(), String> {
        assert_eq!(ty(16, -1).decode(Some("t"))?, Value::Int(1));
        assert_eq!(
            ty(20, -1).decode(Some("-9223372036854775808"))?,
            Value::Int(i64::MIN)
        );
        // numeric(10,2): typmod (10 << 16 | 2) + 4.
        let n = ty(1700, (10 << 16 | 2) + 4);
        assert_eq!(n.kind, Kind::Numeric(Some((10, 2))));
        assert_eq!(n.decode(Some("-12.50"))?, Value::Decimal("-12.50".into()));
        assert_eq!(ty(1700, -1).decode(Some("NaN"))?, Value::Text("NaN".into()));
        let Value::Double(d) = ty(701, -1).decode(Some("-Infinity"))? else {
            return Err("not a double".into());
        };
        assert!(d.is_infinite() && d < 0.0);
        let Value::Float(f) = ty(700, -1).decode(Some("NaN"))? else {
            return Err("not a float".into());
        };
        assert!(f.is_nan());
        assert_eq!(
            ty(17, -1).decode(Some("\\x00ff41"))?,
            Value::Bytes(vec![0, 255, 65])
        );
        assert_eq!(
            ty(1184, 3).decode(Some("2024-05-01 10:00:00.25+02"))?,
            Value::Timestamp {
                seconds: 1_714_550_400,
                micros: 250_000,
                fsp: 3
            }
        );
        assert_eq!(
            ty(1184, -1).decode(Some("1969-12-31 23:59:59.5+00"))?,
            Value::Timestamp {
                seconds: -1,
                micros: 500_000,
                fsp: 6
            }
        );
        assert_eq!(
            ty(1114, 0).decode(Some("2024-02-29 23:59:59"))?,
            Value::DateTime {
                year: 2024,
                month: 2,
                day: 29,
                hour: 23,
                minute: 59,
                second: 59,
                micros: 0,
                fsp: 0
            }
        );
        assert!(ty(1082, -1).decode(Some("infinity")).is_err());
        assert!(ty(1082, -1).decode(Some("0044-03-15 BC")).is_err());
        assert_eq!(ty(1082, -1).decode(None)?, Value::Null);
        Ok(())
    }

    #[test]
    fn unsupported_types_are_refused_by_name() {
        let e = Ty::of(&TypeFacts {
            oid: 790,
            typmod: -1,
            typtype: 'b',
            category: 'N',
            name: "money".into(),
        });
        assert!(e.is_err_and(|m| m.contains("type money is not supported")));
    }
}
