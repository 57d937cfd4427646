//! Checks on files alone: versions, CRD copies, the Dockerfile against the
//! crate, the samples and the README against the CRD, the flags and the schema.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::tools::{crate_version, read, root, yaml_file};

const CRD: &str = "crds/nodemonitors.fgm.dev.yaml";
const CRD_COPIES: &[&str] = &[
    "charts/fine-grained-monitor-operator/crds/nodemonitors.fgm.dev.yaml",
    "config/crd/nodemonitors.fgm.dev.yaml",
];
const IMAGE: &str = "ghcr.io/fine-grained-monitor/fine-grained-monitor";

#[test]
fn chart_and_manifests_follow_the_crate_version() {
    let chart = yaml_file("charts/fine-grained-monitor-operator/Chart.yaml");
    assert_eq!(chart["version"], crate_version(), "Chart.yaml version");
    assert_eq!(
        chart["appVersion"],
        crate_version(),
        "Chart.yaml appVersion"
    );
    let kustomization = yaml_file("config/default/kustomization.yaml");
    assert_eq!(kustomization["images"][0]["name"], IMAGE);
    assert_eq!(
        kustomization["images"][0]["newTag"],
        crate_version(),
        "config/default/kustomization.yaml images[0].newTag"
    );
    let manager = read("config/manager/manager.yaml");
    let image = format!("{IMAGE}:{}", crate_version());
    assert!(
        manager.contains(&format!("image: {image}\n")),
        "config/manager/manager.yaml image"
    );
    assert!(
        manager.contains(&format!("--default-image={image}\n")),
        "config/manager/manager.yaml --default-image"
    );
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("ARG VERSION={}", crate_version())),
        "Dockerfile `ARG VERSION=` must be the crate version {}",
        crate_version()
    );
}

#[test]
fn crd_copies_equal_the_generated_crd() {
    let generated = read(CRD);
    for copy in CRD_COPIES {
        assert!(
            read(copy) == generated,
            "{copy} differs from {CRD}: run `make sync-crds`"
        );
    }
}

/// `cargo metadata` of this crate: targets and rust-version.
fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    all["packages"][0].clone()
}

fn bin_names(meta: &Value) -> BTreeSet<String> {
    meta["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn dockerfile_installs_exactly_the_crates_binaries() {
    let meta = metadata();
    let bins = bin_names(&meta);
    assert_eq!(
        bins,
        BTreeSet::from([
            "fine-grained-monitor".to_string(),
            "fgm-viewer".to_string(),
            "kubectl-fgm".to_string()
        ])
    );
    // The binaries a test build produced are the ones the Dockerfile names.
    for built in [
        env!("CARGO_BIN_EXE_fine-grained-monitor"),
        env!("CARGO_BIN_EXE_fgm-viewer"),
        env!("CARGO_BIN_EXE_kubectl-fgm"),
    ] {
        assert!(Path::new(built).is_file(), "{built} was not built");
    }
    let dockerfile = read("Dockerfile");
    let installed: BTreeSet<String> = dockerfile
        .lines()
        .filter(|l| l.trim_start().starts_with("COPY --from=build"))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let (src, dst) = (words[2], words[3]);
            let name = dst
                .strip_prefix("/usr/local/bin/")
                .unwrap_or_else(|| panic!("Dockerfile installs {dst} outside /usr/local/bin"));
            assert_eq!(
                Path::new(src).file_name().and_then(|n| n.to_str()),
                Some(name),
                "{l}"
            );
            name.to_string()
        })
        .collect();
    assert_eq!(
        installed, bins,
        "binaries the Dockerfile installs vs Cargo.toml [[bin]]"
    );
    for bin in &bins {
        assert!(
            dockerfile.contains(&format!("target/release/{bin}")),
            "Dockerfile does not take {bin} from the release build (target/release/{bin})"
        );
    }
    assert!(
        dockerfile.contains("cargo build --release --locked"),
        "release build, locked"
    );
    assert!(
        dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/fine-grained-monitor\"]"),
        "entrypoint is the main binary"
    );
}

#[test]
fn dockerfile_runtime_is_minimal_and_non_root() {
    let dockerfile = read("Dockerfile");
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(froms.len(), 2, "multi-stage: build and runtime: {froms:?}");
    assert!(froms[0].ends_with(" AS build"), "{}", froms[0]);
    assert!(
        froms[1].contains("gcr.io/distroless/cc-debian12:nonroot"),
        "runtime base: {}",
        froms[1]
    );
    // The build stage's Debian must match the runtime's glibc (debian12 = bookworm).
    assert!(froms[0].contains("bookworm"), "{}", froms[0]);
    let user = dockerfile
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert_eq!(user, "USER 65532:65532");
    // The toolchain in the image is at least the crate's rust-version.
    let meta = metadata();
    let need = version_parts(meta["rust_version"].as_str().expect("rust-version"));
    let have = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUST_VERSION="))
        .map(version_parts)
        .expect("ARG RUST_VERSION= in the Dockerfile");
    assert!(
        have >= need,
        "Dockerfile Rust {have:?} is older than rust-version {need:?}"
    );
}

fn version_parts(v: &str) -> Vec<u32> {
    v.trim()
        .split('.')
        .map(|p| p.parse().unwrap_or_else(|_| panic!("bad version {v}")))
        .collect()
}

/// Whether a .dockerignore entry (the forms ours uses) excludes a relative path.
fn ignored(pattern: &str, rel: &str) -> bool {
    if let Some(suffix) = pattern.strip_prefix("**/*") {
        return rel.ends_with(suffix);
    }
    if let Some(dir) = pattern.strip_prefix("**/") {
        let dir = dir.trim_end_matches('/');
        return rel.split('/').any(|c| c == dir);
    }
    let p = pattern.trim_end_matches('/');
    rel == p || rel.starts_with(&format!("{p}/"))
}

#[test]
fn dockerignore_matching_reads_our_patterns() {
    assert!(ignored("target/", "target/release/x"));
    assert!(!ignored("target/", "targets.rs"));
    assert!(ignored("**/*.parquet", "a/b/c.parquet"));
    assert!(ignored("**/node_modules/", "x/node_modules/y"));
    assert!(!ignored("docs/", "src/docs.rs"));
}

/// Every file the Rust build reads: manifests, each target's root, and every
/// `include_str!`/`include_bytes!` of the sources.
fn build_inputs(meta: &Value) -> Vec<String> {
    let root = root();
    let rel = |p: &Path| {
        p.strip_prefix(&root)
            .unwrap_or_else(|_| panic!("{} is outside the repository", p.display()))
            .to_string_lossy()
            .replace('\\', "/")
    };
    let mut inputs = vec!["Cargo.toml".to_string(), "Cargo.lock".to_string()];
    for t in meta["targets"].as_array().expect("targets") {
        inputs.push(rel(Path::new(t["src_path"].as_str().expect("src_path"))));
    }
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                for included in included_paths(&text) {
                    let full = normalize(&path.parent().expect("parent").join(included));
                    inputs.push(rel(&full));
                }
            }
        }
    }
    inputs
}

/// Literal paths of `include_str!("...")` and `include_bytes!("...")`.
fn included_paths(source: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for mac in ["include_str!(\"", "include_bytes!(\""] {
        for (i, _) in source.match_indices(mac) {
            let rest = &source[i + mac.len()..];
            if let Some(end) = rest.find('"') {
                out.push(&rest[..end]);
            }
        }
    }
    out
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn dockerignore_keeps_everything_the_build_reads() {
    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    assert!(patterns.iter().any(|p| p == "target/"), "target/ stays out");
    let inputs = build_inputs(&metadata());
    assert!(inputs.iter().any(|i| i == "src/main.rs"), "{inputs:?}");
    for input in &inputs {
        assert!(
            root().join(input).is_file(),
            "build input {input} does not exist"
        );
        for p in &patterns {
            assert!(
                !ignored(p, input),
                ".dockerignore entry {p:?} keeps build input {input} out of the image build"
            );
        }
    }
}
