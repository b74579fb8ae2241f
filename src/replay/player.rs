//! A player: one dedicated thread delivers frames at their due times, controlled through a
//! handle (pause, resume, speed, seek, step, stop).

use super::realtime::{check_speed, LatePolicy, Schedule};
use super::stats::{Histogram, PlaybackStats};
use super::window::{Window, WindowFrame};
use crate::error::{Error, Result};
use crate::read::Replay;
use crate::threads::Helper;
use crate::time::Timestamp;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Options of a [`Player`].
#[derive(Clone, Debug)]
pub struct PlayerOptions {
    /// What to play.
    pub window: Window,
    /// Initial speed (positive, finite).
    pub speed: f64,
    /// What to do with late frames.
    pub late: LatePolicy,
    /// Bound of `LatePolicy::Drop`.
    pub drop_after: Duration,
    /// Start paused (use `step` or `resume`).
    pub start_paused: bool,
}

impl Default for PlayerOptions {
    fn default() -> Self {
        PlayerOptions {
            window: Window::new(),
            speed: 1.0,
            late: LatePolicy::CatchUp,
            drop_after: Duration::from_millis(10),
            start_paused: false,
        }
    }
}

impl PlayerOptions {
    /// Plays `window` at `speed`.
    pub fn new(window: Window, speed: f64) -> Self {
        PlayerOptions { window, speed, ..Default::default() }
    }
}

#[derive(Default)]
struct Control {
    paused: bool,
    speed: f64,
    seek: Option<Duration>,
    steps: u64,
    stop: bool,
    finished: bool,
    /// Bumped by every command, so a waiting player notices it.
    generation: u64,
    position: Option<Timestamp>,
    lap: u64,
    errors: Vec<String>,
    hist: Histogram,
    delivered: u64,
    dropped: u64,
    reanchors: u64,
}

struct Shared {
    control: Mutex<Control>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Spawns players.
pub struct Player;

impl Player {
    /// Plays `replay` on a dedicated thread, calling `callback` with each frame at its due time.
    pub fn spawn(replay: Replay, options: PlayerOptions, callback: impl FnMut(WindowFrame) + Send + 'static) -> Result<PlayerHandle> {
        Player::spawn_with_end(replay, options, callback, || {})
    }

    /// Like [`Player::spawn`]; `on_end` runs on the player thread when playback ends.
    pub(crate) fn spawn_with_end(
        replay: Replay,
        options: PlayerOptions,
        callback: impl FnMut(WindowFrame) + Send + 'static,
        on_end: impl FnOnce() + Send + 'static,
    ) -> Result<PlayerHandle> {
        check_speed(options.speed)?;
        let shared = Arc::new(Shared {
            control: Mutex::new(Control { paused: options.start_paused, speed: options.speed, ..Default::default() }),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let thread = Helper::spawn("recfile-player", move || {
            run(replay, options, s, callback);
            on_end();
        })
        .map_err(|e| Error::Io { path: None, source: e })?;
        Ok(PlayerHandle { shared, thread })
    }

    /// Like [`Player::spawn`], delivering frames into a bounded channel of `capacity` (a slow
    /// receiver makes the player late, handled by its late policy).
    pub fn spawn_channel(replay: Replay, options: PlayerOptions, capacity: usize) -> Result<(PlayerHandle, Receiver<WindowFrame>)> {
        let (tx, rx) = sync_channel(capacity.max(1));
        let handle = Player::spawn(replay, options, move |f| {
            let _ = tx.send(f);
        })?;
        Ok((handle, rx))
    }
}

/// Controls a running player. Dropping it stops the playback and joins the thread. In a process
/// forked from the one playing, the player thread does not exist: nothing plays there, and
/// waiting for or dropping the handle returns at once.
pub struct PlayerHandle {
    shared: Arc<Shared>,
    thread: Helper,
}

impl PlayerHandle {
    fn command(&self, f: impl FnOnce(&mut Control)) {
        let mut c = self.shared.lock();
        f(&mut c);
        c.generation += 1;
        self.shared.wake.notify_all();
    }

    /// Pauses delivery.
    pub fn pause(&self) {
        self.command(|c| c.paused = true);
    }
    /// Resumes delivery (the schedule restarts from the next frame).
    pub fn resume(&self) {
        self.command(|c| c.paused = false);
    }
    /// Whether paused.
    pub fn is_paused(&self) -> bool {
        self.shared.lock().paused
    }
    /// Changes the speed (positive, finite).
    pub fn set_speed(&self, speed: f64) -> Result<()> {
        check_speed(speed)?;
        self.command(|c| c.speed = speed);
        Ok(())
    }
    /// The current speed.
    pub fn speed(&self) -> f64 {
        self.shared.lock().speed
    }
    /// Jumps to this offset from the window start, within the current lap.
    pub fn seek(&self, offset: Duration) {
        self.command(|c| c.seek = Some(offset));
    }
    /// Delivers one frame now while paused.
    pub fn step(&self) {
        self.command(|c| c.steps += 1);
    }
    /// Stops playback.
    pub fn stop(&self) {
        self.command(|c| c.stop = true);
    }
    /// Waits for the playback to end (all frames played, or stopped).
    pub fn wait(mut self) -> PlaybackStats {
        self.thread.join();
        self.stats()
    }
    /// Whether the playback has ended.
    pub fn is_finished(&self) -> bool {
        self.shared.lock().finished
    }
    /// Timestamp and lap of the last frame delivered.
    pub fn position(&self) -> Option<(Timestamp, u64)> {
        let c = self.shared.lock();
        c.position.map(|p| (p, c.lap))
    }
    /// Damaged frames met so far (skipped), as error messages.
    pub fn errors(&self) -> Vec<String> {
        self.shared.lock().errors.clone()
    }
    /// Statistics so far.
    pub fn stats(&self) -> PlaybackStats {
        let c = self.shared.lock();
        PlaybackStats::from_parts(c.delivered, c.dropped, c.reanchors, &c.hist)
    }
}

impl Drop for PlayerHandle {
    fn drop(&mut self) {
        if !self.thread.forked() {
            self.stop();
        }
        self.thread.join();
    }
}

fn run(replay: Replay, options: PlayerOptions, shared: Arc<Shared>, mut callback: impl FnMut(WindowFrame)) {
    let mut frames = replay.iterate_window(&options.window);
    let mut schedule = Schedule {
        anchor: None,
        speed: options.speed,
        start_ns: frames.start().map_or(0, |t| i128::from(t.as_nanos())),
        period_ns: replay.lap_period(&options.window).as_nanos() as i128,
    };
    let mut pending: Option<WindowFrame> = None;
    let mut seen_generation = u64::MAX;
    loop {
        // Apply commands.
        let stepping;
        {
            let mut c = shared.lock();
            loop {
                if c.stop {
                    c.finished = true;
                    return;
                }
                if c.generation != seen_generation {
                    seen_generation = c.generation;
                    schedule.anchor = None;
                    schedule.speed = c.speed;
                    if let Some(d) = c.seek.take() {
                        frames.seek(d);
                        pending = None;
                    }
                }
                if !c.paused || c.steps > 0 {
                    break;
                }
                c = shared.wake.wait(c).unwrap_or_else(|e| e.into_inner());
            }
            stepping = c.paused && c.steps > 0;
            if stepping {
                c.steps -= 1;
            }
        }
        let f = match pending.take().map(Ok).or_else(|| frames.next()) {
            None => break,
            Some(Err(e)) => {
                shared.lock().errors.push(e.to_string());
                continue;
            }
            Some(Ok(f)) => f,
        };
        let v = schedule.virtual_ns(&f);
        let mut late = Duration::ZERO;
        if stepping {
            schedule.anchor = None;
        } else {
            let due = schedule.due(v);
            // Wait on the condvar (so commands interrupt), then spin the last stretch.
            let mut interrupted = false;
            {
                let mut c = shared.lock();
                loop {
                    if c.generation != seen_generation {
                        interrupted = true;
                        break;
                    }
                    let now = Instant::now();
                    if now + Duration::from_micros(300) >= due {
                        break;
                    }
                    c = shared.wake.wait_timeout(c, due - now - Duration::from_micros(300)).unwrap_or_else(|e| e.into_inner()).0;
                }
            }
            if interrupted {
                pending = Some(f);
                continue;
            }
            super::realtime::wait_until(due);
            let now = Instant::now();
            late = now.saturating_duration_since(due);
            match options.late {
                LatePolicy::Drop if late > options.drop_after => {
                    shared.lock().dropped += 1;
                    continue;
                }
                LatePolicy::Reanchor { after } if late > after => {
                    schedule.anchor = Some((now, v));
                    shared.lock().reanchors += 1;
                }
                _ => {}
            }
        }
        {
            let mut c = shared.lock();
            c.delivered += 1;
            c.hist.record(late.as_nanos() as u64);
            c.position = Some(f.frame.timestamp());
            c.lap = f.lap;
        }
        callback(f);
    }
    let mut c = shared.lock();
    c.finished = true;
    shared.wake.notify_all();
}

#[cfg(feature = "async")]
mod stream {
    use super::*;
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    #[derive(Default)]
    struct Queue {
        frames: VecDeque<WindowFrame>,
        waker: Option<Waker>,
        done: bool,
    }

    /// Frames of a player as a `futures::Stream` (cargo feature `async`). The player thread
    /// keeps the timing; the stream yields each frame when it is due.
    pub struct PlayerStream {
        queue: Arc<Mutex<Queue>>,
    }

    impl futures_core::Stream for PlayerStream {
        type Item = WindowFrame;
        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<WindowFrame>> {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            match q.frames.pop_front() {
                Some(f) => Poll::Ready(Some(f)),
                None if q.done => Poll::Ready(None),
                None => {
                    q.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }

    impl Player {
        /// Plays `replay` on a dedicated thread and returns its frames as a stream.
        pub fn spawn_stream(replay: Replay, options: PlayerOptions) -> Result<(PlayerHandle, PlayerStream)> {
            let queue = Arc::new(Mutex::new(Queue::default()));
            let (q1, q2) = (queue.clone(), queue.clone());
            let push = move |f| {
                let mut q = q1.lock().unwrap_or_else(|e| e.into_inner());
                q.frames.push_back(f);
                if let Some(w) = q.waker.take() {
                    w.wake();
                }
            };
            let end = move || {
                let mut q = q2.lock().unwrap_or_else(|e| e.into_inner());
                q.done = true;
                if let Some(w) = q.waker.take() {
                    w.wake();
                }
            };
            let handle = Player::spawn_with_end(replay, options, push, end)?;
            Ok((handle, PlayerStream { queue }))
        }
    }
}

#[cfg(feature = "async")]
pub use stream::PlayerStream;
