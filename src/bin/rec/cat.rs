//! `rec cat`: frames in timestamp order.

use crate::exit;
use crate::output::{frame_json, preview, utc, CliResult};
use recfile::{RecFile, Replay, Session};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The .rec file.
    pub file: PathBuf,
    /// Session UUID or 0-based position (negative counts from the end); default: the last.
    #[arg(long, allow_hyphen_values = true)]
    pub session: Option<String>,
    /// Only these streams (repeatable); default: all.
    #[arg(long)]
    pub stream: Vec<String>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
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
    let f = RecFile::open(&a.file).map_err(|e| e.with_path(&a.file))?;
    let s = pick_session(&f, a.session.as_deref())?;
    let replay = pick_replay(&s, &a.stream)?;
    let encodings: std::collections::HashMap<String, String> = s.streams().into_iter().map(|i| (i.name, i.encoding)).collect();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut damaged = 0u64;
    for fr in replay.iterate() {
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
            writeln!(out, "{}", frame_json(&fr, enc))
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
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(exit::OK);
            }
            return Err(e.into());
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    if damaged > 0 {
        eprintln!("rec: {damaged} damaged frames were skipped");
        return Ok(exit::DATA_LOST);
    }
    Ok(exit::OK)
}
