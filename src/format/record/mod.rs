//! Record framing (this file) and, one file per family, the body of every record kind.
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

use super::bytes::le_u32;
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
    /// A finished session's index in brief: its stream table and a sample of its run
    /// directories (format 1.1), so that opening reads a constant number of pages.
    IndexSample = 9,
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
            9 => Kind::IndexSample,
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
            Kind::IndexSample => "index sample",
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
    // The error is built only on this branch: built for `ok_or`, it was dropped on every read
    // (~24 instructions a record, a twentieth of a frame's walk).
    let Some(start) = usize::try_from(offset).ok().filter(|&s| s <= file.len()) else {
        return Err(Error::Truncated { what: "record", offset, needed: RECORD_HEADER_LEN as u64, available: 0 });
    };
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

/// The first offset at or after `offset` where a record could start, judged by its kind byte
/// alone (at +8; kind 0 is never valid): zeroed space, such as what a writer reserves ahead
/// of its data (spec §6) or a hole, is passed over 16 bytes at a time instead of byte by byte.
/// `file.len()` when no such offset is left.
pub fn next_nonzero_kind(file: &[u8], offset: u64) -> u64 {
    let Some(from) = usize::try_from(offset).ok().and_then(|o| o.checked_add(8)) else {
        return file.len() as u64;
    };
    let Some(rest) = file.get(from..) else {
        return file.len() as u64;
    };
    let mut chunks = rest.chunks_exact(16);
    let mut skipped = 0usize;
    for c in chunks.by_ref() {
        if c.iter().fold(0u8, |a, &b| a | b) != 0 {
            break;
        }
        skipped += 16;
    }
    let tail = &rest[skipped..];
    match tail.iter().position(|&b| b != 0) {
        Some(p) => (from + skipped + p - 8) as u64,
        None => file.len() as u64,
    }
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

mod checkpoint;
mod frame;
mod index;
mod session;

pub use checkpoint::*;
pub use frame::*;
pub use index::*;
pub use session::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::index::IndexEntry;

    /// Against brute force, from every offset of buffers with runs of zeros of every length
    /// around the 16-byte chunks (and past the end): the first offset whose kind byte is not 0.
    #[test]
    fn next_nonzero_kind_finds_the_first_offset_whose_kind_byte_is_not_zero() {
        let mut seed = 0x1234_5678_u64;
        for case in 0..300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 120) as usize;
            let mut file = vec![0u8; len];
            // A few nonzero bytes, or none.
            for k in 0..(seed >> 8) % 4 {
                if len > 0 {
                    file[((seed >> (16 + 8 * k)) as usize) % len] = 1 + k as u8;
                }
            }
            for at in 0..len as u64 + 20 {
                let brute = (at..len as u64).find(|&o| file.get(o as usize + 8).is_some_and(|&b| b != 0)).unwrap_or(len as u64);
                assert_eq!(next_nonzero_kind(&file, at), brute, "case {case}, from {at}: {file:?}");
            }
        }
        assert_eq!(next_nonzero_kind(&[1u8; 4], u64::MAX), 4);
    }

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
        for len in [0usize, 1, 5, 300_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut p = crc32fast::Hasher::new();
            p.update(&payload);
            let combined = frame_header_combined(salt_crc(salt), 3, 7, -5, payload.len(), &p);
            assert_eq!(combined, frame_header(salt_crc(salt), 3, 7, -5, &payload), "combined CRC, {len} bytes");
        }
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
            flags: SESSION_INTERVAL_CRCS,
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
                interval_crc: 0xDEAD_BEEF,
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
