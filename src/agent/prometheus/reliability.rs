//! Self-metrics of the agent's long-run health: descriptors, wall-clock
//! steps, and the bytes the data directory holds per kind of artefact.
//! Registered with the other `fgm_agent_` metrics by [`super::SelfMetrics`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::agent::collector::FdStatus;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DirectionLabel {
    direction: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ArtefactLabel {
    kind: String,
}

/// The metrics; cheap to clone (shared handles).
#[derive(Debug, Clone, Default)]
pub struct Reliability {
    open_files: Gauge,
    open_files_budget: Gauge,
    containers_reopened: Gauge,
    descriptor_shortages: Counter,
    shortages_seen: Arc<AtomicU64>,
    clock_steps: Family<DirectionLabel, Counter>,
    data_bytes: Family<ArtefactLabel, Gauge>,
}

fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Reliability {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "open_files",
            "cgroup files held open between samples",
            self.open_files.clone(),
        );
        r.register(
            "open_files_budget",
            "cgroup files that may be held open: the open-file limit less a reserve and other descriptors",
            self.open_files_budget.clone(),
        );
        r.register(
            "containers_reopened",
            "Containers whose cgroup files are opened at each read because descriptors are short",
            self.containers_reopened.clone(),
        );
        r.register(
            "descriptor_shortages",
            "Times the kernel refused a descriptor (EMFILE/ENFILE) and kept files were closed",
            self.descriptor_shortages.clone(),
        );
        r.register(
            "clock_steps",
            "Wall-clock steps seen between two cycles, by direction (forward, backward)",
            self.clock_steps.clone(),
        );
        r.register(
            "data_dir_bytes",
            "Bytes the data directory holds under the retention budget, by kind of artefact",
            self.data_bytes.clone(),
        );
    }

    pub fn set_fds(&self, status: FdStatus) {
        self.open_files.set(gauge_value(status.kept_files as u64));
        self.open_files_budget
            .set(gauge_value(status.budget as u64));
        self.containers_reopened
            .set(gauge_value(status.reopened as u64));
        let before = self
            .shortages_seen
            .swap(status.shortages, Ordering::Relaxed);
        if status.shortages > before {
            self.descriptor_shortages.inc_by(status.shortages - before);
        }
    }

    /// A wall-clock step; `direction` is `forward` or `backward`.
    pub fn clock_step(&self, direction: &str) {
        self.clock_steps
            .get_or_create(&DirectionLabel {
                direction: direction.into(),
            })
            .inc();
    }

    /// Bytes held by one kind of artefact (`parquet`, `events`, ...).
    pub fn set_data_bytes(&self, kind: &str, bytes: u64) {
        self.data_bytes
            .get_or_create(&ArtefactLabel { kind: kind.into() })
            .set(gauge_value(bytes));
    }
}
