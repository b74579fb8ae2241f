//! `rec info`: sessions and streams of a file.

use crate::exit;
use crate::output::{human_bytes, human_duration, utc, CliResult};
use recfile::{RecFile, Session};
use serde_json::{json, Map, Value};

/// The file and `--json`.
pub type Args = crate::args::FileJson;

fn session_json(s: &Session) -> Value {
    let metadata: Map<String, Value> = s.metadata().iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let streams: Vec<Value> = s
        .streams()
        .iter()
        .map(|st| {
            json!({
                "name": st.name,
                "encoding": st.encoding,
                "frames": st.frames,
                "first_ns": st.first.map(|t| t.as_nanos()),
                "last_ns": st.last.map(|t| t.as_nanos()),
                "bytes": st.payload_bytes,
                "schema_name": st.schema_name,
            })
        })
        .collect();
    json!({
        "id": s.id().to_string(),
        "name": s.name(),
        "state": s.state().as_str(),
        "recovered": s.was_recovered(),
        "start_ns": s.start_time().as_nanos(),
        "end_ns": s.end_time().map(|t| t.as_nanos()),
        "frames": s.frame_count(),
        "checkpoints": s.checkpoint_count(),
        "metadata": metadata,
        "streams": streams,
    })
}

/// The `info --json` object.
pub fn info_json(f: &RecFile) -> Value {
    let (major, minor) = f.format_version();
    json!({
        "format_version": format!("{major}.{minor}"),
        "file_id": f.file_id().to_string(),
        "size_bytes": f.size_bytes(),
        "needs_recovery": f.needs_recovery(),
        "warnings": f.warnings(),
        "sessions": f.sessions().iter().map(session_json).collect::<Vec<_>>(),
    })
}

/// Prints the human-readable summary.
pub fn print_human(f: &RecFile, path: &std::path::Path) {
    let (major, minor) = f.format_version();
    outln!("file      {}", path.display());
    outln!("format    {major}.{minor}   id {}   {}", f.file_id(), human_bytes(f.size_bytes()));
    if f.needs_recovery() {
        outln!(
            "{}      the file holds an interrupted session: run `rec recover {}`",
            crate::output::paint("NOTE", "1;31", crate::output::stdout_is_terminal()),
            path.display()
        );
    }
    for w in f.warnings() {
        outln!("warning   {w}");
    }
    for s in f.sessions() {
        outln!();
        let state = if s.was_recovered() { "finished (recovered)".to_string() } else { s.state().as_str().to_string() };
        let tty = crate::output::stdout_is_terminal();
        let state_style = match s.state() {
            recfile::SessionState::Finished => "32",
            recfile::SessionState::Interrupted | recfile::SessionState::Damaged => "1;31",
            recfile::SessionState::Recording => "1;33",
        };
        outln!(
            "{} {}  {:?}  {}  {}",
            crate::output::paint("session", "1", tty),
            s.position(),
            s.name(),
            s.id(),
            crate::output::paint(&state, state_style, tty)
        );
        let end = s.end_time().map(utc).unwrap_or_else(|| "-".into());
        outln!(
            "  started {}  ended {}  {}  {}",
            utc(s.start_time()),
            end,
            crate::output::plural(s.frame_count(), "frame"),
            crate::output::plural(u64::from(s.checkpoint_count()), "checkpoint")
        );
        for (k, v) in s.metadata() {
            outln!("  {k} = {}", crate::output::cut(v, 100));
        }
        let rows: Vec<[String; 9]> = s
            .streams()
            .iter()
            .map(|st| {
                let span = match (st.first, st.last) {
                    (Some(a), Some(b)) => b - a,
                    _ => std::time::Duration::ZERO,
                };
                [
                    st.name.clone(),
                    st.encoding.clone(),
                    if st.schema_name.is_empty() { "-".into() } else { st.schema_name.clone() },
                    st.frames.to_string(),
                    human_bytes(st.payload_bytes),
                    st.first.map(utc).unwrap_or_else(|| "-".into()),
                    st.last.map(utc).unwrap_or_else(|| "-".into()),
                    human_duration(span),
                    crate::output::human_rate(st.frames, span),
                ]
            })
            .collect();
        let head = ["stream", "encoding", "type", "frames", "bytes", "first", "last", "duration", "rate"];
        let mut widths = head.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (c, w))| if i == 3 || i == 4 || i == 8 { format!("{c:>w$}") } else { format!("{c:<w$}") })
                .collect();
            outln!("  {}", parts.join("  ").trim_end());
        };
        line(&head.map(String::from));
        for r in &rows {
            line(r);
        }
    }
}

pub fn run(a: Args) -> CliResult {
    let f = RecFile::open(&a.file).map_err(|e| e.with_path(&a.file))?;
    if a.json {
        outln!("{}", info_json(&f));
    } else {
        print_human(&f, &a.file);
    }
    Ok(exit::OK)
}
