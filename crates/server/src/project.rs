//! Projects as the service keeps them: the project file's fields as JSON, where `source` and
//! `destination` may name a data source (`{"datasource": NAME, ...}`), with every secret field
//! of an inline section (`password`, `key_password`, `url`, `access_key`, `secret_key`,
//! `properties`, at any depth) moved out and sealed. [`resolve`] puts them back together and checks the result
//! exactly as `sluice run -f` checks a file, so both run the same project code.
//!
//! The lifecycle is OMS's: NotStarted, Running, Paused, Failed, Completed, Stopped, Released,
//! Modifying; [`allowed`] is the one table of which action each state allows.

use std::path::Path;

use serde_json::{Map, Value};
use sluice_pipeline::Project;

use crate::datasource::{self, End};
use crate::error::ApiError;
use crate::App;

/// Field names whose values are secret in an inline section.
const SECRET_KEYS: &[&str] = &[
    "password",
    "key_password",
    "url",
    "access_key",
    "secret_key",
    "properties",
];

/// Each action and the states that allow it.
pub const ACTIONS: &[(&str, &[&str])] = &[
    ("start", &["NotStarted", "Stopped"]),
    ("pause", &["Running"]),
    ("resume", &["Paused", "Failed"]),
    ("stop", &["Running", "Paused", "Failed", "Modifying"]),
    ("release", &["Paused", "Failed", "Completed", "Stopped"]),
    ("delete", &["NotStarted", "Released"]),
    ("modify", &["NotStarted", "Running", "Paused", "Stopped"]),
    (
        "verify",
        &[
            "Running",
            "Paused",
            "Failed",
            "Completed",
            "Stopped",
            "Modifying",
        ],
    ),
    (
        "precheck",
        &[
            "NotStarted",
            "Running",
            "Paused",
            "Failed",
            "Completed",
            "Stopped",
            "Modifying",
        ],
    ),
];

/// Every state a project can be in.
pub const STATES: &[&str] = &[
    "NotStarted",
    "Running",
    "Paused",
    "Failed",
    "Completed",
    "Stopped",
    "Released",
    "Modifying",
];

/// Whether `action` is allowed in `state`; the refusal names the states that allow it.
pub fn allowed(name: &str, action: &str, state: &str) -> Result<(), ApiError> {
    let states = ACTIONS
        .iter()
        .find(|(a, _)| *a == action)
        .map(|(_, s)| *s)
        .unwrap_or(&[]);
    if states.contains(&state) {
        return Ok(());
    }
    Err(ApiError::conflict(format!(
        "project {name} is {state}: {action} is allowed only when it is {}",
        states.join(", ")
    )))
}

/// Each action and whether `state` allows it, with the refusal's reason when not (what the
/// console shows on a disabled button).
pub fn actions_in(name: &str, state: &str) -> Vec<serde_json::Value> {
    ACTIONS
        .iter()
        .map(|(a, _)| match allowed(name, a, state) {
            Ok(()) => serde_json::json!({"action": a, "allowed": true}),
            Err(e) => serde_json::json!({"action": a, "allowed": false, "reason": e.message}),
        })
        .collect()
}

/// A project name: letters, digits, `-` and `_`, 1 to 64, starting with a letter or digit
/// (no `.`: a sharded project's parts are `NAME.INSTANCE`).
pub fn check_name(name: &str) -> Result<(), ApiError> {
    check_name_of("project", name)
}

/// A name of a `what` (project, user, data source), by the rule of [`check_name`].
pub fn check_name_of(what: &str, name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            "name",
            format!("{name:?} is not a {what} name: use 1 to 64 letters, digits, - and _, starting with a letter or digit"),
        ))
    }
}

/// Moves the secret fields of the `source` and `destination` sections out of `spec`, as JSON
/// pointer -> value.
pub fn split_secrets(spec: &mut Value) -> Map<String, Value> {
    fn walk(v: &mut Value, at: &str, out: &mut Map<String, Value>) {
        match v {
            Value::Object(o) => {
                let keys: Vec<String> = o.keys().cloned().collect();
                for k in keys {
                    let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    if SECRET_KEYS.contains(&k.as_str()) {
                        if let Some(val) = o.remove(&k) {
                            out.insert(here, val);
                        }
                    } else if let Some(child) = o.get_mut(&k) {
                        walk(child, &here, out);
                    }
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter_mut().enumerate() {
                    walk(child, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Map::new();
    for end in ["source", "destination"] {
        if let Some(section) = spec.get_mut(end) {
            walk(section, &format!("/{end}"), &mut out);
        }
    }
    out
}

/// Puts the secrets [`split_secrets`] took back in place.
pub fn merge_secrets(spec: &mut Value, secrets: &Map<String, Value>) {
    for (pointer, v) in secrets {
        let Some((parent, key)) = pointer.rsplit_once('/') else {
            continue;
        };
        let key = key.replace("~1", "/").replace("~0", "~");
        if let Some(Value::Object(o)) = spec.pointer_mut(parent) {
            o.insert(key, v.clone());
        }
    }
}

/// The data sources a project names.
pub fn datasources_of(spec: &Value) -> Vec<String> {
    ["source", "destination"]
        .iter()
        .filter_map(|end| spec.get(end)?.get("datasource")?.as_str())
        .map(str::to_string)
        .collect()
}

/// A data source's plain and secret fields, opened.
pub fn datasource_fields(
    app: &App,
    name: &str,
) -> Result<Option<(String, datasource::Fields, datasource::Fields)>, ApiError> {
    let Some(row) = app.store.datasource(name)? else {
        return Ok(None);
    };
    let secret = open_map(app, &format!("datasource:{name}"), row.secrets.as_deref())?;
    Ok(Some((row.kind, row.fields, secret)))
}

/// Opens a sealed JSON object (none: empty).
pub fn open_map(
    app: &App,
    owner: &str,
    sealed: Option<&[u8]>,
) -> Result<Map<String, Value>, ApiError> {
    match sealed {
        None => Ok(Map::new()),
        Some(b) => {
            let plain = app.vault.open_sealed(owner, b)?;
            serde_json::from_slice(&plain).map_err(ApiError::internal)
        }
    }
}

/// Seals a JSON object (empty: nothing stored).
pub fn seal_map(
    app: &App,
    owner: &str,
    m: &Map<String, Value>,
) -> Result<Option<Vec<u8>>, ApiError> {
    if m.is_empty() {
        return Ok(None);
    }
    let plain = serde_json::to_vec(m).map_err(ApiError::internal)?;
    Ok(Some(app.vault.seal(owner, &plain)?))
}

/// The project `spec` (secrets merged back) as the pipeline runs it: data sources put in
/// place, `name` and `data_dir` set by the service, checked like a project file.
pub fn resolve(app: &App, name: &str, spec: &Value, dir: &Path) -> Result<Project, ApiError> {
    let mut full = spec.clone();
    let Some(top) = full.as_object_mut() else {
        return Err(ApiError::field(
            "",
            "a project is a JSON object of the project file's fields",
        ));
    };
    top.insert("name".into(), Value::String(name.into()));
    top.insert("data_dir".into(), Value::String(dir.display().to_string()));
    for (key, end) in [("source", End::Source), ("destination", End::Destination)] {
        let Some(Value::Object(section)) = top.get(key) else {
            continue;
        };
        let Some(ds) = section.get("datasource") else {
            continue;
        };
        let ds_name = ds.as_str().ok_or_else(|| {
            ApiError::field(
                format!("{key}.datasource"),
                "must be the name of a data source",
            )
        })?;
        let (kind, plain, secret) = datasource_fields(app, ds_name)?.ok_or_else(|| {
            ApiError::field(
                format!("{key}.datasource"),
                format!(
                    "there is no data source {ds_name}: create it first (POST /api/v1/datasources)"
                ),
            )
        })?;
        let mut rest = section.clone();
        rest.remove("datasource");
        let made = datasource::section(ds_name, &kind, &plain, &secret, end, &rest)
            .map_err(|b| ApiError::field(b.field, b.message))?;
        top.insert(key.into(), Value::Object(made));
    }
    let text = serde_yaml_ng::to_string(&full).map_err(ApiError::internal)?;
    sluice_registry::parse(&text, "project", dir).map_err(|e| {
        let field = e.field.trim_end_matches(": ").to_string();
        ApiError::field(field, e.message)
    })
}

/// What the API shows of a stored spec: the fields without secrets, and which are set.
pub fn view_spec(spec: &Value, secrets: &Map<String, Value>) -> Value {
    let mut v = spec.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "secrets_set".into(),
            Value::Array(secrets.keys().map(|k| Value::String(k.clone())).collect()),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_leave_the_spec_and_come_back() {
        let mut spec = json!({
            "source": {"type": "sharded", "instances": [{"name": "a", "url": "mysql://u:s1@h"}]},
            "destination": {"type": "kafka", "brokers": "b", "properties": {"sasl.password": "s2"},
                "security": {"protocol": "sasl_ssl", "password": "s3", "key_password": "s4"},
                "schema_registry": {"url": "http://r", "username": "u", "password": "s5"}},
            "objects": {"include": ["password.t"]},
        });
        let original = spec.clone();
        let secrets = split_secrets(&mut spec);
        let text = spec.to_string();
        for s in ["s1", "s2", "s3", "s4", "s5"] {
            assert!(!text.contains(s), "{s} in {text}");
        }
        assert_eq!(secrets.len(), 6);
        merge_secrets(&mut spec, &secrets);
        assert_eq!(spec, original);
    }

    #[test]
    fn each_refused_action_names_the_states_that_allow_it() {
        assert!(allowed("p", "start", "NotStarted").is_ok());
        let e = allowed("p", "delete", "Running").expect_err("refused");
        assert_eq!(e.status, axum::http::StatusCode::CONFLICT);
        assert!(
            e.message.contains("only when it is NotStarted, Released"),
            "{}",
            e.message
        );
        for (_, states) in ACTIONS {
            assert!(states.iter().all(|s| STATES.contains(s)));
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("shop-to-kafka_2").is_ok());
        for bad in ["", "a.b", "-x", "a b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
