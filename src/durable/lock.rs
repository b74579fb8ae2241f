//! The writer lock (spec §6): one writer at a time holds an exclusive `flock`; readers probe it
//! with a shared one released at once.

use crate::error::{Error, Result};
use std::fs::{File, TryLockError};
use std::path::Path;

/// Takes the exclusive writer lock of an open file, or fails with [`Error::Locked`]. Readers
/// probe the lock with a shared lock they release at once (to tell a live file from an
/// interrupted one): a taken lock is tried again for 50 ms, so a probe at this moment never
/// makes the writer fail (spec §6).
pub(crate) fn lock_exclusive(file: &File, path: &Path) -> Result<()> {
    const RETRY: std::time::Duration = std::time::Duration::from_millis(1);
    const PATIENCE: std::time::Duration = std::time::Duration::from_millis(50);
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if started.elapsed() < PATIENCE => std::thread::sleep(RETRY),
            Err(TryLockError::WouldBlock) => return Err(Error::Locked { path: path.to_path_buf() }),
            Err(TryLockError::Error(e)) => return Err(Error::from(e).with_path(path)),
        }
    }
}

/// Whether another handle holds the exclusive writer lock.
pub(crate) fn writer_holds_lock(file: &File) -> bool {
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(TryLockError::WouldBlock) => true,
        Err(TryLockError::Error(_)) => false,
    }
}
