//! The file and its sessions.

use super::layout::{directory_runs, discover, Run, RunLoc, RunSource, SessionLayout, SessionState};
use super::replay::{FramePlace, Replay, StreamIndex};
use super::runs::RunTable;
use super::salvage::discover_salvaged;
use crate::error::{Error, Result};
use crate::format::header::{FileHeader, SlotState, Slots, HEADER_LEN};
use crate::time::Timestamp;
use memmap2::Mmap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The bytes of a file: a read-only memory map (of which the reader uses the first `usize`
/// bytes), or a buffer in memory.
pub(crate) enum Backing {
    Map(Mmap, usize),
    Bytes(Vec<u8>),
}

/// The runs of one stream, parsed on first use (or the reason they could not be).
type RunCell = OnceLock<Result<Arc<[Run]>, String>>;

/// Everything shared by the handles of one open file.
pub(crate) struct FileInner {
    pub data: Backing,
    pub path: Option<PathBuf>,
    pub header: FileHeader,
    pub slots: Slots,
    pub sessions: Vec<SessionLayout>,
    pub live: bool,
    pub warnings: Vec<String>,
    run_cache: Vec<Vec<RunCell>>,
    /// Per stream, whether every run its index references lies in a record whose CRC holds:
    /// found only when a lookup or a walk meets an entry that does not name its frame.
    index_trusted: Vec<Vec<OnceLock<bool>>>,
    /// Per stream, its runs as found by scanning the session's records (the fallback when its
    /// index cannot be trusted), built on first need.
    scanned: Vec<Vec<OnceLock<Arc<[Run]>>>>,
    /// Per session, the byte ranges of the checkpoint records that validated (walked back from
    /// the last checkpoint), found on first use.
    checked_checkpoints: Vec<OnceLock<Vec<(u64, u64)>>>,
}

impl FileInner {
    /// The file's bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            Backing::Map(m, len) => &m[..*len],
            Backing::Bytes(b) => b,
        }
    }

    /// Maps the pages of `[start, end)` into this process ahead of reading them, where the
    /// system can do so in one call (Linux's `MADV_POPULATE_READ`): one system call instead
    /// of a page fault per few pages. Only a hint: where it fails or does not exist, the reads
    /// fault the pages in as before.
    pub fn prefault(&self, start: u64, end: u64) {
        #[cfg(target_os = "linux")]
        self.advise(memmap2::Advice::PopulateRead, start, end);
        #[cfg(not(target_os = "linux"))]
        let _ = (start, end);
    }

    /// Asks the system to start reading `[start, end)` from the disk into its page cache
    /// (`MADV_WILLNEED`), without waiting: for a walk over a file that is not cached, whose
    /// page faults would otherwise read it a few pages at a time. Only a hint.
    pub fn read_ahead(&self, start: u64, end: u64) {
        #[cfg(unix)]
        self.advise(memmap2::Advice::WillNeed, start, end);
        #[cfg(not(unix))]
        let _ = (start, end);
    }

    /// Gives the memory map `advice` for `[start, end)`, clamped to the file; errors are
    /// ignored (advice is a hint), a file in memory takes none.
    #[cfg(unix)]
    fn advise(&self, advice: memmap2::Advice, start: u64, end: u64) {
        if let Backing::Map(m, len) = &self.data {
            let end = end.min(*len as u64);
            if let (Ok(start), Ok(len)) = (usize::try_from(start), usize::try_from(end.saturating_sub(start))) {
                if len > 0 {
                    let _ = m.advise_range(advice, start, len);
                }
            }
        }
    }

    /// The runs of stream `stream` of session `session`, read once and cached. Their entries
    /// are hints (spec §7): every lookup and walk checks the entries it relies on against the
    /// frames they name, and only when one does not match are the checkpoint records behind
    /// the runs checked ([`FileInner::index_trusted`]); opening a stream costs no pass over
    /// its index.
    pub fn runs(&self, session: usize, stream: usize) -> Result<Arc<[Run]>> {
        let layout = &self.sessions[session].streams[stream];
        let cell = &self.run_cache[session][stream];
        cell.get_or_init(|| match &layout.runs {
            RunSource::Built(r) => Ok(r.clone()),
            RunSource::Sampled(t) => Ok(RunTable::Sampled(t.clone()).to_runs(self.bytes())),
            RunSource::Directory { offset, count } => match directory_runs(self.bytes(), *offset, *count) {
                Ok(r) => Ok(r.into()),
                Err(_) => Ok(self.scanned(session, stream)),
            },
        })
        .clone()
        .map_err(|reason| Error::Malformed { what: "index", offset: self.sessions[session].index_offset.unwrap_or(0), reason })
    }

    /// The runs of stream `stream` of session `session` as lookups use them: a finished 1.1
    /// session's directory in place (read a chunk at a time), otherwise [`FileInner::runs`].
    pub fn run_table(&self, session: usize, stream: usize) -> Result<RunTable> {
        match &self.sessions[session].streams[stream].runs {
            RunSource::Sampled(t) => Ok(RunTable::Sampled(t.clone())),
            _ => Ok(RunTable::built(self.runs(session, stream)?)),
        }
    }

    /// The runs of a stream that every entry can be relied on: its index when the records
    /// behind its runs pass their CRCs, else the runs found by scanning its session (what
    /// verification and whole-stream reads use).
    pub fn checked_runs(&self, session: usize, stream: usize) -> Result<Arc<[Run]>> {
        let runs = self.runs(session, stream)?;
        Ok(if self.index_trusted(session, stream) { runs } else { self.scanned(session, stream) })
    }

    /// Whether the runs of a stream's index lie in records whose CRC holds (checked once, on
    /// first need: O(checkpoints) reads).
    pub fn index_trusted(&self, session: usize, stream: usize) -> bool {
        *self.index_trusted[session][stream].get_or_init(|| {
            let chunks_hold = match &self.sessions[session].streams[stream].runs {
                RunSource::Sampled(t) => t.holds(self.bytes()),
                _ => true,
            };
            match self.runs(session, stream) {
                Ok(runs) => chunks_hold && self.runs_checked(session, &runs),
                Err(_) => false,
            }
        })
    }

    /// The runs of a stream found by scanning its session's records, built once.
    pub fn scanned(&self, session: usize, stream: usize) -> Arc<[Run]> {
        self.scanned[session][stream].get_or_init(|| self.scanned_runs(session, stream)).clone()
    }

    /// Whether every run in the file lies inside a record whose CRC holds: the session's Index
    /// (checked on open) or one of its checkpoints. A file written before format 1.1 does not
    /// say where its last checkpoint is; its runs are trusted as format 1.0 readers did.
    fn runs_checked(&self, session: usize, runs: &[Run]) -> bool {
        let s = &self.sessions[session];
        let Some(last) = s.last_checkpoint else { return true };
        // Opened through its sample, a session's Index record has not had its CRC checked yet.
        let salt = (!s.index_checked).then_some(s.salt);
        let index_range = s.index_offset.and_then(|o| crate::format::record::read_record(self.bytes(), o, salt).ok().map(|r| (o, r.end())));
        let checked = self.checked_checkpoints[session]
            .get_or_init(|| super::layout::checked_checkpoint_ranges(self.bytes(), s.salt, s.offset, last));
        runs.iter().all(|r| match &r.loc {
            RunLoc::Owned(_) => true,
            RunLoc::File(at) => {
                let end = at.saturating_add(r.count.saturating_mul(crate::format::index::ENTRY_LEN as u64));
                let inside = |(from, to): (u64, u64)| from <= *at && end <= to;
                index_range.is_some_and(inside) || {
                    let i = checked.partition_point(|&(from, _)| from <= *at);
                    i > 0 && inside(checked[i - 1])
                }
            }
        })
    }

    /// The runs of a stream rebuilt from a scan of its session's records.
    fn scanned_runs(&self, session: usize, stream: usize) -> Arc<[Run]> {
        let s = &self.sessions[session];
        let id = s.streams[stream].def.stream;
        let (found, _) = super::salvage::salvage(self.bytes(), s.offset, s.segment_end);
        let entries = found.into_iter().find(|f| f.offset == s.offset).and_then(|mut f| f.streams.remove(&id)).map(|st| st.entries);
        let mut entries = entries.unwrap_or_default();
        entries.sort_unstable();
        Arc::from(super::layout::owned_runs(&entries))
    }
}

/// One empty cell per stream of every session.
fn per_stream<T>(sessions: &[SessionLayout]) -> Vec<Vec<OnceLock<T>>> {
    sessions.iter().map(|s| s.streams.iter().map(|_| OnceLock::new()).collect()).collect()
}

/// An open `.rec` file, read through a memory map. Cheap to clone; every handle derived from
/// it ([`Session`], [`Replay`], [`Frame`]) keeps the map alive.
///
/// Opening reads the header, the commit slots and a few records per session: its cost does not
/// depend on the number of frames. A session that was interrupted is rebuilt in memory from
/// its checkpoints and the records after the last one, without writing to the file; while a
/// writer holds the file, its session is shown up to the writer's last checkpoint.
///
/// ```
/// use recfile::{RecFile, Recorder, Timestamp};
/// use std::time::Duration;
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("odom.rec");
/// # let mut rec = Recorder::create(&path).unwrap();
/// # let mut s = rec.start_session("demo").unwrap();
/// # let odom = s.add_stream("odom", "bincode").unwrap();
/// # for i in 0..100i64 { s.write_value(odom, Timestamp::from_nanos(i * 10_000_000), &(i as f64)).unwrap(); }
/// # s.finish().unwrap();
/// # drop(rec);
/// let file = RecFile::open(&path).unwrap();
/// let odom = file.last_session().unwrap().stream("odom").unwrap();
/// let frame = odom.find_closest(Timestamp::from_nanos(123_000_000), None).unwrap();
/// assert_eq!(frame.timestamp(), Timestamp::from_nanos(120_000_000));
/// assert_eq!(frame.decode::<f64>().unwrap(), 12.0);
/// // Nothing within 1 ms of t = 2 s:
/// assert!(odom.find_closest(Timestamp::from_nanos(2_000_000_000), Some(Duration::from_millis(1))).is_none());
/// ```
#[derive(Clone)]
pub struct RecFile {
    pub(crate) inner: Arc<FileInner>,
}

impl std::fmt::Debug for RecFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecFile").field("path", &self.inner.path).field("sessions", &self.inner.sessions.len()).finish()
    }
}

impl RecFile {
    /// Opens and memory-maps a file.
    pub fn open(path: impl AsRef<Path>) -> Result<RecFile> {
        let path = path.as_ref();
        if path.is_dir() {
            return Err(Error::InvalidArgument(format!("{} is a directory, not a .rec file", path.display())));
        }
        let file = File::open(path).map_err(|e| Error::from(e).with_path(path))?;
        let live = crate::durable::writer_holds_lock(&file);
        if live {
            // A writer in this process may still have checkpoints on its write-behind queue.
            crate::write::settle_queued_writes(&file);
        }
        let len = file.metadata().map_err(|e| Error::from(e).with_path(path))?.len();
        if len == 0 {
            return Err(Error::EmptyFile);
        }
        // SAFETY: the map is read-only. Writers only append to the file (and at the end of a
        // session cut off the zeros they reserved past it, beyond every committed byte, which
        // a reader of a live file does not use), and recovery only truncates bytes after the
        // last valid record; a reader dereferences only bytes inside records it has validated,
        // which therefore stay mapped (see spec, "Readers and shrinking files").
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::from(e).with_path(path))?;
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        // Under a writer, only the committed bytes are read: past them lie bytes the writer may
        // still cut off (the space it reserves ahead of a session's writes, spec §6), and a
        // page of the map past the file's end would fault.
        // An interrupted session's file may end in the space its writer reserved ahead (a
        // hole): it reads as zeros, so it is left out rather than faulted in page by page.
        let within_map = |end: u64| usize::try_from(end).unwrap_or(usize::MAX).max(HEADER_LEN as usize).min(map.len());
        let used = match Slots::decode(&map) {
            Ok(slots) if live => within_map(slots.current.committed_len),
            Ok(slots) if slots.current.state == SlotState::Recording => {
                crate::storage::trailing_hole(&file, slots.current.committed_len).map_or(map.len(), within_map)
            }
            _ => map.len(),
        };
        let mut f = RecFile::from_backing(Backing::Map(map, used), live)?;
        if let Some(inner) = Arc::get_mut(&mut f.inner) {
            inner.path = Some(path.to_path_buf());
        }
        Ok(f)
    }

    /// Reads a file held in memory (for tests, fuzzing, or data from elsewhere).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<RecFile> {
        RecFile::from_backing(Backing::Bytes(bytes), false)
    }

    fn from_backing(data: Backing, live: bool) -> Result<RecFile> {
        let bytes = match &data {
            Backing::Map(m, len) => &m[..*len],
            Backing::Bytes(b) => &b[..],
        };
        let header = FileHeader::decode(bytes)?;
        let slots = Slots::decode(bytes)?;
        let mut warnings = Vec::new();
        for (name, err) in ["A", "B"].iter().zip(&slots.errors) {
            if let Some(e) = err {
                warnings.push(format!("commit slot {name} is invalid: {e}"));
            }
        }
        let sessions = match discover(bytes, &slots, live) {
            Ok(s) => s,
            Err(e) => {
                warnings.push(format!("the file is damaged ({e}); its sessions were found by scanning its records"));
                let (sessions, found) = discover_salvaged(bytes, &slots, live);
                warnings.extend(found);
                sessions
            }
        };
        let run_cache = sessions.iter().map(|s| s.streams.iter().map(|_| OnceLock::new()).collect()).collect();
        let checked_checkpoints = sessions.iter().map(|_| OnceLock::new()).collect();
        let (index_trusted, scanned) = (per_stream(&sessions), per_stream(&sessions));
        Ok(RecFile {
            inner: Arc::new(FileInner {
                data,
                path: None,
                header,
                slots,
                sessions,
                live,
                warnings,
                run_cache,
                checked_checkpoints,
                index_trusted,
                scanned,
            }),
        })
    }

    /// The file's path, when opened from one.
    pub fn path(&self) -> Option<&Path> {
        self.inner.path.as_deref()
    }

    /// Format version (major, minor) of the file.
    pub fn format_version(&self) -> (u16, u16) {
        (self.inner.header.major, self.inner.header.minor)
    }

    /// The file's UUID.
    pub fn file_id(&self) -> uuid::Uuid {
        self.inner.header.file_id
    }

    /// Creation time of the file.
    pub fn created(&self) -> Timestamp {
        Timestamp::from_nanos(self.inner.header.created_ns)
    }

    /// Size in bytes of what the reader uses: the whole file, or under a live writer its
    /// committed bytes (past them lies space the writer may still cut off).
    pub fn size_bytes(&self) -> u64 {
        self.inner.bytes().len() as u64
    }

    /// Whether a writer held the file when it was opened.
    pub fn is_live(&self) -> bool {
        self.inner.live
    }

    /// Whether the file holds an interrupted session that `rec recover` would finish.
    pub fn needs_recovery(&self) -> bool {
        self.inner.sessions.iter().any(|s| s.state == SessionState::Interrupted)
    }

    /// Problems noticed while opening that did not prevent reading (a damaged commit slot, a
    /// damaged session chain).
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// The raw bytes of the file.
    pub fn bytes(&self) -> &[u8] {
        self.inner.bytes()
    }

    /// All sessions, oldest first.
    pub fn sessions(&self) -> Vec<Session> {
        (0..self.inner.sessions.len()).map(|i| Session { file: self.inner.clone(), index: i }).collect()
    }

    /// Number of sessions.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.len()
    }

    /// The session at a 0-based position.
    pub fn session(&self, index: usize) -> Option<Session> {
        (index < self.inner.sessions.len()).then(|| Session { file: self.inner.clone(), index })
    }

    /// The most recent session.
    pub fn last_session(&self) -> Option<Session> {
        self.inner.sessions.len().checked_sub(1).and_then(|i| self.session(i))
    }

    /// The session with this UUID.
    pub fn session_by_id(&self, id: uuid::Uuid) -> Option<Session> {
        self.inner.sessions.iter().position(|s| s.start.id == id).and_then(|i| self.session(i))
    }

    /// A session by UUID (as text), by 0-based position (negative counts from the end), or by
    /// name when exactly one session has it (an error lists the matches otherwise).
    pub fn find_session(&self, id_or_index: &str) -> Result<Session> {
        if let Ok(id) = uuid::Uuid::parse_str(id_or_index) {
            return self.session_by_id(id).ok_or_else(|| Error::NoSuchSession(format!("with id {id}")));
        }
        let n = self.inner.sessions.len() as i64;
        match id_or_index.parse::<i64>() {
            Ok(i) => {
                let idx = if i < 0 { n + i } else { i };
                usize::try_from(idx)
                    .ok()
                    .and_then(|i| self.session(i))
                    .ok_or_else(|| Error::NoSuchSession(format!("at position {i} (the file has {n})")))
            }
            Err(_) => {
                let named: Vec<usize> =
                    (0..self.inner.sessions.len()).filter(|&i| self.inner.sessions[i].start.name == id_or_index).collect();
                match named.as_slice() {
                    [i] => self.session(*i).ok_or_else(|| Error::NoSuchSession(id_or_index.to_string())),
                    [] => {
                        let names: Vec<String> =
                            self.inner.sessions.iter().enumerate().map(|(i, s)| format!("{i}: {:?}", s.start.name)).collect();
                        Err(Error::NoSuchSession(format!(
                            "{id_or_index:?}: not a UUID, a position or a session name (sessions: {})",
                            if names.is_empty() { "none".to_string() } else { names.join(", ") }
                        )))
                    }
                    many => {
                        let list: Vec<String> = many.iter().map(|&i| format!("{i} ({})", self.inner.sessions[i].start.id)).collect();
                        Err(Error::NoSuchSession(format!(
                            "named {id_or_index:?}: {} sessions have that name, at positions {}; give a position or a UUID",
                            many.len(),
                            list.join(", ")
                        )))
                    }
                }
            }
        }
    }
}

/// Streams whose encoding starts with this prefix are internal: they hold what an imported
/// format had beside its messages (MCAP publish times and sequences, attachments), and readers
/// list, count and replay only the other streams unless asked for one by name (spec §5.3).
pub const INTERNAL_ENCODING_PREFIX: &str = "recfile.mcap.";

/// True for the encoding of an internal stream (see [`INTERNAL_ENCODING_PREFIX`]).
pub fn is_internal_encoding(encoding: &str) -> bool {
    encoding.starts_with(INTERNAL_ENCODING_PREFIX)
}

/// Describes one stream of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// Stream name.
    pub name: String,
    /// Encoding label.
    pub encoding: String,
    /// Schema name (empty when none).
    pub schema_name: String,
    /// Schema bytes (empty when none).
    pub schema: Vec<u8>,
    /// Number of frames.
    pub frames: u64,
    /// Sum of payload sizes.
    pub payload_bytes: u64,
    /// Smallest timestamp, if any frame.
    pub first: Option<Timestamp>,
    /// Largest timestamp, if any frame.
    pub last: Option<Timestamp>,
}

/// One session of a file: a cheap handle.
#[derive(Clone)]
pub struct Session {
    pub(crate) file: Arc<FileInner>,
    pub(crate) index: usize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.id()).field("name", &self.name()).field("state", &self.state()).finish()
    }
}

impl Session {
    pub(crate) fn layout(&self) -> &SessionLayout {
        &self.file.sessions[self.index]
    }

    /// Position of the session in the file (0-based).
    pub fn position(&self) -> usize {
        self.index
    }

    /// The UUID of the file the session is in (its recording's id).
    pub fn file_id(&self) -> uuid::Uuid {
        self.file.header.file_id
    }

    /// The session's UUID.
    pub fn id(&self) -> uuid::Uuid {
        self.layout().start.id
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.layout().start.name
    }

    /// Finished, interrupted or recording.
    pub fn state(&self) -> SessionState {
        self.layout().state
    }

    /// Whether recovery wrote this session's end.
    pub fn was_recovered(&self) -> bool {
        self.layout().end.as_ref().is_some_and(|e| e.recovered)
    }

    /// Wall time when recording started.
    pub fn start_time(&self) -> Timestamp {
        Timestamp::from_nanos(self.layout().start.start_ns)
    }

    /// Wall time when recording ended (finished sessions only).
    pub fn end_time(&self) -> Option<Timestamp> {
        self.layout().end.as_ref().map(|e| Timestamp::from_nanos(e.end_ns))
    }

    /// Damaged stretches that reading this session skipped: each is followed by records that
    /// validate (a torn end of an interrupted session is not listed). Frames in them are lost;
    /// every other frame is read. Empty for an intact session.
    pub fn skipped_damage(&self) -> &[String] {
        &self.layout().skipped
    }

    /// Frames over all its streams (internal streams not counted: see [`Session::streams`]).
    pub fn frame_count(&self) -> u64 {
        let l = self.layout();
        let internal: u64 = l.streams.iter().filter(|s| is_internal_encoding(&s.def.encoding)).map(|s| s.frames).sum();
        l.frames.saturating_sub(internal)
    }

    /// Checkpoints written.
    pub fn checkpoint_count(&self) -> u32 {
        self.layout().checkpoints
    }

    /// Metadata, in the order keys were first set.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.layout().metadata
    }

    /// The value of one metadata key.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata().iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// File offset of the session's start record.
    pub fn offset(&self) -> u64 {
        self.layout().offset
    }

    /// Offset just past the session's last valid record.
    pub fn end_offset(&self) -> u64 {
        self.layout().segment_end
    }

    /// Its streams, in definition order. Internal streams (encoding `recfile.mcap.…`: the
    /// publish times and attachments of an MCAP import) are left out, as from
    /// [`Session::stream_names`] and a [`Session::replay`] of every stream; they stay reachable
    /// by name and through [`Session::all_streams`].
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.all_streams().into_iter().filter(|s| !is_internal_encoding(&s.encoding)).collect()
    }

    /// Every stream, internal ones included, in definition order.
    pub fn all_streams(&self) -> Vec<StreamInfo> {
        self.layout()
            .streams
            .iter()
            .map(|s| StreamInfo {
                name: s.def.name.clone(),
                encoding: s.def.encoding.clone(),
                schema_name: s.def.schema_name.clone(),
                schema: s.def.schema.clone(),
                frames: s.frames,
                payload_bytes: s.payload_bytes,
                first: (s.frames > 0).then(|| Timestamp::from_nanos(s.first_ts)),
                last: (s.frames > 0).then(|| Timestamp::from_nanos(s.last_ts)),
            })
            .collect()
    }

    /// Names of its streams (internal ones left out), in definition order.
    pub fn stream_names(&self) -> Vec<String> {
        self.layout().streams.iter().filter(|s| !is_internal_encoding(&s.def.encoding)).map(|s| s.def.name.clone()).collect()
    }

    pub(crate) fn stream_index(&self, name: &str) -> Result<StreamIndex> {
        let l = self.layout();
        let pos = l.streams.iter().position(|s| s.def.name == name).ok_or_else(|| {
            let names: Vec<String> = l.streams.iter().map(|s| format!("{:?}", s.def.name)).collect();
            Error::NoSuchStream(format!(
                "{name:?} (the session has {})",
                if names.is_empty() { "no streams".into() } else { names.join(", ") }
            ))
        })?;
        let runs = self.file.run_table(self.index, pos)?;
        let s = &l.streams[pos];
        let mut index = StreamIndex::new(pos as u16, &s.def.name, &s.def.encoding, runs, s.last_ts);
        index.place = FramePlace::of_stream(l, pos);
        Ok(index)
    }

    /// The latest frame at or before `t` of every stream that has one, in stream order: what a
    /// consumer must have seen after seeking to `t` (a map or a calibration published once).
    pub fn state_at(&self, t: Timestamp) -> Result<Vec<crate::read::Frame>> {
        let mut out = Vec::new();
        for name in self.stream_names() {
            if let Some(f) = self.stream(&name)?.try_find_before(t)? {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// One stream, for lookups and replay.
    pub fn stream(&self, name: &str) -> Result<Replay> {
        Ok(Replay::new(self.clone(), vec![self.stream_index(name)?]))
    }

    /// Several streams merged on one clock, in timestamp order (ties in arrival order). An
    /// empty list selects every stream.
    pub fn replay(&self, names: &[&str]) -> Result<Replay> {
        let all;
        let names: Vec<&str> = if names.is_empty() {
            all = self.stream_names();
            all.iter().map(String::as_str).collect()
        } else {
            names.to_vec()
        };
        let mut seen = std::collections::HashSet::new();
        let streams = names.iter().filter(|n| seen.insert(**n)).map(|n| self.stream_index(n)).collect::<Result<Vec<_>>>()?;
        Ok(Replay::new(self.clone(), streams))
    }
}
