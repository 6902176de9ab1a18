//! MySQL binary JSON as the server itself prints it.
//!
//! The server stores an object's keys sorted by length, then by bytes, and prints them in that
//! order, with `", "` and `": "` between items; integers and decimals keep every digit (a
//! decimal inside JSON is a number, not a string), doubles print in their shortest form that
//! reads back to the same bits, dates and times print as quoted strings. Going through a generic
//! JSON value instead would sort keys another way and turn decimals into strings or floats.
//! (MariaDB's JSON is text and is never re-rendered: see `value::convert`.)

use mysql_async::binlog::jsonb::{JsonContainer, JsonDom, JsonNumber, JsonScalar};
use serde_json::Value as Json;

/// The text MySQL prints for a binary JSON document.
pub(super) fn from_dom(dom: &JsonDom) -> String {
    let mut out = String::new();
    dom_into(dom, &mut out);
    out
}

/// The text MySQL would print for `v` (a document patched by a partial update), keys in the
/// server's order.
pub(super) fn from_value(v: &Json) -> String {
    let mut out = String::new();
    value_into(v, &mut out);
    out
}

/// MySQL's key order: shorter keys first, then by bytes.
fn server_order<'a, V>(entries: impl Iterator<Item = (&'a String, V)>) -> Vec<(&'a String, V)> {
    let mut v: Vec<_> = entries.collect();
    v.sort_by(|(a, _), (b, _)| (a.len(), a.as_bytes()).cmp(&(b.len(), b.as_bytes())));
    v
}

/// `[a, b]`, each item written by `item`.
fn array<T>(items: impl Iterator<Item = T>, out: &mut String, item: impl Fn(T, &mut String)) {
    out.push('[');
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        item(v, out);
    }
    out.push(']');
}

/// `{"k": v, ...}` in the server's key order, each value written by `value`.
fn object<'a, V>(
    entries: impl Iterator<Item = (&'a String, V)>,
    out: &mut String,
    value: impl Fn(V, &mut String),
) {
    out.push('{');
    for (i, (k, v)) in server_order(entries).into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        quoted(k, out);
        out.push_str(": ");
        value(v, out);
    }
    out.push('}');
}

fn dom_into(dom: &JsonDom, out: &mut String) {
    match dom {
        JsonDom::Container(JsonContainer::Array(items)) => array(items.iter(), out, dom_into),
        JsonDom::Container(JsonContainer::Object(map)) => object(map.iter(), out, dom_into),
        JsonDom::Scalar(s) => match s {
            JsonScalar::Null => out.push_str("null"),
            JsonScalar::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            JsonScalar::String(text) => quoted(text, out),
            JsonScalar::Number(JsonNumber::Int(n)) => out.push_str(&n.to_string()),
            JsonScalar::Number(JsonNumber::Uint(n)) => out.push_str(&n.to_string()),
            JsonScalar::Number(JsonNumber::Decimal(d)) => out.push_str(&d.to_string()),
            JsonScalar::Number(JsonNumber::Double(f)) => double(*f, out),
            // Dates, times and other opaque values print as strings, as mysql_common makes them.
            other => match Json::from(other.clone()) {
                Json::String(text) => quoted(&text, out),
                v => out.push_str(&v.to_string()),
            },
        },
    }
}

fn value_into(v: &Json, out: &mut String) {
    match v {
        Json::Array(items) => array(items.iter(), out, value_into),
        Json::Object(map) => object(map.iter(), out, value_into),
        Json::String(text) => quoted(text, out),
        Json::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => double(f, out),
            _ => out.push_str(&n.to_string()),
        },
        Json::Bool(_) | Json::Null => out.push_str(&v.to_string()),
    }
}

/// A double in its shortest round-trip form (`1.5`, `1e30`, `1.0`).
fn double(f: f64, out: &mut String) {
    match serde_json::Number::from_f64(f) {
        Some(n) => out.push_str(&n.to_string()),
        // JSON holds no infinities or NaN; the server cannot store them either.
        None => out.push_str("null"),
    }
}

/// A string quoted as MySQL quotes it: `"` and `\` escaped, the usual short escapes, other
/// control characters as `\u00xx`; everything else (non-ASCII included) as it is.
fn quoted(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_in_the_servers_order_with_its_separators() {
        let v: Json = serde_json::from_str(
            r#"{"bb": [1, 2.5, "x\"y\u0001"], "a": {"ccc": null, "dd": true}, "c": 18446744073709551615}"#,
        )
        .expect("json");
        assert_eq!(
            from_value(&v),
            r#"{"a": {"dd": true, "ccc": null}, "c": 18446744073709551615, "bb": [1, 2.5, "x\"y\u0001"]}"#
        );
    }
}
