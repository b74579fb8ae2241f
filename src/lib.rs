//! # recfile
//!
//! Record timed data streams and agent sessions into one portable, crash-safe `.rec` file, and
//! replay them exactly.
//!
//! - [`Recorder`] creates or appends to a file and holds its writer lock; [`SessionWriter`]
//!   records one session: streams, frames, metadata and checkpoints.
//! - [`RecFile`] memory-maps a file; [`Session`] and [`Replay`] find frames by time in
//!   O(log n) and iterate them in timestamp order; [`Frame`] borrows its payload from the map.
//! - [`recover`] repairs an interrupted recording in time proportional to its tail;
//!   [`RecFile::verify`] checks every byte.
//!
//! The byte layout is specified in `spec/FORMAT.md`.
//!
//! ```
//! use recfile::{RecFile, Recorder, Timestamp};
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("run.rec");
//! let mut recorder = Recorder::create(&path)?;
//! let mut session = recorder.start_session("run")?;
//! let imu = session.add_stream("imu", "bincode")?;
//! for i in 0..10i64 {
//!     session.write_value(imu, Timestamp::from_nanos(i * 1_000_000), &[i as f32; 3])?;
//! }
//! session.finish()?;
//! drop(recorder);
//!
//! let file = RecFile::open(&path)?;
//! let imu = file.last_session().unwrap().stream("imu")?;
//! let frame = imu.find_closest(Timestamp::from_nanos(4_400_000), None).unwrap();
//! assert_eq!(frame.decode::<[f32; 3]>()?, [4.0; 3]);
//! # Ok::<(), recfile::Error>(())
//! ```
#![warn(missing_docs)]

mod durable;
pub mod error;
pub mod format;
pub mod interop;
pub mod read;
pub mod recover;
pub mod replay;
mod reserve;
pub mod rewrite;
pub mod session;
pub mod storage;
mod threads;
pub mod time;
pub mod verify;
pub mod write;

pub use error::{Error, Result};
pub use read::{Frame, FrameRef, Frames, RecFile, Replay, Scan, Session, SessionState, SkipDamaged, StreamInfo};
pub use recover::{recover, recover_storage, RecoveryReport};
pub use replay::{
    LatePolicy, PlaybackStats, Player, PlayerHandle, PlayerOptions, Realtime, RealtimeOptions, RealtimePoll, Window, WindowFrame,
    WindowIter,
};
pub use session::{compare_sessions, Action, ActionOptions, CheckpointInfo, ComparisonReport, DivergenceType, ReplayEngine, ReplayReport};
pub use time::Timestamp;
pub use verify::{Problem, VerifyReport};
pub use write::{Durability, Recorder, RecorderOptions, SessionInfo, SessionStart, SessionWriter, StreamId, StreamSender};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
