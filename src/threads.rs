//! Helper threads that belong to the process that started them, and the lock their owners share
//! state under.
//!
//! A child forked while a helper runs (Python's `os.fork`, multiprocessing) has a copy of the
//! helper's owner but not the thread: it must neither wait for the thread nor touch its handle
//! (joining or detaching a thread of another process is undefined), so [`Helper::join`] leaves
//! the handle alone there, and owners ask [`Helper::forked`] before waiting on the thread.

use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;

/// A named thread, joined only in the process that started it.
#[derive(Debug)]
pub(crate) struct Helper {
    thread: Option<JoinHandle<()>>,
    process: u32,
}

impl Helper {
    /// Starts `f` on a thread named `name`; the OS's error when no thread can be had.
    pub fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<Helper> {
        let thread = std::thread::Builder::new().name(name.into()).spawn(f)?;
        Ok(Helper { thread: Some(thread), process: std::process::id() })
    }

    /// The process that started the thread.
    pub fn process(&self) -> u32 {
        self.process
    }

    /// Whether this is a process forked after the thread started (the thread is not in it).
    pub fn forked(&self) -> bool {
        self.process != std::process::id()
    }

    /// Wakes the thread from `std::thread::park` (or makes its next park return at once).
    /// Not in a forked process, where the thread is not.
    pub fn unpark(&self) {
        if let (Some(t), false) = (&self.thread, self.forked()) {
            t.thread().unpark();
        }
    }

    /// Waits for the thread to end (its owner has told it to stop); in a forked process returns
    /// at once and forgets the handle.
    pub fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            if self.forked() {
                std::mem::forget(t);
            } else {
                let _ = t.join();
            }
        }
    }
}

/// Why a session recorded by `process` refuses to be used in a process forked from it.
pub(crate) fn forked_session(process: u32) -> String {
    format!("the session is recorded by process {process}; a process forked from it cannot write to it")
}

/// Locks `m`, also when a thread panicked holding it: the state guarded here stays consistent at
/// every point a panic could leave it (counters, queues, a first error).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
