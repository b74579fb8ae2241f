//! Verification: every record's CRC, every index against the records, the commit slots and the
//! structure of every session. Problems are listed with their offsets; nothing stops at the
//! first one.

use crate::error::Error;
use crate::format::header::{SlotState, HEADER_LEN};
use crate::format::index::EntrySlice;
use crate::format::record::{
    decode_frame, next_nonzero_kind, plausible_record_at, read_record, CheckpointBody, Kind, SessionEndBody, SessionStartBody,
};
use crate::read::interval::IntervalCheck;
use crate::read::layout::{RunLoc, SessionState};
use crate::read::{Frame, RecFile};
use std::collections::HashMap;

/// One problem found by [`RecFile::verify`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// File offset of the damaged or inconsistent structure.
    pub offset: u64,
    /// Position of the session concerned, when known.
    pub session: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// The result of [`RecFile::verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// True when no problem was found.
    pub ok: bool,
    /// Sessions found.
    pub sessions: usize,
    /// Records checked.
    pub records: u64,
    /// Frame records checked.
    pub frames: u64,
    /// Every problem, in file order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when no problem was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Order-independent digest of a set of (stream, ts, offset): the index and the records must
/// give the same one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Digest {
    count: u64,
    sum: u64,
    xor: u64,
    bytes: u64,
    min_ts: Option<i64>,
    max_ts: Option<i64>,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

impl Digest {
    fn add(&mut self, ts: i64, offset: u64, len: u64) {
        let h = mix(mix(ts as u64) ^ offset);
        self.count += 1;
        self.sum = self.sum.wrapping_add(h);
        self.xor ^= h;
        self.bytes += len;
        self.min_ts = Some(self.min_ts.map_or(ts, |m| m.min(ts)));
        self.max_ts = Some(self.max_ts.map_or(ts, |m| m.max(ts)));
    }
}

struct Walker<'a> {
    file: &'a [u8],
    report: VerifyReport,
    progress: &'a mut dyn FnMut(u64, u64),
}

/// What the linear walk found of one session.
#[derive(Default)]
struct Walked {
    start: u64,
    frames: HashMap<u16, Digest>,
    ended: bool,
}

/// True when a SessionStart validates at `p` (checked cheaply first: most offsets of a search
/// are not one).
fn valid_session_start_at(file: &[u8], p: u64) -> bool {
    plausible_record_at(file, p) == Some(Kind::SessionStart)
        && SessionStartBody::salt_of(file, p).and_then(|s| read_record(file, p, Some(s))).is_ok()
}

impl Walker<'_> {
    fn problem(&mut self, offset: u64, session: Option<usize>, message: impl Into<String>) {
        self.report.problems.push(Problem { offset, session, message: message.into() });
    }

    /// The next offset after `from` where a valid record of `salt` or a valid session start
    /// begins (damaged framing: search byte by byte).
    fn resync(&self, from: u64, end: u64, salt: u32) -> Option<u64> {
        let mut p = from + 1;
        loop {
            // Zeroed space holds no record start.
            p = next_nonzero_kind(self.file, p);
            if p >= end {
                return None;
            }
            if plausible_record_at(self.file, p).is_some()
                && (read_record(self.file, p, Some(salt)).is_ok() || valid_session_start_at(self.file, p))
            {
                return Some(p);
            }
            p += 1;
        }
    }

    /// Walks every record in `[HEADER_LEN, end)`, session by session.
    fn walk(&mut self, end: u64) -> Vec<Walked> {
        let mut sessions = Vec::new();
        let mut at = HEADER_LEN;
        'sessions: while at < end {
            let si = sessions.len();
            let salt = match SessionStartBody::salt_of(self.file, at).and_then(|salt| read_record(self.file, at, Some(salt)).map(|_| salt))
            {
                Ok(s) => s,
                Err(e) => {
                    self.problem(at, Some(si), format!("expected a valid session start: {e}"));
                    match (at + 1..end).find(|&p| valid_session_start_at(self.file, p)) {
                        Some(p) => {
                            self.problem(at, Some(si), format!("{} unreadable bytes before the next session", p - at));
                            at = p;
                            continue;
                        }
                        None => break,
                    }
                }
            };
            let mut w = Walked { start: at, ..Default::default() };
            let mut checkpoints = 0u32;
            let mut last_cp = 0u64;
            let mut cp_offsets = HashMap::new();
            loop {
                if at >= end {
                    sessions.push(w);
                    break 'sessions;
                }
                match read_record(self.file, at, Some(salt)) {
                    Ok(r) => {
                        self.report.records += 1;
                        if self.report.records.is_multiple_of(65_536) {
                            (self.progress)(at, self.file.len() as u64);
                        }
                        if r.kind() == Some(Kind::SessionStart) && at != w.start {
                            // A new session without an end for this one.
                            sessions.push(w);
                            continue 'sessions;
                        }
                        match r.kind() {
                            Some(Kind::Frame) => match decode_frame(r.body, at) {
                                Ok((f, p)) => {
                                    self.report.frames += 1;
                                    w.frames.entry(f.stream).or_default().add(f.ts, at, p.len() as u64);
                                }
                                Err(e) => self.problem(at, Some(si), e.to_string()),
                            },
                            Some(Kind::Checkpoint) => match CheckpointBody::decode(r.body, at) {
                                Ok(cp) => {
                                    if cp.number != checkpoints + 1 || cp.prev_checkpoint != last_cp {
                                        self.problem(
                                            at,
                                            Some(si),
                                            format!(
                                                "checkpoint {} (previous at {}) does not follow checkpoint {checkpoints} at {last_cp}",
                                                cp.number, cp.prev_checkpoint
                                            ),
                                        );
                                    }
                                    for b in &cp.blocks {
                                        let e = EntrySlice::new(
                                            &self.file[b.entries_offset as usize..(b.entries_offset + u64::from(b.count) * 16) as usize],
                                        );
                                        if !e.is_sorted() {
                                            self.problem(at, Some(si), format!("checkpoint block of stream {} is not sorted", b.stream));
                                        }
                                    }
                                    let mut k = cp.number - crate::format::record::lowbit(cp.number);
                                    let mut want = Vec::new();
                                    while k > 0 {
                                        want.push(cp_offsets.get(&k).copied().unwrap_or(0));
                                        k -= crate::format::record::lowbit(k);
                                    }
                                    if cp.jumps != want {
                                        self.problem(
                                            at,
                                            Some(si),
                                            format!("checkpoint {} jumps to {:?}, expected {want:?}", cp.number, cp.jumps),
                                        );
                                    }
                                    cp_offsets.insert(cp.number, at);
                                    checkpoints = cp.number;
                                    last_cp = at;
                                }
                                Err(e) => self.problem(at, Some(si), e.to_string()),
                            },
                            Some(Kind::SessionEnd) => {
                                match SessionEndBody::decode(r.body, at) {
                                    Ok(e) if e.session_start != w.start => self.problem(
                                        at,
                                        Some(si),
                                        format!("session end names start {}, session starts at {}", e.session_start, w.start),
                                    ),
                                    Ok(_) => {}
                                    Err(e) => self.problem(at, Some(si), e.to_string()),
                                }
                                w.ended = true;
                                at = r.end();
                                sessions.push(w);
                                continue 'sessions;
                            }
                            _ => {}
                        }
                        at = r.end();
                    }
                    Err(e) => {
                        self.problem(at, Some(si), e.to_string());
                        // Skip a record whose framing holds; otherwise search for the next one.
                        let next = match read_record(self.file, at, None) {
                            Ok(r) if matches!(e, Error::CrcMismatch { .. }) => Some(r.end()),
                            _ => self.resync(at, end, salt),
                        };
                        match next {
                            Some(n) => at = n,
                            None => {
                                self.problem(at, Some(si), format!("{} bytes to the end are unreadable", end - at));
                                sessions.push(w);
                                break 'sessions;
                            }
                        }
                    }
                }
            }
        }
        sessions
    }
}

impl RecFile {
    /// Checks the whole file: every record's CRC, every index against the frames it points at
    /// and the frames the records hold, the commit slots, and the structure of each session.
    /// Reads every byte: O(file).
    pub fn verify(&self) -> VerifyReport {
        self.verify_with_progress(|_, _| {})
    }

    /// [`RecFile::verify`], calling `progress(bytes_checked, file_size)` now and then.
    pub fn verify_with_progress(&self, mut progress: impl FnMut(u64, u64)) -> VerifyReport {
        let inner = &self.inner;
        let file = inner.bytes();
        let mut w = Walker { file, report: VerifyReport::default(), progress: &mut progress };
        for (name, err) in ["A", "B"].iter().zip(&inner.slots.errors) {
            if let Some(e) = err {
                w.problem(
                    crate::format::header::Slot::offset_of(usize::from(*name == "B")),
                    None,
                    format!("commit slot {name} is invalid: {e}"),
                );
            }
        }
        let slot = inner.slots.current;
        let end = if inner.live { slot.committed_len.min(file.len() as u64) } else { file.len() as u64 };
        if slot.committed_len > file.len() as u64 {
            w.problem(
                slot.committed_len,
                None,
                format!("commit slot says {} bytes are committed, the file has {}", slot.committed_len, file.len()),
            );
        }
        if slot.state == SlotState::Idle && (file.len() as u64) > slot.committed_len && !inner.live {
            w.problem(
                slot.committed_len,
                None,
                format!("{} bytes after the committed end belong to no session", file.len() as u64 - slot.committed_len),
            );
        }
        let walked = w.walk(end);
        for (si, s) in inner.sessions.iter().enumerate() {
            let Some(wk) = walked.iter().find(|x| x.start == s.offset) else {
                w.problem(s.offset, Some(si), "session not found by a linear walk of the file");
                continue;
            };
            match s.state {
                SessionState::Interrupted => w.problem(
                    s.offset,
                    Some(si),
                    format!("session {:?} was interrupted and not recovered (run `rec recover`)", s.start.name),
                ),
                SessionState::Finished if !wk.ended => w.problem(s.offset, Some(si), "finished session has no end record in the walk"),
                _ => {}
            }
            if let Some(stop) = &s.stop {
                w.problem(s.segment_end, Some(si), format!("session ends in a damaged or torn record: {stop}"));
            }
            let session = match self.session(si) {
                Some(x) => x,
                None => continue,
            };
            for (pos, st) in s.streams.iter().enumerate() {
                let name = &st.def.name;
                let mut digest = Digest::default();
                match inner.checked_runs(si, pos) {
                    Err(e) => w.problem(s.index_offset.unwrap_or(s.offset), Some(si), format!("index of stream {name:?}: {e}")),
                    Ok(runs) => {
                        let mut prev: Option<(i64, u64)> = None;
                        for run in runs.iter() {
                            let bytes: &[u8] = match &run.loc {
                                RunLoc::File(o) => &file[*o as usize..(*o + run.count * 16) as usize],
                                RunLoc::Owned(b) => b,
                            };
                            let e = EntrySlice::new(bytes);
                            if !e.is_empty() && e.ts(0) != run.first_ts {
                                w.problem(
                                    s.index_offset.unwrap_or(0),
                                    Some(si),
                                    format!(
                                        "index run of stream {name:?} says it starts at ts {}, its first entry has {}",
                                        run.first_ts,
                                        e.ts(0)
                                    ),
                                );
                            }
                            for i in 0..e.len() {
                                let entry = e.get(i);
                                if prev.is_some_and(|p| p > (entry.ts, entry.offset)) {
                                    w.problem(
                                        entry.offset,
                                        Some(si),
                                        format!("index of stream {name:?} is out of order at entry {}", run.cum_start + i as u64),
                                    );
                                }
                                prev = Some((entry.ts, entry.offset));
                                match Frame::load(&self.inner, si, s.salt_state, pos as u16, entry, &mut IntervalCheck::off()) {
                                    Ok(f) => digest.add(f.ts, f.offset, f.data().len() as u64),
                                    Err(err) => w.problem(
                                        entry.offset,
                                        Some(si),
                                        format!("index entry {} of stream {name:?}: {err}", run.cum_start + i as u64),
                                    ),
                                }
                            }
                        }
                    }
                }
                let records = wk.frames.get(&(pos as u16)).copied().unwrap_or_default();
                if digest != records {
                    w.problem(
                        s.index_offset.unwrap_or(s.offset),
                        Some(si),
                        format!(
                            "index of stream {name:?} lists {} readable frames, the records hold {}; the sets differ",
                            digest.count, records.count
                        ),
                    );
                }
                if st.frames != records.count
                    || (records.count > 0
                        && (st.payload_bytes != records.bytes || Some(st.first_ts) != records.min_ts || Some(st.last_ts) != records.max_ts))
                {
                    w.problem(
                        s.index_offset.unwrap_or(s.offset),
                        Some(si),
                        format!("statistics of stream {name:?} do not match its frames"),
                    );
                }
            }
            let known: u64 = s.streams.len() as u64;
            for id in wk.frames.keys() {
                if u64::from(*id) >= known {
                    w.problem(s.offset, Some(si), format!("frames of undefined stream {id}"));
                }
            }
            let total: u64 = wk.frames.values().map(|d| d.count).sum();
            if s.frames != total {
                w.problem(
                    s.end_offset.unwrap_or(s.offset),
                    Some(si),
                    format!("session says {} frames, its records hold {total}", s.frames),
                );
            }
            drop(session);
        }
        for wk in &walked {
            if !inner.sessions.iter().any(|s| s.offset == wk.start) {
                w.problem(wk.start, None, "session found in the file is not reachable from the commit slots");
            }
        }
        w.report.sessions = inner.sessions.len();
        w.report.problems.sort_by_key(|p| p.offset);
        w.report.ok = w.report.problems.is_empty();
        w.report
    }
}
