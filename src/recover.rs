//! Recovery of an interrupted session, in time proportional to the tail after its last
//! checkpoint.
//!
//! The slot names the active session and its last checkpoint. Recovery walks the checkpoint
//! chain back (one small read per checkpoint), then validates every record after the last
//! checkpoint up to the first invalid one. The frames found there are kept: a recovery
//! checkpoint records them, then the final Index and a SessionEnd marked `recovered` follow,
//! the torn bytes after them are truncated and the slot returns to idle. Every step is itself
//! crash-safe: an interrupted recovery is found and finished by the next one.

use crate::durable::tail::{decomposition, write_index_and_end, EndFields, StreamStats};
use crate::error::{Error, Result};
use crate::format::header::{FileHeader, Slot, SlotState as State, Slots, HEADER_LEN};
use crate::format::index::IndexEntry;
use crate::format::record::{put_checkpoint, read_record, BlockHeader, CheckpointBody, Kind};
use crate::read::layout::{checkpoint_candidates, read_finished, scan_active, ActiveScan};
use crate::storage::{FileStorage, Storage, View};
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
    /// Bytes dropped from the end of the file (torn tail). Zeros at the very end (space a
    /// writer reserved ahead of its data, spec §6) are cut off too but not counted: they held
    /// nothing.
    pub bytes_dropped: u64,
    /// Why the scan of the tail stopped, when it stopped before the end of the file.
    pub stop_reason: Option<String>,
    /// The session had in fact ended; only the commit slot still said it was recording.
    pub end_was_written: bool,
    /// Bytes the commit slot says were committed that the file no longer holds (a file cut
    /// short).
    pub committed_bytes_missing: u64,
    /// Damaged records found (each with its offset), which recovery does not repair: the
    /// records that validate around them stay readable. Recovery only ever cuts a torn tail.
    pub damaged: Vec<String>,
}

impl RecoveryReport {
    /// Whether anything that was once written is gone: a dropped tail, committed bytes missing
    /// from a cut file, or damaged records.
    pub fn lost_data(&self) -> bool {
        self.bytes_dropped > 0 || self.committed_bytes_missing > 0 || !self.damaged.is_empty() || self.frames_dropped > 0
    }
}

/// A refusal: recovery cannot tell a torn tail from damage here, so it changes nothing.
fn refuse(offset: u64, reason: String) -> Error {
    Error::Unrecoverable { offset, reason }
}

/// Recovers the file at `path` in place (taking the writer lock). A file with nothing to
/// recover is left untouched: running it twice is a no-op.
pub fn recover(path: impl AsRef<Path>) -> Result<RecoveryReport> {
    let path = path.as_ref();
    let file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| Error::from(e).with_path(path))?;
    crate::durable::lock_exclusive(&file, path)?;
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
    /// (0: no session); drop the rest (nothing in it validates).
    Truncate { len: u64, end_offset: u64 },
    /// Finish this unfinished session.
    Recover(Box<ActiveScan>),
    /// Damage that recovery does not repair (it is not a torn tail): report it, change nothing.
    ReportOnly(Vec<String>),
}

/// The first offset at or after `from` where any record validates (a session's start, or two
/// records agreeing on a salt), if there is one.
fn anything_valid_from(file: &[u8], from: u64) -> Option<u64> {
    crate::read::salvage::first_valid_from(file, from)
}

/// Decides what to do. Recovery only ever removes a torn tail: bytes after the last record
/// that validates. Everything else is either left alone (damage inside finished sessions) or
/// refused (the structure is too damaged to tell a tail from the middle).
fn plan(file: &[u8], slots: &Slots) -> Result<Plan> {
    let len = file.len() as u64;
    let slot = slots.current;
    let missing = slot.committed_len.saturating_sub(len);
    if slot.state == State::Recording && missing == 0 {
        let scan = scan_active(file, slot.active_session, &checkpoint_candidates(slots), len).map_err(|e| {
            refuse(
                slot.active_session,
                format!("the interrupted session's start record is damaged ({e}), so where its records end cannot be told"),
            )
        })?;
        return plan_active_or_cut_uncommitted(file, scan, slot.committed_len, &checkpoint_candidates(slots));
    }
    let fast_ok = slot.last_session_end == 0 || read_finished(file, slot.last_session_end).is_ok();
    if slot.state == State::Idle && missing == 0 && fast_ok {
        if len == slot.committed_len {
            return Ok(Plan::Nothing);
        }
        // Bytes after the committed end: a session whose start marker never reached the disk
        // (only possible without syncs), or a torn write.
        let at = slot.committed_len;
        if let Ok(scan) = scan_active(file, at, &[], len) {
            if scan.start.prev_session_end == slot.last_session_end {
                return plan_active(file, scan);
            }
        }
        if let Some(o) = anything_valid_from(file, at) {
            return Err(refuse(o, format!("records that validate lie after the committed end of the file ({at})")));
        }
        return Ok(Plan::Truncate { len: at, end_offset: slot.last_session_end });
    }
    // The slot does not describe the file: a file cut short, or damage in the session chain.
    let (found, loose) = crate::read::salvage::salvage(file, HEADER_LEN, len);
    let mut damaged: Vec<String> = loose.iter().map(|d| format!("damaged {} at offset {}: {}", d.what, d.offset, d.reason)).collect();
    for (i, s) in found.iter().enumerate() {
        damaged.extend(s.damage.iter().map(|d| format!("session {i}: damaged {} at offset {}: {}", d.what, d.offset, d.reason)));
    }
    if missing == 0 {
        // Nothing was cut: the damage is inside sessions that are kept as they are.
        return Ok(Plan::ReportOnly(damaged));
    }
    // A file cut short: what the slot committed past the end is gone. The last session is then
    // a torn tail to finish, if nothing but the cut is wrong with it.
    if !damaged.is_empty() {
        return Err(refuse(
            len,
            format!("the file was cut {missing} bytes short of its committed length and is damaged too ({})", damaged.join("; ")),
        ));
    }
    match found.last() {
        None => Ok(Plan::Truncate { len: len.min(HEADER_LEN.max(file_valid_end(&found))), end_offset: 0 }),
        Some(last) => match last.end {
            Some((end, _)) if read_finished(file, end).is_ok() => Ok(Plan::Truncate { len: last.valid_end, end_offset: end }),
            _ if last.start.is_some() => {
                let scan = scan_active(file, last.offset, &[], len).map_err(|e| refuse(last.offset, e.to_string()))?;
                plan_active(file, scan)
            }
            _ => Err(refuse(last.offset, "the last session's start record is damaged".into())),
        },
    }
}

/// The end of the last record found, or the header's end.
fn file_valid_end(found: &[crate::read::salvage::SalvagedSession]) -> u64 {
    found.last().map_or(HEADER_LEN, |s| s.valid_end)
}

/// Recovery of an unfinished session whose records were scanned: refused when its tail holds
/// frames that cannot be indexed (a stream whose definition is damaged) or when anything that
/// validates follows the part it would cut.
fn plan_active(file: &[u8], scan: ActiveScan) -> Result<Plan> {
    if let Some((at, why)) = scan.damage.iter().find(|(_, why)| why.contains("is not defined")) {
        return Err(refuse(*at, format!("a frame of the interrupted session cannot be indexed ({why}): its stream definition is damaged")));
    }
    if let Some(o) = anything_valid_from(file, scan.valid_end) {
        return Err(refuse(o, format!("records that validate follow the interrupted session's last valid record (at {})", scan.valid_end)));
    }
    Ok(Plan::Recover(Box::new(scan)))
}

/// `plan_active`, except for one case of a power cut: writes that reached the disk out of
/// order left a hole where a stream definition was, and frames of that stream after it. When
/// the hole and everything after it lie past the committed length (bytes never committed: no
/// checkpoint covers them), they are a torn tail: cut at the hole rather than refuse.
fn plan_active_or_cut_uncommitted(file: &[u8], scan: ActiveScan, committed_len: u64, candidates: &[u64]) -> Result<Plan> {
    let undefined = scan.damage.iter().any(|(_, why)| why.contains("is not defined"));
    let first_damage = scan.damage.iter().map(|(at, _)| *at).min();
    match first_damage {
        Some(hole) if undefined && hole >= committed_len && hole > scan.offset => {
            let cut = scan_active(file, scan.offset, candidates, hole).map_err(|e| refuse(scan.offset, e.to_string()))?;
            if cut.damage.is_empty() {
                Ok(Plan::Recover(Box::new(cut)))
            } else {
                plan_active(file, scan)
            }
        }
        _ => plan_active(file, scan),
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

/// The end of the last byte at or after `from` that is not zero (`from` when there is none):
/// what a cut at `from` drops, without the zeros reserved past a writer's data.
fn written_end(file: &[u8], from: u64) -> u64 {
    let start = usize::try_from(from).unwrap_or(usize::MAX).min(file.len());
    let tail = &file[start..];
    // Whole 16-byte chunks from the end first (the reserved zeros run to megabytes).
    let mut end = tail.len();
    while end >= 16 && tail[end - 16..end].iter().fold(0u8, |a, &b| a | b) == 0 {
        end -= 16;
    }
    while end > 0 && tail[end - 1] == 0 {
        end -= 1;
    }
    start as u64 + end as u64
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
    let mut slot_state = crate::durable::SlotState { current: slots.current, current_index: slots.current_index };
    let whole = storage.view()?;
    // A trailing hole (the space a writer reserved ahead, spec §6) reads as zeros: it is cut
    // off like any zeros at the end, without faulting its pages in to look at them.
    let used =
        storage.zeros_from(slots.current.committed_len).map_or(whole.len(), |z| usize::try_from(z).unwrap_or(usize::MAX).min(whole.len()));
    let view = &whole[..used];
    prefetch_checkpoints(&whole, &slots);
    let mut report = RecoveryReport { committed_bytes_missing: slots.current.committed_len.saturating_sub(len), ..Default::default() };
    let (end_offset, new_len) = match plan(view, &slots)? {
        Plan::Nothing => return Ok(report),
        Plan::ReportOnly(damaged) => {
            report.damaged = damaged;
            return Ok(report);
        }
        Plan::Truncate { len: keep, end_offset } => {
            report.bytes_dropped = written_end(view, keep).saturating_sub(keep);
            report.frames_dropped = count_dropped_frames(view, keep);
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
                frames_dropped: count_dropped_frames(view, scan.valid_end),
                bytes_dropped: written_end(view, scan.valid_end) - scan.valid_end,
                stop_reason: scan.stop.clone(),
                end_was_written: scan.found_end.is_some(),
                committed_bytes_missing: report.committed_bytes_missing,
                damaged: scan.damage.iter().map(|(at, why)| format!("damaged record at offset {at}: {why}")).collect(),
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
    drop(whole);
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

/// The CRC32 of bytes `from..to` of the storage, read in bounded pieces.
fn interval_crc(storage: &dyn Storage, from: u64, to: u64) -> Result<u32> {
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).unwrap_or(usize::MAX).min(buf.len());
        storage.read_at(at, &mut buf[..n])?;
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(h.finalize())
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
            interval_crc: interval_crc(storage, scan.tail_start, pos)?,
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
