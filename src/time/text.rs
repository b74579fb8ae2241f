//! Times and durations written as text: decimal seconds read exactly (no float in between) and
//! ISO 8601 / RFC 3339 UTC date-times. Pure functions, no I/O.

use super::Timestamp;
use crate::error::{Error, Result};
use std::time::Duration;

const NANOS_PER_SEC: i128 = 1_000_000_000;

fn bad(text: &str, why: &str) -> Error {
    Error::InvalidArgument(format!("{text:?} {why}"))
}

/// Decimal seconds (`-12.5`, `1704067200.01`, `1.7e9`) as exact nanoseconds: up to 9 fractional
/// digits are exact, further digits round half to even. Errors outside the i64 range.
pub(crate) fn parse_decimal_nanos(text: &str) -> Result<i64> {
    let s = text.trim();
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => {
            let e: i64 = body[i + 1..].parse().map_err(|_| bad(text, "is not a number of seconds"))?;
            (&body[..i], e)
        }
        None => (body, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(bad(text, "is not a number of seconds"));
    }
    // The digits d1 d2 … dn with the decimal point after `point` of them; nanoseconds are the
    // digits with the point moved 9 places right.
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).map(|b| b - b'0').collect();
    let first_nonzero = digits.iter().position(|&d| d != 0);
    let Some(first_nonzero) = first_nonzero else { return Ok(0) };
    let point = int_part.len() as i64 + exponent.clamp(-100_000, 100_000) + 9;
    let digits = &digits[first_nonzero..];
    let point = point - first_nonzero as i64;
    if point > 20 {
        return Err(bad(text, "seconds is out of the range of timestamps (about ±292 years from 1970)"));
    }
    let mut whole: i128 = 0;
    for i in 0..point.max(0) as usize {
        whole = whole * 10 + i128::from(digits.get(i).copied().unwrap_or(0));
    }
    // Round half to even on the digits after the nanosecond.
    let rest: &[u8] = if point < 0 { digits } else { digits.get(point as usize..).unwrap_or(&[]) };
    let leading_zeros = if point < 0 { (-point) as usize } else { 0 };
    if leading_zeros == 0 && !rest.is_empty() {
        let first = rest[0];
        let tail_nonzero = rest[1..].iter().any(|&d| d != 0);
        if first > 5 || (first == 5 && (tail_nonzero || whole % 2 == 1)) {
            whole += 1;
        }
    }
    let signed = if negative { -whole } else { whole };
    i64::try_from(signed).map_err(|_| bad(text, "seconds is out of the range of timestamps (about ±292 years from 1970)"))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// An ISO 8601 / RFC 3339 date-time: `2024-01-01T00:00:10Z`, `2024-01-01T00:00:10.250+02:00`,
/// `2024-01-01 00:00:10` (no zone: UTC), or a date alone (`2024-01-01`, midnight UTC).
pub(crate) fn parse_iso8601_nanos(text: &str) -> Result<i64> {
    let s = text.trim();
    let err = || bad(text, "is not an ISO 8601 date-time (expected e.g. 2024-01-01T00:00:10Z)");
    let num = |p: &str| -> Result<i64> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        p.parse().map_err(|_| err())
    };
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(err());
    }
    let (y, mo, d) = (num(&s[0..4])?, num(&s[5..7])?, num(&s[8..10])?);
    let month_days = [31, if is_leap(y) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[(mo - 1) as usize] {
        return Err(bad(text, "is not a valid calendar date"));
    }
    let mut nanos = i128::from(days_from_civil(y, mo as u32, d as u32)) * 86_400 * NANOS_PER_SEC;
    let rest = &s[10..];
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(err)?;
        let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
        let (clock, zone) = rest.split_at(zone_at);
        let cb = clock.as_bytes();
        if cb.len() < 5 || cb[2] != b':' {
            return Err(err());
        }
        let h = num(&clock[0..2])?;
        let mi = num(&clock[3..5])?;
        let (sec, frac) = if cb.len() > 5 {
            if cb[5] != b':' || cb.len() < 8 {
                return Err(err());
            }
            let sec = num(&clock[6..8])?;
            let frac = match &clock[8..] {
                "" => 0,
                f => {
                    let f = f.strip_prefix(['.', ',']).ok_or_else(err)?;
                    i128::from(parse_decimal_nanos(&format!("0.{f}")).map_err(|_| err())?)
                }
            };
            (sec, frac)
        } else {
            (0, 0)
        };
        if h > 23 || mi > 59 || sec > 60 {
            return Err(bad(text, "has an hour, minute or second out of range"));
        }
        nanos += i128::from(h * 3600 + mi * 60 + sec) * NANOS_PER_SEC + frac;
        match zone {
            "" | "Z" | "z" => {}
            z => {
                let sign = if z.starts_with('-') { -1 } else { 1 };
                let z = &z[1..];
                let (zh, zm) = match z.len() {
                    2 => (num(z)?, 0),
                    4 => (num(&z[0..2])?, num(&z[2..4])?),
                    5 if z.as_bytes()[2] == b':' => (num(&z[0..2])?, num(&z[3..5])?),
                    _ => return Err(err()),
                };
                if zh > 23 || zm > 59 {
                    return Err(err());
                }
                nanos -= i128::from(sign * (zh * 3600 + zm * 60)) * NANOS_PER_SEC;
            }
        }
    }
    i64::try_from(nanos).map_err(|_| bad(text, "is out of the range of timestamps (about ±292 years from 1970)"))
}

/// Whether `text` looks like a date (`YYYY-MM-…`) rather than a number of seconds.
fn looks_like_date(text: &str) -> bool {
    let b = text.trim().as_bytes();
    b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

impl Timestamp {
    /// Parses a time written as decimal seconds since the epoch (`1704067200.01`, read as the
    /// exact decimal it is: up to 9 fractional digits exact, more round half to even) or as an
    /// ISO 8601 UTC date-time (`2024-01-01T00:00:10Z`, the form `rec info` prints).
    ///
    /// ```
    /// use recfile::Timestamp;
    /// assert_eq!(Timestamp::parse("1704067200.01")?.as_nanos(), 1_704_067_200_010_000_000);
    /// assert_eq!(Timestamp::parse("2024-01-01T00:00:10Z")?.as_nanos(), 1_704_067_210_000_000_000);
    /// # Ok::<(), recfile::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Timestamp> {
        if looks_like_date(text) {
            parse_iso8601_nanos(text).map(Timestamp::from_nanos)
        } else {
            Timestamp::parse_secs(text)
        }
    }

    /// Parses decimal seconds since the epoch exactly (see [`Timestamp::parse`]); exponents
    /// (`1.7e9`) are allowed.
    pub fn parse_secs(text: &str) -> Result<Timestamp> {
        parse_decimal_nanos(text).map(Timestamp::from_nanos)
    }

    /// The exact decimal seconds of this timestamp, shortest form with at least one fractional
    /// digit: `1704067200.01`, `-1.5`, `0.0`. [`Timestamp::parse_secs`] reads it back exactly.
    pub fn to_decimal_secs(self) -> String {
        let n = i128::from(self.as_nanos());
        let sign = if n < 0 { "-" } else { "" };
        let a = n.unsigned_abs();
        let whole = a / NANOS_PER_SEC as u128;
        let frac = a % NANOS_PER_SEC as u128;
        let mut f = format!("{frac:09}");
        while f.len() > 1 && f.ends_with('0') {
            f.pop();
        }
        format!("{sign}{whole}.{f}")
    }
}

/// Parses a non-negative duration in decimal seconds exactly (`0.005`, `1e-3`, `2.5`).
///
/// ```
/// assert_eq!(recfile::time::parse_duration("0.1")?, std::time::Duration::from_millis(100));
/// # Ok::<(), recfile::Error>(())
/// ```
pub fn parse_duration(text: &str) -> Result<Duration> {
    let n = parse_decimal_nanos(text)?;
    if n < 0 {
        return Err(bad(text, "is negative (a duration is at least 0 s)"));
    }
    Ok(Duration::from_nanos(n as u64))
}

/// Parses signed decimal seconds exactly as nanoseconds (an offset such as `--seek -2`).
pub fn parse_signed_secs_nanos(text: &str) -> Result<i64> {
    parse_decimal_nanos(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(s: &str) -> i64 {
        parse_decimal_nanos(s).unwrap()
    }

    #[test]
    fn decimal_seconds_are_exact() {
        assert_eq!(ns("1704067200.01"), 1_704_067_200_010_000_000);
        assert_eq!(ns("1704067200.123456789"), 1_704_067_200_123_456_789);
        assert_eq!(ns("-1.5"), -1_500_000_000);
        assert_eq!(ns("0"), 0);
        assert_eq!(ns("-0.0"), 0);
        assert_eq!(ns(".5"), 500_000_000);
        assert_eq!(ns("5."), 5_000_000_000);
        assert_eq!(ns("1.7e9"), 1_700_000_000_000_000_000);
        assert_eq!(ns("1E-9"), 1);
        assert_eq!(ns("25e-2"), 250_000_000);
        assert_eq!(ns("000001.000000001"), 1_000_000_001);
        assert_eq!(ns("9223372036.854775807"), i64::MAX);
        assert_eq!(ns("-9223372036.854775808"), i64::MIN);
    }

    #[test]
    fn extra_digits_round_half_to_even() {
        assert_eq!(ns("0.0000000005"), 0);
        assert_eq!(ns("0.0000000015"), 2);
        assert_eq!(ns("0.0000000025"), 2);
        assert_eq!(ns("0.00000000250001"), 3);
        assert_eq!(ns("0.0000000024999"), 2);
        assert_eq!(ns("0.00000000051"), 1);
        assert_eq!(ns("-0.0000000015"), -2);
        assert_eq!(ns("1e-10"), 0);
        assert_eq!(ns("6e-10"), 1);
        assert_eq!(ns("0.000000000000000000006"), 0);
    }

    #[test]
    fn bad_seconds_are_errors() {
        for s in ["", "-", ".", "1.2.3", "abc", "1e", "0x10", "NaN", "inf", "1 2", "9223372037", "-9223372036.854775809", "1e30"] {
            assert!(parse_decimal_nanos(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn decimal_round_trip_over_a_sweep() {
        let mut x: i64 = 0x1234_5678_9abc;
        for _ in 0..10_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let t = Timestamp::from_nanos(x);
            assert_eq!(Timestamp::parse_secs(&t.to_decimal_secs()).unwrap(), t, "{x}");
        }
        assert_eq!(Timestamp::from_nanos(1_704_067_200_010_000_000).to_decimal_secs(), "1704067200.01");
        assert_eq!(Timestamp::from_nanos(-1).to_decimal_secs(), "-0.000000001");
        assert_eq!(Timestamp::from_nanos(0).to_decimal_secs(), "0.0");
        assert_eq!(Timestamp::MIN.to_decimal_secs(), "-9223372036.854775808");
    }

    #[test]
    fn iso8601() {
        let p = |s: &str| parse_iso8601_nanos(s).unwrap();
        assert_eq!(p("2024-01-01T00:00:10Z"), 1_704_067_210_000_000_000);
        assert_eq!(p("2024-01-01T00:00:10.250Z"), 1_704_067_210_250_000_000);
        assert_eq!(p("2024-01-01T02:00:10+02:00"), 1_704_067_210_000_000_000);
        assert_eq!(p("2023-12-31T19:00:10-0500"), 1_704_067_210_000_000_000);
        assert_eq!(p("2024-01-01 00:00:10"), 1_704_067_210_000_000_000);
        assert_eq!(p("2024-01-01"), 1_704_067_200_000_000_000);
        assert_eq!(p("1970-01-01T00:00:00.000000001Z"), 1);
        assert_eq!(p("1969-12-31T23:59:59.999Z"), -1_000_000);
        assert_eq!(p("2024-02-29T00:00:00Z"), 1_709_164_800_000_000_000);
        for s in ["2023-02-29T00:00:00Z", "2024-13-01", "2024-01-01T25:00:00Z", "2024-01-01X", "2024-01-01T00:00:00+1", "2024-1-01"] {
            assert!(parse_iso8601_nanos(s).is_err(), "{s}");
        }
        assert_eq!(Timestamp::parse("2024-01-01T00:00:10Z").unwrap(), Timestamp::parse("1704067210").unwrap());
    }

    #[test]
    fn iso8601_agrees_with_a_day_count_sweep() {
        // Every day from 1900 to 2100 against a plain count of days.
        let mut days = days_from_civil(1900, 1, 1);
        for y in 1900..2100 {
            for m in 1..=12u32 {
                let len = [31, if is_leap(y) { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][(m - 1) as usize];
                for d in 1..=len {
                    let t = parse_iso8601_nanos(&format!("{y:04}-{m:02}-{d:02}T00:00:00Z")).unwrap();
                    assert_eq!(t, days * 86_400 * 1_000_000_000);
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0.005").unwrap(), Duration::from_millis(5));
        assert!(parse_duration("-1").is_err());
    }
}
