//! Moving recordings in and out of other formats.

#[cfg(feature = "mcap")]
pub mod mcap;
