use serde_json::json;

use super::*;

fn alpha() -> Value {
    json!({
        "apiVersion": "fgm.dev/v1alpha1",
        "kind": "NodeMonitor",
        "metadata": {"name": "a", "namespace": "ns", "labels": {"x": "y"}, "resourceVersion": "7"},
        "spec": {
            "collector": {"interval": "1s", "rotation": "90s"},
            "retention": {"maxAge": "7d", "maxBytes": "10Gi"},
            "metrics": {"enabled": false, "port": 9810, "scrapeAnnotations": true},
            "enrichment": {"enabled": false},
            "dataHostPath": "/var/lib/fine-grained-monitor/a",
            "somethingNewer": {"kept": true},
        },
        "status": {"observedGeneration": 3, "numberReady": 1},
    })
}

#[test]
fn alpha_to_beta_renames_and_keeps_everything_else() {
    let beta = convert(alpha(), "fgm.dev/v1beta1").unwrap();
    assert_eq!(beta["apiVersion"], "fgm.dev/v1beta1");
    assert_eq!(
        beta["spec"]["retention"],
        json!({"maxAge": "7d", "maxSize": "10Gi"})
    );
    assert_eq!(
        beta["spec"]["metrics"],
        json!({"declarePort": false, "port": 9810, "scrapeAnnotations": true})
    );
    assert_eq!(beta["spec"]["podMetadata"], json!({"enabled": false}));
    assert!(beta["spec"].get("enrichment").is_none());
    assert_eq!(beta["metadata"], alpha()["metadata"]);
    assert_eq!(beta["status"], alpha()["status"]);
    assert_eq!(beta["spec"]["somethingNewer"], json!({"kept": true}));
}

#[test]
fn round_trips_are_lossless_both_ways() {
    let there = convert(alpha(), "fgm.dev/v1beta1").unwrap();
    assert_eq!(convert(there.clone(), "fgm.dev/v1alpha1").unwrap(), alpha());
    assert_eq!(
        convert(
            convert(there.clone(), "fgm.dev/v1alpha1").unwrap(),
            "fgm.dev/v1beta1"
        )
        .unwrap(),
        there
    );
}

#[test]
fn absent_fields_stay_absent() {
    let minimal = json!({"apiVersion": "fgm.dev/v1alpha1", "kind": "NodeMonitor", "metadata": {"name": "m"}, "spec": {}});
    let beta = convert(minimal.clone(), "fgm.dev/v1beta1").unwrap();
    assert_eq!(beta["spec"], json!({}));
    assert_eq!(convert(beta, "fgm.dev/v1alpha1").unwrap(), minimal);
}

#[test]
fn same_version_is_returned_unchanged() {
    assert_eq!(convert(alpha(), "fgm.dev/v1alpha1").unwrap(), alpha());
}

#[test]
fn unknown_versions_and_double_names_are_refused() {
    let err = convert(alpha(), "fgm.dev/v2").unwrap_err();
    assert!(
        err.to_string()
            .contains("fgm.dev/v1alpha1 and fgm.dev/v1beta1"),
        "{err}"
    );
    let mut other = alpha();
    other["apiVersion"] = json!("example.com/v1");
    assert!(matches!(
        convert(other, "fgm.dev/v1beta1"),
        Err(ConversionError::UnknownVersion { .. })
    ));
    let mut both = alpha();
    both["spec"]["retention"]["maxSize"] = json!("1Gi");
    let err = convert(both, "fgm.dev/v1beta1").unwrap_err();
    assert!(err.to_string().contains("spec.retention.maxBytes"), "{err}");
    assert_eq!(
        convert(json!({"kind": "NodeMonitor"}), "fgm.dev/v1beta1"),
        Err(ConversionError::NoApiVersion)
    );
}

#[test]
fn every_renamed_field_exists_in_its_version_schema() {
    let crd = serde_json::to_value(crate::crd::crd()).unwrap();
    let schema = |version: &str| {
        crd["spec"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == version)
            .unwrap()["schema"]["openAPIV3Schema"]
            .clone()
    };
    let has = |schema: &Value, path: &[&str]| {
        let mut at = schema;
        for key in path {
            at = &at["properties"][*key];
        }
        !at.is_null()
    };
    let (alpha_schema, beta_schema) = (schema("v1alpha1"), schema("v1beta1"));
    for (old, new) in RENAMES {
        assert!(has(&alpha_schema, old), "v1alpha1 has {old:?}");
        assert!(!has(&alpha_schema, new), "v1alpha1 lacks {new:?}");
        assert!(has(&beta_schema, new), "v1beta1 has {new:?}");
        assert!(!has(&beta_schema, old), "v1beta1 lacks {old:?}");
    }
}
