//! Sessions of actions: record every call of a module (input, output or error, timing) next to
//! any sensor streams, replay the inputs against new code and report where it diverged, and
//! compare two sessions.

mod action;
mod compare;
mod diff;
mod engine;

pub(crate) use action::ActionState as ActionStateHandle;
pub use action::{Action, ActionOptions, CheckpointInfo, ACTION_ENCODING, ACTION_STREAM};
pub use compare::{compare_actions, compare_sessions, ComparisonEntry, ComparisonReport, ComparisonStatus, ComparisonSummary};
pub use diff::{diff_payloads, preview};
pub use engine::{comparators, ActionResult, ActionStatus, DivergenceType, ReplayEngine, ReplayReport};
