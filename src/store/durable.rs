//! Making renames and new directories survive a power cut: a rename is only
//! durable once the directory holding the new name is fsynced, and a new
//! directory once its parent is. Every publishing rename in the store goes
//! through here.

use std::io;
use std::path::Path;

/// fsyncs a directory (its entries: names created, renamed or removed).
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// `create_dir_all`, then fsync of every directory it created and of the
/// parent of the first, up to `base` (which must exist).
pub fn create_dir_all_synced(dir: &Path, base: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // The ancestors that do not exist yet, nearest to `base` last.
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.is_dir() && cur != base {
        missing.push(cur);
        match cur.parent() {
            Some(parent) => cur = parent,
            None => break,
        }
    }
    std::fs::create_dir_all(dir)?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent() {
            sync_dir(parent)?;
        }
    }
    sync_dir(dir)
}

/// Renames `from` to `to` and fsyncs `to`'s directory: the new name survives
/// a crash right after this returns.
pub fn rename_synced(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::rename(from, to)?;
    match to.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_nested_directories_and_renames_into_them() {
        let base = tempfile::tempdir().unwrap();
        let deep = base.path().join("dt=2026-01-01/identifier=n");
        create_dir_all_synced(&deep, base.path()).unwrap();
        assert!(deep.is_dir());
        create_dir_all_synced(&deep, base.path()).unwrap();
        let tmp = deep.join("a.tmp");
        std::fs::write(&tmp, b"x").unwrap();
        rename_synced(&tmp, &deep.join("a")).unwrap();
        assert_eq!(std::fs::read(deep.join("a")).unwrap(), b"x");
        assert!(!tmp.exists());
        let err = rename_synced(&tmp, &deep.join("b")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
