//! What a NodeMonitor may ask of a node, decided by the operator's settings
//! (not by the NodeMonitor's author): where its data lives on the host and
//! which image its pods run.
//!
//! ```text
//!  spec.dataHostPath ─▶ host_path::place (normalise, under --allowed-data-roots) ─┐
//!  spec.image ────────▶ image::choose (--default-image, --allowed-image-repositories) ┴▶ Resolved
//! ```
//!
//! A refusal stops the reconcile before any object is written (condition
//! `Ready=False`/`Degraded=True` with the reason, and an Event); a DaemonSet
//! made earlier for the NodeMonitor (under laxer settings, or by an older
//! operator) is removed.

pub mod host_path;
pub mod image;

pub use host_path::{DataPlacement, DataRoot, HostPath, HostPathError};
pub use image::{AllowedRepository, ImageError, ImageRef};

use crate::crd::NodeMonitorSpec;

/// Condition reason of a data path outside the allowed roots.
pub const HOST_PATH_NOT_ALLOWED: &str = "HostPathNotAllowed";
/// Condition reason of an image the operator does not allow.
pub const IMAGE_NOT_ALLOWED: &str = "ImageNotAllowed";

/// The operator's settings that bound every NodeMonitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub data_roots: Vec<DataRoot>,
    pub image_repositories: Vec<AllowedRepository>,
    pub default_image: String,
}

/// A spec the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    HostPath(#[from] HostPathError),
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl Refusal {
    /// The condition and Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::HostPath(_) => HOST_PATH_NOT_ALLOWED,
            Self::Image(_) => IMAGE_NOT_ALLOWED,
        }
    }
}

/// What the policy grants one NodeMonitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub image: String,
    pub data: DataPlacement,
}

impl Policy {
    /// Checks the operator's own settings (the default image must parse).
    pub fn new(
        data_roots: Vec<DataRoot>,
        image_repositories: Vec<AllowedRepository>,
        default_image: String,
    ) -> Result<Self, ImageError> {
        ImageRef::parse("--default-image", &default_image)?;
        Ok(Self {
            data_roots,
            image_repositories,
            default_image,
        })
    }

    /// The image and data placement of a spec, or why the spec is refused.
    pub fn resolve(&self, spec: &NodeMonitorSpec) -> Result<Resolved, Refusal> {
        let data = host_path::place(&spec.data_host_path, &self.data_roots)?;
        let image = image::choose(
            spec.image.as_deref(),
            &self.default_image,
            &self.image_repositories,
        )?;
        Ok(Resolved { image, data })
    }

    /// The normalised data path of a spec the policy accepts (`None` when refused:
    /// a refused NodeMonitor runs nothing, so it holds no directory).
    pub fn held_path(&self, spec: &NodeMonitorSpec) -> Option<HostPath> {
        self.resolve(spec).ok().map(|r| r.data.path)
    }
}

impl Default for Policy {
    /// The operator's defaults: data under `/var/lib/fine-grained-monitor`, the
    /// image of this version, no image overrides.
    fn default() -> Self {
        let root = crate::crd::DEFAULT_DATA_HOST_PATH
            .parse()
            .unwrap_or_else(|e| unreachable!("the default data root is valid: {e}"));
        Self {
            data_roots: vec![root],
            image_repositories: Vec::new(),
            default_image: crate::operator::builders::daemonset::DEFAULT_IMAGE.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_resolves_to_the_default_root_and_image() {
        let r = Policy::default()
            .resolve(&NodeMonitorSpec::default())
            .unwrap();
        assert_eq!(r.data.root.as_str(), "/var/lib/fine-grained-monitor");
        assert_eq!(r.data.sub_path, "");
        assert_eq!(r.image, crate::operator::builders::daemonset::DEFAULT_IMAGE);
    }

    #[test]
    fn refusals_carry_their_reason() {
        let p = Policy::default();
        let spec = NodeMonitorSpec {
            data_host_path: "/etc".into(),
            ..NodeMonitorSpec::default()
        };
        let e = p.resolve(&spec).unwrap_err();
        assert_eq!(e.reason(), HOST_PATH_NOT_ALLOWED);
        assert!(p.held_path(&spec).is_none());
        let spec = NodeMonitorSpec {
            image: Some("evil.io/x:1".into()),
            ..NodeMonitorSpec::default()
        };
        assert_eq!(p.resolve(&spec).unwrap_err().reason(), IMAGE_NOT_ALLOWED);
    }

    #[test]
    fn a_malformed_default_image_is_refused_at_start() {
        let e = Policy::new(vec![], vec![], "Not An Image".into()).unwrap_err();
        assert!(e.to_string().contains("--default-image"), "{e}");
    }
}
