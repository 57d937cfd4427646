//! The product image assembled without a container engine (`make images`: tools/image/build.sh)
//! against the Dockerfile users build: same entrypoint, command, user, exposed ports, labels and
//! binaries, plus the shared libraries the binaries load and nothing else (no shell).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::tools::{read, root};

/// The archive `make images` writes.
fn archive() -> PathBuf {
    let dir = std::env::var_os("FGM_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/images"));
    let path = dir.join("fine-grained-monitor.tar");
    assert!(
        path.is_file(),
        "{} not found: build the images with `make images` (tools/image/build.sh)",
        path.display()
    );
    path
}

/// One member of a tar file, through the `tar` command.
fn member(tar: &Path, name: &str) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(tar)
        .arg(name)
        .output()
        .expect("run tar");
    assert!(
        out.status.success(),
        "tar -xOf {} {name}: {}",
        tar.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn blob(tar: &Path, digest: &str) -> Vec<u8> {
    member(
        tar,
        &format!("blobs/sha256/{}", digest.trim_start_matches("sha256:")),
    )
}

/// `tar -tvf` of the layer: (path, type and mode column).
fn layer_listing(tar: &Path, layer_digest: &str) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let layer = dir.path().join("layer.tar");
    std::fs::write(&layer, blob(tar, layer_digest)).expect("write layer");
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(&layer)
        .output()
        .expect("tar -tvf");
    assert!(out.status.success(), "list the layer");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let name = cols[5].trim_end_matches('/').to_string();
            (format!("/{name}"), cols[0].to_string())
        })
        .collect()
}

/// The Dockerfile's final stage: (instruction, argument text) in order, continuation lines joined.
fn runtime_stage() -> Vec<(String, String)> {
    let dockerfile = read("Dockerfile");
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(part) = line.strip_suffix('\\') {
            current.push_str(part.trim());
            current.push(' ');
        } else {
            current.push_str(line);
            joined.push(std::mem::take(&mut current));
        }
    }
    let last_from = joined
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("a FROM line");
    joined[last_from..]
        .iter()
        .map(|l| {
            let (ins, rest) = l.split_once(' ').unwrap_or((l, ""));
            (ins.to_string(), rest.trim().to_string())
        })
        .collect()
}

/// `KEY="value" KEY2="value"` pairs of a LABEL instruction, with `${VERSION}` resolved.
fn labels(text: &str, version: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').expect("closing quote");
            (&quoted[..end], &quoted[end + 1..])
        } else {
            after.split_once(' ').unwrap_or((after, ""))
        };
        out.insert(key.trim().to_string(), value.replace("${VERSION}", version));
        rest = tail.trim();
    }
    out
}

#[test]
fn assembled_image_matches_the_dockerfile() {
    let tar = archive();
    let index: Value = serde_json::from_slice(&member(&tar, "index.json")).expect("index.json");
    let descriptor = &index["manifests"][0];
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        descriptor["annotations"]["io.containerd.image.name"],
        format!("ghcr.io/fine-grained-monitor/fine-grained-monitor:{version}"),
        "the image is named as the chart and the operator use it"
    );
    let manifest: Value =
        serde_json::from_slice(&blob(&tar, descriptor["digest"].as_str().expect("digest")))
            .expect("manifest");
    let config: Value = serde_json::from_slice(&blob(
        &tar,
        manifest["config"]["digest"]
            .as_str()
            .expect("config digest"),
    ))
    .expect("config");
    let config = &config["config"];

    let stage = runtime_stage();
    let arg = |ins: &str| -> Vec<&String> {
        stage
            .iter()
            .filter(|(i, _)| i == ins)
            .map(|(_, a)| a)
            .collect()
    };
    let json_list =
        |text: &str| -> Value { serde_json::from_str(text).expect("exec-form JSON list") };
    assert_eq!(
        config["Entrypoint"],
        json_list(arg("ENTRYPOINT")[0]),
        "ENTRYPOINT"
    );
    assert_eq!(config["Cmd"], json_list(arg("CMD")[0]), "CMD");
    assert_eq!(config["User"], arg("USER")[0].as_str(), "USER");
    let exposed: BTreeSet<String> = arg("EXPOSE")
        .iter()
        .flat_map(|a| a.split_whitespace())
        .map(|p| {
            if p.contains('/') {
                p.to_string()
            } else {
                format!("{p}/tcp")
            }
        })
        .collect();
    let have: BTreeSet<String> = config["ExposedPorts"]
        .as_object()
        .expect("ExposedPorts")
        .keys()
        .cloned()
        .collect();
    assert_eq!(have, exposed, "EXPOSE");
    let want_labels: BTreeMap<String, String> = arg("LABEL")
        .iter()
        .flat_map(|l| labels(l, version))
        .collect();
    let have_labels: BTreeMap<String, String> =
        serde_json::from_value(config["Labels"].clone()).expect("Labels");
    assert_eq!(have_labels, want_labels, "LABEL");

    // Files: the binaries the Dockerfile copies (executable), the libraries they load, the
    // nonroot user's entries; no shell or anything else.
    let listing = layer_listing(
        &tar,
        manifest["layers"][0]["digest"]
            .as_str()
            .expect("layer digest"),
    );
    let copied: Vec<String> = arg("COPY")
        .iter()
        .map(|c| {
            c.split_whitespace()
                .last()
                .expect("COPY destination")
                .to_string()
        })
        .collect();
    assert!(!copied.is_empty(), "the Dockerfile copies the binaries");
    for dest in &copied {
        let (_, mode) = listing
            .iter()
            .find(|(p, _)| p == dest)
            .unwrap_or_else(|| panic!("{dest} (Dockerfile COPY) missing from the image"));
        assert!(
            mode.starts_with("-rwx"),
            "{dest} is not an executable file: {mode}"
        );
    }
    for (path, mode) in &listing {
        let kind = mode.chars().next().unwrap_or('?');
        let allowed = kind == 'd'
            || copied.contains(path)
            || path.contains(".so")
            || path == "/etc/passwd"
            || path == "/etc/group";
        assert!(allowed, "unexpected file in the image: {path} ({mode})");
        let name = path.rsplit('/').next().unwrap_or_default();
        assert!(
            !["sh", "bash", "dash", "busybox"].contains(&name),
            "the image must hold no shell: {path}"
        );
    }
    assert!(
        listing.iter().any(|(p, _)| p.contains("libc.so")),
        "glibc is in the image: {listing:?}"
    );
}

/// The agent's binary carries `cap_sys_ptrace+p` (permitted, not effective) as the PAX record
/// containerd turns into `security.capability`: what lets the agent, running as 65532, read
/// other users' `smaps_rollup` when processes are on (docs/security.md).
#[test]
fn agent_binary_carries_the_ptrace_file_capability() {
    let tar = archive();
    let index: serde_json::Value =
        serde_json::from_slice(&member(&tar, "index.json")).expect("index.json");
    let manifest_digest = index["manifests"][0]["digest"].as_str().expect("manifest");
    let manifest: serde_json::Value =
        serde_json::from_slice(&blob(&tar, manifest_digest)).expect("manifest");
    let layer = blob(
        &tar,
        manifest["layers"][0]["digest"]
            .as_str()
            .expect("layer digest"),
    );
    let key = b"SCHILY.xattr.security.capability=";
    let found: Vec<usize> = layer
        .windows(key.len())
        .enumerate()
        .filter(|(_, w)| *w == key)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(found.len(), 1, "one file carries a capability");
    let value = &layer[found[0] + key.len()..found[0] + key.len() + 20];
    // VFS_CAP_REVISION_2 without the effective bit; permitted bit 19 (CAP_SYS_PTRACE).
    let mut want = vec![0, 0, 0, 2, 0, 0, 8, 0];
    want.extend([0; 12]);
    assert_eq!(value, &want[..], "security.capability value");
    let after = &layer[found[0]..];
    let name = b"usr/local/bin/";
    let next = after
        .windows(name.len())
        .position(|w| w == name)
        .expect("a file header after the capability record");
    assert!(
        after[next..].starts_with(b"usr/local/bin/fine-grained-monitor"),
        "the capability belongs to fine-grained-monitor, not {:?}",
        String::from_utf8_lossy(&after[next..next + 40])
    );
}
