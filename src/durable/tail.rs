//! Ending a session and building checkpoint summaries, by reading back the session's own
//! checkpoint records instead of keeping their blocks in memory: the writer's memory stays flat
//! in the number of frames. Shared by `SessionWriter` and recovery.

use crate::error::{Error, Result};
use crate::format::bytes::le_u32;
use crate::format::index::{IndexEntry, ENTRY_LEN};
use crate::format::record::{
    begin_index, decode_block, decode_summary_block, lowbit, put_record, salt_crc, sample_chunk_runs, ChunkBuilder, IndexSample,
    IndexStream, Kind, RunRef, SessionEndBody, SummaryBlock, BLOCK_HEADER_LEN, CHECKPOINT_FIXED_LEN, INDEX_STREAM_LEN, MAX_BODY_LEN,
    RECORD_HEADER_LEN, RUN_LEN, SUMMARY_BLOCK_LEN,
};
use crate::storage::Storage;

/// What the final index says of one stream besides its runs.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StreamStats {
    pub id: u16,
    pub def_offset: u64,
    pub frames: u64,
    pub payload_bytes: u64,
    pub first_ts: i64,
    pub last_ts: i64,
}

impl StreamStats {
    /// A stream's statistics; the timestamps are stored as 0 when the stream has no frames.
    pub fn new(id: u16, def_offset: u64, frames: u64, payload_bytes: u64, first_ts: i64, last_ts: i64) -> Self {
        let (first_ts, last_ts) = if frames == 0 { (0, 0) } else { (first_ts, last_ts) };
        StreamStats { id, def_offset, frames, payload_bytes, first_ts, last_ts }
    }
}

/// The checkpoints `n, n − lowbit(n), …` down to (not including) 0: their records together hold
/// every block of checkpoints 1 ..= n (§5.4 of the spec).
pub(crate) fn decomposition(n: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut k = n;
    while k > 0 {
        out.push(k);
        k -= lowbit(k);
    }
    out
}

/// Where the sections of a checkpoint record are: (offset, count) of each array.
pub(crate) struct Sections {
    pub number: u32,
    pub control: (u64, u32),
    pub summary_control: (u64, u32),
    pub summary_blocks: (u64, u32),
    pub blocks: (u64, u32),
}

/// Reads where the sections of the checkpoint record at `offset` are.
pub(crate) fn read_sections(storage: &dyn Storage, offset: u64) -> Result<Sections> {
    let mut head = [0u8; RECORD_HEADER_LEN + CHECKPOINT_FIXED_LEN];
    storage.read_at(offset, &mut head)?;
    if head[8] != Kind::Checkpoint as u8 {
        return Err(Error::Malformed {
            what: "checkpoint",
            offset,
            reason: format!("expected a checkpoint record, found kind {}", head[8]),
        });
    }
    let b = &head[RECORD_HEADER_LEN..];
    let (block_count, control_count, state_len) = (le_u32(b, 4), le_u32(b, 40), le_u32(b, 44));
    let (jump_count, sc_count, sb_count) = (le_u32(b, 48), le_u32(b, 52), le_u32(b, 56));
    let control_at = offset + (RECORD_HEADER_LEN + CHECKPOINT_FIXED_LEN) as u64;
    let jumps_at = control_at + 8 * u64::from(control_count);
    let sc_at = jumps_at + 8 * u64::from(jump_count);
    let sb_at = sc_at + 16 * u64::from(sc_count);
    let blocks_at = sb_at + SUMMARY_BLOCK_LEN as u64 * u64::from(sb_count) + u64::from(state_len);
    Ok(Sections {
        number: le_u32(b, 0),
        control: (control_at, control_count),
        summary_control: (sc_at, sc_count),
        summary_blocks: (sb_at, sb_count),
        blocks: (blocks_at, block_count),
    })
}

/// Reads `count` elements of `size` bytes at `at` in bounded chunks, calling `f` on each.
fn for_each_element(
    storage: &dyn Storage,
    (at, count): (u64, u32),
    size: usize,
    scratch: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]),
) -> Result<()> {
    const CHUNK: usize = 64 * 1024;
    let per = (CHUNK / size).max(1);
    let mut done = 0usize;
    while done < count as usize {
        let n = per.min(count as usize - done);
        scratch.resize(n * size, 0);
        storage.read_at(at + (done * size) as u64, scratch)?;
        scratch.chunks_exact(size).for_each(&mut f);
        done += n;
    }
    Ok(())
}

/// Streams the blocks held by checkpoint records `records`, tagged with their checkpoint, in
/// checkpoint order.
pub(crate) fn for_each_block(storage: &dyn Storage, records: &[(u32, u64)], mut f: impl FnMut(SummaryBlock)) -> Result<()> {
    let mut scratch = Vec::new();
    for &(number, offset) in records {
        let s = checked_sections(storage, number, offset)?;
        for_each_element(storage, s.summary_blocks, SUMMARY_BLOCK_LEN, &mut scratch, |b| f(decode_summary_block(b)))?;
        for_each_element(storage, s.blocks, BLOCK_HEADER_LEN, &mut scratch, |b| {
            f(SummaryBlock { checkpoint: number, block: decode_block(b) })
        })?;
    }
    Ok(())
}

fn checked_sections(storage: &dyn Storage, number: u32, offset: u64) -> Result<Sections> {
    let s = read_sections(storage, offset)?;
    if s.number != number {
        return Err(Error::Malformed { what: "checkpoint", offset, reason: format!("number {}, expected {number}", s.number) });
    }
    Ok(s)
}

/// Counts the control offsets and blocks `records` hold (for a summary's header).
pub(crate) fn count_in_records(storage: &dyn Storage, records: &[(u32, u64)]) -> Result<(u32, u32)> {
    let (mut control, mut blocks) = (0u32, 0u32);
    for &(_, offset) in records {
        let s = read_sections(storage, offset)?;
        control += s.control.1 + s.summary_control.1;
        blocks += s.blocks.1 + s.summary_blocks.1;
    }
    Ok((control, blocks))
}

/// While writing a long Index record, the buffer is handed to storage at this size.
const FLUSH_AT: usize = 128 * 1024;

/// Runs shorter than this on average are copied into one run, so that a stream with few frames
/// per checkpoint does not get a long run directory.
const MIN_AVERAGE_RUN: u64 = 64;

/// The end of a session as written: where its records are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WrittenEnd {
    pub end_offset: u64,
    pub new_len: u64,
}

/// Everything the SessionEnd record carries.
pub(crate) struct EndFields<'a> {
    pub session_start: u64,
    pub end_ns: i64,
    pub frames: u64,
    pub checkpoints: u32,
    pub recovered: bool,
    pub metadata: &'a [(String, String)],
}

/// Per-stream state of the first pass over the blocks.
#[derive(Clone, Copy, Default)]
struct RunCheck {
    runs: u64,
    last_ts: Option<i64>,
    ordered: bool,
}

/// Writes the Index and SessionEnd records at `pos`, building them in `out` (which must be empty
/// and is left empty). The runs come from the checkpoint records `chain` (ascending numbers,
/// covering every checkpoint of the session), read back from storage; all earlier data must be
/// in storage already.
pub(crate) fn write_index_and_end(
    storage: &mut dyn Storage,
    out: &mut Vec<u8>,
    pos: u64,
    salt: u32,
    streams: &[StreamStats],
    chain: &[(u32, u64)],
    end: &EndFields<'_>,
) -> Result<WrittenEnd> {
    // Pass 1: are each stream's blocks in order, and long enough to reference in place?
    let mut checks = vec![RunCheck { ordered: true, ..Default::default() }; streams.len()];
    for_each_block(storage, chain, |b| {
        if let Some(c) = checks.get_mut(usize::from(b.block.stream)) {
            c.ordered &= c.last_ts.is_none_or(|l| l <= b.block.first_ts);
            c.last_ts = Some(b.block.last_ts);
            c.runs += 1;
        }
    })?;
    let in_place: Vec<bool> =
        streams.iter().zip(&checks).map(|(s, c)| c.ordered && (c.runs <= 1 || s.frames / c.runs >= MIN_AVERAGE_RUN)).collect();
    // Streams that are merged: their entries, read back and sorted (memory O(their frames)).
    let mut merged: Vec<Option<Vec<IndexEntry>>> = vec![None; streams.len()];
    for (i, s) in streams.iter().enumerate() {
        if in_place[i] || s.frames == 0 {
            continue;
        }
        let mut runs = Vec::new();
        for_each_block(storage, chain, |b| {
            if b.block.stream == s.id {
                runs.push(b.block);
            }
        })?;
        let mut all = Vec::with_capacity(usize::try_from(s.frames).unwrap_or(0).min(1 << 24));
        let mut buf = Vec::new();
        for r in runs {
            buf.resize(r.count as usize * ENTRY_LEN, 0);
            storage.read_at(r.entries_offset, &mut buf)?;
            all.extend(buf.chunks_exact(ENTRY_LEN).map(IndexEntry::decode));
        }
        all.sort_unstable();
        merged[i] = Some(all);
    }
    let mut table: Vec<IndexStream> = streams
        .iter()
        .enumerate()
        .map(|(i, s)| IndexStream {
            stream: s.id,
            def_offset: s.def_offset,
            frames: s.frames,
            payload_bytes: s.payload_bytes,
            first_ts: s.first_ts,
            last_ts: s.last_ts,
            run_count: match &merged[i] {
                Some(e) => u64::from(!e.is_empty()),
                None => checks[i].runs,
            },
            runs_offset: 0,
        })
        .collect();
    let runs_total: u64 = table.iter().map(|s| s.run_count).sum();
    let inline_total: u64 = merged.iter().flatten().map(|e| e.len() as u64).sum();
    let dirs_end = pos + (RECORD_HEADER_LEN + 8 + streams.len() * INDEX_STREAM_LEN) as u64 + RUN_LEN as u64 * runs_total;
    let pad = dirs_end.next_multiple_of(8) - dirs_end;
    let body_len = dirs_end - pos - RECORD_HEADER_LEN as u64 + pad + ENTRY_LEN as u64 * inline_total;
    if body_len > MAX_BODY_LEN {
        return Err(Error::LimitExceeded("index record too large".into()));
    }
    // Format 1.1: how far back the last checkpoint is, so that a reader can check the CRC of
    // every checkpoint whose blocks the index references.
    let back = chain.last().map_or(0, |&(_, o)| u32::try_from(pos - o).unwrap_or(0));
    let (start, mut inline_at) = begin_index(out, pos, &mut table, back);
    out[start + 4..start + 8].copy_from_slice(&(body_len as u32).to_le_bytes());
    // The record goes to storage in pieces when long; its CRC is computed on the way.
    let mut sink = RecordSink::new(pos, start, salt_crc(salt));
    let mut out_at = pos;
    // The sample (format 1.1) that follows the Index: its chunks are hashed as the directories
    // are written.
    let chunk_runs = sample_chunk_runs(table.iter().map(|s| s.run_count).max().unwrap_or(0));
    let mut chunks = Vec::with_capacity(streams.len());
    // Pass 2: each stream's run directory.
    for (i, s) in streams.iter().enumerate() {
        let mut sample = ChunkBuilder::new(chunk_runs);
        match &merged[i] {
            Some(e) if !e.is_empty() => {
                let run = RunRef { first_ts: e[0].ts, count: e.len() as u64, entries_offset: inline_at };
                let bytes = run.encode();
                sample.push(&run, &bytes);
                out.extend_from_slice(&bytes);
                inline_at += (e.len() * ENTRY_LEN) as u64;
            }
            Some(_) => {}
            None => {
                let mut written = 0u64;
                let mut records = chain.to_vec();
                // Read the chain a few records at a time so that the directory can be flushed.
                while !records.is_empty() {
                    let batch: Vec<(u32, u64)> = records.drain(..1).collect();
                    for_each_block(storage, &batch, |b| {
                        if b.block.stream == s.id {
                            let run = RunRef {
                                first_ts: b.block.first_ts,
                                count: u64::from(b.block.count),
                                entries_offset: b.block.entries_offset,
                            };
                            let bytes = run.encode();
                            sample.push(&run, &bytes);
                            out.extend_from_slice(&bytes);
                            written += 1;
                        }
                    })?;
                    if out.len() >= FLUSH_AT {
                        sink.flush(out, &mut out_at, storage)?;
                    }
                }
                if written != checks[i].runs {
                    return Err(Error::Malformed {
                        what: "checkpoint",
                        offset: pos,
                        reason: "the checkpoint records changed while the index was built".into(),
                    });
                }
            }
        }
        chunks.push(sample.finish());
    }
    out.extend(std::iter::repeat_n(0u8, pad as usize));
    for e in merged.iter().flatten() {
        for entry in e {
            out.extend_from_slice(&entry.encode());
            if out.len() >= FLUSH_AT {
                sink.flush(out, &mut out_at, storage)?;
            }
        }
    }
    let index_crc = sink.finish(out, storage)?;
    // The rest of `out` (the end of the Index record) starts at `out_at`.
    let sample = IndexSample { index_offset: pos, index_crc, last_checkpoint_back: back, chunk_runs, streams: table, chunks };
    put_record(out, Kind::IndexSample, salt, &sample.encode());
    let end_offset = out_at + out.len() as u64;
    let body = SessionEndBody {
        session_start: end.session_start,
        index_offset: pos,
        end_ns: end.end_ns,
        frames: end.frames,
        checkpoints: end.checkpoints,
        recovered: end.recovered,
        metadata: end.metadata.to_vec(),
    };
    put_record(out, Kind::SessionEnd, salt, &body.encode());
    storage.write_at(out_at, out)?;
    let new_len = out_at + out.len() as u64;
    out.clear();
    Ok(WrittenEnd { end_offset, new_len })
}

/// A record being written, possibly in pieces: computes its CRC as its bytes leave the buffer
/// and fills the CRC field in at the end (in the buffer, or in the file if the header has
/// already been handed to the OS).
pub(crate) struct RecordSink {
    pub offset: u64,
    start_in_buf: Option<usize>,
    hashed: usize,
    hasher: crc32fast::Hasher,
}

impl RecordSink {
    /// A record that starts at file offset `offset` and at `start` of the buffer, its length
    /// field already set.
    pub fn new(offset: u64, start: usize, salt_state: u32) -> Self {
        RecordSink { offset, start_in_buf: Some(start), hashed: start + 4, hasher: crc32fast::Hasher::new_with_initial(salt_state) }
    }

    fn hash_pending(&mut self, buf: &[u8]) {
        self.hasher.update(&buf[self.hashed..]);
        self.hashed = buf.len();
    }

    /// Hands the buffer (frames before the record, and the record so far) to storage.
    pub fn flush(&mut self, buf: &mut Vec<u8>, buf_start: &mut u64, storage: &mut dyn Storage) -> Result<()> {
        self.hash_pending(buf);
        storage.write_at(*buf_start, buf)?;
        *buf_start += buf.len() as u64;
        buf.clear();
        self.hashed = 0;
        self.start_in_buf = None;
        Ok(())
    }

    /// Fills in the CRC once the whole record has been appended, and returns it.
    pub fn finish(mut self, buf: &mut [u8], storage: &mut dyn Storage) -> Result<u32> {
        self.hash_pending(buf);
        let crc = self.hasher.finalize();
        match self.start_in_buf {
            Some(s) => buf[s..s + 4].copy_from_slice(&crc.to_le_bytes()),
            None => storage.write_at(self.offset, &crc.to_le_bytes())?,
        }
        Ok(crc)
    }
}
