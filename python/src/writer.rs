//! Writing: `Recorder`, `SessionWriter`, `Stream`.

use crate::actions::{json_dumps, record_action_py, SessionInfoPy};
use crate::buffer::Bytes;
use crate::errors::{value_error, PyResultExt};
use crate::reader::RecoveryReportPy;
use crate::timearg;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use recfile::{Durability, RecorderOptions, StreamId, Timestamp};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Recorder>()?;
    m.add_class::<SessionWriter>()?;
    m.add_class::<Stream>()?;
    Ok(())
}

/// Locks a mutex, ignoring poisoning: the state behind it stays consistent (the library's own
/// calls do not unwind halfway), and a panic never crosses into Python.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn durability(name: &str, interval: Duration) -> PyResult<Durability> {
    Ok(match name {
        "interval" => Durability::Interval(interval),
        "every_checkpoint" => Durability::EveryCheckpoint,
        "every_frame" => Durability::EveryFrame,
        "none" => Durability::None,
        other => {
            return Err(value_error(format!(
                "durability must be \"interval\", \"every_checkpoint\", \"every_frame\" or \"none\", not {other:?}"
            )))
        }
    })
}

/// Writes sessions into one `.rec` file; a context manager. Never overwrites: creating a file
/// that exists and is not empty raises `FileExistsError` (use `append=True`, which recovers an
/// interrupted last session first).
#[pyclass(module = "recfile._recfile", frozen)]
pub struct Recorder {
    inner: Mutex<Option<recfile::Recorder>>,
    path: PathBuf,
    recovery: Option<recfile::RecoveryReport>,
    /// Sessions started here, finished when the recorder closes.
    sessions: Mutex<Vec<Py<SessionWriter>>>,
}

#[pymethods]
impl Recorder {
    #[new]
    #[pyo3(signature = (path, *, append=false, checkpoint_every_frames=1000, checkpoint_every=None, durability="interval"))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        append: bool,
        checkpoint_every_frames: u64,
        checkpoint_every: Option<Bound<'_, PyAny>>,
        durability: &str,
    ) -> PyResult<Recorder> {
        let every = timearg::duration(checkpoint_every.as_ref(), "checkpoint_every")?.unwrap_or(Duration::from_secs(1));
        if every.is_zero() {
            return Err(value_error("checkpoint_every must be positive"));
        }
        let options = RecorderOptions::new()
            .checkpoint_every_frames(checkpoint_every_frames)
            .checkpoint_every(every)
            .durability(self::durability(durability, Duration::from_secs(1))?);
        let p = path.clone();
        let recorder = py.detach(move || if append { options.open_append(&p) } else { options.create(&p) }).py_at(&path)?;
        let recovery = recorder.recovery_report().filter(|r| r.was_interrupted || r.lost_data() || !r.damaged.is_empty()).cloned();
        Ok(Recorder { inner: Mutex::new(Some(recorder)), path, recovery, sessions: Mutex::new(Vec::new()) })
    }

    /// Starts a session; returns its writer (a context manager that finishes it on exit).
    #[pyo3(signature = (name, metadata=None))]
    fn session(slf: &Bound<'_, Self>, name: &str, metadata: Option<&Bound<'_, PyDict>>) -> PyResult<Py<SessionWriter>> {
        let py = slf.py();
        let this = slf.get();
        let mut pairs = Vec::new();
        if let Some(m) = metadata {
            for (k, v) in m.iter() {
                pairs.push((k.str()?.to_string(), v.str()?.to_string()));
            }
        }
        let writer = {
            let mut guard = lock(&this.inner);
            let recorder = guard.as_mut().ok_or_else(|| value_error("the recorder is closed"))?;
            let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            py.detach(|| recorder.start_session_with_metadata(name, &refs)).py_at(&this.path)?
        };
        let session = Py::new(py, SessionWriter::wrap(writer, this.path.clone()))?;
        let mut sessions = lock(&this.sessions);
        sessions.retain(|s| !s.get().is_finished());
        sessions.push(session.clone_ref(py));
        Ok(session)
    }

    /// The file's UUID.
    #[getter]
    fn file_id(&self) -> PyResult<String> {
        let guard = lock(&self.inner);
        let recorder = guard.as_ref().ok_or_else(|| value_error("the recorder is closed"))?;
        Ok(recorder.file_id().to_string())
    }

    /// The file's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// What opening with `append=True` recovered, or None when nothing needed recovery.
    #[getter]
    fn recovery(&self) -> Option<RecoveryReportPy> {
        self.recovery.clone().map(RecoveryReportPy::from)
    }

    /// True once closed.
    #[getter]
    fn closed(&self) -> bool {
        lock(&self.inner).is_none()
    }

    /// Finishes every session still open and closes the file.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let sessions: Vec<Py<SessionWriter>> = std::mem::take(&mut *lock(&self.sessions));
        let mut first_err = None;
        for s in sessions {
            if let Err(e) = s.get().finish(py) {
                first_err.get_or_insert(e);
            }
        }
        let recorder = lock(&self.inner).take();
        py.detach(move || drop(recorder));
        first_err.map_or(Ok(()), Err)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<recfile.Recorder {:?}{}>", self.path.display().to_string(), if self.closed() { " closed" } else { "" })
    }
}

/// A stream of a session being written: pass it (or its name) to `SessionWriter.write`.
#[pyclass(module = "recfile._recfile", frozen, eq, hash)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Stream {
    /// The stream's name.
    #[pyo3(get)]
    pub name: String,
    /// Its encoding label (`raw`, `json`, `pickle`, …).
    #[pyo3(get)]
    pub encoding: String,
    /// Its id within the session.
    #[pyo3(get)]
    pub id: u16,
    session: String,
}

#[pymethods]
impl Stream {
    fn __repr__(&self) -> String {
        format!("<recfile.Stream {:?} encoding={:?}>", self.name, self.encoding)
    }
}

struct WriterState {
    writer: Option<recfile::SessionWriter>,
    streams: HashMap<String, (StreamId, String)>,
    info: Option<recfile::SessionInfo>,
}

/// One session being recorded; a context manager that finishes the session on exit (also when
/// the block raises). Safe to use from several threads at once.
#[pyclass(module = "recfile._recfile", frozen)]
pub struct SessionWriter {
    state: Arc<Mutex<WriterState>>,
    id: String,
    name: String,
    path: PathBuf,
}

impl SessionWriter {
    fn wrap(writer: recfile::SessionWriter, path: PathBuf) -> SessionWriter {
        let id = writer.id().to_string();
        let name = writer.name().to_string();
        SessionWriter {
            state: Arc::new(Mutex::new(WriterState { writer: Some(writer), streams: HashMap::new(), info: None })),
            id,
            name,
            path,
        }
    }

    fn is_finished(&self) -> bool {
        lock(&self.state).writer.is_none()
    }

    /// Runs `f` on the open writer, with the GIL released.
    pub fn with_writer<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut recfile::SessionWriter) -> recfile::Result<T> + Send,
    ) -> PyResult<T> {
        let state = &self.state;
        let path = &self.path;
        py.detach(|| {
            let mut s = lock(state);
            let w = s.writer.as_mut().ok_or_else(|| recfile::Error::Closed("the session is finished".into()))?;
            f(w)
        })
        .py_at(path)
    }

    /// The stream a `stream` argument names: a `Stream` handle or a defined stream's name.
    fn resolve(&self, stream: &Bound<'_, PyAny>) -> PyResult<(StreamId, String)> {
        if let Ok(s) = stream.cast::<Stream>() {
            let s = s.get();
            if s.session != self.id {
                return Err(value_error(format!("stream {:?} belongs to another session", s.name)));
            }
            return Ok((StreamId(s.id), s.encoding.clone()));
        }
        if let Ok(name) = stream.cast::<PyString>() {
            let name = name.to_str()?;
            let state = lock(&self.state);
            return state.streams.get(name).cloned().ok_or_else(|| {
                let mut names: Vec<&str> = state.streams.keys().map(String::as_str).collect();
                names.sort_unstable();
                crate::errors::to_py(recfile::Error::NoSuchStream(format!(
                    "{name} in session {:?} (streams: {})",
                    self.name,
                    if names.is_empty() { "none yet: add_stream first".to_string() } else { names.join(", ") }
                )))
            });
        }
        Err(crate::errors::type_error(format!("stream must be a Stream or a stream name, not {}", stream.get_type().name()?)))
    }

    fn write_bytes(&self, py: Python<'_>, stream: StreamId, data: &[u8], ts: Option<Timestamp>) -> PyResult<u64> {
        self.with_writer(py, |w| match ts {
            Some(ts) => w.write(stream, ts, data),
            None => w.write_now(stream, data),
        })
    }
}

#[pymethods]
impl SessionWriter {
    /// The session's UUID.
    #[getter]
    fn id(&self) -> String {
        self.id.clone()
    }

    /// The session's name.
    #[getter]
    fn name(&self) -> String {
        self.name.clone()
    }

    /// Frames written so far, over all streams.
    #[getter]
    fn frames(&self) -> u64 {
        let s = lock(&self.state);
        match (&s.writer, &s.info) {
            (Some(w), _) => w.frames(),
            (None, Some(info)) => info.frames,
            (None, None) => 0,
        }
    }

    /// True once finished.
    #[getter]
    fn finished(&self) -> bool {
        self.is_finished()
    }

    /// The streams defined so far, by name.
    #[getter]
    fn streams(&self) -> Vec<Stream> {
        let s = lock(&self.state);
        let mut v: Vec<Stream> = s
            .streams
            .iter()
            .map(|(name, (id, enc))| Stream { name: name.clone(), encoding: enc.clone(), id: id.0, session: self.id.clone() })
            .collect();
        v.sort_by_key(|s| s.id);
        v
    }

    /// Defines a stream. `encoding` labels the payloads (`raw`, `json`, `pickle`, or any other
    /// label); `schema_name` and `schema` describe them (a message type and its definition).
    #[pyo3(signature = (name, encoding="raw", schema_name="", schema=None))]
    fn add_stream(
        &self,
        py: Python<'_>,
        name: &str,
        encoding: &str,
        schema_name: &str,
        schema: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Stream> {
        let schema_bytes = match &schema {
            Some(s) if !s.is_none() => Some(Bytes::borrow(s)?),
            _ => None,
        };
        let schema_slice: &[u8] = schema_bytes.as_ref().map_or(&[], |b| b.as_slice());
        let id = self.with_writer(py, |w| w.add_stream_with_schema(name, encoding, schema_name, schema_slice))?;
        lock(&self.state).streams.insert(name.to_string(), (id, encoding.to_string()));
        Ok(Stream { name: name.to_string(), encoding: encoding.to_string(), id: id.0, session: self.id.clone() })
    }

    /// Appends a frame; returns how many frames the stream holds now. `data` is any contiguous
    /// bytes-like object (bytes, bytearray, memoryview, a numpy array), read without a copy.
    /// `ts` is seconds (float, int or str, read as the exact decimal it prints as), `ts_ns`
    /// integer nanoseconds; neither means now.
    #[pyo3(signature = (stream, data, ts=None, ts_ns=None))]
    fn write(
        &self,
        py: Python<'_>,
        stream: &Bound<'_, PyAny>,
        data: &Bound<'_, PyAny>,
        ts: Option<Bound<'_, PyAny>>,
        ts_ns: Option<i64>,
    ) -> PyResult<u64> {
        let (id, _) = self.resolve(stream)?;
        let ts = timearg::ts_or_ns(ts.as_ref(), ts_ns, "ts")?;
        let bytes = Bytes::borrow(data)?;
        self.write_bytes(py, id, bytes.as_slice(), ts)
    }

    /// Encodes `obj` by the stream's encoding (`pickle`, `json`; `raw` and others need
    /// bytes-like objects) and appends it like `write`.
    #[pyo3(signature = (stream, obj, ts=None, ts_ns=None))]
    fn write_object(
        &self,
        py: Python<'_>,
        stream: &Bound<'_, PyAny>,
        obj: &Bound<'_, PyAny>,
        ts: Option<Bound<'_, PyAny>>,
        ts_ns: Option<i64>,
    ) -> PyResult<u64> {
        let (id, encoding) = self.resolve(stream)?;
        let ts = timearg::ts_or_ns(ts.as_ref(), ts_ns, "ts")?;
        let encoded = crate::reader::encode_object(py, &encoding, obj)?;
        let bytes = Bytes::borrow(&encoded)?;
        self.write_bytes(py, id, bytes.as_slice(), ts)
    }

    /// Sets a metadata entry of the session (written with the next checkpoint and at the end).
    fn set_metadata(&self, py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = value.str()?.to_string();
        self.with_writer(py, |w| w.set_metadata(key, &value))
    }

    /// Writes a checkpoint now: everything before it survives a crash. `state` (bytes-like, or
    /// a str stored as UTF-8) is stored with it, for replays that restore state.
    #[pyo3(signature = (state=None))]
    fn checkpoint(&self, py: Python<'_>, state: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        match state {
            None => self.with_writer(py, |w| w.checkpoint()),
            Some(s) if s.is_none() => self.with_writer(py, |w| w.checkpoint()),
            Some(s) => {
                if let Ok(text) = s.cast::<PyString>() {
                    let text = text.to_str()?.to_string();
                    return self.with_writer(py, |w| w.checkpoint_with_state(text.as_bytes()));
                }
                let b = Bytes::borrow(&s)?;
                let slice = b.as_slice();
                self.with_writer(py, |w| w.checkpoint_with_state(slice))
            }
        }
    }

    /// Finishes the session (index, end record, sync) and returns its summary. Finishing
    /// again returns the same summary.
    fn finish(&self, py: Python<'_>) -> PyResult<SessionInfoPy> {
        let state = &self.state;
        let info = py
            .detach(|| {
                let mut s = lock(state);
                if let Some(info) = &s.info {
                    return Ok(info.clone());
                }
                let w = s.writer.take().ok_or_else(|| recfile::Error::Closed("the session is finished".into()))?;
                let info = w.finish()?;
                s.info = Some(info.clone());
                Ok(info)
            })
            .py_at(&self.path)?;
        Ok(SessionInfoPy::from(info))
    }

    /// Records one action: `input` and `output` are JSON-serialisable values (`error` a
    /// message instead of an output), `duration` seconds. Returns its sequence number.
    #[pyo3(signature = (kind, input, output=None, error=None, duration=None))]
    fn record_action(
        &self,
        py: Python<'_>,
        kind: &str,
        input: &Bound<'_, PyAny>,
        output: Option<Bound<'_, PyAny>>,
        error: Option<String>,
        duration: Option<Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let duration = timearg::duration(duration.as_ref(), "duration")?.unwrap_or_default();
        let input = json_dumps(py, input)?;
        let output = match error {
            Some(e) => Err(e),
            None => Ok(json_dumps(py, &output.unwrap_or_else(|| py.None().into_bound(py)))?),
        };
        record_action_py(self, py, kind, input, output, duration, Timestamp::now())
    }

    /// Calls `fn(input)`, records input, output (JSON-serialisable) or the exception's text,
    /// and timing; re-raises the exception, returns the output.
    fn record_call(&self, py: Python<'_>, kind: &str, input: &Bound<'_, PyAny>, r#fn: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let input_json = json_dumps(py, input)?;
        let start = Timestamp::now();
        let t0 = std::time::Instant::now();
        let result = r#fn.call1((input,));
        let took = t0.elapsed();
        match result {
            Ok(out) => {
                let out_json = json_dumps(py, &out)?;
                record_action_py(self, py, kind, input_json, Ok(out_json), took, start)?;
                Ok(out.unbind())
            }
            Err(e) => {
                let text = crate::actions::error_text(py, &e);
                record_action_py(self, py, kind, input_json, Err(text), took, start)?;
                Err(e)
            }
        }
    }

    /// A decorator: `@s.recorded("kind")` over a one-argument function records every call like
    /// `record_call`.
    fn recorded(slf: &Bound<'_, Self>, kind: &str) -> PyResult<Py<PyAny>> {
        let helper = slf.py().import("recfile._idioms")?.getattr("recorded")?;
        Ok(helper.call1((slf, kind))?.unbind())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        if !self.is_finished() {
            self.finish(py)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<recfile.SessionWriter {:?} id={} frames={}{}>",
            self.name,
            self.id,
            self.frames(),
            if self.is_finished() { " finished" } else { "" }
        )
    }
}
