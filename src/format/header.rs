//! The fixed header page and its two commit slots.
//!
//! ```text
//! 0     MAGIC            8  89 52 45 43 0D 0A 1A 0A  ("\x89REC\r\n\x1a\n")
//! 8     major u16, minor u16
//! 12    header_len u32   (= HEADER_LEN; data starts there)
//! 16    file_id          16 (UUID v4)
//! 32    created_ns i64
//! 40    flags u32        (0)
//! 44    reserved         16 zero bytes
//! 60    header CRC32     over bytes 0..60
//! 64    slot A           64 bytes
//! 128   slot B           64 bytes
//! 192   zero up to HEADER_LEN
//! ```

use super::bytes::{le_u32, ByteReader};
use super::{FORMAT_MAJOR, FORMAT_MINOR};
use crate::error::{Error, Result};

/// PNG-style magic: a high byte catches 7-bit transfers, CR LF and LF catch newline conversion,
/// 0x1A stops `type` on DOS.
pub const MAGIC: [u8; 8] = [0x89, b'R', b'E', b'C', b'\r', b'\n', 0x1A, b'\n'];
/// Bytes of the fixed header fields covered by the header CRC.
pub const HEADER_FIELDS_LEN: usize = 60;
/// Offset of the header CRC.
pub const HEADER_CRC_OFFSET: usize = HEADER_FIELDS_LEN;
/// Length of one commit slot.
pub const SLOT_LEN: usize = 64;
/// Offset of commit slot A.
pub const SLOT_A_OFFSET: usize = HEADER_CRC_OFFSET + 4;
/// Offset of commit slot B.
pub const SLOT_B_OFFSET: usize = SLOT_A_OFFSET + SLOT_LEN;
/// End of the meaningful header bytes.
pub const HEADER_USED_LEN: usize = SLOT_B_OFFSET + SLOT_LEN;
/// Size of the header page; the first record starts here. A whole page keeps slot writes from
/// sharing a disk sector with record data.
pub const HEADER_LEN: u64 = 4096;
/// Bytes of a slot covered by its CRC.
const SLOT_FIELDS_LEN: usize = 60;

/// The immutable part of the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// Major version of the writer.
    pub major: u16,
    /// Minor version of the writer.
    pub minor: u16,
    /// Random identity of the file.
    pub file_id: uuid::Uuid,
    /// Creation wall time, nanoseconds since the epoch.
    pub created_ns: i64,
}

impl FileHeader {
    /// A header for a new file written by this version.
    pub fn new(file_id: uuid::Uuid, created_ns: i64) -> Self {
        FileHeader { major: FORMAT_MAJOR, minor: FORMAT_MINOR, file_id, created_ns }
    }

    /// Encodes bytes `0..64` of the header page (magic through header CRC).
    pub fn encode(&self) -> [u8; SLOT_A_OFFSET] {
        let mut b = [0u8; SLOT_A_OFFSET];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&self.major.to_le_bytes());
        b[10..12].copy_from_slice(&self.minor.to_le_bytes());
        b[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
        b[16..32].copy_from_slice(self.file_id.as_bytes());
        b[32..40].copy_from_slice(&self.created_ns.to_le_bytes());
        let crc = crc32fast::hash(&b[..HEADER_FIELDS_LEN]);
        b[HEADER_CRC_OFFSET..SLOT_A_OFFSET].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes and validates the header from the start of a file. Checks, in order: empty file,
    /// magic, length, version, CRC, header length.
    pub fn decode(file: &[u8]) -> Result<FileHeader> {
        if file.is_empty() {
            return Err(Error::EmptyFile);
        }
        let magic_len = file.len().min(8);
        if file[..magic_len] != MAGIC[..magic_len] {
            return Err(Error::BadMagic { found: file[..magic_len].to_vec() });
        }
        if (file.len() as u64) < HEADER_LEN {
            return Err(Error::TruncatedHeader { len: file.len() as u64, needed: HEADER_LEN });
        }
        let mut r = ByteReader::new(&file[8..HEADER_FIELDS_LEN], 8, "file header");
        let major = r.u16()?;
        let minor = r.u16()?;
        if major != FORMAT_MAJOR {
            return Err(Error::UnsupportedVersion { found_major: major, found_minor: minor, supported_major: FORMAT_MAJOR });
        }
        let stored = le_u32(file, HEADER_CRC_OFFSET);
        let computed = crc32fast::hash(&file[..HEADER_FIELDS_LEN]);
        if stored != computed {
            return Err(Error::CrcMismatch { what: "file header", offset: 0, stored, computed });
        }
        let header_len = r.u32()?;
        if u64::from(header_len) != HEADER_LEN {
            return Err(Error::Malformed {
                what: "file header",
                offset: 12,
                reason: format!("header length {header_len}, expected {HEADER_LEN}"),
            });
        }
        let file_id = uuid::Uuid::from_bytes(r.bytes16()?);
        let created_ns = r.i64()?;
        Ok(FileHeader { major, minor, file_id, created_ns })
    }
}

/// Whether a session is being recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// No session open: every session in the file ended with a SessionEnd record.
    Idle = 0,
    /// A session is being recorded (or was interrupted): `active_session` points at its start.
    Recording = 1,
}

/// One commit slot: the active-session marker and the committed length.
///
/// ```text
/// 0   generation u64        higher wins; slots are written alternately
/// 8   state u8              0 idle, 1 recording
/// 9   reserved              7 zero bytes
/// 16  committed_len u64     bytes of the file covered by the last checkpoint or session end
/// 24  active_session u64    offset of the active SessionStart record (0 when idle)
/// 32  last_checkpoint u64   offset of the active session's last Checkpoint record (0: none)
/// 40  last_session_end u64  offset of the last finished session's SessionEnd record (0: none)
/// 48  reserved              12 zero bytes
/// 60  CRC32                 over bytes 0..60
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Monotonic generation number.
    pub generation: u64,
    /// Idle or recording.
    pub state: SlotState,
    /// Length of the file that the last commit made valid.
    pub committed_len: u64,
    /// Offset of the active session's SessionStart record, 0 when idle.
    pub active_session: u64,
    /// Offset of the active session's last Checkpoint record, 0 when none.
    pub last_checkpoint: u64,
    /// Offset of the last finished session's SessionEnd record, 0 when none.
    pub last_session_end: u64,
}

impl Slot {
    /// The slot of a new, empty file.
    pub fn empty() -> Slot {
        Slot {
            generation: 0,
            state: SlotState::Idle,
            committed_len: HEADER_LEN,
            active_session: 0,
            last_checkpoint: 0,
            last_session_end: 0,
        }
    }

    /// Encodes the 64 slot bytes.
    pub fn encode(&self) -> [u8; SLOT_LEN] {
        let mut b = [0u8; SLOT_LEN];
        b[0..8].copy_from_slice(&self.generation.to_le_bytes());
        b[8] = self.state as u8;
        b[16..24].copy_from_slice(&self.committed_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.active_session.to_le_bytes());
        b[32..40].copy_from_slice(&self.last_checkpoint.to_le_bytes());
        b[40..48].copy_from_slice(&self.last_session_end.to_le_bytes());
        let crc = crc32fast::hash(&b[..SLOT_FIELDS_LEN]);
        b[SLOT_FIELDS_LEN..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a slot; `offset` is its file offset (for errors).
    pub fn decode(b: &[u8], offset: u64) -> Result<Slot> {
        let mut r = ByteReader::new(b, offset, "commit slot");
        let all = r.take(SLOT_LEN)?;
        let stored = le_u32(all, SLOT_FIELDS_LEN);
        let computed = crc32fast::hash(&all[..SLOT_FIELDS_LEN]);
        if stored != computed {
            return Err(Error::CrcMismatch { what: "commit slot", offset, stored, computed });
        }
        let mut r = ByteReader::new(all, offset, "commit slot");
        let generation = r.u64()?;
        let state = match r.u8()? {
            0 => SlotState::Idle,
            1 => SlotState::Recording,
            s => return Err(Error::Malformed { what: "commit slot", offset: offset + 8, reason: format!("unknown state {s}") }),
        };
        r.take(7)?;
        let slot = Slot {
            generation,
            state,
            committed_len: r.u64()?,
            active_session: r.u64()?,
            last_checkpoint: r.u64()?,
            last_session_end: r.u64()?,
        };
        if slot.committed_len < HEADER_LEN {
            return Err(Error::Malformed {
                what: "commit slot",
                offset: offset + 16,
                reason: format!("committed length {} is inside the header", slot.committed_len),
            });
        }
        Ok(slot)
    }

    /// File offset of slot A or B (index 0 or 1).
    pub fn offset_of(index: usize) -> u64 {
        if index == 0 {
            SLOT_A_OFFSET as u64
        } else {
            SLOT_B_OFFSET as u64
        }
    }
}

/// Both slots as decoded, and which one is current.
#[derive(Clone, Debug)]
pub struct Slots {
    /// The valid slot with the highest generation.
    pub current: Slot,
    /// Index (0 = A, 1 = B) of the current slot; the next commit overwrites the other one.
    pub current_index: usize,
    /// The other slot, if it is valid.
    pub previous: Option<Slot>,
    /// The decoding error of each slot, if any (A, B).
    pub errors: [Option<String>; 2],
}

impl Slots {
    /// Decodes both slots from a header page and picks the valid one with the highest generation.
    pub fn decode(file: &[u8]) -> Result<Slots> {
        if file.len() < HEADER_USED_LEN {
            return Err(Error::TruncatedHeader { len: file.len() as u64, needed: HEADER_LEN });
        }
        let a = Slot::decode(&file[SLOT_A_OFFSET..SLOT_B_OFFSET], SLOT_A_OFFSET as u64);
        let b = Slot::decode(&file[SLOT_B_OFFSET..HEADER_USED_LEN], SLOT_B_OFFSET as u64);
        let errors = [a.as_ref().err().map(|e| e.to_string()), b.as_ref().err().map(|e| e.to_string())];
        match (a, b) {
            (Ok(a), Ok(b)) if b.generation > a.generation => Ok(Slots { current: b, current_index: 1, previous: Some(a), errors }),
            (Ok(a), Ok(b)) => Ok(Slots { current: a, current_index: 0, previous: Some(b), errors }),
            (Ok(a), Err(_)) => Ok(Slots { current: a, current_index: 0, previous: None, errors }),
            (Err(_), Ok(b)) => Ok(Slots { current: b, current_index: 1, previous: None, errors }),
            (Err(_), Err(_)) => Err(Error::NoValidSlot),
        }
    }
}

/// Encodes a complete header page for a new file: header fields and both slots (A holds
/// generation 1, B generation 0, both idle).
pub fn new_header_page(header: &FileHeader) -> Vec<u8> {
    let mut page = vec![0u8; HEADER_LEN as usize];
    page[..SLOT_A_OFFSET].copy_from_slice(&header.encode());
    let a = Slot { generation: 1, ..Slot::empty() };
    page[SLOT_A_OFFSET..SLOT_B_OFFSET].copy_from_slice(&a.encode());
    page[SLOT_B_OFFSET..HEADER_USED_LEN].copy_from_slice(&Slot::empty().encode());
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_constants_chain() {
        assert_eq!(SLOT_A_OFFSET, 64);
        assert_eq!(SLOT_B_OFFSET, 128);
        assert_eq!(HEADER_USED_LEN, 192);
    }

    #[test]
    fn header_round_trip_and_errors() {
        let h = FileHeader::new(uuid::Uuid::new_v4(), 42);
        let page = new_header_page(&h);
        assert_eq!(FileHeader::decode(&page).unwrap(), h);
        let slots = Slots::decode(&page).unwrap();
        assert_eq!(slots.current.generation, 1);
        assert_eq!(slots.current_index, 0);

        assert!(matches!(FileHeader::decode(&[]), Err(Error::EmptyFile)));
        assert!(matches!(FileHeader::decode(b"PK\x03\x04zip"), Err(Error::BadMagic { .. })));
        assert!(matches!(FileHeader::decode(&page[..100]), Err(Error::TruncatedHeader { .. })));
        let mut newer = page.clone();
        newer[8] = 2;
        assert!(matches!(FileHeader::decode(&newer), Err(Error::UnsupportedVersion { found_major: 2, .. })));
        let mut flipped = page.clone();
        flipped[20] ^= 1;
        assert!(matches!(FileHeader::decode(&flipped), Err(Error::CrcMismatch { offset: 0, .. })));
    }

    #[test]
    fn torn_slot_falls_back_to_the_other() {
        let h = FileHeader::new(uuid::Uuid::new_v4(), 0);
        let mut page = new_header_page(&h);
        let newer = Slot { generation: 2, state: SlotState::Recording, committed_len: 5000, active_session: 4096, ..Slot::empty() };
        page[SLOT_B_OFFSET..HEADER_USED_LEN].copy_from_slice(&newer.encode());
        assert_eq!(Slots::decode(&page).unwrap().current, newer);
        page[SLOT_B_OFFSET + 20] ^= 0xFF; // torn write of B
        let s = Slots::decode(&page).unwrap();
        assert_eq!(s.current.generation, 1);
        assert!(s.errors[1].is_some());
        page[SLOT_A_OFFSET + 3] ^= 0xFF;
        assert!(matches!(Slots::decode(&page), Err(Error::NoValidSlot)));
        // An all-zero slot never validates.
        assert!(Slot::decode(&[0u8; SLOT_LEN], 64).is_err());
    }
}
