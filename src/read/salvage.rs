//! Reading a damaged file: every record that validates stays reachable.
//!
//! When the session chain, an index or a session's description is damaged, the file is read
//! forward record by record. A record that fails its check is skipped by searching, byte by
//! byte, for the next offset where a record validates: with the current session's salt, as a
//! SessionStart with its own salt, or — when a SessionStart itself is damaged — as two
//! consecutive records that agree on a salt recovered from their CRCs (`format::salt`). Every
//! valid Frame is indexed in memory; sessions keep their place in the file (spec §7, "Reading a
//! damaged file").

use super::layout::{active_session, owned_runs, read_finished, set_metadata, RunSource, SessionLayout, SessionState, StreamLayout};
use crate::format::header::HEADER_LEN;
use crate::format::header::{SlotState, Slots};
use crate::format::index::IndexEntry;
use crate::format::record::{
    decode_frame, decode_metadata, next_nonzero_kind, plausible_record_at, read_record, salt_crc, session_salt, CheckpointBody,
    DescriptionBody, Kind, SessionEndBody, SessionStartBody, StreamDefBody, RECORD_HEADER_LEN,
};
use crate::format::salt::infer_salt;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A damaged stretch of a file: where it starts, how long, and what it seemed to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Damage {
    pub offset: u64,
    pub len: u64,
    /// The kind byte's name when the framing was readable ("frame", "record" when not).
    pub what: String,
    pub reason: String,
}

/// Frames of one stream found by the scan.
#[derive(Clone, Debug, Default)]
pub(crate) struct SalvagedStream {
    pub def: Option<(u64, StreamDefBody)>,
    pub entries: Vec<IndexEntry>,
    pub payload_bytes: u64,
}

/// One session as the forward scan found it.
#[derive(Clone, Debug)]
pub(crate) struct SalvagedSession {
    /// Offset of its SessionStart (or of the damage where it must have been).
    pub offset: u64,
    pub salt: u32,
    /// The start record, when it validated.
    pub start: Option<SessionStartBody>,
    pub streams: BTreeMap<u16, SalvagedStream>,
    pub metadata: Vec<(String, String)>,
    pub checkpoints: u32,
    pub last_checkpoint: u64,
    pub last_wall_ns: i64,
    pub end: Option<(u64, SessionEndBody)>,
    /// Damage met inside the session (valid records of the session follow it).
    pub damage: Vec<Damage>,
    /// Offset just past the session's last valid record.
    pub valid_end: u64,
}

impl SalvagedSession {
    fn new(offset: u64, salt: u32, start: Option<SessionStartBody>, end_of_start: u64) -> Self {
        let metadata = start.as_ref().map(|s| s.metadata.clone()).unwrap_or_default();
        let last_wall_ns = start.as_ref().map_or(0, |s| s.start_ns);
        SalvagedSession {
            offset,
            salt,
            start,
            streams: BTreeMap::new(),
            metadata,
            checkpoints: 0,
            last_checkpoint: 0,
            last_wall_ns,
            end: None,
            damage: Vec::new(),
            valid_end: end_of_start,
        }
    }

    /// Takes in one record that validated with the session's salt.
    fn apply(&mut self, file: &[u8], at: u64, kind: Option<Kind>, body: &[u8], end: u64) {
        let applied: crate::Result<()> = (|| {
            match kind {
                Some(Kind::Frame) => {
                    let (f, payload) = decode_frame(body, at)?;
                    let s = self.streams.entry(f.stream).or_default();
                    s.entries.push(IndexEntry { ts: f.ts, offset: at });
                    s.payload_bytes += payload.len() as u64;
                }
                Some(Kind::StreamDef) => {
                    let def = StreamDefBody::decode(body, at)?;
                    self.streams.entry(def.stream).or_default().def.get_or_insert((at, def));
                }
                Some(Kind::Metadata) => {
                    let (k, v) = decode_metadata(body, at)?;
                    set_metadata(&mut self.metadata, k, v);
                }
                Some(Kind::Checkpoint) => {
                    let cp = CheckpointBody::decode(body, at)?;
                    self.checkpoints = self.checkpoints.max(cp.number);
                    self.last_checkpoint = at;
                    self.last_wall_ns = cp.wall_ns;
                }
                Some(Kind::Description) => {
                    // The second copy of the description: what a damaged SessionStart or
                    // StreamDef took away comes back from here.
                    let d = DescriptionBody::decode(body, at)?;
                    if self.start.is_none() {
                        for (k, v) in &d.start.metadata {
                            set_metadata(&mut self.metadata, k.clone(), v.clone());
                        }
                        self.start = Some(d.start);
                    }
                    for def in d.streams {
                        self.streams.entry(def.stream).or_default().def.get_or_insert((at, def));
                    }
                }
                Some(Kind::SessionEnd) => {
                    let e = SessionEndBody::decode(body, at)?;
                    for (k, v) in &e.metadata {
                        set_metadata(&mut self.metadata, k.clone(), v.clone());
                    }
                    self.end = Some((at, e));
                }
                _ => {}
            }
            Ok(())
        })();
        if let Err(e) = applied {
            // The CRC held but the body does not decode: written by a broken writer.
            self.damage.push(Damage { offset: at, len: end - at, what: kind_name(file, at), reason: e.to_string() });
        }
        self.valid_end = end;
    }
}

/// The record kind's name at `at`, as far as its kind byte can be read.
fn kind_name(file: &[u8], at: u64) -> String {
    file.get(at as usize + 8).and_then(|&b| Kind::from_byte(b)).map_or("record", |k| k.name()).to_string()
}

/// A SessionStart that validates at `at`: its salt, body and end.
fn session_start_at(file: &[u8], at: u64) -> Option<(u32, SessionStartBody, u64)> {
    if plausible_record_at(file, at) != Some(Kind::SessionStart) {
        return None;
    }
    let salt = SessionStartBody::salt_of(file, at).ok()?;
    let r = read_record(file, at, Some(salt)).ok()?;
    let body = SessionStartBody::decode(r.body, at).ok()?;
    (session_salt(&body.id) == salt).then_some((salt, body, r.end()))
}

/// The salt two consecutive records at `at` agree on, when neither is a SessionStart: the
/// mark of a session whose start record is damaged.
fn inferred_salt_at(file: &[u8], at: u64) -> Option<u32> {
    let r = read_record(file, at, None).ok()?;
    if matches!(r.kind(), None | Some(Kind::SessionStart)) {
        return None;
    }
    // The next record must at least look like one before the salt is worked out backwards.
    if matches!(plausible_record_at(file, r.end()), None | Some(Kind::SessionStart)) {
        return None;
    }
    let start = at as usize;
    let first = file.get(start..r.end() as usize)?;
    // Two byte-identical records agree on every salt (the CRC of the same bytes): repeated
    // bytes inside a damaged record (runs of zeros with one kind byte, say) prove nothing.
    if file.get(r.end() as usize..).is_some_and(|rest| rest.starts_with(first)) {
        return None;
    }
    let stored = u32::from_le_bytes(first[..4].try_into().ok()?);
    let salt = infer_salt(&first[4..], stored);
    let next = read_record(file, r.end(), Some(salt)).ok()?;
    (next.kind() != Some(Kind::SessionStart)).then_some(salt)
}

/// What lies at a resynchronisation point.
enum Found {
    /// A record of the current session.
    Same,
    /// A valid SessionStart.
    Start,
    /// Records of a session whose start is damaged, with its salt.
    Orphan(u32),
}

/// The next offset after `from` where something validates. Sessions whose start is damaged
/// (`Found::Orphan`) are looked for only when `orphans` is set.
fn resync(file: &[u8], from: u64, salt: Option<u32>, orphans: bool) -> Option<(u64, Found)> {
    let len = file.len() as u64;
    let mut at = from;
    loop {
        // Zeroed space (reserved by a writer, or a hole) holds no record start.
        at = next_nonzero_kind(file, at);
        if at + RECORD_HEADER_LEN as u64 > len {
            break;
        }
        // Records of kinds this version does not know cannot be read anyway: the next known
        // record after one is found instead.
        if plausible_record_at(file, at).is_some() {
            if let Some(s) = salt {
                if read_record(file, at, Some(s)).is_ok() {
                    return Some((at, Found::Same));
                }
            }
            if session_start_at(file, at).is_some() {
                return Some((at, Found::Start));
            }
            if let Some(s) = orphans.then(|| inferred_salt_at(file, at)).flatten() {
                if salt.is_none() || Some(s) != salt {
                    return Some((at, Found::Orphan(s)));
                }
            }
        }
        at += 1;
    }
    None
}

/// The next offset from `from` where a record of the session with `salt` validates, unless a
/// SessionStart comes first (then `None`: what follows belongs to another session). Records of
/// other salts are passed over (§7 rule 3: a tail scan resynchronises on its own salt only), so
/// bytes inside a damaged record that happen to look like another session's records cannot end
/// the scan early.
pub(crate) fn resync_same(file: &[u8], from: u64, salt: u32) -> Option<u64> {
    match resync(file, from, Some(salt), false)? {
        (at, Found::Same) => Some(at),
        _ => None,
    }
}

/// The first offset at or after `from` where a session's start validates, or two records
/// agree on a salt (records of some session).
pub(crate) fn first_valid_from(file: &[u8], from: u64) -> Option<u64> {
    resync(file, from, None, true).map(|(at, _)| at)
}

/// Every session of `file[from..to]` by a forward scan that resynchronises after damage.
/// Returns the sessions in file order and the damage found outside any session.
pub(crate) fn salvage(file: &[u8], from: u64, to: u64) -> (Vec<SalvagedSession>, Vec<Damage>) {
    let file = &file[..usize::try_from(to).unwrap_or(usize::MAX).min(file.len())];
    let len = file.len() as u64;
    let mut sessions: Vec<SalvagedSession> = Vec::new();
    let mut loose = Vec::new();
    let mut cur: Option<SalvagedSession> = None;
    let mut at = from.max(HEADER_LEN);
    while at < len {
        if let Some(s) = cur.as_mut() {
            if let Ok(r) = read_record(file, at, Some(s.salt)) {
                if r.kind() != Some(Kind::SessionStart) {
                    let (kind, end) = (r.kind(), r.end());
                    s.apply(file, at, kind, r.body, end);
                    at = end;
                    continue;
                }
            }
        }
        if let Some((salt, body, end)) = session_start_at(file, at) {
            sessions.extend(cur.take());
            cur = Some(SalvagedSession::new(at, salt, Some(body), end));
            at = end;
            continue;
        }
        // Damage: find the next thing that validates.
        let reason = match cur.as_ref() {
            Some(s) => read_record(file, at, Some(s.salt)).err().map(|e| e.to_string()).unwrap_or_default(),
            None => "not a record of any session".to_string(),
        };
        let next = resync(file, at + 1, cur.as_ref().map(|s| s.salt), true);
        let damage_end = next.as_ref().map_or(len, |(o, _)| *o);
        let damage = Damage { offset: at, len: damage_end - at, what: kind_name(file, at), reason };
        match next {
            // Nothing validates after it: a torn tail, not damage inside a session.
            None => break,
            Some((o, Found::Same)) => {
                if let Some(s) = cur.as_mut() {
                    s.damage.push(damage);
                }
                at = o;
            }
            Some((o, Found::Start)) => {
                match cur.as_mut() {
                    Some(s) => s.damage.push(damage),
                    None => loose.push(damage),
                }
                at = o;
            }
            Some((o, Found::Orphan(salt))) => {
                sessions.extend(cur.take());
                let mut s = SalvagedSession::new(at, salt, None, o);
                s.damage.push(Damage { what: "session start".into(), ..damage });
                cur = Some(s);
                at = o;
            }
        }
    }
    sessions.extend(cur);
    (sessions, loose)
}

/// A layout for reading a salvaged session: one in-memory run per stream, built from every
/// valid frame. Streams without a valid definition are named `stream-<id>`.
pub(crate) fn layout_of_salvaged(s: &SalvagedSession, state: SessionState) -> SessionLayout {
    let mut streams = Vec::new();
    let count = s.streams.keys().next_back().map_or(0, |&id| usize::from(id) + 1);
    for id in (0..count).map(|i| i as u16) {
        let found = s.streams.get(&id).cloned().unwrap_or_default();
        let def = found.def.map(|(_, d)| d).unwrap_or_else(|| StreamDefBody {
            stream: id,
            name: format!("stream-{id}"),
            encoding: String::new(),
            schema_name: String::new(),
            schema: Vec::new(),
        });
        let mut entries = found.entries;
        entries.sort_unstable();
        streams.push(StreamLayout {
            def,
            frames: entries.len() as u64,
            payload_bytes: found.payload_bytes,
            first_ts: entries.iter().map(|e| e.ts).min().unwrap_or(0),
            last_ts: entries.iter().map(|e| e.ts).max().unwrap_or(0),
            runs: RunSource::Built(Arc::from(owned_runs(&entries))),
        });
    }
    let start = s.start.clone().unwrap_or_else(|| SessionStartBody {
        id: uuid::Uuid::nil(),
        start_ns: streams.iter().filter(|st| st.frames > 0).map(|st| st.first_ts).min().unwrap_or(0),
        prev_session_end: 0,
        name: String::new(),
        metadata: Vec::new(),
        flags: 0,
    });
    let frames = streams.iter().map(|st| st.frames).sum();
    SessionLayout {
        offset: s.offset,
        salt: s.salt,
        salt_state: salt_crc(s.salt),
        start,
        state,
        end: s.end.as_ref().map(|(_, e)| e.clone()),
        end_offset: s.end.as_ref().map(|(o, _)| *o),
        index_offset: None,
        segment_end: s.valid_end,
        frames,
        checkpoints: s.checkpoints,
        metadata: s.metadata.clone(),
        streams,
        stop: s.damage.first().map(|d| format!("damaged {} at offset {}: {}", d.what, d.offset, d.reason)),
        last_checkpoint: None,
        index_checked: true,
        skipped: s.damage.iter().map(|d| format!("damaged {} at offset {} ({} bytes): {}", d.what, d.offset, d.len, d.reason)).collect(),
    }
}

/// Every session of a file whose structure is damaged, in file order, and a warning for each
/// damaged stretch. A session whose end and index validate is read as usual; the active session
/// as usual when nothing in it is damaged; any other session from its scanned records, with
/// state `damaged` (or `interrupted` / `recording` for an undamaged unfinished last session).
pub(crate) fn discover_salvaged(file: &[u8], slots: &Slots, live: bool) -> (Vec<SessionLayout>, Vec<String>) {
    let limit = if live && slots.current.state == SlotState::Recording { slots.current.committed_len } else { file.len() as u64 };
    let (found, loose) = salvage(file, HEADER_LEN, limit);
    let mut warnings: Vec<String> = loose
        .iter()
        .map(|d| format!("damaged {} at offset {} ({} bytes) outside any session: {}", d.what, d.offset, d.len, d.reason))
        .collect();
    let n = found.len();
    let mut out = Vec::with_capacity(n);
    for (i, s) in found.iter().enumerate() {
        for d in &s.damage {
            warnings.push(format!("session {i}: damaged {} at offset {} ({} bytes): {}", d.what, d.offset, d.len, d.reason));
        }
        let last = i + 1 == n;
        if s.start.is_some() {
            if let Some((end_at, _)) = s.end {
                if let Ok(l) = read_finished(file, end_at) {
                    if l.offset == s.offset {
                        out.push(l);
                        continue;
                    }
                }
            } else if last && s.damage.is_empty() && slots.current.state == SlotState::Recording && slots.current.active_session == s.offset
            {
                if let Some(Ok(l)) = active_session(file, slots, live) {
                    out.push(l);
                    continue;
                }
            }
        }
        let active = slots.current.state == SlotState::Recording && slots.current.active_session == s.offset;
        let state = if s.end.is_none() && last && s.start.is_some() && (s.damage.is_empty() || active) {
            if live {
                SessionState::Recording
            } else {
                SessionState::Interrupted
            }
        } else {
            SessionState::Damaged
        };
        out.push(layout_of_salvaged(s, state));
    }
    (out, warnings)
}
