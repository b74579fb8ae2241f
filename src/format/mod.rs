//! The on-disk encoding: pure functions from values to bytes and back. Nothing here does I/O;
//! readers take `&[u8]`, which is exactly what a memory map gives. `spec/FORMAT.md` is the
//! authority for every constant below.

pub mod bytes;
pub mod codec;
pub mod header;
pub mod index;
pub mod record;
pub mod salt;

/// Major format version: a reader refuses files with a different major version.
pub const FORMAT_MAJOR: u16 = 1;
/// Minor format version: additions that older readers of the same major version can skip.
pub const FORMAT_MINOR: u16 = 1;
