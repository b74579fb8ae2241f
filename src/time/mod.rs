//! Timestamps: integer nanoseconds since the Unix epoch.

use crate::error::{Error, Result};
use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod text;
pub use text::{parse_duration, parse_signed_secs_nanos};

/// A point in time: signed nanoseconds since the Unix epoch (UTC).
///
/// Integers, not floats: an `f64` of seconds since 1970 has a resolution of about 240 ns today,
/// which cannot tell apart frames of a fast sensor.
///
/// ```
/// use recfile::Timestamp;
/// use std::time::Duration;
/// let t = Timestamp::from_secs_f64(1704067200.25).unwrap();
/// assert_eq!(t.as_nanos(), 1_704_067_200_250_000_000);
/// assert_eq!((t + Duration::from_millis(750)).as_secs_f64(), 1704067201.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);
    /// The earliest representable time.
    pub const MIN: Timestamp = Timestamp(i64::MIN);
    /// The latest representable time.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// From nanoseconds since the epoch.
    pub const fn from_nanos(nanos: i64) -> Timestamp {
        Timestamp(nanos)
    }

    /// From seconds since the epoch as a float: the float's shortest decimal representation
    /// (what `repr` prints in Python, `{}` in Rust) read as an exact decimal, so
    /// `1704067200.01` gives exactly `1704067200010000000` ns, not the `...009999990` that the
    /// nearest binary value would. Errors on NaN, infinity or a value out of the i64 nanosecond
    /// range.
    pub fn from_secs_f64(secs: f64) -> Result<Timestamp> {
        if !secs.is_finite() {
            return Err(Error::InvalidArgument(format!("timestamp {secs} is not a finite number")));
        }
        if secs.abs() > 9.3e9 {
            return Err(Error::InvalidArgument(format!("timestamp {secs} s is out of range")));
        }
        // The shortest repr, formatted on the stack (bindings convert every timestamp this
        // way); a tiny value with hundreds of zeros does not fit and takes the heap.
        let mut text = StackText { buf: [0; 64], len: 0 };
        if std::fmt::Write::write_fmt(&mut text, format_args!("{secs}")).is_ok() {
            if let Ok(s) = std::str::from_utf8(&text.buf[..text.len]) {
                return Timestamp::parse_secs(s);
            }
        }
        Timestamp::parse_secs(&format!("{secs}"))
    }

    /// The current wall-clock time.
    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    /// From a `SystemTime` (saturating outside the representable range).
    pub fn from_system_time(t: SystemTime) -> Timestamp {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(i64::try_from(e.duration().as_nanos()).map(|n| -n).unwrap_or(i64::MIN)),
        }
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }
    /// Seconds since the epoch as the `f64` nearest to the exact decimal value, so that
    /// [`Timestamp::from_secs_f64`] of it gives this timestamp back when it came from a float
    /// (`1704067200.01` round-trips). Formats the decimal on the stack and reads it back: no
    /// allocation, correctly rounded.
    pub fn as_secs_f64(self) -> f64 {
        let n = i128::from(self.0);
        let (whole, frac) = (n.unsigned_abs() / 1_000_000_000, n.unsigned_abs() % 1_000_000_000);
        let mut text = StackText { buf: [0; 64], len: 0 };
        let sign = if n < 0 { "-" } else { "" };
        if std::fmt::Write::write_fmt(&mut text, format_args!("{sign}{whole}.{frac:09}")).is_ok() {
            if let Some(v) = std::str::from_utf8(&text.buf[..text.len]).ok().and_then(|t| t.parse().ok()) {
                return v;
            }
        }
        n as f64 / 1e9
    }

    /// As a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_nanos(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_nanos(self.0.unsigned_abs())
        }
    }

    /// The non-negative distance between two timestamps.
    pub fn abs_diff(self, other: Timestamp) -> Duration {
        Duration::from_nanos(self.0.abs_diff(other.0))
    }

    /// `self - earlier` as a Duration, or `None` when `earlier` is later than `self`.
    pub fn duration_since(self, earlier: Timestamp) -> Option<Duration> {
        if self.0 >= earlier.0 {
            Some(Duration::from_nanos(self.0.abs_diff(earlier.0)))
        } else {
            None
        }
    }

    /// Adds a duration, saturating at the representable range.
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_nanos(d)))
    }

    /// Subtracts a duration, saturating at the representable range.
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(duration_nanos(d)))
    }
}

/// Duration in nanoseconds, saturating at i64::MAX.
pub(crate) fn duration_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturates at [`Timestamp::MAX`] rather than overflowing.
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturates at [`Timestamp::MIN`] rather than overflowing.
    fn sub(self, d: Duration) -> Timestamp {
        self.saturating_sub(d)
    }
}

impl AddAssign<Duration> for Timestamp {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl SubAssign<Duration> for Timestamp {
    fn sub_assign(&mut self, d: Duration) {
        *self = *self - d;
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;
    /// The duration from `rhs` to `self`; zero when `rhs` is later (use
    /// [`Timestamp::duration_since`] to tell the difference).
    fn sub(self, rhs: Timestamp) -> Duration {
        self.duration_since(rhs).unwrap_or(Duration::ZERO)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        Timestamp::from_system_time(t)
    }
}

impl fmt::Display for Timestamp {
    /// Seconds since the epoch with nanosecond digits, e.g. `1704067200.250000000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0.div_euclid(1_000_000_000);
        let frac = self.0.rem_euclid(1_000_000_000);
        write!(f, "{whole}.{frac:09}")
    }
}

/// A short text formatted without allocating.
struct StackText {
    buf: [u8; 64],
    len: usize,
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_secs_f64_is_the_nearest_double_of_the_exact_decimal() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let t = Timestamp::from_nanos((x >> 1) as i64 * if x & 1 == 0 { 1 } else { -1 });
            let want: f64 = t.to_decimal_secs().parse().unwrap();
            assert_eq!(t.as_secs_f64(), want, "{t:?}");
        }
        for secs in [1704067200.01, 0.1, -1.5, 1e-9, 1704067200.123456] {
            assert_eq!(Timestamp::from_secs_f64(secs).unwrap().as_secs_f64(), secs);
        }
    }

    #[test]
    fn secs_round_trip_exactly() {
        for s in [1704067200.25, 0.0, -1.5, 1704067200.123456, 1e9 + 0.000001] {
            let t = Timestamp::from_secs_f64(s).unwrap();
            assert_eq!(t.as_secs_f64(), s, "{s}");
        }
        assert_eq!(Timestamp::from_secs_f64(-1.5).unwrap().as_nanos(), -1_500_000_000);
    }

    #[test]
    fn floats_convert_through_their_shortest_decimal() {
        assert_eq!(Timestamp::from_secs_f64(1704067200.01).unwrap().as_nanos(), 1_704_067_200_010_000_000);
        assert_eq!(Timestamp::from_secs_f64(0.1).unwrap().as_nanos(), 100_000_000);
        assert_eq!(Timestamp::from_secs_f64(1e-7).unwrap().as_nanos(), 100);
        assert_eq!(Timestamp::from_secs_f64(-0.0).unwrap().as_nanos(), 0);
    }

    #[test]
    fn rejects_nan_and_infinity() {
        assert!(Timestamp::from_secs_f64(f64::NAN).is_err());
        assert!(Timestamp::from_secs_f64(f64::INFINITY).is_err());
        assert!(Timestamp::from_secs_f64(f64::NEG_INFINITY).is_err());
        assert!(Timestamp::from_secs_f64(1e300).is_err());
    }

    #[test]
    fn duration_arithmetic_saturates() {
        let t = Timestamp::from_nanos(10);
        assert_eq!((t + Duration::from_nanos(5)).as_nanos(), 15);
        assert_eq!((t - Duration::from_nanos(15)).as_nanos(), -5);
        assert_eq!(Timestamp::MAX + Duration::from_secs(1), Timestamp::MAX);
        assert_eq!(Timestamp::from_nanos(15) - t, Duration::from_nanos(5));
        assert_eq!(t.duration_since(Timestamp::from_nanos(20)), None);
        assert_eq!(Timestamp::from_nanos(-1).to_string(), "-1.999999999");
    }
}
