use super::*;

fn crd_json() -> serde_json::Value {
    serde_json::to_value(crd()).expect("CRD serializes")
}

/// The schema of `version` in the merged CRD.
fn version_json(crd: &serde_json::Value, version: &str) -> serde_json::Value {
    crd["spec"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["name"] == version)
        .unwrap_or_else(|| panic!("version {version} served"))
        .clone()
}

#[test]
fn names_match_the_design() {
    let crd = crd();
    assert_eq!(crd.metadata.name.as_deref(), Some(CRD_NAME));
    assert_eq!(crd.spec.group, GROUP);
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.kind, "NodeMonitor");
    assert_eq!(crd.spec.names.short_names, Some(vec!["nm".to_string()]));
    let names: Vec<_> = crd
        .spec
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.served, v.storage))
        .collect();
    assert_eq!(names, [("v1beta1", true, true), ("v1alpha1", true, false)]);
    let conversion = crd.spec.conversion.as_ref().expect("conversion");
    assert_eq!(conversion.strategy, "Webhook");
    let webhook = conversion.webhook.as_ref().expect("webhook");
    assert_eq!(webhook.conversion_review_versions, ["v1"]);
    let service = webhook
        .client_config
        .as_ref()
        .and_then(|c| c.service.as_ref())
        .expect("service");
    assert_eq!(service.path.as_deref(), Some(CONVERSION_PATH));
    for version in &crd.spec.versions {
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "status subresource"
        );
        let columns: Vec<_> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(columns, ["Desired", "Ready", "Age"]);
    }
}

#[test]
fn empty_spec_gets_the_documented_defaults() {
    let spec: NodeMonitorSpec = serde_json::from_str("{}").unwrap();
    assert_eq!(spec, NodeMonitorSpec::default());
    assert_eq!(spec.collector.interval, "1s");
    assert_eq!(spec.collector.rotation, "90s");
    assert_eq!(spec.retention.max_age, "7d");
    assert_eq!(spec.data_host_path, "/var/lib/fine-grained-monitor");
    assert!(spec.viewer.enabled && spec.pod_metadata.enabled);
    assert_eq!(spec.viewer.port, 8050);
    assert_eq!(spec.tolerations[0].operator.as_deref(), Some("Exists"));
    let agent = &spec.resources.agent;
    assert_eq!(agent.requests.as_ref().unwrap()["memory"].0, "64Mi");
    assert_eq!(agent.limits.as_ref().unwrap()["cpu"].0, "500m");
    let viewer = &spec.resources.viewer;
    assert_eq!(viewer.requests.as_ref().unwrap()["cpu"].0, "10m");
    assert_eq!(viewer.limits.as_ref().unwrap()["memory"].0, "128Mi");
}

#[test]
fn schema_carries_defaults_so_the_apiserver_fills_them_in() {
    let crd = crd_json();
    let version = version_json(&crd, STORAGE_VERSION);
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let props = &spec["properties"];
    assert_eq!(
        props["collector"]["properties"]["rotation"]["default"],
        "90s"
    );
    assert_eq!(props["retention"]["properties"]["maxAge"]["default"], "7d");
    assert_eq!(
        props["dataHostPath"]["default"],
        "/var/lib/fine-grained-monitor"
    );
    assert_eq!(props["tolerations"]["default"][0]["operator"], "Exists");
    assert_eq!(
        props["resources"]["properties"]["agent"]["default"]["limits"]["memory"],
        "256Mi"
    );
}

#[test]
fn cross_field_rules_are_in_the_schema() {
    let crd = crd_json();
    let version = version_json(&crd, STORAGE_VERSION);
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let rules = spec["x-kubernetes-validations"].as_array().expect("rules");
    let messages: Vec<_> = rules.iter().map(|r| r["message"].as_str()).collect();
    assert!(messages.contains(&Some(
        "collector.rotation must be at least collector.interval"
    )));
    assert!(messages.contains(&Some(
        "retention.maxAge must be longer than collector.rotation"
    )));
}

#[test]
fn cel_millis_converts_days_without_building_strings() {
    let expr = cel_millis("self.x");
    assert!(expr.contains("self.x.endsWith('d')"), "{expr}");
    assert!(expr.contains("* 86400000"), "{expr}");
    assert!(
        !expr.contains("string(int") && !expr.contains("+ '"),
        "{expr}"
    );
}

#[test]
fn committed_crd_file_is_the_generated_one() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/nodemonitors.fgm.dev.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; regenerate it with `make generate`",
            path.display()
        )
    });
    assert!(
        committed == crd_yaml().unwrap(),
        "{} differs from `fine-grained-monitor crd`; regenerate it with `make generate`",
        path.display()
    );
}
