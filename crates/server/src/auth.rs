//! Users, passwords and tokens. Passwords are kept as Argon2id hashes; a token (a session
//! from `POST /api/v1/login`, or an API token a user creates) is 32 random bytes shown once
//! and kept as its SHA-256. Every request but `/health`, `/ready` and the login carries one
//! (`Authorization: Bearer TOKEN`, or the `sluice_session` cookie); without a valid one it gets
//! 401, and a viewer's write 403.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use base64::Engine;
use sha2::Digest;

use crate::error::ApiError;
use crate::store::{now_ms, TokenRow};
use crate::App;

/// How long a login session lasts.
pub const SESSION_MS: i64 = 12 * 3600 * 1000;

/// Hashes a password (Argon2id, random salt).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt_bytes = crate::secrets::random::<16>()?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(ApiError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Whether `password` matches the stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    let d = sha2::Sha256::digest(token.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new token for `user`: (the token, shown once; its record).
pub fn new_token(
    app: &App,
    user: &str,
    kind: &str,
    label: &str,
    expires_ms: Option<i64>,
) -> Result<(String, TokenRow), ApiError> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = format!("slu_{}", b64.encode(crate::secrets::random::<32>()?));
    let row = TokenRow {
        id: b64.encode(crate::secrets::random::<9>()?),
        user: user.to_string(),
        kind: kind.to_string(),
        label: label.to_string(),
        created_ms: now_ms(),
        expires_ms,
        revoked: false,
    };
    app.store.put_token(&row, &token_hash(&token))?;
    Ok((token, row))
}

/// Who made a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// The id of the token used.
    pub token_id: String,
    /// Its kind: `session` (a login) or `api`.
    pub token_kind: String,
}

impl Caller {
    /// Refuses a viewer (403).
    pub fn admin(&self) -> Result<(), ApiError> {
        if self.role == "admin" {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "user {} has the viewer role, which reads only; ask an admin",
                    self.user
                ),
            ))
        }
    }
}

/// The token a request carries: the bearer token, else the session cookie.
pub fn token_of(parts: &Parts) -> Option<String> {
    let h = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if let Some(a) = h("authorization") {
        return a
            .strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("bearer "))
            .map(|t| t.trim().to_string());
    }
    h("cookie").and_then(|c| {
        c.split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == "sluice_session")
            .map(|(_, v)| v.to_string())
    })
}

impl FromRequestParts<App> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, m);
        let Some(token) = token_of(parts) else {
            return Err(unauthorized(
                "no credentials: log in (POST /api/v1/login) and send Authorization: Bearer TOKEN",
            ));
        };
        match app.store.token_by_hash(&token_hash(&token))? {
            Some((row, role)) => Ok(Caller {
                user: row.user,
                role,
                token_id: row.id,
                token_kind: row.kind,
            }),
            None => Err(unauthorized(
                "the token is not valid (unknown, expired or revoked): log in again",
            )),
        }
    }
}
