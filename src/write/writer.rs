//! The public session writer: a handle on the shared session state, and the stream senders
//! that let producer threads write through a bounded queue.

use super::options::SessionStart;
use super::recorder::Recorder;
use super::session::{SessionCore, SessionInfo, StreamId};
use crate::error::{Error, Result};
use crate::format::codec::encode_value;
use crate::threads::{forked_session, lock, Helper};
use crate::time::Timestamp;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

/// Frames a stream sender queue holds before producers block.
const SENDER_QUEUE: usize = 1024;

enum Msg {
    Frame(StreamId, Timestamp, Vec<u8>),
    Stop,
}

/// The thread that writes what stream senders queue.
struct Pump {
    tx: SyncSender<Msg>,
    thread: Helper,
    error: Arc<Mutex<Option<String>>>,
}

/// Appends one session's streams and frames. Get one from [`Recorder::start_session`].
///
/// Frames are buffered in memory and handed to the OS at every checkpoint (and whenever the
/// buffer fills); checkpoints happen automatically every N frames and every T of wall time.
/// Dropping the writer finishes the session (errors are then ignored: call
/// [`SessionWriter::finish`] to see them).
///
/// ```
/// use recfile::{Recorder, Timestamp};
/// # let dir = tempfile::tempdir().unwrap();
/// let mut recorder = Recorder::create(dir.path().join("s.rec")).unwrap();
/// let mut session = recorder.start_session("threads").unwrap();
/// let imu = session.add_stream("imu", "raw").unwrap();
/// let sender = session.stream_sender(imu).unwrap();
/// let producers: Vec<_> = (0..4)
///     .map(|p| {
///         let tx = sender.clone();
///         std::thread::spawn(move || {
///             for i in 0..100 {
///                 tx.send(Timestamp::from_nanos(p * 1000 + i), &[p as u8]).unwrap();
///             }
///         })
///     })
///     .collect();
/// producers.into_iter().for_each(|t| t.join().unwrap());
/// assert_eq!(session.finish().unwrap().frames, 400);
/// ```
pub struct SessionWriter {
    core: CoreCell,
    pump: Option<Pump>,
    id: uuid::Uuid,
    name: String,
    actions: crate::session::ActionStateHandle,
}

/// The session state: owned by the writer (no lock per call) until a stream sender's thread
/// needs to share it.
enum CoreCell {
    Owned(Box<SessionCore>),
    Shared(Arc<Mutex<SessionCore>>),
    /// Only inside [`SessionWriter::share`], which moves the state; never seen elsewhere.
    Moving,
}

/// Mutable access to the session state, locked only when it is shared.
enum CoreMut<'a> {
    Owned(&'a mut SessionCore),
    Locked(MutexGuard<'a, SessionCore>),
}

impl std::ops::Deref for CoreMut<'_> {
    type Target = SessionCore;
    fn deref(&self) -> &SessionCore {
        match self {
            CoreMut::Owned(c) => c,
            CoreMut::Locked(g) => g,
        }
    }
}

impl std::ops::DerefMut for CoreMut<'_> {
    fn deref_mut(&mut self) -> &mut SessionCore {
        match self {
            CoreMut::Owned(c) => c,
            CoreMut::Locked(g) => g,
        }
    }
}

/// Locks the state shared with the sender thread; `None` in a process forked while that thread
/// held the lock (the lock stays held there for good: waiting would hang). Only a lock that is
/// taken asks for the process id, so the common path costs no system call.
fn lock_shared<'a>(m: &'a Mutex<SessionCore>, pump: Option<&Pump>) -> Option<MutexGuard<'a, SessionCore>> {
    match m.try_lock() {
        Ok(c) => Some(c),
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) if pump.is_some_and(|p| p.thread.forked()) => None,
        Err(TryLockError::WouldBlock) => Some(lock(m)),
    }
}

/// [`SessionWriter::core`] for state shared with the sender thread.
#[cold]
#[inline(never)]
fn locked_core<'a>(m: &'a Mutex<SessionCore>, pump: Option<&Pump>) -> Result<CoreMut<'a>> {
    lock_shared(m, pump).map(CoreMut::Locked).ok_or_else(|| Error::Closed(forked_session(pump.map_or(0, |p| p.thread.process()))))
}

#[cold]
fn moving() -> Error {
    Error::Closed("the session state is being handed to the sender thread".into())
}

impl SessionWriter {
    pub(crate) fn start(recorder: &mut Recorder, start: SessionStart) -> Result<SessionWriter> {
        let name = start.name.clone();
        let core = SessionCore::start(recorder, start)?;
        let id = core.id();
        Ok(SessionWriter { core: CoreCell::Owned(Box::new(core)), pump: None, id, name, actions: Default::default() })
    }

    /// Sets the end time the session's end record will hold (default: when it is finished), for
    /// conversions whose data ends earlier.
    pub fn set_end_time(&mut self, t: Timestamp) -> Result<()> {
        self.core()?.end_override = Some(t.as_nanos());
        Ok(())
    }

    /// The state, owned or locked. Inlined, so that the owned case (every frame of a session
    /// without a sender thread) costs no guard to build and match (~70 of the ~560 instructions
    /// of a 100-byte frame, callgrind); the other cases are kept out of line.
    #[inline]
    fn core(&mut self) -> Result<CoreMut<'_>> {
        match &mut self.core {
            CoreCell::Owned(c) => Ok(CoreMut::Owned(c)),
            CoreCell::Shared(m) => locked_core(m, self.pump.as_ref()),
            CoreCell::Moving => Err(moving()),
        }
    }

    /// Runs `f` on the state for the `&self` queries.
    fn read<T>(&self, f: impl FnOnce(&SessionCore) -> T) -> Option<T> {
        match &self.core {
            CoreCell::Owned(c) => Some(f(c)),
            CoreCell::Shared(m) => lock_shared(m, self.pump.as_ref()).map(|c| f(&c)),
            CoreCell::Moving => None,
        }
    }

    /// The state behind a lock, shared with the sender thread from now on.
    fn share(&mut self) -> Result<Arc<Mutex<SessionCore>>> {
        if let CoreCell::Owned(_) = self.core {
            if let CoreCell::Owned(c) = std::mem::replace(&mut self.core, CoreCell::Moving) {
                self.core = CoreCell::Shared(Arc::new(Mutex::new(*c)));
            }
        }
        match &self.core {
            CoreCell::Shared(m) => Ok(m.clone()),
            _ => Err(moving()),
        }
    }

    /// The session's UUID.
    pub fn id(&self) -> uuid::Uuid {
        self.id
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Frames written so far over all streams.
    pub fn frames(&self) -> u64 {
        self.read(SessionCore::frames).unwrap_or(0)
    }

    /// Checkpoints written so far. Each counts once its bytes have reached the OS (so a crash
    /// of the process from then on keeps it): with background writes this waits for the
    /// latest checkpoint when it is still being written.
    pub fn checkpoints(&self) -> u32 {
        self.read(SessionCore::checkpoints).unwrap_or(0)
    }

    /// The id of a stream defined earlier, by name.
    pub fn stream_id(&self, name: &str) -> Option<StreamId> {
        self.read(|c| c.stream_id(name)).flatten()
    }

    /// Defines a stream with an encoding label (`json`, `bincode`, `raw`, `cdr`, …).
    pub fn add_stream(&mut self, name: &str, encoding: &str) -> Result<StreamId> {
        self.core()?.add_stream_with_schema(name, encoding, "", &[])
    }

    /// Defines a stream with an encoding label and a schema (name and bytes).
    pub fn add_stream_with_schema(&mut self, name: &str, encoding: &str, schema_name: &str, schema: &[u8]) -> Result<StreamId> {
        self.core()?.add_stream_with_schema(name, encoding, schema_name, schema)
    }

    /// Sets a metadata key of the session (written at once; a later value for the same key
    /// replaces the earlier one).
    pub fn set_metadata(&mut self, key: &str, value: &str) -> Result<()> {
        self.core()?.set_metadata(key, value)
    }

    /// Appends a frame; returns how many frames the stream holds now (like dimos' `save_one`).
    /// Timestamps need not be increasing.
    #[inline]
    pub fn write(&mut self, stream: StreamId, ts: Timestamp, data: &[u8]) -> Result<u64> {
        self.core()?.write(stream, ts, data)
    }

    /// Appends a frame stamped with the current wall time.
    pub fn write_now(&mut self, stream: StreamId, data: &[u8]) -> Result<u64> {
        self.write(stream, Timestamp::now(), data)
    }

    /// Appends a value encoded with bincode (standard configuration); read it back with
    /// [`crate::Frame::decode`].
    pub fn write_value<T: serde::Serialize + ?Sized>(&mut self, stream: StreamId, ts: Timestamp, value: &T) -> Result<u64> {
        let bytes = encode_value(value)?;
        self.write(stream, ts, &bytes)
    }

    /// Writes a checkpoint now: everything written so far is handed to the OS and becomes
    /// recoverable after a crash of this process.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.core()?.checkpoint()
    }

    /// Writes a checkpoint carrying a snapshot of the caller's state (for instance a module's
    /// state, to restart a replay from here).
    pub fn checkpoint_with_state(&mut self, state: &[u8]) -> Result<()> {
        self.core()?.checkpoint_with_state(state)
    }

    /// A cloneable, `Send` handle through which other threads write frames of `stream`. Frames
    /// go through a bounded queue (producers block when it is full: back-pressure, nothing is
    /// dropped) to a writer thread; a write error is reported by the next `send` and by
    /// [`SessionWriter::finish`].
    pub fn stream_sender(&mut self, stream: StreamId) -> Result<StreamSender> {
        if self.read(|c| c.stream_name(stream).is_none()).unwrap_or(true) {
            return Err(Error::InvalidArgument(format!("stream id {} is not defined in this session", stream.0)));
        }
        if self.pump.is_none() {
            let (tx, rx) = sync_channel(SENDER_QUEUE);
            let error = Arc::new(Mutex::new(None));
            let (core, err) = (self.share()?, error.clone());
            let thread = Helper::spawn("recfile-sender", move || pump(rx, core, err)).map_err(|e| Error::Io { path: None, source: e })?;
            self.pump = Some(Pump { tx, thread, error });
        }
        let p = self.pump.as_ref().ok_or_else(|| Error::Closed("no sender thread".into()))?;
        Ok(StreamSender { tx: p.tx.clone(), stream, error: p.error.clone() })
    }

    /// Writes every queued frame and stops the sender thread; returns its first error. In a
    /// process forked from the recording one there is no sender thread (and nothing may be
    /// written): the queue is left alone, since a send to a full queue would wait for good.
    fn stop_pump(&mut self) -> Result<()> {
        if let Some(mut p) = self.pump.take() {
            if p.thread.forked() {
                p.thread.join();
                return Err(Error::Closed(forked_session(p.thread.process())));
            }
            let _ = p.tx.send(Msg::Stop);
            p.thread.join();
            if let Some(e) = lock(&p.error).take() {
                return Err(Error::Closed(format!("a frame sent through a stream sender failed: {e}")));
            }
        }
        Ok(())
    }

    /// Ends the session: writes frames still queued by stream senders, a last checkpoint if
    /// frames are pending, the final index and the session end; syncs (unless
    /// `Durability::None`) and marks the file idle. Senders fail afterwards.
    pub fn finish(mut self) -> Result<SessionInfo> {
        if let Some(info) = self.core()?.finished_info.clone() {
            return Ok(info);
        }
        let pumped = self.stop_pump();
        let info = self.core()?.finish_inner();
        pumped?;
        info
    }

    /// Finishes the session but keeps the writer (for the action limit): later writes fail,
    /// and `finish` returns the same summary.
    pub(crate) fn finish_keep(&mut self) -> Result<SessionInfo> {
        self.stop_pump()?;
        let info = self.core()?.finish_inner()?;
        self.core()?.finished_info = Some(info.clone());
        Ok(info)
    }

    pub(crate) fn actions_mut(&mut self) -> &mut crate::session::ActionStateHandle {
        &mut self.actions
    }

    pub(crate) fn set_snapshot(&mut self, f: Option<Box<dyn FnMut() -> Vec<u8> + Send>>) {
        if let Ok(mut c) = self.core() {
            c.snapshot = f;
        }
    }

    /// Stops without finishing, as if the process had been killed now: bytes still in the
    /// user-space buffer are dropped and the session stays marked as recording, for recovery
    /// to find. Meant for tests of crash handling.
    pub fn abandon(mut self) {
        let _ = self.stop_pump();
        if let Ok(mut c) = self.core() {
            c.abandon();
        }
    }
}

impl Drop for SessionWriter {
    fn drop(&mut self) {
        let _ = self.stop_pump();
        // The session itself is finished when its state is dropped (SessionCore's Drop).
    }
}

fn pump(rx: Receiver<Msg>, core: Arc<Mutex<SessionCore>>, error: Arc<Mutex<Option<String>>>) {
    while let Ok(Msg::Frame(stream, ts, data)) = rx.recv() {
        if let Err(e) = lock(&core).write(stream, ts, &data) {
            lock(&error).get_or_insert(e.to_string());
        }
    }
}

/// Writes frames of one stream from any thread; clone it for each producer. See
/// [`SessionWriter::stream_sender`]. A sender belongs to the recording process: in a process
/// forked from it nothing takes its frames (a send there may wait for good once the queue is
/// full), so do not send from one.
#[derive(Clone)]
pub struct StreamSender {
    tx: SyncSender<Msg>,
    stream: StreamId,
    error: Arc<Mutex<Option<String>>>,
}

impl StreamSender {
    /// Queues a frame (blocks while the queue is full). Fails when an earlier frame could not
    /// be written or the session has finished.
    pub fn send(&self, ts: Timestamp, data: &[u8]) -> Result<()> {
        if let Some(e) = lock(&self.error).as_ref() {
            return Err(Error::Closed(format!("an earlier frame failed: {e}")));
        }
        self.tx.send(Msg::Frame(self.stream, ts, data.to_vec())).map_err(|_| Error::Closed("the session has finished".into()))
    }

    /// Queues a frame stamped with the current time.
    pub fn send_now(&self, data: &[u8]) -> Result<()> {
        self.send(Timestamp::now(), data)
    }

    /// Queues a value encoded with bincode.
    pub fn send_value<T: serde::Serialize + ?Sized>(&self, ts: Timestamp, value: &T) -> Result<()> {
        self.send(ts, &encode_value(value)?)
    }

    /// The stream this sender writes.
    pub fn stream(&self) -> StreamId {
        self.stream
    }
}
