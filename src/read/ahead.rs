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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How many checked intervals the helper may hold ready: enough to ride out a slow page
/// fault, few enough that a walk dropped early leaves little hashed in vain (~2 MB)...
const DEPTH: u64 = 16;

/// ...and how many of them the walk reads before it wakes a helper that waits with all of them
/// ready: a helper woken for every interval (as a full channel wakes its sender) costs the
/// walk a system call and the helper a sleep per interval, a fifth of a walk whose pages are
/// mapped quickly.
const REFILL_AT: u64 = DEPTH / 2;

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
    /// What the walk and the helper tell each other.
    progress: Arc<Progress>,
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
        let (tx, rx) = sync_channel(DEPTH as usize);
        let progress = Arc::new(Progress {
            hashing_to: AtomicU64::new(from),
            from_disk: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            helper_waits: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let (walk_file, walk_progress) = (file.clone(), progress.clone());
        let file = file.clone();
        let helper = Helper::spawn("recfile-intervals", move || {
            let bytes = file.bytes();
            let mut finder = Finder { salt, limit, at: from, last_len: None };
            let mut disk = FromDisk::new(from);
            while let Some((start, checkpoint, crc)) = finder.next(bytes) {
                progress.hashing_to.store(checkpoint, Ordering::Relaxed);
                disk.cold |= progress.from_disk.load(Ordering::Relaxed);
                if let Some((from, to)) = disk.read_ahead(checkpoint, limit) {
                    file.read_ahead(from, to);
                }
                let hashing = Instant::now();
                let matched = interval_matches(bytes, start, checkpoint, crc);
                disk.hashed(checkpoint - start, hashing.elapsed());
                if !progress.room_for_one_more() || tx.send(Checked { start, checkpoint, matched }).is_err() {
                    break;
                }
                progress.sent.fetch_add(1, Ordering::SeqCst);
            }
        })
        .ok()?;
        Some(IntervalsAhead {
            checked: Some(rx),
            pending: None,
            helper,
            file: walk_file,
            progress: walk_progress,
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
                Ok(next) => {
                    self.took_one();
                    return Some(next);
                }
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            let span = self.progress.hashing_to.load(Ordering::Relaxed).saturating_add(PAGE_TABLE_SPAN - 1) & !(PAGE_TABLE_SPAN - 1);
            let from = self.prefaulted_to.max(span);
            if from >= self.limit || from - span >= PREFAULT_LEAD {
                let next = rx.recv().ok();
                self.took_one();
                return next;
            }
            let to = from.saturating_add(PREFAULT_CHUNK).min(self.limit);
            let mapping = Instant::now();
            self.file.prefault(from, to);
            if looks_from_disk(to - from, mapping.elapsed()) {
                // The helper then asks for the bytes ahead.
                self.progress.from_disk.store(true, Ordering::Relaxed);
            }
            self.prefaulted_to = to;
        }
    }

    /// Counts an interval read from the helper, and wakes the helper when it waits and half
    /// of what it had ready is read.
    fn took_one(&self) {
        let p = &self.progress;
        let taken = p.taken.fetch_add(1, Ordering::SeqCst) + 1;
        if p.helper_waits.load(Ordering::SeqCst) && p.sent.load(Ordering::SeqCst).saturating_sub(taken) <= DEPTH - REFILL_AT {
            self.helper.unpark();
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
        if !self.helper.forked() {
            self.progress.stop.store(true, Ordering::SeqCst);
            self.helper.unpark();
        }
        self.helper.join();
    }
}

/// The helper judges whether the file comes from the disk once per this many bytes hashed...
const JUDGE_BYTES: u64 = 1 << 20;

/// ...by the time their hash took: slower than this, its page faults waited for the disk
/// (cached, hashing and faulting a MiB in takes 0.1–0.5 ms here; from this VM's disk without
/// readahead, ~10 ms).
const FROM_DISK_TIME: Duration = Duration::from_millis(2);

/// A file found to come from the disk is asked to be read this far ahead of the interval the
/// helper hashes, at least this many bytes at a time.
const READ_AHEAD: u64 = 8 << 20;
const READ_AHEAD_STEP: u64 = 2 << 20;

/// What the walk and the helper tell each other.
#[derive(Debug)]
struct Progress {
    /// Where the interval the helper hashes now ends.
    hashing_to: AtomicU64,
    /// The walk found its mapping of pages ahead waiting for the disk.
    from_disk: AtomicBool,
    /// Intervals the helper handed over, and the walk read.
    sent: AtomicU64,
    taken: AtomicU64,
    /// The helper sleeps with [`DEPTH`] intervals ready (woken by `took_one`), or is told to
    /// stop (the walk was dropped).
    helper_waits: AtomicBool,
    stop: AtomicBool,
}

impl Progress {
    /// On the helper: waits while [`DEPTH`] checked intervals are ready and unread, until the
    /// walk has read [`REFILL_AT`] of them; false when told to stop.
    fn room_for_one_more(&self) -> bool {
        let full = || self.sent.load(Ordering::SeqCst).saturating_sub(self.taken.load(Ordering::SeqCst)) >= DEPTH;
        while full() {
            self.helper_waits.store(true, Ordering::SeqCst);
            // Checked again after saying so: a walk that read in between has seen the flag,
            // or this sees its read (and a wake-up sent before the park makes it return).
            if full() && !self.stop.load(Ordering::SeqCst) {
                // The timeout only bounds a missed wake-up; none is expected.
                std::thread::park_timeout(Duration::from_millis(10));
            }
            self.helper_waits.store(false, Ordering::SeqCst);
            if self.stop.load(Ordering::SeqCst) {
                return false;
            }
        }
        !self.stop.load(Ordering::SeqCst)
    }
}

/// Whether reading `bytes` of the file in `time` (hashing them, or mapping them) waited for the
/// disk.
fn looks_from_disk(bytes: u64, time: Duration) -> bool {
    time.as_secs_f64() * JUDGE_BYTES as f64 > FROM_DISK_TIME.as_secs_f64() * bytes as f64
}

/// Whether a walk's file comes from the disk, and how far it was asked to be read ahead.
///
/// A walk's page faults alone read an uncached file a few pages at a time (measured: the
/// system's readahead for the mapping did not engage, for two threads faulting at two places
/// or for one). So once hashing shows the faults waiting for the disk, the bytes ahead are
/// asked for (a walk of 1M × 100 B frames from a cold page cache: 1.45 s → 88–104 ms, the raw
/// parse 36–52 ms). Asking for cached bytes costs a page-cache lookup per page (~12 % of a
/// cached walk), hence the judgement first.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FromDisk {
    /// Once true, for the rest of the walk.
    cold: bool,
    /// Read ahead was asked for up to here.
    asked_to: u64,
    /// Bytes hashed since the last judgement, and the time that took.
    bytes: u64,
    time: Duration,
}

impl FromDisk {
    /// For a walk from `from` (no read ahead asked for before it).
    pub(crate) fn new(from: u64) -> Self {
        FromDisk { cold: false, asked_to: from, bytes: 0, time: Duration::ZERO }
    }

    /// Counts an interval of `bytes` hashed in `time`; judges after every [`JUDGE_BYTES`].
    pub(crate) fn hashed(&mut self, bytes: u64, time: Duration) {
        self.bytes = self.bytes.saturating_add(bytes);
        self.time = self.time.saturating_add(time);
        if self.bytes >= JUDGE_BYTES {
            self.cold |= looks_from_disk(self.bytes, self.time);
            (self.bytes, self.time) = (0, Duration::ZERO);
        }
    }

    /// The next range to ask the system to read, before the helper hashes up to `hashing_to`
    /// (records end before `limit`): none while the file looks cached, or when it was asked
    /// for far enough.
    pub(crate) fn read_ahead(&mut self, hashing_to: u64, limit: u64) -> Option<(u64, u64)> {
        let want = hashing_to.saturating_add(READ_AHEAD).min(limit);
        if !self.cold || want <= self.asked_to || (want < limit && want - self.asked_to < READ_AHEAD_STEP) {
            return None;
        }
        // From a little before: the interval about to be hashed is read with the rest.
        let from = self.asked_to.max(hashing_to.saturating_sub(READ_AHEAD_STEP));
        self.asked_to = want;
        Some((from, want))
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

    /// Mapping pages ahead and asking for them to be read are hints: any range, inside the
    /// file or not, leaves the bytes and the process as they were.
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
            f.inner.read_ahead(start, end);
        }
        assert_eq!(f.inner.bytes(), &file[..]);
    }

    const MIB: u64 = 1 << 20;

    /// A cached file (hashing far faster than the disk) is never asked to be read ahead, nor
    /// is one judged on less than [`JUDGE_BYTES`]; a long interval is judged like many short
    /// ones at the same speed.
    #[test]
    fn a_file_is_read_ahead_only_once_hashing_waits_for_the_disk() {
        let mut cached = FromDisk::new(0);
        for i in 1..=1_000u64 {
            cached.hashed(139_000, Duration::from_micros(60));
            assert_eq!(cached.read_ahead(i * 139_000, 1 << 40), None, "cached, interval {i}");
        }
        let mut early = FromDisk::new(0);
        early.hashed(JUDGE_BYTES / 2, Duration::from_secs(1));
        assert_eq!(early.read_ahead(JUDGE_BYTES / 2, 1 << 40), None, "judged on half a MiB");
        let per_mib = FROM_DISK_TIME.as_micros() as u64;
        for (bytes, micros, cold) in
            [(8 * MIB, 8 * per_mib / 2, false), (8 * MIB, 8 * per_mib * 2, true), (MIB, per_mib + 1, true), (MIB, per_mib - 1, false)]
        {
            let mut d = FromDisk::new(0);
            d.hashed(bytes, Duration::from_micros(micros));
            assert_eq!(d.cold, cold, "{bytes} bytes in {micros} us");
        }
    }

    /// Once cold, the ranges asked for run on from a little before the interval hashed (not
    /// before the walk's start), in
    /// steps of at least [`READ_AHEAD_STEP`], each starting where the last one ended, always
    /// [`READ_AHEAD`] ahead of the helper, never past the session's records, and ending there.
    #[test]
    fn read_ahead_ranges_follow_the_helper_to_the_end() {
        let limit = 100 * MIB + 12_345;
        let mut d = FromDisk::new(3 * MIB);
        d.hashed(4 * MIB, Duration::from_secs(1));
        assert!(d.cold);
        let mut asked: Vec<(u64, u64)> = Vec::new();
        let mut hashing_to = 3 * MIB;
        while hashing_to < limit {
            hashing_to = (hashing_to + 139_000).min(limit);
            if let Some((from, to)) = d.read_ahead(hashing_to, limit) {
                assert!(to <= limit && from < to, "{from}..{to}");
                assert_eq!(to, (hashing_to + READ_AHEAD).min(limit), "{from}..{to} at {hashing_to}");
                match asked.last() {
                    // Not before the walk's start.
                    None => assert_eq!(from, (3 * MIB).max(hashing_to - READ_AHEAD_STEP)),
                    Some(&(_, end)) => {
                        assert_eq!(from, end, "ranges follow one another");
                        assert!(to - from >= READ_AHEAD_STEP || to == limit, "{from}..{to}: a step too small");
                    }
                }
                asked.push((from, to));
            }
            let (_, end) = *asked.last().unwrap();
            assert!(end >= (hashing_to + READ_AHEAD - READ_AHEAD_STEP).min(limit), "{end} lags behind {hashing_to}");
        }
        assert_eq!(asked.last().unwrap().1, limit);
        assert_eq!(d.read_ahead(limit, limit), None, "nothing past the end");
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
