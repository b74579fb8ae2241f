//! Index records (kind 5): a finished session's per-stream run directories.

use super::*;
use crate::error::{Error, Result};
use crate::format::bytes::{le_i64, le_u16, le_u32, le_u64, ByteReader};
use crate::format::index::{IndexEntry, ENTRY_LEN};

/// Per-stream part of the final index: statistics and where its runs are.
///
/// ```text
/// 0   stream u16, 2 reserved u16, 4 reserved u32
/// 8   def_offset u64        offset of the stream's StreamDef record
/// 16  frames u64
/// 24  payload_bytes u64
/// 32  first_ts i64          smallest timestamp (meaningless when frames = 0)
/// 40  last_ts i64           largest timestamp
/// 48  run_count u64
/// 56  runs_offset u64       absolute offset of the run directory (run_count × 24 bytes)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexStream {
    /// Stream id.
    pub stream: u16,
    /// Offset of its StreamDef record.
    pub def_offset: u64,
    /// Frames in the stream.
    pub frames: u64,
    /// Sum of payload lengths.
    pub payload_bytes: u64,
    /// Smallest timestamp.
    pub first_ts: i64,
    /// Largest timestamp.
    pub last_ts: i64,
    /// Number of runs.
    pub run_count: u64,
    /// Absolute offset of the run directory.
    pub runs_offset: u64,
}

/// Encoded length of an [`IndexStream`].
pub const INDEX_STREAM_LEN: usize = 64;
/// Encoded length of one run directory entry: first_ts i64, count u64, entries_offset u64.
pub const RUN_LEN: usize = 24;

/// One run of a stream's index: a sorted array of entries somewhere in the file. A stream's runs
/// A run of a stream's index with the largest timestamp in it (to tell whether runs overlap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunInfo {
    /// The run.
    pub run: RunRef,
    /// The largest timestamp among its entries.
    pub last_ts: i64,
}

/// are in key order and do not overlap, so together they form one sorted sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunRef {
    /// Timestamp of the run's first entry.
    pub first_ts: i64,
    /// Entries in the run.
    pub count: u64,
    /// Absolute offset of its first entry.
    pub entries_offset: u64,
}

impl RunRef {
    /// Encodes the 24 bytes.
    pub fn encode(&self) -> [u8; RUN_LEN] {
        let mut b = [0u8; RUN_LEN];
        b[0..8].copy_from_slice(&self.first_ts.to_le_bytes());
        b[8..16].copy_from_slice(&self.count.to_le_bytes());
        b[16..24].copy_from_slice(&self.entries_offset.to_le_bytes());
        b
    }
    /// Decodes 24 bytes the caller has bounds-checked.
    pub fn decode(b: &[u8]) -> RunRef {
        RunRef { first_ts: le_i64(b, 0), count: le_u64(b, 8), entries_offset: le_u64(b, 16) }
    }
}

impl IndexStream {
    /// Encodes the 64 bytes.
    pub fn encode(&self) -> [u8; INDEX_STREAM_LEN] {
        let mut b = [0u8; INDEX_STREAM_LEN];
        b[0..2].copy_from_slice(&self.stream.to_le_bytes());
        b[8..16].copy_from_slice(&self.def_offset.to_le_bytes());
        b[16..24].copy_from_slice(&self.frames.to_le_bytes());
        b[24..32].copy_from_slice(&self.payload_bytes.to_le_bytes());
        b[32..40].copy_from_slice(&self.first_ts.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_ts.to_le_bytes());
        b[48..56].copy_from_slice(&self.run_count.to_le_bytes());
        b[56..64].copy_from_slice(&self.runs_offset.to_le_bytes());
        b
    }
    /// Decodes 64 bytes the caller has bounds-checked.
    pub fn decode(b: &[u8]) -> IndexStream {
        IndexStream {
            stream: le_u16(b, 0),
            def_offset: le_u64(b, 8),
            frames: le_u64(b, 16),
            payload_bytes: le_u64(b, 24),
            first_ts: le_i64(b, 32),
            last_ts: le_i64(b, 40),
            run_count: le_u64(b, 48),
            runs_offset: le_u64(b, 56),
        }
    }
}

/// The offset of the session's last Checkpoint, from an Index body (format 1.1's back distance,
/// `None` when the writer did not record it).
pub fn index_last_checkpoint(body: &[u8], offset: u64) -> Option<u64> {
    let back = u64::from(le_u32(body.get(..8)?, 4));
    (back > 0).then(|| offset.checked_sub(back)).flatten()
}

/// Decodes the stream table of an Index record body (record at `offset`). Run directories are
/// checked to lie inside the body; the runs' entry arrays are checked when a stream is opened.
///
/// ```text
/// 0   stream_count u32, 4 last checkpoint back distance u32 (1.1; 0: unknown)
/// 8   stream table          stream_count × 64 bytes (IndexStream)
/// ..  run directories       each run_count × 24 bytes (RunRef)
/// ..  zero padding          to an 8-byte aligned absolute offset
/// ..  inline entry arrays   for streams whose runs point here
/// ```
pub fn decode_index_streams(body: &[u8], offset: u64) -> Result<Vec<IndexStream>> {
    let body_at = offset + RECORD_HEADER_LEN as u64;
    let mut r = ByteReader::new(body, body_at, "index");
    let n = r.u32()? as usize;
    let _ = r.u32()?;
    if n > r.remaining() / INDEX_STREAM_LEN {
        return Err(r.malformed(format!("{n} streams do not fit")));
    }
    let body_end = body_at + body.len() as u64;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let s = IndexStream::decode(r.take(INDEX_STREAM_LEN)?);
        let dir_len = s.run_count.checked_mul(RUN_LEN as u64);
        let fits = dir_len.and_then(|l| s.runs_offset.checked_add(l)).is_some_and(|end| s.runs_offset >= body_at && end <= body_end);
        if !fits {
            return Err(Error::Malformed {
                what: "index",
                offset,
                reason: format!("run directory of stream {} ({} runs at {}) lies outside the record", s.stream, s.run_count, s.runs_offset),
            });
        }
        out.push(s);
    }
    Ok(out)
}

/// Where a stream's index runs come from when encoding an Index record.
#[derive(Clone, Copy, Debug)]
pub enum IndexRuns<'a> {
    /// Runs already in the file (checkpoint blocks), referenced without copying.
    Refs(&'a [RunRef]),
    /// Entries copied into the Index record as one run (already sorted).
    Inline(&'a [IndexEntry]),
}

/// One stream of an Index record to encode: its statistics (the `run_count` and `runs_offset`
/// fields are computed by [`put_index`]) and its runs.
#[derive(Clone, Copy, Debug)]
pub struct IndexStreamInput<'a> {
    /// Statistics of the stream.
    pub stats: IndexStream,
    /// Its runs.
    pub runs: IndexRuns<'a>,
}

/// Starts an Index record that will begin at file offset `record_offset`: record header and
/// stream table. Each stream's `run_count` must be set; its `runs_offset` is computed here. Follow
/// with every stream's run directory in stream order ([`RunRef::encode`]), then
/// [`pad_to_entries`], the inline entry arrays, and [`end_record`]. Returns the record start in
/// `out` and the absolute offset where inline entries begin.
///
/// `last_checkpoint_back` is the distance from this record back to the session's last
/// Checkpoint record (format 1.1; 0 when unknown or farther than 4 GiB).
pub fn begin_index(out: &mut Vec<u8>, record_offset: u64, streams: &mut [IndexStream], last_checkpoint_back: u32) -> (usize, u64) {
    let start = begin_record(out, Kind::Index);
    let body_at = record_offset + RECORD_HEADER_LEN as u64;
    let mut dir_at = body_at + 8 + (streams.len() * INDEX_STREAM_LEN) as u64;
    for s in streams.iter_mut() {
        s.runs_offset = dir_at;
        dir_at += s.run_count * RUN_LEN as u64;
    }
    out.extend_from_slice(&(streams.len() as u32).to_le_bytes());
    out.extend_from_slice(&last_checkpoint_back.to_le_bytes());
    for s in streams.iter() {
        out.extend_from_slice(&s.encode());
    }
    (start, dir_at.next_multiple_of(8))
}

/// Pads the record begun at `start` (file offset `record_offset`) to an 8-byte aligned absolute
/// offset, where entry arrays may follow.
pub fn pad_to_entries(out: &mut Vec<u8>, start: usize, record_offset: u64) {
    let at = record_offset + (out.len() - start) as u64;
    out.extend(std::iter::repeat_n(0u8, (at.next_multiple_of(8) - at) as usize));
}

/// Encodes an Index record for a record that will start at file offset `record_offset`.
pub fn put_index(out: &mut Vec<u8>, salt: u32, record_offset: u64, streams: &[IndexStreamInput<'_>]) {
    let mut stats: Vec<IndexStream> = streams
        .iter()
        .map(|s| IndexStream {
            run_count: match s.runs {
                IndexRuns::Refs(r) => r.len() as u64,
                IndexRuns::Inline(e) => u64::from(!e.is_empty()),
            },
            ..s.stats
        })
        .collect();
    let (start, mut inline_at) = begin_index(out, record_offset, &mut stats, 0);
    for s in streams {
        match s.runs {
            IndexRuns::Refs(runs) => runs.iter().for_each(|r| out.extend_from_slice(&r.encode())),
            IndexRuns::Inline(e) if !e.is_empty() => {
                out.extend_from_slice(&RunRef { first_ts: e[0].ts, count: e.len() as u64, entries_offset: inline_at }.encode());
                inline_at += (e.len() * ENTRY_LEN) as u64;
            }
            IndexRuns::Inline(_) => {}
        }
    }
    pad_to_entries(out, start, record_offset);
    for s in streams {
        if let IndexRuns::Inline(e) = s.runs {
            e.iter().for_each(|entry| out.extend_from_slice(&entry.encode()));
        }
    }
    end_record(out, start, salt);
}
