//! Writing `.rec` files: [`Recorder`] owns the file and its lock, [`SessionWriter`] appends one
//! session's streams, frames and checkpoints.

mod options;
mod recorder;
mod session;
pub(crate) mod tail;

pub use options::{Durability, RecorderOptions};
pub use recorder::Recorder;
pub use session::{SessionInfo, SessionWriter, StreamId};
