//! What the writer and recovery share to make a session durable: the writer lock, the commit
//! slots, and the writing of a session's index and end. Below both, so that data flows one way:
//! write → recover → durable → format + storage, and read → format + storage.

mod lock;
mod slots;
pub(crate) mod tail;

pub(crate) use lock::{lock_exclusive, writer_holds_lock};
pub(crate) use slots::SlotState;
