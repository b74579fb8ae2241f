//! Writer options.

use super::Recorder;
use crate::error::Result;
use std::path::Path;
use std::time::Duration;

/// When the writer asks the OS to make written data durable (fsync).
///
/// Independently of this policy, every checkpoint hands all buffered bytes to the OS, so a
/// process that is killed (but whose machine keeps running) loses nothing before its last
/// checkpoint. This policy decides what a *power cut* may lose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Sync at the first checkpoint after this much time has passed since the last sync (and at
    /// the end of a session): a power cut loses at most about this long plus one checkpoint
    /// interval. The default, with one second.
    Interval(Duration),
    /// Sync at every checkpoint (twice: data, then the commit slot that points at it). A power
    /// cut loses nothing before the last completed checkpoint.
    EveryCheckpoint,
    /// Sync after every frame: a power cut loses nothing that `write` returned for. Costs one
    /// fsync (milliseconds on many disks) per frame.
    EveryFrame,
    /// Never sync; the OS writes back when it likes. Sessions still end cleanly and a killed
    /// process still loses nothing before its last checkpoint.
    None,
}

impl Default for Durability {
    fn default() -> Self {
        Durability::Interval(Duration::from_secs(1))
    }
}

/// Options of a [`Recorder`], as a builder.
///
/// ```
/// use recfile::{Durability, RecorderOptions};
/// use std::time::Duration;
/// let dir = tempfile::tempdir().unwrap();
/// let recorder = RecorderOptions::new()
///     .checkpoint_every_frames(500)
///     .checkpoint_every(Duration::from_millis(200))
///     .durability(Durability::EveryCheckpoint)
///     .create(dir.path().join("run.rec"))
///     .unwrap();
/// # drop(recorder);
/// ```
#[derive(Clone, Debug)]
pub struct RecorderOptions {
    pub(crate) checkpoint_every_frames: u64,
    pub(crate) checkpoint_every: Duration,
    pub(crate) durability: Durability,
    pub(crate) buffer_bytes: usize,
    pub(crate) background_writes: bool,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            checkpoint_every_frames: 1000,
            checkpoint_every: Duration::from_secs(1),
            durability: Durability::default(),
            buffer_bytes: 1 << 20,
            background_writes: true,
        }
    }
}

impl RecorderOptions {
    /// Defaults: a checkpoint every 1000 frames or every second, `Durability::Interval(1 s)`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes a checkpoint after this many frames (counted over all streams). 0 disables the
    /// frame-count trigger.
    pub fn checkpoint_every_frames(mut self, frames: u64) -> Self {
        self.checkpoint_every_frames = frames;
        self
    }

    /// Writes a checkpoint when this much wall time has passed since the last one (checked as
    /// frames are written). `Duration::ZERO` disables the time trigger.
    pub fn checkpoint_every(mut self, interval: Duration) -> Self {
        self.checkpoint_every = interval;
        self
    }

    /// Sets the sync policy.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Size of the user-space write buffer (default 1 MiB); it is also flushed at every
    /// checkpoint.
    pub fn buffer_bytes(mut self, bytes: usize) -> Self {
        self.buffer_bytes = bytes.max(4096);
        self
    }

    /// Whether a background thread hands the session's bytes to the OS (default `true`).
    /// The recording thread then only copies and checksums frames; writes and interval syncs
    /// happen in order on the other thread, at most one checkpoint interval behind (each
    /// checkpoint waits until the one before it has reached the OS). An explicit
    /// [`crate::SessionWriter::checkpoint`], `finish` and the strict durability policies still
    /// wait for their bytes. `false` writes on the calling thread.
    pub fn background_writes(mut self, enabled: bool) -> Self {
        self.background_writes = enabled;
        self
    }

    /// Creates a new file with these options (see [`Recorder::create`]).
    pub fn create(self, path: impl AsRef<Path>) -> Result<Recorder> {
        Recorder::create_with(path.as_ref(), self)
    }

    /// Opens an existing file to append sessions (see [`Recorder::open_append`]).
    pub fn open_append(self, path: impl AsRef<Path>) -> Result<Recorder> {
        Recorder::open_append_with(path.as_ref(), self)
    }
}

/// How a session starts: its name and metadata, and, for imports and conversions that carry a
/// session over from elsewhere, its id and start time (by default a new random id and now).
#[derive(Clone, Debug, Default)]
pub struct SessionStart {
    pub(crate) name: String,
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) id: Option<uuid::Uuid>,
    pub(crate) start: Option<crate::time::Timestamp>,
}

impl SessionStart {
    /// A session of this name.
    pub fn new(name: &str) -> Self {
        SessionStart { name: name.to_string(), ..Default::default() }
    }
    /// Adds a metadata entry known at the start.
    pub fn metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata.push((key.to_string(), value.to_string()));
        self
    }
    /// Uses this session id instead of a new random one (a converted session keeps its id).
    pub fn id(mut self, id: uuid::Uuid) -> Self {
        self.id = Some(id);
        self
    }
    /// Uses this start time instead of now (an imported session starts with its data).
    pub fn start_time(mut self, t: crate::time::Timestamp) -> Self {
        self.start = Some(t);
        self
    }
}
