//! Realtime iteration: each frame is delivered at its due time, on one clock for all streams.

use super::stats::{Histogram, PlaybackStats};
use super::window::{Window, WindowFrame, WindowIter};
use crate::error::{Error, Result};
use crate::read::Replay;
use std::time::{Duration, Instant};

/// What to do when the consumer falls behind the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LatePolicy {
    /// Deliver late frames at once, keeping the original schedule (the default).
    #[default]
    CatchUp,
    /// When a frame is more than `after` late, shift the schedule so that it is on time.
    Reanchor {
        /// Lateness that triggers a shift.
        after: Duration,
    },
    /// Skip frames that are already late by more than [`RealtimeOptions::drop_after`].
    Drop,
}

/// Options of a realtime playback.
#[derive(Clone, Debug)]
pub struct RealtimeOptions {
    /// Playback speed: 2.0 plays twice as fast. Must be positive and finite.
    pub speed: f64,
    /// What to do with late frames.
    pub late: LatePolicy,
    /// With `LatePolicy::Drop`, frames later than this are skipped (default 10 ms).
    pub drop_after: Duration,
}

impl RealtimeOptions {
    /// Options with this speed, catching up when late.
    pub fn new(speed: f64) -> Self {
        RealtimeOptions { speed, late: LatePolicy::CatchUp, drop_after: Duration::from_millis(10) }
    }
    /// Sets the late policy.
    pub fn late(mut self, policy: LatePolicy) -> Self {
        self.late = policy;
        self
    }
    /// Sets the bound of `LatePolicy::Drop`.
    pub fn drop_after(mut self, bound: Duration) -> Self {
        self.drop_after = bound;
        self
    }
}

/// Checks a playback speed.
pub(crate) fn check_speed(speed: f64) -> Result<()> {
    if speed.is_finite() && speed > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!("playback speed must be positive and finite, got {speed}")))
    }
}

/// Sleeps until `due`, then spins for the last stretch: the OS wakes threads up to a
/// millisecond late, spinning is exact.
pub(crate) fn wait_until(due: Instant) {
    const SPIN: Duration = Duration::from_micros(300);
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > SPIN {
            std::thread::sleep(left - SPIN);
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The schedule: an anchor (wall instant, virtual time) and a speed. A frame's virtual time is
/// its offset from the window start plus one lap period per lap, so laps follow one another on
/// the same clock, without drift.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    pub anchor: Option<(Instant, i128)>,
    pub speed: f64,
    pub start_ns: i128,
    pub period_ns: i128,
}

impl Schedule {
    pub fn virtual_ns(&self, f: &WindowFrame) -> i128 {
        i128::from(f.frame.timestamp().as_nanos()) - self.start_ns + i128::from(f.lap) * self.period_ns
    }

    /// The due instant of a frame at virtual time `v` (anchoring at now if unanchored).
    pub fn due(&mut self, v: i128) -> Instant {
        let (at, v0) = *self.anchor.get_or_insert((Instant::now(), v));
        let wall = ((v - v0) as f64 / self.speed).max(0.0);
        at + Duration::from_nanos(wall.min(u64::MAX as f64) as u64)
    }
}

/// Iterator that blocks until each frame's due time. Get one from
/// [`Replay::iterate_realtime`] or [`Replay::iterate_realtime_window`].
pub struct Realtime {
    frames: WindowIter,
    schedule: Schedule,
    options: RealtimeOptions,
    hist: Histogram,
    delivered: u64,
    dropped: u64,
    reanchors: u64,
    /// A frame taken from the window whose due time has not come yet, with its virtual time.
    pending: Option<(WindowFrame, i128)>,
}

/// What [`Realtime::poll_next`] found.
#[derive(Debug)]
pub enum RealtimePoll {
    /// The next frame, at its due time (or late, as the policy allows), or a read error.
    Frame(Result<WindowFrame>),
    /// The next frame is not due within the wait given; ask again.
    Waiting,
    /// The window is exhausted.
    Done,
}

impl Realtime {
    pub(crate) fn new(replay: &Replay, window: &Window, options: RealtimeOptions) -> Result<Self> {
        check_speed(options.speed)?;
        let frames = replay.iterate_window(window);
        let start_ns = frames.start().map_or(0, |t| i128::from(t.as_nanos()));
        let period_ns = replay.lap_period(window).as_nanos() as i128;
        Ok(Realtime {
            frames,
            schedule: Schedule { anchor: None, speed: options.speed, start_ns, period_ns },
            options,
            hist: Histogram::default(),
            delivered: 0,
            dropped: 0,
            reanchors: 0,
            pending: None,
        })
    }

    /// Statistics so far (final once the iterator is exhausted).
    pub fn stats(&self) -> PlaybackStats {
        PlaybackStats::from_parts(self.delivered, self.dropped, self.reanchors, &self.hist)
    }
}

impl Realtime {
    /// Waits at most `max_wait` for the next frame: returns it once it is due, or
    /// [`RealtimePoll::Waiting`] when it is due later, so that a caller can check for a stop
    /// request or a signal between waits (the Python binding does) without losing the frame.
    pub fn poll_next(&mut self, max_wait: Duration) -> RealtimePoll {
        loop {
            let (f, v) = match self.pending.take() {
                Some(p) => p,
                None => match self.frames.next() {
                    None => return RealtimePoll::Done,
                    Some(Err(e)) => return RealtimePoll::Frame(Err(e)),
                    Some(Ok(f)) => {
                        let v = self.schedule.virtual_ns(&f);
                        (f, v)
                    }
                },
            };
            let due = self.schedule.due(v);
            let now = Instant::now();
            if now > due {
                let late = now - due;
                match self.options.late {
                    LatePolicy::Drop if late > self.options.drop_after => {
                        self.dropped += 1;
                        continue;
                    }
                    LatePolicy::Reanchor { after } if late > after => {
                        self.schedule.anchor = Some((now, v));
                        self.reanchors += 1;
                    }
                    _ => {}
                }
            } else if due - now > max_wait {
                std::thread::sleep(max_wait);
                self.pending = Some((f, v));
                return RealtimePoll::Waiting;
            } else {
                wait_until(due);
            }
            let late = Instant::now().saturating_duration_since(self.schedule.due(v));
            self.hist.record(late.as_nanos() as u64);
            self.delivered += 1;
            return RealtimePoll::Frame(Ok(f));
        }
    }
}

impl Iterator for Realtime {
    type Item = Result<WindowFrame>;
    fn next(&mut self) -> Option<Result<WindowFrame>> {
        loop {
            match self.poll_next(Duration::MAX) {
                RealtimePoll::Frame(f) => return Some(f),
                RealtimePoll::Done => return None,
                RealtimePoll::Waiting => {}
            }
        }
    }
}

impl Replay {
    /// Every frame at its original timing scaled by `speed` (2.0: twice as fast), catching up
    /// when the consumer falls behind. Speed must be positive and finite.
    pub fn iterate_realtime(&self, speed: f64) -> Result<Realtime> {
        Realtime::new(self, &Window::new(), RealtimeOptions::new(speed))
    }

    /// A window at realtime, with options (speed, late policy). Loops re-anchor at each lap.
    pub fn iterate_realtime_window(&self, window: &Window, options: RealtimeOptions) -> Result<Realtime> {
        Realtime::new(self, window, options)
    }
}
