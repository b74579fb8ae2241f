//! A stream's runs as lookups see them: built in memory, or read in place from a finished
//! session's run directory one chunk at a time (format 1.1's Index sample, spec §5.9), so that
//! opening a stream costs the same for ten frames as for ten million.

use super::layout::{check_entries_in, Run, RunLoc};
use crate::format::index::{partition_from_guess, IndexEntry};
use crate::format::record::{RunRef, SampleChunk, RUN_LEN};
use std::sync::{Arc, OnceLock};

/// A chunk's runs, and whether they are the directory's (false: it was damaged).
type ParsedChunk = (Box<[Run]>, bool);

/// A run directory in the file, described by its sample: the chunks' first timestamps and
/// entry counts (checked with the sample's CRC at open) and, per chunk, its runs, read and
/// checked against the chunk's CRC on first use.
#[derive(Debug)]
pub(crate) struct SampledRuns {
    /// Absolute offset of the directory.
    offset: u64,
    /// Runs in the directory.
    count: u64,
    /// Runs per chunk.
    chunk_runs: u64,
    /// log2 of `chunk_runs` when it is a power of two (as 1.1 writers make it).
    shift: Option<u32>,
    chunks: Box<[SampleChunk]>,
    /// First timestamp of each chunk, contiguous: the level searched first.
    firsts: Box<[i64]>,
    /// Entries in the stream (what the chunks add up to).
    entries: u64,
    /// Per chunk, its runs and whether they are the directory's (false: damaged, see `chunk`).
    parsed: Box<[OnceLock<ParsedChunk>]>,
}

impl SampledRuns {
    /// The directory of `count` runs at `offset`, described by `chunks` of `chunk_runs` runs,
    /// holding `entries` entries in all.
    pub fn new(offset: u64, count: u64, chunk_runs: u32, chunks: Vec<SampleChunk>, entries: u64) -> Self {
        let firsts = chunks.iter().map(|c| c.first_ts).collect();
        let parsed = chunks.iter().map(|_| OnceLock::new()).collect();
        let chunk_runs = u64::from(chunk_runs.max(1));
        let shift = chunk_runs.is_power_of_two().then(|| chunk_runs.trailing_zeros());
        SampledRuns { offset, count, chunk_runs, shift, chunks: chunks.into(), firsts, entries, parsed }
    }

    /// The runs of chunk `c`. A chunk whose bytes fail its CRC, or whose runs do not lie in the
    /// file or do not add up to the entries the sample gives it, becomes one run per directory
    /// slot, each holding one entry that names no frame: every lookup or walk that reaches it
    /// then finds the index damaged and goes on over the stream's scanned frames (spec §7).
    fn chunk(&self, file: &[u8], c: usize) -> &[Run] {
        &self.parsed_chunk(file, c).0
    }

    /// Whether every chunk holds (reads them all: for the checks after damage was met).
    pub fn holds(&self, file: &[u8]) -> bool {
        (0..self.chunks.len()).all(|c| self.parsed_chunk(file, c).1)
    }

    fn parsed_chunk(&self, file: &[u8], c: usize) -> &ParsedChunk {
        self.parsed[c].get_or_init(|| {
            let info = self.chunks[c];
            let first = c as u64 * self.chunk_runs;
            let n = self.chunk_runs.min(self.count - first);
            let until = self.chunks.get(c + 1).map_or(self.entries, |next| next.entries_before);
            match self.read_chunk(file, first, n, info, until) {
                Some(runs) => (runs, true),
                None => {
                    let poison: Arc<[u8]> = IndexEntry { ts: info.first_ts, offset: u64::MAX }.encode().to_vec().into();
                    let runs = (0..n)
                        .map(|i| Run {
                            first_ts: info.first_ts,
                            cum_start: info.entries_before + i,
                            count: 1,
                            loc: RunLoc::Owned(poison.clone()),
                        })
                        .collect();
                    (runs, false)
                }
            }
        })
    }

    fn read_chunk(&self, file: &[u8], first: u64, n: u64, info: SampleChunk, until: u64) -> Option<Box<[Run]>> {
        let start = self.offset.checked_add(first.checked_mul(RUN_LEN as u64)?)?;
        let end = start.checked_add(n.checked_mul(RUN_LEN as u64)?)?;
        let bytes = file.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)?;
        if crc32fast::hash(bytes) != info.crc {
            return None;
        }
        let mut cum = info.entries_before;
        let mut runs = Vec::with_capacity(n as usize);
        for b in bytes.chunks_exact(RUN_LEN) {
            let r = RunRef::decode(b);
            check_entries_in(file, r.entries_offset, r.count).ok()?;
            runs.push(Run { first_ts: r.first_ts, cum_start: cum, count: r.count, loc: RunLoc::File(r.entries_offset) });
            cum = cum.checked_add(r.count)?;
        }
        (cum == until).then(|| runs.into())
    }
}

/// The runs of a stream's index.
#[derive(Clone, Debug)]
pub(crate) enum RunTable {
    /// All runs in memory, with their first timestamps contiguous.
    Built { runs: Arc<[Run]>, firsts: Arc<[i64]> },
    /// A finished session's directory, read in place chunk by chunk.
    Sampled(Arc<SampledRuns>),
}

impl RunTable {
    /// A table over runs in memory.
    pub fn built(runs: Arc<[Run]>) -> Self {
        let firsts = runs.iter().map(|r| r.first_ts).collect();
        RunTable::Built { runs, firsts }
    }

    /// Number of entries in all runs.
    pub fn entries(&self) -> u64 {
        match self {
            RunTable::Built { runs, .. } => runs.last().map_or(0, |r| r.cum_start + r.count),
            // What the sample vouches for (a chunk whose runs do not add up to it is damaged).
            RunTable::Sampled(s) => s.entries,
        }
    }

    /// Run `r`, `None` past the end. `file` is the file the table was read from.
    #[inline]
    pub fn get<'a>(&'a self, file: &[u8], r: usize) -> Option<&'a Run> {
        match self {
            RunTable::Built { runs, .. } => runs.get(r),
            RunTable::Sampled(s) => {
                if r as u64 >= s.count {
                    return None;
                }
                let (c, i) = match s.shift {
                    Some(b) => (r >> b, r & ((1 << b) - 1)),
                    None => (r / s.chunk_runs as usize, r % s.chunk_runs as usize),
                };
                s.chunk(file, c).get(i)
            }
        }
    }

    /// The number of leading runs whose first timestamp is below `t` (at or below it when
    /// `inclusive`): runs are ordered by first timestamp.
    #[inline]
    pub fn count_first(&self, file: &[u8], t: i64, inclusive: bool) -> usize {
        let pred = |f: i64| if inclusive { f <= t } else { f < t };
        match self {
            RunTable::Built { firsts, .. } => firsts.partition_point(|&f| pred(f)),
            RunTable::Sampled(s) => match s.firsts.partition_point(|&f| pred(f)).checked_sub(1) {
                None => 0,
                Some(c) => {
                    // The chunk's runs are searched outwards from where the next chunk's first
                    // timestamp puts them, so that a lookup touches one or two of the chunk's
                    // cache lines instead of a binary search's six.
                    // (The guess uses the sample alone, so the runs' first line is not waited for.)
                    let runs = s.chunk(file, c);
                    let first = s.firsts[c];
                    let guess = match s.firsts.get(c + 1) {
                        Some(&next) if next > first && t > first => {
                            let frac = (t as f64 - first as f64) / (next as f64 - first as f64);
                            (frac * runs.len() as f64) as usize
                        }
                        _ => runs.len() / 2,
                    };
                    c * s.chunk_runs as usize + partition_from_guess(runs.len(), guess, |i| pred(runs[i].first_ts))
                }
            },
        }
    }

    /// The run holding the entry at position `i` of the stream (runs' positions are their
    /// entries before them), `None` past the end.
    pub fn run_at_position(&self, file: &[u8], i: u64) -> Option<usize> {
        let r = match self {
            RunTable::Built { runs, .. } => runs.partition_point(|run| run.cum_start <= i).checked_sub(1)?,
            RunTable::Sampled(s) => {
                let c = s.chunks.partition_point(|c| c.entries_before <= i).checked_sub(1)?;
                c * s.chunk_runs as usize + s.chunk(file, c).partition_point(|run| run.cum_start <= i).checked_sub(1)?
            }
        };
        let run = self.get(file, r)?;
        (i - run.cum_start < run.count).then_some(r)
    }

    /// Every run, in memory (for reads that use every entry anyway).
    pub fn to_runs(&self, file: &[u8]) -> Arc<[Run]> {
        match self {
            RunTable::Built { runs, .. } => runs.clone(),
            RunTable::Sampled(s) => (0..s.chunks.len()).flat_map(|c| s.chunk(file, c).iter().cloned()).collect(),
        }
    }
}
