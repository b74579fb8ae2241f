//! Replaying with the original timing: windows and loops, realtime iteration at any speed on
//! one clock for many streams, and a player thread with a control handle.

mod player;
mod realtime;
mod stats;
mod window;

#[cfg(feature = "async")]
pub use player::PlayerStream;
pub use player::{Player, PlayerHandle, PlayerOptions};
pub use realtime::{LatePolicy, Realtime, RealtimeOptions, RealtimePoll};
pub use stats::PlaybackStats;
pub use window::{Window, WindowFrame, WindowIter};
