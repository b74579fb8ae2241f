//! `rec demo`: synthetic robot data through the library.

use crate::output::CliResult;
use recfile::{Recorder, Timestamp};
use std::path::Path;
use std::time::Duration;

pub fn run(file: &Path) -> CliResult {
    let mut recorder = Recorder::create(file)?;
    let mut s = recorder.start_session_with_metadata("demo", &[("robot", "synthetic"), ("source", "rec demo")])?;
    let lidar = s.add_stream("lidar", "raw")?;
    let camera = s.add_stream("camera", "raw")?;
    let odom = s.add_stream("odom", "json")?;
    let start = Timestamp::now();
    let seconds = 5u64;
    // Odometry at 100 Hz, camera at 30 Hz, lidar at 10 Hz, on one clock.
    let mut events: Vec<(u64, u8)> = Vec::new();
    events.extend((0..seconds * 100).map(|i| (i * 10_000_000, 0)));
    events.extend((0..seconds * 30).map(|i| (i * 1_000_000_000 / 30, 1)));
    events.extend((0..seconds * 10).map(|i| (i * 100_000_000, 2)));
    events.sort();
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for (offset, kind) in events {
        let t = start + Duration::from_nanos(offset);
        let secs = offset as f64 / 1e9;
        match kind {
            0 => {
                let odo = serde_json::json!({"x": secs * 0.5, "y": (secs * 0.3).sin(), "theta": secs * 0.1, "v": 0.5});
                s.write(odom, t, odo.to_string().as_bytes())?;
            }
            1 => {
                let frame: Vec<u8> = (0..4096).map(|_| next() as u8).collect();
                s.write(camera, t, &frame)?;
            }
            _ => {
                let points: Vec<u8> = (0..360).flat_map(|_| ((next() % 1000) as f32 / 100.0).to_le_bytes()).collect();
                s.write(lidar, t, &points)?;
            }
        }
    }
    s.finish()?;
    drop(recorder);
    let f = recfile::RecFile::open(file)?;
    crate::info::print_human(&f, file);
    Ok(crate::exit::OK)
}
