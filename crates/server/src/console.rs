//! The web console: static pages served by the service itself, built into the binary (no
//! build step, no separate web server). The pages render in the browser from the JSON API —
//! the same calls a script makes — so the console can do nothing the API does not allow, and
//! the session is the API's own cookie. Served with a Content-Security-Policy that allows
//! only this origin's own script and style.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::App;

const INDEX: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const UI_JS: &str = include_str!("../console/ui.js");
const WIZARD_JS: &str = include_str!("../console/wizard.js");
const STYLE: &str = include_str!("../console/style.css");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn asset(ctype: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The console's routes: `/` and `/console/*`.
pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/console/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/console/ui.js",
            get(|| async { asset("text/javascript; charset=utf-8", UI_JS) }),
        )
        .route(
            "/console/wizard.js",
            get(|| async { asset("text/javascript; charset=utf-8", WIZARD_JS) }),
        )
        .route(
            "/console/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}
