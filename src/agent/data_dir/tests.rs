//! Real files on this machine. Changing owners needs root (CAP_CHOWN): the
//! tests that do fail naming that when run as another user.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

use super::*;

const AGENT: u32 = 65532;

fn require_root() {
    assert_eq!(
        effective_uid(),
        0,
        "this test changes file owners and needs root (CAP_CHOWN)"
    );
}

fn owner(path: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
}

/// A data directory as a root agent left it: index, a day directory, a Parquet file.
fn old_root_data(dir: &Path) {
    std::fs::write(dir.join("index.json"), "{}").unwrap();
    let node = dir.join("dt=2026-01-01/identifier=node-1");
    std::fs::create_dir_all(&node).unwrap();
    std::fs::write(node.join("metrics-20260101T000000Z.parquet"), "x").unwrap();
}

#[test]
fn the_agent_refuses_a_symlinked_or_foreign_data_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    check_owned(&real).unwrap();

    let link = tmp.path().join("link");
    symlink(&real, &link).unwrap();
    let e = check_owned(&link).unwrap_err();
    assert!(matches!(e, DataDirError::Symlink { .. }), "{e}");
    assert!(e.to_string().contains("link"), "{e}");

    let file = tmp.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert!(matches!(
        check_owned(&file).unwrap_err(),
        DataDirError::NotADirectory { .. }
    ));

    if effective_uid() == 0 {
        chown(&real, 4242);
        let e = check_owned(&real).unwrap_err();
        assert!(
            matches!(
                e,
                DataDirError::NotOwned {
                    owner: 4242,
                    me: 0,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("prepare-data-dir"), "{e}");
    }
}

#[test]
fn prepare_hands_an_old_root_tree_to_the_agent() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    old_root_data(&data);
    let report = prepare(&data, AGENT, AGENT).unwrap();
    assert_eq!(report.changed, 5, "{report:?}");
    assert_eq!(report.skipped_total, 0, "{report:?}");
    for p in [
        data.clone(),
        data.join("index.json"),
        data.join("dt=2026-01-01"),
        data.join("dt=2026-01-01/identifier=node-1"),
        data.join("dt=2026-01-01/identifier=node-1/metrics-20260101T000000Z.parquet"),
    ] {
        assert_eq!(owner(&p), (AGENT, AGENT), "{}", p.display());
    }
    // Idempotent: a second run changes nothing.
    let again = prepare(&data, AGENT, AGENT).unwrap();
    assert_eq!((again.changed, again.unchanged), (0, 5));
}

#[test]
fn prepare_follows_no_link_and_takes_no_other_file() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    // Files outside the data directory that links inside point at.
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let secret = outside.join("shadow");
    std::fs::write(&secret, "secret").unwrap();
    let outside_dir = outside.join("dir");
    std::fs::create_dir(&outside_dir).unwrap();

    symlink(&secret, data.join("file-link")).unwrap();
    symlink(&outside_dir, data.join("dt=2026-01-02")).unwrap();
    std::fs::hard_link(&secret, data.join("hard-link")).unwrap();
    let user_file = data.join("someone-elses");
    std::fs::write(&user_file, "").unwrap();
    chown(&user_file, 1000);
    let fifo = data.join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    old_root_data(&data);

    let report = prepare(&data, AGENT, AGENT).unwrap();
    let reasons: std::collections::BTreeMap<String, Skip> = report
        .skipped
        .iter()
        .map(|(p, why)| (p.file_name().unwrap().to_string_lossy().into_owned(), *why))
        .collect();
    assert_eq!(reasons.get("file-link"), Some(&Skip::Symlink));
    assert_eq!(reasons.get("dt=2026-01-02"), Some(&Skip::Symlink));
    assert_eq!(reasons.get("hard-link"), Some(&Skip::HardLink));
    assert_eq!(reasons.get("someone-elses"), Some(&Skip::OtherOwner));
    assert_eq!(reasons.get("fifo"), Some(&Skip::Special));
    // Nothing outside changed owner, nor the links themselves, nor the other user's file.
    assert_eq!(owner(&secret), (0, 0));
    assert_eq!(owner(&outside_dir), (0, 0));
    assert_eq!(owner(&data.join("file-link")), (0, 0));
    assert_eq!(owner(&user_file), (1000, 1000));
    // The agent's own files did.
    assert_eq!(owner(&data.join("index.json")), (AGENT, AGENT));
    assert_eq!(owner(&data), (AGENT, AGENT));
}

#[test]
fn prepare_refuses_a_symlinked_or_foreign_directory() {
    require_root();
    let tmp = tempfile::tempdir().unwrap();
    let etc_like = tmp.path().join("etc");
    std::fs::create_dir(&etc_like).unwrap();
    std::fs::write(etc_like.join("passwd"), "root:x:0:0").unwrap();
    let link = tmp.path().join("data");
    symlink(&etc_like, &link).unwrap();
    let e = prepare(&link, AGENT, AGENT).unwrap_err();
    assert!(matches!(e, DataDirError::Symlink { .. }), "{e}");
    assert_eq!(owner(&etc_like.join("passwd")), (0, 0), "untouched");

    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("notes"), "").unwrap();
    chown(&home, 1000);
    let e = prepare(&home, AGENT, AGENT).unwrap_err();
    assert!(
        matches!(e, DataDirError::Foreign { owner: 1000, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("refusing"), "{e}");
    assert_eq!(owner(&home.join("notes")), (0, 0), "untouched");
}

#[test]
fn prepare_reads_directories_root_cannot_list_without_dac() {
    require_root();
    // A private directory of the agent (0700): root traverses it with DAC_READ_SEARCH.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let private = data.join("events");
    std::fs::create_dir(&private).unwrap();
    std::fs::write(private.join("events-2026-01-01.jsonl"), "").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let report = prepare(&data, AGENT, AGENT).unwrap();
    assert_eq!(report.changed, 3, "{report:?}");
    assert_eq!(
        owner(&private.join("events-2026-01-01.jsonl")),
        (AGENT, AGENT)
    );
}
