//! Turning cycles into files: buffer the open interval, write it at rotation,
//! keep index.json current, apply retention.
//!
//! Order at rotation, so that at every instant (and after a kill -9 at any
//! point) index.json claims no more than the files hold: new containers are
//! saved to the index first, then the data file is published (fsync,
//! rename, directory fsync), then retention plans its removals, the index is
//! saved with the new range, and only then are files removed. At start the
//! index is reconciled with the files on disk ([`reconcile`]).
//!
//! The open interval is also appended to its tail file every cycle
//! ([`crate::store::tail`]): the viewer reads it (live to the second), and a
//! crash loses at most the cycle being written (a kernel crash what came
//! after the last fsync, every `tail_sync`). At rotation the Parquet file is
//! published first, then the tail removed; at start a tail left by a crash
//! becomes a data file like any other ([`Recorder::recover_tails`]).
//!
//! Disk full: a file that cannot be written stays in memory and is retried at
//! the next rotation; at most two intervals are held (the open one and one
//! unwritten), older unwritten samples are dropped and counted. Collection
//! never stops for the disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::collector::Tracked;
use super::contract::{Cycle, PodMetadata};
use super::prometheus::SelfMetrics;
use super::short_ids::ShortIds;

mod hours;
mod reconcile;
use crate::store::datasets::{self, Buffer as DatasetBuffer};
use crate::store::index::{ContainerEntry, Index};
use crate::store::layout;
use crate::store::retention::{self, ArtefactKind, Kinds, Policy};
use crate::store::tail::{TailWriter, read_tail_file};
use crate::store::writer::{SampleBuffer, WriteError, write_data_file};

/// Index saves between rotations happen at most this often (enrichment, labels).
const INDEX_SAVE_EVERY: Duration = Duration::from_secs(10);
/// A new container is saved to the index sooner, so the viewer lists (and
/// names) it while its first samples are on screen.
const INDEX_SAVE_NEW_EVERY: Duration = Duration::from_secs(2);

/// Where and how the recorder writes.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    pub data_dir: PathBuf,
    pub node: String,
    pub rotation: Duration,
    pub policy: Policy,
    /// How often the tail file is fsynced.
    pub tail_sync: Duration,
}

/// What the recorder tells other parts of the agent (the export uploader, #19).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// A data file was published (renamed into place, directory synced).
    Published(PathBuf),
    /// Retention removed a file of artefact kind `kind` (see [`ArtefactKind::name`]).
    Removed {
        path: PathBuf,
        kind: &'static str,
        reason: retention::Reason,
    },
}

/// Other parts of the agent hooked into the recorder from its first
/// retention pass on (the export uploader's records and queue).
#[derive(Debug, Default)]
pub struct RecorderHooks {
    /// More kinds of files under the retention budget.
    pub artefacts: Kinds,
    /// Told of every data file published and every file retention removes.
    /// A closed receiver only loses the hints.
    pub events: Option<tokio::sync::mpsc::UnboundedSender<StoreEvent>>,
}

/// The store side of the agent.
pub struct Recorder {
    config: RecorderConfig,
    open: SampleBuffer,
    open_start: Option<DateTime<Utc>>,
    /// A finished interval whose file could not be written yet.
    unwritten: Option<(DateTime<Utc>, SampleBuffer)>,
    /// The open interval's rows of the datasets beside the metrics file:
    /// pods' interfaces, IO per device.
    open_datasets: [DatasetBuffer; 3],
    /// The open interval's tail file, from its first samples on.
    tail: Option<TailWriter>,
    /// The unwritten interval's tail: removed once its file is written (or dropped).
    unwritten_tail: Option<PathBuf>,
    last_tail_sync: Option<DateTime<Utc>>,
    /// A tail write failed and was logged (logged again once one succeeds).
    tail_failing: bool,
    index: Index,
    /// Short ids that are not the natural 12 characters (prefix collisions).
    short_ids: ShortIds,
    index_dirty: bool,
    /// A container was added since the last save.
    index_grew: bool,
    last_index_save: Option<DateTime<Utc>>,
    pod_metadata: Option<Arc<dyn PodMetadata>>,
    metrics: SelfMetrics,
    /// Everything retention covers (see [`Recorder::register_artefacts`]).
    kinds: Kinds,
    /// A file operation was refused a descriptor since the last
    /// [`Recorder::take_descriptor_shortage`].
    descriptors_short: bool,
    /// Where [`StoreEvent`]s go.
    events: Option<tokio::sync::mpsc::UnboundedSender<StoreEvent>>,
    /// Which hours need their summary file written.
    hour_summaries: hours::HourSummaries,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("config", &self.config)
            .field("rows", &self.open.rows())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Loads the existing index (a corrupt one is moved aside and reported),
    /// reconciles it with the files on disk, removes in-progress files a
    /// crash left behind and applies retention.
    pub fn new(
        config: RecorderConfig,
        pod_metadata: Option<Arc<dyn PodMetadata>>,
        metrics: SelfMetrics,
        now: DateTime<Utc>,
    ) -> Self {
        Self::with_hooks(config, pod_metadata, metrics, now, RecorderHooks::default())
    }

    /// [`Recorder::new`] with `hooks` in place before the first retention pass.
    pub fn with_hooks(
        config: RecorderConfig,
        pod_metadata: Option<Arc<dyn PodMetadata>>,
        metrics: SelfMetrics,
        now: DateTime<Utc>,
        hooks: RecorderHooks,
    ) -> Self {
        let rotation_sec = config.rotation.as_secs().max(1);
        let path = layout::index_path(&config.data_dir);
        let index = match Index::load(&path) {
            Ok(Some(mut index)) => {
                index.data_range.rotation_interval_sec = rotation_sec;
                index
            }
            Ok(None) => Index::empty(now, rotation_sec),
            Err(e) => {
                let aside = config.data_dir.join("index.json.corrupt");
                tracing::error!(error = %e, moved_to = %aside.display(), "index.json unreadable; starting a new index from the files on disk (pod names of past containers are lost)");
                metrics.write_error("index");
                let _ = std::fs::rename(&path, &aside);
                Index::empty(now, rotation_sec)
            }
        };
        reconcile::remove_stale_in_progress(&config.data_dir, &config.node);
        reconcile::report_foreign(&config.data_dir);
        let mut recorder = Self {
            config,
            open: SampleBuffer::new(),
            open_start: None,
            unwritten: None,
            open_datasets: [
                DatasetBuffer::new(&datasets::NETWORK),
                DatasetBuffer::new(&datasets::DEVICES),
                DatasetBuffer::new(&datasets::PROCESSES),
            ],
            tail: None,
            unwritten_tail: None,
            last_tail_sync: None,
            tail_failing: false,
            short_ids: ShortIds::from_index(&index),
            index,
            index_dirty: true,
            index_grew: false,
            last_index_save: None,
            pod_metadata,
            metrics,
            kinds: retention::default_kinds(),
            descriptors_short: false,
            events: hooks.events,
            hour_summaries: hours::HourSummaries::default(),
        };
        recorder.kinds.extend(hooks.artefacts);
        recorder.recover_tails();
        recorder.reconcile(now);
        recorder.apply_retention(now);
        recorder
    }

    /// Tails a crash left behind become data files like any other (exported
    /// too); a tail whose data file was published already is removed.
    fn recover_tails(&mut self) {
        let dir = &self.config.data_dir.clone();
        let Ok(listing) = layout::list_data_files(dir, None) else {
            return;
        };
        for stale in listing
            .superseded
            .iter()
            .filter(|t| t.node == self.config.node)
        {
            if let Err(e) = std::fs::remove_file(&stale.path) {
                tracing::warn!(path = %stale.path.display(), error = %e, "cannot remove a tail whose data file exists");
            }
        }
        let node = self.config.node.clone();
        let tails: Vec<_> = listing
            .tails
            .into_iter()
            .filter(|t| t.node == node)
            .collect();
        for tail in tails {
            let (buffer, end) = match read_tail_file(&tail.path) {
                Ok(read) => read,
                Err(e) => {
                    tracing::error!(error = %e, "cannot recover a tail file (left in place)");
                    self.metrics.write_error("corrupt_file");
                    continue;
                }
            };
            tracing::info!(path = %tail.path.display(), rows = buffer.rows(), end = ?end, "recovering the open interval a crash left as a tail file");
            // A published file never names a container the index lacks: the crash
            // may have come before the tail's new containers were saved.
            if let Some((first, last)) = buffer.span() {
                let mut added = false;
                for id in buffer.ids() {
                    if !self.index.containers.contains_key(id) {
                        self.index
                            .containers
                            .insert(id.to_string(), ContainerEntry::seen(id, first, last));
                        added = true;
                    }
                }
                if added {
                    self.save_index(last);
                }
            }
            match write_data_file(dir, &self.config.node, tail.start, &buffer) {
                Ok(written) => {
                    if let Some(file) = written {
                        self.metrics.file_written(file.bytes);
                        self.index.extend_range(file.first, file.last);
                        self.tell(StoreEvent::Published(file.path));
                    }
                    remove_tail(&tail.path);
                }
                Err(e) => {
                    log_write_error(&e);
                    // Retried at the next rotation; the tail stays until then.
                    if self.unwritten.is_none() {
                        self.unwritten = Some((tail.start, buffer));
                        self.unwritten_tail = Some(tail.path);
                    }
                }
            }
        }
    }

    /// Makes the index's range match the files on disk.
    fn reconcile(&mut self, now: DateTime<Utc>) {
        let tolerance = self.tolerance();
        let outcome = reconcile::reconcile(
            &mut self.index,
            &self.config.data_dir,
            &self.config.node,
            now,
            tolerance,
        );
        for e in &outcome.unreadable {
            tracing::error!(error = %e, "unreadable data file (skipped; the viewer skips it too; retention removes it in time)");
            self.metrics.write_error("corrupt_file");
        }
        if outcome.future > 0 {
            tracing::warn!(
                files = outcome.future,
                "data files dated in the future (the wall clock was stepped back): removed by retention"
            );
        }
        if outcome.changed {
            tracing::info!(files = outcome.files, earliest = ?self.index.data_range.earliest, latest = ?self.index.data_range.latest, "index.json reconciled with the data files on disk");
            self.index_dirty = true;
        }
    }

    fn tolerance(&self) -> Duration {
        retention::future_tolerance(self.config.rotation)
    }

    /// Puts another kind of file under the retention budget (e.g. upload records).
    pub fn register_artefacts(&mut self, kind: Arc<dyn ArtefactKind>) {
        self.kinds.push(kind);
    }

    /// Whether a file operation ran out of descriptors since the last call
    /// (the collector then closes kept cgroup files to free some).
    pub fn take_descriptor_shortage(&mut self) -> bool {
        std::mem::take(&mut self.descriptors_short)
    }

    /// Counts a failed file operation of `kind`, as `descriptors` when the
    /// kernel refused a descriptor.
    fn file_error(&mut self, kind: &str, e: Option<&std::io::Error>) {
        if e.is_some_and(crate::agent::fds::is_exhaustion) {
            self.descriptors_short = true;
            self.metrics.write_error("descriptors");
        } else {
            self.metrics.write_error(kind);
        }
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Drops the containers of namespaces the pod metadata says are not
    /// selected, so neither the files nor the published cycle carry them.
    pub fn filter(&self, cycle: &mut Cycle) {
        let Some(meta) = &self.pod_metadata else {
            return;
        };
        cycle.containers.retain(|c| {
            meta.lookup(&c.full_id)
                .and_then(|info| meta.namespace_selected(&info.namespace))
                != Some(false)
        });
    }

    /// Adds a cycle: rotates first when the open interval is over, then
    /// buffers the samples and updates the index entries. A sample whose
    /// short id is taken in the index by another container gets its unique
    /// one here (so the published cycle carries it too).
    pub fn record(
        &mut self,
        cycle: &mut Cycle,
        tracked: &std::collections::BTreeMap<String, Tracked>,
    ) {
        let Some(ts) = cycle.timestamp else {
            return;
        };
        if let Some(start) = self.open_start {
            let due = chrono::Duration::from_std(self.config.rotation).unwrap_or_default();
            if ts - start >= due {
                self.rotate(ts);
            }
        }
        let ms = ts.timestamp_millis();
        if !cycle.containers.is_empty() && self.open_start.is_none() {
            self.open_start = Some(self.free_start(ts));
        }
        for sample in &mut cycle.containers {
            if let Some(unique) =
                self.short_ids
                    .resolve(&sample.full_id, &sample.short_id, &self.index)
            {
                sample.short_id = unique;
            }
            self.open.push(ms, &sample.short_id, &sample.values);
            self.update_entry(sample, tracked.get(&sample.cgroup_path), ts);
        }
        if !cycle.containers.is_empty() {
            self.append_tail(ts, cycle);
        }
        self.buffer_datasets(ms, cycle);
        let since_save = self
            .last_index_save
            .map(|last| (ts - last).to_std().unwrap_or_default());
        let every = if self.index_grew {
            INDEX_SAVE_NEW_EVERY
        } else {
            INDEX_SAVE_EVERY
        };
        if self.index_dirty && since_save.is_none_or(|d| d >= every) {
            self.save_index(ts);
        }
    }

    /// The first second from `ts` on that names neither a data file nor a
    /// tail (a restart within the second of the last file, a recovered tail).
    fn free_start(&self, ts: DateTime<Utc>) -> DateTime<Utc> {
        let (dir, node) = (&self.config.data_dir, &self.config.node);
        let mut start = ts;
        while layout::data_file_path(dir, node, start).exists()
            || layout::tail_file_path(dir, node, start).exists()
        {
            start += chrono::Duration::seconds(1);
        }
        start
    }

    /// Appends the cycle to the open interval's tail (created with its first
    /// samples), fsyncing every `tail_sync`. A failure is counted and logged
    /// once; the samples are still in memory for the Parquet file.
    fn append_tail(&mut self, ts: DateTime<Utc>, cycle: &Cycle) {
        let Some(start) = self.open_start else {
            return;
        };
        if self.tail.is_none() {
            let path = layout::tail_file_path(&self.config.data_dir, &self.config.node, start);
            let created = path
                .parent()
                .map_or(Ok(()), |dir| {
                    crate::store::durable::create_dir_all_synced(dir, &self.config.data_dir)
                })
                .and_then(|()| TailWriter::create(&path));
            match created {
                Ok(tail) => self.tail = Some(tail),
                Err(e) => {
                    self.tail_error(&e);
                    return;
                }
            }
        }
        let Some(tail) = self.tail.as_mut() else {
            return;
        };
        let rows = cycle
            .containers
            .iter()
            .map(|c| (c.short_id.as_str(), c.values.as_slice()));
        let mut result = tail
            .append(ts.timestamp_millis(), rows)
            .map(|bytes| self.metrics.tail_written(bytes));
        let due = self
            .last_tail_sync
            .is_none_or(|last| (ts - last).to_std().unwrap_or_default() >= self.config.tail_sync);
        if result.is_ok() && due {
            self.last_tail_sync = Some(ts);
            result = tail.sync();
        }
        match result {
            Ok(()) if self.tail_failing => {
                self.tail_failing = false;
                tracing::info!("the tail file is written again");
            }
            Ok(()) => {}
            Err(e) => self.tail_error(&e),
        }
    }

    fn tail_error(&mut self, e: &std::io::Error) {
        self.file_error(
            if e.raw_os_error() == Some(28) {
                "disk_full"
            } else {
                "tail"
            },
            Some(e),
        );
        if !self.tail_failing {
            self.tail_failing = true;
            tracing::warn!(error = %e, "cannot write the tail file: the newest seconds are not on screen, and a crash would lose the open interval (its samples are still written at rotation)");
        }
    }

    fn update_entry(
        &mut self,
        sample: &super::contract::ContainerSample,
        tracked: Option<&Tracked>,
        ts: DateTime<Utc>,
    ) {
        // A sandbox is named after its pod (it has no container name of its own).
        let info = self
            .pod_metadata
            .as_ref()
            .and_then(|m| super::contract::identity_of(m.as_ref(), sample));
        // An entry without a cgroup path came from a recovered tail file alone:
        // completed from the first live sighting, its first sighting kept.
        let first_seen = self
            .index
            .containers
            .get(&sample.short_id)
            .map_or(ts, |e| e.first_seen.min(ts));
        let entry = match self.index.containers.get_mut(&sample.short_id) {
            Some(entry) if entry.cgroup_path.is_some() => entry,
            _ => {
                let c = tracked.map(|t| &t.container);
                let plain = c.is_some_and(|c| c.runtime.is_none() && c.pod_uid.is_none());
                self.index_dirty = true;
                self.index_grew = true;
                put_entry(
                    &mut self.index.containers,
                    sample.short_id.clone(),
                    ContainerEntry {
                        full_id: sample.full_id.clone(),
                        pod_uid: c.and_then(|c| c.pod_uid.clone()),
                        qos_class: c.and_then(|c| c.qos_class).unwrap_or("").to_string(),
                        first_seen,
                        last_seen: ts,
                        pod_name: None,
                        namespace: None,
                        labels: None,
                        // `local` mode names a plain cgroup by its path.
                        container_name: plain.then(|| sample.full_id.clone()),
                        cgroup_path: Some(sample.cgroup_path.clone()),
                        runtime: c.and_then(|c| c.runtime).map(str::to_string),
                        sandbox: false,
                        requests: None,
                    },
                )
            }
        };
        entry.last_seen = ts;
        if let Some(sandbox) = tracked.and_then(|t| t.sandbox)
            && entry.sandbox != sandbox
        {
            entry.sandbox = sandbox;
            self.index_dirty = true;
        }
        if let Some(info) = info {
            let container_name =
                (!info.container_name.is_empty()).then_some(info.container_name.as_str());
            // Compared in place: this runs for every container every cycle and
            // should allocate only when the identity actually changed.
            let same_labels = entry.labels.as_ref().is_some_and(|known| {
                known.len() == info.labels.len()
                    && info.labels.iter().all(|(k, v)| known.get(k) == Some(v))
            });
            let changed = entry.pod_name.as_deref() != Some(info.pod_name.as_str())
                || entry.namespace.as_deref() != Some(info.namespace.as_str())
                || entry.container_name.as_deref() != container_name
                || entry.requests != info.requests
                || !same_labels;
            if changed {
                entry.pod_name = Some(info.pod_name.clone());
                entry.namespace = Some(info.namespace.clone());
                entry.container_name = container_name.map(str::to_string);
                entry.labels = Some(
                    info.labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                );
                if !info.pod_uid.is_empty() {
                    entry.pod_uid = Some(info.pod_uid.clone());
                }
                entry.requests = info.requests;
                self.index_dirty = true;
            }
        }
    }

    /// Completes the open interval: writes its file (and a previously
    /// unwritten one), updates the index, applies retention.
    pub fn rotate(&mut self, now: DateTime<Utc>) {
        // A published file never names a container the index lacks.
        if self.index_dirty {
            self.save_index(now);
        }
        if let Some((start, buffer)) = self.unwritten.take() {
            if let Err(buffer) = self.write(start, buffer) {
                // Still failing: the older interval gives way to the newer one.
                self.metrics.samples_dropped(buffer.rows() as u64);
                tracing::warn!(rows = buffer.rows(), %start, "dropping an unwritten interval: the disk is still full or failing");
            }
            if let Some(path) = self.unwritten_tail.take() {
                remove_tail(&path);
            }
        }
        let tail = self.tail.take().map(|t| t.path().to_path_buf());
        self.last_tail_sync = None;
        if let Some(start) = self.open_start {
            self.write_datasets(start);
        }
        if let Some(start) = self.open_start.take() {
            let buffer = std::mem::take(&mut self.open);
            match self.write(start, buffer) {
                // Published first, then the tail goes: a reader finding both reads the file.
                Ok(()) => tail.iter().for_each(|p| remove_tail(p)),
                Err(buffer) => {
                    self.unwritten = Some((start, buffer));
                    self.unwritten_tail = tail;
                }
            }
        } else if let Some(path) = tail {
            remove_tail(&path);
        }
        self.apply_retention(now);
    }

    /// Adds a cycle's pod interfaces, device IO and processes to the open
    /// interval's datasets.
    fn buffer_datasets(&mut self, ms: i64, cycle: &Cycle) {
        let [network, devices, processes] = &mut self.open_datasets;
        for p in &cycle.processes {
            processes.push_parts(
                ms,
                &p.container,
                &[&p.command, p.event.as_str()],
                &[
                    Some(i64::from(p.pid)),
                    Some(p.start_ms),
                    p.nspid,
                    Some(i64::from(p.ppid)),
                    Some(p.cpu_usec),
                    Some(p.rss_bytes),
                    Some(p.threads),
                    p.memory.pss_bytes,
                    p.memory.uss_bytes,
                    p.memory.swap_bytes,
                ],
            );
        }
        for i in &cycle.network {
            let counters = i.counters.map(Some);
            network.push_parts(
                ms,
                &i.sandbox,
                &[&i.pod_uid, i.interface.as_str()],
                &counters,
            );
        }
        for c in &cycle.containers {
            for d in &c.devices {
                let numbers;
                let name = match d.name.as_deref() {
                    Some(name) => name,
                    None => {
                        numbers = format!("{}:{}", d.major, d.minor);
                        &numbers
                    }
                };
                devices.push_parts(
                    ms,
                    &c.short_id,
                    &[name],
                    &[
                        Some(i64::from(d.major)),
                        Some(i64::from(d.minor)),
                        d.read_bytes,
                        d.write_bytes,
                        d.read_ops,
                        d.write_ops,
                    ],
                );
            }
        }
    }

    /// Writes the open interval's dataset files (same start as its metrics
    /// file). Not kept for a retry: a failure drops those rows, counted.
    fn write_datasets(&mut self, start: DateTime<Utc>) {
        for i in 0..self.open_datasets.len() {
            let mut buffer = self.open_datasets[i].take();
            match datasets::write(&self.config.data_dir, &self.config.node, start, &mut buffer) {
                Ok(Some((path, bytes))) => {
                    self.metrics.file_written(bytes);
                    self.tell(StoreEvent::Published(path));
                }
                Ok(None) => {}
                Err(e) => {
                    self.metrics.samples_dropped(buffer.rows() as u64);
                    self.metrics
                        .write_error(if e.is_disk_full() { "disk_full" } else { "io" });
                    tracing::warn!(error = %e, rows = buffer.rows(), "cannot write a dataset file beside the metrics file; its rows are dropped");
                }
            }
        }
    }

    /// Writes one interval; gives the buffer back when it could not be written.
    fn write(&mut self, start: DateTime<Utc>, buffer: SampleBuffer) -> Result<(), SampleBuffer> {
        // Names have one-second resolution: never replace an existing file (a
        // restart within the second of the last file, a retried interval).
        let mut start = start;
        while layout::data_file_path(&self.config.data_dir, &self.config.node, start).exists() {
            start += chrono::Duration::seconds(1);
        }
        match write_data_file(&self.config.data_dir, &self.config.node, start, &buffer) {
            Ok(Some(file)) => {
                self.metrics.file_written(file.bytes);
                self.index.extend_range(file.first, file.last);
                self.index_dirty = true;
                tracing::debug!(path = %file.path.display(), bytes = file.bytes, rows = file.rows, "data file written");
                self.tell(StoreEvent::Published(file.path.clone()));
                self.summarise_hours(start);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                if e.is_descriptor_shortage() {
                    self.descriptors_short = true;
                    self.metrics.write_error("descriptors");
                } else {
                    self.metrics
                        .write_error(if e.is_disk_full() { "disk_full" } else { "io" });
                }
                log_write_error(&e);
                Err(buffer)
            }
        }
    }

    /// Writes the hour summaries due now that the file starting at `start` is
    /// written. A failure costs only speed (the viewer joins the footers):
    /// logged and counted, the hour tried again when it next comes due.
    fn summarise_hours(&mut self, start: DateTime<Utc>) {
        let (dir, node) = (&self.config.data_dir, &self.config.node);
        let due = self.hour_summaries.after_write(dir, node, start);
        let (written, failed) = hours::summarise(dir, node, &due);
        for path in written {
            tracing::debug!(path = %path.display(), "hour summary written");
        }
        for (hour, e) in failed {
            tracing::warn!(%hour, error = %e, "cannot write an hour summary; the viewer joins that hour's file footers instead");
            self.metrics.write_error("hour_summary");
        }
    }

    /// Plans retention over every kind of artefact, saves the index with the
    /// range that remains, then removes the files (in that order, so the
    /// index never names removed data).
    fn apply_retention(&mut self, now: DateTime<Utc>) {
        if retention::prune_index(&mut self.index, now, self.config.policy.max_age) > 0 {
            self.short_ids.retain_indexed(&self.index);
            self.index_dirty = true;
        }
        let plan = retention::plan(
            &self.config.data_dir,
            &self.config.node,
            now,
            self.config.policy,
            self.tolerance(),
            &self.kinds,
        );
        for (path, e) in &plan.errors {
            tracing::warn!(path = %path.display(), error = %e, "retention could not list or inspect files");
            self.file_error("retention", Some(e));
        }
        let (earliest, _) = plan.data_kept();
        let range = &mut self.index.data_range;
        if range.earliest != earliest {
            range.earliest = earliest;
            if earliest.is_none() {
                range.latest = None;
            }
        }
        // Never a "latest" in the future (a clock step back).
        if range.latest.is_some_and(|l| l > now) {
            range.latest = Some(now);
        }
        self.save_index(now);
        let (removed, errors) = retention::remove(&plan);
        for (path, reason) in &removed {
            tracing::info!(path = %path.display(), reason = reason.as_str(), "retention removed a file");
            self.metrics.retention_deleted(reason.as_str());
            if let Some(artefact) = plan.artefacts.iter().find(|a| a.path == *path) {
                self.tell(StoreEvent::Removed {
                    path: path.clone(),
                    kind: artefact.kind,
                    reason: *reason,
                });
            }
        }
        for (path, e) in &errors {
            tracing::warn!(path = %path.display(), error = %e, "retention could not remove a file");
            self.file_error("retention", Some(e));
        }
        for (kind, bytes) in plan.bytes_kept(&self.kinds) {
            self.metrics.reliability().set_data_bytes(kind, bytes);
        }
    }

    fn tell(&self, event: StoreEvent) {
        if let Some(events) = &self.events {
            // Closed (the uploader stopped): only the hint is lost; its rescans find files.
            let _ = events.send(event);
        }
    }

    fn save_index(&mut self, now: DateTime<Utc>) {
        self.index.updated_at = now;
        match self.index.save(&layout::index_path(&self.config.data_dir)) {
            Ok(()) => {
                self.index_dirty = false;
                self.index_grew = false;
                self.last_index_save = Some(now);
            }
            Err(e) => {
                let source = match &e {
                    crate::store::index::IndexError::Write { source, .. } => Some(source),
                    _ => None,
                };
                self.file_error("index", source);
                tracing::warn!(error = %e, "cannot save index.json; will retry");
                self.last_index_save = Some(now);
            }
        }
    }

    /// Clean shutdown: the open interval becomes a file, the index is saved.
    pub fn finish(&mut self, now: DateTime<Utc>) {
        self.rotate(now);
    }

    /// Rows held in memory (open plus unwritten).
    pub fn rows_in_memory(&self) -> usize {
        self.open.rows() + self.unwritten.as_ref().map_or(0, |(_, b)| b.rows())
    }
}

/// Sets `key` to `value` (replacing an entry a recovered tail made) and returns it.
fn put_entry(
    map: &mut std::collections::BTreeMap<String, ContainerEntry>,
    key: String,
    value: ContainerEntry,
) -> &mut ContainerEntry {
    match map.entry(key) {
        std::collections::btree_map::Entry::Occupied(mut o) => {
            o.insert(value);
            o.into_mut()
        }
        std::collections::btree_map::Entry::Vacant(v) => v.insert(value),
    }
}

/// Removes a tail whose interval is published (or given up); a tail left by a
/// failure here is removed at the next start, as its data file exists.
fn remove_tail(path: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove a tail file");
    }
}

fn log_write_error(e: &WriteError) {
    if e.is_disk_full() {
        tracing::error!(error = %e, "disk full: keeping the samples in memory and retrying at the next rotation");
    } else {
        tracing::error!(error = %e, "cannot write data file; retrying at the next rotation");
    }
}

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;
