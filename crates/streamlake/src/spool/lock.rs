//! The lock that keeps two processes from using one spool folder.
//!
//! `spool.lock` in the folder is locked exclusively (an advisory `flock` on Unix, `LockFileEx`
//! on Windows) for as long as the spool is open and holds the owner's process id for error
//! messages. The operating system releases the lock when the process exits, even after a
//! crash, so a stale lock file never blocks a restart.

use super::error::SpoolError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Name of the lock file.
pub(crate) const FILE_NAME: &str = "spool.lock";

/// An exclusive lock on a spool folder, held until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Locks `dir`, failing at once with [`SpoolError::Locked`] if another handle holds it.
pub(crate) fn acquire(dir: &Path) -> Result<DirLock, SpoolError> {
    let path = dir.join(FILE_NAME);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| SpoolError::io("open lock file", &path, e))?;
    // `File::try_lock` is stable since Rust 1.89 (the workspace's rust-version).
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(SpoolError::Locked {
                dir: dir.to_path_buf(),
                holder: (!holder.is_empty()).then(|| holder.to_owned()),
            });
        }
        Err(TryLockError::Error(e)) => return Err(SpoolError::io("lock", &path, e)),
    }
    let note = format!("pid {}\n", std::process::id());
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(note.as_bytes()))
        .map_err(|e| SpoolError::io("write lock file", &path, e))?;
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_until_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).unwrap();
        let err = acquire(dir.path()).unwrap_err();
        match &err {
            SpoolError::Locked { dir: d, holder } => {
                assert_eq!(d, dir.path());
                assert_eq!(
                    holder.as_deref(),
                    Some(format!("pid {}", std::process::id()).as_str())
                );
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        let _again = acquire(dir.path()).unwrap();
    }
}
