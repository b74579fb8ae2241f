//! One session being recorded.

use super::behind::SessionStorage;
use super::options::{Durability, RecorderOptions, SessionStart};
use super::recorder::{Home, Recorder};
use crate::durable::tail::{count_in_records, decomposition, read_sections, write_index_and_end, EndFields, RecordSink, StreamStats};
use crate::durable::SlotState;
use crate::error::{Error, Result};
use crate::format::bytes::{le_u32, le_u64};
use crate::format::header::{Slot, SlotState as State};
use crate::format::index::IndexEntry;
use crate::format::record::{
    begin_checkpoint, checkpoint_body_len, decode_block, decode_summary_block, encode_metadata, frame_header_combined,
    frame_header_unsealed, lowbit, put_checkpoint_tail, put_record, put_summary_block, put_summary_control, seal_record, session_salt,
    BlockHeader, CheckpointHead, DescriptionBody, Kind, SessionStartBody, StreamDefBody, SummaryBlock, BLOCK_HEADER_LEN, FRAME_FIXED_LEN,
    MAX_BODY_LEN, RECORD_HEADER_LEN, SESSION_INTERVAL_CRCS, SUMMARY_BLOCK_LEN,
};
use crate::storage::Storage;
use crate::time::Timestamp;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Identifies a stream within the session that defined it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u16);

/// What a finished session holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// Session UUID.
    pub id: uuid::Uuid,
    /// Session name.
    pub name: String,
    /// File offset of the session's start record.
    pub offset: u64,
    /// Wall time at start.
    pub start: Timestamp,
    /// Wall time at the end.
    pub end: Timestamp,
    /// Frames over all streams.
    pub frames: u64,
    /// Checkpoints written.
    pub checkpoints: u32,
    /// Bytes the session occupies in the file.
    pub bytes: u64,
    /// (name, frames) of each stream, in definition order.
    pub streams: Vec<(String, u64)>,
}

/// Per-stream writer state: constant size, plus the frame entries of the current checkpoint
/// interval (earlier intervals' blocks are read back from the file when needed).
struct StreamState {
    name: String,
    def_offset: u64,
    frames: u64,
    payload_bytes: u64,
    first_ts: i64,
    last_ts: i64,
    pending: Vec<IndexEntry>,
    pending_bytes: u64,
}

/// The state of a session being written; [`SessionWriter`] and the stream senders share it.
pub(crate) struct SessionCore {
    home: Arc<Mutex<Home>>,
    storage: Option<SessionStorage>,
    /// The buffer is handed over when it holds this many bytes: the whole buffer when writing
    /// synchronously, smaller pieces for the write-behind thread so that it works while the
    /// interval fills and a checkpoint has little left to wait for.
    flush_at: usize,
    /// The write-behind ticket of the latest checkpoint: it may still be on its way to the OS
    /// (the next checkpoint waits for it, so at most one is).
    checkpoint_ticket: u64,
    slots: SlotState,
    options: RecorderOptions,
    id: uuid::Uuid,
    salt: u32,
    salt_state: u32,
    name: String,
    start_offset: u64,
    start_ns: i64,
    buf: Vec<u8>,
    buf_start: u64,
    streams: Vec<StreamState>,
    by_name: HashMap<String, u16>,
    control: Vec<u64>,
    metadata: Vec<(String, String)>,
    frames_total: u64,
    frames_since_checkpoint: u64,
    checkpoints: u32,
    /// The last checkpoint and its jumps, (number, offset), newest first: all the writer keeps
    /// of its checkpoints.
    chain: Vec<(u32, u64)>,
    last_checkpoint: u64,
    interval_start: u64,
    /// CRC32 of the interval's bytes so far, updated as the buffer is handed to the storage
    /// (format 1.1: the checkpoint records it).
    interval_crc: crc32fast::Hasher,
    /// Bytes up to this offset are in `interval_crc` (`u64::MAX` while a checkpoint record is
    /// being written: its bytes belong to no interval).
    hashed_to: u64,
    last_checkpoint_time: Instant,
    last_sync: Instant,
    failed: Option<String>,
    /// Called at each checkpoint without explicit state; its bytes become the state.
    pub(crate) snapshot: Option<Box<dyn FnMut() -> Vec<u8> + Send>>,
    /// Set when the session was finished from inside (the action limit).
    pub(crate) finished_info: Option<SessionInfo>,
    /// The end time to record instead of the time of finishing (`set_end_time`).
    pub(crate) end_override: Option<i64>,
    /// What the SessionStart said (its metadata is replaced by the current metadata when the
    /// description is written again).
    start_body: SessionStartBody,
    /// Every stream definition, for the description's second copy.
    defs: Vec<StreamDefBody>,
    /// Streams covered by the last Description record (None: none written yet).
    described: Option<usize>,
    /// The recording process: a child forked from it shares the file but not the write-behind
    /// threads, and must neither write the session nor wait for them.
    process: u32,
}

/// Size of the pieces handed to the write-behind thread. Large writes matter twice on Linux:
/// measured here, 1M frames of 139 bytes written in 64 KiB `pwrite`s took 65 ms plus an 87 ms
/// fsync, in 256 KiB ones 48 + 61 ms, in 1 MiB ones 41 + 57 ms (larger page-cache folios). A
/// checkpoint interval of small frames (~125 KB by default) then goes to the OS in one write.
const BACKGROUND_PIECE: usize = 256 * 1024;

/// Payloads at least this large skip the buffer (written straight after flushing it).
const DIRECT_WRITE_MIN: usize = 256 * 1024;

impl SessionCore {
    pub(crate) fn start(recorder: &mut Recorder, start: SessionStart) -> Result<SessionCore> {
        let SessionStart { name, metadata, id, start } = start;
        let name = name.as_str();
        let (storage, slots, last_sync) = {
            let mut home = recorder.home.lock().map_err(|_| Error::Closed("recorder state poisoned".into()))?;
            let storage = home
                .storage
                .take()
                .ok_or_else(|| Error::InvalidArgument("a session is already recording with this recorder; finish it first".into()))?;
            (storage, home.slots, home.last_sync)
        };
        let background = recorder.options.background_writes && recorder.options.durability != Durability::EveryFrame;
        let early_syncs = recorder.options.durability != Durability::None;
        let mut storage = SessionStorage::new(storage, background, 4 * BACKGROUND_PIECE, early_syncs);
        if let Some(id) = recorder.path.as_deref().and_then(|p| std::fs::File::open(p).ok()).and_then(|f| super::behind::file_identity(&f))
        {
            storage.register(id);
        }
        let id = id.unwrap_or_else(uuid::Uuid::new_v4);
        let salt = session_salt(&id);
        let start_offset = slots.current.committed_len;
        let start_ns = start.unwrap_or_else(Timestamp::now).as_nanos();
        let body = SessionStartBody {
            id,
            start_ns,
            prev_session_end: slots.current.last_session_end,
            name: name.to_string(),
            metadata: metadata.clone(),
            flags: SESSION_INTERVAL_CRCS,
        };
        let flush_at = if background { recorder.options.buffer_bytes.min(BACKGROUND_PIECE) } else { recorder.options.buffer_bytes };
        let mut buf = if background { super::behind::touched_buffer() } else { Vec::with_capacity(flush_at + 4096) };
        put_record(&mut buf, Kind::SessionStart, salt, &body.encode());
        let start_body = body;
        let mut w = SessionCore {
            home: recorder.home.clone(),
            storage: None,
            flush_at,
            checkpoint_ticket: 0,
            slots,
            options: recorder.options.clone(),
            id,
            salt,
            salt_state: crate::format::record::salt_crc(salt),
            name: name.to_string(),
            start_offset,
            start_ns,
            buf_start: start_offset,
            interval_start: start_offset + buf.len() as u64,
            interval_crc: crc32fast::Hasher::new(),
            hashed_to: start_offset + buf.len() as u64,
            buf,
            streams: Vec::new(),
            by_name: HashMap::new(),
            control: Vec::new(),
            metadata,
            frames_total: 0,
            frames_since_checkpoint: 0,
            checkpoints: 0,
            chain: Vec::new(),
            last_checkpoint: 0,
            last_checkpoint_time: Instant::now(),
            last_sync,
            failed: None,
            snapshot: None,
            finished_info: None,
            end_override: None,
            start_body,
            defs: Vec::new(),
            described: None,
            process: std::process::id(),
        };
        // The session start and the Recording marker are written at once, so that a crash at
        // any later moment leaves a session that recovery can find.
        let started = (|| -> Result<()> {
            w.flush_to(&mut storage)?;
            let sync = w.options.durability != Durability::None;
            if sync {
                storage.sync()?;
            }
            let slot = Slot {
                state: State::Recording,
                committed_len: w.position(),
                active_session: start_offset,
                last_checkpoint: 0,
                ..w.slots.current
            };
            w.slots.commit(&mut storage, slot)?;
            if sync {
                storage.sync()?;
            }
            Ok(())
        })();
        if let Err(e) = started {
            // Give the storage back so the recorder stays usable.
            if let Ok(mut home) = w.home.lock() {
                home.storage = Some(storage.into_inner());
            }
            w.failed = Some("failed to start".into());
            return Err(e);
        }
        w.storage = Some(storage);
        Ok(w)
    }

    /// The session's UUID.
    pub fn id(&self) -> uuid::Uuid {
        self.id
    }

    /// Frames written so far over all streams.
    pub fn frames(&self) -> u64 {
        self.frames_total
    }

    /// Checkpoints written so far.
    /// Checkpoints whose bytes have reached the OS (a crash of the process keeps them); waits
    /// for the latest one when it is still with the write-behind thread.
    pub fn checkpoints(&self) -> u32 {
        match &self.storage {
            // Only the latest can be in doubt: writing a checkpoint waits for the one before.
            Some(st) if !st.reached(self.checkpoint_ticket) => self.checkpoints.saturating_sub(1),
            _ => self.checkpoints,
        }
    }

    /// The name of a stream, if defined.
    pub fn stream_name(&self, stream: StreamId) -> Option<&str> {
        self.streams.get(usize::from(stream.0)).map(|s| s.name.as_str())
    }

    /// The id of a stream defined earlier, by name.
    pub fn stream_id(&self, name: &str) -> Option<StreamId> {
        self.by_name.get(name).map(|&i| StreamId(i))
    }

    /// File offset where the next record goes.
    fn position(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    fn check_open(&self) -> Result<()> {
        match &self.failed {
            Some(why) => Err(Error::Closed(why.clone())),
            None => Ok(()),
        }
    }

    /// Whether this is a process forked from the recording one.
    fn forked(&self) -> bool {
        self.process != std::process::id()
    }

    /// [`SessionCore::check_open`], and refuses (for good) in a process forked from the
    /// recording one. Checked where the writer hands bytes over, not for every frame (a
    /// `getpid` costs a system call): a forked child's frames stay in its copy of the buffer.
    fn check_writable(&mut self) -> Result<()> {
        self.check_open()?;
        if self.forked() {
            let why = crate::threads::forked_session(self.process);
            self.failed = Some(why.clone());
            return Err(Error::Closed(why));
        }
        Ok(())
    }

    /// Adds the buffered bytes not yet hashed to the interval's CRC (before the buffer is
    /// handed over).
    #[inline]
    fn hash_buffered(&mut self) {
        let end = self.position();
        if self.hashed_to < end {
            let from = usize::try_from(self.hashed_to.saturating_sub(self.buf_start)).unwrap_or(usize::MAX).min(self.buf.len());
            self.interval_crc.update(&self.buf[from..]);
            self.hashed_to = end;
        }
    }

    fn flush_to(&mut self, storage: &mut SessionStorage) -> Result<()> {
        self.hash_buffered();
        if !self.buf.is_empty() {
            let len = self.buf.len() as u64;
            storage.write_buffer(self.buf_start, &mut self.buf)?;
            self.buf_start += len;
        }
        Ok(())
    }

    /// The storage, for reading back earlier records.
    fn reader(&self) -> Result<&dyn Storage> {
        self.storage.as_ref().map(|s| s as &dyn Storage).ok_or_else(|| Error::Closed("session finished".into()))
    }

    /// Runs an I/O step; on error the writer is poisoned (the file state is then only known to
    /// recovery) and the error returned.
    fn io<T>(&mut self, f: impl FnOnce(&mut Self, &mut SessionStorage) -> Result<T>) -> Result<T> {
        self.check_writable()?;
        let mut storage = self.storage.take().ok_or_else(|| Error::Closed("session finished".into()))?;
        let r = f(self, &mut storage);
        self.storage = Some(storage);
        if let Err(e) = &r {
            self.failed = Some(format!("an earlier write failed: {e}"));
        }
        r
    }

    /// Defines a stream with an encoding label and a schema (name and bytes).
    pub fn add_stream_with_schema(&mut self, name: &str, encoding: &str, schema_name: &str, schema: &[u8]) -> Result<StreamId> {
        self.check_open()?;
        if self.by_name.contains_key(name) {
            return Err(Error::InvalidArgument(format!("stream {name:?} is already defined in this session")));
        }
        let id = u16::try_from(self.streams.len()).map_err(|_| Error::LimitExceeded("at most 65536 streams per session".into()))?;
        let body = StreamDefBody {
            stream: id,
            name: name.into(),
            encoding: encoding.into(),
            schema_name: schema_name.into(),
            schema: schema.to_vec(),
        };
        let offset = self.position();
        put_record(&mut self.buf, Kind::StreamDef, self.salt, &body.encode());
        self.control.push(offset);
        self.defs.push(body);
        self.streams.push(StreamState {
            name: name.into(),
            def_offset: offset,
            frames: 0,
            payload_bytes: 0,
            first_ts: i64::MAX,
            last_ts: i64::MIN,
            pending: Vec::new(),
            pending_bytes: 0,
        });
        self.by_name.insert(name.into(), id);
        Ok(StreamId(id))
    }

    /// Sets a metadata key of the session (written at once; a later value for the same key
    /// replaces the earlier one).
    pub fn set_metadata(&mut self, key: &str, value: &str) -> Result<()> {
        self.check_open()?;
        let offset = self.position();
        put_record(&mut self.buf, Kind::Metadata, self.salt, &encode_metadata(key, value));
        self.control.push(offset);
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(kv) => kv.1 = value.to_string(),
            None => self.metadata.push((key.to_string(), value.to_string())),
        }
        Ok(())
    }

    /// Appends a frame; returns how many frames the stream holds now (like dimos' `save_one`).
    /// Timestamps need not be increasing.
    pub fn write(&mut self, stream: StreamId, ts: Timestamp, data: &[u8]) -> Result<u64> {
        self.check_open()?;
        let index = usize::from(stream.0);
        let Some(s) = self.streams.get_mut(index) else {
            return Err(Error::InvalidArgument(format!("stream id {} is not defined in this session", stream.0)));
        };
        let seq = u32::try_from(s.frames)
            .map_err(|_| Error::LimitExceeded(format!("stream {:?} holds 2^32 frames, the most one session can hold", s.name)))?;
        if data.len() as u64 > MAX_BODY_LEN - FRAME_FIXED_LEN as u64 {
            return Err(Error::LimitExceeded(format!("a frame payload can hold at most {} bytes", MAX_BODY_LEN - FRAME_FIXED_LEN as u64)));
        }
        let offset = self.buf_start + self.buf.len() as u64;
        let ts = ts.as_nanos();
        s.pending.push(IndexEntry { ts, offset });
        s.pending_bytes += data.len() as u64;
        s.frames += 1;
        s.payload_bytes += data.len() as u64;
        s.first_ts = s.first_ts.min(ts);
        s.last_ts = s.last_ts.max(ts);
        let count = s.frames;
        self.frames_total += 1;
        self.frames_since_checkpoint += 1;
        if data.len() >= DIRECT_WRITE_MIN {
            // One pass over the payload serves the record's CRC and the interval's (combined).
            let mut payload_crc = crc32fast::Hasher::new();
            payload_crc.update(data);
            self.buf.extend_from_slice(&frame_header_combined(self.salt_state, stream.0, seq, ts, data.len(), &payload_crc));
            self.hash_buffered();
            self.interval_crc.combine(&payload_crc);
            self.hashed_to += data.len() as u64;
            self.io(|w, st| {
                // Written from here, without a copy or a hand-over to the write-behind thread
                // (whose queue is drained first).
                st.write_direct(w.buf_start, &w.buf)?;
                w.buf_start += w.buf.len() as u64;
                w.buf.clear();
                st.write_direct(w.buf_start, data)?;
                w.buf_start += data.len() as u64;
                Ok(())
            })?;
        } else {
            // Header and payload side by side in the buffer: one CRC pass over both.
            let start = self.buf.len();
            self.buf.extend_from_slice(&frame_header_unsealed(stream.0, seq, ts, data.len()));
            self.buf.extend_from_slice(data);
            seal_record(&mut self.buf[start..], self.salt_state);
            if self.buf.len() >= self.flush_at {
                self.io(|w, st| w.flush_to(st))?;
            }
        }
        if self.options.durability == Durability::EveryFrame {
            self.io(|w, st| {
                w.flush_to(st)?;
                st.sync()?;
                Ok(())
            })?;
        }
        if self.checkpoint_due() {
            self.write_checkpoint(&[])?;
        }
        Ok(count)
    }

    fn checkpoint_due(&self) -> bool {
        let by_count = self.options.checkpoint_every_frames > 0 && self.frames_since_checkpoint >= self.options.checkpoint_every_frames;
        // Reading the clock costs ~20 ns; every 16th frame is often enough for a time trigger.
        by_count
            || (!self.options.checkpoint_every.is_zero()
                && self.frames_since_checkpoint % 16 == 1
                && self.last_checkpoint_time.elapsed() >= self.options.checkpoint_every)
    }

    /// Writes a checkpoint now: everything written so far is handed to the OS and becomes
    /// recoverable after a crash of this process.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.write_checkpoint(&[])?;
        self.handed_to_os()
    }

    /// Waits until every byte written so far has reached the OS (an explicit checkpoint
    /// promises that).
    fn handed_to_os(&mut self) -> Result<()> {
        self.io(|_, st| Ok(st.drain()?))
    }

    /// Writes a checkpoint carrying a snapshot of the caller's state (for instance a module's
    /// state, to restart a replay from here).
    pub fn checkpoint_with_state(&mut self, state: &[u8]) -> Result<()> {
        if state.len() as u64 > MAX_BODY_LEN / 2 {
            return Err(Error::LimitExceeded("checkpoint state too large".into()));
        }
        self.write_checkpoint(state)?;
        self.handed_to_os()
    }

    fn write_checkpoint(&mut self, state: &[u8]) -> Result<()> {
        self.check_writable()?;
        let snapshot;
        let state = match self.snapshot.as_mut() {
            Some(f) if state.is_empty() => {
                snapshot = f();
                &snapshot[..]
            }
            _ => state,
        };
        if self.described != Some(self.defs.len()) {
            self.put_description();
        }
        let offset = self.position();
        self.hash_buffered();
        let interval_crc = std::mem::replace(&mut self.interval_crc, crc32fast::Hasher::new()).finalize();
        self.hashed_to = u64::MAX;
        let mut blocks = Vec::new();
        let mut entries: Vec<&[IndexEntry]> = Vec::new();
        for (id, s) in self.streams.iter_mut().enumerate() {
            if s.pending.is_empty() {
                continue;
            }
            if !s.pending.is_sorted() {
                s.pending.sort_unstable();
            }
            let (first, last) = (s.pending[0].ts, s.pending.iter().map(|e| e.ts).max().unwrap_or(i64::MIN));
            blocks.push(BlockHeader {
                stream: id as u16,
                count: s.pending.len() as u32,
                first_ts: first,
                last_ts: last,
                payload_bytes: s.pending_bytes,
                entries_offset: 0,
            });
        }
        let number = self.checkpoints + 1;
        let m = number - lowbit(number);
        // Jumps: m's decomposition, all within the previous checkpoint's chain.
        let jumps: Vec<u64> = decomposition(m)
            .iter()
            .map(|k| self.chain.iter().find(|(c, _)| c == k).map(|&(_, o)| o))
            .collect::<Option<_>>()
            .ok_or_else(|| Error::Closed("the checkpoint chain lost an offset".into()))?;
        // The summary repeats checkpoints m+1 ..= n−1: exactly what the previous checkpoint's
        // records above m hold. They are read back from the file, not kept in memory.
        let mut sources: Vec<(u32, u64)> = self.chain.iter().filter(|(c, _)| *c > m).copied().collect();
        sources.sort_unstable();
        let control = std::mem::take(&mut self.control);
        let (summary_control_count, summary_block_count) = { count_in_records(self.reader()?, &sources)? };
        let entry_count: usize = self.streams.iter().map(|s| s.pending.len()).sum();
        let head = CheckpointHead {
            number,
            prev_checkpoint: self.last_checkpoint,
            wall_ns: Timestamp::now().as_nanos(),
            frames_total: self.frames_total,
            interval_start: self.interval_start,
            interval_crc,
            control: &control,
            jumps: &jumps,
            summary_control_count,
            summary_block_count,
            state_len: state.len() as u32,
            block_count: blocks.len() as u32,
        };
        let body_len = checkpoint_body_len(offset, &head, entry_count);
        if body_len > MAX_BODY_LEN {
            return Err(Error::LimitExceeded("checkpoint record too large".into()));
        }
        let start = begin_checkpoint(&mut self.buf, &head);
        self.buf[start + 4..start + 8].copy_from_slice(&(body_len as u32).to_le_bytes());
        // The summary is copied from earlier records in bounded pieces, and the record goes to
        // the OS in pieces when it is long, so neither is ever held whole: the CRC is computed
        // as the bytes go by.
        let mut sink = RecordSink::new(offset, start, self.salt_state);
        if let Err(e) = self.copy_summary(&sources, &mut sink, (summary_control_count, summary_block_count)) {
            self.failed = Some(format!("writing checkpoint {number} failed: {e}"));
            return Err(e);
        }
        for s in &self.streams {
            if !s.pending.is_empty() {
                entries.push(&s.pending);
            }
        }
        let at = self.position();
        let placed = put_checkpoint_tail(&mut self.buf, at, state, &blocks, &entries);
        debug_assert_eq!(self.position(), offset + RECORD_HEADER_LEN as u64 + body_len);
        drop(entries);
        self.io(|w, st| sink.finish(&mut w.buf, st))?;
        // The new chain: n and m's decomposition.
        let keep = decomposition(m);
        self.chain.retain(|(c, _)| keep.contains(c));
        self.chain.insert(0, (number, offset));
        let strict = matches!(self.options.durability, Durability::EveryCheckpoint | Durability::EveryFrame);
        let sync_due = match self.options.durability {
            Durability::EveryCheckpoint | Durability::EveryFrame => true,
            Durability::Interval(d) => self.last_sync.elapsed() >= d,
            Durability::None => false,
        };
        let end = self.position();
        let session = self.start_offset;
        self.io(|w, st| {
            w.flush_to(st)?;
            // The strict policies wait for the disk; the interval policy lets the write-behind
            // thread sync in order, without holding up the recording.
            match (sync_due, strict) {
                (true, true) => st.sync()?,
                (true, false) => st.sync_later()?,
                (false, _) => {}
            }
            let slot =
                Slot { state: State::Recording, committed_len: end, active_session: session, last_checkpoint: offset, ..w.slots.current };
            w.slots.commit(st, slot)?;
            // Under the strict policies the slot itself is made durable too.
            if sync_due && strict {
                st.sync()?;
            }
            // Bound what is in flight to this checkpoint's interval: the one before it must
            // have reached the OS.
            let ticket = st.ticket();
            st.wait_for(std::mem::replace(&mut w.checkpoint_ticket, ticket))?;
            Ok(())
        })?;
        if sync_due {
            self.last_sync = Instant::now();
        }
        for b in &placed {
            let s = &mut self.streams[usize::from(b.stream)];
            s.pending.clear();
            s.pending_bytes = 0;
        }
        self.checkpoints += 1;
        self.last_checkpoint = offset;
        self.interval_start = end;
        self.hashed_to = end;
        self.frames_since_checkpoint = 0;
        self.last_checkpoint_time = Instant::now();
        Ok(())
    }

    /// Appends the summary control offsets, then the summary blocks, of checkpoint records
    /// `sources` to the record being written, reading them back in bounded chunks and handing
    /// the buffer to the OS whenever it fills.
    fn copy_summary(&mut self, sources: &[(u32, u64)], sink: &mut RecordSink, expected: (u32, u32)) -> Result<()> {
        const CHUNK: usize = 64 * 1024;
        // Keep the buffer about as full as between two ordinary checkpoints.
        const FLUSH_WHILE_COPYING: usize = 2 * CHUNK;
        let mut scratch = Vec::new();
        let mut counts = (0u32, 0u32);
        for blocks_pass in [false, true] {
            for &(number, record) in sources {
                let sec = read_sections(self.reader()?, record)?;
                if sec.number != number {
                    return Err(Error::Malformed {
                        what: "checkpoint",
                        offset: record,
                        reason: format!("number {}, expected {number}", sec.number),
                    });
                }
                let parts = if blocks_pass {
                    [(sec.summary_blocks, SUMMARY_BLOCK_LEN, None), (sec.blocks, BLOCK_HEADER_LEN, Some(number))]
                } else {
                    [(sec.summary_control, 16, None), (sec.control, 8, Some(number))]
                };
                for ((at, count), size, own) in parts {
                    let per = (CHUNK / size).max(1);
                    let mut done = 0usize;
                    while done < count as usize {
                        let n = per.min(count as usize - done);
                        scratch.resize(n * size, 0);
                        self.reader()?.read_at(at + (done * size) as u64, &mut scratch)?;
                        for el in scratch.chunks_exact(size) {
                            match (blocks_pass, own) {
                                (false, None) => put_summary_control(&mut self.buf, le_u32(el, 0), le_u64(el, 8)),
                                (false, Some(k)) => put_summary_control(&mut self.buf, k, le_u64(el, 0)),
                                (true, None) => put_summary_block(&mut self.buf, &decode_summary_block(el)),
                                (true, Some(k)) => {
                                    put_summary_block(&mut self.buf, &SummaryBlock { checkpoint: k, block: decode_block(el) })
                                }
                            }
                        }
                        if blocks_pass {
                            counts.1 += n as u32;
                        } else {
                            counts.0 += n as u32;
                        }
                        done += n;
                        if self.buf.len() >= FLUSH_WHILE_COPYING {
                            self.io(|w, st| sink.flush(&mut w.buf, &mut w.buf_start, st))?;
                        }
                    }
                }
            }
        }
        if counts != expected {
            return Err(Error::Malformed {
                what: "checkpoint",
                offset: sink.offset,
                reason: "earlier checkpoints changed while the summary was copied".into(),
            });
        }
        Ok(())
    }

    /// Puts a Description record (the second copy of the session's start and stream
    /// definitions, with the current metadata) into the buffer.
    fn put_description(&mut self) {
        let mut start = self.start_body.clone();
        start.metadata = self.metadata.clone();
        let body = DescriptionBody { start, streams: self.defs.clone() };
        put_record(&mut self.buf, Kind::Description, self.salt, &body.encode());
        self.described = Some(self.defs.len());
    }

    /// Ends the session: writes a last checkpoint if frames are pending, the final index and
    /// the session end, syncs (unless `Durability::None`) and marks the file idle.
    pub(crate) fn finish_inner(&mut self) -> Result<SessionInfo> {
        self.check_writable()?;
        if self.streams.iter().any(|s| !s.pending.is_empty()) || !self.control.is_empty() || self.checkpoints == 0 {
            self.write_checkpoint(&[])?;
        }
        // The last copy of the description, with the final metadata, just before the index.
        self.put_description();
        let summaries: Vec<StreamStats> = self
            .streams
            .iter()
            .enumerate()
            .map(|(id, s)| StreamStats::new(id as u16, s.def_offset, s.frames, s.payload_bytes, s.first_ts, s.last_ts))
            .collect();
        let end_ns = self.end_override.unwrap_or_else(|| Timestamp::now().as_nanos());
        let sync = self.options.durability != Durability::None;
        let pos = self.position();
        let written = self.io(|w, st| {
            w.flush_to(st)?;
            let fields = EndFields {
                session_start: w.start_offset,
                end_ns,
                frames: w.frames_total,
                checkpoints: w.checkpoints,
                recovered: false,
                metadata: &w.metadata,
            };
            let mut chain = w.chain.clone();
            chain.reverse();
            let written = write_index_and_end(st, &mut w.buf, pos, w.salt, &summaries, &chain, &fields)?;
            // What lies past the session's end (the zeros reserved ahead of it, or the torn
            // tail of an abandoned session it wrote over) goes, before the sync that makes the
            // end durable.
            if st.len()? > written.new_len {
                st.set_len(written.new_len)?;
            }
            if sync {
                st.sync()?;
            }
            let slot = Slot {
                state: State::Idle,
                committed_len: written.new_len,
                active_session: 0,
                last_checkpoint: 0,
                last_session_end: written.end_offset,
                ..w.slots.current
            };
            w.slots.commit(st, slot)?;
            if sync {
                st.sync()?;
            }
            Ok(written)
        })?;
        self.buf_start = written.new_len;
        let info = SessionInfo {
            id: self.id,
            name: self.name.clone(),
            offset: self.start_offset,
            start: Timestamp::from_nanos(self.start_ns),
            end: Timestamp::from_nanos(end_ns),
            frames: self.frames_total,
            checkpoints: self.checkpoints,
            bytes: written.new_len - self.start_offset,
            streams: self.streams.iter().map(|s| (s.name.clone(), s.frames)).collect(),
        };
        self.failed = Some("session finished".into());
        self.return_storage();
        Ok(info)
    }

    /// Stops without finishing, as if the process had been killed now: bytes still in the
    /// user-space buffer are dropped and the session stays marked as recording, for recovery
    /// to find. Meant for tests of crash handling.
    pub(crate) fn abandon(&mut self) {
        self.buf.clear();
        self.failed = Some("abandoned".into());
        self.return_storage();
    }

    fn return_storage(&mut self) {
        if self.forked() {
            // The parent's threads are not in this process: nothing to wait for or join, and
            // the descriptor stays open for the parent (dropping the child's copy would do no
            // harm to it, but its queue would wait for the missing thread).
            std::mem::forget(self.storage.take());
            return;
        }
        if let Some(storage) = self.storage.take() {
            // Waits for the write-behind queue.
            let storage = storage.into_inner();
            if let Ok(mut home) = self.home.lock() {
                home.storage = Some(storage);
                home.slots = self.slots;
                home.last_sync = self.last_sync;
            }
        }
    }
}

impl Drop for SessionCore {
    fn drop(&mut self) {
        if self.failed.is_none() && !self.forked() {
            let _ = self.finish_inner();
        }
        self.return_storage();
    }
}
