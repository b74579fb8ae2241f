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
    checkpoint_back_from(offset, le_u32(body.get(..8)?, 4))
}

/// The offset of the last Checkpoint `back` bytes before the Index at `index_offset` (the back
/// distance of an Index or an IndexSample; 0: unknown).
pub fn checkpoint_back_from(index_offset: u64, back: u32) -> Option<u64> {
    (back > 0).then(|| index_offset.checked_sub(u64::from(back))).flatten()
}

/// Checks that the run directory of stream table entry `s` lies in the body of the Index
/// record at `offset` (body bytes `[body_at, body_end)`).
pub fn check_directory_in(s: &IndexStream, offset: u64, body_at: u64, body_end: u64) -> Result<()> {
    let dir_end = s.run_count.checked_mul(RUN_LEN as u64).and_then(|l| s.runs_offset.checked_add(l));
    if dir_end.is_some_and(|end| s.runs_offset >= body_at && end <= body_end) {
        return Ok(());
    }
    Err(Error::Malformed {
        what: "index",
        offset,
        reason: format!("run directory of stream {} ({} runs at {}) lies outside the record", s.stream, s.run_count, s.runs_offset),
    })
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
        check_directory_in(&s, offset, body_at, body_end)?;
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

/// Fewest runs per chunk of an [`IndexSample`]: a chunk's directory is checked (one CRC over
/// 24 bytes per run) the first time a lookup uses one of its runs.
pub const MIN_SAMPLE_CHUNK_RUNS: u64 = 64;
/// Most chunks an [`IndexSample`] gives a stream (larger directories get larger chunks).
pub const MAX_SAMPLE_CHUNKS: u64 = 256;
/// Encoded length of a [`SampleChunk`].
pub const SAMPLE_CHUNK_LEN: usize = 24;
/// Fixed part of an [`IndexSample`] body.
pub const SAMPLE_FIXED_LEN: usize = 24;

/// Runs per chunk for a session whose largest run directory has `max_runs` runs: a power of
/// two (readers then find a run's chunk with a shift).
pub fn sample_chunk_runs(max_runs: u64) -> u32 {
    let k = max_runs.div_ceil(MAX_SAMPLE_CHUNKS).max(MIN_SAMPLE_CHUNK_RUNS).next_power_of_two();
    u32::try_from(k).unwrap_or(1 << 31)
}

/// `chunk_runs` consecutive runs of a stream's directory, in brief.
///
/// ```text
/// 0   first_ts i64          first timestamp of the chunk's first run
/// 8   entries_before u64    entries of the stream's runs before the chunk
/// 16  crc u32               CRC32 (plain) of the chunk's directory bytes (24 per run)
/// 20  reserved u32
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SampleChunk {
    /// First timestamp of its first run.
    pub first_ts: i64,
    /// Entries in the stream's runs before this chunk.
    pub entries_before: u64,
    /// CRC32 of the chunk's run directory bytes.
    pub crc: u32,
}

impl SampleChunk {
    /// Encodes the 24 bytes.
    pub fn encode(&self) -> [u8; SAMPLE_CHUNK_LEN] {
        let mut b = [0u8; SAMPLE_CHUNK_LEN];
        b[0..8].copy_from_slice(&self.first_ts.to_le_bytes());
        b[8..16].copy_from_slice(&self.entries_before.to_le_bytes());
        b[16..20].copy_from_slice(&self.crc.to_le_bytes());
        b
    }
    /// Decodes 24 bytes the caller has bounds-checked.
    pub fn decode(b: &[u8]) -> SampleChunk {
        SampleChunk { first_ts: le_i64(b, 0), entries_before: le_u64(b, 8), crc: le_u32(b, 16) }
    }
}

/// An Index sample (kind 9, format 1.1), written right after the Index record it describes.
///
/// ```text
/// 0   index_offset u64      the Index record described
/// 8   index_crc u32         that record's CRC field
/// 12  last checkpoint back u32 (as in the Index)
/// 16  chunk_runs u32        runs per chunk (≥ 1)
/// 20  stream_count u32
/// 24  stream table          stream_count × 64 bytes, byte for byte the Index's
/// ..  chunks                per stream, ceil(run_count / chunk_runs) × 24 bytes
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexSample {
    /// Offset of the Index record described.
    pub index_offset: u64,
    /// The CRC field of that record.
    pub index_crc: u32,
    /// Distance back from the Index to the session's last checkpoint (0: unknown).
    pub last_checkpoint_back: u32,
    /// Runs per chunk.
    pub chunk_runs: u32,
    /// The Index's stream table.
    pub streams: Vec<IndexStream>,
    /// Per stream, its chunks.
    pub chunks: Vec<Vec<SampleChunk>>,
}

impl IndexSample {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        let n_chunks: usize = self.chunks.iter().map(Vec::len).sum();
        let mut b = Vec::with_capacity(SAMPLE_FIXED_LEN + self.streams.len() * INDEX_STREAM_LEN + n_chunks * SAMPLE_CHUNK_LEN);
        b.extend_from_slice(&self.index_offset.to_le_bytes());
        b.extend_from_slice(&self.index_crc.to_le_bytes());
        b.extend_from_slice(&self.last_checkpoint_back.to_le_bytes());
        b.extend_from_slice(&self.chunk_runs.to_le_bytes());
        b.extend_from_slice(&(self.streams.len() as u32).to_le_bytes());
        for s in &self.streams {
            b.extend_from_slice(&s.encode());
        }
        for c in self.chunks.iter().flatten() {
            b.extend_from_slice(&c.encode());
        }
        b
    }

    /// Decodes a body (record at `offset`): every count is checked against the body's length,
    /// and each stream has exactly the chunks its run count needs.
    pub fn decode(body: &[u8], offset: u64) -> Result<IndexSample> {
        let mut r = ByteReader::new(body, offset + RECORD_HEADER_LEN as u64, "index sample");
        let index_offset = r.u64()?;
        let index_crc = r.u32()?;
        let last_checkpoint_back = r.u32()?;
        let chunk_runs = r.u32()?;
        let n = r.u32()? as usize;
        if chunk_runs == 0 {
            return Err(r.malformed("zero runs per chunk".into()));
        }
        if n > r.remaining() / INDEX_STREAM_LEN {
            return Err(r.malformed(format!("{n} streams do not fit")));
        }
        let streams: Vec<IndexStream> = (0..n).map(|_| r.take(INDEX_STREAM_LEN).map(IndexStream::decode)).collect::<Result<_>>()?;
        let mut chunks = Vec::with_capacity(n);
        for s in &streams {
            let count = s.run_count.div_ceil(u64::from(chunk_runs));
            if count > (r.remaining() / SAMPLE_CHUNK_LEN) as u64 {
                return Err(r.malformed(format!("{count} chunks of stream {} do not fit", s.stream)));
            }
            chunks.push((0..count).map(|_| r.take(SAMPLE_CHUNK_LEN).map(SampleChunk::decode)).collect::<Result<Vec<_>>>()?);
        }
        if r.remaining() != 0 {
            return Err(r.malformed(format!("{} bytes after the chunks", r.remaining())));
        }
        Ok(IndexSample { index_offset, index_crc, last_checkpoint_back, chunk_runs, streams, chunks })
    }
}

/// Builds the chunks of one stream's run directory as its bytes are written: feed every run's
/// 24 bytes in order, then [`ChunkBuilder::finish`].
#[derive(Debug)]
pub struct ChunkBuilder {
    chunk_runs: u64,
    in_chunk: u64,
    entries: u64,
    hasher: crc32fast::Hasher,
    current: SampleChunk,
    chunks: Vec<SampleChunk>,
}

impl ChunkBuilder {
    /// A builder for chunks of `chunk_runs` runs.
    pub fn new(chunk_runs: u32) -> Self {
        ChunkBuilder {
            chunk_runs: u64::from(chunk_runs.max(1)),
            in_chunk: 0,
            entries: 0,
            hasher: crc32fast::Hasher::new(),
            current: SampleChunk::default(),
            chunks: Vec::new(),
        }
    }

    /// The next run of the directory, as encoded.
    pub fn push(&mut self, run: &RunRef, encoded: &[u8; RUN_LEN]) {
        if self.in_chunk == 0 {
            self.current = SampleChunk { first_ts: run.first_ts, entries_before: self.entries, crc: 0 };
        }
        self.hasher.update(encoded);
        self.entries = self.entries.saturating_add(run.count);
        self.in_chunk += 1;
        if self.in_chunk == self.chunk_runs {
            self.close();
        }
    }

    fn close(&mut self) {
        self.current.crc = std::mem::take(&mut self.hasher).finalize();
        self.chunks.push(self.current);
        self.in_chunk = 0;
    }

    /// The stream's chunks.
    pub fn finish(mut self) -> Vec<SampleChunk> {
        if self.in_chunk > 0 {
            self.close();
        }
        self.chunks
    }
}
