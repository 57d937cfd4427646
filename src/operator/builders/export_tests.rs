use super::*;
use crate::crd::{CompactionSpec, ExportCredentials, NodeMonitorSpec, WebIdentitySpec};
use crate::operator::builders::settings::{
    SETTINGS_KEY, agent_settings, config_map, settings_yaml,
};
use crate::operator::builders::{daemonset, selector_labels, test_monitor};

fn export(credentials: ExportCredentials) -> ExportSpec {
    ExportSpec {
        endpoint: Some("http://seaweedfs.storage:8333".into()),
        bucket: "fgm-history".into(),
        prefix: "prod/eu".into(),
        region: "us-east-1".into(),
        path_style: true,
        credentials,
        compaction: CompactionSpec::default(),
    }
}

fn secret() -> ExportCredentials {
    ExportCredentials {
        secret_name: Some("s3-keys".into()),
        web_identity: None,
    }
}

fn web() -> ExportCredentials {
    ExportCredentials {
        secret_name: None,
        web_identity: Some(WebIdentitySpec {
            role_arn: "arn:aws:iam::123456789012:role/fgm".into(),
            audience: "sts.amazonaws.com".into(),
            sts_endpoint: Some("https://sts.example".into()),
        }),
    }
}

fn monitor(credentials: ExportCredentials) -> NodeMonitor {
    test_monitor(
        "nm1",
        NodeMonitorSpec {
            export: Some(export(credentials)),
            ..NodeMonitorSpec::default()
        },
    )
}

/// What the default policy grants `nm` (default image, default data root).
fn resolved(nm: &NodeMonitor) -> crate::operator::policy::Resolved {
    crate::operator::policy::Policy::new(
        vec![crate::crd::DEFAULT_DATA_HOST_PATH.parse().unwrap()],
        Vec::new(),
        daemonset::DEFAULT_IMAGE.into(),
    )
    .unwrap()
    .resolve(&nm.spec)
    .unwrap()
}

fn parse<T: clap::Parser>(yaml: &str, mode: &str) -> T {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, yaml.as_bytes()).unwrap();
    let argv = ["fgm", "--config", file.path().to_str().unwrap(), mode];
    crate::cli::parse_with_config(argv.iter().map(std::ffi::OsString::from).collect())
        .unwrap_or_else(|e| panic!("{yaml}\n{e}"))
}

#[test]
fn secret_keys_reach_the_agent_through_its_environment_only() {
    let nm = monitor(secret());
    let ds = daemonset::daemon_set(&nm, "h", &resolved(&nm));
    let pod = ds.spec.template.spec.unwrap();
    let env = pod.containers[0].env.clone().unwrap();
    let refs: Vec<(String, String, Option<bool>)> = env
        .iter()
        .filter_map(|e| {
            let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
            Some((e.name.clone(), r.name.clone(), r.optional))
        })
        .collect();
    assert_eq!(
        refs,
        [
            ("AWS_ACCESS_KEY_ID".into(), "s3-keys".into(), None),
            ("AWS_SECRET_ACCESS_KEY".into(), "s3-keys".into(), None),
            ("AWS_SESSION_TOKEN".into(), "s3-keys".into(), Some(true)),
        ]
    );
    assert!(
        env.iter()
            .all(|e| e.value.as_deref().is_none_or(|v| !v.contains("s3-keys")))
    );
    // No web identity token: the only projected volume is the API token.
    let audiences: Vec<Option<String>> = pod
        .volumes
        .unwrap()
        .iter()
        .filter_map(|v| v.projected.as_ref()?.sources.clone())
        .flatten()
        .filter_map(|s| s.service_account_token)
        .map(|t| t.audience)
        .collect();
    assert_eq!(audiences, [None]);
    // The viewer gets no credentials.
    assert!(pod.containers[1].env.is_none());
}

#[test]
fn web_identity_projects_a_token_for_the_audience() {
    let nm = monitor(web());
    let pod = daemonset::daemon_set(&nm, "h", &resolved(&nm))
        .spec
        .template
        .spec
        .unwrap();
    let env = pod.containers[0].env.clone().unwrap();
    let value = |name: &str| {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(
        value("AWS_ROLE_ARN").as_deref(),
        Some("arn:aws:iam::123456789012:role/fgm")
    );
    assert_eq!(
        value("AWS_WEB_IDENTITY_TOKEN_FILE").as_deref(),
        Some("/var/run/secrets/fgm.dev/serviceaccount/token")
    );
    let volume = pod
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == super::TOKEN_VOLUME)
        .unwrap();
    let projection = volume.projected.unwrap().sources.unwrap()[0]
        .service_account_token
        .clone()
        .unwrap();
    assert_eq!(projection.audience.as_deref(), Some("sts.amazonaws.com"));
    let mount = pod.containers[0]
        .volume_mounts
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.name == volume.name)
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
    let yaml = settings_yaml(&agent_settings(&nm.spec).unwrap());
    assert!(
        yaml.contains("export-sts-endpoint: \"https://sts.example\""),
        "{yaml}"
    );
}

#[test]
fn settings_files_are_read_back_by_agent_and_compact() {
    let nm = monitor(secret());
    let yaml = settings_yaml(&agent_settings(&nm.spec).unwrap());
    let cli: crate::cli::Cli = parse(&yaml, "agent");
    let crate::cli::Mode::Agent(agent) = cli.mode else {
        panic!("agent")
    };
    assert_eq!(agent.export.export_bucket.as_deref(), Some("fgm-history"));
    assert_eq!(agent.export.export_prefix, "prod/eu");
    assert!(agent.export.bucket.export_path_style);
    assert_eq!(
        agent.export.bucket.export_endpoint.as_deref(),
        Some("http://seaweedfs.storage:8333")
    );
    let cm = config_map(&nm, &yaml);
    let data = cm.data.unwrap();
    assert!(data.contains_key(SETTINGS_KEY));
    let cli: crate::cli::Cli = parse(&data[COMPACT_SETTINGS_KEY], "compact");
    let crate::cli::Mode::Compact(compact) = cli.mode else {
        panic!("compact")
    };
    assert_eq!(compact.export_bucket.as_deref(), Some("fgm-history"));
    assert_eq!(compact.span.to_string(), "1h");
    assert_eq!(compact.delete_after.to_string(), "30m");
    // Without export neither file mentions it.
    let plain = settings_yaml(&agent_settings(&NodeMonitorSpec::default()).unwrap());
    assert!(!plain.contains("export"));
}

#[test]
fn bad_export_settings_are_refused_with_the_field() {
    let mut spec = export(secret());
    spec.bucket = "Not_A_Bucket".into();
    let e = export_settings(&spec).unwrap_err().to_string();
    assert!(
        e.contains("spec.export") && e.contains("Not_A_Bucket"),
        "{e}"
    );
    let mut spec = export(secret());
    spec.credentials.web_identity = web().web_identity;
    let e = export_settings(&spec).unwrap_err().to_string();
    assert!(e.contains("exactly one"), "{e}");
    let mut spec = export(secret());
    spec.compaction.span = "7m".into();
    let e = export_settings(&spec).unwrap_err().to_string();
    assert!(e.contains("span") && e.contains("divide a day"), "{e}");
    let mut spec = export(secret());
    spec.compaction.schedule = "hourly please".into();
    assert!(
        export_settings(&spec)
            .unwrap_err()
            .to_string()
            .contains("cron")
    );
}

#[test]
fn compaction_runs_alone_as_nobody_and_is_no_agent_pod() {
    let nm = monitor(web());
    let cj = cron_job(&nm, nm.spec.export.as_ref().unwrap(), &resolved(&nm));
    assert_eq!(cj.metadata.name.as_deref(), Some("nm1-compact"));
    assert!(cj.metadata.owner_references.is_some());
    let spec = cj.spec;
    assert_eq!(spec.schedule, "17 * * * *");
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let template = spec.job_template.spec.unwrap().template;
    let labels = template.metadata.unwrap().labels.unwrap();
    let selector = selector_labels(&nm);
    assert!(
        !selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
        "the DaemonSet's selector must not match compaction pods"
    );
    let pod = template.spec.unwrap();
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some("fine-grained-monitor-nm1")
    );
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    assert!(
        pod.volumes.iter().flatten().all(|v| v.host_path.is_none()),
        "no host path in the compaction job"
    );
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some(daemonset::DEFAULT_IMAGE));
    assert_eq!(
        c.args.as_deref().unwrap(),
        [
            "compact",
            "--config",
            "/etc/fine-grained-monitor/compact.yaml"
        ]
    );
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(
        (
            sc.run_as_user,
            sc.run_as_non_root,
            sc.read_only_root_filesystem
        ),
        (Some(65534), Some(true), Some(true))
    );
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.privileged, Some(false));
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    assert!(caps.add.is_none(), "no capability added");
    assert!(
        c.env
            .as_ref()
            .unwrap()
            .iter()
            .any(|e| e.name == "AWS_ROLE_ARN")
    );
    let long = test_monitor(&"x".repeat(63), NodeMonitorSpec::default());
    assert!(cron_job_name(&long).len() <= 52);
}
