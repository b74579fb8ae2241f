//! Reading `.rec` files through a memory map: [`RecFile`], [`Session`], [`Replay`], [`Frame`].

mod ahead;
mod file;
mod frame;
pub(crate) mod interval;
pub(crate) mod layout;
mod replay;
mod runs;
pub(crate) mod salvage;

pub use file::{is_internal_encoding, RecFile, Session, StreamInfo, INTERNAL_ENCODING_PREFIX};
pub use frame::{Frame, FrameRef};
pub use layout::SessionState;
pub use replay::{Frames, Replay, Scan, SkipDamaged};
