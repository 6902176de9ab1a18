//! Data sources: the connection fields of one server or cluster, kept once and named by
//! projects (`source: {datasource: NAME}`). Each kind lists its fields and which of them are
//! secret; a secret is stored sealed and never shown (the API says `password_set`).
//!
//! A data source becomes a project section by [`section`]: a database kind as a source gives
//! `host`/`port`/`user`/`password`, as a destination a `url`; a message-queue kind gives its
//! connection fields. The project's own fields beside `datasource` are kept, and one that the
//! data source already gives is refused (it would be ambiguous).

use serde_json::{Map, Value};

/// A JSON object of fields.
pub type Fields = Map<String, Value>;

/// A field of a kind.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its name.
    pub name: &'static str,
    /// Must be given.
    pub required: bool,
    /// Kept sealed, never shown.
    pub secret: bool,
    /// What it holds.
    pub ty: Ty,
}

/// The type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// A string.
    Text,
    /// A TCP port.
    Port,
    /// An object of strings (Kafka client properties).
    Properties,
}

const fn f(name: &'static str, required: bool, secret: bool, ty: Ty) -> Field {
    Field {
        name,
        required,
        secret,
        ty,
    }
}

const DATABASE: &[Field] = &[
    f("host", true, false, Ty::Text),
    f("port", false, false, Ty::Port),
    f("user", true, false, Ty::Text),
    f("password", false, true, Ty::Text),
    f("tls_mode", false, false, Ty::Text),
    f("tls_ca_file", false, false, Ty::Text),
    f("tls_cert_file", false, false, Ty::Text),
    f("tls_key_file", false, false, Ty::Text),
];
const POSTGRES: &[Field] = &[
    f("host", true, false, Ty::Text),
    f("port", false, false, Ty::Port),
    f("user", true, false, Ty::Text),
    f("password", false, true, Ty::Text),
    f("database", false, false, Ty::Text),
    f("tls_mode", false, false, Ty::Text),
    f("tls_ca_file", false, false, Ty::Text),
    f("tls_cert_file", false, false, Ty::Text),
    f("tls_key_file", false, false, Ty::Text),
];

/// A database data source's `tls_*` fields as the `tls` section of a project (None: no TLS
/// field given); the project's check then refuses what is wrong, naming `source.tls.*`.
fn tls_section(plain: &Map<String, Value>) -> Option<Value> {
    let mut tls = Map::new();
    for (field, key) in [
        ("tls_mode", "mode"),
        ("tls_ca_file", "ca_file"),
        ("tls_cert_file", "cert_file"),
        ("tls_key_file", "key_file"),
    ] {
        if let Some(v) = plain.get(field) {
            tls.insert(key.into(), v.clone());
        }
    }
    (!tls.is_empty()).then_some(Value::Object(tls))
}
const KAFKA: &[Field] = &[
    f("brokers", true, false, Ty::Text),
    f("properties", false, true, Ty::Properties),
];
const ROCKETMQ: &[Field] = &[
    f("namesrv", true, false, Ty::Text),
    f("access_key", false, false, Ty::Text),
    f("secret_key", false, true, Ty::Text),
];
const DATAHUB: &[Field] = &[
    f("endpoint", true, false, Ty::Text),
    f("access_id", true, false, Ty::Text),
    f("access_key", true, true, Ty::Text),
    f("project", false, false, Ty::Text),
];

/// The kinds of data source: every source and destination type this build has.
pub const KINDS: &[(&str, &[Field])] = &[
    ("mysql", DATABASE),
    ("mariadb", DATABASE),
    ("oceanbase", DATABASE),
    ("postgres", POSTGRES),
    ("kafka", KAFKA),
    ("rocketmq", ROCKETMQ),
    ("datahub", DATAHUB),
];

/// The fields of `kind`.
pub fn fields_of(kind: &str) -> Option<&'static [Field]> {
    KINDS.iter().find(|(k, _)| *k == kind).map(|(_, f)| *f)
}

/// Whether a kind is a MySQL-family database (a source, or a database destination).
pub fn is_database(kind: &str) -> bool {
    matches!(kind, "mysql" | "mariadb" | "oceanbase")
}

/// Whether a kind can be a project's source (a MySQL-family database or PostgreSQL).
pub fn is_source(kind: &str) -> bool {
    is_database(kind) || kind == "postgres"
}

/// A field error: the field and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    /// The field.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> Bad {
    Bad {
        field: field.into(),
        message: message.into(),
    }
}

/// Splits a data source's fields as given (`name` and `kind` removed) into the plain and the
/// secret ones, checking each. With `old`, fields not given keep their old values (an update).
pub fn check(
    kind: &str,
    given: &Fields,
    old: Option<(&Fields, &Fields)>,
) -> Result<(Fields, Fields), Bad> {
    let fields = fields_of(kind).ok_or_else(|| {
        bad(
            "kind",
            format!(
                "unknown kind {kind:?}: use one of {}",
                KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let (mut plain, mut secret) = match old {
        Some((p, s)) => (p.clone(), s.clone()),
        None => (Map::new(), Map::new()),
    };
    for (k, v) in given {
        let Some(field) = fields.iter().find(|f| f.name == k) else {
            return Err(bad(
                k,
                format!(
                    "a {kind} data source has no field {k}; its fields are {}",
                    fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        if v.is_null() && old.is_some() {
            // An update's null removes the field.
            plain.remove(k);
            secret.remove(k);
            continue;
        }
        let ok = match field.ty {
            Ty::Text => v.as_str().is_some_and(|s| !s.is_empty()),
            Ty::Port => v.as_u64().is_some_and(|p| (1..=65535).contains(&p)),
            Ty::Properties => v
                .as_object()
                .is_some_and(|o| o.values().all(Value::is_string)),
        };
        if !ok {
            return Err(bad(
                k,
                match field.ty {
                    Ty::Text => "must be a non-empty string",
                    Ty::Port => "must be a port number (1..65535)",
                    Ty::Properties => "must be an object of string values",
                },
            ));
        }
        if field.secret {
            secret.insert(k.clone(), v.clone());
        } else {
            plain.insert(k.clone(), v.clone());
        }
    }
    for f in fields.iter().filter(|f| f.required) {
        if !plain.contains_key(f.name) && !secret.contains_key(f.name) {
            return Err(bad(
                f.name,
                format!("a {kind} data source needs {}", f.name),
            ));
        }
    }
    Ok((plain, secret))
}

/// What the API shows of a data source: its plain fields, and for each secret field whether
/// it is set (`password_set`), never its value.
pub fn view(
    kind: &str,
    plain: &Map<String, Value>,
    secret: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = plain.clone();
    for f in fields_of(kind).unwrap_or(&[]).iter().filter(|f| f.secret) {
        out.insert(
            format!("{}_set", f.name),
            Value::Bool(secret.contains_key(f.name)),
        );
    }
    out
}

/// Which end of a project a section is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `source`.
    Source,
    /// `destination`.
    Destination,
}

fn text(m: &Map<String, Value>, k: &str) -> String {
    m.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The project section made of data source `name` (`kind`, `plain` and `secret` fields) and
/// the project's own fields `rest` (without `datasource`).
pub fn section(
    name: &str,
    kind: &str,
    plain: &Map<String, Value>,
    secret: &Map<String, Value>,
    end: End,
    rest: &Map<String, Value>,
) -> Result<Map<String, Value>, Bad> {
    let here = match end {
        End::Source => "source",
        End::Destination => "destination",
    };
    let mut out = Map::new();
    let all = |out: &mut Map<String, Value>, keys: &[&str]| {
        for k in keys {
            if let Some(v) = plain.get(*k).or_else(|| secret.get(*k)) {
                out.insert((*k).to_string(), v.clone());
            }
        }
    };
    match (end, is_database(kind)) {
        (End::Source, _) if kind == "postgres" => {
            out.insert("type".into(), Value::String(kind.into()));
            all(&mut out, &["host", "port", "user", "password", "database"]);
        }
        (End::Destination, _) if kind == "postgres" => {
            return Err(bad(
                &format!("{here}.datasource"),
                format!("data source {name} is a postgres server, which is a source, not a destination"),
            ))
        }
        (End::Source, true) => {
            out.insert("type".into(), Value::String(kind.into()));
            all(&mut out, &["host", "port", "user", "password"]);
        }
        (End::Destination, true) => {
            out.insert("type".into(), Value::String(kind.into()));
            let enc = |s: &str| {
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            };
            let user = enc(&text(plain, "user"));
            let auth = match secret.get("password").and_then(Value::as_str) {
                Some(p) => format!("{user}:{}", enc(p)),
                None => user,
            };
            let port = plain.get("port").and_then(Value::as_u64).unwrap_or(3306);
            out.insert(
                "url".into(),
                Value::String(format!("mysql://{auth}@{}:{port}", text(plain, "host"))),
            );
        }
        (End::Source, false) => {
            return Err(bad(
                &format!("{here}.datasource"),
                format!("data source {name} is a {kind}, which is a destination, not a source; name a mysql, mariadb, oceanbase or postgres data source"),
            ))
        }
        (End::Destination, false) => {
            out.insert("type".into(), Value::String(kind.into()));
            let keys: Vec<&str> = fields_of(kind)
                .unwrap_or(&[])
                .iter()
                .map(|f| f.name)
                .collect();
            all(&mut out, &keys);
        }
    }
    if is_source(kind) {
        if let Some(tls) = tls_section(plain) {
            out.insert("tls".into(), tls);
        }
    }
    for (k, v) in rest {
        if k == "type" {
            // A database data source serves any MySQL-family type; others only their own.
            let t = v.as_str().unwrap_or_default();
            if t == kind || (is_database(kind) && is_database(t)) {
                out.insert(k.clone(), v.clone());
                continue;
            }
            return Err(bad(
                &format!("{here}.type"),
                format!("data source {name} is a {kind}: remove type, or name a data source of type {t}"),
            ));
        }
        if out.contains_key(k) || (k == "url" && (is_database(kind) || kind == "postgres")) {
            return Err(bad(
                &format!("{here}.{k}"),
                format!("{k} comes from data source {name}; remove it from the project"),
            ));
        }
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn fields_are_checked_and_secrets_split_off() {
        let (plain, secret) = check(
            "mariadb",
            &obj(json!({"host": "h", "port": 3316, "user": "u", "password": "p w"})),
            None,
        )
        .expect("valid");
        assert_eq!(plain, obj(json!({"host": "h", "port": 3316, "user": "u"})));
        assert_eq!(secret, obj(json!({"password": "p w"})));
        let v = view("mariadb", &plain, &secret);
        assert_eq!(v.get("password_set"), Some(&json!(true)));
        assert!(!Value::Object(v).to_string().contains("p w"));
        let e = check(
            "mariadb",
            &obj(json!({"host": "h", "user": "u", "brokers": "b"})),
            None,
        )
        .expect_err("foreign field");
        assert_eq!(e.field, "brokers");
        let e = check("mariadb", &obj(json!({"host": "h"})), None).expect_err("no user");
        assert_eq!(e.field, "user");
        let e = check(
            "mariadb",
            &obj(json!({"host": "h", "user": "u", "port": 0})),
            None,
        )
        .expect_err("bad port");
        assert_eq!(e.field, "port");
        assert_eq!(
            check("nope", &Map::new(), None).expect_err("kind").field,
            "kind"
        );
    }

    #[test]
    fn a_database_becomes_a_source_or_a_destination_url() {
        let plain = obj(json!({"host": "db", "port": 3316, "user": "u@x"}));
        let secret = obj(json!({"password": "p:w/"}));
        let s = section(
            "d",
            "mariadb",
            &plain,
            &secret,
            End::Source,
            &obj(json!({"server_id": 9})),
        )
        .expect("source");
        assert_eq!(s.get("password"), Some(&json!("p:w/")));
        assert_eq!(s.get("server_id"), Some(&json!(9)));
        let d = section(
            "d",
            "mariadb",
            &plain,
            &secret,
            End::Destination,
            &obj(json!({"type": "oceanbase"})),
        )
        .expect("destination");
        assert_eq!(d.get("url"), Some(&json!("mysql://u%40x:p%3Aw%2F@db:3316")));
        assert_eq!(d.get("type"), Some(&json!("oceanbase")));
        let e = section(
            "d",
            "mariadb",
            &plain,
            &secret,
            End::Source,
            &obj(json!({"host": "x"})),
        )
        .expect_err("ambiguous");
        assert_eq!(e.field, "source.host");
        let e = section(
            "k",
            "kafka",
            &obj(json!({"brokers": "b"})),
            &Map::new(),
            End::Source,
            &Map::new(),
        )
        .expect_err("kafka is no source");
        assert_eq!(e.field, "source.datasource");
    }
}
