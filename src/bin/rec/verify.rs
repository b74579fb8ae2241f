//! `rec verify`: check every CRC, index and structure.

use crate::exit;
use crate::output::CliResult;

/// The file and `--json`.
pub type Args = crate::args::FileJson;

pub fn run(a: Args) -> CliResult {
    let f = recfile::RecFile::open(&a.file).map_err(|e| e.with_path(&a.file))?;
    let bar = crate::progress::Progress::bytes("verifying", f.size_bytes());
    let report = f.verify_with_progress(|done, _| bar.set(done));
    bar.finish();
    if a.json {
        outln!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        for p in &report.problems {
            outln!("offset {:>12}  {}", p.offset, p.message);
        }
        outln!(
            "{}: {} sessions, {} records, {} frames checked: {}",
            a.file.display(),
            report.sessions,
            report.records,
            report.frames,
            if report.ok() { "OK".to_string() } else { format!("{} problems", report.problems.len()) }
        );
    }
    Ok(if report.ok() { exit::OK } else { exit::ERROR })
}
