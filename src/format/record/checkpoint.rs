//! Checkpoint records (kind 4): an interval's index blocks, its jumps and summary (a Fenwick
//! tree over checkpoints), and the checkpoint log a reader rebuilds from them.

use super::*;
use crate::error::{Error, Result};
use crate::format::bytes::{le_i64, le_u16, le_u32, le_u64, ByteReader};
use crate::format::index::{IndexEntry, ENTRY_LEN};

/// Per-stream block of a checkpoint: the stream's frames of the interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    /// Stream id.
    pub stream: u16,
    /// Number of index entries.
    pub count: u32,
    /// Smallest timestamp among them.
    pub first_ts: i64,
    /// Largest timestamp among them.
    pub last_ts: i64,
    /// Sum of their payload lengths.
    pub payload_bytes: u64,
    /// Absolute file offset of the first entry (8-byte aligned).
    pub entries_offset: u64,
}

/// Encoded length of a [`BlockHeader`].
pub const BLOCK_HEADER_LEN: usize = 40;

/// A block of an earlier checkpoint, repeated in a later checkpoint's summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SummaryBlock {
    /// Number of the checkpoint that holds the block.
    pub checkpoint: u32,
    /// The block (its `entries_offset` points into that checkpoint).
    pub block: BlockHeader,
}

/// Encoded length of a [`SummaryBlock`].
pub const SUMMARY_BLOCK_LEN: usize = 8 + BLOCK_HEADER_LEN;

/// The lowest set bit of `n` (0 for 0).
pub fn lowbit(n: u32) -> u32 {
    n & n.wrapping_neg()
}

/// A checkpoint record.
///
/// Checkpoint `n` repeats what checkpoints `n - lowbit(n) + 1 ..= n - 1` hold (their blocks and
/// control offsets: the *summary*) and lists the offsets of checkpoints `m1 = n - lowbit(n)`,
/// `m2 = m1 - lowbit(m1)`, … down to 0 (the *jumps*). Reading checkpoint `n` and its jumps,
/// at most log2(n) + 1 records, gives every block of the session — as a Fenwick tree does.
///
/// ```text
/// 0   number u32              1, 2, … within the session
/// 4   block_count u32
/// 8   prev_checkpoint u64     0 for the first
/// 16  wall_ns i64
/// 24  frames_total u64        frames in the session up to here
/// 32  interval_start u64      offset of the first record of this checkpoint's interval
/// 40  control_count u32       StreamDef and Metadata records in the interval
/// 44  state_len u32
/// 48  jump_count u32
/// 52  summary_control_count u32
/// 56  summary_block_count u32
/// 60  interval_crc u32        (1.1) CRC32 of the interval's bytes, when the session's start says so
/// 64  control offsets         control_count × u64
/// ..  jumps                   jump_count × u64
/// ..  summary control         summary_control_count × 16 bytes (checkpoint u32, reserved u32, offset u64)
/// ..  summary blocks          summary_block_count × 48 bytes (checkpoint u32, reserved u32, BlockHeader)
/// ..  state                   state_len bytes
/// ..  block table             block_count × 40 bytes (BlockHeader)
/// ..  zero padding            up to an 8-byte aligned absolute offset
/// ..  entry arrays            in block order, each count × 16 bytes, sorted by (ts, offset)
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CheckpointBody {
    /// Number within the session.
    pub number: u32,
    /// Offset of the previous checkpoint record, 0 when first.
    pub prev_checkpoint: u64,
    /// Wall time when written.
    pub wall_ns: i64,
    /// Frames written in the session up to this checkpoint.
    pub frames_total: u64,
    /// Offset of the first record of the interval.
    pub interval_start: u64,
    /// CRC32 of the bytes `interval_start .. this record's offset` (format 1.1; meaningful
    /// only in a session whose start has [`SESSION_INTERVAL_CRCS`] set).
    pub interval_crc: u32,
    /// Offsets of StreamDef and Metadata records in the interval.
    pub control: Vec<u64>,
    /// Offsets of checkpoints `n - lowbit(n)`, and so on down to (not including) 0.
    pub jumps: Vec<u64>,
    /// (checkpoint number, control offset) of checkpoints `n - lowbit(n) + 1 ..= n - 1`.
    pub summary_control: Vec<(u32, u64)>,
    /// Blocks of checkpoints `n - lowbit(n) + 1 ..= n - 1`.
    pub summary_blocks: Vec<SummaryBlock>,
    /// User state snapshot (may be empty).
    pub state: Vec<u8>,
    /// Per-stream blocks.
    pub blocks: Vec<BlockHeader>,
}

/// Fixed part of a checkpoint body.
pub const CHECKPOINT_FIXED_LEN: usize = 64;

/// The exact body length of a checkpoint record starting at `record_offset` with these counts
/// (the padding before the entries depends on the absolute offset).
pub fn checkpoint_body_len(record_offset: u64, head: &CheckpointHead<'_>, entries: usize) -> u64 {
    let before_pad = CHECKPOINT_FIXED_LEN as u64
        + 8 * (head.control.len() + head.jumps.len()) as u64
        + 16 * u64::from(head.summary_control_count)
        + SUMMARY_BLOCK_LEN as u64 * u64::from(head.summary_block_count)
        + u64::from(head.state_len)
        + BLOCK_HEADER_LEN as u64 * u64::from(head.block_count);
    let table_end = record_offset + RECORD_HEADER_LEN as u64 + before_pad;
    before_pad + (table_end.next_multiple_of(8) - table_end) + (ENTRY_LEN * entries) as u64
}

fn put_block(out: &mut Vec<u8>, b: &BlockHeader) {
    out.extend_from_slice(&b.stream.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&b.count.to_le_bytes());
    out.extend_from_slice(&b.first_ts.to_le_bytes());
    out.extend_from_slice(&b.last_ts.to_le_bytes());
    out.extend_from_slice(&b.payload_bytes.to_le_bytes());
    out.extend_from_slice(&b.entries_offset.to_le_bytes());
}

fn read_block(r: &mut ByteReader<'_>) -> Result<BlockHeader> {
    Ok(decode_block(r.take(BLOCK_HEADER_LEN)?))
}

/// The counts and small fields of a checkpoint record, for encoding it in pieces (the summary
/// may be streamed from earlier records instead of held in memory).
#[derive(Clone, Debug, Default)]
pub struct CheckpointHead<'a> {
    /// Number within the session.
    pub number: u32,
    /// Offset of the previous checkpoint record, 0 when first.
    pub prev_checkpoint: u64,
    /// Wall time when written.
    pub wall_ns: i64,
    /// Frames written in the session up to this checkpoint.
    pub frames_total: u64,
    /// Offset of the first record of the interval.
    pub interval_start: u64,
    /// CRC32 of the interval's bytes.
    pub interval_crc: u32,
    /// Control offsets of the interval.
    pub control: &'a [u64],
    /// Jump offsets.
    pub jumps: &'a [u64],
    /// Number of summary control entries that will follow.
    pub summary_control_count: u32,
    /// Number of summary blocks that will follow.
    pub summary_block_count: u32,
    /// Length of the state.
    pub state_len: u32,
    /// Number of own blocks.
    pub block_count: u32,
}

/// Starts a checkpoint record: record header, fixed part, control offsets and jumps. Follow
/// with exactly `summary_control_count` [`put_summary_control`], `summary_block_count`
/// [`put_summary_block`], then [`put_checkpoint_tail`] and [`end_record`].
pub fn begin_checkpoint(out: &mut Vec<u8>, head: &CheckpointHead<'_>) -> usize {
    let start = begin_record(out, Kind::Checkpoint);
    out.extend_from_slice(&head.number.to_le_bytes());
    out.extend_from_slice(&head.block_count.to_le_bytes());
    out.extend_from_slice(&head.prev_checkpoint.to_le_bytes());
    out.extend_from_slice(&head.wall_ns.to_le_bytes());
    out.extend_from_slice(&head.frames_total.to_le_bytes());
    out.extend_from_slice(&head.interval_start.to_le_bytes());
    out.extend_from_slice(&(head.control.len() as u32).to_le_bytes());
    out.extend_from_slice(&head.state_len.to_le_bytes());
    out.extend_from_slice(&(head.jumps.len() as u32).to_le_bytes());
    out.extend_from_slice(&head.summary_control_count.to_le_bytes());
    out.extend_from_slice(&head.summary_block_count.to_le_bytes());
    out.extend_from_slice(&head.interval_crc.to_le_bytes());
    for c in head.control.iter().chain(head.jumps) {
        out.extend_from_slice(&c.to_le_bytes());
    }
    start
}

/// Appends one summary control entry.
pub fn put_summary_control(out: &mut Vec<u8>, checkpoint: u32, offset: u64) {
    out.extend_from_slice(&checkpoint.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&offset.to_le_bytes());
}

/// Appends one summary block.
pub fn put_summary_block(out: &mut Vec<u8>, sb: &SummaryBlock) {
    out.extend_from_slice(&sb.checkpoint.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    put_block(out, &sb.block);
}

/// Decodes a 48-byte summary block the caller has bounds-checked.
pub fn decode_summary_block(b: &[u8]) -> SummaryBlock {
    SummaryBlock { checkpoint: le_u32(b, 0), block: decode_block(&b[8..]) }
}

/// Decodes a 40-byte block the caller has bounds-checked.
pub fn decode_block(b: &[u8]) -> BlockHeader {
    BlockHeader {
        stream: le_u16(b, 0),
        count: le_u32(b, 4),
        first_ts: le_i64(b, 8),
        last_ts: le_i64(b, 16),
        payload_bytes: le_u64(b, 24),
        entries_offset: le_u64(b, 32),
    }
}

/// Ends a checkpoint record: state, block table, padding and entry arrays, appended to `out`,
/// whose next byte lies at absolute file offset `at`. Returns the blocks with their entry
/// offsets. Then fill in the length and CRC ([`end_record`], or incrementally when the record
/// was written out in pieces).
pub fn put_checkpoint_tail(
    out: &mut Vec<u8>,
    at: u64,
    state: &[u8],
    blocks: &[BlockHeader],
    entries: &[&[IndexEntry]],
) -> Vec<BlockHeader> {
    let mut placed = Vec::with_capacity(blocks.len());
    out.extend_from_slice(state);
    let table_end = at + (state.len() + blocks.len() * BLOCK_HEADER_LEN) as u64;
    let mut entries_at = table_end.next_multiple_of(8);
    for (b, e) in blocks.iter().zip(entries) {
        let b = BlockHeader { entries_offset: entries_at, ..*b };
        put_block(out, &b);
        placed.push(b);
        entries_at += (e.len() * ENTRY_LEN) as u64;
    }
    let pad = (table_end.next_multiple_of(8) - table_end) as usize;
    out.extend(std::iter::repeat_n(0u8, pad));
    for e in entries {
        for entry in *e {
            out.extend_from_slice(&entry.encode());
        }
    }
    placed
}

/// Encodes a checkpoint record for a record that will start at file offset `record_offset`.
/// `entries[i]` are block i's entries, already sorted. The `entries_offset` fields of
/// `body.blocks` are computed here and returned.
pub fn put_checkpoint(
    out: &mut Vec<u8>,
    salt: u32,
    record_offset: u64,
    body: &CheckpointBody,
    entries: &[&[IndexEntry]],
) -> Vec<BlockHeader> {
    let head = CheckpointHead {
        number: body.number,
        prev_checkpoint: body.prev_checkpoint,
        wall_ns: body.wall_ns,
        frames_total: body.frames_total,
        interval_start: body.interval_start,
        interval_crc: body.interval_crc,
        control: &body.control,
        jumps: &body.jumps,
        summary_control_count: body.summary_control.len() as u32,
        summary_block_count: body.summary_blocks.len() as u32,
        state_len: body.state.len() as u32,
        block_count: body.blocks.len() as u32,
    };
    let start = begin_checkpoint(out, &head);
    for &(n, c) in &body.summary_control {
        put_summary_control(out, n, c);
    }
    for sb in &body.summary_blocks {
        put_summary_block(out, sb);
    }
    let at = record_offset + (out.len() - start) as u64;
    let placed = put_checkpoint_tail(out, at, &body.state, &body.blocks, entries);
    end_record(out, start, salt);
    placed
}

fn read_offsets(r: &mut ByteReader<'_>, n: usize, what: &str) -> Result<Vec<u64>> {
    if n > r.remaining() / 8 {
        return Err(r.malformed(format!("{n} {what} offsets do not fit")));
    }
    (0..n).map(|_| r.u64()).collect()
}

impl CheckpointBody {
    /// Decodes a checkpoint body whose record starts at `offset`. Block entry ranges are checked
    /// to lie inside the body, aligned and in order.
    pub fn decode(body: &[u8], offset: u64) -> Result<Self> {
        let body_at = offset + RECORD_HEADER_LEN as u64;
        let mut r = ByteReader::new(body, body_at, "checkpoint");
        let number = r.u32()?;
        let block_count = r.u32()? as usize;
        let prev_checkpoint = r.u64()?;
        let wall_ns = r.i64()?;
        let frames_total = r.u64()?;
        let interval_start = r.u64()?;
        let control_count = r.u32()? as usize;
        let state_len = r.u32()? as usize;
        let jump_count = r.u32()? as usize;
        let summary_control_count = r.u32()? as usize;
        let summary_block_count = r.u32()? as usize;
        let interval_crc = r.u32()?;
        let control = read_offsets(&mut r, control_count, "control")?;
        let jumps = read_offsets(&mut r, jump_count, "jump")?;
        if summary_control_count > r.remaining() / 16 {
            return Err(r.malformed(format!("{summary_control_count} summary control offsets do not fit")));
        }
        let mut summary_control = Vec::with_capacity(summary_control_count);
        for _ in 0..summary_control_count {
            let n = r.u32()?;
            let _ = r.u32()?;
            summary_control.push((n, r.u64()?));
        }
        if summary_block_count > r.remaining() / SUMMARY_BLOCK_LEN {
            return Err(r.malformed(format!("{summary_block_count} summary blocks do not fit")));
        }
        let mut summary_blocks = Vec::with_capacity(summary_block_count);
        for _ in 0..summary_block_count {
            let checkpoint = r.u32()?;
            let _ = r.u32()?;
            summary_blocks.push(SummaryBlock { checkpoint, block: read_block(&mut r)? });
        }
        let state = r.take(state_len)?.to_vec();
        if block_count > r.remaining() / BLOCK_HEADER_LEN {
            return Err(r.malformed(format!("{block_count} blocks do not fit")));
        }
        let blocks = (0..block_count).map(|_| read_block(&mut r)).collect::<Result<Vec<_>>>()?;
        let body_end = body_at + body.len() as u64;
        let mut expected = r.file_offset().next_multiple_of(8);
        for b in &blocks {
            if b.entries_offset != expected {
                return Err(Error::Malformed {
                    what: "checkpoint",
                    offset,
                    reason: format!("block of stream {} has entries at {}, expected {expected}", b.stream, b.entries_offset),
                });
            }
            expected += u64::from(b.count) * ENTRY_LEN as u64;
        }
        if expected != body_end {
            return Err(Error::Malformed {
                what: "checkpoint",
                offset,
                reason: format!("entries end at {expected}, record body ends at {body_end}"),
            });
        }
        Ok(CheckpointBody {
            number,
            prev_checkpoint,
            wall_ns,
            frames_total,
            interval_start,
            interval_crc,
            control,
            jumps,
            summary_control,
            summary_blocks,
            state,
            blocks,
        })
    }
}

/// The jumps, summary control and summary blocks of a checkpoint.
pub type CheckpointParts = (Vec<u64>, Vec<(u32, u64)>, Vec<SummaryBlock>);

/// What is known of a session's checkpoints: enough to write the next checkpoint's jumps and
/// summary, and to build the session's final index. Shared by the writer and recovery.
#[derive(Clone, Debug, Default)]
pub struct CheckpointLog {
    /// Offsets of checkpoints by number (those known).
    pub offsets: std::collections::BTreeMap<u32, u64>,
    /// Every block, with its checkpoint number, in checkpoint order.
    pub blocks: Vec<SummaryBlock>,
    /// Every control offset, with its checkpoint number, in file order.
    pub control: Vec<(u32, u64)>,
}

impl CheckpointLog {
    /// Jumps, summary control and summary blocks for checkpoint `n`. Fails when an offset of
    /// the jump chain is unknown.
    pub fn parts_for(&self, n: u32) -> Option<CheckpointParts> {
        let m = n - lowbit(n);
        let mut jumps = Vec::new();
        let mut k = m;
        while k > 0 {
            jumps.push(*self.offsets.get(&k)?);
            k -= lowbit(k);
        }
        let lo = self.blocks.partition_point(|b| b.checkpoint <= m);
        let hi = self.blocks.partition_point(|b| b.checkpoint < n);
        let control = self.control.iter().filter(|(c, _)| *c > m && *c < n).copied().collect();
        Some((jumps, control, self.blocks[lo..hi.max(lo)].to_vec()))
    }

    /// Drops the offsets that no later checkpoint's jumps can need: after checkpoint `n`, the
    /// jumps of `n + 1` and later use only `n` and `n`'s own jump chain.
    pub fn forget_offsets_before(&mut self, n: u32) {
        let mut keep = vec![n];
        let mut k = n - lowbit(n);
        while k > 0 {
            keep.push(k);
            k -= lowbit(k);
        }
        self.offsets.retain(|c, _| keep.contains(c));
    }

    /// Records checkpoint `n`, written at `offset` with these blocks and control offsets.
    pub fn record(&mut self, n: u32, offset: u64, blocks: &[BlockHeader], control: &[u64]) {
        self.offsets.insert(n, offset);
        self.blocks.extend(blocks.iter().map(|b| SummaryBlock { checkpoint: n, block: *b }));
        self.control.extend(control.iter().map(|&o| (n, o)));
    }
}
