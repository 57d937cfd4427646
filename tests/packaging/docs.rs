//! The documentation and the samples against the code: every NodeMonitor field, every flag
//! with its environment twin, every metric column and every chart value on the page that
//! holds its reference (docs/*.md, the chart's README generated from values.yaml); the
//! README's first lines and commands. Links, anchors and named commands: docs_links.rs.

use std::process::Command;

use clap::CommandFactory;
use serde_json::Value;

use fine_grained_monitor::cli::{Cli, ViewerCli};
use fine_grained_monitor::store::schema::METRICS;

use crate::tools::{files_with_ext, read, root, yaml_file};

/// Where each reference lives.
const NODEMONITOR_REFERENCE: &str = "docs/nodemonitor.md";
const FLAGS_REFERENCE: &str = "docs/flags.md";
const DATA_FORMAT: &str = "docs/data-format.md";
const INSTALL: &str = "docs/install.md";
const CHART_README: &str = "charts/fine-grained-monitor-operator/README.md";

/// The CRD's spec schema.
fn spec_schema() -> Value {
    let crd = yaml_file("crds/nodemonitors.fgm.dev.yaml");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].clone()
}

/// Spec field paths up to two levels (`collector`, `collector.interval`), with
/// whether the field is one of ours (it has a schema default) or a Kubernetes type.
fn spec_fields() -> Vec<(String, bool)> {
    let spec = spec_schema();
    let mut out = Vec::new();
    for (name, schema) in spec["properties"].as_object().expect("spec properties") {
        out.push((name.clone(), true));
        let ours = schema.get("default").is_some();
        for child in schema["properties"].as_object().into_iter().flatten() {
            out.push((format!("{name}.{}", child.0), ours));
        }
    }
    assert!(out.len() > 10, "too few spec fields: {out:?}");
    out
}

#[test]
fn nodemonitor_reference_documents_every_field() {
    let page = read(NODEMONITOR_REFERENCE);
    for (path, _) in spec_fields() {
        assert!(
            page.contains(&format!("`spec.{path}`"))
                || page.contains(&format!("`spec.{path}."))
                || page.contains(&format!("`{path}`")),
            "{NODEMONITOR_REFERENCE} does not document NodeMonitor field spec.{path}: add it to its table"
        );
    }
}

#[test]
fn full_sample_shows_every_field_of_ours() {
    let sample = read("config/samples/nodemonitor.yaml");
    let keys: Vec<String> = sample
        .lines()
        .map(|l| l.trim_start().trim_start_matches('#').trim_start())
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_string()))
        .collect();
    for (path, ours) in spec_fields() {
        let leaf = path.rsplit('.').next().expect("leaf");
        if ours {
            assert!(
                keys.iter().any(|k| k == leaf),
                "config/samples/nodemonitor.yaml does not show spec.{path}"
            );
        }
    }
}

#[test]
fn flags_reference_documents_every_flag_with_its_environment_twin() {
    let page = read(FLAGS_REFERENCE);
    let mut seen = 0;
    let mut check = |cmd: &clap::Command, path: &str| {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if ["help", "version"].contains(&id) {
                continue;
            }
            let env = arg
                .get_env()
                .and_then(|e| e.to_str())
                .unwrap_or_default()
                .to_string();
            let shown = match arg.get_long() {
                Some(long) => format!("`--{long}"),
                None => format!("`{}", arg.get_value_names().expect("positional name")[0]),
            };
            assert!(
                page.contains(&shown),
                "{FLAGS_REFERENCE} does not document {shown}` of `{path}`"
            );
            assert!(
                page.contains(&format!("`{env}`")),
                "{FLAGS_REFERENCE} does not name {env} (the environment twin of {shown}` of `{path}`)"
            );
            seen += 1;
        }
    };
    let main = Cli::command();
    check(&main, "fine-grained-monitor");
    for sub in main.get_subcommands() {
        check(sub, &format!("fine-grained-monitor {}", sub.get_name()));
    }
    check(&ViewerCli::command(), "fgm-viewer");
    assert!(seen > 15, "only {seen} flags found");
}

#[test]
fn data_format_lists_every_metric_column() {
    let page = read(DATA_FORMAT);
    for m in METRICS {
        assert!(
            page.contains(&format!("`{}`", m.name)),
            "{DATA_FORMAT} does not list metric column {}",
            m.name
        );
    }
}

#[test]
fn readme_starts_with_the_two_commands_and_shows_the_viewer() {
    let readme = read("README.md");
    let head: Vec<&str> = readme.lines().take(6).collect();
    for first in [
        "Run it on this machine (no cluster needed): `cargo run --release -- local`",
        "Run the tests: `make test`",
    ] {
        assert!(
            head.iter().any(|l| l.starts_with(first)),
            "README.md's first lines must keep `{first}` (CI and tools look for it)"
        );
    }
    assert!(
        readme.contains("](docs/viewer.png)"),
        "the README shows the viewer"
    );
}

#[test]
fn readme_links_every_docs_page() {
    let readme = read("README.md");
    let mut pages: Vec<String> = files_with_ext(&root().join("docs"), "md")
        .iter()
        .map(|p| {
            let name = p.file_name().expect("file name").to_string_lossy();
            format!("docs/{name}")
        })
        .collect();
    assert!(pages.len() >= 10, "too few docs pages: {pages:?}");
    pages.push(CHART_README.to_string());
    for page in pages {
        assert!(
            readme.contains(&format!("]({page})")),
            "README.md does not link {page}: add it to its Documentation table"
        );
    }
}

#[test]
fn docs_pages_start_with_a_title_and_a_link_back() {
    for path in files_with_ext(&root().join("docs"), "md") {
        let text = std::fs::read_to_string(&path).expect("read docs page");
        let name = path.display();
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let title = lines.next().unwrap_or_default();
        assert!(
            title.starts_with("# ") && title.len() > 3,
            "{name} must start with a one-line `# ` title, not {title:?}"
        );
        let next = lines.next().unwrap_or_default();
        assert!(
            next.contains("](../README.md"),
            "{name}: the line after the title must link back to ../README.md, not {next:?}"
        );
    }
}

#[test]
fn quick_start_and_install_commands_use_the_real_names() {
    for (page, needle) in [
        ("README.md", "cargo run --release -- local"),
        ("README.md", "fine-grained-monitor local"),
        (
            "README.md",
            "helm install fine-grained-monitor-operator charts/fine-grained-monitor-operator",
        ),
        ("README.md", "port-forward $POD 8050:8050"),
        ("README.md", "make test"),
        (INSTALL, "kubectl apply -k config/default"),
        (INSTALL, "helm uninstall fine-grained-monitor-operator"),
        (INSTALL, "kubectl delete crd nodemonitors.fgm.dev"),
    ] {
        assert!(read(page).contains(needle), "{page} lacks `{needle}`");
    }
}

#[test]
fn chart_readme_documents_every_chart_value() {
    let page = read(CHART_README);
    let values = yaml_file("charts/fine-grained-monitor-operator/values.yaml");
    let schema: Value = serde_json::from_str(&read(
        "charts/fine-grained-monitor-operator/values.schema.json",
    ))
    .expect("values.schema.json is JSON");
    for (key, value) in values.as_object().expect("values map") {
        assert!(
            page.contains(&format!("`{key}")),
            "{CHART_README} lacks `{key}`: run `make chart-readme`"
        );
        // Structured settings (closed objects in the schema): each child too,
        // written `key.child` or, in a row of siblings, `.child`.
        let closed = schema["properties"][key]["additionalProperties"] == false;
        for child in value.as_object().filter(|_| closed).into_iter().flatten() {
            let name = child.0;
            assert!(
                page.contains(&format!("`{key}.{name}`"))
                    || page.contains(&format!("`{key}.{name}."))
                    || page.contains(&format!("`.{name}`")),
                "{CHART_README} lacks `{key}.{name}`: run `make chart-readme`"
            );
        }
    }
}

/// The chart's README is what tools/chart-readme.py makes of values.yaml today.
#[test]
fn chart_readme_is_generated_from_the_current_values() {
    let out = Command::new("python3")
        .arg(root().join("tools/chart-readme.py"))
        .arg("--check")
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 tools/chart-readme.py --check: {e}"));
    assert!(
        out.status.success(),
        "{CHART_README} is stale or values.yaml cannot be read: run `make chart-readme` \
         (python3 tools/chart-readme.py) and commit the result\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
