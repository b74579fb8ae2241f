//! Times and durations from Python values, converted the way the CLI converts text.
//!
//! A float is read through its shortest repr as an exact decimal (`1704067200.01` is
//! `1704067200010000000` ns, not the nearest binary value's `...009999990`); an int is whole
//! seconds; a str takes what the CLI's time options take (seconds, or ISO 8601 for a time).

use crate::errors::{type_error, value_error, PyResultExt};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};
use recfile::Timestamp;
use std::time::Duration;

/// A timestamp in seconds (float, int or str).
pub fn timestamp(value: &Bound<'_, PyAny>, what: &str) -> PyResult<Timestamp> {
    if value.is_instance_of::<PyBool>() {
        return Err(type_error(format!("{what} must be a number of seconds, not bool")));
    }
    if value.is_instance_of::<PyInt>() {
        let secs: i128 = value.extract().map_err(|_| value_error(format!("{what} is out of range")))?;
        let ns = secs.checked_mul(1_000_000_000).and_then(|ns| i64::try_from(ns).ok());
        return ns.map(Timestamp::from_nanos).ok_or_else(|| value_error(format!("{what} {secs} s is outside the i64 nanosecond range")));
    }
    if value.is_instance_of::<PyFloat>() {
        let secs: f64 = value.extract()?;
        return Timestamp::from_secs_f64(secs).map_err(|e| value_error(format!("{what}: {}", strip(e))));
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Timestamp::parse(s.to_str()?).map_err(|e| value_error(format!("{what}: {}", strip(e))));
    }
    // Other numbers (decimal.Decimal, numpy floats): through their str, which is exact.
    if value.hasattr("__float__")? {
        let text = value.str()?.to_string();
        return Timestamp::parse(&text).map_err(|e| value_error(format!("{what}: {}", strip(e))));
    }
    Err(type_error(format!("{what} must be a number of seconds, not {}", value.get_type().name()?)))
}

/// A timestamp from `ts` (seconds) or `ts_ns` (int nanoseconds): exactly one of them, or
/// neither when `default` gives one.
pub fn ts_or_ns(ts: Option<&Bound<'_, PyAny>>, ts_ns: Option<i64>, what: &str) -> PyResult<Option<Timestamp>> {
    match (ts, ts_ns) {
        (Some(_), Some(_)) => Err(value_error(format!("give {what} or {what}_ns, not both"))),
        (Some(t), None) if t.is_none() => Ok(None),
        (Some(t), None) => timestamp(t, what).map(Some),
        (None, Some(ns)) => Ok(Some(Timestamp::from_nanos(ns))),
        (None, None) => Ok(None),
    }
}

/// A non-negative duration in seconds (float, int or str), or None.
pub fn duration(value: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<Option<Duration>> {
    let Some(value) = value else { return Ok(None) };
    if value.is_none() {
        return Ok(None);
    }
    if value.is_instance_of::<PyBool>() {
        return Err(type_error(format!("{what} must be a number of seconds, not bool")));
    }
    let text = if value.is_instance_of::<PyFloat>() {
        let f: f64 = value.extract()?;
        if !f.is_finite() {
            return Err(value_error(format!("{what} must be a finite number of seconds, got {f}")));
        }
        format!("{f}")
    } else if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyString>() || value.hasattr("__float__")? {
        value.str()?.to_string()
    } else {
        return Err(type_error(format!("{what} must be a number of seconds, not {}", value.get_type().name()?)));
    };
    let text = text.trim();
    if text.starts_with('-') && text.trim_start_matches(['-', '0', '.']).is_empty() {
        return Ok(Some(Duration::ZERO));
    }
    if text.starts_with('-') {
        return Err(value_error(format!("{what} must not be negative, got {text}")));
    }
    recfile::time::parse_duration(text).py().map(Some).map_err(|e| value_error(format!("{what}: {e}")))
}

/// A library error's message without its "invalid argument: " prefix.
fn strip(e: recfile::Error) -> String {
    match e {
        recfile::Error::InvalidArgument(m) => m,
        other => other.to_string(),
    }
}
