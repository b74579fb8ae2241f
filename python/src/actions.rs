//! Actions, checkpoints, replaying a session against new code, comparing two sessions, and
//! session summaries.

use crate::errors::{value_error, PyResultExt};
use crate::reader::SessionPy;
use crate::writer::SessionWriter;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use recfile::{Action, Timestamp};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ActionPy>()?;
    m.add_class::<CheckpointPy>()?;
    m.add_class::<SessionInfoPy>()?;
    m.add_class::<ReplayEngine>()?;
    m.add_class::<ReplayReport>()?;
    m.add_class::<Divergence>()?;
    m.add_class::<Comparison>()?;
    m.add_function(wrap_pyfunction!(compare_sessions, m)?)?;
    Ok(())
}

/// Compact JSON text of a value (`TypeError` when it is not JSON-serialisable).
pub fn json_dumps(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let json = py.import("json")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("separators", (",", ":"))?;
    kwargs.set_item("ensure_ascii", false)?;
    let text: String = json.call_method("dumps", (value,), Some(&kwargs))?.extract()?;
    Ok(text.into_bytes())
}

/// A JSON payload decoded into a Python value (its text when it is not JSON).
fn json_loads(py: Python<'_>, bytes: &[u8]) -> PyResult<Py<PyAny>> {
    let text = String::from_utf8_lossy(bytes);
    match py.import("json")?.call_method1("loads", (text.as_ref(),)) {
        Ok(v) => Ok(v.unbind()),
        Err(_) => Ok(pyo3::types::PyString::new(py, &text).into_any().unbind()),
    }
}

/// How an exception is recorded: `TypeName: message`.
pub fn error_text(py: Python<'_>, e: &PyErr) -> String {
    let name = e.get_type(py).name().map(|n| n.to_string()).unwrap_or_else(|_| "Exception".into());
    format!("{name}: {}", e.value(py))
}

/// Records an action through the writer.
pub fn record_action_py(
    s: &SessionWriter,
    py: Python<'_>,
    kind: &str,
    input: Vec<u8>,
    output: Result<Vec<u8>, String>,
    duration: Duration,
    ts: Timestamp,
) -> PyResult<u64> {
    let mut action = Action::new(kind, input, output);
    action.duration = duration;
    action.ts = ts;
    s.with_writer(py, move |w| w.record_action(action))
}

/// What a finished session holds (what `SessionWriter.finish()` returns).
#[pyclass(module = "recfile._recfile", name = "SessionInfo", frozen, get_all)]
pub struct SessionInfoPy {
    /// The session's UUID.
    id: String,
    /// Its name.
    name: String,
    /// Start time, ns since the Unix epoch.
    start_ns: i64,
    /// End time, ns since the Unix epoch.
    end_ns: i64,
    /// Frames over all streams.
    frames: u64,
    /// Checkpoints written.
    checkpoints: u32,
    /// Bytes the session takes in the file.
    bytes: u64,
    /// Frames per stream.
    streams: Vec<(String, u64)>,
}

impl From<recfile::SessionInfo> for SessionInfoPy {
    fn from(i: recfile::SessionInfo) -> Self {
        SessionInfoPy {
            id: i.id.to_string(),
            name: i.name,
            start_ns: i.start.as_nanos(),
            end_ns: i.end.as_nanos(),
            frames: i.frames,
            checkpoints: i.checkpoints,
            bytes: i.bytes,
            streams: i.streams,
        }
    }
}

#[pymethods]
impl SessionInfoPy {
    fn __repr__(&self) -> String {
        format!("<recfile.SessionInfo {:?} frames={} checkpoints={}>", self.name, self.frames, self.checkpoints)
    }
}

/// One recorded action: what went in, what came out (or the error), when and how long.
#[pyclass(module = "recfile._recfile", name = "Action", frozen)]
pub struct ActionPy {
    action: Action,
}

impl ActionPy {
    pub fn new(action: Action) -> Self {
        ActionPy { action }
    }
}

#[pymethods]
impl ActionPy {
    /// Sequence number within the session (0, 1, …).
    #[getter]
    fn seq(&self) -> u64 {
        self.action.seq
    }
    /// What was called.
    #[getter]
    fn kind(&self) -> String {
        self.action.kind.clone()
    }
    /// The input, decoded from JSON.
    #[getter]
    fn input(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        json_loads(py, &self.action.input)
    }
    /// The output, decoded from JSON (None when the call failed).
    #[getter]
    fn output(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match &self.action.output {
            Ok(b) => json_loads(py, b),
            Err(_) => Ok(py.None()),
        }
    }
    /// The error message when the call failed, else None.
    #[getter]
    fn error(&self) -> Option<String> {
        self.action.output.as_ref().err().cloned()
    }
    /// How long the call took, in seconds.
    #[getter]
    fn duration(&self) -> f64 {
        self.action.duration.as_secs_f64()
    }
    /// When the call started, float seconds.
    #[getter]
    fn ts(&self) -> f64 {
        crate::reader::ns_to_secs(self.action.ts.as_nanos())
    }
    /// When the call started, ns.
    #[getter]
    fn ts_ns(&self) -> i64 {
        self.action.ts.as_nanos()
    }
    /// The input's JSON text.
    #[getter]
    fn input_json(&self) -> String {
        String::from_utf8_lossy(&self.action.input).into_owned()
    }
    /// The output's JSON text (None when the call failed).
    #[getter]
    fn output_json(&self) -> Option<String> {
        self.action.output.as_ref().ok().map(|b| String::from_utf8_lossy(b).into_owned())
    }
    fn __repr__(&self) -> String {
        format!("<recfile.Action #{} {:?}{}>", self.action.seq, self.action.kind, if self.action.output.is_err() { " error" } else { "" })
    }
}

/// A checkpoint of a session, as read back.
#[pyclass(module = "recfile._recfile", name = "Checkpoint", frozen, get_all)]
pub struct CheckpointPy {
    /// Number within the session (1, 2, …).
    number: u32,
    /// File offset of the record.
    offset: u64,
    /// Wall time when written, ns.
    wall_time_ns: i64,
    /// Frames of the session before it.
    frames_total: u64,
    /// Actions recorded before it.
    actions_before: u64,
    /// The state stored with it (empty when none).
    state: Vec<u8>,
}

impl From<recfile::CheckpointInfo> for CheckpointPy {
    fn from(c: recfile::CheckpointInfo) -> Self {
        CheckpointPy {
            number: c.number,
            offset: c.offset,
            wall_time_ns: c.wall_time.as_nanos(),
            frames_total: c.frames_total,
            actions_before: c.actions_before,
            state: c.state,
        }
    }
}

#[pymethods]
impl CheckpointPy {
    fn __repr__(&self) -> String {
        format!("<recfile.Checkpoint #{} frames_total={}>", self.number, self.frames_total)
    }
}

/// Where a replayed action differs from the recording.
#[pyclass(module = "recfile._recfile", frozen, get_all)]
pub struct Divergence {
    /// The action's sequence number.
    seq: u64,
    /// Its kind (`checkpoint N` for a state check).
    kind: String,
    /// `output_mismatch`, `error_vs_success`, `success_vs_error` or `state_mismatch`.
    r#type: String,
    /// A preview of the recorded side.
    expected: String,
    /// A preview of the new side.
    actual: String,
    /// A readable diff, when both sides are JSON or text.
    diff: Option<String>,
}

#[pymethods]
impl Divergence {
    fn __repr__(&self) -> String {
        format!("<recfile.Divergence #{} {:?} {}>", self.seq, self.kind, self.r#type)
    }
}

/// The result of `ReplayEngine.run`.
#[pyclass(module = "recfile._recfile", frozen)]
pub struct ReplayReport {
    report: recfile::ReplayReport,
}

fn type_name(t: recfile::DivergenceType) -> &'static str {
    match t {
        recfile::DivergenceType::OutputMismatch => "output_mismatch",
        recfile::DivergenceType::ErrorVsSuccess => "error_vs_success",
        recfile::DivergenceType::SuccessVsError => "success_vs_error",
        recfile::DivergenceType::StateMismatch => "state_mismatch",
    }
}

#[pymethods]
impl ReplayReport {
    /// Actions replayed and compared.
    #[getter]
    fn replayed(&self) -> u64 {
        self.report.replayed
    }
    /// Of those, matching the recording.
    #[getter]
    fn matched(&self) -> u64 {
        self.report.matched
    }
    /// Of those, diverging.
    #[getter]
    fn diverged(&self) -> u64 {
        self.report.diverged
    }
    /// matched / replayed (1.0 when nothing was replayed).
    #[getter]
    fn match_rate(&self) -> f64 {
        self.report.match_rate()
    }
    /// True when the run stopped at the first divergence.
    #[getter]
    fn stopped_early(&self) -> bool {
        self.report.stopped_early
    }
    /// Every divergence, in order.
    #[getter]
    fn divergences(&self) -> Vec<Divergence> {
        self.report
            .divergences()
            .filter_map(|r| match &r.status {
                recfile::session::ActionStatus::Diverged { divergence, expected, actual, diff } => Some(Divergence {
                    seq: r.seq,
                    kind: r.kind.clone(),
                    r#type: type_name(*divergence).to_string(),
                    expected: expected.clone(),
                    actual: actual.clone(),
                    diff: diff.clone(),
                }),
                _ => None,
            })
            .collect()
    }
    /// The report as text, as `rec replay` prints it.
    fn render(&self) -> String {
        self.report.render()
    }
    /// The report as a dict (the JSON that `rec replay --json` prints).
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.report)
    }
    fn __repr__(&self) -> String {
        format!(
            "<recfile.ReplayReport replayed={} matched={} diverged={}>",
            self.report.replayed, self.report.matched, self.report.diverged
        )
    }
}

/// A serde value as Python objects (through JSON).
pub fn to_python<T: serde::Serialize>(py: Python<'_>, value: &T) -> PyResult<Py<PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| value_error(e.to_string()))?;
    Ok(py.import("json")?.call_method1("loads", (text,))?.unbind())
}

/// Replays a recorded session's actions against new code: `ReplayEngine(session).run(fn)`
/// calls `fn(action)` for every recorded action and compares what it returns (or raises) with
/// the recording.
#[pyclass(module = "recfile._recfile", frozen)]
pub struct ReplayEngine {
    session: recfile::Session,
    stop_on_first_divergence: bool,
    only_kinds: Option<Vec<String>>,
    compare: Option<Py<PyAny>>,
}

#[pymethods]
impl ReplayEngine {
    /// `compare(expected, actual) -> bool` compares decoded outputs (default: equal JSON
    /// values); `only_kinds` replays only those kinds.
    #[new]
    #[pyo3(signature = (session, *, stop_on_first_divergence=false, only_kinds=None, compare=None))]
    fn new(
        session: &Bound<'_, SessionPy>,
        stop_on_first_divergence: bool,
        only_kinds: Option<Vec<String>>,
        compare: Option<Py<PyAny>>,
    ) -> ReplayEngine {
        ReplayEngine { session: session.get().session.clone(), stop_on_first_divergence, only_kinds, compare }
    }

    /// Runs `fn(action)` for every recorded action (options given here override the
    /// constructor's) and returns the report.
    #[pyo3(signature = (r#fn, *, stop_on_first_divergence=None, only_kinds=None, compare=None))]
    fn run(
        &self,
        py: Python<'_>,
        r#fn: Py<PyAny>,
        stop_on_first_divergence: Option<bool>,
        only_kinds: Option<Vec<String>>,
        compare: Option<Py<PyAny>>,
    ) -> PyResult<ReplayReport> {
        let stop = stop_on_first_divergence.unwrap_or(self.stop_on_first_divergence);
        let kinds = only_kinds.or_else(|| self.only_kinds.clone());
        let compare = compare.or_else(|| self.compare.as_ref().map(|c| c.clone_ref(py)));
        let mut engine = recfile::ReplayEngine::new(self.session.clone()).stop_on_first_divergence(stop);
        if let Some(k) = &kinds {
            let refs: Vec<&str> = k.iter().map(String::as_str).collect();
            engine = engine.only_kinds(&refs);
        }
        // The first Python error raised by `compare` (or a non-JSON output), re-raised after the run.
        let failure: Rc<RefCell<Option<PyErr>>> = Rc::new(RefCell::new(None));
        let cmp_failure = failure.clone();
        engine = engine.compare_with(move |expected: &[u8], actual: &[u8]| {
            Python::attach(|py| {
                let run = || -> PyResult<bool> {
                    match &compare {
                        Some(f) => {
                            let e = json_loads(py, expected)?;
                            let a = json_loads(py, actual)?;
                            f.bind(py).call1((e, a))?.is_truthy()
                        }
                        None => {
                            let e: Result<serde_json::Value, _> = serde_json::from_slice(expected);
                            let a: Result<serde_json::Value, _> = serde_json::from_slice(actual);
                            Ok(match (e, a) {
                                (Ok(e), Ok(a)) => e == a,
                                _ => expected == actual,
                            })
                        }
                    }
                };
                run().unwrap_or_else(|err| {
                    cmp_failure.borrow_mut().get_or_insert(err);
                    false
                })
            })
        });
        let call_failure = failure.clone();
        let report = engine
            .run(|action| {
                Python::attach(|py| {
                    let a = Py::new(py, ActionPy::new(action.clone())).map_err(|e| e.to_string())?;
                    match r#fn.bind(py).call1((a,)) {
                        Ok(out) => json_dumps(py, &out).map_err(|e| {
                            let text = format!("output is not JSON-serialisable: {}", e.value(py));
                            call_failure.borrow_mut().get_or_insert(e);
                            text
                        }),
                        Err(e) => {
                            if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
                                call_failure.borrow_mut().get_or_insert(e.clone_ref(py));
                            }
                            Err(error_text(py, &e))
                        }
                    }
                })
            })
            .py()?;
        if let Some(err) = failure.borrow_mut().take() {
            return Err(err);
        }
        Ok(ReplayReport { report })
    }
}

/// The comparison of two sessions' actions (what `rec diff` prints).
#[pyclass(module = "recfile._recfile", frozen)]
pub struct Comparison {
    report: recfile::ComparisonReport,
}

#[pymethods]
impl Comparison {
    /// True when both sessions hold the same actions.
    #[getter]
    fn is_identical(&self) -> bool {
        self.report.is_identical()
    }
    /// Actions that match.
    #[getter]
    fn matching(&self) -> u64 {
        self.report.summary.matching
    }
    /// Aligned actions whose input or output differs.
    #[getter]
    fn differing(&self) -> u64 {
        self.report.summary.differing
    }
    /// Actions only in the first session.
    #[getter]
    fn only_in_a(&self) -> u64 {
        self.report.summary.only_in_a
    }
    /// Actions only in the second session.
    #[getter]
    fn only_in_b(&self) -> u64 {
        self.report.summary.only_in_b
    }
    /// Every aligned entry, as dicts (`status`, `seq_a`, `seq_b`, `kind`, `detail`).
    #[getter]
    fn entries(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.report.entries)
    }
    /// The comparison as text, as `rec diff` prints it.
    fn render(&self) -> String {
        self.report.render()
    }
    /// The comparison as a dict.
    fn to_dict(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_python(py, &self.report)
    }
    fn __bool__(&self) -> bool {
        !self.report.is_identical()
    }
    fn __repr__(&self) -> String {
        let s = &self.report.summary;
        format!(
            "<recfile.Comparison matching={} differing={} only_in_a={} only_in_b={}>",
            s.matching, s.differing, s.only_in_a, s.only_in_b
        )
    }
}

/// Compares the actions of two sessions (what `rec diff` prints).
#[pyfunction]
fn compare_sessions(py: Python<'_>, a: &Bound<'_, SessionPy>, b: &Bound<'_, SessionPy>) -> PyResult<Comparison> {
    let (a, b) = (a.get().session.clone(), b.get().session.clone());
    let report = py.detach(move || recfile::compare_sessions(&a, &b)).py()?;
    Ok(Comparison { report })
}

/// The actions of a session as Python objects.
pub fn actions_of(py: Python<'_>, s: &recfile::Session) -> PyResult<Py<PyList>> {
    let session = s.clone();
    let actions = py.detach(move || session.actions()).py()?;
    let list = PyList::empty(py);
    for a in actions {
        list.append(Py::new(py, ActionPy::new(a))?)?;
    }
    Ok(list.unbind())
}
