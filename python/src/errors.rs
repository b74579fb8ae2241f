//! Library errors as Python exceptions.
//!
//! - a file that exists (`Recorder` never overwrites): `FileExistsError`
//! - a missing file: `FileNotFoundError`; other OS errors: their `OSError` subclass
//! - a bad argument (NaN timestamp, unknown option, closed writer): `ValueError`
//! - an unknown stream or session: `recfile.NotFoundError` (both a `KeyError` and a `ValueError`)
//! - a frame index out of range: `IndexError`
//! - a damaged, truncated, locked or unrecoverable file: `recfile.RecfileError`, a subclass of
//!   `OSError`, with `.offset` (the file offset of the damage, or `None`) and `.path`.

use pyo3::exceptions::{PyFileExistsError, PyFileNotFoundError, PyIndexError, PyOSError, PyPermissionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use recfile::Error;
use std::path::Path;

pyo3::create_exception!(
    _recfile,
    RecfileError,
    PyOSError,
    "A .rec file is damaged, truncated, locked by another writer, or cannot be recovered safely.\n\n\
     ``offset`` is the file offset of the damaged structure (``None`` when there is none) and\n\
     ``path`` the file concerned, when known."
);

static NOT_FOUND: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `recfile.NotFoundError(KeyError, ValueError)`: no stream or session of that name. Both bases
/// so that `except KeyError` (a lookup) and `except ValueError` (a bad argument) catch it.
pub fn not_found_type(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    NOT_FOUND
        .get_or_try_init(py, || {
            let builtins = py.import("builtins")?;
            let bases = PyTuple::new(py, [builtins.getattr("KeyError")?, builtins.getattr("ValueError")?])?;
            let dict = PyDict::new(py);
            // KeyError's own __str__ quotes the message; the plain one reads better.
            dict.set_item("__str__", builtins.getattr("BaseException")?.getattr("__str__")?)?;
            dict.set_item("__module__", "recfile")?;
            dict.set_item("__doc__", "No stream or session of that name (a KeyError and a ValueError).")?;
            let t = builtins.getattr("type")?.call1(("NotFoundError", bases, dict))?;
            Ok(t.cast_into::<PyType>()?.unbind())
        })
        .map(|t| t.bind(py))
}

/// The offset a damage error names, if any.
fn offset_of(e: &Error) -> Option<u64> {
    match e {
        Error::CrcMismatch { offset, .. }
        | Error::Malformed { offset, .. }
        | Error::Truncated { offset, .. }
        | Error::Unrecoverable { offset, .. }
        | Error::Decode { offset, .. } => Some(*offset),
        Error::NeedsRecovery { session_offset } => Some(*session_offset),
        _ => None,
    }
}

/// Converts a library error about `path` (when known) into the Python exception described above.
pub fn to_py_at(e: Error, path: Option<&Path>) -> PyErr {
    let message = e.to_string();
    let filename = path.map(|p| p.display().to_string());
    // Name the file in the message when the library's message does not.
    let message = match &filename {
        Some(f) if !message.contains(f.as_str()) => format!("{f}: {message}"),
        _ => message,
    };
    match e {
        Error::Io { source, path: io_path } => {
            // As Python's own: `[Errno 2] No such file or directory: 'x.rec'`.
            let filename = io_path.map(|p| p.display().to_string()).or(filename);
            let errno = source.raw_os_error().unwrap_or(0);
            let text = source.to_string();
            let strerror = match text.find(" (os error") {
                Some(i) => text[..i].to_string(),
                None => text,
            };
            let args = (errno, strerror, filename);
            match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(args),
                std::io::ErrorKind::AlreadyExists => PyFileExistsError::new_err(args),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(args),
                _ => PyOSError::new_err(args),
            }
        }
        Error::AlreadyExists { path } => PyFileExistsError::new_err((
            17,
            "File exists and is not empty (a recording is never overwritten: pass append=True to add a session)",
            path.display().to_string(),
        )),
        Error::InvalidArgument(_) | Error::Closed(_) | Error::LimitExceeded(_) | Error::Encode(_) => PyValueError::new_err(message),
        Error::Decode { .. } => PyValueError::new_err(message),
        Error::NoSuchStream(_) | Error::NoSuchSession(_) => Python::attach(|py| match not_found_type(py) {
            Ok(t) => PyErr::from_type(t.clone(), message),
            Err(err) => err,
        }),
        Error::IndexOutOfRange { .. } => PyIndexError::new_err(message),
        other => {
            let offset = offset_of(&other);
            let err = RecfileError::new_err(message);
            Python::attach(|py| {
                // `filename` stays None: OSError would then print `[Errno None] None: …`; the
                // message names the file, and `.path` holds it.
                let value = err.value(py);
                let _ = value.setattr("offset", offset);
                let _ = value.setattr("path", filename);
            });
            err
        }
    }
}

/// Converts a library error into a Python exception (no file known).
pub fn to_py(e: Error) -> PyErr {
    to_py_at(e, None)
}

/// Extension: `.py()?` on a library result.
pub trait PyResultExt<T> {
    /// The result with its error converted.
    fn py(self) -> PyResult<T>;
    /// The result with its error converted, naming `path`.
    fn py_at(self, path: &Path) -> PyResult<T>;
}

impl<T> PyResultExt<T> for recfile::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
    fn py_at(self, path: &Path) -> PyResult<T> {
        self.map_err(|e| to_py_at(e, Some(path)))
    }
}

/// A `TypeError` with this message.
pub fn type_error(message: impl Into<String>) -> PyErr {
    PyTypeError::new_err(message.into())
}

/// A `ValueError` with this message.
pub fn value_error(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}
