//! The official DataHub SDK (PyPI `pydatahub`, unmodified) drives this server through every
//! call Sluice's destination and its test readers make (tests/conformance.py): this is what
//! makes the server a fair stand-in for the cloud service. Then the server is killed and
//! started again on its data, and everything it had answered is still there.

use sluice_testkit::{repo_root, services_tool, unique_name, TempDatahub};

fn sdk(endpoint: &str, key: &str, project: &str, extra: &[&str]) -> Result<String, String> {
    let script = repo_root().join("crates/datahub-server/tests/conformance.py");
    services_tool(
        "datahub-python",
        &script,
        &[&[endpoint, "sluice", key, project], extra].concat(),
    )
}

#[test]
fn the_official_sdk_finds_the_server_faithful_and_its_data_kept_across_a_restart(
) -> Result<(), String> {
    let mut server = TempDatahub::start()?;
    let project = unique_name("conf").replace('-', "_");
    let out = sdk(&server.endpoint(), "sluice-secret", &project, &[])?;
    for check in [
        "ok project",
        "ok topics",
        "ok shards",
        "ok put tuple and blob, json and pb, none/lz4/zlib",
        "ok get tuple and blob, json and pb",
        "ok cursors",
        "ok put by shard (pb)",
        "ok bad signature refused",
        "ok oversized record refused (partial failure)",
        "ok request over 4 MB refused",
        "ok malformed record refused",
        "ok split and merge shards",
        "ok append field",
        "ok delete topic",
        "all passed",
    ] {
        assert!(
            out.lines().any(|l| l == check),
            "{check:?} missing in:\n{out}"
        );
    }
    server.stop();
    server.resume()?;
    let kept = sdk(&server.endpoint(), "sluice-secret", &project, &["kept"])?;
    assert!(kept.contains("ok kept across a restart"), "{kept}");
    Ok(())
}
