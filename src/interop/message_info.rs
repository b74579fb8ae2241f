//! The internal stream of an MCAP import that keeps what MCAP has beside a message's log time:
//! its publish time and sequence number, where they are not the defaults (spec §12). Read by the
//! MCAP export and by the Arrow columns (`publish_ts`).

use crate::error::{Error, Result};
use crate::read::Session;
use std::collections::HashMap;

/// Internal stream holding publish times and sequence numbers that differ from the defaults
/// (not listed, counted or replayed with the messages: see `is_internal_encoding`).
pub const MESSAGE_INFO_STREAM: &str = "mcap.message_info";
/// Encoding of [`MESSAGE_INFO_STREAM`].
pub const MESSAGE_INFO_ENCODING: &str = "recfile.mcap.message_info.v1";
/// Bytes of one message-info frame: stream id u16, frame seq u32, MCAP sequence u32, publish
/// time u64 (nanoseconds), little-endian.
pub const MESSAGE_INFO_LEN: usize = 18;

/// The MCAP sequence and publish time of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    /// MCAP sequence number.
    pub sequence: u32,
    /// Publish time, nanoseconds since the Unix epoch.
    pub publish_time: u64,
}

/// Encodes the message info of frame `seq` of stream `stream_id`.
pub fn encode(stream_id: u16, seq: u32, info: MessageInfo) -> [u8; MESSAGE_INFO_LEN] {
    let mut b = [0u8; MESSAGE_INFO_LEN];
    b[0..2].copy_from_slice(&stream_id.to_le_bytes());
    b[2..6].copy_from_slice(&seq.to_le_bytes());
    b[6..10].copy_from_slice(&info.sequence.to_le_bytes());
    b[10..18].copy_from_slice(&info.publish_time.to_le_bytes());
    b
}

/// Decodes one message-info frame: `(stream id, frame seq, info)`; `offset` names the record in
/// the error.
pub fn decode(b: &[u8], offset: u64) -> Result<(u16, u64, MessageInfo)> {
    let b: &[u8; MESSAGE_INFO_LEN] = b.try_into().map_err(|_| Error::Malformed {
        what: "mcap.message_info frame",
        offset,
        reason: format!("{} bytes, expected {MESSAGE_INFO_LEN}", b.len()),
    })?;
    let stream = u16::from_le_bytes([b[0], b[1]]);
    let seq = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let sequence = u32::from_le_bytes([b[6], b[7], b[8], b[9]]);
    let publish_time = u64::from_le_bytes([b[10], b[11], b[12], b[13], b[14], b[15], b[16], b[17]]);
    Ok((stream, u64::from(seq), MessageInfo { sequence, publish_time }))
}

/// The message info of a session's frames, by (stream id, frame seq); `None` when the session
/// has no message-info stream (it was not imported from MCAP, or every message had the default
/// publish time and sequence). Fails on a damaged or malformed info frame.
pub fn read(session: &Session) -> Result<Option<HashMap<(u16, u64), MessageInfo>>> {
    let Ok(r) = session.stream(MESSAGE_INFO_STREAM) else { return Ok(None) };
    let mut info = HashMap::with_capacity(r.len() as usize);
    for f in r.iterate() {
        let f = f?;
        let (stream, seq, i) = decode(f.data(), f.offset())?;
        info.insert((stream, seq), i);
    }
    Ok(Some(info))
}
