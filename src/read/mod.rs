//! Reading `.rec` files through a memory map: [`RecFile`], [`Session`], [`Replay`], [`Frame`].

mod file;
mod frame;
pub(crate) mod layout;
mod replay;
pub(crate) mod salvage;

pub use file::{RecFile, Session, StreamInfo};
pub use frame::{Frame, FrameRef};
pub use layout::SessionState;
pub use replay::{Frames, Replay, Scan, SkipDamaged};
