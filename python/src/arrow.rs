//! Arrow hand-off: `Replay.__arrow_c_stream__` / `to_arrow()` and `dataset()`, through the
//! Arrow C stream interface (a PyCapsule named `arrow_array_stream`), so that pyarrow, Polars
//! and DuckDB take the library's record batches without a copy and without this package
//! depending on any of them.

use crate::errors::PyResultExt;
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::RecordBatchReader;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;
use recfile::interop::arrow::{BatchOptions, DatasetBatches, FrameBatches};
use std::path::PathBuf;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<DatasetPy>()?;
    m.add_function(wrap_pyfunction!(dataset, m)?)?;
    Ok(())
}

/// A capsule holding a fresh C stream over `reader` (the consumer moves it out; a capsule
/// dropped unconsumed releases it).
pub fn stream_capsule<'py>(py: Python<'py>, reader: Box<dyn RecordBatchReader + Send>) -> PyResult<Bound<'py, PyCapsule>> {
    PyCapsule::new_with_value(py, FFI_ArrowArrayStream::new(reader), c"arrow_array_stream")
}

/// `pyarrow.RecordBatchReader.from_stream(obj)`, with a clear error when pyarrow is missing.
pub fn pyarrow_reader<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let pa = py.import("pyarrow").map_err(|e| {
        pyo3::exceptions::PyImportError::new_err(format!(
            "to_arrow() needs pyarrow ({e}); `pip install pyarrow`, or hand the object to Polars or DuckDB, which read its __arrow_c_stream__ directly"
        ))
    })?;
    pa.getattr("RecordBatchReader")?.call_method1("from_stream", (obj,))
}

/// Batches of one replay's frames.
pub fn replay_batches(replay: &recfile::Replay, skip_damaged: bool) -> PyResult<Box<dyn RecordBatchReader + Send>> {
    let options = BatchOptions { skip_damaged, ..BatchOptions::default() };
    Ok(Box::new(FrameBatches::new(replay.iterate(), options).py()?))
}

/// Frames of many recordings as one Arrow stream: every session of every file, each session's
/// streams merged in timestamp order, one row per frame (the columns of `rec export`). Each
/// use reads the files again, one at a time.
#[pyclass(module = "recfile._recfile", name = "Dataset", frozen)]
pub struct DatasetPy {
    paths: Vec<PathBuf>,
    streams: Vec<String>,
    skip_damaged: bool,
}

#[pymethods]
impl DatasetPy {
    /// The recordings, in the order they are read.
    #[getter]
    fn paths(&self) -> Vec<PathBuf> {
        self.paths.clone()
    }

    /// The streams selected (empty: all).
    #[getter]
    fn streams(&self) -> Vec<String> {
        self.streams.clone()
    }

    /// A new Arrow C stream over the frames (the Arrow PyCapsule interface).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(&self, py: Python<'py>, requested_schema: Option<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let options = BatchOptions { skip_damaged: self.skip_damaged, ..BatchOptions::default() };
        stream_capsule(py, Box::new(DatasetBatches::new(self.paths.clone(), self.streams.clone(), options)))
    }

    /// The frames as a `pyarrow.RecordBatchReader` (streamed: one file at a time).
    fn to_arrow_reader<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        pyarrow_reader(slf.as_any())
    }

    /// Every frame as one `pyarrow.Table` (in memory: prefer `to_arrow_reader()` for large sets).
    fn to_arrow<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        pyarrow_reader(slf.as_any())?.call_method0("read_all")
    }

    fn __len__(&self) -> usize {
        self.paths.len()
    }

    fn __repr__(&self) -> String {
        format!("<recfile.Dataset of {} recordings>", self.paths.len())
    }
}

/// The dataset of `paths` (files, or directories searched recursively for `*.rec`).
#[pyfunction]
#[pyo3(signature = (paths, streams=None, skip_damaged=false))]
fn dataset(py: Python<'_>, paths: Vec<PathBuf>, streams: Option<Vec<String>>, skip_damaged: bool) -> PyResult<DatasetPy> {
    let found = py.detach(|| recfile::interop::find_recordings(&paths)).py_at(paths.first().map_or(std::path::Path::new(""), |p| p))?;
    if found.is_empty() {
        return Err(pyo3::exceptions::PyFileNotFoundError::new_err(format!("no .rec file in {paths:?}")));
    }
    Ok(DatasetPy { paths: found, streams: streams.unwrap_or_default(), skip_damaged })
}
