//! Finding the sessions of a file and the index runs of their streams, from the bytes alone.
//!
//! Finished sessions are found in O(sessions) by walking back from the commit slot's last
//! session end. The active session (slot says Recording) is rebuilt from its checkpoint chain
//! plus a scan of the records after its last checkpoint: O(checkpoints + tail), never the
//! whole session, unless the chain itself is damaged.

use super::runs::SampledRuns;
use crate::error::{Error, Result};
use crate::format::header::{Slot, SlotState, Slots, HEADER_LEN};
use crate::format::index::{encode_entries, IndexEntry, ENTRY_LEN};
use crate::format::record::RunInfo;
use crate::format::record::{
    check_directory_in, checkpoint_back_from, index_last_checkpoint, lowbit, BlockHeader, CheckpointLog, IndexSample, RunRef, SummaryBlock,
    RECORD_HEADER_LEN,
};
use crate::format::record::{
    decode_frame, decode_index_streams, decode_metadata, read_record, read_record_of, CheckpointBody, Kind, SessionEndBody,
    SessionStartBody, StreamDefBody, RUN_LEN,
};
use std::sync::Arc;

/// The state of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    /// Ended with a SessionEnd record (possibly written by recovery).
    Finished,
    /// Not ended, and no writer holds the file: recover it to finish it.
    Interrupted,
    /// Not ended, and a writer holds the file lock: it is being recorded now.
    Recording,
    /// Records that describe the session (its start, an index, its end, a stream definition)
    /// are damaged: its frames were found by scanning its records.
    Damaged,
}

impl SessionState {
    /// `finished`, `interrupted` or `recording`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Finished => "finished",
            SessionState::Interrupted => "interrupted",
            SessionState::Recording => "recording",
            SessionState::Damaged => "damaged",
        }
    }
}

/// Where a run's entries are.
#[derive(Clone, Debug)]
pub(crate) enum RunLoc {
    /// In the mapped file at this offset.
    File(u64),
    /// In memory (entries rebuilt from an interrupted session's tail).
    Owned(Arc<[u8]>),
}

/// A sorted run of a stream's index, with the number of entries in the runs before it.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub first_ts: i64,
    pub cum_start: u64,
    pub count: u64,
    pub loc: RunLoc,
}

/// Where to find a stream's runs.
#[derive(Clone, Debug)]
pub(crate) enum RunSource {
    /// The run directory of a finished session's Index record.
    Directory { offset: u64, count: u64 },
    /// Runs built when the file was opened.
    Built(Arc<[Run]>),
    /// The run directory of a finished session's Index, described by its sample (1.1).
    Sampled(Arc<SampledRuns>),
}

/// One stream as found in the file.
#[derive(Clone, Debug)]
pub(crate) struct StreamLayout {
    pub def: StreamDefBody,
    pub frames: u64,
    pub payload_bytes: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub runs: RunSource,
}

impl StreamLayout {
    /// The bytes of the stream's frame records (framing and fields included).
    pub fn record_bytes(&self) -> u64 {
        self.payload_bytes.saturating_add(self.frames.saturating_mul(crate::format::record::FRAME_OVERHEAD as u64))
    }
}

/// One session as found in the file.
#[derive(Clone, Debug)]
pub(crate) struct SessionLayout {
    pub offset: u64,
    pub salt: u32,
    /// CRC state of the salt, for one-pass record checks.
    pub salt_state: u32,
    pub start: SessionStartBody,
    pub state: SessionState,
    pub end: Option<SessionEndBody>,
    pub end_offset: Option<u64>,
    pub index_offset: Option<u64>,
    /// Offset just past the session's last valid record.
    pub segment_end: u64,
    pub frames: u64,
    pub checkpoints: u32,
    pub metadata: Vec<(String, String)>,
    pub streams: Vec<StreamLayout>,
    /// Why the scan of an unfinished session stopped (a torn or damaged record), if it did.
    pub stop: Option<String>,
    /// Offset of the last checkpoint, when known: the checkpoint records whose blocks the
    /// runs reference are found from it and checked before the runs are used.
    pub last_checkpoint: Option<u64>,
    /// Whether the Index record's CRC was checked at open (false when the session was opened
    /// through its Index sample: it is checked when an entry does not name its frame).
    pub index_checked: bool,
    /// Damaged stretches that reading this session skipped, with records that validate after
    /// each (so not a torn end): what a reader warns about.
    pub skipped: Vec<String>,
}

/// A stream of an unfinished session, during its rebuild.
#[derive(Clone, Debug, Default)]
pub(crate) struct ActiveStream {
    pub def: Option<StreamDefBody>,
    pub def_offset: u64,
    pub tail: Vec<IndexEntry>,
    pub tail_bytes: u64,
    pub frames: u64,
    pub payload_bytes: u64,
    pub first_ts: i64,
    pub last_ts: i64,
}

/// An unfinished session, rebuilt.
#[derive(Clone, Debug)]
pub(crate) struct ActiveScan {
    pub offset: u64,
    pub salt: u32,
    pub start: SessionStartBody,
    pub streams: Vec<ActiveStream>,
    pub metadata: Vec<(String, String)>,
    pub checkpoints: u32,
    pub last_checkpoint: u64,
    pub frames: u64,
    /// Offset just past the last valid record.
    pub valid_end: u64,
    /// A SessionEnd of this session found in the tail (the slot update after it was lost).
    pub found_end: Option<(u64, SessionEndBody)>,
    /// Why the scan stopped before `limit`, if it did.
    pub stop: Option<String>,
    /// Number of tail frames (after the last checkpoint).
    pub tail_frames: u64,
    /// Offset of the first record after the last checkpoint (or after the session start).
    pub tail_start: u64,
    /// StreamDef and Metadata records after the last checkpoint.
    pub tail_control: Vec<u64>,
    /// Wall time of the last checkpoint (the session start when none).
    pub last_wall_ns: i64,
    /// The checkpoints found: their blocks, control records and offsets.
    pub log: CheckpointLog,
    /// Damage inside the tail that valid records of the session follow: (offset, what). The
    /// scan resynchronises on the next valid record, so nothing after it is lost.
    pub damage: Vec<(u64, String)>,
}

pub(crate) fn set_metadata(md: &mut Vec<(String, String)>, k: String, v: String) {
    match md.iter_mut().find(|(key, _)| *key == k) {
        Some(kv) => kv.1 = v,
        None => md.push((k, v)),
    }
}

impl ActiveScan {
    fn stream_mut(&mut self, id: u16, at: u64) -> Result<&mut ActiveStream> {
        match self.streams.get_mut(usize::from(id)) {
            Some(s) if s.def.is_some() => Ok(s),
            _ => Err(Error::Malformed { what: "frame", offset: at, reason: format!("stream {id} is not defined before it is used") }),
        }
    }

    fn apply_control(&mut self, file: &[u8], offset: u64) -> Result<()> {
        let r = read_record(file, offset, Some(self.salt))?;
        match r.kind() {
            Some(Kind::StreamDef) => {
                let def = StreamDefBody::decode(r.body, offset)?;
                let id = usize::from(def.stream);
                if id != self.streams.len() {
                    return Err(Error::Malformed {
                        what: "stream definition",
                        offset,
                        reason: format!("stream id {id}, expected {}", self.streams.len()),
                    });
                }
                self.streams.push(ActiveStream {
                    def: Some(def),
                    def_offset: offset,
                    first_ts: i64::MAX,
                    last_ts: i64::MIN,
                    ..Default::default()
                });
            }
            Some(Kind::Metadata) => {
                let (k, v) = decode_metadata(r.body, offset)?;
                set_metadata(&mut self.metadata, k, v);
            }
            _ => {
                return Err(Error::Malformed {
                    what: "checkpoint",
                    offset,
                    reason: format!("control offset points at a record of kind {}", r.kind_byte),
                })
            }
        }
        Ok(())
    }

    fn add_block(&mut self, b: &BlockHeader, at: u64) -> Result<()> {
        let s = self.stream_mut(b.stream, at)?;
        s.frames += u64::from(b.count);
        s.payload_bytes += b.payload_bytes;
        s.first_ts = s.first_ts.min(b.first_ts);
        s.last_ts = s.last_ts.max(b.last_ts);
        Ok(())
    }

    /// Applies a checkpoint met in the tail scan: its control records were applied as they
    /// were met; its blocks replace the tail frames collected so far.
    fn apply_tail_checkpoint(&mut self, offset: u64, cp: &CheckpointBody) -> Result<()> {
        if cp.control != self.tail_control {
            return Err(Error::Malformed {
                what: "checkpoint",
                offset,
                reason: "control offsets differ from the records of its interval".into(),
            });
        }
        for b in &cp.blocks {
            self.add_block(b, offset)?;
        }
        self.log.record(cp.number, offset, &cp.blocks, &cp.control);
        // Frames seen in the tail before this checkpoint are the ones its blocks describe.
        for s in &mut self.streams {
            s.tail.clear();
            s.tail_bytes = 0;
        }
        self.tail_frames = 0;
        self.tail_control.clear();
        self.last_wall_ns = cp.wall_ns;
        self.checkpoints = cp.number;
        self.last_checkpoint = offset;
        self.frames = cp.frames_total;
        Ok(())
    }
}

/// Reads and checks a session start record.
fn read_session_start(file: &[u8], offset: u64) -> Result<(u32, SessionStartBody, u64)> {
    let salt = SessionStartBody::salt_of(file, offset)?;
    let r = read_record_of(file, offset, salt, Kind::SessionStart)?;
    Ok((salt, SessionStartBody::decode(r.body, offset)?, r.end()))
}

/// Reads the checkpoint at `offset` of the session with `salt`.
fn read_checkpoint(file: &[u8], offset: u64, salt: u32) -> Result<(CheckpointBody, u64)> {
    let r = read_record_of(file, offset, salt, Kind::Checkpoint)?;
    Ok((CheckpointBody::decode(r.body, offset)?, r.end()))
}

/// Rebuilds an unfinished session from `file[..limit]`. `candidates` are checkpoint offsets to
/// start from, best first (from the commit slots); a zero or invalid candidate is skipped, and
/// when none is usable the whole session is scanned from its start.
pub(crate) fn scan_active(file: &[u8], session_offset: u64, candidates: &[u64], limit: u64) -> Result<ActiveScan> {
    let file = &file[..usize::try_from(limit).unwrap_or(usize::MAX).min(file.len())];
    let (salt, start, after_start) = read_session_start(file, session_offset)?;
    let fresh = ActiveScan {
        offset: session_offset,
        salt,
        tail_start: after_start,
        tail_control: Vec::new(),
        last_wall_ns: start.start_ns,
        log: CheckpointLog::default(),
        metadata: start.metadata.clone(),
        start,
        streams: Vec::new(),
        checkpoints: 0,
        last_checkpoint: 0,
        frames: 0,
        valid_end: after_start,
        found_end: None,
        stop: None,
        tail_frames: 0,
        damage: Vec::new(),
    };
    for &c in candidates.iter().filter(|&&c| c > session_offset) {
        if let Ok(scan) = scan_from_checkpoint(file, fresh.clone(), c) {
            if blocks_checked(file, &scan) {
                return Ok(scan);
            }
        }
    }
    let mut scan = fresh;
    scan_tail(file, &mut scan, after_start);
    Ok(scan)
}

/// Reads the last checkpoint and its jumps (at most log2(n) + 1 records), applies every block
/// and control record they hold, then scans the tail after the last checkpoint.
fn scan_from_checkpoint(file: &[u8], mut scan: ActiveScan, last: u64) -> Result<ActiveScan> {
    let bad = |offset: u64, reason: String| Error::Malformed { what: "checkpoint", offset, reason };
    let (cp, end) = read_checkpoint(file, last, scan.salt)?;
    let n = cp.number;
    if n == 0 {
        return Err(bad(last, "checkpoint number 0".into()));
    }
    let mut records = vec![(last, cp)];
    let mut expect = n - lowbit(n);
    let mut below = last;
    for &j in &records[0].1.jumps.clone() {
        if expect == 0 || j >= below || j <= scan.offset {
            return Err(bad(last, format!("jump to {j} does not lead to checkpoint {expect}")));
        }
        let (c, _) = read_checkpoint(file, j, scan.salt)?;
        if c.number != expect {
            return Err(bad(j, format!("checkpoint number {}, expected {expect}", c.number)));
        }
        records.push((j, c));
        below = j;
        expect -= lowbit(expect);
    }
    if expect != 0 {
        return Err(bad(last, format!("jumps stop before checkpoint {expect}")));
    }
    let mut blocks = Vec::new();
    let mut control = Vec::new();
    for (offset, c) in &records {
        let from = c.number - lowbit(c.number);
        for sb in &c.summary_blocks {
            if sb.checkpoint <= from || sb.checkpoint >= c.number {
                return Err(bad(*offset, format!("summary block of checkpoint {} outside {}..{}", sb.checkpoint, from + 1, c.number)));
            }
        }
        blocks.extend(c.summary_blocks.iter().copied());
        blocks.extend(c.blocks.iter().map(|b| SummaryBlock { checkpoint: c.number, block: *b }));
        for &(k, o) in &c.summary_control {
            if k <= from || k >= c.number {
                return Err(bad(*offset, format!("summary control of checkpoint {k} outside {}..{}", from + 1, c.number)));
            }
            control.push((k, o));
        }
        control.extend(c.control.iter().map(|&o| (c.number, o)));
        scan.log.offsets.insert(c.number, *offset);
    }
    control.sort_unstable_by_key(|&(_, o)| o);
    control.dedup();
    for &(k, c) in &control {
        if c <= scan.offset || c >= last {
            return Err(bad(last, format!("control offset {c} outside the session before the checkpoint")));
        }
        scan.apply_control(file, c)?;
        scan.log.control.push((k, c));
    }
    blocks.sort_by_key(|b| b.checkpoint);
    for b in &blocks {
        scan.add_block(&b.block, last)?;
    }
    scan.log.blocks = blocks;
    let cp = &records[0].1;
    scan.checkpoints = n;
    scan.last_checkpoint = last;
    scan.frames = cp.frames_total;
    scan.last_wall_ns = cp.wall_ns;
    scan.valid_end = end;
    scan.tail_start = end;
    scan_tail(file, &mut scan, end);
    Ok(scan)
}

/// Scans records from `at` to the end, adding frames, streams, metadata and checkpoints to
/// `scan`. A record that fails its check is skipped when a valid record of the session follows
/// it (found by resynchronising byte by byte; noted in `scan.damage`); the scan stops at a torn
/// tail (nothing valid after it), at another session's start, or at this session's end.
fn scan_tail(file: &[u8], scan: &mut ActiveScan, mut at: u64) {
    while at < file.len() as u64 {
        let r = match read_record(file, at, Some(scan.salt)) {
            Ok(r) => r,
            Err(e) => match crate::read::salvage::resync_same(file, at + 1, scan.salt) {
                Some(next) => {
                    scan.damage.push((at, format!("{e} ({} bytes skipped)", next - at)));
                    at = next;
                    continue;
                }
                None => {
                    scan.stop = Some(e.to_string());
                    return;
                }
            },
        };
        let applied = (|| -> Result<bool> {
            match r.kind() {
                Some(Kind::Frame) => {
                    let (f, payload) = decode_frame(r.body, at)?;
                    let s = scan.stream_mut(f.stream, at)?;
                    s.tail.push(IndexEntry { ts: f.ts, offset: at });
                    s.tail_bytes += payload.len() as u64;
                    s.frames += 1;
                    s.payload_bytes += payload.len() as u64;
                    s.first_ts = s.first_ts.min(f.ts);
                    s.last_ts = s.last_ts.max(f.ts);
                    scan.frames += 1;
                    scan.tail_frames += 1;
                }
                Some(Kind::StreamDef) | Some(Kind::Metadata) => {
                    scan.apply_control(file, at)?;
                    scan.tail_control.push(at);
                }
                Some(Kind::Checkpoint) => {
                    let cp = CheckpointBody::decode(r.body, at)?;
                    // After damage in the tail, a checkpoint's blocks may describe frames that
                    // did not validate: the frames stay in the tail instead.
                    if !scan.damage.is_empty() {
                        return Ok(true);
                    }
                    if cp.number != scan.checkpoints + 1 || cp.prev_checkpoint != scan.last_checkpoint {
                        // After a damaged checkpoint the chain cannot continue: the frames stay
                        // in the tail, where a recovery checkpoint will describe them.
                        return Err(Error::Malformed {
                            what: "checkpoint",
                            offset: at,
                            reason: "does not continue the checkpoint chain".into(),
                        });
                    }
                    // Its blocks describe the tail frames already collected; swap them for runs.
                    let tail_counts: Vec<u64> = scan.streams.iter().map(|s| s.tail.len() as u64).collect();
                    let mut frames_before: Vec<u64> = scan.streams.iter().map(|s| s.frames).collect();
                    for (s, t) in frames_before.iter_mut().zip(&tail_counts) {
                        *s -= t;
                    }
                    let payload_before: Vec<u64> = scan.streams.iter().map(|s| s.payload_bytes - s.tail_bytes).collect();
                    if cp.control != scan.tail_control {
                        return Err(Error::Malformed {
                            what: "checkpoint",
                            offset: at,
                            reason: "control offsets differ from the records of its interval".into(),
                        });
                    }
                    for (i, s) in scan.streams.iter_mut().enumerate() {
                        s.frames = frames_before[i];
                        s.payload_bytes = payload_before[i];
                    }
                    scan.apply_tail_checkpoint(at, &cp)?;
                    scan.tail_start = r.end();
                }
                // The description repeats what the start and the definitions said: nothing new here.
                Some(Kind::Index) | Some(Kind::Description) | Some(Kind::IndexSample) => {}
                Some(Kind::SessionEnd) => {
                    let end = SessionEndBody::decode(r.body, at)?;
                    if end.session_start != scan.offset {
                        return Err(Error::Malformed { what: "session end", offset: at, reason: "belongs to another session".into() });
                    }
                    scan.found_end = Some((at, end));
                    return Ok(false);
                }
                Some(Kind::SessionStart) => return Ok(false),
                None => {} // unknown kind with a valid CRC: skipped by its length
            }
            Ok(true)
        })();
        match applied {
            Ok(true) => {
                at = r.end();
                scan.valid_end = at;
            }
            Ok(false) => {
                if scan.found_end.is_some() {
                    scan.valid_end = r.end();
                }
                return;
            }
            Err(e) => {
                // A valid record that cannot be used (a frame of a stream whose definition is
                // damaged, a checkpoint after a damaged one): noted, and the scan goes on.
                scan.damage.push((at, e.to_string()));
                at = r.end();
                scan.valid_end = at;
            }
        }
    }
}

/// The runs of one stream: its blocks in every checkpoint, in order.
pub(crate) fn runs_of(log: &CheckpointLog, stream: u16) -> Vec<RunInfo> {
    log.blocks
        .iter()
        .filter(|b| b.block.stream == stream)
        .map(|b| RunInfo {
            run: RunRef { first_ts: b.block.first_ts, count: u64::from(b.block.count), entries_offset: b.block.entries_offset },
            last_ts: b.block.last_ts,
        })
        .collect()
}

/// One in-memory run of sorted entries (none when there are no entries).
pub(crate) fn owned_runs(entries: &[IndexEntry]) -> Vec<Run> {
    match entries.first() {
        Some(first) => {
            vec![Run { first_ts: first.ts, cum_start: 0, count: entries.len() as u64, loc: RunLoc::Owned(encode_entries(entries).into()) }]
        }
        None => Vec::new(),
    }
}

/// Turns a rebuilt stream's runs and tail into sorted, non-overlapping runs for reading.
pub(crate) fn build_runs(file: &[u8], s: &ActiveStream, mut infos: Vec<RunInfo>) -> Result<Vec<Run>> {
    let mut tail = s.tail.clone();
    tail.sort_unstable();
    let ordered = infos.windows(2).all(|w| w[0].last_ts <= w[1].run.first_ts)
        && match (infos.last(), tail.first()) {
            (Some(last), Some(first)) => last.last_ts <= first.ts,
            _ => true,
        };
    let mut runs = Vec::new();
    let mut cum = 0;
    if ordered {
        for i in infos.drain(..) {
            check_entries_in(file, i.run.entries_offset, i.run.count)?;
            runs.push(Run { first_ts: i.run.first_ts, cum_start: cum, count: i.run.count, loc: RunLoc::File(i.run.entries_offset) });
            cum += i.run.count;
        }
    } else {
        for i in infos.drain(..) {
            let bytes = entries_in(file, i.run.entries_offset, i.run.count)?;
            tail.extend(bytes.chunks_exact(ENTRY_LEN).map(IndexEntry::decode));
        }
        tail.sort_unstable();
    }
    if let Some(first) = tail.first() {
        runs.push(Run { first_ts: first.ts, cum_start: cum, count: tail.len() as u64, loc: RunLoc::Owned(encode_entries(&tail).into()) });
    }
    Ok(runs)
}

/// The bytes of `count` entries at `offset`, bounds-checked.
pub(crate) fn entries_in(file: &[u8], offset: u64, count: u64) -> Result<&[u8]> {
    check_entries_in(file, offset, count)?;
    Ok(&file[offset as usize..(offset + count * ENTRY_LEN as u64) as usize])
}

pub(crate) fn check_entries_in(file: &[u8], offset: u64, count: u64) -> Result<()> {
    let end = count.checked_mul(ENTRY_LEN as u64).and_then(|l| l.checked_add(offset));
    match end {
        Some(end) if end <= file.len() as u64 && offset.is_multiple_of(8) && count > 0 => Ok(()),
        _ => Err(Error::Malformed {
            what: "index run",
            offset,
            reason: format!("{count} entries at {offset} do not lie aligned inside the file"),
        }),
    }
}

/// Reads a finished session backwards from its SessionEnd record.
pub(crate) fn read_finished(file: &[u8], end_offset: u64) -> Result<SessionLayout> {
    let unchecked = read_record(file, end_offset, None)?;
    if unchecked.kind() != Some(Kind::SessionEnd) {
        return Err(Error::Malformed {
            what: "session end",
            offset: end_offset,
            reason: format!("expected a session end record (kind 6), found kind {}", unchecked.kind_byte),
        });
    }
    let end_guess = SessionEndBody::decode(unchecked.body, end_offset)?;
    if end_guess.session_start >= end_offset || end_guess.session_start < HEADER_LEN {
        return Err(Error::Malformed {
            what: "session end",
            offset: end_offset,
            reason: format!("session start offset {} is not before it", end_guess.session_start),
        });
    }
    let (salt, start, _) = read_session_start(file, end_guess.session_start)?;
    let r = read_record_of(file, end_offset, salt, Kind::SessionEnd)?;
    let end = SessionEndBody::decode(r.body, end_offset)?;
    if end.index_offset <= end.session_start || end.index_offset >= end_offset {
        return Err(Error::Malformed {
            what: "session end",
            offset: end_offset,
            reason: format!("index offset {} outside the session", end.index_offset),
        });
    }
    // Format 1.1: the Index sample after the Index gives its stream table and a sample of its
    // run directories, checked by the sample's own CRC, so that opening reads a few pages
    // whatever the session's length; the directories are checked a chunk at a time as lookups
    // use them, and the Index record's CRC only when an entry does not name its frame (§7).
    // Without a sample (1.0) or with a damaged one, the Index record's CRC covers its stream
    // table, run directories and inline entries: an index that fails it is never used (the
    // session is then read by scanning its records).
    let unchecked_idx = read_record(file, end.index_offset, None)?;
    if unchecked_idx.kind() != Some(Kind::Index) {
        return Err(Error::Malformed {
            what: "index",
            offset: end.index_offset,
            reason: format!("expected an index record (kind 5), found kind {}", unchecked_idx.kind_byte),
        });
    }
    // With a sample: its chunks per stream (taken as each stream is read).
    let (table, mut sampled, last_checkpoint, index_checked) = match read_sample(file, salt, end.index_offset, unchecked_idx.end()) {
        Some(smp) => {
            let body = (end.index_offset + RECORD_HEADER_LEN as u64, unchecked_idx.end());
            for s in &smp.streams {
                check_directory_in(s, end.index_offset, body.0, body.1)?;
            }
            let back = checkpoint_back_from(end.index_offset, smp.last_checkpoint_back);
            (smp.streams, Some((smp.chunk_runs, smp.chunks)), back, false)
        }
        None => {
            let idx = read_record(file, end.index_offset, Some(salt))?;
            let back = index_last_checkpoint(idx.body, end.index_offset);
            (decode_index_streams(idx.body, end.index_offset)?, None, back, true)
        }
    };
    let mut streams = Vec::new();
    for (i, s) in table.into_iter().enumerate() {
        if usize::from(s.stream) != i {
            return Err(Error::Malformed {
                what: "index",
                offset: end.index_offset,
                reason: format!("stream {} listed at position {i}", s.stream),
            });
        }
        if s.def_offset <= end.session_start || s.def_offset >= end.index_offset {
            return Err(Error::Malformed {
                what: "index",
                offset: end.index_offset,
                reason: format!("definition of stream {i} at {} outside the session", s.def_offset),
            });
        }
        let d = read_record_of(file, s.def_offset, salt, Kind::StreamDef)?;
        let def = StreamDefBody::decode(d.body, s.def_offset)?;
        if def.stream != s.stream {
            return Err(Error::Malformed {
                what: "stream definition",
                offset: s.def_offset,
                reason: format!("defines stream {}, index expects {}", def.stream, s.stream),
            });
        }
        let runs = match &mut sampled {
            Some((k, chunks)) => {
                let chunks = chunks.get_mut(i).map(std::mem::take).unwrap_or_default();
                RunSource::Sampled(Arc::new(SampledRuns::new(s.runs_offset, s.run_count, *k, chunks, s.frames)))
            }
            None => RunSource::Directory { offset: s.runs_offset, count: s.run_count },
        };
        streams.push(StreamLayout {
            def,
            frames: s.frames,
            payload_bytes: s.payload_bytes,
            first_ts: s.first_ts,
            last_ts: s.last_ts,
            runs,
        });
    }
    Ok(SessionLayout {
        offset: end.session_start,
        salt,
        salt_state: crate::format::record::salt_crc(salt),
        state: SessionState::Finished,
        frames: end.frames,
        checkpoints: end.checkpoints,
        metadata: end.metadata.clone(),
        streams,
        start,
        index_offset: Some(end.index_offset),
        end_offset: Some(end_offset),
        segment_end: r.end(),
        last_checkpoint,
        index_checked,
        skipped: Vec::new(),
        end: Some(end),
        stop: None,
    })
}

/// The Index sample right after the Index record at `index_offset` (which ends at
/// `index_end`), when there is one that passes its CRC and describes that record.
fn read_sample(file: &[u8], salt: u32, index_offset: u64, index_end: u64) -> Option<IndexSample> {
    let r = read_record_of(file, index_end, salt, Kind::IndexSample).ok()?;
    let smp = IndexSample::decode(r.body, index_end).ok()?;
    let index_crc = crate::format::bytes::le_u32(file.get(index_offset as usize..)?.get(..4)?, 0);
    (smp.index_offset == index_offset && smp.index_crc == index_crc).then_some(smp)
}

/// Reads the run directory of a finished stream into runs, bounds-checking each run.
pub(crate) fn directory_runs(file: &[u8], offset: u64, count: u64) -> Result<Vec<Run>> {
    let len = count.checked_mul(RUN_LEN as u64).filter(|l| offset.checked_add(*l).is_some_and(|e| e <= file.len() as u64));
    let Some(len) = len else {
        return Err(Error::Malformed { what: "index", offset, reason: format!("run directory of {count} runs outside the file") });
    };
    let dir = &file[offset as usize..(offset + len) as usize];
    let mut runs = Vec::with_capacity(count as usize);
    let mut cum = 0u64;
    for (i, b) in dir.chunks_exact(RUN_LEN).enumerate() {
        let r = RunRef::decode(b);
        check_entries_in(file, r.entries_offset, r.count).map_err(|_| Error::Malformed {
            what: "index",
            offset: offset + (i * RUN_LEN) as u64,
            reason: format!("run {i}: {} entries at {} do not lie aligned inside the file", r.count, r.entries_offset),
        })?;
        runs.push(Run { first_ts: r.first_ts, cum_start: cum, count: r.count, loc: RunLoc::File(r.entries_offset) });
        cum = cum.checked_add(r.count).ok_or_else(|| Error::Malformed { what: "index", offset, reason: "run counts overflow".into() })?;
    }
    Ok(runs)
}

/// Turns a rebuilt unfinished session into a layout for reading.
pub(crate) fn layout_of_active(file: &[u8], scan: &ActiveScan, state: SessionState) -> Result<SessionLayout> {
    let mut streams = Vec::new();
    for (id, s) in scan.streams.iter().enumerate() {
        let Some(def) = &s.def else { continue };
        let runs = build_runs(file, s, runs_of(&scan.log, id as u16))?;
        streams.push(StreamLayout {
            def: def.clone(),
            frames: s.frames,
            payload_bytes: s.payload_bytes,
            first_ts: if s.frames == 0 { 0 } else { s.first_ts },
            last_ts: if s.frames == 0 { 0 } else { s.last_ts },
            runs: RunSource::Built(runs.into()),
        });
    }
    Ok(SessionLayout {
        offset: scan.offset,
        salt: scan.salt,
        salt_state: crate::format::record::salt_crc(scan.salt),
        start: scan.start.clone(),
        state,
        end: None,
        end_offset: None,
        index_offset: None,
        segment_end: scan.valid_end,
        frames: scan.frames,
        checkpoints: scan.checkpoints,
        metadata: scan.metadata.clone(),
        streams,
        stop: scan.stop.clone(),
        last_checkpoint: (scan.last_checkpoint != 0).then_some(scan.last_checkpoint),
        index_checked: true,
        skipped: scan.damage.iter().map(|(at, why)| format!("damaged record at offset {at}: {why}")).collect(),
    })
}

/// Checkpoint candidates from the slots, best first.
pub(crate) fn checkpoint_candidates(slots: &Slots) -> Vec<u64> {
    let mut c = vec![slots.current.last_checkpoint];
    if let Some(p) = slots.previous {
        if p.state == SlotState::Recording && p.active_session == slots.current.active_session {
            c.push(p.last_checkpoint);
        }
    }
    c
}

/// Every session of a file, oldest first. `live` says a writer holds the file: its active
/// session is then read only up to the committed length.
pub(crate) fn discover(file: &[u8], slots: &Slots, live: bool) -> Result<Vec<SessionLayout>> {
    let (mut sessions, broken) = walk_chain(file, slots.current);
    if let Some(e) = broken {
        return Err(e);
    }
    if let Some(active) = active_session(file, slots, live) {
        sessions.push(active?);
    }
    Ok(sessions)
}

/// The finished sessions the chain reaches from the slot's last session end, oldest first, and
/// the error that stopped the walk before the first session, if one did.
fn walk_chain(file: &[u8], slot: Slot) -> (Vec<SessionLayout>, Option<Error>) {
    let mut sessions = Vec::new();
    let mut at = slot.last_session_end;
    let mut bound = u64::MAX;
    let mut broken = None;
    while at != 0 {
        if at >= bound {
            broken = Some(Error::Malformed { what: "session end", offset: at, reason: "session chain does not go backwards".into() });
            break;
        }
        match read_finished(file, at) {
            Ok(s) => {
                bound = s.offset;
                at = s.start.prev_session_end;
                sessions.push(s);
            }
            Err(e) => {
                broken = Some(e);
                break;
            }
        }
    }
    sessions.reverse();
    (sessions, broken)
}

/// The slot's active session, rebuilt (§8) up to the committed length under a live writer;
/// `None` when the slot says idle.
pub(crate) fn active_session(file: &[u8], slots: &Slots, live: bool) -> Option<Result<SessionLayout>> {
    let slot = slots.current;
    if slot.state != SlotState::Recording {
        return None;
    }
    let limit = if live { slot.committed_len } else { file.len() as u64 };
    let rebuilt = scan_active(file, slot.active_session, &checkpoint_candidates(slots), limit).and_then(|scan| {
        // Frames of a stream whose definition is damaged cannot be served from this rebuild:
        // the caller then reads the session by the salvaging scan.
        if let Some((at, why)) = scan.damage.iter().find(|(_, why)| why.contains("is not defined")) {
            return Err(Error::Malformed { what: "session", offset: *at, reason: why.clone() });
        }
        Ok(scan)
    });
    let rebuilt = rebuilt.and_then(|scan| match &scan.found_end {
        Some((end_at, _)) if !live => read_finished(file, *end_at),
        _ => layout_of_active(file, &scan, if live { SessionState::Recording } else { SessionState::Interrupted }),
    });
    Some(rebuilt)
}

/// The byte ranges of the checkpoint records that validate, walking back from `last` through
/// each one's previous-checkpoint field, sorted by offset.
pub(crate) fn checked_checkpoint_ranges(file: &[u8], salt: u32, session_offset: u64, last: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = last;
    while at > session_offset {
        let Ok(r) = read_record_of(file, at, salt, Kind::Checkpoint) else { break };
        out.push((at, r.end()));
        match CheckpointBody::decode(r.body, at) {
            Ok(cp) if cp.prev_checkpoint < at => at = cp.prev_checkpoint,
            _ => break,
        }
    }
    out.reverse();
    out
}

/// Whether every block of a rebuilt checkpoint log points into a checkpoint record that passes
/// its CRC (summary blocks are copies whose entries live in earlier checkpoints, which the
/// rebuild itself did not read).
fn blocks_checked(file: &[u8], scan: &ActiveScan) -> bool {
    if scan.log.blocks.is_empty() {
        return true;
    }
    let ranges = checked_checkpoint_ranges(file, scan.salt, scan.offset, scan.last_checkpoint);
    scan.log.blocks.iter().all(|b| {
        let at = b.block.entries_offset;
        let end = at.saturating_add(u64::from(b.block.count) * ENTRY_LEN as u64);
        let i = ranges.partition_point(|&(from, _)| from <= at);
        i > 0 && ranges[i - 1].0 <= at && end <= ranges[i - 1].1
    })
}
