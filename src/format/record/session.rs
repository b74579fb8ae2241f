//! What describes a session: SessionStart (1), StreamDef (2), Metadata (7), Description (8)
//! and SessionEnd (6) bodies.

use super::*;
use crate::error::{Error, Result};
use crate::format::bytes::{put_len_bytes, put_string_map, ByteReader};

/// Start of a session segment.
///
/// ```text
/// 0   session_id      16
/// 16  start_ns i64
/// 24  prev_session_end u64   offset of the previous session's SessionEnd, 0 for the first
/// 32  flags u32              bit 0 (1.1): every Checkpoint carries its interval's CRC32
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
    /// Flags: [`SESSION_INTERVAL_CRCS`]; unknown bits are kept and ignored.
    pub flags: u32,
}

/// SessionStart flag (format 1.1): every Checkpoint record of the session holds, at body
/// offset 60, the CRC32 of the bytes of its interval, so that a sequential reader checks an
/// interval in one pass.
pub const SESSION_INTERVAL_CRCS: u32 = 1;

impl SessionStartBody {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.name.len());
        b.extend_from_slice(self.id.as_bytes());
        b.extend_from_slice(&self.start_ns.to_le_bytes());
        b.extend_from_slice(&self.prev_session_end.to_le_bytes());
        b.extend_from_slice(&self.flags.to_le_bytes());
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
        let flags = r.u32()?;
        let name = r.str()?.to_owned();
        let metadata = r.string_map()?;
        Ok(SessionStartBody { id, start_ns, prev_session_end, name, metadata, flags })
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
