//! `rec record`: JSON lines from stdin into a new session.

use crate::exit;
use crate::jsontext::compact;
use crate::output::{CliError, CliResult};
use base64::Engine;
use recfile::{RecorderOptions, SessionWriter, StreamId, Timestamp};
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// File to record into (created; with --append, added to).
    pub file: PathBuf,
    /// Stream for lines without a "stream" key.
    #[arg(long)]
    pub stream: Option<String>,
    /// Name of the session.
    #[arg(long, default_value = "record")]
    pub session: String,
    /// Write a checkpoint every N frames.
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Add a session to an existing file instead of creating a new one.
    #[arg(long)]
    pub append: bool,
}

/// One parsed input line.
struct Line {
    stream: String,
    ts: Timestamp,
    encoding: &'static str,
    payload: Vec<u8>,
}

/// The keys a line may have: what `rec cat --json` prints, so that its output records again.
const KEYS: &str = "stream, ts or ts_ns, data or data_b64 (and session, seq, lap, which are ignored)";

fn parse_line(text: &str, default_stream: Option<&str>) -> Result<Line, String> {
    // Values stay text: numbers in "data" keep their digits and "ts" is read as the exact
    // decimal it is written as.
    let obj: BTreeMap<String, &RawValue> = match serde_json::from_str(text) {
        Ok(o) => o,
        Err(e) if serde_json::from_str::<&RawValue>(text).is_ok() => return Err(format!("expected a JSON object ({e})")),
        Err(e) => return Err(format!("not valid JSON: {e}")),
    };
    for k in obj.keys() {
        if !matches!(k.as_str(), "stream" | "ts" | "ts_ns" | "data" | "data_b64" | "session" | "seq" | "lap") {
            return Err(format!("unknown key {k:?} (expected {KEYS})"));
        }
    }
    let string = |key: &str, raw: &RawValue| -> Result<String, String> {
        serde_json::from_str::<String>(raw.get()).map_err(|_| format!("\"{key}\" must be a string, got {}", raw.get()))
    };
    let stream = match obj.get("stream") {
        Some(raw) => {
            let s = string("stream", raw)?;
            if s.is_empty() {
                return Err("\"stream\" is empty".into());
            }
            s
        }
        None => default_stream.map(str::to_string).ok_or("no \"stream\" key and no --stream given")?,
    };
    let ts = match (obj.get("ts_ns"), obj.get("ts")) {
        // `rec cat --json` prints both, the one the exact decimal of the other: accepted when
        // they name the same nanosecond, so that its output records again.
        (Some(ns), Some(raw)) => {
            let (ns, ts) = (Timestamp::from_nanos(parse_ts_ns(ns.get())?), parse_ts(raw.get())?);
            if ns != ts {
                return Err(format!("both \"ts\" ({ts}) and \"ts_ns\" ({}) given and they differ (use one)", ns.as_nanos()));
            }
            ns
        }
        (Some(ns), None) => Timestamp::from_nanos(parse_ts_ns(ns.get())?),
        (None, Some(raw)) => parse_ts(raw.get())?,
        (None, None) => Timestamp::now(),
    };
    let (encoding, payload) = match (obj.get("data"), obj.get("data_b64")) {
        (Some(_), Some(_)) => return Err("both \"data\" and \"data_b64\" given (use one)".into()),
        (Some(d), None) => ("json", compact(d.get()).into_bytes()),
        (None, Some(raw)) => {
            let b = string("data_b64", raw).map_err(|_| format!("\"data_b64\" must be a base64 string, got {}", raw.get()))?;
            ("raw", base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| format!("\"data_b64\" is not valid base64: {e}"))?)
        }
        (None, None) => return Err("no \"data\" or \"data_b64\"".into()),
    };
    Ok(Line { stream, ts, encoding, payload })
}

/// `"ts_ns"`: an integer of nanoseconds in the i64 range.
fn parse_ts_ns(raw: &str) -> Result<i64, String> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("\"ts_ns\" must be an integer of nanoseconds, got {raw}"));
    }
    raw.parse::<i64>().map_err(|_| format!("\"ts_ns\" {raw} is outside the range of timestamps (i64 nanoseconds)"))
}

/// `"ts"`: seconds since the epoch as a JSON number (read as its exact decimal), or a string
/// holding seconds or an ISO 8601 date-time.
fn parse_ts(raw: &str) -> Result<Timestamp, String> {
    let text = if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).map_err(|e| format!("\"ts\": {e}"))?
    } else if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        raw.to_string()
    } else {
        return Err(format!("\"ts\" must be a number of seconds, got {raw}"));
    };
    Timestamp::parse(&text).map_err(|e| format!("\"ts\": {e}"))
}

struct Streams {
    ids: HashMap<String, (StreamId, &'static str)>,
}

impl Streams {
    fn get(&mut self, w: &mut SessionWriter, name: &str, encoding: &'static str) -> Result<StreamId, String> {
        if let Some((id, enc)) = self.ids.get(name) {
            if *enc != encoding {
                return Err(format!(
                    "stream {name:?} holds {enc} data; this line has {encoding} data (a stream cannot mix \"data\" and \"data_b64\")"
                ));
            }
            return Ok(*id);
        }
        let id = w.add_stream(name, encoding).map_err(|e| e.to_string())?;
        self.ids.insert(name.to_string(), (id, encoding));
        Ok(id)
    }
}

pub fn run(a: Args) -> CliResult {
    let mut opts = RecorderOptions::new();
    if let Some(n) = a.checkpoint_every {
        if n == 0 {
            return Err(CliError::usage("--checkpoint-every must be at least 1"));
        }
        opts = opts.checkpoint_every_frames(n);
    }
    let mut recorder = if a.append { opts.open_append(&a.file)? } else { opts.create(&a.file)? };
    if let Some(r) = recorder.recovery_report().filter(|r| r.was_interrupted || r.lost_data()) {
        eprintln!("rec: the file needed recovery before appending:");
        for line in crate::recover::describe(r, &a.file.display().to_string()) {
            eprintln!("rec: {line}");
        }
    }
    let mut w = recorder.start_session(&a.session)?;
    let mut streams = Streams { ids: HashMap::new() };
    // Lines are read on a thread of their own so that a signal (Ctrl-C, SIGTERM, SIGHUP) can
    // stop the recording while a read waits: every line read by then is written, and the
    // session is finished as at the end of the input.
    let stop = crate::output::stop_flag();
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4096);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        loop {
            let mut buf = Vec::new();
            match input.read_until(b'\n', &mut buf) {
                Ok(0) => return,
                Ok(_) => {
                    if tx.send(Ok(buf)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    let mut line_no = 0u64;
    let mut frames = 0u64;
    let mut failure: Option<CliError> = None;
    let mut stopped = false;
    let bar = crate::progress::Progress::new("recording", "frames");
    loop {
        let next = if stopped {
            // After a signal: the lines already read, then stop.
            match rx.try_recv() {
                Ok(l) => l,
                Err(_) => break,
            }
        } else {
            match rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(l) => l,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    stopped = stop.load(std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        };
        if !stopped && stop.load(std::sync::atomic::Ordering::Relaxed) {
            stopped = true;
        }
        let buf = match next {
            Ok(b) => b,
            Err(e) => {
                failure = Some(CliError::new(format!("reading stdin after line {line_no}: {e}")));
                break;
            }
        };
        line_no += 1;
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t.trim(),
            Err(_) => {
                failure = Some(CliError::new(format!("line {line_no}: not valid UTF-8")));
                break;
            }
        };
        if text.is_empty() {
            continue;
        }
        let written = parse_line(text, a.stream.as_deref()).and_then(|l| {
            let id = streams.get(&mut w, &l.stream, l.encoding)?;
            w.write(id, l.ts, &l.payload).map_err(|e| e.to_string())
        });
        match written {
            Ok(_) => {
                frames += 1;
                bar.set(frames);
            }
            Err(msg) => {
                failure = Some(CliError::new(format!("line {line_no}: {msg}")));
                break;
            }
        }
    }
    if stopped {
        eprintln!("rec: stopped by a signal after {line_no} lines; finishing the session");
    }
    bar.finish();
    let info = w.finish()?;
    eprintln!(
        "rec: recorded {frames} frames in {} streams into {} (session {} {:?})",
        info.streams.len(),
        a.file.display(),
        info.id,
        info.name
    );
    match failure {
        Some(f) => {
            eprintln!("rec: the session was finished with the {frames} frames before the bad line");
            Err(f)
        }
        None => Ok(exit::OK),
    }
}
