//! `rec`: record, inspect and replay `.rec` files. Argument definitions live here; each command
//! is a file of its own; no format logic is in the CLI.

/// `println!` for command output: a closed stdout (`rec info FILE | head -1`) ends the
/// process quietly with exit 0 instead of panicking.
macro_rules! outln {
    () => { $crate::output::emit(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::emit(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` for command output, with [`outln!`]'s handling of a closed stdout.
#[allow(unused_macros)]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::emit(format_args!($($arg)*)) };
}

mod args;
mod cat;
mod convert;
mod demo;
mod diff;
mod export;
mod find;
mod info;
mod jsontext;
mod output;
mod play;
mod progress;
mod record;
mod recover;
mod rewrite;
mod sessions;
mod verify;
mod view;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes, the same for every command.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An error.
    pub const ERROR: u8 = 1;
    /// Bad usage (clap also uses 2).
    pub const USAGE: u8 = 2;
    /// The command completed but data was lost (damaged or dropped).
    pub const DATA_LOST: u8 = 3;
    /// Nothing matched.
    pub const NOT_FOUND: u8 = 4;
}

#[derive(Parser)]
#[command(name = "rec", version, about = "Record timed data streams into one crash-safe .rec file and replay them exactly.")]
#[command(
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 completed but data was lost, 4 nothing found.\n\nExamples:\n  rec demo demo.rec\n  rec info demo.rec\n  rec cat demo.rec --stream odom --json | head\n  rec find demo.rec --stream lidar --seek 1.5"
)]
struct Cli {
    /// Never use colours (also: the NO_COLOR environment variable). Output is plain whenever
    /// it does not go to a terminal.
    #[arg(long, global = true)]
    no_color: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record JSON lines from stdin, one frame per line, into a new session.
    #[command(
        after_help = "Each line: {\"stream\": \"lidar\", \"ts\": 1704067200.25, \"data\": <any JSON>}\n\"ts_ns\": <integer> may replace \"ts\"; \"data_b64\": \"<base64>\" may replace \"data\" (stream encoding raw).\nA missing \"stream\" uses --stream; a missing timestamp means now.\n\nExample:\n  echo '{\"stream\":\"odom\",\"ts\":1.5,\"data\":{\"x\":1}}' | rec record run.rec"
    )]
    Record(record::Args),
    /// Show the sessions and streams of a file.
    #[command(after_help = "Examples:\n  rec info drive.rec\n  rec info drive.rec --json | jq .sessions[0].streams")]
    Info(info::Args),
    /// Print frames in timestamp order, merged across streams.
    #[command(
        after_help = "Examples:\n  rec cat drive.rec --stream odom --json | head\n  rec cat drive.rec --session 0 --seek 10 --duration 5\n  rec cat drive.rec --stream lidar --loop 3 --json > laps.jsonl"
    )]
    Cat(cat::Args),
    /// Play frames as `cat --json` lines at their original timing (space pauses, arrows seek, +/- speed).
    #[command(
        after_help = "Examples:\n  rec play drive.rec --speed 2 | my-perception-node\n  rec play drive.rec --stream lidar --stream odom --seek 30 --loop --late drop"
    )]
    Play(play::Args),
    /// Find one frame by time: closest, latest before, or earliest after.
    #[command(
        after_help = "Examples:\n  rec find drive.rec --stream lidar --at 1704067200.25 --json\n  rec find drive.rec --stream odom --seek 12.5 --tolerance 0.05\n  rec find drive.rec --stream map --at-ns 1704067200250000000 --mode before"
    )]
    Find(find::Args),
    /// Record a few seconds of synthetic robot data (lidar, camera, odometry) and show it.
    #[command(after_help = "Example:\n  rec demo demo.rec && rec cat demo.rec --stream odom --json | head -3")]
    Demo {
        /// File to create.
        file: PathBuf,
    },
    /// List sessions with their action and checkpoint counts.
    #[command(after_help = "Examples:\n  rec sessions agent.rec\n  rec sessions agent.rec --json")]
    Sessions(sessions::SessionsArgs),
    /// List the actions of a session.
    #[command(after_help = "Examples:\n  rec actions agent.rec --session 0\n  rec actions agent.rec --json | jq .kind")]
    Actions(sessions::ActionsArgs),
    /// Compare the actions of two sessions (exit 0 identical, 1 different, 2 trouble).
    Diff(diff::Args),
    /// Convert between MCAP and .rec (the direction follows the input).
    Convert(convert::Args),
    /// Export recordings as a Parquet dataset for DuckDB, Polars and Spark (one row per frame).
    #[command(
        after_help = "Writes DIR/frames/stream=<name>/part-<recording>-<session>.parquet, DIR/recordings.parquet,\nDIR/streams.parquet and DIR/actions.parquet. Running it again on the same DIR adds new\nrecordings and skips those already there (same id and size).\n\nExit codes: 0 ok, 3 a recording was damaged or interrupted (what was intact is exported), 1 error.\n\nExamples:\n  rec export fleet/ --out dataset\n  rec export run.rec --out dataset --stream odom --json-columns\n  duckdb -c \"SELECT stream, count(*) FROM read_parquet('dataset/frames/**/*.parquet', hive_partitioning = true) GROUP BY stream\""
    )]
    Export(export::Args),
    /// Copy some streams, a time window or a session of a file into a new file.
    #[command(
        after_help = "Encodings, schemas, metadata and actions are kept exactly.\n\nExamples:\n  rec filter drive.rec odom.rec --stream odom\n  rec filter drive.rec short.rec --from 2024-01-01T00:00:10Z --until 2024-01-01T00:00:20Z\n  rec filter drive.rec nocam.rec --exclude camera --stream-regex '^/tf'"
    )]
    Filter(rewrite::FilterArgs),
    /// Merge the sessions of several files into one new file.
    #[command(
        after_help = "Examples:\n  rec merge a.rec b.rec both.rec\n  rec merge bag_0.rec bag_1.rec bag.rec --one-session drive\n  rec merge left.rec right.rec stereo.rec --one-session run --prefix"
    )]
    Merge(rewrite::MergeArgs),
    /// Cut one recording into pieces by time or size, on frame boundaries.
    #[command(
        after_help = "Examples:\n  rec split drive.rec --every 60s drive-%03d.rec\n  rec split drive.rec --max-bytes 1GiB 'piece-{}.rec'"
    )]
    Split(rewrite::SplitArgs),
    /// Look at a recording in the browser: its timeline, gaps, frames and actions (a local page).
    View(view::Args),
    /// Print a shell completion script (bash, zsh or fish).
    #[command(
        after_help = "Examples:\n  rec completions bash > ~/.local/share/bash-completion/completions/rec\n  rec completions zsh > ~/.zfunc/_rec"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Repair an interrupted recording in place.
    #[command(
        after_help = "Exit codes: 0 nothing was lost, 3 a torn tail was dropped, 1 the file cannot be recovered.\n\nExamples:\n  rec recover drive.rec\n  rec recover drive.rec --json"
    )]
    Recover(recover::Args),
    /// Check every CRC, index and structure of a file.
    #[command(after_help = "Exit code 1 when any problem is found.\n\nExamples:\n  rec verify drive.rec\n  rec verify drive.rec --json")]
    Verify(verify::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    output::set_color(!cli.no_color && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()));
    let result = match cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "rec", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Record(a) => record::run(a),
        Command::Info(a) => info::run(a),
        Command::Cat(a) => cat::run(a),
        Command::Find(a) => find::run(a),
        Command::Play(a) => play::run(a),
        Command::Demo { file } => demo::run(&file),
        Command::Recover(a) => recover::run(a),
        Command::Convert(a) => convert::run(a),
        Command::View(a) => view::run(a),
        Command::Export(a) => export::run(a),
        Command::Filter(a) => rewrite::run_filter(a),
        Command::Merge(a) => rewrite::run_merge(a),
        Command::Split(a) => rewrite::run_split(a),
        Command::Sessions(a) => sessions::run_sessions(a),
        Command::Actions(a) => sessions::run_actions(a),
        Command::Diff(a) => diff::run(a),
        Command::Verify(a) => verify::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::print_error(&e);
            ExitCode::from(e.code)
        }
    }
}
