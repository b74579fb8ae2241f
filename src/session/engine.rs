//! The replay engine: feeds recorded inputs to new code and reports where its behaviour
//! diverged from the recording.

use super::action::{Action, CheckpointInfo};
use super::diff::{diff_payloads, preview};
use crate::error::{Error, Result};
use crate::read::Session;
use crate::write::SessionWriter;

/// How a replayed action differs from the recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergenceType {
    /// Both succeeded with different outputs.
    OutputMismatch,
    /// The recording has an error, the new code succeeded.
    ErrorVsSuccess,
    /// The recording succeeded, the new code failed.
    SuccessVsError,
    /// The state snapshot at a checkpoint differs from the recorded one.
    StateMismatch,
}

/// What happened to one action (or checkpoint) in a replay.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum ActionStatus {
    /// Same result as recorded.
    Matched,
    /// Different result.
    Diverged {
        /// How.
        divergence: DivergenceType,
        /// Short preview of the recorded side.
        expected: String,
        /// Short preview of the new side.
        actual: String,
        /// A readable diff, for JSON or UTF-8 payloads.
        diff: Option<String>,
    },
    /// Not replayed (dry run).
    Skipped,
}

/// One line of a replay report.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ActionResult {
    /// Sequence number of the action (for a state check, the seq of the next action).
    pub seq: u64,
    /// Action kind, or `checkpoint N` for a state check.
    pub kind: String,
    /// The outcome.
    #[serde(flatten)]
    pub status: ActionStatus,
}

/// The result of [`ReplayEngine::run`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    /// Per action (and per checked checkpoint), in order.
    pub results: Vec<ActionResult>,
    /// Actions replayed and compared.
    pub replayed: u64,
    /// Of those, matching the recording.
    pub matched: u64,
    /// Of those, diverging.
    pub diverged: u64,
    /// State checks that failed.
    pub state_mismatches: u64,
    /// Actions not replayed (dry run).
    pub skipped: u64,
    /// The run stopped at the first divergence.
    pub stopped_early: bool,
    /// The checkpoint the run started from.
    pub from_checkpoint: Option<u32>,
}

impl ReplayReport {
    /// matched / replayed (1.0 when nothing was replayed).
    pub fn match_rate(&self) -> f64 {
        if self.replayed == 0 {
            1.0
        } else {
            self.matched as f64 / self.replayed as f64
        }
    }

    /// Whether nothing diverged.
    pub fn is_identical(&self) -> bool {
        self.diverged == 0 && self.state_mismatches == 0
    }

    /// The divergences only.
    pub fn divergences(&self) -> impl Iterator<Item = &ActionResult> {
        self.results.iter().filter(|r| matches!(r.status, ActionStatus::Diverged { .. }))
    }

    /// A readable report: one line per divergence with its diff, then the totals.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for r in self.divergences() {
            if let ActionStatus::Diverged { divergence, expected, actual, diff } = &r.status {
                s.push_str(&format!("#{} {} — {:?}\n  recorded: {expected}\n  replayed: {actual}\n", r.seq, r.kind, divergence));
                if let Some(d) = diff {
                    for line in d.lines() {
                        s.push_str(&format!("    {line}\n"));
                    }
                }
            }
        }
        s.push_str(&format!(
            "{} replayed, {} matched, {} diverged, {} state mismatches, {} skipped: match rate {:.1}%{}\n",
            self.replayed,
            self.matched,
            self.diverged,
            self.state_mismatches,
            self.skipped,
            self.match_rate() * 100.0,
            if self.stopped_early { " (stopped at the first divergence)" } else { "" }
        ));
        s
    }
}

/// Comparators for outputs that are equal in meaning but not in bytes.
pub mod comparators {
    use serde_json::Value;

    fn strip(v: &mut Value, ignore: &[&str]) {
        match v {
            Value::Object(m) => {
                m.retain(|k, _| !ignore.contains(&k.as_str()));
                m.values_mut().for_each(|x| strip(x, ignore));
            }
            Value::Array(a) => a.iter_mut().for_each(|x| strip(x, ignore)),
            _ => {}
        }
    }

    /// Equal as JSON once the named fields (at any depth) are removed.
    pub fn json_ignoring(fields: &[&str]) -> impl Fn(&[u8], &[u8]) -> bool + 'static {
        let fields: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        move |a, b| {
            let names: Vec<&str> = fields.iter().map(String::as_str).collect();
            match (serde_json::from_slice::<Value>(a), serde_json::from_slice::<Value>(b)) {
                (Ok(mut x), Ok(mut y)) => {
                    strip(&mut x, &names);
                    strip(&mut y, &names);
                    x == y
                }
                _ => a == b,
            }
        }
    }

    fn close(a: &Value, b: &Value, tol: f64) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
                (Some(p), Some(q)) => (p - q).abs() <= tol * p.abs().max(q.abs()).max(1.0),
                _ => x == y,
            },
            (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(p, q, tol)),
            (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w, tol))),
            _ => a == b,
        }
    }

    /// Equal as JSON with numbers within a relative tolerance.
    pub fn json_with_tolerance(tolerance: f64) -> impl Fn(&[u8], &[u8]) -> bool + 'static {
        move |a, b| match (serde_json::from_slice::<Value>(a), serde_json::from_slice::<Value>(b)) {
            (Ok(x), Ok(y)) => close(&x, &y, tolerance),
            _ => a == b,
        }
    }
}

type Restore = Box<dyn FnMut(&[u8]) -> std::result::Result<(), String>>;
type Comparator = Box<dyn Fn(&[u8], &[u8]) -> bool>;
type Snapshot = Box<dyn FnMut() -> Vec<u8>>;

/// Replays a recorded session's actions against new code.
///
/// ```
/// use recfile::{ReplayEngine, Recorder, RecFile};
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("agent.rec");
/// let mut rec = Recorder::create(&path).unwrap();
/// let mut s = rec.start_session("agent").unwrap();
/// for x in 0..5i64 {
///     s.record_call("square", &x, |x| Ok::<i64, String>(x * x)).unwrap().unwrap();
/// }
/// s.finish().unwrap();
/// drop(rec);
/// let session = RecFile::open(&path).unwrap().last_session().unwrap();
/// // New code: wrong for 3.
/// let report = ReplayEngine::new(session)
///     .run(|a| {
///         let x: i64 = a.input_json().map_err(|e| e.to_string())?;
///         let y = if x == 3 { 10 } else { x * x };
///         Ok(serde_json::to_vec(&y).unwrap())
///     })
///     .unwrap();
/// assert_eq!((report.matched, report.diverged), (4, 1));
/// ```
pub struct ReplayEngine {
    session: Session,
    from_checkpoint: Option<u32>,
    restore: Option<Restore>,
    stop_at_seq: Option<u64>,
    kinds: Option<Vec<String>>,
    stop_on_first: bool,
    dry_run: bool,
    comparator: Option<Comparator>,
    snapshot: Option<Snapshot>,
}

impl ReplayEngine {
    /// An engine over a session's actions: all of them, exact byte comparison.
    pub fn new(session: Session) -> Self {
        ReplayEngine {
            session,
            from_checkpoint: None,
            restore: None,
            stop_at_seq: None,
            kinds: None,
            stop_on_first: false,
            dry_run: false,
            comparator: None,
            snapshot: None,
        }
    }

    /// Starts at checkpoint `number`: `restore` receives its state snapshot first, and the
    /// actions recorded before it are not replayed.
    pub fn from_checkpoint(mut self, number: u32, restore: impl FnMut(&[u8]) -> std::result::Result<(), String> + 'static) -> Self {
        self.from_checkpoint = Some(number);
        self.restore = Some(Box::new(restore));
        self
    }

    /// Stops before the action with this sequence number.
    pub fn stop_at(mut self, seq: u64) -> Self {
        self.stop_at_seq = Some(seq);
        self
    }

    /// Replays only actions of these kinds.
    pub fn only_kinds(mut self, kinds: &[&str]) -> Self {
        self.kinds = Some(kinds.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Stops at the first divergence.
    pub fn stop_on_first_divergence(mut self, on: bool) -> Self {
        self.stop_on_first = on;
        self
    }

    /// Lists what would be replayed without calling the new code.
    pub fn dry_run(mut self, on: bool) -> Self {
        self.dry_run = on;
        self
    }

    /// Compares outputs with `equal(recorded, new)` instead of exact bytes.
    pub fn compare_with(mut self, equal: impl Fn(&[u8], &[u8]) -> bool + 'static) -> Self {
        self.comparator = Some(Box::new(equal));
        self
    }

    /// At each checkpoint with a recorded state, compares `snapshot()` of the new code with it.
    pub fn check_state_with(mut self, snapshot: impl FnMut() -> Vec<u8> + 'static) -> Self {
        self.snapshot = Some(Box::new(snapshot));
        self
    }

    /// Replays, comparing each new output with the recorded one.
    pub fn run(self, f: impl FnMut(&Action) -> std::result::Result<Vec<u8>, String>) -> Result<ReplayReport> {
        self.run_inner(f, None)
    }

    /// Replays and records the replayed run as a new session into `into` (inputs as recorded,
    /// outputs as the new code produced them).
    pub fn run_and_record(
        self,
        f: impl FnMut(&Action) -> std::result::Result<Vec<u8>, String>,
        into: &mut SessionWriter,
    ) -> Result<ReplayReport> {
        self.run_inner(f, Some(into))
    }

    fn run_inner(
        mut self,
        mut f: impl FnMut(&Action) -> std::result::Result<Vec<u8>, String>,
        mut into: Option<&mut SessionWriter>,
    ) -> Result<ReplayReport> {
        let actions = self.session.actions()?;
        let checkpoints: Vec<CheckpointInfo> =
            if self.from_checkpoint.is_some() || self.snapshot.is_some() { self.session.checkpoints()? } else { Vec::new() };
        let mut report = ReplayReport { from_checkpoint: self.from_checkpoint, ..Default::default() };
        let mut first_seq = 0;
        if let Some(n) = self.from_checkpoint {
            let cp = checkpoints
                .iter()
                .find(|c| c.number == n)
                .ok_or_else(|| Error::InvalidArgument(format!("the session has no checkpoint {n}")))?;
            if let Some(restore) = self.restore.as_mut() {
                restore(&cp.state).map_err(|e| Error::InvalidArgument(format!("restoring checkpoint {n}: {e}")))?;
            }
            first_seq = cp.actions_before;
        }
        let mut cps = checkpoints.iter().filter(|c| !c.state.is_empty() && c.actions_before > first_seq).peekable();
        for a in actions.iter().filter(|a| a.seq >= first_seq) {
            if self.stop_at_seq.is_some_and(|s| a.seq >= s) {
                break;
            }
            // State checks of checkpoints written before this action.
            while let Some(cp) = cps.next_if(|c| c.actions_before <= a.seq) {
                if let Some(snap) = self.snapshot.as_mut() {
                    let now = snap();
                    let status = if now == cp.state {
                        ActionStatus::Matched
                    } else {
                        report.state_mismatches += 1;
                        ActionStatus::Diverged {
                            divergence: DivergenceType::StateMismatch,
                            expected: preview(&cp.state, 60),
                            actual: preview(&now, 60),
                            diff: diff_payloads(&cp.state, &now),
                        }
                    };
                    let diverged = matches!(status, ActionStatus::Diverged { .. });
                    report.results.push(ActionResult { seq: a.seq, kind: format!("checkpoint {}", cp.number), status });
                    if diverged && self.stop_on_first {
                        report.stopped_early = true;
                        return Ok(report);
                    }
                }
            }
            if self.kinds.as_ref().is_some_and(|k| !k.contains(&a.kind)) {
                continue;
            }
            if self.dry_run {
                report.skipped += 1;
                report.results.push(ActionResult { seq: a.seq, kind: a.kind.clone(), status: ActionStatus::Skipped });
                continue;
            }
            let started = std::time::Instant::now();
            let new = f(a);
            if let Some(w) = into.as_deref_mut() {
                let replayed =
                    Action { seq: 0, ts: crate::time::Timestamp::now(), duration: started.elapsed(), output: new.clone(), ..a.clone() };
                w.record_action(replayed)?;
            }
            let status = self.compare(&a.output, &new);
            report.replayed += 1;
            let diverged = matches!(status, ActionStatus::Diverged { .. });
            if diverged {
                report.diverged += 1;
            } else {
                report.matched += 1;
            }
            report.results.push(ActionResult { seq: a.seq, kind: a.kind.clone(), status });
            if diverged && self.stop_on_first {
                report.stopped_early = true;
                break;
            }
        }
        Ok(report)
    }

    fn compare(&self, recorded: &std::result::Result<Vec<u8>, String>, new: &std::result::Result<Vec<u8>, String>) -> ActionStatus {
        let diverged = |divergence, expected: String, actual: String, diff| ActionStatus::Diverged { divergence, expected, actual, diff };
        match (recorded, new) {
            (Ok(r), Ok(n)) => {
                let equal = match &self.comparator {
                    Some(c) => c(r, n),
                    None => r == n,
                };
                if equal {
                    ActionStatus::Matched
                } else {
                    diverged(DivergenceType::OutputMismatch, preview(r, 60), preview(n, 60), diff_payloads(r, n))
                }
            }
            (Err(r), Err(n)) if r == n => ActionStatus::Matched,
            (Err(r), Err(n)) => diverged(
                DivergenceType::OutputMismatch,
                format!("error: {}", preview(r.as_bytes(), 60)),
                format!("error: {}", preview(n.as_bytes(), 60)),
                diff_payloads(r.as_bytes(), n.as_bytes()),
            ),
            (Err(r), Ok(n)) => {
                diverged(DivergenceType::ErrorVsSuccess, format!("error: {}", preview(r.as_bytes(), 60)), preview(n, 60), None)
            }
            (Ok(r), Err(n)) => {
                diverged(DivergenceType::SuccessVsError, preview(r, 60), format!("error: {}", preview(n.as_bytes(), 60)), None)
            }
        }
    }
}
