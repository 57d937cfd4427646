//! An outage of the object store loses nothing: the real S3 server
//! (SeaweedFS) is stopped while the agent keeps rotating files, the agent
//! reports the failure and a growing backlog, and once the server is back
//! every local file is in the bucket exactly once. Own binary: it stops the
//! server other tests would share.

// Test crate: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod s3_support;
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use fine_grained_monitor::export::keys;
use fine_grained_monitor::store::layout;

use s3_support::{S3Server, start_agent, static_env};

#[test]
fn a_stopped_server_loses_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = S3Server::start("outage", None);
    let client = rt.block_on(server.bucket("outage"));
    let data = tempfile::tempdir().unwrap();
    let agent = start_agent(&server, data.path(), "node-o", "outage", &static_env(), &[]);
    agent.wait_status("first uploads", Duration::from_secs(60), |s| {
        s["uploadedFiles"].as_u64() >= Some(2)
    });

    server.stop();
    let failing = agent.wait_status("failing, backlog growing", Duration::from_secs(60), |s| {
        s["failing"] == true && s["backlogFiles"].as_u64() >= Some(3)
    });
    assert_eq!(failing["reason"], "Unreachable", "{failing}");
    assert!(failing["backlogBytes"].as_u64() > Some(0));

    server.restart();
    let drained = agent.wait_status("backlog drained", Duration::from_secs(60), |s| {
        s["failing"] == false && s["backlogFiles"] == 0
    });
    assert!(drained["lastUpload"].is_string(), "{drained}");
    agent.stop();

    // Metrics files, and the datasets beside them (devices of the fixture) under their prefixes.
    let local = layout::list_data_files(data.path(), None).unwrap();
    let expected: BTreeSet<String> = local
        .files
        .into_iter()
        .map(|f| keys::data_key("fgm/test", "node-o", f.start))
        .chain(
            local
                .datasets
                .into_iter()
                .map(|(d, f)| keys::dataset_key("fgm/test", d, "node-o", f.start)),
        )
        .collect();
    let listed: BTreeSet<String> = rt
        .block_on(client.list("fgm/test/", None))
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key)
        .filter(|k| k.ends_with(".parquet"))
        .collect();
    assert_eq!(
        listed, expected,
        "every file written during the outage arrived"
    );
    // No file was sent twice: the upload record has one line per data file
    // (a second upload of a file would append a second line).
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(data.path().join("export")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["key"].as_str().unwrap().ends_with(".parquet") {
                lines.push(v["key"].as_str().unwrap().to_string());
            }
        }
    }
    let unique: BTreeSet<String> = lines.iter().cloned().collect();
    assert_eq!(lines.len(), unique.len(), "{lines:?}");
    assert_eq!(unique, listed);
}
