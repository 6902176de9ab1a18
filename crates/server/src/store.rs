//! The service's own records, in the same SQLite file as the projects' checkpoints
//! (`DIR/meta.db`, tables `srv_*`): users, tokens, data sources, projects, modifications,
//! events and the figures history. Secrets are stored sealed (see `secrets.rs`); a token only
//! as its SHA-256.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension};

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
#[error("metadata store {path}: {message}")]
pub struct StoreError {
    path: String,
    message: String,
}

const SCHEMA: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
  CREATE TABLE IF NOT EXISTS srv_user (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL, created_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS srv_token (
    id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, user TEXT NOT NULL, kind TEXT NOT NULL,
    label TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0);
  CREATE TABLE IF NOT EXISTS srv_datasource (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, fields TEXT NOT NULL, secrets BLOB,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS srv_project (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, secrets BLOB, state TEXT NOT NULL,
    message TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS srv_modification (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, at_ms INTEGER NOT NULL,
    change TEXT NOT NULL, state TEXT NOT NULL, message TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS srv_event (
    id INTEGER PRIMARY KEY AUTOINCREMENT, project TEXT NOT NULL, at_ms INTEGER NOT NULL,
    message TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS srv_sample (
    project TEXT NOT NULL, at_ms INTEGER NOT NULL, figures TEXT NOT NULL,
    PRIMARY KEY (project, at_ms));";

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A user.
#[derive(Debug, Clone)]
pub struct User {
    /// Name.
    pub name: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// Argon2 PHC string.
    pub hash: String,
}

/// A token's record (never the token itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRow {
    /// Public id.
    pub id: String,
    /// Its user.
    pub user: String,
    /// `session` or `api`.
    pub kind: String,
    /// What it is for.
    pub label: String,
    /// Created, ms.
    pub created_ms: i64,
    /// Expires, ms (None: never).
    pub expires_ms: Option<i64>,
    /// Revoked.
    pub revoked: bool,
}

/// A data source as stored.
#[derive(Debug, Clone)]
pub struct DatasourceRow {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Non-secret fields (JSON object).
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Sealed secrets (JSON object of name -> value, sealed).
    pub secrets: Option<Vec<u8>>,
    /// Created, ms.
    pub created_ms: i64,
    /// Updated, ms.
    pub updated_ms: i64,
}

/// A project as stored.
#[derive(Debug, Clone)]
pub struct ProjectRow {
    /// Name.
    pub name: String,
    /// The project's fields without secrets (JSON object).
    pub spec: serde_json::Value,
    /// Sealed secrets (JSON object of field path -> value).
    pub secrets: Option<Vec<u8>>,
    /// Lifecycle state.
    pub state: String,
    /// Why it is in that state (a failure's message), or empty.
    pub message: String,
    /// Created, ms.
    pub created_ms: i64,
    /// Updated, ms.
    pub updated_ms: i64,
}

/// One modification of a project's objects.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Modification {
    /// Its number.
    pub id: i64,
    /// When it was asked, ms.
    pub at_ms: i64,
    /// What was asked (`{"add": [...], "remove": [...]}`) and done.
    pub change: serde_json::Value,
    /// `applying`, `integrating` (added tables being copied), `done` or `failed`.
    pub state: String,
    /// A failure's message, or what was done.
    pub message: String,
}

/// The store.
pub struct Store {
    conn: Mutex<Connection>,
    path: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens `dir/meta.db` (creating the service's tables).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("meta.db").display().to_string();
        let err = |e: rusqlite::Error| StoreError {
            path: path.clone(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| StoreError {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let conn = Connection::open(dir.join("meta.db")).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path,
        })
    }

    fn db(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| self.fail("a thread panicked"))
    }

    fn fail(&self, message: impl std::fmt::Display) -> StoreError {
        StoreError {
            path: self.path.clone(),
            message: message.to_string(),
        }
    }

    fn e(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| self.fail(e)
    }

    /// Every row `sql` selects, each made by `row`.
    fn rows<T>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
        row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let db = self.db()?;
        let mut st = db.prepare(sql).map_err(self.e())?;
        let rows = st.query_map(p, row).map_err(self.e())?;
        rows.collect::<Result<_, _>>().map_err(self.e())
    }

    // --- users and tokens ---

    /// How many users there are.
    pub fn user_count(&self) -> Result<i64, StoreError> {
        self.db()?
            .query_row("SELECT COUNT(*) FROM srv_user", [], |r| r.get(0))
            .map_err(self.e())
    }

    /// Adds or replaces a user.
    pub fn put_user(&self, u: &User) -> Result<(), StoreError> {
        self.db()?
            .execute(
                "INSERT INTO srv_user (name, role, hash, created_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET role = ?2, hash = ?3",
                params![u.name, u.role, u.hash, now_ms()],
            )
            .map(|_| ())
            .map_err(self.e())
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.db()?
            .query_row(
                "SELECT name, role, hash FROM srv_user WHERE name = ?1",
                params![name],
                |r| {
                    Ok(User {
                        name: r.get(0)?,
                        role: r.get(1)?,
                        hash: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(self.e())
    }

    /// Every user (name, role).
    pub fn users(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.rows("SELECT name, role FROM srv_user ORDER BY name", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    }

    /// Deletes a user and revokes its tokens.
    pub fn delete_user(&self, name: &str) -> Result<bool, StoreError> {
        let db = self.db()?;
        db.execute(
            "UPDATE srv_token SET revoked = 1 WHERE user = ?1",
            params![name],
        )
        .map_err(self.e())?;
        db.execute("DELETE FROM srv_user WHERE name = ?1", params![name])
            .map(|n| n > 0)
            .map_err(self.e())
    }

    /// Stores a token's record with the token's hash.
    pub fn put_token(&self, t: &TokenRow, hash: &str) -> Result<(), StoreError> {
        self.db()?
            .execute(
                "INSERT INTO srv_token (id, hash, user, kind, label, created_ms, expires_ms, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)",
                params![t.id, hash, t.user, t.kind, t.label, t.created_ms, t.expires_ms],
            )
            .map(|_| ())
            .map_err(self.e())
    }

    /// The valid (not revoked, not expired) token with this hash, with its user's role.
    pub fn token_by_hash(&self, hash: &str) -> Result<Option<(TokenRow, String)>, StoreError> {
        self.db()?
            .query_row(
                "SELECT t.id, t.user, t.kind, t.label, t.created_ms, t.expires_ms, t.revoked, u.role
                 FROM srv_token t JOIN srv_user u ON u.name = t.user
                 WHERE t.hash = ?1 AND t.revoked = 0 AND (t.expires_ms IS NULL OR t.expires_ms > ?2)",
                params![hash, now_ms()],
                |r| {
                    Ok((
                        TokenRow {
                            id: r.get(0)?,
                            user: r.get(1)?,
                            kind: r.get(2)?,
                            label: r.get(3)?,
                            created_ms: r.get(4)?,
                            expires_ms: r.get(5)?,
                            revoked: r.get(6)?,
                        },
                        r.get(7)?,
                    ))
                },
            )
            .optional()
            .map_err(self.e())
    }

    /// A user's API tokens.
    pub fn tokens(&self, user: &str) -> Result<Vec<TokenRow>, StoreError> {
        self.rows(
            "SELECT id, user, kind, label, created_ms, expires_ms, revoked FROM srv_token
             WHERE user = ?1 AND kind = 'api' ORDER BY created_ms",
            params![user],
            |r| {
                Ok(TokenRow {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    kind: r.get(2)?,
                    label: r.get(3)?,
                    created_ms: r.get(4)?,
                    expires_ms: r.get(5)?,
                    revoked: r.get(6)?,
                })
            },
        )
    }

    /// Revokes a token of `user` (any user's when `user` is None); whether one was found.
    pub fn revoke_token(&self, id: &str, user: Option<&str>) -> Result<bool, StoreError> {
        let n = match user {
            Some(u) => self.db()?.execute(
                "UPDATE srv_token SET revoked = 1 WHERE id = ?1 AND user = ?2",
                params![id, u],
            ),
            None => self.db()?.execute(
                "UPDATE srv_token SET revoked = 1 WHERE id = ?1",
                params![id],
            ),
        };
        n.map(|n| n > 0).map_err(self.e())
    }

    // --- data sources ---

    /// Adds a data source; false when the name is taken.
    pub fn insert_datasource(&self, d: &DatasourceRow) -> Result<bool, StoreError> {
        let fields = serde_json::Value::Object(d.fields.clone()).to_string();
        let n = self
            .db()?
            .execute(
                "INSERT INTO srv_datasource (name, kind, fields, secrets, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT(name) DO NOTHING",
                params![d.name, d.kind, fields, d.secrets, now_ms()],
            )
            .map_err(self.e())?;
        Ok(n > 0)
    }

    /// Replaces a data source's fields and secrets.
    pub fn update_datasource(&self, d: &DatasourceRow) -> Result<(), StoreError> {
        let fields = serde_json::Value::Object(d.fields.clone()).to_string();
        self.db()?
            .execute(
                "UPDATE srv_datasource SET fields = ?2, secrets = ?3, updated_ms = ?4 WHERE name = ?1",
                params![d.name, fields, d.secrets, now_ms()],
            )
            .map(|_| ())
            .map_err(self.e())
    }

    /// A data source by name.
    pub fn datasource(&self, name: &str) -> Result<Option<DatasourceRow>, StoreError> {
        Ok(self
            .datasources_where("WHERE name = ?1", params![name])?
            .into_iter()
            .next())
    }

    /// Every data source, by name.
    pub fn datasources(&self) -> Result<Vec<DatasourceRow>, StoreError> {
        self.datasources_where("", params![])
    }

    fn datasources_where(
        &self,
        clause: &str,
        p: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<DatasourceRow>, StoreError> {
        self.rows(
            &format!(
                "SELECT name, kind, fields, secrets, created_ms, updated_ms FROM srv_datasource {clause} ORDER BY name"
            ),
            p,
            |r| {
                let fields: String = r.get(2)?;
                Ok(DatasourceRow {
                    name: r.get(0)?,
                    kind: r.get(1)?,
                    fields: serde_json::from_str(&fields).unwrap_or_default(),
                    secrets: r.get(3)?,
                    created_ms: r.get(4)?,
                    updated_ms: r.get(5)?,
                })
            },
        )
    }

    /// Deletes a data source.
    pub fn delete_datasource(&self, name: &str) -> Result<bool, StoreError> {
        self.db()?
            .execute("DELETE FROM srv_datasource WHERE name = ?1", params![name])
            .map(|n| n > 0)
            .map_err(self.e())
    }

    // --- projects ---

    /// Adds a project; false when the name is taken.
    pub fn insert_project(&self, p: &ProjectRow) -> Result<bool, StoreError> {
        let n = self
            .db()?
            .execute(
                "INSERT INTO srv_project (name, spec, secrets, state, message, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT(name) DO NOTHING",
                params![p.name, p.spec.to_string(), p.secrets, p.state, p.message, now_ms()],
            )
            .map_err(self.e())?;
        Ok(n > 0)
    }

    /// Replaces a project's fields and secrets.
    pub fn update_project_spec(
        &self,
        name: &str,
        spec: &serde_json::Value,
        secrets: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        self.db()?
            .execute(
                "UPDATE srv_project SET spec = ?2, secrets = ?3, updated_ms = ?4 WHERE name = ?1",
                params![name, spec.to_string(), secrets, now_ms()],
            )
            .map(|_| ())
            .map_err(self.e())
    }

    /// Sets a project's state (and message).
    pub fn set_project_state(
        &self,
        name: &str,
        state: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.db()?
            .execute(
                "UPDATE srv_project SET state = ?2, message = ?3, updated_ms = ?4 WHERE name = ?1",
                params![name, state, message, now_ms()],
            )
            .map(|_| ())
            .map_err(self.e())
    }

    /// A project by name.
    pub fn project(&self, name: &str) -> Result<Option<ProjectRow>, StoreError> {
        Ok(self
            .projects_where("WHERE name = ?1", params![name])?
            .into_iter()
            .next())
    }

    /// Every project, by name.
    pub fn projects(&self) -> Result<Vec<ProjectRow>, StoreError> {
        self.projects_where("", params![])
    }

    fn projects_where(
        &self,
        clause: &str,
        p: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<ProjectRow>, StoreError> {
        self.rows(
            &format!(
                "SELECT name, spec, secrets, state, message, created_ms, updated_ms FROM srv_project {clause} ORDER BY name"
            ),
            p,
            |r| {
                let spec: String = r.get(1)?;
                Ok(ProjectRow {
                    name: r.get(0)?,
                    spec: serde_json::from_str(&spec).unwrap_or_default(),
                    secrets: r.get(2)?,
                    state: r.get(3)?,
                    message: r.get(4)?,
                    created_ms: r.get(5)?,
                    updated_ms: r.get(6)?,
                })
            },
        )
    }

    /// Deletes a project and its history.
    pub fn delete_project(&self, name: &str) -> Result<(), StoreError> {
        let db = self.db()?;
        for t in ["srv_modification", "srv_event", "srv_sample"] {
            db.execute(
                &format!("DELETE FROM {t} WHERE project = ?1"),
                params![name],
            )
            .map_err(self.e())?;
        }
        db.execute("DELETE FROM srv_project WHERE name = ?1", params![name])
            .map(|_| ())
            .map_err(self.e())
    }

    // --- modifications, events, samples ---

    /// Records a modification; its id.
    pub fn add_modification(
        &self,
        project: &str,
        change: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let db = self.db()?;
        db.execute(
            "INSERT INTO srv_modification (project, at_ms, change, state, message)
             VALUES (?1, ?2, ?3, 'applying', '')",
            params![project, now_ms(), change.to_string()],
        )
        .map_err(self.e())?;
        Ok(db.last_insert_rowid())
    }

    /// Updates a modification.
    pub fn set_modification(
        &self,
        id: i64,
        change: &serde_json::Value,
        state: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        self.db()?
            .execute(
                "UPDATE srv_modification SET change = ?2, state = ?3, message = ?4 WHERE id = ?1",
                params![id, change.to_string(), state, message],
            )
            .map(|_| ())
            .map_err(self.e())
    }

    /// A project's modifications, oldest first.
    pub fn modifications(&self, project: &str) -> Result<Vec<Modification>, StoreError> {
        self.rows(
            "SELECT id, at_ms, change, state, message FROM srv_modification
             WHERE project = ?1 ORDER BY id",
            params![project],
            |r| {
                let change: String = r.get(2)?;
                Ok(Modification {
                    id: r.get(0)?,
                    at_ms: r.get(1)?,
                    change: serde_json::from_str(&change).unwrap_or_default(),
                    state: r.get(3)?,
                    message: r.get(4)?,
                })
            },
        )
    }

    /// Records an error of a project (the last 100 are kept).
    pub fn add_event(&self, project: &str, message: &str) -> Result<(), StoreError> {
        let db = self.db()?;
        db.execute(
            "INSERT INTO srv_event (project, at_ms, message) VALUES (?1, ?2, ?3)",
            params![project, now_ms(), message],
        )
        .map_err(self.e())?;
        db.execute(
            "DELETE FROM srv_event WHERE project = ?1 AND id NOT IN
             (SELECT id FROM srv_event WHERE project = ?1 ORDER BY id DESC LIMIT 100)",
            params![project],
        )
        .map(|_| ())
        .map_err(self.e())
    }

    /// A project's last errors, newest first: (ms, message).
    pub fn events(&self, project: &str, limit: i64) -> Result<Vec<(i64, String)>, StoreError> {
        self.rows(
            "SELECT at_ms, message FROM srv_event WHERE project = ?1 ORDER BY id DESC LIMIT ?2",
            params![project, limit],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Records a sample of a project's figures; drops samples older than `keep_ms` and beyond
    /// `max_rows` per project (the history stays bounded).
    pub fn add_sample(
        &self,
        project: &str,
        at_ms: i64,
        figures: &serde_json::Value,
        keep_ms: i64,
        max_rows: i64,
    ) -> Result<(), StoreError> {
        let db = self.db()?;
        db.execute(
            "INSERT OR REPLACE INTO srv_sample (project, at_ms, figures) VALUES (?1, ?2, ?3)",
            params![project, at_ms, figures.to_string()],
        )
        .map_err(self.e())?;
        db.execute(
            "DELETE FROM srv_sample WHERE project = ?1 AND (at_ms < ?2 OR at_ms <=
               (SELECT at_ms FROM srv_sample WHERE project = ?1 ORDER BY at_ms DESC LIMIT 1 OFFSET ?3))",
            params![project, at_ms - keep_ms, max_rows],
        )
        .map(|_| ())
        .map_err(self.e())
    }

    /// A project's samples since `since_ms`, oldest first, at most `limit`.
    pub fn samples(
        &self,
        project: &str,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
        self.rows(
            "SELECT at_ms, figures FROM (SELECT at_ms, figures FROM srv_sample
             WHERE project = ?1 AND at_ms >= ?2 ORDER BY at_ms DESC LIMIT ?3) ORDER BY at_ms",
            params![project, since_ms, limit],
            |r| {
                let f: String = r.get(1)?;
                Ok((r.get(0)?, serde_json::from_str(&f).unwrap_or_default()))
            },
        )
    }
}
