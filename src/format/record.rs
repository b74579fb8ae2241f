//! Record framing and the body of every record kind.
//!
//! ```text
//! 0   crc u32       CRC32 of (salt u32 LE ‖ bytes 4..9+body_len)
//! 4   body_len u32
//! 8   kind u8
//! 9   body          body_len bytes
//! ```
//! The salt is the session's (the first four bytes of its UUID, little-endian), so records left
//! on disk by an earlier session never validate as part of a later one. A zeroed region reads as
//! kind 0, which is never valid.

use super::bytes::{le_i64, le_u16, le_u32, le_u64, put_len_bytes, put_string_map, ByteReader};
use super::index::{IndexEntry, ENTRY_LEN};
use crate::error::{Error, Result};

/// Length of the record header (crc, body length, kind).
pub const RECORD_HEADER_LEN: usize = 9;
/// Fixed part of a frame body: timestamp i64, stream u16, seq u32.
pub const FRAME_FIXED_LEN: usize = 14;
/// Total bytes a frame record adds to its payload.
pub const FRAME_OVERHEAD: usize = RECORD_HEADER_LEN + FRAME_FIXED_LEN;
/// Largest body a record can hold.
pub const MAX_BODY_LEN: u64 = u32::MAX as u64;

/// The kinds of record. Unknown kinds are skipped by their length (forward compatibility).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Opens a session segment.
    SessionStart = 1,
    /// Defines a stream.
    StreamDef = 2,
    /// One timestamped payload.
    Frame = 3,
    /// A durable point: the interval's index entries, optional state.
    Checkpoint = 4,
    /// The final per-stream index of a session.
    Index = 5,
    /// Closes a session segment.
    SessionEnd = 6,
    /// A metadata key/value set during a session.
    Metadata = 7,
    /// A second copy of what describes the session: its start and its stream definitions.
    Description = 8,
}

impl Kind {
    /// The kind of a kind byte, `None` for unknown kinds (including 0).
    pub fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::SessionStart,
            2 => Kind::StreamDef,
            3 => Kind::Frame,
            4 => Kind::Checkpoint,
            5 => Kind::Index,
            6 => Kind::SessionEnd,
            7 => Kind::Metadata,
            8 => Kind::Description,
            _ => return None,
        })
    }

    /// Human name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            Kind::SessionStart => "session start",
            Kind::StreamDef => "stream definition",
            Kind::Frame => "frame",
            Kind::Checkpoint => "checkpoint",
            Kind::Index => "index",
            Kind::SessionEnd => "session end",
            Kind::Metadata => "metadata",
            Kind::Description => "description",
        }
    }
}

/// The salt of a session: its UUID's first four bytes, little-endian.
pub fn session_salt(id: &uuid::Uuid) -> u32 {
    let b = id.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Computes a record's CRC from its salt, the header bytes after the CRC, and the body parts.
pub fn record_crc(salt: u32, len_and_kind: &[u8], body_parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(salt_crc(salt));
    h.update(len_and_kind);
    for p in body_parts {
        h.update(p);
    }
    h.finalize()
}

/// CRC32 of the salt's four bytes: the state a record's CRC continues from. Hot readers
/// compute it once per session and call [`read_record_from_state`].
#[inline]
pub fn salt_crc(salt: u32) -> u32 {
    crc32fast::hash(&salt.to_le_bytes())
}

/// CRC of a record whose bytes after the CRC field are contiguous: one pass.
#[inline]
fn contiguous_crc(salt: u32, after_crc_field: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(salt_crc(salt));
    h.update(after_crc_field);
    h.finalize()
}

/// Appends a complete record (header + body) to `out`.
pub fn put_record(out: &mut Vec<u8>, kind: Kind, salt: u32, body: &[u8]) {
    let start = begin_record(out, kind);
    out.extend_from_slice(body);
    end_record(out, start, salt);
}

/// Starts a record in `out`; write the body after it, then call [`end_record`].
pub fn begin_record(out: &mut Vec<u8>, kind: Kind) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    out.push(kind as u8);
    start
}

/// Fills in the length and CRC of the record begun at `start` (body = everything after it).
pub fn end_record(out: &mut [u8], start: usize, salt: u32) {
    let body_len = (out.len() - start - RECORD_HEADER_LEN) as u32;
    out[start + 4..start + 8].copy_from_slice(&body_len.to_le_bytes());
    let crc = record_crc(salt, &out[start + 4..], &[]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
}

/// Encodes the 23-byte header of a frame record whose payload is written separately.
/// `salt_state` is [`salt_crc`] of the session's salt (computed once per session).
pub fn frame_header(salt_state: u32, stream: u16, seq: u32, ts: i64, payload: &[u8]) -> [u8; FRAME_OVERHEAD] {
    let mut h = [0u8; FRAME_OVERHEAD];
    let body_len = (FRAME_FIXED_LEN + payload.len()) as u32;
    h[4..8].copy_from_slice(&body_len.to_le_bytes());
    h[8] = Kind::Frame as u8;
    h[9..17].copy_from_slice(&ts.to_le_bytes());
    h[17..19].copy_from_slice(&stream.to_le_bytes());
    h[19..23].copy_from_slice(&seq.to_le_bytes());
    let mut hasher = crc32fast::Hasher::new_with_initial(salt_state);
    hasher.update(&h[4..]);
    hasher.update(payload);
    h[0..4].copy_from_slice(&hasher.finalize().to_le_bytes());
    h
}

/// Encodes a frame header with a zero CRC field; write the payload after it, then
/// [`seal_record`] the whole record in one pass.
#[inline]
pub fn frame_header_unsealed(stream: u16, seq: u32, ts: i64, payload_len: usize) -> [u8; FRAME_OVERHEAD] {
    let mut h = [0u8; FRAME_OVERHEAD];
    h[4..8].copy_from_slice(&((FRAME_FIXED_LEN + payload_len) as u32).to_le_bytes());
    h[8] = Kind::Frame as u8;
    h[9..17].copy_from_slice(&ts.to_le_bytes());
    h[17..19].copy_from_slice(&stream.to_le_bytes());
    h[19..23].copy_from_slice(&seq.to_le_bytes());
    h
}

/// Fills in the CRC of a complete record held in `record` (header and body).
#[inline]
pub fn seal_record(record: &mut [u8], salt_state: u32) {
    let mut hasher = crc32fast::Hasher::new_with_initial(salt_state);
    hasher.update(&record[4..]);
    record[0..4].copy_from_slice(&hasher.finalize().to_le_bytes());
}

/// A record located in a byte slice, framing and CRC checked.
#[derive(Clone, Copy, Debug)]
pub struct RecordRef<'a> {
    /// File offset of the record.
    pub offset: u64,
    /// Kind byte (may be unknown).
    pub kind_byte: u8,
    /// The body bytes.
    pub body: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// The known kind, if any.
    pub fn kind(&self) -> Option<Kind> {
        Kind::from_byte(self.kind_byte)
    }
    /// File offset just past the record.
    pub fn end(&self) -> u64 {
        self.offset + RECORD_HEADER_LEN as u64 + self.body.len() as u64
    }
}

/// Reads the framing of the record at `offset` of `file` (the whole file or a prefix of it),
/// checking that it lies within `file`, and, unless `salt` is `None`, its CRC.
pub fn read_record(file: &[u8], offset: u64, salt: Option<u32>) -> Result<RecordRef<'_>> {
    let start = usize::try_from(offset).ok().filter(|&s| s <= file.len()).ok_or(Error::Truncated {
        what: "record",
        offset,
        needed: RECORD_HEADER_LEN as u64,
        available: 0,
    })?;
    let avail = (file.len() - start) as u64;
    if avail < RECORD_HEADER_LEN as u64 {
        return Err(Error::Truncated { what: "record header", offset, needed: RECORD_HEADER_LEN as u64, available: avail });
    }
    let head = &file[start..start + RECORD_HEADER_LEN];
    let body_len = u64::from(le_u32(head, 4));
    let kind_byte = head[8];
    if kind_byte == 0 {
        return Err(Error::Malformed { what: "record", offset, reason: "kind 0 (zeroed or unwritten space)".into() });
    }
    if body_len > avail - RECORD_HEADER_LEN as u64 {
        return Err(Error::Truncated { what: "record body", offset, needed: body_len, available: avail - RECORD_HEADER_LEN as u64 });
    }
    let body = &file[start + RECORD_HEADER_LEN..start + RECORD_HEADER_LEN + body_len as usize];
    if let Some(salt) = salt {
        let stored = le_u32(head, 0);
        let computed = contiguous_crc(salt, &file[start + 4..start + RECORD_HEADER_LEN + body_len as usize]);
        if stored != computed {
            let what = Kind::from_byte(kind_byte).map(Kind::name).unwrap_or("record");
            return Err(Error::CrcMismatch { what, offset, stored, computed });
        }
    }
    Ok(RecordRef { offset, kind_byte, body })
}

/// The kind of a record that could start at `offset`: its header fits, its kind is one this
/// version knows, and its body fits in the file. A cheap necessary condition (no checksum, no
/// allocation) that scans which search byte by byte test before [`read_record`].
#[inline]
pub fn plausible_record_at(file: &[u8], offset: u64) -> Option<Kind> {
    let start = usize::try_from(offset).ok()?;
    let head = file.get(start..start.checked_add(RECORD_HEADER_LEN)?)?;
    let kind = Kind::from_byte(head[8])?;
    let body_len = le_u32(head, 4) as usize;
    (body_len <= file.len() - start - RECORD_HEADER_LEN).then_some(kind)
}

/// Like [`read_record`] with a salt, taking the salt's CRC state (see [`salt_crc`]) so that
/// the check is one pass over the record's bytes.
#[inline]
pub fn read_record_from_state(file: &[u8], offset: u64, salt_state: u32) -> Result<RecordRef<'_>> {
    let r = read_record(file, offset, None)?;
    let start = offset as usize;
    let stored = le_u32(file, start);
    let mut h = crc32fast::Hasher::new_with_initial(salt_state);
    h.update(&file[start + 4..start + RECORD_HEADER_LEN + r.body.len()]);
    let computed = h.finalize();
    if stored != computed {
        let what = Kind::from_byte(r.kind_byte).map(Kind::name).unwrap_or("record");
        return Err(Error::CrcMismatch { what, offset, stored, computed });
    }
    Ok(r)
}

/// Reads a record and checks that it has the expected kind.
pub fn read_record_of(file: &[u8], offset: u64, salt: u32, kind: Kind) -> Result<RecordRef<'_>> {
    let r = read_record(file, offset, Some(salt))?;
    if r.kind_byte != kind as u8 {
        return Err(Error::Malformed {
            what: kind.name(),
            offset,
            reason: format!("expected a {} record (kind {}), found kind {}", kind.name(), kind as u8, r.kind_byte),
        });
    }
    Ok(r)
}

/// Start of a session segment.
///
/// ```text
/// 0   session_id      16
/// 16  start_ns i64
/// 24  prev_session_end u64   offset of the previous session's SessionEnd, 0 for the first
/// 32  flags u32              0
/// 36  name                   u32 length + UTF-8
/// ..  metadata               string map
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStartBody {
    /// Session UUID.
    pub id: uuid::Uuid,
    /// Wall time at start.
    pub start_ns: i64,
    /// Offset of the previous session's end record, 0 when first.
    pub prev_session_end: u64,
    /// Session name.
    pub name: String,
    /// Metadata known at start.
    pub metadata: Vec<(String, String)>,
}

impl SessionStartBody {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.name.len());
        b.extend_from_slice(self.id.as_bytes());
        b.extend_from_slice(&self.start_ns.to_le_bytes());
        b.extend_from_slice(&self.prev_session_end.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        put_len_bytes(&mut b, self.name.as_bytes());
        put_string_map(&mut b, self.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        b
    }

    /// Decodes a body whose record starts at `offset`.
    pub fn decode(body: &[u8], offset: u64) -> Result<Self> {
        let mut r = ByteReader::new(body, offset + RECORD_HEADER_LEN as u64, "session start");
        let id = uuid::Uuid::from_bytes(r.bytes16()?);
        let start_ns = r.i64()?;
        let prev_session_end = r.u64()?;
        let _flags = r.u32()?;
        let name = r.str()?.to_owned();
        let metadata = r.string_map()?;
        Ok(SessionStartBody { id, start_ns, prev_session_end, name, metadata })
    }

    /// Reads the salt of a session start record without trusting it: the UUID comes first in
    /// the body, and the record's CRC is then checked with it.
    pub fn salt_of(file: &[u8], offset: u64) -> Result<u32> {
        let r = read_record(file, offset, None)?;
        if r.kind() != Some(Kind::SessionStart) {
            return Err(Error::Malformed {
                what: "session start",
                offset,
                reason: format!("expected a session start record (kind 1), found kind {}", r.kind_byte),
            });
        }
        if r.body.len() < 16 {
            return Err(Error::Truncated { what: "session start", offset, needed: 16, available: r.body.len() as u64 });
        }
        Ok(u32::from_le_bytes([r.body[0], r.body[1], r.body[2], r.body[3]]))
    }
}

/// Definition of a stream.
///
/// ```text
/// 0  stream u16, 2 reserved u16 (0)
/// 4  name, encoding, schema_name   each u32 length + UTF-8
/// .. schema                        u32 length + bytes
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamDefBody {
    /// Stream id within the session (0, 1, … in definition order).
    pub stream: u16,
    /// Unique name within the session.
    pub name: String,
    /// Payload encoding label (`json`, `bincode`, `raw`, `cdr`, …).
    pub encoding: String,
    /// Name of the schema, empty when none.
    pub schema_name: String,
    /// Schema bytes, empty when none.
    pub schema: Vec<u8>,
}

impl StreamDefBody {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&self.stream.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        put_len_bytes(&mut b, self.name.as_bytes());
        put_len_bytes(&mut b, self.encoding.as_bytes());
        put_len_bytes(&mut b, self.schema_name.as_bytes());
        put_len_bytes(&mut b, &self.schema);
        b
    }

    /// Decodes a body whose record starts at `offset`.
    pub fn decode(body: &[u8], offset: u64) -> Result<Self> {
        let mut r = ByteReader::new(body, offset + RECORD_HEADER_LEN as u64, "stream definition");
        let stream = r.u16()?;
        let _reserved = r.u16()?;
        let name = r.str()?.to_owned();
        let encoding = r.str()?.to_owned();
        let schema_name = r.str()?.to_owned();
        let schema = r.len_bytes()?.to_vec();
        Ok(StreamDefBody { stream, name, encoding, schema_name, schema })
    }
}

/// A second copy of what describes a session, so that one damaged record cannot take it away:
/// the SessionStart body (with the metadata known when it was written) and every stream
/// definition so far. Written before the first checkpoint, before each checkpoint that follows
/// a new stream definition, and before the Index.
///
/// ```text
/// 0  start       u32 length + a SessionStart body (§5.1)
/// .. count u16, reserved u16 (0)
/// .. streams     count × (u32 length + a StreamDef body (§5.2))
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescriptionBody {
    /// The session's start, with its metadata as of this record.
    pub start: SessionStartBody,
    /// Every stream defined before this record, in id order.
    pub streams: Vec<StreamDefBody>,
}

impl DescriptionBody {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        put_len_bytes(&mut b, &self.start.encode());
        b.extend_from_slice(&(self.streams.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        for d in self.streams.iter().take(usize::from(u16::MAX)) {
            put_len_bytes(&mut b, &d.encode());
        }
        b
    }

    /// Decodes a body whose record starts at `offset`.
    pub fn decode(body: &[u8], offset: u64) -> Result<Self> {
        let mut r = ByteReader::new(body, offset + RECORD_HEADER_LEN as u64, "description");
        // The nested bodies decode as if their record started here: offsets in their errors
        // name this record.
        let start = SessionStartBody::decode(r.len_bytes()?, offset)?;
        let count = r.u16()?;
        let _reserved = r.u16()?;
        let mut streams = Vec::with_capacity(usize::from(count).min(body.len() / 4));
        for _ in 0..count {
            streams.push(StreamDefBody::decode(r.len_bytes()?, offset)?);
        }
        Ok(DescriptionBody { start, streams })
    }
}

/// A metadata key/value pair set during a session.
pub fn encode_metadata(key: &str, value: &str) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + key.len() + value.len());
    put_len_bytes(&mut b, key.as_bytes());
    put_len_bytes(&mut b, value.as_bytes());
    b
}

/// Decodes a metadata body.
pub fn decode_metadata(body: &[u8], offset: u64) -> Result<(String, String)> {
    let mut r = ByteReader::new(body, offset + RECORD_HEADER_LEN as u64, "metadata");
    Ok((r.str()?.to_owned(), r.str()?.to_owned()))
}

/// The fixed fields of a frame body; the payload follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameFields {
    /// Timestamp, ns since the epoch.
    pub ts: i64,
    /// Stream id.
    pub stream: u16,
    /// Arrival number within the stream (0-based).
    pub seq: u32,
}

/// Splits a frame body into its fields and payload.
pub fn decode_frame(body: &[u8], offset: u64) -> Result<(FrameFields, &[u8])> {
    if body.len() < FRAME_FIXED_LEN {
        return Err(Error::Truncated { what: "frame", offset, needed: FRAME_FIXED_LEN as u64, available: body.len() as u64 });
    }
    let f = FrameFields { ts: le_i64(body, 0), stream: le_u16(body, 8), seq: le_u32(body, 10) };
    Ok((f, &body[FRAME_FIXED_LEN..]))
}

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
/// 60  reserved u32
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
    out.extend_from_slice(&0u32.to_le_bytes());
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
        let _ = r.u32()?;
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

/// End of a session segment.
///
/// ```text
/// 0   session_start u64     offset of the SessionStart record
/// 8   index_offset u64      offset of the Index record
/// 16  end_ns i64
/// 24  frames u64
/// 32  checkpoints u32
/// 36  flags u32             bit 0: the session was recovered after an interruption
/// 40  metadata              string map: the session's final metadata
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEndBody {
    /// Offset of the session's start record.
    pub session_start: u64,
    /// Offset of the session's Index record.
    pub index_offset: u64,
    /// Wall time at the end.
    pub end_ns: i64,
    /// Frames in the session.
    pub frames: u64,
    /// Checkpoints in the session.
    pub checkpoints: u32,
    /// Whether recovery wrote this end.
    pub recovered: bool,
    /// Final metadata.
    pub metadata: Vec<(String, String)>,
}

impl SessionEndBody {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&self.session_start.to_le_bytes());
        b.extend_from_slice(&self.index_offset.to_le_bytes());
        b.extend_from_slice(&self.end_ns.to_le_bytes());
        b.extend_from_slice(&self.frames.to_le_bytes());
        b.extend_from_slice(&self.checkpoints.to_le_bytes());
        b.extend_from_slice(&u32::from(self.recovered).to_le_bytes());
        put_string_map(&mut b, self.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        b
    }

    /// Decodes a body whose record starts at `offset`.
    pub fn decode(body: &[u8], offset: u64) -> Result<Self> {
        let mut r = ByteReader::new(body, offset + RECORD_HEADER_LEN as u64, "session end");
        let session_start = r.u64()?;
        let index_offset = r.u64()?;
        let end_ns = r.i64()?;
        let frames = r.u64()?;
        let checkpoints = r.u32()?;
        let flags = r.u32()?;
        let metadata = r.string_map()?;
        Ok(SessionEndBody { session_start, index_offset, end_ns, frames, checkpoints, recovered: flags & 1 != 0, metadata })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_header_matches_generic_framing() {
        let salt = 0xDEADBEEF;
        let payload = b"hello";
        let h = frame_header(salt_crc(salt), 3, 7, -5, payload);
        let mut file = h.to_vec();
        file.extend_from_slice(payload);
        let r = read_record(&file, 0, Some(salt)).unwrap();
        assert_eq!(r.kind(), Some(Kind::Frame));
        let mut sealed = frame_header_unsealed(3, 7, -5, payload.len()).to_vec();
        sealed.extend_from_slice(payload);
        seal_record(&mut sealed, salt_crc(salt));
        assert_eq!(sealed, file, "one-pass sealing gives the same bytes");
        let (f, p) = decode_frame(r.body, 0).unwrap();
        assert_eq!(f, FrameFields { ts: -5, stream: 3, seq: 7 });
        assert_eq!(p, payload);
        assert_eq!(FRAME_OVERHEAD, 23);
        // Another session's salt does not validate it.
        assert!(matches!(read_record(&file, 0, Some(1)), Err(Error::CrcMismatch { .. })));
        // Zeroed bytes never parse as a record.
        assert!(read_record(&[0u8; 64], 0, Some(0)).is_err());
    }

    #[test]
    fn crc_continues_from_the_salt() {
        let mut whole = 0xABCD_1234u32.to_le_bytes().to_vec();
        whole.extend_from_slice(b"record bytes after the crc field");
        assert_eq!(crc32fast::hash(&whole), contiguous_crc(0xABCD_1234, &whole[4..]));
        assert_eq!(record_crc(0xABCD_1234, &whole[4..10], &[&whole[10..]]), crc32fast::hash(&whole));
    }

    #[test]
    fn bodies_round_trip() {
        let s = SessionStartBody {
            id: uuid::Uuid::new_v4(),
            start_ns: 9,
            prev_session_end: 100,
            name: "drive".into(),
            metadata: vec![("k".into(), "v".into())],
        };
        assert_eq!(SessionStartBody::decode(&s.encode(), 0).unwrap(), s);
        let d = StreamDefBody {
            stream: 2,
            name: "lidar".into(),
            encoding: "cdr".into(),
            schema_name: "PointCloud2".into(),
            schema: vec![1, 2],
        };
        assert_eq!(StreamDefBody::decode(&d.encode(), 0).unwrap(), d);
        let e = SessionEndBody {
            session_start: 4096,
            index_offset: 5000,
            end_ns: 3,
            frames: 10,
            checkpoints: 2,
            recovered: true,
            metadata: vec![],
        };
        assert_eq!(SessionEndBody::decode(&e.encode(), 0).unwrap(), e);
    }

    #[test]
    fn checkpoint_log_builds_fenwick_jumps() {
        let mut log = CheckpointLog::default();
        let b = |s| BlockHeader { stream: s, count: 1, first_ts: 0, last_ts: 0, payload_bytes: 0, entries_offset: 0 };
        for n in 1..=7u32 {
            let (jumps, _, summary) = log.parts_for(n).unwrap();
            let want_jumps: Vec<u64> = match n {
                1 | 2 | 4 => vec![],
                3 => vec![200],
                5 | 6 => vec![400],
                7 => vec![600, 400],
                _ => unreachable!(),
            };
            assert_eq!(jumps, want_jumps, "jumps of {n}");
            let covered: Vec<u32> = summary.iter().map(|s| s.checkpoint).collect();
            let want: Vec<u32> = (n - lowbit(n) + 1..n).collect();
            assert_eq!(covered, want, "summary of {n}");
            log.record(n, u64::from(n) * 100, &[b(0)], &[u64::from(n)]);
            log.forget_offsets_before(n);
            assert!(log.offsets.len() <= 4, "only the jump chain is kept");
        }
    }

    #[test]
    fn index_round_trip() {
        let refs = [RunRef { first_ts: 5, count: 3, entries_offset: 8000 }];
        let inline = [IndexEntry { ts: 1, offset: 4100 }, IndexEntry { ts: 2, offset: 4000 }];
        let stats =
            IndexStream { stream: 0, def_offset: 4096, frames: 3, payload_bytes: 9, first_ts: 5, last_ts: 7, run_count: 0, runs_offset: 0 };
        let inputs = [
            IndexStreamInput { stats, runs: IndexRuns::Refs(&refs) },
            IndexStreamInput { stats: IndexStream { stream: 1, frames: 2, ..stats }, runs: IndexRuns::Inline(&inline) },
            IndexStreamInput { stats: IndexStream { stream: 2, frames: 0, ..stats }, runs: IndexRuns::Inline(&[]) },
        ];
        let at = 4101u64;
        let mut out = vec![0u8; at as usize];
        put_index(&mut out, 3, at, &inputs);
        let r = read_record_of(&out, at, 3, Kind::Index).unwrap();
        let streams = decode_index_streams(r.body, at).unwrap();
        assert_eq!(streams.len(), 3);
        assert_eq!(streams[2].run_count, 0);
        let d0 = streams[0].runs_offset as usize;
        assert_eq!(RunRef::decode(&out[d0..d0 + RUN_LEN]), refs[0]);
        let d1 = streams[1].runs_offset as usize;
        let run = RunRef::decode(&out[d1..d1 + RUN_LEN]);
        assert_eq!(run.entries_offset % 8, 0);
        let e = run.entries_offset as usize;
        assert_eq!(IndexEntry::decode(&out[e + 16..e + 32]), inline[1]);
        assert_eq!(r.end(), out.len() as u64);
    }

    #[test]
    fn checkpoint_round_trip_aligns_entries() {
        for record_offset in [4096u64, 4097, 4099, 4103] {
            let entries = [IndexEntry { ts: 1, offset: 4200 }, IndexEntry { ts: 2, offset: 4300 }];
            let block = BlockHeader { stream: 0, count: 2, first_ts: 1, last_ts: 2, payload_bytes: 10, entries_offset: 0 };
            let body = CheckpointBody {
                number: 6,
                prev_checkpoint: 0,
                wall_ns: 77,
                frames_total: 2,
                interval_start: 4096,
                control: vec![4096],
                jumps: vec![5000],
                summary_control: vec![(5, 4100), (5, 4200)],
                summary_blocks: vec![SummaryBlock { checkpoint: 5, block }],
                state: vec![9, 9, 9],
                blocks: vec![block],
            };
            let mut out = vec![0u8; record_offset as usize];
            put_checkpoint(&mut out, 5, record_offset, &body, &[&entries]);
            let r = read_record(&out, record_offset, Some(5)).unwrap();
            let d = CheckpointBody::decode(r.body, record_offset).unwrap();
            assert_eq!(d.blocks[0].entries_offset % 8, 0);
            assert_eq!(d.state, vec![9, 9, 9]);
            assert_eq!(
                (d.jumps.clone(), d.summary_control.clone(), d.summary_blocks.clone()),
                (body.jumps.clone(), body.summary_control.clone(), body.summary_blocks.clone())
            );
            let at = d.blocks[0].entries_offset as usize;
            assert_eq!(IndexEntry::decode(&out[at..at + 16]), entries[0]);
        }
    }
}
