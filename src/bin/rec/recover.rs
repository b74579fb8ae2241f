//! `rec recover`: repair an interrupted recording in place.

use crate::exit;
use crate::output::CliResult;

/// The file and `--json`.
pub type Args = crate::args::FileJson;

pub fn run(a: Args) -> CliResult {
    let bar = crate::progress::Progress::new("recovering", "");
    let r = recfile::recover(&a.file);
    bar.finish();
    let r = r?;
    if a.json {
        outln!("{}", serde_json::to_string(&r).unwrap_or_default());
    } else {
        for line in describe(&r, &a.file.display().to_string()) {
            outln!("{line}");
        }
    }
    Ok(if r.lost_data() { exit::DATA_LOST } else { exit::OK })
}

/// What a recovery report says, in lines (also printed by `rec record --append`).
pub fn describe(r: &recfile::RecoveryReport, file: &str) -> Vec<String> {
    let mut out = Vec::new();
    if r.committed_bytes_missing > 0 {
        out.push(format!(
            "{file}: the file ends {} bytes short of what was committed to it: those bytes are gone",
            r.committed_bytes_missing
        ));
    }
    if r.was_interrupted {
        let name = r.session_name.clone().unwrap_or_default();
        let id = r.session_id.map(|i| i.to_string()).unwrap_or_default();
        out.push(format!("{file}: recovered session {name:?} ({id})"));
        out.push(format!(
            "  kept     {} frames ({} after the last of {})",
            r.frames_kept,
            r.frames_after_checkpoint,
            crate::output::plural(u64::from(r.checkpoints), "checkpoint")
        ));
        out.push(format!("  dropped  {} frames, {} bytes of torn tail", r.frames_dropped, r.bytes_dropped));
        if let Some(why) = &r.stop_reason {
            out.push(format!("  the tail ended at: {why}"));
        }
        if r.end_was_written {
            out.push("  the session had ended; only its commit marker was missing".to_string());
        }
    } else if r.bytes_dropped > 0 {
        out.push(format!("{file}: dropped {} unreferenced bytes after the last session", r.bytes_dropped));
    }
    for d in &r.damaged {
        out.push(format!("  {d} (left as it is: the records around it stay readable)"));
    }
    if out.is_empty() {
        out.push(format!("{file}: nothing to recover (no interrupted session)"));
    }
    out
}
