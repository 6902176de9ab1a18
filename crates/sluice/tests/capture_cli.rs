//! `sluice capture --binlog-file` as a user runs it: JSON lines and exit 0 for a good file; a
//! non-zero exit and a message naming file and offset for a damaged one.

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/binlogs")
        .join(name)
}

#[test]
fn a_recorded_file_prints_json_lines() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["capture", "--binlog-file"])
        .arg(fixture("mariadb-bin.000001"))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["op"] == "insert" && l["table"] == "outbox"),
        "{stdout}"
    );
}

#[test]
fn a_damaged_file_fails_naming_file_and_offset() {
    for name in ["binlog_truncated_event.000001", "corrupt-relay-bin.000624"] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["capture", "--binlog-file"])
            .arg(fixture(name))
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{name} must fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(name) && stderr.contains("offset"),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn a_bad_start_position_is_explained() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "capture",
            "--source",
            "mysql://root@127.0.0.1:1",
            "--start",
            "nonsense",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("must be now, earliest, FILE:OFFSET, gtid:D-S-N or time:RFC3339"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_source_names_the_fix() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "capture",
            "--source",
            "mysql://root@127.0.0.1:1",
            "--limit",
            "1",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("source 127.0.0.1:1: connect failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("check that the server is running"),
        "{stderr}"
    );
}
