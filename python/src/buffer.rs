//! Borrowing the bytes of any bytes-like object (bytes, bytearray, memoryview, numpy arrays,
//! mmap) without a copy.
//!
//! PyO3's `PyBuffer` needs the stable ABI of Python 3.11; this package targets 3.10's. The
//! buffer protocol's two functions and its struct have had the same layout since Python 3.3 and
//! are exported by every CPython (part of the stable ABI from 3.11), so they are declared here.

use crate::errors::type_error;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::ffi::{c_char, c_int, c_void};

/// `Py_buffer`, as CPython lays it out.
#[repr(C)]
pub struct RawBuffer {
    buf: *mut c_void,
    obj: *mut ffi::PyObject,
    len: ffi::Py_ssize_t,
    itemsize: ffi::Py_ssize_t,
    readonly: c_int,
    ndim: c_int,
    format: *mut c_char,
    shape: *mut ffi::Py_ssize_t,
    strides: *mut ffi::Py_ssize_t,
    suboffsets: *mut ffi::Py_ssize_t,
    internal: *mut c_void,
}

extern "C" {
    fn PyObject_GetBuffer(obj: *mut ffi::PyObject, view: *mut RawBuffer, flags: c_int) -> c_int;
    fn PyBuffer_Release(view: *mut RawBuffer);
}

/// `PyBUF_SIMPLE`: one contiguous run of bytes (a non-contiguous array is refused).
const PYBUF_SIMPLE: c_int = 0;

/// The bytes of a bytes-like object, borrowed for as long as this lives (the exporter keeps
/// them valid and unresizable until the view is released, on drop, with the GIL held).
pub enum Bytes<'py> {
    /// A `bytes` object: immutable, borrowed directly.
    Immutable(Bound<'py, PyBytes>),
    /// Another exporter, through the buffer protocol.
    View(Box<RawBuffer>, Python<'py>),
}

impl<'py> Bytes<'py> {
    /// Borrows `obj`'s bytes; a `TypeError` when it is not bytes-like (or not contiguous).
    pub fn borrow(obj: &Bound<'py, PyAny>) -> PyResult<Bytes<'py>> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Bytes::Immutable(b.clone()));
        }
        if obj.is_instance_of::<pyo3::types::PyString>() {
            return Err(type_error("data must be bytes-like, not str (encode it, or use write_object)"));
        }
        let mut view = Box::new(RawBuffer {
            buf: std::ptr::null_mut(),
            obj: std::ptr::null_mut(),
            len: 0,
            itemsize: 0,
            readonly: 0,
            ndim: 0,
            format: std::ptr::null_mut(),
            shape: std::ptr::null_mut(),
            strides: std::ptr::null_mut(),
            suboffsets: std::ptr::null_mut(),
            internal: std::ptr::null_mut(),
        });
        // SAFETY: `obj` is a live object (we hold a reference and the GIL) and `view` points to
        // a writable Py_buffer-shaped struct; on success the exporter fills it and we release it
        // exactly once, in Drop.
        let rc = unsafe { PyObject_GetBuffer(obj.as_ptr(), &mut *view, PYBUF_SIMPLE) };
        if rc != 0 {
            let cause = PyErr::take(obj.py());
            let type_name = obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
            let err = type_error(format!("data must be a contiguous bytes-like object, not {type_name}"));
            err.set_cause(obj.py(), cause);
            return Err(err);
        }
        Ok(Bytes::View(view, obj.py()))
    }

    /// The borrowed bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Immutable(b) => b.as_bytes(),
            Bytes::View(v, _) => {
                if v.buf.is_null() || v.len <= 0 {
                    return &[];
                }
                // SAFETY: the exporter guarantees `len` readable bytes at `buf` while the view is
                // held (PyBUF_SIMPLE: contiguous, itemsize 1); the view lives as long as `self`.
                unsafe { std::slice::from_raw_parts(v.buf as *const u8, v.len as usize) }
            }
        }
    }
}

impl Drop for Bytes<'_> {
    fn drop(&mut self) {
        if let Bytes::View(view, _py) = self {
            // SAFETY: the view was filled by a successful PyObject_GetBuffer and is released
            // once; holding `Python<'py>` proves the GIL is held here.
            unsafe { PyBuffer_Release(&mut **view) };
        }
    }
}
