use super::*;
use std::collections::BTreeMap;

/// A v2 hierarchy in a temp dir with one cgroup `a` holding `files`, and its plan.
fn v2_cgroup(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, Vec<PlannedFile>) {
    let dir = tempfile::tempdir().unwrap();
    let cg = dir.path().join("a");
    std::fs::create_dir(&cg).unwrap();
    for (name, text) in files {
        std::fs::write(cg.join(name), text).unwrap();
    }
    let h = Hierarchies {
        v2: Some(dir.path().to_path_buf()),
        v2_has_controllers: true,
        v1: BTreeMap::new(),
    };
    (dir, cg, plan(&h))
}

#[test]
fn reads_files_null_when_missing_and_gone_when_removed() {
    let (_dir, cg, plan) = v2_cgroup(&[
        ("cgroup.controllers", "cpu memory"),
        ("cpu.stat", "usage_usec 7\nuser_usec 5\nsystem_usec 2\n"),
        ("memory.current", "1000\n"),
        ("memory.stat", "anon 600\nfile 300\ninactive_file 100\n"),
        ("memory.max", "max\n"),
        ("cgroup.procs", "11\n12\n"),
    ]);
    let mut errors = ReadErrors::default();
    let mut files = ContainerFiles::open(&plan, "a", &mut errors).unwrap();
    assert_eq!(files.len(), 5);
    let (mut buf, mut v) = (Vec::new(), Values::new());
    files.read(&mut buf, &mut v, &mut errors, true).unwrap();
    assert_eq!(v.get(slots::CPU_USAGE), Some(7));
    assert_eq!(v.get(slots::MEMORY_WORKING_SET), Some(900));
    assert_eq!(v.get(slots::MEMORY_LIMIT), None, "max = unlimited = null");
    assert_eq!(v.get(slots::PIDS), None, "missing file = null, not zero");
    assert_eq!(v.get(slots::PROCESSES), Some(2));
    assert_eq!(errors, ReadErrors::default());
    assert!(ContainerFiles::open(&plan, "missing", &mut errors).is_err());
    // A file bigger than the scratch buffer is read whole.
    let big: String = (0..2000).map(|i| format!("k{i} {i}\n")).collect();
    std::fs::write(cg.join("memory.stat"), format!("{big}anon 5\n")).unwrap();
    files.read(&mut buf, &mut v, &mut errors, true).unwrap();
    assert_eq!(v.get(slots::MEMORY_ANON), Some(5));
}

#[test]
fn hybrid_plan_reads_v1_numbers_and_unified_pressure() {
    let h = Hierarchies {
        v2: Some(PathBuf::from("/u")),
        v2_has_controllers: false,
        v1: BTreeMap::from([
            ("cpu".to_string(), PathBuf::from("/c")),
            ("cpuacct".to_string(), PathBuf::from("/c")),
            ("memory".to_string(), PathBuf::from("/m")),
        ]),
    };
    let sources: Vec<(PathBuf, Source)> =
        plan(&h).into_iter().map(|p| (p.root, p.source)).collect();
    assert!(sources.contains(&(PathBuf::from("/c"), Source::V1CpuacctUsage)));
    assert!(sources.contains(&(PathBuf::from("/u"), Source::CpuPressure)));
    assert!(!sources.iter().any(|(_, s)| *s == Source::V2CpuStat));
    // Processes from one v1 hierarchy (no pids controller here: cpu), never twice.
    let procs: Vec<_> = sources
        .iter()
        .filter(|(_, s)| *s == Source::Procs)
        .collect();
    assert_eq!(procs, [&(PathBuf::from("/c"), Source::Procs)]);
}

#[test]
fn unreadable_procs_is_null_and_other_metrics_stay() {
    let (_dir, cg, plan) =
        v2_cgroup(&[("memory.current", "1000\n"), ("cgroup.procs", "1\n2\n3\n")]);
    let mut errors = ReadErrors::default();
    let mut files = ContainerFiles::open(&plan, "a", &mut errors).unwrap();
    let (mut buf, mut v) = (Vec::new(), Values::new());
    files.read(&mut buf, &mut v, &mut errors, true).unwrap();
    assert_eq!(v.get(slots::PROCESSES), Some(3));
    // Content that is not a pid list (the file cannot be read as one): null.
    std::fs::write(cg.join("cgroup.procs"), "garbage\n").unwrap();
    files.read(&mut buf, &mut v, &mut errors, true).unwrap();
    assert_eq!(v.get(slots::PROCESSES), None);
    assert_eq!(v.get(slots::MEMORY_CURRENT), Some(1000));
}

#[test]
fn limits_are_read_on_request_and_carried_forward() {
    let (_dir, cg, plan) = v2_cgroup(&[
        ("memory.current", "1000\n"),
        ("memory.max", "4096\n"),
        ("cpu.max", "max 100000\n"),
    ]);
    let mut errors = ReadErrors::default();
    let mut files = ContainerFiles::open(&plan, "a", &mut errors).unwrap();
    let (mut buf, mut v) = (Vec::new(), Values::new());
    // The first sample reads the limits even when not asked to.
    files.read(&mut buf, &mut v, &mut errors, false).unwrap();
    assert_eq!(v.get(slots::MEMORY_LIMIT), Some(4096));
    assert_eq!(v.get(slots::CPU_PERIOD_USEC), Some(100_000));
    assert_eq!(v.get(slots::CPU_QUOTA_USEC), None);
    std::fs::write(cg.join("memory.max"), "8192\n").unwrap();
    std::fs::write(cg.join("memory.current"), "2000\n").unwrap();
    files.read(&mut buf, &mut v, &mut errors, false).unwrap();
    assert_eq!(
        v.get(slots::MEMORY_CURRENT),
        Some(2000),
        "read every sample"
    );
    assert_eq!(v.get(slots::MEMORY_LIMIT), Some(4096), "carried forward");
    assert_eq!(
        v.get(slots::CPU_PERIOD_USEC),
        Some(100_000),
        "carried forward"
    );
    files.read(&mut buf, &mut v, &mut errors, true).unwrap();
    assert_eq!(v.get(slots::MEMORY_LIMIT), Some(8192), "re-read on request");
    assert_eq!(errors, ReadErrors::default());
}
