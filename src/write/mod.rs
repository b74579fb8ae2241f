//! Writing `.rec` files: [`Recorder`] owns the file and its lock, [`SessionWriter`] appends one
//! session's streams, frames and checkpoints.

mod behind;
mod early_sync;
mod options;
mod recorder;
mod session;
mod writer;

pub(crate) use behind::settle_queued_writes;
pub use options::{Durability, RecorderOptions, SessionStart};
pub use recorder::Recorder;
pub use session::{SessionInfo, StreamId};
pub use writer::{SessionWriter, StreamSender};
