use super::*;
use chrono::TimeZone;

fn entry(file: &str, bytes: u64) -> Entry {
    Entry {
        file: file.into(),
        key: format!("p/{file}"),
        bytes,
        sha256: "00".into(),
        at: Utc.with_ymd_and_hms(2026, 1, 2, 10, 0, 0).unwrap(),
    }
}

#[test]
fn survives_reload_last_line_wins_torn_lines_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
    let mut r = Record::load(dir.path());
    assert!(r.is_empty());
    r.append(day, entry("dt=2026-01-02/identifier=n/a.parquet", 10))
        .unwrap();
    r.append(day, entry("events/events-2026-01-02.jsonl", 5))
        .unwrap();
    r.append(day, entry("events/events-2026-01-02.jsonl", 9))
        .unwrap();
    // A crash mid-append leaves a torn last line.
    let path = record_file(&dir.path().join(RECORD_DIR), day);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"{\"file\":\"dt=2026-01-02/ident").unwrap();
    let r = Record::load(dir.path());
    assert_eq!(r.len(), 2);
    assert_eq!(r.skipped_lines, 1);
    assert_eq!(r.get("events/events-2026-01-02.jsonl").unwrap().bytes, 9);
    assert!(r.get("dt=2026-01-02/identifier=n/a.parquet").is_some());
    assert!(r.last_upload().is_some());
}

#[test]
fn records_fall_under_retention_once_their_day_is_gone() {
    use crate::store::retention::{self, Policy};
    let dir = tempfile::tempdir().unwrap();
    let d1 = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let d2 = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
    std::fs::create_dir_all(dir.path().join("dt=2026-01-02")).unwrap();
    let mut r = Record::load(dir.path());
    r.append(d1, entry("dt=2026-01-01/identifier=n/a.parquet", 1))
        .unwrap();
    r.append(d2, entry("dt=2026-01-02/identifier=n/b.parquet", 1))
        .unwrap();
    let listed = UploadRecords
        .list(dir.path(), "n", Utc::now())
        .expect("list");
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .all(|a| a.kind == ARTEFACT_KIND && a.bytes > 0)
    );
    let protected: Vec<bool> = {
        let mut l = listed.clone();
        l.sort_by_key(|a| a.start);
        l.iter().map(|a| a.protected).collect()
    };
    assert_eq!(
        protected,
        [false, true],
        "kept while its day's data is there"
    );
    // A budget of one byte: only the record of the day that is gone goes.
    let policy = Policy {
        max_age: std::time::Duration::from_secs(3600 * 24 * 3650),
        max_bytes: Some(1),
    };
    let now = Utc.with_ymd_and_hms(2026, 1, 3, 0, 0, 0).unwrap();
    let kinds: retention::Kinds = vec![std::sync::Arc::new(UploadRecords)];
    let plan = retention::plan(
        dir.path(),
        "n",
        now,
        policy,
        std::time::Duration::from_secs(300),
        &kinds,
    );
    assert_eq!(plan.doomed.len(), 1);
    assert!(plan.doomed[0].0.ends_with("uploaded-2026-01-01.jsonl"));
    retention::remove(&plan);
    // The uploader forgets the day whose record retention removed.
    r.prune(dir.path());
    assert!(r.get("dt=2026-01-01/identifier=n/a.parquet").is_none());
    assert!(r.get("dt=2026-01-02/identifier=n/b.parquet").is_some());
}

#[test]
fn a_day_is_forgotten_once_its_data_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let d1 = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let d2 = NaiveDate::from_ymd_opt(2026, 1, 2).unwrap();
    std::fs::create_dir_all(dir.path().join("dt=2026-01-02")).unwrap();
    let mut r = Record::load(dir.path());
    r.append(d1, entry("dt=2026-01-01/identifier=n/a.parquet", 1))
        .unwrap();
    r.append(d2, entry("dt=2026-01-02/identifier=n/b.parquet", 1))
        .unwrap();
    let removed = r.prune(dir.path());
    assert_eq!(removed.len(), 1);
    assert!(r.get("dt=2026-01-01/identifier=n/a.parquet").is_none());
    assert!(r.get("dt=2026-01-02/identifier=n/b.parquet").is_some());
    assert_eq!(Record::load(dir.path()).len(), 1);
}
