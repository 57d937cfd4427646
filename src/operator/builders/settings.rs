//! The agent's settings file (`agent.yaml` in the ConfigMap) from a spec, and
//! the hash that rolls the pods when it changes.
//!
//! The file uses the agent's flag names (see `--config`), so the spec reaches
//! the agent without a second format. Values are checked here with the
//! agent's own parsers: the CRD's rules normally refuse bad values first, but a
//! spec stored before a rule existed must still give a clear condition, not a
//! crash-looping agent.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::owned_meta;
use crate::crd::{NodeMonitor, NodeMonitorSpec};
use crate::units::{ByteSize, HumanDuration, UnitError};

/// Key of the settings file in the ConfigMap.
pub const SETTINGS_KEY: &str = "agent.yaml";
/// Directory where the ConfigMap is mounted in the agent container.
pub const SETTINGS_DIR: &str = "/etc/fine-grained-monitor";

/// A spec the apiserver accepted but the agent could not run with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("spec.{field}: {source}")]
    Unit {
        field: &'static str,
        source: UnitError,
    },
    #[error(
        "spec.collector.rotation ({rotation}) must be at least spec.collector.interval ({interval})"
    )]
    RotationShorterThanInterval {
        rotation: HumanDuration,
        interval: HumanDuration,
    },
    #[error(
        "spec.retention.maxAge ({max_age}) must be longer than spec.collector.rotation ({rotation})"
    )]
    RetentionNotLongerThanRotation {
        max_age: HumanDuration,
        rotation: HumanDuration,
    },
    #[error(
        "spec.namespaceSelector: operator {operator:?} of key {key:?} is not In, NotIn, Exists or DoesNotExist (or its values do not fit it)"
    )]
    Selector { key: String, operator: String },
    #[error("{0}")]
    Export(String),
    #[error("spec.viewer.bindAddress {0:?} is not an IP address")]
    BindAddress(String),
}

impl SpecError {
    /// The condition reason of this error.
    pub fn reason(&self) -> &'static str {
        "InvalidSpec"
    }
}

/// The agent's settings from a spec, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSettings {
    pub interval: HumanDuration,
    pub rotation: HumanDuration,
    pub retention_max_age: HumanDuration,
    pub retention_max_bytes: Option<ByteSize>,
    pub enrichment: bool,
    /// Label selector of namespaces, in `kubectl -l` syntax.
    pub namespace_selector: Option<String>,
    /// Port of the agent's Prometheus endpoint; `None` for the agent's default.
    pub metrics_port: Option<i32>,
    /// Object storage export (`spec.export`).
    pub export: Option<super::export::ExportSettings>,
    /// `spec.processes`: `None` when off (nothing written, the agent's default).
    pub processes: Option<crate::crd::ProcessesSpec>,
}

fn duration(field: &'static str, text: &str) -> Result<HumanDuration, SpecError> {
    text.parse()
        .map_err(|source| SpecError::Unit { field, source })
}

/// Checks a spec's collection and retention settings and converts them to the agent's units.
pub fn agent_settings(spec: &NodeMonitorSpec) -> Result<AgentSettings, SpecError> {
    let interval = duration("collector.interval", &spec.collector.interval)?;
    let rotation = duration("collector.rotation", &spec.collector.rotation)?;
    let retention_max_age = duration("retention.maxAge", &spec.retention.max_age)?;
    if rotation < interval {
        return Err(SpecError::RotationShorterThanInterval { rotation, interval });
    }
    if retention_max_age <= rotation {
        return Err(SpecError::RetentionNotLongerThanRotation {
            max_age: retention_max_age,
            rotation,
        });
    }
    let retention_max_bytes = spec
        .retention
        .max_size
        .as_deref()
        .map(|text| {
            text.parse().map_err(|source| SpecError::Unit {
                field: "retention.maxSize",
                source,
            })
        })
        .transpose()?;
    if spec
        .viewer
        .bind_address
        .parse::<std::net::IpAddr>()
        .is_err()
    {
        return Err(SpecError::BindAddress(spec.viewer.bind_address.clone()));
    }
    let namespace_selector = spec
        .namespace_selector
        .as_ref()
        .map(selector_string)
        .transpose()?
        .filter(|s| !s.is_empty());
    Ok(AgentSettings {
        interval,
        rotation,
        retention_max_age,
        retention_max_bytes,
        enrichment: spec.pod_metadata.enabled,
        namespace_selector,
        // Only a changed port is written, so the default settings file (and hash) stay as they were.
        metrics_port: (spec.metrics.port != crate::crd::DEFAULT_METRICS_PORT)
            .then_some(spec.metrics.port),
        export: spec
            .export
            .as_ref()
            .map(super::export::export_settings)
            .transpose()?,
        processes: spec.processes.enabled.then(|| spec.processes.clone()),
    })
}

/// A label selector in `kubectl -l` syntax: `a=b,c in (d,e),!f`.
pub fn selector_string(selector: &LabelSelector) -> Result<String, SpecError> {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for req in selector.match_expressions.iter().flatten() {
        let values = req.values.clone().unwrap_or_default();
        let bad = || SpecError::Selector {
            key: req.key.clone(),
            operator: req.operator.clone(),
        };
        let part = match req.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => return Err(bad()),
            "In" => format!("{} in ({})", req.key, values.join(",")),
            "NotIn" => format!("{} notin ({})", req.key, values.join(",")),
            "Exists" if values.is_empty() => req.key.clone(),
            "DoesNotExist" if values.is_empty() => format!("!{}", req.key),
            _ => return Err(bad()),
        };
        parts.push(part);
    }
    Ok(parts.join(","))
}

/// The settings file: agent flag names to values, keys sorted so equal settings
/// give byte-equal files (and the same hash).
pub fn settings_yaml(settings: &AgentSettings) -> String {
    let mut map: BTreeMap<&str, String> = BTreeMap::new();
    map.insert("interval", settings.interval.to_string());
    map.insert("rotation", settings.rotation.to_string());
    map.insert("retention-max-age", settings.retention_max_age.to_string());
    if let Some(bytes) = settings.retention_max_bytes {
        map.insert("retention-max-bytes", bytes.0.to_string());
    }
    map.insert("enrichment", settings.enrichment.to_string());
    if let Some(selector) = &settings.namespace_selector {
        map.insert("namespace-selector", selector.clone());
    }
    if let Some(port) = settings.metrics_port {
        map.insert("metrics-addr", format!("0.0.0.0:{port}"));
    }
    if let Some(export) = &settings.export {
        map.extend(export.bucket_flags.clone());
    }
    if let Some(processes) = &settings.processes {
        map.insert("processes", "true".into());
        map.insert("process-top-k", processes.top_k.to_string());
        map.insert("process-memory-every", processes.memory_every.to_string());
    }
    let mut out =
        String::from("# Written by the fine-grained-monitor operator from the NodeMonitor spec.\n");
    for (key, value) in map {
        // JSON strings are valid YAML scalars, so quoting is always right.
        let quoted = serde_json::Value::String(value).to_string();
        out.push_str(&format!("{key}: {quoted}\n"));
    }
    out
}

/// FNV-1a (64 bit) of the settings file, as hex: stable across Rust versions,
/// unlike `DefaultHasher`, so restarting the operator does not roll pods.
pub fn settings_hash(yaml: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in yaml.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The ConfigMap holding the settings file (and the compaction job's, with `spec.export`).
pub fn config_map(nm: &NodeMonitor, yaml: &str) -> ConfigMap {
    let mut data = BTreeMap::from([(SETTINGS_KEY.to_string(), yaml.to_string())]);
    if let Some(export) = nm
        .spec
        .export
        .as_ref()
        .and_then(|e| super::export::export_settings(e).ok())
    {
        data.insert(
            super::export::COMPACT_SETTINGS_KEY.to_string(),
            super::export::compact_yaml(&export),
        );
    }
    ConfigMap {
        metadata: owned_meta(nm),
        data: Some(data),
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::builders::test_monitor;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn defaults_give_the_agent_defaults() {
        let s = agent_settings(&NodeMonitorSpec::default()).unwrap();
        let yaml = settings_yaml(&s);
        assert_eq!(
            yaml,
            "# Written by the fine-grained-monitor operator from the NodeMonitor spec.\n\
             enrichment: \"true\"\ninterval: \"1s\"\nretention-max-age: \"7d\"\nrotation: \"1m30s\"\n"
        );
    }

    #[test]
    fn settings_file_is_read_back_by_the_agent_cli() {
        let mut spec = NodeMonitorSpec::default();
        spec.collector.interval = "2s".into();
        spec.retention.max_size = Some("10Gi".into());
        let yaml = settings_yaml(&agent_settings(&spec).unwrap());
        let mut file = tempfile::NamedTempFile::new().unwrap();
        // `enrichment` and `namespace-selector` are the enricher's flags (issue #6);
        // the collection and retention keys must already parse.
        let known = yaml.replace("enrichment: \"true\"\n", "");
        std::io::Write::write_all(&mut file, known.as_bytes()).unwrap();
        let argv = ["fgm", "--config", file.path().to_str().unwrap(), "agent"];
        let cli: crate::cli::Cli =
            crate::cli::parse_with_config(argv.iter().map(std::ffi::OsString::from).collect())
                .unwrap();
        let crate::cli::Mode::Agent(agent) = cli.mode else {
            panic!("agent mode")
        };
        assert_eq!(agent.interval.to_string(), "2s");
        assert_eq!(agent.rotation.to_string(), "1m30s");
        assert_eq!(agent.retention_max_bytes, Some(ByteSize(10 << 30)));
    }

    #[test]
    fn metrics_port_reaches_the_agent_flag() {
        let default = agent_settings(&NodeMonitorSpec::default()).unwrap();
        assert!(!settings_yaml(&default).contains("metrics-addr"));
        let mut spec = NodeMonitorSpec::default();
        spec.metrics.port = 9900;
        let yaml = settings_yaml(&agent_settings(&spec).unwrap());
        assert!(yaml.contains("metrics-addr: \"0.0.0.0:9900\"\n"), "{yaml}");
        let known = yaml.replace("enrichment: \"true\"\n", "");
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, known.as_bytes()).unwrap();
        let argv = ["fgm", "--config", file.path().to_str().unwrap(), "agent"];
        let cli: crate::cli::Cli =
            crate::cli::parse_with_config(argv.iter().map(std::ffi::OsString::from).collect())
                .unwrap();
        let crate::cli::Mode::Agent(agent) = cli.mode else {
            panic!("agent mode")
        };
        assert_eq!(agent.metrics_addr.to_string(), "0.0.0.0:9900");
    }

    #[test]
    fn processes_reach_the_agent_flags_only_when_enabled() {
        let default = settings_yaml(&agent_settings(&NodeMonitorSpec::default()).unwrap());
        assert!(!default.contains("process"), "{default}");
        let mut spec = NodeMonitorSpec::default();
        spec.processes.enabled = true;
        spec.processes.top_k = 3;
        spec.processes.memory_every = 5;
        let yaml = settings_yaml(&agent_settings(&spec).unwrap());
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, yaml.as_bytes()).unwrap();
        let argv = ["fgm", "--config", file.path().to_str().unwrap(), "agent"];
        let cli: crate::cli::Cli =
            crate::cli::parse_with_config(argv.iter().map(std::ffi::OsString::from).collect())
                .unwrap();
        let crate::cli::Mode::Agent(agent) = cli.mode else {
            panic!("agent mode")
        };
        assert_eq!(agent.processes, Some(true));
        assert_eq!(agent.process_top_k, 3);
        assert_eq!(agent.process_memory_every, 5);
    }

    #[test]
    fn cross_field_errors_name_the_fields() {
        let mut spec = NodeMonitorSpec::default();
        spec.collector.rotation = "500ms".into();
        let e = agent_settings(&spec).unwrap_err();
        assert!(
            matches!(e, SpecError::RotationShorterThanInterval { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("spec.collector.rotation"), "{e}");

        let mut spec = NodeMonitorSpec::default();
        spec.retention.max_age = "90s".into();
        let e = agent_settings(&spec).unwrap_err();
        assert!(e.to_string().contains("spec.retention.maxAge"), "{e}");

        let mut spec = NodeMonitorSpec::default();
        spec.collector.interval = "fast".into();
        let e = agent_settings(&spec).unwrap_err();
        assert!(
            e.to_string().contains("spec.collector.interval") && e.to_string().contains("fast"),
            "{e}"
        );

        let mut spec = NodeMonitorSpec::default();
        spec.retention.max_size = Some("lots".into());
        assert!(
            agent_settings(&spec)
                .unwrap_err()
                .to_string()
                .contains("maxSize")
        );
    }

    #[test]
    fn selectors_in_kubectl_syntax() {
        let req = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        };
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("team".into(), "a".into())])),
            match_expressions: Some(vec![
                req("env", "In", &["prod", "staging"]),
                req("tier", "NotIn", &["batch"]),
                req("monitored", "Exists", &[]),
                req("skip", "DoesNotExist", &[]),
            ]),
        };
        assert_eq!(
            selector_string(&sel).unwrap(),
            "team=a,env in (prod,staging),tier notin (batch),monitored,!skip"
        );
        let bad = LabelSelector {
            match_expressions: Some(vec![req("env", "Like", &["x"])]),
            ..LabelSelector::default()
        };
        assert!(
            selector_string(&bad)
                .unwrap_err()
                .to_string()
                .contains("Like")
        );
        let empty_in = LabelSelector {
            match_expressions: Some(vec![req("env", "In", &[])]),
            ..LabelSelector::default()
        };
        assert!(selector_string(&empty_in).is_err());
    }

    #[test]
    fn hash_changes_with_settings_only() {
        let a = settings_yaml(&agent_settings(&NodeMonitorSpec::default()).unwrap());
        let mut spec = NodeMonitorSpec::default();
        spec.collector.interval = "2s".into();
        let b = settings_yaml(&agent_settings(&spec).unwrap());
        assert_eq!(settings_hash(&a), settings_hash(&a.clone()));
        assert_ne!(settings_hash(&a), settings_hash(&b));
        assert_eq!(settings_hash(&a).len(), 16);
    }

    #[test]
    fn config_map_is_owned_and_holds_the_file() {
        let nm = test_monitor("nm1", NodeMonitorSpec::default());
        let cm = config_map(&nm, "interval: \"1s\"\n");
        assert_eq!(cm.metadata.name.as_deref(), Some("nm1"));
        assert_eq!(cm.metadata.namespace.as_deref(), Some("monitoring"));
        let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("NodeMonitor", "uid-nm1")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(cm.data.unwrap()[SETTINGS_KEY], "interval: \"1s\"\n");
    }
}
