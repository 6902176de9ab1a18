//! The official client (confluent-kafka's schema-registry module, unmodified) drives this
//! registry through every call a producer, a consumer and an operator make
//! (tests/conformance.py); then the server is killed and started again on its file, and every
//! id it gave is still there.

use std::process::{Child, Command, Stdio};

use sluice_testkit::{
    ensure_up, free_port, repo_root, services_tool, unique_name, wait_listening, Service,
};

fn start(port: u16, data: &std::path::Path) -> Result<Child, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice-schema-registry-server"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    wait_listening(&mut child, port, 20).map_err(|e| format!("the registry: {e}"))?;
    Ok(child)
}

fn client(url: &str, prefix: &str, extra: &[&str]) -> Result<String, String> {
    let script = repo_root().join("crates/schema-registry-server/tests/conformance.py");
    services_tool("avro-python", &script, &[&[url, prefix], extra].concat())
}

#[test]
fn the_official_client_finds_the_registry_faithful_and_its_ids_kept() -> Result<(), String> {
    // Installs the official client (the shared registry itself is not used).
    ensure_up(&[Service::SchemaRegistry]);
    let dir = std::env::temp_dir().join(unique_name("registry"));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let data = dir.join("registry.json");
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let prefix = unique_name("conf");
    let mut server = start(port, &data)?;
    let out = client(&url, &prefix, &[]);
    let _ = server.kill();
    let _ = server.wait();
    let out = out?;
    for check in [
        "ok register and ids",
        "ok versions, lookup, subjects, not found",
        "ok compatibility",
        "ok serializer and deserializer",
        "ok delete",
    ] {
        assert!(out.contains(check), "{check} missing:\n{out}");
    }
    let mut server = start(port, &data)?;
    let out = client(&url, &prefix, &["--after-restart"]);
    let _ = server.kill();
    let _ = server.wait();
    assert!(out?.contains("ok kept across a restart"));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
