//! `rec record`: JSON lines from stdin into a new session.

use crate::exit;
use crate::output::{CliError, CliResult};
use base64::Engine;
use recfile::{RecorderOptions, SessionWriter, StreamId, Timestamp};
use serde_json::Value;
use std::collections::HashMap;
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

fn parse_line(text: &str, default_stream: Option<&str>) -> Result<Line, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(obj) = v else {
        return Err("expected a JSON object".into());
    };
    for k in obj.keys() {
        if !matches!(k.as_str(), "stream" | "ts" | "ts_ns" | "data" | "data_b64" | "session" | "seq") {
            return Err(format!("unknown key {k:?} (expected stream, ts or ts_ns, data or data_b64)"));
        }
    }
    let stream = match obj.get("stream") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => return Err("\"stream\" is empty".into()),
        Some(other) => return Err(format!("\"stream\" must be a string, got {other}")),
        None => default_stream.map(str::to_string).ok_or("no \"stream\" key and no --stream given")?,
    };
    let ts = match (obj.get("ts_ns"), obj.get("ts")) {
        (Some(ns), _) => {
            Timestamp::from_nanos(ns.as_i64().ok_or_else(|| format!("\"ts_ns\" must be an integer of nanoseconds, got {ns}"))?)
        }
        (None, Some(Value::Number(n))) => {
            let secs = n.as_f64().ok_or_else(|| format!("\"ts\" {n} is not a number of seconds"))?;
            Timestamp::from_secs_f64(secs).map_err(|e| format!("\"ts\": {e}"))?
        }
        (None, Some(other)) => return Err(format!("\"ts\" must be a number of seconds, got {other}")),
        (None, None) => Timestamp::now(),
    };
    let (encoding, payload) = match (obj.get("data"), obj.get("data_b64")) {
        (Some(_), Some(_)) => return Err("both \"data\" and \"data_b64\" given".into()),
        (Some(d), None) => ("json", serde_json::to_vec(d).map_err(|e| e.to_string())?),
        (None, Some(Value::String(b))) => {
            ("raw", base64::engine::general_purpose::STANDARD.decode(b).map_err(|e| format!("\"data_b64\" is not valid base64: {e}"))?)
        }
        (None, Some(other)) => return Err(format!("\"data_b64\" must be a base64 string, got {other}")),
        (None, None) => return Err("no \"data\" or \"data_b64\"".into()),
    };
    Ok(Line { stream, ts, encoding, payload })
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
            return Err(CliError::new("--checkpoint-every must be at least 1"));
        }
        opts = opts.checkpoint_every_frames(n);
    }
    let mut recorder = if a.append { opts.open_append(&a.file)? } else { opts.create(&a.file)? };
    let mut w = recorder.start_session(&a.session)?;
    let mut streams = Streams { ids: HashMap::new() };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    let mut frames = 0u64;
    let mut failure: Option<CliError> = None;
    let bar = crate::progress::Progress::new("recording", "frames");
    loop {
        buf.clear();
        match input.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                failure = Some(CliError::new(format!("reading stdin after line {line_no}: {e}")));
                break;
            }
        }
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
