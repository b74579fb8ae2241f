//! Actions: one call of a module, stored as a frame of the session's action stream.

use crate::error::{Error, Result};
use crate::format::codec::{decode_value, encode_value};
use crate::format::record::{read_record, CheckpointBody, Kind, RECORD_HEADER_LEN};
use crate::read::Session;
use crate::time::Timestamp;
use crate::write::{SessionInfo, SessionWriter, StreamId};
use std::time::{Duration, Instant};

/// Name of the stream that holds a session's actions.
pub const ACTION_STREAM: &str = "actions";
/// Encoding label of the action stream (bincode of the action record, version 1).
pub const ACTION_ENCODING: &str = "recfile.action.v1";

/// One call of a module: what went in, what came out (or the error), when and how long.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Action {
    /// Sequence number within the session (0, 1, …; assigned when recorded).
    pub seq: u64,
    /// When the call started.
    pub ts: Timestamp,
    /// What was called: `find`, `ask`, `tool_call`, `put`, …
    pub kind: String,
    /// Input bytes (JSON for `record_call`).
    pub input: Vec<u8>,
    /// Output bytes, or the error message.
    pub output: std::result::Result<Vec<u8>, String>,
    /// How long the call took.
    pub duration: Duration,
    /// Free-form metadata.
    pub metadata: Vec<(String, String)>,
}

impl Action {
    /// An action of `kind` with this input and output, stamped now (seq is assigned when it is
    /// recorded).
    pub fn new(kind: &str, input: Vec<u8>, output: std::result::Result<Vec<u8>, String>) -> Self {
        Action { seq: 0, ts: Timestamp::now(), kind: kind.into(), input, output, duration: Duration::ZERO, metadata: Vec::new() }
    }

    /// The input decoded from JSON (as written by `record_call`).
    pub fn input_json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.input).map_err(|e| Error::Decode { offset: self.seq, reason: format!("action input: {e}") })
    }

    /// The output decoded from JSON, or the recorded error message.
    pub fn output_json<T: serde::de::DeserializeOwned>(&self) -> Result<std::result::Result<T, String>> {
        match &self.output {
            Ok(b) => {
                serde_json::from_slice(b).map(Ok).map_err(|e| Error::Decode { offset: self.seq, reason: format!("action output: {e}") })
            }
            Err(m) => Ok(Err(m.clone())),
        }
    }
}

/// How a session records actions (memvid's ReplayConfig).
pub struct ActionOptions {
    /// Write a checkpoint every this many actions (0: only the writer's own triggers).
    pub auto_checkpoint_interval: u64,
    /// After this many actions the session is finished and further calls fail with
    /// [`Error::ActionLimitReached`] (0: no limit).
    pub max_actions_per_session: u64,
    /// Called at each checkpoint; its bytes are stored as the checkpoint's state.
    pub snapshot: Option<Box<dyn FnMut() -> Vec<u8> + Send>>,
}

impl Default for ActionOptions {
    fn default() -> Self {
        ActionOptions { auto_checkpoint_interval: 100, max_actions_per_session: 0, snapshot: None }
    }
}

impl ActionOptions {
    /// Defaults: a checkpoint every 100 actions, no limit, no snapshot.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the checkpoint interval in actions.
    pub fn auto_checkpoint_interval(mut self, actions: u64) -> Self {
        self.auto_checkpoint_interval = actions;
        self
    }
    /// Sets the action limit.
    pub fn max_actions_per_session(mut self, actions: u64) -> Self {
        self.max_actions_per_session = actions;
        self
    }
    /// Sets the state snapshot callback.
    pub fn snapshot(mut self, f: impl FnMut() -> Vec<u8> + Send + 'static) -> Self {
        self.snapshot = Some(Box::new(f));
        self
    }
}

/// The writer's action bookkeeping.
#[derive(Default)]
pub(crate) struct ActionState {
    pub stream: Option<StreamId>,
    pub next_seq: u64,
    pub checkpoint_every: u64,
    pub max: u64,
    pub configured: bool,
}

impl SessionWriter {
    /// Sets how actions are recorded (call before the first action).
    pub fn configure_actions(&mut self, options: ActionOptions) {
        let st = self.actions_mut();
        st.checkpoint_every = options.auto_checkpoint_interval;
        st.max = options.max_actions_per_session;
        st.configured = true;
        self.set_snapshot(options.snapshot);
    }

    /// Records an action in the session's action stream; returns its sequence number. When
    /// `max_actions_per_session` is reached the session is finished cleanly (see
    /// [`SessionWriter::finish`] for its summary) and later actions fail with
    /// [`Error::ActionLimitReached`].
    pub fn record_action(&mut self, mut action: Action) -> Result<u64> {
        if !self.actions_mut().configured {
            self.configure_actions(ActionOptions::default());
        }
        let (max, next) = {
            let st = self.actions_mut();
            (st.max, st.next_seq)
        };
        if max > 0 && next >= max {
            return Err(Error::ActionLimitReached { max });
        }
        let stream = match self.actions_mut().stream {
            Some(s) => s,
            None => {
                let s = match self.stream_id(ACTION_STREAM) {
                    Some(s) => s,
                    None => self.add_stream(ACTION_STREAM, ACTION_ENCODING)?,
                };
                self.actions_mut().stream = Some(s);
                s
            }
        };
        action.seq = next;
        let bytes = encode_value(&action)?;
        self.write(stream, action.ts, &bytes)?;
        let st = self.actions_mut();
        st.next_seq += 1;
        let (count, every) = (st.next_seq, st.checkpoint_every);
        if every > 0 && count.is_multiple_of(every) {
            self.checkpoint()?;
        }
        if max > 0 && count >= max {
            self.finish_in_place()?;
        }
        Ok(action.seq)
    }

    /// Calls `f(input)`, timing it, and records the call: input, and output or error, encoded
    /// as JSON. Returns what `f` returned (or the limit error without calling `f`).
    pub fn record_call<I, O, E, F>(&mut self, kind: &str, input: &I, f: F) -> Result<std::result::Result<O, E>>
    where
        I: serde::Serialize + ?Sized,
        O: serde::Serialize,
        E: std::fmt::Display,
        F: FnOnce(&I) -> std::result::Result<O, E>,
    {
        let max = self.actions_mut().max;
        if max > 0 && self.actions_mut().next_seq >= max {
            return Err(Error::ActionLimitReached { max });
        }
        let input_bytes = serde_json::to_vec(input).map_err(|e| Error::Encode(e.to_string()))?;
        let ts = Timestamp::now();
        let started = Instant::now();
        let result = f(input);
        let duration = started.elapsed();
        let output = match &result {
            Ok(o) => Ok(serde_json::to_vec(o).map_err(|e| Error::Encode(e.to_string()))?),
            Err(e) => Err(e.to_string()),
        };
        self.record_action(Action { seq: 0, ts, kind: kind.into(), input: input_bytes, output, duration, metadata: Vec::new() })?;
        Ok(result)
    }

    /// Actions recorded so far.
    pub fn action_count(&mut self) -> u64 {
        self.actions_mut().next_seq
    }
}

/// A checkpoint of a session, as read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// Number within the session (1, 2, …).
    pub number: u32,
    /// File offset of the record.
    pub offset: u64,
    /// Wall time when written.
    pub wall_time: Timestamp,
    /// Frames of the session before it.
    pub frames_total: u64,
    /// The state snapshot (empty when none).
    pub state: Vec<u8>,
    /// Actions recorded before it (their count: the next action's seq).
    pub actions_before: u64,
}

impl Session {
    /// Every action of the session, in sequence order. Fails on a damaged action frame.
    pub fn actions(&self) -> Result<Vec<Action>> {
        let Ok(r) = self.stream(ACTION_STREAM) else { return Ok(Vec::new()) };
        let mut out = Vec::with_capacity(r.len() as usize);
        for f in r.iterate() {
            let f = f?;
            out.push(decode_value::<Action>(f.data(), f.offset())?);
        }
        out.sort_by_key(|a| a.seq);
        Ok(out)
    }

    /// Number of actions (without decoding them).
    pub fn action_count(&self) -> u64 {
        self.stream(ACTION_STREAM).map(|r| r.len()).unwrap_or(0)
    }

    /// The session's checkpoints with their states, in order. Walks the session's records
    /// (reading only record headers and checkpoints): O(records). Damaged records are skipped.
    pub fn checkpoints(&self) -> Result<Vec<CheckpointInfo>> {
        let file = self.file.bytes();
        let l = self.layout();
        let action_offsets: Vec<u64> = match self.stream(ACTION_STREAM) {
            Ok(r) => {
                let mut v: Vec<u64> = r.iterate().filter_map(|f| f.ok()).map(|f| f.offset()).collect();
                v.sort_unstable();
                v
            }
            Err(_) => Vec::new(),
        };
        let mut out = Vec::new();
        let mut at = l.offset;
        let file = &file[..(l.segment_end as usize).min(file.len())];
        while at < l.segment_end {
            // Damaged records are skipped: the walk resynchronises on the next valid one.
            let r = match read_record(file, at, Some(l.salt)) {
                Ok(r) => r,
                Err(_) => match crate::read::salvage::resync_same(file, at + 1, l.salt) {
                    Some(next) => {
                        at = next;
                        continue;
                    }
                    None => break,
                },
            };
            if r.kind() == Some(Kind::Checkpoint) {
                let Ok(cp) = CheckpointBody::decode(r.body, at) else {
                    at = r.end();
                    continue;
                };
                out.push(CheckpointInfo {
                    number: cp.number,
                    offset: at,
                    wall_time: Timestamp::from_nanos(cp.wall_ns),
                    frames_total: cp.frames_total,
                    state: cp.state,
                    actions_before: action_offsets.partition_point(|&o| o < at) as u64,
                });
            }
            if r.kind() == Some(Kind::SessionEnd) {
                break;
            }
            at += RECORD_HEADER_LEN as u64 + r.body.len() as u64;
        }
        Ok(out)
    }
}

/// Finishing from inside the writer (the action limit): the summary is kept for `finish`.
impl SessionWriter {
    fn finish_in_place(&mut self) -> Result<SessionInfo> {
        self.finish_keep()
    }
}
