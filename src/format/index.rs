//! Index entries and the searches over sorted runs of them.
//!
//! An entry is 16 bytes: timestamp i64 LE, record offset u64 LE. A run is a byte slice of
//! entries sorted by (timestamp, offset); searches read it in place, without decoding or
//! allocating.

use super::bytes::{le_i64, le_u64};

/// Length of one index entry.
pub const ENTRY_LEN: usize = 16;

/// One index entry: a frame's timestamp and its record's file offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexEntry {
    /// Timestamp, ns since the epoch.
    pub ts: i64,
    /// Offset of the frame record.
    pub offset: u64,
}

impl IndexEntry {
    /// Encodes the 16 bytes.
    pub fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[0..8].copy_from_slice(&self.ts.to_le_bytes());
        b[8..16].copy_from_slice(&self.offset.to_le_bytes());
        b
    }
    /// Decodes 16 bytes the caller has bounds-checked.
    #[inline]
    pub fn decode(b: &[u8]) -> IndexEntry {
        IndexEntry { ts: le_i64(b, 0), offset: le_u64(b, 8) }
    }
}

/// A sorted array of entries, read in place.
#[derive(Clone, Copy, Debug)]
pub struct EntrySlice<'a> {
    bytes: &'a [u8],
}

impl<'a> EntrySlice<'a> {
    /// Wraps bytes whose length is a multiple of [`ENTRY_LEN`] (extra bytes are ignored).
    pub fn new(bytes: &'a [u8]) -> Self {
        let n = bytes.len() / ENTRY_LEN * ENTRY_LEN;
        EntrySlice { bytes: &bytes[..n] }
    }
    /// Number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.bytes.len() / ENTRY_LEN
    }
    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    /// Entry `i` (caller keeps `i < len`).
    #[inline]
    pub fn get(&self, i: usize) -> IndexEntry {
        IndexEntry::decode(&self.bytes[i * ENTRY_LEN..(i + 1) * ENTRY_LEN])
    }
    /// Timestamp of entry `i`.
    #[inline]
    pub fn ts(&self, i: usize) -> i64 {
        le_i64(self.bytes, i * ENTRY_LEN)
    }
    /// Number of entries with timestamp < `t` (the first position whose timestamp is ≥ `t`).
    #[inline]
    pub fn lower_bound(&self, t: i64) -> usize {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.ts(mid) < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
    /// Number of entries with timestamp ≤ `t`.
    #[inline]
    pub fn upper_bound(&self, t: i64) -> usize {
        let (mut lo, mut hi) = (0usize, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.ts(mid) <= t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
    /// The first position whose timestamp is not `below`, searching outwards from `guess`
    /// ([`partition_from_guess`]).
    #[inline]
    pub fn partition_from(&self, guess: usize, below: impl Fn(i64) -> bool) -> usize {
        partition_from_guess(self.len(), guess, |i| below(self.ts(i)))
    }

    /// Whether entries are sorted by (timestamp, offset).
    pub fn is_sorted(&self) -> bool {
        (1..self.len()).all(|i| self.get(i - 1) <= self.get(i))
    }
}

/// The first of `n` positions where `below_at` is false (it holds for a prefix), searching
/// outwards from `guess` (exponential search, then binary search inside the bracket found).
/// With a good guess, as interpolation gives for evenly spaced timestamps, it touches one or
/// two cache lines instead of the ~log2(n) scattered ones of a plain binary search; with a bad
/// one it costs at most about twice as many probes.
#[inline]
pub fn partition_from_guess(n: usize, guess: usize, below_at: impl Fn(usize) -> bool) -> usize {
    if n == 0 {
        return 0;
    }
    let g = guess.min(n - 1);
    let (mut lo, mut hi);
    if below_at(g) {
        lo = g + 1;
        let mut step = 1usize;
        loop {
            let probe = g.saturating_add(step);
            if probe >= n {
                hi = n;
                break;
            }
            if !below_at(probe) {
                hi = probe;
                break;
            }
            lo = probe + 1;
            step = step.saturating_mul(2);
        }
    } else {
        hi = g;
        let mut step = 1usize;
        loop {
            if step > g {
                lo = 0;
                break;
            }
            let probe = g - step;
            if below_at(probe) {
                lo = probe + 1;
                break;
            }
            hi = probe;
            step = step.saturating_mul(2);
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below_at(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Encodes entries into bytes.
pub fn encode_entries(entries: &[IndexEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * ENTRY_LEN);
    for e in entries {
        out.extend_from_slice(&e.encode());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let e: Vec<IndexEntry> = [1, 3, 3, 5].iter().enumerate().map(|(i, &t)| IndexEntry { ts: t, offset: i as u64 }).collect();
        let b = encode_entries(&e);
        let s = EntrySlice::new(&b);
        assert_eq!(s.len(), 4);
        assert_eq!(s.lower_bound(3), 1);
        assert_eq!(s.upper_bound(3), 3);
        assert_eq!(s.lower_bound(0), 0);
        assert_eq!(s.upper_bound(9), 4);
        assert!(s.is_sorted());
        for guess in 0..6 {
            for t in -1..7 {
                assert_eq!(s.partition_from(guess, |x| x < t), s.lower_bound(t), "lower {t} from {guess}");
                assert_eq!(s.partition_from(guess, |x| x <= t), s.upper_bound(t), "upper {t} from {guess}");
            }
        }
    }
}
