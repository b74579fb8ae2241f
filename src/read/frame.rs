//! A frame read from a file.

use super::file::FileInner;
use super::interval::IntervalCheck;
use crate::error::{Error, Result};
use crate::format::codec::decode_value;
use crate::format::index::IndexEntry;
use crate::format::record::{
    decode_frame, frame_header_within, read_record_from_state, Kind, FRAME_FIXED_LEN, FRAME_OVERHEAD, RECORD_HEADER_LEN,
};
use crate::time::Timestamp;
use std::sync::Arc;

/// One frame: timestamp, stream, arrival number and payload. The payload is borrowed from the
/// memory map (zero-copy); the frame keeps the map alive.
#[derive(Clone)]
pub struct Frame {
    pub(crate) file: Arc<FileInner>,
    pub(crate) offset: u64,
    pub(crate) ts: i64,
    pub(crate) stream_id: u16,
    pub(crate) seq: u32,
    pub(crate) payload_start: usize,
    pub(crate) payload_len: usize,
    pub(crate) session: usize,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("ts", &self.ts)
            .field("stream", &self.stream())
            .field("seq", &self.seq)
            .field("offset", &self.offset)
            .field("len", &self.payload_len)
            .finish()
    }
}

impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        Arc::ptr_eq(&self.file, &other.file) && self.offset == other.offset
    }
}

/// What checking a frame record yields: its arrival number and where its payload is.
pub(crate) struct Checked {
    pub seq: u32,
    pub payload_start: usize,
    pub payload_len: usize,
}

/// The frame an entry points at when it is the next record of the interval a walk in file
/// order is in (the record at its boundary, in an interval whose CRC matched): framing only,
/// as [`check_frame`] checks it there. `None` when the entry is not there or does not describe
/// the frame found: [`check_frame`] then says what holds. Nothing changes on `None`.
#[inline]
pub(crate) fn check_at_boundary(bytes: &[u8], stream_id: u16, e: IndexEntry, intervals: &mut IntervalCheck) -> Option<Checked> {
    let end = intervals.at_boundary(e.offset)?;
    let (f, payload_len) = frame_header_within(bytes, e.offset, end)?;
    if f.stream != stream_id || f.ts != e.ts {
        return None;
    }
    let payload_start = e.offset as usize + FRAME_OVERHEAD;
    intervals.passed((payload_start + payload_len) as u64);
    Some(Checked { seq: f.seq, payload_start, payload_len })
}

/// Checks the frame an index entry points at: its CRC (unless `intervals` vouches for its
/// bytes: a record boundary in an interval whose CRC matched), and that it is the frame the
/// entry describes.
#[inline]
pub(crate) fn check_frame(bytes: &[u8], salt_state: u32, stream_id: u16, e: IndexEntry, intervals: &mut IntervalCheck) -> Result<Checked> {
    if let Some(end) = intervals.covers(bytes, e.offset) {
        if let Some((f, payload_len)) = frame_header_within(bytes, e.offset, end) {
            if f.stream == stream_id && f.ts == e.ts {
                let payload_start = e.offset as usize + FRAME_OVERHEAD;
                intervals.passed((payload_start + payload_len) as u64);
                return Ok(Checked { seq: f.seq, payload_start, payload_len });
            }
        }
        // Not the frame the entry describes: the checks below say why.
    }
    let r = read_record_from_state(bytes, e.offset, salt_state)?;
    if r.kind() != Some(Kind::Frame) {
        return Err(Error::Malformed {
            what: "frame",
            offset: e.offset,
            reason: format!("index points at a record of kind {}", r.kind_byte),
        });
    }
    let (f, payload) = decode_frame(r.body, e.offset)?;
    if f.stream != stream_id || f.ts != e.ts {
        return Err(Error::Malformed {
            what: "frame",
            offset: e.offset,
            reason: format!("index expects stream {stream_id} at ts {}, frame has stream {} at ts {}", e.ts, f.stream, f.ts),
        });
    }
    Ok(Checked { seq: f.seq, payload_start: e.offset as usize + RECORD_HEADER_LEN + FRAME_FIXED_LEN, payload_len: payload.len() })
}

impl Frame {
    /// Loads the frame an index entry points at, checking its CRC and that it is the frame the
    /// entry describes.
    pub(crate) fn load(
        file: &Arc<FileInner>,
        session: usize,
        salt_state: u32,
        stream_id: u16,
        e: IndexEntry,
        intervals: &mut IntervalCheck,
    ) -> Result<Frame> {
        let c = check_frame(file.bytes(), salt_state, stream_id, e, intervals)?;
        Ok(Frame::checked(file, session, stream_id, e, c))
    }

    /// The frame of entry `e`, checked (`c`).
    #[inline]
    pub(crate) fn checked(file: &Arc<FileInner>, session: usize, stream_id: u16, e: IndexEntry, c: Checked) -> Frame {
        Frame {
            file: file.clone(),
            offset: e.offset,
            ts: e.ts,
            stream_id,
            seq: c.seq,
            payload_start: c.payload_start,
            payload_len: c.payload_len,
            session,
        }
    }

    /// Where the payload starts in the file (its first byte's offset): a binding that maps the
    /// file itself hands out views of `data_offset()..data_offset() + data().len()`.
    pub fn data_offset(&self) -> u64 {
        self.payload_start as u64
    }

    /// The frame's timestamp.
    pub fn timestamp(&self) -> Timestamp {
        Timestamp::from_nanos(self.ts)
    }

    /// Name of the frame's stream.
    pub fn stream(&self) -> &str {
        self.file.sessions.get(self.session).and_then(|s| s.streams.get(usize::from(self.stream_id))).map_or("", |s| s.def.name.as_str())
    }

    /// Id of the frame's stream within its session.
    pub fn stream_id(&self) -> u16 {
        self.stream_id
    }

    /// Arrival number within its stream (0-based).
    pub fn seq(&self) -> u64 {
        u64::from(self.seq)
    }

    /// The payload, borrowed from the file.
    pub fn data(&self) -> &[u8] {
        self.file.bytes().get(self.payload_start..self.payload_start + self.payload_len).unwrap_or(&[])
    }

    /// Decodes a payload written with `write_value` (bincode, with a size limit).
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> crate::Result<T> {
        decode_value(self.data(), self.offset)
    }

    /// File offset of the frame's record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Position of the frame's session in the file.
    pub fn session_position(&self) -> usize {
        self.session
    }

    /// UUID of the frame's session.
    pub fn session_id(&self) -> uuid::Uuid {
        self.file.sessions[self.session].start.id
    }
}

/// A frame borrowed from the [`crate::Replay`] it was read through: what [`Frame`] gives, without
/// a reference count per frame. From [`crate::Replay::scan`], the fastest way through a file;
/// [`FrameRef::to_frame`] makes an owned [`Frame`] of one that must outlive the replay.
///
/// ```
/// use recfile::{Recorder, RecFile, Timestamp};
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("scan.rec");
/// # { let mut r = Recorder::create(&path).unwrap(); let mut s = r.start_session("s").unwrap();
/// #   let id = s.add_stream("imu", "raw").unwrap();
/// #   for i in 0..100u8 { s.write(id, Timestamp::from_nanos(i64::from(i)), &[i; 8]).unwrap(); }
/// #   s.finish().unwrap(); }
/// let file = RecFile::open(&path).unwrap();
/// let imu = file.last_session().unwrap().stream("imu").unwrap();
/// let mut bytes = 0;
/// for frame in imu.scan() {
///     bytes += frame.unwrap().data().len();
/// }
/// assert_eq!(bytes, 800);
/// ```
#[derive(Clone, Copy)]
pub struct FrameRef<'a> {
    pub(crate) file: &'a Arc<FileInner>,
    pub(crate) offset: u64,
    pub(crate) ts: i64,
    pub(crate) stream_id: u16,
    pub(crate) seq: u32,
    pub(crate) payload: &'a [u8],
    pub(crate) session: usize,
}

impl std::fmt::Debug for FrameRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameRef")
            .field("ts", &self.ts)
            .field("stream", &self.stream())
            .field("seq", &self.seq)
            .field("offset", &self.offset)
            .field("len", &self.payload.len())
            .finish()
    }
}

impl<'a> FrameRef<'a> {
    /// Checks the frame an index entry points at (as [`Frame`] does, its bytes vouched for by
    /// `intervals` or by its own CRC) and borrows it.
    #[inline]
    pub(crate) fn load(
        file: &'a Arc<FileInner>,
        session: usize,
        salt_state: u32,
        stream_id: u16,
        e: IndexEntry,
        intervals: &mut IntervalCheck,
    ) -> Result<FrameRef<'a>> {
        let c = check_frame(file.bytes(), salt_state, stream_id, e, intervals)?;
        Ok(FrameRef::checked(file, session, stream_id, e, c))
    }

    /// The frame of entry `e`, checked (`c`), borrowed.
    #[inline]
    pub(crate) fn checked(file: &'a Arc<FileInner>, session: usize, stream_id: u16, e: IndexEntry, c: Checked) -> FrameRef<'a> {
        let payload = file.bytes().get(c.payload_start..c.payload_start + c.payload_len).unwrap_or(&[]);
        FrameRef { file, offset: e.offset, ts: e.ts, stream_id, seq: c.seq, payload, session }
    }

    /// The frame's timestamp.
    pub fn timestamp(&self) -> Timestamp {
        Timestamp::from_nanos(self.ts)
    }

    /// Name of the frame's stream.
    pub fn stream(&self) -> &'a str {
        self.file.sessions.get(self.session).and_then(|s| s.streams.get(usize::from(self.stream_id))).map_or("", |s| s.def.name.as_str())
    }

    /// Id of the frame's stream within its session.
    pub fn stream_id(&self) -> u16 {
        self.stream_id
    }

    /// Arrival number within its stream (0-based).
    pub fn seq(&self) -> u64 {
        u64::from(self.seq)
    }

    /// The payload, borrowed from the file.
    pub fn data(&self) -> &'a [u8] {
        self.payload
    }

    /// Decodes a payload written with `write_value` (bincode, with a size limit).
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> crate::Result<T> {
        decode_value(self.payload, self.offset)
    }

    /// File offset of the frame's record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// An owned [`Frame`] of the same record (one reference count).
    pub fn to_frame(&self) -> Frame {
        let payload_start = self.offset as usize + RECORD_HEADER_LEN + FRAME_FIXED_LEN;
        Frame {
            file: self.file.clone(),
            offset: self.offset,
            ts: self.ts,
            stream_id: self.stream_id,
            seq: self.seq,
            payload_start,
            payload_len: self.payload.len(),
            session: self.session,
        }
    }
}
