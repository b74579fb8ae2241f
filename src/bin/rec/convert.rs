//! `rec convert IN OUT`: `.mcap → .rec` and `.rec → .mcap`.

use crate::exit;
use crate::output::{CliError, CliResult};
use recfile::interop::mcap::{mcap_to_rec, rec_to_mcap};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(
    after_help = "The direction follows the input's content (MCAP or .rec magic bytes).\n\nExamples:\n  rec convert drive.mcap drive.rec\n  rec convert drive.rec drive.mcap"
)]
pub struct Args {
    /// Input file (.mcap or .rec).
    pub input: PathBuf,
    /// Output file (must not exist).
    pub output: PathBuf,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Mcap,
    Rec,
}

fn sniff(path: &Path) -> CliResult<Kind> {
    let mut f = std::fs::File::open(path).map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    let mut head = [0u8; 8];
    let n = f.read(&mut head).map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    if head[..n].starts_with(b"\x89MCAP") {
        Ok(Kind::Mcap)
    } else if head[..n].starts_with(b"\x89REC") {
        Ok(Kind::Rec)
    } else {
        Err(CliError {
            hint: Some("rec convert reads .mcap and .rec files".into()),
            ..CliError::new(format!("{}: neither an MCAP nor a .rec file", path.display()))
        })
    }
}

pub fn run(a: Args) -> CliResult {
    if a.output.exists() && std::fs::metadata(&a.output).map(|m| m.len() > 0).unwrap_or(false) {
        return Err(CliError::new(format!("{} already exists; choose a new output file", a.output.display())));
    }
    let bar = crate::progress::Progress::new("converting", "messages");
    let report = match sniff(&a.input)? {
        Kind::Mcap => mcap_to_rec(&a.input, &a.output, |n| bar.set(n)),
        Kind::Rec => rec_to_mcap(&a.input, &a.output, |n| bar.set(n)),
    };
    bar.finish();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            // Leave no half-written output behind.
            let _ = std::fs::remove_file(&a.output);
            return Err(e.into());
        }
    };
    let plural = crate::output::plural;
    eprintln!(
        "rec: converted {} on {} in {} ({}, {}) to {}",
        plural(report.messages, "message"),
        plural(report.channels as u64, "channel"),
        plural(report.sessions as u64, "session"),
        plural(report.metadata as u64, "metadata record"),
        plural(report.attachments as u64, "attachment"),
        a.output.display()
    );
    if let Some(damage) = &report.damage {
        // Like `mcap recover`: every complete message before the damage is in the output.
        eprintln!("rec: {} is damaged or cut short ({damage}); converted what came before it", a.input.display());
        return Ok(exit::DATA_LOST);
    }
    Ok(exit::OK)
}
