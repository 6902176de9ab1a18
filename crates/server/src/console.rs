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

/// Each asset: its path, content type and text (built into the binary).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../console/index.html"),
    ),
    (
        "/console/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/app.js"),
    ),
    (
        "/console/ui.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/ui.js"),
    ),
    (
        "/console/wizard.js",
        "text/javascript; charset=utf-8",
        include_str!("../console/wizard.js"),
    ),
    (
        "/console/style.css",
        "text/css; charset=utf-8",
        include_str!("../console/style.css"),
    ),
];

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
    ASSETS
        .iter()
        .fold(Router::new(), |r, &(path, ctype, body)| {
            r.route(path, get(move || async move { asset(ctype, body) }))
        })
}
