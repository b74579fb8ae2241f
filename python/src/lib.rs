//! The Python binding of recfile: module `recfile._recfile`.
//!
//! A thin layer over the library's owned handles. Every call that reads, writes, waits or
//! sleeps releases the GIL; every library error becomes a Python exception with the library's
//! message (see `errors`); nothing panics across the boundary. The pure-Python package around
//! it (`python/recfile/`) adds the idioms: reactivex observables, the dimos classes.

mod actions;
mod arrow;
mod buffer;
mod errors;
mod reader;
mod timearg;
mod writer;

use pyo3::prelude::*;

/// The compiled core of the `recfile` package.
#[pymodule]
fn _recfile(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("RecfileError", py.get_type::<errors::RecfileError>())?;
    m.add("NotFoundError", errors::not_found_type(py)?)?;
    m.add("FORMAT_VERSION", (recfile::format::FORMAT_MAJOR, recfile::format::FORMAT_MINOR))?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    writer::register(m)?;
    reader::register(m)?;
    actions::register(m)?;
    arrow::register(m)?;
    Ok(())
}
