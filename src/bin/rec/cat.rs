//! `rec cat`: frames in timestamp order.

use crate::exit;
use crate::output::{frame_line, parse_duration, parse_time, preview, utc, CliResult};
use recfile::{RecFile, Replay, Session, Timestamp, Window};
use std::io::Write;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub sel: crate::args::Selection,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Start this many seconds after the first frame (or after --from).
    #[arg(long, value_parser = parse_duration)]
    pub seek: Option<Duration>,
    /// Stop this many seconds after the start (exclusive).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Start at this absolute time (seconds since the Unix epoch, or ISO 8601 such as
    /// 2024-01-01T00:00:10Z).
    #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
    pub from: Option<Timestamp>,
    /// End at this absolute time, inclusive (seconds since the Unix epoch, or ISO 8601).
    #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
    pub until: Option<Timestamp>,
    /// Print the window N times (laps); JSON lines then carry a "lap" key.
    #[arg(long = "loop", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub laps: Option<u64>,
}

/// The window the --seek/--duration/--from/--loop arguments describe.
pub fn window_of(
    seek: Option<Duration>,
    duration: Option<Duration>,
    from: Option<Timestamp>,
    until: Option<Timestamp>,
    looping: bool,
) -> CliResult<Window> {
    let mut w = Window::new().looping(looping);
    if let Some(s) = seek {
        w = w.seek(s);
    }
    if let Some(d) = duration {
        w = w.duration(d);
    }
    if let Some(f) = from {
        w = w.from_timestamp(f);
    }
    if let Some(u) = until {
        w = w.until_timestamp(u);
    }
    Ok(w)
}

/// The session named by `--session`, or the last one.
pub fn pick_session(f: &RecFile, which: Option<&str>) -> CliResult<Session> {
    match which {
        Some(w) => Ok(f.find_session(w)?),
        None => f.last_session().ok_or_else(|| crate::output::CliError::new("the file holds no session")),
    }
}

/// The replay of the selected streams.
pub fn pick_replay(s: &Session, streams: &[String]) -> CliResult<Replay> {
    let names: Vec<&str> = streams.iter().map(String::as_str).collect();
    Ok(s.replay(&names)?)
}

pub fn run(a: Args) -> CliResult {
    let f = RecFile::open(&a.sel.file).map_err(|e| e.with_path(&a.sel.file))?;
    let s = pick_session(&f, a.sel.session.as_deref())?;
    let replay = pick_replay(&s, &a.sel.stream)?;
    let encodings: std::collections::HashMap<String, String> = s.streams().into_iter().map(|i| (i.name, i.encoding)).collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut damaged = 0u64;
    // Progress only when the frames go to a file or a pipe and a person watches stderr.
    let bar = if crate::output::stdout_is_terminal() {
        crate::progress::Progress::hidden()
    } else {
        crate::progress::Progress::new("writing", "frames")
    };
    let mut written = 0u64;
    let laps = a.laps;
    let window = window_of(a.seek, a.duration, a.from, a.until, laps.is_some())?;
    for fr in replay.iterate_window(&window) {
        if let Ok(f) = &fr {
            if laps.is_some_and(|n| f.lap >= n) {
                break;
            }
        }
        let fr = match fr {
            Ok(fr) => fr,
            Err(e) => {
                damaged += 1;
                eprintln!("rec: skipping damaged frame: {e}");
                continue;
            }
        };
        let enc = encodings.get(fr.stream()).map(String::as_str).unwrap_or("");
        let r = if a.json {
            writeln!(out, "{}", frame_line(&fr, enc, laps.map(|_| fr.lap)))
        } else {
            writeln!(
                out,
                "{}  {:<12} #{:<6} {:>8} B  {}",
                utc(fr.timestamp()),
                fr.stream(),
                fr.seq(),
                fr.data().len(),
                preview(fr.data(), 60)
            )
        };
        if let Err(e) = r {
            bar.finish();
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(exit::OK);
            }
            return Err(e.into());
        }
        written += 1;
        if written.is_multiple_of(1024) {
            bar.set(written);
        }
    }
    bar.finish();
    if written == 0 {
        if let (Some((start, _)), Some(last)) = (window.bounds(&replay), replay.last_timestamp()) {
            if start > last {
                eprintln!("rec: the window starts at {} ({}), after the last frame at {} ({})", start, utc(start), last, utc(last));
            }
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    // Damage the reader skipped inside the session (records that validate follow it): the
    // frames printed are every intact one, but something was lost.
    for d in s.skipped_damage() {
        eprintln!("rec: session {} is damaged: {d}; every intact frame around it was read", s.position());
    }
    if damaged > 0 {
        eprintln!("rec: {} skipped", crate::output::plural(damaged, "damaged frame"));
    }
    if damaged > 0 || !s.skipped_damage().is_empty() {
        return Ok(exit::DATA_LOST);
    }
    Ok(exit::OK)
}
