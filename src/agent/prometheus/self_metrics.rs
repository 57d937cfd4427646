//! The agent's metrics about itself, in a `prometheus-client` registry under
//! the `fgm_agent_` prefix. The agent loop, the store writer, retention and
//! the enricher increment them through the small methods here; `/metrics`
//! encodes them after the container families.
//!
//! The enrichment cache state is also kept as a value (not only a gauge) so
//! `/healthz` can report it.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// State of the pod metadata cache, as the health endpoint and the
/// `fgm_agent_enrichment_state` gauge report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(non_camel_case_types)]
pub enum EnrichmentState {
    /// Enrichment switched off (`--enrichment=false`) or not in a cluster by choice.
    disabled,
    /// Listing pods; lookups may miss.
    syncing,
    /// Watch established; lookups are current.
    synced,
    /// The API cannot be used (no config, RBAC, server down); retrying.
    unavailable,
}

impl EnrichmentState {
    pub const ALL: [EnrichmentState; 4] = [
        EnrichmentState::disabled,
        EnrichmentState::syncing,
        EnrichmentState::synced,
        EnrichmentState::unavailable,
    ];
}

/// What the enricher last reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EnrichmentStatus {
    pub state: EnrichmentState,
    /// Why, when unavailable (e.g. "RBAC denied: pods is forbidden").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Pods in the cache.
    pub pods: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabel {
    state: EnrichmentState,
}

/// Counters and gauges the agent updates; cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct SelfMetrics {
    registry: Arc<Registry>,
    cycle_duration: Histogram,
    cycles: Counter,
    late_cycles: Counter,
    containers_tracked: Gauge,
    read_errors: Family<KindLabel, Counter>,
    files_written: Counter,
    bytes_written: Counter,
    tail_bytes_written: Counter,
    retention_deletions: Family<ReasonLabel, Counter>,
    write_errors: Family<KindLabel, Counter>,
    samples_dropped: Counter,
    process_events_dropped: Counter,
    process_memory_refused: Counter,
    enrichment_state: Family<StateLabel, Gauge>,
    enrichment_pods: Gauge,
    events_seen: Family<KindLabel, Counter>,
    events_deduplicated: Family<KindLabel, Counter>,
    scrapes: Counter,
    scrape_duration: Histogram,
    enrichment: Arc<RwLock<Option<EnrichmentStatus>>>,
    reliability: super::reliability::Reliability,
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl SelfMetrics {
    pub fn new() -> Self {
        Self::with_registry(Registry::default())
    }

    /// Adds the self-metrics (under `fgm_agent_`) to a registry other parts
    /// may already have registered their metrics in, and serves all of it.
    pub fn with_registry(mut registry: Registry) -> Self {
        // 0.5 ms .. ~4 s: a cycle is normally a few ms; seconds means trouble.
        let cycle_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let scrape_duration = Histogram::new(exponential_buckets(0.0001, 2.0, 14));
        let m = Self {
            registry: Arc::new(Registry::default()),
            cycle_duration,
            cycles: Counter::default(),
            late_cycles: Counter::default(),
            containers_tracked: Gauge::default(),
            read_errors: Family::default(),
            files_written: Counter::default(),
            bytes_written: Counter::default(),
            tail_bytes_written: Counter::default(),
            retention_deletions: Family::default(),
            write_errors: Family::default(),
            samples_dropped: Counter::default(),
            process_events_dropped: Counter::default(),
            process_memory_refused: Counter::default(),
            enrichment_state: Family::default(),
            enrichment_pods: Gauge::default(),
            events_seen: Family::default(),
            events_deduplicated: Family::default(),
            scrapes: Counter::default(),
            scrape_duration,
            enrichment: Arc::new(RwLock::new(None)),
            reliability: super::reliability::Reliability::default(),
        };
        let r = registry.sub_registry_with_prefix("fgm_agent");
        r.register(
            "cycle_duration_seconds",
            "Time to read every container's cgroup files in one collection cycle",
            m.cycle_duration.clone(),
        );
        r.register("cycles", "Collection cycles completed", m.cycles.clone());
        r.register(
            "late_cycles",
            "Collection cycles that started after their tick because the previous one overran",
            m.late_cycles.clone(),
        );
        r.register(
            "containers_tracked",
            "Containers sampled in the latest cycle",
            m.containers_tracked.clone(),
        );
        r.register(
            "read_errors",
            "cgroup file reads that failed, by kind",
            m.read_errors.clone(),
        );
        r.register(
            "files_written",
            "Parquet data files completed",
            m.files_written.clone(),
        );
        r.register(
            "written_bytes",
            "Bytes of completed Parquet data files",
            m.bytes_written.clone(),
        );
        r.register(
            "tail_written_bytes",
            "Bytes appended to the open interval's tail file (live view, crash safety)",
            m.tail_bytes_written.clone(),
        );
        r.register(
            "retention_deletions",
            "Data files deleted by retention, by reason (age, size)",
            m.retention_deletions.clone(),
        );
        r.register(
            "write_errors",
            "Data file, index, hour summary or retention operations that failed, by kind (disk_full, descriptors, io, index, hour_summary, retention)",
            m.write_errors.clone(),
        );
        r.register(
            "samples_dropped",
            "Samples dropped because the disk stayed full for more than two rotations",
            m.samples_dropped.clone(),
        );
        r.register(
            "process_events_dropped",
            "Process starts and exits beyond --process-max-events in one interval, not recorded",
            m.process_events_dropped.clone(),
        );
        r.register(
            "process_memory_refused",
            "smaps_rollup reads refused (no CAP_SYS_PTRACE for another user's process): PSS, USS and swap null",
            m.process_memory_refused.clone(),
        );
        r.register(
            "enrichment_state",
            "Pod metadata cache state: 1 for the current state, 0 for the others",
            m.enrichment_state.clone(),
        );
        r.register(
            "enrichment_pods",
            "Pods in the pod metadata cache",
            m.enrichment_pods.clone(),
        );
        r.register(
            "pod_events_seen",
            "Pod failure signals seen in pod status updates, by kind",
            m.events_seen.clone(),
        );
        r.register(
            "pod_events_deduplicated",
            "Pod failure signals not recorded because they were already recorded, by kind",
            m.events_deduplicated.clone(),
        );
        m.reliability.register(r);
        r.register("scrapes", "Requests served on /metrics", m.scrapes.clone());
        r.register(
            "scrape_duration_seconds",
            "Time to render a /metrics response",
            m.scrape_duration.clone(),
        );
        Self {
            registry: Arc::new(registry),
            ..m
        }
    }

    /// The registry to encode (also open to other parts for their own metrics
    /// before the server starts: build with [`SelfMetrics::new`], then share).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// One finished cycle: its duration, whether it started late, containers read.
    pub fn cycle_done(&self, duration: Duration, late: bool, containers: usize) {
        self.cycle_duration.observe(duration.as_secs_f64());
        self.cycles.inc();
        if late {
            self.late_cycles.inc();
        }
        self.containers_tracked
            .set(i64::try_from(containers).unwrap_or(i64::MAX));
    }

    /// A cgroup read failed; `kind` is a short stable word (`permission`, `descriptors`, `io`).
    pub fn read_error(&self, kind: &str) {
        self.read_errors
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// A data file was completed with `bytes` on disk.
    pub fn file_written(&self, bytes: u64) {
        self.files_written.inc();
        self.bytes_written.inc_by(bytes);
    }

    /// A cycle of `bytes` was appended to the tail file.
    pub fn tail_written(&self, bytes: u64) {
        self.tail_bytes_written.inc_by(bytes);
    }

    /// Bytes appended to tail files so far.
    pub fn tail_bytes(&self) -> u64 {
        self.tail_bytes_written.get()
    }

    /// Bytes of completed data files so far.
    pub fn file_bytes(&self) -> u64 {
        self.bytes_written.get()
    }

    /// Retention deleted a file; `reason` is `age` or `size`.
    pub fn retention_deleted(&self, reason: &str) {
        self.retention_deletions
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// Writing a file, the index, or applying retention failed; `kind` is
    /// `disk_full`, `io`, `index` or `retention`.
    pub fn write_error(&self, kind: &str) {
        self.write_errors
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// Descriptors, wall-clock steps, data directory bytes.
    pub fn reliability(&self) -> &super::reliability::Reliability {
        &self.reliability
    }

    /// The collector's descriptor accounting after a cycle.
    pub fn set_fds(&self, status: crate::agent::collector::FdStatus) {
        self.reliability.set_fds(status);
    }

    /// Samples given up because they could not be written in time.
    pub fn samples_dropped(&self, n: u64) {
        self.samples_dropped.inc_by(n);
    }

    /// The process table's running totals (set after each interval).
    pub fn set_process_counts(&self, counts: crate::agent::process_table::ProcessCounts) {
        let dropped = counts
            .events_dropped
            .saturating_sub(self.process_events_dropped.get());
        self.process_events_dropped.inc_by(dropped);
        let refused = counts
            .memory_refused
            .saturating_sub(self.process_memory_refused.get());
        self.process_memory_refused.inc_by(refused);
    }

    /// The enricher's current state (shown on `/healthz` and as a gauge).
    pub fn set_enrichment(&self, status: EnrichmentStatus) {
        for state in EnrichmentState::ALL {
            self.enrichment_state
                .get_or_create(&StateLabel { state })
                .set(i64::from(state == status.state));
        }
        self.enrichment_pods
            .set(i64::try_from(status.pods).unwrap_or(i64::MAX));
        if let Ok(mut slot) = self.enrichment.write() {
            *slot = Some(status);
        }
    }

    pub fn enrichment(&self) -> Option<EnrichmentStatus> {
        self.enrichment.read().ok().and_then(|s| s.clone())
    }

    /// A pod failure signal was seen; `recorded` false when it was a duplicate.
    pub fn pod_event(&self, kind: &str, recorded: bool) {
        let label = KindLabel { kind: kind.into() };
        self.events_seen.get_or_create(&label).inc();
        if !recorded {
            self.events_deduplicated.get_or_create(&label).inc();
        }
    }

    pub(crate) fn scrape_done(&self, duration: Duration) {
        self.scrapes.inc();
        self.scrape_duration.observe(duration.as_secs_f64());
    }

    /// Cycles and late cycles so far (for benchmarks and tests).
    pub fn cycle_counts(&self) -> (u64, u64) {
        (self.cycles.get(), self.late_cycles.get())
    }

    /// Encodes the registry as OpenMetrics without `# EOF`.
    pub fn encode_openmetrics(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(out, &self.registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(m: &SelfMetrics) -> String {
        let mut s = String::new();
        m.encode_openmetrics(&mut s);
        s
    }

    #[test]
    fn records_cycles_and_late_cycles() {
        let m = SelfMetrics::new();
        m.cycle_done(Duration::from_millis(3), false, 7);
        m.cycle_done(Duration::from_millis(1500), true, 8);
        assert_eq!(m.cycle_counts(), (2, 1));
        let s = encoded(&m);
        assert!(s.contains("fgm_agent_cycles_total 2\n"), "{s}");
        assert!(s.contains("fgm_agent_late_cycles_total 1\n"), "{s}");
        assert!(s.contains("fgm_agent_containers_tracked 8\n"), "{s}");
        assert!(
            s.contains("fgm_agent_cycle_duration_seconds_count 2\n"),
            "{s}"
        );
        assert!(
            s.contains("fgm_agent_cycle_duration_seconds_bucket{le=\"0.004\"} 1\n"),
            "{s}"
        );
    }

    #[test]
    fn labelled_counters() {
        let m = SelfMetrics::new();
        m.read_error("not_found");
        m.read_error("not_found");
        m.read_error("parse");
        m.file_written(1000);
        m.file_written(24);
        m.retention_deleted("age");
        m.pod_event("oom_killed", true);
        m.pod_event("oom_killed", false);
        let s = encoded(&m);
        for want in [
            "fgm_agent_read_errors_total{kind=\"not_found\"} 2\n",
            "fgm_agent_read_errors_total{kind=\"parse\"} 1\n",
            "fgm_agent_files_written_total 2\n",
            "fgm_agent_written_bytes_total 1024\n",
            "fgm_agent_retention_deletions_total{reason=\"age\"} 1\n",
            "fgm_agent_pod_events_seen_total{kind=\"oom_killed\"} 2\n",
            "fgm_agent_pod_events_deduplicated_total{kind=\"oom_killed\"} 1\n",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
    }

    #[test]
    fn enrichment_state_is_one_hot_and_kept_for_health() {
        let m = SelfMetrics::new();
        assert_eq!(m.enrichment(), None);
        m.set_enrichment(EnrichmentStatus {
            state: EnrichmentState::unavailable,
            reason: Some("RBAC denied".into()),
            pods: 0,
        });
        m.set_enrichment(EnrichmentStatus {
            state: EnrichmentState::synced,
            reason: None,
            pods: 12,
        });
        let s = encoded(&m);
        assert!(
            s.contains("fgm_agent_enrichment_state{state=\"synced\"} 1\n"),
            "{s}"
        );
        assert!(
            s.contains("fgm_agent_enrichment_state{state=\"unavailable\"} 0\n"),
            "{s}"
        );
        assert!(s.contains("fgm_agent_enrichment_pods 12\n"), "{s}");
        assert_eq!(
            m.enrichment().map(|e| e.state),
            Some(EnrichmentState::synced)
        );
    }
}
