//! Playback statistics: frames delivered and dropped, and lateness percentiles from a compact
//! log-linear histogram (constant memory, under 7 % relative error).

use std::time::Duration;

const SUB: usize = 16;
const BUCKETS: usize = 64 * SUB;

/// A histogram of lateness in nanoseconds.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: vec![0; BUCKETS], total: 0, max: 0 }
    }
}

fn bucket(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let log = 63 - v.leading_zeros() as usize; // ≥ 4
    let sub = ((v >> (log - 4)) & (SUB as u64 - 1)) as usize;
    (log - 3) * SUB + sub
}

fn bucket_low(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let log = b / SUB + 3;
    let sub = (b % SUB) as u64;
    (1u64 << log) | (sub << (log - 4))
}

impl Histogram {
    pub fn record(&mut self, ns: u64) {
        self.counts[bucket(ns).min(BUCKETS - 1)] += 1;
        self.total += 1;
        self.max = self.max.max(ns);
    }

    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_low(b).min(self.max);
            }
        }
        self.max
    }
}

/// What a realtime playback did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PlaybackStats {
    /// Frames delivered.
    pub delivered: u64,
    /// Frames skipped because they were too late (`LatePolicy::Drop`).
    pub dropped: u64,
    /// Times the schedule was shifted (`LatePolicy::Reanchor`).
    pub reanchors: u64,
    /// Median lateness of delivered frames.
    pub lateness_p50: Duration,
    /// 99th percentile lateness.
    pub lateness_p99: Duration,
    /// Largest lateness.
    pub lateness_max: Duration,
}

impl PlaybackStats {
    pub(crate) fn from_parts(delivered: u64, dropped: u64, reanchors: u64, h: &Histogram) -> Self {
        PlaybackStats {
            delivered,
            dropped,
            reanchors,
            lateness_p50: Duration::from_nanos(h.percentile(50.0)),
            lateness_p99: Duration::from_nanos(h.percentile(99.0)),
            lateness_max: Duration::from_nanos(h.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_the_bucket_error() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.percentile(50.0) as f64;
        assert!((p50 - 5_000_000.0).abs() / 5_000_000.0 < 0.07, "{p50}");
        let p99 = h.percentile(99.0) as f64;
        assert!((p99 - 9_900_000.0).abs() / 9_900_000.0 < 0.07, "{p99}");
        assert_eq!(h.max, 10_000_000);
        for v in [0u64, 1, 15, 16, 17, 1 << 40, u64::MAX] {
            assert!(bucket_low(bucket(v)) <= v);
        }
    }
}
