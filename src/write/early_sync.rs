//! Early syncs: while a session records, a helper thread makes what was written durable every
//! [`EARLY_SYNC_BYTES`], so that the session's own syncs (each interval, and at the end) find
//! little left to do.
//!
//! A sync's cost grows with the bytes written since the last one (on the virtual disks we
//! measure on, the host writes them out only when asked to flush), and a sync on the recording
//! or write-behind thread holds up the recording for all of it. Spread over the session on a
//! thread of its own, that work overlaps the recording instead of following it. Measured on
//! ext4 (2-core VM, medians of 5): 1M frames of 100 bytes written and finished in 290–326 →
//! 214–227 ms (the raw `BufWriter` limit: 168–186 ms), 256 frames of 1 MiB in 416 → 288 ms.
//!
//! Early syncs promise nothing (the durability policy's syncs do), but they can see a write-back
//! error that Linux then reports to nobody else; the first one is kept and every later sync of
//! the session fails with it. The session's own syncs run under the same lock as the early
//! ones, so an error is never reported to an early sync after a session's sync has looked.

use crate::storage::SyncHandle;
use crate::threads::{lock, Helper};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// Bytes written between two early syncs (measured best of 8, 16 and 32 MiB).
pub(crate) const EARLY_SYNC_BYTES: u64 = 16 << 20;

/// The first failed early sync (kind and message). Held during every sync, early or the
/// session's own, so that the two never run at once.
type Syncing = Mutex<Option<(io::ErrorKind, String)>>;

/// The helper thread; dropping it waits for the sync in progress and stops the thread.
pub(crate) struct EarlySync {
    syncing: Arc<Syncing>,
    /// Bytes written since the last sync was asked for or made.
    unsynced: AtomicU64,
    wake: Option<SyncSender<()>>,
    thread: Helper,
}

impl EarlySync {
    /// Starts the helper thread syncing through `handle`; `None` if no thread can be had.
    pub fn start(handle: SyncHandle) -> Option<EarlySync> {
        let syncing = Arc::new(Syncing::default());
        // One request can wait while a sync runs; more would only sync the same bytes again.
        let (wake, requests) = sync_channel::<()>(1);
        let for_thread = syncing.clone();
        let thread = Helper::spawn("recfile-early-sync", move || {
            while requests.recv().is_ok() {
                let mut failure = lock(&for_thread);
                if let Err(e) = handle.sync() {
                    failure.get_or_insert((e.kind(), e.to_string()));
                }
            }
        })
        .ok()?;
        Some(EarlySync { syncing, unsynced: AtomicU64::new(0), wake: Some(wake), thread })
    }

    /// Counts `bytes` just written; asks for an early sync each [`EARLY_SYNC_BYTES`].
    pub fn wrote(&self, bytes: u64) {
        let before = self.unsynced.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) >= EARLY_SYNC_BYTES {
            self.unsynced.store(0, Ordering::Relaxed);
            if let Some(wake) = &self.wake {
                // Full: a request is already waiting, and it will sync these bytes too.
                if let Err(TrySendError::Disconnected(())) = wake.try_send(()) {
                    lock(&self.syncing).get_or_insert((io::ErrorKind::Other, "the early-sync thread stopped".into()));
                }
            }
        }
    }

    /// Runs the session's own `sync` while no early sync runs, then reports it or the first
    /// failed early sync. The bytes counted so far are synced by it: a session that syncs often
    /// (`EveryCheckpoint`) never asks for an early sync.
    pub fn exclusive(&self, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let failure = lock(&self.syncing);
        sync()?;
        self.unsynced.store(0, Ordering::Relaxed);
        match &*failure {
            Some((kind, msg)) => Err(io::Error::new(*kind, format!("an early sync failed: {msg}"))),
            None => Ok(()),
        }
    }
}

impl Drop for EarlySync {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once its current sync is done.
        self.wake = None;
        self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    /// A handle that counts its syncs.
    fn counting() -> (SyncHandle, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        let c = count.clone();
        (
            SyncHandle::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }),
            count,
        )
    }

    #[test]
    fn a_sync_is_asked_for_each_time_the_bytes_written_reach_the_step() {
        const MIB: u64 = 1 << 20;
        // Dropping the helper carries out the requests already made (the channel hands over
        // what it holds before it reports the close), so the counts are exact bounds.
        for (writes, each, at_least, at_most) in [
            (0, 0, 0, 0),
            (1, EARLY_SYNC_BYTES - 1, 0, 0),
            (1, EARLY_SYNC_BYTES, 1, 1),
            (17, MIB, 1, 1),
            (48, MIB, 1, 3),
            (3, 40 * MIB, 1, 3),
        ] {
            let (handle, count) = counting();
            let early = EarlySync::start(handle).expect("thread");
            for _ in 0..writes {
                early.wrote(each);
            }
            drop(early);
            let n = count.load(Ordering::SeqCst);
            assert!((at_least..=at_most).contains(&n), "{writes} writes of {each} bytes: {n} syncs");
        }
    }

    #[test]
    fn a_session_sync_starts_the_count_again() {
        let (handle, count) = counting();
        let early = EarlySync::start(handle).expect("thread");
        for _ in 0..3 {
            early.wrote(EARLY_SYNC_BYTES - 1);
            early.exclusive(|| Ok(())).expect("sync");
        }
        early.wrote(1);
        drop(early);
        assert_eq!(count.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_failed_early_sync_fails_every_later_session_sync() {
        let early = EarlySync::start(SyncHandle::new(|| Err(io::Error::other("the disk went away")))).expect("thread");
        assert!(early.exclusive(|| Ok(())).is_ok(), "no early sync has run yet");
        early.wrote(EARLY_SYNC_BYTES);
        let deadline = Instant::now() + Duration::from_secs(20);
        let err = loop {
            match early.exclusive(|| Ok(())) {
                Err(e) => break e,
                Ok(()) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                Ok(()) => panic!("the failed early sync was never reported"),
            }
        };
        assert!(err.to_string().contains("an early sync failed") && err.to_string().contains("the disk went away"), "{err}");
        let again = early.exclusive(|| Ok(())).expect_err("the failure stays");
        assert!(again.to_string().contains("the disk went away"), "{again}");
    }

    #[test]
    fn the_session_sync_reports_its_own_error_first() {
        let (handle, _) = counting();
        let early = EarlySync::start(handle).expect("thread");
        let err = early.exclusive(|| Err(io::Error::new(io::ErrorKind::StorageFull, "full"))).expect_err("passed on");
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn early_syncs_and_session_syncs_never_overlap() {
        let busy = Arc::new(AtomicBool::new(false));
        let overlaps = Arc::new(AtomicU64::new(0));
        let enter = {
            let (busy, overlaps) = (busy.clone(), overlaps.clone());
            move || {
                if busy.swap(true, Ordering::SeqCst) {
                    overlaps.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_micros(200));
                busy.store(false, Ordering::SeqCst);
            }
        };
        let for_handle = enter.clone();
        let count = Arc::new(AtomicU64::new(0));
        let counted = count.clone();
        let early = EarlySync::start(SyncHandle::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            for_handle();
            Ok(())
        }))
        .expect("thread");
        for _ in 0..200 {
            early.wrote(EARLY_SYNC_BYTES);
            early
                .exclusive(|| {
                    enter();
                    Ok(())
                })
                .expect("sync");
        }
        drop(early);
        assert!(count.load(Ordering::SeqCst) > 0, "some early syncs ran");
        assert_eq!(overlaps.load(Ordering::SeqCst), 0, "a session sync ran during an early one");
    }
}
