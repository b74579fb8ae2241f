//! The recorder: owns the file, its lock and the commit slots.

use super::options::{RecorderOptions, SessionStart};
use super::writer::SessionWriter;
use crate::durable::{lock_exclusive, SlotState};
use crate::error::{Error, Result};
use crate::format::header::{new_header_page, FileHeader, Slots, HEADER_LEN, HEADER_USED_LEN};
use crate::storage::{FileStorage, Storage};
use crate::time::Timestamp;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a recorder and its active session share: the storage is lent to the session while it
/// records and returned when it ends.
pub(crate) struct Home {
    pub storage: Option<Box<dyn Storage>>,
    pub slots: SlotState,
    pub last_sync: Instant,
}

/// Writes sessions into a `.rec` file. Holds an exclusive lock on the file for its lifetime,
/// so a second recorder on the same file fails with [`Error::Locked`].
///
/// ```
/// use recfile::{Recorder, Timestamp, RecFile};
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("robot.rec");
/// let mut recorder = Recorder::create(&path).unwrap();
/// let mut session = recorder.start_session("drive-1").unwrap();
/// let lidar = session.add_stream("lidar", "raw").unwrap();
/// for i in 0..10 {
///     session.write(lidar, Timestamp::from_nanos(i * 100_000_000), &[i as u8; 4]).unwrap();
/// }
/// let info = session.finish().unwrap();
/// assert_eq!(info.frames, 10);
/// drop(recorder);
/// let file = RecFile::open(&path).unwrap();
/// assert_eq!(file.last_session().unwrap().stream("lidar").unwrap().len(), 10);
/// ```
pub struct Recorder {
    pub(crate) home: Arc<Mutex<Home>>,
    pub(crate) options: RecorderOptions,
    pub(crate) path: Option<PathBuf>,
    pub(crate) file_id: uuid::Uuid,
    /// What the recovery run by `open_append` found and did (`None`: not run).
    pub(crate) recovery: Option<crate::recover::RecoveryReport>,
}

/// Opens (creating when missing) a file for writing and takes its exclusive lock.
fn open_locked(path: &Path) -> Result<File> {
    let file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(|e| Error::from(e).with_path(path))?;
    lock_exclusive(&file, path)?;
    Ok(file)
}

impl Recorder {
    /// Creates a new `.rec` file. Refuses with [`Error::AlreadyExists`] when the path exists
    /// and is not empty: a recording is never overwritten.
    pub fn create(path: impl AsRef<Path>) -> Result<Recorder> {
        Recorder::create_with(path.as_ref(), RecorderOptions::default())
    }

    /// Opens an existing file to append sessions (creating it when missing or empty). An
    /// interrupted session in it is recovered first.
    pub fn open_append(path: impl AsRef<Path>) -> Result<Recorder> {
        Recorder::open_append_with(path.as_ref(), RecorderOptions::default())
    }

    pub(crate) fn create_with(path: &Path, options: RecorderOptions) -> Result<Recorder> {
        let file = open_locked(path)?;
        let len = file.metadata().map_err(|e| Error::from(e).with_path(path))?.len();
        if len > 0 {
            return Err(Error::AlreadyExists { path: path.to_path_buf() });
        }
        let mut r = Recorder::init_storage(Box::new(FileStorage::new(file)), options).map_err(|e| e.with_path(path))?;
        sync_parent_dir(path);
        r.path = Some(path.to_path_buf());
        Ok(r)
    }

    pub(crate) fn open_append_with(path: &Path, options: RecorderOptions) -> Result<Recorder> {
        let file = open_locked(path)?;
        let storage: Box<dyn Storage> = Box::new(FileStorage::new(file));
        let mut r = if storage.is_empty().map_err(|e| Error::from(e).with_path(path))? {
            let r = Recorder::init_storage(storage, options)?;
            sync_parent_dir(path);
            r
        } else {
            Recorder::open_storage(storage, options).map_err(|e| e.with_path(path))?
        };
        r.path = Some(path.to_path_buf());
        Ok(r)
    }

    /// A recorder over any storage whose content is empty: writes a new header. Used by tests
    /// that simulate crashes and by in-memory fuzzing.
    pub fn init_storage(mut storage: Box<dyn Storage>, options: RecorderOptions) -> Result<Recorder> {
        let header = FileHeader::new(uuid::Uuid::new_v4(), Timestamp::now().as_nanos());
        storage.write_at(0, &new_header_page(&header))?;
        storage.sync()?;
        let slots = Slots::decode(&new_header_page(&header))?;
        Ok(Recorder::from_parts(storage, options, SlotState { current: slots.current, current_index: slots.current_index }, header.file_id))
    }

    /// A recorder over storage that already holds a `.rec` file: recovers an interrupted
    /// session, then positions after the last finished session.
    pub fn open_storage(mut storage: Box<dyn Storage>, options: RecorderOptions) -> Result<Recorder> {
        let report = crate::recover::recover_storage(storage.as_mut())?;
        let mut page = vec![0u8; HEADER_USED_LEN];
        let len = storage.len()?;
        if len < HEADER_LEN {
            let mut head = vec![0u8; len as usize];
            storage.read_at(0, &mut head)?;
            FileHeader::decode(&head)?;
        }
        storage.read_at(0, &mut page)?;
        page.resize(HEADER_LEN as usize, 0);
        let header = FileHeader::decode(&page)?;
        let slots = Slots::decode(&page)?;
        // Recovery leaves nothing past the committed length that validates; a file whose damage
        // it reported (and left alone) is appended to after its committed end.
        if len > slots.current.committed_len && report.damaged.is_empty() {
            storage.set_len(slots.current.committed_len)?;
            storage.sync()?;
        } else if len > slots.current.committed_len {
            return Err(Error::Unrecoverable {
                offset: slots.current.committed_len,
                reason: "bytes past the committed end of a damaged file".into(),
            });
        }
        let mut r = Recorder::from_parts(
            storage,
            options,
            SlotState { current: slots.current, current_index: slots.current_index },
            header.file_id,
        );
        r.recovery = Some(report);
        Ok(r)
    }

    fn from_parts(storage: Box<dyn Storage>, options: RecorderOptions, slots: SlotState, file_id: uuid::Uuid) -> Recorder {
        Recorder {
            home: Arc::new(Mutex::new(Home { storage: Some(storage), slots, last_sync: Instant::now() })),
            options,
            path: None,
            file_id,
            recovery: None,
        }
    }

    /// What the recovery that [`Recorder::open_append`] runs first found and did (`None` for a
    /// new file). Check [`RecoveryReport::lost_data`](crate::RecoveryReport::lost_data).
    pub fn recovery_report(&self) -> Option<&crate::recover::RecoveryReport> {
        self.recovery.as_ref()
    }

    /// Starts a new session. Only one session records at a time: starting a second one while
    /// another [`SessionWriter`] of this recorder is alive fails.
    pub fn start_session(&mut self, name: &str) -> Result<SessionWriter> {
        SessionWriter::start(self, SessionStart::new(name))
    }

    /// Starts a new session with metadata known at its start.
    pub fn start_session_with_metadata(&mut self, name: &str, metadata: &[(&str, &str)]) -> Result<SessionWriter> {
        let md = metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        SessionWriter::start(self, SessionStart { metadata: md, ..SessionStart::new(name) })
    }

    /// Starts a new session as `start` describes (a given id or start time, for conversions).
    pub fn start_session_from(&mut self, start: SessionStart) -> Result<SessionWriter> {
        SessionWriter::start(self, start)
    }

    /// The file's UUID.
    pub fn file_id(&self) -> uuid::Uuid {
        self.file_id
    }

    /// The path, when the recorder writes a file.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Gives the storage back (for tests that inspect what was written). Fails while a session
    /// is recording.
    pub fn into_storage(self) -> Result<Box<dyn Storage>> {
        let mut home = self.home.lock().map_err(|_| Error::Closed("recorder state poisoned".into()))?;
        home.storage.take().ok_or_else(|| Error::Closed("a session is still recording".into()))
    }
}

/// Makes a new directory entry durable; best effort (not every platform or filesystem allows
/// opening a directory).
fn sync_parent_dir(path: &Path) {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(dir) = File::open(parent) {
        let _ = dir.sync_all();
    }
}
