//! Recovery of an interrupted session, in time proportional to the tail after its last
//! checkpoint.
//!
//! The slot names the active session and its last checkpoint. Recovery walks the checkpoint
//! chain back (one small read per checkpoint), then validates every record after the last
//! checkpoint up to the first invalid one. The frames found there are kept: a recovery
//! checkpoint records them, then the final Index and a SessionEnd marked `recovered` follow,
//! the torn bytes after them are truncated and the slot returns to idle. Every step is itself
//! crash-safe: an interrupted recovery is found and finished by the next one.

use crate::error::{Error, Result};
use crate::format::header::{FileHeader, Slot, SlotState as State, Slots, HEADER_LEN};
use crate::format::index::IndexEntry;
use crate::format::record::{put_checkpoint, read_record, BlockHeader, CheckpointBody, Kind};
use crate::read::layout::{checkpoint_candidates, discover_by_scan, read_finished, scan_active, ActiveScan};
use crate::storage::{FileStorage, Storage, View};
use crate::write::tail::{decomposition, write_index_and_end, EndFields, StreamStats};
use std::fs::OpenOptions;
use std::path::Path;

/// What recovery found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecoveryReport {
    /// Whether the file held an interrupted session (false: nothing to do).
    pub was_interrupted: bool,
    /// UUID of the recovered session.
    pub session_id: Option<uuid::Uuid>,
    /// Name of the recovered session.
    pub session_name: Option<String>,
    /// Frames of the session kept in all.
    pub frames_kept: u64,
    /// Of those, frames found after the last checkpoint.
    pub frames_after_checkpoint: u64,
    /// Checkpoints found in the session.
    pub checkpoints: u32,
    /// Frame records found damaged or cut off in the dropped tail.
    pub frames_dropped: u64,
    /// Bytes dropped from the end of the file (torn tail).
    pub bytes_dropped: u64,
    /// Why the scan of the tail stopped, when it stopped before the end of the file.
    pub stop_reason: Option<String>,
    /// The session had in fact ended; only the commit slot still said it was recording.
    pub end_was_written: bool,
}

impl RecoveryReport {
    /// Whether any bytes were lost.
    pub fn lost_data(&self) -> bool {
        self.bytes_dropped > 0
    }
}

/// Recovers the file at `path` in place (taking the writer lock). A file with nothing to
/// recover is left untouched: running it twice is a no-op.
pub fn recover(path: impl AsRef<Path>) -> Result<RecoveryReport> {
    let path = path.as_ref();
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| Error::from(e).with_path(path))?;
    crate::write::lock_exclusive(&file, path)?;
    let mut storage = FileStorage::new(file);
    recover_storage(&mut storage).map_err(|e| e.with_path(path))
}

/// Counts the frame records that can still be framed in a dropped tail (damaged or cut off).
fn count_dropped_frames(file: &[u8], mut at: u64) -> u64 {
    let mut n = 0;
    while at < file.len() as u64 {
        match read_record(file, at, None) {
            Ok(r) => {
                n += u64::from(r.kind() == Some(Kind::Frame));
                at = r.end();
            }
            Err(_) => {
                // A record cut off by the end of the file.
                let kind = file.get(at as usize + 8).copied();
                n += u64::from(kind == Some(Kind::Frame as u8));
                break;
            }
        }
    }
    n
}

/// What recovery will do.
enum Plan {
    /// The file is consistent: nothing to do.
    Nothing,
    /// Keep the file up to `len`, whose last session ends with the SessionEnd at `end_offset`
    /// (0: no session); drop the rest.
    Truncate { len: u64, end_offset: u64 },
    /// Finish this unfinished session.
    Recover(Box<ActiveScan>),
}

/// Decides what to do. The fast path trusts the slots and validates what they point at; when
/// they do not match the file (a file cut short, a damaged session chain), the file is scanned.
fn plan(file: &[u8], slots: &Slots) -> Plan {
    let len = file.len() as u64;
    let slot = slots.current;
    if slot.state == State::Recording {
        if let Ok(scan) = scan_active(file, slot.active_session, &checkpoint_candidates(slots), len) {
            return Plan::Recover(Box::new(scan));
        }
    } else if slot.committed_len <= len && (slot.last_session_end == 0 || read_finished(file, slot.last_session_end).is_ok()) {
        // The slot's last session is finished and intact: damage in older sessions is not
        // recovery's to repair (and rescanning past it could undo an earlier recovery).
        if len == slot.committed_len {
            return Plan::Nothing;
        }
        // Bytes after the committed end: a session whose start marker never reached the disk
        // (only possible without syncs), or garbage.
        let at = slot.committed_len;
        if let Ok(scan) = scan_active(file, at, &[], len) {
            if scan.start.prev_session_end == slot.last_session_end {
                return Plan::Recover(Box::new(scan));
            }
        }
        return Plan::Truncate { len: slot.committed_len, end_offset: slot.last_session_end };
    }
    // The slots do not describe the file: rebuild from a scan.
    let sessions = discover_by_scan(file);
    match sessions.last() {
        None => Plan::Truncate { len: HEADER_LEN, end_offset: 0 },
        Some(last) => match last.end_offset {
            Some(end) => Plan::Truncate { len: last.segment_end, end_offset: end },
            None => match scan_active(file, last.offset, &[], len) {
                Ok(scan) => Plan::Recover(Box::new(scan)),
                Err(_) => Plan::Truncate { len: last.offset, end_offset: last.start.prev_session_end },
            },
        },
    }
}

/// Starts reading the last checkpoint's jump targets and the tail in parallel.
fn prefetch_checkpoints(view: &View, slots: &Slots) {
    let last = slots.current.last_checkpoint;
    if slots.current.state != State::Recording || last == 0 {
        return;
    }
    let Ok(r) = read_record(view, last, None) else { return };
    let Ok(cp) = CheckpointBody::decode(r.body, last) else { return };
    let mut ranges: Vec<(u64, u64)> = cp.jumps.iter().map(|&j| (j, 64 * 1024)).collect();
    ranges.extend(cp.control.iter().chain(cp.summary_control.iter().map(|(_, o)| o)).map(|&o| (o, 4096)));
    ranges.push((slots.current.active_session, 4096));
    ranges.push((r.end(), 1 << 20));
    view.prefetch(&ranges);
}

/// Recovers the file held by `storage` in place (the caller holds the lock): finishes an
/// interrupted session, or repairs the commit slots of a file cut short. A consistent file is
/// left untouched.
pub fn recover_storage(storage: &mut dyn Storage) -> Result<RecoveryReport> {
    let len = storage.len()?;
    if len == 0 {
        return Err(Error::EmptyFile);
    }
    let mut head = vec![0u8; len.min(HEADER_LEN) as usize];
    storage.read_at(0, &mut head)?;
    FileHeader::decode(&head)?;
    let slots = Slots::decode(&head)?;
    let mut slot_state = crate::write::recorder_slot_state(slots.current, slots.current_index);
    let view = storage.view()?;
    prefetch_checkpoints(&view, &slots);
    let mut report = RecoveryReport::default();
    let (end_offset, new_len) = match plan(&view, &slots) {
        Plan::Nothing => return Ok(report),
        Plan::Truncate { len: keep, end_offset } => {
            report.bytes_dropped = len.saturating_sub(keep);
            report.frames_dropped = count_dropped_frames(&view, keep);
            (end_offset, keep)
        }
        Plan::Recover(scan) => {
            report = RecoveryReport {
                was_interrupted: true,
                session_id: Some(scan.start.id),
                session_name: Some(scan.start.name.clone()),
                frames_kept: scan.frames,
                frames_after_checkpoint: scan.tail_frames,
                checkpoints: scan.checkpoints,
                frames_dropped: count_dropped_frames(&view, scan.valid_end),
                bytes_dropped: len - scan.valid_end,
                stop_reason: scan.stop.clone(),
                end_was_written: scan.found_end.is_some(),
            };
            match &scan.found_end {
                Some((end_at, _)) => (*end_at, scan.valid_end),
                None => {
                    let (written, checkpoints) = finish_recovered(storage, &scan)?;
                    report.checkpoints = checkpoints;
                    written
                }
            }
        }
    };
    drop(view);
    storage.sync()?;
    let slot = Slot {
        state: State::Idle,
        committed_len: new_len,
        active_session: 0,
        last_checkpoint: 0,
        last_session_end: end_offset,
        ..slots.current
    };
    if slot != slots.current {
        slot_state.commit(storage, slot)?;
        storage.sync()?;
    }
    if storage.len()? > new_len {
        storage.set_len(new_len)?;
        storage.sync()?;
    }
    Ok(report)
}

/// Writes the recovery checkpoint (for frames after the last checkpoint), the Index and the
/// SessionEnd after the last valid record. Returns ((end offset, new length), checkpoints).
fn finish_recovered(storage: &mut dyn Storage, scan: &ActiveScan) -> Result<((u64, u64), u32)> {
    let mut pos = scan.valid_end;
    let mut checkpoints = scan.checkpoints;
    let mut tails: Vec<Vec<IndexEntry>> = scan.streams.iter().map(|s| s.tail.clone()).collect();
    let mut log = scan.log.clone();
    if tails.iter().any(|t| !t.is_empty()) || !scan.tail_control.is_empty() {
        let mut blocks = Vec::new();
        let mut entries: Vec<&[IndexEntry]> = Vec::new();
        for (id, (s, t)) in scan.streams.iter().zip(tails.iter_mut()).enumerate() {
            if t.is_empty() {
                continue;
            }
            t.sort_unstable();
            let last = t.iter().map(|e| e.ts).max().unwrap_or(i64::MIN);
            blocks.push(BlockHeader {
                stream: id as u16,
                count: t.len() as u32,
                first_ts: t[0].ts,
                last_ts: last,
                payload_bytes: s.tail_bytes,
                entries_offset: 0,
            });
        }
        for t in &tails {
            if !t.is_empty() {
                entries.push(t);
            }
        }
        let number = checkpoints + 1;
        // The jump chain of n + 1 only uses checkpoint n and n's own jumps, all known here.
        let (jumps, summary_control, summary_blocks) = log.parts_for(number).ok_or_else(|| Error::Malformed {
            what: "checkpoint",
            offset: scan.last_checkpoint,
            reason: "an offset of the checkpoint chain is unknown".into(),
        })?;
        let body = CheckpointBody {
            number,
            prev_checkpoint: scan.last_checkpoint,
            wall_ns: scan.last_wall_ns,
            frames_total: scan.frames,
            interval_start: scan.tail_start,
            control: scan.tail_control.clone(),
            jumps,
            summary_control,
            summary_blocks,
            state: Vec::new(),
            blocks,
        };
        let mut out = Vec::new();
        let placed = put_checkpoint(&mut out, scan.salt, pos, &body, &entries);
        log.record(number, pos, &placed, &body.control);
        storage.write_at(pos, &out)?;
        pos += out.len() as u64;
        checkpoints += 1;
    }
    let summaries: Vec<StreamStats> = scan
        .streams
        .iter()
        .enumerate()
        .map(|(id, s)| StreamStats::new(id as u16, s.def_offset, s.frames, s.payload_bytes, s.first_ts, s.last_ts))
        .collect();
    // The records that hold every block: the last checkpoint and its jumps, ascending.
    let mut chain =
        decomposition(checkpoints).into_iter().map(|k| log.offsets.get(&k).map(|&o| (k, o))).collect::<Option<Vec<_>>>().ok_or_else(
            || Error::Malformed {
                what: "checkpoint",
                offset: scan.last_checkpoint,
                reason: "an offset of the checkpoint chain is unknown".into(),
            },
        )?;
    chain.reverse();
    let fields = EndFields {
        session_start: scan.offset,
        end_ns: scan.last_wall_ns,
        frames: scan.frames,
        checkpoints,
        recovered: true,
        metadata: &scan.metadata,
    };
    let written = write_index_and_end(storage, &mut Vec::new(), pos, scan.salt, &summaries, &chain, &fields)?;
    Ok(((written.end_offset, written.new_len), checkpoints))
}
