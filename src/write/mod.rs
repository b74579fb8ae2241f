//! Writing `.rec` files: [`Recorder`] owns the file and its lock, [`SessionWriter`] appends one
//! session's streams, frames and checkpoints.

mod behind;
mod options;
mod recorder;
mod session;
pub(crate) mod tail;
mod writer;

pub(crate) use behind::settle_queued_writes;
pub use options::{Durability, RecorderOptions, SessionStart};
pub(crate) use recorder::lock_exclusive;
pub use recorder::Recorder;
pub use session::{SessionInfo, StreamId};
pub use writer::{SessionWriter, StreamSender};

/// The writer's slot bookkeeping, for recovery.
pub(crate) fn recorder_slot_state(current: crate::format::header::Slot, current_index: usize) -> recorder::SlotState {
    recorder::SlotState { current, current_index }
}
