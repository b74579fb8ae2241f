//! Write-behind: a session's writes (and interval syncs) reach the OS from a background thread,
//! in the order they were made, so the recording thread does not wait on `write` or `fsync`
//! system calls. The recording thread copies and checksums frames while the previous
//! checkpoint interval is being written: on two cores, throughput is that of the slower of the
//! two instead of their sum.
//!
//! Ordering is what crash safety rests on, and one thread doing every job first-in first-out
//! keeps it: the storage sees exactly the operations, in exactly the order, that synchronous
//! writing would have made. Reads see queued bytes (they are overlaid on what the storage
//! holds), so the writer can read back its own recent checkpoints without waiting. After a
//! failed job nothing later is written (a later checkpoint must never land without the data
//! before it); the error is reported by the next call.

use super::early_sync::EarlySync;
use crate::storage::{Storage, View};
use crate::threads::{lock, Helper};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// The pool of piece buffers, allocated (and touched) when the session starts so that the
/// writer's memory is the same for a short session as for a long one.
const POOL: usize = 4;

/// How long a thread that must wait for the other spins before it sleeps. A sleep and wake-up
/// through the kernel costs tens of microseconds on virtual machines, as long as writing a
/// whole piece, so short waits (a checkpoint waiting for the one before it) spin. The
/// background thread spins as long when it runs out of work: waking it would cost the
/// recording thread a system call per piece (measured: 20 µs of spinning made 100-byte
/// writes 10 % slower than 100 µs). At a low rate this spends at most 100 µs per piece.
const CALLER_SPIN: Duration = Duration::from_micros(100);
const WORKER_SPIN: Duration = Duration::from_micros(100);

/// Spins until `moved` says the other thread made progress, or `limit` has passed.
fn spin_until(limit: Duration, moved: impl Fn() -> bool) {
    let start = Instant::now();
    let mut round = 0u32;
    while !moved() {
        std::hint::spin_loop();
        round = round.wrapping_add(1);
        if round.is_multiple_of(64) && start.elapsed() >= limit {
            return;
        }
    }
}

enum Job {
    Write { offset: u64, data: Vec<u8> },
    Sync,
}

impl Job {
    fn bytes(&self) -> usize {
        match self {
            Job::Write { data, .. } => data.len(),
            Job::Sync => 0,
        }
    }
}

#[derive(Default)]
struct Queue {
    /// Jobs not started yet, with their tickets.
    pending: VecDeque<(u64, Job)>,
    /// The byte range of the write being carried out, if any.
    in_progress: Option<(u64, u64)>,
    /// Bytes held by pending jobs and the one in progress.
    queued_bytes: usize,
    /// Whether the background thread sleeps, and how many callers do (only then is a
    /// wake-up sent).
    worker_asleep: bool,
    callers_asleep: usize,
    /// The first failure, and the ticket of the job that failed; every later job is dropped.
    failed: Option<(io::ErrorKind, String)>,
    failed_ticket: Option<u64>,
    spare: Vec<Vec<u8>>,
    stop: bool,
}

struct Shared {
    storage: Mutex<Box<dyn Storage>>,
    queue: Mutex<Queue>,
    /// Tickets handed out, and the last one carried out (tickets are consecutive). Changed
    /// under the queue's lock; read without it by spinning threads.
    issued: AtomicU64,
    done: AtomicU64,
    /// Set with `Queue::failed`, for the same lock-free readers.
    failed: AtomicBool,
    /// Syncs what was written every so often on a thread of its own (sessions that sync).
    early: Option<EarlySync>,
    /// The background thread waits here for jobs, callers wait here for progress.
    work: Condvar,
    progress: Condvar,
}

impl Shared {
    /// Waits (spinning first) until `ready` holds.
    fn wait_until<'a>(&'a self, mut q: MutexGuard<'a, Queue>, ready: impl Fn(&Queue) -> bool) -> MutexGuard<'a, Queue> {
        loop {
            if ready(&q) || q.failed.is_some() {
                return q;
            }
            let seen = self.done.load(Ordering::Acquire);
            drop(q);
            spin_until(CALLER_SPIN, || self.done.load(Ordering::Acquire) != seen);
            q = lock(&self.queue);
            if ready(&q) || q.failed.is_some() || self.done.load(Ordering::Acquire) != seen {
                continue;
            }
            q.callers_asleep += 1;
            q = self.progress.wait(q).unwrap_or_else(|e| e.into_inner());
            q.callers_asleep -= 1;
        }
    }
}

fn failure(f: &(io::ErrorKind, String)) -> io::Error {
    io::Error::new(f.0, format!("an earlier background write failed: {}", f.1))
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// The write-behind queues of the sessions recording in this process, by file identity (device,
/// inode), so that a reader opening the same file here first waits for what is queued: in one
/// process, a reader sees every checkpoint the writer has made, as with synchronous writes.
static LIVE: Mutex<Vec<(FileId, Weak<Shared>)>> = Mutex::new(Vec::new());

/// A file's device and inode numbers.
pub(crate) type FileId = (u64, u64);

/// The identity of an open file.
pub(crate) fn file_identity(file: &std::fs::File) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

/// Waits until the queues of the sessions of this process that write `file` are carried out.
pub(crate) fn settle_queued_writes(file: &std::fs::File) {
    let Some(id) = file_identity(file) else { return };
    let queues: Vec<Arc<Shared>> = {
        let mut live = lock(&LIVE);
        live.retain(|(_, w)| w.strong_count() > 0);
        live.iter().filter(|(i, _)| *i == id).filter_map(|(_, w)| w.upgrade()).collect()
    };
    for shared in queues {
        let ticket = shared.issued.load(Ordering::Acquire);
        drop(shared.wait_until(lock(&shared.queue), |_| shared.done.load(Ordering::Acquire) >= ticket));
    }
}

/// The background thread and what it shares; dropping it finishes the queue and joins.
pub(crate) struct Worker {
    shared: Arc<Shared>,
    thread: Helper,
}

impl Drop for Worker {
    fn drop(&mut self) {
        lock(&self.shared.queue).stop = true;
        self.shared.work.notify_all();
        self.thread.join();
    }
}

/// The storage a session writes through: either straight to the recorder's storage, or
/// through the write-behind thread.
pub(crate) enum SessionStorage {
    Direct(Box<dyn Storage>),
    Behind { worker: Worker, budget: usize },
}

/// An empty buffer of the pool's capacity whose pages are already resident (written, not just
/// allocated: zeroed allocations come from untouched pages), so that the writer's memory does
/// not creep up as a long session uses more of each buffer.
pub(crate) fn touched_buffer() -> Vec<u8> {
    let mut b = Vec::with_capacity(PIECE_CAPACITY);
    b.resize(PIECE_CAPACITY, 0xA5);
    b.clear();
    b
}

/// Capacity of the buffers handed back by [`SessionStorage::write_buffer`] and kept for reuse:
/// a 256 KiB piece plus what a checkpoint or the final index appends before the next hand-over
/// (they hand over at 128 KiB, after appending up to 64 KiB more), so that buffers do not grow.
pub(crate) const PIECE_CAPACITY: usize = 576 * 1024;

impl SessionStorage {
    /// Wraps `storage`; with `background`, starts the writer thread. `budget` bounds the bytes
    /// queued (a single larger write is still accepted). With `early_syncs` too (a session that
    /// syncs) and a storage that has a [`Storage::sync_handle`], what is written is also synced
    /// every [`super::early_sync::EARLY_SYNC_BYTES`] on a thread of its own.
    /// The storage grows in large steps ahead of the session's writes until it is given back
    /// ([`Storage::reserve_ahead`]; the session cuts the reserve off at its end).
    pub fn new(mut storage: Box<dyn Storage>, background: bool, budget: usize, early_syncs: bool) -> SessionStorage {
        storage.reserve_ahead(true);
        if !background {
            return SessionStorage::Direct(storage);
        }
        let early = if early_syncs { storage.sync_handle().and_then(EarlySync::start) } else { None };
        let spare = (0..POOL).map(|_| touched_buffer()).collect();
        let shared = Arc::new(Shared {
            storage: Mutex::new(storage),
            queue: Mutex::new(Queue { spare, ..Queue::default() }),
            issued: AtomicU64::new(0),
            done: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            early,
            work: Condvar::new(),
            progress: Condvar::new(),
        });
        let for_thread = shared.clone();
        match Helper::spawn("recfile-write-behind", move || run(&for_thread)) {
            Ok(thread) => SessionStorage::Behind { worker: Worker { shared, thread }, budget },
            // No thread to be had: write synchronously instead (the closure, and its clone of
            // `shared`, was dropped with the failed spawn).
            Err(_) => match Arc::try_unwrap(shared) {
                Ok(s) => SessionStorage::Direct(s.storage.into_inner().unwrap_or_else(|e| e.into_inner())),
                Err(shared) => SessionStorage::Direct(Box::new(SharedStorage(shared))),
            },
        }
    }

    /// Makes the queue known to readers opening the file `id` in this process (see [`LIVE`]).
    pub fn register(&self, id: FileId) {
        if let SessionStorage::Behind { worker, .. } = self {
            let mut live = lock(&LIVE);
            live.retain(|(_, w)| w.strong_count() > 0);
            live.push((id, Arc::downgrade(&worker.shared)));
        }
    }

    /// Hands `buf` to be written at `offset` and leaves an empty buffer in its place; in the
    /// background mode the bytes are not copied.
    pub fn write_buffer(&mut self, offset: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        match self {
            SessionStorage::Direct(s) => {
                s.write_at(offset, buf)?;
                buf.clear();
                Ok(())
            }
            SessionStorage::Behind { worker, budget } => {
                let mut q = lock(&worker.shared.queue);
                let fresh = q.spare.pop().unwrap_or_else(|| Vec::with_capacity(PIECE_CAPACITY));
                let data = std::mem::replace(buf, fresh);
                submit(&worker.shared, q, *budget, Job::Write { offset, data })
            }
        }
    }

    /// Asks for a sync after every write so far without waiting for it (the synchronous mode
    /// syncs now).
    pub fn sync_later(&mut self) -> io::Result<()> {
        match self {
            SessionStorage::Direct(s) => s.sync(),
            SessionStorage::Behind { worker, budget } => submit(&worker.shared, lock(&worker.shared.queue), *budget, Job::Sync),
        }
    }

    /// A ticket for every job handed in so far, to wait for with [`SessionStorage::wait_for`].
    pub fn ticket(&self) -> u64 {
        match self {
            SessionStorage::Direct(_) => 0,
            SessionStorage::Behind { worker, .. } => worker.shared.issued.load(Ordering::Acquire),
        }
    }

    /// Waits until the jobs up to `ticket` are carried out; reports a failed job.
    pub fn wait_for(&self, ticket: u64) -> io::Result<()> {
        let SessionStorage::Behind { worker, .. } = self else {
            return Ok(());
        };
        let shared = &worker.shared;
        if shared.done.load(Ordering::Acquire) >= ticket && !shared.failed.load(Ordering::Acquire) {
            return Ok(());
        }
        let q = shared.wait_until(lock(&shared.queue), |_| shared.done.load(Ordering::Acquire) >= ticket);
        match &q.failed {
            Some(f) => Err(failure(f)),
            None => Ok(()),
        }
    }

    /// Whether the jobs up to `ticket` reached the storage: waits for them, and is false when
    /// one of them failed (unlike [`SessionStorage::wait_for`], a failure of a later job does
    /// not count).
    pub fn reached(&self, ticket: u64) -> bool {
        let SessionStorage::Behind { worker, .. } = self else {
            return true;
        };
        let shared = &worker.shared;
        if shared.done.load(Ordering::Acquire) >= ticket && !shared.failed.load(Ordering::Acquire) {
            return true;
        }
        let q = shared.wait_until(lock(&shared.queue), |_| shared.done.load(Ordering::Acquire) >= ticket);
        // After a failure, later jobs are dropped at once, so the queue reaches `ticket`.
        q.failed_ticket.is_none_or(|failed| failed > ticket)
    }

    /// Writes `data` from the calling thread once the queue is carried out (for large frames,
    /// which a copy into the queue would cost more than it saves).
    pub fn write_direct(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.after_drain_mut(|s| s.write_at(offset, data))?;
        if let SessionStorage::Behind { worker, .. } = self {
            if let Some(early) = &worker.shared.early {
                early.wrote(data.len() as u64);
            }
        }
        Ok(())
    }

    /// Waits until everything handed in so far has reached the OS.
    pub fn drain(&self) -> io::Result<()> {
        self.wait_for(self.ticket())
    }

    /// Finishes the queued jobs, stops the thread and gives the storage back, no longer
    /// reserving ahead.
    pub fn into_inner(self) -> Box<dyn Storage> {
        let mut storage = self.into_storage();
        storage.reserve_ahead(false);
        storage
    }

    fn into_storage(self) -> Box<dyn Storage> {
        match self {
            SessionStorage::Direct(s) => s,
            SessionStorage::Behind { worker, .. } => {
                let shared = worker.shared.clone();
                drop(worker);
                match Arc::try_unwrap(shared) {
                    Ok(s) => s.storage.into_inner().unwrap_or_else(|e| e.into_inner()),
                    // Only if the thread could not be joined; its storage stays shared.
                    Err(shared) => Box::new(SharedStorage(shared)),
                }
            }
        }
    }

    /// Runs `f` on the storage once every queued job is carried out.
    fn after_drain<T>(&self, f: impl FnOnce(&dyn Storage) -> io::Result<T>) -> io::Result<T> {
        self.drain()?;
        match self {
            SessionStorage::Direct(s) => f(s.as_ref()),
            SessionStorage::Behind { worker, .. } => f(lock(&worker.shared.storage).as_ref()),
        }
    }

    fn after_drain_mut<T>(&mut self, f: impl FnOnce(&mut dyn Storage) -> io::Result<T>) -> io::Result<T> {
        self.drain()?;
        match self {
            SessionStorage::Direct(s) => f(s.as_mut()),
            SessionStorage::Behind { worker, .. } => f(lock(&worker.shared.storage).as_mut()),
        }
    }
}

/// A storage still shared with a thread that could not be joined (it panicked): used
/// directly, under its lock.
struct SharedStorage(Arc<Shared>);

impl Storage for SharedStorage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        lock(&self.0.storage).read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        lock(&self.0.storage).write_at(offset, data)
    }
    fn len(&self) -> io::Result<u64> {
        lock(&self.0.storage).len()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        lock(&self.0.storage).set_len(len)
    }
    fn sync(&mut self) -> io::Result<()> {
        lock(&self.0.storage).sync()
    }
    fn reserve_ahead(&mut self, on: bool) {
        lock(&self.0.storage).reserve_ahead(on)
    }
    fn view(&self) -> io::Result<View> {
        lock(&self.0.storage).view()
    }
    fn read_all(&self) -> io::Result<Vec<u8>> {
        lock(&self.0.storage).read_all()
    }
}

/// Whether the pieces (start offset, bytes) cover all of `range`.
fn covers(pieces: &[(u64, Vec<u8>)], range: (u64, u64)) -> bool {
    let mut spans: Vec<(u64, u64)> = pieces.iter().map(|(at, b)| (*at, at + b.len() as u64)).collect();
    spans.sort_unstable();
    let mut reached = range.0;
    for (from, to) in spans {
        if from > reached {
            break;
        }
        reached = reached.max(to);
    }
    reached >= range.1
}

/// Copies the pieces into `buf` (which starts at file offset `offset`), in queue order.
fn lay_over(buf: &mut [u8], offset: u64, pieces: Vec<(u64, Vec<u8>)>) {
    for (at, bytes) in pieces {
        let start = (at - offset) as usize;
        buf[start..start + bytes.len()].copy_from_slice(&bytes);
    }
}

/// The session's own sync of `storage`, kept apart from the early syncs (see [`EarlySync`]).
fn sync_now(storage: &mut dyn Storage, early: Option<&EarlySync>) -> io::Result<()> {
    match early {
        Some(early) => early.exclusive(|| storage.sync()),
        None => storage.sync(),
    }
}

/// Queues a job, first waiting while the queue holds more than `budget` bytes.
fn submit<'a>(shared: &'a Shared, q: MutexGuard<'a, Queue>, budget: usize, job: Job) -> io::Result<()> {
    let mut q = shared.wait_until(q, |q| q.queued_bytes == 0 || q.queued_bytes + job.bytes() <= budget);
    if let Some(f) = &q.failed {
        return Err(failure(f));
    }
    let ticket = shared.issued.load(Ordering::Relaxed) + 1;
    shared.issued.store(ticket, Ordering::Release);
    q.queued_bytes += job.bytes();
    q.pending.push_back((ticket, job));
    if q.worker_asleep {
        shared.work.notify_one();
    }
    Ok(())
}

/// The background thread: carries out jobs in order until told to stop and the queue is empty.
fn run(shared: &Shared) {
    let mut q = lock(&shared.queue);
    loop {
        let Some((ticket, job)) = q.pending.pop_front() else {
            if q.stop {
                return;
            }
            let seen = shared.issued.load(Ordering::Acquire);
            drop(q);
            spin_until(WORKER_SPIN, || shared.issued.load(Ordering::Acquire) != seen);
            q = lock(&shared.queue);
            if q.pending.is_empty() && !q.stop {
                q.worker_asleep = true;
                q = shared.work.wait(q).unwrap_or_else(|e| e.into_inner());
                q.worker_asleep = false;
            }
            continue;
        };
        if let Job::Write { offset, data, .. } = &job {
            q.in_progress = Some((*offset, offset.saturating_add(data.len() as u64)));
        }
        let skip = q.failed.is_some();
        drop(q);
        let result = if skip {
            Ok(())
        } else {
            // A storage that panics fails the queue instead of leaving its waiters waiting.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut storage = lock(&shared.storage);
                match &job {
                    Job::Write { offset, data, .. } => {
                        storage.write_at(*offset, data)?;
                        if let Some(early) = &shared.early {
                            early.wrote(data.len() as u64);
                        }
                        Ok(())
                    }
                    Job::Sync => sync_now(storage.as_mut(), shared.early.as_ref()),
                }
            }))
            .unwrap_or_else(|_| Err(io::Error::other("the storage panicked")))
        };
        q = lock(&shared.queue);
        q.in_progress = None;
        q.queued_bytes -= job.bytes();
        if let Err(e) = result {
            let at = match &job {
                Job::Write { offset, data, .. } => format!("writing {} bytes at offset {offset}", data.len()),
                Job::Sync => "syncing".to_string(),
            };
            q.failed.get_or_insert((e.kind(), format!("{at}: {e}")));
            q.failed_ticket.get_or_insert(ticket);
            shared.failed.store(true, Ordering::Release);
        }
        if let Job::Write { mut data, .. } = job {
            // Small copies are not kept: the next piece would reallocate as it fills. Nothing
            // of the pool is freed, so the allocator never has to find room for a new one.
            if q.spare.len() < POOL && data.capacity() >= PIECE_CAPACITY {
                data.clear();
                q.spare.push(data);
            }
        }
        shared.done.store(ticket, Ordering::Release);
        if q.callers_asleep > 0 {
            shared.progress.notify_all();
        }
    }
}

impl Storage for SessionStorage {
    /// Reads what the storage will hold once the queue is carried out: the storage's bytes
    /// with the queued writes laid over them.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let SessionStorage::Behind { worker, .. } = self else {
            return self.after_drain(|s| s.read_at(offset, buf));
        };
        let shared = &worker.shared;
        let range = (offset, offset.saturating_add(buf.len() as u64));
        let mut overlay: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut queued_end: u64;
        let mut q = lock(&shared.queue);
        loop {
            if let Some(f) = &q.failed {
                return Err(failure(f));
            }
            overlay.clear();
            // A write in progress may extend the storage (with zeros before it).
            queued_end = q.in_progress.map_or(0, |r| r.1);
            for (_, job) in &q.pending {
                if let Job::Write { offset: at, data } = job {
                    let end = at.saturating_add(data.len() as u64);
                    queued_end = queued_end.max(end);
                    if overlaps((*at, end), range) {
                        let from = range.0.max(*at);
                        let to = range.1.min(end);
                        overlay.push((from, data[(from - at) as usize..(to - at) as usize].to_vec()));
                    }
                }
            }
            // Bytes still queued (the writer reading back its latest checkpoint) need neither
            // the storage nor the write in progress.
            if covers(&overlay, range) {
                drop(q);
                lay_over(buf, offset, overlay);
                return Ok(());
            }
            // A write in progress may be half done: wait for it rather than copy it.
            if !q.in_progress.is_some_and(|r| overlaps(r, range)) {
                break;
            }
            q = shared.wait_until(q, |q| !q.in_progress.is_some_and(|r| overlaps(r, range)));
        }
        drop(q);
        {
            // A job that starts after the copy above rewrites only bytes the overlay holds.
            let storage = lock(&shared.storage);
            let stored = storage.len()?;
            if range.1 > stored.max(queued_end) {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
            let readable = range.1.min(stored).saturating_sub(offset) as usize;
            if readable > 0 {
                storage.read_at(offset, &mut buf[..readable])?;
            }
            buf[readable..].fill(0);
        }
        lay_over(buf, offset, overlay);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        match self {
            SessionStorage::Direct(s) => s.write_at(offset, data),
            SessionStorage::Behind { worker, budget } => {
                let mut q = lock(&worker.shared.queue);
                // Pool buffers only for copies of about their size: a slot commit is 64 bytes.
                let copy = match q.spare.pop() {
                    Some(mut b) if data.len() >= PIECE_CAPACITY / 4 && data.len() <= PIECE_CAPACITY => {
                        b.extend_from_slice(data);
                        b
                    }
                    other => {
                        if let Some(b) = other {
                            q.spare.push(b);
                        }
                        data.to_vec()
                    }
                };
                submit(&worker.shared, q, *budget, Job::Write { offset, data: copy })
            }
        }
    }

    fn len(&self) -> io::Result<u64> {
        self.after_drain(|s| s.len())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.after_drain_mut(|s| s.set_len(len))
    }

    /// Waits for the queue, then syncs on the calling thread.
    fn sync(&mut self) -> io::Result<()> {
        self.drain()?;
        match self {
            SessionStorage::Direct(s) => s.sync(),
            SessionStorage::Behind { worker, .. } => sync_now(lock(&worker.shared.storage).as_mut(), worker.shared.early.as_ref()),
        }
    }

    fn view(&self) -> io::Result<View> {
        self.after_drain(|s| s.view())
    }

    fn read_all(&self) -> io::Result<Vec<u8>> {
        self.after_drain(|s| s.read_all())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    /// A storage that fails every write after the first `ok` ones, and with `early` hands out
    /// sync handles that count their syncs (and fail them when told to).
    struct FailAfter {
        inner: MemStorage,
        ok: usize,
        early: Option<(Arc<AtomicU64>, bool)>,
    }

    impl Storage for FailAfter {
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.inner.read_at(offset, buf)
        }
        fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
            if self.ok == 0 {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            self.ok -= 1;
            self.inner.write_at(offset, data)
        }
        fn len(&self) -> io::Result<u64> {
            self.inner.len()
        }
        fn set_len(&mut self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn sync(&mut self) -> io::Result<()> {
            self.inner.sync()
        }
        fn sync_handle(&self) -> Option<crate::storage::SyncHandle> {
            let (syncs, fail) = self.early.clone()?;
            Some(crate::storage::SyncHandle::new(move || {
                syncs.fetch_add(1, Ordering::SeqCst);
                if fail {
                    return Err(io::Error::other("the disk went away"));
                }
                Ok(())
            }))
        }
    }

    fn pseudo_random(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn reads_see_queued_writes_and_the_result_matches_direct_writes() {
        for budget in [1usize, 64, 1 << 20] {
            let mut behind = SessionStorage::new(Box::new(MemStorage::default()), true, budget, true);
            let mut model = MemStorage::default();
            let mut seed = 0x5eed_u64 + budget as u64;
            for step in 0..3000 {
                let offset = pseudo_random(&mut seed) % 4096;
                let len = (pseudo_random(&mut seed) % 200) as usize;
                let data: Vec<u8> = (0..len).map(|i| (step + i) as u8).collect();
                if step % 2 == 0 {
                    let mut buf = data.clone();
                    behind.write_buffer(offset, &mut buf).unwrap();
                    assert!(buf.is_empty());
                } else {
                    behind.write_at(offset, &data).unwrap();
                }
                model.write_at(offset, &data).unwrap();
                if step % 7 == 0 {
                    behind.sync_later().unwrap();
                }
                let at = pseudo_random(&mut seed) % 4400;
                let n = (pseudo_random(&mut seed) % 300) as usize;
                let (mut got, mut want) = (vec![0xAA; n], vec![0xAA; n]);
                let (g, w) = (behind.read_at(at, &mut got), model.read_at(at, &mut want));
                assert_eq!(g.is_ok(), w.is_ok(), "read of {n} at {at} after step {step}: {g:?} {w:?} len {:?}", model.len());
                if w.is_ok() {
                    assert_eq!(got, want, "read of {n} at {at} after step {step}");
                }
            }
            assert_eq!(behind.len().unwrap(), model.len().unwrap());
            let inner = behind.into_inner();
            assert_eq!(inner.read_all().unwrap(), model.data);
        }
    }

    #[test]
    fn syncs_are_carried_out_in_order_and_waits_return() {
        let disk = crate::storage::SimulatedDisk::new();
        let mut behind = SessionStorage::new(Box::new(disk.clone()), true, 1 << 20, true);
        behind.write_at(0, b"abc").unwrap();
        behind.sync_later().unwrap();
        behind.write_at(3, b"def").unwrap();
        let ticket = behind.ticket();
        behind.wait_for(ticket).unwrap();
        assert_eq!(
            disk.history(),
            vec![
                crate::storage::DiskOp::Write { offset: 0, data: b"abc".to_vec() },
                crate::storage::DiskOp::Sync,
                crate::storage::DiskOp::Write { offset: 3, data: b"def".to_vec() },
            ]
        );
    }

    #[test]
    fn a_failed_write_is_reported_and_nothing_after_it_is_written() {
        let mut behind = SessionStorage::new(Box::new(FailAfter { inner: MemStorage::default(), ok: 2, early: None }), true, 1 << 20, true);
        for i in 0..5u8 {
            // Later calls may already see the failure.
            let _ = behind.write_at(u64::from(i) * 2, &[i + 1; 2]);
        }
        let err = behind.drain().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert!(err.to_string().contains("writing 2 bytes at offset 4"), "{err}");
        assert!(behind.write_at(100, b"x").is_err());
        assert!(behind.sync().is_err());
        let inner = behind.into_inner();
        assert_eq!(inner.read_all().unwrap(), vec![1, 1, 2, 2]);
    }

    #[test]
    fn reached_tells_the_jobs_before_a_failure_from_the_failed_one_and_those_after() {
        let mut behind = SessionStorage::new(Box::new(FailAfter { inner: MemStorage::default(), ok: 2, early: None }), true, 1 << 20, true);
        let mut tickets = vec![];
        for i in 0..4u8 {
            let _ = behind.write_at(u64::from(i) * 2, &[i + 1; 2]);
            tickets.push(behind.ticket());
        }
        // Asked in any order, and again: only the two writes that reached the storage count.
        for &i in &[3usize, 0, 2, 1, 0, 3] {
            assert_eq!(behind.reached(tickets[i]), i < 2, "ticket of write {i}");
        }
        // wait_for is stricter: any failure so far fails it.
        assert!(behind.wait_for(tickets[0]).is_err());
    }

    struct Panicking;

    impl Storage for Panicking {
        fn read_at(&self, _: u64, _: &mut [u8]) -> io::Result<()> {
            Ok(())
        }
        fn write_at(&mut self, _: u64, _: &[u8]) -> io::Result<()> {
            panic!("storage bug")
        }
        fn len(&self) -> io::Result<u64> {
            Ok(0)
        }
        fn set_len(&mut self, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_panicking_storage_fails_the_queue_instead_of_hanging() {
        let mut behind = SessionStorage::new(Box::new(Panicking), true, 1 << 20, true);
        let _ = behind.write_at(0, b"x");
        let err = behind.drain().unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
        let _ = behind.into_inner();
    }

    #[test]
    fn direct_mode_writes_at_once() {
        let mut direct = SessionStorage::new(Box::new(MemStorage::default()), false, 0, true);
        let mut buf = b"hello".to_vec();
        direct.write_buffer(2, &mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(direct.ticket(), 0);
        direct.wait_for(0).unwrap();
        assert_eq!(direct.into_inner().read_all().unwrap(), b"\0\0hello".to_vec());
    }

    #[test]
    fn what_is_written_behind_or_directly_is_synced_early_only_when_asked() {
        const MIB: usize = 1 << 20;
        let piece: Vec<u8> = (0..MIB).map(|i| (i * 7) as u8).collect();
        for early in [true, false] {
            let syncs = Arc::new(AtomicU64::new(0));
            let storage = FailAfter { inner: MemStorage::default(), ok: usize::MAX, early: Some((syncs.clone(), false)) };
            let mut behind = SessionStorage::new(Box::new(storage), true, 4 * MIB, early);
            let mut at = 0u64;
            // 20 MiB through the queue, then 20 MiB written from the calling thread.
            for _ in 0..20 {
                let mut buf = piece.clone();
                behind.write_buffer(at, &mut buf).unwrap();
                at += MIB as u64;
            }
            behind.drain().unwrap();
            // One request, at 16 MiB: wait for its sync, so that the next is not merged with it.
            let deadline = Instant::now() + Duration::from_secs(20);
            while early && syncs.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            let after_queue = syncs.load(Ordering::SeqCst);
            for _ in 0..20 {
                behind.write_direct(at, &piece).unwrap();
                at += MIB as u64;
            }
            let inner = behind.into_inner();
            let all = syncs.load(Ordering::SeqCst);
            let data = inner.read_all().unwrap();
            assert_eq!(data.len(), 40 * MIB);
            assert!(data.chunks(MIB).all(|c| c == &piece[..]));
            if early {
                // 16 MiB steps: one within the first 20 MiB, the next by 40 MiB.
                assert_eq!((after_queue, all), (1, 2), "early syncs after the queued writes, after the direct ones");
            } else {
                assert_eq!(all, 0, "no early syncs were asked for");
            }
        }
    }

    #[test]
    fn a_failed_early_sync_fails_the_next_sync_of_either_kind() {
        let syncs = Arc::new(AtomicU64::new(0));
        let storage = FailAfter { inner: MemStorage::default(), ok: usize::MAX, early: Some((syncs.clone(), true)) };
        let mut behind = SessionStorage::new(Box::new(storage), true, 1 << 20, true);
        behind.sync().expect("nothing failed yet");
        let piece = vec![1u8; 1 << 20];
        for i in 0..17u64 {
            let mut buf = piece.clone();
            behind.write_buffer(i << 20, &mut buf).unwrap();
        }
        behind.drain().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        // The early sync runs on its own thread: wait for it to have failed.
        while syncs.load(Ordering::SeqCst) == 0 {
            assert!(Instant::now() < deadline, "no early sync ran");
            std::thread::sleep(Duration::from_millis(1));
        }
        let err = behind.sync().expect_err("the session's sync reports the early failure");
        assert!(err.to_string().contains("an early sync failed: the disk went away"), "{err}");
        // A sync queued behind the writes fails too, and then the queue stops.
        behind.sync_later().unwrap();
        let err = behind.drain().expect_err("queued sync fails");
        assert!(err.to_string().contains("the disk went away"), "{err}");
        let mut buf = piece.clone();
        assert!(behind.write_buffer(17 << 20, &mut buf).is_err(), "nothing is written after a failure");
        let _ = behind.into_inner();
    }

    /// The session's storage grows in whole steps ahead of its writes while the session holds
    /// it (directly or behind the writer thread) and, once given back, writes extend the file
    /// by exactly what they write.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_session_storage_reserves_ahead_until_it_is_given_back() {
        use crate::reserve::RESERVE_STEP;
        use crate::storage::FileStorage;
        for background in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let file =
                std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(dir.path().join("s.bin")).unwrap();
            let mut storage = SessionStorage::new(Box::new(FileStorage::new(file)), background, 1 << 20, false);
            storage.write_at(0, &[3u8; 5000]).unwrap();
            storage.drain().unwrap();
            let reserved = storage.len().unwrap();
            assert!(reserved >= 5000 + RESERVE_STEP && reserved.is_multiple_of(RESERVE_STEP), "background {background}: {reserved}");
            let mut back = storage.into_inner();
            back.set_len(5000).unwrap();
            back.write_at(5000, b"tail").unwrap();
            assert_eq!(back.len().unwrap(), 5004, "background {background}: given back, no longer reserving");
        }
    }
}
