//! `rec play`: frames as `cat --json` lines at their due times, with keyboard control.

use crate::cat::{pick_replay, pick_session, window_of};
use crate::exit;
use crate::output::{frame_line, parse_duration, CliError, CliResult};
use recfile::{LatePolicy, Player, PlayerOptions, RecFile};
use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Late {
    /// Deliver late frames at once.
    CatchUp,
    /// Shift the schedule when more than 100 ms behind.
    Reanchor,
    /// Skip frames more than 10 ms late.
    Drop,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub sel: crate::args::Selection,
    /// Playback speed (positive).
    #[arg(long, default_value = "1.0")]
    pub speed: f64,
    /// Start this many seconds after the first frame.
    #[arg(long, value_parser = parse_duration)]
    pub seek: Option<Duration>,
    /// Play this many seconds.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Loop forever (stop with q or Ctrl-C).
    #[arg(long = "loop")]
    pub looping: bool,
    /// What to do when the output falls behind.
    #[arg(long, value_enum, default_value = "catch-up")]
    pub late: Late,
}

/// Puts the terminal in non-canonical mode while alive.
struct RawTerminal;

impl RawTerminal {
    fn enable() -> Option<RawTerminal> {
        let ok = std::process::Command::new("stty")
            .args(["-icanon", "-echo", "min", "1"])
            .stdin(std::process::Stdio::inherit())
            .status()
            .ok()?
            .success();
        ok.then_some(RawTerminal)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = std::process::Command::new("stty").args(["icanon", "echo"]).stdin(std::process::Stdio::inherit()).status();
    }
}

pub fn run(a: Args) -> CliResult {
    if !(a.speed.is_finite() && a.speed > 0.0) {
        return Err(CliError::usage(format!("--speed must be positive and finite, got {}", a.speed)));
    }
    let f = RecFile::open(&a.sel.file).map_err(|e| e.with_path(&a.sel.file))?;
    let s = pick_session(&f, a.sel.session.as_deref())?;
    let replay = pick_replay(&s, &a.sel.stream)?;
    let encodings: std::collections::HashMap<String, String> = s.streams().into_iter().map(|i| (i.name, i.encoding)).collect();
    let window = window_of(a.seek, a.duration, None, None, a.looping)?;
    let start = window.bounds(&replay).map(|(s, _)| s);
    let late = match a.late {
        Late::CatchUp => LatePolicy::CatchUp,
        Late::Reanchor => LatePolicy::Reanchor { after: Duration::from_millis(100) },
        Late::Drop => LatePolicy::Drop,
    };
    let options = PlayerOptions { late, ..PlayerOptions::new(window, a.speed) };
    let broken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let b2 = broken.clone();
    let looping = a.looping;
    let handle = Player::spawn(replay, options, move |fr| {
        let enc = encodings.get(fr.stream()).map(String::as_str).unwrap_or("");
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{}", frame_line(&fr, enc, looping.then_some(fr.lap))).and_then(|_| out.flush()).is_err() {
            b2.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    })?;
    let handle = std::sync::Arc::new(handle);
    let _raw = if std::io::stdin().is_terminal() {
        let raw = RawTerminal::enable();
        let h = handle.clone();
        std::thread::spawn(move || keyboard(&h, start));
        raw
    } else {
        None
    };
    // The status line goes to a terminal that is not also where the frames go.
    let status = std::io::stderr().is_terminal() && !std::io::stdout().is_terminal();
    // Ctrl-C, SIGTERM, SIGHUP: stop, restore the terminal, print the statistics.
    let stop = crate::output::stop_flag();
    let mut ticks = 0u32;
    while !handle.is_finished() && !broken.load(std::sync::atomic::Ordering::Relaxed) && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
        ticks += 1;
        if status && ticks.is_multiple_of(5) {
            // One status line: position, lap, speed, lateness.
            let pos = handle
                .position()
                .zip(start)
                .map(|((p, lap), s)| format!("{:>9.3} s lap {lap}", (p - s).as_secs_f64()))
                .unwrap_or_else(|| "        -".into());
            let st = handle.stats();
            let state = if handle.is_paused() { "paused" } else { "playing" };
            eprint!("\r\x1b[2K{state} {pos}  speed {:.2}x  frames {}  late p99 {:?}", handle.speed(), st.delivered, st.lateness_p99);
        }
    }
    if status {
        eprint!("\r\x1b[2K");
    }
    handle.stop();
    let st = handle.stats();
    eprintln!(
        "rec: played {} frames, dropped {}, lateness p50 {:?} p99 {:?} max {:?}",
        st.delivered, st.dropped, st.lateness_p50, st.lateness_p99, st.lateness_max
    );
    let errors = handle.errors();
    for e in &errors {
        eprintln!("rec: skipped damaged frame: {e}");
    }
    Ok(if errors.is_empty() { exit::OK } else { exit::DATA_LOST })
}

/// Space pauses and resumes, arrows seek ±5 s, + and - double or halve the speed, q quits.
fn keyboard(h: &recfile::PlayerHandle, start: Option<recfile::Timestamp>) {
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 1];
    let mut esc = 0u8;
    while stdin.read_exact(&mut buf).is_ok() {
        let pos = || h.position().zip(start).map(|((p, _), s)| p - s).unwrap_or_default();
        match (esc, buf[0]) {
            (0, 0x1b) => esc = 1,
            (1, b'[') => esc = 2,
            (2, b'C') => {
                h.seek(pos() + Duration::from_secs(5));
                esc = 0;
            }
            (2, b'D') => {
                h.seek(pos().saturating_sub(Duration::from_secs(5)));
                esc = 0;
            }
            (_, b' ') => {
                if h.is_paused() {
                    h.resume()
                } else {
                    h.pause()
                }
                esc = 0;
            }
            (_, b'+') => {
                let _ = h.set_speed(h.speed() * 2.0);
                esc = 0;
            }
            (_, b'-') => {
                let _ = h.set_speed(h.speed() / 2.0);
                esc = 0;
            }
            (_, b'q') => {
                h.stop();
                return;
            }
            _ => esc = 0,
        }
    }
}
