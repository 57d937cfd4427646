//! The README and the samples against the code: every NodeMonitor field, every
//! flag with its environment twin, every metric column, every linked file.

use clap::CommandFactory;
use serde_json::Value;

use fine_grained_monitor::cli::{Cli, ViewerCli};
use fine_grained_monitor::store::schema::METRICS;

use crate::tools::{read, root, yaml_file};

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
fn readme_documents_every_node_monitor_field() {
    let readme = read("README.md");
    for (path, _) in spec_fields() {
        assert!(
            readme.contains(&format!("`spec.{path}`"))
                || readme.contains(&format!("`spec.{path}."))
                || readme.contains(&format!("`{path}`")),
            "README.md does not document NodeMonitor field spec.{path}: add it to the NodeMonitor reference"
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
fn readme_documents_every_flag_with_its_environment_twin() {
    let readme = read("README.md");
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
                readme.contains(&shown),
                "README.md does not document {shown}` of `{path}`"
            );
            assert!(
                readme.contains(&format!("`{env}`")),
                "README.md does not name {env} (the environment twin of {shown}` of `{path}`)"
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
fn readme_lists_every_metric_column() {
    let readme = read("README.md");
    for m in METRICS {
        assert!(
            readme.contains(&format!("`{}`", m.name)),
            "README.md data format does not list metric column {}",
            m.name
        );
    }
}

#[test]
fn readme_links_and_pictures_point_at_existing_files() {
    let readme = read("README.md");
    let mut targets = Vec::new();
    for (i, _) in readme.match_indices("](") {
        let rest = &readme[i + 2..];
        let end = rest.find(')').expect("closing parenthesis");
        targets.push(&rest[..end]);
    }
    let local: Vec<&str> = targets
        .into_iter()
        .filter(|t| !t.starts_with("http") && !t.starts_with('#'))
        .collect();
    assert!(
        local.contains(&"docs/viewer.png"),
        "the README shows the viewer"
    );
    for target in local {
        assert!(
            root().join(target).exists(),
            "README.md links to missing {target}"
        );
    }
}

#[test]
fn readme_quick_start_and_install_commands_use_the_real_names() {
    let readme = read("README.md");
    for needle in [
        "fine-grained-monitor local",
        "helm install fine-grained-monitor-operator charts/fine-grained-monitor-operator",
        "kubectl apply -k config/default",
        "port-forward $POD 8050:8050",
        "helm uninstall fine-grained-monitor-operator",
        "kubectl delete crd nodemonitors.fgm.dev",
        "make test",
    ] {
        assert!(readme.contains(needle), "README.md lacks `{needle}`");
    }
}

#[test]
fn readme_documents_every_chart_value() {
    let readme = read("README.md");
    let values = yaml_file("charts/fine-grained-monitor-operator/values.yaml");
    let schema: Value = serde_json::from_str(&read(
        "charts/fine-grained-monitor-operator/values.schema.json",
    ))
    .expect("values.schema.json is JSON");
    for (key, value) in values.as_object().expect("values map") {
        assert!(
            readme.contains(&format!("`{key}")),
            "README.md chart values table lacks `{key}`"
        );
        // Structured settings (closed objects in the schema): each child too,
        // written `key.child` or, in a row of siblings, `.child`.
        let closed = schema["properties"][key]["additionalProperties"] == false;
        for child in value.as_object().filter(|_| closed).into_iter().flatten() {
            let name = child.0;
            assert!(
                readme.contains(&format!("`{key}.{name}`"))
                    || readme.contains(&format!("`{key}.{name}."))
                    || readme.contains(&format!("`.{name}`")),
                "README.md chart values table lacks `{key}.{name}`"
            );
        }
    }
}
