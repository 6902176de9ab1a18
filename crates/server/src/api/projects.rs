//! `/api/v1/projects`: create (JSON or a project YAML), list, show, the lifecycle actions,
//! the objects changed while running, the figures history.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use sluice_core::source::Findings;
use sluice_meta::MetaStore;
use sluice_pipeline::Project;
use std::time::Duration;

use super::{blocking, is_yaml, object};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::project::{self, allowed, check_name};
use crate::store::{now_ms, ProjectRow};
use crate::{workers, App};

pub(super) fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/projects", get(list).post(create))
        .route("/api/v1/projects/{name}", get(show).delete(remove))
        .route("/api/v1/projects/{name}/figures", get(figures))
        .route("/api/v1/projects/{name}/yaml", get(yaml))
        .route("/api/v1/projects/{name}/objects", get(objects).post(modify))
        .route("/api/v1/projects/{name}/{action}", post(action))
}

fn row_of(app: &App, name: &str) -> Result<ProjectRow, ApiError> {
    app.store
        .project(name)?
        .ok_or_else(|| ApiError::not_found(format!("project {name}")))
}

/// A stored project's spec with its secrets back in place.
fn full_spec(app: &App, row: &ProjectRow) -> Result<Value, ApiError> {
    let secrets = project::open_map(
        app,
        &format!("project:{}", row.name),
        row.secrets.as_deref(),
    )?;
    let mut spec = row.spec.clone();
    project::merge_secrets(&mut spec, &secrets);
    Ok(spec)
}

/// The pipeline's project for a stored one.
pub fn runnable(app: &App, row: &ProjectRow) -> Result<Project, ApiError> {
    project::resolve(app, &row.name, &full_spec(app, row)?, &app.dir)
}

/// The body of a create: JSON, or a project file (YAML).
fn spec_of(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if is_yaml(headers) {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::field("", "the project file is not UTF-8"))?;
        match serde_yaml_ng::from_str::<Value>(text) {
            Ok(Value::Object(o)) => Ok(o),
            Ok(_) => Err(ApiError::field("", "a project file is a mapping of fields")),
            Err(e) => Err(ApiError::field(
                "",
                format!("the project file is not YAML: {e}"),
            )),
        }
    } else {
        object(body)
    }
}

/// Stores a new project (checked as a project file is); its view.
fn insert(app: &App, name: &str, mut spec: Map<String, Value>) -> Result<Value, ApiError> {
    check_name(name)?;
    // The service keeps every project in its own data directory.
    spec.remove("name");
    spec.remove("data_dir");
    let mut spec = Value::Object(spec);
    project::resolve(app, name, &spec, &app.dir)?;
    let secrets = project::split_secrets(&mut spec);
    let row = ProjectRow {
        name: name.to_string(),
        spec,
        secrets: project::seal_map(app, &format!("project:{name}"), &secrets)?,
        state: "NotStarted".into(),
        message: String::new(),
        created_ms: now_ms(),
        updated_ms: now_ms(),
    };
    if !app.store.insert_project(&row)? {
        return Err(ApiError::conflict(format!("project {name} exists")));
    }
    view(app, &row_of(app, name)?)
}

async fn create(
    State(app): State<App>,
    c: Caller,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    c.admin()?;
    let flag = |k: &str| match q.get(k).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::field(k, "must be true or false")),
    };
    let (dry_run, precheck) = (flag("dry_run")?, flag("precheck")?);
    if precheck && !dry_run {
        return Err(ApiError::field(
            "precheck",
            "a precheck before create needs dry_run=true (a stored project has its own precheck action)",
        ));
    }
    let spec = spec_of(&headers, &body)?;
    let name = super::string(&spec, "name")?;
    if dry_run {
        let v = blocking(move || trial(&app, &name, spec, precheck)).await?;
        return Ok((StatusCode::OK, Json(v)));
    }
    let v = blocking(move || insert(&app, &name, spec)).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

/// A create that stores nothing (what the console's wizard asks at each step): the spec is
/// checked as a create checks it, then against the source (the tables its rules select, each
/// with its destination name; filters and column subsets name existing columns), and with
/// `precheck` the whole precheck runs too.
fn trial(
    app: &App,
    name: &str,
    mut spec: Map<String, Value>,
    precheck: bool,
) -> Result<Value, ApiError> {
    check_name(name)?;
    if app.store.project(name)?.is_some() {
        return Err(ApiError {
            field: Some("name".into()),
            ..ApiError::conflict(format!("project {name} exists: choose another name"))
        });
    }
    spec.remove("name");
    spec.remove("data_dir");
    let p = project::resolve(app, name, &Value::Object(spec), &app.dir)?;
    let selected = match sluice_pipeline::selection(&p) {
        Ok(s) => s,
        Err(sluice_pipeline::RunError::Check(m)) => {
            // The text starts with the project-file field it is about.
            return Err(match m.split_once(": ") {
                Some((field, rest)) if field.starts_with("objects.") => {
                    ApiError::field(field, rest)
                }
                _ => ApiError::field("objects", m),
            });
        }
        Err(e) => return Err(unreadable(e)),
    };
    let mut v = json!({"name": name, "valid": true, "tables": selection_json(&selected)});
    if precheck {
        v["precheck"] = findings_json(&sluice_pipeline::precheck(&p));
    }
    Ok(v)
}

/// The figures the API shows of a project: state, stage, checkpoint, latency, full-sync
/// progress, Store and Writer, last errors.
fn status(app: &App, meta: &MetaStore, row: &ProjectRow) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    let parts = meta.parts(&row.name).map_err(ApiError::internal)?;
    let names = if parts.is_empty() {
        vec![row.name.clone()]
    } else {
        parts
    };
    let mut stage = String::new();
    let mut checkpoint = Value::Null;
    let mut oldest: Option<u64> = None;
    let mut tables: Vec<Value> = Vec::new();
    let mut full_done = true;
    let mut run_message = String::new();
    for n in &names {
        let s = meta.status(n).map_err(ApiError::internal)?;
        if stage.is_empty() || s.stage == "full" {
            stage = s.stage.clone();
        }
        if run_message.is_empty() && !s.message.is_empty() {
            run_message = s.message.clone();
        }
        if let Some(c) = &s.checkpoint {
            if names.len() == 1 {
                checkpoint = json!({"position": c.position.to_string(), "ts_ms": c.ts_ms});
            }
            if c.ts_ms > 0 {
                oldest = Some(oldest.map_or(c.ts_ms, |o| o.min(c.ts_ms)));
            }
        }
        full_done &= s.full_done || s.full.is_empty();
        for (t, (rows, total, done)) in s.full_tables() {
            tables.push(json!({"table": t, "rows": rows, "total": total, "done": done}));
        }
    }
    if names.len() > 1 {
        checkpoint = json!({"position": format!("vector of {} instances", names.len()), "ts_ms": oldest.unwrap_or(0)});
    }
    let latency = oldest.map(|ts| (now_ms() - ts as i64).max(0));
    out.insert("state".into(), json!(row.state));
    out.insert("stage".into(), json!(stage));
    let message = if row.message.is_empty() {
        run_message
    } else {
        row.message.clone()
    };
    out.insert("message".into(), json!(message));
    out.insert("checkpoint".into(), checkpoint);
    out.insert("latency_ms".into(), json!(latency));
    out.insert(
        "full".into(),
        json!({"finished": full_done, "tables": tables}),
    );
    let figures = app.workers.figures(&row.name);
    out.insert(
        "store".into(),
        figures.get("store").cloned().unwrap_or(Value::Null),
    );
    out.insert(
        "writer".into(),
        figures.get("writer").cloned().unwrap_or(Value::Null),
    );
    Ok(out)
}

fn summary(app: &App, meta: &MetaStore, row: &ProjectRow) -> Result<Value, ApiError> {
    let mut v = status(app, meta, row)?;
    v.remove("full");
    v.insert("name".into(), json!(row.name));
    let end = |k: &str| {
        let s = row.spec.get(k);
        s.and_then(|s| s.get("datasource"))
            .or_else(|| s.and_then(|s| s.get("type")))
            .cloned()
            .unwrap_or(Value::Null)
    };
    v.insert("source".into(), end("source"));
    v.insert("destination".into(), end("destination"));
    v.insert(
        "actions".into(),
        Value::Array(project::actions_in(&row.name, &row.state)),
    );
    Ok(Value::Object(v))
}

fn view(app: &App, row: &ProjectRow) -> Result<Value, ApiError> {
    let meta = MetaStore::open(&app.dir).map_err(ApiError::internal)?;
    let mut v = status(app, &meta, row)?;
    v.insert("name".into(), json!(row.name));
    v.insert(
        "actions".into(),
        Value::Array(project::actions_in(&row.name, &row.state)),
    );
    let secrets = project::open_map(
        app,
        &format!("project:{}", row.name),
        row.secrets.as_deref(),
    )?;
    v.insert("spec".into(), project::view_spec(&row.spec, &secrets));
    let errors: Vec<Value> = app
        .store
        .events(&row.name, 20)?
        .into_iter()
        .map(|(at, m)| json!({"at_ms": at, "message": m}))
        .collect();
    v.insert("errors".into(), Value::Array(errors));
    v.insert(
        "modifications".into(),
        serde_json::to_value(app.store.modifications(&row.name)?).map_err(ApiError::internal)?,
    );
    // The last verification of each table (stages.verify, or `sluice verify`).
    let verification: Vec<Value> = meta
        .verify_results(&row.name)
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|r| {
            json!({
                "table": r.table, "dest": r.dest, "at_ms": r.at_ms, "took_ms": r.took_ms,
                "rows": r.rows, "equal": r.equal, "missing": r.missing, "extra": r.extra,
                "different": r.different,
                "detail": serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
            })
        })
        .collect();
    v.insert("verification".into(), Value::Array(verification));
    v.insert("verifying".into(), json!(app.workers.verifying(&row.name)));
    v.insert("created_ms".into(), json!(row.created_ms));
    v.insert("updated_ms".into(), json!(row.updated_ms));
    Ok(Value::Object(v))
}

/// A source that cannot be read for its selection (409: the data source's state, not the
/// request, is at fault).
fn unreadable(e: sluice_pipeline::RunError) -> ApiError {
    ApiError::conflict(format!(
        "the source cannot be read ({e}): test its data source's connection"
    ))
}

/// The selected tables and their destination names, as the API shows them.
fn selection_json(selected: &[sluice_pipeline::Selected]) -> Vec<Value> {
    let part = |t: &sluice_core::TableId| json!({"db": t.db, "table": t.table});
    selected
        .iter()
        .map(|s| json!({"table": part(&s.table), "to": part(&s.to)}))
        .collect()
}

/// The tables a stored project selects now, each with its destination name (read from the
/// source: tables created since the start show up here).
async fn objects(
    State(app): State<App>,
    _c: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = row_of(&app, &name)?;
    let v = blocking(move || {
        let p = runnable(&app, &row)?;
        let selected = sluice_pipeline::selection(&p).map_err(unreadable)?;
        Ok(json!({"tables": selection_json(&selected)}))
    })
    .await?;
    Ok(Json(v))
}

async fn list(State(app): State<App>, _c: Caller) -> Result<Json<Value>, ApiError> {
    let rows = app.store.projects()?;
    // One handle for all of them (a list of many projects answers quickly).
    let meta = MetaStore::open(&app.dir).map_err(ApiError::internal)?;
    let all = rows
        .iter()
        .map(|r| summary(&app, &meta, r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Value::Array(all)))
}

async fn show(
    State(app): State<App>,
    _c: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = row_of(&app, &name)?;
    let mut v = view(&app, &row)?;
    // What a project that is not running keeps on its source (a PostgreSQL slot's WAL),
    // asked live, for at most 2 s: a source that does not answer leaves it out.
    if matches!(
        row.state.as_str(),
        "Stopped" | "Paused" | "Failed" | "Completed"
    ) {
        let (a, r) = (app.clone(), row.clone());
        let ask = blocking(move || {
            Ok(runnable(&a, &r)
                .ok()
                .and_then(|p| p.source.open().ok())
                .and_then(|s| s.retained().ok().flatten()))
        });
        if let Ok(Ok(Some(held))) = tokio::time::timeout(Duration::from_secs(2), ask).await {
            v["on_source"] = json!(held);
        }
    }
    Ok(Json(v))
}

/// The project as a project file (YAML) without its secrets: what `sluice project create -f`
/// or the API takes back (secret fields must then be given again, or come from data sources).
async fn yaml(
    State(app): State<App>,
    _c: Caller,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let row = row_of(&app, &name)?;
    let mut spec = row.spec.clone();
    if let Some(o) = spec.as_object_mut() {
        o.insert("name".into(), json!(row.name));
    }
    let text = serde_yaml_ng::to_string(&spec).map_err(ApiError::internal)?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/yaml".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.yaml\""),
            ),
        ],
        format!("# Project {name}, from the Sluice service (secrets left out).\n{text}"),
    )
        .into_response())
}

async fn figures(
    State(app): State<App>,
    _c: Caller,
    Path(name): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    row_of(&app, &name)?;
    let num = |k: &str, default: i64, max: i64| -> Result<i64, ApiError> {
        match q.get(k) {
            None => Ok(default),
            Some(s) => s
                .parse::<i64>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::field(k, format!("must be a whole number from 0 to {max}"))
                }),
        }
    };
    let since = num("since_ms", 0, i64::MAX)?;
    let limit = num("limit", 1000, 100_000)?;
    let samples: Vec<Value> = app
        .store
        .samples(&name, since, limit)?
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    Ok(Json(Value::Array(samples)))
}

fn findings_json(f: &Findings) -> Value {
    let list = |v: &[sluice_core::source::Finding]| -> Vec<Value> {
        v.iter()
            .map(|f| json!({"item": f.item, "problem": f.problem, "fix": f.fix}))
            .collect()
    };
    json!({
        "passed": f.failures.is_empty(),
        "checked": f.checked,
        "failures": list(&f.failures),
        "warnings": list(&f.warnings),
    })
}

async fn action(
    State(app): State<App>,
    c: Caller,
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !matches!(
        action.as_str(),
        "start" | "pause" | "resume" | "stop" | "release" | "clone" | "precheck" | "verify"
    ) {
        return Err(ApiError::not_found(format!("action {action}")));
    }
    c.admin()?;
    let o = object(&body)?;
    if o.get("force").is_some_and(|v| !v.is_boolean()) {
        return Err(ApiError::field("force", "must be true or false"));
    }
    if let Some(n) = o.get("name") {
        check_name(n.as_str().unwrap_or(""))?;
    }
    let row = row_of(&app, &name)?;
    if action != "clone" {
        allowed(&name, &action, &row.state)?;
    }
    let me = app.clone();
    blocking(move || act(&me, row, &action, &o)).await
}

fn set_paused(app: &App, name: &str, paused: bool) -> Result<(), ApiError> {
    MetaStore::open(&app.dir)
        .and_then(|m| m.set_paused(name, paused))
        .map_err(ApiError::internal)
}

fn act(
    app: &App,
    row: ProjectRow,
    action: &str,
    o: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let name = row.name.clone();
    let ok = |app: &App| -> Result<Response, ApiError> {
        Ok(Json(view(app, &row_of(app, &name)?)?).into_response())
    };
    match action {
        "precheck" => {
            let p = runnable(app, &row)?;
            Ok(Json(findings_json(&sluice_pipeline::precheck(&p))).into_response())
        }
        "start" => {
            let p = runnable(app, &row)?;
            let force = o.get("force").and_then(Value::as_bool).unwrap_or(false);
            let found = sluice_pipeline::precheck(&p);
            if !found.failures.is_empty() && !force {
                let body = json!({
                    "error": format!(
                        "the precheck failed ({}): fix what it names, or start with {{\"force\": true}}",
                        found.failures.iter().map(|f| f.problem.as_str()).collect::<Vec<_>>().join("; ")
                    ),
                    "field": null,
                    "precheck": findings_json(&found),
                });
                return Ok((StatusCode::CONFLICT, Json(body)).into_response());
            }
            set_paused(app, &name, false)?;
            app.store.set_project_state(&name, "Running", "")?;
            workers::spawn(app, p).map_err(ApiError::internal)?;
            let mut v = view(app, &row_of(app, &name)?)?;
            if let Some(m) = v.as_object_mut() {
                m.insert("precheck".into(), findings_json(&found));
            }
            Ok(Json(v).into_response())
        }
        "verify" => {
            let p = runnable(app, &row)?;
            if !p.destination.verifiable() {
                return Err(ApiError::conflict(format!(
                    "verification of this destination is not built yet: {}",
                    sluice_pipeline::VERIFIABLE
                )));
            }
            workers::verify(app, p).map_err(ApiError::conflict)?;
            Ok((StatusCode::ACCEPTED, Json(view(app, &row_of(app, &name)?)?)).into_response())
        }
        "pause" => {
            set_paused(app, &name, true)?;
            app.store.set_project_state(&name, "Paused", "")?;
            ok(app)
        }
        "resume" => {
            set_paused(app, &name, false)?;
            if !app.workers.alive(&name) {
                let p = runnable(app, &row)?;
                app.store.set_project_state(&name, "Running", "")?;
                workers::spawn(app, p).map_err(ApiError::internal)?;
            } else {
                app.store.set_project_state(&name, "Running", "")?;
            }
            ok(app)
        }
        "stop" => {
            app.store.set_project_state(&name, "Stopped", "")?;
            workers::stop(app, &name);
            set_paused(app, &name, false)?;
            ok(app)
        }
        "release" => {
            let p = runnable(app, &row)?;
            app.store.set_project_state(&name, "Released", "")?;
            workers::stop(app, &name);
            set_paused(app, &name, false)?;
            // The source's slot (PostgreSQL) first: a slot left behind holds WAL forever.
            let freed = p.source.open().and_then(|s| s.release());
            if let Err(e) = freed {
                app.store.set_project_state(&name, &row.state, "")?;
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the source's replication slot could not be dropped ({e}); the project stays {}: try release again", row.state),
                ));
            }
            if let Err(e) = p.destination.release() {
                app.store.set_project_state(&name, &row.state, "")?;
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the destination's checkpoint rows could not be freed ({e}); the project stays {}: try release again", row.state),
                ));
            }
            app.board.forget(&name);
            ok(app)
        }
        "clone" => {
            let new = match o.get("name") {
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err(ApiError::field("name", "must be a string")),
                None => {
                    let mut n = format!("{name}-copy");
                    let mut i = 2;
                    while app.store.project(&n)?.is_some() {
                        n = format!("{name}-copy{i}");
                        i += 1;
                    }
                    n
                }
            };
            let spec = full_spec(app, &row)?;
            let spec = spec.as_object().cloned().unwrap_or_default();
            let v = insert(app, &new, spec)?;
            Ok((StatusCode::CREATED, Json(v)).into_response())
        }
        _ => Err(ApiError::not_found(format!("action {action}"))),
    }
}

async fn remove(
    State(app): State<App>,
    c: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.admin()?;
    let row = row_of(&app, &name)?;
    allowed(&name, "delete", &row.state)?;
    let me = app.clone();
    blocking(move || {
        MetaStore::open(&me.dir)
            .and_then(|mut m| m.forget(&name))
            .map_err(ApiError::internal)?;
        me.board.forget(&name);
        me.store.delete_project(&name)?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The table names of `add` or `remove`.
fn names(o: &Map<String, Value>, k: &str) -> Result<Vec<String>, ApiError> {
    match o.get(k) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v.as_str() {
                Some(s) if s.contains('.') && !s.contains('*') => Ok(s.to_string()),
                _ => Err(ApiError::field(
                    k,
                    "give tables as \"db.table\" names (no wildcards)",
                )),
            })
            .collect(),
        Some(_) => Err(ApiError::field(k, "must be a list of \"db.table\" names")),
    }
}

/// The spec with `add` selected and `remove` not.
fn changed_spec(spec: &Value, add: &[String], remove: &[String]) -> Value {
    let mut s = spec.clone();
    let list = |s: &mut Value, k: &str| -> Vec<Value> {
        s.pointer(&format!("/objects/{k}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut include = list(&mut s, "include");
    let mut exclude = list(&mut s, "exclude");
    for t in add {
        exclude.retain(|v| v.as_str() != Some(t));
        if !include.iter().any(|v| v.as_str() == Some(t)) {
            include.push(json!(t));
        }
    }
    for t in remove {
        include.retain(|v| v.as_str() != Some(t));
        if !exclude.iter().any(|v| v.as_str() == Some(t)) {
            exclude.push(json!(t));
        }
    }
    if let Some(objects) = s.get_mut("objects").and_then(Value::as_object_mut) {
        objects.insert("include".into(), Value::Array(include));
        objects.insert("exclude".into(), Value::Array(exclude));
    }
    s
}

/// Adds and removes tables of a project; a running one is stopped, changed and started again,
/// and shows Modifying until its added tables are copied.
async fn modify(
    State(app): State<App>,
    c: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    c.admin()?;
    let o = object(&body)?;
    let (add, remove) = (names(&o, "add")?, names(&o, "remove")?);
    if add.is_empty() && remove.is_empty() {
        return Err(ApiError::field("add", "give tables to add or remove"));
    }
    let row = row_of(&app, &name)?;
    allowed(&name, "modify", &row.state)?;
    let me = app.clone();
    let v = blocking(move || modify_now(&me, row, &add, &remove)).await?;
    Ok((StatusCode::ACCEPTED, Json(v)))
}

fn modify_now(
    app: &App,
    row: ProjectRow,
    add: &[String],
    remove: &[String],
) -> Result<Value, ApiError> {
    let name = row.name.clone();
    let old_spec = full_spec(app, &row)?;
    let new_spec = changed_spec(&old_spec, add, remove);
    let old = project::resolve(app, &name, &old_spec, &app.dir)?;
    let new = project::resolve(app, &name, &new_spec, &app.dir)?;
    let asked = json!({"add": add, "remove": remove});
    let id = app.store.add_modification(&name, &asked)?;
    let was = row.state.clone();
    let running = matches!(was.as_str(), "Running" | "Paused");
    app.store.set_project_state(&name, "Modifying", "")?;
    if running {
        workers::stop(app, &name);
    }
    let fail = |m: String| -> Result<Value, ApiError> {
        app.store.set_modification(id, &asked, "failed", &m)?;
        if running {
            workers::spawn(app, old.clone()).map_err(ApiError::internal)?;
        }
        app.store.set_project_state(&name, &was, "")?;
        Err(ApiError::conflict(format!(
            "the objects could not be changed: {m}"
        )))
    };
    let change = match sluice_pipeline::modify::change_objects(&old, &new) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    let mut stored = new_spec;
    let secrets = project::split_secrets(&mut stored);
    app.store.update_project_spec(
        &name,
        &stored,
        project::seal_map(app, &format!("project:{name}"), &secrets)?.as_deref(),
    )?;
    let done = json!({
        "add": add, "remove": remove,
        "added": change.added.iter().map(|t| format!("{}.{}", t.db, t.table)).collect::<Vec<_>>(),
        "removed": change.removed.iter().map(|t| format!("{}.{}", t.db, t.table)).collect::<Vec<_>>(),
    });
    let integrating = running && change.units > 0;
    app.store.set_modification(
        id,
        &done,
        if integrating { "integrating" } else { "done" },
        &format!(
            "{} table(s) added, {} removed{}",
            change.added.len(),
            change.removed.len(),
            if integrating {
                "; the added tables are being copied"
            } else {
                ""
            }
        ),
    )?;
    if running {
        workers::spawn(app, new).map_err(ApiError::internal)?;
    }
    let state = if integrating {
        "Modifying"
    } else {
        was.as_str()
    };
    app.store.set_project_state(&name, state, "")?;
    view(app, &row_of(app, &name)?)
}
