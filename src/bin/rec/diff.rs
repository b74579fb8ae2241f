//! `rec diff FILE_A [--session A] FILE_B [--session B] [--json]`: compare two sessions' actions.

use crate::cat::pick_session;
use crate::output::{CliError, CliResult};
use recfile::{compare_sessions, RecFile};

const USAGE: &str = "usage: rec diff FILE_A [--session A] FILE_B [--session B] [--json]\n\nCompares the actions of two sessions (default: the last session of each file).\nExit code 0 when identical, 1 when they differ, 2 on trouble (a missing file, no actions).";

/// Arguments are positional-dependent (each --session applies to the file before it), so they
/// are parsed here rather than by clap.
#[derive(clap::Args)]
#[command(disable_help_flag = true, override_usage = "rec diff FILE_A [--session A] FILE_B [--session B] [--json]")]
pub struct Args {
    /// FILE_A [--session A] FILE_B [--session B] [--json]
    #[arg(num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
    pub rest: Vec<String>,
}

pub fn run(a: Args) -> CliResult {
    match parse(a) {
        Ok(parsed) => compare(parsed),
        Err(e) => {
            crate::output::print_error(&e);
            Ok(crate::exit::USAGE)
        }
    }
}

type Parsed = (Vec<(String, Option<String>)>, bool);

fn parse(a: Args) -> Result<Option<Parsed>, CliError> {
    let mut files: Vec<(String, Option<String>)> = Vec::new();
    let mut json = false;
    let mut it = a.rest.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--json" => json = true,
            "--session" => {
                let v = it.next().ok_or_else(|| usage("--session needs a value"))?;
                let last = files.last_mut().ok_or_else(|| usage("--session must follow the file it applies to"))?;
                last.1 = Some(v);
            }
            s if s.starts_with("--session=") => {
                let last = files.last_mut().ok_or_else(|| usage("--session must follow the file it applies to"))?;
                last.1 = Some(s["--session=".len()..].to_string());
            }
            s if s.starts_with("--") => return Err(usage(&format!("unknown option {s}"))),
            _ => files.push((arg, None)),
        }
    }
    if files.len() != 2 {
        return Err(usage("expected two files"));
    }
    Ok(Some((files, json)))
}

fn compare(parsed: Option<Parsed>) -> CliResult {
    let Some((files, json)) = parsed else {
        outln!("{USAGE}");
        return Ok(crate::exit::OK);
    };
    let open = |(path, session): &(String, Option<String>)| -> CliResult<recfile::Session> {
        let f = RecFile::open(path).map_err(|e| e.with_path(std::path::Path::new(path)))?;
        pick_session(&f, session.as_deref())
    };
    // diff(1)'s exit codes: 0 identical, 1 different, 2 trouble.
    let trouble = |e: CliError| {
        crate::output::print_error(&e);
        Ok(crate::exit::USAGE)
    };
    let (sa, sb) = match (open(&files[0]), open(&files[1])) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return trouble(e),
    };
    if sa.action_count() == 0 && sb.action_count() == 0 {
        return trouble(CliError::new("neither session has recorded actions: there is nothing to compare"));
    }
    let report = match compare_sessions(&sa, &sb) {
        Ok(r) => r,
        Err(e) => return trouble(e.into()),
    };
    if json {
        outln!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        out!("{}", report.render());
    }
    Ok(if report.is_identical() { crate::exit::OK } else { crate::exit::ERROR })
}

/// A usage error: exit code 2, like clap's.
fn usage(msg: &str) -> CliError {
    CliError { hint: Some(USAGE.to_string()), ..CliError::usage(msg) }
}
