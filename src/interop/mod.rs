//! Moving recordings in and out of other formats.

#[cfg(feature = "arrow")]
pub mod arrow;
#[cfg(feature = "mcap")]
pub mod mcap;
pub mod message_info;
#[cfg(feature = "parquet")]
pub mod parquet;
