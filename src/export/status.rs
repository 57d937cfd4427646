//! What the uploader reports: Prometheus metrics (`fgm_export_*` on the
//! agent's /metrics) and a JSON status (`GET /export` on the same port), which
//! the operator reads to fill the NodeMonitor's `status.export`.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

/// The uploader's state as one JSON document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportStatus {
    /// `s3://bucket/prefix`.
    pub destination: String,
    /// True while the last attempt failed.
    pub failing: bool,
    /// Why it fails (an `S3Error::reason`: `AccessDenied`, `Unreachable`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_upload: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<DateTime<Utc>>,
    /// Files waiting to be uploaded, and their size.
    pub backlog_files: u64,
    pub backlog_bytes: u64,
    /// Since the agent started.
    pub uploaded_files: u64,
    /// Removed by retention before they could be uploaded, since the agent started.
    pub dropped_files: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

/// Metrics and status, shared by the uploader and the HTTP endpoint.
#[derive(Debug, Clone)]
pub struct ExportMetrics {
    uploads: Family<KindLabel, Counter>,
    upload_bytes: Counter,
    errors: Family<ReasonLabel, Counter>,
    dropped: Counter,
    backlog_files: Gauge,
    backlog_bytes: Gauge,
    last_upload: Gauge,
    failing: Gauge,
    duration: Histogram,
    status: Arc<RwLock<ExportStatus>>,
}

impl ExportMetrics {
    /// Registers the `fgm_export_*` metrics in `registry`.
    pub fn register(registry: &mut Registry, destination: String) -> Self {
        let m = Self {
            uploads: Family::default(),
            upload_bytes: Counter::default(),
            errors: Family::default(),
            dropped: Counter::default(),
            backlog_files: Gauge::default(),
            backlog_bytes: Gauge::default(),
            last_upload: Gauge::default(),
            failing: Gauge::default(),
            // 5 ms .. ~80 s.
            duration: Histogram::new(exponential_buckets(0.005, 2.0, 15)),
            status: Arc::new(RwLock::new(ExportStatus {
                destination,
                ..ExportStatus::default()
            })),
        };
        let r = registry.sub_registry_with_prefix("fgm_export");
        r.register(
            "uploads",
            "Files uploaded to object storage, by kind (data, events)",
            m.uploads.clone(),
        );
        r.register(
            "upload_bytes",
            "Bytes uploaded to object storage",
            m.upload_bytes.clone(),
        );
        r.register(
            "errors",
            "Failed upload attempts, by reason (AccessDenied, NoSuchBucket, Unreachable, ServerError, ...)",
            m.errors.clone(),
        );
        r.register(
            "dropped_files",
            "Files retention removed from the node before they could be uploaded",
            m.dropped.clone(),
        );
        r.register(
            "backlog_files",
            "Files waiting to be uploaded",
            m.backlog_files.clone(),
        );
        r.register(
            "backlog_bytes",
            "Bytes waiting to be uploaded",
            m.backlog_bytes.clone(),
        );
        r.register(
            "last_upload_timestamp_seconds",
            "Unix time of the last successful upload",
            m.last_upload.clone(),
        );
        r.register(
            "failing",
            "1 while the last upload attempt failed",
            m.failing.clone(),
        );
        r.register(
            "upload_duration_seconds",
            "Time of one successful upload, request to answer",
            m.duration.clone(),
        );
        m
    }

    /// A copy of the current status.
    pub fn status(&self) -> ExportStatus {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut ExportStatus)) {
        f(&mut self.status.write().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn uploaded(&self, kind: &str, bytes: u64, seconds: f64, at: DateTime<Utc>) {
        self.uploads
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
        self.upload_bytes.inc_by(bytes);
        self.duration.observe(seconds);
        self.last_upload.set(at.timestamp());
        self.failing.set(0);
        self.update(|s| {
            s.failing = false;
            s.reason = None;
            s.message = None;
            s.last_upload = Some(at);
            s.uploaded_files += 1;
        });
    }

    /// The record already holds an upload from an earlier run.
    pub fn restored_last_upload(&self, at: DateTime<Utc>) {
        self.last_upload.set(at.timestamp());
        self.update(|s| s.last_upload = Some(at));
    }

    pub fn failed(&self, reason: &str, message: String, at: DateTime<Utc>) {
        self.errors
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
        self.failing.set(1);
        self.update(|s| {
            s.failing = true;
            s.reason = Some(reason.to_string());
            s.message = Some(message);
            s.last_error = Some(at);
        });
    }

    pub fn dropped(&self) {
        self.dropped.inc();
        self.update(|s| s.dropped_files += 1);
    }

    pub fn backlog(&self, files: u64, bytes: u64) {
        self.backlog_files
            .set(i64::try_from(files).unwrap_or(i64::MAX));
        self.backlog_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.update(|s| {
            s.backlog_files = files;
            s.backlog_bytes = bytes;
        });
    }
}

/// Adds `GET /export` (the status as JSON; 404 when export is off) to the agent's endpoint.
pub fn with_status_route(router: axum::Router, metrics: Option<ExportMetrics>) -> axum::Router {
    use axum::routing::get;
    match metrics {
        Some(m) => router.route(
            "/export",
            get(move || {
                let status = m.status();
                async move { axum::Json(status) }
            }),
        ),
        None => router.route(
            "/export",
            get(|| async {
                (
                    axum::http::StatusCode::NOT_FOUND,
                    "export to object storage is not enabled (--export-bucket)\n",
                )
            }),
        ),
    }
}
