//! The HTTP API: JSON under `/api/v1` (described by `openapi.json`, served at
//! `/api/v1/openapi.json`), and `/metrics`, `/health`, `/ready`. Every `/api/v1` request but
//! the login and the document needs a token (see `auth.rs`); a write needs the admin role.
//! Bodies are read by hand so that a malformed one gets the same JSON error as any other.

mod projects;

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;

use crate::auth::{self, Caller};
use crate::datasource;
use crate::error::ApiError;
use crate::project::{self, check_name_of};
use crate::store::{now_ms, DatasourceRow, User};
use crate::App;

pub use projects::runnable;

/// The OpenAPI document.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Every route.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/me", get(me))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{name}", put(update_user).delete(delete_user))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route(
            "/api/v1/datasources",
            get(list_datasources).post(create_datasource),
        )
        .route(
            "/api/v1/datasources/{name}",
            get(show_datasource)
                .put(update_datasource)
                .delete(delete_datasource),
        )
        .route("/api/v1/datasources/{name}/test", post(test_datasource))
        .route("/api/v1/datasources/{name}/tables", get(datasource_tables))
        .route("/api/v1/kinds", get(kinds))
        .merge(projects::routes())
        .merge(crate::console::routes())
        .fallback(|| async { ApiError::not_found("this path") })
        .with_state(app)
}

/// A JSON object body (an empty body is an empty object).
pub(crate) fn object(body: &Bytes) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ApiError::field("", "the body must be a JSON object")),
        Err(e) => Err(ApiError::field("", format!("the body is not JSON: {e}"))),
    }
}

/// A required string field.
pub(crate) fn string(o: &Map<String, Value>, k: &str) -> Result<String, ApiError> {
    match o.get(k) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(ApiError::field(k, "must be a non-empty string")),
        None => Err(ApiError::field(k, format!("{k} is required"))),
    }
}

/// Runs blocking work (servers reached, workers joined) off the request threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

async fn ready(State(app): State<App>) -> Response {
    if app.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting the projects that were running\n",
        )
            .into_response()
    }
}

async fn metrics(State(app): State<App>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.board.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn login(State(app): State<App>, body: Bytes) -> Result<Response, ApiError> {
    let o = object(&body)?;
    let user = string(&o, "user")?;
    let password = string(&o, "password")?;
    let found = app.store.user(&user)?;
    let hash = found.as_ref().map(|u| u.hash.clone());
    let ok = blocking(move || {
        // A missing user costs a hash too, so timing tells nothing.
        let h = hash.unwrap_or_else(|| {
            "$argon2id$v=19$m=19456,t=2,p=1$c2x1aWNlc2x1aWNl$0000000000000000000000000000000000000000000"
                .into()
        });
        Ok(auth::verify_password(&password, &h))
    })
    .await?;
    let Some(u) = found.filter(|_| ok) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong user or password",
        ));
    };
    let expires = now_ms() + auth::SESSION_MS;
    let (token, _) = auth::new_token(&app, &u.name, "session", "login", Some(expires))?;
    let cookie = format!(
        "sluice_session={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        auth::SESSION_MS / 1000
    );
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({"token": token, "user": u.name, "role": u.role, "expires_ms": expires})),
    )
        .into_response())
}

/// Ends a login session (an API token is revoked with `DELETE /api/v1/tokens/{id}` instead).
async fn logout(State(app): State<App>, c: Caller) -> Result<Response, ApiError> {
    if c.token_kind == "session" {
        app.store.revoke_token(&c.token_id, Some(&c.user))?;
    }
    Ok((
        [(
            header::SET_COOKIE,
            "sluice_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0".to_string(),
        )],
        Json(json!({"user": c.user, "logged_out": true})),
    )
        .into_response())
}

async fn me(c: Caller) -> Json<Value> {
    Json(json!({"user": c.user, "role": c.role}))
}

fn role_of(o: &Map<String, Value>) -> Result<String, ApiError> {
    match o.get("role") {
        None => Ok("viewer".into()),
        Some(Value::String(r)) if r == "admin" || r == "viewer" => Ok(r.clone()),
        Some(_) => Err(ApiError::field("role", "must be admin or viewer")),
    }
}

async fn list_users(State(app): State<App>, _c: Caller) -> Result<Json<Value>, ApiError> {
    let users: Vec<Value> = app
        .store
        .users()?
        .into_iter()
        .map(|(name, role)| json!({"name": name, "role": role}))
        .collect();
    Ok(Json(Value::Array(users)))
}

async fn create_user(
    State(app): State<App>,
    c: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    c.admin()?;
    let o = object(&body)?;
    let name = string(&o, "name")?;
    check_name_of("user", &name)?;
    let password = string(&o, "password")?;
    let role = role_of(&o)?;
    if app.store.user(&name)?.is_some() {
        return Err(ApiError::conflict(format!("user {name} exists")));
    }
    let hash = blocking(move || auth::hash_password(&password)).await?;
    app.store.put_user(&User {
        name: name.clone(),
        role: role.clone(),
        hash,
    })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"name": name, "role": role})),
    ))
}

async fn update_user(
    State(app): State<App>,
    c: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    // A user may change their own password; anything else is an admin's.
    let o = object(&body)?;
    if c.user != name || o.contains_key("role") {
        c.admin()?;
    }
    let Some(mut u) = app.store.user(&name)? else {
        return Err(ApiError::not_found(format!("user {name}")));
    };
    if o.contains_key("role") {
        if name == c.user {
            return Err(ApiError::conflict(
                "you cannot change your own role (another admin can)",
            ));
        }
        u.role = role_of(&o)?;
    }
    if o.contains_key("password") {
        let password = string(&o, "password")?;
        u.hash = blocking(move || auth::hash_password(&password)).await?;
    }
    app.store.put_user(&u)?;
    Ok(Json(json!({"name": u.name, "role": u.role})))
}

async fn delete_user(
    State(app): State<App>,
    c: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.admin()?;
    if name == c.user {
        return Err(ApiError::conflict("you cannot delete yourself"));
    }
    if !app.store.delete_user(&name)? {
        return Err(ApiError::not_found(format!("user {name}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tokens(State(app): State<App>, c: Caller) -> Result<Json<Value>, ApiError> {
    let rows = app.store.tokens(&c.user)?;
    Ok(Json(
        serde_json::to_value(rows).map_err(ApiError::internal)?,
    ))
}

async fn create_token(
    State(app): State<App>,
    c: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let o = object(&body)?;
    let label = match o.get("label") {
        None => "api".to_string(),
        Some(Value::String(s)) if s.len() <= 200 => s.clone(),
        Some(_) => {
            return Err(ApiError::field(
                "label",
                "must be a string of at most 200 characters",
            ))
        }
    };
    let expires = match o.get("expires_in_s") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(s) if (1..=10 * 365 * 86_400).contains(&s) => Some(now_ms() + s * 1000),
            _ => {
                return Err(ApiError::field(
                    "expires_in_s",
                    "must be a number of seconds from 1 to 315360000",
                ))
            }
        },
    };
    let (token, row) = auth::new_token(&app, &c.user, "api", &label, expires)?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"token": token, "id": row.id, "label": row.label, "expires_ms": row.expires_ms}),
        ),
    ))
}

async fn revoke_token(
    State(app): State<App>,
    c: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let own = if c.role == "admin" {
        None
    } else {
        Some(c.user.as_str())
    };
    if app.store.revoke_token(&id, own)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("token {id}")))
    }
}

/// The tables of a database data source, read live from it (the wizard's object tree):
/// `[{"db", "tables": [...]}]`, by name.
async fn datasource_tables(
    State(app): State<App>,
    _c: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tables = blocking(move || {
        let (p, kind) = probe_project(&app, &name)?;
        if !datasource::is_source(&kind) {
            return Err(ApiError::conflict(format!(
                "data source {name} is a {kind}: only a source database has tables to list"
            )));
        }
        // The service is fine; the data source cannot be reached with its fields (409, as
        // for any state of a record that keeps a request from being done).
        let unavailable = |e: sluice_core::source::SourceError| {
            ApiError::conflict(format!("data source {name}: {e}"))
        };
        let source = p.source.open().map_err(unavailable)?;
        let mut cat = source.catalog().map_err(unavailable)?;
        cat.tables().map_err(unavailable)
    })
    .await?;
    let mut by_db: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for t in tables {
        by_db.entry(t.db).or_default().push(t.table);
    }
    Ok(Json(Value::Array(
        by_db
            .into_iter()
            .map(|(db, mut tables)| {
                tables.sort();
                json!({"db": db, "tables": tables})
            })
            .collect(),
    )))
}

/// The kinds of data source and their fields (what the console's form shows).
async fn kinds(_c: Caller) -> Json<Value> {
    let all: Vec<Value> = datasource::KINDS
        .iter()
        .map(|(kind, fields)| {
            let fields: Vec<Value> = fields
                .iter()
                .map(|f| {
                    json!({
                        "name": f.name, "required": f.required, "secret": f.secret,
                        "type": match f.ty {
                            datasource::Ty::Text => "text",
                            datasource::Ty::Port => "port",
                            datasource::Ty::Properties => "properties",
                        },
                    })
                })
                .collect();
            json!({"kind": kind, "source": datasource::is_source(kind), "fields": fields})
        })
        .collect();
    Json(Value::Array(all))
}

/// The projects that name each data source.
fn users_of_datasources(app: &App) -> Result<HashMap<String, Vec<String>>, ApiError> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for p in app.store.projects()? {
        for d in project::datasources_of(&p.spec) {
            out.entry(d).or_default().push(p.name.clone());
        }
    }
    Ok(out)
}

fn datasource_view(
    app: &App,
    row: &DatasourceRow,
    used: &HashMap<String, Vec<String>>,
) -> Result<Value, ApiError> {
    let secret = project::open_map(
        app,
        &format!("datasource:{}", row.name),
        row.secrets.as_deref(),
    )?;
    let mut v = datasource::view(&row.kind, &row.fields, &secret);
    v.insert("name".into(), json!(row.name));
    v.insert("kind".into(), json!(row.kind));
    v.insert(
        "used_by".into(),
        json!(used.get(&row.name).cloned().unwrap_or_default()),
    );
    v.insert("created_ms".into(), json!(row.created_ms));
    v.insert("updated_ms".into(), json!(row.updated_ms));
    Ok(Value::Object(v))
}

async fn list_datasources(State(app): State<App>, _c: Caller) -> Result<Json<Value>, ApiError> {
    let used = users_of_datasources(&app)?;
    let all = app
        .store
        .datasources()?
        .iter()
        .map(|d| datasource_view(&app, d, &used))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(Value::Array(all)))
}

async fn show_datasource(
    State(app): State<App>,
    _c: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let row = app
        .store
        .datasource(&name)?
        .ok_or_else(|| ApiError::not_found(format!("data source {name}")))?;
    Ok(Json(datasource_view(
        &app,
        &row,
        &users_of_datasources(&app)?,
    )?))
}

async fn create_datasource(
    State(app): State<App>,
    c: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    c.admin()?;
    let mut o = object(&body)?;
    let name = string(&o, "name")?;
    check_name_of("data source", &name)?;
    let kind = string(&o, "kind")?;
    o.remove("name");
    o.remove("kind");
    let (fields, secret) =
        datasource::check(&kind, &o, None).map_err(|b| ApiError::field(b.field, b.message))?;
    let row = DatasourceRow {
        secrets: project::seal_map(&app, &format!("datasource:{name}"), &secret)?,
        name: name.clone(),
        kind,
        fields,
        created_ms: now_ms(),
        updated_ms: now_ms(),
    };
    if !app.store.insert_datasource(&row)? {
        return Err(ApiError::conflict(format!("data source {name} exists")));
    }
    // Its fields must make a valid section of a project (an endpoint a URL, ...).
    if let Err(e) = probe_project(&app, &name) {
        app.store.delete_datasource(&name)?;
        return Err(e);
    }
    let row = app
        .store
        .datasource(&name)?
        .ok_or_else(|| ApiError::internal("the data source was not stored"))?;
    Ok((
        StatusCode::CREATED,
        Json(datasource_view(&app, &row, &HashMap::new())?),
    ))
}

async fn update_datasource(
    State(app): State<App>,
    c: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    c.admin()?;
    let mut o = object(&body)?;
    let mut row = app
        .store
        .datasource(&name)?
        .ok_or_else(|| ApiError::not_found(format!("data source {name}")))?;
    for (k, current) in [("name", &row.name), ("kind", &row.kind)] {
        match o.remove(k) {
            Some(Value::String(s)) if &s == current => {}
            None => {}
            Some(_) => {
                return Err(ApiError::field(
                    k,
                    format!("the {k} of a data source cannot change; create another"),
                ))
            }
        }
    }
    let owner = format!("datasource:{name}");
    let old_secret = project::open_map(&app, &owner, row.secrets.as_deref())?;
    let (fields, secret) = datasource::check(&row.kind, &o, Some((&row.fields, &old_secret)))
        .map_err(|b| ApiError::field(b.field, b.message))?;
    let before = row.clone();
    row.fields = fields;
    row.secrets = project::seal_map(&app, &owner, &secret)?;
    app.store.update_datasource(&row)?;
    if let Err(e) = probe_project(&app, &name) {
        app.store.update_datasource(&before)?;
        return Err(e);
    }
    show_datasource(State(app), c, Path(name)).await
}

async fn delete_datasource(
    State(app): State<App>,
    c: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    c.admin()?;
    if let Some(users) = users_of_datasources(&app)?.get(&name) {
        return Err(ApiError::conflict(format!(
            "data source {name} is used by project {}: delete the project first",
            users.join(", ")
        )));
    }
    if !app.store.delete_datasource(&name)? {
        return Err(ApiError::not_found(format!("data source {name}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Connects to a data source with its fields: a database as a source reads its server id
/// and log end; a destination is checked as the precheck checks it.
async fn test_datasource(
    State(app): State<App>,
    c: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    c.admin()?;
    let result = blocking(move || {
        let (p, kind) = probe_project(&app, &name)?;
        let outcome = if datasource::is_source(&kind) {
            p.source
                .open()
                .and_then(|s| {
                    let mut cat = s.catalog()?;
                    let id = cat.server_id()?;
                    Ok(format!("connected; the server's id is {id}"))
                })
                // The source names its project-file field; here the fields are the data
                // source's own.
                .map_err(|e| {
                    e.to_string()
                        .replace(
                            "check source.url",
                            "check the data source's host, port, user and password",
                        )
                        .replace("source.tls.mode", "the data source's tls_mode")
                        .replace("check source.tls", "check the data source's tls_* fields")
                })
        } else {
            match p.destination.check() {
                Ok(()) => Ok("connected; the destination answers".to_string()),
                // DataHub answered, only the project is not there (yet).
                Err(e) if kind == "datahub" && e.to_string().contains("does not exist") => {
                    Ok(format!("connected; {e}"))
                }
                Err(e) => Err(e.to_string()),
            }
        };
        Ok(outcome)
    })
    .await?;
    Ok(Json(match result {
        Ok(m) => json!({"ok": true, "message": m}),
        Err(m) => json!({"ok": false, "message": m}),
    }))
}

/// A project that uses data source `name` at the end it can serve, with placeholders at the
/// other, and the data source's kind: making it checks the data source's fields as a project
/// section (nothing is connected).
fn probe_project(app: &App, name: &str) -> Result<(sluice_pipeline::Project, String), ApiError> {
    let (kind, plain, _) = project::datasource_fields(app, name)?
        .ok_or_else(|| ApiError::not_found(format!("data source {name}")))?;
    let has_project = plain.contains_key("project");
    let (src, dst) = if datasource::is_source(&kind) {
        (
            json!({"datasource": name}),
            json!({"type": "kafka", "brokers": "127.0.0.1:1", "format": "oms"}),
        )
    } else {
        // The fields a destination of the kind needs besides its connection.
        let dst = match kind.as_str() {
            "datahub" if has_project => json!({"datasource": name, "create_topics": false}),
            "datahub" => {
                json!({"datasource": name, "create_topics": false, "project": "sluice"})
            }
            _ => json!({"datasource": name, "format": "oms"}),
        };
        (
            json!({"type": "mysql", "host": "127.0.0.1", "user": "x"}),
            dst,
        )
    };
    let spec = json!({
        "source": src, "destination": dst, "objects": {"include": ["*.*"]},
    });
    Ok((
        project::resolve(app, "connection-test", &spec, &app.dir)?,
        kind,
    ))
}

/// Whether a request is a YAML upload.
pub(crate) fn is_yaml(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("yaml"))
}
