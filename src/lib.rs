pub mod error;
pub mod format;
pub mod read;
pub mod recover;
pub mod storage;
pub mod time;
pub mod verify;
pub mod write;

pub use error::{Error, Result};
pub use read::{Frame, Frames, RecFile, Replay, Session, SessionState, SkipDamaged, StreamInfo};
pub use recover::{recover, recover_storage, RecoveryReport};
pub use time::Timestamp;
pub use verify::{Problem, VerifyReport};
pub use write::{Durability, Recorder, RecorderOptions, SessionInfo, SessionWriter, StreamId};
