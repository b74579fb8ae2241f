//! Sequential reads checked one interval at a time (format 1.1, spec §7 "Reading in order").
//!
//! A session whose start has the interval-CRC flag stores in each Checkpoint the CRC32 of the
//! bytes between the previous checkpoint and itself. A walk in file order checks that CRC once
//! (one fast pass) instead of one CRC per record; inside an interval that matched, a frame
//! needs only its framing checked, at a record boundary reached by hopping record lengths from
//! the interval's start. A frame outside any matched interval (a 1.0 session, the tail after
//! the last checkpoint, an interval that did not match, a frame out of file order) gets its own
//! CRC checked, so one damaged frame still fails alone.
//!
//! A long walk checks its intervals ahead with a second thread ([`IntervalsAhead`]).

use super::ahead::{Ahead, FromDisk, IntervalsAhead};
use super::file::FileInner;
use super::layout::SessionLayout;
use crate::format::bytes::{le_u32, le_u64};
use crate::format::record::{read_record_of, Kind, RECORD_HEADER_LEN, SESSION_INTERVAL_CRCS};
use std::sync::Arc;
use std::time::Instant;

/// Intervals longer than this are read with per-record CRCs: a payload that large is checked
/// as fast on its own, and a walk that reads a few frames of it does not hash all of it.
pub(crate) const MAX_INTERVAL: u64 = 8 << 20;

/// A walk starts checking ahead with a second thread when it needs its second interval and
/// at least this many bytes of the session lie after it: below that, starting a thread
/// (tens of µs) costs more than it saves.
const AHEAD_MIN_BYTES: u64 = 2 << 20;

/// Checking ahead stops at a record header it cannot hop (damage); the walk starts it again
/// past that, at most this many times.
const MAX_STARTS: u8 = 4;

/// Where a walk stands with the interval CRCs of one session.
#[derive(Debug)]
pub(crate) struct IntervalCheck {
    /// Off for sessions without interval CRCs and for walks over a small share of the bytes.
    on: bool,
    salt: u32,
    /// Records of the session end before this offset.
    limit: u64,
    /// `[start, end)`: an interval whose CRC matched.
    good: (u64, u64),
    /// A record boundary in `good` (hopped to from its start): frames are taken in file order.
    boundary: u64,
    /// `[start, end)`: where finding or matching an interval failed; not tried again.
    bad: (u64, u64),
    /// Whether the hint (a later frame of the interval) found intervals so far.
    hints: bool,
    /// Checks ahead started by this walk.
    starts: u8,
    /// The intervals checked ahead with a second thread, once the walk is long enough.
    ahead: Option<IntervalsAhead>,
    /// Whether the intervals checked on this thread came from the disk.
    disk: FromDisk,
}

impl Clone for IntervalCheck {
    /// A copy walks on its own: it does not share the checks ahead (it starts its own).
    fn clone(&self) -> Self {
        IntervalCheck { ahead: None, ..*self }
    }
}

impl IntervalCheck {
    /// A walk that checks every record's own CRC.
    pub fn off() -> Self {
        IntervalCheck {
            on: false,
            salt: 0,
            limit: 0,
            good: (0, 0),
            boundary: 0,
            bad: (0, 0),
            hints: true,
            starts: 0,
            ahead: None,
            disk: FromDisk::new(0),
        }
    }

    /// The check for a walk over `selected` streams of session `s`: on when the session has
    /// interval CRCs and those streams hold at least half of its frame bytes (otherwise hashing
    /// whole intervals would read more than checking the selected frames alone).
    pub fn for_walk(s: &SessionLayout, selected: impl Iterator<Item = usize>) -> Self {
        if s.start.flags & SESSION_INTERVAL_CRCS == 0 {
            return Self::off();
        }
        let total: u64 = s.streams.iter().map(|st| st.record_bytes()).fold(0, u64::saturating_add);
        let chosen: u64 = selected.filter_map(|i| s.streams.get(i)).map(|st| st.record_bytes()).fold(0, u64::saturating_add);
        if total == 0 || chosen < total / 2 {
            return Self::off();
        }
        IntervalCheck { on: true, salt: s.salt, limit: s.segment_end, ..Self::off() }
    }

    /// Whether a walk about to read the record at `offset` should first find and check its
    /// interval ([`IntervalCheck::check_interval_of`]): it is on, and `offset` is neither in the
    /// interval checked last nor where a check failed.
    #[inline]
    pub fn wants(&self, offset: u64) -> bool {
        self.on && !(offset >= self.good.0 && offset < self.good.1) && !(offset >= self.bad.0 && offset < self.bad.1)
    }

    /// When the record at `offset` lies at a record boundary of the interval whose CRC
    /// matched last, the end of that interval: the record's bytes are as written, and its own
    /// CRC need not be checked.
    #[inline]
    pub fn covers(&mut self, file: &[u8], offset: u64) -> Option<u64> {
        (offset >= self.good.0 && offset < self.good.1 && self.hop_to(file, offset)).then_some(self.good.1)
    }

    /// When the record at `offset` is the next one of the interval whose CRC matched last
    /// (at the boundary: an in-order walk's common step), the end of that interval.
    #[inline]
    pub fn at_boundary(&self, offset: u64) -> Option<u64> {
        (self.on && offset == self.boundary && offset < self.good.1).then_some(self.good.1)
    }

    /// Moves the boundary past a record just read at the boundary, which ends at `end`: the
    /// next frame of an in-order walk then starts at the boundary, with nothing to hop.
    #[inline]
    pub fn passed(&mut self, end: u64) {
        self.boundary = end;
    }

    /// Moves the boundary forward to `offset`; false when `offset` is behind it or not a
    /// record boundary. The interval matched, so the lengths it hops are the writer's.
    #[inline]
    fn hop_to(&mut self, file: &[u8], offset: u64) -> bool {
        while self.boundary < offset {
            let Some(len) = header_len(file, self.boundary) else { return false };
            self.boundary += RECORD_HEADER_LEN as u64 + len;
        }
        self.boundary == offset
    }

    /// Finds and checks the interval holding the record at `offset`: from the checks ahead
    /// when they run (started here once the walk needs its second interval and enough of the
    /// session follows), else on this thread ([`IntervalCheck::check_here`]).
    #[cold]
    pub fn check_interval_of(&mut self, file: &Arc<FileInner>, offset: u64, hint: u64) -> bool {
        // `good` is set once the walk has accepted its first interval.
        let accepted_one = self.good.1 > 0;
        if self.ahead.is_none() && self.starts < MAX_STARTS && accepted_one && self.limit.saturating_sub(offset) >= AHEAD_MIN_BYTES {
            self.starts += 1;
            self.ahead = IntervalsAhead::start(file, self.salt, self.limit, offset);
        }
        if let Some(a) = &mut self.ahead {
            match a.interval_of(offset) {
                Ahead::Matched(start, cp) => return self.accept((start, cp)),
                Ahead::Mismatched(_, cp) => {
                    self.bad = (offset, cp);
                    return false;
                }
                Ahead::NotHere => {}
                // Past the last checkpoint (the tail is checked here), or a record header it
                // could not hop (this thread's hints may get past it; checks ahead may start
                // again later).
                Ahead::Ended => self.ahead = None,
            }
        }
        let checking = Instant::now();
        let checked = self.check_here(file.bytes(), offset, hint);
        if checked {
            // A walk on one thread reads an uncached file a few pages at a time too.
            self.disk.hashed(self.good.1 - self.good.0, checking.elapsed());
            if let Some((from, to)) = self.disk.read_ahead(self.good.1, self.limit) {
                file.read_ahead(from, to);
            }
        }
        checked
    }

    /// Finds the checkpoint after `offset` by hopping record headers from `hint` (the offset
    /// of a later frame of the same interval, such as the last one its index block names; a
    /// locator only: what counts is the checkpoint's own CRC and the interval start it gives),
    /// then checks the interval's CRC in one pass. A failure marks the stretch hopped as
    /// checked per record.
    fn check_here(&mut self, file: &[u8], offset: u64, hint: u64) -> bool {
        if self.hints && hint > offset && hint - offset <= MAX_INTERVAL {
            if let Some(found) = find_interval(file, self.salt, self.limit, offset, hint).1 {
                return self.accept(found);
            }
            // An inline run (in the Index record) or a damaged entry: hints do not help here.
            self.hints = false;
        }
        match find_interval(file, self.salt, self.limit, offset, offset) {
            (_, Some(found)) => self.accept(found),
            (reached, None) => {
                self.bad = (offset, reached.max(offset + 1));
                false
            }
        }
    }

    /// Takes `[start, checkpoint)` as the interval checked last, its start as the boundary.
    fn accept(&mut self, (start, checkpoint): (u64, u64)) -> bool {
        self.good = (start, checkpoint);
        self.boundary = start;
        true
    }
}

/// Hops from `from` to the next checkpoint of the session (salt `salt`, records before
/// `limit`) and checks it and its interval, which must hold `offset`: the interval, or where
/// the hop stopped.
fn find_interval(file: &[u8], salt: u32, limit: u64, offset: u64, from: u64) -> (u64, Option<(u64, u64)>) {
    let stop = limit.min(file.len() as u64).min(offset.saturating_add(MAX_INTERVAL));
    match hop_to_checkpoint(file, stop, from) {
        Err(reached) => (reached, None),
        Ok(at) => {
            let matched = checkpoint_at(file, salt, at).and_then(|(start, cp, crc)| {
                let fits = start <= offset && offset < cp && cp - start <= MAX_INTERVAL;
                (fits && interval_matches(file, start, cp, crc)).then_some((start, cp))
            });
            (at, matched)
        }
    }
}

/// The interval `(start, checkpoint, crc)` that a checkpoint record at `at` ends, when one is
/// there and its CRC holds.
pub(crate) fn checkpoint_at(file: &[u8], salt: u32, at: u64) -> Option<(u64, u64, u32)> {
    let r = read_record_of(file, at, salt, Kind::Checkpoint).ok()?;
    // Body offsets 32 (interval start) and 60 (interval CRC), spec §5.4.
    let (start, crc) = (r.body.len() >= 64).then(|| (le_u64(r.body, 32), le_u32(r.body, 60)))?;
    (start <= at).then_some((start, at, crc))
}

/// Whether the bytes `[start, checkpoint)` have the interval CRC `crc`.
pub(crate) fn interval_matches(file: &[u8], start: u64, checkpoint: u64, crc: u32) -> bool {
    let range = usize::try_from(start).ok().zip(usize::try_from(checkpoint).ok());
    range.and_then(|(s, c)| file.get(s..c)).is_some_and(|b| crc32fast::hash(b) == crc)
}

/// Hops record headers from `from` to the first Checkpoint header before `stop`: its offset,
/// or where the hop stopped (at `stop`, or at a header that is not a record's).
pub(crate) fn hop_to_checkpoint(file: &[u8], stop: u64, from: u64) -> Result<u64, u64> {
    let mut at = from;
    loop {
        if at.saturating_add(RECORD_HEADER_LEN as u64) > stop {
            return Err(at);
        }
        let Some(&kind) = file.get(at as usize + 8) else { return Err(at) };
        if kind == Kind::Checkpoint as u8 {
            return Ok(at);
        }
        match header_len(file, at) {
            Some(len) if Kind::from_byte(kind).is_some() => at += RECORD_HEADER_LEN as u64 + len,
            _ => return Err(at),
        }
    }
}

/// The body length of the record whose header is at `at`, when the header lies in `file`.
#[inline]
pub(crate) fn header_len(file: &[u8], at: u64) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    (at.checked_add(RECORD_HEADER_LEN)? <= file.len()).then(|| u64::from(le_u32(file, at + 4)))
}
