//! `rec export`: recordings as a Hive-partitioned Parquet dataset (cargo feature `parquet`),
//! for DuckDB, Polars, Spark and every engine that reads Parquet.
//!
//! ```text
//! DIR/frames/stream=<name>/part-<recording>-<session>.parquet   one row per frame (see interop::arrow)
//! DIR/recordings.parquet                                        one row per session
//! DIR/streams.parquet                                           one row per stream of a session
//! DIR/actions.parquet                                           one row per action
//! DIR/_recfile_export.json                                      what was exported, for the next run
//! ```
//!
//! Frame files are sorted by `ts` (the writer records it as the row groups' sort order), with
//! min/max statistics and page indexes on `ts`, `ts_ns` and `seq`, so that engines skip row
//! groups and pages outside a time window. Stream names are escaped in directory names as Hive
//! does (`/` becomes `%2F`); the `stream` column holds the name itself.
//!
//! Exports are incremental: a recording already in the manifest with the same file id and size
//! is skipped, a new or grown one is (re)exported and its rows in the three tables replaced.
//! Files are written under a hidden temporary name and renamed into place, so an interrupted
//! export leaves no half-written file where engines look.

use crate::error::{Error, Result};
use crate::interop::arrow::{
    actions_batch, infer_json_columns, recordings_batch, session_damage, streams_batch, BatchOptions, FrameBatches,
};
use crate::interop::find_recordings;
use crate::read::{RecFile, Replay};
use crate::time::Timestamp;
use arrow_array::{Array, BooleanArray, RecordBatch, StringArray};
use arrow_schema::ArrowError;
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnChunk, ArrowRowGroupWriterFactory};
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Name of the manifest in the output directory.
pub const MANIFEST: &str = "_recfile_export.json";

/// What to export.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportOptions {
    /// Only these streams (empty: every stream).
    pub streams: Vec<String>,
    /// Only frames (and actions) at or after this time.
    pub from: Option<Timestamp>,
    /// Only frames (and actions) at or before this time (inclusive).
    pub until: Option<Timestamp>,
    /// Add typed columns for the top-level keys of `json` streams' objects.
    pub json_columns: bool,
    /// Worker threads (0: one per core).
    #[serde(skip)]
    pub threads: usize,
}

/// What an export did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ExportReport {
    /// Recordings exported by this run.
    pub exported: usize,
    /// Recordings skipped: already in the dataset with the same id and size.
    pub unchanged: usize,
    /// Sessions exported by this run.
    pub sessions: usize,
    /// Frames written by this run.
    pub frames: u64,
    /// Frame files written by this run.
    pub parts: usize,
    /// Payload bytes written by this run.
    pub bytes: u64,
    /// What is missing from the dataset, one message per problem naming its file: damaged or
    /// interrupted recordings (what was intact is exported), recordings that could not be read.
    pub damage: Vec<String>,
    /// Recordings that could not be opened at all, with why.
    pub failed: Vec<String>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    options: ExportOptions,
    recordings: Vec<ManifestEntry>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct ManifestEntry {
    recording: String,
    path: String,
    size: u64,
    parts: Vec<String>,
    damage: Vec<String>,
}

/// A stream name as a Hive partition value: the characters Hive escapes become `%XX`.
pub fn escape_partition_value(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_control() || "\"#%'*/:=?\\{[]^".contains(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    if out.is_empty() {
        // Hive's name for an empty partition value.
        out.push_str("__HIVE_DEFAULT_PARTITION__");
    }
    out
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::from(e).with_path(path)
}

fn pq_err<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Dataset(format!("{}: {e}", path.display()))
}

/// Writer settings of frame files: Snappy (for payloads only where a sample of them compresses);
/// dictionaries for the repeated strings; statistics and page indexes on the columns that
/// engines filter by; none on payloads and on the strings that are the same in every row
/// (their per-row comparisons were a fifth of the writing time).
fn frame_properties(compress_data: bool) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_created_by(format!("recfile {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_sorting_columns(Some(vec![SortingColumn { column_idx: 4, descending: false, nulls_first: false }]));
    for c in ["recording", "session", "stream", "encoding"] {
        b = b
            .set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BYTE_ARRAY)
            .set_column_compression(ColumnPath::from(c), Compression::UNCOMPRESSED)
            .set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::None);
    }
    for c in ["seq", "ts", "ts_ns", "publish_ts"] {
        b = b
            .set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED)
            .set_column_compression(ColumnPath::from(c), Compression::UNCOMPRESSED)
            .set_column_statistics_enabled(ColumnPath::from(c), EnabledStatistics::Page);
    }
    if !compress_data {
        b = b.set_column_compression(ColumnPath::from("data"), Compression::UNCOMPRESSED);
    }
    b.set_column_statistics_enabled(ColumnPath::from("data"), EnabledStatistics::None).build()
}

/// Whether Snappy shrinks a sample of the payloads (the first 256 KiB) by a fifth or more.
fn payloads_compress(replay: &Replay, from: Timestamp, until: Option<Timestamp>) -> bool {
    let mut sample = Vec::new();
    for f in replay.scan_range(from, until).flatten() {
        sample.extend_from_slice(f.data());
        if sample.len() >= 256 << 10 {
            break;
        }
    }
    if sample.len() < 1024 {
        return true;
    }
    snap::raw::Encoder::new().compress_vec(&sample).is_ok_and(|c| c.len() * 5 <= sample.len() * 4)
}

fn table_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_created_by(format!("recfile {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        .build()
}

/// The absolute path of an input, for the dataset's `path` column (as given if that fails).
fn source_path(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

/// A hidden temporary name beside `path` (engines skip names starting with a dot).
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// What one frame file held.
struct PartResult {
    rows: u64,
    bytes: u64,
    skipped: Vec<String>,
    not_objects: u64,
}

fn write_part(replay: &Replay, path: &Path, options: &ExportOptions, done: &AtomicU64) -> Result<PartResult> {
    let from = options.from.unwrap_or(Timestamp::from_nanos(i64::MIN));
    let until = options.until.and_then(|t| t.as_nanos().checked_add(1)).map(Timestamp::from_nanos);
    let json_columns = if options.json_columns && replay.encoding() == "json" { infer_json_columns(replay)? } else { Vec::new() };
    let batch_options = BatchOptions { skip_damaged: true, json_columns, ..BatchOptions::default() };
    let properties = frame_properties(payloads_compress(replay, from, until));
    let mut batches = FrameBatches::new(replay.iterate_range(from, until), batch_options)?;
    let schema = arrow_array::RecordBatchReader::schema(&batches);
    let tmp = temp_path(path);
    // Batches are built on a second thread while this one hands the previous ones to the
    // column encoders.
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::result::Result<RecordBatch, ArrowError>>(2);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            for b in batches.by_ref() {
                if tx.send(b).is_err() {
                    break;
                }
            }
            batches
        });
        let written = (|| -> Result<u64> {
            let mut writer: Option<PartWriter> = None;
            let mut bytes = 0u64;
            for b in rx.iter() {
                let b = b.map_err(pq_err(path))?;
                let w = match &mut writer {
                    Some(w) => w,
                    None => {
                        if let Some(dir) = path.parent() {
                            std::fs::create_dir_all(dir).map_err(io_at(dir))?;
                        }
                        writer.insert(PartWriter::create(&tmp, schema.clone(), properties.clone())?)
                    }
                };
                let batch_bytes = b.column(6).get_buffer_memory_size() as u64;
                bytes += batch_bytes;
                done.fetch_add(batch_bytes, Ordering::Relaxed);
                w.write(&b)?;
            }
            if let Some(w) = writer {
                w.close()?;
                std::fs::rename(&tmp, path).map_err(io_at(path))?;
            }
            Ok(bytes)
        })();
        // On an error the receiver is dropped here, so the producer stops at its next send.
        drop(rx);
        let batches = producer.join().map_err(|_| Error::Dataset("the batch thread panicked".into()))?;
        let bytes = written?;
        Ok(PartResult { rows: batches.rows(), bytes, skipped: batches.skipped().to_vec(), not_objects: batches.not_objects() })
    })
}

/// Rows per row group, and payload bytes at which one ends early: small enough for engines to
/// skip by time in fine steps and for the pipeline's buffers to be reused rather than mapped
/// afresh (1M-row groups took 30 % longer, most of it in page faults).
const ROW_GROUP_ROWS: usize = 256 << 10;
const ROW_GROUP_BYTES: usize = 32 << 20;
/// Index of the `data` column in frame batches.
const DATA_COLUMN: usize = 6;

/// Writes a frame file as a pipeline: the payload column is encoded on one thread, every other
/// column on a second, and a third writes the encoded row groups to the file, each working on
/// the next batch or row group while the others finish theirs (ArrowWriter does all of it on
/// one thread; payloads are about half the encoding, and the writes wait for the disk).
struct PartWriter {
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    path: PathBuf,
    encoders: Vec<Encoder>,
    rows: usize,
    bytes: usize,
    row_groups: usize,
    io: Option<FileThread>,
}

/// The thread that writes encoded row groups into the file, and its queue.
type FileThread = (std::sync::mpsc::SyncSender<Vec<ArrowColumnChunk>>, std::thread::JoinHandle<Result<()>>);

/// A thread encoding some columns of the current row group.
struct Encoder {
    tx: std::sync::mpsc::SyncSender<RecordBatch>,
    handle: std::thread::JoinHandle<Result<Vec<(usize, ArrowColumnChunk)>>>,
}

impl PartWriter {
    fn create(path: &Path, schema: SchemaRef, mut props: WriterProperties) -> Result<Self> {
        add_encoded_arrow_schema_to_metadata(&schema, &mut props);
        let parquet_schema = ArrowSchemaConverter::new().with_coerce_types(props.coerce_types()).convert(&schema).map_err(pq_err(path))?;
        let f = std::fs::File::create(path).map_err(io_at(path))?;
        let mut file =
            SerializedFileWriter::new(std::io::BufWriter::with_capacity(1 << 20, f), parquet_schema.root_schema_ptr(), Arc::new(props))
                .map_err(pq_err(path))?;
        let factory = ArrowRowGroupWriterFactory::new(&file, schema.clone());
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<ArrowColumnChunk>>(1);
        let io_path = path.to_path_buf();
        let handle = std::thread::spawn(move || -> Result<()> {
            for chunks in rx {
                let mut row_group = file.next_row_group().map_err(pq_err(&io_path))?;
                for c in chunks {
                    c.append_to_row_group(&mut row_group).map_err(pq_err(&io_path))?;
                }
                row_group.close().map_err(pq_err(&io_path))?;
            }
            // Writes the footer and flushes the buffer into the file.
            file.close().map_err(pq_err(&io_path))?;
            Ok(())
        });
        Ok(PartWriter {
            factory,
            schema,
            path: path.to_path_buf(),
            encoders: Vec::new(),
            rows: 0,
            bytes: 0,
            row_groups: 0,
            io: Some((tx, handle)),
        })
    }

    /// Starts the encoders of a new row group.
    fn start_group(&mut self) -> Result<()> {
        let writers = self.factory.create_column_writers(self.row_groups).map_err(pq_err(&self.path))?;
        let (payloads, others): (Vec<_>, Vec<_>) = writers.into_iter().enumerate().partition(|(i, _)| *i == DATA_COLUMN);
        for mut writers in [payloads, others] {
            let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(2);
            let fields = self.schema.fields().clone();
            let path = self.path.clone();
            let handle = std::thread::spawn(move || -> Result<Vec<(usize, ArrowColumnChunk)>> {
                for b in rx {
                    for (i, w) in writers.iter_mut() {
                        for leaf in compute_leaves(&fields[*i], b.column(*i)).map_err(pq_err(&path))? {
                            w.write(&leaf).map_err(pq_err(&path))?;
                        }
                    }
                }
                writers.into_iter().map(|(i, w)| w.close().map(|c| (i, c)).map_err(pq_err(&path))).collect()
            });
            self.encoders.push(Encoder { tx, handle });
        }
        Ok(())
    }

    /// Ends the current row group: its encoded columns go to the writing thread.
    fn finish_group(&mut self) -> Result<()> {
        let mut chunks = Vec::new();
        for e in std::mem::take(&mut self.encoders) {
            drop(e.tx);
            chunks.extend(e.handle.join().map_err(|_| Error::Dataset("a column encoder panicked".into()))??);
        }
        if chunks.is_empty() {
            return Ok(());
        }
        chunks.sort_by_key(|(i, _)| *i);
        self.row_groups += 1;
        self.rows = 0;
        self.bytes = 0;
        let sent = self.io.as_ref().is_some_and(|(tx, _)| tx.send(chunks.into_iter().map(|(_, c)| c).collect()).is_ok());
        if !sent {
            // The writing thread stopped: its error says why.
            return self.join_io();
        }
        Ok(())
    }

    fn join_io(&mut self) -> Result<()> {
        match self.io.take() {
            Some((tx, handle)) => {
                drop(tx);
                handle.join().map_err(|_| Error::Dataset("the file writer panicked".into()))?
            }
            None => Err(Error::Dataset(format!("{}: the file writer stopped", self.path.display()))),
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut batch = batch.clone();
        while batch.num_rows() > 0 {
            if self.encoders.is_empty() {
                self.start_group()?;
            }
            let take = batch.num_rows().min(ROW_GROUP_ROWS - self.rows);
            let head = batch.slice(0, take);
            batch = batch.slice(take, batch.num_rows() - take);
            self.rows += take;
            self.bytes += head
                .column(DATA_COLUMN)
                .as_any()
                .downcast_ref::<arrow_array::LargeBinaryArray>()
                .map_or(0, |a| a.value_offsets().last().copied().unwrap_or(0) as usize - a.value_offsets()[0] as usize);
            for e in &self.encoders {
                if e.tx.send(head.clone()).is_err() {
                    // An encoder stopped: joining it gives its error.
                    return self.finish_group();
                }
            }
            if self.rows >= ROW_GROUP_ROWS || self.bytes >= ROW_GROUP_BYTES {
                self.finish_group()?;
            }
        }
        Ok(())
    }

    fn close(mut self) -> Result<()> {
        self.finish_group()?;
        self.join_io()
    }
}

/// The rows and parts of one exported recording.
struct Exported {
    entry: ManifestEntry,
    recordings: RecordBatch,
    streams: RecordBatch,
    actions: RecordBatch,
    sessions: usize,
    frames: u64,
    bytes: u64,
}

fn export_file(path: &Path, file: &RecFile, out: &Path, options: &ExportOptions, done: &AtomicU64) -> Result<Exported> {
    let recording = file.file_id().to_string();
    let mut damage = Vec::new();
    let mut parts = Vec::new();
    let (mut frames, mut bytes) = (0u64, 0u64);
    let sessions = file.sessions();
    for s in &sessions {
        if let Some(d) = session_damage(s) {
            damage.push(format!("{}: session {} ({:?}): {d}", path.display(), s.position(), s.name()));
        }
        for st in s.streams() {
            if !options.streams.is_empty() && !options.streams.contains(&st.name) {
                continue;
            }
            let rel = format!("frames/stream={}/part-{recording}-{}.parquet", escape_partition_value(&st.name), s.id());
            let replay = s.stream(&st.name)?;
            let part = write_part(&replay, &out.join(&rel), options, done)?;
            for e in &part.skipped {
                damage.push(format!("{}: stream {:?}: {e}", path.display(), st.name));
            }
            if part.not_objects > 0 {
                damage.push(format!(
                    "{}: stream {:?}: {} frames are not JSON objects (their JSON columns are null)",
                    path.display(),
                    st.name,
                    part.not_objects
                ));
            }
            if part.rows > 0 {
                parts.push(rel);
            }
            frames += part.rows;
            bytes += part.bytes;
        }
    }
    let (actions, action_damage) = actions_batch(file, options.from, options.until)?;
    damage.extend(action_damage.into_iter().map(|d| format!("{}: {d}", path.display())));
    Ok(Exported {
        entry: ManifestEntry { recording, path: source_path(path), size: file.size_bytes(), parts, damage },
        recordings: recordings_batch(file, Path::new(&source_path(path)))?,
        streams: streams_batch(file)?,
        actions,
        sessions: sessions.len(),
        frames,
        bytes,
    })
}

fn read_manifest(out: &Path) -> Result<Option<Manifest>> {
    let path = out.join(MANIFEST);
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| Error::Malformed {
            what: "export manifest",
            offset: e.column() as u64,
            reason: format!("{}: {e}", path.display()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::from(e).with_path(&path)),
    }
}

fn write_atomically(path: &Path, write: impl FnOnce(std::fs::File) -> Result<()>) -> Result<()> {
    let tmp = temp_path(path);
    write(std::fs::File::create(&tmp).map_err(io_at(&tmp))?)?;
    std::fs::rename(&tmp, path).map_err(io_at(path))
}

/// Rewrites one of the three tables: the rows of recordings not replaced, then the new ones.
fn write_table(out: &Path, name: &str, replaced: &BTreeSet<String>, new: Vec<RecordBatch>) -> Result<()> {
    let path = out.join(name);
    let mut batches = Vec::new();
    if path.exists() {
        let f = std::fs::File::open(&path).map_err(io_at(&path))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(f).map_err(pq_err(&path))?.build().map_err(pq_err(&path))?;
        for b in reader {
            let b = b.map_err(pq_err(&path))?;
            let Some(ids) = b.column_by_name("recording").and_then(|c| c.as_any().downcast_ref::<StringArray>()) else {
                return Err(Error::Dataset(format!("{}: no utf8 column \"recording\"", path.display())));
            };
            let keep: BooleanArray = ids.iter().map(|id| Some(!id.is_some_and(|id| replaced.contains(id)))).collect();
            batches.push(arrow_select::filter::filter_record_batch(&b, &keep).map_err(pq_err(&path))?);
        }
    }
    batches.extend(new);
    let Some(schema) = batches.last().map(RecordBatch::schema) else { return Ok(()) };
    write_atomically(&path, |f| {
        let mut w = ArrowWriter::try_new(f, schema.clone(), Some(table_properties())).map_err(pq_err(&path))?;
        for b in batches.iter().filter(|b| b.num_rows() > 0) {
            let b = RecordBatch::try_new(schema.clone(), b.columns().to_vec()).map_err(|e| {
                Error::Dataset(format!("{}: its rows do not fit this version's columns ({e}); export into a new directory", path.display()))
            })?;
            w.write(&b).map_err(pq_err(&path))?;
        }
        w.close().map_err(pq_err(&path))?;
        Ok(())
    })
}

/// Counts a worker thread out when dropped.
struct Finished<'a>(&'a AtomicUsize);

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// Exports the recordings named by `inputs` (files, or directories searched for `*.rec`) into
/// the dataset directory `out`, `options.threads` files at a time. `progress(done, total)` is
/// called now and then with payload bytes. Recordings already exported with the same id and
/// size are skipped. Fails only when the dataset cannot be written or `out` was exported with
/// other options; what is wrong with single recordings is in the report.
pub fn export(inputs: &[PathBuf], out: &Path, options: &ExportOptions, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<ExportReport> {
    let paths = find_recordings(inputs)?;
    std::fs::create_dir_all(out).map_err(io_at(out))?;
    let old = read_manifest(out)?;
    if let Some(m) = &old {
        if m.options != *options {
            return Err(Error::InvalidArgument(format!(
                "{} was exported with other options ({}); export into a new directory, or give the same options",
                out.display(),
                serde_json::to_string(&m.options).unwrap_or_default()
            )));
        }
    }
    let mut entries: Vec<ManifestEntry> = old.map(|m| m.recordings).unwrap_or_default();
    let mut report = ExportReport::default();

    // Open every input; decide what to export.
    let mut todo: Vec<(PathBuf, RecFile)> = Vec::new();
    let mut seen: HashMap<String, (PathBuf, u64)> = HashMap::new();
    let mut known_streams = BTreeSet::new();
    for p in paths {
        let file = match RecFile::open(&p) {
            Ok(f) => f,
            Err(e) => {
                report.failed.push(format!("{}: {e}", p.display()));
                continue;
            }
        };
        for sess in file.sessions() {
            known_streams.extend(sess.stream_names());
        }
        let id = file.file_id().to_string();
        let size = file.size_bytes();
        if let Some((first, first_size)) = seen.get(&id) {
            if *first_size != size {
                report.damage.push(format!(
                    "{}: not exported: it has the recording id of {} ({id}) but a different size; export it into another dataset",
                    p.display(),
                    first.display()
                ));
            }
            continue;
        }
        seen.insert(id.clone(), (p.clone(), size));
        if let Some(e) = entries.iter().find(|e| e.recording == id && e.size == size) {
            report.unchanged += 1;
            report.damage.extend(e.damage.iter().map(|d| format!("{d} (exported earlier)")));
            continue;
        }
        todo.push((p, file));
    }

    let unknown: Vec<&String> = options.streams.iter().filter(|s| !known_streams.contains(*s)).collect();
    if !unknown.is_empty() && report.failed.is_empty() {
        return Err(Error::NoSuchStream(format!(
            "{unknown:?}: no recording has such a stream (they have {})",
            known_streams.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
        )));
    }
    let total: u64 = todo.iter().map(|(_, f)| f.size_bytes()).sum();
    let done = AtomicU64::new(0);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Exported>)>> = Mutex::new(Vec::new());
    let threads = if options.threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { options.threads };
    let workers = threads.min(todo.len()).max(1);
    let finished = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                // Counted on the way out, even by a panic, so that the loop below ends.
                let _done = Finished(&finished);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((p, f)) = todo.get(i) else { break };
                    let r = export_file(p, f, out, options, &done);
                    if let Ok(mut v) = results.lock() {
                        v.push((i, r));
                    }
                }
            });
        }
        while finished.load(Ordering::Acquire) < workers {
            progress(done.load(Ordering::Relaxed).min(total), total);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    });
    progress(total, total);
    let mut results = results.into_inner().map_err(|_| Error::Dataset("an export thread panicked".into()))?;
    results.sort_by_key(|(i, _)| *i);

    let mut replaced = BTreeSet::new();
    let (mut recordings, mut streams, mut actions) = (Vec::new(), Vec::new(), Vec::new());
    for (i, r) in results {
        let path = &todo[i].0;
        match r {
            Ok(x) => {
                // Parts of an earlier export of this recording that this one did not rewrite.
                if let Some(old) = entries.iter().find(|e| e.recording == x.entry.recording) {
                    for p in old.parts.iter().filter(|p| !x.entry.parts.contains(p)) {
                        let _ = std::fs::remove_file(out.join(p));
                    }
                }
                entries.retain(|e| e.recording != x.entry.recording);
                replaced.insert(x.entry.recording.clone());
                report.exported += 1;
                report.sessions += x.sessions;
                report.frames += x.frames;
                report.parts += x.entry.parts.len();
                report.bytes += x.bytes;
                report.damage.extend(x.entry.damage.iter().cloned());
                recordings.push(x.recordings);
                streams.push(x.streams);
                actions.push(x.actions);
                entries.push(x.entry);
            }
            Err(e) => report.failed.push(format!("{}: {e}", path.display())),
        }
    }
    write_table(out, "recordings.parquet", &replaced, recordings)?;
    write_table(out, "streams.parquet", &replaced, streams)?;
    write_table(out, "actions.parquet", &replaced, actions)?;
    let manifest = Manifest { format: "recfile-export".into(), version: 1, options: options.clone(), recordings: entries };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Dataset(e.to_string()))?;
    write_atomically(&out.join(MANIFEST), |mut f| {
        use std::io::Write;
        f.write_all(&text).and_then(|_| f.sync_all()).map_err(io_at(&out.join(MANIFEST)))
    })?;
    Ok(report)
}
