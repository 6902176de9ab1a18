//! The service's API fuzzed against its own OpenAPI document by schemathesis (PyPI, run by
//! `dev/services schemathesis`): generated and mutated requests to every operation, every
//! check on (no 5xx, status codes, content types, headers and bodies as the document says,
//! schema-valid input accepted and schema-violating input refused), except what
//! `crates/server/tests/schemathesis.toml` says and why.

mod common;

use common::server::Server;
use common::*;
use serde_json::json;

#[test]
fn the_api_matches_its_openapi_document_under_schemathesis() -> TestResult {
    let dir = temp_dir(&unique_name("srvfuzz"));
    let server = Server::start(&dir.join("server"))?;
    let admin = server.admin()?;
    let token = admin.ok("POST", "/api/v1/tokens", Some(json!({"label": "fuzz"})))?;
    let out = Command::new(repo_root().join("dev/services"))
        .arg("schemathesis")
        .arg("--config-file")
        .arg(repo_root().join("crates/server/tests/schemathesis.toml"))
        .args(["run", "--no-color"])
        .arg(format!("{}/api/v1/openapi.json", server.url))
        .env("SLUICE_FUZZ_TOKEN", token["token"].as_str().unwrap_or(""))
        .output()?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found failures:\n{said}");
    // It generated and sent cases (a run that tested nothing would pass too).
    let generated = said
        .lines()
        .find_map(|l| l.trim().split_once(" generated, "))
        .and_then(|(n, _)| n.split_whitespace().last())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(generated >= 500, "too few cases ran:\n{said}");
    // Still served after all of it.
    let (s, _) = common::server::call(&server.url, None, "GET", "/health", None)?;
    assert_eq!(s, 200, "{}", server.log());
    Ok(())
}
