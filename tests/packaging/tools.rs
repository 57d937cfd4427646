//! Shared helpers: repository paths, the Go-built tools, YAML documents.

// Each test module uses a different part of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The chart directory.
pub fn chart_dir() -> PathBuf {
    root().join("charts/fine-grained-monitor-operator")
}

/// Reads a repository file, failing with its path.
pub fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Directory of the Go-built control plane and tools.
pub fn envtest_bin() -> PathBuf {
    std::env::var_os("FGM_ENVTEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/envtest/bin"))
}

/// Path of a Go-built tool; a missing tool fails the test with the command that builds it.
pub fn tool(name: &str) -> PathBuf {
    let path = envtest_bin().join(name);
    assert!(
        path.is_file(),
        "missing {} (the Go-built {name}): run `tools/envtest/build.sh` (or set FGM_ENVTEST_BIN)",
        path.display()
    );
    path
}

/// `helm` with its cache, config and data directories in a private temp dir,
/// so tests never read or write the user's Helm settings.
pub fn helm() -> Command {
    static HOME: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let home = HOME.get_or_init(|| tempfile::tempdir().expect("temp dir for helm"));
    let mut cmd = Command::new(tool("helm"));
    cmd.env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env_remove("KUBECONFIG");
    cmd
}

/// `kubectl` from the envtest build (1.37), never the machine's own.
pub fn kubectl() -> Command {
    Command::new(tool("kubectl"))
}

/// Runs a command and returns its output, failing the test with stderr when it fails.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Runs a command to completion.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// The non-empty documents of a multi-document YAML stream, as JSON values.
pub fn docs(yaml: &str) -> Vec<Value> {
    let all: Vec<Value> =
        serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("bad YAML: {e}\n{yaml}"));
    all.into_iter().filter(|d| !d.is_null()).collect()
}

/// The single YAML document of a repository file.
pub fn yaml_file(rel: &str) -> Value {
    let text = read(rel);
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not YAML: {e}"))
}

/// Objects of a kind in a list of documents.
pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The object of a kind with a name, failing when there is none.
pub fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} named {name}"))
}

/// The one object of a kind, failing when there is none or several.
pub fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(objects, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

/// The crate version from Cargo.toml.
pub fn crate_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Files of a directory with a given extension, sorted.
pub fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}
