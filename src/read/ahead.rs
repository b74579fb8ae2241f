//! Interval CRCs checked ahead of a walk, on a second thread (spec §7 "Reading in order").
//!
//! A long in-order walk spends about half its time hashing intervals and taking the page
//! faults of their bytes. A helper thread finds the intervals after the walk's place and
//! hashes them, a few ahead of it, while the walk reads the frames of the interval it is in.
//! The walk still takes a frame only once the interval holding it has been checked, so what
//! it yields is what it would yield on one thread.

use super::file::FileInner;
use super::interval::{checkpoint_at, header_len, hop_to_checkpoint, interval_matches, MAX_INTERVAL};
use crate::format::record::{Kind, RECORD_HEADER_LEN};
use crate::threads::Helper;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::{Arc, OnceLock};

/// How many checked intervals the helper may hold ready: enough to ride out a slow page
/// fault, few enough that a walk dropped early leaves little hashed in vain.
const DEPTH: usize = 4;

/// A walk waiting for the helper maps pages ahead of it, this many bytes at a time (about
/// 60 µs of work: a wait costs at most that much more)...
const PREFAULT_CHUNK: u64 = 256 << 10;

/// ...from the first boundary of this span after the interval the helper hashes: the pages
/// of one span share a page table, whose lock the helper's own page faults take (measured:
/// mapping right after the helper's interval made scan() 10 % slower than from the next
/// span)...
const PAGE_TABLE_SPAN: u64 = 2 << 20;

/// ...and at most this far past that boundary, so that a walk dropped early has mapped
/// little in vain.
const PREFAULT_LEAD: u64 = 4 << 20;

/// What the walk learns about the interval holding an offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ahead {
    /// `[start, checkpoint)` holds the offset and its CRC matched.
    Matched(u64, u64),
    /// `[start, checkpoint)` holds the offset and its CRC did not match (damage inside).
    Mismatched(u64, u64),
    /// The next interval checked ahead starts after the offset (a walk that went back, or a
    /// checkpoint that did not validate): the walk checks it on its own.
    NotHere,
    /// Nothing more ahead: past the session's last checkpoint, or at a record header that
    /// could not be hopped.
    Ended,
}

/// One interval the helper checked: `[start, checkpoint)`, and whether its CRC matched.
#[derive(Clone, Copy, Debug)]
struct Checked {
    start: u64,
    checkpoint: u64,
    matched: bool,
}

/// The intervals after a walk's place, checked in file order by a helper thread. Dropping it
/// stops the helper and waits for it (at most one interval's hash), so the file's mapping is
/// not held past the walk.
pub(crate) struct IntervalsAhead {
    /// The intervals checked, in file order.
    checked: Option<Receiver<Checked>>,
    /// The interval received last, kept: the walk may ask about it again, or about a later
    /// offset.
    pending: Option<Checked>,
    /// A child forked mid-walk has no helper thread: it neither waits for one nor joins it.
    helper: Helper,
    /// The file, whose pages the walk maps while it waits.
    file: Arc<FileInner>,
    /// Where the interval the helper hashes now ends.
    hashing_to: Arc<AtomicU64>,
    /// The walk mapped the pages before this offset.
    prefaulted_to: u64,
    /// Records of the session end before this offset.
    limit: u64,
}

impl IntervalsAhead {
    /// Starts checking the intervals of the session with salt `salt` (records before `limit`)
    /// from `from`, a record boundary; None when the machine has one core or no thread could
    /// be started (the walk then checks on its own thread).
    pub fn start(file: &Arc<FileInner>, salt: u32, limit: u64, from: u64) -> Option<IntervalsAhead> {
        static CORES: OnceLock<bool> = OnceLock::new();
        if !*CORES.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)) {
            return None;
        }
        Self::spawn(file, salt, limit, from)
    }

    /// Starts the helper thread, whatever the number of cores.
    fn spawn(file: &Arc<FileInner>, salt: u32, limit: u64, from: u64) -> Option<IntervalsAhead> {
        let (tx, rx) = sync_channel(DEPTH);
        let hashing_to = Arc::new(AtomicU64::new(from));
        let (walk_file, walk_hashing_to) = (file.clone(), hashing_to.clone());
        let file = file.clone();
        let helper = Helper::spawn("recfile-intervals", move || {
            let bytes = file.bytes();
            let mut finder = Finder { salt, limit, at: from, last_len: None };
            while let Some((start, checkpoint, crc)) = finder.next(bytes) {
                hashing_to.store(checkpoint, Ordering::Relaxed);
                let matched = interval_matches(bytes, start, checkpoint, crc);
                if tx.send(Checked { start, checkpoint, matched }).is_err() {
                    break;
                }
            }
        })
        .ok()?;
        Some(IntervalsAhead {
            checked: Some(rx),
            pending: None,
            helper,
            file: walk_file,
            hashing_to: walk_hashing_to,
            prefaulted_to: from,
            limit,
        })
    }

    /// The next interval the helper checked, waiting for it if need be. The walk waits
    /// because the helper, which hashes the bytes and takes their page faults, is behind: it
    /// spends the wait mapping pages the helper hashes soon, so that the two threads share
    /// the page faults of a file read for the first time. (They are dear for a file just
    /// written a checkpoint interval at a time: its cached pages are held in small units.)
    fn next_checked(&mut self) -> Option<Checked> {
        let rx = self.checked.as_ref()?;
        loop {
            match rx.try_recv() {
                Ok(next) => return Some(next),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            let span = self.hashing_to.load(Ordering::Relaxed).saturating_add(PAGE_TABLE_SPAN - 1) & !(PAGE_TABLE_SPAN - 1);
            let from = self.prefaulted_to.max(span);
            if from >= self.limit || from - span >= PREFAULT_LEAD {
                return rx.recv().ok();
            }
            let to = from.saturating_add(PREFAULT_CHUNK).min(self.limit);
            self.file.prefault(from, to);
            self.prefaulted_to = to;
        }
    }

    /// The interval holding the record at `offset`, checked; intervals before it are passed
    /// (asked about an offset behind them, the answer is [`Ahead::NotHere`]). Waits for the
    /// helper when it is not that far yet.
    pub fn interval_of(&mut self, offset: u64) -> Ahead {
        if self.helper.forked() {
            return Ahead::Ended;
        }
        loop {
            let next = match self.pending.take() {
                Some(next) => next,
                None => match self.next_checked() {
                    Some(next) => next,
                    None => return Ahead::Ended,
                },
            };
            if next.checkpoint <= offset {
                continue;
            }
            self.pending = Some(next);
            return match next {
                Checked { start, .. } if start > offset => Ahead::NotHere,
                Checked { start, checkpoint, matched: true } => Ahead::Matched(start, checkpoint),
                Checked { start, checkpoint, matched: false } => Ahead::Mismatched(start, checkpoint),
            };
        }
    }
}

impl std::fmt::Debug for IntervalsAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalsAhead").field("pending", &self.pending).field("prefaulted_to", &self.prefaulted_to).finish_non_exhaustive()
    }
}

impl Drop for IntervalsAhead {
    fn drop(&mut self) {
        if self.helper.forked() {
            // Forked: the channel is shared with the parent's helper; it is left as it is.
            std::mem::forget(self.checked.take());
        }
        // Closing the channel first wakes a helper waiting to send.
        self.checked = None;
        self.helper.join();
    }
}

/// Finds a session's intervals one after another from a record boundary.
#[derive(Debug)]
struct Finder {
    salt: u32,
    /// Records of the session end before this offset.
    limit: u64,
    /// A record boundary: the start of the next interval, or a record inside it.
    at: u64,
    /// The length of the interval found last: where the next checkpoint is tried first.
    last_len: Option<u64>,
}

impl Finder {
    /// The next interval `(start, checkpoint, crc)` whose checkpoint record holds; None at the
    /// session's tail or where the records cannot be hopped (a damaged record header). An
    /// interval whose checkpoint is damaged (or too long to check in one pass) is passed over:
    /// its frames are checked one by one.
    fn next(&mut self, file: &[u8]) -> Option<(u64, u64, u32)> {
        let stop = self.limit.min(file.len() as u64);
        loop {
            // A checkpoint ends an interval (two in a row: an empty one); the next starts after.
            while self.at.saturating_add(RECORD_HEADER_LEN as u64) <= stop
                && file.get(self.at as usize + 8) == Some(&(Kind::Checkpoint as u8))
            {
                self.at += RECORD_HEADER_LEN as u64 + header_len(file, self.at)?;
            }
            // Intervals of like frames have like lengths: a checkpoint found where the last
            // length puts it, naming this interval's start, saves hopping the interval's records.
            let guessed = self.last_len.and_then(|len| {
                let found = checkpoint_at(file, self.salt, self.at.checked_add(len)?)?;
                (found.0 == self.at).then_some(found)
            });
            let (checkpoint, found) = match guessed {
                Some(found) => (found.1, Some(found)),
                None => {
                    let at = hop_to_checkpoint(file, stop.min(self.at.saturating_add(MAX_INTERVAL)), self.at).ok()?;
                    (at, checkpoint_at(file, self.salt, at))
                }
            };
            self.at = checkpoint.checked_add(RECORD_HEADER_LEN as u64)?.checked_add(header_len(file, checkpoint)?)?;
            match found {
                Some((start, checkpoint, crc)) if checkpoint - start <= MAX_INTERVAL => {
                    self.last_len = Some(checkpoint - start);
                    return Some((start, checkpoint, crc));
                }
                _ => self.last_len = None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::record::read_record;
    use crate::{RecFile, RecorderOptions, Timestamp};

    /// An interval of the model: start, checkpoint, its frames' offsets.
    type ModelInterval = (u64, u64, Vec<u64>);

    /// One session of 3,000 frames (the first half all 1,500 bytes, the second half of varied
    /// lengths, so both ways of finding a checkpoint run), a checkpoint every 40 frames.
    fn long_session() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.rec");
        let mut rec = RecorderOptions::new().checkpoint_every_frames(40).create(&path).unwrap();
        let mut s = rec.start_session("long").unwrap();
        let cam = s.add_stream("camera", "raw").unwrap();
        for i in 0..3_000i64 {
            let len = if i < 1_500 { 1_500 } else { 700 + (i as usize * 7919) % 1_600 };
            s.write(cam, Timestamp::from_nanos(i * 1_000), &vec![i as u8; len]).unwrap();
        }
        s.finish().unwrap();
        drop(rec);
        std::fs::read(&path).unwrap()
    }

    /// The model, from a walk over every record of the intact session: each interval that
    /// holds frames, as (start, checkpoint, its frames' offsets).
    fn intervals_by_walk(file: &[u8], salt: u32, from: u64, limit: u64) -> Vec<ModelInterval> {
        let (mut intervals, mut frames) = (Vec::new(), Vec::new());
        let mut at = from;
        while at < limit {
            let r = read_record(file, at, None).unwrap();
            match r.kind() {
                Some(Kind::Checkpoint) if !frames.is_empty() => {
                    let (start, cp, _) = checkpoint_at(file, salt, at).unwrap();
                    intervals.push((start, cp, std::mem::take(&mut frames)));
                }
                Some(Kind::Frame) => frames.push(at),
                _ => {}
            }
            at = r.end();
        }
        intervals
    }

    /// Asks the checks ahead, started at the first frame, about every frame of every interval
    /// of the model, in order: what each interval's frames got (one answer per interval: all
    /// its frames must get the same).
    fn answers(file: Vec<u8>, model: &[ModelInterval]) -> Vec<Ahead> {
        let f = RecFile::from_bytes(file).unwrap();
        let s = &f.inner.sessions[0];
        let mut ahead = IntervalsAhead::spawn(&f.inner, s.salt, s.segment_end, model[0].2[0]).unwrap();
        model
            .iter()
            .map(|(_, _, frames)| {
                let got: Vec<Ahead> = frames.iter().map(|&at| ahead.interval_of(at)).collect();
                assert!(got.windows(2).all(|w| w[0] == w[1]), "one interval, one answer: {got:?}");
                got[0]
            })
            .collect()
    }

    /// The long session and its model.
    fn long_model() -> (Vec<u8>, Vec<ModelInterval>) {
        let file = long_session();
        let f = RecFile::from_bytes(file.clone()).unwrap();
        let s = &f.inner.sessions[0];
        let model = intervals_by_walk(&file, s.salt, s.offset, s.segment_end);
        assert_eq!(model.len(), 75, "3,000 frames, a checkpoint every 40");
        (file, model)
    }

    #[test]
    fn every_interval_is_found_and_matched_as_a_walk_over_every_record_finds_it() {
        let (file, model) = long_model();
        let got = answers(file, &model);
        let want: Vec<Ahead> = model.iter().map(|&(start, cp, _)| Ahead::Matched(start, cp)).collect();
        assert_eq!(got, want);
    }

    /// A flipped byte in a frame fails that interval alone; in a checkpoint, that interval is
    /// not answered (its frames get their own checks) and the next ones are; in a record's
    /// length, the intervals before are answered and the damaged one never matches.
    #[test]
    fn damage_fails_its_own_interval_and_no_other() {
        let (file, model) = long_model();
        let matched = |k: usize| Ahead::Matched(model[k].0, model[k].1);
        // Intervals of like frames (guessed) and of varied ones (hopped): first, middle, last.
        for k in [1, 20, 36, 38, 55, 74] {
            let (start, cp, frames) = &model[k];
            let frame = frames[frames.len() / 2];
            let mut payload = file.clone();
            payload[frame as usize + 40] ^= 1;
            let got = answers(payload, &model);
            for (j, g) in got.iter().enumerate() {
                let want = if j == k { Ahead::Mismatched(*start, *cp) } else { matched(j) };
                assert_eq!(*g, want, "payload byte of interval {k}: interval {j}");
            }
            let mut checkpoint = file.clone();
            checkpoint[*cp as usize + 30] ^= 1;
            let got = answers(checkpoint, &model);
            for (j, g) in got.iter().enumerate() {
                let want = if j == k { Ahead::NotHere } else { matched(j) };
                // The last checkpoint ends the session's intervals: nothing is found after it.
                let want = if j == k && k == model.len() - 1 { Ahead::Ended } else { want };
                assert_eq!(*g, want, "checkpoint of interval {k}: interval {j}");
            }
            let mut length = file.clone();
            length[frame as usize + 5] ^= 0x40;
            let got = answers(length, &model);
            assert!(got[..k].iter().enumerate().all(|(j, g)| *g == matched(j)), "length in interval {k}: {got:?}");
            assert!(!matches!(got[k], Ahead::Matched(..)), "length in interval {k}: {:?}", got[k]);
        }
    }

    /// Mapping pages ahead is a hint: any range, inside the file or not, leaves the bytes and
    /// the process as they were.
    #[test]
    fn prefaulting_any_range_is_harmless() {
        let file = long_session();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mapped.rec");
        std::fs::write(&path, &file).unwrap();
        let f = RecFile::open(&path).unwrap();
        let len = file.len() as u64;
        for (start, end) in
            [(0, 0), (0, len), (1, 2), (4095, 4097), (len - 1, len + 1), (len, len + 4096), (10, 5), (u64::MAX - 1, u64::MAX)]
        {
            f.inner.prefault(start, end);
        }
        assert_eq!(f.inner.bytes(), &file[..]);
    }

    #[test]
    fn a_walk_dropped_early_stops_the_helper() {
        let (file, model) = long_model();
        let f = RecFile::from_bytes(file).unwrap();
        let s = &f.inner.sessions[0];
        let first = model[0].2[0];
        for _ in 0..50 {
            let mut ahead = IntervalsAhead::spawn(&f.inner, s.salt, s.segment_end, first).unwrap();
            assert_eq!(ahead.interval_of(first), Ahead::Matched(model[0].0, model[0].1));
        }
        // Each drop joined its helper: only this test's own references to the file remain.
        assert_eq!(Arc::strong_count(&f.inner), 1);
    }
}
