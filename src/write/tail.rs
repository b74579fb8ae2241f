//! Ending a session: the final Index record and the SessionEnd record. Shared by
//! `SessionWriter::finish` and recovery, which both know the session's runs.

use crate::error::{Error, Result};
use crate::format::index::{IndexEntry, ENTRY_LEN};
use crate::format::record::{put_index, put_record, IndexRuns, IndexStream, IndexStreamInput, Kind, RunRef, SessionEndBody};
use crate::storage::Storage;

/// A run of a stream's index with the largest timestamp in it (to tell whether runs overlap).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunInfo {
    pub run: RunRef,
    pub last_ts: i64,
}

/// What the final index needs to know of one stream.
#[derive(Clone, Debug, Default)]
pub(crate) struct StreamSummary {
    pub id: u16,
    pub def_offset: u64,
    pub frames: u64,
    pub payload_bytes: u64,
    pub first_ts: i64,
    pub last_ts: i64,
    pub runs: Vec<RunInfo>,
}

impl StreamSummary {
    /// A stream's summary; the timestamps are stored as 0 when the stream has no frames.
    pub fn new(id: u16, def_offset: u64, frames: u64, payload_bytes: u64, first_ts: i64, last_ts: i64, runs: Vec<RunInfo>) -> Self {
        let (first_ts, last_ts) = if frames == 0 { (0, 0) } else { (first_ts, last_ts) };
        StreamSummary { id, def_offset, frames, payload_bytes, first_ts, last_ts, runs }
    }
}

/// Runs shorter than this on average are copied into one run, so that a stream with few frames
/// per checkpoint does not get a long run directory.
const MIN_AVERAGE_RUN: u64 = 64;

impl StreamSummary {
    /// Whether the runs can be referenced in place: in key order, not overlapping, long enough.
    fn runs_usable_in_place(&self) -> bool {
        let ordered = self.runs.windows(2).all(|w| w[0].last_ts <= w[1].run.first_ts);
        ordered && (self.runs.len() <= 1 || self.frames / self.runs.len() as u64 >= MIN_AVERAGE_RUN)
    }

    /// Reads every entry of the runs back from storage and sorts them (the merge case).
    fn merged_entries(&self, storage: &dyn Storage) -> Result<Vec<IndexEntry>> {
        let mut all = Vec::with_capacity(usize::try_from(self.frames).unwrap_or(0).min(1 << 24));
        let mut buf = Vec::new();
        for r in &self.runs {
            let len = usize::try_from(r.run.count)
                .ok()
                .and_then(|c| c.checked_mul(ENTRY_LEN))
                .ok_or_else(|| Error::LimitExceeded("index run too large for memory".into()))?;
            buf.resize(len, 0);
            storage.read_at(r.run.entries_offset, &mut buf)?;
            all.extend(buf.chunks_exact(ENTRY_LEN).map(IndexEntry::decode));
        }
        all.sort_unstable();
        Ok(all)
    }
}

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

/// Writes the Index and SessionEnd records at `pos` (all earlier data already in storage).
pub(crate) fn write_index_and_end(
    storage: &mut dyn Storage,
    pos: u64,
    salt: u32,
    streams: &[StreamSummary],
    end: &EndFields<'_>,
) -> Result<WrittenEnd> {
    let mut merged: Vec<Option<Vec<IndexEntry>>> = Vec::with_capacity(streams.len());
    let mut refs: Vec<Vec<RunRef>> = Vec::with_capacity(streams.len());
    for s in streams {
        if s.runs_usable_in_place() {
            merged.push(None);
            refs.push(s.runs.iter().map(|r| r.run).collect());
        } else {
            merged.push(Some(s.merged_entries(storage)?));
            refs.push(Vec::new());
        }
    }
    let inputs: Vec<IndexStreamInput<'_>> = streams
        .iter()
        .zip(merged.iter().zip(&refs))
        .map(|(s, (m, r))| IndexStreamInput {
            stats: IndexStream {
                stream: s.id,
                def_offset: s.def_offset,
                frames: s.frames,
                payload_bytes: s.payload_bytes,
                first_ts: s.first_ts,
                last_ts: s.last_ts,
                run_count: 0,
                runs_offset: 0,
            },
            runs: match m {
                Some(entries) => IndexRuns::Inline(entries),
                None => IndexRuns::Refs(r),
            },
        })
        .collect();
    let mut out = Vec::new();
    put_index(&mut out, salt, pos, &inputs);
    let end_offset = pos + out.len() as u64;
    let body = SessionEndBody {
        session_start: end.session_start,
        index_offset: pos,
        end_ns: end.end_ns,
        frames: end.frames,
        checkpoints: end.checkpoints,
        recovered: end.recovered,
        metadata: end.metadata.to_vec(),
    };
    put_record(&mut out, Kind::SessionEnd, salt, &body.encode());
    storage.write_at(pos, &out)?;
    Ok(WrittenEnd { end_offset, new_len: pos + out.len() as u64 })
}
