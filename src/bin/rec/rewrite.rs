//! `rec filter`, `rec merge`, `rec split`: new recordings made of existing ones.

use crate::exit;
use crate::output::{parse_time, CliError, CliResult};
use recfile::rewrite::{self, RewriteReport, Selection, SplitBy};
use recfile::Timestamp;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
pub struct FilterArgs {
    /// The .rec file to read.
    pub input: PathBuf,
    /// The new file (must not exist).
    pub output: PathBuf,
    /// Keep these streams (repeatable); default: all.
    #[arg(long)]
    pub stream: Vec<String>,
    /// Leave these streams out (repeatable).
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Keep the streams whose names match this regular expression.
    #[arg(long)]
    pub stream_regex: Option<String>,
    /// Keep frames at or after this time (seconds since the Unix epoch, or ISO 8601).
    #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
    pub from: Option<Timestamp>,
    /// Keep frames at or before this time, inclusive.
    #[arg(long, value_parser = parse_time, allow_hyphen_values = true)]
    pub until: Option<Timestamp>,
    /// Only this session (UUID, 0-based position or name); default: every session.
    #[arg(long, allow_hyphen_values = true)]
    pub session: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The .rec files to merge, then the new file (must not exist).
    #[arg(required = true, num_args = 2..)]
    pub files: Vec<PathBuf>,
    /// Put every stream into one session of this name, on one clock (instead of one session per
    /// input session).
    #[arg(long, value_name = "NAME")]
    pub one_session: Option<String>,
    /// Name each stream `<input file stem>/<stream>` (needed when names clash in one session).
    #[arg(long)]
    pub prefix: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("cut").required(true).args(["every", "max_bytes"])))]
pub struct SplitArgs {
    /// The .rec file to split.
    pub input: PathBuf,
    /// Names of the pieces: `{}` or `%03d` is the piece number (from 0); without one,
    /// `-<n>` goes before the extension.
    pub out_pattern: String,
    /// A piece per this much time (seconds, or with a unit: 500ms, 30s, 5m, 1h).
    #[arg(long, value_parser = parse_span)]
    pub every: Option<Duration>,
    /// Pieces of at most about this many bytes (a number, or with K, M, G, KiB, MiB, GiB).
    #[arg(long, value_parser = parse_bytes)]
    pub max_bytes: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A duration in seconds or with a unit suffix.
fn parse_span(s: &str) -> Result<Duration, String> {
    let units: [(&str, u64); 7] = [
        ("ns", 1),
        ("us", 1_000),
        ("ms", 1_000_000),
        ("min", 60_000_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
    ];
    for (suffix, ns) in units {
        if let Some(num) = s.strip_suffix(suffix) {
            let d = recfile::time::parse_duration(num.trim()).map_err(|e| e.to_string())?;
            let total = d.as_nanos().checked_mul(u128::from(ns)).map(|n| n / 1_000_000_000).ok_or("too long")?;
            return u64::try_from(total).map(Duration::from_nanos).map_err(|_| "too long".to_string());
        }
    }
    recfile::time::parse_duration(s).map_err(|e| e.to_string())
}

/// A byte count, with an optional K/M/G (powers of 1000) or KiB/MiB/GiB suffix.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let units: [(&str, u64); 7] =
        [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("K", 1_000), ("M", 1_000_000), ("G", 1_000_000_000), ("B", 1)];
    let (num, mult) = units.iter().find_map(|(u, m)| s.strip_suffix(u).map(|n| (n.trim(), *m))).unwrap_or((s, 1));
    let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a byte count (examples: 1000000, 100M, 64MiB)"))?;
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))
}

fn finish(r: &RewriteReport, json: bool, what: &str) -> CliResult {
    for d in &r.damaged {
        eprintln!("rec: skipped a damaged frame: {d}");
    }
    if json {
        outln!("{}", serde_json::to_string(r).unwrap_or_default());
    } else {
        let files: Vec<String> = r.files.iter().map(|p| p.display().to_string()).collect();
        outln!(
            "{what} {} frame{} in {} session{} to {}",
            r.frames,
            if r.frames == 1 { "" } else { "s" },
            r.sessions,
            if r.sessions == 1 { "" } else { "s" },
            if files.len() > 3 { format!("{} files ({} … {})", files.len(), files[0], files[files.len() - 1]) } else { files.join(", ") }
        );
    }
    Ok(if r.damaged.is_empty() { exit::OK } else { exit::DATA_LOST })
}

pub fn run_filter(a: FilterArgs) -> CliResult {
    let re = match &a.stream_regex {
        Some(r) => Some(regex::Regex::new(r).map_err(|e| CliError::usage(format!("--stream-regex: {e}")))?),
        None => None,
    };
    let file = recfile::RecFile::open(&a.input).map_err(|e| e.with_path(&a.input))?;
    let names: std::collections::BTreeSet<String> = file.sessions().iter().flat_map(|s| s.stream_names()).collect();
    for n in a.stream.iter().chain(&a.exclude) {
        if !names.contains(n) {
            return Err(CliError::new(format!("no stream named {n:?} in {} (it has {names:?})", a.input.display())));
        }
    }
    let keep = |name: &str| {
        let by_name =
            a.stream.is_empty() && re.is_none() || a.stream.iter().any(|s| s == name) || re.as_ref().is_some_and(|r| r.is_match(name));
        by_name && !a.exclude.iter().any(|s| s == name)
    };
    let bar = crate::progress::Progress::new("copying", "frames");
    let sel = Selection { stream: &keep, from: a.from, until: a.until, session: a.session.as_deref() };
    let r = rewrite::filter(&a.input, &a.output, &sel, &mut |n| bar.set(n))?;
    bar.finish();
    finish(&r, a.json, "wrote")
}

pub fn run_merge(mut a: MergeArgs) -> CliResult {
    let output = a.files.pop().ok_or_else(|| CliError::usage("give the files to merge and the new file"))?;
    let bar = crate::progress::Progress::new("merging", "frames");
    let r = rewrite::merge(&a.files, &output, a.one_session.as_deref(), a.prefix, &mut |n| bar.set(n))?;
    bar.finish();
    finish(&r, a.json, "merged")
}

pub fn run_split(a: SplitArgs) -> CliResult {
    let by = match (a.every, a.max_bytes) {
        (Some(d), _) => SplitBy::Every(d),
        (None, Some(b)) => SplitBy::MaxBytes(b),
        (None, None) => return Err(CliError::usage("give --every DURATION or --max-bytes N")),
    };
    let bar = crate::progress::Progress::new("splitting", "frames");
    let r = rewrite::split(&a.input, by, &a.out_pattern, &mut |n| bar.set(n))?;
    bar.finish();
    finish(&r, a.json, "split")
}
