//! Arguments shared by several commands.

use std::path::PathBuf;

/// A file, and whether to print JSON (info, sessions, verify, recover).
#[derive(clap::Args)]
pub struct FileJson {
    /// The .rec file.
    pub file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A file, a session in it and some of its streams (cat, play).
#[derive(clap::Args)]
pub struct Selection {
    /// The .rec file.
    pub file: PathBuf,
    /// Session UUID or 0-based position (negative counts from the end); default: the last.
    #[arg(long, allow_hyphen_values = true)]
    pub session: Option<String>,
    /// Only these streams (repeatable); default: all, merged on one clock.
    #[arg(long)]
    pub stream: Vec<String>,
}
