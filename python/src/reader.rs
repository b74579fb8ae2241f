//! Reading: `open`, `RecFile`, `Session`, `StreamInfo`, `Replay`, `Frame`, the iterators, and
//! `verify` / `recover` reports.

use crate::actions::{actions_of, to_python, CheckpointPy};
use crate::errors::{type_error, value_error, PyResultExt};
use crate::timearg;
use crate::writer::lock;
use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyInt, PyList, PySlice, PyString};
use recfile::{LatePolicy, RealtimeOptions, RealtimePoll, Timestamp, Window};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RecFilePy>()?;
    m.add_class::<SessionPy>()?;
    m.add_class::<StreamInfoPy>()?;
    m.add_class::<ReplayPy>()?;
    m.add_class::<FramePy>()?;
    m.add_class::<FrameIter>()?;
    m.add_class::<RealtimeIter>()?;
    m.add_class::<VerifyReportPy>()?;
    m.add_class::<RecoveryReportPy>()?;
    m.add_class::<ArrowStreamPy>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(recover, m)?)?;
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    Ok(())
}

/// The stop flags of realtime iterations that may be waiting now (pruned as they end).
static LIVE: Mutex<Vec<std::sync::Weak<AtomicBool>>> = Mutex::new(Vec::new());

/// Stops every realtime iteration and gives their threads time to leave their waits: run at
/// interpreter exit (registered by the package), because a thread that comes back from a
/// GIL-free wait while the interpreter finalizes is killed in a way Rust cannot unwind.
#[pyfunction]
fn _shutdown(py: Python<'_>) {
    bury_graveyard(py);
    let flags: Vec<Arc<AtomicBool>> = lock(&LIVE).drain(..).filter_map(|w| w.upgrade()).collect();
    if flags.is_empty() {
        return;
    }
    for f in &flags {
        f.store(true, Ordering::Relaxed);
    }
    py.detach(|| std::thread::sleep(WAIT_SLICE * 4));
}

/// Nanoseconds since the epoch as float seconds: the double nearest to the exact decimal, so
/// that a `ts` written as `1704067200.01` reads back as `1704067200.01`.
pub fn ns_to_secs(ns: i64) -> f64 {
    Timestamp::from_nanos(ns).as_secs_f64()
}

/// What every frame handed to Python shares: the file's bytes as a Python memoryview (of a
/// Python `mmap` of the file, so that views of it keep the map alive by themselves), and the
/// encodings of the session's streams.
pub struct Shared {
    view: Option<Py<PyAny>>,
    encodings: HashMap<String, String>,
}

/// Views whose last reference went away on a thread other than the main one, kept until the
/// main thread drops them (see `Drop for Shared`).
static GRAVEYARD: Mutex<Vec<Py<PyAny>>> = Mutex::new(Vec::new());

/// True on the interpreter's main thread.
fn on_main_thread(py: Python<'_>) -> bool {
    let run = || -> PyResult<bool> {
        let threading = py.import("threading")?;
        let main = threading.call_method0("main_thread")?.getattr("ident")?;
        let me = threading.call_method0("get_ident")?;
        main.eq(me)
    };
    run().unwrap_or(false)
}

/// Drops the views other threads left (on the main thread only).
pub fn bury_graveyard(py: Python<'_>) {
    if on_main_thread(py) {
        bury_on_main_thread();
    }
}

/// Drops the views other threads left; the caller is on the main thread.
fn bury_on_main_thread() {
    let dead: Vec<Py<PyAny>> = std::mem::take(&mut *lock(&GRAVEYARD));
    drop(dead);
}

impl Drop for Shared {
    fn drop(&mut self) {
        let Some(view) = self.view.take() else { return };
        // The last view of a map unmaps it with the GIL released. A daemon thread that does so
        // while the interpreter finalizes is stopped by CPython as it takes the GIL back, in a
        // way that aborts the process (seen: a stream() thread ending as the program exits).
        // So only the main thread lets a view go; other threads leave it for the main thread
        // (the next open, close or drop there, or interpreter exit).
        Python::attach(|py| {
            // A drop can run while an exception is being raised (a temporary going away):
            // the calls below must not clear or replace it.
            let pending = PyErr::take(py);
            if on_main_thread(py) {
                drop(view);
                bury_on_main_thread();
            } else {
                lock(&GRAVEYARD).push(view);
            }
            if let Some(e) = pending {
                e.restore(py);
            }
        });
    }
}

/// Maps the file from Python (read-only), for zero-copy `Frame.data` views.
fn map_file(py: Python<'_>, path: &std::path::Path) -> Option<Py<PyAny>> {
    let run = || -> PyResult<Py<PyAny>> {
        let io = py.import("io")?;
        let mmap = py.import("mmap")?;
        let f = io.call_method1("open", (path, "rb"))?;
        let access = mmap.getattr("ACCESS_READ")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("access", access)?;
        let mapped = mmap.getattr("mmap")?.call((f.call_method0("fileno")?, 0), Some(&kwargs));
        let _ = f.call_method0("close");
        let view = py.import("builtins")?.getattr("memoryview")?.call1((mapped?,))?;
        Ok(view.unbind())
    };
    run().ok()
}

/// Encodes an object by a stream's encoding for `write_object`.
pub fn encode_object<'py>(py: Python<'py>, encoding: &str, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    match encoding {
        "pickle" => py.import("pickle")?.call_method1("dumps", (obj, 5)),
        "json" => {
            let text = crate::actions::json_dumps(py, obj)?;
            Ok(PyBytes::new(py, &text).into_any())
        }
        "text" | "utf8" | "utf-8" | "string" if obj.is_instance_of::<PyString>() => {
            Ok(PyBytes::new(py, obj.cast::<PyString>()?.to_str()?.as_bytes()).into_any())
        }
        _ => {
            if obj.is_instance_of::<PyString>() {
                return Err(type_error(format!(
                    "a stream of encoding {encoding:?} takes bytes-like objects; use encoding \"json\" or \"pickle\" for objects"
                )));
            }
            Ok(obj.clone())
        }
    }
}

/// Decodes a payload by its stream's encoding (`Frame.value()`).
fn decode_value(py: Python<'_>, encoding: &str, data: &Bound<'_, PyAny>, bytes: &[u8]) -> PyResult<Py<PyAny>> {
    match encoding {
        "json" => {
            let text = std::str::from_utf8(bytes).map_err(|e| value_error(format!("json payload is not UTF-8: {e}")))?;
            Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
        }
        "pickle" => Ok(py.import("pickle")?.call_method1("loads", (data,))?.unbind()),
        "raw" | "" | "bytes" => Ok(PyBytes::new(py, bytes).into_any().unbind()),
        "text" | "utf8" | "utf-8" | "string" => {
            let text = std::str::from_utf8(bytes).map_err(|e| value_error(format!("text payload is not UTF-8: {e}")))?;
            Ok(PyString::new(py, text).into_any().unbind())
        }
        other => Err(value_error(format!("frames of encoding {other:?} have no Python decoder: use .data (a memoryview) or .bytes()"))),
    }
}

/// Opens a `.rec` file for reading (a context manager).
#[pyfunction]
pub fn open(py: Python<'_>, path: PathBuf) -> PyResult<RecFilePy> {
    bury_graveyard(py);
    let p = path.clone();
    let file = py.detach(move || recfile::RecFile::open(&p)).py_at(&path)?;
    let view = map_file(py, &path);
    Ok(RecFilePy { inner: Mutex::new(Some(file)), path, view })
}

/// Recovers an interrupted file in place (only ever cutting a torn tail) and returns what it
/// kept and dropped. Refuses, leaving the file untouched, when it cannot be sure.
#[pyfunction]
pub fn recover(py: Python<'_>, path: PathBuf) -> PyResult<RecoveryReportPy> {
    let p = path.clone();
    let report = py.detach(move || recfile::recover(&p)).py_at(&path)?;
    Ok(RecoveryReportPy::from(report))
}

/// An open `.rec` file.
#[pyclass(module = "recfile._recfile", name = "RecFile", frozen)]
pub struct RecFilePy {
    inner: Mutex<Option<recfile::RecFile>>,
    path: PathBuf,
    view: Option<Py<PyAny>>,
}

impl RecFilePy {
    fn file(&self) -> PyResult<recfile::RecFile> {
        lock(&self.inner).clone().ok_or_else(|| value_error(format!("{}: the file is closed", self.path.display())))
    }

    fn wrap(&self, py: Python<'_>, s: recfile::Session) -> SessionPy {
        SessionPy::new(py, s, self.view.as_ref().map(|v| v.clone_ref(py)), self.path.clone())
    }
}

#[pymethods]
impl RecFilePy {
    /// Every session, in file order (a damaged one keeps its place, with state `damaged`).
    #[getter]
    fn sessions(&self, py: Python<'_>) -> PyResult<Vec<SessionPy>> {
        Ok(self.file()?.sessions().into_iter().map(|s| self.wrap(py, s)).collect())
    }

    /// The last session, or None when the file holds none.
    #[getter]
    fn last_session(&self, py: Python<'_>) -> PyResult<Option<SessionPy>> {
        Ok(self.file()?.last_session().map(|s| self.wrap(py, s)))
    }

    /// A session by 0-based position (negative counts from the end), UUID, or name.
    fn session(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<SessionPy> {
        let file = self.file()?;
        if key.is_instance_of::<PyInt>() {
            let i: i64 = key.extract()?;
            let n = file.session_count() as i64;
            let j = if i < 0 { i + n } else { i };
            return match usize::try_from(j).ok().and_then(|j| file.session(j)) {
                Some(s) => Ok(self.wrap(py, s)),
                None => Err(crate::errors::to_py(recfile::Error::NoSuchSession(format!(
                    "{i} (the file holds {n} session{})",
                    if n == 1 { "" } else { "s" }
                )))),
            };
        }
        let key: String = key.str()?.to_string();
        let s = file.find_session(&key).py_at(&self.path)?;
        Ok(self.wrap(py, s))
    }

    /// The file's UUID.
    #[getter]
    fn file_id(&self) -> PyResult<String> {
        Ok(self.file()?.file_id().to_string())
    }

    /// The format version of the file, as `(major, minor)`.
    #[getter]
    fn format_version(&self) -> PyResult<(u16, u16)> {
        Ok(self.file()?.format_version())
    }

    /// The file's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The file's size in bytes.
    #[getter]
    fn size(&self) -> PyResult<u64> {
        Ok(self.file()?.size_bytes())
    }

    /// True when a writer holds the file now.
    #[getter]
    fn is_live(&self) -> PyResult<bool> {
        Ok(self.file()?.is_live())
    }

    /// True when the last session was interrupted and `recfile.recover` would finish it.
    #[getter]
    fn needs_recovery(&self) -> PyResult<bool> {
        Ok(self.file()?.needs_recovery())
    }

    /// What the reader noticed while opening (damage it worked around).
    #[getter]
    fn warnings(&self) -> PyResult<Vec<String>> {
        Ok(self.file()?.warnings().to_vec())
    }

    /// Checks every record's CRC and the structure; returns the report (falsy when damaged).
    fn verify(&self, py: Python<'_>) -> PyResult<VerifyReportPy> {
        let file = self.file()?;
        let report = py.detach(move || file.verify());
        Ok(VerifyReportPy { report })
    }

    /// Closes the file. Frames and views already handed out stay valid.
    fn close(&self) {
        lock(&self.inner).take();
    }

    /// True once closed.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.inner).is_none()
    }

    fn __len__(&self) -> PyResult<usize> {
        Ok(self.file()?.session_count())
    }

    fn __iter__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let list = PyList::new(py, self.sessions(py)?)?;
        Ok(list.call_method0("__iter__")?.unbind())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        format!("<recfile.RecFile {:?}{}>", self.path.display().to_string(), if self.closed() { " closed" } else { "" })
    }
}

/// One session of a file.
#[pyclass(module = "recfile._recfile", name = "Session", frozen)]
pub struct SessionPy {
    pub session: recfile::Session,
    shared: Arc<Shared>,
    path: PathBuf,
}

impl SessionPy {
    fn new(_py: Python<'_>, session: recfile::Session, view: Option<Py<PyAny>>, path: PathBuf) -> SessionPy {
        let encodings = session.streams().into_iter().map(|s| (s.name, s.encoding)).collect();
        SessionPy { session, shared: Arc::new(Shared { view, encodings }), path }
    }

    fn replay_of(&self, py: Python<'_>, names: &[String]) -> PyResult<ReplayPy> {
        let session = self.session.clone();
        let names = names.to_vec();
        let replay = py
            .detach(move || {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                session.replay(&refs)
            })
            .py_at(&self.path)?;
        Ok(ReplayPy { replay, shared: self.shared.clone(), path: self.path.clone() })
    }
}

#[pymethods]
impl SessionPy {
    /// The session's UUID.
    #[getter]
    fn id(&self) -> String {
        self.session.id().to_string()
    }
    /// Its name.
    #[getter]
    fn name(&self) -> String {
        self.session.name().to_string()
    }
    /// `finished`, `interrupted`, `recording` or `damaged` (what `rec info` prints).
    #[getter]
    fn state(&self) -> &'static str {
        self.session.state().as_str()
    }
    /// Its position in the file (0-based).
    #[getter]
    fn position(&self) -> usize {
        self.session.position()
    }
    /// Start time, ns since the Unix epoch.
    #[getter]
    fn start_ns(&self) -> i64 {
        self.session.start_time().as_nanos()
    }
    /// End time, ns since the Unix epoch (None when not ended).
    #[getter]
    fn end_ns(&self) -> Option<i64> {
        self.session.end_time().map(|t| t.as_nanos())
    }
    /// Start time, float seconds.
    #[getter]
    fn start_ts(&self) -> f64 {
        ns_to_secs(self.start_ns())
    }
    /// End time, float seconds (None when not ended).
    #[getter]
    fn end_ts(&self) -> Option<f64> {
        self.end_ns().map(ns_to_secs)
    }
    /// Frames over all streams.
    #[getter]
    fn frames(&self) -> u64 {
        self.session.frame_count()
    }
    /// True when `recover` finished this session.
    #[getter]
    fn was_recovered(&self) -> bool {
        self.session.was_recovered()
    }
    /// The session's metadata.
    #[getter]
    fn metadata(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.session.metadata() {
            d.set_item(k, v)?;
        }
        Ok(d.unbind())
    }
    /// Its streams, in definition order.
    #[getter]
    fn streams(&self) -> Vec<StreamInfoPy> {
        self.session.streams().into_iter().map(StreamInfoPy::from).collect()
    }
    /// One stream's frames.
    fn stream(&self, py: Python<'_>, name: String) -> PyResult<ReplayPy> {
        self.replay_of(py, &[name])
    }
    /// Several streams (every stream when `names` is None or empty) merged on one clock.
    #[pyo3(signature = (names=None))]
    fn replay(&self, py: Python<'_>, names: Option<Vec<String>>) -> PyResult<ReplayPy> {
        // An empty list means every stream, as in the library.
        self.replay_of(py, &names.unwrap_or_default())
    }
    /// The recorded actions, in order.
    fn actions(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        actions_of(py, &self.session)
    }
    /// The checkpoints, in order.
    fn checkpoints(&self, py: Python<'_>) -> PyResult<Vec<CheckpointPy>> {
        let s = self.session.clone();
        let cps = py.detach(move || s.checkpoints()).py_at(&self.path)?;
        Ok(cps.into_iter().map(CheckpointPy::from).collect())
    }
    fn __repr__(&self) -> String {
        format!(
            "<recfile.Session #{} {:?} {} frames={}>",
            self.session.position(),
            self.session.name(),
            self.session.state().as_str(),
            self.session.frame_count()
        )
    }
}

/// What a session says about one stream.
#[pyclass(module = "recfile._recfile", name = "StreamInfo", frozen, get_all)]
pub struct StreamInfoPy {
    /// The stream's name.
    name: String,
    /// Its encoding label.
    encoding: String,
    /// Its schema (message type) name; empty when none.
    schema_name: String,
    /// Its schema bytes; empty when none.
    schema: Vec<u8>,
    /// Its frame count.
    frames: u64,
    /// The smallest timestamp, ns (None without frames).
    first_ns: Option<i64>,
    /// The largest timestamp, ns (None without frames).
    last_ns: Option<i64>,
    /// The sum of its payload sizes.
    bytes: u64,
}

impl From<recfile::StreamInfo> for StreamInfoPy {
    fn from(s: recfile::StreamInfo) -> Self {
        StreamInfoPy {
            name: s.name,
            encoding: s.encoding,
            schema_name: s.schema_name,
            schema: s.schema,
            frames: s.frames,
            first_ns: s.first.map(|t| t.as_nanos()),
            last_ns: s.last.map(|t| t.as_nanos()),
            bytes: s.payload_bytes,
        }
    }
}

#[pymethods]
impl StreamInfoPy {
    fn __repr__(&self) -> String {
        format!("<recfile.StreamInfo {:?} encoding={:?} frames={}>", self.name, self.encoding, self.frames)
    }
}

/// One stream, or several merged on one clock: indexing, lookups by time, iteration and
/// realtime playback. Cheap to copy; lookups are O(log n) and touch no other frame.
#[pyclass(module = "recfile._recfile", name = "Replay", frozen)]
pub struct ReplayPy {
    replay: recfile::Replay,
    shared: Arc<Shared>,
    path: PathBuf,
}

/// A one-use Arrow C stream over batches already made (what `to_arrow` hands to pyarrow).
#[pyclass(module = "recfile._recfile", name = "ArrowStream", frozen)]
pub struct ArrowStreamPy {
    reader: Mutex<Option<Box<dyn arrow_array::RecordBatchReader + Send>>>,
}

#[pymethods]
impl ArrowStreamPy {
    /// The stream (once).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyCapsule>> {
        let _ = requested_schema;
        let reader = lock(&self.reader).take().ok_or_else(|| value_error("this Arrow stream was already read"))?;
        crate::arrow::stream_capsule(py, reader)
    }
}

/// The window of `iterate*` arguments.
fn window(
    seek: Option<&Bound<'_, PyAny>>,
    duration: Option<&Bound<'_, PyAny>>,
    from_timestamp: Option<&Bound<'_, PyAny>>,
    looping: bool,
) -> PyResult<Window> {
    let mut w = Window::new().looping(looping);
    match from_timestamp.filter(|t| !t.is_none()) {
        Some(t) => w = w.from_timestamp(timearg::timestamp(t, "from_timestamp")?),
        None => {
            if let Some(s) = timearg::duration(seek, "seek")? {
                w = w.seek(s);
            }
        }
    }
    if let Some(d) = timearg::duration(duration, "duration")? {
        w = w.duration(d);
    }
    Ok(w)
}

/// What a `FrameIter` yields.
#[derive(Clone, Copy)]
enum Yield {
    Frame,
    Ts,
    SinceStart(i64),
}

impl ReplayPy {
    fn frame(&self, _py: Python<'_>, f: recfile::Frame, lap: u64) -> FramePy {
        FramePy { frame: f, lap, shared: self.shared.clone() }
    }

    fn lookup(
        &self,
        py: Python<'_>,
        ts: Option<Bound<'_, PyAny>>,
        ts_ns: Option<i64>,
        f: impl FnOnce(&recfile::Replay, Timestamp) -> recfile::Result<Option<recfile::Frame>> + Send,
    ) -> PyResult<Option<FramePy>> {
        let t = timearg::ts_or_ns(ts.as_ref(), ts_ns, "ts")?.ok_or_else(|| type_error("give ts (seconds) or ts_ns"))?;
        let replay = &self.replay;
        let found = py.detach(|| f(replay, t)).py_at(&self.path)?;
        Ok(found.map(|fr| self.frame(py, fr, 0)))
    }

    fn frame_iter(&self, window: Window, mode: Yield) -> FrameIter {
        let frames = Batched { iter: self.replay.iterate_window(&window), ready: VecDeque::with_capacity(BATCH) };
        FrameIter { frames: Mutex::new(frames), shared: self.shared.clone(), path: self.path.clone(), mode }
    }
}

#[pymethods]
impl ReplayPy {
    /// The frames as an Arrow C stream (the Arrow PyCapsule interface), one row per frame with
    /// the columns of `rec export`: pyarrow, Polars and DuckDB read a replay directly.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyCapsule>> {
        let _ = requested_schema;
        crate::arrow::stream_capsule(py, crate::arrow::replay_batches(&self.replay, false)?)
    }

    /// Every frame as a `pyarrow.Table`, one row per frame: recording, session, stream, seq, ts
    /// (timestamp ns UTC), ts_ns, data, encoding, publish_ts. With ``skip_damaged`` damaged
    /// frames are left out instead of raising.
    #[pyo3(signature = (skip_damaged=false))]
    fn to_arrow<'py>(&self, py: Python<'py>, skip_damaged: bool) -> PyResult<Bound<'py, PyAny>> {
        let stream = ArrowStreamPy { reader: Mutex::new(Some(crate::arrow::replay_batches(&self.replay, skip_damaged)?)) };
        crate::arrow::pyarrow_reader(Bound::new(py, stream)?.as_any())?.call_method0("read_all")
    }

    /// The streams merged here.
    #[getter]
    fn streams(&self) -> Vec<String> {
        self.replay.stream_names().into_iter().map(str::to_string).collect()
    }

    fn __len__(&self) -> usize {
        self.replay.len() as usize
    }

    fn __bool__(&self) -> bool {
        !self.replay.is_empty()
    }

    /// The frame at a position (negative counts from the end), or a list for a slice.
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let n = self.replay.len() as i64;
        if let Ok(slice) = key.cast::<PySlice>() {
            let idx = slice.indices(n as isize)?;
            let list = PyList::empty(py);
            let mut i = idx.start;
            for _ in 0..idx.slicelength {
                let replay = &self.replay;
                let f = py.detach(|| replay.load(i as u64)).py_at(&self.path)?;
                list.append(Py::new(py, self.frame(py, f, 0))?)?;
                i += idx.step;
            }
            return Ok(list.into_any().unbind());
        }
        let i: i64 = key.extract().map_err(|_| type_error("replay indices must be integers or slices"))?;
        let j = if i < 0 { i + n } else { i };
        if j < 0 || j >= n {
            return Err(PyIndexError::new_err(format!("frame index {i} out of range (replay has {n} frames)")));
        }
        let replay = &self.replay;
        let f = py.detach(|| replay.load(j as u64)).py_at(&self.path)?;
        Ok(Py::new(py, self.frame(py, f, 0))?.into_any())
    }

    fn __iter__(&self) -> FrameIter {
        self.frame_iter(Window::new(), Yield::Frame)
    }

    /// The first frame (None when empty).
    fn first(&self, py: Python<'_>) -> PyResult<Option<FramePy>> {
        if self.replay.is_empty() {
            return Ok(None);
        }
        let replay = &self.replay;
        let f = py.detach(|| replay.load(0)).py_at(&self.path)?;
        Ok(Some(self.frame(py, f, 0)))
    }

    /// The last frame (None when empty).
    fn last(&self, py: Python<'_>) -> PyResult<Option<FramePy>> {
        let n = self.replay.len();
        if n == 0 {
            return Ok(None);
        }
        let replay = &self.replay;
        let f = py.detach(|| replay.load(n - 1)).py_at(&self.path)?;
        Ok(Some(self.frame(py, f, 0)))
    }

    /// The first timestamp, float seconds (None when empty).
    fn first_timestamp(&self) -> Option<f64> {
        self.replay.first_timestamp().map(|t| ns_to_secs(t.as_nanos()))
    }

    /// The last timestamp, float seconds (None when empty).
    fn last_timestamp(&self) -> Option<f64> {
        self.replay.last_timestamp().map(|t| ns_to_secs(t.as_nanos()))
    }

    /// The first timestamp, ns (None when empty).
    fn first_timestamp_ns(&self) -> Option<i64> {
        self.replay.first_timestamp().map(|t| t.as_nanos())
    }

    /// The last timestamp, ns (None when empty).
    fn last_timestamp_ns(&self) -> Option<i64> {
        self.replay.last_timestamp().map(|t| t.as_nanos())
    }

    /// Last minus first timestamp, in seconds.
    fn duration(&self) -> f64 {
        self.replay.duration().as_secs_f64()
    }

    /// The frame closest to `ts` (seconds) or `ts_ns`; None when the closest is farther than
    /// `tolerance` seconds (or there is no frame).
    #[pyo3(signature = (ts=None, tolerance=None, *, ts_ns=None))]
    fn find_closest(
        &self,
        py: Python<'_>,
        ts: Option<Bound<'_, PyAny>>,
        tolerance: Option<Bound<'_, PyAny>>,
        ts_ns: Option<i64>,
    ) -> PyResult<Option<FramePy>> {
        let tol = timearg::duration(tolerance.as_ref(), "tolerance")?;
        self.lookup(py, ts, ts_ns, move |r, t| r.try_find_closest(t, tol))
    }

    /// The last frame at or before `ts` (None when none).
    #[pyo3(signature = (ts=None, *, ts_ns=None))]
    fn find_before(&self, py: Python<'_>, ts: Option<Bound<'_, PyAny>>, ts_ns: Option<i64>) -> PyResult<Option<FramePy>> {
        self.lookup(py, ts, ts_ns, |r, t| r.try_find_before(t))
    }

    /// The first frame at or after `ts` (None when none).
    #[pyo3(signature = (ts=None, *, ts_ns=None))]
    fn find_after(&self, py: Python<'_>, ts: Option<Bound<'_, PyAny>>, ts_ns: Option<i64>) -> PyResult<Option<FramePy>> {
        self.lookup(py, ts, ts_ns, |r, t| r.try_find_after(t))
    }

    /// The frame closest to `seconds` after the first frame.
    #[pyo3(signature = (seconds, tolerance=None))]
    fn find_closest_seek(
        &self,
        py: Python<'_>,
        seconds: Bound<'_, PyAny>,
        tolerance: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Option<FramePy>> {
        let Some(first) = self.replay.first_timestamp() else { return Ok(None) };
        let offset = timearg::duration(Some(&seconds), "seconds")?.unwrap_or_default();
        let tol = timearg::duration(tolerance.as_ref(), "tolerance")?;
        let t = first.saturating_add(offset);
        self.lookup(py, None, Some(t.as_nanos()), move |r, t| r.try_find_closest(t, tol))
    }

    /// Frames in timestamp order; `seek` seconds after the start (or from `from_timestamp`), for
    /// `duration` seconds, lap after lap with `loop=True`.
    #[pyo3(signature = (seek=None, duration=None, from_timestamp=None, r#loop=false))]
    fn iterate(
        &self,
        seek: Option<Bound<'_, PyAny>>,
        duration: Option<Bound<'_, PyAny>>,
        from_timestamp: Option<Bound<'_, PyAny>>,
        r#loop: bool,
    ) -> PyResult<FrameIter> {
        Ok(self.frame_iter(window(seek.as_ref(), duration.as_ref(), from_timestamp.as_ref(), r#loop)?, Yield::Frame))
    }

    /// Like `iterate`, yielding `(ts, frame)` with `ts` in float seconds (the recorded
    /// timestamps again on each lap).
    #[pyo3(signature = (seek=None, duration=None, from_timestamp=None, r#loop=false))]
    fn iterate_ts(
        &self,
        seek: Option<Bound<'_, PyAny>>,
        duration: Option<Bound<'_, PyAny>>,
        from_timestamp: Option<Bound<'_, PyAny>>,
        r#loop: bool,
    ) -> PyResult<FrameIter> {
        Ok(self.frame_iter(window(seek.as_ref(), duration.as_ref(), from_timestamp.as_ref(), r#loop)?, Yield::Ts))
    }

    /// Like `iterate`, yielding `(seconds_since_start, frame)`: seconds since the first frame.
    #[pyo3(signature = (seek=None, duration=None, from_timestamp=None, r#loop=false))]
    fn iterate_duration(
        &self,
        seek: Option<Bound<'_, PyAny>>,
        duration: Option<Bound<'_, PyAny>>,
        from_timestamp: Option<Bound<'_, PyAny>>,
        r#loop: bool,
    ) -> PyResult<FrameIter> {
        let start = self.replay.first_timestamp().map_or(0, |t| t.as_nanos());
        Ok(self.frame_iter(window(seek.as_ref(), duration.as_ref(), from_timestamp.as_ref(), r#loop)?, Yield::SinceStart(start)))
    }

    /// Frames at their due times, `speed` times as fast as recorded, on one clock for every
    /// stream and across laps. `late`: `catch_up` (deliver late frames at once), `reanchor`
    /// (shift the clock after 100 ms late) or `drop` (skip frames over 10 ms late). The GIL is
    /// released while waiting, and Ctrl-C interrupts the wait.
    #[pyo3(signature = (speed=1.0, seek=None, duration=None, from_timestamp=None, r#loop=false, late="catch_up"))]
    #[allow(clippy::too_many_arguments)]
    fn iterate_realtime(
        &self,
        speed: f64,
        seek: Option<Bound<'_, PyAny>>,
        duration: Option<Bound<'_, PyAny>>,
        from_timestamp: Option<Bound<'_, PyAny>>,
        r#loop: bool,
        late: &str,
    ) -> PyResult<RealtimeIter> {
        let policy = match late {
            "catch_up" => LatePolicy::CatchUp,
            "reanchor" => LatePolicy::Reanchor { after: Duration::from_millis(100) },
            "drop" => LatePolicy::Drop,
            other => return Err(value_error(format!("late must be \"catch_up\", \"reanchor\" or \"drop\", not {other:?}"))),
        };
        let w = window(seek.as_ref(), duration.as_ref(), from_timestamp.as_ref(), r#loop)?;
        let rt = self.replay.iterate_realtime_window(&w, RealtimeOptions::new(speed).late(policy)).py()?;
        let stop = Arc::new(AtomicBool::new(false));
        {
            let mut live = lock(&LIVE);
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(&stop));
        }
        Ok(RealtimeIter { rt: Mutex::new(rt), stop, shared: self.shared.clone(), path: self.path.clone() })
    }

    /// A reactivex Observable emitting the frames at their due times (like `iterate_realtime`)
    /// from one timer thread; it completes at the end and stops when disposed.
    #[pyo3(signature = (speed=1.0, seek=None, duration=None, from_timestamp=None, r#loop=false))]
    fn stream(
        slf: &Bound<'_, Self>,
        speed: f64,
        seek: Option<Bound<'_, PyAny>>,
        duration: Option<Bound<'_, PyAny>>,
        from_timestamp: Option<Bound<'_, PyAny>>,
        r#loop: bool,
    ) -> PyResult<Py<PyAny>> {
        if !(speed.is_finite() && speed > 0.0) {
            return Err(value_error(format!("playback speed must be positive and finite, got {speed}")));
        }
        // Check the window now, so that a bad argument raises here, not in the timer thread.
        window(seek.as_ref(), duration.as_ref(), from_timestamp.as_ref(), r#loop)?;
        let helper = slf.py().import("recfile._idioms")?.getattr("observable")?;
        Ok(helper.call1((slf, speed, seek, duration, from_timestamp, r#loop))?.unbind())
    }

    fn __repr__(&self) -> String {
        format!("<recfile.Replay {:?} frames={}>", self.replay.stream_names(), self.replay.len())
    }
}

/// One frame: timestamp, stream, arrival number and payload (a zero-copy view of the file).
#[pyclass(module = "recfile._recfile", name = "Frame", frozen)]
pub struct FramePy {
    frame: recfile::Frame,
    lap: u64,
    shared: Arc<Shared>,
}

#[pymethods]
impl FramePy {
    /// Timestamp, float seconds (the double nearest the exact recorded decimal).
    #[getter]
    fn ts(&self) -> f64 {
        ns_to_secs(self.frame.timestamp().as_nanos())
    }
    /// Timestamp, ns since the Unix epoch.
    #[getter]
    fn ts_ns(&self) -> i64 {
        self.frame.timestamp().as_nanos()
    }
    /// The stream's name.
    #[getter]
    fn stream(&self) -> String {
        self.frame.stream().to_string()
    }
    /// Arrival number within the stream (0, 1, …).
    #[getter]
    fn seq(&self) -> u64 {
        self.frame.seq()
    }
    /// The lap of a looping iteration (0 outside loops).
    #[getter]
    fn lap(&self) -> u64 {
        self.lap
    }
    /// The encoding of the frame's stream.
    #[getter]
    fn encoding(&self) -> String {
        self.shared.encodings.get(self.frame.stream()).cloned().unwrap_or_default()
    }
    /// The payload as a read-only memoryview into the file's map (zero-copy; the map stays
    /// alive as long as any view of it does).
    #[getter]
    fn data(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let start = self.frame.data_offset() as isize;
        let len = self.frame.data().len() as isize;
        match &self.shared.view {
            Some(view) => {
                let view = view.bind(py);
                let in_map = view.len().map(|n| (start + len) as usize <= n).unwrap_or(false);
                if in_map {
                    return Ok(view.get_item(PySlice::new(py, start, start + len, 1))?.unbind());
                }
                self.copy_view(py)
            }
            None => self.copy_view(py),
        }
    }
    /// The payload's length in bytes.
    #[getter]
    fn size(&self) -> usize {
        self.frame.data().len()
    }
    /// The payload as bytes (a copy).
    fn bytes(&self, py: Python<'_>) -> Py<PyBytes> {
        PyBytes::new(py, self.frame.data()).unbind()
    }
    /// The payload decoded by the stream's encoding: `json` and `pickle` (for trusted files
    /// only: unpickling runs code) to objects, `raw` to bytes, `text` to str; others raise.
    fn value(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let encoding = self.encoding();
        let data = self.data(py)?;
        decode_value(py, &encoding, data.bind(py), self.frame.data())
    }
    fn __repr__(&self) -> String {
        format!(
            "<recfile.Frame {} #{} ts={} {} bytes{}>",
            self.frame.stream(),
            self.frame.seq(),
            self.frame.timestamp().to_decimal_secs(),
            self.frame.data().len(),
            if self.lap > 0 { format!(" lap {}", self.lap) } else { String::new() }
        )
    }
}

impl FramePy {
    fn copy_view(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let b = PyBytes::new(py, self.frame.data());
        Ok(py.import("builtins")?.getattr("memoryview")?.call1((b,))?.unbind())
    }
}

/// How many frames an iterator loads per release of the GIL: releasing and taking it back
/// costs more than loading a frame from a checked interval.
const BATCH: usize = 64;

/// A window's frames, loaded a batch at a time.
struct Batched {
    iter: recfile::WindowIter,
    ready: VecDeque<recfile::Result<recfile::WindowFrame>>,
}

impl Batched {
    /// Loads the next batch (in order, errors in their places) and takes its first item.
    fn refill(&mut self) -> Option<recfile::Result<recfile::WindowFrame>> {
        self.ready.extend(self.iter.by_ref().take(BATCH));
        self.ready.pop_front()
    }
}

/// Iterates the frames of a window (what `Replay.iterate*` return).
#[pyclass(module = "recfile._recfile", frozen)]
pub struct FrameIter {
    frames: Mutex<Batched>,
    shared: Arc<Shared>,
    path: PathBuf,
    mode: Yield,
}

#[pymethods]
impl FrameIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let frames = &self.frames;
        // The batch is loaded without the GIL (its page faults may wait for the disk).
        let ready = lock(frames).ready.pop_front();
        let next = match ready {
            Some(item) => Some(item),
            None => py.detach(|| lock(frames).refill()),
        };
        let Some(item) = next else { return Ok(None) };
        let wf = item.py_at(&self.path)?;
        let ts = wf.frame.timestamp().as_nanos();
        let frame = Py::new(py, FramePy { frame: wf.frame, lap: wf.lap, shared: self.shared.clone() })?;
        Ok(Some(match self.mode {
            Yield::Frame => frame.into_any(),
            Yield::Ts => (ns_to_secs(ts), frame).into_pyobject(py)?.into_any().unbind(),
            Yield::SinceStart(start) => {
                let since = (i128::from(ts) - i128::from(start)) as f64 / 1e9;
                (since, frame).into_pyobject(py)?.into_any().unbind()
            }
        }))
    }
}

/// Frames at their due times (what `Replay.iterate_realtime` returns). `stop()` (from any
/// thread) ends it within a few milliseconds.
#[pyclass(module = "recfile._recfile", frozen)]
pub struct RealtimeIter {
    rt: Mutex<recfile::Realtime>,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    path: PathBuf,
}

/// How long a realtime wait runs without the GIL before checking signals and `stop()`.
const WAIT_SLICE: Duration = Duration::from_millis(5);

#[pymethods]
impl RealtimeIter {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<FramePy>> {
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let rt = &self.rt;
            let polled = py.detach(|| lock(rt).poll_next(WAIT_SLICE));
            match polled {
                RealtimePoll::Done => return Ok(None),
                RealtimePoll::Frame(f) => {
                    let wf = f.py_at(&self.path)?;
                    return Ok(Some(FramePy { frame: wf.frame, lap: wf.lap, shared: self.shared.clone() }));
                }
                RealtimePoll::Waiting => py.check_signals()?,
            }
        }
    }

    /// Ends the iteration (callable from any thread).
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Playback statistics so far: delivered, dropped, reanchors, lateness percentiles (ns).
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let stats = lock(&self.rt).stats();
        to_python(py, &stats)
    }
}

/// The result of `RecFile.verify()`: falsy when anything is damaged.
#[pyclass(module = "recfile._recfile", name = "VerifyReport", frozen)]
pub struct VerifyReportPy {
    report: recfile::VerifyReport,
}

#[pymethods]
impl VerifyReportPy {
    /// True when no problem was found.
    #[getter]
    fn ok(&self) -> bool {
        self.report.ok
    }
    /// Sessions found.
    #[getter]
    fn sessions(&self) -> usize {
        self.report.sessions
    }
    /// Records checked.
    #[getter]
    fn records(&self) -> u64 {
        self.report.records
    }
    /// Frame records checked.
    #[getter]
    fn frames(&self) -> u64 {
        self.report.frames
    }
    /// Every problem, in file order, as dicts (`offset`, `session`, `message`).
    #[getter]
    fn problems(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.report.problems)
    }
    /// The report as a dict.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.report)
    }
    fn __bool__(&self) -> bool {
        self.report.ok
    }
    fn __repr__(&self) -> String {
        format!("<recfile.VerifyReport ok={} problems={}>", self.report.ok, self.report.problems.len())
    }
}

/// What `recover` (or `Recorder(append=True)`) found and did.
#[pyclass(module = "recfile._recfile", name = "RecoveryReport", frozen)]
pub struct RecoveryReportPy {
    report: recfile::RecoveryReport,
}

impl From<recfile::RecoveryReport> for RecoveryReportPy {
    fn from(report: recfile::RecoveryReport) -> Self {
        RecoveryReportPy { report }
    }
}

#[pymethods]
impl RecoveryReportPy {
    /// Whether the file held an interrupted session (False: nothing to do).
    #[getter]
    fn was_interrupted(&self) -> bool {
        self.report.was_interrupted
    }
    /// The recovered session's UUID.
    #[getter]
    fn session_id(&self) -> Option<String> {
        self.report.session_id.map(|u| u.to_string())
    }
    /// The recovered session's name.
    #[getter]
    fn session_name(&self) -> Option<String> {
        self.report.session_name.clone()
    }
    /// Frames of the session kept.
    #[getter]
    fn frames_kept(&self) -> u64 {
        self.report.frames_kept
    }
    /// Of those, frames found after the last checkpoint.
    #[getter]
    fn frames_after_checkpoint(&self) -> u64 {
        self.report.frames_after_checkpoint
    }
    /// Checkpoints found in the session.
    #[getter]
    fn checkpoints(&self) -> u32 {
        self.report.checkpoints
    }
    /// Frame records found damaged or cut off in the dropped tail.
    #[getter]
    fn frames_dropped(&self) -> u64 {
        self.report.frames_dropped
    }
    /// Bytes cut from the end of the file (the torn tail).
    #[getter]
    fn bytes_dropped(&self) -> u64 {
        self.report.bytes_dropped
    }
    /// Committed bytes the file no longer holds (a file cut short).
    #[getter]
    fn committed_bytes_missing(&self) -> u64 {
        self.report.committed_bytes_missing
    }
    /// Damaged records found (left alone: recovery only cuts a torn tail).
    #[getter]
    fn damaged(&self) -> Vec<String> {
        self.report.damaged.clone()
    }
    /// Why the scan of the tail stopped, when it stopped before the end of the file.
    #[getter]
    fn stop_reason(&self) -> Option<String> {
        self.report.stop_reason.clone()
    }
    /// True when anything once committed is gone (what makes `rec recover` exit 3).
    #[getter]
    fn lost_data(&self) -> bool {
        self.report.lost_data()
    }
    /// The report as a dict.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let d = to_python(py, &self.report)?;
        d.bind(py).set_item("lost_data", self.report.lost_data())?;
        Ok(d)
    }
    fn __repr__(&self) -> String {
        format!(
            "<recfile.RecoveryReport was_interrupted={} frames_kept={} frames_dropped={} bytes_dropped={}>",
            self.report.was_interrupted, self.report.frames_kept, self.report.frames_dropped, self.report.bytes_dropped
        )
    }
}
