//! What `spec.export` adds (pure): the export keys of the agent's settings
//! file, the credentials in the pods' environment, and the compaction CronJob.
//!
//! Credentials never pass through the operator: a Secret reaches the pods as
//! `secretKeyRef` environment variables, and web identity is a projected
//! ServiceAccount token (audience from the spec) plus `AWS_ROLE_ARN` and
//! `AWS_WEB_IDENTITY_TOKEN_FILE`, as IRSA's webhook would set them.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
    SecretKeySelector, ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::rbac::service_account_name;
use super::settings::{SETTINGS_DIR, SpecError};
use super::{labels, owned_meta};
use crate::crd::{ExportSpec, NodeMonitor};
use crate::operator::policy::Resolved;
use crate::units::HumanDuration;

/// Key of the compaction job's settings file in the ConfigMap.
pub const COMPACT_SETTINGS_KEY: &str = "compact.yaml";
/// Where the projected web identity token is mounted.
pub const TOKEN_DIR: &str = "/var/run/secrets/fgm.dev/serviceaccount";
const TOKEN_VOLUME: &str = "export-token";
const TOKEN_FILE: &str = "token";

/// The checked export settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    /// Flag name to value, shared by the agent and `compact`.
    pub bucket_flags: BTreeMap<&'static str, String>,
    pub span: HumanDuration,
    pub delete_after: HumanDuration,
}

fn export_error(message: String) -> SpecError {
    SpecError::Export(message)
}

/// Checks `spec.export` with the agent's own parsers.
pub fn export_settings(export: &ExportSpec) -> Result<ExportSettings, SpecError> {
    crate::s3::BucketConfig::new(
        export.endpoint.as_deref(),
        &export.bucket,
        &export.region,
        export.path_style,
    )
    .map_err(|e| export_error(format!("spec.export: {e}")))?;
    let creds = &export.credentials;
    if creds.secret_name.is_some() == creds.web_identity.is_some() {
        return Err(export_error(
            "spec.export.credentials needs exactly one of secretName and webIdentity".into(),
        ));
    }
    let duration = |field: &'static str, text: &str| {
        text.parse::<HumanDuration>()
            .map_err(|source| SpecError::Unit { field, source })
    };
    let span = duration("export.compaction.span", &export.compaction.span)?;
    if span.get().as_secs() == 0 || 86_400 % span.get().as_secs() != 0 {
        return Err(export_error(format!(
            "spec.export.compaction.span ({span}) must divide a day (15m, 1h, 6h, 1d ...)"
        )));
    }
    let delete_after = duration(
        "export.compaction.deleteAfter",
        &export.compaction.delete_after,
    )?;
    if export.compaction.schedule.split_whitespace().count() != 5 {
        return Err(export_error(format!(
            "spec.export.compaction.schedule {:?} is not a five-field cron schedule",
            export.compaction.schedule
        )));
    }
    let mut flags = BTreeMap::new();
    flags.insert("export-bucket", export.bucket.clone());
    flags.insert("export-prefix", export.prefix.clone());
    flags.insert("export-region", export.region.clone());
    flags.insert("export-path-style", export.path_style.to_string());
    if let Some(endpoint) = &export.endpoint {
        flags.insert("export-endpoint", endpoint.clone());
    }
    if let Some(sts) = creds
        .web_identity
        .as_ref()
        .and_then(|w| w.sts_endpoint.clone())
    {
        flags.insert("export-sts-endpoint", sts);
    }
    Ok(ExportSettings {
        bucket_flags: flags,
        span,
        delete_after,
    })
}

/// The compaction job's settings file.
pub fn compact_yaml(settings: &ExportSettings) -> String {
    let mut map = settings.bucket_flags.clone();
    map.insert("span", settings.span.to_string());
    map.insert("delete-after", settings.delete_after.to_string());
    let mut out =
        String::from("# Written by the fine-grained-monitor operator from the NodeMonitor spec.\n");
    for (key, value) in map {
        out.push_str(&format!("{key}: {}\n", serde_json::Value::String(value)));
    }
    out
}

fn secret_env(name: &str, secret: &str, optional: bool) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: name.into(),
                optional: optional.then_some(true),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// Environment variables carrying the credentials of `export`.
pub fn credential_env(export: &ExportSpec) -> Vec<EnvVar> {
    let creds = &export.credentials;
    if let Some(secret) = &creds.secret_name {
        return vec![
            secret_env("AWS_ACCESS_KEY_ID", secret, false),
            secret_env("AWS_SECRET_ACCESS_KEY", secret, false),
            secret_env("AWS_SESSION_TOKEN", secret, true),
        ];
    }
    match &creds.web_identity {
        Some(web) => vec![
            EnvVar {
                name: "AWS_ROLE_ARN".into(),
                value: Some(web.role_arn.clone()),
                ..EnvVar::default()
            },
            EnvVar {
                name: "AWS_WEB_IDENTITY_TOKEN_FILE".into(),
                value: Some(format!("{TOKEN_DIR}/{TOKEN_FILE}")),
                ..EnvVar::default()
            },
        ],
        None => Vec::new(),
    }
}

/// The projected token volume and its mount, for web identity.
pub fn token_volume(export: &ExportSpec) -> Option<(Volume, VolumeMount)> {
    let web = export.credentials.web_identity.as_ref()?;
    let volume = Volume {
        name: TOKEN_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(web.audience.clone()),
                    // The kubelet renews it at 80 % of its life; the agent rereads it at every refresh.
                    expiration_seconds: Some(3600),
                    path: TOKEN_FILE.into(),
                    user: None,
                }),
                ..VolumeProjection::default()
            }]),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mount = VolumeMount {
        name: TOKEN_VOLUME.into(),
        mount_path: TOKEN_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    };
    Some((volume, mount))
}

/// Labels of the compaction Jobs and pods: not the DaemonSet's selector labels,
/// so neither the DaemonSet nor the status poll takes them for agent pods.
pub fn job_labels(nm: &NodeMonitor) -> BTreeMap<String, String> {
    let mut l = labels(nm);
    l.insert(
        "app.kubernetes.io/name".into(),
        "fine-grained-monitor-compact".into(),
    );
    l.insert("app.kubernetes.io/component".into(), "compaction".into());
    l
}

/// Name of a NodeMonitor's compaction CronJob.
pub fn cron_job_name(nm: &NodeMonitor) -> String {
    // CronJob names are at most 52 characters (the Job name adds 11).
    let base = nm.name_any();
    let base: String = base.chars().take(52 - "-compact".len()).collect();
    format!("{}-compact", base.trim_end_matches('-'))
}

/// The compaction CronJob: `compact` mode once per schedule, never two at once,
/// with the image the operator's policy granted, as nobody (65534), read-only
/// root filesystem, no capabilities, seccomp `RuntimeDefault`, no Kubernetes
/// API token (a web identity token of the bucket's audience only when the
/// spec asks for web identity). It needs no host path and no API access.
pub fn cron_job(nm: &NodeMonitor, export: &ExportSpec, resolved: &Resolved) -> CronJob {
    let quantity = |s: &str| Quantity(s.into());
    let mut volumes = vec![Volume {
        name: "settings".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: nm.name_any(),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
    let mut mounts = vec![VolumeMount {
        name: "settings".into(),
        mount_path: SETTINGS_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }];
    if let Some((volume, mount)) = token_volume(export) {
        volumes.push(volume);
        mounts.push(mount);
    }
    let container = Container {
        name: "compact".into(),
        image: Some(resolved.image.clone()),
        image_pull_policy: Some(nm.spec.image_pull_policy.as_str().into()),
        command: Some(vec!["fine-grained-monitor".into()]),
        args: Some(vec![
            "compact".into(),
            "--config".into(),
            format!("{SETTINGS_DIR}/{COMPACT_SETTINGS_KEY}"),
        ]),
        env: Some(credential_env(export)),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), quantity("100m")),
                ("memory".to_string(), quantity("128Mi")),
            ])),
            limits: Some(BTreeMap::from([
                ("cpu".to_string(), quantity("1")),
                ("memory".to_string(), quantity("1Gi")),
            ])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(super::daemonset::locked_down(
            super::daemonset::VIEWER_UID,
            &[],
        )),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        restart_policy: Some("OnFailure".into()),
        // Same identity as the agents: the role's trust policy names one ServiceAccount.
        service_account_name: Some(service_account_name(nm)),
        automount_service_account_token: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        volumes: Some(volumes),
        ..PodSpec::default()
    };
    CronJob {
        metadata: ObjectMeta {
            name: Some(cron_job_name(nm)),
            ..owned_meta(nm)
        },
        spec: CronJobSpec {
            schedule: export.compaction.schedule.clone(),
            concurrency_policy: Some("Forbid".into()),
            successful_jobs_history_limit: Some(1),
            failed_jobs_history_limit: Some(3),
            starting_deadline_seconds: Some(600),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(job_labels(nm)),
                    ..ObjectMeta::default()
                }),
                spec: Some(JobSpec {
                    backoff_limit: Some(2),
                    active_deadline_seconds: Some(3000),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(job_labels(nm)),
                            ..ObjectMeta::default()
                        }),
                        spec: Some(pod),
                    },
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        },
        ..CronJob::default()
    }
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
