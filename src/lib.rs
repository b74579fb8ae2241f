pub mod error;
pub mod format;
pub mod storage;
pub mod time;
