//! The operator keeps the NodeMonitor CRD current: Helm installs CRDs from a
//! chart's `crds/` folder once and never upgrades them, so at every start the
//! operator applies its own CRD (both versions, `v1beta1` stored, conversions
//! sent to its webhook with its CA as `caBundle`), then, as leader, moves
//! objects still stored as `v1alpha1` to `v1beta1` and drops `v1alpha1` from
//! the CRD's `status.storedVersions`.
//!
//! ```text
//!  start ─▶ CRD installed? ── no ──▶ error naming the install command
//!              │ yes
//!              ▼ applied by a newer operator? ── yes ──▶ left as it is (a rollback never downgrades it)
//!  server-side apply (field manager fine-grained-monitor) ─▶ Established, v1beta1 in storedVersions
//!  leader: storedVersions ≠ [v1beta1] ─▶ every NodeMonitor rewritten (a no-op patch with its
//!          resourceVersion: the apiserver stores it in v1beta1) ─▶ storedVersions = [v1beta1]
//! ```
//!
//! Rights this takes (docs/security.md): `customresourcedefinitions` get and
//! patch, `customresourcedefinitions/status` patch, for `nodemonitors.fgm.dev`
//! only; never create (the chart or `kubectl apply` installs the CRD first).

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};

use super::children::FIELD_MANAGER;
use crate::crd::{CRD_NAME, NodeMonitor, STORAGE_VERSION, WebhookTarget, crd_with_webhook};

/// Annotation naming the operator version that last applied the CRD.
pub const VERSION_ANNOTATION: &str = "fgm.dev/operator-version";

/// What went wrong while keeping the CRD current.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error(
        "the NodeMonitor CRD {CRD_NAME} is not installed: install it with the chart, \
         `kubectl apply -k config/default` or `fine-grained-monitor crd | kubectl apply --server-side -f -`"
    )]
    NotInstalled,
    #[error("cannot {action} the CRD {CRD_NAME}: {source}")]
    Api {
        action: &'static str,
        source: kube::Error,
    },
    #[error("the CRD {CRD_NAME} is not Established with {STORAGE_VERSION} stored after {0:?}")]
    NotEstablished(Duration),
    #[error("cannot rewrite NodeMonitor {name} in {STORAGE_VERSION}: {source}")]
    Migrate { name: String, source: kube::Error },
}

fn api_err(action: &'static str) -> impl FnOnce(kube::Error) -> CrdError {
    move |source| CrdError::Api { action, source }
}

/// `major.minor.patch` of a version string (pre-release suffixes ignored).
fn version_tuple(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.split(['.', '-', '+']).map(|p| p.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// Whether a CRD applied by operator `theirs` must be left alone by `ours`.
pub fn newer_than_ours(theirs: Option<&str>, ours: &str) -> bool {
    match (theirs.and_then(version_tuple), version_tuple(ours)) {
        (Some(t), Some(o)) => t > o,
        _ => false,
    }
}

/// What [`apply`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Current,
    /// A newer operator applied it; left as it is.
    LeftNewer(String),
}

/// Applies the CRD with conversions sent to `target`, trusting `ca_pem`, and
/// waits until the apiserver serves it with `v1beta1` stored.
pub async fn apply(
    client: &Client,
    target: &WebhookTarget,
    ca_pem: &[u8],
) -> Result<Applied, CrdError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let existing = api
        .get_opt(CRD_NAME)
        .await
        .map_err(api_err("read"))?
        .ok_or(CrdError::NotInstalled)?;
    let ours = env!("CARGO_PKG_VERSION");
    let theirs = existing.annotations().get(VERSION_ANNOTATION).cloned();
    if newer_than_ours(theirs.as_deref(), ours) {
        let theirs = theirs.unwrap_or_default();
        tracing::warn!(crd = CRD_NAME, applied_by = %theirs, ours, "the CRD was applied by a newer operator: left as it is");
        return Ok(Applied::LeftNewer(theirs));
    }
    let mut crd = crd_with_webhook(target, Some(ca_pem));
    crd.annotations_mut()
        .insert(VERSION_ANNOTATION.into(), ours.into());
    // A server-side apply never removes what another manager set: going from a
    // Service to a URL (or back) would leave both, which the apiserver refuses.
    // A merge patch names the other one as removed first.
    let mut conversion = serde_json::to_value(&crd.spec.conversion).unwrap_or_default();
    let other = match target {
        WebhookTarget::Service { .. } => "url",
        WebhookTarget::Url(_) => "service",
    };
    conversion["webhook"]["clientConfig"][other] = serde_json::Value::Null;
    api.patch(
        CRD_NAME,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"conversion": conversion}})),
    )
    .await
    .map_err(api_err("point the conversion at the webhook of"))?;
    api.patch(
        CRD_NAME,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .map_err(api_err("apply"))?;
    let limit = Duration::from_secs(60);
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let now = api.get(CRD_NAME).await.map_err(api_err("read"))?;
        let status = now.status.unwrap_or_default();
        let established = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        let stored = status
            .stored_versions
            .unwrap_or_default()
            .iter()
            .any(|v| v == STORAGE_VERSION);
        if established && stored {
            tracing::info!(
                crd = CRD_NAME,
                storage = STORAGE_VERSION,
                "NodeMonitor CRD applied"
            );
            return Ok(Applied::Current);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(CrdError::NotEstablished(limit));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rewrites every NodeMonitor stored in an older version, then records that
/// only `v1beta1` is stored. Returns how many objects were rewritten.
pub async fn migrate_storage(client: &Client) -> Result<usize, CrdError> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get(CRD_NAME).await.map_err(api_err("read"))?;
    let stored = crd
        .status
        .and_then(|s| s.stored_versions)
        .unwrap_or_default();
    if stored.iter().all(|v| v == STORAGE_VERSION) {
        return Ok(0);
    }
    tracing::info!(stored = %stored.join(","), to = STORAGE_VERSION, "migrating stored NodeMonitors");
    let api: Api<NodeMonitor> = Api::all(client.clone());
    let all = api
        .list(&ListParams::default())
        .await
        .map_err(api_err("list NodeMonitors of"))?;
    let mut rewritten = 0;
    for nm in all.items {
        let (ns, name) = (nm.namespace().unwrap_or_default(), nm.name_any());
        // Nothing changes but the encoding: the apiserver writes it in the storage version.
        let patch = serde_json::json!({"metadata": {"resourceVersion": nm.resource_version()}});
        match Api::<NodeMonitor>::namespaced(client.clone(), &ns)
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => rewritten += 1,
            // Written (so stored in v1beta1) or deleted meanwhile: nothing left to do.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
            Err(source) => {
                return Err(CrdError::Migrate {
                    name: format!("{ns}/{name}"),
                    source,
                });
            }
        }
    }
    crds.patch_status(
        CRD_NAME,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"status": {"storedVersions": [STORAGE_VERSION]}})),
    )
    .await
    .map_err(api_err("record the stored versions of"))?;
    tracing::info!(
        rewritten,
        storage = STORAGE_VERSION,
        "NodeMonitor storage migrated"
    );
    Ok(rewritten)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_strictly_newer_operator_keeps_the_crd() {
        assert!(newer_than_ours(Some("0.2.0"), "0.1.0"));
        assert!(newer_than_ours(Some("1.0.0-rc.1"), "0.9.9"));
        assert!(!newer_than_ours(Some("0.1.0"), "0.1.0"));
        assert!(!newer_than_ours(Some("0.0.9"), "0.1.0"));
        assert!(!newer_than_ours(None, "0.1.0"));
        assert!(!newer_than_ours(Some("garbage"), "0.1.0"));
    }
}
