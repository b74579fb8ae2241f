//! Windows of a replay: a start, a duration, and looping.

use crate::error::Result;
use crate::read::{Frame, Frames, Replay};
use crate::time::Timestamp;
use std::time::Duration;

/// A half-open time window `[start, start + duration)` of a replay, optionally looping.
///
/// The start is `from_timestamp` when given, else the replay's first timestamp, plus `seek`.
/// Positioning costs O(log n) through the index.
///
/// ```
/// use recfile::{Window, Timestamp};
/// use std::time::Duration;
/// let w = Window::new().seek(Duration::from_secs(10)).duration(Duration::from_secs(5)).looping(true);
/// # let _ = w;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    seek: Duration,
    from: Option<Timestamp>,
    duration: Option<Duration>,
    until: Option<Timestamp>,
    looping: bool,
}

impl Window {
    /// The whole replay, once.
    pub fn new() -> Self {
        Self::default()
    }
    /// Starts this long after the first timestamp (or after `from_timestamp`).
    pub fn seek(mut self, offset: Duration) -> Self {
        self.seek = offset;
        self
    }
    /// Starts at an absolute time.
    pub fn from_timestamp(mut self, t: Timestamp) -> Self {
        self.from = Some(t);
        self
    }
    /// Ends this long after the start (exclusive); default: the end of the replay.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = Some(d);
        self
    }
    /// Ends at an absolute time, inclusive (a frame at exactly `t` is in the window, as in SQL's
    /// `BETWEEN`); with `duration` too, the earlier end wins.
    pub fn until_timestamp(mut self, t: Timestamp) -> Self {
        self.until = Some(t);
        self
    }
    /// Replays the window again and again, each pass a new lap.
    pub fn looping(mut self, on: bool) -> Self {
        self.looping = on;
        self
    }
    /// Whether the window loops.
    pub fn is_looping(&self) -> bool {
        self.looping
    }

    /// The window's bounds in a replay: `(start, end)`, end exclusive (`None`: to the end).
    pub fn bounds(&self, replay: &Replay) -> Option<(Timestamp, Option<Timestamp>)> {
        let base = self.from.or_else(|| replay.first_timestamp())?;
        let start = base + self.seek;
        let by_duration = self.duration.map(|d| start + d);
        let by_until = self.until.map(|t| t + Duration::from_nanos(1));
        let end = match (by_duration, by_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Some((start, end))
    }
}

/// A frame of a window replay, with the lap it belongs to (0 for the first pass).
#[derive(Clone, Debug)]
pub struct WindowFrame {
    /// Pass number, from 0.
    pub lap: u64,
    /// The frame, with its original timestamp.
    pub frame: Frame,
}

impl std::ops::Deref for WindowFrame {
    type Target = Frame;
    fn deref(&self) -> &Frame {
        &self.frame
    }
}

/// Iterator over a window's frames, lap after lap when looping.
pub struct WindowIter {
    replay: Replay,
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    looping: bool,
    lap: u64,
    inner: Option<Frames>,
    yielded_this_lap: bool,
}

impl WindowIter {
    pub(crate) fn new(replay: &Replay, window: &Window) -> Self {
        let bounds = window.bounds(replay);
        let (start, end) = match bounds {
            Some((s, e)) => (Some(s), e),
            None => (None, None),
        };
        let inner = start.map(|s| replay.iterate_range(s, end));
        WindowIter { replay: replay.clone(), start, end, looping: window.looping, lap: 0, inner, yielded_this_lap: false }
    }

    /// The window's start, if the replay has frames.
    pub fn start(&self) -> Option<Timestamp> {
        self.start
    }

    /// The window's end (exclusive), if bounded.
    pub fn end(&self) -> Option<Timestamp> {
        self.end
    }

    /// The current lap.
    pub fn lap(&self) -> u64 {
        self.lap
    }

    /// Repositions inside the current lap to `start + offset` (O(log n)).
    pub fn seek(&mut self, offset: Duration) {
        if let Some(s) = self.start {
            self.inner = Some(self.replay.iterate_range(s + offset, self.end));
        }
    }

    /// Repositions to an absolute time inside the current lap.
    pub fn seek_to(&mut self, t: Timestamp) {
        if self.start.is_some() {
            self.inner = Some(self.replay.iterate_range(t, self.end));
        }
    }
}

impl Iterator for WindowIter {
    type Item = Result<WindowFrame>;
    fn next(&mut self) -> Option<Result<WindowFrame>> {
        loop {
            let inner = self.inner.as_mut()?;
            match inner.next() {
                Some(r) => {
                    self.yielded_this_lap = true;
                    return Some(r.map(|frame| WindowFrame { lap: self.lap, frame }));
                }
                None => {
                    // An empty lap ends a looping replay instead of spinning.
                    if !self.looping || !self.yielded_this_lap {
                        self.inner = None;
                        return None;
                    }
                    self.lap += 1;
                    self.yielded_this_lap = false;
                    self.inner = self.start.map(|s| self.replay.iterate_range(s, self.end));
                }
            }
        }
    }
}

impl Replay {
    /// Frames of a window, in timestamp order, lap after lap when it loops.
    pub fn iterate_window(&self, window: &Window) -> WindowIter {
        WindowIter::new(self, window)
    }

    /// Every frame with its offset from the replay's first timestamp (dimos' `iterate_duration`).
    pub fn iterate_duration(&self) -> impl Iterator<Item = Result<(Duration, Frame)>> {
        let first = self.first_timestamp().unwrap_or(Timestamp::EPOCH);
        self.iterate().map(move |r| r.map(|f| (f.timestamp() - first, f)))
    }

    /// The lap period of a window when it loops: its duration when given, else the span of its
    /// frames plus one average frame interval (so the last frame of a lap and the first of the
    /// next are not delivered at the same instant); at least 1 ms.
    pub fn lap_period(&self, window: &Window) -> Duration {
        let Some((start, end)) = window.bounds(self) else { return Duration::from_millis(1) };
        let period = match (window.duration, end) {
            (Some(d), _) => d,
            _ => {
                let last = self.last_timestamp().unwrap_or(start);
                let n = self.len().saturating_sub(self.position_of(start));
                let span = last - start;
                if n > 1 {
                    span + Duration::from_nanos((span.as_nanos() / u128::from(n - 1)) as u64)
                } else {
                    span
                }
            }
        };
        period.max(Duration::from_millis(1))
    }
}
