//! Frames, sessions, streams and actions as Arrow record batches (cargo feature `arrow`): the
//! columns of `rec export` and of the Python package's `to_arrow()` and `dataset()`.
//!
//! One row per frame, the shape that DuckDB, Polars, Spark, ray's and Daft's MCAP readers and
//! LeRobot's datasets use for timestamped messages:
//!
//! | column | type | |
//! |---|---|---|
//! | `recording` | utf8 | the file's id (UUID) |
//! | `session` | utf8 | the session's id (UUID) |
//! | `stream` | utf8 | |
//! | `seq` | uint64 | arrival number within the stream |
//! | `ts` | timestamp(ns, UTC) | |
//! | `ts_ns` | int64 | the same instant, nanoseconds since the Unix epoch |
//! | `data` | large_binary | the payload, exact |
//! | `encoding` | utf8 | the stream's encoding label |
//! | `publish_ts` | timestamp(ns, UTC), nullable | the message's publish time where it has one (MCAP imports), else null |
//!
//! and, when asked for, one typed column per top-level key of a `json` stream's objects
//! ([`infer_json_columns`]).

use crate::error::{Error, Result};
use crate::format::codec::decode_value;
use crate::interop::message_info::{self, MessageInfo};
use crate::read::{Frames, RecFile, Replay, Session};
use crate::session::{Action, ACTION_STREAM};
use crate::time::Timestamp;
use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, MapBuilder, StringBuilder, UInt64Builder};
use arrow_array::types::TimestampNanosecondType;
use arrow_array::{
    Array, ArrayRef, Int64Array, LargeBinaryArray, PrimitiveArray, RecordBatch, RecordBatchReader, StringArray, UInt32Array, UInt64Array,
};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

/// The frame columns every batch has, in order ([`frame_schema`] may add JSON columns after
/// them). Every file and batch has all of them, so that engines read many files as one table.
pub const FRAME_COLUMNS: [&str; 9] = ["recording", "session", "stream", "seq", "ts", "ts_ns", "data", "encoding", "publish_ts"];

/// The Arrow type of every timestamp column: nanoseconds since the Unix epoch, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// The value type of a JSON column, inferred from a stream's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonType {
    /// Every value an integer that fits in an i64: int64.
    Int,
    /// Numbers, some not integers: float64.
    Float,
    /// Every value `true` or `false`: boolean.
    Bool,
    /// Every value a string: utf8.
    Text,
    /// Objects, arrays or values of mixed types: the value's JSON text, utf8.
    Json,
}

/// A typed column made of one top-level key of a JSON stream's objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonColumn {
    /// The key in the objects.
    pub key: String,
    /// The column's name: the key, or `json_<key>` where the key is one of [`FRAME_COLUMNS`].
    pub name: String,
    /// Its type.
    pub kind: JsonType,
}

impl JsonColumn {
    fn data_type(&self) -> DataType {
        match self.kind {
            JsonType::Int => DataType::Int64,
            JsonType::Float => DataType::Float64,
            JsonType::Bool => DataType::Boolean,
            JsonType::Text | JsonType::Json => DataType::Utf8,
        }
    }
}

/// The schema of frame batches: [`FRAME_COLUMNS`], then the JSON columns.
pub fn frame_schema(json: &[JsonColumn]) -> SchemaRef {
    let mut fields = vec![
        Field::new("recording", DataType::Utf8, false),
        Field::new("session", DataType::Utf8, false),
        Field::new("stream", DataType::Utf8, false),
        Field::new("seq", DataType::UInt64, false),
        Field::new("ts", timestamp_type(), false),
        Field::new("ts_ns", DataType::Int64, false),
        Field::new("data", DataType::LargeBinary, false),
        Field::new("encoding", DataType::Utf8, false),
        Field::new("publish_ts", timestamp_type(), true),
    ];
    fields.extend(json.iter().map(|c| Field::new(&c.name, c.data_type(), true)));
    Arc::new(Schema::new(fields))
}

/// Infers the JSON columns of a stream of JSON objects by reading every frame: each top-level
/// key becomes a column whose type fits all its values (nulls ignored; mixed types become JSON
/// text). Keys are in the order first seen. Frames that are not JSON objects add nothing here;
/// [`FrameBatches`] counts them.
pub fn infer_json_columns(replay: &Replay) -> Result<Vec<JsonColumn>> {
    let mut kinds: Vec<(String, Option<JsonType>)> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for f in replay.scan() {
        let Ok(f) = f else { continue };
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(f.data()) else { continue };
        for (k, v) in obj {
            let kind = match &v {
                serde_json::Value::Null => None,
                serde_json::Value::Bool(_) => Some(JsonType::Bool),
                serde_json::Value::Number(n) if n.is_i64() => Some(JsonType::Int),
                serde_json::Value::Number(_) => Some(JsonType::Float),
                serde_json::Value::String(_) => Some(JsonType::Text),
                _ => Some(JsonType::Json),
            };
            let i = *position.entry(k.clone()).or_insert_with(|| {
                kinds.push((k, None));
                kinds.len() - 1
            });
            let slot = &mut kinds[i].1;
            *slot = match (*slot, kind) {
                (old, None) => old,
                (None, new) => new,
                (Some(a), Some(b)) if a == b => Some(a),
                (Some(JsonType::Int | JsonType::Float), Some(JsonType::Int | JsonType::Float)) => Some(JsonType::Float),
                _ => Some(JsonType::Json),
            };
        }
    }
    let reserved = |k: &str| FRAME_COLUMNS.contains(&k);
    Ok(kinds
        .into_iter()
        .map(|(key, kind)| JsonColumn {
            name: if reserved(&key) { format!("json_{key}") } else { key.clone() },
            key,
            kind: kind.unwrap_or(JsonType::Json),
        })
        .collect())
}

/// How [`FrameBatches`] cuts and fills its batches.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// At most this many rows per batch.
    pub max_rows: usize,
    /// A batch ends once its payloads reach this many bytes.
    pub max_bytes: usize,
    /// Leave damaged frames out (listed by [`FrameBatches::skipped`]) instead of failing.
    pub skip_damaged: bool,
    /// JSON columns to fill from each frame's payload.
    pub json_columns: Vec<JsonColumn>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions { max_rows: 64 * 1024, max_bytes: 64 << 20, skip_damaged: false, json_columns: Vec::new() }
    }
}

/// The frames of a replay as record batches of [`frame_schema`] rows, in timestamp order.
/// Owns its replay, so it can be handed to another thread or, through the Arrow C stream
/// interface, to another language.
pub struct FrameBatches {
    schema: SchemaRef,
    frames: Frames,
    recording: String,
    session: String,
    /// Names and encodings by stream id.
    streams: Vec<(String, String)>,
    info: Option<HashMap<(u16, u64), MessageInfo>>,
    options: BatchOptions,
    skipped: Vec<String>,
    not_objects: u64,
    rows: u64,
    failed: bool,
}

impl FrameBatches {
    /// Batches of `frames` (an iterator of one session's replay, any window).
    pub fn new(frames: Frames, options: BatchOptions) -> Result<Self> {
        let session = frames.replay().session().clone();
        let info = message_info::read(&session)?;
        let streams = session.all_streams().into_iter().map(|s| (s.name, s.encoding)).collect();
        Ok(FrameBatches {
            schema: frame_schema(&options.json_columns),
            recording: session.file_id().to_string(),
            session: session.id().to_string(),
            frames,
            streams,
            info,
            options,
            skipped: Vec::new(),
            not_objects: 0,
            rows: 0,
            failed: false,
        })
    }

    /// The damaged frames left out so far (with `skip_damaged`), as messages naming each.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// Frames of the JSON columns' stream that were not JSON objects (their JSON columns are
    /// null).
    pub fn not_objects(&self) -> u64 {
        self.not_objects
    }

    /// Rows produced so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let cap = self.options.max_rows.max(1);
        let mut stream_ids: Vec<u16> = Vec::with_capacity(cap.min(1 << 16));
        let mut seqs: Vec<u64> = Vec::with_capacity(cap.min(1 << 16));
        let mut ts: Vec<i64> = Vec::with_capacity(cap.min(1 << 16));
        let mut offsets: Vec<i64> = Vec::with_capacity(cap.min(1 << 16) + 1);
        let mut data: Vec<u8> = Vec::new();
        let mut publish: Vec<Option<i64>> = Vec::new();
        let mut json: Vec<JsonBuilder> = self.options.json_columns.iter().map(JsonBuilder::new).collect();
        offsets.push(0);
        while seqs.len() < cap && data.len() < self.options.max_bytes {
            let f = match self.frames.next_ref() {
                None => break,
                Some(Ok(f)) => f,
                Some(Err(e)) if self.options.skip_damaged => {
                    self.skipped.push(e.to_string());
                    continue;
                }
                Some(Err(e)) => return Err(e),
            };
            stream_ids.push(f.stream_id());
            seqs.push(f.seq());
            ts.push(f.timestamp().as_nanos());
            data.extend_from_slice(f.data());
            offsets.push(data.len() as i64);
            if let Some(info) = &self.info {
                // An MCAP message without an entry had the default: publish time = log time.
                publish.push(Some(
                    info.get(&(f.stream_id(), f.seq()))
                        .map_or(f.timestamp().as_nanos(), |i| i64::try_from(i.publish_time).unwrap_or(i64::MAX)),
                ));
            }
            if !json.is_empty() {
                match serde_json::from_slice::<serde_json::Value>(f.data()) {
                    Ok(serde_json::Value::Object(obj)) => json.iter_mut().for_each(|b| b.push(obj.get(&b.column.key))),
                    _ => {
                        self.not_objects += 1;
                        json.iter_mut().for_each(|b| b.push(None));
                    }
                }
            }
        }
        let n = seqs.len();
        if n == 0 {
            return Ok(None);
        }
        self.rows += n as u64;
        let ts_buf = ScalarBuffer::from(ts);
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::new_repeated(&self.recording, n)),
            Arc::new(StringArray::new_repeated(&self.session, n)),
            self.per_stream(&stream_ids, |s| &s.0),
            Arc::new(UInt64Array::from(seqs)),
            Arc::new(PrimitiveArray::<TimestampNanosecondType>::new(ts_buf.clone(), None).with_timezone("UTC")),
            Arc::new(Int64Array::new(ts_buf, None)),
            Arc::new(
                LargeBinaryArray::try_new(OffsetBuffer::new(ScalarBuffer::from(offsets)), Buffer::from_vec(data), None)
                    .map_err(arrow_err)?,
            ),
            self.per_stream(&stream_ids, |s| &s.1),
        ];
        columns.push(if self.info.is_some() {
            Arc::new(PrimitiveArray::<TimestampNanosecondType>::from(publish).with_timezone("UTC"))
        } else {
            Arc::new(PrimitiveArray::<TimestampNanosecondType>::new_null(n).with_timezone("UTC"))
        });
        columns.extend(json.into_iter().map(JsonBuilder::finish));
        RecordBatch::try_new(self.schema.clone(), columns).map(Some).map_err(arrow_err)
    }

    /// A utf8 column of a per-stream string (name or encoding): one repeated value when every
    /// row is of one stream (the usual case, and the cheap one).
    fn per_stream(&self, ids: &[u16], pick: impl Fn(&(String, String)) -> &String) -> ArrayRef {
        let name = |id: u16| self.streams.get(usize::from(id)).map_or("", |s| pick(s).as_str());
        match ids {
            [first, rest @ ..] if rest.iter().all(|id| id == first) => Arc::new(StringArray::new_repeated(name(*first), ids.len())),
            _ => Arc::new(ids.iter().map(|&id| Some(name(id))).collect::<StringArray>()),
        }
    }
}

/// A record batch reader's next item: the batch, or the error once, then the end (a reader
/// that failed stops, as the Arrow C stream interface expects).
fn reader_item<S: BatchSource>(source: &mut S) -> Option<std::result::Result<RecordBatch, ArrowError>> {
    if *source.failed() {
        return None;
    }
    match source.next_batch() {
        Ok(b) => b.map(Ok),
        Err(e) => {
            *source.failed() = true;
            Some(Err(ArrowError::ExternalError(Box::new(e))))
        }
    }
}

/// What [`reader_item`] needs of a batch reader.
trait BatchSource {
    fn failed(&mut self) -> &mut bool;
    fn next_batch(&mut self) -> Result<Option<RecordBatch>>;
}

impl BatchSource for FrameBatches {
    fn failed(&mut self) -> &mut bool {
        &mut self.failed
    }
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        FrameBatches::next_batch(self)
    }
}

impl BatchSource for DatasetBatches {
    fn failed(&mut self) -> &mut bool {
        &mut self.failed
    }
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        DatasetBatches::next_batch(self)
    }
}

impl Iterator for FrameBatches {
    type Item = std::result::Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        reader_item(self)
    }
}

impl RecordBatchReader for FrameBatches {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Builds one JSON column.
struct JsonBuilder {
    column: JsonColumn,
    values: JsonValues,
}

enum JsonValues {
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Text(StringBuilder),
}

impl JsonBuilder {
    fn new(column: &JsonColumn) -> Self {
        let values = match column.kind {
            JsonType::Int => JsonValues::Int(Int64Builder::new()),
            JsonType::Float => JsonValues::Float(Float64Builder::new()),
            JsonType::Bool => JsonValues::Bool(BooleanBuilder::new()),
            JsonType::Text | JsonType::Json => JsonValues::Text(StringBuilder::new()),
        };
        JsonBuilder { column: column.clone(), values }
    }

    /// Appends a value; one that does not fit the column's type (the stream changed after the
    /// columns were inferred) becomes null, or JSON text in a text column.
    fn push(&mut self, v: Option<&serde_json::Value>) {
        use serde_json::Value as V;
        let v = v.filter(|v| !v.is_null());
        match &mut self.values {
            JsonValues::Int(b) => b.append_option(v.and_then(V::as_i64)),
            JsonValues::Float(b) => b.append_option(v.and_then(V::as_f64)),
            JsonValues::Bool(b) => b.append_option(v.and_then(V::as_bool)),
            JsonValues::Text(b) => match v {
                None => b.append_null(),
                Some(V::String(s)) if self.column.kind == JsonType::Text => b.append_value(s),
                Some(v) => b.append_value(v.to_string()),
            },
        }
    }

    fn finish(self) -> ArrayRef {
        match self.values {
            JsonValues::Int(mut b) => Arc::new(b.finish()),
            JsonValues::Float(mut b) => Arc::new(b.finish()),
            JsonValues::Bool(mut b) => Arc::new(b.finish()),
            JsonValues::Text(mut b) => Arc::new(b.finish()),
        }
    }
}

fn arrow_err(e: ArrowError) -> Error {
    Error::Dataset(e.to_string())
}

fn ts_array(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(PrimitiveArray::<TimestampNanosecondType>::from(values).with_timezone("UTC"))
}

fn batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let fields: Vec<Field> =
        columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), a.null_count() > 0 || nullable(n))).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect()).map_err(arrow_err)
}

/// Columns that may hold nulls, declared nullable whether or not this batch has one, so that
/// batches of different recordings share one schema.
fn nullable(name: &str) -> bool {
    matches!(name, "end_ts" | "damage" | "first_ts" | "last_ts" | "output" | "error")
}

/// What the reader saw wrong with a session, for the `damage` column and the export's report:
/// interrupted (not ended), damaged description, damaged stretches skipped. `None` when intact.
pub fn session_damage(session: &Session) -> Option<String> {
    use crate::read::SessionState;
    let mut notes = Vec::new();
    match session.state() {
        SessionState::Finished => {}
        SessionState::Interrupted => notes.push("interrupted: the session was not ended (its torn tail is not read)".to_string()),
        SessionState::Recording => notes.push("still being recorded: frames written after this export are not in it".to_string()),
        SessionState::Damaged => notes.push("its description is damaged: frames were found by scanning its records".to_string()),
    }
    notes.extend(session.skipped_damage().iter().cloned());
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// One row per session of `file` (the `recordings` table): `recording`, `path`, `file_size`,
/// `session`, `position`, `name`, `state`, `start_ts`, `end_ts`, `frame_count`, `frames` (a map
/// of stream to frame count), `metadata` (a map), `damage` (null when intact).
pub fn recordings_batch(file: &RecFile, path: &Path) -> Result<RecordBatch> {
    let sessions = file.sessions();
    let n = sessions.len();
    let mut frames = MapBuilder::new(None, StringBuilder::new(), UInt64Builder::new());
    let mut metadata = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for s in &sessions {
        for st in s.streams() {
            frames.keys().append_value(&st.name);
            frames.values().append_value(st.frames);
        }
        frames.append(true).map_err(arrow_err)?;
        for (k, v) in s.metadata() {
            metadata.keys().append_value(k);
            metadata.values().append_value(v);
        }
        metadata.append(true).map_err(arrow_err)?;
    }
    let file_id = file.file_id().to_string();
    batch(vec![
        ("recording", Arc::new(StringArray::new_repeated(&file_id, n))),
        ("path", Arc::new(StringArray::new_repeated(path.to_string_lossy(), n))),
        ("file_size", Arc::new(UInt64Array::from(vec![file.size_bytes(); n]))),
        ("session", Arc::new(sessions.iter().map(|s| Some(s.id().to_string())).collect::<StringArray>())),
        ("position", Arc::new(sessions.iter().map(|s| Some(s.position() as u32)).collect::<UInt32Array>())),
        ("name", Arc::new(sessions.iter().map(|s| Some(s.name())).collect::<StringArray>())),
        ("state", Arc::new(sessions.iter().map(|s| Some(s.state().as_str())).collect::<StringArray>())),
        ("start_ts", ts_array(sessions.iter().map(|s| Some(s.start_time().as_nanos())).collect())),
        ("end_ts", ts_array(sessions.iter().map(|s| s.end_time().map(Timestamp::as_nanos)).collect())),
        ("frame_count", Arc::new(UInt64Array::from(sessions.iter().map(Session::frame_count).collect::<Vec<_>>()))),
        ("frames", Arc::new(frames.finish())),
        ("metadata", Arc::new(metadata.finish())),
        ("damage", Arc::new(sessions.iter().map(session_damage).collect::<StringArray>())),
    ])
}

/// One row per stream of every session of `file` (the `streams` table): `recording`,
/// `session`, `stream`, `encoding`, `schema_name`, `schema`, `frames`, `first_ts`, `last_ts`,
/// `bytes` (payload bytes).
pub fn streams_batch(file: &RecFile) -> Result<RecordBatch> {
    let mut rows = Vec::new();
    for s in file.sessions() {
        for st in s.streams() {
            rows.push((s.id().to_string(), st));
        }
    }
    let file_id = file.file_id().to_string();
    let schemas: Vec<&[u8]> = rows.iter().map(|(_, st)| st.schema.as_slice()).collect();
    batch(vec![
        ("recording", Arc::new(StringArray::new_repeated(&file_id, rows.len()))),
        ("session", Arc::new(rows.iter().map(|(id, _)| Some(id.as_str())).collect::<StringArray>())),
        ("stream", Arc::new(rows.iter().map(|(_, st)| Some(st.name.as_str())).collect::<StringArray>())),
        ("encoding", Arc::new(rows.iter().map(|(_, st)| Some(st.encoding.as_str())).collect::<StringArray>())),
        ("schema_name", Arc::new(rows.iter().map(|(_, st)| Some(st.schema_name.as_str())).collect::<StringArray>())),
        ("schema", Arc::new(LargeBinaryArray::from_vec(schemas))),
        ("frames", Arc::new(UInt64Array::from(rows.iter().map(|(_, st)| st.frames).collect::<Vec<_>>()))),
        ("first_ts", ts_array(rows.iter().map(|(_, st)| st.first.map(Timestamp::as_nanos)).collect())),
        ("last_ts", ts_array(rows.iter().map(|(_, st)| st.last.map(Timestamp::as_nanos)).collect())),
        ("bytes", Arc::new(UInt64Array::from(rows.iter().map(|(_, st)| st.payload_bytes).collect::<Vec<_>>()))),
    ])
}

/// One row per action of every session of `file` with actions, in sequence order (the
/// `actions` table): `recording`, `session`, `seq`, `ts`, `kind`, `input`, `output` (null for
/// an error), `error` (null for a success), `duration_ns`. Actions in `[from, until]` only when
/// given. Damaged action frames are left out and returned as messages.
pub fn actions_batch(file: &RecFile, from: Option<Timestamp>, until: Option<Timestamp>) -> Result<(RecordBatch, Vec<String>)> {
    let mut rows: Vec<(String, Action)> = Vec::new();
    let mut damaged = Vec::new();
    for s in file.sessions() {
        let Ok(r) = s.stream(ACTION_STREAM) else { continue };
        let mut actions = Vec::new();
        for f in r.iterate() {
            match f.and_then(|f| decode_value::<Action>(f.data(), f.offset())) {
                Ok(a) if from.is_none_or(|t| a.ts >= t) && until.is_none_or(|t| a.ts <= t) => actions.push(a),
                Ok(_) => {}
                Err(e) => damaged.push(format!("session {}: action: {e}", s.id())),
            }
        }
        actions.sort_by_key(|a| a.seq);
        let id = s.id().to_string();
        rows.extend(actions.into_iter().map(|a| (id.clone(), a)));
    }
    let file_id = file.file_id().to_string();
    let n = rows.len();
    let inputs: Vec<&[u8]> = rows.iter().map(|(_, a)| a.input.as_slice()).collect();
    let outputs: Vec<Option<&[u8]>> = rows.iter().map(|(_, a)| a.output.as_ref().ok().map(Vec::as_slice)).collect();
    let b = batch(vec![
        ("recording", Arc::new(StringArray::new_repeated(&file_id, n))),
        ("session", Arc::new(rows.iter().map(|(id, _)| Some(id.as_str())).collect::<StringArray>())),
        ("seq", Arc::new(UInt64Array::from(rows.iter().map(|(_, a)| a.seq).collect::<Vec<_>>()))),
        ("ts", ts_array(rows.iter().map(|(_, a)| Some(a.ts.as_nanos())).collect())),
        ("kind", Arc::new(rows.iter().map(|(_, a)| Some(a.kind.as_str())).collect::<StringArray>())),
        ("input", Arc::new(LargeBinaryArray::from_vec(inputs))),
        ("output", Arc::new(LargeBinaryArray::from_opt_vec(outputs))),
        ("error", Arc::new(rows.iter().map(|(_, a)| a.output.as_ref().err().map(String::as_str)).collect::<StringArray>())),
        (
            "duration_ns",
            Arc::new(Int64Array::from(
                rows.iter().map(|(_, a)| i64::try_from(a.duration.as_nanos()).unwrap_or(i64::MAX)).collect::<Vec<_>>(),
            )),
        ),
    ])?;
    Ok((b, damaged))
}

/// Frame counts by stream name over every session of a file (what `rec info` lists).
pub fn frame_counts(file: &RecFile) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for s in file.sessions() {
        for st in s.streams() {
            *out.entry(st.name).or_insert(0) += st.frames;
        }
    }
    out
}

/// The frames of many recordings as one stream of record batches (every session of every file,
/// in file order, each session's streams merged in timestamp order), opening one file at a time
/// so that memory stays flat however many there are. The Python package's `dataset()`.
pub struct DatasetBatches {
    schema: SchemaRef,
    paths: std::vec::IntoIter<std::path::PathBuf>,
    streams: Vec<String>,
    options: BatchOptions,
    file: Option<(std::path::PathBuf, RecFile, usize)>,
    current: Option<FrameBatches>,
    skipped: Vec<String>,
    failed: bool,
}

impl DatasetBatches {
    /// Batches of the frames of `paths` (only the streams named in `streams`, or every stream
    /// when it is empty; a session with none of them is left out).
    pub fn new(paths: Vec<std::path::PathBuf>, streams: Vec<String>, options: BatchOptions) -> Self {
        DatasetBatches {
            schema: frame_schema(&options.json_columns),
            paths: paths.into_iter(),
            streams,
            options,
            file: None,
            current: None,
            skipped: Vec::new(),
            failed: false,
        }
    }

    /// Damaged frames left out so far (with `skip_damaged`), each naming its file.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// The next session's batches, opening the next file when one is done.
    fn next_session(&mut self) -> Result<Option<FrameBatches>> {
        loop {
            if let Some((path, file, next)) = &mut self.file {
                while let Some(s) = file.session(*next) {
                    *next += 1;
                    let names: Vec<String> = s.stream_names();
                    let chosen: Vec<&str> = if self.streams.is_empty() {
                        names.iter().map(String::as_str).collect()
                    } else {
                        self.streams.iter().map(String::as_str).filter(|n| names.iter().any(|m| m == n)).collect()
                    };
                    if chosen.is_empty() {
                        continue;
                    }
                    let replay = s.replay(&chosen).map_err(|e| in_file(e, path))?;
                    return FrameBatches::new(replay.iterate(), self.options.clone()).map(Some).map_err(|e| in_file(e, path));
                }
                self.file = None;
            }
            let Some(path) = self.paths.next() else { return Ok(None) };
            let file = RecFile::open(&path).map_err(|e| in_file(e, &path))?;
            self.file = Some((path, file, 0));
        }
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(cur) = &mut self.current {
                match cur.next_batch() {
                    Ok(Some(b)) => return Ok(Some(b)),
                    Ok(None) => {
                        let path = self.file.as_ref().map(|f| f.0.display().to_string()).unwrap_or_default();
                        self.skipped.extend(cur.skipped().iter().map(|e| format!("{path}: {e}")));
                        self.current = None;
                    }
                    Err(e) => {
                        return Err(match &self.file {
                            Some((p, _, _)) => in_file(e, p),
                            None => e,
                        })
                    }
                }
            }
            match self.next_session()? {
                Some(b) => self.current = Some(b),
                None => return Ok(None),
            }
        }
    }
}

/// An error with the file it happened in: a stream of many files' batches must say which.
fn in_file(e: Error, path: &std::path::Path) -> Error {
    match e {
        Error::Io { path: None, source } => Error::Io { path: Some(path.to_path_buf()), source },
        e @ Error::Io { .. } => e,
        e => Error::Dataset(format!("{}: {e}", path.display())),
    }
}

impl Iterator for DatasetBatches {
    type Item = std::result::Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        reader_item(self)
    }
}

impl RecordBatchReader for DatasetBatches {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
