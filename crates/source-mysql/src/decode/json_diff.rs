//! MySQL partial JSON updates (`binlog_row_value_options=PARTIAL_JSON`): the after image holds
//! only the changes, which are applied here to the before image to give the full document.

use mysql_async::binlog::jsondiff::{JsonDiff, JsonDiffOperation};
use serde_json::Value as Json;
use sluice_core::Value;

enum Leg {
    Key(String),
    Index(usize),
}

/// Parses a MySQL JSON path such as `$.a."b c"[2]` into legs.
fn parse_path(path: &str) -> Result<Vec<Leg>, String> {
    let bad = || format!("unsupported JSON path {path:?}");
    let mut chars = path.strip_prefix('$').ok_or_else(bad)?.chars().peekable();
    let mut legs = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut key = String::new();
                if chars.peek() == Some(&'"') {
                    chars.next();
                    loop {
                        match chars.next().ok_or_else(bad)? {
                            '"' => break,
                            '\\' => key.push(chars.next().ok_or_else(bad)?),
                            ch => key.push(ch),
                        }
                    }
                } else {
                    while let Some(&ch) = chars.peek() {
                        if ch == '.' || ch == '[' {
                            break;
                        }
                        key.push(ch);
                        chars.next();
                    }
                }
                legs.push(Leg::Key(key));
            }
            '[' => {
                let mut n = String::new();
                for ch in chars.by_ref() {
                    if ch == ']' {
                        break;
                    }
                    n.push(ch);
                }
                legs.push(Leg::Index(n.trim().parse().map_err(|_| bad())?));
            }
            c if c.is_whitespace() => {}
            _ => return Err(bad()),
        }
    }
    Ok(legs)
}

/// The diffs themselves as a JSON array of `{"op","path","value"}` (for inspecting a file whose
/// before image lacks the document).
pub fn as_operations(diffs: &[JsonDiff<'_>]) -> Value {
    let ops: Vec<Json> = diffs
        .iter()
        .map(|d| {
            let value: Json = d.value().and_then(|v| v.clone().parse().ok()).map(Into::into).unwrap_or(Json::Null);
            serde_json::json!({ "op": format!("{:?}", d.operation()), "path": d.path_str(), "value": value })
        })
        .collect();
    Value::Json(Json::Array(ops).to_string())
}

/// Applies the diffs of one column to its before value.
pub fn apply(before: &Value, diffs: &[JsonDiff<'_>]) -> Result<Value, String> {
    let mut doc: Json = match before {
        Value::Json(text) => {
            serde_json::from_str(text).map_err(|e| format!("before image is not JSON: {e}"))?
        }
        Value::Null => return Err("a partial JSON update of a NULL document".into()),
        other => {
            return Err(format!(
                "a partial JSON update of a non-JSON value {other:?}"
            ))
        }
    };
    for d in diffs {
        let path = d.path_str();
        let legs = parse_path(&path)?;
        let value: Option<Json> = match d.value() {
            Some(v) => Some(
                v.clone()
                    .parse()
                    .map_err(|e| format!("diff value at {path}: {e}"))?
                    .into(),
            ),
            None => None,
        };
        let (last, parents) = match legs.split_last() {
            Some(x) => x,
            None => {
                // The whole document is replaced.
                doc = value.ok_or("a diff of the root without a value")?;
                continue;
            }
        };
        let mut target = &mut doc;
        for leg in parents {
            target = match (leg, target) {
                (Leg::Key(k), Json::Object(m)) => m
                    .get_mut(k)
                    .ok_or_else(|| format!("path {path} not found"))?,
                (Leg::Index(i), Json::Array(a)) => a
                    .get_mut(*i)
                    .ok_or_else(|| format!("path {path} not found"))?,
                _ => return Err(format!("path {path} does not match the document")),
            };
        }
        match (d.operation(), last, target) {
            (
                JsonDiffOperation::REPLACE | JsonDiffOperation::INSERT,
                Leg::Key(k),
                Json::Object(m),
            ) => {
                m.insert(k.clone(), value.ok_or("a diff without a value")?);
            }
            (JsonDiffOperation::REPLACE, Leg::Index(i), Json::Array(a)) => {
                let slot = a
                    .get_mut(*i)
                    .ok_or_else(|| format!("path {path} not found"))?;
                *slot = value.ok_or("a diff without a value")?;
            }
            (JsonDiffOperation::INSERT, Leg::Index(i), Json::Array(a)) => {
                let at = (*i).min(a.len());
                a.insert(at, value.ok_or("a diff without a value")?);
            }
            (JsonDiffOperation::REMOVE, Leg::Key(k), Json::Object(m)) => {
                m.remove(k);
            }
            (JsonDiffOperation::REMOVE, Leg::Index(i), Json::Array(a)) => {
                if *i < a.len() {
                    a.remove(*i);
                }
            }
            _ => return Err(format!("path {path} does not match the document")),
        }
    }
    Ok(Value::Json(super::json_text::from_value(&doc)))
}
