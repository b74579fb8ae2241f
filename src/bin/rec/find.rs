//! `rec find`: one frame by time.

use crate::cat::pick_session;
use crate::exit;
use crate::output::{frame_line, parse_duration, parse_offset_nanos, parse_time, preview, utc, CliResult};
use recfile::{RecFile, Timestamp};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    /// The frame closest to the time (ties: the earlier).
    Closest,
    /// The latest frame at or before the time.
    Before,
    /// The earliest frame at or after the time.
    After,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("time").required(true).args(["at", "at_ns", "seek"])))]
pub struct Args {
    /// The .rec file.
    pub file: PathBuf,
    /// The stream to search.
    #[arg(long)]
    pub stream: String,
    /// Session UUID or 0-based position; default: the last.
    #[arg(long, allow_hyphen_values = true)]
    pub session: Option<String>,
    /// Absolute time: seconds since the Unix epoch, or ISO 8601 (2024-01-01T00:00:10Z).
    #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
    pub at: Option<Timestamp>,
    /// Absolute time in nanoseconds since the Unix epoch.
    #[arg(long, allow_hyphen_values = true)]
    pub at_ns: Option<i64>,
    /// Time in seconds after the stream's first frame (negative: before it).
    #[arg(long, value_parser = parse_offset_nanos, allow_hyphen_values = true)]
    pub seek: Option<i64>,
    /// Maximum distance in seconds between the time and the frame.
    #[arg(long, value_parser = parse_duration)]
    pub tolerance: Option<Duration>,
    /// Which frame to pick.
    #[arg(long, value_enum, default_value = "closest")]
    pub mode: Mode,
    /// Print the frame as one JSON object (the `cat --json` shape).
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> CliResult {
    let f = RecFile::open(&a.file).map_err(|e| e.with_path(&a.file))?;
    let s = pick_session(&f, a.session.as_deref())?;
    let replay = s.stream(&a.stream)?;
    let encoding = replay.encoding().to_string();
    let t = if let Some(ns) = a.at_ns {
        Timestamp::from_nanos(ns)
    } else if let Some(at) = a.at {
        at
    } else {
        let seek = a.seek.unwrap_or(0);
        let Some(first) = replay.first_timestamp() else {
            eprintln!("rec: stream {:?} has no frames", a.stream);
            return Ok(exit::NOT_FOUND);
        };
        Timestamp::from_nanos(first.as_nanos().saturating_add(seek))
    };
    let found = match a.mode {
        Mode::Closest => replay.try_find_closest(t, a.tolerance)?,
        Mode::Before => replay.try_find_before(t)?,
        Mode::After => replay.try_find_after(t)?,
    };
    let found = found.filter(|fr| a.tolerance.is_none_or(|tol| fr.timestamp().abs_diff(t) <= tol));
    match found {
        Some(fr) => {
            if a.json {
                outln!("{}", frame_line(&fr, &encoding, None));
            } else {
                outln!("{}  {}  #{}  {} B  {}", utc(fr.timestamp()), fr.stream(), fr.seq(), fr.data().len(), preview(fr.data(), 60));
            }
            Ok(exit::OK)
        }
        None => {
            let tol = a.tolerance.map(|d| format!(" within {} s", d.as_secs_f64())).unwrap_or_default();
            eprintln!("rec: no frame of stream {:?}{tol} of {} ({})", a.stream, t, utc(t));
            Ok(exit::NOT_FOUND)
        }
    }
}
