//! `rec export`: recordings as a Hive-partitioned Parquet dataset.

use crate::exit;
use crate::output::{parse_time, CliResult};
use recfile::interop::parquet::{export, ExportOptions};
use recfile::Timestamp;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// .rec files, or directories searched recursively for *.rec.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The dataset directory (created; an earlier export there is added to).
    #[arg(long)]
    pub out: PathBuf,
    /// Only these streams (repeatable); default: all.
    #[arg(long)]
    pub stream: Vec<String>,
    /// Only frames and actions at or after this time (seconds since the Unix epoch, or ISO 8601).
    #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
    pub from: Option<Timestamp>,
    /// Only frames and actions at or before this time, inclusive.
    #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
    pub until: Option<Timestamp>,
    /// Also a typed column per top-level key of each `json` stream's objects.
    #[arg(long)]
    pub json_columns: bool,
    /// Files exported at once (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> CliResult {
    if let (Some(f), Some(u)) = (a.from, a.until) {
        if u < f {
            return Err(crate::output::CliError::usage(format!("--until ({u}) is before --from ({f})")));
        }
    }
    let options = ExportOptions { streams: a.stream, from: a.from, until: a.until, json_columns: a.json_columns, threads: a.threads };
    let bar = std::sync::OnceLock::new();
    let report = export(&a.inputs, &a.out, &options, &|done, total| {
        bar.get_or_init(|| crate::progress::Progress::bytes("exporting", total)).set(done);
    })?;
    if let Some(b) = bar.get() {
        b.finish();
    }
    for f in &report.failed {
        eprintln!("rec: could not export {f}");
    }
    for d in &report.damage {
        eprintln!("rec: {d}");
    }
    if a.json {
        outln!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        outln!(
            "{}: exported {} ({}, {} in {}){}",
            a.out.display(),
            plural(report.exported as u64, "recording", "recordings"),
            plural(report.sessions as u64, "session", "sessions"),
            plural(report.frames, "frame", "frames"),
            plural(report.parts as u64, "file", "files"),
            if report.unchanged > 0 {
                format!("; {} already there", plural(report.unchanged as u64, "recording was", "recordings were"))
            } else {
                String::new()
            }
        );
    }
    Ok(if !report.failed.is_empty() {
        exit::ERROR
    } else if !report.damage.is_empty() {
        exit::DATA_LOST
    } else {
        exit::OK
    })
}
