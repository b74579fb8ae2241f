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
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
    } else if !r.was_interrupted && r.bytes_dropped == 0 {
        println!("{}: nothing to recover (no interrupted session)", a.file.display());
    } else if !r.was_interrupted {
        println!("{}: dropped {} unreferenced bytes after the last session", a.file.display(), r.bytes_dropped);
    } else {
        let name = r.session_name.clone().unwrap_or_default();
        let id = r.session_id.map(|i| i.to_string()).unwrap_or_default();
        println!("{}: recovered session {name:?} ({id})", a.file.display());
        println!("  kept     {} frames ({} after the last of {} checkpoints)", r.frames_kept, r.frames_after_checkpoint, r.checkpoints);
        println!("  dropped  {} frames, {} bytes of torn tail", r.frames_dropped, r.bytes_dropped);
        if let Some(why) = &r.stop_reason {
            println!("  the tail ended at: {why}");
        }
        if r.end_was_written {
            println!("  the session had ended; only its commit marker was missing");
        }
    }
    Ok(if r.lost_data() { exit::DATA_LOST } else { exit::OK })
}
