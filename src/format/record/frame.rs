//! Frame records (kind 3): one timestamped payload.

use super::*;
use crate::error::{Error, Result};
use crate::format::bytes::{le_i64, le_u16, le_u32};

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

/// The header of a frame whose payload's plain CRC32 is `payload_crc` (computed once by the
/// caller, who also needs it for the interval CRC): the record's CRC combines the two.
pub fn frame_header_combined(
    salt_state: u32,
    stream: u16,
    seq: u32,
    ts: i64,
    payload_len: usize,
    payload_crc: &crc32fast::Hasher,
) -> [u8; FRAME_OVERHEAD] {
    let mut h = frame_header_unsealed(stream, seq, ts, payload_len);
    let mut hasher = crc32fast::Hasher::new_with_initial(salt_state);
    hasher.update(&h[4..]);
    hasher.combine(payload_crc);
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
#[inline]
pub fn decode_frame(body: &[u8], offset: u64) -> Result<(FrameFields, &[u8])> {
    if body.len() < FRAME_FIXED_LEN {
        return Err(Error::Truncated { what: "frame", offset, needed: FRAME_FIXED_LEN as u64, available: body.len() as u64 });
    }
    let f = FrameFields { ts: le_i64(body, 0), stream: le_u16(body, 8), seq: le_u32(body, 10) };
    Ok((f, &body[FRAME_FIXED_LEN..]))
}

/// The fields and payload length of the frame record at `offset`, when its header says it is a
/// frame and the whole record lies before `end`: framing only, no CRC (for bytes already
/// vouched for, such as an interval whose CRC matched).
#[inline]
pub fn frame_header_within(file: &[u8], offset: u64, end: u64) -> Option<(FrameFields, usize)> {
    let at = usize::try_from(offset).ok()?;
    let h = file.get(at..at.checked_add(RECORD_HEADER_LEN)?)?;
    let body_end = at + RECORD_HEADER_LEN + le_u32(h, 4) as usize;
    if h[8] != Kind::Frame as u8 || body_end as u64 > end {
        return None;
    }
    let (f, payload) = decode_frame(file.get(at + RECORD_HEADER_LEN..body_end)?, offset).ok()?;
    Some((f, payload.len()))
}
