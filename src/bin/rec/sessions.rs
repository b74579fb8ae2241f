//! `rec sessions` and `rec actions`: sessions with their action counts, and the actions.

use crate::cat::pick_session;
use crate::exit;
use crate::output::{utc, CliResult};
use recfile::session::preview;
use recfile::RecFile;
use serde_json::json;
use std::path::PathBuf;

/// The file and `--json`.
pub type SessionsArgs = crate::args::FileJson;

pub fn run_sessions(a: SessionsArgs) -> CliResult {
    let f = RecFile::open(&a.file).map_err(|e| e.with_path(&a.file))?;
    let mut rows = Vec::new();
    for s in f.sessions() {
        let cps = s.checkpoints()?;
        let with_state = cps.iter().filter(|c| !c.state.is_empty()).count();
        rows.push(json!({
            "index": s.position(),
            "id": s.id().to_string(),
            "name": s.name(),
            "state": s.state().as_str(),
            "start_ns": s.start_time().as_nanos(),
            "end_ns": s.end_time().map(|t| t.as_nanos()),
            "frames": s.frame_count(),
            "actions": s.action_count(),
            "checkpoints": cps.len(),
            "checkpoints_with_state": with_state,
            "streams": s.stream_names(),
        }));
    }
    if a.json {
        outln!("{}", serde_json::Value::Array(rows));
    } else {
        let name_w = f.sessions().iter().map(|s| s.name().chars().count()).max().unwrap_or(0).clamp(4, 40);
        outln!(
            "{:<4} {:<36} {:<name_w$} {:<11} {:>8} {:>8} {:>11}  started",
            "#",
            "id",
            "name",
            "state",
            "frames",
            "actions",
            "checkpoints"
        );
        for (r, s) in rows.iter().zip(f.sessions()) {
            outln!(
                "{:<4} {:<36} {:<name_w$} {:<11} {:>8} {:>8} {:>11}  {}",
                s.position(),
                s.id(),
                s.name(),
                s.state().as_str(),
                s.frame_count(),
                r["actions"].as_u64().unwrap_or(0),
                r["checkpoints"].as_u64().unwrap_or(0),
                utc(s.start_time())
            );
        }
    }
    Ok(exit::OK)
}

#[derive(clap::Args)]
pub struct ActionsArgs {
    /// The .rec file.
    pub file: PathBuf,
    /// Session UUID or 0-based position; default: the last.
    #[arg(long, allow_hyphen_values = true)]
    pub session: Option<String>,
    /// One JSON object per action.
    #[arg(long)]
    pub json: bool,
}

pub fn run_actions(a: ActionsArgs) -> CliResult {
    let f = RecFile::open(&a.file).map_err(|e| e.with_path(&a.file))?;
    let s = pick_session(&f, a.session.as_deref())?;
    for act in s.actions()? {
        if a.json {
            let text = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).ok();
            let mut v = json!({
                "seq": act.seq,
                "ts_ns": act.ts.as_nanos(),
                "kind": act.kind,
                "duration_ns": act.duration.as_nanos() as u64,
                "metadata": act.metadata.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))).collect::<serde_json::Map<_, _>>(),
            });
            match text(&act.input) {
                Some(x) => v["input"] = x,
                None => v["input_b64"] = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &act.input).into(),
            }
            match &act.output {
                Ok(o) => match text(o) {
                    Some(x) => v["output"] = x,
                    None => v["output_b64"] = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, o).into(),
                },
                Err(e) => v["error"] = e.clone().into(),
            }
            outln!("{v}");
        } else {
            let out = match &act.output {
                Ok(o) => preview(o, 50),
                Err(e) => format!("error: {}", preview(e.as_bytes(), 50)),
            };
            outln!(
                "#{:<5} {}  {:<12} {:>9.3} ms  {} -> {}",
                act.seq,
                utc(act.ts),
                act.kind,
                act.duration.as_secs_f64() * 1e3,
                preview(&act.input, 40),
                out
            );
        }
    }
    Ok(exit::OK)
}
