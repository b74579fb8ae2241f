//! Shared output: the frame JSON shape, readable times, error reports.

use base64::Engine;
use recfile::{Frame, Timestamp};

/// A CLI error: a message and optional hint, printed to stderr with exit code 1.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    /// The exit code: 1 (an error) unless it is a usage error (2).
    pub code: u8,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        CliError { message: message.into(), hint: None, code: crate::exit::ERROR }
    }

    /// A usage error (a bad argument value): exit 2.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError { code: crate::exit::USAGE, ..CliError::new(message) }
    }
}

impl From<recfile::Error> for CliError {
    fn from(e: recfile::Error) -> Self {
        let hint = match &e {
            recfile::Error::Locked { .. } => Some("another process is recording this file; wait for it to finish".to_string()),
            recfile::Error::NeedsRecovery { .. } => Some("the file was not closed: run `rec recover FILE`".to_string()),
            recfile::Error::BadMagic { found } if found.starts_with(b"\x89MCAP") => {
                Some("this is an MCAP file: convert it with `rec convert FILE.mcap FILE.rec`".to_string())
            }
            recfile::Error::BadMagic { .. } | recfile::Error::EmptyFile => Some("is this a .rec file?".to_string()),
            recfile::Error::AlreadyExists { .. } => Some("add a session to it with --append".to_string()),
            recfile::Error::Unrecoverable { .. } => {
                Some("`rec verify FILE` lists every damaged record; `rec cat` still reads every intact frame".to_string())
            }
            _ => None,
        };
        let mut message = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            let s_text = s.to_string();
            if !message.contains(&s_text) {
                message.push_str(&format!(": {s_text}"));
            }
            src = s.source();
        }
        CliError { message, hint, code: crate::exit::ERROR }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::new(e.to_string())
    }
}

pub type CliResult<T = u8> = Result<T, CliError>;

static COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Allows or forbids colours (`--no-color`, `NO_COLOR`).
pub fn set_color(on: bool) {
    COLOR.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// `text` in an ANSI style when colours are allowed and `to_terminal` is true.
pub fn paint(text: &str, style: &str, to_terminal: bool) -> String {
    if to_terminal && COLOR.load(std::sync::atomic::Ordering::Relaxed) {
        format!("\x1b[{style}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Writes command output to stdout; when stdout is closed (a pipe whose reader has gone), exits
/// at once with status 0, as Unix tools do, rather than panicking or reporting an error.
pub fn emit(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("rec: error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// A flag set on SIGINT, SIGTERM or SIGHUP, for commands that finish cleanly when asked to
/// stop; a second signal ends the process at once (exit 130).
pub fn stop_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        // The conditional shutdown is registered first, so it sees the flag before this
        // signal sets it: only a second signal exits.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, flag.clone());
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    flag
}

/// Whether stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
}

pub fn print_error(e: &CliError) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    eprintln!("{} {}", paint("rec: error:", "1;31", tty), e.message);
    if let Some(h) = &e.hint {
        eprintln!("{} {h}", paint("hint:", "1;33", tty));
    }
}

/// The `cat --json` line of a frame: `{"session", "stream", "seq", "ts", "ts_ns", "data" or
/// "data_b64", "lap"?}`. `ts` is the exact decimal of `ts_ns` in seconds; a `json` stream's
/// payload that is one valid JSON value is printed as stored (compacted, every number's digits
/// kept), any other payload as base64.
pub fn frame_line(f: &Frame, encoding: &str, lap: Option<u64>) -> String {
    use crate::jsontext::{quote, stored_json};
    let mut line = format!(
        "{{\"session\":\"{}\",\"stream\":{},\"seq\":{},\"ts\":{},\"ts_ns\":{},",
        f.session_id(),
        quote(f.stream()),
        f.seq(),
        f.timestamp().to_decimal_secs(),
        f.timestamp().as_nanos()
    );
    match (encoding == "json").then(|| stored_json(f.data())).flatten() {
        Some(text) => {
            line.push_str("\"data\":");
            line.push_str(&text);
        }
        None => {
            line.push_str("\"data_b64\":\"");
            line.push_str(&base64::engine::general_purpose::STANDARD.encode(f.data()));
            line.push('"');
        }
    }
    if let Some(lap) = lap {
        line.push_str(&format!(",\"lap\":{lap}"));
    }
    line.push('}');
    line
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// UTC date and time with milliseconds, e.g. `2024-01-01T00:00:00.250Z`.
pub fn utc(t: Timestamp) -> String {
    let ns = t.as_nanos();
    let secs = ns.div_euclid(1_000_000_000);
    let ms = ns.rem_euclid(1_000_000_000) / 1_000_000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", s / 3600, s / 60 % 60, s % 60)
}

/// `n` and a noun, in the plural unless `n` is 1 ("1 checkpoint", "3 frames").
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Human-readable byte count.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Human-readable duration.
pub fn human_duration(d: std::time::Duration) -> String {
    let s = d.as_secs_f64();
    if d.is_zero() {
        "0 s".into()
    } else if s < 1e-6 {
        format!("{} ns", d.as_nanos())
    } else if s < 1e-3 {
        format!("{} µs", sig3(s * 1e6))
    } else if s < 1.0 {
        format!("{} ms", sig3(s * 1e3))
    } else if s < 120.0 {
        format!("{} s", sig3(s))
    } else if s < 7200.0 {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{}h{:02}m", d.as_secs() / 3600, d.as_secs() / 60 % 60)
    }
}

/// A positive number with 3 significant digits (`1.23`, `12.3`, `123`, `1234`).
pub fn sig3(x: f64) -> String {
    if !x.is_finite() || x <= 0.0 {
        return format!("{x}");
    }
    let digits = x.log10().floor() as i32 + 1;
    let decimals = (3 - digits).max(0) as usize;
    let text = format!("{x:.decimals$}");
    // Rounding may add a digit (9.996 → "10.00"): format again with one decimal fewer.
    let whole = text.split('.').next().map_or(0, str::len) as i32;
    if whole > digits && decimals > 0 {
        return format!("{x:.prec$}", prec = decimals - 1);
    }
    text
}

/// A rate of `frames` over `span` (frames − 1 intervals), in Hz / kHz / MHz with 3 significant
/// digits; "-" when it has no meaning (fewer than two frames, or all at one instant).
pub fn human_rate(frames: u64, span: std::time::Duration) -> String {
    let secs = span.as_secs_f64();
    if frames < 2 || secs <= 0.0 {
        return "-".into();
    }
    let hz = (frames - 1) as f64 / secs;
    if hz >= 1e6 {
        format!("{} MHz", sig3(hz / 1e6))
    } else if hz >= 1e3 {
        format!("{} kHz", sig3(hz / 1e3))
    } else if hz >= 0.01 {
        format!("{} Hz", sig3(hz))
    } else {
        format!("1 per {}", human_duration(std::time::Duration::from_secs_f64(1.0 / hz)))
    }
}

/// A value cut to `max` characters for a text view, saying how long it was.
pub fn cut(value: &str, max: usize) -> String {
    let n = value.chars().count();
    let flat: String = value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if n <= max {
        flat
    } else {
        format!("{}… ({} chars; --json shows all)", flat.chars().take(max).collect::<String>(), n)
    }
}

/// A short preview of a payload: JSON or UTF-8 text as is, otherwise hex.
pub fn preview(data: &[u8], max: usize) -> String {
    match std::str::from_utf8(data) {
        Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => {
            let flat: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            if flat.chars().count() > max {
                format!("{}…", flat.chars().take(max).collect::<String>())
            } else {
                flat
            }
        }
        _ => {
            let n = data.len().min(max / 2);
            let hex: String = data[..n].iter().map(|b| format!("{b:02x}")).collect();
            if n < data.len() {
                format!("0x{hex}…")
            } else {
                format!("0x{hex}")
            }
        }
    }
}

/// A time on the command line: seconds since the epoch, read as the exact decimal they are
/// written as, or an ISO 8601 date-time (`2024-01-01T00:00:10Z`).
pub fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).map_err(|e| e.to_string())
}

/// A non-negative duration in seconds, read exactly (`0.005`).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    recfile::time::parse_duration(s).map_err(|e| e.to_string())
}

/// Signed seconds read exactly, as nanoseconds (`--seek -2`).
pub fn parse_offset_nanos(s: &str) -> Result<i64, String> {
    recfile::time::parse_signed_secs_nanos(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_dates() {
        assert_eq!(utc(Timestamp::from_nanos(1_704_067_200_250_000_000)), "2024-01-01T00:00:00.250Z");
        assert_eq!(utc(Timestamp::from_nanos(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(Timestamp::from_nanos(-1_000_000)), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn previews() {
        assert_eq!(preview(b"hello", 10), "hello");
        assert_eq!(preview(&[0, 255], 10), "0x00ff");
        assert_eq!(preview(b"abcdefghijkl", 4), "abcd…");
    }
}
