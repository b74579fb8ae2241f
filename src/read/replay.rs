//! Lookups and iteration over one or several streams of a session.

use super::file::Session;
use super::frame::{check_at_boundary, Checked, Frame, FrameRef};
use super::interval::IntervalCheck;
use super::layout::{Run, RunLoc, SessionLayout};
use super::runs::RunTable;
use crate::error::{Error, Result};
use crate::format::index::{EntrySlice, IndexEntry, ENTRY_LEN};
use crate::format::record::frame_header_within;
use crate::time::{duration_nanos, Timestamp};
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::Duration;

/// The index of one stream: its sorted runs.
#[derive(Clone)]
pub(crate) struct StreamIndex {
    pub id: u16,
    pub name: Arc<str>,
    pub encoding: Arc<str>,
    pub runs: RunTable,
    /// Timestamp of the last entry (for interpolating in the last run).
    pub last_ts: i64,
    pub len: u64,
    /// Where the stream's frames lie among the session's records (for prefetching a frame).
    pub place: Option<FramePlace>,
}

/// How a stream's frames are spread over the session's records, from the session's counts.
/// The interval of a run of `count` entries begins after the previous Checkpoint's entry
/// blocks: this stream's, then those of the streams after it (about `count` times
/// `later_q8`); the `j`-th frame of the stream is then about `j` strides on. Exact for a
/// stream alone in its session with frames of one size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FramePlace {
    /// Bytes of the session's frame records per frame of this stream, in 1/256 bytes.
    pub stride_q8: u64,
    /// Bytes of the later streams' index entries per frame of this stream, in 1/256 bytes.
    pub later_q8: u64,
    /// The mean length of this stream's frame records.
    pub record_len: u64,
}

impl FramePlace {
    /// For stream `pos` of session `l`.
    pub fn of_stream(l: &SessionLayout, pos: usize) -> Option<Self> {
        let s = l.streams.get(pos)?;
        let session_record_bytes = l.streams.iter().map(|t| t.record_bytes()).fold(0, u64::saturating_add);
        let later_frames = l.streams.get(pos + 1..).unwrap_or_default().iter().map(|t| t.frames).fold(0, u64::saturating_add);
        Self::new(s.frames, s.payload_bytes, session_record_bytes, later_frames)
    }

    /// For a stream of `frames` frames holding `payload_bytes`, in a session whose frame records
    /// take `session_record_bytes` and whose streams after this one hold `later_frames`
    /// (`None` without frames).
    pub fn new(frames: u64, payload_bytes: u64, session_record_bytes: u64, later_frames: u64) -> Option<Self> {
        let overhead = crate::format::record::FRAME_OVERHEAD as u64;
        let per_frame = |bytes: u128| u64::try_from((bytes * 256).checked_div(u128::from(frames))?).ok();
        Some(FramePlace {
            stride_q8: per_frame(u128::from(session_record_bytes))?,
            later_q8: per_frame(u128::from(later_frames) * ENTRY_LEN as u128)?,
            record_len: overhead.saturating_add(payload_bytes.checked_div(frames)?),
        })
    }
}

impl StreamIndex {
    pub fn new(id: u16, name: &str, encoding: &str, runs: RunTable, last_ts: i64) -> Self {
        let len = runs.entries();
        StreamIndex { id, name: name.into(), encoding: encoding.into(), runs, last_ts, len, place: None }
    }

    /// The same stream over other runs (its frames as found by a scan of the session).
    fn with_runs(&self, runs: Arc<[Run]>, last_ts: i64) -> Self {
        StreamIndex { place: self.place, ..StreamIndex::new(self.id, &self.name, &self.encoding, RunTable::built(runs), last_ts) }
    }
}

/// A position in a stream's index: run `r`, entry `j` within it. `r == runs.len()` is the end.
type Cursor = (usize, usize);

/// Where the `j`-th of `count` frames of an interval most likely starts: the interval's records
/// begin at `start` and its index entries at `entries`. With the stream's place among the
/// session's frames, `j` strides from the start (never past the entries); without it `j / count`
/// of the way, which also counts the Checkpoint's fields before the entries (hundreds of bytes:
/// several cache lines off).
fn predict_frame(start: u64, entries: u64, count: u64, j: u64, place: Option<FramePlace>) -> u64 {
    match place {
        Some(p) => {
            let q8 = (u128::from(count) * u128::from(p.later_q8)).saturating_add(u128::from(j) * u128::from(p.stride_q8));
            let ahead = u64::try_from(q8 >> 8).unwrap_or(u64::MAX);
            start.saturating_add(ahead).min(entries.saturating_sub(1).max(start))
        }
        None => start.saturating_add(entries.saturating_sub(start).saturating_mul(j) / count.max(1)),
    }
}

/// One or several streams of a session, in timestamp order. All lookups binary-search the
/// index in place: O(log n), no decoding, no allocation. Cheap to clone.
///
/// With several streams, frames are merged by (timestamp, arrival order); lookups consider
/// every selected stream.
#[derive(Clone)]
pub struct Replay {
    session: Session,
    streams: Vec<StreamIndex>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay").field("streams", &self.stream_names()).field("len", &self.len()).finish()
    }
}

impl Replay {
    pub(crate) fn new(session: Session, streams: Vec<StreamIndex>) -> Self {
        Replay { session, streams }
    }

    /// The session the frames belong to.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// Names of the streams replayed.
    pub fn stream_names(&self) -> Vec<&str> {
        self.streams.iter().map(|s| &*s.name).collect()
    }

    /// Encoding of the first stream replayed.
    pub fn encoding(&self) -> &str {
        self.streams.first().map_or("", |s| &*s.encoding)
    }

    /// Number of frames.
    pub fn len(&self) -> u64 {
        self.streams.iter().map(|s| s.len).sum()
    }

    /// Whether there are no frames.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether an index entry names its frame: the record at its offset frames as a Frame of
    /// this stream with this timestamp. Only the record's header is read; the frame's CRC is
    /// checked when it is loaded. Entries are hints (spec §7): a lookup trusts the cursor it
    /// found once the entries on both sides of it name their frames, because genuine entries
    /// at adjacent positions of a sorted index bracket exactly one answer.
    #[inline]
    fn names_frame(&self, s: &StreamIndex, e: IndexEntry) -> bool {
        // Framing only (bounds, length, kind): no CRC, which the load checks.
        let file = self.session.file.bytes();
        frame_header_within(file, e.offset, file.len() as u64).is_some_and(|(f, _)| f.ts == e.ts && f.stream == s.id)
    }

    /// Whether the entries on both sides of cursor `c` name their frames.
    #[inline]
    fn bracket_holds(&self, s: &StreamIndex, c: Cursor) -> bool {
        let names = |c: Option<Cursor>| c.and_then(|c| self.at(s, c)).is_none_or(|e| self.names_frame(s, e));
        names(Some(c)) && names(self.prev(s, c))
    }

    /// The stream over the runs found by scanning its session, when the checkpoint records
    /// behind its index fail their CRC (checked once per stream, only after an entry did not
    /// name its frame); `None` when the index holds (the frame itself is then damaged).
    fn fallback(&self, s: &StreamIndex) -> Option<StreamIndex> {
        let (file, session, pos) = (&self.session.file, self.session.index, usize::from(s.id));
        if file.index_trusted(session, pos) {
            return None;
        }
        let runs = file.scanned(session, pos);
        let last_ts = runs.last().map(|r| self.run_entries(r)).and_then(|e| e.len().checked_sub(1).map(|i| e.get(i).ts));
        let last_ts = last_ts.unwrap_or(s.last_ts);
        Some(s.with_runs(runs, last_ts))
    }

    /// `bound(s)`, checked: when an entry beside the cursor does not name its frame and the
    /// stream's index fails its checks, the same bound over the stream's scanned frames.
    #[inline]
    fn checked_bound<'s>(&self, s: &'s StreamIndex, bound: impl Fn(&StreamIndex) -> Cursor) -> (Cow<'s, StreamIndex>, Cursor) {
        let c = bound(s);
        if self.bracket_holds(s, c) {
            return (Cow::Borrowed(s), c);
        }
        match self.fallback(s) {
            Some(f) => {
                let c = bound(&f);
                (Cow::Owned(f), c)
            }
            None => (Cow::Borrowed(s), c),
        }
    }

    /// The first (`last == false`) or last entry of a stream, checked against its frame.
    fn checked_end(&self, s: &StreamIndex, last: bool) -> Option<IndexEntry> {
        let end = |s: &StreamIndex| if last { s.len.checked_sub(1).and_then(|i| self.entry(s, i)) } else { self.entry(s, 0) };
        if s.len == 0 {
            return None;
        }
        // A damaged directory chunk may not place the end: the scanned frames do.
        let e = end(s);
        if e.is_some_and(|e| self.names_frame(s, e)) {
            return e;
        }
        match self.fallback(s) {
            Some(f) => end(&f),
            None => e,
        }
    }

    #[inline]
    fn run_entries<'a>(&'a self, run: &'a Run) -> EntrySlice<'a> {
        let bytes: &[u8] = match &run.loc {
            RunLoc::File(o) => {
                let start = *o as usize;
                let end = start.saturating_add((run.count as usize).saturating_mul(16));
                self.session.file.bytes().get(start..end).unwrap_or(&[])
            }
            RunLoc::Owned(b) => b,
        };
        EntrySlice::new(bytes)
    }

    /// Run `r` of a stream, `None` past its end.
    #[inline]
    fn run<'a>(&'a self, s: &'a StreamIndex, r: usize) -> Option<&'a Run> {
        s.runs.get(self.session.file.bytes(), r)
    }

    /// The entry under a cursor, if it is not the end.
    #[inline]
    fn at(&self, s: &StreamIndex, c: Cursor) -> Option<IndexEntry> {
        let run = self.run(s, c.0)?;
        let e = self.run_entries(run);
        (c.1 < e.len()).then(|| e.get(c.1))
    }

    /// The offset of the last frame that the run under cursor `c` names.
    #[inline]
    fn run_last_offset(&self, s: &StreamIndex, c: Cursor) -> Option<u64> {
        let e = self.run_entries(self.run(s, c.0)?);
        e.len().checked_sub(1).map(|i| e.get(i).offset)
    }

    /// The cursor after `c`.
    #[inline]
    fn next(&self, s: &StreamIndex, c: Cursor) -> Cursor {
        match self.run(s, c.0) {
            Some(run) if (c.1 as u64) + 1 < run.count => (c.0, c.1 + 1),
            Some(_) => (c.0 + 1, 0),
            None => c,
        }
    }

    /// The cursor before `c`, `None` at the start.
    #[inline]
    fn prev(&self, s: &StreamIndex, c: Cursor) -> Option<Cursor> {
        if c.1 > 0 {
            return Some((c.0, c.1 - 1));
        }
        let r = c.0.checked_sub(1)?;
        Some((r, usize::try_from(self.run(s, r)?.count.checked_sub(1)?).ok()?))
    }

    /// Normalises a cursor past the end of a run to the start of the next.
    #[inline]
    fn fix(&self, s: &StreamIndex, r: usize, j: usize) -> Cursor {
        if self.run(s, r).is_some_and(|run| (j as u64) < run.count) {
            (r, j)
        } else {
            (r + 1, 0)
        }
    }

    /// Where `t` would fall in run `r`, interpolating between the run's first timestamp and the
    /// next run's (or the stream's last).
    #[inline]
    fn guess(&self, s: &StreamIndex, r: usize, run: &Run, t: i64) -> usize {
        let lo = run.first_ts;
        let hi = self.run(s, r + 1).map_or(s.last_ts, |next| next.first_ts);
        let n = run.count as f64;
        if hi <= lo || t <= lo {
            return 0;
        }
        let frac = (t as f64 - lo as f64) / (hi as f64 - lo as f64);
        (frac * n).clamp(0.0, n - 1.0) as usize
    }

    /// Cursor of the first entry with timestamp ≥ t, for a lookup that then reads the frame.
    #[inline]
    fn lower(&self, s: &StreamIndex, t: i64) -> Cursor {
        self.lower_with(s, t, true)
    }

    /// Cursor of the first entry with timestamp ≥ t; `for_frame` starts fetching the frame's
    /// page while the index is searched (a counting query such as `position_of` does not).
    #[inline]
    fn lower_with(&self, s: &StreamIndex, t: i64, for_frame: bool) -> Cursor {
        match s.runs.count_first(self.session.file.bytes(), t, false).checked_sub(1) {
            None => (0, 0),
            Some(r) => match self.lower_in_run(s, r, t, for_frame) {
                Some((_, j)) => self.fix(s, r, j),
                None => (r, 0),
            },
        }
    }

    /// The entries of run `r` (the last whose first timestamp is below `t`) and the position
    /// in them of the first at or after `t` (their length when there is none); `for_frame`
    /// as in [`Replay::lower_with`]. `None` when the run is missing. Shared by the cursor
    /// search and the one-run lookup, so both search a run the same way.
    #[inline]
    fn lower_in_run<'a>(&'a self, s: &'a StreamIndex, r: usize, t: i64, for_frame: bool) -> Option<(EntrySlice<'a>, usize)> {
        let run = self.run(s, r)?;
        let guess = self.guess(s, r, run, t);
        if for_frame {
            self.touch_predicted_frame(s, r, run, guess);
        }
        let entries = self.run_entries(run);
        let j = entries.partition_from(guess, |x| x < t);
        Some((entries, j))
    }

    /// Reads one byte where entry `j` of run `r` most likely points, without waiting for the
    /// index: a run's frames lie between the previous run's index block and its own, so the
    /// frame's page is fetched (TLB walk and cache miss) while the index is searched, instead
    /// of after it. A plain load, so a wrong guess costs only memory bandwidth.
    #[inline]
    fn touch_predicted_frame(&self, s: &StreamIndex, r: usize, run: &Run, j: usize) {
        let Some(predicted) = self.predicted_frame(s, r, run, j) else { return };
        let bytes = self.session.file.bytes();
        std::hint::black_box(bytes.get(predicted as usize).copied());
        // A record of known length may run into the next cache line: its last byte as well.
        if let Some(p) = s.place {
            std::hint::black_box(bytes.get(predicted.saturating_add(p.record_len.saturating_sub(1)) as usize).copied());
        }
    }

    /// Where entry `j` of run `r` most likely points (`None` for a first run or one in memory).
    #[inline]
    fn predicted_frame(&self, s: &StreamIndex, r: usize, run: &Run, j: usize) -> Option<u64> {
        let before = self.run(s, r.checked_sub(1)?)?;
        let (RunLoc::File(end), RunLoc::File(prev)) = (&run.loc, &before.loc) else { return None };
        let start = prev.saturating_add(before.count.saturating_mul(ENTRY_LEN as u64));
        Some(predict_frame(start, *end, run.count, j as u64, s.place))
    }

    /// Cursor of the first entry with timestamp > t.
    #[inline]
    fn upper(&self, s: &StreamIndex, t: i64) -> Cursor {
        match s.runs.count_first(self.session.file.bytes(), t, true).checked_sub(1) {
            None => (0, 0),
            Some(r) => match self.run(s, r) {
                Some(run) => self.fix(s, r, self.run_entries(run).partition_from(self.guess(s, r, run, t), |x| x <= t)),
                None => (r, 0),
            },
        }
    }

    /// Cursor of global position `i` (`None` past the end).
    fn cursor_of(&self, s: &StreamIndex, i: u64) -> Option<Cursor> {
        let r = s.runs.run_at_position(self.session.file.bytes(), i)?;
        Some((r, (i - self.run(s, r)?.cum_start) as usize))
    }

    /// Global position of a cursor.
    fn position(&self, s: &StreamIndex, c: Cursor) -> u64 {
        self.run(s, c.0).map_or(s.len, |run| run.cum_start + c.1 as u64)
    }

    /// Entry at global position `i`.
    fn entry(&self, s: &StreamIndex, i: u64) -> Option<IndexEntry> {
        self.at(s, self.cursor_of(s, i)?)
    }

    fn load_entry(&self, s: &StreamIndex, e: IndexEntry) -> Result<Frame> {
        self.load_walked(s, e, &mut IntervalCheck::off())
    }

    /// The frame of entry `e` reached by a walk, its bytes vouched for by `intervals` or its
    /// own CRC.
    #[inline]
    fn load_walked(&self, s: &StreamIndex, e: IndexEntry, intervals: &mut IntervalCheck) -> Result<Frame> {
        let l = self.session.layout();
        Frame::load(&self.session.file, self.session.index, l.salt_state, s.id, e, intervals)
    }

    /// Frame at position `i` in timestamp order. O(log n) for one stream; with several streams
    /// O(i) (a merge walk).
    pub fn load(&self, i: u64) -> Result<Frame> {
        let len = self.len();
        if i >= len {
            return Err(Error::IndexOutOfRange { index: i, len });
        }
        if let [s] = self.streams.as_slice() {
            // A damaged directory chunk may not place position i: the scanned frames do.
            let loaded = self.entry(s, i).ok_or(Error::IndexOutOfRange { index: i, len }).and_then(|e| self.load_entry(s, e));
            return match loaded {
                Err(err) => match self.fallback(s) {
                    Some(f) => self.load_entry(&f, self.entry(&f, i).ok_or(Error::IndexOutOfRange { index: i, len: f.len })?),
                    None => Err(err),
                },
                ok => ok,
            };
        }
        let mut m = MergeState::new(self, |_, _| (0, 0));
        for _ in 0..i {
            m.next_loaded(self, None, |_, _, _| Ok(()));
        }
        m.next_loaded(self, None, |s, e, _| self.load_entry(s, e)).unwrap_or(Err(Error::IndexOutOfRange { index: i, len }))
    }

    /// The first frame in timestamp order.
    pub fn first(&self) -> Option<Frame> {
        self.load(0).ok()
    }

    /// The last frame in timestamp order.
    pub fn last(&self) -> Option<Frame> {
        self.len().checked_sub(1).and_then(|i| self.load(i).ok())
    }

    /// Smallest timestamp.
    pub fn first_timestamp(&self) -> Option<Timestamp> {
        self.streams.iter().filter_map(|s| self.checked_end(s, false)).map(|e| e.ts).min().map(Timestamp::from_nanos)
    }

    /// Largest timestamp.
    pub fn last_timestamp(&self) -> Option<Timestamp> {
        self.streams.iter().filter_map(|s| self.checked_end(s, true)).map(|e| e.ts).max().map(Timestamp::from_nanos)
    }

    /// `last_timestamp - first_timestamp` (zero when empty).
    pub fn duration(&self) -> Duration {
        match (self.first_timestamp(), self.last_timestamp()) {
            (Some(a), Some(b)) => b - a,
            _ => Duration::ZERO,
        }
    }

    /// [`Replay::closest_in`] when the entries it needs (the first at or after `t`, the one
    /// before, and the one before that for the tie check) lie in one run, both candidates name
    /// their frames and their timestamps differ from the one before: one run lookup and one
    /// entry slice instead of a cursor walk. `None` sends the lookup the general way, which
    /// gives the same answer in these cases and handles the rest (run ends, equal timestamps,
    /// entries that do not name their frames).
    #[inline]
    fn closest_in_run(&self, s: &StreamIndex, t: i64) -> Option<(u64, IndexEntry)> {
        let r = s.runs.count_first(self.session.file.bytes(), t, false).checked_sub(1)?;
        let (entries, j) = self.lower_in_run(s, r, t, true)?;
        if j < 2 || j >= entries.len() {
            return None;
        }
        let (after, before) = (entries.get(j), entries.get(j - 1));
        if entries.ts(j - 2) == before.ts || !self.names_frame(s, after) || !self.names_frame(s, before) {
            return None;
        }
        Some(if t.abs_diff(before.ts) > after.ts.abs_diff(t) { (after.ts.abs_diff(t), after) } else { (t.abs_diff(before.ts), before) })
    }

    /// The entry closest to `t` in one stream: (distance, entry); ties go to the earlier.
    #[inline]
    fn closest_in(&self, s: &StreamIndex, t: i64) -> Option<(u64, IndexEntry)> {
        if let Some(found) = self.closest_in_run(s, t) {
            return Some(found);
        }
        let (s, c) = self.checked_bound(s, |s| self.lower(s, t));
        let s = &*s;
        let after = self.at(s, c);
        let before_c = self.prev(s, c);
        let before = before_c.and_then(|b| self.at(s, b));
        match (before, after) {
            (Some(b), Some(a)) if t.abs_diff(b.ts) > a.ts.abs_diff(t) => Some((a.ts.abs_diff(t), a)),
            (Some(b), _) => {
                // Of equal timestamps, the earliest arrival: search again only if there are several.
                let dup = before_c.and_then(|bc| self.prev(s, bc)).and_then(|p| self.at(s, p)).is_some_and(|p| p.ts == b.ts);
                let first = if dup {
                    let (s, c) = self.checked_bound(s, |s| self.lower(s, b.ts));
                    self.at(&s, c).unwrap_or(b)
                } else {
                    b
                };
                Some((t.abs_diff(b.ts), first))
            }
            (None, Some(a)) => Some((a.ts.abs_diff(t), a)),
            (None, None) => None,
        }
    }

    /// Picks the best candidate over streams by `better`, and loads it.
    fn pick(&self, candidates: impl Iterator<Item = (usize, u64, IndexEntry)>, tolerance: Option<Duration>) -> Result<Option<Frame>> {
        let best = candidates.min_by_key(|&(_, d, e)| (d, e.ts, e.offset));
        match best {
            Some((si, d, e)) if tolerance.is_none_or(|tol| d <= duration_nanos(tol) as u64) => {
                self.load_entry(&self.streams[si], e).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The frame whose timestamp is closest to `t`, or `None` when there is none within
    /// `tolerance`. Ties go to the earlier frame. A damaged frame gives `None`; use
    /// [`Replay::try_find_closest`] to see the error.
    pub fn find_closest(&self, t: Timestamp, tolerance: Option<Duration>) -> Option<Frame> {
        self.try_find_closest(t, tolerance).ok().flatten()
    }

    /// Like [`Replay::find_closest`], reporting a damaged frame as an error.
    pub fn try_find_closest(&self, t: Timestamp, tolerance: Option<Duration>) -> Result<Option<Frame>> {
        let t = t.as_nanos();
        self.pick(self.streams.iter().enumerate().filter_map(|(si, s)| self.closest_in(s, t).map(|(d, e)| (si, d, e))), tolerance)
    }

    /// The frame closest to `first_timestamp + offset` (dimos' `find_closest_seek`).
    pub fn find_closest_seek(&self, offset: Duration, tolerance: Option<Duration>) -> Option<Frame> {
        let start = self.first_timestamp()?;
        self.find_closest(start + offset, tolerance)
    }

    /// The latest frame at or before `t` (of equal timestamps, the last to arrive).
    pub fn find_before(&self, t: Timestamp) -> Option<Frame> {
        self.try_find_before(t).ok().flatten()
    }

    /// Like [`Replay::find_before`], reporting a damaged frame as an error.
    pub fn try_find_before(&self, t: Timestamp) -> Result<Option<Frame>> {
        let t = t.as_nanos();
        let c = self.streams.iter().enumerate().filter_map(|(si, s)| {
            let (s, c) = self.checked_bound(s, |s| self.upper(s, t));
            self.at(&s, self.prev(&s, c)?).map(|e| (si, e))
        });
        // Latest timestamp wins, then latest arrival.
        match c.max_by_key(|&(_, e)| (e.ts, e.offset)) {
            Some((si, e)) => self.load_entry(&self.streams[si], e).map(Some),
            None => Ok(None),
        }
    }

    /// The earliest frame at or after `t` (of equal timestamps, the first to arrive).
    pub fn find_after(&self, t: Timestamp) -> Option<Frame> {
        self.try_find_after(t).ok().flatten()
    }

    /// Like [`Replay::find_after`], reporting a damaged frame as an error.
    pub fn try_find_after(&self, t: Timestamp) -> Result<Option<Frame>> {
        let t = t.as_nanos();
        let c = self.streams.iter().enumerate().filter_map(|(si, s)| {
            let (s, c) = self.checked_bound(s, |s| self.lower(s, t));
            self.at(&s, c).map(|e| (si, t.abs_diff(e.ts), e))
        });
        self.pick(c, None)
    }

    /// The timestamp of every frame, in order, from the index alone (no frame record is
    /// touched): for densities and gap searches over millions of frames.
    pub fn timestamps(&self) -> Vec<i64> {
        let mut out = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
        let file = &self.session.file;
        for s in &self.streams {
            // Every entry is used here, none checked against its frame: the index must hold.
            let runs = file.checked_runs(self.session.index, usize::from(s.id)).unwrap_or_else(|_| s.runs.to_runs(file.bytes()));
            for run in runs.iter() {
                let e = self.run_entries(run);
                out.extend((0..e.len()).map(|i| e.get(i).ts));
            }
        }
        if self.streams.len() > 1 {
            out.sort_unstable();
        }
        out
    }

    /// Number of frames with timestamp < `t` (the position `t` would take).
    pub fn position_of(&self, t: Timestamp) -> u64 {
        self.streams
            .iter()
            .map(|s| {
                let (s, c) = self.checked_bound(s, |s| self.lower_with(s, t.as_nanos(), false));
                self.position(&s, c)
            })
            .sum()
    }

    /// Every frame in timestamp order (ties in arrival order). Each item is a `Result`: a
    /// damaged frame gives an error naming its offset and iteration goes on with the next one
    /// (or use [`Frames::skip_damaged`]).
    pub fn iterate(&self) -> Frames {
        Frames { replay: self.clone(), merge: MergeState::new(self, |_, _| (0, 0)), end: None }
    }

    /// Frames with timestamps in `[from, to)`, in order.
    pub fn iterate_range(&self, from: Timestamp, to: Option<Timestamp>) -> Frames {
        let from = from.as_nanos();
        Frames { replay: self.clone(), merge: MergeState::new(self, |r, s| r.lower(s, from)), end: to.map(|t| t.as_nanos()) }
    }

    /// Every frame in timestamp order, borrowed from this replay: like [`Replay::iterate`]
    /// (same order, same checks, a damaged frame is an error and the walk goes on) without a
    /// reference count per frame, the fastest way through a file. See [`FrameRef`].
    pub fn scan(&self) -> Scan<'_> {
        Scan { replay: self, merge: MergeState::new(self, |_, _| (0, 0)), end: None }
    }

    /// Frames with timestamps in `[from, to)`, borrowed (see [`Replay::scan`]).
    pub fn scan_range(&self, from: Timestamp, to: Option<Timestamp>) -> Scan<'_> {
        let from = from.as_nanos();
        Scan { replay: self, merge: MergeState::new(self, |r, s| r.lower(s, from)), end: to.map(|t| t.as_nanos()) }
    }

    /// Every frame with its timestamp (dimos' `iterate_ts`).
    pub fn iterate_ts(&self) -> impl Iterator<Item = Result<(Timestamp, Frame)>> {
        self.iterate().map(|f| f.map(|f| (f.timestamp(), f)))
    }
}

/// Cursor state of a k-way merge of streams by (timestamp, offset). With one stream the heap
/// holds one element and the merge is a plain walk. It holds its own copy of the streams'
/// indexes: a stream whose index turns out damaged mid-walk is switched to its scanned frames.
#[derive(Clone)]
struct MergeState {
    heap: BinaryHeap<Reverse<(i64, u64, usize)>>,
    pos: Vec<Cursor>,
    streams: Vec<StreamIndex>,
    /// The last entry of each stream handed out and loaded: where a switched stream resumes.
    last: Vec<Option<IndexEntry>>,
    switched: Vec<bool>,
    /// The interval CRCs that vouch for frames read in file order.
    intervals: IntervalCheck,
    /// A one-stream walk's current run, when its entries lie in the file: (run, first entry's
    /// offset, entries readable, the run's count). Saves finding the run again for each frame.
    walk_run: Option<(usize, usize, usize, u64)>,
}

impl MergeState {
    fn new(r: &Replay, start: impl Fn(&Replay, &StreamIndex) -> Cursor) -> Self {
        let n = r.streams.len();
        let mut m = MergeState {
            heap: BinaryHeap::with_capacity(n),
            pos: Vec::with_capacity(n),
            streams: Vec::with_capacity(n),
            last: vec![None; n],
            switched: Vec::with_capacity(n),
            intervals: IntervalCheck::for_walk(r.session.layout(), r.streams.iter().map(|s| usize::from(s.id))),
            walk_run: None,
        };
        for s in &r.streams {
            let (s, c) = r.checked_bound(s, |s| start(r, s));
            m.switched.push(matches!(s, Cow::Owned(_)));
            m.pos.push(c);
            m.streams.push(s.into_owned());
        }
        if n > 1 {
            for si in 0..n {
                if let Some(e) = r.at(&m.streams[si], m.pos[si]) {
                    m.heap.push(Reverse((e.ts, e.offset, si)));
                }
            }
        }
        m
    }

    /// The next frame before `end`, loaded by `load`; past `end`, the walk stays exhausted.
    /// When an entry does not lead to its frame (or claims to be past `end`) and the
    /// stream's index fails its checks, the stream is switched to its scanned frames and the
    /// walk goes on after the last frame it gave.
    #[inline]
    fn next_loaded<T>(
        &mut self,
        r: &Replay,
        end: Option<i64>,
        load: impl Fn(&StreamIndex, IndexEntry, &mut IntervalCheck) -> Result<T>,
    ) -> Option<Result<T>> {
        loop {
            let (si, e, c) = self.next_entry(r)?;
            if self.intervals.wants(e.offset) {
                let hint = r.run_last_offset(&self.streams[si], c).unwrap_or(e.offset);
                self.intervals.check_interval_of(&r.session.file, e.offset, hint);
            }
            if end.is_some_and(|end| e.ts >= end) {
                if !r.names_frame(&self.streams[si], e) && self.switch(r, si, self.last[si]) {
                    continue;
                }
                self.heap.clear();
                self.pos.iter_mut().for_each(|c| *c = (usize::MAX, 0));
                return None;
            }
            match load(&self.streams[si], e, &mut self.intervals) {
                Ok(x) => {
                    self.last[si] = Some(e);
                    return Some(Ok(x));
                }
                Err(err) => {
                    if !self.switch(r, si, self.last[si]) {
                        self.last[si] = Some(e);
                        return Some(Err(err));
                    }
                }
            }
        }
    }

    /// Switches stream `si` to its scanned frames, resuming after entry `after`; false when
    /// its index holds (or it was switched already).
    #[cold]
    fn switch(&mut self, r: &Replay, si: usize, after: Option<IndexEntry>) -> bool {
        if self.switched[si] {
            return false;
        }
        self.switched[si] = true;
        self.walk_run = None;
        let Some(f) = r.fallback(&self.streams[si]) else { return false };
        let mut c = match after {
            Some(l) => r.lower(&f, l.ts),
            None => (0, 0),
        };
        while let (Some(e), Some(l)) = (r.at(&f, c), after) {
            if (e.ts, e.offset) > (l.ts, l.offset) {
                break;
            }
            c = r.next(&f, c);
        }
        self.streams[si] = f;
        self.pos[si] = c;
        if self.streams.len() > 1 {
            // The stream's popped entry left the heap; its new next entry takes its place.
            self.heap.retain(|Reverse((_, _, s))| *s != si);
            if let Some(e) = r.at(&self.streams[si], c) {
                self.heap.push(Reverse((e.ts, e.offset, si)));
            }
        }
        true
    }

    /// The next frame of a one-stream walk when its entry lies in the walk's current run and
    /// it is the next record of the matched interval the walk is in: a long walk's common
    /// step, without the general path's lookups (which give the same frame here). `None`
    /// sends the step the general way ([`MergeState::next_loaded`]); nothing changes then.
    #[inline]
    fn next_at_boundary(&mut self, bytes: &[u8], end: Option<i64>) -> Option<(u16, IndexEntry, Checked)> {
        let ([s], [c]) = (self.streams.as_slice(), self.pos.as_mut_slice()) else { return None };
        let (run, start, readable, count) = self.walk_run?;
        let at = *c;
        if at.0 != run || at.1 >= readable {
            return None;
        }
        let e = IndexEntry::decode(bytes.get(start + at.1 * ENTRY_LEN..start + (at.1 + 1) * ENTRY_LEN)?);
        if end.is_some_and(|end| e.ts >= end) {
            return None;
        }
        let checked = check_at_boundary(bytes, s.id, e, &mut self.intervals)?;
        *c = if (at.1 as u64) + 1 < count { (run, at.1 + 1) } else { (run + 1, 0) };
        self.last[0] = Some(e);
        Some((s.id, e, checked))
    }

    /// The next entry in the merged order: its stream, the entry and its cursor.
    #[inline]
    fn next_entry(&mut self, r: &Replay) -> Option<(usize, IndexEntry, Cursor)> {
        if let ([s], [c]) = (self.streams.as_slice(), self.pos.as_mut_slice()) {
            // One stream: a plain walk, no heap.
            let at = *c;
            if let Some((run, start, _, count)) = self.walk_run.filter(|w| w.0 == at.0 && at.1 < w.2) {
                let bytes = r.session.file.bytes();
                if let Some(b) = bytes.get(start + at.1 * ENTRY_LEN..start + (at.1 + 1) * ENTRY_LEN) {
                    *c = if (at.1 as u64) + 1 < count { (run, at.1 + 1) } else { (run + 1, 0) };
                    return Some((0, IndexEntry::decode(b), at));
                }
            }
            let e = r.at(s, at)?;
            self.walk_run = r.run(s, at.0).and_then(|run| match run.loc {
                RunLoc::File(o) => Some((at.0, usize::try_from(o).ok()?, r.run_entries(run).len(), run.count)),
                RunLoc::Owned(_) => None,
            });
            *c = r.next(s, at);
            return Some((0, e, at));
        }
        let Reverse((ts, offset, si)) = self.heap.pop()?;
        let s = &self.streams[si];
        let at = self.pos[si];
        self.pos[si] = r.next(s, at);
        if let Some(e) = r.at(s, self.pos[si]) {
            // An entry enters the merge only once it names its frame: a damaged timestamp
            // would otherwise hold its stream back (or push it ahead) in the merged order.
            if r.names_frame(s, e) || !self.switch(r, si, Some(IndexEntry { ts, offset })) {
                self.heap.push(Reverse((e.ts, e.offset, si)));
            }
        }
        Some((si, IndexEntry { ts, offset }, at))
    }
}

/// Iterator over frames in timestamp order. Owns its replay (no borrow of the file).
pub struct Frames {
    replay: Replay,
    merge: MergeState,
    end: Option<i64>,
}

impl Iterator for Frames {
    type Item = Result<Frame>;
    #[inline]
    fn next(&mut self) -> Option<Result<Frame>> {
        let r = &self.replay;
        let file = &r.session.file;
        if let Some((stream_id, e, c)) = self.merge.next_at_boundary(file.bytes(), self.end) {
            return Some(Ok(Frame::checked(file, r.session.index, stream_id, e, c)));
        }
        self.merge.next_loaded(r, self.end, |s, e, intervals| r.load_walked(s, e, intervals))
    }
}

/// Iterator over frames borrowed from a [`Replay`], in timestamp order. See [`Replay::scan`].
pub struct Scan<'a> {
    replay: &'a Replay,
    merge: MergeState,
    end: Option<i64>,
}

impl<'a> Iterator for Scan<'a> {
    type Item = Result<FrameRef<'a>>;
    #[inline]
    fn next(&mut self) -> Option<Result<FrameRef<'a>>> {
        let r = self.replay;
        let file = &r.session.file;
        if let Some((stream_id, e, c)) = self.merge.next_at_boundary(file.bytes(), self.end) {
            return Some(Ok(FrameRef::checked(file, r.session.index, stream_id, e, c)));
        }
        let salt_state = r.session.layout().salt_state;
        self.merge
            .next_loaded(r, self.end, |s, e, intervals| FrameRef::load(&r.session.file, r.session.index, salt_state, s.id, e, intervals))
    }
}

impl Frames {
    /// The next frame borrowed from this iterator's replay, without a reference count: what
    /// [`Replay::scan`] gives, for an iterator that must own its replay (a batch reader handed
    /// to another thread or language).
    #[inline]
    pub fn next_ref(&mut self) -> Option<Result<FrameRef<'_>>> {
        let r = &self.replay;
        let file = &r.session.file;
        if let Some((stream_id, e, c)) = self.merge.next_at_boundary(file.bytes(), self.end) {
            return Some(Ok(FrameRef::checked(file, r.session.index, stream_id, e, c)));
        }
        let salt_state = r.session.layout().salt_state;
        self.merge
            .next_loaded(r, self.end, |s, e, intervals| FrameRef::load(&r.session.file, r.session.index, salt_state, s.id, e, intervals))
    }

    /// The replay this iterator walks.
    pub fn replay(&self) -> &Replay {
        &self.replay
    }

    /// Skips damaged frames instead of yielding their errors; the errors are kept and can be
    /// read from the adaptor ([`SkipDamaged::skipped`]).
    pub fn skip_damaged(self) -> SkipDamaged {
        SkipDamaged { inner: self, skipped: Vec::new() }
    }
}

/// Frames with damaged ones left out (and remembered).
pub struct SkipDamaged {
    inner: Frames,
    skipped: Vec<Error>,
}

impl SkipDamaged {
    /// The errors of the frames skipped so far.
    pub fn skipped(&self) -> &[Error] {
        &self.skipped
    }
}

impl Iterator for SkipDamaged {
    type Item = Frame;
    fn next(&mut self) -> Option<Frame> {
        loop {
            match self.inner.next()? {
                Ok(f) => return Some(f),
                Err(e) => self.skipped.push(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{RecFile, RecorderOptions, Timestamp};

    /// Writes `frames` frames of `payload` bytes to stream "a" and, with `every`, a frame of
    /// 3 bytes to stream "b" after every `every`-th, with a checkpoint every `interval` frames,
    /// and opens it.
    fn file(dir: &std::path::Path, frames: u64, payload: usize, every: Option<u64>, interval: u64) -> RecFile {
        let path = dir.join(format!("p{payload}-{every:?}-{interval}.rec"));
        let mut rec = RecorderOptions::new().checkpoint_every_frames(interval).create(&path).unwrap();
        let mut s = rec.start_session("s").unwrap();
        let a = s.add_stream("a", "raw").unwrap();
        let b = s.add_stream("b", "raw").unwrap();
        for i in 0..frames {
            s.write(a, Timestamp::from_nanos(i as i64 * 1000), &vec![i as u8; payload]).unwrap();
            if every.is_some_and(|e| i % e == 0) {
                s.write(b, Timestamp::from_nanos(i as i64 * 1000 + 1), &[1, 2, 3]).unwrap();
            }
        }
        s.finish().unwrap();
        RecFile::open(&path).unwrap()
    }

    /// Every entry of every run (the first aside), the prediction against where the entry points.
    fn predictions(f: &RecFile, stream: &str) -> Vec<(u64, u64, u64, u64)> {
        let r = f.last_session().unwrap().stream(stream).unwrap();
        let s = &r.streams[0];
        let bytes = r.session.file.bytes();
        let mut out = vec![];
        let mut i = 1;
        while let Some(run) = s.runs.get(bytes, i) {
            let entries = r.run_entries(run);
            for j in 0..entries.len() {
                let start = match &s.runs.get(bytes, i - 1).unwrap().loc {
                    super::RunLoc::File(o) => o + s.runs.get(bytes, i - 1).unwrap().count * 16,
                    super::RunLoc::Owned(_) => unreachable!(),
                };
                let end = match &run.loc {
                    super::RunLoc::File(o) => *o,
                    super::RunLoc::Owned(_) => unreachable!(),
                };
                out.push((r.predicted_frame(s, i, run, j).unwrap(), entries.get(j).offset, start, end));
            }
            i += 1;
        }
        out
    }

    #[test]
    fn a_stream_alone_predicts_every_frame_of_one_size_exactly() {
        let dir = tempfile::tempdir().unwrap();
        for payload in [0, 1, 8, 41, 100, 1000] {
            let f = file(dir.path(), 2000, payload, None, 100);
            let p = predictions(&f, "a");
            assert_eq!(p.len(), 2000 - 100, "payload {payload}");
            for (k, (predicted, actual, _, _)) in p.into_iter().enumerate() {
                assert_eq!(predicted, actual, "payload {payload}, entry {k} after the first run");
            }
        }
    }

    #[test]
    fn a_stream_among_others_evenly_predicts_within_a_record_of_each_frame() {
        let dir = tempfile::tempdir().unwrap();
        // One frame of the other stream (26 bytes) every ten: at most one more or fewer before
        // a frame than the stride counts.
        let f = file(dir.path(), 2000, 8, Some(10), 100);
        let p = predictions(&f, "a");
        // The first interval (100 frames of both streams) has no prediction.
        assert!((1800..2000).contains(&p.len()), "{}", p.len());
        for (k, (predicted, actual, start, end)) in p.into_iter().enumerate() {
            assert!((start..end).contains(&predicted) && (start..end).contains(&actual), "entry {k}: {predicted} {actual} {start}..{end}");
            assert!(predicted.abs_diff(actual) <= 32, "entry {k}: predicted {predicted}, at {actual}");
        }
        // Two streams taking turns: each frame within a record of where it is predicted, the
        // later stream's as well as the earlier's (whose interval begins past the later's entries).
        let f = file(dir.path(), 2000, 8, Some(1), 200);
        for stream in ["a", "b"] {
            let p = predictions(&f, stream);
            assert!((1800..2000).contains(&p.len()), "{stream}: {}", p.len());
            for (k, (predicted, actual, start, end)) in p.into_iter().enumerate() {
                assert!((start..end).contains(&predicted), "{stream} entry {k}: {predicted} {actual} {start}..{end}");
                assert!(predicted.abs_diff(actual) <= 32, "{stream} entry {k}: predicted {predicted}, at {actual}");
            }
        }
    }

    #[test]
    fn predictions_stay_inside_the_interval() {
        let place = super::FramePlace::new(10, 80, 1000, 0);
        assert_eq!(place, Some(super::FramePlace { stride_q8: 25_600, later_q8: 0, record_len: 31 }));
        assert_eq!(super::FramePlace::new(0, 0, 1000, 0), None);
        let later = super::FramePlace::new(10, 80, 1000, 5);
        assert_eq!(later.map(|p| p.later_q8), Some(8 * 256));
        // 10 entries of this stream, so about 5 of the later stream's (80 bytes) come first.
        assert_eq!(super::predict_frame(1000, 2000, 10, 0, later), 1080);
        assert_eq!(super::predict_frame(1000, 2000, 10, 2, later), 1280);
        // Far past the interval's end (a stride that overestimates): held at its last byte.
        assert_eq!(super::predict_frame(1000, 2000, 10, 9, place), 1900);
        assert_eq!(super::predict_frame(1000, 2000, 100, 99, place), 1999);
        assert_eq!(super::predict_frame(1000, 2000, u64::MAX, u64::MAX, place), 1999);
        // Counts from a damaged file, as large as they come: still inside.
        let huge = Some(super::FramePlace { stride_q8: u64::MAX, later_q8: u64::MAX, record_len: u64::MAX });
        assert_eq!(super::predict_frame(1000, 2000, u64::MAX, u64::MAX, huge), 1999);
        assert_eq!(super::predict_frame(u64::MAX - 1, u64::MAX, u64::MAX, u64::MAX, huge), u64::MAX - 1);
        assert_eq!(super::FramePlace::new(1, u64::MAX, u64::MAX, u64::MAX), None, "a stride past 2^64");
        // A stream table that gives one frame more payload than the session holds (damage).
        assert_eq!(super::FramePlace::new(1, u64::MAX, 10, 0).map(|p| p.record_len), Some(u64::MAX));
        assert_eq!(super::predict_frame(1000, 2000, 10, 5, None), 1500);
        assert_eq!(super::predict_frame(1000, 1000, 0, 5, None), 1000);
        assert_eq!(super::predict_frame(1000, 1000, 0, 5, place), 1000);
    }
}
